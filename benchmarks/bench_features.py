"""Feature benchmark: technical and microstructure features, batch and incremental, against TA-Lib
and pandas in the same run.

Workloads (built before any timing; nothing here is timed but the feature calls):

1. **Bars.** ``--bars`` (default 1,000,000) deterministic OHLCV bars resampled from the real AAPL
   daily bars in ``examples/data/AAPL_2012-2014_daily.csv``: the 753 daily close-to-close log
   returns, demeaned, are tiled in blocks, each block a fixed-seed permutation of all 753 (so the
   price walk returns to its start after every block and stays in a realistic range); each bar
   takes its open gap, high/low excursions and volume from the same real day as its return.
   Per indicator TA-Lib has (SMA, EMA, RSI, MACD, BBANDS, ATR, ROCP, z-score from SMA+STDDEV) our
   batch function runs against ``talib`` on the same arrays and the idiomatic pandas form
   (``rolling``/``ewm``; not bit-identical: pandas' EWMs are not seeded with an SMA, so their
   diffs are measured after ``PANDAS_SKIP`` warm-up bars); rolling volatility has no TA-Lib
   form. Then the whole technical set through ``FeatureSet.batch`` against the sum of the direct
   calls, and the same set through ``FeatureSet.incremental().update(row)`` over ``--inc-bars``
   bars (µs per event), and each incremental class alone (µs per update).
2. **L2.** The recorded Binance USD-M BTCUSDT session of 2024-08-08 (shared data; the bundled
   2023-04-05 recording if that is absent) sampled by ``sample_book`` every 10 ms, top 5 levels.
   The microstructure + technical-on-mid feature set runs incrementally over every step, and in
   batch over the steps tiled to ``--l2-steps`` (default ~1M; the book's warm-up steps before
   both sides exist are dropped before tiling). Per feature our batch function runs against a
   vectorized pandas form of the same formula where one is natural (VPIN has none).

Before timing, batch and incremental outputs of both feature sets are compared (max |Δ| and
NaN-pattern mismatches), so the timings are of equal results. Timings are best of ``--repeat``
interleaved rounds (ours, TA-Lib, pandas in turn); a fast call is looped so one sample lasts at
least ``MIN_SAMPLE_S``. The workload's objects are frozen out of the garbage collector
(``gc.freeze``) once built, so its collections see only what the code under test allocates, as
in a live process. Usage::

    .venv/bin/python benchmarks/bench_features.py [--quick] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import math
import os
import pstats
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import talib

from features_inputs import (
    AAPL_CSV,
    DEPTH,
    INTERVAL_NS,
    SEED,
    load_steps,
    pd_atr,
    pd_bbands,
    pd_logvol,
    pd_macd,
    pd_rsi,
    pd_zscore,
    rows_of,
    synth_bars,
    ta_zscore,
    tiled,
)
from tradestack.features import indicators, microstructure, technical
from tradestack.features.featureset import FeatureSet
from tradestack.features.registry import BAR_COLUMNS, BOOK_COLUMNS, KINDS

PANDAS_SKIP = 1_000
MIN_SAMPLE_S = 0.05  # --quick: 0.01
GOAL_BATCH_RATIO = 1.5
GOAL_INCREMENTAL_US = 20.0

BAR_CONFIG: dict[str, dict[str, Any]] = {
    "sma": {"kind": "sma", "period": 20},
    "ema": {"kind": "ema", "period": 20},
    "rsi": {"kind": "rsi", "period": 14},
    "macd": {"kind": "macd", "output": "line"},
    "macd_signal": {"kind": "macd", "output": "signal"},
    "macd_hist": {"kind": "macd", "output": "histogram"},
    "bb_upper": {"kind": "bollinger", "period": 20, "output": "upper"},
    "bb_middle": {"kind": "bollinger", "period": 20, "output": "middle"},
    "bb_lower": {"kind": "bollinger", "period": 20, "output": "lower"},
    "atr": {"kind": "atr", "period": 14},
    "ret": {"kind": "returns", "period": 1},
    "z": {"kind": "zscore", "period": 20},
    "vol": {"kind": "rolling_volatility", "period": 20},
}
TALIB_BAR_KINDS = {"sma", "ema", "rsi", "macd", "bollinger", "atr", "returns", "zscore"}

L2_CONFIG: dict[str, dict[str, Any]] = {
    "spread": {"kind": "spread_bps"},
    "imb5": {"kind": "book_imbalance", "levels": 5},
    "micro": {"kind": "microprice"},
    "micro_dev": {"kind": "microprice_dev_bps"},
    "vwap": {"kind": "vwap", "window": 100},
    "vwap_dev": {"kind": "vwap_deviation", "window": 100},
    "flow": {"kind": "trade_flow_imbalance", "window": 100},
    "rv": {"kind": "realized_volatility", "window": 100},
    "vpin": {"kind": "vpin", "bucket_volume": 5.0, "n_buckets": 50},
    "kyle": {"kind": "kyle_lambda", "window": 100},
    "sma_fast": {"kind": "sma", "input": "mid", "period": 3},
    "sma_slow": {"kind": "sma", "input": "mid", "period": 6},
    "rsi": {"kind": "rsi", "input": "mid", "period": 14},
    "vol": {"kind": "rolling_volatility", "input": "mid", "period": 50},
}

Fn = Callable[[], Any]


# -- timing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timing:
    """Best of ``repeat`` samples; a fast call is looped so one sample lasts ``min_s``."""

    repeat: int = 3
    min_s: float = MIN_SAMPLE_S


def measure(fns: Sequence[Fn | None], tm: Timing) -> list[float | None]:
    """Best seconds per call of each function over ``repeat`` interleaved rounds (after one
    warm-up call each, which also sets how many calls one sample loops over)."""
    loops: list[int] = []
    for fn in fns:
        if fn is None:
            loops.append(0)
            continue
        start = time.perf_counter()
        fn()
        once = time.perf_counter() - start
        loops.append(max(1, math.ceil(tm.min_s / max(once, 1e-9))))
    best = [math.inf] * len(fns)
    for _ in range(tm.repeat):
        for i, fn in enumerate(fns):
            if fn is None:
                continue
            gc.collect(0)
            start = time.perf_counter()
            for _ in range(loops[i]):
                fn()
            best[i] = min(best[i], (time.perf_counter() - start) / loops[i])
    return [b if fn is not None else None for b, fn in zip(best, fns, strict=True)]


def time_loop(update: Callable[..., Any], args: Sequence[Any], spread: bool) -> float:
    """Seconds for one pass of ``update`` over ``args`` (garbage collector on)."""
    gc.collect(0)
    start = time.perf_counter()
    if spread:
        for a in args:
            update(*a)
    else:
        for a in args:
            update(a)
    return time.perf_counter() - start


def time_incremental(fs: FeatureSet, rows: Sequence[Any], tm: Timing) -> float:
    """Best µs per event of a fresh ``fs.incremental().update`` over ``rows``."""
    best = min(time_loop(fs.incremental().update, rows, False) for _ in range(tm.repeat))
    return best / len(rows) * 1e6


@dataclass
class Row:
    """One line of a batch table: seconds, ratios and the largest differences."""

    what: str
    ours: float | None
    talib: float | None
    pandas: float | None
    d_talib: float | None = None
    d_pandas: float | None = None


def parts(x: Any) -> list[np.ndarray]:
    """A result as a list of float arrays (multi-output tuples, pandas objects)."""
    if isinstance(x, tuple | list):
        return [p for item in x for p in parts(item)]
    if isinstance(x, pd.DataFrame):
        return [x[c].to_numpy(np.float64) for c in x.columns]
    if isinstance(x, pd.Series):
        return [x.to_numpy(np.float64)]
    return [np.asarray(x, dtype=np.float64)]


def max_diff(a: Any, b: Any, skip: int = 0) -> float:
    """Largest ``|a - b| / max(1, |a|)`` where both are finite, from index ``skip`` on (over every
    output)."""
    worst = 0.0
    for x, y in zip(parts(a), parts(b), strict=True):
        x, y = x[skip:], y[skip:]
        both = np.isfinite(x) & np.isfinite(y)
        if both.any():
            rel = np.abs(x[both] - y[both]) / np.maximum(1.0, np.abs(x[both]))
            worst = max(worst, float(np.max(rel)))
    return worst


def bench_case(
    what: str, ours: Fn, ta: Fn | None, pdf: Fn | None, tm: Timing, skip: int = PANDAS_SKIP
) -> Row:
    ref = ours()
    d_ta = max_diff(ref, ta()) if ta else None
    d_pd = max_diff(ref, pdf(), skip) if pdf else None
    t_ours, t_ta, t_pd = measure([ours, ta, pdf], tm)
    return Row(what, t_ours, t_ta, t_pd, d_ta, d_pd)


def calls(*fns: Fn) -> Fn:
    """One function that makes every call of ``fns`` (a set's sum of direct calls)."""

    def run() -> list[Any]:
        return [fn() for fn in fns]

    return run


# -- workload 1: bars ------------------------------------------------------------------------


def bar_fns(
    bars: Mapping[str, np.ndarray],
) -> tuple[list[tuple[str, str, Fn]], dict[str, Fn], dict[str, Fn]]:
    """Per indicator: (kind, label, ours), and TA-Lib's and pandas' forms by kind."""
    c, h, lo = bars["close"], bars["high"], bars["low"]
    s = pd.Series(c)
    df = pd.DataFrame(bars)
    ta: dict[str, Fn] = {
        "sma": lambda: talib.SMA(c, timeperiod=20),
        "ema": lambda: talib.EMA(c, timeperiod=20),
        "rsi": lambda: talib.RSI(c, timeperiod=14),
        "macd": lambda: talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9),
        "bollinger": lambda: talib.BBANDS(c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0),
        "atr": lambda: talib.ATR(h, lo, c, timeperiod=14),
        "returns": lambda: talib.ROCP(c, timeperiod=1),
        "zscore": lambda: ta_zscore(c, 20),
    }
    pdf: dict[str, Fn] = {
        "sma": lambda: s.rolling(20).mean(),
        "ema": lambda: s.ewm(span=20, adjust=False).mean(),
        "rsi": lambda: pd_rsi(s, 14),
        "macd": lambda: pd_macd(s),
        "bollinger": lambda: pd_bbands(s, 20),
        "atr": lambda: pd_atr(df, 14),
        "returns": lambda: s.pct_change(1),
        "zscore": lambda: pd_zscore(s, 20),
        "rolling_volatility": lambda: pd_logvol(s, 20),
    }
    ours: list[tuple[str, str, Fn]] = [
        ("sma", "SMA(20)", lambda: indicators.sma(c, 20)),
        ("ema", "EMA(20)", lambda: indicators.ema(c, 20)),
        ("rsi", "RSI(14)", lambda: technical.rsi(c, 14)),
        ("macd", "MACD(12,26,9)", lambda: technical.macd(c)),
        ("bollinger", "BBANDS(20,2)", lambda: technical.bollinger(c, 20)),
        ("atr", "ATR(14)", lambda: technical.atr(h, lo, c, 14)),
        ("returns", "returns(1) / ROCP", lambda: technical.returns(c, 1)),
        ("zscore", "zscore(20) / SMA+STDDEV", lambda: technical.zscore(c, 20)),
        ("rolling_volatility", "rolling_volatility(20)", lambda: technical.rolling_volatility(c)),
    ]
    return ours, ta, pdf


