"""Target weights as a strategy hands them to the vectorized runner: per instrument, either a
dense array with a value per bar (NaN: no decision at that bar) or :class:`SparseWeights`, only
the bars that decide. Both mean the same; the sparse form spares a signal that decides on one bar
in twenty the writing and the scanning of a mostly-NaN array."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tradestack.core.series import FloatArray, IntArray


@dataclass(frozen=True, eq=False)
class SparseWeights:
    """One instrument's decisions as ``(bar index, target fraction)`` pairs over ``length`` bars.

    ``weight[k]`` is what the strategy decides at the close of bar ``index[k]``; every other bar
    decides nothing. Indices are strictly increasing and inside ``[0, length)``; weights are
    finite. ``numpy.asarray`` gives the dense form.
    """

    index: IntArray
    weight: FloatArray
    length: int

    def __post_init__(self) -> None:
        index = np.ascontiguousarray(self.index, dtype=np.int64)
        weight = np.ascontiguousarray(self.weight, dtype=np.float64)
        if index.ndim != 1 or weight.shape != index.shape:
            raise ValueError(
                f"sparse weights need 1-D index and weight of one length, got shapes "
                f"{index.shape} and {weight.shape}"
            )
        if self.length < 0:
            raise ValueError(f"sparse weights length must be >= 0, got {self.length}")
        if index.size:
            if index[0] < 0 or index[-1] >= self.length:
                raise ValueError(
                    f"sparse weight indices must lie in [0, {self.length}), got "
                    f"{int(index.min())}..{int(index.max())}"
                )
            if index.size > 1 and not bool(np.all(index[1:] > index[:-1])):
                raise ValueError("sparse weight indices must be strictly increasing")
            if not bool(np.isfinite(weight).all()):
                raise ValueError(
                    "sparse weights must be finite (leave a bar out to decide nothing)"
                )
        object.__setattr__(self, "index", index)
        object.__setattr__(self, "weight", weight)

    def __len__(self) -> int:
        return self.length

    def dense(self) -> FloatArray:
        """The same decisions as an array with a value per bar, NaN where nothing is decided."""
        out: FloatArray = np.full(self.length, np.nan)
        out[self.index] = self.weight
        return out

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> FloatArray:
        dense = self.dense()
        return dense if dtype is None else dense.astype(dtype)


Weights = FloatArray | SparseWeights


def decisions(weights: Weights, length: int, what: str) -> tuple[IntArray, FloatArray]:
    """The bars that decide and their weights, from either form; ``what`` names the instrument
    in the errors (wrong length, infinite weights)."""
    if isinstance(weights, SparseWeights):
        if weights.length != length:
            raise ValueError(
                f"target weights of {what} cover {weights.length} bars, expected {length}"
            )
        return weights.index, weights.weight
    dense = np.asarray(weights, dtype=np.float64)
    if dense.shape != (length,):
        raise ValueError(f"target weights of {what} have shape {dense.shape}, expected ({length},)")
    if np.isinf(dense).any():
        raise ValueError(f"target weights of {what} must be finite or NaN")
    index = np.flatnonzero(~np.isnan(dense))
    return index.astype(np.int64, copy=False), np.ascontiguousarray(dense[index])


def dense_weights(weights: Weights) -> FloatArray:
    """The dense form (a value per bar, NaN: no decision) of either form."""
    if isinstance(weights, SparseWeights):
        return weights.dense()
    return np.asarray(weights, dtype=np.float64)
