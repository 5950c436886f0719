"""The kill switch in the order manager: new orders denied from the next event on, a cancel
sent for every open order, HALTED still in force after a restart."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from tests.execution.oms.test_manager import SimTime

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import OrderSide, OrderStatus, OrderType
from tradestack.execution.oms import OrderDenied, OrderManager
from tradestack.risk.kill_switch import KillSwitch, KillSwitchState
from tradestack.storage import StateStore, open_database
from tradestack.testing.memory_venue import MemoryVenue

BTC = InstrumentId("BTC/USDT", "binance")


def _manager(tmp_path: Path, venue: MemoryVenue, t: SimTime) -> OrderManager:
    switch = KillSwitch(tmp_path / "switch.json", tmp_path / "KILL", clock=t.ns)
    store = StateStore(open_database(tmp_path / "state.db", "test"))
    return OrderManager(
        store, venue, strategy="s1", clock=t, sleep=t.sleep, now_ns=t.ns, kill_switch=switch
    )


def _limit(oms: OrderManager, side: OrderSide, qty: str, price: str) -> object:
    return oms.submit(BTC, side, Decimal(qty), order_type=OrderType.LIMIT, price=Decimal(price))


def test_halt_denies_new_orders_cancels_open_ones_and_survives_a_restart(tmp_path: Path) -> None:
    t = SimTime()
    venue = MemoryVenue(t)
    oms = _manager(tmp_path, venue, t)

    async def run() -> None:
        await oms.submit(BTC, OrderSide.BUY, Decimal("1"))
        for price in ("90", "91", "92"):
            await _limit(oms, OrderSide.BUY, "1", price)
        rows = await oms.halt("drawdown limit")
        assert [r.status for r in rows] == [OrderStatus.CANCELED] * 3
        with pytest.raises(OrderDenied, match=r"halted \(drawdown limit\)"):
            await oms.submit(BTC, OrderSide.SELL, Decimal("1"))

    asyncio.run(run())
    cancels = [c for c in venue.calls if c[1] == "cancel"]
    assert len(cancels) == 3
    assert not oms.store.orders(open_only=True)
    assert len(oms.store.orders()) == 4  # the denied order left no row
    assert oms.stats["denied_by_kill_switch"] == 1

    restarted = _manager(tmp_path, venue, t)
    assert restarted.kill_switch is not None
    assert restarted.kill_switch.state is KillSwitchState.HALTED
    with pytest.raises(OrderDenied):
        asyncio.run(restarted.submit(BTC, OrderSide.BUY, Decimal("1")))
    assert len(venue.orders) == 4


def test_a_flag_written_by_another_process_denies_the_very_next_order(tmp_path: Path) -> None:
    t = SimTime()
    venue = MemoryVenue(t)
    oms = _manager(tmp_path, venue, t)
    asyncio.run(oms.submit(BTC, OrderSide.BUY, Decimal("1")))
    (tmp_path / "KILL").write_text("halt\n")
    with pytest.raises(OrderDenied):
        asyncio.run(oms.submit(BTC, OrderSide.BUY, Decimal("1")))
    assert len(venue.orders) == 1


def test_reducing_allows_only_orders_that_shrink_the_position(tmp_path: Path) -> None:
    t = SimTime()
    venue = MemoryVenue(t)
    oms = _manager(tmp_path, venue, t)
    asyncio.run(oms.submit(BTC, OrderSide.BUY, Decimal("2")))
    assert oms.kill_switch is not None
    oms.kill_switch.reduce("risk review")
    with pytest.raises(OrderDenied, match="reducing"):
        asyncio.run(oms.submit(BTC, OrderSide.BUY, Decimal("0.1")))
    asyncio.run(_limit(oms, OrderSide.SELL, "1.5", "120"))
    with pytest.raises(OrderDenied):  # with the resting 1.5 it would turn the position short
        asyncio.run(oms.submit(BTC, OrderSide.SELL, Decimal("1")))
    asyncio.run(oms.submit(BTC, OrderSide.SELL, Decimal("0.5")))
    assert oms.store.positions()[BTC].qty == Decimal("1.5")


def test_halt_needs_a_switch(tmp_path: Path) -> None:
    t = SimTime()
    store = StateStore(open_database(tmp_path / "s.db", "test"))
    oms = OrderManager(store, MemoryVenue(t), strategy="s1", clock=t, sleep=t.sleep)
    with pytest.raises(RuntimeError, match="kill_switch"):
        asyncio.run(oms.halt("x"))
