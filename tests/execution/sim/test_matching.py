"""Matching rules of the L2 simulated venue, checked against hand-computed expectations.

Every case replays a tiny synthetic feed through :class:`L2BacktestEngine` with a scripted
strategy that acts on timers. Unless a case says otherwise the book at ``T0`` is

    asks  110.0 x 1 | 100.2 x 4 | 100.1 x 3 | 100.0 x 2
    bids   99.9 x 5 |  99.8 x 5 |  90.0 x 1

on instrument TEST@sim (perpetual, tick 0.1, lot 1), zero latencies, FIFO queue, no fees,
100 000 USD cash. The far levels (90 / 110) only widen the simulated price grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Literal

import pytest

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.orders import (
    Fill,
    Liquidity,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderSubmitted,
    TimeInForce,
)
from tradestack.engine.context import StrategyContext
from tradestack.engine.l2 import L2BacktestEngine, L2BacktestResult
from tradestack.engine.strategy import Strategy
from tradestack.execution.sim.config import L2VenueConfig, LatencyModel
from tradestack.execution.sim.feed import CLEAR, DEPTH, SNAPSHOT, TRADE, L2Feed

D = Decimal
Row = tuple[int, int, int, int, float, float, int]  # (exch, local, kind, side, px, qty, ival)
QueueModel = Literal["fifo", "pro_rata", "power", "log"]
IID = InstrumentId("TEST", "sim")
MS = 1_000_000
SEC = 1_000_000_000
T0 = 1_000 * SEC
END = T0 + 10 * SEC
BID, ASK = 1, -1
BUYER, SELLER = 1, -1
MAKER, TAKER = Liquidity.MAKER, Liquidity.TAKER

BIDS = [(99.9, 5.0), (99.8, 5.0), (90.0, 1.0)]
ASKS = [(100.0, 2.0), (100.1, 3.0), (100.2, 4.0), (110.0, 1.0)]


def instrument(kind: InstrumentKind = InstrumentKind.PERPETUAL) -> Instrument:
    return Instrument(IID, kind=kind, tick_size=D("0.1"), lot_size=D("1"))


# -- feed rows ------------------------------------------------------------------------------------
Levels = list[tuple[float, float]]


def snapshot(ts: int, bids: Levels = BIDS, asks: Levels = ASKS, lag: int = 0) -> list[Row]:
    rows = [(ts, ts + lag, CLEAR, 0, 0.0, 0.0, 0)]
    rows += [(ts, ts + lag, SNAPSHOT, BID, px, qty, 0) for px, qty in bids]
    rows += [(ts, ts + lag, SNAPSHOT, ASK, px, qty, 0) for px, qty in asks]
    return rows


def depth(ts: int, side: int, px: float, qty: float, lag: int = 0) -> Row:
    return (ts, ts + lag, DEPTH, side, px, qty, 0)


def trade(ts: int, aggressor: int, px: float, qty: float, lag: int = 0) -> Row:
    return (ts, ts + lag, TRADE, aggressor, px, qty, 0)


def tail(lag: int = 0) -> Row:
    """A no-op level update late in the feed, so every timer before it fires."""
    return depth(END, BID, 90.0, 1.0, lag)


# -- a strategy driven by a script of (time, action) steps ----------------------------------------
Action = Callable[[StrategyContext, "Script"], None]


class Script(Strategy):
    """Runs each action at its time (one-shot timers) and records what it is told."""

    def __init__(self, steps: list[tuple[int, Action]]) -> None:
        super().__init__()
        self.steps = steps
        self.placed: dict[str, Order] = {}
        self.fills: list[tuple[int, Fill]] = []
        self.seen: list[tuple[int, str, Any]] = []

    def on_start(self, ctx: StrategyContext) -> None:
        for i, (ts, _) in enumerate(self.steps):
            ctx.set_timer(f"step{i}", 10**15, start_ns=ts)

    def on_timer(self, ctx: StrategyContext, name: str, ts_ns: int) -> None:
        self.steps[int(name.removeprefix("step"))][1](ctx, self)

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        self.fills.append((ctx.now_ns(), fill))


def buy(name: str, qty: int | str, **kwargs: object) -> Action:
    def act(ctx: StrategyContext, s: Script) -> None:
        s.placed[name] = ctx.buy(IID, D(qty), **kwargs)

    return act


def sell(name: str, qty: int | str, **kwargs: object) -> Action:
    def act(ctx: StrategyContext, s: Script) -> None:
        s.placed[name] = ctx.sell(IID, D(qty), **kwargs)

    return act


def cancel(name: str) -> Action:
    def act(ctx: StrategyContext, s: Script) -> None:
        s.seen.append((ctx.now_ns(), f"cancel {name}", ctx.cancel(s.placed[name])))

    return act


def look(label: str) -> Action:
    """Record the strategy's view of the best ask and the status of every placed order."""

    def act(ctx: StrategyContext, s: Script) -> None:
        statuses = {k: o.status for k, o in s.placed.items()}
        s.seen.append((ctx.now_ns(), label, (ctx.book(IID).best_ask, statuses)))

    return act


