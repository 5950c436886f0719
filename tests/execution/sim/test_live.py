"""The L2 venue on a growing feed refuses rows it cannot replay in order."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.data.errors import DataValidationError
from tradestack.execution.sim.config import L2VenueConfig
from tradestack.execution.sim.feed import CLEAR, DEPTH, L2_EVENT, SNAPSHOT, TRADE, L2Feed
from tradestack.execution.sim.live import LiveL2Venue
from tradestack.portfolio.account import Portfolio

IID = InstrumentId("BTCUSDT", "binance")
INST = Instrument(IID, kind=InstrumentKind.SPOT, tick_size=Decimal("0.1"), lot_size=Decimal("1"))


def _venue() -> LiveL2Venue:
    first = L2Feed.from_rows(
        IID,
        [
            (1_000, 1_000, CLEAR, 0, 0.0, 0.0, 0),
            (1_000, 1_000, SNAPSHOT, 1, 100.0, 5.0, 0),
            (1_000, 1_000, SNAPSHOT, -1, 100.1, 5.0, 0),
        ],
    )
    portfolio = Portfolio(Decimal(1000), "USDT")
    portfolio.register(INST)
    config = L2VenueConfig(feed_latency_ns=10, sample_interval_ns=100)
    return LiveL2Venue(first, INST, config, portfolio, lambda order, event: None)


def _rows(*rows: tuple[int, int, int, int, float, float, int]) -> np.ndarray:
    return np.array(list(rows), dtype=L2_EVENT)  # as given: L2Feed would sort them


def test_rows_grow_the_feed_and_the_sampling_grid() -> None:
    venue = _venue()
    for k in range(3000):  # past the first buffer's room
        ts = 2_000 + k * 50
        venue.extend(
            _rows((ts, ts, DEPTH, 1, 100.0, 5.0 + k, 0), (ts, ts, TRADE, -1, 100.0, 1.0, 0))
        )
    assert venue.size == 3 + 6000 and venue.stats()["feed_rows"] == 6003
    assert len(venue.samples) >= (venue.last_exch_ns - venue.sample_start) // 100
    assert venue._local_ts[-1] == venue.last_exch_ns + 10


def test_rows_out_of_order_off_the_grid_or_of_another_dtype_are_refused() -> None:
    venue = _venue()
    with pytest.raises(ValueError, match="before the 1000 ns already taken"):
        venue.extend(_rows((999, 999, TRADE, 1, 100.0, 1.0, 0)))
    with pytest.raises(ValueError, match=r"row 1 .* before the 1200 ns"):
        venue.extend(
            _rows((1_200, 1_200, TRADE, 1, 100.0, 1.0, 0), (1_100, 1_100, TRADE, 1, 100.0, 1.0, 0))
        )
    with pytest.raises(DataValidationError, match="not on the instrument's tick grid"):
        venue.extend(_rows((1_300, 1_300, DEPTH, 1, 100.05, 1.0, 0)))
    with pytest.raises(ValueError, match="L2_EVENT dtype"):
        venue.extend(np.zeros(2))
    assert venue.size == 3  # nothing refused was taken
