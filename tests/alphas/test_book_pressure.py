"""BookPressure: a standardized logistic regression of the next move, reported as 2p - 1."""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression
from tests.alphas._build import PROPERTY, TOL, assert_agree, matrices, per_step, synthetic

from tradestack.alphas import AlphaError, BookPressure


def _fitted(
    width: int = 2, seed: int = 7, sign: float = 1.0, c: float = 1.0, n: int = 400
) -> BookPressure:
    x, y = synthetic(seed, n=n, width=width, sign=sign)
    alpha = BookPressure("bp", [f"f{j}" for j in range(width)], C=c)
    alpha.fit(x, y)
    return alpha


@cache
def _pool(width: int, seed: int, c: float) -> BookPressure:
    return _fitted(width, seed, c=c, n=200)  # scoring never changes a fitted model: safe to share


@PROPERTY
@given(
    width=st.integers(1, 3),
    seed=st.integers(0, 1),
    c=st.sampled_from([0.01, 100.0]),
    data=st.data(),
)
def test_batch_and_per_step_agree(width: int, seed: int, c: float, data: st.DataObject) -> None:
    alpha = _pool(width, seed, c)
    x = data.draw(matrices(width, -20.0, 20.0))
    assert_agree(alpha.score_batch(x), per_step(alpha.score, x), x)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_coefficient_sign_follows_the_driving_feature(sign: float) -> None:
    coef = _fitted(sign=sign).describe()["coefficients"]
    assert np.sign(coef["f0"]) == sign
    assert abs(coef["f0"]) > 5 * abs(coef["f1"])  # f1 is noise


def test_score_rises_with_the_driving_feature() -> None:
    alpha = _fitted()
    grid = np.column_stack([np.linspace(-3, 3, 7), np.ones(7)])
    assert (np.diff(alpha.score_batch(grid)) > 0).all()


@pytest.mark.parametrize("c", [0.05, 1.0])
def test_equals_sklearn_predict_proba(c: float) -> None:
    x, y = synthetic(11, width=3)
    alpha = BookPressure("bp", ["a", "b", "c"], C=c)
    alpha.fit(x, y)
    keep = y != 0.0
    mean, std = x[keep].mean(axis=0), x[keep].std(axis=0)
    ref = LogisticRegression(C=c, max_iter=1000).fit((x[keep] - mean) / std, y[keep] > 0)
    x_new, _ = synthetic(12, n=50, width=3)
    p = ref.predict_proba((x_new - mean) / std)[:, 1]
    np.testing.assert_allclose(alpha.score_batch(x_new), 2 * p - 1, rtol=0, atol=TOL)
    np.testing.assert_allclose(per_step(alpha.score, x_new), 2 * p - 1, rtol=0, atol=TOL)
    d = alpha.describe()
    np.testing.assert_allclose(list(d["coefficients"].values()), ref.coef_[0], rtol=0, atol=TOL)
    assert d["intercept"] == pytest.approx(ref.intercept_[0], abs=TOL)
    assert d["n_train"] == int(keep.sum())


def test_fit_skips_flat_and_nan_rows() -> None:
    x, y = synthetic(3)
    clean = BookPressure("bp", ["a", "b"])
    clean.fit(x[y != 0], y[y != 0])
    x_dirty = np.vstack([x, [[math.nan, 1.0], [2.0, 2.0]]])
    y_dirty = np.concatenate([y, [0.05, math.nan]])
    dirty = BookPressure("bp", ["a", "b"])
    dirty.fit(x_dirty, y_dirty)
    assert dirty.describe() == clean.describe()


def test_fit_uses_only_the_rows_it_is_given() -> None:
    x, y = synthetic(5, n=600)
    half = len(x) // 2
    first = BookPressure("bp", ["a", "b"])
    first.fit(x[:half], y[:half])

    rng = np.random.default_rng(99)
    x2, y2 = x.copy(), y.copy()
    x2[half:] = rng.permutation(x2[half:]) + rng.normal(scale=1e6, size=x2[half:].shape)
    y2[half:] = -y2[half:] * 1e3
    again = BookPressure("bp", ["a", "b"])
    again.fit(x2, y2)  # a fit on everything first: nothing of it may carry over
    again.fit(x2[:half], y2[:half])
    assert again.describe() == first.describe()
    np.testing.assert_array_equal(again.model.mean, first.model.mean)
    np.testing.assert_array_equal(again.model.std, first.model.std)


def test_one_direction_only_raises_naming_the_alpha() -> None:
    x, _ = synthetic(1)
    with pytest.raises(AlphaError, match=r"'bp'.*both directions"):
        BookPressure("bp", ["a", "b"]).fit(x, np.full(len(x), 0.01))
    y = np.zeros(len(x))
    y[:50] = -0.02  # down moves and flats: still one direction
    with pytest.raises(AlphaError, match="'bp'"):
        BookPressure("bp", ["a", "b"]).fit(x, y)


def test_too_few_moves_raises() -> None:
    x, y = synthetic(1, n=9)
    y[:] = [0.01, -0.01] * 4 + [0.01]
    with pytest.raises(AlphaError, match=r"'bp'.*9 non-flat"):
        BookPressure("bp", ["a", "b"]).fit(x, y)


def test_unfitted_raises() -> None:
    alpha = BookPressure("bp", ["a", "b"])
    assert alpha.needs_fit and not alpha.fitted
    with pytest.raises(AlphaError, match=r"'bp'.*not fitted"):
        alpha.score_batch(np.zeros((2, 2)))
    with pytest.raises(AlphaError, match=r"'bp'.*not fitted"):
        alpha.score([0.0, 0.0])


@pytest.mark.parametrize("shape", [(5, 1), (5, 3), (5,)])
def test_wrong_width_raises(shape: tuple[int, ...]) -> None:
    alpha = _fitted()
    with pytest.raises(AlphaError, match=r"'bp'.*shape"):
        alpha.score_batch(np.zeros(shape))
    with pytest.raises(AlphaError, match=r"'bp'.*shape"):
        BookPressure("bp", ["a", "b"]).fit(np.zeros(shape), np.zeros(5))


@pytest.mark.parametrize("c", [0.0, -1.0, math.nan, math.inf])
def test_non_positive_c_raises(c: float) -> None:
    with pytest.raises(AlphaError, match=r"'bp'.*C"):
        BookPressure("bp", ["a"], C=c)


def test_per_step_wrong_width_raises() -> None:
    with pytest.raises(AlphaError):
        _fitted().score([0.5])
