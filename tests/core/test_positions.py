"""Position average-cost accounting: worked examples, flips, multipliers, exact flat PnL."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import Fill, Liquidity, OrderSide
from tradestack.core.positions import Position

PROPS = settings(max_examples=200, deadline=None, derandomize=True)
INST = InstrumentId("X")
D = Decimal


def _fill(side: OrderSide, qty: str | Decimal, price: str | Decimal, fee: str = "0") -> Fill:
    return Fill("o", INST, side, D(qty), D(price), D(fee), Liquidity.TAKER, 0)


BUY, SELL = OrderSide.BUY, OrderSide.SELL


def test_average_cost_and_partial_close() -> None:
    pos = Position(INST)
    assert pos.apply(_fill(BUY, "10", "100", "1")) == 0
    assert pos.apply(_fill(BUY, "10", "110", "1")) == 0
    assert pos.qty == 20
    assert pos.avg_price == D("105")
    assert pos.apply(_fill(SELL, "5", "120")) == D("75")  # 5 * (120 - 105)
    assert pos.qty == 15
    assert pos.avg_price == D("105")
    assert pos.realized_pnl == D("75")
    assert pos.fees == D("2")
    assert pos.unrealized_pnl(100.0) == 15 * (100.0 - 105.0)
    assert pos.market_value(100.0) == 1500.0


def test_flip_long_to_short_realizes_the_closed_part_only() -> None:
    pos = Position(INST)
    pos.apply(_fill(BUY, "3", "50"))
    assert pos.apply(_fill(SELL, "5", "60")) == D("30")  # 3 * (60 - 50)
    assert pos.qty == -2
    assert pos.avg_price == D("60")
    assert pos.apply(_fill(BUY, "2", "55")) == D("10")  # short 2 from 60 covered at 55
    assert pos.is_flat
    assert pos.cost_basis == 0
    assert pos.realized_pnl == D("40")


def test_short_pnl_and_multiplier() -> None:
    pos = Position(INST, multiplier=D("0.1"))
    pos.apply(_fill(SELL, "4", "2000"))
    assert pos.qty == -4
    assert pos.market_value(1900.0) == -4 * 1900.0 * 0.1
    assert abs(pos.unrealized_pnl(1900.0) - 40.0) < 1e-9  # -4 * (1900 - 2000) * 0.1
    assert pos.apply(_fill(BUY, "4", "1900")) == D("40.0")


sides = st.sampled_from([BUY, SELL])
lots = st.integers(1, 50)
ticks = st.integers(1, 20_000)


@PROPS
@given(
    opening=st.lists(st.tuples(lots, ticks), min_size=1, max_size=6),
    closing_prices=st.lists(ticks, min_size=1, max_size=6),
    side=sides,
    lot=st.sampled_from([D("1"), D("0.001"), D("0.3")]),
    tick=st.sampled_from([D("0.01"), D("0.5"), D("0.0001")]),
    mult=st.sampled_from([D("1"), D("0.01"), D("25")]),
)
def test_back_to_flat_realizes_exactly_proceeds_minus_cost(
    opening: list[tuple[int, int]],
    closing_prices: list[int],
    side: OrderSide,
    lot: Decimal,
    tick: Decimal,
    mult: Decimal,
) -> None:
    """Open in several fills, close in several (uneven) pieces: Σ realized is exact."""
    pos = Position(INST, multiplier=mult)
    other = SELL if side is BUY else BUY
    cost = D(0)
    total_lots = 0
    for n, t in opening:
        pos.apply(_fill(side, n * lot, t * tick))
        cost += n * lot * t * tick
        total_lots += n
    proceeds = D(0)
    realized = D(0)
    left = total_lots
    for i, t in enumerate(closing_prices):
        n = left if i == len(closing_prices) - 1 else max(1, left // 3)
        n = min(n, left)
        if n == 0:
            break
        realized += pos.apply(_fill(other, n * lot, t * tick))
        proceeds += n * lot * t * tick
        left -= n
    if left:
        realized += pos.apply(_fill(other, left * lot, tick))
        proceeds += left * lot * tick
    assert pos.is_flat
    direction = 1 if side is BUY else -1
    assert realized == direction * (proceeds - cost) * mult
    assert pos.realized_pnl == realized
    assert pos.cost_basis == 0
