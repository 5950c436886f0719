"""RiskManager: one facade over the checks, the portfolio rules and the kill switch."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from tests.risk._build import BTC, BUY, SELL, fill, order, portfolio, spot, working

from tradestack.core.orders import Fill, Liquidity, Order
from tradestack.risk import Denial, KillSwitch, KillSwitchState, RiskConfig, RiskManager


def test_kill_switch_is_built_from_the_config_paths(tmp_path: Path) -> None:
    state, flag = tmp_path / "ks.json", tmp_path / "KILL"
    config = RiskConfig(kill_switch_state_path=str(state), kill_switch_flag_path=str(flag))
    manager = RiskManager(config)
    assert manager.kill_switch.state_path == state and manager.kill_switch.flag_path == flag
    manager.kill_switch.halt("test")
    assert RiskManager(config).kill_switch.state is KillSwitchState.HALTED


def test_one_kill_switch_and_one_log_for_every_part() -> None:
    switch = KillSwitch()
    manager = RiskManager(RiskConfig(), kill_switch=switch)
    assert manager.pretrade.kill_switch is switch and manager.portfolio_risk.kill_switch is switch
    assert manager.pretrade.denials is manager.denials
    assert manager.portfolio_risk.actions is manager.actions


def test_summary_after_a_breaker_trip() -> None:
    inst = spot()
    book = portfolio(100_000, inst)
    fill(book, BTC, BUY, 1000, 100)
    manager = RiskManager(RiskConfig(max_order_qty=10.0, vol_regime_ratio=None))
    kwargs = {"instrument": inst, "portfolio": book, "open_orders": ()}
    assert manager.check_order(order(SELL, 5), now_ns=1, mid=100, **kwargs) is None
    denial = manager.check_order(order(BUY, 11), now_ns=2, mid=100, **kwargs)
    assert denial is not None and denial.rule == "max_order_qty"
    for ts, price in enumerate([100.0, 101.0, 99.0]):
        manager.on_price(BTC, ts, price)
    assert manager.regime(BTC) == "normal"
    assert manager.evaluate(3, book) == []
    book.mark(BTC, 70.0)
    [action] = manager.evaluate(4, book)
    assert action.rule == "drawdown_breaker"
    flatten = order(SELL, 1000)
    assert manager.check_order(flatten, now_ns=5, mid=70, flatten=True, **kwargs) is None
    halted = manager.check_order(order(SELL, 1), now_ns=6, mid=70, **kwargs)
    assert halted is not None and halted.rule == "kill_switch_halted"
    target, rules = manager.scale_target(BTC, 200_000, portfolio=book)
    assert rules == ["gross_exposure"] and target == 70_000
    summary = manager.summary()
    assert summary.pop("drawdown") == pytest.approx(0.3)
    assert summary == {
        "denials": {"max_order_qty": 1, "kill_switch_halted": 1},
        "actions": {"drawdown_breaker": 1},
        "scalings": {"gross_exposure": 1},
        "kill_switch": "halted",
        "kill_switch_reason": "circuit breaker: drawdown 30.00% ≥ 25%",
        "peak_equity": 100_000.0,
    }


def test_summary_before_anything_happened() -> None:
    summary = RiskManager(RiskConfig()).summary()
    assert summary["denials"] == {} and summary["actions"] == {}
    assert summary["kill_switch"] == "active" and summary["peak_equity"] is None
    assert summary["drawdown"] == 0.0


_STEP = st.tuples(
    st.sampled_from([BUY, SELL]),
    st.integers(1, 6),  # qty
    st.one_of(st.none(), st.integers(-800, 800)),  # limit price offset in bps, None = market
    st.integers(0, 200_000_000),  # ns since the previous order
    st.sampled_from(["", "", "", "", "halt", "reduce", "resume"]),
    st.sampled_from([False, False, False, True]),  # flatten
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_STEP, max_size=40))
def test_denial_log_counts_match_the_check_results(
    steps: list[tuple[object, int, int | None, int, str, bool]],
) -> None:
    inst = spot()
    book = portfolio(2_000, inst)
    fill(book, BTC, BUY, 4, 100)
    config = RiskConfig(max_order_qty=5.0, max_position_qty=9.0, max_orders_per_window=6)
    manager = RiskManager(config)
    results: list[Denial | None] = []
    working_orders: list[Order] = []
    now = 0
    for side, qty, offset, dt, switch, flatten in steps:
        now += dt
        if switch:
            getattr(manager.kill_switch, switch)(f"step at {now}")
        price = None if offset is None else round(100 * (1 + offset / 1e4), 2)
        o = order(side, qty, price=price)  # type: ignore[arg-type]
        result = manager.check_order(
            o,
            now_ns=now,
            instrument=inst,
            portfolio=book,
            mid=100.0,
            open_orders=working_orders,
            flatten=flatten,
        )
        results.append(result)
        if result is None:
            working(o)
            if price is None:  # a market order fills at once
                done = Fill(
                    o.client_order_id,
                    BTC,
                    o.side,
                    o.qty,
                    Decimal(100),
                    Decimal(0),
                    Liquidity.TAKER,
                    now,
                )
                o.apply(done)
                book.apply_fill(done)
            else:
                working_orders.append(o)
    denials = [r for r in results if r is not None]
    for d in denials:
        event(d.rule)
    assert len(manager.denials) == len(denials)
    assert sum(manager.denials.counts().values()) == len(denials)
    assert manager.denials.counts() == dict(Counter(d.rule for d in denials))
    assert list(manager.denials) == denials
    assert manager.summary()["denials"] == manager.denials.counts()
