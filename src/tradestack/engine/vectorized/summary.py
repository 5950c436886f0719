"""A vectorized run's sweep metrics without the Decimal ledger.

:meth:`BacktestResult.metrics` needs the closed trades and the fees, so on a
:class:`~tradestack.engine.vectorized.runner.VectorizedResult` it books every order and fill into
a Decimal portfolio first (about a second for 40,000 orders). :func:`sweep_metrics` gives the
same values for the metrics a sweep ranks by (:data:`SWEEP_FIELDS`):

* ``n_trades``, ``win_rate`` and ``total_fees`` come from the kernel's order table in one
  compiled pass. Round trips follow :class:`~tradestack.portfolio.trades.TradeTracker` on the
  whole-lot positions (flat → open → flat per instrument; a fill that flips the position closes
  one trade and opens the next, its fee split between them). A trade's gross PnL is
  ``direction × (exit value − entry value) × multiplier``: with average cost every entry's cost
  is removed by the time the position is flat again, so what :meth:`Position.apply` realizes
  adds up to exactly that, here counted in whole lot × tick units;
* whether a trade won is read from its float net PnL where that is farther from zero than a
  bound on the float error (the kernel's fees, the sums, the ledger's rounding of a flip's fee
  split); a trade without fees is decided on its exact integer PnL; if any trade is still
  undecided the ledger is rebuilt instead;
* the fees are ``Σ |lots| × ticks`` per instrument times its exact fee per lot × tick unit;
* the equity-curve ratios come from the functions :func:`compute_metrics` uses, on the same
  arrays (so equal bit for bit), leaving out what a sweep does not rank by (the drawdown
  durations, a third of its time on a million bars).
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np
from numba import njit

from tradestack.analytics.metrics import infer_periods_per_year, return_stats
from tradestack.core.orders import Liquidity
from tradestack.core.series import IntArray
from tradestack.engine.vectorized import kernel
from tradestack.engine.vectorized.runner import VectorizedResult
from tradestack.execution.costs import FeeModel

#: The :class:`~tradestack.analytics.metrics.PerformanceMetrics` fields :func:`sweep_metrics`
#: gives, each equal to what ``result.metrics()`` gives after the ledger rebuild.
SWEEP_FIELDS = (
    "n_bars",
    "periods_per_year",
    "starting_equity",
    "final_equity",
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "n_trades",
    "win_rate",
    "total_fees",
)

_EPS = 2.0**-52
#: Integer sums stay below this (float-checked), so they never overflow int64.
_SAFE = 2.0**61
#: Bound on how far the ledger's split of a flipping fill's fee (``pro_rata``, cut to 8 digits
#: finer than the fee's own) is from the exact split, as a fraction of that fee.
_SPLIT = 1e-8


@dataclass(frozen=True)
class TradeSummary:
    """Closed round trips of a run, how many made money net of fees, and the fees paid."""

    n_trades: int
    n_wins: int
    total_fees: float

    @property
    def win_rate(self) -> float:
        """Winning fraction of the closed trades (NaN without trades, like the metrics)."""
        return self.n_wins / self.n_trades if self.n_trades else float("nan")


@njit(cache=True)
def _round_trips(
    inst: np.ndarray,
    lots: np.ndarray,
    ticks: np.ndarray,
    fee: np.ndarray,
    unit: np.ndarray,
    free: np.ndarray,
    volume: np.ndarray,
) -> tuple[int, int, int, bool]:
    """Walk the fills (in booking order) through per-instrument round trips.

    Per fill: instrument, signed lots, price in ticks, the kernel's float fee. Per instrument:
    the float value of one lot at one tick (times the multiplier) and whether it trades without
    fees. Adds each instrument's ``Σ |lots| × ticks`` into ``volume``. Returns (closed trades,
    won, undecided, whether ``volume`` stayed exact).
    """
    n_inst = unit.shape[0]
    pos = np.zeros(n_inst, dtype=np.int64)
    # the open trade per instrument: direction (0: none), fills, entry and exit value in lot ×
    # tick units (exact, and as floats), its fees, Σ|fee parts| and Σ|fee| of the flipping fills
    direction = np.zeros(n_inst, dtype=np.int64)
    n_fills = np.zeros(n_inst, dtype=np.int64)
    entry = np.zeros(n_inst, dtype=np.int64)
    exit_ = np.zeros(n_inst, dtype=np.int64)
    entry_f = np.zeros(n_inst)
    exit_f = np.zeros(n_inst)
    fees = np.zeros(n_inst)
    fee_abs = np.zeros(n_inst)
    split_abs = np.zeros(n_inst)
    volume_f = np.zeros(n_inst)
    trades = wins = undecided = 0
    for f in range(inst.shape[0]):
        k, q, t = inst[f], lots[f], ticks[f]
        size = abs(q)
        volume[k] += size * t
        volume_f[k] += float(size) * t
        before = pos[k]
        pos[k] = before + q
        if direction[k] == 0:
            direction[k] = 1 if q > 0 else -1
        closing = min(abs(before), size) if before != 0 and (before > 0) != (q > 0) else 0
        opening = size - closing
        n_fills[k] += 1
        fee_close = 0.0
        if closing:
            fee_close = fee[f] if not opening else fee[f] * closing / size
            exit_[k] += closing * t
            exit_f[k] += float(closing) * t
            fees[k] += fee_close
            fee_abs[k] += abs(fee_close)
            if opening:
                split_abs[k] += abs(fee[f])
        if pos[k] == 0 or (closing and opening):
            trades += 1
            pnl = direction[k] * (exit_f[k] - entry_f[k]) * unit[k] - fees[k]
            # first-order float error of the sums (n_fills terms each) and products, and the
            # ledger's cut of a flipping fill's fee
            tol = 4.0 * (n_fills[k] + 16) * _EPS * ((exit_f[k] + entry_f[k]) * unit[k] + fee_abs[k])
            tol += _SPLIT * split_abs[k]
            if pnl > tol:
                wins += 1
            elif pnl >= -tol:
                if free[k] and max(entry_f[k], exit_f[k]) < _SAFE:
                    wins += direction[k] * (exit_[k] - entry[k]) > 0
                else:
                    undecided += 1
            direction[k] = 0 if pos[k] == 0 else (1 if q > 0 else -1)
            n_fills[k] = 1 if opening else 0
            entry[k] = exit_[k] = 0
            entry_f[k] = exit_f[k] = fees[k] = fee_abs[k] = 0.0
            split_abs[k] = abs(fee[f]) if opening else 0.0
        if opening:
            entry[k] += opening * t
            entry_f[k] += float(opening) * t
            fees[k] += fee[f] - fee_close
            fee_abs[k] += abs(fee[f] - fee_close)
    return trades, wins, undecided, bool(np.all(volume_f < _SAFE))


def trade_summary(result: VectorizedResult) -> TradeSummary | None:
    """Closed trades, wins and total fees from the kernel's fills, equal to the rebuilt
    ledger's; None when a trade's net PnL is too close to zero to call in floats."""
    raw, engine = result._raw, result._engine
    filled = np.flatnonzero(raw.o_status == kernel.FILLED)
    filled = filled[np.argsort(raw.o_end[filled], kind="stable")]  # the ledger's booking order
    instruments = [engine.instruments[i] for i in raw.ids]
    fees = FeeModel(engine.config.maker_fee_bps, engine.config.taker_fee_bps)
    # per instrument: the value of one lot at one tick, and the fee on it (both exact)
    units = [
        Fraction(i.lot_size) * Fraction(i.tick_size) * Fraction(i.multiplier) for i in instruments
    ]
    rates = [Fraction(fees.fee(i, Decimal(1), Liquidity.TAKER)) for i in instruments]
    inst, lots, ticks = (
        np.ascontiguousarray(a[filled]) for a in (raw.o_inst, raw.o_lots, raw.o_ticks)
    )
    volume = np.zeros(len(instruments), dtype=np.int64)
    n_trades, n_wins, undecided, exact = _round_trips(
        inst,
        lots,
        ticks,
        np.ascontiguousarray(raw.o_fee[filled]),
        np.array([float(u) for u in units]),
        np.array([r == 0 for r in rates]),
        volume,
    )
    if undecided:
        return None
    volumes = [int(v) for v in volume]
    if not exact:  # Σ |lots| × ticks past int64: again in Python integers
        volumes = [0] * len(instruments)
        for k, size, price in zip(
            inst.tolist(), np.abs(lots).tolist(), ticks.tolist(), strict=True
        ):
            volumes[k] += size * price
    total = sum((v * u * r for v, u, r in zip(volumes, units, rates, strict=True)), Fraction(0))
    return TradeSummary(int(n_trades), int(n_wins), float(total))


def sweep_metrics(result: VectorizedResult) -> dict[str, int | float | None]:
    """The :data:`SWEEP_FIELDS` of ``result.metrics().to_dict()`` (NaN and ±inf as None),
    computed without rebuilding the ledger unless a trade's sign cannot be told in floats."""
    summary = trade_summary(result)
    ppy = result.periods_per_year
    if summary is None or not (ppy is None or ppy > 0):
        full = result.metrics().to_dict()
        return {k: full[k] for k in SWEEP_FIELDS}
    equity = np.asarray(result.equity, dtype=np.float64)
    n = len(equity)
    if ppy is None:
        ppy = _inferred_periods_per_year(result.ts_ns) if n >= 2 else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        returns = np.divide(equity[1:], equity[:-1])
        returns -= 1.0
        stats = return_stats(returns, float(ppy), 0.0)
    start = float(result._engine.starting_cash)
    final = float(equity[-1]) if n else math.nan
    values: dict[str, int | float] = {
        "n_bars": n,
        "periods_per_year": float(ppy),
        "starting_equity": start,
        "final_equity": final,
        "total_return": final / start - 1.0 if n and start != 0 else math.nan,
        "cagr": stats["cagr"],
        "volatility": stats["volatility"],
        "sharpe": stats["sharpe"],
        "sortino": stats["sortino"],
        "calmar": stats["calmar"],
        "max_drawdown": stats["max_dd"],
        "n_trades": summary.n_trades,
        "win_rate": summary.win_rate,
        "total_fees": summary.total_fees,
    }
    return {
        k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in values.items()
    }


_PPY: dict[int, tuple[weakref.ref[IntArray], float]] = {}


def _inferred_periods_per_year(ts: IntArray) -> float:
    """:func:`infer_periods_per_year`, remembered for the last timestamp array: a sweep's
    variants on one bar file share it (a single feed's result keeps the feed's array)."""
    hit = _PPY.get(id(ts))
    if hit is not None and hit[0]() is ts:
        return hit[1]
    ppy = infer_periods_per_year(ts)
    _PPY.clear()
    _PPY[id(ts)] = (weakref.ref(ts), ppy)
    return ppy
