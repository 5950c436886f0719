"""Each validation gate on a small hand-written table: which rows fail and why."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from tradestack.data.catalog import kind_schema
from tradestack.data.validation import (
    ValidationConfig,
    check_crossed,
    check_duplicates,
    check_ohlc,
    check_order,
    check_outliers,
    check_sequence,
    check_values,
    find_gaps,
    find_sequence_gaps,
    find_stale,
)

CFG = ValidationConfig()
MIN = 60 * 10**9
NAN = math.nan


def frame(kind: str, rows: list[tuple[object, ...]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=kind_schema(kind), orient="row")


def failures(found: pl.DataFrame) -> list[tuple[int, str]]:
    return sorted(zip(found["row"].to_list(), found["reason"].to_list(), strict=True))


def trades(rows: list[tuple[int, float, float, str, str]]) -> pl.DataFrame:
    return frame("trades", [(t, t, p, q, a, i) for t, p, q, a, i in rows])


def book(rows: list[tuple[int, str, float, float, int, bool, bool]]) -> pl.DataFrame:
    return frame("book", [(t, t, s, p, q, n, snap, end) for t, s, p, q, n, snap, end in rows])


def test_values_on_trades() -> None:
    table = trades(
        [
            (1, 10.0, 1.0, "buyer", "a"),
            (2, NAN, 1.0, "buyer", "b"),
            (3, 0.0, 1.0, "seller", "c"),
            (4, -1.0, -2.0, "seller", "d"),
            (5, 10.0, math.inf, "unknown", "e"),
            (6, math.inf, 1.0, "taker", "f"),
        ]
    )
    assert failures(check_values(table, "trades", CFG)) == [
        (1, "nan_price"),
        (2, "zero_price"),
        (3, "negative_price"),
        (3, "negative_size"),
        (4, "nan_size"),
        (5, "bad_aggressor"),
        (5, "nan_price"),
    ]


def test_values_on_quotes_funding_and_book() -> None:
    quotes = frame("quotes", [(1, 1, 10.0, 1.0, 11.0, 1.0), (2, 2, 10.0, -1.0, 0.0, 1.0)])
    assert failures(check_values(quotes, "quotes", CFG)) == [
        (1, "negative_size"),
        (1, "zero_price"),
    ]
    funding = frame(
        "funding",
        [(1, 1, 0.0001, 0, 0.0), (2, 2, NAN, 0, 10.0), (3, 3, 0.0001, 0, -5.0)],
    )
    # A mark price of 0 means "unknown" and is accepted.
    assert failures(check_values(funding, "funding", CFG)) == [
        (1, "nan_rate"),
        (2, "negative_price"),
    ]
    levels = book([(1, "bid", 10.0, 0.0, 1, False, False), (1, "buy", 10.0, 1.0, 1, False, True)])
    assert failures(check_values(levels, "book", CFG)) == [(1, "bad_side")]


def test_ohlc_consistency() -> None:
    bars = frame(
        "bars_1m",
        [
            (0, 0, 10.0, 12.0, 9.0, 11.0, 1.0),
            (MIN, MIN, 10.0, 9.0, 9.5, 9.2, 1.0),  # high < low
            (2 * MIN, 2 * MIN, 10.0, 10.5, 9.0, 11.0, 1.0),  # high < close
            (3 * MIN, 3 * MIN, 10.0, 12.0, 10.5, 11.0, 1.0),  # low > open
        ],
    )
    assert failures(check_ohlc(bars, "bars_1m", CFG)) == [
        (1, "inconsistent_ohlc"),
        (2, "inconsistent_ohlc"),
        (3, "inconsistent_ohlc"),
    ]
    assert check_ohlc(trades([(1, 1.0, 1.0, "buyer", "")]), "trades", CFG).height == 0


def test_out_of_order_flags_rows_earlier_than_any_before_them() -> None:
    table = trades([(t, 10.0, 1.0, "buyer", str(t)) for t in (1, 3, 2, 5, 5, 4, 6)])
    assert failures(check_order(table, "trades", CFG)) == [(2, "out_of_order"), (5, "out_of_order")]


def test_duplicates_of_trades() -> None:
    table = trades(
        [
            (1, 10.0, 1.0, "buyer", "7"),
            (2, 10.0, 1.0, "buyer", "7"),  # id seen before
            (3, 10.0, 1.0, "buyer", ""),
            (3, 10.0, 1.0, "buyer", ""),  # same time and values, no id
            (3, 10.0, 2.0, "buyer", ""),
        ]
    )
    assert failures(check_duplicates(table, "trades", CFG)) == [
        (1, "duplicate_trade_id"),
        (3, "duplicate"),
    ]


def test_duplicates_ignore_receive_time_and_bars_allow_one_row_per_time() -> None:
    quotes = frame("quotes", [(1, 5, 10.0, 1.0, 11.0, 1.0), (1, 9, 10.0, 1.0, 11.0, 1.0)])
    assert failures(check_duplicates(quotes, "quotes", CFG)) == [(1, "duplicate")]
    bars = frame(
        "bars_1m",
        [
            (0, 0, 10.0, 11.0, 9.0, 10.0, 1.0),
            (0, 0, 10.0, 11.0, 9.0, 10.0, 1.0),
            (0, 0, 10.0, 11.0, 9.0, 10.5, 1.0),
            (MIN, MIN, 10.0, 11.0, 9.0, 10.5, 1.0),
        ],
    )
    assert failures(check_duplicates(bars, "bars_1m", CFG)) == [
        (1, "duplicate"),
        (2, "duplicate_ts"),
    ]


def test_book_duplicates_keep_level_history_intact() -> None:
    table = book(
        [
            (1, "ask", 10.0, 0.0, 5, False, False),
            (1, "ask", 10.0, 5.0, 5, False, False),
            (1, "ask", 10.0, 0.0, 5, False, False),  # 0, 5, 0: each row changes the level
            (1, "bid", 9.0, 2.0, 5, False, False),
            (1, "bid", 9.0, 2.0, 5, False, True),  # repeats the level's previous update
        ]
    )
    assert failures(check_duplicates(table, "book", CFG)) == [(4, "duplicate")]


def test_crossed_and_locked_quotes() -> None:
    quotes = frame(
        "quotes",
        [(1, 1, 10.0, 1.0, 11.0, 1.0), (2, 2, 11.0, 1.0, 11.0, 1.0), (3, 3, 12.0, 1.0, 11.0, 1.0)],
    )
    assert failures(check_crossed(quotes, "quotes", CFG)) == [(1, "locked"), (2, "crossed")]


def test_crossed_book_snapshots_flag_the_whole_message() -> None:
    table = book(
        [
            (1, "bid", 10.0, 1.0, 1, True, False),
            (1, "ask", 11.0, 1.0, 1, True, True),  # fine
            (2, "bid", 12.0, 1.0, 2, True, False),
            (2, "bid", 13.0, 0.0, 2, True, False),  # size 0 is no level
            (2, "ask", 11.5, 1.0, 2, True, True),  # best bid 12 > best ask 11.5
            (3, "bid", 11.0, 1.0, 3, True, False),
            (3, "ask", 11.0, 1.0, 3, True, True),  # locked
            (4, "bid", 20.0, 1.0, 4, False, True),  # deltas are not checked
        ]
    )
    assert failures(check_crossed(table, "book", CFG)) == [
        (2, "crossed"),
        (3, "crossed"),
        (4, "crossed"),
        (5, "locked"),
        (6, "locked"),
    ]


def test_book_sequence_going_back() -> None:
    table = book(
        [
            (1, "bid", 10.0, 1.0, 5, False, True),
            (2, "bid", 10.0, 1.0, 0, False, True),  # no id: ignored
            (3, "bid", 10.0, 1.0, 4, False, True),
            (4, "bid", 10.0, 1.0, 6, False, True),
        ]
    )
    assert failures(check_sequence(table, "book", CFG)) == [(2, "sequence_backwards")]
    off = ValidationConfig(book_sequence="off")
    assert check_sequence(table, "book", off).height == 0


def wiggle(n: int, seed: int = 1) -> np.ndarray:
    """A random walk around 100 with ~0.1% steps."""
    rng = np.random.default_rng(seed)
    return 100 * np.exp(np.cumsum(rng.normal(0, 0.001, n)))


def price_trades(prices: np.ndarray) -> pl.DataFrame:
    return trades([(i, float(p), 1.0, "buyer", str(i)) for i, p in enumerate(prices)])


def test_outliers_flag_a_spike_but_not_its_neighbours() -> None:
    prices = wiggle(40)
    prices[20] *= 1.5
    assert failures(check_outliers(price_trades(prices), "trades", CFG)) == [(20, "outlier")]


def test_outliers_keep_a_persistent_jump_and_judge_edges_on_one_return() -> None:
    prices = wiggle(40)
    prices[20:] *= 1.5  # a real move: it stays
    assert check_outliers(price_trades(prices), "trades", CFG).height == 0
    prices = wiggle(40)
    prices[0] /= 10
    prices[-1] *= 3
    assert failures(check_outliers(price_trades(prices), "trades", CFG)) == [
        (0, "outlier"),
        (39, "outlier"),
    ]


def test_outlier_threshold_floor_and_minimum_are_configurable() -> None:
    prices = wiggle(40)
    prices[20] *= 1.02  # ~20 sigma of 0.1% steps, above the 1% floor
    table = price_trades(prices)
    assert failures(check_outliers(table, "trades", CFG)) == [(20, "outlier")]
    assert check_outliers(table, "trades", ValidationConfig(outlier_threshold=50)).height == 0
    assert check_outliers(table, "trades", ValidationConfig(outlier_min_return=0.05)).height == 0
    assert check_outliers(table.head(8), "trades", CFG).height == 0  # too few returns


def test_outliers_with_mostly_unchanged_prices() -> None:
    prices = np.full(40, 100.0)
    prices[::7] = 100.01
    prices[25] = 90.0
    # The MAD is 0 here, so the mean absolute deviation sets the scale.
    assert failures(check_outliers(price_trades(prices), "trades", CFG)) == [(25, "outlier")]


def test_outliers_use_quote_mids_and_bar_closes() -> None:
    mids = wiggle(30)
    mids[10] *= 2
    quotes = frame(
        "quotes", [(i, i, float(m) - 0.01, 1.0, float(m) + 0.01, 1.0) for i, m in enumerate(mids)]
    )
    assert failures(check_outliers(quotes, "quotes", CFG)) == [(10, "outlier")]
    closes = wiggle(30, seed=2)
    closes[12] *= 0.5
    bars = frame(
        "bars_1m",
        [
            (i * MIN, i * MIN, float(c), float(c) * 2, float(c) / 2, float(c), 1.0)
            for i, c in enumerate(closes)
        ],
    )
    assert failures(check_outliers(bars, "bars_1m", CFG)) == [(12, "outlier")]


def issues(found: pl.DataFrame) -> list[tuple[str, int, int, str]]:
    return list(found.iter_rows())


def minute_bars(minutes: list[int]) -> pl.DataFrame:
    return frame("bars_1m", [(m * MIN, m * MIN, 1.0, 1.0, 1.0, 1.0, 1.0) for m in minutes])


def test_bar_gaps_report_intervals_of_missing_bars() -> None:
    bars = minute_bars([0, 1, 4, 5, 7, 7])
    assert issues(find_gaps(bars, "bars_1m", CFG)) == [
        ("gap", 2 * MIN, 4 * MIN, "2 missing bars"),
        ("gap", 6 * MIN, 7 * MIN, "1 missing bars"),
    ]
    tolerant = ValidationConfig(bar_gap_tolerance=1)
    assert issues(find_gaps(bars, "bars_1m", tolerant)) == [
        ("gap", 2 * MIN, 4 * MIN, "2 missing bars")
    ]
    assert find_gaps(minute_bars([0, 5]), "bars_5m", CFG).height == 0


def test_staleness_reports_silent_periods() -> None:
    table = trades([(t * 10**9, 10.0, 1.0, "buyer", str(t)) for t in (0, 1, 2, 30, 31, 100)])
    assert find_stale(table, "trades", CFG).height == 0  # off by default
    stale = find_stale(table, "trades", ValidationConfig(max_staleness_ns=20 * 10**9))
    assert issues(stale) == [
        ("stale", 2 * 10**9, 30 * 10**9, "no update for 28 s (limit 20 s)"),
        ("stale", 31 * 10**9, 100 * 10**9, "no update for 69 s (limit 20 s)"),
    ]


def test_sequence_gaps_in_contiguous_mode() -> None:
    table = book(
        [
            (1, "bid", 10.0, 1.0, 7, True, False),
            (1, "ask", 11.0, 1.0, 7, True, True),
            (2, "bid", 10.0, 2.0, 8, False, True),
            (3, "bid", 10.0, 3.0, 0, False, True),
            (5, "bid", 10.0, 3.0, 11, False, False),
            (5, "ask", 11.0, 3.0, 11, False, True),
        ]
    )
    contiguous = ValidationConfig(book_sequence="contiguous")
    assert issues(find_sequence_gaps(table, "book", contiguous)) == [
        ("sequence_gap", 2, 5, "sequence jumps from 8 to 11 (2 missing)")
    ]
    assert find_sequence_gaps(table, "book", CFG).height == 0  # "increasing" allows jumps


def test_config_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="outlier_threshold"):
        ValidationConfig(outlier_threshold=0)
    with pytest.raises(ValueError, match="unknown gate"):
        ValidationConfig(disabled=frozenset({"outlier"}))
    with pytest.raises(ValueError, match="book_sequence"):
        ValidationConfig(book_sequence="strict")  # type: ignore[arg-type]


def test_a_snapshot_starts_a_new_sequence_count() -> None:
    """Coinbase numbers restart on reconnect; the new snapshot must not read as going back."""
    import polars as pl

    from tradestack.data.validation import ValidationConfig, validate

    rows = [  # (sequence, is_snapshot)
        (10, True),
        (11, False),
        (12, False),  # first connection
        (1, True),
        (1, True),
        (2, False),  # reconnect: snapshot, numbers from the start
        (1, False),  # this one really goes back
    ]
    frame = pl.DataFrame(
        {
            "ts_event_ns": list(range(1, len(rows) + 1)),
            "ts_recv_ns": list(range(1, len(rows) + 1)),
            "side": ["bid"] * len(rows),
            "price": [100.0 + i for i in range(len(rows))],
            "size": [1.0] * len(rows),
            "sequence": [s for s, _ in rows],
            "is_snapshot": [b for _, b in rows],
            "batch_end": [True] * len(rows),
        },
        schema_overrides={"ts_event_ns": pl.Int64, "ts_recv_ns": pl.Int64, "sequence": pl.Int64},
    )
    result = validate("book", frame, ValidationConfig())
    assert result.report.reasons == {"sequence_backwards": 1}
    assert result.quarantined["price"].to_list() == [106.0]  # the last row, not the snapshot


def test_the_validation_package_imports_on_its_own() -> None:
    """Imported before the catalog, the gates' use of the catalog schemas must not be circular."""
    import subprocess
    import sys

    code = "from tradestack.data.validation import ValidationConfig, validate; print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
