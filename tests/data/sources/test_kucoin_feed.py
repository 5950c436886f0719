"""The real ccxt.pro KuCoin client against the fake venue replaying the recorded KuCoin session.

For every recorded symbol that has a REST snapshot, our book (fed by the tap) and ccxt's own
book must equal, level by level, a naive reference rebuilt here from the raw recording, at
every step. With faults injected, every message that reaches a live book without continuing it
must be detected as a gap, every published book must still equal the reference, and every book
must end resynced.
"""

from __future__ import annotations

import asyncio
import heapq
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ccxt.pro as ccxtpro
import pytest

from tradestack.core.events import AggressorSide, QuoteTick, TradeTick
from tradestack.data.book.sync import BookUpdate
from tradestack.data.recordings import FrameKind, read_recording
from tradestack.data.sources.ccxt_feed import Backoff, CcxtFeed, tapped_exchange
from tradestack.data.sources.kucoin import CCXT_CONFIG, KucoinAdapter
from tradestack.data.venues.kucoin import KucoinBookSync
from tradestack.testing.ccxt_urls import point_at
from tradestack.testing.fake_venue import FakeVenueServer
from tradestack.testing.faults import Fault, FaultPlan
from tradestack.testing.venues.kucoin import KucoinFakeVenue

KUCOIN = "ws_messages/kucoin"
WS = "cryptofeed_2021-04-25_KUCOIN.ws.1.0"
HTTP = "cryptofeed_2021-04-25_KUCOIN.http.0.0"
SYMBOLS = "cryptofeed_2021-04-25_KUCOIN.0"
TOPICS = ("/market/level2", "/market/ticker", "/market/match")
Levels = list[tuple[float, float]]


class ReferenceBook:
    """Naive rebuild of one symbol: recorded snapshot, then every change with a higher sequence."""

    def __init__(self, snapshot: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
        self.bids = {float(p): float(s) for p, s in snapshot["bids"]}
        self.asks = {float(p): float(s) for p, s in snapshot["asks"]}
        self.sequence = int(snapshot["sequence"])
        self.deltas = deltas
        self.starts = {d["sequenceEnd"]: d["sequenceStart"] for d in deltas}
        self._next = 0

    def advance_to(self, sequence: int) -> None:
        assert sequence >= self.sequence, (sequence, self.sequence)
        while self.sequence < sequence:
            data = self.deltas[self._next]
            self._next += 1
            for side, changes in (
                (self.bids, data["changes"]["bids"]),
                (self.asks, data["changes"]["asks"]),
            ):
                for price, size, seq in changes:
                    if int(seq) <= self.sequence or float(price) == 0.0:
                        continue
                    if float(size) == 0.0:
                        side.pop(float(price), None)
                    else:
                        side[float(price)] = float(size)
            self.sequence = max(self.sequence, data["sequenceEnd"])
        assert self.sequence == sequence, f"{sequence} is not a recorded sequence"

    def levels(self, depth: int | None = None) -> tuple[Levels, Levels]:
        """Both sides best first: all levels, or the best ``depth``."""
        if depth is None:
            return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())
        return heapq.nlargest(depth, self.bids.items()), heapq.nsmallest(depth, self.asks.items())

    def same_as(self, bids: Any, asks: Any, step: int) -> bool:
        """Level by level at every step: every (price, size) of both sides, plus the order of the
        best 25 levels; the order of the whole depth every 20th step (sorting it at every step
        would double this test's time)."""
        if {x[0]: x[1] for x in bids} != self.bids or {x[0]: x[1] for x in asks} != self.asks:
            return False
        depth = None if step % 20 == 0 else 25
        got = ([tuple(x[:2]) for x in bids[:depth]], [tuple(x[:2]) for x in asks[:depth]])
        return got == self.levels(depth)


