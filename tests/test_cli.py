"""The ``tradestack`` command: outputs contract, exit codes, clear errors, nothing half-written."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tradestack.cli import EXIT_INPUT, EXIT_OK, EXIT_STRATEGY, main

METRIC_KEYS = {
    "final_equity",
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration_days",
    "n_trades",
    "win_rate",
    "profit_factor",
    "exposure_fraction",
    "turnover",
    "total_fees",
}


@pytest.fixture
def workdir(tmp_path: Path, examples_dir: Path) -> Path:
    shutil.copytree(examples_dir / "data", tmp_path / "data")
    return tmp_path


def _config(workdir: Path, **overrides: object) -> Path:
    config: dict[str, object] = {
        "strategy": "tradestack.strategies.sma_cross:SmaCross",
        "params": {"fast": 10, "slow": 30},
        "data": [
            {"path": "data/MSFT_2012-2014_daily.csv", "instrument": "MSFT", "tick_size": 0.0001}
        ],
        "periods_per_year": 252,
    }
    config.update(overrides)
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_backtest_writes_the_output_contract(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = workdir / "out"
    assert main(["backtest", str(_config(workdir)), "--out", str(out)]) == EXIT_OK
    printed = capsys.readouterr().out
    assert "sharpe" in printed and "report:" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) >= METRIC_KEYS
    with (out / "trades.csv").open() as fh:
        trades = list(csv.DictReader(fh))
    assert len(trades) == metrics["n_trades"] > 0
    assert set(trades[0]) >= {
        "instrument",
        "side",
        "qty",
        "entry_time",
        "entry_price",
        "exit_time",
        "exit_price",
        "pnl",
        "fees",
    }
    assert set(metrics["open_positions"]) <= {"MSFT@sim"}
    with (out / "equity.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert float(rows[-1]["equity"]) == pytest.approx(metrics["final_equity"])
    assert rows[0]["timestamp"].endswith("Z")
    html = (out / "report.html").read_text()
    assert "<html" in html.lower() and "MSFT" in html
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"strategy": "tradestack.strategies.sma_cross:SmaCros"}, "did you mean 'SmaCross'"),
        ({"strategy": "no.such.module:X"}, "cannot import module 'no.such.module'"),
        ({"strategy": "SmaCross"}, "must look like 'package.module:ClassName'"),
        ({"params": {"fsat": 3}}, "did you mean 'fast'"),
        ({"params": {"fast": 50, "slow": 10}}, "fast < slow"),
        ({"venue": {"fill_at": "next_close"}}, "venue.fill_at"),
        (
            {"venue": {"slipage_bps": 1}},
            "venue.slipage_bps: unknown field; did you mean 'slippage_bps'",
        ),
        ({"data": []}, "data"),
        ({"data": [{"path": "data/missing.csv", "instrument": "X"}]}, "missing.csv"),
        ({"starting_cash": -5}, "starting_cash"),
    ],
)
def test_bad_config_exits_2_with_a_clear_message_and_writes_nothing(
    workdir: Path, capsys: pytest.CaptureFixture[str], overrides: dict[str, object], message: str
) -> None:
    out = workdir / "out"
    assert main(["backtest", str(_config(workdir, **overrides)), "--out", str(out)]) == EXIT_INPUT
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_bad_data_row_names_file_row_and_field(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = (workdir / "data" / "MSFT_2012-2014_daily.csv").read_text().splitlines()
    fields = lines[5].split(",")
    fields[2], fields[3] = fields[3], fields[2]  # high below low on line 6
    lines[5] = ",".join(fields)
    (workdir / "data" / "bad.csv").write_text("\n".join(lines) + "\n")
    config = _config(workdir, data=[{"path": "data/bad.csv", "instrument": "MSFT"}])
    assert main(["backtest", str(config), "--out", str(workdir / "out")]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert "bad.csv row 6" in err and "'high'" in err
    assert not (workdir / "out").exists()


def test_missing_config_and_invalid_yaml(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", str(workdir / "nope.yaml")]) == EXIT_INPUT
    assert "config file not found" in capsys.readouterr().err
    bad = workdir / "bad.yaml"
    bad.write_text("strategy: [unclosed\n")
    assert main(["backtest", str(bad)]) == EXIT_INPUT
    assert "not valid YAML" in capsys.readouterr().err


def test_help_imports_nothing_heavy() -> None:
    code = (
        "import sys\nfrom tradestack.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('numpy', 'polars', 'plotly', 'pydantic', 'pandas')\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]"), out.stdout
    assert "backtest" in out.stdout


def test_example_configs_run(examples_dir: Path, tmp_path: Path) -> None:
    for name in ("sma_cross", "momentum"):
        out = tmp_path / name
        assert (
            main(
                [
                    "backtest",
                    str(examples_dir / "configs" / f"{name}.yaml"),
                    "--out",
                    str(out),
                    "--quiet",
                ]
            )
            == 0
        )
        assert (out / "report.html").stat().st_size > 100_000
        assert json.loads((out / "metrics.json").read_text())["n_trades"] > 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {
                "data": [
                    {
                        "path": "data/MSFT_2012-2014_daily.csv",
                        "instrument": "MSFT",
                        "timezone": "Mars/Base",
                    }
                ]
            },
            "unknown IANA timezone 'Mars/Base'",
        ),
        (
            {"data": [{"path": "data/MSFT_2012-2014_daily.csv", "instrument": ""}]},
            "data[0].instrument",
        ),
        (
            {"data": [{"path": "data/MSFT_2012-2014_daily.csv", "instrument": "MSFT@"}]},
            "SYMBOL@venue",
        ),
        (
            {
                "data": [
                    {"path": "data/MSFT_2012-2014_daily.csv", "instrument": "MSFT", "min_qty": -1}
                ]
            },
            "data[0].min_qty",
        ),
        (
            {
                "data": [
                    {"path": "data/MSFT_2012-2014_daily.csv", "instrument": "MSFT"},
                    {"path": "data/AAPL_2012-2014_daily.csv", "instrument": "MSFT@sim"},
                ]
            },
            "repeated: MSFT@sim",
        ),
        ({"data": [{"path": "data", "instrument": "MSFT"}]}, "data[0].path: cannot load"),
        ({"data": [{"path": "data/README.md", "instrument": "MSFT"}]}, "data[0].path: cannot load"),
        ({"periods_per_year": float("inf")}, "periods_per_year"),
        ({"venue": {"slippage_bps": 20000}}, "venue.slippage_bps"),
        ({"params": {"fast": 1.5}}, "params: SmaCross.fast must be int"),
    ],
)
def test_more_bad_configs_exit_2(
    workdir: Path, capsys: pytest.CaptureFixture[str], overrides: dict[str, object], message: str
) -> None:
    out = workdir / "out"
    assert main(["backtest", str(_config(workdir, **overrides)), "--out", str(out)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()


STRATEGY_FILE = """
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Literal

