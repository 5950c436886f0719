"""load_bars: real public file formats, UTC conversion, validation errors, round trips."""

from __future__ import annotations

import gzip
import pickle
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradestack.core.ids import InstrumentId
from tradestack.data import DataValidationError, load_bars, resolve_data_path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
EXAMPLES = ROOT / "examples" / "data"
IID = InstrumentId("TEST", "sim")
HOUR_NS = 3600 * 10**9

needs_shared = pytest.mark.skipif(
    not SHARED.is_dir(), reason=f"shared real-data folder {SHARED} is not present"
)


def utc_ns(text: str) -> int:
    """ns since the epoch of a naive ISO string read as UTC."""
    return int(np.datetime64(text, "ns").astype(np.int64))


def write(tmp_path: Path, text: str, name: str = "GOOG.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# (file under shared/data, timezone, rows, first bar UTC, first close, first volume)
REAL_FILES = [
    ("bars/crypto/backtesting_BTCUSD.csv", "UTC", 156, "2012-01-31", 5.55, 2012.25343589),
    (
        "bars/crypto/nautilus_binance_ADABTC-1m-2021-11-27.csv",
        "UTC",
        10,
        "2021-11-27T00:00",
        0.00002854,
        36304.2,
    ),
    (
        "bars/equities/backtesting_GOOG.csv",
        "America/New_York",
        2148,
        "2004-08-19T04:00",
        100.34,
        22351900,
    ),
    (
        "bars/equities/yfinance_CALM-1d-no-bad-divs.csv",
        "UTC",
        662,
        "2022-01-03T05:00",
        37.70000076293945,
        707800,
    ),
    ("bars/equities/yfinance_EA-15m-no-bad-divs.csv", "UTC", 319, "2026-05-26T08:00", 199.85, 0),
    ("bars/equities/zipline_pipeline_AAPL_2014.csv", "UTC", 127, "2014-03-03", 527.76001, 59695300),
    ("bars/equities/backtrader_orcl-1995-2014.txt", "UTC", 5036, "1995-01-03", 2.117284, 36301200),
    (
        "corporate_actions/zipline_csvdir_AAPL_2012-2014.csv.gz",
        "America/New_York",
        754,
        "2012-01-03T05:00",
        58.747143,
        75555200,
    ),
    (
        "corporate_actions/zipline_csvdir_MSFT_2012-2014.csv.gz",
        "UTC",
        754,
        "2012-01-03",
        26.77,
        64731500,
    ),
]


@needs_shared
@pytest.mark.parametrize(
    ("name", "tz", "rows", "first_utc", "close", "volume"),
    REAL_FILES,
    ids=[Path(f[0]).name for f in REAL_FILES],
)
def test_real_file_loads(
    name: str, tz: str, rows: int, first_utc: str, close: float, volume: float
) -> None:
    bars = load_bars(SHARED / name, IID, timezone=tz)
    assert len(bars) == rows
    assert bars.ts_ns[0] == utc_ns(first_utc)
    assert bars.close[0] == close
    assert bars.volume[0] == volume
    assert np.all(np.diff(bars.ts_ns) > 0)
    assert bars.ts_ns.dtype == np.int64
    assert bars.close.dtype == np.float64


@needs_shared
def test_yfinance_offsets_convert_to_utc_across_dst() -> None:
    bars = load_bars(SHARED / "bars/equities/yfinance_CALM-1d-no-bad-divs.csv", IID)
    assert bars.ts_ns[0] == 1_641_186_000 * 10**9  # 2022-01-03 00:00-05:00
    assert bars.ts_ns[-1] == utc_ns("2024-08-21T04:00")  # 2024-08-21 00:00-04:00
    # The timezone argument only applies to naive text; offsets in the file win.
    assert np.array_equal(
        load_bars(
            SHARED / "bars/equities/yfinance_CALM-1d-no-bad-divs.csv", IID, timezone="Asia/Tokyo"
        ).ts_ns,
        bars.ts_ns,
    )


@needs_shared
def test_naive_dates_are_read_in_the_given_timezone() -> None:
    path = SHARED / "corporate_actions/zipline_csvdir_MSFT_2012-2014.csv.gz"
    utc = load_bars(path, IID)
    new_york = load_bars(path, IID, timezone="America/New_York")
    shift = new_york.ts_ns - utc.ts_ns
    assert set(shift.tolist()) == {4 * HOUR_NS, 5 * HOUR_NS}  # EDT and EST


@needs_shared
def test_parquet_matches_csv(tmp_path: Path) -> None:
    csv = SHARED / "bars/equities/yfinance_CALM-1d-no-bad-divs.csv"
    expected = load_bars(csv, IID)
    frame = pl.read_csv(csv).with_columns(
        pl.col("Datetime").str.to_datetime("%Y-%m-%d %H:%M:%S%z", time_unit="us")
    )
    frame.write_parquet(tmp_path / "calm.parquet")
    got = load_bars(tmp_path / "calm.parquet", IID)
    for name in ("ts_ns", "open", "high", "low", "close", "volume"):
        assert np.array_equal(getattr(got, name), getattr(expected, name)), name


@pytest.mark.parametrize(
    "name", ["AAPL_2012-2014_daily.csv", "MSFT_2012-2014_daily.csv", "CALM_2022-2024_daily.csv"]
)
def test_example_files_load(name: str) -> None:
    bars = load_bars(
        EXAMPLES / name, InstrumentId(name.split("_")[0], "nasdaq"), timezone="America/New_York"
    )
    assert len(bars) > 600
    assert bars.ts_ns[0] % (HOUR_NS) == 0


@pytest.mark.parametrize(
    ("stamps", "tz"),
    [
        (["1600000000", "1600000060"], "UTC"),
        (["1600000000000", "1600000060000"], "UTC"),
        (["1600000000000000", "1600000060000000"], "UTC"),
        (["1600000000000000000", "1600000060000000000"], "UTC"),
        (["2020-09-13T12:26:40Z", "2020-09-13T12:27:40Z"], "UTC"),
        (["2020-09-13 14:26:40+02:00", "2020-09-13 14:27:40+02:00"], "UTC"),
        (["2020-09-13 08:26:40", "2020-09-13 08:27:40"], "America/New_York"),
        (["2020-09-13T12:26:40.000", "2020-09-13T12:27:40.000"], "UTC"),
    ],
)
def test_timestamp_encodings(tmp_path: Path, stamps: list[str], tz: str) -> None:
    rows = "".join(f"{s},1,2,0.5,1.5,10\n" for s in stamps)
    bars = load_bars(write(tmp_path, "time,open,high,low,close,volume\n" + rows), IID, timezone=tz)
    assert bars.ts_ns.tolist() == [1_600_000_000 * 10**9, 1_600_000_060 * 10**9]


def test_headerless_kline_layout_and_missing_volume(tmp_path: Path) -> None:
    bars = load_bars(write(tmp_path, "1600000000000,1,2,0.5,1.5\n1600000060000,1,2,0.5,1.5\n"), IID)
    assert bars.volume.tolist() == [0.0, 0.0]
    with pytest.raises(DataValidationError) as err:
        load_bars(write(tmp_path, "1600000000000,1,2,0.5,1.5\n1600000060000,1,2,0.5,-1\n"), IID)
    assert (err.value.row, err.value.field) == (2, "close")


def test_time_column_option_and_case_insensitive_names(tmp_path: Path) -> None:
    path = write(tmp_path, "Session,OPEN,High,low,Close,VOLUME,Extra\n2020-01-02,1,2,0.5,1.5,7,x\n")
    with pytest.raises(DataValidationError, match="no time column"):
        load_bars(path, IID)
    assert load_bars(path, IID, time_column="session").volume.tolist() == [7.0]


def test_parquet_epoch_and_naive_time_columns(tmp_path: Path) -> None:
    prices = {"open": [1.0, 1.0], "high": [2.0, 2.0], "low": [0.5, 0.5], "close": [1.5, 1.5]}
    pl.DataFrame({"open_time": [1_600_000_000_000, 1_600_000_060_000], **prices}).write_parquet(
        tmp_path / "a.parquet"
    )
    assert load_bars(tmp_path / "a.parquet", IID).ts_ns[0] == 1_600_000_000 * 10**9
    dates = pl.Series([date(2022, 1, 3), date(2022, 7, 1)])
    pl.DataFrame({"Date": dates, **prices}).write_parquet(tmp_path / "b.pq")
    bars = load_bars(tmp_path / "b.pq", IID, timezone="America/New_York")
    assert bars.ts_ns.tolist() == [utc_ns("2022-01-03T05:00"), utc_ns("2022-07-01T04:00")]


def test_resolve_data_path(tmp_path: Path) -> None:
    assert resolve_data_path("data/x.csv", tmp_path) == tmp_path / "data" / "x.csv"
    assert resolve_data_path(tmp_path / "y.csv", Path("/elsewhere")) == tmp_path / "y.csv"


HEADER = "Date,Open,High,Low,Close,Volume\n"
GOOD = "2022-01-03,10.5,11.0,10.0,10.8,100\n"


@pytest.mark.parametrize(
    ("body", "row", "field", "value", "detail"),
    [
        (
            "2022-01-05,10,11,9,10,1\n2022-01-04,10,11,9,10,1\n",
            3,
            "timestamp",
            "2022-01-04",
            "timestamp 2022-01-04T00:00:00.000000000Z is earlier than row 2's "
            "2022-01-05T00:00:00.000000000Z; rows must be in ascending time order",
        ),
        (
            "2022-01-04,10,11,9,10,1\n2022-01-04,10,11,9,10,1\n",
            3,
            "timestamp",
            "2022-01-04",
            "duplicate timestamp 2022-01-04T00:00:00.000000000Z (same as row 2)",
        ),
        (
            "2022-01-04,10,11,9,nan,1\n",
            2,
            "close",
            float("nan"),
            "close is nan (must be a finite number)",
        ),
        ("2022-01-04,10,11,9,,1\n", 2, "close", None, "missing close"),
        ("2022-01-04,0,11,9,10,1\n", 2, "open", 0.0, "open 0.0 is not positive"),
        ("2022-01-04,-1,11,9,10,1\n", 2, "open", -1.0, "open -1.0 is not positive"),
        ("2022-01-04,10.8,10.5,11.0,10.9,1\n", 2, "high", 10.5, "high 10.5 < low 11.0"),
        ("2022-01-04,10.2,10.5,10.0,10.7,1\n", 2, "high", 10.5, "high 10.5 < close 10.7"),
        ("2022-01-04,10.5,11.0,10.6,10.8,1\n", 2, "low", 10.6, "low 10.6 > open 10.5"),
        (
            "2022-13-45,10,11,9,10,1\n",
            2,
            "timestamp",
            "2022-13-45",
            "cannot parse '2022-13-45' as a timestamp",
        ),
        ("2022-01-04,10,11,9,10,-5\n", 2, "volume", -5.0, "volume -5.0 is negative"),
        ("2022-01-04,10,11,9,10,\n", 2, "volume", None, "missing volume"),
        ("2022-01-04,10,abc,9,10,1\n", 2, "high", "abc", "cannot parse 'abc' as a number"),
    ],
    ids=[
        "unsorted",
        "duplicate",
        "nan-close",
        "empty-close",
        "zero-open",
        "negative-open",
        "high<low",
        "high<close",
        "low>open",
        "bad-date",
        "negative-volume",
        "empty-volume",
        "text-price",
    ],
)
def test_defect_is_reported_with_row_and_field(
    tmp_path: Path, body: str, row: int, field: str, value: object, detail: str
) -> None:
    path = write(tmp_path, HEADER + body)
    with pytest.raises(DataValidationError) as err:
        load_bars(path, IID)
    e = err.value
    assert (e.path, e.row, e.field) == (path, row, field)
    assert e.value == value or (isinstance(value, float) and np.isnan(value) and np.isnan(e.value))
    assert str(e) == f"GOOG.csv row {row}, field '{field}': {detail}"
    assert isinstance(e, ValueError)


def test_missing_column_names_the_columns_found(tmp_path: Path) -> None:
    path = write(tmp_path, "Date,Open,High,Close\n2022-01-03,1,2,1.5\n")
    with pytest.raises(DataValidationError) as err:
        load_bars(path, IID)
    assert (err.value.row, err.value.field) == (None, "low")
    assert str(err.value) == (
        "GOOG.csv field 'low': missing required column low; "
        "found columns: 'Date', 'Open', 'High', 'Close'"
    )


def test_earliest_bad_row_wins_and_blank_lines_keep_numbering(tmp_path: Path) -> None:
    text = HEADER + GOOD + "\n" + "2022-01-04,10,9,9.5,10,1\n" + "2022-01-05,10,xx,9,10,1\n"
    with pytest.raises(DataValidationError) as err:
        load_bars(write(tmp_path, text), IID)
    assert (err.value.row, err.value.field) == (4, "high")


def test_nonexistent_local_time_is_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path, HEADER + "2021-03-14 01:30:00,1,2,0.5,1,1\n2021-03-14 02:30:00,1,2,0.5,1,1\n"
    )
    with pytest.raises(DataValidationError, match="does not exist in America/New_York") as err:
        load_bars(path, IID, timezone="America/New_York")
    assert err.value.row == 3
    assert len(load_bars(path, IID)) == 2


