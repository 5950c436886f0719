"""Live market data across processes: one recorder publishes, strategy processes consume.

:class:`MarketDataPublisher` is a feed sink: ``tradestack record --publish URL`` calls it with
every normalized event (book updates, trades, quotes, funding) and it appends them, in the
order received, to one stream per market (:func:`market_stream`, ``md:<venue>:<symbol>``),
in pipelined batches. Every ``keyframe_every_s`` it also appends a keyframe of each book it
keeps (an :class:`~tradestack.core.events.OrderBookSnapshot`): a consumer that starts (or
restarts) in the middle of a stream builds its book from the next keyframe instead of waiting
for the venue's next snapshot.

:func:`bus_market_feed` is the consuming side that paper and live sessions use instead of their
own exchange connection: a consumer group per strategy process (each process sees every
event; a restarted one resumes from its group's position, its unacknowledged entries first),
a local :class:`~tradestack.data.book.l2book.L2Book` kept from the updates, and the events on
an asyncio queue as the exchange feed would put them. Keyframes only start a book: once it
is live, later keyframes are skipped (they hold nothing the updates did not).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

import redis.asyncio as aredis

from tradestack.bus.redis_streams import BusMessage, Delivery, StreamConsumer, StreamPublisher
from tradestack.core.events import (
    FundingRate,
    MarketEvent,
    OrderBookSnapshot,
    QuoteTick,
    TradeTick,
)
from tradestack.core.ids import InstrumentId
from tradestack.data.book.l2book import L2Book
from tradestack.data.book.sync import BookUpdate

DEFAULT_PREFIX = "md"


def market_stream(venue: str, symbol: str, prefix: str = DEFAULT_PREFIX) -> str:
    """The stream of one market: ``md:binance:BTC/USDT``."""
    return f"{prefix}:{venue}:{symbol}"


def keyframe_update(frame: OrderBookSnapshot) -> BookUpdate:
    """A keyframe as the snapshot update a feed would give."""
    changes = tuple((True, p, s) for p, s in frame.bids) + tuple(
        (False, p, s) for p, s in frame.asks
    )
    return BookUpdate(
        frame.instrument_id, frame.ts_event_ns, frame.ts_recv_ns, frame.sequence, True, changes
    )


def apply_update(book: L2Book, update: BookUpdate) -> None:
    """Apply one update (a snapshot replaces the book)."""
    if update.is_snapshot:
        book.clear()
    for is_bid, price, size in update.changes:
        book.apply(is_bid, price, size)


class MarketDataPublisher:
    """A feed sink publishing every event to its market's stream (see the module docstring).

    Call it with each event (cheap: it buffers); :meth:`run` flushes every ``flush_every_s``
    until stopped, then once more. ``maxlen`` trims each stream (``MAXLEN ~``): size it above
    the largest backlog a consumer may build. A keyframe holds the best ``keyframe_depth``
    levels a side, as a venue's REST snapshot does.
    """

    def __init__(
        self,
        client: aredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        maxlen: int | None = 1_000_000,
        keyframe_every_s: float = 5.0,
        keyframe_depth: int = 1000,
        flush_every_s: float = 0.005,
    ) -> None:
        if keyframe_every_s <= 0 or flush_every_s <= 0:
            raise ValueError("keyframe_every_s and flush_every_s must be positive")
        self.client = client
        self.prefix = prefix
        self.maxlen = maxlen
        self.keyframe_every_s = keyframe_every_s
        self.keyframe_depth = keyframe_depth
        self.flush_every_s = flush_every_s
        self.published: dict[str, int] = {}
        self.keyframes = 0
        self._pending: dict[str, list[BusMessage]] = {}
        self._publishers: dict[str, StreamPublisher] = {}
        self._books: dict[InstrumentId, tuple[L2Book, BookUpdate]] = {}
        self._keyframed: dict[InstrumentId, BookUpdate] = {}
        self._next_keyframe = time.monotonic() + keyframe_every_s

    def __call__(self, event: MarketEvent | BookUpdate) -> None:
        inst = event.instrument_id
        if isinstance(event, BookUpdate):
            kept = self._books.get(inst)
            book = kept[0] if kept is not None else L2Book(inst)
            apply_update(book, event)
            self._books[inst] = (book, event)
        elif not isinstance(event, TradeTick | QuoteTick | FundingRate):
            return
        self._pending.setdefault(self._stream(inst), []).append(event)

    def _stream(self, inst: InstrumentId) -> str:
        return market_stream(inst.venue, inst.symbol, self.prefix)

    def _keyframes(self) -> None:
        for inst, (book, last) in self._books.items():
            if self._keyframed.get(inst) is last:
                continue  # nothing changed since the last keyframe
            self._keyframed[inst] = last
            bids, asks = book.bids(self.keyframe_depth), book.asks(self.keyframe_depth)
            if not bids or not asks:
                continue
            frame = OrderBookSnapshot(
                inst, last.ts_event_ns, last.ts_recv_ns, tuple(bids), tuple(asks), last.sequence
            )
            self._pending.setdefault(self._stream(inst), []).append(frame)
            self.keyframes += 1

    async def flush(self) -> int:
        """Publish what is buffered (and the keyframes, when due); returns how many entries."""
        if time.monotonic() >= self._next_keyframe:
            self._next_keyframe = time.monotonic() + self.keyframe_every_s
            self._keyframes()
        sent = 0
        pending, self._pending = self._pending, {}
        for stream, messages in pending.items():
            publisher = self._publishers.get(stream)
            if publisher is None:
                publisher = StreamPublisher(self.client, stream, maxlen=self.maxlen)
                self._publishers[stream] = publisher
            await publisher.publish_many(messages)
            self.published[stream] = self.published.get(stream, 0) + len(messages)
            sent += len(messages)
        return sent

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every ``flush_every_s`` until ``stop`` is set, then flush the rest."""
        while not stop.is_set():
            await self.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.flush_every_s)
        await self.flush()


