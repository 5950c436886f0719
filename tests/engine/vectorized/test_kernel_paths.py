"""The kernel's one-instrument loop against its general loop, the crossover's division-free
comparisons against the incremental averages, and the fill-price check of the runner."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core import BarSeries, Instrument, InstrumentId
from tradestack.core.series import FloatArray
from tradestack.engine.vectorized import NotVectorizable, VectorizedEngine, kernel
from tradestack.engine.vectorized.signals import sma_cross_weights
from tradestack.features.indicators import SMA
from tradestack.strategies.sma_cross import SmaCross


def _one(value: float, dtype: type = np.int64) -> np.ndarray:
    return np.array([value], dtype=dtype)


def _run(fid: np.ndarray, case: dict[str, Any], n_dec: int) -> tuple[Any, ...]:
    n = len(case["closes"])
    equity = np.empty(n)
    orders = np.zeros((kernel.ORDER_COLUMNS, n_dec), dtype=np.int64)
    fees = np.zeros(n_dec)
    one = _one
    out = kernel.simulate(
        fid,
        np.arange(n, dtype=np.int64),
        case["opens"],
        case["closes"],
        case["dec_event"],
        case["dec_weight"],
        one(case["tick"][0]),
        one(case["tick"][1]),
        one(case["lot"][0]),
        one(case["lot"][1]),
        one(case["mult"], np.float64),
        one(case["min_lots"]),
        one(case["min_notional"], np.float64),
        one(case["fee_bps"], np.float64),
        case["slip"][0],
        case["slip"][1],
        case["allow_short"],
        case["leverage"],
        case["cash"],
        equity,
        orders,
        fees,
    )
    return out, equity, orders[:, : out[1]], fees[: out[1]]


@st.composite
def _cases(draw: st.DrawFn) -> dict[str, Any]:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    n = draw(st.integers(1, 400))
    closes = np.round(50.0 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n))), 4)
    opens = np.round(np.concatenate(([50.0], closes[:-1])) * np.exp(rng.normal(0, 0.01, n)), 4)
    opens[rng.random(n) < 0.02] = 0.0  # cancelled at a non-positive fill price
    density = draw(st.sampled_from([0.05, 0.3, 1.0]))
    dec_event = np.flatnonzero(rng.random(n) < density).astype(np.int64)
    return {
        "opens": opens,
        "closes": closes,
        "dec_event": dec_event,
        "dec_weight": rng.uniform(-1.5, 1.5, len(dec_event)),
        "tick": draw(st.sampled_from([(1, 100), (1, 10_000), (5, 100), (1, 1)])),
        "lot": draw(st.sampled_from([(1, 1), (1, 10), (1, 1000), (5, 1)])),
        "mult": draw(st.sampled_from([1.0, 10.0])),
        "min_lots": draw(st.sampled_from([0, 3])),
        "min_notional": draw(st.sampled_from([0.0, 500.0])),
        "fee_bps": draw(st.sampled_from([0.0, 2.5])),
        "slip": draw(st.sampled_from([(0, 1), (1, 1), (25, 2)])),
        "allow_short": draw(st.booleans()),
        "leverage": draw(st.sampled_from([0.5, 1.0, 3.0])),
        "cash": draw(st.sampled_from([0.0, 10_000.0, 1e6])),
    }


@settings(max_examples=300, deadline=None)
@given(_cases())
def test_one_instrument_loop_is_the_general_loop(case: dict[str, Any]) -> None:
    """Same inputs through the one-instrument loop (empty ``fid``) and the general loop (every
    event instrument 0): the same equity, orders, fill prices and fees, bit for bit."""
    n_dec = len(case["dec_event"])
    one = _run(np.empty(0, dtype=np.int64), case, n_dec)
    general = _run(np.zeros(len(case["closes"]), dtype=np.int64), case, n_dec)
    assert one[0] == general[0]
    assert np.array_equal(one[1], general[1])
    assert np.array_equal(one[2], general[2])
    assert np.array_equal(one[3], general[3])


def _incremental(values: FloatArray, fast: int, slow: int) -> dict[int, float]:
    """What :class:`SmaCross` decides bar by bar (up 1.0, down -1.0)."""
    f, s = SMA(fast), SMA(slow)
    prev_f = prev_s = math.nan
    out = {}
    for i, v in enumerate(values):
        a, b = f.update(float(v)), s.update(float(v))
        if prev_f < prev_s and a > b:
            out[i] = 1.0
        elif prev_f > prev_s and a < b:
            out[i] = -1.0
        prev_f, prev_s = a, b
    return out


def _crosses(values: FloatArray, fast: int, slow: int) -> dict[int, float]:
    weights = sma_cross_weights(values, fast, slow, 1.0, -1.0)
    return dict(zip(weights.index.tolist(), weights.weight.tolist(), strict=True))


def test_crossovers_where_the_averages_tie_or_overflow() -> None:
    """Averages that tie exactly, differ in the last bits, overflow or sit below the normal
    range: the compiled crossover decides as the incremental averages do."""
    rng = np.random.default_rng(3)
    steps = rng.choice([-1.0, 0.0, 1.0], 3000)
    ties = 100.0 + np.cumsum(steps)  # small integers: many exactly equal averages
    cases = {
        "ties": ties,
        "last bits": ties * (1.0 + 1e-15 * rng.choice([-1.0, 0.0, 1.0], 3000)),
        "constant": np.full(2500, 7.25),
        "huge": ties * 1e304,  # the cross-multiplied sums overflow, the sums do not
        "subnormal": ties * 1e-310,
        "gaps": np.where(rng.random(3000) < 0.01, math.nan, ties),
        "leading nan": np.concatenate(([math.nan] * 7, ties)),
    }
    for name, values in cases.items():
        for fast, slow in ((1, 2), (2, 3), (3, 6), (10, 30)):
            assert _crosses(values, fast, slow) == _incremental(values, fast, slow), name


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-3, 3), min_size=1, max_size=300),
    st.integers(1, 6),
    st.integers(1, 12),
    st.sampled_from([1.0, 0.1, 1e-7, 3e5]),
)
def test_crossovers_of_random_small_steps(
    steps: list[int], fast: int, extra: int, scale: float
) -> None:
    values = (50.0 + np.cumsum(steps)) * scale
    assert _crosses(values, fast, fast + extra) == _incremental(values, fast, fast + extra)


def test_fill_price_beyond_exact_ticks_is_refused_at_the_run() -> None:
    """The first bar's prices pass the construction check; a later fill price is too many
    ticks: the run refuses with the price and the instrument."""
    inst = Instrument(InstrumentId("X"), tick_size=Decimal("1e-8"))
    n = 60
    closes = np.where(np.arange(n) % 6 < 3, 100.0, 101.0)
    closes[40:] *= 2e5  # crosses on, filled at 2e7: 2e15 ticks
    opens = closes.copy()
    bars = BarSeries(inst.id, np.arange(n, dtype=np.int64), opens, opens, opens, closes, np.ones(n))
    engine = VectorizedEngine(SmaCross(fast=2, slow=5), [bars], instruments=[inst])
    with pytest.raises(NotVectorizable, match=r"X@sim: a price of [0-9.]+ is more than 1e14 ticks"):
        engine.run()
