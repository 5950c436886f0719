"""Redis Streams benchmark: one producer process, two consumer processes in one consumer group.

Workload: the bundled Binance spot recording (``examples/data/recordings``) as bus messages, in
file order: every depth level change, book ticker and trade, the REST book snapshot, and a signal
per trade (priced with the trade's exact decimal text); cycled to ``n_messages``. A private
redis-server (:class:`~tradestack.testing.redis_server.RedisServer`, no persistence) per run.

Rows, each on the same messages and the same process layout:

* ``raw redis-py`` — the payload bytes encoded before the clock starts, pipelined ``XADD`` from
  the producer; ``XREADGROUP`` + ``XACK`` in the consumers, nothing decoded: the practical upper
  bound for Python over redis-py;
* ``tradestack`` — :class:`SyncStreamPublisher` (msgspec encoding + pipelined ``XADD``) and
  :class:`StreamConsumer` (decode to the event structs, the handler, ``XACK``);
* ``paced`` — tradestack again, the producer held to ``pace`` × the unpaced end-to-end rate:
  a sustained load below capacity, where the backlog must stay flat.

Messages/s is end to end: the producer's first ``XADD`` to the consumers' last ``XACK``. CPU
µs/msg is the producer's plus the consumers' CPU time per message (steadier than wall time on a
busy machine; redis-server's own is left out, alike for every row). The backlog (``XINFO
GROUPS`` lag + ``XPENDING`` count) is sampled every 50 ms while the producer runs; its slope is a
least-squares fit over that window (≈ 0 msgs/s: flat; positive: the consumers fall behind at
that rate). Each row is the median of ``--repeat`` runs, interleaved. Usage::

    .venv/bin/python benchmarks/live_redis.py [--messages 200000] [--consumers 2] [--pace 0.7]
        [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from decimal import Decimal
from multiprocessing import get_context
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import redis
import redis.asyncio as aredis

from tradestack.bus import BusMessage, Signal, StreamConsumer, SyncStreamPublisher, encode_message
from tradestack.testing.redis_server import RedisServer

RECORDING = (
    Path(__file__).resolve().parents[1]
    / "examples"
    / "data"
    / "recordings"
    / "binance-spot-btcusdt-2024-08-08.jsonl.gz"
)
GROUP = "strategies"
SAMPLE_S = 0.05


def recorded_messages() -> list[BusMessage]:
    """The recording's events and signals, in file order."""
    from tradestack.core.events import BookSide, OrderBookDelta, OrderBookSnapshot
    from tradestack.core.ids import InstrumentId
    from tradestack.data.recordings import FrameKind, read_recording
    from tradestack.data.venues.binance import event_type, parse_book_ticker, parse_trade, unwrap

    btc = InstrumentId("BTC/USDT", "binance")
    out: list[BusMessage] = []
    for frame in read_recording(RECORDING):
        if frame.kind is FrameKind.SNAPSHOT:
            book = json.loads(frame.payload)
            bids = tuple((p, s) for p, s in book["bids"])
            asks = tuple((p, s) for p, s in book["asks"])
            out.append(OrderBookSnapshot(btc, frame.ts_ns, frame.ts_ns, bids, asks, book["nonce"]))
        if frame.kind is not FrameKind.RECV:
            continue
        stream, payload = unwrap(json.loads(frame.payload))
        kind = event_type(stream, payload)
        if kind == "trade":
            trade = parse_trade(payload, btc, frame.ts_ns)
            score = 0.5 if trade.aggressor == "buyer" else -0.5
            out += [trade, Signal("flow", btc, trade.ts_event_ns, score, Decimal(payload["p"]))]
        elif kind == "bookTicker":
            out.append(parse_book_ticker(payload, btc, frame.ts_ns))
        elif kind == "depthUpdate":
            for side, key in ((BookSide.BID, "b"), (BookSide.ASK, "a")):
                out += [
                    OrderBookDelta(
                        btc, payload["E"] * 1_000_000, frame.ts_ns, side, float(p), float(s),
                        payload["u"],
                    )
                    for p, s in payload[key]
                ]  # fmt: skip
    return out


def _messages(n: int) -> list[BusMessage]:
    base = recorded_messages()
    return [base[i % len(base)] for i in range(n)]


