"""The fake Binance venue's trading side: the matching and account engine on a hand-set book
(with a property test of its accounting), the symbol rules, the fault script, and the desk's
signed REST endpoints over HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import itertools
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core.ids import InstrumentId
from tradestack.data.book.l2book import L2Book
from tradestack.testing.fake_venue import FakeVenueServer
from tradestack.testing.venues.binance import BinanceFakeVenue
from tradestack.testing.venues.binance_matching import (
    DUPLICATE,
    INSUFFICIENT,
    DeskOrder,
    MatchingEngine,
)
from tradestack.testing.venues.binance_rules import BinanceError, SymbolRules
from tradestack.testing.venues.binance_trading import BinanceTradingDesk, TradingFaults

D = Decimal
RULES = SymbolRules.default("BTCUSDT")
SLICE = "data/recordings/binance-spot-btcusdt-2024-08-08.jsonl.gz"
KEY, SECRET = "desk-key", "desk-secret"


def make_engine(
    bids: list[tuple[float, float]],
    asks: list[tuple[float, float]],
    balances: dict[str, str] | None = None,
    events: list[dict[str, Any]] | None = None,
) -> tuple[MatchingEngine, L2Book]:
    book = L2Book(InstrumentId("BTCUSDT", "binance"))
    book.load(bids, asks)
    clock = itertools.count(1_000)
    engine = MatchingEngine(
        balances or {"USDT": "100000", "BTC": "10"},
        book=lambda s: book if s == "BTCUSDT" else None,
        rules=lambda s: RULES if s == "BTCUSDT" else None,
        now_ms=lambda: next(clock),
        listener=None if events is None else events.append,
    )
    return engine, book


BIDS = [(99.0, 1.0), (98.0, 2.0)]
ASKS = [(100.0, 1.0), (101.0, 2.0), (102.0, 5.0)]


def place(engine: MatchingEngine, **params: str) -> tuple[DeskOrder, list[Any]]:
    return engine.new_order({"symbol": "BTCUSDT", **params})


def fills(trades: list[Any]) -> list[tuple[Decimal, Decimal]]:
    return [(t.price, t.qty) for t in trades]


# -- matching -----------------------------------------------------------------------------------
def test_a_market_buy_walks_the_asks_and_pays_its_fee_in_base() -> None:
    engine, _ = make_engine(BIDS, ASKS)
    order, trades = place(engine, side="BUY", type="MARKET", quantity="1.5")
    assert fills(trades) == [(D(100), D(1)), (D(101), D("0.5"))]
    assert (order.status, order.executed, order.cum_quote) == ("FILLED", D("1.5"), D("150.5"))
    assert [t.trade_id for t in trades] == [1, 2] and not any(t.maker for t in trades)
    assert {t.commission_asset for t in trades} == {"BTC"}
    assert engine.free == {"USDT": D("99849.5"), "BTC": D("11.4985")}
    assert engine.locked == {"USDT": 0}


def test_a_market_sell_walks_the_bids_and_pays_its_fee_in_quote() -> None:
    engine, _ = make_engine(BIDS, ASKS)
    order, trades = place(engine, side="SELL", type="MARKET", quantity="2")
    assert fills(trades) == [(D(99), D(1)), (D(98), D(1))]
    assert engine.free["USDT"] == 100000 + D(197) - D("0.197")
    assert engine.free["BTC"] == 8 and order.status == "FILLED"


def test_what_the_account_took_stays_taken_until_a_diff_sets_the_level() -> None:
    engine, book = make_engine(BIDS, ASKS)
    place(engine, side="BUY", type="MARKET", quantity="1.5")
    _, second = place(engine, side="BUY", type="MARKET", quantity="1.5")
    assert fills(second) == [(D(101), D("1.5"))]
    drained, third = place(engine, side="BUY", type="MARKET", quantity="6")
    assert fills(third) == [(D(102), D(5))]
    assert (drained.status, drained.executed) == ("EXPIRED", D(5))
    book.apply(False, 100.0, 0.7)  # a replayed diff sets the level again
    engine.on_book("BTCUSDT", [(False, 100.0)])
    _, after_diff = place(engine, side="BUY", type="MARKET", quantity="1")
    assert fills(after_diff) == [(D(100), D("0.7"))]
    engine.on_book("BTCUSDT", None)  # a snapshot: the venue's sizes as they are
    _, after_snapshot = place(engine, side="BUY", type="MARKET", quantity="3")
    assert fills(after_snapshot) == [(D(100), D("0.7")), (D(101), D(2)), (D(102), D("0.3"))]


def test_a_marketable_limit_takes_then_rests_and_fills_as_maker_when_the_book_crosses_it() -> None:
    engine, book = make_engine(BIDS, ASKS)
    order, trades = place(
        engine, side="BUY", type="LIMIT", timeInForce="GTC", quantity="2", price="100.50"
    )
    assert fills(trades) == [(D(100), D(1))]
    assert (order.status, order.leaves) == ("PARTIALLY_FILLED", D(1))
    assert engine.locked["USDT"] == D("100.5") == order.reserved
    assert engine.free["USDT"] == 100000 - 100 - D("100.5")
    book.apply(False, 100.5, 0.4)
    assert fills(engine.on_book("BTCUSDT", [(False, 100.5)])) == [(D("100.5"), D("0.4"))]
    book.apply(False, 100.2, 3.0)  # the ask comes down through the order: filled at its price
    made = engine.on_book("BTCUSDT", [(False, 100.2)])
    assert fills(made) == [(D("100.5"), D("0.6"))] and all(t.maker for t in made)
    assert order.status == "FILLED" and engine.locked["USDT"] == 0
    assert engine.free["USDT"] == 100000 - 100 - D("100.5")


def test_a_resting_sell_fills_when_the_bids_rise_to_it() -> None:
    engine, book = make_engine(BIDS, ASKS)
    order, trades = place(
        engine, side="SELL", type="LIMIT", timeInForce="GTC", quantity="1", price="99.50"
    )
    assert trades == [] and order.status == "NEW" and engine.locked["BTC"] == 1
    book.apply(True, 99.8, 0.25)
    made = engine.on_book("BTCUSDT", [(True, 99.8)])
    assert fills(made) == [(D("99.5"), D("0.25"))] and made[0].commission_asset == "USDT"
    assert engine.locked["BTC"] == D("0.75") and order.status == "PARTIALLY_FILLED"


def test_ioc_fok_and_limit_maker() -> None:
    engine, _ = make_engine(BIDS, ASKS)
    ioc, trades = place(
        engine, side="BUY", type="LIMIT", timeInForce="IOC", quantity="3", price="100"
    )
    assert fills(trades) == [(D(100), D(1))] and ioc.status == "EXPIRED"
    before = dict(engine.free)
    fok, trades = place(
        engine, side="BUY", type="LIMIT", timeInForce="FOK", quantity="5", price="101"
    )
    assert trades == [] and fok.status == "EXPIRED" and engine.free == before
    with pytest.raises(BinanceError, match="immediately match and take") as caught:
        place(engine, side="BUY", type="LIMIT_MAKER", quantity="1", price="101")
    assert caught.value.code == -2010
    maker, _ = place(engine, side="BUY", type="LIMIT_MAKER", quantity="1", price="99.50")
    assert maker.status == "NEW" and maker.time_in_force == "GTC"


def test_a_market_buy_by_quote_amount() -> None:
    engine, _ = make_engine(BIDS, ASKS)
    order, trades = place(engine, side="BUY", type="MARKET", quoteOrderQty="150.5")
    assert fills(trades) == [(D(100), D(1)), (D(101), D("0.5"))]
    assert (order.qty, order.status, order.quote_qty) == (D("1.5"), "FILLED", D("150.5"))


def test_orders_beyond_the_balance_are_refused_and_change_nothing() -> None:
    engine, _ = make_engine(BIDS, ASKS, balances={"USDT": "50", "BTC": "1"})
    for params in (
        {"side": "BUY", "type": "MARKET", "quantity": "1"},
        {"side": "SELL", "type": "MARKET", "quantity": "1.5"},
        {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "90"},
    ):
        with pytest.raises(BinanceError) as caught:
            place(engine, **params)
        assert (caught.value.code, caught.value.msg) == (-2010, INSUFFICIENT)
    assert engine.free == {"USDT": 50, "BTC": 1} and engine.orders_created == 0


def test_a_client_order_id_is_unique_among_open_orders() -> None:
    engine, _ = make_engine(BIDS, ASKS)
    rest = {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "90"}
    first, _ = place(engine, newClientOrderId="a-1", **rest)
    with pytest.raises(BinanceError, match=DUPLICATE):
        place(engine, newClientOrderId="a-1", **rest)
    assert (engine.duplicate_attempts, engine.duplicate_orders) == (1, 0)
    assert engine.cancel("BTCUSDT", None, "a-1") is first and first.status == "CANCELED"
    second, _ = place(engine, newClientOrderId="a-1", **rest)  # Binance takes it once closed
    assert (engine.duplicate_attempts, engine.duplicate_orders) == (2, 1)
    assert engine.query("BTCUSDT", None, "a-1") is second
    assert engine.query("BTCUSDT", str(first.order_id), None) is first
    assert engine.orders_created == 2


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"price": "100.005"}, -1013, "PRICE_FILTER"),
        ({"quantity": "0.000015"}, -1013, "LOT_SIZE"),
        ({"quantity": "0.000000001"}, -1111, "too much precision"),
        ({"quantity": "1e-3"}, -1100, "'quantity'"),
        ({"quantity": "0.01"}, -1013, "NOTIONAL"),
        ({"quantity": ""}, -1102, "'quantity'"),
        ({"side": "HOLD"}, -1117, "Invalid side"),
        ({"type": "STOP"}, -1116, "Invalid orderType"),
        ({"timeInForce": "DAY"}, -1115, "Invalid timeInForce"),
        ({"symbol": "ETHUSDT"}, -1121, "Invalid symbol"),
        ({"symbol": ""}, -1102, "'symbol'"),
        ({"newClientOrderId": "no spaces!"}, -1100, "newClientOrderId"),
    ],
)
def test_bad_orders_get_binance_error_codes(
    params: dict[str, str], code: int, message: str
) -> None:
    engine, _ = make_engine(BIDS, ASKS)
    base = {"side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "90"}
    with pytest.raises(BinanceError, match=message) as caught:
        place(engine, **(base | params))
    assert caught.value.code == code and engine.orders_created == 0


def test_unknown_orders() -> None:
    engine, _ = make_engine(BIDS, ASKS)
    with pytest.raises(BinanceError, match="Unknown order sent") as cancel:
        engine.cancel("BTCUSDT", "7", None)
    with pytest.raises(BinanceError, match="Order does not exist") as query:
        engine.query("BTCUSDT", None, "nope")
    with pytest.raises(BinanceError, match="origClientOrderId' or 'orderId'") as neither:
        engine.query("BTCUSDT", None, None)
    assert (cancel.value.code, query.value.code, neither.value.code) == (-2011, -2013, -1102)
    order, _ = place(engine, side="BUY", type="MARKET", quantity="0.5")
    with pytest.raises(BinanceError, match="Unknown order sent"):  # filled: nothing to cancel
        engine.cancel("BTCUSDT", str(order.order_id), None)


def test_every_order_event_is_reported_as_an_execution_report() -> None:
    events: list[dict[str, Any]] = []
    engine, _ = make_engine(BIDS, ASKS, events=events)
    place(engine, side="BUY", type="MARKET", quantity="1.5", newClientOrderId="m-1")
    assert [(e["x"], e["X"]) for e in events] == [
        ("NEW", "NEW"),
        ("TRADE", "PARTIALLY_FILLED"),
        ("TRADE", "FILLED"),
    ]
    last = events[-1]
    assert (last["e"], last["c"], last["i"], last["t"]) == ("executionReport", "m-1", 1, 2)
    assert (last["l"], last["L"], last["z"], last["N"]) == (
        "0.50000000",
        "101.00000000",
        "1.50000000",
        "BTC",
    )


def test_bad_engine_configuration_is_named() -> None:
    with pytest.raises(ValueError, match="balance of USDT"):
        make_engine(BIDS, ASKS, balances={"USDT": "-1"})
    with pytest.raises(ValueError, match="balance of BTC"):
        make_engine(BIDS, ASKS, balances={"BTC": "lots"})


# -- accounting, for any sequence of requests and book changes --------------------------------
_SIDE = st.sampled_from(["BUY", "SELL"])
_QTY = st.integers(50, 3000).map(lambda n: D(n) * D("0.001"))
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("market"), _SIDE, _QTY),
        st.tuples(
            st.just("limit"), _SIDE, _QTY, st.integers(-20, 20), st.sampled_from(["GTC", "IOC"])
        ),
        st.tuples(st.just("cancel"), st.integers(1, 30)),
        st.tuples(st.just("level"), st.booleans(), st.integers(1, 12), st.integers(0, 30)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_balances_conserve_value_less_fees_and_nothing_overfills(ops: list[Any]) -> None:
    start = {"USDT": D(1000), "BTC": D(2)}
    engine, book = make_engine(BIDS, ASKS, balances={k: str(v) for k, v in start.items()})
    for op in ops:
        before = (dict(engine.free), dict(engine.locked), len(engine.orders))
        try:
            if op[0] == "market":
                place(engine, side=op[1], type="MARKET", quantity=str(op[2]))
            elif op[0] == "limit":
                price = str(D(100) + D(op[3]) * D("0.25"))
                place(
                    engine, side=op[1], type="LIMIT", timeInForce=op[4], quantity=str(op[2]),
                    price=price,
                )  # fmt: skip
            elif op[0] == "cancel":
                engine.cancel("BTCUSDT", str(op[1]), None)
            else:  # a replayed diff: bids below 100, asks above, so the book never crosses
                _, is_bid, ticks, size = op
                price = 100 - ticks * 0.25 if is_bid else 100 + ticks * 0.25
                book.apply(is_bid, price, size / 10)
                engine.on_book("BTCUSDT", [(is_bid, price)])
        except BinanceError:
            assert (dict(engine.free), dict(engine.locked), len(engine.orders)) == before
        _check_accounts(engine, start)


def _check_accounts(engine: MatchingEngine, start: dict[str, Decimal]) -> None:
    zero = D(0)
    base = sum((t.qty - t.commission if t.side == "BUY" else -t.qty for t in engine.trades), zero)
    quote = sum(
        (t.qty * t.price - t.commission if t.side == "SELL" else -t.qty * t.price)
        for t in engine.trades
    )
    total = {a: engine.free.get(a, zero) + engine.locked.get(a, zero) for a in start}
    assert total["BTC"] - start["BTC"] == base
    assert total["USDT"] - start["USDT"] == quote
    assert all(v >= 0 for v in (*engine.free.values(), *engine.locked.values()))
    open_orders = engine.open_orders()
    assert engine.locked.get("USDT", zero) == sum(
        (o.reserved for o in open_orders if o.side == "BUY"), zero
    )
    assert engine.locked.get("BTC", zero) == sum(
        (o.reserved for o in open_orders if o.side == "SELL"), zero
    )
    ids = [t.trade_id for t in engine.trades]
    assert ids == list(range(1, len(ids) + 1))
    by_order = Counter[int]()
    for t in engine.trades:
        by_order[t.order_id] += 1
        rate = D("0.001") * (t.qty if t.side == "BUY" else t.qty * t.price)
        assert 0 <= t.commission <= rate + D("0.000000005")
    for order in engine.orders.values():
        mine = [t for t in engine.trades if t.order_id == order.order_id]
        assert order.executed == sum((t.qty for t in mine), zero) <= order.qty
        assert order.cum_quote == sum((t.qty * t.price for t in mine), zero)
        assert [t.trade_id for t in mine] == order.trade_ids
        if order.type == "LIMIT":
            buy = order.side == "BUY"
            assert all((t.price <= order.price) if buy else (t.price >= order.price) for t in mine)


# -- symbol rules and the fault script ---------------------------------------------------------
def test_symbol_rules_from_a_recorded_exchange_info(examples_dir: Path) -> None:
    with gzip.open(examples_dir / SLICE, "rt") as f:
        header = json.loads(f.readline())
    rules = SymbolRules.from_exchange_info(header["markets"]["BTC/USDT"]["info"])
    assert (rules.base, rules.quote, rules.tick_size, rules.step_size) == (
        "BTC",
        "USDT",
        D("0.01"),
        D("0.00001"),
    )
    assert (rules.min_notional, rules.notional_filter) == (D(10), "MIN_NOTIONAL")
    assert rules.market_max_qty == D("100.05381873")
    assert SymbolRules.from_exchange_info(rules.exchange_info_entry()) == rules
    assert (SymbolRules.default("ETHBTC").base, SymbolRules.default("ETHBTC").quote) == (
        "ETH",
        "BTC",
    )
    with pytest.raises(ValueError, match="'FOOBAR'"):
        SymbolRules.default("FOOBAR")


def test_the_fault_script_is_seeded_and_keeps_its_rates() -> None:
    faults = TradingFaults(
        submit={"429": 0.2, "timeout_after": 0.1}, retry_after_s=(0.1, 0.3), seed=4
    )
    draws = [faults.decide(n, "submit", n) for n in range(10_000)]
    assert draws == [faults.decide(n, "submit", n) for n in range(10_000)]
    counts = Counter(outcome for outcome, _ in draws)
    assert abs(counts["429"] / 10_000 - 0.2) < 0.02
    assert abs(counts["timeout_after"] / 10_000 - 0.1) < 0.02
    assert all(0.1 <= w <= 0.3 and round(w, 3) == w for o, w in draws if o == "429")
    assert {faults.decide(n, "read", n)[0] for n in range(100)} == {"ok"}
    windowed = TradingFaults(submit={"503": 1.0}, window=(5, 7), bursts=((20, 22),))
    assert [windowed.decide(n, "read" if n > 10 else "submit", n)[0] for n in range(24)] == (
        ["ok"] * 5 + ["503"] * 2 + ["ok"] * 13 + ["503"] * 2 + ["ok"] * 2
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"submit": {"boom": 0.1}}, "unknown outcomes"),
        ({"read": {"503": 0.7, "429": 0.5}}, "add up to <= 1"),
        ({"retry_after_s": (0.5, 0.1)}, "retry_after_s"),
        ({"hold_s": 0}, "hold_s"),
    ],
)
def test_bad_fault_scripts_are_named(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TradingFaults(**kwargs)


# -- the desk over HTTP --------------------------------------------------------------------------
@asynccontextmanager
async def desk_server(
    examples_dir: Path, faults: TradingFaults | None = None
) -> AsyncIterator[tuple[BinanceTradingDesk, aiohttp.ClientSession, str]]:
    """The desk on the recorded slice as replayed so far (no snapshot: nothing to match)."""
    desk = BinanceTradingDesk(api_key=KEY, secret=SECRET, faults=faults)
    venue = BinanceFakeVenue([examples_dir / SLICE], desk=desk)
    async with FakeVenueServer(venue) as server, aiohttp.ClientSession() as session:
        yield desk, session, f"{server.base_url}/api.binance.com/api/v3"


def signed(params: dict[str, str], secret: str = SECRET, stamp_ms: int | None = None) -> str:
    stamp = time.time_ns() // 1_000_000 if stamp_ms is None else stamp_ms
    query = urlencode({**params, "timestamp": str(stamp)})
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return f"{query}&signature={signature}"


REST = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
ORDER = {**REST, "quantity": "0.01", "price": "60000"}
FORM = {"Content-Type": "application/x-www-form-urlencoded", "X-MBX-APIKEY": KEY}


def test_signed_requests_are_checked_as_binance_checks_them(examples_dir: Path) -> None:
    async def run() -> None:
        async with desk_server(examples_dir) as (desk, http, api):

            async def get(query: str, key: str | None = KEY) -> tuple[int, Any]:
                headers = {} if key is None else {"X-MBX-APIKEY": key}
                async with http.get(f"{api}/account?{query}", headers=headers) as resp:
                    return resp.status, await resp.json()

            assert await get(signed({}), None) == (
                401,
                {"code": -2014, "msg": "API-key format invalid."},
            )
            status, body = await get(signed({}), "someone-else")
            assert (status, body["code"]) == (401, -2015)
            status, body = await get(signed({}, secret="guess"))
            assert (status, body["code"]) == (400, -1022)
            status, body = await get(urlencode({"timestamp": time.time_ns() // 1_000_000}))
            assert (status, body["code"]) == (400, -1102) and "'signature'" in body["msg"]
            stale = time.time_ns() // 1_000_000 - 60_000
            status, body = await get(signed({}, stamp_ms=stale))
            assert (status, body["code"]) == (400, -1021)
            status, body = await get(signed({}))
            assert status == 200 and body["balances"] == [
                {"asset": "BTC", "free": "10.00000000", "locked": "0.00000000"},
                {"asset": "USDT", "free": "1000000.00000000", "locked": "0.00000000"},
            ]
            async with http.post(f"{api}/order", data=signed(ORDER), headers=FORM) as resp:
                placed = await resp.json()
            assert resp.status == 200 and placed["status"] == "NEW" and placed["fills"] == []
            query = signed({"symbol": "BTCUSDT", "orderId": str(placed["orderId"])})
            async with http.delete(f"{api}/order?{query}", headers=FORM) as resp:
                canceled = await resp.json()
            assert canceled["status"] == "CANCELED"
            assert canceled["origClientOrderId"] == placed["clientOrderId"]
            async with http.get(f"{api}/exchangeInfo") as resp:
                info = await resp.json()
            assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT"]
            assert SymbolRules.from_exchange_info(info["symbols"][0]) == RULES
            assert desk.orders_created == 1

    asyncio.run(run())


@pytest.mark.parametrize(
    ("outcome", "status", "booked"),
    [("429", 429, False), ("503", 503, False), ("5xx_after", 503, True)],
)
def test_answered_faults(examples_dir: Path, outcome: str, status: int, booked: bool) -> None:
    faults = TradingFaults(submit={outcome: 1.0}, retry_after_s=(0.2, 0.2))

    async def run() -> None:
        async with desk_server(examples_dir, faults) as (desk, http, api):
            async with http.post(f"{api}/order", data=signed(ORDER), headers=FORM) as resp:
                body = await resp.json()
                assert resp.status == status
                retry_after = resp.headers.get("Retry-After")
            assert desk.orders_created == int(booked)
            codes = {"429": -1003, "503": -1001, "5xx_after": -1007}
            assert body["code"] == codes[outcome]
            if outcome == "429":
                assert retry_after == "0.2"
                async with http.get(f"{api}/account?{signed({})}", headers=FORM) as resp:
                    assert resp.status == 200
                assert [q.early for q in desk.requests] == [False, True]

    asyncio.run(run())


@pytest.mark.parametrize("outcome", ["timeout_after", "drop_after", "timeout_before"])
def test_unanswered_faults(examples_dir: Path, outcome: str) -> None:
    faults = TradingFaults(submit={outcome: 1.0}, hold_s=5.0)

    async def run() -> None:
        async with desk_server(examples_dir, faults) as (desk, http, api):
            started = time.monotonic()
            with pytest.raises((TimeoutError, aiohttp.ServerDisconnectedError)):
                async with http.post(
                    f"{api}/order",
                    data=signed(ORDER),
                    headers=FORM,
                    timeout=aiohttp.ClientTimeout(total=0.1),
                ) as resp:
                    await resp.read()
            assert time.monotonic() - started < 1.0
            assert desk.orders_created == (0 if outcome == "timeout_before" else 1)
            assert [q.outcome for q in desk.requests] == [outcome]

    asyncio.run(run())
