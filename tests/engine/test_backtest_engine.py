"""The event loop: time-ordered merge of several feeds, timers, callbacks, equity per timestamp."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from tradestack.core import Bar, BarSeries, Fill, Instrument, InstrumentId, Order, OrderStatus
from tradestack.engine import BacktestEngine, Strategy, StrategyContext

DAY = 86_400_000_000_000
A, B = InstrumentId("A"), InstrumentId("B")


def _series(inst: InstrumentId, days: list[int], closes: list[float]) -> BarSeries:
    c = np.array(closes, dtype=float)
    ts = np.array(days, dtype=np.int64) * DAY
    return BarSeries(inst, ts, c.copy(), c + 1, c - 1, c.copy(), np.ones(len(c)))


class _Log(Strategy):
    def on_start(self, ctx: StrategyContext) -> None:
        self.events: list[tuple[str, int, object]] = []
        ctx.set_timer("half-day", DAY // 2, start_ns=DAY // 2)

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        self.events.append(("bar", ctx.now_ns(), bar.instrument_id.symbol))

    def on_timer(self, ctx: StrategyContext, name: str, ts_ns: int) -> None:
        assert ctx.now_ns() == ts_ns
        self.events.append(("timer", ts_ns, name))


def test_feeds_merge_in_time_order_with_ties_in_feed_order_and_timers_between() -> None:
    strategy = _Log()
    result = BacktestEngine(
        strategy, [_series(A, [0, 1, 3], [10, 11, 12]), _series(B, [1, 2, 3], [5, 6, 7])]
    ).run()
    bars = [(t // (DAY // 2), s) for kind, t, s in strategy.events if kind == "bar"]
    assert bars == [(0, "A"), (2, "A"), (2, "B"), (4, "B"), (6, "A"), (6, "B")]
    timers = [t for kind, t, _ in strategy.events if kind == "timer"]
    assert timers == [k * DAY // 2 for k in range(1, 7)]
    times = [t for _, t, _ in strategy.events]
    assert times == sorted(times)
    assert result.ts_ns.tolist() == [0, DAY, 2 * DAY, 3 * DAY]
    assert result.equity.tolist() == [100_000.0] * 4


class _BuyOnce(Strategy):
    qty: float = 10.0

    def on_start(self, ctx: StrategyContext) -> None:
        self.fills: list[Fill] = []
        self.statuses: list[OrderStatus] = []

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if not ctx.orders:
            ctx.buy(bar.instrument_id, self.qty)

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        assert ctx.position(fill.instrument_id).qty == fill.qty
        self.fills.append(fill)

    def on_order(self, ctx: StrategyContext, order: Order) -> None:
        self.statuses.append(order.status)


def test_fill_and_order_callbacks_and_marked_equity() -> None:
    strategy = _BuyOnce()
    result = BacktestEngine(
        strategy, [_series(A, [0, 1, 2], [10, 12, 15])], starting_cash=1000
    ).run()
    assert [f.price for f in strategy.fills] == [Decimal("12")]
    assert strategy.statuses == [OrderStatus.SUBMITTED, OrderStatus.ACCEPTED, OrderStatus.FILLED]
    # bought 10 @ 12 (next open); marked at closes 12 then 15
    assert result.equity.tolist() == [1000.0, 1000.0, 1030.0]
    assert result.portfolio.cash == Decimal(880)
    assert result.gross_exposure.tolist() == [0.0, 120.0, 150.0]


class _Target(Strategy):
    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        ctx.order_target_percent(bar.instrument_id, 0.5)


def test_order_target_percent_sizes_from_equity_and_does_not_pile_up() -> None:
    result = BacktestEngine(
        _Target(), [_series(A, [0, 1, 2, 3], [10, 10, 10, 10])], starting_cash=1000
    ).run()
    assert len(result.orders) == 1
    assert result.portfolio.position(A).qty == Decimal(50)


def test_engine_input_errors() -> None:
    with pytest.raises(ValueError, match="at least one bar series"):
        BacktestEngine(_Log(), [])
    s = _series(A, [0, 1], [1, 2])
    with pytest.raises(ValueError, match="one bar series"):
        BacktestEngine(_Log(), [s, s])
    with pytest.raises(ValueError, match="instrument specs without data: B@sim"):
        BacktestEngine(_Log(), [s], instruments=[Instrument(B)])


def test_same_inputs_give_byte_identical_results() -> None:
    from tradestack.strategies.sma_cross import SmaCross

    rng = np.random.default_rng(3)
    closes = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 600))), 2).tolist()
    feed = _series(A, list(range(600)), closes)
    one = BacktestEngine(SmaCross(fast=5, slow=15), [feed]).run()
    two = BacktestEngine(SmaCross(fast=5, slow=15), [feed]).run()
    assert one.equity.tobytes() == two.equity.tobytes()
    assert one.fills == two.fills
    assert one.metrics() == two.metrics()
