"""build_plan fits alphas and ensemble on the training window only: bars after it cannot move
a single fitted number (real AAPL daily closes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradestack.core.ids import InstrumentId
from tradestack.data import load_bars
from tradestack.engine.pipeline.config import PipelineConfig
from tradestack.engine.pipeline.plan import PipelinePlan, Steps, build_plan
from tradestack.features.registry import BAR_COLUMNS

AAPL = InstrumentId("AAPL")
BASE: dict[str, Any] = {
    "features": {
        "sma_fast": {"kind": "sma", "period": 3},
        "sma_slow": {"kind": "sma", "period": 6},
        "rsi": {"kind": "rsi", "period": 14},
        "vol": {"kind": "rolling_volatility", "period": 20},
    },
    "alphas": {
        "mom": {
            "kind": "ma_momentum",
            "features": ["sma_fast", "sma_slow"],
            "params": {"scale": 0.01},
        },
        "lr": {"kind": "book_pressure", "features": ["rsi"]},
    },
    "volatility": "vol",
}
VARIANTS: dict[str, dict[str, Any]] = {
    "stacking": {},
    "inverse-variance": {"ensemble": {"method": "inverse_variance"}},
    "train-end-date": {"train_end": "2013-07-01", "horizon": 2, "folds": 3},
}


@pytest.fixture(scope="module")
def steps(examples_dir: Path) -> Steps:
    bars = load_bars(examples_dir / "data" / "AAPL_2012-2014_daily.csv", AAPL)
    return Steps(
        bars.ts_ns, {c: np.asarray(getattr(bars, c), dtype=np.float64) for c in BAR_COLUMNS}
    )


def _plan(variant: str, steps: Steps) -> PipelinePlan:
    return build_plan(
        PipelineConfig.model_validate({**BASE, **VARIANTS[variant]}), {AAPL: steps}, BAR_COLUMNS
    )


def _fitted(plan: PipelinePlan) -> dict[str, Any]:
    """Every learned number of the plan, as plain values compared exactly."""
    out: dict[str, Any] = {a.name: a.describe() for a in plan.alphas}
    for a in plan.alphas:
        if hasattr(a, "model"):
            out[a.name + ".scaler"] = (a.model.mean.tolist(), a.model.std.tolist())
    out["ensemble"] = plan.ensemble.describe()
    if hasattr(plan.ensemble, "model"):
        m = plan.ensemble.model
        out["ensemble.scaler"] = (m.mean.tolist(), m.std.tolist())
    out["summary"] = plan.fit_summary
    return out


def _train_end_index(plan: PipelinePlan, steps: Steps) -> int:
    return int(np.searchsorted(steps.ts_ns, plan.train_end_ns, side="left"))


def _edit(
    steps: Steps, rows: slice, change: Callable[[np.ndarray, np.random.Generator], np.ndarray]
) -> Steps:
    rng = np.random.default_rng(2024)
    cols = {k: v.copy() for k, v in steps.columns.items()}
    for v in cols.values():
        v[rows] = change(v[rows], rng)
    return Steps(steps.ts_ns, cols)


def _scramble(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return rng.permutation(x[::-1]) * np.exp(rng.normal(0.0, 0.5, size=len(x))) + 1e3


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_bars_after_the_training_window_change_nothing(variant: str, steps: Steps) -> None:
    plan = _plan(variant, steps)
    end = _train_end_index(plan, steps)
    assert 100 < end < len(steps) - 100
    if variant != "train-end-date":
        assert end == int(len(steps) * 0.5)
    after = _edit(steps, slice(end, None), _scramble)
    assert _fitted(_plan(variant, after)) == _fitted(plan)
    first_test_bar = _edit(steps, slice(end, end + 1), lambda x, _: x * 10.0)
    assert _fitted(_plan(variant, first_test_bar)) == _fitted(plan)


@pytest.mark.parametrize("variant", ["stacking", "inverse-variance"])
def test_bars_inside_the_training_window_do_change_the_fit(variant: str, steps: Steps) -> None:
    plan = _plan(variant, steps)
    end = _train_end_index(plan, steps)
    before = _edit(steps, slice(end - 60, end), _scramble)
    changed = _fitted(_plan(variant, before))
    assert changed["lr"] != _fitted(plan)["lr"]
    assert changed["ensemble"] != _fitted(plan)["ensemble"]


def test_signals_before_the_training_end_ignore_later_bars(steps: Steps) -> None:
    plan = _plan("stacking", steps)
    end = _train_end_index(plan, steps)
    after = _edit(steps, slice(end, None), _scramble)
    a, b = plan.signals(steps), _plan("stacking", after).signals(after)
    np.testing.assert_array_equal(a.signal[:end], b.signal[:end])
    assert not np.array_equal(a.signal[end:], b.signal[end:])


def test_one_cutoff_for_all_instruments(examples_dir: Path, steps: Steps) -> None:
    """MSFT's bars from after the cutoff cannot reach the model that trades AAPL (and vice
    versa), even when the cutoff comes from ``train_fraction``."""
    msft_id = InstrumentId("MSFT")
    bars = load_bars(examples_dir / "data" / "MSFT_2012-2014_daily.csv", msft_id)
    msft = Steps(bars.ts_ns, {c: np.asarray(getattr(bars, c)) for c in BAR_COLUMNS})
    late = Steps(msft.ts_ns[300:], {k: v[300:] for k, v in msft.columns.items()})
    config = PipelineConfig.model_validate(BASE)
    plan = build_plan(config, {AAPL: steps, msft_id: late}, BAR_COLUMNS)
    cut = int(np.searchsorted(late.ts_ns, plan.train_end_ns))
    moved = _edit(late, slice(cut, None), lambda x, rng: x * rng.uniform(0.5, 1.5, len(x)))
    again = build_plan(config, {AAPL: steps, msft_id: moved}, BAR_COLUMNS)
    assert again.train_end_ns == plan.train_end_ns
    assert _fitted(again) == _fitted(plan)
