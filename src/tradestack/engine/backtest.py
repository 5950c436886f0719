"""The event-driven backtest: merges bar streams in time order; drives strategy, venue, ledger."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import numpy as np

from tradestack.core.clock import SimulatedClock
from tradestack.core.events import Bar
from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.orders import Fill, Order, OrderEvent
from tradestack.core.series import BarSeries, FloatArray, IntArray
from tradestack.engine.context import StrategyContext
from tradestack.engine.equity import rebuild_equity
from tradestack.engine.strategy import Strategy, overrides
from tradestack.execution.bar_venue import BarVenueConfig, SimulatedBarVenue
from tradestack.portfolio.account import Portfolio
from tradestack.portfolio.trades import TradeRecord

if TYPE_CHECKING:
    from tradestack.analytics.metrics import PerformanceMetrics

ProgressFn = Callable[[int, int], None]


class BacktestError(RuntimeError):
    """An exception raised while the backtest handled an event; the message says when and where."""


_CHUNK = 1 << 16


@dataclass
class BacktestResult:
    """What a backtest produced: the equity curve per timestamp, orders, fills, closed trades."""

    ts_ns: IntArray
    equity: FloatArray
    gross_exposure: FloatArray
    portfolio: Portfolio
    orders: list[Order]
    strategy: Strategy
    periods_per_year: float | None = None
    initial_equity: float | None = None
    _metrics: PerformanceMetrics | None = field(default=None, repr=False)

    @property
    def fills(self) -> list[Fill]:
        return self.portfolio.fills

    @property
    def trades(self) -> list[TradeRecord]:
        """Closed round trips (a position still open at the end is not a trade yet)."""
        return self.portfolio.closed_trades

    @property
    def starting_equity(self) -> float:
        """Cash at the start plus any position the run started with, at its first mark."""
        if self.initial_equity is not None:
            return self.initial_equity
        return float(self.portfolio.starting_cash)

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1]) if len(self.equity) else float(self.portfolio.starting_cash)

    def metrics(self) -> PerformanceMetrics:
        """Performance statistics of the equity curve and trades (computed once)."""
        if self._metrics is None:
            from tradestack.analytics.metrics import compute_metrics

            self._metrics = compute_metrics(
                self.ts_ns,
                self.equity,
                self.trades,
                periods_per_year=self.periods_per_year,
                gross_exposure=self.gross_exposure,
                traded_notional=float(self.portfolio.traded_notional),
                total_fees=float(self.portfolio.total_fees),
                starting_equity=self.starting_equity,
            )
        return self._metrics


def instruments_of(
    feeds: Sequence[BarSeries], instruments: Sequence[Instrument]
) -> dict[InstrumentId, Instrument]:
    """Each feed's instrument rules (default rules where none are given), in feed order; one
    feed per instrument and no rules without data, or a ``ValueError`` saying which."""
    if not feeds:
        raise ValueError("a backtest needs at least one bar series")
    ids = [f.instrument_id for f in feeds]
    if len(set(ids)) != len(ids):
        raise ValueError(f"each instrument may have one bar series; got {', '.join(map(str, ids))}")
    specs = {i.id: i for i in instruments}
    unknown = set(specs) - set(ids)
    if unknown:
        raise ValueError(f"instrument specs without data: {', '.join(map(str, unknown))}")
    return {i: specs.get(i, Instrument(i)) for i in ids}


class BacktestEngine:
    """Runs one strategy over bar series with a simulated clock, venue and portfolio.

    Events are merged by timestamp (ties in the order the feeds were given). Due timers fire
    first; then the venue matches working orders against the bar, then the strategy sees it. The
    equity curve is rebuilt from the logged fills after the loop. The strategy's history access
    ends at the last delivered bar.
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
        progress: ProgressFn | None = None,
    ) -> None:
        self.strategy = strategy
        self.feeds = list(feeds)
        self.instruments = instruments_of(feeds, instruments)
        self.portfolio = Portfolio(Decimal(str(starting_cash)), currency)
        for inst in self.instruments.values():
            self.portfolio.register(inst)
        self.clock = SimulatedClock()
        self.venue = SimulatedBarVenue(
            venue or BarVenueConfig(), self.portfolio, self.instruments, self._on_order_event
        )
        self.periods_per_year = periods_per_year
        self.progress = progress
        self._feed_of = {f.instrument_id: n for n, f in enumerate(self.feeds)}
        self._cursor = [-1] * len(self.feeds)
        self._timers: list[tuple[int, int, str, int]] = []
        self._timer_seq = 0
        self._orders: list[Order] = []
        self._event_no = 0
        self._ran = False
        self._phase = "on_start"
        self._cash_log: list[tuple[int, float]] = []
        self._position_log: list[tuple[int, int, float, float]] = []
        self.ctx = StrategyContext(
            strategy_name=strategy.name,
            clock=self.clock,
            portfolio=self.portfolio,
            instruments=self.instruments,
            send=self._send,
            cancel=lambda order: self.venue.cancel(order, self.clock.now_ns()),
            history=self._history,
            set_timer=self._set_timer,
        )
        self._wants_fill = overrides(strategy, "on_fill")
        self._wants_order = overrides(strategy, "on_order")

    # -- wiring ---------------------------------------------------------------------------------
    def _send(self, order: Order) -> None:
        self._orders.append(order)
        self.venue.submit(order, self.clock.now_ns())

    def _on_order_event(self, order: Order, event: OrderEvent) -> None:
        order.apply(event)
        self.ctx.order_updated(order)
        if isinstance(event, Fill):
            portfolio = self.portfolio
            portfolio.apply_fill(event)
            position = portfolio.positions[event.instrument_id]
            feed = self._feed_of[event.instrument_id]
            self._position_log.append((self._event_no, feed, position.qty_f, position.avg_price_f))
            self._cash_log.append((self._event_no, portfolio.cash_f))
            if self._wants_fill:
                self.strategy.on_fill(self.ctx, event)
        if self._wants_order:
            self.strategy.on_order(self.ctx, order)

    def _history(self, inst: InstrumentId, column: str, n: int | None) -> FloatArray:
        feed_no = self._feed_of[inst]
        end = self._cursor[feed_no] + 1
        start = 0 if n is None else max(0, end - n)
        view = self.feeds[feed_no].column(column)[start:end]
        view.flags.writeable = False
        return view

    def _set_timer(self, name: str, interval_ns: int, start_ns: int | None) -> None:
        first = self.clock.now_ns() + interval_ns if start_ns is None else start_ns
        self._timer_seq += 1
        heapq.heappush(self._timers, (first, self._timer_seq, name, interval_ns))

    def _fire_timers(self, until_ns: int) -> None:
        timers = self._timers
        while timers and timers[0][0] <= until_ns:
            when, seq, name, interval = heapq.heappop(timers)
            self.clock.advance_to(when)
            heapq.heappush(timers, (when + interval, seq, name, interval))
            self.strategy.on_timer(self.ctx, name, when)

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> BacktestResult:
        """Replay every bar once and return the result.

        An exception raised while handling an event (usually in strategy code) is re-raised as
        :class:`BacktestError` naming the event and time; the original is its ``__cause__``.
        """
        if self._ran:
            raise RuntimeError("a BacktestEngine runs once; build a new one for another run")
        self._ran = True
        fid_all, row_all, slot_last, slot_ts, columns = self._merge()
        ids = [f.instrument_id for f in self.feeds]
        if len(fid_all):
            self.clock.advance_to(int(columns[0][0]))
        try:
            self._phase = "on_start"
            self.strategy.on_start(self.ctx)
            self._phase = "loop"
            self._loop(fid_all, row_all, columns, ids)
            self._phase = "on_stop"
            self.strategy.on_stop(self.ctx)
        except Exception as exc:
            raise BacktestError(self._failure_context(ids, fid_all, exc)) from exc
        equity, gross = rebuild_equity(
            feed_ids=fid_all,
            closes=np.asarray(columns[4], dtype=np.float64),
            slot_last_event=slot_last,
            starting_cash=float(self.portfolio.starting_cash),
            cash_log=self._cash_log,
            position_log=self._position_log,
            multipliers=[float(self.instruments[i].multiplier) for i in ids],
            margined=[self.instruments[i].kind is InstrumentKind.PERPETUAL for i in ids],
        )
        return BacktestResult(
            ts_ns=slot_ts,
            equity=equity,
            gross_exposure=gross,
            portfolio=self.portfolio,
            orders=self._orders,
            strategy=self.strategy,
            periods_per_year=self.periods_per_year,
        )

    def _loop(
        self,
        fid_all: IntArray,
        row_all: IntArray,
        columns: list[np.ndarray],
        ids: list[InstrumentId],
    ) -> None:
        n_events = len(fid_all)
        # The hot loop binds collaborators' state to locals (and writes the clock and marks
        # directly): events are already in time order, so their checked setters add nothing.
        cursor = self._cursor
        clock = self.clock
        venue = self.venue
        working = venue.working
        close_queue = venue._close_queue
        marks = self.portfolio._marks
        ctx = self.ctx
        strategy = self.strategy
        on_bar = strategy.on_bar if overrides(strategy, "on_bar") else None
        fire_timers = self._fire_timers
        timers = self._timers
        for lo in range(0, n_events, _CHUNK):
            hi = min(lo + _CHUNK, n_events)
            fids = fid_all[lo:hi].tolist()
            rows = row_all[lo:hi].tolist()
            ts_l, o_l, h_l, l_l, c_l, v_l = (col[lo:hi].tolist() for col in columns)
            for j in range(hi - lo):
                self._event_no = lo + j
                f = fids[j]
                ts = ts_l[j]
                inst = ids[f]
                if timers and timers[0][0] <= ts:
                    fire_timers(ts)
                cursor[f] = rows[j]
                clock._now_ns = ts
                close = c_l[j]
                bar = Bar(inst, ts, ts, o_l[j], h_l[j], l_l[j], close, v_l[j])
                if working.get(inst):
                    marks[inst] = bar.open
                    venue.on_bar(bar)
                marks[inst] = close
                if on_bar is not None:
                    on_bar(ctx, bar)
                if close_queue:
                    venue.after_bar(bar)
            if self.progress is not None:
                self.progress(hi, n_events)

    def _failure_context(self, ids: list[InstrumentId], fid_all: IntArray, exc: Exception) -> str:
        when = datetime.fromtimestamp(self.clock.now_ns() / 1e9, tz=UTC).isoformat()
        if self._phase == "loop":
            where = f"while handling the {ids[int(fid_all[self._event_no])]} bar"
        else:
            where = f"in {self._phase}"
        return f"backtest stopped at {when} {where}: {type(exc).__name__}: {exc}"

    def _merge(self) -> tuple[IntArray, IntArray, IntArray, IntArray, list[np.ndarray]]:
        """Time-ordered events: feed and row of each, the last event of each distinct timestamp,
        the distinct timestamps, and the ts/open/high/low/close/volume columns in event order."""
        feeds = self.feeds
        lengths = [len(f) for f in feeds]
        names = ("ts_ns", "open", "high", "low", "close", "volume")
        fid = np.repeat(np.arange(len(feeds), dtype=np.int64), lengths)
        rows = np.concatenate([np.arange(n, dtype=np.int64) for n in lengths])
        if len(feeds) == 1:
            columns = [np.asarray(getattr(feeds[0], name)) for name in names]
        else:
            ts_all = np.concatenate([f.ts_ns for f in feeds])
            order = np.lexsort((fid, ts_all))
            fid, rows = fid[order], rows[order]
            columns = [np.concatenate([getattr(f, name) for f in feeds])[order] for name in names]
        ts_all = columns[0].astype(np.int64, copy=False)
        last_of_ts = np.ones(len(ts_all), dtype=bool)
        last_of_ts[:-1] = ts_all[1:] != ts_all[:-1]
        return fid, rows, np.flatnonzero(last_of_ts), ts_all[last_of_ts], columns
