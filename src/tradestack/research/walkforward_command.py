"""``tradestack walkforward``: walk-forward optimisation of one config over a parameter grid."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import yaml

from tradestack.research.sweep import METRIC_COLUMNS, SweepError, grid, parse_axis
from tradestack.research.walkforward import (
    LookAheadError,
    Market,
    WalkForwardError,
    WalkForwardResult,
    iso,
    run_walk_forward,
)


def walkforward_command(
    config_path: Path,
    axes_text: list[str],
    *,
    train: int | str,
    test: int | str,
    embargo: int | str = "30D",
    anchored: bool = False,
    sort: str = "sharpe",
    vectorized: bool = False,
    out: Path | None = None,
    lookahead_check: bool = True,
    quiet: bool = False,
) -> int:
    """Returns the exit code: 0 on success, 2 on bad input or a failed look-ahead check."""
    from tradestack.engine.config import ConfigError, load_config

    if sort not in METRIC_COLUMNS:
        print(f"error: --sort must be one of {', '.join(METRIC_COLUMNS)}", file=sys.stderr)
        return 2
    try:
        config, base = load_config(config_path)
        raw: dict[str, Any] = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        points = grid([parse_axis(a) for a in axes_text])
        market = Market.load(config, base, vectorized=vectorized)
        if not quiet and lookahead_check:
            print("look-ahead check ...", file=sys.stderr)
        result = run_walk_forward(
            raw,
            base,
            points,
            train=train,
            test=test,
            embargo=embargo,
            anchored=anchored,
            sort=sort,
            vectorized=vectorized,
            lookahead_check=lookahead_check,
            market=market,
            progress=None if quiet else _progress,
        )
    except LookAheadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (ConfigError, SweepError, WalkForwardError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not quiet:
        _print_table(result)
    if out is not None:
        for path in write_outputs(result, out, title=f"Walk-forward of {config_path.name}"):
            print(f"wrote {path}")
    return 0


def _progress(done: int, total: int) -> None:
    print(f"fold {done}/{total}", file=sys.stderr)


def write_outputs(result: WalkForwardResult, out: Path, *, title: str) -> list[Path]:
    """``walkforward.csv`` (fold table), ``oos_equity.csv`` (stitched curve) and
    ``walkforward.html`` (the stitched curve's report with the fold table)."""
    from tradestack.analytics.report import html_table, write_report

    out.mkdir(parents=True, exist_ok=True)
    table = result.table()
    folds_csv = out / "walkforward.csv"
    with folds_csv.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]) if table else ["fold"])
        writer.writeheader()
        writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in table)
    equity_csv = out / "oos_equity.csv"
    fold_of = _fold_of_rows(result)
    with equity_csv.open("w", newline="", encoding="utf-8") as fh:
        writer2 = csv.writer(fh)
        writer2.writerow(["time", "ts_ns", "fold", "growth", "equity"])
        for ts, fold, g, e in zip(
            result.oos_ts_ns, fold_of, result.oos_growth, result.oos_equity, strict=True
        ):
            writer2.writerow([iso(int(ts)), int(ts), fold, repr(float(g)), repr(float(e))])
    columns = list(table[0]) if table else ["fold"]
    section = html_table(
        columns, [[_fmt(r[c]) for c in columns] for r in table], "walkforward-folds"
    )
    report = write_report(
        out / "walkforward.html",
        title=title,
        ts_ns=result.oos_ts_ns,
        equity=result.oos_equity,
        trades=[t for f in result.folds for t in f.trades],
        metrics=result.metrics(),
        sections=[("Walk-forward folds (chosen on train, traded on test)", section)],
    )
    return [folds_csv, equity_csv, report]


def _fold_of_rows(result: WalkForwardResult) -> list[str]:
    """The fold each stitched row belongs to ("" for the first base)."""
    labels = [""]
    for f in result.folds:
        labels.extend([str(f.fold.index)] * (len(f.ts_ns) - 1))
    return labels


def _print_table(result: WalkForwardResult) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = result.table()
    shown = [
        "fold",
        "test_start",
        "test_end",
        *result.param_keys,
        f"train_{result.sort}",
        "test_sharpe",
        "test_total_return",
        "test_max_drawdown",
    ]
    total = float(result.oos_growth[-1] - 1.0) if len(result.oos_growth) else float("nan")
    table = Table(title=f"walk-forward by {result.sort}: out-of-sample return {total:.2%}")
    for c in shown:
        table.add_column(c, justify="right")
    for r in rows:
        table.add_row(
            *(_fmt(r.get(c), short=c.startswith("test_s") or c.endswith("_end")) for c in shown)
        )
    Console(stderr=False).print(table)


def _fmt(value: Any, *, short: bool = False) -> str:
    if value is None:
        return "–"
    if short and isinstance(value, str) and value.endswith("T00:00:00Z"):
        return value[:10]
    return f"{value:,.6g}" if isinstance(value, float) else str(value)
