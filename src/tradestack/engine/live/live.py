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
from tradestack.core.ids import InstrumentId
from tradestack.data.book.sync import BookUpdate
from tradestack.engine.config import LIVE_CONFIRMATION, BacktestConfig, ConfigError, LiveConfig
from tradestack.engine.l2 import L2BacktestEngine
from tradestack.engine.live.session import market_source
from tradestack.engine.live.trader import LiveTrader, seed_positions
from tradestack.engine.loading import build_engine
from tradestack.execution.oms import OrderManager
from tradestack.execution.oms.ccxt_gateway import CcxtGateway, binance_gateway
from tradestack.execution.oms.gateway import TradingAccount
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


def state_target(live: LiveConfig, base: Path) -> Path | str:
    """The live state database: a URL, or a path (relative to the config's folder)."""
    if "://" in live.state or Path(live.state).is_absolute():
        return live.state
    return base / live.state


def kill_switch_of(live: LiveConfig, base: Path) -> KillSwitch | None:
    """The kill switch the config names (its state file; the flag file beside it), if any."""
    if live.kill_switch is None:
        return None
    state = Path(live.kill_switch)
    state = state if state.is_absolute() else base / state
    return KillSwitch(state, state.with_name(state.name + ".flag"))


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
    summary = LiveSummary(dry_run=live.dry_run)
    stop = stop or asyncio.Event()
    if live.venue == "alpaca":
        from tradestack.engine.live.bars import alpaca_session, instruments

        instruments(config)  # a bad config is refused before the credentials are asked for
        keys = credentials(live)  # Alpaca's market data needs them even for a dry run
        target = None if live.dry_run else state_target(live, base)
        await alpaca_session(config, base, live, keys, stop, summary, target)
        return summary
    template = build_engine(config, base, live=True)
    if not isinstance(template, L2BacktestEngine):
        raise ConfigError("live trading on binance runs order-book (book) configs")
    portfolio = Portfolio(Decimal(str(config.starting_cash)), config.currency)
    portfolio.register(template.instrument)
    gateway: CcxtGateway | None = None
    oms: OrderManager | None = None
    if not live.dry_run:
        key, secret = credentials(live)
        store = StateStore(open_database(state_target(live, base), "live"))
        gateway = binance_gateway(live.base_url, api_key=key, secret=secret)
        gateway.reserve = dict(live.reserve)
        oms = OrderManager(
            store, gateway, strategy=template.strategy.name, kill_switch=kill_switch_of(live, base)
        )
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
    gateway: TradingAccount | None,
    stop: asyncio.Event,
    summary: LiveSummary,
) -> None:
    instrument = template.instrument
    source = market_source(live.venue, live.symbol, instrument, live.base_url, live.bus)
    async with source as feed:
        queue = feed.queue
        trader = LiveTrader(
            template.strategy,
            instrument,
            feed.book,
            portfolio,
            oms=oms,
            dry_log=summary.dry_log.append,
        )
        trader.start()
        pacer = Pacer(live, trader, oms, gateway, [instrument.id], stop, summary)
        while await pacer.go_on():
            try:
                event: MarketEvent | BookUpdate = await asyncio.wait_for(queue.get(), 0.05)
            except TimeoutError:
                continue
            pacer.heard()
            if isinstance(event, BookUpdate):
                trader.on_book_change(event.ts_event_ns)
            elif isinstance(event, TradeTick):
                trader.on_trade(event)
        await pacer.wind_down()
    await pacer.settle_accounts()


class Pacer:
    """What both live loops do between market events: the stop conditions (signal,
    ``duration_s``, ``idle_stop_s``), the kill switch (halted: cancel every open order), due
    timers and the periodic check for missed fills; then the wind-down at stop."""

    def __init__(
        self,
        live: LiveConfig,
        trader: LiveTrader,
        oms: OrderManager | None,
        gateway: TradingAccount | None,
        instrument_ids: list[InstrumentId],
        stop: asyncio.Event,
        summary: LiveSummary,
    ) -> None:
        self.live, self.trader, self.oms, self.gateway = live, trader, oms, gateway
        self.instrument_ids = instrument_ids
        self.stop, self.summary = stop, summary
        now = time.monotonic()
        self.deadline = None if live.duration_s is None else now + live.duration_s
        self.last = self.next_check = now
        self.halted = False

    def heard(self) -> None:
        """A market event arrived."""
        self.last = time.monotonic()
        self.summary.events += 1

    async def go_on(self) -> bool:
        """Run what is due; False once the session must stop (``summary.stopped_by`` says why)."""
        now = time.monotonic()
        live, summary = self.live, self.summary
        if self.stop.is_set():
            summary.stopped_by = "signal"
        elif self.deadline is not None and now >= self.deadline:
            summary.stopped_by = "duration"
        elif live.idle_stop_s is not None and now - self.last >= live.idle_stop_s:
            summary.stopped_by = "idle"
        if summary.stopped_by:
            return False
        switch = self.oms.kill_switch if self.oms is not None else None
        if switch is not None and not self.halted and switch.refresh() is KillSwitchState.HALTED:
            self.halted = True  # new orders are denied from here on; cancel what works
            self._cancel_all()
        self.trader.fire_timers(time.time_ns())
        if self.oms is not None and self.gateway is not None and now >= self.next_check:
            self.next_check = now + live.check_every_s
            await check_fills(self.oms, self.gateway, self.instrument_ids)
        return True

    def _cancel_all(self) -> None:
        for inst in self.instrument_ids:
            for order in self.trader.ctx.open_orders(inst):
                self.trader.ctx.cancel(order)

    async def wind_down(self) -> None:
        """Cancel or keep the open orders (config), wait for requests in flight, ``on_stop``."""
        if self.live.open_orders_at_stop == "cancel":
            self._cancel_all()
        await self.trader.settle()
        self.trader.strategy.on_stop(self.trader.ctx)

    async def settle_accounts(self) -> None:
        """A last check of the fills (the end report) and the session's counts."""
        summary = self.summary
        if self.oms is not None and self.gateway is not None:
            summary.end = await check_fills(self.oms, self.gateway, self.instrument_ids)
            summary.orders = len(self.oms.store.orders())
            summary.fills = len(self.oms.store.fills())
        else:
            summary.orders = sum(1 for line in summary.dry_log if " submit " in line)
