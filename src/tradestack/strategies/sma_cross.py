"""Simple moving-average crossover."""

from __future__ import annotations

import math
from collections.abc import Mapping

from tradestack.core.events import Bar
from tradestack.core.ids import InstrumentId
from tradestack.core.series import BarSeries
from tradestack.engine.context import StrategyContext
from tradestack.engine.strategy import ParameterError, Strategy
from tradestack.engine.vectorized.signals import sma_cross_weights
from tradestack.engine.weights import SparseWeights
from tradestack.features.indicators import SMA


class _State:
    __slots__ = ("fast", "prev_fast", "prev_slow", "slow")

    def __init__(self, fast: int, slow: int) -> None:
        self.fast = SMA(fast)
        self.slow = SMA(slow)
        self.prev_fast = math.nan
        self.prev_slow = math.nan


class SmaCross(Strategy):
    """Goes long when SMA(fast) crosses above SMA(slow) and short (or flat) when it crosses below.

    A cross needs the previous bar strictly on the other side (like backtesting.py's
    ``crossover``). The position is ``qty`` units when ``qty > 0``, otherwise ``fraction`` of
    equity; with ``allow_short`` false a cross down only exits.
    """

    fast: int = 10
    slow: int = 30
    qty: float = 0.0
    fraction: float = 0.95
    allow_short: bool = True

    def validate(self) -> None:
        if not 1 <= self.fast < self.slow:
            raise ParameterError(
                f"SmaCross needs 1 <= fast < slow, got fast={self.fast} slow={self.slow}"
            )
        if self.qty < 0 or not 0 < self.fraction <= 10:
            raise ParameterError("SmaCross needs qty >= 0 and 0 < fraction <= 10")

    def on_start(self, ctx: StrategyContext) -> None:
        self._state: dict[InstrumentId, _State] = {}

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        state = self._state.get(bar.instrument_id)
        if state is None:
            state = self._state[bar.instrument_id] = _State(self.fast, self.slow)
        fast = state.fast.update(bar.close)
        slow = state.slow.update(bar.close)
        prev_fast, prev_slow = state.prev_fast, state.prev_slow
        state.prev_fast, state.prev_slow = fast, slow
        if prev_fast < prev_slow and fast > slow:
            self._target(ctx, bar.instrument_id, 1)
        elif prev_fast > prev_slow and fast < slow:
            self._target(ctx, bar.instrument_id, -1 if self.allow_short else 0)

    def _target(self, ctx: StrategyContext, instrument: InstrumentId, direction: int) -> None:
        if self.qty > 0:
            ctx.order_target_qty(instrument, direction * self.qty)
        else:
            ctx.order_target_percent(instrument, direction * self.fraction)

    def target_weights(
        self, bars: Mapping[InstrumentId, BarSeries]
    ) -> dict[InstrumentId, SparseWeights] | None:
        """The crossovers of :meth:`on_bar` as target fractions (None with a fixed ``qty``)."""
        if self.qty > 0:
            return None
        down = (-1 if self.allow_short else 0) * self.fraction
        return {
            inst: sma_cross_weights(series.close, self.fast, self.slow, self.fraction, down)
            for inst, series in bars.items()
        }
