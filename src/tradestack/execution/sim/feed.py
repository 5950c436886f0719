"""The L2 event feed the simulated venue replays: one structured array, sorted by exchange time.

Each row is one level change, trade, book clear or funding update, with the exchange time and
the time we received it. Rows from separate streams (diff depth, trades, mark price) are merged
strictly by exchange timestamp; ties keep the order the frames were received in, then the
order inside the frame, so a replay never invents an ordering the venue did not send. The
strategy's view is replayed by receive time (``local_order``), which is where feed latency
comes from.

Kinds (``kind`` column):

``DEPTH``      set the level at ``px`` to ``qty`` on ``side`` (+1 bid, -1 ask); qty 0 deletes.
``TRADE``      a public trade of ``qty`` at ``px``; ``side`` is the aggressor (+1 buyer).
``CLEAR``      empty ``side`` (0 = both) before a snapshot is loaded.
``SNAPSHOT``   one level of a snapshot (same effect as ``DEPTH``).
``FUNDING``    perpetual funding: ``px`` mark price, ``qty`` rate, ``ival`` funding time (ns).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tradestack.core.events import AggressorSide, FundingRate, TradeTick
from tradestack.core.ids import InstrumentId
from tradestack.data.book.sync import BookUpdate, MalformedMessage, SyncState, parse_levels
from tradestack.data.errors import DataValidationError
from tradestack.data.recordings import FrameKind, read_recording
from tradestack.data.sources.binance import ccxt_book_body
from tradestack.data.venues.binance import (
    BinanceBookSync,
    event_type,
    parse_mark_price,
    parse_trade,
    unwrap,
)

L2_EVENT = np.dtype(
    [
        ("exch_ts", "<i8"),
        ("local_ts", "<i8"),
        ("kind", "u1"),
        ("side", "i1"),
        ("px", "<f8"),
        ("qty", "<f8"),
        ("ival", "<i8"),
    ]
)

DEPTH, TRADE, CLEAR, SNAPSHOT, FUNDING = 1, 2, 3, 4, 5
Row = tuple[int, int, int, int, float, float, int]
KIND_NAMES = {
    DEPTH: "depth",
    TRADE: "trade",
    CLEAR: "clear",
    SNAPSHOT: "snapshot",
    FUNDING: "funding",
}


@dataclass
class FeedStats:
    """What building a feed saw: frames by kind, how the book was kept, what was skipped."""

    frames: int = 0
    depth_messages: int = 0
    trades: int = 0
    funding_updates: int = 0
    snapshots: int = 0
    unsynced_diffs: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    gaps: int = 0
    malformed: int = 0
    clock_offset_ns: int = 0

    def skip(self, what: str) -> None:
        self.skipped[what] = self.skipped.get(what, 0) + 1


class L2Feed:
    """An instrument's merged L2 events plus the receive-time order of the same rows."""

    def __init__(self, instrument_id: InstrumentId, events: np.ndarray, stats: FeedStats) -> None:
        if events.dtype != L2_EVENT:
            raise ValueError(f"feed rows must have dtype L2_EVENT, got {events.dtype}")
        order = np.lexsort((np.arange(len(events)), events["exch_ts"]))
        self.events = np.ascontiguousarray(events[order])
        self.instrument_id = instrument_id
        self.stats = stats
        rows = np.arange(len(self.events), dtype=np.int64)
        self.local_order = np.lexsort((rows, self.events["local_ts"])).astype(np.int64)

    def __len__(self) -> int:
        return len(self.events)

    @property
    def start_ns(self) -> int:
        return int(self.events["exch_ts"][0]) if len(self.events) else 0

    @property
    def end_ns(self) -> int:
        if not len(self.events):
            return 0
        return int(max(self.events["exch_ts"][-1], self.events["local_ts"].max()))

    def price_range(self) -> tuple[float, float]:
        """Lowest and highest price of any level or trade (funding marks excluded)."""
        book = self.events[self.events["kind"] != FUNDING]
        if not len(book):
            raise ValueError(f"the feed of {self.instrument_id} has no book or trade rows")
        px = book["px"][(book["kind"] != CLEAR)]
        return float(px.min()), float(px.max())

    def counts(self) -> dict[str, int]:
        kinds, n = np.unique(self.events["kind"], return_counts=True)
        return {KIND_NAMES.get(int(k), str(k)): int(c) for k, c in zip(kinds, n, strict=True)}

    @classmethod
    def from_rows(
        cls, instrument_id: InstrumentId, rows: Iterable[Row], stats: FeedStats | None = None
    ) -> L2Feed:
        """Build from ``(exch_ts, local_ts, kind, side, px, qty, ival)`` tuples."""
        return cls(instrument_id, np.array(list(rows), dtype=L2_EVENT), stats or FeedStats())

    def looped(self, n_events: int) -> L2Feed:
        """This feed from its first snapshot on, repeated back to back (times shifted) until it
        has ``n_events`` rows; each copy resets the book. Used to build benchmark workloads."""
        clears = np.flatnonzero(self.events["kind"] == CLEAR)
        if not len(clears):
            raise ValueError("only a feed with a snapshot can be looped")
        base = self.events[clears[0] :]
        copies = -(-n_events // len(base))
        start = int(base["exch_ts"][0])
        span = int(max(base["exch_ts"].max(), base["local_ts"].max())) - start + 1_000_000
        parts = []
        for k in range(copies):
            part = base.copy()
            part["exch_ts"] += k * span
            part["local_ts"] += k * span
            parts.append(part)
        return L2Feed(self.instrument_id, np.concatenate(parts)[:n_events], self.stats)


def event_rows(event: BookUpdate | TradeTick | FundingRate) -> list[Row]:
    """The feed rows of one normalized live event (book update, trade, funding rate), as a
    recording of it would give."""
    if isinstance(event, BookUpdate):
        return list(_level_rows(event))
    if isinstance(event, TradeTick):
        return [_trade_row(event)]
    return [_funding_row(event)]


def _level_rows(update: BookUpdate) -> Iterator[Row]:
    exch, local = update.ts_event_ns, update.ts_recv_ns
    if update.is_snapshot:
        yield (exch, local, CLEAR, 0, 0.0, 0.0, 0)
    kind = SNAPSHOT if update.is_snapshot else DEPTH
    for is_bid, price, size in update.changes:
        yield (exch, local, kind, 1 if is_bid else -1, price, size, 0)


def _trade_row(trade: TradeTick) -> Row:
    side = 1 if trade.aggressor is AggressorSide.BUYER else -1
    return (trade.ts_event_ns, trade.ts_recv_ns, TRADE, side, trade.price, trade.size, 0)


def _funding_row(rate: FundingRate) -> Row:
    return (
        rate.ts_event_ns,
        rate.ts_recv_ns,
        FUNDING,
        0,
        rate.mark_price,
        rate.rate_fraction,
        rate.next_funding_ns,
    )


def binance_feed(
    path: str | Path,
    instrument_id: InstrumentId,
    *,
    futures: bool,
    require_snapshot: bool = True,
) -> L2Feed:
    """Build a feed from a recorded Binance session (diff depth, trades, mark price).

    The book is kept by :class:`~tradestack.data.venues.binance.BinanceBookSync`: diffs are
    joined to the REST snapshot by ``U/u/pu`` and a gap waits for the next snapshot. A
    recording without any snapshot can still be replayed with ``require_snapshot=False``: its
    diffs then build a partial book from nothing (counted in ``stats.unsynced_diffs``).
    ``bookTicker`` frames are not used: the book and trades already say everything they do.
    """
    path = Path(path)
    stats = FeedStats()
    sync = BinanceBookSync(instrument_id, futures=futures)
    rows: list[Row] = []
    symbol = instrument_id.symbol.replace("/", "").replace("-", "").upper()
    unsynced = not require_snapshot
    for frame in read_recording(path):
        stats.frames += 1
        try:
            if frame.kind is FrameKind.REST or frame.kind is FrameKind.SNAPSHOT:
                body = json.loads(frame.payload)
                if frame.kind is FrameKind.SNAPSHOT:  # our recorder keeps ccxt's parsed book
                    body = ccxt_book_body(body)
                if "lastUpdateId" not in body:
                    stats.skip("rest")
                    continue
                unsynced = False
                stats.snapshots += 1
                for update in sync.on_snapshot(body, frame.ts_ns):
                    rows.extend(_level_rows(update))
                continue
            if frame.kind is not FrameKind.RECV:
                continue
            stream, payload = unwrap(json.loads(frame.payload))
            if not isinstance(payload, dict):
                stats.skip("non-object")
                continue
            if str(payload.get("s", symbol)).upper() != symbol:
                stats.skip("other symbol")
                continue
            kind = event_type(stream, payload)
            if kind == "depthUpdate":
                stats.depth_messages += 1
                if unsynced and sync.state is SyncState.AWAITING_SNAPSHOT:
                    stats.unsynced_diffs += 1
                    rows.extend(_unsynced_rows(payload, frame.ts_ns))
                    sync.on_message(payload, frame.ts_ns)  # buffered for a later snapshot
                    continue
                applied = sync.on_message(payload, frame.ts_ns)
                if applied is not None:
                    rows.extend(_level_rows(applied))
            elif kind in ("trade", "aggTrade"):
                stats.trades += 1
                rows.append(_trade_row(parse_trade(payload, instrument_id, frame.ts_ns)))
            elif kind == "markPriceUpdate":
                stats.funding_updates += 1
                rows.append(_funding_row(parse_mark_price(payload, instrument_id, frame.ts_ns)))
            else:
                stats.skip(kind or "unknown")
        except (MalformedMessage, KeyError, TypeError, ValueError) as exc:
            stats.malformed += 1
            if stats.malformed > 100:
                raise DataValidationError(path, f"too many malformed frames ({exc})") from exc
    stats.gaps = sync.stats.gaps
    if require_snapshot and stats.depth_messages and not stats.snapshots:
        raise DataValidationError(
            path,
            f"{stats.depth_messages} depth diffs but no REST depth snapshot to join them to; "
            "pass require_snapshot=False to build a partial book from the diffs alone",
        )
    if not rows:
        raise DataValidationError(path, f"no {instrument_id.symbol} book or trade events found")
    events = np.array(rows, dtype=L2_EVENT)
    stats.clock_offset_ns = align_receive_clock(events)
    return L2Feed(instrument_id, events, stats)


def align_receive_clock(events: np.ndarray, min_latency_ns: int = 0) -> int:
    """Shift receive times so no event is received before the venue stamped it.

    A recorder's clock can run behind the venue's (the Binance recordings in the shared data
    receive frames ~1.27 s "before" they were sent). Latency differences between events are
    kept; only the constant skew goes. Returns the shift applied (0 when none was needed).
    """
    if not len(events):
        return 0
    skew = int((events["local_ts"] - events["exch_ts"]).min())
    if skew >= min_latency_ns:
        return 0
    shift = min_latency_ns - skew
    events["local_ts"] += shift
    return shift


def _unsynced_rows(payload: dict[str, Any], ts_recv_ns: int) -> Iterator[Row]:
    exch = int(payload.get("T") or payload.get("E") or 0) * 1_000_000
    for side, key in ((1, "b"), (-1, "a")):
        for price, size in parse_levels(payload[key], key):
            yield (exch, ts_recv_ns, DEPTH, side, price, size, 0)
