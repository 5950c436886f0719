"""Turn a validated config into a ready engine: import strategy, load data, build instruments."""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

import msgspec

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.data import DataValidationError, load_bars, resolve_data_path
from tradestack.engine.backtest import BacktestEngine, ProgressFn
from tradestack.engine.config import BacktestConfig, BookDataConfig, ConfigError, DataConfig
from tradestack.engine.l2 import L2BacktestEngine
from tradestack.engine.strategy import Strategy
from tradestack.execution.bar_venue import BarVenueConfig
from tradestack.execution.sim.config import L2VenueConfig
from tradestack.execution.sim.feed import binance_feed


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
    config: BacktestConfig, base: Path, progress: ProgressFn | None = None
) -> BacktestEngine | L2BacktestEngine:
    """Everything is loaded and checked before the engine exists, so a bad input writes nothing."""
    strategy = import_strategy(config.strategy, base)(**config.params)
    if config.book is not None:
        return _build_l2_engine(config, config.book, strategy, base)
    feeds, instruments = [], []
    for n, entry in enumerate(config.data):
        inst_id = InstrumentId.parse(entry.instrument)
        path = resolve_data_path(entry.path, base)
        try:
            series = load_bars(
                path, inst_id, timezone=entry.timezone, time_column=entry.time_column
            )
        except DataValidationError:
            raise
        except (OSError, ValueError) as exc:
            raise ConfigError(f"data[{n}].path: cannot load {path}: {exc}") from None
        feeds.append(series)
        instruments.append(_instrument(inst_id, entry))
    venue = config.venue
    return BacktestEngine(
        strategy,
        feeds,
        instruments=instruments,
        starting_cash=config.starting_cash,
        currency=config.currency,
        venue=BarVenueConfig(
            fill_at=venue.fill_at,
            slippage_bps=venue.slippage_bps,
            maker_fee_bps=venue.maker_fee_bps,
            taker_fee_bps=venue.taker_fee_bps,
            allow_short=venue.allow_short,
            leverage=venue.leverage,
        ),
        periods_per_year=config.periods_per_year,
        progress=progress,
    )


def _build_l2_engine(
    config: BacktestConfig, book: BookDataConfig, strategy: Strategy, base: Path
) -> L2BacktestEngine:
    try:
        venue = msgspec.convert(config.l2_venue, L2VenueConfig, strict=False)
    except (msgspec.ValidationError, ValueError) as exc:
        raise ConfigError(f"l2_venue: {exc}") from None
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
        raise ConfigError(f"book.recording: cannot load {path}: {exc}") from None
    instrument = _instrument(inst_id, book)
    seed = None
    if book.starting_position:
        assert book.starting_price is not None
        seed = (book.starting_position, book.starting_price)
    return L2BacktestEngine(
        strategy,
        feed,
        instrument=instrument,
        venue=venue,
        starting_cash=config.starting_cash,
        currency=config.currency,
        starting_position=seed,
    )


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
