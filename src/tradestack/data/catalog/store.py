"""``Catalog``: the append-only Parquet store of market data, its quarantine and its issues."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl

from tradestack.core.ids import InstrumentId
from tradestack.data.catalog import query as q
from tradestack.data.catalog.events import (
    CatalogEvent,
    batch_events,
    kind_order,
    merge_streams,
)
from tradestack.data.catalog.paths import (
    PART_GLOB,
    TimeLike,
    check_venue,
    encode_symbol,
    list_scopes,
    to_ns,
)
from tradestack.data.catalog.schema import base_kind, conform, kind_schema
from tradestack.data.catalog.writer import StagedPart, discard, next_write_ns, publish, stage
from tradestack.data.validation.config import ValidationConfig
from tradestack.data.validation.report import (
    ISSUES,
    REASON_SEPARATOR,
    QuarantineError,
    ValidationReport,
    quarantine_schema,
)

QUARANTINE_TABLE = "_quarantine"
ISSUES_TABLE = "_issues"
_REPORT_SCHEMA = pl.Schema(
    {
        "venue": pl.String(),
        "kind": pl.String(),
        "symbol": pl.String(),
        "table": pl.String(),
        "reason": pl.String(),
        "count": pl.Int64(),
    }
)


@dataclass(frozen=True)
class WriteResult:
    """What one ``Catalog.write`` stored.

    ``paths``: dataset parts holding the written clean rows, new or already present (a part
    with identical rows is found, not written again: ``existing`` lists those). ``quarantine``
    and ``issues``: parts written to those tables. ``report``: the validation report, ``None``
    when the write was not validated.
    """

    paths: list[Path]
    existing: list[Path] = field(default_factory=list)
    quarantine: list[Path] = field(default_factory=list)
    issues: list[Path] = field(default_factory=list)
    report: ValidationReport | None = None


class Catalog:
    """Market data stored as hive-partitioned Parquet under ``root`` and read with DuckDB.

    Layout: ``root/venue=/kind=/symbol=/date=/part-<hash>.parquet`` (see ``paths``), with the
    quarantined rows and interval issues of validated writes in the same layout under
    ``root/_quarantine`` and ``root/_issues``. Time ranges are ``start <= ts < end``.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.quarantine_root = self.root / QUARANTINE_TABLE
        self.issues_root = self.root / ISSUES_TABLE

    def __repr__(self) -> str:
        return f"Catalog({str(self.root)!r})"

    def write(
        self,
        venue: str,
        kind: str,
        symbol: str,
        frame: pl.DataFrame,
        *,
        validate: ValidationConfig | None = None,
        require_clean: bool = False,
    ) -> WriteResult:
        """Append ``frame`` (in ``kind``'s schema) for one instrument; split by UTC day.

        With ``validate``, the gates run first: clean rows go to the dataset, quarantined rows
        (with ``row`` and ``reason``) to ``_quarantine`` and interval issues to ``_issues``.
        With ``require_clean`` as well, any quarantined row raises :class:`QuarantineError`
        and nothing at all is written. Schema errors raise ``SchemaError`` before any write.
        Parts are named by a hash of their rows, so rows identical to an existing part are not
        stored again; any other rows are appended, even if they overlap stored ones.
        """
        check_venue(venue)
        encode_symbol(symbol)
        frame = conform(kind, frame)
        report = None
        quarantined = issues = None
        if validate is not None:
            # Imported here: the gates use the catalog's schemas, so a module-level import
            # would make `import tradestack.data.validation` circular.
            from tradestack.data.validation.quarantine import validate as run_gates

            result = run_gates(kind, frame, validate)
            report = result.report
            if require_clean and not report.is_clean:
                where = f"{venue}/{kind}/{symbol}"
                raise QuarantineError(where, report.reasons, rows=report.quarantined)
            frame, quarantined, issues = result.clean, result.quarantined, result.issues
        elif require_clean:
            raise ValueError("require_clean needs validate=ValidationConfig(...)")
        tables = {"data": (self.root, frame, "ts_event_ns")}
        if quarantined is not None and quarantined.height:
            tables["quarantine"] = (self.quarantine_root, quarantined, "ts_event_ns")
        if issues is not None and issues.height:
            tables["issues"] = (self.issues_root, issues, "start_ns")
        write_ns = next_write_ns()
        staged: dict[str, list[StagedPart]] = {}
        try:
            for name, (table, rows, ts_column) in tables.items():
                staged[name] = stage(
                    table, venue, kind, symbol, rows, ts_column=ts_column, write_ns=write_ns
                )
        except BaseException:
            for parts in staged.values():
                discard(parts)
            raise
        published = {name: publish(parts) for name, parts in staged.items()}

        def stored(name: str) -> list[Path]:
            new, existing = published.get(name, ([], []))
            return sorted(new + existing)

        return WriteResult(
            paths=stored("data"),
            existing=published["data"][1],
            quarantine=stored("quarantine"),
            issues=stored("issues"),
            report=report,
        )

    def query(
        self,
        kind: str,
        instruments: InstrumentId | Iterable[InstrumentId] | None = None,
        *,
        venue: str | None = None,
        symbols: str | Iterable[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> pl.DataFrame:
        """Stored rows of ``kind`` as one frame: ``venue``, ``symbol``, then the kind's columns.

        Select series by ``instruments`` or by ``venue`` and/or ``symbols`` (nothing selects
        every stored series of the kind). Sorted by ``ts_event_ns``, then venue, symbol, and
        the order rows were written in. No match gives an empty frame with those columns.
        """
        return self._read(
            self.root,
            kind,
            kind_schema(kind),
            "ts_event_ns",
            instruments,
            venue,
            symbols,
            start,
            end,
        )

    def quarantined(
        self,
        kind: str,
        instruments: InstrumentId | Iterable[InstrumentId] | None = None,
        *,
        venue: str | None = None,
        symbols: str | Iterable[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> pl.DataFrame:
        """Quarantined rows of ``kind``, like ``query`` plus ``row`` and ``reason`` columns."""
        schema = quarantine_schema(kind_schema(kind))
        return self._read(
            self.quarantine_root,
            kind,
            schema,
            "ts_event_ns",
            instruments,
            venue,
            symbols,
            start,
            end,
        )

    def issues(
        self,
        kind: str,
        instruments: InstrumentId | Iterable[InstrumentId] | None = None,
        *,
        venue: str | None = None,
        symbols: str | Iterable[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> pl.DataFrame:
        """Interval issues of ``kind`` (reason, start_ns, end_ns, detail) starting in range."""
        return self._read(
            self.issues_root, kind, ISSUES, "start_ns", instruments, venue, symbols, start, end
        )

    def events(
        self,
        kinds: str | Iterable[str] | None = None,
        instruments: InstrumentId | Iterable[InstrumentId] | None = None,
        *,
        venue: str | None = None,
        symbols: str | Iterable[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        batch_size: int = 65_536,
    ) -> Iterator[CatalogEvent]:
        """Domain events of ``kinds`` (default: every stored kind) in time order, streamed.

        Book rows become ``BookDeltaEvent`` (an ``OrderBookDelta`` with ``is_snapshot`` and
        ``batch_end``), trades ``TradeTick``, quotes ``QuoteTick``, funding ``FundingRate``
        and bars ``Bar``. Ties at one ``ts_event_ns`` go by kind (book, quotes, trades,
        funding, bars by interval), then venue, symbol and write order. Rows are read
        ``batch_size`` at a time per kind, so memory does not grow with the range.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if kinds is None:
            kinds = sorted({kind for _, kind, _, _ in list_scopes(self.root)})
        start_ns, end_ns = _bounds(start, end)
        streams = []
        for kind in kind_order([kinds] if isinstance(kinds, str) else kinds):
            series = q.resolve_series(self.root, kind, instruments, venue, symbols)
            parts = q.collect_parts(self.root, kind, series, start_ns, end_ns)
            if parts:
                batches = q.read_batches(
                    parts,
                    list(kind_schema(kind)),
                    ts_column="ts_event_ns",
                    start_ns=start_ns,
                    end_ns=end_ns,
                    batch_size=batch_size,
                )
                streams.append(batch_events(kind, batches, q.symbol_map(series)))
        return merge_streams(streams) if streams else iter(())

    def instruments(self, kind: str | None = None) -> list[InstrumentId]:
        """Every instrument with stored data (of ``kind`` when given), sorted."""
        if kind is not None:
            base_kind(kind)
        return sorted({InstrumentId(s, v) for v, _, s, _ in list_scopes(self.root, kind)})

    def listing(self) -> pl.DataFrame:
        """One row per stored series: venue, kind, symbol, first_date, last_date, days, parts."""
        rows = []
        for venue, kind, symbol, folder in list_scopes(self.root):
            days = {
                d.name.removeprefix("date="): len(list(d.glob(PART_GLOB)))
                for d in folder.glob("date=*")
            }
            days = {d: n for d, n in days.items() if n}
            if days:
                rows.append(
                    (venue, kind, symbol, min(days), max(days), len(days), sum(days.values()))
                )
        names = ["venue", "kind", "symbol", "first_date", "last_date", "days", "parts"]
        types = [pl.String] * 5 + [pl.Int64] * 2
        return pl.DataFrame(rows, schema=dict(zip(names, types, strict=True)), orient="row")

    def quarantine_report(
        self,
        kind: str | None = None,
        instruments: InstrumentId | Iterable[InstrumentId] | None = None,
        *,
        venue: str | None = None,
        symbols: str | Iterable[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
    ) -> pl.DataFrame:
        """Counts by venue, kind, symbol, table (``quarantine`` rows or ``issues``) and reason.

        A quarantined row with several reasons is counted under each.
        """
        frames = [pl.DataFrame(schema=_REPORT_SCHEMA)]
        for table, name in ((self.quarantine_root, "quarantine"), (self.issues_root, "issues")):
            kinds = [kind] if kind else sorted({k for _, k, _, _ in list_scopes(table)})
            for k in kinds:
                read = self.quarantined if name == "quarantine" else self.issues
                found = read(k, instruments, venue=venue, symbols=symbols, start=start, end=end)
                frames.append(
                    found.select(
                        "venue",
                        pl.lit(k).alias("kind"),
                        "symbol",
                        pl.lit(name).alias("table"),
                        pl.col("reason").str.split(REASON_SEPARATOR),
                    )
                    .explode("reason")
                    .group_by("venue", "kind", "symbol", "table", "reason")
                    .len("count")
                    .cast(dict(_REPORT_SCHEMA.items()))
                )
        return pl.concat(frames).sort("venue", "kind", "symbol", "table", "reason")

    def require_no_quarantine(
        self,
        kind: str | None = None,
        instruments: InstrumentId | Iterable[InstrumentId] | None = None,
        *,
        venue: str | None = None,
        symbols: str | Iterable[str] | None = None,
        start: TimeLike | None = None,
        end: TimeLike | None = None,
        include_issues: bool = False,
    ) -> None:
        """Raise :class:`QuarantineError` (counts by reason) if the selection has quarantined
        rows, or, with ``include_issues``, flagged intervals."""
        report = self.quarantine_report(
            kind, instruments, venue=venue, symbols=symbols, start=start, end=end
        )
        if not include_issues:
            report = report.filter(pl.col("table") == "quarantine")
        if report.height:
            series = report.select(
                pl.format("{}/{}/{}", "venue", "kind", "symbol").unique(maintain_order=True)
            ).to_series()
            counts = report.group_by("reason").agg(pl.col("count").sum())
            raise QuarantineError(", ".join(series.to_list()), dict(counts.iter_rows()))

    def _read(
        self,
        table: Path,
        kind: str,
        schema: pl.Schema,
        ts_column: str,
        instruments: InstrumentId | Iterable[InstrumentId] | None,
        venue: str | None,
        symbols: str | Iterable[str] | None,
        start: TimeLike | None,
        end: TimeLike | None,
    ) -> pl.DataFrame:
        start_ns, end_ns = _bounds(start, end)
        series = q.resolve_series(table, kind, instruments, venue, symbols)
        parts = q.collect_parts(table, kind, series, start_ns, end_ns)
        return q.read_frame(
            parts,
            schema,
            q.symbol_map(series),
            ts_column=ts_column,
            start_ns=start_ns,
            end_ns=end_ns,
        )


def _bounds(start: TimeLike | None, end: TimeLike | None) -> tuple[int | None, int | None]:
    start_ns = None if start is None else to_ns(start)
    end_ns = None if end is None else to_ns(end)
    if start_ns is not None and end_ns is not None and start_ns > end_ns:
        raise ValueError(f"start {start!r} is after end {end!r}")
    return start_ns, end_ns
