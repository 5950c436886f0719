"""Coinbase Advanced Trade through ccxt.pro: our sequence-checked books, trades and quotes.

ccxt subscribes (``level2``, ``market_trades``, ``ticker``; one subscribe message per channel
and product, all on the one market-data connection) and keeps the connection alive; every
decoded frame is tapped into :class:`~tradestack.data.venues.coinbase.CoinbaseDecoder`, which
checks the connection-wide ``sequence_num`` that ccxt ignores (see that module).

Resync is a re-subscription: ``unsubscribe`` + ``subscribe`` ``level2`` for the product, sent
as raw frames through ccxt's own client for the connection, after which Coinbase sends a fresh
``l2_data`` snapshot in-stream. ccxt's ``un_watch_order_book`` is not used: in ccxt 4.5.90 it
only completes when the ``subscriptions`` reply lists *no* subscription at all, so on a
connection that still carries other channels it would never return, and it would also reject
the pending ``watch_order_book`` future and delete ccxt's book. The raw frames leave ccxt's
subscription bookkeeping alone; its handler resets its book in place on the new snapshot.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tradestack.core.events import MarketEvent
from tradestack.data.book.sync import BookSync, BookUpdate
from tradestack.data.sources.ccxt_feed import VenueAdapter
from tradestack.data.venues.coinbase import CoinbaseBookSync, CoinbaseDecoder


class CoinbaseAdapter(VenueAdapter):
    """Coinbase Advanced Trade spot market data (``ccxt.pro.coinbase``).

    ``resync_timeout_s`` bounds the wait for the snapshot a re-subscription asks for; past it
    the feed retries with backoff. A new ccxt client object for the WebSocket URL (after a
    reconnect) starts a new connection in the decoder, whose numbering restarts at 0.
    """

    venue = "coinbase"

    def __init__(
        self, exchange: Any, symbols: list[str], *, resync_timeout_s: float = 10.0
    ) -> None:
        super().__init__(exchange, symbols)
        self.resync_timeout_s = resync_timeout_s
        self.product_ids: dict[str, str] = {}  # what we subscribe to
        self.wire_ids: dict[str, str] = {}  # what the frames name
        self.decoder = CoinbaseDecoder({})
        self._client: Any = None
        self._snapshots: dict[str, asyncio.Event] = {}

    def prepare(self) -> None:
        for symbol in self.symbols:
            market = self.exchange.market(symbol)
            self.product_ids[symbol] = str(market["id"])
            # A "-USDC" product is served on every public channel with the data of its "-USD"
            # alias, under the alias's product_id (so don't ask for both at once).
            alias = str((market.get("info") or {}).get("alias") or "")
            self.wire_ids[symbol] = alias or str(market["id"])
        self.decoder.instruments = {
            wire: self.instrument(symbol) for symbol, wire in self.wire_ids.items()
        }

    def make_book(self, symbol: str) -> BookSync:
        sync = CoinbaseBookSync(self.instrument(symbol), self.wire_ids[symbol])
        self.decoder.books[sync.product_id] = sync
        self._snapshots[symbol] = asyncio.Event()
        return sync

    @property
    def ws_url(self) -> str:
        return str(self.exchange.urls["api"]["ws"])

    def on_raw(self, url: str, message: Any, ts_recv_ns: int) -> list[MarketEvent | BookUpdate]:
        client = (getattr(self.exchange, "clients", None) or {}).get(url)
        if client is not self._client or not self.decoder.connections:
            self._client = client
            self.decoder.new_connection()
        events = self.decoder.on_frame(message, ts_recv_ns)
        for event in events:
            if isinstance(event, BookUpdate) and event.is_snapshot:
                self._snapshots[event.instrument_id.symbol].set()
        return events

    async def resync(self, symbol: str) -> list[BookUpdate]:
        """Re-subscribe ``level2`` for ``symbol`` and wait for the snapshot it brings."""
        import ccxt

        sync = self.books[symbol]
        if sync.is_live:
            return []
        client = (getattr(self.exchange, "clients", None) or {}).get(self.ws_url)
        if client is None or client.closed():
            raise ccxt.NetworkError(f"coinbase resync {symbol}: not connected")
        arrived = self._snapshots[symbol]
        arrived.clear()
        product = [self.product_ids[symbol]]
        await client.send({"type": "unsubscribe", "product_ids": product, "channel": "level2"})
        await client.send({"type": "subscribe", "product_ids": product, "channel": "level2"})
        try:
            await asyncio.wait_for(arrived.wait(), self.resync_timeout_s)
        except TimeoutError as exc:
            raise ccxt.RequestTimeout(f"coinbase resync {symbol}: no snapshot") from exc
        return []

    def watch_calls(self) -> dict[str, Callable[[str], Awaitable[Any]]]:
        calls = super().watch_calls()
        del calls["funding"]  # spot only: there is no funding stream
        return calls
