"""Portfolio ledger identities under random fills and marks (spot, equity and perpetuals).

The expected values are computed here independently from the raw fills with exact Decimals:
cash moves by notional for spot/equity and by realized PnL for perpetuals, and a perpetual's
realized + unrealized PnL equals its mark-to-market PnL ``(qty * mark - Σ signed qty * price) * m``
whatever the cost method, so equity needs no average-cost model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.orders import Fill, Liquidity, OrderSide
from tradestack.portfolio.account import Portfolio

PROPS = settings(max_examples=150, deadline=None, derandomize=True)
D = Decimal
START = D("1000000")

INSTRUMENTS = (
    Instrument(
        InstrumentId("BTC/USD"), InstrumentKind.SPOT, tick_size=D("0.01"), lot_size=D("0.001")
    ),
    Instrument(InstrumentId("AAPL"), InstrumentKind.EQUITY, tick_size=D("0.01"), lot_size=D("1")),
    Instrument(
        InstrumentId("ETH-PERP"),
        InstrumentKind.PERPETUAL,
        tick_size=D("0.05"),
        lot_size=D("0.01"),
    ),
    Instrument(
        InstrumentId("ES-PERP"),
        InstrumentKind.PERPETUAL,
        tick_size=D("0.25"),
        lot_size=D("1"),
        multiplier=D("50"),
    ),
    Instrument(
        InstrumentId("SHIB-PERP"),
        InstrumentKind.PERPETUAL,
        tick_size=D("0.000001"),
        lot_size=D("1000"),
        multiplier=D("0.001"),
    ),
)


@dataclass(frozen=True)
class Step:
    kind: str  # "fill", "close", "flip" or "mark"
    inst: int
    side: OrderSide
    lots: int
    ticks: int
    fee_bps: int


steps = st.builds(
    Step,
    st.sampled_from(["fill", "fill", "fill", "close", "flip", "mark"]),
    st.integers(0, len(INSTRUMENTS) - 1),
    st.sampled_from([OrderSide.BUY, OrderSide.SELL]),
    st.integers(1, 500),
    st.integers(1, 50_000),
    st.integers(-1, 10),
)


class Model:
    """The test's own exact bookkeeping, from the raw fills only."""

    def __init__(self) -> None:
        n = len(INSTRUMENTS)
        self.qty = [D(0)] * n
        self.signed_notional = [D(0)] * n  # Σ signed qty * price * multiplier
        self.buy_notional = [D(0)] * n
        self.sell_notional = [D(0)] * n
        self.fees = [D(0)] * n
        self.marks: list[Decimal | None] = [None] * n

    def expected_cash(self, portfolio: Portfolio) -> Decimal:
        cash = START
        for i, inst in enumerate(INSTRUMENTS):
            if inst.kind is InstrumentKind.PERPETUAL:
                cash += portfolio.positions[inst.id].realized_pnl - self.fees[i]
            else:
                cash += -self.signed_notional[i] - self.fees[i]
        return cash

    def expected_equity(self) -> Decimal:
        total = START
        for i, inst in enumerate(INSTRUMENTS):
            mark = self.marks[i]
            value = self.qty[i] * mark * inst.multiplier if mark is not None else D(0)
            total += value - self.signed_notional[i] - self.fees[i]
        return total

    def expected_gross(self) -> Decimal:
        return sum(
            (
                abs(self.qty[i] * m * inst.multiplier)
                for i, (inst, m) in enumerate(zip(INSTRUMENTS, self.marks, strict=True))
                if m is not None
            ),
            D(0),
        )


def _new_portfolio() -> Portfolio:
    portfolio = Portfolio(START)
    for inst in INSTRUMENTS:
        portfolio.register(inst)
    return portfolio


def _book(
    portfolio: Portfolio,
    model: Model,
    i: int,
    side: OrderSide,
    qty: Decimal,
    price: Decimal,
    fee: Decimal,
    seq: int,
) -> Decimal:
    inst = INSTRUMENTS[i]
    fill = Fill(f"o{seq}", inst.id, side, qty, price, fee, Liquidity.TAKER, seq)
    realized = portfolio.apply_fill(fill)
    notional = qty * price * inst.multiplier
    model.qty[i] += side.sign * qty
    model.signed_notional[i] += side.sign * notional
    if side is OrderSide.BUY:
        model.buy_notional[i] += notional
    else:
        model.sell_notional[i] += notional
    model.fees[i] += fee
    return realized


def _mark(portfolio: Portfolio, model: Model, i: int, price: Decimal) -> None:
    model.marks[i] = price
    portfolio.mark(INSTRUMENTS[i].id, float(price))


def _close(a: float, b: float, scale: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9 * scale)


def _check(portfolio: Portfolio, model: Model) -> None:
    scale = float(START) + sum(
        float(b + s) for b, s in zip(model.buy_notional, model.sell_notional, strict=True)
    )
    for i, inst in enumerate(INSTRUMENTS):
        pos = portfolio.position(inst.id)
        assert pos.qty == model.qty[i]
        assert pos.fees == model.fees[i]
        if pos.is_flat:
            # flat: realized is exactly what was sold minus what was bought
            assert pos.realized_pnl == model.sell_notional[i] - model.buy_notional[i]
            assert pos.cost_basis == 0
    assert portfolio.cash == model.expected_cash(portfolio)
    assert portfolio.total_fees == sum(model.fees, D(0))
    assert portfolio.realized_pnl == sum(
        (p.realized_pnl for p in portfolio.positions.values()), D(0)
    )
    equity = portfolio.equity()
    gross = portfolio.gross_exposure()
    assert _close(equity, float(model.expected_equity()), scale)
    assert _close(gross, float(model.expected_gross()), scale)
    both = portfolio.equity_and_exposure()
    assert _close(both[0], equity, scale)
    assert _close(both[1], gross, scale)
    # equity == cash + Σ position values, using the portfolio's own per-position values
    values = sum(
        portfolio.position_value(inst.id)
        for inst in INSTRUMENTS
        if not portfolio.position(inst.id).is_flat
    )
    assert _close(equity, float(portfolio.cash) + values, scale)