def fixed_costs(bars: Mapping[str, np.ndarray], tm: Timing) -> str:
    """Per-call cost of ours and TA-Lib on 100 bars: our wrappers' fixed overhead."""
    small = {k: np.ascontiguousarray(v[:100]) for k, v in bars.items()}
    ours, ta, _ = bar_fns(small)
    cells = []
    for kind, _, fn in ours:
        if kind in ta:
            t_ours, t_ta = (t or 0.0 for t in measure([fn, ta[kind]], Timing(tm.repeat, 0.01)))
            cells.append(f"{kind} {t_ours * 1e6:.1f}/{t_ta * 1e6:.1f}")
    return "per-call cost on 100 bars, µs ours/TA-Lib: " + ", ".join(cells)


def bar_cases(bars: Mapping[str, np.ndarray], tm: Timing) -> list[Row]:
    ours, ta, pdf = bar_fns(bars)
    rows = [bench_case(label, fn, ta.get(k), pdf.get(k), tm) for k, label, fn in ours]
    frame = dict(bars)
    ta_cfg = {k: v for k, v in BAR_CONFIG.items() if v["kind"] in TALIB_BAR_KINDS}
    fs_ta = FeatureSet.from_config(ta_cfg, BAR_COLUMNS)
    fs_all = FeatureSet.from_config(BAR_CONFIG, BAR_COLUMNS)
    rows.append(
        Row(
            f"FeatureSet.batch, TA-Lib kinds ({len(ta_cfg)} feat.)",
            *measure(
                [
                    lambda: fs_ta.batch(frame),
                    calls(*ta.values()),
                    calls(*(f for k, f in pdf.items() if k in TALIB_BAR_KINDS)),
                ],
                tm,
            ),
        )
    )
    t_all, t_pd_all = measure([lambda: fs_all.batch(frame), calls(*pdf.values())], tm)
    rows.append(
        Row(f"FeatureSet.batch, all kinds ({len(BAR_CONFIG)} feat.)", t_all, None, t_pd_all)
    )
    return rows


