"""Market data and signals across processes over Redis Streams.

One process publishes (:class:`StreamPublisher`: ``XADD`` in pipelined batches, ``MAXLEN ~``
trimming); strategy processes consume through a consumer group (:class:`StreamConsumer`), so each
entry goes to one consumer of the group and a restarted consumer resumes where it stopped.

Entry layout: fields ``t`` (type tag, e.g. ``trade``), ``v`` (schema version) and ``d`` (the event
as msgpack, encoded by msgspec: floats are float64 bit for bit, :class:`~decimal.Decimal` travels
as its exact text). Delivery is at least once: an entry is acknowledged (``XACK``) only after the
handler returned, so a consumer killed mid-batch gets the unacknowledged rest again on restart
(its own pending entries, read from id ``0``, before new ones). Entries left pending by a dead
consumer are taken over with ``XAUTOCLAIM`` once idle longer than ``claim_idle_ms``. Recovered
entries are read one at a time, so Redis's delivery counter counts real attempts. An entry that
cannot be decoded, or that was delivered more than ``max_deliveries`` times without an
acknowledgement (a handler failing on it, or killing its process), is copied with the reason to a
dead-letter stream (``<stream>:dead-letter``) and acknowledged in one transaction: it neither
blocks the group nor gets lost.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec
import redis
import redis.asyncio as aredis

from tradestack.core.events import (
    Bar,
    FundingRate,
    MarketEvent,
    OrderBookDelta,
    OrderBookSnapshot,
    QuoteTick,
    TradeTick,
)
from tradestack.core.ids import InstrumentId
from tradestack.data.book.sync import BookUpdate

__all__ = [
    "DEFAULT_REDIS_URL",
    "SCHEMA_VERSION",
    "BusDecodeError",
    "BusMessage",
    "ConsumerStats",
    "Delivery",
    "GroupBacklog",
    "Signal",
    "StreamConsumer",
    "StreamPublisher",
    "SyncStreamPublisher",
    "connect",
    "decode_entry",
    "encode_message",
    "redact_url",
    "redis_url",
    "stream_backlog",
]

log = logging.getLogger(__name__)

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
SCHEMA_VERSION = 1
DEAD_LETTER_SUFFIX = ":dead-letter"


class Signal(msgspec.Struct, frozen=True, gc=False):
    """A strategy's score for one instrument at one instant, published for other processes.

    ``score`` follows the alpha convention: in [-1, 1], sign = direction, size = conviction.
    ``price`` is the reference price the score was computed at, kept exact as a Decimal.
    """

    strategy: str
    instrument_id: InstrumentId
    ts_event_ns: int
    score: float
    price: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.strategy:
            raise ValueError("signal: strategy must not be empty")
        if not (math.isfinite(self.score) and -1.0 <= self.score <= 1.0):
            raise ValueError(f"signal {self.strategy!r}: score {self.score} is outside [-1, 1]")
        if self.price is not None and not (self.price.is_finite() and self.price > 0):
            raise ValueError(f"signal {self.strategy!r}: price must be positive, got {self.price}")


BusMessage = MarketEvent | BookUpdate | Signal

_TYPES: dict[bytes, type[Any]] = {
    b"bar": Bar,
    b"quote": QuoteTick,
    b"trade": TradeTick,
    b"book_delta": OrderBookDelta,
    b"book_snapshot": OrderBookSnapshot,
    b"funding": FundingRate,
    b"signal": Signal,
    b"book_update": BookUpdate,
}
_TAGS: dict[type[Any], bytes] = {cls: tag for tag, cls in _TYPES.items()}
_VERSION = str(SCHEMA_VERSION).encode()
# (tag, schema version) -> decoder; a later schema adds entries and keeps reading the old ones.
_DECODERS: dict[tuple[bytes, bytes], msgspec.msgpack.Decoder[Any]] = {
    (tag, _VERSION): msgspec.msgpack.Decoder(cls) for tag, cls in _TYPES.items()
}
_ENCODER = msgspec.msgpack.Encoder()
_KNOWN = ", ".join(sorted(t.decode() for t in _TYPES))


class BusDecodeError(ValueError):
    """A stream entry that is not a message this bus can read; names the stream and entry id."""

    def __init__(self, stream: str, entry_id: str, reason: str) -> None:
        super().__init__(f"stream {stream!r} entry {entry_id}: {reason}")
        self.stream = stream
        self.entry_id = entry_id
        self.reason = reason


def encode_message(message: BusMessage) -> dict[bytes, bytes]:
    """The entry fields of one message; TypeError for anything that is not a bus message."""
    tag = _TAGS.get(type(message))
    if tag is None:
        raise TypeError(f"cannot publish a {type(message).__name__}: expected one of {_KNOWN}")
    return {b"t": tag, b"v": _VERSION, b"d": _ENCODER.encode(message)}


def decode_entry(stream: str, entry_id: str, fields: Mapping[bytes, bytes]) -> BusMessage:
    """The message in one entry's fields, or :class:`BusDecodeError` saying what is wrong."""
    tag, version, data = fields.get(b"t"), fields.get(b"v"), fields.get(b"d")
    if tag is None or version is None or data is None:
        missing = [name for name, v in (("t", tag), ("v", version), ("d", data)) if v is None]
        raise BusDecodeError(stream, entry_id, f"missing field(s) {', '.join(missing)}")
    decoder = _DECODERS.get((tag, version))
    if decoder is None:
        if tag not in _TYPES:
            reason = f"unknown message type {tag!r} (known: {_KNOWN})"
        else:
            reason = f"unsupported schema version {version!r} of {tag.decode()!r}"
        raise BusDecodeError(stream, entry_id, reason)
    try:
        message: BusMessage = decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
        raise BusDecodeError(stream, entry_id, f"bad {tag.decode()!r} payload: {exc}") from exc
    return message


