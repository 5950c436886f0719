"""A minimal market maker for order-book replays: quote the touch, requote when the mid moves."""

from __future__ import annotations

from decimal import Decimal

from tradestack.core.ids import InstrumentId
from tradestack.engine.context import StrategyContext
from tradestack.engine.strategy import ParameterError, Strategy


class QuoteAtTouch(Strategy):
    """Every ``interval_ms`` quote ``order_qty`` at the best bid and the best ask.

    When the mid has moved since the last quotes (or nothing is quoted yet), every working order
    is canceled and fresh quotes go out at the current touch; a side is skipped when its fill
    would take the position beyond ``max_position``. Positions are compared in exact Decimals.
    This is the reference strategy of the hftbacktest parity test and the L2 benchmark.
    """

    order_qty: Decimal = Decimal("0.01")
    max_position: Decimal = Decimal("0.1")
    interval_ms: int = 100
    instrument: str = ""

    def validate(self) -> None:
        if self.order_qty <= 0 or self.max_position < 0 or self.interval_ms <= 0:
            raise ParameterError(
                "QuoteAtTouch needs order_qty > 0, max_position >= 0 and interval_ms > 0"
            )

    def on_start(self, ctx: StrategyContext) -> None:
        self._inst: InstrumentId = (
            ctx.instrument_id(self.instrument) if self.instrument else next(iter(ctx.instruments))
        )
        self._last_mid = float("nan")
        self.requotes = 0
        ctx.set_timer("quote", self.interval_ms * 1_000_000)

    def on_timer(self, ctx: StrategyContext, name: str, ts_ns: int) -> None:
        book = ctx.book(self._inst)
        bid, ask = book.best_bid, book.best_ask
        if not (bid > 0 and ask > 0):
            return
        mid = (bid + ask) / 2
        if mid == self._last_mid:
            return
        self.requotes += 1
        for order in ctx.open_orders(self._inst):
            ctx.cancel(order)
        position = ctx.position(self._inst).qty
        if position + self.order_qty <= self.max_position:
            ctx.buy(self._inst, self.order_qty, price=bid)
        if position - self.order_qty >= -self.max_position:
            ctx.sell(self._inst, self.order_qty, price=ask)
        self._last_mid = mid
