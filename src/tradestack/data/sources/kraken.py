"""Kraken spot through ccxt.pro: our book kept from the WebSocket v1 ``book`` channel.

Why not ccxt's ``watch_order_book``: ccxt 4.5's ``ccxt.pro.kraken`` speaks WebSocket v2
(``wss://ws.kraken.com/v2``, ``{"channel": "book", "type": ..., "data": [...]}``), keeps its book
as floats, and has its checksum check off by default ("exchange checksum not reliable");
switched on (``options.watchOrderBook.checksum``) it raises ``AttributeError`` in 4.5's Python
build, because its ``format_number`` splits the stored floats as if they were strings. A float
cannot give Kraken's checksum anyway: it is computed over the decimal strings as sent
(``"0.000022900"``, trailing zeros included). Our recordings, and the v1 endpoint Kraken still
serves, are v1. So ccxt does the transport and the REST metadata, and we do the book:

- ``load_markets`` is ccxt's own (``/0/public/AssetPairs``; ``wsname`` maps v1 pairs to unified
  symbols). ccxt also calls ``/0/public/Assets`` when ``has.fetchCurrencies`` is on; that only
  refines amount precision and is not needed for market data.
- Subscriptions are v1 frames sent through ccxt's WebSocket client:
  ``exchange.watch(url, key, {"event": "subscribe", ...}, key)`` per pair and channel on the v1
  endpoint. ccxt's v2 handler ignores v1 frames, so these futures never resolve: the calls
  keep ccxt's connection, keep-alive pings (v1 ``{"event": "ping"}``) and reconnects working,
  and every frame is tapped (``tapped_exchange``) before ccxt sees it.
- :class:`~tradestack.data.venues.kraken.KrakenBookSync` verifies the CRC32 checksum of every
  update (and that level times never go back). A mismatch, a late frame or a crossed book makes
  the book stale; :meth:`KrakenAdapter.resync` sends ``unsubscribe`` + ``subscribe`` for that
  pair through ccxt's client and waits for the new snapshot. After a lost connection, ccxt's
  reconnect re-subscribes, which brings the snapshot by itself.

The checksum covers the top 10 levels only, so with ``depth`` above 10 a lost update deeper in
the book goes unnoticed until one of its levels reaches the top 10 (on the recorded session, 80%
of single lost updates were caught, most at the next update; 11% were overwritten before they
mattered; 9% never reached the top 10). ``depth=10`` gives a book that is verified in full.

The tests also run ccxt's own v2 book, against a fake venue that speaks v2 by translating the
recorded v1 frames (values verbatim): it equals the same reference rebuild at every step.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from tradestack.core.events import MarketEvent
from tradestack.data.book.sync import BookSync, BookUpdate
from tradestack.data.sources.ccxt_feed import VenueAdapter, Watcher
from tradestack.data.venues.kraken import (
    DEPTHS,
    KrakenBookSync,
    frame_kind,
    parse_ticker,
    parse_trades,
)

#: our feed kinds → Kraken v1 subscription names (spot has no funding)
CHANNELS = {"book": "book", "trades": "trade", "quotes": "ticker"}


class KrakenAdapter(VenueAdapter):
    """Kraken spot market data over the v1 WebSocket API, through ccxt.pro's client.

    ``depth`` is the subscribed book depth (10, 25, 100, 500 or 1000); ``snapshot_timeout_s``
    bounds how long a resync waits for the new snapshot before it is retried.
    """

    venue = "kraken"

    def __init__(
        self,
        exchange: Any,
        symbols: list[str],
        *,
        depth: int = 1000,
        snapshot_timeout_s: float = 10.0,
    ) -> None:
        if depth not in DEPTHS:
            raise ValueError(f"Kraken book depth must be one of {DEPTHS}, got {depth}")
        super().__init__(exchange, symbols)
        self.depth = depth
        self.snapshot_timeout_s = snapshot_timeout_s
        self.subscription_errors: list[str] = []
        self._wsname: dict[str, str] = {}
        self._by_wsname: dict[str, str] = {}
        self._subscribing: set[str] = set()
        self._snapshot_seen: dict[str, asyncio.Event] = {}

    @property
    def ws_url(self) -> str:
        """The v1 public endpoint (with an explicit ``/`` path: ``wss://ws.kraken.com/``)."""
        url = str(self.exchange.urls["api"]["ws"]["public"])
        return url if urlsplit(url).path else url + "/"

    def prepare(self) -> None:
        for symbol in self.symbols:
            market = self.exchange.market(symbol)
            wsname = market.get("wsId") or market["info"].get("wsname")
            if not wsname:
                raise ValueError(f"{symbol} has no Kraken WebSocket name (wsname)")
            self._wsname[symbol] = str(wsname)
            self._by_wsname[str(wsname)] = symbol

    def wsname(self, symbol: str) -> str:
        """Kraken's v1 pair name of a unified symbol (``BTC/CHF`` → ``XBT/CHF``)."""
        return self._wsname[symbol]

    def make_book(self, symbol: str) -> BookSync:
        return KrakenBookSync(self.instrument(symbol), depth=self.depth, pair=self._wsname[symbol])

    def request(self, event: str, symbol: str, channel: str) -> dict[str, Any]:
        """A v1 ``subscribe``/``unsubscribe`` frame for one pair and channel."""
        subscription: dict[str, Any] = {"name": channel}
        if channel == "book":
            subscription["depth"] = self.depth
        return {"event": event, "pair": [self._wsname[symbol]], "subscription": subscription}

    def watchers(self, kinds: Iterable[str]) -> list[Watcher]:
        out: list[Watcher] = []
        for kind in kinds:
            channel = CHANNELS.get(kind)
            if channel is None:
                continue
            for s in self.symbols:
                out.append((kind, s, functools.partial(self._watch, s, channel)))
        return out

    def _watch(self, symbol: str, channel: str) -> Any:
        """Keep a v1 subscription alive through ccxt (a call after a reconnect re-subscribes)."""
        if channel == "book":
            self._subscribing.add(symbol)
        key = f"{channel}:{self._wsname[symbol]}"
        return self.exchange.watch(
            self.ws_url, key, self.request("subscribe", symbol, channel), key
        )

    def on_raw(self, url: str, message: Any, ts_recv_ns: int) -> list[MarketEvent | BookUpdate]:
        if isinstance(message, dict):
            if message.get("status") == "error":
                self.subscription_errors.append(str(message.get("errorMessage", message)))
            return []
        name, pair = frame_kind(message)
        symbol = self._by_wsname.get(pair)
        if symbol is None:
            return []
        if name.startswith("book"):
            sync = self.books.get(symbol)
            if sync is None:
                return []
            update = sync.on_message_safe(message, ts_recv_ns)
            if sync.is_live and symbol in self._subscribing:
                self._subscribing.discard(symbol)
                self._event(symbol).set()
            return [] if update is None else [update]
        if name == "trade":
            return list(parse_trades(message, self.instrument(symbol), ts_recv_ns))
        if name == "ticker":
            return [parse_ticker(message, self.instrument(symbol), ts_recv_ns)]
        return []

    def _event(self, symbol: str) -> asyncio.Event:
        return self._snapshot_seen.setdefault(symbol, asyncio.Event())

    async def resync(self, symbol: str) -> list[BookUpdate]:
        """Re-subscribe the pair's book (v1 frames through ccxt) and wait for its snapshot.

        The snapshot itself arrives as a frame and is published from :meth:`on_raw`. If a
        subscription is already on its way (ccxt reconnecting), this only waits for it.
        """
        sync = self.books[symbol]
        seen = self._event(symbol)
        seen.clear()
        if sync.is_live:
            return []
        if symbol not in self._subscribing:
            client = (self.exchange.clients or {}).get(self.ws_url)
            if client is not None and not client.closed():
                self._subscribing.add(symbol)
                try:
                    await client.send(self.request("unsubscribe", symbol, "book"))
                    await client.send(self.request("subscribe", symbol, "book"))
                except Exception:
                    self._subscribing.discard(symbol)
                    raise
        try:
            await asyncio.wait_for(seen.wait(), self.snapshot_timeout_s)
        except TimeoutError:
            self._subscribing.discard(symbol)
            raise TimeoutError(
                f"no {self._wsname[symbol]} snapshot within {self.snapshot_timeout_s} s"
            ) from None
        return []
