"""The vectorized runner: a strategy's target weights through the compiled portfolio kernel.

:class:`VectorizedEngine` takes the same arguments as :class:`~tradestack.engine.backtest.
BacktestEngine` and returns a :class:`~tradestack.engine.backtest.BacktestResult` (so reports,
outputs and metrics work unchanged) with the same equity curve, orders, fills and trades. The
ledger objects (portfolio, orders, fills, trades) are rebuilt from the kernel's fills only when
first asked for, so a parameter sweep that reads the equity curve or the metrics skips them.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

import numpy as np

from tradestack.core.ids import InstrumentId, client_order_id
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.orders import (
    Fill,
    Liquidity,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderRejected,
    OrderSide,
    OrderSubmitted,
)
from tradestack.core.series import BarSeries, FloatArray, IntArray
from tradestack.engine.backtest import BacktestResult, instruments_of
from tradestack.engine.strategy import Strategy
from tradestack.engine.vectorized import kernel
from tradestack.engine.weights import decisions
from tradestack.execution.bar_venue import BarVenueConfig
from tradestack.execution.costs import FeeModel, SlippageModel
from tradestack.portfolio.account import Portfolio

if TYPE_CHECKING:
    from tradestack.analytics.metrics import PerformanceMetrics

_LIMIT = 1 << 52

_REASONS = {
    kernel.REJECT_MIN_QTY: "qty {qty} is below the minimum quantity {min_qty}",
    kernel.REJECT_SHORT: "insufficient position: selling {qty} with shorting disabled",
    kernel.REJECT_MIN_NOTIONAL: "notional is below the minimum notional {min_notional}",
    kernel.REJECT_CASH: "insufficient cash: the position after the order needs more exposure "
    "than equity x leverage {leverage} allows",
    kernel.CANCEL_PRICE: "fill price {price} is not positive",
    kernel.CANCEL_CASH: "insufficient buying power at fill price {price}",
}


_REJECTED = (
    kernel.REJECT_MIN_QTY,
    kernel.REJECT_SHORT,
    kernel.REJECT_MIN_NOTIONAL,
    kernel.REJECT_CASH,
)


class NotVectorizable(ValueError):
    """The strategy or the venue settings use something the vectorized kernel does not model."""


def _fraction(value: Decimal, what: str) -> tuple[int, int]:
    num, den = value.as_integer_ratio()
    if not (0 < num < _LIMIT and 0 < den < _LIMIT):
        raise NotVectorizable(f"{what} {value} is too fine for the vectorized kernel")
    return num, den


class _Kernel:
    """The kernel's inputs and raw output: what is needed to turn it into ledger objects and to
    rebuild the gross exposure."""

    def __init__(
        self,
        orders: IntArray,
        fees: FloatArray,
        events: tuple[IntArray, IntArray, FloatArray, FloatArray],
        ids: list[InstrumentId],
        lots: tuple[IntArray, IntArray],
        mult: FloatArray,
    ) -> None:
        self.o_ev = orders[kernel.EVENT]
        self.o_inst = orders[kernel.INSTRUMENT]
        self.o_lots = orders[kernel.LOTS]
        self.o_status = orders[kernel.STATUS]
        self.o_end = orders[kernel.END]
        self.o_ticks = orders[kernel.TICKS]
        self.o_fee = fees
        self.fid, self.event_ts, self.event_open, self.event_close = events
        self.ids = ids
        self.lot_num, self.lot_den = lots
        self.mult = mult

    def gross_exposure(self, n_slots: int) -> FloatArray:
        """Σ|position value| per timestamp, as the kernel would have recorded it."""
        filled = np.flatnonzero(self.o_status == kernel.FILLED)
        filled = filled[np.argsort(self.o_end[filled], kind="stable")]
        out: FloatArray = np.empty(n_slots)
        kernel.exposure(
            self.fid,
            self.event_ts,
            self.event_close,
            np.ascontiguousarray(self.o_end[filled]),
            np.ascontiguousarray(self.o_inst[filled]),
            np.ascontiguousarray(self.o_lots[filled]),
            self.lot_num,
            self.lot_den,
            self.mult,
            out,
        )
        return out


class VectorizedResult(BacktestResult):
    """A :class:`BacktestResult` whose portfolio and orders are rebuilt on first access."""

    def __init__(
        self,
        *,
        ts_ns: IntArray,
        equity: FloatArray,
        strategy: Strategy,
        periods_per_year: float | None,
        raw: _Kernel,
        engine: VectorizedEngine,
    ) -> None:
        self.ts_ns = ts_ns
        self.equity = equity
        self._gross: FloatArray | None = None
        self.strategy = strategy
        self.periods_per_year = periods_per_year
        self.initial_equity = None
        self._metrics: PerformanceMetrics | None = None
        self._raw = raw
        self._engine = engine
        self._portfolio: Portfolio | None = None
        self._orders: list[Order] | None = None

    @property
    def gross_exposure(self) -> FloatArray:
        if self._gross is None:
            self._gross = self._raw.gross_exposure(len(self.equity))
        return self._gross

    @gross_exposure.setter
    def gross_exposure(self, value: FloatArray) -> None:
        self._gross = value

    @property
    def portfolio(self) -> Portfolio:
        if self._portfolio is None:
            self._replay()
        assert self._portfolio is not None
        return self._portfolio

    @portfolio.setter
    def portfolio(self, value: Portfolio) -> None:
        self._portfolio = value

    @property
    def orders(self) -> list[Order]:
        if self._orders is None:
            self._replay()
        assert self._orders is not None
        return self._orders

    @orders.setter
    def orders(self, value: list[Order]) -> None:
        self._orders = value

    @property
    def n_orders(self) -> int:
        """Orders sent (accepted or not), without building them."""
        return len(self._raw.o_ev)

    def _replay(self) -> None:
        """Book the kernel's orders and fills into a real portfolio, in Decimal, as the venue
        does: the fill price and fee come from the same rounding, slippage and fee code."""
        engine, raw = self._engine, self._raw
        portfolio = Portfolio(engine.starting_cash, engine.currency)
        for inst in engine.instruments.values():
            portfolio.register(inst)
        fees = FeeModel(engine.config.maker_fee_bps, engine.config.taker_fee_bps)
        slippage = SlippageModel(engine.config.slippage_bps)
        name = engine.strategy.name
        orders: list[Order] = []
        ends: list[tuple[int, int]] = []
        for o in range(len(raw.o_ev)):
            inst = engine.instruments[raw.ids[int(raw.o_inst[o])]]
            lots = int(raw.o_lots[o])
            side = OrderSide.BUY if lots > 0 else OrderSide.SELL
            qty = inst.round_qty(abs(lots) * inst.lot_size)
            ts = int(raw.event_ts[raw.o_ev[o]])
            seq = o + 1
            order = Order(client_order_id(name, inst.id, "market", seq), inst.id, side, qty)
            order.ts_init_ns = ts
            coid = order.client_order_id
            order.apply(OrderSubmitted(coid, ts))
            status = int(raw.o_status[o])
            if status in _REJECTED:
                reason = _REASONS[status].format(
                    qty=qty,
                    min_qty=inst.min_qty,
                    min_notional=inst.min_notional,
                    leverage=engine.config.leverage,
                )
                order.apply(OrderRejected(coid, ts, reason))
            else:
                order.apply(OrderAccepted(coid, ts, coid))
                if status != kernel.OPEN:
                    ends.append((int(raw.o_end[o]), o))
            orders.append(order)
        ends.sort()
        n_fills = 0
        for event, o in ends:
            order = orders[o]
            inst = engine.instruments[order.instrument_id]
            ts = int(raw.event_ts[event])
            price = inst.round_price(Decimal(repr(float(raw.event_open[event]))))
            price = slippage.adjust(inst, order.side, price)
            ticks = int(raw.o_ticks[o])
            if price != ticks * inst.tick_size:  # pragma: no cover - a kernel bug
                raise AssertionError(f"kernel fill price {ticks} ticks != venue price {price}")
            status = int(raw.o_status[o])
            if status != kernel.FILLED:
                reason = _REASONS[status].format(price=price)
                order.apply(OrderCanceled(order.client_order_id, ts, reason))
                continue
            n_fills += 1
            notional = order.qty * price * inst.multiplier
            fill = Fill(
                client_order_id=order.client_order_id,
                instrument_id=order.instrument_id,
                side=order.side,
                qty=order.qty,
                price=price,
                fee=fees.fee(inst, notional, Liquidity.TAKER),
                liquidity=Liquidity.TAKER,
                ts_event_ns=ts,
                fill_id=f"F{n_fills}",
            )
            order.apply(fill)
            portfolio.apply_fill(fill)
        for inst_id, close in engine.last_closes.items():
            portfolio.mark(inst_id, close)
        self._portfolio = portfolio
        self._orders = orders


class VectorizedEngine:
    """Runs a strategy's :meth:`~tradestack.engine.strategy.Strategy.target_weights` through the
    compiled kernel; same arguments and result as :class:`BacktestEngine`.

    Modeled: market orders from ``order_target_percent`` at the close, filled at the next bar's
    open of the instrument (``fill_at="next_open"``), tick rounding, slippage, taker fees (venue
    override or the instrument's), lot rounding, minimum quantity and notional, shorting switch,
    buying power (leverage) at submit and at the fill, any number of instruments sharing cash.
    Not modeled (raises :class:`NotVectorizable`): ``fill_at="close"``, perpetual instruments,
    strategies without target weights.
    """

    def __init__(
        self,
        strategy: Strategy,
        feeds: Sequence[BarSeries],
        *,
        instruments: Sequence[Instrument] = (),
        starting_cash: Decimal | int | str = Decimal(100_000),
        currency: str = "USD",
        venue: BarVenueConfig | None = None,
        periods_per_year: float | None = None,
    ) -> None:
        self.instruments = instruments_of(feeds, instruments)
        self.strategy = strategy
        self.feeds = list(feeds)
        self.starting_cash = Decimal(str(starting_cash))
        if self.starting_cash < 0:
            raise ValueError(f"starting cash must be >= 0, got {self.starting_cash}")
        self.currency = currency
        self.config = venue or BarVenueConfig()
        self.periods_per_year = periods_per_year
        self.last_closes: dict[InstrumentId, float] = {}
        self._ran = False
        self._check_supported()

    def _check_supported(self) -> None:
        config = self.config
        if config.leverage <= 0:
            raise ValueError(f"leverage must be > 0, got {config.leverage}")
        if config.fill_at != "next_open":
            raise NotVectorizable(
                f"the vectorized kernel fills market orders at the next open only; "
                f"fill_at={config.fill_at!r} needs BacktestEngine"
            )
        SlippageModel(config.slippage_bps)  # validates the range
        for inst in self.instruments.values():
            if inst.kind is InstrumentKind.PERPETUAL:
                raise NotVectorizable(
                    f"{inst.id} is a perpetual (margined) instrument; the vectorized kernel "
                    "models cash-settled spot and equity instruments only: use BacktestEngine"
                )
        # a tick too fine for the instrument's prices shows on its first bar already; the kernel
        # checks each fill price
        for feed in self.feeds:
            if len(feed):
                top = max(float(feed.open[0]), float(feed.close[0]))
                if top / float(self.instruments[feed.instrument_id].tick_size) >= kernel.MAX_UNITS:
                    raise self._too_many_ticks(feed.instrument_id, top)

    def _too_many_ticks(self, inst_id: InstrumentId, price: float) -> NotVectorizable:
        return NotVectorizable(
            f"{inst_id}: a price of {price} is more than 1e14 ticks of "
            f"{self.instruments[inst_id].tick_size}; the kernel's grid rounding would not be "
            "exact: use BacktestEngine"
        )

    def run(self) -> BacktestResult:
        """Compute the target weights, run the kernel and return the result."""
        if self._ran:
            raise RuntimeError("a VectorizedEngine runs once; build a new one for another run")
        self._ran = True
        ids = [f.instrument_id for f in self.feeds]
        targets = self.strategy.target_weights({f.instrument_id: f for f in self.feeds})
        if targets is None:
            raise NotVectorizable(
                f"{self.strategy.name} does not express its decisions as target weights "
                "(target_weights returned None); run it with BacktestEngine"
            )
        extra = set(targets) - set(ids)
        if extra:
            raise ValueError(f"target weights for unknown instruments: {sorted(map(str, extra))}")
        per_feed = [
            decisions(targets[feed.instrument_id], len(feed), str(feed.instrument_id))
            if feed.instrument_id in targets
            else (np.empty(0, dtype=np.int64), np.empty(0))
            for feed in self.feeds
        ]
        return self._simulate(ids, per_feed)

    def _simulate(
        self, ids: list[InstrumentId], per_feed: list[tuple[IntArray, FloatArray]]
    ) -> BacktestResult:
        if len(self.feeds) == 1:
            (feed,) = self.feeds
            fid: IntArray = np.empty(0, dtype=np.int64)
            ts_all: IntArray = np.ascontiguousarray(feed.ts_ns, dtype=np.int64)
            opens = np.ascontiguousarray(feed.open, dtype=np.float64)
            closes = np.ascontiguousarray(feed.close, dtype=np.float64)
            dec_event, dec_weight = per_feed[0]
        else:
            fid, order = _merge_order(self.feeds)
            ts_all, opens, closes = (
                np.ascontiguousarray(np.concatenate([getattr(f, name) for f in self.feeds])[order])
                for name in ("ts_ns", "open", "close")
            )
            # the decisions' positions in the merged order: each feed's bar indices offset to
            # the concatenation, then through the inverse of the merge permutation
            offsets = np.cumsum([0] + [len(f) for f in self.feeds[:-1]])
            merged_at = np.empty(len(order), dtype=np.int64)
            merged_at[order] = np.arange(len(order), dtype=np.int64)
            shifted = [idx + off for (idx, _), off in zip(per_feed, offsets, strict=True)]
            at = merged_at[np.concatenate(shifted)]
            by_event = np.argsort(at, kind="stable")
            dec_event = np.ascontiguousarray(at[by_event])
            dec_weight = np.ascontiguousarray(np.concatenate([w for _, w in per_feed])[by_event])
        insts = [self.instruments[i] for i in ids]
        config = self.config
        ticks = [_fraction(i.tick_size, f"{i.id} tick size") for i in insts]
        lots = [_fraction(i.lot_size, f"{i.id} lot size") for i in insts]
        min_lots = [
            int(-(-Fraction(i.min_qty) // Fraction(i.lot_size))) if i.min_qty > 0 else 0
            for i in insts
        ]
        fee_bps = [
            float(config.taker_fee_bps if config.taker_fee_bps is not None else i.taker_fee_bps)
            for i in insts
        ]
        slip_num, slip_den = (
            config.slippage_bps.as_integer_ratio() if config.slippage_bps else (0, 1)
        )
        n = len(ts_all)
        # numpy allocates the outputs (see the signals module); a decision sends at most one
        # order; the gross exposure is rebuilt from the fills when asked for
        equity = np.empty(n)
        n_dec = len(dec_event)
        lot_num = np.array([t[0] for t in lots], dtype=np.int64)
        lot_den = np.array([t[1] for t in lots], dtype=np.int64)
        mult = np.array([float(i.multiplier) for i in insts])
        orders, fees = np.empty((kernel.ORDER_COLUMNS, n_dec), dtype=np.int64), np.empty(n_dec)
        n_slots, n_orders, price_beyond, lots_beyond = kernel.simulate(
            fid,
            ts_all,
            opens,
            closes,
            dec_event,
            dec_weight,
            np.array([t[0] for t in ticks], dtype=np.int64),
            np.array([t[1] for t in ticks], dtype=np.int64),
            lot_num,
            lot_den,
            mult,
            np.array(min_lots, dtype=np.int64),
            np.array([float(i.min_notional) for i in insts]),
            np.array(fee_bps),
            int(slip_num),
            int(slip_den),
            bool(config.allow_short),
            float(config.leverage),
            float(self.starting_cash),
            equity,
            orders,
            fees,
        )
        # the first event past the exact range names the problem (a fill precedes a decision)
        if price_beyond >= 0 and not 0 <= lots_beyond < price_beyond:
            inst_id = ids[0 if len(self.feeds) == 1 else int(fid[price_beyond])]
            raise self._too_many_ticks(inst_id, float(opens[price_beyond]))
        if lots_beyond >= 0:
            inst_id = ids[0 if len(self.feeds) == 1 else int(fid[lots_beyond])]
            raise NotVectorizable(
                f"{inst_id}: at {int(ts_all[lots_beyond])} ns an order needs more than 1e14 lots "
                f"of {self.instruments[inst_id].lot_size}; the kernel's grid rounding would not "
                "be exact: use BacktestEngine"
            )
        self.last_closes = {f.instrument_id: float(f.close[-1]) for f in self.feeds if len(f)}
        raw = _Kernel(
            orders[:, :n_orders],
            fees[:n_orders],
            (fid, ts_all, opens, closes),
            ids,
            (lot_num, lot_den),
            mult,
        )
        stamps = ts_all
        if n_slots < n:
            last = np.ones(n, dtype=np.bool_)
            last[:-1] = ts_all[1:] != ts_all[:-1]
            stamps, equity = ts_all[last], equity[:n_slots].copy()
        return VectorizedResult(
            ts_ns=stamps,
            equity=equity,
            strategy=self.strategy,
            periods_per_year=self.periods_per_year,
            raw=raw,
            engine=self,
        )


def _merge_order(feeds: Sequence[BarSeries]) -> tuple[IntArray, IntArray]:
    """Each event's feed and the permutation that puts the concatenated feeds in time order,
    ties in feed order (as ``BacktestEngine._merge``)."""
    lengths = [len(f) for f in feeds]
    fid = np.repeat(np.arange(len(feeds), dtype=np.int64), lengths)
    if len(feeds) == 1:
        return fid, np.arange(lengths[0], dtype=np.int64)
    ts_all = np.concatenate([f.ts_ns for f in feeds])
    order = np.argsort(ts_all, kind="stable")  # stable: ties stay in the feeds' order
    return np.ascontiguousarray(fid[order]), order
