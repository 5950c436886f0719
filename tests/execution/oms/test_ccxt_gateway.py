"""The order manager through the ccxt gateway: the real ccxt Binance client over HTTP against the
fake Binance venue's trading desk on 127.0.0.1, matching on the recorded BTCUSDT book, with a
real state store on SQLite. Happy path, unknown outcomes, 429/503 stretches and a restart."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tradestack.core.ids import InstrumentId, client_order_id
from tradestack.core.orders import (
    Liquidity,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from tradestack.execution.oms import (
    OrderManager,
    OrderNotFound,
    RateLimited,
    RetryPolicy,
    VenueRejected,
    VenueTrade,
)
from tradestack.execution.oms.ccxt_gateway import CcxtGateway, binance_gateway
from tradestack.storage import StateStore, open_database
from tradestack.storage.state import ANSWERED, PENDING, SENT, UNKNOWN
from tradestack.testing.fake_venue import FakeVenueServer
from tradestack.testing.venues.binance import BinanceFakeVenue
from tradestack.testing.venues.binance_trading import BinanceTradingDesk, TradingFaults

BTC = InstrumentId("BTC/USDT", "binance")
KEY, SECRET = "test-api-key", "test-api-secret"
FAST = RetryPolicy(backoff_s=0.001, max_backoff_s=0.02)
BUY, SELL = OrderSide.BUY, OrderSide.SELL


def manager(
    base_url: str, db: Path, *, timeout_s: float = 2.0, policy: RetryPolicy = FAST
) -> tuple[CcxtGateway, OrderManager]:
    """A fresh gateway (a new ccxt client) and order manager on the database at ``db``."""
    gateway = binance_gateway(base_url, api_key=KEY, secret=SECRET, timeout_s=timeout_s)
    store = StateStore(open_database(db, "test"))
    return gateway, OrderManager(store, gateway, strategy="s1", policy=policy)


@dataclass
class Rig:
    desk: BinanceTradingDesk
    gateway: CcxtGateway
    oms: OrderManager
    base_url: str

    @property
    def store(self) -> StateStore:
        return self.oms.store


@asynccontextmanager
async def rig(
    recording: Path,
    tmp_path: Path,
    *,
    faults: TradingFaults | None = None,
    timeout_s: float = 2.0,
    policy: RetryPolicy = FAST,
    frames: int = 50,
    exchange_info: Path | None = None,
    balances: dict[str, str] | None = None,
) -> AsyncIterator[Rig]:
    desk = BinanceTradingDesk(api_key=KEY, secret=SECRET, faults=faults, balances=balances)
    venue = BinanceFakeVenue([recording], exchange_info=exchange_info, desk=desk)
    desk.advance(frames)
    async with FakeVenueServer(venue) as server:
        gateway, oms = manager(
            server.base_url, tmp_path / "state.db", timeout_s=timeout_s, policy=policy
        )
        try:
            yield Rig(desk, gateway, oms, server.base_url)
        finally:
            await gateway.close()


def best(desk: BinanceTradingDesk) -> tuple[Decimal, Decimal]:
    book = desk.book("BTCUSDT")
    assert book is not None
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None and ask is not None
    return Decimal(repr(bid[0])), Decimal(repr(ask[0]))


def desk_order(desk: BinanceTradingDesk, coid: str) -> Any:
    (order,) = [o for o in desk.engine.orders.values() if o.client_order_id == coid]
    return order


def trade_from_report(report: dict[str, Any]) -> VenueTrade:
    """A user-data-stream executionReport as the runtime would hand it to ``on_trade``."""
    price = Decimal(report["L"])
    fee = Decimal(report["n"]) * (price if report["N"] == "BTC" else 1)
    return VenueTrade(
        trade_id=str(report["t"]),
        client_order_id=report["c"],
        qty=Decimal(report["l"]),
        price=price,
        fee=fee,
        fee_currency="USDT",
        liquidity=Liquidity.MAKER if report["m"] else Liquidity.TAKER,
        ts_event_ns=report["T"] * 1_000_000,
    )


def venue_position(desk: BinanceTradingDesk) -> Decimal:
    """The BTC the account's trades added: bought less sold, less commission paid in BTC."""
    total = Decimal(0)
    for t in desk.engine.trades:
        total += t.qty if t.side == "BUY" else -t.qty
        total -= t.commission if t.commission_asset == "BTC" else 0
    return total


