"""L2 replay benchmark: events/second through the order-book engine, next to its peers.

Workload: the recorded Binance USD-M BTCUSDT session of 2024-08-08 (REST snapshot, depth@0ms
diffs, trades; 466,576 rows as built by :func:`binance_feed`) looped back to back until it has
``--events`` rows (default 1,000,000; every copy restarts from the snapshot). The same array
goes to every engine; building it is not timed.

Rows (best of ``--repeat`` in-process runs after one warm-up run, one core):

* ``tradestack (a) no strategy`` — the engine replays both books with nothing to wake;
* ``tradestack (b) market maker`` — :class:`QuoteAtTouch` woken every 100 ms by its timer and
  on each of its own order events (acks, fills, cancels), 5 ms entry and response latency;
* ``tradestack (c) callback/event`` — a Python handler for every book message and every trade;
* ``hftbacktest`` (a) no strategy (one elapse to the end) and (b) the same market maker as a
  numba-jitted loop (its idiomatic form) with the same latencies and FIFO queue model;
* ``nautilus_trader`` (a) no strategy and (c) a strategy with a handler per delta batch and
  per trade (order-book deltas + trade ticks).

``first run`` is the warm-up run for us (numba cache load) and hftbacktest's setup (JIT
warm-up, conversion, building the asset); ``process s`` is the wall time of a fresh ``python``
process: for us one run of that row (imports, cached compiled code; the feed comes from an
``.npy``), for hftbacktest its whole job (``--repeat`` runs plus setup; it lives in
``.venv-peers`` because it pins numpy < 2.3). Usage::

    .venv/bin/python benchmarks/bench_l2.py [--events 1000000] [--repeat 3] [--skip nautilus]
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.engine.l2 import L2BacktestEngine
from tradestack.engine.strategy import Strategy
from tradestack.execution.sim.config import L2VenueConfig, LatencyModel
from tradestack.execution.sim.feed import L2Feed, binance_feed
from tradestack.strategies.quote_at_touch import QuoteAtTouch

ROOT = Path(__file__).resolve().parents[1]
PEERS_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
RECORDING = ROOT.parent / "shared/data/ws_messages/binance_usdm/hftbacktest_btcusdt_20240808.gz"
BTC = InstrumentId("BTCUSDT", "binance")
INSTRUMENT = Instrument(
    BTC,
    kind=InstrumentKind.PERPETUAL,
    quote_currency="USDT",
    tick_size=Decimal("0.1"),
    lot_size=Decimal("0.001"),
    maker_fee_bps=Decimal("-0.5"),
    taker_fee_bps=Decimal("4"),
)
LATENCY_NS = 5_000_000
VENUE = L2VenueConfig(
    entry_latency=LatencyModel(ns=LATENCY_NS),
    response_latency=LatencyModel(ns=LATENCY_NS),
    consume_liquidity=False,
)


class Idle(Strategy):
    """Reacts to nothing: mode (a)."""


class CountEvents(Strategy):
    """A Python handler on every book message and every trade: mode (c)."""

    def on_start(self, ctx: Any) -> None:
        self.calls = 0

    def on_book(self, ctx: Any, book: Any) -> None:
        self.calls += 1

    def on_trade(self, ctx: Any, trade: Any) -> None:
        self.calls += 1


class MarketMaker(QuoteAtTouch):
    """:class:`QuoteAtTouch` that also handles its own fills: mode (b)."""

    def on_fill(self, ctx: Any, fill: Any) -> None:
        self.fills = getattr(self, "fills", 0) + 1


STRATEGIES: dict[str, Callable[[], Strategy]] = {
    "a": Idle,
    "b": lambda: MarketMaker(order_qty=Decimal("0.01"), max_position=Decimal("0.1")),
    "c": CountEvents,
}


def workload(n_events: int) -> L2Feed:
    return binance_feed(RECORDING, BTC, futures=True).looped(n_events)


def run_ours(feed: L2Feed, mode: str) -> tuple[float, Strategy]:
    strategy = STRATEGIES[mode]()
    engine = L2BacktestEngine(strategy, feed, instrument=INSTRUMENT, venue=VENUE)
    gc.collect()
    start = time.perf_counter()
    engine.run()
    return time.perf_counter() - start, strategy


def best_of(fn: Callable[[], float], repeat: int) -> tuple[float, float]:
    """(first run, best of the next ``repeat`` runs) in seconds."""
    first = fn()
    return first, min(fn() for _ in range(repeat))


def process_seconds(code: str, npy: Path) -> float:
    """Wall time of a fresh interpreter running ``code`` (``EVENTS`` = the feed rows)."""
    prelude = (
        "import numpy as np; from tradestack.execution.sim.feed import L2Feed, FeedStats; "
        "from tradestack.core.ids import InstrumentId; "
        f"EVENTS = np.load({str(npy)!r}); "
    )
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", prelude + code], check=True, cwd=ROOT)
    return time.perf_counter() - start


def hftbacktest_speed(
    npy: Path, mode: str, repeat: int, tmp: Path
) -> tuple[list[dict[str, Any]], float]:
    """hftbacktest runs in its own environment (numpy < 2.3): its runs and the process time."""
    args, out = tmp / f"hbt-{mode}.json", tmp / f"hbt-{mode}-out.json"
    args.write_text(json.dumps({"mode": mode, "repeat": repeat}))
    start = time.perf_counter()
    subprocess.run(
        [str(PEERS_PYTHON), "benchmarks/peers_hftbacktest.py", "speed", str(npy), str(out),
         str(args)],
        check=True,
        cwd=ROOT,
    )  # fmt: skip
    return json.loads(out.read_text()), time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma list: hftbacktest,nautilus,process")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    feed = workload(args.events)
    n = len(feed)
    print(f"workload: {n:,} L2 rows (Binance USD-M BTCUSDT 2024-08-08, looped), one core")
    rows: list[tuple[str, float | None, float, float | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        npy = Path(tmp) / "events.npy"
        np.save(npy, feed.events)
        for mode, label in (("a", "no strategy"), ("b", "market maker"), ("c", "callback/event")):
            first, best = best_of(lambda m=mode: run_ours(feed, m)[0], args.repeat)
            proc = None
            if "process" not in skip:
                code = (
                    "from benchmarks.bench_l2 import run_ours; "
                    "run_ours(L2Feed(InstrumentId('BTCUSDT', 'binance'), EVENTS, FeedStats()), "
                    f"{mode!r})"
                )
                proc = process_seconds(code, npy)
            rows.append((f"tradestack ({mode}) {label}", first, best, proc))
        if "hftbacktest" not in skip:
            for mode, label in (("none", "(a) no strategy"), ("mm", "(b) market maker")):
                runs, proc = hftbacktest_speed(npy, mode, args.repeat, Path(tmp))
                best = min(r["run_s"] for r in runs)
                rows.append((f"hftbacktest {label}", runs[0]["setup_s"], best, proc))
    if "nautilus" not in skip:
        sys.path.insert(0, str(ROOT))
        from benchmarks.peers_nautilus_l2 import nautilus_replay

        for mode, label in (("none", "(a) no strategy"), ("callback", "(c) callback/event")):
            runs = [nautilus_replay(feed.events, mode) for _ in range(max(1, args.repeat - 1))]
            rows.append((f"nautilus_trader {label}", None, min(r["run_s"] for r in runs), None))
    print_table(rows, n)
    return 0


def print_table(rows: list[tuple[str, float | None, float, float | None]], n: int) -> None:
    ref = {r[0].split(" ")[1]: r[2] for r in rows if r[0].startswith("hftbacktest")}
    naut = {r[0].split(" ")[1]: r[2] for r in rows if r[0].startswith("nautilus")}
    head = (
        f"{'engine / mode':36} {'first run s':>11} {'best s':>8} {'events/s':>12} "
        f"{'vs hftbacktest':>14} {'vs nautilus':>11} {'process s':>9}"
    )
    print(head)
    print("-" * len(head))
    for name, first, best, proc in rows:
        mode = name.split(" ")[1]
        vs_hbt = ref.get(mode)
        vs_naut = naut.get("(a)" if mode == "(a)" else "(c)" if mode == "(c)" else "")
        print(
            f"{name:36} {_f(first, 11)} {best:8.3f} {n / best:12,.0f} "
            f"{_ratio(vs_hbt, best):>14} {_ratio(vs_naut, best):>11} {_f(proc, 9)}"
        )
    print("ratios: peer seconds / these seconds (>1 = faster than the peer on that mode)")


def _f(value: float | None, width: int) -> str:
    return f"{value:{width}.3f}" if value is not None else f"{'-':>{width}}"


def _ratio(peer: float | None, ours: float) -> str:
    return f"{peer / ours:.2f}x" if peer else "-"


if __name__ == "__main__":
    raise SystemExit(main())
