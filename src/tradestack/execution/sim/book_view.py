"""What a strategy sees of an L2 book: the book as received, read straight from the core."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradestack.execution.sim import layout as c

if TYPE_CHECKING:
    from tradestack.execution.sim.venue import L2SimVenue


class BookView:
    """Read-only view of one instrument's book as the strategy has received it.

    Prices and sizes are floats (market data); NaN when a side is empty. The view is live:
    it always shows the latest received state, so copy what you need to keep.
    """

    __slots__ = ("_base", "_digits", "_tick", "_venue")

    def __init__(self, venue: L2SimVenue) -> None:
        self._venue = venue
        self._base = int(venue.base)
        self._tick = float(venue.instrument.tick_size)
        exponent = venue.instrument.tick_size.normalize().as_tuple().exponent
        self._digits = max(0, -exponent) if isinstance(exponent, int) else 12

    def _price(self, tick: int) -> float:
        return round((self._base + tick) * self._tick, self._digits)

    @property
    def best_bid(self) -> float:
        t = int(self._venue.s[c.S_LO_BB])
        return self._price(t) if t >= 0 else float("nan")

    @property
    def best_ask(self) -> float:
        t = int(self._venue.s[c.S_LO_BA])
        return self._price(t) if t < self._venue.book.shape[1] else float("nan")

    @property
    def best_bid_size(self) -> float:
        t = int(self._venue.s[c.S_LO_BB])
        return float(self._venue.book[c.LOB, t]) if t >= 0 else 0.0

    @property
    def best_ask_size(self) -> float:
        t = int(self._venue.s[c.S_LO_BA])
        return float(self._venue.book[c.LOA, t]) if t < self._venue.book.shape[1] else 0.0

    @property
    def mid(self) -> float:
        return (self.best_bid + self.best_ask) / 2

    @property
    def spread(self) -> float:
        return self.best_ask - self.best_bid

    def bids(self, depth: int = 10) -> list[tuple[float, float]]:
        """Up to ``depth`` bid levels, best first."""
        return self._levels(c.LOB, int(self._venue.s[c.S_LO_BB]), -1, depth)

    def asks(self, depth: int = 10) -> list[tuple[float, float]]:
        """Up to ``depth`` ask levels, best first."""
        return self._levels(c.LOA, int(self._venue.s[c.S_LO_BA]), 1, depth)

    def _levels(self, row: int, start: int, step: int, depth: int) -> list[tuple[float, float]]:
        book = self._venue.book[row]
        out: list[tuple[float, float]] = []
        t = start
        while 0 <= t < len(book) and len(out) < depth:
            if book[t] > 0.0:
                out.append((self._price(t), float(book[t])))
            t += step
        return out

    def imbalance(self, depth: int = 5) -> float:
        """(bid size - ask size) / (bid size + ask size) over the top ``depth`` levels."""
        bid = sum(size for _, size in self.bids(depth))
        ask = sum(size for _, size in self.asks(depth))
        return (bid - ask) / (bid + ask) if bid + ask > 0 else 0.0
