"""Compiled twins of the incremental indicators the example strategies use, for whole arrays.

Each twin does the same floating-point operations in the same order as its incremental class, so
a signal computed here for bar ``i`` equals the value the event-driven strategy sees at bar ``i``
to the last bit (a crossover decided on a 1e-15 difference decides the same way).

Output arrays are allocated by numpy and filled by the compiled loops: numpy asks the kernel for
huge pages on large arrays, so the first touch of a fresh 8 MB array costs a few milliseconds
less than one allocated inside numba, and its fill writes past the caches where a loop's stores
would first read each line (the crossover writes only its crosses). The loops count down to
the next exact rebuild instead of taking a modulo, which is an integer division per value.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tradestack.core.series import FloatArray
from tradestack.features.indicators import sma_rebuild_every
from tradestack.features.kernels import PARTIALS, fsum


@njit(cache=True)
def _sma_stream(x: np.ndarray, period: int, every: int, out: np.ndarray) -> None:
    p = np.empty(PARTIALS)
    start = -1  # index of the first value that entered the ring (leading NaNs are skipped)
    total = 0.0
    value = np.nan
    left = every
    for t in range(x.shape[0]):
        v = x[t]
        if start < 0:
            if v != v:
                out[t] = value
                continue
            start = t
        if t - start >= period:
            total += v - x[t - period]
            left -= 1
            if left == 0:
                total = fsum(x, t + 1 - period, t + 1, p)
                left = every
            value = total / period
        else:
            total += v
            if t - start + 1 == period:
                total = fsum(x, start, t + 1, p)
                value = total / period
        out[t] = value


@njit(cache=True)
def _sma_cross(
    x: np.ndarray,
    fast: int,
    slow: int,
    every_fast: int,
    every_slow: int,
    up: float,
    down: float,
    out: np.ndarray,
) -> None:
    # the two averages are _sma_stream's loop body twice, kept inline: a helper returning the
    # state as a tuple was several times slower
    p = np.empty(PARTIALS)
    start = -1
    f_total = s_total = 0.0
    f = s = np.nan
    f_left, s_left = every_fast, every_slow
    for t in range(x.shape[0]):
        v = x[t]
        if start < 0:
            if v != v:
                continue
            start = t
        prev_f, prev_s = f, s
        if t - start >= fast:
            f_total += v - x[t - fast]
            f_left -= 1
            if f_left == 0:
                f_total = fsum(x, t + 1 - fast, t + 1, p)
                f_left = every_fast
            f = f_total / fast
        else:
            f_total += v
            if t - start + 1 == fast:
                f_total = fsum(x, start, t + 1, p)
                f = f_total / fast
        if t - start >= slow:
            s_total += v - x[t - slow]
            s_left -= 1
            if s_left == 0:
                s_total = fsum(x, t + 1 - slow, t + 1, p)
                s_left = every_slow
            s = s_total / slow
        else:
            s_total += v
            if t - start + 1 == slow:
                s_total = fsum(x, start, t + 1, p)
                s = s_total / slow
        if prev_f < prev_s and f > s:
            out[t] = up
        elif prev_f > prev_s and f < s:
            out[t] = down


def _values(values: FloatArray, *periods: int) -> FloatArray:
    for period in periods:
        if period < 1:
            raise ValueError(f"period must be >= 1, got {period}")
    x: FloatArray = np.ascontiguousarray(values, dtype=np.float64)
    return x


def sma_stream(values: FloatArray, period: int) -> FloatArray:
    """What :class:`tradestack.features.indicators.SMA` returns after each ``update``, bit for
    bit: a running sum rebuilt exactly (``math.fsum``) when the window fills and every
    :func:`~tradestack.features.indicators.sma_rebuild_every` values after it."""
    x = _values(values, period)
    out: FloatArray = np.empty(len(x))
    _sma_stream(x, period, sma_rebuild_every(period), out)
    return out


def sma_cross_weights(
    values: FloatArray, fast: int, slow: int, up: float, down: float
) -> FloatArray:
    """Target weights of an SMA(fast)/SMA(slow) crossover in one pass: ``up`` where the fast
    average crosses strictly above the slow one (the previous bar strictly below), ``down``
    where it crosses strictly below, NaN (no decision) elsewhere. The averages are
    :func:`sma_stream`'s, bit for bit."""
    x = _values(values, fast, slow)
    if math.isnan(up) or math.isnan(down):
        raise ValueError("the crossover weights must not be NaN")
    out: FloatArray = np.full(len(x), np.nan)  # the loop writes the crosses only
    _sma_cross(x, fast, slow, sma_rebuild_every(fast), sma_rebuild_every(slow), up, down, out)
    return out
