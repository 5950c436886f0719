"""Rolling per-instrument returns and the statistics the portfolio rules need from them."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

__all__ = ["PriceHistory", "correlation", "stdev"]


class PriceHistory:
    """The last ``window + 1`` prices of one instrument, so the last ``window`` log returns.

    Prices that are not finite and positive are ignored, so is a price older than the last one;
    a price with the same timestamp as the last one replaces it.
    """

    __slots__ = ("_prices", "_ts")

    def __init__(self, window: int) -> None:
        self._ts: deque[int] = deque(maxlen=window + 1)
        self._prices: deque[float] = deque(maxlen=window + 1)

    def add(self, ts_ns: int, price: float) -> None:
        if not (math.isfinite(price) and price > 0.0):
            return
        if self._ts:
            last = self._ts[-1]
            if ts_ns < last:
                return
            if ts_ns == last:
                self._prices[-1] = price
                return
        self._ts.append(ts_ns)
        self._prices.append(price)

    def returns(self) -> list[float]:
        """Log returns, oldest first."""
        px = self._prices
        return [math.log(px[k] / px[k - 1]) for k in range(1, len(px))]

    def returns_by_ts(self) -> dict[int, float]:
        """Log returns keyed by the timestamp of the price that ends them."""
        px, ts = self._prices, self._ts
        return {ts[k]: math.log(px[k] / px[k - 1]) for k in range(1, len(px))}


def stdev(values: Sequence[float]) -> float:
    """Sample standard deviation (NaN below two values)."""
    n = len(values)
    if n < 2:
        return math.nan
    mean = math.fsum(values) / n
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def correlation(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Pearson correlation of two equally long series (NaN when either is constant)."""
    n = len(xs)
    if n != len(ys) or n < 2:
        return math.nan
    mx, my = math.fsum(xs) / n, math.fsum(ys) / n
    sxy = math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    syy = math.fsum((y - my) ** 2 for y in ys)
    if sxx <= 0.0 or syy <= 0.0:
        return math.nan
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))
