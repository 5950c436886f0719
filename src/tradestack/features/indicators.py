"""Moving-average indicators in two forms that give the same numbers: batch (whole arrays, TA-Lib)
and incremental (one value at a time, for event-driven strategies). Leading NaN inputs are
skipped in both forms, as TA-Lib does."""

from __future__ import annotations

import math

import numpy as np

from tradestack.core.series import FloatArray


def sma(values: FloatArray, period: int) -> FloatArray:
    """Simple moving average (TA-Lib ``SMA``); the first ``period - 1`` outputs are NaN."""
    _check_period(period)
    import talib  # imported on use: it pulls in pandas (~0.5 s)

    return talib.SMA(np.ascontiguousarray(values, dtype=np.float64), timeperiod=period)


def ema(values: FloatArray, period: int) -> FloatArray:
    """Exponential moving average with alpha = 2 / (period + 1), seeded by the first SMA
    (TA-Lib ``EMA``)."""
    _check_period(period)
    import talib  # imported on use: it pulls in pandas (~0.5 s)

    return talib.EMA(np.ascontiguousarray(values, dtype=np.float64), timeperiod=period)


SMA_REBUILD_SPAN = 1024
"""An :class:`SMA`'s running sum is rebuilt exactly at the first ring wrap after this many
values (and every as many values after it): often enough that the running sum's error stays
near one rounding, rarely enough that the rebuild costs nothing per value."""


def sma_rebuild_every(period: int) -> int:
    """How many updates (a whole number of ring wraps) pass between exact rebuilds of an
    :class:`SMA`'s running sum."""
    return period * -(-SMA_REBUILD_SPAN // period)


class SMA:
    """Incremental simple moving average; ``update`` returns NaN until ``period`` values arrived.

    A ring buffer with a running sum; the sum is rebuilt exactly (``math.fsum``) when the window
    fills and then every :func:`sma_rebuild_every` updates (at a ring wrap), so rounding error
    never accumulates over millions of bars.
    """

    __slots__ = ("_full", "_i", "_left", "_ring", "_sum", "_wraps", "period", "value")

    def __init__(self, period: int) -> None:
        _check_period(period)
        self.period = period
        self._ring: list[float] = []
        self._full = False
        self._i = 0
        self._sum = 0.0
        self._wraps = self._left = sma_rebuild_every(period) // period
        self.value = math.nan

    def update(self, x: float) -> float:
        ring = self._ring
        if x != x and not ring:  # leading NaNs are skipped, as TA-Lib does
            return self.value
        i = self._i
        if self._full:
            self._sum += x - ring[i]
            ring[i] = x
            i += 1
            if i == self.period:
                i = 0
                self._left -= 1
                if self._left == 0:
                    self._left = self._wraps
                    self._sum = math.fsum(ring)
            self._i = i
            self.value = value = self._sum / self.period
            return value
        ring.append(x)
        self._sum += x
        if len(ring) == self.period:
            self._full = True
            self._sum = math.fsum(ring)
            self.value = self._sum / self.period
        return self.value


class EMA:
    """Incremental exponential moving average matching :func:`ema`."""

    __slots__ = ("_alpha", "_seed", "period", "value")

    def __init__(self, period: int) -> None:
        _check_period(period)
        self.period = period
        self._alpha = 2.0 / (period + 1)
        self._seed: list[float] = []
        self.value = math.nan

    def update(self, x: float) -> float:
        if len(self._seed) < self.period:
            if x != x and not self._seed:  # leading NaNs are skipped, as TA-Lib does
                return self.value
            self._seed.append(x)
            if len(self._seed) == self.period:
                self.value = float(np.mean(self._seed))
            return self.value
        self.value += self._alpha * (x - self.value)
        return self.value


def _check_period(period: int) -> None:
    if not isinstance(period, int) or isinstance(period, bool) or period < 1:
        raise ValueError(f"period must be a positive int, got {period!r}")
