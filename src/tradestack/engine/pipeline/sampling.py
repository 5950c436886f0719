"""Decision steps from an order-book replay: the book as the strategy receives it, sampled on a
fixed grid of the receive clock, plus the trades received since the previous step.

:func:`sample_book` builds every step at once (research, batch mode) by replaying the feed
through a venue nobody trades on; :class:`BookStepper` builds the same row from the live
:class:`BookView` one step at a time (replay, paper and live). Both go through
:func:`book_row`, and the grid is the one the L2 engine's timers fire on (``start + k *
interval`` for k = 1, 2, ... while the feed lasts), so both paths read identical inputs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from tradestack.core.events import AggressorSide, TradeTick
from tradestack.core.instruments import Instrument
from tradestack.execution.sim import layout as c
from tradestack.execution.sim.book_view import BookView
from tradestack.execution.sim.config import L2VenueConfig
from tradestack.execution.sim.feed import TRADE, L2Feed
from tradestack.execution.sim.venue import L2SimVenue
from tradestack.features.registry import BOOK_COLUMNS
from tradestack.portfolio.account import Portfolio

NAN = math.nan


def book_row(
    view: BookView,
    depth: int,
    buy_qty: float,
    sell_qty: float,
    buy_notional: float,
    sell_notional: float,
) -> list[Any]:
    """One step's base values in :data:`BOOK_COLUMNS` order (missing levels: NaN price, 0 size)."""
    bids = view.bids(depth)
    asks = view.asks(depth)
    bid_px = [p for p, _ in bids] + [NAN] * (depth - len(bids))
    bid_sz = [q for _, q in bids] + [0.0] * (depth - len(bids))
    ask_px = [p for p, _ in asks] + [NAN] * (depth - len(asks))
    ask_sz = [q for _, q in asks] + [0.0] * (depth - len(asks))
    bid, ask = bid_px[0], ask_px[0]
    mid = (bid + ask) / 2.0
    return [
        bid_px,
        bid_sz,
        ask_px,
        ask_sz,
        bid,
        bid_sz[0],
        ask,
        ask_sz[0],
        mid,
        mid,
        buy_qty,
        sell_qty,
        buy_notional,
        sell_notional,
        buy_qty + sell_qty,
    ]


@dataclass(frozen=True)
class BookSteps:
    """Every decision step of a replay: grid times and base columns (level columns 2-D)."""

    ts_ns: np.ndarray
    columns: dict[str, np.ndarray]
    end_ns: int
    """The last exchange or receive time in the feed: the engine fires no step at or after it."""

    def __len__(self) -> int:
        return len(self.ts_ns)

    def two_sided(self) -> BookSteps:
        """The steps whose book had both sides (the pipeline skips the others)."""
        keep = np.isfinite(self.columns["mid"])
        return BookSteps(
            self.ts_ns[keep], {k: v[keep] for k, v in self.columns.items()}, self.end_ns
        )


def sample_book(
    feed: L2Feed,
    instrument: Instrument,
    venue: L2VenueConfig,
    interval_ns: int,
    depth: int,
) -> BookSteps:
    """Replay ``feed`` once without orders and take a :func:`book_row` at every grid time."""
    if interval_ns <= 0:
        raise ValueError(f"interval must be positive, got {interval_ns} ns")
    silent = L2SimVenue(
        feed, instrument, venue, Portfolio(Decimal(1)), lambda _o, _e: None, wake_mask=0
    )
    flows = _trade_flows(silent, interval_ns)
    rows: list[list[Any]] = []
    times: list[int] = []
    t = silent.start_ns + interval_ns
    while silent.advance(t) != c.W_END:
        k = len(rows)
        if k < len(flows[0]):
            b, s, bn, sn = (float(f[k]) for f in flows)
        else:
            b = s = bn = sn = 0.0
        rows.append(book_row(silent.view, depth, b, s, bn, sn))
        times.append(t)
        t += interval_ns
    columns: dict[str, np.ndarray] = {}
    for j, name in enumerate(BOOK_COLUMNS):
        columns[name] = np.array([r[j] for r in rows], dtype=np.float64)
        if columns[name].ndim == 1 and j < 4:
            columns[name] = columns[name].reshape(0, depth)
    end = int(max(silent._exch_ts.max(), silent._local_ts.max()))
    return BookSteps(np.array(times, dtype=np.int64), columns, end)


