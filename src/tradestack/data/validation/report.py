"""What validation found: reason codes, the issues table, the report and the errors."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import msgspec
import polars as pl

ROW_REASONS = (
    "nan_price",
    "zero_price",
    "negative_price",
    "nan_size",
    "negative_size",
    "nan_rate",
    "bad_side",
    "bad_aggressor",
    "inconsistent_ohlc",
    "out_of_order",
    "duplicate",
    "duplicate_ts",
    "duplicate_trade_id",
    "crossed",
    "locked",
    "sequence_backwards",
    "outlier",
)
"""Reasons that quarantine a row, in the order they are listed in a row's ``reason``."""

ISSUE_REASONS = ("gap", "sequence_gap", "stale")
"""Reasons that flag a time interval; they never remove rows."""

REASON_SEPARATOR = ","
ROW_INDEX = "row"
"""Column of quarantined rows: the 0-based index of the row in the validated frame."""

ISSUES = pl.Schema(
    {"reason": pl.String(), "start_ns": pl.Int64(), "end_ns": pl.Int64(), "detail": pl.String()}
)
"""Schema of interval issues: ``[start_ns, end_ns)`` is the interval the reason applies to."""


def empty_issues() -> pl.DataFrame:
    """An issues frame without rows."""
    return pl.DataFrame(schema=ISSUES)


def quarantine_schema(schema: pl.Schema) -> pl.Schema:
    """Columns of quarantined rows of a kind: its schema, ``row`` and ``reason``."""
    return pl.Schema({**schema, ROW_INDEX: pl.Int64(), "reason": pl.String()})


def format_counts(counts: Mapping[str, int]) -> str:
    """``reason=count`` pairs, largest first, for messages."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return ", ".join(f"{reason}={n}" for reason, n in ordered)


class ValidationReport(msgspec.Struct, frozen=True):
    """Counts from validating one frame.

    ``reasons`` counts quarantined rows per reason; a row failing several gates is counted under
    each of them, so the counts may add up to more than ``quarantined``. ``issues`` counts
    flagged intervals per reason.
    """

    kind: str
    rows: int
    clean: int
    quarantined: int
    reasons: dict[str, int]
    issues: dict[str, int]

    @property
    def is_clean(self) -> bool:
        """No row was quarantined (interval issues do not count)."""
        return self.quarantined == 0

    def __str__(self) -> str:
        text = f"{self.kind}: {self.rows} rows, {self.clean} clean, {self.quarantined} quarantined"
        if self.reasons:
            text += f" ({format_counts(self.reasons)})"
        if self.issues:
            text += f"; issues: {format_counts(self.issues)}"
        return text


@dataclass(frozen=True)
class ValidationResult:
    """A frame split by the gates.

    ``clean`` has the kind's schema; ``quarantined`` has it plus ``row`` (index in the input)
    and ``reason`` (every failed reason, comma-separated in ``ROW_REASONS`` order); ``issues``
    lists flagged intervals (``ISSUES`` schema) and removes nothing.
    """

    clean: pl.DataFrame
    quarantined: pl.DataFrame
    issues: pl.DataFrame
    report: ValidationReport


class QuarantineError(ValueError):
    """Data required to be clean has quarantined rows (or flagged intervals).

    ``where`` names the series (``venue/kind/symbol``), ``counts`` the rows per reason and
    ``rows`` the number of rows when known (a row with two reasons counts under both).
    """

    def __init__(self, where: str, counts: Mapping[str, int], rows: int | None = None) -> None:
        self.where = where
        self.counts = dict(counts)
        self.rows = rows
        total = f"{rows} rows quarantined" if rows is not None else "quarantined data"
        super().__init__(f"{where}: {total} by reason: {format_counts(self.counts)}")
