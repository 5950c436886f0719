"""Market-data events; timestamps are integer nanoseconds since the epoch, UTC.

Every event carries the exchange time (``ts_event_ns``) and the local receive time (``ts_recv_ns``).
Prices and sizes are float64: market data is measurement, not money. Events hold no references
that could form cycles, so they are excluded from the garbage collector (``gc=False``).
"""

from __future__ import annotations

from enum import StrEnum

import msgspec

from tradestack.core.ids import InstrumentId


class Bar(msgspec.Struct, frozen=True, gc=False):
    """One OHLCV bar; ``ts_event_ns`` is its label (the open time); delivered when complete."""

    instrument_id: InstrumentId
    ts_event_ns: int
    ts_recv_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class QuoteTick(msgspec.Struct, frozen=True, gc=False):
    """Best bid and ask with their sizes."""

    instrument_id: InstrumentId
    ts_event_ns: int
    ts_recv_ns: int
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float


class AggressorSide(StrEnum):
    """Which side took liquidity in a trade."""

    BUYER = "buyer"
    SELLER = "seller"
    UNKNOWN = "unknown"


class TradeTick(msgspec.Struct, frozen=True, gc=False):
    """One public trade print."""

    instrument_id: InstrumentId
    ts_event_ns: int
    ts_recv_ns: int
    price: float
    size: float
    aggressor: AggressorSide
    trade_id: str = ""


class BookSide(StrEnum):
    """Side of an order book level."""

    BID = "bid"
    ASK = "ask"


class OrderBookDelta(msgspec.Struct, frozen=True, gc=False):
    """One level change: ``size == 0`` removes the level. ``sequence`` is the venue's update id."""

    instrument_id: InstrumentId
    ts_event_ns: int
    ts_recv_ns: int
    side: BookSide
    price: float
    size: float
    sequence: int = 0


class OrderBookSnapshot(msgspec.Struct, frozen=True, gc=False):
    """Full depth at one instant: ``bids`` descending and ``asks`` ascending as (price, size)."""

    instrument_id: InstrumentId
    ts_event_ns: int
    ts_recv_ns: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]
    sequence: int = 0


class FundingRate(msgspec.Struct, frozen=True, gc=False):
    """A perpetual's funding rate (a fraction per funding interval) and when it is next charged."""

    instrument_id: InstrumentId
    ts_event_ns: int
    ts_recv_ns: int
    rate_fraction: float
    next_funding_ns: int = 0
    mark_price: float = 0.0


MarketEvent = Bar | QuoteTick | TradeTick | OrderBookDelta | OrderBookSnapshot | FundingRate
