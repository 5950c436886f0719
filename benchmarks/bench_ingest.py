"""Ingest benchmark: recorded Binance depth diffs, raw frame → normalized rows → Parquet.

Workload: every ``depthUpdate`` frame of the Binance recordings in ``../shared/data/ws_messages``
(spot BTCUSDT @100ms, USD-M BTCUSDT @0ms twice, COIN-M BTCUSD_PERP @0ms), as the raw bytes the
exchange sent, replayed as fast as possible. Paths, each on the same frames:

* ``json.loads only`` — stdlib parsing, nothing else: what any Python pipeline pays at least;
* ``tradestack bulk`` — :class:`BinanceDepthIngest` (numba scanner) → ``Catalog.write`` (Parquet),
  and the same without the write (``rows only``) to show where the time goes;
* ``tradestack live path`` — orjson decode → :class:`BinanceBookSync` (the live book, gap
  checks) → :class:`CatalogSink` → Parquet: what ``tradestack replay`` does per message (files
  with a REST snapshot only: the 2023 USD-M file is a continuation without one);
* ``ccxt handle_message`` — ccxt.pro's own Binance handler on decoded frames (its parsing and
  its order book), no socket, no Parquet: the peer's in-process cost;
* ``fake venue + ccxt`` — the real ccxt.pro client over a local WebSocket from the fake venue,
  frames tapped into our book and the catalog (spot + USD-M 2024 files: those have the recorded
  exchangeInfo ccxt needs to load markets).

In-process rows run on one core (``POLARS_MAX_THREADS=1``, numba single-threaded). Usage::

    .venv/bin/python benchmarks/bench_ingest.py [--repeat 3] [--skip socket]
"""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "1")

import argparse
import asyncio
import gc
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson

from tradestack.core.ids import InstrumentId
from tradestack.data.catalog import Catalog
from tradestack.data.recorder import CatalogSink
from tradestack.data.recordings import FrameKind, read_recording
from tradestack.data.venues.binance import BinanceBookSync, unwrap
from tradestack.data.venues.binance_ingest import BinanceDepthIngest

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ws_messages"
FILES = {
    "spot": ("binance_spot/hftbacktest_btcusdt_20240808.gz", "binance", "BTC/USDT", False),
    "usdm": ("binance_usdm/hftbacktest_btcusdt_20240808.gz", "binanceusdm", "BTC/USDT:USDT", True),
    "usdm23": (
        "binance_usdm/hftbacktest_btcusdt_20230405.dat.gz",
        "binanceusdm",
        "BTC/USDT:USDT",
        True,
    ),
    "coinm": (
        "binance_coinm/hftbacktest_btcusd_perp_20240808.gz",
        "binancecoinm",
        "BTC/USD:BTC",
        True,
    ),
}
INFO = {
    "spot": "binance_spot/cryptofeed_2021-10-12_BINANCE.0.gz",
    "usdm": "binance_usdm/cryptofeed_2021-07-22_BINANCE_FUTURES.0",
}


class Workload:
    """The depth frames (raw bytes + receive time) and REST snapshot of each file."""

    def __init__(self) -> None:
        self.frames: dict[str, list[tuple[bytes, int]]] = {}
        self.snapshots: dict[str, dict[str, object]] = {}
        for name, (path, *_rest) in FILES.items():
            frames = []
            for frame in read_recording(SHARED / path):
                if frame.kind is FrameKind.REST:
                    self.snapshots[name] = json.loads(frame.payload)
                elif '"depthUpdate"' in frame.payload[:80]:
                    frames.append((frame.payload.encode(), frame.ts_ns))
            self.frames[name] = frames

    @property
    def messages(self) -> int:
        return sum(len(f) for f in self.frames.values())


def run_json_only(work: Workload, _: Path) -> int:
    for frames in work.frames.values():
        for raw, _ts in frames:
            json.loads(raw)
    return 0


def run_bulk(work: Workload, root: Path) -> int:
    catalog = Catalog(root)
    rows = 0
    for name, frames in work.frames.items():
        _, venue, symbol, _ = FILES[name]
        ingest = BinanceDepthIngest()
        for raw, ts in frames:
            ingest.add(raw, ts)
        frame = ingest.to_frame()
        catalog.write(venue, "book", symbol, frame)
        rows += frame.height
    return rows


def run_rows_only(work: Workload, _: Path) -> int:
    rows = 0
    for frames in work.frames.values():
        ingest = BinanceDepthIngest()
        for raw, ts in frames:
            ingest.add(raw, ts)
        rows += ingest.to_frame().height
    return rows


def run_live_path(work: Workload, root: Path) -> int:
    sink = CatalogSink(Catalog(root))
    for name, frames in work.frames.items():
        if name not in work.snapshots:
            continue  # a book needs a snapshot; the 2023 file is a continuation without one
        _, venue, symbol, futures = FILES[name]
        sync = BinanceBookSync(InstrumentId(symbol, venue), futures=futures)
        for update in sync.on_snapshot(work.snapshots[name], 0):
            sink(update)
        for raw, ts in frames:
            update = sync.on_message_safe(unwrap(orjson.loads(raw))[1], ts)
            if update is not None:
                sink(update)
    sink.flush()
    return sum(sink.written.values())


