"""The SMA-crossover parity workload run in three peer libraries.

Each ``run_*`` function imports its library lazily, silences the library's logging /
plotting / progress output, runs one backtest and returns a :class:`PeerResult`.

Strategy (identical in every peer)
----------------------------------
``fast_sma``/``slow_sma`` are :func:`workload.sma` of close (``math.fsum(window) / n``,
bit-identical everywhere).  On bar ``i`` (``i >= slow``, i.e. once the *previous* slow SMA
exists) a strict cross up (``prev_fast < prev_slow and fast > slow``) targets a position
of ``+qty``; a strict cross down targets ``-qty``.  Reversals are a single order of
``2 * qty`` on a netting account.  Zero commission, no slippage.

Fill conventions (``fill=``)
----------------------------
``"next_open"``
    Market order filled at the open of bar ``i + 1``; the trade time is bar ``i + 1``.
    backtesting.py default, backtrader default.  Not supported by nautilus (its bar
    execution fills a market order against the last processed price, i.e. the close).
``"close"``
    Market order filled at the close of the signal bar ``i``; the trade time is bar ``i``.
    backtesting.py ``trade_on_close=True``, backtrader ``broker.set_coc(True)``
    (cheat-on-close), nautilus ``bar_execution=True`` (the bar is fed through the matching
    engine as O->H->L->C trade ticks *before* ``on_bar`` runs, so an order submitted in
    ``on_bar`` fills at the close, stamped with the bar's ``ts_init``).

Conventions bridged so the peers agree exactly
----------------------------------------------
* SMA arithmetic: peers' own SMAs (pandas ``rolling().mean()``, backtrader's
  ``SimpleMovingAverage``, nautilus ``SimpleMovingAverage``, running sums) differ by a few
  ulps (pandas vs fsum: ~20% of values) and could flip a strict crossover at a near-tie,
  so every peer uses :func:`workload.sma`'s definition.  (On GOOG and the synthetic walk
  the closest |fast - slow| / slow is ~1e-7..1e-8, so no signal actually flips; this is a
  precaution for other data.)
* backtrader ``order.executed.price`` is a running size-weighted average recomputed as
  ``(size * price) / size``, which is an ulp off for a 2*qty reversal (e.g. 481.78 ->
  481.7799999999999); fills are read from ``order.executed.exbits`` instead.
* Warm-up: backtesting.py only calls ``next()`` from bar ``slow`` on (first bar where the
  previous slow SMA exists); the other peers skip signals before that bar as well.
* Last bar: backtesting.py (``trade_on_close``) and backtrader (cheat-on-close and
  next-open) process an order one bar *after* it was placed, so an order placed on the
  final bar is never filled.  Nautilus would fill it at the final close, so the nautilus
  strategy ignores signals on the final bar.  (With zero costs such a fill would not
  change final equity, only the closed-trade count.)
* Nautilus prices are 128-bit fixed point (scale 1e16); ``Price.as_double()`` is *not*
  the same double as the input for ~7% of 8-decimal prices, so the nautilus strategy
  reads ``float(bar.close.as_decimal())`` (correctly rounded, equal to the input).
* Nautilus ``Money`` is rounded to the currency precision; USD has 2 decimals, which
  would round PnL to cents.  The test instrument is therefore quoted in USDT (8 decimals,
  same as the prices) so realised PnL and balances are exact.
* Nautilus's simulated L1 book from bars has size ``volume / 4`` at each price; an order
  larger than that would walk one tick.  Workload volumes keep ``volume / 4 >= 2 * qty``
  (checked).
* Final equity is cash + open position marked at the last close in every peer: the open
  position is *not* closed (backtesting.py ``finalize_trades=False``).

Styles (``style=``)
-------------------
``"parity"`` (default) is the above: the shared fsum SMA, and for backtrader a light array feed.
``"idiomatic"`` is each library as its own docs write the strategy: backtesting.py ``self.I``
over pandas ``rolling().mean()`` with ``backtesting.lib.crossover`` and ``position.close()``;
backtrader ``PandasData`` with ``bt.ind.SMA`` and ``bt.ind.CrossOver``. That is what the speed
comparison should use; agreement is still checked (it holds unless an ulp-level SMA difference
flips a near-tie, which the check would report).

``trades`` are closed round trips ``(entry_ns, exit_ns, entry_price, exit_price,
signed_size)``: native ``stats._trades`` for backtesting.py; FIFO-matched from the
peer's own executions (price, size, time as reported by the peer) for backtrader and
nautilus.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

try:  # imported as ``benchmarks.peers`` (package) or as a script sibling
    from benchmarks.workload import crossed, sma, to_pandas
except ImportError:  # pragma: no cover - script mode
    from workload import crossed, sma, to_pandas  # type: ignore

__all__ = [
    "Fill",
    "PeerResult",
    "Trade",
    "round_trips",
    "run_backtesting_py",
    "run_backtrader",
    "run_nautilus",
]

PeerStyle = Literal["parity", "idiomatic"]
FillConvention = Literal["next_open", "close"]
#: ``(entry_time_ns, exit_time_ns, entry_price, exit_price, signed_size)``
Trade = tuple[int, int, float, float, int]
#: ``(time_ns, price, signed_size)`` of one execution.
Fill = tuple[int, float, int]


@dataclass
class PeerResult:
    """Outcome of one peer backtest.

    Attributes:
        name: Peer name (``backtesting.py``, ``backtrader``, ``nautilus_trader``).
        fill: Fill convention used.
        trades: Closed round trips, in closing order.
        n_trades: ``len(trades)``.
        final_equity: Cash + open position marked at the last close (peer's own number).
        run_seconds: Wall time of the peer's run call only (no data preparation).
        n_bars: Bars fed to the peer.
        fills: Every execution ``(time_ns, price, signed_size)`` in order.
        final_position: Signed open position at the end.
        extra: Peer-specific diagnostics.
    """

    name: str
    fill: str
    trades: list[Trade]
    n_trades: int
    final_equity: float
    run_seconds: float
    n_bars: int
    fills: list[Fill] = field(default_factory=list)
    final_position: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bars_per_second(self) -> float:
        """Throughput of the run call."""
        return self.n_bars / self.run_seconds if self.run_seconds > 0 else math.inf


def round_trips(fills: Sequence[Fill]) -> tuple[list[Trade], int]:
    """FIFO-match executions into closed round trips.

    Returns:
        ``(trades, final_position)``; a fill that crosses through zero closes the open
        lots and opens a new lot with the remainder.
    """
    lots: deque[list[Any]] = deque()  # [entry_ns, entry_price, signed_size]
    trades: list[Trade] = []
    position = 0
    for ts, price, size in fills:
        remaining = size
        while remaining and lots and (lots[0][2] > 0) != (remaining > 0):
            lot = lots[0]
            closed = min(abs(lot[2]), abs(remaining))
            signed = closed if lot[2] > 0 else -closed
            trades.append((lot[0], ts, lot[1], price, signed))
            lot[2] -= signed
            remaining += signed
            if lot[2] == 0:
                lots.popleft()
        if remaining:
            lots.append([ts, price, remaining])
        position += size
    return trades, position


def _check_fill(fill: str) -> None:
    if fill not in ("next_open", "close"):
        raise ValueError(f"fill must be 'next_open' or 'close', got {fill!r}")


def _as_frame(data: pd.DataFrame | dict[str, np.ndarray]) -> pd.DataFrame:
    return data if isinstance(data, pd.DataFrame) else to_pandas(data)


def _index_ns(df: pd.DataFrame) -> np.ndarray:
    idx = pd.DatetimeIndex(df.index)
    if idx.tz is not None:
        idx = idx.tz_convert("UTC").tz_localize(None)
    return np.asarray(idx.as_unit("ns").asi8, dtype=np.int64)


# --------------------------------------------------------------------------- backtesting.py


def run_backtesting_py(
    df: pd.DataFrame | dict[str, np.ndarray],
    *,
    fast: int,
    slow: int,
    qty: int,
    cash: float,
    fill: FillConvention = "next_open",
    style: PeerStyle = "parity",
) -> PeerResult:
    """Run the workload in backtesting.py (``Backtest.run``; no plotting, no progress bar).

    ``fill="close"`` maps to ``trade_on_close=True``.  Uses ``hedging=False``,
    ``exclusive_orders=False``, ``finalize_trades=False``, zero commission, ``margin=1``;
    a reversal is ``buy/sell(size=qty - position)``, which backtesting.py nets FIFO
    against the open trade.
    """
    _check_fill(fill)
    import backtesting.backtesting as bt_mod
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover

    frame = _as_frame(df)

    def _sma(values: np.ndarray, n: int) -> np.ndarray:
        return sma(values, n)

    class SmaCross(Strategy):  # type: ignore[misc]
        n_fast = fast
        n_slow = slow
        size = qty

        def init(self) -> None:
            self.fast_sma = self.I(_sma, self.data.Close, self.n_fast, plot=False)
            self.slow_sma = self.I(_sma, self.data.Close, self.n_slow, plot=False)

        def next(self) -> None:
            f, s = self.fast_sma, self.slow_sma
            pos = self.position.size
            if crossed(f[-2], s[-2], f[-1], s[-1]):
                if pos != self.size:
                    self.buy(size=self.size - pos)
            elif crossed(s[-2], f[-2], s[-1], f[-1]) and pos != -self.size:
                self.sell(size=self.size + pos)

    class IdiomaticSmaCross(Strategy):  # type: ignore[misc]
        """The strategy as backtesting.py's own tutorial writes it."""

        def init(self) -> None:
            close = pd.Series(self.data.Close)
            self.fast_sma = self.I(lambda: close.rolling(fast).mean(), plot=False)
            self.slow_sma = self.I(lambda: close.rolling(slow).mean(), plot=False)

        def next(self) -> None:
            if crossover(self.fast_sma, self.slow_sma):
                self.position.close()
                self.buy(size=qty)
            elif crossover(self.slow_sma, self.fast_sma):
                self.position.close()
                self.sell(size=qty)

    bt = Backtest(
        frame,
        SmaCross if style == "parity" else IdiomaticSmaCross,
        cash=cash,
        commission=0.0,
        margin=1.0,
        trade_on_close=(fill == "close"),
        hedging=False,
        exclusive_orders=False,
        finalize_trades=False,
    )
    saved_tqdm = bt_mod._tqdm
    bt_mod._tqdm = lambda seq, **_: seq  # no progress bar
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            stats = bt.run()
            run_seconds = time.perf_counter() - t0
    finally:
        bt_mod._tqdm = saved_tqdm

    tr = stats["_trades"]
    trades: list[Trade] = [
        (
            pd.Timestamp(r.EntryTime).value,
            pd.Timestamp(r.ExitTime).value,
            float(r.EntryPrice),
            float(r.ExitPrice),
            int(r.Size),
        )
        for r in tr.itertuples(index=False)
    ]
    open_trades = stats["_strategy"]._broker.trades
    final_position = int(sum(t.size for t in open_trades))
    return PeerResult(
        name="backtesting.py",
        fill=fill,
        trades=trades,
        n_trades=len(trades),
        final_equity=float(stats["Equity Final [$]"]),
        run_seconds=run_seconds,
        n_bars=len(frame),
        final_position=final_position,
        extra={"open_trades": len(open_trades)},
    )


# --------------------------------------------------------------------------- backtrader


def run_backtrader(
    df: pd.DataFrame | dict[str, np.ndarray],
    *,
    fast: int,
    slow: int,
    qty: int,
    cash: float,
    fill: FillConvention = "next_open",
    style: PeerStyle = "parity",
) -> PeerResult:
    """Run the workload in backtrader (``Cerebro(stdstats=False)``, no observers/plots).

    ``fill="close"`` maps to ``broker.set_coc(True)`` (cheat-on-close: market order
    matched at the close of the bar it was issued on, execution dt = that bar).
    Orders use ``order_target_size``.  Bars are fed by a minimal ``DataBase`` subclass
    over pre-converted rows (``PandasData`` spends most of ``cerebro.run`` in per-cell
    ``DataFrame.iloc``); the feed's own load still runs inside ``cerebro.run`` (preload)
    and is timed.  Execution times are backtrader float dates mapped back to the input
    timestamps.
    """
    _check_fill(fill)
    import backtrader as bt

    frame = _as_frame(df)
    index_ns = _index_ns(frame)
    n_bars = len(frame)

    class SmaCross(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.closes: list[float] = []
            self.prev_fast = math.nan
            self.prev_slow = math.nan
            self.fills: list[tuple[float, float, float]] = []

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                # Per-execution prices: ``executed.price`` is a size-weighted average
                # recomputed as ``(size * price) / size``, which is off by an ulp.
                for bit in order.executed.exbits:
                    self.fills.append((bit.dt, bit.price, bit.size))

        def next(self) -> None:
            self.closes.append(float(self.data.close[0]))
            i = len(self.closes) - 1
            f = math.fsum(self.closes[-fast:]) / fast if i >= fast - 1 else math.nan
            s = math.fsum(self.closes[-slow:]) / slow if i >= slow - 1 else math.nan
            pf, ps = self.prev_fast, self.prev_slow
            self.prev_fast, self.prev_slow = f, s
            if i < slow:
                return
            if crossed(pf, ps, f, s):
                self.order_target_size(target=qty)
            elif crossed(ps, pf, s, f):
                self.order_target_size(target=-qty)

    # backtrader's PandasData loads rows with per-cell ``DataFrame.iloc`` (~60% of the run
    # time on pandas 2); feed the same values from pre-built tuples instead.
    dtnums = [bt.date2num(ts.to_pydatetime()) for ts in pd.DatetimeIndex(index_ns)]
    ns_by_dtnum: dict[float, int] = dict(zip(dtnums, (int(x) for x in index_ns), strict=True))
    rows = list(
        zip(
            dtnums,
            *(
                frame[k].to_numpy(np.float64).tolist()
                for k in ("Open", "High", "Low", "Close", "Volume")
            ),
            strict=True,
        )
    )

    class ArrayFeed(bt.feed.DataBase):  # type: ignore[misc]
        """Minimal feed over pre-converted ``(dtnum, o, h, l, c, v)`` rows."""

        def start(self) -> None:
            super().start()
            self._row = -1

        def _load(self) -> bool:
            self._row += 1
            if self._row >= len(rows):
                return False
            dt, o, h, lo, c, v = rows[self._row]
            ln = self.lines
            ln.datetime[0] = dt
            ln.open[0] = o
            ln.high[0] = h
            ln.low[0] = lo
            ln.close[0] = c
            ln.volume[0] = v
            ln.openinterest[0] = 0.0
            return True

    class IdiomaticSmaCross(SmaCross):
        """Built-in SMA and CrossOver indicators, as backtrader's docs write it."""

        def __init__(self) -> None:
            super().__init__()
            self.cross = bt.ind.CrossOver(bt.ind.SMA(period=fast), bt.ind.SMA(period=slow))

        def next(self) -> None:
            if self.cross[0] > 0:
                self.order_target_size(target=qty)
            elif self.cross[0] < 0:
                self.order_target_size(target=-qty)

    cerebro = bt.Cerebro(stdstats=False)
    if style == "parity":
        cerebro.adddata(ArrayFeed())
        cerebro.addstrategy(SmaCross)
    else:
        cerebro.adddata(bt.feeds.PandasData(dataname=frame))
        cerebro.addstrategy(IdiomaticSmaCross)
    cerebro.broker.setcash(cash)
    cerebro.broker.setcommission(commission=0.0)
    cerebro.broker.set_coc(fill == "close")

    t0 = time.perf_counter()
    strat = cerebro.run()[0]
    run_seconds = time.perf_counter() - t0

    def to_ns(dt_num: float) -> int:
        hit = ns_by_dtnum.get(dt_num)
        if hit is not None:
            return hit
        ts = pd.Timestamp(bt.num2date(dt_num)).value  # fallback: nearest input bar
        pos = int(np.searchsorted(index_ns, ts))
        candidates = [p for p in (pos - 1, pos) if 0 <= p < n_bars]
        return int(min((index_ns[p] for p in candidates), key=lambda v: abs(int(v) - ts)))

    fills: list[Fill] = [(to_ns(d), float(p), round(sz)) for d, p, sz in strat.fills]
    trades, final_position = round_trips(fills)
    return PeerResult(
        name="backtrader",
        fill=fill,
        trades=trades,
        n_trades=len(trades),
        final_equity=float(cerebro.broker.getvalue()),
        run_seconds=run_seconds,
        n_bars=n_bars,
        fills=fills,
        final_position=final_position,
        extra={"broker_position": int(strat.position.size), "cash": cerebro.broker.getcash()},
    )


# --------------------------------------------------------------------------- nautilus_trader


def _bar_spec(index_ns: np.ndarray) -> str:
    """Nautilus bar spec (``1-MINUTE`` / ``1-DAY`` ...) from the median bar spacing."""
    if len(index_ns) < 2:
        return "1-MINUTE"
    step = int(np.median(np.diff(index_ns)))
    for ns, spec in (
        (60_000_000_000, "1-MINUTE"),
        (3_600_000_000_000, "1-HOUR"),
        (86_400_000_000_000, "1-DAY"),
    ):
        if step <= ns:
            return spec
    return "1-DAY"


def run_nautilus(
    data: pd.DataFrame | dict[str, np.ndarray],
    *,
    fast: int,
    slow: int,
    qty: int,
    cash: float,
    fill: FillConvention = "close",
    symbol: str = "TEST",
    price_precision: int = 8,
) -> PeerResult:
    """Run the workload in nautilus_trader's low-level ``BacktestEngine`` API.

    Setup: ``Equity`` ``{symbol}.XNAS`` quoted in USDT (8-decimal money), price precision
    ``price_precision`` (8: all workload prices have <= 8 decimals), size precision 0,
    zero maker/taker fees; ``{symbol}.XNAS-1-MINUTE-LAST-EXTERNAL`` bars (``1-DAY`` for
    daily data, picked from the bar spacing) with ``ts_event = ts_init = bar timestamp``;
    NETTING margin account (leverage 1) starting with ``cash`` USDT; ``bar_execution=True``;
    logging bypassed, ``run_analysis=False``.  Only ``fill="close"`` is supported.

    Final equity = account total balance + ``portfolio.unrealized_pnl`` (marked at the last
    close); it is cross-checked against cash-from-fills + position x last close.
    """
    if fill != "close":
        raise ValueError("nautilus bar execution fills market orders at the bar close only")

    from decimal import Decimal

    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig, StrategyConfig
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.data import Bar, BarType
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, Venue
    from nautilus_trader.model.instruments import Equity
    from nautilus_trader.model.objects import Money, Price, Quantity
    from nautilus_trader.trading.strategy import Strategy

    frame = _as_frame(data)
    index_ns = _index_ns(frame)
    n_bars = len(frame)
    if n_bars and float(frame["Volume"].min()) / 4.0 < 2 * qty:
        raise ValueError("volume/4 < 2*qty: nautilus's simulated book would slip the fill")

    venue = Venue("XNAS")
    instrument = Equity(
        instrument_id=InstrumentId(Symbol(symbol), venue),
        raw_symbol=Symbol(symbol),
        currency=USDT,
        price_precision=price_precision,
        price_increment=Price(10.0**-price_precision, price_precision),
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
        maker_fee=Decimal(0),
        taker_fee=Decimal(0),
    )
    bar_type = BarType.from_str(f"{instrument.id}-{_bar_spec(index_ns)}-LAST-EXTERNAL")
    o, h, low_, c, v = (
        frame[k].to_numpy(np.float64) for k in ("Open", "High", "Low", "Close", "Volume")
    )
    bars = [
        Bar(
            bar_type,
            Price(o[i], price_precision),
            Price(h[i], price_precision),
            Price(low_[i], price_precision),
            Price(c[i], price_precision),
            Quantity(v[i], 0),
            int(index_ns[i]),
            int(index_ns[i]),
        )
        for i in range(n_bars)
    ]

    class SmaCrossConfig(StrategyConfig, frozen=True):  # type: ignore[misc,unused-ignore]
        """Config for the nautilus SMA-cross strategy."""

        instrument_id: InstrumentId
        bar_type: BarType
        fast: int
        slow: int
        qty: int
        last_ts: int

    class SmaCross(Strategy):  # type: ignore[misc]
        def __init__(self, config: SmaCrossConfig) -> None:
            super().__init__(config)
            self.closes: list[float] = []
            self.prev_fast = math.nan
            self.prev_slow = math.nan
            self.position_size = 0
            self.fills: list[Fill] = []

        def on_start(self) -> None:
            self.subscribe_bars(self.config.bar_type)

        def on_bar(self, bar: Bar) -> None:
            cfg = self.config
            self.closes.append(float(bar.close.as_decimal()))  # exact input double
            i = len(self.closes) - 1
            f = math.fsum(self.closes[-cfg.fast :]) / cfg.fast if i >= cfg.fast - 1 else math.nan
            s = math.fsum(self.closes[-cfg.slow :]) / cfg.slow if i >= cfg.slow - 1 else math.nan
            pf, ps = self.prev_fast, self.prev_slow
            self.prev_fast, self.prev_slow = f, s
            if i < cfg.slow or bar.ts_init >= cfg.last_ts:
                return  # warm-up / final-bar convention (see module docstring)
            if crossed(pf, ps, f, s):
                self._target(cfg.qty)
            elif crossed(ps, pf, s, f):
                self._target(-cfg.qty)

        def _target(self, target: int) -> None:
            delta = target - self.position_size
            if delta == 0:
                return
            order = self.order_factory.market(
                instrument_id=self.config.instrument_id,
                order_side=OrderSide.BUY if delta > 0 else OrderSide.SELL,
                quantity=Quantity.from_int(abs(delta)),
            )
            self.submit_order(order)

        def on_order_filled(self, event: Any) -> None:
            size = int(event.last_qty.as_decimal())
            signed = size if event.order_side == OrderSide.BUY else -size
            self.position_size += signed
            self.fills.append((int(event.ts_event), float(event.last_px.as_decimal()), signed))

    config = BacktestEngineConfig(
        logging=LoggingConfig(log_level="ERROR", bypass_logging=True),
        run_analysis=False,
    )
    engine = BacktestEngine(config=config)
    try:
        engine.add_venue(
            venue=venue,
            oms_type=OmsType.NETTING,
            account_type=AccountType.MARGIN,
            base_currency=USDT,
            starting_balances=[Money(cash, USDT)],
            default_leverage=Decimal(1),
            bar_execution=True,
        )
        engine.add_instrument(instrument)
        engine.add_data(bars)
        strategy = SmaCross(
            SmaCrossConfig(
                instrument_id=instrument.id,
                bar_type=bar_type,
                fast=fast,
                slow=slow,
                qty=qty,
                last_ts=int(index_ns[-1]) if n_bars else 0,
            )
        )
        engine.add_strategy(strategy)

        t0 = time.perf_counter()
        engine.run()
        run_seconds = time.perf_counter() - t0

        account = engine.portfolio.account(venue)
        balance = account.balance_total(USDT)
        unrealized = engine.portfolio.unrealized_pnl(instrument.id)
        final_equity = float(balance.as_decimal()) + (
            float(unrealized.as_decimal()) if unrealized is not None else 0.0
        )
        net_position = engine.portfolio.net_position(instrument.id)
        positions_closed = len(engine.cache.positions_closed())
        fills = list(strategy.fills)
    finally:
        engine.dispose()
        logging.getLogger("nautilus_trader").handlers.clear()

    trades, final_position = round_trips(fills)
    # Independent cross-check: cash from fills + position marked at the last close.
    cash_end = Decimal(str(cash)) - sum(
        (Decimal(str(px)) * sz for _, px, sz in fills), start=Decimal(0)
    )
    last_close = Decimal(str(float(frame["Close"].iloc[-1]))) if n_bars else Decimal(0)
    recomputed = float(cash_end + final_position * last_close)
    return PeerResult(
        name="nautilus_trader",
        fill=fill,
        trades=trades,
        n_trades=len(trades),
        final_equity=final_equity,
        run_seconds=run_seconds,
        n_bars=n_bars,
        fills=fills,
        final_position=final_position,
        extra={
            "net_position": float(net_position),
            "positions_closed": positions_closed,
            "equity_from_fills": recomputed,
            "bar_type": str(bar_type),
        },
    )
