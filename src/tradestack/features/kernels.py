"""Compiled loops behind batch features that TA-Lib does not have: exact (correctly rounded)
window sums and the step-by-step twins of incremental classes (:class:`~tradestack.features.
microstructure.KyleLambda`, :class:`~tradestack.features.microstructure.VPIN`,
:class:`~tradestack.features.technical.RollingVolatility`), so both forms do the same
arithmetic and agree to the last bit."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

PARTIALS = 2112  # fsum partials never overlap: at most ~2098 of them fit in a double's range


@njit(cache=True)
def fsum(x: np.ndarray, lo: int, hi: int, p: np.ndarray) -> float:
    """``math.fsum(x[lo:hi])``, bit for bit: the correctly rounded sum. Fast path: a compensated
    sum (Knuth's TwoSum, Ogita, Rump & Oishi 2005) ``s + c`` rounded to ``r``, returned when the
    error bound of ``c`` proves that the exact sum is nearer ``r`` than any other double; else
    :func:`fsum_exact`. ``p`` is scratch space for the partials."""
    s = c = a = 0.0
    for k in range(lo, hi):
        v = x[k]
        t = s + v
        z = t - s
        e = (s - (t - z)) + (v - z)  # s + v == t + e exactly
        s = t
        c += e
        a += abs(e)
    r = s + c
    z = r - s
    d = (s - (r - z)) + (c - z)  # the exact sum is r + d + (Σe - c), |Σe - c| <= (n-1)·u·Σ|e|
    m = abs(r)
    if 0.0 < m < np.inf:
        half = (m - np.nextafter(m, 0.0)) * 0.5  # half the smaller spacing next to r
        if 4.0 * (hi - lo) * 1.1102230246251565e-16 * a < half - abs(d):
            return r
    return fsum_exact(x, lo, hi, p)


@njit(cache=True)
def fsum_exact(x: np.ndarray, lo: int, hi: int, p: np.ndarray) -> float:
    """CPython's ``math.fsum``: Shewchuk's non-overlapping partials, then a correctly rounded
    total."""
    n = 0
    for k in range(lo, hi):
        v = x[k]
        if v == 0.0:  # changes no partial's value (idle steps are common)
            continue
        i = 0
        for j in range(n):
            y = p[j]
            if abs(v) < abs(y):
                v, y = y, v
            s = v + y
            err = y - (s - v)
            if err != 0.0:
                p[i] = err
                i += 1
            v = s
        n = i
        if v != 0.0:
            p[n] = v
            n += 1
    total = 0.0
    if n > 0:
        n -= 1
        total = p[n]
        err = 0.0
        while n > 0:
            a = total
            n -= 1
            b = p[n]
            total = a + b
            err = b - (total - a)
            if err != 0.0:
                break
        # half-even rounding across partials, as CPython
        if n > 0 and ((err < 0.0 and p[n - 1] < 0.0) or (err > 0.0 and p[n - 1] > 0.0)):
            b = err * 2.0
            a = total + b
            if b == a - total:
                total = a
    return total


@njit(cache=True)
def window_pair_sums(a: np.ndarray, b: np.ndarray, w: int) -> tuple[np.ndarray, ...]:
    """Sums of ``a`` and ``b`` over the last ``w`` steps (all steps while warming up) and how
    many of those values are non-zero, kept exactly as :class:`_Rolling` keeps them."""
    n = a.shape[0]
    sa, sb = np.empty(n), np.empty(n)
    na, nb = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    p = np.empty(PARTIALS)
    ra = rb = 0.0
    ca = cb = 0
    for t in range(n):
        oa = ob = 0.0
        if t >= w:
            oa, ob = a[t - w], b[t - w]
        ca += int(a[t] != 0.0) - int(oa != 0.0)
        cb += int(b[t] != 0.0) - int(ob != 0.0)
        ra += a[t] - oa
        rb += b[t] - ob
        if (t + 1) % w == 0:
            ra = fsum(a, t + 1 - w, t + 1, p)
            rb = fsum(b, t + 1 - w, t + 1, p)
        sa[t], sb[t], na[t], nb[t] = ra, rb, ca, cb
    return sa, sb, na, nb


@njit(cache=True)
def depth_kernel(qb: np.ndarray, qa: np.ndarray, levels: int) -> np.ndarray:
    """:class:`BookImbalance` over the rows: each side's sizes added left to right."""
    n = qb.shape[0]
    out = np.empty(n)
    for t in range(n):
        sb = sa = 0.0
        for j in range(levels):
            sb += qb[t, j]
            sa += qa[t, j]
        tot = sb + sa
        out[t] = (sb - sa) / tot if tot > 0.0 else 0.0
    return out


@njit(cache=True)
def kyle_kernel(mid: np.ndarray, q: np.ndarray, w: int) -> np.ndarray:
    """:class:`KyleLambda` over the arrays: sums of x = q and y = Δmid shifted by (kx, ky), the
    window means at the last rebuild."""
    n = mid.shape[0]
    out = np.full(n, np.nan)
    xs = np.zeros(n)
    ys = np.zeros(n)
    bad = np.zeros(n, dtype=np.int64)
    dxs = np.empty(w)
    dys = np.empty(w)
    prod = np.empty(w)
    p = np.empty(PARTIALS)
    kx = ky = sx = sy = sxx = sxy = 0.0
    nbad = 0
    run = 0
    last_x = np.nan
    i = 0
    full = False
    for j in range(n - 1):  # pair j lives at step t = j + 1
        x = q[j + 1]
        y = mid[j + 1] - mid[j]
        b = 0
        if not (mid[j + 1] > 0.0 and mid[j] > 0.0):
            b = 1
            y = 0.0
        run = run + 1 if x == last_x else 1
        last_x = x
        ox = oy = 0.0
        ob = 0
        if j >= w:
            ox = xs[j - w]
            oy = ys[j - w]
            ob = bad[j - w]
        xs[j] = x
        ys[j] = y
        bad[j] = b
        nbad += b - ob
        dx = x - kx
        dy = y - ky
        ex = ox - kx
        ey = oy - ky
        sx += dx - ex
        sy += dy - ey
        sxx += dx * dx - ex * ex
        sxy += dx * dy - ex * ey
        i += 1
        if i == w:
            i = 0
            full = True
            kx += sx / w
            ky += sy / w
            for k in range(w):
                dxs[k] = xs[j + 1 - w + k] - kx
                dys[k] = ys[j + 1 - w + k] - ky
            sx = fsum(dxs, 0, w, p)
            sy = fsum(dys, 0, w, p)
            for k in range(w):
                prod[k] = dxs[k] * dxs[k]
            sxx = fsum(prod, 0, w, p)
            for k in range(w):
                prod[k] = dxs[k] * dys[k]
            sxy = fsum(prod, 0, w, p)
        if full and nbad == 0 and run < w:
            vxx = sxx - sx * sx / w
            if vxx > 0.0:
                out[j + 1] = (sxy - sx * sy / w) / vxx
    return out


@njit(cache=True)
def vpin_kernel(buy: np.ndarray, sell: np.ndarray, bucket: float, nb: int) -> np.ndarray:
    """:class:`VPIN` over the arrays."""
    n = buy.shape[0]
    out = np.full(n, np.nan)
    ring = np.zeros(nb)
    p = np.empty(PARTIALS)
    denom = nb * bucket
    cb = cs = fill = s = 0.0
    i = 0
    full = False
    for t in range(n):
        b = buy[t]
        q = sell[t]
        v = b + q
        if v > 0.0:
            room = bucket - fill
            if v < room:
                cb += b
                cs += q
                fill += v
            else:
                fb = b / v
                fs = q / v
                imb = abs((cb + room * fb) - (cs + room * fs))
                rem = v - room
                k = np.floor(rem / bucket)
                pushes = 1 + int(min(k, nb))
                for m in range(pushes):
                    if m == 1:
                        imb = bucket * abs(fb - fs)
                    s += imb - ring[i]
                    ring[i] = imb
                    i += 1
                    if i == nb:
                        i = 0
                        full = True
                        s = fsum(ring, 0, nb, p)
                rem -= k * bucket
                if rem < 0.0:
                    rem = 0.0
                cb = rem * fb
                cs = rem * fs
                fill = rem
        if full:
            out[t] = (s if s > 0.0 else 0.0) / denom
    return out


# -- batch -----------------------------------------------------------------------------------


@njit(cache=True)
def rolling_volatility_kernel(x: np.ndarray, period: int) -> np.ndarray:
    """:class:`~tradestack.features.technical.RollingVolatility` over an array."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    ring = np.zeros(period + 1)  # the window's log returns, oldest at ``head``
    squares = np.empty(period)
    p = np.empty(PARTIALS)
    head = size = count = 0
    s = s2 = 0.0
    prev = np.nan
    value = np.nan
    for t in range(n):
        xt = x[t]
        before = prev
        prev = xt
        if before != before:
            out[t] = value
            continue
        r = math.log(xt / before) if xt > 0 and before > 0 else np.nan
        ring[(head + size) % (period + 1)] = r
        size += 1
        s += r
        s2 += r * r
        if size > period:
            old = ring[head]
            head = (head + 1) % (period + 1)
            size -= 1
            s -= old
            s2 -= old * old
        count += 1
        if count % period == 0:
            window = np.empty(size)
            for j in range(size):
                window[j] = ring[(head + j) % (period + 1)]
                squares[j] = window[j] * window[j]
            s = fsum(window, 0, size, p)
            s2 = fsum(squares, 0, size, p)
        if size == period:
            var = (s2 - s * s / size) / (size - 1)
            value = math.sqrt(var) if var > 0 else (0.0 if var == var else np.nan)
        out[t] = value
    return out


@njit(cache=True)
def zscore_kernel(x: np.ndarray, period: int) -> np.ndarray:
    """:class:`~tradestack.features.technical.ZScore` over an array: running sums of x and x²
    (added before and dropped after each output, as TA-Lib's ``VAR``), population std."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    s = s2 = 0.0
    first = 0
    while first < n and x[first] != x[first]:  # leading NaNs are skipped
        first += 1
    for t in range(first, n):
        xt = x[t]
        s += xt
        s2 += xt * xt
        if t - first + 1 >= period:
            mean = s / period
            var = s2 / period - mean * mean
            std = math.sqrt(var) if var > 0 else 0.0
            out[t] = (xt - mean) / std if std > 0 else np.nan
            old = x[t - period + 1]
            s -= old
            s2 -= old * old
    return out