# -- workload 2: L2 --------------------------------------------------------------------------


def l2_cases(cols: Mapping[str, np.ndarray], tm: Timing) -> list[Row]:
    bid, ask, bsz, asz = cols["bid"], cols["ask"], cols["bid_size"], cols["ask_size"]
    mid, bq, sq = cols["mid"], cols["buy_qty"], cols["sell_qty"]
    bn, sn = cols["buy_notional"], cols["sell_notional"]
    levels_b, levels_a = cols["bid_sz"], cols["ask_sz"]
    p = pd.DataFrame({"bid": bid, "ask": ask, "bsz": bsz, "asz": asz, "mid": mid, "bq": bq,
                      "sq": sq, "bn": bn, "sn": sn})  # fmt: skip
    lb, la = pd.DataFrame(levels_b), pd.DataFrame(levels_a)
    w = 100

    def pd_spread() -> pd.Series:
        m = (p.bid + p.ask) * 0.5
        return (p.ask - p.bid) / m * 1e4

    def pd_imb() -> pd.Series:
        b, a = lb.iloc[:, :5].sum(axis=1), la.iloc[:, :5].sum(axis=1)
        return (b - a) / (b + a)

    def pd_micro() -> pd.Series:
        return (p.bid * p.asz + p.ask * p.bsz) / (p.asz + p.bsz)

    def pd_micro_dev() -> pd.Series:
        m = (p.bid + p.ask) * 0.5
        return (pd_micro() - m) / m * 1e4

    def pd_vwap() -> pd.Series:
        return (p.bn + p.sn).rolling(w).sum() / (p.bq + p.sq).rolling(w).sum()

    def pd_vwap_dev() -> pd.Series:
        vw = pd_vwap()
        return (p.mid - vw) / vw

    def pd_flow() -> pd.Series:
        b, s = p.bq.rolling(w).sum(), p.sq.rolling(w).sum()
        return (b - s) / (b + s)

    def pd_rv() -> pd.Series:
        return np.sqrt((np.log(p.mid).diff() ** 2).rolling(w).sum())

    def pd_kyle() -> pd.Series:
        q, dm = p.bq - p.sq, p.mid.diff()
        return q.rolling(w).cov(dm) / q.rolling(w).var()

    m = microstructure
    cases: list[tuple[str, Fn, Fn | None, Fn | None]] = [
        ("spread_bps", lambda: m.spread_bps(bid, ask), None, pd_spread),
        ("book_imbalance(5)", lambda: m.book_imbalance(levels_b, levels_a, 5), None, pd_imb),
        ("microprice", lambda: m.microprice(bid, bsz, ask, asz), None, pd_micro),
        ("microprice_dev_bps", lambda: m.microprice_dev_bps(bid, bsz, ask, asz), None,
         pd_micro_dev),
        ("vwap(100)", lambda: m.vwap(bq, sq, bn, sn, w), None, pd_vwap),
        ("vwap_deviation(100)", lambda: m.vwap_deviation(mid, bq, sq, bn, sn, w), None,
         pd_vwap_dev),
        ("trade_flow_imbalance(100)", lambda: m.trade_flow_imbalance(bq, sq, w), None, pd_flow),
        ("realized_volatility(100)", lambda: m.realized_volatility(mid, w), None, pd_rv),
        ("vpin(5.0, 50) [no pandas form]", lambda: m.vpin(bq, sq, 5.0, 50), None, None),
        ("kyle_lambda(100)", lambda: m.kyle_lambda(mid, bq, sq, w), None, pd_kyle),
        ("sma(mid, 3)", lambda: indicators.sma(mid, 3), lambda: talib.SMA(mid, timeperiod=3),
         lambda: p.mid.rolling(3).mean()),
        ("sma(mid, 6)", lambda: indicators.sma(mid, 6), lambda: talib.SMA(mid, timeperiod=6),
         lambda: p.mid.rolling(6).mean()),
        ("rsi(mid, 14)", lambda: technical.rsi(mid, 14), lambda: talib.RSI(mid, timeperiod=14),
         lambda: pd_rsi(p.mid, 14)),
        ("rolling_volatility(mid, 50)", lambda: technical.rolling_volatility(mid, 50), None,
         lambda: pd_logvol(p.mid, 50)),
    ]  # fmt: skip
    rows = [bench_case(what, o, t, f, tm) for what, o, t, f in cases]
    fs = FeatureSet.from_config(L2_CONFIG, BOOK_COLUMNS)
    pd_all = calls(*(f for _, _, _, f in cases if f is not None))
    t_fs, t_pd = measure([lambda: fs.batch(cols), pd_all], tm)
    rows.append(Row(f"FeatureSet.batch, whole set ({len(L2_CONFIG)} feat.)*", t_fs, None, t_pd))
    return rows