def run(
    rows: list[Row],
    steps: list[tuple[int, Action]],
    config: L2VenueConfig | None = None,
    inst: Instrument | None = None,
) -> tuple[L2BacktestResult, Script]:
    strategy = Script(steps)
    feed = L2Feed.from_rows(IID, rows)
    engine = L2BacktestEngine(strategy, feed, instrument=inst or instrument(), venue=config)
    return engine.run(), strategy


def fills_of(order: Order) -> list[tuple[Decimal, Decimal, Liquidity]]:
    return [(e.price, e.qty, e.liquidity) for e in order.events if isinstance(e, Fill)]


def last_reason(order: Order) -> str:
    event = order.events[-1]
    assert isinstance(event, OrderCanceled | OrderRejected), event
    return event.reason


BOOK = [*snapshot(T0), tail()]


# -- taking liquidity ------------------------------------------------------------------------------
def test_market_buy_walks_three_levels_at_each_level_price() -> None:
    result, s = run(BOOK, [(T0 + MS, buy("a", 8))])
    a = s.placed["a"]
    assert fills_of(a) == [
        (D("100.0"), D(2), TAKER),
        (D("100.1"), D(3), TAKER),
        (D("100.2"), D(3), TAKER),
    ]
    assert a.status is OrderStatus.FILLED
    # VWAP = (2 x 100.0 + 3 x 100.1 + 3 x 100.2) / 8 = 800.9 / 8
    assert a.avg_fill_price == D("100.1125")
    assert all(f.ts_event_ns == T0 + MS for f in result.fills)
    assert result.portfolio.position(IID).qty == D(8)
    # takers have no queue position; the mid is the one the order arrived to
    assert all(math.isnan(e.queue_ahead) for e in result.executions)
    assert [e.mid_at_fill for e in result.executions] == pytest.approx([99.95] * 3)


def test_market_order_beyond_visible_depth_fills_what_is_there_then_cancels() -> None:
    _, s = run(BOOK, [(T0 + MS, buy("a", 12))])
    a = s.placed["a"]
    assert fills_of(a) == [
        (D("100.0"), D(2), TAKER),
        (D("100.1"), D(3), TAKER),
        (D("100.2"), D(4), TAKER),
        (D("110.0"), D(1), TAKER),
    ]
    assert a.status is OrderStatus.CANCELED
    assert a.filled_qty == D(10)
    assert isinstance(a.events[-1], OrderCanceled)


def test_market_order_remainder_reason_names_liquidity_when_depth_runs_out() -> None:
    _, s = run(BOOK, [(T0 + MS, buy("a", 12))])
    assert "liquidity" in last_reason(s.placed["a"])


def test_market_order_on_an_empty_side_is_canceled_for_no_liquidity() -> None:
    rows = [*snapshot(T0, asks=[]), tail()]
    result, s = run(rows, [(T0 + MS, buy("a", 1))])
    assert result.fills == []
    assert s.placed["a"].status is OrderStatus.CANCELED
    assert last_reason(s.placed["a"]) == "no liquidity left on the other side of the book"


