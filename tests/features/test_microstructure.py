"""Microstructure features: batch and incremental forms agree to 1e-9 (same NaN pattern) on
hypothesis-generated books and trades and on a recorded Binance BTCUSDT session; hand-computed
cases pin every formula; no batch value looks ahead."""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core.ids import InstrumentId
from tradestack.execution.sim.feed import CLEAR, DEPTH, SNAPSHOT, TRADE, binance_feed
from tradestack.features import kernels
from tradestack.features import microstructure as ms

RTOL = ATOL = 1e-9
Steps = dict[str, np.ndarray]
NAN = math.nan
STEP_NS = 100_000_000  # the 100 ms decision grid of the real-data tests
USDM = Path("ws_messages/binance_usdm/hftbacktest_btcusdt_20240808.gz")
SPOT = Path("ws_messages/binance_spot/hftbacktest_btcusdt_20240808.gz")


def _same(batch: np.ndarray, incremental: np.ndarray, what: str) -> None:
    assert batch.shape == incremental.shape, what
    assert np.array_equal(np.isnan(batch), np.isnan(incremental)), f"{what}: NaN patterns differ"
    ok = ~np.isnan(batch)
    np.testing.assert_allclose(incremental[ok], batch[ok], rtol=RTOL, atol=ATOL, err_msg=what)


def _inc(feature: Any, *columns: np.ndarray) -> np.ndarray:
    """Feed the rows of ``columns`` to ``feature.update`` one step at a time (Python floats)."""
    update = feature.update
    rows = zip(*(c.tolist() for c in columns), strict=True)
    out = np.array([update(*row) for row in rows], dtype=np.float64)
    if len(out):
        np.testing.assert_equal(feature.value, out[-1])  # ``value`` is the latest output
    return out


def _batches(d: Steps, window: int, levels: int, bucket: float, n_buckets: int) -> list[Any]:
    """(name, batch output, incremental feature, its input columns) for every feature."""
    b0, a0 = d["bid_px"][:, 0], d["ask_px"][:, 0]
    qb0, qa0 = d["bid_sz"][:, 0], d["ask_sz"][:, 0]
    trades = (d["buy_qty"], d["sell_qty"], d["buy_notional"], d["sell_notional"])
    flow = trades[:2]
    m = ms.mid(b0, a0)
    return [
        ("mid", m, ms.Mid(), (b0, a0)),
        ("spread_bps", ms.spread_bps(b0, a0), ms.SpreadBps(), (b0, a0)),
        (
            "book_imbalance",
            ms.book_imbalance(d["bid_sz"], d["ask_sz"], levels),
            ms.BookImbalance(levels),
            (d["bid_sz"], d["ask_sz"]),
        ),
        ("microprice", ms.microprice(b0, qb0, a0, qa0), ms.Microprice(), (b0, qb0, a0, qa0)),
        (
            "microprice_dev_bps",
            ms.microprice_dev_bps(b0, qb0, a0, qa0),
            ms.MicropriceDevBps(),
            (b0, qb0, a0, qa0),
        ),
        ("vwap", ms.vwap(*trades, window), ms.VWAP(window), trades),
        (
            "vwap_deviation",
            ms.vwap_deviation(m, *trades, window),
            ms.VWAPDeviation(window),
            (m, *trades),
        ),
        (
            "trade_flow_imbalance",
            ms.trade_flow_imbalance(*flow, window),
            ms.TradeFlowImbalance(window),
            flow,
        ),
        (
            "realized_volatility",
            ms.realized_volatility(m, window),
            ms.RealizedVolatility(window),
            (m,),
        ),
        ("vpin", ms.vpin(*flow, bucket, n_buckets), ms.VPIN(bucket, n_buckets), flow),
        ("kyle_lambda", ms.kyle_lambda(m, *flow, window), ms.KyleLambda(window), (m, *flow)),
        (
            "cross_venue_spread_bps",
            ms.cross_venue_spread_bps(m, d["mid_b"]),
            ms.CrossVenueSpreadBps(),
            (m, d["mid_b"]),
        ),
    ]


def _check_all(d: Steps, window: int, levels: int, bucket: float, n_buckets: int) -> None:
    for name, batch, feature, columns in _batches(d, window, levels, bucket, n_buckets):
        _same(batch, _inc(feature, *columns), f"{name} (window={window}, levels={levels})")


