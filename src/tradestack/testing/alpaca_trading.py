"""A local fake of Alpaca's trading API (``/v2`` orders, positions, account, fill activities).

It speaks what alpaca-py's ``TradingClient`` sends and parses: the ``APCA-API-KEY-ID`` /
``APCA-API-SECRET-KEY`` headers (HTTP 401 ``{"code": 40110000, ...}`` otherwise), order JSON with
Alpaca's field names and statuses, errors as ``{"code": ..., "message": ...}``:

* ``POST /v2/orders``: market and limit orders with ``client_order_id``; a second order under
  the client order id of an existing one → 422 ``40010001 "client_order_id must be unique"``;
  an unknown symbol, a sub-penny limit price or a fractional non-day order → 422; a buy beyond
  the cash → 403 ``40310000 "insufficient buying power"``;
* ``GET /v2/orders`` (``status`` open|closed|all, ``symbols``, ``side``, ``limit``,
  ``direction``), ``GET /v2/orders:by_client_order_id``, ``GET /v2/orders/{id}``,
  ``DELETE /v2/orders/{id}`` (204; 422 ``42210000`` when not cancelable); 404
  ``{"code": 40410000, "message": "order not found"}`` for an unknown order;
* ``GET /v2/positions`` (long and short), ``GET /v2/account``;
* ``GET /v2/account/activities/FILL``: one activity per execution, its ``id`` (Alpaca's trade
  id) ``<yyyymmddhhmmssmmm>::<uuid>``; ``order_id``, ``direction``, ``page_size`` (at most 100)
  and ``page_token`` (the id the page continues after) as Alpaca honours them.

Fills are deterministic. The test sets each symbol's price (:meth:`set_price`, or
:meth:`price_from_bars` with the last close of recorded Alpaca bars). A market order fills at
once at that price (in lots of at most ``lot_size`` when given, one activity each), before the
answer is sent (real Alpaca answers ``accepted`` and fills a moment later); a limit order the
price already crosses fills at the price, else it rests (``new``) until a later
:meth:`set_price` moves the price to or through its limit: it then fills at its limit, at most
``volume`` shares on that move. Every timestamp comes from a clock that starts at ``start_ns``
and steps one millisecond per event, so ids and times repeat run after run.

Faults reuse the Binance desk's :class:`~tradestack.testing.venues.binance_trading.
TradingFaults` (a 429 with Retry-After, a 503 or a held answer before the order is taken; a
503, a held answer or a dropped connection after it). For tests to assert on: ``requests``
(``early`` marks a request that came before an announced Retry-After elapsed),
``orders_created``, ``duplicate_attempts`` and :attr:`early_requests`.
"""

from __future__ import annotations

import asyncio
import hmac
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType
from typing import Any

from aiohttp import web

from tradestack.testing.venues.binance_trading import RequestRecord, TradingFaults

_NAMESPACE = uuid.UUID("6f1d3c1e-5a0b-4c8e-9a57-0a1b2c3d4e5f")
_OPEN = ("accepted", "new", "partially_filled")
_TIFS = ("day", "gtc", "opg", "cls", "ioc", "fok")
_PAGE_MAX = 100


