"""The order manager's gateway to Alpaca (US stocks) over alpaca-py's ``TradingClient``.

alpaca-py is synchronous: every call runs in a worker thread (``asyncio.to_thread``). Its
failures are sorted into the gateway's four classes (see ``gateway``):

* ``APIError`` with HTTP 429 → :class:`RateLimited`, waiting what ``Retry-After`` says
  (``default_retry_after_s`` when it says nothing);
* HTTP 5xx, and any ``requests`` failure (a timeout, a refused or dropped connection, an answer
  that is not JSON) or an answer alpaca-py cannot parse → :class:`UnknownOutcome`;
* HTTP 404 → :class:`OrderNotFound`;
* any other 4xx (403 insufficient buying power, 422 invalid order, ...) → :class:`VenueRejected`.

A submit Alpaca refuses with 422 ``client_order_id must be unique`` means the order already
exists: it is looked up by client order id and returned, so a resend is idempotent. Orders are
addressed by client order id; Alpaca's order id (which cancels and fill activities name) is
learnt from the answers and cached. Trades are the account's ``FILL`` activities, the activity
id being the trade id; Alpaca charges no commission on them and does not say maker or taker, so
fees are zero and liquidity is taker. Quantities and prices go out as alpaca-py's floats: one a
float would not carry exactly is refused here, never rounded.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import QueryOrderStatus
from alpaca.trading.enums import TimeInForce as AlpacaTif
from alpaca.trading.models import Order as AlpacaOrder
from alpaca.trading.models import Position
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest
from pydantic import ValidationError
from requests.adapters import HTTPAdapter

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import Liquidity, Order, OrderSide, OrderStatus, OrderType
from tradestack.data.venues.coinbase import iso8601_ns
from tradestack.execution.oms.gateway import (
    OrderNotFound,
    RateLimited,
    UnknownOutcome,
    VenueOrder,
    VenueRejected,
    VenueTrade,
)

T = TypeVar("T")
_PAGE = 100  # Alpaca's largest activities page
_DUPLICATE = 40010001
_WORKING = {
    "new", "accepted", "pending_new", "accepted_for_bidding", "pending_cancel",
    "pending_replace", "pending_review", "partially_filled", "held", "stopped", "calculated",
    "suspended", "done_for_day",
}  # fmt: skip
_FINAL = {
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "replaced": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


class AlpacaGateway:
    """One Alpaca account behind the order manager, through an alpaca-py ``TradingClient``.

    ``client`` is built by the caller with its credentials (see :func:`alpaca_gateway`, which
    also sets a request timeout and turns alpaca-py's own 429 retries off); ``name`` is the
    venue name fills are stored under and ``venue`` the ``InstrumentId.venue`` it trades
    (``InstrumentId("AAPL", "alpaca")``).
    """

    def __init__(
        self,
        client: TradingClient,
        *,
        name: str = "alpaca",
        venue: str = "alpaca",
        default_retry_after_s: float = 1.0,
    ) -> None:
        if default_retry_after_s <= 0:
            raise ValueError(f"default_retry_after_s must be > 0, got {default_retry_after_s}")
        self.client = client
        self.name = name
        self.venue = venue
        self.default_retry_after_s = default_retry_after_s
        self._venue_ids: dict[str, str] = {}

    # -- VenueGateway -------------------------------------------------------------------------
    async def submit(self, order: Order) -> VenueOrder:
        coid = order.client_order_id
        try:
            request = self._request(order)
        except ValueError as exc:
            raise VenueRejected(str(exc)) from exc
        try:
            raw = await asyncio.to_thread(self.client.submit_order, request)
        except APIError as exc:
            code, message = _error_body(exc)
            if exc.status_code == 422 and code == _DUPLICATE and "must be unique" in message:
                return await self._existing(order)
            raise self._translate(exc, f"submit {coid}") from exc
        except (requests.RequestException, ValidationError) as exc:
            raise self._translate(exc, f"submit {coid}") from exc
        return self._venue_order(_order(raw), order.instrument_id)

    async def cancel(self, client_order_id: str, instrument_id: InstrumentId) -> VenueOrder:
        venue_id = await self._venue_id(client_order_id, instrument_id)
        what = f"cancel {client_order_id}"
        await self._call(what, self.client.cancel_order_by_id, venue_id)
        raw = await self._call(what, self.client.get_order_by_id, venue_id)
        return self._venue_order(_order(raw), instrument_id)

    async def fetch_order(self, client_order_id: str, instrument_id: InstrumentId) -> VenueOrder:
        self._check_venue(instrument_id)
        raw = await self._call(
            f"fetch_order {client_order_id}", self.client.get_order_by_client_id, client_order_id
        )
        return self._venue_order(_order(raw), instrument_id)

    async def fetch_trades(
        self, client_order_id: str, instrument_id: InstrumentId
    ) -> list[VenueTrade]:
        venue_id = await self._venue_id(client_order_id, instrument_id)
        found: list[Mapping[str, Any]] = []
        params: dict[str, Any] = {"order_id": venue_id, "direction": "asc", "page_size": _PAGE}
        while True:
            page = await self._call(
                f"fetch_trades {client_order_id}",
                self.client.get,
                "/account/activities/FILL",
                params,
            )
            if not isinstance(page, list):
                raise UnknownOutcome(f"fetch_trades {client_order_id}: not a list: {page!r}")
            found += [a for a in page if str(a.get("order_id")) == venue_id]
            if len(page) < _PAGE:
                break
            params["page_token"] = page[-1]["id"]
        return [_venue_trade(client_order_id, a) for a in found]

    # -- reconciliation reads -----------------------------------------------------------------
    async def fetch_open_orders(self, instrument_ids: Sequence[InstrumentId]) -> list[VenueOrder]:
        """The account's open orders in these instruments (any client order id)."""
        by_symbol = {self._symbol(i): i for i in instrument_ids}
        if not by_symbol:
            return []
        query = GetOrdersRequest(status=QueryOrderStatus.OPEN, symbols=sorted(by_symbol), limit=500)
        raws = await self._call("fetch_open_orders", self.client.get_orders, query)
        orders = [_order(r) for r in raws] if isinstance(raws, list) else []
        return [
            self._venue_order(o, by_symbol.get(o.symbol or ""))
            for o in orders
            if o.symbol in by_symbol
        ]

    async def fetch_positions(
        self, instrument_ids: Sequence[InstrumentId]
    ) -> dict[InstrumentId, Decimal]:
        """Each instrument's position in shares (short negative), an explicit zero when flat."""
        symbols = {self._symbol(i): i for i in instrument_ids}
        raws = await self._call("fetch_positions", self.client.get_all_positions)
        held: dict[str, Decimal] = {}
        for raw in raws if isinstance(raws, list) else []:
            if isinstance(raw, Position):
                qty = abs(Decimal(raw.qty))
                held[raw.symbol] = -qty if raw.side.value == "short" else qty
        return {inst: held.get(symbol, Decimal(0)) for symbol, inst in symbols.items()}

    # -- internals ----------------------------------------------------------------------------
    async def close(self) -> None:
        """Close the HTTP session of alpaca-py's client."""
        await asyncio.to_thread(self.client._session.close)

    def _check_venue(self, instrument_id: InstrumentId) -> None:
        if instrument_id.venue != self.venue:
            raise ValueError(
                f"instrument {instrument_id} is not on venue {self.venue!r} of gateway {self.name}"
            )

    def _symbol(self, instrument_id: InstrumentId) -> str:
        self._check_venue(instrument_id)
        return instrument_id.symbol

    def _request(self, order: Order) -> MarketOrderRequest | LimitOrderRequest:
        """alpaca-py's request for an order, or a ValueError saying why there is none."""
        coid = order.client_order_id
        if order.reduce_only or order.post_only:
            raise ValueError(f"order {coid}: Alpaca offers no reduce-only or post-only orders")
        fields: dict[str, Any] = {
            "symbol": self._symbol(order.instrument_id),
            "qty": _exact_float("quantity", order.qty),
            "side": AlpacaSide(order.side.value),
            "time_in_force": AlpacaTif(order.time_in_force.value),
            "client_order_id": coid,
        }
        if order.order_type is OrderType.MARKET:
            return MarketOrderRequest(**fields)
        if order.order_type is OrderType.LIMIT and order.price is not None:
            return LimitOrderRequest(**fields, limit_price=_exact_float("price", order.price))
        raise ValueError(
            f"order {coid}: {order.order_type.value} orders are not supported by the Alpaca "
            "gateway (market and limit are)"
        )

    async def _venue_id(self, client_order_id: str, instrument_id: InstrumentId) -> str:
        known = self._venue_ids.get(client_order_id)
        if known is not None:
            self._check_venue(instrument_id)
            return known
        return (await self.fetch_order(client_order_id, instrument_id)).venue_order_id

    async def _existing(self, order: Order) -> VenueOrder:
        try:
            return await self.fetch_order(order.client_order_id, order.instrument_id)
        except OrderNotFound as exc:
            raise UnknownOutcome(
                f"submit {order.client_order_id}: Alpaca calls the client order id taken but "
                "finds no order under it"
            ) from exc

    async def _call(self, what: str, fn: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.to_thread(fn, *args)
        except (APIError, requests.RequestException, ValidationError) as exc:
            raise self._translate(exc, what) from exc

    def _translate(self, exc: Exception, what: str) -> Exception:
        if not isinstance(exc, APIError):
            return UnknownOutcome(f"{what}: {type(exc).__name__}: {exc}")
        status = exc.status_code or 0
        code, message = _error_body(exc)
        if status == 429:
            return RateLimited(self._retry_after(exc), f"({what})")
        if status >= 500 or status < 400:
            return UnknownOutcome(f"{what}: HTTP {status} {code}: {message}")
        if status == 404:
            return OrderNotFound(f"{what}: {message}")
        return VenueRejected(f"HTTP {status} {code}: {message}")

    def _retry_after(self, exc: APIError) -> float:
        response = exc.response
        value = response.headers.get("Retry-After") if response is not None else None
        try:
            seconds = float(value) if value is not None else -1.0
        except ValueError:  # an HTTP date: not worth parsing, wait the default
            seconds = -1.0
        return seconds if seconds >= 0 else self.default_retry_after_s

    def _venue_order(self, raw: AlpacaOrder, instrument_id: InstrumentId | None) -> VenueOrder:
        coid = raw.client_order_id
        venue_id = str(raw.id)
        self._venue_ids[coid] = venue_id
        filled = _decimal(raw.filled_qty)
        state = raw.status.value
        if state in _WORKING:
            status = OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.ACCEPTED
        elif state in _FINAL:
            status = _FINAL[state]
        else:
            raise UnknownOutcome(f"order {coid}: unrecognised status {state!r}")
        reason = "" if state in _WORKING or state == "filled" else f"{state} at Alpaca"
        return VenueOrder(
            coid,
            venue_id,
            status,
            filled,
            reason,
            instrument_id=instrument_id,
            side=None if raw.side is None else OrderSide(raw.side.value),
            qty=None if raw.qty is None else _decimal(raw.qty),
            price=None if raw.limit_price is None else _decimal(raw.limit_price),
        )


def _order(raw: Any) -> AlpacaOrder:
    if not isinstance(raw, AlpacaOrder):
        raise UnknownOutcome(f"expected an alpaca-py Order, got {type(raw).__name__}")
    return raw


def _error_body(exc: APIError) -> tuple[int | None, str]:
    """Alpaca's ``(code, message)`` of an error answer (None and the text if not JSON)."""
    text = str(exc)
    try:
        body = json.loads(text)
    except ValueError:
        return None, text
    if not isinstance(body, dict):
        return None, text
    code = body.get("code")
    return (code if isinstance(code, int) else None), str(body.get("message", text))


def _decimal(value: Any) -> Decimal:
    """An Alpaca number (a decimal string, or a float alpaca-py parsed one into) as a decimal."""
    return Decimal(str(value)) if value is not None else Decimal(0)


def _exact_float(what: str, value: Decimal) -> float:
    number = float(value)
    if Decimal(repr(number)) != value:
        raise ValueError(f"{what} {value} does not go out exactly (as {number!r})")
    return number


def _venue_trade(client_order_id: str, activity: Mapping[str, Any]) -> VenueTrade:
    return VenueTrade(
        trade_id=str(activity["id"]),
        client_order_id=client_order_id,
        qty=_decimal(activity["qty"]),
        price=_decimal(activity["price"]),
        fee=Decimal(0),
        fee_currency="USD",
        liquidity=Liquidity.TAKER,
        ts_event_ns=iso8601_ns(activity["transaction_time"]),
    )


class _TimeoutAdapter(HTTPAdapter):
    """Gives every request a timeout (alpaca-py sends without one)."""

    def __init__(self, timeout_s: float, pool_size: int) -> None:
        super().__init__(pool_connections=pool_size, pool_maxsize=pool_size)
        self.timeout_s = timeout_s

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        return super().send(request, *args, **kwargs)


def alpaca_gateway(
    base_url: str | None = None,
    *,
    api_key: str,
    secret: str,
    paper: bool = True,
    timeout_s: float = 10.0,
    name: str = "alpaca",
    pool_size: int = 16,
) -> AlpacaGateway:
    """An :class:`AlpacaGateway` on a new ``TradingClient``.

    ``base_url`` points the client at another server (a local fake); otherwise ``paper`` picks
    Alpaca's paper or live API. Every request times out after ``timeout_s`` (an unknown
    outcome), and alpaca-py's own retry of a 429 (a fixed 3 s sleep, Retry-After ignored) is
    off: the order manager waits what the venue says.
    """
    if not api_key or not secret:
        raise ValueError("alpaca_gateway needs a non-empty api_key and secret")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    client = TradingClient(api_key, secret, paper=paper, url_override=base_url)
    # alpaca-py's constructor reads 0 retries as "the default": set its attributes directly
    client._retry = 0
    adapter = _TimeoutAdapter(timeout_s, pool_size)
    client._session.mount("http://", adapter)
    client._session.mount("https://", adapter)
    return AlpacaGateway(client, name=name)
