"""The strategy on a live feed with real orders: the bridge between a strategy's context and the
order manager.

:class:`LiveTrader` gives the strategy the same :class:`~tradestack.engine.context.
StrategyContext` as a backtest: ``ctx.book()`` reads the live order book the feed keeps,
quotes, trades and book changes arrive as events, timers run on the wall clock. An order the
strategy sends goes to :meth:`OrderManager.submit_order` (durable intent, client order id from
the context's own numbering, continued from the state database); the manager's answers move the
context's order, and each fill, once stored, reaches the portfolio and then ``on_fill``. With
``dry_run`` nothing is sent: each order and cancel is logged as the exact request it would be,
and orders stay working so the strategy behaves as it would.
"""

from __future__ import annotations

import asyncio
import heapq
import json
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from decimal import Decimal

import numpy as np

from tradestack.core.clock import LiveClock
from tradestack.core.events import Bar, QuoteTick, TradeTick
from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument
from tradestack.core.orders import (
    Fill,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderStatus,
    OrderSubmitted,
)
from tradestack.data.book.l2book import L2Book
from tradestack.engine.context import HistoryFn, StrategyContext
from tradestack.engine.strategy import Strategy, overrides
from tradestack.execution.oms import OrderDenied, OrderManager
from tradestack.execution.sim.book_view import BookView
from tradestack.portfolio.account import Portfolio
from tradestack.storage.state import OrderRow

log = logging.getLogger(__name__)


class LiveBookView(BookView):
    """:class:`BookView`'s reads over a live :class:`L2Book` (NaN for an empty side)."""

    __slots__ = ("_book",)

    def __init__(self, book: L2Book) -> None:  # no simulated venue behind it
        self._book = book

    def _top(self, bid: bool) -> tuple[float, float]:
        level = self._book.best_bid() if bid else self._book.best_ask()
        return level if level is not None else (float("nan"), float("nan"))

    @property
    def best_bid(self) -> float:
        return self._top(True)[0]

    @property
    def best_ask(self) -> float:
        return self._top(False)[0]

    @property
    def best_bid_size(self) -> float:
        return self._top(True)[1]

    @property
    def best_ask_size(self) -> float:
        return self._top(False)[1]

    def bids(self, depth: int = 10) -> list[tuple[float, float]]:
        return self._book.bids(depth)

    def asks(self, depth: int = 10) -> list[tuple[float, float]]:
        return self._book.asks(depth)


