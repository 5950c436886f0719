"""Record a live feed: raw frames to gzip JSONL (exact replay), normalized rows to the catalog.

The raw file is our own recorder line format, read back by
:func:`tradestack.data.recordings.read_recording`:

- first line ``{"t": "header", "format": "tradestack-1", "venue", "symbols", "kinds", "markets"}``
  (``markets`` = ccxt's market structures of the recorded symbols, so a replay needs no network);
- ``{"t": "recv", "url", "ts_ns", "data"}`` per WebSocket frame, ``data`` being the decoded frame
  re-serialized (ccxt decodes frames before any tap can see them; keys and values are kept);
- ``{"t": "snapshot", "symbol", "ts_ns", "data"}`` per REST book snapshot fetched through ccxt;
- ``{"t": "control", "symbol", "ts_ns", "data": {"action", "reason"}}`` when a book was reset
  (disconnect) or marked stale (silence): state changes no frame shows, replayed as they were.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import polars as pl

from tradestack.core.events import (
    Bar,
    FundingRate,
    MarketEvent,
    QuoteTick,
    TradeTick,
)
from tradestack.data.book.sync import BookUpdate
from tradestack.data.catalog import Catalog
from tradestack.data.validation import ValidationConfig, ValidationReport

RAW_FORMAT = "tradestack-1"


class RawFrameWriter:
    """Appends raw frames and snapshots to a gzip JSONL file, flushing every ``flush_every``."""

    def __init__(
        self, path: str | Path, header: dict[str, Any], *, flush_every: int = 1000
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Held open for the whole recording; closed by close().
        self._handle: IO[str] = gzip.open(  # noqa: SIM115
            self.path, "wt", encoding="utf-8", compresslevel=6
        )
        self._pending = 0
        self.flush_every = flush_every
        self.frames = 0
        self._write({"t": "header", "format": RAW_FORMAT, **header})

    def _write(self, record: dict[str, Any]) -> None:
        self._handle.write(json.dumps(record, separators=(",", ":"), default=str) + "\n")
        self._pending += 1
        if self._pending >= self.flush_every:
            self._handle.flush()
            self._pending = 0

    def frame(self, url: str, message: Any, ts_recv_ns: int) -> None:
        self.frames += 1
        data = message if isinstance(message, str) else json.dumps(message, separators=(",", ":"))
        self._write({"t": "recv", "url": url, "ts_ns": ts_recv_ns, "data": data})

    def snapshot(self, symbol: str, book: Any, ts_recv_ns: int) -> None:
        body = {
            "bids": [list(level[:2]) for level in book["bids"]],
            "asks": [list(level[:2]) for level in book["asks"]],
            "nonce": book.get("nonce"),
            "timestamp": book.get("timestamp"),
        }
        self._write({"t": "snapshot", "symbol": symbol, "ts_ns": ts_recv_ns, "data": body})

    def control(self, symbol: str, action: str, reason: str, ts_ns: int) -> None:
        """A book state change no frame shows (``reset`` on disconnect, ``stale`` on silence)."""
        data = {"action": action, "reason": reason}
        self._write({"t": "control", "symbol": symbol, "ts_ns": ts_ns, "data": data})

    def close(self) -> None:
        self._handle.close()


class CatalogSink:
    """Buffers normalized events per series and appends them to the catalog in batches.

    Call it with each event (it is a feed sink); :meth:`flush` writes what is buffered. Rows of
    one series keep arrival order, so a replay of the catalog sees them as the feed did. With
    ``validate``, every batch goes through the validation gates (bad rows to quarantine, counted
    in :meth:`quarantined`); with ``require_clean`` too, a batch with a bad row raises
    ``QuarantineError`` and is not written.
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        flush_rows: int = 100_000,
        validate: ValidationConfig | None = None,
        require_clean: bool = False,
    ) -> None:
        self.catalog = catalog
        self.flush_rows = flush_rows
        self.validate = validate
        self.require_clean = require_clean
        self.reports: list[ValidationReport] = []
        self._columns: dict[tuple[str, str, str], dict[str, list[Any]]] = {}
        self._rows = 0
        self._next_flush = flush_rows
        self.written: dict[str, int] = {}

    def _buffer(self, venue: str, kind: str, symbol: str) -> dict[str, list[Any]]:
        key = (venue, kind, symbol)
        buffer = self._columns.get(key)
        if buffer is None:
            from tradestack.data.catalog.schema import kind_schema

            buffer = {name: [] for name in kind_schema(kind)}
            self._columns[key] = buffer
        return buffer

    def __call__(self, event: MarketEvent | BookUpdate) -> None:
        add = _ADDERS.get(type(event))
        if add is None:
            return
        self._rows += add(self, event)
        if self._rows >= self._next_flush:
            self.flush()

    def flush(self) -> None:
        """Write every buffered series.

        A series refused by ``require_clean`` is dropped (its rows are what the gates refused;
        the error names them). Any other failure (disk full...) keeps that series buffered for
        the next flush. Other series are written either way; the first error is raised after.
        """
        from tradestack.data.catalog.schema import kind_schema
        from tradestack.data.validation import QuarantineError

        first_error: Exception | None = None
        for (venue, kind, symbol), columns in self._columns.items():
            if not columns["ts_event_ns"]:
                continue
            frame = pl.DataFrame(columns, schema=kind_schema(kind))
            try:
                result = self.catalog.write(
                    venue,
                    kind,
                    symbol,
                    frame,
                    validate=self.validate,
                    require_clean=self.require_clean,
                )
            except QuarantineError as exc:
                first_error = first_error or exc
            except Exception as exc:
                first_error = first_error or exc
                continue
            else:
                if result.report is not None:
                    self.reports.append(result.report)
                self.written[kind] = self.written.get(kind, 0) + frame.height
            for values in columns.values():
                values.clear()
        self._rows = sum(len(c["ts_event_ns"]) for c in self._columns.values())
        # After a failed write, wait for another full batch before retrying.
        self._next_flush = self._rows + self.flush_rows
        if first_error is not None:
            raise first_error

    def quarantined(self) -> dict[str, int]:
        """Quarantined rows per reason over every validated write so far."""
        counts: dict[str, int] = {}
        for report in self.reports:
            for reason, count in report.reasons.items():
                counts[reason] = counts.get(reason, 0) + count
        return counts


