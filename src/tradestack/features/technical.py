"""Technical indicators in two forms that agree to 1e-9: batch over arrays (TA-Lib where TA-Lib
has the indicator) and incremental, O(1) per update, for event-by-event strategies.

Conventions are TA-Lib's: leading NaN inputs are skipped; outputs are NaN until the indicator
has its full lookback; EMAs are seeded with the simple average of their first ``period`` inputs;
RSI and ATR use Wilder's smoothing seeded the same way. The incremental classes reproduce
TA-Lib's arithmetic order so the two forms match, not only converge.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from tradestack.core.series import FloatArray
from tradestack.features.kernels import rolling_volatility_kernel, zscore_kernel


def _arr(values: FloatArray) -> np.ndarray:
    return np.ascontiguousarray(values, dtype=np.float64)


def _check(period: int, minimum: int = 1) -> None:
    if not isinstance(period, int) or isinstance(period, bool) or period < minimum:
        raise ValueError(f"period must be an int >= {minimum}, got {period!r}")


# -- batch -----------------------------------------------------------------------------------


def rsi(close: FloatArray, period: int = 14) -> FloatArray:
    """Wilder's relative strength index (TA-Lib ``RSI``)."""
    _check(period, 2)
    import talib  # imported on use: it pulls in pandas (~0.5 s)

    return talib.RSI(_arr(close), timeperiod=period)


