"""Scenario tables for SimulatedBarVenue, driven through BacktestEngine with a scripted strategy.

Each case: a small OHLC table, the orders a tiny strategy sends on given bars, and the fills we
expect (bar index, side, qty, price, liquidity, fee) plus every order's final status and reason.
All expected numbers are worked out by hand from the conventions in ``bar_venue``'s docstring.

Default instrument X: tick 0.01, lot 1, maker 2 bps, taker 5 bps; 100 000 USD starting cash.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pytest

from tradestack.core.events import Bar
from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument
from tradestack.core.orders import (
    Fill,
    Liquidity,
    Order,
    OrderCanceled,
    OrderRejected,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from tradestack.core.series import BarSeries
from tradestack.engine.backtest import BacktestEngine, BacktestResult
from tradestack.engine.context import StrategyContext
from tradestack.engine.strategy import Strategy
from tradestack.execution.bar_venue import BarVenueConfig, SimulatedBarVenue
from tradestack.portfolio.account import Portfolio

D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL
MAKER, TAKER = Liquidity.MAKER, Liquidity.TAKER
S = OrderStatus
X = InstrumentId("X")
HOUR = 3_600_000_000_000
T0 = 1_704_067_200_000_000_000  # 2024-01-01 00:00 UTC
LATE = T0 + 22 * HOUR  # 2024-01-01 22:00 UTC: bar 2 opens on the next UTC day

INST = Instrument(X, tick_size=D("0.01"), lot_size=D("1"), maker_fee_bps=D(2), taker_fee_bps=D(5))

OHLC = tuple[float, float, float, float]
# B: a gently rising table
B: list[OHLC] = [
    (100, 101, 99, 100),
    (100.5, 102, 99.5, 101),
    (101, 103, 98, 102),
    (102, 104, 101, 103),
    (103, 105, 102, 104),
]
# G: bar 2 gaps down
G: list[OHLC] = [
    (100, 101, 99, 100),
    (100, 101, 99.5, 100.5),
    (97, 98, 96, 97.5),
    (98, 99, 97, 98.5),
]
# U: bar 2 gaps up
U: list[OHLC] = [(100, 101, 99, 100), (100, 100.5, 99, 99.5), (103, 104, 102, 103.5)]
# SL: bar 2 gaps up through a stop and past its limit, bar 3 trades back down through the limit
SL: list[OHLC] = [
    (100, 101, 99, 100),
    (100, 101, 99.5, 100.5),
    (103, 104, 102.5, 103.5),
    (102.5, 102.8, 101, 101.5),
]

Action = Callable[[StrategyContext], object]
ExpectedFill = tuple[int, OrderSide, str, str, Liquidity, str]  # bar, side, qty, price, liq, fee


def buy(qty: int | str, **kw: object) -> Action:
    return lambda ctx: ctx.buy("X", D(qty), **kw)


def sell(qty: int | str, **kw: object) -> Action:
    return lambda ctx: ctx.sell("X", D(qty), **kw)


def cancel_first(ctx: StrategyContext) -> object:
    return ctx.cancel(next(iter(ctx.orders.values())))


@dataclass
class Case:
    name: str
    bars: list[OHLC]
    actions: dict[int, list[Action]]
    fills: list[ExpectedFill]
    statuses: list[OrderStatus]
    reasons: list[str] = field(default_factory=list)
    venue: BarVenueConfig = field(default_factory=BarVenueConfig)
    instrument: Instrument = INST
    cash: str = "100000"
    start_ns: int = T0


class Scripted(Strategy):
    """Runs ``actions[bar_index]`` on each bar; remembers what each action returned."""

    def __init__(self, actions: dict[int, list[Action]]) -> None:
        super().__init__()
        self._actions = actions
        self._bar = -1
        self.returned: list[object] = []

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        self._bar += 1
        for action in self._actions.get(self._bar, []):
            self.returned.append(action(ctx))


def _series(bars: list[OHLC], start_ns: int) -> BarSeries:
    arr = np.array(bars, dtype=np.float64)
    ts = start_ns + HOUR * np.arange(len(bars), dtype=np.int64)
    return BarSeries(X, ts, arr[:, 0], arr[:, 1], arr[:, 2], arr[:, 3], np.ones(len(bars)))


def run_case(case: Case, strategy: Strategy | None = None) -> BacktestResult:
    engine = BacktestEngine(
        strategy or Scripted(case.actions),
        [_series(case.bars, case.start_ns)],
        instruments=[case.instrument],
        starting_cash=case.cash,
        venue=case.venue,
    )
    return engine.run()


def _reason(order: Order) -> str:
    last = order.events[-1]
    return last.reason if isinstance(last, OrderCanceled | OrderRejected) else ""


def check(case: Case, result: BacktestResult) -> None:
    ts = [int(t) for t in result.ts_ns]
    got = [
        (ts.index(f.ts_event_ns), f.side, f.qty, f.price, f.liquidity, f.fee) for f in result.fills
    ]
    want = [(b, s, D(q), D(p), liq, D(fee)) for b, s, q, p, liq, fee in case.fills]
    assert got == want
    assert [o.status for o in result.orders] == case.statuses
    for order, reason in zip(result.orders, case.reasons, strict=False):
        assert reason in _reason(order), (order, _reason(order))
    # general invariants of every scenario
    by_id = {o.client_order_id: o for o in result.orders}
    for f in result.fills:
        order = by_id[f.client_order_id]
        at_close = case.venue.fill_at == "close" and order.order_type is OrderType.MARKET
        # no same-bar look-ahead: a fill happens on a later bar than the one the order was sent on
        assert f.ts_event_ns >= order.ts_init_ns if at_close else f.ts_event_ns > order.ts_init_ns
        assert f.price % case.instrument.tick_size == 0
        assert f.qty % case.instrument.lot_size == 0
    position = result.portfolio.position(X)
    assert position.qty == sum((f.qty * f.side.sign for f in result.fills), D(0))
    for order in result.orders:
        fills = [f.qty for f in result.fills if f.client_order_id == order.client_order_id]
        assert order.filled_qty == sum(fills, D(0))


CASES = [
    # -- market -----------------------------------------------------------------------------
    Case(
        "market fills at next open",
        B,
        {0: [buy(10)]},
        [(1, BUY, "10", "100.5", TAKER, "0.5025")],
        [S.FILLED],
    ),  # 10*100.5*5bps
    Case(
        "market fill_at close fills at the bar's own close",
        B,
        {0: [buy(10)], 2: [sell(10)]},
        [(0, BUY, "10", "100", TAKER, "0.5"), (2, SELL, "10", "102", TAKER, "0.51")],
        [S.FILLED, S.FILLED],
        venue=BarVenueConfig(fill_at="close"),
    ),
    Case("market sent on the last bar never fills", B, {4: [buy(10)]}, [], [S.ACCEPTED]),
    # -- limit ------------------------------------------------------------------------------
    Case(
        "buy limit reached inside the range fills at the limit as maker",
        B,
        {0: [buy(10, price=D("99"))]},
        [(2, BUY, "10", "99", MAKER, "0.198")],
        [S.FILLED],
    ),  # bar1 low 99.5 misses
    Case(
        "resting buy limit with a gap-down open fills at the open as maker",
        G,
        {0: [buy(10, price=D("99"))]},
        [(2, BUY, "10", "97", MAKER, "0.194")],
        [S.FILLED],
    ),
    Case(
        "buy limit marketable on arrival fills at the open as taker",
        G,
        {1: [buy(10, price=D("99"))]},
        [(2, BUY, "10", "97", TAKER, "0.485")],
        [S.FILLED],
    ),
    Case(
        "sell limit reached inside the range",
        B,
        {0: [sell(10, price=D("102.5"))]},
        [(2, SELL, "10", "102.5", MAKER, "0.205")],
        [S.FILLED],
    ),  # bar1 high 102 misses
    Case(
        "resting sell limit with a gap-up open fills at the open",
        U,
        {0: [sell(10, price=D("101"))]},
        [(2, SELL, "10", "103", MAKER, "0.206")],
        [S.FILLED],
    ),
    Case("limit never reached stays accepted", B, {0: [buy(10, price=D("90"))]}, [], [S.ACCEPTED]),
    Case(
        "limit touched only on its own bar waits for the next (no look-ahead)",
        B,
        {0: [buy(10, price=D("99.5"))]},  # bar 0 low 99 would fill; bar 1 low 99.5 does
        [(1, BUY, "10", "99.5", MAKER, "0.199")],
        [S.FILLED],
    ),
    # -- stop / stop-limit --------------------------------------------------------------------
    Case(
        "buy stop triggered inside the range fills at the trigger",
        B,
        {0: [buy(10, trigger_price=D("102.5"))]},
        [(2, BUY, "10", "102.5", TAKER, "0.5125")],
        [S.FILLED],
    ),
    Case(
        "buy stop gapped through fills at the open",
        U,
        {1: [buy(10, trigger_price=D("101"))]},
        [(2, BUY, "10", "103", TAKER, "0.515")],
        [S.FILLED],
    ),
    Case(
        "sell stop triggered inside the range",
        B,
        {0: [sell(10, trigger_price=D("99"))]},
        [(2, SELL, "10", "99", TAKER, "0.495")],
        [S.FILLED],
    ),
    Case(
        "sell stop gapped through fills at the open",
        G,
        {1: [sell(10, trigger_price=D("99"))]},
        [(2, SELL, "10", "97", TAKER, "0.485")],
        [S.FILLED],
    ),
    Case(
        "stop-limit triggered and filled at the trigger",
        B,
        {0: [buy(10, trigger_price=D("102.5"), price=D("103"))]},
        [(2, BUY, "10", "102.5", TAKER, "0.5125")],
        [S.FILLED],
    ),
    Case(
        "stop-limit triggered on a gap past its limit, filled at the limit on a later bar",
        SL,
        {0: [buy(10, trigger_price=D("102"), price=D("102.2"))]},
        [(3, BUY, "10", "102.2", MAKER, "0.2044")],
        [S.FILLED],
    ),
    Case(
        "stop-limit triggered but never marketable stays accepted",
        SL[:3],
        {0: [buy(10, trigger_price=D("102"), price=D("102.2"))]},
        [],
        [S.ACCEPTED],
    ),
    # -- slippage (10 bps; buys round up, sells down, to the tick) ---------------------------
    Case(
        "slippage moves a market buy up",
        B,
        {0: [buy(10)]},
        [(1, BUY, "10", "100.61", TAKER, "0.50305")],
        [S.FILLED],  # 100.6005 -> 100.61
        venue=BarVenueConfig(slippage_bps=D(10)),
    ),
    Case(
        "slippage moves a market sell down",
        B,
        {0: [sell(10)]},
        [(1, SELL, "10", "100.39", TAKER, "0.50195")],
        [S.FILLED],  # 100.3995 -> 100.39
        venue=BarVenueConfig(slippage_bps=D(10)),
    ),
    Case(
        "slippage on a market fill at the close",
        B,
        {0: [buy(10)]},
        [(0, BUY, "10", "100.1", TAKER, "0.5005")],
        [S.FILLED],
        venue=BarVenueConfig(fill_at="close", slippage_bps=D(10)),
    ),
    Case(
        "slippage on a stop triggered in range",
        B,
        {0: [buy(10, trigger_price=D("102.5"))]},
        [(2, BUY, "10", "102.61", TAKER, "0.51305")],
        [S.FILLED],  # 102.6025 -> 102.61
        venue=BarVenueConfig(slippage_bps=D(10)),
    ),
    Case(
        "slippage on a sell stop gapped through",
        G,
        {1: [sell(10, trigger_price=D("99"))]},
        [(2, SELL, "10", "96.9", TAKER, "0.4845")],
        [S.FILLED],  # 96.903 -> 96.90
        venue=BarVenueConfig(slippage_bps=D(10)),
    ),
    Case(
        "no slippage on a resting limit filled at its price",
        B,
        {0: [buy(10, price=D("99"))]},
        [(2, BUY, "10", "99", MAKER, "0.198")],
        [S.FILLED],
        venue=BarVenueConfig(slippage_bps=D(10)),
    ),
    Case(
        "slippage on a marketable limit at the open",
        G,
        {1: [buy(10, price=D("99"))]},
        [(2, BUY, "10", "97.1", TAKER, "0.4855")],
        [S.FILLED],  # 97.097 -> 97.10 <= 99
        venue=BarVenueConfig(slippage_bps=D(10)),
    ),
    Case(
        "slipped marketable limit never fills beyond its limit",
        G,
        {1: [buy(10, price=D("97.05"))]},
        [(2, BUY, "10", "97.05", TAKER, "0.48525")],
        [S.FILLED],  # 97.10 capped at 97.05
        venue=BarVenueConfig(slippage_bps=D(10)),
    ),
    Case(
        "slippage on a stop-limit filled at its trigger",
        B,
        {0: [buy(10, trigger_price=D("102.5"), price=D("103"))]},
        [(2, BUY, "10", "102.61", TAKER, "0.51305")],
        [S.FILLED],  # 102.6025 -> 102.61
        venue=BarVenueConfig(slippage_bps=D(10)),
    ),
    Case(
        "slipped stop-limit is capped at its limit",
        B,
        {0: [sell(10, trigger_price=D("99"), price=D("98.95"))]},
        [(2, SELL, "10", "98.95", TAKER, "0.49475")],
        [S.FILLED],  # 98.901 -> 98.90 < 98.95
        venue=BarVenueConfig(slippage_bps=D(10)),
    ),
    # -- fees -------------------------------------------------------------------------------
    Case(
        "venue fee overrides win over the instrument's (taker)",
        B,
        {0: [buy(10)]},
        [(1, BUY, "10", "100.5", TAKER, "1.005")],
        [S.FILLED],  # 10 bps
        venue=BarVenueConfig(maker_fee_bps=D(1), taker_fee_bps=D(10)),
    ),
    Case(
        "venue fee overrides win over the instrument's (maker)",
        B,
        {0: [buy(10, price=D("99"))]},
        [(2, BUY, "10", "99", MAKER, "0.099")],
        [S.FILLED],  # 1 bp
        venue=BarVenueConfig(maker_fee_bps=D(1), taker_fee_bps=D(10)),
    ),
    Case(
        "a zero venue override means no fee",
        B,
        {0: [buy(10)]},
        [(1, BUY, "10", "100.5", TAKER, "0")],
        [S.FILLED],
        venue=BarVenueConfig(taker_fee_bps=D(0)),
    ),
    # -- rejections -------------------------------------------------------------------------
    Case(
        "order bigger than equity at leverage 1 is rejected",
        B,
        {0: [buy(101)]},
        [],
        [S.REJECTED],
        ["insufficient cash"],
        cash="10000",
    ),  # 101 * 100 > 10 000
    Case(
        "the same order fits at leverage 2",
        B,
        {0: [buy(101)]},
        [(1, BUY, "101", "100.5", TAKER, "5.07525")],
        [S.FILLED],
        venue=BarVenueConfig(leverage=D(2)),
        cash="10000",
    ),
    Case(
        "below min notional is rejected",
        B,
        {0: [buy(9), buy(10)]},
        [(1, BUY, "10", "100.5", TAKER, "0.5025")],
        [S.REJECTED, S.FILLED],
        ["below the minimum notional"],
        instrument=Instrument(X, tick_size=D("0.01"), min_notional=D(1000), taker_fee_bps=D(5)),
    ),
    Case(
        "below min qty is rejected",
        B,
        {0: [buy(3)]},
        [],
        [S.REJECTED],
        ["below the minimum quantity"],
        instrument=Instrument(X, tick_size=D("0.01"), min_qty=D(5)),
    ),
    Case(
        "qty not a lot multiple is rejected",
        B,
        {0: [buy("1.5"), buy(7)]},
        [],
        [S.REJECTED, S.REJECTED],
        ["qty 1.5 is not a multiple of lot size 5", "qty 7 is not a multiple"],
        instrument=Instrument(X, tick_size=D("0.01"), lot_size=D("5")),
    ),
    Case(
        "selling without a position is rejected when shorting is disabled",
        B,
        {0: [sell(10)]},
        [],
        [S.REJECTED],
        ["insufficient position"],
        venue=BarVenueConfig(allow_short=False),
    ),
    Case(
        "pending sells count against the position when shorting is disabled",
        B,
        {0: [buy(10)], 1: [sell(5, price=D("200")), sell(6), sell(5)]},
        [(1, BUY, "10", "100.5", TAKER, "0.5025"), (2, SELL, "5", "101", TAKER, "0.2525")],
        [S.FILLED, S.ACCEPTED, S.REJECTED, S.FILLED],
        ["", "", "insufficient position"],
        venue=BarVenueConfig(allow_short=False),
    ),
    # -- reduce-only, post-only, time in force, cancel ----------------------------------------
    Case(
        "reduce-only is clipped to the position and the remainder canceled",
        B,
        {0: [buy(10)], 1: [sell(15, reduce_only=True)]},
        [(1, BUY, "10", "100.5", TAKER, "0.5025"), (2, SELL, "10", "101", TAKER, "0.505")],
        [S.FILLED, S.CANCELED],
        ["", "reduce-only remainder canceled"],
    ),
    Case(
        "reduce-only that would increase the position is canceled",
        B,
        {0: [sell(5, reduce_only=True)]},
        [],
        [S.CANCELED],
        ["reduce-only order would increase the position"],
    ),
    Case(
        "post-only that would take liquidity is canceled",
        B,
        {0: [buy(10, price=D("101"), post_only=True)]},
        [],
        [S.CANCELED],
        ["post-only limit would take liquidity"],
    ),
    Case(
        "post-only that rests fills as maker",
        B,
        {0: [buy(10, price=D("99"), post_only=True)]},
        [(2, BUY, "10", "99", MAKER, "0.198")],
        [S.FILLED],
    ),
    Case(
        "IOC not filled on its first bar is canceled",
        B,
        {0: [buy(10, price=D("99"), time_in_force=TimeInForce.IOC)]},
        [],
        [S.CANCELED],
        ["ioc not filled"],
    ),
    Case(
        "IOC marketable on its first bar fills",
        B,
        {0: [buy(10, price=D("101"), time_in_force=TimeInForce.IOC)]},
        [(1, BUY, "10", "100.5", TAKER, "0.5025")],
        [S.FILLED],
    ),
    Case(
        "DAY order expires on the first bar of the next UTC day",
        B,
        {0: [buy(10, price=D("99"), time_in_force=TimeInForce.DAY)]},  # bar 2 low 98 too late
        [],
        [S.EXPIRED],
        start_ns=LATE,
    ),
    Case(
        "DAY order fills within its day",
        B,
        {0: [buy(10, price=D("99.5"), time_in_force=TimeInForce.DAY)]},
        [(1, BUY, "10", "99.5", MAKER, "0.199")],
        [S.FILLED],
        start_ns=LATE,
    ),
    Case(
        "cancel of a working order",
        B,
        {0: [buy(10, price=D("99"))], 1: [cancel_first]},
        [],
        [S.CANCELED],
        ["canceled by strategy"],
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bar_venue_scenario(case: Case) -> None:
    check(case, run_case(case))


def test_cancel_returns_true_once_then_false() -> None:
    case = Case(
        "cancel twice",
        B,
        {
            0: [buy(10, price=D("90"))],
            1: [cancel_first, cancel_first],
            3: [buy(1)],
            4: [cancel_first],
        },
        [],
        [],
    )
    strategy = Scripted(case.actions)
    result = run_case(case, strategy)
    assert strategy.returned[1:3] == [True, False]
    assert strategy.returned[4] is False  # already canceled; the bar-3 market order filled
    assert [o.status for o in result.orders] == [S.CANCELED, S.FILLED]


class Bracket(Strategy):
    """Buys, then places a take-profit limit and a stop-loss; a fill of either cancels the other."""

    def __init__(self) -> None:
        super().__init__()
        self._bar = -1
        self.exits: list[Order] = []

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        self._bar += 1
        if self._bar == 0:
            ctx.buy("X", D(10))
        elif self._bar == 1:
            self.exits = [
                ctx.sell("X", D(10), price=D("102.5"), reduce_only=True),
                ctx.sell("X", D(10), trigger_price=D("99"), reduce_only=True),
            ]

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        for order in self.exits:
            if order.client_order_id != fill.client_order_id and order.is_open:
                ctx.cancel(order)


def test_one_cancels_other_from_on_fill_while_the_bar_is_matched() -> None:
    """Bar 2 (101/103/98/102) reaches both exits; the take-profit (sent first) fills at its
    limit, its on_fill cancels the stop, which the venue must then skip."""
    case = Case(
        "bracket",
        B,
        {},
        [
            (1, BUY, "10", "100.5", TAKER, "0.5025"),
            (2, SELL, "10", "102.5", MAKER, "0.205"),
        ],
        [S.FILLED, S.FILLED, S.CANCELED],
        ["", "", "canceled by strategy"],
    )
    result = run_case(case, Bracket())
    check(case, result)
    assert result.portfolio.position(X).is_flat
    (trade,) = result.trades
    assert trade.gross_pnl == D(20)  # 10 * (102.5 - 100.5)
    assert trade.fees == D("0.7075")
    assert result.portfolio.cash == D(100_000) + D(20) - D("0.7075")


class SellsAtStart(Strategy):
    def on_start(self, ctx: StrategyContext) -> None:
        ctx.sell("X", D(10))


def test_no_short_before_the_first_mark_when_shorting_is_disabled() -> None:
    """An order sent from on_start has no reference price yet; the position check needs none."""
    case = Case(
        "sell at start",
        B,
        {},
        [],
        [S.REJECTED],
        ["insufficient position"],
        venue=BarVenueConfig(allow_short=False),
    )
    check(case, run_case(case, SellsAtStart()))


class _Sink:
    def __init__(self) -> None:
        self.events: list[object] = []

    def __call__(self, order: Order, event: object) -> None:
        order.apply(event)  # type: ignore[arg-type]
        self.events.append(event)


def _venue() -> tuple[SimulatedBarVenue, _Sink]:
    portfolio = Portfolio(D(100_000))
    portfolio.register(INST)
    portfolio.mark(X, 100.0)
    sink = _Sink()
    return SimulatedBarVenue(BarVenueConfig(), portfolio, {X: INST}, sink), sink


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        (
            {"order_type": OrderType.LIMIT, "price": D("99.995")},
            "price 99.995 is not a multiple of tick size 0.01",
        ),
        (
            {"order_type": OrderType.STOP, "trigger_price": D("101.001")},
            "trigger_price 101.001 is not a multiple of tick size 0.01",
        ),
        ({"qty": D("2.5")}, "qty 2.5 is not a multiple of lot size 1"),
        ({"instrument_id": InstrumentId("NOPE")}, "unknown instrument NOPE@sim"),
    ],
)
def test_venue_rejects_requests_off_the_grid(kwargs: dict[str, object], reason: str) -> None:
    venue, sink = _venue()
    args: dict[str, object] = {"instrument_id": X, "qty": D(1), **kwargs}
    order = Order("c1", args.pop("instrument_id"), BUY, args.pop("qty"), **args)  # type: ignore[arg-type]
    venue.submit(order, T0)
    assert order.status is S.REJECTED
    last = sink.events[-1]
    assert isinstance(last, OrderRejected)
    assert last.reason == reason
    assert venue.working == {}


def test_venue_ignores_orders_on_the_bar_they_were_sent() -> None:
    venue, _ = _venue()
    order = Order("c1", X, BUY, D(1), ts_init_ns=T0 + HOUR)
    venue.submit(order, T0 + HOUR)
    venue.on_bar(Bar(X, T0 + HOUR, T0 + HOUR, 100.0, 101.0, 99.0, 100.0, 1.0))
    assert order.status is S.ACCEPTED
    venue.on_bar(Bar(X, T0 + 2 * HOUR, T0 + 2 * HOUR, 100.25, 101.0, 99.0, 100.0, 1.0))
    assert order.status is S.FILLED
    assert order.avg_fill_price == D("100.25")


DAY_NS = 24 * HOUR


class _DayOrderOnDailyBars(Strategy):
    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if not ctx.orders:
            ctx.buy(X, 10, price=D("99"), time_in_force=TimeInForce.DAY)
            ctx.buy(X, 10, price=D("95"), time_in_force=TimeInForce.DAY)


def test_day_order_on_daily_bars_gets_the_next_session() -> None:
    days = [(100, 101, 99.5, 100), (100, 100.5, 98.5, 99), (99, 99.5, 94, 97)]
    ts = np.array([T0 + k * DAY_NS for k in range(3)], dtype=np.int64)
    o, h, low, c = (np.array(col, dtype=float) for col in zip(*days, strict=True))
    feed = BarSeries(X, ts, o, h, low, c, np.ones(3))
    result = BacktestEngine(_DayOrderOnDailyBars(), [feed], instruments=[INST]).run()
    filled, expired = result.orders
    assert filled.status is S.FILLED and filled.avg_fill_price == D("99")
    assert result.fills[0].ts_event_ns == ts[1]
    assert expired.status is S.EXPIRED  # 95 not reached in its session; day 2 (low 94) is too late


class _OffTickDecimal(Strategy):
    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if not ctx.orders:
            ctx.buy(X, 1, price=D("99.995"))
            ctx.buy(X, 1, price=99.996)


def test_context_takes_decimals_as_given_and_rounds_floats() -> None:
    feed = _series(B, T0)
    result = BacktestEngine(_OffTickDecimal(), [feed], instruments=[INST]).run()
    exact, rounded = result.orders
    assert exact.status is S.REJECTED
    assert "price 99.995 is not a multiple of tick size 0.01" in exact.events[-1].reason  # type: ignore[union-attr]
    assert rounded.price == D("100.00")


class _IocStopLimit(Strategy):
    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        if not ctx.orders:
            ctx.buy(X, 1, trigger_price=D("101.5"), price=D("100"), time_in_force=TimeInForce.IOC)


def test_ioc_stop_limit_triggered_but_not_marketable_is_canceled() -> None:
    result = BacktestEngine(_IocStopLimit(), [_series(B, T0)], instruments=[INST]).run()
    (order,) = result.orders
    assert order.triggered
    assert order.status is S.CANCELED
    assert order.events[-1].reason == "ioc not filled"  # type: ignore[union-attr]
