"""The vectorized runner against the event-driven engine on real bars: the same orders, fills,
trades and equity curve (relative 1e-9), for the example strategies and for random target
weights, with fees, slippage, lot/notional minimums, shorting on and off and leverage."""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core import Bar, BarSeries, Instrument, InstrumentId, InstrumentKind
from tradestack.core.orders import OrderStatus
from tradestack.core.series import FloatArray
from tradestack.data import load_bars
from tradestack.engine import BacktestEngine, BacktestResult, Strategy, StrategyContext
from tradestack.engine.vectorized import (
    NotVectorizable,
    VectorizedEngine,
    VectorizedResult,
    sma_stream,
)
from tradestack.engine.vectorized.signals import sma_cross_weights
from tradestack.engine.weights import SparseWeights
from tradestack.execution import BarVenueConfig
from tradestack.features.indicators import SMA
from tradestack.strategies.momentum import Momentum
from tradestack.strategies.sma_cross import SmaCross

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "data"
AAPL, MSFT = InstrumentId("AAPL", "nasdaq"), InstrumentId("MSFT", "nasdaq")
GOOG, ORCL = InstrumentId("GOOG", "nasdaq"), InstrumentId("ORCL", "nasdaq")
BTC = InstrumentId("BTCUSD", "crypto")

COSTLESS = BarVenueConfig()
COSTLY = BarVenueConfig(slippage_bps=Decimal(5), taker_fee_bps=Decimal(10))
LONG_ONLY = BarVenueConfig(
    slippage_bps=Decimal("2.5"), taker_fee_bps=Decimal("1.5"), allow_short=False
)
VENUES = {"costless": COSTLESS, "fees+slippage": COSTLY, "long-only": LONG_ONLY}


@pytest.fixture(scope="module")
def aapl_msft() -> list[BarSeries]:
    return [
        load_bars(EXAMPLES / "AAPL_2012-2014_daily.csv", AAPL),
        load_bars(EXAMPLES / "MSFT_2012-2014_daily.csv", MSFT),
    ]


def _shared(shared_data: Path, rel: str, inst: InstrumentId) -> BarSeries:
    path = shared_data / "bars" / rel
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return load_bars(path, inst)


@pytest.fixture(scope="module")
def goog(shared_data: Path) -> BarSeries:
    return _shared(shared_data, "equities/backtesting_GOOG.csv", GOOG)


@pytest.fixture(scope="module")
def orcl(shared_data: Path) -> BarSeries:
    return _shared(shared_data, "equities/backtrader_orcl-1995-2014.txt", ORCL)


@pytest.fixture(scope="module")
def btc(shared_data: Path) -> BarSeries:
    return _shared(shared_data, "crypto/backtesting_BTCUSD.csv", BTC)


def _run_both(
    make: type[Strategy] | object,
    feeds: list[BarSeries],
    venue: BarVenueConfig,
    instruments: tuple[Instrument, ...] = (),
    cash: int = 100_000,
) -> tuple[BacktestResult, BacktestResult]:
    results = []
    for engine in (BacktestEngine, VectorizedEngine):
        strategy = make()  # type: ignore[operator]
        results.append(
            engine(
                strategy,
                feeds,
                instruments=instruments,
                starting_cash=cash,
                venue=venue,
                periods_per_year=252,
            ).run()
        )
    return results[0], results[1]


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    scale = np.maximum(np.abs(a), 1.0)
    return float(np.max(np.abs(a - b) / scale)) if len(a) else 0.0