# -- (a) the happy path ------------------------------------------------------------------------
def test_market_and_limit_orders_fill_cancel_and_store_each_trade_once(
    recording: Path, tmp_path: Path
) -> None:
    async def run() -> None:
        async with rig(recording, tmp_path) as r:
            bid, ask = best(r.desk)
            buy = await r.oms.submit(BTC, BUY, Decimal("2"))
            assert (buy.status, buy.filled_qty) == (OrderStatus.FILLED, Decimal("2"))
            fills = sorted(r.store.fills(buy.client_order_id), key=lambda f: int(f.trade_id))
            venue = desk_order(r.desk, buy.client_order_id)
            assert [f.trade_id for f in fills] == [str(i) for i in venue.trade_ids]
            assert len(fills) > 1, "2 BTC walks more than the best ask level"
            assert fills[0].fill.price == ask
            prices = [f.fill.price for f in fills]
            assert prices == sorted(prices) and len(set(prices)) == len(prices)
            for f in fills:  # Binance charges the buyer in BTC; stored in USDT at the price
                assert f.fill.fee == f.fill.qty * f.fill.price * Decimal("0.001")
                assert (f.fee_currency, f.fill.liquidity) == ("USDT", Liquidity.TAKER)

            sell = await r.oms.submit(BTC, SELL, Decimal("0.5"))
            assert sell.status is OrderStatus.FILLED
            assert r.store.fills(sell.client_order_id)[0].fill.price == bid

            # marketable limit: fills at once as taker, at or above its limit
            limit = bid - Decimal("20.00")
            taker = await r.oms.submit(
                BTC, SELL, Decimal("0.3"), order_type=OrderType.LIMIT, price=limit
            )
            assert taker.status is OrderStatus.FILLED
            assert all(f.fill.price >= limit for f in r.store.fills(taker.client_order_id))

            # a resting limit order: listed open at the venue, then canceled
            rest = await r.oms.submit(
                BTC, BUY, Decimal("0.1"), order_type=OrderType.LIMIT, price=bid - 50
            )
            assert rest.status is OrderStatus.ACCEPTED and rest.venue_order_id
            listed = await r.gateway.fetch_open_orders([BTC])
            assert [(o.client_order_id, o.status) for o in listed] == [
                (rest.client_order_id, OrderStatus.ACCEPTED)
            ]
            canceled = await r.oms.cancel(rest.client_order_id)
            assert canceled.status is OrderStatus.CANCELED
            assert desk_order(r.desk, rest.client_order_id).status == "CANCELED"
            assert r.desk.engine.locked["USDT"] == 0
            again = await r.oms.cancel(rest.client_order_id)  # terminal: nothing is sent
            assert again.status is OrderStatus.CANCELED

            # a resting buy the replayed market comes down to: filled as maker at its price
            _, ask = best(r.desk)
            maker = await r.oms.submit(
                BTC,
                BUY,
                Decimal("0.05"),
                order_type=OrderType.LIMIT,
                price=ask - Decimal("0.01"),
                intent="maker",
            )
            assert maker.status is OrderStatus.ACCEPTED
            r.desk.advance()
            assert await r.oms.sync_fills(maker.client_order_id) >= 1
            row = r.store.order(maker.client_order_id)
            assert row is not None and row.status is OrderStatus.FILLED
            maker_fills = r.store.fills(maker.client_order_id)
            assert {(f.fill.price, f.fill.liquidity) for f in maker_fills} == {
                (ask - Decimal("0.01"), Liquidity.MAKER)
            }

            # every trade stored once, whatever repeats it
            for row in r.store.orders():
                assert await r.oms.sync_fills(row.client_order_id) == 0
            reports = [e for e in r.desk.events if e["x"] == "TRADE"]
            assert reports and not any(r.oms.on_trade(trade_from_report(e)) for e in reports)
            assert len(r.store.fills()) == len(r.desk.engine.trades)
            assert r.store.positions()[BTC].qty == venue_position(r.desk)
            bought = sum(t.qty if t.side == "BUY" else -t.qty for t in r.desk.engine.trades)
            assert bought == Decimal("1.25")  # the position is that less the fees paid in BTC

            balances = await r.gateway.fetch_balances()
            engine = r.desk.engine
            assert balances == {
                a: engine.free[a] + engine.locked.get(a, Decimal(0)) for a in ("BTC", "USDT")
            }
            base_fees = sum((t.commission for t in engine.trades if t.side == "BUY"), Decimal(0))
            assert balances["BTC"] == 10 + Decimal("1.25") - base_fees
            assert r.desk.duplicate_attempts == 0 and r.desk.orders_created == 5

    asyncio.run(run())