def test_max_walk_levels_stops_a_market_order() -> None:
    _, s = run(BOOK, [(T0 + MS, buy("a", 8))], L2VenueConfig(max_walk_levels=2))
    a = s.placed["a"]
    assert fills_of(a) == [(D("100.0"), D(2), TAKER), (D("100.1"), D(3), TAKER)]
    assert a.status is OrderStatus.CANCELED
    assert "max_walk_levels" in last_reason(a)


def test_ioc_limit_walks_only_up_to_its_price_and_cancels_the_rest() -> None:
    _, s = run(
        BOOK,
        [
            (T0 + MS, buy("a", 8, price=D("100.1"), time_in_force=TimeInForce.IOC)),
            (T0 + 2 * MS, sell("b", 1, price=D("100.0"), time_in_force=TimeInForce.IOC)),
        ],
    )
    a, b = s.placed["a"], s.placed["b"]
    assert fills_of(a) == [(D("100.0"), D(2), TAKER), (D("100.1"), D(3), TAKER)]
    assert a.status is OrderStatus.CANCELED
    assert last_reason(a) == "IOC remainder canceled"
    # a sell IOC above the best bid (99.9) takes nothing
    assert fills_of(b) == []
    assert b.status is OrderStatus.CANCELED
    assert "IOC" in last_reason(b)


def test_fok_fills_completely_or_not_at_all() -> None:
    result, s = run(
        BOOK,
        [
            (T0 + MS, buy("too_big", 8, price=D("100.1"), time_in_force=TimeInForce.FOK)),
            (T0 + 2 * MS, buy("fits", 5, price=D("100.1"), time_in_force=TimeInForce.FOK)),
        ],
    )
    big, fits = s.placed["too_big"], s.placed["fits"]
    # only 2 + 3 = 5 lots are offered at or below 100.1
    assert fills_of(big) == []
    assert big.status is OrderStatus.CANCELED
    assert last_reason(big) == "FOK order could not fill completely"
    # the FOK check took nothing: the next FOK still finds 100.0 x 2 and 100.1 x 3
    assert fills_of(fits) == [(D("100.0"), D(2), TAKER), (D("100.1"), D(3), TAKER)]
    assert fits.status is OrderStatus.FILLED
    assert len(result.fills) == 2


def test_post_only_that_would_cross_is_canceled_and_one_that_does_not_rests() -> None:
    _, s = run(
        BOOK,
        [
            (T0 + MS, buy("cross", 1, price=D("100.0"), post_only=True)),
            (T0 + MS, buy("rest", 1, price=D("99.9"), post_only=True)),
        ],
    )
    cross, rest = s.placed["cross"], s.placed["rest"]
    assert fills_of(cross) == []
    assert cross.status is OrderStatus.CANCELED
    assert last_reason(cross) == "post-only limit would take liquidity"
    assert rest.status is OrderStatus.ACCEPTED


def test_marketable_gtc_limit_takes_up_to_its_price_then_rests_the_remainder() -> None:
    rows = [*snapshot(T0), trade(T0 + 2 * MS, SELLER, 100.1, 2.0), tail()]
    result, s = run(rows, [(T0 + MS, buy("a", 8, price=D("100.1")))])
    a = s.placed["a"]
    # takes 100.0 x 2 and 100.1 x 3, rests 3 at 100.1 with nobody ahead (no bids at 100.1);
    # a sell trade of 2 at 100.1 then fills 2 of them as maker
    assert fills_of(a) == [
        (D("100.0"), D(2), TAKER),
        (D("100.1"), D(3), TAKER),
        (D("100.1"), D(2), MAKER),
    ]
    assert a.status is OrderStatus.PARTIALLY_FILLED
    assert a.leaves_qty == D(1)
    assert result.executions[-1].queue_ahead == 0.0


