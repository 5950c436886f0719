"""Market data and signals over Redis Streams, on a real redis-server (see conftest).

Messages are parsed from the bundled Binance recording (trades, book tickers, depth diffs and the
REST snapshot), the USD-M recording's funding updates and the AAPL daily bars. Cross-process tests
run this file as a script (``publish`` / ``consume`` below) in real subprocesses.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import pytest
import redis
import redis.asyncio as aredis

from tradestack.bus import (
    BusMessage,
    Delivery,
    GroupBacklog,
    Signal,
    StreamConsumer,
    StreamPublisher,
    SyncStreamPublisher,
    connect,
    encode_message,
    redact_url,
    redis_url,
    stream_backlog,
)
from tradestack.core.events import Bar, BookSide, OrderBookDelta, OrderBookSnapshot, QuoteTick
from tradestack.core.ids import InstrumentId
from tradestack.data.recordings import FrameKind, read_recording
from tradestack.data.venues.binance import (
    event_type,
    parse_book_ticker,
    parse_mark_price,
    parse_trade,
    unwrap,
)
from tradestack.testing.redis_server import RedisServer, RedisUnavailable

RECORDINGS = Path(__file__).resolve().parents[2] / "examples" / "data" / "recordings"
SPOT = RECORDINGS / "binance-spot-btcusdt-2024-08-08.jsonl.gz"
USDM = RECORDINGS / "binance-usdm-btcusdt-2023-04-05.dat.gz"
BTC = InstrumentId("BTC/USDT", "binance")
MS = 1_000_000
T = TypeVar("T")


@functools.cache
def recorded_events() -> tuple[BusMessage, ...]:
    """Every trade, book ticker, depth level change and the book snapshot of the spot recording,
    in file order, each trade followed by a signal priced at the trade's exact decimal text."""
    events: list[BusMessage] = []
    for frame in read_recording(SPOT):
        if frame.kind is FrameKind.SNAPSHOT:
            book = json.loads(frame.payload)
            events.append(
                OrderBookSnapshot(
                    BTC,
                    frame.ts_ns,
                    frame.ts_ns,
                    tuple((p, s) for p, s in book["bids"]),
                    tuple((p, s) for p, s in book["asks"]),
                    book["nonce"],
                )
            )
        if frame.kind is not FrameKind.RECV:
            continue
        stream, payload = unwrap(json.loads(frame.payload))
        kind = event_type(stream, payload)
        if kind == "trade":
            trade = parse_trade(payload, BTC, frame.ts_ns)
            events.append(trade)
            score = 0.5 if trade.aggressor == "buyer" else -0.5
            events.append(Signal("flow", BTC, trade.ts_event_ns, score, Decimal(payload["p"])))
        elif kind == "bookTicker":
            events.append(parse_book_ticker(payload, BTC, frame.ts_ns))
        elif kind == "depthUpdate":
            event_ns, update_id = payload["E"] * MS, payload["u"]
            for side, key in ((BookSide.BID, "b"), (BookSide.ASK, "a")):
                events += [
                    OrderBookDelta(BTC, event_ns, frame.ts_ns, side, float(p), float(q), update_id)
                    for p, q in payload[key]
                ]
    return tuple(events)


def other_events() -> list[BusMessage]:
    """Funding updates of the USD-M recording and AAPL daily bars: the remaining event types."""
    perp = InstrumentId("BTC/USDT:USDT", "binanceusdm")
    funding: list[BusMessage] = []
    for frame in read_recording(USDM):
        stream, payload = (
            unwrap(json.loads(frame.payload)) if frame.payload[:1] == "{" else ("", {})
        )
        if event_type(stream, payload) == "markPriceUpdate":
            funding.append(parse_mark_price(payload, perp, frame.ts_ns))
            if len(funding) == 20:
                break
    from tradestack.data import load_bars

    bars = load_bars(
        RECORDINGS.parent / "AAPL_2012-2014_daily.csv",
        InstrumentId("AAPL", "nasdaq"),
        timezone="America/New_York",
    )
    rows = zip(
        bars.ts_ns[:20], bars.open, bars.high, bars.low, bars.close, bars.volume, strict=False
    )
    return funding + [Bar(bars.instrument_id, int(t), int(t), *map(float, v)) for t, *v in rows]


