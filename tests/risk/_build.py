"""Real instruments, portfolios, fills and orders for the risk tests (no mocks)."""

from __future__ import annotations

import itertools
from decimal import Decimal

import msgspec

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.orders import (
    Fill,
    Liquidity,
    Order,
    OrderAccepted,
    OrderCanceled,
    OrderSide,
    OrderSubmitted,
    OrderType,
)
from tradestack.portfolio.account import Portfolio
from tradestack.risk.config import RiskConfig

BTC = InstrumentId("BTC/USDT")
ETH = InstrumentId("ETH/USDT")
SOL = InstrumentId("SOL/USDT")
PERP = InstrumentId("BTC-PERP")

_ids = itertools.count(1)

# Every rule off except the ones a test switches on.
QUIET = RiskConfig(
    price_collar_bps=None,
    check_buying_power=False,
    max_orders_per_window=None,
    max_drawdown_fraction=None,
    stop_loss_fraction=None,
    take_profit_fraction=None,
    max_gross_exposure_fraction=None,
    correlation_aware=False,
    vol_regime_ratio=None,
)


def quiet(**overrides: object) -> RiskConfig:
    """The all-off config with some rules switched on."""
    return msgspec.structs.replace(QUIET, **overrides)


def spot(inst_id: InstrumentId = BTC, *, taker_fee_bps: str = "0") -> Instrument:
    return Instrument(
        inst_id,
        kind=InstrumentKind.SPOT,
        lot_size=Decimal("0.001"),
        taker_fee_bps=Decimal(taker_fee_bps),
    )


def perp(inst_id: InstrumentId = PERP, multiplier: str = "1") -> Instrument:
    return Instrument(
        inst_id,
        kind=InstrumentKind.PERPETUAL,
        lot_size=Decimal("0.001"),
        multiplier=Decimal(multiplier),
    )


def portfolio(cash: float, *instruments: Instrument) -> Portfolio:
    book = Portfolio(Decimal(str(cash)))
    for inst in instruments:
        book.register(inst)
    return book


def fill(book: Portfolio, inst_id: InstrumentId, side: OrderSide, qty: float, price: float) -> None:
    """Book a real fill and mark the instrument at the fill price."""
    book.apply_fill(
        Fill(
            f"fill-{next(_ids)}",
            inst_id,
            side,
            Decimal(str(qty)),
            Decimal(str(price)),
            Decimal(0),
            Liquidity.TAKER,
            0,
        )
    )
    book.mark(inst_id, price)


def order(
    side: OrderSide,
    qty: float | str,
    inst_id: InstrumentId = BTC,
    *,
    price: float | str | None = None,
    trigger: float | str | None = None,
    reduce_only: bool = False,
) -> Order:
    """A market, limit, stop or stop-limit order, by which prices are given."""
    if price is not None and trigger is not None:
        kind = OrderType.STOP_LIMIT
    elif price is not None:
        kind = OrderType.LIMIT
    elif trigger is not None:
        kind = OrderType.STOP
    else:
        kind = OrderType.MARKET
    return Order(
        f"o-{next(_ids)}",
        inst_id,
        side,
        Decimal(str(qty)),
        kind,
        price=None if price is None else Decimal(str(price)),
        trigger_price=None if trigger is None else Decimal(str(trigger)),
        reduce_only=reduce_only,
    )


def working(o: Order) -> Order:
    """Move an order to ACCEPTED, as a venue would."""
    o.apply(OrderSubmitted(o.client_order_id, 0))
    o.apply(OrderAccepted(o.client_order_id, 0))
    return o


def cancel(o: Order) -> Order:
    o.apply(OrderCanceled(o.client_order_id, 0))
    return o


BUY, SELL = OrderSide.BUY, OrderSide.SELL
