"""Shared helpers for the alpha tests: hypothesis strategies for score matrices (with NaN rows),
the batch/per-step agreement check, and a synthetic dataset whose label one feature drives."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

PROPERTY = settings(derandomize=True, max_examples=50, deadline=None)
TOL = 1e-12


@st.composite
def matrices(
    draw: st.DrawFn,
    width: int,
    lo: float = -1e3,
    hi: float = 1e3,
    *,
    zeros: bool = False,
) -> np.ndarray:
    """An ``(n, width)`` float matrix in ``[lo, hi]`` with whole NaN rows and stray NaN cells
    (and exact zeros when ``zeros``)."""
    n = draw(st.integers(1, 25))
    cell = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
    extras = [st.just(float("nan"))] + ([st.just(0.0)] if zeros else [])
    elements = st.one_of(cell, cell, cell, *extras)
    x = draw(hnp.arrays(np.float64, (n, width), elements=elements))
    nan_rows = draw(hnp.arrays(np.bool_, n))
    x[nan_rows] = np.nan
    return x


def per_step(fn: Callable[[Sequence[float]], float], x: np.ndarray) -> np.ndarray:
    """``fn`` applied row by row, each row as a list of Python floats (as the replay path does)."""
    return np.array([fn(row.tolist()) for row in x], dtype=np.float64)


def assert_agree(batch: np.ndarray, steps: np.ndarray, x: np.ndarray) -> None:
    """Same NaN positions, NaN wherever an input is NaN, equal to ``TOL``, inside [-1, 1]."""
    assert batch.shape == steps.shape == (len(x),)
    assert np.array_equal(np.isnan(batch), np.isnan(steps))
    assert np.isnan(batch[np.isnan(x).any(axis=1)]).all()
    np.testing.assert_allclose(batch, steps, rtol=0, atol=TOL)
    finite = batch[np.isfinite(batch)]
    assert (np.abs(finite) <= 1.0 + TOL).all()


def synthetic(
    seed: int, n: int = 400, width: int = 2, driver: int = 0, sign: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Features ~ N(0, 1) (column ``j`` scaled by ``j + 1`` and shifted by ``j``) and a forward
    return ``sign * x[:, driver]`` plus noise, a few rows flat: P(up) rises with ``sign *
    feature[driver]`` and no other feature matters."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, width)) * np.arange(1, width + 1) + np.arange(width)
    z = (x[:, driver] - x[:, driver].mean()) / x[:, driver].std()
    y = 0.01 * (sign * z + rng.normal(size=n))
    y[rng.choice(n, size=n // 20, replace=False)] = 0.0
    return x, y