# -- resting orders and the queue -----------------------------------------------------------------
@pytest.mark.parametrize("model", ["fifo", "pro_rata", "power", "log"])
def test_trades_at_our_price_consume_the_queue_ahead_before_filling_us(model: QueueModel) -> None:
    rows = [
        *snapshot(T0),
        trade(T0 + 2 * MS, SELLER, 99.9, 3.0),  # 5 ahead -> 2 ahead
        trade(T0 + 2 * MS + 500_000, BUYER, 99.9, 10.0),  # buyers never fill a bid
        depth(T0 + 3 * MS, BID, 99.9, 2.0),  # the venue reports the traded level: still 2
        trade(T0 + 4 * MS, SELLER, 99.9, 3.0),  # 2 ahead, then 1 lot for us
        trade(T0 + 5 * MS, SELLER, 99.9, 1.0),  # the last lot
        tail(),
    ]
    result, s = run(
        rows, [(T0 + MS, buy("a", 2, price=D("99.9")))], L2VenueConfig(queue_model=model)
    )
    a = s.placed["a"]
    assert [(f.ts_event_ns, f.qty, f.price, f.liquidity) for f in result.fills] == [
        (T0 + 4 * MS, D(1), D("99.9"), MAKER),
        (T0 + 5 * MS, D(1), D("99.9"), MAKER),
    ]
    assert a.status is OrderStatus.FILLED
    # queue ahead at each fill, before the trade that filled it
    assert [e.queue_ahead for e in result.executions] == [2.0, -1.0]


def test_queue_ahead_is_the_visible_size_when_the_order_arrives_not_when_sent() -> None:
    rows = [
        *snapshot(T0),
        depth(T0 + 1 * MS + 500_000, BID, 99.9, 8.0),  # the level grows while the order flies
        trade(T0 + 3 * MS, SELLER, 99.9, 8.0),  # exactly the 8 ahead: no fill yet
        trade(T0 + 4 * MS, SELLER, 99.9, 5.0),
        tail(),
    ]
    config = L2VenueConfig(entry_latency=LatencyModel(ns=MS))
    result, _ = run(rows, [(T0 + MS, buy("a", 2, price=D("99.9")))], config)
    assert [(f.ts_event_ns, f.qty) for f in result.fills] == [(T0 + 4 * MS, D(2))]
    assert result.executions[0].queue_ahead == 0.0


def test_a_trade_through_our_price_fills_the_whole_order() -> None:
    rows = [*snapshot(T0), trade(T0 + 2 * MS, SELLER, 99.8, 1.0), tail()]
    result, s = run(rows, [(T0 + MS, buy("a", 2, price=D("99.9")))])
    # 5 lots were ahead and the trade was 1 lot, but it printed below our bid
    assert fills_of(s.placed["a"]) == [(D("99.9"), D(2), MAKER)]
    assert result.fills[0].ts_event_ns == T0 + 2 * MS
    assert result.executions[0].queue_ahead == 5.0


def test_the_opposite_best_price_moving_through_a_resting_order_fills_it() -> None:
    rows = [
        *snapshot(T0),
        depth(T0 + 2 * MS, ASK, 99.9, 1.0),  # an ask at our bid: we would have been hit
        depth(T0 + 3 * MS, BID, 100.1, 1.0),  # a bid at our ask
        tail(),
    ]
    result, s = run(
        rows,
        [(T0 + MS, buy("bid", 2, price=D("99.9"))), (T0 + MS, sell("ask", 1, price=D("100.1")))],
    )
    assert fills_of(s.placed["bid"]) == [(D("99.9"), D(2), MAKER)]
    assert fills_of(s.placed["ask"]) == [(D("100.1"), D(1), MAKER)]
    assert [f.ts_event_ns for f in result.fills] == [T0 + 2 * MS, T0 + 3 * MS]


def test_canceled_order_is_never_filled_afterwards() -> None:
    rows = [*snapshot(T0), trade(T0 + 3 * MS, SELLER, 99.0, 100.0), tail()]
    result, s = run(rows, [(T0 + MS, buy("a", 2, price=D("99.9"))), (T0 + 2 * MS, cancel("a"))])
    a = s.placed["a"]
    assert s.seen == [(T0 + 2 * MS, "cancel a", True)]
    assert result.fills == []
    assert a.status is OrderStatus.CANCELED
    assert last_reason(a) == "canceled by strategy"
    assert a.events[-1].ts_event_ns == T0 + 2 * MS


