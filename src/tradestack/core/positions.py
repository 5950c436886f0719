"""Positions: signed exact quantity, exact cost basis, realized PnL and fees."""

from __future__ import annotations

from decimal import Decimal

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import Fill

_ZERO = Decimal(0)


def pro_rata(amount: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    """``amount * part / whole`` cut to a finite grid (8 digits finer than ``amount``'s own, at
    most ~20 significant digits), so what is taken and what is left are exact Decimals and the
    pieces of ``amount`` always add back to it exactly."""
    if part == whole:
        return amount
    share = amount * part / whole
    if not amount:
        return share
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)
    quantum = Decimal(1).scaleb(max(exponent - 8, amount.adjusted() - 20))
    return share.quantize(quantum)


class Position:
    """Net position in one instrument (long > 0, short < 0), with average-cost accounting.

    ``cost_basis`` is the exact absolute entry value of the open quantity, so a position that goes
    back to flat realizes exactly (proceeds - cost). ``realized_pnl`` is gross of fees; fees are
    kept apart in ``fees``.
    """

    __slots__ = (
        "avg_price_f",
        "cost_basis",
        "fees",
        "instrument_id",
        "multiplier",
        "multiplier_f",
        "qty",
        "qty_f",
        "realized_pnl",
    )

    def __init__(self, instrument_id: InstrumentId, multiplier: Decimal = Decimal(1)) -> None:
        self.instrument_id = instrument_id
        self.multiplier = multiplier
        self.multiplier_f = float(multiplier)
        self.qty = _ZERO
        self.cost_basis = _ZERO
        self.realized_pnl = _ZERO
        self.fees = _ZERO
        self.qty_f = 0.0
        self.avg_price_f = 0.0

    @property
    def is_flat(self) -> bool:
        return self.qty == 0

    @property
    def avg_price(self) -> Decimal:
        """Average entry price of the open quantity (0 when flat)."""
        return self.cost_basis / abs(self.qty) if self.qty else _ZERO

    def apply(self, fill: Fill) -> Decimal:
        """Apply a fill; returns the gross PnL it realized."""
        signed = fill.qty if fill.side.sign > 0 else -fill.qty
        realized = _ZERO
        if self.qty == 0 or (self.qty > 0) == (signed > 0):
            self.cost_basis += fill.qty * fill.price
            self.qty += signed
        else:
            open_abs = abs(self.qty)
            closed = min(open_abs, fill.qty)
            removed = pro_rata(self.cost_basis, closed, open_abs)
            direction = 1 if self.qty > 0 else -1
            realized = direction * (closed * fill.price - removed) * self.multiplier
            self.cost_basis -= removed
            self.qty += signed
            if fill.qty > open_abs:
                self.cost_basis = (fill.qty - open_abs) * fill.price
        self.realized_pnl += realized
        self.fees += fill.fee
        self.qty_f = float(self.qty)
        self.avg_price_f = float(self.avg_price)
        return realized

    def seed(self, qty: Decimal, avg_price: Decimal) -> None:
        """Start from an existing position (carried in from another run or account)."""
        if self.qty:
            raise ValueError(f"{self.instrument_id}: seed a position only while it is flat")
        if qty and not avg_price > 0:
            raise ValueError(f"{self.instrument_id}: a seeded position needs a positive price")
        self.qty = qty
        self.cost_basis = abs(qty) * avg_price
        self.qty_f = float(qty)
        self.avg_price_f = float(avg_price) if qty else 0.0

    def market_value(self, mark: float) -> float:
        """Signed value of the open quantity at ``mark``."""
        return self.qty_f * mark * self.multiplier_f

    def unrealized_pnl(self, mark: float) -> float:
        """PnL of the open quantity if it were closed at ``mark``."""
        return self.qty_f * (mark - self.avg_price_f) * self.multiplier_f

    def __repr__(self) -> str:
        return f"Position({self.instrument_id} qty={self.qty} avg={self.avg_price:.8g})"
