"""Sweeps: grid axes, config overrides, variants on local processes and on a real local Ray
head, and what the command writes."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import yaml

from tradestack.cli import main
from tradestack.engine.config import load_config
from tradestack.engine.loading import build_engine
from tradestack.research.sweep import (
    SweepError,
    apply_overrides,
    grid,
    parse_axis,
    run_sweep,
    run_variant,
    sort_rows,
)


@pytest.fixture
def sma(examples_dir: Path) -> tuple[dict[str, Any], Path]:
    path = examples_dir / "configs" / "sma_cross.yaml"
    return yaml.safe_load(path.read_text()), path.parent


@pytest.mark.parametrize(
    ("text", "key", "values"),
    [
        ("fast=5:50:5", "fast", tuple(range(5, 55, 5))),
        ("fast=5:7:1", "fast", (5, 6, 7)),
        ("k=0.1:0.5:0.1", "k", (0.1, 0.2, 0.3, 0.4, 0.5)),
        ("venue.slippage_bps=0,1.5,3", "venue.slippage_bps", (0, 1.5, 3)),
        ("mode=batch,replay", "mode", ("batch", "replay")),
        ("x=7", "x", (7,)),
    ],
)
def test_axes(text: str, key: str, values: tuple[Any, ...]) -> None:
    axis = parse_axis(text)
    assert axis.key == key and axis.values == values
    assert all(type(a) is type(b) for a, b in zip(axis.values, values, strict=True))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("fast", "must look like"),
        ("fast=", "must look like"),
        ("fast=1:2", "start:stop:step"),
        ("fast=a:b:c", "must be numbers"),
        ("fast=5:1:1", "stop >= start"),
        ("fast=1:2:0", "step > 0"),
        ("fast=0:1000000:1", "too many"),
    ],
)
def test_bad_axes_are_named(text: str, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        parse_axis(text)


def test_grid_is_every_combination_in_order() -> None:
    combos = grid([parse_axis("a=1:2:1"), parse_axis("b=x,y")])
    assert combos == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]
    with pytest.raises(SweepError, match="given twice"):
        grid([parse_axis("a=1"), parse_axis("a=2")])


def test_overrides_set_params_and_dotted_fields(sma: tuple[dict[str, Any], Path]) -> None:
    raw, _ = sma
    out = apply_overrides(raw, {"fast": 3, "venue.slippage_bps": 7})
    assert out["params"]["fast"] == 3 and out["venue"]["slippage_bps"] == 7
    assert raw["params"]["fast"] != 3  # the original is untouched
    with pytest.raises(SweepError, match="no 'venu'; did you mean 'venue'"):
        apply_overrides(raw, {"venu.slippage_bps": 1})


def test_a_variant_equals_the_backtest_command(sma: tuple[dict[str, Any], Path]) -> None:
    raw, base = sma
    row = run_variant(raw, str(base), {"fast": 12, "slow": 40})
    config, _ = load_config(base / "sma_cross.yaml")
    config = config.model_copy(update={"params": {**config.params, "fast": 12, "slow": 40}})
    metrics = build_engine(config, base).run().metrics().to_dict()
    assert row["error"] == ""
    for key in ("sharpe", "total_return", "n_trades", "final_equity"):
        assert row[key] == metrics[key]


def test_a_bad_variant_is_recorded_and_the_sweep_goes_on(
    sma: tuple[dict[str, Any], Path],
) -> None:
    raw, base = sma
    rows = run_sweep(raw, base, grid([parse_axis("fast=10,30"), parse_axis("slow=20")]), workers=2)
    assert rows[0]["error"] == "" and rows[0]["sharpe"] is not None
    assert "ParameterError" in rows[1]["error"] or "slow" in rows[1]["error"]
    assert sort_rows(rows, "sharpe", descending=True)[-1] is rows[1]


def test_the_command_writes_results_and_a_heatmap(
    tmp_path: Path, examples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = examples_dir / "configs" / "sma_cross.yaml"
    code = main(
        ["sweep", str(config), "--grid", "fast=5:15:5", "slow=30:50:10", "--out", str(tmp_path)]
    )
    assert code == 0
    frame = pl.read_parquet(tmp_path / "sweep.parquet")
    assert frame.height == 9 and {"fast", "slow", "sharpe", "error"} <= set(frame.columns)
    html = (tmp_path / "sweep.html").read_text()
    assert "heatmap" in html and "sharpe over fast × slow" in html
    assert "best 9 by sharpe" in capsys.readouterr().out


def test_the_command_rejects_bad_input(
    examples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(examples_dir / "configs" / "sma_cross.yaml")
    assert main(["sweep", config, "--grid", "fast=1:2"]) == 2
    assert main(["sweep", config, "--grid", "fast=5", "--sort", "shrape"]) == 2
    assert main(["sweep", config, "--grid", "fast=40", "slow=10"]) == 2  # every variant failed
    err = capsys.readouterr().err
    assert (
        "start:stop:step" in err
        and "--sort must be one of" in err
        and "every variant failed" in err
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Ray head on 127.0.0.1 (its own temp dir), stopped afterwards."""
    pytest.importorskip("ray", reason="ray is not installed (pip install -e '.[dev]')")
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.skip(f"the ray command is missing beside {sys.executable}")
    port = _free_port()
    temp = tmp_path_factory.mktemp("ray")
    start = [
        str(ray_bin), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}",
        "--num-cpus=2", "--include-dashboard=false", "--disable-usage-stats",
        f"--temp-dir={temp}",
    ]  # fmt: skip
    done = subprocess.run(start, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        pytest.skip(f"a local Ray head did not start: {done.stderr.strip()[-300:]}")
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_a_sweep_on_a_local_ray_head_equals_local_processes(
    ray_head: str, sma: tuple[dict[str, Any], Path]
) -> None:
    raw, base = sma
    variants = grid([parse_axis("fast=5:15:5"), parse_axis("slow=30,40")])
    on_ray = run_sweep(raw, base, variants, ray_address=ray_head)
    local = run_sweep(raw, base, variants, workers=1)

    def public(r: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in r.items() if k != "seconds" and not k.startswith("_")}

    assert [public(r) for r in on_ray] == [public(r) for r in local]
    for a, b in zip(on_ray, local, strict=True):
        assert np.array_equal(a["_returns"], b["_returns"])
    assert all(r["error"] == "" for r in on_ray)


def test_the_sweep_reports_deflated_sharpe_and_pbo(tmp_path: Path, examples_dir: Path) -> None:
    config = str(examples_dir / "configs" / "sma_cross.yaml")
    grid_args = ["--grid", "fast=5:30:5", "slow=40,60", "--quiet", "--engine", "vectorized"]
    assert main(["sweep", config, *grid_args, "--out", str(tmp_path)]) == 0
    diag = json.loads((tmp_path / "overfitting.json").read_text())
    assert diag["variants"] == 12 and diag["days"] > 700
    assert 0.0 <= diag["pbo"] <= 1.0 and 0.0 <= diag["deflated_sharpe"] <= 1.0
    assert diag["deflated_sharpe"] <= diag["probabilistic_sharpe"]  # deflating never helps
    assert diag["pbo_combinations"] == 12870  # C(16, 8) CSCV splits
    assert "Overfitting (deflated Sharpe, PBO by CSCV)" in (tmp_path / "sweep.html").read_text()
    frame = pl.read_parquet(tmp_path / "sweep.parquet")
    assert not [c for c in frame.columns if c.startswith("_")]


@pytest.mark.parametrize("method", ["random", "tpe"])
def test_optuna_search_runs_the_asked_number_of_trials(
    method: str, sma: tuple[dict[str, Any], Path]
) -> None:
    from tradestack.research.sweep import search

    raw, base = sma
    axes = [parse_axis("fast=5:30:5"), parse_axis("slow=40:100:20")]
    kwargs: dict[str, Any] = {"method": method, "trials": 6, "metric": "sharpe", "seed": 3}
    rows = search(raw, base, axes, maximize=True, workers=2, vectorized=True, **kwargs)
    again = search(raw, base, axes, maximize=True, workers=2, vectorized=True, **kwargs)
    assert len(rows) == 6
    assert [(r["fast"], r["slow"]) for r in rows] == [(r["fast"], r["slow"]) for r in again]
    assert all(r["fast"] in axes[0].values and r["slow"] in axes[1].values for r in rows)


def test_a_search_needs_trials(examples_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = str(examples_dir / "configs" / "sma_cross.yaml")
    assert main(["sweep", config, "--grid", "fast=5:10:5", "--search", "tpe", "--quiet"]) == 2
    assert "needs --trials" in capsys.readouterr().err
