"""Kraken spot, WebSocket v1: ``book`` channel sync with CRC32 checksums, trade and ticker parsers.

Book rules (Kraken "Spot WebSockets (v1) book checksum" guide):

- after subscribing, the first message for a pair is a snapshot (``as``/``bs``) of the book up
  to the subscribed depth; there is no sequence number anywhere in the stream;
- an update carries ``a`` and/or ``b`` levels (possibly split over two dicts in one frame, the
  checksum ``c`` in the last one); a level is ``[price, volume, timestamp]`` plus ``"r"`` when it
  is republished; volume 0 removes the level; levels are applied in the order sent;
- after applying an update each side is truncated to the subscribed depth (Kraken does not send
  volume 0 for a level pushed out of scope);
- ``c`` is the CRC32 of the top 10 asks (low to high) followed by the top 10 bids (high to low),
  each level as price then volume with ``.`` removed and leading zeros stripped, using the
  strings exactly as sent. The strings are kept beside the float levels for this.

A checksum mismatch means the book is wrong: it goes stale and asks for a resync (unsubscribe +
subscribe, which makes Kraken send a new snapshot). Level times grow along a pair's stream (every
recorded update is newer than the one before), so an update older than the last applied one was
overtaken by it: that lost order also makes the book stale (republished levels keep their
original time and are left out of this check). Kraken v1 has no sequence numbers, so the
checksum is the only gap detection: a lost update that changes only levels below the top 10 is
invisible until such a level reaches the top 10 (then the checksum fails). Every published book
is therefore right in its top 10 levels; deeper levels are as right as the venue lets us know.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from tradestack.core.events import AggressorSide, QuoteTick, TradeTick
from tradestack.core.ids import InstrumentId
from tradestack.data.book.sync import BookSync, BookUpdate, MalformedMessage, SyncState
from tradestack.data.recordings import seconds_to_ns

CHECKSUM_LEVELS = 10
DEPTHS = (10, 25, 100, 500, 1000)

_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
_DIGITS = re.compile(r"[0-9]{1,10}")


class KrakenLevel(NamedTuple):
    """One price level as sent: floats for the book, the exact strings for the checksum."""

    price: float
    size: float
    price_text: str
    size_text: str
    ts_text: str
    republished: bool = False

    @property
    def ts_ns(self) -> int:
        return seconds_to_ns(self.ts_text)


@dataclass(frozen=True, slots=True)
class BookMessage:
    """A parsed ``book-N`` frame: a snapshot, or an update with its checksum.

    ``changes`` lists ``(is_bid, level)`` in the order the frame gives them.
    """

    pair: str
    depth: int
    is_snapshot: bool
    changes: tuple[tuple[bool, KrakenLevel], ...]
    checksum: int | None
    ts_event_ns: int
    newest_ns: int | None = None  # latest time of a level that is not a republish


def decimal_to_ns(text: Any) -> int:
    """Kraken's decimal-seconds string (``"1618678133.365913"``) → exact integer nanoseconds."""
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise MalformedMessage(f"bad timestamp {text!r}")
    return seconds_to_ns(text)


def _decimal(text: Any, what: str) -> float:
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise MalformedMessage(f"{what}: {text!r} is not a decimal string")
    return float(text)


def parse_level(raw: Any, what: str) -> KrakenLevel:
    """``[price, volume, timestamp]`` or ``[price, volume, timestamp, "r"]`` of strings."""
    if type(raw) is not list or not 3 <= len(raw) <= 4:
        raise MalformedMessage(f"{what}: bad level {raw!r}")
    price, size, ts = raw[0], raw[1], raw[2]
    match = _DECIMAL.fullmatch
    if not (
        type(price) is str
        and type(size) is str
        and type(ts) is str
        and match(price)
        and match(size)
        and match(ts)
    ):
        raise MalformedMessage(f"{what}: bad level {raw!r}")
    if len(raw) == 4 and raw[3] != "r":
        raise MalformedMessage(f"{what}: unknown level flag {raw[3]!r}")
    return KrakenLevel(float(price), float(size), price, size, ts, len(raw) == 4)


