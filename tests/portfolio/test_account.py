"""Fees a venue takes in the traded asset (a spot buy's BTC commission): the position moves by
the quantity less the fee, cash by the whole notional, and the fee counts at the fill price."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.orders import Fill, Liquidity, OrderSide
from tradestack.portfolio.account import Portfolio

BTC = InstrumentId("BTC/USDT", "binance")


def _portfolio() -> Portfolio:
    portfolio = Portfolio(Decimal(10_000), "USDT")
    portfolio.register(
        Instrument(
            BTC, kind=InstrumentKind.SPOT, tick_size=Decimal("0.01"), lot_size=Decimal("0.00001")
        )
    )
    return portfolio


def _fill(side: OrderSide, qty: str, price: str, fee: str = "0", n: int = 1) -> Fill:
    return Fill(
        f"c{n}", BTC, side, Decimal(qty), Decimal(price), Decimal(fee), Liquidity.TAKER, n, f"t{n}"
    )


def test_a_base_asset_fee_shrinks_the_position_not_the_cash() -> None:
    portfolio = _portfolio()
    portfolio.apply_fill(_fill(OrderSide.BUY, "0.1", "60000"), base_fee=Decimal("0.0001"))
    assert portfolio.position(BTC).qty == Decimal("0.0999")
    assert portfolio.cash == Decimal(10_000) - Decimal(6_000)
    assert portfolio.total_fees == Decimal("6.0000")
    portfolio.apply_fill(_fill(OrderSide.SELL, "0.0999", "61000", fee="6.0939", n=2))
    assert portfolio.position(BTC).qty == 0
    assert portfolio.cash == Decimal(4_000) + Decimal("6093.9") - Decimal("6.0939")


def test_a_base_fee_outside_the_fill_is_refused_and_books_nothing() -> None:
    portfolio = _portfolio()
    with pytest.raises(ValueError, match=r"base_fee 0.2 must be in \[0, qty\)"):
        portfolio.apply_fill(_fill(OrderSide.BUY, "0.1", "60000"), base_fee=Decimal("0.2"))
    assert portfolio.position(BTC).qty == 0 and portfolio.cash == Decimal(10_000)
