"""Building and fitting a pipeline from its config, using only the training window.

One calendar cutoff (``train_end``, or the ``train_fraction`` quantile of all step times) ends
the training window of every instrument, and the base columns are cut there *before* any
feature is computed, so nothing after it can reach a fitted model, whichever instrument it
belongs to. Training rows of all instruments are pooled. Labels are forward returns over
``horizon`` steps inside the window (the last ``horizon`` rows of each instrument have none:
purged). The ensemble learns from out-of-sample alpha scores: the training period is split into
``folds`` consecutive blocks of time, and the rows of block k are scored by alphas fitted on the
rows whose label was known before block k began. The alphas are then fitted once more on the
whole training window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from tradestack.alphas import ALPHA_KINDS, ENSEMBLE_METHODS, Alpha, AlphaError, Ensemble
from tradestack.alphas.diagnostics import forward_returns
from tradestack.core.ids import InstrumentId
from tradestack.engine.pipeline.config import PipelineConfig
from tradestack.features.featureset import FeatureSet, FeatureSpecError
from tradestack.portfolio.sizing import SizingConfig
from tradestack.risk import RiskConfig


class PipelineError(ValueError):
    """A pipeline that cannot be built or fitted; the message names the part and the reason."""


@dataclass(frozen=True)
class Steps:
    """One instrument's decision steps: their times and base columns."""

    ts_ns: np.ndarray
    columns: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.ts_ns)

    def cut(self, end: int) -> Steps:
        return Steps(self.ts_ns[:end], {k: v[:end] for k, v in self.columns.items()})


@dataclass
class Signals:
    """What the batch path computed for one instrument, step by step."""

    ts_ns: np.ndarray
    close: np.ndarray
    features: np.ndarray  # (n, n_features)
    alpha_scores: np.ndarray  # (n, n_alphas)
    signal: np.ndarray  # (n,)


@dataclass
class PipelinePlan:
    """A compiled, fitted pipeline: everything both execution paths need."""

    config: PipelineConfig
    features: FeatureSet
    alphas: list[Alpha]
    ensemble: Ensemble
    alpha_columns: list[list[int]]
    volatility_column: int
    train_end_ns: int
    sizing: SizingConfig
    risk: RiskConfig
    fit_summary: dict[str, Any] = field(default_factory=dict)

    def signals(self, steps: Steps) -> Signals:
        """Batch path: features, alpha scores and blend over every step at once."""
        values = self.features.batch(steps.columns)
        matrix = np.column_stack([values[n] for n in self.features.names])
        scores = np.column_stack(
            [
                a.score_batch(matrix[:, cols])
                for a, cols in zip(self.alphas, self.alpha_columns, strict=True)
            ]
        )
        blend = self.ensemble.blend_batch(scores)
        close = np.asarray(steps.columns["close"], dtype=np.float64)
        return Signals(steps.ts_ns, close, matrix, scores, blend)


def build_plan(
    config: PipelineConfig,
    steps: Mapping[InstrumentId, Steps],
    base_columns: Sequence[str],
    base: Path | None = None,
) -> PipelinePlan:
    """Compile the config and fit its models on the training window (see module docstring).

    Relative kill-switch paths in ``risk`` are taken from ``base`` (the config's folder), so a
    restart from another working directory finds the same state."""
    try:
        features = FeatureSet.from_config(config.features, base_columns)
    except FeatureSpecError as exc:
        raise PipelineError(f"pipeline.features: {exc}") from None
    names = features.names
    try:
        sizing = msgspec.convert(config.sizing, SizingConfig, strict=False)
    except (msgspec.ValidationError, ValueError) as exc:
        raise PipelineError(f"pipeline.sizing: {exc}") from None
    try:
        risk = msgspec.convert(_resolve_paths(config.risk, base), RiskConfig, strict=False)
    except (msgspec.ValidationError, ValueError) as exc:
        raise PipelineError(f"pipeline.risk: {exc}") from None
    alpha_columns = [[names.index(f) for f in a.features] for a in config.alphas.values()]
    train_end = _train_end(config, steps)
    plan = PipelinePlan(
        config=config,
        features=features,
        alphas=_make_alphas(config),
        ensemble=_make_ensemble(config),
        alpha_columns=alpha_columns,
        volatility_column=names.index(config.volatility),
        train_end_ns=train_end,
        sizing=sizing,
        risk=risk,
    )
    try:
        _fit(plan, steps)
    except FeatureSpecError as exc:
        raise PipelineError(f"pipeline.features: {exc}") from None
    return plan


def _resolve_paths(risk: Mapping[str, Any], base: Path | None) -> dict[str, Any]:
    out = dict(risk)
    for key in ("kill_switch_state_path", "kill_switch_flag_path"):
        value = out.get(key)
        if base is not None and isinstance(value, str):
            path = Path(value).expanduser()
            out[key] = str(path if path.is_absolute() else base / path)
    return out


