"""Load OHLCV bars from CSV or Parquet files into a validated :class:`BarSeries`.

Understands the common public layouts: backtesting.py (unnamed first date column), Yahoo /
yfinance (tz-aware ``Datetime`` plus extra columns), backtrader, zipline csvdir, Binance kline
files without a header, and Parquet with a timestamp column.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from tradestack.core.ids import InstrumentId
from tradestack.core.series import BarSeries, FloatArray, IntArray
from tradestack.data.errors import DataValidationError

if TYPE_CHECKING:
    import polars as pl

PRICE_FIELDS = ("open", "high", "low", "close")
TIME_FIELD = "timestamp"
# Auto-detected time column names, most specific first (the last is a pandas index in Parquet).
TIME_COLUMN_NAMES = (
    "datetime",
    "timestamp",
    "open_time",
    "date",
    "time",
    "day",
    "__index_level_0__",
)
UNNAMED_COLUMN_NAMES = ("", "unnamed: 0", "index")
# Binance kline files: open_time, open, high, low, close, volume, close_time, ...
HEADERLESS_COLUMNS = ("timestamp", "open", "high", "low", "close", "volume")
# Tried in order on a sample of the time column (naive before offset-aware); anything else
# falls back to polars' own format inference.
TIME_FORMATS = (
    "%Y-%m-%d",
    *(
        f"%Y-%m-%d{sep}{clock}{zone}"
        for zone in ("", "%z")
        for clock in ("%H:%M:%S", "%H:%M", "%H:%M:%S%.f")
        for sep in " T"
    ),
)
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INT64_MAX = np.iinfo(np.int64).max
_LINE = "__line__"


def load_bars(
    path: str | Path,
    instrument_id: InstrumentId,
    *,
    timezone: str = "UTC",
    time_column: str | None = None,
    fmt: str | None = None,
) -> BarSeries:
    """Read one instrument's OHLCV bars from ``path`` and validate them.

    ``fmt`` is ``"csv"`` or ``"parquet"``; by default it follows the suffix (``.csv``, ``.txt``,
    ``.csv.gz``, ``.parquet``, ``.pq``). Column names are matched case-insensitively; extra
    columns are ignored and a missing ``volume`` column reads as zeros. The time column is
    ``time_column`` or the first of datetime/timestamp/open_time/date/time/day, else an unnamed
    first column; a CSV whose first line starts with a number has no header and is read as
    Binance klines (open_time, open, high, low, close, volume, ...). Naive timestamps are local
    times in ``timezone`` (IANA name); tz-aware ones and integer epochs (s/ms/us/ns, told apart by
    magnitude) are absolute. The result's ``ts_ns`` are UTC nanoseconds.

    Raises :class:`DataValidationError` naming the first offending line and column for a missing
    column, an unparseable/missing cell, NaN/inf/non-positive prices, high < low, high below or
    low above open/close, negative volume, and unsorted or duplicate timestamps.
    """
    file = Path(path)
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown timezone {timezone!r}; use an IANA name such as 'UTC'") from exc
    kind = (fmt or _format_from_suffix(file)).lower()
    if kind == "csv":
        frame, columns = _read_csv(file, time_column)
    elif kind == "parquet":
        frame, columns = _read_parquet(file, time_column)
    else:
        raise ValueError(f"unknown bar file format {kind!r}; use 'csv' or 'parquet'")
    if frame.height == 0:
        raise DataValidationError(file, "file has no data rows")
    return _validate(file, frame, columns, timezone, instrument_id)


def resolve_data_path(path: str | Path, base: Path) -> Path:
    """``path`` itself when absolute (after ``~`` expansion), else ``path`` under folder ``base``.

    Configs name data files relative to the config file's folder; pass that folder as ``base``.
    """
    p = Path(path).expanduser()
    return p if p.is_absolute() else (base / p).resolve()


class _Columns(NamedTuple):
    """Which file column holds each canonical field (``volume`` may be absent)."""

    time: str
    prices: dict[str, str]
    volume: str | None


def _format_from_suffix(file: Path) -> str:
    name = file.name.lower().removesuffix(".gz")
    for kind, suffixes in (("csv", (".csv", ".txt")), ("parquet", (".parquet", ".pq"))):
        if name.endswith(suffixes):
            return kind
    raise ValueError(
        f"{file.name}: cannot tell the format from its suffix; pass fmt='csv' or 'parquet'"
    )


def _read_csv(file: Path, time_column: str | None) -> tuple[pl.DataFrame, _Columns]:
    """The used columns with a line-number column; prices typed when they all parse, else text."""
    import polars as pl

    source: Any = file
    try:
        if file.suffix.lower() == ".gz":
            source = gzip.decompress(file.read_bytes())
            head = source[:4096]
        else:
            with file.open("rb") as fh:
                head = fh.read(4096)
    except OSError as exc:
        raise DataValidationError(file, f"cannot read file: {exc}") from exc
    first_line = head.decode("utf-8-sig", errors="replace").partition("\n")[0].strip()
    if not first_line:
        raise DataValidationError(file, "file is empty or starts with a blank line")
    separator = max((",", ";", "\t"), key=first_line.count)
    has_header = not _NUMBER.fullmatch(first_line.split(separator)[0].strip().strip('"'))
    options: dict[str, Any] = {"has_header": has_header, "separator": separator}
    try:
        names = pl.read_csv(source, n_rows=0, **options).columns
        columns = _csv_columns(file, names, has_header, time_column)
        used = [columns.time, *columns.prices.values()]
        used += [columns.volume] if columns.volume else []
        numbers = dict.fromkeys(used[1:], pl.Float64)
        try:
            frame = pl.read_csv(
                source,
                columns=used,
                schema_overrides={columns.time: pl.String, **numbers},
                **options,
            )
            blank = pl.all_horizontal(pl.col(used).is_null())
        except pl.exceptions.ComputeError:
            # Some cell is not a plain number: read text so _validate can name the line.
            frame = pl.read_csv(source, columns=used, infer_schema=False, **options)
            blank = pl.all_horizontal(pl.col(used).str.strip_chars().fill_null("") == "")
    except (pl.exceptions.PolarsError, OSError) as exc:
        text = source.decode(errors="replace") if isinstance(source, bytes) else None
        row, width, first = _ragged_row(text or file.read_text(errors="replace"), separator)
        detail = (
            f"{width} fields but the first line has {first}" if row else f"cannot read CSV: {exc}"
        )
        raise DataValidationError(file, detail, row=row) from exc
    frame = frame.with_row_index(_LINE, offset=2 if has_header else 1).filter(~blank)
    return frame, columns


def _ragged_row(text: str, separator: str) -> tuple[int | None, int, int]:
    """The first line whose field count differs from the first line's (error path only)."""
    reader = csv.reader(io.StringIO(text), delimiter=separator)
    widths = ((reader.line_num, len(fields)) for fields in reader if fields)
    first = next(widths, (None, 0))[1]
    return next(((line, n, first) for line, n in widths if n != first), (None, 0, first))


