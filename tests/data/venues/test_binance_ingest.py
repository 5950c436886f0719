"""Bulk depth ingest: the numba scanner equals Python's float parsing and the per-message path."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core.ids import InstrumentId
from tradestack.data.book.sync import BookUpdate
from tradestack.data.recorder import CatalogSink
from tradestack.data.recordings import FrameKind, read_recording
from tradestack.data.venues.binance import BinanceBookSync, unwrap
from tradestack.data.venues.binance_ingest import BinanceDepthIngest

FILES = [
    "binance_spot/hftbacktest_btcusdt_20240808.gz",
    "binance_usdm/hftbacktest_btcusdt_20240808.gz",
    "binance_usdm/hftbacktest_btcusdt_20230405.dat.gz",
    "binance_coinm/hftbacktest_btcusd_perp_20240808.gz",
]


@pytest.mark.parametrize("name", FILES)
def test_rows_equal_a_plain_json_parse_of_every_frame(shared_data: Path, name: str) -> None:
    ingest = BinanceDepthIngest()
    expected: list[tuple[int, int, str, float, float, int]] = []
    for frame in read_recording(shared_data / "ws_messages" / name):
        if frame.kind is not FrameKind.RECV or '"depthUpdate"' not in frame.payload[:80]:
            continue
        ingest.add(frame.payload, frame.ts_ns)
        data = unwrap(json.loads(frame.payload))[1]
        ts = int(data.get("T") or data["E"]) * 1_000_000
        for side, key in (("bid", "b"), ("ask", "a")):
            for price, size in data[key]:
                expected.append((ts, frame.ts_ns, side, float(price), float(size), int(data["u"])))
    rows = ingest.to_frame()
    got = list(
        zip(
            *(rows[c].to_list() for c in ("ts_event_ns", "ts_recv_ns", "side", "price", "size")),
            rows["sequence"].to_list(),
            strict=True,
        )
    )
    assert got == expected  # bit-identical floats: the scanner rounds exactly like float()
    assert ingest.malformed == 0
    assert rows["batch_end"].sum() == ingest.messages


def test_rows_equal_what_the_live_sync_records(shared_data: Path, tmp_path: Path) -> None:
    """After the snapshot, the bulk rows are exactly the live path's diff rows."""
    from tradestack.data.catalog import Catalog

    path = shared_data / "ws_messages" / FILES[1]
    sync = BinanceBookSync(InstrumentId("BTC/USDT:USDT", "binanceusdm"), futures=True)
    sink = CatalogSink(Catalog(tmp_path))
    ingest = BinanceDepthIngest()
    for frame in read_recording(path):
        if frame.kind is FrameKind.REST:
            for update in sync.on_snapshot(json.loads(frame.payload), frame.ts_ns):
                sink(update)
            continue
        data = unwrap(json.loads(frame.payload))[1]
        if data.get("e") != "depthUpdate":
            continue
        update: BookUpdate | None = sync.on_message_safe(data, frame.ts_ns)
        if update is not None:
            sink(update)
            ingest.add(frame.payload, frame.ts_ns)
    sink.flush()
    live = Catalog(tmp_path).query("book", venue="binanceusdm", symbols="BTC/USDT:USDT")
    live = live.filter(~live["is_snapshot"]).select(ingest.to_frame().columns)
    assert live.equals(_bulk_rows(path, sync_ids={*live["sequence"].to_list()}))


def _bulk_rows(path: Path, sync_ids: set[int]) -> pl.DataFrame:
    ingest = BinanceDepthIngest()
    for frame in read_recording(path):
        if (
            frame.kind is FrameKind.RECV
            and '"depthUpdate"' in frame.payload[:80]
            and int(unwrap(json.loads(frame.payload))[1]["u"]) in sync_ids
        ):
            ingest.add(frame.payload, frame.ts_ns)
    return ingest.to_frame()


@settings(max_examples=300, deadline=None)
@given(
    price=st.decimals(min_value=0, max_value=10**7, places=8, allow_nan=False),
    size=st.decimals(min_value=0, max_value=10**6, places=8, allow_nan=False),
)
def test_decimal_strings_parse_bit_identically(price: object, size: object) -> None:
    text = f'{{"e":"depthUpdate","E":1,"s":"X","U":1,"u":1,"b":[["{price}","{size}"]],"a":[]}}'
    ingest = BinanceDepthIngest()
    ingest.add(text, 0)
    rows = ingest.to_frame()
    assert rows["price"].to_list() == [float(str(price))]
    assert rows["size"].to_list() == [float(str(size))]


@pytest.mark.parametrize(
    "junk",
    [
        "",
        "{",
        "not json",
        '{"e":"depthUpdate","E":1,"U":1,"u":2,"b":[["x","1"]],"a":[]}',
        '{"e":"depthUpdate","E":1,"U":1,"u":2,"b":[["1"]],"a":[]}',
        '{"stream":"x","data":{"e":"depthUpdate","E":1}}',
    ],
)
def test_malformed_frames_are_counted_and_skipped(junk: str) -> None:
    good = '{"e":"depthUpdate","E":5,"s":"X","U":1,"u":2,"b":[["1.5","2"]],"a":[["1.6","3"]]}'
    ingest = BinanceDepthIngest()
    ingest.add(good, 1)
    ingest.add(junk, 2)
    ingest.add(good, 3)
    rows = ingest.to_frame()
    assert ingest.malformed == 1 and ingest.messages == 2
    assert rows["ts_recv_ns"].to_list() == [1, 1, 3, 3]
    assert rows["side"].to_list() == ["bid", "ask", "bid", "ask"]


def test_unusual_but_valid_json_goes_through_the_fallback() -> None:
    # exponent notation and reordered keys are valid JSON the scanner does not take
    text = '{"a":[],"b":[["1.5e1","2"]],"u":2,"U":1,"s":"X","E":7,"e":"depthUpdate"}'
    ingest = BinanceDepthIngest()
    ingest.add(text, 0)
    rows = ingest.to_frame()
    assert rows["price"].to_list() == [15.0] and ingest.malformed == 0
