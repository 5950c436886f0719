"""Crypto vendor loaders on the real shared files, malformed inputs, and into the catalog."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tradestack.core.events import AggressorSide, TradeTick
from tradestack.core.ids import InstrumentId
from tradestack.data.catalog import BookDeltaEvent, Catalog, kind_schema
from tradestack.data.errors import DataValidationError
from tradestack.data.loaders.binance_files import load_binance_depth, load_binance_klines
from tradestack.data.loaders.tardis import load_tardis_book_snapshot
from tradestack.data.loaders.trades import load_trades
from tradestack.data.validation import ValidationConfig, validate

MS = 10**6
US = 10**3
DEPTH_HEADER = "symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu\n"


def test_binance_depth_snapshot(shared_data: Path) -> None:
    book = load_binance_depth(shared_data / "l2/nautilus_binance_usdm_btcusdt-depth-snap.csv")
    assert book.schema == kind_schema("book")
    assert book.height == 100
    assert book.row(0) == (
        1667346579146 * MS,
        1667346579146 * MS,
        "bid",
        20377.0,
        1.77,
        2098021528332,
        True,
        False,
    )
    assert book.row(-1)[3:5] == (20365.9, 0.207)
    assert book["is_snapshot"].all()
    assert book["batch_end"].to_list() == [False] * 99 + [True]
    assert validate("book", book).report.is_clean


def test_binance_depth_update(shared_data: Path) -> None:
    book = load_binance_depth(shared_data / "l2/nautilus_binance_usdm_btcusdt-depth-update.csv")
    assert book.height == 100
    assert book["side"].value_counts().sort("side").rows() == [("ask", 77), ("bid", 23)]
    assert book.row(0)[2:] == ("ask", 20472.8, 0.0, 2098041696700, False, False)
    assert book.row(-1)[2:] == ("ask", 20879.1, 10.249, 2098041696700, False, True)
    assert book["ts_event_ns"].unique().to_list() == [1667347199939 * MS]


def write(tmp_path: Path, text: str, name: str = "depth.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_binance_depth_messages_end_where_the_update_id_changes(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        DEPTH_HEADER
        + "BTCUSDT,1000,5,5,b,snap,10.0,1.0,-1\n"
        + "BTCUSDT,1000,5,5,a,snap,11.0,1.0,-1\n"
        + "BTCUSDT,1001,6,8,a,set,11.0,0.0,5\n"
        + "BTCUSDT,1002,9,9,b,set,10.5,2.0,8\n",
    )
    book = load_binance_depth(path)
    assert book.select("sequence", "is_snapshot", "batch_end").rows() == [
        (5, True, False),
        (5, True, True),
        (8, False, True),
        (9, False, True),
    ]


@pytest.mark.parametrize(
    ("body", "match", "row", "field"),
    [
        ("BTCUSDT,1000,5,5,b,snap,abc,1.0,-1\n", "cannot parse 'abc'", 2, "price"),
        ("BTCUSDT,1000,5,5,x,snap,10.0,1.0,-1\n", "side 'x' is not b or a", 2, "side"),
        (
            "BTCUSDT,1000,5,5,b,snap,10.0,1.0,-1\nBTCUSDT,1000,5,5,b,full,1,1,-1\n",
            "update_type",
            3,
            "update_type",
        ),
        ("BTCUSDT,1000,5,5,b,snap,10.0,,-1\n", "missing qty", 2, "qty"),
        (
            "BTCUSDT,1000,5,5,b,snap,10,1,-1\nETHUSDT,1000,5,5,b,snap,10,1,-1\n",
            "mixes symbols",
            3,
            "symbol",
        ),
    ],
)
def test_binance_depth_errors_name_line_and_field(
    tmp_path: Path, body: str, match: str, row: int, field: str
) -> None:
    with pytest.raises(DataValidationError, match=match) as err:
        load_binance_depth(write(tmp_path, DEPTH_HEADER + body))
    assert (err.value.row, err.value.field) == (row, field)


def test_binance_depth_missing_column(tmp_path: Path) -> None:
    path = write(tmp_path, "symbol,timestamp,side,price,qty\nBTCUSDT,1,b,1,1\n")
    with pytest.raises(DataValidationError, match="missing columns first_update_id"):
        load_binance_depth(path)


def test_binance_klines(shared_data: Path) -> None:
    bars = load_binance_klines(
        shared_data / "bars/crypto/nautilus_binance_ADABTC-1m-2021-11-27.csv"
    )
    assert bars.schema == kind_schema("bars_1m")
    assert bars.height == 10
    assert bars.row(0) == (
        1637971200000 * MS,
        1637971260000 * MS,
        0.00002853,
        0.00002854,
        0.00002851,
        0.00002854,
        36304.2,
    )
    assert bars["close"][-1] == 0.00002865
    assert (bars["ts_recv_ns"] - bars["ts_event_ns"]).unique().to_list() == [60 * 10**9]
    assert validate("bars_1m", bars).report.is_clean
    assert validate("bars_1m", bars).issues.height == 0


def test_binance_klines_errors(tmp_path: Path) -> None:
    line = "1637971200000,0.1,0.2,0.05,0.15,10,1637971259999,1,1,1,1,0\n"
    bad = "1637971260000,0.1,0.05,0.2,0.15,10,1637971319999,1,1,1,1,0\n"
    with pytest.raises(DataValidationError, match="high") as err:
        load_binance_klines(write(tmp_path, line + bad, "k.csv"))
    assert err.value.row == 2
    with pytest.raises(DataValidationError, match="close_time"):
        load_binance_klines(write(tmp_path, "1637971200000,0.1,0.2,0.05,0.15,10\n", "k6.csv"))
    with_header = (
        "open_time,open,high,low,close,volume,close_time\n" + line.rsplit(",", 5)[0] + "\n"
    )
    bars = load_binance_klines(write(tmp_path, with_header, "kh.csv"))
    assert bars["ts_recv_ns"].to_list() == [1637971260000 * MS]


def test_tardis_book_snapshots(shared_data: Path) -> None:
    book = load_tardis_book_snapshot(
        shared_data / "l2/tardis_binance-futures_book_snapshot_25_BTCUSDT.csv"
    )
    assert book.schema == kind_schema("book")
    assert book.height == 10 * 50
    assert book.row(0) == (
        1598918403696000 * US,
        1598918403810979 * US,
        "bid",
        11657.07,
        10.896,
        0,
        True,
        False,
    )
    assert book.row(25)[2:5] == ("ask", 11657.08, 1.714)
    assert book.row(49)[2:5] == ("ask", 11659.34, 0.618)
    assert book["batch_end"].sum() == 10 and book["batch_end"][49]
    assert book["is_snapshot"].all()
    assert book["ts_event_ns"][-1] == 1598918404005000 * US
    assert validate("book", book).report.is_clean


TARDIS_HEADER = (
    "exchange,symbol,timestamp,local_timestamp,asks[0].price,asks[0].amount,bids[0].price,"
    "bids[0].amount,asks[1].price,asks[1].amount,bids[1].price,bids[1].amount\n"
)


def test_tardis_skips_empty_levels(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        TARDIS_HEADER
        + "x,BTCUSDT,1000,1005,11,1,10,2,12,3,,\n"
        + "x,BTCUSDT,2000,2005,,,10,2,,,9,1\n",
        "t.csv",
    )
    book = load_tardis_book_snapshot(path)
    assert book.select("ts_event_ns", "side", "price", "size", "batch_end").rows() == [
        (1000 * US, "bid", 10.0, 2.0, False),
        (1000 * US, "ask", 11.0, 1.0, False),
        (1000 * US, "ask", 12.0, 3.0, True),
        (2000 * US, "bid", 10.0, 2.0, False),
        (2000 * US, "bid", 9.0, 1.0, True),
    ]


@pytest.mark.parametrize(
    ("text", "match", "row"),
    [
        (TARDIS_HEADER + "x,BTCUSDT,1000,1005,11,1,10,2,12,,9,1\n", "price or an amount", 2),
        (TARDIS_HEADER + "x,BTCUSDT,1000,1005,11,1,10,2,12,3,nine,1\n", "cannot parse 'nine'", 2),
        (TARDIS_HEADER.replace(",bids[1].amount", ",other"), "missing level column", None),
        ("exchange,symbol,timestamp,local_timestamp\nx,B,1,1\n", "no asks", None),
    ],
)
def test_tardis_errors(tmp_path: Path, text: str, match: str, row: int | None) -> None:
    with pytest.raises(DataValidationError, match=match) as err:
        load_tardis_book_snapshot(write(tmp_path, text, "t.csv"))
    assert err.value.row == row


def test_trades_parquet(shared_data: Path) -> None:
    trades = load_trades(shared_data / "trades/nautilus_binance_btcusdt-trades.parquet")
    assert trades.schema == kind_schema("trades")
    assert trades.height == 2001
    assert trades.row(0) == (
        1610064000278 * MS,
        1610064000278 * MS,
        39432.48,
        0.000263,
        "seller",
        "553287559",
    )
    assert trades.row(1)[4:] == ("buyer", "553287560")
    assert trades["aggressor"].value_counts().sort("aggressor").rows() == [
        ("buyer", 1087),
        ("seller", 914),
    ]
    assert trades["trade_id"][-1] == "553289559"
    assert validate("trades", trades).report.is_clean


def test_trades_csv_layouts(tmp_path: Path) -> None:
    headerless = write(tmp_path, "12,100.5,0.1,10.05,1610064000278,True,True\n", "b.csv")
    assert load_trades(headerless).row(0) == (
        1610064000278 * MS,
        1610064000278 * MS,
        100.5,
        0.1,
        "seller",
        "12",
    )
    tardis = write(
        tmp_path,
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        "binance,BTCUSDT,1610064000278001,1610064000279000,7,buy,100.0,0.5\n"
        "binance,BTCUSDT,1610064000278002,1610064000279001,,unknown,100.0,0.5\n",
        "tardis.csv",
    )
    loaded = load_trades(tardis)
    assert loaded.row(0) == (1610064000278001 * US, 1610064000279000 * US, 100.0, 0.5, "buyer", "7")
    assert loaded.row(1)[4:] == ("unknown", "")


@pytest.mark.parametrize(
    ("text", "match", "row", "field"),
    [
        (
            "time,price,qty,is_buyer_maker\n1,2.0,1,maybe\n",
            "is not true or false",
            2,
            "is_buyer_maker",
        ),
        (
            "time,price,qty,is_buyer_maker\n1,2.0,1,true\n2,x,1,false\n",
            "cannot parse 'x'",
            3,
            "price",
        ),
        ("time,price,qty\n1,2.0,1\n", "missing buyer_maker or side", None, "buyer_maker or side"),
        ("time,price,is_buyer_maker\n1,2.0,true\n", "missing size", None, "size"),
    ],
)
def test_trades_errors(tmp_path: Path, text: str, match: str, row: int | None, field: str) -> None:
    with pytest.raises(DataValidationError, match=match) as err:
        load_trades(write(tmp_path, text, "t.csv"))
    assert (err.value.row, err.value.field) == (row, field)


def test_real_files_into_the_catalog_and_back(shared_data: Path, tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    config = ValidationConfig()
    trades = load_trades(shared_data / "trades/nautilus_binance_btcusdt-trades.parquet")
    snap = load_binance_depth(shared_data / "l2/nautilus_binance_usdm_btcusdt-depth-snap.csv")
    cat.write("binance", "trades", "BTC/USDT", trades, validate=config, require_clean=True)
    cat.write("binanceusdm", "book", "BTC/USDT:USDT", snap, validate=config, require_clean=True)
    btc = InstrumentId("BTC/USDT", "binance")
    assert cat.query("trades", btc).drop("venue", "symbol").equals(trades)
    events = list(cat.events(["trades"], btc, end=1610064000400 * MS))
    assert events[0] == TradeTick(
        btc,
        1610064000278 * MS,
        1610064000278 * MS,
        39432.48,
        0.000263,
        AggressorSide.SELLER,
        "553287559",
    )
    book = list(cat.events("book"))
    assert len(book) == 100 and all(isinstance(e, BookDeltaEvent) for e in book)
    assert [e.batch_end for e in book if isinstance(e, BookDeltaEvent)].count(True) == 1
    updates = load_binance_depth(shared_data / "l2/nautilus_binance_usdm_btcusdt-depth-update.csv")
    # The update file repeats 37 level updates verbatim within its one message.
    result = cat.write("binanceusdm", "book", "BTC/USDT:USDT", updates, validate=config)
    assert result.report is not None and result.report.reasons == {"duplicate": 37}
    stored = cat.query("book", start=1667347199939 * MS)
    assert stored.height == 63 and stored["batch_end"].to_list() == [False] * 62 + [True]
    assert (
        pl.concat(
            [stored.drop("venue", "symbol"), cat.quarantined("book").select(stored.columns[2:])]
        ).height
        == 100
    )


def test_trades_parquet_with_typed_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    stamps = pl.Series([1_609_459_200_000, 1_609_459_200_500]).cast(pl.Datetime("ms", "UTC"))
    pl.DataFrame(
        {
            "timestamp": stamps.dt.convert_time_zone("America/New_York"),
            "trade_id": [1, 2],
            "price": [10.0, 10.5],
            "quantity": [1.0, 2.0],
            "buyer_maker": [False, True],
        }
    ).write_parquet(path)
    trades = load_trades(path)
    assert trades.select("ts_event_ns", "aggressor", "trade_id").rows() == [
        (1_609_459_200_000 * MS, "buyer", "1"),
        (1_609_459_200_500 * MS, "seller", "2"),
    ]
    pl.read_parquet(path).with_columns(pl.lit(None, pl.Float64).alias("price")).write_parquet(path)
    with pytest.raises(DataValidationError, match="as a number") as err:
        load_trades(path)
    assert (err.value.row, err.value.field) == (1, "price")
