"""The portfolio ledger: exact cash, positions, fees and realized PnL; float marks and equity."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import msgspec

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.orders import Fill, Liquidity, OrderSide
from tradestack.core.positions import Position
from tradestack.portfolio.trades import TradeRecord, TradeTracker

_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class FundingPayment:
    """One funding settlement: the position held, the rate and mark used, the cash it moved."""

    instrument_id: InstrumentId
    ts_ns: int
    qty: Decimal
    rate: Decimal
    mark: Decimal
    amount: Decimal


class Portfolio:
    """Cash and positions of one account in one currency.

    Spot and equity fills move cash by their notional; perpetual fills move cash only by the PnL
    they realize (the position is margined). Either way ``equity == cash + Σ position values``,
    where a perpetual's value is its unrealized PnL. Cash, fees and realized PnL are Decimals and
    reconcile exactly; marks and equity are floats.
    """

    def __init__(self, starting_cash: Decimal, currency: str = "USD") -> None:
        if starting_cash < 0:
            raise ValueError(f"starting cash must be >= 0, got {starting_cash}")
        self.currency = currency
        self.starting_cash = starting_cash
        self.cash = starting_cash
        self.total_fees = _ZERO
        self.total_funding = _ZERO
        self.funding: list[FundingPayment] = []
        self.realized_pnl = _ZERO
        self.traded_notional = _ZERO
        self.positions: dict[InstrumentId, Position] = {}
        self.fills: list[Fill] = []
        self.trades = TradeTracker()
        self._instruments: dict[InstrumentId, Instrument] = {}
        self._margined: dict[InstrumentId, bool] = {}
        self._marks: dict[InstrumentId, float] = {}
        self._open: dict[InstrumentId, Position] = {}
        self._cash_f = float(starting_cash)

    def register(self, instrument: Instrument) -> None:
        """Make an instrument tradable in this portfolio."""
        self._instruments[instrument.id] = instrument
        self._margined[instrument.id] = instrument.kind is InstrumentKind.PERPETUAL
        self.positions.setdefault(instrument.id, Position(instrument.id, instrument.multiplier))

    def position(self, instrument_id: InstrumentId) -> Position:
        """The position in one registered instrument (flat until its first fill)."""
        try:
            return self.positions[instrument_id]
        except KeyError:
            raise KeyError(
                f"instrument {instrument_id} is not registered in the portfolio"
            ) from None

    def apply_fill(self, fill: Fill, *, base_fee: Decimal = _ZERO) -> Decimal:
        """Book a fill; returns the gross PnL it realized.

        ``base_fee``: the part of the fee a venue took in the traded asset (a spot buy's BTC
        commission): the position moves by the quantity less it (a sell's, more), cash by the
        whole traded notional, and ``total_fees`` counts it at the fill price."""
        inst = self._instruments.get(fill.instrument_id)
        if inst is None:
            raise KeyError(f"fill for unregistered instrument {fill.instrument_id}")
        if base_fee < 0 or base_fee >= fill.qty:
            raise ValueError(f"fill {fill.fill_id}: base_fee {base_fee} must be in [0, qty)")
        position = self.positions[fill.instrument_id]
        if base_fee:
            held = fill.qty - base_fee if fill.side is OrderSide.BUY else fill.qty + base_fee
            realized = position.apply(msgspec.structs.replace(fill, qty=held))
            self.total_fees += base_fee * fill.price * inst.multiplier
        else:
            realized = position.apply(fill)
        if position.qty:
            self._open[fill.instrument_id] = position
        else:
            self._open.pop(fill.instrument_id, None)
        notional = fill.qty * fill.price * inst.multiplier
        if self._margined[fill.instrument_id]:
            self.cash += realized - fill.fee
        else:
            self.cash += -fill.side.sign * notional - fill.fee
        self.realized_pnl += realized
        self.total_fees += fill.fee
        self.traded_notional += notional
        self._cash_f = float(self.cash)
        self.fills.append(fill)
        self.trades.on_fill(fill, realized, inst.multiplier)
        return realized

    def seed_position(
        self, instrument_id: InstrumentId, qty: Decimal, avg_price: Decimal, ts_ns: int = 0
    ) -> None:
        """Hold ``qty`` from the start at cost ``avg_price``; cash is not touched (it is what
        the account has besides the position). The trade tracker sees it as an open trade."""
        position = self.position(instrument_id)
        position.seed(qty, avg_price)
        if qty:
            self._open[instrument_id] = position
            side = OrderSide.BUY if qty > 0 else OrderSide.SELL
            opening = Fill(
                "seed", instrument_id, side, abs(qty), avg_price, _ZERO, Liquidity.MAKER, ts_ns
            )
            self.trades.on_fill(opening, _ZERO, position.multiplier)

    def apply_funding(
        self,
        instrument_id: InstrumentId,
        amount: Decimal,
        *,
        ts_ns: int,
        qty: Decimal,
        rate: Decimal,
        mark: Decimal,
    ) -> None:
        """Book a perpetual funding payment (negative = paid) into cash; ``qty`` is the position
        the venue charged it on."""
        self.position(instrument_id)
        self.cash += amount
        self.total_funding += amount
        self._cash_f = float(self.cash)
        self.funding.append(FundingPayment(instrument_id, ts_ns, qty, rate, mark, amount))

    @property
    def cash_f(self) -> float:
        """Cash as a float, for valuation."""
        return self._cash_f

    def mark(self, instrument_id: InstrumentId, price: float) -> None:
        """Record the latest price used to value a position."""
        self._marks[instrument_id] = price

    def mark_price(self, instrument_id: InstrumentId) -> float:
        """Latest mark (NaN before the first one)."""
        return self._marks.get(instrument_id, float("nan"))

    def has_mark(self, instrument_id: InstrumentId) -> bool:
        return instrument_id in self._marks

    def exposure(self, instrument_id: InstrumentId) -> float:
        """|notional| of one position at its mark."""
        position = self.positions.get(instrument_id)
        if position is None or position.qty_f == 0.0:
            return 0.0
        return abs(position.market_value(self._marks[instrument_id]))

    def position_value(self, instrument_id: InstrumentId) -> float:
        """What the position adds to equity at its mark."""
        position = self.positions[instrument_id]
        if position.qty_f == 0.0:
            return 0.0
        mark = self._marks[instrument_id]
        if self._margined[instrument_id]:
            return position.unrealized_pnl(mark)
        return position.market_value(mark)

    def equity(self) -> float:
        """Cash plus the value of every open position at its mark."""
        total = self._cash_f
        for inst_id in self._open:
            total += self.position_value(inst_id)
        return total

    def equity_and_exposure(self) -> tuple[float, float]:
        """Equity and gross exposure in one pass."""
        total = self._cash_f
        gross = 0.0
        marks = self._marks
        for inst_id, position in self._open.items():
            value = position.market_value(marks[inst_id])
            gross += abs(value)
            total += position.unrealized_pnl(marks[inst_id]) if self._margined[inst_id] else value
        return total, gross

    def gross_exposure(self) -> float:
        """Σ |notional| of open positions at their marks."""
        total = 0.0
        for inst_id, position in self._open.items():
            total += abs(position.market_value(self._marks[inst_id]))
        return total

    @property
    def closed_trades(self) -> list[TradeRecord]:
        return self.trades.closed
