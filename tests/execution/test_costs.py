"""Fee and slippage models of the simulated venues."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument
from tradestack.core.orders import Liquidity, OrderSide
from tradestack.execution.costs import FeeModel, SlippageModel

PROPS = settings(max_examples=200, deadline=None, derandomize=True)
D = Decimal
INST = Instrument(InstrumentId("X"), maker_fee_bps=D("2"), taker_fee_bps=D("5"))


@pytest.mark.parametrize(
    ("model", "liquidity", "expected"),
    [
        (FeeModel(), Liquidity.MAKER, D("0.2")),  # 1000 * 2 bps, from the instrument
        (FeeModel(), Liquidity.TAKER, D("0.5")),
        (FeeModel(maker_fee_bps=D("-1")), Liquidity.MAKER, D("-0.1")),  # rebate
        (FeeModel(maker_fee_bps=D("-1")), Liquidity.TAKER, D("0.5")),  # taker still from inst
        (FeeModel(taker_fee_bps=D("0")), Liquidity.TAKER, D("0")),  # an explicit 0 wins
        (FeeModel(D("1"), D("7.5")), Liquidity.TAKER, D("0.75")),
    ],
)
def test_fee_model(model: FeeModel, liquidity: Liquidity, expected: Decimal) -> None:
    assert model.fee(INST, D("1000"), liquidity) == expected


@pytest.mark.parametrize(
    ("side", "price", "bps", "tick", "expected"),
    [
        (OrderSide.BUY, "100", "10", "0.01", "100.1"),
        (OrderSide.SELL, "100", "10", "0.01", "99.9"),
        (OrderSide.BUY, "100.5", "10", "0.01", "100.61"),  # 100.6005 rounds up
        (OrderSide.SELL, "100.5", "10", "0.01", "100.39"),  # 100.3995 rounds down
        (OrderSide.BUY, "100", "1", "0.5", "100.5"),  # 100.01 -> next half
        (OrderSide.SELL, "100", "1", "0.5", "99.5"),
        (OrderSide.BUY, "100", "0", "0.5", "100"),
    ],
)
def test_slippage_examples(side: OrderSide, price: str, bps: str, tick: str, expected: str) -> None:
    inst = Instrument(InstrumentId("X"), tick_size=D(tick))
    assert SlippageModel(D(bps)).adjust(inst, side, D(price)) == D(expected)


def test_negative_slippage_is_refused() -> None:
    with pytest.raises(ValueError, match="slippage_bps"):
        SlippageModel(D("-1"))


@PROPS
@given(
    ticks=st.integers(1, 10**7),
    tick=st.sampled_from([D("0.01"), D("0.5"), D("0.0001"), D("5")]),
    bps=st.integers(0, 500),
    side=st.sampled_from([OrderSide.BUY, OrderSide.SELL]),
)
def test_slippage_is_adverse_on_grid_and_at_least_the_bps(
    ticks: int, tick: Decimal, bps: int, side: OrderSide
) -> None:
    inst = Instrument(InstrumentId("X"), tick_size=tick)
    price = ticks * tick
    moved = SlippageModel(D(bps)).adjust(inst, side, price)
    assert moved % tick == 0
    exact = price * (1 + side.sign * D(bps) / 10_000)
    if side is OrderSide.BUY:
        assert exact <= moved < exact + tick
    else:
        assert exact - tick < moved <= exact
