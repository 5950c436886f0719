"""The feature kinds a config may name: for each, its inputs, parameters, batch function and
incremental class, so a :class:`~tradestack.features.featureset.FeatureSet` can build both forms
from one declaration."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tradestack.features import indicators, microstructure, technical


@dataclass(frozen=True, slots=True)
class FeatureKind:
    """One kind of feature: how to compute it over arrays and one step at a time.

    ``inputs`` are the argument names of both forms, in order; ``defaults`` binds each to a base
    column unless the config says otherwise. ``outputs`` names the parts of a multi-output kind
    (MACD's line/signal/histogram); ``incremental(**params)`` returns an object whose ``update``
    takes the inputs positionally.
    """

    name: str
    inputs: tuple[str, ...]
    defaults: tuple[str, ...]
    batch: Callable[..., Any]
    incremental: Callable[..., Any]
    outputs: tuple[str, ...] = ()
    summary: str = ""
    restart_on_gap: bool = False

    @property
    def parameters(self) -> dict[str, Any]:
        """Parameter names and defaults (None when required): the batch function's arguments
        after the inputs."""
        listed = list(inspect.signature(self.batch).parameters.values())[len(self.inputs) :]
        return {p.name: None if p.default is inspect.Parameter.empty else p.default for p in listed}


_BOOK = ("bid_px", "bid_sz", "ask_px", "ask_sz")
_TOP = ("bid", "bid_size", "ask", "ask_size")
_FLOW = ("buy_qty", "sell_qty", "buy_notional", "sell_notional")


def _kind(
    name: str,
    batch: Callable[..., Any],
    incremental: Callable[..., Any],
    inputs: tuple[str, ...],
    defaults: tuple[str, ...] | None = None,
    outputs: tuple[str, ...] = (),
) -> FeatureKind:
    doc = (inspect.getdoc(batch) or "").split("\n\n")[0].replace("\n", " ")
    # the price indicators (TA-Lib's and their twins) restart after a gap; the microstructure
    # features define their own NaN handling, the same in both forms
    restart = incremental.__module__ in (indicators.__name__, technical.__name__)
    return FeatureKind(name, inputs, defaults or inputs, batch, incremental, outputs, doc, restart)


def _sma(x: Any, period: int) -> Any:
    """Simple moving average (TA-Lib ``SMA``)."""
    return indicators.sma(x, period)


def _ema(x: Any, period: int) -> Any:
    """Exponential moving average seeded by the first SMA (TA-Lib ``EMA``)."""
    return indicators.ema(x, period)


KINDS: dict[str, FeatureKind] = {
    k.name: k
    for k in (
        _kind("sma", _sma, indicators.SMA, ("x",), ("close",)),
        _kind("ema", _ema, indicators.EMA, ("x",), ("close",)),
        _kind("rsi", technical.rsi, technical.RSI, ("close",)),
        _kind(
            "macd",
            technical.macd,
            technical.MACD,
            ("close",),
            outputs=("line", "signal", "histogram"),
        ),
        _kind(
            "bollinger",
            technical.bollinger,
            technical.BollingerBands,
            ("close",),
            outputs=("upper", "middle", "lower"),
        ),
        _kind("atr", technical.atr, technical.ATR, ("high", "low", "close")),
        _kind("returns", technical.returns, technical.Returns, ("close",)),
        _kind(
            "rolling_volatility",
            technical.rolling_volatility,
            technical.RollingVolatility,
            ("close",),
        ),
        _kind("zscore", technical.zscore, technical.ZScore, ("values",), ("close",)),
        _kind("mid", microstructure.mid, microstructure.Mid, ("bid", "ask")),
        _kind("spread_bps", microstructure.spread_bps, microstructure.SpreadBps, ("bid", "ask")),
        _kind(
            "book_imbalance",
            microstructure.book_imbalance,
            microstructure.BookImbalance,
            ("bid_sz", "ask_sz"),
        ),
        _kind("microprice", microstructure.microprice, microstructure.Microprice, _TOP),
        _kind(
            "microprice_dev_bps",
            microstructure.microprice_dev_bps,
            microstructure.MicropriceDevBps,
            _TOP,
        ),
        _kind("vwap", microstructure.vwap, microstructure.VWAP, _FLOW),
        _kind(
            "vwap_deviation",
            microstructure.vwap_deviation,
            microstructure.VWAPDeviation,
            ("mid", *_FLOW),
        ),
        _kind(
            "trade_flow_imbalance",
            microstructure.trade_flow_imbalance,
            microstructure.TradeFlowImbalance,
            ("buy_qty", "sell_qty"),
        ),
        _kind(
            "realized_volatility",
            microstructure.realized_volatility,
            microstructure.RealizedVolatility,
            ("mid",),
        ),
        _kind("vpin", microstructure.vpin, microstructure.VPIN, ("buy_qty", "sell_qty")),
        _kind(
            "kyle_lambda",
            microstructure.kyle_lambda,
            microstructure.KyleLambda,
            ("mid", "buy_qty", "sell_qty"),
        ),
        _kind(
            "cross_venue_spread_bps",
            microstructure.cross_venue_spread_bps,
            microstructure.CrossVenueSpreadBps,
            ("mid_a", "mid_b"),
            ("mid", "ref_mid"),
        ),
    )
}

BOOK_COLUMNS = (*_BOOK, *_TOP, "mid", "close", *_FLOW, "volume")
"""Base columns of an order-book step: the top ``k`` levels (2-D), the best level, the mid (also
``close``, so price indicators run on it) and the trades since the previous step."""

BAR_COLUMNS = ("open", "high", "low", "close", "volume")
"""Base columns of a bar step."""
