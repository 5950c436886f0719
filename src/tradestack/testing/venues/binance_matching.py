"""The matching and account engine behind the fake Binance spot venue (no HTTP, deterministic).

It takes Binance ``POST /api/v3/order`` parameters as strings and answers as Binance does:
orders are checked against the symbol's filters (``PRICE_FILTER``, ``LOT_SIZE``,
``MARKET_LOT_SIZE``, ``NOTIONAL``/``MIN_NOTIONAL``) and the account's free balance, then matched
against the venue's true L2 book:

* market orders (by ``quantity``, or by ``quoteOrderQty``) and marketable limit orders walk the
  opposite levels, best first, as takers at each level's price; what an order took is remembered
  per level, so the next order finds the level smaller, until a replayed diff sets that level
  again (the exchange's own size wins) or a snapshot reloads the book;
* a limit order that does not cross rests; when a replayed frame moves the opposite side through
  it, it fills as maker at its limit price against the levels that cross it;
* IOC/FOK/market remainders expire; ``LIMIT_MAKER`` that would take is refused.

Balances: a buy locks ``qty * price`` of the quote (a market buy what its walk costs), a sell the
quantity of the base; commission (``maker_fee``/``taker_fee``) is charged in the asset received,
as Binance does without BNB, rounded to 8 decimals. Order ids and trade ids count up from 1
venue-wide. Binance lets a client order id be reused once the order is closed: such an order is
accepted and counted in ``duplicate_orders``; a reuse while the first is open is refused with
``-2010 "Duplicate order sent."``. Both count in ``duplicate_attempts``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from tradestack.data.book.l2book import L2Book
from tradestack.testing.venues.binance_rules import ZERO, BinanceError, SymbolRules, fmt

INSUFFICIENT = "Account has insufficient balance for requested action."
DUPLICATE = "Duplicate order sent."
OPEN_STATUSES = ("NEW", "PARTIALLY_FILLED")
_NUMBER = re.compile(r"^([0-9]{1,20})(\.[0-9]{1,20})?$")
_CLIENT_ID = re.compile(r"^[a-zA-Z0-9-_]{1,36}$")
_FEE_QUANTUM = Decimal("1e-8")
_UNLIMITED = Decimal("1e30")


def _missing(name: str) -> BinanceError:
    return BinanceError(
        -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


def to_decimal(value: Decimal | str | int, what: str) -> Decimal:
    """``value`` as a finite non-negative Decimal, or a ValueError naming ``what``."""
    try:
        result = Decimal(str(value))
    except ArithmeticError as exc:
        raise ValueError(f"{what} must be a decimal number, got {value!r}") from exc
    if not result.is_finite() or result < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value!r}")
    return result


@dataclass(slots=True)
class DeskOrder:
    """One order the venue accepted, with what it has filled and what balance it still holds."""

    symbol: str
    order_id: int
    client_order_id: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    price: Decimal  # 0 for market orders
    quote_qty: Decimal  # origQuoteOrderQty; 0 unless a market order by quote amount
    time_ms: int
    status: str = "NEW"
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    update_ms: int = 0
    reserved: Decimal = ZERO
    trade_ids: list[int] = field(default_factory=list)

    @property
    def leaves(self) -> Decimal:
        return self.qty - self.executed

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def body(self) -> dict[str, Any]:
        """The order as ``GET /api/v3/order`` answers it."""
        return {
            "symbol": self.symbol,
            "orderId": self.order_id,
            "orderListId": -1,
            "clientOrderId": self.client_order_id,
            "price": fmt(self.price),
            "origQty": fmt(self.qty),
            "executedQty": fmt(self.executed),
            "cummulativeQuoteQty": fmt(self.cum_quote),
            "status": self.status,
            "timeInForce": self.time_in_force,
            "type": self.type,
            "side": self.side,
            "stopPrice": fmt(ZERO),
            "icebergQty": fmt(ZERO),
            "time": self.time_ms,
            "updateTime": self.update_ms or self.time_ms,
            "isWorking": self.type != "MARKET",
            "workingTime": self.time_ms,
            "origQuoteOrderQty": fmt(self.quote_qty),
            "selfTradePreventionMode": "NONE",
        }


@dataclass(frozen=True, slots=True)
class DeskTrade:
    """One execution of one of the account's orders; ``trade_id`` is unique venue-wide."""

    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    commission: Decimal
    commission_asset: str
    time_ms: int
    maker: bool

    @property
    def quote_qty(self) -> Decimal:
        return self.price * self.qty

    def body(self) -> dict[str, Any]:
        """The trade as ``GET /api/v3/myTrades`` lists it."""
        return {
            "symbol": self.symbol,
            "id": self.trade_id,
            "orderId": self.order_id,
            "orderListId": -1,
            "price": fmt(self.price),
            "qty": fmt(self.qty),
            "quoteQty": fmt(self.quote_qty),
            "commission": fmt(self.commission),
            "commissionAsset": self.commission_asset,
            "time": self.time_ms,
            "isBuyer": self.side == "BUY",
            "isMaker": self.maker,
            "isBestMatch": True,
        }


