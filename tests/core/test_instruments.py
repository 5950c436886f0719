"""Instrument rounding: idempotent, on the grid, nearest tick for prices, toward zero for qty."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument

PROPS = settings(max_examples=200, deadline=None, derandomize=True)

increments = st.sampled_from(
    [Decimal(s) for s in ("0.01", "0.5", "0.25", "1", "5", "0.001", "0.00001", "0.1", "10")]
)
decimals = st.decimals(
    min_value=Decimal("-1e6"), max_value=Decimal("1e6"), allow_nan=False, places=8
)
floats = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
numbers = st.one_of(decimals, floats)


def _inst(tick: Decimal, lot: Decimal) -> Instrument:
    return Instrument(InstrumentId("X"), tick_size=tick, lot_size=lot)


@PROPS
@given(tick=increments, lot=increments, x=numbers)
def test_rounding_is_idempotent_and_on_grid(tick: Decimal, lot: Decimal, x: Decimal) -> None:
    inst = _inst(tick, lot)
    p = inst.round_price(x)
    q = inst.round_qty(x)
    assert inst.round_price(p) == p
    assert inst.round_qty(q) == q
    assert p % tick == 0
    assert q % lot == 0
    assert inst.is_lot_multiple(q)
    # a rounded value survives the float round trip the engine sometimes makes
    assert inst.round_price(float(p)) == p


@PROPS
@given(tick=increments, x=numbers)
def test_round_price_goes_to_the_nearest_tick(tick: Decimal, x: Decimal) -> None:
    inst = _inst(tick, Decimal(1))
    exact = Decimal(str(x))
    p = inst.round_price(x)
    assert abs(p - exact) <= tick / 2


@PROPS
@given(lot=increments, x=numbers)
def test_round_qty_never_increases_size(lot: Decimal, x: Decimal) -> None:
    inst = _inst(Decimal("0.01"), lot)
    exact = Decimal(str(x))
    q = inst.round_qty(x)
    assert abs(q) <= abs(exact)
    assert abs(exact) - abs(q) < lot
    assert q == 0 or (q > 0) == (exact > 0)


@pytest.mark.parametrize(
    ("tick", "x", "expected"),
    [
        ("0.01", "100.005", "100.00"),  # half-even: ...00.5 ticks rounds to the even tick
        ("0.01", "100.015", "100.02"),
        ("0.5", "100.3", "100.5"),
        ("0.5", "100.2", "100.0"),
        ("0.25", "0.125", "0"),
        ("5", "12.5", "10"),
    ],
)
def test_round_price_examples(tick: str, x: str, expected: str) -> None:
    assert _inst(Decimal(tick), Decimal(1)).round_price(Decimal(x)) == Decimal(expected)


@pytest.mark.parametrize(
    ("lot", "x", "expected"),
    [
        ("1", "2.9", "2"),
        ("1", "-2.9", "-2"),
        ("0.001", "1.23456", "1.234"),
        ("10", "99", "90"),
        ("10", "9", "0"),
    ],
)
def test_round_qty_examples(lot: str, x: str, expected: str) -> None:
    assert _inst(Decimal("0.01"), Decimal(lot)).round_qty(Decimal(x)) == Decimal(expected)


def test_rounded_values_print_without_exponent() -> None:
    """Rounded prices and quantities end up in orders.csv / trades.csv via ``str``."""
    inst = _inst(Decimal("0.01"), Decimal("1"))
    assert str(inst.round_qty(100)) == "100"
    assert str(inst.round_price(100.0)) == "100"
    assert str(inst.round_price(Decimal("99.50"))) == "99.5"
    assert str(_inst(Decimal("10"), Decimal("0.001")).round_price(1234)) == "1230"


def test_notional_uses_multiplier_and_abs_qty() -> None:
    inst = Instrument(InstrumentId("X"), multiplier=Decimal("0.1"))
    assert inst.notional(Decimal(-3), Decimal("250")) == Decimal("75.0")


@pytest.mark.parametrize("field", ["tick_size", "lot_size", "multiplier"])
def test_non_positive_increments_are_refused(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Instrument(InstrumentId("X"), **{field: Decimal(0)})  # type: ignore[arg-type]