def _order(entry_id: str) -> tuple[int, int]:
    """Stream order of an entry id (``ms-seq``)."""
    ms, seq = entry_id.split("-")
    return int(ms), int(seq)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


async def _publish(url: str, stream: str, messages: list[BusMessage]) -> list[str]:
    client = connect(url)
    try:
        return await StreamPublisher(client, stream).publish_many(messages)
    finally:
        await client.aclose()


async def _consume_all(url: str, stream: str) -> tuple[list[Delivery], StreamConsumer]:
    client = connect(url)
    seen: list[Delivery] = []
    consumer = StreamConsumer(client, stream, "g", "c1", block_ms=100)
    try:
        await consumer.run(seen.append, until_idle=True)
    finally:
        await client.aclose()
    return seen, consumer


def _backlog(url: str, stream: str, group: str = "g") -> GroupBacklog:
    async def go() -> GroupBacklog:
        client = connect(url)
        try:
            return await stream_backlog(client, stream, group)
        finally:
            await client.aclose()

    return run(go())


# --- in one process -------------------------------------------------------------------------


def test_recorded_market_data_and_signals_round_trip_exactly(
    redis_server: RedisServer, stream: str
) -> None:
    messages = [*recorded_events(), *other_events()]
    assert {type(m).__name__ for m in messages} == {
        "TradeTick", "QuoteTick", "OrderBookDelta", "OrderBookSnapshot", "FundingRate", "Bar",
        "Signal",
    }  # fmt: skip
    ids = run(_publish(redis_server.url, stream, messages))
    seen, consumer = run(_consume_all(redis_server.url, stream))

    assert [d.entry_id for d in seen] == ids
    assert [d.message for d in seen] == messages
    assert all(type(d.message) is type(m) for d, m in zip(seen, messages, strict=True))
    prices = [str(d.message.price) for d in seen if isinstance(d.message, Signal)]
    assert prices[0] == "61837.63000000"  # the venue's decimal text, trailing zeros and all
    assert consumer.stats.handled == consumer.stats.acked == len(messages)
    backlog = _backlog(redis_server.url, stream)
    assert (backlog.lag, backlog.pending, backlog.entries_read) == (0, 0, len(messages))


def test_two_consumers_of_one_group_split_the_stream(
    redis_server: RedisServer, stream: str
) -> None:
    messages = list(recorded_events()[:1000])
    ids = run(_publish(redis_server.url, stream, messages))

    async def both() -> dict[str, list[str]]:
        client = connect(redis_server.url)
        got: dict[str, list[str]] = {"a": [], "b": []}

        def handler(name: str) -> Callable[[Delivery], Awaitable[None]]:
            async def handle(delivery: Delivery) -> None:
                got[name].append(delivery.entry_id)
                await asyncio.sleep(0)

            return handle

        consumers = [
            StreamConsumer(client, stream, "g", name, batch_size=25, block_ms=100) for name in got
        ]
        await consumers[0].ensure_group()
        await asyncio.gather(*(c.run(handler(c.name), until_idle=True) for c in consumers))
        await client.aclose()
        return got

    got = run(both())
    assert got["a"] and got["b"]
    assert not set(got["a"]) & set(got["b"])
    assert sorted(got["a"] + got["b"], key=_order) == ids
    assert got["a"] == sorted(got["a"], key=_order) and got["b"] == sorted(got["b"], key=_order)
    assert _backlog(redis_server.url, stream).pending == 0


