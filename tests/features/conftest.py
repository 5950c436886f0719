"""Real decision steps for feature tests: the bundled BTCUSDT book slice and AAPL daily bars."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.data import load_bars
from tradestack.engine.pipeline.sampling import BookSteps, sample_book
from tradestack.execution.sim.config import L2VenueConfig
from tradestack.execution.sim.feed import binance_feed

BTC = InstrumentId("BTCUSDT", venue="binance")


@pytest.fixture(scope="session")
def book_steps(examples_dir: Path) -> BookSteps:
    """100 ms steps of the recorded Binance USD-M BTCUSDT book (about 1,800)."""
    path = examples_dir / "data" / "recordings" / "binance-usdm-btcusdt-2023-04-05.dat.gz"
    feed = binance_feed(path, BTC, futures=True, require_snapshot=False)
    instrument = Instrument(
        BTC,
        kind=InstrumentKind.PERPETUAL,
        quote_currency="USDT",
        tick_size=Decimal("0.1"),
        lot_size=Decimal("0.001"),
    )
    return sample_book(feed, instrument, L2VenueConfig(), 100_000_000, 5)


@pytest.fixture(scope="session")
def bar_columns(examples_dir: Path) -> dict[str, np.ndarray]:
    bars = load_bars(examples_dir / "data" / "AAPL_2012-2014_daily.csv", InstrumentId("AAPL"))
    return {c: np.asarray(getattr(bars, c)) for c in ("open", "high", "low", "close", "volume")}
