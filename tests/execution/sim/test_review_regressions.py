"""Regressions from the review of the L2 venue: each test is a case that once went wrong."""

from __future__ import annotations

from decimal import Decimal

import pytest
from tests.execution.sim.test_matching import (
    ASK,
    BID,
    BOOK,
    IID,
    MS,
    SEC,
    SELLER,
    T0,
    Script,
    buy,
    cancel,
    depth,
    fills_of,
    instrument,
    last_reason,
    run,
    sell,
    snapshot,
    tail,
    trade,
)

from tradestack.core.events import QuoteTick
from tradestack.core.instruments import InstrumentKind
from tradestack.core.orders import OrderStatus, TimeInForce
from tradestack.engine.l2 import L2BacktestEngine
from tradestack.engine.strategy import Strategy
from tradestack.execution.sim.config import L2VenueConfig
from tradestack.execution.sim.feed import FUNDING, L2Feed

D = Decimal


def test_many_queue_fills_between_requests_grow_the_response_log() -> None:
    n = 5000  # more fills than the initial response log holds, with no request in between
    rows = list(snapshot(T0, bids=[(90.0, 1.0)]))
    rows += [trade(T0 + 2 * MS + i * 1000, SELLER, 99.9, 1.0) for i in range(n)]
    rows.append(tail())
    strategy = Script([(T0 + MS, buy("a", n, price=D("99.9")))])
    engine = L2BacktestEngine(
        strategy,
        L2Feed.from_rows(IID, rows),
        instrument=instrument(),
        venue=L2VenueConfig(max_walk_levels=1, leverage=D(100)),
        starting_cash=D(10_000_000),
    )
    result = engine.run()
    assert strategy.placed["a"].filled_qty == n
    assert len(result.fills) == n


def test_canceling_our_earlier_order_moves_the_later_one_up() -> None:
    rows = [
        *snapshot(T0),
        trade(T0 + 10 * MS, SELLER, 99.9, 5.0),
        trade(T0 + 11 * MS, SELLER, 99.9, 2.0),
        tail(),
    ]
    _, s = run(
        rows,
        [
            (T0 + MS, buy("A", 3, price=D("99.9"))),
            (T0 + 2 * MS, buy("B", 2, price=D("99.9"))),
            (T0 + 3 * MS, cancel("A")),
        ],
    )
    assert s.placed["A"].status is OrderStatus.CANCELED
    assert sum(q for _, q, _ in fills_of(s.placed["B"])) == 2


def test_pending_orders_on_the_other_side_do_not_lend_position_or_buying_power() -> None:
    _, s = run(
        BOOK,
        [(T0 + MS, buy("b", 5, price=D("90.0"))), (T0 + 2 * MS, sell("s", 5))],
        L2VenueConfig(allow_short=False),
    )
    assert s.placed["s"].status is OrderStatus.REJECTED
    rows = [*snapshot(T0, asks=[(100.0, 5000.0), (110.0, 1.0)]), tail()]
    _, s = run(
        rows,
        [
            (T0 + MS, sell("far", 900, price=D("110.0"))),
            (T0 + 2 * MS, buy("big", 1800, price=D("100.0"))),
        ],
    )
    assert "insufficient buying power" in last_reason(s.placed["big"])


def test_a_market_fok_order_fills_completely_or_not_at_all() -> None:
    _, s = run(BOOK, [(T0 + MS, buy("a", 12, time_in_force=TimeInForce.FOK))])
    assert fills_of(s.placed["a"]) == []
    assert "FOK" in last_reason(s.placed["a"])


def test_a_limit_stopped_by_the_walk_limit_never_rests_crossed() -> None:
    rows = [*snapshot(T0), depth(T0 + 10 * MS, ASK, 100.1, 1.0), tail()]
    _, s = run(rows, [(T0 + MS, buy("a", 10, price=D("110.0")))], L2VenueConfig(max_walk_levels=2))
    a = s.placed["a"]
    assert [(p, q) for p, q, _ in fills_of(a)] == [(D("100.0"), D(2)), (D("100.1"), D(3))]
    assert a.status is OrderStatus.CANCELED
    assert "max_walk_levels" in last_reason(a)


