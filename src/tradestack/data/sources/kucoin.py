"""KuCoin spot through ccxt.pro: routes tapped frames to our book sync and parsers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tradestack.core.events import MarketEvent
from tradestack.data.book.sync import BookSync, BookUpdate
from tradestack.data.sources.ccxt_feed import RestSnapshotAdapter
from tradestack.data.venues.kucoin import (
    KucoinBookSync,
    parse_match,
    parse_ticker,
    topic_symbol,
)

#: The ticker topic we watch: ``/market/ticker`` carries best bid/ask with sizes and the book
#: sequence they belong to; ccxt's default ``/market/snapshot`` (24 h stats) has neither.
TICKER_TOPIC = "/market/ticker"

#: ccxt config for market data (``ccxt.pro.kucoin(CCXT_CONFIG)``, merged with your own):
#: ``snapshotDelay: 0`` fetches the REST snapshot on the first buffered level-2 message, as
#: KuCoin's guide says (ccxt's default waits for 5); only spot markets are loaded, without the
#: ``allTickers`` fee lookup, and no currency list (``has``: no ccxt option turns it off), as
#: market data needs neither.
CCXT_CONFIG: dict[str, Any] = {
    "options": {
        "watchOrderBook": {"snapshotDelay": 0},
        "watchTicker": {"spotMethod": TICKER_TOPIC},
        "fetchMarkets": {"types": ["spot"], "fetchTickersFees": False},
    },
    "has": {"fetchCurrencies": False},
}


class KucoinAdapter(RestSnapshotAdapter):
    """KuCoin spot (``kucoin``) market data: ``/market/level2`` books, matches, tickers.

    ccxt's KuCoin book follows the same snapshot + buffered-sequence rules to start, so the
    REST snapshot it fetches when it subscribes seeds our book too. After that ccxt checks no
    continuity (a lost message leaves its book silently wrong); ours detects the gap and
    resyncs from a fresh REST snapshot (``fetch_order_book``: the full ``v3`` book with API
    keys, the public 100-level ``level2_100`` without).
    """

    venue = "kucoin"

    def __init__(
        self, exchange: Any, symbols: list[str], *, snapshot_limit: int | None = None
    ) -> None:
        super().__init__(exchange, symbols)
        self.venue = str(exchange.id)
        self.snapshot_limit = snapshot_limit
        self._by_id: dict[str, str] = {}

    def prepare(self) -> None:
        self._by_id = {str(self.exchange.market(s)["id"]): s for s in self.symbols}

    def make_book(self, symbol: str) -> BookSync:
        return KucoinBookSync(self.instrument(symbol))

    def on_raw(self, url: str, message: Any, ts_recv_ns: int) -> list[MarketEvent | BookUpdate]:
        if not isinstance(message, dict) or message.get("type") != "message":
            return []
        symbol = self._by_id.get(topic_symbol(message))
        data = message.get("data")
        if symbol is None or not isinstance(data, dict):
            return []
        subject = message.get("subject")
        if subject == "trade.l2update":
            sync = self.books.get(symbol)
            update = sync.on_message_safe(data, ts_recv_ns) if sync is not None else None
            return [] if update is None else [update]
        if subject == "trade.l3match":
            return [parse_match(data, self.instrument(symbol), ts_recv_ns)]
        if subject == "trade.ticker":
            return [parse_ticker(data, self.instrument(symbol), ts_recv_ns)]
        return []

    def snapshot_body(self, book: Any) -> dict[str, Any]:
        return ccxt_book_body(book)

    def watch_calls(self) -> dict[str, Callable[[str], Awaitable[Any]]]:
        ex = self.exchange
        return {
            "book": ex.watch_order_book,
            "trades": ex.watch_trades,
            "quotes": lambda symbol: ex.watch_ticker(symbol, {"spotMethod": TICKER_TOPIC}),
        }


def ccxt_book_body(book: Any) -> dict[str, Any]:
    """A ccxt order book (``nonce`` = KuCoin ``sequence``) in the REST ``data`` shape."""
    return {
        "sequence": int(book["nonce"]),
        "time": book.get("timestamp") or 0,
        "bids": [level[:2] for level in book["bids"]],
        "asks": [level[:2] for level in book["asks"]],
    }