def _trade_flows(venue: L2SimVenue, interval_ns: int) -> tuple[np.ndarray, ...]:
    """Buy/sell quantity and notional per step of the trades the strategy would receive,
    summed in receive order (the order :class:`BookStepper` adds them in)."""
    order = venue._local_order
    kind = venue._kind[order]
    keep = (kind == TRADE) & (venue._ticks[order] >= 0)
    rows = order[keep]
    ts = venue._local_ts[rows]
    if not len(rows):
        return tuple(np.zeros(0) for _ in range(4))
    start = venue.start_ns
    # a trade received at exactly a grid time is seen before that step's timer fires
    step = np.maximum((ts - start + interval_ns - 1) // interval_ns - 1, 0).astype(np.int64)
    n = int(step.max()) + 1
    qty = venue._qty[rows].astype(np.float64)
    px = venue._px[rows].astype(np.float64)
    buyer = venue._side[rows] > 0
    notional = np.array([float(p) * float(q) for p, q in zip(px, qty, strict=True)])
    return (
        np.bincount(step, weights=np.where(buyer, qty, 0.0), minlength=n),
        np.bincount(step, weights=np.where(buyer, 0.0, qty), minlength=n),
        np.bincount(step, weights=np.where(buyer, notional, 0.0), minlength=n),
        np.bincount(step, weights=np.where(buyer, 0.0, notional), minlength=n),
    )


class ReferenceBook:
    """Another venue's book, read but not traded (for cross-venue features): replayed up to each
    step's time as it was received, the same way in both paths."""

    __slots__ = ("_ended", "_venue")

    def __init__(self, feed: L2Feed, instrument: Instrument, venue: L2VenueConfig) -> None:
        self._venue = L2SimVenue(
            feed, instrument, venue, Portfolio(Decimal(1)), lambda _o, _e: None, wake_mask=0
        )
        self._ended = False

    def mid_at(self, ts_ns: int) -> float:
        """The reference mid as received by ``ts_ns`` (its last mid once its feed has ended)."""
        if not self._ended:
            self._ended = self._venue.advance(ts_ns) == c.W_END
        return self._venue.view.mid

    def mids(self, times: np.ndarray) -> np.ndarray:
        """:meth:`mid_at` for every time, in order."""
        return np.array([self.mid_at(int(t)) for t in times], dtype=np.float64)


class BookStepper:
    """Builds decision-step rows from live events: trades as they arrive, the book at each step."""

    __slots__ = ("buy_notional", "buy_qty", "depth", "sell_notional", "sell_qty")

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self.buy_qty = self.sell_qty = self.buy_notional = self.sell_notional = 0.0

    def on_trade(self, trade: TradeTick) -> None:
        notional = trade.price * trade.size
        if trade.aggressor is AggressorSide.BUYER:
            self.buy_qty += trade.size
            self.buy_notional += notional
        else:
            self.sell_qty += trade.size
            self.sell_notional += notional

    def row(self, view: BookView) -> list[Any]:
        """This step's row; the trade sums start again from zero."""
        row = book_row(
            view, self.depth, self.buy_qty, self.sell_qty, self.buy_notional, self.sell_notional
        )
        self.reset()
        return row

    def reset(self) -> None:
        """Forget the trades since the previous step (a step that is skipped)."""
        self.buy_qty = self.sell_qty = self.buy_notional = self.sell_notional = 0.0
