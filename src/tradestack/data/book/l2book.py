"""A price-level (L2) order book: one size per price per side, best levels in O(1)."""

from __future__ import annotations

from bisect import bisect_left, insort

from tradestack.core.events import OrderBookSnapshot
from tradestack.core.ids import InstrumentId


class L2Book:
    """Aggregated depth of one instrument, kept as a dict per side plus a sorted price list.

    ``apply(is_bid, price, size)`` sets a level; size 0 removes it (removing an absent level is a
    no-op, as every venue's diff semantics require). Prices are the venue's decimals parsed to
    float: equal strings give equal floats, so levels match exactly across updates.
    """

    __slots__ = (
        "_ask_prices",
        "_asks",
        "_bid_prices",
        "_bids",
        "instrument_id",
        "sequence",
        "ts_event_ns",
        "ts_recv_ns",
    )

    def __init__(self, instrument_id: InstrumentId) -> None:
        self.instrument_id = instrument_id
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        self._bid_prices: list[float] = []  # ascending; best bid is last
        self._ask_prices: list[float] = []  # ascending; best ask is first
        self.sequence = 0
        self.ts_event_ns = 0
        self.ts_recv_ns = 0

    def clear(self) -> None:
        """Remove every level (before a snapshot is loaded)."""
        self._bids.clear()
        self._asks.clear()
        self._bid_prices.clear()
        self._ask_prices.clear()

    def apply(self, is_bid: bool, price: float, size: float) -> None:
        """Set the size at ``price``; ``size == 0`` deletes the level."""
        levels, prices = (
            (self._bids, self._bid_prices) if is_bid else (self._asks, self._ask_prices)
        )
        if size > 0.0:
            if price not in levels:
                insort(prices, price)
            levels[price] = size
        elif price in levels:
            del levels[price]
            del prices[bisect_left(prices, price)]

    def load(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
        """Replace the whole book with a snapshot (zero sizes are skipped)."""
        self.clear()
        self._bids.update((p, s) for p, s in bids if s > 0.0)
        self._asks.update((p, s) for p, s in asks if s > 0.0)
        self._bid_prices.extend(sorted(self._bids))
        self._ask_prices.extend(sorted(self._asks))

    def truncate(self, depth: int) -> None:
        """Keep only the best ``depth`` levels per side (venues that publish a fixed depth)."""
        while len(self._bid_prices) > depth:
            del self._bids[self._bid_prices.pop(0)]
        while len(self._ask_prices) > depth:
            del self._asks[self._ask_prices.pop()]

    def best_bid(self) -> tuple[float, float] | None:
        if not self._bid_prices:
            return None
        price = self._bid_prices[-1]
        return price, self._bids[price]

    def best_ask(self) -> tuple[float, float] | None:
        if not self._ask_prices:
            return None
        price = self._ask_prices[0]
        return price, self._asks[price]

    def is_crossed(self) -> bool:
        """True when best bid >= best ask (crossed or locked): never a valid book to publish."""
        return bool(
            self._bid_prices and self._ask_prices and self._bid_prices[-1] >= self._ask_prices[0]
        )

    def bids(self, depth: int | None = None) -> list[tuple[float, float]]:
        """Bid levels best first (descending price)."""
        prices = self._bid_prices if depth is None else self._bid_prices[-depth:]
        return [(p, self._bids[p]) for p in reversed(prices)]

    def asks(self, depth: int | None = None) -> list[tuple[float, float]]:
        """Ask levels best first (ascending price)."""
        prices = self._ask_prices if depth is None else self._ask_prices[:depth]
        return [(p, self._asks[p]) for p in prices]

    def size_at(self, is_bid: bool, price: float) -> float:
        return (self._bids if is_bid else self._asks).get(price, 0.0)

    def equals(self, bids: dict[float, float], asks: dict[float, float]) -> bool:
        """Whether the book holds exactly these levels (dict comparison, O(levels))."""
        return self._bids == bids and self._asks == asks

    def depth(self) -> tuple[int, int]:
        """Number of (bid, ask) levels."""
        return len(self._bid_prices), len(self._ask_prices)

    def snapshot(self, depth: int | None = None) -> OrderBookSnapshot:
        """Immutable copy of the book as a domain event."""
        return OrderBookSnapshot(
            instrument_id=self.instrument_id,
            ts_event_ns=self.ts_event_ns,
            ts_recv_ns=self.ts_recv_ns,
            bids=tuple(self.bids(depth)),
            asks=tuple(self.asks(depth)),
            sequence=self.sequence,
        )