def test_xautoclaim_takes_over_a_dead_consumers_pending_entries(
    redis_server: RedisServer, stream: str
) -> None:
    messages = list(recorded_events()[:200])
    ids = run(_publish(redis_server.url, stream, messages))

    async def scenario() -> tuple[list[Delivery], StreamConsumer, int]:
        client = connect(redis_server.url)
        live = StreamConsumer(client, stream, "g", "live", block_ms=100, claim_idle_ms=50)
        await live.ensure_group()
        # "dead" receives 30 entries and dies before handling them
        await client.xreadgroup("g", "dead", {stream: ">"}, count=30)
        too_early = await live.claim_stale(list.append, min_idle_ms=60_000)
        await asyncio.sleep(0.08)
        seen: list[Delivery] = []
        await live.run(seen.append, until_idle=True)
        await client.aclose()
        return seen, live, too_early

    seen, live, too_early = run(scenario())
    assert too_early == 0
    assert live.stats.claimed == 30
    assert [d.entry_id for d in seen[:30]] == ids[:30]
    assert all(d.redelivered for d in seen[:30]) and not any(d.redelivered for d in seen[30:])
    assert sorted((d.entry_id for d in seen), key=_order) == ids  # each handled once, none lost
    assert [d.message for d in seen] == messages
    backlog = _backlog(redis_server.url, stream)
    assert backlog.pending == 0 and backlog.consumers == {}


def test_malformed_entries_go_to_the_dead_letter_stream_with_a_clear_error(
    redis_server: RedisServer, stream: str, caplog: pytest.LogCaptureFixture
) -> None:
    first = recorded_events()[0]
    quote = next(m for m in recorded_events() if isinstance(m, QuoteTick))
    good = encode_message(first)
    bad_signal = msgspec.msgpack.encode(
        {
            "strategy": "flow",
            "instrument_id": {"symbol": "BTC/USDT"},
            "ts_event_ns": 1,
            "score": 3.0,
        }
    )
    no_price = msgspec.msgpack.encode({"instrument_id": {"symbol": "X"}, "ts_event_ns": 1})
    bad = [
        ({b"t": b"trade", b"v": b"1", b"d": b"\xc1 not msgpack"}, "bad 'trade' payload"),
        ({b"t": b"candle", b"v": b"1", b"d": good[b"d"]}, "unknown message type b'candle'"),
        ({b"t": b"trade", b"v": b"9", b"d": good[b"d"]}, "unsupported schema version b'9'"),
        ({b"t": b"trade"}, "missing field(s) v, d"),
        ({b"t": b"signal", b"v": b"1", b"d": bad_signal}, "score 3.0 is outside [-1, 1]"),
        ({b"t": b"trade", b"v": b"1", b"d": no_price}, "missing required field"),
    ]

    async def scenario() -> tuple[list[str], list[Delivery], list[object]]:
        client = connect(redis_server.url)
        ids = [await client.xadd(stream, good)]
        ids += [await client.xadd(stream, fields) for fields, _ in bad]
        ids.append(await client.xadd(stream, encode_message(quote)))
        seen: list[Delivery] = []
        consumer = StreamConsumer(client, stream, "g", "c1", block_ms=100)
        await consumer.run(seen.append, until_idle=True)
        dead = await client.xrange(consumer.dead_letter_stream)
        await client.aclose()
        return [i.decode() for i in ids], seen, dead

    with caplog.at_level(logging.ERROR, logger="tradestack.bus"):
        ids, seen, dead = run(scenario())
    assert [d.message for d in seen] == [first, quote]  # the group was not blocked
    assert len(dead) == len(bad)
    for (entry_id, (fields, expected)), (_, record) in zip(
        zip(ids[1:-1], bad, strict=True), dead, strict=True
    ):
        error = record[b"error"].decode()
        assert error.startswith(f"stream {stream!r} entry {entry_id}: ")
        assert expected in error
        assert record[b"source_id"].decode() == entry_id
        assert record[b"source_stream"].decode() == stream
        assert {k.removeprefix(b"orig_"): v for k, v in record.items() if k[:5] == b"orig_"} == (
            fields
        )
        assert any(entry_id in r.getMessage() for r in caplog.records)
    assert _backlog(redis_server.url, stream).pending == 0


