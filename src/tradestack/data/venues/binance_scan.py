"""A numba-compiled scanner for Binance ``depthUpdate`` frames: bytes in, columns out.

JSON libraries build a Python object per price level (two floats and a tuple), which caps a
bulk import near 30k messages/s for Binance's 50-70-level futures diffs. This scanner reads the
fixed shape of a depth frame directly from the bytes into numpy arrays. Decimal strings are
parsed as an integer mantissa divided by an exact power of ten: both operands are exact doubles
(mantissa < 2**53, at most 22 decimals), so the single IEEE division is correctly rounded and
equals Python's ``float(text)`` bit for bit. A frame that does not fit (other keys missing, a
number with too many digits, exponents, anything unexpected) is flagged and left to the generic
decoder; the scanner never guesses.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_POW10 = np.array([10.0**k for k in range(23)])

_Q = 34  # "
_COLON = 58
_LBRACK = 91
_RBRACK = 93
_COMMA = 44
_DOT = 46
_MINUS = 45


@njit(cache=True, nogil=True)
def _find(buf: np.ndarray, start: int, end: int, key: np.ndarray) -> int:
    """Index just after ``key`` in ``buf[start:end]``, or -1."""
    n = key.shape[0]
    i = start
    while i + n <= end:
        if buf[i] == key[0]:
            j = 1
            while j < n and buf[i + j] == key[j]:
                j += 1
            if j == n:
                return int(i + n)
        i += 1
    return -1


@njit(cache=True, nogil=True)
def _int_at(buf: np.ndarray, i: int, end: int) -> tuple[int, int]:
    """Parse an unquoted non-negative integer at ``i``; returns (value, next index) or (-1, -1)."""
    value = 0
    digits = 0
    while i < end and 48 <= buf[i] <= 57:
        value = value * 10 + (buf[i] - 48)
        digits += 1
        i += 1
    if digits == 0 or digits > 18:
        return -1, -1
    return value, i


@njit(cache=True, nogil=True)
def _decimal_at(buf: np.ndarray, i: int, end: int, pow10: np.ndarray) -> tuple[float, int]:
    """Parse ``"123.4500"`` starting at the opening quote; returns (value, index after quote)."""
    if i >= end or buf[i] != _Q:
        return -1.0, -1
    i += 1
    mantissa = 0
    digits = 0
    decimals = 0
    seen_dot = False
    while i < end and buf[i] != _Q:
        c = buf[i]
        if 48 <= c <= 57:
            mantissa = mantissa * 10 + (c - 48)
            if mantissa > 0:
                digits += 1
                if digits > 17:
                    return -1.0, -1
            if seen_dot:
                decimals += 1
        elif c == _DOT and not seen_dot:
            seen_dot = True
        else:
            return -1.0, -1
        i += 1
    if i >= end or decimals > 22 or mantissa >= 9007199254740992:
        return -1.0, -1
    return mantissa / pow10[decimals], i + 1


@njit(cache=True, nogil=True)
def _levels(
    buf: np.ndarray,
    i: int,
    end: int,
    prices: np.ndarray,
    sizes: np.ndarray,
    k: int,
    pow10: np.ndarray,
) -> tuple[int, int]:
    """Parse ``[["p","s"],...]`` at ``i`` into prices/sizes from slot ``k``; (next i, next k)."""
    if i >= end or buf[i] != _LBRACK:
        return -1, k
    i += 1
    if i < end and buf[i] == _RBRACK:
        return i + 1, k
    while i < end:
        if buf[i] != _LBRACK:
            return -1, k
        price, i = _decimal_at(buf, i + 1, end, pow10)
        if i < 0 or i >= end or buf[i] != _COMMA:
            return -1, k
        size, i = _decimal_at(buf, i + 1, end, pow10)
        if i < 0 or i >= end or buf[i] != _RBRACK:
            return -1, k
        if k >= prices.shape[0]:
            return -1, k
        prices[k] = price
        sizes[k] = size
        k += 1
        i += 1
        if i < end and buf[i] == _COMMA:
            i += 1
        elif i < end and buf[i] == _RBRACK:
            return i + 1, k
        else:
            return -1, k
    return -1, k


@njit(cache=True, nogil=True)
def scan_depth(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    keys: tuple[np.ndarray, ...],
    pow10: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scan frames ``buf[starts[m]:ends[m]]``.

    Returns ``header`` (m × 7: ok, E, T, U, u, n_bids, n_asks), ``prices``, ``sizes`` (levels in
    message order, bids then asks), and ``level_start`` (m) — the first level slot of each frame.
    """
    key_e, key_t, key_bu, key_lu, key_b, key_a = keys
    m = starts.shape[0]
    header = np.zeros((m, 7), dtype=np.int64)
    capacity = (ends - starts).sum() // 12 + 1
    prices = np.empty(capacity, dtype=np.float64)
    sizes = np.empty(capacity, dtype=np.float64)
    level_start = np.zeros(m, dtype=np.int64)
    k = 0
    for row in range(m):
        s = starts[row]
        e = ends[row]
        level_start[row] = k
        p = _find(buf, s, e, key_e)
        if p < 0:
            continue
        event_ms, _ = _int_at(buf, p, e)
        p = _find(buf, s, e, key_t)
        trade_ms = 0
        if p >= 0:
            trade_ms, _ = _int_at(buf, p, e)
        p = _find(buf, s, e, key_bu)
        first_id = -1
        if p >= 0:
            first_id, _ = _int_at(buf, p, e)
        p = _find(buf, s, e, key_lu)
        last_id = -1
        if p >= 0:
            last_id, _ = _int_at(buf, p, e)
        if event_ms < 0 or first_id < 0 or last_id < 0:
            continue
        # Binance sends the level lists last, bids first: look after the ids, then anywhere.
        after = max(p, s)
        p = _find(buf, after, e, key_b)
        if p < 0:
            p = _find(buf, s, e, key_b)
        if p < 0:
            continue
        k0 = k
        p, k = _levels(buf, p, e, prices, sizes, k, pow10)
        if p < 0:
            k = k0
            continue
        n_bids = k - k0
        q = _find(buf, p, e, key_a)
        p = q if q >= 0 else _find(buf, s, e, key_a)
        if p < 0:
            k = k0
            continue
        p, k = _levels(buf, p, e, prices, sizes, k, pow10)
        if p < 0:
            k = k0
            continue
        header[row, 0] = 1
        header[row, 1] = event_ms
        header[row, 2] = trade_ms
        header[row, 3] = first_id
        header[row, 4] = last_id
        header[row, 5] = n_bids
        header[row, 6] = k - k0 - n_bids
    return header, prices[:k], sizes[:k], level_start


def _key(text: str) -> np.ndarray:
    return np.frombuffer(text.encode(), dtype=np.uint8).copy()


KEYS = (_key('"E":'), _key('"T":'), _key('"U":'), _key('"u":'), _key('"b":'), _key('"a":'))
POW10 = _POW10
