"""Performance metrics of an equity curve and its closed trades.

Per-bar returns are the simple returns of the equity curve, ``equity[1:] / equity[:-1] - 1``:
``n`` bars give ``n - 1`` returns and the first bar is the starting equity. The return-based
ratios (Sharpe, Sortino, max drawdown, CAGR, volatility, Calmar) use exactly the formulas of
empyrical-reloaded (``sharpe_ratio``, ``sortino_ratio``, ``max_drawdown``, ``annual_return``,
``annual_volatility``, ``calmar_ratio``) with ``annualization=periods_per_year``, so they agree
with it on the same return series. NumPy only: no pandas at import or run time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt

from tradestack.core.series import FloatArray, IntArray
from tradestack.portfolio.trades import TradeRecord

_NS_PER_DAY = 86_400 * 10**9
_NAN = math.nan


class PerformanceMetrics(msgspec.Struct, frozen=True):
    """Summary statistics of one backtest or live run.

    Fractions are plain fractions (0.1 == 10 %); ``max_drawdown`` is negative like empyrical's.
    Undefined values are NaN (e.g. Sharpe of a flat curve); ``profit_factor`` is ``inf`` when
    there are winning trades and no losing ones. :meth:`to_dict` maps both to ``None``.
    """

    start_ns: int
    end_ns: int
    n_bars: int
    periods_per_year: float
    starting_equity: float
    final_equity: float
    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float
    max_drawdown_duration_bars: int
    max_drawdown_duration_days: float
    n_trades: int
    win_rate: float
    profit_factor: float
    avg_trade_pnl: float
    avg_trade_return: float
    best_trade_return: float
    worst_trade_return: float
    exposure_fraction: float
    turnover: float
    total_fees: float

    def to_dict(self) -> dict[str, int | float | None]:
        """Field name → value, JSON-safe: NaN and ±inf become ``None``."""
        out: dict[str, int | float | None] = {}
        for name in self.__struct_fields__:
            value = getattr(self, name)
            if isinstance(value, float) and not math.isfinite(value):
                out[name] = None
            else:
                out[name] = value
        return out


def infer_periods_per_year(ts_ns: npt.ArrayLike) -> float:
    """Bars per year implied by the spacing of ``ts_ns`` (UTC ns, increasing).

    * Equity-style data (no bar falls on a Saturday or Sunday, UTC):
      ``252 × median number of bars per trading day`` — daily bars give 252, a 390-bar
      US session gives 98 280.
    * Otherwise (24/7 data such as crypto): ``365 × 86 400e9 / median bar spacing in ns`` —
      1-minute bars give 525 600, daily bars 365.
    * Bars coarser than daily (median spacing of two days or more) use the calendar rule in
      both cases (weekly ≈ 52.14); pass ``periods_per_year`` explicitly for 52 or 12.

    Raises ``ValueError`` with fewer than two timestamps.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    if ts.size < 2:
        raise ValueError("need at least two timestamps to infer the bar frequency")
    spacing = float(np.median(np.diff(ts)))
    if spacing <= 0:
        raise ValueError("timestamps must be increasing")
    days = np.floor_divide(ts, _NS_PER_DAY)
    weekday = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday == 0
    on_weekend = bool(np.any(weekday >= 5))
    if on_weekend or spacing >= 2 * _NS_PER_DAY:
        return 365.0 * _NS_PER_DAY / spacing
    _, bars_per_day = np.unique(days, return_counts=True)
    return 252.0 * float(np.median(bars_per_day))


def drawdown_series(equity: npt.ArrayLike) -> FloatArray:
    """Fraction below the running peak at each bar: ``equity / cummax(equity) - 1`` (≤ 0)."""
    eq = np.asarray(equity, dtype=np.float64)
    if eq.size == 0:
        return np.empty(0, dtype=np.float64)
    peak = np.maximum.accumulate(eq)
    with np.errstate(divide="ignore", invalid="ignore"):
        dd: FloatArray = eq / peak - 1.0
    return dd


