"""RiskConfig: loads from a YAML mapping, names unknown keys and bad values."""

from __future__ import annotations

import msgspec
import pytest
import yaml

from tradestack.risk import RiskConfig


def test_defaults() -> None:
    config = RiskConfig()
    assert config.price_collar_bps == 500.0
    assert config.max_drawdown_fraction == 0.25
    assert config.max_order_notional is None
    assert config.history_window == 100


def test_loads_from_yaml() -> None:
    data = yaml.safe_load(
        """
        max_order_notional: 50000
        max_position_qty: 3
        leverage: 3
        max_concentration_fraction: 0.4
        kill_switch_state_path: state/kill.json
        """
    )
    config = msgspec.convert(data, RiskConfig)
    assert config.max_order_notional == 50_000.0
    assert config.leverage == 3.0
    assert config.kill_switch_state_path == "state/kill.json"
    assert RiskConfig.from_mapping(data) == config


def test_unknown_key_is_named() -> None:
    with pytest.raises(msgspec.ValidationError, match="unknown field `max_ordr_qty`"):
        msgspec.convert({"max_ordr_qty": 1}, RiskConfig)


@pytest.mark.parametrize(
    ("field", "value", "want"),
    [
        ("max_drawdown_fraction", 0.0, "a fraction in (0, 1] or null"),
        ("max_drawdown_fraction", 1.5, "a fraction in (0, 1] or null"),
        ("stop_loss_fraction", -0.1, "a fraction in (0, 1] or null"),
        ("max_concentration_fraction", 2.0, "a fraction in (0, 1] or null"),
        ("max_order_notional", 0.0, "a positive number or null"),
        ("price_collar_bps", float("nan"), "a positive number or null"),
        ("leverage", 0.0, "a positive number"),
        ("rate_window_ns", 0, "a positive integer"),
        ("max_orders_per_window", 0, "a positive integer or null"),
        ("correlation_window", 2, "an integer >= 3"),
        ("correlation_threshold", 1.5, "in [0, 1]"),
        ("vol_regime_scale", 1.5, "a fraction in (0, 1]"),
        ("vol_regime_long_window", 20, "greater than vol_regime_short_window (20)"),
    ],
)
def test_bad_value_names_field_and_value(field: str, value: float, want: str) -> None:
    with pytest.raises(ValueError, match=rf"risk\.{field} must be ") as info:
        RiskConfig(**{field: value})  # type: ignore[arg-type]
    assert want in str(info.value) and repr(value) in str(info.value)
    with pytest.raises(msgspec.ValidationError, match=rf"risk\.{field} must be "):
        msgspec.convert({field: value}, RiskConfig)


def test_edges_are_valid() -> None:
    RiskConfig(max_drawdown_fraction=1.0, stop_loss_fraction=1.0, max_gross_exposure_fraction=3.0)
    RiskConfig(correlation_threshold=0.0, vol_regime_scale=1.0, max_orders_per_window=None)
