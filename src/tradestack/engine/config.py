"""Backtest configuration: the YAML the CLI reads, validated by pydantic (unknown keys fail)."""

from __future__ import annotations

import difflib
import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tradestack.core.ids import InstrumentId
from tradestack.engine.pipeline.config import PipelineConfig


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
    tick_size: Decimal = Field(default=Decimal("0.01"), gt=0)
    lot_size: Decimal = Field(default=Decimal("1"), gt=0)
    min_qty: Decimal = Field(default=Decimal("0"), ge=0)
    min_notional: Decimal = Field(default=Decimal("0"), ge=0)
    maker_fee_bps: Decimal = Field(default=Decimal("0"), gt=-10_000, lt=10_000)
    taker_fee_bps: Decimal = Field(default=Decimal("0"), gt=-10_000, lt=10_000)
    multiplier: Decimal = Field(default=Decimal("1"), gt=0)

    @field_validator("instrument")
    @classmethod
    def _instrument(cls, value: str) -> str:
        InstrumentId.parse(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r}") from None
        return value


class VenueConfig(_Strict):
    """Simulated bar venue settings (see :class:`tradestack.execution.BarVenueConfig`)."""

    fill_at: Literal["next_open", "close"] = "next_open"
    slippage_bps: Decimal = Field(default=Decimal(0), ge=0, lt=10_000)
    maker_fee_bps: Decimal | None = Field(default=None, gt=-10_000, lt=10_000)
    taker_fee_bps: Decimal | None = Field(default=None, gt=-10_000, lt=10_000)
    allow_short: bool = True
    leverage: Decimal = Field(default=Decimal(1), gt=0)


class BookDataConfig(_Strict):
    """A recorded order-book session (raw venue frames) and the trading rules of its instrument.

    ``venue_format`` names the recording's protocol: ``binance-spot`` or ``binance-usdm``
    (diff depth + trades, and mark price / funding for USD-M).
    """

    recording: str
    venue_format: Literal["binance-spot", "binance-usdm"] = "binance-usdm"
    require_snapshot: bool = True
    instrument: str = Field(description="SYMBOL or SYMBOL@venue")
    kind: Literal["spot", "perpetual"] = "perpetual"
    quote_currency: str = "USDT"
    tick_size: Decimal = Field(gt=0)
    lot_size: Decimal = Field(gt=0)
    min_qty: Decimal = Field(default=Decimal("0"), ge=0)
    min_notional: Decimal = Field(default=Decimal("0"), ge=0)
    maker_fee_bps: Decimal = Field(default=Decimal("0"), gt=-10_000, lt=10_000)
    taker_fee_bps: Decimal = Field(default=Decimal("0"), gt=-10_000, lt=10_000)
    multiplier: Decimal = Field(default=Decimal("1"), gt=0)
    starting_position: Decimal = Decimal(0)
    starting_price: Decimal | None = Field(default=None, gt=0)

    @field_validator("instrument")
    @classmethod
    def _instrument(cls, value: str) -> str:
        InstrumentId.parse(value)
        return value

    @model_validator(mode="after")
    def _seed_needs_price(self) -> BookDataConfig:
        if self.starting_position and self.starting_price is None:
            raise ValueError("starting_position needs starting_price (its cost)")
        return self


class BusFeedConfig(_Strict):
    """Market data from a Redis stream that ``tradestack record --publish`` fills, instead of
    an exchange connection of the session's own (see :mod:`tradestack.bus.market_data`).

    ``group`` is this strategy process's consumer group (each group gets every event; keep the
    name and ``consumer`` stable, so a restart resumes where it stopped). A new group starts at
    the stream's beginning (``earliest``) or with what is published from now on (``latest``).
    ``url`` defaults to ``$REDIS_URL``, else ``redis://127.0.0.1:6379/0``.
    """

    url: str | None = None
    group: str = Field(min_length=1)
    consumer: str = Field(default="1", min_length=1)
    prefix: str = "md"
    start: Literal["earliest", "latest"] = "latest"