def _producer(
    kind: str, url: str, stream: str, n: int, batch: int, rate: float | None,
    ready: Event, go: Event, results: Queue[Any],
) -> None:  # fmt: skip
    messages = _messages(n)
    client = redis.Redis.from_url(url)
    publisher = SyncStreamPublisher(client, stream, maxlen=n, batch_size=batch)
    encoded = [encode_message(m) for m in messages] if kind == "raw" else []
    ready.set()
    go.wait()
    t0, cpu0 = time.monotonic(), time.process_time()
    for start in range(0, n, batch):
        if kind == "raw":
            pipe = client.pipeline(transaction=False)
            for fields in encoded[start : start + batch]:
                pipe.xadd(stream, fields, maxlen=n, approximate=True)
            pipe.execute()
        else:
            publisher.publish_many(messages[start : start + batch])
        if rate:
            ahead = t0 + (start + batch) / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
    t1, cpu = time.monotonic(), time.process_time() - cpu0
    client.set(f"{stream}:done", b"1")
    client.close()
    results.put(("producer", t0, t1, cpu))


def _consumer(kind: str, url: str, stream: str, name: str, batch: int, results: Queue[Any]) -> None:
    results.put(asyncio.run(_consume(kind, url, stream, name, batch)))


async def _consume(kind: str, url: str, stream: str, name: str, batch: int) -> tuple[Any, ...]:
    client = aredis.Redis.from_url(url)
    done_key = f"{stream}:done"
    count, last, cpu0 = 0, 0.0, time.process_time()
    if kind == "raw":
        while True:
            reply = await client.xreadgroup(GROUP, name, {stream: ">"}, count=batch, block=100)
            entries = reply[0][1] if reply else []
            if entries:
                await client.xack(stream, GROUP, *(entry_id for entry_id, _ in entries))
                count += len(entries)
                last = time.monotonic()
            elif await client.exists(done_key):
                break
    else:
        kinds: dict[type, int] = {}

        def handle(delivery: Any) -> None:
            cls = type(delivery.message)
            kinds[cls] = kinds.get(cls, 0) + 1

        consumer = StreamConsumer(
            client, stream, GROUP, name, batch_size=batch, block_ms=100, claim_idle_ms=None
        )
        while True:
            if await consumer.poll(handle):
                last = time.monotonic()
            elif await client.exists(done_key):
                break
        count = consumer.stats.acked
    await client.aclose()
    return ("consumer", name, count, last, time.process_time() - cpu0)


def _blocked_readers(client: redis.Redis) -> int:
    return sum(c["cmd"] == "xreadgroup" and "b" in c["flags"] for c in client.client_list())


def _slope(samples: list[tuple[float, int]]) -> float:
    if len(samples) < 2:
        return 0.0
    ts = [t for t, _ in samples]
    ys = [y for _, y in samples]
    mt, my = sum(ts) / len(ts), sum(ys) / len(ys)
    var = sum((t - mt) ** 2 for t in ts)
    return 0.0 if var == 0 else sum((t - mt) * (y - my) for t, y in samples) / var


