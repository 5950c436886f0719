"""``validate``: run every gate on a frame and split it into clean rows, quarantine and issues."""

from __future__ import annotations

from collections import Counter

import polars as pl

from tradestack.data.catalog.schema import base_kind, conform
from tradestack.data.validation.config import ValidationConfig
from tradestack.data.validation.gates import ROW_GATES, message_ids
from tradestack.data.validation.intervals import ISSUE_GATES
from tradestack.data.validation.report import (
    REASON_SEPARATOR,
    ROW_INDEX,
    ROW_REASONS,
    ValidationReport,
    ValidationResult,
    empty_issues,
    quarantine_schema,
)

_RANK = {reason: i for i, reason in enumerate(ROW_REASONS)}


def validate(
    kind: str, frame: pl.DataFrame, config: ValidationConfig | None = None
) -> ValidationResult:
    """Run the gates of ``kind`` on ``frame``; raises ``SchemaError`` if it is not in schema.

    A row failing any row gate goes to ``quarantined`` once, its ``reason`` listing every failed
    reason (comma-separated, in ``ROW_REASONS`` order). Interval gates run on the clean rows (a
    quarantined bar leaves a gap) and only add ``issues``. For ``book`` frames, when a
    message's last row is quarantined, the last clean row of that message gets ``batch_end`` so
    the clean rows still end every message they contain.
    """
    config = config or ValidationConfig()
    frame = conform(kind, frame)
    found = [
        gate(frame, kind, config).select(ROW_INDEX, "reason")
        for name, gate in ROW_GATES.items()
        if name not in config.disabled
    ]
    failures = (
        pl.concat(found)
        if found
        else pl.DataFrame(schema={ROW_INDEX: pl.Int64, "reason": pl.String})
    )
    reasons = (
        failures.unique()
        .with_columns(pl.col("reason").replace_strict(_RANK, return_dtype=pl.Int64).alias("_rank"))
        .group_by(ROW_INDEX)
        .agg(pl.col("reason").sort_by("_rank").str.join(REASON_SEPARATOR))
    )
    indexed = frame.with_row_index(ROW_INDEX).with_columns(pl.col(ROW_INDEX).cast(pl.Int64))
    quarantined = (
        indexed.join(reasons, on=ROW_INDEX, how="inner")
        .sort(ROW_INDEX)
        .select(list(quarantine_schema(frame.schema)))
    )
    bad_rows = reasons.get_column(ROW_INDEX)
    if base_kind(kind) == "book":
        indexed = indexed.with_columns(message_ids(frame))
    clean = indexed.filter(~pl.col(ROW_INDEX).is_in(bad_rows.implode()))
    if base_kind(kind) == "book" and quarantined.height:
        clean = _close_messages(clean, indexed)
    clean = clean.select(frame.columns)
    issue_frames = [
        gate(clean, kind, config)
        for name, gate in ISSUE_GATES.items()
        if name not in config.disabled
    ]
    issues = pl.concat(issue_frames) if issue_frames else empty_issues()
    issues = issues.sort("start_ns", "reason", maintain_order=True)
    counts = Counter(failures.unique().get_column("reason").to_list())
    report = ValidationReport(
        kind=kind,
        rows=frame.height,
        clean=clean.height,
        quarantined=quarantined.height,
        reasons={r: counts[r] for r in ROW_REASONS if counts[r]},
        issues=dict(Counter(issues.get_column("reason").to_list())),
    )
    return ValidationResult(clean=clean, quarantined=quarantined, issues=issues, report=report)


def _close_messages(clean: pl.DataFrame, indexed: pl.DataFrame) -> pl.DataFrame:
    """Set ``batch_end`` on the last clean row of each message that had one."""
    closed = indexed.group_by("_message").agg(pl.col("batch_end").any().alias("_closed"))
    last = pl.col(ROW_INDEX) == pl.col(ROW_INDEX).max().over("_message")
    return (
        clean.join(closed, on="_message", how="left")
        .with_columns((pl.col("batch_end") | (last & pl.col("_closed"))).alias("batch_end"))
        .sort(ROW_INDEX)
    )