def execution_report(order: DeskOrder, exec_type: str, trade: DeskTrade | None) -> dict[str, Any]:
    """The user-data-stream ``executionReport`` Binance pushes for an order event."""
    event_ms = trade.time_ms if trade else (order.update_ms or order.time_ms)
    return {
        "e": "executionReport",
        "E": event_ms,
        "s": order.symbol,
        "c": order.client_order_id,
        "S": order.side,
        "o": order.type,
        "f": order.time_in_force,
        "q": fmt(order.qty),
        "p": fmt(order.price),
        "x": exec_type,
        "X": order.status,
        "r": "NONE",
        "i": order.order_id,
        "l": fmt(trade.qty if trade else ZERO),
        "z": fmt(order.executed),
        "L": fmt(trade.price if trade else ZERO),
        "n": fmt(trade.commission) if trade else "0",
        "N": trade.commission_asset if trade else None,
        "T": event_ms,
        "t": trade.trade_id if trade else -1,
        "w": order.is_open,
        "m": bool(trade and trade.maker),
        "O": order.time_ms,
        "Z": fmt(order.cum_quote),
        "Y": fmt(trade.quote_qty if trade else ZERO),
        "Q": fmt(order.quote_qty),
    }


_Level = tuple[str, bool, float]  # (symbol, is_bid, price): one level of the true book


