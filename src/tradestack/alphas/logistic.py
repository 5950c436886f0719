"""A standardized logistic regression whose batch and one-step scores are the same numbers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from tradestack.alphas.base import AlphaError, tanh
from tradestack.core.series import FloatArray


class LogisticScorer:
    """Fits P(up) = sigmoid(w · z + b) on standardized inputs ``z = (x - mean) / std`` with
    scikit-learn, then scores as ``2p - 1 = tanh((w · z + b) / 2)`` in plain arithmetic so the
    array and scalar forms agree."""

    __slots__ = ("C", "coef", "intercept", "mean", "n_train", "std")

    def __init__(self, C: float = 1.0) -> None:
        self.C = C
        self.mean = np.zeros(0)
        self.std = np.ones(0)
        self.coef = np.zeros(0)
        self.intercept = 0.0
        self.n_train = 0

    def fit_moves(self, X: np.ndarray, forward_return: FloatArray, who: str, rows: str) -> int:
        """Fit on the rows whose forward return moved (a flat move says nothing about
        direction); returns how many. ``who`` and ``rows`` name the model and its rows in the
        error when there are too few, or only one direction."""
        y = np.asarray(forward_return, dtype=np.float64)
        keep = np.isfinite(X).all(axis=1) & np.isfinite(y) & (y != 0.0)
        up = (y[keep] > 0).astype(np.int64)
        if len(up) < 10 or up.min() == up.max():
            raise AlphaError(
                f"{who}: {len(up)} non-flat moves in {rows} ({int(up.sum())} up); it needs "
                "both directions — lengthen the training window or the horizon"
            )
        self.fit(X[keep], up)
        return len(up)

    def fit(self, X: np.ndarray, up: np.ndarray) -> None:
        """``up``: 1 where the label moved up, 0 where it moved down (flat rows left out)."""
        from sklearn.linear_model import LogisticRegression  # ~2 s to import: only when fitting

        self.mean = X.mean(axis=0)
        std = X.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        model = LogisticRegression(C=self.C, max_iter=1000)
        model.fit((X - self.mean) / self.std, up)
        self.coef = np.asarray(model.coef_[0], dtype=np.float64)
        self.intercept = float(model.intercept_[0])
        self.n_train = len(X)

    def score_batch(self, X: np.ndarray) -> FloatArray:
        z = (X - self.mean) / self.std
        logit = np.zeros(len(X))
        for j in range(len(self.coef)):  # column by column: the order the scalar form sums in
            logit = logit + z[:, j] * self.coef[j]
        return np.asarray(tanh((logit + self.intercept) / 2.0), dtype=np.float64)

    def score(self, x: Sequence[float]) -> float:
        logit = 0.0
        for j, value in enumerate(x):
            logit = logit + (value - self.mean[j]) / self.std[j] * self.coef[j]
        return math.tanh((logit + self.intercept) / 2.0)