def test_a_cancel_still_in_flight_loses_the_race_to_a_fill() -> None:
    rows = [*snapshot(T0), trade(T0 + 2 * MS + 500_000, SELLER, 99.8, 1.0), tail()]
    config = L2VenueConfig(entry_latency=LatencyModel(ns=MS))
    result, s = run(rows, [(T0, buy("a", 2, price=D("99.9"))), (T0 + 2 * MS, cancel("a"))], config)
    a = s.placed["a"]
    # the cancel left at T0 + 2 ms but lands at T0 + 3 ms, after the trade-through
    assert s.seen == [(T0 + 2 * MS, "cancel a", True)]
    assert fills_of(a) == [(D("99.9"), D(2), MAKER)]
    assert a.status is OrderStatus.FILLED
    assert result.venue_stats["cancel_rejects"] == 1


@pytest.mark.parametrize(
    ("consume", "prices"),
    [(True, [D("100.0"), D("100.1"), D("100.0")]), (False, [D("100.0")] * 3)],
)
def test_consume_liquidity_on_back_to_back_market_orders(
    consume: bool, prices: list[Decimal]
) -> None:
    rows = [*snapshot(T0), depth(T0 + 2 * MS, ASK, 100.0, 2.0), tail()]
    result, _ = run(
        rows,
        [
            (T0 + MS, buy("a", 2)),
            (T0 + MS, buy("b", 2)),
            # the venue re-reports 100.0 x 2: the depth taken is back
            (T0 + 3 * MS, buy("c", 2)),
        ],
        L2VenueConfig(consume_liquidity=consume),
    )
    assert [f.price for f in result.fills] == prices
    assert [f.qty for f in result.fills] == [D(2)] * 3


# -- costs and impact ----------------------------------------------------------------------------
def test_negative_maker_fee_is_a_rebate_and_taker_fee_is_charged() -> None:
    rows = [*snapshot(T0), trade(T0 + 2 * MS, SELLER, 99.8, 1.0), tail()]
    config = L2VenueConfig(maker_fee_bps=D(-1), taker_fee_bps=D(5))
    cash: list[Decimal] = []

    def note(ctx: StrategyContext, s: Script) -> None:
        cash.append(ctx.portfolio.cash)

    result, _ = run(
        rows,
        [
            (T0 + MS, buy("maker", 2, price=D("99.9"))),
            (T0 + 3 * MS, note),
            (T0 + 4 * MS, sell("taker", 2)),  # hits the 99.9 bid: flat again, no realized PnL
        ],
        config,
    )
    maker, taker = result.fills
    # 2 x 99.9 = 199.8 notional: -1 bps = -0.01998 (paid to us); +5 bps = 0.0999
    assert (maker.liquidity, maker.fee) == (MAKER, D("-0.01998"))
    assert (taker.liquidity, taker.fee) == (TAKER, D("0.0999"))
    assert cash == [D(100_000) + D("0.01998")]
    assert result.portfolio.cash == D(100_000) + D("0.01998") - D("0.0999")
    assert result.portfolio.total_fees == D("0.07992")
    parts = result.pnl_decomposition()
    assert parts["fees"] == pytest.approx(-0.07992)
    assert parts["funding"] == 0.0
    # both fills were at 99.9 against an exchange mid of 99.95 (a trade does not move the book):
    # the maker buy earned 0.05 x 2, the taker sell gave it back
    assert parts["spread_capture"] == pytest.approx(0.05 * 2 - 0.05 * 2)
    assert parts["total_pnl"] == pytest.approx(
        parts["spread_capture"] + parts["inventory_pnl"] + parts["fees"] + parts["funding"]
    )
    assert parts["total_pnl"] == pytest.approx(0.01998 - 0.0999)