# -- incremental -----------------------------------------------------------------------------


def agreement(fs: FeatureSet, columns: Mapping[str, np.ndarray], rows: Sequence[Any]) -> str:
    """Largest |batch - incremental| and NaN-pattern mismatches over every feature."""
    batch = fs.batch(columns)
    upd = fs.incremental().update
    inc = np.array([upd(r) for r in rows], dtype=np.float64)
    worst, worst_name, nan_bad = 0.0, "-", []
    for j, name in enumerate(fs.names):
        b, i = batch[name], inc[:, j]
        both = np.isfinite(b) & np.isfinite(i)
        if both.any():
            d = float(np.max(np.abs(b[both] - i[both]) / np.maximum(1.0, np.abs(b[both]))))
            if d > worst:
                worst, worst_name = d, name
        bad = int(np.count_nonzero(np.isnan(b) != np.isnan(i)))
        if bad:
            nan_bad.append(f"{name}: {bad}")
    nan_txt = ", ".join(nan_bad) if nan_bad else "none"
    return (
        f"batch vs incremental over {len(rows):,} steps, {len(fs.names)} features: max "
        f"|Δ|/max(1,|x|) = {worst:.1e} ({worst_name}); NaN-pattern mismatches: {nan_txt}"
    )


def class_timings(
    config: Mapping[str, Mapping[str, Any]], base: Sequence[str], rows: Sequence[Any], tm: Timing
) -> list[tuple[str, float]]:
    """µs per update of each distinct incremental class of ``config`` alone, fed the same row
    values the feature set gives it (arguments extracted before timing)."""
    seen: set[tuple[Any, ...]] = set()
    out: list[tuple[str, float]] = []
    for entry in config.values():
        kind = KINDS[entry["kind"]]
        params = {k: v for k, v in entry.items() if k not in ("kind", "input", "inputs", "output")}
        names = list(kind.defaults)
        if "input" in entry:
            names[0] = entry["input"]
        key = (kind.name, tuple(sorted(params.items())), tuple(names))
        if key in seen:
            continue
        seen.add(key)
        idx = [base.index(n) for n in names]
        spread = len(idx) > 1
        args = [tuple(r[i] for i in idx) for r in rows] if spread else [r[idx[0]] for r in rows]
        label = f"{kind.incremental.__name__}({', '.join(f'{v}' for v in params.values())})"
        if names != list(kind.defaults):
            label += f" on {names[0]}"
        best = min(
            time_loop(kind.incremental(**params).update, args, spread) for _ in range(tm.repeat)
        )
        out.append((label, best / len(args) * 1e6))
    return out


