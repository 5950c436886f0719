"""Paper and live trading: the backtest's strategy loop on data that arrives while it runs."""

from tradestack.engine.live.paper import PaperEngine

__all__ = ["PaperEngine"]
