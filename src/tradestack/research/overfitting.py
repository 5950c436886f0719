"""Backtest-overfitting diagnostics for a parameter sweep: PSR, DSR and PBO (CSCV).

A sweep over N strategy variants always produces a "best" backtest, and its Sharpe ratio is
biased upwards by the selection. This module measures how much:

* :func:`probabilistic_sharpe_ratio` -- the probability that the true Sharpe ratio exceeds a
  benchmark, given the sample length and the non-normality of the returns (Bailey & López de
  Prado 2012).
* :func:`deflated_sharpe_ratio` -- the PSR against the Sharpe ratio one expects from the best
  of N skill-less trials (Bailey & López de Prado 2014).
* :func:`probability_of_backtest_overfitting` -- the probability that the in-sample winner of
  the sweep ranks below the median out of sample, by Combinatorially Symmetric
  Cross-Validation (Bailey, Borwein, López de Prado & Zhu 2017).

All Sharpe ratios here are per period (mean / standard deviation of the per-period returns, no
annualization, no risk-free rate): annualizing would change the estimator's variance, which the
formulas take from the number of observations.

References
----------
* D. H. Bailey, M. López de Prado (2012), "The Sharpe Ratio Efficient Frontier", Journal of
  Risk 15(2), 3-44.
* D. H. Bailey, M. López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection
  Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio Management 40(5), 94-107.
* D. H. Bailey, J. M. Borwein, M. López de Prado, Q. J. Zhu (2017), "The Probability of
  Backtest Overfitting", Journal of Computational Finance 20(4), 39-69.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.stats import norm

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

Metric = Callable[[FloatArray], FloatArray]
"""A performance metric for PBO: a (t, N) matrix of returns -> N scores, higher is better."""

EULER_MASCHERONI = 0.5772156649015329
"""γ, the Euler–Mascheroni constant used by the expected-maximum approximation."""

_COMBINATION_CHUNK = 4096


# ---------------------------------------------------------------------------------------------
# Probabilistic and deflated Sharpe ratio
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeflatedSharpe:
    """Result of :func:`deflated_sharpe_ratio` (all Sharpe ratios per period).

    Attributes
    ----------
    observed_sharpe:
        SR^, the Sharpe ratio of the selected (best) strategy.
    expected_max_sharpe:
        SR0, the expected maximum Sharpe ratio of ``n_trials`` skill-less trials whose Sharpe
        ratios have variance ``sharpe_variance``.
    probabilistic_sharpe:
        PSR(0), the probability that the true Sharpe ratio is above zero (no deflation).
    deflated_sharpe:
        DSR = PSR(SR0), the probability that the true Sharpe ratio is above SR0, i.e. that the
        observed Sharpe ratio is not explained by selecting the best of ``n_trials``.
    n_trials:
        N, the number of trials (strategy variants) the best one was selected from.
    sharpe_variance:
        V[{SR_n}], the sample variance (ddof=1) of the trials' Sharpe ratios.
    n_observations:
        T, the number of return observations behind ``observed_sharpe``.
    """

    observed_sharpe: float
    expected_max_sharpe: float
    probabilistic_sharpe: float
    deflated_sharpe: float
    n_trials: int
    sharpe_variance: float
    n_observations: int


def _finite(name: str, value: float) -> float:
    out = float(value)
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _check_observations(n_observations: int) -> int:
    if isinstance(n_observations, bool) or not isinstance(n_observations, int | np.integer):
        raise ValueError(f"n_observations must be an int, got {n_observations!r}")
    if n_observations < 2:
        raise ValueError(f"n_observations must be >= 2, got {n_observations}")
    return int(n_observations)


def probabilistic_sharpe_ratio(
    observed: float,
    benchmark: float,
    n_observations: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    r"""Probability that the true Sharpe ratio exceeds ``benchmark`` (Bailey & López de Prado 2012).

    .. math::

        \mathrm{PSR}(SR^*) = \Phi\left(
            \frac{(\widehat{SR} - SR^*)\sqrt{T - 1}}
                 {\sqrt{1 - \hat\gamma_3 \widehat{SR} + \frac{\hat\gamma_4 - 1}{4}\widehat{SR}^2}}
        \right)

    where :math:`\Phi` is the standard normal CDF, :math:`T` the number of observations,
    :math:`\hat\gamma_3` the skewness and :math:`\hat\gamma_4` the **ordinary (non-excess)
    kurtosis** of the returns (3 for normal returns; pass ``scipy.stats.kurtosis(r,
    fisher=False)``, not the excess kurtosis).

    ``observed`` and ``benchmark`` are per-period (non-annualized) Sharpe ratios.

    Reference: D. H. Bailey, M. López de Prado (2012), "The Sharpe Ratio Efficient Frontier",
    Journal of Risk 15(2).

    Raises ``ValueError`` for non-finite inputs, ``n_observations < 2``, or moments for which
    the variance term under the square root is not positive.
    """
    sr = _finite("observed", observed)
    sr_star = _finite("benchmark", benchmark)
    t = _check_observations(n_observations)
    g3 = _finite("skewness", skewness)
    g4 = _finite("kurtosis", kurtosis)
    denominator = 1.0 - g3 * sr + (g4 - 1.0) / 4.0 * sr * sr
    if denominator <= 0.0:
        raise ValueError(
            "1 - skewness*observed + (kurtosis-1)/4*observed^2 must be > 0, got "
            f"{denominator!r} (kurtosis is the ordinary kurtosis, 3 for normal returns)"
        )
    z = (sr - sr_star) * math.sqrt(t - 1) / math.sqrt(denominator)
    return float(norm.cdf(z))


def expected_maximum_sharpe(n_trials: int, sharpe_variance: float) -> float:
    r"""Expected maximum Sharpe ratio of ``n_trials`` skill-less trials (SR0 of the DSR).

    Under the null hypothesis that every trial has a true Sharpe ratio of zero and the estimated
    Sharpe ratios are normal with variance :math:`V = V[\{\widehat{SR}_n\}]`:

    .. math::

        SR_0 = \sqrt{V}\left((1 - \gamma)\,\Phi^{-1}\!\left[1 - \frac{1}{N}\right]
               + \gamma\,\Phi^{-1}\!\left[1 - \frac{1}{N e}\right]\right)

    with :math:`\gamma \approx 0.5772` the Euler–Mascheroni constant, :math:`N` the number of
    trials and :math:`e` Euler's number.

    Reference: Bailey & López de Prado (2014), "The Deflated Sharpe Ratio", Journal of
    Portfolio Management 40(5), eq. (2) (after the False Strategy theorem).

    Raises ``ValueError`` for ``n_trials < 2`` or a negative/non-finite variance.
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer):
        raise ValueError(f"n_trials must be an int, got {n_trials!r}")
    if n_trials < 2:
        raise ValueError(f"n_trials must be >= 2, got {n_trials}")
    variance = _finite("sharpe_variance", sharpe_variance)
    if variance < 0.0:
        raise ValueError(f"sharpe_variance must be >= 0, got {variance!r}")
    n = float(n_trials)
    g = EULER_MASCHERONI
    quantiles = (1.0 - g) * float(norm.ppf(1.0 - 1.0 / n)) + g * float(
        norm.ppf(1.0 - 1.0 / (n * math.e))
    )
    return math.sqrt(variance) * quantiles


