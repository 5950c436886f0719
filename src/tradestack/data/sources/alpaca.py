"""Alpaca stock bars through alpaca-py: history over REST, live minute bars over WebSocket.

alpaca-py (0.44) already does, and this module relies on: REST pagination via
``next_page_token`` and retries on HTTP 429/504; for the stream: msgpack framing, the auth
handshake, keepalive pings, reconnecting after a dropped connection with exponential backoff
and equal jitter (``DataStream._reconnect_delay``: 1 s doubling to 30 s, each wait drawn from
[d/2, d]) and re-subscribing every registered symbol after each reconnect.

What it lacks, and :class:`BarStream` adds:

- a rejected key is retried forever (each attempt logged as an error); here an auth failure
  ends the stream and raises :class:`AlpacaAuthError` from the iterator;
- parsed models round timestamps to microseconds; bars are read raw (msgpack timestamps), so
  ``ts_event_ns`` is exact, and ``ts_recv_ns`` is ``time.time_ns()`` when the bar is handled;
- handlers run inline in the socket reader; here the handler only enqueues into a bounded
  queue (when full the oldest bar is dropped and counted), so a slow consumer never stalls it;
- stopping waits for a 5 s receive timeout; here the run task is cancelled at once;
- backoff bounds are parameters (they are private attributes in alpaca-py);
- websockets logs every frame at DEBUG, the auth frame with the secret included; this
  connection's frame logging is switched off.

This uses alpaca-py internals (``_run_forever``, ``_auth``, ``_start_ws``, the backoff
attributes); tests/data/sources/test_alpaca.py exercises each against a local fake server.
Credentials come from arguments or ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` and never
appear in ``repr``, messages or logs.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Literal

import msgspec
import polars as pl
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.live import StockDataStream
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame

from tradestack.core.events import Bar
from tradestack.core.ids import InstrumentId
from tradestack.data.catalog.schema import BARS

log = logging.getLogger(__name__)
Timeframe = Literal["1m", "1d"]
VENUE = "alpaca"
_FATAL_AUTH = ("auth failed", "failed to authenticate")
_END = object()


class AlpacaError(RuntimeError):
    """Alpaca refused a request or sent data that cannot be used."""


class AlpacaAuthError(AlpacaError):
    """Alpaca rejected the API key, or no key was given."""


class _RawBar(msgspec.Struct):
    t: str
    o: float
    h: float
    l: float  # noqa: E741 - Alpaca's field name
    c: float
    v: float


class AlpacaBarSource:
    """Stock bars from Alpaca via alpaca-py: historical minute/daily bars and live minute bars.

    ``data_url`` / ``stream_url`` override alpaca-py's endpoints (a local fake server in
    tests). ``fetch_bars`` is synchronous (alpaca-py uses ``requests``); from async code call
    it through ``asyncio.to_thread``.
    """

    def __init__(
        self,
        key_id: str | None = None,
        secret_key: str | None = None,
        *,
        data_url: str | None = None,
        stream_url: str | None = None,
        feed: str = "iex",
        adjustment: str = "raw",
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        queue_size: int = 10_000,
    ) -> None:
        key = key_id or os.environ.get("APCA_API_KEY_ID")
        secret = secret_key or os.environ.get("APCA_API_SECRET_KEY")
        if not key or not secret:
            raise AlpacaAuthError(
                "Alpaca credentials missing: pass key_id and secret_key or set "
                "APCA_API_KEY_ID and APCA_API_SECRET_KEY"
            )
        self._key, self._secret = key, secret
        self._feed = DataFeed(feed)
        self._adjustment = Adjustment(adjustment)
        self._data_url = data_url
        self._stream_url = stream_url
        self._backoff = (reconnect_min_s, reconnect_max_s)
        self._queue_size = queue_size
        self._client: StockHistoricalDataClient | None = None

    def __repr__(self) -> str:
        return (
            f"AlpacaBarSource(feed={self._feed.value!r}, data_url={self._data_url!r}, "
            f"stream_url={self._stream_url!r})"
        )

    def fetch_bars(
        self,
        symbols: str | Sequence[str],
        timeframe: Timeframe,
        start: datetime,
        end: datetime | None = None,
        *,
        limit: int | None = None,
    ) -> dict[str, pl.DataFrame]:
        """Historical bars per symbol in the catalog bar schema (``ts_recv_ns = ts_event_ns``).

        ``timeframe`` is ``"1m"`` or ``"1d"``; naive datetimes are UTC. Symbols without bars
        get an empty frame. Raises :class:`AlpacaAuthError` for a rejected key and
        :class:`AlpacaError` for other refusals or malformed bars.
        """
        wanted = [symbols] if isinstance(symbols, str) else list(symbols)
        frames = {s: pl.DataFrame(schema=BARS) for s in wanted}
        request = StockBarsRequest(
            symbol_or_symbols=wanted,
            timeframe={"1m": TimeFrame.Minute, "1d": TimeFrame.Day}[timeframe],
            start=start,
            end=end,
            limit=limit,
            adjustment=self._adjustment,
            feed=self._feed,
        )
        try:
            raw = self._historical().get_stock_bars(request)
        except APIError as exc:
            status = exc.status_code
            kind = AlpacaAuthError if status in (401, 403) else AlpacaError
            raise kind(f"Alpaca refused the bars request (HTTP {status}): {exc}") from None
        if not isinstance(raw, dict):  # raw_data=True: alpaca-py returns the decoded JSON
            raise AlpacaError(f"unexpected bars response type {type(raw).__name__}")
        for symbol, bars in raw.items():
            frames[symbol] = _bars_frame(symbol, bars)
        return frames

    def fetch_bar_events(
        self,
        symbol: str,
        timeframe: Timeframe,
        start: datetime,
        end: datetime | None = None,
        *,
        limit: int | None = None,
    ) -> list[Bar]:
        """Like :meth:`fetch_bars` for one symbol, as ``Bar`` events of ``symbol@alpaca``."""
        frame = self.fetch_bars(symbol, timeframe, start, end, limit=limit)[symbol]
        instrument = InstrumentId(symbol, VENUE)
        return [Bar(instrument, *row) for row in frame.iter_rows()]

    def stream_bars(self, symbols: Sequence[str]) -> BarStream:
        """Live minute bars of ``symbols``; use as ``async with source.stream_bars([...])``."""
        stream = _StockStream(
            self._key,
            self._secret,
            raw_data=True,
            feed=self._feed,
            url_override=self._stream_url,
            websocket_params={
                "ping_interval": 10,
                "ping_timeout": 180,
                "max_queue": 1024,
                "logger": _NoFrameLogs(logging.getLogger("websockets.client"), {}),
            },
        )
        stream._reconnect_min_backoff, stream._reconnect_max_backoff = self._backoff
        return BarStream(stream, list(symbols), self._queue_size)

    def _historical(self) -> StockHistoricalDataClient:
        if self._client is None:
            self._client = StockHistoricalDataClient(
                self._key, self._secret, raw_data=True, url_override=self._data_url
            )
        return self._client


class BarStream:
    """Alpaca's live minute bars as an async iterator of ``Bar`` events.

    Reconnection and re-subscription are alpaca-py's; an auth failure ends the iteration with
    :class:`AlpacaAuthError`. ``connections``, ``dropped`` (queue overflow) and ``malformed``
    count what happened.
    """

    def __init__(self, stream: _StockStream, symbols: list[str], queue_size: int) -> None:
        if not symbols:
            raise ValueError("stream_bars needs at least one symbol")
        self._stream = stream
        self._symbols = symbols
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self.dropped = 0
        self.malformed = 0

    def __repr__(self) -> str:
        return f"BarStream(symbols={self._symbols!r}, connections={self.connections})"

    @property
    def connections(self) -> int:
        """How many times the stream has connected and authenticated."""
        return self._stream.connections

    async def start(self) -> None:
        """Subscribe and start the connection task (returns at once)."""
        if self._task is None:
            self._stream.subscribe_bars(self._on_bar, *self._symbols)
            self._task = asyncio.create_task(self._run(), name="alpaca-bars")

    async def close(self) -> None:
        """Stop the stream and close the connection."""
        if self._task is not None and not self._task.done():
            await self._stream.stop_ws()
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self._stream.close()

    async def __aenter__(self) -> BarStream:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __aiter__(self) -> BarStream:
        return self

    async def __anext__(self) -> Bar:
        if self._task is None:
            await self.start()
        item = await self._queue.get()
        if item is _END:
            self._queue.put_nowait(_END)
            if self._error is not None:
                raise self._error
            raise StopAsyncIteration
        bar: Bar = item
        return bar

    async def _run(self) -> None:
        try:
            await self._stream._run_forever()
            if self._stream.auth_error is not None:
                self._error = AlpacaAuthError(
                    f"Alpaca rejected the API key: {self._stream.auth_error}"
                )
        except Exception as exc:
            self._error = AlpacaError(f"Alpaca stream failed: {exc}")
        finally:
            while self._queue.full():
                self._queue.get_nowait()
                self.dropped += 1
            self._queue.put_nowait(_END)

    async def _on_bar(self, message: Any) -> None:
        received = time.time_ns()
        try:
            bar = _stream_bar(message, received)
        except (KeyError, TypeError, ValueError) as exc:
            self.malformed += 1
            if self.malformed == 1:
                log.warning("dropping malformed Alpaca bar (%s); later ones are only counted", exc)
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
            if self.dropped == 1:
                log.warning("Alpaca bar queue full: dropping the oldest bars (counted)")
        self._queue.put_nowait(bar)


class _StockStream(StockDataStream):
    """alpaca-py's stream, counting connections and making a rejected key final."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.connections = 0
        self.auth_error: str | None = None

    def __repr__(self) -> str:
        return "_StockStream(<credentials hidden>)"

    async def _auth(self) -> None:
        try:
            await super()._auth()
        except ValueError as exc:
            if str(exc) in _FATAL_AUTH:
                self.auth_error = str(exc)
                await self.stop_ws()
            raise

    async def _start_ws(self) -> None:
        await super()._start_ws()
        self.connections += 1
        log.info("Alpaca bar stream connected (connection %d)", self.connections)


