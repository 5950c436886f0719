"""The kernel's grid rounding against the ledger's Decimal rounding of the float's shortest repr:
the fast path (a float ratio far from the decision point) and the exact comparisons agree."""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from tradestack.engine.vectorized.kernel import MAX_UNITS, floor_units, round_half_even_units

# ticks and lots are Decimals: their ratios have denominators of twos and fives
GRIDS = st.sampled_from(
    [(1, 1), (1, 100), (1, 100_000_000), (5, 100), (1, 1000), (5, 2), (1, 8), (7, 1)]
)


def _units(x: float, num: int, den: int, rounding: str) -> int:
    ratio = Decimal(repr(x)) * den / num
    return int(ratio.quantize(Decimal(1), rounding=rounding))


def _near_grid(draw: st.DrawFn) -> tuple[float, int, int]:
    num, den = draw(GRIDS)
    k = draw(st.integers(0, 10**9))  # k * 1e-8 * 1e8 stays far below 2**52
    half = draw(st.sampled_from([0, 1]))  # on the grid or on a midpoint
    x = float(Decimal(2 * k + half) * num / (2 * den))
    nudge = draw(st.sampled_from([0.0, 1e-15, -1e-15, 1e-12, -1e-12]))
    return max(0.0, x * (1.0 + nudge)), num, den


@settings(max_examples=2000, deadline=None)
@given(st.floats(0.0, 1e9, allow_nan=False), GRIDS)
@example(0.29, (1, 100))
@example(2.675, (1, 100))
@example(1e-8, (1, 100_000_000))
def test_random_values(x: float, grid: tuple[int, int]) -> None:
    num, den = grid
    assume(x * den / num < MAX_UNITS)  # the kernel's domain: the runner refuses beyond it
    assert floor_units(x, num, den) == _units(x, num, den, ROUND_FLOOR)
    assert round_half_even_units(x, num, den) == _units(x, num, den, ROUND_HALF_EVEN)


@settings(max_examples=2000, deadline=None)
@given(st.composite(_near_grid)())
def test_values_on_and_next_to_grid_points_and_midpoints(case: tuple[float, int, int]) -> None:
    x, num, den = case
    assert floor_units(x, num, den) == _units(x, num, den, ROUND_FLOOR)
    assert round_half_even_units(x, num, den) == _units(x, num, den, ROUND_HALF_EVEN)
