"""Soak: kill -9 the trading process hundreds of times in each window of an order's life.

For each window (intent→submit, submit→ack, ack→fill persisted, fill→position) the driver
(``tradestack.testing.oms_driver``) trades against the fake Binance desk over HTTP and is
killed with SIGKILL at a seeded pass of that window, restarted (reconciling at start) and
killed again, ``--kills`` times; a last run completes the plan. Then the venue and the state
database are compared: orders at the venue twice, fills lost, the position against the venue's.

Usage::

    .venv/bin/python benchmarks/soak_kill9.py [--kills 200] [--windows intent,sent,ack,fill]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from tradestack.execution.oms.crash import WINDOWS
from tradestack.storage import StateStore, open_database
from tradestack.testing.fake_venue import FakeVenueServer
from tradestack.testing.oms_driver import BTC, run_driver
from tradestack.testing.venues.binance import BinanceFakeVenue, with_rest_snapshots
from tradestack.testing.venues.binance_trading import BinanceTradingDesk

ROOT = Path(__file__).resolve().parent.parent
SLICE = ROOT / "examples" / "data" / "recordings" / "binance-spot-btcusdt-2024-08-08.jsonl.gz"
KEY, SECRET = "soak-key", "soak-secret"
BIG_PLAN = 1_000_000  # the plan never runs out while killing


async def _driver(base_url: str, db: Path, steps: int, crash_at: str | None) -> int:
    code, _, err = await run_driver(
        base_url, db, steps=steps, api_key=KEY, secret=SECRET, crash_at=crash_at
    )
    if code not in (0, -signal.SIGKILL):
        raise RuntimeError(f"driver exited {code}: {err[-2000:]}")
    return code


def _venue_position(desk: BinanceTradingDesk) -> Decimal:
    total = Decimal(0)
    for t in desk.engine.trades:
        total += t.qty if t.side == "BUY" else -t.qty
        total -= t.commission if t.commission_asset == "BTC" else 0
    return total


async def soak_window(window: str, kills: int, recording: Path, work: Path) -> dict[str, object]:
    desk = BinanceTradingDesk(api_key=KEY, secret=SECRET)
    venue = BinanceFakeVenue([recording], desk=desk)
    desk.advance(50)
    db = work / f"{window}.db"
    rng = random.Random(window)
    started = time.perf_counter()
    done = 0
    async with FakeVenueServer(venue) as server:
        while done < kills:
            code = await _driver(server.base_url, db, BIG_PLAN, f"{window}:{rng.randint(1, 3)}")
            done += code == -signal.SIGKILL
        steps = 1 + max(int(r.intent[4:]) for r in StateStore(open_database(db, "test")).orders())
        code = await _driver(server.base_url, db, steps, None)
    store = StateStore(open_database(db, "test"))
    ids = [o.client_order_id for o in desk.engine.orders.values()]
    stored_trades = {f.trade_id for f in store.fills()}
    venue_trades = {str(t.trade_id) for t in desk.engine.trades}
    local = store.positions()[BTC].qty
    return {
        "window": window,
        "kills": done,
        "final exit": code,
        "venue orders": len(ids),
        "duplicate orders": desk.duplicate_orders + len(ids) - len(set(ids)),
        "lost fills": len(venue_trades - stored_trades),
        "phantom fills": len(stored_trades - venue_trades),
        "position local": str(local),
        "position venue": str(_venue_position(desk)),
        "agree": local == _venue_position(desk),
        "seconds": round(time.perf_counter() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--windows", default=",".join(WINDOWS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        recording = with_rest_snapshots(SLICE, work / "recording.jsonl.gz")
        rows = [
            asyncio.run(soak_window(w, args.kills, recording, work))
            for w in args.windows.split(",")
        ]
    columns = list(rows[0])
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[c]).ljust(w) for c, w in zip(columns, widths, strict=True)))
    bad = [r for r in rows if r["duplicate orders"] or r["lost fills"] or not r["agree"]]
    raise SystemExit(1 if bad or any(r["final exit"] != 0 for r in rows) else 0)


if __name__ == "__main__":
    main()
