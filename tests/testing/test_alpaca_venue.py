"""The fake Alpaca server speaks Alpaca's REST and WebSocket protocol with recorded bars."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import requests

from tradestack.testing.alpaca_venue import (
    AlpacaRecording,
    FakeAlpacaServer,
    rfc3339_ns,
    serve_in_thread,
)

RECORDING = "ws_messages/alpaca/ccxt_static_response_alpaca.json"
KEYS = {"APCA-API-KEY-ID": "PKFAKEKEY", "APCA-API-SECRET-KEY": "fake-secret"}


@pytest.fixture(scope="module")
def raw(shared_data: Path) -> dict[str, Any]:
    methods: dict[str, Any] = json.loads((shared_data / RECORDING).read_text())["methods"]
    return methods


@pytest.fixture(scope="module")
def recording(shared_data: Path) -> AlpacaRecording:
    return AlpacaRecording.from_ccxt_static(shared_data / RECORDING)


def test_recording_holds_every_recorded_bar_verbatim(
    raw: dict[str, Any], recording: AlpacaRecording
) -> None:
    ohlcv = raw["fetchOHLCV"][0]["httpResponse"]["bars"]["BTC/USD"]
    early, late = (
        call["httpResponse"]["snapshots"] for call in raw["fetchTicker"] + raw["fetchTickers"]
    )
    assert recording.minute["BTC/USD"] == (
        *ohlcv,
        early["BTC/USD"]["minuteBar"],
        late["BTC/USD"]["minuteBar"],
    )
    assert recording.minute["LTC/USD"] == (late["LTC/USD"]["minuteBar"],)
    # The 2024-11-01 daily bar was still forming: the later snapshot's version is served.
    assert early["BTC/USD"]["dailyBar"]["c"] != late["BTC/USD"]["dailyBar"]["c"]
    assert recording.daily["BTC/USD"] == (
        late["BTC/USD"]["prevDailyBar"],
        late["BTC/USD"]["dailyBar"],
    )
    assert [b["t"] for b in recording.daily["LTC/USD"]] == [
        "2024-10-31T05:00:00Z",
        "2024-11-01T05:00:00Z",
    ]


def test_rfc3339() -> None:
    assert rfc3339_ns("2024-07-18T05:02:00Z") == 1_721_278_920 * 10**9
    assert rfc3339_ns("2024-07-18T05:02:00.5Z") == 1_721_278_920_500_000_000
    assert rfc3339_ns("2024-07-18T01:02:00.000000001-04:00") == 1_721_278_920 * 10**9 + 1
    assert rfc3339_ns("2024-07-18") == 1_721_260_800 * 10**9
    with pytest.raises(ValueError, match="not an RFC 3339"):
        rfc3339_ns("yesterday")


def test_rest_endpoint(recording: AlpacaRecording) -> None:
    server = FakeAlpacaServer(recording, page_size=2, symbol_map={"MSFT": "LTC/USD"})
    with serve_in_thread(server):
        url = f"{server.data_url}/v2/stocks/bars"

        def get(headers: dict[str, str] = KEYS, **query: str) -> requests.Response:
            return requests.get(url, params=query, headers=headers, timeout=5)

        bad_key = get({**KEYS, "APCA-API-SECRET-KEY": "wrong"}, symbols="AAPL", timeframe="1Min")
        assert (bad_key.status_code, bad_key.json()) == (403, {"message": "forbidden."})
        first = get(symbols="MSFT,AAPL", timeframe="1Min").json()
        assert first["bars"] == {"AAPL": list(recording.minute["BTC/USD"][:2])}
        second = get(symbols="AAPL,MSFT", timeframe="1Min", page_token=first["next_page_token"])
        assert second.json() == {
            "bars": {
                "AAPL": [recording.minute["BTC/USD"][2]],
                "MSFT": [recording.minute["LTC/USD"][0]],
            },
            "next_page_token": None,
        }
        window = get(
            symbols="AAPL", timeframe="1Min", start="2024-11-02T01:59:00Z", end="2024-11-02"
        ).json()
        assert window == {"bars": {}, "next_page_token": None}
        window = get(symbols="AAPL", timeframe="1Min", start="2024-11-02T01:59:00Z", limit="1")
        assert window.json()["bars"]["AAPL"] == [recording.minute["BTC/USD"][1]]
        assert window.json()["next_page_token"] is not None
        desc = get(symbols="AAPL", timeframe="1Day", sort="desc").json()["bars"]["AAPL"]
        assert desc == list(recording.daily["BTC/USD"][::-1])
        for query, status, message in [
            ({"symbols": "AAPL", "timeframe": "5Min"}, 422, "no recorded bars for timeframe"),
            ({"timeframe": "1Min"}, 400, "missing symbols"),
            ({"symbols": "AAPL", "timeframe": "1Min", "page_token": "xyz"}, 400, "invalid page"),
            ({"symbols": "AAPL", "timeframe": "1Min", "limit": "0"}, 400, "invalid limit"),
        ]:
            answer = get(**query)
            assert answer.status_code == status
            assert message in answer.json()["message"]


async def _ws_session(server: FakeAlpacaServer, msgpack: bool) -> list[Any]:
    """Speak the protocol by hand; return every message the server sent."""
    headers = {"Content-Type": "application/msgpack"} if msgpack else {}
    seen: list[Any] = []
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(server.stream_url, headers=headers) as ws,
    ):

        async def send(payload: dict[str, Any]) -> None:
            if msgpack:
                await ws.send_bytes(msgspec.msgpack.encode(payload))
            else:
                await ws.send_str(json.dumps(payload))

        async def receive() -> list[Any]:
            frame = await asyncio.wait_for(ws.receive(), 5)
            decoded: list[Any] = (
                msgspec.msgpack.decode(frame.data) if msgpack else json.loads(frame.data)
            )
            seen.extend(decoded)
            return decoded

        await receive()
        await send({"action": "subscribe", "bars": ["AAPL"]})
        await receive()
        await send({"action": "auth", "key": "PKFAKEKEY", "secret": "fake-secret"})
        await receive()
        await send({"action": "subscribe", "bars": ["AAPL"], "trades": []})
        for _ in range(4):
            await receive()
    return seen


@pytest.mark.parametrize("msgpack", [False, True], ids=["json", "msgpack"])
def test_stream_protocol(recording: AlpacaRecording, msgpack: bool) -> None:
    async def main() -> list[Any]:
        async with FakeAlpacaServer(recording) as server:
            return await _ws_session(server, msgpack)

    seen = asyncio.run(main())
    assert seen[:3] == [
        {"T": "success", "msg": "connected"},
        {"T": "error", "code": 401, "msg": "not authenticated"},
        {"T": "success", "msg": "authenticated"},
    ]
    assert seen[3]["T"] == "subscription" and seen[3]["bars"] == ["AAPL"]
    assert seen[3]["trades"] == []
    bars = seen[4:]
    recorded = recording.minute["BTC/USD"]
    assert [b["T"] for b in bars] == ["b"] * 3 and {b["S"] for b in bars} == {"AAPL"}
    for sent, bar in zip(bars, recorded, strict=True):
        assert {k: v for k, v in sent.items() if k not in ("T", "S", "t")} == {
            k: v for k, v in bar.items() if k != "t"
        }
        # msgpack sends Alpaca's timestamp extension; msgspec decodes it to a datetime.
        stamp = sent["t"] if not msgpack else sent["t"].isoformat().replace("+00:00", "Z")
        assert stamp == bar["t"]


def test_stream_rejects_wrong_key(recording: AlpacaRecording) -> None:
    async def main() -> list[Any]:
        async with (
            FakeAlpacaServer(recording) as server,
            aiohttp.ClientSession() as session,
            session.ws_connect(server.stream_url) as ws,
        ):
            await ws.receive()
            await ws.send_str(json.dumps({"action": "auth", "key": "PKFAKEKEY", "secret": "x"}))
            reply = json.loads((await ws.receive()).data)
            closing = await ws.receive()
            return [reply, closing.type, ws.close_code]

    reply, closing, code = asyncio.run(main())
    assert reply == [{"T": "error", "code": 402, "msg": "auth failed"}]
    assert closing is aiohttp.WSMsgType.CLOSE and code == 1008
