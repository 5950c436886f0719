"""Order-book and trade microstructure features in two forms that agree to 1e-9: batch functions
over whole arrays (numpy; numba loops where a window or a volume bucket needs one) and incremental
classes with an O(1) ``update`` per step for event-driven strategies.

Steps and inputs. Features live on a regular decision grid of *steps*. At each step the inputs are

* the book's top ``k`` levels: ``bid_px``, ``bid_sz``, ``ask_px``, ``ask_sz`` -- float64 arrays of
  shape ``(n, k)`` in batch form (column 0 is the best level), one length-``k`` sequence each per
  step in incremental form. A missing level has price NaN and size 0.0;
* the trades since the previous step: ``buy_qty`` / ``sell_qty`` (base quantity traded with a
  buyer / seller aggressor) and ``buy_notional`` / ``sell_notional`` (Σ price × qty), shape
  ``(n,)`` in batch form, scalars per step. A step without trades has zeros. Trade inputs must be
  finite and non-negative (the batch functions check it; the classes trust it, for speed).

Outputs. The value at step ``t`` uses inputs up to and including ``t`` only. Windowed features are
NaN until their window is full. A mid that is NaN or not positive (a side of the book missing)
makes every feature that uses it NaN, for as long as it is inside the window. Each class keeps its
latest output in ``value`` and returns it from ``update``.

Numerics. Rolling sums are running sums (``s += new - old``) rebuilt exactly every ``window``
updates -- ``math.fsum`` in the classes, a numba equivalent in the batch kernels (both correctly
rounded, hence bit-identical) -- so rounding never accumulates. The kernels perform the classes'
arithmetic step for step, so both forms agree to the last bit, or to an ulp where numpy's ``log``
differs from libm's. Questions like "is the window empty" (no volume, no price change, constant
signed volume) are answered by exact integer counts, never by comparing a float sum with zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tradestack.core.series import FloatArray
from tradestack.features.checks import check_int, check_positive, vectors
from tradestack.features.kernels import (
    depth_kernel,
    kyle_kernel,
    vpin_kernel,
    window_pair_sums,
)

_NAN = math.nan


# -- numba kernels (the classes' arithmetic, step for step) ----------------------------------


def mid(bid_px0: FloatArray, ask_px0: FloatArray) -> FloatArray:
    """Mid price ``(b + a) / 2`` of the best bid ``b`` and ask ``a``; NaN where a side is missing.
    Reference: Hasbrouck (2007), *Empirical Market Microstructure*, ch. 1."""
    b, a = vectors(bid_px0=bid_px0, ask_px0=ask_px0)
    return (b + a) * 0.5


def spread_bps(bid_px0: FloatArray, ask_px0: FloatArray) -> FloatArray:
    """Quoted spread ``(a - b) / mid × 1e4`` in basis points; NaN where the mid is missing or not
    positive. Reference: Hasbrouck (2007), *Empirical Market Microstructure*, ch. 1."""
    b, a = vectors(bid_px0=bid_px0, ask_px0=ask_px0)
    m = (b + a) * 0.5
    with np.errstate(all="ignore"):
        return np.where(m > 0.0, (a - b) / m * 1e4, np.nan)


def book_imbalance(bid_sz: FloatArray, ask_sz: FloatArray, levels: int = 5) -> FloatArray:
    """Depth imbalance ``(ΣQb - ΣQa) / (ΣQb + ΣQa)`` over the top ``levels`` levels, in [-1, 1];
    0.0 where both sides are empty. Reference: Cont, Kukanov & Stoikov (2014), "The price impact
    of order book events", J. Financial Econometrics; Cartea, Jaimungal & Penalva (2015),
    *Algorithmic and High-Frequency Trading*, ch. 4."""
    check_int("levels", levels)
    qb = np.ascontiguousarray(bid_sz, dtype=np.float64)
    qa = np.ascontiguousarray(ask_sz, dtype=np.float64)
    for name, x in (("bid_sz", qb), ("ask_sz", qa)):
        if x.ndim != 2:
            raise ValueError(f"{name} must be a 2-D (steps, levels) array, got shape {x.shape}")
        if levels > x.shape[1]:
            raise ValueError(f"levels={levels} exceeds the {x.shape[1]} levels of {name}")
    if len(qb) != len(qa):
        raise ValueError(f"ask_sz has {len(qa)} steps but bid_sz has {len(qb)}")
    result: FloatArray = depth_kernel(qb, qa, levels)
    return result


def microprice(
    bid_px0: FloatArray, bid_sz0: FloatArray, ask_px0: FloatArray, ask_sz0: FloatArray
) -> FloatArray:
    """Size-weighted mid ``(b·Qa + a·Qb) / (Qa + Qb)`` (the mid where both sizes are 0); NaN where
    a side is missing. Reference: Stoikov (2018), "The micro-price: a high-frequency estimator of
    future prices", Quantitative Finance 18(12) -- the weighted mid his micro-price refines."""
    b, qb, a, qa = vectors(bid_px0=bid_px0, bid_sz0=bid_sz0, ask_px0=ask_px0, ask_sz0=ask_sz0)
    tot = qa + qb
    with np.errstate(all="ignore"):
        return np.where(tot > 0.0, (b * qa + a * qb) / tot, (b + a) * 0.5)


