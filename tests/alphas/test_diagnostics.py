"""forward_returns and score_quality (hit rate, Spearman IC) on hand tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.stats import spearmanr
from tests.alphas._build import PROPERTY, TOL

from tradestack.alphas.diagnostics import forward_returns, score_quality

NAN = math.nan


def test_forward_returns_values_and_nan_tail() -> None:
    close = np.array([100.0, 110.0, 99.0, 99.0])
    np.testing.assert_allclose(forward_returns(close, 1), [0.1, -0.1, 0.0, NAN], atol=TOL)
    np.testing.assert_allclose(forward_returns(close, 2), [-0.01, 99 / 110 - 1, NAN, NAN], atol=TOL)
    assert np.isnan(forward_returns(close, 4)).all()
    assert np.isnan(forward_returns(close, 10)).all()
    assert forward_returns(np.array([]), 1).shape == (0,)


@pytest.mark.parametrize("horizon", [0, -1])
def test_forward_returns_rejects_non_positive_horizon(horizon: int) -> None:
    with pytest.raises(ValueError, match="horizon"):
        forward_returns(np.ones(5), horizon)


# score, forward return: row 2 has a zero score, row 4 a NaN score, row 6 a NaN return,
# row 7 a zero return
SCORE = np.array([0.5, -0.2, 0.0, 0.3, NAN, -0.4, 0.1, 0.2])
RET = np.array([0.01, 0.02, 0.03, -0.01, 0.05, -0.02, NAN, 0.0])


def test_score_quality_hand_table() -> None:
    q = score_quality(SCORE, RET)
    assert q["n"] == 6  # rows 0, 1, 2, 3, 5, 7
    # directional rows 0 (+,+) hit, 1 (-,+) miss, 3 (+,-) miss, 5 (-,-) hit
    assert q["n_directional"] == 4
    assert q["hit_rate"] == 0.5
    # ranks of score [6, 2, 3, 5, 1, 4], of return [4, 5, 6, 2, 1, 3]: sum d^2 = 32,
    # rho = 1 - 6 * 32 / (6 * 35) = 3/35
    assert q["ic"] == pytest.approx(3 / 35, abs=TOL)
    ok = np.isfinite(SCORE) & np.isfinite(RET)
    assert q["ic"] == pytest.approx(spearmanr(SCORE[ok], RET[ok]).statistic, abs=TOL)


def test_zero_scores_are_out_of_the_hit_rate_only() -> None:
    base = score_quality(SCORE, RET)
    s = SCORE.copy()
    s[2] = -0.05  # a wrong-signed guess where there was none
    q = score_quality(s, RET)
    assert (q["n_directional"], q["hit_rate"]) == (5, 2 / 5)
    assert q["n"] == base["n"]


@pytest.mark.parametrize(
    ("score", "ret"),
    [
        ([0.1, 0.1, 0.1, 0.1], [0.01, -0.01, 0.02, 0.03]),  # constant score: no IC
        ([0.1, -0.1, 0.2, 0.3], [0.01, 0.01, 0.01, 0.01]),  # constant return: no IC
        ([0.1, -0.2], [0.01, -0.01]),  # two rows: no IC
    ],
)
def test_ic_undefined_is_nan(score: list[float], ret: list[float]) -> None:
    assert math.isnan(score_quality(np.array(score), np.array(ret))["ic"])


def test_nothing_known() -> None:
    q = score_quality(np.array([NAN, 0.0]), np.array([0.01, 0.0]))
    assert (q["n"], q["n_directional"]) == (1, 0)
    assert math.isnan(q["hit_rate"]) and math.isnan(q["ic"])


@PROPERTY
@given(
    pair=st.integers(3, 40).flatmap(
        lambda n: st.tuples(
            *[
                hnp.arrays(
                    np.float64,
                    n,
                    elements=st.one_of(st.sampled_from([0.0, 0.5, -0.5, NAN]), st.floats(-1, 1)),
                )
            ]
            * 2
        )
    )
)
def test_matches_scipy_and_counts(pair: tuple[np.ndarray, np.ndarray]) -> None:
    s, r = pair
    q = score_quality(s, r)
    ok = np.isfinite(s) & np.isfinite(r)
    d = ok & (s != 0) & (r != 0)
    assert q["n"] == ok.sum() and q["n_directional"] == d.sum()
    if d.any():
        assert q["hit_rate"] == pytest.approx(np.mean((s[d] > 0) == (r[d] > 0)), abs=TOL)
    if ok.sum() > 2 and np.ptp(s[ok]) > 0 and np.ptp(r[ok]) > 0:
        assert q["ic"] == pytest.approx(spearmanr(s[ok], r[ok]).statistic, abs=TOL)
    else:
        assert math.isnan(q["ic"])
