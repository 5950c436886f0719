"""A local exchange double: serves recorded REST bodies and replays recorded WebSocket frames.

One :class:`FakeVenueServer` listens on 127.0.0.1 and hosts any number of :class:`FakeVenue`
protocols. Clients reach a venue by URLs of the form ``http://127.0.0.1:PORT/<original host>/
<original path>``, so pointing a real client at it is a host swap (see ``ccxt_urls``). Each
venue owns a :class:`Timeline` of recorded frames that starts when the first client subscribes
and runs at the recorded pace times ``speed`` (``None`` = as fast as the sockets take them),
broadcasting each frame to the connections subscribed to its channel, through the
:class:`FaultPlan` of the venue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

from tradestack.testing.faults import Fault, FaultPlan

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TimelineFrame:
    """One recorded frame scheduled for replay.

    ``channel`` is what a client subscribes to (e.g. ``("depth", "BTCUSDT")``); ``eligible``
    marks frames the fault plan may touch (book diffs); ``gate`` names a condition the timeline
    waits for before sending it (e.g. "the snapshot for BTCUSDT was served").
    """

    ts_ns: int
    channel: tuple[str, str]
    payload: str
    eligible: bool = False
    gate: str = ""


@dataclass(eq=False)
class Connection:
    """One client WebSocket with its subscriptions and fault bookkeeping."""

    ws: web.WebSocketResponse
    number: int
    channels: set[tuple[str, str]] = field(default_factory=set)
    sent: int = 0
    held: str | None = None
    closed: bool = False
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, text: str) -> None:
        if self.closed:
            return
        async with self.send_lock:
            try:
                await self.ws.send_str(text)
                self.sent += 1
            except (ConnectionError, RuntimeError):
                self.closed = True


class FakeVenue(ABC):
    """A venue protocol over a recording: REST endpoints, WS subscribe flow, replay timeline."""

    #: original hosts this venue answers for, e.g. ``("api.binance.com", "fstream.binance.com")``
    hosts: tuple[str, ...] = ()

    def __init__(
        self,
        frames: list[TimelineFrame],
        *,
        speed: float | None = None,
        faults: FaultPlan | None = None,
        gate_timeout_s: float = 5.0,
        max_frames: int | None = None,
    ) -> None:
        self.frames = frames[:max_frames]
        self.speed = speed
        self.faults = faults or FaultPlan()
        self.gate_timeout_s = gate_timeout_s
        self.connections: list[Connection] = []
        self.started = asyncio.Event()
        self.finished = asyncio.Event()
        self.position = 0
        self._gates: dict[str, asyncio.Event] = {}
        self._task: asyncio.Task[None] | None = None
        self._connection_count = 0
        self.rest_requests: list[str] = []
        self.forced_disconnects = 0
        self.connections_at_disconnect = 0

    # -- to implement per venue -------------------------------------------------------------
    @abstractmethod
    async def rest(self, request: web.Request, host: str, path: str) -> web.StreamResponse:
        """Answer one REST request (path without the host prefix)."""

    @abstractmethod
    async def on_ws_message(self, conn: Connection, text: str) -> None:
        """Handle a client frame (subscribe, ping...); call :meth:`subscribe` to start a feed."""

    async def on_ws_open(self, conn: Connection, host: str, path: str) -> None:  # noqa: B027
        """Greet a new connection (some venues send a welcome frame)."""

    def on_frame(self, frame: TimelineFrame) -> None:  # noqa: B027
        """Advance the venue's own state (e.g. its true book) as a frame goes out."""

    # -- shared machinery -------------------------------------------------------------------
    @property
    def connections_opened(self) -> int:
        return self._connection_count

    def gate(self, name: str) -> asyncio.Event:
        return self._gates.setdefault(name, asyncio.Event())

    def open_gate(self, name: str) -> None:
        self.gate(name).set()

    def subscribe(self, conn: Connection, channels: set[tuple[str, str]]) -> None:
        conn.channels |= channels
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        self.started.set()
        loop = asyncio.get_running_loop()
        # paced on one schedule (wall start + recorded offset / speed), so the time spent
        # sending does not add up frame after frame; gates and injected delays shift it
        start_wall: float | None = None
        start_ts = 0
        eligible_index = 0
        try:
            for index, frame in enumerate(self.frames):
                self.position = index
                if frame.gate:
                    waited = loop.time()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.gate(frame.gate).wait(), self.gate_timeout_s)
                    if start_wall is not None:
                        start_wall += loop.time() - waited
                if self.speed is not None:
                    if start_wall is None:
                        start_wall, start_ts = loop.time(), frame.ts_ns
                    delay = start_wall + (frame.ts_ns - start_ts) / 1e9 / self.speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                if self.faults.delay_s:
                    await asyncio.sleep(self.faults.delay_s)
                    if start_wall is not None:
                        start_wall += self.faults.delay_s
                fault = Fault.NONE
                if frame.eligible:
                    fault = self.faults.decide(eligible_index) if self.faults.active else Fault.NONE
                    eligible_index += 1
                self.on_frame(frame)
                for conn in list(self.connections):
                    if frame.channel in conn.channels and not conn.closed:
                        await self._deliver(conn, frame, fault, eligible_index - 1)
                if self.speed is None:
                    await asyncio.sleep(0)
        finally:
            self.position = len(self.frames)
            self.finished.set()

    async def _deliver(
        self, conn: Connection, frame: TimelineFrame, fault: Fault, pos: int
    ) -> None:
        if fault is Fault.DROP:
            return
        if fault is Fault.REORDER and conn.held is None:
            conn.held = frame.payload
            return
        text = self.faults.malformed_frame(pos) if fault is Fault.MALFORMED else frame.payload
        await conn.send(text)
        if fault is Fault.DUPLICATE:
            await conn.send(text)
        if conn.held is not None and frame.eligible:
            held, conn.held = conn.held, None
            await conn.send(held)
        limits = self.faults.disconnect_after
        if conn.number < len(limits) and conn.sent >= limits[conn.number]:
            conn.closed = True
            self.forced_disconnects += 1
            self.connections_at_disconnect = self._connection_count
            await conn.ws.close(code=1011, message=b"forced disconnect")

    async def serve_ws(self, request: web.Request, host: str, path: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True, heartbeat=None, max_msg_size=0)
        await ws.prepare(request)
        conn = Connection(ws, self._connection_count)
        self._connection_count += 1
        self.connections.append(conn)
        try:
            await self.on_ws_open(conn, host, path)
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self.on_ws_message(conn, message.data)
                elif message.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                    break
        finally:
            conn.closed = True
            self.connections.remove(conn)
        return ws

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for conn in list(self.connections):
            conn.closed = True
            await conn.ws.close()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeVenueServer:
    """An aiohttp server on 127.0.0.1 routing ``/<original host>/<path>`` to its venue."""

    def __init__(self, *venues: FakeVenue, host: str = "127.0.0.1", port: int = 0) -> None:
        self.venues = venues
        self.host = host
        self.port = port
        self._by_host: dict[str, FakeVenue] = {h: v for v in venues for h in v.hosts}
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> FakeVenueServer:
        app = web.Application()
        app.router.add_route("*", "/{origin}/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        return self

    async def stop(self) -> None:
        for venue in self.venues:
            await venue.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeVenueServer:
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        origin = request.match_info["origin"]
        path = "/" + request.match_info["tail"]
        venue = self._by_host.get(origin)
        if venue is None:
            return web.json_response({"error": f"no fake venue serves host {origin!r}"}, status=404)
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await venue.serve_ws(request, origin, path)
        venue.rest_requests.append(f"{request.method} {path}?{request.query_string}")
        return await venue.rest(request, origin, path)
