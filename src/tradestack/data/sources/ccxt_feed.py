"""Live crypto market data through ccxt.pro: books we keep ourselves, trades, quotes, funding.

ccxt does the transport: connections, subscription messages, REST snapshots, its own parsing.
We subclass the ccxt exchange only to *tap* each decoded frame before ccxt handles it
(:func:`tapped_exchange`), hand it to a per-venue :class:`VenueAdapter` that normalizes it to
domain events and feeds our :class:`~tradestack.data.book.sync.BookSync`, which is the book we
publish (why: ``docs/architecture.md``, "Books"). Each subscription runs in its own task that
re-awaits the ccxt ``watch_*`` call, so ccxt keeps the subscription alive; on a network error
it backs off (jittered exponential) and re-subscribes, and the book goes back to awaiting a
snapshot. A watchdog marks feeds stale when nothing arrived for ``stale_after_s``.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from tradestack.core.events import MarketEvent
from tradestack.core.ids import InstrumentId
from tradestack.data.book.sync import BookSync, BookUpdate

log = logging.getLogger(__name__)

KINDS = ("book", "trades", "quotes", "funding")
Watcher = tuple[str, str, Callable[[], Awaitable[Any]]]


@dataclass(frozen=True)
class Backoff:
    """Jittered exponential backoff: ``min(cap, base * 2**attempt) * uniform(1 - jitter, 1)``."""

    base_s: float = 0.25
    cap_s: float = 30.0
    jitter: float = 0.5

    def delay(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.cap_s, self.base_s * (2.0 ** min(attempt, 30)))
        return ceiling * rng.uniform(1.0 - self.jitter, 1.0)


@dataclass
class FeedStats:
    """Per-feed counters: messages seen, events emitted, bad messages, reconnects, staleness."""

    messages: int = 0
    events: int = 0
    bad_messages: int = 0
    reconnects: int = 0
    stale_alerts: int = 0
    ccxt_book_errors: int = 0
    hook_errors: int = 0
    sink_errors: int = 0
    errors: deque[str] = field(default_factory=lambda: deque(maxlen=100))


class VenueAdapter(ABC):
    """What differs between venues: message routing, normalizing, book sync and resync."""

    #: ccxt exchange id, also the venue of our InstrumentIds
    venue: str = ""

    def __init__(self, exchange: Any, symbols: list[str]) -> None:
        self.exchange = exchange
        self.symbols = symbols
        self.books: dict[str, BookSync] = {}
        self.snapshot_ts_ns = 0

    def prepare(self) -> None:  # noqa: B027
        """Called once markets are loaded (map venue ids to unified symbols here)."""

    def instrument(self, symbol: str) -> InstrumentId:
        return InstrumentId(symbol, self.venue)

    @abstractmethod
    def make_book(self, symbol: str) -> BookSync:
        """A fresh book sync for a unified symbol."""

    @abstractmethod
    def on_raw(self, url: str, message: Any, ts_recv_ns: int) -> list[MarketEvent | BookUpdate]:
        """Normalize one decoded frame (feeding the books); unknown frames give ``[]``."""

    @abstractmethod
    async def resync(self, symbol: str) -> list[BookUpdate]:
        """Bring a stale book back (REST snapshot or re-subscription)."""

    def ccxt_snapshot(self, symbol: str, book: Any) -> list[BookUpdate]:
        """A REST snapshot fetched through ccxt; venues that sync by REST apply it.

        ``self.snapshot_ts_ns`` holds its receive time (live clock, or the recorded one).
        """
        return []

    def watch_calls(self) -> dict[str, Callable[[str], Awaitable[Any]]]:
        """The ccxt ``watch_*`` call that keeps each kind subscribed, by kind; a venue leaves out
        kinds it does not stream (funding on a spot venue) or passes its own parameters."""
        ex = self.exchange
        return {
            "book": ex.watch_order_book,
            "trades": ex.watch_trades,
            "quotes": ex.watch_ticker,
            "funding": ex.watch_funding_rate,
        }

    def watchers(self, kinds: Iterable[str]) -> list[Watcher]:
        """``(kind, symbol, coroutine factory)`` for every ccxt subscription to keep alive."""
        calls = self.watch_calls()
        return [(k, s, partial(calls[k], s)) for k in kinds if k in calls for s in self.symbols]


class RestSnapshotAdapter(VenueAdapter):
    """Venues whose diff stream joins a REST snapshot (Binance, KuCoin).

    ccxt fetches the same snapshot for its own book when it subscribes; it reaches ours through
    the feed's snapshot tap (:meth:`ccxt_snapshot`). Our resync is one more
    ``fetch_order_book``, whose result arrives by the same tap, so a recording holds every
    snapshot and replays it identically. Subclasses say how a ccxt book maps to the body their
    sync's ``on_snapshot`` reads.
    """

    snapshot_limit: int | None = None

    @abstractmethod
    def snapshot_body(self, book: Any) -> dict[str, Any]:
        """A ccxt order book (``nonce`` = the venue's update id) as the venue's REST body."""

    def ccxt_snapshot(self, symbol: str, book: Any) -> list[BookUpdate]:
        sync = self.books.get(symbol)
        on_snapshot = getattr(sync, "on_snapshot", None)
        if sync is None or sync.is_live or on_snapshot is None:
            return []
        updates: list[BookUpdate] = on_snapshot(self.snapshot_body(book), self.snapshot_ts_ns)
        return updates

    async def resync(self, symbol: str) -> list[BookUpdate]:
        await self.exchange.fetch_order_book(symbol, self.snapshot_limit)
        return []


def tapped_exchange(exchange_class: type[Any]) -> type[Any]:
    """Subclass a ccxt.pro exchange so every decoded frame and REST book snapshot is tapped.

    The subclass calls ``self.tap(url, message, ts_recv_ns)`` before ccxt's own handler and
    ``self.tap_snapshot(symbol, orderbook)`` after every REST ``fetch_order_book`` (ccxt's own,
    when it subscribes, and ours, when we resync), so a recorder sees every snapshot used.
    A tap that raises is logged and never disturbs ccxt.
    """

    class Tapped(exchange_class):  # type: ignore[misc]
        tap: Callable[[str, Any, int], None] = staticmethod(lambda url, message, ts: None)
        tap_snapshot: Callable[[str, Any], None] = staticmethod(lambda symbol, book: None)

        def handle_message(self, client: Any, message: Any) -> Any:
            try:
                self.tap(client.url, message, time.time_ns())
            except Exception:  # a bug in a tap must not kill ccxt's receive loop
                log.exception("market-data tap failed on a %s frame", self.id)
            return super().handle_message(client, message)

        async def fetch_order_book(self, symbol: str, *args: Any, **kwargs: Any) -> Any:
            book = await super().fetch_order_book(symbol, *args, **kwargs)
            try:
                self.tap_snapshot(symbol, book)
            except Exception:
                log.exception("snapshot tap failed for %s %s", self.id, symbol)
            return book

    Tapped.__name__ = f"Tapped{exchange_class.__name__}"
    return Tapped


class CcxtFeed:
    """One venue's live market data: subscriptions, normalized events, books, reconnects.

    Events go to ``sink`` (called on the event loop, must not block: put them on a queue or
    into a recorder buffer). Book updates are delivered as :class:`BookUpdate` only while that
    book is live and uncrossed.
    """

    def __init__(
        self,
        adapter: VenueAdapter,
        sink: Callable[[MarketEvent | BookUpdate], None],
        *,
        kinds: Iterable[str] = ("book", "trades"),
        backoff: Backoff | None = None,
        stale_after_s: float = 30.0,
        seed: int | None = None,
        on_raw: Callable[[str, Any, int], None] | None = None,
        on_snapshot: Callable[[str, Any, int], None] | None = None,
        on_control: Callable[[str, str, str, int], None] | None = None,
    ) -> None:
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown market-data kinds {sorted(unknown)}; known: {list(KINDS)}")
        self.adapter = adapter
        self.exchange = adapter.exchange
        self.sink = sink
        self.kinds = tuple(kinds)
        self.backoff = backoff or Backoff()
        self.stale_after_s = stale_after_s
        self.stats = FeedStats()
        self.last_message_ns = 0
        self._raw_hook = on_raw
        self._snapshot_hook = on_snapshot
        self._control_hook = on_control
        self.replaying = False
        self._stopping = False
        self._rng = random.Random(seed)
        self._tasks: set[asyncio.Task[None]] = set()
        self._resyncing: set[str] = set()
        self.exchange.tap = self.handle_frame
        self.exchange.tap_snapshot = self.handle_snapshot

    def handle_frame(self, url: str, message: Any, ts_recv_ns: int) -> None:
        """One decoded frame, live (from the tap) or replayed from a recording."""
        if self._stopping:
            return
        self.stats.messages += 1
        self.last_message_ns = ts_recv_ns
        self._call_hook(self._raw_hook, url, message, ts_recv_ns)
        try:
            events = self.adapter.on_raw(url, message, ts_recv_ns)
        except Exception as exc:  # one bad message never kills the feed
            self.stats.bad_messages += 1
            log.debug("dropped a bad %s message: %s", self.adapter.venue, exc)
            return
        self._emit(events)
        if self.replaying:
            return  # a recording holds the snapshots fetched live; they arrive in order
        for symbol, sync in self.adapter.books.items():
            if sync.resync_requested and symbol not in self._resyncing:
                self._resyncing.add(symbol)
                self._spawn(self._resync(symbol))

    def handle_snapshot(self, symbol: str, book: Any, ts_recv_ns: int | None = None) -> None:
        """A REST book snapshot (ccxt's or ours), live or replayed."""
        if self._stopping:
            return
        ts = time.time_ns() if ts_recv_ns is None else ts_recv_ns
        self._call_hook(self._snapshot_hook, symbol, book, ts)
        self.adapter.snapshot_ts_ns = ts
        self._emit(self.adapter.ccxt_snapshot(symbol, book))

    def handle_control(self, symbol: str, action: str, reason: str, ts_ns: int) -> None:
        """A book state change that no frame shows (disconnect, silence); recorded for replay.

        ``reset``: the connection was lost, wait for a new snapshot. ``stale``: stop
        publishing and resync.
        """
        sync = self.adapter.books.get(symbol)
        if sync is None:
            return
        if action == "reset":
            sync.disconnected(reason)
        else:
            sync.mark_stale(reason)
        self._call_hook(self._control_hook, symbol, action, reason, ts_ns)

    def _call_hook(self, hook: Callable[..., None] | None, *args: Any) -> None:
        if hook is None:
            return
        try:
            hook(*args)
        except Exception:  # a recorder failure must not cost the live book a frame
            self.stats.hook_errors += 1
            if self.stats.hook_errors == 1:
                log.exception(
                    "%s recorder hook failed; counting further failures", self.adapter.venue
                )

    def _emit(self, events: Iterable[MarketEvent | BookUpdate]) -> None:
        for event in events:
            self.stats.events += 1
            try:
                self.sink(event)
            except Exception:  # the consumer's failure is its own; the feed goes on
                self.stats.sink_errors += 1
                if self.stats.sink_errors == 1:
                    log.exception("%s sink failed; counting further failures", self.adapter.venue)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _resync(self, symbol: str) -> None:
        attempt = 0
        try:
            while self.adapter.books[symbol].resync_requested and not self.replaying:
                if attempt:
                    await asyncio.sleep(self.backoff.delay(attempt - 1, self._rng))
                attempt += 1
                try:
                    self._emit(await self.adapter.resync(symbol))
                except Exception as exc:
                    self.stats.errors.append(f"resync {symbol}: {type(exc).__name__}: {exc}")
        finally:
            self._resyncing.discard(symbol)

    async def _keep_watching(
        self, kind: str, symbol: str, call: Callable[[], Awaitable[Any]]
    ) -> None:
        import ccxt

        attempt = 0
        while True:
            try:
                await call()
                attempt = 0
            except asyncio.CancelledError:
                raise
            except (ccxt.NotSupported, ccxt.BadSymbol, ccxt.AuthenticationError) as exc:
                # Retrying cannot help: report it once and end this subscription only.
                self.stats.errors.append(f"{kind} {symbol}: gave up: {type(exc).__name__}: {exc}")
                log.error(
                    "%s %s %s subscription stopped: %s", self.adapter.venue, kind, symbol, exc
                )
                return
            except (ccxt.ChecksumError, ccxt.InvalidNonce) as exc:
                # ccxt's own book saw a gap: it drops that book and the next watch call
                # re-subscribes (a REST snapshot on Binance: back off as for any error).
                # Ours has its own gap detection and is left alone.
                self.stats.ccxt_book_errors += 1
                self.stats.errors.append(f"{kind} {symbol}: ccxt book: {type(exc).__name__}")
                await asyncio.sleep(self.backoff.delay(attempt, self._rng))
                attempt += 1
            except (ccxt.NetworkError, ccxt.ExchangeError) as exc:
                self.stats.reconnects += 1
                self.stats.errors.append(f"{kind} {symbol}: {type(exc).__name__}: {exc}")
                if kind == "book" and symbol in self.adapter.books:
                    # Frames were lost with the connection: the book waits for the snapshot
                    # the re-subscription brings (asking REST now could publish a book whose
                    # diffs cannot arrive until the socket is back).
                    self.handle_control(symbol, "reset", "disconnected", time.time_ns())
                await asyncio.sleep(self.backoff.delay(attempt, self._rng))
                attempt += 1
            except Exception as exc:  # a bug in ccxt or ours must not end the subscription
                self.stats.errors.append(f"{kind} {symbol}: {type(exc).__name__}: {exc}")
                log.exception("%s %s %s watch failed", self.adapter.venue, kind, symbol)
                await asyncio.sleep(self.backoff.delay(attempt, self._rng))
                attempt += 1

    async def _watchdog(self) -> None:
        while True:
            await asyncio.sleep(max(self.stale_after_s / 4, 0.05))
            idle_s = (time.time_ns() - self.last_message_ns) / 1e9
            if self.last_message_ns and idle_s > self.stale_after_s:
                self.stats.stale_alerts += 1
                log.warning("%s feed stale: nothing for %.1f s", self.adapter.venue, idle_s)
                for symbol in self.adapter.books:
                    self.handle_control(
                        symbol, "stale", f"no message for {idle_s:.1f} s", time.time_ns()
                    )
                self.last_message_ns = time.time_ns()

    async def start(self) -> None:
        """Load markets, create the books, start one task per subscription and the watchdog."""
        await self.exchange.load_markets()
        self.adapter.prepare()
        if "book" in self.kinds:
            for symbol in self.adapter.symbols:
                self.adapter.books[symbol] = self.adapter.make_book(symbol)
        for kind, symbol, call in self.adapter.watchers(self.kinds):
            self._spawn(self._keep_watching(kind, symbol, call))
        self._spawn(self._watchdog())

    async def stop(self) -> None:
        """Cancel every task (also ones spawned while stopping), then close the exchange."""
        self._stopping = True
        while self._tasks:
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._tasks.difference_update(tasks)
        await self.exchange.close()

    async def __aenter__(self) -> CcxtFeed:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()
