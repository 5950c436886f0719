"""What an order-book backtest adds to the output files: executions, funding, PnL sources."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from tradestack.analytics.report import html_table
from tradestack.engine.l2 import L2BacktestResult

EXECUTION_COLUMNS = (
    "fill_id",
    "client_order_id",
    "side",
    "qty",
    "price",
    "liquidity",
    "fee",
    "exchange_time",
    "receive_time",
    "queue_ahead",
    "mid_at_fill",
    "mid_after",
    "adverse_bps",
    "toxic",
)


def _num(value: float, digits: int = 10) -> str:
    return "" if math.isnan(value) else f"{value:.{digits}g}"


def l2_summary(result: L2BacktestResult) -> dict[str, Any]:
    """Fill counts, queue positions at fill, toxic fills, PnL decomposition, venue counters."""
    executions = result.executions
    maker = [e for e in executions if e.fill.liquidity.value == "maker"]
    queue = [e.queue_ahead for e in maker if not math.isnan(e.queue_ahead)]
    toxic = result.toxic()
    return {
        "fills": len(executions),
        "maker_fills": len(maker),
        "taker_fills": len(executions) - len(maker),
        "mean_queue_ahead_at_maker_fill": sum(queue) / len(queue) if queue else None,
        "toxic_fills": sum(toxic),
        "toxic_fraction": sum(toxic) / len(toxic) if toxic else None,
        "toxic_threshold_bps": result.toxic_threshold_bps,
        "funding_payments": len(result.portfolio.funding),
        "pnl_decomposition": result.pnl_decomposition(),
        "venue": result.venue_stats,
    }


def write_executions(result: L2BacktestResult, path: Path, iso: Any) -> None:
    toxic = result.toxic()
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(EXECUTION_COLUMNS)
        for e, flag in zip(result.executions, toxic, strict=True):
            f = e.fill
            writer.writerow(
                (
                    f.fill_id,
                    f.client_order_id,
                    f.side.value,
                    f.qty,
                    f.price,
                    f.liquidity.value,
                    f.fee,
                    iso(e.exch_ts_ns),
                    iso(e.local_ts_ns),
                    _num(e.queue_ahead),
                    _num(e.mid_at_fill, 12),
                    _num(e.mid_after, 12),
                    _num(e.adverse_bps(), 6),
                    int(flag),
                )
            )


def write_funding(result: L2BacktestResult, path: Path, iso: Any) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(("funding_time", "instrument", "position", "rate", "mark_price", "amount"))
        for p in result.portfolio.funding:
            writer.writerow((iso(p.ts_ns), str(p.instrument_id), p.qty, p.rate, p.mark, p.amount))


def report_sections(result: L2BacktestResult, summary: dict[str, Any]) -> list[tuple[str, str]]:
    """Report tables: PnL decomposition, fill statistics, and the first fills with queue data."""
    pnl = summary["pnl_decomposition"]
    pnl_table = html_table(
        ("component", "amount"), [(k, f"{v:,.4f}") for k, v in pnl.items()], "pnl-decomposition"
    )
    stats = [
        (k, "n/a" if v is None else f"{v:,.4g}" if isinstance(v, float) else v)
        for k, v in summary.items()
        if k not in ("pnl_decomposition", "venue")
    ]
    stats_table = html_table(("statistic", "value"), stats, "fill-stats")
    toxic = result.toxic()
    rows = [
        (
            e.fill.fill_id,
            e.fill.side.value,
            e.fill.qty,
            e.fill.price,
            e.fill.liquidity.value,
            e.fill.fee,
            _num(e.queue_ahead, 6),
            _num(e.adverse_bps(), 4),
            "yes" if flag else "",
        )
        for e, flag in list(zip(result.executions, toxic, strict=True))[:200]
    ]
    fills_table = html_table(
        ("fill", "side", "qty", "price", "liquidity", "fee", "queue ahead", "adverse bps", "toxic"),
        rows,
        "executions",
    )
    funding_rows = [
        (str(p.ts_ns), p.qty, p.rate, p.mark, f"{p.amount:.8f}") for p in result.portfolio.funding
    ]
    funding_table = html_table(
        ("funding time (ns)", "position", "rate", "mark", "amount"), funding_rows, "funding"
    )
    return [
        ("PnL decomposition", pnl_table),
        ("Fills", stats_table),
        ("Executions (first 200; all in executions.csv)", fills_table),
        ("Funding", funding_table),
    ]
