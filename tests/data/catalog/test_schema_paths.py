"""Kind schemas, frame conformance, symbol encoding and time bounds."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradestack.data.catalog import (
    BARS,
    BOOK,
    KINDS,
    SchemaError,
    bar_interval_ns,
    conform,
    decode_symbol,
    empty_frame,
    encode_symbol,
    kind_schema,
)
from tradestack.data.catalog.paths import check_venue, day_range, to_ns

DAY = 86_400 * 10**9


def trades_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "ts_event_ns": [1, 2],
            "ts_recv_ns": [3, 4],
            "price": [10.0, 11.0],
            "size": [1.0, 2.0],
            "aggressor": ["buyer", "seller"],
            "trade_id": ["a", "b"],
        }
    )


def test_schemas_hold_the_contract_columns_and_dtypes() -> None:
    assert list(BOOK) == [
        "ts_event_ns",
        "ts_recv_ns",
        "side",
        "price",
        "size",
        "sequence",
        "is_snapshot",
        "batch_end",
    ]
    assert BOOK["is_snapshot"] == pl.Boolean and BOOK["sequence"] == pl.Int64
    assert list(KINDS["funding"]) == [
        "ts_event_ns",
        "ts_recv_ns",
        "rate",
        "next_funding_ns",
        "mark_price",
    ]
    assert list(KINDS["quotes"])[2:] == ["bid_price", "bid_size", "ask_price", "ask_size"]
    assert kind_schema("bars_1m") == kind_schema("bars_4h") == BARS
    assert empty_frame("trades").schema == KINDS["trades"]


@pytest.mark.parametrize(
    ("kind", "ns"),
    [("bars_1m", 60 * 10**9), ("bars_15s", 15 * 10**9), ("bars_1d", DAY), ("bars_1w", 7 * DAY)],
)
def test_bar_intervals(kind: str, ns: int) -> None:
    assert bar_interval_ns(kind) == ns


@pytest.mark.parametrize("kind", ["bars", "bars_0m", "bars_1M", "bars_1y", "ticks", "Trades"])
def test_unknown_kinds_are_refused(kind: str) -> None:
    with pytest.raises(SchemaError, match="unknown kind"):
        kind_schema(kind)


def test_conform_orders_columns() -> None:
    frame = trades_frame()
    shuffled = frame.select(reversed(frame.columns))
    assert conform("trades", shuffled).equals(frame)


def test_conform_names_missing_extra_and_wrong_columns() -> None:
    frame = (
        trades_frame()
        .drop("trade_id")
        .with_columns(pl.col("ts_recv_ns").cast(pl.Int32), pl.lit(1).alias("venue"))
    )
    with pytest.raises(SchemaError) as err:
        conform("trades", frame)
    text = str(err.value)
    assert "missing column trade_id" in text
    assert "unexpected column venue" in text
    assert "ts_recv_ns is Int32 (expected Int64)" in text


def test_conform_refuses_datetime_timestamps() -> None:
    frame = trades_frame().with_columns(pl.col("ts_event_ns").cast(pl.Datetime("ns")))
    with pytest.raises(SchemaError, match=r"ts_event_ns is Datetime"):
        conform("trades", frame)


def test_conform_refuses_nulls_naming_the_row() -> None:
    frame = trades_frame().with_columns(pl.Series("price", [10.0, None]))
    with pytest.raises(SchemaError, match=r"nulls in price \(1\); first at row 1"):
        conform("trades", frame)


@pytest.mark.parametrize(
    ("symbol", "stored"),
    [
        ("BTC/USDT", "BTC~2FUSDT"),
        ("BTC/USDT:USDT", "BTC~2FUSDT~3AUSDT"),
        ("ETH-USD", "ETH-USD"),
        ("BRK.A", "BRK.A"),
        ("a~b", "a~7Eb"),
        ("x=y%z", "x~3Dy~25z"),
        ("..", ".."),
    ],
)
def test_symbol_encoding_examples(symbol: str, stored: str) -> None:
    assert encode_symbol(symbol) == stored
    assert decode_symbol(stored) == symbol


@given(st.text(min_size=1, max_size=30))
def test_symbol_encoding_round_trips_and_is_filesystem_safe(symbol: str) -> None:
    stored = encode_symbol(symbol)
    assert decode_symbol(stored) == symbol
    assert set(stored) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-~")


def test_bad_encoded_symbols_and_venues_are_refused() -> None:
    with pytest.raises(ValueError, match="not an encoded symbol"):
        decode_symbol("BTC/USDT")
    with pytest.raises(ValueError, match="must not be empty"):
        encode_symbol("")
    with pytest.raises(ValueError, match="venue"):
        check_venue("bin/ance")
    assert check_venue("binanceusdm") == "binanceusdm"


def test_time_bounds() -> None:
    assert to_ns(5) == 5
    assert to_ns("1970-01-02") == DAY
    assert to_ns(date(1970, 1, 2)) == DAY
    assert to_ns("1970-01-01T00:00:01Z") == 10**9
    assert to_ns(datetime(1970, 1, 1, 0, 0, 0, 7, tzinfo=UTC)) == 7000
    assert to_ns(datetime(1970, 1, 1, 1)) == 3600 * 10**9  # naive = UTC
    assert day_range(DAY, 2 * DAY) == ("1970-01-02", "1970-01-02")
    assert day_range(-1, None) == ("1969-12-31", None)
