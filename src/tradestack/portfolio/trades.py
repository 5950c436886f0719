"""Round-trip trades built from fills: one trade per flat → open → flat cycle of a position."""

from __future__ import annotations

from decimal import Decimal

import msgspec

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import Fill
from tradestack.core.positions import pro_rata

_ZERO = Decimal(0)


class TradeRecord(msgspec.Struct, frozen=True):
    """A closed round trip. ``pnl`` is net of the fees of every fill in it."""

    instrument_id: InstrumentId
    side: str  # "long" or "short"
    qty: Decimal
    entry_ts_ns: int
    entry_price: Decimal
    exit_ts_ns: int
    exit_price: Decimal
    gross_pnl: Decimal
    fees: Decimal
    multiplier: Decimal = Decimal(1)

    @property
    def pnl(self) -> Decimal:
        return self.gross_pnl - self.fees

    @property
    def return_fraction(self) -> float:
        """Net PnL over entry value (``qty * entry_price * multiplier``, like the PnL)."""
        entry_value = self.qty * self.entry_price * self.multiplier
        return float(self.pnl / entry_value) if entry_value else 0.0


class _OpenTrade:
    __slots__ = (
        "direction",
        "entry_qty",
        "entry_ts_ns",
        "entry_value",
        "exit_qty",
        "exit_value",
        "fees",
        "gross_pnl",
        "multiplier",
    )

    def __init__(self, direction: int, ts_ns: int, multiplier: Decimal) -> None:
        self.direction = direction
        self.multiplier = multiplier
        self.entry_ts_ns = ts_ns
        self.entry_qty = _ZERO
        self.entry_value = _ZERO
        self.exit_qty = _ZERO
        self.exit_value = _ZERO
        self.gross_pnl = _ZERO
        self.fees = _ZERO


class TradeTracker:
    """Turns a stream of fills (with the PnL each realized) into closed :class:`TradeRecord`s."""

    def __init__(self) -> None:
        self._open: dict[InstrumentId, _OpenTrade] = {}
        self._qty: dict[InstrumentId, Decimal] = {}
        self.closed: list[TradeRecord] = []

    def on_fill(self, fill: Fill, realized: Decimal, multiplier: Decimal = Decimal(1)) -> None:
        inst = fill.instrument_id
        before = self._qty.get(inst, _ZERO)
        signed = fill.qty if fill.side.sign > 0 else -fill.qty
        after = before + signed
        self._qty[inst] = after
        trade = self._open.get(inst)
        if trade is None:
            trade = self._open[inst] = _OpenTrade(
                1 if signed > 0 else -1, fill.ts_event_ns, multiplier
            )
        closing = min(abs(before), fill.qty) if before and (before > 0) != (signed > 0) else _ZERO
        opening = fill.qty - closing
        fee_close = pro_rata(fill.fee, closing, fill.qty) if closing else _ZERO
        if closing:
            trade.exit_qty += closing
            trade.exit_value += closing * fill.price
            trade.gross_pnl += realized
            trade.fees += fee_close
        if after == 0 or (closing and opening):
            self._close(inst, trade, fill.ts_event_ns)
            if opening:
                trade = self._open[inst] = _OpenTrade(
                    1 if signed > 0 else -1, fill.ts_event_ns, multiplier
                )
        if opening:
            trade.entry_qty += opening
            trade.entry_value += opening * fill.price
            trade.fees += fill.fee - fee_close

    def _close(self, inst: InstrumentId, trade: _OpenTrade, ts_ns: int) -> None:
        del self._open[inst]
        self.closed.append(
            TradeRecord(
                instrument_id=inst,
                side="long" if trade.direction > 0 else "short",
                qty=trade.entry_qty,
                entry_ts_ns=trade.entry_ts_ns,
                entry_price=trade.entry_value / trade.entry_qty,
                exit_ts_ns=ts_ns,
                exit_price=trade.exit_value / trade.exit_qty,
                gross_pnl=trade.gross_pnl,
                fees=trade.fees,
                multiplier=trade.multiplier,
            )
        )

    def open_trades(self) -> dict[InstrumentId, tuple[int, Decimal]]:
        """Instrument → (entry time, open signed quantity) of trades not yet closed."""
        return {i: (t.entry_ts_ns, self._qty[i]) for i, t in self._open.items()}
