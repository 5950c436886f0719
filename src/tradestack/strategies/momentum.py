"""Time-series momentum across one or more instruments."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tradestack.core.events import Bar
from tradestack.core.ids import InstrumentId
from tradestack.core.series import BarSeries, FloatArray
from tradestack.engine.context import StrategyContext
from tradestack.engine.strategy import ParameterError, Strategy


class Momentum(Strategy):
    """Holds an instrument while its ``lookback``-bar return exceeds ``threshold``, else stays flat.

    Capital is split equally: each held instrument targets ``fraction / n_instruments`` of equity.
    Decisions use ``ctx.history`` (closes up to the current bar only).
    """

    lookback: int = 20
    threshold: float = 0.0
    fraction: float = 0.95

    def validate(self) -> None:
        if self.lookback < 1:
            raise ParameterError(f"Momentum.lookback must be >= 1, got {self.lookback}")
        if not 0 < self.fraction <= 1:
            raise ParameterError(f"Momentum.fraction must be in (0, 1], got {self.fraction}")

    def on_start(self, ctx: StrategyContext) -> None:
        self._holding: dict[InstrumentId, bool] = {}
        self._weight = self.fraction / len(ctx.instruments)

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        closes = ctx.history(bar.instrument_id, "close", self.lookback + 1)
        if len(closes) <= self.lookback:
            return
        want = closes[-1] / closes[0] - 1.0 > self.threshold
        if want != self._holding.get(bar.instrument_id, False):
            self._holding[bar.instrument_id] = want
            ctx.order_target_percent(bar.instrument_id, self._weight if want else 0.0)

    def target_weights(
        self, bars: Mapping[InstrumentId, BarSeries]
    ) -> dict[InstrumentId, FloatArray] | None:
        """The holding changes of :meth:`on_bar` as target fractions (``fraction`` split over
        all instruments, 0 to exit)."""
        weight = self.fraction / len(bars)
        out: dict[InstrumentId, FloatArray] = {}
        for inst, series in bars.items():
            closes = np.asarray(series.close, dtype=np.float64)
            want = np.zeros(len(closes), dtype=bool)
            lb = self.lookback
            want[lb:] = closes[lb:] / closes[:-lb] - 1.0 > self.threshold
            before = np.concatenate(([False], want[:-1]))
            w = np.full(len(closes), np.nan)
            changed = want != before
            w[changed] = np.where(want[changed], weight, 0.0)
            out[inst] = w
        return out
