"""Typed class-attribute parameters: defaults, overrides, coercion, and "did you mean" errors."""

from __future__ import annotations

from decimal import Decimal
from typing import ClassVar, Literal

import pytest

from tradestack.engine import ParameterError, Strategy
from tradestack.strategies.sma_cross import SmaCross


class _Demo(Strategy):
    window: int = 5
    weight: float = 0.5
    mode: Literal["fast", "slow"] = "fast"
    budget: Decimal = Decimal("10")
    counter: ClassVar[int] = 0
    _private: int = 3


class _Child(_Demo):
    extra: bool = False


def test_defaults_and_overrides() -> None:
    s = _Demo(window=7, weight=1, budget="2.5")
    assert (s.window, s.weight, s.mode, s.budget) == (7, 1.0, "fast", Decimal("2.5"))
    assert isinstance(s.weight, float)
    assert _Demo.parameters() == {
        "window": 5,
        "weight": 0.5,
        "mode": "fast",
        "budget": Decimal("10"),
    }


def test_inherited_parameters() -> None:
    assert set(_Child.parameters()) == {"window", "weight", "mode", "budget", "extra"}
    assert _Child(extra=True, window=2).current_parameters()["extra"] is True


def test_misspelled_parameter_suggests_the_right_one() -> None:
    with pytest.raises(
        ParameterError, match=r"SmaCross has no parameter 'fsat'; did you mean 'fast'\?"
    ):
        SmaCross(fsat=5)


def test_unknown_parameter_without_close_match_lists_known() -> None:
    with pytest.raises(ParameterError, match=r"no parameter 'zzz' \(parameters: window, weight"):
        _Demo(zzz=1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": "7"}, "window must be int, got str"),
        ({"window": True}, "window must be int, got bool"),
        ({"mode": "medium"}, "mode must be one of"),
    ],
)
def test_wrong_types_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ParameterError, match=message):
        _Demo(**kwargs)


def test_cross_field_validation() -> None:
    with pytest.raises(ParameterError, match="fast < slow"):
        SmaCross(fast=30, slow=10)
