"""Columnar bar series: the in-memory form of one instrument's OHLCV history."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tradestack.core.ids import InstrumentId

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class BarSeries:
    """OHLCV arrays of one instrument, strictly increasing ``ts_ns`` (bar open labels, UTC ns).

    Construct through a loader in ``tradestack.data`` (which validates) or directly for tests;
    ``__post_init__`` checks shapes and ordering so a malformed series cannot reach the engine.
    """

    instrument_id: InstrumentId
    ts_ns: IntArray
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __post_init__(self) -> None:
        n = len(self.ts_ns)
        for name in ("open", "high", "low", "close", "volume"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{self.instrument_id}: column {name} has a different length")
        if n > 1 and not bool(np.all(np.diff(self.ts_ns) > 0)):
            raise ValueError(f"{self.instrument_id}: timestamps must be strictly increasing")

    def __len__(self) -> int:
        return len(self.ts_ns)

    def column(self, name: str) -> FloatArray:
        """One price/volume column by name."""
        if name not in ("open", "high", "low", "close", "volume"):
            raise KeyError(f"no bar column {name!r}; use open, high, low, close or volume")
        arr: FloatArray = getattr(self, name)
        return arr