def redis_throughput(
    n_messages: int = 200_000,
    consumers: int = 2,
    *,
    kind: str = "tradestack",
    rate: float | None = None,
    producer_batch: int = 500,
    consumer_batch: int = 100,
) -> dict[str, Any]:
    """One run: a fresh redis-server, one producer process and ``consumers`` consumer processes
    (one group); ``kind`` is ``tradestack`` or ``raw``; ``rate`` paces the producer (msgs/s)."""
    if kind not in ("tradestack", "raw"):
        raise ValueError(f"kind must be 'tradestack' or 'raw', got {kind!r}")
    ctx = get_context("spawn")
    stream = f"bench:{kind}"
    with RedisServer() as server:
        client = redis.Redis.from_url(server.url)
        client.xgroup_create(stream, GROUP, id="0", mkstream=True)
        results: Queue[Any] = ctx.Queue()
        ready, go = ctx.Event(), ctx.Event()
        producer = ctx.Process(
            target=_producer,
            args=(kind, server.url, stream, n_messages, producer_batch, rate, ready, go, results),
        )
        readers = [
            ctx.Process(
                target=_consumer,
                args=(kind, server.url, stream, f"c{i}", consumer_batch, results),
            )
            for i in range(consumers)
        ]
        for proc in (producer, *readers):
            proc.start()
        deadline = time.monotonic() + 120
        while not ready.is_set() or _blocked_readers(client) < consumers:
            if time.monotonic() > deadline:
                raise RuntimeError("producer or consumers did not start within 120 s")
            time.sleep(0.01)
        go.set()
        samples: list[tuple[float, int, int]] = []
        while any(p.is_alive() for p in readers):
            info = next(g for g in client.xinfo_groups(stream) if g["name"] == GROUP.encode())
            samples.append((time.monotonic(), int(info["lag"] or 0), int(info["pending"])))
            time.sleep(SAMPLE_S)
        reports = [results.get(timeout=30) for _ in range(consumers + 1)]
        for proc in (producer, *readers):
            proc.join(timeout=30)
        final = client.xpending(stream, GROUP)["pending"]
        client.close()
    _, t0, t1, producer_cpu = next(r for r in reports if r[0] == "producer")
    consumer_cpu = sum(r[4] for r in reports if r[0] == "consumer")
    counts = {r[1]: r[2] for r in reports if r[0] == "consumer"}
    t_last = max(r[3] for r in reports if r[0] == "consumer")
    window = [(t, lag + pending) for t, lag, pending in samples if t0 <= t <= t1]
    backlog = [b for _, b in window] or [0]
    timeline = [backlog[min(len(backlog) - 1, len(backlog) * k // 10)] for k in range(1, 11)]
    return {
        "kind": kind,
        "messages": n_messages,
        "consumed": sum(counts.values()),
        "per_consumer": counts,
        "producer_rate": n_messages / (t1 - t0),
        "target_rate": rate,
        "rate": n_messages / (t_last - t0),
        "seconds": t_last - t0,
        "producer_cpu_us": producer_cpu / n_messages * 1e6,
        "consumer_cpu_us": consumer_cpu / n_messages * 1e6,
        "cpu_us": (producer_cpu + consumer_cpu) / n_messages * 1e6,
        "backlog_max": max(backlog),
        "backlog_median": sorted(backlog)[len(backlog) // 2],
        "backlog_slope": _slope(window),
        "pending_at_end": int(final),
        "samples": len(window),
        "timeline": timeline,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--consumers", type=int, default=2)
    parser.add_argument("--pace", type=float, default=0.7, help="paced row: fraction of capacity")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the median is shown")
    args = parser.parse_args(argv)
    print(
        f"workload: {args.messages:,} messages (recorded Binance BTCUSDT depth changes, book "
        f"tickers, trades, signals), 1 producer, {args.consumers} consumers in one group; "
        f"{os.cpu_count()} cores, redis-py {redis.__version__}"
    )
    runs: dict[str, list[dict[str, Any]]] = {"raw": [], "ours": [], "paced": []}
    for i in range(args.repeat):  # interleaved, order alternating: busy spells hit every row
        for kind in ("raw", "tradestack") if i % 2 == 0 else ("tradestack", "raw"):
            run = redis_throughput(args.messages, args.consumers, kind=kind)
            runs["raw" if kind == "raw" else "ours"].append(run)
        ours = runs["ours"][-1]
        runs["paced"].append(
            redis_throughput(
                args.messages, args.consumers, kind="tradestack", rate=args.pace * ours["rate"]
            )
        )
    raw, ours, paced = (sorted(r, key=lambda x: x["rate"])[len(r) // 2] for r in runs.values())
    cpu = {name: sorted(r["cpu_us"] for r in rows)[len(rows) // 2] for name, rows in runs.items()}
    print(f"median of {args.repeat} interleaved runs per row; paced at {args.pace:g} x capacity")
    header = (
        f"{'path':<18}{'msgs/s e2e':>11}{'vs raw':>8}{'cpu us/msg':>11}{'vs raw':>8}"
        f"{'producer/s':>11}{'split':>16}{'backlog med':>12}{'max':>8}{'slope/s':>9}{'left':>5}"
    )
    print(header)
    print("-" * len(header))
    named = (("raw redis-py", "raw", raw), ("tradestack", "ours", ours), ("paced", "paced", paced))
    for name, key, row in named:
        split = "/".join(f"{v:,}" for _, v in sorted(row["per_consumer"].items()))
        print(
            f"{name:<18}{row['rate']:>11,.0f}{row['rate'] / raw['rate']:>7.2f}x"
            f"{cpu[key]:>11.1f}{cpu[key] / cpu['raw']:>7.2f}x"
            f"{row['producer_rate']:>11,.0f}{split:>16}{row['backlog_median']:>12,}"
            f"{row['backlog_max']:>8,}{row['backlog_slope']:>9,.0f}{row['pending_at_end']:>5}"
        )
    print("backlog (lag + pending) at each tenth of the producing window:")
    for name, _, row in named:
        print(f"  {name:<16}" + " ".join(f"{b:>7,}" for b in row["timeline"]))
    every = [r for rows in runs.values() for r in rows]
    lost = [r["kind"] for r in every if r["consumed"] != r["messages"] or r["pending_at_end"]]
    if lost:
        print(f"MISMATCH: consumed != published in {lost}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
