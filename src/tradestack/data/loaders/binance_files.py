"""Binance historical data files: order-book depth CSVs and kline CSVs, to catalog frames.

Also holds the typed CSV reading and epoch conversion the other crypto loaders share.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from tradestack.core.ids import InstrumentId
from tradestack.data.bars import load_bars
from tradestack.data.catalog.schema import BARS, BOOK
from tradestack.data.errors import DataValidationError

DEPTH_COLUMNS: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "timestamp": pl.Int64(),
    "first_update_id": pl.Int64(),
    "last_update_id": pl.Int64(),
    "side": pl.String(),
    "update_type": pl.String(),
    "price": pl.Float64(),
    "qty": pl.Float64(),
    "pu": pl.Int64(),
}
_SIDES = {"b": "bid", "a": "ask"}
_UPDATE_TYPES = ("snap", "set")
_LINE = "__line__"
# Largest magnitude of an epoch in s, ms and µs (anything bigger is ns), and the factor to ns.
_EPOCH_UNITS = ((10**11, 10**9), (10**14, 10**6), (10**17, 10**3))


def epoch_factor(values: pl.Series) -> int:
    """ns per unit of integer epochs, told by magnitude: s, ms, µs or ns."""
    array = values.drop_nulls().to_numpy()
    biggest = int(np.abs(array).max()) if array.size else 0
    return next((f for limit, f in _EPOCH_UNITS if biggest < limit), 1)


def csv_source(path: Path) -> Any:
    """What polars should read: the path, or the single CSV inside a ``.zip`` download."""
    if path.suffix.lower() != ".zip":
        return path
    try:
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if not n.endswith("/")]
            if len(members) != 1:
                raise DataValidationError(path, f"zip holds {len(members)} files, expected one CSV")
            return io.BytesIO(archive.read(members[0]))
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataValidationError(path, f"cannot read zip: {exc}") from exc


def read_csv_typed(
    path: Path,
    dtypes: Mapping[str, pl.DataType],
    *,
    optional: Collection[str] = (),
) -> pl.DataFrame:
    """The named columns of a CSV with a header, typed, plus a ``__line__`` column (line no.).

    Raises :class:`DataValidationError` for a missing column, a cell that does not parse as its
    dtype, or an empty cell outside ``optional`` columns, naming the first such line.
    """
    try:
        header = pl.read_csv(csv_source(path), n_rows=0).columns
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataValidationError(path, f"cannot read CSV: {exc}") from exc
    missing = [c for c in dtypes if c not in header]
    if missing:
        raise DataValidationError(
            path,
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)}; "
            f"found columns: {', '.join(header) or '(none)'}",
            field=missing[0],
        )
    try:
        frame = pl.read_csv(csv_source(path), columns=list(dtypes), schema_overrides=dict(dtypes))
    except pl.exceptions.PolarsError as exc:
        _raise_unparsed(path, dtypes)
        raise DataValidationError(path, f"cannot read CSV: {exc}") from exc
    frame = frame.with_row_index(_LINE, offset=2)
    for name in dtypes:
        if name in optional:
            continue
        nulls = frame.filter(pl.col(name).is_null())
        if nulls.height:
            raise DataValidationError(path, f"missing {name}", row=nulls[_LINE][0], field=name)
    return frame


def _raise_unparsed(path: Path, dtypes: Mapping[str, pl.DataType]) -> None:
    """Find and raise the first cell that does not parse as its column's dtype."""
    text = pl.read_csv(csv_source(path), columns=list(dtypes), infer_schema=False)
    text = text.with_row_index(_LINE, offset=2)
    first: tuple[int, str, Any] | None = None
    for name, dtype in dtypes.items():
        if dtype == pl.String:
            continue
        cells = text.get_column(name).str.strip_chars()
        bad = text.filter(cells.cast(dtype, strict=False).is_null() & (cells.fill_null("") != ""))
        if bad.height and (first is None or bad[_LINE][0] < first[0]):
            first = (bad[_LINE][0], name, bad[name][0])
    if first is not None:
        line, name, value = first
        raise DataValidationError(
            path, f"cannot parse {value!r} as {dtypes[name]}", row=line, field=name, value=value
        )


def _first_bad(path: Path, frame: pl.DataFrame, mask: pl.Expr, field: str, detail: str) -> None:
    bad = frame.filter(mask)
    if bad.height:
        value = bad[field][0]
        raise DataValidationError(
            path, detail.format(value=value), row=bad[_LINE][0], field=field, value=value
        )


