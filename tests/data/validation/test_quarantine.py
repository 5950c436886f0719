"""validate(): clean/quarantine/issues split, reasons, report; the catalog's quarantine flow."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import polars as pl
import pytest

from tradestack.core.ids import InstrumentId
from tradestack.data.catalog import Catalog, SchemaError, kind_schema
from tradestack.data.validation import QuarantineError, ValidationConfig, validate

MIN = 60 * 10**9
BTC = InstrumentId("BTC/USDT", "binance")


def frame(kind: str, rows: list[tuple[object, ...]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=kind_schema(kind), orient="row")


def bad_trades() -> pl.DataFrame:
    return frame(
        "trades",
        [
            (1, 1, 10.0, 1.0, "buyer", "1"),
            (3, 3, -1.0, 1.0, "buyer", "1"),  # negative price, repeated id
            (2, 2, 10.0, 1.0, "seller", "3"),  # earlier than the row before
            (4, 4, 10.5, 1.0, "seller", "4"),
        ],
    )


def test_validate_splits_rows_and_lists_every_reason() -> None:
    result = validate("trades", bad_trades())
    assert result.clean["trade_id"].to_list() == ["1", "4"]
    assert result.clean.schema == kind_schema("trades")
    assert result.quarantined.select("row", "reason").rows() == [
        (1, "negative_price,duplicate_trade_id"),
        (2, "out_of_order"),
    ]
    assert result.quarantined.columns == [*kind_schema("trades"), "row", "reason"]
    report = result.report
    assert (report.rows, report.clean, report.quarantined) == (4, 2, 2)
    assert report.reasons == {"negative_price": 1, "out_of_order": 1, "duplicate_trade_id": 1}
    assert not report.is_clean
    assert "2 quarantined" in str(report) and "negative_price=1" in str(report)


def test_interval_issues_never_remove_rows_and_use_clean_rows() -> None:
    bars = frame(
        "bars_1m",
        [
            (0, 0, 1.0, 1.0, 1.0, 1.0, 1.0),
            (MIN, MIN, 1.0, 1.0, 1.0, math.nan, 1.0),  # quarantined: leaves a hole
            (2 * MIN, 2 * MIN, 1.0, 1.0, 1.0, 1.0, 1.0),
            (5 * MIN, 5 * MIN, 1.0, 1.0, 1.0, 1.0, 1.0),
        ],
    )
    result = validate("bars_1m", bars)
    assert result.clean.height == 3
    assert result.issues.select("reason", "start_ns", "end_ns").rows() == [
        ("gap", MIN, 2 * MIN),
        ("gap", 3 * MIN, 5 * MIN),
    ]
    assert result.report.issues == {"gap": 2}
    assert result.report.reasons == {"nan_price": 1}


def test_disabled_gates_do_not_run() -> None:
    config = ValidationConfig(disabled=frozenset({"values", "duplicates"}))
    result = validate("trades", bad_trades(), config)
    assert result.quarantined.select("row", "reason").rows() == [(2, "out_of_order")]


def test_book_messages_keep_their_end_when_the_last_row_is_quarantined() -> None:
    book = frame(
        "book",
        [
            (1, 1, "bid", 10.0, 1.0, 1, True, False),
            (1, 1, "ask", 11.0, 1.0, 1, True, False),
            (1, 1, "ask", 12.0, -1.0, 1, True, True),  # bad size, ends message 1
            (2, 2, "ask", 11.0, 0.0, 2, False, True),
        ],
    )
    result = validate("book", book)
    assert result.quarantined["row"].to_list() == [2]
    assert result.clean.select("price", "batch_end").rows() == [
        (10.0, False),
        (11.0, True),
        (11.0, True),
    ]


def test_validate_checks_the_schema_first() -> None:
    with pytest.raises(SchemaError, match="missing column trade_id"):
        validate("trades", bad_trades().drop("trade_id"))


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_validated_write_stores_clean_rows_quarantine_and_issues(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    config = ValidationConfig(max_staleness_ns=1)
    result = cat.write("binance", "trades", "BTC/USDT", bad_trades(), validate=config)
    assert result.report is not None and result.report.quarantined == 2
    assert result.quarantine and all("_quarantine" in str(p) for p in result.quarantine)
    assert cat.query("trades", BTC)["trade_id"].to_list() == ["1", "4"]
    stored = cat.quarantined("trades", BTC)
    assert stored.select("symbol", "row", "reason").rows() == [
        ("BTC/USDT", 2, "out_of_order"),
        ("BTC/USDT", 1, "negative_price,duplicate_trade_id"),
    ]
    assert cat.issues("trades", BTC).select("reason", "start_ns", "end_ns").rows() == [
        ("stale", 1, 4)
    ]
    report = cat.quarantine_report()
    assert report.select("table", "reason", "count").rows() == [
        ("issues", "stale", 1),
        ("quarantine", "duplicate_trade_id", 1),
        ("quarantine", "negative_price", 1),
        ("quarantine", "out_of_order", 1),
    ]
    assert set(report["kind"]) == {"trades"} and set(report["symbol"]) == {"BTC/USDT"}
    with pytest.raises(QuarantineError, match="binance/trades/BTC/USDT") as err:
        cat.require_no_quarantine("trades")
    assert err.value.counts == {"negative_price": 1, "out_of_order": 1, "duplicate_trade_id": 1}
    cat.require_no_quarantine("trades", venue="kraken")  # other series are clean


def test_require_clean_refuses_bad_input_and_writes_nothing(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    good = (
        bad_trades()
        .filter(pl.col("price") > 0)
        .with_columns(pl.Series("trade_id", ["1", "3", "4"]))
    )
    cat.write(
        "binance", "trades", "BTC/USDT", good, validate=ValidationConfig(), require_clean=True
    )
    before = tree(tmp_path)
    with pytest.raises(QuarantineError) as err:
        cat.write(
            "binance",
            "trades",
            "BTC/USDT",
            bad_trades(),
            validate=ValidationConfig(),
            require_clean=True,
        )
    message = str(err.value)
    assert "2 rows quarantined" in message
    assert "negative_price=1" in message and "out_of_order=1" in message
    assert tree(tmp_path) == before
    assert cat.query("trades", BTC).height == 3
    cat.require_no_quarantine()


def test_issues_count_only_when_asked(tmp_path: Path) -> None:
    cat = Catalog(tmp_path)
    bars = frame(
        "bars_1m", [(0, 0, 1.0, 1.0, 1.0, 1.0, 1.0), (3 * MIN, 0, 1.0, 1.0, 1.0, 1.0, 1.0)]
    )
    cat.write(
        "binance", "bars_1m", "BTC/USDT", bars, validate=ValidationConfig(), require_clean=True
    )
    assert cat.query("bars_1m").height == 2
    cat.require_no_quarantine()
    with pytest.raises(QuarantineError, match="gap=1"):
        cat.require_no_quarantine(include_issues=True)


def test_require_clean_needs_a_config(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="require_clean needs validate"):
        Catalog(tmp_path).write("binance", "trades", "BTC/USDT", bad_trades(), require_clean=True)
