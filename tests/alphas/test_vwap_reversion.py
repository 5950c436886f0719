"""VWAPReversion: -tanh(deviation / scale) — short when rich to VWAP, long when cheap."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.alphas._build import PROPERTY, TOL, assert_agree, matrices, per_step

from tradestack.alphas import AlphaError, VWAPReversion

TANH_1 = 0.7615941559557649
TANH_2 = 0.9640275800758169


@PROPERTY
@given(x=matrices(1, -0.05, 0.05, zeros=True), scale=st.floats(1e-5, 1.0))
def test_batch_and_per_step_agree(x: np.ndarray, scale: float) -> None:
    alpha = VWAPReversion("vwap", ["dev"], scale=scale)
    assert_agree(alpha.score_batch(x), per_step(alpha.score, x), x)


@pytest.mark.parametrize(
    ("deviation", "expected"),
    [
        (1e-4, -TANH_1),  # mid one scale above VWAP (rich): short
        (-2e-4, TANH_2),  # two scales below (cheap): long
        (5e-5, -math.tanh(0.5)),
        (0.0, 0.0),
        (0.5, -1.0),  # far off: saturates at full conviction
        (math.nan, math.nan),
    ],
)
def test_hand_computed(deviation: float, expected: float) -> None:
    alpha = VWAPReversion("vwap", ["dev"], scale=1e-4)
    batch = alpha.score_batch(np.array([[deviation]]))[0]
    step = alpha.score([deviation])
    if math.isnan(expected):
        assert math.isnan(batch) and math.isnan(step)
    else:
        assert batch == pytest.approx(expected, abs=TOL)
        assert step == pytest.approx(expected, abs=TOL)
        assert np.sign(batch) == -np.sign(deviation)


@pytest.mark.parametrize("scale", [0.0, -1e-4, math.nan, math.inf])
def test_non_positive_scale_raises(scale: float) -> None:
    with pytest.raises(AlphaError, match=r"'vwap'.*scale"):
        VWAPReversion("vwap", ["dev"], scale=scale)


@pytest.mark.parametrize("features", [[], ["a", "b"]])
def test_needs_one_feature(features: list[str]) -> None:
    with pytest.raises(AlphaError, match="'vwap'"):
        VWAPReversion("vwap", features)


@pytest.mark.parametrize("shape", [(3, 2), (3,)])
def test_wrong_width_raises(shape: tuple[int, ...]) -> None:
    with pytest.raises(AlphaError, match=r"'vwap'.*shape"):
        VWAPReversion("vwap", ["dev"]).score_batch(np.zeros(shape))


def test_per_step_wrong_width_raises() -> None:
    with pytest.raises(AlphaError):
        VWAPReversion("vwap", ["dev"], scale=1e-4).score([1e-4, 5.0])
