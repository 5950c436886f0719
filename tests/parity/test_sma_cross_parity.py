"""SMA(10/30) crossover on real GOOG daily bars: same trades and equity as backtesting.py and
backtrader, and the same metrics as empyrical-reloaded / quantstats on our equity curve.

Conventions bridged (see benchmarks/peers.py for the peer side):
- fixed size of 10 shares, long/short reversal as one order of 20, zero fees and slippage;
- next-open fills = backtesting.py default and backtrader default; close fills =
  backtesting.py ``trade_on_close`` and backtrader cheat-on-close;
- final equity is cash plus the open position at the last close (not liquidated);
- trades are closed round trips, timed at the fill bar.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from benchmarks.peers import PeerResult, run_backtesting_py, run_backtrader
from benchmarks.workload import load_csv

from tradestack.core import Instrument, InstrumentId
from tradestack.data import load_bars
from tradestack.engine import BacktestEngine, BacktestResult
from tradestack.execution import BarVenueConfig
from tradestack.strategies.sma_cross import SmaCross

FAST, SLOW, QTY, CASH = 10, 30, 10, 100_000
GOOG = InstrumentId("GOOG", "nasdaq")


def _ours(path: Path, fill: str) -> BacktestResult:
    series = load_bars(path, GOOG)
    inst = Instrument(GOOG, tick_size=Decimal("0.01"), lot_size=Decimal("1"))
    strategy = SmaCross(fast=FAST, slow=SLOW, qty=float(QTY))
    venue = BarVenueConfig(fill_at="next_open" if fill == "next_open" else "close")
    return BacktestEngine(
        strategy, [series], instruments=[inst], starting_cash=CASH, venue=venue
    ).run()


def _trade_rows(result: BacktestResult) -> list[tuple[int, int, float, float, int]]:
    rows = []
    for t in result.trades:
        size = int(t.qty) if t.side == "long" else -int(t.qty)
        rows.append((t.entry_ts_ns, t.exit_ts_ns, float(t.entry_price), float(t.exit_price), size))
    return rows


@pytest.fixture(scope="module")
def goog(shared_data: Path) -> Path:
    return shared_data / "bars" / "equities" / "backtesting_GOOG.csv"


@pytest.mark.slow
@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize(
    "peer", [run_backtesting_py, run_backtrader], ids=["backtesting.py", "backtrader"]
)
def test_same_trades_and_equity_as_peer(goog: Path, fill: str, peer: object) -> None:
    ours = _ours(goog, fill)
    theirs: PeerResult = peer(load_csv(goog), fast=FAST, slow=SLOW, qty=QTY, cash=CASH, fill=fill)  # type: ignore[operator]

    assert len(ours.trades) == theirs.n_trades > 50
    assert _trade_rows(ours) == [
        (e, x, pytest.approx(pe, rel=1e-12), pytest.approx(px, rel=1e-12), s)
        for e, x, pe, px, s in theirs.trades
    ]
    assert ours.final_equity == pytest.approx(theirs.final_equity, rel=1e-9)
    assert int(ours.portfolio.position(GOOG).qty) == theirs.final_position


def test_metrics_equal_empyrical_and_quantstats(goog: Path) -> None:
    empyrical = pytest.importorskip("empyrical")
    qs_stats = pytest.importorskip("quantstats.stats")
    import pandas as pd

    result = _ours(goog, "next_open")
    metrics = result.metrics()
    assert metrics.periods_per_year == 252
    returns = result.equity[1:] / result.equity[:-1] - 1.0
    index = pd.to_datetime(result.ts_ns[1:], utc=True).tz_localize(None)
    series = pd.Series(returns, index=index)
    ppy = metrics.periods_per_year

    expected = {
        "sharpe": empyrical.sharpe_ratio(returns, annualization=ppy),
        "sortino": empyrical.sortino_ratio(returns, annualization=ppy),
        "max_drawdown": empyrical.max_drawdown(returns),
        "cagr": empyrical.annual_return(returns, annualization=ppy),
        "volatility": empyrical.annual_volatility(returns, annualization=ppy),
        "calmar": empyrical.calmar_ratio(returns, annualization=ppy),
    }
    for name, value in expected.items():
        assert getattr(metrics, name) == pytest.approx(float(value), rel=1e-9), name

    assert metrics.sharpe == pytest.approx(qs_stats.sharpe(series, periods=ppy), rel=1e-9)
    assert metrics.sortino == pytest.approx(qs_stats.sortino(series, periods=ppy), rel=1e-9)
    assert metrics.max_drawdown == pytest.approx(qs_stats.max_drawdown(series), rel=1e-9)
    assert metrics.volatility == pytest.approx(qs_stats.volatility(series, periods=ppy), rel=1e-9)
    assert np.isfinite(metrics.sharpe)
