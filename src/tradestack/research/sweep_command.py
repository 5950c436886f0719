"""``tradestack sweep``: run a grid of variants of one config and report them."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from tradestack.research.sweep import (
    LOWER_IS_BETTER,
    METRIC_COLUMNS,
    SweepError,
    apply_overrides,
    grid,
    parse_axis,
    run_sweep,
    search,
    sort_rows,
)
from tradestack.research.sweep_diagnostics import overfitting_report


def sweep_command(
    config_path: Path,
    axes_text: list[str],
    *,
    out: Path | None,
    workers: int | None,
    ray: str | None,
    sort: str,
    top: int,
    quiet: bool,
    vectorized: bool = False,
    method: str = "grid",
    trials: int | None = None,
    seed: int | None = None,
) -> int:
    """Returns the exit code: 0 when at least one variant ran, 2 on bad input or when every
    variant failed (the first error is printed)."""
    from tradestack.engine.config import ConfigError, load_config

    try:
        load_config(config_path)  # the base config must be valid before anything runs
        raw: dict[str, Any] = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        axes = [parse_axis(a) for a in axes_text]
        variants = grid(axes)
        apply_overrides(raw, variants[0])
    except (ConfigError, SweepError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if sort not in METRIC_COLUMNS:
        print(f"error: --sort must be one of {', '.join(METRIC_COLUMNS)}", file=sys.stderr)
        return 2
    base = config_path.resolve().parent
    where = f"Ray at {ray}" if ray else f"{workers or 'all'} local processes"
    if not quiet:
        count = len(variants) if method == "grid" else f"{trials} {method}-search"
        print(f"{count} variants on {where}", file=sys.stderr)
    maximize = sort not in LOWER_IS_BETTER
    if method == "grid":
        try:
            rows = _run(raw, base, variants, workers, ray, quiet, vectorized)
        except SweepError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    else:
        if trials is None:
            print(f"error: --search {method} needs --trials N", file=sys.stderr)
            return 2
        try:
            rows = search(
                raw, base, axes, method=method, trials=trials, metric=sort, maximize=maximize,
                seed=seed, workers=workers, ray_address=ray, vectorized=vectorized,
            )  # fmt: skip
        except SweepError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    ranked = sort_rows(rows, sort, descending=maximize)
    failed = [r for r in rows if r["error"]]
    if len(failed) == len(rows):
        print(f"error: every variant failed; the first: {failed[0]['error']}", file=sys.stderr)
        return 2
    keys = [a.key for a in axes]
    ran = [r for r in rows if not r["error"]]
    diagnostics = overfitting_report(
        [r["_days"] for r in ran],
        [r["_returns"] for r in ran],
        [", ".join(f"{k}={r[k]}" for k in keys) for r in ran],
    )
    if not quiet:
        _print_table(ranked[:top], keys, sort, len(failed))
        print(_overfitting_line(diagnostics))
    if out is not None:
        from tradestack.analytics.report import html_table
        from tradestack.research.sweep_report import write_results, write_sweep_report

        written = write_results(rows, out)
        (out / "overfitting.json").write_text(json.dumps(diagnostics, indent=2) + "\n")
        section = html_table(
            ["diagnostic", "value"], [[k, _fmt(v)] for k, v in diagnostics.items()], "overfitting"
        )
        report = write_sweep_report(
            out / "sweep.html",
            ranked,
            keys,
            metric=sort,
            title=f"Sweep of {config_path.name}",
            sections=[("Overfitting (deflated Sharpe, PBO by CSCV)", section)],
        )
        for path in [*written.values(), out / "overfitting.json", report]:
            print(f"wrote {path}")
    return 0


def _overfitting_line(d: dict[str, Any]) -> str:
    if "skipped" in d:
        return f"overfitting diagnostics skipped: {d['skipped']}"
    return (
        f"best {d['best']}: daily Sharpe {d['best_daily_sharpe']:.4f}, deflated Sharpe "
        f"{d['deflated_sharpe']:.3f} (null max {d['expected_max_sharpe_under_null']:.4f} over "
        f"{d['variants']} variants); probability of backtest overfitting {d['pbo']:.2f} "
        f"({d['pbo_combinations']} CSCV splits of {d['days']} days)"
    )


def _run(
    raw: dict[str, Any],
    base: Path,
    variants: list[dict[str, Any]],
    workers: int | None,
    ray: str | None,
    quiet: bool,
    vectorized: bool,
) -> list[dict[str, Any]]:
    if quiet or not sys.stderr.isatty():
        return run_sweep(
            raw, base, variants, workers=workers, ray_address=ray, vectorized=vectorized
        )
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=True) as bar:
        task = bar.add_task("sweep", total=len(variants))
        return run_sweep(
            raw,
            base,
            variants,
            workers=workers,
            ray_address=ray,
            vectorized=vectorized,
            progress=lambda done, _n: bar.update(task, completed=done),
        )


def _print_table(rows: list[dict[str, Any]], keys: list[str], metric: str, n_failed: int) -> None:
    from rich.console import Console
    from rich.table import Table

    shown = [
        *keys,
        metric,
        *(c for c in ("total_return", "max_drawdown", "n_trades") if c != metric),
    ]
    table = Table(
        title=f"best {len(rows)} by {metric}" + (f" ({n_failed} failed)" if n_failed else "")
    )
    for c in shown:
        table.add_column(c, justify="right")
    for r in rows:
        table.add_row(*(_fmt(r.get(c)) for c in shown))
    Console(stderr=False).print(table)


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:,.6g}" if isinstance(value, float) else str(value)
