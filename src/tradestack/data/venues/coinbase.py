"""Coinbase Advanced Trade: ``level2`` book sync over the connection-wide ``sequence_num``.

Coinbase numbers every message of one WebSocket connection, whatever its channel, with
``sequence_num`` (0, 1, 2, ... from the first message). ``l2_data`` carries a ``snapshot`` event
(the whole book) when ``level2`` is subscribed, then ``update`` events whose levels hold the new
absolute size (``new_quantity`` 0 removes the level). Book rules kept here:

- a frame whose ``sequence_num`` is at or below the last one seen on the connection is a
  duplicate or a late (reordered) frame: the whole frame is dropped;
- a frame that skips numbers means *some* message was lost, and we cannot know which channel
  it belonged to, so every book on the connection goes stale and asks for a resync, which for
  Coinbase means re-subscribing ``level2`` to get a fresh snapshot in-stream (there is no REST
  snapshot to join a diff stream to);
- a snapshot event always (re)loads the book; updates apply only to a live book;
- a new connection restarts the numbering; books from the old one are stale.

Why we keep our own book: ccxt's coinbase handler (``ccxt.pro.coinbase.handle_order_book``,
4.5.x) never looks at ``sequence_num``. A lost update leaves its book silently wrong, a
reordered one overwrites a level with an older size, and nothing asks for a new snapshot.

Normalizers: ``ticker`` → :class:`QuoteTick` (``best_bid``/``best_ask`` with their quantities,
present since 2024-04), ``market_trades`` → :class:`TradeTick`. In ``market_trades`` the
``side`` is the *maker* order's side, as in Coinbase Exchange's ``match`` messages: the recorded
session shows trades marked ``SELL`` printing at or above the best ask (a buyer lifted the ask)
and ``BUY`` trades at or below the best bid (``tests/data/venues/test_coinbase_sync.py`` checks
it on the recording), so the aggressor is the opposite side. Timestamps are RFC 3339 with up
to nine fraction digits and are converted to integer nanoseconds without going through floats.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from tradestack.core.events import AggressorSide, MarketEvent, QuoteTick, TradeTick
from tradestack.core.ids import InstrumentId
from tradestack.data.book.sync import BookSync, BookUpdate, Level, MalformedMessage, SyncState

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})$"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_SIDES = {"bid": True, "offer": False}
_DECIMAL_TYPES = frozenset((str, int, float))  # not bool: exact types are checked
_AGGRESSOR = {"SELL": AggressorSide.BUYER, "BUY": AggressorSide.SELLER}


def iso8601_ns(text: Any) -> int:
    """``2026-08-09T21:05:48.228568804Z`` → integer ns since the epoch, exactly."""
    match = _ISO.match(text) if isinstance(text, str) else None
    if match is None:
        raise MalformedMessage(f"bad timestamp {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
    except ValueError as exc:
        raise MalformedMessage(f"bad timestamp {text!r}: {exc}") from exc
    seconds = (moment - _EPOCH) // _SECOND
    zone = match[8]
    if zone != "Z":
        digits = zone[1:].replace(":", "")
        offset = int(digits[:2]) * 3600 + int(digits[2:]) * 60
        seconds -= offset if zone[0] == "+" else -offset
    fraction = match[7] or ""
    return seconds * 1_000_000_000 + int((fraction + "000000000")[:9])


def _number(value: Any, what: str) -> float:
    """A decimal string (or number) → finite, non-negative float."""
    if type(value) not in _DECIMAL_TYPES:
        raise MalformedMessage(f"{what}: {value!r} is not a number")
    try:
        number = float(value)
    except ValueError as exc:
        raise MalformedMessage(f"{what}: {value!r} is not a number") from exc
    if not math.isfinite(number) or number < 0.0:
        raise MalformedMessage(f"{what}: {value!r} out of range")
    return number


def sequence_of(frame: Any) -> int:
    """The connection-level ``sequence_num`` of a decoded frame; raises on junk."""
    if not isinstance(frame, dict):
        raise MalformedMessage("frame is not an object")
    seq = frame.get("sequence_num")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise MalformedMessage(f"bad sequence_num {seq!r}")
    return seq


def _events(frame: dict[str, Any]) -> list[dict[str, Any]]:
    events = frame.get("events")
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise MalformedMessage("events is not a list of objects")
    return events


def parse_updates(raw: Any) -> tuple[list[Level], list[Level]]:
    """``updates`` of an ``l2_data`` event → ``(bids, asks)`` as ``(price, size)``, in order."""
    if not isinstance(raw, list):
        raise MalformedMessage("updates is not a list")
    bids: list[Level] = []
    asks: list[Level] = []
    inf = math.inf
    for level in raw:  # snapshots hold tens of thousands of levels: kept tight
        if type(level) is not dict:
            raise MalformedMessage(f"bad level {level!r}")
        side = level.get("side")
        text_price: Any = level.get("price_level")
        text_size: Any = level.get("new_quantity")
        if (
            side not in _SIDES
            or type(text_price) not in _DECIMAL_TYPES
            or type(text_size) not in _DECIMAL_TYPES
        ):
            raise MalformedMessage(f"bad level {level!r}")
        price = float(text_price)
        size = float(text_size)
        if not (0.0 < price < inf and 0.0 <= size < inf):  # also false for NaN
            raise MalformedMessage(f"bad level {level!r}")
        (bids if _SIDES[side] else asks).append((price, size))
    return bids, asks


class SeqVerdict(StrEnum):
    """How one frame's ``sequence_num`` relates to the previous one on its connection."""

    NEXT = "next"
    DUPLICATE = "duplicate"  # at or below the last one: a duplicate or a late frame
    GAP = "gap"


