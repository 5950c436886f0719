"""Binance U/u/pu sync on recorded diffs: interleavings, duplicates, gaps, malformed frames."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradestack.core.ids import InstrumentId
from tradestack.data.book.sync import SyncState
from tradestack.data.recordings import FrameKind, read_recording
from tradestack.data.venues.binance import BinanceBookSync, unwrap

FILES = {
    "spot": "binance_spot/hftbacktest_btcusdt_20240808.gz",
    "usdm": "binance_usdm/hftbacktest_btcusdt_20240808.gz",
}
N_DIFFS = 300
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "ws_messages"


@cache
def recorded(market: str) -> tuple[dict[str, Any], tuple[dict[str, Any], ...]]:
    """The recorded snapshot and the first diffs that follow it (ids beyond the snapshot's)."""
    frames = read_recording(SHARED / FILES[market])
    snapshot: dict[str, Any] | None = None
    diffs: list[dict[str, Any]] = []
    for frame in frames:
        message = json.loads(frame.payload)
        if frame.kind is FrameKind.REST:
            snapshot = message
            continue
        data = unwrap(message)[1]
        if data.get("e") == "depthUpdate":
            diffs.append(data)
    assert snapshot is not None
    last = int(snapshot["lastUpdateId"])
    after = [d for d in diffs if int(d["u"]) > last][:N_DIFFS]
    return snapshot, tuple(after)


def reference_after(market: str, count: int) -> tuple[dict[float, float], dict[float, float]]:
    """Naive book: the recorded snapshot plus the first ``count`` diffs after it."""
    snapshot, diffs = recorded(market)
    bids = {float(p): float(s) for p, s in snapshot["bids"]}
    asks = {float(p): float(s) for p, s in snapshot["asks"]}
    for data in diffs[:count]:
        for side, levels in ((bids, data["b"]), (asks, data["a"])):
            for price, size in levels:
                if float(size) == 0:
                    side.pop(float(price), None)
                else:
                    side[float(price)] = float(size)
    return bids, asks


class ForwardReference:
    """The naive book advanced forward only, so checking every step stays linear."""

    def __init__(self, market: str) -> None:
        snapshot, self.diffs = recorded(market)
        self.bids = {float(p): float(s) for p, s in snapshot["bids"]}
        self.asks = {float(p): float(s) for p, s in snapshot["asks"]}
        self.count = 0

    def after(self, count: int) -> tuple[dict[float, float], dict[float, float]]:
        assert count >= self.count, "published updates must move forward"
        for data in self.diffs[self.count : count]:
            for side, levels in ((self.bids, data["b"]), (self.asks, data["a"])):
                for price, size in levels:
                    if float(size) == 0:
                        side.pop(float(price), None)
                    else:
                        side[float(price)] = float(size)
        self.count = count
        return self.bids, self.asks


def snapshot_at(market: str, count: int) -> dict[str, Any]:
    """What the exchange's REST endpoint returns after ``count`` diffs past the recorded one."""
    snapshot, diffs = recorded(market)
    bids, asks = reference_after(market, count)
    last = int(diffs[count - 1]["u"]) if count else int(snapshot["lastUpdateId"])
    return {
        "lastUpdateId": last,
        "bids": [[str(p), str(s)] for p, s in bids.items()],
        "asks": [[str(p), str(s)] for p, s in asks.items()],
    }


def new_sync(market: str) -> BinanceBookSync:
    return BinanceBookSync(InstrumentId("BTC/USDT", "binance"), futures=market == "usdm")


@pytest.fixture(autouse=True)
def _needs_data(shared_data: Path) -> None:
    assert (shared_data / "ws_messages").is_dir()


@pytest.mark.parametrize("market", ["spot", "usdm"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_interleaving_of_snapshot_and_diffs_converges(market: str, data: st.DataObject) -> None:
    """Subscribe at diff i, take the snapshot after diff k (i <= k), receive it after diff j."""
    _, diffs = recorded(market)
    n = len(diffs)
    k = data.draw(st.integers(1, n - 1), label="snapshot after diff")
    i = data.draw(st.integers(0, k), label="first diff received")
    j = data.draw(st.integers(i, n), label="snapshot arrives after diff")
    dup = data.draw(st.sets(st.integers(i, n - 1), max_size=5), label="duplicated diffs")
    sync = new_sync(market)
    for index in range(i, j):
        sync.on_message_safe(diffs[index], 0)
        if index in dup:
            sync.on_message_safe(diffs[index], 0)
    sync.on_snapshot(snapshot_at(market, k), 0)
    for index in range(j, n):
        update = sync.on_message_safe(diffs[index], 0)
        if index in dup:
            assert sync.on_message_safe(diffs[index], 0) is None  # a duplicate changes nothing
        if update is not None and index % 25 == 0:
            assert sync.book.equals(*reference_after(market, index + 1))
    assert sync.state is SyncState.LIVE
    assert sync.stats.gaps == 0
    assert sync.book.equals(*reference_after(market, n))


@pytest.mark.parametrize("market", ["spot", "usdm"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    missing=st.integers(5, N_DIFFS - 5),
    reorder=st.booleans(),
)
def test_a_lost_or_reordered_diff_is_a_gap_never_a_wrong_book(
    market: str, missing: int, reorder: bool
) -> None:
    _, diffs = recorded(market)
    order = list(range(len(diffs)))
    if reorder:
        order[missing], order[missing + 1] = order[missing + 1], order[missing]
    else:
        del order[missing]
    sync = new_sync(market)
    sync.on_snapshot(snapshot_at(market, 0), 0)
    reference = ForwardReference(market)
    published_wrong = 0
    for position, index in enumerate(order):
        update = sync.on_message_safe(diffs[index], 0)
        if update is not None and not sync.book.equals(*reference.after(index + 1)):
            published_wrong += 1
        if position > missing + 2:
            break
    assert published_wrong == 0
    assert sync.stats.gaps == 1
    assert sync.state is SyncState.STALE and sync.resync_requested
    # the owner fetches a fresh snapshot; the buffered diffs join it
    sync.on_snapshot(snapshot_at(market, missing + 3), 0)
    for index in range(missing + 3, len(diffs)):
        sync.on_message_safe(diffs[index], 0)
    assert sync.is_live and sync.stats.resyncs == 1
    assert sync.book.equals(*reference_after(market, len(diffs)))


JUNK = st.one_of(
    st.none(),
    st.integers(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["U", "u", "pu", "b", "a", "e", "E"]), st.text(max_size=5)),
    st.fixed_dictionaries(
        {
            "U": st.integers(),
            "u": st.integers(),
            "b": st.lists(st.lists(st.text(max_size=6), max_size=3), max_size=3),
            "a": st.just([["x", "1"]]),
        }
    ),
)


@settings(max_examples=200, deadline=None)
@given(junk=JUNK)
def test_malformed_frames_are_counted_and_leave_the_book_alone(junk: Any) -> None:
    sync = new_sync("usdm")
    sync.on_snapshot(snapshot_at("usdm", 0), 0)
    _, diffs = recorded("usdm")
    for data in diffs[:20]:
        sync.on_message_safe(data, 0)
    before = (sync.book.bids(), sync.book.asks(), sync.state, sync.stats.applied)
    assert sync.on_message_safe(junk, 0) is None
    assert sync.stats.malformed == 1
    assert (sync.book.bids(), sync.book.asks(), sync.state, sync.stats.applied) == before


def test_a_snapshot_older_than_the_buffer_asks_for_another() -> None:
    _, diffs = recorded("spot")
    sync = new_sync("spot")
    for data in diffs[10:20]:
        sync.on_message_safe(data, 0)
    sync.on_snapshot(snapshot_at("spot", 2), 0)  # diffs 3..9 were never received
    assert sync.state is SyncState.STALE and sync.resync_requested
    sync.on_snapshot(snapshot_at("spot", 12), 0)
    assert sync.is_live
    assert sync.book.equals(*reference_after("spot", 20))


def test_a_crossed_result_is_never_published() -> None:
    sync = new_sync("spot")
    body = {"lastUpdateId": 10, "bids": [["100.0", "1"]], "asks": [["101.0", "1"]]}
    assert sync.on_snapshot(body, 0)
    crossing = {"U": 11, "u": 11, "b": [["102.0", "1"]], "a": []}
    assert sync.on_message_safe(crossing, 0) is None
    assert sync.stats.crossed == 1 and sync.state is SyncState.STALE
