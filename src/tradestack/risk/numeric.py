"""Float limit comparisons and number formatting shared by the risk rules."""

from __future__ import annotations

__all__ = ["exceeds", "fmt"]

_REL_TOL = 1e-9


def exceeds(value: float, limit: float) -> bool:
    """``value > limit`` beyond float noise: a value equal to the limit is inside it."""
    return value > limit + _REL_TOL * max(1.0, abs(limit))


def fmt(value: float) -> str:
    """A number for a denial message: up to 10 significant digits, thousands separated."""
    return f"{value:,.10g}" if abs(value) >= 1e-4 or value == 0 else f"{value:.6g}"