def redis_url(url: str | None = None, env: Mapping[str, str] | None = None) -> str:
    """The Redis URL: ``url`` (from config) if given, else ``REDIS_URL``, else the default."""
    chosen = url or (os.environ if env is None else env).get("REDIS_URL") or DEFAULT_REDIS_URL
    scheme = urlsplit(chosen).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise ValueError(
            f"Redis URL {redact_url(chosen)!r} must start with redis://, rediss:// or unix://"
        )
    return chosen


def redact_url(url: str) -> str:
    """``url`` with any password (in the user part or a ``password=`` query) shown as ``***``."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    user, colon, password = userinfo.partition(":")
    if at and colon and password:
        url = url.replace(parts.netloc, f"{user}:***@{hostport}", 1)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    if any(key.lower() == "password" for key, _ in pairs):
        query = "&".join(f"{k}={'***' if k.lower() == 'password' else v}" for k, v in pairs)
        url = url.replace("?" + parts.query, "?" + query, 1)
    return url


def connect(url: str | None = None, *, socket_timeout: float = 30.0) -> aredis.Redis:
    """An asyncio client for :func:`redis_url` (bytes replies: payloads are binary).

    ``socket_timeout`` must exceed any consumer's ``block_ms``.
    """
    chosen = redis_url(url)
    log.info("connecting to Redis at %s", redact_url(chosen))
    return aredis.Redis.from_url(chosen, decode_responses=False, socket_timeout=socket_timeout)


def _check_bytes_client(client: aredis.Redis | redis.Redis) -> None:
    if client.connection_pool.connection_kwargs.get("decode_responses"):
        raise ValueError("the bus needs a Redis client with decode_responses=False")


def _encode_all(stream: str, messages: Sequence[BusMessage], offset: int) -> tuple[list[Any], str]:
    """Entry fields of the longest valid prefix, and the reason the next message was refused."""
    encoded = []
    for i, message in enumerate(messages):
        try:
            encoded.append(encode_message(message))
        except (TypeError, msgspec.EncodeError) as exc:
            return encoded, f"stream {stream!r}: message #{offset + i} not published: {exc}"
    return encoded, ""


class _Publisher:
    """What both publishers share: settings, batching, encoding into one pipeline."""

    client: Any

    def __init__(
        self,
        client: aredis.Redis | redis.Redis,
        stream: str,
        *,
        maxlen: int | None = 1_000_000,
        approximate: bool = True,
        batch_size: int = 500,
    ) -> None:
        if maxlen is not None and maxlen <= 0:
            raise ValueError(f"stream {stream!r}: maxlen must be positive or None, got {maxlen}")
        if batch_size <= 0:
            raise ValueError(f"stream {stream!r}: batch_size must be positive, got {batch_size}")
        _check_bytes_client(client)
        self.client = client
        self.stream = stream
        self.maxlen = maxlen
        self.approximate = approximate
        self.batch_size = batch_size
        self.published = 0

    def _batches(self, messages: Iterable[BusMessage]) -> Iterator[list[BusMessage]]:
        batch: list[BusMessage] = []
        for message in messages:
            batch.append(message)
            if len(batch) >= self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _pipeline(self, batch: Sequence[BusMessage], offset: int) -> tuple[Any, int, str]:
        """A pipeline of XADDs for the valid prefix of ``batch``, its size, and why the next
        message was refused ('' if none was)."""
        encoded, refused = _encode_all(self.stream, batch, offset)
        pipe = self.client.pipeline(transaction=False)
        for fields in encoded:
            pipe.xadd(self.stream, fields, maxlen=self.maxlen, approximate=self.approximate)
        return pipe, len(encoded), refused

    def _sent(self, raw_ids: Sequence[bytes], offset: int, refused: str) -> list[str]:
        self.published += len(raw_ids)
        if refused:
            raise TypeError(f"{refused} ({offset + len(raw_ids)} before it were)")
        return [raw.decode() for raw in raw_ids]


class StreamPublisher(_Publisher):
    """Publishes bus messages to one stream (asyncio), ``batch_size`` per pipelined round trip.

    ``maxlen`` caps the stream with ``MAXLEN ~`` (``approximate``) or exactly; None keeps all.
    Trimming drops the oldest entries even if a slow group has not read them: size it above the
    largest backlog a consumer may build.
    """

    client: aredis.Redis

    async def publish(self, message: BusMessage) -> str:
        """Append one message; returns its entry id."""
        ids = await self.publish_many([message])
        return ids[0]

    async def publish_many(self, messages: Iterable[BusMessage]) -> list[str]:
        """Append messages in order; returns their entry ids.

        A message that cannot be encoded raises TypeError naming its position, after every
        message before it was published; none after it is.
        """
        ids: list[str] = []
        for batch in self._batches(messages):
            pipe, size, refused = self._pipeline(batch, len(ids))
            ids += self._sent(await pipe.execute() if size else [], len(ids), refused)
        return ids


class SyncStreamPublisher(_Publisher):
    """The blocking twin of :class:`StreamPublisher`, for scripts and loops without asyncio."""

    client: redis.Redis

    def publish_many(self, messages: Iterable[BusMessage]) -> list[str]:
        """As :meth:`StreamPublisher.publish_many`."""
        ids: list[str] = []
        for batch in self._batches(messages):
            pipe, size, refused = self._pipeline(batch, len(ids))
            ids += self._sent(pipe.execute() if size else [], len(ids), refused)
        return ids


class Delivery(msgspec.Struct, frozen=True, gc=False):
    """One decoded entry handed to a consumer's handler.

    ``redelivered`` is True when it came from the consumer's own pending entries (a restart) or
    was claimed from another consumer: the handler may have seen it before.
    """

    stream: str
    entry_id: str
    message: BusMessage
    redelivered: bool = False


Handler = Callable[[Delivery], Awaitable[None] | None]


@dataclass
class ConsumerStats:
    """What one consumer did: handled and acknowledged entries, and the ones set aside."""

    handled: int = 0
    acked: int = 0
    redelivered: int = 0
    claimed: int = 0
    dead_lettered: int = 0
    trimmed: int = 0


@dataclass(frozen=True, slots=True)
class GroupBacklog:
    """How far one consumer group is behind on one stream (``XINFO GROUPS`` and ``XPENDING``).

    ``lag``: entries not yet delivered to the group (None when Redis cannot tell, e.g. after
    deletions); ``pending``: delivered, not yet acknowledged; ``consumers``: pending per consumer.
    """

    stream: str
    group: str
    length: int
    last_delivered_id: str
    entries_read: int | None
    lag: int | None
    pending: int
    consumers: dict[str, int] = field(default_factory=dict)

    @property
    def backlog(self) -> int | None:
        """Entries the group still has to finish: not delivered plus not acknowledged."""
        return None if self.lag is None else self.lag + self.pending


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def stream_backlog(client: aredis.Redis, stream: str, group: str) -> GroupBacklog:
    """The group's backlog on ``stream``; LookupError when the stream or group does not exist."""
    try:
        groups = await client.xinfo_groups(stream)
    except redis.ResponseError as exc:
        raise LookupError(f"stream {stream!r}: {exc}") from exc
    info = next((g for g in groups if _text(g["name"]) == group), None)
    if info is None:
        raise LookupError(f"stream {stream!r} has no consumer group {group!r}")
    summary = await client.xpending(stream, group)
    length = await client.xlen(stream)
    return GroupBacklog(
        stream=stream,
        group=group,
        length=int(length),
        last_delivered_id=_text(info["last-delivered-id"]),
        entries_read=info.get("entries-read"),
        lag=info.get("lag"),
        pending=int(summary["pending"]),
        consumers={_text(c["name"]): int(c["pending"]) for c in summary["consumers"]},
    )


