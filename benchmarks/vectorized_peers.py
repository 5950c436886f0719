"""Peers of the vectorized-runner benchmark: vectorbt and a bare numba loop.

Importable from the project venv (the bare numba loop) and runnable as a script, also from
``.venv-vbt`` (vectorbt 1.2 needs pandas >= 3, the project venv pins pandas 2.x), with no
tradestack import. Every mode reads the bars from a Parquet file (``timestamp, open, high, low,
close, volume``) and prints one ``BENCH_RESULT {json}`` line::

    python benchmarks/vectorized_peers.py bare-single   BARS.parquet [--repeat 3]
    python benchmarks/vectorized_peers.py vbt-single    BARS.parquet [--repeat 3]
    python benchmarks/vectorized_peers.py bare-sweep    BARS.parquet --combos 1000
    python benchmarks/vectorized_peers.py vbt-sweep     BARS.parquet --combos 1000 [--chunk 50]

Workload (as ``bench_vectorized.py``): long-only SMA(fast)/SMA(slow) cross on close; a strict
cross up targets ``FRACTION`` of equity, a strict cross down targets 0; the decision is taken at
the bar's close and filled at the next bar's open moved against the order by ``SLIP_BPS``, with a
taker fee of ``FEE_BPS`` on the notional; ``CASH`` to start.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import numpy as np
from numba import njit, prange

FAST, SLOW = 10, 30
FRACTION = 0.95
FEE_BPS = 1.0
SLIP_BPS = 1.0
CASH = 100_000.0
RESULT_TAG = "BENCH_RESULT "
SLOWS = (120, 140, 160, 180, 200, 220, 240, 260, 280, 300)


def combo_grid(n: int) -> list[tuple[int, int]]:
    """``n`` (fast, slow) pairs: fast 5, 6, ... crossed with the 10 ``SLOWS`` (fast-major)."""
    n_fast = -(-n // len(SLOWS))
    pairs = [(f, s) for f in range(5, 5 + n_fast) for s in SLOWS]
    return pairs[:n]


def read_bars(path: str) -> dict[str, np.ndarray]:
    """The Parquet bars as float64 arrays (``open``, ``close``) via pyarrow."""
    import pyarrow.parquet as pq

    table = pq.read_table(path, columns=["open", "close"])
    return {
        name: np.ascontiguousarray(table.column(name).to_numpy(), dtype=np.float64)
        for name in ("open", "close")
    }


# --------------------------------------------------------------------------- bare numba loop


@njit(cache=True, fastmath=False)
def bare_sma_cross(
    opens: np.ndarray,
    closes: np.ndarray,
    fast: int,
    slow: int,
    fraction: float,
    fee: float,
    slip: float,
    cash0: float,
) -> tuple[float, int, int]:
    """SMA cross signals and position/cash update in one pass (the practical lower bound).

    Running sums for both SMAs; at a strict cross the target is ``floor(w * equity / close)``
    whole units, filled at the next open times ``1 +/- slip`` with ``fee`` times the notional.
    Returns (final equity at the last close, closed trades, filled orders).
    """
    n = closes.shape[0]
    cash = cash0
    pos = 0
    pending = 0  # units to trade at the next open
    sum_f = 0.0
    sum_s = 0.0
    prev_f = np.nan
    prev_s = np.nan
    trades = 0
    fills = 0
    for i in range(n):
        if pending != 0:
            buy = pending > 0
            price = opens[i] * (1.0 + slip if buy else 1.0 - slip)
            notional = abs(pending) * price
            cash += (-notional if buy else notional) - notional * fee
            was = pos
            pos += pending
            if was > 0 and pos == 0:
                trades += 1
            fills += 1
            pending = 0
        c = closes[i]
        sum_f += c
        sum_s += c
        if i >= fast:
            sum_f -= closes[i - fast]
        if i >= slow:
            sum_s -= closes[i - slow]
        f = sum_f / fast if i >= fast - 1 else np.nan
        s = sum_s / slow if i >= slow - 1 else np.nan
        w = np.nan
        if prev_f < prev_s and f > s:
            w = fraction
        elif prev_f > prev_s and f < s:
            w = 0.0
        prev_f = f
        prev_s = s
        if w == w:
            equity = cash + pos * c
            target = math.floor(w * equity / c)
            pending = target - pos
    return cash + pos * closes[n - 1], trades, fills


@njit(cache=True, parallel=True)
def bare_sweep(
    opens: np.ndarray,
    closes: np.ndarray,
    fasts: np.ndarray,
    slows: np.ndarray,
    fraction: float,
    fee: float,
    slip: float,
    cash0: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`bare_sma_cross` for every (fast, slow) pair, pairs spread over the cores."""
    m = fasts.shape[0]
    equity = np.empty(m)
    trades = np.empty(m, dtype=np.int64)
    fills = np.empty(m, dtype=np.int64)
    for k in prange(m):
        e, t, f = bare_sma_cross(opens, closes, fasts[k], slows[k], fraction, fee, slip, cash0)
        equity[k] = e
        trades[k] = t
        fills[k] = f
    return equity, trades, fills


