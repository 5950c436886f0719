"""Coinbase Advanced Trade sync on the recorded session: sequence_num, interleavings, junk."""

from __future__ import annotations

import copy
import json
from collections import Counter
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tradestack.core.events import AggressorSide, QuoteTick, TradeTick
from tradestack.core.ids import InstrumentId
from tradestack.data.book.sync import BookUpdate, MalformedMessage, SyncState
from tradestack.data.recordings import FrameKind, read_recording
from tradestack.data.venues.coinbase import (
    CoinbaseBookSync,
    CoinbaseDecoder,
    ConnectionSequence,
    SeqVerdict,
    iso8601_ns,
)

RECORDING = "coinbase/cryptofeed_v3_2026-08-09_COINBASE.jsonl.zst"
N_FRAMES = 160  # the prefix the property tests perturb: both snapshots and ~130 updates


@cache
def received(shared: Path) -> tuple[dict[str, Any], ...]:
    """Every received frame of the recording, decoded, in connection order."""
    path = shared / "ws_messages" / RECORDING
    return tuple(
        json.loads(rec.payload) for rec in read_recording(path) if rec.kind is FrameKind.RECV
    )


@pytest.fixture(scope="module")
def frames(shared_data: Path) -> tuple[dict[str, Any], ...]:
    return received(shared_data)


def _is_l2(frame: dict[str, Any], kind: str) -> bool:
    return bool(frame["channel"] == "l2_data" and frame["events"][0]["type"] == kind)


def decoder(frames: tuple[dict[str, Any], ...]) -> CoinbaseDecoder:
    products = {e["product_id"] for f in frames if f["channel"] == "l2_data" for e in f["events"]}
    out = CoinbaseDecoder({p: InstrumentId(p.replace("-", "/"), "coinbase") for p in products})
    for product, iid in out.instruments.items():
        out.books[product] = CoinbaseBookSync(iid, product)
    return out


class Reference:
    """Naive book per product: every ``l2_data`` event of the frames in recorded order."""

    def __init__(self, frames: tuple[dict[str, Any], ...]) -> None:
        self.frames = frames
        self.books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
        self.next = 0

    def advance_past(self, index: int) -> None:
        while self.next <= index:
            frame = self.frames[self.next]
            self.next += 1
            if frame["channel"] != "l2_data":
                continue
            for event in frame["events"]:
                bids, asks = self.books.setdefault(event["product_id"], ({}, {}))
                if event["type"] == "snapshot":
                    bids.clear()
                    asks.clear()
                for level in event["updates"]:
                    side = bids if level["side"] == "bid" else asks
                    price, size = float(level["price_level"]), float(level["new_quantity"])
                    if size == 0.0:
                        side.pop(price, None)
                    else:
                        side[price] = size


def test_iso8601_ns_is_exact() -> None:
    assert iso8601_ns("2026-08-09T21:05:48.228568804Z") == 1_786_309_548_228_568_804
    assert iso8601_ns("2026-08-09T21:05:48Z") == 1_786_309_548_000_000_000
    assert iso8601_ns("2026-08-09T21:05:48.17Z") == 1_786_309_548_170_000_000
    assert iso8601_ns("2026-08-09T23:05:48.5+02:00") == iso8601_ns("2026-08-09T21:05:48.5Z")
    assert iso8601_ns("2026-08-09T20:35:48.5-0030") == iso8601_ns("2026-08-09T21:05:48.5Z")
    for bad in ("", "2026-08-09", "2026-02-30T00:00:00Z", "2026-08-09T21:05:48.1234567891Z", 5):
        with pytest.raises(MalformedMessage):
            iso8601_ns(bad)


@settings(derandomize=True)
@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)),
    st.integers(0, 999),
    st.integers(1, 9),
)
def test_iso8601_ns_matches_an_independent_conversion(
    moment: datetime, nanos: int, digits: int
) -> None:
    fraction = f"{moment.microsecond:06d}{nanos:03d}"[:digits]
    text = f"{moment.replace(microsecond=0).isoformat()}.{fraction}Z"
    expected = int(np.datetime64(text[:-1], "ns").astype("int64"))
    assert iso8601_ns(text) == expected
    assert iso8601_ns(text) == int(
        moment.replace(microsecond=0, tzinfo=UTC).timestamp()
    ) * 10**9 + int((fraction + "000000000")[:9])


def test_every_recorded_timestamp_converts_exactly(frames: tuple[dict[str, Any], ...]) -> None:
    stamps = []
    for frame in frames:
        stamps.append(frame["timestamp"])
        for event in frame["events"]:
            stamps += [u["event_time"] for u in event.get("updates", [])[:3]]
            stamps += [t["time"] for t in event.get("trades", [])]
    assert len(stamps) > 1000
    for text in stamps:
        assert iso8601_ns(text) == int(np.datetime64(text[:-1], "ns").astype("int64")), text


