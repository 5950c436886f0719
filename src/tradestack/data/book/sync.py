"""The common shape of venue book synchronisation: buffer, snapshot, apply, detect gaps, resync.

A :class:`BookSync` does no I/O. It is fed parsed venue messages (``on_message``) and snapshots
(``on_snapshot``) and answers, for each one, with a :class:`BookUpdate` when the book changed
and is publishable, or ``None``. When it detects a gap (or a checksum mismatch, or a crossed
book) it marks itself ``STALE`` and sets ``resync_requested``; the source that owns it then
fetches a new snapshot (REST) or re-subscribes, depending on the venue. While not ``LIVE`` a
sync never publishes, so a consumer never sees a book that is known to be wrong.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable, MutableSequence, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, TypeVar

from tradestack.core.ids import InstrumentId
from tradestack.data.book.l2book import L2Book

Level = tuple[float, float]
T = TypeVar("T")


class SyncState(StrEnum):
    """Where a book stands with respect to the venue's stream."""

    AWAITING_SNAPSHOT = "awaiting_snapshot"
    LIVE = "live"
    STALE = "stale"


class MalformedMessage(ValueError):
    """A venue message could not be parsed; it is counted and dropped, the book is untouched."""


@dataclass
class SyncStats:
    """Counters a source exports as metrics and tests assert on."""

    messages: int = 0
    applied: int = 0
    buffered: int = 0
    old_dropped: int = 0
    gaps: int = 0
    resyncs: int = 0
    malformed: int = 0
    crossed: int = 0
    checksum_failures: int = 0
    gap_reasons: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class BookUpdate:
    """The levels one venue message set, after it was applied to a live book.

    ``changes`` holds ``(is_bid, price, size)`` in message order (size 0 = removed). A snapshot
    update has ``is_snapshot=True`` and lists every level of the new book.
    """

    instrument_id: InstrumentId
    ts_event_ns: int
    ts_recv_ns: int
    sequence: int
    is_snapshot: bool
    changes: tuple[tuple[bool, float, float], ...]


def snapshot_first(updates: list[BookUpdate]) -> list[BookUpdate]:
    """Keep a snapshot from sorting after the updates joined to it (clock skew between a REST
    server's time and the stream's): it takes the first joined update's time if that is earlier.
    """
    if len(updates) > 1 and updates[0].is_snapshot:
        first = updates[1].ts_event_ns
        if first < updates[0].ts_event_ns:
            updates[0] = dataclasses.replace(updates[0], ts_event_ns=first)
    return updates


def parse_levels(raw: Any, what: str) -> list[Level]:
    """``[[price, size, ...], ...]`` of strings or numbers → ``[(price, size)]``; raises on junk."""
    if not isinstance(raw, list):
        raise MalformedMessage(f"{what}: expected a list of levels, got {type(raw).__name__}")
    out: list[Level] = []
    try:
        for level in raw:
            price = float(level[0])
            size = float(level[1])
            if not (price == price and size == size) or price < 0.0 or size < 0.0:
                raise MalformedMessage(f"{what}: bad level {level!r}")
            out.append((price, size))
    except (TypeError, ValueError, IndexError) as exc:
        raise MalformedMessage(f"{what}: bad level ({exc})") from exc
    return out


