"""A live-trading session: the strategy on the live feed, its orders through the order manager.

Start (fail closed): the config's ``live.confirm`` must read ``"send real orders"`` and the API
key and secret must be in the environment (a dry run needs neither); the state database must
be a live one; reconciliation must converge (:func:`~tradestack.execution.oms.reconcile.
reconcile`: the report says why not). Then the stored position is put into the strategy's
portfolio, the feed starts, and each book change, trade and due timer goes to the strategy
(:class:`~tradestack.engine.live.trader.LiveTrader`). Every ``check_every_s`` the trades of the
open orders are fetched (fills the stream missed). At stop (SIGINT/SIGTERM, ``duration_s``,
``idle_stop_s``) open orders are cancelled or kept, requests in flight are awaited, and the
positions are reconciled once more.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from tradestack.core.events import MarketEvent, TradeTick
from tradestack.data.book.sync import BookUpdate
from tradestack.engine.config import LIVE_CONFIRMATION, BacktestConfig, ConfigError, LiveConfig
from tradestack.engine.l2 import L2BacktestEngine
from tradestack.engine.live.session import market_feed
from tradestack.engine.live.trader import LiveTrader, seed_positions
from tradestack.engine.loading import build_engine
from tradestack.execution.oms import OrderManager
from tradestack.execution.oms.ccxt_gateway import CcxtGateway, binance_gateway
from tradestack.execution.oms.reconcile import ReconciliationReport, check_fills, reconcile
from tradestack.portfolio.account import Portfolio
from tradestack.risk.kill_switch import KillSwitch, KillSwitchState
from tradestack.storage import StateStore, open_database


class LiveStartRefused(RuntimeError):
    """Live trading will not start: the message says what is missing."""


@dataclass
class LiveSummary:
    """What a live session did."""

    dry_run: bool
    start: ReconciliationReport | None = None
    end: ReconciliationReport | None = None
    orders: int = 0
    fills: int = 0
    events: int = 0
    stopped_by: str = ""
    dry_log: list[str] = field(default_factory=list)


def credentials(live: LiveConfig) -> tuple[str, str]:
    """The API key and secret from the environment, or :class:`LiveStartRefused` naming the
    variables (their values are never printed)."""
    key, secret = os.environ.get(live.key_env, ""), os.environ.get(live.secret_env, "")
    pairs = ((live.key_env, key), (live.secret_env, secret))
    missing = " and ".join(name for name, value in pairs if not value)
    if missing:
        raise LiveStartRefused(
            f"live trading needs the API credentials in the environment: set {missing}"
        )
    return key, secret


async def live_session(
    config: BacktestConfig, base: Path, *, stop: asyncio.Event | None = None
) -> LiveSummary:
    """Trade ``config`` live (or dry) until stopped; see the module docstring."""
    live = config.live
    if live is None:
        raise ConfigError("live trading needs a live section (venue, symbol, confirm...)")
    if not live.dry_run and live.confirm != LIVE_CONFIRMATION:
        raise LiveStartRefused(
            f'live trading sends real orders: set live.confirm: "{LIVE_CONFIRMATION}" to start '
            "(or live.dry_run: true to log the orders instead)"
        )
    if config.book is not None and config.book.starting_position:
        raise ConfigError(
            "book.starting_position is for backtests; live positions come from the venue"
        )
    template = build_engine(config, base)
    if not isinstance(template, L2BacktestEngine):
        raise ConfigError("live trading runs order-book (book) configs")
    summary = LiveSummary(dry_run=live.dry_run)
    portfolio = Portfolio(Decimal(str(config.starting_cash)), config.currency)
    portfolio.register(template.instrument)
    stop = stop or asyncio.Event()
    gateway: CcxtGateway | None = None
    oms: OrderManager | None = None
    if not live.dry_run:
        key, secret = credentials(live)
        target: Path | str = live.state
        if "://" not in live.state and not Path(live.state).is_absolute():
            target = base / live.state
        store = StateStore(open_database(target, "live"))
        gateway = binance_gateway(live.base_url, api_key=key, secret=secret)
        gateway.reserve = dict(live.reserve)
        switch = None
        if live.kill_switch is not None:
            state = Path(live.kill_switch)
            state = state if state.is_absolute() else base / state
            switch = KillSwitch(state, state.with_name(state.name + ".flag"))
        oms = OrderManager(store, gateway, strategy=template.strategy.name, kill_switch=switch)
    try:
        if oms is not None and gateway is not None:
            summary.start = await reconcile(oms, gateway, [template.instrument.id])
            seed_positions(portfolio, oms, template.instrument)
        await _run(template, live, portfolio, oms, gateway, stop, summary)
    finally:
        if gateway is not None:
            await gateway.close()
    return summary


async def _run(
    template: L2BacktestEngine,
    live: LiveConfig,
    portfolio: Portfolio,
    oms: OrderManager | None,
    gateway: CcxtGateway | None,
    stop: asyncio.Event,
    summary: LiveSummary,
) -> None:
    instrument = template.instrument
    async with market_feed(live.venue, live.symbol, instrument, live.base_url) as (queue, feed):
        book = feed.adapter.books[live.symbol].book
        trader = LiveTrader(
            template.strategy, instrument, book, portfolio, oms=oms, dry_log=summary.dry_log.append
        )
        trader.start()
        deadline = None if live.duration_s is None else time.monotonic() + live.duration_s
        last = next_check = time.monotonic()
        switch = oms.kill_switch if oms is not None else None
        halted = False
        while True:
            now = time.monotonic()
            if stop.is_set():
                summary.stopped_by = "signal"
                break
            if deadline is not None and now >= deadline:
                summary.stopped_by = "duration"
                break
            if live.idle_stop_s is not None and now - last >= live.idle_stop_s:
                summary.stopped_by = "idle"
                break
            if switch is not None and not halted and switch.refresh() is KillSwitchState.HALTED:
                halted = True  # new orders are denied from here on; cancel what works
                for order in trader.ctx.open_orders(instrument.id):
                    trader.ctx.cancel(order)
            trader.fire_timers(time.time_ns())
            if oms is not None and gateway is not None and now >= next_check:
                next_check = now + live.check_every_s
                await check_fills(oms, gateway, [instrument.id])
            try:
                event: MarketEvent | BookUpdate = await asyncio.wait_for(queue.get(), 0.05)
            except TimeoutError:
                continue
            last = time.monotonic()
            summary.events += 1
            if isinstance(event, BookUpdate):
                trader.on_book_change(event.ts_event_ns)
            elif isinstance(event, TradeTick):
                trader.on_trade(event)
        if live.open_orders_at_stop == "cancel":
            for order in trader.ctx.open_orders(instrument.id):
                trader.ctx.cancel(order)
        await trader.settle()
        trader.strategy.on_stop(trader.ctx)
    if oms is not None and gateway is not None:
        summary.end = await check_fills(oms, gateway, [instrument.id])
        summary.orders = len(oms.store.orders())
        summary.fills = len(oms.store.fills())
    else:
        summary.orders = sum(1 for line in summary.dry_log if " submit " in line)