def test_connection_sequence_verdicts() -> None:
    seq = ConnectionSequence()
    verdicts = [seq.observe(n) for n in (0, 1, 1, 3, 2, 4, 7)]
    assert verdicts == [
        SeqVerdict.NEXT,
        SeqVerdict.NEXT,
        SeqVerdict.DUPLICATE,
        SeqVerdict.GAP,
        SeqVerdict.DUPLICATE,
        SeqVerdict.NEXT,
        SeqVerdict.GAP,
    ]
    assert seq.gap_ranges == [(2, 3), (5, 7)] and seq.duplicates == 2
    assert ConnectionSequence().observe(1) is SeqVerdict.GAP  # numbering starts at 0


def test_recording_replays_to_the_reference_with_quotes_and_trades(
    frames: tuple[dict[str, Any], ...],
) -> None:
    dec, ref = decoder(frames), Reference(frames)
    published = trades = quotes = 0
    takers: Counter[tuple[str, AggressorSide]] = Counter()
    for index, frame in enumerate(frames):
        tops = {p: (s.book.best_bid(), s.book.best_ask()) for p, s in dec.books.items()}
        for event in dec.on_frame(frame, index):
            if isinstance(event, BookUpdate):
                ref.advance_past(index)
                product = event.instrument_id.symbol.replace("/", "-")
                assert dec.books[product].book.equals(*ref.books[product])
                published += 1
            elif isinstance(event, TradeTick):
                # side is the maker's: a trade at/through the best ask was a buyer lifting it
                bid, ask = tops[event.instrument_id.symbol.replace("/", "-")]
                if bid is not None and ask is not None:  # else: before the first snapshot
                    if event.price >= ask[0]:
                        takers[("at ask", event.aggressor)] += 1
                    elif event.price <= bid[0]:
                        takers[("at bid", event.aggressor)] += 1
                trades += 1
            elif isinstance(event, QuoteTick):
                assert event.bid_price < event.ask_price
                quotes += 1
    recorded_trades = sum(
        len(e["trades"])
        for f in frames
        if f["channel"] == "market_trades"
        for e in f["events"]
        if e["type"] == "update"
    )
    recorded_l2 = sum(1 for f in frames if f["channel"] == "l2_data")
    assert published == recorded_l2 and trades == recorded_trades and quotes > 100
    assert takers[("at ask", AggressorSide.BUYER)] > 10
    assert takers[("at bid", AggressorSide.SELLER)] > 10
    assert set(takers) <= {("at ask", AggressorSide.BUYER), ("at bid", AggressorSide.SELLER)}
    assert all(c.gap_ranges == [] for c in dec.connections)
    for sync in dec.books.values():
        assert sync.stats.gaps == 0 and sync.stats.malformed == 0 and sync.is_live


# One operation per frame of the prefix: deliver it, lose it, deliver it twice (the copy k frames
# later) or deliver it k frames late. Sequence numbers are connection-wide, so every frame counts.
ops = st.lists(
    st.tuples(st.sampled_from(["ok"] * 12 + ["drop", "dup", "late"]), st.integers(1, 6)),
    min_size=N_FRAMES,
    max_size=N_FRAMES,
)


