"""KuCoin spot as a fake venue: bullet-public, symbols, level-2 snapshots, the WS topic protocol.

What is recorded is served verbatim: the ``/api/v1/symbols`` body, the full level-2 snapshots
(``/api/v3/market/orderbook/level2``) and every ``type: message`` frame. What is not recorded
is connection plumbing and is synthesised: the ``POST /api/v1/bullet-public`` answer (a token
and an instance server whose endpoint is this venue's WebSocket URL; the recorder's token was
redacted), the ``welcome`` frame, ``ack`` for subscriptions and ``pong`` for pings.

ccxt 4.5 loads markets from ``/api/v2/symbols`` (served the recorded v1 body, a subset of the
v2 fields) and, without API keys, fetches book snapshots from the public
``/api/v1/market/orderbook/level2_100``. Every snapshot path is served the same way: the
recorded body while the timeline has not passed the recorded snapshot point, then the venue's
true book (recorded snapshot + every replayed change since) with every level, although the real
``level2_20``/``level2_100`` endpoints cap depth at 20/100 levels (see ``docs/architecture.md``).

The timeline waits at each recorded snapshot until a client asks for that symbol's snapshot,
and at the first frame of each awaited channel (``await_topics``) until a client subscribed to
it, so the recorded sync situation is reproduced whatever the timing of the sockets.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from tradestack.data.errors import DataValidationError
from tradestack.data.recordings import FrameKind, read_recording
from tradestack.testing.fake_venue import Connection, FakeVenue, TimelineFrame
from tradestack.testing.faults import FaultPlan

REST_HOST = "api.kucoin.com"
WS_HOST = "push-private.kucoin.com"  # the instance server of the recording
LEVEL2 = "/market/level2"
SNAPSHOT_PATHS = (
    "/api/v1/market/orderbook/level2_20",
    "/api/v1/market/orderbook/level2_100",
    "/api/v3/market/orderbook/level2",
)
SYMBOLS_PATHS = ("/api/v1/symbols", "/api/v2/symbols")
OK = "200000"


def split_topic(topic: str) -> list[tuple[str, str]]:
    """``/market/level2:A,B`` → ``[("/market/level2", "A"), ("/market/level2", "B")]``."""
    prefix, _, symbols = topic.partition(":")
    return [(prefix, symbol) for symbol in symbols.split(",") if symbol]


class _TrueBook:
    """The exchange's book as the venue knows it, levels kept as the venue's strings."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.bids = {float(p): (p, s) for p, s, *_ in data["bids"]}
        self.asks = {float(p): (p, s) for p, s, *_ in data["asks"]}
        self.sequence = int(data["sequence"])
        self.time_ms = int(data.get("time") or 0)

    def apply(self, data: dict[str, Any], recv_ns: int) -> None:
        if int(data["sequenceEnd"]) <= self.sequence:
            return
        for side, changes in (
            (self.bids, data["changes"]["bids"]),
            (self.asks, data["changes"]["asks"]),
        ):
            for price, size, sequence in changes:
                if int(sequence) <= self.sequence or float(price) == 0.0:
                    continue
                if float(size) == 0.0:
                    side.pop(float(price), None)
                else:
                    side[float(price)] = (price, size)
        self.sequence = int(data["sequenceEnd"])
        self.time_ms = max(self.time_ms, recv_ns // 1_000_000)

    def body(self) -> dict[str, Any]:
        return {
            "code": OK,
            "data": {
                "time": self.time_ms,
                "sequence": str(self.sequence),
                "bids": [list(self.bids[p]) for p in sorted(self.bids, reverse=True)],
                "asks": [list(self.asks[p]) for p in sorted(self.asks)],
            },
        }


class KucoinFakeVenue(FakeVenue):
    """Replays a KuCoin spot recording (cryptofeed ``KUCOIN.ws.*`` + ``KUCOIN.http.*``)."""

    hosts = (REST_HOST, WS_HOST)

    def __init__(
        self,
        recordings: list[Path],
        *,
        symbols_file: Path | None = None,
        speed: float | None = None,
        faults: FaultPlan | None = None,
        await_topics: tuple[str, ...] = (LEVEL2,),
        gate_timeout_s: float = 5.0,
    ) -> None:
        self.symbols_body = _rest_body(symbols_file) if symbols_file else None
        self.await_topics = await_topics
        self.recorded_snapshots: dict[str, str] = {}
        self.true_books: dict[str, _TrueBook] = {}
        self.snapshots_served: list[tuple[str, int, bool, str]] = []
        self.pings = 0
        self._early: dict[str, list[tuple[dict[str, Any], int]]] = {}
        super().__init__(
            self._timeline(recordings), speed=speed, faults=faults, gate_timeout_s=gate_timeout_s
        )

    def _timeline(self, recordings: list[Path]) -> list[TimelineFrame]:
        raw = [frame for path in recordings for frame in read_recording(path)]
        raw.sort(key=lambda f: f.ts_ns)
        frames: list[TimelineFrame] = []
        seen: set[tuple[str, str]] = set()
        for rec in raw:
            if rec.kind is FrameKind.REST and "/orderbook/level2" in rec.url:
                symbol = _symbol_from_url(rec.url)
                self.recorded_snapshots[symbol] = rec.payload
                channel = ("snapshot", symbol)
                frames.append(
                    TimelineFrame(rec.ts_ns, channel, rec.payload, gate=f"snapshot:{symbol}")
                )
            elif rec.kind is FrameKind.RECV and '"type":"message"' in rec.payload:
                topic = str(json.loads(rec.payload).get("topic", ""))
                channel = split_topic(topic)[0]
                gate = ""
                if channel[0] in self.await_topics and channel not in seen:
                    gate = f"subscribed:{channel[0]}:{channel[1]}"
                seen.add(channel)
                frames.append(
                    TimelineFrame(
                        rec.ts_ns, channel, rec.payload, eligible=channel[0] == LEVEL2, gate=gate
                    )
                )
        return frames

    def on_frame(self, frame: TimelineFrame) -> None:
        kind, symbol = frame.channel
        if kind == "snapshot":
            truth = _TrueBook(json.loads(frame.payload)["data"])
            # Changes received before the snapshot was taken may reach past it.
            for data, recv_ns in self._early.pop(symbol, []):
                truth.apply(data, recv_ns)
            self.true_books[symbol] = truth
        elif kind == LEVEL2:
            data = json.loads(frame.payload)["data"]
            if symbol in self.true_books:
                self.true_books[symbol].apply(data, frame.ts_ns)
            else:
                self._early.setdefault(symbol, []).append((data, frame.ts_ns))

    async def rest(self, request: web.Request, host: str, path: str) -> web.StreamResponse:
        if path == "/api/v1/bullet-public" and request.method == "POST":
            return web.json_response(self._bullet(request))
        if path in SYMBOLS_PATHS:
            if self.symbols_body is None:
                return _error(404, "400100", "no symbols body recorded for this venue")
            return web.Response(text=self.symbols_body, content_type="application/json")
        if path in SNAPSHOT_PATHS:
            symbol = request.query.get("symbol", "")
            truth = self.true_books.get(symbol)
            if truth is None and symbol in self.recorded_snapshots:
                self.snapshots_served.append((symbol, self.position, True, path))
                self.open_gate(f"snapshot:{symbol}")
                return web.Response(
                    text=self.recorded_snapshots[symbol], content_type="application/json"
                )
            if truth is None:
                return _error(400, "400100", f"symbol {symbol!r} has no recorded book")
            self.snapshots_served.append((symbol, self.position, False, path))
            return web.json_response(truth.body())
        return _error(
            404, "404000", f"endpoint {request.method} {path} is not part of this recording"
        )

    def _bullet(self, request: web.Request) -> dict[str, Any]:
        # Connection plumbing, not in the recording: the instance server is this venue.
        endpoint = f"ws://{request.host}/{WS_HOST}/endpoint"
        server = {
            "endpoint": endpoint,
            "encrypt": False,
            "protocol": "websocket",
            "pingInterval": 18000,
            "pingTimeout": 10000,
        }
        return {"code": OK, "data": {"token": "fake-venue-token", "instanceServers": [server]}}

    async def on_ws_open(self, conn: Connection, host: str, path: str) -> None:
        await conn.send(json.dumps({"id": f"fake-venue-{conn.number}", "type": "welcome"}))

    async def on_ws_message(self, conn: Connection, text: str) -> None:
        try:
            request = json.loads(text)
            kind = request["type"]
        except (ValueError, KeyError, TypeError):
            await conn.send(json.dumps({"type": "error", "code": 400, "data": "invalid request"}))
            return
        request_id = request.get("id")
        if kind == "ping":
            self.pings += 1
            await conn.send(json.dumps({"id": request_id, "type": "pong"}))
            return
        if kind not in ("subscribe", "unsubscribe"):
            await conn.send(
                json.dumps(
                    {
                        "id": request_id,
                        "type": "error",
                        "code": 404,
                        "data": f"type {kind} is not supported",
                    }
                )
            )
            return
        channels = set(split_topic(str(request.get("topic", ""))))
        ack = json.dumps({"id": request_id, "type": "ack"})
        if kind == "unsubscribe":
            conn.channels -= channels
            if request.get("response", True):
                await conn.send(ack)
            return
        # The ack goes out before any data of the topic, as ccxt resets its book on the ack.
        if request.get("response"):
            await conn.send(ack)
        self.subscribe(conn, channels)
        for topic, symbol in channels:
            self.open_gate(f"subscribed:{topic}:{symbol}")


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "msg": message}, status=status)


def _symbol_from_url(url: str) -> str:
    values = parse_qs(urlsplit(url).query).get("symbol")
    return values[0] if values else ""


def _rest_body(path: Path) -> str:
    """The REST body of a cryptofeed metadata file (``URL -> ts: body``) or a plain JSON file."""
    with contextlib.suppress(DataValidationError):
        for frame in read_recording(path):
            if frame.kind is FrameKind.REST:
                return frame.payload
    return path.read_text(encoding="utf-8")
