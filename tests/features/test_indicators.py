"""Batch and incremental indicators give the same numbers on real data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core import InstrumentId
from tradestack.data import load_bars
from tradestack.features.indicators import (
    EMA,
    SMA,
    SMA_REBUILD_SPAN,
    ema,
    sma,
    sma_rebuild_every,
)


@pytest.fixture(scope="module")
def closes(examples_dir: Path) -> np.ndarray:
    return load_bars(examples_dir / "data" / "AAPL_2012-2014_daily.csv", InstrumentId("AAPL")).close


@pytest.mark.parametrize("period", [1, 2, 10, 30, 200])
def test_sma_batch_equals_incremental(closes: np.ndarray, period: int) -> None:
    inc = SMA(period)
    streamed = np.array([inc.update(x) for x in closes])
    np.testing.assert_allclose(streamed, sma(closes, period), rtol=1e-12, equal_nan=True)
    assert np.isnan(streamed[: period - 1]).all() and not np.isnan(streamed[period - 1 :]).any()


@pytest.mark.parametrize("period", [1, 5, 26])
def test_ema_batch_equals_incremental(closes: np.ndarray, period: int) -> None:
    inc = EMA(period)
    streamed = np.array([inc.update(x) for x in closes])
    np.testing.assert_allclose(streamed, ema(closes, period), rtol=1e-12, equal_nan=True)


def test_sma_matches_pandas_rolling_mean(closes: np.ndarray) -> None:
    pd = pytest.importorskip("pandas")
    expected = pd.Series(closes).rolling(30).mean().to_numpy()
    np.testing.assert_allclose(sma(closes, 30), expected, rtol=1e-12, equal_nan=True)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1e-3, 1e6), min_size=1, max_size=3000), st.integers(1, 50))
def test_incremental_sma_does_not_drift(values: list[float], period: int) -> None:
    inc = SMA(period)
    for x in values:
        got = inc.update(x)
    if len(values) >= period:
        assert got == pytest.approx(sum(values[-period:]) / period, rel=1e-9)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_period(bad: object) -> None:
    with pytest.raises(ValueError, match="period must be a positive int"):
        SMA(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("period", [1, 3, 10, 200, 1024, 1500])
def test_sma_rebuilds_on_a_ring_wrap_every_span(period: int) -> None:
    every = sma_rebuild_every(period)
    assert every % period == 0 and every >= min(SMA_REBUILD_SPAN, period)
    assert every < SMA_REBUILD_SPAN + period


def test_incremental_sma_stays_exact_over_a_million_real_minutes(shared_data: Path) -> None:
    """1-minute ADA/BTC closes tiled to ~1M values: the running sum, rebuilt every span, stays
    within a few ulps of the exact window mean."""
    path = shared_data / "bars" / "crypto" / "nautilus_binance_ADABTC-1m-2021-11-27.csv"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    base = load_bars(path, InstrumentId("ADABTC", "binance")).close
    closes = np.tile(base, -(-1_000_000 // len(base)))[:1_000_000]
    sma = SMA(30)
    got = np.array([sma.update(x) for x in closes])
    window = np.lib.stride_tricks.sliding_window_view(closes, 30)
    exact = np.array([math.fsum(w) / 30 for w in window[::997]])
    assert np.allclose(got[29::997], exact, rtol=1e-14, atol=0.0)
