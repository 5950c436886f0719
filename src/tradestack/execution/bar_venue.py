"""A simulated venue that fills orders against OHLC bars.

Conventions (each one configurable where a user would want it):
- An order can fill only on a bar that opens after it was submitted (no same-bar look-ahead).
- Market orders fill at that next bar's open, or with ``fill_at="close"`` at the close of the
  instrument's bar the strategy is handling (for another instrument: at its next bar's close).
- Limit orders fill when the bar's range reaches the limit; at the open when the bar gaps through
  it. IOC/FOK orders get their first bar's open only: not marketable there, they are canceled.
- Stops trigger when the range reaches the trigger and fill at the trigger, or at the open on a
  gap; a stop-limit becomes a limit once triggered.
- Marketable-on-arrival orders pay the taker fee, resting limit orders the maker fee; taker fills
  (market, stop, marketable limit at the open, triggered stop-limit) are moved against the order by
  ``slippage_bps``, a limit order never beyond its limit price.
- A DAY order is good for the UTC day of the first bar it can trade on (so on daily bars it gets
  the next session), and expires at the first bar of a later day.
- Requests are checked on submit: lot size, minimum quantity and notional, buying power.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Literal

import msgspec

from tradestack.core.events import Bar
from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument
from tradestack.core.orders import (
    Fill,
    Liquidity,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderEvent,
    OrderExpired,
    OrderRejected,
    OrderSide,
    OrderSubmitted,
    OrderType,
    TimeInForce,
)
from tradestack.execution.costs import FeeModel, SlippageModel
from tradestack.portfolio.account import Portfolio

_NS_PER_DAY = 86_400_000_000_000
EventSink = Callable[[Order, OrderEvent], None]


class BarVenueConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Settings of :class:`SimulatedBarVenue`."""

    fill_at: Literal["next_open", "close"] = "next_open"
    slippage_bps: Decimal = Decimal(0)
    maker_fee_bps: Decimal | None = None
    taker_fee_bps: Decimal | None = None
    allow_short: bool = True
    leverage: Decimal = Decimal(1)


