"""The vectorized runner: strategies that state target weights, simulated by a compiled kernel
with the bar venue's fill rules (same trades and equity curve as the event-driven engine)."""

from tradestack.engine.vectorized.runner import NotVectorizable, VectorizedEngine, VectorizedResult
from tradestack.engine.vectorized.signals import sma_stream

__all__ = ["NotVectorizable", "VectorizedEngine", "VectorizedResult", "sma_stream"]
