"""The order manager through the Alpaca gateway: the real alpaca-py ``TradingClient`` over HTTP
against the fake Alpaca trading API on 127.0.0.1, with a real state store on SQLite. Happy
path, refusals, unknown outcomes, a 429 stretch and reconciliation at start."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide as AlpacaSide
from alpaca.trading.enums import TimeInForce as AlpacaTif
from alpaca.trading.requests import LimitOrderRequest

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import Order, OrderSide, OrderStatus, OrderType
from tradestack.execution.oms import (
    OrderManager,
    OrderNotFound,
    RateLimited,
    RetryPolicy,
    VenueRejected,
)
from tradestack.execution.oms.alpaca_gateway import AlpacaGateway, alpaca_gateway
from tradestack.execution.oms.reconcile import ReconcilePolicy, ReconciliationError, reconcile
from tradestack.storage import StateStore, open_database
from tradestack.storage.state import ANSWERED, UNKNOWN
from tradestack.testing.alpaca_trading import FakeAlpacaTrading
from tradestack.testing.venues.binance_trading import TradingFaults

AAPL = InstrumentId("AAPL", "alpaca")
MSFT = InstrumentId("MSFT", "alpaca")
KEY, SECRET = "PKTESTKEY", "test-secret"
FAST = RetryPolicy(backoff_s=0.001, max_backoff_s=0.02)
BUY, SELL = OrderSide.BUY, OrderSide.SELL


def manager(
    base_url: str, db: Path, *, timeout_s: float = 2.0, policy: RetryPolicy = FAST
) -> tuple[AlpacaGateway, OrderManager]:
    """A fresh gateway (a new alpaca-py client) and order manager on the database at ``db``."""
    gateway = alpaca_gateway(base_url, api_key=KEY, secret=SECRET, timeout_s=timeout_s)
    store = StateStore(open_database(db, "test"))
    return gateway, OrderManager(store, gateway, strategy="s1", policy=policy)


@dataclass
class Rig:
    venue: FakeAlpacaTrading
    gateway: AlpacaGateway
    oms: OrderManager

    @property
    def store(self) -> StateStore:
        return self.oms.store


@asynccontextmanager
async def rig(
    tmp_path: Path,
    *,
    faults: TradingFaults | None = None,
    timeout_s: float = 2.0,
    policy: RetryPolicy = FAST,
    lot_size: Decimal | None = None,
) -> AsyncIterator[Rig]:
    venue = FakeAlpacaTrading(
        key_id=KEY, secret_key=SECRET, faults=faults or TradingFaults(), lot_size=lot_size
    )
    venue.set_price("AAPL", "187.23")
    venue.set_price("MSFT", "420.5")
    async with venue:
        gateway, oms = manager(
            venue.base_url, tmp_path / "state.db", timeout_s=timeout_s, policy=policy
        )
        yield Rig(venue, gateway, oms)


def venue_position(venue: FakeAlpacaTrading) -> Decimal:
    return sum(
        (Decimal(f["qty"]) * (1 if f["side"] == "buy" else -1) for f in venue.fills), Decimal(0)
    )


# -- the happy path ----------------------------------------------------------------------------
def test_market_and_limit_orders_fill_cancel_and_store_each_fill_once(tmp_path: Path) -> None:
    async def run() -> None:
        async with rig(tmp_path, lot_size=Decimal(4)) as r:
            buy = await r.oms.submit(AAPL, BUY, Decimal(10))
            assert (buy.status, buy.filled_qty) == (OrderStatus.FILLED, Decimal(10))
            fills = r.store.fills(buy.client_order_id)
            desk = r.venue.order_by_client_id(buy.client_order_id)
            assert buy.venue_order_id == desk.id
            assert sorted(f.trade_id for f in fills) == sorted(
                a["id"] for a in r.venue.fills if a["order_id"] == desk.id
            )
            assert [f.fill.qty for f in fills] == [Decimal(4), Decimal(4), Decimal(2)]
            assert {(f.fill.price, f.fill.fee, f.fee_currency) for f in fills} == {
                (Decimal("187.23"), Decimal(0), "USD")
            }

            taker = await r.oms.submit(
                AAPL, SELL, Decimal(3), order_type=OrderType.LIMIT, price=Decimal("187.00")
            )
            assert taker.status is OrderStatus.FILLED
            assert r.store.fills(taker.client_order_id)[0].fill.price == Decimal("187.23")

            rest = await r.oms.submit(
                AAPL, BUY, Decimal(5), order_type=OrderType.LIMIT, price=Decimal("180.50")
            )
            assert rest.status is OrderStatus.ACCEPTED and rest.venue_order_id
            listed = await r.gateway.fetch_open_orders([AAPL, MSFT])
            assert [(o.client_order_id, o.status, o.price) for o in listed] == [
                (rest.client_order_id, OrderStatus.ACCEPTED, Decimal("180.5"))
            ]
            canceled = await r.oms.cancel(rest.client_order_id)
            assert canceled.status is OrderStatus.CANCELED
            assert r.venue.order_by_client_id(rest.client_order_id).status == "canceled"
            again = await r.oms.cancel(rest.client_order_id)  # terminal: nothing is sent
            assert again.status is OrderStatus.CANCELED

            # a resting sell the price rises through: two moves, two partial executions
            maker = await r.oms.submit(
                MSFT, SELL, Decimal(6), order_type=OrderType.LIMIT, price=Decimal("421.00")
            )
            assert maker.status is OrderStatus.ACCEPTED
            r.venue.set_price("MSFT", "421.10", volume=Decimal(2))
            assert await r.oms.sync_fills(maker.client_order_id) == 1
            row = r.store.order(maker.client_order_id)
            assert row is not None and row.status is OrderStatus.PARTIALLY_FILLED
            r.venue.set_price("MSFT", "422")
            assert await r.oms.sync_fills(maker.client_order_id) == 1
            row = r.store.order(maker.client_order_id)
            assert row is not None and row.status is OrderStatus.FILLED
            assert {f.fill.price for f in r.store.fills(maker.client_order_id)} == {
                Decimal("421.00")
            }

            for row in r.store.orders():  # every fill stored once, however often it is read
                assert await r.oms.sync_fills(row.client_order_id) == 0
            assert len(r.store.fills()) == len(r.venue.fills) == 6
            positions = await r.gateway.fetch_positions([AAPL, MSFT, InstrumentId("IBM", "alpaca")])
            assert positions == {
                AAPL: Decimal(7),
                MSFT: Decimal(-6),
                InstrumentId("IBM", "alpaca"): Decimal(0),
            }
            assert {i: p.qty for i, p in r.store.positions().items()} == {
                AAPL: Decimal(7),
                MSFT: Decimal(-6),
            }
            assert r.venue.duplicate_attempts == 0 and r.venue.orders_created == 4

    asyncio.run(run())


def test_a_resend_returns_the_order_the_venue_has(tmp_path: Path) -> None:
    async def run() -> None:
        async with rig(tmp_path) as r:
            row = await r.oms.submit(
                AAPL, BUY, Decimal(1), order_type=OrderType.LIMIT, price=Decimal("150")
            )
            fresh, _ = manager(r.venue.base_url, tmp_path / "other.db")  # knows no venue ids
            again = await fresh.submit(row.to_order())  # Alpaca: 422 client_order_id not unique
            assert (again.venue_order_id, again.status) == (
                row.venue_order_id,
                OrderStatus.ACCEPTED,
            )
            assert r.venue.duplicate_attempts == 1 and r.venue.orders_created == 1

    asyncio.run(run())


def test_refusals_are_final_and_named(tmp_path: Path) -> None:
    async def run() -> None:
        async with rig(tmp_path) as r:
            poor = await r.oms.submit(AAPL, BUY, Decimal(10_000))
            assert (
                poor.status is OrderStatus.REJECTED and "insufficient buying power" in poor.reason
            )
            odd = await r.oms.submit(
                AAPL, BUY, Decimal(1), order_type=OrderType.LIMIT, price=Decimal("187.005")
            )
            assert odd.status is OrderStatus.REJECTED and "sub-penny" in odd.reason
            unknown = await r.oms.submit(InstrumentId("ZZZZ", "alpaca"), BUY, Decimal(1))
            assert unknown.status is OrderStatus.REJECTED and "not found" in unknown.reason
            sent = len(r.venue.requests)
            inexact = await r.oms.submit(
                AAPL, BUY, Decimal(1), order_type=OrderType.LIMIT, price=Decimal("0.1") / 3
            )
            assert inexact.status is OrderStatus.REJECTED and "exactly" in inexact.reason
            assert len(r.venue.requests) == sent, "refused before anything was sent"
            assert r.venue.orders_created == 0
            with pytest.raises(OrderNotFound):
                await r.gateway.fetch_order("ts-0-nosuchorder", AAPL)
            with pytest.raises(ValueError, match="not on venue 'alpaca'"):
                await r.gateway.fetch_order("ts-0-x", InstrumentId("AAPL", "binance"))
            forger = alpaca_gateway(r.venue.base_url, api_key=KEY, secret="wrong")
            with pytest.raises(VenueRejected, match="not authorized"):
                await forger.submit(Order("ts-forged-1", AAPL, BUY, Decimal(1)))

    asyncio.run(run())


def test_a_429_reports_the_retry_after_the_venue_announced(tmp_path: Path) -> None:
    async def run() -> None:
        faults = TradingFaults(read={"429": 1.0}, retry_after_s=(0.25, 0.25))
        async with rig(tmp_path, faults=faults) as r:
            with pytest.raises(RateLimited) as caught:
                await r.gateway.fetch_order("ts-1-any", AAPL)
            assert caught.value.retry_after_s == 0.25
            assert len(r.venue.requests) == 1, "alpaca-py did not retry on its own"

    asyncio.run(run())


# -- unknown outcomes --------------------------------------------------------------------------
def test_unknown_outcomes_are_resolved_by_client_order_id(tmp_path: Path) -> None:
    """100 market orders from 8 concurrent tasks; about half of the submits time out (0.2 s
    client timeout), lose their connection or get a 503 after the venue took the order, or a
    503 before it did; a fifth of the reads fail too."""
    orders, workers = 100, 8
    faults = TradingFaults(
        submit={"timeout_after": 0.15, "drop_after": 0.15, "5xx_after": 0.15, "503": 0.1},
        read={"503": 0.15, "timeout_after": 0.05},
        seed=11,
        hold_s=1.0,
    )
    policy = RetryPolicy(backoff_s=0.001, max_backoff_s=0.02, lookup_attempts=40, max_resends=8)

    async def run() -> None:
        async with rig(tmp_path, faults=faults, timeout_s=0.2, policy=policy) as r:

            async def worker(k: int) -> None:
                for i in range(k, orders, workers):
                    await r.oms.submit(AAPL, BUY if i % 2 else SELL, Decimal(1))

            await asyncio.gather(*(worker(k) for k in range(workers)))
            rows = r.store.orders()
            assert len(rows) == orders
            assert all(row.status is OrderStatus.FILLED for row in rows)
            assert all(row.submit_state == ANSWERED for row in rows)
            submits = Counter(q.outcome for q in r.venue.requests if q.kind == "submit")
            booked = submits["timeout_after"] + submits["drop_after"] + submits["5xx_after"]
            assert booked > orders * 0.3 and submits["503"] > orders * 0.05
            stats = r.oms.stats
            assert stats["rejected_by_venue"] == 0 and stats["left_unknown"] == 0
            assert stats["resolved_by_lookup"] >= booked
            assert stats["resent_after_not_found"] == submits["503"]
            assert sum(row.status is OrderStatus.REJECTED for row in rows) == 0
            per_id = Counter(o.client_order_id for o in r.venue.orders.values())
            assert per_id == Counter({row.client_order_id: 1 for row in rows})
            assert r.venue.duplicate_attempts == 0
            assert len(r.store.fills()) == len(r.venue.fills) == orders
            held = r.store.positions().get(AAPL)
            assert (held.qty if held is not None else 0) == venue_position(r.venue) == 0

    asyncio.run(run())


def test_a_stretch_of_429_and_503_respects_retry_after_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    """Of requests 10 to 120, 30 % are answered 429 (Retry-After 0.02-0.06 s) or 503."""
    bad = {"429": 0.2, "503": 0.1}
    faults = TradingFaults(
        submit=bad, read=bad, cancel=bad, window=(10, 120), retry_after_s=(0.02, 0.06), seed=5
    )

    async def run() -> None:
        async with rig(tmp_path, faults=faults) as r:
            for i in range(50):
                await r.oms.submit(AAPL, BUY if i % 2 else SELL, Decimal(2))
            requests = r.venue.requests
            assert len(requests) > 120
            waits = [(q.at, q.retry_after) for q in requests if q.outcome == "429"]
            assert len(waits) > 10 and r.oms.stats["rate_limited"] == len(waits)
            for q in requests:  # on the venue's clock, as the requests arrived
                assert all(q.at >= at + wait for at, wait in waits if at < q.at), q
            assert r.venue.early_requests == 0
            assert r.venue.orders_created == 50 and r.venue.duplicate_attempts == 0
            assert all(row.status is OrderStatus.FILLED for row in r.store.orders())
            assert len(r.store.fills()) == len(r.venue.fills) == 50

    asyncio.run(run())


# -- reconciliation ----------------------------------------------------------------------------
def test_reconcile_converges_on_a_fill_and_an_order_lost_while_down(tmp_path: Path) -> None:
    """A resting order fills while the runtime is down and a market order was taken while its
    answer timed out and every lookup failed; the next start settles both by lookup."""

    async def run() -> None:
        faults = TradingFaults(submit={"timeout_after": 1.0}, read={"503": 1.0}, window=(1, 60))
        async with rig(tmp_path, faults=faults, timeout_s=0.3) as r:
            resting = await r.oms.submit(
                AAPL, BUY, Decimal(5), order_type=OrderType.LIMIT, price=Decimal("185")
            )
            assert resting.status is OrderStatus.ACCEPTED
            lost = await r.oms.submit(AAPL, BUY, Decimal(2))
            assert lost.submit_state == UNKNOWN
            r.venue.faults = TradingFaults()
            r.venue.set_price("AAPL", "184.9")  # the market comes down while nobody watches

            gateway, oms = manager(r.venue.base_url, tmp_path / "state.db")
            report = await reconcile(oms, gateway, [AAPL])
            assert report.ok and report.mode == "warm"
            changed = {coid: after for coid, _, after in report.changed}
            assert changed == {resting.client_order_id: "filled", lost.client_order_id: "filled"}
            assert report.new_fills == 2 and report.open_orders == []
            assert oms.store.positions()[AAPL].qty == Decimal(7) == r.venue.position("AAPL")
            assert r.venue.orders_created == 2 and r.venue.duplicate_attempts == 0

    asyncio.run(run())


def test_reconcile_refuses_an_external_order(tmp_path: Path) -> None:
    async def run() -> None:
        async with rig(tmp_path) as r:
            await r.oms.submit(AAPL, BUY, Decimal(3))
            person = TradingClient(KEY, SECRET, url_override=r.venue.base_url)
            by_hand = LimitOrderRequest(
                symbol="AAPL",
                qty=1,
                side=AlpacaSide.BUY,
                time_in_force=AlpacaTif.GTC,
                limit_price=150,
                client_order_id="web_1",
            )
            await asyncio.to_thread(person.submit_order, by_hand)

            gateway, oms = manager(r.venue.base_url, tmp_path / "state.db")
            with pytest.raises(ReconciliationError) as caught:
                await reconcile(oms, gateway, [AAPL])
            report = caught.value.report
            assert [o.client_order_id for o in report.external_orders] == ["web_1"]
            assert "web_1" in report.render() and "buy 1 @ 150" in report.render()
            ok = await reconcile(oms, gateway, [AAPL], ReconcilePolicy(external_orders="ignore"))
            assert ok.ok and ok.positions[0].venue == Decimal(3)
            assert r.venue.orders_created == 2

    asyncio.run(run())
