"""Deterministic OHLCV workload shared by the peer runners, parity tests and benchmarks.

The SMA-crossover parity workload is defined as:

* bars from :func:`make_minute_bars` (or a real daily CSV loaded with :func:`load_csv`);
* SMA(n) of close defined by :func:`sma` -- ``math.fsum(window) / n``.  ``math.fsum`` is
  correctly rounded, so the value is a pure function of the window's doubles and every
  implementation that follows this definition gets bit-identical SMAs (a running sum or
  ``pandas.rolling().mean()`` drifts by a few ulps, which can flip a strict crossover at a
  near-tie);
* strict crossover as in :func:`crossed` / ``backtesting.lib.crossover``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pandas is imported lazily: the tradestack benchmark worker never needs it
    import pandas as pd

__all__ = [
    "EPOCH_2020_NS",
    "MINUTE_NS",
    "crossed",
    "load_csv",
    "make_minute_bars",
    "sma",
    "to_pandas",
]

#: 2020-01-01T00:00:00Z in integer nanoseconds since the Unix epoch.
EPOCH_2020_NS: int = 1_577_836_800_000_000_000
#: One minute in nanoseconds.
MINUTE_NS: int = 60_000_000_000

_PRICE_DECIMALS = 8


def make_minute_bars(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    """Build ``n`` deterministic 1-minute OHLCV bars (geometric random walk around 100).

    Args:
        n: Number of bars (>= 1).
        seed: Seed for :func:`numpy.random.default_rng`; same ``(n, seed)`` -> same bars.

    Returns:
        Dict of equal-length arrays: ``ts_ns`` (int64 UTC nanoseconds, 1-minute spacing
        starting 2020-01-01T00:00Z, the bar's timestamp), ``open``/``high``/``low``/``close``
        (float64 rounded to 8 decimals with ``high >= max(open, close)`` and
        ``low <= min(open, close)``) and ``volume`` (float64, positive whole numbers,
        always >= 1000 so simulated top-of-book liquidity never limits a fill).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    rng = np.random.default_rng(seed)
    # Close-to-close log returns (~10 bp per minute) and a small open gap so that
    # "next open" and "signal close" fills differ.
    log_ret = rng.normal(0.0, 1e-3, n)
    close_raw = 100.0 * np.exp(np.cumsum(log_ret))
    prev_close = np.concatenate(([100.0], close_raw[:-1]))
    open_raw = prev_close * np.exp(rng.normal(0.0, 2e-4, n))
    up = np.abs(rng.normal(0.0, 5e-4, n))
    down = np.abs(rng.normal(0.0, 5e-4, n))
    high_raw = np.maximum(open_raw, close_raw) * np.exp(up)
    low_raw = np.minimum(open_raw, close_raw) * np.exp(-down)
    volume = rng.integers(1_000, 10_000, n).astype(np.float64)

    # Rounding is monotone, so the OHLC inequalities survive it.
    open_ = np.round(open_raw, _PRICE_DECIMALS)
    high = np.round(high_raw, _PRICE_DECIMALS)
    low = np.round(low_raw, _PRICE_DECIMALS)
    close = np.round(close_raw, _PRICE_DECIMALS)
    ts_ns = EPOCH_2020_NS + np.arange(n, dtype=np.int64) * MINUTE_NS
    return {
        "ts_ns": ts_ns,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "volume": volume,
    }


def to_pandas(bars: dict[str, np.ndarray]) -> pd.DataFrame:
    """Convert a bars dict to the OHLCV frame backtesting.py / backtrader expect.

    Args:
        bars: Output of :func:`make_minute_bars` (or same-shaped dict).

    Returns:
        DataFrame with a tz-naive (UTC wall time) ``DatetimeIndex`` named ``Date`` and
        float64 columns ``Open, High, Low, Close, Volume``.
    """
    import pandas as pd

    index = pd.DatetimeIndex(pd.to_datetime(np.asarray(bars["ts_ns"], dtype=np.int64)), name="Date")
    return pd.DataFrame(
        {
            "Open": np.asarray(bars["open"], dtype=np.float64),
            "High": np.asarray(bars["high"], dtype=np.float64),
            "Low": np.asarray(bars["low"], dtype=np.float64),
            "Close": np.asarray(bars["close"], dtype=np.float64),
            "Volume": np.asarray(bars["volume"], dtype=np.float64),
        },
        index=index,
    )


def load_csv(path: str | Path) -> pd.DataFrame:
    """Load an OHLCV CSV whose first column is the date (e.g. backtesting.py's GOOG file).

    Returns:
        Same layout as :func:`to_pandas` (tz-naive ``DatetimeIndex``, float64 columns).
    """
    import pandas as pd

    df = pd.read_csv(path, index_col=0, parse_dates=True)
    df.index = pd.DatetimeIndex(df.index, name="Date")
    return df[["Open", "High", "Low", "Close", "Volume"]].astype(np.float64)


def sma(values: Sequence[float] | np.ndarray, n: int) -> np.ndarray:
    """Reference simple moving average: ``out[i] = math.fsum(values[i-n+1:i+1]) / n``.

    The first ``n - 1`` entries are NaN.  Bit-reproducible (see module docstring).
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    x = np.asarray(values, dtype=np.float64)
    out = np.full(x.shape[0], np.nan)
    if x.shape[0] >= n:
        windows = np.lib.stride_tricks.sliding_window_view(x, n)
        out[n - 1 :] = [math.fsum(w) / n for w in windows]
    return out


def crossed(prev_a: float, prev_b: float, a: float, b: float) -> bool:
    """Strict crossover of ``a`` over ``b``: ``prev_a < prev_b and a > b``.

    NaN inputs never cross (comparisons with NaN are False).
    """
    return prev_a < prev_b and a > b
