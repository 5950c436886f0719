"""Binance (spot and USD-M futures) as a fake venue: REST depth/exchangeInfo, WS SUBSCRIBE flow.

The depth stream's timeline pauses at the point where the recorded REST snapshot was taken until
a client asks for that snapshot, which reproduces the recorded sync situation whatever the
replay speed. The venue also keeps the exchange's true book (recorded snapshot + every diff it
has replayed since), so a client that resyncs after a gap or a disconnect gets a current
snapshot, as from the real exchange. Synthesised snapshots carry every level the venue knows
(the real endpoint caps at 5,000), so a resynced book can be compared with a full rebuild.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from tradestack.core.ids import InstrumentId
from tradestack.data.book.l2book import L2Book
from tradestack.data.recordings import FrameKind, RecordedFrame, read_recording
from tradestack.data.venues.binance import event_type, unwrap
from tradestack.testing.fake_venue import Connection, FakeVenue, TimelineFrame
from tradestack.testing.faults import FaultPlan

if TYPE_CHECKING:
    from tradestack.testing.venues.binance_trading import BinanceTradingDesk

SPOT_HOSTS = ("api.binance.com", "stream.binance.com:9443")
USDM_HOSTS = ("fapi.binance.com", "fstream.binance.com")

_CHANNELS = {
    "depthUpdate": "depth",
    "trade": "trade",
    "aggTrade": "aggTrade",
    "bookTicker": "bookTicker",
    "markPriceUpdate": "markPrice",
    "kline": "kline",
}


def channel_of_stream_name(name: str) -> tuple[str, str]:
    """``btcusdt@depth@100ms`` → ``("depth", "BTCUSDT")``; ``x@kline_1m`` → ``("kline", "X")``."""
    symbol, _, rest = name.partition("@")
    kind = rest.split("@", 1)[0]
    if kind.startswith("kline"):
        kind = "kline"
    return kind, symbol.upper()


class _TrueBook:
    """The exchange's book as the venue knows it: recorded snapshot + replayed diffs."""

    def __init__(self, symbol: str, snapshot: dict[str, Any]) -> None:
        self.book = L2Book(InstrumentId(symbol, "binance"))
        self.book.load(
            [(float(p), float(s)) for p, s, *_ in snapshot["bids"]],
            [(float(p), float(s)) for p, s, *_ in snapshot["asks"]],
        )
        self.last_id = int(snapshot["lastUpdateId"])
        self.ts_ms = int(snapshot.get("E", 0))

    def apply(self, data: dict[str, Any]) -> None:
        if int(data["u"]) <= self.last_id:
            return
        for price, size in data["b"]:
            self.book.apply(True, float(price), float(size))
        for price, size in data["a"]:
            self.book.apply(False, float(price), float(size))
        self.last_id = int(data["u"])
        self.ts_ms = int(data.get("E", 0))

    def body(self) -> dict[str, Any]:
        return {
            "lastUpdateId": self.last_id,
            "E": self.ts_ms,
            "T": self.ts_ms,
            "bids": [[repr(p), repr(s)] for p, s in self.book.bids()],
            "asks": [[repr(p), repr(s)] for p, s in self.book.asks()],
        }


