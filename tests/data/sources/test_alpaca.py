"""AlpacaBarSource: the real alpaca-py client against the fake server replaying recorded bars."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tradestack.core.events import Bar
from tradestack.core.ids import InstrumentId
from tradestack.data.catalog.schema import BARS
from tradestack.data.sources.alpaca import AlpacaAuthError, AlpacaBarSource, BarStream
from tradestack.testing.alpaca_venue import (
    AlpacaRecording,
    FakeAlpacaServer,
    rfc3339_ns,
    serve_in_thread,
)

KEY, SECRET = "PKFAKEKEY", "fake-secret"
SINCE = datetime(2024, 1, 1, tzinfo=UTC)
MAP = {"AAPL": "BTC/USD", "MSFT": "LTC/USD"}


@pytest.fixture(scope="module")
def recording(shared_data: Path) -> AlpacaRecording:
    path = shared_data / "ws_messages/alpaca/ccxt_static_response_alpaca.json"
    return AlpacaRecording.from_ccxt_static(path)


@pytest.fixture
def server(recording: AlpacaRecording) -> Iterator[FakeAlpacaServer]:
    with serve_in_thread(FakeAlpacaServer(recording, page_size=1, symbol_map=MAP)) as running:
        yield running


def source(server: FakeAlpacaServer, secret: str = SECRET) -> AlpacaBarSource:
    return AlpacaBarSource(
        KEY,
        secret,
        data_url=server.data_url,
        stream_url=server.stream_url,
        reconnect_min_s=0.05,
        reconnect_max_s=0.2,
    )


def expected(bars: tuple[dict[str, Any], ...]) -> pl.DataFrame:
    ts = [rfc3339_ns(b["t"]) for b in bars]
    return pl.DataFrame(
        {
            "ts_event_ns": ts,
            "ts_recv_ns": ts,
            **{name: [float(b[k]) for b in bars] for name, k in zip(
                ("open", "high", "low", "close", "volume"), "ohlcv", strict=True
            )},
        },
        schema=BARS,
    )  # fmt: skip


def test_minute_bars_across_pages(server: FakeAlpacaServer, recording: AlpacaRecording) -> None:
    frames = source(server).fetch_bars(["AAPL", "MSFT", "NONE"], "1m", SINCE)
    assert frames["AAPL"].equals(expected(recording.minute["BTC/USD"]))
    assert frames["MSFT"].equals(expected(recording.minute["LTC/USD"]))
    assert frames["NONE"].equals(expected(recording.minute["BTC/USD"]))  # default re-keying
    # 7 bars at one bar per page: alpaca-py followed next_page_token six times.
    assert len(server.requests) == 7
    first, last = server.requests[0], server.requests[-1]
    assert first == {
        "symbols": "AAPL,MSFT,NONE",
        "timeframe": "1Min",
        "start": "2024-01-01T00:00:00+00:00",
        "limit": "10000",
        "adjustment": "raw",
        "feed": "iex",
    }
    assert "page_token" in last


def test_limit_window_and_daily(server: FakeAlpacaServer, recording: AlpacaRecording) -> None:
    alpaca = source(server)
    limited = alpaca.fetch_bars("AAPL", "1m", SINCE, limit=2)["AAPL"]
    assert limited.equals(expected(recording.minute["BTC/USD"][:2]))
    window = alpaca.fetch_bars(
        "AAPL", "1m", datetime(2024, 11, 2, 2, 0), datetime(2024, 11, 2, 2, 9)
    )["AAPL"]
    assert window.equals(expected(recording.minute["BTC/USD"][2:]))
    daily = alpaca.fetch_bars(["AAPL", "MSFT"], "1d", SINCE)
    assert daily["AAPL"].equals(expected(recording.daily["BTC/USD"]))
    assert daily["MSFT"].equals(expected(recording.daily["LTC/USD"]))
    events = alpaca.fetch_bar_events("MSFT", "1d", SINCE)
    bar = recording.daily["LTC/USD"][0]
    assert events[0] == Bar(
        InstrumentId("MSFT", "alpaca"),
        rfc3339_ns(bar["t"]),
        rfc3339_ns(bar["t"]),
        bar["o"],
        bar["h"],
        bar["l"],
        bar["c"],
        bar["v"],
    )


def test_credentials(
    server: FakeAlpacaServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(AlpacaAuthError, match=r"HTTP 403.*forbidden") as err:
        source(server, "wrong-secret").fetch_bars("AAPL", "1m", SINCE)
    assert "wrong-secret" not in str(err.value)
    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    from_env = AlpacaBarSource(data_url=server.data_url)
    assert from_env.fetch_bars("AAPL", "1d", SINCE)["AAPL"].height == 2
    for text in (repr(from_env), str(from_env), repr(from_env.stream_bars(["AAPL"]))):
        assert KEY not in text and SECRET not in text
    monkeypatch.delenv("APCA_API_SECRET_KEY")
    with pytest.raises(AlpacaAuthError, match="APCA_API_SECRET_KEY"):
        AlpacaBarSource()
    assert KEY not in caplog.text and SECRET not in caplog.text


async def collect(stream: BarStream, n: int) -> list[tuple[Bar, int, int]]:
    """``n`` bars, each with time_ns() just before waiting for it and just after."""
    out = []
    for _ in range(n):
        before = time.time_ns()
        bar = await asyncio.wait_for(anext(stream), 5)
        out.append((bar, before, time.time_ns()))
    return out


def stream_timeline(recording: AlpacaRecording) -> list[tuple[int, str, dict[str, Any]]]:
    rows = [(rfc3339_ns(b["t"]), s, b) for s in MAP for b in recording.minute[MAP[s]]]
    return sorted(rows, key=lambda row: (row[0], row[1]))


def check_stream(got: list[tuple[Bar, int, int]], recording: AlpacaRecording) -> None:
    timeline = stream_timeline(recording)
    assert len(got) == len(timeline) == 4
    for (bar, before, after), (ts, symbol, raw) in zip(got, timeline, strict=True):
        assert bar.instrument_id == InstrumentId(symbol, "alpaca")
        assert bar.ts_event_ns == ts
        assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
            raw["o"], raw["h"], raw["l"], raw["c"], raw["v"]
        )  # fmt: skip
        assert before - 10**9 < bar.ts_recv_ns <= after
    received = [bar.ts_recv_ns for bar, _, _ in got]
    assert received == sorted(received)


def test_stream_in_order_then_idle_reconnect(
    recording: AlpacaRecording, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    async def main() -> tuple[list[tuple[Bar, int, int]], int, list[dict[str, Any]]]:
        async with (
            FakeAlpacaServer(recording, symbol_map=MAP) as server,
            source(server).stream_bars(["AAPL", "MSFT"]) as stream,
        ):
            got = await collect(stream, 4)
            await server.disconnect_streams()  # a drop with no data in flight
            deadline = time.monotonic() + 5
            while len(server.subscriptions) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
            return got, stream.connections, server.subscriptions

    got, connections, subscriptions = asyncio.run(main())
    check_stream(got, recording)
    assert connections == 2
    assert subscriptions == [{"action": "subscribe", "bars": ["AAPL", "MSFT"]}] * 2
    assert KEY not in caplog.text and SECRET not in caplog.text
    # websockets would log the msgpack auth frame at DEBUG, its last bytes in hex ("... 65 2d
    # 73 65 63 72 65 74" = "e-secret"): frame logging is off for this connection.
    assert SECRET.encode()[-6:].hex(" ") not in caplog.text
    assert not [r for r in caplog.records if r.getMessage().startswith(("> BINARY", "> TEXT"))]
    assert any(r.getMessage().startswith("connected to ws://127.0.0.1") for r in caplog.records)


def test_stream_resumes_after_forced_disconnect(recording: AlpacaRecording) -> None:
    async def main() -> tuple[list[tuple[Bar, int, int]], int, int]:
        async with (
            FakeAlpacaServer(recording, symbol_map=MAP, drop_after_bars=[2]) as server,
            source(server).stream_bars(["AAPL", "MSFT"]) as stream,
        ):
            got = await collect(stream, 4)
            return got, stream.connections, len(server.subscriptions)

    got, connections, subscribes = asyncio.run(main())
    check_stream(got, recording)  # bars 1-2 on the first connection, 3-4 after reconnecting
    assert (connections, subscribes) == (2, 2)


def test_stream_wrong_key_is_final(recording: AlpacaRecording) -> None:
    async def main() -> tuple[int, int]:
        async with (
            FakeAlpacaServer(recording, symbol_map=MAP) as server,
            source(server, "wrong-secret").stream_bars(["AAPL"]) as stream,
        ):
            with pytest.raises(AlpacaAuthError, match="rejected the API key: auth failed"):
                await asyncio.wait_for(anext(stream), 5)
            with pytest.raises(AlpacaAuthError):  # stays ended
                await asyncio.wait_for(anext(stream), 5)
            return server.connections, stream.connections

    assert asyncio.run(main()) == (1, 0)  # no retry with a rejected key


def test_malformed_and_overflowing_bars_are_counted() -> None:
    """The handler alpaca-py calls: bad messages are counted and dropped, overflow drops oldest."""

    async def main() -> tuple[int, int, list[float]]:
        bars = AlpacaBarSource(KEY, SECRET, queue_size=2).stream_bars(["AAPL"])  # not started
        good = {"T": "b", "S": "AAPL", "t": "2024-07-18T05:02:00Z", "v": 1.0}
        await bars._on_bar({**good, "o": 1.0, "h": 1.0, "l": 1.0, "c": "x"})
        await bars._on_bar({**good, "o": 1.0, "h": 1.0, "l": 1.0})
        await bars._on_bar({**good, "t": "garbage", "o": 1.0, "h": 1.0, "l": 1.0, "c": 1})
        for price in (1.0, 2.0, 3.0):
            await bars._on_bar({**good, "o": price, "h": price, "l": price, "c": price})
        closes = [bars._queue.get_nowait().close for _ in range(2)]
        return bars.malformed, bars.dropped, closes

    assert asyncio.run(main()) == (3, 1, [2.0, 3.0])
