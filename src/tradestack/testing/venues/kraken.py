"""Kraken spot as a fake venue: REST ``AssetPairs``, the WS v1 subscribe flow and replay, and v2.

REST serves the recorded ``/0/public/AssetPairs`` body; nothing else was recorded (ccxt's
``/0/public/Assets`` call is turned off on the client with ``has.fetchCurrencies = False``), so
any other endpoint answers Kraken's ``EGeneral:Unknown method`` error.

WebSocket v1 (``/ws.kraken.com/``) answers as the recording did: the recorded ``systemStatus``
on connect and the recorded ``subscriptionStatus`` acknowledgement (with its channelID) per pair
and channel, then replays the recorded frames. Only the recorded book depth can be subscribed.
The venue keeps each pair's *true* book (recorded snapshot + every update replayed since, with
the strings as sent, truncated to the depth), so a subscription made after the recorded snapshot
went out (a resync, a reconnect) gets a fresh snapshot of the current book, as from Kraken. The
snapshot is sent and the channel joined while holding the connection's send lock, so no update
can slip in between. Each pair's recorded snapshot waits until ``book_subscribers`` connections
subscribed that pair's book, which makes every run start from the recorded snapshot. Faults
apply to v1 book *updates* (for Kraken a lost update shows up as a checksum mismatch).

WebSocket v2 (``/ws.kraken.com/v2``, ``v2=True``) is what ccxt's own ``watch_order_book``
speaks. Every recorded v1 book frame is translated to the v2 shape with the same values: the
price and volume strings become JSON number literals verbatim (``"0.000022900"`` →
``0.000022900``), pairs use v2 names (``XBT`` → ``BTC``, ``XDG`` → ``DOGE``), the update
checksum is the recorded ``c`` (v2's checksum is v1's algorithm over the same full-precision
decimals), the snapshot's checksum is computed from its top 10 levels, and the update
``timestamp`` is its latest level time. v2 frames are never faulted.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web

from tradestack.data.recordings import FrameKind, read_recording, seconds_to_ns
from tradestack.data.venues.kraken import book_checksum, frame_kind
from tradestack.testing.fake_venue import Connection, FakeVenue, TimelineFrame
from tradestack.testing.faults import FaultPlan

HOSTS = ("api.kraken.com", "ws.kraken.com")
V2_ASSETS = {"XBT": "BTC", "XDG": "DOGE"}
_COMPACT = (",", ":")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")


def v2_symbol(wsname: str) -> str:
    """v1 pair name → v2 symbol: ``XBT/CHF`` → ``BTC/CHF``."""
    return "/".join(V2_ASSETS.get(asset, asset) for asset in wsname.split("/"))


def iso_time(ts_ns: int) -> str:
    """Nanoseconds → ``2021-04-17T16:48:53.365913Z`` (Kraken v2 timestamps, microseconds)."""
    moment = datetime.fromtimestamp(ts_ns // 1_000_000_000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{ts_ns % 1_000_000_000 // 1000:06d}Z"


def v2_book_frame(
    kind: str,
    symbol: str,
    bids: list[list[str]],
    asks: list[list[str]],
    checksum: int,
    ts_ns: int | None = None,
) -> str:
    """A v2 ``book`` frame whose prices and quantities are the v1 strings as number literals."""

    def side(levels: list[list[str]]) -> str:
        for level in levels:
            if not (_NUMBER.fullmatch(level[0]) and _NUMBER.fullmatch(level[1])):
                raise ValueError(f"level {level!r} is not a pair of decimal strings")
        return ",".join(f'{{"price":{level[0]},"qty":{level[1]}}}' for level in levels)

    data = f'{{"symbol":{json.dumps(symbol)},"bids":[{side(bids)}],"asks":[{side(asks)}]'
    data += f',"checksum":{checksum}'
    if ts_ns is not None:
        data += f',"timestamp":"{iso_time(ts_ns)}"'
    return f'{{"channel":"book","type":"{kind}","data":[{data}}}]}}'


class _TrueBook:
    """One pair's book as the venue knows it, levels kept as the strings Kraken sent."""

    def __init__(self, depth: int, snapshot: dict[str, Any]) -> None:
        self.depth = depth
        self.sides: dict[str, dict[float, list[str]]] = {
            side: {float(level[0]): level[:3] for level in snapshot.get(key, [])}
            for side, key in (("a", "as"), ("b", "bs"))
        }

    def apply(self, parts: list[dict[str, Any]]) -> None:
        for part in parts:
            for side in ("a", "b"):
                levels = self.sides[side]
                for level in part.get(side, []):
                    if float(level[1]) == 0.0:
                        levels.pop(float(level[0]), None)
                    else:
                        levels[float(level[0])] = level[:3]
        for side in ("a", "b"):
            if len(self.sides[side]) > self.depth:
                keep = self.levels(side)
                self.sides[side] = {float(level[0]): level for level in keep}

    def levels(self, side: str, depth: int | None = None) -> list[list[str]]:
        prices = sorted(self.sides[side], reverse=side == "b")[: depth or self.depth]
        return [self.sides[side][price] for price in prices]

    def checksum(self) -> int:
        return book_checksum(
            ((p, v) for p, v, _ in self.levels("a", 10)),
            ((p, v) for p, v, _ in self.levels("b", 10)),
        )


