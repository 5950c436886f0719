"""Order-book pressure: a logistic regression of the next mid move on book features."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from tradestack.alphas.base import Alpha, check_matrix, check_positive
from tradestack.alphas.logistic import LogisticScorer
from tradestack.core.series import FloatArray


class BookPressure(Alpha):
    """P(next mid move is up | imbalance, microprice deviation, ...) as ``2p - 1``.

    Fitted on training rows whose forward return is non-zero (a flat mid says nothing about
    direction); inputs are standardized with the training mean and std. Reference: Cartea,
    Jaimungal & Penalva (2015) ch. 4; Cont, Kukanov & Stoikov (2014).
    """

    kind = "book_pressure"
    needs_fit = True

    def __init__(self, name: str, features: Sequence[str], C: float = 1.0) -> None:
        super().__init__(name, features)
        self.model = LogisticScorer(check_positive(name, "C", C))

    def fit(self, X: FloatArray, forward_return: FloatArray) -> None:
        arr = check_matrix(self.name, X, len(self.features))
        self.model.fit_moves(arr, forward_return, f"alpha {self.name!r}", "the training window")
        self.fitted = True

    def score_batch(self, X: FloatArray) -> FloatArray:
        self._require_fitted()
        return self.model.score_batch(check_matrix(self.name, X, len(self.features)))

    def score(self, x: Sequence[float]) -> float:
        self._require_fitted()
        self._check_step(x)
        for v in x:
            if v != v:
                return math.nan
        return self.model.score(x)

    def describe(self) -> dict[str, Any]:
        m = self.model
        return {
            **super().describe(),
            "C": m.C,
            "coefficients": dict(zip(self.features, map(float, m.coef), strict=True)),
            "intercept": m.intercept,
            "n_train": m.n_train,
        }
