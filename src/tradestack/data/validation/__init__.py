"""Validation gates for market data, with quarantine of bad rows and a report.

``validate(kind, frame, config)`` runs vectorized polars gates and returns a
:class:`ValidationResult`: ``clean`` rows, ``quarantined`` rows (each with every failed
``reason``) and interval ``issues`` (gaps, staleness, sequence gaps), which never remove data.
"""

from tradestack.data.validation.config import GATES, ValidationConfig
from tradestack.data.validation.gates import (
    check_crossed,
    check_duplicates,
    check_ohlc,
    check_order,
    check_outliers,
    check_sequence,
    check_values,
)
from tradestack.data.validation.intervals import find_gaps, find_sequence_gaps, find_stale
from tradestack.data.validation.quarantine import validate
from tradestack.data.validation.report import (
    ISSUE_REASONS,
    ISSUES,
    ROW_REASONS,
    QuarantineError,
    ValidationReport,
    ValidationResult,
)

__all__ = [
    "GATES",
    "ISSUES",
    "ISSUE_REASONS",
    "ROW_REASONS",
    "QuarantineError",
    "ValidationConfig",
    "ValidationReport",
    "ValidationResult",
    "check_crossed",
    "check_duplicates",
    "check_ohlc",
    "check_order",
    "check_outliers",
    "check_sequence",
    "check_values",
    "find_gaps",
    "find_sequence_gaps",
    "find_stale",
    "validate",
]
