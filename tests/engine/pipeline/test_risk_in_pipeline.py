"""The risk layer inside a pipeline run: the circuit breaker flattens on the bar where the
drawdown limit is crossed, the kill switch blocks orders within the same event, stop-loss and
pre-trade denials are logged by rule, a halted state survives a restart."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import OrderStatus
from tradestack.engine.backtest import BacktestResult
from tradestack.engine.config import BacktestConfig
from tradestack.engine.loading import build_engine
from tradestack.engine.pipeline.strategy import FLATTEN_TAG, PipelineStrategy

DAY_NS = 86_400 * 10**9


def write_bars(path: Path, closes: list[float]) -> None:
    lines = ["date,open,high,low,close,volume"]
    start = np.datetime64("2020-01-01")
    prev = closes[0]
    for i, c in enumerate(closes):
        hi, lo = max(prev, c) * 1.001, min(prev, c) * 0.999
        lines.append(f"{start + i},{prev},{hi},{lo},{c},1000")
        prev = c
    path.write_text("\n".join(lines) + "\n")


def config(paths: dict[str, Path], risk: dict[str, Any], **pipeline: Any) -> dict[str, Any]:
    """Long when the 3-bar mean is above the 6-bar mean, sized at the whole equity."""
    return {
        "data": [{"path": str(p), "instrument": name} for name, p in paths.items()],
        "starting_cash": 100_000,
        "pipeline": {
            "train_fraction": 0.3,
            "features": {
                "fast": {"kind": "sma", "period": 3},
                "slow": {"kind": "sma", "period": 6},
                "vol": {"kind": "rolling_volatility", "period": 5},
            },
            "alphas": {
                "momentum": {
                    "kind": "ma_momentum",
                    "features": ["fast", "slow"],
                    "params": {"scale": 0.001},
                }
            },
            "ensemble": {"method": "fixed"},
            "volatility": "vol",
            "sizing": {
                "method": "fixed_fraction",
                "fraction": 1.0,
                "max_position_fraction": 1.0,
                "allow_short": False,
            },
            "risk": {
                "stop_loss_fraction": None,
                "take_profit_fraction": None,
                "vol_regime_ratio": None,
                "max_gross_exposure_fraction": 2.0,
                "price_collar_bps": None,
                **risk,
            },
            **pipeline,
        },
    }


def run(raw: dict[str, Any], base: Path) -> BacktestResult:
    engine = build_engine(BacktestConfig.model_validate(raw), base)
    return engine.run()


RISING = [100.0 + i for i in range(30)]


def test_circuit_breaker_flattens_on_the_bar_that_crosses_the_limit(tmp_path: Path) -> None:
    # fully long through the rise; bar 30 falls 30% and takes equity below 75% of its peak
    closes = [*RISING, 129.0 * 0.7, 91.0, 92.0]
    write_bars(tmp_path / "a.csv", closes)
    result = run(config({"A": tmp_path / "a.csv"}, {"max_drawdown_fraction": 0.25}), tmp_path)
    strategy = result.strategy
    assert isinstance(strategy, PipelineStrategy)
    flatten = [o for o in result.orders if o.tag == FLATTEN_TAG]
    assert len(flatten) == 1
    crossing_bar = int(np.datetime64("2020-01-01", "ns").astype(np.int64)) + 30 * DAY_NS
    assert flatten[0].ts_init_ns == crossing_bar
    assert flatten[0].status is OrderStatus.FILLED
    summary = strategy.risk.summary()
    assert summary["actions"] == {"drawdown_breaker": 1}
    assert summary["kill_switch"] == "halted"
    # equity at the previous bar's close was still inside the limit
    ts = result.ts_ns.tolist()
    before = result.equity[ts.index(crossing_bar - DAY_NS)]
    assert before > 0.75 * max(result.equity[: ts.index(crossing_bar)])
    # halted: nothing but the flatten after the crossing bar
    assert all(o.ts_init_ns <= crossing_bar for o in result.orders)
    assert result.portfolio.position(InstrumentId("A")).qty == 0


def test_circuit_breaker_stays_quiet_inside_the_limit(tmp_path: Path) -> None:
    closes = [*RISING, 129.0 * 0.8, 104.0, 105.0]  # a 20% fall: drawdown stays under 25%
    write_bars(tmp_path / "a.csv", closes)
    result = run(config({"A": tmp_path / "a.csv"}, {"max_drawdown_fraction": 0.25}), tmp_path)
    assert not [o for o in result.orders if o.tag == FLATTEN_TAG]
    assert result.strategy.risk.summary()["kill_switch"] == "active"  # type: ignore[attr-defined]


def test_stop_loss_flattens_one_position(tmp_path: Path) -> None:
    closes = [*RISING, 129.0 * 0.8, 104.0, 105.0]  # 20% under the top, ~8% under entry
    write_bars(tmp_path / "a.csv", closes)
    raw = config({"A": tmp_path / "a.csv"}, {"stop_loss_fraction": 0.05})
    result = run(raw, tmp_path)
    summary = result.strategy.risk.summary()  # type: ignore[attr-defined]
    assert summary["actions"].get("stop_loss", 0) >= 1
    assert summary["kill_switch"] == "active"
    assert [o for o in result.orders if o.tag == FLATTEN_TAG]


def _two_instruments_with_flag(
    tmp_path: Path, flag_text: str, before_symbol: str | None = None
) -> tuple[Any, Path]:
    """Two instruments decide on the same bars; a wrapper around the pre-trade check writes
    the kill-switch flag right after A's first order was checked (or, with ``before_symbol``,
    just before that symbol's first order is checked: after its decision was taken)."""
    for name in ("A", "B"):
        write_bars(tmp_path / f"{name}.csv", RISING)
    flag = tmp_path / "KILL"
    raw = config(
        {"A": tmp_path / "A.csv", "B": tmp_path / "B.csv"},
        {"kill_switch_flag_path": str(flag), "max_gross_exposure_fraction": 4.0},
        sizing={"method": "fixed_fraction", "fraction": 0.4, "max_position_fraction": 0.5},
    )
    engine = build_engine(BacktestConfig.model_validate(raw), tmp_path)
    strategy = engine.strategy
    assert isinstance(strategy, PipelineStrategy)
    original = strategy._pre_trade

    def pre_trade_then_flag(order: Any) -> str | None:
        if order.instrument_id.symbol == before_symbol and not flag.exists():
            flag.write_text(flag_text)
        verdict = original(order)
        if before_symbol is None and order.instrument_id.symbol == "A" and not flag.exists():
            flag.write_text(flag_text)  # the operator pulls the switch mid-event
        return verdict

    strategy._pre_trade = pre_trade_then_flag  # type: ignore[method-assign]
    return engine, flag


