"""The order manager: every order's life from a durable intent to its last fill.

1. The client order id is derived from the durable intent ``(strategy, instrument, intent,
   sequence)``, the sequence reserved in the state store, so a retry or a restart reuses it.
2. The intent row is committed before the request leaves; the row's ``submit_state`` says where
   the request is (``pending`` → ``sent`` → ``answered``, or ``unknown``).
3. A timeout, reset or 5xx is an unknown outcome: the order is looked up by client order id
   until the venue says what happened. Only after the venue has said "no such order"
   ``not_found_confirmations`` times in a row is the same request (same id) sent again; it is
   never rejected locally and never resent blindly.
4. Fills are stored once per venue trade id (a replayed or duplicated trade changes nothing).
5. A 429 with Retry-After holds every request until it elapses (then the same request goes
   again: the venue did not process it); a client-side limiter keeps the rate under the venue's.
6. With a kill switch, every new order reads it first (one ``stat`` per file): HALTED denies
   it, REDUCING denies what would grow a position; :meth:`OrderManager.halt` persists HALTED
   and sends a cancel for every open order. The switch's state file outlives a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TypeVar

from aiolimiter import AsyncLimiter

from tradestack.core.ids import InstrumentId, client_order_id
from tradestack.core.orders import (
    Fill,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderExpired,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderSubmitted,
    OrderType,
    TimeInForce,
)
from tradestack.execution.oms.crash import crash_point
from tradestack.execution.oms.gateway import (
    OrderNotFound,
    RateLimited,
    UnknownOutcome,
    VenueGateway,
    VenueOrder,
    VenueRejected,
    VenueTrade,
)
from tradestack.risk.kill_switch import KillSwitch, KillSwitchState
from tradestack.storage.state import PENDING, SENT, UNKNOWN, OrderRow, StateStore

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard the manager tries before it leaves an order ``unknown`` for the next start."""

    lookup_attempts: int = 20
    not_found_confirmations: int = 2
    backoff_s: float = 0.05
    max_backoff_s: float = 2.0
    max_resends: int = 3

    def __post_init__(self) -> None:
        if self.lookup_attempts < 1 or self.not_found_confirmations < 1 or self.max_resends < 0:
            raise ValueError(
                "lookup_attempts and not_found_confirmations must be >= 1, max_resends >= 0"
            )
        if self.backoff_s < 0 or self.max_backoff_s < self.backoff_s:
            raise ValueError("need 0 <= backoff_s <= max_backoff_s")


class OrderDenied(Exception):
    """The kill switch refused a new order; nothing was stored or sent."""