class MatchingEngine:
    """One account's orders, trades and balances against the venue's true books.

    ``book(symbol)`` is the venue's current L2 book (None before its snapshot); ``rules(symbol)``
    its filters (None: an unknown symbol); ``now_ms`` stamps orders and trades; ``listener``
    receives an :func:`execution_report` for every order event.
    """

    def __init__(
        self,
        balances: Mapping[str, Decimal | str | int],
        *,
        book: Callable[[str], L2Book | None],
        rules: Callable[[str], SymbolRules | None],
        now_ms: Callable[[], int],
        maker_fee: Decimal = Decimal("0.001"),
        taker_fee: Decimal = Decimal("0.001"),
        listener: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.free = {asset: to_decimal(v, f"balance of {asset}") for asset, v in balances.items()}
        self.locked: dict[str, Decimal] = {}
        self.maker_fee = to_decimal(maker_fee, "maker_fee")
        self.taker_fee = to_decimal(taker_fee, "taker_fee")
        self.orders: dict[int, DeskOrder] = {}
        self.trades: list[DeskTrade] = []
        self.orders_created = 0
        self.duplicate_attempts = 0
        self.duplicate_orders = 0
        self.listener = listener
        self._book = book
        self._rules = rules
        self._now_ms = now_ms
        self._by_client_id: dict[tuple[str, str], list[int]] = {}
        self._taken: dict[_Level, Decimal] = {}

    # -- requests -----------------------------------------------------------------------------
    def new_order(self, params: Mapping[str, str]) -> tuple[DeskOrder, list[DeskTrade]]:
        """``POST /api/v3/order``: the accepted order and its immediate fills."""
        rules = self.rules_of(params.get("symbol", ""))
        side = _choice(params, "side", ("BUY", "SELL"), -1117, "Invalid side.")
        kind = _choice(
            params, "type", ("LIMIT", "MARKET", "LIMIT_MAKER"), -1116, "Invalid orderType."
        )
        market = kind == "MARKET"
        client_id = params.get("newClientOrderId") or f"desk-{len(self.orders) + 1}"
        if not _CLIENT_ID.match(client_id):
            raise BinanceError(
                -1100,
                "Illegal characters found in parameter 'newClientOrderId'; legal range is "
                "'^[a-zA-Z0-9-_]{1,36}$'.",
            )
        buy = side == "BUY"
        tif = "GTC"
        price = ZERO
        quote_qty = ZERO
        qty = _UNLIMITED
        if market and "quantity" not in params and "quoteOrderQty" in params:
            quote_qty = _number(params, "quoteOrderQty", rules.quote_precision)
            if quote_qty <= 0:
                raise BinanceError(-1013, "Invalid quoteOrderQty.")
        else:
            qty = _number(params, "quantity", rules.base_precision)
            self._check_lot(rules, qty, market=market)
        if not market:
            price = _number(params, "price", rules.quote_precision)
            self._check_price(rules, price)
            if kind == "LIMIT":
                tif = _choice(
                    params, "timeInForce", ("GTC", "IOC", "FOK"), -1115, "Invalid timeInForce."
                )
        walk = self._walk(rules.symbol, buy, qty, None if market else price, quote_qty or None)
        reference = (walk[0][0] if walk else ZERO) if market else price
        notional = quote_qty or qty * reference
        if reference and notional < rules.min_notional:
            raise BinanceError(-1013, f"Filter failure: {rules.notional_filter}")
        reused = self._check_duplicate(rules.symbol, client_id)
        if kind == "LIMIT_MAKER" and walk:
            raise BinanceError(-2010, "Order would immediately match and take.")
        walked_qty = sum((q for _, q, _ in walk), ZERO)
        walked_cost = sum((p * q for p, q, _ in walk), ZERO)
        if market:
            reserve = walked_cost if buy else (walked_qty if quote_qty else qty)
        else:
            reserve = qty * price if buy else qty
        asset = rules.quote if buy else rules.base
        if self.free.get(asset, ZERO) < reserve:
            raise BinanceError(-2010, INSUFFICIENT)
        if tif == "FOK" and walked_qty < qty:
            walk = []  # all or nothing: the order is created and expires unfilled
        now = self._now_ms()
        order = DeskOrder(
            rules.symbol,
            len(self.orders) + 1,
            client_id,
            side,
            kind,
            tif,
            walked_qty if quote_qty else qty,
            price,
            quote_qty,
            now,
            update_ms=now,
        )
        self._accept(order, asset, reserve, reused=reused)
        trades = [self._fill(order, rules, p, q, level, maker=False) for p, q, level in walk]
        if order.is_open and (market or tif in ("IOC", "FOK")):
            self._close(order, "EXPIRED")
        elif order.is_open:
            self._release(order, rules, order.reserved - self._needed(order))
        return order, trades

    def cancel(self, symbol: str, order_id: str | None, client_id: str | None) -> DeskOrder:
        """``DELETE /api/v3/order``: cancel an open order (``-2011`` if there is none)."""
        rules = self.rules_of(symbol)
        order = self._lookup(rules.symbol, order_id, client_id, open_first=True)
        if order is None or not order.is_open:
            raise BinanceError(-2011, "Unknown order sent.")
        self._close(order, "CANCELED")
        return order

    def query(self, symbol: str, order_id: str | None, client_id: str | None) -> DeskOrder:
        """``GET /api/v3/order`` (``-2013`` if there is no such order)."""
        rules = self.rules_of(symbol)
        order = self._lookup(rules.symbol, order_id, client_id, open_first=True)
        if order is None:
            raise BinanceError(-2013, "Order does not exist.")
        return order

    def open_orders(self, symbol: str | None = None) -> list[DeskOrder]:
        return [
            o for o in self.orders.values() if o.is_open and (symbol is None or o.symbol == symbol)
        ]

    def rules_of(self, symbol: str) -> SymbolRules:
        """The symbol's rules; ``-1102`` if no symbol was sent, ``-1121`` if it is unknown."""
        if not symbol:
            raise _missing("symbol")
        rules = self._rules(symbol)
        if rules is None:
            raise BinanceError(-1121, "Invalid symbol.")
        return rules

    def balances(self) -> list[dict[str, str]]:
        assets = sorted(set(self.free) | set(self.locked))
        return [
            {
                "asset": a,
                "free": fmt(self.free.get(a, ZERO)),
                "locked": fmt(self.locked.get(a, ZERO)),
            }
            for a in assets
        ]

    # -- the replayed book --------------------------------------------------------------------
    def on_book(self, symbol: str, levels: Iterable[tuple[bool, float]] | None) -> list[DeskTrade]:
        """The venue's book changed: ``levels`` were set by a diff (None: a new snapshot).
        What the account took from those levels is forgotten, then resting orders the book now
        crosses fill as makers at their limit price. Returns the new trades."""
        if levels is None:
            for level in [lv for lv in self._taken if lv[0] == symbol]:
                del self._taken[level]
        else:
            for is_bid, at in levels:
                self._taken.pop((symbol, is_bid, at), None)
        rules = self._rules(symbol)
        trades: list[DeskTrade] = []
        if rules is None:
            return trades
        for order in self.open_orders(symbol):
            buy = order.side == "BUY"
            for price, size, level in self._levels(symbol, bids=not buy):
                if (price > order.price) if buy else (price < order.price):
                    break
                take = min(size, order.leaves)
                trades.append(self._fill(order, rules, order.price, take, level, maker=True))
                if not order.is_open:
                    break
        return trades

    def _levels(self, symbol: str, *, bids: bool) -> Iterator[tuple[Decimal, Decimal, _Level]]:
        """The book's levels on one side, best first, less what the account took from them."""
        book = self._book(symbol)
        if book is None:
            return
        depth, seen = 32, 0
        while True:
            levels = book.bids(depth) if bids else book.asks(depth)
            for price, size in levels[seen:]:
                level = (symbol, bids, price)
                left = Decimal(repr(size)) - self._taken.get(level, ZERO)
                if left > 0:
                    yield Decimal(repr(price)), left, level
            if len(levels) < depth:
                return
            seen, depth = len(levels), depth * 8

    def _walk(
        self,
        symbol: str,
        buy: bool,
        qty: Decimal,
        limit: Decimal | None,
        budget: Decimal | None,
    ) -> list[tuple[Decimal, Decimal, _Level]]:
        """What a taker order would fill, level by level, without changing anything."""
        rules = self.rules_of(symbol)
        fills: list[tuple[Decimal, Decimal, _Level]] = []
        remaining = qty
        for price, size, level in self._levels(symbol, bids=not buy):
            if limit is not None and ((price > limit) if buy else (price < limit)):
                break
            take = min(size, remaining)
            if budget is not None:
                affordable = (budget / price).quantize(rules.step_size, rounding=ROUND_DOWN)
                take = min(take, affordable)
                if take <= 0:
                    break
                budget -= take * price
            fills.append((price, take, level))
            remaining -= take
            if remaining <= 0:
                break
        return fills

    # -- internals ----------------------------------------------------------------------------
    def _check_price(self, rules: SymbolRules, price: Decimal) -> None:
        if (
            price < rules.min_price
            or price > rules.max_price
            or (price - rules.min_price) % rules.tick_size
        ):
            raise BinanceError(-1013, "Filter failure: PRICE_FILTER")

    def _check_lot(self, rules: SymbolRules, qty: Decimal, *, market: bool) -> None:
        if qty < rules.min_qty or qty > rules.max_qty or (qty - rules.min_qty) % rules.step_size:
            raise BinanceError(-1013, "Filter failure: LOT_SIZE")
        if market and rules.market_max_qty and qty > rules.market_max_qty:
            raise BinanceError(-1013, "Filter failure: MARKET_LOT_SIZE")

    def _check_duplicate(self, symbol: str, client_id: str) -> bool:
        """Whether the id was used before; refused while an order under it is open."""
        previous = self._by_client_id.get((symbol, client_id), [])
        if previous:
            self.duplicate_attempts += 1
            if any(self.orders[i].is_open for i in previous):
                raise BinanceError(-2010, DUPLICATE)
        return bool(previous)

    def _accept(self, order: DeskOrder, asset: str, reserve: Decimal, *, reused: bool) -> None:
        if reused:  # Binance takes it: a client order id is free again once its order closed
            self.duplicate_orders += 1
        self.orders[order.order_id] = order
        self._by_client_id.setdefault((order.symbol, order.client_order_id), []).append(
            order.order_id
        )
        self.orders_created += 1
        self.free[asset] = self.free.get(asset, ZERO) - reserve
        self.locked[asset] = self.locked.get(asset, ZERO) + reserve
        order.reserved = reserve
        self._emit(order, "NEW", None)

    def _fill(
        self,
        order: DeskOrder,
        rules: SymbolRules,
        price: Decimal,
        qty: Decimal,
        level: _Level,
        *,
        maker: bool,
    ) -> DeskTrade:
        buy = order.side == "BUY"
        rate = self.maker_fee if maker else self.taker_fee
        received = qty if buy else qty * price
        fee = (received * rate).quantize(_FEE_QUANTUM, rounding=ROUND_HALF_UP)
        paid, got = (rules.quote, rules.base) if buy else (rules.base, rules.quote)
        spent = qty * price if buy else qty
        self.locked[paid] -= spent
        order.reserved -= spent
        self.free[got] = self.free.get(got, ZERO) + received - fee
        self._taken[level] = self._taken.get(level, ZERO) + qty
        now = self._now_ms()
        trade = DeskTrade(
            len(self.trades) + 1, order.order_id, order.symbol, order.side, price, qty, fee, got,
            now, maker,
        )  # fmt: skip
        self.trades.append(trade)
        order.trade_ids.append(trade.trade_id)
        order.executed += qty
        order.cum_quote += qty * price
        order.update_ms = now
        order.status = "FILLED" if order.executed >= order.qty else "PARTIALLY_FILLED"
        if order.status == "FILLED":
            self._release(order, rules, order.reserved)
        self._emit(order, "TRADE", trade)
        return trade

    def _needed(self, order: DeskOrder) -> Decimal:
        return order.leaves * order.price if order.side == "BUY" else order.leaves

    def _release(self, order: DeskOrder, rules: SymbolRules, amount: Decimal) -> None:
        if amount <= 0:
            return
        asset = rules.quote if order.side == "BUY" else rules.base
        self.locked[asset] -= amount
        self.free[asset] = self.free.get(asset, ZERO) + amount
        order.reserved -= amount

    def _close(self, order: DeskOrder, status: str) -> None:
        self._release(order, self.rules_of(order.symbol), order.reserved)
        order.status = status
        order.update_ms = self._now_ms()
        self._emit(order, status, None)

    def _lookup(
        self, symbol: str, order_id: str | None, client_id: str | None, *, open_first: bool
    ) -> DeskOrder | None:
        if order_id:
            if not order_id.isdigit():
                raise BinanceError(-1100, "Illegal characters found in parameter 'orderId'.")
            order = self.orders.get(int(order_id))
            return order if order is not None and order.symbol == symbol else None
        if not client_id:
            raise BinanceError(
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        found = [self.orders[i] for i in self._by_client_id.get((symbol, client_id), [])]
        if open_first and any(o.is_open for o in found):
            return next(o for o in found if o.is_open)
        return found[-1] if found else None

    def _emit(self, order: DeskOrder, exec_type: str, trade: DeskTrade | None) -> None:
        if self.listener is not None:
            self.listener(execution_report(order, exec_type, trade))


def _choice(
    params: Mapping[str, str], name: str, allowed: tuple[str, ...], code: int, msg: str
) -> str:
    value = params.get(name, "")
    if not value:
        raise _missing(name)
    if value not in allowed:
        raise BinanceError(code, msg)
    return value


def _number(params: Mapping[str, str], name: str, precision: int) -> Decimal:
    text = params.get(name, "")
    if not text:
        raise _missing(name)
    if not _NUMBER.match(text):
        raise BinanceError(
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is "
            "'^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    value = Decimal(text)
    if value != value.quantize(Decimal(1).scaleb(-precision), rounding=ROUND_DOWN):
        raise BinanceError(-1111, f"Parameter '{name}' has too much precision.")
    return value
