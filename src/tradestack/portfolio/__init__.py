"""Sizing and accounting: cash, positions, realized/unrealized PnL, trades."""

from tradestack.portfolio.account import Portfolio
from tradestack.portfolio.trades import TradeRecord, TradeTracker

__all__ = ["Portfolio", "TradeRecord", "TradeTracker"]