class StreamConsumer:
    """One named consumer of a consumer group on one stream (asyncio).

    Keep ``name`` stable across restarts: the consumer first re-reads its own pending entries,
    then new ones. ``claim_idle_ms`` (None: never) makes :meth:`run` take over entries other
    consumers left unacknowledged that long; it must exceed the slowest handler, or a live
    consumer's entries get handled twice. ``start_id`` is where a new group starts (``0``: the
    whole stream; ``$``: only entries added later).
    """

    def __init__(
        self,
        client: aredis.Redis,
        stream: str,
        group: str,
        name: str,
        *,
        batch_size: int = 100,
        block_ms: int = 1000,
        claim_idle_ms: int | None = 30_000,
        max_deliveries: int = 5,
        dead_letter_stream: str | None = None,
        start_id: str = "0",
    ) -> None:
        if not name:
            raise ValueError(f"stream {stream!r} group {group!r}: consumer name must not be empty")
        for what, value in (("batch_size", batch_size), ("max_deliveries", max_deliveries)):
            if value <= 0:
                raise ValueError(f"consumer {name!r}: {what} must be positive, got {value}")
        if block_ms < 0 or (claim_idle_ms is not None and claim_idle_ms < 0):
            raise ValueError(f"consumer {name!r}: block_ms and claim_idle_ms must not be negative")
        _check_bytes_client(client)
        self.client = client
        self.stream = stream
        self.group = group
        self.name = name
        self.batch_size = batch_size
        self.block_ms = block_ms
        self.claim_idle_ms = claim_idle_ms
        self.max_deliveries = max_deliveries
        self.dead_letter_stream = dead_letter_stream or stream + DEAD_LETTER_SUFFIX
        self.start_id = start_id
        self.stats = ConsumerStats()
        self._cursor: bytes | None = b"0"  # reading own pending entries until it is None

    async def ensure_group(self) -> None:
        """Create the group (and the stream) unless it exists."""
        try:
            await self.client.xgroup_create(
                self.stream, self.group, id=self.start_id, mkstream=True
            )
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def backlog(self) -> GroupBacklog:
        """This consumer's group backlog (see :func:`stream_backlog`)."""
        return await stream_backlog(self.client, self.stream, self.group)

    async def run(
        self,
        handler: Handler,
        *,
        stop: asyncio.Event | None = None,
        max_messages: int | None = None,
        until_idle: bool = False,
    ) -> ConsumerStats:
        """Consume until ``stop`` is set, ``max_messages`` entries were handled, or (with
        ``until_idle``) a read waited ``block_ms`` for nothing. A handler exception propagates
        after the entries handled before it were acknowledged; its entry stays pending."""
        await self.ensure_group()
        next_claim = 0.0
        while not (stop is not None and stop.is_set()):
            if self.claim_idle_ms is not None and time.monotonic() >= next_claim:
                await self.claim_stale(handler)
                next_claim = time.monotonic() + max(self.claim_idle_ms, 100) / 2000
            count = self.batch_size
            if max_messages is not None:
                count = min(count, max_messages - self.stats.handled)
                if count <= 0:
                    break
            processed = await self.poll(handler, count=count)
            if processed == 0 and until_idle:
                break
        return self.stats

    async def poll(self, handler: Handler, *, count: int | None = None) -> int:
        """One read and its handling; returns how many entries it processed (0: none arrived
        within ``block_ms``). Own pending entries come first, one at a time, then new ones."""
        try:
            if self._cursor is not None:
                entries = await self._read(self._cursor, 1, block=None)
                if entries:
                    self.stats.redelivered += 1
                    done = await self._recover(entries[0], handler)
                    self._cursor = entries[0][0]
                    return done
                self._cursor = None
            entries = await self._read(b">", count or self.batch_size, self.block_ms)
            return await self._process(entries, handler)
        except BaseException:
            self._cursor = b"0"  # a retry starts with what is still pending, the failed entry first
            raise

    async def claim_stale(self, handler: Handler, *, min_idle_ms: int | None = None) -> int:
        """Take over and handle, one at a time, entries pending (in any consumer) longer than
        ``min_idle_ms`` (default ``claim_idle_ms``) with ``XAUTOCLAIM``; returns how many."""
        idle = self.claim_idle_ms if min_idle_ms is None else min_idle_ms
        if idle is None:
            raise ValueError(f"consumer {self.name!r}: no min_idle_ms and no claim_idle_ms")
        start: bytes = b"0-0"
        claimed = 0
        trimmed: list[bytes] = []  # Redis 7 drops trimmed entries from the group as it scans
        while True:
            # one entry per call: a handler failure leaves the rest with their delivery counts
            start, entries, *gone = await self.client.xautoclaim(
                self.stream, self.group, self.name, idle, start, count=1
            )
            trimmed += gone[0] if gone else []
            for entry in entries:
                self.stats.claimed += 1
                claimed += 1
                await self._recover(entry, handler)
            if _text(start) == "0-0":
                if trimmed:
                    self._note_trimmed(trimmed)
                return claimed

    async def _read(self, cursor: bytes, count: int, block: int | None) -> list[Any]:
        reply: Any = await self.client.xreadgroup(
            self.group, self.name, {self.stream: cursor}, count=count, block=block
        )
        if not reply:
            return []
        if isinstance(reply, dict):  # RESP3
            return list(next(iter(reply.values()))[0])
        return list(reply[0][1])

    async def _recover(self, entry: Any, handler: Handler) -> int:
        """Handle one redelivered entry, or dead-letter it if delivered over max_deliveries."""
        raw_id, fields = entry
        if fields:
            rows: list[Any] = await self.client.xpending_range(
                self.stream, self.group, min=raw_id, max=raw_id, count=1, consumername=self.name
            )
            delivered = int(rows[0]["times_delivered"]) if rows else 0
            if delivered > self.max_deliveries:
                reason = (
                    f"stream {self.stream!r} entry {raw_id.decode()}: delivered {delivered} times "
                    f"(max_deliveries {self.max_deliveries}) without being acknowledged"
                )
                await self._dead_letter(raw_id, fields, reason)
                return 1
        return await self._process([entry], handler, redelivered=True)

    def _note_trimmed(self, ids: Sequence[bytes]) -> None:
        self.stats.trimmed += len(ids)
        log.warning(
            "stream %r group %r: %d pending entries (first %s) were trimmed by MAXLEN before "
            "anyone acknowledged them; raise the publisher's maxlen",
            self.stream, self.group, len(ids), _text(ids[0]),
        )  # fmt: skip

    async def _process(
        self, entries: Sequence[Any], handler: Handler, redelivered: bool = False
    ) -> int:
        acks: list[bytes] = []
        try:
            for raw_id, fields in entries:
                entry_id = raw_id.decode()
                if not fields:
                    self._note_trimmed([raw_id])
                    acks.append(raw_id)
                    continue
                try:
                    message = decode_entry(self.stream, entry_id, fields)
                except BusDecodeError as exc:
                    await self._dead_letter(raw_id, fields, str(exc))
                    continue
                try:
                    result = handler(Delivery(self.stream, entry_id, message, redelivered))
                    if result is not None:
                        await result
                except Exception as exc:
                    exc.add_note(
                        f"handler of consumer {self.name!r} failed on stream {self.stream!r} "
                        f"entry {entry_id}; it stays pending"
                    )
                    raise
                acks.append(raw_id)
                self.stats.handled += 1
        finally:
            if acks:
                self.stats.acked += await self.client.xack(self.stream, self.group, *acks)
        return len(entries)

    async def _dead_letter(self, raw_id: bytes, fields: Mapping[bytes, bytes], reason: str) -> None:
        """Copy the entry and the reason to the dead-letter stream and acknowledge it, at once."""
        log.error("%s; moved to %r", reason, self.dead_letter_stream)
        record: dict[bytes, bytes] = {b"orig_" + k: v for k, v in fields.items()}
        record.update(
            {
                b"error": reason.encode(),
                b"source_stream": self.stream.encode(),
                b"source_id": raw_id,
                b"group": self.group.encode(),
                b"consumer": self.name.encode(),
            }
        )
        pipe = self.client.pipeline(transaction=True)
        pipe.xadd(self.dead_letter_stream, record)  # type: ignore[arg-type]
        pipe.xack(self.stream, self.group, raw_id)
        await pipe.execute()
        self.stats.dead_lettered += 1
        self.stats.acked += 1