def microprice_dev_bps(
    bid_px0: FloatArray, bid_sz0: FloatArray, ask_px0: FloatArray, ask_sz0: FloatArray
) -> FloatArray:
    """``(microprice - mid) / mid × 1e4``, computed without cancellation as
    ``(a - b)/2 · (Qb - Qa)/(Qb + Qa) / mid × 1e4`` (0 where both sizes are 0). Reference:
    Stoikov (2018), "The micro-price", Quantitative Finance 18(12)."""
    b, qb, a, qa = vectors(bid_px0=bid_px0, bid_sz0=bid_sz0, ask_px0=ask_px0, ask_sz0=ask_sz0)
    m = (b + a) * 0.5
    tot = qb + qa
    with np.errstate(all="ignore"):
        imb = np.where(tot > 0.0, (qb - qa) / tot, 0.0)
        return np.where(m > 0.0, (a - b) * 0.5 * imb / m * 1e4, np.nan)


def vwap(
    buy_qty: FloatArray,
    sell_qty: FloatArray,
    buy_notional: FloatArray,
    sell_notional: FloatArray,
    window: int,
) -> FloatArray:
    """Volume-weighted average trade price ``Σ notional / Σ qty`` over the last ``window`` steps,
    both aggressor sides; NaN while fewer than ``window`` steps were seen or the window traded
    nothing. Reference: Berkowitz, Logue & Noser (1988), "The total cost of transactions on the
    NYSE", J. Finance; Cartea, Jaimungal & Penalva (2015), ch. 9."""
    check_int("window", window)
    bq, sq, bn, sn = vectors(
        True, buy_qty=buy_qty, sell_qty=sell_qty, buy_notional=buy_notional,
        sell_notional=sell_notional,
    )  # fmt: skip
    sum_q, sum_v, traded, _ = window_pair_sums(bq + sq, bn + sn, window)
    ok = (traded > 0) & (sum_q > 0.0)
    ok[: window - 1] = False
    out = np.full(len(bq), np.nan)
    np.divide(sum_v, sum_q, out=out, where=ok)
    return out


def vwap_deviation(
    mid: FloatArray,
    buy_qty: FloatArray,
    sell_qty: FloatArray,
    buy_notional: FloatArray,
    sell_notional: FloatArray,
    window: int,
) -> FloatArray:
    """``(mid - vwap) / vwap`` with :func:`vwap` over the last ``window`` steps (a fraction, not
    bps); NaN where either is missing. Reference: Cartea, Jaimungal & Penalva (2015), ch. 9."""
    (m,) = vectors(mid=mid)
    vw = vwap(buy_qty, sell_qty, buy_notional, sell_notional, window)
    if len(vw) != len(m):
        raise ValueError(f"mid has length {len(m)} but buy_qty has length {len(vw)}")
    with np.errstate(all="ignore"):
        return np.where((vw > 0.0) & (m > 0.0), (m - vw) / vw, np.nan)