@dataclass
class ConnectionSequence:
    """Continuity of ``sequence_num`` on one WebSocket connection (numbering starts at 0)."""

    last: int = -1
    duplicates: int = 0
    gap_ranges: list[tuple[int, int]] = field(default_factory=list)  # (first missing, got)

    def observe(self, seq: int) -> SeqVerdict:
        if seq <= self.last:
            self.duplicates += 1
            return SeqVerdict.DUPLICATE
        verdict = SeqVerdict.NEXT if seq == self.last + 1 else SeqVerdict.GAP
        if verdict is SeqVerdict.GAP:
            self.gap_ranges.append((self.last + 1, seq))
        self.last = seq
        return verdict


class CoinbaseBookSync(BookSync):
    """One product's ``level2`` book; the owner reports connection gaps and new connections.

    ``on_message`` takes a whole ``l2_data`` frame and handles the events of this product.
    ``sequence`` of the updates it publishes is the frame's ``sequence_num`` (a connection-level
    number, not a per-book one); ``ts_event_ns`` is the frame's ``timestamp``.
    """

    def __init__(self, instrument_id: InstrumentId, product_id: str) -> None:
        super().__init__(instrument_id)
        self.product_id = product_id
        self.skipped_unsynced = 0
        self._last_seq = -1

    def reset(self) -> None:
        super().reset()
        self._last_seq = -1

    def on_connection_gap(self, first_missing: int, got: int) -> None:
        """Messages ``first_missing .. got - 1`` of the connection were lost: go stale."""
        self.mark_stale(f"sequence gap: expected {first_missing}, got {got}")

    def on_new_connection(self) -> None:
        """The connection was replaced: numbering restarts and the old book cannot continue."""
        self._last_seq = -1
        if self.state is SyncState.LIVE:
            self.mark_stale("new connection")

    def on_message_safe(self, message: Any, ts_recv_ns: int) -> BookUpdate | None:
        """Like :meth:`on_message`; a malformed frame is dropped, the book left as it was and
        marked stale: the frame held a numbered message (perhaps this book's update or its
        snapshot) that is lost now, just as if it had never arrived."""
        malformed = self.stats.malformed
        update = super().on_message_safe(message, ts_recv_ns)
        if self.stats.malformed > malformed:
            self.mark_stale("malformed l2_data frame")
        return update

    def on_message(self, message: Any, ts_recv_ns: int) -> BookUpdate | None:
        seq = sequence_of(message)
        ts_event = iso8601_ns(message.get("timestamp"))
        parsed: list[tuple[bool, list[Level], list[Level]]] = []
        for event in _events(message):
            if event.get("product_id") != self.product_id:
                continue
            kind = event.get("type")
            if kind not in ("snapshot", "update"):
                raise MalformedMessage(f"unknown l2_data event type {kind!r}")
            parsed.append((kind == "snapshot", *parse_updates(event.get("updates"))))
        if not parsed:
            return None
        if seq <= self._last_seq:
            self.stats.old_dropped += 1
            return None
        self._last_seq = seq
        changes: list[tuple[bool, float, float]] = []
        is_snapshot = False
        for snapshot, bids, asks in parsed:
            if snapshot:
                if self.state is SyncState.STALE:
                    self.stats.resyncs += 1
                self.book.load(bids, asks)
                self.state = SyncState.LIVE
                self.resync_requested = False
                is_snapshot = True
            elif self.state is SyncState.LIVE:
                changes.extend(self._apply_levels(bids, asks))
            else:
                self.skipped_unsynced += 1
        if self.state is not SyncState.LIVE:
            return None
        return self._publish(
            self._snapshot_changes() if is_snapshot else tuple(changes),
            ts_event_ns=ts_event,
            ts_recv_ns=ts_recv_ns,
            sequence=seq,
            is_snapshot=is_snapshot,
        )