class AlpacaError(Exception):
    """An error answer: HTTP ``status`` with Alpaca's ``code`` and ``message``."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _not_found() -> AlpacaError:
    return AlpacaError(404, 40410000, "order not found")


def _num(value: Decimal) -> str:
    """A decimal as Alpaca writes it: no exponent, no trailing zeros."""
    text = format(value.normalize(), "f")
    return "0" if text in ("-0", "") else text


def _stamp(ns: int) -> str:
    moment = datetime.fromtimestamp(ns // 10**9, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{moment}.{ns % 10**9:09d}Z"


@dataclass
class DeskOrder:
    """One order at the fake venue (amounts as decimals, times in ns)."""

    id: str
    client_order_id: str
    symbol: str
    side: str
    qty: Decimal
    type: str
    time_in_force: str
    limit_price: Decimal | None
    created_ns: int
    status: str = "accepted"
    filled_qty: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    updated_ns: int = 0
    filled_ns: int | None = None
    canceled_ns: int | None = None

    @property
    def leaves(self) -> Decimal:
        return self.qty - self.filled_qty

    def body(self) -> dict[str, Any]:
        """The order as Alpaca's order JSON."""
        avg = self.notional / self.filled_qty if self.filled_qty else None
        limit = self.limit_price
        return {
            "id": self.id,
            "client_order_id": self.client_order_id,
            "created_at": _stamp(self.created_ns),
            "updated_at": _stamp(self.updated_ns or self.created_ns),
            "submitted_at": _stamp(self.created_ns),
            "filled_at": None if self.filled_ns is None else _stamp(self.filled_ns),
            "expired_at": None,
            "canceled_at": None if self.canceled_ns is None else _stamp(self.canceled_ns),
            "failed_at": None,
            "replaced_at": None,
            "replaced_by": None,
            "replaces": None,
            "asset_id": str(uuid.uuid5(_NAMESPACE, self.symbol)),
            "symbol": self.symbol,
            "asset_class": "us_equity",
            "notional": None,
            "qty": _num(self.qty),
            "filled_qty": _num(self.filled_qty),
            "filled_avg_price": None if avg is None else _num(avg.quantize(Decimal("1e-9"))),
            "order_class": "",
            "order_type": self.type,
            "type": self.type,
            "side": self.side,
            "position_intent": f"{self.side}_to_open",
            "time_in_force": self.time_in_force,
            "limit_price": None if limit is None else _num(limit),
            "stop_price": None,
            "status": self.status,
            "extended_hours": False,
            "legs": None,
            "trail_percent": None,
            "trail_price": None,
            "hwm": None,
        }


@dataclass
class _Position:
    qty: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)  # signed cost basis of ``qty``