@dataclass
class BusFeed:
    """What :func:`bus_market_feed` yields: the events, the book kept from them, the consumer."""

    queue: asyncio.Queue[MarketEvent | BookUpdate]
    book: L2Book
    consumer: StreamConsumer
    started: bool = False
    book_from: str = ""
    skipped_before_book: int = 0
    keyframes_skipped: int = 0
    redelivered: int = 0
    entry_ids: list[str] = field(default_factory=list)

    def handle(self, delivery: Delivery) -> None:
        """One entry: keep the book, put the event on the queue."""
        message = delivery.message
        self.entry_ids.append(delivery.entry_id)
        self.redelivered += delivery.redelivered
        if isinstance(message, OrderBookSnapshot):  # a keyframe
            if self.started:
                self.keyframes_skipped += 1
                return
            message = keyframe_update(message)
            self.book_from = "keyframe of " + delivery.entry_id
        if isinstance(message, BookUpdate):
            if not self.started and not message.is_snapshot:
                self.skipped_before_book += 1  # nothing to apply it to yet
                return
            self.book_from = self.book_from or "snapshot of " + delivery.entry_id
            self.started = True
            apply_update(self.book, message)
            self.queue.put_nowait(message)
        elif isinstance(message, TradeTick | QuoteTick | FundingRate):
            self.queue.put_nowait(message)


@contextlib.asynccontextmanager
async def bus_market_feed(
    client: aredis.Redis,
    venue: str,
    symbol: str,
    instrument_id: InstrumentId,
    *,
    group: str,
    consumer: str,
    prefix: str = DEFAULT_PREFIX,
    start: Literal["earliest", "latest"] = "latest",
) -> AsyncIterator[BusFeed]:
    """Consume ``venue``/``symbol``'s stream in consumer group ``group`` as ``consumer`` (keep
    both stable across restarts). A new group starts at the stream's beginning (``earliest``)
    or with what is published from now on (``latest``)."""
    stream = market_stream(venue, symbol, prefix)
    reader = StreamConsumer(
        client,
        stream,
        group,
        consumer,
        batch_size=500,
        block_ms=100,
        claim_idle_ms=None,
        start_id="0" if start == "earliest" else "$",
    )
    feed = BusFeed(asyncio.Queue(), L2Book(instrument_id), reader)
    stop = asyncio.Event()
    task = asyncio.get_running_loop().create_task(reader.run(feed.handle, stop=stop))
    try:
        await reader.ensure_group()
        yield feed
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