def test_square_root_impact_fills_beyond_visible_depth_and_is_off_by_default() -> None:
    rows = [*snapshot(T0, bids=[(99.9, 5.0)], asks=[(100.0, 2.0), (100.1, 3.0)]), tail()]
    steps = [(T0 + MS, buy("a", 10))]
    config = L2VenueConfig(
        impact_coefficient=1.0, impact_daily_volatility=0.05, impact_daily_volume=500.0
    )
    _, s = run(rows, steps, config)
    # 5 lots left after the book: 100.1 x (1 + 1.0 x 0.05 x sqrt(5 / 500)) = 100.6005 -> up
    # to the tick: 100.7
    assert fills_of(s.placed["a"]) == [
        (D("100.0"), D(2), TAKER),
        (D("100.1"), D(3), TAKER),
        (D("100.7"), D(5), TAKER),
    ]
    assert s.placed["a"].status is OrderStatus.FILLED
    _, s = run(rows, steps)
    assert fills_of(s.placed["a"]) == [(D("100.0"), D(2), TAKER), (D("100.1"), D(3), TAKER)]
    assert s.placed["a"].status is OrderStatus.CANCELED


def test_impact_needs_volatility_and_volume() -> None:
    with pytest.raises(ValueError, match="impact_daily_volatility"):
        L2VenueConfig(impact_coefficient=1.0)


# -- queue models ---------------------------------------------------------------------------------
# Our bid of 2 rests at 99.9 behind 5; the level grows to 9 (4 behind us), then 3 are canceled
# (9 -> 6). With front 5, back 4, change 3, the queue ahead becomes
#   fifo:      min(5, 6) = 5                       (cancels come from behind)
#   pro_rata:  5 - 3 x 5/9                          (ahead -= chg x ahead / prev)
#   power n:   5 - 3 x 5^n / (5^n + 4^n)            (P(cancel ahead) = f(front)/(f(front)+f(back)))
#   log:       5 - 3 x ln 6 / (ln 6 + ln 5)         (f(x) = log(1 + x))
# and a 10-lot sell trade at 99.9 then fills us, reporting that queue position.
@pytest.mark.parametrize(
    ("model", "power", "ahead"),
    [
        ("fifo", 2.0, 5.0),
        ("pro_rata", 2.0, 5 - 3 * 5 / 9),
        ("power", 2.0, 5 - 3 * 25 / 41),
        ("power", 3.0, 5 - 3 * 125 / 189),
        ("log", 2.0, 5 - 3 * math.log(6) / (math.log(6) + math.log(5))),
    ],
)
def test_queue_models_on_a_level_that_shrinks_by_cancels(
    model: QueueModel, power: float, ahead: float
) -> None:
    rows = [
        *snapshot(T0),
        depth(T0 + 2 * MS, BID, 99.9, 9.0),
        depth(T0 + 3 * MS, BID, 99.9, 6.0),
        trade(T0 + 4 * MS, SELLER, 99.9, 10.0),
        tail(),
    ]
    config = L2VenueConfig(queue_model=model, queue_power=power)
    result, _ = run(rows, [(T0 + MS, buy("a", 2, price=D("99.9")))], config)
    assert [(f.qty, f.price) for f in result.fills] == [(D(2), D("99.9"))]
    assert result.executions[0].queue_ahead == pytest.approx(ahead, rel=1e-12)


def test_fifo_queue_ahead_is_capped_by_the_new_level_size() -> None:
    rows = [
        *snapshot(T0),
        depth(T0 + 2 * MS, BID, 99.9, 1.0),  # 4 of the 5 ahead canceled
        trade(T0 + 3 * MS, SELLER, 99.9, 2.0),  # 1 ahead, then 1 lot for us
        tail(),
    ]
    result, _ = run(rows, [(T0 + MS, buy("a", 2, price=D("99.9")))])
    assert [(f.qty, f.ts_event_ns) for f in result.fills] == [(D(1), T0 + 3 * MS)]
    assert result.executions[0].queue_ahead == 1.0