def _assert_same(ev: BacktestResult, vr: BacktestResult) -> float:
    """Identical orders, fills, trades; equity and exposure within 1e-9. Returns the max
    relative equity difference."""
    assert np.array_equal(ev.ts_ns, vr.ts_ns)
    diff = _rel(ev.equity, vr.equity)
    assert diff <= 1e-9
    assert _rel(ev.gross_exposure, vr.gross_exposure) <= 1e-9
    assert [(o.instrument_id, o.side, o.qty, o.ts_init_ns, o.status) for o in ev.orders] == [
        (o.instrument_id, o.side, o.qty, o.ts_init_ns, o.status) for o in vr.orders
    ]
    assert [(f.instrument_id, f.side, f.qty, f.price, f.ts_event_ns) for f in ev.fills] == [
        (f.instrument_id, f.side, f.qty, f.price, f.ts_event_ns) for f in vr.fills
    ]
    assert len(ev.trades) == len(vr.trades)
    for a, b in zip(ev.trades, vr.trades, strict=True):
        assert (a.instrument_id, a.side, a.qty, a.entry_ts_ns, a.exit_ts_ns) == (
            b.instrument_id,
            b.side,
            b.qty,
            b.entry_ts_ns,
            b.exit_ts_ns,
        )
        assert (a.entry_price, a.exit_price) == (b.entry_price, b.exit_price)
        assert float(b.pnl) == pytest.approx(float(a.pnl), rel=1e-9, abs=1e-9)
        assert float(b.fees) == pytest.approx(float(a.fees), rel=1e-9, abs=1e-9)
    assert ev.portfolio.cash == vr.portfolio.cash
    assert ev.final_equity == pytest.approx(vr.final_equity, rel=1e-9)
    return diff


def _assert_same_metrics(ev: BacktestResult, vr: BacktestResult) -> None:
    a, b = ev.metrics().to_dict(), vr.metrics().to_dict()
    assert a.keys() == b.keys()
    for key, x in a.items():
        y = b[key]
        if isinstance(x, float) and isinstance(y, float):
            assert y == pytest.approx(x, rel=1e-9, abs=1e-12), key
        else:
            assert x == y, key


# -- example strategies ---------------------------------------------------------------------------
@pytest.mark.parametrize("venue", list(VENUES.values()), ids=list(VENUES))
@pytest.mark.parametrize(("fast", "slow"), [(3, 8), (10, 30), (20, 50)])
def test_sma_cross_on_two_instruments(
    aapl_msft: list[BarSeries], fast: int, slow: int, venue: BarVenueConfig
) -> None:
    ev, vr = _run_both(lambda: SmaCross(fast=fast, slow=slow), aapl_msft, venue)
    _assert_same(ev, vr)
    assert len(ev.orders) > 10


@pytest.mark.parametrize("venue", list(VENUES.values()), ids=list(VENUES))
@pytest.mark.parametrize("lookback", [5, 20])
def test_momentum_shares_cash(
    aapl_msft: list[BarSeries], lookback: int, venue: BarVenueConfig
) -> None:
    ev, vr = _run_both(lambda: Momentum(lookback=lookback, fraction=1.0), aapl_msft, venue)
    _assert_same(ev, vr)
    assert len(ev.trades) > 10
    _assert_same_metrics(ev, vr)


def test_leveraged_sma_cross_without_shorting_strategy(aapl_msft: list[BarSeries]) -> None:
    venue = BarVenueConfig(leverage=Decimal(2), slippage_bps=Decimal(3), taker_fee_bps=Decimal(2))
    ev, vr = _run_both(
        lambda: SmaCross(fast=5, slow=15, fraction=1.9, allow_short=False), aapl_msft, venue
    )
    _assert_same(ev, vr)


@pytest.mark.parametrize("venue", [COSTLESS, COSTLY], ids=["costless", "fees+slippage"])
def test_sma_cross_on_shared_equities(
    goog: BarSeries, orcl: BarSeries, venue: BarVenueConfig
) -> None:
    for fast, slow in [(10, 30), (5, 60)]:
        ev, vr = _run_both(
            lambda f=fast, s=slow: SmaCross(fast=f, slow=s),
            [goog, orcl],
            venue,
        )
        _assert_same(ev, vr)
        assert len(ev.trades) > 20


def test_momentum_on_shared_equities_and_fractional_crypto(
    goog: BarSeries, orcl: BarSeries, btc: BarSeries
) -> None:
    specs = (
        Instrument(BTC, lot_size=Decimal("0.001"), min_notional=Decimal(10)),
        Instrument(ORCL, tick_size=Decimal("0.0001"), taker_fee_bps=Decimal(3)),
    )
    venue = BarVenueConfig(slippage_bps=Decimal(7))
    ev, vr = _run_both(lambda: Momentum(lookback=3), [goog, orcl, btc], venue, specs)
    _assert_same(ev, vr)
    assert any(t.instrument_id == BTC and t.qty % 1 for t in ev.trades)


