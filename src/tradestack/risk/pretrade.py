"""Pre-trade checks: every order passes them before it leaves for a venue, or is denied."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from decimal import Decimal

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.orders import Order, OrderSide
from tradestack.portfolio.account import Portfolio
from tradestack.risk.config import RiskConfig
from tradestack.risk.denials import Denial, DenialLog
from tradestack.risk.kill_switch import KillSwitch, KillSwitchState
from tradestack.risk.numeric import exceeds, fmt
from tradestack.risk.rule_names import RiskRule

__all__ = ["OrderExposure", "PreTradeRisk"]

_ZERO = Decimal(0)


class OrderExposure:
    """What one order would do to its instrument's position, counting the open orders on the
    same side, in exact quantities: ``after`` is the position once all of them fill;
    ``reducing`` is true when the order only shrinks the position (opposite to it, and with the
    same-side open orders no larger than it, or flagged ``reduce_only``); ``opening_qty`` is the
    part of the order that adds exposure (0 for a reducing order, the excess for an order that
    flips the position)."""

    __slots__ = ("after", "opening_qty", "pending", "position", "reducing")

    def __init__(self, order: Order, position: Decimal, open_orders: Sequence[Order]) -> None:
        sign = order.side.sign
        self.position = position
        self.pending = sum(
            (
                o.leaves_qty
                for o in open_orders
                if o.instrument_id == order.instrument_id
                and o.side is order.side
                and o.client_order_id != order.client_order_id
                and not o.status.is_terminal
            ),
            start=_ZERO,
        )
        self.after = position + sign * (self.pending + order.qty)
        opposite = position * sign < 0
        closable = max(_ZERO, abs(position) - self.pending) if opposite else _ZERO
        self.reducing = opposite and (
            order.reduce_only or self.pending + order.qty <= abs(position)
        )
        self.opening_qty = _ZERO if self.reducing else max(_ZERO, order.qty - closable)

    def describe(self, order: Order) -> str:
        return (
            f"position {fmt(float(self.position))} + open {order.side.value} "
            f"{fmt(float(self.pending))} + this {order.qty} -> {fmt(float(self.after))}"
        )


class PreTradeRisk:
    """The per-order risk gate: kill switch, price collar, order size, position and gross
    exposure limits, buying power, duplicate orders and the order rate.

    An order that only reduces a position skips the size, position, exposure and buying-power
    limits (there is always a way out) but not the kill switch's HALTED state, the collar, the
    duplicate or the rate rule. ``flatten=True`` marks the risk layer's own closing orders: they
    pass in every state as long as they really close (opposite side, no larger than the
    position). Without a finite positive ``mid`` nothing but a flatten passes (fail safe). Every
    denial goes to ``denials``; every order that passes is remembered for the duplicate and rate
    rules.

    Order in which the rules are tried (the first that fires names the denial): kill switch,
    reference price, price collar, max order notional, max order qty, max position (qty, then
    notional at the mid), gross exposure, buying power, duplicate order, order rate.
    """

    def __init__(
        self,
        config: RiskConfig,
        kill_switch: KillSwitch | None = None,
        *,
        denials: DenialLog | None = None,
    ) -> None:
        self.config = config
        self.kill_switch = kill_switch if kill_switch is not None else KillSwitch()
        self.denials = denials if denials is not None else DenialLog()
        self._instruments: dict[InstrumentId, Instrument] = {}
        self._recent: deque[tuple[int, Order]] = deque()
        self._sent_ts: deque[int] = deque()

    def check(
        self,
        order: Order,
        *,
        now_ns: int,
        instrument: Instrument,
        portfolio: Portfolio,
        mid: float,
        open_orders: Sequence[Order],
        flatten: bool = False,
    ) -> Denial | None:
        """None when ``order`` may be sent (it is then recorded as sent), else the recorded
        :class:`Denial`. ``mid`` is the instrument's current mid (or last) price;
        ``open_orders`` are the working orders of the account (any instrument)."""
        self._instruments[instrument.id] = instrument
        position = portfolio.positions.get(order.instrument_id)
        exposure = OrderExposure(order, position.qty if position else _ZERO, open_orders)
        reason = (
            self._flatten_reason(order, exposure)
            if flatten
            else self._reason(order, exposure, now_ns, instrument, portfolio, mid, open_orders)
        )
        if reason is not None:
            rule, detail = reason
            return self.denials.record(
                Denial(now_ns, str(rule), order.instrument_id, order.client_order_id, detail)
            )
        self._recent.append((now_ns, order))
        self._sent_ts.append(now_ns)
        return None

    # -- the rules, in order ----------------------------------------------------------------
    def _flatten_reason(self, order: Order, exp: OrderExposure) -> tuple[RiskRule, str] | None:
        self.kill_switch.refresh()
        if exp.position * order.side.sign < 0 and order.qty <= abs(exp.position):
            return None
        return (
            RiskRule.INVALID_FLATTEN,
            f"flatten order {order.side.value} {order.qty} does not close position "
            f"{fmt(float(exp.position))}",
        )

    def _reason(
        self,
        order: Order,
        exp: OrderExposure,
        now_ns: int,
        instrument: Instrument,
        portfolio: Portfolio,
        mid: float,
        open_orders: Sequence[Order],
    ) -> tuple[RiskRule, str] | None:
        cfg = self.config
        state = self.kill_switch.refresh()
        if state is KillSwitchState.HALTED:
            return RiskRule.KILL_SWITCH_HALTED, f"trading halted: {self.kill_switch.reason}"
        if state is KillSwitchState.REDUCING and not exp.reducing:
            return (
                RiskRule.KILL_SWITCH_REDUCING,
                f"only reducing orders allowed ({self.kill_switch.reason}); {exp.describe(order)}",
            )
        if not (math.isfinite(mid) and mid > 0.0):
            return RiskRule.NO_REFERENCE_PRICE, f"no valid mid price ({mid}) to check against"
        if cfg.price_collar_bps is not None:
            for name, value in (("price", order.price), ("trigger price", order.trigger_price)):
                if value is None:
                    continue
                bps = abs(float(value) - mid) / mid * 1e4
                if exceeds(bps, cfg.price_collar_bps):
                    return (
                        RiskRule.PRICE_COLLAR,
                        f"{order.order_type.value} {name} {value} is {bps:.1f} bps from mid "
                        f"{fmt(mid)} (collar {fmt(cfg.price_collar_bps)} bps)",
                    )
        if not exp.reducing:
            reason = self._size_reason(order, exp, instrument, portfolio, mid)
            if reason is None and cfg.check_buying_power:
                reason = self._buying_power_reason(
                    order, exp, instrument, portfolio, mid, open_orders
                )
            if reason is not None:
                return reason
        duplicate = self._duplicate_of(order, now_ns, open_orders)
        if duplicate is not None:
            prev_ts, prev = duplicate
            return (
                RiskRule.DUPLICATE_ORDER,
                f"same {order.side.value} {order.qty} {order.order_type.value} as "
                f"{prev.client_order_id} sent {(now_ns - prev_ts) / 1e6:g} ms ago, still open "
                f"(window {cfg.duplicate_window_ns / 1e6:g} ms)",
            )
        if cfg.max_orders_per_window is not None:
            sent = self._sent_in_window(now_ns)
            if sent >= cfg.max_orders_per_window:
                return (
                    RiskRule.ORDER_RATE,
                    f"{sent} orders sent in the last {cfg.rate_window_ns / 1e6:g} ms "
                    f"(limit {cfg.max_orders_per_window})",
                )
        return None

    def _size_reason(
        self,
        order: Order,
        exp: OrderExposure,
        instrument: Instrument,
        portfolio: Portfolio,
        mid: float,
    ) -> tuple[RiskRule, str] | None:
        cfg = self.config
        mult = float(instrument.multiplier)
        price = _order_price(order, mid)
        notional = float(order.qty) * price * mult
        if cfg.max_order_notional is not None and exceeds(notional, cfg.max_order_notional):
            return (
                RiskRule.MAX_ORDER_NOTIONAL,
                f"order notional {fmt(notional)} ({order.qty} x {fmt(price)} x {fmt(mult)}) "
                f"exceeds {fmt(cfg.max_order_notional)}",
            )
        if cfg.max_order_qty is not None and exceeds(float(order.qty), cfg.max_order_qty):
            return RiskRule.MAX_ORDER_QTY, f"order qty {order.qty} exceeds {fmt(cfg.max_order_qty)}"
        what = exp.describe(order)
        after = abs(float(exp.after))
        if cfg.max_position_qty is not None and exceeds(after, cfg.max_position_qty):
            return (
                RiskRule.MAX_POSITION,
                f"{what} exceeds max_position_qty {fmt(cfg.max_position_qty)}",
            )
        after_notional = after * mid * mult
        if cfg.max_position_notional is not None and exceeds(
            after_notional, cfg.max_position_notional
        ):
            return (
                RiskRule.MAX_POSITION,
                f"{what}, notional {fmt(after_notional)} at mid {fmt(mid)} exceeds "
                f"max_position_notional {fmt(cfg.max_position_notional)}",
            )
        if cfg.max_gross_exposure_fraction is not None:
            mark = portfolio.mark_price(order.instrument_id)
            current = abs(float(exp.position)) * (mark if math.isfinite(mark) else mid) * mult
            gross = portfolio.gross_exposure() - current + after_notional
            cap = cfg.max_gross_exposure_fraction * portfolio.equity()
            if after_notional > current and exceeds(gross, cap):
                return (
                    RiskRule.GROSS_EXPOSURE,
                    f"gross exposure after fill {fmt(gross)} exceeds "
                    f"{fmt(cfg.max_gross_exposure_fraction)} x equity = {fmt(cap)}",
                )
        return None

    def _buying_power_reason(
        self,
        order: Order,
        exp: OrderExposure,
        instrument: Instrument,
        portfolio: Portfolio,
        mid: float,
        open_orders: Sequence[Order],
    ) -> tuple[RiskRule, str] | None:
        """Cash account for spot/equity buys; margin for perpetuals and spot/equity shorts."""
        if exp.opening_qty <= 0:
            return None
        lev = self.config.leverage
        mult = float(instrument.multiplier)
        notional = float(exp.opening_qty) * _order_price(order, mid) * mult
        if instrument.kind is not InstrumentKind.PERPETUAL and order.side is OrderSide.BUY:
            fee_rate = float(instrument.taker_fee_bps) / 1e4
            need = notional / lev + notional * fee_rate
            reserved = sum(
                self._order_notional(o, portfolio) / lev
                for o in open_orders
                if o.side is OrderSide.BUY
                and o.client_order_id != order.client_order_id
                and not o.status.is_terminal
                and not self._margined(o.instrument_id)
            )
            available = portfolio.cash_f - reserved
            if exceeds(need, available):
                return (
                    RiskRule.BUYING_POWER,
                    f"buy needs cash {fmt(need)} (notional {fmt(notional)} / leverage {fmt(lev)} "
                    f"+ fees) but only {fmt(available)} is free (cash {fmt(portfolio.cash_f)} - "
                    f"open buys {fmt(reserved)})",
                )
            return None
        need = notional / lev
        in_use = self._margin_in_use(order, portfolio, open_orders)
        available = portfolio.equity() - in_use
        if exceeds(need, available):
            return (
                RiskRule.BUYING_POWER,
                f"margin {fmt(need)} (notional {fmt(notional)} / leverage {fmt(lev)}) does not "
                f"fit in free equity {fmt(available)} (equity {fmt(portfolio.equity())} - margin "
                f"in use {fmt(in_use)})",
            )
        return None

    # -- helpers -----------------------------------------------------------------------------
    def _margined(self, instrument_id: InstrumentId) -> bool:
        inst = self._instruments.get(instrument_id)
        return inst is not None and inst.kind is InstrumentKind.PERPETUAL

    def _margin_in_use(
        self, order: Order, portfolio: Portfolio, open_orders: Sequence[Order]
    ) -> float:
        """Σ |value| / leverage of perpetual positions and short spot/equity positions, plus
        the open orders that can add to them."""
        total = 0.0
        for inst_id, position in portfolio.positions.items():
            if position.qty_f == 0.0 or not (self._margined(inst_id) or position.qty_f < 0.0):
                continue
            mark = portfolio.mark_price(inst_id)
            price = mark if math.isfinite(mark) else position.avg_price_f
            total += abs(position.qty_f) * price * position.multiplier_f
        for o in open_orders:
            if o.client_order_id == order.client_order_id or o.status.is_terminal:
                continue
            held = portfolio.positions.get(o.instrument_id)
            short_side = o.side is OrderSide.SELL and (held is None or held.qty_f <= 0.0)
            if self._margined(o.instrument_id) or short_side:
                total += self._order_notional(o, portfolio)
        return total / self.config.leverage

    def _order_notional(self, order: Order, portfolio: Portfolio) -> float:
        price = order.price if order.price is not None else order.trigger_price
        value = float(price) if price is not None else portfolio.mark_price(order.instrument_id)
        if not math.isfinite(value):
            return 0.0
        position = portfolio.positions.get(order.instrument_id)
        mult = position.multiplier_f if position is not None else 1.0
        return float(order.leaves_qty) * value * mult

    def _duplicate_of(
        self, order: Order, now_ns: int, open_orders: Sequence[Order]
    ) -> tuple[int, Order] | None:
        horizon = now_ns - self.config.duplicate_window_ns
        while self._recent and self._recent[0][0] <= horizon:
            self._recent.popleft()
        open_ids = {o.client_order_id for o in open_orders}
        for ts, prev in reversed(self._recent):
            if (
                prev.instrument_id == order.instrument_id
                and prev.side is order.side
                and prev.qty == order.qty
                and prev.order_type is order.order_type
                and prev.price == order.price
                and prev.trigger_price == order.trigger_price
                and (prev.client_order_id in open_ids or not prev.status.is_terminal)
            ):
                return ts, prev
        return None

    def _sent_in_window(self, now_ns: int) -> int:
        horizon = now_ns - self.config.rate_window_ns
        while self._sent_ts and self._sent_ts[0] <= horizon:
            self._sent_ts.popleft()
        return len(self._sent_ts)


def _order_price(order: Order, mid: float) -> float:
    """The price an order is valued at: its limit price, else its trigger, else the mid."""
    price: Decimal | None = order.price if order.price is not None else order.trigger_price
    return float(price) if price is not None else mid
