"""The equity curve, rebuilt with numpy after the event loop from the ledger changes it logged.

Cash and positions change only at fills, so the loop logs the state after each fill instead of
valuing the portfolio at every bar; marks are the closes in event order. The values use the same
float expressions as :meth:`Portfolio.equity_and_exposure`, so a curve rebuilt here equals one
valued live bar by bar.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tradestack.core.series import FloatArray, IntArray


def _forward_fill(n: int, at: IntArray, values: FloatArray, initial: float) -> FloatArray:
    """Array of length n holding, at each index, the last value logged at or before it."""
    out = np.full(n, initial)
    if len(at):
        where = np.searchsorted(at, np.arange(n), side="right") - 1
        logged = where >= 0
        out[logged] = values[where[logged]]
    return out


def _marks(feed_ids: IntArray, closes: FloatArray, feed: int) -> FloatArray:
    """Each event's latest close of one feed (NaN before its first bar)."""
    idx = np.where(feed_ids == feed, np.arange(len(feed_ids)), -1)
    np.maximum.accumulate(idx, out=idx)
    marks = np.full(len(closes), np.nan)
    seen = idx >= 0
    marks[seen] = closes[idx[seen]]
    return marks


def rebuild_equity(
    *,
    feed_ids: IntArray,
    closes: FloatArray,
    slot_last_event: IntArray,
    starting_cash: float,
    cash_log: Sequence[tuple[int, float]],
    position_log: Sequence[tuple[int, int, float, float]],
    multipliers: Sequence[float],
    margined: Sequence[bool],
) -> tuple[FloatArray, FloatArray]:
    """Equity and gross exposure at the end of each timestamp slot.

    ``cash_log`` holds (event, cash after it); ``position_log`` holds (event, feed, qty, average
    price) after each fill. Logs are in event order.
    """
    n = len(feed_ids)
    cash_at = np.array([e for e, _ in cash_log], dtype=np.int64)
    cash_values = np.array([c for _, c in cash_log], dtype=np.float64)
    equity = _forward_fill(n, cash_at, cash_values, starting_cash)
    gross = np.zeros(n)
    for feed in sorted({f for _, f, _, _ in position_log}):
        rows = [(e, q, a) for e, f, q, a in position_log if f == feed]
        at = np.array([r[0] for r in rows], dtype=np.int64)
        qty = _forward_fill(n, at, np.array([r[1] for r in rows]), 0.0)
        avg = _forward_fill(n, at, np.array([r[2] for r in rows]), 0.0)
        mark = _marks(feed_ids, closes, feed)
        held = qty != 0.0
        market_value = np.where(held, qty * mark * multipliers[feed], 0.0)
        if margined[feed]:
            equity += np.where(held, qty * (mark - avg) * multipliers[feed], 0.0)
        else:
            equity += market_value
        gross += np.abs(market_value)
    return equity[slot_last_event], gross[slot_last_event]
