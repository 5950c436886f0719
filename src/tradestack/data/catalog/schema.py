"""Column contracts of the catalog's kinds, defined once, and the check that frames meet them.

Every kind stores ``ts_event_ns`` (exchange time) and ``ts_recv_ns`` (local receive time) as
Int64 UTC nanoseconds. ``bars_<interval>`` (``bars_1m``, ``bars_1d``, ...) all share one schema;
the interval is part of the kind so bars of different lengths never mix in one partition.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import polars as pl

BOOK_SIDES = ("bid", "ask")
AGGRESSORS = ("buyer", "seller", "unknown")

_TIMES: dict[str, pl.DataType] = {"ts_event_ns": pl.Int64(), "ts_recv_ns": pl.Int64()}

BOOK = pl.Schema(
    {
        **_TIMES,
        "side": pl.String(),
        "price": pl.Float64(),
        "size": pl.Float64(),
        "sequence": pl.Int64(),
        "is_snapshot": pl.Boolean(),
        "batch_end": pl.Boolean(),
    }
)
TRADES = pl.Schema(
    {
        **_TIMES,
        "price": pl.Float64(),
        "size": pl.Float64(),
        "aggressor": pl.String(),
        "trade_id": pl.String(),
    }
)
QUOTES = pl.Schema(
    {
        **_TIMES,
        "bid_price": pl.Float64(),
        "bid_size": pl.Float64(),
        "ask_price": pl.Float64(),
        "ask_size": pl.Float64(),
    }
)
FUNDING = pl.Schema(
    {**_TIMES, "rate": pl.Float64(), "next_funding_ns": pl.Int64(), "mark_price": pl.Float64()}
)
BARS = pl.Schema(
    {
        **_TIMES,
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume": pl.Float64(),
    }
)

KINDS: Mapping[str, pl.Schema] = {
    "book": BOOK,
    "trades": TRADES,
    "quotes": QUOTES,
    "funding": FUNDING,
    "bars": BARS,
}
"""Schema of each kind; ``bars`` stands for every ``bars_<interval>`` kind."""

# Columns the catalog adds to every stored part; never part of a kind's schema.
WRITE_NS = "_write_ns"
PART = "_part"

_UNIT_NS = {"s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9, "d": 86400 * 10**9}
_UNIT_NS["w"] = 7 * _UNIT_NS["d"]
_BARS_KIND = re.compile(r"bars_([1-9]\d*)([smhdw])")


class SchemaError(ValueError):
    """A frame does not match its kind's schema, or the kind itself is unknown."""


def base_kind(kind: str) -> str:
    """``bars`` for any ``bars_<interval>`` kind, else ``kind`` itself after checking it exists."""
    if kind in KINDS and kind != "bars":
        return kind
    if _BARS_KIND.fullmatch(kind):
        return "bars"
    raise SchemaError(
        f"unknown kind {kind!r}; use one of book, trades, quotes, funding or bars_<n><unit> "
        "with unit s, m, h, d or w (e.g. bars_1m, bars_1d)"
    )


def kind_schema(kind: str) -> pl.Schema:
    """The column schema of ``kind`` (``bars_1m`` and every other bar kind share ``BARS``)."""
    return KINDS[base_kind(kind)]


def bar_interval_ns(kind: str) -> int:
    """The bar length of a ``bars_<interval>`` kind in nanoseconds."""
    match = _BARS_KIND.fullmatch(kind)
    if match is None:
        raise SchemaError(f"kind {kind!r} is not a bar kind like bars_1m")
    return int(match.group(1)) * _UNIT_NS[match.group(2)]


def empty_frame(kind: str) -> pl.DataFrame:
    """A frame with no rows and ``kind``'s columns."""
    return pl.DataFrame(schema=kind_schema(kind))


def conform(kind: str, frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with exactly ``kind``'s columns in schema order; raises :class:`SchemaError`.

    Dtypes must match exactly (no silent casts: Int32 timestamps or Datetime columns are
    errors), extra columns are refused so nothing is dropped unnoticed, and nulls are refused
    because every field of every kind is required (use 0 / "" for "none").
    """
    schema = kind_schema(kind)
    names = set(frame.columns)
    missing = [c for c in schema if c not in names]
    extra = [c for c in frame.columns if c not in schema]
    problems = []
    if missing:
        problems.append("missing column" + ("s " if len(missing) > 1 else " ") + ", ".join(missing))
    if extra:
        problems.append("unexpected column" + ("s " if len(extra) > 1 else " ") + ", ".join(extra))
    wrong = [
        f"{name} is {frame.schema[name]} (expected {dtype})"
        for name, dtype in schema.items()
        if name in names and frame.schema[name] != dtype
    ]
    problems += wrong
    if problems:
        raise SchemaError(f"{kind} frame does not match its schema: " + "; ".join(problems))
    out = frame.select(list(schema))
    nulls = {name: n for name, n in zip(out.columns, out.null_count().row(0), strict=True) if n}
    if nulls:
        name = next(iter(nulls))
        first = int(out.with_row_index("_i").filter(pl.col(name).is_null())["_i"][0])
        listed = ", ".join(f"{c} ({n})" for c, n in nulls.items())
        raise SchemaError(
            f"{kind} frame has nulls in {listed}; first at row {first} of column {name!r}"
        )
    return out
