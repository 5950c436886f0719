"""Backtest configuration: the YAML the CLI reads, validated by pydantic (unknown keys fail)."""

from __future__ import annotations

import difflib
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file, field and value."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """One bar file and the trading rules of its instrument."""

    path: str
    instrument: str = Field(description="SYMBOL or SYMBOL@venue")
    timezone: str = "UTC"
    time_column: str | None = None
    kind: Literal["spot", "perpetual", "equity"] = "equity"
    quote_currency: str = "USD"
    tick_size: Decimal = Decimal("0.01")
    lot_size: Decimal = Decimal("1")
    min_qty: Decimal = Decimal("0")
    min_notional: Decimal = Decimal("0")
    maker_fee_bps: Decimal = Decimal("0")
    taker_fee_bps: Decimal = Decimal("0")
    multiplier: Decimal = Decimal("1")

    @field_validator("tick_size", "lot_size", "multiplier")
    @classmethod
    def _positive(cls, value: Decimal) -> Decimal:
        if value <= 0:
            raise ValueError("must be > 0")
        return value


class VenueConfig(_Strict):
    """Simulated bar venue settings (see :class:`tradestack.execution.BarVenueConfig`)."""

    fill_at: Literal["next_open", "close"] = "next_open"
    slippage_bps: Decimal = Field(default=Decimal(0), ge=0)
    maker_fee_bps: Decimal | None = None
    taker_fee_bps: Decimal | None = None
    allow_short: bool = True
    leverage: Decimal = Field(default=Decimal(1), gt=0)


class BacktestConfig(_Strict):
    """A whole backtest: strategy by import path, its parameters, data, venue, cash."""

    strategy: str = Field(description="module.path:ClassName or path/to/file.py:ClassName")
    params: dict[str, Any] = Field(default_factory=dict)
    data: list[DataConfig] = Field(min_length=1)
    venue: VenueConfig = VenueConfig()
    starting_cash: Decimal = Field(default=Decimal(100_000), gt=0)
    currency: str = "USD"
    periods_per_year: float | None = Field(default=None, gt=0)
    title: str | None = None


def load_config(path: str | Path) -> tuple[BacktestConfig, Path]:
    """Read and validate a YAML config; returns it and the folder its relative paths start from."""
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return BacktestConfig.model_validate(raw), file.resolve().parent
    except ValidationError as exc:
        raise ConfigError(format_validation_error(file, exc)) from None


def format_validation_error(file: Path, exc: ValidationError) -> str:
    """One line per problem, e.g. ``file: data[0].tick_sze: unknown field; did you mean ...``."""
    lines = []
    for err in exc.errors():
        loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"]).lstrip(".")
        if err["type"] == "extra_forbidden":
            known = _fields_at(err["loc"][:-1])
            close = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(known)})"
            lines.append(f"{file}: {loc}: unknown field{hint}")
        else:
            value = err.get("input")
            lines.append(f"{file}: {loc or '<root>'}: {err['msg']} (got {value!r})")
    return "\n".join(lines)


def _fields_at(loc: tuple[int | str, ...]) -> list[str]:
    model: type[BaseModel] = BacktestConfig
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[str(part)].annotation
        inner = getattr(annotation, "__args__", (annotation,))
        nested = [t for t in inner if isinstance(t, type) and issubclass(t, BaseModel)]
        if not nested:
            return []
        model = nested[0]
    return list(model.model_fields)
