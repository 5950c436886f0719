"""The stable names of the risk rules, as they appear in denials, actions, logs and reports."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["RiskRule"]


class RiskRule(StrEnum):
    """One risk rule; the value is the short stable string reports count by."""

    # pre-trade: every order
    KILL_SWITCH_HALTED = "kill_switch_halted"
    KILL_SWITCH_REDUCING = "kill_switch_reducing"
    INVALID_FLATTEN = "invalid_flatten"
    NO_REFERENCE_PRICE = "no_reference_price"
    PRICE_COLLAR = "price_collar"
    MAX_ORDER_NOTIONAL = "max_order_notional"
    MAX_ORDER_QTY = "max_order_qty"
    MAX_POSITION = "max_position"
    GROSS_EXPOSURE = "gross_exposure"
    BUYING_POWER = "buying_power"
    DUPLICATE_ORDER = "duplicate_order"
    ORDER_RATE = "order_rate"
    # portfolio: each evaluation
    DRAWDOWN_BREAKER = "drawdown_breaker"
    STOP_LOSS = "stop_loss"
    TAKE_PROFIT = "take_profit"
    # sizing: each target
    VOL_REGIME = "vol_regime"
    CORRELATION = "correlation"
    CONCENTRATION = "concentration"