def trade_flow_imbalance(buy_qty: FloatArray, sell_qty: FloatArray, window: int) -> FloatArray:
    """Signed trade-flow imbalance ``(ΣB - ΣS) / (ΣB + ΣS)`` of aggressor volume over the last
    ``window`` steps; 0.0 when nothing traded, NaN until ``window`` steps were seen. Reference:
    Chordia & Subrahmanyam (2004), "Order imbalance and individual stock returns", J. Financial
    Economics; Cont, Kukanov & Stoikov (2014)."""
    check_int("window", window)
    b, s = vectors(True, buy_qty=buy_qty, sell_qty=sell_qty)
    sb, ss, nb, ns = window_pair_sums(b, s, window)
    tot = sb + ss
    out = np.zeros(len(b))
    np.divide(sb - ss, tot, out=out, where=((nb > 0) | (ns > 0)) & (tot > 0.0))
    out[: window - 1] = np.nan
    return out


def realized_volatility(mid: FloatArray, window: int) -> FloatArray:
    """Realized volatility ``sqrt(Σ r²)`` of the last ``window`` log returns
    ``r_t = ln(mid_t / mid_{t-1})``, not annualized; NaN until ``window`` returns exist or while a
    missing mid is in the window. Reference: Andersen, Bollerslev, Diebold & Labys (2003),
    "Modeling and forecasting realized volatility", Econometrica 71(2)."""
    check_int("window", window)
    (m,) = vectors(mid=mid)
    out = np.full(len(m), np.nan)
    if len(m) < 2:
        return out
    now, prev = m[1:], m[:-1]
    ok = (now > 0.0) & (prev > 0.0)
    with np.errstate(all="ignore"):
        r = np.log(np.where(ok, now / prev, 1.0))
    s, _, moved, missing = window_pair_sums(r * r, (~ok).astype(np.float64), window)
    vol = np.zeros(len(s))
    np.sqrt(s, out=vol, where=(moved > 0) & (s > 0.0))
    vol[missing > 0] = np.nan
    vol[: window - 1] = np.nan
    out[1:] = vol
    return out


def vpin(
    buy_qty: FloatArray, sell_qty: FloatArray, bucket_volume: float, n_buckets: int
) -> FloatArray:
    """Volume-synchronized probability of informed trading. The traded volume is cut into
    consecutive buckets of exactly ``bucket_volume``; a step whose volume overflows a bucket is
    split across buckets pro rata between its buy and sell volume. At each step
    ``VPIN = Σ|B_τ - S_τ| / (n_buckets × bucket_volume)`` over the last ``n_buckets`` completed
    buckets (NaN until that many are complete). Trades carry their aggressor side, so there is no
    bulk volume classification. Reference: Easley, López de Prado & O'Hara (2012), "Flow toxicity
    and liquidity in a high-frequency world", Review of Financial Studies 25(5)."""
    check_positive("bucket_volume", bucket_volume)
    check_int("n_buckets", n_buckets)
    b, s = vectors(True, buy_qty=buy_qty, sell_qty=sell_qty)
    result: FloatArray = vpin_kernel(b, s, float(bucket_volume), n_buckets)
    return result


def kyle_lambda(
    mid: FloatArray, buy_qty: FloatArray, sell_qty: FloatArray, window: int
) -> FloatArray:
    """Kyle's lambda: the OLS slope of ``Δmid_t = mid_t - mid_{t-1}`` on signed volume
    ``q_t = B_t - S_t`` over the last ``window`` steps, ``Cov(Δp, q) / Var(q)``; NaN until the
    window is full, where ``Var(q) = 0`` or while a missing mid is in the window. Reference: Kyle
    (1985), "Continuous auctions and insider trading", Econometrica 53(6); Hasbrouck (2007),
    *Empirical Market Microstructure*, ch. 8."""
    check_int("window", window)
    (m,) = vectors(mid=mid)
    b, s = vectors(True, buy_qty=buy_qty, sell_qty=sell_qty)
    if len(b) != len(m):
        raise ValueError(f"buy_qty has length {len(b)} but mid has length {len(m)}")
    result: FloatArray = kyle_kernel(m, b - s, window)
    return result


