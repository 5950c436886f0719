"""The context a strategy acts through: orders, positions, portfolio, clock, history, timers."""

from __future__ import annotations

import logging
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from tradestack.core.ids import InstrumentId, client_order_id
from tradestack.core.instruments import Instrument
from tradestack.core.orders import (
    InvalidOrder,
    Order,
    OrderRejected,
    OrderSide,
    OrderType,
    TimeInForce,
)
from tradestack.core.positions import Position
from tradestack.core.series import FloatArray

if TYPE_CHECKING:
    from tradestack.core.clock import Clock
    from tradestack.execution.sim.book_view import BookView
    from tradestack.portfolio.account import Portfolio

InstrumentRef = InstrumentId | str
HistoryFn = Callable[[InstrumentId, str, int | None], FloatArray]
PreTradeFn = Callable[[Order], str | None]


class StrategyContext:
    """Everything a strategy may do or know, the same in backtest, paper and live.

    ``submit``/``buy``/``sell``/``cancel`` send orders; ``order_target_qty`` and
    ``order_target_percent`` trade the difference to a target; ``history`` returns only data up to
    the current event. ``pre_trade``, when set, sees every order before it is sent and may deny
    it with a reason: the order is then REJECTED with that reason and never reaches the venue.
    """

    def __init__(
        self,
        *,
        strategy_name: str,
        clock: Clock,
        portfolio: Portfolio,
        instruments: dict[InstrumentId, Instrument],
        send: Callable[[Order], None],
        cancel: Callable[[Order], bool],
        history: HistoryFn,
        set_timer: Callable[[str, int, int | None], None],
        book: Callable[[InstrumentId], BookView] | None = None,
    ) -> None:
        self.clock = clock
        self.portfolio = portfolio
        self.instruments = instruments
        self.log = logging.getLogger(f"tradestack.strategy.{strategy_name}")
        self._strategy_name = strategy_name
        self._send = send
        self._cancel = cancel
        self._history = history
        self._set_timer = set_timer
        self._book = book
        symbols = [i.symbol for i in instruments]
        self._by_symbol = {i.symbol: i for i in instruments if symbols.count(i.symbol) == 1}
        self._sequence = 0
        self.pre_trade: PreTradeFn | None = None
        self.orders: dict[str, Order] = {}
        self._open: dict[str, Order] = {}

    # -- lookups --------------------------------------------------------------------------------
    def instrument_id(self, ref: InstrumentRef) -> InstrumentId:
        """Resolve an :class:`InstrumentId` or a bare symbol / ``"SYMBOL@venue"`` string."""
        if isinstance(ref, InstrumentId):
            if ref not in self.instruments:
                raise KeyError(
                    f"unknown instrument {ref}; known: {', '.join(map(str, self.instruments))}"
                )
            return ref
        if ref in self._by_symbol:
            return self._by_symbol[ref]
        if "@" not in ref and any(i.symbol == ref for i in self.instruments):
            raise KeyError(f"symbol {ref!r} trades on several venues; use 'SYMBOL@venue'")
        return self.instrument_id(InstrumentId.parse(ref))

    def instrument(self, ref: InstrumentRef) -> Instrument:
        """The instrument's trading rules."""
        found = self.instruments.get(ref) if isinstance(ref, InstrumentId) else None
        return found if found is not None else self.instruments[self.instrument_id(ref)]

    def position(self, ref: InstrumentRef) -> Position:
        """The net position in one instrument."""
        return self.portfolio.position(self.instrument_id(ref))

    def history(self, ref: InstrumentRef, field: str = "close", n: int | None = None) -> FloatArray:
        """The last ``n`` values (all when None) of a bar field up to and including now."""
        return self._history(self.instrument_id(ref), field, n)

    def book(self, ref: InstrumentRef) -> BookView:
        """The order book as received so far (order-book backtests and live feeds only)."""
        if self._book is None:
            raise ValueError("this run has no order book (it replays bars); use ctx.history")
        return self._book(self.instrument_id(ref))

    def open_orders(self, ref: InstrumentRef | None = None) -> list[Order]:
        """Orders not yet filled, canceled, rejected or expired (of one instrument, or all)."""
        inst = None if ref is None else self.instrument_id(ref)
        return [o for o in self._open.values() if inst is None or o.instrument_id == inst]

    def order_updated(self, order: Order) -> None:
        """Engine hook: keep the open-order index in step with the order's status."""
        if not order.is_open:
            self._open.pop(order.client_order_id, None)

    def now_ns(self) -> int:
        return self.clock.now_ns()

    # -- orders ---------------------------------------------------------------------------------
    def submit(
        self,
        ref: InstrumentRef,
        side: OrderSide,
        qty: Decimal | float | int,
        order_type: OrderType = OrderType.MARKET,
        *,
        price: Decimal | float | None = None,
        trigger_price: Decimal | float | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        reduce_only: bool = False,
        post_only: bool = False,
        tag: str = "",
    ) -> Order:
        """Create an order and send it.

        Float quantities and prices are rounded to the instrument's lot and tick; Decimals are
        taken as given, so an off-grid Decimal is rejected by the venue with a reason.
        """
        inst = self.instrument(ref)
        size = qty if isinstance(qty, Decimal) else inst.round_qty(qty)
        if size <= 0:
            raise InvalidOrder(
                f"{inst.id}: qty {qty} is not positive after rounding to lot size {inst.lot_size}"
            )
        self._sequence += 1
        order = Order(
            client_order_id(self._strategy_name, inst.id, tag or order_type.value, self._sequence),
            inst.id,
            side,
            size,
            order_type,
            price=_on_grid(inst.round_price, price),
            trigger_price=_on_grid(inst.round_price, trigger_price),
            time_in_force=time_in_force,
            reduce_only=reduce_only,
            post_only=post_only,
            ts_init_ns=self.clock.now_ns(),
            tag=tag,
        )
        self.orders[order.client_order_id] = order
        if self.pre_trade is not None:
            denied = self.pre_trade(order)
            if denied:
                order.apply(OrderRejected(order.client_order_id, self.clock.now_ns(), denied))
                return order
        self._open[order.client_order_id] = order
        self._send(order)
        return order

    def buy(self, ref: InstrumentRef, qty: Decimal | float | int, **kwargs: object) -> Order:
        """Buy ``qty``: market, or limit/stop/stop-limit given ``price``/``trigger_price``."""
        return self.submit(ref, OrderSide.BUY, qty, _order_type(kwargs), **kwargs)  # type: ignore[arg-type]

    def sell(self, ref: InstrumentRef, qty: Decimal | float | int, **kwargs: object) -> Order:
        """Sell ``qty``: market, or limit/stop/stop-limit given ``price``/``trigger_price``."""
        return self.submit(ref, OrderSide.SELL, qty, _order_type(kwargs), **kwargs)  # type: ignore[arg-type]

    def cancel(self, order: Order | str) -> bool:
        """Cancel a working order (by object or client order id); False if it is not working."""
        target = self.orders.get(order) if isinstance(order, str) else order
        if target is None:
            raise KeyError(f"no order {order!r}")
        return self._cancel(target)

    def order_target_qty(
        self, ref: InstrumentRef, target: Decimal | float | int, tag: str = ""
    ) -> Order | None:
        """Send the market order that takes position plus open market orders to ``target``."""
        inst = self.instrument(ref)
        goal = target if isinstance(target, Decimal) else inst.round_qty(target)
        delta = goal - self.portfolio.position(inst.id).qty
        for o in self._open.values():
            if o.instrument_id == inst.id and o.order_type is OrderType.MARKET:
                delta -= o.leaves_qty if o.side is OrderSide.BUY else -o.leaves_qty
        if delta == 0:
            return None
        side = OrderSide.BUY if delta > 0 else OrderSide.SELL
        return self.submit(inst.id, side, abs(delta), tag=tag)

    def order_target_percent(
        self, ref: InstrumentRef, fraction: float, tag: str = ""
    ) -> Order | None:
        """Target a position worth ``fraction`` of equity at the last price (negative = short)."""
        inst = self.instrument(ref)
        price = self.portfolio.mark_price(inst.id)
        if not price > 0:
            raise ValueError(f"no price yet for {inst.id}: order_target_percent needs a mark")
        value = fraction * self.portfolio.equity()
        qty = inst.round_qty(abs(value) / (price * float(inst.multiplier)))
        return self.order_target_qty(inst.id, qty if value >= 0 else -qty, tag=tag)

    # -- timers ---------------------------------------------------------------------------------
    def set_timer(self, name: str, interval_ns: int, start_ns: int | None = None) -> None:
        """Call ``on_timer(name)`` every ``interval_ns`` from ``start_ns``."""
        if interval_ns <= 0:
            raise ValueError(f"timer {name!r}: interval_ns must be > 0, got {interval_ns}")
        if start_ns is not None and start_ns < self.clock.now_ns():
            raise ValueError(f"timer {name!r}: start_ns {start_ns} is before now ({self.now_ns()})")
        self._set_timer(name, interval_ns, start_ns)


def _on_grid(
    rounder: Callable[[Decimal | float], Decimal], value: Decimal | float | None
) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    return rounder(value)


def _order_type(kwargs: dict[str, object]) -> OrderType:
    has_price = kwargs.get("price") is not None
    has_trigger = kwargs.get("trigger_price") is not None
    if has_price and has_trigger:
        return OrderType.STOP_LIMIT
    if has_trigger:
        return OrderType.STOP
    return OrderType.LIMIT if has_price else OrderType.MARKET
