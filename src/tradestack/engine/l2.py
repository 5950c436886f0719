"""The engine on order-book data: one strategy, one instrument's L2 feed, the L2 simulated venue.

Same strategy API, context, portfolio and result as the bar engine, on the strategy's receive
clock. The compiled venue core replays the feed in batches and hands control back only when
the strategy has something to react to: a due timer, one of its order responses, and — for the
handlers the strategy overrides — a top-of-book change (``on_quote``), a trade (``on_trade``)
or every book change (``on_book``). Marks are the strategy-view mid; the equity curve is valued
on the venue's sampling grid (``sample_interval_ns``) from the fills and funding logged.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import numpy as np

from tradestack.core.clock import SimulatedClock
from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.orders import Fill, Order, OrderEvent
from tradestack.engine.backtest import BacktestError, BacktestResult
from tradestack.engine.context import StrategyContext
from tradestack.engine.strategy import Strategy, overrides
from tradestack.execution.sim import layout as c
from tradestack.execution.sim.book_view import BookView
from tradestack.execution.sim.config import L2VenueConfig
from tradestack.execution.sim.feed import L2Feed
from tradestack.execution.sim.venue import Execution, L2SimVenue
from tradestack.portfolio.account import Portfolio

SECONDS_PER_YEAR = 365 * 24 * 3600


@dataclass
class L2BacktestResult(BacktestResult):
    """A bar-engine result plus what only an order-book replay knows: per-fill queue position,
    mid moves after each fill, funding payments and the venue's counters."""

    executions: list[Execution] = field(default_factory=list)
    venue_stats: dict[str, int] = field(default_factory=dict)
    toxic_threshold_bps: float = 1.0

    def toxic(self) -> list[bool]:
        """Per execution: did the mid move against it by more than the threshold afterwards?"""
        return [e.adverse_bps() > self.toxic_threshold_bps for e in self.executions]

    def pnl_decomposition(self) -> dict[str, float]:
        """Total PnL = spread capture + inventory + fees + funding.

        Spread capture is what each fill earned against the exchange mid at that moment;
        inventory is what holding the position through later mid moves earned (the rest).
        """
        spread = 0.0
        for e in self.executions:
            if e.mid_at_fill == e.mid_at_fill:
                qty = float(e.fill.qty) * float(
                    self.portfolio.position(e.fill.instrument_id).multiplier
                )
                spread += e.fill.side.sign * (e.mid_at_fill - float(e.fill.price)) * qty
        fees = -float(self.portfolio.total_fees)
        funding = float(self.portfolio.total_funding)
        total = self.final_equity - self.starting_equity
        return {
            "total_pnl": total,
            "spread_capture": spread,
            "inventory_pnl": total - spread - fees - funding,
            "fees": fees,
            "funding": funding,
        }