def test_a_resend_of_an_open_order_returns_the_order_the_venue_has(
    recording: Path, tmp_path: Path
) -> None:
    async def run() -> None:
        async with rig(recording, tmp_path) as r:
            bid, _ = best(r.desk)
            row = await r.oms.submit(
                BTC, BUY, Decimal("0.1"), order_type=OrderType.LIMIT, price=bid - 100
            )
            again = await r.gateway.submit(row.to_order())  # Binance: -2010 Duplicate order sent.
            assert (again.venue_order_id, again.status) == (
                row.venue_order_id,
                OrderStatus.ACCEPTED,
            )
            assert r.desk.duplicate_attempts == 1
            assert r.desk.duplicate_orders == 0 and r.desk.orders_created == 1

    asyncio.run(run())


def test_dropped_fill_notifications_are_recovered_from_the_trade_list(
    recording: Path, tmp_path: Path
) -> None:
    """Resting orders fill while the market replays; half the executionReports are lost on the
    way: the stream's trades and the REST trade list together store every trade exactly once."""

    async def run() -> None:
        async with rig(recording, tmp_path, faults=TradingFaults(drop_fills=0.5, seed=2)) as r:
            _, ask = best(r.desk)
            rows = [
                await r.oms.submit(
                    BTC,
                    BUY,
                    Decimal("0.02"),
                    order_type=OrderType.LIMIT,
                    price=ask - Decimal("0.01") * k,
                )
                for k in (1, 2, 3)
            ]
            r.desk.advance()
            streamed = [trade_from_report(e) for e in r.desk.events if e["x"] == "TRADE"]
            assert all(r.oms.on_trade(t) for t in streamed)
            recovered = [await r.oms.sync_fills(row.client_order_id) for row in rows]
            assert sum(recovered) == r.desk.dropped_events > 0
            assert (
                len(r.store.fills()) == len(r.desk.engine.trades) == len(streamed) + sum(recovered)
            )
            assert r.store.positions()[BTC].qty == venue_position(r.desk)

    asyncio.run(run())


def test_venue_and_gateway_refusals_are_final_and_named(recording: Path, tmp_path: Path) -> None:
    async def run() -> None:
        async with rig(recording, tmp_path, balances={"USDT": "1000", "BTC": "0"}) as r:
            bid, _ = best(r.desk)
            poor = await r.oms.submit(BTC, BUY, Decimal("1"))
            assert poor.status is OrderStatus.REJECTED
            assert "insufficient balance" in poor.reason
            tiny = await r.oms.submit(BTC, BUY, Decimal("0.00001"))
            assert tiny.status is OrderStatus.REJECTED and "NOTIONAL" in tiny.reason
            sent = len(r.desk.requests)
            odd = await r.oms.submit(BTC, BUY, Decimal("0.000015"))
            assert odd.status is OrderStatus.REJECTED and "does not fit" in odd.reason
            day = await r.oms.submit(
                BTC,
                BUY,
                Decimal("0.01"),
                order_type=OrderType.LIMIT,
                price=bid,
                time_in_force=TimeInForce.DAY,
            )
            assert day.status is OrderStatus.REJECTED and "day" in day.reason
            nowhere = await r.oms.submit(InstrumentId("DOGE/EUR", "binance"), BUY, Decimal("1"))
            assert nowhere.status is OrderStatus.REJECTED and "'DOGE/EUR'" in nowhere.reason
            assert len(r.desk.requests) == sent, "refused before anything was sent"
            by_id = await r.oms.submit(InstrumentId("BTCUSDT", "binance"), BUY, Decimal("0.01"))
            assert by_id.status is OrderStatus.FILLED, "the venue's market id names it too"
            with pytest.raises(OrderNotFound):
                await r.gateway.fetch_order("ts-0-nosuchorder", BTC)
            with pytest.raises(ValueError, match="not on venue 'binance'"):
                await r.gateway.fetch_order(by_id.client_order_id, InstrumentId("BTC/USD", "kr"))

            forger = binance_gateway(r.base_url, api_key=KEY, secret="not-the-secret")
            try:
                order = Order("ts-forged-1", BTC, BUY, Decimal("0.01"))
                with pytest.raises(VenueRejected, match="Signature for this request is not valid"):
                    await forger.submit(order)
            finally:
                await forger.close()

    asyncio.run(run())


