"""KuCoin level-2 sync on the recorded session: interleavings, gaps, duplicates, junk, parsers."""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradestack.core.events import AggressorSide
from tradestack.core.ids import InstrumentId
from tradestack.data.book.sync import MalformedMessage, SyncState
from tradestack.data.recordings import FrameKind, read_recording
from tradestack.data.venues.kucoin import KucoinBookSync, parse_match, parse_ticker

WS = "kucoin/cryptofeed_2021-04-25_KUCOIN.ws.1.0"
HTTP = "kucoin/cryptofeed_2021-04-25_KUCOIN.http.0.0"
SYMBOL = "BCHSV-USDT"  # the busiest book of the session
N_DELTAS = 300
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "ws_messages"
IID = InstrumentId("BSV/USDT", "kucoin")
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

Delta = dict[str, Any]


@cache
def frames() -> tuple[tuple[int, dict[str, Any], str], ...]:
    """``(ts_ns, decoded frame or REST body, symbol)`` of the whole session, in time order."""
    out = []
    for name in (WS, HTTP):
        for rec in read_recording(SHARED / name):
            if rec.kind is FrameKind.REST:
                out.append((rec.ts_ns, json.loads(rec.payload), rec.url.rpartition("=")[2]))
            elif rec.kind is FrameKind.RECV and '"type":"message"' in rec.payload:
                message = json.loads(rec.payload)
                out.append((rec.ts_ns, message, message["topic"].rpartition(":")[2]))
    return tuple(sorted(out, key=lambda item: item[0]))


@cache
def recorded() -> tuple[dict[str, Any], tuple[Delta, ...]]:
    """The recorded snapshot of SYMBOL and the first l2updates that follow it."""
    snapshot = next(m["data"] for _, m, s in frames() if s == SYMBOL and "code" in m)
    deltas = [
        m["data"] for _, m, s in frames() if s == SYMBOL and m.get("subject") == "trade.l2update"
    ]
    after = [d for d in deltas if d["sequenceEnd"] > int(snapshot["sequence"])][:N_DELTAS]
    return snapshot, tuple(after)


@cache
def reference(count: int) -> tuple[dict[float, float], dict[float, float], int]:
    """Naive book: the recorded snapshot, then every change of the first ``count`` deltas."""
    snapshot, deltas = recorded()
    sequence = int(snapshot["sequence"])
    bids = {float(p): float(s) for p, s in snapshot["bids"]}
    asks = {float(p): float(s) for p, s in snapshot["asks"]}
    for delta in deltas[:count]:
        for side, changes in ((bids, delta["changes"]["bids"]), (asks, delta["changes"]["asks"])):
            for price, size, seq in changes:
                if int(seq) <= sequence or float(price) == 0:
                    continue
                if float(size) == 0:
                    side.pop(float(price), None)
                else:
                    side[float(price)] = float(size)
        sequence = max(sequence, delta["sequenceEnd"])
    return bids, asks, sequence


@cache
def snapshot_at_cached(count: int) -> str:
    return json.dumps(_snapshot_at(count))


def snapshot_at(count: int) -> dict[str, Any]:
    """What the REST endpoint returns after ``count`` deltas past the recorded snapshot."""
    body: dict[str, Any] = json.loads(snapshot_at_cached(count))
    return body


def _snapshot_at(count: int) -> dict[str, Any]:
    """What the REST endpoint returns after ``count`` deltas past the recorded snapshot."""
    bids, asks, sequence = reference(count)
    return {
        "code": "200000",
        "data": {
            "sequence": str(sequence),
            "time": 1619378326628,
            "bids": [[repr(p), repr(s)] for p, s in sorted(bids.items(), reverse=True)],
            "asks": [[repr(p), repr(s)] for p, s in sorted(asks.items())],
        },
    }