def references(shared: Path) -> dict[str, ReferenceBook]:
    """One reference per market id with a recorded snapshot."""
    snapshots: dict[str, dict[str, Any]] = {}
    for rec in read_recording(shared / KUCOIN / HTTP):
        if rec.kind is FrameKind.REST:
            snapshots[rec.url.rpartition("=")[2]] = json.loads(rec.payload)["data"]
    deltas: dict[str, list[dict[str, Any]]] = {s: [] for s in snapshots}
    for rec in read_recording(shared / KUCOIN / WS):
        if rec.kind is FrameKind.RECV and '"trade.l2update"' in rec.payload:
            data = json.loads(rec.payload)["data"]
            deltas.setdefault(data["symbol"], []).append(data)
    return {
        s: ReferenceBook(snapshots[s], sorted(deltas[s], key=lambda d: d["sequenceStart"]))
        for s in snapshots
    }


@dataclass
class Run:
    """What one replay produced and measured."""

    feed: CcxtFeed
    venue: KucoinFakeVenue
    events: list[Any] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


async def _run(shared: Path, faults: FaultPlan | None) -> Run:
    ours_ref = references(shared)
    ccxt_ref = references(shared)
    tops: dict[tuple[str, int], tuple[Any, Any]] = {}
    holder: list[Run] = []

    class Checked(tapped_exchange(ccxtpro.kucoin)):  # type: ignore[misc]
        def handle_message(self, client: Any, message: Any) -> Any:
            run = holder[0]
            data = message.get("data") if isinstance(message, dict) else None
            subject = message.get("subject") if isinstance(message, dict) else None
            sync = None
            if subject == "trade.l2update" and isinstance(data, dict):
                book = run.feed.adapter.books.get(self.markets_by_id[data["symbol"]][0]["symbol"])
                sync = book if isinstance(book, KucoinBookSync) else None
            before = (sync.is_live, sync.last_sequence, sync.stats.gaps) if sync else None
            result = super().handle_message(client, message)  # our tap, then ccxt
            try:
                if sync is not None and before is not None:
                    self.check_gap(run, sync, data, before)
                    self.compare_ccxt(run, data)
                elif subject == "trade.ticker":
                    self.compare_ticker(run, message)
            except Exception as exc:  # raised in ccxt's receive loop it would be swallowed
                run.failures.append(repr(exc)[:500])
            return result

        def check_gap(self, run: Run, sync: KucoinBookSync, data: Any, before: Any) -> None:
            live, last, gaps = before
            if live and data["sequenceStart"] > last + 1:
                run.counts["holes at a live book"] += 1
                assert sync.stats.gaps == gaps + 1 and not sync.is_live, "undetected gap"
                run.counts["gaps detected"] += 1

        def compare_ccxt(self, run: Run, data: Any) -> None:
            symbol = self.markets_by_id[data["symbol"]][0]["symbol"]
            book = self.orderbooks.get(symbol)
            if book is None or book["nonce"] != data["sequenceEnd"]:
                return
            ref = ccxt_ref[data["symbol"]]
            ref.advance_to(book["nonce"])
            same = ref.same_as(book["bids"], book["asks"], run.counts["ccxt steps compared"])
            run.counts["ccxt steps compared"] += 1
            if faults is None:
                assert same, f"ccxt book differs at {symbol} {book['nonce']}"
            elif not same:
                run.counts["ccxt steps wrong"] += 1

        def compare_ticker(self, run: Run, message: Any) -> None:
            market_id = message["topic"].rpartition(":")[2]
            symbol = self.markets_by_id[market_id][0]["symbol"]
            data = message["data"]
            bid, ask = float(data["bestBid"]), float(data["bestAsk"])
            ticker = self.tickers[symbol]
            assert (ticker["bid"], ticker["ask"]) == (bid, ask)
            top = tops.get((market_id, int(data["sequence"])))
            if top is not None:
                assert top == ((bid, float(data["bestBidSize"])), (ask, float(data["bestAskSize"])))
                run.counts["ticker matches"] += 1

    def sink(event: Any) -> None:
        run = holder[0]
        run.events.append(event)
        if not isinstance(event, BookUpdate):
            return
        sync = run.feed.adapter.books[event.instrument_id.symbol]
        assert isinstance(sync, KucoinBookSync)
        market_id = exchange.market(event.instrument_id.symbol)["id"]
        if event.sequence != sync.book.sequence:
            return  # joined with a snapshot: compared after the last of them
        ref = ours_ref[market_id]
        try:
            assert not sync.book.is_crossed()
            ref.advance_to(event.sequence)
            depth = None if run.counts["our steps compared"] % 20 == 0 else 25  # as in same_as
            assert sync.book.equals(ref.bids, ref.asks), f"our book at {event.sequence}"
            assert (sync.book.bids(depth), sync.book.asks(depth)) == ref.levels(depth)
        except Exception as exc:
            run.failures.append(repr(exc)[:500])
        run.counts["our steps compared"] += 1
        tops[(market_id, event.sequence)] = (sync.book.best_bid(), sync.book.best_ask())

    exchange = Checked({**CCXT_CONFIG, "enableRateLimit": False})
    files = [shared / KUCOIN / WS, shared / KUCOIN / HTTP]
    # With faults, a symbol's only delta before its recorded snapshot may be dropped: the client
    # then asks for the snapshot later, and the timeline need not wait long for it.
    venue = KucoinFakeVenue(
        files,
        symbols_file=shared / KUCOIN / SYMBOLS,
        faults=faults,
        await_topics=TOPICS,
        gate_timeout_s=5.0 if faults is None else 0.5,
    )
    async with FakeVenueServer(venue) as server:
        point_at(exchange, server.base_url)
        await exchange.load_markets()
        symbols = [exchange.markets_by_id[s][0]["symbol"] for s in sorted(venue.recorded_snapshots)]
        adapter = KucoinAdapter(exchange, symbols)
        feed = CcxtFeed(
            adapter, sink, kinds=("book", "trades", "quotes"), seed=3, backoff=Backoff(0.02, 0.1)
        )
        holder.append(Run(feed, venue))
        async with feed:
            await asyncio.wait_for(venue.finished.wait(), 60)
            for _ in range(100):  # let an in-flight resync finish
                await asyncio.sleep(0.05)
                if all(book.is_live for book in adapter.books.values()):
                    break
    run = holder[0]
    for symbol, sync in adapter.books.items():  # where each book ended, against the reference
        ref = ours_ref[exchange.market(symbol)["id"]]
        if sync.is_live and sync.book.sequence >= ref.sequence:
            ref.advance_to(sync.book.sequence)
            if (sync.book.bids(), sync.book.asks()) != ref.levels():
                run.failures.append(f"{symbol} ended off the reference")
    return run


