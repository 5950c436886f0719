"""Batch (TA-Lib) and incremental technical indicators agree to 1e-9, on real bars and on
hypothesis-generated random walks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core.ids import InstrumentId
from tradestack.core.series import BarSeries
from tradestack.data import load_bars
from tradestack.features import technical as t

RTOL = ATOL = 1e-9


@pytest.fixture(scope="module")
def bars(examples_dir: Path) -> BarSeries:
    return load_bars(examples_dir / "data" / "AAPL_2012-2014_daily.csv", InstrumentId("AAPL"))


def _same(batch: np.ndarray, incremental: list[float]) -> None:
    got = np.array(incremental, dtype=np.float64)
    assert np.array_equal(np.isnan(batch), np.isnan(got)), "warm-up lengths differ"
    ok = ~np.isnan(batch)
    assert ok.any()
    np.testing.assert_allclose(got[ok], batch[ok], rtol=RTOL, atol=ATOL)


def _run(make: Callable[[], object], values: np.ndarray) -> list[float]:
    ind = make()
    return [ind.update(float(v)) for v in values]  # type: ignore[attr-defined]


def _check_all(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> None:
    for period in (5, 14, 20):
        _same(t.rsi(close, period), _run(lambda p=period: t.RSI(p), close))
        _same(t.returns(close, period), _run(lambda p=period: t.Returns(p), close))
        _same(
            t.rolling_volatility(close, period),
            _run(lambda p=period: t.RollingVolatility(p), close),
        )
        # the z-score's batch form is a compiled twin of the class: equal to the last bit,
        # also where the window is nearly flat and the value is rounding noise
        z_batch = t.zscore(close, period)
        z_inc = np.array(_run(lambda p=period: t.ZScore(p), close))
        np.testing.assert_array_equal(z_inc, z_batch)
        upper, middle, lower = t.bollinger(close, period, 2.0)
        bands = t.BollingerBands(period, 2.0)
        got = np.array([bands.update(float(v)) for v in close])
        _same(middle, list(got[:, 1]))
        # TA-Lib's C code rounds the band's variance differently from Python where the window
        # is nearly flat (the variance is then rounding noise): compare where the std is above
        # 1e-3 of the price (the variance error is ~1e-16 × price² / variance)
        well = talib.STDDEV(close, timeperiod=period) > 1e-3 * close
        for k, batch in ((0, upper), (2, lower)):
            np.testing.assert_allclose(got[well, k], batch[well], rtol=RTOL, atol=ATOL)
        atr = t.ATR(period)
        _same(
            t.atr(high, low, close, period),
            [
                atr.update(float(h), float(lo), float(c))
                for h, lo, c in zip(high, low, close, strict=True)
            ],
        )
    for fast, slow, signal in ((12, 26, 9), (3, 6, 4), (2, 3, 1)):
        if len(close) < slow + signal:
            continue
        macd = t.MACD(fast, slow, signal)
        got = [macd.update(float(v)) for v in close]
        for k, batch in enumerate(t.macd(close, fast, slow, signal)):
            _same(batch, [g[k] for g in got])


def test_incremental_equals_talib_on_real_bars(bars: BarSeries) -> None:
    _check_all(np.asarray(bars.high), np.asarray(bars.low), np.asarray(bars.close))


@settings(max_examples=40, deadline=None)
@given(
    steps=st.lists(st.floats(-0.05, 0.05, allow_nan=False), min_size=60, max_size=400),
    start=st.floats(1.0, 5_000.0),
    spread=st.floats(0.0, 0.02),
)
def test_incremental_equals_batch_on_random_walks(
    steps: list[float], start: float, spread: float
) -> None:
    close = start * np.exp(np.cumsum(steps))
    high = close * (1 + spread)
    low = close * (1 - spread)
    _check_all(high, low, close)


def test_rolling_volatility_is_the_sample_std_of_log_returns() -> None:
    close = np.array([100.0, 101.0, 99.0, 102.0, 103.0, 101.5])
    r = np.diff(np.log(close))
    assert t.rolling_volatility(close, 3)[-1] == pytest.approx(np.std(r[-3:], ddof=1), rel=1e-12)


@pytest.mark.parametrize("bad", [0, 1, -3, 2.5, True])
def test_bad_periods_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="period"):
        t.RSI(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fast < slow"):
        t.MACD(26, 12)