def test_sma_cross_on_crypto_with_fractional_lots(btc: BarSeries) -> None:
    spec = (Instrument(BTC, lot_size=Decimal("0.0001"), taker_fee_bps=Decimal(10)),)
    ev, vr = _run_both(lambda: SmaCross(fast=2, slow=5), [btc], COSTLY, spec, cash=10_000)
    _assert_same(ev, vr)
    assert len(ev.trades) > 5


# -- random target weights ------------------------------------------------------------------------
class _Weights(Strategy):
    """Calls ``order_target_percent`` with preset weights (the event-driven side)."""

    def __init__(self, weights: Mapping[InstrumentId, FloatArray]) -> None:
        super().__init__()
        self.weights = weights

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        w = self.weights.get(bar.instrument_id)
        if w is None:
            return
        i = len(ctx.history(bar.instrument_id, "close")) - 1
        if not math.isnan(w[i]):
            ctx.order_target_percent(bar.instrument_id, float(w[i]))

    def target_weights(
        self, bars: Mapping[InstrumentId, BarSeries]
    ) -> dict[InstrumentId, FloatArray] | None:
        return {inst: np.asarray(w) for inst, w in self.weights.items()}


_WEIGHT = st.one_of(
    st.sampled_from([math.nan, 0.0, -0.0, 1.0, -1.0, 1.5, -1.5, 0.5, -0.5, 0.999, 1.001]),
    st.floats(-1.5, 1.5, allow_nan=False),
)


@st.composite
def _scenario(draw: st.DrawFn, lengths: tuple[int, ...]) -> dict[str, object]:
    weights = []
    for n in lengths:
        w = np.full(n, math.nan)
        picks = draw(st.lists(st.tuples(st.integers(0, n - 1), _WEIGHT), max_size=60))
        for i, x in picks:
            w[i] = x
        if draw(st.booleans()):  # a dense stretch: a decision on every bar
            lo = draw(st.integers(0, n - 40))
            w[lo : lo + 40] = draw(st.lists(_WEIGHT, min_size=40, max_size=40))
        weights.append(w)
    return {
        "weights": weights,
        "lot": draw(st.sampled_from([Decimal(1), Decimal(5), Decimal("0.01")])),
        "min_qty": draw(st.sampled_from([Decimal(0), Decimal(20)])),
        "min_notional": draw(st.sampled_from([Decimal(0), Decimal(2500)])),
        "fee": draw(st.sampled_from([None, Decimal(0), Decimal(10), Decimal("0.7")])),
        "slippage": draw(st.sampled_from([Decimal(0), Decimal(4), Decimal("12.5")])),
        "allow_short": draw(st.booleans()),
        "leverage": draw(st.sampled_from([Decimal(1), Decimal(2)])),
        "cash": draw(st.sampled_from([20_000, 100_000])),
    }


def _random_feeds(aapl_msft: list[BarSeries]) -> list[BarSeries]:
    # a third instrument whose bars start later and end earlier than the others' (not every
    # timestamp has every instrument), cut from MSFT's
    msft = aapl_msft[1]
    lo, hi = 100, len(msft) - 150
    third = BarSeries(
        InstrumentId("MSFT2", "nasdaq"),
        msft.ts_ns[lo:hi],
        msft.open[lo:hi] * 0.37,
        msft.high[lo:hi] * 0.37,
        msft.low[lo:hi] * 0.37,
        msft.close[lo:hi] * 0.37,
        msft.volume[lo:hi],
    )
    return [*aapl_msft, third]


