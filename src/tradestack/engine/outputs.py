"""The files a backtest writes: a stable contract for scripts (metrics.json, trades.csv,
equity.csv, orders.csv, report.html). All are written to a temporary folder first and moved into
place together, so a failure never leaves a half-written set."""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from tradestack.core.series import FloatArray, IntArray
from tradestack.engine.backtest import BacktestResult
from tradestack.engine.l2 import L2BacktestResult
from tradestack.engine.l2_outputs import (
    l2_summary,
    report_sections,
    write_executions,
    write_funding,
)
from tradestack.engine.pipeline.report import pipeline_diagnostics, pipeline_sections
from tradestack.engine.pipeline.strategy import PipelineStrategy

TRADE_COLUMNS = (
    "instrument",
    "side",
    "qty",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "pnl",
    "gross_pnl",
    "fees",
    "return_fraction",
)
OUTPUT_FILES = (
    "metrics.json",
    "trades.csv",
    "equity.csv",
    "orders.csv",
    "executions.csv",
    "funding.csv",
    "pipeline.json",
    "report.html",
)
REPORT_POINTS = 20_000


def downsample_extremes(
    ts_ns: IntArray, values: FloatArray, max_points: int
) -> tuple[IntArray, FloatArray]:
    """At most ~``max_points`` points for charts, keeping each bucket's first, min, max and last
    point so peaks and troughs (hence the drawdown) survive."""
    n = len(values)
    if n <= max_points:
        return ts_ns, values
    bucket = -(-n // (max_points // 4))
    starts = np.arange(0, n, bucket)
    padded = np.full(len(starts) * bucket, np.nan)
    padded[:n] = values
    grid = padded.reshape(-1, bucket)
    keep = np.concatenate(
        [
            starts,
            starts + np.nanargmin(grid, axis=1),
            starts + np.nanargmax(grid, axis=1),
            np.minimum(starts + bucket - 1, n - 1),
        ]
    )
    keep = np.unique(keep)
    return ts_ns[keep], values[keep]


def iso_utc(ts_ns: int) -> str:
    """ISO-8601 UTC with microseconds dropped when zero."""
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).isoformat().replace("+00:00", "Z")


def write_outputs(
    result: BacktestResult, out_dir: Path, *, title: str, report: bool = True
) -> dict[str, Path]:
    """Write every output file into ``out_dir`` (created if needed); returns name → path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".tradestack-", dir=out_dir))
    try:
        metrics = result.metrics()
        payload = {
            **metrics.to_dict(),
            "strategy": result.strategy.name,
            "params": result.strategy.current_parameters(),
            "open_positions": {
                str(i): str(p.qty) for i, p in result.portfolio.positions.items() if p.qty
            },
        }
        sections: list[tuple[str, str]] = []
        if isinstance(result, L2BacktestResult):
            summary = l2_summary(result)
            payload["order_book"] = summary
            write_executions(result, staging / "executions.csv", iso_utc)
            write_funding(result, staging / "funding.csv", iso_utc)
            sections = report_sections(result, summary)
        if isinstance(result.strategy, PipelineStrategy):
            diagnostics = pipeline_diagnostics(result.strategy)
            payload["pipeline"] = {k: diagnostics[k] for k in ("mode", "steps", "fit")}
            (staging / "pipeline.json").write_text(
                json.dumps(diagnostics, indent=2, default=str) + "\n"
            )
            sections = [*sections, *pipeline_sections(diagnostics)]
        (staging / "metrics.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
        _write_trades(result, staging / "trades.csv")
        _write_equity(result, staging / "equity.csv")
        _write_orders(result, staging / "orders.csv")
        if report:
            from tradestack.analytics.report import write_report

            ts_plot, equity_plot = downsample_extremes(result.ts_ns, result.equity, REPORT_POINTS)
            write_report(
                staging / "report.html",
                title=title,
                ts_ns=ts_plot,
                equity=equity_plot,
                trades=result.trades,
                metrics=metrics,
                currency=result.portfolio.currency,
                sections=sections,
            )
        written = {}
        for name in OUTPUT_FILES:
            if (staging / name).exists():
                os.replace(staging / name, out_dir / name)
                written[name] = out_dir / name
            else:  # never leave an earlier run's file beside this run's outputs
                (out_dir / name).unlink(missing_ok=True)
        return written
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_trades(result: BacktestResult, path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(TRADE_COLUMNS)
        for t in result.trades:
            writer.writerow(
                [
                    str(t.instrument_id),
                    t.side,
                    t.qty,
                    iso_utc(t.entry_ts_ns),
                    t.entry_price,
                    iso_utc(t.exit_ts_ns),
                    t.exit_price,
                    t.pnl,
                    t.gross_pnl,
                    t.fees,
                    f"{t.return_fraction:.10g}",
                ]
            )


def _write_equity(result: BacktestResult, path: Path) -> None:
    import polars as pl

    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(result.ts_ns).cast(pl.Datetime("ns", "UTC")),
            "ts_ns": result.ts_ns,
            "equity": result.equity,
            "gross_exposure": result.gross_exposure,
        }
    )
    frame.write_csv(path, datetime_format="%Y-%m-%dT%H:%M:%S%.fZ")


def _write_orders(result: BacktestResult, path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(
            (
                "client_order_id",
                "instrument",
                "side",
                "type",
                "qty",
                "price",
                "trigger_price",
                "time_in_force",
                "status",
                "filled_qty",
                "avg_fill_price",
                "created",
                "reason",
            )
        )
        for o in result.orders:
            reason = next(
                (getattr(e, "reason", "") for e in reversed(o.events) if getattr(e, "reason", "")),
                "",
            )
            writer.writerow(
                (
                    o.client_order_id,
                    str(o.instrument_id),
                    o.side.value,
                    o.order_type.value,
                    o.qty,
                    o.price or "",
                    o.trigger_price or "",
                    o.time_in_force.value,
                    o.status.value,
                    o.filled_qty,
                    o.avg_fill_price if o.filled_qty else "",
                    iso_utc(o.ts_init_ns),
                    reason,
                )
            )
