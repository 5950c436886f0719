"""Perpetual funding in the L2 simulated venue, hand-checked.

Real data: the Binance USD-M BTCUSDT recording of 2023-04-05 (hftbacktest collector) in the
shared data. Its first ``markPrice@1s`` frame (E=1680652800010) announces funding time
T=1680652800000 with r=0.00002760 and p=28155.10000000, so the exchange clock is already past
that funding time at the next event: one payment of -(qty x 28155.1 x 0.0000276) falls due.
Every later frame announces T=1680681600000 (08:00 UTC), after the recording ends.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.orders import Fill
from tradestack.engine.context import StrategyContext
from tradestack.engine.l2 import L2BacktestEngine, L2BacktestResult
from tradestack.engine.strategy import Strategy
from tradestack.execution.sim.feed import (
    CLEAR,
    DEPTH,
    FUNDING,
    SNAPSHOT,
    L2Feed,
    binance_feed,
)
from tradestack.portfolio.account import FundingPayment

D = Decimal
Row = tuple[int, int, int, int, float, float, int]  # (exch, local, kind, side, px, qty, ival)
BTC = InstrumentId("BTCUSDT", "binance")
RECORDING = "ws_messages/binance_usdm/hftbacktest_btcusdt_20230405.dat.gz"
FUNDING_TS = 1_680_652_800_000_000_000
# -(0.1 x 28155.1 x 0.0000276)
PAYMENT_LONG_0_1 = D("-0.077708076")


class Idle(Strategy):
    """Holds whatever it starts with."""


def perpetual(kind: InstrumentKind = InstrumentKind.PERPETUAL) -> Instrument:
    return Instrument(BTC, kind=kind, tick_size=D("0.1"), lot_size=D("0.001"))


@pytest.fixture(scope="module")
def feed(shared_data: Path) -> L2Feed:
    return binance_feed(shared_data / RECORDING, BTC, futures=True, require_snapshot=False)


def hold(
    feed: L2Feed, qty: str, kind: InstrumentKind = InstrumentKind.PERPETUAL
) -> L2BacktestResult:
    seed = (D(qty), D("28000")) if qty else None
    return L2BacktestEngine(Idle(), feed, instrument=perpetual(kind), starting_position=seed).run()


def test_the_recording_announces_the_expected_funding(feed: L2Feed) -> None:
    rows = feed.events[feed.events["kind"] == FUNDING]
    first = rows[0]
    assert int(first["exch_ts"]) == 1_680_652_800_010_000_000
    assert int(first["ival"]) == FUNDING_TS
    assert (float(first["px"]), float(first["qty"])) == (28155.1, 0.0000276)
    assert set(rows["ival"][1:].tolist()) == {1_680_681_600_000_000_000}
    assert int(feed.events["exch_ts"].max()) < 1_680_681_600_000_000_000


def test_a_long_pays_exactly_one_funding_on_the_recording(feed: L2Feed) -> None:
    result = hold(feed, "0.1")
    assert result.portfolio.funding == [
        FundingPayment(BTC, FUNDING_TS, D("0.1"), D("0.0000276"), D("28155.1"), PAYMENT_LONG_0_1)
    ]
    assert result.portfolio.total_funding == PAYMENT_LONG_0_1
    assert result.portfolio.cash == D(100_000) + PAYMENT_LONG_0_1
    assert result.pnl_decomposition()["funding"] == pytest.approx(float(PAYMENT_LONG_0_1))


def test_a_short_receives_the_same_funding(feed: L2Feed) -> None:
    result = hold(feed, "-0.1")
    assert [(p.ts_ns, p.amount) for p in result.portfolio.funding] == [
        (FUNDING_TS, -PAYMENT_LONG_0_1)
    ]
    assert result.portfolio.total_funding == -PAYMENT_LONG_0_1
    assert result.portfolio.cash == D(100_000) - PAYMENT_LONG_0_1


def test_a_flat_account_pays_no_funding(feed: L2Feed) -> None:
    result = hold(feed, "")
    assert result.portfolio.funding == []
    assert result.portfolio.total_funding == 0
    assert result.portfolio.cash == D(100_000)


def test_spot_pays_no_funding(feed: L2Feed) -> None:
    result = hold(feed, "0.1", InstrumentKind.SPOT)
    assert result.portfolio.funding == []
    assert result.portfolio.total_funding == 0
    assert result.portfolio.cash == D(100_000)


# -- synthetic: two funding times, the position changes between them ----------------------------
SIM = InstrumentId("PERP", "sim")
MS = 1_000_000
SEC = 1_000_000_000
T0 = 1_000 * SEC
F1, F2 = T0 + SEC, T0 + 2 * SEC


def funding_rows() -> list[Row]:
    rows: list[Row] = [(T0, T0, CLEAR, 0, 0.0, 0.0, 0)]
    rows += [(T0, T0, SNAPSHOT, 1, p, q, 0) for p, q in ((99.9, 5.0), (99.8, 5.0))]
    rows += [(T0, T0, SNAPSHOT, -1, p, q, 0) for p, q in ((100.0, 5.0), (100.1, 5.0))]
    rows += [
        # (exch, local, kind, side, mark, rate, funding time)
        (T0 + MS, T0 + MS, FUNDING, 0, 100.0, 0.0001, F1),
        (T0 + 500 * MS, T0 + 500 * MS, FUNDING, 0, 100.5, 0.0002, F1),  # last word before F1
        (F1 + MS, F1 + MS, FUNDING, 0, 101.0, -0.0003, F2),  # F1 settles as this arrives
        (F2 + MS, F2 + MS, DEPTH, 1, 99.8, 5.0, 0),  # F2 settles as this arrives
        (F2 + SEC, F2 + SEC, DEPTH, 1, 99.8, 5.0, 0),
    ]
    return rows


class BuyThenFlip(Strategy):
    """Buy 2 before the first funding time, sell 5 (to short 3) before the second."""

    def on_start(self, ctx: StrategyContext) -> None:
        self.fills: list[Fill] = []
        ctx.set_timer("buy", 10**15, start_ns=T0 + 2 * MS)
        ctx.set_timer("sell", 10**15, start_ns=F1 + 500 * MS)

    def on_timer(self, ctx: StrategyContext, name: str, ts_ns: int) -> None:
        if name == "buy":
            ctx.buy(SIM, D(2))
        else:
            ctx.sell(SIM, D(5))

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        self.fills.append(fill)


def test_two_funding_times_with_a_position_change_between() -> None:
    inst = Instrument(SIM, kind=InstrumentKind.PERPETUAL, tick_size=D("0.1"), lot_size=D("1"))
    strategy = BuyThenFlip()
    result = L2BacktestEngine(
        strategy, L2Feed.from_rows(SIM, funding_rows()), instrument=inst
    ).run()
    assert [(f.side.value, f.qty, f.price) for f in strategy.fills] == [
        ("buy", D(2), D("100.0")),
        ("sell", D(5), D("99.9")),
    ]
    # F1: long 2, mark 100.5, rate 0.0002 -> -(2 x 100.5 x 0.0002) = -0.0402
    # F2: short 3, mark 101.0, rate -0.0003 -> -(-3 x 101.0 x -0.0003) = -0.0909
    assert result.portfolio.funding == [
        FundingPayment(SIM, F1, D(2), D("0.0002"), D("100.5"), D("-0.0402")),
        FundingPayment(SIM, F2, D(-3), D("-0.0003"), D("101.0"), D("-0.0909")),
    ]
    assert result.portfolio.total_funding == D("-0.1311")
    # perpetual cash moves by realized PnL and funding: selling 2 of 5 at 99.9 closes the long
    # bought at 100.0 (-0.2), the other 3 open a short
    assert result.portfolio.realized_pnl == D("-0.2")
    assert result.portfolio.cash == D(100_000) - D("0.2") - D("0.1311")
    assert result.pnl_decomposition()["funding"] == pytest.approx(-0.1311)


def test_funding_skipped_while_flat() -> None:
    inst = Instrument(SIM, kind=InstrumentKind.PERPETUAL, tick_size=D("0.1"), lot_size=D("1"))
    result = L2BacktestEngine(Idle(), L2Feed.from_rows(SIM, funding_rows()), instrument=inst).run()
    assert result.portfolio.funding == []
    assert result.portfolio.cash == D(100_000)