@dataclass
class FakeAlpacaTrading:
    """One Alpaca trading account on 127.0.0.1 (see the module docstring).

    Use ``async with FakeAlpacaTrading(...) as venue`` and point
    ``TradingClient(url_override=venue.base_url)`` at it.
    """

    key_id: str = "PKFAKEKEY"
    secret_key: str = "fake-secret"
    cash: Decimal = Decimal(100_000)
    lot_size: Decimal | None = None
    faults: TradingFaults = field(default_factory=TradingFaults)
    start_ns: int = 1_721_309_400 * 10**9  # 2024-07-18 13:30 UTC, a US market open
    clock: Callable[[], float] = time.monotonic
    prices: dict[str, Decimal] = field(default_factory=dict)
    orders: dict[str, DeskOrder] = field(default_factory=dict)
    fills: list[dict[str, Any]] = field(default_factory=list)
    requests: list[RequestRecord] = field(default_factory=list)
    duplicate_attempts: int = 0
    not_before: float = 0.0

    def __post_init__(self) -> None:
        self._positions: dict[str, _Position] = {}
        self._by_client: dict[str, str] = {}
        self._kind_counts: Counter[str] = Counter()
        self._events = 0
        self._runner: web.AppRunner | None = None
        self._port = 0

    # -- the test's side ----------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """Base URL for ``TradingClient(url_override=...)``."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def orders_created(self) -> int:
        return len(self.orders)

    @property
    def early_requests(self) -> int:
        return sum(r.early for r in self.requests)

    def set_price(self, symbol: str, price: Decimal | str, volume: Decimal | None = None) -> int:
        """Move ``symbol``'s price; resting limit orders it reaches fill at their limit, at most
        ``volume`` shares in all (None: every share). Returns how many fills that made."""
        price = Decimal(price)
        if price <= 0:
            raise ValueError(f"price must be > 0, got {price}")
        self.prices[symbol] = price
        left = volume
        made = 0
        for order in list(self.orders.values()):
            if order.symbol != symbol or order.status not in _OPEN or order.limit_price is None:
                continue
            limit = order.limit_price
            if (price > limit) if order.side == "buy" else (price < limit):
                continue
            qty = order.leaves if left is None else min(order.leaves, left)
            if qty > 0:
                self._fill(order, qty, limit)
                made += 1
                left = None if left is None else left - qty
        return made

    def price_from_bars(self, symbol: str, bars: Iterable[Mapping[str, Any]]) -> Decimal:
        """Set ``symbol``'s price to the close of the last of ``bars`` (Alpaca bar objects, as
        ``AlpacaRecording`` holds them); returns it."""
        last = list(bars)[-1]
        price = Decimal(str(last["c"]))
        self.set_price(symbol, price)
        return price

    def position(self, symbol: str) -> Decimal:
        held = self._positions.get(symbol)
        return held.qty if held is not None else Decimal(0)

    def order_by_client_id(self, client_order_id: str) -> DeskOrder:
        return self.orders[self._by_client[client_order_id]]

    # -- server -------------------------------------------------------------------------------
    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application()
        route = app.router.add_route
        route("POST", "/v2/orders", self._guarded("submit", self._post_order))
        route("GET", "/v2/orders", self._guarded("read", self._list_orders))
        route("GET", "/v2/orders:by_client_order_id", self._guarded("read", self._by_coid))
        route("GET", "/v2/orders/{order_id}", self._guarded("read", self._get_order))
        route("DELETE", "/v2/orders/{order_id}", self._guarded("cancel", self._cancel))
        route("GET", "/v2/positions", self._guarded("read", self._positions_body))
        route("GET", "/v2/account", self._guarded("read", self._account))
        route("GET", "/v2/account/activities/FILL", self._guarded("read", self._activities))
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeAlpacaTrading:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _guarded(
        self, kind: str, answer: Callable[[web.Request, dict[str, Any]], Any]
    ) -> Callable[[web.Request], Any]:
        async def handler(request: web.Request) -> web.StreamResponse:
            return await self._handle(request, kind, answer)

        return handler

    async def _handle(
        self,
        request: web.Request,
        kind: str,
        answer: Callable[[web.Request, dict[str, Any]], Any],
    ) -> web.StreamResponse:
        at = self.clock()
        try:
            body = await request.json() if request.can_read_body else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(AlpacaError(400, 40010000, "request body format is invalid"))
        outcome, wait = self.faults.decide(len(self.requests), kind, self._kind_counts[kind])
        self._kind_counts[kind] += 1
        coid = str(body.get("client_order_id") or request.query.get("client_order_id", ""))
        self.requests.append(
            RequestRecord(
                at, kind, request.method, request.path, outcome, coid, at < self.not_before, wait
            )
        )
        if outcome == "429":
            self.not_before = max(self.not_before, at + wait)
            too_many = AlpacaError(429, 42910000, "rate limit exceeded")
            return _error(too_many, {"Retry-After": f"{wait:g}"})
        if outcome in ("503", "timeout_before"):
            if outcome == "timeout_before":
                await self._until_hung_up(request)
            return _error(AlpacaError(503, 50300000, "service unavailable"))
        try:
            self._authenticate(request)
            result = answer(request, body)
            response = (
                web.Response(status=204) if result is None else web.json_response(result)
            )  # fmt: skip
        except AlpacaError as exc:
            response = _error(exc)
        if outcome == "5xx_after":
            return _error(AlpacaError(503, 50300000, "upstream timeout: status unknown"))
        if outcome == "timeout_after":
            await self._until_hung_up(request)
        elif outcome == "drop_after" and request.transport is not None:
            request.transport.close()
        return response

    async def _until_hung_up(self, request: web.Request) -> None:
        """Hold the answer back until the client gives up, at most ``faults.hold_s``."""
        deadline = self.clock() + self.faults.hold_s
        while self.clock() < deadline and not (
            request.transport is None or request.transport.is_closing()
        ):
            await asyncio.sleep(0.005)

    def _authenticate(self, request: web.Request) -> None:
        key = request.headers.get("APCA-API-KEY-ID", "").encode()
        secret = request.headers.get("APCA-API-SECRET-KEY", "").encode()
        if not (
            hmac.compare_digest(key, self.key_id.encode())
            and hmac.compare_digest(secret, self.secret_key.encode())
        ):
            raise AlpacaError(401, 40110000, "request is not authorized")

    # -- endpoints ----------------------------------------------------------------------------
    def _post_order(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        coid = str(body.get("client_order_id") or uuid.uuid4())
        if coid in self._by_client:
            self.duplicate_attempts += 1
            raise AlpacaError(422, 40010001, "client_order_id must be unique")
        if len(coid) > 128:
            raise AlpacaError(422, 40010001, "client_order_id must be no more than 128 characters")
        symbol, side = str(body.get("symbol", "")), body.get("side")
        kind, tif = body.get("type"), body.get("time_in_force")
        if symbol not in self.prices:
            raise AlpacaError(422, 40010001, f'asset "{symbol}" not found')
        if side not in ("buy", "sell") or kind not in ("market", "limit") or tif not in _TIFS:
            raise AlpacaError(422, 40010001, "invalid side, type or time_in_force")
        qty = _decimal(body.get("qty"), "qty")
        if qty <= 0:
            raise AlpacaError(422, 40010001, "qty must be > 0")
        if qty != qty.to_integral_value() and tif != "day":
            raise AlpacaError(422, 42210000, "fractional orders must be DAY orders")
        limit: Decimal | None = None
        if kind == "limit":
            limit = _decimal(body.get("limit_price"), "limit_price")
            tick = Decimal("0.01") if limit >= 1 else Decimal("0.0001")
            if limit <= 0 or limit % tick:
                raise AlpacaError(
                    422,
                    42210000,
                    f"invalid limit_price {limit}. sub-penny increment does not fulfill "
                    "minimum pricing criteria",
                )
        price = self.prices[symbol]
        if side == "buy" and qty * (limit or price) > self.cash:
            raise AlpacaError(403, 40310000, "insufficient buying power")
        order = DeskOrder(
            str(uuid.uuid5(_NAMESPACE, f"order-{len(self.orders)}")),
            coid, symbol, side, qty, kind, tif, limit, self._now_ns(),
        )  # fmt: skip
        self.orders[order.id] = order
        self._by_client[coid] = order.id
        marketable = limit is None or (price <= limit if side == "buy" else price >= limit)
        if marketable:
            lot = self.lot_size or qty
            while order.leaves > 0:
                self._fill(order, min(lot, order.leaves), price)
        answer = order.body()
        if order.status == "accepted":
            order.status = "new"
        return answer

    def _list_orders(self, request: web.Request, body: dict[str, Any]) -> list[dict[str, Any]]:
        query = request.query
        status = query.get("status", "open")
        if status not in ("open", "closed", "all"):
            raise AlpacaError(422, 40010001, f"invalid status {status!r}")
        symbols = {s for s in query.get("symbols", "").split(",") if s}
        limit = int(query.get("limit", "50"))
        if not 1 <= limit <= 500:
            raise AlpacaError(422, 40010001, "limit must be between 1 and 500")
        found = [
            o
            for o in self.orders.values()
            if (status == "all" or (o.status in _OPEN) == (status == "open"))
            and (not symbols or o.symbol in symbols)
            and query.get("side", o.side) == o.side
        ]
        newest_first = query.get("direction", "desc") == "desc"
        found = (found[::-1] if newest_first else found)[:limit]
        return [o.body() for o in found]

    def _by_coid(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        order_id = self._by_client.get(request.query.get("client_order_id", ""))
        if order_id is None:
            raise _not_found()
        return self.orders[order_id].body()

    def _get_order(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        order = self.orders.get(request.match_info["order_id"])
        if order is None:
            raise _not_found()
        return order.body()

    def _cancel(self, request: web.Request, body: dict[str, Any]) -> None:
        order = self.orders.get(request.match_info["order_id"])
        if order is None:
            raise _not_found()
        if order.status not in _OPEN:
            raise AlpacaError(422, 42210000, f"order is not cancelable (status {order.status})")
        order.status = "canceled"
        order.canceled_ns = order.updated_ns = self._now_ns()

    def _positions_body(self, request: web.Request, body: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for symbol, held in sorted(self._positions.items()):
            if not held.qty:
                continue
            price = self.prices[symbol]
            value = held.qty * price
            out.append(
                {
                    "asset_id": str(uuid.uuid5(_NAMESPACE, symbol)),
                    "symbol": symbol,
                    "exchange": "NASDAQ",
                    "asset_class": "us_equity",
                    "asset_marginable": True,
                    "avg_entry_price": _num(held.cost / held.qty),
                    "qty": _num(held.qty),
                    "qty_available": _num(held.qty),
                    "side": "long" if held.qty > 0 else "short",
                    "market_value": _num(value),
                    "cost_basis": _num(held.cost),
                    "unrealized_pl": _num(value - held.cost),
                    "unrealized_plpc": _num((value - held.cost) / abs(held.cost)),
                    "unrealized_intraday_pl": _num(value - held.cost),
                    "unrealized_intraday_plpc": _num((value - held.cost) / abs(held.cost)),
                    "current_price": _num(price),
                    "lastday_price": _num(price),
                    "change_today": "0",
                }
            )
        return out

    def _account(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        longs = sum((h.qty * self.prices[s] for s, h in self._positions.items() if h.qty > 0), 0)
        shorts = sum((h.qty * self.prices[s] for s, h in self._positions.items() if h.qty < 0), 0)
        equity = self.cash + Decimal(longs) + Decimal(shorts)
        return {
            "id": str(uuid.uuid5(_NAMESPACE, self.key_id)),
            "account_number": "PA3FAKE00001",
            "status": "ACTIVE",
            "crypto_status": "ACTIVE",
            "currency": "USD",
            "cash": _num(self.cash),
            "buying_power": _num(self.cash),
            "regt_buying_power": _num(self.cash),
            "non_marginable_buying_power": _num(self.cash),
            "portfolio_value": _num(equity),
            "equity": _num(equity),
            "last_equity": _num(equity),
            "long_market_value": _num(Decimal(longs)),
            "short_market_value": _num(Decimal(shorts)),
            "multiplier": "1",
            "shorting_enabled": True,
            "trading_blocked": False,
            "transfers_blocked": False,
            "account_blocked": False,
            "trade_suspended_by_user": False,
            "accrued_fees": "0",
            "pending_transfer_in": "0",
            "pending_transfer_out": "0",
            "created_at": _stamp(self.start_ns),
        }

    def _activities(self, request: web.Request, body: dict[str, Any]) -> list[dict[str, Any]]:
        query = request.query
        size = int(query.get("page_size", str(_PAGE_MAX)))
        if not 1 <= size <= _PAGE_MAX:
            raise AlpacaError(422, 40010001, f"page_size must be between 1 and {_PAGE_MAX}")
        rows = [f for f in self.fills if query.get("order_id", f["order_id"]) == f["order_id"]]
        if query.get("direction", "desc") == "desc":
            rows = rows[::-1]
        token = query.get("page_token")
        if token:
            ids = [f["id"] for f in rows]
            if token not in ids:
                raise AlpacaError(422, 40010001, f"invalid page_token {token!r}")
            rows = rows[ids.index(token) + 1 :]
        return rows[:size]

    # -- matching -----------------------------------------------------------------------------
    def _now_ns(self) -> int:
        self._events += 1
        return self.start_ns + self._events * 1_000_000

    def _fill(self, order: DeskOrder, qty: Decimal, price: Decimal) -> None:
        now = self._now_ns()
        order.filled_qty += qty
        order.notional += qty * price
        order.updated_ns = now
        done = order.leaves == 0
        order.status = "filled" if done else "partially_filled"
        if done:
            order.filled_ns = now
        signed = qty if order.side == "buy" else -qty
        self.cash -= signed * price
        held = self._positions.setdefault(order.symbol, _Position())
        if held.qty * signed >= 0:  # opening or adding
            held.cost += signed * price
        elif abs(signed) <= abs(held.qty):  # reducing: the basis shrinks pro rata
            held.cost -= held.cost * abs(signed) / abs(held.qty)
        else:  # flipping sides: the new side's basis is the excess at this price
            held.cost = (held.qty + signed) * price
        held.qty += signed
        if not held.qty:
            held.cost = Decimal(0)
        moment = datetime.fromtimestamp(now // 10**9, UTC).strftime("%Y%m%d%H%M%S")
        activity_uuid = uuid.uuid5(_NAMESPACE, f"fill-{len(self.fills)}")
        self.fills.append(
            {
                "id": f"{moment}{now // 10**6 % 1000:03d}::{activity_uuid}",
                "activity_type": "FILL",
                "transaction_time": _stamp(now),
                "type": "fill" if done else "partial_fill",
                "price": _num(price),
                "qty": _num(qty),
                "side": order.side,
                "symbol": order.symbol,
                "leaves_qty": _num(order.leaves),
                "order_id": order.id,
                "cum_qty": _num(order.filled_qty),
                "order_status": order.status,
            }
        )


def _decimal(value: Any, name: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        number = Decimal("NaN")
    if value is None or not number.is_finite():
        raise AlpacaError(422, 40010001, f"invalid {name} {value!r}")
    return number


def _error(exc: AlpacaError, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.json_response(
        {"code": exc.code, "message": exc.message}, status=exc.status, headers=headers
    )
