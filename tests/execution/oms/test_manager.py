"""The order manager on simulated time against the in-process venue with scripted faults:
unknown outcomes resolved by lookup, 429/503 stretches, restarts, fills once per trade id."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import pytest
from aiolimiter import AsyncLimiter

from tradestack.core.ids import InstrumentId, client_order_id
from tradestack.core.orders import OrderSide, OrderStatus, OrderType
from tradestack.execution.oms import OrderManager, RetryPolicy
from tradestack.storage import StateStore, open_database
from tradestack.storage.state import ANSWERED, PENDING, SENT, UNKNOWN
from tradestack.testing.memory_venue import FaultScript, MemoryVenue

BTC = InstrumentId("BTC/USDT", "binance")


class SimTime:
    """A monotonic clock that moves only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.0)
        await asyncio.sleep(0)

    def ns(self) -> int:
        return int(self.now * 1e9)


def _setup(
    tmp_path: Path, script: FaultScript | None = None, name: str = "s.db"
) -> tuple[SimTime, MemoryVenue, OrderManager]:
    t = SimTime()
    venue = MemoryVenue(t, script=script)
    store = StateStore(open_database(tmp_path / name, "test"))
    oms = OrderManager(
        store, venue, strategy="s1", clock=t, sleep=t.sleep, now_ns=t.ns, policy=RetryPolicy()
    )
    return t, venue, oms


@pytest.mark.slow
def test_unknown_outcomes_are_resolved_by_lookup_never_rejected_or_duplicated(
    tmp_path: Path,
) -> None:
    """1,000 orders whose request the venue took, answered by a timeout or a 503; 30 % of the
    lookups time out too."""
    script = FaultScript(rates={"timeout_after": 0.5, "5xx_after": 0.5}, read_lost=0.3, seed=11)
    _, venue, oms = _setup(tmp_path, script)

    async def run() -> None:
        for _ in range(1000):
            await oms.submit(BTC, OrderSide.BUY, Decimal("0.01"))

    asyncio.run(run())
    rows = oms.store.orders()
    assert len(rows) == 1000
    assert oms.stats["unknown_outcomes"] == 1000
    assert oms.stats["resolved_by_lookup"] == 1000
    assert oms.stats["resent_after_not_found"] == 0
    assert oms.stats["rejected_by_venue"] == 0
    assert all(r.status is OrderStatus.FILLED for r in rows)  # none rejected locally
    assert all(r.submit_state == ANSWERED for r in rows)
    assert venue.duplicates == 0
    assert len(venue.orders) == 1000
    assert oms.store.positions()[BTC].qty == venue.venue_position(BTC) == Decimal("10.00")
    assert len(oms.store.fills()) == 1000


def test_requests_that_never_arrived_are_sent_again_under_the_same_id(tmp_path: Path) -> None:
    """A quarter of the submits time out before reaching the venue (and a quarter after): the
    lookup finds no order twice, so the same request goes again; what is still unknown after
    the retries is resolved at the next start, never rejected."""
    script = FaultScript(rates={"lost": 0.25, "timeout_after": 0.25}, read_lost=0.1, seed=3)
    _, venue, oms = _setup(tmp_path, script)

    async def run() -> None:
        for _ in range(300):
            await oms.submit(BTC, OrderSide.BUY, Decimal("1"))
        oms.stats["after_run_unknown"] = len(oms.store.orders_in(UNKNOWN))
        venue.script = FaultScript()
        await oms.recover()

    asyncio.run(run())
    assert oms.stats["resent_after_not_found"] > 50
    assert venue.duplicates == 0 and len(venue.orders) == 300
    assert all(r.status is OrderStatus.FILLED for r in oms.store.orders())
    assert oms.store.positions()[BTC].qty == venue.venue_position(BTC) == 300


def test_a_stretch_of_429_and_503_respects_retry_after_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    """30 % of calls in the middle of the run are answered 429 (Retry-After 0.1-1 s) or 503;
    no request reaches the venue before a Retry-After has elapsed."""
    script = FaultScript(
        rates={"429": 0.2, "5xx_after": 0.05, "lost": 0.05},
        seed=5,
        active=lambda n, method: 200 <= n < 1400,
    )
    _, venue, oms = _setup(tmp_path, script)

    async def run() -> None:
        for _ in range(500):
            await oms.submit(BTC, OrderSide.SELL, Decimal("0.02"))

    asyncio.run(run())
    stretch = venue.calls[200:1400]
    assert sum(c[3] in ("429", "5xx_after", "lost") for c in stretch) / len(stretch) > 0.2
    assert oms.stats["rate_limited"] > 100
    assert venue.early_requests == 0
    assert venue.duplicates == 0
    assert all(r.status is OrderStatus.FILLED for r in oms.store.orders())
    assert oms.store.positions()[BTC].qty == venue.venue_position(BTC) == Decimal("-10.00")


