"""Record a Binance session from the fake venue, then replay it: same books, same catalog rows."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from tradestack.cli import main
from tradestack.data.book.sync import BookUpdate
from tradestack.data.catalog import Catalog
from tradestack.data.recorder import CatalogSink
from tradestack.data.sources.session import record, replay
from tradestack.testing.fake_venue import FakeVenueServer
from tradestack.testing.faults import FaultPlan
from tradestack.testing.venues.binance import BinanceFakeVenue

SPOT = "ws_messages/binance_spot/hftbacktest_btcusdt_20240808.gz"
INFO = "ws_messages/binance_spot/cryptofeed_2021-10-12_BINANCE.0.gz"


async def _record(shared: Path, out: Path, faults: FaultPlan | None = None) -> Path:
    venue = BinanceFakeVenue(
        [shared / SPOT], exchange_info=shared / INFO, max_frames=8000, faults=faults
    )
    raw = out / "raw.jsonl.gz"
    async with FakeVenueServer(venue) as server:
        await record(
            "binance",
            ["BTC/USDT"],
            ["book", "trades", "quotes"],
            raw_path=raw,
            catalog_root=out / "live",
            base_url=server.base_url,
            until=venue.finished.is_set,
        )
    return raw


FAULTS = FaultPlan(
    drop=0.01, duplicate=0.01, reorder=0.01, disconnect_after=(500, 500, 500), seed=4
)


@pytest.mark.slow
@pytest.mark.parametrize("faults", [None, FAULTS], ids=["clean", "faults"])
def test_replay_reproduces_the_live_catalog_rows_exactly(
    shared_data: Path, tmp_path: Path, faults: FaultPlan | None
) -> None:
    """Gaps, resync snapshots and a disconnect included: replay makes the same rows."""
    raw = asyncio.run(_record(shared_data, tmp_path, faults))
    with gzip.open(raw, "rt") as handle:
        lines = [json.loads(line) for line in handle]
    assert lines[0]["t"] == "header" and lines[0]["markets"]["BTC/USDT"]["id"] == "BTCUSDT"
    assert any(line["t"] == "snapshot" for line in lines)

    sink = CatalogSink(Catalog(tmp_path / "replayed"))
    updates: list[BookUpdate] = []

    def both(event: object) -> None:
        sink(event)  # type: ignore[arg-type]
        if isinstance(event, BookUpdate):
            updates.append(event)

    state, feed = replay(raw, sink=both)
    sink.flush()
    assert state.messages == sum(1 for line in lines if line["t"] == "recv")
    book = feed.adapter.books["BTC/USDT"]
    assert book.is_live
    if faults is None:
        assert book.stats.gaps == 0 and len(updates) > 500
    else:  # how many diffs fall into gaps depends on when the resyncs land
        assert len(updates) > 200
        assert book.stats.gaps >= 3

    live, replayed = Catalog(tmp_path / "live"), Catalog(tmp_path / "replayed")
    for kind in ("book", "trades", "quotes"):
        a = live.query(kind, venue="binance", symbols="BTC/USDT")
        b = replayed.query(kind, venue="binance", symbols="BTC/USDT")
        cols = [c for c in a.columns if not c.startswith("_")]
        assert a.height > 0
        assert a.select(cols).equals(b.select(cols)), kind
    book_rows = live.query("book", venue="binance", symbols="BTC/USDT")
    assert book_rows.filter(pl.col("is_snapshot")).height > 1000  # the joined REST snapshot


def test_replay_refuses_a_file_that_is_not_a_tradestack_recording(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(shared_data / SPOT)]) == 2
    assert "not a tradestack recording" in capsys.readouterr().err


def test_record_rejects_an_unknown_venue(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["record", "--venue", "nasdaq", "--symbols", "X", "--out", str(tmp_path)])
    assert code == 2
    assert "unknown venue 'nasdaq'" in capsys.readouterr().err


def test_a_recording_cut_short_replays_up_to_the_cut(tmp_path: Path) -> None:
    """A recorder killed before closing its file leaves no gzip trailer and a partial line."""
    import shutil

    source = Path(__file__).resolve().parents[3] / "examples" / "data" / "recordings"
    whole = next(source.glob("*.jsonl.gz"))
    raw = whole.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(raw[: len(raw) * 2 // 3])
    shutil.copy(whole, tmp_path / "whole.jsonl.gz")
    full_state, _ = replay(tmp_path / "whole.jsonl.gz", sink=lambda event: None)
    cut_state, feed = replay(cut, sink=lambda event: None)
    assert 0 < cut_state.messages < full_state.messages
    assert feed.adapter.books["BTC/USDT"].stats.malformed == 0


def test_control_records_replay_the_state_changes_no_frame_shows(tmp_path: Path) -> None:
    """A ``reset`` written on disconnect puts the replayed book where the live one was."""
    source = Path(__file__).resolve().parents[3] / "examples" / "data" / "recordings"
    raw = tmp_path / "with-control.jsonl.gz"
    control = {
        "t": "control",
        "symbol": "BTC/USDT",
        "ts_ns": 1,
        "data": {"action": "reset", "reason": "disconnected"},
    }
    # a second gzip member appended, as a recorder reopening its file would
    raw.write_bytes(
        next(source.glob("*.jsonl.gz")).read_bytes()
        + gzip.compress((json.dumps(control) + "\n").encode())
    )
    _, feed = replay(raw, sink=lambda event: None)
    book = feed.adapter.books["BTC/USDT"]
    assert not book.is_live and book.book.depth() == (0, 0)
    assert book.stats.gap_reasons == ["disconnected"]
