"""The sweep metrics of a vectorized run without the ledger equal the ledger's: closed trades,
wins (the sign of each trade's net PnL), fees and the equity-curve ratios, on real bars (long and
short, instruments sharing cash, fees, slippage, fractional lots) and on random target weights;
trades that come out exactly even are decided exactly, or on the ledger."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.engine.vectorized.test_parity import (
    AAPL,
    BTC,
    COSTLESS,
    COSTLY,
    EXAMPLES,
    GOOG,
    MSFT,
    ORCL,
    VENUES,
    _random_feeds,
    _scenario,
    _shared,
    _Weights,
)

from tradestack.core import BarSeries, Instrument, InstrumentId
from tradestack.data import load_bars
from tradestack.engine import BacktestResult, Strategy
from tradestack.engine.vectorized import VectorizedEngine, VectorizedResult
from tradestack.engine.vectorized.summary import (
    SWEEP_FIELDS,
    _round_trips,
    sweep_metrics,
    trade_summary,
)
from tradestack.execution import BarVenueConfig
from tradestack.research.sweep import METRIC_COLUMNS
from tradestack.strategies.momentum import Momentum
from tradestack.strategies.sma_cross import SmaCross


@pytest.fixture(scope="module")
def pair() -> list[BarSeries]:
    """Apple and Microsoft daily bars (bundled)."""
    return [load_bars(EXAMPLES / f"{i.symbol}_2012-2014_daily.csv", i) for i in (AAPL, MSFT)]


@pytest.fixture(scope="module")
def shared(shared_data: Path) -> dict[InstrumentId, BarSeries]:
    """Google, Oracle and monthly bitcoin bars from the shared data."""
    files = {
        GOOG: "equities/backtesting_GOOG.csv",
        ORCL: "equities/backtrader_orcl-1995-2014.txt",
        BTC: "crypto/backtesting_BTCUSD.csv",
    }
    return {i: _shared(shared_data, rel, i) for i, rel in files.items()}


def _run(
    strategy: Strategy,
    feeds: list[BarSeries],
    venue: BarVenueConfig = COSTLY,
    instruments: tuple[Instrument, ...] = (),
    cash: int = 100_000,
) -> VectorizedResult:
    result = VectorizedEngine(
        strategy, feeds, instruments=instruments, starting_cash=cash, venue=venue
    ).run()
    assert isinstance(result, VectorizedResult)
    return result


def _assert_ledger_equal(
    result: VectorizedResult, *, ledger: bool = False
) -> dict[str, int | float | None]:
    """sweep_metrics equals metrics() after the ledger rebuild (ints exactly, floats to 1e-9);
    the ledger is built only when ``ledger`` says so. Returns the fast values."""
    fast = sweep_metrics(result)
    assert (result._portfolio is not None) is ledger
    full = result.metrics().to_dict()
    assert set(METRIC_COLUMNS) <= set(fast) == set(SWEEP_FIELDS)
    for key in SWEEP_FIELDS:
        want, got = full[key], fast[key]
        if isinstance(want, float) and key != "win_rate":
            assert got == pytest.approx(want, rel=1e-9, abs=0.0), key
        else:
            assert (type(got), got) == (type(want), want), key
    summary = trade_summary(result)
    if summary is not None:
        assert summary.n_wins == sum(t.pnl > 0 for t in result.trades)
    return fast


# -- real bars ------------------------------------------------------------------------------------
@pytest.mark.parametrize("venue", list(VENUES.values()), ids=list(VENUES))
@pytest.mark.parametrize(("fast", "slow"), [(3, 8), (10, 30)])
def test_sma_cross_long_short_on_two_instruments(
    pair: list[BarSeries], fast: int, slow: int, venue: BarVenueConfig
) -> None:
    fast_values = _assert_ledger_equal(
        _run(SmaCross(fast=fast, slow=slow, allow_short=venue.allow_short), pair, venue)
    )
    assert isinstance(fast_values["n_trades"], int) and fast_values["n_trades"] > 10


@pytest.mark.parametrize("venue", [COSTLESS, COSTLY], ids=["costless", "fees+slippage"])
def test_momentum_shares_cash(pair: list[BarSeries], venue: BarVenueConfig) -> None:
    _assert_ledger_equal(_run(Momentum(lookback=5, fraction=1.0), pair, venue))


def test_leverage_and_shared_equities(
    pair: list[BarSeries], shared: dict[InstrumentId, BarSeries]
) -> None:
    venue = BarVenueConfig(leverage=Decimal(2), slippage_bps=Decimal(3), taker_fee_bps=Decimal(2))
    _assert_ledger_equal(_run(SmaCross(fast=5, slow=15, fraction=1.9), pair, venue))
    equities = [shared[GOOG], shared[ORCL]]
    for venue in (COSTLESS, COSTLY):
        _assert_ledger_equal(_run(SmaCross(fast=5, slow=60), equities, venue))


def test_fractional_crypto_beside_equities(shared: dict[InstrumentId, BarSeries]) -> None:
    specs = (
        Instrument(BTC, lot_size=Decimal("0.001"), min_notional=Decimal(10)),
        Instrument(ORCL, tick_size=Decimal("0.0001"), taker_fee_bps=Decimal(3)),
    )
    feeds = [shared[GOOG], shared[ORCL], shared[BTC]]
    _assert_ledger_equal(_run(Momentum(lookback=3), feeds, BarVenueConfig(), specs))


def test_fine_grids_past_int64(shared: dict[InstrumentId, BarSeries]) -> None:
    """Satoshi lots at 1e-8 ticks: Σ lots × ticks passes int64 and the fees are summed in Python
    integers."""
    fine = Instrument(BTC, tick_size=Decimal("1e-8"), lot_size=Decimal("1e-8"))
    result = _run(SmaCross(fast=2, slow=5), [shared[BTC]], COSTLY, (fine,))
    assert _assert_ledger_equal(result)["n_trades"]


def test_a_rebate_beside_a_fee(pair: list[BarSeries]) -> None:
    specs = (
        Instrument(AAPL, taker_fee_bps=Decimal("-1.3")),
        Instrument(MSFT, taker_fee_bps=Decimal("1.3")),
    )
    venue = BarVenueConfig(slippage_bps=Decimal(2))
    result = _run(SmaCross(fast=3, slow=8, fraction=0.45), pair, venue, specs)
    _assert_ledger_equal(result)
    assert {f.fee > 0 for f in result.fills} == {True, False}


# -- random target weights ------------------------------------------------------------------------
#: test_parity's scenario keys, by the Instrument and BarVenueConfig fields they set
_RULES = {"lot_size": "lot", "min_qty": "min_qty", "min_notional": "min_notional"}
_VENUE = {"slippage_bps": "slippage", "taker_fee_bps": "fee", "allow_short": "allow_short"}


@settings(derandomize=True, deadline=None, max_examples=80)
@given(data=st.data())
def test_random_target_weights(pair: list[BarSeries], data: st.DataObject) -> None:
    """test_parity's random scenarios, with a rebate on the first instrument, no fee on the
    second and a fee on the third where the venue sets none."""
    feeds = _random_feeds(pair)
    s: dict[str, Any] = data.draw(_scenario(tuple(len(f) for f in feeds)))
    rules = {field: s[key] for field, key in _RULES.items()}
    specs = tuple(
        Instrument(f.instrument_id, taker_fee_bps=Decimal(n - 1), **rules)
        for n, f in enumerate(feeds)
    )
    venue = BarVenueConfig(leverage=s["leverage"], **{f: s[k] for f, k in _VENUE.items()})
    weights = {f.instrument_id: w for f, w in zip(feeds, s["weights"], strict=True)}
    _assert_ledger_equal(_run(_Weights(weights), feeds, venue, specs, s["cash"]))


# -- trades that come out even --------------------------------------------------------------------
def _bars(opens: list[float], closes: list[float]) -> BarSeries:
    o, c = np.array(opens), np.array(closes)
    ts = np.arange(len(o), dtype=np.int64) * 86_400 * 10**9
    return BarSeries(AAPL, ts, o, np.maximum(o, c), np.minimum(o, c), c, np.full(len(o), 1e6))


def test_even_trades_without_fees_are_decided_exactly() -> None:
    """At one price, every round trip (long, short, flips) nets exactly zero: no wins."""
    n = 60
    bars = _bars([100.0] * n, [100.0] * n)
    weights = np.tile([0.5, math.nan, -0.5, 0.8, 0.0, math.nan], n // 6)
    result = _run(_Weights({AAPL: weights}), [bars], COSTLESS)
    fast = _assert_ledger_equal(result)
    assert fast["n_trades"] == 30 and fast["win_rate"] == 0.0


def test_a_trade_whose_fees_equal_its_gain_is_read_from_the_ledger() -> None:
    """Bought at 40, sold at 60 with 20 % fees: the net PnL is exactly 0, too close to call in
    floats, so the ledger decides (not a win)."""
    bars = _bars([50.0, 40.0, 60.0, 60.0], [50.0, 50.0, 60.0, 60.0])
    weights = np.array([0.5, 0.0, math.nan, math.nan])
    venue = BarVenueConfig(taker_fee_bps=Decimal(2000))
    result = _run(_Weights({AAPL: weights}), [bars], venue)
    assert trade_summary(result) is None
    fast = _assert_ledger_equal(result, ledger=True)
    assert fast["n_trades"] == 1 and fast["win_rate"] == 0.0
    assert result.trades[0].pnl == 0


@pytest.mark.parametrize(("first", "second", "won"), [(-1, 1, 1), (1, -1, 0)])
def test_an_even_looking_trade_without_fees_is_decided_on_integers(
    first: int, second: int, won: int
) -> None:
    """Buy 3 lots at T + first and 2 at T + second, sell 5 at T: the PnL is ±1 lot × tick, far
    below the float error of values near 2**57 ticks; the integers decide, unless the trade
    paid fees (then it is undecided)."""
    t = 2**55
    fills = (
        np.zeros(3, dtype=np.int64),
        np.array([3, 2, -5], dtype=np.int64),
        np.array([t + first, t + second, t], dtype=np.int64),
    )
    for free, want in ((True, (1, won, 0)), (False, (1, 0, 1))):
        volume = np.zeros(1, dtype=np.int64)
        got = _round_trips(*fills, np.zeros(3), np.array([1.0]), np.array([free]), volume)
        assert got[:3] == want
        assert volume[0] == 10 * t + 3 * first + 2 * second


def test_the_sweep_metrics_leave_the_ledger_unbuilt(pair: list[BarSeries]) -> None:
    result = _run(SmaCross(fast=5, slow=20), pair)
    assert isinstance(result, BacktestResult)
    assert sweep_metrics(result)["final_equity"] == result.final_equity
    assert result._portfolio is None
