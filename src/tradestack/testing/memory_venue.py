"""An in-process venue behind the order manager's gateway port, with scripted faults.

It exists to test the order manager's logic on simulated time, thousands of cases a second: it
keeps every order it accepted (a second order under the same client order id is kept too, so
duplicates are counted, never hidden), fills market orders at once and rests limit orders, and
answers each call according to a :class:`FaultScript`. The real clients (ccxt, alpaca-py) are
tested against the HTTP fake venue instead.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import Liquidity, Order, OrderStatus, OrderType
from tradestack.execution.oms.gateway import (
    OrderNotFound,
    RateLimited,
    UnknownOutcome,
    VenueOrder,
    VenueRejected,
    VenueTrade,
)

#: what one call does: "ok"; "reject"; "429" (not processed, Retry-After ``retry_after_s``);
#: "lost" (not processed, the client sees a timeout); "5xx_after" / "timeout_after" (processed,
#: then the client sees a 503 / a timeout)
OUTCOMES = ("ok", "reject", "429", "lost", "5xx_after", "timeout_after")


@dataclass
class FaultScript:
    """Chooses each call's outcome from a seeded generator, for the calls ``active`` says (by
    call number and method): a submit by ``rates`` of each bad outcome (the rest is "ok"); a
    read or cancel is a 429 at ``rates["429"]`` and else lost at ``read_lost``."""

    rates: dict[str, float] = field(default_factory=dict)
    read_lost: float = 0.0
    retry_after_s: tuple[float, float] = (0.1, 1.0)
    seed: int = 0
    active: Callable[[int, str], bool] = lambda n, method: True

    def __post_init__(self) -> None:
        unknown = set(self.rates) - set(OUTCOMES)
        if unknown:
            raise ValueError(f"unknown outcomes {sorted(unknown)}; known: {OUTCOMES}")
        if sum(self.rates.values()) > 1:
            raise ValueError("fault rates add up to more than 1")
        self._rng = random.Random(self.seed)

    def outcome(self, n: int, method: str) -> tuple[str, float]:
        draw, wait = self._rng.random(), self._rng.uniform(*self.retry_after_s)
        if not self.active(n, method):
            return "ok", 0.0
        if method != "submit":  # reads and cancels: a 429, or lost with ``read_lost``
            if draw < self.rates.get("429", 0.0):
                return "429", wait
            return ("lost", 0.0) if self._rng.random() < self.read_lost else ("ok", 0.0)
        acc = 0.0
        for name in OUTCOMES[1:]:
            acc += self.rates.get(name, 0.0)
            if draw < acc:
                return name, wait
        return "ok", 0.0


@dataclass
class _VenueOrder:
    order: Order
    venue_id: str
    status: OrderStatus
    filled: Decimal = Decimal(0)
    trades: list[VenueTrade] = field(default_factory=list)


class MemoryVenue:
    """See the module docstring. ``clock`` is the same simulated time the manager uses."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        script: FaultScript | None = None,
        price: Decimal = Decimal("100"),
        fee_rate: Decimal = Decimal("0.001"),
        name: str = "memory",
    ) -> None:
        self.name = name
        self.clock = clock
        self.script = script or FaultScript()
        self.price = price
        self.fee_rate = fee_rate
        self.orders: dict[str, list[_VenueOrder]] = {}
        self.calls: list[tuple[float, str, str, str]] = []
        self.not_before = 0.0
        self.early_requests = 0
        self._trade_seq = 0
        #: positions held besides the orders' fills (a transfer in, a manual trade)
        self.holdings: dict[InstrumentId, Decimal] = {}
        #: instruments ``fetch_positions`` leaves out of its answer
        self.unreported: set[InstrumentId] = set()

    # -- bookkeeping for tests ----------------------------------------------------------------
    @property
    def duplicates(self) -> int:
        return sum(len(v) - 1 for v in self.orders.values())

    def venue_position(self, instrument_id: InstrumentId) -> Decimal:
        total = Decimal(0)
        for versions in self.orders.values():
            for v in versions:
                if v.order.instrument_id == instrument_id:
                    total += v.filled if v.order.side.sign > 0 else -v.filled
        return total

    def fill_resting(self, client_order_id: str, qty: Decimal, ts_ns: int) -> VenueTrade:
        """Fill part of a resting order (as the market would), returning the trade."""
        return self._fill(self.orders[client_order_id][0], qty, ts_ns)

    # -- the gateway --------------------------------------------------------------------------
    def _enter(self, method: str, coid: str) -> tuple[str, float]:
        now = self.clock()
        n = len(self.calls)
        if now < self.not_before:
            self.early_requests += 1
        outcome, wait = self.script.outcome(n, method)
        self.calls.append((now, method, coid, outcome))
        if outcome == "429":
            self.not_before = max(self.not_before, now + wait)
            raise RateLimited(wait, f"({method} {coid})")
        if outcome == "lost":
            raise UnknownOutcome(f"{method} {coid}: timed out before reaching the venue")
        if outcome == "reject":
            raise VenueRejected("insufficient balance (scripted)")
        return outcome, wait

    async def submit(self, order: Order) -> VenueOrder:
        outcome, _ = self._enter("submit", order.client_order_id)
        self._trade_seq += 1
        v = _VenueOrder(order, f"V{self._trade_seq}", OrderStatus.ACCEPTED)
        self.orders.setdefault(order.client_order_id, []).append(v)
        if order.order_type is OrderType.MARKET:
            self._fill(v, order.qty, int(self.clock() * 1e9))
        if outcome == "5xx_after":
            raise UnknownOutcome(f"submit {order.client_order_id}: 503 after the order was taken")
        if outcome == "timeout_after":
            raise UnknownOutcome(f"submit {order.client_order_id}: timed out after acceptance")
        return self._answer(v)

    async def cancel(self, client_order_id: str, instrument_id: InstrumentId) -> VenueOrder:
        self._enter("cancel", client_order_id)
        v = self._find(client_order_id)
        if v.status.is_terminal:
            raise VenueRejected(f"order {client_order_id} is {v.status.value}")
        v.status = OrderStatus.CANCELED
        return self._answer(v)

    async def fetch_order(self, client_order_id: str, instrument_id: InstrumentId) -> VenueOrder:
        self._enter("fetch_order", client_order_id)
        return self._answer(self._find(client_order_id))

    async def fetch_trades(
        self, client_order_id: str, instrument_id: InstrumentId
    ) -> list[VenueTrade]:
        self._enter("fetch_trades", client_order_id)
        return [t for v in self.orders.get(client_order_id, []) for t in v.trades]

    async def fetch_open_orders(self, instrument_ids: Sequence[InstrumentId]) -> list[VenueOrder]:
        self._enter("fetch_open_orders", "")
        wanted = set(instrument_ids)
        return [
            self._answer(versions[0])
            for versions in self.orders.values()
            if not versions[0].status.is_terminal and versions[0].order.instrument_id in wanted
        ]

    async def fetch_positions(
        self, instrument_ids: Sequence[InstrumentId]
    ) -> dict[InstrumentId, Decimal]:
        self._enter("fetch_positions", "")
        return {
            inst: self.venue_position(inst) + self.holdings.get(inst, Decimal(0))
            for inst in instrument_ids
            if inst not in self.unreported
        }

    # -- what happens at the venue without the runtime ----------------------------------------
    def place_external(self, order: Order) -> None:
        """An order placed on the account by someone else (another tool, a person)."""
        self._trade_seq += 1
        v = _VenueOrder(order, f"V{self._trade_seq}", OrderStatus.ACCEPTED)
        self.orders.setdefault(order.client_order_id, []).append(v)

    def cancel_outside(self, client_order_id: str) -> None:
        """Cancel an order from outside the runtime (the exchange's web page)."""
        self._find(client_order_id).status = OrderStatus.CANCELED

    # -- internals ----------------------------------------------------------------------------
    def _find(self, client_order_id: str) -> _VenueOrder:
        versions = self.orders.get(client_order_id)
        if not versions:
            raise OrderNotFound(client_order_id)
        return versions[0]

    def _fill(self, v: _VenueOrder, qty: Decimal, ts_ns: int) -> VenueTrade:
        self._trade_seq += 1
        price = v.order.price if v.order.price is not None else self.price
        trade = VenueTrade(
            trade_id=f"T{self._trade_seq}",
            client_order_id=v.order.client_order_id,
            qty=qty,
            price=price,
            fee=qty * price * self.fee_rate,
            fee_currency="USDT",
            liquidity=Liquidity.TAKER,
            ts_event_ns=ts_ns,
        )
        v.filled += qty
        v.trades.append(trade)
        v.status = OrderStatus.FILLED if v.filled == v.order.qty else OrderStatus.PARTIALLY_FILLED
        return trade

    @staticmethod
    def _answer(v: _VenueOrder) -> VenueOrder:
        return VenueOrder(
            v.order.client_order_id,
            v.venue_id,
            v.status,
            v.filled,
            instrument_id=v.order.instrument_id,
            side=v.order.side,
            qty=v.order.qty,
            price=v.order.price,
        )
