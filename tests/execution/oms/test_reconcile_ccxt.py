"""Reconciliation through the real ccxt client against the fake Binance desk over HTTP: the
start converges on what happened while the runtime was down, or refuses with a report."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from tests.execution.oms.test_ccxt_gateway import BTC, BUY, KEY, SECRET, best, manager, rig

from tradestack.core.orders import OrderStatus, OrderType
from tradestack.execution.oms.ccxt_gateway import binance_gateway
from tradestack.execution.oms.reconcile import ReconcilePolicy, ReconciliationError, reconcile
from tradestack.storage.state import UNKNOWN
from tradestack.testing.venues.binance_trading import TradingFaults

HELD = {"BTC": Decimal(10)}  # the desk's starting BTC: not the runtime's position


def test_cancel_outside_and_an_order_lost_in_flight_converge(
    recording: Path, tmp_path: Path
) -> None:
    """One resting order is cancelled on the exchange's web page, one market order was
    taken while its answer timed out; at the next start both are settled by lookup and the
    position is the venue's."""

    async def run() -> None:
        faults = TradingFaults(submit={"timeout_after": 1.0}, read={"503": 1.0}, window=(1, 60))
        async with rig(recording, tmp_path, faults=faults, timeout_s=0.3) as r:
            bid, _ = best(r.desk)
            resting = await r.oms.submit(
                BTC, BUY, Decimal("0.1"), order_type=OrderType.LIMIT, price=bid - 100
            )
            lost = await r.oms.submit(BTC, BUY, Decimal("0.2"))
            assert lost.submit_state == UNKNOWN  # every lookup failed before the "crash"
            person = binance_gateway(r.base_url, api_key=KEY, secret=SECRET)
            try:
                await person.cancel(resting.client_order_id, BTC)
            finally:
                await person.close()
            r.desk.faults = TradingFaults()
            gateway, oms = manager(r.base_url, tmp_path / "state.db")
            gateway.reserve = dict(HELD)
            try:
                report = await reconcile(oms, gateway, [BTC])
            finally:
                await gateway.close()
            assert report.ok and report.mode == "warm"
            changed = {coid: after for coid, _, after in report.changed}
            assert changed == {
                resting.client_order_id: "canceled",
                lost.client_order_id: "filled",
            }
            assert oms.store.positions()[BTC].qty == Decimal("0.1998")  # less the fee paid in BTC
            assert r.desk.engine.orders_created == 2  # nothing sent twice

    asyncio.run(run())


def test_an_external_order_and_unexplained_holdings_refuse(recording: Path, tmp_path: Path) -> None:
    async def run() -> None:
        async with rig(recording, tmp_path) as r:
            bid, _ = best(r.desk)
            await r.oms.submit(BTC, BUY, Decimal("0.5"))
            person = binance_gateway(r.base_url, api_key=KEY, secret=SECRET)
            try:
                await person.exchange.create_order(
                    "BTC/USDT",
                    "limit",
                    "buy",
                    0.01,
                    float(bid - 500),
                    {"newClientOrderId": "web_1"},
                )
            finally:
                await person.close()

            gateway, oms = manager(r.base_url, tmp_path / "state.db")
            try:
                with pytest.raises(ReconciliationError) as caught:
                    await reconcile(oms, gateway, [BTC])
                report = caught.value.report
                assert [o.client_order_id for o in report.external_orders] == ["web_1"]
                assert "buy 0.01" in report.render()
                # the desk's 10 BTC held before the runtime started are counted as a position
                assert f"position {BTC}: local 0.4995, venue 10.4995" in report.problems
                gateway.reserve = dict(HELD)
                ok = await reconcile(oms, gateway, [BTC], ReconcilePolicy(external_orders="ignore"))
                assert ok.ok and ok.positions[0].venue == Decimal("0.4995")
            finally:
                await gateway.close()
            assert r.desk.engine.orders_created == 2

    asyncio.run(run())


def test_a_lost_database_beside_our_resting_order_refuses_a_cold_start(
    recording: Path, tmp_path: Path
) -> None:
    async def run() -> None:
        async with rig(recording, tmp_path) as r:
            bid, _ = best(r.desk)
            resting = await r.oms.submit(
                BTC, BUY, Decimal("0.1"), order_type=OrderType.LIMIT, price=bid - 100
            )
            assert resting.status is OrderStatus.ACCEPTED
            gateway, oms = manager(r.base_url, tmp_path / "fresh.db")
            gateway.reserve = dict(HELD)
            try:
                with pytest.raises(ReconciliationError) as caught:
                    await reconcile(oms, gateway, [BTC])
            finally:
                await gateway.close()
            report = caught.value.report
            assert report.mode == "cold"
            assert [o.client_order_id for o in report.orphans] == [resting.client_order_id]

    asyncio.run(run())