class SimulatedBarVenue:
    """Matches orders against bars and reports every outcome as an order event to ``sink``."""

    def __init__(
        self,
        config: BarVenueConfig,
        portfolio: Portfolio,
        instruments: dict[InstrumentId, Instrument],
        sink: EventSink,
    ) -> None:
        if config.leverage <= 0:
            raise ValueError(f"leverage must be > 0, got {config.leverage}")
        self.config = config
        self.portfolio = portfolio
        self.instruments = instruments
        self._sink = sink
        self._fees = FeeModel(config.maker_fee_bps, config.taker_fee_bps)
        self._slippage = SlippageModel(config.slippage_bps)
        self._fill_at_close = config.fill_at == "close"
        self.working: dict[InstrumentId, list[Order]] = {}
        self._close_queue: list[Order] = []
        self._arrival_day: dict[str, int] = {}
        self._seen: set[str] = set()
        self._fill_seq = 0

    # -- requests -------------------------------------------------------------------------------
    def submit(self, order: Order, now_ns: int) -> None:
        """Accept or reject a new order."""
        self._sink(order, OrderSubmitted(order.client_order_id, now_ns))
        reason = self._reject_reason(order)
        if reason:
            self._sink(order, OrderRejected(order.client_order_id, now_ns, reason))
            return
        self._sink(order, OrderAccepted(order.client_order_id, now_ns, order.client_order_id))
        if self._fill_at_close and order.order_type is OrderType.MARKET:
            self._close_queue.append(order)
        else:
            self.working.setdefault(order.instrument_id, []).append(order)

    def cancel(self, order: Order, now_ns: int, reason: str = "canceled by strategy") -> bool:
        """Cancel a working order; False when it is no longer working."""
        book = self.working.get(order.instrument_id, [])
        if order in book:
            book.remove(order)
        elif order in self._close_queue:
            self._close_queue.remove(order)
        else:
            return False
        self._sink(order, OrderCanceled(order.client_order_id, now_ns, reason))
        return True

    # -- market data ----------------------------------------------------------------------------
    def on_bar(self, bar: Bar) -> None:
        """Match working orders of the bar's instrument against it (before the strategy sees it)."""
        book = self.working.get(bar.instrument_id)
        if not book:
            return
        for order in list(book):
            # a handler run by an earlier fill of this bar may have canceled this order already
            if order.ts_init_ns >= bar.ts_event_ns or order not in book:
                continue
            self._match(order, bar)
            if not order.is_open:
                if order in book:
                    book.remove(order)
                self._arrival_day.pop(order.client_order_id, None)
                self._seen.discard(order.client_order_id)

    def after_bar(self, bar: Bar) -> None:
        """With ``fill_at="close"``: fill the queued market orders of this bar's instrument at its
        close, after the strategy saw the bar. Orders for other instruments wait for their own
        instrument's next bar, whose close is not known yet."""
        due = [o for o in self._close_queue if o.instrument_id == bar.instrument_id]
        for order in due:
            self._close_queue.remove(order)
            self._fill(order, Decimal(repr(bar.close)), Liquidity.TAKER, bar.ts_event_ns, slip=True)

    # -- matching -------------------------------------------------------------------------------
    def _match(self, order: Order, bar: Bar) -> None:
        ts = bar.ts_event_ns
        day = ts // _NS_PER_DAY
        arrival_day = self._arrival_day.setdefault(order.client_order_id, day)
        first_bar = arrival_day == day and order.client_order_id not in self._seen
        self._seen.add(order.client_order_id)
        if order.time_in_force is TimeInForce.DAY and day > arrival_day:
            self._sink(order, OrderExpired(order.client_order_id, ts))
            return
        buy = order.side is OrderSide.BUY
        kind = order.order_type
        if kind is OrderType.MARKET:
            self._fill(order, Decimal(repr(bar.open)), Liquidity.TAKER, ts, slip=True)
            return
        if kind in (OrderType.STOP, OrderType.STOP_LIMIT) and not order.triggered:
            assert order.trigger_price is not None
            trigger = float(order.trigger_price)
            gapped = bar.open >= trigger if buy else bar.open <= trigger
            reached = gapped or (bar.high >= trigger if buy else bar.low <= trigger)
            if not reached:
                self._end_of_first_bar(order, ts, first_bar)
                return
            order.triggered = True
            touch = Decimal(repr(bar.open)) if gapped else order.trigger_price
            if kind is OrderType.STOP:
                self._fill(order, touch, Liquidity.TAKER, ts, slip=True)
                return
            assert order.price is not None
            if (touch <= order.price) if buy else (touch >= order.price):
                self._fill(order, touch, Liquidity.TAKER, ts, slip=True)
            else:
                self._end_of_first_bar(order, ts, first_bar)
            return
        assert order.price is not None
        limit = float(order.price)
        if (bar.open <= limit) if buy else (bar.open >= limit):
            if order.post_only and first_bar:
                self._sink(
                    order,
                    OrderCanceled(
                        order.client_order_id, ts, "post-only limit would take liquidity"
                    ),
                )
                return
            liquidity = Liquidity.TAKER if first_bar and not order.triggered else Liquidity.MAKER
            self._fill(
                order, Decimal(repr(bar.open)), liquidity, ts, slip=liquidity is Liquidity.TAKER
            )
        elif first_bar and order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            self._end_of_first_bar(order, ts, first_bar)
        elif (bar.low <= limit) if buy else (bar.high >= limit):
            self._fill(order, order.price, Liquidity.MAKER, ts, slip=False)
        else:
            self._end_of_first_bar(order, ts, first_bar)

    def _end_of_first_bar(self, order: Order, ts: int, first_bar: bool) -> None:
        if first_bar and order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
            self._sink(
                order,
                OrderCanceled(order.client_order_id, ts, f"{order.time_in_force.value} not filled"),
            )

    def _fill(
        self, order: Order, raw_price: Decimal, liquidity: Liquidity, ts: int, *, slip: bool
    ) -> None:
        inst = self.instruments[order.instrument_id]
        price = inst.round_price(raw_price)
        if slip:
            price = self._slippage.adjust(inst, order.side, price)
            if order.price is not None:  # a limit never fills beyond its limit
                buy = order.side is OrderSide.BUY
                price = min(price, order.price) if buy else max(price, order.price)
        if price <= 0:
            self._sink(
                order,
                OrderCanceled(order.client_order_id, ts, f"fill price {price} is not positive"),
            )
            return
        qty = order.leaves_qty
        position = self.portfolio.position(order.instrument_id).qty
        if order.reduce_only:
            opposite = position < 0 if order.side is OrderSide.BUY else position > 0
            if not opposite:
                self._sink(
                    order,
                    OrderCanceled(
                        order.client_order_id, ts, "reduce-only order would increase the position"
                    ),
                )
                return
            qty = min(qty, abs(position))
        shortfall = self._buying_power_shortfall(inst, order.side, qty, price)
        if shortfall:
            self._sink(
                order,
                OrderCanceled(
                    order.client_order_id,
                    ts,
                    f"insufficient buying power at fill price {price}: {shortfall}",
                ),
            )
            return
        notional = qty * price * inst.multiplier
        self._fill_seq += 1
        fill = Fill(
            client_order_id=order.client_order_id,
            instrument_id=order.instrument_id,
            side=order.side,
            qty=qty,
            price=price,
            fee=self._fees.fee(inst, notional, liquidity),
            liquidity=liquidity,
            ts_event_ns=ts,
            fill_id=f"F{self._fill_seq}",
        )
        self._sink(order, fill)
        if order.is_open and order.reduce_only:
            self._sink(
                order, OrderCanceled(order.client_order_id, ts, "reduce-only remainder canceled")
            )

    # -- checks ---------------------------------------------------------------------------------
    def _reject_reason(self, order: Order) -> str:
        inst = self.instruments.get(order.instrument_id)
        if inst is None:
            return f"unknown instrument {order.instrument_id}"
        if not inst.is_lot_multiple(order.qty):
            return f"qty {order.qty} is not a multiple of lot size {inst.lot_size}"
        if order.qty < inst.min_qty:
            return f"qty {order.qty} is below the minimum quantity {inst.min_qty}"
        for name, px in (("price", order.price), ("trigger_price", order.trigger_price)):
            if px is not None and px % inst.tick_size != 0:
                return f"{name} {px} is not a multiple of tick size {inst.tick_size}"
        position = self.portfolio.position(order.instrument_id).qty
        if not self.config.allow_short and order.side is OrderSide.SELL:
            pending = sum(
                (
                    o.leaves_qty
                    for o in self._open_orders(order.instrument_id)
                    if o.side is OrderSide.SELL
                ),
                Decimal(0),
            )
            if order.qty + pending > position:
                return (
                    f"insufficient position: selling {order.qty} with {position} held "
                    "and shorting disabled"
                )
        ref = self._reference_price(order)
        if ref is None:
            return ""
        notional = inst.notional(order.qty, ref)
        if notional < inst.min_notional:
            return f"notional {notional:.8g} is below the minimum notional {inst.min_notional}"
        shortfall = self._buying_power_shortfall(inst, order.side, order.qty, ref, pending=True)
        return f"insufficient cash: {shortfall}" if shortfall else ""

    def _reference_price(self, order: Order) -> Decimal | None:
        if order.price is not None:
            return order.price
        if order.trigger_price is not None:
            return order.trigger_price
        if not self.portfolio.has_mark(order.instrument_id):
            return None
        return Decimal(repr(self.portfolio.mark_price(order.instrument_id)))

    def _open_orders(self, instrument_id: InstrumentId) -> list[Order]:
        book = self.working.get(instrument_id, [])
        if not self._close_queue:
            return book
        return book + [o for o in self._close_queue if o.instrument_id == instrument_id]

    def _buying_power_shortfall(
        self,
        inst: Instrument,
        side: OrderSide,
        qty: Decimal,
        price: Decimal,
        *,
        pending: bool = False,
    ) -> str:
        """Empty when the account can carry the position after this order, else why not."""
        current = self.portfolio.position(inst.id).qty
        if pending:
            for o in self._open_orders(inst.id):
                current += o.leaves_qty if o.side is OrderSide.BUY else -o.leaves_qty
        after = current + side.sign * qty
        if abs(after) <= abs(current):
            return ""
        equity = Decimal(repr(self.portfolio.equity()))
        capacity = equity * self.config.leverage
        gross = self.portfolio.gross_exposure() - self.portfolio.exposure(inst.id)
        needed = abs(after) * price * inst.multiplier + Decimal(repr(max(gross, 0.0)))
        if needed > capacity:
            return (
                f"needs {needed:.2f} of exposure but equity {equity:.2f} x leverage "
                f"{self.config.leverage} allows {capacity:.2f}"
            )
        return ""