# -- generated markets -----------------------------------------------------------------------


@st.composite
def markets(draw: st.DrawFn) -> tuple[Steps, int, int, float, int]:
    """A random-walk mid with a positive spread, k levels (some missing, sizes with zeros), and
    trades with idle steps and bursts that span many VPIN buckets."""
    n = draw(st.integers(1, 240))
    k = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    p_missing = draw(st.sampled_from([0.0, 0.03, 0.2]))
    p_idle = draw(st.sampled_from([0.0, 0.5, 0.95]))
    p_burst = draw(st.sampled_from([0.0, 0.05]))
    tick = draw(st.sampled_from([0.0, 0.05]))  # 0: continuous mids; else often unchanged
    mid = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n)))
    if tick:
        mid = np.round(mid / tick) * tick
    half = rng.uniform(0.005, 0.05, n)[:, None]
    depth = 0.01 * np.arange(k)
    d: Steps = {
        "bid_px": mid[:, None] - half - depth,
        "ask_px": mid[:, None] + half + depth,
        "bid_sz": rng.exponential(1.0, (n, k)) * (rng.random((n, k)) > 0.2),
        "ask_sz": rng.exponential(1.0, (n, k)) * (rng.random((n, k)) > 0.2),
    }
    for side in ("bid", "ask"):  # a side keeps only its best `kept` levels
        kept = np.where(rng.random(n) < p_missing, rng.integers(0, k, n), k)
        gone = np.arange(k)[None, :] >= kept[:, None]
        d[f"{side}_px"][gone] = np.nan
        d[f"{side}_sz"][gone] = 0.0
    for side, sign in (("buy", 1.0), ("sell", -1.0)):
        qty = rng.exponential(1.0, n) * (rng.random(n) >= p_idle)
        qty *= np.where(rng.random(n) < p_burst, 60.0, 1.0)
        d[f"{side}_qty"] = qty
        d[f"{side}_notional"] = qty * (mid + sign * half[:, 0]) * rng.uniform(0.999, 1.001, n)
    other = mid * (1.0 + rng.normal(0.0, 1e-4, n))
    other[rng.random(n) < p_missing] = np.nan
    d["mid_b"] = other
    window = draw(st.integers(1, 40))
    levels = draw(st.integers(1, k))
    bucket = draw(st.sampled_from([0.4, 3.0, 25.0]))
    n_buckets = draw(st.integers(1, 12))
    return d, window, levels, bucket, n_buckets


@settings(derandomize=True, max_examples=50, deadline=None)
@given(market=markets())
def test_incremental_equals_batch_on_generated_markets(
    market: tuple[Steps, int, int, float, int],
) -> None:
    _check_all(*market)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(
    values=st.lists(
        st.floats(-1e300, 1e300, allow_nan=False)
        | st.floats(-1e-3, 1e-3)
        | st.sampled_from([0.0, 1.0, -1.0, 3.0, 2.0**-53, -(2.0**-53), 2.0**-54, 2.0**52]),
        min_size=0,
        max_size=60,
    )
)
def test_the_numba_fsum_is_math_fsum_bit_for_bit(values: list[float]) -> None:
    x = np.array(values, dtype=np.float64)
    assert kernels.fsum(x, 0, len(x), np.empty(kernels.PARTIALS)) == math.fsum(values)


@pytest.mark.parametrize(
    "values",
    [
        [1e-16, 1.0, 1e16],  # half-even rounding across partials
        [1e100, 1.0, -1e100, 1e-100, 1e50, -1.0, -1e50],
        [0.1] * 10,
        [2.0**-1074, 2.0**1000, -(2.0**1000), 2.0**-1074],
        [1.0, 2.0**-53, 2.0**-106, 0.0, -0.0],
        [1.0, 2.0**-53],  # a tie: half-even keeps 1.0
        [1.0 + 2.0**-52, 2.0**-53],  # a tie rounding up to even
        [2.0**-1074] * 3,
        [1e308, 1.0, -1e308, 2.0**-1074],
        [],
    ],
)
def test_the_numba_fsum_on_hard_cases(values: list[float]) -> None:
    x = np.array(values, dtype=np.float64)
    assert kernels.fsum(x, 0, len(x), np.empty(kernels.PARTIALS)) == math.fsum(values)


