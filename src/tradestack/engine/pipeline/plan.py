"""Building and fitting a pipeline from its config, using only the training window.

The training window is cut from the base columns *before* any feature is computed, so nothing
after ``train_end`` can reach a fitted model. Labels are forward returns over ``horizon`` steps
inside that window (the last ``horizon`` rows have none: purged). The ensemble learns from
out-of-sample alpha scores: the training rows are split into ``folds`` consecutive blocks, and
the rows of block k are scored by alphas fitted on the rows before block k (minus a
``horizon`` gap). The alphas are then fitted once more on the whole training window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgspec
import numpy as np

from tradestack.alphas import ALPHA_KINDS, ENSEMBLE_METHODS, Alpha, AlphaError, Ensemble
from tradestack.alphas.diagnostics import forward_returns
from tradestack.core.ids import InstrumentId
from tradestack.engine.pipeline.config import PipelineConfig
from tradestack.features.featureset import FeatureSet, FeatureSpecError
from tradestack.portfolio.sizing import SizingConfig
from tradestack.risk import RiskConfig


class PipelineError(ValueError):
    """A pipeline that cannot be built or fitted; the message names the part and the reason."""


@dataclass(frozen=True)
class Steps:
    """One instrument's decision steps: their times and base columns."""

    ts_ns: np.ndarray
    columns: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.ts_ns)

    def cut(self, end: int) -> Steps:
        return Steps(self.ts_ns[:end], {k: v[:end] for k, v in self.columns.items()})


@dataclass
class Signals:
    """What the batch path computed for one instrument, step by step."""

    ts_ns: np.ndarray
    close: np.ndarray
    features: np.ndarray  # (n, n_features)
    alpha_scores: np.ndarray  # (n, n_alphas)
    signal: np.ndarray  # (n,)


@dataclass
class PipelinePlan:
    """A compiled, fitted pipeline: everything both execution paths need."""

    config: PipelineConfig
    features: FeatureSet
    alphas: list[Alpha]
    ensemble: Ensemble
    alpha_columns: list[list[int]]
    volatility_column: int
    train_end_ns: dict[InstrumentId, int]
    sizing: SizingConfig
    risk: RiskConfig
    fit_summary: dict[str, Any] = field(default_factory=dict)

    def signals(self, steps: Steps) -> Signals:
        """Batch path: features, alpha scores and blend over every step at once."""
        values = self.features.batch(steps.columns)
        matrix = np.column_stack([values[n] for n in self.features.names])
        scores = np.column_stack(
            [
                a.score_batch(matrix[:, cols])
                for a, cols in zip(self.alphas, self.alpha_columns, strict=True)
            ]
        )
        blend = self.ensemble.blend_batch(scores)
        close = np.asarray(steps.columns["close"], dtype=np.float64)
        return Signals(steps.ts_ns, close, matrix, scores, blend)


def build_plan(
    config: PipelineConfig,
    steps: Mapping[InstrumentId, Steps],
    base_columns: Sequence[str],
) -> PipelinePlan:
    """Compile the config and fit its models on the training window (see module docstring)."""
    try:
        features = FeatureSet.from_config(config.features, base_columns)
    except FeatureSpecError as exc:
        raise PipelineError(f"pipeline.features: {exc}") from None
    names = features.names
    try:
        sizing = msgspec.convert(config.sizing, SizingConfig, strict=False)
    except (msgspec.ValidationError, ValueError) as exc:
        raise PipelineError(f"pipeline.sizing: {exc}") from None
    try:
        risk = msgspec.convert(config.risk, RiskConfig, strict=False)
    except (msgspec.ValidationError, ValueError) as exc:
        raise PipelineError(f"pipeline.risk: {exc}") from None
    alpha_columns = [[names.index(f) for f in a.features] for a in config.alphas.values()]
    train_end = _train_end(config, steps)
    plan = PipelinePlan(
        config=config,
        features=features,
        alphas=_make_alphas(config),
        ensemble=_make_ensemble(config),
        alpha_columns=alpha_columns,
        volatility_column=names.index(config.volatility),
        train_end_ns=train_end,
        sizing=sizing,
        risk=risk,
    )
    _fit(plan, steps)
    return plan


