"""Mean reversion toward the traded VWAP: short when the mid is rich to it, long when cheap."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tradestack.alphas.base import Alpha, AlphaError, check_matrix, check_positive, tanh
from tradestack.core.series import FloatArray


class VWAPReversion(Alpha):
    """``-tanh(deviation / scale)`` for one VWAP-deviation feature ``(mid - vwap) / vwap``."""

    kind = "vwap_reversion"

    def __init__(self, name: str, features: Sequence[str], scale: float = 1e-4) -> None:
        super().__init__(name, features)
        if len(self.features) != 1:
            raise AlphaError(f"alpha {name!r}: vwap_reversion reads one feature, got {features!r}")
        self.scale = check_positive(name, "scale", scale)

    def score_batch(self, X: FloatArray) -> FloatArray:
        arr = check_matrix(self.name, X, 1)
        return np.asarray(-tanh(arr[:, 0] / self.scale), dtype=np.float64)

    def score(self, x: Sequence[float]) -> float:
        self._check_step(x)
        return -math.tanh(x[0] / self.scale)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "scale": self.scale}