class BinanceFakeVenue(FakeVenue):
    """Replays Binance recordings (cryptofeed or hftbacktest format) for one market type.

    With a ``desk`` (``binance_trading.BinanceTradingDesk``) the venue also trades: the desk
    answers the account's order endpoints and sees every replayed frame.
    """

    def __init__(
        self,
        recordings: list[Path],
        *,
        futures: bool = False,
        exchange_info: Path | None = None,
        speed: float | None = None,
        faults: FaultPlan | None = None,
        max_frames: int | None = None,
        desk: BinanceTradingDesk | None = None,
    ) -> None:
        self.desk = desk
        self.futures = futures
        self.hosts = USDM_HOSTS if futures else SPOT_HOSTS
        self.exchange_info = _read_rest_body(exchange_info) if exchange_info else None
        self.recorded_snapshots: dict[str, str] = {}
        self.true_books: dict[str, _TrueBook] = {}
        self.snapshots_served: list[tuple[str, int, bool]] = []
        self._early_diffs: dict[str, list[dict[str, Any]]] = {}
        super().__init__(
            self._timeline(recordings), speed=speed, faults=faults, max_frames=max_frames
        )
        if desk is not None:
            desk.attach(self)

    def _timeline(self, recordings: list[Path]) -> list[TimelineFrame]:
        raw: list[RecordedFrame] = []
        for path in recordings:
            raw.extend(read_recording(path))
        raw.sort(key=lambda f: f.ts_ns)
        frames: list[TimelineFrame] = []
        symbol_of_file = ""
        for rec in raw:
            if rec.kind is FrameKind.RECV:
                frame = json.loads(rec.payload)
                stream, data = unwrap(frame)
                if not isinstance(data, dict) or "s" not in data:
                    continue
                kind = _CHANNELS.get(event_type(stream, data), "")
                symbol_of_file = str(data["s"]).upper()
                frames.append(
                    TimelineFrame(
                        rec.ts_ns, (kind, symbol_of_file), rec.payload, eligible=kind == "depth"
                    )
                )
            elif rec.kind is FrameKind.REST and '"lastUpdateId"' in rec.payload[:40]:
                symbol = _symbol_from_url(rec.url) or symbol_of_file or _first_symbol(raw)
                self.recorded_snapshots[symbol] = rec.payload
                frames.append(
                    TimelineFrame(
                        rec.ts_ns, ("snapshot", symbol), rec.payload, gate=f"snapshot:{symbol}"
                    )
                )
        return frames

    def on_frame(self, frame: TimelineFrame) -> None:
        kind, symbol = frame.channel
        if kind == "snapshot":
            truth = _TrueBook(symbol, json.loads(frame.payload))
            # Diffs that arrived before the snapshot was taken may reach past it.
            for data in self._early_diffs.pop(symbol, []):
                truth.apply(data)
            self.true_books[symbol] = truth
        elif kind == "depth":
            data = unwrap(json.loads(frame.payload))[1]
            if symbol in self.true_books:
                self.true_books[symbol].apply(data)
            else:
                self._early_diffs.setdefault(symbol, []).append(data)
        if self.desk is not None:
            self.desk.on_frame(frame)

    async def rest(self, request: web.Request, host: str, path: str) -> web.StreamResponse:
        if self.desk is not None and self.desk.handles(path):
            return await self.desk.rest(request, path)
        if path.endswith("/exchangeInfo"):
            if self.exchange_info is None:
                return _error(404, -1121, "no exchangeInfo recorded for this venue")
            return web.Response(text=self.exchange_info, content_type="application/json")
        if path.endswith("/depth"):
            symbol = request.query.get("symbol", "").upper()
            truth = self.true_books.get(symbol)
            if truth is None and symbol in self.recorded_snapshots:
                self.snapshots_served.append((symbol, self.position, True))
                self.open_gate(f"snapshot:{symbol}")
                return web.Response(
                    text=self.recorded_snapshots[symbol], content_type="application/json"
                )
            if truth is None:
                return _error(400, -1121, f"Invalid symbol {symbol!r}")
            self.snapshots_served.append((symbol, self.position, False))
            return web.json_response(truth.body())
        if path.endswith("/ping"):
            return web.json_response({})
        if path.endswith("/time"):
            return web.json_response({"serverTime": 0})
        return _error(404, -1000, f"endpoint {path} is not part of this recording")

    async def on_ws_message(self, conn: Connection, text: str) -> None:
        try:
            request = json.loads(text)
            method = request["method"]
            params = request.get("params", [])
        except (ValueError, KeyError, TypeError):
            await conn.send(json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}))
            return
        request_id = request.get("id")
        channels = {channel_of_stream_name(str(name)) for name in params}
        if method == "SUBSCRIBE":
            await conn.send(json.dumps({"result": None, "id": request_id}))
            self.subscribe(conn, channels)
        elif method == "UNSUBSCRIBE":
            conn.channels -= channels
            await conn.send(json.dumps({"result": None, "id": request_id}))
        elif method == "LIST_SUBSCRIPTIONS":
            await conn.send(
                json.dumps({"result": sorted(map(str, conn.channels)), "id": request_id})
            )
        else:
            await conn.send(
                json.dumps(
                    {"error": {"code": 2, "msg": f"Invalid request: {method}"}, "id": request_id}
                )
            )


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "msg": message}, status=status)


def _symbol_from_url(url: str) -> str:
    values = parse_qs(urlsplit(url).query).get("symbol")
    return values[0].upper() if values else ""


def _first_symbol(raw: list[RecordedFrame]) -> str:
    for rec in raw:
        if rec.kind is FrameKind.RECV and '"s":"' in rec.payload:
            return str(rec.payload.split('"s":"', 1)[1].split('"', 1)[0]).upper()
    return ""


def _read_rest_body(path: Path) -> str:
    """The REST body of a cryptofeed metadata file (``URL -> ts: body``) or a plain JSON file."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    text = raw.decode("utf-8")
    for line in text.splitlines():
        if " -> " in line[:200] and ": " in line:
            return line.split(": ", 1)[1]
    return text


def with_rest_snapshots(source: Path, target: Path) -> Path:
    """Copy a recording made by our recorder, whose REST depth snapshot is stored as ccxt
    parsed it (``"t": "snapshot"``), writing that snapshot back as the Binance REST body the
    venue replays (``"t": "http"``); other records are copied as they are. Returns ``target``."""
    with gzip.open(source, "rt") as src, gzip.open(target, "wt") as dst:
        for line in src:
            record = json.loads(line)
            if record.get("t") == "snapshot":
                book = record["data"]
                symbol = str(record.get("symbol") or "BTCUSDT").replace("/", "")
                body = {
                    "lastUpdateId": book["nonce"],
                    "bids": [[repr(p), repr(s)] for p, s in book["bids"]],
                    "asks": [[repr(p), repr(s)] for p, s in book["asks"]],
                }
                record = {
                    "t": "http",
                    "ts_ns": record["ts_ns"],
                    "url": f"https://api.binance.com/api/v3/depth?symbol={symbol}&limit=1000",
                    "data": json.dumps(body),
                }
            dst.write(json.dumps(record) + "\n")
    return target
