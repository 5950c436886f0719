"""The strategy base class: typed class-attribute parameters and ``on_*`` event handlers."""

from __future__ import annotations

import difflib
import inspect
import typing
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tradestack.core.events import Bar, OrderBookSnapshot, QuoteTick, TradeTick
    from tradestack.core.ids import InstrumentId
    from tradestack.core.orders import Fill, Order
    from tradestack.core.series import BarSeries
    from tradestack.engine.context import StrategyContext
    from tradestack.engine.weights import Weights
    from tradestack.execution.sim.book_view import BookView


class ParameterError(ValueError):
    """A strategy parameter that does not exist or has a value of the wrong type."""


@dataclass(frozen=True, slots=True)
class Param:
    """One declared strategy parameter."""

    name: str
    type: Any
    default: Any
    required: bool


_MISSING = object()
_SCALARS = (int, float, bool, str, Decimal)


def _coerce(owner: str, param: Param, value: Any) -> Any:
    expected = param.type
    if expected in _SCALARS:
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if (
            expected is Decimal
            and isinstance(value, int | str | float)
            and not isinstance(value, bool)
        ):
            return Decimal(str(value))
        if isinstance(value, bool) and expected is not bool:
            raise ParameterError(
                f"{owner}.{param.name} must be {expected.__name__}, got bool {value!r}"
            )
        if not isinstance(value, expected):
            raise ParameterError(
                f"{owner}.{param.name} must be {expected.__name__}, got "
                f"{type(value).__name__} {value!r}"
            )
        return value
    origin = typing.get_origin(expected)
    if origin is typing.Literal and value not in typing.get_args(expected):
        raise ParameterError(
            f"{owner}.{param.name} must be one of {typing.get_args(expected)}, got {value!r}"
        )
    return value


class Strategy:
    """Base class for trading strategies; the same code runs in backtest, paper and live.

    Declare parameters as annotated class attributes (``fast: int = 10``); construct with keyword
    arguments to override them. Override only the handlers you need; act through the
    :class:`~tradestack.engine.context.StrategyContext` handed to every handler. Time comes only
    from ``ctx.clock``, data only from the events and ``ctx.history`` (past data only).
    """

    params_spec: ClassVar[dict[str, Param]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        spec: dict[str, Param] = {}
        for klass in reversed(cls.__mro__):
            if klass is object or klass is Strategy:
                continue
            hints = typing.get_type_hints(klass, include_extras=False)
            for name in inspect.get_annotations(klass):
                if name.startswith("_") or typing.get_origin(hints.get(name)) is ClassVar:
                    continue
                default = klass.__dict__.get(name, _MISSING)
                spec[name] = Param(name, hints[name], default, default is _MISSING)
        cls.params_spec = spec

    def __init__(self, **params: Any) -> None:
        owner = type(self).__name__
        spec = self.params_spec
        for name, value in params.items():
            if name not in spec:
                raise ParameterError(_unknown_message(owner, name, spec))
            setattr(self, name, _coerce(owner, spec[name], value))
        missing = [p.name for p in spec.values() if p.required and p.name not in params]
        if missing:
            raise ParameterError(f"{owner} needs parameter(s) {', '.join(missing)}")
        self.validate()

    @classmethod
    def parameters(cls) -> dict[str, Any]:
        """Declared parameters and their defaults."""
        return {p.name: (None if p.required else p.default) for p in cls.params_spec.values()}

    def current_parameters(self) -> dict[str, Any]:
        """Parameter values of this instance."""
        return {name: getattr(self, name, None) for name in self.params_spec}

    @property
    def name(self) -> str:
        return type(self).__name__

    def validate(self) -> None:
        """Check parameter values against each other; raise :class:`ParameterError` if wrong."""

    def on_start(self, ctx: StrategyContext) -> None:
        """Called once before the first event."""

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        """Called for every completed bar."""

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        """Called for every top-of-book quote (in an L2 replay: every top-of-book change)."""

    def on_trade(self, ctx: StrategyContext, trade: TradeTick) -> None:
        """Called for every public trade."""

    def on_book(self, ctx: StrategyContext, book: OrderBookSnapshot | BookView) -> None:
        """Called on every order book change (an L2 replay passes a live :class:`BookView`)."""

    def on_fill(self, ctx: StrategyContext, fill: Fill) -> None:
        """Called after one of this strategy's orders was (partly) filled and booked."""

    def on_order(self, ctx: StrategyContext, order: Order) -> None:
        """Called after one of this strategy's orders changed status."""

    def on_timer(self, ctx: StrategyContext, name: str, ts_ns: int) -> None:
        """Called when a timer set with ``ctx.set_timer`` fires."""

    def on_stop(self, ctx: StrategyContext) -> None:
        """Called once after the last event."""

    def target_weights(
        self, bars: Mapping[InstrumentId, BarSeries]
    ) -> Mapping[InstrumentId, Weights] | None:
        """The strategy's decisions as arrays, for the vectorized runner; None (the default)
        when it cannot state them so.

        ``w[i]`` for an instrument is the ``fraction`` the strategy passes to
        ``ctx.order_target_percent`` at the close of that instrument's bar ``i`` (NaN: no order
        then), or the same as :class:`~tradestack.engine.weights.SparseWeights` (only the bars
        that decide); an instrument left out never trades. Only data up to bar ``i`` may decide
        ``w[i]``. A strategy that implements this must make its ``on_bar`` orders exactly these.
        """
        return None


def _unknown_message(owner: str, name: str, spec: dict[str, Param]) -> str:
    close = difflib.get_close_matches(name, list(spec), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    known = ", ".join(spec) or "none"
    return f"{owner} has no parameter {name!r}{hint} (parameters: {known})"


def overrides(strategy: Strategy, handler: str) -> bool:
    """True when the strategy's class overrides ``handler`` (so the engine may skip no-ops)."""
    return getattr(type(strategy), handler) is not getattr(Strategy, handler)