def macd(
    close: FloatArray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """MACD line, signal line and histogram (TA-Lib ``MACD``)."""
    _check(fast, 2)
    _check(slow, 2)
    _check(signal, 1)
    if fast >= slow:
        raise ValueError(f"MACD needs fast < slow, got {fast} and {slow}")
    import talib  # imported on use: it pulls in pandas (~0.5 s)

    line, sig, hist = talib.MACD(_arr(close), fastperiod=fast, slowperiod=slow, signalperiod=signal)
    return line, sig, hist


def bollinger(
    close: FloatArray, period: int = 20, k: float = 2.0
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Upper, middle (SMA) and lower band at ``k`` population standard deviations (TA-Lib
    ``BBANDS``)."""
    _check(period, 2)
    import talib  # imported on use: it pulls in pandas (~0.5 s)

    upper, middle, lower = talib.BBANDS(_arr(close), timeperiod=period, nbdevup=k, nbdevdn=k)
    return upper, middle, lower


def atr(high: FloatArray, low: FloatArray, close: FloatArray, period: int = 14) -> FloatArray:
    """Wilder's average true range (TA-Lib ``ATR``)."""
    _check(period, 1)
    import talib  # imported on use: it pulls in pandas (~0.5 s)

    return talib.ATR(_arr(high), _arr(low), _arr(close), timeperiod=period)


def returns(close: FloatArray, period: int = 1) -> FloatArray:
    """Simple return over ``period`` bars, ``close[t] / close[t - period] - 1`` (TA-Lib
    ``ROCP``)."""
    _check(period, 1)
    import talib  # imported on use: it pulls in pandas (~0.5 s)

    return talib.ROCP(_arr(close), timeperiod=period)


def rolling_volatility(close: FloatArray, period: int = 20) -> FloatArray:
    """Sample standard deviation (ddof=1) of the last ``period`` log returns. TA-Lib has no
    sample-std indicator, so this is a compiled loop doing :class:`RollingVolatility`'s
    arithmetic (running sums rebuilt exactly every ``period`` returns)."""
    _check(period, 2)
    result: FloatArray = rolling_volatility_kernel(_arr(close), period)
    return result


def zscore(values: FloatArray, period: int = 20) -> FloatArray:
    """``(x - mean) / std`` over the last ``period`` values (population std, TA-Lib's ``VAR``
    arithmetic); NaN where the std is zero. TA-Lib has no z-score, and composing its ``SMA``
    and ``STDDEV`` rounds differently where the window is nearly flat, so this is a compiled
    loop doing :class:`ZScore`'s arithmetic."""
    _check(period, 2)
    result: FloatArray = zscore_kernel(_arr(values), period)
    return result


# -- incremental -----------------------------------------------------------------------------


class RSI:
    """Incremental :func:`rsi`: Wilder averages of gains and losses, seeded by their mean."""

    __slots__ = ("_gain", "_loss", "_n", "_prev", "period", "value")

    def __init__(self, period: int = 14) -> None:
        _check(period, 2)
        self.period = period
        self._prev = math.nan
        self._gain = 0.0
        self._loss = 0.0
        self._n = 0
        self.value = math.nan

    def update(self, x: float) -> float:
        if self._prev != self._prev:
            self._prev = x
            return self.value
        change = x - self._prev
        self._prev = x
        gain, loss = (change, 0.0) if change > 0 else (0.0, -change)
        p = self.period
        self._n += 1
        if self._n < p:
            self._gain += gain
            self._loss += loss
            return self.value
        if self._n == p:
            self._gain = (self._gain + gain) / p
            self._loss = (self._loss + loss) / p
        else:
            self._gain = (self._gain * (p - 1) + gain) / p
            self._loss = (self._loss * (p - 1) + loss) / p
        total = self._gain + self._loss
        # no gain and no loss over the window: TA-Lib reports 0
        self.value = 100.0 * (self._gain / total) if total != 0.0 else 0.0
        return self.value


class _Ema:
    """EMA seeded with the mean of its first ``period`` inputs (TA-Lib's INT_EMA)."""

    __slots__ = ("_count", "_k", "_seed", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = period
        self._k = 2.0 / (period + 1)
        self._seed = 0.0
        self._count = 0
        self.value = math.nan

    def update(self, x: float) -> float:
        if self._count < self.period:
            if x != x and self._count == 0:
                return self.value
            self._count += 1
            self._seed += x
            if self._count == self.period:
                self.value = self._seed / self.period
            return self.value
        self.value = (x - self.value) * self._k + self.value
        return self.value


class MACD:
    """Incremental :func:`macd`. As TA-Lib, the fast EMA is seeded on the ``fast`` values that
    end where the slow EMA's seed ends, so both start together."""

    __slots__ = ("_fast", "_recent", "_signal", "_slow", "histogram", "line", "signal_line")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        _check(fast, 2)
        _check(slow, 2)
        _check(signal, 1)
        if fast >= slow:
            raise ValueError(f"MACD needs fast < slow, got {fast} and {slow}")
        self._slow = _Ema(slow)
        self._fast = _Ema(fast)
        self._signal = _Ema(signal)
        self._recent: deque[float] = deque(maxlen=fast)
        self.line = self.signal_line = self.histogram = math.nan

    def update(self, x: float) -> tuple[float, float, float]:
        """Feed one close; returns (line, signal, histogram), NaN during the lookback."""
        if x != x and not self._recent:
            return self.line, self.signal_line, self.histogram
        self._recent.append(x)
        slow = self._slow.update(x)
        if slow != slow:
            return self.line, self.signal_line, self.histogram
        if self._fast.value != self._fast.value:  # seed on the last ``fast`` closes
            for value in self._recent:
                self._fast.update(value)
            fast = self._fast.value
        else:
            fast = self._fast.update(x)
        line = fast - slow
        signal = self._signal.update(line)
        if signal == signal:
            self.line, self.signal_line, self.histogram = line, signal, line - signal
        return self.line, self.signal_line, self.histogram


class BollingerBands:
    """Incremental :func:`bollinger`: running sums of x and x² over the window, as TA-Lib."""

    __slots__ = ("_sum", "_sum2", "_window", "k", "lower", "middle", "period", "std", "upper")

    def __init__(self, period: int = 20, k: float = 2.0) -> None:
        _check(period, 2)
        self.period = period
        self.k = k
        self._window: deque[float] = deque()
        self._sum = 0.0
        self._sum2 = 0.0
        self.upper = self.middle = self.lower = self.std = math.nan

    def update(self, x: float) -> tuple[float, float, float]:
        """Feed one value; returns (upper, middle, lower)."""
        # TA-Lib's order: add the new value, compute, then drop the oldest
        window = self._window
        if x != x and not window:
            return self.upper, self.middle, self.lower
        window.append(x)
        self._sum += x
        self._sum2 += x * x
        if len(window) == self.period:
            mean = self._sum / self.period
            var = self._sum2 / self.period - mean * mean
            self.std = math.sqrt(var) if var > 0 else 0.0
            dev = self.k * self.std
            self.middle, self.upper, self.lower = mean, mean + dev, mean - dev
            old = window.popleft()
            self._sum -= old
            self._sum2 -= old * old
        return self.upper, self.middle, self.lower


class ATR:
    """Incremental :func:`atr`: Wilder's average of the true range, seeded by its mean."""

    __slots__ = ("_n", "_prev_close", "_sum", "period", "value")

    def __init__(self, period: int = 14) -> None:
        _check(period, 1)
        self.period = period
        self._prev_close = math.nan
        self._sum = 0.0
        self._n = 0
        self.value = math.nan

    def update(self, high: float, low: float, close: float) -> float:
        prev = self._prev_close
        self._prev_close = close
        if prev != prev:
            return self.value
        tr = max(high - low, abs(high - prev), abs(low - prev))
        self._n += 1
        p = self.period
        if self._n < p:
            self._sum += tr
        elif self._n == p:
            self.value = (self._sum + tr) / p
        else:
            self.value = (self.value * (p - 1) + tr) / p
        return self.value


class Returns:
    """Incremental :func:`returns` over ``period`` updates."""

    __slots__ = ("_window", "period", "value")

    def __init__(self, period: int = 1) -> None:
        _check(period, 1)
        self.period = period
        self._window: deque[float] = deque(maxlen=period + 1)
        self.value = math.nan

    def update(self, x: float) -> float:
        self._window.append(x)
        if len(self._window) == self.period + 1:
            first = self._window[0]
            self.value = (x - first) / first if first != 0.0 else math.nan
        return self.value


class RollingVolatility:
    """Incremental :func:`rolling_volatility`: running sums of the window's log returns and
    their squares, rebuilt exactly (``math.fsum``) once per ``period`` updates so rounding
    never accumulates. A price that is not positive gives a NaN return, and the value is NaN
    until that return has left the window and the sums were rebuilt."""

    __slots__ = ("_count", "_prev", "_sum", "_sum2", "_window", "period", "value")

    def __init__(self, period: int = 20) -> None:
        _check(period, 2)
        self.period = period
        self._window: deque[float] = deque()
        self._prev = math.nan
        self._sum = 0.0
        self._sum2 = 0.0
        self._count = 0
        self.value = math.nan

    def update(self, x: float) -> float:
        prev, self._prev = self._prev, x
        if prev != prev:
            return self.value
        r = math.log(x / prev) if x > 0 and prev > 0 else math.nan
        window = self._window
        window.append(r)
        self._sum += r
        self._sum2 += r * r
        if len(window) > self.period:
            old = window.popleft()
            self._sum -= old
            self._sum2 -= old * old
        self._count += 1
        if self._count % self.period == 0:
            self._sum = math.fsum(window)
            self._sum2 = math.fsum(v * v for v in window)
        n = len(window)
        if n == self.period:
            var = (self._sum2 - self._sum * self._sum / n) / (n - 1)
            self.value = math.sqrt(var) if var > 0 else (0.0 if var == var else math.nan)
        return self.value


class ZScore:
    """Incremental :func:`zscore` (running sums of x and x², population std)."""

    __slots__ = ("_bands", "value")

    def __init__(self, period: int = 20) -> None:
        self._bands = BollingerBands(period, 1.0)
        self.value = math.nan

    def update(self, x: float) -> float:
        _, middle, _ = self._bands.update(x)
        if middle == middle:
            std = self._bands.std
            self.value = (x - middle) / std if std > 0 else math.nan
        return self.value
