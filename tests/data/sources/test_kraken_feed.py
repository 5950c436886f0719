"""The real ccxt.pro Kraken client against the fake venue replaying recorded Kraken v1 traffic.

Our book is fed the v1 frames tapped from ccxt's WebSocket client (v1 subscriptions sent through
``exchange.watch``). ccxt's own book is its v2 handler (``watch_order_book``), fed the same
recorded frames translated to v2 by the venue. Both are compared after every message with a
naive rebuild made here from the raw recording. With faults injected, every published book must
equal the rebuild in the levels Kraken's checksum covers (top 10), every snapshot after a resync
must equal it in full, and no book may be crossed.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ccxt.pro as ccxtpro
import pytest

from tradestack.core.events import AggressorSide, QuoteTick, TradeTick
from tradestack.core.ids import InstrumentId
from tradestack.data.book.sync import BookUpdate
from tradestack.data.recordings import FrameKind, read_recording
from tradestack.data.sources.ccxt_feed import CcxtFeed, tapped_exchange
from tradestack.data.sources.kraken import KrakenAdapter
from tradestack.data.venues.kraken import KrakenBookSync, parse_ticker
from tradestack.testing.ccxt_urls import point_at
from tradestack.testing.fake_venue import FakeVenueServer
from tradestack.testing.faults import FaultPlan
from tradestack.testing.venues.kraken import KrakenFakeVenue

SESSION = "kraken/cryptofeed_2021-04-17_KRAKEN"
DEPTH = 1000
Side = dict[float, float]


def recordings(shared: Path) -> list[Path]:
    return [shared / "ws_messages" / f"{SESSION}.ws.{n}.0" for n in (48, 49, 50)]


def _key(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"))


class PairReference:
    """One pair's book rebuilt naively from the raw recording: snapshot, then each update.

    Kraken's rule is applied as documented: set or remove each level in order, then keep the
    best ``DEPTH`` levels per side.
    """

    def __init__(self, snapshot: dict[str, Any], updates: list[list[Any]]) -> None:
        self.snapshot = snapshot
        self.updates = updates
        self.keys: dict[str, list[int]] = {}
        for index, update in enumerate(updates):
            self.keys.setdefault(_key(update), []).append(index)
        self.bids: Side = {float(p): float(v) for p, v, *_ in snapshot.get("bs", [])}
        self.asks: Side = {float(p): float(v) for p, v, *_ in snapshot.get("as", [])}
        self.position = -1  # -1: the recorded snapshot; i: after updates[i]

    def step(self) -> None:
        self.position += 1
        for part in self.updates[self.position][1:-2]:
            for key, side in (("a", self.asks), ("b", self.bids)):
                for price, volume, *_ in part.get(key, []):
                    if float(volume) == 0.0:
                        side.pop(float(price), None)
                    else:
                        side[float(price)] = float(volume)
        if len(self.bids) > DEPTH:
            self.bids = dict(heapq.nlargest(DEPTH, self.bids.items()))
        if len(self.asks) > DEPTH:
            self.asks = dict(heapq.nsmallest(DEPTH, self.asks.items()))

    def locate(self, message: Any) -> int:
        """The recorded index of an update frame: the next one after ``position`` if any."""
        indices = self.keys.get(_key(message))
        assert indices, f"frame not in the recording: {_key(message)[:200]}"
        later = [i for i in indices if i > self.position]
        return later[0] if later else indices[-1]

    def advance_to(self, index: int) -> None:
        while self.position < index:
            self.step()

    def find(self, bids: Side, asks: Side) -> bool:
        """Step forward until the rebuild equals this book (a snapshot taken mid-stream)."""
        while not (self.bids == bids and self.asks == asks):
            if self.position + 1 >= len(self.updates):
                return False
            self.step()
        return True

    def top(self, depth: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        return heapq.nlargest(depth, self.bids.items()), heapq.nsmallest(depth, self.asks.items())


def load_reference(path: Path) -> dict[str, PairReference]:
    snapshots: dict[str, dict[str, Any]] = {}
    updates: dict[str, list[list[Any]]] = {}
    for frame in read_recording(path):
        message = json.loads(frame.payload) if frame.kind is FrameKind.RECV else None
        if isinstance(message, list) and str(message[-2]).startswith("book"):
            if "as" in message[1] or "bs" in message[1]:
                snapshots[message[-1]] = message[1]
            else:
                updates.setdefault(message[-1], []).append(message)
    return {pair: PairReference(snapshots[pair], updates.get(pair, [])) for pair in snapshots}


@dataclass
class Run:
    feed: CcxtFeed
    venue: KrakenFakeVenue
    events: list[Any] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)


async def _run(
    shared: Path, *, faults: FaultPlan | None, ccxt_book: bool, speed: float | None
) -> Run:
    strict = faults is None
    book_path = shared / "ws_messages" / f"{SESSION}.ws.50.0"
    ours_ref = load_reference(book_path)
    ccxt_ref = load_reference(book_path)
    last_raw: list[Any] = [None]
    failures: list[str] = []  # raised inside ccxt's receive loop, an assert would be swallowed
    counts: Counter[str] = Counter()

    class Checked(tapped_exchange(ccxtpro.kraken)):  # type: ignore[misc]
        def handle_message(self, client: Any, message: Any) -> Any:
            result = super().handle_message(client, message)
            if isinstance(message, dict) and message.get("channel") == "book":
                try:
                    self.compare(message)
                except AssertionError as exc:
                    failures.append(f"ccxt: {exc!r}"[:500])
            return result

        def compare(self, message: dict[str, Any]) -> None:
            data = message["data"][0]
            book = self.orderbooks[data["symbol"]]
            ref = ccxt_ref[self.market(data["symbol"])["info"]["wsname"]]
            if message["type"] == "snapshot":
                assert ref.position == -1, "ccxt got the recorded snapshot"
            else:
                # the v2 frame is the next recorded update, values and checksum verbatim
                recorded = ref.updates[ref.position + 1]
                parts = recorded[1:-2]
                for key, side in (("a", "asks"), ("b", "bids")):
                    sent = [(float(p), float(v)) for pt in parts for p, v, *_ in pt.get(key, [])]
                    assert sent == [(lv["price"], lv["qty"]) for lv in data[side]]
                assert data["checksum"] == int(parts[-1]["c"])
                ref.step()
            # same levels, and ccxt's sides in price order: identical level by level
            assert dict(book["bids"]) == ref.bids and dict(book["asks"]) == ref.asks
            bid_prices = [level[0] for level in book["bids"]]
            ask_prices = [level[0] for level in book["asks"]]
            assert bid_prices == sorted(bid_prices, reverse=True) and ask_prices == sorted(
                ask_prices
            )
            counts["ccxt"] += 1

    exchange = Checked({"enableRateLimit": False, "has": {"fetchCurrencies": False}})
    pairs = sorted(ours_ref)
    venue = KrakenFakeVenue(
        recordings(shared),
        asset_pairs=shared / "ws_messages" / f"{SESSION}.0",
        pairs=pairs,
        v2=ccxt_book,
        book_subscribers=2 if ccxt_book else 1,
        speed=speed,
        faults=faults,
    )
    run: Run | None = None

    def check_ours(event: BookUpdate) -> None:
        assert run is not None
        adapter = run.feed.adapter
        assert isinstance(adapter, KrakenAdapter)
        symbol = event.instrument_id.symbol
        sync = adapter.books[symbol]
        ref = ours_ref[adapter.wsname(symbol)]
        assert not sync.book.is_crossed()
        if event.is_snapshot:
            if strict:
                assert ref.position == -1, "the recorded snapshot came first"
            found = ref.find(dict(sync.book.bids()), dict(sync.book.asks()))
            assert found, f"{symbol} snapshot equals no step of the rebuild"
            counts["snapshots"] += 1
            return
        index = ref.locate(last_raw[0])
        if strict:
            assert index == ref.position + 1, f"{symbol}: update {index} after {ref.position}"
        ref.advance_to(index)
        if sync.book.equals(ref.bids, ref.asks):  # L2Book keeps its price lists sorted
            counts["full_equal"] += 1
        else:
            assert not strict, f"{symbol}: deep levels differ at update {index}"
            counts["deep_differs"] += 1
        bids, asks = ref.top(10)
        assert sync.book.bids(10) == bids and sync.book.asks(10) == asks, "top 10 differ"
        counts["ours"] += 1

    def sink(event: Any) -> None:
        assert run is not None
        run.events.append(event)
        if isinstance(event, BookUpdate):
            try:
                check_ours(event)
            except AssertionError as exc:
                failures.append(f"ours: {exc!r}"[:500])

    def on_raw(url: str, message: Any, ts_recv_ns: int) -> None:
        last_raw[0] = message

    async with FakeVenueServer(venue) as server:
        point_at(exchange, server.base_url)
        await exchange.load_markets()
        by_wsname = {m["info"].get("wsname"): s for s, m in exchange.markets.items()}
        symbols = [by_wsname[pair] for pair in pairs]
        adapter = KrakenAdapter(exchange, symbols, depth=DEPTH)
        feed = CcxtFeed(adapter, sink, kinds=("book", "trades", "quotes"), seed=3, on_raw=on_raw)
        run = Run(feed, venue, counts=counts, failures=failures)
        async with feed:
            watch = None
            if ccxt_book:

                async def watch_ccxt_books() -> None:
                    while True:
                        await exchange.watch_order_book_for_symbols(symbols, DEPTH)

                watch = asyncio.get_running_loop().create_task(watch_ccxt_books())
            await asyncio.wait_for(venue.finished.wait(), 60)
            for _ in range(200):  # let an in-flight resync finish
                await asyncio.sleep(0.05)
                if all(book.is_live for book in adapter.books.values()):
                    break
            if watch is not None:
                watch.cancel()
    return run


@pytest.mark.slow
def test_ccxt_and_our_books_equal_the_reference_at_every_step(shared_data: Path) -> None:
    run = asyncio.run(_run(shared_data, faults=None, ccxt_book=True, speed=None))
    assert not run.failures, run.failures[:3]
    reference = load_reference(shared_data / "ws_messages" / f"{SESSION}.ws.50.0")
    updates = sum(len(ref.updates) for ref in reference.values())
    assert updates == 4269
    # every recorded update and snapshot, ours and ccxt's, compared level by level
    assert run.counts["ours"] == updates and run.counts["full_equal"] == updates
    assert run.counts["snapshots"] == len(reference) == 10
    assert run.counts["ccxt"] == updates + len(reference)
    for sync in run.feed.adapter.books.values():
        assert sync.is_live and sync.stats.gaps == 0 and sync.stats.checksum_failures == 0
    assert run.venue.rest_requests == ["GET /0/public/AssetPairs?"]
    assert run.venue.snapshots_served == [], "every book started from the recorded snapshot"
    # trades come through exactly as recorded (side b = buy aggressor)
    recorded = [
        (float(t[0]), float(t[1]), AggressorSide.BUYER if t[3] == "b" else AggressorSide.SELLER)
        for frame in read_recording(recordings(shared_data)[0])
        if frame.kind is FrameKind.RECV and frame.payload.startswith("[")
        for t in json.loads(frame.payload)[1]
    ]
    trades = [(t.price, t.size, t.aggressor) for t in run.events if isinstance(t, TradeTick)]
    assert trades == recorded and len(trades) == 10
    assert sum(isinstance(e, QuoteTick) for e in run.events) >= 8


@pytest.mark.slow
def test_faults_are_detected_and_the_book_resyncs_to_the_reference(shared_data: Path) -> None:
    plan = FaultPlan(drop=0.01, duplicate=0.01, reorder=0.01, disconnect_after=(2000,), seed=11)
    run = asyncio.run(_run(shared_data, faults=plan, ccxt_book=False, speed=10.0))
    assert not run.failures, run.failures[:3]
    books = run.feed.adapter.books.values()
    injected = Counter(fault.value for _, fault in plan.log)
    assert injected["drop"] + injected["reorder"] >= 40, injected
    checksum_failures = sum(s.stats.checksum_failures for s in books)
    assert checksum_failures >= 10, "lost updates show up as checksum mismatches"
    assert all(s.stats.crossed == 0 for s in books)
    assert run.venue.forced_disconnects == 1 and run.feed.stats.reconnects >= 1
    assert all(s.stats.resyncs >= 1 for s in books), "every book came back after the disconnect"
    assert all(s.is_live for s in books), "every book ended resynced"
    # resyncs: checksum failures each re-subscribe once; the disconnect re-subscribes all
    assert run.counts["snapshots"] == 10 + sum(s.stats.resyncs for s in books)
    assert run.counts["ours"] > 2000
    reasons = Counter(r.split(":")[0] for s in books for r in s.stats.gap_reasons)
    print(
        f"\nkraken faults: injected {dict(injected)}; gaps {dict(reasons)}; "
        f"resyncs {sum(s.stats.resyncs for s in books)}; updates compared {run.counts['ours']} "
        f"(top 10 equal: all; full depth equal {run.counts['full_equal']}, "
        f"deep levels differ {run.counts['deep_differs']})"
    )


def test_ticker_quotes_match_our_top_of_book(shared_data: Path) -> None:
    """v1 tickers carry no exchange time and come on their own connection, so a ticker's best
    bid/ask (price and lot volume) is compared with our top of book at any step within 250 ms
    (recorded receive times) of it. Tickers received before that pair's book snapshot (the 10
    initial ticker snapshots, ~0.7 s before the book subscription answered) are not comparable.
    """
    tops: dict[str, list[tuple[int, Any, Any]]] = {}
    syncs: dict[str, KrakenBookSync] = {}
    for frame in read_recording(recordings(shared_data)[2]):
        message = json.loads(frame.payload) if frame.kind is FrameKind.RECV else None
        if not isinstance(message, list):
            continue
        pair = message[-1]
        sync = syncs.setdefault(pair, KrakenBookSync(InstrumentId(pair, "kraken"), pair=pair))
        assert sync.on_message_safe(message, frame.ts_ns) is not None
        tops.setdefault(pair, []).append((frame.ts_ns, sync.book.best_bid(), sync.book.best_ask()))
    compared = matched = 0
    for frame in read_recording(recordings(shared_data)[1]):
        message = json.loads(frame.payload) if frame.kind is FrameKind.RECV else None
        if not isinstance(message, list):
            continue
        quote = parse_ticker(message, InstrumentId(message[-1], "kraken"), frame.ts_ns)
        states = tops[message[-1]]
        times = [ts for ts, _, _ in states]
        if frame.ts_ns < times[0]:
            continue
        compared += 1
        lo = bisect.bisect_left(times, frame.ts_ns - 250_000_000)
        hi = bisect.bisect_right(times, frame.ts_ns + 250_000_000)
        bid, ask = (quote.bid_price, quote.bid_size), (quote.ask_price, quote.ask_size)
        matched += any(b == bid and a == ask for _, b, a in states[lo:hi])
    assert compared == 8 and matched == 8