def test_a_429_reports_the_retry_after_the_venue_announced(recording: Path, tmp_path: Path) -> None:
    faults = TradingFaults(read={"429": 1.0}, retry_after_s=(0.25, 0.25))

    async def run() -> None:
        async with rig(recording, tmp_path, faults=faults) as r:
            with pytest.raises(RateLimited) as caught:
                await r.gateway.fetch_order("ts-1-any", BTC)
            assert caught.value.retry_after_s == 0.25
            assert r.desk.requests[-1].outcome == "429"

    asyncio.run(run())


# -- (b) unknown outcomes ----------------------------------------------------------------------
UNKNOWN_SUBMITS = {"timeout_after": 0.15, "drop_after": 0.15, "5xx_after": 0.15, "503": 0.1}
BOOKED = ("timeout_after", "drop_after", "5xx_after")


def _unknown_outcomes(recording: Path, tmp_path: Path, orders: int, workers: int) -> Counter[str]:
    """``orders`` market orders from ``workers`` concurrent tasks; over half of the submits end
    in a timeout (0.2 s client timeout) or a dropped connection or a 503 after the venue booked
    the order, or a 503 before it did; a fifth of the lookups fail too."""
    faults = TradingFaults(
        submit=UNKNOWN_SUBMITS, read={"503": 0.15, "timeout_after": 0.05}, seed=11, hold_s=1.0
    )
    policy = RetryPolicy(backoff_s=0.001, max_backoff_s=0.02, lookup_attempts=40, max_resends=8)
    numbers: Counter[str] = Counter()

    async def run() -> None:
        async with rig(recording, tmp_path, faults=faults, timeout_s=0.2, policy=policy) as r:

            async def worker(k: int) -> None:
                for i in range(k, orders, workers):
                    side = BUY if i % 2 else SELL
                    await r.oms.submit(BTC, side, Decimal("0.001"))

            await asyncio.gather(*(worker(k) for k in range(workers)))
            rows = r.store.orders()
            assert len(rows) == orders
            assert all(row.status is OrderStatus.FILLED for row in rows)
            assert all(row.submit_state == ANSWERED for row in rows)
            submits = Counter(q.outcome for q in r.desk.requests if q.kind == "submit")
            booked, lost = sum(submits[o] for o in BOOKED), submits["503"]
            assert booked > orders * 0.3 and lost > orders * 0.05
            stats = r.oms.stats
            assert stats["rejected_by_venue"] == 0 and stats["left_unknown"] == 0
            assert stats["unknown_outcomes"] >= booked + lost
            assert stats["resolved_by_lookup"] >= booked
            assert stats["resent_after_not_found"] == lost
            assert r.desk.orders_created == orders
            assert r.desk.duplicate_attempts == 0 and r.desk.duplicate_orders == 0
            assert len(r.store.fills()) == len(r.desk.engine.trades)
            assert r.store.positions()[BTC].qty == venue_position(r.desk)
            numbers.update(stats)
            numbers.update({f"venue_{k}": v for k, v in submits.items()})
            numbers["local_rejections"] = sum(row.status is OrderStatus.REJECTED for row in rows)
            numbers["duplicate_orders"] = r.desk.duplicate_orders

    asyncio.run(run())
    return numbers


def test_unknown_outcomes_are_resolved_by_client_order_id(recording: Path, tmp_path: Path) -> None:
    numbers = _unknown_outcomes(recording, tmp_path, orders=100, workers=8)
    assert numbers["local_rejections"] == 0 and numbers["duplicate_orders"] == 0


@pytest.mark.slow
def test_a_thousand_unknown_outcomes_are_resolved_by_client_order_id(
    recording: Path, tmp_path: Path
) -> None:
    numbers = _unknown_outcomes(recording, tmp_path, orders=1000, workers=8)
    assert numbers["local_rejections"] == 0 and numbers["duplicate_orders"] == 0
    print("\n1,000 unknown-outcome orders:", dict(sorted(numbers.items())))


# -- (c) a stretch of 429s and 503s ------------------------------------------------------------
def test_a_stretch_of_429_and_503_respects_retry_after_and_duplicates_nothing(
    recording: Path, tmp_path: Path
) -> None:
    """Of requests 20 to 180, 30 % are answered 429 (Retry-After 0.02-0.06 s) or 503."""
    bad = {"429": 0.2, "503": 0.1}
    faults = TradingFaults(
        submit=bad, read=bad, cancel=bad, window=(20, 180), retry_after_s=(0.02, 0.06), seed=5
    )

    async def run() -> None:
        async with rig(recording, tmp_path, faults=faults) as r:
            for i in range(80):
                await r.oms.submit(BTC, BUY if i % 2 else SELL, Decimal("0.002"))
            requests = r.desk.requests
            assert len(requests) > 180
            stretch = requests[20:180]
            assert sum(q.outcome != "ok" for q in stretch) / len(stretch) >= 0.25
            waits = [(q.at, q.retry_after) for q in requests if q.outcome == "429"]
            assert len(waits) > 20 and r.oms.stats["rate_limited"] == len(waits)
            for q in requests:  # compared on the venue's clock, as the requests arrived
                assert all(q.at >= at + wait for at, wait in waits if at < q.at), q
            assert r.desk.early_requests == 0
            assert r.desk.orders_created == 80 and r.desk.duplicate_attempts == 0
            assert all(row.status is OrderStatus.FILLED for row in r.store.orders())
            assert r.store.positions()[BTC].qty == venue_position(r.desk)

    asyncio.run(run())