@pytest.mark.parametrize(
    "model",
    [
        "fifo",
        *(m for m in ("pro_rata", "power", "log")),
    ],
)
def test_one_trade_never_fills_more_of_our_orders_than_it_printed(model: QueueModel) -> None:
    rows = [
        *snapshot(T0),
        depth(T0 + 2 * MS, BID, 99.9, 0.0),  # everybody else at 99.9 cancels
        trade(T0 + 3 * MS, SELLER, 99.9, 1.0),
        tail(),
    ]
    steps = [
        (T0 + MS, buy("first", 2, price=D("99.9"))),
        (T0 + MS, buy("second", 3, price=D("99.9"))),
    ]
    result, s = run(rows, steps, L2VenueConfig(queue_model=model))
    # only our two bids are left at 99.9, first ahead of second: the 1-lot print fills 1 of first
    assert [(f.client_order_id, f.qty) for f in result.fills] == [
        (s.placed["first"].client_order_id, D(1))
    ]


def test_prints_smaller_than_a_lot_keep_our_orders_in_fifo_order() -> None:
    rows = [
        *snapshot(T0),
        depth(T0 + 2 * MS, BID, 99.9, 0.0),  # first: 0 ahead; second: first's 2 lots ahead
        *(trade(T0 + k * MS, SELLER, 99.9, 0.5) for k in (3, 4, 5, 6)),
        trade(T0 + 7 * MS, SELLER, 99.9, 1.0),
        tail(),
    ]
    steps = [
        (T0 + MS, buy("first", 2, price=D("99.9"))),
        (T0 + MS, buy("second", 2, price=D("99.9"))),
    ]
    result, s = run(rows, steps)
    first, second = s.placed["first"].client_order_id, s.placed["second"].client_order_id
    at_last_print = [f for f in result.fills if f.ts_event_ns == T0 + 7 * MS]
    assert sum(f.qty for f in at_last_print) <= 1
    filled_first = D(0)
    for fill in result.fills:
        if fill.client_order_id == first:
            filled_first += fill.qty
        else:
            assert fill.client_order_id == second
            assert filled_first == 2, "second filled while first still had leaves"


