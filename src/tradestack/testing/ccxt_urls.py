"""Point a real ccxt exchange at a fake venue (the implementation lives with the sources)."""

from tradestack.data.sources.ccxt_urls import point_at, rewrite_url

__all__ = ["point_at", "rewrite_url"]
