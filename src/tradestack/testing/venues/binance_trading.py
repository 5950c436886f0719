"""The trading side of the fake Binance spot venue: signed order endpoints with scripted faults.

Give a :class:`BinanceTradingDesk` to a ``BinanceFakeVenue`` (``desk=``): the venue routes
``/api/v3/order`` (POST/GET/DELETE), ``openOrders``, ``allOrders``, ``myTrades`` and ``account``
to it, and ``exchangeInfo`` too when none was recorded (synthesised for the replayed symbols),
and shows it every replayed frame, so orders match the venue's true book (``binance_matching``).
Without a WebSocket client streaming the replay, :meth:`BinanceTradingDesk.advance` steps it.

Signed requests are checked as Binance checks them: the ``X-MBX-APIKEY`` header (-2014/-2015),
the HMAC-SHA256 ``signature`` of query string + body (-1022) and the ``timestamp`` against
``recvWindow`` (-1021). :class:`TradingFaults` decides, per request, from a seed, whether it is
answered normally or fails in one of the ways a real venue fails. For tests to assert on:
``requests`` (arrival time on ``time.monotonic``, kind, outcome; ``early`` marks one that came
before an announced Retry-After had elapsed), ``orders_created``, ``duplicate_attempts``,
``duplicate_orders``, and ``events``: the executionReport notifications a user-data stream
would carry, less the ones the ``drop_fills`` fault lost (``myTrades`` always has every trade).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import struct
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl

from aiohttp import web

from tradestack.data.venues.binance import unwrap
from tradestack.testing.fake_venue import TimelineFrame
from tradestack.testing.venues.binance_matching import DeskOrder, DeskTrade, MatchingEngine
from tradestack.testing.venues.binance_rules import ZERO, BinanceError, SymbolRules, fmt

if TYPE_CHECKING:
    from tradestack.data.book.l2book import L2Book
    from tradestack.testing.venues.binance import BinanceFakeVenue

#: how a request ends: answered normally; not processed ("429" with Retry-After, "503",
#: "timeout_before": held until the client gave up); processed, then "5xx_after" (503 -1007),
#: "timeout_after" (answer held until the client gave up) or "drop_after" (connection closed)
OUTCOMES = ("ok", "429", "503", "timeout_before", "5xx_after", "timeout_after", "drop_after")
KINDS = ("submit", "cancel", "read")
TRADING_PATHS = (
    "/api/v3/order",
    "/api/v3/openOrders",
    "/api/v3/allOrders",
    "/api/v3/myTrades",
    "/api/v3/account",
)
T = TypeVar("T")
_KIND_OF_METHOD = {"POST": "submit", "DELETE": "cancel", "GET": "read"}
_RESULT_KEYS = (
    "price",
    "origQty",
    "executedQty",
    "origQuoteOrderQty",
    "cummulativeQuoteQty",
    "status",
    "timeInForce",
    "type",
    "side",
)
_RATE_LIMITS = [
    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
]
_TOO_MANY = (
    "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. Please use "
    "WebSocket Streams for live updates to avoid polling the API."
)
_INTERNAL = "Internal error; unable to process your request. Please try again."
_BACKEND_TIMEOUT = (
    "Timeout waiting for response from backend server. Send status unknown; "
    "execution status unknown."
)


def _uniform(seed: int, *keys: int) -> float:
    digest = hashlib.blake2b(struct.pack(f"<{len(keys) + 1}q", seed, *keys), digest_size=8)
    return int.from_bytes(digest.digest(), "little") / 2**64


@dataclass(frozen=True)
class TradingFaults:
    """Which requests fail and how, from ``seed`` and the request's number (see ``OUTCOMES``).

    ``submit``/``cancel``/``read`` give each outcome's probability for that kind of request. Only
    requests numbered inside ``window`` (all kinds counted together from 0; None: every request)
    draw faults; requests numbered inside one of ``bursts`` are all answered "503". A "429"
    announces a Retry-After drawn from ``retry_after_s`` (fractional seconds, so tests stay
    fast). Held answers wait until the client hangs up, at most ``hold_s``. ``drop_fills`` is
    the share of trade notifications lost on their way to ``events``.
    """

    submit: Mapping[str, float] = field(default_factory=dict)
    cancel: Mapping[str, float] = field(default_factory=dict)
    read: Mapping[str, float] = field(default_factory=dict)
    window: tuple[int, int] | None = None
    bursts: tuple[tuple[int, int], ...] = ()
    retry_after_s: tuple[float, float] = (0.05, 0.25)
    hold_s: float = 2.0
    drop_fills: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        for kind in KINDS:
            rates: Mapping[str, float] = getattr(self, kind)
            unknown = set(rates) - set(OUTCOMES[1:])
            if unknown:
                raise ValueError(f"TradingFaults.{kind}: unknown outcomes {sorted(unknown)}")
            if any(r < 0 for r in rates.values()) or sum(rates.values()) > 1:
                raise ValueError(f"TradingFaults.{kind}: rates must be >= 0 and add up to <= 1")
        low, high = self.retry_after_s
        if not 0 < low <= high:
            raise ValueError(f"TradingFaults.retry_after_s needs 0 < low <= high: {low}, {high}")
        if self.hold_s <= 0 or not 0 <= self.drop_fills <= 1:
            raise ValueError("TradingFaults needs hold_s > 0 and 0 <= drop_fills <= 1")

    def decide(self, number: int, kind: str, kind_number: int) -> tuple[str, float]:
        """(outcome, Retry-After seconds) for request ``number``, the ``kind_number``-th of its
        kind."""
        if any(start <= number < stop for start, stop in self.bursts):
            return "503", 0.0
        if self.window is not None and not self.window[0] <= number < self.window[1]:
            return "ok", 0.0
        rates: Mapping[str, float] = getattr(self, kind)
        draw, acc = _uniform(self.seed, KINDS.index(kind), kind_number, 0), 0.0
        for outcome in OUTCOMES[1:]:
            acc += rates.get(outcome, 0.0)
            if draw < acc:
                low, high = self.retry_after_s
                wait = low + (high - low) * _uniform(self.seed, KINDS.index(kind), kind_number, 1)
                return outcome, round(wait, 3) if outcome == "429" else 0.0
        return "ok", 0.0

    def drops_fill(self, trade_id: int) -> bool:
        return bool(self.drop_fills) and _uniform(self.seed, 99, trade_id, 2) < self.drop_fills


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One trading request as the venue saw it arrive (``at`` on ``time.monotonic``)."""

    at: float
    kind: str
    method: str
    path: str
    outcome: str
    client_order_id: str
    early: bool
    retry_after: float = 0.0


