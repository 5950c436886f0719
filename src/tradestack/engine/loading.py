"""Turn a validated config into a ready engine: import strategy, load data, build instruments."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import sys
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.core.series import BarSeries
from tradestack.data import DataValidationError, load_bars, resolve_data_path
from tradestack.engine.backtest import BacktestEngine, ProgressFn

if TYPE_CHECKING:  # the L2 engine loads its compiled core: imported only for book configs
    from tradestack.engine.l2 import L2BacktestEngine
    from tradestack.execution.sim.config import L2VenueConfig
    from tradestack.execution.sim.feed import L2Feed
from tradestack.engine.config import BacktestConfig, BookDataConfig, ConfigError, DataConfig
from tradestack.engine.strategy import Strategy
from tradestack.engine.vectorized import NotVectorizable, VectorizedEngine
from tradestack.execution.bar_venue import BarVenueConfig


class BarReader(Protocol):
    """Reads one instrument's bar file, as :func:`tradestack.data.load_bars`: the hook through
    which a sweep's workers hand :func:`build_engine` their cache of already-read files."""

    def __call__(
        self, path: Path, instrument_id: InstrumentId, *, timezone: str, time_column: str | None
    ) -> BarSeries: ...


def import_strategy(spec: str, base: Path | None = None) -> type[Strategy]:
    """Import ``module.path:ClassName`` or ``file.py:ClassName`` and check it is a Strategy."""
    module_name, sep, class_name = spec.rpartition(":")
    if not sep or not module_name or not class_name:
        raise ConfigError(f"strategy {spec!r} must look like 'package.module:ClassName'")
    module = _import_module(module_name, spec, base)
    found = getattr(module, class_name, None)
    if found is None:
        options = [
            n
            for n, v in vars(module).items()
            if inspect.isclass(v) and issubclass(v, Strategy) and v is not Strategy
        ]
        close = difflib.get_close_matches(class_name, options, n=1)
        hint = (
            f"; did you mean {close[0]!r}?"
            if close
            else f" (strategies there: {', '.join(options) or 'none'})"
        )
        raise ConfigError(
            f"strategy {spec!r}: module {module_name!r} has no class {class_name!r}{hint}"
        )
    if not (inspect.isclass(found) and issubclass(found, Strategy)):
        raise ConfigError(f"strategy {spec!r}: {class_name} is not a tradestack Strategy subclass")
    return found


