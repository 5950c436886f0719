"""Market-data sources: live venues (ccxt, alpaca-py), files and recordings."""
