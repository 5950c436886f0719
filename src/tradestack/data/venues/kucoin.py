"""KuCoin spot: ``/market/level2`` book sync (``sequenceStart``/``sequenceEnd``) and normalizers.

Book rules, from KuCoin's "Level-2 market data" guide:

- subscribe to ``/market/level2:<symbol>`` and buffer its ``trade.l2update`` messages;
- take a REST snapshot (``sequence = S``);
- replay the buffer, then the stream: every change carries its own sequence, and only changes
  with a sequence above the book's are applied (so a message straddling ``S`` is applied
  partly); a message that ends at or before the book's sequence is a duplicate and is dropped;
- every message must continue the book (``sequenceStart <= last + 1``): otherwise it is a gap,
  the book goes stale and asks for a new snapshot, and messages keep being buffered so the next
  snapshot can be joined without waiting;
- a change with price ``"0"`` only advances the sequence; size ``0`` removes the level.

Times: ``/market/match`` ``time`` is a nanosecond string, ``/market/ticker`` ``time`` and the
snapshot's ``time`` are milliseconds (ints); ``trade.l2update`` carried no time in 2021 (newer
messages add a millisecond ``time``, used when present).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from tradestack.core.events import AggressorSide, QuoteTick, TradeTick
from tradestack.core.ids import InstrumentId
from tradestack.data.book.sync import (
    BookSync,
    BookUpdate,
    MalformedMessage,
    SyncState,
    parse_levels,
    snapshot_first,
)

MS = 1_000_000

Change = tuple[float, float, int]  # price, size, sequence


@dataclass(frozen=True, slots=True)
class L2Delta:
    """One parsed ``trade.l2update``: the sequence range it covers and its changes."""

    start: int
    end: int
    bids: tuple[Change, ...]
    asks: tuple[Change, ...]
    ts_event_ns: int


def _int(value: Any, what: str) -> int:
    """An exact integer from an int or a decimal-digit string (never through float)."""
    if isinstance(value, bool):
        raise MalformedMessage(f"{what}: expected an integer, got {value!r}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise MalformedMessage(f"{what}: expected an integer, got {value!r}")


def ms_to_ns(value: Any, what: str = "time") -> int:
    """A millisecond timestamp (int or digit string) as exact integer nanoseconds."""
    return _int(value, what) * MS


def ns_value(value: Any, what: str = "time") -> int:
    """A nanosecond timestamp (int or digit string) as an exact integer."""
    return _int(value, what)


def _changes(raw: Any, what: str, start: int, end: int) -> tuple[Change, ...]:
    if not isinstance(raw, list):
        raise MalformedMessage(f"{what}: expected a list of changes")
    out: list[Change] = []
    for level, change in zip(parse_levels(raw, what), raw, strict=True):
        if len(change) < 3:
            raise MalformedMessage(f"{what}: change {change!r} has no sequence")
        sequence = _int(change[2], f"{what} sequence")
        if not start <= sequence <= end:
            raise MalformedMessage(f"{what}: sequence {sequence} outside [{start}, {end}]")
        out.append((level[0], level[1], sequence))
    return tuple(out)


def parse_l2update(data: Any, ts_recv_ns: int = 0) -> L2Delta:
    """The ``data`` of a ``trade.l2update`` message → :class:`L2Delta`; raises on junk."""
    if not isinstance(data, dict):
        raise MalformedMessage("l2update data is not an object")
    start = _int(data["sequenceStart"], "sequenceStart")
    end = _int(data["sequenceEnd"], "sequenceEnd")
    if start > end:
        raise MalformedMessage(f"sequenceStart {start} > sequenceEnd {end}")
    changes = data["changes"]
    if not isinstance(changes, dict):
        raise MalformedMessage("l2update changes is not an object")
    bids = _changes(changes.get("bids", []), "bids", start, end)
    asks = _changes(changes.get("asks", []), "asks", start, end)
    ts = data.get("time")
    return L2Delta(start, end, bids, asks, ms_to_ns(ts) if ts is not None else ts_recv_ns)


class KucoinBookSync(BookSync):
    """Keeps one KuCoin spot symbol's book from REST snapshots plus ``/market/level2``."""

    def __init__(self, instrument_id: InstrumentId, *, max_buffer: int = 10_000) -> None:
        super().__init__(instrument_id, max_buffer=max_buffer)
        self._buffer: deque[tuple[L2Delta, int]] = deque(maxlen=max_buffer)
        self._last: int | None = None
        self._updates_timed = False

    @property
    def last_sequence(self) -> int | None:
        """The sequence the book stands at (``None`` before the first snapshot)."""
        return self._last

    def reset(self) -> None:
        super().reset()
        self._buffer.clear()
        self._last = None

    def on_snapshot(self, body: dict[str, Any], ts_recv_ns: int) -> list[BookUpdate]:
        """Load a REST level-2 body (``{"code", "data"}`` or its ``data``), join the buffer."""
        try:
            data = body["data"] if "data" in body and "sequence" not in body else body
            sequence = _int(data["sequence"], "snapshot sequence")
            bids = parse_levels(data["bids"], "snapshot bids")
            asks = parse_levels(data["asks"], "snapshot asks")
            ts = data.get("time")
            # Exchange time only when the updates carry it too: old-format updates are stamped
            # on receipt, and mixing the two clocks would put the snapshot out of order.
            ts_event = ms_to_ns(ts) if ts and self._updates_timed else ts_recv_ns
        except (MalformedMessage, KeyError, TypeError, ValueError) as exc:
            self.stats.malformed += 1
            raise MalformedMessage(f"bad level-2 snapshot: {exc}") from exc
        self._last = sequence
        updates = self._load_snapshot(
            bids, asks, sequence=sequence, ts_event_ns=ts_event, ts_recv_ns=ts_recv_ns
        )
        # Faults can deliver messages out of order: join them in sequence order.
        buffered = sorted(self._buffer, key=lambda item: (item[0].start, item[0].end))
        self._buffer.clear()
        return snapshot_first(self._join(updates, buffered, self._on_delta, self._buffer))

    def on_message(self, message: Any, ts_recv_ns: int) -> BookUpdate | None:
        """Feed the ``data`` of one ``trade.l2update`` message."""
        delta = parse_l2update(message, ts_recv_ns)
        self._updates_timed = isinstance(message, dict) and message.get("time") is not None
        return self._on_delta(delta, ts_recv_ns)

    def _on_delta(self, delta: L2Delta, ts_recv_ns: int) -> BookUpdate | None:
        if self.state is not SyncState.LIVE:
            self._buffer.append((delta, ts_recv_ns))
            self.stats.buffered += 1
            return None
        last = self._last
        assert last is not None
        if delta.end <= last:
            self.stats.old_dropped += 1
            return None
        if delta.start > last + 1:
            self.mark_stale(f"gap: book at {last}, got sequenceStart={delta.start}")
            self._buffer.append((delta, ts_recv_ns))
            return None
        bids = [(p, s) for p, s, seq in delta.bids if seq > last and p > 0.0]
        asks = [(p, s) for p, s, seq in delta.asks if seq > last and p > 0.0]
        self._last = delta.end
        return self._publish(
            self._apply_levels(bids, asks),
            ts_event_ns=delta.ts_event_ns,
            ts_recv_ns=ts_recv_ns,
            sequence=delta.end,
            is_snapshot=False,
        )


