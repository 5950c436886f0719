"""Kraken v1 book sync on the recorded book channel: checksums, truncation, faults, junk."""

from __future__ import annotations

import heapq
import json
import zlib
from decimal import Decimal
from math import inf
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradestack.core.events import AggressorSide
from tradestack.core.ids import InstrumentId
from tradestack.data.book.sync import MalformedMessage, SyncState
from tradestack.data.recordings import FrameKind, read_recording
from tradestack.data.venues.kraken import (
    KrakenBookSync,
    book_checksum,
    checksum_text,
    decimal_to_ns,
    parse_book_message,
    parse_ticker,
    parse_trades,
)

SESSION = "kraken/cryptofeed_2021-04-17_KRAKEN"
PAIR = "XMR/USD"  # the busiest pair of the recording
Texts = list[tuple[str, str]]
# deterministic; module-scoped fixtures are shared by the examples on purpose
PROPERTY = settings(
    deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _frames(shared: Path, n: int) -> list[Any]:
    path = shared / "ws_messages" / f"{SESSION}.ws.{n}.0"
    out = []
    for frame in read_recording(path):
        message = json.loads(frame.payload) if frame.kind is FrameKind.RECV else None
        if isinstance(message, list):
            out.append(message)
    return out


@pytest.fixture(scope="module")
def book_frames(shared_data: Path) -> list[Any]:
    return _frames(shared_data, 50)


def _sync(pair: str = PAIR, depth: int = 1000) -> KrakenBookSync:
    return KrakenBookSync(InstrumentId(pair, "kraken"), depth=depth, pair=pair)


class Truth:
    """Naive rebuild of one pair with the strings as sent (price → (price, volume, time))."""

    def __init__(self, snapshot: list[Any]) -> None:
        self.head = (snapshot[0], snapshot[-2], snapshot[-1])
        self.sides = {
            side: {float(lv[0]): tuple(lv[:3]) for lv in snapshot[1].get(key, [])}
            for side, key in (("a", "as"), ("b", "bs"))
        }

    def apply(self, update: list[Any]) -> None:
        for part in update[1:-2]:
            for side in ("a", "b"):
                for level in part.get(side, []):
                    if float(level[1]) == 0.0:
                        self.sides[side].pop(float(level[0]), None)
                    else:
                        self.sides[side][float(level[0])] = tuple(level[:3])

    def top(self, side: str, n: int = 10) -> Texts:
        pick = heapq.nlargest if side == "b" else heapq.nsmallest
        return [self.sides[side][p][:2] for p in pick(n, self.sides[side])]

    def snapshot(self) -> list[Any]:
        """The snapshot Kraken would send now (what a re-subscription gets)."""
        body = {
            key: [list(self.sides[side][p]) for p in sorted(self.sides[side], reverse=side == "b")]
            for side, key in (("a", "as"), ("b", "bs"))
        }
        channel_id, name, pair = self.head
        return [channel_id, body, name, pair]


def _by_pair(frames: list[Any]) -> dict[str, tuple[list[Any], list[list[Any]]]]:
    out: dict[str, tuple[list[Any], list[list[Any]]]] = {}
    for message in frames:
        if "as" in message[1] or "bs" in message[1]:
            out[message[-1]] = (message, [])
        else:
            out[message[-1]][1].append(message)
    return out


def test_checksum_of_every_recorded_update_matches(book_frames: list[Any]) -> None:
    syncs: dict[str, KrakenBookSync] = {}
    verified = multi_part = 0
    for message in book_frames:
        sync = syncs.setdefault(message[-1], _sync(message[-1]))
        update = sync.on_message(message, 0)
        assert update is not None, f"rejected {json.dumps(message)[:200]}"
        if not update.is_snapshot:
            assert sync.checksum() == int(message[-3]["c"])
            verified += 1
            multi_part += len(message) == 5
    assert verified == 4269 and multi_part == 1
    assert all(s.stats.checksum_failures == 0 and s.stats.gaps == 0 for s in syncs.values())
    assert len(syncs) == 10
    assert checksum_text("0.05000") == "5000" and checksum_text("0.00000500") == "500"
    assert checksum_text("45285.2") == "452852"
    levels = [("0.05005", "0.00000500")]
    assert book_checksum(levels, []) == zlib.crc32(b"5005500")


def test_truncation_to_the_subscribed_depth(book_frames: list[Any]) -> None:
    """The recorded stream read as a depth-100 subscription: every checksum still verifies
    (Kraken would also re-send levels coming into scope; the depth-1000 stream has no need)."""
    full, cut = _sync(), _sync(depth=100)
    truncated = 0
    for message in (m for m in book_frames if m[-1] == PAIR):
        full.on_message(message, 0)
        update = cut.on_message([*message[:-2], "book-100", PAIR], 0)
        assert update is not None and cut.is_live
        truncated += sum(1 for is_bid, price, size in update.changes if size == 0.0)
        assert max(cut.book.depth()) <= 100
        assert len(cut.level_texts(True)) == cut.book.depth()[0]
        assert cut.book.bids(10) == full.book.bids(10) and cut.book.asks(10) == full.book.asks(10)
        for price, size in cut.book.bids() + cut.book.asks():
            assert size in (full.book.size_at(True, price), full.book.size_at(False, price))
    assert truncated > 0


def test_truncation_reports_the_levels_it_removes(book_frames: list[Any]) -> None:
    snapshot = next(m for m in book_frames if m[-1] == PAIR)
    sync = _sync(depth=10)
    sync.on_message([*snapshot[:-2], "book-10", PAIR], 0)
    assert sync.book.depth() == (10, 10)
    worst_ask = sync.book.asks()[-1][0]
    best = snapshot[1]["as"][0]
    newest = max((lv[2] for lv in snapshot[1]["as"] + snapshot[1]["bs"]), key=Decimal)
    better = [f"{float(best[0]) - 0.01:.8f}", "1.00000000", str(Decimal(newest) + Decimal("1e-6"))]
    texts = sync.level_texts(False)[:9]
    c = book_checksum([(better[0], better[1]), *texts], sync.level_texts(True))
    update = sync.on_message([snapshot[0], {"a": [better], "c": str(c)}, "book-10", PAIR], 0)
    assert update is not None and (False, worst_ask, 0.0) in update.changes
    assert sync.book.depth() == (10, 10) and sync.book.best_ask() == (float(better[0]), 1.0)


def test_republished_levels_apply_like_any_update(book_frames: list[Any]) -> None:
    frames = [m for m in book_frames if m[-1] == PAIR][:50]
    plain, flagged = _sync(), _sync()
    for message in frames:
        plain.on_message(message, 0)
        marked = json.loads(json.dumps(message))
        for level in (lv for part in marked[1:-2] for k in "ab" for lv in part.get(k, [])):
            level.append("r")
        assert flagged.on_message(marked, 0) is not None
        parsed = parse_book_message(marked)
        assert parsed.is_snapshot or all(level.republished for _, level in parsed.changes)
    assert flagged.book.bids() == plain.book.bids() and flagged.book.asks() == plain.book.asks()


def test_exact_timestamps_and_trade_ticker_parsers(shared_data: Path) -> None:
    assert decimal_to_ns("1618678133.365913") == 1_618_678_133_365_913_000
    level = ["354.15000000", "5.00000000", "1618678133.365913"]
    update = parse_book_message([992, {"b": [level], "c": "1"}, "book-1000", PAIR])
    assert update.ts_event_ns == 1_618_678_133_365_913_000 and update.checksum == 1
    iid = InstrumentId(PAIR, "kraken")
    trades = [t for m in _frames(shared_data, 48) for t in parse_trades(m, iid, 7)]
    assert len(trades) == 10
    first = trades[0]  # ["354.11000000","0.89594024","1618678142.557535","s","l",""]
    assert (first.price, first.size, first.aggressor) == (354.11, 0.89594024, AggressorSide.SELLER)
    assert first.ts_event_ns == 1_618_678_142_557_535_000 and first.ts_recv_ns == 7
    assert {t.aggressor for t in trades} == {AggressorSide.BUYER, AggressorSide.SELLER}
    quotes = [parse_ticker(m, iid, 9) for m in _frames(shared_data, 49)]
    assert len(quotes) == 18
    q = quotes[0]  # b ["13.232900",185,"185.18432037"], a ["13.253900",35,"35.72892241"]
    assert (q.bid_price, q.bid_size, q.ask_price, q.ask_size) == (
        13.2329,
        185.18432037,
        13.2539,
        35.72892241,
    )


def _drop_outcomes(snapshot: list[Any], updates: list[list[Any]]) -> list[tuple[str, int]]:
    """Follow what dropping each update alone leaves behind, using the rebuild.

    The lost levels differ from the venue's until an update sets them again (``healed``). The
    checksum sees them only while one of them is at or better than the venue's 10th best price
    on its side (``detected``, with the index of that update); else ``latent`` at the end.
    """
    truth = Truth(snapshot)
    diffs: list[dict[tuple[str, float], Any]] = []
    touched: list[set[tuple[str, float]]] = []
    reach: list[tuple[float, float]] = []  # (10th best bid, 10th best ask); all when fewer
    for update in updates:
        keys = {
            (side, float(lv[0])) for pt in update[1:-2] for side in "ab" for lv in pt.get(side, [])
        }
        before = {key: truth.sides[key[0]].get(key[1]) for key in keys}
        truth.apply(update)
        diffs.append({k: v for k, v in before.items() if truth.sides[k[0]].get(k[1]) != v})
        touched.append(keys)
        bids, asks = heapq.nlargest(10, truth.sides["b"]), heapq.nsmallest(10, truth.sides["a"])
        reach.append((bids[-1] if len(bids) == 10 else -inf, asks[-1] if len(asks) == 10 else inf))
    outcomes: list[tuple[str, int]] = []
    for i, lost in enumerate(diffs):
        pending = set(lost)
        outcome = ("no-op", i) if not pending else ("latent", len(updates))
        for j in range(i + 1, len(updates)):
            pending -= touched[j]
            if not pending:
                outcome = ("healed", j)
                break
            bid10, ask10 = reach[j]
            if any(p >= bid10 if side == "b" else p <= ask10 for side, p in pending):
                outcome = ("detected", j)
                break
        outcomes.append(outcome)
    return outcomes


def test_lost_updates_are_caught_once_they_reach_the_top_10(book_frames: list[Any]) -> None:
    """Drop each recorded update alone. Kraken's checksum covers the top 10 levels, so the loss
    is caught by the first update after which a lost level is within them, never earlier. The
    real sync is run on every 25th drop and must agree with that analysis to the update."""
    outcomes: dict[str, int] = {}
    delays: list[int] = []
    for snapshot, updates in _by_pair(book_frames).values():
        analysis = _drop_outcomes(snapshot, updates)
        for i, (outcome, j) in enumerate(analysis):
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome == "detected":
                delays.append(j - i)
            if i % 25:
                continue
            sync = _sync(snapshot[-1])
            sync.on_message(snapshot, 0)
            failed_at = None
            for k, update in enumerate(updates):
                if k != i and sync.on_message(update, 0) is None:
                    failed_at = k
                    break
            assert failed_at == (j if outcome == "detected" else None), (snapshot[-1], i)
    assert sum(outcomes.values()) == 4269
    delays.sort()
    print(
        f"\nkraken single drops: {outcomes}; detection delay (updates) median "
        f"{delays[len(delays) // 2]}, max {delays[-1]}"
    )
    assert outcomes["detected"] > 0 and outcomes["latent"] > 0


def _perturb(n: int, faults: dict[int, str]) -> list[int]:
    """Deliver 0..n-1 like the fake venue's fault plan: drop, duplicate, reorder (swap)."""
    out: list[int] = []
    held: int | None = None
    for i in range(n):
        kind = faults.get(i)
        if kind == "drop":
            continue
        if kind == "reorder" and held is None:
            held = i
            continue
        out.append(i)
        if kind == "duplicate":
            out.append(i)
        if held is not None:
            out.append(held)
            held = None
    return out if held is None else [*out, held]


@pytest.fixture(scope="module")
def window(book_frames: list[Any]) -> tuple[list[Any], list[list[Any]], list[tuple[Texts, Texts]]]:
    snapshot, updates = _by_pair(book_frames)[PAIR]
    updates = updates[:200]
    truth = Truth(snapshot)
    tops = []
    for update in updates:
        truth.apply(update)
        tops.append((truth.top("a"), truth.top("b")))
    return snapshot, updates, tops


@settings(PROPERTY, max_examples=40)
@given(
    faults=st.dictionaries(
        st.integers(0, 199), st.sampled_from(["drop", "duplicate", "reorder"]), max_size=8
    )
)
def test_faulty_delivery_never_publishes_a_wrong_top_of_book(
    window: tuple[list[Any], list[list[Any]], list[tuple[Texts, Texts]]], faults: dict[int, str]
) -> None:
    snapshot, updates, tops = window
    sync = _sync()
    sync.on_message(snapshot, 0)
    seen = -1
    for i in _perturb(len(updates), faults):
        seen = max(seen, i)  # the venue's book includes every update up to the latest sent
        update = sync.on_message_safe(updates[i], 0)
        if update is not None:
            assert not sync.book.is_crossed()
            assert (sync.level_texts(False, 10), sync.level_texts(True, 10)) == tops[seen]
        if sync.resync_requested:  # re-subscribe: Kraken sends its current book
            truth = Truth(snapshot)
            for applied in updates[: seen + 1]:
                truth.apply(applied)
            assert sync.on_message(truth.snapshot(), 0) is not None
            assert sync.book.equals(
                {p: float(v) for p, (_, v, _) in truth.sides["b"].items()},
                {p: float(v) for p, (_, v, _) in truth.sides["a"].items()},
            )
    assert sync.stats.malformed == 0 and sync.stats.crossed == 0
    if not faults:
        assert sync.stats.gaps == 0
    assert sync.stats.resyncs == sync.stats.gaps, "every detected gap was resynced"


_JUNK: st.SearchStrategy[Any] = st.sampled_from(
    ["abc", "-1", "1e5", "", None, 5, 1.5, "1.", ".5", "NaN", "inf", " 1.0", "0x10", [], {}]
)


def _mutations(update: list[Any]) -> st.SearchStrategy[Any]:
    def at(path: tuple[Any, ...], value: Any) -> Any:
        copy = json.loads(json.dumps(update))
        node = copy
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return copy

    part = len(update) - 3  # the object holding "c"
    side = "a" if "a" in update[part] else "b"
    return st.one_of(
        _JUNK.map(lambda v: at((part, side, 0, 0), v)),  # price
        _JUNK.map(lambda v: at((part, side, 0, 1), v)),  # volume
        _JUNK.map(lambda v: at((part, side, 0, 2), v)),  # time
        st.sampled_from(["x", "", None, 7]).map(
            lambda v: at((part, side, 0), ["1.0", "2.0", "3.0", v])
        ),
        st.sampled_from([["1.0"], ["1.0", "2.0"], []]).map(lambda v: at((part, side, 0), v)),
        st.sampled_from(["x1", "4294967296", "", 12, None]).map(lambda v: at((part, "c"), v)),
        st.sampled_from(["book-x", "trade", "", 3]).map(lambda v: at((-2,), v)),
        st.sampled_from(["XBT/USD", 5, None]).map(lambda v: at((-1,), v)),
        st.sampled_from(["992", None, True, 1.5]).map(lambda v: at((0,), v)),
        st.sampled_from([[], {}, {"c": "1"}, {"x": []}, "a"]).map(lambda v: at((part,), v)),
        _JUNK.map(lambda v: at((part, side), v)),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=5),
            lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=3), inner),
            max_leaves=12,
        ),
    )