def test_an_entry_whose_handler_keeps_failing_is_dead_lettered_after_max_deliveries(
    redis_server: RedisServer, stream: str
) -> None:
    messages = list(recorded_events()[:5])
    ids = run(_publish(redis_server.url, stream, messages))
    handled: list[str] = []

    def handler(delivery: Delivery) -> None:
        if delivery.entry_id == ids[2]:
            raise RuntimeError("strategy bug")
        handled.append(delivery.entry_id)

    async def attempt() -> StreamConsumer:
        client = connect(redis_server.url)
        consumer = StreamConsumer(client, stream, "g", "c1", block_ms=50, max_deliveries=2)
        try:
            await consumer.run(handler, until_idle=True)
        finally:
            await client.aclose()
        return consumer

    for _restart in range(2):
        with pytest.raises(RuntimeError, match="strategy bug") as failure:
            run(attempt())
        assert f"entry {ids[2]}; it stays pending" in failure.value.__notes__[0]
    consumer = run(attempt())  # third delivery: over max_deliveries
    assert isinstance(consumer, StreamConsumer)
    assert consumer.stats.dead_lettered == 1
    assert handled == [ids[0], ids[1], ids[3], ids[4]]  # handled once each, in order
    client = redis.Redis.from_url(redis_server.url)
    (_, record), *_ = client.xrange(consumer.dead_letter_stream)
    assert b"delivered 3 times (max_deliveries 2)" in record[b"error"]
    assert client.xpending(stream, "g")["pending"] == 0
    client.close()


def test_maxlen_trims_and_trimmed_pending_entries_are_acknowledged(
    redis_server: RedisServer, stream: str, caplog: pytest.LogCaptureFixture
) -> None:
    messages = list(recorded_events()[:1200])

    async def scenario() -> tuple[int, int, list[Delivery], StreamConsumer, int]:
        client = connect(redis_server.url)
        approx = StreamPublisher(client, stream + ":approx", maxlen=100)
        await approx.publish_many(messages[:1000])
        approx_len = await client.xlen(stream + ":approx")
        exact = StreamPublisher(client, stream, maxlen=100, approximate=False)
        first = StreamConsumer(client, stream, "g", "c1", block_ms=50)
        await first.ensure_group()
        await exact.publish_many(messages[:100])
        await client.xreadgroup("g", "c1", {stream: ">"}, count=50)  # then c1 dies
        ids = await exact.publish_many(messages[100:200])  # trims all of the first 100
        seen: list[Delivery] = []
        restarted = StreamConsumer(client, stream, "g", "c1", block_ms=50)
        await restarted.run(seen.append, until_idle=True)
        length = await client.xlen(stream)
        await client.aclose()
        return approx_len, length, seen, restarted, len(ids)

    with caplog.at_level(logging.WARNING, logger="tradestack.bus"):
        approx_len, length, seen, restarted, published = run(scenario())
    assert 100 <= approx_len < 1000
    assert length == 100 and published == 100
    assert restarted.stats.trimmed == 50
    assert [d.message for d in seen] == messages[100:200]
    assert "50 pending entries (first " in caplog.text
    assert "were trimmed by MAXLEN before anyone acknowledged them" in caplog.text
    assert _backlog(redis_server.url, stream).pending == 0


def test_publishing_a_non_message_keeps_everything_before_it(
    redis_server: RedisServer, stream: str
) -> None:
    good = list(recorded_events()[:3])
    client = redis.Redis.from_url(redis_server.url)
    publisher = SyncStreamPublisher(client, stream, batch_size=2)
    with pytest.raises(TypeError, match=r"message #2 not published: cannot publish a dict") as exc:
        publisher.publish_many([good[0], good[1], {"price": 1.0}, good[2]])
    assert "(2 before it were)" in str(exc.value)
    assert client.xlen(stream) == 2 and publisher.published == 2
    with pytest.raises(ValueError, match="decode_responses=False"):
        SyncStreamPublisher(redis.Redis.from_url(redis_server.url, decode_responses=True), stream)
    with pytest.raises(ValueError, match=r"score 1\.5 is outside"):
        Signal("s", BTC, 0, 1.5)
    client.close()