def test_the_client_side_limiter_paces_requests(tmp_path: Path) -> None:
    t = SimTime()
    venue = MemoryVenue(t)
    store = StateStore(open_database(tmp_path / "s.db", "test"))
    oms = OrderManager(store, venue, strategy="s1", limiter=AsyncLimiter(20, 1.0))

    async def run() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        for _ in range(30):
            await oms.submit(
                BTC, OrderSide.BUY, Decimal("0.01"), order_type=OrderType.LIMIT, price=Decimal("99")
            )
        return loop.time() - start

    elapsed = asyncio.run(run())
    # 30 submits at 20 per second: the bucket's first 20 go at once, the rest wait
    assert elapsed >= 0.4


def test_a_restart_sends_pending_intents_and_resolves_requests_in_flight(tmp_path: Path) -> None:
    """A crash after the intent was committed (pending), after the request left (sent) and
    after a timeout (unknown): the next start converges without duplicates."""
    _, venue, oms = _setup(tmp_path)
    store = oms.store
    pending, sent, unknown = (client_order_id("s1", BTC, "order", seq) for seq in (1, 2, 3))
    from tradestack.core.orders import Order

    for seq, coid in enumerate((pending, sent, unknown), start=1):
        assert store.next_sequence("s1") == seq
        store.record_intent(
            Order(coid, BTC, OrderSide.BUY, Decimal("1")),
            strategy="s1",
            sequence=seq,
            intent="order",
        )
    store.set_submit_state(sent, SENT, 1)
    store.set_submit_state(unknown, UNKNOWN, 1)
    # the "sent" request reached the venue before the crash; the "unknown" one did not
    asyncio.run(venue.submit(Order(sent, BTC, OrderSide.BUY, Decimal("1"))))
    venue.calls.clear()

    t2 = SimTime()
    restarted = OrderManager(
        StateStore(open_database(tmp_path / "s.db", "test")),
        venue,
        strategy="s1",
        clock=t2,
        sleep=t2.sleep,
        now_ns=t2.ns,
    )
    still_open = asyncio.run(restarted.recover())
    assert still_open == []
    assert venue.duplicates == 0 and len(venue.orders) == 3
    for coid in (pending, sent, unknown):
        row = restarted.store.order(coid)
        assert row is not None and row.status is OrderStatus.FILLED, coid
    assert restarted.store.positions()[BTC].qty == venue.venue_position(BTC) == 3
    assert restarted.store.orders_in(PENDING, SENT, UNKNOWN) == []
    # the next order continues the durable sequence
    row = asyncio.run(restarted.submit(BTC, OrderSide.SELL, Decimal("3")))
    assert row.sequence == 4 and restarted.store.positions()[BTC].qty == 0


def test_fills_from_a_stream_and_from_lookups_count_once(tmp_path: Path) -> None:
    _, venue, oms = _setup(tmp_path)
    row = asyncio.run(
        oms.submit(
            BTC, OrderSide.BUY, Decimal("2"), order_type=OrderType.LIMIT, price=Decimal("99")
        )
    )
    assert row.status is OrderStatus.ACCEPTED
    trade = venue.fill_resting(row.client_order_id, Decimal("0.5"), 10)
    assert oms.on_trade(trade)
    assert not oms.on_trade(trade)  # the stream repeats it
    assert asyncio.run(oms.sync_fills(row.client_order_id)) == 0  # the lookup finds it again
    venue.fill_resting(row.client_order_id, Decimal("0.5"), 11)  # the stream missed this one
    assert asyncio.run(oms.sync_fills(row.client_order_id)) == 1
    stored = oms.store.order(row.client_order_id)
    assert stored is not None
    assert (stored.status, stored.filled_qty) == (OrderStatus.PARTIALLY_FILLED, Decimal("1.0"))
    canceled = asyncio.run(oms.cancel(row.client_order_id))
    assert canceled.status is OrderStatus.CANCELED and canceled.filled_qty == 1
    assert oms.stats["duplicate_fills_ignored"] == 5  # every later sight of t1 and t2
    assert len(oms.store.fills(row.client_order_id)) == 2


def test_a_venue_rejection_is_final_and_named(tmp_path: Path) -> None:
    _, venue, oms = _setup(tmp_path, FaultScript(rates={"reject": 1.0}))
    row = asyncio.run(oms.submit(BTC, OrderSide.BUY, Decimal("1")))
    assert row.status is OrderStatus.REJECTED and "insufficient balance" in row.reason
    assert len(venue.calls) == 1


def test_an_order_the_venue_never_confirms_stays_unknown_for_the_next_start(
    tmp_path: Path,
) -> None:
    _, venue, oms = _setup(tmp_path, FaultScript(rates={"lost": 1.0}))
    oms.policy = RetryPolicy(lookup_attempts=5)
    row = asyncio.run(oms.submit(BTC, OrderSide.BUY, Decimal("1")))
    assert row.status is OrderStatus.SUBMITTED and row.submit_state == UNKNOWN
    assert oms.stats["left_unknown"] == 1 and venue.orders == {}


@pytest.mark.parametrize(
    "kwargs",
    [{"lookup_attempts": 0}, {"backoff_s": -1}, {"max_backoff_s": 0.01, "backoff_s": 0.1}],
)
def test_bad_retry_policy(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"must be|need"):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]
