"""Blending alpha scores into one: fixed weights, inverse-variance weights, or a stacking
meta-learner (a logistic regression on the alphas' out-of-sample scores)."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from tradestack.alphas.base import AlphaError
from tradestack.alphas.logistic import LogisticScorer
from tradestack.core.series import FloatArray


class Ensemble(ABC):
    """Turns the alphas' scores (columns in ``names`` order) into one score in [-1, 1].

    ``fit`` sees only out-of-sample alpha scores from the training window (each row scored by
    alphas that were fitted before that row), with the forward return as label.
    """

    method: ClassVar[str]
    needs_fit: ClassVar[bool] = False

    def __init__(self, names: Sequence[str]) -> None:
        if not names:
            raise AlphaError("an ensemble needs at least one alpha")
        self.names = tuple(names)
        self.n_fit_rows = 0
        self.fitted = not self.needs_fit

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise AlphaError(f"{self.method} ensemble is not fitted yet")

    def fit(self, scores: FloatArray, forward_return: FloatArray) -> None:
        """Learn the blend from training rows; fixed blends learn nothing."""
        self.n_fit_rows = len(self._matrix(scores))

    def _matrix(self, scores: FloatArray) -> np.ndarray:
        s = np.asarray(scores, dtype=np.float64)
        if s.ndim != 2 or s.shape[1] != len(self.names):
            raise AlphaError(
                f"{self.method} ensemble of {len(self.names)} alphas got scores of shape {s.shape}"
            )
        return s

    def _step(self, scores: Sequence[float]) -> None:
        if len(scores) != len(self.names):
            raise AlphaError(
                f"{self.method} ensemble of {len(self.names)} alphas got {len(scores)} scores"
            )

    @abstractmethod
    def weights(self) -> dict[str, float]:
        """The weight of each alpha (for a stacking blend: the meta-learner's coefficients)."""

    @abstractmethod
    def blend_batch(self, scores: FloatArray) -> FloatArray:
        """Blend every row of ``scores`` (shape ``(n, len(names))``)."""

    @abstractmethod
    def blend(self, scores: Sequence[float]) -> float:
        """Blend one step's scores."""

    def describe(self) -> dict[str, Any]:
        return {"method": self.method, "weights": self.weights()}


class _Linear(Ensemble):
    """``sum(w_i * s_i)`` with weights summing (in absolute value) to 1, so the result stays in
    [-1, 1]."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(names)
        self._w = np.full(len(self.names), 1.0 / len(self.names))

    def weights(self) -> dict[str, float]:
        return dict(zip(self.names, map(float, self._w), strict=True))

    def blend_batch(self, scores: FloatArray) -> FloatArray:
        self._require_fitted()
        s = self._matrix(scores)
        out = np.zeros(len(s))
        for j in range(len(self._w)):
            out = out + s[:, j] * self._w[j]
        return out

    def blend(self, scores: Sequence[float]) -> float:
        self._step(scores)
        self._require_fitted()
        total = 0.0
        for j, s in enumerate(scores):
            total = total + s * self._w[j]
        return total


class FixedWeights(_Linear):
    """Weights given in the config, normalized so their absolute values sum to 1."""

    method = "fixed"

    def __init__(self, names: Sequence[str], weights: Mapping[str, float] | None = None) -> None:
        super().__init__(names)
        if weights is not None:
            unknown = sorted(set(weights) - set(self.names))
            if unknown:
                raise AlphaError(
                    f"ensemble weights name unknown alphas {', '.join(unknown)} "
                    f"(alphas: {', '.join(self.names)})"
                )
            raw = np.array([float(weights.get(n, 0.0)) for n in self.names])
            if not np.isfinite(raw).all() or np.abs(raw).sum() == 0:
                raise AlphaError(f"ensemble weights must be finite, not all zero: {weights}")
            self._w = raw / np.abs(raw).sum()


class InverseVariance(_Linear):
    """Each alpha weighted by the inverse variance of its training-window scores, so a noisy
    alpha counts less: ``w_i = (1 / var_i) / sum_j (1 / var_j)``."""

    method = "inverse_variance"
    needs_fit = True

    def fit(self, scores: FloatArray, forward_return: FloatArray) -> None:
        s = self._matrix(scores)
        ok = np.isfinite(s).all(axis=1)
        if ok.sum() < 2:
            raise AlphaError("inverse-variance ensemble: fewer than 2 training rows with scores")
        var = s[ok].var(axis=0, ddof=1)
        inv = np.where(var > 0, 1.0 / np.where(var > 0, var, 1.0), 0.0)
        if inv.sum() == 0:
            raise AlphaError("inverse-variance ensemble: every alpha is constant on training")
        self._w = inv / inv.sum()
        self.n_fit_rows = int(ok.sum())
        self.fitted = True


class Stacking(Ensemble):
    """A logistic meta-learner: P(up | alpha scores), reported as ``2p - 1``.

    Fitted on out-of-sample alpha scores (see :class:`Ensemble`), so it learns how much each
    alpha is worth out of sample, not how well it fits its own training data (Wolpert 1992,
    stacked generalization).
    """

    method = "stacking"
    needs_fit = True

    def __init__(self, names: Sequence[str], C: float = 1.0) -> None:
        super().__init__(names)
        if not (math.isfinite(C) and C > 0):
            raise AlphaError(f"stacking ensemble: C must be > 0, got {C!r}")
        self.model = LogisticScorer(C)

    def fit(self, scores: FloatArray, forward_return: FloatArray) -> None:
        n = self.model.fit_moves(
            self._matrix(scores), forward_return, "stacking ensemble", "the out-of-sample rows"
        )
        self.fitted = True
        self.n_fit_rows = n

    def weights(self) -> dict[str, float]:
        w = self.model.coef / self.model.std if len(self.model.coef) else np.zeros(len(self.names))
        return dict(zip(self.names, map(float, w), strict=True))

    def blend_batch(self, scores: FloatArray) -> FloatArray:
        self._require_fitted()
        return self.model.score_batch(self._matrix(scores))

    def blend(self, scores: Sequence[float]) -> float:
        self._step(scores)
        self._require_fitted()
        for v in scores:
            if v != v:
                return math.nan
        return self.model.score(scores)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "intercept": self.model.intercept,
            "n_train": self.model.n_train,
        }
