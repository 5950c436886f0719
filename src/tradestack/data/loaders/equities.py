"""Equity bars and the corporate actions listed beside them, from vendor files.

Formats, told apart by the header (names are matched case-insensitively):

- **Quandl WIKI PRICES** export (a zip holding one CSV, or the CSV): ``ticker, date, open, high,
  low, close, volume, ex-dividend, split_ratio, adj_open .. adj_volume``; many tickers per file.
  Prices and volume are as traded; ``adj_*`` are anchored at the export date, so they also
  contain every action after the file's last row.
- **zipline csvdir**: ``date, open, high, low, close, volume, dividend, split``. The prices,
  volumes *and dividends* were already split-adjusted by Yahoo, while ``split`` lists the raw
  events: applying those splits again would divide pre-split prices twice (zipline's own csvdir
  bundle does exactly that). :meth:`EquityBars.back_adjusted` therefore applies the dividends
  only; the splits stay in ``actions`` as information.
- **Yahoo / yfinance**: ``Date`` or ``Datetime, Open, High, Low, Close, [Adj Close], Volume,
  [Dividends, Stock Splits]``. Close is split- but not dividend-adjusted, ``Adj Close`` adds the
  dividends, ``Stock Splits`` 0 means none.
- **plain OHLCV** (backtesting.py's unnamed date column, zipline's pipeline ``day`` files): bars
  only; whether they are split-adjusted is unknown (``None``).

Bars come in the catalog's bar schema. Daily rows (a date, or midnight local time as Yahoo
writes it) are stamped 00:00 UTC of the session date; rows with other times keep their UTC
instant (naive times are read as UTC). Unlike ``load_bars``, which keeps Yahoo's midnight in
New York as 04:00/05:00 UTC, every daily equity file thus lands on the same stamps.
``ts_recv_ns`` equals ``ts_event_ns``: a vendor file has no receive time. Malformed input
raises :class:`DataValidationError` naming the line, column and value.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl

from tradestack.core.series import FloatArray, IntArray
from tradestack.data.catalog.schema import BARS
from tradestack.data.corporate_actions import (
    ActionKind,
    CorporateAction,
    DividendBasis,
    adjustment_factors,
    apply_factors,
)
from tradestack.data.errors import DataValidationError

Vendor = Literal["quandl_wiki", "zipline_csvdir", "yahoo", "ohlcv"]
_LINE = "__line__"
_OHLCV = ("open", "high", "low", "close", "volume")
_TIME_NAMES = ("date", "datetime", "day", "timestamp", "", "unnamed: 0")
_TIME_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S%z",
    "%Y-%m-%dT%H:%M:%S%z",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
)


@dataclass(frozen=True, slots=True)
class EquityBars:
    """One symbol's bars as a vendor file stores them, its listed actions and vendor columns.

    ``vendor_adjusted`` holds ``ts_event_ns`` and whichever adjusted price/volume columns the
    vendor publishes (Quandl: all five; Yahoo: close), for comparison. The ``*_split_adjusted``
    flags say whether the stored prices/volumes already reflect the splits in ``actions``
    (``None``: unknown). ``dividend_basis`` is the one the vendor's own adjusted columns use.
    """

    symbol: str
    vendor: Vendor
    bars: pl.DataFrame
    actions: tuple[CorporateAction, ...]
    vendor_adjusted: pl.DataFrame | None
    prices_split_adjusted: bool | None
    volume_split_adjusted: bool | None
    dividend_basis: DividendBasis = "prev_close"

    def back_adjusted(
        self,
        *,
        dividends: bool = True,
        dividend_basis: DividendBasis | None = None,
        timezone: str = "UTC",
    ) -> pl.DataFrame:
        """The bars fully back-adjusted by ``actions``, skipping splits the file already applied.

        ``dividend_basis`` defaults to the vendor's own, so the result is comparable with
        ``vendor_adjusted``. ``timezone`` places ex-dates for intraday bars (see ``adjust``).
        """
        has_splits = any(a.kind == ActionKind.SPLIT for a in self.actions)
        if has_splits and None in (self.prices_split_adjusted, self.volume_split_adjusted):
            raise ValueError(
                f"{self.symbol}: unknown whether the bars are split-adjusted; use adjust()"
            )
        ts = self.bars["ts_event_ns"].to_numpy()
        close = self.bars["close"].to_numpy()
        price, _ = adjustment_factors(
            ts,
            close,
            self.actions,
            splits=not self.prices_split_adjusted,
            dividends=dividends,
            dividend_basis=dividend_basis or self.dividend_basis,
            timezone=timezone,
        )
        _, volume = adjustment_factors(
            ts,
            close,
            self.actions,
            splits=not self.volume_split_adjusted,
            dividends=False,
            timezone=timezone,
        )
        return apply_factors(self.bars, price, volume)


def load_equity_file(path: str | Path, symbol: str | None = None) -> dict[str, EquityBars]:
    """Every symbol in ``path``, by symbol, whatever the format (see the module docstring).

    For single-symbol formats the symbol is ``symbol`` or the file name up to its first dot;
    for a Quandl export ``symbol`` selects one ticker.
    """
    file = Path(path)
    frame, columns = _read_table(file)
    if {"ticker", "ex-dividend", "split_ratio"} <= columns.keys():
        found = _quandl(file, frame, columns)
        if symbol is None:
            return found
        if symbol not in found:
            raise DataValidationError(file, f"no rows for ticker {symbol!r}; has {sorted(found)}")
        return {symbol: found[symbol]}
    name = symbol or file.name.split(".")[0]
    if {"dividend", "split"} <= columns.keys():
        return {name: _csvdir(file, frame, columns, name)}
    if "adj close" in columns or {"dividends", "stock splits"} <= columns.keys():
        return {name: _yahoo(file, frame, columns, name)}
    return {name: _ohlcv(file, frame, columns, name)}


def load_quandl_wiki(path: str | Path) -> dict[str, EquityBars]:
    """All tickers of a Quandl WIKI PRICES export (zip or CSV), by ticker, in file order."""
    file = Path(path)
    frame, columns = _read_table(file)
    return _quandl(file, frame, columns)


def load_zipline_csvdir(path: str | Path, symbol: str | None = None) -> EquityBars:
    """One zipline csvdir file (``date, open, ..., volume, dividend, split``; may be gzip)."""
    file = Path(path)
    frame, columns = _read_table(file)
    return _csvdir(file, frame, columns, symbol or file.name.split(".")[0])


def load_yahoo_csv(path: str | Path, symbol: str | None = None) -> EquityBars:
    """One Yahoo / yfinance CSV (``Adj Close``, and ``Dividends``/``Stock Splits`` if present)."""
    file = Path(path)
    frame, columns = _read_table(file)
    return _yahoo(file, frame, columns, symbol or file.name.split(".")[0])


def load_ohlcv_csv(path: str | Path, symbol: str | None = None) -> EquityBars:
    """A plain date + OHLCV CSV; no actions, adjustment state unknown."""
    file = Path(path)
    frame, columns = _read_table(file)
    return _ohlcv(file, frame, columns, symbol or file.name.split(".")[0])


def _quandl(file: Path, frame: pl.DataFrame, columns: dict[str, str]) -> dict[str, EquityBars]:
    _require(file, columns, ("ticker", "date", *_OHLCV, "ex-dividend", "split_ratio"))
    adjusted = {f: f"adj_{f}" for f in _OHLCV if f"adj_{f}" in columns}
    out: dict[str, EquityBars] = {}
    tickers = frame[columns["ticker"]].str.strip_chars()
    for ticker in tickers.unique(maintain_order=True).to_list():
        if not ticker:
            line = int(frame.filter(tickers.fill_null("") == "")[_LINE][0])
            raise DataValidationError(file, "missing ticker", row=line, field="ticker")
        rows = frame.filter(tickers == ticker)
        bars, days = _bars(file, rows, columns, "date")
        actions = _actions(file, rows, columns, days, "ex-dividend", "split_ratio", no_split=1.0)
        vendor = _vendor_columns(file, rows, columns, bars, adjusted)
        out[ticker] = EquityBars(
            ticker, "quandl_wiki", bars, actions, vendor, False, False, "ex_close"
        )
    return out


def _csvdir(file: Path, frame: pl.DataFrame, columns: dict[str, str], symbol: str) -> EquityBars:
    _require(file, columns, ("date", *_OHLCV, "dividend", "split"))
    bars, days = _bars(file, frame, columns, "date")
    actions = _actions(file, frame, columns, days, "dividend", "split", no_split=1.0)
    return EquityBars(symbol, "zipline_csvdir", bars, actions, None, True, True)


def _yahoo(file: Path, frame: pl.DataFrame, columns: dict[str, str], symbol: str) -> EquityBars:
    time = _time_column(file, columns)
    _require(file, columns, _OHLCV)
    bars, days = _bars(file, frame, columns, time)
    actions: tuple[CorporateAction, ...] = ()
    if {"dividends", "stock splits"} <= columns.keys():
        actions = _actions(file, frame, columns, days, "dividends", "stock splits", no_split=0.0)
    vendor = None
    if "adj close" in columns:
        vendor = _vendor_columns(file, frame, columns, bars, {"close": "adj close"})
    return EquityBars(symbol, "yahoo", bars, actions, vendor, True, True)


def _ohlcv(file: Path, frame: pl.DataFrame, columns: dict[str, str], symbol: str) -> EquityBars:
    time = _time_column(file, columns)
    _require(file, columns, _OHLCV)
    return EquityBars(symbol, "ohlcv", _bars(file, frame, columns, time)[0], (), None, None, None)


def _read_table(file: Path) -> tuple[pl.DataFrame, dict[str, str]]:
    """All cells as text with a 1-based line column, and lower-cased name → column name."""
    try:
        data = file.read_bytes()
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = [m for m in archive.namelist() if m.lower().endswith(".csv")]
                if len(members) != 1:
                    raise DataValidationError(
                        file, f"zip must hold exactly one .csv file, has {members or 'none'}"
                    )
                data = archive.read(members[0])
        elif data[:2] == b"\x1f\x8b":
            data = gzip.decompress(data)
        frame = pl.read_csv(io.BytesIO(data), infer_schema=False)
    except (OSError, EOFError, zipfile.BadZipFile, pl.exceptions.PolarsError) as exc:
        raise DataValidationError(file, f"cannot read file: {exc}") from exc
    if frame.height == 0:
        raise DataValidationError(file, "file has no data rows")
    columns: dict[str, str] = {}
    for name in frame.columns:
        key = name.strip().lower()
        if key in columns:
            raise DataValidationError(file, f"columns {columns[key]!r} and {name!r} collide")
        columns[key] = name
    return frame.with_row_index(_LINE, offset=2), columns


def _require(file: Path, columns: dict[str, str], needed: tuple[str, ...]) -> None:
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataValidationError(
            file,
            f"missing column(s) {', '.join(missing)}; found {', '.join(columns.values())}",
            field=missing[0],
        )


def _time_column(file: Path, columns: dict[str, str]) -> str:
    found = next((name for name in _TIME_NAMES if name in columns), None)
    if found is None:
        raise DataValidationError(file, "no date column (date, datetime, day or unnamed first)")
    return found


def _bars(
    file: Path, rows: pl.DataFrame, columns: dict[str, str], time: str
) -> tuple[pl.DataFrame, list[date]]:
    """Validated bars in the catalog bar schema (first bad line wins) and each row's local date."""
    lines = rows[_LINE].to_numpy()
    ts, days = _session_ns(file, rows[columns[time]], lines)
    v = {f: _floats(file, rows[columns[f]], lines, f) for f in _OHLCV}
    top, bottom = np.maximum(v["open"], v["close"]), np.minimum(v["open"], v["close"])
    step = np.diff(ts, prepend=np.int64(ts[0] - 1))
    checks = [
        *((v[f] <= 0, f, "is not positive") for f in _OHLCV[:4]),
        (v["volume"] < 0, "volume", "is negative"),
        (v["high"] < v["low"], "high", "is below low"),
        (v["high"] < top, "high", "is below open or close"),
        (v["low"] > bottom, "low", "is above open or close"),
        (step < 0, "date", "is earlier than the previous row's"),
        (step == 0, "date", "repeats the previous row's"),
    ]
    _raise_first(file, lines, checks, {**v, "date": rows[columns[time]].to_numpy()})
    frame = pl.DataFrame(
        {"ts_event_ns": ts, "ts_recv_ns": ts, **{f: v[f] for f in _OHLCV}}, schema=BARS
    )
    return frame, days