@settings(
    max_examples=15,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(plan=ops)
def test_interleavings_never_publish_a_wrong_book_without_a_detected_gap(
    frames: tuple[dict[str, Any], ...], plan: list[tuple[str, int]]
) -> None:
    assert [f["sequence_num"] for f in frames[:N_FRAMES]] == list(range(N_FRAMES))
    sends: list[tuple[float, int]] = []
    for index, (op, k) in enumerate(plan):
        if op in ("ok", "dup"):
            sends.append((index, index))
        if op in ("dup", "late"):
            sends.append((index + k + 0.5, index))
    order = [index for _, index in sorted(sends)]
    dec, ref = decoder(frames), Reference(frames)
    for index in order:
        for event in dec.on_frame(frames[index], index):
            if isinstance(event, BookUpdate):
                ref.advance_past(index)
                product = event.instrument_id.symbol.replace("/", "-")
                assert dec.books[product].book.equals(*ref.books[product]), (index, plan)
    firsts = list(dict.fromkeys(order))
    # a loss shows once a later number arrives, a late frame at once; duplicates are harmless
    assert bool(dec.connections[0].gap_ranges) == (firsts != list(range(len(firsts))))
    if dec.connections[0].gap_ranges:
        assert all(sync.stats.gaps >= 1 for sync in dec.books.values())
    else:  # every frame up to the last one sent was applied once: the books are the reference
        ref.advance_past(len(firsts) - 1)
        for product, sync in dec.books.items():
            snapshot = next(
                i
                for i, f in enumerate(frames)
                if _is_l2(f, "snapshot") and f["events"][0]["product_id"] == product
            )
            assert sync.is_live == (snapshot < len(firsts))
            assert not sync.is_live or sync.book.equals(*ref.books[product])


JUNK: list[Any] = [None, "", "x", "NaN", "-1", "1e999", -5, True, [], {}, [["1", "2"]]]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(data=st.data())
def test_malformed_frames_are_counted_and_dropped_without_touching_the_book(
    frames: tuple[dict[str, Any], ...], data: Any
) -> None:
    snapshots = [i for i, f in enumerate(frames) if _is_l2(f, "snapshot")]
    # the smallest recorded book keeps this test quick
    snapshot_at = min(snapshots, key=lambda i: len(frames[i]["events"][0]["updates"]))
    product = frames[snapshot_at]["events"][0]["product_id"]
    sync = CoinbaseBookSync(InstrumentId(product, "coinbase"), product)
    assert sync.on_message_safe(frames[snapshot_at], 0) is not None
    update_at = next(
        i
        for i, f in enumerate(frames)
        if i > snapshot_at and _is_l2(f, "update") and f["events"][0]["product_id"] == product
    )
    frame = copy.deepcopy(frames[update_at])
    level = data.draw(st.integers(0, len(frame["events"][0]["updates"]) - 1))
    targets: list[tuple[Any, Any]] = [
        (frame, "sequence_num"),
        (frame, "timestamp"),
        (frame, "events"),
        (frame["events"][0], "type"),
        (frame["events"][0], "updates"),
        (frame["events"][0]["updates"], level),
        (frame["events"][0]["updates"][level], "side"),
        (frame["events"][0]["updates"][level], "price_level"),
        (frame["events"][0]["updates"][level], "new_quantity"),
    ]
    parent, key = data.draw(st.sampled_from(targets))
    if data.draw(st.booleans()) and isinstance(parent, dict):
        del parent[key]
    else:
        junk = data.draw(st.sampled_from(JUNK))
        assume(not (junk == [] and key in ("events", "updates")))  # empty lists are valid
        parent[key] = junk
    bids, asks = dict(sync.book.bids()), dict(sync.book.asks())
    assert sync.on_message_safe(frame, 1) is None
    assert sync.stats.malformed == 1
    assert sync.book.equals(bids, asks), "the book is untouched"
    assert sync.state is SyncState.STALE and sync.resync_requested, "its message is lost: resync"


def test_decoder_drops_junk_frames_and_a_junk_l2_frame_stales_every_book(
    frames: tuple[dict[str, Any], ...],
) -> None:
    dec = decoder(frames)
    for index, frame in enumerate(frames[:40]):
        dec.on_frame(frame, index)
    assert all(s.is_live for s in dec.books.values())
    last = dec.connections[0].last
    for junk in ("not json", None, [1, 2], {"channel": "l2_data"}, {"sequence_num": -1}):
        assert dec.on_frame(junk, 0) == []
    assert dec.malformed == 5 and dec.connections[0].last == last
    assert all(s.is_live for s in dec.books.values()), "an unnumbered frame shows as a gap later"
    dec.on_frame({"channel": "l2_data", "sequence_num": last + 1, "events": "junk"}, 0)
    assert all(s.state is SyncState.STALE for s in dec.books.values())
    dec.on_frame({"channel": "ticker", "sequence_num": last + 3, "events": []}, 0)
    assert dec.connections[0].gap_ranges == [(last + 2, last + 3)]


def test_a_replayed_reconnect_restarts_the_numbering_and_the_book() -> None:
    """Without sockets (a replay), a sequence_num of 0 after higher ones is a new connection:
    the new snapshot is loaded, nothing of the old book survives."""
    from tradestack.data.venues.coinbase import CoinbaseBookSync, CoinbaseDecoder

    def frame(seq: int, kind: str, levels: list[tuple[str, str, str]]) -> dict[str, Any]:
        updates = [{"side": s, "price_level": p, "new_quantity": q} for s, p, q in levels]
        return {
            "channel": "l2_data",
            "timestamp": "2024-01-01T00:00:00Z",
            "sequence_num": seq,
            "events": [{"type": kind, "product_id": "BTC-USD", "updates": updates}],
        }

    decoder = CoinbaseDecoder({"BTC-USD": InstrumentId("BTC/USD", "coinbase")})
    sync = CoinbaseBookSync(InstrumentId("BTC/USD", "coinbase"), "BTC-USD")
    decoder.books["BTC-USD"] = sync
    old = [frame(0, "snapshot", [("bid", "100", "1"), ("offer", "101", "1")])]
    old += [frame(i, "update", [("bid", f"{99 - i}", "1")]) for i in range(1, 6)]
    new = [frame(0, "snapshot", [("bid", "200", "1"), ("offer", "201", "1")])]
    new += [frame(1, "update", [("bid", "199", "2")]), frame(2, "update", [("offer", "202", "1")])]
    for f in old + new:
        decoder.on_frame(f, 1)
    assert sync.is_live
    assert sync.book.bids() == [(200.0, 1.0), (199.0, 2.0)]
    assert sync.book.asks() == [(201.0, 1.0), (202.0, 1.0)]
    assert len(decoder.connections) == 2