def run_ccxt_in_process(work: Workload, _: Path) -> int:
    import ccxt.pro as ccxtpro

    class FakeClient:
        def __init__(self, url: str) -> None:
            self.url = url
            self.subscriptions: dict[str, object] = {}
            self.futures: dict[str, object] = {}

        def resolve(self, result: object, message_hash: str) -> None:
            pass

        def reject(self, error: object, message_hash: str) -> None:
            raise RuntimeError(error)

    handled = 0
    for name, frames in work.frames.items():
        if name not in INFO:
            continue
        _, venue, symbol, _ = FILES[name]
        exchange = getattr(ccxtpro, venue)({"options": {"watchOrderBookLimit": 10_000}})
        exchange.set_markets(_markets_from_info(exchange, SHARED / INFO[name]))
        snapshot = work.snapshots[name]
        book = exchange.order_book({}, 10_000)
        book.reset(exchange.parse_order_book(snapshot, symbol))
        book["nonce"] = snapshot["lastUpdateId"]
        exchange.orderbooks[symbol] = book
        client = FakeClient("wss://stream.binance.com:9443/ws" if venue == "binance" else "x")
        for raw, _ts in frames:
            exchange.handle_message(client, orjson.loads(raw))
            handled += 1
    return handled


def _rest_body(path: Path) -> str:
    from tradestack.testing.venues.binance import _read_rest_body

    return _read_rest_body(path)


def _markets_from_info(exchange: object, path: Path) -> list[dict[str, object]]:
    """ccxt's own market parsing of the recorded exchangeInfo (no network)."""
    info = json.loads(_rest_body(path))
    options = exchange.options  # type: ignore[attr-defined]
    options.setdefault("crossMarginPairsData", [])
    options.setdefault("isolatedMarginPairsData", [])
    parse = exchange.parse_market  # type: ignore[attr-defined]
    return [parse(m) for m in info["symbols"] if m.get("symbol") in ("BTCUSDT",)]


async def _socket_path(work: Workload, root: Path) -> int:
    from tradestack.data.sources.ccxt_feed import CcxtFeed
    from tradestack.data.sources.session import make_adapter, make_exchange
    from tradestack.testing.fake_venue import FakeVenueServer
    from tradestack.testing.venues.binance import BinanceFakeVenue

    total = 0
    for name in ("spot", "usdm"):
        path, venue_id, symbol, futures = FILES[name]
        venue = BinanceFakeVenue(
            [SHARED / path], futures=futures, exchange_info=SHARED / INFO[name]
        )
        # only depth frames, as in the other rows
        venue.frames = [f for f in venue.frames if f.channel[0] in ("depth", "snapshot")]
        sink = CatalogSink(Catalog(root))
        async with FakeVenueServer(venue) as server:
            exchange = make_exchange(
                venue_id, base_url=server.base_url, options={"watchOrderBookLimit": 10_000}
            )
            feed = CcxtFeed(make_adapter(venue_id, exchange, [symbol]), sink, kinds=("book",))
            async with feed:
                await venue.finished.wait()
                while feed.stats.messages < len(work.frames[name]) and venue.connections:
                    await asyncio.sleep(0.01)
            total += feed.stats.messages
        sink.flush()
    return total


def run_socket(work: Workload, root: Path) -> int:
    return asyncio.run(_socket_path(work, root))


PATHS: dict[str, tuple[Callable[[Workload, Path], int], str]] = {
    "json.loads only": (run_json_only, "all"),
    "tradestack bulk rows only (no Parquet)": (run_rows_only, "all"),
    "tradestack bulk (numba scan -> Parquet)": (run_bulk, "all"),
    "tradestack live path (book sync -> Parquet)": (run_live_path, "with snapshot"),
    "ccxt.pro handle_message (no socket, no Parquet)": (run_ccxt_in_process, "spot+usdm"),
    "fake venue + ccxt client -> book -> Parquet": (run_socket, "spot+usdm"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma list: json,bulk,live,ccxt,socket")
    args = parser.parse_args()
    skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    work = Workload()
    subsets = {
        "all": work.messages,
        "spot+usdm": len(work.frames["spot"]) + len(work.frames["usdm"]),
        "with snapshot": sum(len(work.frames[n]) for n in work.snapshots),
    }
    levels = sum(
        len(d["b"]) + len(d["a"])
        for frames in work.frames.values()
        for d in (unwrap(orjson.loads(raw))[1] for raw, _ in frames)
    )
    print(f"workload: {work.messages:,} depth frames, {levels:,} levels, from {len(FILES)} files")
    run_bulk(work, Path(tempfile.mkdtemp()))  # numba compile/cache load outside the timing
    results: list[tuple[str, int, float]] = []
    for label, (func, subset) in PATHS.items():
        if any(s in label for s in skip):
            continue
        best = float("inf")
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as tmp:
                gc.collect()
                start = time.perf_counter()
                func(work, Path(tmp))
                best = min(best, time.perf_counter() - start)
        results.append((label, subsets[subset], best))
    base = next((r for r in results if r[0].startswith("tradestack bulk (")), None)
    header = f"{'path':50s} {'msgs':>8s} {'seconds':>8s} {'msgs/s':>10s} {'vs bulk->Parquet':>17s}"
    print("\n" + header)
    for label, n, seconds in results:
        rate = n / seconds
        ratio = f"{rate / (base[1] / base[2]):.2f}x" if base else "-"
        print(f"{label:50s} {n:>8,} {seconds:>8.3f} {rate:>10,.0f} {ratio:>17s}")
    if base:
        rate = base[1] / base[2]
        verdict = "MET" if rate >= 1e5 else "MISSED"
        print(f"\ngoal >= 100,000 msg/s raw frame -> Parquet, one core: {verdict} ({rate:,.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
