"""Turning stored rows into domain events, one Arrow batch at a time, merged across kinds.

Order of ``Catalog.events``: by ``ts_event_ns``; at equal times by kind (book, quotes, trades,
funding, then bars from the shortest interval up), then venue, stored symbol, write and row
order — the same order ``Catalog.query`` gives within one kind.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tradestack.core.events import (
    AggressorSide,
    Bar,
    BookSide,
    FundingRate,
    MarketEvent,
    OrderBookDelta,
    QuoteTick,
    TradeTick,
)
from tradestack.core.ids import InstrumentId
from tradestack.data.catalog.schema import bar_interval_ns, base_kind, kind_schema

_KIND_RANK = {"book": 0, "quotes": 1, "trades": 2, "funding": 3, "bars": 4}


class BookDeltaEvent(OrderBookDelta, frozen=True, gc=False):
    """An ``OrderBookDelta`` read from the catalog, with the flags needed to rebuild the book.

    ``is_snapshot``: the row belongs to a full snapshot; the first snapshot row of a message
    means "clear the book first". ``batch_end``: last row of one venue message; the book is
    consistent only after it. Code that only needs deltas can treat it as an ``OrderBookDelta``.
    """

    is_snapshot: bool = False
    batch_end: bool = False


CatalogEvent = MarketEvent | BookDeltaEvent


def kind_order(kinds: Iterable[str]) -> list[str]:
    """``kinds`` (deduplicated) in tie-break order."""

    def rank(kind: str) -> tuple[int, int]:
        base = base_kind(kind)
        return _KIND_RANK[base], bar_interval_ns(kind) if base == "bars" else 0

    return sorted(set(kinds), key=rank)


_SIDES = {side.value: side for side in BookSide}
_AGGRESSORS = {side.value: side for side in AggressorSide}
Columns = dict[str, list[Any]]


def _lookup(table: dict[str, Any], value: str, what: str) -> Any:
    try:
        return table[value]
    except KeyError:
        raise ValueError(f"stored {what} {value!r} is not one of {sorted(table)}") from None


def _book(ids: list[InstrumentId], c: Columns) -> list[CatalogEvent]:
    sides = {s: _lookup(_SIDES, s, "book side") for s in set(c["side"])}
    return [
        BookDeltaEvent(i, t, r, sides[s], p, q, n, snap, end)
        for i, t, r, s, p, q, n, snap, end in zip(
            ids,
            c["ts_event_ns"],
            c["ts_recv_ns"],
            c["side"],
            c["price"],
            c["size"],
            c["sequence"],
            c["is_snapshot"],
            c["batch_end"],
            strict=True,
        )
    ]


def _trades(ids: list[InstrumentId], c: Columns) -> list[CatalogEvent]:
    sides = {s: _lookup(_AGGRESSORS, s, "aggressor") for s in set(c["aggressor"])}
    return [
        TradeTick(i, t, r, p, q, sides[a], tid)
        for i, t, r, p, q, a, tid in zip(
            ids,
            c["ts_event_ns"],
            c["ts_recv_ns"],
            c["price"],
            c["size"],
            c["aggressor"],
            c["trade_id"],
            strict=True,
        )
    ]


def _quotes(ids: list[InstrumentId], c: Columns) -> list[CatalogEvent]:
    names = ("ts_event_ns", "ts_recv_ns", "bid_price", "bid_size", "ask_price", "ask_size")
    return [QuoteTick(i, *row) for i, *row in zip(ids, *(c[n] for n in names), strict=True)]


def _funding(ids: list[InstrumentId], c: Columns) -> list[CatalogEvent]:
    names = ("ts_event_ns", "ts_recv_ns", "rate", "next_funding_ns", "mark_price")
    return [FundingRate(i, *row) for i, *row in zip(ids, *(c[n] for n in names), strict=True)]


def _bars(ids: list[InstrumentId], c: Columns) -> list[CatalogEvent]:
    names = ("ts_event_ns", "ts_recv_ns", "open", "high", "low", "close", "volume")
    return [Bar(i, *row) for i, *row in zip(ids, *(c[n] for n in names), strict=True)]


_BUILDERS: dict[str, Callable[[list[InstrumentId], Columns], list[CatalogEvent]]] = {
    "book": _book,
    "trades": _trades,
    "quotes": _quotes,
    "funding": _funding,
    "bars": _bars,
}


def batch_events(
    kind: str, batches: Iterable[Any], symbols: dict[str, str]
) -> Iterator[CatalogEvent]:
    """Events of ``kind`` from Arrow batches (venue, stored symbol and the kind's columns)."""
    build = _BUILDERS[base_kind(kind)]
    names = list(kind_schema(kind))
    cache: dict[tuple[str, str], InstrumentId] = {}
    for batch in batches:
        venues = batch.column("venue").to_pylist()
        stored = batch.column("symbol").to_pylist()
        ids = []
        for key in zip(venues, stored, strict=True):
            iid = cache.get(key)
            if iid is None:
                iid = cache[key] = InstrumentId(symbols[key[1]], key[0])
            ids.append(iid)
        columns = {n: batch.column(n).to_pylist() for n in names}
        yield from build(ids, columns)


def _keyed(rank: int, stream: Iterator[CatalogEvent]) -> Iterator[tuple[int, int, CatalogEvent]]:
    for event in stream:
        yield event.ts_event_ns, rank, event


def merge_streams(streams: list[Iterator[CatalogEvent]]) -> Iterator[CatalogEvent]:
    """Merge per-kind streams (each sorted, listed in tie-break order) by ``ts_event_ns``."""
    if len(streams) == 1:
        yield from streams[0]
        return
    keyed = [_keyed(rank, stream) for rank, stream in enumerate(streams)]
    # Only one pending event per stream is compared at a time and ranks differ between
    # streams, so the comparison never reaches the events themselves.
    for _, _, event in heapq.merge(*keyed):
        yield event
