"""Binance spot and USD-M through ccxt.pro: routes tapped frames to our book sync and parsers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from tradestack.core.events import MarketEvent
from tradestack.data.book.sync import BookSync, BookUpdate
from tradestack.data.sources.ccxt_feed import RestSnapshotAdapter
from tradestack.data.venues.binance import (
    BinanceBookSync,
    event_type,
    parse_book_ticker,
    parse_mark_price,
    parse_trade,
    unwrap,
)


class BinanceAdapter(RestSnapshotAdapter):
    """Binance spot (``binance``) or USD-M (``binanceusdm``) market data.

    ccxt's own Binance book follows the same U/u/pu rules, so its REST snapshot (fetched when
    it subscribes) seeds our book too; after a gap only ours asks for a new one.
    """

    def __init__(self, exchange: Any, symbols: list[str], *, snapshot_limit: int = 1000) -> None:
        super().__init__(exchange, symbols)
        self.venue = str(exchange.id)
        self.futures = self.venue != "binance"
        self.snapshot_limit = snapshot_limit
        self._by_id: dict[str, str] = {}

    def prepare(self) -> None:
        self._by_id = {str(self.exchange.market(s)["id"]).upper(): s for s in self.symbols}

    def make_book(self, symbol: str) -> BookSync:
        return BinanceBookSync(self.instrument(symbol), futures=self.futures)

    def on_raw(self, url: str, message: Any, ts_recv_ns: int) -> list[MarketEvent | BookUpdate]:
        if not isinstance(message, dict):
            return []
        stream, payload = unwrap(message)
        if not isinstance(payload, dict):
            return []
        symbol = self._by_id.get(str(payload.get("s", "")).upper())
        if symbol is None:
            return []
        kind = event_type(stream, payload)
        iid = self.instrument(symbol)
        if kind == "depthUpdate":
            sync = self.books.get(symbol)
            update = sync.on_message_safe(payload, ts_recv_ns) if sync is not None else None
            return [] if update is None else [update]
        if kind in ("trade", "aggTrade"):
            return [parse_trade(payload, iid, ts_recv_ns)]
        if kind == "bookTicker":
            return [parse_book_ticker(payload, iid, ts_recv_ns)]
        if kind == "markPriceUpdate":
            return [parse_mark_price(payload, iid, ts_recv_ns)]
        return []

    def snapshot_body(self, book: Any) -> dict[str, Any]:
        return ccxt_book_body(book)

    def watch_calls(self) -> dict[str, Callable[[str], Awaitable[Any]]]:
        ex = self.exchange
        calls: dict[str, Callable[[str], Awaitable[Any]]] = {
            "book": ex.watch_order_book,
            "trades": ex.watch_trades,
            "quotes": lambda symbol: ex.watch_bids_asks([symbol]),  # the bookTicker stream
        }
        if self.futures:
            calls["funding"] = ex.watch_mark_price  # markPrice carries the funding rate
        return calls


def ccxt_book_body(book: Any) -> dict[str, Any]:
    """A ccxt order book (``nonce`` = lastUpdateId) in the REST body shape our sync reads."""
    return {
        "lastUpdateId": book["nonce"],
        "bids": [level[:2] for level in book["bids"]],
        "asks": [level[:2] for level in book["asks"]],
        "T": book.get("timestamp") or 0,
    }