# -- (d) a restart -----------------------------------------------------------------------------
def test_a_restart_resolves_every_order_under_its_client_order_id(
    recording: Path, tmp_path: Path
) -> None:
    """The first manager leaves a resting order open, a committed intent unsent and four orders
    unknown (two booked, two lost; every lookup failed); the market fills the resting order
    while nobody watches. A fresh manager on the same store converges without duplicates."""

    async def run() -> None:
        async with rig(recording, tmp_path, timeout_s=0.2) as r:
            _, ask = best(r.desk)
            resting = await r.oms.submit(
                BTC, BUY, Decimal("0.05"), order_type=OrderType.LIMIT, price=ask - Decimal("0.01")
            )
            assert resting.status is OrderStatus.ACCEPTED
            r.desk.faults = TradingFaults(
                submit={"timeout_after": 0.5, "503": 0.5}, read={"503": 1.0}, seed=1, hold_s=1.0
            )
            r.oms.policy = RetryPolicy(lookup_attempts=2, backoff_s=0.001, max_backoff_s=0.001)
            for _ in range(4):
                row = await r.oms.submit(BTC, SELL, Decimal("0.01"))
                assert row.submit_state == UNKNOWN and row.status is OrderStatus.SUBMITTED
            seq = r.store.next_sequence("s1")
            pending = client_order_id("s1", BTC, "order", seq)
            r.store.record_intent(
                Order(pending, BTC, SELL, Decimal("0.01")), strategy="s1", sequence=seq,
                intent="order",
            )  # fmt: skip
            booked = {q.client_order_id for q in r.desk.requests if q.outcome == "timeout_after"}
            assert len(booked) == 2 and r.desk.orders_created == 3
            r.desk.advance()  # the market moves on while the manager is down
            assert desk_order(r.desk, resting.client_order_id).status == "FILLED"

            r.desk.faults = TradingFaults()
            gateway, restarted = manager(r.base_url, tmp_path / "state.db", timeout_s=0.2)
            try:
                still_open = await restarted.recover()
            finally:
                await gateway.close()
            store = restarted.store
            assert still_open == []
            assert store.orders_in(PENDING, SENT, UNKNOWN) == []
            rows = store.orders()
            assert len(rows) == 6 and all(row.status is OrderStatus.FILLED for row in rows)
            venue_ids = Counter(o.client_order_id for o in r.desk.engine.orders.values())
            assert venue_ids == Counter({row.client_order_id: 1 for row in rows})
            assert r.desk.duplicate_attempts == 0 and r.desk.duplicate_orders == 0
            assert restarted.stats["resolved_by_lookup"] >= 3  # two booked + the resting one
            assert restarted.stats["resent_after_not_found"] == 2  # the two lost
            assert len(store.fills()) == len(r.desk.engine.trades)
            assert store.positions()[BTC].qty == venue_position(r.desk)

    asyncio.run(run())


def test_recorded_exchange_info_filters_apply(shared_data: Path, tmp_path: Path) -> None:
    """With the full recording and its recorded exchangeInfo (minNotional 10 in 2021)."""
    spot = shared_data / "ws_messages" / "binance_spot"
    recording, info = (
        spot / "hftbacktest_btcusdt_20240808.gz",
        spot / "cryptofeed_2021-10-12_BINANCE.0.gz",
    )

    async def run() -> None:
        async with rig(recording, tmp_path, exchange_info=info, frames=200) as r:
            small = await r.oms.submit(BTC, BUY, Decimal("0.0001"))  # ~6 USDT
            assert small.status is OrderStatus.REJECTED and "MIN_NOTIONAL" in small.reason
            fine = await r.oms.submit(BTC, BUY, Decimal("0.001"))
            assert fine.status is OrderStatus.FILLED

    asyncio.run(run())