def _add_book(sink: CatalogSink, update: BookUpdate) -> int:
    iid = update.instrument_id
    cols = sink._buffer(iid.venue, "book", iid.symbol)
    n = len(update.changes)
    cols["ts_event_ns"].extend([update.ts_event_ns] * n)
    cols["ts_recv_ns"].extend([update.ts_recv_ns] * n)
    cols["side"].extend(["bid" if is_bid else "ask" for is_bid, _, _ in update.changes])
    cols["price"].extend([price for _, price, _ in update.changes])
    cols["size"].extend([size for _, _, size in update.changes])
    cols["sequence"].extend([update.sequence] * n)
    cols["is_snapshot"].extend([update.is_snapshot] * n)
    cols["batch_end"].extend([False] * (n - 1) + [True] if n else [])
    return n


def _add_trade(sink: CatalogSink, trade: TradeTick) -> int:
    cols = sink._buffer(trade.instrument_id.venue, "trades", trade.instrument_id.symbol)
    for name, value in (
        ("ts_event_ns", trade.ts_event_ns),
        ("ts_recv_ns", trade.ts_recv_ns),
        ("price", trade.price),
        ("size", trade.size),
        ("aggressor", str(trade.aggressor)),
        ("trade_id", trade.trade_id),
    ):
        cols[name].append(value)
    return 1


def _add_quote(sink: CatalogSink, quote: QuoteTick) -> int:
    cols = sink._buffer(quote.instrument_id.venue, "quotes", quote.instrument_id.symbol)
    for name in ("ts_event_ns", "ts_recv_ns", "bid_price", "bid_size", "ask_price", "ask_size"):
        cols[name].append(getattr(quote, name))
    return 1


def _add_funding(sink: CatalogSink, rate: FundingRate) -> int:
    cols = sink._buffer(rate.instrument_id.venue, "funding", rate.instrument_id.symbol)
    cols["ts_event_ns"].append(rate.ts_event_ns)
    cols["ts_recv_ns"].append(rate.ts_recv_ns)
    cols["rate"].append(rate.rate_fraction)
    cols["next_funding_ns"].append(rate.next_funding_ns)
    cols["mark_price"].append(rate.mark_price)
    return 1


def _add_bar(sink: CatalogSink, bar: Bar) -> int:
    cols = sink._buffer(bar.instrument_id.venue, "bars_1m", bar.instrument_id.symbol)
    for name in ("ts_event_ns", "ts_recv_ns", "open", "high", "low", "close", "volume"):
        cols[name].append(getattr(bar, name))
    return 1


_ADDERS: dict[type, Callable[[CatalogSink, Any], int]] = {
    BookUpdate: _add_book,
    TradeTick: _add_trade,
    QuoteTick: _add_quote,
    FundingRate: _add_funding,
    Bar: _add_bar,
}
