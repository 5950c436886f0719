"""A strategy cannot see data after the current event.

Two proofs: (1) everything ``ctx.history`` returns at bar t equals the input cut at t, and the
views cannot be written to; (2) running on data cut at t gives exactly the same orders up to t
as running on the full data.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from tradestack.core import Bar, BarSeries, InstrumentId
from tradestack.data import load_bars
from tradestack.engine import BacktestEngine, Strategy, StrategyContext
from tradestack.strategies.momentum import Momentum
from tradestack.strategies.sma_cross import SmaCross

AAPL = InstrumentId("AAPL")
MSFT = InstrumentId("MSFT")


class _Recorder(Strategy):
    def on_start(self, ctx: StrategyContext) -> None:
        self.seen: list[tuple[int, str, str, np.ndarray]] = []

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        for inst in (AAPL, MSFT):
            closes = ctx.history(inst, "close").copy()
            self.seen.append((ctx.now_ns(), str(bar.instrument_id), str(inst), closes))
        assert ctx.history(bar.instrument_id, "close")[-1] == bar.close
        with pytest.raises(ValueError, match="read-only"):
            ctx.history(bar.instrument_id, "close")[0] = 0.0


def _feeds(examples: Path) -> list[BarSeries]:
    return [
        load_bars(examples / "data" / "AAPL_2012-2014_daily.csv", AAPL),
        load_bars(examples / "data" / "MSFT_2012-2014_daily.csv", MSFT),
    ]


def test_history_is_exactly_the_past(examples_dir: Path) -> None:
    feeds = _feeds(examples_dir)
    strategy = _Recorder()
    BacktestEngine(strategy, feeds).run()
    by_name = {str(f.instrument_id): f for f in feeds}
    assert len(strategy.seen) == 2 * sum(len(f) for f in feeds)
    order = list(by_name)
    for now, current, name, closes in strategy.seen:
        feed = by_name[name]
        # Bars at the same timestamp arrive in feed order: a later feed's bar at `now` is
        # not delivered yet while an earlier feed's bar is handled.
        delivered = order.index(name) <= order.index(current)
        past = feed.ts_ns <= now if delivered else feed.ts_ns < now
        np.testing.assert_array_equal(closes, feed.close[past])


def _cut(series: BarSeries, end_ns: int) -> BarSeries:
    keep = series.ts_ns <= end_ns
    return BarSeries(
        series.instrument_id,
        series.ts_ns[keep],
        series.open[keep],
        series.high[keep],
        series.low[keep],
        series.close[keep],
        series.volume[keep],
    )


def _orders(strategy: Strategy, feeds: list[BarSeries]) -> list[tuple[int, str, str, Decimal]]:
    result = BacktestEngine(strategy, feeds).run()
    return [(o.ts_init_ns, str(o.instrument_id), o.side.value, o.qty) for o in result.orders]


@pytest.mark.parametrize(
    "make", [lambda: SmaCross(fast=5, slow=20, qty=10.0), lambda: Momentum(lookback=15)]
)
@pytest.mark.parametrize("cut_fraction", [0.3, 0.55, 0.8])
def test_truncated_data_gives_the_same_decisions(
    examples_dir: Path, make: object, cut_fraction: float
) -> None:
    feeds = _feeds(examples_dir)
    ts = feeds[0].ts_ns
    cut_ns = int(ts[int(len(ts) * cut_fraction)])
    full = [o for o in _orders(make(), feeds) if o[0] <= cut_ns]  # type: ignore[operator]
    truncated = _orders(make(), [_cut(f, cut_ns) for f in feeds])  # type: ignore[operator]
    assert full == truncated
    assert len(full) > 0
