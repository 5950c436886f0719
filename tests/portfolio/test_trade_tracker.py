"""TradeTracker: one closed trade per flat → open → flat cycle (a flip closes one and opens one)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.orders import Fill, Liquidity, OrderSide
from tradestack.portfolio.account import Portfolio
from tradestack.portfolio.trades import TradeTracker

PROPS = settings(max_examples=200, deadline=None, derandomize=True)
D = Decimal
BUY, SELL = OrderSide.BUY, OrderSide.SELL
A = Instrument(InstrumentId("A"), tick_size=D("0.01"), lot_size=D("0.1"))
B = Instrument(
    InstrumentId("B-PERP"), InstrumentKind.PERPETUAL, tick_size=D("0.5"), multiplier=D("10")
)


def _fill(
    inst: Instrument,
    side: OrderSide,
    qty: str | Decimal,
    price: str | Decimal,
    fee: str | Decimal = "0",
    ts: int = 0,
) -> Fill:
    return Fill("o", inst.id, side, D(qty), D(price), D(fee), Liquidity.TAKER, ts)


def test_long_round_trip_in_pieces() -> None:
    tracker = TradeTracker()
    tracker.on_fill(_fill(A, BUY, "2", "100", "1", ts=1), D(0))
    tracker.on_fill(_fill(A, BUY, "2", "110", "1", ts=2), D(0))
    assert tracker.open_trades() == {A.id: (1, D(4))}
    tracker.on_fill(_fill(A, SELL, "1", "120", "0.5", ts=3), D(15))
    tracker.on_fill(_fill(A, SELL, "3", "130", "1.5", ts=4), D(75))
    assert tracker.open_trades() == {}
    (trade,) = tracker.closed
    assert trade.side == "long"
    assert trade.qty == D(4)
    assert (trade.entry_ts_ns, trade.exit_ts_ns) == (1, 4)
    assert trade.entry_price == D("105")
    assert trade.exit_price == D("127.5")  # (120 + 390) / 4
    assert trade.gross_pnl == D(90)
    assert trade.fees == D(4)
    assert trade.pnl == D(86)
    assert trade.return_fraction == pytest.approx(86 / 420)


def test_flip_closes_one_trade_and_opens_the_other_way() -> None:
    tracker = TradeTracker()
    tracker.on_fill(_fill(A, BUY, "1", "100", "1", ts=1), D(0))
    # sell 3: closes the long 1 (realized 10) and opens a short 2; fee 3 split 1 / 2
    tracker.on_fill(_fill(A, SELL, "3", "110", "3", ts=2), D(10))
    (first,) = tracker.closed
    assert (first.side, first.qty, first.gross_pnl, first.fees) == ("long", D(1), D(10), D(2))
    assert tracker.open_trades() == {A.id: (2, D(-2))}
    tracker.on_fill(_fill(A, BUY, "2", "105", "0", ts=3), D(10))
    second = tracker.closed[1]
    assert (second.side, second.qty, second.entry_price, second.exit_price) == (
        "short",
        D(2),
        D(110),
        D(105),
    )
    assert (second.gross_pnl, second.fees) == (D(10), D(2))


def test_return_fraction_accounts_for_the_multiplier() -> None:
    """A perpetual with multiplier 10: 1 contract 100 → 110 makes 100 on an entry value of 1000."""
    portfolio = Portfolio(D(10_000))
    portfolio.register(B)
    portfolio.apply_fill(_fill(B, BUY, "1", "100"))
    portfolio.apply_fill(_fill(B, SELL, "1", "110"))
    (trade,) = portfolio.closed_trades
    assert trade.gross_pnl == D(100)
    assert trade.return_fraction == pytest.approx(0.10)


steps = st.tuples(
    st.sampled_from([A, B]),
    st.sampled_from([BUY, SELL]),
    st.integers(1, 40),
    st.integers(1, 5000),
    st.integers(0, 9999),
    st.sampled_from(["fill", "close", "flip"]),
)


@PROPS
@given(seq=st.lists(steps, min_size=1, max_size=40))
def test_trades_match_flat_cycles(
    seq: list[tuple[Instrument, OrderSide, int, int, int, str]],
) -> None:
    portfolio = Portfolio(D(10**9))
    for inst in (A, B):
        portfolio.register(inst)
    held = {A.id: D(0), B.id: D(0)}
    cycle_realized = {A.id: D(0), B.id: D(0)}
    closed_realized = D(0)
    closes = 0
    for n, (inst, side, lots, ticks, fee_cents, kind) in enumerate(seq):
        qty, price = lots * inst.lot_size, ticks * inst.tick_size
        before = held[inst.id]
        if kind != "fill" and before:
            side = SELL if before > 0 else BUY
            qty = abs(before) + (qty if kind == "flip" else 0)
        realized = portfolio.apply_fill(
            Fill(f"o{n}", inst.id, side, qty, price, fee_cents * D("0.01"), Liquidity.MAKER, n)
        )
        after = before + side.sign * qty
        held[inst.id] = after
        cycle_realized[inst.id] += realized
        if before and (after == 0 or (after > 0) != (before > 0)):
            closes += 1
            closed_realized += cycle_realized[inst.id]
            cycle_realized[inst.id] = D(0)
        else:
            assert realized == 0 or before  # only a reducing fill realizes anything
    trades = portfolio.closed_trades
    assert len(trades) == closes
    assert sum((t.gross_pnl for t in trades), D(0)) == closed_realized
    open_trades = portfolio.trades.open_trades()
    assert {i: q for i, (_, q) in open_trades.items()} == {i: q for i, q in held.items() if q}
    for t in trades:
        assert t.qty > 0
        assert t.entry_ts_ns <= t.exit_ts_ns
        assert t.side in ("long", "short")
    if not any(held.values()):
        # everything is closed: the trades carry every fee and every unit of realized PnL
        assert sum((t.fees for t in trades), D(0)) == portfolio.total_fees
        assert sum((t.gross_pnl for t in trades), D(0)) == portfolio.realized_pnl
