"""tradestack: algorithmic trading from raw exchange data to live orders.

The public surface is re-exported here lazily, so ``import tradestack`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "Strategy": "tradestack.engine.strategy",
    "StrategyContext": "tradestack.engine.context",
    "BacktestEngine": "tradestack.engine.backtest",
    "BacktestResult": "tradestack.engine.backtest",
    "BarVenueConfig": "tradestack.execution.bar_venue",
    "Instrument": "tradestack.core.instruments",
    "InstrumentId": "tradestack.core.ids",
    "BarSeries": "tradestack.core.series",
    "load_bars": "tradestack.data.bars",
}

if TYPE_CHECKING:
    from tradestack.core.ids import InstrumentId
    from tradestack.core.instruments import Instrument
    from tradestack.core.series import BarSeries
    from tradestack.data.bars import load_bars
    from tradestack.engine.backtest import BacktestEngine, BacktestResult
    from tradestack.engine.context import StrategyContext
    from tradestack.engine.strategy import Strategy
    from tradestack.execution.bar_venue import BarVenueConfig

__all__ = [
    "BacktestEngine",
    "BacktestResult",
    "BarSeries",
    "BarVenueConfig",
    "Instrument",
    "InstrumentId",
    "Strategy",
    "StrategyContext",
    "__version__",
    "load_bars",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'tradestack' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
