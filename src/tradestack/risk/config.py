"""Risk limits in one frozen config: load with ``msgspec.convert(yaml_dict, RiskConfig)``."""

from __future__ import annotations

import math
from collections.abc import Mapping

import msgspec

__all__ = ["RiskConfig"]


def _require(ok: bool, name: str, value: object, want: str) -> None:
    if not ok:
        raise ValueError(f"risk.{name} must be {want}, got {value!r}")


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0.0


class RiskConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Every limit of the risk layer; ``None`` switches a rule off.

    Pre-trade (each order): ``max_order_notional`` / ``max_order_qty`` cap one order (notional at
    the order's price, or the mid for a market order, times the instrument multiplier);
    ``price_collar_bps`` denies limit/stop prices farther than that from the mid;
    ``max_position_notional`` / ``max_position_qty`` cap the position after the order and the
    open orders on the same side fill; ``check_buying_power`` with ``leverage`` denies buys the
    cash cannot pay for (spot/equity, ``notional / leverage``) and margined exposure that does not
    fit in the free equity (perpetual, ``notional / leverage``); an order identical to one sent
    within ``duplicate_window_ns`` that is still open is denied; at most ``max_orders_per_window``
    orders pass per trailing ``rate_window_ns``.

    Portfolio (each evaluation): ``max_drawdown_fraction`` from the equity peak trips the circuit
    breaker (flatten everything, halt); ``stop_loss_fraction`` / ``take_profit_fraction`` flatten
    one position on its unrealized return vs its average entry price.

    Sizing (each target): ``max_gross_exposure_fraction`` caps Σ|notional| at that multiple of
    equity (it may exceed 1 on margin); ``max_concentration_fraction`` caps one instrument's share
    of the gross exposure (only with two instruments or more); correlation-aware sizing shrinks a
    target whose rolling return correlation with same-direction holdings exceeds
    ``correlation_threshold``; ``vol_regime_scale`` multiplies targets while the short-window
    volatility exceeds ``vol_regime_ratio`` times the long-window one.

    Kill switch: ``kill_switch_state_path`` persists its state across restarts;
    ``kill_switch_flag_path`` is a file whose content (halt / reduce / resume) sets it.
    """

    max_order_notional: float | None = None
    max_order_qty: float | None = None
    price_collar_bps: float | None = 500.0
    max_position_notional: float | None = None
    max_position_qty: float | None = None
    check_buying_power: bool = True
    leverage: float = 1.0
    duplicate_window_ns: int = 1_000_000_000
    max_orders_per_window: int | None = 50
    rate_window_ns: int = 1_000_000_000
    max_drawdown_fraction: float | None = 0.25
    stop_loss_fraction: float | None = 0.05
    take_profit_fraction: float | None = 0.10
    max_gross_exposure_fraction: float | None = 1.0
    max_concentration_fraction: float | None = None
    correlation_threshold: float = 0.7
    correlation_window: int = 60
    correlation_aware: bool = True
    vol_regime_short_window: int = 20
    vol_regime_long_window: int = 100
    vol_regime_ratio: float | None = 1.5
    vol_regime_scale: float = 0.5
    kill_switch_state_path: str | None = None
    kill_switch_flag_path: str | None = None

    def __post_init__(self) -> None:
        for name in (
            "max_order_notional",
            "max_order_qty",
            "price_collar_bps",
            "max_position_notional",
            "max_position_qty",
            "max_gross_exposure_fraction",
            "take_profit_fraction",
            "vol_regime_ratio",
        ):
            value = getattr(self, name)
            _require(value is None or _positive(value), name, value, "a positive number or null")
        for name in ("max_drawdown_fraction", "stop_loss_fraction", "max_concentration_fraction"):
            value = getattr(self, name)
            _require(
                value is None or (_positive(value) and value <= 1.0),
                name,
                value,
                "a fraction in (0, 1] or null",
            )
        _require(_positive(self.leverage), "leverage", self.leverage, "a positive number")
        _require(
            _positive(self.vol_regime_scale) and self.vol_regime_scale <= 1.0,
            "vol_regime_scale",
            self.vol_regime_scale,
            "a fraction in (0, 1]",
        )
        _require(
            math.isfinite(self.correlation_threshold) and 0.0 <= self.correlation_threshold <= 1.0,
            "correlation_threshold",
            self.correlation_threshold,
            "in [0, 1]",
        )
        for name in ("duplicate_window_ns", "rate_window_ns"):
            value = getattr(self, name)
            _require(value > 0, name, value, "a positive integer")
        _require(
            self.max_orders_per_window is None or self.max_orders_per_window > 0,
            "max_orders_per_window",
            self.max_orders_per_window,
            "a positive integer or null",
        )
        _require(
            self.correlation_window >= 3,
            "correlation_window",
            self.correlation_window,
            "an integer >= 3",
        )
        _require(
            self.vol_regime_short_window >= 2,
            "vol_regime_short_window",
            self.vol_regime_short_window,
            "an integer >= 2",
        )
        _require(
            self.vol_regime_long_window > self.vol_regime_short_window,
            "vol_regime_long_window",
            self.vol_regime_long_window,
            f"greater than vol_regime_short_window ({self.vol_regime_short_window})",
        )
        for name in ("kill_switch_state_path", "kill_switch_flag_path"):
            value = getattr(self, name)
            _require(value is None or bool(value.strip()), name, value, "a non-empty path or null")

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> RiskConfig:
        """Build from a parsed YAML/JSON mapping; a bad or unknown key raises a ValueError
        (``msgspec.ValidationError``) that names it."""
        return msgspec.convert(dict(data), cls)

    @property
    def history_window(self) -> int:
        """How many returns per instrument the portfolio rules keep."""
        return max(self.correlation_window, self.vol_regime_long_window)