def _import_module(name: str, spec: str, base: Path | None) -> ModuleType:
    if name.endswith(".py"):
        file = Path(name) if base is None else resolve_data_path(name, base)
        loader_spec = importlib.util.spec_from_file_location(f"tradestack_user_{file.stem}", file)
        if loader_spec is None or loader_spec.loader is None or not file.exists():
            raise ConfigError(f"strategy {spec!r}: file {file} not found")
        module = importlib.util.module_from_spec(loader_spec)
        # Registered before running so that postponed annotations and dataclasses can find it.
        sys.modules[loader_spec.name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:
            del sys.modules[loader_spec.name]
            raise ConfigError(
                f"strategy {spec!r}: {file} failed to load: {type(exc).__name__}: {exc}"
            ) from exc
        return module
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise ConfigError(f"strategy {spec!r}: cannot import module {name!r} ({exc})") from None
    except Exception as exc:
        raise ConfigError(
            f"strategy {spec!r}: importing {name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc


def build_engine(
    config: BacktestConfig,
    base: Path,
    progress: ProgressFn | None = None,
    *,
    vectorized: bool = False,
    read_bars: BarReader | None = None,
    live: bool = False,
) -> BacktestEngine | L2BacktestEngine | VectorizedEngine:
    """Everything is loaded and checked before the engine exists, so a bad input writes nothing.

    ``vectorized``: the compiled runner instead of the event loop (bar data, a strategy that
    states target weights; same trades and equity curve), or a :class:`ConfigError` saying why
    this config cannot run that way. ``read_bars`` reads each ``data`` entry's file
    (:func:`~tradestack.data.load_bars` by default). ``live``: the engine is a template for
    paper or live trading, whose market data comes later (a pipeline then computes its signal
    one event at a time and trades past the end of its recording)."""
    if vectorized and (config.pipeline is not None or config.book is not None):
        raise ConfigError(
            "the vectorized runner takes bar data and a strategy with target weights; "
            "pipelines and order books run on the event engine"
        )
    if config.pipeline is not None:
        # imported here: the pipeline pulls in the feature and model libraries
        from tradestack.engine.pipeline.build import build_pipeline_engine

        return build_pipeline_engine(config, config.pipeline, base, progress, live=live)
    assert config.strategy is not None
    strategy = import_strategy(config.strategy, base)(**config.params)
    if config.book is not None:
        feed, instrument, seed = _load_book(config.book, base)
        return _l2_engine(config, strategy, feed, instrument, seed)
    feeds, instruments = _load_bars(config, base, read_bars)
    if vectorized:
        try:
            return VectorizedEngine(strategy, feeds, **_bar_engine_args(config, instruments))
        except NotVectorizable as exc:
            raise ConfigError(f"vectorized runner: {exc}") from None
    return _bar_engine(config, strategy, feeds, instruments, progress)


def _load_bars(
    config: BacktestConfig, base: Path, read_bars: BarReader | None = None
) -> tuple[list[BarSeries], list[Instrument]]:
    if read_bars is None:
        read_bars = load_bars
    feeds, instruments = [], []
    for n, entry in enumerate(config.data):
        inst_id = InstrumentId.parse(entry.instrument)
        path = resolve_data_path(entry.path, base)
        try:
            series = read_bars(
                path, inst_id, timezone=entry.timezone, time_column=entry.time_column
            )
        except DataValidationError:
            raise
        except (OSError, ValueError) as exc:
            raise ConfigError(f"data[{n}].path: cannot load {path}: {exc}") from None
        feeds.append(series)
        instruments.append(_instrument(inst_id, entry))
    return feeds, instruments


def _bar_engine(
    config: BacktestConfig,
    strategy: Strategy,
    feeds: list[BarSeries],
    instruments: list[Instrument],
    progress: ProgressFn | None,
) -> BacktestEngine:
    return BacktestEngine(
        strategy, feeds, progress=progress, **_bar_engine_args(config, instruments)
    )


def _bar_engine_args(config: BacktestConfig, instruments: list[Instrument]) -> dict[str, Any]:
    """What both bar runners (event and vectorized) take from the config."""
    return {
        "instruments": instruments,
        "starting_cash": config.starting_cash,
        "currency": config.currency,
        "venue": _bar_venue_config(config),
        "periods_per_year": config.periods_per_year,
    }


def _bar_venue_config(config: BacktestConfig) -> BarVenueConfig:
    venue = config.venue
    return BarVenueConfig(
        fill_at=venue.fill_at,
        slippage_bps=venue.slippage_bps,
        maker_fee_bps=venue.maker_fee_bps,
        taker_fee_bps=venue.taker_fee_bps,
        allow_short=venue.allow_short,
        leverage=venue.leverage,
    )


def _l2_venue_config(config: BacktestConfig) -> L2VenueConfig:
    from tradestack.execution.sim.config import L2VenueConfig

    try:
        return msgspec.convert(config.l2_venue, L2VenueConfig, strict=False)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ConfigError(f"l2_venue: {exc}") from None


def _load_book(
    book: BookDataConfig, base: Path, field: str = "book"
) -> tuple[L2Feed, Instrument, tuple[Decimal, Decimal] | None]:
    from tradestack.execution.sim.feed import binance_feed

    inst_id = InstrumentId.parse(book.instrument)
    path = resolve_data_path(book.recording, base)
    try:
        feed = binance_feed(
            path,
            inst_id,
            futures=book.venue_format == "binance-usdm",
            require_snapshot=book.require_snapshot,
        )
    except DataValidationError:
        raise
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{field}.recording: cannot load {path}: {exc}") from None
    seed = None
    if book.starting_position:
        assert book.starting_price is not None
        seed = (book.starting_position, book.starting_price)
    return feed, _instrument(inst_id, book), seed


def _l2_engine(
    config: BacktestConfig,
    strategy: Strategy,
    feed: L2Feed,
    instrument: Instrument,
    seed: tuple[Decimal, Decimal] | None,
) -> L2BacktestEngine:
    from tradestack.engine.l2 import L2BacktestEngine

    return L2BacktestEngine(
        strategy,
        feed,
        instrument=instrument,
        venue=_l2_venue_config(config),
        starting_cash=config.starting_cash,
        currency=config.currency,
        starting_position=seed,
    )


def instrument_of(entry: DataConfig) -> Instrument:
    """The instrument a ``data`` entry describes (its id, kind and trading rules)."""
    return _instrument(InstrumentId.parse(entry.instrument), entry)


def _instrument(inst_id: InstrumentId, spec: DataConfig | BookDataConfig) -> Instrument:
    """The trading rules a data entry declares for its instrument."""
    return Instrument(
        inst_id,
        kind=InstrumentKind(spec.kind),
        quote_currency=spec.quote_currency,
        tick_size=spec.tick_size,
        lot_size=spec.lot_size,
        min_qty=spec.min_qty,
        min_notional=spec.min_notional,
        maker_fee_bps=spec.maker_fee_bps,
        taker_fee_bps=spec.taker_fee_bps,
        multiplier=spec.multiplier,
    )