# -- real data: Binance BTCUSDT, USD-M futures and spot, on a 100 ms grid --------------------


def _set_level(book: dict[float, float], prices: list[float], px: float, qty: float) -> None:
    """Set a level of a price -> qty book whose prices are also kept sorted; qty 0 deletes."""
    if qty > 0.0:
        if px not in book:
            insort(prices, px)
        book[px] = qty
    elif px in book:
        del book[px]
        del prices[bisect_left(prices, px)]


def _replay(events: np.ndarray, edges: list[int], k: int = 5) -> Steps:
    """Replay feed rows in exch_ts order into price -> qty books; at each grid edge take the top
    ``k`` levels and the trade sums of the rows since the previous edge."""
    n = len(edges)
    d: Steps = {
        "bid_px": np.full((n, k), np.nan),
        "ask_px": np.full((n, k), np.nan),
        "bid_sz": np.zeros((n, k)),
        "ask_sz": np.zeros((n, k)),
    }
    for name in ("buy_qty", "sell_qty", "buy_notional", "sell_notional"):
        d[name] = np.zeros(n)
    cols = [events[c].tolist() for c in ("exch_ts", "kind", "side", "px", "qty")]
    rows = list(zip(*cols, strict=True))
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    bid_prices: list[float] = []  # ascending, both sides
    ask_prices: list[float] = []
    e = 0
    for step, edge in enumerate(edges):
        bq = sq = bn = sn = 0.0
        while e < len(rows) and rows[e][0] < edge:
            _, kind, side, px, qty = rows[e]
            e += 1
            if kind in (DEPTH, SNAPSHOT) and side > 0:
                _set_level(bids, bid_prices, px, qty)
            elif kind in (DEPTH, SNAPSHOT):
                _set_level(asks, ask_prices, px, qty)
            elif kind == TRADE and side > 0:
                bq += qty
                bn += px * qty
            elif kind == TRADE:
                sq += qty
                sn += px * qty
            elif kind == CLEAR:
                if side >= 0:
                    bids.clear()
                    bid_prices.clear()
                if side <= 0:
                    asks.clear()
                    ask_prices.clear()
        d["buy_qty"][step], d["sell_qty"][step] = bq, sq
        d["buy_notional"][step], d["sell_notional"][step] = bn, sn
        best_bids, best_asks = bid_prices[: -k - 1 : -1], ask_prices[:k]
        for name, book, top in (("bid", bids, best_bids), ("ask", asks, best_asks)):
            d[f"{name}_px"][step, : len(top)] = top
            d[f"{name}_sz"][step, : len(top)] = [book[p] for p in top]
    return d


@pytest.fixture(scope="module")
def btcusdt(shared_data: Path) -> Steps:
    paths = {futures: shared_data / p for futures, p in ((True, USDM), (False, SPOT))}
    for path in paths.values():
        if not path.exists():
            pytest.skip(f"recorded Binance BTCUSDT session not found at {path}")
    instrument = InstrumentId("BTCUSDT", venue="binance")
    feeds = {f: binance_feed(p, instrument, futures=f).events for f, p in paths.items()}
    start = max(int(ev["exch_ts"][0]) for ev in feeds.values()) // STEP_NS * STEP_NS
    end = min(int(ev["exch_ts"][-1]) for ev in feeds.values())
    edges = list(range(start + STEP_NS, end + 1, STEP_NS))
    d = _replay(feeds[True], edges)
    spot = _replay(feeds[False], edges, k=1)
    d["mid_b"] = ms.mid(spot["bid_px"][:, 0], spot["ask_px"][:, 0])
    return d


def test_the_real_steps_exercise_every_feature(btcusdt: Steps) -> None:
    n = len(btcusdt["buy_qty"])
    assert n > 3000
    mids = ms.mid(btcusdt["bid_px"][:, 0], btcusdt["ask_px"][:, 0])
    assert np.isfinite(mids).mean() > 0.99 and np.isfinite(btcusdt["mid_b"]).mean() > 0.99
    assert 0.2 < (btcusdt["buy_qty"] + btcusdt["sell_qty"] > 0).mean() < 1.0
    basis = ms.cross_venue_spread_bps(mids, btcusdt["mid_b"])
    assert np.nanmax(np.abs(basis)) < 50.0  # perp vs spot BTC: a few bps, never a wrong book
    bid, ask = btcusdt["bid_px"][:, 0], btcusdt["ask_px"][:, 0]
    micro = ms.microprice(bid, btcusdt["bid_sz"][:, 0], ask, btcusdt["ask_sz"][:, 0])
    both = np.isfinite(micro)
    assert ((bid[both] <= micro[both]) & (micro[both] <= ask[both])).all()
    bq, sq, bn, sn = (btcusdt[c] for c in ("buy_qty", "sell_qty", "buy_notional", "sell_notional"))
    assert np.nanmax(np.abs(ms.vwap_deviation(mids, bq, sq, bn, sn, 20))) < 1e-3


