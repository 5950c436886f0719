"""Reconciliation: converge local order state on the venue's at start, or refuse to start.

At start (warm: the state database has orders or positions; cold: it is empty) the order
manager first settles every order it knows (:meth:`OrderManager.recover`: intents that never
left are sent, requests in flight and open orders are looked up by client order id and their
fills brought up to date: this covers orders filled, partly filled or cancelled while the
runtime was down). Then the venue's open orders and positions are read and compared:

* an open venue order with a tradestack client order id (``ts-``) the store does not know is an
  *orphan* (a lost database, or another runtime on the account): refuse;
* any other open venue order is *external*: refuse, or ignore it with
  ``ReconcilePolicy(external_orders="ignore")``;
* an order open locally that the venue does not list as open is looked up once more; still
  open afterwards: refuse;
* an order whose outcome is still unknown: refuse;
* a position that differs from the venue's by more than the tolerance (long, short, or the
  venue flat while the store holds one): refuse. An instrument the venue did not report is a
  refusal too: a missing answer is never read as "flat".

A refusal raises :class:`ReconciliationError` carrying the :class:`ReconciliationReport`; the
same report, rendered, says what converged. :func:`check_fills` is the periodic check while
running: it asks the venue for the trades of every open order (catching fills the stream missed)
and compares positions, returning a report instead of raising.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal

from tradestack.core.ids import InstrumentId
from tradestack.execution.oms.gateway import (
    OrderNotFound,
    RateLimited,
    UnknownOutcome,
    VenueAccount,
    VenueOrder,
)
from tradestack.execution.oms.manager import OrderManager
from tradestack.storage.state import PENDING, SENT, UNKNOWN

OUR_PREFIX = "ts-"

_READ_ERRORS = (UnknownOutcome, RateLimited, OrderNotFound, OSError)


@dataclass(frozen=True)
class ReconcilePolicy:
    """What reconciliation tolerates: external orders (``"refuse"`` or ``"ignore"``) and the
    absolute position difference read as equal (exchange dust)."""

    external_orders: Literal["refuse", "ignore"] = "refuse"
    position_tolerance: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.external_orders not in ("refuse", "ignore"):
            raise ValueError(
                f"external_orders must be 'refuse' or 'ignore', got {self.external_orders!r}"
            )
        if self.position_tolerance < 0:
            raise ValueError(f"position_tolerance must be >= 0, got {self.position_tolerance}")


@dataclass(frozen=True)
class PositionCheck:
    """One instrument's position, locally and at the venue (None: the venue did not say)."""

    instrument_id: InstrumentId
    local: Decimal
    venue: Decimal | None
    ok: bool


@dataclass
class ReconciliationReport:
    """What reconciliation found and did; ``ok`` is False when the runtime must not start."""

    mode: Literal["warm", "cold"]
    changed: list[tuple[str, str, str]] = field(default_factory=list)
    new_fills: int = 0
    open_orders: list[str] = field(default_factory=list)
    external_orders: list[VenueOrder] = field(default_factory=list)
    orphans: list[VenueOrder] = field(default_factory=list)
    positions: list[PositionCheck] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        verdict = "converged" if self.ok else "REFUSED"
        lines = [f"reconciliation ({self.mode} start): {verdict}"]
        for coid, before, after in self.changed:
            lines.append(f"  order {coid}: {before} -> {after}")
        lines.append(f"  fills added: {self.new_fills}; open orders: {len(self.open_orders)}")
        for check in self.positions:
            venue = "not reported" if check.venue is None else str(check.venue)
            mark = "ok" if check.ok else "MISMATCH"
            lines.append(
                f"  position {check.instrument_id}: local {check.local}, venue {venue} {mark}"
            )
        for order in self.external_orders:
            lines.append(f"  external order at the venue: {_describe(order)}")
        lines.extend(f"  problem: {p}" for p in self.problems)
        return "\n".join(lines)


class ReconciliationError(RuntimeError):
    """The runtime refuses to start: local state and the venue disagree (see ``report``)."""

    def __init__(self, report: ReconciliationReport) -> None:
        super().__init__(report.render())
        self.report = report