class PaperConfig(_Strict):
    """Paper trading of a ``book`` config: the live feed of ``venue``/``symbol`` (through ccxt)
    into the L2 simulated venue, state in ``state`` (a SQLite path or a database URL).

    ``base_url`` points the feed at another server (a local fake venue); ``replay`` makes
    ``tradestack paper`` serve that recording itself on 127.0.0.1 at ``speed`` times its pace
    (the demo); ``bus`` takes the feed from a Redis stream another process publishes. Without
    any of them, the feed is the real exchange's. The session ends on SIGINT or SIGTERM, after
    ``duration_s``, or when no message came for ``idle_stop_s``.
    """

    venue: Literal["binance", "binanceusdm"] = "binance"
    symbol: str = Field(description="the ccxt symbol, e.g. BTC/USDT")
    base_url: str | None = None
    replay: str | None = None
    bus: BusFeedConfig | None = None
    speed: float = Field(default=10.0, gt=0)
    state: str = "paper-state.db"
    hold_ms: int = Field(default=0, ge=0)
    duration_s: float | None = Field(default=None, gt=0)
    idle_stop_s: float | None = Field(default=5.0, gt=0)
    open_orders_at_stop: Literal["cancel", "keep"] = "cancel"

    @model_validator(mode="after")
    def _one_source(self) -> PaperConfig:
        given = [k for k in ("base_url", "replay", "bus") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one market-data source, not {' and '.join(given)}")
        return self


LIVE_CONFIRMATION = "send real orders"


class LiveConfig(_Strict):
    """Live trading of a ``book`` config on ``venue``/``symbol`` through ccxt.

    It starts only with ``confirm: "send real orders"`` and the API key and secret in the
    environment variables ``key_env``/``secret_env`` (never in the file). ``dry_run`` runs the
    strategy on the live feed and logs every order and cancel it would send, sending nothing
    (no credentials needed). ``reserve`` is what the account holds besides this strategy's
    position (e.g. ``{BTC: 10}``); ``check_every_s`` paces the check for fills the stream missed.
    ``bus`` takes the market data from a Redis stream (orders still go to ``base_url`` or the
    exchange).

    ``venue: alpaca`` trades the US stocks of a bar config (its ``data`` entries, one per
    symbol) on Alpaca's live minute bars; orders go through alpaca-py's trading client, to
    Alpaca's paper account unless ``alpaca_paper`` is false. ``data_url``/``stream_url`` (market
    data) and ``base_url`` (trading) point it at other servers, e.g. local fakes.
    """

    venue: Literal["binance", "alpaca"] = "binance"
    symbol: str = Field(default="", description="binance: the ccxt symbol, e.g. BTC/USDT")
    base_url: str | None = None
    bus: BusFeedConfig | None = None
    data_url: str | None = None
    stream_url: str | None = None
    alpaca_feed: Literal["iex", "sip"] = "iex"
    alpaca_paper: bool = True
    state: str = "live-state.db"
    confirm: str = ""
    dry_run: bool = False
    key_env: str = "TRADESTACK_API_KEY"
    secret_env: str = "TRADESTACK_API_SECRET"
    reserve: dict[str, Decimal] = Field(default_factory=dict)
    check_every_s: float = Field(default=5.0, gt=0)
    duration_s: float | None = Field(default=None, gt=0)
    idle_stop_s: float | None = Field(default=None, gt=0)
    open_orders_at_stop: Literal["cancel", "keep"] = "cancel"
    kill_switch: str | None = Field(
        default=None,
        description="the kill switch's state file; writing halt into <file>.flag halts trading",
    )

    @model_validator(mode="after")
    def _symbol_for_binance(self) -> LiveConfig:
        if self.venue == "binance" and not self.symbol:
            raise ValueError("live.symbol: binance trades one ccxt symbol, e.g. BTC/USDT")
        if self.venue == "alpaca" and self.bus is not None:
            raise ValueError("live.bus: the Alpaca session streams its own bars")
        return self


class BacktestConfig(_Strict):
    """A whole backtest: strategy by import path and its parameters (or a ``pipeline``), data,
    venue, cash.

    Either ``data`` (bar files, bar venue ``venue``) or ``book`` (a recorded order book, L2
    venue ``l2_venue``: the fields of :class:`tradestack.execution.sim.L2VenueConfig`).
    """

    strategy: str | None = Field(
        default=None, description="module.path:ClassName or path/to/file.py:ClassName"
    )
    pipeline: PipelineConfig | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    data: list[DataConfig] = Field(default_factory=list)
    venue: VenueConfig = VenueConfig()
    book: BookDataConfig | None = None
    reference_book: BookDataConfig | None = Field(
        default=None, description="another venue's book for cross-venue features; not traded"
    )
    l2_venue: dict[str, Any] = Field(default_factory=dict)
    starting_cash: Decimal = Field(default=Decimal(100_000), gt=0)
    currency: str = "USD"
    periods_per_year: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    title: str | None = None
    paper: PaperConfig | None = None
    live: LiveConfig | None = None

    @model_validator(mode="after")
    def _one_series_per_instrument(self) -> BacktestConfig:
        if bool(self.data) == (self.book is not None):
            raise ValueError("give either data (bar files) or book (an order-book recording)")
        if (self.strategy is None) == (self.pipeline is None):
            raise ValueError("give either strategy (a class) or pipeline (layers from config)")
        if self.pipeline is not None and self.params:
            raise ValueError("params belong to a strategy; a pipeline is configured in pipeline")
        if self.reference_book is not None and (self.book is None or self.pipeline is None):
            raise ValueError("reference_book feeds a pipeline on order-book data (book)")
        if self.pipeline is not None:
            if self.book is not None and self.pipeline.interval_ms is None:
                raise ValueError("pipeline.interval_ms is needed on order-book data")
            if self.book is None and self.pipeline.interval_ms is not None:
                raise ValueError("pipeline.interval_ms applies to order-book data; bars step")
        if self.l2_venue and self.book is None:
            raise ValueError("l2_venue settings need a book recording")
        if self.paper is not None and self.book is None:
            raise ValueError("paper trading runs on an order book: give a book section")
        if self.live is not None and (self.book is None) != (self.live.venue == "alpaca"):
            raise ValueError(
                "live trading on binance runs a book section; on alpaca, bar data (data entries)"
            )
        if self.book is not None and self.venue != VenueConfig():
            raise ValueError("venue settings apply to bar data; an order book uses l2_venue")
        if self.book is not None and self.periods_per_year is not None:
            raise ValueError(
                "periods_per_year applies to bar data; an order-book run samples equity every "
                "l2_venue.sample_interval_ns"
            )
        seen = [str(InstrumentId.parse(d.instrument)) for d in self.data]
        twice = sorted({i for i in seen if seen.count(i) > 1})
        if twice:
            raise ValueError(
                f"each instrument may appear once in data; repeated: {', '.join(twice)}"
            )
        return self


def load_config(path: str | Path) -> tuple[BacktestConfig, Path]:
    """Read and validate a YAML config; returns it and the folder its relative paths start from."""
    file = Path(path)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read config: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: config is not UTF-8 text") from None
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