@pytest.mark.parametrize(
    ("window", "levels", "bucket", "n_buckets"),
    [(10, 5, 5.0, 10), (50, 1, 0.5, 4), (300, 3, 4.0, 50)],
)
def test_incremental_equals_batch_on_real_btcusdt(
    btcusdt: Steps, window: int, levels: int, bucket: float, n_buckets: int
) -> None:
    _check_all(btcusdt, window, levels, bucket, n_buckets)
    vpin = ms.vpin(btcusdt["buy_qty"], btcusdt["sell_qty"], bucket, n_buckets)
    kyle = ms.kyle_lambda(ms.mid(btcusdt["bid_px"][:, 0], btcusdt["ask_px"][:, 0]),
                          btcusdt["buy_qty"], btcusdt["sell_qty"], window)  # fmt: skip
    assert np.isfinite(vpin).mean() > 0.5 and np.isfinite(kyle).mean() > 0.5
    assert np.nanmin(vpin) >= 0.0 and np.nanmax(vpin) <= 1.0


# -- hand-computed cases ---------------------------------------------------------------------


def _both(batch: np.ndarray, feature: Any, *columns: np.ndarray) -> np.ndarray:
    """The batch values, after checking the incremental form gives the same."""
    _same(batch, _inc(feature, *columns), type(feature).__name__)
    return batch


def _a(*values: float) -> np.ndarray:
    return np.array(values, dtype=np.float64)


def test_mid_spread_and_cross_venue_by_hand() -> None:
    bid, ask = _a(99.0, 100.0, NAN), _a(101.0, 100.5, 101.0)
    np.testing.assert_allclose(
        _both(ms.mid(bid, ask), ms.Mid(), bid, ask), [100.0, 100.25, NAN], rtol=1e-15
    )
    np.testing.assert_allclose(
        _both(ms.spread_bps(bid, ask), ms.SpreadBps(), bid, ask),
        [200.0, 0.5 / 100.25 * 1e4, NAN],
        rtol=1e-12,
    )
    a, b = _a(100.0, 101.0, NAN), _a(99.0, 101.0, 100.0)
    np.testing.assert_allclose(
        _both(ms.cross_venue_spread_bps(a, b), ms.CrossVenueSpreadBps(), a, b),
        [1.0 / 99.5 * 1e4, 0.0, NAN],
        rtol=1e-12,
    )


