"""What the order manager needs from a venue, and the four ways a request can end badly.

A gateway (ccxt for crypto, alpaca-py for US stocks, the simulated venue for paper) sorts every
failure into exactly one class, because each calls for a different action:

* :class:`VenueRejected`: the venue read the request and said no (bad price, no funds): final;
* :class:`RateLimited`: the venue did not process it (HTTP 429/418): wait ``retry_after_s``,
  then the same request may go again;
* :class:`UnknownOutcome`: a timeout, a reset connection or a 5xx: the order may or may not
  exist: look it up by client order id, never reject it locally, never resend it blindly;
* :class:`OrderNotFound`: a lookup by client order id found no such order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import Liquidity, Order, OrderSide, OrderStatus


class VenueRejected(Exception):
    """The venue refused the request; ``reason`` is its words."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RateLimited(Exception):
    """The venue asked to slow down and did not process the request."""

    def __init__(self, retry_after_s: float, detail: str = "") -> None:
        super().__init__(f"rate limited, retry after {retry_after_s:g} s {detail}".strip())
        self.retry_after_s = retry_after_s


class UnknownOutcome(Exception):
    """The request may or may not have taken effect (timeout, reset, 5xx)."""


class OrderNotFound(Exception):
    """The venue has no order with this client order id."""


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """An order as the venue reports it (the request's fields where the answer carries them:
    reconciliation needs them for orders the local state does not know)."""

    client_order_id: str
    venue_order_id: str
    status: OrderStatus
    filled_qty: Decimal
    reason: str = ""
    instrument_id: InstrumentId | None = None
    side: OrderSide | None = None
    qty: Decimal | None = None
    price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class VenueTrade:
    """One execution as the venue reports it, with its venue-wide trade id.

    ``fee`` is the whole fee in ``fee_currency`` (the quote); ``base_fee`` is the part of it the
    venue took in the traded asset itself (a spot buy on Binance pays in BTC), which the account
    then holds less of.
    """

    trade_id: str
    client_order_id: str
    qty: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    liquidity: Liquidity
    ts_event_ns: int
    base_fee: Decimal = Decimal(0)


class VenueGateway(Protocol):
    """The order side of one venue account (see the module docstring for the errors)."""

    name: str

    async def submit(self, order: Order) -> VenueOrder: ...

    async def cancel(self, client_order_id: str, instrument_id: InstrumentId) -> VenueOrder: ...

    async def fetch_order(
        self, client_order_id: str, instrument_id: InstrumentId
    ) -> VenueOrder: ...

    async def fetch_trades(
        self, client_order_id: str, instrument_id: InstrumentId
    ) -> list[VenueTrade]: ...


class VenueAccount(Protocol):
    """The account reads reconciliation needs: what is open and what is held.

    ``fetch_positions`` answers for every instrument asked (an explicit zero when flat): an
    instrument missing from the answer is "not reported", never "flat".
    """

    async def fetch_open_orders(
        self, instrument_ids: Sequence[InstrumentId]
    ) -> list[VenueOrder]: ...

    async def fetch_positions(
        self, instrument_ids: Sequence[InstrumentId]
    ) -> dict[InstrumentId, Decimal]: ...


class TradingAccount(VenueGateway, VenueAccount, Protocol):
    """A venue's order side and account reads together: what a live session talks to."""

    async def close(self) -> None: ...
