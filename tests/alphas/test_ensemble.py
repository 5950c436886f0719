"""Ensembles: FixedWeights, InverseVariance and Stacking blend alpha scores into one in [-1, 1]."""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from tests.alphas._build import PROPERTY, TOL, assert_agree, matrices, per_step, synthetic

from tradestack.alphas import AlphaError, Ensemble, FixedWeights, InverseVariance, Stacking

NAMES = ("a", "b", "c", "d")


def _scores(seed: int, width: int, n: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-sample-like alpha scores in (-1, 1); P(up) rises with column 0."""
    x, y = synthetic(seed, n=n, width=width)
    return np.tanh(x / 3.0), y


@cache
def _stacking(width: int, seed: int) -> Stacking:
    ens = Stacking(NAMES[:width])
    ens.fit(*_scores(seed, width, n=200))
    return ens  # blending never changes a fitted model: safe to share


def _agree(ens: Ensemble, s: np.ndarray) -> None:
    assert_agree(ens.blend_batch(s), per_step(ens.blend, s), s)


# --- batch and per step agree ---------------------------------------------------------------


@PROPERTY
@given(
    raw=st.lists(st.floats(-10, 10), min_size=1, max_size=4),
    data=st.data(),
)
def test_fixed_weights_agree(raw: list[float], data: st.DataObject) -> None:
    assume(sum(abs(w) for w in raw) > 1e-6)
    ens = FixedWeights(NAMES[: len(raw)], dict(zip(NAMES, raw, strict=False)))
    _agree(ens, data.draw(matrices(len(raw), -1.0, 1.0)))


@PROPERTY
@given(width=st.integers(1, 4), seed=st.integers(0, 2**16), data=st.data())
def test_inverse_variance_agree(width: int, seed: int, data: st.DataObject) -> None:
    rng = np.random.default_rng(seed)
    train = np.tanh(rng.normal(size=(50, width)) * rng.uniform(0.01, 2.0, size=width))
    ens = InverseVariance(NAMES[:width])
    ens.fit(train, np.zeros(50))
    _agree(ens, data.draw(matrices(width, -1.0, 1.0)))


@PROPERTY
@given(width=st.integers(1, 4), seed=st.integers(0, 1), data=st.data())
def test_stacking_agree(width: int, seed: int, data: st.DataObject) -> None:
    _agree(_stacking(width, seed), data.draw(matrices(width, -1.0, 1.0)))


# --- hand-computed numbers ------------------------------------------------------------------


def test_fixed_weights_normalize_by_absolute_sum() -> None:
    ens = FixedWeights(["a", "b"], {"a": 2.0, "b": -1.0})
    assert ens.weights() == pytest.approx({"a": 2 / 3, "b": -1 / 3}, abs=TOL)
    # 2/3 * 0.9 - 1/3 * (-0.3) = 0.6 + 0.1
    assert ens.blend([0.9, -0.3]) == pytest.approx(0.7, abs=TOL)
    assert ens.blend_batch(np.array([[0.9, -0.3], [1.0, -1.0]])) == pytest.approx(
        [0.7, 1.0], abs=TOL
    )
    assert ens.describe() == {"method": "fixed", "weights": ens.weights()}


def test_fixed_weights_default_equal_and_missing_zero() -> None:
    assert FixedWeights(["a", "b", "c", "d"]).weights() == dict.fromkeys("abcd", 0.25)
    assert FixedWeights(["a", "b", "c"], {"b": 3.0}).weights() == {"a": 0.0, "b": 1.0, "c": 0.0}


def test_inverse_variance_weights_from_known_variances() -> None:
    # sample variances (ddof=1): a 0.04/3, b 0.16/3 -> 1/var 75 and 18.75 -> 0.8 and 0.2;
    # c is constant -> weight 0; the NaN row is skipped
    train = np.array(
        [
            [-0.1, -0.2, 0.5],
            [0.1, 0.2, 0.5],
            [math.nan, 0.9, 0.5],
            [-0.1, -0.2, 0.5],
            [0.1, 0.2, 0.5],
        ]
    )
    ens = InverseVariance(["a", "b", "c"])
    ens.fit(train, np.zeros(len(train)))
    assert ens.weights() == pytest.approx({"a": 0.8, "b": 0.2, "c": 0.0}, abs=TOL)
    assert ens.n_fit_rows == 4
    assert ens.blend([0.5, -0.5, 1.0]) == pytest.approx(0.3, abs=TOL)


def test_stacking_learns_the_informative_alpha() -> None:
    ens = _stacking(2, 0)
    w = ens.weights()
    assert w["a"] > 0 and abs(w["a"]) > 5 * abs(w["b"])
    np.testing.assert_allclose(list(w.values()), ens.model.coef / ens.model.std, rtol=0, atol=0)
    grid = np.column_stack([np.linspace(-0.9, 0.9, 7), np.zeros(7)])
    assert (np.diff(ens.blend_batch(grid)) > 0).all()


def test_stacking_equals_sklearn_predict_proba() -> None:
    s, y = _scores(21, 3)
    s[5, 1] = math.nan  # skipped in fit, like the flat rows
    ens = Stacking(["a", "b", "c"], C=0.5)
    ens.fit(s, y)
    keep = np.isfinite(s).all(axis=1) & (y != 0)
    mean, std = s[keep].mean(axis=0), s[keep].std(axis=0)
    ref = LogisticRegression(C=0.5, max_iter=1000).fit((s[keep] - mean) / std, y[keep] > 0)
    s_new, _ = _scores(22, 3, n=50)
    expected = 2 * ref.predict_proba((s_new - mean) / std)[:, 1] - 1
    np.testing.assert_allclose(ens.blend_batch(s_new), expected, rtol=0, atol=TOL)
    np.testing.assert_allclose(per_step(ens.blend, s_new), expected, rtol=0, atol=TOL)
    assert ens.n_fit_rows == int(keep.sum())


def test_refit_keeps_nothing_of_the_previous_fit() -> None:
    s, y = _scores(4, 2, n=600)
    half = len(s) // 2
    fresh_s, fresh_v = Stacking(["a", "b"]), InverseVariance(["a", "b"])
    fresh_s.fit(s[:half], y[:half])
    fresh_v.fit(s[:half], y[:half])
    rng = np.random.default_rng(8)
    s2, y2 = s.copy(), y.copy()
    s2[half:] = rng.permutation(s2[half:]) * 0.01
    y2[half:] = -y2[half:]
    for ens, fresh in ((Stacking(["a", "b"]), fresh_s), (InverseVariance(["a", "b"]), fresh_v)):
        ens.fit(s2, y2)
        ens.fit(s2[:half], y2[:half])
        assert ens.describe() == fresh.describe()


# --- errors ---------------------------------------------------------------------------------


def test_fixed_weights_unknown_alpha_raises() -> None:
    with pytest.raises(AlphaError, match=r"unknown alphas x, z \(alphas: a, b\)"):
        FixedWeights(["a", "b"], {"a": 1.0, "z": 1.0, "x": 2.0})


@pytest.mark.parametrize("weights", [{"a": 0.0, "b": 0.0}, {}, {"a": math.nan}, {"b": math.inf}])
def test_fixed_weights_zero_or_non_finite_raise(weights: dict[str, float]) -> None:
    with pytest.raises(AlphaError, match="finite, not all zero"):
        FixedWeights(["a", "b"], weights)


@pytest.mark.parametrize("make", [FixedWeights, InverseVariance, Stacking])
def test_no_alphas_raises(make: Callable[[list[str]], Ensemble]) -> None:
    with pytest.raises(AlphaError, match="at least one alpha"):
        make([])


@pytest.mark.parametrize("c", [0.0, -1.0, math.nan, math.inf])
def test_stacking_non_positive_c_raises(c: float) -> None:
    with pytest.raises(AlphaError, match="C must be > 0"):
        Stacking(["a"], C=c)


def test_stacking_one_direction_or_too_few_rows_raises() -> None:
    s, _ = _scores(1, 2)
    with pytest.raises(AlphaError, match=r"stacking.*\(400 up\).*both directions"):
        Stacking(["a", "b"]).fit(s, np.full(len(s), 0.01))
    y = np.zeros(len(s))
    y[:9] = [0.01, -0.01] * 4 + [0.01]
    with pytest.raises(AlphaError, match=r"stacking.*9 non-flat moves in the out-of-sample rows"):
        Stacking(["a", "b"]).fit(s, y)


def test_stacking_unfitted_blend_batch_raises() -> None:
    with pytest.raises(AlphaError, match="not fitted"):
        Stacking(["a", "b"]).blend_batch(np.zeros((3, 2)))


def test_stacking_unfitted_blend_raises() -> None:
    with pytest.raises(AlphaError, match="not fitted"):
        Stacking(["a", "b"]).blend([0.1, 0.2])


def test_inverse_variance_unfitted_raises() -> None:
    with pytest.raises(AlphaError):
        InverseVariance(["a", "b"]).blend_batch(np.zeros((3, 2)))


def test_inverse_variance_degenerate_training_raises() -> None:
    with pytest.raises(AlphaError, match="fewer than 2"):
        InverseVariance(["a", "b"]).fit(np.array([[0.1, 0.2], [math.nan, 0.3]]), np.zeros(2))
    with pytest.raises(AlphaError, match="constant"):
        InverseVariance(["a", "b"]).fit(np.full((5, 2), 0.3), np.zeros(5))


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda: FixedWeights(["a", "b"]).blend_batch(np.ones((3, 3))),
            id="fixed-wider",
        ),
        pytest.param(
            lambda: FixedWeights(["a", "b"]).blend_batch(np.ones((3, 1))),
            id="fixed-narrower",
        ),
        pytest.param(
            lambda: _stacking(2, 0).blend_batch(np.full((3, 1), 0.2)),
            id="stacking-narrower",
        ),
        pytest.param(
            lambda: Stacking(["a", "b"]).fit(*_scores(0, 3)),
            id="stacking-fit-wider",
        ),
        pytest.param(
            lambda: FixedWeights(["a", "b"]).blend([0.5]),
            id="fixed-step-narrower",
        ),
    ],
)
def test_wrong_width_raises(call: Callable[[], object]) -> None:
    with pytest.raises(AlphaError):
        call()
