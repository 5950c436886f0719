"""Binance spot, USD-M and COIN-M: diff-depth book sync (``U``/``u``/``pu``) and normalizers.

Book rules, from Binance's "how to manage a local order book correctly":

spot
    buffer diffs; take a REST snapshot ``lastUpdateId = L``; drop diffs with ``u <= L``; the
    first applied diff must straddle ``L + 1`` (``U <= L + 1 <= u``); every later diff must
    start right after the previous one (``U == previous u + 1``).
futures (USD-M and COIN-M)
    drop diffs with ``u < L``; the first applied diff must straddle ``L`` (``U <= L <= u``, or
    name it: ``pu == L``); every later diff must name the previous one (``pu == previous u``).

A diff that ends at or before the last applied one is a duplicate and is dropped. Anything
else is a gap: the book goes stale and asks for a new snapshot; diffs keep being buffered so
the next snapshot can be joined without waiting.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from tradestack.core.events import AggressorSide, FundingRate, QuoteTick, TradeTick
from tradestack.core.ids import InstrumentId
from tradestack.data.book.sync import (
    BookSync,
    BookUpdate,
    MalformedMessage,
    SyncState,
    parse_levels,
)

MS = 1_000_000


class BinanceBookSync(BookSync):
    """Keeps one Binance symbol's book from REST snapshots plus the diff-depth stream."""

    def __init__(
        self, instrument_id: InstrumentId, *, futures: bool, max_buffer: int = 10_000
    ) -> None:
        super().__init__(instrument_id, max_buffer=max_buffer)
        self.futures = futures
        self._buffer: deque[tuple[dict[str, Any], int]] = deque(maxlen=max_buffer)
        self._last_u: int | None = None
        self._snapshot_id = 0
        self._awaiting_first = False
        self._newest_event_ns = 0

    def reset(self) -> None:
        super().reset()
        self._buffer.clear()
        self._last_u = None
        self._awaiting_first = False

    def on_snapshot(self, body: dict[str, Any], ts_recv_ns: int) -> list[BookUpdate]:
        """Load a REST ``/depth`` body, then join the buffered diffs; returns what was applied."""
        try:
            last_id = int(body["lastUpdateId"])
            bids = parse_levels(body["bids"], "snapshot bids")
            asks = parse_levels(body["asks"], "snapshot asks")
        except (KeyError, TypeError, ValueError) as exc:
            self.stats.malformed += 1
            raise MalformedMessage(f"bad depth snapshot: {exc}") from exc
        # Diffs the snapshot already contains are dropped; the first one after it must join.
        covered = [(m, r) for m, r in self._buffer if not self._after_snapshot(m, last_id)]
        pending = [(m, r) for m, r in self._buffer if self._after_snapshot(m, last_id)]
        if pending and not self._joins(pending[0][0], last_id):
            # Older than the diffs we hold: publishing it would show a book we cannot continue.
            self.stats.old_dropped += 1
            self.mark_stale(
                f"snapshot {last_id} is older than buffered diff U={pending[0][0]['U']}"
            )
            return []
        self.stats.old_dropped += len(covered)
        # A spot snapshot carries no time. It must not sort after the diffs joined to it, nor
        # before the ones it contains: take the newest exchange time it covers, else the first
        # joined diff's, else the newest seen (the local clock may be skewed from the exchange's).
        ts_event = int(body.get("T") or body.get("E") or 0) * MS
        if not ts_event:
            covered_ts = [_event_ns(m) for m, _ in covered]
            ts_event = max(covered_ts, default=0) or (
                _event_ns(pending[0][0]) if pending else self._newest_event_ns
            )
        self._buffer.clear()
        self._snapshot_id = last_id
        self._last_u = last_id
        self._awaiting_first = True
        updates = self._load_snapshot(
            bids, asks, sequence=last_id, ts_event_ns=ts_event or ts_recv_ns, ts_recv_ns=ts_recv_ns
        )
        return self._join(updates, pending, self._on_diff, self._buffer)

    def _after_snapshot(self, message: dict[str, Any], last_id: int) -> bool:
        """Whether a diff reaches past snapshot ``last_id`` (futures keep ``u == L``)."""
        u = int(message["u"])
        return u >= last_id if self.futures else u > last_id

    def _joins(self, message: dict[str, Any], last_id: int) -> bool:
        """Whether the first diff after snapshot ``last_id`` continues it."""
        first, last = int(message["U"]), int(message["u"])
        target = last_id if self.futures else last_id + 1
        prev = message.get("pu")
        return first <= target <= last or (
            self.futures and prev is not None and int(prev) == last_id
        )

    def on_message(self, message: Any, ts_recv_ns: int) -> BookUpdate | None:
        """Feed one ``depthUpdate`` payload (the ``data`` of a combined-stream frame)."""
        if not isinstance(message, dict):
            raise MalformedMessage("depth update is not an object")
        return self._on_diff(message, ts_recv_ns)

    def _on_diff(self, message: dict[str, Any], ts_recv_ns: int) -> BookUpdate | None:
        first_id = int(message["U"])
        last_id = int(message["u"])
        prev_id = int(message["pu"]) if "pu" in message else None
        bids = parse_levels(message["b"], "bids")
        asks = parse_levels(message["a"], "asks")
        if first_id > last_id:
            raise MalformedMessage(f"U {first_id} > u {last_id}")
        self._newest_event_ns = max(self._newest_event_ns, _event_ns(message))
        if self.state is not SyncState.LIVE:
            self._buffer.append((message, ts_recv_ns))
            self.stats.buffered += 1
            return None
        assert self._last_u is not None
        if self._awaiting_first:
            snap = self._snapshot_id
            if not self._after_snapshot(message, snap):
                self.stats.old_dropped += 1
                return None
            # A futures diff that names the snapshot as its predecessor joins it exactly.
            if not self._joins(message, snap):
                self.mark_stale(f"first diff U={first_id} u={last_id} misses snapshot {snap}")
                self._buffer.append((message, ts_recv_ns))
                return None
            self._awaiting_first = False
        else:
            if last_id <= self._last_u:
                self.stats.old_dropped += 1
                return None
            joined = prev_id == self._last_u if self.futures else first_id == self._last_u + 1
            if not joined:
                self.mark_stale(
                    f"gap: previous u={self._last_u}, got U={first_id} u={last_id} pu={prev_id}"
                )
                self._buffer.append((message, ts_recv_ns))
                return None
        self._last_u = last_id
        changes = self._apply_levels(bids, asks)
        return self._publish(
            changes,
            ts_event_ns=_event_ns(message),
            ts_recv_ns=ts_recv_ns,
            sequence=last_id,
            is_snapshot=False,
        )