def batched(deltas: tuple[Delta, ...], cuts: set[int]) -> list[tuple[Delta, int]]:
    """Regroup consecutive deltas into multi-change messages (KuCoin batches changes the same
    way); each message comes with the count of deltas it completes."""
    out: list[tuple[Delta, int]] = []
    group: list[Delta] = []
    for index, delta in enumerate(deltas):
        group.append(delta)
        if index + 1 in cuts or index + 1 == len(deltas):
            message = {
                "sequenceStart": group[0]["sequenceStart"],
                "sequenceEnd": group[-1]["sequenceEnd"],
                "symbol": SYMBOL,
                "changes": {
                    side: [c for d in group for c in d["changes"][side]]
                    for side in ("asks", "bids")
                },
            }
            out.append((message, index + 1))
            group = []
    return out


def book_is(sync: KucoinBookSync, count: int) -> bool:
    bids, asks, sequence = reference(count)
    return sync.book.equals(bids, asks) and sync.last_sequence == sequence


def new_sync() -> KucoinBookSync:
    return KucoinBookSync(IID)


@pytest.fixture(autouse=True)
def _needs_data(shared_data: Path) -> None:
    assert (shared_data / "ws_messages" / "kucoin").is_dir()


@SETTINGS
@given(data=st.data())
def test_any_interleaving_of_snapshot_and_messages_converges(data: st.DataObject) -> None:
    """Subscribe at message i, snapshot after delta k, received after message j; batched."""
    _, deltas = recorded()
    cuts = data.draw(st.sets(st.integers(1, N_DELTAS - 1), max_size=120), label="batch cuts")
    messages = batched(deltas, cuts)
    n = len(messages)
    k = data.draw(st.integers(1, N_DELTAS - 1), label="snapshot after delta")
    first_after = next(m for m, (_, done) in enumerate(messages) if done > k)
    i = data.draw(st.integers(0, first_after), label="first message received")
    j = data.draw(st.integers(i, n), label="snapshot arrives after message")
    dup = data.draw(st.sets(st.integers(i, n - 1), max_size=5), label="duplicated messages")
    sync = new_sync()
    for index in range(i, j):
        for _ in range(2 if index in dup else 1):
            assert sync.on_message_safe(messages[index][0], 0) is None  # buffered
    updates = sync.on_snapshot(snapshot_at(k), 0)
    assert updates[0].is_snapshot and updates[0].sequence == reference(k)[2]
    assert book_is(sync, max(k, messages[j - 1][1] if j else 0))
    for index in range(j, n):
        update = sync.on_message_safe(messages[index][0], 0)
        if index in dup:
            assert (
                sync.on_message_safe(messages[index][0], 0) is None
            )  # a duplicate changes nothing
        if update is not None and index % 10 == 0:
            assert book_is(sync, messages[index][1])
    assert sync.state is SyncState.LIVE and sync.stats.gaps == 0
    assert book_is(sync, N_DELTAS)


@SETTINGS
@given(
    faults=st.dictionaries(
        st.integers(0, N_DELTAS - 2), st.sampled_from(["drop", "dup", "swap"]), max_size=8
    ),
)
def test_drops_duplicates_and_reorders_never_publish_a_wrong_book(faults: dict[int, str]) -> None:
    """Every published book equals the reference; every hole is a gap; resyncs converge."""
    _, deltas = recorded()
    order: list[int] = []
    index = 0
    while index < N_DELTAS:
        fault = faults.get(index)
        if fault == "drop":
            index += 1
            continue
        if fault == "swap" and index + 1 < N_DELTAS:
            order += [index + 1, index]
            index += 2
            continue
        order += [index, index] if fault == "dup" else [index]
        index += 1
    sync = new_sync()
    sync.on_snapshot(snapshot_at(0), 0)
    done = 0  # deltas the venue has produced so far (what a fresh snapshot reflects)
    for index in order:
        done = max(done, index + 1)
        before = sync.last_sequence
        update = sync.on_message_safe(deltas[index], 0)
        if update is not None:
            # published: the book moved on by exactly this delta, with nothing skipped
            assert deltas[index]["sequenceStart"] <= (before or 0) + 1
            assert book_is(sync, index + 1)
        if sync.resync_requested:
            sync.on_snapshot(snapshot_at(done), 0)
    holes = any(f in ("drop", "swap") for f in faults.values())
    assert (sync.stats.gaps >= 1) == holes
    assert sync.stats.resyncs == sync.stats.gaps
    assert sync.stats.crossed == 0
    assert book_is(sync, N_DELTAS)  # the last delta is never faulted: it shows every hole


