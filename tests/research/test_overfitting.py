"""PSR / DSR / PBO: known values, independent re-computations and behaviour on synthetic sweeps."""

from __future__ import annotations

import math
from itertools import combinations, pairwise

import numpy as np
import pytest
from scipy import integrate
from scipy.stats import norm

from tradestack.research.overfitting import (
    EULER_MASCHERONI,
    DeflatedSharpe,
    deflated_sharpe_ratio,
    expected_maximum_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe,
)


def _trials_with_variance(n: int, variance: float) -> np.ndarray:
    """``n`` Sharpe ratios with sample variance (ddof=1) exactly ``variance``."""
    z = np.linspace(-1.0, 1.0, n)
    z = (z - z.mean()) / z.std(ddof=1)
    return z * math.sqrt(variance)


def _mean_metric(r: np.ndarray) -> np.ndarray:
    return r.mean(axis=0)


# --- probabilistic Sharpe ratio ----------------------------------------------------------------


def test_psr_matches_independent_formula() -> None:
    sr, bench, t, skew, kurt = 0.1, 0.05, 252, -0.5, 5.0
    expected = norm.cdf(
        (sr - bench) * math.sqrt(t - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    )
    assert probabilistic_sharpe_ratio(sr, bench, t, skew, kurt) == pytest.approx(expected, 1e-12)


def test_psr_normal_returns_defaults() -> None:
    sr, t = 0.08, 500
    expected = norm.cdf(sr * math.sqrt(t - 1) / math.sqrt(1 + sr**2 / 2))
    assert probabilistic_sharpe_ratio(sr, 0.0, t) == pytest.approx(expected, 1e-12)


def test_psr_half_at_benchmark_and_grows_with_sample() -> None:
    assert probabilistic_sharpe_ratio(0.1, 0.1, 100, -1.0, 6.0) == pytest.approx(0.5)
    values = [probabilistic_sharpe_ratio(0.05, 0.0, t, -1.0, 6.0) for t in (50, 250, 1000, 5000)]
    assert values == sorted(values) and values[-1] > 0.99


def test_psr_penalises_negative_skew_and_fat_tails() -> None:
    normal = probabilistic_sharpe_ratio(0.1, 0.0, 250, 0.0, 3.0)
    assert probabilistic_sharpe_ratio(0.1, 0.0, 250, -2.0, 3.0) < normal
    assert probabilistic_sharpe_ratio(0.1, 0.0, 250, 0.0, 12.0) < normal


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((math.nan, 0.0, 100, 0.0, 3.0), "observed"),
        ((0.1, math.inf, 100, 0.0, 3.0), "benchmark"),
        ((0.1, 0.0, 1, 0.0, 3.0), "n_observations"),
        ((0.1, 0.0, 100.0, 0.0, 3.0), "n_observations"),
        ((0.1, 0.0, 100, math.nan, 3.0), "skewness"),
        ((0.1, 0.0, 100, 0.0, math.nan), "kurtosis"),
        ((1.0, 0.0, 100, 5.0, 3.0), "must be > 0"),
    ],
)
def test_psr_invalid_inputs(args: tuple[float, float, int, float, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        probabilistic_sharpe_ratio(*args)


# --- expected maximum Sharpe and deflated Sharpe ratio -----------------------------------------


def test_expected_max_sharpe_formula() -> None:
    n, v = 50, 0.004
    expected = math.sqrt(v) * (
        (1 - EULER_MASCHERONI) * norm.ppf(1 - 1 / n)
        + EULER_MASCHERONI * norm.ppf(1 - 1 / (n * math.e))
    )
    assert expected_maximum_sharpe(n, v) == pytest.approx(expected, 1e-12)
    assert abs(EULER_MASCHERONI - 0.5772156649015329) < 1e-15


@pytest.mark.parametrize("n", [10, 100, 1000])
def test_expected_max_sharpe_close_to_exact_gaussian_maximum(n: int) -> None:
    # E[max of n iid N(0,1)] = ∫ x n φ(x) Φ(x)^(n-1) dx; the approximation is within ~2.5 %
    exact = integrate.quad(lambda x: x * n * norm.pdf(x) * norm.cdf(x) ** (n - 1), -12, 12)[0]
    assert expected_maximum_sharpe(n, 1.0) == pytest.approx(exact, rel=0.025)
    assert expected_maximum_sharpe(n, 4.0) == pytest.approx(2 * expected_maximum_sharpe(n, 1.0))


def test_dsr_paper_numerical_example() -> None:
    # Bailey & López de Prado (2014), section 4: annualized SR 2.5 over 1250 days, 100 trials
    # with annualized Sharpe variance 0.5, skewness -3, kurtosis 10 -> SR0 ≈ 0.1132 (daily),
    # DSR ≈ 0.9004.
    trials = _trials_with_variance(100, 0.5 / 250)
    result = deflated_sharpe_ratio(2.5 / math.sqrt(250), trials, 1250, -3.0, 10.0)
    assert isinstance(result, DeflatedSharpe)
    assert result.n_trials == 100
    assert result.sharpe_variance == pytest.approx(0.002)
    assert result.expected_max_sharpe == pytest.approx(0.1132, abs=5e-5)
    assert result.deflated_sharpe == pytest.approx(0.9004, abs=5e-4)
    assert result.probabilistic_sharpe > 0.9999


def test_dsr_is_psr_at_expected_max() -> None:
    trials = np.array([0.01, 0.03, -0.02, 0.05, 0.0, 0.02])
    result = deflated_sharpe_ratio(0.05, trials, 750, 0.3, 4.0)
    v = float(np.var(trials, ddof=1))
    assert result.expected_max_sharpe == pytest.approx(expected_maximum_sharpe(6, v))
    assert result.deflated_sharpe == pytest.approx(
        probabilistic_sharpe_ratio(0.05, result.expected_max_sharpe, 750, 0.3, 4.0)
    )
    assert result.probabilistic_sharpe == pytest.approx(
        probabilistic_sharpe_ratio(0.05, 0.0, 750, 0.3, 4.0)
    )
    assert result.deflated_sharpe < result.probabilistic_sharpe


def test_dsr_falls_as_number_of_trials_grows() -> None:
    dsr = [
        deflated_sharpe_ratio(0.1, _trials_with_variance(n, 0.001), 1000).deflated_sharpe
        for n in (2, 5, 20, 100, 1000, 10_000)
    ]
    assert all(b < a for a, b in pairwise(dsr))
    sr0 = [expected_maximum_sharpe(n, 0.001) for n in (2, 5, 20, 100, 1000, 10_000)]
    assert all(b > a for a, b in pairwise(sr0))


@pytest.mark.parametrize(
    ("trials", "n_obs", "match"),
    [
        ([0.1], 100, "at least 2"),
        ([0.1, math.nan], 100, "finite"),
        ([[0.1, 0.2]], 100, "one-dimensional"),
        ([0.1, 0.2], 1, "n_observations"),
    ],
)
def test_dsr_invalid_inputs(trials: list[float], n_obs: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        deflated_sharpe_ratio(0.1, trials, n_obs, 0.0, 3.0)


def test_expected_max_sharpe_invalid() -> None:
    with pytest.raises(ValueError, match="n_trials"):
        expected_maximum_sharpe(1, 1.0)
    with pytest.raises(ValueError, match="sharpe_variance"):
        expected_maximum_sharpe(10, -1.0)


# --- sharpe metric -------------------------------------------------------------------------------


def test_sharpe_metric_columns_and_edge_cases() -> None:
    r = np.array([[0.01, 0.0, 0.02], [0.03, 0.0, 0.02], [-0.01, 0.0, 0.02]])
    out = sharpe(r)
    assert out[0] == pytest.approx(0.01 / np.std(r[:, 0], ddof=1))
    assert out[1] == 0.0
    assert out[2] == math.inf
    assert np.isnan(sharpe(r[:1])).all()
    assert sharpe(r[:, 0]).shape == (1,)


# --- probability of backtest overfitting ---------------------------------------------------------


def test_pbo_hand_computed_two_blocks() -> None:
    # S = 2: block A (rows 0-1) has means (3, 1, 2), block B (rows 2-3) has means (0, 2, 1).
    r = np.array([[3.0, 1.0, 2.0], [3.0, 1.0, 2.0], [0.0, 2.0, 1.0], [0.0, 2.0, 1.0]])
    res = probability_of_backtest_overfitting(r, n_splits=2, metric=_mean_metric)
    # IS = A: winner column 0 scores 0 OOS, rank 1 of 3 -> ω = 1/4, λ = ln(1/3);
    # IS = B: winner column 1 scores 1 OOS, rank 1 of 3 -> λ = ln(1/3).
    assert res.n_combinations == 2
    np.testing.assert_allclose(res.logits, [math.log(1 / 3)] * 2)
    np.testing.assert_array_equal(res.best_index, [0, 1])
    np.testing.assert_allclose(res.is_metric, [3.0, 2.0])
    np.testing.assert_allclose(res.oos_metric, [0.0, 1.0])
    assert res.pbo == 1.0
    assert res.degradation_slope == pytest.approx(-1.0)
    assert res.degradation_intercept == pytest.approx(3.0)
    assert res.prob_oos_loss == 0.0


def test_pbo_ties_use_average_rank() -> None:
    # IS = A: winner column 0 ties with column 1 OOS at the top -> average rank 2.5 of 3
    r = np.array([[3.0, 1.0, 2.0], [1.0, 1.0, 0.0]])
    res = probability_of_backtest_overfitting(r, n_splits=2, metric=_mean_metric)
    assert res.logits[0] == pytest.approx(math.log((2.5 / 4) / (1 - 2.5 / 4)))
    # IS = B: columns 0 and 1 tie in sample -> the first column wins; it is best OOS (rank 3)
    assert res.best_index[1] == 0
    assert res.logits[1] == pytest.approx(math.log(3.0))
    assert res.pbo == 0.0


@pytest.mark.parametrize("s", [2, 4, 6, 8, 10])
def test_pbo_number_of_combinations(s: int) -> None:
    r = np.random.default_rng(s).normal(0.0, 0.01, (60, 4))
    res = probability_of_backtest_overfitting(r, n_splits=s)
    assert res.n_combinations == math.comb(s, s // 2) == len(list(combinations(range(s), s // 2)))
    assert (
        res.logits.shape == res.is_metric.shape == res.best_index.shape == (math.comb(s, s // 2),)
    )
    assert res.n_splits == s


def test_pbo_fast_sharpe_path_matches_generic_loop() -> None:
    rng = np.random.default_rng(7)
    r = rng.normal(0.0005, 0.01, (203, 9))  # T not divisible by S: blocks of 25 and 26 rows
    fast = probability_of_backtest_overfitting(r, n_splits=8)
    slow = probability_of_backtest_overfitting(r, n_splits=8, metric=lambda x: sharpe(x))
    np.testing.assert_array_equal(fast.best_index, slow.best_index)
    np.testing.assert_allclose(fast.is_metric, slow.is_metric, rtol=1e-9)
    np.testing.assert_allclose(fast.oos_metric, slow.oos_metric, rtol=1e-9)
    np.testing.assert_allclose(fast.logits, slow.logits, rtol=1e-12)
    assert fast.pbo == slow.pbo


def test_pbo_pure_noise_is_a_coin_flip_on_average() -> None:
    # No variant has skill, so the in-sample winner's OOS rank is uniform on average: PBO ≈ 0.5
    # (one seed varies a lot, the combinations share the same data).
    pbos = [
        probability_of_backtest_overfitting(
            np.random.default_rng(seed).normal(0.0, 0.01, (1000, 50))
        ).pbo
        for seed in range(8)
    ]
    assert 0.3 < float(np.mean(pbos)) < 0.7
    assert max(pbos) > 0.5


def test_pbo_high_when_selection_is_pure_overfit() -> None:
    # Pure-noise variants with the same full-sample mean: whatever wins in sample must lose the
    # same amount out of sample, so the in-sample winner ranks low out of sample.
    r = np.random.default_rng(1).normal(0.0, 0.01, (1000, 50))
    r -= r.mean(axis=0)
    res = probability_of_backtest_overfitting(r, n_splits=16)
    assert res.pbo > 0.9
    assert res.degradation_slope < 0
    assert np.median(res.logits) < 0


def test_pbo_near_zero_with_persistent_edge() -> None:
    r = np.random.default_rng(3).normal(0.0, 0.01, (1000, 50))
    r[:, 17] += 0.004  # a real, persistent edge (per-period Sharpe ≈ 0.4 vs ≈ 0)
    res = probability_of_backtest_overfitting(r, n_splits=16)
    assert res.pbo == 0.0
    assert set(res.best_index.tolist()) == {17}
    assert res.logits.min() > 0 and res.prob_oos_loss == 0.0


def test_pbo_is_fast_for_default_sweep_size() -> None:
    import time

    r = np.random.default_rng(0).normal(0.0, 0.01, (2000, 200))
    start = time.perf_counter()
    probability_of_backtest_overfitting(r, n_splits=16)
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize(
    ("returns", "kwargs", "match"),
    [
        (np.zeros((40, 3)), {"n_splits": 5}, "n_splits"),
        (np.zeros((40, 3)), {"n_splits": 0}, "n_splits"),
        (np.zeros((40, 3)), {"n_splits": True}, "n_splits"),
        (np.zeros((40, 3)), {"n_splits": 4.0}, "n_splits"),
        (np.zeros((7, 3)), {"n_splits": 8}, "T >= S"),
        (np.zeros((40, 1)), {"n_splits": 4}, "N >= 2"),
        (np.zeros(40), {"n_splits": 4}, "returns"),
        (np.full((40, 3), np.nan), {"n_splits": 4}, "finite"),
        (np.ones((2, 3)), {"n_splits": 2}, "NaN"),
    ],
)
def test_pbo_invalid_inputs(returns: np.ndarray, kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        probability_of_backtest_overfitting(returns, **kwargs)  # type: ignore[arg-type]


def test_pbo_metric_must_return_one_score_per_column() -> None:
    r = np.random.default_rng(0).normal(size=(40, 3))
    with pytest.raises(ValueError, match="one score per strategy"):
        probability_of_backtest_overfitting(r, n_splits=4, metric=lambda x: x.mean(axis=1))
