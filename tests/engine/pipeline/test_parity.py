"""The same pipeline as a backtest (batch signals) and as a paper-style replay (every number
computed one event at a time) emits an identical stream of orders."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tradestack.engine.backtest import BacktestResult
from tradestack.engine.config import BacktestConfig
from tradestack.engine.loading import build_engine
from tradestack.engine.pipeline.strategy import PipelineStrategy


def run(raw: dict[str, Any], base: Path, mode: str) -> BacktestResult:
    raw = {**raw, "pipeline": {**raw["pipeline"], "mode": mode}}
    return build_engine(BacktestConfig.model_validate(raw), base).run()


def order_stream(result: BacktestResult) -> list[tuple[Any, ...]]:
    return [
        (
            o.ts_init_ns,
            str(o.instrument_id),
            o.side.value,
            str(o.qty),
            o.order_type.value,
            o.tag,
            o.status.value,
            str(o.filled_qty),
            str(o.avg_fill_price),
        )
        for o in result.orders
    ]


def assert_same_run(batch: BacktestResult, replay: BacktestResult) -> None:
    a, b = order_stream(batch), order_stream(replay)
    first = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    assert first is None, f"order {first} differs:\n batch  {a[first]}\n replay {b[first]}"
    assert len(a) == len(b)
    assert batch.final_equity == replay.final_equity
    sb, sr = batch.strategy, replay.strategy
    assert isinstance(sb, PipelineStrategy) and isinstance(sr, PipelineStrategy)
    for inst, got in sr.recorded().items():
        want = sb.recorded()[inst]
        np.testing.assert_array_equal(got.ts_ns, want.ts_ns)
        np.testing.assert_allclose(got.features, want.features, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(got.alpha_scores, want.alpha_scores, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(got.signal, want.signal, rtol=1e-9, atol=1e-9)


@pytest.fixture(autouse=True)
def _quiet_risk_log() -> None:
    logging.getLogger("tradestack.risk").setLevel(logging.ERROR)


@pytest.mark.parametrize("name", ["pipeline_equities_daily.yaml", "pipeline_btc_l2.yaml"])
def test_example_pipelines_emit_identical_orders(examples_dir: Path, name: str) -> None:
    raw = yaml.safe_load((examples_dir / name).read_text())
    batch = run(raw, examples_dir, "batch")
    replay = run(raw, examples_dir, "replay")
    assert len(batch.orders) > 20
    assert_same_run(batch, replay)


@pytest.mark.slow
def test_six_minutes_of_btcusdt_emit_identical_orders(
    examples_dir: Path, shared_data: Path
) -> None:
    """The 2024-08-08 USD-M recording with its REST snapshot, on a 50 ms grid."""
    raw = yaml.safe_load((examples_dir / "pipeline_btc_l2.yaml").read_text())
    path = shared_data / "ws_messages" / "binance_usdm" / "hftbacktest_btcusdt_20240808.gz"
    raw["book"] = {**raw["book"], "recording": str(path), "require_snapshot": True}
    raw["pipeline"] = {**raw["pipeline"], "interval_ms": 50}
    batch = run(raw, examples_dir, "batch")
    replay = run(raw, examples_dir, "replay")
    assert len(batch.orders) > 20
    assert_same_run(batch, replay)


@pytest.mark.slow
def test_a_cross_venue_pipeline_emits_identical_orders(
    examples_dir: Path, shared_data: Path
) -> None:
    """USD-M BTCUSDT traded, Binance spot BTCUSDT read as a second venue (same six minutes):
    the futures-spot basis feeds a reversion alpha."""
    raw = yaml.safe_load((examples_dir / "pipeline_btc_l2.yaml").read_text())
    ws = shared_data / "ws_messages"
    raw["book"] = {
        **raw["book"],
        "recording": str(ws / "binance_usdm" / "hftbacktest_btcusdt_20240808.gz"),
        "require_snapshot": True,
    }
    raw["reference_book"] = {
        "recording": str(ws / "binance_spot" / "hftbacktest_btcusdt_20240808.gz"),
        "venue_format": "binance-spot",
        "instrument": "BTCUSDT@binance_spot",
        "kind": "spot",
        "tick_size": 0.01,
        "lot_size": 0.00001,
    }
    pipeline = raw["pipeline"]
    pipeline["features"]["basis"] = {"kind": "cross_venue_spread_bps"}
    pipeline["alphas"]["basis_reversion"] = {
        "kind": "vwap_reversion",
        "features": ["basis"],
        "params": {"scale": 2.0},
    }
    batch = run(raw, examples_dir, "batch")
    replay = run(raw, examples_dir, "replay")
    strategy = batch.strategy
    assert isinstance(strategy, PipelineStrategy)
    (recorded,) = strategy.recorded().values()
    j = strategy.plan.features.names.index("basis")
    values = recorded.features[:, j]
    assert np.isfinite(values).mean() > 0.99
    assert 0 < np.nanmedian(np.abs(values)) < 50  # futures trade a few bps from spot
    assert len(batch.orders) > 20
    assert_same_run(batch, replay)
