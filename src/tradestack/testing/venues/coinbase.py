"""Coinbase Advanced Trade as a fake venue: recorded products body, WS subscribe flow, replay.

REST: ``GET /api/v3/brokerage/market/products`` answers the recorded body verbatim. ccxt's
``load_markets`` also asks for ``product_type=FUTURE`` products (it tolerates a failure there)
and, unless ``has['fetchCurrencies']`` is switched off, for the v2 currency endpoints; none of
those were recorded, so they get a 404 and the tests switch currencies off.

WebSocket: ``subscribe``/``unsubscribe`` per channel and products, answered by a
``subscriptions`` frame listing the connection's subscriptions (the recorded shape). Recorded
frames are replayed by channel and product (frames are routed by the first product they name;
the recording has one product per frame). The recorded ``l2_data`` snapshot of a product waits
until a client subscribes ``level2`` for it; a client that subscribes after that (a resync, a
reconnect) gets a snapshot synthesised from the venue's true book (recorded snapshot + every
update replayed since, original decimal strings), stamped with the ``timestamp`` of the last
recorded ``l2_data`` frame it includes. Frames that book already holds are not sent again to
that connection. As recorded, snapshots precede the ``subscriptions`` ack; every ``level2``
subscribe gets one, even for a product the connection already has (the adapter unsubscribes
first anyway).

``sequence_num``: Coinbase numbers the messages of each connection. The venue does the same:
each frame sent on a connection gets the connection's next number, which is the recorded one
whenever the connection receives exactly the recorded message set (those frames go out byte
for byte); otherwise only the digits of ``"sequence_num":N`` are rewritten, the rest of the
frame is verbatim. Synthesised frames (acks, snapshots) take numbers too. A fault plan applies
to ``l2_data`` update frames *after* numbering, so a dropped frame is a hole in the numbering,
as when the exchange loses a message. ``losses`` and ``duplicates`` list ``(connection, number)``.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web

from tradestack.data.recordings import FrameKind, read_recording
from tradestack.testing.fake_venue import Connection, FakeVenue, TimelineFrame
from tradestack.testing.faults import Fault, FaultPlan

HOSTS = ("api.coinbase.com", "advanced-trade-ws.coinbase.com")
PRODUCTS_PATH = "/api/v3/brokerage/market/products"
_SEQ = re.compile(r'"sequence_num":\s*(\d+)')
_TIMESTAMP = re.compile(r'"timestamp":\s*"([^"]+)"')
_CHANNELS = {
    "l2_data": "level2",
    "ticker": "ticker",
    "ticker_batch": "ticker_batch",
    "market_trades": "market_trades",
    "candles": "candles",
    "heartbeats": "heartbeats",
}


def _compact(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _first_product(frame: dict[str, Any]) -> str:
    for event in frame.get("events", []):
        if "product_id" in event:
            return str(event["product_id"])
        for key in ("tickers", "trades", "candles"):
            for item in event.get(key) or []:
                return str(item.get("product_id", ""))
    return ""


class _TrueBook:
    """One product's book as the exchange has it, levels kept as their original strings."""

    def __init__(self) -> None:
        # price -> the level's '"price_level":"..","new_quantity":".."' JSON, original strings
        self.sides: dict[str, dict[float, str]] = {"bid": {}, "offer": {}}
        self.timestamp = ""

    def apply(self, event: dict[str, Any], timestamp: str) -> None:
        if event["type"] == "snapshot":
            for side in self.sides.values():
                side.clear()
        for level in event["updates"]:
            side = self.sides[level["side"]]
            price = float(level["price_level"])
            if float(level["new_quantity"]) == 0.0:
                side.pop(price, None)
            else:
                side[price] = (
                    f'"price_level":{json.dumps(level["price_level"])},'
                    f'"new_quantity":{json.dumps(level["new_quantity"])}'
                )
        self.timestamp = timestamp

    def snapshot_text(self, product: str) -> str:
        """A compact ``l2_data`` snapshot frame (``sequence_num`` 0, to be numbered)."""
        stamp = json.dumps(self.timestamp)
        levels = [
            f'{{"side":"{side}","event_time":{stamp},{self.sides[side][price]}}}'
            for side, descending in (("bid", True), ("offer", False))
            for price in sorted(self.sides[side], reverse=descending)
        ]
        return (
            f'{{"channel":"l2_data","timestamp":{stamp},"sequence_num":0,"events":[{{"type":'
            f'"snapshot","product_id":{json.dumps(product)},"updates":[{",".join(levels)}]}}]}}'
        )


