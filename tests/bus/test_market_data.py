"""Market data over the bus against a real redis-server: the publisher keeps the order of the
events and adds a keyframe only when a book changed; a consumer that joins mid-stream builds its
book from the next keyframe (skipping the updates before it), ignores later keyframes, and a
restarted one resumes its group where it stopped."""

from __future__ import annotations

import asyncio

import pytest

from tradestack.bus import connect
from tradestack.bus.market_data import (
    BusFeed,
    MarketDataPublisher,
    apply_update,
    bus_market_feed,
    market_stream,
)
from tradestack.core.events import AggressorSide, OrderBookSnapshot, TradeTick
from tradestack.core.ids import InstrumentId
from tradestack.data.book.l2book import L2Book
from tradestack.data.book.sync import BookUpdate
from tradestack.testing.redis_server import RedisServer

BTC = InstrumentId("BTC/USDT", "binance")


def _update(n: int, snapshot: bool = False) -> BookUpdate:
    if snapshot:
        changes = tuple((True, 100.0 - k, 1.0) for k in range(5)) + tuple(
            (False, 101.0 + k, 1.0) for k in range(5)
        )
    else:
        changes = ((n % 2 == 0, 100.0 - n % 3 if n % 2 == 0 else 101.0 + n % 3, 0.5 + n),)
    return BookUpdate(BTC, 1_000 + n, 2_000 + n, n, snapshot, changes)


def _trade(n: int) -> TradeTick:
    return TradeTick(BTC, 1_000 + n, 2_000 + n, 100.5, 0.1, AggressorSide.BUYER, str(n))


async def _drain(feed: BusFeed, count: int) -> list[object]:
    got = []
    while len(got) < count:
        got.append(await asyncio.wait_for(feed.queue.get(), 5))
    return got


def test_a_late_consumer_starts_from_a_keyframe_and_a_restart_resumes(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    prefix = f"md-{request.node.name}"
    stream = market_stream("binance", "BTC/USDT", prefix)

    async def run() -> None:
        client = connect(redis_server.url)
        publisher = MarketDataPublisher(client, prefix=prefix, keyframe_every_s=3600)
        reference = L2Book(BTC)
        events: list[BookUpdate | TradeTick] = [_update(0, snapshot=True)]
        events += [_update(n) if n % 4 else _trade(n) for n in range(1, 40)]
        for event in events:
            publisher(event)
            if isinstance(event, BookUpdate):
                apply_update(reference, event)
        await publisher.flush()
        publisher._keyframes()  # one now: the book changed since none was taken
        publisher._keyframes()  # and no second one: nothing changed since
        await publisher.flush()
        assert publisher.keyframes == 1
        assert await client.xlen(stream) == len(events) + 1

        # from the start: every event in order, the book from the venue snapshot
        async with bus_market_feed(
            client, "binance", "BTC/USDT", BTC, group="all", consumer="1", prefix=prefix,
            start="earliest",
        ) as feed:  # fmt: skip
            got = await _drain(feed, len(events))
            assert got == events
            await asyncio.sleep(0.3)
            assert feed.keyframes_skipped == 1 and feed.book_from.startswith("snapshot of")
            assert feed.book.bids() == reference.bids() and feed.book.asks() == reference.asks()

        # a late joiner: the entries before the keyframe are skipped (updates) or passed on
        # (trades), and the keyframe gives it the publisher's book
        async with bus_market_feed(
            client, "binance", "BTC/USDT", BTC, group="late", consumer="1", prefix=prefix,
            start="latest",
        ) as feed:  # fmt: skip
            await asyncio.sleep(0.2)
            publisher(_update(40))
            publisher._keyframes()
            publisher(_trade(41))
            await publisher.flush()
            first, second = await _drain(feed, 2)
            assert feed.skipped_before_book == 1  # update 40 came before any book
            assert isinstance(first, BookUpdate) and first.is_snapshot  # the keyframe
            assert feed.book_from.startswith("keyframe of")
            assert second == _trade(41)
            apply_update(reference, _update(40))
            assert feed.book.bids() == reference.bids() and feed.book.asks() == reference.asks()

        # the first group, restarted: only what was published since it stopped
        async with bus_market_feed(
            client, "binance", "BTC/USDT", BTC, group="all", consumer="1", prefix=prefix,
            start="earliest",
        ) as feed:  # fmt: skip
            frame, trade = await _drain(feed, 2)  # update 40 skipped: no book before the frame
            assert isinstance(frame, BookUpdate) and frame.is_snapshot and trade == _trade(41)
            assert feed.skipped_before_book == 1
            assert feed.consumer.stats.handled == 3  # update 40, the keyframe, trade 41
            assert feed.book.bids() == reference.bids() and feed.book.asks() == reference.asks()
        await client.aclose()

    asyncio.run(run())


def test_a_keyframe_holds_the_best_levels_of_each_side(
    redis_server: RedisServer, request: pytest.FixtureRequest
) -> None:
    prefix = f"md-{request.node.name}"

    async def run() -> OrderBookSnapshot:
        client = connect(redis_server.url)
        publisher = MarketDataPublisher(client, prefix=prefix, keyframe_depth=3)
        publisher(_update(0, snapshot=True))
        publisher._keyframes()
        frame = publisher._pending[market_stream("binance", "BTC/USDT", prefix)][-1]
        await client.aclose()
        assert isinstance(frame, OrderBookSnapshot)
        return frame

    frame = asyncio.run(run())
    assert frame.bids == ((100.0, 1.0), (99.0, 1.0), (98.0, 1.0))
    assert frame.asks == ((101.0, 1.0), (102.0, 1.0), (103.0, 1.0))
    assert (frame.ts_event_ns, frame.sequence) == (1_000, 0)
