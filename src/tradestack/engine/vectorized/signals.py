"""Compiled twins of the incremental indicators the example strategies use, for whole arrays.

Each twin does the same floating-point operations in the same order as its incremental class, so
a signal computed here for bar ``i`` equals the value the event-driven strategy sees at bar ``i``
to the last bit (a crossover decided on a 1e-15 difference decides the same way). The crossover
divides the running sums only where their cross-multiplied difference cannot tell how the two
averages compare.

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

from tradestack.core.series import FloatArray, IntArray
from tradestack.engine.weights import SparseWeights
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
def _sma_step(
    x: np.ndarray,
    t: int,
    start: int,
    period: int,
    every: int,
    total: float,
    left: int,
    p: np.ndarray,
) -> tuple[float, float, int]:
    """One update of :func:`_sma_stream`'s loop (value ``t``, first value ``start``): the new
    running sum, the average (NaN while the window fills) and the countdown to the rebuild."""
    v = x[t]
    if t - start >= period:
        total += v - x[t - period]
        left -= 1
        if left == 0:
            total = fsum(x, t + 1 - period, t + 1, p)
            left = every
        return total, total / period, left
    total += v
    if t - start + 1 == period:
        total = fsum(x, start, t + 1, p)
        return total, total / period, left
    return total, np.nan, left


# The cross-multiplied sums ``f_total * slow`` and ``s_total * fast`` order the averages
# ``f_total / fast`` and ``s_total / slow`` where their difference exceeds _CLEAR times the first
# plus _TINY: the two averages then differ by several units in the last place, so their quotients
# compare the same way (_TINY covers the absolute error of products below the normal range).
_CLEAR = 2.0**-48
_TINY = 1e-250


@njit(cache=True, inline="always")
def _compare(f: float, s: float) -> int:
    """1 where the fast average is above the slow one, -1 below, 0 equal or unordered (NaN)."""
    return int(f > s) - int(f < s)


@njit(cache=True)
def _sma_cross(
    x: np.ndarray,
    fast: int,
    slow: int,
    every_fast: int,
    every_slow: int,
    up: float,
    down: float,
    at: np.ndarray,
    out: np.ndarray,
) -> int:
    n = x.shape[0]
    k = 0
    p = np.empty(PARTIALS)
    start = 0
    while start < n and x[start] != x[start]:
        start += 1
    f_total = s_total = 0.0
    side = 0.0  # the last bar's _compare of the averages, as a float
    f_left, s_left = every_fast, every_slow
    warm = start + max(fast, slow)
    t = start
    while t < n:
        if t >= warm:
            # both windows full: plain updates up to the bar before the next rebuild; this
            # loop is _sma_step's arithmetic written out (a call per value was much slower).
            # It divides only where the sums do not clearly keep the averages' order. Views
            # indexed from zero spare the negative-index wraparound of ``x[u - fast]``.
            end = min(n, t + min(f_left, s_left) - 1)
            new, old_f, old_s = x[t:end], x[t - fast : end - fast], x[t - slow : end - slow]
            for i in range(end - t):
                v = new[i]
                f_total += v - old_f[i]
                s_total += v - old_s[i]
                f_cross = f_total * slow
                gap = f_cross - s_total * fast
                # the last bar's side still holds where the gap is clearly on it (and
                # never where the side was 0)
                if not gap * side > _CLEAR * abs(f_cross) + _TINY:
                    now = _compare(f_total / fast, s_total / slow)
                    if now == -side and now != 0:
                        at[k] = t + i
                        out[k] = up if now > 0 else down
                        k += 1
                    side = float(now)
            f_left -= end - t
            s_left -= end - t
            t = end
            if t == n:
                break
        f_total, f, f_left = _sma_step(x, t, start, fast, every_fast, f_total, f_left, p)
        s_total, s, s_left = _sma_step(x, t, start, slow, every_slow, s_total, s_left, p)
        now = _compare(f, s)
        if now == -side and now != 0:
            at[k] = t
            out[k] = up if now > 0 else down
            k += 1
        side = float(now)
        t += 1
    return k


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
) -> SparseWeights:
    """Target weights of an SMA(fast)/SMA(slow) crossover in one pass: ``up`` where the fast
    average crosses strictly above the slow one (the previous bar strictly below), ``down``
    where it crosses strictly below, no decision elsewhere. The averages are
    :func:`sma_stream`'s, bit for bit."""
    x = _values(values, fast, slow)
    if not (math.isfinite(up) and math.isfinite(down)):
        raise ValueError(f"the crossover weights must be finite, got up={up}, down={down}")
    # pages of the index and weight buffers past the last cross are never touched
    at: IntArray = np.empty(len(x), dtype=np.int64)
    out: FloatArray = np.empty(len(x))
    k = _sma_cross(
        x, fast, slow, sma_rebuild_every(fast), sma_rebuild_every(slow), up, down, at, out
    )
    return SparseWeights(at[:k].copy(), out[:k].copy(), len(x))
