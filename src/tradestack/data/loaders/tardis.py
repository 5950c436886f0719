"""Tardis.dev ``book_snapshot_N`` CSVs (``book_snapshot_25``, ``_5``, ...) to ``book`` rows."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import polars as pl

from tradestack.data.catalog.schema import BOOK
from tradestack.data.errors import DataValidationError
from tradestack.data.loaders.binance_files import csv_source, read_csv_typed

_LEVEL = re.compile(r"(asks|bids)\[(\d+)\]\.(price|amount)")
_US_TO_NS = 1000


def _depth(path: Path, header: list[str]) -> int:
    """Number of levels per side, checking every price/amount column of each level exists."""
    levels = {int(m.group(2)) for m in map(_LEVEL.fullmatch, header) if m}
    if not levels:
        raise DataValidationError(
            path, "no asks[i]/bids[i] level columns; not a book_snapshot file"
        )
    depth = max(levels) + 1
    expected = [
        f"{side}[{i}].{field}"
        for i in range(depth)
        for side in ("asks", "bids")
        for field in ("price", "amount")
    ]
    missing = [c for c in expected if c not in header]
    if missing:
        raise DataValidationError(path, f"missing level column {missing[0]}", field=missing[0])
    return depth


def load_tardis_book_snapshot(path: str | Path) -> pl.DataFrame:
    """Each CSV row (one full snapshot of N levels per side) as ``book`` rows.

    Timestamps are µs: ``timestamp`` (exchange) → ``ts_event_ns``, ``local_timestamp``
    (arrival) → ``ts_recv_ns``. A snapshot's rows are its bids best-first, then its asks
    best-first, all ``is_snapshot``, the last one ``batch_end``; empty levels (a thin book) are
    skipped, and a snapshot with no level at all yields no rows. ``sequence`` is 0 (Tardis
    snapshots carry no update id). Raises :class:`DataValidationError` for a missing column,
    an unparseable cell, a level with a price but no amount (or the reverse), or rows of more
    than one symbol.
    """
    file = Path(path)
    try:
        header = pl.read_csv(csv_source(file), n_rows=0).columns
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise DataValidationError(file, f"cannot read CSV: {exc}") from exc
    depth = _depth(file, header)
    sides = [(side, i) for side in ("bids", "asks") for i in range(depth)]
    dtypes: dict[str, pl.DataType] = {
        "symbol": pl.String(),
        "timestamp": pl.Int64(),
        "local_timestamp": pl.Int64(),
    }
    for side, i in sides:
        dtypes[f"{side}[{i}].price"] = pl.Float64()
        dtypes[f"{side}[{i}].amount"] = pl.Float64()
    levels = [c for c in dtypes if c.startswith(("asks", "bids"))]
    frame = read_csv_typed(file, dtypes, optional=levels)
    symbols = frame.get_column("symbol").unique(maintain_order=True)
    if symbols.len() > 1:
        line = frame.filter(pl.col("symbol") != symbols[0])["__line__"][0]
        raise DataValidationError(
            file,
            f"file mixes symbols {symbols[0]!r} and others; load one symbol per file",
            row=line,
            field="symbol",
        )
    prices = frame.select(f"{s}[{i}].price" for s, i in sides).to_numpy()
    sizes = frame.select(f"{s}[{i}].amount" for s, i in sides).to_numpy()
    half = np.isnan(prices) != np.isnan(sizes)
    if half.any():
        row, col = np.argwhere(half)[0]
        side, i = sides[col]
        field = f"{side}[{i}].{'amount' if np.isnan(sizes[row, col]) else 'price'}"
        raise DataValidationError(
            file,
            f"level {side}[{i}] has a price or an amount but not both",
            row=int(frame["__line__"][int(row)]),
            field=field,
        )
    present = ~np.isnan(prices)
    n, width = prices.shape
    snapshot = np.repeat(np.arange(n), width)[present.ravel()]
    keep = present.ravel()
    batch_end = np.ones(snapshot.size, dtype=bool)
    batch_end[:-1] = snapshot[1:] != snapshot[:-1]
    side_names = np.array(["bid" if s == "bids" else "ask" for s, _ in sides])
    ts = frame.get_column("timestamp").to_numpy() * _US_TO_NS
    recv = frame.get_column("local_timestamp").to_numpy() * _US_TO_NS
    return pl.DataFrame(
        {
            "ts_event_ns": ts[snapshot],
            "ts_recv_ns": recv[snapshot],
            "side": np.tile(side_names, n)[keep],
            "price": prices.ravel()[keep],
            "size": sizes.ravel()[keep],
            "sequence": np.zeros(snapshot.size, dtype=np.int64),
            "is_snapshot": np.ones(snapshot.size, dtype=bool),
            "batch_end": batch_end,
        },
        schema=BOOK,
    )