def test_book_imbalance_by_hand() -> None:
    bid_sz = np.array([[3.0, 1.0, 5.0], [0.0, 0.0, 0.0], [0.0, 0.0, 9.0], [2.0, 0.0, 0.0]])
    ask_sz = np.array([[1.0, 1.0, 7.0], [0.0, 0.0, 0.0], [4.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    got = _both(ms.book_imbalance(bid_sz, ask_sz, 2), ms.BookImbalance(2), bid_sz, ask_sz)
    np.testing.assert_allclose(got, [1.0 / 3.0, 0.0, -1.0, 1.0], rtol=1e-15)
    all3 = _both(ms.book_imbalance(bid_sz, ask_sz, 3), ms.BookImbalance(3), bid_sz, ask_sz)
    np.testing.assert_allclose(all3, [0.0, 0.0, 5.0 / 13.0, 1.0], rtol=1e-15)


def test_microprice_by_hand() -> None:
    bid, ask = _a(100.0, 100.0, 100.0, NAN), _a(101.0, 101.0, 101.0, 101.0)
    bid_sz, ask_sz = _a(3.0, 0.0, 0.0, 0.0), _a(1.0, 0.0, 2.0, 2.0)
    cols = (bid, bid_sz, ask, ask_sz)
    micro = _both(ms.microprice(*cols), ms.Microprice(), *cols)
    np.testing.assert_allclose(micro, [100.75, 100.5, 100.0, NAN], rtol=1e-15)
    dev = _both(ms.microprice_dev_bps(*cols), ms.MicropriceDevBps(), *cols)
    np.testing.assert_allclose(dev, [0.25 / 100.5 * 1e4, 0.0, -0.5 / 100.5 * 1e4, NAN], rtol=1e-12)
    mid = ms.mid(bid, ask)
    np.testing.assert_allclose(dev, (micro - mid) / mid * 1e4, rtol=1e-9)


# five steps: a buy at 100, sells at 101, two idle steps, buys at 103 and a sell at 102
BUY, SELL = _a(1.0, 0.0, 0.0, 0.0, 3.0), _a(0.0, 2.0, 0.0, 0.0, 1.0)
BUY_N, SELL_N = _a(100.0, 0.0, 0.0, 0.0, 309.0), _a(0.0, 202.0, 0.0, 0.0, 102.0)


def test_vwap_and_its_deviation_by_hand() -> None:
    trades = (BUY, SELL, BUY_N, SELL_N)
    vw = _both(ms.vwap(*trades, 2), ms.VWAP(2), *trades)
    np.testing.assert_allclose(vw, [NAN, 302.0 / 3.0, 101.0, NAN, 102.75], rtol=1e-15)
    mid = _a(100.0, 101.0, 102.0, 102.0, 103.0)
    dev = _both(ms.vwap_deviation(mid, *trades, 2), ms.VWAPDeviation(2), mid, *trades)
    np.testing.assert_allclose(dev, [NAN, 1 / 302, 1 / 101, NAN, 0.25 / 102.75], rtol=1e-12)
    one = _both(ms.vwap(*trades, 1), ms.VWAP(1), *trades)
    np.testing.assert_allclose(one, [100.0, 101.0, NAN, NAN, 102.75], rtol=1e-15)


def test_trade_flow_imbalance_by_hand() -> None:
    got = _both(ms.trade_flow_imbalance(BUY, SELL, 2), ms.TradeFlowImbalance(2), BUY, SELL)
    np.testing.assert_allclose(got, [NAN, -1.0 / 3.0, -1.0, 0.0, 0.5], rtol=1e-15)


def test_realized_volatility_by_hand() -> None:
    mid = _a(100.0, 101.0, 101.0, 99.0, NAN, 100.0, 100.0, 100.0)
    got = _both(ms.realized_volatility(mid, 2), ms.RealizedVolatility(2), mid)
    r1, r3 = math.log(1.01), math.log(99.0 / 101.0)
    np.testing.assert_allclose(got, [NAN, NAN, r1, -r3, NAN, NAN, NAN, 0.0], rtol=1e-12)
    assert got[-1] == 0.0
    three = _both(ms.realized_volatility(mid[:4], 3), ms.RealizedVolatility(3), mid[:4])
    np.testing.assert_allclose(three, [NAN, NAN, NAN, math.hypot(r1, r3)], rtol=1e-12)


def test_vpin_by_hand() -> None:
    # bucket 2, 2 buckets. t1 closes (1 buy + 1 sell) and fills (0, 2); t2: (1, 1), (1, 1);
    # t4's 5 buys close the open (1, 0) bucket and fill two more: 3 buckets of (2, 0); t6: (.5, 1.5)
    buy, sell = _a(1.0, 0.0, 2.0, 1.0, 5.0, 0.0, 0.5), _a(0.0, 3.0, 2.0, 0.0, 0.0, 0.0, 1.5)
    got = _both(ms.vpin(buy, sell, 2.0, 2), ms.VPIN(2.0, 2), buy, sell)
    np.testing.assert_allclose(got, [NAN, 0.5, 0.0, 0.0, 1.0, 1.0, 0.75], rtol=1e-15)
    one = _both(ms.vpin(buy, sell, 2.0, 1), ms.VPIN(2.0, 1), buy, sell)
    np.testing.assert_allclose(one, [NAN, 1.0, 0.0, 0.0, 1.0, 1.0, 0.5], rtol=1e-15)


def test_kyle_lambda_by_hand() -> None:
    mid = _a(100.0, 101.0, 100.0, 102.0, 103.0, 103.0, 104.0)
    buy, sell = _a(9.0, 1.0, 0.0, 2.5, 1.0, 0.0, 0.0), _a(0.0, 0.0, 1.0, 0.5, 1.0, 0.0, 0.0)
    # Δp = 1, -1, 2, 1, 0, 1 on q = 1, -1, 2, 0, 0, 0; the last window has Var(q) = 0
    got = _both(ms.kyle_lambda(mid, buy, sell, 3), ms.KyleLambda(3), mid, buy, sell)
    np.testing.assert_allclose(got, [NAN, NAN, NAN, 1.0, 13.0 / 14.0, 0.75, NAN], rtol=1e-12)
    q, dp = (buy - sell)[1:], np.diff(mid)
    for t in (3, 4, 5):
        x, y = q[t - 3 : t], dp[t - 3 : t]
        assert got[t] == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-12)


# -- edge cases ------------------------------------------------------------------------------


def test_an_empty_side_gives_nan_prices_and_a_one_sided_imbalance() -> None:
    bid_px, ask_px = np.array([[NAN, NAN]]), np.array([[100.0, 100.1]])
    bid_sz, ask_sz = np.zeros((1, 2)), np.array([[2.0, 1.0]])
    b0, a0, qb0, qa0 = bid_px[:, 0], ask_px[:, 0], bid_sz[:, 0], ask_sz[:, 0]
    for got in (
        ms.mid(b0, a0),
        ms.spread_bps(b0, a0),
        ms.microprice(b0, qb0, a0, qa0),
        ms.microprice_dev_bps(b0, qb0, a0, qa0),
        ms.cross_venue_spread_bps(ms.mid(b0, a0), a0),
    ):
        assert np.isnan(got).all()
    assert ms.book_imbalance(bid_sz, ask_sz, 2)[0] == -1.0
    assert ms.BookImbalance(2).update([0.0, 0.0], [2.0, 1.0]) == -1.0
    assert math.isnan(ms.SpreadBps().update(NAN, 100.0))
    assert math.isnan(ms.Microprice().update(NAN, 0.0, 100.0, 2.0))


def test_no_volume_and_windows_that_are_not_full() -> None:
    zero = np.zeros(6)
    assert np.isnan(ms.vwap(zero, zero, zero, zero, 2)).all()
    np.testing.assert_array_equal(ms.trade_flow_imbalance(zero, zero, 2), [NAN] + [0.0] * 5)
    assert np.isnan(ms.vpin(zero, zero, 1.0, 1)).all()
    rising = np.linspace(100.0, 101.0, 6)
    assert np.isnan(ms.kyle_lambda(rising, zero, zero, 2)).all()  # Var(q) = 0: no trades
    steady = _both(ms.kyle_lambda(rising, zero + 1.0, zero, 2), ms.KyleLambda(2), rising,
                   zero + 1.0, zero)  # fmt: skip
    assert np.isnan(steady).all()  # Var(q) = 0: the same signed volume every step
    mid = np.full(6, 100.0)
    np.testing.assert_array_equal(ms.realized_volatility(mid, 3), [NAN] * 3 + [0.0] * 3)
    ones = np.ones(3)
    assert np.isnan(ms.vwap(ones, ones, ones, ones, 4)).all()
    assert np.isnan(ms.trade_flow_imbalance(ones, ones, 4)).all()
    assert np.isnan(ms.realized_volatility(_a(1.0, 2.0, 3.0), 3)).all()
    assert np.isnan(ms.kyle_lambda(_a(1.0, 2.0, 3.0), _a(0.0, 1.0, 2.0), zero[:3], 3)).all()
    assert np.isnan(ms.vpin(ones, ones, 4.0, 2)).all()  # 6 units of volume: one bucket of 4
    e = np.zeros(0)
    for empty in (ms.vwap(e, e, e, e, 3), ms.kyle_lambda(e, e, e, 2), ms.vpin(e, e, 1.0, 2)):
        assert empty.shape == (0,)
    assert ms.realized_volatility(e, 2).shape == (0,)
    feature = ms.VWAP(3)
    assert math.isnan(feature.value) and math.isnan(feature.update(1.0, 0.0, 10.0, 0.0))


@pytest.mark.parametrize("bad", [0, -2, 2.5, True, "3", None])
def test_bad_windows_and_counts_are_refused(bad: Any) -> None:
    for make in (ms.VWAP, ms.VWAPDeviation, ms.TradeFlowImbalance, ms.RealizedVolatility,
                 ms.KyleLambda):  # fmt: skip
        with pytest.raises(ValueError, match=f"window must be a positive int, got {bad!r}"):
            make(bad)
    with pytest.raises(ValueError, match="levels must be a positive int"):
        ms.BookImbalance(bad)
    with pytest.raises(ValueError, match="n_buckets must be a positive int"):
        ms.VPIN(1.0, bad)
    x = np.ones(4)
    with pytest.raises(ValueError, match="window must be a positive int"):
        ms.kyle_lambda(x, x, x, bad)
    with pytest.raises(ValueError, match="n_buckets must be a positive int"):
        ms.vpin(x, x, 1.0, bad)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.nan, math.inf, True, "1"])
