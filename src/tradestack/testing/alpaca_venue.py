"""A local fake Alpaca market-data server that replays recorded real Alpaca responses.

The recording is ccxt's static test file for Alpaca (``methods.<ccxtMethod>[].httpResponse`` are
Alpaca REST bodies as captured). Every bar object in it is served verbatim (same ``t, o, h, l,
c, v, n, vw`` as Alpaca's stock bars); nothing is synthesised or aggregated:

- 1-minute bars: the ``bars`` of ``fetchOHLCV`` responses and the ``minuteBar`` of snapshots;
- daily bars: the ``dailyBar`` / ``prevDailyBar`` of snapshots. A day recorded twice (a bar
  still forming, snapshotted twice) is served as the latest snapshot has it.

The recording holds 3 minute bars of BTC/USD and 1 of LTC/USD, and 2 daily bars of each. A
requested stock symbol is re-keyed from a recorded symbol (``symbol_map``; by default the one
with the most minute bars), so ``AAPL`` serves BTC/USD's bars under the name ``AAPL``.

REST (``GET /v2/stocks/bars``, what alpaca-py 0.44's ``get_stock_bars`` calls): checks the
``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` headers (HTTP 403 ``{"message": "forbidden."}``
as Alpaca answers a bad key), honours ``symbols, timeframe (1Min, 1Day), start, end`` (both
inclusive; absent means unbounded, unlike Alpaca's "today"), ``limit``, ``sort`` and
``page_token``; pages hold at most ``min(limit, page_size)`` bars, sorted by symbol then time,
so tiny ``page_size`` exercises pagination. Other timeframes get HTTP 422: nothing recorded.

WebSocket (``/v2/{feed}``): Alpaca's market-data protocol as alpaca-py speaks it: msgpack
frames when the upgrade request says ``Content-Type: application/msgpack`` (alpaca-py always
does; ``t`` is then a msgpack timestamp), JSON text otherwise. ``[{"T":"success","msg":
"connected"}]`` → ``auth`` → ``authenticated`` or ``[{"T":"error","code":402,"msg":"auth
failed"}]`` and close → ``subscribe`` → ``subscription`` ack → recorded minute bars as
``"T":"b"`` in time order. Bars already delivered are not sent again after a reconnect;
``drop_after_bars`` forces disconnects (close code 1011) to test reconnection.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import re
import socket
import struct
import threading
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import msgspec
from aiohttp import WSMsgType, web

_ANY = dict[str, Any]
_SUBSCRIBABLE = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")
_TIMEFRAME = re.compile(r"([1-9]\d*)(Min|T|Hour|H|Day|D|Week|W|Month|M)")


@dataclass(frozen=True, slots=True)
class AlpacaRecording:
    """Recorded Alpaca bar objects (verbatim dicts, ascending ``t``) by recorded symbol."""

    minute: Mapping[str, tuple[_ANY, ...]]
    daily: Mapping[str, tuple[_ANY, ...]]

    @classmethod
    def from_ccxt_static(cls, path: str | Path) -> AlpacaRecording:
        """Collect the bars of a ccxt static-response file for Alpaca (see module docstring)."""
        methods = json.loads(Path(path).read_text())["methods"]
        minute: dict[tuple[str, str], tuple[int, _ANY]] = {}
        daily: dict[tuple[str, str], tuple[int, _ANY]] = {}
        final = 2**63  # bars from the bars endpoint are complete: they outrank snapshots
        for calls in methods.values():
            for call in calls:
                body = call.get("httpResponse")
                if not isinstance(body, dict):
                    continue
                for symbol, bars in (body.get("bars") or {}).items():
                    args = call.get("input") or []  # ccxt fetchOHLCV(symbol, timeframe, ...)
                    target = daily if len(args) > 1 and args[1] == "1d" else minute
                    for bar in bars:
                        _keep(target, symbol, bar, final)
                for symbol, snap in (body.get("snapshots") or {}).items():
                    taken = max(
                        (rfc3339_ns(snap[k]["t"]) for k in ("latestTrade", "latestQuote")
                         if isinstance(snap.get(k), dict)),
                        default=0,
                    )  # fmt: skip
                    if isinstance(snap.get("minuteBar"), dict):
                        _keep(minute, symbol, snap["minuteBar"], taken)
                    for key in ("prevDailyBar", "dailyBar"):
                        if isinstance(snap.get(key), dict):
                            _keep(daily, symbol, snap[key], taken)
        return cls(_by_symbol(minute), _by_symbol(daily))


def _keep(into: dict[tuple[str, str], tuple[int, _ANY]], symbol: str, bar: _ANY, rank: int) -> None:
    key = (symbol, bar["t"])
    if key not in into or into[key][0] <= rank:
        into[key] = (rank, bar)


def _by_symbol(found: dict[tuple[str, str], tuple[int, _ANY]]) -> dict[str, tuple[_ANY, ...]]:
    out: dict[str, list[_ANY]] = {}
    for (symbol, _), (_, bar) in sorted(found.items(), key=lambda kv: rfc3339_ns(kv[0][1])):
        out.setdefault(symbol, []).append(bar)
    return {symbol: tuple(bars) for symbol, bars in sorted(out.items())}


def rfc3339_ns(text: str) -> int:
    """Nanoseconds since the epoch of an RFC 3339 time (``Z`` or offset, 0-9 fraction digits)."""
    if len(text) == 10:
        return (date.fromisoformat(text) - date(1970, 1, 1)).days * 86_400 * 10**9
    match = re.fullmatch(r"([^.]+?)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)", text)
    if match is None:
        raise ValueError(f"not an RFC 3339 time: {text!r}")
    base, fraction, zone = match.groups()
    moment = datetime.fromisoformat(base + ("+00:00" if zone == "Z" else zone))
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    seconds = delta.days * 86_400 + delta.seconds
    return seconds * 10**9 + int((fraction or "0").ljust(9, "0"))


class _NotRecorded(ValueError):
    """A valid request the recording has no data for (answered with HTTP 422)."""


class FakeAlpacaServer:
    """Alpaca's stock-bars REST endpoint and market-data WebSocket on 127.0.0.1, for tests.

    Use ``async with FakeAlpacaServer(recording) as server`` or, from sync code,
    :func:`serve_in_thread`. ``requests`` and ``subscriptions`` record what clients asked.
    """

    def __init__(
        self,
        recording: AlpacaRecording,
        *,
        key_id: str = "PKFAKEKEY",
        secret_key: str = "fake-secret",
        page_size: int = 1,
        symbol_map: Mapping[str, str] | None = None,
        drop_after_bars: Sequence[int] = (),
    ) -> None:
        self.recording = recording
        self.page_size = page_size
        self.symbol_map = dict(symbol_map or {})
        self.drop_after_bars = list(drop_after_bars)
        self.requests: list[dict[str, str]] = []
        self.subscriptions: list[_ANY] = []
        self.connections = 0
        self._credentials = (key_id, secret_key)
        self._default = max(recording.minute, key=lambda s: (len(recording.minute[s]), s))
        self._delivered: set[tuple[str, str]] = set()
        self._sockets: set[web.WebSocketResponse] = set()
        self._runner: web.AppRunner | None = None
        self._port = 0

    def __repr__(self) -> str:
        return f"FakeAlpacaServer(port={self._port}, page_size={self.page_size})"

    @property
    def data_url(self) -> str:
        """Base URL for ``StockHistoricalDataClient(url_override=...)``."""
        return f"http://127.0.0.1:{self._port}"

    @property
    def stream_url(self) -> str:
        """URL for ``StockDataStream(url_override=...)``."""
        return f"ws://127.0.0.1:{self._port}/v2/iex"

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application()
        app.router.add_get("/v2/stocks/bars", self._bars)
        app.router.add_get("/v2/{feed}", self._stream)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()

    async def stop(self) -> None:
        """Close every stream and stop listening."""
        await self.disconnect_streams(code=1001)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def disconnect_streams(self, code: int = 1011) -> None:
        """Close all open WebSocket connections now (a forced disconnect)."""
        await asyncio.gather(*(ws.close(code=code) for ws in list(self._sockets)))

    async def __aenter__(self) -> FakeAlpacaServer:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def source_of(self, symbol: str) -> str:
        """The recorded symbol whose bars are served as ``symbol``."""
        if symbol in self.symbol_map:
            return self.symbol_map[symbol]
        return symbol if symbol in self.recording.minute else self._default

    def _authorized(self, key: str | None, secret: str | None) -> bool:
        expected_key, expected_secret = self._credentials
        return hmac.compare_digest((key or "").encode(), expected_key.encode()) and (
            hmac.compare_digest((secret or "").encode(), expected_secret.encode())
        )

    async def _bars(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.requests.append(query)
        headers = request.headers
        if not self._authorized(headers.get("APCA-API-KEY-ID"), headers.get("APCA-API-SECRET-KEY")):
            return web.json_response({"message": "forbidden."}, status=403)
        try:
            page, token = self._page(query)
        except ValueError as exc:
            status = 422 if isinstance(exc, _NotRecorded) else 400
            return web.json_response({"code": status * 100_000, "message": str(exc)}, status=status)
        bars: dict[str, list[_ANY]] = {}
        for symbol, bar in page:
            bars.setdefault(symbol, []).append(dict(bar))
        return web.json_response({"bars": bars, "next_page_token": token})

    def _page(self, query: Mapping[str, str]) -> tuple[list[tuple[str, _ANY]], str | None]:
        symbols = sorted({s.strip() for s in query.get("symbols", "").split(",") if s.strip()})
        if not symbols:
            raise ValueError("missing symbols")
        match = _TIMEFRAME.fullmatch(query.get("timeframe", ""))
        unit = match.group(2) if match is not None and match.group(1) == "1" else ""
        if unit in ("Min", "T"):
            table = self.recording.minute
        elif unit in ("Day", "D"):
            table = self.recording.daily
        else:
            raise _NotRecorded(f"no recorded bars for timeframe {query.get('timeframe')!r}")
        start = rfc3339_ns(query["start"]) if "start" in query else None
        end = rfc3339_ns(query["end"]) if "end" in query else None
        limit = int(query.get("limit", "1000"))
        if not 1 <= limit <= 10_000:
            raise ValueError(f"invalid limit {limit}: must be 1..10000")
        if query.get("sort", "asc") not in ("asc", "desc"):
            raise ValueError(f"invalid sort {query['sort']!r}")
        rows: list[tuple[str, _ANY]] = []
        for symbol in symbols:
            bars = [
                bar
                for bar in table.get(self.source_of(symbol), ())
                if (start is None or rfc3339_ns(bar["t"]) >= start)
                and (end is None or rfc3339_ns(bar["t"]) <= end)
            ]
            rows += [(symbol, bar) for bar in (bars[::-1] if query.get("sort") == "desc" else bars)]
        offset = _decode_token(query["page_token"]) if query.get("page_token") else 0
        stop = offset + min(limit, self.page_size)
        return rows[offset:stop], (_encode_token(stop) if stop < len(rows) else None)

    async def _stream(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        binary = request.headers.get("Content-Type", "").startswith("application/msgpack")
        connection = self.connections
        self.connections += 1
        self._sockets.add(ws)
        subscribed: set[str] = set()
        pusher: asyncio.Task[None] | None = None

        async def send(messages: list[_ANY]) -> None:
            if binary:
                await ws.send_bytes(msgspec.msgpack.encode(messages))
            else:
                await ws.send_str(json.dumps(messages))

        try:
            await send([{"T": "success", "msg": "connected"}])
            authenticated = False
            async for frame in ws:
                if frame.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                    break
                try:
                    data = (
                        msgspec.msgpack.decode(frame.data) if frame.type is WSMsgType.BINARY
                        else json.loads(frame.data)
                    )  # fmt: skip
                    action = data.get("action")
                except (ValueError, AttributeError, msgspec.DecodeError):
                    await send([{"T": "error", "code": 400, "msg": "invalid syntax"}])
                    continue
                if action == "auth":
                    if not self._authorized(data.get("key"), data.get("secret")):
                        await send([{"T": "error", "code": 402, "msg": "auth failed"}])
                        await ws.close(code=1008)
                        break
                    authenticated = True
                    await send([{"T": "success", "msg": "authenticated"}])
                elif not authenticated:
                    await send([{"T": "error", "code": 401, "msg": "not authenticated"}])
                elif action in ("subscribe", "unsubscribe"):
                    self.subscriptions.append(dict(data))
                    change = set(data.get("bars") or ())
                    subscribed = (
                        subscribed | change if action == "subscribe" else subscribed - change
                    )
                    ack: dict[str, list[str]] = {channel: [] for channel in _SUBSCRIBABLE}
                    await send([{"T": "subscription", **ack, "bars": sorted(subscribed)}])
                    if pusher is None and subscribed:
                        pusher = asyncio.create_task(
                            self._push(ws, send, binary, subscribed, connection)
                        )
                else:
                    await send([{"T": "error", "code": 400, "msg": "invalid syntax"}])
        finally:
            if pusher is not None:
                pusher.cancel()
            self._sockets.discard(ws)
        return ws

    async def _push(
        self,
        ws: web.WebSocketResponse,
        send: Callable[[list[_ANY]], Awaitable[None]],
        binary: bool,
        symbols: set[str],
        connection: int,
    ) -> None:
        """Send the recorded minute bars of ``symbols`` not delivered yet, oldest first."""
        recorded = self.recording.minute
        timeline = sorted(
            ((rfc3339_ns(bar["t"]), symbol, bar)
             for symbol in symbols for bar in recorded.get(self.source_of(symbol), ())),
            key=lambda row: (row[0], row[1]),
        )  # fmt: skip
        plan = self.drop_after_bars
        limit = plan[connection] if connection < len(plan) else None
        sent = 0
        for ts_ns, symbol, bar in timeline:
            if (symbol, bar["t"]) in self._delivered or symbol not in symbols:
                continue
            if limit is not None and sent == limit:
                await ws.close(code=1011, message=b"forced disconnect")
                return
            message = {"T": "b", "S": symbol, **bar}
            if binary:
                message["t"] = _msgpack_timestamp(ts_ns)
            await send([message])
            self._delivered.add((symbol, bar["t"]))
            sent += 1


def _msgpack_timestamp(ts_ns: int) -> msgspec.msgpack.Ext:
    """msgpack's timestamp extension (type -1, 96-bit form), as Alpaca sends ``t``."""
    return msgspec.msgpack.Ext(-1, struct.pack(">Iq", ts_ns % 10**9, ts_ns // 10**9))


def _encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _decode_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token.encode()).decode()
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise ValueError(f"invalid page token {token!r}") from exc
    prefix, _, number = text.partition(":")
    if prefix != "offset" or not number.isdigit():
        raise ValueError(f"invalid page token {token!r}")
    return int(number)


@contextmanager
def serve_in_thread(server: FakeAlpacaServer) -> Iterator[FakeAlpacaServer]:
    """Run ``server`` on an event loop in a background thread (for synchronous tests)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-alpaca", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=10)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