def test_a_lost_message_is_a_gap_and_messages_buffer_until_the_resync() -> None:
    _, deltas = recorded()
    sync = new_sync()
    sync.on_snapshot(snapshot_at(0), 0)
    for delta in deltas[:10]:
        assert sync.on_message_safe(delta, 0) is not None
    assert sync.on_message_safe(deltas[11], 0) is None  # deltas[10] was lost
    assert sync.state is SyncState.STALE and sync.resync_requested
    assert sync.stats.gap_reasons == [
        f"gap: book at {deltas[9]['sequenceEnd']}, got sequenceStart={deltas[11]['sequenceStart']}"
    ]
    for delta in deltas[12:20]:
        assert sync.on_message_safe(delta, 0) is None
    updates = sync.on_snapshot(snapshot_at(11), 0)  # the venue book, lost delta included
    assert sync.is_live and sync.stats.resyncs == 1
    assert [u.sequence for u in updates[1:]] == [d["sequenceEnd"] for d in deltas[11:20]]
    assert book_is(sync, 20)


def test_a_snapshot_older_than_the_buffer_asks_for_another() -> None:
    _, deltas = recorded()
    sync = new_sync()
    for delta in deltas[10:20]:
        sync.on_message_safe(delta, 0)
    sync.on_snapshot(snapshot_at(2), 0)  # deltas 2..9 were never received
    assert sync.state is SyncState.STALE and sync.resync_requested
    sync.on_snapshot(snapshot_at(12), 0)
    assert sync.is_live and book_is(sync, 20)


def test_price_zero_changes_only_advance_the_sequence() -> None:
    sync = new_sync()
    sync.on_snapshot({"sequence": "10", "bids": [["1.0", "2"]], "asks": [["3.0", "4"]]}, 0)
    noop = {
        "sequenceStart": 11,
        "sequenceEnd": 12,
        "changes": {"asks": [["0", "0", "11"]], "bids": [["0", "0", "12"]]},
    }
    update = sync.on_message_safe(noop, 0)
    assert update is not None and update.changes == () and update.sequence == 12
    removal = {"sequenceStart": 13, "sequenceEnd": 13, "changes": {"bids": [["1.0", "0", "13"]]}}
    assert sync.on_message_safe(removal, 0) is not None
    assert sync.book.bids() == [] and sync.book.asks() == [(3.0, 4.0)]


def test_a_crossed_result_is_never_published() -> None:
    sync = new_sync()
    sync.on_snapshot({"sequence": "10", "bids": [["100.0", "1"]], "asks": [["101.0", "1"]]}, 0)
    crossing = {"sequenceStart": 11, "sequenceEnd": 11, "changes": {"bids": [["102.0", "1", "11"]]}}
    assert sync.on_message_safe(crossing, 0) is None
    assert sync.stats.crossed == 1 and sync.state is SyncState.STALE


def test_a_bad_snapshot_is_counted_and_raised() -> None:
    sync = new_sync()
    with pytest.raises(MalformedMessage):
        sync.on_snapshot({"sequence": "1.5", "bids": [], "asks": []}, 0)
    assert sync.stats.malformed == 1 and sync.state is SyncState.AWAITING_SNAPSHOT


# a change whose price never parses (or is negative/NaN), followed by anything
CHANGE = st.tuples(
    st.sampled_from([None, "x", "-1", "nan", ""]), st.lists(st.text(max_size=4), max_size=3)
).map(lambda t: [t[0], *t[1]])
JUNK = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(
        st.sampled_from(["sequenceStart", "sequenceEnd", "changes", "symbol"]), st.text(max_size=5)
    ),
    st.fixed_dictionaries(
        {
            "sequenceStart": st.one_of(st.floats(), st.none(), st.booleans(), st.just("12a")),
            "sequenceEnd": st.integers(),
            "changes": st.fixed_dictionaries({"bids": st.just([]), "asks": st.just([])}),
        }
    ),
    st.fixed_dictionaries(
        {
            "sequenceStart": st.integers(0, 2**62),
            "sequenceEnd": st.integers(0, 2**62),
            "changes": st.one_of(
                st.none(),
                st.text(max_size=3),
                st.fixed_dictionaries(
                    {"bids": st.lists(CHANGE, min_size=1, max_size=3), "asks": st.just([])}
                ),
            ),
        }
    ),
)