class CoinbaseFakeVenue(FakeVenue):
    """Replays a cryptofeed v3 Coinbase Advanced Trade recording to real clients."""

    hosts = HOSTS

    def __init__(
        self, recording: Path, *, speed: float | None = None, faults: FaultPlan | None = None
    ) -> None:
        self.products_body: str | None = None
        self.true_books: dict[str, _TrueBook] = {}
        self.snapshots_synthesised: list[tuple[int, str, int]] = []  # (connection, product, pos)
        self.losses: list[tuple[int, int]] = []
        self.duplicates: list[tuple[int, int]] = []
        self.verbatim = 0  # recorded frames sent byte for byte
        self.renumbered = 0  # recorded frames sent with their sequence_num rewritten
        self._next_seq: dict[int, int] = {}
        self._included: dict[tuple[int, str], int] = {}
        self._applied = -1
        self._clock = ""
        super().__init__(self._timeline(recording), speed=speed, faults=faults)

    def _timeline(self, recording: Path) -> list[TimelineFrame]:
        frames: list[TimelineFrame] = []
        for rec in read_recording(recording):
            if rec.kind is FrameKind.REST and PRODUCTS_PATH in rec.url:
                self.products_body = rec.payload
            if rec.kind is not FrameKind.RECV:
                continue
            frame = json.loads(rec.payload)
            kind = _CHANNELS.get(str(frame.get("channel")))
            if kind is None:  # "subscriptions" acks are answered per connection
                continue
            if not self._clock:
                self._clock = str(frame.get("timestamp", ""))
            product = _first_product(frame)
            types = {e.get("type") for e in frame.get("events", [])}
            book = kind == "level2"
            frames.append(
                TimelineFrame(
                    rec.ts_ns,
                    (kind, product),
                    rec.payload,
                    eligible=book and types == {"update"},
                    gate=f"level2:{product}" if book and "snapshot" in types else "",
                )
            )
        return frames

    # -- state of the exchange ---------------------------------------------------------------
    def on_frame(self, frame: TimelineFrame) -> None:
        self._applied = self.position
        kind, product = frame.channel
        stamp = _TIMESTAMP.search(frame.payload, 0, 200)
        self._clock = stamp[1] if stamp else self._clock
        if kind == "level2":
            truth = self.true_books.setdefault(product, _TrueBook())
            for event in json.loads(frame.payload)["events"]:
                truth.apply(event, self._clock)

    # -- numbering and delivery ----------------------------------------------------------------
    def _numbered(self, conn: Connection, payload: str) -> tuple[str, int]:
        """The frame with the connection's next ``sequence_num`` (the payload itself if equal)."""
        number = self._next_seq.get(conn.number, 0)
        self._next_seq[conn.number] = number + 1
        match = _SEQ.search(payload, 0, 200)
        if match is None or int(match[1]) == number:
            return payload, number
        return f"{payload[: match.start(1)]}{number}{payload[match.end(1) :]}", number

    async def _deliver(
        self, conn: Connection, frame: TimelineFrame, fault: Fault, pos: int
    ) -> None:
        kind, product = frame.channel
        if kind == "level2" and self._included.get((conn.number, product), -1) >= self.position:
            return  # already part of the snapshot this connection was sent
        text, number = self._numbered(conn, frame.payload)
        if text is frame.payload:
            self.verbatim += 1
        else:
            self.renumbered += 1
        held = fault is Fault.REORDER and conn.held is None
        if fault in (Fault.DROP, Fault.MALFORMED) or held:
            self.losses.append((conn.number, number))
        elif fault is Fault.DUPLICATE:
            self.duplicates.append((conn.number, number))
        await super()._deliver(conn, replace(frame, payload=text), fault, pos)

    # -- protocol ----------------------------------------------------------------------------
    async def rest(self, request: web.Request, host: str, path: str) -> web.StreamResponse:
        if path == PRODUCTS_PATH and "product_type" not in request.query:
            if self.products_body is None:
                return _error(404, "no products body in this recording")
            return web.Response(text=self.products_body, content_type="application/json")
        return _error(404, f"{request.method} {path}?{request.query_string} was not recorded")

    async def on_ws_message(self, conn: Connection, text: str) -> None:
        try:
            request = json.loads(text)
            action = request["type"]
            channel = str(request["channel"])
            products = [str(p) for p in request.get("product_ids") or []]
        except (ValueError, KeyError, TypeError):
            await conn.send(_compact({"type": "error", "message": "Failure to parse message"}))
            return
        if channel == "heartbeats":
            products = [""]
        # Everything below up to _send_all runs without yielding: the frames are numbered in
        # the order they are sent, before any later timeline frame.
        outgoing: list[str] = []
        if action == "subscribe":
            if channel == "level2":
                for product in products:
                    outgoing.extend(self._level2_snapshot(conn, product))
            self.subscribe(conn, {(channel, p) for p in products})
        elif action == "unsubscribe":
            conn.channels -= {
                c for c in conn.channels if c[0] == channel and (not products or c[1] in products)
            }
        else:
            await conn.send(_compact({"type": "error", "message": f"unknown type {action!r}"}))
            return
        outgoing.append(self._numbered(conn, _compact(self._subscriptions_frame(conn)))[0])
        await _send_all(conn, outgoing)

    def _level2_snapshot(self, conn: Connection, product: str) -> list[str]:
        truth = self.true_books.get(product)
        if truth is None:  # the recorded snapshot is still ahead in the timeline
            self.open_gate(f"level2:{product}")
            return []
        self._included[(conn.number, product)] = self._applied
        self.snapshots_synthesised.append((conn.number, product, self._applied))
        return [self._numbered(conn, truth.snapshot_text(product))[0]]

    def _subscriptions_frame(self, conn: Connection) -> dict[str, Any]:
        subscriptions: dict[str, list[str]] = {}
        for channel, product in sorted(conn.channels):
            subscriptions.setdefault(channel, []).append(product or channel)
        return {
            "channel": "subscriptions",
            "timestamp": self._clock,
            "sequence_num": 0,
            "events": [{"subscriptions": subscriptions}],
        }


async def _send_all(conn: Connection, texts: list[str]) -> None:
    """Send frames back to back: no timeline frame can slip between them."""
    async with conn.send_lock:
        for text in texts:
            if conn.closed:
                return
            try:
                await conn.ws.send_str(text)
                conn.sent += 1
            except (ConnectionError, RuntimeError):
                conn.closed = True


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": "NOT_FOUND", "message": message}, status=status)