def _csv_columns(
    file: Path, names: list[str], has_header: bool, time_column: str | None
) -> _Columns:
    if has_header:
        return _find_columns(file, names, time_column)
    if len(names) < 5:
        raise DataValidationError(
            file,
            f"headerless file has {len(names)} columns; expected open_time, open, high, low, "
            "close[, volume, ...] (Binance kline layout)",
        )
    named = dict(zip(HEADERLESS_COLUMNS, names, strict=False))
    return _Columns(named["timestamp"], {f: named[f] for f in PRICE_FIELDS}, named.get("volume"))


def _read_parquet(file: Path, time_column: str | None) -> tuple[pl.DataFrame, _Columns]:
    import polars as pl

    try:
        frame = pl.read_parquet(file)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataValidationError(file, f"cannot read Parquet: {exc}") from exc
    columns = _find_columns(file, frame.columns, time_column)
    return frame.with_row_index(_LINE, offset=1), columns


def _find_columns(file: Path, names: list[str], time_column: str | None) -> _Columns:
    """Map canonical fields to the file's column names, case-insensitively."""
    by_lower: dict[str, str] = {}
    for name in names:
        key = name.strip().lower()
        if key in by_lower:
            raise DataValidationError(
                file, f"columns {by_lower[key]!r} and {name!r} differ only in case or spaces"
            )
        by_lower[key] = name
    found = ", ".join(repr(n) for n in names)
    if time_column is not None:
        time = by_lower.get(time_column.strip().lower())
        if time is None:
            raise DataValidationError(
                file, f"time column {time_column!r} not found; found columns: {found}"
            )
    else:
        time = next((by_lower[n] for n in TIME_COLUMN_NAMES if n in by_lower), None)
        if time is None and names and names[0].strip().lower() in UNNAMED_COLUMN_NAMES:
            time = names[0]
        if time is None:
            raise DataValidationError(
                file,
                "no time column (looked for date, datetime, time, timestamp, open_time, day or an "
                f"unnamed first column); found columns: {found}; pass time_column=",
            )
    missing = [f for f in PRICE_FIELDS if f not in by_lower]
    if missing:
        raise DataValidationError(
            file,
            f"missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(missing)}; found columns: {found}",
            field=missing[0],
        )
    return _Columns(time, {f: by_lower[f] for f in PRICE_FIELDS}, by_lower.get("volume"))


