"""Portfolio rules: circuit breaker, stop-loss / take-profit, and target sizing limits."""

from __future__ import annotations

import math
import random

import pytest
from tests.risk._build import BTC, BUY, ETH, SELL, SOL, fill, portfolio, quiet, spot

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import OrderSide
from tradestack.portfolio.account import Portfolio
from tradestack.risk import KillSwitch, KillSwitchState, PortfolioRisk, RiskActionKind

XRP = InstrumentId("XRP/USDT")


def long_book(cash: float = 100_000, qty: float = 1000, price: float = 100) -> Portfolio:
    book = portfolio(cash, spot(BTC), spot(ETH))
    fill(book, BTC, BUY, qty, price)
    return book


# -- circuit breaker -------------------------------------------------------------------------
def test_breaker_fires_exactly_at_25_percent() -> None:
    book = long_book()  # all-in: cash 0, 1000 BTC at 100 -> equity 100k
    switch = KillSwitch()
    risk = PortfolioRisk(quiet(max_drawdown_fraction=0.25), kill_switch=switch)
    assert risk.evaluate(1, book) == []
    assert risk.peak_equity == 100_000
    book.mark(BTC, 75.1)  # 24.9 % down: not yet
    assert risk.evaluate(2, book) == []
    assert risk.drawdown == pytest.approx(0.249)
    assert switch.state is KillSwitchState.ACTIVE
    book.mark(BTC, 75.0)  # 25.0 %: fires
    [action] = risk.evaluate(3, book)
    assert action.kind is RiskActionKind.FLATTEN_ALL and action.halt
    assert action.rule == "drawdown_breaker" and action.instrument_id is None
    assert action.detail == ("circuit breaker: drawdown 25.00% ≥ 25% (equity 75,000, peak 100,000)")
    assert switch.state is KillSwitchState.HALTED
    assert switch.reason == "circuit breaker: drawdown 25.00% ≥ 25%"
    assert switch.changed_by == "risk:drawdown_breaker" and switch.changed_ts_ns == 3
    assert risk.actions.counts() == {"drawdown_breaker": 1}


def test_breaker_fires_once_and_rearms_on_resume_from_the_new_equity() -> None:
    book = long_book()
    switch = KillSwitch()
    risk = PortfolioRisk(quiet(max_drawdown_fraction=0.25), kill_switch=switch)
    risk.evaluate(1, book)
    book.mark(BTC, 70.0)
    assert len(risk.evaluate(2, book)) == 1
    book.mark(BTC, 60.0)
    assert risk.evaluate(3, book) == []  # tripped already; flattening is under way
    switch.resume("operator accepted the loss")
    assert risk.evaluate(4, book) == []
    assert risk.peak_equity == 60_000 and risk.drawdown == 0.0
    book.mark(BTC, 45.0)  # 25 % below the new baseline
    assert len(risk.evaluate(5, book)) == 1


def test_breaker_off_never_fires() -> None:
    book = long_book()
    risk = PortfolioRisk(quiet())
    risk.evaluate(1, book)
    book.mark(BTC, 1.0)
    assert risk.evaluate(2, book) == []
    assert risk.drawdown == pytest.approx(0.99)


# -- stop-loss / take-profit --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("side", "quiet_mark", "firing_mark", "text"),
    [
        (BUY, 95.01, 95.0, "long 10 entry 100 mark 95: unrealized -5.00% (≤ -5%)"),
        (SELL, 104.99, 105.0, "short -10 entry 100 mark 105: unrealized -5.00% (≤ -5%)"),
    ],
)
def test_stop_loss(side: OrderSide, quiet_mark: float, firing_mark: float, text: str) -> None:
    book = portfolio(100_000, spot(BTC))
    fill(book, BTC, side, 10, 100)
    risk = PortfolioRisk(quiet(stop_loss_fraction=0.05))
    book.mark(BTC, quiet_mark)
    assert risk.evaluate(1, book) == []
    book.mark(BTC, firing_mark)
    [action] = risk.evaluate(2, book)
    assert action.kind is RiskActionKind.FLATTEN and action.instrument_id == BTC
    assert action.rule == "stop_loss" and not action.halt
    assert action.detail == text
    assert risk.evaluate(3, book) == []  # once per entry
    assert risk.actions.counts() == {"stop_loss": 1}


@pytest.mark.parametrize(
    ("side", "quiet_mark", "firing_mark"), [(BUY, 109.99, 110.0), (SELL, 90.01, 90.0)]
)
def test_take_profit(side: OrderSide, quiet_mark: float, firing_mark: float) -> None:
    book = portfolio(100_000, spot(BTC))
    fill(book, BTC, side, 10, 100)
    risk = PortfolioRisk(quiet(take_profit_fraction=0.10))
    book.mark(BTC, quiet_mark)
    assert risk.evaluate(1, book) == []
    book.mark(BTC, firing_mark)
    [action] = risk.evaluate(2, book)
    assert action.rule == "take_profit" and action.instrument_id == BTC
    assert action.detail.endswith("unrealized +10.00% (≥ +10%)")


