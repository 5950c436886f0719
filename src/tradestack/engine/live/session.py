"""A paper-trading session: the live feed of one market into the paper engine, on asyncio.

The strategy, its instrument's rules and the L2 venue settings come from the same config (its
``book`` section) a backtest of a recording runs from; the ``paper`` section names the market
and where its feed comes from. Market data arrives through ccxt (the same ``CcxtFeed`` and venue
adapter the recorder uses), each normalized event becomes feed rows, and the rows go into
:class:`~tradestack.engine.live.paper.PaperEngine` once the first book snapshot has arrived.
Orders, answers and fills go to the paper state database as they happen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tradestack.core.events import FundingRate, MarketEvent, TradeTick
from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument
from tradestack.data.book.l2book import L2Book
from tradestack.data.book.sync import BookUpdate
from tradestack.data.sources.ccxt_feed import CcxtFeed
from tradestack.data.sources.session import check_symbols, make_adapter, make_exchange
from tradestack.engine.config import BacktestConfig, BusFeedConfig, ConfigError, PaperConfig
from tradestack.engine.l2 import L2BacktestEngine, L2BacktestResult
from tradestack.engine.live.paper import PaperEngine
from tradestack.engine.loading import build_engine
from tradestack.execution.sim.feed import CLEAR, L2_EVENT, SNAPSHOT, L2Feed, Row, event_rows
from tradestack.storage import StateStore, open_database


@dataclass
class SessionStats:
    """What a session saw: feed events and rows, rows that came after later-stamped rows had
    been replayed (restamped; a larger ``paper.hold_ms`` waits for them), and why it ended."""

    events: int = 0
    rows: int = 0
    late_rows: int = 0
    source: str = ""
    started_ns: int = field(default_factory=time.time_ns)
    stopped_by: str = ""


MAX_CLOCK_GAP_NS = 60_000_000_000
FIRST_EVENT_S = 30.0


class PaperSessionError(RuntimeError):
    """The session could not trade (no snapshot arrived, the market is unknown...)."""


async def paper_session(
    config: BacktestConfig,
    base: Path,
    *,
    base_url: str | None = None,
    stop: asyncio.Event | None = None,
) -> tuple[L2BacktestResult, SessionStats, Path | str]:
    """Trade ``config`` on paper until stopped; returns the result, the session's numbers and
    where its state database is. ``base_url`` overrides ``paper.base_url`` (a replay server the
    caller started)."""
    paper = config.paper
    if paper is None:
        raise ConfigError("paper trading needs a paper section (venue, symbol, state...)")
    if config.book is not None and config.book.starting_position:
        raise ConfigError("book.starting_position is for backtests; paper starts flat")
    template = build_engine(config, base, live=True)
    if not isinstance(template, L2BacktestEngine):
        raise ConfigError("paper trading runs order-book (book) configs")
    state_target: Path | str = paper.state
    if "://" not in paper.state:
        state_target = Path(paper.state) if Path(paper.state).is_absolute() else base / paper.state
    store = StateStore(open_database(state_target, "paper"))
    stats = SessionStats()
    stop = stop or asyncio.Event()
    source = market_source(
        paper.venue, paper.symbol, template.instrument, base_url or paper.base_url, paper.bus
    )
    async with source as feed:
        try:
            engine = await _trade(template, paper, feed.queue, store, stats, stop)
        except PaperSessionError as exc:
            if feed.describe is not None:
                exc.add_note(feed.describe())
            raise
        finally:
            stats.source = feed.describe() if feed.describe is not None else ""
    stats.late_rows = engine.reorder.late
    if paper.open_orders_at_stop == "cancel":
        for order in engine.ctx.open_orders(engine.instrument.id):
            engine.ctx.cancel(order)
    result = engine.finish()
    for ts, value in zip(result.ts_ns.tolist(), result.equity.tolist(), strict=True):
        store.record_equity(int(ts), float(value))
    return result, stats, state_target


@dataclass
class FeedHandle:
    """A session's market data: normalized events on ``queue``, the live book they keep."""

    queue: asyncio.Queue[MarketEvent | BookUpdate]
    book: L2Book
    describe: Callable[[], str] | None = None


def market_source(
    venue: str,
    symbol: str,
    instrument: Instrument,
    base_url: str | None,
    bus: BusFeedConfig | None,
) -> AbstractAsyncContextManager[FeedHandle]:
    """The exchange's own feed, or the Redis stream a recorder publishes it to."""
    if bus is None:
        return market_feed(venue, symbol, instrument, base_url)
    return _bus_feed(venue, symbol, instrument, bus)


@asynccontextmanager
async def market_feed(
    venue: str, symbol: str, instrument: Instrument, base_url: str | None
) -> AsyncIterator[FeedHandle]:
    """The market's live feed (ccxt.pro, the recorder's venue adapter and book sync): its
    normalized events arrive on the queue. The symbol must be the instrument's market."""
    exchange = make_exchange(venue, base_url=base_url)
    try:
        await exchange.load_markets()
        check_symbols(venue, exchange.markets, [symbol])
        market = exchange.market(symbol)
        traded = instrument.id.symbol
        if traded.replace("/", "").replace("-", "").upper() != str(market["id"]).upper():
            raise ConfigError(
                f"{symbol!r} is {market['id']} at {venue}, but the book section trades "
                f"{traded!r}: the feed and the instrument rules must be one market"
            )
        queue: asyncio.Queue[MarketEvent | BookUpdate] = asyncio.Queue()
        feed = CcxtFeed(
            make_adapter(venue, exchange, [symbol]), queue.put_nowait, kinds=("book", "trades")
        )
        async with feed:
            yield FeedHandle(queue, feed.adapter.books[symbol].book)
    finally:
        await exchange.close()


