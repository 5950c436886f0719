"""Building the L2 feed: the Binance USD-M recordings in the shared data, looping, validation."""

from __future__ import annotations

import gzip
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.data.errors import DataValidationError
from tradestack.engine.l2 import L2BacktestEngine
from tradestack.engine.strategy import Strategy
from tradestack.execution.sim.feed import (
    CLEAR,
    DEPTH,
    FUNDING,
    SNAPSHOT,
    TRADE,
    L2Feed,
    binance_feed,
)

D = Decimal
BTC = InstrumentId("BTCUSDT", "binance")
USDM = "ws_messages/binance_usdm"
WITH_SNAPSHOT = f"{USDM}/hftbacktest_btcusdt_20240808.gz"
WITHOUT_SNAPSHOT = f"{USDM}/hftbacktest_btcusdt_20230405.dat.gz"
MS = 1_000_000


class Idle(Strategy):
    pass


@pytest.fixture(scope="module")
def feed(shared_data: Path) -> L2Feed:
    return binance_feed(shared_data / WITH_SNAPSHOT, BTC, futures=True)


def test_counts_by_kind(feed: L2Feed) -> None:
    assert feed.counts() == {"depth": 443_262, "trade": 21_313, "clear": 1, "snapshot": 2_000}
    assert len(feed) == 466_576
    stats = feed.stats
    assert (stats.snapshots, stats.trades, stats.depth_messages) == (1, 21_313, 6_551)
    assert (stats.gaps, stats.malformed, stats.unsynced_diffs) == (0, 0, 0)
    assert stats.skipped == {"bookTicker": 66_089}


def test_rows_are_sorted_by_exchange_time(feed: L2Feed) -> None:
    assert (np.diff(feed.events["exch_ts"]) >= 0).all()


def test_local_order_sorts_receive_time_stably(feed: L2Feed) -> None:
    order = feed.local_order
    assert sorted(order.tolist()) == list(range(len(feed)))
    local = feed.events["local_ts"][order]
    assert (np.diff(local) >= 0).all()
    ties = np.flatnonzero(np.diff(local) == 0)
    assert (order[ties + 1] > order[ties]).all()  # equal receive times keep exchange order


def test_clock_skew_is_removed(feed: L2Feed) -> None:
    latency = feed.events["local_ts"] - feed.events["exch_ts"]
    # the recorder's clock ran ~1.27 s behind Binance; the constant skew is shifted away
    assert feed.stats.clock_offset_ns == 1_272_156_851
    assert int(latency.min()) == 0
    assert (latency >= 0).all()


def test_snapshot_rows_follow_a_clear_of_the_same_message(feed: L2Feed) -> None:
    kind = feed.events["kind"]
    (clear,) = np.flatnonzero(kind == CLEAR)
    snap = np.flatnonzero(kind == SNAPSHOT)
    assert snap.tolist() == list(range(clear + 1, clear + 1 + len(snap)))
    block = feed.events[clear : clear + 1 + len(snap)]
    assert len(set(block["exch_ts"].tolist())) == len(set(block["local_ts"].tolist())) == 1
    assert int(feed.events["side"][clear]) == 0  # both sides
    # no diff is applied to a book that was never loaded
    assert not (kind[:clear] == DEPTH).any()


def test_real_prices_are_on_the_tick_grid(feed: L2Feed) -> None:
    inst = Instrument(BTC, kind=InstrumentKind.PERPETUAL, tick_size=D("0.1"), lot_size=D("0.001"))
    engine = L2BacktestEngine(Idle(), feed, instrument=inst)
    assert engine.venue.stats()["feed_rows"] == len(feed)


def test_looped_real_feed_starts_at_the_snapshot_and_shifts_every_copy(feed: L2Feed) -> None:
    clear = int(np.flatnonzero(feed.events["kind"] == CLEAR)[0])
    base = feed.events[clear:]
    looped = feed.looped(2 * len(base))
    assert len(looped) == 2 * len(base)
    first, second = looped.events[: len(base)], looped.events[len(base) :]
    assert first.tobytes() == base.tobytes()
    span = int(max(base["exch_ts"].max(), base["local_ts"].max())) - int(base["exch_ts"][0]) + MS
    assert (second["exch_ts"] - first["exch_ts"] == span).all()
    assert (second["local_ts"] - first["local_ts"] == span).all()
    assert (second[["kind", "side", "px", "qty"]] == first[["kind", "side", "px", "qty"]]).all()
    assert looped.counts()["clear"] == 2


SYNTH = InstrumentId("TEST", "sim")


def synthetic(px: float = 100.1) -> L2Feed:
    return L2Feed.from_rows(
        SYNTH,
        [
            (1_000, 1_500, CLEAR, 0, 0.0, 0.0, 0),
            (1_000, 1_500, SNAPSHOT, 1, 100.0, 1.0, 0),
            (1_000, 1_500, SNAPSHOT, -1, px, 2.0, 0),
            (3_000, 3_200, TRADE, 1, px, 1.0, 0),
            (2_000, 4_000, DEPTH, -1, px, 1.0, 0),  # given out of exchange order
        ],
    )