def test_stop_loss_fires_again_for_a_new_entry() -> None:
    book = portfolio(100_000, spot(BTC))
    fill(book, BTC, BUY, 10, 100)
    risk = PortfolioRisk(quiet(stop_loss_fraction=0.05))
    book.mark(BTC, 90)
    assert len(risk.evaluate(1, book)) == 1
    fill(book, BTC, SELL, 10, 90)  # flattened
    assert risk.evaluate(2, book) == []
    fill(book, BTC, BUY, 5, 90)  # new entry
    book.mark(BTC, 85)
    assert [a.rule for a in risk.evaluate(3, book)] == ["stop_loss"]
    assert risk.actions.counts() == {"stop_loss": 2}


# -- return statistics -----------------------------------------------------------------------
def _walk(seed: int, n: int, vol: float = 0.01) -> list[float]:
    rng = random.Random(seed)
    return [rng.gauss(0.0, vol) for _ in range(n)]


def _feed(risk: PortfolioRisk, inst: InstrumentId, returns: list[float]) -> None:
    price = 100.0
    risk.on_price(inst, 0, price)
    for ts, r in enumerate(returns, start=1):
        price *= math.exp(r)
        risk.on_price(inst, ts, price)


def _corr_risk(**overrides: object) -> PortfolioRisk:
    return PortfolioRisk(quiet(correlation_aware=True, **overrides))


def test_correlated_same_side_holding_shrinks_the_target() -> None:
    risk = _corr_risk()
    book = portfolio(1_000_000, spot(BTC), spot(ETH), spot(SOL))
    common = _walk(1, 60)
    _feed(risk, BTC, common)
    _feed(risk, ETH, common)
    _feed(risk, SOL, common)
    assert risk.correlation(BTC, ETH) == pytest.approx(1.0)
    target, rules = risk.scale_target(BTC, 10_000, portfolio=book, targets={ETH: 5_000})
    assert rules == ["correlation"]
    assert target == pytest.approx(10_000 / math.sqrt(2))
    target, _ = risk.scale_target(BTC, 10_000, portfolio=book, targets={ETH: 1, SOL: 1})
    assert target == pytest.approx(10_000 / math.sqrt(3))
    fill(book, ETH, BUY, 10, 100)  # without targets, the positions are the holdings
    book.mark(ETH, 100)
    assert risk.scale_target(BTC, 10_000, portfolio=book)[1] == ["correlation"]


def test_correlation_ignores_opposite_side_and_uncorrelated_holdings() -> None:
    risk = _corr_risk()
    book = portfolio(1_000_000, spot(BTC), spot(ETH), spot(SOL))
    _feed(risk, BTC, _walk(1, 60))
    _feed(risk, ETH, _walk(1, 60))
    _feed(risk, SOL, _walk(2, 60))
    rho = risk.correlation(BTC, SOL)
    assert rho is not None and abs(rho) < 0.3
    assert risk.scale_target(BTC, 10_000, portfolio=book, targets={ETH: -5_000}) == (10_000, [])
    assert risk.scale_target(BTC, 10_000, portfolio=book, targets={SOL: 5_000}) == (10_000, [])


def test_correlation_threshold_is_strict() -> None:
    a, b = _walk(1, 60), _walk(2, 60)
    mixed = [x + 0.8 * y for x, y in zip(a, b, strict=True)]
    probe = _corr_risk()
    _feed(probe, BTC, a)
    _feed(probe, ETH, mixed)
    rho = probe.correlation(BTC, ETH)
    assert rho is not None and 0.5 < rho < 0.9
    book = portfolio(1_000_000, spot(BTC), spot(ETH))
    for threshold, expected in ((rho, 10_000.0), (rho - 1e-6, 10_000 / math.sqrt(1 + rho))):
        risk = _corr_risk(correlation_threshold=threshold)
        _feed(risk, BTC, a)
        _feed(risk, ETH, mixed)
        target, _ = risk.scale_target(BTC, 10_000, portfolio=book, targets={ETH: 1_000})
        assert target == pytest.approx(expected)


def test_correlation_needs_enough_paired_returns() -> None:
    risk = _corr_risk()
    _feed(risk, BTC, _walk(1, 60))
    _feed(risk, ETH, _walk(1, 29))  # fewer than correlation_window // 2 pairs
    assert risk.correlation(BTC, ETH) is None
    assert risk.correlation(BTC, BTC) == 1.0
    assert risk.correlation(BTC, XRP) is None


