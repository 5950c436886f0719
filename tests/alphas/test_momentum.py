"""MAMomentum: tanh((fast / slow - 1) / scale), batch and per step alike."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.alphas._build import PROPERTY, TOL, assert_agree, matrices, per_step

from tradestack.alphas import AlphaError, MAMomentum

TANH_1 = 0.7615941559557649
TANH_2 = 0.9640275800758169


@PROPERTY
@given(x=matrices(2, zeros=True), scale=st.floats(1e-4, 10.0))
def test_batch_and_per_step_agree(x: np.ndarray, scale: float) -> None:
    alpha = MAMomentum("mom", ["fast", "slow"], scale=scale)
    assert_agree(alpha.score_batch(x), per_step(alpha.score, x), x)


@pytest.mark.parametrize(
    ("fast", "slow", "expected"),
    [
        (101.0, 100.0, TANH_1),  # fast 1% above slow = one scale: tanh(1)
        (99.0, 100.0, -TANH_1),
        (102.0, 100.0, TANH_2),
        (50.0, 50.0, 0.0),
        (100.5, 100.0, math.tanh(0.5)),
        (1.0, 0.0, math.nan),  # slow of zero: no ratio
        (math.nan, 100.0, math.nan),
    ],
)
def test_hand_computed(fast: float, slow: float, expected: float) -> None:
    alpha = MAMomentum("mom", ["fast", "slow"], scale=0.01)
    batch = alpha.score_batch(np.array([[fast, slow]]))[0]
    step = alpha.score([fast, slow])
    if math.isnan(expected):
        assert math.isnan(batch) and math.isnan(step)
    else:
        assert batch == pytest.approx(expected, abs=TOL)
        assert step == pytest.approx(expected, abs=TOL)


def test_scale_sets_the_strength() -> None:
    row = np.array([[101.0, 100.0]])
    assert MAMomentum("m", ["f", "s"], scale=0.02).score_batch(row)[0] == pytest.approx(
        math.tanh(0.5), abs=TOL
    )
    assert MAMomentum("m", ["f", "s"]).describe() == {
        "kind": "ma_momentum",
        "features": ["f", "s"],
        "scale": 1e-3,
    }


@pytest.mark.parametrize("scale", [0.0, -0.01, math.nan, math.inf, "0.01"])
def test_non_positive_scale_raises(scale: object) -> None:
    with pytest.raises(AlphaError, match=r"'mom'.*scale"):
        MAMomentum("mom", ["fast", "slow"], scale=scale)  # type: ignore[arg-type]


@pytest.mark.parametrize("features", [[], ["fast"], ["a", "b", "c"]])
def test_needs_exactly_two_features(features: list[str]) -> None:
    with pytest.raises(AlphaError, match="'mom'"):
        MAMomentum("mom", features)


@pytest.mark.parametrize("shape", [(4, 1), (4, 3), (4,), (2, 2, 2)])
def test_wrong_width_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(AlphaError, match=r"'mom'.*shape"):
        MAMomentum("mom", ["fast", "slow"]).score_batch(np.ones(shape))


def test_needs_no_fit() -> None:
    alpha = MAMomentum("mom", ["fast", "slow"])
    assert not alpha.needs_fit and alpha.fitted