def parse_ticker(
    frame: dict[str, Any], instruments: Mapping[str, InstrumentId], ts_recv_ns: int
) -> list[QuoteTick]:
    """``ticker``/``ticker_batch`` frame → one :class:`QuoteTick` per known product with quotes.

    The ticker entries carry no time of their own: the frame's ``timestamp`` is the event time.
    """
    ts_event = iso8601_ns(frame.get("timestamp"))
    quotes: list[QuoteTick] = []
    for event in _events(frame):
        tickers = event.get("tickers")
        if not isinstance(tickers, list):
            raise MalformedMessage("tickers is not a list")
        for ticker in tickers:
            if not isinstance(ticker, dict):
                raise MalformedMessage("ticker is not an object")
            iid = instruments.get(str(ticker.get("product_id")))
            fields = ("best_bid", "best_bid_quantity", "best_ask", "best_ask_quantity")
            if iid is None or any(ticker.get(name) in (None, "") for name in fields):
                continue
            bid, bid_size, ask, ask_size = (_number(ticker[name], name) for name in fields)
            quotes.append(QuoteTick(iid, ts_event, ts_recv_ns, bid, bid_size, ask, ask_size))
    return quotes


def parse_market_trades(
    frame: dict[str, Any], instruments: Mapping[str, InstrumentId], ts_recv_ns: int
) -> list[TradeTick]:
    """``market_trades`` frame → :class:`TradeTick` oldest first (Coinbase sends newest first).

    ``side`` is the maker's side, so ``SELL`` means a buyer was the aggressor.
    """
    trades: list[TradeTick] = []
    for event in _events(frame):
        raw = event.get("trades")
        if not isinstance(raw, list):
            raise MalformedMessage("trades is not a list")
        for trade in reversed(raw):
            if not isinstance(trade, dict):
                raise MalformedMessage("trade is not an object")
            iid = instruments.get(str(trade.get("product_id")))
            if iid is None:
                continue
            price = _number(trade.get("price"), "price")
            size = _number(trade.get("size"), "size")
            if price <= 0.0 or size <= 0.0:
                raise MalformedMessage(f"trade with price {price} size {size}")
            trades.append(
                TradeTick(
                    instrument_id=iid,
                    ts_event_ns=iso8601_ns(trade.get("time")),
                    ts_recv_ns=ts_recv_ns,
                    price=price,
                    size=size,
                    aggressor=_AGGRESSOR.get(str(trade.get("side")), AggressorSide.UNKNOWN),
                    trade_id=str(trade.get("trade_id", "")),
                )
            )
    return trades


