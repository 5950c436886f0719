"""Corporate actions (splits, cash dividends) and multiplicative back-adjustment of bars.

Back-adjustment rescales every bar *before* an action's ex-date so the history is continuous
with the newest bars, which stay as traded (CRSP, Quandl WIKI and Yahoo's "Adj Close"):

- a split of ``ratio`` new shares per old share (7.0 for a 7-for-1, 0.5 for a 1-for-2 reverse
  split) multiplies earlier prices by ``1 / ratio`` and earlier volumes by ``ratio``, so every
  bar's price × volume is unchanged;
- a cash dividend ``D`` multiplies earlier prices by ``1 - D / P``. With
  ``dividend_basis="prev_close"`` (CRSP, Yahoo, zipline) ``P`` is the close of the last bar
  before the ex-date; with ``"ex_close"`` it is the ex-date's close plus the dividend, i.e. the
  factor is ``C_ex / (C_ex + D)``: that is what Quandl WIKI's ``adj_*`` columns use (their
  published factors give back exactly ``C_ex + D`` as the reference price). Dividends leave
  volume alone.

A bar's factor is the product of the factors of all actions whose ex-date is after it.
Conventions:

- An ex-date means midnight of that date in ``timezone`` (default UTC, which suits daily bars
  stamped at 00:00 UTC of their session); bars with ``ts_event_ns`` before it are adjusted.
- A dividend is per share in the share basis of its ex-date: when a split also falls between the
  previous bar and the dividend's ex-date (in practice: the same ex-date), the previous close is
  divided by that split's ratio before the dividend factor is taken.
- Actions on or before the first bar adjust nothing (no bar precedes them) and are ignored. An
  action after the last bar raises :class:`CorporateActionError`: the adjustment is anchored at
  the last bar, and such an action would rescale every bar by a factor the bars cannot give.
- A dividend not below the previous close is an error, as is a non-positive amount or ratio.
"""

from __future__ import annotations

import math
import zoneinfo
from collections.abc import Iterable
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Literal, overload

import msgspec
import numpy as np
import polars as pl

from tradestack.core.series import BarSeries, FloatArray, IntArray

DividendBasis = Literal["prev_close", "ex_close"]
PRICE_COLUMNS = ("open", "high", "low", "close")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class ActionKind(StrEnum):
    """What a corporate action does to the share."""

    SPLIT = "split"
    DIVIDEND = "dividend"


class CorporateAction(msgspec.Struct, frozen=True, order=True):
    """A split or a cash dividend, effective from the open of ``ex_date``.

    ``value`` is the split ratio (new shares per old share) or the cash dividend per share in
    the price currency. Build with :meth:`split` or :meth:`dividend`; both check the value.
    """

    ex_date: date
    kind: ActionKind
    value: float

    def __post_init__(self) -> None:
        if self.kind not in (ActionKind.SPLIT, ActionKind.DIVIDEND):
            raise CorporateActionError(None, f"unknown action kind {self.kind!r}")
        if not (isinstance(self.value, int | float) and math.isfinite(self.value)):
            raise CorporateActionError(self, f"value {self.value!r} is not a finite number")
        if self.value <= 0:
            what = "split ratio" if self.kind == ActionKind.SPLIT else "dividend"
            raise CorporateActionError(self, f"{what} must be positive, got {self.value!r}")

    @classmethod
    def split(cls, ex_date: date, ratio: float) -> CorporateAction:
        """A split of ``ratio`` new shares per old share (2.0 for 2-for-1, 0.1 for 1-for-10)."""
        return cls(ex_date, ActionKind.SPLIT, float(ratio))

    @classmethod
    def dividend(cls, ex_date: date, amount: float) -> CorporateAction:
        """A cash dividend of ``amount`` per share."""
        return cls(ex_date, ActionKind.DIVIDEND, float(amount))

    def __str__(self) -> str:
        if self.kind == ActionKind.SPLIT:
            return f"split {self.value:g}:1 ex {self.ex_date}"
        return f"dividend {self.value:g} ex {self.ex_date}"


class CorporateActionError(ValueError):
    """An action is invalid or cannot be applied to the given bars; names the action."""

    def __init__(self, action: CorporateAction | None, detail: str) -> None:
        self.action = action
        self.detail = detail
        super().__init__(f"{action}: {detail}" if action is not None else detail)


