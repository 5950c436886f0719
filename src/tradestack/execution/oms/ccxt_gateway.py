"""The order manager's gateway over a ccxt (``ccxt.async_support``) exchange, Binance spot first.

Every ccxt failure is sorted into the gateway's four classes (see ``gateway``):

* ``RateLimitExceeded``/``DDoSProtection`` (HTTP 429/418) → :class:`RateLimited`, waiting what
  the response's ``Retry-After`` header says (``default_retry_after_s`` when it says nothing);
* ``OrderNotFound`` → :class:`OrderNotFound`;
* a timeout, a dropped connection, ``ExchangeNotAvailable``/``OnMaintenance``, any other
  ``OperationFailed`` and any HTTP 5xx → :class:`UnknownOutcome`;
* the rest of ``ExchangeError`` (``InvalidOrder``, ``InsufficientFunds``, ``BadRequest``, ...)
  → :class:`VenueRejected`.

A submit the venue refuses as a duplicate client order id (ccxt's ``DuplicateOrderId``, or
Binance's ``-2010 "Duplicate order sent."``) means the order already exists: it is looked up and
returned, which makes a resend after a restart idempotent. Orders are addressed by their client
order id (ccxt's unified ``clientOrderId`` parameter); the venue's order id is learnt from the
answers and cached, because a venue's trade list (Binance ``myTrades``) names only that.
Quantities and prices go out as the exchange's precision prints them; one the precision would
change is refused here, never rounded silently. Fees charged in the base asset are converted to
the quote at the trade's price, since a :class:`~tradestack.core.orders.Fill`'s fee is in quote.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

from ccxt.base import errors as ccxt_errors

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import (
    Liquidity,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from tradestack.data.sources.ccxt_urls import point_at
from tradestack.execution.oms.gateway import (
    OrderNotFound,
    RateLimited,
    UnknownOutcome,
    VenueOrder,
    VenueRejected,
    VenueTrade,
)

T = TypeVar("T")
_PAGE = 1000  # Binance's largest myTrades page


class CcxtGateway:
    """One venue account behind the order manager, through a ccxt async exchange.

    ``exchange`` is built (and closed, or see :meth:`close`) by the caller, with its credentials;
    ``name`` is the venue name fills are stored under and ``venue`` the ``InstrumentId.venue`` it
    trades (both default to the ccxt id). Instruments may name a market by its ccxt symbol
    (``BTC/USDT``) or the venue's id (``BTCUSDT``).
    """

    def __init__(
        self,
        exchange: Any,
        *,
        name: str | None = None,
        venue: str | None = None,
        default_retry_after_s: float = 1.0,
        reserve: Mapping[str, Decimal] | None = None,
    ) -> None:
        if default_retry_after_s <= 0:
            raise ValueError(f"default_retry_after_s must be > 0, got {default_retry_after_s}")
        self.exchange = exchange
        self.name: str = name or str(exchange.id)
        self.venue: str = venue or str(exchange.id)
        self.default_retry_after_s = default_retry_after_s
        #: balances per asset that are not this runtime's position (held before it started)
        self.reserve: dict[str, Decimal] = dict(reserve or {})
        self._venue_ids: dict[str, str] = {}
        self._status: int | None = None
        on_response = exchange.on_rest_response

        def remember_status(code: Any, reason: Any, *rest: Any) -> Any:
            # ccxt raises before it says which HTTP status a JSON error came with: a 5xx
            # whose body names an unknown code must still read as an unknown outcome
            self._status = int(code) if code else None
            return on_response(code, reason, *rest)

        exchange.on_rest_response = remember_status

    # -- VenueGateway -------------------------------------------------------------------------
    async def submit(self, order: Order) -> VenueOrder:
        coid = order.client_order_id
        try:
            market = await self._market(order.instrument_id)
            kind, price, params = self._request(order, market)
            amount = self._precise("quantity", order.qty, market, self.exchange.amount_to_precision)
        except ValueError as exc:
            raise VenueRejected(str(exc)) from exc
        params["clientOrderId"] = coid
        side = order.side.value
        self._status = None
        try:
            raw = await self.exchange.create_order(
                market["symbol"], kind, side, amount, price, params
            )
        except ccxt_errors.BaseError as exc:
            if isinstance(exc, ccxt_errors.DuplicateOrderId) or (
                isinstance(exc, ccxt_errors.InvalidOrder) and "Duplicate order sent" in str(exc)
            ):
                return await self._existing(order)
            raise self._translate(exc, f"submit {coid}") from exc
        return self._venue_order(coid, raw)

    async def cancel(self, client_order_id: str, instrument_id: InstrumentId) -> VenueOrder:
        symbol = (await self._market(instrument_id))["symbol"]
        raw = await self._call(
            f"cancel {client_order_id}",
            self.exchange.cancel_order,
            self._venue_ids.get(client_order_id, ""),
            symbol,
            {"clientOrderId": client_order_id},
        )
        # Binance answers a cancel with a new clientOrderId of the cancel request itself
        return self._venue_order(client_order_id, raw)

    async def fetch_order(self, client_order_id: str, instrument_id: InstrumentId) -> VenueOrder:
        symbol = (await self._market(instrument_id))["symbol"]
        raw = await self._call(
            f"fetch_order {client_order_id}",
            self.exchange.fetch_order,
            self._venue_ids.get(client_order_id, ""),
            symbol,
            {"clientOrderId": client_order_id},
        )
        return self._venue_order(client_order_id, raw)

    async def fetch_trades(
        self, client_order_id: str, instrument_id: InstrumentId
    ) -> list[VenueTrade]:
        market = await self._market(instrument_id)
        venue_id = self._venue_ids.get(client_order_id)
        if venue_id is None:
            venue_id = (await self.fetch_order(client_order_id, instrument_id)).venue_order_id
        found: list[dict[str, Any]] = []
        from_id = 0
        while True:
            page = await self._call(
                f"fetch_trades {client_order_id}",
                self.exchange.fetch_my_trades,
                market["symbol"],
                None,
                _PAGE,
                {"orderId": venue_id, "fromId": from_id},
            )
            found += [t for t in page if str(t.get("order")) == venue_id]
            if len(page) < _PAGE:
                break
            from_id = max(int(t["id"]) for t in page) + 1
        return [self._venue_trade(client_order_id, t, market) for t in found]

    # -- reconciliation reads -----------------------------------------------------------------
    async def fetch_open_orders(self, instrument_ids: Iterable[InstrumentId]) -> list[VenueOrder]:
        """The venue's open orders of these instruments (any client order id)."""
        answers: list[VenueOrder] = []
        for instrument_id in instrument_ids:
            symbol = (await self._market(instrument_id))["symbol"]
            raws = await self._call(
                f"fetch_open_orders {symbol}", self.exchange.fetch_open_orders, symbol
            )
            answers += [
                self._venue_order(str(r.get("clientOrderId") or ""), r, instrument_id) for r in raws
            ]
        return answers

    async def fetch_positions(
        self, instrument_ids: Sequence[InstrumentId]
    ) -> dict[InstrumentId, Decimal]:
        """Spot positions: each instrument's base-asset total balance (an explicit zero when
        none) less the ``reserve`` the account holds besides this runtime's trading."""
        balances = await self.fetch_balances()
        out: dict[InstrumentId, Decimal] = {}
        for instrument_id in instrument_ids:
            base = str((await self._market(instrument_id))["base"])
            out[instrument_id] = balances.get(base, Decimal(0)) - self.reserve.get(base, Decimal(0))
        return out

    async def fetch_balances(self) -> dict[str, Decimal]:
        """Each asset's total balance (free + locked), zero balances left out."""
        raw = await self._call("fetch_balance", self.exchange.fetch_balance)
        totals: Mapping[str, Any] = raw.get("total") or {}
        return {code: _decimal(v) for code, v in sorted(totals.items()) if v}

    async def close(self) -> None:
        """Close the exchange's HTTP session."""
        await self.exchange.close()

    # -- internals ----------------------------------------------------------------------------
    async def _market(self, instrument_id: InstrumentId) -> dict[str, Any]:
        if instrument_id.venue != self.venue:
            raise ValueError(
                f"instrument {instrument_id} is not on venue {self.venue!r} of gateway {self.name}"
            )
        if not self.exchange.markets:
            await self._call("load_markets", self.exchange.load_markets)
        markets: Mapping[str, Any] = self.exchange.markets
        symbol = instrument_id.symbol
        if symbol in markets:
            return dict(markets[symbol])
        by_id = (self.exchange.markets_by_id or {}).get(symbol)
        if by_id:
            return dict(by_id[0])
        raise ValueError(
            f"{symbol!r} is not a market of {self.exchange.id}: name it by its ccxt symbol "
            "(e.g. 'BTC/USDT') or the venue's market id (e.g. 'BTCUSDT')"
        )

    def _request(
        self, order: Order, market: Mapping[str, Any]
    ) -> tuple[str, str | None, dict[str, Any]]:
        """(ccxt order type, price, params) for an order, or a ValueError saying why not."""
        symbol = market["symbol"]
        if order.reduce_only and market.get("spot"):
            raise ValueError(
                f"order {order.client_order_id}: reduce_only needs a margin or derivatives "
                f"market; {symbol} is spot"
            )
        if order.order_type is OrderType.MARKET:
            return "market", None, {}
        if order.order_type is not OrderType.LIMIT or order.price is None:
            raise ValueError(
                f"order {order.client_order_id}: {order.order_type.value} orders are not "
                "supported by the ccxt gateway (market and limit are)"
            )
        if order.time_in_force is TimeInForce.DAY:
            raise ValueError(
                f"order {order.client_order_id}: time in force 'day' is not offered on "
                f"{self.exchange.id}; use gtc, ioc or fok"
            )
        price = self._precise("price", order.price, market, self.exchange.price_to_precision)
        if order.post_only:
            return "limit", price, {"postOnly": True}
        return "limit", price, {"timeInForce": order.time_in_force.value.upper()}

    @staticmethod
    def _precise(
        what: str, value: Decimal, market: Mapping[str, Any], fn: Callable[[str, str], str]
    ) -> str:
        symbol = market["symbol"]
        try:
            text = str(fn(symbol, str(value)))
        except ccxt_errors.BaseError as exc:
            raise ValueError(f"{what} {value} is not valid on {symbol}: {exc}") from exc
        if Decimal(text) != value:
            step = market.get("precision", {}).get("amount" if what == "quantity" else "price")
            raise ValueError(
                f"{what} {value} does not fit {symbol}'s precision (step {step}): "
                f"it would go out as {text}"
            )
        return text

    async def _existing(self, order: Order) -> VenueOrder:
        try:
            return await self.fetch_order(order.client_order_id, order.instrument_id)
        except OrderNotFound as exc:
            raise UnknownOutcome(
                f"submit {order.client_order_id}: the venue calls it a duplicate but finds no "
                "order under that client order id"
            ) from exc

    async def _call(self, what: str, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        self._status = None
        try:
            return await fn(*args)
        except ccxt_errors.BaseError as exc:
            raise self._translate(exc, what) from exc

    def _translate(self, exc: Exception, what: str) -> Exception:
        if isinstance(exc, ccxt_errors.RateLimitExceeded | ccxt_errors.DDoSProtection):
            return RateLimited(self._retry_after(), f"({what})")
        if isinstance(exc, ccxt_errors.OrderNotFound):
            return OrderNotFound(f"{what}: {exc}")
        if isinstance(exc, ccxt_errors.OperationFailed) or (self._status or 0) >= 500:
            return UnknownOutcome(f"{what}: {type(exc).__name__}: {exc}")
        return VenueRejected(f"{type(exc).__name__}: {exc}")

    def _retry_after(self) -> float:
        headers: Mapping[str, str] = self.exchange.last_response_headers or {}
        for key, value in headers.items():
            if key.lower() == "retry-after":
                try:
                    seconds = float(value)
                except ValueError:  # an HTTP date: not worth parsing, wait the default
                    break
                if seconds >= 0:
                    return seconds
        return self.default_retry_after_s

    def _venue_order(
        self,
        client_order_id: str,
        raw: Mapping[str, Any],
        instrument_id: InstrumentId | None = None,
    ) -> VenueOrder:
        venue_id = str(raw.get("id") or "")
        if not venue_id:
            raise UnknownOutcome(f"order {client_order_id}: the venue's answer has no order id")
        self._venue_ids[client_order_id] = venue_id
        filled = _decimal(raw.get("filled") or 0)
        amount = raw.get("amount")
        state = raw.get("status")
        if state == "open" or state == "canceling" or state is None:
            status = OrderStatus.PARTIALLY_FILLED if filled > 0 else OrderStatus.ACCEPTED
        elif state == "closed":
            done = amount is None or filled >= _decimal(amount)
            status = OrderStatus.FILLED if done else OrderStatus.CANCELED
        elif state in _FINAL:
            status = _FINAL[state]
        else:
            raise UnknownOutcome(f"order {client_order_id}: unrecognised status {state!r}")
        reason = "" if status in _WORKING_OR_FILLED else f"{state} at {self.exchange.id}"
        side = raw.get("side")
        price = raw.get("price")
        return VenueOrder(
            client_order_id,
            venue_id,
            status,
            filled,
            reason,
            instrument_id=instrument_id,
            side=OrderSide(side) if side in ("buy", "sell") else None,
            qty=None if amount is None else _decimal(amount),
            price=None if price is None else _decimal(price),
        )

    def _venue_trade(
        self, client_order_id: str, raw: Mapping[str, Any], market: Mapping[str, Any]
    ) -> VenueTrade:
        price = _decimal(raw["price"])
        fee_info: Mapping[str, Any] = raw.get("fee") or {}
        fee = _decimal(fee_info.get("cost") or 0)
        currency = str(fee_info.get("currency") or market["quote"])
        base_fee = Decimal(0)
        if currency == market["base"]:
            base_fee, fee, currency = fee, fee * price, str(market["quote"])
        maker = raw.get("takerOrMaker") == "maker"
        return VenueTrade(
            trade_id=str(raw["id"]),
            client_order_id=client_order_id,
            qty=_decimal(raw["amount"]),
            price=price,
            fee=fee,
            fee_currency=currency,
            liquidity=Liquidity.MAKER if maker else Liquidity.TAKER,
            ts_event_ns=int(raw.get("timestamp") or 0) * 1_000_000,
            base_fee=base_fee,
        )


_WORKING_OR_FILLED = (OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED)
_FINAL = {
    "canceled": OrderStatus.CANCELED,
    "cancelled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


def _decimal(value: Any) -> Decimal:
    """A ccxt number (a float parsed from the venue's decimal string) as that decimal."""
    return Decimal(str(value))


def binance_gateway(
    base_url: str | None = None,
    *,
    api_key: str,
    secret: str,
    timeout_s: float = 10.0,
    options: Mapping[str, Any] | None = None,
    name: str = "binance",
) -> CcxtGateway:
    """A :class:`CcxtGateway` on a new ``ccxt.async_support.binance`` spot client.

    ``base_url`` points the client at another server (a local fake venue); ``timeout_s`` is
    ccxt's request timeout. ccxt's own rate limiter is off (the order manager paces requests),
    and ccxt loads only spot markets, without the currency and margin endpoints.
    """
    if not api_key or not secret:
        raise ValueError("binance_gateway needs a non-empty api_key and secret")
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    import ccxt.async_support as ccxt_async

    exchange = ccxt_async.binance(
        {
            "apiKey": api_key,
            "secret": secret,
            "timeout": max(1, round(timeout_s * 1000)),
            "enableRateLimit": False,
            "options": {
                "defaultType": "spot",
                "fetchMarkets": {"types": ["spot"]},
                "fetchCurrencies": False,
                "fetchMargins": False,
                "warnOnFetchOpenOrdersWithoutSymbol": False,
                **(options or {}),
            },
        }
    )
    if base_url is not None:
        point_at(exchange, base_url)
    return CcxtGateway(exchange, name=name)