def cross_venue_spread_bps(mid_a: FloatArray, mid_b: FloatArray) -> FloatArray:
    """Cross-venue basis ``(mid_a - mid_b) / ((mid_a + mid_b) / 2) × 1e4`` in basis points; NaN
    where either mid is missing. Reference: Makarov & Schoar (2020), "Trading and arbitrage in
    cryptocurrency markets", J. Financial Economics 135(2)."""
    a, b = vectors(mid_a=mid_a, mid_b=mid_b)
    with np.errstate(all="ignore"):
        return np.where((a > 0.0) & (b > 0.0), (a - b) / ((a + b) * 0.5) * 1e4, np.nan)


# -- incremental -----------------------------------------------------------------------------


class _Instant:
    """A feature of the current step alone: no state but the latest value."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = _NAN


class Mid(_Instant):
    """Incremental :func:`mid`."""

    __slots__ = ()

    def update(self, bid: float, ask: float) -> float:
        self.value = v = (bid + ask) * 0.5
        return v


class SpreadBps(_Instant):
    """Incremental :func:`spread_bps`."""

    __slots__ = ()

    def update(self, bid: float, ask: float) -> float:
        m = (bid + ask) * 0.5
        self.value = v = (ask - bid) / m * 1e4 if m > 0.0 else _NAN
        return v


class BookImbalance:
    """Incremental :func:`book_imbalance`; rows hold at least ``levels`` sizes, best first."""

    __slots__ = ("levels", "value")

    def __init__(self, levels: int = 5) -> None:
        check_int("levels", levels)
        self.levels = levels
        self.value = _NAN

    def update(self, bid_sz: Sequence[float], ask_sz: Sequence[float]) -> float:
        n = self.levels
        if len(bid_sz) < n or len(ask_sz) < n:
            raise ValueError(f"rows need at least levels={n} sizes")
        sb = sum(bid_sz[:n], 0.0)
        sa = sum(ask_sz[:n], 0.0)
        tot = sb + sa
        self.value = v = (sb - sa) / tot if tot > 0.0 else 0.0
        return v


class Microprice(_Instant):
    """Incremental :func:`microprice`."""

    __slots__ = ()

    def update(self, bid: float, bid_sz: float, ask: float, ask_sz: float) -> float:
        tot = ask_sz + bid_sz
        self.value = v = (bid * ask_sz + ask * bid_sz) / tot if tot > 0.0 else (bid + ask) * 0.5
        return v


class MicropriceDevBps(_Instant):
    """Incremental :func:`microprice_dev_bps`."""

    __slots__ = ()

    def update(self, bid: float, bid_sz: float, ask: float, ask_sz: float) -> float:
        m = (bid + ask) * 0.5
        tot = bid_sz + ask_sz
        imb = (bid_sz - ask_sz) / tot if tot > 0.0 else 0.0
        self.value = v = (ask - bid) * 0.5 * imb / m * 1e4 if m > 0.0 else _NAN
        return v


class _Rolling:
    """Running sum of the last ``window`` pushed values (of all of them while warming up),
    rebuilt by ``math.fsum`` every ``window`` pushes, and an exact count of the non-zero ones."""

    __slots__ = ("_i", "_ring", "full", "nonzero", "sum", "window")

    def __init__(self, window: int) -> None:
        self.window = window
        self._ring = [0.0] * window
        self._i = self.nonzero = 0
        self.sum = 0.0
        self.full = False

    def push(self, x: float) -> float:
        i = self._i
        ring = self._ring
        old = ring[i]
        if x != 0.0:
            self.nonzero += 1
        if old != 0.0:
            self.nonzero -= 1
        self.sum += x - old
        ring[i] = x
        i += 1
        if i == self.window:
            i = 0
            self.full = True
            self.sum = math.fsum(ring)
        self._i = i
        return self.sum


class VWAP:
    """Incremental :func:`vwap`: running sums of step volume and notional."""

    __slots__ = ("_q", "_v", "value", "window")

    def __init__(self, window: int) -> None:
        check_int("window", window)
        self.window = window
        self._q = _Rolling(window)
        self._v = _Rolling(window)
        self.value = _NAN

    def update(
        self, buy_qty: float, sell_qty: float, buy_notional: float, sell_notional: float
    ) -> float:
        q = self._q
        sq = q.push(buy_qty + sell_qty)
        sv = self._v.push(buy_notional + sell_notional)
        if q.full:
            self.value = sv / sq if q.nonzero and sq > 0.0 else _NAN
        return self.value


class VWAPDeviation:
    """Incremental :func:`vwap_deviation`."""

    __slots__ = ("_vwap", "value", "window")

    def __init__(self, window: int) -> None:
        self._vwap = VWAP(window)
        self.window = window
        self.value = _NAN

    def update(
        self,
        mid: float,
        buy_qty: float,
        sell_qty: float,
        buy_notional: float,
        sell_notional: float,
    ) -> float:
        vw = self._vwap.update(buy_qty, sell_qty, buy_notional, sell_notional)
        self.value = v = (mid - vw) / vw if vw > 0.0 and mid > 0.0 else _NAN
        return v


class TradeFlowImbalance:
    """Incremental :func:`trade_flow_imbalance`: running sums of buy and sell volume."""

    __slots__ = ("_b", "_s", "value", "window")

    def __init__(self, window: int) -> None:
        check_int("window", window)
        self.window = window
        self._b = _Rolling(window)
        self._s = _Rolling(window)
        self.value = _NAN

    def update(self, buy_qty: float, sell_qty: float) -> float:
        b, s = self._b, self._s
        sb = b.push(buy_qty)
        ss = s.push(sell_qty)
        if b.full:
            tot = sb + ss
            traded = b.nonzero or s.nonzero
            self.value = (sb - ss) / tot if traded and tot > 0.0 else 0.0
        return self.value


class RealizedVolatility:
    """Incremental :func:`realized_volatility`: a running sum of squared log returns, and an
    exact count of the missing ones in the window."""

    __slots__ = ("_missing", "_prev", "_r2", "_started", "value", "window")

    def __init__(self, window: int) -> None:
        check_int("window", window)
        self.window = window
        self._r2 = _Rolling(window)
        self._missing = _Rolling(window)
        self._prev = _NAN
        self._started = False
        self.value = _NAN

    def update(self, mid: float) -> float:
        prev, self._prev = self._prev, mid
        if not self._started:
            self._started = True
            return self.value
        if mid > 0.0 and prev > 0.0:
            r = math.log(mid / prev)
            self._missing.push(0.0)
        else:
            r = 0.0
            self._missing.push(1.0)
        r2 = self._r2
        s = r2.push(r * r)
        if r2.full:
            if self._missing.nonzero:
                self.value = _NAN
            else:
                self.value = math.sqrt(s) if r2.nonzero and s > 0.0 else 0.0
        return self.value


class VPIN:
    """Incremental :func:`vpin`: the open bucket's buy and sell volume, and a running sum of the
    last ``n_buckets`` bucket imbalances ``|B_τ - S_τ|``. A step that fills more than
    ``n_buckets`` buckets pushes only the last ``n_buckets`` of them (they are all alike)."""

    __slots__ = (
        "_buckets", "_buy", "_denom", "_fill", "_sell", "bucket_volume", "n_buckets", "value",
    )  # fmt: skip

    def __init__(self, bucket_volume: float, n_buckets: int) -> None:
        check_positive("bucket_volume", bucket_volume)
        check_int("n_buckets", n_buckets)
        self.bucket_volume = float(bucket_volume)
        self.n_buckets = n_buckets
        self._denom = n_buckets * self.bucket_volume
        self._buckets = _Rolling(n_buckets)
        self._buy = self._sell = self._fill = 0.0
        self.value = _NAN

    def update(self, buy_qty: float, sell_qty: float) -> float:
        v = buy_qty + sell_qty
        if v > 0.0:
            room = self.bucket_volume - self._fill
            if v < room:
                self._buy += buy_qty
                self._sell += sell_qty
                self._fill += v
            else:
                self._overflow(buy_qty / v, sell_qty / v, v, room)
        return self.value

    def _overflow(self, fb: float, fs: float, v: float, room: float) -> None:
        """Close the open bucket with the first ``room`` of the step's volume, then fill whole
        buckets, and open a new one with what is left; every part is split ``fb : fs``."""
        bucket = self.bucket_volume
        buckets = self._buckets
        s = buckets.push(abs((self._buy + room * fb) - (self._sell + room * fs)))
        rem = v - room
        k = math.floor(rem / bucket)
        if k:
            imb = bucket * abs(fb - fs)
            for _ in range(min(k, self.n_buckets)):
                s = buckets.push(imb)
        rem -= k * bucket
        if rem < 0.0:
            rem = 0.0
        self._buy = rem * fb
        self._sell = rem * fs
        self._fill = rem
        if buckets.full:
            self.value = (s if s > 0.0 else 0.0) / self._denom


class KyleLambda:
    """Incremental :func:`kyle_lambda`. Running sums of ``x - kx`` and ``y - ky`` (x = signed
    volume, y = Δmid), their squares and cross products; every ``window`` updates the shift
    (kx, ky) moves to the window means and the sums are rebuilt exactly from the ring, so neither
    rounding nor the variance formula's cancellation builds up. ``Var(q) = 0`` is detected
    exactly: the last ``window`` signed volumes are all equal."""

    __slots__ = (
        "_bad", "_full", "_i", "_kx", "_ky", "_last_x", "_nbad", "_prev", "_run", "_started",
        "_sx", "_sxx", "_sxy", "_sy", "_x", "_y", "value", "window",
    )  # fmt: skip

    def __init__(self, window: int) -> None:
        check_int("window", window)
        self.window = window
        self._x = [0.0] * window
        self._y = [0.0] * window
        self._bad = [0] * window
        self._kx = self._ky = self._sx = self._sy = self._sxx = self._sxy = 0.0
        self._i = self._nbad = self._run = 0
        self._prev = self._last_x = _NAN
        self._started = self._full = False
        self.value = _NAN

    def update(self, mid: float, buy_qty: float, sell_qty: float) -> float:
        prev, self._prev = self._prev, mid
        if not self._started:
            self._started = True
            return self.value
        x = buy_qty - sell_qty
        y = mid - prev
        b = 0
        if not (mid > 0.0 and prev > 0.0):
            b, y = 1, 0.0
        self._run = self._run + 1 if x == self._last_x else 1
        self._last_x = x
        i = self._i
        rx, ry, rb = self._x, self._y, self._bad
        kx, ky = self._kx, self._ky
        self._nbad += b - rb[i]
        dx, dy = x - kx, y - ky
        ex, ey = rx[i] - kx, ry[i] - ky
        self._sx += dx - ex
        self._sy += dy - ey
        self._sxx += dx * dx - ex * ex
        self._sxy += dx * dy - ex * ey
        rx[i], ry[i], rb[i] = x, y, b
        i += 1
        w = self.window
        if i == w:
            i = 0
            self._full = True
            self._rebuild()
        self._i = i
        if self._full:
            if self._nbad or self._run >= w:
                self.value = _NAN
            else:
                sx = self._sx
                vxx = self._sxx - sx * sx / w
                self.value = (self._sxy - sx * self._sy / w) / vxx if vxx > 0.0 else _NAN
        return self.value

    def _rebuild(self) -> None:
        w = self.window
        self._kx = kx = self._kx + self._sx / w
        self._ky = ky = self._ky + self._sy / w
        dxs = [v - kx for v in self._x]
        dys = [v - ky for v in self._y]
        self._sx = math.fsum(dxs)
        self._sy = math.fsum(dys)
        self._sxx = math.fsum([d * d for d in dxs])
        self._sxy = math.fsum([a * b for a, b in zip(dxs, dys, strict=True)])


class CrossVenueSpreadBps(_Instant):
    """Incremental :func:`cross_venue_spread_bps`."""

    __slots__ = ()

    def update(self, mid_a: float, mid_b: float) -> float:
        ok = mid_a > 0.0 and mid_b > 0.0
        self.value = v = (mid_a - mid_b) / ((mid_a + mid_b) * 0.5) * 1e4 if ok else _NAN
        return v