def deflated_sharpe_ratio(
    observed_sharpe: float,
    sharpe_trials: Sequence[float] | FloatArray,
    n_observations: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> DeflatedSharpe:
    r"""Deflated Sharpe ratio of the best of a sweep (Bailey & López de Prado 2014).

    .. math::

        \mathrm{DSR} = \mathrm{PSR}(SR_0) = \Phi\left(
            \frac{(\widehat{SR} - SR_0)\sqrt{T - 1}}
                 {\sqrt{1 - \hat\gamma_3 \widehat{SR} + \frac{\hat\gamma_4 - 1}{4}\widehat{SR}^2}}
        \right),\qquad
        SR_0 = \sqrt{V[\{\widehat{SR}_n\}]}\left((1 - \gamma)\Phi^{-1}\!\left[1 - \tfrac{1}{N}
        \right] + \gamma\,\Phi^{-1}\!\left[1 - \tfrac{1}{N e}\right]\right)

    Parameters
    ----------
    observed_sharpe:
        :math:`\widehat{SR}`, the per-period (non-annualized) Sharpe ratio of the selected
        strategy.
    sharpe_trials:
        The per-period Sharpe ratios of all N trials of the sweep (the selected one included);
        N is their count and :math:`V[\{\widehat{SR}_n\}]` their sample variance (ddof=1).
    n_observations:
        T, the number of return observations behind ``observed_sharpe``.
    skewness:
        :math:`\hat\gamma_3`, skewness of the selected strategy's returns (0 for normal).
    kurtosis:
        :math:`\hat\gamma_4`, the **ordinary (non-excess) kurtosis** of the selected strategy's
        returns (3 for normal; ``scipy.stats.kurtosis(r, fisher=False)``).

    Returns a :class:`DeflatedSharpe` with SR0, PSR(0) and DSR = PSR(SR0). A DSR above 0.95
    rejects, at 5 %, that the observed Sharpe ratio is the product of selection among N
    skill-less trials.

    Reference: D. H. Bailey, M. López de Prado (2014), "The Deflated Sharpe Ratio: Correcting
    for Selection Bias, Backtest Overfitting and Non-Normality", Journal of Portfolio
    Management 40(5), 94-107.

    Raises ``ValueError`` for fewer than two trials, non-finite trials or inputs, or
    ``n_observations < 2``.
    """
    trials = np.asarray(sharpe_trials, dtype=np.float64)
    if trials.ndim != 1:
        raise ValueError(f"sharpe_trials must be one-dimensional, got shape {trials.shape}")
    if trials.size < 2:
        raise ValueError(f"sharpe_trials needs at least 2 trials, got {trials.size}")
    if not bool(np.all(np.isfinite(trials))):
        raise ValueError("sharpe_trials must be finite")
    variance = float(np.var(trials, ddof=1))
    sr0 = expected_maximum_sharpe(int(trials.size), variance)
    psr0 = probabilistic_sharpe_ratio(observed_sharpe, 0.0, n_observations, skewness, kurtosis)
    dsr = probabilistic_sharpe_ratio(observed_sharpe, sr0, n_observations, skewness, kurtosis)
    return DeflatedSharpe(
        observed_sharpe=float(observed_sharpe),
        expected_max_sharpe=sr0,
        probabilistic_sharpe=psr0,
        deflated_sharpe=dsr,
        n_trials=int(trials.size),
        sharpe_variance=variance,
        n_observations=int(n_observations),
    )


# ---------------------------------------------------------------------------------------------
# Probability of backtest overfitting (CSCV)
# ---------------------------------------------------------------------------------------------


def _sharpe_from_moments(mean: FloatArray, std: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore", invalid="ignore"):
        out = mean / std
    flat = std == 0.0
    out[flat & (mean > 0.0)] = np.inf
    out[flat & (mean < 0.0)] = -np.inf
    out[flat & (mean == 0.0)] = 0.0
    return out


def sharpe(returns: FloatArray) -> FloatArray:
    r"""Per-period Sharpe ratio of every column: :math:`\bar r / s` with ``ddof=1``.

    ``returns`` is a (t, N) matrix (or a length-t vector, read as one column); the result has
    one score per column. A column with zero spread scores 0 when its mean is 0 and
    :math:`\pm\infty` otherwise (so it still ranks); fewer than two rows give NaN.
    This is the default metric of :func:`probability_of_backtest_overfitting`.
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim == 1:
        r = r[:, None]
    if r.shape[0] < 2:
        return np.full(r.shape[1], np.nan)
    mean = r.mean(axis=0)
    std = r.std(axis=0, ddof=1)
    return _sharpe_from_moments(mean, std)


@dataclass(frozen=True, slots=True, eq=False)
class PBOResult:
    """Result of :func:`probability_of_backtest_overfitting`.

    Attributes
    ----------
    pbo:
        The probability of backtest overfitting: the share of the combinations whose in-sample
        winner has logit λ ≤ 0, i.e. ranks at or below the out-of-sample median.
    logits:
        λ_c = ln(ω_c / (1 - ω_c)) per combination, ω_c = (OOS rank of the IS winner) / (N + 1),
        ranks 1 (worst) .. N (best), ties averaged.
    n_combinations:
        C(S, S/2), the number of in-sample/out-of-sample splits evaluated.
    n_splits:
        S, the number of contiguous blocks the rows were cut into.
    best_index:
        The column of the in-sample winner, per combination (ties: the first column).
    is_metric:
        The winner's in-sample metric, per combination.
    oos_metric:
        The same variant's out-of-sample metric, per combination.
    degradation_slope:
        Slope of the least-squares line oos_metric ≈ intercept + slope * is_metric (the
        paper's "performance degradation"; negative slopes mean that in-sample performance
        does not carry over). NaN when the in-sample metrics do not vary.
    degradation_intercept:
        Intercept of that line (NaN when the slope is).
    prob_oos_loss:
        The share of combinations in which the winner's out-of-sample metric is negative.
    """

    pbo: float
    logits: FloatArray
    n_combinations: int
    n_splits: int
    best_index: IntArray
    is_metric: FloatArray
    oos_metric: FloatArray
    degradation_slope: float
    degradation_intercept: float
    prob_oos_loss: float


def _validate_pbo_inputs(returns: FloatArray, n_splits: int) -> tuple[FloatArray, int]:
    if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer):
        raise ValueError(f"n_splits must be an int, got {n_splits!r}")
    s = int(n_splits)
    if s < 2 or s % 2:
        raise ValueError(f"n_splits must be an even number >= 2, got {s}")
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"returns must be a (T, N) matrix, got shape {r.shape}")
    t, n = r.shape
    if n < 2:
        raise ValueError(f"returns needs at least 2 strategy columns (N >= 2), got N={n}")
    if t < s:
        raise ValueError(f"returns needs at least n_splits={s} rows (T >= S), got T={t}")
    if not bool(np.all(np.isfinite(r))):
        raise ValueError("returns must be finite (no NaN or inf)")
    return r, s


def _combination_masks(n_splits: int) -> npt.NDArray[np.bool_]:
    half = n_splits // 2
    combos = list(itertools.combinations(range(n_splits), half))
    masks = np.zeros((len(combos), n_splits), dtype=np.bool_)
    rows = np.repeat(np.arange(len(combos)), half)
    masks[rows, np.asarray(combos, dtype=np.int64).ravel()] = True
    return masks


def _metrics_fast_sharpe(
    r: FloatArray, bounds: list[tuple[int, int]], masks: npt.NDArray[np.bool_]
) -> tuple[FloatArray, FloatArray]:
    """Sharpe of every IS/OOS half from per-block sufficient statistics (one matmul each)."""
    centre = r.mean(axis=0)
    c = r - centre  # centring keeps the sum-of-squares variance numerically stable
    sums = np.stack([c[a:b].sum(axis=0) for a, b in bounds])
    squares = np.stack([(c[a:b] ** 2).sum(axis=0) for a, b in bounds])
    counts = np.asarray([b - a for a, b in bounds], dtype=np.float64)

    def half(m: npt.NDArray[np.bool_]) -> FloatArray:
        w = m.astype(np.float64)
        n = (w @ counts)[:, None]
        s = w @ sums
        q = w @ squares
        mean_c = s / n
        var = np.maximum(q - s * mean_c, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            std = np.sqrt(var / (n - 1.0))
        std = np.where(n > 1.0, std, np.nan)
        # relative round-off of the sum-of-squares: treat a numerically null spread as zero
        std = np.where(std <= 1e-12 * (np.abs(mean_c + centre) + 1e-300), 0.0, std)
        mean = mean_c + centre
        return _sharpe_from_moments(mean, std)

    is_m = np.concatenate([half(masks[i : i + _COMBINATION_CHUNK]) for i in _chunks(masks)])
    oos_m = np.concatenate([half(~masks[i : i + _COMBINATION_CHUNK]) for i in _chunks(masks)])
    return is_m, oos_m


def _chunks(masks: npt.NDArray[np.bool_]) -> range:
    return range(0, masks.shape[0], _COMBINATION_CHUNK)


def _metrics_generic(
    r: FloatArray, bounds: list[tuple[int, int]], masks: npt.NDArray[np.bool_], metric: Metric
) -> tuple[FloatArray, FloatArray]:
    n = r.shape[1]
    blocks = [np.arange(a, b) for a, b in bounds]
    is_m = np.empty((masks.shape[0], n))
    oos_m = np.empty((masks.shape[0], n))
    for i, m in enumerate(masks):
        is_rows = np.concatenate([blocks[j] for j in np.flatnonzero(m)])
        oos_rows = np.concatenate([blocks[j] for j in np.flatnonzero(~m)])
        for out, rows in ((is_m, is_rows), (oos_m, oos_rows)):
            values = np.asarray(metric(r[rows]), dtype=np.float64)
            if values.shape != (n,):
                raise ValueError(
                    f"metric must return one score per strategy, shape ({n},), got {values.shape}"
                )
            out[i] = values
    return is_m, oos_m


def probability_of_backtest_overfitting(
    returns: FloatArray,
    n_splits: int = 16,
    metric: Metric = sharpe,
) -> PBOResult:
    r"""Probability of backtest overfitting by Combinatorially Symmetric Cross-Validation.

    ``returns`` is a (T, N) matrix: T per-period returns (rows, in time order) of N strategy
    variants (columns), e.g. every parameter set of a sweep. The algorithm (Bailey, Borwein,
    López de Prado & Zhu 2017, section 2):

    1. Cut the T rows into S = ``n_splits`` contiguous blocks of (nearly) equal size
       (``numpy.array_split``: sizes differ by at most one row; S must be even).
    2. For each of the :math:`\binom{S}{S/2}` combinations c of S/2 blocks: the chosen blocks
       (kept in time order) form the in-sample set J_c, the other S/2 blocks the out-of-sample
       set :math:`\bar J_c`.
    3. Score every variant on both with ``metric`` (default: per-period Sharpe ratio, see
       :func:`sharpe`) and pick the in-sample winner
       :math:`n^* = \arg\max_n R_{c,n}` (first column on ties).
    4. Its relative out-of-sample rank is :math:`\bar\omega_c = \bar r_{c,n^*} / (N + 1)` with
       :math:`\bar r` the rank among the N out-of-sample scores (1 = worst, N = best, ties
       averaged), and its logit :math:`\lambda_c = \ln(\bar\omega_c / (1 - \bar\omega_c))`.
    5. :math:`\mathrm{PBO} = \frac{1}{C}\sum_c \mathbb 1[\lambda_c \le 0]`, the share of
       combinations in which the in-sample winner does no better than the out-of-sample
       median.

    Also returned: the "performance degradation" line, the least-squares fit of the winner's
    out-of-sample metric on its in-sample metric across combinations, and the probability of
    an out-of-sample loss (winner's OOS metric < 0).

    ``metric`` maps a (t, N) matrix to N scores (higher is better). The default
    :func:`sharpe` runs on per-block sums (one matrix product for all combinations); any
    other metric is evaluated combination by combination, so keep S moderate
    (C(16, 8) = 12 870).

    Reference: D. H. Bailey, J. M. Borwein, M. López de Prado, Q. J. Zhu (2017), "The
    Probability of Backtest Overfitting", Journal of Computational Finance 20(4), 39-69.

    Raises ``ValueError`` naming the argument when ``n_splits`` is not even and >= 2, when
    ``returns`` is not a finite (T, N) matrix with T >= S and N >= 2, or when the metric
    returns NaN (e.g. the default Sharpe ratio of a single-row half).
    """
    r, s = _validate_pbo_inputs(returns, n_splits)
    t, n = r.shape
    sizes = [len(b) for b in np.array_split(np.arange(t), s)]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(int)
    bounds = [(int(starts[i]), int(starts[i + 1])) for i in range(s)]
    masks = _combination_masks(s)

    if metric is sharpe:
        is_all, oos_all = _metrics_fast_sharpe(r, bounds, masks)
    else:
        is_all, oos_all = _metrics_generic(r, bounds, masks, metric)
    if bool(np.any(np.isnan(is_all))) or bool(np.any(np.isnan(oos_all))):
        raise ValueError(
            "metric returned NaN on an in-sample or out-of-sample half; "
            f"use more rows per block (T={t}, n_splits={s})"
        )

    combos = np.arange(masks.shape[0])
    best = np.argmax(is_all, axis=1).astype(np.int64)
    is_best = is_all[combos, best]
    oos_best = oos_all[combos, best]
    below = np.sum(oos_all < oos_best[:, None], axis=1)
    equal = np.sum(oos_all == oos_best[:, None], axis=1)  # includes the winner itself
    rank = below + (equal + 1) / 2.0  # average rank, 1 = worst
    omega = rank / (n + 1.0)
    logits = np.log(omega / (1.0 - omega))

    finite = np.isfinite(is_best) & np.isfinite(oos_best)
    x = is_best[finite]
    y = oos_best[finite]
    if x.size >= 2 and float(np.ptp(x)) > 0.0:
        slope, intercept = np.polyfit(x, y, 1)
        slope_f, intercept_f = float(slope), float(intercept)
    else:
        slope_f = intercept_f = math.nan

    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        n_combinations=int(masks.shape[0]),
        n_splits=s,
        best_index=best,
        is_metric=is_best,
        oos_metric=oos_best,
        degradation_slope=slope_f,
        degradation_intercept=intercept_f,
        prob_oos_loss=float(np.mean(oos_best < 0.0)),
    )