def test_empty_and_unknown_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError, match="no data rows"):
        load_bars(write(tmp_path, HEADER), IID)
    with pytest.raises(ValueError, match="unknown timezone"):
        load_bars(write(tmp_path, HEADER + GOOD), IID, timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="pass fmt="):
        load_bars(write(tmp_path, HEADER + GOOD, "bars.json"), IID)
    assert len(load_bars(tmp_path / "bars.json", IID, fmt="csv")) == 1


def test_ragged_line_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER + GOOD + "2022-01-04,10,11,9,10,1,extra\n")
    with pytest.raises(DataValidationError) as err:
        load_bars(path, IID)
    assert str(err.value) == "GOOG.csv row 3: 7 fields but the first line has 6"


def test_gzip_csv_and_text_cells_in_headerless_file(tmp_path: Path) -> None:
    path = tmp_path / "k.csv.gz"
    path.write_bytes(gzip.compress(b"1600000000,1,2,0.5,1.5,3\n1600000060,1,x,0.5,1.5,3\n"))
    with pytest.raises(DataValidationError) as err:
        load_bars(path, IID)
    assert (err.value.row, err.value.field, err.value.value) == (2, "high", "x")


def test_error_survives_pickling(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError) as err:
        load_bars(write(tmp_path, HEADER + "2022-01-04,10,11,9,10,-5\n"), IID)
    copy = pickle.loads(pickle.dumps(err.value))
    assert (str(copy), copy.row, copy.field, copy.value) == (str(err.value), 2, "volume", -5.0)


