"""The real ccxt.pro Binance client against the fake venue replaying recorded Binance traffic.

At every step, both our book (fed by the tap) and ccxt's own book must equal a naive reference
rebuild made here from the raw recording; with faults injected, every published book must still
equal the reference and the published diff chain must never skip an update id.
"""

from __future__ import annotations

import asyncio
import heapq
import json
from pathlib import Path
from typing import Any

import ccxt.pro as ccxtpro
import pytest

from tradestack.core.events import QuoteTick, TradeTick
from tradestack.data.book.sync import BookUpdate
from tradestack.data.recordings import FrameKind, read_recording
from tradestack.data.sources.binance import BinanceAdapter
from tradestack.data.sources.ccxt_feed import CcxtFeed, tapped_exchange
from tradestack.data.venues.binance import unwrap
from tradestack.testing.ccxt_urls import point_at
from tradestack.testing.fake_venue import FakeVenueServer
from tradestack.testing.faults import FaultPlan
from tradestack.testing.venues.binance import BinanceFakeVenue

SPOT = "binance_spot/hftbacktest_btcusdt_20240808.gz"
SPOT_INFO = "binance_spot/cryptofeed_2021-10-12_BINANCE.0.gz"
USDM = "binance_usdm/hftbacktest_btcusdt_20240808.gz"
USDM_INFO = "binance_usdm/cryptofeed_2021-07-22_BINANCE_FUTURES.0"