def depth_of(channel_name: Any) -> int:
    """``"book-1000"`` → 1000."""
    if not isinstance(channel_name, str) or not channel_name.startswith("book-"):
        raise MalformedMessage(f"not a book channel: {channel_name!r}")
    try:
        return int(channel_name[5:])
    except ValueError as exc:
        raise MalformedMessage(f"bad book channel {channel_name!r}") from exc


def parse_book_message(message: Any) -> BookMessage:
    """Validate and parse a whole v1 book frame ``[channelID, {..}, ({..},) "book-N", pair]``."""
    if not isinstance(message, list) or len(message) not in (4, 5):
        raise MalformedMessage("book frame is not [channelID, data.., channelName, pair]")
    channel_id = message[0]
    if not isinstance(channel_id, int) or isinstance(channel_id, bool):
        raise MalformedMessage("book frame without an integer channelID")
    if not isinstance(message[-1], str):
        raise MalformedMessage("book frame without a pair")
    depth = depth_of(message[-2])
    parts = message[1:-2]
    if not all(isinstance(part, dict) and part for part in parts):
        raise MalformedMessage("book frame data is not a list of non-empty objects")
    changes: list[tuple[bool, KrakenLevel]] = []
    is_snapshot = "as" in parts[0] or "bs" in parts[0]
    checksum: int | None = None
    if is_snapshot:
        if len(parts) != 1 or not set(parts[0]) <= {"as", "bs"}:
            raise MalformedMessage(f"bad snapshot keys {sorted(parts[0])}")
        keys: tuple[tuple[str, bool], ...] = (("as", False), ("bs", True))
    else:
        keys = (("a", False), ("b", True))
        for index, part in enumerate(parts):
            if not set(part) <= {"a", "b", "c"} or not set(part) & {"a", "b"}:
                raise MalformedMessage(f"bad update keys {sorted(part)}")
            if "c" in part:
                text = part["c"]
                if index != len(parts) - 1 or not isinstance(text, str):
                    raise MalformedMessage("checksum must be a string in the last object")
                if not _DIGITS.fullmatch(text) or int(text) >= 2**32:
                    raise MalformedMessage(f"bad checksum {text!r}")
                checksum = int(text)
        if checksum is None:
            raise MalformedMessage("update without checksum")
    for part in parts:
        for key, is_bid in keys:
            if key in part:
                levels = part[key]
                if not isinstance(levels, list):
                    raise MalformedMessage(f"{key}: expected a list of levels")
                changes.extend((is_bid, parse_level(level, key)) for level in levels)
    if not changes and not is_snapshot:
        raise MalformedMessage("update without levels")
    return BookMessage(
        message[-1],
        depth,
        is_snapshot,
        tuple(changes),
        checksum,
        _latest(level for _, level in changes) or 0,
        _latest(level for _, level in changes if not level.republished),
    )


def _latest(levels: Iterable[KrakenLevel]) -> int | None:
    # a float orders Kraken's microsecond times exactly; only the latest is converted exactly
    texts = [level.ts_text for level in levels]
    return seconds_to_ns(max(texts, key=float)) if texts else None


def checksum_text(text: str) -> str:
    """A price or volume as it enters the checksum: ``"0.05000"`` → ``"5000"``."""
    return text.replace(".", "").lstrip("0")


def book_checksum(asks: Iterable[tuple[str, str]], bids: Iterable[tuple[str, str]]) -> int:
    """Kraken's CRC32 over (price, volume) strings: top asks low→high, then top bids high→low."""
    payload = "".join(checksum_text(p) + checksum_text(v) for p, v in asks)
    payload += "".join(checksum_text(p) + checksum_text(v) for p, v in bids)
    return zlib.crc32(payload.encode("ascii"))


