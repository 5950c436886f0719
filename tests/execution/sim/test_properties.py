"""Properties of the L2 simulated venue over random feeds and random order schedules.

Feeds are random walks of a small book (level changes, trades at the touch, occasional fresh
snapshots) on instrument TEST@sim (tick 0.1, lot 1); the strategy sends a random schedule of
market, limit, IOC, FOK and post-only orders and cancels. Hypothesis runs derandomized (see
``tests/conftest.py``) with few examples so the file stays fast.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core.events import Bar, QuoteTick
from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.orders import Fill, Liquidity, Order, OrderSide, OrderType, TimeInForce
from tradestack.core.series import BarSeries
from tradestack.engine.backtest import BacktestEngine
from tradestack.engine.context import StrategyContext
from tradestack.engine.l2 import L2BacktestEngine, L2BacktestResult
from tradestack.engine.strategy import Strategy
from tradestack.execution.bar_venue import BarVenueConfig
from tradestack.execution.sim.config import L2VenueConfig, LatencyModel
from tradestack.execution.sim.feed import CLEAR, DEPTH, FUNDING, SNAPSHOT, TRADE, L2Feed

D = Decimal
Row = tuple[int, int, int, int, float, float, int]  # (exch, local, kind, side, px, qty, ival)
IID = InstrumentId("TEST", "sim")
MS = 1_000_000
SEC = 1_000_000_000
T0 = 1_000 * SEC
STEP = MS  # one feed step per millisecond
INST = Instrument(IID, kind=InstrumentKind.PERPETUAL, tick_size=D("0.1"), lot_size=D("1"))
FAR_BID, FAR_ASK = 800, 1200  # ticks; far levels that keep the price grid wide


def px(tick: int) -> float:
    return round(tick * 0.1, 1)


# -- random feeds ---------------------------------------------------------------------------------
def random_feed(seed: int, n_steps: int, lag_ns: int = 0) -> list[Row]:
    """A random walk of a book around 100.0: level changes, trades at the touch, re-snapshots.

    Row ``i`` of the walk happens at ``T0 + i * STEP``; receive times lag by up to ``lag_ns``.
    """
    rng = np.random.default_rng(seed)
    bids: dict[int, float] = {}
    asks: dict[int, float] = {}
    rows: list[Row] = []

    def local(ts: int) -> int:
        return ts + (int(rng.integers(0, lag_ns + 1)) if lag_ns else 0)

    def snap(ts: int, mid: int) -> None:
        bids.clear()
        asks.clear()
        recv = local(ts)
        rows.append((ts, recv, CLEAR, 0, 0.0, 0.0, 0))
        for k in range(1, 6):
            bids[mid - k] = float(rng.integers(1, 6))
            asks[mid + k] = float(rng.integers(1, 6))
        bids[FAR_BID] = asks[FAR_ASK] = 1.0
        for tick, qty in bids.items():
            rows.append((ts, recv, SNAPSHOT, 1, px(tick), qty, 0))
        for tick, qty in asks.items():
            rows.append((ts, recv, SNAPSHOT, -1, px(tick), qty, 0))

    snap(T0, 1000)
    for i in range(1, n_steps + 1):
        ts = T0 + i * STEP
        best_bid, best_ask = max(bids), min(asks)
        r = rng.random()
        if r < 0.55:  # change one level near the touch (never crossing)
            side = 1 if rng.random() < 0.5 else -1
            if side > 0:
                tick = int(rng.integers(best_bid - 2, best_ask))
                book = bids
            else:
                tick = int(rng.integers(best_bid + 1, best_ask + 3))
                book = asks
            qty = float(rng.integers(0, 7)) if len(book) > 2 else float(rng.integers(1, 7))
            if qty:
                book[tick] = qty
            else:
                book.pop(tick, None)
            rows.append((ts, local(ts), DEPTH, side, px(tick), qty, 0))
        elif r < 0.9:  # a trade at (or through) the touch
            aggressor = 1 if rng.random() < 0.5 else -1
            tick = best_ask if aggressor > 0 else best_bid
            tick += aggressor * int(rng.integers(0, 2))
            qty = float(rng.integers(1, 5)) * (0.5 if rng.random() < 0.2 else 1.0)
            rows.append((ts, local(ts), TRADE, aggressor, px(tick), qty, 0))
        else:  # a fresh snapshot around a moved mid
            snap(ts, (best_bid + best_ask) // 2 + int(rng.integers(-3, 4)))
    rows.append((T0 + (n_steps + 50) * STEP, T0 + (n_steps + 50) * STEP, DEPTH, 1,
                 px(FAR_BID), 1.0, 0))  # fmt: skip
    return rows


# -- a strategy that follows a random schedule ----------------------------------------------------
KINDS = ("market", "limit", "ioc", "fok", "post", "cancel")
Step = tuple[int, bool, str, bool, int, int]  # feed step, half step later, kind, buy, qty, offset


class Schedule(Strategy):
    """Sends the scheduled orders; limit prices are ``offset`` ticks from the touch it sees."""

    def __init__(self, schedule: list[Step]) -> None:
        super().__init__()
        self.schedule = schedule
        self.sent: list[Order] = []

    def on_start(self, ctx: StrategyContext) -> None:
        for i, (step, half, *_rest) in enumerate(self.schedule):
            at = T0 + step * STEP + (STEP // 2 if half else 0)
            ctx.set_timer(f"s{i}", 10**15, start_ns=max(at, ctx.now_ns()))

    def on_timer(self, ctx: StrategyContext, name: str, ts_ns: int) -> None:
        _, _, kind, is_buy, qty, offset = self.schedule[int(name[1:])]
        if kind == "cancel":
            working = ctx.open_orders(IID)
            if working:
                ctx.cancel(working[offset % len(working)])
            return
        side = OrderSide.BUY if is_buy else OrderSide.SELL
        if kind == "market":
            self.sent.append(ctx.submit(IID, side, D(qty)))
            return
        book = ctx.book(IID)
        touch = book.best_bid if is_buy else book.best_ask
        if touch != touch:
            return
        price = INST.round_price(touch) + side.sign * offset * INST.tick_size
        tif = {"ioc": TimeInForce.IOC, "fok": TimeInForce.FOK}.get(kind, TimeInForce.GTC)
        order = ctx.submit(
            IID, side, D(qty), OrderType.LIMIT, price=price, time_in_force=tif,
            post_only=kind == "post",
        )  # fmt: skip
        self.sent.append(order)


def schedules(n_steps: int) -> st.SearchStrategy[list[Step]]:
    step = st.tuples(
        st.integers(0, n_steps),
        st.booleans(),
        st.sampled_from(KINDS),
        st.booleans(),
        st.integers(1, 8),
        st.integers(-3, 3),
    )
    return st.lists(step, min_size=1, max_size=25)


def run(
    rows: list[Row], strategy: Strategy, config: L2VenueConfig | None = None
) -> L2BacktestResult:
    feed = L2Feed.from_rows(IID, rows)
    return L2BacktestEngine(strategy, feed, instrument=INST, venue=config).run()


N_STEPS = 60


# -- fills never exceed the order nor the visible liquidity ---------------------------------------
@settings(max_examples=120, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    schedule=schedules(N_STEPS),
    consume=st.booleans(),
    entry_ns=st.sampled_from([0, 300_000, 2 * MS]),
    lag_ns=st.sampled_from([0, 700_000]),
)
def test_fills_never_exceed_the_order_or_the_visible_liquidity(
    seed: int, schedule: list[Step], consume: bool, entry_ns: int, lag_ns: int
) -> None:
    rows = random_feed(seed, N_STEPS, lag_ns)
    strategy = Schedule(schedule)
    config = L2VenueConfig(consume_liquidity=consume, entry_latency=LatencyModel(ns=entry_ns))
    result = run(rows, strategy, config)

    by_order: dict[str, list[Fill]] = defaultdict(list)
    for fill in result.fills:
        by_order[fill.client_order_id].append(fill)
    for order in strategy.sent:
        fills = by_order.pop(order.client_order_id, [])
        assert sum((f.qty for f in fills), D(0)) == order.filled_qty <= order.qty
        assert (order.filled_qty == order.qty) == (order.status.value == "filled")
        if order.price is not None:  # never beyond the limit
            assert all(order.side.sign * (f.price - order.price) <= 0 for f in fills)
        if order.post_only:
            assert all(f.liquidity is Liquidity.MAKER for f in fills)
    assert not by_order
    position = sum((f.side.sign * f.qty for f in result.fills), D(0))
    assert result.portfolio.position(IID).qty == position

    # taker fills: against the exchange book after every row stamped up to the fill's time;
    # with consume_liquidity the takes between two reports of a level add up to its size
    feed = L2Feed.from_rows(IID, rows).events
    book: dict[int, dict[int, tuple[float, int]]] = {1: {}, -1: {}}
    taken: dict[tuple[int, int, int], Decimal] = defaultdict(Decimal)
    i = 0
    takers = [f for f in result.fills if f.liquidity is Liquidity.TAKER]
    for fill in sorted(takers, key=lambda f: f.ts_event_ns):
        while i < len(feed) and feed["exch_ts"][i] <= fill.ts_event_ns:
            row = feed[i]
            side = int(row["side"])
            if row["kind"] == CLEAR:
                for s in (1, -1):
                    if side == 0 or side == s:
                        book[s].clear()
            elif row["kind"] in (DEPTH, SNAPSHOT):
                book[side][round(row["px"] * 10)] = (float(row["qty"]), i)
            i += 1
        hit = -fill.side.sign
        tick = int(fill.price * 10)
        size, version = book[hit].get(tick, (0.0, -1))
        key = (hit, tick, version) if consume else (hit, tick, len(taken))
        taken[key] += fill.qty
        assert float(taken[key]) <= size + 1e-9, (fill, size)


# -- our own orders keep FIFO order among themselves ---------------------------------------------
LEVEL = 999  # 99.9


def fifo_feed(seed: int, n_steps: int) -> list[Row]:
    """Activity at one bid level (99.9): sell trades, size changes, rare trades through it."""
    rng = np.random.default_rng(seed)
    rows = [(T0, T0, CLEAR, 0, 0.0, 0.0, 0)]
    rows += [
        (T0, T0, SNAPSHOT, 1, px(t), q, 0) for t, q in ((LEVEL, 3.0), (998, 5.0), (FAR_BID, 1.0))
    ]
    rows += [(T0, T0, SNAPSHOT, -1, px(t), q, 0) for t, q in ((1000, 5.0), (FAR_ASK, 1.0))]
    for i in range(1, n_steps + 1):
        ts = T0 + i * STEP
        r = rng.random()
        if r < 0.6:  # whole lots: prints smaller than a lot are test_matching's business
            rows.append((ts, ts, TRADE, -1, px(LEVEL), float(rng.integers(1, 4)), 0))
        elif r < 0.95:
            rows.append((ts, ts, DEPTH, 1, px(LEVEL), float(rng.integers(0, 8)), 0))
        else:
            rows.append((ts, ts, TRADE, -1, px(LEVEL - 1), 1.0, 0))
    rows.append((T0 + (n_steps + 5) * STEP, T0 + (n_steps + 5) * STEP, DEPTH, 1, px(FAR_BID),
                 1.0, 0))  # fmt: skip
    return rows


class TwoBids(Strategy):
    """Two bids at 99.9: ``first`` at step ``a``, ``second`` at a later step ``b``."""

    def __init__(self, a: int, b: int, qty_a: int, qty_b: int) -> None:
        super().__init__()
        self.plan = [(a, qty_a), (b, qty_b)]
        self.orders: list[Order] = []
        self.log: list[tuple[int, Decimal, Decimal]] = []  # (which, its fill, first's leaves)

    def on_start(self, ctx: StrategyContext) -> None:
        for i, (step, _) in enumerate(self.plan):
            ctx.set_timer(f"b{i}", 10**15, start_ns=T0 + step * STEP + STEP // 2)

    def on_timer(self, ctx: StrategyContext, name: str, ts_ns: int) -> None:
        qty = self.plan[int(name[1:])][1]
        self.orders.append(ctx.buy(IID, D(qty), price=D("99.9")))

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        which = [o.client_order_id for o in self.orders].index(fill.client_order_id)
        self.log.append((which, fill.qty, self.orders[0].leaves_qty))


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    a=st.integers(0, 10),
    gap=st.integers(0, 10),
    qty_a=st.integers(1, 5),
    qty_b=st.integers(1, 5),
)
def test_fifo_fills_our_orders_at_one_price_in_submission_order(
    seed: int, a: int, gap: int, qty_a: int, qty_b: int
) -> None:
    strategy = TwoBids(a, a + gap, qty_a, qty_b)
    rows = fifo_feed(seed, 80)
    result = run(rows, strategy, L2VenueConfig(queue_model="fifo"))
    assert len(strategy.orders) == 2
    for which, _, first_leaves in strategy.log:
        if which == 1:  # the later order fills only once the earlier one is complete
            assert first_leaves == 0
    assert len(result.fills) == len(strategy.log)
    # a print at our price fills at most its own size across both of our orders
    printed = {r[0]: r[5] for r in rows if r[2] == TRADE and r[4] == px(LEVEL)}
    filled: dict[int, Decimal] = defaultdict(Decimal)
    for fill in result.fills:
        filled[fill.ts_event_ns] += fill.qty
    for ts, qty in filled.items():
        if ts in printed:
            assert qty <= printed[ts]


# -- determinism under a seeded latency model -----------------------------------------------------
def serialize(result: L2BacktestResult) -> bytes:
    orders = [
        (o.client_order_id, o.status.value, [repr(e) for e in o.events]) for o in result.orders
    ]
    fills = [repr(f) for f in result.fills]
    return repr((orders, fills)).encode() + result.equity.tobytes() + result.ts_ns.tobytes()


def lognormal_run(feed_seed: int, schedule: list[Step], seed: int) -> L2BacktestResult:
    config = L2VenueConfig(
        entry_latency=LatencyModel(kind="lognormal", median_ns=400_000, sigma=0.8),
        response_latency=LatencyModel(kind="lognormal", median_ns=600_000, sigma=0.8),
        seed=seed,
    )
    return run(random_feed(feed_seed, N_STEPS), Schedule(schedule), config)


def event_times(result: L2BacktestResult) -> list[int]:
    return [e.ts_event_ns for o in result.orders for e in o.events]


@settings(max_examples=20, deadline=None)
@given(
    feed_seed=st.integers(0, 2**32 - 1),
    seed=st.integers(0, 2**31),
    schedule=st.lists(
        st.tuples(
            st.integers(0, N_STEPS - 10),
            st.booleans(),
            st.sampled_from(["market", "limit", "post"]),
            st.booleans(),
            st.integers(1, 3),
            st.integers(0, 2),
        ),
        min_size=2,
        max_size=10,
    ),
)
def test_same_seed_is_byte_identical_and_another_seed_changes_the_timing(
    feed_seed: int, seed: int, schedule: list[Step]
) -> None:
    one = lognormal_run(feed_seed, schedule, seed)
    two = lognormal_run(feed_seed, schedule, seed)
    assert serialize(one) == serialize(two)
    other = lognormal_run(feed_seed, schedule, seed + 1)
    # every order was acknowledged (or rejected) at a time drawn from the latency model
    assert event_times(one) != event_times(other)


# -- zero latency and infinite depth reduce to the bar venue -------------------------------------
SPOT = Instrument(IID, kind=InstrumentKind.SPOT, tick_size=D("0.1"), lot_size=D("1"))


class TargetPosition(Strategy):
    """On every bar (or quote) trade to the next target position with a market order."""

    def __init__(self, targets: list[int]) -> None:
        super().__init__()
        self.targets = targets
        self.calls = 0

    def decide(self, ctx: StrategyContext) -> None:
        ctx.order_target_qty(IID, D(self.targets[self.calls]))
        self.calls += 1

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        self.decide(ctx)

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        self.decide(ctx)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-6, 6), st.integers(-5, 5)), min_size=1, max_size=30),
)
def test_zero_latency_infinite_depth_matches_the_bar_venue(path: list[tuple[int, int]]) -> None:
    ticks = 1000 + np.cumsum([move for move, _ in path])
    targets = [target for _, target in path]
    ts = T0 + SEC * np.arange(len(ticks), dtype=np.int64)
    closes = ticks * 0.1
    bars = BarSeries(IID, ts, closes, closes, closes, closes, np.ones(len(ticks)))
    bar_strategy = TargetPosition(targets)
    bar = BacktestEngine(
        bar_strategy, [bars], instruments=[SPOT], venue=BarVenueConfig(fill_at="close")
    ).run()

    rows = []
    for t, close in zip(ts.tolist(), closes.tolist(), strict=True):
        rows.append((t, t, CLEAR, 0, 0.0, 0.0, 0))
        rows.append((t, t, SNAPSHOT, 1, close, 1e12, 0))  # a locked book at the close
        rows.append((t, t, SNAPSHOT, -1, close, 1e12, 0))
    l2_strategy = TargetPosition(targets)
    config = L2VenueConfig(feed_latency_ns=0)
    l2 = L2BacktestEngine(
        l2_strategy, L2Feed.from_rows(IID, rows), instrument=SPOT, venue=config
    ).run()

    assert bar_strategy.calls == l2_strategy.calls == len(ticks)

    def key(fills: list[Fill]) -> list[tuple[str, Decimal, Decimal]]:
        return [(f.side.value, f.price, f.qty) for f in fills]

    assert key(l2.fills) == key(bar.fills)
    assert l2.portfolio.cash == bar.portfolio.cash
    assert l2.portfolio.position(IID).qty == bar.portfolio.position(IID).qty
    assert l2.final_equity == bar.final_equity


def test_random_feed_is_well_formed() -> None:
    """The generator itself: a crossed book or an off-grid price would void the properties."""
    rows = random_feed(7, 500, 700_000)
    events = L2Feed.from_rows(IID, rows).events
    assert (events["local_ts"] >= events["exch_ts"]).all()
    assert not (events["kind"] == FUNDING).any()
    book: dict[int, dict[float, float]] = {1: {}, -1: {}}
    for row in events:
        if row["kind"] == CLEAR:
            book = {1: {}, -1: {}}
        elif row["kind"] in (DEPTH, SNAPSHOT):
            book[int(row["side"])][float(row["px"])] = float(row["qty"])
            bid = max((p for p, q in book[1].items() if q > 0), default=0.0)
            ask = min((p for p, q in book[-1].items() if q > 0), default=1e9)
            if row["kind"] == DEPTH:
                assert bid < ask
    assert np.allclose(events["px"] * 10, np.rint(events["px"] * 10))