@settings(derandomize=True, deadline=None, max_examples=60)
@given(data=st.data())
def test_random_target_weights(aapl_msft: list[BarSeries], data: st.DataObject) -> None:
    feeds = _random_feeds(aapl_msft)
    s = data.draw(_scenario(tuple(len(f) for f in feeds)))
    weights = dict(zip([f.instrument_id for f in feeds], s["weights"], strict=True))  # type: ignore[call-overload]
    specs = tuple(
        Instrument(
            f.instrument_id,
            lot_size=s["lot"],  # type: ignore[arg-type]
            min_qty=s["min_qty"],  # type: ignore[arg-type]
            min_notional=s["min_notional"],  # type: ignore[arg-type]
            taker_fee_bps=Decimal(2) if n == 0 else Decimal(0),
        )
        for n, f in enumerate(feeds)
    )
    venue = BarVenueConfig(
        slippage_bps=s["slippage"],  # type: ignore[arg-type]
        taker_fee_bps=s["fee"],  # type: ignore[arg-type]
        allow_short=s["allow_short"],  # type: ignore[arg-type]
        leverage=s["leverage"],  # type: ignore[arg-type]
    )
    ev, vr = _run_both(lambda: _Weights(weights), feeds, venue, specs, s["cash"])  # type: ignore[arg-type]
    _assert_same(ev, vr)


def test_rejections_and_fill_time_cancels_match(aapl_msft: list[BarSeries]) -> None:
    """Weights at and past the leverage limit: the venue rejects some orders for buying power or
    minimum notional on submit and cancels others at a gapped open; the kernel does the same."""
    rng = np.random.default_rng(7)
    weights = {}
    for f in aapl_msft:
        w = np.full(len(f), math.nan)
        w[::2] = rng.choice([1.0, -1.0, 0.999, -0.999, 1.2, 0.02, 0.0], size=len(w[::2]))
        weights[f.instrument_id] = w
    specs = tuple(Instrument(f.instrument_id, min_notional=Decimal(3000)) for f in aapl_msft)
    ev, vr = _run_both(lambda: _Weights(weights), aapl_msft, COSTLY, specs)
    _assert_same(ev, vr)
    reasons = [e.reason for o in ev.orders for e in o.events if hasattr(e, "reason")]
    assert any("insufficient cash" in r for r in reasons)
    assert any("minimum notional" in r for r in reasons)
    assert any("at fill price" in r for r in reasons)
    statuses = {o.status for o in vr.orders}
    assert {OrderStatus.REJECTED, OrderStatus.CANCELED, OrderStatus.FILLED} <= statuses


# -- the surface ----------------------------------------------------------------------------------
def test_sma_stream_is_the_incremental_sma_bit_for_bit(aapl_msft: list[BarSeries]) -> None:
    closes = aapl_msft[0].close
    for period in (1, 2, 7, 30, 200):
        sma = SMA(period)
        assert np.array_equal(
            sma_stream(closes, period), [sma.update(x) for x in closes], equal_nan=True
        )


def test_unsupported_settings_are_refused(aapl_msft: list[BarSeries]) -> None:
    with pytest.raises(NotVectorizable, match="target_weights returned None"):
        VectorizedEngine(SmaCross(qty=10.0), aapl_msft).run()
    with pytest.raises(NotVectorizable, match="next open only"):
        VectorizedEngine(SmaCross(), aapl_msft, venue=BarVenueConfig(fill_at="close"))
    perp = Instrument(AAPL, kind=InstrumentKind.PERPETUAL)
    with pytest.raises(NotVectorizable, match="perpetual"):
        VectorizedEngine(SmaCross(), aapl_msft, instruments=[perp])


def test_ledger_is_built_only_when_asked(aapl_msft: list[BarSeries]) -> None:
    result = VectorizedEngine(SmaCross(fast=5, slow=20), aapl_msft).run()
    assert result.metrics().n_trades > 0  # trades needed: built now
    sweep = VectorizedEngine(SmaCross(fast=5, slow=20), aapl_msft).run()
    assert sweep.final_equity == result.final_equity
    assert sweep._portfolio is None  # type: ignore[attr-defined]