def bare_single(bars: dict[str, np.ndarray], fast: int = FAST, slow: int = SLOW) -> Any:
    return bare_sma_cross(
        bars["open"], bars["close"], fast, slow, FRACTION, FEE_BPS / 1e4, SLIP_BPS / 1e4, CASH
    )


def run_bare_single(path: str, repeat: int) -> dict[str, Any]:
    bars = read_bars(path)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        equity, trades, fills = bare_single(bars)
        times.append(time.perf_counter() - t0)
    return {
        "run_s": min(times),
        "first_s": times[0],
        "n_bars": len(bars["close"]),
        "n_trades": int(trades),
        "n_fills": int(fills),
        "final_equity": float(equity),
    }


def run_bare_sweep(path: str, combos: int) -> dict[str, Any]:
    bars = read_bars(path)
    pairs = combo_grid(combos)
    fasts = np.array([p[0] for p in pairs], dtype=np.int64)
    slows = np.array([p[1] for p in pairs], dtype=np.int64)
    args = (FRACTION, FEE_BPS / 1e4, SLIP_BPS / 1e4, CASH)
    bare_sweep(bars["open"][:1000], bars["close"][:1000], fasts[:2], slows[:2], *args)  # warm
    t0 = time.perf_counter()
    equity, trades, fills = bare_sweep(bars["open"], bars["close"], fasts, slows, *args)
    run_s = time.perf_counter() - t0
    return {
        "run_s": run_s,
        "n_bars": len(bars["close"]),
        "combos": len(pairs),
        "equity": equity.tolist(),
        "trades": trades.tolist(),
        "fills": fills.tolist(),
    }


# --------------------------------------------------------------------------- vectorbt


def _vbt_portfolio(vbt: Any, pd: Any, close: Any, open_: Any, entries: Any, exits: Any) -> Any:
    """Signals decided at bar i's close fill at bar i+1's open: shift them one bar and use
    ``price=open``; ``size_type='percent'`` of the cash (vectorbt sizes at the fill price),
    whole units (``size_granularity=1``), fee and slippage as fractions of the price."""
    return vbt.Portfolio.from_signals(
        close,
        entries.shift(1, fill_value=False),
        exits.shift(1, fill_value=False),
        price=open_,
        size=FRACTION,
        size_type="percent",
        size_granularity=1.0,
        fees=FEE_BPS / 1e4,
        slippage=SLIP_BPS / 1e4,
        init_cash=CASH,
        direction="longonly",
        freq="1min",
    )


