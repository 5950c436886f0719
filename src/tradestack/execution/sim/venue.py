"""The L2 simulated venue: our orders against a recorded book, with queue, latency and costs.

Python keeps the order objects, fees and funding in exact Decimals; the compiled core
(:mod:`.core`) keeps both books, the exchange-side order state and the time-ordered queues.
``submit``/``cancel`` only enqueue a request that reaches the matching engine after the entry
latency; what the venue answers comes back through :meth:`L2SimVenue.deliver` after the
response latency, as ordinary order events.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from tradestack.core.events import AggressorSide, QuoteTick, TradeTick
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.orders import (
    Fill,
    Liquidity,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderRejected,
    OrderSubmitted,
    OrderType,
    TimeInForce,
)
from tradestack.data.errors import DataValidationError
from tradestack.execution.costs import FeeModel
from tradestack.execution.sim import core
from tradestack.execution.sim import layout as c
from tradestack.execution.sim.book_view import BookView
from tradestack.execution.sim.config import L2VenueConfig
from tradestack.execution.sim.feed import CLEAR, FUNDING, TRADE, L2Feed
from tradestack.portfolio.account import Portfolio

EventSink = Callable[[Order, OrderEvent], None]
MAX_GRID_TICKS = 20_000_000

_WHY = {
    c.WHY_NO_LIQUIDITY: "no liquidity left on the other side of the book",
    c.WHY_WALK_LIMIT: "market order remainder after the max_walk_levels deepest levels",
    c.WHY_IOC: "IOC remainder canceled",
    c.WHY_FOK: "FOK order could not fill completely",
    c.WHY_POST_ONLY: "post-only limit would take liquidity",
}
_TIF = {
    TimeInForce.GTC: c.TIF_GTC,
    TimeInForce.IOC: c.TIF_IOC,
    TimeInForce.FOK: c.TIF_FOK,
}
_QUEUE = {"fifo": c.Q_FIFO, "pro_rata": c.Q_PRO_RATA, "power": c.Q_POWER, "log": c.Q_LOG}


@dataclass(frozen=True, slots=True)
class Execution:
    """One fill as the venue saw it: when, where in the queue, and what the mid did after."""

    fill: Fill
    exch_ts_ns: int
    local_ts_ns: int
    queue_ahead: float
    mid_at_fill: float
    mid_after: float

    def adverse_bps(self) -> float:
        """How far the mid moved against the fill by the toxic horizon, in bps (NaN if unknown)."""
        price = float(self.fill.price)
        if math.isnan(self.mid_after) or price <= 0:
            return math.nan
        return -self.fill.side.sign * (self.mid_after - price) / price * 1e4


class L2SimVenue:
    """Matches one instrument's orders against a recorded L2 feed (see module docstring)."""

    def __init__(
        self,
        feed: L2Feed,
        instrument: Instrument,
        config: L2VenueConfig,
        portfolio: Portfolio,
        sink: EventSink,
        *,
        wake_mask: int = 0,
    ) -> None:
        if feed.instrument_id != instrument.id:
            raise ValueError(f"feed of {feed.instrument_id} given for instrument {instrument.id}")
        if not len(feed):
            raise ValueError(f"the feed of {instrument.id} is empty")
        self.feed = feed
        self.instrument = instrument
        self.config = config
        self.portfolio = portfolio
        self._sink = sink
        self._fees = FeeModel(config.maker_fee_bps, config.taker_fee_bps)
        self._rng = np.random.default_rng(config.seed)
        self._lot = instrument.lot_size
        self._tick = instrument.tick_size
        self._tick_f = float(instrument.tick_size)
        events = feed.events
        self._exch_ts = np.ascontiguousarray(events["exch_ts"])
        if config.feed_latency_ns is None:
            self._local_ts = np.ascontiguousarray(events["local_ts"])
            self._local_order = feed.local_order
        else:
            self._local_ts = self._exch_ts + config.feed_latency_ns
            self._local_order = np.arange(len(events), dtype=np.int64)
        self._kind = np.ascontiguousarray(events["kind"])
        self._msg_end = _message_ends(events, self._local_order)
        self._side = np.ascontiguousarray(events["side"])
        self._qty = np.ascontiguousarray(events["qty"])
        self._px = np.ascontiguousarray(events["px"])
        self._ival = np.ascontiguousarray(events["ival"])
        self.base, n_ticks, self._ticks = self._grid(events)
        self.book = np.zeros((4, n_ticks), dtype=np.float64)
        self.s = np.zeros(c.S_SIZE, dtype=np.int64)
        self.s[[c.S_EX_BB, c.S_LO_BB]] = -1
        self.s[[c.S_EX_BA, c.S_LO_BA]] = n_ticks
        self.s[[c.S_NEXT_RESP, c.S_NEXT_REQ]] = c.INT_MAX
        self.sf = np.zeros(c.F_SIZE, dtype=np.float64)
        self.p = np.zeros(c.P_SIZE, dtype=np.int64)
        self.p[c.P_MASK] = wake_mask
        self.p[c.P_QUEUE] = _QUEUE[config.queue_model]
        self.p[c.P_DEPLETE] = int(config.consume_liquidity)
        self.p[c.P_SAMPLE_NS] = config.sample_interval_ns
        self.p[c.P_PROBE_NS] = config.toxic_horizon_ns
        self.p[c.P_MAX_WALK] = config.max_walk_levels
        self.pf = np.zeros(c.PF_SIZE, dtype=np.float64)
        self.pf[c.PF_LOT] = float(self._lot)
        self.pf[c.PF_TICK] = float(self._tick)
        self.pf[c.PF_BASE] = float(self.base)
        self.pf[c.PF_IMPACT_Y] = config.impact_coefficient
        self.pf[c.PF_SIGMA] = config.impact_daily_volatility
        self.pf[c.PF_ADV] = config.impact_daily_volume
        self.pf[c.PF_QUEUE_N] = config.queue_power
        self.oi = np.zeros((256, c.O_COLS), dtype=np.int64)
        self.of = np.zeros((256, c.OF_COLS), dtype=np.float64)
        self.active = np.zeros(256, dtype=np.int64)
        self.qi = np.zeros((256, c.Q_COLS), dtype=np.int64)
        self.ri = np.zeros((4096 + config.max_walk_levels, c.R_COLS), dtype=np.int64)
        self.rf = np.zeros((4096 + config.max_walk_levels, c.RF_COLS), dtype=np.float64)
        # response latencies are drawn up front and used in turn (period 65,536)
        self._lat = config.response_latency.sample(self._rng, instrument.id.venue, 1 << 16)
        self._entry_lat: list[int] = []
        self._entry_cursor = 0
        start = int(self._local_ts.min())
        interval = config.sample_interval_ns
        self.sample_start = -(-start // interval) * interval
        span = int(self._local_ts.max()) - self.sample_start
        self.samples = np.full(max(span // interval + 2, 1), np.nan)
        self.s[c.S_NEXT_SAMPLE] = self.sample_start
        self.orders: list[Order] = []
        self._slot: dict[str, int] = {}
        self._cancel_sent: set[int] = set()
        self._open: dict[int, Order] = {}
        self.executions: list[tuple[Fill, int, int]] = []
        self.cancel_rejects = 0
        self.on_funding: Callable[[int], None] | None = None
        self.view = BookView(self)

    # -- price grid -----------------------------------------------------------------------------
    def _grid(self, events: np.ndarray) -> tuple[int, int, np.ndarray]:
        """Tick indices for every row over a band around the traded (or quoted) prices.

        Levels outside the band are far from the touch (Binance streams levels at 1% of the
        price); they are dropped instead of allocating millions of empty ticks.
        """
        tick = float(self._tick)
        book = (events["kind"] != FUNDING) & (events["kind"] != CLEAR)
        px = events["px"][book]
        if not len(px):
            raise DataValidationError(
                str(self.instrument.id), "the feed has no book or trade rows to match against"
            )
        ratio = px / tick
        off = np.abs(ratio - np.rint(ratio)) > 1e-6
        if off.any():
            bad = float(px[np.flatnonzero(off)[0]])
            raise DataValidationError(
                str(self.instrument.id),
                f"price {bad!r} is not on the instrument's tick grid ({self._tick}); "
                "set tick_size to the venue's",
            )
        traded = events["px"][events["kind"] == TRADE]
        ref = traded if len(traded) else px
        band = self.config.price_band
        lo = float(ref.min()) * (1 - band)
        hi = float(ref.max()) * (1 + band)
        base = math.floor(lo / tick)
        n_ticks = math.ceil(hi / tick) - base + 1
        if n_ticks > MAX_GRID_TICKS:
            raise ValueError(
                f"{self.instrument.id}: a price band of ±{band:.0%} around {ref.min()}..."
                f"{ref.max()} is {n_ticks:,} ticks of {self._tick}; lower price_band"
            )
        ticks = np.rint(events["px"] / tick).astype(np.int64) - base
        outside = (ticks < 0) | (ticks >= n_ticks) | ~book
        ticks[outside] = -1
        return base, n_ticks, ticks

    def seed_position(self, qty: Decimal) -> None:
        """The venue-side position at the start (for funding), in the instrument's lots."""
        self.s[c.S_POS] = int(qty / self._lot)

    def price_of(self, tick: int) -> Decimal:
        """The exact price of a grid tick."""
        return (self.base + tick) * self._tick

    # -- requests -------------------------------------------------------------------------------
    def submit(self, order: Order, now_ns: int) -> None:
        """Validate and send a new order; it reaches the matching engine after entry latency."""
        self._sink(order, OrderSubmitted(order.client_order_id, now_ns))
        tick, reason = self._check(order)
        if reason:
            self._sink(order, OrderRejected(order.client_order_id, now_ns, reason))
            return
        slot = len(self.orders)
        if slot >= len(self.oi):
            self.oi = _grown(self.oi)
            self.of = _grown(self.of)
            self.active = _grown(self.active)
        row = self.oi[slot]
        row[:] = 0
        row[c.O_SIDE] = order.side.sign
        row[c.O_TICK] = tick
        row[c.O_LOTS] = row[c.O_LEAVES] = int(order.qty / self._lot)
        row[c.O_STATUS] = c.ST_IN_FLIGHT
        row[c.O_TYPE] = c.T_MARKET if order.order_type is OrderType.MARKET else c.T_LIMIT
        row[c.O_TIF] = c.TIF_POST if order.post_only else _TIF[order.time_in_force]
        self.orders.append(order)
        self._open[slot] = order
        self._slot[order.client_order_id] = slot
        self._request(now_ns, slot, c.REQ_NEW)

    def cancel(self, order: Order, now_ns: int) -> bool:
        """Send a cancel; False when the order is not open or a cancel is already on its way."""
        slot = self._slot.get(order.client_order_id)
        if slot is None or not order.is_open or slot in self._cancel_sent:
            return False
        self._cancel_sent.add(slot)
        self._request(now_ns, slot, c.REQ_CANCEL)
        return True

    def cancel_pending(self, order: Order) -> bool:
        """Whether a cancel for ``order`` was sent (it may still fill until the cancel lands)."""
        slot = self._slot.get(order.client_order_id)
        return slot is not None and slot in self._cancel_sent

    def _request(self, now_ns: int, slot: int, kind: int) -> None:
        k = int(self.s[c.S_N_REQ])
        if k >= len(self.qi):
            self.qi = _grown(self.qi)
        if self._entry_cursor == len(self._entry_lat):
            entry = self.config.entry_latency
            self._entry_lat = entry.sample(self._rng, self.instrument.id.venue, 4096).tolist()
            self._entry_cursor = 0
        arrival = now_ns + self._entry_lat[self._entry_cursor]
        self._entry_cursor += 1
        row = self.qi[k]
        row[c.Q_TS] = arrival
        row[c.Q_ORDER] = slot
        row[c.Q_KIND] = kind
        row[c.Q_DONE] = 0
        self.s[c.S_N_REQ] = k + 1
        if arrival < self.s[c.S_NEXT_REQ]:
            self.s[c.S_NEXT_REQ] = arrival

    def _check(self, order: Order) -> tuple[int, str]:
        inst = self.instrument
        if order.instrument_id != inst.id:
            return -1, f"this venue trades {inst.id}, not {order.instrument_id}"
        if order.order_type in (OrderType.STOP, OrderType.STOP_LIMIT):
            return -1, "stop orders are not supported by the L2 simulated venue"
        if order.time_in_force is TimeInForce.DAY:
            return -1, "DAY orders are not supported by the L2 simulated venue (24/7 market)"
        if not inst.is_lot_multiple(order.qty):
            return -1, f"qty {order.qty} is not a multiple of lot size {inst.lot_size}"
        if order.qty < inst.min_qty:
            return -1, f"qty {order.qty} is below the minimum quantity {inst.min_qty}"
        tick = -1
        if order.price is not None:
            if order.price % inst.tick_size:
                return -1, f"price {order.price} is not a multiple of tick size {inst.tick_size}"
            tick = int(order.price / inst.tick_size) - self.base
            if not 0 <= tick < self.book.shape[1]:
                lo, hi = self.price_of(0), self.price_of(self.book.shape[1] - 1)
                return -1, f"price {order.price} is outside the simulated band [{lo}, {hi}]"
        position = self.portfolio.position(inst.id).qty
        # worst case: every open order on this order's side fills, none on the other side
        pending = sum(
            (o.leaves_qty for o in self._open.values() if o.side is order.side and o is not order),
            Decimal(0),
        )
        after = position + order.side.sign * (pending + order.qty)
        if order.reduce_only and (abs(position + order.side.sign * order.qty) > abs(position)):
            return -1, "reduce-only order would increase the position"
        if not self.config.allow_short and after < 0:
            return -1, f"insufficient position: selling {order.qty} with {position} held"
        ref = order.price if order.price is not None else self._mark()
        if ref is None:
            return tick, ""
        notional = inst.notional(order.qty, ref)
        if notional < inst.min_notional:
            return -1, f"notional {notional:.8g} is below the minimum notional {inst.min_notional}"
        if abs(after) > abs(position):
            equity = Decimal(repr(self.portfolio.equity()))
            capacity = equity * self.config.leverage
            needed = abs(after) * ref * inst.multiplier
            if needed > capacity:
                return -1, (
                    f"insufficient buying power: needs {needed:.2f} of exposure but equity "
                    f"{equity:.2f} x leverage {self.config.leverage} allows {capacity:.2f}"
                )
        return tick, ""

    def mid(self) -> float:
        """The strategy-view mid (NaN while a side is empty)."""
        bb, ba = int(self.s[c.S_LO_BB]), int(self.s[c.S_LO_BA])
        if bb < 0 or ba >= self.book.shape[1]:
            return math.nan
        return (self.base + (bb + ba) / 2) * self._tick_f

    def _mark(self) -> Decimal | None:
        mid = self.mid()
        return None if mid != mid else Decimal(repr(mid))

    # -- replay ---------------------------------------------------------------------------------
    def advance(self, until_ns: int) -> int:
        """Replay until the strategy must be woken (or ``until_ns``); returns ``core.W_*``."""
        while True:
            reason = int(
                core.advance(
                    self._exch_ts, self._local_ts, self._kind, self._side, self._ticks,
                    self._qty, self._ival, self._px, self._local_order, self._msg_end,
                    self.book, self.s, self.sf, self.p, self.pf, self.oi, self.of, self.qi,
                    self.ri, self.rf, self._lat, self.active, self.samples, until_ns,
                )
            )  # fmt: skip
            if reason != c.W_SPACE:
                return reason
            self.ri = _grown(self.ri)
            self.rf = _grown(self.rf)

    @property
    def start_ns(self) -> int:
        """When the replay starts: the first exchange or receive time, whichever is earlier."""
        return int(min(self._exch_ts[0], self._local_ts.min()))

    @property
    def now_ns(self) -> int:
        return int(self.s[c.S_NOW])

    def deliver(self, now_ns: int) -> None:
        """Hand every response due by ``now_ns`` to the strategy side, in arrival order."""
        ri, rf = self.ri, self.rf
        for k in core.take_due(self.s, ri, now_ns):
            kind = int(ri[k, c.R_KIND])
            local_ts = int(ri[k, c.R_LOCAL_TS])
            if kind == c.RESP_FUNDING:
                self._funding(int(ri[k, c.R_EXCH_TS]), int(ri[k, c.R_LOTS]), rf[k])
                continue
            slot = int(ri[k, c.R_ORDER])
            order = self.orders[slot]
            oid = order.client_order_id
            if kind == c.RESP_ACK:
                self._sink(order, OrderAccepted(oid, local_ts, f"L2-{ri[k, c.R_ORDER]}"))
            elif kind == c.RESP_FILL:
                fill = self._fill(order, k)
                self.executions.append((fill, int(k), local_ts))
                self._sink(order, fill)
            elif kind == c.RESP_CANCELED:
                self._sink(order, OrderCanceled(oid, local_ts, "canceled by strategy"))
            elif kind == c.RESP_EXPIRED:
                self._sink(order, OrderCanceled(oid, local_ts, _WHY[int(ri[k, c.R_REASON])]))
            elif kind == c.RESP_CANCEL_REJECTED:
                self.cancel_rejects += 1
            if not order.is_open:
                self._open.pop(slot, None)

    def _fill(self, order: Order, k: int) -> Fill:
        inst = self.instrument
        qty = int(self.ri[k, c.R_LOTS]) * self._lot
        price = self.price_of(int(self.ri[k, c.R_TICK]))
        maker = bool(self.ri[k, c.R_MAKER])
        liquidity = Liquidity.MAKER if maker else Liquidity.TAKER
        fee = self._fees.fee(inst, qty * price * inst.multiplier, liquidity)
        return Fill(
            client_order_id=order.client_order_id,
            instrument_id=inst.id,
            side=order.side,
            qty=qty,
            price=price,
            fee=fee,
            liquidity=liquidity,
            ts_event_ns=int(self.ri[k, c.R_EXCH_TS]),
            fill_id=f"F{k}",
        )

    def _funding(self, due_ns: int, lots: int, values: np.ndarray) -> None:
        inst = self.instrument
        if inst.kind is not InstrumentKind.PERPETUAL:
            return
        qty = lots * self._lot
        mark = Decimal(repr(float(values[c.RF_MARK])))
        rate = Decimal(repr(float(values[c.RF_RATE])))
        amount = -qty * mark * rate * inst.multiplier
        self.portfolio.apply_funding(inst.id, amount, ts_ns=due_ns, qty=qty, rate=rate, mark=mark)
        if self.on_funding is not None:
            self.on_funding(due_ns)

    # -- what the strategy sees -----------------------------------------------------------------
    def quote(self) -> QuoteTick:
        """The strategy-view top of book now."""
        view = self.view
        now = self.now_ns
        return QuoteTick(
            self.instrument.id,
            int(self._exch_ts[self.s[c.S_WAKE_ROW]]),
            now,
            view.best_bid,
            view.best_bid_size,
            view.best_ask,
            view.best_ask_size,
        )

    def trade(self) -> TradeTick:
        """The trade that woke the strategy."""
        row = int(self.s[c.S_WAKE_ROW])
        return TradeTick(
            self.instrument.id,
            int(self._exch_ts[row]),
            int(self._local_ts[row]),
            float(self._px[row]),
            float(self._qty[row]),
            AggressorSide.BUYER if self._side[row] > 0 else AggressorSide.SELLER,
        )

    @property
    def woke_on_top(self) -> bool:
        return bool(self.s[c.S_WAKE_TOP])

    def sampled_mids(self) -> tuple[np.ndarray, np.ndarray]:
        """Receive-clock grid times and the strategy-view mid at each."""
        core.flush_samples(self.s, self.book, self.p, self.pf, self.samples, int(self.s[c.S_NOW]))
        n = int(self.s[c.S_N_SAMPLE])
        interval = self.config.sample_interval_ns
        ts = self.sample_start + interval * np.arange(n, dtype=np.int64)
        return ts, self.samples[:n].copy()

    def execution_records(self) -> list[Execution]:
        """Every fill with its queue position, mid at fill and mid after the toxic horizon."""
        rf = self.rf
        return [
            Execution(
                fill,
                fill.ts_event_ns,
                local_ts,
                _clean(float(rf[k, c.RF_AHEAD])),
                float(rf[k, c.RF_MID]),
                float(rf[k, c.RF_MID_AFTER]),
            )
            for fill, k, local_ts in self.executions
        ]

    def stats(self) -> dict[str, int]:
        return {
            "feed_rows": len(self.feed),
            "rows_outside_price_band": int(self.s[c.S_DROPPED]),
            "orders": len(self.orders),
            "responses": int(self.s[c.S_N_RESP]),
            "cancel_rejects": self.cancel_rejects,
            "price_grid_ticks": int(self.book.shape[1]),
        }


def _clean(value: float) -> float:
    """Queue sizes are sums of float level sizes: drop the float residue (1e-18 → 0)."""
    return round(value, 12) + 0.0


def _message_ends(events: np.ndarray, local_order: np.ndarray) -> np.ndarray:
    """Per row: 1 when it is the last book row of its venue message in receive order.

    Rows of one message share both timestamps and are book rows (clear, snapshot, depth).
    """
    ordered = events[local_order]
    book = ordered["kind"] != TRADE
    book &= ordered["kind"] != FUNDING
    same_next = np.zeros(len(ordered), dtype=bool)
    same_next[:-1] = (
        (ordered["local_ts"][1:] == ordered["local_ts"][:-1])
        & (ordered["exch_ts"][1:] == ordered["exch_ts"][:-1])
        & book[1:]
        & book[:-1]
    )
    ends = np.empty(len(events), dtype=np.uint8)
    ends[local_order] = ~same_next
    return ends


def _grown(array: np.ndarray) -> np.ndarray:
    bigger = np.zeros((len(array) * 2, *array.shape[1:]), dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger
