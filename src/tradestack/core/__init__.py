"""Domain model: instruments, market-data events, orders, fills, positions, ids, clocks. No I/O."""

from tradestack.core.clock import Clock, LiveClock, SimulatedClock
from tradestack.core.events import (
    AggressorSide,
    Bar,
    BookSide,
    FundingRate,
    MarketEvent,
    OrderBookDelta,
    OrderBookSnapshot,
    QuoteTick,
    TradeTick,
)
from tradestack.core.ids import InstrumentId, client_order_id
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.orders import (
    Fill,
    IllegalOrderTransition,
    InvalidOrder,
    Liquidity,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderSubmitted,
    OrderType,
    TimeInForce,
)
from tradestack.core.positions import Position
from tradestack.core.series import BarSeries

__all__ = [
    "AggressorSide",
    "Bar",
    "BarSeries",
    "BookSide",
    "Clock",
    "Fill",
    "FundingRate",
    "IllegalOrderTransition",
    "Instrument",
    "InstrumentId",
    "InstrumentKind",
    "InvalidOrder",
    "Liquidity",
    "LiveClock",
    "MarketEvent",
    "Order",
    "OrderAccepted",
    "OrderBookDelta",
    "OrderBookSnapshot",
    "OrderCanceled",
    "OrderEvent",
    "OrderExpired",
    "OrderRejected",
    "OrderSide",
    "OrderStatus",
    "OrderSubmitted",
    "OrderType",
    "Position",
    "QuoteTick",
    "SimulatedClock",
    "TimeInForce",
    "TradeTick",
    "client_order_id",
]