def _published_chain_is_unbroken(run: Run, shared: Path) -> int:
    """Between snapshots, each published update starts right after the previous one."""
    starts = {s: r.starts for s, r in references(shared).items()}
    previous: dict[str, int] = {}
    checked = 0
    for event in run.events:
        if not isinstance(event, BookUpdate):
            continue
        symbol = event.instrument_id.symbol
        if not event.is_snapshot:
            market_id = run.feed.exchange.market(symbol)["id"]
            assert starts[market_id][event.sequence] <= previous[symbol] + 1, (
                symbol,
                event.sequence,
            )
            checked += 1
        previous[symbol] = event.sequence
    return checked


@pytest.mark.slow
def test_ccxt_and_our_books_equal_the_reference_at_every_step(shared_data: Path) -> None:
    run = asyncio.run(_run(shared_data, None))
    assert not run.failures, run.failures[:3]
    books = run.feed.adapter.books
    assert len(books) == 9 and all(b.is_live and b.stats.gaps == 0 for b in books.values())
    assert all(b.stats.crossed == 0 for b in books.values())
    updates = [e for e in run.events if isinstance(e, BookUpdate)]
    # every published update (snapshots included) was compared, all but the few joined together
    # with a snapshot one by one; ccxt's book at every message it applied after its snapshot
    assert len(updates) - 18 <= run.counts["our steps compared"] <= len(updates)
    assert run.counts["our steps compared"] > 3700
    assert run.counts["ccxt steps compared"] >= len(updates) - 2 * len(books) - 18
    # each symbol's first snapshot was the recorded body, fetched by ccxt on the public path
    first = {s: (recorded, path) for s, _, recorded, path in reversed(run.venue.snapshots_served)}
    assert first == dict.fromkeys(first, (True, "/api/v1/market/orderbook/level2_100"))
    assert len(first) == 9
    # tickers: every one replayed, top of book equal wherever the ticker's sequence was published
    quotes = [e for e in run.events if isinstance(e, QuoteTick)]
    assert len(quotes) == 830 and run.counts["ticker matches"] >= 750
    trades = [e for e in run.events if isinstance(e, TradeTick)]
    assert len(trades) == 18 and trades[0].ts_event_ns == 1619378327739050725
    assert trades[0].aggressor is AggressorSide.BUYER
    assert sum(len(t) for t in run.feed.exchange.trades.values()) == 18
    assert _published_chain_is_unbroken(run, shared_data) > 3700


