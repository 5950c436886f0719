"""The two forms of target weights: dense arrays and sparse decisions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradestack.engine.weights import SparseWeights, decisions, dense_weights


def test_sparse_weights_are_the_dense_ones_without_the_nans() -> None:
    sparse = SparseWeights(np.array([1, 4]), np.array([0.5, -0.25]), 6)
    dense = np.array([math.nan, 0.5, math.nan, math.nan, -0.25, math.nan])
    assert np.array_equal(np.asarray(sparse), dense, equal_nan=True)
    assert np.array_equal(dense_weights(sparse), dense, equal_nan=True)
    assert len(sparse) == 6
    for form in (sparse, dense):
        at, w = decisions(form, 6, "X")
        assert at.tolist() == [1, 4] and w.tolist() == [0.5, -0.25]
        assert at.dtype == np.int64


@pytest.mark.parametrize(
    ("index", "weight", "length", "message"),
    [
        ([0, 0], [0.1, 0.2], 3, "strictly increasing"),
        ([2, 1], [0.1, 0.2], 3, "strictly increasing"),
        ([3], [0.1], 3, r"lie in \[0, 3\)"),
        ([-1], [0.1], 3, r"lie in \[0, 3\)"),
        ([0], [math.nan], 3, "must be finite"),
        ([0], [math.inf], 3, "must be finite"),
        ([0, 1], [0.1], 3, "one length"),
        ([], [], -1, "length must be >= 0"),
    ],
)
def test_bad_sparse_weights_are_refused(
    index: list[int], weight: list[float], length: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SparseWeights(np.array(index, dtype=np.int64), np.array(weight), length)


def test_wrong_lengths_and_infinities_name_the_instrument() -> None:
    with pytest.raises(ValueError, match="AAPL cover 4 bars, expected 5"):
        decisions(SparseWeights(np.array([1]), np.array([0.1]), 4), 5, "AAPL")
    with pytest.raises(ValueError, match=r"AAPL have shape \(4,\), expected \(5,\)"):
        decisions(np.zeros(4), 5, "AAPL")
    with pytest.raises(ValueError, match="AAPL must be finite or NaN"):
        decisions(np.array([0.0, math.inf]), 2, "AAPL")


@given(st.lists(st.one_of(st.just(math.nan), st.floats(-2, 2)), max_size=40))
def test_dense_to_sparse_and_back_is_lossless(values: list[float]) -> None:
    dense = np.array(values, dtype=np.float64)
    at, w = decisions(dense, len(dense), "X")
    back = SparseWeights(at, w, len(dense)).dense()
    assert np.array_equal(back, dense, equal_nan=True)