def _actions(
    file: Path,
    rows: pl.DataFrame,
    columns: dict[str, str],
    days: list[date],
    dividend: str,
    split: str,
    *,
    no_split: float,
) -> tuple[CorporateAction, ...]:
    lines = rows[_LINE].to_numpy()
    amounts = _floats(file, rows[columns[dividend]], lines, dividend)
    ratios = _floats(file, rows[columns[split]], lines, split)
    bad_split = (ratios <= 0) if no_split == 1.0 else (ratios < 0)
    checks = [(amounts < 0, dividend, "is negative"), (bad_split, split, "is not a valid ratio")]
    _raise_first(file, lines, checks, {dividend: amounts, split: ratios})
    found = [CorporateAction.dividend(days[i], amounts[i]) for i in np.flatnonzero(amounts > 0)]
    is_split = (ratios != no_split) & (ratios != 1.0) & (ratios > 0)
    found += [CorporateAction.split(days[i], ratios[i]) for i in np.flatnonzero(is_split)]
    return tuple(sorted(found))


def _vendor_columns(
    file: Path,
    rows: pl.DataFrame,
    columns: dict[str, str],
    bars: pl.DataFrame,
    wanted: dict[str, str],
) -> pl.DataFrame:
    lines = rows[_LINE].to_numpy()
    values = {f: _floats(file, rows[columns[c]], lines, c) for f, c in wanted.items()}
    _raise_first(
        file, lines, [(values[f] <= 0, wanted[f], "is not positive") for f in values], values
    )
    return pl.DataFrame({"ts_event_ns": bars["ts_event_ns"], **values})