@asynccontextmanager
async def _bus_feed(
    venue: str, symbol: str, instrument: Instrument, bus: BusFeedConfig
) -> AsyncIterator[FeedHandle]:
    from tradestack.bus import connect
    from tradestack.bus.market_data import bus_market_feed

    client = connect(bus.url)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        raise ConnectionError(f"paper/live bus: cannot reach Redis: {exc}") from None
    try:
        stream = bus_market_feed(
            client,
            venue,
            symbol,
            InstrumentId(symbol, venue),
            group=bus.group,
            consumer=bus.consumer,
            prefix=bus.prefix,
            start=bus.start,
        )
        async with stream as feed:

            def describe() -> str:
                reader = feed.consumer
                return (
                    f"bus: {reader.stats.handled:,} entries of {reader.stream} in group "
                    f"{reader.group!r} ({feed.redelivered} redelivered); book from the "
                    f"{feed.book_from or 'stream (none arrived)'}, {feed.skipped_before_book} "
                    "updates before it skipped"
                )

            yield FeedHandle(feed.queue, feed.book, describe)
    finally:
        await client.aclose()


async def _trade(
    template: L2BacktestEngine,
    paper: PaperConfig,
    queue: asyncio.Queue[MarketEvent | BookUpdate],
    store: StateStore,
    stats: SessionStats,
    stop: asyncio.Event,
) -> PaperEngine:
    deadline = None if paper.duration_s is None else time.monotonic() + paper.duration_s
    idle_stop_s = paper.idle_stop_s
    last = time.monotonic()
    waiting: list[Row] = []
    engine: PaperEngine | None = None
    while True:
        if stop.is_set():
            stats.stopped_by = "signal"
            break
        if deadline is not None and time.monotonic() >= deadline:
            stats.stopped_by = "duration"
            break
        try:
            first = await asyncio.wait_for(queue.get(), 0.1)
        except TimeoutError:
            if idle_stop_s is not None:
                # before anything arrived the wait is longer: connecting takes a while
                waited = idle_stop_s if stats.events else max(idle_stop_s, FIRST_EVENT_S)
                if time.monotonic() - last >= waited:
                    stats.stopped_by = "idle"
                    break
            continue
        batch = [first]
        while not queue.empty():
            batch.append(queue.get_nowait())
        rows: list[Row] = []
        for event in batch:
            if isinstance(event, BookUpdate | TradeTick | FundingRate):
                stats.events += 1
                rows.extend(event_rows(event))
        stats.rows += len(rows)
        if engine is not None:
            engine.on_rows(np.array(rows, dtype=L2_EVENT))
            last = time.monotonic()
            continue
        waiting.extend(rows)
        if any(row[2] == CLEAR for row in rows):
            _check_clocks(template, waiting)
            # the engine starts with the rows up to the snapshot; the rest go in as received
            end = _snapshot_end(waiting)
            engine = _start(template, paper, waiting[:end], store, stats)
            if end < len(waiting):
                engine.on_rows(np.array(waiting[end:], dtype=L2_EVENT))
        last = time.monotonic()
    if engine is None:
        raise PaperSessionError(
            f"no book snapshot arrived before the session ended ({stats.stopped_by}); "
            "nothing was traded"
        )
    return engine


def _snapshot_end(rows: list[Row]) -> int:
    """Where the rows of the last snapshot message end."""
    end = max(k for k, row in enumerate(rows) if row[2] == CLEAR) + 1
    while end < len(rows) and rows[end][2] == SNAPSHOT and rows[end][0] == rows[end - 1][0]:
        end += 1
    return end


def _check_clocks(template: L2BacktestEngine, rows: list[Row]) -> None:
    """The venue's receive clock is the rows' receive times unless the config models the feed
    latency; a feed whose exchange times are far from now (a recording served at some speed)
    would put the two clocks years apart."""
    if template.config.feed_latency_ns is not None:
        return
    lag = max(abs(int(r[1]) - int(r[0])) for r in rows)
    if lag > MAX_CLOCK_GAP_NS:
        raise PaperSessionError(
            f"the feed's exchange times are {lag / 1e9:,.0f} s from their receive times (a "
            "replayed recording?): set l2_venue.feed_latency_ns to model the feed latency, so "
            "the simulated venue runs on the exchange's clock"
        )


def _start(
    template: L2BacktestEngine,
    paper: PaperConfig,
    rows: list[Row],
    store: StateStore,
    stats: SessionStats,
) -> PaperEngine:
    first = L2Feed.from_rows(template.instrument.id, rows)
    engine = PaperEngine(
        template.strategy,
        first,
        instrument=template.instrument,
        venue=template.config,
        starting_cash=template.portfolio.cash,
        currency=template.portfolio.currency,
        hold_ns=paper.hold_ms * 1_000_000,
        store=store,
        session=str(stats.started_ns),
    )
    engine.start()
    return engine