def adjustment_factors(
    ts_ns: IntArray,
    close: FloatArray,
    actions: Iterable[CorporateAction],
    *,
    splits: bool = True,
    dividends: bool = True,
    dividend_basis: DividendBasis = "prev_close",
    timezone: str = "UTC",
) -> tuple[FloatArray, FloatArray]:
    """Per-bar multipliers ``(price_factor, volume_factor)`` for back-adjusting these bars.

    ``ts_ns`` must be strictly increasing; ``close`` are the bars' closes as stored (the
    dividend factors are taken from them). Only splits change ``volume_factor``.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    closes = np.asarray(close, dtype=np.float64)
    n = len(ts)
    if closes.shape != ts.shape:
        raise ValueError(f"ts_ns has {n} values but close has {len(closes)}")
    if n > 1 and not bool(np.all(np.diff(ts) > 0)):
        raise ValueError("bar timestamps must be strictly increasing")
    if dividend_basis not in ("prev_close", "ex_close"):
        raise ValueError(f"dividend_basis {dividend_basis!r}: use 'prev_close' or 'ex_close'")
    zone = zoneinfo.ZoneInfo(timezone)
    chosen = sorted(a for a in actions if (splits if a.kind == ActionKind.SPLIT else dividends))
    ones = np.ones(n, dtype=np.float64)
    if not chosen or n == 0:
        return ones, ones.copy()
    bounds = np.array([_midnight_ns(a.ex_date, zone) for a in chosen], dtype=np.int64)
    is_split = np.array([a.kind == ActionKind.SPLIT for a in chosen])
    values = np.array([a.value for a in chosen], dtype=np.float64)
    before = np.searchsorted(ts, bounds, side="left")  # how many bars precede each ex-date
    if before[-1] == n:
        late = chosen[int(np.argmax(before == n))]
        raise CorporateActionError(
            late,
            f"ex-date is after the last bar ({_day(int(ts[-1]), zone)}); back-adjustment is "
            "anchored at the last bar, so trim the actions to the bars' date range",
        )
    live = before > 0
    price_f = np.where(is_split, 1.0 / values, 1.0)
    volume_f = np.where(is_split, values, 1.0)
    div = np.flatnonzero(~is_split & live)
    if len(div):
        at = before[div]
        same_day_ratio = np.ones(n + 1)
        np.multiply.at(same_day_ratio, before[is_split], values[is_split])
        prev_close = closes[at - 1] / same_day_ratio[at]
        amount = values[div]
        bad = np.flatnonzero(~(amount < prev_close))
        if len(bad):
            j = int(bad[0])
            raise CorporateActionError(
                chosen[int(div[j])],
                f"dividend is not below the previous close {float(prev_close[j])!r} "
                f"(bar of {_day(int(ts[at[j] - 1]), zone)})",
            )
        if dividend_basis == "prev_close":
            price_f[div] = 1.0 - amount / prev_close
        else:
            ex_close = closes[at]
            price_f[div] = ex_close / (ex_close + amount)
    return _factor_per_bar(n, before[live], price_f[live]), _factor_per_bar(
        n, before[live], volume_f[live]
    )


@overload
def adjust(
    bars: pl.DataFrame,
    actions: Iterable[CorporateAction],
    *,
    splits: bool = ...,
    dividends: bool = ...,
    volume: bool = ...,
    dividend_basis: DividendBasis = ...,
    timezone: str = ...,
) -> pl.DataFrame: ...


@overload
def adjust(
    bars: BarSeries,
    actions: Iterable[CorporateAction],
    *,
    splits: bool = ...,
    dividends: bool = ...,
    volume: bool = ...,
    dividend_basis: DividendBasis = ...,
    timezone: str = ...,
) -> BarSeries: ...


def adjust(
    bars: pl.DataFrame | BarSeries,
    actions: Iterable[CorporateAction],
    *,
    splits: bool = True,
    dividends: bool = True,
    volume: bool = True,
    dividend_basis: DividendBasis = "prev_close",
    timezone: str = "UTC",
) -> pl.DataFrame | BarSeries:
    """Back-adjusted copy of ``bars`` (a bars-schema frame or a :class:`BarSeries`).

    Open, high, low and close are multiplied by the price factor; with ``volume`` (default)
    volume is multiplied by the split factor. Pass ``splits=False`` for prices that are already
    split-adjusted (Yahoo, zipline csvdir) and ``volume=False`` for volumes that already are
    (zipline's unadjusted pipeline AAPL file). Other frame columns pass through unchanged.
    """
    if isinstance(bars, BarSeries):
        price, vol = adjustment_factors(
            bars.ts_ns,
            bars.close,
            actions,
            splits=splits,
            dividends=dividends,
            dividend_basis=dividend_basis,
            timezone=timezone,
        )
        return BarSeries(
            bars.instrument_id,
            ts_ns=bars.ts_ns.copy(),
            open=bars.open * price,
            high=bars.high * price,
            low=bars.low * price,
            close=bars.close * price,
            volume=bars.volume * vol if volume else bars.volume.copy(),
        )
    missing = [c for c in ("ts_event_ns", *PRICE_COLUMNS) if c not in bars.columns]
    if missing:
        raise ValueError(f"bars frame lacks column(s) {', '.join(missing)}")
    if bars["ts_event_ns"].null_count() or not bars["ts_event_ns"].dtype.is_integer():
        raise ValueError("bars frame column ts_event_ns must be integer nanoseconds, no nulls")
    price, vol = adjustment_factors(
        bars["ts_event_ns"].to_numpy(),
        bars["close"].cast(pl.Float64).to_numpy(),
        actions,
        splits=splits,
        dividends=dividends,
        dividend_basis=dividend_basis,
        timezone=timezone,
    )
    return apply_factors(bars, price, vol if volume else None)


def apply_factors(
    bars: pl.DataFrame, price_factor: FloatArray, volume_factor: FloatArray | None = None
) -> pl.DataFrame:
    """``bars`` with open/high/low/close × ``price_factor`` and volume × ``volume_factor``."""
    columns = [
        pl.Series(name, bars[name].cast(pl.Float64).to_numpy() * price_factor)
        for name in PRICE_COLUMNS
    ]
    if volume_factor is not None and "volume" in bars.columns:
        volume = bars["volume"].cast(pl.Float64).to_numpy() * volume_factor
        columns.append(pl.Series("volume", volume))
    return bars.with_columns(columns)


def _factor_per_bar(n: int, before: IntArray, factors: FloatArray) -> FloatArray:
    """Bar ``i``'s factor: the product of ``factors[a]`` over actions with ``before[a] > i``."""
    at_index = np.ones(n + 1)
    np.multiply.at(at_index, before, factors)
    return np.ascontiguousarray(np.cumprod(at_index[:0:-1])[::-1], dtype=np.float64)


def _midnight_ns(day: date, zone: zoneinfo.ZoneInfo) -> int:
    delta = datetime.combine(day, time(), tzinfo=zone) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def _day(ts_ns: int, zone: zoneinfo.ZoneInfo) -> str:
    return datetime.fromtimestamp(ts_ns // 10**9, tz=zone).date().isoformat()
