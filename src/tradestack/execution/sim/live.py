"""The L2 simulated venue on a feed that grows while it runs: paper trading on a live stream.

:class:`LiveL2Venue` is :class:`~tradestack.execution.sim.venue.L2SimVenue` whose event arrays
are buffers with room to grow: :meth:`LiveL2Venue.extend` appends the rows of newly received
messages, and the compiled core carries on from its cursors, so a session fed in pieces replays
exactly like the same rows given at once. The price grid is fixed by the first rows (a band of
``price_band`` around them); later rows outside it are dropped as in a backtest.

Rows must come in exchange-time order (:class:`ReorderBuffer` restores it for streams that
interleave), and each :meth:`extend` must hold whole venue messages. The receive clock is the
modelled one (``feed_latency_ns``) or the rows' own receive times, kept non-decreasing.
"""

from __future__ import annotations

import numpy as np

from tradestack.core.instruments import Instrument
from tradestack.data.errors import DataValidationError
from tradestack.execution.sim.config import L2VenueConfig
from tradestack.execution.sim.feed import CLEAR, FUNDING, L2_EVENT, TRADE, L2Feed
from tradestack.execution.sim.venue import EventSink, L2SimVenue
from tradestack.portfolio.account import Portfolio

_COLUMNS = ("exch_ts", "local_ts", "kind", "side", "qty", "px", "ival", "ticks", "order", "ends")


class LiveL2Venue(L2SimVenue):
    """The L2 venue over a growing feed (see the module docstring)."""

    def __init__(
        self,
        first: L2Feed,
        instrument: Instrument,
        config: L2VenueConfig,
        portfolio: Portfolio,
        sink: EventSink,
        *,
        wake_mask: int = 0,
    ) -> None:
        super().__init__(first, instrument, config, portfolio, sink, wake_mask=wake_mask)
        self._n = len(first)
        self._buffers: dict[str, np.ndarray] = {}
        for name, array in zip(_COLUMNS, self._arrays(), strict=True):
            buffer = np.empty(max(4096, 2 * self._n), dtype=array.dtype)
            buffer[: self._n] = array
            self._buffers[name] = buffer
        self._bind()

    def _arrays(self) -> tuple[np.ndarray, ...]:
        return (
            self._exch_ts, self._local_ts, self._kind, self._side, self._qty, self._px,
            self._ival, self._ticks, self._local_order, self._msg_end,
        )  # fmt: skip

    def _bind(self) -> None:
        n, b = self._n, self._buffers
        self._exch_ts, self._local_ts = b["exch_ts"][:n], b["local_ts"][:n]
        self._kind, self._side = b["kind"][:n], b["side"][:n]
        self._qty, self._px, self._ival = b["qty"][:n], b["px"][:n], b["ival"][:n]
        self._ticks, self._local_order, self._msg_end = (
            b["ticks"][:n],
            b["order"][:n],
            b["ends"][:n],
        )

    @property
    def size(self) -> int:
        """Rows received so far."""
        return self._n

    @property
    def last_exch_ns(self) -> int:
        return int(self._exch_ts[-1])

    def extend(self, rows: np.ndarray) -> None:
        """Append the rows of whole messages (dtype ``L2_EVENT``), in exchange-time order and
        not before the rows already held; a :class:`ValueError` names the first row that is."""
        if rows.dtype != L2_EVENT:
            raise ValueError(f"rows must have the L2_EVENT dtype, got {rows.dtype}")
        k = len(rows)
        if not k:
            return
        exch = rows["exch_ts"]
        last = int(self._exch_ts[-1])
        if exch[0] < last or (k > 1 and bool((exch[1:] < exch[:-1]).any())):
            behind = np.flatnonzero(np.diff(exch, prepend=last) < 0)
            i = int(behind[0])
            raise ValueError(
                f"row {i} of the new rows is stamped {int(exch[i])} ns, before the "
                f"{last if i == 0 else int(exch[i - 1])} ns already taken: the "
                "venue replays rows in exchange-time order (see ReorderBuffer)"
            )
        if self.config.feed_latency_ns is None:
            local = np.maximum.accumulate(np.maximum(rows["local_ts"], self._local_ts.max()))
        else:
            local = exch + self.config.feed_latency_ns
        kind = rows["kind"]
        new = {
            "exch_ts": exch,
            "local_ts": local,
            "kind": kind,
            "side": rows["side"],
            "qty": rows["qty"],
            "px": rows["px"],
            "ival": rows["ival"],
            "ticks": self._ticks_of(rows),
            "order": np.arange(self._n, self._n + k, dtype=np.int64),
            "ends": _ends_in_order(exch, local, kind),
        }
        need = self._n + k
        for name, values in new.items():
            buffer = self._buffers[name]
            if len(buffer) < need:
                grown = np.empty(max(need, 2 * len(buffer)), dtype=buffer.dtype)
                grown[: self._n] = buffer[: self._n]
                self._buffers[name] = buffer = grown
            buffer[self._n : need] = values
        self._n = need
        self._bind()
        self._grow_samples(int(local.max()))

    def _ticks_of(self, rows: np.ndarray) -> np.ndarray:
        tick = self._tick_f
        book = (rows["kind"] != FUNDING) & (rows["kind"] != CLEAR)
        ratio = rows["px"] / tick
        off = book & (np.abs(ratio - np.rint(ratio)) > 1e-6)
        if off.any():
            bad = float(rows["px"][np.flatnonzero(off)[0]])
            raise DataValidationError(
                str(self.instrument.id),
                f"price {bad!r} is not on the instrument's tick grid ({self._tick})",
            )
        ticks = np.rint(ratio).astype(np.int64) - self.base
        ticks[(ticks < 0) | (ticks >= self.book.shape[1]) | ~book] = -1
        return ticks

    def _grow_samples(self, until_ns: int) -> None:
        interval = self.config.sample_interval_ns
        need = (until_ns - self.sample_start) // interval + 2
        if need > len(self.samples):
            grown = np.full(max(need, 2 * len(self.samples)), np.nan)
            grown[: len(self.samples)] = self.samples
            self.samples = grown

    def stats(self) -> dict[str, int]:
        out = super().stats()
        out["feed_rows"] = self._n
        return out