class BookSync(ABC):
    """Venue rules that keep one :class:`L2Book` equal to the exchange's book."""

    def __init__(self, instrument_id: InstrumentId, *, max_buffer: int = 10_000) -> None:
        self.instrument_id = instrument_id
        self.book = L2Book(instrument_id)
        self.state = SyncState.AWAITING_SNAPSHOT
        self.stats = SyncStats()
        self.resync_requested = False
        self.max_buffer = max_buffer

    @property
    def is_live(self) -> bool:
        return self.state is SyncState.LIVE

    def mark_stale(self, reason: str) -> None:
        """A gap or an inconsistency: stop publishing and ask the owner for a resync."""
        if self.state is not SyncState.STALE:
            self.stats.gaps += 1
            self.stats.gap_reasons.append(reason)
        self.state = SyncState.STALE
        self.resync_requested = True

    def reset(self) -> None:
        """Forget the book (after a reconnect): wait for a fresh snapshot."""
        self.book.clear()
        self.state = SyncState.AWAITING_SNAPSHOT
        self.resync_requested = False

    def disconnected(self, reason: str) -> None:
        """The connection carrying this book was lost: forget it, count the gap, and wait for
        the snapshot the re-subscription brings (no REST resync: its diffs could not arrive)."""
        self.reset()
        self.state = SyncState.STALE
        self.stats.gaps += 1
        self.stats.gap_reasons.append(reason)

    def _apply_levels(
        self, bids: list[Level], asks: list[Level]
    ) -> tuple[tuple[bool, float, float], ...]:
        book = self.book
        for price, size in bids:
            book.apply(True, price, size)
        for price, size in asks:
            book.apply(False, price, size)
        return (*((True, p, s) for p, s in bids), *((False, p, s) for p, s in asks))

    def _publish(
        self,
        changes: tuple[tuple[bool, float, float], ...],
        *,
        ts_event_ns: int,
        ts_recv_ns: int,
        sequence: int,
        is_snapshot: bool,
    ) -> BookUpdate | None:
        """Stamp the book; refuse (and go stale) if the result is crossed or locked."""
        book = self.book
        book.sequence = sequence
        book.ts_event_ns = ts_event_ns
        book.ts_recv_ns = ts_recv_ns
        self.stats.applied += 1
        if book.is_crossed():
            self.stats.crossed += 1
            self.mark_stale(f"crossed book at sequence {sequence}")
            return None
        return BookUpdate(
            self.instrument_id, ts_event_ns, ts_recv_ns, sequence, is_snapshot, changes
        )

    def _load_snapshot(
        self,
        bids: list[Level],
        asks: list[Level],
        *,
        sequence: int,
        ts_event_ns: int,
        ts_recv_ns: int,
    ) -> list[BookUpdate]:
        """Replace the book with a snapshot and go live; ``[snapshot update]`` unless crossed."""
        if self.state is SyncState.STALE:
            self.stats.resyncs += 1
        self.book.load(bids, asks)
        self.state = SyncState.LIVE
        self.resync_requested = False
        snapshot = self._publish(
            self._snapshot_changes(),
            ts_event_ns=ts_event_ns,
            ts_recv_ns=ts_recv_ns,
            sequence=sequence,
            is_snapshot=True,
        )
        return [] if snapshot is None else [snapshot]

    def _join(
        self,
        updates: list[BookUpdate],
        pending: Sequence[tuple[T, int]],
        apply: Callable[[T, int], BookUpdate | None],
        buffer: MutableSequence[tuple[T, int]],
    ) -> list[BookUpdate]:
        """Apply buffered messages after a snapshot; on a new gap, re-buffer the rest."""
        for index, (message, ts_recv_ns) in enumerate(pending):
            if self.state is not SyncState.LIVE:
                buffer.extend(pending[index:])
                break
            update = apply(message, ts_recv_ns)
            if update is not None:
                updates.append(update)
        return updates

    def _snapshot_changes(self) -> tuple[tuple[bool, float, float], ...]:
        return (
            *((True, p, s) for p, s in self.book.bids()),
            *((False, p, s) for p, s in self.book.asks()),
        )

    @abstractmethod
    def on_message(self, message: Any, ts_recv_ns: int) -> BookUpdate | None:
        """Feed one parsed venue book message; returns the update if the book is publishable."""

    def on_message_safe(self, message: Any, ts_recv_ns: int) -> BookUpdate | None:
        """Like :meth:`on_message`, but a malformed message is counted and dropped."""
        self.stats.messages += 1
        try:
            return self.on_message(message, ts_recv_ns)
        except (MalformedMessage, KeyError, TypeError, ValueError, IndexError, AttributeError):
            # Implementations parse a whole message before touching the book, so the book is
            # exactly as it was before this message.
            self.stats.malformed += 1
            return None
