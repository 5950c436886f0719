"""A pipeline config with a mistake fails before anything runs, naming the field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradestack.cli import main
from tradestack.engine.config import BacktestConfig, ConfigError, load_config
from tradestack.engine.loading import build_engine


@pytest.fixture
def equities(examples_dir: Path) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(
        (examples_dir / "pipeline_equities_daily.yaml").read_text()
    )
    return raw


def _write(tmp_path: Path, raw: dict[str, Any], examples_dir: Path) -> Path:
    for entry in raw.get("data", []):
        entry["path"] = str(examples_dir / entry["path"])
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda p: p["alphas"]["momentum"].update(features=["sma_fast", "nope"]),
            "undeclared features nope",
        ),
        (lambda p: p.update(volatility="vol_21"), "volatility names undeclared feature"),
        (lambda p: p["alphas"]["momentum"].update(kind="magic"), "alphas.momentum.kind"),
        (lambda p: p.update(interval_ms=100), "interval_ms applies to order-book data"),
        (
            lambda p: p.update(ensemble={"method": "stacking", "weights": {"momentum": 1}}),
            "weights apply",
        ),
        (lambda p: p.update(train_fraction=1.5), "train_fraction"),
        (lambda p: p.update(horizn=3), "unknown field; did you mean 'horizon'"),
    ],
)
def test_config_mistakes_are_named(
    tmp_path: Path, examples_dir: Path, equities: dict[str, Any], change: Any, message: str
) -> None:
    change(equities["pipeline"])
    path = _write(tmp_path, equities, examples_dir)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p["features"].update(bad={"kind": "sma", "perod": 3}), "did you mean 'period'"),
        (lambda p: p["sizing"].update(metod="kelly"), "pipeline.sizing"),
        (lambda p: p["risk"].update(stop_loss_fraction=2.0), "pipeline.risk"),
        (
            lambda p: p["alphas"]["momentum"].update(params={"scale": -1}),
            "scale must be a positive",
        ),
        (lambda p: p["alphas"]["momentum"].update(params={"sclae": 1}), "pipeline.alphas.momentum"),
        (lambda p: p.update(train_end="2100-01-01"), "nothing is left to trade"),
        (lambda p: p.update(train_end="1990-01-01"), "too few steps before train_end"),
        (
            lambda p: p["features"].update(sma_fast={"kind": "sma", "input": ["close"]}),
            "input must",
        ),
        (lambda p: p["features"].update(sma_fast={"kind": "sma", "period": 2.5}), "must be an int"),
        (
            lambda p: p["features"].update(
                bb_upper={"kind": "bollinger", "k": "2", "output": "upper"}
            ),
            "feature 'bb_upper' \\(bollinger\\): k must be a finite number",
        ),
        (lambda p: p["features"].update(rsi_14={"kind": "rsi", "period": 1}), "'rsi_14' \\(rsi\\)"),
    ],
)
def test_build_mistakes_are_named(
    examples_dir: Path, equities: dict[str, Any], change: Any, message: str
) -> None:
    change(equities["pipeline"])
    config = BacktestConfig.model_validate(equities)
    with pytest.raises(ConfigError, match=message):
        build_engine(config, examples_dir)


def test_an_unquoted_yaml_date_is_a_train_end(
    tmp_path: Path, examples_dir: Path, equities: dict[str, Any]
) -> None:
    import datetime

    equities["pipeline"]["train_end"] = datetime.date(2013, 7, 1)
    config, _ = load_config(_write(tmp_path, equities, examples_dir))
    assert config.pipeline is not None and config.pipeline.train_end == "2013-07-01"


def test_strategy_and_pipeline_are_exclusive(equities: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="either strategy"):
        BacktestConfig.model_validate({**equities, "strategy": "x:Y"})
    with pytest.raises(ValueError, match="params belong to a strategy"):
        BacktestConfig.model_validate({**equities, "params": {"a": 1}})


def test_a_reference_book_needs_a_pipeline_on_book_data(equities: dict[str, Any]) -> None:
    book = {"recording": "x.gz", "instrument": "BTCUSDT@binance", "tick_size": 0.1, "lot_size": 1}
    with pytest.raises(ValueError, match="reference_book feeds a pipeline on order-book data"):
        BacktestConfig.model_validate({**equities, "reference_book": book})


def test_the_cli_writes_per_layer_diagnostics(
    tmp_path: Path, examples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(["backtest", str(examples_dir / "pipeline_equities_daily.yaml"), "--out", str(out)])
    assert code == 0
    diag = json.loads((out / "pipeline.json").read_text())
    assert diag["features"]["declared"] == 11
    assert diag["features"]["computations"] == 10  # the two Bollinger bands share one
    assert {a["name"] for a in diag["alphas"]} == {"momentum", "reversion", "oscillators"}
    for alpha in diag["alphas"]:
        assert 0 <= alpha["hit_rate"] <= 1 and -1 <= alpha["ic"] <= 1
    assert set(diag["ensemble"]["weights"]) == {"momentum", "reversion", "oscillators"}
    assert diag["sizing"]["decisions"] > 0
    assert "denials" in diag["risk"]
    report = (out / "report.html").read_text()
    for heading in ("Features", "Alphas", "Ensemble (stacking)", "Sizing decisions", "Risk"):
        assert f"<h2>{heading}" in report
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["pipeline"]["mode"] == "batch"
