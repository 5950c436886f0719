"""Inputs of ``bench_features.py``: the deterministic workloads built from real data, and the
reference forms the features are timed against (pandas, TA-Lib compositions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import talib

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.engine.pipeline.sampling import BookSteps, sample_book
from tradestack.execution.sim.config import L2VenueConfig
from tradestack.execution.sim.feed import L2Feed, binance_feed

ROOT = Path(__file__).resolve().parents[1]
AAPL_CSV = ROOT / "examples/data/AAPL_2012-2014_daily.csv"
RECORDING = ROOT.parent / "shared/data/ws_messages/binance_usdm/hftbacktest_btcusdt_20240808.gz"
FALLBACK = ROOT / "examples/data/recordings/binance-usdm-btcusdt-2023-04-05.dat.gz"
BTC = InstrumentId("BTCUSDT", venue="binance")
INSTRUMENT = Instrument(
    BTC,
    kind=InstrumentKind.PERPETUAL,
    quote_currency="USDT",
    tick_size=Decimal("0.1"),
    lot_size=Decimal("0.001"),
)
SEED = 20120103
INTERVAL_NS = 10_000_000
DEPTH = 5


# -- workloads -------------------------------------------------------------------------------


def synth_bars(n: int) -> dict[str, np.ndarray]:
    """``n`` OHLCV bars from the AAPL daily bars, as the module docstring says."""
    day = pd.read_csv(AAPL_CSV)
    o, h, lo, c, v = (
        day[k].to_numpy(np.float64) for k in ("open", "high", "low", "close", "volume")
    )
    ret = np.diff(np.log(c))
    ret -= ret.mean()
    gap = np.log(o[1:] / c[:-1])  # open against the previous close
    up = np.log(h[1:] / np.maximum(o[1:], c[1:]))  # high above the body, >= 0
    down = np.log(np.minimum(o[1:], c[1:]) / lo[1:])  # low below the body, >= 0
    vol = v[1:]
    rng = np.random.default_rng(SEED)
    blocks = -(-n // len(ret))
    pick = np.concatenate([rng.permutation(len(ret)) for _ in range(blocks)])[:n]
    close = c[0] * np.exp(np.cumsum(ret[pick]))
    prev = np.concatenate(([c[0]], close[:-1]))
    open_ = prev * np.exp(gap[pick])
    high = np.maximum(open_, close) * np.exp(np.maximum(up[pick], 0.0))
    low = np.minimum(open_, close) * np.exp(-np.maximum(down[pick], 0.0))
    return {"open": open_, "high": high, "low": low, "close": close, "volume": vol[pick]}


def load_steps(quick: bool) -> tuple[BookSteps, str]:
    """The L2 recording sampled every 10 ms (the first 100k feed rows with ``quick``)."""
    if RECORDING.exists():
        feed, label = binance_feed(RECORDING, BTC, futures=True), "Binance USD-M BTCUSDT 2024-08-08"
    else:
        feed = binance_feed(FALLBACK, BTC, futures=True, require_snapshot=False)
        label = "Binance USD-M BTCUSDT 2023-04-05 (bundled; no snapshot)"
    if quick:
        feed = L2Feed(feed.instrument_id, feed.events[:100_000], feed.stats)
        label += ", first 100k feed rows"
    return sample_book(feed, INSTRUMENT, L2VenueConfig(), INTERVAL_NS, DEPTH), label


def tiled(columns: Mapping[str, np.ndarray], n: int) -> dict[str, np.ndarray]:
    """The steps from the first one with both sides of the book on, repeated to ``n`` steps."""
    start = int(np.argmax(np.isfinite(columns["mid"])))
    reps = -(-n // (len(columns["mid"]) - start))
    return {k: np.concatenate([v[start:]] * reps)[:n] for k, v in columns.items()}


def rows_of(columns: Mapping[str, np.ndarray], base: Sequence[str]) -> list[list[Any]]:
    """One incremental input row per step (level columns as lists of floats)."""
    cols = [columns[name].tolist() for name in base]
    return [list(r) for r in zip(*cols, strict=True)]


# -- pandas forms ----------------------------------------------------------------------------


def pd_rsi(s: pd.Series, n: int) -> pd.Series:
    d = s.diff()
    up = d.clip(lower=0.0).ewm(alpha=1.0 / n, adjust=False).mean()
    down = (-d).clip(lower=0.0).ewm(alpha=1.0 / n, adjust=False).mean()
    return 100.0 - 100.0 / (1.0 + up / down)


def pd_macd(s: pd.Series, fast: int = 12, slow: int = 26, signal: int = 9) -> pd.DataFrame:
    line = s.ewm(span=fast, adjust=False).mean() - s.ewm(span=slow, adjust=False).mean()
    sig = line.ewm(span=signal, adjust=False).mean()
    return pd.DataFrame({"line": line, "signal": sig, "hist": line - sig})


def pd_bbands(s: pd.Series, n: int, k: float = 2.0) -> pd.DataFrame:
    roll = s.rolling(n)
    mid, sd = roll.mean(), roll.std(ddof=0)
    return pd.DataFrame({"upper": mid + k * sd, "middle": mid, "lower": mid - k * sd})


def pd_atr(df: pd.DataFrame, n: int) -> pd.Series:
    prev = df["close"].shift()
    tr = pd.concat(
        [df["high"] - df["low"], (df["high"] - prev).abs(), (df["low"] - prev).abs()], axis=1
    ).max(axis=1, skipna=False)
    return tr.ewm(alpha=1.0 / n, adjust=False).mean()


def pd_zscore(s: pd.Series, n: int) -> pd.Series:
    roll = s.rolling(n)
    return (s - roll.mean()) / roll.std(ddof=0)


def pd_logvol(s: pd.Series, n: int) -> pd.Series:
    return np.log(s).diff().rolling(n).std()


def ta_zscore(x: np.ndarray, n: int) -> np.ndarray:
    mean = talib.SMA(x, timeperiod=n)
    std = talib.STDDEV(x, timeperiod=n, nbdev=1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (x - mean) / std
