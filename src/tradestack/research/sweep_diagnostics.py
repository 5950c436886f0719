"""How much a sweep's best result owes to having tried many: the deflated Sharpe ratio of the
best variant and the probability of backtest overfitting (CSCV) over all variants.

Both work on one return series per variant on a common calendar: the equity curve's last value
of each UTC day, as daily returns (for daily bars: the bar returns).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tradestack.core.series import FloatArray, IntArray
from tradestack.research.overfitting import (
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe,
)

NS_PER_DAY = 86_400_000_000_000


def daily_returns(ts_ns: IntArray, equity: FloatArray) -> tuple[IntArray, FloatArray]:
    """The UTC days after the first and the equity's return over each."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if len(ts) < 2:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    day = ts // NS_PER_DAY
    last = np.flatnonzero(np.append(day[1:] != day[:-1], True))
    closes = eq[last]
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = closes[1:] / closes[:-1] - 1.0
    return day[last][1:], rets


def overfitting_report(
    days: Sequence[IntArray], returns: Sequence[FloatArray], labels: Sequence[str]
) -> dict[str, Any]:
    """DSR of the best variant (by per-day Sharpe) and PBO over all, or the reason they could
    not be computed (fewer than two variants, too few days, different calendars)."""
    if len(returns) < 2:
        return {"skipped": "fewer than two variants ran"}
    if any(len(d) != len(days[0]) or not np.array_equal(d, days[0]) for d in days):
        return {"skipped": "the variants' equity curves cover different days"}
    matrix = np.column_stack(returns)
    matrix = matrix[np.isfinite(matrix).all(axis=1)]
    t, n = matrix.shape
    if t < 8:
        return {"skipped": f"only {t} days of returns"}
    sr = sharpe(matrix)
    best = int(np.nanargmax(np.where(np.isfinite(sr), sr, -np.inf)))
    r = matrix[:, best]
    std = r.std()
    skew = float(((r - r.mean()) ** 3).mean() / std**3) if std > 0 else 0.0
    kurt = float(((r - r.mean()) ** 4).mean() / std**4) if std > 0 else 3.0
    finite = sr[np.isfinite(sr)]
    dsr = deflated_sharpe_ratio(float(sr[best]), finite, t, skew, kurt)
    splits = min(16, (t // 4) // 2 * 2)
    pbo = probability_of_backtest_overfitting(matrix, n_splits=splits)
    return {
        "variants": n,
        "days": t,
        "best": labels[best],
        "best_daily_sharpe": float(sr[best]),
        "expected_max_sharpe_under_null": dsr.expected_max_sharpe,
        "deflated_sharpe": dsr.deflated_sharpe,
        "probabilistic_sharpe": dsr.probabilistic_sharpe,
        "pbo": pbo.pbo,
        "pbo_splits": splits,
        "pbo_combinations": pbo.n_combinations,
        "degradation_slope": None if math.isnan(pbo.degradation_slope) else pbo.degradation_slope,
    }