def loop_floor(n: int, tm: Timing) -> float:
    """µs per iteration of the bare timing loop calling a trivial bound method."""

    class Nop:
        def update(self, x: Any) -> Any:
            return x

    args = list(range(n))
    return min(time_loop(Nop().update, args, False) for _ in range(tm.repeat)) / n * 1e6


def profile_incremental(fs: FeatureSet, rows: Sequence[Any], top: int = 12) -> str:
    upd = fs.incremental().update
    prof = cProfile.Profile()
    prof.enable()
    for r in rows:
        upd(r)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# -- output ----------------------------------------------------------------------------------


def _s(x: float | None) -> str:
    return f"{x:9.4f}" if x is not None else f"{'-':>9}"


def _r(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def _d(x: float | None) -> str:
    return f"{x:.1e}" if x is not None else "-"


def print_table(title: str, rows: Sequence[Row]) -> None:
    print(title)
    head = (
        f"{'what':44} {'ours s':>9} {'TA-Lib s':>9} {'pandas s':>9} {'ours/TA-Lib':>11} "
        f"{'ours/pandas':>11} {'Δ TA-Lib':>9} {'Δ pandas':>9}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.what:44} {_s(r.ours)} {_s(r.talib)} {_s(r.pandas)} {_r(r.ours, r.talib):>11} "
            f"{_r(r.ours, r.pandas):>11} {_d(r.d_talib):>9} {_d(r.d_pandas):>9}"
        )


def print_classes(
    title: str, whole: float, classes: Sequence[tuple[str, float]], floor: float
) -> None:
    total = sum(us for _, us in classes)
    print(title)
    for label, us in classes:
        print(f"  {label:44} {us:7.3f} µs/update")
    print(f"  {'sum of the classes alone':44} {total:7.3f} µs")
    print(f"  {'whole set via FeatureSet.incremental':44} {whole:7.3f} µs/event")
    print(f"  {'  of which FeatureSet dispatch (set - sum)':44} {whole - total:7.3f} µs")
    print(f"  {'(timing-loop floor: one trivial call)':44} {floor:7.3f} µs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="100k bars, 20k incremental, ...")
    parser.add_argument("--bars", type=int, default=None, help="batch bars (default 1,000,000)")
    parser.add_argument("--inc-bars", type=int, default=None, help="incremental bars (200,000)")
    parser.add_argument("--l2-steps", type=int, default=None, help="tiled L2 steps (1,000,000)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="cProfile the incremental sets")
    args = parser.parse_args(argv)
    n_bars = args.bars or (100_000 if args.quick else 1_000_000)
    n_inc = args.inc_bars or (20_000 if args.quick else 200_000)
    n_l2 = args.l2_steps or (100_000 if args.quick else 1_000_000)
    repeat = args.repeat
    tm = Timing(repeat, 0.01 if args.quick else MIN_SAMPLE_S)

    bars = synth_bars(max(n_bars, n_inc))
    steps, label = load_steps(args.quick)
    big = tiled(steps.columns, n_l2)
    inc_cols = {k: v[:n_inc] for k, v in bars.items()}
    bar_rows = rows_of(inc_cols, BAR_COLUMNS)
    step_rows = rows_of(steps.columns, BOOK_COLUMNS)
    # the workload lives for the whole run: keep it out of the collector's full passes, so a
    # collection sees what the code under test allocates, as in a live process
    gc.collect()
    gc.freeze()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} cores, load average {load} at the start")
    print(
        f"workload 1: {n_bars:,} OHLCV bars resampled from {AAPL_CSV.name} (753 demeaned daily "
        f"log returns, blocks of fixed-seed permutations, seed {SEED}; gaps/ranges/volume from "
        f"the same day); best of {repeat}, one core"
    )
    batch_bars = {k: v[:n_bars] for k, v in bars.items()}
    bar_table = bar_cases(batch_bars, tm)
    print_table("", bar_table)
    print(
        "Δ: max |theirs - ours| / max(1, |ours|) (TA-Lib: whole series; pandas: after "
        f"{PANDAS_SKIP:,} warm-up bars, its EWMs are not SMA-seeded); ratios < 1: ours faster"
    )
    print(fixed_costs(bars, tm))

    fs_bars = FeatureSet.from_config(BAR_CONFIG, BAR_COLUMNS)
    print()
    print(agreement(fs_bars, inc_cols, bar_rows))
    floor = loop_floor(len(bar_rows), tm)
    inc_bars_us = time_incremental(fs_bars, bar_rows, tm)
    print_classes(
        f"incremental, {len(BAR_CONFIG)} technical features ({fs_bars.n_computations} "
        f"computations) over {n_inc:,} bars:",
        inc_bars_us,
        class_timings(BAR_CONFIG, BAR_COLUMNS, bar_rows, tm),
        floor,
    )

    print()
    print(
        f"workload 2: {label}, sample_book every {INTERVAL_NS // 1_000_000} ms, depth {DEPTH}: "
        f"{len(steps):,} steps; batch on them tiled to {n_l2:,} steps (from the first two-sided "
        f"book); best of {repeat}, one core"
    )
    fs_l2 = FeatureSet.from_config(L2_CONFIG, BOOK_COLUMNS)
    l2_rows = l2_cases(big, tm)
    print_table("", l2_rows)
    print(
        "* pandas column for the whole set: the 13 features with a pandas form (no VPIN); "
        "TA-Lib has SMA and RSI only"
    )
    (t_real,) = measure([lambda: fs_l2.batch(steps.columns)], tm)
    assert t_real is not None
    print(
        f"FeatureSet.batch on the {len(steps):,} real steps: {t_real:.4f} s "
        f"({t_real / len(steps) * 1e6:.3f} µs/step)"
    )
    print()
    print(agreement(fs_l2, steps.columns, step_rows))
    inc_l2_us = time_incremental(fs_l2, step_rows, tm)
    print_classes(
        f"incremental, {len(L2_CONFIG)} microstructure + technical-on-mid features over "
        f"{len(steps):,} steps:",
        inc_l2_us,
        class_timings(L2_CONFIG, BOOK_COLUMNS, step_rows, tm),
        loop_floor(len(step_rows), tm),
    )

    if args.profile:
        print()
        print(profile_incremental(fs_bars, bar_rows))
        print(profile_incremental(fs_l2, step_rows))

    print()
    print_goals([*bar_table, *l2_rows], inc_bars_us, inc_l2_us)
    return 0


def print_goals(rows: Sequence[Row], inc_bars_us: float, inc_l2_us: float) -> None:
    ratios = [(r.what, r.ours / r.talib) for r in rows if r.ours is not None and r.talib]
    worst = max(ratios, key=lambda r: r[1])
    ok1 = all(x <= GOAL_BATCH_RATIO for _, x in ratios)
    print(
        f"goal 1: batch within {GOAL_BATCH_RATIO}x of TA-Lib where TA-Lib has the indicator "
        f"({len(ratios)} rows): {'MET' if ok1 else 'NOT MET'} (worst {worst[1]:.2f}x, {worst[0]})"
    )
    ok2 = max(inc_bars_us, inc_l2_us) <= GOAL_INCREMENTAL_US
    print(
        f"goal 2: incremental update of the whole feature set <= {GOAL_INCREMENTAL_US:.0f} µs per "
        f"event: {'MET' if ok2 else 'NOT MET'} (bars: {inc_bars_us:.2f} µs, "
        f"L2: {inc_l2_us:.2f} µs)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