def _vbt_frame(pd: Any, path: str) -> tuple[Any, Any]:
    """close and open as float64 Series on a tz-naive DatetimeIndex (pandas 3 would otherwise
    hand vectorbt Arrow-backed columns, which it converts on every call)."""
    frame = pd.read_parquet(path, columns=["timestamp", "open", "close"])
    index = pd.DatetimeIndex(frame["timestamp"].to_numpy(dtype="datetime64[ns]"))
    return tuple(
        pd.Series(frame[name].to_numpy(dtype=np.float64), index=index, name=name)
        for name in ("close", "open")
    )


def run_vbt_single(path: str, repeat: int) -> dict[str, Any]:
    import pandas as pd
    import vectorbt as vbt

    close, open_ = _vbt_frame(pd, path)
    times = []
    pf = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        fast_ma = vbt.MA.run(close, FAST, short_name="fast")
        slow_ma = vbt.MA.run(close, SLOW, short_name="slow")
        entries = fast_ma.ma_crossed_above(slow_ma)
        exits = fast_ma.ma_crossed_below(slow_ma)
        pf = _vbt_portfolio(vbt, pd, close, open_, entries, exits)
        final = float(pf.final_value())
        times.append(time.perf_counter() - t0)
    assert pf is not None
    return {
        "run_s": min(times),
        "first_s": times[0],
        "n_bars": len(close),
        "n_trades": int(pf.trades.closed.count()),
        "n_fills": int(pf.orders.count()),
        "final_equity": final,
        "vectorbt": vbt.__version__,
    }


def run_vbt_sweep(path: str, combos: int, chunk: int) -> dict[str, Any]:
    """``vbt.MA.run`` with per-column window lists (parameter broadcasting) and 2-D signals into
    one ``from_signals`` per chunk of ``chunk`` combinations (bounds memory)."""
    import pandas as pd
    import vectorbt as vbt

    close, open_ = _vbt_frame(pd, path)
    pairs = combo_grid(combos)
    # warm the compiled functions on a small slice (JIT of a fresh process is not the sweep)
    small_f = vbt.MA.run(close.iloc[:2000], [5, 6], short_name="fast")
    small_s = vbt.MA.run(close.iloc[:2000], [20, 30], short_name="slow")
    _vbt_portfolio(
        vbt,
        pd,
        close.iloc[:2000],
        open_.iloc[:2000],
        small_f.ma_crossed_above(small_s),
        small_f.ma_crossed_below(small_s),
    ).final_value()
    equity: list[float] = []
    trades: list[int] = []
    t0 = time.perf_counter()
    for start in range(0, len(pairs), chunk):
        part = pairs[start : start + chunk]
        fast_ma = vbt.MA.run(close, [p[0] for p in part], short_name="fast")
        slow_ma = vbt.MA.run(close, [p[1] for p in part], short_name="slow")
        entries = fast_ma.ma_crossed_above(slow_ma)
        exits = fast_ma.ma_crossed_below(slow_ma)
        pf = _vbt_portfolio(vbt, pd, close, open_, entries, exits)
        equity.extend(float(v) for v in np.asarray(pf.final_value()))
        trades.extend(int(v) for v in np.asarray(pf.trades.closed.count()))
        del pf, entries, exits, fast_ma, slow_ma
    run_s = time.perf_counter() - t0
    return {
        "run_s": run_s,
        "n_bars": len(close),
        "combos": len(pairs),
        "chunk": chunk,
        "equity": equity,
        "trades": trades,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="vectorbt / bare numba peers")
    parser.add_argument("mode", choices=["bare-single", "vbt-single", "bare-sweep", "vbt-sweep"])
    parser.add_argument("parquet")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--combos", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=50)
    args = parser.parse_args(argv)
    if args.mode == "bare-single":
        out = run_bare_single(args.parquet, args.repeat)
    elif args.mode == "vbt-single":
        out = run_vbt_single(args.parquet, args.repeat)
    elif args.mode == "bare-sweep":
        out = run_bare_sweep(args.parquet, args.combos)
    else:
        out = run_vbt_sweep(args.parquet, args.combos, args.chunk)
    print(RESULT_TAG + json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
