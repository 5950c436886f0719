"""Metrics: parity with empyrical-reloaded / quantstats on real prices, and hand-computed cases."""

from __future__ import annotations

import csv
import json
import math
import warnings
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tradestack.analytics.metrics import (
    PerformanceMetrics,
    compute_metrics,
    drawdown_series,
    infer_periods_per_year,
    monthly_returns,
)
from tradestack.core.ids import InstrumentId
from tradestack.portfolio.trades import TradeRecord

SHARED = Path(__file__).resolve().parents[2] / "../shared"
EQUITIES = SHARED / "data/bars/equities"
DAY = 86_400 * 10**9
MINUTE = 60 * 10**9
MONDAY = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp()) * 10**9  # 2024-01-01 is a Monday
RATIOS = ("sharpe", "sortino", "max_drawdown", "cagr", "volatility", "calmar")


def metrics(*args: Any, **kwargs: Any) -> PerformanceMetrics:
    """compute_metrics with every warning turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return compute_metrics(*args, **kwargs)


def load_close(name: str) -> tuple[np.ndarray, np.ndarray]:
    path = EQUITIES / name
    if not path.exists():
        pytest.skip(f"shared market data not available: {path}")
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    header, body = rows[0], [r for r in rows[1:] if r]
    close_col = header.index("Close")
    dates = np.array([r[0] for r in body], dtype="datetime64[D]")
    close = np.array([float(r[close_col]) for r in body])
    return dates.astype("datetime64[ns]").astype(np.int64), close


@pytest.fixture(
    scope="module",
    params=["backtesting_GOOG.csv", "backtrader_orcl-1995-2014.txt"],
    ids=["GOOG", "ORCL"],
)
def prices(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    return load_close(request.param)


def trade(pnl: str, *, qty: str = "1", entry: str = "100", fees: str = "0", t0: int = 0,
          t1: int = 1, name: str = "ABC") -> TradeRecord:  # fmt: skip
    return TradeRecord(
        instrument_id=InstrumentId(name),
        side="long",
        qty=Decimal(qty),
        entry_ts_ns=t0,
        entry_price=Decimal(entry),
        exit_ts_ns=t1,
        exit_price=Decimal(entry),
        gross_pnl=Decimal(pnl) + Decimal(fees),
        fees=Decimal(fees),
    )


# --- parity on real return series ---------------------------------------------------------


def test_empyrical_parity(prices: tuple[np.ndarray, np.ndarray]) -> None:
    ep = pytest.importorskip("empyrical")
    ts, close = prices
    m = metrics(ts, close, [], periods_per_year=252)
    r = ep.simple_returns(close)
    assert len(r) == m.n_bars - 1
    expected = {
        "sharpe": ep.sharpe_ratio(r, annualization=252),
        "sortino": ep.sortino_ratio(r, annualization=252),
        "max_drawdown": ep.max_drawdown(r),
        "cagr": ep.annual_return(r, annualization=252),
        "volatility": ep.annual_volatility(r, annualization=252),
        "calmar": ep.calmar_ratio(r, annualization=252),
    }
    for name in RATIOS:
        assert getattr(m, name) == pytest.approx(expected[name], rel=1e-9), name
    assert m.max_drawdown < 0


def test_empyrical_parity_with_risk_free(prices: tuple[np.ndarray, np.ndarray]) -> None:
    ep = pytest.importorskip("empyrical")
    ts, close = prices
    rf = 0.0001  # per period, empyrical's convention
    m = metrics(ts, close, [], periods_per_year=252, risk_free=rf)
    r = ep.simple_returns(close)
    assert m.sharpe == pytest.approx(ep.sharpe_ratio(r, rf, annualization=252), rel=1e-9)
    assert m.sortino == pytest.approx(ep.sortino_ratio(r, rf, annualization=252), rel=1e-9)


def test_quantstats_parity(prices: tuple[np.ndarray, np.ndarray]) -> None:
    pd = pytest.importorskip("pandas")
    qs = pytest.importorskip("quantstats")
    ts, close = prices
    m = metrics(ts, close, [], periods_per_year=252)
    r = pd.Series(close[1:] / close[:-1] - 1, index=pd.to_datetime(ts[1:]))
    # quantstats' rf is annual (de-annualized internally); only rf=0 lines up with ours.
    assert qs.stats.sharpe(r, periods=252) == pytest.approx(m.sharpe, rel=1e-9)
    assert qs.stats.sortino(r, periods=252) == pytest.approx(m.sortino, rel=1e-9)
    assert qs.stats.volatility(r, periods=252) == pytest.approx(m.volatility, rel=1e-9)
    # From returns quantstats anchors the running peak at 1.0, i.e. at the first bar's equity.
    assert qs.stats.max_drawdown(r) == pytest.approx(m.max_drawdown, rel=1e-9)
    # quantstats 0.0.86 counts years as n_returns / periods, like empyrical. Older releases
    # used calendar time, (last - first).days / 365; see the calendar test below.
    assert qs.stats.cagr(r, periods=252) == pytest.approx(m.cagr, rel=1e-9)
    assert qs.stats.calmar(r, periods=252) == pytest.approx(m.calmar, rel=1e-9)


def test_calendar_year_cagr_via_periods_per_year(prices: tuple[np.ndarray, np.ndarray]) -> None:
    ts, close = prices
    n_returns = len(close) - 1
    years = (ts[-1] - ts[0]) / DAY / 365
    m = metrics(ts, close, [], periods_per_year=n_returns / years)
    assert m.cagr == pytest.approx((close[-1] / close[0]) ** (1 / years) - 1, rel=1e-9)


def test_daily_equity_dates_infer_252(prices: tuple[np.ndarray, np.ndarray]) -> None:
    ts, _ = prices
    assert infer_periods_per_year(ts) == 252.0


# --- periods per year ----------------------------------------------------------------------


def test_infer_business_days() -> None:
    days = np.arange(MONDAY, MONDAY + 28 * DAY, DAY)
    weekdays = days[((days // DAY) + 3) % 7 < 5]
    assert infer_periods_per_year(weekdays) == 252.0


def test_infer_crypto_minutes() -> None:
    ts = np.arange(MONDAY, MONDAY + 7 * DAY, MINUTE)  # a 24/7 week includes a weekend
    assert infer_periods_per_year(ts) == pytest.approx(525_600.0)


def test_infer_us_equity_minutes() -> None:
    session = MONDAY + (14 * 60 + 30) * MINUTE + np.arange(390) * MINUTE
    ts = np.concatenate([session + d * DAY for d in range(5)])
    assert infer_periods_per_year(ts) == pytest.approx(252.0 * 390)


def test_infer_weekly_uses_calendar() -> None:
    ts = MONDAY + np.arange(20) * 7 * DAY
    assert infer_periods_per_year(ts) == pytest.approx(365 / 7)


def test_infer_needs_two_bars() -> None:
    with pytest.raises(ValueError, match="two timestamps"):
        infer_periods_per_year([MONDAY])


# --- hand-computed cases -------------------------------------------------------------------

TS5 = MONDAY + np.arange(5) * DAY
EQ5 = np.array([100.0, 110.0, 99.0, 105.0, 121.0])


def test_drawdown_series_and_max() -> None:
    dd = drawdown_series(EQ5)
    np.testing.assert_allclose(dd, [0, 0, -0.1, 105 / 110 - 1, 0], atol=1e-15)
    m = metrics(TS5, EQ5, [], periods_per_year=252)
    assert m.max_drawdown == pytest.approx(-0.1)
    assert m.total_return == pytest.approx(0.21)
    assert m.starting_equity == 100.0
    assert m.final_equity == 121.0
    assert (m.start_ns, m.end_ns, m.n_bars) == (TS5[0], TS5[-1], 5)


def test_drawdown_duration_recovered() -> None:
    m = metrics(TS5, EQ5, [], periods_per_year=252)
    assert m.max_drawdown_duration_bars == 3  # peak at bar 1, recovered at bar 4
    assert m.max_drawdown_duration_days == 3.0


def test_drawdown_duration_unrecovered_runs_to_end() -> None:
    eq = np.array([100.0, 101.0, 102.0, 90.0, 95.0])
    m = metrics(TS5, eq, [], periods_per_year=252)
    assert m.max_drawdown_duration_bars == 2
    assert m.max_drawdown_duration_days == 2.0


def test_drawdown_duration_takes_longest_and_counts_calendar_days() -> None:
    ts = MONDAY + np.array([0, 1, 2, 3, 4, 7, 8, 9]) * DAY  # weekend between bars 4 and 5
    eq = np.array([100.0, 99.0, 101.0, 102.0, 100.0, 103.0, 104.0, 105.0])
    m = metrics(ts, eq, [], periods_per_year=252)
    assert m.max_drawdown_duration_bars == 2  # Mon→Wed and Thu→Mon are both two bars
    assert m.max_drawdown_duration_days == 4.0  # Thu→Mon


def test_no_drawdown_has_zero_duration() -> None:
    m = metrics(TS5, np.array([1.0, 2.0, 3.0, 4.0, 5.0]), [], periods_per_year=252)
    assert m.max_drawdown == 0.0
    assert m.max_drawdown_duration_bars == 0
    assert m.max_drawdown_duration_days == 0.0
    assert math.isnan(m.calmar)


def test_trade_statistics() -> None:
    trades = [
        trade("10", fees="1", entry="100"),
        trade("-5", entry="50"),
        trade("20", qty="2", entry="100"),
        trade("0"),
    ]
    m = metrics(TS5, EQ5, trades, periods_per_year=252)
    assert m.n_trades == 4
    assert m.win_rate == 0.5
    assert m.profit_factor == pytest.approx(30 / 5)
    assert m.avg_trade_pnl == pytest.approx(25 / 4)
    assert m.avg_trade_return == pytest.approx((0.1 - 0.1 + 0.1 + 0.0) / 4)
    assert m.best_trade_return == pytest.approx(0.1)
    assert m.worst_trade_return == pytest.approx(-0.1)


def test_exposure_and_turnover() -> None:
    m = metrics(
        TS5,
        EQ5,
        [],
        periods_per_year=252,
        gross_exposure=np.array([0.0, 100.0, -50.0, 0.0, 10.0]),
        traded_notional=321.0,
        total_fees=2.5,
    )
    assert m.exposure_fraction == pytest.approx(3 / 5)
    assert m.turnover == pytest.approx(321.0 / 107.0)  # mean equity 535 / 5
    assert m.total_fees == 2.5


def test_exposure_from_trades_when_no_gross_exposure() -> None:
    trades = [trade("1", t0=int(TS5[1]), t1=int(TS5[3]))]
    m = metrics(TS5, EQ5, trades, periods_per_year=252)
    assert m.exposure_fraction == pytest.approx(2 / 5)  # bars 1 and 2 are inside [entry, exit)


def test_monthly_returns() -> None:
    ts = np.array(["2024-01-02", "2024-01-31", "2024-02-15", "2024-02-29", "2024-04-01"])
    ts_ns = ts.astype("datetime64[D]").astype("datetime64[ns]").astype(np.int64)
    eq = np.array([100.0, 110.0, 99.0, 121.0, 133.1])
    got = monthly_returns(ts_ns, eq)
    assert [(y, mo) for y, mo, _ in got] == [(2024, 1), (2024, 2), (2024, 4)]
    np.testing.assert_allclose([r for *_, r in got], [0.1, 0.1, 0.1])


# --- edge cases ----------------------------------------------------------------------------


def test_no_losing_trades_profit_factor_inf_and_json_safe() -> None:
    m = metrics(TS5, EQ5, [trade("3"), trade("4")], periods_per_year=252)
    assert m.profit_factor == math.inf
    d = m.to_dict()
    assert d["profit_factor"] is None
    assert d["n_trades"] == 2
    assert set(d) == set(PerformanceMetrics.__struct_fields__)
    json.dumps(d, allow_nan=False)


def test_no_trades() -> None:
    m = metrics(TS5, EQ5, [], periods_per_year=252)
    assert m.n_trades == 0
    for name in ("win_rate", "profit_factor", "avg_trade_pnl", "best_trade_return"):
        assert math.isnan(getattr(m, name))
    assert m.exposure_fraction == 0.0


def test_flat_equity_has_nan_ratios() -> None:
    m = metrics(TS5, np.full(5, 1000.0), [], periods_per_year=252)
    assert m.volatility == 0.0
    assert math.isnan(m.sharpe)
    assert math.isnan(m.sortino)
    assert m.max_drawdown == 0.0
    assert m.cagr == 0.0
    json.dumps(m.to_dict(), allow_nan=False)


def test_constant_positive_returns_sharpe_nan_sortino_inf() -> None:
    m = metrics(TS5, 2.0 ** np.arange(5), [], periods_per_year=252)  # every return exactly 1.0
    assert math.isnan(m.sharpe)  # zero dispersion: undefined rather than empyrical's inf
    assert m.sortino == math.inf


@pytest.mark.parametrize("n", [0, 1])
def test_fewer_than_two_bars(n: int) -> None:
    m = metrics(TS5[:n], EQ5[:n], [])
    assert m.n_bars == n
    assert math.isnan(m.periods_per_year)
    for name in RATIOS:
        assert math.isnan(getattr(m, name)), name
    assert m.max_drawdown_duration_bars == 0
    json.dumps(m.to_dict(), allow_nan=False)


def test_periods_inferred_when_not_given() -> None:
    assert metrics(TS5, EQ5, []).periods_per_year == 252.0


def test_mismatched_lengths_rejected() -> None:
    with pytest.raises(ValueError, match="same length"):
        compute_metrics(TS5, EQ5[:3], [])
