"""``--engine vectorized`` on the command line: the same files as the event engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tradestack.cli import main


def test_backtest_files_equal_the_event_engine(tmp_path: Path, examples_dir: Path) -> None:
    for name in ("momentum.yaml", "sma_cross.yaml"):
        config = str(examples_dir / "configs" / name)
        event, vector = tmp_path / f"event-{name}", tmp_path / f"vector-{name}"
        assert main(["backtest", config, "--quiet", "--no-report", "--out", str(event)]) == 0
        args = ["backtest", config, "--quiet", "--no-report", "--engine", "vectorized"]
        assert main([*args, "--out", str(vector)]) == 0
        assert (event / "trades.csv").read_text() == (vector / "trades.csv").read_text()
        got, want = (json.loads((d / "metrics.json").read_text()) for d in (vector, event))
        assert got.keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, float):
                assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
            else:
                assert got[key] == value, key


def test_a_config_the_kernel_cannot_run_is_named(
    examples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(examples_dir / "pipeline_equities_daily.yaml")
    assert main(["backtest", config, "--quiet", "--engine", "vectorized"]) == 2
    assert "vectorized runner takes bar data and a strategy" in capsys.readouterr().err


def test_a_vectorized_sweep_equals_the_event_sweep(tmp_path: Path, examples_dir: Path) -> None:
    import polars as pl

    config = str(examples_dir / "configs" / "sma_cross.yaml")
    grid = ["--grid", "fast=5:15:5", "slow=30,50", "--quiet", "--workers", "1"]
    assert main(["sweep", config, *grid, "--out", str(tmp_path / "e")]) == 0
    assert (
        main(["sweep", config, *grid, "--engine", "vectorized", "--out", str(tmp_path / "v")]) == 0
    )
    e, v = (pl.read_parquet(tmp_path / d / "sweep.parquet").drop("seconds") for d in "ev")
    assert e["n_trades"].to_list() == v["n_trades"].to_list()
    for col in ("sharpe", "final_equity", "total_return"):
        for a, b in zip(e[col].to_list(), v[col].to_list(), strict=True):
            assert b == pytest.approx(a, rel=1e-9)