# -- latency --------------------------------------------------------------------------------------
def test_entry_and_response_latency() -> None:
    rows = [*snapshot(T0), depth(T0 + MS // 2, ASK, 100.0, 0.0), tail()]
    config = L2VenueConfig(
        entry_latency=LatencyModel(ns=MS), response_latency=LatencyModel(ns=2 * MS)
    )
    result, s = run(
        rows,
        [(T0, buy("a", 1)), (T0 + 2 * MS, look("in flight")), (T0 + 4 * MS, look("done"))],
        config,
    )
    a = s.placed["a"]
    # sent at T0 when 100.0 was best; it reached the book at T0 + 1 ms, after 100.0 was pulled
    assert fills_of(a) == [(D("100.1"), D(1), TAKER)]
    submitted, accepted, fill = a.events
    assert isinstance(submitted, OrderSubmitted) and submitted.ts_event_ns == T0
    assert isinstance(accepted, OrderAccepted) and accepted.ts_event_ns == T0 + 3 * MS
    assert isinstance(fill, Fill) and fill.ts_event_ns == T0 + MS
    # the strategy hears about the fill one response latency after the exchange made it
    assert [(ts, f.price) for ts, f in s.fills] == [(T0 + 3 * MS, D("100.1"))]
    (execution,) = result.executions
    assert (execution.exch_ts_ns, execution.local_ts_ns) == (T0 + MS, T0 + 3 * MS)
    seen = {label: statuses["a"] for _, label, (_, statuses) in s.seen}
    assert seen == {"in flight": OrderStatus.SUBMITTED, "done": OrderStatus.FILLED}


@pytest.mark.parametrize("recorded", [True, False])
def test_feed_latency_delays_the_strategys_view_of_the_book(recorded: bool) -> None:
    lag = 5 * MS
    rows = [*snapshot(T0, lag=lag if recorded else 0)]
    rows += [depth(T0 + MS, ASK, 100.0, 0.0, lag if recorded else 0), tail(lag if recorded else 0)]
    config = L2VenueConfig(feed_latency_ns=None if recorded else lag)
    result, s = run(
        rows,
        [
            (T0 + 5 * MS, look("first")),
            (T0 + 5 * MS + 500_000, look("exchange moved")),
            (T0 + 5 * MS + 500_000, buy("a", 1)),
            (T0 + 6 * MS, look("seen")),
        ],
        config,
    )
    asks = [(ts, label, round(best_ask, 6)) for ts, label, (best_ask, _) in s.seen]
    assert asks == [
        (T0 + 5 * MS, "first", 100.0),
        (T0 + 5 * MS + 500_000, "exchange moved", 100.0),
        (T0 + 6 * MS, "seen", 100.1),
    ]
    # the strategy still saw 100.0, but the exchange had already pulled it
    assert [f.price for f in result.fills] == [D("100.1")]


# -- rejections -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("action", "reason"),
    [
        (buy("x", 1, price=D("100.05")), "price 100.05 is not a multiple of tick size 0.1"),
        (buy("x", "1.5"), "qty 1.5 is not a multiple of lot size 1"),
        (buy("x", 1, trigger_price=D("100.5")), "stop orders are not supported"),
        (
            buy("x", 1, price=D("100.6"), trigger_price=D("100.5")),
            "stop orders are not supported",
        ),
        (
            buy("x", 1, price=D("99.0"), time_in_force=TimeInForce.DAY),
            "DAY orders are not supported",
        ),
        (buy("x", 1, price=D("150.0")), "price 150.0 is outside the simulated band [72.0, 132.0]"),
        (sell("x", 1, price=D("50.0")), "outside the simulated band"),
        (buy("x", 2000), "insufficient buying power"),
        (buy("x", 1002, price=D("99.9")), "insufficient buying power"),
    ],
)
def test_rejections_carry_a_clear_reason(action: Action, reason: str) -> None:
    result, s = run(BOOK, [(T0 + MS, action)])
    x = s.placed["x"]
    assert x.status is OrderStatus.REJECTED
    assert reason in last_reason(x)
    assert x.events[-1].ts_event_ns == T0 + MS
    assert result.fills == []


def test_short_sale_rejected_when_shorting_is_off() -> None:
    _, s = run(BOOK, [(T0 + MS, sell("x", 1))], L2VenueConfig(allow_short=False))
    assert s.placed["x"].status is OrderStatus.REJECTED
    assert "insufficient position" in last_reason(s.placed["x"])


def test_toxic_flags_a_fill_the_mid_then_moved_against() -> None:
    rows = [
        *snapshot(T0),
        trade(T0 + 2 * MS, SELLER, 99.8, 1.0),  # fills our 99.9 bid
        depth(T0 + 3 * MS, BID, 99.9, 0.0),
        depth(T0 + 3 * MS, BID, 99.8, 0.0),
        depth(T0 + 3 * MS, ASK, 100.0, 0.0),
        depth(T0 + 3 * MS, ASK, 100.1, 0.0),  # mid (90.0 + 100.2) / 2 = 95.1
        depth(T0 + 3 * SEC, BID, 99.0, 1.0),  # first exchange event after the 1 s horizon
        tail(),
    ]
    result, _ = run(rows, [(T0 + MS, buy("a", 1, price=D("99.9")))])
    (e,) = result.executions
    assert e.mid_at_fill == pytest.approx(99.95)
    assert e.mid_after == pytest.approx(95.1)
    assert e.adverse_bps() == pytest.approx((99.9 - 95.1) / 99.9 * 1e4)
    assert result.toxic() == [True]


def test_order_side_is_kept_on_fills() -> None:
    result, _ = run(BOOK, [(T0 + MS, sell("a", 6))])
    assert [(f.side, f.price, f.qty) for f in result.fills] == [
        (OrderSide.SELL, D("99.9"), D(5)),
        (OrderSide.SELL, D("99.8"), D(1)),
    ]
    assert result.portfolio.position(IID).qty == D(-6)