def test_from_rows_sorts_by_exchange_time_and_orders_by_receive_time() -> None:
    feed = synthetic()
    assert feed.events["exch_ts"].tolist() == [1_000, 1_000, 1_000, 2_000, 3_000]
    assert feed.events["kind"].tolist() == [CLEAR, SNAPSHOT, SNAPSHOT, DEPTH, TRADE]
    assert feed.events["local_ts"][feed.local_order].tolist() == [1_500] * 3 + [3_200, 4_000]
    assert (feed.start_ns, feed.end_ns) == (1_000, 4_000)
    assert feed.price_range() == (100.0, 100.1)


@pytest.mark.parametrize("n_events", [10, 7])
def test_looped_synthetic_feed(n_events: int) -> None:
    feed = synthetic()
    looped = feed.looped(n_events)
    assert len(looped) == n_events
    span = 4_000 - 1_000 + MS  # last receive time - first exchange time + 1 ms
    expected = np.concatenate([feed.events["exch_ts"], feed.events["exch_ts"] + span])[:n_events]
    assert looped.events["exch_ts"].tolist() == expected.tolist()
    assert (looped.events["local_ts"][5:] == feed.events["local_ts"][: n_events - 5] + span).all()


def test_a_feed_without_a_snapshot_cannot_be_looped() -> None:
    rows = [(1, 1, DEPTH, 1, 100.0, 1.0, 0), (2, 2, TRADE, 1, 100.0, 1.0, 0)]
    with pytest.raises(ValueError, match="snapshot"):
        L2Feed.from_rows(SYNTH, rows).looped(4)


def test_an_off_tick_price_in_the_feed_is_rejected_naming_it() -> None:
    inst = Instrument(SYNTH, kind=InstrumentKind.PERPETUAL, tick_size=D("0.1"), lot_size=D("1"))
    with pytest.raises(DataValidationError, match=r"price 100\.05 is not on the .*tick grid"):
        L2BacktestEngine(Idle(), synthetic(px=100.05), instrument=inst)


# -- a recording without any REST snapshot -------------------------------------------------------
@pytest.fixture(scope="module")
def snapshotless(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first 3 000 frames of the 2023-04-05 recording (it has no REST snapshot at all)."""
    source = shared_data / WITHOUT_SNAPSHOT
    target = tmp_path_factory.mktemp("rec") / "head_btcusdt_20230405.dat.gz"
    with gzip.open(source, "rt") as src, gzip.open(target, "wt") as dst:
        for _, line in zip(range(3_000), src, strict=False):
            dst.write(line)
    return target


def test_a_recording_without_snapshot_replays_with_require_snapshot_false(
    snapshotless: Path,
) -> None:
    feed = binance_feed(snapshotless, BTC, futures=True, require_snapshot=False)
    counts = feed.counts()
    assert counts["depth"] > 0 and counts["trade"] > 0 and counts["funding"] > 0
    assert "clear" not in counts and "snapshot" not in counts
    assert feed.stats.snapshots == 0
    assert feed.stats.unsynced_diffs == feed.stats.depth_messages > 0
    assert (feed.events["local_ts"] >= feed.events["exch_ts"]).all()
    assert (feed.events["kind"] == FUNDING).sum() == feed.stats.funding_updates


def test_a_recording_without_snapshot_needs_require_snapshot_false(snapshotless: Path) -> None:
    with pytest.raises(DataValidationError, match="require_snapshot"):
        binance_feed(snapshotless, BTC, futures=True)


def test_unsynced_diffs_still_join_a_snapshot_that_arrives_later(tmp_path: Path) -> None:
    base_ms = 1_700_000_000_000
    lines = []

    def diff(u: int) -> None:
        data = {
            "e": "depthUpdate", "E": base_ms + u, "T": base_ms + u, "s": "BTCUSDT",
            "U": u, "u": u, "pu": u - 1,
            "b": [[f"{100 + u:.1f}", "1"]], "a": [[f"{300 + u:.1f}", "1"]],
        }  # fmt: skip
        frame = {"stream": "btcusdt@depth@0ms", "data": data}
        lines.append(f"{(base_ms + u) * 1_000_000} {json.dumps(frame)}")

    for u in range(1, 9):
        diff(u)
    snap = {"lastUpdateId": 5, "E": base_ms + 5, "T": base_ms + 5, "bids": [["100.0", "2"]],
            "asks": [["500.0", "2"]]}  # fmt: skip
    lines.append(f"{(base_ms + 8) * 1_000_000} {json.dumps(snap)}")
    for u in range(9, 13):
        diff(u)
    path = tmp_path / "partial.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    btc = InstrumentId("BTCUSDT", "binance")
    synced = binance_feed(path, btc, futures=True)
    partial = binance_feed(path, btc, futures=True, require_snapshot=False)
    assert synced.stats.gaps == partial.stats.gaps == 0
    last = synced.events[synced.events["kind"] == DEPTH][-2:]
    assert list(partial.events[partial.events["kind"] == DEPTH][-2:]) == list(last)
    assert float(last["px"][0]) == 112.0