def _event_ns(message: dict[str, Any]) -> int:
    """A diff's exchange time: transaction time ``T`` (futures) or event time ``E``, in ns."""
    return int(message.get("T") or message.get("E") or 0) * MS


def unwrap(frame: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(stream name, payload)`` of a combined-stream frame (or of a raw-stream payload)."""
    if "stream" in frame and "data" in frame:
        return str(frame["stream"]), frame["data"]
    return "", frame


def event_type(stream: str, payload: dict[str, Any]) -> str:
    """The event name: ``depthUpdate``, ``trade``, ``aggTrade``, ``bookTicker``, ``kline``..."""
    kind = payload.get("e")
    if kind:
        return str(kind)
    if stream.endswith("@bookTicker") or {"u", "b", "a", "B", "A"} <= payload.keys():
        return "bookTicker"
    return ""


def parse_trade(payload: dict[str, Any], instrument_id: InstrumentId, ts_recv_ns: int) -> TradeTick:
    """``trade``/``aggTrade`` → :class:`TradeTick`; ``m`` (buyer is maker) = seller aggressed."""
    price = float(payload["p"])
    size = float(payload["q"])
    if not price > 0.0 or not size > 0.0:
        raise MalformedMessage(f"trade with price {price} size {size}")
    trade_id = payload.get("t", payload.get("a"))
    return TradeTick(
        instrument_id=instrument_id,
        ts_event_ns=int(payload["T"]) * MS,
        ts_recv_ns=ts_recv_ns,
        price=price,
        size=size,
        aggressor=AggressorSide.SELLER if payload["m"] else AggressorSide.BUYER,
        trade_id=str(trade_id),
    )


def parse_book_ticker(
    payload: dict[str, Any], instrument_id: InstrumentId, ts_recv_ns: int
) -> QuoteTick:
    """``bookTicker`` → :class:`QuoteTick`; spot frames carry no time, so receive time is used."""
    ts = payload.get("T") or payload.get("E")
    return QuoteTick(
        instrument_id=instrument_id,
        ts_event_ns=int(ts) * MS if ts else ts_recv_ns,
        ts_recv_ns=ts_recv_ns,
        bid_price=float(payload["b"]),
        bid_size=float(payload["B"]),
        ask_price=float(payload["a"]),
        ask_size=float(payload["A"]),
    )


def parse_mark_price(
    payload: dict[str, Any], instrument_id: InstrumentId, ts_recv_ns: int
) -> FundingRate:
    """``markPriceUpdate`` → :class:`FundingRate` (``r`` rate, ``T`` next funding time)."""
    return FundingRate(
        instrument_id=instrument_id,
        ts_event_ns=int(payload["E"]) * MS,
        ts_recv_ns=ts_recv_ns,
        rate_fraction=float(payload["r"]),
        next_funding_ns=int(payload["T"]) * MS,
        mark_price=float(payload["p"]),
    )
