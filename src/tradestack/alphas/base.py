"""The alpha protocol: feature values in, a score in [-1, 1] out (sign = direction, size =
conviction; a probability model reports 2p - 1), over whole arrays or one step at a time."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
from numba import njit

from tradestack.core.series import FloatArray


class AlphaError(ValueError):
    """An alpha that cannot be built or fitted; the message names the alpha and the problem."""


class Alpha(ABC):
    """A signal model over named features.

    ``features`` names the columns of ``X`` (batch, shape ``(n, len(features))``) and the order of
    ``x`` (one step). Both forms give the same number; NaN in any input gives a NaN score.
    Models with ``needs_fit`` learn from a training window only (:meth:`fit`), never from the
    window they are scored on.
    """

    kind: ClassVar[str]
    needs_fit: ClassVar[bool] = False

    def __init__(self, name: str, features: Sequence[str]) -> None:
        if not features:
            raise AlphaError(f"alpha {name!r}: needs at least one feature")
        self.name = name
        self.features = tuple(features)
        self.fitted = not self.needs_fit

    def fit(self, X: FloatArray, forward_return: FloatArray) -> None:
        """Learn from training rows (``forward_return`` is the label; NaN rows are skipped)."""
        self.fitted = True

    @abstractmethod
    def score_batch(self, X: FloatArray) -> FloatArray:
        """Scores of every row of ``X``."""

    @abstractmethod
    def score(self, x: Sequence[float]) -> float:
        """Score of one step."""

    def describe(self) -> dict[str, Any]:
        """Parameters and learned values, for the report."""
        return {"kind": self.kind, "features": list(self.features)}

    def _check_step(self, x: Sequence[float]) -> None:
        if len(x) != len(self.features):
            raise AlphaError(
                f"alpha {self.name!r}: expected {len(self.features)} values "
                f"({', '.join(self.features)}), got {len(x)}"
            )

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise AlphaError(f"alpha {self.name!r} ({self.kind}) is not fitted yet")


def check_matrix(name: str, X: FloatArray, width: int) -> np.ndarray:
    """``X`` as a float64 matrix with ``width`` columns, or a clear error."""
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != width:
        raise AlphaError(f"alpha {name!r}: expected X of shape (n, {width}), got {arr.shape}")
    return arr


def check_positive(name: str, field: str, value: float) -> float:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise AlphaError(f"alpha {name!r}: {field} must be a positive number, got {value!r}")
    return float(value)


@njit(cache=True)
def _tanh_loop(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    for i in range(x.shape[0]):
        out[i] = math.tanh(x[i])
    return out


def tanh(x: FloatArray) -> FloatArray:
    """Element-wise ``math.tanh``: numpy's ``tanh`` differs from it in the last bit for about a
    third of inputs, and the batch and one-step scores must be the same numbers."""
    arr = np.ascontiguousarray(x, dtype=np.float64)
    result: FloatArray = _tanh_loop(arr.ravel()).reshape(arr.shape)
    return result
