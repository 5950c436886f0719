"""The market-data catalog: append-only, hive-partitioned Parquet read with DuckDB.

``Catalog(root).write(venue, kind, symbol, frame)`` stores rows of one kind (``book``,
``trades``, ``quotes``, ``funding``, ``bars_<interval>``; schemas in ``schema``);
``query`` returns a polars frame, ``events`` streams domain events merged in time order.
"""

from tradestack.data.catalog.events import BookDeltaEvent, CatalogEvent
from tradestack.data.catalog.paths import decode_symbol, encode_symbol
from tradestack.data.catalog.schema import (
    BARS,
    BOOK,
    FUNDING,
    KINDS,
    QUOTES,
    TRADES,
    SchemaError,
    bar_interval_ns,
    conform,
    empty_frame,
    kind_schema,
)
from tradestack.data.catalog.store import Catalog, WriteResult

__all__ = [
    "BARS",
    "BOOK",
    "FUNDING",
    "KINDS",
    "QUOTES",
    "TRADES",
    "BookDeltaEvent",
    "Catalog",
    "CatalogEvent",
    "SchemaError",
    "WriteResult",
    "bar_interval_ns",
    "conform",
    "decode_symbol",
    "empty_frame",
    "encode_symbol",
    "kind_schema",
]