@pytest.fixture(scope="module")
def live(book_frames: list[Any]) -> tuple[KrakenBookSync, list[Any], st.SearchStrategy[Any]]:
    frames = [m for m in book_frames if m[-1] == PAIR]
    sync = _sync()
    for message in frames[:20]:
        sync.on_message(message, 0)
    return sync, frames[20], _mutations(frames[20])


@settings(PROPERTY, max_examples=300)
@given(data=st.data())
def test_malformed_frames_are_counted_and_leave_the_book_alone(
    live: tuple[KrakenBookSync, list[Any], st.SearchStrategy[Any]], data: st.DataObject
) -> None:
    sync, _, mutations = live  # shared by every example: junk must never change it
    junk = data.draw(mutations)
    before = (sync.book.bids(), sync.book.asks(), sync.level_texts(True), sync.level_texts(False))
    malformed = sync.stats.malformed
    with pytest.raises((MalformedMessage, KeyError, TypeError, ValueError, IndexError)):
        sync.on_message(junk, 0)
    assert sync.on_message_safe(junk, 0) is None
    assert sync.stats.malformed == malformed + 1 and sync.state is SyncState.LIVE
    after = (sync.book.bids(), sync.book.asks(), sync.level_texts(True), sync.level_texts(False))
    assert after == before