async def reconcile(
    manager: OrderManager,
    account: VenueAccount,
    instrument_ids: Sequence[InstrumentId],
    policy: ReconcilePolicy | None = None,
) -> ReconciliationReport:
    """Settle local orders, compare with the venue, and return the report; raises
    :class:`ReconciliationError` (with the report) when the runtime must not start."""
    policy = policy or ReconcilePolicy()
    store = manager.store
    cold = not store.orders() and not store.positions()
    report = ReconciliationReport("cold" if cold else "warm")
    before = {r.client_order_id: r for r in store.orders()}
    fills_before = len(store.fills())

    try:
        await manager.recover()
        venue_open = await account.fetch_open_orders(instrument_ids)
    except _READ_ERRORS as exc:
        report.problems.append(f"the venue could not be read: {type(exc).__name__}: {exc}")
        raise ReconciliationError(report) from exc

    known = {r.client_order_id for r in store.orders()}
    venue_open_ids = {o.client_order_id for o in venue_open}
    for order in venue_open:
        if order.client_order_id in known:
            continue
        if order.client_order_id.startswith(OUR_PREFIX):
            report.orphans.append(order)
            report.problems.append(
                f"open venue order {_describe(order)} has a tradestack id the state database "
                "does not know (a lost database, or another runtime on this account)"
            )
        else:
            report.external_orders.append(order)
            if policy.external_orders == "refuse":
                report.problems.append(
                    f"open venue order {_describe(order)} was not placed by tradestack "
                    "(set external_orders: ignore to trade beside it)"
                )

    for row in store.orders(open_only=True):
        if row.strategy != manager.strategy or row.client_order_id in venue_open_ids:
            continue
        row = await manager.resolve(row.client_order_id)
        if row.is_open:
            report.problems.append(
                f"order {row.client_order_id} is {row.status.value} locally but not open "
                "at the venue"
            )
    for row in store.orders_in(PENDING, SENT, UNKNOWN):
        report.problems.append(
            f"order {row.client_order_id}: the venue's answer is still unknown ({row.submit_state})"
        )

    for row in store.orders():
        old = before.get(row.client_order_id)
        if old is None or old.status is not row.status:
            was = "not stored" if old is None else old.status.value
            report.changed.append((row.client_order_id, was, row.status.value))
    report.new_fills = len(store.fills()) - fills_before
    report.open_orders = [r.client_order_id for r in store.orders(open_only=True)]

    try:
        await _compare_positions(manager, account, instrument_ids, policy, report)
    except _READ_ERRORS as exc:
        raise ReconciliationError(report) from exc
    if not report.ok:
        raise ReconciliationError(report)
    return report


async def check_fills(
    manager: OrderManager,
    account: VenueAccount,
    instrument_ids: Sequence[InstrumentId],
    policy: ReconcilePolicy | None = None,
) -> ReconciliationReport:
    """The periodic check while running: fetch the trades of every open order (fills the
    stream missed are stored now) and compare positions; never raises for a disagreement."""
    policy = policy or ReconcilePolicy()
    report = ReconciliationReport("warm")
    for row in manager.store.orders(open_only=True):
        if row.strategy == manager.strategy:
            report.new_fills += await manager.sync_fills(row.client_order_id)
    report.open_orders = [r.client_order_id for r in manager.store.orders(open_only=True)]
    try:
        await _compare_positions(manager, account, instrument_ids, policy, report)
    except _READ_ERRORS as exc:
        report.problems.append(f"positions could not be read: {type(exc).__name__}: {exc}")
    return report


async def _compare_positions(
    manager: OrderManager,
    account: VenueAccount,
    instrument_ids: Sequence[InstrumentId],
    policy: ReconcilePolicy,
    report: ReconciliationReport,
) -> None:
    local = manager.store.positions()
    asked = list(dict.fromkeys([*instrument_ids, *local]))
    try:
        venue = await account.fetch_positions(asked)
    except _READ_ERRORS as exc:
        report.problems.append(f"the venue's positions could not be read: {exc}")
        raise
    for inst in asked:
        mine = local[inst].qty if inst in local else Decimal(0)
        theirs = venue.get(inst)
        ok = theirs is not None and abs(mine - theirs) <= policy.position_tolerance
        report.positions.append(PositionCheck(inst, mine, theirs, ok))
        if theirs is None:
            report.problems.append(f"the venue reported no position for {inst} (not read as flat)")
        elif not ok:
            report.problems.append(f"position {inst}: local {mine}, venue {theirs}")


def _describe(order: VenueOrder) -> str:
    what = [order.client_order_id or "(no client id)", f"venue id {order.venue_order_id}"]
    if order.instrument_id is not None:
        what.append(str(order.instrument_id))
    if order.side is not None and order.qty is not None:
        what.append(f"{order.side.value} {order.qty}")
    if order.price is not None:
        what.append(f"@ {order.price}")
    return " ".join(what)
