"""HTML report: self-contained, escaped, written atomically."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from tradestack.analytics import compute_metrics, write_report
from tradestack.core.ids import InstrumentId
from tradestack.portfolio.trades import TradeRecord

DAY = 86_400 * 10**9
START = int(datetime(2023, 11, 1, tzinfo=UTC).timestamp()) * 10**9
TS = START + np.arange(120, dtype=np.int64) * DAY
EQUITY = 10_000.0 * np.cumprod(1.0 + np.random.default_rng(7).normal(0.001, 0.01, TS.size))
TRADES = [
    TradeRecord(
        instrument_id=InstrumentId("<b>EVIL</b>", "sim"),
        side="long",
        qty=Decimal("2"),
        entry_ts_ns=int(TS[3]),
        entry_price=Decimal("101.5"),
        exit_ts_ns=int(TS[9]),
        exit_price=Decimal("110.25"),
        gross_pnl=Decimal("17.5"),
        fees=Decimal("0.4"),
    ),
    TradeRecord(
        instrument_id=InstrumentId("BTC/USDT", "binance"),
        side="short",
        qty=Decimal("0.5"),
        entry_ts_ns=int(TS[20]),
        entry_price=Decimal("30000"),
        exit_ts_ns=int(TS[40]),
        exit_price=Decimal("31000"),
        gross_pnl=Decimal("-500"),
        fees=Decimal("3"),
    ),
]
TITLE = "Momentum <v2> & friends"


def write(path: Path) -> Path:
    metrics = compute_metrics(TS, EQUITY, TRADES, periods_per_year=365.0)
    return write_report(path, title=TITLE, ts_ns=TS, equity=EQUITY, trades=TRADES, metrics=metrics)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = write(tmp_path_factory.mktemp("report") / "run.html")
    return path, path.read_text(encoding="utf-8")


def test_report_is_self_contained(report: tuple[Path, str]) -> None:
    _, html = report
    assert html.startswith("<!DOCTYPE html>")
    assert not re.search(r"<script[^>]*\bsrc\s*=", html, flags=re.IGNORECASE)
    assert not re.search(r"""src\s*=\s*["']?https?://""", html, flags=re.IGNORECASE)
    assert "Plotly.newPlot" in html
    assert len(html) > 1_000_000  # plotly.js itself is inlined


def test_report_contents(report: tuple[Path, str]) -> None:
    _, html = report
    assert "<title>Momentum &lt;v2&gt; &amp; friends</title>" in html
    assert '"type":"heatmap"' in html
    assert 'id="chart-equity"' in html
    assert 'id="chart-drawdown"' in html
    assert html.count('<tr class="trade">') == 2
    assert "BTC/USDT@binance" in html
    assert "2023-11-04T00:00:00Z" in html  # entry of the first trade, ISO UTC
    assert "-503.00" in html  # net pnl of the second trade
    assert 'id="metrics"' in html
    assert "sharpe" in html


def test_report_escapes_instrument_name(report: tuple[Path, str]) -> None:
    _, html = report
    assert "&lt;b&gt;EVIL&lt;/b&gt;@sim" in html
    assert "<b>EVIL" not in html


def test_atomic_write_leaves_no_temp_file(report: tuple[Path, str]) -> None:
    path, _ = report
    assert [p.name for p in path.parent.iterdir()] == ["run.html"]


def test_failed_write_keeps_previous_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "run.html"
    target.write_text("previous", encoding="utf-8")

    def boom(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write(target)
    assert target.read_text(encoding="utf-8") == "previous"
    assert [p.name for p in tmp_path.iterdir()] == ["run.html"]


def test_importing_analytics_does_not_import_plotly() -> None:
    code = "import sys, tradestack.analytics; assert 'plotly' not in sys.modules"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)