def _run(portfolio: Portfolio, model: Model, seq: list[Step]) -> None:
    for n, step in enumerate(seq):
        inst = INSTRUMENTS[step.inst]
        price = step.ticks * inst.tick_size
        if step.kind == "mark":
            _mark(portfolio, model, step.inst, price)
            _check(portfolio, model)
            continue
        held = model.qty[step.inst]
        side, qty = step.side, step.lots * inst.lot_size
        if step.kind in ("close", "flip") and held:
            side = OrderSide.SELL if held > 0 else OrderSide.BUY
            qty = abs(held) + (qty if step.kind == "flip" else 0)
        fee = max(step.fee_bps, 0) * qty * price * inst.multiplier / 10_000
        if step.fee_bps < 0:
            fee = -qty * price * inst.multiplier / 10_000  # a maker rebate
        _book(portfolio, model, step.inst, side, qty, price, fee, n)
        if model.marks[step.inst] is None or n % 2:
            _mark(portfolio, model, step.inst, price)
        _check(portfolio, model)


@PROPS
@given(seq=st.lists(steps, min_size=1, max_size=40))
def test_ledger_identities_hold_at_every_step(seq: list[Step]) -> None:
    portfolio, model = _new_portfolio(), Model()
    _run(portfolio, model, seq)
    assert len(portfolio.fills) == sum(1 for s in seq if s.kind != "mark")


@PROPS
@given(seq=st.lists(steps, max_size=30))
def test_sequence_ending_flat_realizes_sells_minus_buys(seq: list[Step]) -> None:
    portfolio, model = _new_portfolio(), Model()
    _run(portfolio, model, seq)
    for i in range(len(INSTRUMENTS)):  # close out everything at the last mark
        if model.qty[i]:
            side = OrderSide.SELL if model.qty[i] > 0 else OrderSide.BUY
            price = model.marks[i]
            assert price is not None
            _book(portfolio, model, i, side, abs(model.qty[i]), price, D(0), 10_000 + i)
    _check(portfolio, model)
    total_sells = sum(model.sell_notional, D(0))
    total_buys = sum(model.buy_notional, D(0))
    assert portfolio.realized_pnl == total_sells - total_buys
    assert portfolio.cash == START + total_sells - total_buys - portfolio.total_fees
    assert portfolio.equity() == float(portfolio.cash)
    assert portfolio.gross_exposure() == 0.0


@PROPS
@given(
    seq=st.lists(steps, max_size=20),
    i=st.integers(0, len(INSTRUMENTS) - 1),
    lots=st.integers(1, 1000),
    ticks=st.integers(1, 50_000),
    sell_first=st.booleans(),
)
def test_round_trip_at_unchanged_price_without_fees_changes_nothing(
    seq: list[Step], i: int, lots: int, ticks: int, sell_first: bool
) -> None:
    portfolio, model = _new_portfolio(), Model()
    _run(portfolio, model, seq)
    inst = INSTRUMENTS[i]
    price, qty = ticks * inst.tick_size, lots * inst.lot_size
    was_flat = model.qty[i] == 0
    _mark(portfolio, model, i, price)
    cash, equity, realized = portfolio.cash, portfolio.equity(), portfolio.realized_pnl
    first, second = (
        (OrderSide.SELL, OrderSide.BUY) if sell_first else (OrderSide.BUY, OrderSide.SELL)
    )
    _book(portfolio, model, i, first, qty, price, D(0), 90_000)
    _book(portfolio, model, i, second, qty, price, D(0), 90_001)
    _check(portfolio, model)
    scale = float(START) + float(sum(model.buy_notional, D(0)) + sum(model.sell_notional, D(0)))
    assert _close(portfolio.equity(), equity, scale)
    if was_flat:
        assert portfolio.cash == cash
        assert portfolio.realized_pnl == realized
        assert portfolio.position(inst.id).is_flat
    if inst.kind is not InstrumentKind.PERPETUAL:
        assert portfolio.cash == cash  # spot cash moves by notional only: -qp + qp


def test_worked_example_spot_and_perp() -> None:
    portfolio = _new_portfolio()
    spot, perp = INSTRUMENTS[1], INSTRUMENTS[3]  # AAPL equity, ES-PERP multiplier 50
    fills = [
        Fill("a", spot.id, OrderSide.BUY, D(10), D("100"), D("1"), Liquidity.TAKER, 1),
        Fill("b", perp.id, OrderSide.SELL, D(2), D("4000"), D("2"), Liquidity.TAKER, 1),
    ]
    for fill in fills:
        portfolio.apply_fill(fill)
    portfolio.mark(spot.id, 110.0)
    portfolio.mark(perp.id, 3990.0)
    # spot: cash -1000 - 1; perp: cash -2 (margined)
    assert portfolio.cash == START - D(1003)
    # spot value 10 * 110 = 1100; perp unrealized -2 * (3990 - 4000) * 50 = +1000
    assert portfolio.equity() == float(START) - 1003 + 1100 + 1000
    assert portfolio.gross_exposure() == 1100 + 2 * 3990 * 50
    realized = portfolio.apply_fill(
        Fill("c", perp.id, OrderSide.BUY, D(2), D("3990"), D("2"), Liquidity.TAKER, 2)
    )
    assert realized == D(1000)
    assert portfolio.cash == START - D(1003) + D(1000) - D(2)
    assert portfolio.traded_notional == D(1000) + D(400_000) + D(399_000)
