"""Timers, same-timestamp close fills, the clock before the first bar, and fills without a mark."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from tradestack.core import Bar, BarSeries, Fill, InstrumentId
from tradestack.engine import BacktestEngine, Strategy, StrategyContext
from tradestack.engine.backtest import BacktestError
from tradestack.execution import BarVenueConfig

DAY = 86_400_000_000_000
A, B = InstrumentId("A"), InstrumentId("B")


def _series(inst: InstrumentId, closes: list[float], opens: list[float] | None = None) -> BarSeries:
    c = np.array(closes, dtype=float)
    o = np.array(opens if opens is not None else closes, dtype=float)
    ts = np.arange(len(c), dtype=np.int64) * DAY
    return BarSeries(inst, ts, o, np.maximum(o, c) + 1, np.minimum(o, c) - 1, c, np.ones(len(c)))


class _TimerTrader(Strategy):
    def on_start(self, ctx: StrategyContext) -> None:
        self.seen: list[tuple[int, list[float]]] = []
        ctx.set_timer("mid-day", DAY, start_ns=DAY + DAY // 2)

    def on_timer(self, ctx: StrategyContext, name: str, ts_ns: int) -> None:
        self.seen.append((ts_ns, ctx.history(A, "close").tolist()))
        if len(self.seen) == 1:
            ctx.buy(A, 1)


def test_timer_sees_only_bars_before_its_time_and_fills_at_the_next_open() -> None:
    strategy = _TimerTrader()
    result = BacktestEngine(
        strategy, [_series(A, [100, 100, 200, 200], opens=[100, 100, 150, 200])]
    ).run()
    first_time, history = strategy.seen[0]
    assert first_time == DAY + DAY // 2
    assert history == [100.0, 100.0]  # the bar labelled day 2 (close 200) is not delivered yet
    (fill,) = result.fills
    assert (fill.ts_event_ns, fill.price) == (2 * DAY, Decimal(150))


class _BuyOtherAtClose(Strategy):
    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if bar.instrument_id == A and ctx.now_ns() == DAY:
            ctx.buy(B, 10)


def test_close_fill_for_another_instrument_waits_for_its_own_bar() -> None:
    feeds = [_series(A, [100, 150, 150]), _series(B, [100, 150, 150])]
    result = BacktestEngine(_BuyOtherAtClose(), feeds, venue=BarVenueConfig(fill_at="close")).run()
    (fill,) = result.fills
    assert fill.instrument_id == B
    assert (fill.ts_event_ns, fill.price) == (DAY, Decimal(150))  # B's own close at that time
    assert result.equity.tolist() == [100_000.0, 100_000.0, 100_000.0]


class _EarlyOrders(Strategy):
    def on_start(self, ctx: StrategyContext) -> None:
        self.start_time = ctx.now_ns()
        self.equity_on_fill: list[float] = []
        ctx.buy(A, 1)
        ctx.buy(A, 1)

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        self.equity_on_fill.append(ctx.portfolio.equity())


def test_clock_starts_at_the_first_bar_and_fills_before_a_mark_do_not_crash() -> None:
    strategy = _EarlyOrders()
    feed = _series(A, [100, 110, 120])
    feed = BarSeries(
        A, feed.ts_ns + 5 * DAY, feed.open, feed.high, feed.low, feed.close, feed.volume
    )
    result = BacktestEngine(strategy, [feed]).run()
    assert strategy.start_time == 5 * DAY
    assert [f.price for f in result.fills] == [Decimal(110), Decimal(110)]
    assert strategy.equity_on_fill == [100_000.0, 100_000.0]


class _PastTimer(Strategy):
    def on_start(self, ctx: StrategyContext) -> None:
        ctx.set_timer("late", DAY, start_ns=0)


def test_timer_in_the_past_is_refused_with_context() -> None:
    feed = _series(A, [1, 2])
    feed = BarSeries(A, feed.ts_ns + DAY, feed.open, feed.high, feed.low, feed.close, feed.volume)
    with pytest.raises(BacktestError, match=r"in on_start: ValueError: timer 'late': start_ns 0"):
        BacktestEngine(_PastTimer(), [feed]).run()


class _Boom(Strategy):
    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if ctx.now_ns() == 2 * DAY:
            raise ZeroDivisionError("division by zero")


def test_strategy_error_names_time_and_bar_and_engine_runs_once() -> None:
    engine = BacktestEngine(_Boom(), [_series(A, [1, 2, 3, 4])])
    with pytest.raises(
        BacktestError, match=r"1970-01-03T00:00:00\+00:00 while handling the A@sim bar"
    ) as info:
        engine.run()
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    with pytest.raises(RuntimeError, match="runs once"):
        engine.run()


def test_bare_symbol_on_two_venues_is_ambiguous() -> None:
    x1, x2 = InstrumentId("X", "v1"), InstrumentId("X", "v2")

    class _Ambiguous(Strategy):
        def on_start(self, ctx: StrategyContext) -> None:
            with pytest.raises(KeyError, match="several venues"):
                ctx.instrument("X")
            assert ctx.instrument("X@v2").id == x2

    BacktestEngine(_Ambiguous(), [_series(x1, [1, 2]), _series(x2, [1, 2])]).run()


def test_qty_that_rounds_to_zero_is_refused() -> None:
    class _Tiny(Strategy):
        def on_start(self, ctx: StrategyContext) -> None:
            ctx.buy(A, 0.3)

    with pytest.raises(
        BacktestError, match=r"qty 0\.3 is not positive after rounding to lot size 1"
    ):
        BacktestEngine(_Tiny(), [_series(A, [1, 2])]).run()