def test_bad_bucket_volumes_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="bucket_volume must be a positive finite number"):
        ms.VPIN(bad, 5)
    with pytest.raises(ValueError, match="bucket_volume"):
        ms.vpin(np.ones(3), np.ones(3), bad, 5)


def test_bad_shapes_name_the_argument() -> None:
    x, grid = np.ones(4), np.ones((4, 3))
    with pytest.raises(ValueError, match="bid_px0 must be a 1-D array"):
        ms.mid(grid, x)
    with pytest.raises(ValueError, match="ask_px0 has length 3 but bid_px0 has length 4"):
        ms.spread_bps(x, x[:3])
    with pytest.raises(ValueError, match="ask_sz0 has length 3"):
        ms.microprice(x, x, x, x[:3])
    with pytest.raises(ValueError, match="bid_sz must be a 2-D"):
        ms.book_imbalance(x, grid)
    with pytest.raises(ValueError, match="ask_sz has 2 steps but bid_sz has 4"):
        ms.book_imbalance(grid, grid[:2], 2)
    with pytest.raises(ValueError, match="levels=4 exceeds the 3 levels of bid_sz"):
        ms.book_imbalance(grid, grid, 4)
    with pytest.raises(ValueError, match="sell_notional has length 3"):
        ms.vwap(x, x, x, x[:3], 2)
    with pytest.raises(ValueError, match="buy_qty has length 3 but mid has length 4"):
        ms.kyle_lambda(x, x[:3], x[:3], 2)
    with pytest.raises(ValueError, match="mid has length 4 but buy_qty has length 3"):
        ms.vwap_deviation(x, x[:3], x[:3], x[:3], x[:3], 2)
    with pytest.raises(ValueError, match="sell_qty must be finite and non-negative"):
        ms.trade_flow_imbalance(x, -x, 2)
    with pytest.raises(ValueError, match="buy_qty must be finite and non-negative"):
        ms.vpin(_a(1.0, NAN), _a(1.0, 1.0), 1.0, 1)
    with pytest.raises(ValueError, match="rows need at least levels=3"):
        ms.BookImbalance(3).update([1.0, 2.0], [1.0, 2.0, 3.0])


