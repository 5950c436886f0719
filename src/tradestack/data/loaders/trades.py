"""Trade prints from vendor files (Parquet or CSV) to ``trades`` rows.

Understands Binance trade dumps (Parquet with timestamp, trade_id, price, quantity,
buyer_maker; data.binance.vision CSVs with or without header: id, price, qty, quote_qty, time,
is_buyer_maker, ...) and Tardis ``trades`` CSVs (timestamp and local_timestamp in µs, id,
side buy/sell, price, amount).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl

from tradestack.data.catalog.schema import TRADES
from tradestack.data.errors import DataValidationError
from tradestack.data.loaders.binance_files import csv_source, epoch_factor

# Canonical field → accepted column names (case-insensitive), most specific first.
ALIASES = {
    "time": ("timestamp", "time", "transact_time", "ts"),
    "recv_time": ("local_timestamp",),
    "trade_id": ("trade_id", "id", "tradeid"),
    "price": ("price",),
    "size": ("quantity", "qty", "amount", "size"),
    "buyer_maker": ("buyer_maker", "is_buyer_maker", "isbuyermaker"),
    "side": ("side",),
}
BINANCE_TRADE_COLUMNS = ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker")
_TRUE = ("true", "1", "t", "yes")
_FALSE = ("false", "0", "f", "no")
_SIDE = {"buy": "buyer", "sell": "seller", "unknown": "unknown", "": "unknown"}


def _read(file: Path) -> tuple[pl.DataFrame, int]:
    """The file's frame and the line/record number of its first row."""
    name = file.name.lower()
    try:
        if name.endswith((".parquet", ".pq")):
            return pl.read_parquet(file), 1
        source = csv_source(file)
        first = pl.read_csv(source, has_header=False, n_rows=1, infer_schema=False).row(0)[0]
        if str(first).strip().isdigit():  # headerless data.binance.vision dump
            frame = pl.read_csv(csv_source(file), has_header=False, infer_schema=False)
            names = BINANCE_TRADE_COLUMNS[: frame.width] + tuple(
                f"extra_{i}" for i in range(frame.width - len(BINANCE_TRADE_COLUMNS))
            )
            return frame.rename(dict(zip(frame.columns, names, strict=True))), 1
        return pl.read_csv(csv_source(file), infer_schema=False), 2
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataValidationError(file, f"cannot read trades file: {exc}") from exc


def _columns(file: Path, frame: pl.DataFrame) -> dict[str, str]:
    by_lower = {c.strip().lower(): c for c in frame.columns}
    found = {
        field: next((by_lower[n] for n in names if n in by_lower), None)
        for field, names in ALIASES.items()
    }
    required = ["time", "price", "size"]
    missing = [f for f in required if found[f] is None]
    if found["buyer_maker"] is None and found["side"] is None:
        missing.append("buyer_maker or side")
    if missing:
        raise DataValidationError(
            file,
            f"missing {', '.join(missing)} column(s); found columns: {', '.join(frame.columns)}",
            field=missing[0],
        )
    return {field: col for field, col in found.items() if col is not None}


def _bad(
    file: Path, frame: pl.DataFrame, mask: pl.Series, field: str, what: str, first: int
) -> None:
    if mask.any():
        i = int(mask.arg_max() or 0)
        value = frame.get_column(field)[i] if field in frame.columns else None
        raise DataValidationError(
            file, what.format(value=value), row=i + first, field=field, value=value
        )


def _epoch_ns(file: Path, frame: pl.DataFrame, column: str, first: int) -> pl.Series:
    raw = frame.get_column(column)
    if isinstance(raw.dtype, pl.Datetime):
        ns = raw.dt.cast_time_unit("ns").to_physical()
        _bad(file, frame, ns.is_null(), column, "missing time", first)
        return ns
    ints = raw.str.strip_chars().cast(pl.Int64, strict=False) if raw.dtype == pl.String else raw
    if not ints.dtype.is_integer():
        raise DataValidationError(
            file, f"{column} is {raw.dtype}, expected epoch integers or datetimes", field=column
        )
    _bad(file, frame, ints.is_null(), column, "cannot parse {value!r} as an epoch time", first)
    return ints.cast(pl.Int64) * epoch_factor(ints)


def _number(file: Path, frame: pl.DataFrame, column: str, first: int) -> pl.Series:
    raw = frame.get_column(column)
    values = raw.str.strip_chars().cast(pl.Float64, strict=False) if raw.dtype == pl.String else raw
    if not values.dtype.is_numeric():
        raise DataValidationError(file, f"{column} is {raw.dtype}, expected numbers", field=column)
    _bad(file, frame, values.is_null(), column, "cannot parse {value!r} as a number", first)
    return values.cast(pl.Float64)


def _aggressor(file: Path, frame: pl.DataFrame, cols: dict[str, str], first: int) -> pl.Series:
    if "buyer_maker" in cols:
        column = cols["buyer_maker"]
        text = frame.get_column(column).cast(pl.String).str.strip_chars().str.to_lowercase()
        known = text.is_in(_TRUE + _FALSE).fill_null(False)
        _bad(file, frame, ~known, column, "buyer_maker {value!r} is not true or false", first)
        # The maker bought, so the taker (the aggressor) sold.
        return pl.Series(np.where(text.is_in(_TRUE).to_numpy(), "seller", "buyer"))
    text = frame.get_column(cols["side"]).cast(pl.String).fill_null("").str.to_lowercase()
    _bad(
        file, frame, ~text.is_in(list(_SIDE)), cols["side"], "side {value!r} is not buy/sell", first
    )
    return text.replace_strict(_SIDE, return_dtype=pl.String)


def load_trades(path: str | Path) -> pl.DataFrame:
    """A trades file (Parquet or CSV, see the module docstring) as ``trades`` rows, file order.

    ``buyer_maker`` true means the seller took liquidity (aggressor ``seller``); a ``side``
    column gives the aggressor directly. Times may be datetimes or integer epochs (unit told
    by magnitude); ``ts_recv_ns`` is ``local_timestamp`` when present, else ``ts_event_ns``.
    ``trade_id`` is kept as text ("" when the file has none). Raises
    :class:`DataValidationError` for a missing column or an unparseable value, naming the row
    (CSV line, or 1-based Parquet record).
    """
    file = Path(path)
    frame, first = _read(file)
    if frame.height == 0:
        raise DataValidationError(file, "file has no trades")
    cols = _columns(file, frame)
    ts = _epoch_ns(file, frame, cols["time"], first)
    recv = _epoch_ns(file, frame, cols["recv_time"], first) if "recv_time" in cols else ts
    trade_ids = (
        frame.get_column(cols["trade_id"]).cast(pl.String).fill_null("")
        if "trade_id" in cols
        else pl.repeat("", frame.height, dtype=pl.String, eager=True)
    )
    return pl.DataFrame(
        {
            "ts_event_ns": ts,
            "ts_recv_ns": recv,
            "price": _number(file, frame, cols["price"], first),
            "size": _number(file, frame, cols["size"], first),
            "aggressor": _aggressor(file, frame, cols, first),
            "trade_id": trade_ids,
        },
        schema=TRADES,
    )