class _NoFrameLogs(logging.LoggerAdapter[logging.Logger]):
    """A logger for websockets that reports DEBUG as disabled, so frames are never logged."""

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 - logging's name
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


def _bars_frame(symbol: str, raw: Any) -> pl.DataFrame:
    try:
        bars = msgspec.convert(raw, list[_RawBar])
    except msgspec.ValidationError as exc:
        raise AlpacaError(f"malformed Alpaca bars for {symbol}: {exc}") from None
    times = pl.Series([b.t for b in bars], dtype=pl.String)
    ts = times.str.strptime(pl.Datetime("ns", "UTC"), "%Y-%m-%dT%H:%M:%S%.fZ", strict=False)
    frame = pl.DataFrame(
        {
            "ts_event_ns": ts.to_physical(),
            "ts_recv_ns": ts.to_physical(),
            **{name: [getattr(b, key) for b in bars] for name, key in _FIELDS.items()},
        },
        schema=BARS,
    )
    problems = [
        (frame["ts_event_ns"].is_null(), "t", times),
        *((~(frame[f] > 0), k, frame[f]) for f, k in _FIELDS.items() if f != "volume"),
        (~(frame["volume"] >= 0), "v", frame["volume"]),
        (frame["ts_event_ns"].diff() <= 0, "t", times),
    ]
    for mask, field, values in problems:
        hits = mask.fill_null(False).arg_true()
        if len(hits):
            i = int(hits[0])
            raise AlpacaError(
                f"malformed Alpaca bar {i} of {symbol}: field {field!r} = {values[i]!r}"
            )
    return frame


_FIELDS = {"open": "o", "high": "h", "low": "l", "close": "c", "volume": "v"}


def _stream_bar(message: Mapping[str, Any], received_ns: int) -> Bar:
    stamp = message["t"]
    if hasattr(stamp, "to_unix_nano"):  # msgpack.Timestamp
        ts_ns = int(stamp.to_unix_nano())
    elif isinstance(stamp, str):
        ts_ns = _rfc3339_ns(stamp)
    else:
        raise TypeError(f"field 't' is {type(stamp).__name__}")
    values = [float(message[key]) for key in _FIELDS.values()]
    if not all(math.isfinite(x) for x in values) or min(values[:4]) <= 0 or values[4] < 0:
        raise ValueError(f"bad prices/volume {values} for {message.get('S')!r}")
    return Bar(InstrumentId(str(message["S"]), VENUE), ts_ns, received_ns, *values)


def _rfc3339_ns(text: str) -> int:
    parsed = pl.Series([text]).str.strptime(
        pl.Datetime("ns", "UTC"), "%Y-%m-%dT%H:%M:%S%.fZ", strict=False
    )
    value = parsed.to_physical()[0]
    if value is None:
        raise ValueError(f"field 't' = {text!r} is not an RFC 3339 UTC time")
    return int(value)
