"""Orders and their lifecycle: an explicit state machine driven only by order events."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

import msgspec

from tradestack.core.ids import InstrumentId


class OrderSide(StrEnum):
    """Buy or sell."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        return 1 if self is OrderSide.BUY else -1


class OrderType(StrEnum):
    """How an order is priced."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"


class TimeInForce(StrEnum):
    """How long an order stays working."""

    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"
    DAY = "day"


class OrderStatus(StrEnum):
    """Where an order is in its lifecycle."""

    INITIALIZED = "initialized"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL

    @property
    def is_open(self) -> bool:
        """Submitted and not yet in a terminal status."""
        return self in _OPEN


_TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
_OPEN = frozenset({OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})

_S = OrderStatus
TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.INITIALIZED: frozenset({_S.SUBMITTED, _S.REJECTED, _S.CANCELED}),
    _S.SUBMITTED: frozenset(
        {_S.ACCEPTED, _S.REJECTED, _S.CANCELED, _S.PARTIALLY_FILLED, _S.FILLED, _S.EXPIRED}
    ),
    _S.ACCEPTED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED}),
    _S.PARTIALLY_FILLED: frozenset({_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCELED, _S.EXPIRED}),
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}


class IllegalOrderTransition(RuntimeError):
    """An order event that the state machine does not allow from the order's current status."""


class InvalidOrder(ValueError):
    """An order whose fields contradict each other (a limit without a price, qty <= 0, ...)."""


class Liquidity(StrEnum):
    """Whether a fill added (maker) or took (taker) liquidity."""

    MAKER = "maker"
    TAKER = "taker"


class OrderSubmitted(msgspec.Struct, frozen=True, gc=False):
    """The order left the strategy for the venue."""

    client_order_id: str
    ts_event_ns: int


class OrderAccepted(msgspec.Struct, frozen=True, gc=False):
    """The venue acknowledged the order and it is working."""

    client_order_id: str
    ts_event_ns: int
    venue_order_id: str = ""


class OrderRejected(msgspec.Struct, frozen=True, gc=False):
    """The order was refused; ``reason`` says why in words a person can act on."""

    client_order_id: str
    ts_event_ns: int
    reason: str


class OrderCanceled(msgspec.Struct, frozen=True, gc=False):
    """The order stopped working before it was fully filled."""

    client_order_id: str
    ts_event_ns: int
    reason: str = ""


class OrderExpired(msgspec.Struct, frozen=True, gc=False):
    """The order's time in force ran out."""

    client_order_id: str
    ts_event_ns: int


class Fill(msgspec.Struct, frozen=True, gc=False):
    """An execution: exact quantity, price and fee (fee in the quote currency, positive = paid)."""

    client_order_id: str
    instrument_id: InstrumentId
    side: OrderSide
    qty: Decimal
    price: Decimal
    fee: Decimal
    liquidity: Liquidity
    ts_event_ns: int
    fill_id: str = ""


OrderEvent = OrderSubmitted | OrderAccepted | OrderRejected | OrderCanceled | OrderExpired | Fill

_TARGET_STATUS: dict[type, OrderStatus] = {
    OrderSubmitted: OrderStatus.SUBMITTED,
    OrderAccepted: OrderStatus.ACCEPTED,
    OrderRejected: OrderStatus.REJECTED,
    OrderCanceled: OrderStatus.CANCELED,
    OrderExpired: OrderStatus.EXPIRED,
}


