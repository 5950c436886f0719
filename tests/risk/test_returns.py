"""Rolling prices, returns and the statistics on them."""

from __future__ import annotations

import math

import pytest

from tradestack.risk.returns import PriceHistory, correlation, stdev


def test_price_history_keeps_window_returns() -> None:
    history = PriceHistory(3)
    for ts, price in enumerate([100.0, 110.0, 99.0, 99.0, 120.0]):
        history.add(ts, price)
    assert history.returns() == pytest.approx([math.log(99 / 110), 0.0, math.log(120 / 99)])


def test_price_history_ignores_bad_and_late_prices_and_replaces_same_ts() -> None:
    history = PriceHistory(5)
    history.add(1, 100.0)
    history.add(2, float("nan"))
    history.add(2, -1.0)
    history.add(0, 50.0)  # older than the last: ignored
    history.add(2, 101.0)
    history.add(2, 102.0)  # same timestamp: replaces
    assert history.returns_by_ts() == {2: pytest.approx(math.log(1.02))}


def test_stdev_and_correlation() -> None:
    assert math.isnan(stdev([1.0]))
    assert stdev([1.0, 3.0]) == pytest.approx(math.sqrt(2.0))
    assert correlation([1.0, 2.0, 3.0], [2.0, 4.0, 6.0]) == pytest.approx(1.0)
    assert correlation([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]) == pytest.approx(-1.0)
    assert math.isnan(correlation([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(correlation([1.0], [1.0]))
