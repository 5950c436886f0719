"""The equity curve rebuilt after the loop equals the portfolio valued live at every timestamp."""

from __future__ import annotations

import random
from decimal import Decimal

import numpy as np
import pytest

from tradestack.core import Bar, BarSeries, Instrument, InstrumentId, InstrumentKind
from tradestack.engine import BacktestEngine, Strategy, StrategyContext
from tradestack.execution import BarVenueConfig

SPOT, PERP = InstrumentId("ETH/USD", "x"), InstrumentId("BTC-PERP", "x")
MINUTE = 60_000_000_000


class _RandomTrader(Strategy):
    seed: int = 0

    def on_start(self, ctx: StrategyContext) -> None:
        self.rng = random.Random(self.seed)
        self.live: dict[int, tuple[float, float]] = {}

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if self.rng.random() < 0.2:
            target = self.rng.choice([-3, -1, 0, 1, 2, 4])
            ctx.order_target_qty(bar.instrument_id, target)
        self.live[ctx.now_ns()] = (ctx.portfolio.equity(), ctx.portfolio.gross_exposure())


def _walk(inst: InstrumentId, rng: np.random.Generator, start: int, n: int) -> BarSeries:
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 0.01, n))), 2)
    open_ = np.r_[close[0], close[:-1]]
    ts = (start + np.sort(rng.choice(3 * n, n, replace=False))).astype(np.int64) * MINUTE
    return BarSeries(
        inst,
        ts,
        open_,
        np.maximum(open_, close) + 0.05,
        np.minimum(open_, close) - 0.05,
        close,
        np.ones(n),
    )


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rebuilt_equity_equals_live_valuation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    feeds = [_walk(SPOT, rng, 0, 400), _walk(PERP, rng, 5, 400)]
    instruments = [
        Instrument(SPOT),
        Instrument(PERP, kind=InstrumentKind.PERPETUAL, multiplier=Decimal("0.5")),
    ]
    strategy = _RandomTrader(seed=seed)
    result = BacktestEngine(
        strategy,
        feeds,
        instruments=instruments,
        starting_cash=10_000,
        venue=BarVenueConfig(leverage=Decimal(5)),
    ).run()
    assert len(result.fills) > 50
    assert sorted(strategy.live) == result.ts_ns.tolist()
    live = np.array([strategy.live[t] for t in result.ts_ns.tolist()])
    np.testing.assert_allclose(result.equity, live[:, 0], rtol=1e-12)
    np.testing.assert_allclose(result.gross_exposure, live[:, 1], rtol=1e-12)
