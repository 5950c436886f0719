"""Catalog: write/query round trips, ordering, idempotent appends, pruning, events, failures."""

from __future__ import annotations

import hashlib
import itertools
import tempfile
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core.events import AggressorSide, Bar, BookSide, FundingRate, QuoteTick, TradeTick
from tradestack.core.ids import InstrumentId
from tradestack.data.catalog import BookDeltaEvent, Catalog, SchemaError, empty_frame

DAY = 86_400 * 10**9
BTC = InstrumentId("BTC/USDT", "binance")
ETH = InstrumentId("ETH/USDT", "binance")
PERP = InstrumentId("BTC/USDT:USDT", "binanceusdm")


def trades(ts: list[int], first_id: int = 0, price: float = 100.0) -> pl.DataFrame:
    n = len(ts)
    return pl.DataFrame(
        {
            "ts_event_ns": ts,
            "ts_recv_ns": [t + 1 for t in ts],
            "price": [price + i for i in range(n)],
            "size": [1.0 + i / 10 for i in range(n)],
            "aggressor": ["buyer", "seller", "unknown"] * (n // 3) + ["buyer"] * (n % 3),
            "trade_id": [str(first_id + i) for i in range(n)],
        },
        schema={
            "ts_event_ns": pl.Int64,
            "ts_recv_ns": pl.Int64,
            "price": pl.Float64,
            "size": pl.Float64,
            "aggressor": pl.String,
            "trade_id": pl.String,
        },
    )


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def stored(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.drop("venue", "symbol")


def test_round_trip_keeps_rows_order_and_ties(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    frame = trades([5, 5, 5, 3, 9, 5])
    cat.write("binance", "trades", "BTC/USDT", frame)
    out = cat.query("trades", BTC)
    # Sorted by time; equal times keep their written order (ids 0, 1, 2, 5).
    assert out["trade_id"].to_list() == ["3", "0", "1", "2", "5", "4"]
    assert stored(out).equals(frame.sort("ts_event_ns", maintain_order=True))
    assert out["venue"].unique().to_list() == ["binance"]
    assert out["symbol"].unique().to_list() == ["BTC/USDT"]


def test_a_write_spanning_days_is_split_into_daily_parts(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    frame = trades([DAY - 1, DAY, 2 * DAY + 5, -1])
    result = cat.write("binanceusdm", "trades", "BTC/USDT:USDT", frame)
    days = sorted(p.parent.name for p in result.paths)
    assert days == ["date=1969-12-31", "date=1970-01-01", "date=1970-01-02", "date=1970-01-03"]
    assert all("symbol=BTC~2FUSDT~3AUSDT" in str(p) for p in result.paths)
    assert stored(cat.query("trades", PERP)).equals(frame.sort("ts_event_ns"))
    one_day = cat.query("trades", PERP, start=DAY, end=2 * DAY)
    assert one_day["ts_event_ns"].to_list() == [DAY]


def test_writing_the_same_frame_twice_stores_it_once(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    frame = trades([1, DAY + 1])
    first = cat.write("binance", "trades", "BTC/USDT", frame)
    before = tree(tmp_path)
    again = cat.write("binance", "trades", "BTC/USDT", frame)
    assert again.paths == first.paths and again.existing == first.paths
    assert tree(tmp_path) == before
    assert cat.query("trades", BTC).height == 2
    cat.write("binance", "trades", "BTC/USDT", trades([2], first_id=10))
    assert cat.query("trades", BTC).height == 3


def test_later_writes_follow_earlier_ones_at_equal_times(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    cat.write("binance", "trades", "BTC/USDT", trades([7, 7], first_id=0))
    cat.write("binance", "trades", "BTC/USDT", trades([7, 6], first_id=10))
    assert cat.query("trades", BTC)["trade_id"].to_list() == ["11", "0", "1", "10"]


def test_writes_at_the_same_instant_still_order_deterministically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tradestack.data.catalog.store.next_write_ns", lambda: 42)
    cat = Catalog(tmp_path)
    cat.write("binance", "trades", "BTC/USDT", trades([7, 7], first_id=0))
    cat.write("binance", "trades", "BTC/USDT", trades([7, 7], first_id=10))
    ids = cat.query("trades")["trade_id"].to_list()
    # Ties between the two writes go by part hash; each write's rows stay in order.
    assert ids in (["0", "1", "10", "11"], ["10", "11", "0", "1"])
    assert cat.query("trades")["trade_id"].to_list() == ids


def test_selection_by_venue_symbols_and_instruments(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    cat.write("binance", "trades", "BTC/USDT", trades([1]))
    cat.write("binance", "trades", "ETH/USDT", trades([2], first_id=5))
    cat.write("binanceusdm", "trades", "BTC/USDT:USDT", trades([3], first_id=9))
    assert cat.query("trades").height == 3
    assert cat.query("trades", venue="binance")["symbol"].to_list() == ["BTC/USDT", "ETH/USDT"]
    assert cat.query("trades", symbols="ETH/USDT")["trade_id"].to_list() == ["5"]
    both = cat.query("trades", [PERP, ETH])
    assert both["symbol"].to_list() == ["ETH/USDT", "BTC/USDT:USDT"]
    with pytest.raises(ValueError, match="either instruments"):
        cat.query("trades", BTC, venue="binance")
    assert cat.instruments("trades") == sorted([BTC, ETH, PERP])
    listing = cat.listing()
    assert listing.height == 3 and listing["parts"].to_list() == [1, 1, 1]


def test_empty_results_have_the_schema(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    empty = cat.query("quotes", BTC)
    assert empty.height == 0
    assert empty.columns == ["venue", "symbol", *empty_frame("quotes").columns]
    cat.write("binance", "trades", "BTC/USDT", trades([DAY]))
    assert cat.query("trades", BTC, start=0, end=DAY).height == 0
    assert cat.query("bars_1m").height == 0
    assert list(cat.events(["trades"], BTC, end=DAY)) == []
    with pytest.raises(ValueError, match="after end"):
        cat.query("trades", start=2, end=1)
    with pytest.raises(SchemaError, match="unknown kind"):
        cat.events(["trades", "ticks"])


def test_query_opens_only_the_selected_partitions(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    btc = cat.write("binance", "trades", "BTC/USDT", trades([10, DAY + 10]))
    eth = cat.write("binance", "trades", "ETH/USDT", trades([10], first_id=50))
    later = [p for p in btc.paths if "date=1970-01-02" in str(p)]
    assert len(later) == 1
    for part in [*eth.paths, *later]:
        part.write_bytes(b"not parquet")  # any read of these would fail
    assert cat.query("trades", BTC, end=DAY)["trade_id"].to_list() == ["0"]
    assert [e.trade_id for e in cat.events("trades", BTC, start=0, end=DAY)] == ["0"]
    with pytest.raises(Exception, match=r"(?i)parquet|magic"):
        cat.query("trades", BTC)


def test_schema_errors_name_the_column(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    with pytest.raises(SchemaError, match="missing column trade_id"):
        cat.write("binance", "trades", "BTC/USDT", trades([1]).drop("trade_id"))
    with pytest.raises(SchemaError, match="unknown kind"):
        cat.write("binance", "ticks", "BTC/USDT", trades([1]))
    with pytest.raises(ValueError, match="venue"):
        cat.write("bin ance", "trades", "BTC/USDT", trades([1]))
    assert not any(tmp_path.iterdir())


def test_a_failed_write_leaves_the_dataset_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cat = Catalog(tmp_path)
    cat.write("binance", "trades", "BTC/USDT", trades([1, 2]))
    before = tree(tmp_path)
    real = pl.DataFrame.write_parquet
    calls = []

    def flaky(self: pl.DataFrame, file: object, **kwargs: object) -> None:
        calls.append(file)
        if len(calls) == 2:
            raise OSError("disk full")
        real(self, file, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pl.DataFrame, "write_parquet", flaky)
    with pytest.raises(OSError, match="disk full"):
        cat.write("binance", "trades", "BTC/USDT", trades([5, DAY + 5, 2 * DAY], first_id=7))
    assert len(calls) == 2
    assert tree(tmp_path) == before
    assert not list(tmp_path.rglob(".tmp-*"))
    monkeypatch.undo()
    assert cat.query("trades", BTC)["trade_id"].to_list() == ["0", "1"]


def book_rows(ts: int, rows: list[tuple[str, float, float]], snapshot: bool) -> pl.DataFrame:
    n = len(rows)
    return pl.DataFrame(
        {
            "ts_event_ns": [ts] * n,
            "ts_recv_ns": [ts + 1] * n,
            "side": [r[0] for r in rows],
            "price": [r[1] for r in rows],
            "size": [r[2] for r in rows],
            "sequence": [ts] * n,
            "is_snapshot": [snapshot] * n,
            "batch_end": [i == n - 1 for i in range(n)],
        }
    )


def test_events_merge_kinds_and_instruments_by_time(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    book = pl.concat(
        [
            book_rows(100, [("bid", 9.0, 1.0), ("ask", 11.0, 2.0)], snapshot=True),
            book_rows(200, [("bid", 9.0, 0.0)], snapshot=False),
        ]
    )
    cat.write("binance", "book", "BTC/USDT", book)
    cat.write("binance", "trades", "BTC/USDT", trades([100, 150]))
    cat.write("binance", "trades", "ETH/USDT", trades([100], first_id=9))
    quotes = pl.DataFrame(
        {
            "ts_event_ns": [200],
            "ts_recv_ns": [201],
            "bid_price": [9.0],
            "bid_size": [1.0],
            "ask_price": [11.0],
            "ask_size": [1.0],
        }
    )
    cat.write("binance", "quotes", "BTC/USDT", quotes)
    funding = pl.DataFrame(
        {
            "ts_event_ns": [150],
            "ts_recv_ns": [151],
            "rate": [0.0001],
            "next_funding_ns": [DAY],
            "mark_price": [10.0],
        }
    )
    cat.write("binanceusdm", "funding", "BTC/USDT:USDT", funding)
    bars = pl.DataFrame(
        {
            "ts_event_ns": [100],
            "ts_recv_ns": [160],
            "open": [10.0],
            "high": [11.0],
            "low": [9.0],
            "close": [10.5],
            "volume": [3.0],
        }
    )
    cat.write("binance", "bars_1m", "BTC/USDT", bars)

    events = list(cat.events())
    summary = [(e.ts_event_ns, type(e).__name__, e.instrument_id.symbol) for e in events]
    assert summary == [
        (100, "BookDeltaEvent", "BTC/USDT"),
        (100, "BookDeltaEvent", "BTC/USDT"),
        (100, "TradeTick", "BTC/USDT"),
        (100, "TradeTick", "ETH/USDT"),
        (100, "Bar", "BTC/USDT"),
        (150, "TradeTick", "BTC/USDT"),
        (150, "FundingRate", "BTC/USDT:USDT"),
        (200, "BookDeltaEvent", "BTC/USDT"),
        (200, "QuoteTick", "BTC/USDT"),
    ]
    first = events[0]
    assert first == BookDeltaEvent(BTC, 100, 101, BookSide.BID, 9.0, 1.0, 100, True, False)
    assert isinstance(events[1], BookDeltaEvent) and events[1].batch_end
    assert events[2] == TradeTick(BTC, 100, 101, 100.0, 1.0, AggressorSide.BUYER, "0")
    assert events[4] == Bar(BTC, 100, 160, 10.0, 11.0, 9.0, 10.5, 3.0)
    assert events[6] == FundingRate(PERP, 150, 151, 0.0001, DAY, 10.0)
    assert events[8] == QuoteTick(BTC, 200, 201, 9.0, 1.0, 11.0, 1.0)
    # Small batches stream the same sequence; selections and ranges apply per kind.
    assert list(cat.events(batch_size=1)) == events
    picked = list(cat.events(["trades", "quotes"], BTC, start=150))
    assert [(e.ts_event_ns, type(e).__name__) for e in picked] == [
        (150, "TradeTick"),
        (200, "QuoteTick"),
    ]


def test_events_stream_lazily(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    cat.write("binance", "trades", "BTC/USDT", trades(list(range(1000))))
    stream = cat.events("trades", batch_size=10)
    assert next(stream).ts_event_ns == 0
    assert sum(1 for _ in stream) == 999


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sampled_from([-5, 0, 3, DAY - 1, DAY, DAY + 7]), min_size=1, max_size=30),
    st.lists(st.integers(0, 30), max_size=5),
)
def test_random_batches_query_back_every_row_once_in_order(
    times: list[int], cuts: list[int]
) -> None:
    frame = trades(times)
    bounds = sorted({0, frame.height, *(c for c in cuts if c < frame.height)})
    batches = [frame.slice(a, b - a) for a, b in itertools.pairwise(bounds)]
    with tempfile.TemporaryDirectory() as folder:
        cat = Catalog(folder)
        for batch in batches:
            cat.write("kraken", "trades", "XBT/USD", batch)
        out = cat.query("trades", InstrumentId("XBT/USD", "kraken"))
    # Stable sort of the concatenated batches: ties keep write order, then row order.
    assert stored(out).equals(pl.concat(batches).sort("ts_event_ns", maintain_order=True))
