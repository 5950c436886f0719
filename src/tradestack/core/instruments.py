"""Instrument specifications and the one place where prices and quantities are rounded."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from enum import StrEnum

import msgspec

from tradestack.core.ids import InstrumentId


def _plain(value: Decimal) -> Decimal:
    """Strip trailing zeros without going to exponent form (``100``, not ``1E+2``)."""
    value = value.normalize()
    exponent = value.as_tuple().exponent
    return value.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else value


class InstrumentKind(StrEnum):
    """What kind of contract an instrument is."""

    SPOT = "spot"
    PERPETUAL = "perpetual"
    EQUITY = "equity"


class Instrument(msgspec.Struct, frozen=True):
    """Trading rules of one instrument: increments, minimums, fees and currencies.

    ``tick_size`` and ``lot_size`` are exact Decimals; every order price and quantity is rounded to
    them by :meth:`round_price` / :meth:`round_qty` before it reaches the ledger.
    """

    id: InstrumentId
    kind: InstrumentKind = InstrumentKind.SPOT
    base_currency: str = "BASE"
    quote_currency: str = "USD"
    tick_size: Decimal = Decimal("0.01")
    lot_size: Decimal = Decimal("1")
    min_qty: Decimal = Decimal("0")
    min_notional: Decimal = Decimal("0")
    maker_fee_bps: Decimal = Decimal("0")
    taker_fee_bps: Decimal = Decimal("0")
    multiplier: Decimal = Decimal("1")

    def __post_init__(self) -> None:
        for name in ("tick_size", "lot_size", "multiplier"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or value <= 0:
                raise ValueError(
                    f"instrument {self.id}: {name} must be a positive Decimal, got {value!r}"
                )
        for name in ("min_qty", "min_notional"):
            if getattr(self, name) < 0:
                raise ValueError(f"instrument {self.id}: {name} must be >= 0")

    def round_price(self, price: float | Decimal) -> Decimal:
        """Round a price to the nearest tick (half-even); idempotent."""
        ticks = (Decimal(str(price)) / self.tick_size).quantize(Decimal(1), ROUND_HALF_EVEN)
        return _plain(ticks * self.tick_size) if ticks else Decimal(0)

    def round_qty(self, qty: float | Decimal) -> Decimal:
        """Round a quantity toward zero to a whole number of lots; idempotent."""
        lots = (Decimal(str(qty)) / self.lot_size).to_integral_value(ROUND_DOWN)
        return _plain(lots * self.lot_size) if lots else Decimal(0)

    def is_lot_multiple(self, qty: Decimal) -> bool:
        """True when ``qty`` is a whole number of lots."""
        return qty % self.lot_size == 0

    def notional(self, qty: Decimal, price: Decimal) -> Decimal:
        """Quote-currency value of ``qty`` at ``price``."""
        return abs(qty) * price * self.multiplier
