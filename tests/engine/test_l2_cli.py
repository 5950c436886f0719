"""`tradestack backtest` on an order-book recording: the example config end to end, and bad
L2 configs rejected with a message that names what is wrong."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from tradestack.cli import EXIT_INPUT, EXIT_OK, main


def test_l2_example_writes_fills_queue_positions_funding_and_pnl_split(
    examples_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "l2"
    config = examples_dir / "l2_market_making.yaml"
    assert main(["backtest", str(config), "--out", str(out), "--quiet"]) == EXIT_OK
    book = json.loads((out / "metrics.json").read_text())["order_book"]
    assert book["maker_fills"] > 50 and book["taker_fills"] > 0
    assert book["funding_payments"] == 1
    pnl = book["pnl_decomposition"]
    parts = pnl["spread_capture"] + pnl["inventory_pnl"] + pnl["fees"] + pnl["funding"]
    assert pnl["total_pnl"] == pytest.approx(parts, abs=1e-9)
    with (out / "executions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == book["fills"]
    maker = [r for r in rows if r["liquidity"] == "maker"]
    assert all(r["queue_ahead"] != "" and Decimal(r["fee"]) < 0 for r in maker)
    assert sum(int(r["toxic"]) for r in rows) == book["toxic_fills"]
    assert pnl["fees"] == pytest.approx(-float(sum(Decimal(r["fee"]) for r in rows)), abs=1e-9)
    with (out / "funding.csv").open() as fh:
        (payment,) = list(csv.DictReader(fh))
    # 0.05 BTC held through 2023-04-05 00:00 UTC at mark 28155.1 and rate 0.0000276
    assert Decimal(payment["amount"]) == Decimal("-0.05") * Decimal("28155.1") * Decimal(
        "0.0000276"
    )
    html = (out / "report.html").read_text()
    for anchor in ('id="pnl-decomposition"', 'id="executions"', 'id="funding"'):
        assert anchor in html


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"l2_venue": {"queue_modle": "fifo"}}, "queue_modle"),
        ({"l2_venue": {"queue_model": "lifo"}}, "lifo"),
        ({"data": [{"path": "x.csv", "instrument": "X"}]}, "either data"),
        ({"book": None}, "either data"),
        ({"venue": {"slippage_bps": 2}}, "l2_venue"),
        ({"periods_per_year": 252}, "sample_interval_ns"),
        ({"l2_venue": {"max_walk_levels": 0}}, "max_walk_levels"),
    ],
)
def test_bad_l2_configs_exit_2_naming_the_problem(
    examples_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: dict[str, object],
    message: str,
) -> None:
    config = yaml.safe_load((examples_dir / "l2_market_making.yaml").read_text())
    config["book"]["recording"] = str(
        examples_dir / "data" / "recordings" / "binance-usdm-btcusdt-2023-04-05.dat.gz"
    )
    config.update(change)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["backtest", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == EXIT_INPUT
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