class BinanceTradingDesk:
    """One Binance spot account on the fake venue: its signed REST endpoints (module docstring).

    ``balances`` are the starting free balances (default 1,000,000 USDT and 10 BTC); ``rules``
    override a symbol's filters (otherwise from the venue's recorded exchangeInfo, or BTCUSDT
    defaults for the symbols it replays).
    """

    def __init__(
        self,
        *,
        api_key: str = "fake-api-key",
        secret: str = "fake-secret",
        balances: Mapping[str, Decimal | str | int] | None = None,
        faults: TradingFaults | None = None,
        rules: Mapping[str, SymbolRules] | None = None,
        maker_fee: Decimal = Decimal("0.001"),
        taker_fee: Decimal = Decimal("0.001"),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not api_key or not secret:
            raise ValueError("the trading desk needs a non-empty api_key and secret")
        self.api_key = api_key
        self.faults = faults or TradingFaults()
        self.maker_fee, self.taker_fee = maker_fee, taker_fee
        self.engine = MatchingEngine(
            {"USDT": 1_000_000, "BTC": 10} if balances is None else balances,
            book=self._book,
            rules=self._rules,
            now_ms=lambda: time.time_ns() // 1_000_000,
            maker_fee=maker_fee,
            taker_fee=taker_fee,
            listener=self._on_execution,
        )
        self.requests: list[RequestRecord] = []
        self.events: list[dict[str, Any]] = []
        self.dropped_events = 0
        self.listener: Callable[[dict[str, Any]], None] | None = None
        self.not_before = 0.0
        self._secret = secret.encode()
        self._clock = clock
        self._explicit_rules = dict(rules or {})
        self._symbol_rules: dict[str, SymbolRules] = dict(self._explicit_rules)
        self._kind_counts: Counter[str] = Counter()
        self._venue: BinanceFakeVenue | None = None
        self._cursor = 0

    # -- counters -----------------------------------------------------------------------------
    @property
    def orders_created(self) -> int:
        return self.engine.orders_created

    @property
    def duplicate_attempts(self) -> int:
        """Orders posted under a client order id the account had used before."""
        return self.engine.duplicate_attempts

    @property
    def duplicate_orders(self) -> int:
        """Orders created under a client order id the account had used before."""
        return self.engine.duplicate_orders

    @property
    def early_requests(self) -> int:
        return sum(r.early for r in self.requests)

    # -- the venue's side ---------------------------------------------------------------------
    def attach(self, venue: BinanceFakeVenue) -> None:
        """Called by the venue that carries the desk: its book, frames and exchangeInfo."""
        if self._venue is not None and self._venue is not venue:
            raise ValueError("this trading desk already belongs to another venue")
        self._venue = venue
        recorded: dict[str, SymbolRules] = {}
        if venue.exchange_info is not None:
            for entry in json.loads(venue.exchange_info).get("symbols", []):
                recorded[str(entry["symbol"])] = SymbolRules.from_exchange_info(entry)
        replayed = {f.channel[1] for f in venue.frames} | set(venue.recorded_snapshots)
        for symbol in sorted(replayed):
            rules = recorded.get(symbol) or SymbolRules.default(symbol)
            self._symbol_rules.setdefault(symbol, rules)
        for symbol, rules in recorded.items():
            self._symbol_rules.setdefault(symbol, rules)

    def handles(self, path: str) -> bool:
        """Whether the venue should hand a request for ``path`` to the desk."""
        if path.endswith("/exchangeInfo"):
            return self._venue is not None and self._venue.exchange_info is None
        return path in TRADING_PATHS

    def on_frame(self, frame: TimelineFrame) -> None:
        """The venue replayed ``frame`` and updated its true book: match resting orders."""
        kind, symbol = frame.channel
        truth = self._venue.true_books.get(symbol) if self._venue is not None else None
        if truth is None:
            return
        if kind == "snapshot":
            self.engine.on_book(symbol, None)
        elif kind == "depth":
            data = unwrap(json.loads(frame.payload))[1]
            if int(data["u"]) != truth.last_id:
                return  # a stale diff the book ignored
            levels = [(True, float(p)) for p, _ in data["b"]]
            levels += [(False, float(p)) for p, _ in data["a"]]
            self.engine.on_book(symbol, levels)

    def advance(self, count: int | None = None) -> int:
        """Replay the venue's next ``count`` frames (None: all), as the timeline would; for
        tests that step the market by hand. Returns how many frames were replayed."""
        if self._venue is None:
            raise RuntimeError("the trading desk is not attached to a venue (BinanceFakeVenue)")
        if count is not None and count < 0:
            raise ValueError(f"advance(count) needs count >= 0, got {count}")
        frames = self._venue.frames[self._cursor :]
        frames = frames if count is None else frames[:count]
        for frame in frames:
            self._venue.on_frame(frame)
        self._cursor += len(frames)
        return len(frames)

    def book(self, symbol: str) -> L2Book | None:
        """The venue's current true book of ``symbol`` (None before its snapshot)."""
        return self._book(symbol)

    def exchange_info(self) -> dict[str, Any]:
        """exchangeInfo for the desk's symbols, as Binance's ``GET /api/v3/exchangeInfo``."""
        return {
            "timezone": "UTC",
            "serverTime": time.time_ns() // 1_000_000,
            "rateLimits": _RATE_LIMITS,
            "exchangeFilters": [],
            "symbols": [r.exchange_info_entry() for _, r in sorted(self._symbol_rules.items())],
        }

    # -- HTTP ---------------------------------------------------------------------------------
    async def rest(self, request: web.Request, path: str) -> web.StreamResponse:
        """Answer one request the venue routed here (see :meth:`handles`)."""
        if path.endswith("/exchangeInfo"):
            return web.json_response(self.exchange_info())
        kind = _KIND_OF_METHOD.get(request.method, "read")
        at = self._clock()
        query = request.rel_url.raw_query_string
        body = await request.text()
        params = dict(parse_qsl(query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        outcome, wait = self.faults.decide(len(self.requests), kind, self._kind_counts[kind])
        self._kind_counts[kind] += 1
        client_id = params.get("newClientOrderId") or params.get("origClientOrderId", "")
        early = at < self.not_before
        self.requests.append(
            RequestRecord(at, kind, request.method, path, outcome, client_id, early, wait)
        )
        if outcome == "429":
            self.not_before = max(self.not_before, at + wait)
            return _error(429, -1003, _TOO_MANY, {"Retry-After": f"{wait:g}"})
        if outcome in ("503", "timeout_before"):
            if outcome == "timeout_before":
                await self._hold(request)
            return _error(503, -1001, _INTERNAL)
        response = self._answer(request, path, params, query, body)
        if outcome == "5xx_after":
            return _error(503, -1007, _BACKEND_TIMEOUT)
        if outcome == "timeout_after":
            await self._hold(request)
        elif outcome == "drop_after" and request.transport is not None:
            request.transport.close()
        return response

    def _answer(
        self, request: web.Request, path: str, params: dict[str, str], query: str, body: str
    ) -> web.Response:
        try:
            self._authenticate(request, params, query, body)
            return web.json_response(self._dispatch(request.method, path, params))
        except BinanceError as exc:
            return _error(exc.status, exc.code, exc.msg)

    def _dispatch(self, method: str, path: str, params: dict[str, str]) -> Any:
        engine = self.engine
        symbol = params.get("symbol", "")
        if path == "/api/v3/order" and method == "POST":
            order, trades = engine.new_order(params)
            return _new_order_body(order, trades, params.get("newOrderRespType", "FULL"))
        if path == "/api/v3/order" and method == "GET":
            order_id, client_id = params.get("orderId"), params.get("origClientOrderId")
            return engine.query(symbol, order_id, client_id).body()
        if path == "/api/v3/order" and method == "DELETE":
            order_id, client_id = params.get("orderId"), params.get("origClientOrderId")
            order = engine.cancel(symbol, order_id, client_id)
            answer = {k: v for k, v in order.body().items() if k in _RESULT_KEYS}
            return {
                "symbol": order.symbol,
                "origClientOrderId": order.client_order_id,
                "orderId": order.order_id,
                "orderListId": -1,
                "clientOrderId": params.get("newClientOrderId") or f"cancel-{order.order_id}",
                "transactTime": order.update_ms,
                **answer,
                "selfTradePreventionMode": "NONE",
            }
        if method != "GET":
            raise BinanceError(-1000, f"{method} {path} is not supported by the fake venue")
        if path == "/api/v3/openOrders":
            rules = engine.rules_of(symbol) if symbol else None
            return [o.body() for o in engine.open_orders(rules.symbol if rules else None)]
        if path == "/api/v3/allOrders":
            rules = engine.rules_of(symbol)
            orders = [o for o in engine.orders.values() if o.symbol == rules.symbol]
            return [o.body() for o in _page(orders, params, "orderId", lambda o: o.order_id)]
        if path == "/api/v3/myTrades":
            rules = engine.rules_of(symbol)
            trades = [t for t in engine.trades if t.symbol == rules.symbol]
            if params.get("orderId"):
                trades = [t for t in trades if str(t.order_id) == params["orderId"]]
            return [t.body() for t in _page(trades, params, "fromId", lambda t: t.trade_id)]
        if path == "/api/v3/account":
            return self._account(params.get("omitZeroBalances") == "true")
        raise BinanceError(-1000, f"GET {path} is not supported by the fake venue")

    def _account(self, omit_zero: bool) -> dict[str, Any]:
        balances = self.engine.balances()
        if omit_zero:
            balances = [b for b in balances if Decimal(b["free"]) or Decimal(b["locked"])]
        return {
            "makerCommission": int(self.maker_fee * 10_000),
            "takerCommission": int(self.taker_fee * 10_000),
            "buyerCommission": 0,
            "sellerCommission": 0,
            "commissionRates": {
                "maker": fmt(self.maker_fee),
                "taker": fmt(self.taker_fee),
                "buyer": fmt(ZERO),
                "seller": fmt(ZERO),
            },
            "canTrade": True,
            "canWithdraw": True,
            "canDeposit": True,
            "brokered": False,
            "requireSelfTradePrevention": False,
            "preventSor": False,
            "updateTime": time.time_ns() // 1_000_000,
            "accountType": "SPOT",
            "balances": balances,
            "permissions": ["SPOT"],
            "uid": 1,
        }

    def _authenticate(
        self, request: web.Request, params: dict[str, str], query: str, body: str
    ) -> None:
        key = request.headers.get("X-MBX-APIKEY", "")
        if not key:
            raise BinanceError(-2014, "API-key format invalid.", 401)
        if not hmac.compare_digest(key, self.api_key):
            raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        (query, sig_q), (body, sig_b) = _unsigned(query), _unsigned(body)
        signature = sig_q or sig_b
        if not signature:
            raise BinanceError(
                -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
            )
        expected = hmac.new(self._secret, (query + body).encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            raise BinanceError(-1022, "Signature for this request is not valid.")
        stamp, window = params.get("timestamp", ""), params.get("recvWindow", "5000")
        if not stamp.isdigit() or not window.isdigit():
            raise BinanceError(
                -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."
            )
        if int(window) > 60_000:
            raise BinanceError(-1131, "recvWindow must be less than 60000")
        now = time.time_ns() // 1_000_000
        if int(stamp) >= now + 1000 or now - int(stamp) > int(window):
            raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")

    async def _hold(self, request: web.Request) -> None:
        """Keep the answer back until the client hangs up (it timed out), at most ``hold_s``."""
        deadline = self._clock() + self.faults.hold_s
        while self._clock() < deadline:
            transport = request.transport
            if transport is None or transport.is_closing():
                return
            await asyncio.sleep(0.005)

    def _on_execution(self, report: dict[str, Any]) -> None:
        if report["x"] == "TRADE" and self.faults.drops_fill(int(report["t"])):
            self.dropped_events += 1
            return
        self.events.append(report)
        if self.listener is not None:
            self.listener(report)

    def _book(self, symbol: str) -> L2Book | None:
        truth = self._venue.true_books.get(symbol) if self._venue is not None else None
        return truth.book if truth is not None else None

    def _rules(self, symbol: str) -> SymbolRules | None:
        return self._symbol_rules.get(symbol)


def _new_order_body(order: DeskOrder, trades: list[DeskTrade], resp_type: str) -> dict[str, Any]:
    """The ``POST /api/v3/order`` answer in its ACK, RESULT or FULL shape."""
    if resp_type not in ("ACK", "RESULT", "FULL"):
        raise BinanceError(-1100, "Illegal characters found in parameter 'newOrderRespType'.")
    answer: dict[str, Any] = {
        "symbol": order.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_order_id,
        "transactTime": order.update_ms,
    }
    if resp_type == "ACK":
        return answer
    body = order.body()
    answer |= {k: body[k] for k in _RESULT_KEYS}
    answer |= {"workingTime": order.time_ms, "selfTradePreventionMode": "NONE"}
    if resp_type == "FULL":
        answer["fills"] = [
            {
                "price": fmt(t.price),
                "qty": fmt(t.qty),
                "commission": fmt(t.commission),
                "commissionAsset": t.commission_asset,
                "tradeId": t.trade_id,
            }
            for t in trades
        ]
    return answer


def _page(
    items: list[T], params: Mapping[str, str], from_key: str, key: Callable[[T], int]
) -> list[T]:
    """Binance's paging: from the id ``from_key`` on, else the most recent ``limit``."""
    limit = params.get("limit", "500")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise BinanceError(-1100, "Illegal characters found in parameter 'limit'.")
    start = params.get(from_key)
    if start is not None:
        if not start.isdigit():
            raise BinanceError(-1100, f"Illegal characters found in parameter '{from_key}'.")
        return [x for x in items if key(x) >= int(start)][: int(limit)]
    return items[-int(limit) :]


def _unsigned(text: str) -> tuple[str, str]:
    """``text`` without its ``signature`` parameter, and the signature."""
    parts = text.split("&") if text else []
    kept = [p for p in parts if not p.startswith("signature=")]
    signature = next((p.split("=", 1)[1] for p in parts if p.startswith("signature=")), "")
    return "&".join(kept), signature


def _error(
    status: int, code: int, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response({"code": code, "msg": message}, status=status, headers=headers)
