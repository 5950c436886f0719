"""Argument checks of the batch feature functions: one clear ``ValueError`` naming the argument."""

from __future__ import annotations

import math

import numpy as np

from tradestack.core.series import FloatArray


def check_int(name: str, value: int) -> None:
    """A positive int (not a bool)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def check_positive(name: str, value: float) -> None:
    """A positive finite number (not a bool)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not 0.0 < value < math.inf:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def vectors(trades: bool = False, **arrays: FloatArray) -> list[FloatArray]:
    """The arrays as contiguous float64, checked 1-D and of one length (trades: finite, >= 0)."""
    out: list[FloatArray] = []
    first = ""
    for name, x in arrays.items():
        a = np.ascontiguousarray(x, dtype=np.float64)
        if a.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array, got shape {a.shape}")
        if out and len(a) != len(out[0]):
            raise ValueError(f"{name} has length {len(a)} but {first} has length {len(out[0])}")
        if trades and not (a.min(initial=0.0) >= 0.0 and a.max(initial=0.0) < np.inf):
            raise ValueError(f"{name} must be finite and non-negative")
        first = first or name
        out.append(a)
    return out