def topic_symbol(message: dict[str, Any]) -> str:
    """``/market/level2:BTC-USDT`` → ``BTC-USDT`` (the market id a frame is about)."""
    data = message.get("data")
    if isinstance(data, dict) and isinstance(data.get("symbol"), str):
        return str(data["symbol"])
    return str(message.get("topic", "")).rpartition(":")[2]


def parse_match(data: dict[str, Any], instrument_id: InstrumentId, ts_recv_ns: int) -> TradeTick:
    """``trade.l3match`` → :class:`TradeTick`; ``side`` is the taker's, ``time`` is in ns."""
    price = float(data["price"])
    size = float(data["size"])
    if not price > 0.0 or not size > 0.0:
        raise MalformedMessage(f"match with price {price} size {size}")
    side = data["side"]
    if side not in ("buy", "sell"):
        raise MalformedMessage(f"match with side {side!r}")
    return TradeTick(
        instrument_id=instrument_id,
        ts_event_ns=ns_value(data["time"], "match time"),
        ts_recv_ns=ts_recv_ns,
        price=price,
        size=size,
        aggressor=AggressorSide.BUYER if side == "buy" else AggressorSide.SELLER,
        trade_id=str(data.get("tradeId", "")),
    )


def parse_ticker(data: dict[str, Any], instrument_id: InstrumentId, ts_recv_ns: int) -> QuoteTick:
    """``trade.ticker`` (``/market/ticker``) → :class:`QuoteTick`; ``time`` is in ms."""
    ts = data.get("time")
    bid, ask = float(data["bestBid"]), float(data["bestAsk"])
    if not (bid == bid and ask == ask):
        raise MalformedMessage("ticker with NaN prices")
    return QuoteTick(
        instrument_id=instrument_id,
        ts_event_ns=ms_to_ns(ts, "ticker time") if ts is not None else ts_recv_ns,
        ts_recv_ns=ts_recv_ns,
        bid_price=bid,
        bid_size=float(data["bestBidSize"]),
        ask_price=ask,
        ask_size=float(data["bestAskSize"]),
    )