def monthly_returns(ts_ns: npt.ArrayLike, equity: npt.ArrayLike) -> list[tuple[int, int, float]]:
    """``(year, month, return)`` per UTC calendar month that has bars, in order.

    A month's return is its last equity over the previous month's last equity, minus one;
    the first month is measured from the first bar.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if ts.size != eq.size:
        raise ValueError("ts_ns and equity must have the same length")
    if ts.size == 0:
        return []
    months = ts.astype("datetime64[ns]").astype("datetime64[M]").astype(np.int64)
    last = np.flatnonzero(np.diff(months) != 0)
    ends = np.append(last, ts.size - 1)
    month_end_equity = eq[ends]
    base = np.concatenate(([eq[0]], month_end_equity[:-1]))
    with np.errstate(divide="ignore", invalid="ignore"):
        rets = month_end_equity / base - 1.0
    out: list[tuple[int, int, float]] = []
    for m, r in zip(months[ends].tolist(), rets.tolist(), strict=True):
        year, month0 = divmod(int(m), 12)
        out.append((1970 + year, month0 + 1, float(r)))
    return out


def return_stats(returns: FloatArray, ppy: float, risk_free: float) -> dict[str, float]:
    """empyrical's sharpe/sortino/max_drawdown/annual_return/annual_volatility/calmar of simple
    returns, ``ppy`` periods a year (the ratios of :func:`compute_metrics`, for callers such as
    sweeps that need only these)."""
    n = returns.size
    nan_stats = dict.fromkeys(("cagr", "volatility", "sharpe", "sortino", "max_dd"), _NAN)
    if n < 1:
        return nan_stats | {"calmar": _NAN}
    wealth = np.cumprod(1.0 + returns)
    peak = np.fmax.accumulate(np.concatenate(([1.0], wealth)))[1:]
    max_dd = float(np.min((wealth - peak) / peak))
    cagr = float(wealth[-1] ** (1.0 / (n / ppy)) - 1.0) if wealth[-1] >= 0 else _NAN
    stats = nan_stats | {"cagr": cagr, "max_dd": max_dd}
    calmar = cagr / abs(max_dd) if max_dd < 0 else _NAN
    stats["calmar"] = calmar if math.isfinite(calmar) else _NAN
    if n < 2:
        return stats
    excess = returns - risk_free
    std = float(np.std(returns, ddof=1))
    stats["volatility"] = std * ppy ** (1.0 / 2.0)
    excess_std = 0.0 if np.ptp(excess) == 0 else float(np.std(excess, ddof=1))
    mean_excess = float(np.mean(excess))
    # Zero dispersion: empyrical yields ±inf for a nonzero mean; an undefined Sharpe is NaN here.
    stats["sharpe"] = mean_excess / excess_std * math.sqrt(ppy) if excess_std > 0 else _NAN
    downside = math.sqrt(float(np.mean(np.square(np.minimum(excess, 0.0))))) * math.sqrt(ppy)
    annual_excess = mean_excess * ppy
    if downside > 0:
        stats["sortino"] = annual_excess / downside
    elif annual_excess != 0:
        stats["sortino"] = math.copysign(math.inf, annual_excess)
    return stats


def _drawdown_durations(ts: IntArray, equity: FloatArray) -> tuple[int, float]:
    """Longest peak-to-recovery span (to the last bar if not recovered), in bars and in days."""
    if equity.size < 2:
        return 0, 0.0
    idx = np.arange(equity.size)
    at_peak = equity >= np.maximum.accumulate(equity)
    peak_idx = np.maximum.accumulate(np.where(at_peak, idx, 0))
    prev_peak = np.concatenate(([0], peak_idx[:-1]))
    recovered = at_peak & np.concatenate(([False], ~at_peak[:-1]))
    # An underwater bar measures from its peak, a recovery bar from the peak it regained.
    start = np.where(recovered, prev_peak, peak_idx)
    bars = idx - start
    days = (ts - ts[start]) / _NS_PER_DAY
    return int(bars.max()), float(days.max())


def _trade_stats(trades: Sequence[TradeRecord]) -> dict[str, float]:
    if not trades:
        keys = ("win_rate", "profit_factor", "avg_trade_pnl", "avg_trade_return")
        return dict.fromkeys((*keys, "best_trade_return", "worst_trade_return"), _NAN)
    pnl = np.array([float(t.pnl) for t in trades], dtype=np.float64)
    rets = np.array([t.return_fraction for t in trades], dtype=np.float64)
    gains = float(pnl[pnl > 0].sum())
    losses = float(-pnl[pnl < 0].sum())
    profit_factor = gains / losses if losses > 0 else math.inf if gains > 0 else _NAN
    return {
        "win_rate": float(np.count_nonzero(pnl > 0)) / pnl.size,
        "profit_factor": profit_factor,
        "avg_trade_pnl": float(pnl.mean()),
        "avg_trade_return": float(rets.mean()),
        "best_trade_return": float(rets.max()),
        "worst_trade_return": float(rets.min()),
    }


def _exposure(
    ts: IntArray, gross_exposure: npt.ArrayLike | None, trades: Sequence[TradeRecord]
) -> float:
    if ts.size == 0:
        return _NAN
    if gross_exposure is not None:
        gross = np.asarray(gross_exposure, dtype=np.float64)
        if gross.shape != ts.shape:
            raise ValueError("gross_exposure must have one value per bar")
        return float(np.count_nonzero(gross)) / ts.size
    entries = np.searchsorted(ts, [t.entry_ts_ns for t in trades])
    exits = np.searchsorted(ts, [t.exit_ts_ns for t in trades])
    open_count = np.zeros(ts.size + 1, dtype=np.int64)
    np.add.at(open_count, entries, 1)
    np.add.at(open_count, exits, -1)
    return float(np.count_nonzero(np.cumsum(open_count[:-1]) > 0)) / ts.size


def compute_metrics(
    ts_ns: npt.ArrayLike,
    equity: npt.ArrayLike,
    trades: Sequence[TradeRecord],
    *,
    periods_per_year: float | None = None,
    gross_exposure: npt.ArrayLike | None = None,
    traded_notional: float = 0.0,
    total_fees: float = 0.0,
    risk_free: float = 0.0,
    starting_equity: float | None = None,
) -> PerformanceMetrics:
    """Metrics of an equity curve (one value per bar, UTC ns labels) and its closed trades.

    * Returns are ``equity[1:] / equity[:-1] - 1`` (``n_bars - 1`` of them); the ratios match
      empyrical-reloaded with ``annualization=periods_per_year`` (inferred from ``ts_ns`` by
      :func:`infer_periods_per_year` when ``None``; NaN with fewer than two bars).
    * ``risk_free`` is a constant *per-period* return: subtracted for Sharpe and used as the
      Sortino required return, as empyrical's ``risk_free`` / ``required_return``. A flat
      excess-return series has an undefined (NaN) Sharpe.
    * ``exposure_fraction`` is the fraction of bars where ``gross_exposure`` is nonzero; without
      it, the fraction of bars inside a closed trade's ``[entry, exit)`` interval.
    * ``turnover`` is ``traded_notional / mean(equity)``.
    * ``total_return`` is measured from ``starting_equity`` (the account's cash before the first
      bar, so fees paid on the first bar count) or, when not given, from ``equity[0]``.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    eq = np.asarray(equity, dtype=np.float64)
    if ts.ndim != 1 or ts.shape != eq.shape:
        raise ValueError("ts_ns and equity must be 1-D arrays of the same length")
    n = int(eq.size)
    if periods_per_year is None:
        ppy = infer_periods_per_year(ts) if n >= 2 else _NAN
    else:
        ppy = float(periods_per_year)
        if not ppy > 0:
            raise ValueError("periods_per_year must be positive")
    with np.errstate(divide="ignore", invalid="ignore"):
        returns: FloatArray = eq[1:] / eq[:-1] - 1.0 if n >= 2 else np.empty(0, np.float64)
        stats = return_stats(returns, ppy, risk_free)
    dd_bars, dd_days = _drawdown_durations(ts, eq)
    if starting_equity is not None:
        start_eq = float(starting_equity)
    else:
        start_eq = float(eq[0]) if n else _NAN
    final_eq = float(eq[-1]) if n else _NAN
    mean_eq = float(eq.mean()) if n else _NAN
    return PerformanceMetrics(
        start_ns=int(ts[0]) if n else 0,
        end_ns=int(ts[-1]) if n else 0,
        n_bars=n,
        periods_per_year=ppy,
        starting_equity=start_eq,
        final_equity=final_eq,
        total_return=final_eq / start_eq - 1.0 if n and start_eq != 0 else _NAN,
        cagr=stats["cagr"],
        volatility=stats["volatility"],
        sharpe=stats["sharpe"],
        sortino=stats["sortino"],
        calmar=stats["calmar"],
        max_drawdown=stats["max_dd"],
        max_drawdown_duration_bars=dd_bars,
        max_drawdown_duration_days=dd_days,
        n_trades=len(trades),
        exposure_fraction=_exposure(ts, gross_exposure, trades),
        turnover=float(traded_notional) / mean_eq if n and mean_eq != 0 else _NAN,
        total_fees=float(total_fees),
        **_trade_stats(trades),
    )


__all__ = [
    "PerformanceMetrics",
    "compute_metrics",
    "drawdown_series",
    "infer_periods_per_year",
    "monthly_returns",
    "return_stats",
]