def _numeric(s: pl.Series) -> tuple[FloatArray, np.ndarray[Any, np.dtype[np.bool_]]]:
    """Float64 values (NaN where unusable) and a mask of cells that are not numbers at all."""
    import polars as pl

    if s.dtype == pl.String:
        values = s.str.strip_chars().cast(pl.Float64, strict=False)
    elif s.dtype.is_numeric():
        values = s.cast(pl.Float64)
    else:
        values = pl.Series(s.name, [None] * len(s), dtype=pl.Float64)
    bad = values.is_null().to_numpy()
    return values.fill_null(np.nan).to_numpy().astype(np.float64, copy=False), bad


def _timestamps(
    s: pl.Series, timezone: str
) -> tuple[IntArray, np.ndarray[Any, np.dtype[np.bool_]], np.ndarray[Any, np.dtype[np.bool_]]]:
    """UTC ns (0 where bad), a mask of unparseable cells and one of nonexistent local times."""
    import polars as pl

    n = len(s)
    no_local_problem = np.zeros(n, dtype=bool)
    text = s
    if s.dtype == pl.String and s.drop_nulls().head(64).str.contains(r"^\s*-?\d+\s*$").all():
        s = s.str.strip_chars().cast(pl.Int64, strict=False)
    if s.dtype.is_integer() and _looks_like_yyyymmdd(s):
        s = s.cast(pl.String).str.to_datetime("%Y%m%d", strict=False, time_unit="ns")
    if s.dtype.is_integer():
        ints = s.cast(pl.Int64).fill_null(0).to_numpy()
        return (*_epoch_ns(ints, s.is_null().to_numpy()), no_local_problem)
    if s.dtype == pl.String:
        parsed = _parse_text_times(text)
        if parsed.null_count() > text.null_count():  # maybe only surrounding spaces
            parsed = _parse_text_times(text.str.strip_chars())
    elif s.dtype == pl.Date or isinstance(s.dtype, pl.Datetime):
        zone = s.dtype.time_zone if isinstance(s.dtype, pl.Datetime) else None
        parsed = s.cast(pl.Datetime("ns", zone))
    else:
        return np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool), no_local_problem
    unparsed = parsed.is_null().to_numpy()
    if not (isinstance(parsed.dtype, pl.Datetime) and parsed.dtype.time_zone):
        parsed = parsed.dt.replace_time_zone(timezone, ambiguous="null", non_existent="null")
    local_problem = parsed.is_null().to_numpy() & ~unparsed
    ns = parsed.dt.convert_time_zone("UTC").to_physical().fill_null(0).to_numpy()
    return ns.astype(np.int64, copy=False), unparsed, local_problem


def _parse_text_times(s: pl.Series) -> pl.Series:
    """Datetime[ns] (UTC when the text has offsets, else naive), null where unparseable."""
    import polars as pl

    sample = s.drop_nulls().head(64)
    for fmt in TIME_FORMATS:
        try:
            sample.str.to_datetime(fmt, strict=True, time_unit="ns")
        except pl.exceptions.PolarsError:
            continue
        if fmt.endswith("%S%z"):
            fast = _fixed_offset_times(s, fmt.removesuffix("%z"))
            if fast is not None:
                return fast
        return s.str.to_datetime(fmt, strict=False, time_unit="ns")
    try:
        return s.str.to_datetime(strict=False, time_unit="ns")
    except pl.exceptions.PolarsError:
        # Polars infers the format from the first value; that value is not a timestamp.
        return pl.Series(s.name, [None] * len(s), dtype=pl.Datetime("ns"))


def _fixed_offset_times(s: pl.Series, local_fmt: str) -> pl.Series | None:
    """Fast path for ``2022-01-03 00:00:00-05:00`` text: parse each distinct offset only once."""
    import polars as pl

    lengths = s.str.len_bytes()
    if lengths.min() != 25 or lengths.max() != 25:
        return None
    offsets = s.str.slice(19)
    distinct = offsets.unique().drop_nulls().to_list()
    shifts = []
    for text in distinct:
        if text[0] not in "+-" or text[3] != ":" or not (text[1:3] + text[4:]).isdigit():
            return None
        minutes = int(text[1:3]) * 60 + int(text[4:])
        shifts.append((-1 if text[0] == "-" else 1) * minutes * 60 * 10**9)
    local = s.str.slice(0, 19).str.to_datetime(local_fmt, strict=False, time_unit="ns")
    shift = offsets.replace_strict(distinct, shifts, return_dtype=pl.Int64)
    return (local.to_physical() - shift).cast(pl.Datetime("ns", "UTC"))


def _looks_like_yyyymmdd(s: pl.Series) -> bool:
    """8-digit integers such as 20140303 are dates; as epochs they would all fall in 1970."""
    lo, hi = s.min(), s.max()
    return isinstance(lo, int) and isinstance(hi, int) and lo >= 19_000_101 and hi <= 29_991_231


