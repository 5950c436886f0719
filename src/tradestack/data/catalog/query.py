"""Reading catalog tables with DuckDB: partition pruning, time filter, deterministic order.

Pruning happens before DuckDB sees anything: the part list is built from the folders of the
requested (venue, symbol) pairs and the ``date=`` folders overlapping the time range only, and
DuckDB reads exactly that list (``read_parquet([...], hive_partitioning=true)``), so parts of
other series or days are never opened. Rows come back sorted by the time column, then venue,
then stored symbol, then write (``_write_ns``, then ``_part``), then row within the part: rows
with equal timestamps keep the order in which they were written.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from tradestack.core.ids import InstrumentId
from tradestack.data.catalog.paths import (
    check_venue,
    day_range,
    encode_symbol,
    list_parts,
    list_scopes,
    partition_dir,
)
from tradestack.data.catalog.schema import PART, WRITE_NS

# DuckDB numbers each file's rows itself (``file_row_number``), so parts need not store it.
ORDER_COLUMNS = (WRITE_NS, PART, "file_row_number")
_HIVE_TYPES = "{'venue': VARCHAR, 'kind': VARCHAR, 'symbol': VARCHAR, 'date': VARCHAR}"


def resolve_series(
    table: Path,
    kind: str,
    instruments: InstrumentId | Iterable[InstrumentId] | None,
    venue: str | None,
    symbols: str | Iterable[str] | None,
) -> list[tuple[str, str]]:
    """The (venue, symbol) pairs a query names; every stored one of ``kind`` when none are."""
    if instruments is not None:
        if venue is not None or symbols is not None:
            raise ValueError("pass either instruments= or venue=/symbols=, not both")
        ids = [instruments] if isinstance(instruments, InstrumentId) else list(instruments)
        for iid in ids:
            if not isinstance(iid, InstrumentId):
                raise TypeError(f"instruments must be InstrumentId values, got {iid!r}")
        return sorted({(check_venue(i.venue), i.symbol) for i in ids})
    wanted = [symbols] if isinstance(symbols, str) else symbols
    if venue is not None:
        check_venue(venue)
        if wanted is not None:
            return sorted({(venue, s) for s in wanted})
    stored = {(v, s) for v, _, s, _ in list_scopes(table, kind) if venue in (None, v)}
    if wanted is not None:
        keep = set(wanted)
        stored = {(v, s) for v, s in stored if s in keep}
    return sorted(stored)


def collect_parts(
    table: Path,
    kind: str,
    series: Sequence[tuple[str, str]],
    start_ns: int | None,
    end_ns: int | None,
) -> list[Path]:
    """Part files of ``series`` whose day can hold a row in ``[start_ns, end_ns)``."""
    first, last = day_range(start_ns, end_ns)
    parts: list[Path] = []
    for venue, symbol in series:
        parts += list_parts(partition_dir(table, venue, kind, symbol), first, last)
    return parts


def symbol_map(series: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Stored (encoded) symbol → symbol, for the series of a query."""
    return {encode_symbol(symbol): symbol for _, symbol in series}


def _relation(
    con: duckdb.DuckDBPyConnection,
    parts: Sequence[Path],
    columns: Sequence[str],
    ts_column: str,
    start_ns: int | None,
    end_ns: int | None,
    extra: Sequence[str],
) -> Any:
    where = []
    params: dict[str, Any] = {"files": [str(p) for p in parts]}
    if start_ns is not None:
        where.append(f'"{ts_column}" >= $start')
        params["start"] = start_ns
    if end_ns is not None:
        where.append(f'"{ts_column}" < $end')
        params["end"] = end_ns
    selected = ", ".join(f'"{c}"' for c in ("venue", "symbol", *columns, *extra))
    # Venue and symbol are constant within one folder: sort by them only across series.
    folders = {p.parent.parent for p in parts}
    order = [ts_column, *(("venue", "symbol") if len(folders) > 1 else ()), *ORDER_COLUMNS]
    sql = (
        f"SELECT {selected} FROM read_parquet($files, hive_partitioning = true, "
        f"hive_types = {_HIVE_TYPES}, file_row_number = true)"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + " ORDER BY "
        + ", ".join(f'"{c}"' for c in order)
    )
    return con.sql(sql, params=params)


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    return con


def read_frame(
    parts: Sequence[Path],
    schema: pl.Schema,
    symbols: dict[str, str],
    *,
    ts_column: str,
    start_ns: int | None,
    end_ns: int | None,
) -> pl.DataFrame:
    """Rows of ``parts`` in range as one frame: venue, symbol, then ``schema``'s columns."""
    out_schema = pl.Schema({"venue": pl.String(), "symbol": pl.String(), **schema})
    if not parts:
        return pl.DataFrame(schema=out_schema)
    with _connect() as con:
        rel = _relation(con, parts, list(schema), ts_column, start_ns, end_ns, ())
        frame: pl.DataFrame = rel.pl()
    return frame.with_columns(pl.col("symbol").replace_strict(symbols)).cast(
        dict(out_schema.items())
    )


def read_batches(
    parts: Sequence[Path],
    columns: Sequence[str],
    *,
    ts_column: str,
    start_ns: int | None,
    end_ns: int | None,
    batch_size: int,
) -> Iterator[Any]:
    """Sorted rows of ``parts`` as Arrow record batches (venue, symbol, columns, order keys).

    DuckDB sorts out of core and hands over one batch at a time, so only one batch of each
    stream is held in Python at once. The connection closes when the iterator is closed.
    """
    if not parts:
        return
    con = _connect()
    try:
        rel = _relation(con, parts, columns, ts_column, start_ns, end_ns, ORDER_COLUMNS)
        yield from rel.to_arrow_reader(batch_size)
    finally:
        con.close()