def load_binance_depth(path: str | Path) -> pl.DataFrame:
    """Binance historical order-book CSV (``depth-snap`` / ``depth-update``) as ``book`` rows.

    Columns: symbol, timestamp (epoch ms; µs also recognised), first_update_id,
    last_update_id, side (``b``/``a``), update_type (``snap``/``set``), price, qty, pu. Each
    run of rows with the same last_update_id and update_type is one message: ``sequence`` is
    its last_update_id and its last row has ``batch_end``; ``snap`` rows are ``is_snapshot``.
    The file has no receive time, so ``ts_recv_ns`` equals ``ts_event_ns``. Raises
    :class:`DataValidationError` for missing columns, unparseable or empty cells, an unknown
    side or update type, or rows of more than one symbol.
    """
    file = Path(path)
    frame = read_csv_typed(file, DEPTH_COLUMNS)
    _first_bad(
        file, frame, ~pl.col("side").is_in(list(_SIDES)), "side", "side {value!r} is not b or a"
    )
    _first_bad(
        file,
        frame,
        ~pl.col("update_type").is_in(_UPDATE_TYPES),
        "update_type",
        "update_type {value!r} is not snap or set",
    )
    symbols = frame.get_column("symbol").unique(maintain_order=True)
    if symbols.len() > 1:
        _first_bad(
            file,
            frame,
            pl.col("symbol") != symbols[0],
            "symbol",
            f"file mixes symbols ({symbols[0]!r} and {{value!r}}); load one symbol per file",
        )
    ts = pl.col("timestamp") * epoch_factor(frame.get_column("timestamp"))
    ends = [pl.col(c) != pl.col(c).shift(-1) for c in ("last_update_id", "update_type")]
    return frame.select(
        ts.alias("ts_event_ns"),
        ts.alias("ts_recv_ns"),
        pl.col("side").replace_strict(_SIDES, return_dtype=pl.String),
        pl.col("price"),
        pl.col("qty").alias("size"),
        pl.col("last_update_id").alias("sequence"),
        (pl.col("update_type") == "snap").alias("is_snapshot"),
        pl.any_horizontal(ends).fill_null(True).alias("batch_end"),
    ).cast(dict(BOOK.items()))


def load_binance_klines(path: str | Path) -> pl.DataFrame:
    """Binance kline CSV (data.binance.vision, with or without header) as ``bars_<interval>`` rows.

    ``ts_event_ns`` is the open time; ``ts_recv_ns`` is when the bar is complete: close_time
    (the bar's last ms, or µs in newer files) plus one unit, i.e. the next bar's open time.
    OHLCV parsing and checks are ``load_bars``'s, which raises :class:`DataValidationError`.
    """
    file = Path(path)
    bars = load_bars(file, InstrumentId("klines", "binance"))
    source = csv_source(file)
    first = pl.read_csv(source, has_header=False, n_rows=1, infer_schema=False).row(0)[0]
    has_header = not str(first).strip().lstrip("-").isdigit()
    raw = pl.read_csv(csv_source(file), has_header=has_header, infer_schema=False)
    column = "close_time" if has_header else raw.columns[6] if raw.width > 6 else None
    if column is None or column not in raw.columns:
        raise DataValidationError(file, "no close_time column (7th column of a kline file)")
    close = raw.get_column(column).str.strip_chars().cast(pl.Int64, strict=False)
    if close.null_count() or close.len() != bars.ts_ns.size:
        line = int(close.is_null().arg_max() or 0) + (2 if has_header else 1)
        raise DataValidationError(
            file, "close_time is missing or not an integer", row=line, field="close_time"
        )
    factor = epoch_factor(close)
    recv = (close.to_numpy().astype(np.int64) + 1) * factor
    if np.any(recv <= bars.ts_ns):
        line = int(np.argmax(recv <= bars.ts_ns)) + (2 if has_header else 1)
        raise DataValidationError(
            file, "close_time is not after open_time", row=line, field="close_time"
        )
    return pl.DataFrame(
        {
            "ts_event_ns": bars.ts_ns,
            "ts_recv_ns": recv,
            "open": bars.open,
            "high": bars.high,
            "low": bars.low,
            "close": bars.close,
            "volume": bars.volume,
        },
        schema=BARS,
    )
