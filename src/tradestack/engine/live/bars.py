"""Live trading of US stocks on bars: Alpaca's minute bars in, orders through Alpaca.

The config is a bar backtest's (``strategy``, ``params``, one ``data`` entry per symbol for the
instrument rules, ``live.venue: alpaca``). The strategy gets the bar engine's context: each
completed minute bar from Alpaca's stream (alpaca-py's ``StockDataStream``, through
:class:`~tradestack.data.sources.alpaca.AlpacaBarSource`) goes to ``on_bar``, and
``ctx.history`` holds the bars received in this session. Orders go through the
:class:`~tradestack.execution.oms.OrderManager` to :class:`~tradestack.execution.oms.
alpaca_gateway.AlpacaGateway` (Alpaca's paper account unless ``live.alpaca_paper`` is false),
after reconciliation with the account; a dry run logs them. Alpaca's market data needs the API
key even for a dry run. Stop, kill switch and fill checks are those of the order-book session
(:class:`~tradestack.engine.live.live.Pacer`).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tradestack.core.events import Bar
from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument
from tradestack.data.sources.alpaca import AlpacaBarSource
from tradestack.engine.config import BacktestConfig, ConfigError, LiveConfig
from tradestack.engine.live.trader import LiveTrader, seed_positions
from tradestack.engine.loading import import_strategy, instrument_of
from tradestack.execution.oms import OrderManager
from tradestack.execution.oms.alpaca_gateway import AlpacaGateway, alpaca_gateway
from tradestack.execution.oms.reconcile import reconcile
from tradestack.portfolio.account import Portfolio

if TYPE_CHECKING:
    from tradestack.engine.live.live import LiveSummary

COLUMNS = ("open", "high", "low", "close", "volume")
VENUE = "alpaca"


class BarHistory:
    """The bars received so far, per instrument: what ``ctx.history`` reads."""

    def __init__(self, instrument_ids: list[InstrumentId]) -> None:
        self._columns: dict[InstrumentId, dict[str, list[float]]] = {
            inst: {c: [] for c in COLUMNS} for inst in instrument_ids
        }

    def append(self, bar: Bar) -> None:
        columns = self._columns[bar.instrument_id]
        for name in COLUMNS:
            columns[name].append(float(getattr(bar, name)))

    def __call__(self, inst: InstrumentId, column: str, n: int | None) -> np.ndarray:
        values = self._columns[inst].get(column)
        if values is None:
            raise KeyError(f"no bar field {column!r}; fields: {', '.join(COLUMNS)}")
        out = np.asarray(values if n is None else values[-n:], dtype=np.float64)
        out.flags.writeable = False
        return out


def instruments(config: BacktestConfig) -> list[Instrument]:
    """The config's stocks, each ``SYMBOL@alpaca``, or a :class:`ConfigError` naming the entry."""
    if config.book is not None or config.pipeline is not None or config.strategy is None:
        raise ConfigError("live.venue alpaca trades a bar strategy: strategy, params and data")
    found = []
    for k, entry in enumerate(config.data):
        inst = instrument_of(entry)
        if inst.id.venue != VENUE:
            raise ConfigError(
                f"data[{k}].instrument: {inst.id} is not an Alpaca stock (e.g. AAPL@alpaca)"
            )
        found.append(inst)
    if not found:
        raise ConfigError("live.venue alpaca: name the stocks in data (one entry per symbol)")
    return found


async def alpaca_session(
    config: BacktestConfig,
    base: Path,
    live: LiveConfig,
    keys: tuple[str, str],
    stop: asyncio.Event,
    summary: LiveSummary,
    store_target: Path | str | None,
) -> None:
    """Trade ``config`` on Alpaca's bars until stopped (see the module docstring)."""
    from tradestack.engine.live.live import Pacer, kill_switch_of
    from tradestack.storage import StateStore, open_database

    stocks = instruments(config)
    ids = [i.id for i in stocks]
    strategy = import_strategy(config.strategy or "", base)(**config.params)
    portfolio = Portfolio(Decimal(str(config.starting_cash)), config.currency)
    for inst in stocks:
        portfolio.register(inst)
    source = AlpacaBarSource(
        *keys, data_url=live.data_url, stream_url=live.stream_url, feed=live.alpaca_feed
    )
    gateway: AlpacaGateway | None = None
    oms: OrderManager | None = None
    if store_target is not None:
        store = StateStore(open_database(store_target, "live"))
        gateway = alpaca_gateway(
            live.base_url, api_key=keys[0], secret=keys[1], paper=live.alpaca_paper, name=VENUE
        )
        oms = OrderManager(
            store, gateway, strategy=strategy.name, kill_switch=kill_switch_of(live, base)
        )
    try:
        if oms is not None and gateway is not None:
            summary.start = await reconcile(oms, gateway, ids)
            for inst in stocks:
                seed_positions(portfolio, oms, inst)
        history = BarHistory(ids)
        trader = LiveTrader(
            strategy, stocks[0], None, portfolio, oms=oms, dry_log=summary.dry_log.append,
            history=history, others=stocks[1:],
        )  # fmt: skip
        trader.start()
        pacer = Pacer(live, trader, oms, gateway, ids, stop, summary)
        async with source.stream_bars([i.symbol for i in ids]) as stream:
            while await pacer.go_on():
                try:
                    bar = await asyncio.wait_for(anext(stream), 0.05)
                except TimeoutError:
                    continue
                pacer.heard()
                if bar.instrument_id in trader.ctx.instruments:
                    history.append(bar)
                    trader.on_bar(bar)
            await pacer.wind_down()
        await pacer.settle_accounts()
    finally:
        if gateway is not None:
            await gateway.close()