def _orders_by_symbol(strategy: PipelineStrategy, symbol: str) -> list[Any]:
    assert strategy._ctx is not None
    return [o for o in strategy._ctx.orders.values() if o.instrument_id.symbol == symbol]


def test_a_halt_stops_the_next_instrument_within_the_same_event(tmp_path: Path) -> None:
    engine, _ = _two_instruments_with_flag(tmp_path, "halt\n")
    result = engine.run()
    strategy = engine.strategy
    a_orders = _orders_by_symbol(strategy, "A")
    assert len(a_orders) == 1 and a_orders[0].status is OrderStatus.FILLED
    assert _orders_by_symbol(strategy, "B") == []  # B decided on the same bar: nothing sent
    assert strategy.risk.summary()["kill_switch"] == "halted"
    assert len(result.orders) == 1


def test_reducing_denies_the_next_opening_order_within_the_same_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine, _ = _two_instruments_with_flag(tmp_path, "reduce\n", before_symbol="B")
    with caplog.at_level(logging.WARNING, logger="tradestack.risk"):
        result = engine.run()
    strategy = engine.strategy
    a_first = _orders_by_symbol(strategy, "A")[0]
    b_first = _orders_by_symbol(strategy, "B")[0]
    assert a_first.status is OrderStatus.FILLED
    assert b_first.status is OrderStatus.REJECTED
    assert b_first.ts_init_ns == a_first.ts_init_ns  # the same bar
    assert "kill_switch_reducing" in b_first.events[-1].reason
    assert strategy.risk.summary()["denials"].get("kill_switch_reducing", 0) >= 1
    assert "kill_switch_reducing" in caplog.text  # every denial is logged with its rule
    # B never opened; A only ever reduced after the flag, and never through flat
    assert result.portfolio.position(b_first.instrument_id).qty == 0
    a_later = [o for o in _orders_by_symbol(strategy, "A")[1:] if o.status is OrderStatus.FILLED]
    assert all(o.side.value == "sell" for o in a_later)
    assert result.portfolio.position(a_first.instrument_id).qty >= 0