class ReferenceBook:
    """Naive rebuild from the raw recording: recorded snapshot, then every diff after it."""

    def __init__(self, path: Path) -> None:
        frames = list(read_recording(path))
        snapshot = next(json.loads(f.payload) for f in frames if f.kind is FrameKind.REST)
        self.bids = {float(p): float(s) for p, s in snapshot["bids"]}
        self.asks = {float(p): float(s) for p, s in snapshot["asks"]}
        self.sequence = int(snapshot["lastUpdateId"])
        self.ids: dict[int, tuple[int, int | None]] = {}
        self.diffs: list[dict[str, Any]] = []
        for frame in frames:
            if frame.kind is FrameKind.RECV:
                data = unwrap(json.loads(frame.payload))[1]
                if data.get("e") == "depthUpdate":
                    self.diffs.append(data)
                    self.ids[int(data["u"])] = (int(data["U"]), data.get("pu"))
        self._next = 0

    def advance_to(self, sequence: int) -> None:
        assert sequence >= self.sequence, (sequence, self.sequence)
        while self.sequence < sequence:
            data = self.diffs[self._next]
            self._next += 1
            if int(data["u"]) <= self.sequence:
                continue
            for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
                for price, size in levels:
                    if float(size) == 0.0:
                        side.pop(float(price), None)
                    else:
                        side[float(price)] = float(size)
            self.sequence = int(data["u"])
        assert self.sequence == sequence, f"{sequence} is not a recorded update id"

    def levels(self, depth: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return (
            heapq.nlargest(depth, self.bids.items()),
            heapq.nsmallest(depth, self.asks.items()),
        )


async def _run(
    shared: Path, futures: bool, faults: FaultPlan | None, max_frames: int | None = None
) -> tuple[CcxtFeed, BinanceFakeVenue, list[Any], dict[str, int]]:
    rec = shared / "ws_messages" / (USDM if futures else SPOT)
    info = shared / "ws_messages" / (USDM_INFO if futures else SPOT_INFO)
    ours_ref = ReferenceBook(rec)
    ccxt_ref = ReferenceBook(rec)
    counts = {"ours": 0, "ccxt": 0}
    failures: list[str] = []  # raised inside ccxt's receive loop, an assert would be swallowed
    symbol = "BTC/USDT:USDT" if futures else "BTC/USDT"
    base = ccxtpro.binanceusdm if futures else ccxtpro.binance

    class Checked(tapped_exchange(base)):  # type: ignore[misc]
        def handle_message(self, client: Any, message: Any) -> Any:
            result = super().handle_message(client, message)
            try:
                self.compare(message)
            except AssertionError as exc:
                failures.append(repr(exc)[:500])
            return result

        def compare(self, message: Any) -> None:
            data = unwrap(message)[1] if isinstance(message, dict) else None
            book = self.orderbooks.get(symbol)
            if (
                isinstance(data, dict)
                and data.get("e") == "depthUpdate"
                and book is not None
                and book["nonce"] == int(data["u"])
                and book["nonce"] >= ccxt_ref.sequence
            ):
                ccxt_ref.advance_to(book["nonce"])
                # ccxt's sides are sorted lists: the top 25 levels are compared in order at every
                # step, the whole depth every 50th step (converting 5,000 levels each time
                # would make this test minutes long).
                bids, asks = ccxt_ref.levels(25)
                assert [tuple(x[:2]) for x in book["bids"][:25]] == bids
                assert [tuple(x[:2]) for x in book["asks"][:25]] == asks
                if counts["ccxt"] % 50 == 0:
                    assert {x[0]: x[1] for x in book["bids"]} == ccxt_ref.bids
                    assert {x[0]: x[1] for x in book["asks"]} == ccxt_ref.asks
                counts["ccxt"] += 1

    options = {
        "fetchMarkets": {"types": ["linear" if futures else "spot"]},
        "fetchCurrencies": False,
        "watchOrderBookLimit": 10_000,  # the fake venue serves every level; ccxt keeps them all
    }
    if futures:
        options["watchOrderBookRate"] = "0"
    # ccxt's client-side throttle would delay a resync snapshot by seconds (request weight),
    # longer than the whole accelerated replay: against the local venue it is switched off.
    exchange = Checked({"options": options, "enableRateLimit": False})
    venue = BinanceFakeVenue(
        [rec], futures=futures, exchange_info=info, faults=faults, max_frames=max_frames
    )
    events: list[Any] = []
    feed: CcxtFeed | None = None

    def sink(event: Any) -> None:
        events.append(event)
        try:
            check_ours(event)
        except AssertionError as exc:  # the feed's tap would log and swallow it
            failures.append(f"ours: {exc!r}"[:500])

    def check_ours(event: Any) -> None:
        assert feed is not None
        sync = feed.adapter.books[symbol]
        if isinstance(event, BookUpdate) and event.sequence == sync.book.sequence:
            assert not sync.book.is_crossed()
            ours_ref.advance_to(event.sequence)
            assert sync.book.equals(ours_ref.bids, ours_ref.asks)
            bids, asks = ours_ref.levels(25)
            assert sync.book.bids(25) == bids
            assert sync.book.asks(25) == asks
            counts["ours"] += 1

    async with FakeVenueServer(venue) as server:
        point_at(exchange, server.base_url)
        feed = CcxtFeed(BinanceAdapter(exchange, [symbol]), sink, kinds=("book", "trades"), seed=3)
        async with feed:
            await asyncio.wait_for(venue.finished.wait(), 120)
            for _ in range(200):  # let an in-flight reconnect and resync finish
                await asyncio.sleep(0.05)
                reconnected = (
                    venue.forced_disconnects == 0
                    or venue.connections_opened > venue.connections_at_disconnect
                )
                if reconnected and all(book.is_live for book in feed.adapter.books.values()):
                    break
    assert not failures, failures[:3]
    return feed, venue, events, counts


@pytest.mark.slow
@pytest.mark.parametrize("futures", [False, True], ids=["spot", "usdm"])
def test_ccxt_and_our_books_equal_the_reference_at_every_step(
    shared_data: Path, futures: bool
) -> None:
    feed, venue, events, counts = asyncio.run(_run(shared_data, futures, None))
    symbol = next(iter(feed.adapter.books))
    sync = feed.adapter.books[symbol]
    diffs = sum(1 for e in events if isinstance(e, BookUpdate) and not e.is_snapshot)
    assert sync.stats.gaps == 0
    assert sync.stats.crossed == 0
    # every diff after the recorded snapshot was published; all but the few joined together
    # with the snapshot (compared once, after the last of them) were checked one by one
    assert diffs - 10 <= counts["ours"] <= diffs + 1 and counts["ours"] > 3000
    assert counts["ccxt"] > 3000
    assert venue.snapshots_served[0][2], "the recorded REST snapshot body was served first"
    trades = [e for e in events if isinstance(e, TradeTick)]
    assert trades and all(t.price > 0 and t.ts_recv_ns > 0 for t in trades)


@pytest.mark.slow
@pytest.mark.parametrize("futures", [False, True], ids=["spot", "usdm"])
def test_faults_are_detected_and_the_book_resyncs_to_the_reference(
    shared_data: Path, futures: bool
) -> None:
    plan = FaultPlan(drop=0.01, duplicate=0.01, reorder=0.01, disconnect_after=(1500,), seed=11)
    # 30,000 frames hold ~2,000 diffs: enough for dozens of injected gaps, in seconds.
    feed, venue, events, counts = asyncio.run(_run(shared_data, futures, plan, 30_000))
    symbol = next(iter(feed.adapter.books))
    sync = feed.adapter.books[symbol]
    reference = ReferenceBook(
        shared_data / "ws_messages" / (USDM if futures else SPOT)
    )  # for the update-id chain
    drops = [p for p, f in plan.log if f.value in ("drop", "reorder")]
    assert drops, "the plan injected gaps"
    assert sync.stats.gaps >= 1 and sync.stats.resyncs >= 1
    assert sync.stats.crossed == 0
    assert venue.forced_disconnects == 1
    assert venue.connections_opened > venue.connections_at_disconnect, "the client reconnected"
    assert sync.is_live, "the book ended resynced"
    # The published chain never skips an update id except across a snapshot: no gap got through.
    previous: int | None = None
    for event in events:
        if not isinstance(event, BookUpdate):
            continue
        if event.is_snapshot:
            previous = event.sequence
            continue
        first, prev_u = reference.ids[event.sequence]
        assert previous is not None
        if futures:
            assert prev_u == previous or first <= previous
        else:
            assert first <= previous + 1
        previous = event.sequence
    assert counts["ours"] > 1000


def test_quotes_from_book_ticker_match_our_top_of_book(shared_data: Path) -> None:
    """USD-M: where a bookTicker's update id equals a diff's, top of book must agree exactly."""
    from tradestack.core.ids import InstrumentId
    from tradestack.data.venues.binance import BinanceBookSync, event_type, parse_book_ticker

    iid = InstrumentId("BTC/USDT:USDT", "binanceusdm")
    sync = BinanceBookSync(iid, futures=True)
    tops: dict[int, tuple[Any, Any]] = {}
    compared = 0
    for frame in read_recording(shared_data / "ws_messages" / USDM):
        message = json.loads(frame.payload)
        if frame.kind is FrameKind.REST:
            sync.on_snapshot(message, frame.ts_ns)
            continue
        stream, data = unwrap(message)
        kind = event_type(stream, data)
        if kind == "depthUpdate" and sync.on_message_safe(data, frame.ts_ns) is not None:
            tops[int(data["u"])] = (sync.book.best_bid(), sync.book.best_ask())
        elif kind == "bookTicker" and int(data["u"]) in tops:
            quote = parse_book_ticker(data, iid, frame.ts_ns)
            assert isinstance(quote, QuoteTick)
            bid, ask = tops[int(data["u"])]
            assert bid == (quote.bid_price, quote.bid_size)
            assert ask == (quote.ask_price, quote.ask_size)
            compared += 1
    assert compared >= 100