class LiveTrader:
    """Runs one strategy on one instrument's live book through an order manager (or dry)."""

    def __init__(
        self,
        strategy: Strategy,
        instrument: Instrument,
        book: L2Book | None,
        portfolio: Portfolio,
        *,
        oms: OrderManager | None,
        dry_log: Callable[[str], None] = print,
        history: HistoryFn | None = None,
        others: Sequence[Instrument] = (),
    ) -> None:
        self.strategy = strategy
        self.instrument = instrument
        self.portfolio = portfolio
        self.oms = oms
        self.dry_log = dry_log
        self.view = LiveBookView(book) if book is not None else None
        self.clock = LiveClock()
        instruments = {i.id: i for i in (instrument, *others)}
        self.ctx = StrategyContext(
            strategy_name=strategy.name,
            clock=self.clock,
            portfolio=portfolio,
            instruments=instruments,
            send=self._send,
            cancel=self._cancel,
            history=history or self._no_history,
            set_timer=self._set_timer,
            book=self._book if book is not None else None,
        )
        self.tasks: set[asyncio.Task[None]] = set()
        self._submitting: dict[str, asyncio.Task[None]] = {}
        self.errors: list[BaseException] = []
        self._timers: list[tuple[int, int, str, int]] = []
        self._seq = 0
        self._top = (float("nan"), float("nan"))
        self._wants = {h: overrides(strategy, h) for h in ("on_quote", "on_trade", "on_book")}
        if oms is not None:
            mine = [r.sequence for r in oms.store.orders() if r.strategy == strategy.name]
            self.ctx._sequence = max(mine, default=0)
            oms.on_fill = self._on_fill

    # -- the strategy's side -------------------------------------------------------------------
    def start(self) -> None:
        self.strategy.on_start(self.ctx)

    def on_bar(self, bar: Bar) -> None:
        """A completed bar (its history already holds it): mark the position, then ``on_bar``."""
        self.portfolio._marks[bar.instrument_id] = bar.close
        self.strategy.on_bar(self.ctx, bar)

    def on_book_change(self, ts_ns: int) -> None:
        """The book moved (one venue message applied): book and quote handlers."""
        assert self.view is not None, "a bar session has no book"
        mid = self.view.mid
        if mid == mid:
            self.portfolio._marks[self.instrument.id] = mid
        if self._wants["on_book"]:
            self.strategy.on_book(self.ctx, self.view)
        top = (self.view.best_bid, self.view.best_ask)
        if self._wants["on_quote"] and top != self._top:
            self._top = top
            quote = QuoteTick(
                self.instrument.id, ts_ns, time.time_ns(), top[0], self.view.best_bid_size,
                top[1], self.view.best_ask_size,
            )  # fmt: skip
            self.strategy.on_quote(self.ctx, quote)

    def on_trade(self, trade: TradeTick) -> None:
        if self._wants["on_trade"]:
            self.strategy.on_trade(self.ctx, trade)

    def fire_timers(self, now_ns: int) -> None:
        while self._timers and self._timers[0][0] <= now_ns:
            when, seq, name, interval = heapq.heappop(self._timers)
            heapq.heappush(self._timers, (when + interval, seq, name, interval))
            self.strategy.on_timer(self.ctx, name, when)

    async def settle(self) -> None:
        """Wait for every request in flight; re-raise the first error one of them had."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        if self.errors:
            raise self.errors[0]

    # -- the context's callbacks ---------------------------------------------------------------
    def _no_history(self, inst: InstrumentId, column: str, n: int | None) -> np.ndarray:
        raise ValueError("live order-book trading keeps no bar history; read ctx.book()")

    def _book(self, inst: InstrumentId) -> BookView:
        if inst != self.instrument.id or self.view is None:
            raise KeyError(f"no live book for {inst}; this session trades {self.instrument.id}")
        return self.view

    def _set_timer(self, name: str, interval_ns: int, start_ns: int | None) -> None:
        first = self.clock.now_ns() + interval_ns if start_ns is None else start_ns
        self._seq += 1
        heapq.heappush(self._timers, (first, self._seq, name, interval_ns))

    def _send(self, order: Order) -> None:
        now = self.clock.now_ns()
        if self.oms is None:
            self.dry_log("DRY RUN submit " + json.dumps(_request(order)))
            order.apply(OrderSubmitted(order.client_order_id, now))
            order.apply(OrderAccepted(order.client_order_id, now, "dry-run"))
            self.ctx.order_updated(order)
            return
        # the context numbered this order just now; later orders must not change its sequence
        sent = self._spawn(self._submit(order, self.ctx._sequence))
        self._submitting[order.client_order_id] = sent

    def _cancel(self, order: Order) -> bool:
        if order.status.is_terminal:
            return False
        if self.oms is None:
            self.dry_log(f"DRY RUN cancel {order.client_order_id}")
            order.apply(OrderCanceled(order.client_order_id, self.clock.now_ns(), "dry run"))
            self.ctx.order_updated(order)
            return True
        self._spawn(self._cancel_at_venue(order))
        return True

    # -- the order manager's side --------------------------------------------------------------
    def _spawn(self, work: Coroutine[object, object, None]) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self._submitting = {k: t for k, t in self._submitting.items() if not t.done()}
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            assert exc is not None
            log.error("order request failed: %s", exc)
            self.errors.append(exc)

    async def _submit(self, order: Order, sequence: int) -> None:
        assert self.oms is not None
        intent = order.tag or order.order_type.value
        try:
            row = await self.oms.submit_order(order, sequence=sequence, intent=intent)
        except OrderDenied as exc:
            order.apply(OrderRejected(order.client_order_id, self.clock.now_ns(), str(exc)))
            self.ctx.order_updated(order)
            return
        self._follow(order, row)

    async def _cancel_at_venue(self, order: Order) -> None:
        assert self.oms is not None
        sent = self._submitting.get(order.client_order_id)
        if sent is not None:  # the cancel goes after the order's own request
            await asyncio.wait([sent])
        if self.oms.store.order(order.client_order_id) is None:
            return  # denied before it was stored
        self._follow(order, await self.oms.cancel(order.client_order_id))

    def _follow(self, order: Order, row: OrderRow) -> None:
        """Move the context's order to where the venue's answers put the stored one."""
        now = self.clock.now_ns()
        coid = order.client_order_id
        if order.status is OrderStatus.INITIALIZED:
            order.apply(OrderSubmitted(coid, now))
        if row.status is OrderStatus.REJECTED:
            order.apply(OrderRejected(coid, now, row.reason))
        elif order.status is OrderStatus.SUBMITTED and row.venue_order_id:
            order.apply(OrderAccepted(coid, now, row.venue_order_id))
        if row.status is OrderStatus.CANCELED and not order.status.is_terminal:
            order.apply(OrderCanceled(coid, now, row.reason))
        self.ctx.order_updated(order)

    def _on_fill(self, fill: Fill, base_fee: Decimal) -> None:
        order = self.ctx.orders.get(fill.client_order_id)
        if order is None:  # an order of an earlier session, settled at start
            self.portfolio.apply_fill(fill, base_fee=base_fee)
            return
        if order.status is OrderStatus.INITIALIZED:
            order.apply(OrderSubmitted(order.client_order_id, fill.ts_event_ns))
        if order.status is OrderStatus.SUBMITTED:
            order.apply(OrderAccepted(order.client_order_id, fill.ts_event_ns, ""))
        order.apply(fill)
        self.ctx.order_updated(order)
        self.portfolio.apply_fill(fill, base_fee=base_fee)
        self.strategy.on_fill(self.ctx, fill)


def _request(order: Order) -> dict[str, str | None]:
    """The order as the request it would be: every field a venue would see."""
    return {
        "client_order_id": order.client_order_id,
        "instrument": str(order.instrument_id),
        "side": order.side.value,
        "type": order.order_type.value,
        "qty": str(order.qty),
        "price": None if order.price is None else str(order.price),
        "time_in_force": order.time_in_force.value,
    }


def seed_positions(portfolio: Portfolio, oms: OrderManager, instrument: Instrument) -> Decimal:
    """Put the stored position (after reconciliation) into the strategy's portfolio."""
    held = oms.store.positions().get(instrument.id)
    if held is None or not held.qty:
        return Decimal(0)
    portfolio.seed_position(instrument.id, held.qty, held.avg_price, ts_ns=time.time_ns())
    return held.qty