def test_a_good_update_applies_after_junk(
    live: tuple[KrakenBookSync, list[Any], st.SearchStrategy[Any]],
) -> None:
    sync, good, _ = live
    assert sync.on_message_safe("junk", 0) is None
    assert sync.on_message(good, 0) is not None and sync.is_live


def test_updates_while_stale_are_dropped_until_a_snapshot(book_frames: list[Any]) -> None:
    frames = [m for m in book_frames if m[-1] == PAIR]
    sync = _sync()
    sync.on_message(frames[0], 0)
    assert sync.on_message(frames[2], 0) is None, "update 1 was lost: checksum mismatch"
    assert sync.state is SyncState.STALE and sync.resync_requested
    assert sync.stats.checksum_failures == 1 and sync.stats.gaps == 1
    assert sync.on_message(frames[3], 0) is None and sync.stats.old_dropped == 1
    truth = Truth(frames[0])
    for update in frames[1:4]:
        truth.apply(update)
    assert sync.on_message(truth.snapshot(), 0) is not None
    assert sync.is_live and sync.stats.resyncs == 1 and not sync.resync_requested
    assert sync.on_message(frames[4], 0) is not None
    # frame 6 overtook frame 5: its level times are newer, so 5 is known to be late
    sync.on_message(frames[6], 0)
    assert sync.on_message(frames[5], 0) is None and sync.state is SyncState.STALE
    assert sync.stats.gap_reasons[-1].startswith("out of order")