def _epoch_ns(
    values: IntArray, null: np.ndarray[Any, np.dtype[np.bool_]]
) -> tuple[IntArray, np.ndarray[Any, np.dtype[np.bool_]]]:
    """Integer epochs to ns, the unit (s/ms/us/ns) told by the column's largest magnitude."""
    v = np.where(null, 0, values).astype(np.int64)
    biggest = int(np.abs(v).max()) if len(v) else 0
    units = ((10**11, 10**9), (10**14, 10**6), (10**17, 10**3))  # s, ms, us below these
    factor = next((f for limit, f in units if biggest < limit), 1)
    overflow = np.abs(v) > _INT64_MAX // factor
    ns: IntArray = np.where(overflow, 0, v) * factor
    return ns, null | overflow


_Mask = np.ndarray[Any, np.dtype[np.bool_]]


def _validate(
    file: Path, frame: pl.DataFrame, columns: _Columns, timezone: str, instrument_id: InstrumentId
) -> BarSeries:
    """Parse and check every column at once; raise for the earliest bad line, else build."""
    n = frame.height
    lines = frame[_LINE].to_numpy()
    raw = {TIME_FIELD: frame[columns.time]}
    ts, bad_ts, bad_local = _timestamps(raw[TIME_FIELD], timezone)
    checks: list[tuple[_Mask, str, str]] = [
        (bad_ts, TIME_FIELD, "unparsed"),
        (bad_local, TIME_FIELD, "local"),
    ]
    values: dict[str, FloatArray] = {}
    for field, col in [*columns.prices.items(), ("volume", columns.volume)]:
        if col is None:
            continue
        raw[field] = frame[col]
        values[field], unparsed = _numeric(raw[field])
        v = values[field]
        checks += [
            (unparsed, field, "unparsed"),
            (~np.isfinite(v) & ~unparsed, field, "finite"),
            (v < 0 if field == "volume" else v <= 0, field, "sign"),
        ]
    o, h, lo, c = (values[f] for f in PRICE_FIELDS)
    step = np.diff(ts, prepend=ts[:1] - 1)
    checks += [
        (h < lo, "high", "high<low"),
        (h < np.maximum(o, c), "high", "high<top"),
        (lo > np.minimum(o, c), "low", "low>bottom"),
        (step < 0, TIME_FIELD, "unsorted"),
        (step == 0, TIME_FIELD, "duplicate"),
    ]
    first, field, kind = n, "", ""
    for mask, where, what in checks:
        hits = np.flatnonzero(mask[:first])
        if len(hits):
            first, field, kind = int(hits[0]), where, what
    if kind:
        numeric = field != TIME_FIELD and kind != "unparsed"
        cell = float(values[field][first]) if numeric else raw[field][first]
        detail = _explain(kind, field, first, cell, values, ts, lines, timezone)
        raise DataValidationError(file, detail, row=int(lines[first]), field=field, value=cell)
    return BarSeries(
        instrument_id,
        ts_ns=np.ascontiguousarray(ts, dtype=np.int64),
        open=np.ascontiguousarray(o),
        high=np.ascontiguousarray(h),
        low=np.ascontiguousarray(lo),
        close=np.ascontiguousarray(c),
        volume=np.ascontiguousarray(values.get("volume", np.zeros(n))),
    )


def _explain(
    kind: str,
    field: str,
    i: int,
    cell: Any,
    values: dict[str, FloatArray],
    ts: IntArray,
    lines: IntArray,
    timezone: str,
) -> str:
    """The human-readable reason for the check ``kind`` failing on row index ``i``."""
    if kind == "unparsed":
        if cell is None or (isinstance(cell, str) and not cell.strip()):
            return f"missing {field}"
        return f"cannot parse {cell!r} as {'a timestamp' if field == TIME_FIELD else 'a number'}"
    if kind == "local":
        return f"local time {cell!r} is ambiguous or does not exist in {timezone}"
    if kind in ("unsorted", "duplicate"):
        this, prev = (f"{np.datetime64(int(ts[j]), 'ns')}Z" for j in (i, i - 1))
        if kind == "duplicate":
            return f"duplicate timestamp {this} (same as row {lines[i - 1]})"
        return (
            f"timestamp {this} is earlier than row {lines[i - 1]}'s {prev}; "
            "rows must be in ascending time order"
        )
    x = float(values[field][i])
    o, h, lo, c = (float(values[f][i]) for f in PRICE_FIELDS)
    top, bottom = ("open", o) if o >= c else ("close", c), ("open", o) if o <= c else ("close", c)
    return {
        "finite": f"{field} is {x} (must be a finite number)",
        "sign": f"{field} {x!r} is " + ("negative" if field == "volume" else "not positive"),
        "high<low": f"high {h!r} < low {lo!r}",
        "high<top": f"high {h!r} < {top[0]} {top[1]!r}",
        "low>bottom": f"low {lo!r} > {bottom[0]} {bottom[1]!r}",
    }[kind]