# -- no look-ahead ---------------------------------------------------------------------------


def _cut(d: Steps, stop: int) -> Steps:
    return {name: values[:stop] for name, values in d.items()}


@settings(derandomize=True, max_examples=10, deadline=None)
@given(market=markets())
def test_no_batch_value_depends_on_later_steps(
    market: tuple[Steps, int, int, float, int],
) -> None:
    d, window, levels, bucket, n_buckets = market
    n = len(d["buy_qty"])
    full = _batches(d, window, levels, bucket, n_buckets)
    for t in sorted({0, n // 3, n // 2, n - 2, n - 1} - {-1}):
        cut = _batches(_cut(d, t + 1), window, levels, bucket, n_buckets)
        for (name, whole, _, _), (_, part, _, _) in zip(full, cut, strict=True):
            assert len(part) == t + 1
            np.testing.assert_array_equal(part[t], whole[t], err_msg=f"{name} at t={t}")


def test_the_incremental_set_keeps_o1_state() -> None:
    features: list[Callable[[], Any]] = [
        lambda: ms.VWAP(7), lambda: ms.KyleLambda(7), lambda: ms.VPIN(1.0, 7),
        lambda: ms.RealizedVolatility(7), lambda: ms.TradeFlowImbalance(7),
    ]  # fmt: skip
    for make in features:
        feature = make()
        with pytest.raises(AttributeError):
            feature.anything_else = 1  # __slots__: no per-instance dict
