"""The reconciliation matrix, warm and cold: each case converges or refuses to start, with a
report that says why."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from tests.execution.oms.test_manager import SimTime

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import Order, OrderSide, OrderStatus, OrderType
from tradestack.execution.oms import OrderManager, RetryPolicy
from tradestack.execution.oms.reconcile import (
    ReconcilePolicy,
    ReconciliationError,
    ReconciliationReport,
    check_fills,
    reconcile,
)
from tradestack.storage import StateStore, open_database
from tradestack.storage.state import UNKNOWN, OrderRow
from tradestack.testing.memory_venue import FaultScript, MemoryVenue

BTC = InstrumentId("BTC/USDT", "binance")
ETH = InstrumentId("ETH/USDT", "binance")
BOTH = [BTC, ETH]


class Desk:
    """A venue that outlives the runtime, and a runtime that can be restarted on one database."""

    def __init__(self, tmp_path: Path, script: FaultScript | None = None) -> None:
        self.t = SimTime()
        self.venue = MemoryVenue(self.t, script=script)
        self.path = tmp_path / "state.db"
        self.oms = self.start()

    def start(self) -> OrderManager:
        store = StateStore(open_database(self.path, "test"))
        policy = RetryPolicy(lookup_attempts=4)
        self.oms = OrderManager(
            store, self.venue, strategy="s1", clock=self.t, sleep=self.t.sleep, now_ns=self.t.ns,
            policy=policy,
        )  # fmt: skip
        return self.oms

    def submit(
        self, inst: InstrumentId, side: OrderSide, qty: str, price: str | None = None
    ) -> OrderRow:
        kind = OrderType.MARKET if price is None else OrderType.LIMIT
        px = None if price is None else Decimal(price)
        return asyncio.run(self.oms.submit(inst, side, Decimal(qty), order_type=kind, price=px))

    def restart_and_reconcile(self, policy: ReconcilePolicy | None = None) -> ReconciliationReport:
        return asyncio.run(reconcile(self.start(), self.venue, BOTH, policy))


def _refusal(desk: Desk, policy: ReconcilePolicy | None = None) -> ReconciliationReport:
    with pytest.raises(ReconciliationError) as caught:
        desk.restart_and_reconcile(policy)
    assert "REFUSED" in str(caught.value)
    return caught.value.report


def test_cold_start_on_a_flat_account_converges(tmp_path: Path) -> None:
    report = Desk(tmp_path).restart_and_reconcile()
    assert report.ok and report.mode == "cold"
    assert [(p.instrument_id, p.local, p.venue) for p in report.positions] == [
        (BTC, 0, 0),
        (ETH, 0, 0),
    ]


def test_warm_start_with_resting_orders_and_long_and_short_positions_converges(
    tmp_path: Path,
) -> None:
    desk = Desk(tmp_path)
    desk.submit(BTC, OrderSide.BUY, "2")  # long 2
    desk.submit(ETH, OrderSide.SELL, "3")  # short 3
    resting = desk.submit(BTC, OrderSide.SELL, "1", price="150")
    report = desk.restart_and_reconcile()
    assert report.ok and report.mode == "warm"
    assert report.open_orders == [resting.client_order_id]
    assert {p.instrument_id: p.local for p in report.positions} == {BTC: 2, ETH: -3}
    assert all(p.ok for p in report.positions)
    assert desk.venue.duplicates == 0


def test_fills_and_cancels_while_down_are_taken_from_the_venue(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    filled = desk.submit(BTC, OrderSide.BUY, "2", price="99")
    partial = desk.submit(BTC, OrderSide.BUY, "4", price="98")
    gone = desk.submit(ETH, OrderSide.BUY, "1", price="10")
    # the runtime is down: the market fills one order and half of another; someone cancels one
    desk.venue.fill_resting(filled.client_order_id, Decimal("2"), 1)
    desk.venue.fill_resting(partial.client_order_id, Decimal("1.5"), 2)
    desk.venue.cancel_outside(gone.client_order_id)
    report = desk.restart_and_reconcile()
    assert report.ok
    changed = {coid: after for coid, _, after in report.changed}
    assert changed == {
        filled.client_order_id: "filled",
        partial.client_order_id: "partially_filled",
        gone.client_order_id: "canceled",
    }
    assert report.new_fills == 2
    store = desk.oms.store
    assert store.positions()[BTC].qty == Decimal("3.5") == desk.venue.venue_position(BTC)
    stored = store.order(partial.client_order_id)
    assert stored is not None and stored.status is OrderStatus.PARTIALLY_FILLED
    assert report.open_orders == [partial.client_order_id]


def test_an_order_in_flight_at_the_crash_is_resolved_by_its_client_order_id(
    tmp_path: Path,
) -> None:
    """Taken by the venue, answered by a timeout, and every lookup failed before the crash:
    the store says unknown; at start one lookup settles it, no second order is sent."""
    desk = Desk(tmp_path, FaultScript(rates={"timeout_after": 1.0}, read_lost=1.0, seed=3))
    row = desk.submit(BTC, OrderSide.BUY, "1")
    assert row.submit_state == UNKNOWN
    desk.venue.script = FaultScript()
    report = desk.restart_and_reconcile()
    assert report.ok and report.new_fills == 1
    assert desk.venue.duplicates == 0
    assert desk.oms.store.positions()[BTC].qty == 1


def test_an_external_order_refuses_unless_ignored(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.venue.place_external(
        Order("web-1", BTC, OrderSide.BUY, Decimal("1"), OrderType.LIMIT, price=Decimal("50"))
    )
    report = _refusal(desk)
    assert [o.client_order_id for o in report.external_orders] == ["web-1"]
    assert "not placed by tradestack" in report.problems[0]
    assert "web-1" in report.render() and "buy 1 @ 50" in report.render()
    assert desk.restart_and_reconcile(ReconcilePolicy(external_orders="ignore")).ok


def test_a_cold_start_beside_our_own_open_orders_refuses(tmp_path: Path) -> None:
    """The state database was lost while an order of ours rests at the venue."""
    desk = Desk(tmp_path)
    resting = desk.submit(BTC, OrderSide.BUY, "1", price="90")
    desk.path.unlink()
    for suffix in ("-wal", "-shm"):
        desk.path.with_name(desk.path.name + suffix).unlink(missing_ok=True)
    report = _refusal(desk)
    assert report.mode == "cold"
    assert [o.client_order_id for o in report.orphans] == [resting.client_order_id]
    assert "does not know" in report.render()


@pytest.mark.parametrize("venue_qty", ["0", "1", "-2"])
def test_positions_that_differ_refuse(tmp_path: Path, venue_qty: str) -> None:
    """Local long 2; the venue flat, smaller or short (a transfer, a manual trade)."""
    desk = Desk(tmp_path)
    desk.submit(BTC, OrderSide.BUY, "2")
    desk.venue.holdings[BTC] = Decimal(venue_qty) - 2
    report = _refusal(desk)
    assert report.mode == "warm"
    assert f"position {BTC}: local 2, venue {venue_qty}" in report.problems


def test_a_position_only_at_the_venue_refuses_a_cold_start(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.venue.holdings[ETH] = Decimal("-1")
    report = _refusal(desk)
    assert report.mode == "cold"
    assert [p.ok for p in report.positions] == [True, False]


def test_dust_within_the_tolerance_converges(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.submit(BTC, OrderSide.BUY, "2")
    desk.venue.holdings[BTC] = Decimal("0.00001")
    _refusal(desk)
    assert desk.restart_and_reconcile(ReconcilePolicy(position_tolerance=Decimal("0.0001"))).ok


def test_a_missing_answer_is_never_read_as_flat(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.venue.unreported.add(ETH)
    report = _refusal(desk)
    assert f"the venue reported no position for {ETH} (not read as flat)" in report.problems


def test_an_unreadable_venue_refuses(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    desk.submit(BTC, OrderSide.BUY, "1")
    desk.venue.script = FaultScript(read_lost=1.0, seed=1)
    report = _refusal(desk)
    assert report.problems and "could not be read" in report.problems[-1]


def test_a_venue_that_lost_an_order_we_sent_refuses(tmp_path: Path) -> None:
    """Locally open, unknown to the venue after the lookups (a venue-side loss): resent at most
    ``max_resends`` times under the same id, so it is open again; a venue that keeps losing it
    leaves the order unsettled and the start refused."""
    desk = Desk(tmp_path)
    row = desk.submit(BTC, OrderSide.BUY, "1", price="90")
    desk.venue.orders.pop(row.client_order_id)
    report = desk.restart_and_reconcile()
    assert report.ok and desk.venue.duplicates == 0
    assert report.open_orders == [row.client_order_id]


def test_the_periodic_check_catches_a_fill_the_stream_missed(tmp_path: Path) -> None:
    desk = Desk(tmp_path)
    resting = desk.submit(BTC, OrderSide.SELL, "1", price="120")
    desk.submit(BTC, OrderSide.BUY, "3")
    desk.venue.fill_resting(resting.client_order_id, Decimal("1"), 5)  # no stream message
    report = asyncio.run(check_fills(desk.oms, desk.venue, BOTH))
    assert report.ok and report.new_fills == 1 and report.open_orders == []
    assert desk.oms.store.positions()[BTC].qty == 2
    assert asyncio.run(check_fills(desk.oms, desk.venue, BOTH)).new_fills == 0


def test_policy_values_are_checked() -> None:
    with pytest.raises(ValueError, match="external_orders"):
        ReconcilePolicy(external_orders="adopt")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="position_tolerance"):
        ReconcilePolicy(position_tolerance=Decimal("-1"))
