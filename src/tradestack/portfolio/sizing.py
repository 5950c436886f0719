"""Position sizing: an ensemble score ``s ∈ [-1, 1]`` becomes a target position quantity.

The sign of ``s`` is the direction and its magnitude the conviction; for a calibrated model
``s = 2p - 1`` with ``p`` the probability of an up move. A :class:`Sizer` turns one score into a
:class:`SizingDecision` once per decision step; :class:`SizingStats` summarises the decisions.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any, Literal

import msgspec

from tradestack.core.instruments import Instrument

__all__ = ["Sizer", "SizingConfig", "SizingDecision", "SizingMethod", "SizingReason", "SizingStats"]

SizingMethod = Literal["fixed_notional", "fixed_fraction", "vol_target", "kelly"]
SizingReason = Literal[
    "sized", "capped", "below_min_notional", "no_signal", "no_volatility", "no_price"
]
REASONS: tuple[SizingReason, ...] = (
    "sized",
    "capped",
    "below_min_notional",
    "no_signal",
    "no_volatility",
    "no_price",
)

_ZERO = Decimal(0)
_NAN = math.nan
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)  # E|r| / σ for normal returns


def _require(ok: bool, name: str, value: object, want: str) -> None:
    if not ok:
        raise ValueError(f"sizing.{name} must be {want}, got {value!r}")


def _finite_pos(value: float) -> bool:
    return math.isfinite(value) and value > 0.0


class SizingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How scores become positions; load with ``msgspec.convert(yaml_dict, SizingConfig)``.

    ``method`` picks the raw target (see :class:`Sizer`); ``max_position_fraction`` caps
    ``|position notional| <= max_position_fraction * equity``; a rebalance worth less than
    ``max(min_order_notional, instrument.min_notional)`` is not sent; ``|s| <= min_score`` means
    flat; ``allow_short=False`` turns short targets into flat. ``periods_per_year`` (steps per
    year, e.g. 252 for daily bars) is required by ``vol_target`` to annualize the per-step vol.
    """

    method: SizingMethod = "kelly"
    notional: float = 10_000.0
    fraction: float = 0.1
    target_vol: float = 0.20
    periods_per_year: float | None = None
    kelly_fraction: float = 0.25
    max_position_fraction: float = 0.25
    min_order_notional: float = 10.0
    min_score: float = 0.0
    allow_short: bool = True

    def __post_init__(self) -> None:
        for name in ("notional", "fraction", "target_vol", "max_position_fraction"):
            value = getattr(self, name)
            _require(_finite_pos(value), name, value, "a finite number > 0")
        ppy = self.periods_per_year
        if ppy is None:
            _require(self.method != "vol_target", "periods_per_year", ppy, "set for vol_target")
        else:
            _require(_finite_pos(ppy), "periods_per_year", ppy, "a finite number > 0")
        k = self.kelly_fraction
        _require(0.0 < k <= 1.0, "kelly_fraction", k, "in (0, 1]")
        m = self.min_order_notional
        _require(math.isfinite(m) and m >= 0.0, "min_order_notional", m, "a finite number >= 0")
        _require(0.0 <= self.min_score < 1.0, "min_score", self.min_score, "in [0, 1)")


class SizingDecision(msgspec.Struct, frozen=True, gc=False):
    """One sizing outcome.

    ``target_qty`` is the position to hold (the current one when no order is sent), ``order_qty``
    the signed delta to trade (0 for no order). ``raw_fraction`` is the signed fraction of equity
    the method asked for before caps; ``fraction`` is the signed fraction of equity that
    ``target_qty`` is worth at ``price`` (after caps, lot rounding and the minimum-order rule).
    Either is NaN where it cannot be computed (missing input, equity <= 0). ``capped`` says the
    position cap or ``allow_short=False`` cut the raw target.
    """

    target_qty: Decimal
    order_qty: Decimal
    raw_fraction: float
    fraction: float
    capped: bool
    reason: SizingReason


