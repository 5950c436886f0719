"""The fake Alpaca trading API, through plain HTTP (aiohttp) and through alpaca-py's real
``TradingClient``: Alpaca's paths, field names, statuses and error bodies, deterministic fills
and seeded faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest

from tradestack.testing.alpaca_trading import FakeAlpacaTrading
from tradestack.testing.alpaca_venue import AlpacaRecording
from tradestack.testing.venues.binance_trading import TradingFaults

KEYS = {"APCA-API-KEY-ID": "PKFAKEKEY", "APCA-API-SECRET-KEY": "fake-secret"}


@asynccontextmanager
async def http(venue: FakeAlpacaTrading) -> AsyncIterator[Any]:
    """``call(method, path, json=..., params=...) -> (status, body, headers)`` on the fake."""
    async with aiohttp.ClientSession(headers=KEYS) as session:

        async def call(method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
            async with session.request(method, venue.base_url + path, **kwargs) as response:
                body = await response.json() if response.status != 204 else None
                return response.status, body, response.headers

        yield call


def order(symbol: str, side: str, qty: str, coid: str, **extra: str) -> dict[str, str]:
    return {
        "symbol": symbol,
        "qty": qty,
        "side": side,
        "type": "limit" if "limit_price" in extra else "market",
        "time_in_force": "day",
        "client_order_id": coid,
        **extra,
    }


def test_orders_fills_positions_and_errors_over_plain_http() -> None:
    async def run() -> None:
        async with FakeAlpacaTrading(lot_size=Decimal(4)) as venue, http(venue) as call:
            venue.set_price("AAPL", "187.23")
            venue.set_price("MSFT", "0.5")
            status, body, _ = await call("GET", "/v2/account", headers={"APCA-API-KEY-ID": "x"})
            assert (status, body) == (
                401,
                {"code": 40110000, "message": "request is not authorized"},
            )

            status, body, _ = await call(
                "POST", "/v2/orders", json=order("AAPL", "buy", "10", "m1")
            )
            assert status == 200
            assert (body["status"], body["filled_qty"], body["filled_avg_price"]) == (
                "filled",
                "10",
                "187.23",
            )
            assert body["client_order_id"] == "m1" and body["asset_class"] == "us_equity"
            status, dup, _ = await call("POST", "/v2/orders", json=order("AAPL", "buy", "1", "m1"))
            assert (status, dup) == (
                422,
                {"code": 40010001, "message": "client_order_id must be unique"},
            )
            assert venue.duplicate_attempts == 1 and venue.orders_created == 1

            _, fills, _ = await call("GET", "/v2/account/activities/FILL")
            assert [f["qty"] for f in fills] == ["2", "4", "4"]  # newest first, lots of 4
            assert [f["type"] for f in fills] == ["fill", "partial_fill", "partial_fill"]
            assert {f["order_id"] for f in fills} == {body["id"]}
            assert all(f["id"].startswith("20240718133000") and "::" in f["id"] for f in fills)
            params = {"direction": "asc", "page_size": "2"}
            _, first, _ = await call("GET", "/v2/account/activities/FILL", params=params)
            params["page_token"] = first[-1]["id"]
            _, rest, _ = await call("GET", "/v2/account/activities/FILL", params=params)
            assert first + rest == fills[::-1]

            # a resting limit order: listed open, filled in part when the price comes down
            resting = order("AAPL", "buy", "5", "l1", limit_price="186.5")
            status, body, _ = await call("POST", "/v2/orders", json=resting)
            assert (status, body["status"], body["limit_price"]) == (200, "accepted", "186.5")
            _, listed, _ = await call("GET", "/v2/orders", params={"symbols": "AAPL,MSFT"})
            assert [(o["client_order_id"], o["status"]) for o in listed] == [("l1", "new")]
            assert venue.set_price("AAPL", "186.8") == 0
            assert venue.set_price("AAPL", "186.0", volume=Decimal(2)) == 1
            _, got, _ = await call(
                "GET", "/v2/orders:by_client_order_id", params={"client_order_id": "l1"}
            )
            assert (got["status"], got["filled_qty"], got["filled_avg_price"]) == (
                "partially_filled",
                "2",
                "186.5",
            )
            status, none, _ = await call("DELETE", f"/v2/orders/{got['id']}")
            assert (status, none) == (204, None)
            status, again, _ = await call("DELETE", f"/v2/orders/{got['id']}")
            assert status == 422 and again["code"] == 42210000
            _, closed, _ = await call("GET", "/v2/orders", params={"status": "closed"})
            assert [(o["client_order_id"], o["status"]) for o in closed] == [
                ("l1", "canceled"),
                ("m1", "filled"),
            ]
            _, only, _ = await call(
                "GET", "/v2/account/activities/FILL", params={"order_id": got["id"]}
            )
            assert [(f["qty"], f["price"], f["order_status"]) for f in only] == [
                ("2", "186.5", "partially_filled")
            ]

            missing = "00000000-0000-0000-0000-000000000000"
            for path in (
                f"/v2/orders/{missing}",
                "/v2/orders:by_client_order_id?client_order_id=x",
            ):
                status, body, _ = await call("GET", path)
                assert (status, body) == (404, {"code": 40410000, "message": "order not found"})

            refusals = [
                (order("TSLA", "buy", "1", "r1"), 422, 'asset "TSLA" not found'),
                (order("AAPL", "buy", "1", "r2", limit_price="186.555"), 422, "sub-penny"),
                (order("MSFT", "buy", "1", "r3", limit_price="0.12345"), 422, "sub-penny"),
                ({**order("AAPL", "buy", "0.5", "r4"), "time_in_force": "gtc"}, 422, "DAY"),
                (order("AAPL", "buy", "10000", "r5"), 403, "insufficient buying power"),
            ]
            for request, want_status, words in refusals:
                status, body, _ = await call("POST", "/v2/orders", json=request)
                assert status == want_status and words in body["message"], request
            assert venue.orders_created == 2

            await call("POST", "/v2/orders", json=order("AAPL", "sell", "20", "s1"))
            _, positions, _ = await call("GET", "/v2/positions")
            assert [(p["symbol"], p["qty"], p["side"]) for p in positions] == [
                ("AAPL", "-8", "short")
            ]
            assert venue.position("AAPL") == Decimal(-8)

    asyncio.run(run())


def test_alpaca_py_parses_every_answer() -> None:
    async def run() -> None:
        async with FakeAlpacaTrading() as venue:
            venue.set_price("AAPL", "100")
            client = TradingClient(venue.key_id, venue.secret_key, url_override=venue.base_url)

            def session() -> None:
                market = MarketOrderRequest(
                    symbol="AAPL",
                    qty=3,
                    side=OrderSide.BUY,
                    time_in_force=TimeInForce.GTC,
                    client_order_id="c1",
                )
                filled = client.submit_order(market)
                assert filled.status is OrderStatus.FILLED and filled.filled_qty == "3"
                limit = LimitOrderRequest(
                    symbol="AAPL",
                    qty=2,
                    side=OrderSide.SELL,
                    time_in_force=TimeInForce.GTC,
                    limit_price=101.25,
                    client_order_id="c2",
                )
                rests = client.submit_order(limit)
                assert rests.status is OrderStatus.ACCEPTED
                assert client.get_order_by_client_id("c2").status is OrderStatus.NEW
                assert client.get_order_by_id(rests.id).client_order_id == "c2"
                assert [o.client_order_id for o in client.get_orders()] == ["c2"]
                every = client.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
                assert [o.client_order_id for o in every] == ["c2", "c1"]
                (position,) = client.get_all_positions()
                assert (position.symbol, position.qty, position.avg_entry_price) == (
                    "AAPL",
                    "3",
                    "100",
                )
                assert client.get_account().cash == "99700"
                with pytest.raises(APIError) as caught:
                    client.submit_order(market)
                assert (caught.value.status_code, caught.value.code) == (422, 40010001)
                client.cancel_order_by_id(rests.id)
                assert client.get_order_by_id(rests.id).status is OrderStatus.CANCELED
                with pytest.raises(APIError) as missing:
                    client.get_order_by_client_id("nope")
                assert (missing.value.status_code, missing.value.code) == (404, 40410000)
                activities = client.get("/account/activities/FILL")
                assert [a["order_id"] for a in activities] == [str(filled.id)]

            await asyncio.to_thread(session)

    asyncio.run(run())


def test_limit_orders_fill_when_the_price_moves_through_them() -> None:
    async def run() -> None:
        async with FakeAlpacaTrading() as venue, http(venue) as call:
            venue.set_price("AAPL", "100")
            gtc = {"time_in_force": "gtc"}
            await call(
                "POST",
                "/v2/orders",
                json={**order("AAPL", "sell", "2", "a", limit_price="101"), **gtc},
            )
            await call(
                "POST",
                "/v2/orders",
                json={**order("AAPL", "buy", "2", "b", limit_price="99"), **gtc},
            )
            _, taker, _ = await call(
                "POST", "/v2/orders", json=order("AAPL", "buy", "1", "c", limit_price="100.5")
            )
            assert (taker["status"], taker["filled_avg_price"]) == ("filled", "100")
            assert venue.set_price("AAPL", "101.5") == 1  # through the sell: filled at its limit
            assert venue.order_by_client_id("a").status == "filled"
            assert venue.order_by_client_id("b").status == "new"
            assert venue.set_price("AAPL", "99") == 1  # at the buy's limit: filled
            assert [(f["side"], f["price"]) for f in venue.fills] == [
                ("buy", "100"),
                ("sell", "101"),
                ("buy", "99"),
            ]
            assert venue.position("AAPL") == Decimal(1)

    asyncio.run(run())


def test_the_price_of_recorded_bars(shared_data: Path) -> None:
    recording = AlpacaRecording.from_ccxt_static(
        shared_data / "ws_messages/alpaca/ccxt_static_response_alpaca.json"
    )
    venue = FakeAlpacaTrading()
    bars = recording.minute["BTC/USD"]
    assert venue.price_from_bars("AAPL", bars) == Decimal(str(bars[-1]["c"]))
    assert venue.prices["AAPL"] == Decimal(str(bars[-1]["c"]))


def test_seeded_faults_and_the_early_request_counter() -> None:
    faults = TradingFaults(read={"429": 1.0}, window=(0, 2), retry_after_s=(0.2, 0.2))

    async def run() -> None:
        async with FakeAlpacaTrading(faults=faults) as venue, http(venue) as call:
            status, body, headers = await call("GET", "/v2/account")
            assert (status, headers["Retry-After"], body["code"]) == (429, "0.2", 42910000)
            await call("GET", "/v2/account")  # too soon: counted early
            await asyncio.sleep(0.21)
            status, _, _ = await call("GET", "/v2/account")
            assert status == 200
            assert [(r.outcome, r.early) for r in venue.requests] == [
                ("429", False),
                ("429", True),
                ("ok", False),
            ]
            assert venue.early_requests == 1

            venue.set_price("AAPL", "50")
            venue.faults = TradingFaults(submit={"5xx_after": 1.0})
            status, body, _ = await call("POST", "/v2/orders", json=order("AAPL", "buy", "1", "x"))
            assert status == 503 and venue.orders_created == 1, "taken, then a 503"
            venue.faults = TradingFaults(submit={"503": 1.0})
            status, _, _ = await call("POST", "/v2/orders", json=order("AAPL", "buy", "1", "y"))
            assert status == 503 and venue.orders_created == 1, "lost before it was taken"
            venue.faults = TradingFaults(submit={"timeout_after": 1.0}, hold_s=5.0)
            with pytest.raises(asyncio.TimeoutError):
                await call(
                    "POST",
                    "/v2/orders",
                    json=order("AAPL", "buy", "1", "z"),
                    timeout=aiohttp.ClientTimeout(total=0.2),
                )
            assert venue.order_by_client_id("z").status == "filled"
            venue.faults = TradingFaults(submit={"drop_after": 1.0})
            with pytest.raises(aiohttp.ClientError):
                await call("POST", "/v2/orders", json=order("AAPL", "buy", "1", "w"))
            assert venue.orders_created == 3

    asyncio.run(run())