def test_backlog_reports_lag_and_pending_per_consumer(
    redis_server: RedisServer, stream: str
) -> None:
    async def scenario() -> list[object]:
        client = connect(redis_server.url)
        await StreamPublisher(client, stream).publish_many(list(recorded_events()[:100]))
        consumer = StreamConsumer(client, stream, "g", "c1", block_ms=50)
        await consumer.ensure_group()
        states = [await consumer.backlog()]
        await consumer.poll(lambda d: None, count=30)
        states.append(await consumer.backlog())
        await client.xreadgroup("g", "other", {stream: ">"}, count=10)
        states.append(await consumer.backlog())
        with pytest.raises(LookupError, match="has no consumer group 'nope'"):
            await stream_backlog(client, stream, "nope")
        await client.aclose()
        return states

    start, read, other = run(scenario())
    assert (start.length, start.lag, start.pending, start.backlog) == (100, 100, 0, 100)
    assert (read.entries_read, read.lag, read.pending) == (30, 70, 0)
    assert (other.lag, other.pending, other.backlog) == (60, 10, 70)
    assert other.consumers == {"other": 10}


def test_url_comes_from_config_or_env_and_passwords_never_reach_the_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert redis_url(env={}) == "redis://127.0.0.1:6379/0"
    assert redis_url(env={"REDIS_URL": "redis://cache:6380/2"}) == "redis://cache:6380/2"
    assert redis_url("redis://cfg:1/0", env={"REDIS_URL": "redis://env:2/0"}) == "redis://cfg:1/0"
    assert redact_url("redis://user:pw@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact_url("redis://host:6379/0") == "redis://host:6379/0"
    assert redact_url("rediss://:pw@h/1?password=pw&ssl_cert_reqs=none") == (
        "rediss://:***@h/1?password=***&ssl_cert_reqs=none"
    )
    with pytest.raises(ValueError, match=r"'http://u:\*\*\*@h:1/' must start with redis://") as e:
        redis_url("http://u:hunter2@h:1/")
    assert "hunter2" not in str(e.value)

    with RedisServer(password="s3cret-pw") as server, caplog.at_level(logging.INFO):

        async def ping() -> bool:
            client = connect(server.url)
            try:
                return bool(await client.ping())
            finally:
                await client.aclose()

        assert run(ping())
    assert "connecting to Redis at redis://:***@127.0.0.1:" in caplog.text
    assert "s3cret-pw" not in caplog.text


def test_a_redis_server_that_fails_to_start_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(RedisUnavailable, match="did not start: exited with status 1"):
        RedisServer(binary="/bin/false", tmp_root=tmp_path).start()
    assert list(tmp_path.iterdir()) == []


# --- across processes -----------------------------------------------------------------------


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _finish(proc: subprocess.Popen[str], timeout: float = 20) -> str:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    return out


def _wait_until_blocked(url: str, procs: list[subprocess.Popen[str]]) -> None:
    """Until every consumer process waits in XREADGROUP ... BLOCK on the server."""
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 15
    while sum(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in client.client_list()) < len(
        procs
    ):
        assert all(p.poll() is None for p in procs) and time.monotonic() < deadline
        time.sleep(0.01)
    client.close()


def _lines(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    return [tuple(line.split()) for line in path.read_text().splitlines()]


def test_a_killed_consumer_resumes_from_its_pending_entries(
    redis_server: RedisServer, stream: str, tmp_path: Path
) -> None:
    ids = run(_publish(redis_server.url, stream, list(recorded_events()[:600])))
    assert isinstance(ids, list)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    victim = _spawn("consume", redis_server.url, stream, "strategy-1", str(first_log), "120")
    deadline = time.monotonic() + 15
    while len(_lines(first_log)) < 120:  # it handles 120 entries (mid third batch), then hangs
        assert victim.poll() is None and time.monotonic() < deadline, victim.stderr
        time.sleep(0.01)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    victim.communicate()

    at_kill = _backlog(redis_server.url, stream)
    assert at_kill.consumers == {"strategy-1": 50}
    acked_before_kill = at_kill.entries_read - at_kill.pending
    assert acked_before_kill == 100

    out = _finish(_spawn("consume", redis_server.url, stream, "strategy-1", str(second_log)))
    stats = json.loads(out)
    first, second = _lines(first_log), _lines(second_log)
    assert [i for _, i in second[:50]] == ids[100:150]  # its own pending entries first
    assert {kind for kind, _ in second[:50]} == {"R"} and {k for k, _ in second[50:]} == {"N"}
    assert [i for _, i in first] == ids[:120] and [i for _, i in second] == ids[100:]
    handled = Counter(i for _, i in first + second)
    assert set(handled) == set(ids)
    assert sorted((i for i, n in handled.items() if n > 1), key=_order) == ids[100:120]
    assert acked_before_kill + stats["acked"] == len(ids)  # every entry acknowledged once
    end = _backlog(redis_server.url, stream)
    assert (end.pending, end.lag) == (0, 0)


def test_one_publisher_process_and_two_consumer_processes(
    redis_server: RedisServer, stream: str, tmp_path: Path
) -> None:
    n = 3000
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    consumers = [
        _spawn("consume", redis_server.url, stream, name, str(log), "0", "until-done")
        for name, log in zip(("a", "b"), logs, strict=True)
    ]
    _wait_until_blocked(redis_server.url, consumers)  # so each gets a share
    ids_file = tmp_path / "ids.txt"
    _finish(_spawn("publish", redis_server.url, stream, str(n), str(ids_file)))
    stats = [json.loads(_finish(c)) for c in consumers]
    published = ids_file.read_text().split()
    a, b = ([i for _, i in _lines(log)] for log in logs)
    assert len(published) == n
    assert a and b and not set(a) & set(b)
    assert sorted(a + b, key=_order) == published
    assert sum(s["acked"] for s in stats) == n
    assert {s["dead_lettered"] for s in stats} == {0}
    end = _backlog(redis_server.url, stream)
    assert (end.pending, end.lag, end.entries_read) == (0, 0, n)


# --- the subprocesses -----------------------------------------------------------------------


def _publish_main(url: str, stream: str, n: int, ids_file: str) -> None:
    events = recorded_events()
    messages = [events[i % len(events)] for i in range(n)]
    client = redis.Redis.from_url(url)
    ids = SyncStreamPublisher(client, stream, batch_size=200).publish_many(messages)
    client.set(f"{stream}:done", b"1")
    client.close()
    Path(ids_file).write_text("\n".join(ids))


async def _consume_main(url: str, stream: str, name: str, log: str, stall: int, wait: bool) -> None:
    client = aredis.Redis.from_url(url)
    consumer = StreamConsumer(client, stream, "g", name, batch_size=50, block_ms=100)
    await consumer.ensure_group()
    with open(log, "a") as out:

        def handle(delivery: Delivery) -> None:
            out.write(f"{'R' if delivery.redelivered else 'N'} {delivery.entry_id}\n")
            out.flush()
            if stall and consumer.stats.handled + 1 == stall:
                time.sleep(3600)  # hang mid-batch until killed

        while True:
            got = await consumer.poll(handle)
            if got == 0 and (not wait or await client.exists(f"{stream}:done")):
                break
    await client.aclose()
    print(json.dumps(dataclasses.asdict(consumer.stats)))


if __name__ == "__main__":
    role, *rest = sys.argv[1:]
    if role == "publish":
        _publish_main(rest[0], rest[1], int(rest[2]), rest[3])
    else:
        url, stream_name, consumer_name, log_path, *extra = rest
        stall_after = int(extra[0]) if extra else 0
        asyncio.run(
            _consume_main(
                url, stream_name, consumer_name, log_path, stall_after, "until-done" in extra
            )
        )
