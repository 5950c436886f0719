"""Funding rates from Binance USD-M markPrice through ccxt, and the stale-feed watchdog."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tradestack.core.events import FundingRate
from tradestack.data.book.sync import SyncState
from tradestack.data.recordings import read_recording
from tradestack.data.sources.ccxt_feed import CcxtFeed
from tradestack.data.sources.session import make_adapter, make_exchange
from tradestack.data.venues.binance import unwrap
from tradestack.testing.fake_venue import FakeVenueServer
from tradestack.testing.venues.binance import BinanceFakeVenue

USDM_2023 = "ws_messages/binance_usdm/hftbacktest_btcusdt_20230405.dat.gz"
USDM_INFO = "ws_messages/binance_usdm/cryptofeed_2021-07-22_BINANCE_FUTURES.0"
SPOT = "ws_messages/binance_spot/hftbacktest_btcusdt_20240808.gz"
SPOT_INFO = "ws_messages/binance_spot/cryptofeed_2021-10-12_BINANCE.0.gz"


async def _collect(
    venue: BinanceFakeVenue, venue_id: str, symbol: str, kinds: tuple[str, ...], **kw: Any
) -> tuple[CcxtFeed, list[Any]]:
    events: list[Any] = []
    async with FakeVenueServer(venue) as server:
        exchange = make_exchange(venue_id, base_url=server.base_url)
        feed = CcxtFeed(
            make_adapter(venue_id, exchange, [symbol]), events.append, kinds=kinds, **kw
        )
        async with feed:
            await asyncio.wait_for(venue.finished.wait(), 60)
            await asyncio.sleep(kw.get("stale_after_s", 0.2) * 3)
    return feed, events


@pytest.mark.slow
def test_mark_price_frames_become_funding_rates(shared_data: Path) -> None:
    venue = BinanceFakeVenue(
        [shared_data / USDM_2023], futures=True, exchange_info=shared_data / USDM_INFO
    )
    venue.frames = [f for f in venue.frames if f.channel[0] == "markPrice"]
    _, events = asyncio.run(_collect(venue, "binanceusdm", "BTC/USDT:USDT", ("funding",)))
    rates = [e for e in events if isinstance(e, FundingRate)]
    recorded = [
        unwrap(json.loads(f.payload))[1]
        for f in read_recording(shared_data / USDM_2023)
        if '"markPriceUpdate"' in f.payload[:80]
    ]
    assert len(rates) == len(recorded) > 300
    first, data = rates[0], recorded[0]
    assert first.rate_fraction == float(data["r"]) == 0.0000276
    assert first.next_funding_ns == int(data["T"]) * 1_000_000
    assert first.mark_price == float(data["p"])
    # 2023-04-05 08:00 UTC is the next funding time once the 00:00 one has passed
    assert rates[-1].next_funding_ns == 1680681600000 * 1_000_000


@pytest.mark.slow
def test_watchdog_marks_a_silent_feed_stale(shared_data: Path) -> None:
    venue = BinanceFakeVenue(
        [shared_data / SPOT], exchange_info=shared_data / SPOT_INFO, max_frames=600
    )
    feed, _ = asyncio.run(_collect(venue, "binance", "BTC/USDT", ("book",), stale_after_s=0.3))
    sync = feed.adapter.books["BTC/USDT"]
    assert feed.stats.stale_alerts >= 1
    assert sync.state is SyncState.STALE
    assert any(reason.startswith("no message for") for reason in sync.stats.gap_reasons)


def test_an_unsupported_subscription_is_reported_once_and_ends(shared_data: Path) -> None:
    """ccxt's NotSupported cannot be cured by retrying: the watcher stops, the feed goes on."""
    from functools import partial

    from tradestack.data.sources.binance import BinanceAdapter

    class WithFunding(BinanceAdapter):
        def watchers(self, kinds: Any) -> list[Any]:
            call = partial(self.exchange.watch_funding_rate, "BTC/USDT")
            return [*super().watchers(kinds), ("funding", "BTC/USDT", call)]

    async def run() -> CcxtFeed:
        venue = BinanceFakeVenue(
            [shared_data / SPOT], exchange_info=shared_data / SPOT_INFO, max_frames=300
        )
        async with FakeVenueServer(venue) as server:
            exchange = make_exchange("binance", base_url=server.base_url)
            feed = CcxtFeed(WithFunding(exchange, ["BTC/USDT"]), lambda e: None, kinds=("book",))
            async with feed:
                await asyncio.wait_for(venue.finished.wait(), 30)
                await asyncio.sleep(0.2)
                assert feed.adapter.books["BTC/USDT"].is_live
        return feed

    feed = asyncio.run(run())
    gave_up = [e for e in feed.stats.errors if "gave up: NotSupported" in e]
    assert len(gave_up) == 1
    assert feed.stats.reconnects == 0