def _train_end(
    config: PipelineConfig, steps: Mapping[InstrumentId, Steps]
) -> dict[InstrumentId, int]:
    """Per instrument, the first step of its test window."""
    if config.train_end is not None:
        when = datetime.fromisoformat(config.train_end)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return dict.fromkeys(steps, int(when.timestamp() * 1e9))
    ends = {}
    for inst, s in steps.items():
        if len(s) < 4:
            raise PipelineError(f"pipeline: {inst} has {len(s)} decision steps; too few")
        ends[inst] = int(s.ts_ns[int(len(s) * config.train_fraction)])
    return ends


def _make_alphas(config: PipelineConfig) -> list[Alpha]:
    alphas = []
    for name, entry in config.alphas.items():
        try:
            alphas.append(ALPHA_KINDS[entry.kind](name, entry.features, **entry.params))
        except TypeError as exc:
            raise PipelineError(f"pipeline.alphas.{name}: {exc}") from None
        except AlphaError as exc:
            raise PipelineError(f"pipeline.alphas.{name}: {exc}") from None
    return alphas


def _make_ensemble(config: PipelineConfig) -> Ensemble:
    names = list(config.alphas)
    method = config.ensemble.method
    cls = ENSEMBLE_METHODS[method]
    if method == "fixed":
        return cls(names, weights=config.ensemble.weights)  # type: ignore[call-arg]
    if method == "stacking":
        return cls(names, C=config.ensemble.C)  # type: ignore[call-arg]
    return cls(names)


def _fit(plan: PipelinePlan, steps: Mapping[InstrumentId, Steps]) -> None:
    config = plan.config
    horizon = config.horizon
    train: list[tuple[np.ndarray, np.ndarray]] = []  # (features, forward return) per instrument
    for inst, s in steps.items():
        end = int(np.searchsorted(s.ts_ns, plan.train_end_ns[inst], side="left"))
        if end <= horizon + config.folds:
            raise PipelineError(
                f"pipeline: {inst} has {end} steps before train_end; too few to train on"
            )
        if end >= len(s):
            raise PipelineError(
                f"pipeline: train_end is after {inst}'s last step; nothing is left to trade"
            )
        cut = s.cut(end)
        values = plan.features.batch(cut.columns)
        matrix = np.column_stack([values[n] for n in plan.features.names])
        train.append((matrix, forward_returns(cut.columns["close"], horizon)))
    needs_oof = plan.ensemble.needs_fit
    if needs_oof:
        oof_scores, oof_y = [], []
        k = config.folds
        for fold in range(1, k):
            fitted = _make_alphas(config)
            fit_rows = []
            for matrix, y in train:
                b = len(y) * fold // k
                fit_rows.append((matrix[: max(b - horizon, 0)], y[: max(b - horizon, 0)]))
            _fit_alphas(fitted, plan.alpha_columns, fit_rows, f"fold {fold}")
            for matrix, y in train:
                lo, hi = len(y) * fold // k, len(y) * (fold + 1) // k
                oof_scores.append(_score(fitted, plan.alpha_columns, matrix[lo:hi]))
                oof_y.append(y[lo:hi])
        try:
            plan.ensemble.fit(np.vstack(oof_scores), np.concatenate(oof_y))
        except AlphaError as exc:
            raise PipelineError(f"pipeline.ensemble: {exc}") from None
    _fit_alphas(plan.alphas, plan.alpha_columns, train, "training window")
    plan.fit_summary = {
        "train_end": {str(i): t for i, t in plan.train_end_ns.items()},
        "train_rows": int(sum(len(y) for _, y in train)),
        "ensemble_rows": plan.ensemble.n_fit_rows,
    }


def _fit_alphas(
    alphas: list[Alpha],
    columns: list[list[int]],
    rows: list[tuple[np.ndarray, np.ndarray]],
    where: str,
) -> None:
    matrix = np.vstack([m for m, _ in rows])
    y = np.concatenate([r for _, r in rows])
    for alpha, cols in zip(alphas, columns, strict=True):
        if alpha.needs_fit:
            try:
                alpha.fit(matrix[:, cols], y)
            except AlphaError as exc:
                raise PipelineError(f"pipeline.alphas.{alpha.name} ({where}): {exc}") from None


def _score(alphas: list[Alpha], columns: list[list[int]], matrix: np.ndarray) -> np.ndarray:
    return np.column_stack(
        [a.score_batch(matrix[:, cols]) for a, cols in zip(alphas, columns, strict=True)]
    )