class KrakenFakeVenue(FakeVenue):
    """Replays Kraken spot v1 recordings (book, trade, ticker connections of one session).

    ``pairs`` limits the replay to some v1 pairs (every pair whose book a client will subscribe
    must be in it, or its recorded snapshot waits ``gate_timeout_s``).
    """

    hosts = HOSTS

    def __init__(
        self,
        recordings: list[Path],
        *,
        asset_pairs: Path,
        pairs: list[str] | None = None,
        v2: bool = False,
        book_subscribers: int = 1,
        speed: float | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        self.asset_pairs = next(
            f.payload for f in read_recording(asset_pairs) if f.kind is FrameKind.REST
        )
        self.pairs = set(pairs) if pairs is not None else None
        self.v2 = v2
        self.book_subscribers = book_subscribers
        self.system_status = ""
        self.acks: dict[tuple[str, str], dict[str, Any]] = {}
        self.depths: dict[str, int] = {}
        self.true_books: dict[str, _TrueBook] = {}
        self.snapshots_served: list[tuple[str, int, int]] = []  # (pair, position, ws version)
        self._v1_pair: dict[str, str] = {}
        self._versions: dict[Connection, int] = {}
        self._book_subscriptions: dict[str, int] = {}
        self._clock_ns = 0
        super().__init__(self._timeline(recordings), speed=speed, faults=faults)
        self._v1_pair = {v2_symbol(pair): pair for _, pair in self.acks}

    # -- recording → timeline --------------------------------------------------------------
    def _timeline(self, recordings: list[Path]) -> list[TimelineFrame]:
        frames: list[TimelineFrame] = []
        heartbeat_conn = ""
        for path in recordings:
            for rec in read_recording(path):
                if rec.kind is not FrameKind.RECV:
                    continue
                message = json.loads(rec.payload)
                if isinstance(message, dict):
                    event = message.get("event")
                    if event == "systemStatus" and not self.system_status:
                        self.system_status = rec.payload
                    elif event == "subscriptionStatus" and message.get("status") == "subscribed":
                        if self.pairs is None or message["pair"] in self.pairs:
                            self.acks[(message["subscription"]["name"], message["pair"])] = message
                    elif event == "heartbeat" and heartbeat_conn in ("", rec.conn):
                        heartbeat_conn = rec.conn  # one connection's heartbeats, not three
                        frames.append(TimelineFrame(rec.ts_ns, ("heartbeat", ""), rec.payload))
                    continue
                name, pair = frame_kind(message)
                if not pair or (self.pairs is not None and pair not in self.pairs):
                    continue
                if not name.startswith("book"):
                    frames.append(TimelineFrame(rec.ts_ns, (name, pair), rec.payload))
                    continue
                snapshot = "as" in message[1] or "bs" in message[1]
                self.depths[pair] = int(name.split("-", 1)[1])
                frames.append(
                    TimelineFrame(
                        rec.ts_ns,
                        ("book", pair),
                        rec.payload,
                        eligible=not snapshot,
                        gate=f"book:{pair}" if snapshot else "",
                    )
                )
                if self.v2:
                    frames.append(TimelineFrame(rec.ts_ns, ("book.v2", pair), _to_v2(message)))
        frames.sort(key=lambda frame: frame.ts_ns)  # stable: a v2 copy follows its v1 frame
        return frames

    def on_frame(self, frame: TimelineFrame) -> None:
        self._clock_ns = frame.ts_ns
        kind, pair = frame.channel
        if kind != "book":
            return
        message = json.loads(frame.payload)
        parts = message[1:-2]
        if "as" in parts[0] or "bs" in parts[0]:
            self.true_books[pair] = _TrueBook(self.depths[pair], parts[0])
        elif pair in self.true_books:
            self.true_books[pair].apply(parts)

    # -- REST ------------------------------------------------------------------------------
    async def rest(self, request: web.Request, host: str, path: str) -> web.StreamResponse:
        if path.rstrip("/") == "/0/public/AssetPairs":
            return web.Response(text=self.asset_pairs, content_type="application/json")
        return web.json_response({"error": [f"EGeneral:Unknown method {path} (not recorded)"]})

    # -- WebSocket -------------------------------------------------------------------------
    async def on_ws_open(self, conn: Connection, host: str, path: str) -> None:
        version = 2 if path.rstrip("/").endswith("/v2") else 1
        self._versions[conn] = version
        if version == 1:
            await conn.send(self.system_status)
            return
        status = json.loads(self.system_status)
        data = {
            "api_version": "v2",
            "connection_id": status.get("connectionID"),
            "system": "online",
        }
        await conn.send(json.dumps({"channel": "status", "type": "update", "data": [data]}))

    async def on_ws_message(self, conn: Connection, text: str) -> None:
        try:
            request = json.loads(text)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError:
            await conn.send(json.dumps({"errorMessage": "Malformed request", "event": "error"}))
            return
        if self._versions.get(conn) == 2:
            await self._on_v2(conn, request)
        else:
            await self._on_v1(conn, request)

    async def _on_v1(self, conn: Connection, request: dict[str, Any]) -> None:
        event = request.get("event")
        reqid = {"reqid": request["reqid"]} if "reqid" in request else {}
        if event == "ping":
            await conn.send(json.dumps({"event": "pong", **reqid}))
            return
        if event not in ("subscribe", "unsubscribe"):
            await conn.send(json.dumps({"errorMessage": "Event(s) not found", "event": "error"}))
            return
        subscription = request.get("subscription") or {}
        name = str(subscription.get("name"))
        for pair in request.get("pair") or []:
            ack = self.acks.get((name, str(pair)))
            error = self._v1_error(conn, event, name, pair, subscription, ack)
            if error or ack is None:
                await conn.send(
                    json.dumps(
                        {
                            "errorMessage": error,
                            "event": "subscriptionStatus",
                            "pair": pair,
                            "status": "error",
                            "subscription": subscription,
                            **reqid,
                        }
                    )
                )
                continue
            channel = ("book" if name == "book" else str(name), pair)
            if event == "unsubscribe":
                conn.channels.discard(channel)
                reply = {**ack, "status": "unsubscribed", **reqid}
                await conn.send(json.dumps(reply, separators=_COMPACT))
                continue
            await conn.send(json.dumps({**ack, **reqid}, separators=_COMPACT))
            conn.channels.add(("heartbeat", ""))
            if name == "book":
                await self._join_book(conn, pair, channel, 1)
            else:
                self.subscribe(conn, {channel})

    def _v1_error(
        self,
        conn: Connection,
        event: str,
        name: Any,
        pair: Any,
        subscription: dict[str, Any],
        ack: dict[str, Any] | None,
    ) -> str:
        if ack is None:
            return f"Currency pair not supported {pair}"
        if name == "book" and subscription.get("depth", 10) != self.depths.get(pair):
            return f"Subscription depth not supported (recorded: {self.depths.get(pair)})"
        channel = ("book" if name == "book" else str(name), str(pair))
        subscribed = channel in conn.channels
        if event == "subscribe" and subscribed:
            return "Already subscribed"
        if event == "unsubscribe" and not subscribed:
            return "Subscription Not Found"
        return ""

    async def _on_v2(self, conn: Connection, request: dict[str, Any]) -> None:
        method = request.get("method")
        req_id = {"req_id": request["req_id"]} if "req_id" in request else {}
        times = {"time_in": iso_time(self._clock_ns), "time_out": iso_time(self._clock_ns)}
        if method == "ping":
            await conn.send(json.dumps({"method": "pong", **req_id, **times}))
            return
        params = request.get("params") or {}
        for symbol in params.get("symbol") or []:
            pair = self._v1_pair.get(symbol)
            error = ""
            if method != "subscribe" or params.get("channel") != "book":
                error = "the fake venue replays only the v2 book channel (subscribe)"
            elif pair is None or ("book", pair) not in self.acks:
                error = f"Currency pair not supported {symbol}"
            elif params.get("depth", 10) != self.depths.get(pair):
                error = f"Subscription depth not supported (recorded: {self.depths.get(pair)})"
            if error or pair is None:
                reply = {"error": error, "method": method, "success": False, **req_id, **times}
                await conn.send(json.dumps(reply))
                continue
            result = {
                "channel": "book",
                "depth": params["depth"],
                "snapshot": True,
                "symbol": symbol,
            }
            reply = {"method": "subscribe", "result": result, "success": True, **req_id, **times}
            await conn.send(json.dumps(reply))
            await self._join_book(conn, pair, ("book.v2", pair), 2)

    async def _join_book(
        self, conn: Connection, pair: str, channel: tuple[str, str], version: int
    ) -> None:
        """Join a book channel; if the recorded snapshot already went out, send the true book."""
        self._book_subscriptions[pair] = self._book_subscriptions.get(pair, 0) + 1
        async with conn.send_lock:
            truth = self.true_books.get(pair)
            self.subscribe(conn, {channel})
            if self._book_subscriptions[pair] >= self.book_subscribers:
                self.open_gate(f"book:{pair}")
            if truth is None or conn.closed:
                return
            self.snapshots_served.append((pair, self.position, version))
            if version == 1:
                ack = self.acks[("book", pair)]
                body = {"as": truth.levels("a"), "bs": truth.levels("b")}
                text = json.dumps(
                    [ack["channelID"], body, ack["channelName"], pair], separators=_COMPACT
                )
            else:
                bids = [level[:2] for level in truth.levels("b")]
                asks = [level[:2] for level in truth.levels("a")]
                text = v2_book_frame("snapshot", v2_symbol(pair), bids, asks, truth.checksum())
            try:  # Connection.send would wait for the lock held here
                await conn.ws.send_str(text)
                conn.sent += 1
            except (ConnectionError, RuntimeError):
                conn.closed = True


def _to_v2(message: list[Any]) -> str:
    """A recorded v1 book frame in v2 shape (see the module docstring)."""
    pair = message[-1]
    parts = message[1:-2]
    if "as" in parts[0] or "bs" in parts[0]:
        asks = [level[:2] for level in parts[0].get("as", [])]
        bids = [level[:2] for level in parts[0].get("bs", [])]
        checksum = book_checksum(((p, v) for p, v in asks[:10]), ((p, v) for p, v in bids[:10]))
        return v2_book_frame("snapshot", v2_symbol(pair), bids, asks, checksum)
    asks = [level[:2] for part in parts for level in part.get("a", [])]
    bids = [level[:2] for part in parts for level in part.get("b", [])]
    checksum = int(next(part["c"] for part in parts if "c" in part))
    ts_ns = max(
        seconds_to_ns(level[2]) for part in parts for side in "ab" for level in part.get(side, [])
    )
    return v2_book_frame("update", v2_symbol(pair), bids, asks, checksum, ts_ns)