def _ends_in_order(exch: np.ndarray, local: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """``_message_ends`` for rows already in receive order: 1 where a book row is the last of
    its venue message (the next row is not a book row of the same two timestamps)."""
    book = (kind != TRADE) & (kind != FUNDING)
    ends = np.ones(len(kind), dtype=np.uint8)
    if len(kind) > 1:
        same = (local[1:] == local[:-1]) & (exch[1:] == exch[:-1]) & book[1:] & book[:-1]
        ends[:-1] = ~same
    return ends


class ReorderBuffer:
    """Puts rows from interleaved streams (depth, trades) back in exchange-time order.

    Rows are held until the newest exchange time seen is ``hold_ns`` past them, then released
    sorted by exchange time (ties in arrival order). A row that arrives after rows stamped later
    than it were released is stamped with the last released time and counted in ``late``.
    ``released_ns``: rows up to this time were replayed already (the rows a session started with).
    """

    def __init__(self, hold_ns: int = 0, *, released_ns: int | None = None) -> None:
        if hold_ns < 0:
            raise ValueError(f"hold_ns must be >= 0, got {hold_ns}")
        self.hold_ns = hold_ns
        self._held: list[np.ndarray] = []
        self._released = -(2**62) if released_ns is None else released_ns
        self._newest = self._released
        self.late = 0

    def push(self, rows: np.ndarray) -> np.ndarray:
        """Take newly received rows; return the rows now safe to replay, in order."""
        if not self.hold_ns and not self._held and len(rows):
            exch = rows["exch_ts"]
            in_order = len(rows) == 1 or not bool((exch[1:] < exch[:-1]).any())
            if in_order and exch[0] >= self._released:  # nothing to hold or sort
                self._newest = self._released = max(self._newest, int(exch[-1]))
                return rows
        if len(rows):
            self._held.append(rows)
            self._newest = max(self._newest, int(rows["exch_ts"].max()))
        return self._release(self._newest - self.hold_ns)

    def flush(self) -> np.ndarray:
        """Everything still held (the stream ended)."""
        return self._release(2**62)

    def _release(self, upto: int) -> np.ndarray:
        if not self._held:
            return np.empty(0, dtype=L2_EVENT)
        rows = np.concatenate(self._held)
        late = rows["exch_ts"] < self._released
        if late.any():
            self.late += int(late.sum())
            rows["exch_ts"][late] = self._released
        order = np.argsort(rows["exch_ts"], kind="stable")
        rows = rows[order]
        cut = int(np.searchsorted(rows["exch_ts"], upto, side="right"))
        out, rest = rows[:cut], rows[cut:]
        self._held = [rest] if len(rest) else []
        if len(out):
            self._released = int(out["exch_ts"][-1])
        return out