@settings(max_examples=300, deadline=None)
@given(junk=JUNK)
def test_malformed_frames_are_counted_and_leave_the_book_alone(junk: Any) -> None:
    _, deltas = recorded()
    sync = new_sync()
    sync.on_snapshot(snapshot_at(0), 0)
    for delta in deltas[:20]:
        sync.on_message_safe(delta, 0)
    before = (
        sync.book.bids(),
        sync.book.asks(),
        sync.state,
        sync.stats.applied,
        sync.last_sequence,
    )
    assert sync.on_message_safe(junk, 0) is None
    assert sync.stats.malformed == 1
    after = (sync.book.bids(), sync.book.asks(), sync.state, sync.stats.applied, sync.last_sequence)
    assert after == before


def test_a_change_outside_its_message_range_is_malformed() -> None:
    sync = new_sync()
    sync.on_snapshot({"sequence": "10", "bids": [["1.0", "2"]], "asks": [["3.0", "4"]]}, 0)
    bad = {"sequenceStart": 11, "sequenceEnd": 11, "changes": {"bids": [["1.5", "1", "12"]]}}
    assert sync.on_message_safe(bad, 0) is None
    assert sync.stats.malformed == 1 and sync.book.bids() == [(1.0, 2.0)]


def test_every_recorded_book_matches_the_recorded_ticker_at_the_same_sequence() -> None:
    """``/market/ticker`` carries the book sequence it was cut at: top of book must agree."""
    syncs: dict[str, KucoinBookSync] = {}
    tops: dict[tuple[str, int], tuple[Any, Any]] = {}
    compared: Counter[str] = Counter()
    for ts, message, symbol in frames():
        sync = syncs.setdefault(symbol, KucoinBookSync(InstrumentId(symbol, "kucoin")))
        if "code" in message:
            updates = sync.on_snapshot(message, ts)
        elif message["subject"] == "trade.l2update":
            update = sync.on_message_safe(message["data"], ts)
            updates = [] if update is None else [update]
        elif message["subject"] == "trade.ticker":
            key = (symbol, int(message["data"]["sequence"]))
            if key in tops:
                quote = parse_ticker(message["data"], sync.instrument_id, ts)
                assert tops[key] == (
                    (quote.bid_price, quote.bid_size),
                    (quote.ask_price, quote.ask_size),
                )
                assert quote.ts_event_ns == message["data"]["time"] * 1_000_000
                compared[symbol] += 1
            continue
        else:
            continue
        for update in updates:
            tops[(symbol, update.sequence)] = (sync.book.best_bid(), sync.book.best_ask())
    assert all(s.stats.gaps == 0 and s.is_live for s in syncs.values() if s.stats.applied)
    assert len(compared) == 9 and sum(compared.values()) >= 700


def test_matches_become_trades_with_the_taker_side_and_exact_ns_times() -> None:
    matches = [m["data"] for _, m, _ in frames() if m.get("subject") == "trade.l3match"]
    assert len(matches) == 18
    for data in matches:
        trade = parse_match(data, IID, 7)
        assert trade.ts_event_ns == int(data["time"]) and trade.ts_recv_ns == 7
        assert trade.aggressor is (
            AggressorSide.BUYER if data["side"] == "buy" else AggressorSide.SELLER
        )
        assert trade.price == float(data["price"]) and trade.trade_id == data["tradeId"]
    first = parse_match(matches[0], IID, 0)
    assert first.ts_event_ns == 1619378327739050725  # nanosecond string, kept exact
    with pytest.raises(MalformedMessage):
        parse_match({**matches[0], "side": "both"}, IID, 0)