from tradestack import Strategy


@dataclass
class Note:
    kind: ClassVar[str] = "note"
    text: str = ""


class Boom(Strategy):
    budget: Decimal = Decimal("1")
    mode: Literal["a", "b"] = "a"

    def on_bar(self, ctx, bar):
        if len(ctx.history(bar.instrument_id)) == 40:
            raise ZeroDivisionError("user bug")
"""


def test_strategy_from_file_with_postponed_annotations_and_its_errors(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workdir / "mine.py").write_text(STRATEGY_FILE)
    config = _config(workdir, strategy="mine.py:Boom", params={"budget": "2.5", "mode": "b"})
    assert main(["backtest", str(config), "--out", str(workdir / "out")]) == EXIT_STRATEGY
    err = capsys.readouterr().err
    assert (
        "error: backtest stopped at 2012-02-29T00:00:00+00:00 while handling the MSFT@sim bar"
        in err
    )
    assert "ZeroDivisionError: user bug" in err and 'mine.py", line' in err
    assert not (workdir / "out").exists()

    (workdir / "broken.py").write_text("def oops(:\n")
    config = _config(workdir, strategy="broken.py:X")
    assert main(["backtest", str(config)]) == EXIT_INPUT
    assert "failed to load: SyntaxError" in capsys.readouterr().err


def test_unreadable_config_and_out_that_is_a_file(
    workdir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", str(workdir / "data")]) == EXIT_INPUT
    assert "cannot read config" in capsys.readouterr().err
    (workdir / "latin1.yaml").write_bytes("strategy: caf\xe9\n".encode("latin-1"))
    assert main(["backtest", str(workdir / "latin1.yaml")]) == EXIT_INPUT
    assert "not UTF-8" in capsys.readouterr().err
    taken = workdir / "taken"
    taken.write_text("x")
    assert main(["backtest", str(_config(workdir)), "--out", str(taken)]) == EXIT_INPUT
    assert "exists and is not a folder" in capsys.readouterr().err


def test_rerun_without_report_removes_the_old_report(workdir: Path) -> None:
    out = workdir / "out"
    assert main(["backtest", str(_config(workdir)), "--out", str(out), "--quiet"]) == EXIT_OK
    assert (out / "report.html").exists()
    config = _config(workdir, params={"fast": 5, "slow": 20})
    assert main(["backtest", str(config), "--out", str(out), "--quiet", "--no-report"]) == EXIT_OK
    assert not (out / "report.html").exists()
    assert json.loads((out / "metrics.json").read_text())["params"]["fast"] == 5