@st.composite
def ohlc_frames(draw: st.DrawFn) -> dict[str, list[float] | list[int]]:
    n = draw(st.integers(1, 25))
    price = st.floats(1e-6, 1e9, allow_nan=False, allow_infinity=False)
    frac = st.floats(1e-3, 1.0)
    o, c = (
        draw(st.lists(price, min_size=n, max_size=n)),
        draw(st.lists(price, min_size=n, max_size=n)),
    )
    up = draw(st.lists(st.floats(0, 1e6), min_size=n, max_size=n))
    down = draw(st.lists(frac, min_size=n, max_size=n))
    steps = draw(st.lists(st.integers(1, 10**15), min_size=n, max_size=n))
    return {
        "ts": np.cumsum([1_500_000_000 * 10**9, *steps])[1:].tolist(),
        "open": o,
        "high": [max(a, b) + u for a, b, u in zip(o, c, up, strict=True)],
        "low": [min(a, b) * d for a, b, d in zip(o, c, down, strict=True)],
        "close": c,
        "volume": draw(st.lists(st.floats(0, 1e12), min_size=n, max_size=n)),
    }


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=ohlc_frames())
def test_valid_frames_round_trip_exactly(
    tmp_path: Path, data: dict[str, list[float] | list[int]]
) -> None:
    fields = ("open", "high", "low", "close", "volume")
    stamps = [str(np.datetime64(int(t), "ns")) for t in data["ts"]]
    lines = [
        ",".join([s, *(repr(float(data[f][i])) for f in fields)]) for i, s in enumerate(stamps)
    ]
    csv = write(tmp_path, "datetime," + ",".join(fields) + "\n" + "\n".join(lines) + "\n", "r.csv")
    frame = pl.DataFrame(data).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    frame.write_parquet(tmp_path / "r.parquet")
    for path in (csv, tmp_path / "r.parquet"):
        bars = load_bars(path, IID, time_column="ts" if path.suffix == ".parquet" else None)
        assert bars.ts_ns.tolist() == data["ts"]
        for f in fields:
            assert bars.column(f).tolist() == data[f], (path.name, f)