def _train_end(config: PipelineConfig, steps: Mapping[InstrumentId, Steps]) -> int:
    """One calendar cutoff for every instrument: no model is fitted on any instrument's data
    from after the first step it trades."""
    if config.train_end is not None:
        when = datetime.fromisoformat(config.train_end)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return int(when.timestamp() * 1e9)
    times = np.unique(np.concatenate([s.ts_ns for s in steps.values()]))
    if len(times) < 4:
        raise PipelineError(f"pipeline: only {len(times)} decision steps; too few")
    return int(times[int(len(times) * config.train_fraction)])


def _make_alphas(config: PipelineConfig) -> list[Alpha]:
    alphas = []
    for name, entry in config.alphas.items():
        try:
            alphas.append(ALPHA_KINDS[entry.kind](name, entry.features, **entry.params))
        except TypeError as exc:
            raise PipelineError(f"pipeline.alphas.{name}: {exc}") from None
        except AlphaError as exc:
            raise PipelineError(f"pipeline.alphas.{name}: {exc}") from None
    return alphas


def _make_ensemble(config: PipelineConfig) -> Ensemble:
    names = list(config.alphas)
    method = config.ensemble.method
    cls = ENSEMBLE_METHODS[method]
    if method == "fixed":
        return cls(names, weights=config.ensemble.weights)  # type: ignore[call-arg]
    if method == "stacking":
        return cls(names, C=config.ensemble.C)  # type: ignore[call-arg]
    return cls(names)


def _fit(plan: PipelinePlan, steps: Mapping[InstrumentId, Steps]) -> None:
    config = plan.config
    horizon = config.horizon
    cutoff = plan.train_end_ns
    parts = []  # per instrument: features, forward return, step time, label time
    for s in steps.values():
        end = int(np.searchsorted(s.ts_ns, cutoff, side="left"))
        if end == 0:
            continue  # listed after the cutoff: traded by the model, never trained on
        cut = s.cut(end)
        values = plan.features.batch(cut.columns)
        matrix = np.column_stack([values[n] for n in plan.features.names])
        label_ts = np.full(end, np.iinfo(np.int64).max, dtype=np.int64)
        label_ts[: max(end - horizon, 0)] = cut.ts_ns[horizon:]
        parts.append((matrix, forward_returns(cut.columns["close"], horizon), cut.ts_ns, label_ts))
    if not any(np.isfinite(y).sum() > horizon + config.folds for _, y, _, _ in parts):
        raise PipelineError(
            "pipeline: too few steps before train_end to train on "
            f"({sum(len(y) for _, y, _, _ in parts)} in all)"
        )
    if not any(len(s) > int(np.searchsorted(s.ts_ns, cutoff)) for s in steps.values()):
        raise PipelineError("pipeline: train_end is after the last step; nothing is left to trade")
    matrix = np.vstack([m for m, _, _, _ in parts])
    y = np.concatenate([r for _, r, _, _ in parts])
    ts = np.concatenate([t for _, _, t, _ in parts])
    label_ts = np.concatenate([t for _, _, _, t in parts])
    if plan.ensemble.needs_fit:
        times = np.unique(ts)
        k = config.folds
        bounds = [int(times[len(times) * f // k]) for f in range(k)] + [cutoff]
        oof_scores, oof_y = [], []
        for fold in range(1, k):
            fitted = _make_alphas(config)
            learn = label_ts < bounds[fold]  # purged: the label is known before the block
            _fit_alphas(fitted, plan.alpha_columns, matrix[learn], y[learn], f"fold {fold}")
            block = (ts >= bounds[fold]) & (ts < bounds[fold + 1])
            oof_scores.append(_score(fitted, plan.alpha_columns, matrix[block]))
            oof_y.append(y[block])
        try:
            plan.ensemble.fit(np.vstack(oof_scores), np.concatenate(oof_y))
        except AlphaError as exc:
            raise PipelineError(f"pipeline.ensemble: {exc}") from None
    _fit_alphas(plan.alphas, plan.alpha_columns, matrix, y, "training window")
    plan.fit_summary = {
        "train_end_ns": cutoff,
        "train_rows": int(np.isfinite(y).sum()),
        "ensemble_rows": plan.ensemble.n_fit_rows,
    }


def _fit_alphas(
    alphas: list[Alpha],
    columns: list[list[int]],
    matrix: np.ndarray,
    y: np.ndarray,
    where: str,
) -> None:
    for alpha, cols in zip(alphas, columns, strict=True):
        if alpha.needs_fit:
            try:
                alpha.fit(matrix[:, cols], y)
            except AlphaError as exc:
                raise PipelineError(f"pipeline.alphas.{alpha.name} ({where}): {exc}") from None


def _score(alphas: list[Alpha], columns: list[list[int]], matrix: np.ndarray) -> np.ndarray:
    return np.column_stack(
        [a.score_batch(matrix[:, cols]) for a, cols in zip(alphas, columns, strict=True)]
    )