class KrakenBookSync(BookSync):
    """Keeps one Kraken pair's book from v1 ``book`` snapshots and checksummed updates.

    ``sequence`` of published updates counts the messages applied to this book (Kraken has no
    sequence numbers). Updates that arrive while the book is not live are dropped: after a gap
    only a new snapshot (re-subscription) can bring it back.
    """

    def __init__(
        self, instrument_id: InstrumentId, *, depth: int = 1000, pair: str | None = None
    ) -> None:
        super().__init__(instrument_id)
        if depth < CHECKSUM_LEVELS:
            raise ValueError(f"depth {depth} is below the {CHECKSUM_LEVELS} checksummed levels")
        self.depth = depth
        self.pair = pair
        # price -> (price text, volume text, the level's checksum fragment)
        self._text: dict[bool, dict[float, tuple[str, str, str]]] = {True: {}, False: {}}
        self._count = 0
        self._last_ns = 0

    def reset(self) -> None:
        super().reset()
        self._text[True].clear()
        self._text[False].clear()
        self._last_ns = 0

    def level_texts(self, is_bid: bool, depth: int | None = None) -> list[tuple[str, str]]:
        """The (price, volume) strings of one side, best first."""
        levels = self.book.bids(depth) if is_bid else self.book.asks(depth)
        texts = self._text[is_bid]
        return [texts[price][:2] for price, _ in levels]

    def checksum(self) -> int:
        """Kraken's checksum of the book as it stands."""
        asks, bids = self._text[False], self._text[True]
        payload = "".join(asks[p][2] for p, _ in self.book.asks(CHECKSUM_LEVELS))
        payload += "".join(bids[p][2] for p, _ in self.book.bids(CHECKSUM_LEVELS))
        return zlib.crc32(payload.encode("ascii"))

    def on_message(self, message: Any, ts_recv_ns: int) -> BookUpdate | None:
        """Feed one decoded v1 book frame (snapshot or update)."""
        parsed = parse_book_message(message)
        if self.pair is not None and parsed.pair != self.pair:
            raise MalformedMessage(f"frame for {parsed.pair!r} fed to the {self.pair!r} book")
        if parsed.depth != self.depth:
            raise MalformedMessage(f"book-{parsed.depth} frame fed to a depth {self.depth} book")
        if parsed.is_snapshot:
            return self._on_snapshot(parsed, ts_recv_ns)
        if self.state is not SyncState.LIVE:
            self.stats.old_dropped += 1
            return None
        if parsed.newest_ns is not None and parsed.newest_ns < self._last_ns:
            # Level times only grow along a pair's stream: this frame was overtaken by a later
            # one, which was applied without it. The order is lost, so is the book.
            self.mark_stale(f"out of order: level time {parsed.newest_ns} < {self._last_ns}")
            return None
        self._last_ns = max(self._last_ns, parsed.newest_ns or 0)
        changes = self._apply(parsed.changes)
        local = self.checksum()
        if local != parsed.checksum:
            self.stats.checksum_failures += 1
            self.mark_stale(f"checksum mismatch: venue {parsed.checksum}, book {local}")
            return None
        self._count += 1
        return self._publish(
            changes,
            ts_event_ns=parsed.ts_event_ns,
            ts_recv_ns=ts_recv_ns,
            sequence=self._count,
            is_snapshot=False,
        )

    def _on_snapshot(self, parsed: BookMessage, ts_recv_ns: int) -> BookUpdate | None:
        if self.state is SyncState.STALE:
            self.stats.resyncs += 1
        self.book.clear()
        self._text[True].clear()
        self._text[False].clear()
        self._apply(parsed.changes)
        self._last_ns = parsed.ts_event_ns
        self.state = SyncState.LIVE
        self.resync_requested = False
        self._count += 1
        return self._publish(
            self._snapshot_changes(),
            ts_event_ns=parsed.ts_event_ns,
            ts_recv_ns=ts_recv_ns,
            sequence=self._count,
            is_snapshot=True,
        )

    def _apply(
        self, levels: tuple[tuple[bool, KrakenLevel], ...]
    ) -> tuple[tuple[bool, float, float], ...]:
        book = self.book
        changes: list[tuple[bool, float, float]] = []
        for is_bid, level in levels:
            book.apply(is_bid, level.price, level.size)
            if level.size > 0.0:
                fragment = checksum_text(level.price_text) + checksum_text(level.size_text)
                self._text[is_bid][level.price] = (level.price_text, level.size_text, fragment)
            else:
                self._text[is_bid].pop(level.price, None)
            changes.append((is_bid, level.price, level.size))
        # Kraken sends no removal for a level pushed below the subscribed depth.
        n_bids, n_asks = book.depth()
        for is_bid, count in ((True, n_bids), (False, n_asks)):
            if count > self.depth:
                side = book.bids() if is_bid else book.asks()
                for price, _ in side[self.depth :]:
                    del self._text[is_bid][price]
                    changes.append((is_bid, price, 0.0))
        book.truncate(self.depth)
        return tuple(changes)


