"""Compiled twins of the incremental indicators the example strategies use, for whole arrays.

Each twin does the same floating-point operations in the same order as its incremental class, so
a signal computed here for bar ``i`` equals the value the event-driven strategy sees at bar ``i``
to the last bit (a crossover decided on a 1e-15 difference decides the same way).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tradestack.core.series import FloatArray
from tradestack.features.kernels import PARTIALS, fsum


@njit(cache=True)
def _sma_stream(x: np.ndarray, period: int) -> np.ndarray:
    n = x.shape[0]
    out = np.full(n, np.nan)
    p = np.empty(PARTIALS)
    start = -1  # index of the first value that entered the ring (leading NaNs are skipped)
    total = 0.0
    value = np.nan
    for t in range(n):
        v = x[t]
        if start < 0:
            if v != v:
                continue
            start = t
        filled = t - start + 1
        if filled > period:
            total += v - x[t - period]
            if (filled - period) % period == 0:
                total = fsum(x, t + 1 - period, t + 1, p)
            value = total / period
        else:
            total += v
            if filled == period:
                total = fsum(x, start, t + 1, p)
                value = total / period
        out[t] = value
    return out


def sma_stream(values: FloatArray, period: int) -> FloatArray:
    """What :class:`tradestack.features.indicators.SMA` returns after each ``update``, bit for
    bit: a running sum rebuilt exactly (``math.fsum``) whenever its ring wraps."""
    if period < 1:
        raise ValueError(f"period must be >= 1, got {period}")
    out: FloatArray = _sma_stream(np.ascontiguousarray(values, dtype=np.float64), period)
    return out
