"""Equity vendor loaders: every real layout, the actions found, and malformed input."""

from __future__ import annotations

import gzip
import zipfile
from dataclasses import replace
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from tradestack.data.catalog.schema import BARS
from tradestack.data.corporate_actions import ActionKind, CorporateAction
from tradestack.data.errors import DataValidationError
from tradestack.data.loaders.equities import (
    load_equity_file,
    load_quandl_wiki,
    load_yahoo_csv,
    load_zipline_csvdir,
)

DAY_NS = 86_400 * 10**9


def day_ns(day: date) -> int:
    return (day - date(1970, 1, 1)).days * DAY_NS


# (file, vendor, rows, first session, first close, dividends, splits, split-adjusted)
REAL = [
    ("corporate_actions/zipline_csvdir_AAPL_2012-2014.csv.gz", "zipline_csvdir", 754,
     date(2012, 1, 3), 58.747143, 10, 1, True),
    ("corporate_actions/zipline_csvdir_MSFT_2012-2014.csv.gz", "zipline_csvdir", 754,
     date(2012, 1, 3), 26.77, 12, 0, True),
    ("bars/equities/yfinance_CALM-1d-no-bad-divs.csv", "yahoo", 662,
     date(2022, 1, 3), 37.70000076293945, 10, 0, True),
    ("bars/equities/backtrader_orcl-1995-2014.txt", "yahoo", 5036,
     date(1995, 1, 3), 2.117284, 0, 0, True),
    ("bars/equities/backtesting_GOOG.csv", "ohlcv", 2148,
     date(2004, 8, 19), 100.34, 0, 0, None),
    ("bars/equities/zipline_pipeline_AAPL_2014.csv", "ohlcv", 127,
     date(2014, 3, 3), 527.76001, 0, 0, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "vendor", "rows", "first", "close", "dividends", "splits", "adjusted"),
    REAL,
    ids=[Path(r[0]).name for r in REAL],
)
def test_real_files(
    shared_data: Path,
    name: str,
    vendor: str,
    rows: int,
    first: date,
    close: float,
    dividends: int,
    splits: int,
    adjusted: bool | None,
) -> None:
    (equity,) = load_equity_file(shared_data / name, "SYM").values()
    assert (equity.symbol, equity.vendor) == ("SYM", vendor)
    assert equity.bars.schema == BARS
    assert equity.bars.height == rows
    assert equity.bars["ts_event_ns"][0] == day_ns(first)
    assert equity.bars["ts_recv_ns"].equals(equity.bars["ts_event_ns"])
    assert equity.bars["close"][0] == close
    kinds = [a.kind for a in equity.actions]
    assert (kinds.count(ActionKind.DIVIDEND), kinds.count(ActionKind.SPLIT)) == (dividends, splits)
    assert equity.prices_split_adjusted is adjusted
    assert np.all(np.diff(equity.bars["ts_event_ns"].to_numpy()) > 0)


def test_quandl_export(shared_data: Path) -> None:
    path = shared_data / "corporate_actions/zipline_QUANDL_ARCHIVE_2014_AAPL_BRK_A_MSFT_ZEN.zip"
    found = load_quandl_wiki(path)
    assert list(found) == ["AAPL", "BRK_A", "MSFT", "ZEN"]
    assert [e.bars.height for e in found.values()] == [252, 252, 252, 160]
    aapl = found["AAPL"]
    assert aapl.actions == (
        CorporateAction.dividend(date(2014, 2, 6), 3.05),
        CorporateAction.dividend(date(2014, 5, 8), 3.29),
        CorporateAction.split(date(2014, 6, 9), 7.0),
        CorporateAction.dividend(date(2014, 8, 7), 0.47),
        CorporateAction.dividend(date(2014, 11, 6), 0.47),
    )
    assert (aapl.prices_split_adjusted, aapl.dividend_basis) == (False, "ex_close")
    assert aapl.vendor_adjusted is not None
    assert aapl.vendor_adjusted.columns == ["ts_event_ns", "open", "high", "low", "close", "volume"]
    assert aapl.vendor_adjusted["volume"][0] == 58_671_200.0
    assert found["ZEN"].bars["ts_event_ns"][0] == day_ns(date(2014, 5, 15))
    assert list(load_equity_file(path, "MSFT")) == ["MSFT"]
    with pytest.raises(DataValidationError, match="no rows for ticker 'GOOG'"):
        load_equity_file(path, "GOOG")


def test_yahoo_intraday_keeps_instants_and_local_ex_dates(shared_data: Path) -> None:
    """EA 15-minute bars: exact UTC instants; the dividend's ex-date is the row's local date.

    Yahoo's Adj Close here is float64 and reproduced to 3.4e-15: its factor is
    1 - 0.19 / 201.13, the close of the 19:45 after-hours bar before the ex-date.
    """
    equity = load_yahoo_csv(shared_data / "bars/equities/yfinance_EA-15m-no-bad-divs.csv")
    assert equity.symbol == "yfinance_EA-15m-no-bad-divs"
    assert equity.bars["ts_event_ns"][0] == day_ns(date(2026, 5, 26)) + 8 * 3600 * 10**9
    assert equity.actions == (CorporateAction.dividend(date(2026, 5, 27), 0.19),)
    assert equity.vendor_adjusted is not None
    ours = equity.back_adjusted(timezone="America/New_York")["close"].to_numpy()
    theirs = equity.vendor_adjusted["close"].to_numpy()
    assert np.max(np.abs(ours / theirs - 1)) < 1e-14


