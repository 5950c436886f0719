"""Errors raised while loading market data files."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class DataValidationError(ValueError):
    """A data file is malformed; names the file, the line and the column at fault.

    ``row`` is the 1-based line number as an editor shows it (a CSV header is line 1; for
    Parquet it is the 1-based record number), or ``None`` when the problem is not one row's
    (e.g. a missing column). ``field`` is the canonical column name (``timestamp``, ``open``,
    ``high``, ``low``, ``close``, ``volume``) or ``None``; ``value`` is the offending cell.
    """

    def __init__(
        self,
        path: str | Path,
        detail: str,
        *,
        row: int | None = None,
        field: str | None = None,
        value: Any = None,
    ) -> None:
        self.path = Path(path)
        self.row = row
        self.field = field
        self.value = value
        self.detail = detail
        where = self.path.name
        if row is not None:
            where += f" row {row}"
        if field is not None:
            where += f", field {field!r}" if row is not None else f" field {field!r}"
        super().__init__(f"{where}: {detail}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments would otherwise be lost when pickled across processes.
        return (_rebuild, (self.path, self.detail, self.row, self.field, self.value))


def _rebuild(
    path: Path, detail: str, row: int | None, field: str | None, value: Any
) -> DataValidationError:
    return DataValidationError(path, detail, row=row, field=field, value=value)
