"""Wire a venue's live feed (ccxt exchange + adapter + CcxtFeed) and record or replay it.

``record`` runs the live feed and writes raw frames plus normalized catalog rows; ``replay``
reads a raw recording and pushes every frame and snapshot through the *same* adapter and feed
methods the live tap calls, so a replay reproduces the live books and events exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import importlib
import json
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradestack.core.events import MarketEvent
from tradestack.data.book.sync import BookUpdate
from tradestack.data.recorder import RAW_FORMAT, CatalogSink, RawFrameWriter
from tradestack.data.recordings import FrameKind, read_recording
from tradestack.data.sources.ccxt_feed import KINDS, CcxtFeed, VenueAdapter, tapped_exchange
from tradestack.data.sources.ccxt_urls import point_at

#: ccxt id → adapter ``module:Class``
ADAPTERS = {
    "binance": "tradestack.data.sources.binance:BinanceAdapter",
    "binanceusdm": "tradestack.data.sources.binance:BinanceAdapter",
    "coinbase": "tradestack.data.sources.coinbase:CoinbaseAdapter",
    "kraken": "tradestack.data.sources.kraken:KrakenAdapter",
    "kucoin": "tradestack.data.sources.kucoin:KucoinAdapter",
}
#: ccxt options that keep market loading to the market type we stream
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "binance": {"fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False},
    "binanceusdm": {
        "fetchMarkets": {"types": ["linear"]},
        "fetchCurrencies": False,
        "watchOrderBookRate": "0",
    },
}


def make_exchange(
    venue: str, *, base_url: str | None = None, options: dict[str, Any] | None = None
) -> Any:
    """A tapped ccxt.pro exchange configured for market data; ``base_url`` points it elsewhere.

    The adapter module's ``CCXT_CONFIG`` (if any) and :data:`DEFAULT_OPTIONS` come first,
    ``options`` last. Against a ``base_url`` (a local fake venue) ccxt's throttle is off and the
    currency list, which no recording holds and market data does not need, is not loaded.
    """
    import ccxt.pro

    if venue not in ADAPTERS:
        raise ValueError(f"unknown venue {venue!r}; supported: {', '.join(sorted(ADAPTERS))}")
    module = importlib.import_module(ADAPTERS[venue].partition(":")[0])
    base: dict[str, Any] = getattr(module, "CCXT_CONFIG", {})
    config: dict[str, Any] = {
        **base,
        "options": {**base.get("options", {}), **DEFAULT_OPTIONS.get(venue, {}), **(options or {})},
    }
    if base_url is not None:
        config["enableRateLimit"] = False
        config["has"] = {**base.get("has", {}), "fetchCurrencies": False}
    exchange = tapped_exchange(getattr(ccxt.pro, venue))(config)
    if base_url is not None:
        point_at(exchange, base_url)
    return exchange


def make_adapter(venue: str, exchange: Any, symbols: list[str]) -> VenueAdapter:
    module, _, name = ADAPTERS[venue].partition(":")
    adapter_class = getattr(importlib.import_module(module), name)
    adapter: VenueAdapter = adapter_class(exchange, symbols)
    return adapter


def check_symbols(venue: str, markets: dict[str, Any], symbols: list[str]) -> None:
    """Raise ``ValueError`` naming each unknown symbol, with the closest listed ones."""
    problems = []
    for symbol in symbols:
        if symbol not in markets:
            close = difflib.get_close_matches(symbol, list(markets), n=3, cutoff=0.5)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            problems.append(f"{symbol!r}{hint}")
    if problems:
        raise ValueError(f"{venue} has no market {'; '.join(problems)}")


@dataclass
class Progress:
    """Messages seen so far, for the progress line."""

    started: float = field(default_factory=time.perf_counter)
    messages: int = 0
    events: int = 0

    def line(self) -> str:
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        return (
            f"{self.messages:,} msgs  {self.events:,} events  "
            f"{self.messages / elapsed:,.0f} msgs/s  {elapsed:,.1f} s"
        )


async def record(
    venue: str,
    symbols: list[str],
    kinds: Iterable[str],
    *,
    raw_path: Path,
    catalog_root: Path | None,
    duration_s: float | None = None,
    base_url: str | None = None,
    until: Callable[[], bool] | None = None,
    progress: Callable[[Progress], None] | None = None,
    also: Callable[[MarketEvent | BookUpdate], None] | None = None,
) -> Progress:
    """Run the live feed, writing raw frames to ``raw_path`` and rows to the catalog; ``also``
    is called with every event too (a bus publisher)."""
    from tradestack.data.catalog import Catalog

    kinds = tuple(kinds)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; use some of {', '.join(KINDS)}")
    exchange = make_exchange(venue, base_url=base_url)
    try:
        await exchange.load_markets()
        check_symbols(venue, exchange.markets, symbols)
    except BaseException:
        await exchange.close()
        raise
    header = {
        "venue": venue,
        "symbols": symbols,
        "kinds": list(kinds),
        "markets": {s: exchange.market(s) for s in symbols},
    }
    writer = RawFrameWriter(raw_path, header)
    sink = CatalogSink(Catalog(catalog_root)) if catalog_root is not None else None
    state = Progress()

    def on_event(event: MarketEvent | BookUpdate) -> None:
        state.events += 1
        if sink is not None:
            sink(event)
        if also is not None:
            also(event)

    def on_raw(url: str, message: Any, ts: int) -> None:
        state.messages += 1
        writer.frame(url, message, ts)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows / threads
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        feed = CcxtFeed(
            make_adapter(venue, exchange, symbols),
            on_event,
            kinds=kinds,
            on_raw=on_raw,
            on_snapshot=writer.snapshot,
            on_control=writer.control,
        )
        async with feed:
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                if until is not None and until():
                    break
                await asyncio.sleep(0.25)
                if progress is not None:
                    progress(state)
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.remove_signal_handler(signal.SIGTERM)
        await exchange.close()
        writer.close()
        if sink is not None:
            sink.flush()
    return state


def replay(
    raw_path: Path,
    *,
    sink: Callable[[MarketEvent | BookUpdate], None],
    progress: Callable[[Progress], None] | None = None,
    progress_every: int = 50_000,
) -> tuple[Progress, CcxtFeed]:
    """Feed a raw recording through the live code path (no network); returns the feed used."""
    frames = read_recording(raw_path)
    first = next(frames, None)
    header = json.loads(first.payload) if first is not None else {}
    if first is None or first.kind is not FrameKind.HEADER or header.get("format") != RAW_FORMAT:
        raise ValueError(
            f"{raw_path} is not a tradestack recording (no {RAW_FORMAT!r} header line); "
            "record one with `tradestack record`"
        )
    venue = str(header["venue"])
    symbols = list(header["symbols"])
    exchange = make_exchange(venue)
    exchange.set_markets(list(header["markets"].values()))
    adapter = make_adapter(venue, exchange, symbols)
    state = Progress()

    def on_event(event: MarketEvent | BookUpdate) -> None:
        state.events += 1
        sink(event)

    feed = CcxtFeed(adapter, on_event, kinds=header.get("kinds", ["book"]))
    feed.replaying = True
    adapter.prepare()
    if "book" in feed.kinds:
        for symbol in symbols:
            adapter.books[symbol] = adapter.make_book(symbol)
    for frame in frames:
        if frame.kind is FrameKind.RECV:
            state.messages += 1
            feed.handle_frame(frame.url, json.loads(frame.payload), frame.ts_ns)
        elif frame.kind is FrameKind.SNAPSHOT:
            feed.handle_snapshot(frame.conn, json.loads(frame.payload), frame.ts_ns)
        elif frame.kind is FrameKind.CONTROL:
            control = json.loads(frame.payload)
            feed.handle_control(frame.conn, control["action"], control["reason"], frame.ts_ns)
        if progress is not None and state.messages % progress_every == 0:
            progress(state)
    return state, feed