def test_unknown_split_state_refuses_back_adjustment(shared_data: Path) -> None:
    (equity,) = load_equity_file(shared_data / "bars/equities/backtesting_GOOG.csv").values()
    assert equity.back_adjusted().equals(equity.bars)  # no actions: nothing to decide
    with_split = replace(equity, actions=(CorporateAction.split(date(2010, 1, 4), 2.0),))
    with pytest.raises(ValueError, match="unknown whether the bars are split-adjusted"):
        with_split.back_adjusted()


CSVDIR_HEAD = "date,open,high,low,close,volume,dividend,split\n"
GOOD = "2014-01-02,10,11,9,10.5,100,0.0,1.0\n2014-01-03,10.5,11,10,10.8,120,0.0,1.0\n"


@pytest.mark.parametrize(
    ("body", "row", "field", "value", "message"),
    [
        ("2014-01-04,10,11,9,10,100,-0.5,1.0\n", 4, "dividend", -0.5, "is negative"),
        ("2014-01-04,10,11,9,10,100,0.0,0.0\n", 4, "split", 0.0, "not a valid ratio"),
        ("2014-01-04,10,11,9,abc,100,0.0,1.0\n", 4, "close", "abc", "is not a number"),
        ("2014-01-04,10,11,9,,100,0.0,1.0\n", 4, "close", None, "missing close"),
        ("2014-01-04,10,11,9,nan,100,0.0,1.0\n", 4, "close", "nan", "is not a number"),
        ("2014-01-04,10,9,11,10,100,0.0,1.0\n", 4, "high", 9.0, "is below low"),
        ("2014-01-04,10,10.2,9,10.5,100,0.0,1.0\n", 4, "high", 10.2, "below open or close"),
        ("2014-01-04,10,11,9,10,-1,0.0,1.0\n", 4, "volume", -1.0, "is negative"),
        ("2014-01-04,0,11,9,10,1,0.0,1.0\n", 4, "open", 0.0, "is not positive"),
        ("2014-01-03,10,11,9,10,1,0.0,1.0\n", 4, "date", "2014-01-03", "repeats"),
        ("2014-01-01,10,11,9,10,1,0.0,1.0\n", 4, "date", "2014-01-01", "earlier than"),
        ("2014-13-01,10,11,9,10,1,0.0,1.0\n", 4, "date", "2014-13-01", "cannot parse"),
    ],
)
def test_malformed_csvdir(
    tmp_path: Path, body: str, row: int, field: str, value: object, message: str
) -> None:
    path = tmp_path / "BAD.csv.gz"
    path.write_bytes(gzip.compress((CSVDIR_HEAD + GOOD + body).encode()))
    with pytest.raises(DataValidationError, match=message) as err:
        load_zipline_csvdir(path)
    assert (err.value.row, err.value.field, err.value.value) == (row, field, value)
    assert err.value.path == path


def test_malformed_quandl_and_files(tmp_path: Path) -> None:
    head = "ticker,date,open,high,low,close,volume,ex-dividend,split_ratio\n"
    rows = (
        "A,2014-01-02,10,11,9,10,5,0,1\n"
        "B,2014-01-02,10,11,9,10,5,0,1\n"
        "A,2014-01-03,1,1,1,1,5,0,-7\n"
    )
    path = tmp_path / "wiki.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("WIKI_PRICES.csv", head + rows)
    with pytest.raises(DataValidationError, match=r"split_ratio -7\.0") as err:
        load_quandl_wiki(path)
    assert (err.value.row, err.value.field) == (4, "split_ratio")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", head)
        archive.writestr("b.csv", head)
    with pytest.raises(DataValidationError, match=r"exactly one \.csv"):
        load_quandl_wiki(path)
    missing = tmp_path / "wiki.csv"
    missing.write_text(
        "ticker,date,open,high,low,close,ex-dividend,split_ratio\nA,2014-01-02,1,1,1,1,0,1\n"
    )
    with pytest.raises(DataValidationError, match=r"missing column\(s\) volume") as err:
        load_quandl_wiki(missing)
    assert err.value.field == "volume"
    empty = tmp_path / "empty.csv"
    empty.write_text(CSVDIR_HEAD)
    with pytest.raises(DataValidationError, match="no data rows"):
        load_equity_file(empty)
    with pytest.raises(DataValidationError, match="cannot read file"):
        load_equity_file(tmp_path / "absent.csv")


def test_naive_intraday_times_are_utc(tmp_path: Path) -> None:
    path = tmp_path / "X.csv"
    path.write_text(
        "Datetime,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02 14:30:00,10,11,9,10,10,5\n"
        "2024-01-02 14:31:00,10,11,9,10,10,5\n"
    )
    equity = load_yahoo_csv(path)
    start = day_ns(date(2024, 1, 2)) + (14 * 60 + 30) * 60 * 10**9
    assert equity.bars["ts_event_ns"].to_list() == [start, start + 60 * 10**9]
    assert equity.actions == ()