def _regime_returns(calm: int, wild: int) -> list[float]:
    return [0.001 * (-1) ** k for k in range(calm)] + [0.01 * (-1) ** k for k in range(wild)]


def test_volatility_regime_high_halves_the_target() -> None:
    risk = PortfolioRisk(quiet(vol_regime_ratio=1.5))
    book = portfolio(1_000_000, spot(BTC))
    _feed(risk, BTC, _regime_returns(80, 20))
    ratio = risk.volatility_ratio(BTC)
    assert ratio is not None and ratio > 1.5
    assert risk.regime(BTC) == "high"
    assert risk.scale_target(BTC, -10_000, portfolio=book) == (-5_000, ["vol_regime"])


def test_volatility_regime_normal_and_strict_threshold() -> None:
    calm = PortfolioRisk(quiet(vol_regime_ratio=1.5))
    _feed(calm, BTC, _regime_returns(100, 0))
    assert calm.regime(BTC) == "normal"
    short = PortfolioRisk(quiet(vol_regime_ratio=1.5))
    _feed(short, BTC, _regime_returns(80, 19))  # 99 returns: not enough history
    assert short.regime(BTC) == "normal" and short.volatility_ratio(BTC) is None
    probe = PortfolioRisk(quiet())
    _feed(probe, BTC, _regime_returns(80, 20))
    ratio = probe.volatility_ratio(BTC)
    assert ratio is not None
    at_limit = PortfolioRisk(quiet(vol_regime_ratio=ratio))
    _feed(at_limit, BTC, _regime_returns(80, 20))
    assert at_limit.regime(BTC) == "normal"  # only a ratio above the limit is "high"


# -- gross exposure and concentration ----------------------------------------------------------
def test_gross_exposure_caps_the_target() -> None:
    risk = PortfolioRisk(quiet(max_gross_exposure_fraction=1.0))
    book = portfolio(100_000, spot(BTC), spot(ETH))
    assert risk.scale_target(BTC, 50_000, portfolio=book, targets={ETH: -60_000}) == (
        40_000,
        ["gross_exposure"],
    )
    assert risk.scale_target(BTC, -40_000, portfolio=book, targets={ETH: 60_000}) == (-40_000, [])
    fill(book, ETH, BUY, 600, 100)  # the same from a real position: equity stays 100k
    assert risk.scale_target(BTC, 50_000, portfolio=book) == (40_000, ["gross_exposure"])
    # this instrument's own target replaces its position; other targets replace theirs
    assert risk.scale_target(BTC, 50_000, portfolio=book, targets={ETH: 0.0}) == (50_000, [])


def test_concentration_caps_one_instruments_share() -> None:
    risk = PortfolioRisk(quiet(max_concentration_fraction=0.5))
    book = portfolio(100_000, spot(BTC), spot(ETH))
    assert risk.scale_target(BTC, 40_000, portfolio=book, targets={ETH: 30_000}) == (
        30_000,
        ["concentration"],
    )
    assert risk.scale_target(BTC, 30_000, portfolio=book, targets={ETH: 30_000}) == (30_000, [])
    # one instrument alone: no concentration to speak of
    assert risk.scale_target(BTC, 40_000, portfolio=book) == (40_000, [])


def test_rules_apply_in_order_and_are_counted() -> None:
    risk = PortfolioRisk(
        quiet(vol_regime_ratio=1.5, max_gross_exposure_fraction=1.0, max_concentration_fraction=0.5)
    )
    book = portfolio(100_000, spot(BTC), spot(ETH))
    _feed(risk, BTC, _regime_returns(80, 20))
    target, rules = risk.scale_target(BTC, 200_000, portfolio=book, targets={ETH: 20_000})
    assert rules == ["vol_regime", "gross_exposure", "concentration"]
    assert target == 20_000
    assert risk.scalings == {"vol_regime": 1, "gross_exposure": 1, "concentration": 1}
    assert risk.scale_target(BTC, 0.0, portfolio=book) == (0.0, [])


def test_the_breaker_rearms_on_resume_only_not_on_reducing() -> None:
    book = portfolio(100_000, spot(BTC), spot(ETH))
    fill(book, BTC, BUY, 1000, 100)
    switch = KillSwitch()
    risk = PortfolioRisk(quiet(max_drawdown_fraction=0.25), kill_switch=switch)
    risk.evaluate(1, book)
    book.mark(BTC, 74.0)
    assert [a.rule for a in risk.evaluate(2, book)] == ["drawdown_breaker"]
    switch.reduce("only reduce for now")
    risk.evaluate(3, book)
    assert risk.breaker_tripped and risk.peak_equity == 100_000
    switch.resume("back to normal")
    risk.evaluate(4, book)
    assert not risk.breaker_tripped and risk.peak_equity == book.equity()
