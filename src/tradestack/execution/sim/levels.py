"""Dense price-level arrays: set a level, keep track of the best bid and ask, the mid."""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from tradestack.execution.sim.layout import PF_BASE, PF_TICK


@njit(cache=True)
def _best_bid_from(book: np.ndarray, row: int, start: int) -> int:
    t = start
    while t >= 0 and book[row, t] <= 0.0:
        t -= 1
    return t


@njit(cache=True)
def _best_ask_from(book: np.ndarray, row: int, start: int) -> int:
    n = book.shape[1]
    t = start
    while t < n and book[row, t] <= 0.0:
        t += 1
    return t


@njit(cache=True, inline="always")
def _set_level(book, row, tick, qty, bb, ba, is_bid):
    """Set one level; returns the new (best bid, best ask) of that side's row pair."""
    book[row, tick] = qty
    if is_bid:
        if qty > 0.0:
            if tick > bb:
                bb = tick
        elif tick == bb:
            bb = _best_bid_from(book, row, tick - 1)
    else:
        if qty > 0.0:
            if tick < ba:
                ba = tick
        elif tick == ba:
            ba = _best_ask_from(book, row, tick + 1)
    return bb, ba


@njit(cache=True)
def _mid(s: np.ndarray, book: np.ndarray, pf: np.ndarray, bb_i: int, ba_i: int) -> float:
    bb, ba = s[bb_i], s[ba_i]
    if bb < 0 or ba >= book.shape[1]:
        return math.nan
    return (pf[PF_BASE] + 0.5 * (bb + ba)) * pf[PF_TICK]