class Quotes(Strategy):
    def on_start(self, ctx: object) -> None:
        self.at: list[int] = []

    def on_quote(self, ctx: object, quote: QuoteTick) -> None:
        self.at.append(quote.ts_recv_ns - T0)


@pytest.mark.parametrize("far_last", [False, True])
def test_a_row_outside_the_price_band_does_not_swallow_its_message_wake(far_last: bool) -> None:
    near, far = depth(T0 + MS, BID, 99.9, 7.0), depth(T0 + MS, BID, 1.0, 3.0)
    message = [near, far] if far_last else [far, near]
    rows = [*snapshot(T0), trade(T0, 1, 100.0, 1.0), *message, depth(T0 + 9 * SEC, BID, 90.0, 2.0)]
    strategy = Quotes()
    L2BacktestEngine(strategy, L2Feed.from_rows(IID, rows), instrument=instrument()).run()
    assert MS in strategy.at


@pytest.mark.parametrize("lag", [0, 1])
def test_funding_is_settled_when_the_next_period_is_announced_at_the_funding_time(
    lag: int,
) -> None:
    due = T0 + 5 * MS
    rows = [
        *snapshot(T0),
        (T0 + MS, T0 + MS, FUNDING, 0, 100.0, 0.0001, due),
        (due + lag, due + lag, FUNDING, 0, 100.0, 0.0002, due + 8 * 3600 * SEC),
        depth(T0 + 500 * MS, BID, 90.0, 2.0),
        tail(),
    ]
    result = L2BacktestEngine(
        Strategy(),
        L2Feed.from_rows(IID, rows),
        instrument=instrument(),
        starting_position=(D(10), D(100)),
    ).run()
    (payment,) = result.portfolio.funding
    assert payment.ts_ns == due
    assert payment.amount == D("-10") * D("100.0") * D("0.0001")


def test_a_funding_settlement_never_sends_the_clock_back() -> None:
    due = T0 + 5 * MS
    rows = [
        *snapshot(T0),
        (T0 + MS, T0 + MS, FUNDING, 0, 100.0, 0.0001, due),
        depth(T0 + 500 * MS, BID, 90.0, 2.0),
        tail(),
    ]
    engine = L2BacktestEngine(
        Strategy(),
        L2Feed.from_rows(IID, rows),
        instrument=instrument(),
        starting_position=(D(10), D(100)),
    )
    seen: list[int] = []
    advance = engine.venue.advance

    def watched(until: int) -> int:
        reason = advance(until)
        seen.append(engine.venue.now_ns)
        return reason

    engine.venue.advance = watched  # type: ignore[method-assign]
    result = engine.run()
    assert seen == sorted(seen)
    assert len(result.portfolio.funding) == 1


@pytest.mark.parametrize("kind", [InstrumentKind.SPOT, InstrumentKind.PERPETUAL])
def test_a_starting_position_is_an_open_trade_not_profit(kind: InstrumentKind) -> None:
    strategy = Script([(T0 + MS, sell("s", 10))])
    result = L2BacktestEngine(
        strategy,
        L2Feed.from_rows(IID, [*snapshot(T0), tail()]),
        instrument=instrument(kind),
        starting_position=(D(10), D("99.95")),
    ).run()
    assert result.portfolio.position(IID).qty == 0
    (closed,) = result.trades
    # sold 5 @ 99.9 and 5 @ 99.8 against a position carried in at 99.95 (the first mid)
    assert (closed.qty, closed.entry_price, closed.exit_price) == (D(10), D("99.95"), D("99.85"))
    assert result.pnl_decomposition()["total_pnl"] == pytest.approx(-1.0)


@pytest.mark.parametrize("model", ["fifo", "power", "log", "pro_rata"])
def test_cancels_never_move_us_past_the_front_of_the_queue(model: str) -> None:
    rows = [
        *snapshot(T0),
        depth(T0 + 5 * MS, BID, 99.9, 6.0),
        depth(T0 + 6 * MS, BID, 99.9, 0.0),
        trade(T0 + 7 * MS, SELLER, 99.9, 0.3),
        tail(),
    ]
    result, s = run(
        rows,
        [(T0 + MS, buy("a", 3, price=D("99.9")))],
        L2VenueConfig(queue_model=model),  # type: ignore[arg-type]
    )
    assert fills_of(s.placed["a"]) == []
    assert result.fills == []
