"""Example strategies, importable by path (``tradestack.strategies.sma_cross:SmaCross``)."""