def _trade_number(trade_id: str) -> int | None:
    return int(trade_id) if trade_id.isdigit() else None


class CoinbaseDecoder:
    """What the Coinbase adapter does with a decoded frame, without I/O.

    Checks the connection's ``sequence_num`` (drops duplicates, reports gaps to every book),
    routes ``l2_data`` to the product's :class:`CoinbaseBookSync` and normalizes tickers and
    trades. Trades are de-duplicated by numeric ``trade_id``; the ``market_trades`` snapshot a
    subscription starts with lists trades from before it, so the first one is not emitted and
    later ones (after a reconnect) only fill in trades newer than the last one seen.
    """

    def __init__(self, instruments: Mapping[str, InstrumentId]) -> None:
        self.instruments = dict(instruments)
        self.books: dict[str, CoinbaseBookSync] = {}
        self.connections: list[ConnectionSequence] = []
        self.malformed = 0
        self._last_trade: dict[InstrumentId, int] = {}

    def new_connection(self) -> None:
        """Frames from now on come from a new connection (numbered from 0 again)."""
        self.connections.append(ConnectionSequence())
        for sync in self.books.values():
            sync.on_new_connection()

    def on_frame(self, frame: Any, ts_recv_ns: int) -> list[MarketEvent | BookUpdate]:
        try:
            seq = sequence_of(frame)
        except MalformedMessage:
            self.malformed += 1
            return []
        if not self.connections:
            self.connections.append(ConnectionSequence())
        elif seq == 0 and self.connections[-1].last > 0:
            # Numbering restarts only on a new connection. The adapter sees reconnects live;
            # a replayed recording has no sockets, so this is how it sees them.
            self.new_connection()
        connection = self.connections[-1]
        verdict = connection.observe(seq)
        if verdict is SeqVerdict.DUPLICATE:
            return []
        if verdict is SeqVerdict.GAP:
            first_missing = connection.gap_ranges[-1][0]
            for sync in self.books.values():
                sync.on_connection_gap(first_missing, seq)
        channel = frame.get("channel")
        try:
            if channel == "l2_data":
                return self._book(frame, ts_recv_ns)
            if channel in ("ticker", "ticker_batch"):
                return list(parse_ticker(frame, self.instruments, ts_recv_ns))
            if channel == "market_trades":
                return self._trades(frame, ts_recv_ns)
        except (MalformedMessage, KeyError, TypeError, ValueError, AttributeError):
            self.malformed += 1
        return []

    def _book(self, frame: dict[str, Any], ts_recv_ns: int) -> list[MarketEvent | BookUpdate]:
        try:
            products = {str(e.get("product_id")) for e in _events(frame)}
        except MalformedMessage:  # whose update was it? every book takes it as its own loss
            products = set(self.books)
        out: list[MarketEvent | BookUpdate] = []
        for product, sync in self.books.items():
            if product in products:
                update = sync.on_message_safe(frame, ts_recv_ns)
                if update is not None:
                    out.append(update)
        return out

    def _trades(self, frame: dict[str, Any], ts_recv_ns: int) -> list[MarketEvent | BookUpdate]:
        is_snapshot = any(e.get("type") == "snapshot" for e in _events(frame))
        seen_before = set(self._last_trade)
        out: list[MarketEvent | BookUpdate] = []
        for trade in parse_market_trades(frame, self.instruments, ts_recv_ns):
            number = _trade_number(trade.trade_id)
            if number is not None:
                last = self._last_trade.get(trade.instrument_id)
                if last is not None and number <= last:
                    continue
                self._last_trade[trade.instrument_id] = number
            if not is_snapshot or trade.instrument_id in seen_before:
                out.append(trade)
        return out
