"""Batch and incremental indicators give the same numbers on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core import InstrumentId
from tradestack.data import load_bars
from tradestack.features.indicators import EMA, SMA, ema, sma


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
