"""Paper trading on an order-book stream: the L2 engine fed message by message.

:class:`PaperEngine` is the :class:`~tradestack.engine.l2.L2BacktestEngine` (same strategy API,
context, simulated venue, ledger and result) on a :class:`~tradestack.execution.sim.live.
LiveL2Venue`: rows of received messages go in with :meth:`PaperEngine.on_rows`, and the replay
runs up to just before the newest exchange time (rows stamped with that time may still be on
their way from another stream). The strategy's clock is the venue's event time as received,
so a recorded session traded in paper mode gives the orders and fills of its backtest.

With a :class:`~tradestack.storage.StateStore` every order is stored when it is sent and every
venue answer and fill when it happens, a fill before the strategy hears of it. Order sequences
continue from the database's, and fills are stored under ``<session>:<fill id>``, so sessions
can share one paper database.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import numpy as np

from tradestack.core.instruments import Instrument
from tradestack.core.orders import Fill, Order, OrderEvent, OrderSubmitted
from tradestack.engine.l2 import L2BacktestEngine, L2BacktestResult
from tradestack.engine.pipeline.strategy import PipelineStrategy
from tradestack.engine.strategy import Strategy
from tradestack.execution.sim import layout as c
from tradestack.execution.sim.config import L2VenueConfig
from tradestack.execution.sim.feed import L2Feed
from tradestack.execution.sim.live import LiveL2Venue, ReorderBuffer
from tradestack.storage import StateStore
from tradestack.storage.state import SENT


class PaperEngine(L2BacktestEngine):
    """The L2 engine on a growing feed (see the module docstring).

    ``first`` holds the rows received before trading starts, a book snapshot among them;
    ``hold_ns`` is how long (exchange time) rows wait for stragglers of other streams.
    """

    venue_class = LiveL2Venue

    def __init__(
        self,
        strategy: Strategy,
        first: L2Feed,
        *,
        instrument: Instrument,
        venue: L2VenueConfig | None = None,
        starting_cash: Decimal | int | str = Decimal(100_000),
        currency: str = "USD",
        hold_ns: int = 0,
        on_step: Callable[[int], None] | None = None,
        store: StateStore | None = None,
        session: str = "paper",
    ) -> None:
        super().__init__(
            strategy, first, instrument=instrument, venue=venue,
            starting_cash=starting_cash, currency=currency,
        )  # fmt: skip
        started = int(first.events["exch_ts"][-1]) if len(first.events) else None
        self.reorder = ReorderBuffer(hold_ns, released_ns=started)
        self.on_step = on_step
        self._live_venue: LiveL2Venue = self.venue  # type: ignore[assignment]
        self._state = "new"
        self.store = store
        self.session = session
        if store is not None:
            mine = [r.sequence for r in store.orders() if r.strategy == strategy.name]
            self.ctx._sequence = max(mine, default=0)
            send = self._live_venue.submit

            def store_then_send(order: Order, now_ns: int) -> None:
                self._store_intent(order, now_ns)
                send(order, now_ns)

            self._live_venue.submit = store_then_send  # type: ignore[method-assign]

    def start(self) -> None:
        """Run ``on_start`` and replay the first rows."""
        if self._state != "new":
            raise RuntimeError("a PaperEngine starts once")
        self._state = "running"
        self._start()
        self.drain(self._live_venue.last_exch_ns - 1)

    def on_rows(self, rows: np.ndarray) -> None:
        """Take the rows of newly received messages and replay what is now safe to."""
        if self._state != "running":
            raise RuntimeError(f"rows given to a PaperEngine that is {self._state}")
        ready = self.reorder.push(rows)
        if len(ready):
            self._live_venue.extend(ready)
            self.drain(self._live_venue.last_exch_ns - 1)
            if self.on_step is not None:
                self.on_step(self._live_venue.size)

    def _store_intent(self, order: Order, now_ns: int) -> None:
        assert self.store is not None
        self.store.record_intent(
            order,
            strategy=self.strategy.name,
            sequence=self.ctx._sequence,
            intent=order.tag or order.order_type.value,
        )
        self.store.set_submit_state(order.client_order_id, SENT, now_ns)
        self.store.apply_event(OrderSubmitted(order.client_order_id, now_ns))

    def _on_order_event(self, order: Order, event: OrderEvent) -> None:
        if self.store is not None:
            if isinstance(event, Fill):
                self.store.record_fill(
                    event,
                    venue="paper",
                    trade_id=f"{self.session}:{event.fill_id}",
                    fee_currency=self.portfolio.currency,
                )
            else:
                self.store.apply_event(event)
        super()._on_order_event(order, event)

    def finish(self) -> L2BacktestResult:
        """The stream ended: replay the rest, run ``on_stop`` and return the result."""
        if self._state != "running":
            raise RuntimeError(f"finish called on a PaperEngine that is {self._state}")
        self._state = "finished"
        self._live_venue.extend(self.reorder.flush())
        if isinstance(self.strategy, PipelineStrategy):  # as in a backtest of the recording
            venue = self._live_venue
            self.strategy.data_end_ns = int(max(venue._exch_ts.max(), venue._local_ts.max()))
        self.drain(c.INT_MAX)
        self.strategy.on_stop(self.ctx)
        return self._result()
