"""Append-only, atomic, idempotent writing of one series' rows into daily Parquet parts.

Each stored row also carries ``_write_ns`` (when its write happened) and ``_part`` (its part's
hash as an integer); with the row's position in its file (DuckDB's ``file_row_number``) they
order rows with equal timestamps.
A part is named after a SHA-256 hash of its rows (``part-<32 hex>.parquet``), so writing the
same rows again finds the part already there and writes nothing: a retried or repeated write
never duplicates data. A part is written to a hidden temp file in its folder, then hard-linked
to its final name, which fails instead of replacing when the name exists: an existing part is
never rewritten, and readers only ever see complete files. Every part of one write is staged
before the first is published, so a failure while writing publishes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import polars as pl

from tradestack.data.catalog.paths import DAY_NS, PART_GLOB, date_of_day, partition_dir
from tradestack.data.catalog.schema import PART, WRITE_NS

_LOCK = threading.Lock()
_LAST_WRITE_NS = 0


def next_write_ns() -> int:
    """Wall-clock ns of a write, strictly increasing within this process.

    Stored with every row, it orders rows of different writes that share a timestamp.
    """
    global _LAST_WRITE_NS
    with _LOCK:
        _LAST_WRITE_NS = max(time.time_ns(), _LAST_WRITE_NS + 1)
        return _LAST_WRITE_NS


def content_hash(frame: pl.DataFrame) -> str:
    """Hex digest of a frame's column names, dtypes and values (independent of chunking)."""
    digest = hashlib.sha256()  # hardware-accelerated: ~1.6x blake2b's speed here
    digest.update(str(frame.height).encode())
    for series in frame.get_columns():
        digest.update(f"|{series.name}:{series.dtype}|".encode())
        if series.dtype == pl.String:
            digest.update(np.ascontiguousarray(series.str.len_bytes().to_numpy()).tobytes())
            digest.update(series.str.join("").item().encode())
        else:
            digest.update(np.ascontiguousarray(series.to_numpy()).tobytes())
    return digest.hexdigest()[:32]


def part_key(digest: str) -> int:
    """The part's hash as a signed 64-bit number: orders parts of writes with equal write_ns."""
    return int.from_bytes(bytes.fromhex(digest[:16]), "big", signed=True)


def split_by_day(frame: pl.DataFrame, ts_column: str) -> list[tuple[str, pl.DataFrame]]:
    """(``YYYY-MM-DD``, rows) per UTC day of ``ts_column``, days ascending, row order kept."""
    if frame.height == 0:
        return []
    days = (frame.get_column(ts_column) // DAY_NS).alias("_day")
    first, last = days.min(), days.max()
    if first == last:  # the common case: no copy, no partitioning
        return [(date_of_day(int(first)), frame)]  # type: ignore[arg-type]
    groups = frame.with_columns(days).partition_by("_day", maintain_order=True, as_dict=True)
    return [(date_of_day(int(key[0])), rows.drop("_day")) for key, rows in sorted(groups.items())]


class StagedPart:
    """One part written to a temp file, waiting to be published under its final name."""

    def __init__(self, final: Path, temp: Path | None) -> None:
        self.final = final
        self.temp = temp  # None: an identical part already exists


def stage(
    table: Path,
    venue: str,
    kind: str,
    symbol: str,
    frame: pl.DataFrame,
    *,
    ts_column: str,
    write_ns: int,
) -> list[StagedPart]:
    """Write each day's rows of ``frame`` to a temp file beside its final part name."""
    staged: list[StagedPart] = []
    folder = partition_dir(table, venue, kind, symbol)
    try:
        for day, rows in split_by_day(frame, ts_column):
            day_dir = folder / f"date={day}"
            digest = content_hash(rows)
            final = day_dir / f"part-{digest}.parquet"
            if final.exists():
                staged.append(StagedPart(final, None))
                continue
            day_dir.mkdir(parents=True, exist_ok=True)
            temp = day_dir / f".tmp-{uuid.uuid4().hex}.parquet"
            stored = rows.with_columns(
                pl.lit(write_ns, pl.Int64).alias(WRITE_NS),
                pl.lit(part_key(digest), pl.Int64).alias(PART),
            )
            staged.append(StagedPart(final, temp))
            # zstd level 1: a third of the default level's write time for ~15 % larger
            # files (measured on Binance depth rows), which matters when ingesting.
            stored.write_parquet(temp, compression="zstd", compression_level=1, statistics=True)
    except BaseException:
        discard(staged)
        raise
    return staged


def publish(staged: Iterable[StagedPart]) -> tuple[list[Path], list[Path]]:
    """Move staged parts to their final names: (new parts, parts that already existed)."""
    new: list[Path] = []
    existing: list[Path] = []
    for part in staged:
        if part.temp is None:
            existing.append(part.final)
            continue
        if _link_or_rename(part.temp, part.final):
            new.append(part.final)
        else:
            existing.append(part.final)  # another writer published the same rows meanwhile
        part.temp.unlink(missing_ok=True)
    return new, existing


def _link_or_rename(temp: Path, final: Path) -> bool:
    """Publish ``temp`` as ``final`` unless ``final`` exists; False when it already did."""
    try:
        os.link(temp, final)
    except FileExistsError:
        return False
    except OSError:
        # No hard links on this filesystem: rename, which could only replace identical rows.
        if final.exists():
            return False
        os.replace(temp, final)
    return True


def discard(staged: Iterable[StagedPart]) -> None:
    """Remove staged temp files (and day folders left empty); best effort."""
    for part in staged:
        if part.temp is None:
            continue
        part.temp.unlink(missing_ok=True)
        folder = part.temp.parent
        if not any(folder.glob(PART_GLOB)):
            with contextlib.suppress(OSError):
                folder.rmdir()