class Sizer:
    """Score → target quantity under one :class:`SizingConfig`.

    Raw target notional (``s`` clipped to [-1, 1], ``E`` = equity, ``σ`` = the instrument's
    per-step return volatility):

    * ``fixed_notional``: ``s * notional``
    * ``fixed_fraction``: ``s * fraction * E``
    * ``vol_target``: ``s * E * target_vol / (σ * sqrt(periods_per_year))``
    * ``kelly``: continuous-time Kelly ``f* = μ / σ²`` (Kelly 1956; Thorp 2006, "The Kelly
      criterion in blackjack, sports betting and the stock market"; MacLean, Thorp & Ziemba
      2011, "The Kelly Capital Growth Investment Criterion"). Reading ``s`` as a calibrated edge,
      ``p = (1 + s) / 2`` and ``μ = (2p - 1) * E|r|`` with ``E|r| = σ * sqrt(2/π)`` for normal
      returns, so ``f* = s * sqrt(2/π) / σ`` and the notional is ``kelly_fraction * f* * E``.

    Then: ``|notional| <= max_position_fraction * E`` (exactly, after rounding); a short target
    is flat unless ``allow_short``; quantity = notional / (price * multiplier), rounded toward
    zero to the lot size; and if ``|target - current| * price * multiplier`` is below
    ``max(min_order_notional, instrument.min_notional)`` (or ``|target - current|`` below
    ``instrument.min_qty``) the current position is kept (``"below_min_notional"``).

    Missing inputs never trade: a non-finite or non-positive price, or non-finite equity, keeps
    the current position (``"no_price"``); so does a non-finite score (``"no_signal"``) and, for
    ``vol_target``/``kelly``, a non-finite or non-positive ``volatility`` (``"no_volatility"``).
    ``|s| <= min_score`` targets flat (``"no_signal"``); equity <= 0 targets flat.
    """

    __slots__ = ("_scale", "config")

    def __init__(self, config: SizingConfig) -> None:
        self.config = config
        if config.method == "vol_target":
            assert config.periods_per_year is not None  # checked by SizingConfig
            self._scale = config.target_vol / math.sqrt(config.periods_per_year)
        else:
            self._scale = config.kelly_fraction * _SQRT_2_OVER_PI

    def target(
        self,
        score: float,
        *,
        price: float,
        equity: float,
        volatility: float,
        position_qty: Decimal,
        instrument: Instrument,
    ) -> SizingDecision:
        """Size one decision step; see the class docstring for the rules."""
        cfg = self.config
        if not (_finite_pos(price) and math.isfinite(equity)):
            return SizingDecision(position_qty, _ZERO, _NAN, _NAN, False, "no_price")
        unit = price * float(instrument.multiplier)
        inv_equity = 1.0 / equity if equity > 0.0 else _NAN
        if not math.isfinite(score):
            held = float(position_qty) * unit * inv_equity
            return SizingDecision(position_qty, _ZERO, _NAN, held, False, "no_signal")
        s = -1.0 if score < -1.0 else (1.0 if score > 1.0 else score)
        reason: SizingReason = "sized"
        method = cfg.method
        if abs(s) <= cfg.min_score:
            raw = 0.0
            reason = "no_signal"
        elif method == "fixed_notional":
            raw = s * cfg.notional
        elif method == "fixed_fraction":
            raw = s * cfg.fraction * equity
        elif not _finite_pos(volatility):
            held = float(position_qty) * unit * inv_equity
            return SizingDecision(position_qty, _ZERO, _NAN, held, False, "no_volatility")
        else:  # vol_target and kelly differ only in the scale: target_vol/√ppy vs k·√(2/π)
            raw = s * self._scale / volatility * equity

        cap = cfg.max_position_fraction * equity if equity > 0.0 else 0.0
        notional = raw
        capped = False
        if notional > cap:
            notional, capped = cap, True
        elif notional < -cap:
            notional, capped = -cap, True
        if notional < 0.0 and not cfg.allow_short:
            notional, capped = 0.0, True
        if capped and reason == "sized":
            reason = "capped"

        target_qty = instrument.round_qty(notional / unit) if notional else _ZERO
        if target_qty and abs(float(target_qty)) * unit > cap * (1.0 - 1e-9):
            target_qty = self._within_cap(target_qty, price, equity, instrument)

        delta = target_qty - position_qty
        if delta:
            min_notional = max(cfg.min_order_notional, float(instrument.min_notional))
            if abs(float(delta)) * unit < min_notional or abs(delta) < instrument.min_qty:
                held = float(position_qty) * unit * inv_equity
                return SizingDecision(
                    position_qty, _ZERO, raw * inv_equity, held, capped, "below_min_notional"
                )
        fraction = float(target_qty) * unit * inv_equity
        return SizingDecision(target_qty, delta, raw * inv_equity, fraction, capped, reason)

    def _within_cap(
        self, qty: Decimal, price: float, equity: float, instrument: Instrument
    ) -> Decimal:
        """At the cap boundary float rounding can tip a lot over: settle it in exact arithmetic."""
        cap = Fraction(self.config.max_position_fraction) * Fraction(equity)
        unit = Fraction(price) * Fraction(instrument.multiplier)
        step = instrument.lot_size if qty > 0 else -instrument.lot_size
        while qty and Fraction(abs(qty)) * unit > cap:
            qty -= step
        return qty


class SizingStats:
    """Accumulates :class:`SizingDecision` s for the report: counts by reason, orders, caps."""

    __slots__ = ("_abs_fraction_n", "_abs_fraction_sum", "capped", "counts", "decisions", "orders")

    def __init__(self) -> None:
        self.counts: dict[str, int] = dict.fromkeys(REASONS, 0)
        self.decisions = 0
        self.orders = 0
        self.capped = 0
        self._abs_fraction_sum = 0.0
        self._abs_fraction_n = 0

    def record(self, decision: SizingDecision) -> None:
        """Count one decision."""
        self.decisions += 1
        self.counts[decision.reason] += 1
        if decision.order_qty:
            self.orders += 1
        if decision.capped:
            self.capped += 1
        fraction = decision.fraction
        if fraction == fraction:  # skip NaN (fraction unknown)
            self._abs_fraction_sum += abs(fraction)
            self._abs_fraction_n += 1

    def summary(self) -> dict[str, Any]:
        """``decisions``, ``orders``, ``capped``, ``by_reason`` and ``mean_abs_fraction``
        (over decisions whose fraction is known; NaN when none is)."""
        n = self._abs_fraction_n
        return {
            "decisions": self.decisions,
            "orders": self.orders,
            "capped": self.capped,
            "by_reason": dict(self.counts),
            "mean_abs_fraction": self._abs_fraction_sum / n if n else _NAN,
        }