def test_sma_cross_weights_are_the_crossovers_of_two_streams(goog: BarSeries) -> None:
    closes = np.concatenate(([math.nan] * 5, np.tile(goog.close, 2)))  # past the rebuild span
    for fast, slow in ((2, 3), (10, 30), (50, 1200)):
        f, s = sma_stream(closes, fast), sma_stream(closes, slow)
        pf, ps = np.roll(f, 1), np.roll(s, 1)
        pf[0] = ps[0] = math.nan
        want = np.full(len(closes), math.nan)
        want[(pf > ps) & (f < s)] = -0.5
        want[(pf < ps) & (f > s)] = 0.9
        got = np.asarray(sma_cross_weights(closes, fast, slow, 0.9, -0.5))
        assert np.array_equal(got, want, equal_nan=True)
        assert np.count_nonzero(~np.isnan(got)) > 0
    with pytest.raises(ValueError, match="must be finite"):
        sma_cross_weights(closes, 2, 3, math.nan, 0.0)


def test_lazy_gross_exposure_is_the_event_engines(aapl_msft: list[BarSeries]) -> None:
    """The runner rebuilds the gross exposure from the fills when asked; with three
    instruments sharing cash, long and short, ties and gaps in time, it is the event engine's
    exposure and the same bars are exposed."""
    msft = aapl_msft[1]
    part = slice(100, 400)
    third = BarSeries(
        InstrumentId("MSFT2", "nasdaq"),
        msft.ts_ns[part],
        msft.open[part],
        msft.high[part],
        msft.low[part],
        msft.close[part],
        msft.volume[part],
    )
    feeds = [*aapl_msft, third]
    rng = np.random.default_rng(7)
    weights = {
        f.instrument_id: np.where(rng.random(len(f)) < 0.1, rng.uniform(-0.3, 0.3, len(f)), np.nan)
        for f in feeds
    }
    ev, vr = _run_both(lambda: _Weights(weights), feeds, COSTLY)
    assert isinstance(vr, VectorizedResult) and vr._gross is None  # not built by the run
    _assert_same(ev, vr)
    assert _rel(ev.gross_exposure, vr.gross_exposure) <= 1e-12
    assert np.array_equal(ev.gross_exposure != 0, vr.gross_exposure != 0)
    assert np.count_nonzero(vr.gross_exposure) > len(vr.gross_exposure) // 2


def test_prices_beyond_exact_ticks_are_refused(aapl_msft: list[BarSeries]) -> None:
    fine = Instrument(AAPL, tick_size=Decimal("1e-14"))
    with pytest.raises(NotVectorizable, match="more than 1e14 ticks"):
        VectorizedEngine(SmaCross(), aapl_msft[:1], instruments=[fine])
    tiny_lots = Instrument(AAPL, lot_size=Decimal("1e-12"))
    rich = VectorizedEngine(SmaCross(), aapl_msft[:1], instruments=[tiny_lots], starting_cash=10**9)
    with pytest.raises(NotVectorizable, match="more than 1e14 lots"):
        rich.run()


class _SparseWeights(_Weights):
    """The same decisions handed to the vectorized runner in the sparse form."""

    def target_weights(
        self, bars: Mapping[InstrumentId, BarSeries]
    ) -> dict[InstrumentId, SparseWeights] | None:
        out = {}
        for inst, w in self.weights.items():
            at = np.flatnonzero(~np.isnan(w))
            out[inst] = SparseWeights(at, np.asarray(w)[at], len(w))
        return out


def test_sparse_weights_trade_as_the_dense_ones(aapl_msft: list[BarSeries]) -> None:
    """Two instruments sharing cash (merged in time, ties in feed order), decisions handed
    over sparse: the event engine's orders, fills and equity, and the dense run's."""
    rng = np.random.default_rng(11)
    weights = {
        f.instrument_id: np.where(rng.random(len(f)) < 0.05, rng.uniform(-0.4, 0.6, len(f)), np.nan)
        for f in aapl_msft
    }
    ev, sparse = _run_both(lambda: _SparseWeights(weights), aapl_msft, COSTLY)
    _assert_same(ev, sparse)
    dense = VectorizedEngine(_Weights(weights), aapl_msft, venue=COSTLY).run()
    assert np.array_equal(dense.equity, sparse.equity)
    assert len(sparse.fills) > 20
