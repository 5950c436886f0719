"""Settings of the validation gates."""

from __future__ import annotations

from typing import Literal

import msgspec

GATES = (
    "values",
    "ohlc",
    "order",
    "duplicates",
    "crossed",
    "outliers",
    "sequence",
    "gaps",
    "staleness",
)
"""Gate names, usable in ``ValidationConfig.disabled``."""


class ValidationConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Thresholds and switches of the validation gates; the defaults suit exchange data.

    - ``outlier_threshold``: a price is an outlier when its log return's robust z-score
      (median/MAD) exceeds this in absolute value (see ``gates.check_outliers``).
    - ``outlier_min_return``: an absolute log-return floor: smaller moves are never outliers,
      whatever their score (tick-to-tick returns are mostly 0 or one tick, so their MAD is
      tiny and ordinary sweeps score above 10).
    - ``outlier_min_returns``: fewer valid returns than this and the outlier gate stays quiet.
    - ``max_staleness_ns``: report a ``stale`` interval wherever consecutive updates are further
      apart than this; ``None`` turns the staleness gate off.
    - ``bar_gap_tolerance``: bar gaps of at most this many missing bars are not reported.
    - ``book_sequence``: ``"increasing"`` quarantines book rows whose ``sequence`` goes back;
      ``"contiguous"`` also reports a ``sequence_gap`` whenever a message's sequence is not the
      previous one + 1 (venues whose update ids count messages); ``"off"`` checks nothing.
      Rows with sequence 0 (no id) are ignored.
    - ``disabled``: gate names (see ``GATES``) to skip.
    """

    outlier_threshold: float = 10.0
    outlier_min_return: float = 0.01
    outlier_min_returns: int = 10
    max_staleness_ns: int | None = None
    bar_gap_tolerance: int = 0
    book_sequence: Literal["off", "increasing", "contiguous"] = "increasing"
    disabled: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.outlier_threshold > 0:
            raise ValueError(f"outlier_threshold must be > 0, got {self.outlier_threshold}")
        if not self.outlier_min_return >= 0:
            raise ValueError(f"outlier_min_return must be >= 0, got {self.outlier_min_return}")
        if self.outlier_min_returns < 2:
            raise ValueError(f"outlier_min_returns must be >= 2, got {self.outlier_min_returns}")
        if self.max_staleness_ns is not None and self.max_staleness_ns <= 0:
            raise ValueError(f"max_staleness_ns must be > 0 or None, got {self.max_staleness_ns}")
        if self.bar_gap_tolerance < 0:
            raise ValueError(f"bar_gap_tolerance must be >= 0, got {self.bar_gap_tolerance}")
        if self.book_sequence not in ("off", "increasing", "contiguous"):
            raise ValueError(
                f"book_sequence must be 'off', 'increasing' or 'contiguous', "
                f"got {self.book_sequence!r}"
            )
        unknown = sorted(set(self.disabled) - set(GATES))
        if unknown:
            raise ValueError(f"unknown gate(s) {', '.join(unknown)}; gates: {', '.join(GATES)}")
