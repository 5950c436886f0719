"""The event loop, the strategy API and the runners."""

from tradestack.engine.backtest import BacktestEngine, BacktestResult
from tradestack.engine.context import StrategyContext
from tradestack.engine.strategy import Param, ParameterError, Strategy

__all__ = [
    "BacktestEngine",
    "BacktestResult",
    "Param",
    "ParameterError",
    "Strategy",
    "StrategyContext",
]