def parse_trades(message: Any, instrument_id: InstrumentId, ts_recv_ns: int) -> list[TradeTick]:
    """``[channelID, [[price, volume, time, side, orderType, misc], ...], "trade", pair]``.

    ``side`` is the taker's: ``b`` = buy aggressor, ``s`` = sell aggressor. v1 trades carry no
    trade id.
    """
    if not isinstance(message, list) or len(message) != 4 or not isinstance(message[1], list):
        raise MalformedMessage("trade frame is not [channelID, trades, 'trade', pair]")
    out = []
    for row in message[1]:
        if not isinstance(row, list) or len(row) < 4 or row[3] not in ("b", "s"):
            raise MalformedMessage(f"bad trade {row!r}")
        price = _decimal(row[0], "trade price")
        size = _decimal(row[1], "trade volume")
        if not price > 0.0 or not size > 0.0:
            raise MalformedMessage(f"trade with price {price} size {size}")
        out.append(
            TradeTick(
                instrument_id=instrument_id,
                ts_event_ns=decimal_to_ns(row[2]),
                ts_recv_ns=ts_recv_ns,
                price=price,
                size=size,
                aggressor=AggressorSide.BUYER if row[3] == "b" else AggressorSide.SELLER,
            )
        )
    return out


def parse_ticker(message: Any, instrument_id: InstrumentId, ts_recv_ns: int) -> QuoteTick:
    """``ticker`` ``b``/``a`` = ``[price, wholeLotVolume, lotVolume]`` → :class:`QuoteTick`.

    The v1 ticker carries no exchange time, so the receive time stands in for it.
    """
    if not isinstance(message, list) or len(message) != 4 or not isinstance(message[1], dict):
        raise MalformedMessage("ticker frame is not [channelID, {..}, 'ticker', pair]")
    bid, ask = message[1].get("b"), message[1].get("a")
    if not (isinstance(bid, list) and isinstance(ask, list) and len(bid) == 3 == len(ask)):
        raise MalformedMessage("ticker without b/a [price, wholeLotVolume, lotVolume]")
    return QuoteTick(
        instrument_id=instrument_id,
        ts_event_ns=ts_recv_ns,
        ts_recv_ns=ts_recv_ns,
        bid_price=_decimal(bid[0], "ticker bid"),
        bid_size=_decimal(bid[2], "ticker bid volume"),
        ask_price=_decimal(ask[0], "ticker ask"),
        ask_size=_decimal(ask[2], "ticker ask volume"),
    )


def frame_kind(message: Any) -> tuple[str, str]:
    """``(channel name, pair)`` of a v1 data frame, e.g. ``("book-1000", "XBT/CHF")``.

    Anything else (an event object, junk) gives ``("", "")``.
    """
    if isinstance(message, list) and len(message) >= 4:
        name, pair = message[-2], message[-1]
        if isinstance(name, str) and isinstance(pair, str):
            return name, pair
    return "", ""
