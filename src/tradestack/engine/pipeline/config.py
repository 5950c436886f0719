"""The ``pipeline:`` section of a backtest config: features, alphas, ensemble, sizing, risk."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AlphaConfig(_Strict):
    """One alpha: its kind, the features it reads (in order) and its parameters."""

    kind: Literal["book_pressure", "ma_momentum", "vwap_reversion"]
    features: list[str] = Field(min_length=1)
    params: dict[str, float] = Field(default_factory=dict)


class EnsembleConfig(_Strict):
    """How alpha scores are blended: ``stacking`` (logistic meta-learner, fitted out of
    sample), ``inverse_variance`` or ``fixed`` (``weights`` by alpha name)."""

    method: Literal["stacking", "inverse_variance", "fixed"] = "stacking"
    weights: dict[str, float] | None = None
    C: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _weights_only_fixed(self) -> EnsembleConfig:
        if self.weights is not None and self.method != "fixed":
            raise ValueError("weights apply to method 'fixed' only")
        return self


class PipelineConfig(_Strict):
    """Features → alphas → ensemble → sizing → risk, as one strategy.

    ``mode: batch`` computes features, alphas and the blend over whole arrays before the run
    (research); ``mode: replay`` computes them one event at a time as paper and live trading
    do. Both give the same orders. Fitted models learn from the steps before one calendar
    cutoff — ``train_end``, or the ``train_fraction`` quantile of all step times — and the
    pipeline trades only after it. On
    order-book data the pipeline decides every ``interval_ms`` of the receive clock from the
    top ``depth`` levels and the trades since the previous step. After the risk layer closes a
    position (stop-loss, take-profit) that instrument takes no new position until it is flat
    and ``cooldown_steps`` steps have passed since the one it was closed on.
    """

    mode: Literal["batch", "replay"] = "batch"
    interval_ms: float | None = Field(default=None, gt=0)
    depth: int = Field(default=5, ge=1, le=50)
    train_fraction: float = Field(default=0.5, gt=0, lt=1)
    train_end: str | None = None
    horizon: int = Field(default=1, ge=1)
    cooldown_steps: int = Field(default=1, ge=0)
    folds: int = Field(default=4, ge=2, le=20)
    features: dict[str, dict[str, Any]] = Field(min_length=1)
    alphas: dict[str, AlphaConfig] = Field(min_length=1)
    ensemble: EnsembleConfig = EnsembleConfig()
    volatility: str = Field(description="feature giving each step's return volatility")
    sizing: dict[str, Any] = Field(default_factory=dict)
    risk: dict[str, Any] = Field(default_factory=dict)

    @field_validator("train_end", mode="before")
    @classmethod
    def _dates_as_text(cls, value: Any) -> Any:
        """YAML reads an unquoted ``2013-07-01`` as a date."""
        from datetime import date

        return value.isoformat() if isinstance(value, date) else value

    @field_validator("train_end")
    @classmethod
    def _iso(cls, value: str | None) -> str | None:
        if value is not None:
            from datetime import datetime

            try:
                datetime.fromisoformat(value)
            except ValueError:
                raise ValueError(f"train_end must be an ISO date or time, got {value!r}") from None
        return value

    @model_validator(mode="after")
    def _references(self) -> PipelineConfig:
        known = set(self.features)
        for name, alpha in self.alphas.items():
            unknown = [f for f in alpha.features if f not in known]
            if unknown:
                raise ValueError(
                    f"alpha {name!r} reads undeclared features {', '.join(unknown)} "
                    f"(features: {', '.join(self.features)})"
                )
        if self.volatility not in known:
            raise ValueError(f"volatility names undeclared feature {self.volatility!r}")
        if self.ensemble.weights is not None:
            extra = sorted(set(self.ensemble.weights) - set(self.alphas))
            if extra:
                raise ValueError(f"ensemble weights name unknown alphas {', '.join(extra)}")
        return self