class Order:
    """An order request plus its state. Its status changes only through :meth:`apply`."""

    __slots__ = (
        "avg_fill_price",
        "client_order_id",
        "events",
        "filled_qty",
        "instrument_id",
        "order_type",
        "post_only",
        "price",
        "qty",
        "reduce_only",
        "side",
        "status",
        "tag",
        "time_in_force",
        "trigger_price",
        "triggered",
        "ts_init_ns",
        "venue_order_id",
    )

    def __init__(
        self,
        client_order_id: str,
        instrument_id: InstrumentId,
        side: OrderSide,
        qty: Decimal,
        order_type: OrderType = OrderType.MARKET,
        *,
        price: Decimal | None = None,
        trigger_price: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        reduce_only: bool = False,
        post_only: bool = False,
        ts_init_ns: int = 0,
        tag: str = "",
    ) -> None:
        if not isinstance(qty, Decimal) or not qty.is_finite() or qty <= 0:
            raise InvalidOrder(
                f"order {client_order_id}: qty must be a positive Decimal, got {qty!r}"
            )
        needs_price = order_type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        needs_trigger = order_type in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_price != (price is not None):
            what = "needs" if needs_price else "must not have"
            raise InvalidOrder(
                f"order {client_order_id}: a {order_type.value} order {what} a price"
            )
        if needs_trigger != (trigger_price is not None):
            what = "needs" if needs_trigger else "must not have"
            raise InvalidOrder(
                f"order {client_order_id}: a {order_type.value} order {what} a trigger_price"
            )
        for name, value in (("price", price), ("trigger_price", trigger_price)):
            if value is not None and (not value.is_finite() or value <= 0):
                raise InvalidOrder(f"order {client_order_id}: {name} must be positive, got {value}")
        if post_only and (
            order_type is not OrderType.LIMIT or time_in_force in (TimeInForce.IOC, TimeInForce.FOK)
        ):
            raise InvalidOrder(
                f"order {client_order_id}: post_only needs a resting limit order (not IOC/FOK)"
            )
        self.client_order_id = client_order_id
        self.instrument_id = instrument_id
        self.side = side
        self.qty = qty
        self.order_type = order_type
        self.price = price
        self.trigger_price = trigger_price
        self.time_in_force = time_in_force
        self.reduce_only = reduce_only
        self.post_only = post_only
        self.ts_init_ns = ts_init_ns
        self.tag = tag
        self.status = OrderStatus.INITIALIZED
        self.filled_qty = Decimal(0)
        self.avg_fill_price = Decimal(0)
        self.venue_order_id = ""
        self.triggered = False
        self.events: list[OrderEvent] = []

    @property
    def leaves_qty(self) -> Decimal:
        """Quantity still to fill."""
        return self.qty - self.filled_qty

    @property
    def is_open(self) -> bool:
        return self.status in _OPEN

    def apply(self, event: OrderEvent) -> None:
        """Advance the state machine; raises :class:`IllegalOrderTransition` on a forbidden step."""
        if event.client_order_id != self.client_order_id:
            raise IllegalOrderTransition(
                f"event for {event.client_order_id} applied to order {self.client_order_id}"
            )
        if isinstance(event, Fill):
            target = self._status_after_fill(event)
        else:
            target = _TARGET_STATUS[type(event)]
        if target not in TRANSITIONS[self.status]:
            raise IllegalOrderTransition(
                f"order {self.client_order_id}: {type(event).__name__} is not allowed "
                f"in status {self.status.value}"
            )
        if isinstance(event, Fill):
            total = self.filled_qty + event.qty
            self.avg_fill_price = (
                self.avg_fill_price * self.filled_qty + event.price * event.qty
            ) / total
            self.filled_qty = total
        elif isinstance(event, OrderAccepted):
            self.venue_order_id = event.venue_order_id
        self.status = target
        self.events.append(event)

    def _status_after_fill(self, fill: Fill) -> OrderStatus:
        if fill.side is not self.side or fill.instrument_id != self.instrument_id:
            raise IllegalOrderTransition(
                f"order {self.client_order_id}: fill side/instrument does not match the order"
            )
        if fill.qty <= 0 or fill.qty > self.leaves_qty:
            raise IllegalOrderTransition(
                f"order {self.client_order_id}: fill of {fill.qty} exceeds leaves {self.leaves_qty}"
            )
        return OrderStatus.FILLED if fill.qty == self.leaves_qty else OrderStatus.PARTIALLY_FILLED

    def __repr__(self) -> str:
        px = f" @ {self.price}" if self.price is not None else ""
        return (
            f"Order({self.client_order_id} {self.side.value} {self.qty} {self.instrument_id} "
            f"{self.order_type.value}{px} {self.status.value})"
        )