@pytest.mark.slow
def test_faults_are_detected_and_every_book_resyncs_to_the_reference(shared_data: Path) -> None:
    plan = FaultPlan(drop=0.01, duplicate=0.01, reorder=0.01, disconnect_after=(2500,), seed=5)
    run = asyncio.run(_run(shared_data, plan))
    assert not run.failures, run.failures[:3]
    injected = Counter(fault for _, fault in plan.log)
    assert injected[Fault.DROP] and injected[Fault.DUPLICATE] and injected[Fault.REORDER]
    books = run.feed.adapter.books
    assert run.counts["holes at a live book"] >= 3
    assert run.counts["gaps detected"] == run.counts["holes at a live book"]  # 100 %
    assert run.feed.stats.reconnects >= 1, "the forced disconnect was survived"
    assert sum(b.stats.resyncs for b in books.values()) >= run.counts["gaps detected"]
    assert all(b.is_live for b in books.values()), "every book ended resynced"
    assert all(b.stats.crossed == 0 for b in books.values())
    assert _published_chain_is_unbroken(run, shared_data) > 1000
    assert run.counts["our steps compared"] > 1000


def test_the_fake_venue_speaks_kucoins_rest_and_ws_protocol(shared_data: Path) -> None:
    """Plumbing: bullet-public, verbatim recorded bodies, welcome/ack/pong/error, replay."""
    import aiohttp

    async def scenario() -> None:
        files = [shared_data / KUCOIN / WS, shared_data / KUCOIN / HTTP]
        venue = KucoinFakeVenue(files, symbols_file=shared_data / KUCOIN / SYMBOLS, await_topics=())
        snapshot = venue.recorded_snapshots["BCHSV-USDT"]
        book = "/api.kucoin.com/api/v1/market/orderbook/level2_100?symbol="
        async with FakeVenueServer(venue) as server, aiohttp.ClientSession() as http:
            api = f"{server.base_url}/api.kucoin.com/api"
            async with http.post(f"{api}/v1/bullet-public") as response:
                bullet = await response.json()
            endpoint = bullet["data"]["instanceServers"][0]["endpoint"]
            assert endpoint.startswith(f"ws://127.0.0.1:{server.port}/") and bullet["data"]["token"]
            async with http.get(f"{api}/v2/symbols") as response:
                assert await response.text() == venue.symbols_body
            async with http.get(f"{api}/v3/currencies") as response:
                assert response.status == 404  # not recorded: ccxt is told not to ask
            for symbol in venue.recorded_snapshots:  # before the replay: the recorded bodies
                async with http.get(f"{server.base_url}{book}{symbol}") as response:
                    assert await response.text() == venue.recorded_snapshots[symbol]
            async with http.ws_connect(f"{endpoint}?token=x&connectId=public") as ws:
                assert (await ws.receive_json())["type"] == "welcome"
                await ws.send_str('{"id": "7", "type": "ping"}')
                assert await ws.receive_json() == {"id": "7", "type": "pong"}
                await ws.send_str("not json")
                assert (await ws.receive_json())["type"] == "error"
                topic = "/market/level2:BCHSV-USDT"
                await ws.send_json(
                    {"id": "8", "type": "subscribe", "topic": topic, "response": True}
                )
                assert await ws.receive_json() == {"id": "8", "type": "ack"}
                first = await ws.receive_str()  # the recorded frame, verbatim
                assert json.loads(first)["data"]["sequenceStart"] == 1613277183874
                await asyncio.wait_for(venue.finished.wait(), 30)
                async with http.get(f"{server.base_url}{book}BCHSV-USDT") as response:
                    later = (await response.json())["data"]
                assert int(later["sequence"]) == venue.true_books["BCHSV-USDT"].sequence
                assert int(later["sequence"]) > int(json.loads(snapshot)["data"]["sequence"])

    asyncio.run(scenario())
