"""Per-layer diagnostics of a pipeline run: feature summary, each alpha's hit rate and IC out of
sample, the ensemble's weights, sizing decisions and risk denials by rule."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tradestack.alphas.diagnostics import forward_returns, score_quality
from tradestack.analytics.report import html_table
from tradestack.engine.pipeline.strategy import PipelineStrategy


def _num(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def pipeline_diagnostics(strategy: PipelineStrategy) -> dict[str, Any]:
    """What every layer did, from the steps the run recorded (test window = after train_end)."""
    plan = strategy.plan
    recorded = strategy.recorded()
    horizon = plan.config.horizon
    matrices, scores, blends, fwd = [], [], [], []
    for sig in recorded.values():
        matrices.append(sig.features)
        test = sig.ts_ns >= plan.train_end_ns
        scores.append(sig.alpha_scores[test])
        blends.append(sig.signal[test])
        fwd.append(forward_returns(sig.close, horizon)[test])
    features = np.vstack(matrices) if matrices else np.zeros((0, len(plan.features.names)))
    score_m = np.vstack(scores) if scores else np.zeros((0, len(plan.alphas)))
    y = np.concatenate(fwd) if fwd else np.zeros(0)
    per_feature = []
    for j, spec in enumerate(plan.features.describe()):
        col = features[:, j]
        ok = col[np.isfinite(col)]
        per_feature.append(
            {
                **spec,
                "mean": _num(float(ok.mean())) if len(ok) else None,
                "std": _num(float(ok.std())) if len(ok) else None,
                "min": _num(float(ok.min())) if len(ok) else None,
                "max": _num(float(ok.max())) if len(ok) else None,
                "nan_fraction": _num(1 - len(ok) / len(col)) if len(col) else None,
            }
        )
    alphas = []
    for j, alpha in enumerate(plan.alphas):
        quality = score_quality(score_m[:, j], y)
        alphas.append(
            {"name": alpha.name, **alpha.describe(), **{k: _num(v) for k, v in quality.items()}}
        )
    blend_quality = score_quality(np.concatenate(blends) if blends else np.zeros(0), y)
    return {
        "mode": strategy.mode,
        "steps": int(sum(len(s.ts_ns) for s in recorded.values())),
        "horizon_steps": horizon,
        "fit": plan.fit_summary,
        "features": {
            "declared": len(plan.features.names),
            "computations": plan.features.n_computations,
            "summary": per_feature,
        },
        "alphas": alphas,
        "ensemble": {
            **plan.ensemble.describe(),
            **{k: _num(v) for k, v in blend_quality.items()},
        },
        "sizing": strategy.sizing_stats.summary(),
        "orders_sent": strategy.orders_sent,
        "risk": strategy.risk.summary(),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def pipeline_sections(diag: dict[str, Any]) -> list[tuple[str, str]]:
    """Report sections (heading, HTML) for :func:`pipeline_diagnostics`."""
    feats = diag["features"]
    feature_rows = [
        [
            f["name"],
            f["kind"],
            ", ".join(f"{k}={v}" for k, v in f["params"].items()),
            *(_fmt(f[k]) for k in ("mean", "std", "min", "max", "nan_fraction")),
        ]
        for f in feats["summary"]
    ]
    features_html = (
        f"<p>{feats['declared']} features from {feats['computations']} distinct computations "
        f"over {diag['steps']} steps ({diag['mode']} path).</p>"
        + html_table(
            ["feature", "kind", "parameters", "mean", "std", "min", "max", "NaN share"],
            feature_rows,
            "pipeline-features",
        )
    )
    alpha_rows = [
        [a["name"], a["kind"], _fmt(a["hit_rate"]), _fmt(a["ic"]), a["n"], a["n_directional"]]
        for a in diag["alphas"]
    ]
    ens = diag["ensemble"]
    alpha_rows.append(
        [
            "ensemble",
            ens["method"],
            _fmt(ens["hit_rate"]),
            _fmt(ens["ic"]),
            ens["n"],
            ens["n_directional"],
        ]
    )
    alphas_html = (
        f"<p>Out of sample (after the training window), against the "
        f"{diag['horizon_steps']}-step forward return.</p>"
        + html_table(
            ["alpha", "kind", "hit rate", "IC (Spearman)", "steps", "directional steps"],
            alpha_rows,
            "pipeline-alphas",
        )
    )
    weights_html = html_table(
        ["alpha", "weight"],
        [[k, _fmt(v)] for k, v in ens["weights"].items()],
        "pipeline-ensemble",
    )
    sizing = diag["sizing"]
    sizing_html = html_table(
        ["decision", "count"],
        [[k, v] for k, v in sizing["by_reason"].items()]
        + [
            ["rebalances sized", sizing["orders"]],
            ["orders sent (after risk)", diag["orders_sent"]],
            ["mean |fraction|", _fmt(sizing["mean_abs_fraction"])],
        ],
        "pipeline-sizing",
    )
    risk = diag["risk"]
    risk_rows = [["denial", k, v] for k, v in risk["denials"].items()]
    risk_rows += [["action", k, v] for k, v in risk["actions"].items()]
    risk_rows += [["target scaled", k, v] for k, v in risk["scalings"].items()]
    risk_html = (
        f"<p>Kill switch: {risk['kill_switch']}"
        + (f" ({risk['kill_switch_reason']})" if risk["kill_switch_reason"] else "")
        + "</p>"
        + (
            html_table(["what", "rule", "count"], risk_rows, "pipeline-risk")
            if risk_rows
            else "<p>No denials, actions or scalings.</p>"
        )
    )
    return [
        ("Features", features_html),
        ("Alphas", alphas_html),
        (f"Ensemble ({ens['method']})", weights_html),
        ("Sizing decisions", sizing_html),
        ("Risk", risk_html),
    ]
