"""Pre-trade checks: each rule fires just past its limit and stays quiet just inside it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from tests.risk._build import (
    BTC,
    BUY,
    ETH,
    PERP,
    SELL,
    cancel,
    fill,
    order,
    perp,
    portfolio,
    quiet,
    spot,
    working,
)

from tradestack.core.instruments import Instrument
from tradestack.core.orders import Order
from tradestack.portfolio.account import Portfolio
from tradestack.risk import Denial, KillSwitch, KillSwitchState, PreTradeRisk, RiskConfig

SECOND = 1_000_000_000


def check(
    risk: PreTradeRisk,
    o: Order,
    book: Portfolio,
    inst: Instrument,
    *,
    mid: float = 100.0,
    now: int = 0,
    open_orders: Sequence[Order] = (),
    flatten: bool = False,
) -> Denial | None:
    return risk.check(
        o,
        now_ns=now,
        instrument=inst,
        portfolio=book,
        mid=mid,
        open_orders=open_orders,
        flatten=flatten,
    )


def denied(result: Denial | None, rule: str) -> Denial:
    assert result is not None, f"expected a {rule} denial, the order passed"
    assert result.rule == rule, result
    return result


@pytest.fixture
def inst() -> Instrument:
    return spot()


@pytest.fixture
def book(inst: Instrument) -> Portfolio:
    return portfolio(1_000_000, inst)


# -- max order notional / qty ----------------------------------------------------------------
def test_max_order_notional_fires_past_the_limit(inst: Instrument, book: Portfolio) -> None:
    risk = PreTradeRisk(quiet(max_order_notional=10_000.0))
    d = denied(check(risk, order(BUY, 100.001), book, inst), "max_order_notional")
    assert d.detail == "order notional 10,000.1 (100.001 x 100 x 1) exceeds 10,000"
    assert d.instrument_id == BTC and d.client_order_id is not None and d.ts_ns == 0
    d = denied(check(risk, order(SELL, 1, price=10_000.01), book, inst), "max_order_notional")
    assert "10,000.01" in d.detail


def test_max_order_notional_passes_at_the_limit(inst: Instrument, book: Portfolio) -> None:
    risk = PreTradeRisk(quiet(max_order_notional=10_000.0))
    assert check(risk, order(BUY, 100), book, inst) is None  # market: valued at the mid
    assert check(risk, order(SELL, 1, price=10_000), book, inst) is None


def test_max_order_notional_counts_the_multiplier() -> None:
    inst = perp(multiplier="10")
    book = portfolio(1_000_000, inst)
    risk = PreTradeRisk(quiet(max_order_notional=10_000.0))
    assert check(risk, order(BUY, 1, PERP, price=1000), book, inst, mid=1000) is None
    d = denied(
        check(risk, order(BUY, 1, PERP, price=1001), book, inst, mid=1000), "max_order_notional"
    )
    assert "10,010 (1 x 1,001 x 10)" in d.detail


def test_max_order_qty(inst: Instrument, book: Portfolio) -> None:
    risk = PreTradeRisk(quiet(max_order_qty=5.0))
    assert check(risk, order(BUY, 5), book, inst) is None
    d = denied(check(risk, order(BUY, 5.001), book, inst), "max_order_qty")
    assert d.detail == "order qty 5.001 exceeds 5"


# -- price collar ------------------------------------------------------------------------------
def test_price_collar_fires_outside_the_band(inst: Instrument, book: Portfolio) -> None:
    risk = PreTradeRisk(quiet(price_collar_bps=500.0))
    d = denied(check(risk, order(BUY, 1, price=105.01), book, inst), "price_collar")
    assert d.detail == "limit price 105.01 is 501.0 bps from mid 100 (collar 500 bps)"
    d = denied(check(risk, order(SELL, 1, trigger=94.99), book, inst), "price_collar")
    assert "stop trigger price 94.99 is 501.0 bps" in d.detail
    d = denied(check(risk, order(SELL, 1, price=96, trigger=80), book, inst), "price_collar")
    assert "trigger price 80 is 2000.0 bps" in d.detail


def test_price_collar_passes_on_the_band_edge(inst: Instrument, book: Portfolio) -> None:
    risk = PreTradeRisk(quiet(price_collar_bps=500.0))
    assert check(risk, order(BUY, 1, price=105), book, inst) is None
    assert check(risk, order(SELL, 1, price=95), book, inst) is None
    assert check(risk, order(SELL, 1, trigger=95.5), book, inst) is None
    assert check(risk, order(BUY, 1), book, inst) is None  # a market order has no price to collar


def test_no_valid_mid_denies(inst: Instrument, book: Portfolio) -> None:
    risk = PreTradeRisk(quiet())
    d = denied(check(risk, order(BUY, 1), book, inst, mid=float("nan")), "no_reference_price")
    assert "nan" in d.detail


# -- max position --------------------------------------------------------------------------------
def test_max_position_qty_counts_position_and_same_side_open_orders(
    inst: Instrument, book: Portfolio
) -> None:
    fill(book, BTC, BUY, 8, 100)
    risk = PreTradeRisk(quiet(max_position_qty=10.0))
    resting = [working(order(BUY, 1, price=99)), working(order(SELL, 3, price=101))]
    d = denied(check(risk, order(BUY, 1.001), book, inst, open_orders=resting), "max_position")
    assert d.detail == "position 8 + open buy 1 + this 1.001 -> 10.001 exceeds max_position_qty 10"
    assert check(risk, order(BUY, 1), book, inst, open_orders=resting) is None


def test_max_position_qty_for_a_short(inst: Instrument, book: Portfolio) -> None:
    risk = PreTradeRisk(quiet(max_position_qty=10.0))
    assert check(risk, order(SELL, 10), book, inst) is None
    d = denied(check(risk, order(SELL, 10.5), book, inst), "max_position")
    assert "-> -10.5" in d.detail


def test_max_position_notional(inst: Instrument, book: Portfolio) -> None:
    fill(book, BTC, BUY, 5, 100)
    risk = PreTradeRisk(quiet(max_position_notional=1_000.0))
    assert check(risk, order(BUY, 5), book, inst) is None
    d = denied(check(risk, order(BUY, 5.01), book, inst), "max_position")
    assert "notional 1,001 at mid 100 exceeds max_position_notional 1,000" in d.detail


# -- gross exposure ------------------------------------------------------------------------------
def test_gross_exposure_counts_every_position(inst: Instrument) -> None:
    eth = spot(ETH)
    book = portfolio(100_000, inst, eth)
    fill(book, ETH, BUY, 300, 100)  # 30k of ETH; equity stays 100k
    risk = PreTradeRisk(quiet(max_gross_exposure_fraction=1.0))
    assert check(risk, order(BUY, 700), book, inst) is None
    d = denied(check(risk, order(BUY, 700.01), book, inst), "gross_exposure")
    assert d.detail == "gross exposure after fill 100,001 exceeds 1 x equity = 100,000"


# -- buying power --------------------------------------------------------------------------------
def test_spot_buy_needs_cash_net_of_open_buys() -> None:
    inst = spot()
    book = portfolio(10_000, inst)
    risk = PreTradeRisk(quiet(check_buying_power=True))
    resting = [working(order(BUY, 20, price=100))]  # reserves 2,000
    assert check(risk, order(BUY, 80), book, inst, open_orders=resting) is None
    d = denied(check(risk, order(BUY, 80.01), book, inst, open_orders=resting), "buying_power")
    assert d.detail == (
        "buy needs cash 8,001 (notional 8,001 / leverage 1 + fees) but only 8,000 is free "
        "(cash 10,000 - open buys 2,000)"
    )


def test_spot_buy_counts_the_taker_fee() -> None:
    inst = spot(taker_fee_bps="10")
    book = portfolio(10_010, inst)
    risk = PreTradeRisk(quiet(check_buying_power=True))
    assert check(risk, order(BUY, 100), book, inst) is None
    denied(check(risk, order(BUY, 100.01), book, inst), "buying_power")


def test_perpetual_margin_must_fit_in_free_equity() -> None:
    inst = perp()
    book = portfolio(10_000, inst)
    fill(book, PERP, BUY, 100, 100)  # 10k notional, 2k margin at 5x
    risk = PreTradeRisk(quiet(check_buying_power=True, leverage=5.0))
    assert check(risk, order(BUY, 400, PERP), book, inst) is None  # 8k margin: exactly what is free
    d = denied(check(risk, order(SELL, 500.01, PERP, price=100), book, inst), "buying_power")
    assert "margin 8,000.2 (notional 40,001 / leverage 5)" in d.detail
    assert "free equity 8,000 (equity 10,000 - margin in use 2,000)" in d.detail


# -- reducing orders always get out ----------------------------------------------------------
def test_reducing_orders_skip_size_position_and_buying_power_limits() -> None:
    inst = spot()
    book = portfolio(10_000, inst)
    fill(book, BTC, BUY, 100, 100)  # cash 0, position 10k
    risk = PreTradeRisk(
        quiet(
            max_order_notional=100.0,
            max_order_qty=1.0,
            max_position_qty=1.0,
            max_gross_exposure_fraction=0.1,
            check_buying_power=True,
        )
    )
    assert check(risk, order(SELL, 100), book, inst) is None
    denied(check(risk, order(BUY, 1.5), book, inst), "max_order_notional")


def test_an_order_that_flips_the_position_is_not_reducing() -> None:
    inst = spot()
    book = portfolio(10_000, inst)
    fill(book, BTC, BUY, 10, 100)
    risk = PreTradeRisk(quiet(max_position_qty=5.0))
    assert check(risk, order(SELL, 15), book, inst) is None  # ends short 5: inside the limit
    denied(check(risk, order(SELL, 15.1), book, inst), "max_position")


# -- duplicate orders ------------------------------------------------------------------------
def test_duplicate_order_within_the_window_is_denied(inst: Instrument, book: Portfolio) -> None:
    risk = PreTradeRisk(quiet())
    first = order(BUY, 1, price=99)
    assert check(risk, first, book, inst, now=0) is None
    working(first)
    d = denied(
        check(risk, order(BUY, 1, price=99), book, inst, now=SECOND // 2, open_orders=[first]),
        "duplicate_order",
    )
    assert d.detail == (
        f"same buy 1 limit as {first.client_order_id} sent 500 ms ago, still open (window 1000 ms)"
    )


def test_duplicate_rule_stays_quiet_when_anything_differs(
    inst: Instrument, book: Portfolio
) -> None:
    risk = PreTradeRisk(quiet())
    first = working(order(BUY, 1, price=99))
    assert check(risk, first, book, inst, now=0) is None
    assert check(risk, order(BUY, 1, price=98), book, inst, now=1) is None  # other price
    assert check(risk, order(SELL, 1, price=99), book, inst, now=2) is None  # other side
    assert check(risk, order(BUY, 2, price=99), book, inst, now=3) is None  # other qty
    # the same order once the window has passed
    assert check(risk, order(BUY, 1, price=99), book, inst, now=SECOND) is None


def test_duplicate_of_a_closed_order_passes(inst: Instrument, book: Portfolio) -> None:
    risk = PreTradeRisk(quiet())
    first = working(order(BUY, 1, price=99))
    assert check(risk, first, book, inst, now=0) is None
    cancel(first)
    assert check(risk, order(BUY, 1, price=99), book, inst, now=10) is None


# -- order rate ------------------------------------------------------------------------------
def test_order_rate_limit(inst: Instrument, book: Portfolio) -> None:
    risk = PreTradeRisk(quiet(max_orders_per_window=3))
    for k in range(3):  # just inside: the third order in the window passes
        assert check(risk, order(BUY, k + 1), book, inst, now=k) is None
    d = denied(check(risk, order(BUY, 4), book, inst, now=SECOND - 1), "order_rate")
    assert d.detail == "3 orders sent in the last 1000 ms (limit 3)"
    # a denied order is not counted; once the first order leaves the window there is room again
    assert check(risk, order(BUY, 5), book, inst, now=SECOND) is None


# -- kill switch -----------------------------------------------------------------------------
def test_halted_denies_everything_but_a_risk_flatten(inst: Instrument, book: Portfolio) -> None:
    fill(book, BTC, BUY, 10, 100)
    switch = KillSwitch()
    switch.halt("operator says stop")
    risk = PreTradeRisk(quiet(), switch)
    d = denied(check(risk, order(BUY, 1), book, inst), "kill_switch_halted")
    assert d.detail == "trading halted: operator says stop"
    denied(check(risk, order(SELL, 10), book, inst), "kill_switch_halted")  # even reducing
    assert check(risk, order(SELL, 10), book, inst, flatten=True) is None


def test_a_flatten_that_does_not_close_is_denied(inst: Instrument, book: Portfolio) -> None:
    fill(book, BTC, BUY, 10, 100)
    risk = PreTradeRisk(quiet())
    d = denied(check(risk, order(SELL, 11), book, inst, flatten=True), "invalid_flatten")
    assert d.detail == "flatten order sell 11 does not close position 10"
    denied(check(risk, order(BUY, 1), book, inst, flatten=True), "invalid_flatten")


def test_reducing_state_lets_reducing_orders_through(inst: Instrument, book: Portfolio) -> None:
    fill(book, BTC, BUY, 10, 100)
    switch = KillSwitch()
    switch.reduce("de-risk")
    risk = PreTradeRisk(quiet(), switch)
    assert check(risk, order(SELL, 4), book, inst, now=1) is None
    assert check(risk, order(SELL, 10, reduce_only=True), book, inst, now=2) is None
    resting = [working(order(SELL, 8, price=101))]
    assert check(risk, order(SELL, 2), book, inst, now=3, open_orders=resting) is None


def test_reducing_state_denies_increasing_orders(inst: Instrument, book: Portfolio) -> None:
    fill(book, BTC, BUY, 10, 100)
    switch = KillSwitch()
    switch.reduce("de-risk")
    risk = PreTradeRisk(quiet(), switch)
    d = denied(check(risk, order(BUY, 1), book, inst), "kill_switch_reducing")
    assert d.detail == (
        "only reducing orders allowed (de-risk); position 10 + open buy 0 + this 1 -> 11"
    )
    denied(check(risk, order(SELL, 11), book, inst), "kill_switch_reducing")  # flips short
    resting = [working(order(SELL, 8, price=101))]
    d = denied(check(risk, order(SELL, 4), book, inst, open_orders=resting), "kill_switch_reducing")
    assert "open sell 8 + this 4 -> -2" in d.detail


def test_flag_written_between_two_orders_blocks_the_second(
    tmp_path: Path, inst: Instrument, book: Portfolio
) -> None:
    flag = tmp_path / "KILL"
    risk = PreTradeRisk(quiet(), KillSwitch(flag_path=flag))
    assert check(risk, order(BUY, 1), book, inst, now=5) is None
    flag.write_text("HALT\n")
    d = denied(check(risk, order(BUY, 2), book, inst, now=5), "kill_switch_halted")
    assert f"flag {flag}: HALT" in d.detail
    assert risk.kill_switch.state is KillSwitchState.HALTED


def test_denials_are_recorded_and_passes_are_not(inst: Instrument, book: Portfolio) -> None:
    risk = PreTradeRisk(RiskConfig(max_order_qty=1.0))
    assert check(risk, order(BUY, 1), book, inst) is None
    denied(check(risk, order(BUY, 2), book, inst), "max_order_qty")
    assert risk.denials.counts() == {"max_order_qty": 1}


def test_reducing_is_decided_on_exact_quantities(inst: Instrument, book: Portfolio) -> None:
    fill(book, BTC, BUY, 0.1, 100)
    fill(book, BTC, BUY, 0.2, 100)  # 0.1 + 0.2 is 0.30000000000000004 in floats
    switch = KillSwitch()
    switch.reduce("de-risk")
    risk = PreTradeRisk(quiet(), switch)
    assert check(risk, order(SELL, 0.3), book, inst) is None
    assert check(risk, order(SELL, 0.3), book, inst, flatten=True) is None
