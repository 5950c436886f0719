"""`tradestack paper` end to end: the fake Binance venue replays a recorded session on
127.0.0.1, the real ccxt client streams it, the paper engine trades it; the same orders,
fills and equity as `tradestack backtest` of the same config, every order and fill in the paper
state database (a fill before the strategy hears of it), and a clean stop on SIGTERM."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradestack.cli import main
from tradestack.core.orders import Fill
from tradestack.engine.context import StrategyContext
from tradestack.storage import StateStore, open_database
from tradestack.strategies.quote_at_touch import QuoteAtTouch

CONFIG = "paper_binance_spot.yaml"
PIPELINE = "paper_pipeline_binance_spot.yaml"
CHECK_DB = "TRADESTACK_TEST_PAPER_DB"


class CheckedQuoteAtTouch(QuoteAtTouch):
    """QuoteAtTouch that checks, whenever it hears of a fill in paper mode (the database named
    by ``$TRADESTACK_TEST_PAPER_DB``), that the fill is stored already; it notes each check in
    ``<db>.heard`` (the config loads this file as its own module)."""

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        db = os.environ.get(CHECK_DB)
        if not db:
            return
        store = StateStore(open_database(db, "paper"))
        ids = {row.trade_id.split(":", 1)[1] for row in store.fills()}
        assert fill.fill_id in ids, f"{fill.fill_id} reached the strategy before the database"
        with open(db + ".heard", "a", encoding="utf-8") as f:
            f.write(f"{fill.fill_id}\n")


def _config(examples_dir: Path, tmp_path: Path, **paper: Any) -> Path:
    raw = yaml.safe_load((examples_dir / CONFIG).read_text(encoding="utf-8"))
    for key in ("recording",):
        raw["book"][key] = str(examples_dir / raw["book"][key])
    defaults = {"state": str(tmp_path / "paper.db"), "open_orders_at_stop": "keep"}
    raw["paper"].update(replay=raw["book"]["recording"], **{**defaults, **paper})
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _same_as_backtest(tmp_path: Path, at_least: int) -> list[dict[str, str]]:
    """The paper run's orders (but their ids), executions and equity are the backtest's."""

    def key(row: dict[str, str]) -> tuple[str, ...]:
        return tuple(v for k, v in row.items() if k != "client_order_id")

    backtest = _rows(tmp_path / "bt" / "orders.csv")
    paper = _rows(tmp_path / "paper" / "orders.csv")
    assert len(backtest) > at_least
    assert [key(r) for r in paper] == [key(r) for r in backtest]
    for name in ("executions.csv", "equity.csv"):
        assert _rows(tmp_path / "paper" / name) == _rows(tmp_path / "bt" / name)
    return paper


def test_paper_on_the_replayed_feed_trades_as_the_backtest(
    examples_dir: Path, tmp_path: Path
) -> None:
    # hold: a stall of the test process puts one stream behind the other by up to stall x speed
    config = _config(examples_dir, tmp_path, speed=25, idle_stop_s=1.5, hold_ms=5000)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["strategy"] = f"{__file__}:CheckedQuoteAtTouch"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    quiet = ["--quiet", "--no-report"]
    assert main(["backtest", str(config), "--out", str(tmp_path / "bt"), *quiet]) == 0
    os.environ[CHECK_DB] = str(tmp_path / "paper.db")
    try:
        assert main(["paper", str(config), "--out", str(tmp_path / "paper"), *quiet]) == 0
    finally:
        del os.environ[CHECK_DB]

    paper = _same_as_backtest(tmp_path, at_least=20)
    store = StateStore(open_database(tmp_path / "paper.db", "paper"))
    stored = {r.client_order_id: r for r in store.orders()}
    assert {r["client_order_id"] for r in paper} == set(stored)
    for r in paper:
        assert stored[r["client_order_id"]].status.value == r["status"]
    fills = _rows(tmp_path / "paper" / "executions.csv")
    heard = (tmp_path / "paper.db.heard").read_text(encoding="utf-8").split()
    assert len(store.fills()) == len(fills) == len(heard) > 5
    position = store.positions()
    total = sum(Decimal(f["qty"]) * (1 if f["side"] == "buy" else -1) for f in fills)
    assert sum(p.qty for p in position.values()) == total
    assert len(store.equity_curve()) == len(_rows(tmp_path / "paper" / "equity.csv"))
    with pytest.raises(Exception, match="paper"):
        open_database(tmp_path / "paper.db", "live")  # a paper database never runs live


def test_sigterm_stops_the_session_cleanly(examples_dir: Path, tmp_path: Path) -> None:
    config = _config(examples_dir, tmp_path, speed=1, idle_stop_s=30, open_orders_at_stop="cancel")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tradestack.cli", "paper", str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    time.sleep(8)  # started, streaming, trading
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "paper session ended (signal)" in out
    store = StateStore(open_database(tmp_path / "paper.db", "paper"))
    assert store.orders() and not store.orders(open_only=True)  # open orders canceled at stop


def test_a_market_the_venue_does_not_list_is_refused(
    examples_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(examples_dir, tmp_path, speed=25, idle_stop_s=1, symbol="ETH/BTC")
    assert main(["paper", str(config), "--quiet"]) == 2
    assert "binance has no market 'ETH/BTC'" in capsys.readouterr().err


@pytest.mark.slow
def test_the_pipeline_on_paper_trades_as_its_backtest(examples_dir: Path, tmp_path: Path) -> None:
    """The demo's config: the pipeline fitted on the first half of the recording, then the
    recording served at 10x and traded one event at a time, gives the backtest's orders."""
    raw = yaml.safe_load((examples_dir / PIPELINE).read_text(encoding="utf-8"))
    raw["book"]["recording"] = str(examples_dir / raw["book"]["recording"])
    # hold: as above (the replay is on exchange time, so holding rows longer changes nothing else)
    raw["paper"].update(
        replay=raw["book"]["recording"], state=str(tmp_path / "paper.db"), hold_ms=5000
    )
    config = tmp_path / "pipeline.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    quiet = ["--quiet", "--no-report"]
    assert main(["backtest", str(config), "--out", str(tmp_path / "bt"), *quiet]) == 0
    assert main(["paper", str(config), "--out", str(tmp_path / "paper"), *quiet]) == 0

    paper = _same_as_backtest(tmp_path, at_least=10)
    assert (tmp_path / "paper" / "pipeline.json").exists()
    store = StateStore(open_database(tmp_path / "paper.db", "paper"))
    assert len(store.orders()) == len(paper)
    assert len(store.fills()) == len(_rows(tmp_path / "paper" / "executions.csv"))


def test_a_replay_on_the_receive_clock_is_refused(
    examples_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Served at some speed, a recording's exchange times are years from the receive times:
    without a modelled feed latency the session would run on two clocks, so it refuses."""
    config = _config(examples_dir, tmp_path, speed=25, idle_stop_s=1)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    del raw["l2_venue"]["feed_latency_ns"]
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert main(["paper", str(config), "--quiet"]) == 2
    assert "set l2_venue.feed_latency_ns" in capsys.readouterr().err