def test_reducing_trades_a_flip_down_to_flat_only(tmp_path: Path) -> None:
    """REDUCING with a long position and a signal that turns short: the pipeline sells the long
    and stops at flat (the pre-trade check would deny the whole flip)."""
    closes = [*RISING, 128.0, 126.0, 123.0, 120.0, 117.0, 114.0]
    write_bars(tmp_path / "a.csv", closes)
    state = tmp_path / "state.json"
    raw = config(
        {"A": tmp_path / "a.csv"},
        {"kill_switch_state_path": str(state)},
        sizing={"method": "fixed_fraction", "fraction": 0.5, "max_position_fraction": 0.5},
    )
    engine = build_engine(BacktestConfig.model_validate(raw), tmp_path)
    strategy = engine.strategy
    assert isinstance(strategy, PipelineStrategy)
    original = strategy._decide

    def decide(ctx: Any, inst: Any, ts: int, price: float, *rest: Any) -> None:
        if price == 128.0:  # the first bar down from the top
            strategy.risk.kill_switch.reduce("desk closing")
        original(ctx, inst, ts, price, *rest)

    strategy._decide = decide  # type: ignore[method-assign]
    result = engine.run()
    assert result.portfolio.position(InstrumentId("A")).qty == 0
    assert strategy.risk.summary()["denials"] == {}
    last = result.orders[-1]
    assert last.side.value == "sell" and last.status is OrderStatus.FILLED


def test_a_halted_state_survives_a_restart(tmp_path: Path) -> None:
    write_bars(tmp_path / "a.csv", RISING)
    state = tmp_path / "kill.json"
    raw = config({"A": tmp_path / "a.csv"}, {"kill_switch_state_path": str(state)})
    first = run(raw, tmp_path)
    assert first.orders
    first.strategy.risk.kill_switch.halt("maintenance")  # type: ignore[attr-defined]
    assert json.loads(state.read_text())["state"] == "halted"
    second = run(raw, tmp_path)  # a new process reads the same state file
    assert second.orders == []
    assert second.strategy.risk.summary()["kill_switch"] == "halted"  # type: ignore[attr-defined]


def test_pre_trade_denials_are_counted_by_rule(tmp_path: Path) -> None:
    write_bars(tmp_path / "a.csv", RISING)
    raw = config({"A": tmp_path / "a.csv"}, {"max_order_notional": 1_000.0})
    result = run(raw, tmp_path)
    denials = result.strategy.risk.summary()["denials"]  # type: ignore[attr-defined]
    assert denials.get("max_order_notional", 0) >= 1
    assert result.orders == []


def test_take_profit_is_not_bought_back_on_the_same_step(tmp_path: Path) -> None:
    write_bars(tmp_path / "a.csv", [100.0 + 2 * i for i in range(40)])
    raw = config(
        {"A": tmp_path / "a.csv"},
        {"take_profit_fraction": 0.10},
        sizing={"method": "fixed_fraction", "fraction": 0.5, "max_position_fraction": 0.5},
        cooldown_steps=3,
    )
    result = run(raw, tmp_path)
    flatten = [o for o in result.orders if o.tag == FLATTEN_TAG]
    assert flatten and flatten[0].status is OrderStatus.FILLED
    t = flatten[0].ts_init_ns
    later = [o.ts_init_ns for o in result.orders if o.tag == "pipeline" and o.ts_init_ns >= t]
    # the flatten fills at the next open; no new position for the three steps after the stop
    assert later and min(later) == t + 4 * DAY_NS


def test_the_breaker_also_closes_what_was_in_flight(examples_dir: Path) -> None:
    """On the L2 venue answers come back after a latency: a market order already sent when the
    breaker trips may still fill, and the pipeline closes that too."""
    import yaml

    raw = yaml.safe_load((examples_dir / "pipeline_btc_l2.yaml").read_text())
    raw["l2_venue"]["response_latency"] = {"kind": "constant", "ns": 2_000_000_000}
    raw["pipeline"]["risk"] = {**raw["pipeline"]["risk"], "max_drawdown_fraction": 0.0003}
    result = run(raw, examples_dir)
    strategy = result.strategy
    assert isinstance(strategy, PipelineStrategy)
    assert strategy.risk.summary()["actions"] == {"drawdown_breaker": 1}
    assert strategy.risk.summary()["kill_switch"] == "halted"
    assert len([o for o in result.orders if o.tag == FLATTEN_TAG]) >= 2  # a second for the rest
    assert result.portfolio.position(InstrumentId.parse("BTCUSDT@binance")).qty == 0


def test_kill_switch_files_are_found_from_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_bars(tmp_path / "a.csv", RISING)
    raw = config({"A": tmp_path / "a.csv"}, {"kill_switch_state_path": "state/kill.json"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (tmp_path / "state").mkdir()
    first = run(raw, tmp_path)
    first.strategy.risk.kill_switch.halt("maintenance")  # type: ignore[attr-defined]
    assert (tmp_path / "state" / "kill.json").exists()
    assert not (elsewhere / "state").exists()
    monkeypatch.chdir(tmp_path)
    assert run(raw, tmp_path).orders == []  # restarted from another folder: still halted