class L2BacktestEngine:
    """Runs one strategy against one instrument's recorded order book (see module docstring)."""

    venue_class: type[L2SimVenue] = L2SimVenue

    def __init__(
        self,
        strategy: Strategy,
        feed: L2Feed,
        *,
        instrument: Instrument,
        venue: L2VenueConfig | None = None,
        starting_cash: Decimal | int | str = Decimal(100_000),
        currency: str = "USD",
        starting_position: tuple[Decimal, Decimal] | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> None:
        self.strategy = strategy
        self.instrument = instrument
        self.config = venue or L2VenueConfig()
        self.portfolio = Portfolio(Decimal(str(starting_cash)), currency)
        self.portfolio.register(instrument)
        if starting_position is not None:
            qty, price = starting_position
            if not instrument.is_lot_multiple(qty):
                raise ValueError(
                    f"starting position {qty} is not a multiple of lot size {instrument.lot_size}"
                )
            self.portfolio.seed_position(instrument.id, qty, price, ts_ns=feed.start_ns)
        self.clock = SimulatedClock()
        mask = 0
        if overrides(strategy, "on_quote"):
            mask |= c.M_TOP
        if overrides(strategy, "on_trade"):
            mask |= c.M_TRADE
        if overrides(strategy, "on_book"):
            mask |= c.M_EVENT
        self.venue = self.venue_class(
            feed, instrument, self.config, self.portfolio, self._on_order_event, wake_mask=mask
        )
        if starting_position is not None:
            self.venue.seed_position(starting_position[0])
        self.venue.on_funding = lambda _ts: self._log_ledger()
        self.progress = progress
        self._timers: list[tuple[int, int, str, int]] = []
        self._timer_seq = 0
        self._ran = False
        self._ledger: list[tuple[int, float, float, float]] = []
        instruments = {instrument.id: instrument}
        self.ctx = StrategyContext(
            strategy_name=strategy.name,
            clock=self.clock,
            portfolio=self.portfolio,
            instruments=instruments,
            send=lambda order: self.venue.submit(order, self.clock.now_ns()),
            cancel=lambda order: self.venue.cancel(order, self.clock.now_ns()),
            history=self._no_history,
            set_timer=self._set_timer,
            book=self._book,
        )
        self._wants_fill = overrides(strategy, "on_fill")
        self._wants_order = overrides(strategy, "on_order")
        self._wants_quote = overrides(strategy, "on_quote")

    def _no_history(self, inst: InstrumentId, column: str, n: int | None) -> np.ndarray:
        raise ValueError(
            "an order-book backtest has no bar history; keep what you need from the events "
            "or read ctx.book()"
        )

    def _book(self, inst: InstrumentId) -> BookView:
        if inst != self.instrument.id:
            raise KeyError(f"no order book for {inst}; this run replays {self.instrument.id}")
        return self.venue.view

    def _set_timer(self, name: str, interval_ns: int, start_ns: int | None) -> None:
        first = self.clock.now_ns() + interval_ns if start_ns is None else start_ns
        self._timer_seq += 1
        heapq.heappush(self._timers, (first, self._timer_seq, name, interval_ns))

    def _on_order_event(self, order: Order, event: OrderEvent) -> None:
        order.apply(event)
        self.ctx.order_updated(order)
        if isinstance(event, Fill):
            self.portfolio.apply_fill(event)
            self._log_ledger()
            if self._wants_fill:
                self.strategy.on_fill(self.ctx, event)
        if self._wants_order:
            self.strategy.on_order(self.ctx, order)

    def _log_ledger(self) -> None:
        position = self.portfolio.positions[self.instrument.id]
        self._ledger.append(
            (self.clock.now_ns(), self.portfolio.cash_f, position.qty_f, position.avg_price_f)
        )

    def run(self) -> L2BacktestResult:
        """Replay the whole feed once and return the result.

        An exception in strategy code is re-raised as :class:`BacktestError` naming the time.
        """
        if self._ran:
            raise RuntimeError("an L2BacktestEngine runs once; build a new one for another run")
        self._ran = True
        phase = "on_start"
        try:
            self._start()
            phase = "loop"
            self.drain(c.INT_MAX)
            phase = "on_stop"
            self.strategy.on_stop(self.ctx)
        except Exception as exc:
            at = datetime.fromtimestamp(self.clock.now_ns() / 1e9, tz=UTC).isoformat()
            raise BacktestError(
                f"backtest stopped at {at} in {phase}: {type(exc).__name__}: {exc}"
            ) from exc
        return self._result()

    def _start(self) -> None:
        self.clock._now_ns = self.venue.start_ns
        self._log_ledger()
        self.strategy.on_start(self.ctx)

    def drain(self, limit_ns: int) -> bool:
        """Replay what the feed holds up to ``limit_ns``: due timers, order responses and the
        book, trade and quote wakes the strategy asked for. True when everything the feed holds
        was replayed (a backtest's end; for a growing feed, "caught up"), False when the next
        event lies after ``limit_ns``."""
        venue = self.venue
        clock = self.clock
        strategy = self.strategy
        ctx = self.ctx
        marks = self.portfolio._marks
        inst = self.instrument.id
        view = venue.view
        timers = self._timers
        wants_quote = self._wants_quote
        while True:
            due = timers[0][0] if timers else c.INT_MAX
            reason = venue.advance(min(due, limit_ns))
            now = venue.now_ns
            if reason == c.W_END:
                return True
            clock._now_ns = now
            mid = venue.mid()
            if mid == mid:
                marks[inst] = mid
            if reason == c.W_UNTIL:
                if due > limit_ns:
                    return False
                when, seq, name, interval = heapq.heappop(timers)
                heapq.heappush(timers, (when + interval, seq, name, interval))
                strategy.on_timer(ctx, name, when)
            elif reason == c.W_RESPONSE:
                venue.deliver(now)
            elif reason == c.W_TOP:
                strategy.on_quote(ctx, venue.quote())
            elif reason == c.W_TRADE:
                strategy.on_trade(ctx, venue.trade())
            elif reason == c.W_EVENT:
                strategy.on_book(ctx, view)
                if venue.woke_on_top and wants_quote:
                    strategy.on_quote(ctx, venue.quote())

    def _result(self) -> L2BacktestResult:
        venue, strategy = self.venue, self.strategy
        ts, equity, gross, initial = self._equity_curve()
        return L2BacktestResult(
            ts_ns=ts,
            equity=equity,
            gross_exposure=gross,
            portfolio=self.portfolio,
            orders=list(venue.orders),
            strategy=strategy,
            periods_per_year=SECONDS_PER_YEAR * 1e9 / self.config.sample_interval_ns,
            initial_equity=initial,
            executions=venue.execution_records(),
            venue_stats=venue.stats(),
            toxic_threshold_bps=self.config.toxic_threshold_bps,
        )

    def _equity_curve(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        """Equity and gross exposure on the sampling grid, valued at the strategy-view mid, and
        the starting equity (cash plus a starting position at the first mid)."""
        ts, mids = self.venue.sampled_mids()
        log = np.array(self._ledger, dtype=np.float64).reshape(-1, 4)
        log_ts = np.array([row[0] for row in self._ledger], dtype=np.int64)
        where = np.searchsorted(log_ts, ts, side="right") - 1
        where = np.maximum(where, 0)
        cash, qty, avg = log[where, 1], log[where, 2], log[where, 3]
        mult = float(self.instrument.multiplier)
        mids = np.where(np.isnan(mids), avg, mids)
        perpetual = self.instrument.kind is InstrumentKind.PERPETUAL
        value = qty * (mids - avg) * mult if perpetual else qty * mids * mult
        equity = cash + value
        gross = np.abs(qty * mids * mult)
        cash0, qty0, avg0 = log[0, 1], log[0, 2], log[0, 3]
        first = next((float(m) for m in mids if m == m and m != 0.0), avg0)
        value0 = qty0 * ((first - avg0) if perpetual else first) * mult
        return ts, equity, gross, float(cash0 + value0)