def _floats(file: Path, cells: pl.Series, lines: IntArray, field: str) -> FloatArray:
    text = cells.str.strip_chars()
    numbers = text.cast(pl.Float64, strict=False)
    unparsed = np.flatnonzero(numbers.is_null().to_numpy())
    values = numbers.fill_null(np.nan).to_numpy()
    bad = np.flatnonzero(~np.isfinite(values))
    if len(unparsed) or len(bad):
        i = int(min(unparsed[:1].tolist() + bad[:1].tolist()))
        cell = cells[i]
        detail = f"missing {field}" if not (cell or "").strip() else f"{cell!r} is not a number"
        raise DataValidationError(file, detail, row=int(lines[i]), field=field, value=cell)
    return np.ascontiguousarray(values, dtype=np.float64)


def _session_ns(file: Path, cells: pl.Series, lines: IntArray) -> tuple[IntArray, list[date]]:
    """00:00 UTC of the local date for daily rows, else the exact UTC instant; local dates."""
    text = cells.str.strip_chars()
    first = text.drop_nulls().head(1).to_list()
    fmt = next((f for f in _TIME_FORMATS if _parses(first, f)), _TIME_FORMATS[0])
    if fmt == "%Y-%m-%d":
        parsed = text.str.strptime(pl.Date, fmt, strict=False).cast(pl.Datetime("ns"))
    elif fmt.endswith("%z"):
        parsed = text.str.strptime(pl.Datetime("ns", "UTC"), fmt, strict=False)
    else:  # naive date-times are read as UTC
        parsed = text.str.strptime(pl.Datetime("ns"), fmt, strict=False)
    bad = np.flatnonzero(parsed.is_null().to_numpy())
    if len(bad):
        i = int(bad[0])
        cell = cells[i]
        raise DataValidationError(
            file, f"cannot parse {cell!r} as a date", row=int(lines[i]), field="date", value=cell
        )
    local_days = text.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d")
    if fmt != "%Y-%m-%d" and bool((text.str.slice(11, 8) == "00:00:00").all()):
        parsed = local_days.cast(pl.Datetime("ns"))
    ts = np.ascontiguousarray(parsed.to_physical().to_numpy(), dtype=np.int64)
    return ts, local_days.to_list()


def _parses(sample: list[str], fmt: str) -> bool:
    try:
        pl.Series(sample, dtype=pl.String).str.strptime(pl.Datetime("ns"), fmt, strict=True)
    except pl.exceptions.PolarsError:
        return False
    return True


def _raise_first(
    file: Path,
    lines: IntArray,
    checks: list[tuple[np.ndarray[tuple[int], np.dtype[np.bool_]], str, str]],
    values: Mapping[str, np.ndarray[tuple[int], np.dtype[np.generic]]],
) -> None:
    """Raise for the earliest line failing any check (ties: the first check listed)."""
    first, found = len(lines), None
    for mask, field, what in checks:
        hits = np.flatnonzero(mask[:first])
        if len(hits):
            first, found = int(hits[0]), (field, what)
    if found is not None:
        field, what = found
        value = values[field][first]
        value = value.item() if isinstance(value, np.generic) else value
        raise DataValidationError(
            file, f"{field} {value!r} {what}", row=int(lines[first]), field=field, value=value
        )