class OrderManager:
    """Sends one strategy's orders through a :class:`VenueGateway`, durably (module docstring).

    ``clock`` (monotonic seconds) and ``sleep`` are injectable so tests run on simulated time;
    ``limiter`` is an :class:`aiolimiter.AsyncLimiter` sized to the venue's request limit.
    """

    def __init__(
        self,
        store: StateStore,
        gateway: VenueGateway,
        *,
        strategy: str,
        limiter: AsyncLimiter | None = None,
        policy: RetryPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        now_ns: Callable[[], int] = time.time_ns,
        kill_switch: KillSwitch | None = None,
    ) -> None:
        self.store = store
        self.kill_switch = kill_switch
        #: called with each new fill once it is stored, and the part of its fee taken in the
        #: traded asset (a runtime hands them to the strategy's portfolio)
        self.on_fill: Callable[[Fill, Decimal], None] | None = None
        self.gateway = gateway
        self.strategy = strategy
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._now_ns = now_ns
        self._not_before = 0.0
        self._resends: Counter[str] = Counter()
        self.stats: Counter[str] = Counter()

    # -- public -------------------------------------------------------------------------------
    async def submit(
        self,
        instrument_id: InstrumentId,
        side: OrderSide,
        qty: Decimal,
        *,
        order_type: OrderType = OrderType.MARKET,
        price: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        intent: str = "order",
    ) -> OrderRow:
        """Reserve a sequence, commit the intent, send it and settle the answer; returns the
        stored order (``unknown`` only if every lookup failed: the next start resolves it).
        Raises :class:`OrderDenied` when the kill switch refuses it."""
        self._check_switch(instrument_id, side, qty)
        sequence = self.store.next_sequence(self.strategy)
        coid = client_order_id(self.strategy, instrument_id, intent, sequence)
        order = Order(
            coid,
            instrument_id,
            side,
            qty,
            order_type,
            price=price,
            time_in_force=time_in_force,
            ts_init_ns=self._now_ns(),
            tag=intent,
        )
        return await self.submit_order(order, sequence=sequence, intent=intent)

    async def submit_order(self, order: Order, *, sequence: int, intent: str) -> OrderRow:
        """:meth:`submit` for an order built elsewhere (a strategy context numbers its own):
        its client order id must come from ``(strategy, instrument, intent, sequence)``."""
        self._check_switch(order.instrument_id, order.side, order.qty)
        self.store.record_intent(order, strategy=self.strategy, sequence=sequence, intent=intent)
        crash_point("intent")
        await self._deliver(order)
        return self._row(order.client_order_id)

    async def cancel(self, client_order_id: str) -> OrderRow:
        """Ask the venue to cancel; an unknown outcome is settled by looking the order up."""
        row = self._row(client_order_id)
        if row.status.is_terminal:
            return row
        try:
            answer = await self._call(self.gateway.cancel, client_order_id, row.instrument_id)
        except (UnknownOutcome, OrderNotFound):
            await self.resolve(client_order_id)
        except VenueRejected as exc:  # e.g. it filled meanwhile: the lookup says how it ended
            log.info("cancel of %s refused: %s", client_order_id, exc.reason)
            await self.resolve(client_order_id)
        else:
            self._apply(answer)
            await self.sync_fills(client_order_id)
        return self._row(client_order_id)

    async def halt(self, reason: str, *, changed_by: str = "oms") -> list[OrderRow]:
        """Persist HALTED (new orders are denied from now on) and cancel every open order of
        this strategy; returns the orders as they stand afterwards."""
        if self.kill_switch is None:
            raise RuntimeError("halt needs an OrderManager built with a kill_switch")
        self.kill_switch.halt(reason, changed_by=changed_by, ts_ns=self._now_ns())
        self.stats["halts"] += 1
        return [
            await self.cancel(row.client_order_id)
            for row in self.store.orders(open_only=True)
            if row.strategy == self.strategy
        ]

    async def resolve(self, client_order_id: str) -> OrderRow:
        """Find out from the venue what became of an order (see the module docstring)."""
        row = self._row(client_order_id)
        delay = self.policy.backoff_s
        not_found = 0
        for _ in range(self.policy.lookup_attempts):
            try:
                found = await self._call(
                    self.gateway.fetch_order, client_order_id, row.instrument_id
                )
            except OrderNotFound:
                not_found += 1
                if not_found >= self.policy.not_found_confirmations:
                    if self._resends[client_order_id] >= self.policy.max_resends:
                        break
                    self._resends[client_order_id] += 1
                    self.stats["resent_after_not_found"] += 1
                    await self._deliver(row.to_order())
                    return self._row(client_order_id)
            except UnknownOutcome:
                not_found = 0
            else:
                self.stats["resolved_by_lookup"] += 1
                self._apply(found)
                await self.sync_fills(client_order_id)
                return self._row(client_order_id)
            await self._sleep(delay)
            delay = min(delay * 2, self.policy.max_backoff_s)
        self.stats["left_unknown"] += 1
        log.warning(
            "order %s is still unknown after %d lookups",
            client_order_id,
            self.policy.lookup_attempts,
        )
        return self._row(client_order_id)

    async def sync_fills(self, client_order_id: str) -> int:
        """Store the order's trades the venue reports; returns how many were new."""
        row = self._row(client_order_id)
        delay = self.policy.backoff_s
        for _ in range(self.policy.lookup_attempts):
            try:
                trades = await self._call(
                    self.gateway.fetch_trades, client_order_id, row.instrument_id
                )
            except UnknownOutcome:  # a read: safe to ask again
                await self._sleep(delay)
                delay = min(delay * 2, self.policy.max_backoff_s)
                continue
            return sum(self.on_trade(t) for t in trades)
        self.stats["fill_sync_failed"] += 1
        log.warning(
            "trades of %s could not be fetched; the periodic check retries", client_order_id
        )
        return 0

    def on_trade(self, trade: VenueTrade) -> bool:
        """Store one trade from a stream or a lookup; False if its trade id was seen before."""
        row = self._row(trade.client_order_id)
        fill = Fill(
            client_order_id=trade.client_order_id,
            instrument_id=row.instrument_id,
            side=row.side,
            qty=trade.qty,
            price=trade.price,
            fee=trade.fee,
            liquidity=trade.liquidity,
            ts_event_ns=trade.ts_event_ns,
            fill_id=trade.trade_id,
        )
        new = self.store.record_fill(
            fill,
            venue=self.gateway.name,
            trade_id=trade.trade_id,
            fee_currency=trade.fee_currency,
            base_fee=trade.base_fee,
        )
        self.stats["fills" if new else "duplicate_fills_ignored"] += 1
        if new:
            crash_point("fill")
            if self.on_fill is not None:
                self.on_fill(fill, trade.base_fee)
        return new

    async def recover(self) -> list[OrderRow]:
        """At start: send intents that never left, resolve requests in flight, and bring open
        orders' fills up to date. Returns the orders still open afterwards."""
        self._resends.clear()
        for row in self.store.orders_in(PENDING):
            if row.strategy == self.strategy:
                await self._deliver(row.to_order())
        for row in self.store.orders_in(SENT, UNKNOWN):
            if row.strategy == self.strategy:
                await self.resolve(row.client_order_id)
        for row in self.store.orders(open_only=True):
            if row.strategy == self.strategy and row.status is not OrderStatus.INITIALIZED:
                await self.resolve(row.client_order_id)
        return [r for r in self.store.orders(open_only=True) if r.strategy == self.strategy]

    # -- internals ----------------------------------------------------------------------------
    def _check_switch(self, instrument_id: InstrumentId, side: OrderSide, qty: Decimal) -> None:
        if self.kill_switch is None:
            return
        state = self.kill_switch.refresh()
        if state is KillSwitchState.ACTIVE:
            return
        why = self.kill_switch.reason or "no reason given"
        if state is KillSwitchState.REDUCING:
            held = self.store.positions().get(instrument_id)
            position = held.qty if held is not None else Decimal(0)
            working = sum(
                (
                    r.leaves_qty
                    for r in self.store.orders(open_only=True)
                    if r.instrument_id == instrument_id and r.side is side
                ),
                Decimal(0),
            )
            if position * side.sign < 0 and qty + working <= abs(position):
                return
        self.stats["denied_by_kill_switch"] += 1
        raise OrderDenied(
            f"kill switch is {state.value} ({why}): {side.value} {qty} {instrument_id} denied"
        )

    def _row(self, client_order_id: str) -> OrderRow:
        row = self.store.order(client_order_id)
        if row is None:
            raise KeyError(f"no stored order {client_order_id}")
        return row

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: object) -> T:
        """One request, paced: after the venue's Retry-After and through the limiter; a 429
        holds every request and sends this one again once the wait is over."""
        while True:
            wait = self._not_before - self._clock()
            if wait > 0:
                await self._sleep(wait)
            if self.limiter is not None:
                await self.limiter.acquire()
            try:
                return await fn(*args)
            except RateLimited as exc:
                self.stats["rate_limited"] += 1
                self._not_before = max(self._not_before, self._clock() + exc.retry_after_s)

    async def _deliver(self, order: Order) -> None:
        coid = order.client_order_id
        now = self._now_ns()
        self.store.set_submit_state(coid, SENT, now)
        self.store.apply_event(OrderSubmitted(coid, now))
        self.stats["requests"] += 1
        try:
            answer = await self._call(self.gateway.submit, order)
        except VenueRejected as exc:
            self.stats["rejected_by_venue"] += 1
            self.store.apply_event(OrderRejected(coid, self._now_ns(), exc.reason))
            return
        except UnknownOutcome:
            self.stats["unknown_outcomes"] += 1
            self.store.set_submit_state(coid, UNKNOWN, self._now_ns())
            await self.resolve(coid)
            return
        crash_point("sent")
        self._apply(answer)
        crash_point("ack")
        if answer.filled_qty > 0:
            await self.sync_fills(coid)

    def _apply(self, answer: VenueOrder) -> None:
        coid, now = answer.client_order_id, self._now_ns()
        status = answer.status
        if status is OrderStatus.REJECTED:
            self.store.apply_event(OrderRejected(coid, now, answer.reason or "rejected by venue"))
            return
        self.store.apply_event(OrderAccepted(coid, now, answer.venue_order_id))
        if status is OrderStatus.CANCELED:
            self.store.apply_event(OrderCanceled(coid, now, answer.reason))
        elif status is OrderStatus.EXPIRED:
            self.store.apply_event(OrderExpired(coid, now))
