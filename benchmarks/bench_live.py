"""Live-path benchmark: tick-to-order latency in paper mode, and Redis Streams throughput.

1. **Tick to order.** The bundled Binance spot recording (depth diffs, trades, the REST
   snapshot) goes frame by frame through the live code path: the JSON frame is decoded, the
   ccxt venue adapter and book sync turn it into events (``CcxtFeed.handle_frame``, as for a
   frame from the socket), the events become feed rows, and the paper engine replays them into
   a strategy that requotes both sides whenever the top of book moves. Latency is from the
   frame's arrival (before decoding) to the first order request reaching the simulated venue
   (``LiveL2Venue.submit``), for every frame that makes the strategy order; the whole session
   runs ``--loops`` times. The baseline row does the same decoding and book sync and then
   decides with a bare top-of-book check and a no-op submit: the practical lower bound of this
   path in Python. Goal: p99 under 1 ms.
2. **Redis Streams.** ``live_redis.redis_throughput``: one producer and two consumer processes
   on recorded market data, against raw redis-py (see that module).

Usage::

    .venv/bin/python benchmarks/bench_live.py [--loops 50] [--skip ticks,redis]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from tradestack.core.events import FundingRate, QuoteTick, TradeTick  # noqa: E402
from tradestack.core.ids import InstrumentId  # noqa: E402
from tradestack.core.instruments import Instrument, InstrumentKind  # noqa: E402
from tradestack.data.book.sync import BookUpdate  # noqa: E402
from tradestack.data.recordings import FrameKind, read_recording  # noqa: E402
from tradestack.data.sources.ccxt_feed import CcxtFeed  # noqa: E402
from tradestack.data.sources.session import make_adapter, make_exchange  # noqa: E402
from tradestack.engine.context import StrategyContext  # noqa: E402
from tradestack.engine.live import PaperEngine  # noqa: E402
from tradestack.engine.strategy import Strategy  # noqa: E402
from tradestack.execution.sim.config import L2VenueConfig  # noqa: E402
from tradestack.execution.sim.feed import CLEAR, L2_EVENT, L2Feed, Row, event_rows  # noqa: E402

RECORDING = ROOT / "examples" / "data" / "recordings" / "binance-spot-btcusdt-2024-08-08.jsonl.gz"
BTC = InstrumentId("BTC/USDT", "binance")
INSTRUMENT = Instrument(
    BTC, kind=InstrumentKind.SPOT, tick_size=Decimal("0.01"), lot_size=Decimal("0.00001")
)
GOAL_P99_MS = 1.0


class RequoteOnTop(Strategy):
    """Cancels its quotes and quotes ``qty`` at the best bid and ask whenever the top moves."""

    qty: Decimal = Decimal("0.001")

    def on_start(self, ctx: StrategyContext) -> None:
        self._last = (0.0, 0.0)

    def on_quote(self, ctx: StrategyContext, quote: QuoteTick) -> None:
        top = (quote.bid_price, quote.ask_price)
        if top == self._last or not (top[0] > 0 and top[1] > 0):
            return
        self._last = top
        for order in ctx.open_orders(BTC):
            ctx.cancel(order)
        ctx.buy(BTC, self.qty, price=top[0])
        ctx.sell(BTC, self.qty, price=top[1])


def _frames() -> tuple[dict[str, Any], list[Any]]:
    frames = read_recording(RECORDING)
    header = json.loads(next(frames).payload)
    return header, [f for f in frames if f.kind in (FrameKind.RECV, FrameKind.SNAPSHOT)]


def _feed(header: dict[str, Any], sink: Callable[[Any], None]) -> CcxtFeed:
    exchange = make_exchange(str(header["venue"]))
    exchange.set_markets(list(header["markets"].values()))
    adapter = make_adapter(str(header["venue"]), exchange, list(header["symbols"]))
    feed = CcxtFeed(adapter, sink, kinds=("book", "trades"))
    feed.replaying = True
    adapter.prepare()
    for symbol in header["symbols"]:
        adapter.books[symbol] = adapter.make_book(symbol)
    return feed


def _session(header: dict[str, Any], frames: list[Any], engine_path: bool) -> list[int]:
    """One pass over the recording; the latencies (ns) of the frames that made an order."""
    events: list[Any] = []
    feed = _feed(header, events.append)
    latencies: list[int] = []
    sent_at: list[int] = []
    waiting: list[Row] = []
    engine: PaperEngine | None = None
    top = (0.0, 0.0)
    for frame in frames:
        t0 = time.perf_counter_ns()
        sent_at.clear()
        snapshot = frame.kind is FrameKind.SNAPSHOT
        if snapshot:  # the initial sync, not a tick: its orders are not timed
            feed.handle_snapshot(frame.conn, json.loads(frame.payload), frame.ts_ns)
        else:
            feed.handle_frame(frame.url, json.loads(frame.payload), frame.ts_ns)
        batch = [e for e in events if isinstance(e, BookUpdate | TradeTick | FundingRate)]
        events.clear()
        if not batch:
            continue
        if not engine_path:  # the baseline: a bare top-of-book check, a no-op submit
            for event in batch:
                if isinstance(event, BookUpdate):
                    book = feed.adapter.books[header["symbols"][0]].book
                    bid, ask = book.best_bid(), book.best_ask()
                    if bid and ask and (bid[0], ask[0]) != top:
                        top = (bid[0], ask[0])
                        sent_at.append(time.perf_counter_ns())
            if sent_at and not snapshot:
                latencies.append(sent_at[0] - t0)
            continue
        rows = [row for event in batch for row in event_rows(event)]
        if engine is None:
            waiting.extend(rows)
            if any(row[2] == CLEAR for row in rows):
                engine = PaperEngine(
                    RequoteOnTop(),
                    L2Feed.from_rows(BTC, waiting),
                    instrument=INSTRUMENT,
                    venue=L2VenueConfig(feed_latency_ns=0, seed=1),
                    currency="USDT",
                )
                submit = engine.venue.submit

                def timed(order: Any, now_ns: int, submit: Any = submit) -> None:
                    sent_at.append(time.perf_counter_ns())
                    submit(order, now_ns)

                engine.venue.submit = timed  # type: ignore[method-assign]
                engine.start()
            continue
        engine.on_rows(np.array(rows, dtype=L2_EVENT))
        if sent_at and not snapshot:
            latencies.append(sent_at[0] - t0)
    return latencies


def tick_to_order(loops: int) -> dict[str, dict[str, float]]:
    header, frames = _frames()
    _session(header, frames, True)  # warm: imports, numba compile caches
    out: dict[str, list[int]] = {"baseline": [], "tradestack": []}
    for _ in range(loops):
        for name, engine_path in (("baseline", False), ("tradestack", True)):
            out[name].extend(_session(header, frames, engine_path))
    table = {}
    for name, values in out.items():
        ns = np.array(values, dtype=np.float64)
        table[name] = {
            "samples": float(len(ns)),
            "p50_us": float(np.percentile(ns, 50)) / 1e3,
            "p99_us": float(np.percentile(ns, 99)) / 1e3,
            "max_us": float(ns.max()) / 1e3,
        }
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loops", type=int, default=50)
    parser.add_argument("--skip", default="", help="comma list: ticks, redis")
    parser.add_argument("--messages", type=int, default=200_000, help="Redis section")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if "ticks" not in skip:
        table = tick_to_order(args.loops)
        base = table["baseline"]
        print(f"1. Tick to order, paper mode, Binance spot replay, {args.loops} passes")
        heads = ("orders", "p50 µs", "p99 µs", "max µs")
        print(f"{'path':<34}" + "".join(f"{h:>10}" for h in heads) + f"{'p99 vs base':>13}")
        for name, row in table.items():
            label = "baseline (decode, book, bare check)" if name == "baseline" else name
            ratio = row["p99_us"] / base["p99_us"]
            print(
                f"{label[:33]:<34}{int(row['samples']):>10}{row['p50_us']:>10.1f}"
                f"{row['p99_us']:>10.1f}{row['max_us']:>10.1f}{ratio:>12.2f}x"
            )
        p99_ms = table["tradestack"]["p99_us"] / 1e3
        verdict = "MET" if p99_ms < GOAL_P99_MS else "NOT MET"
        print(f"   goal: p99 tick-to-order < {GOAL_P99_MS:g} ms: {verdict} ({p99_ms:.3f} ms)")
    if "redis" not in skip:
        import live_redis

        print()
        print("2. Redis Streams, one producer, two consumers (benchmarks/live_redis.py)")
        live_redis.main(["--messages", str(args.messages)])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
