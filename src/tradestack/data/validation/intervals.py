"""Interval gates: missing bars, silent periods and book sequence gaps.

They flag time intervals, not rows, and never remove data: each returns an issues frame
(``report.ISSUES``: reason, start_ns, end_ns, detail) with ``[start_ns, end_ns)`` the interval.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from tradestack.data.catalog.schema import bar_interval_ns, base_kind
from tradestack.data.validation.config import ValidationConfig
from tradestack.data.validation.report import ISSUES, empty_issues

IssueGate = Callable[[pl.DataFrame, str, ValidationConfig], pl.DataFrame]


def _sorted_times(frame: pl.DataFrame) -> pl.Series:
    return frame.get_column("ts_event_ns").unique().sort()


def _duration(ns: int) -> str:
    seconds = ns / 10**9
    if seconds < 120:
        return f"{seconds:g} s"
    if seconds < 7200:
        return f"{seconds / 60:g} min"
    return f"{seconds / 3600:g} h"


def find_gaps(frame: pl.DataFrame, kind: str, config: ValidationConfig) -> pl.DataFrame:
    """Missing bars: consecutive bar times further apart than one interval.

    One issue per hole, from the first missing bar's time to the next present bar's time, when
    more than ``config.bar_gap_tolerance`` bars are missing. Other kinds have no gaps (see
    ``find_stale``).
    """
    if base_kind(kind) != "bars":
        return empty_issues()
    step = bar_interval_ns(kind)
    times = _sorted_times(frame)
    holes = pl.DataFrame({"prev": times.shift(1), "next": times}).filter(
        (pl.col("next") - pl.col("prev")) // step - 1 > config.bar_gap_tolerance
    )
    missing = (pl.col("next") - pl.col("prev")) // step - 1
    return holes.select(
        pl.lit("gap").alias("reason"),
        (pl.col("prev") + step).alias("start_ns"),
        pl.col("next").alias("end_ns"),
        pl.format("{} missing bars", missing).alias("detail"),
    ).cast(dict(ISSUES.items()))


def find_stale(frame: pl.DataFrame, kind: str, config: ValidationConfig) -> pl.DataFrame:
    """Silent periods: consecutive updates further apart than ``config.max_staleness_ns``."""
    limit = config.max_staleness_ns
    if limit is None:
        return empty_issues()
    times = _sorted_times(frame)
    quiet = pl.DataFrame({"start_ns": times.shift(1), "end_ns": times}).filter(
        pl.col("end_ns") - pl.col("start_ns") > limit
    )
    details = [
        f"no update for {_duration(end - start)} (limit {_duration(limit)})"
        for start, end in quiet.iter_rows()
    ]
    return quiet.select(
        pl.lit("stale").alias("reason"),
        "start_ns",
        "end_ns",
        pl.Series("detail", details, dtype=pl.String),
    ).cast(dict(ISSUES.items()))


def find_sequence_gaps(frame: pl.DataFrame, kind: str, config: ValidationConfig) -> pl.DataFrame:
    """Book messages whose sequence is not the previous message's + 1 (``contiguous`` mode).

    The sequence is read in row order from rows with a non-zero ``sequence``; a jump back is a
    row problem (``gates.check_sequence``), a jump forward by more than one is a gap from the
    last row before it to the first row after it.
    """
    if base_kind(kind) != "book" or config.book_sequence != "contiguous":
        return empty_issues()
    rows = frame.filter(pl.col("sequence") != 0).select("ts_event_ns", "sequence")
    seq = pl.col("sequence")
    firsts = rows.filter((seq != seq.shift(1)).fill_null(True))
    lasts = rows.filter((seq != seq.shift(-1)).fill_null(True))
    # Runs of equal sequence are messages: a jump spans from the end of the previous message.
    changes = firsts.with_columns(
        seq.shift(1).alias("prev_seq"),
        lasts.get_column("ts_event_ns").shift(1).alias("prev_ts"),
    )
    jumps = changes.filter(pl.col("sequence") > pl.col("prev_seq") + 1)
    return jumps.select(
        pl.lit("sequence_gap").alias("reason"),
        pl.col("prev_ts").alias("start_ns"),
        pl.col("ts_event_ns").alias("end_ns"),
        pl.format(
            "sequence jumps from {} to {} ({} missing)",
            "prev_seq",
            "sequence",
            pl.col("sequence") - pl.col("prev_seq") - 1,
        ).alias("detail"),
    ).cast(dict(ISSUES.items()))


ISSUE_GATES: dict[str, IssueGate] = {
    "gaps": find_gaps,
    "staleness": find_stale,
    "sequence": find_sequence_gaps,
}
"""Gates that flag intervals, by the name used in ``ValidationConfig.disabled``."""
