"""A small trading process for the kill -9 tests and the soak script.

It runs the order manager on the ccxt gateway against a fake venue (``--base-url``) with a
state database (``--db``), reconciles at every start, then works through a fixed, seeded plan of
orders, each under its own durable intent (``step<i>``): a step whose intent is already stored
was handled before a crash and is left to reconciliation. Killed anywhere (see
``execution.oms.crash``) and started again, it must end with every planned order at the venue
once, every fill stored once and the position equal to the venue's.

Exit codes: 0 done (a JSON summary on stdout), 3 reconciliation refused the start (the report
on stderr). Credentials come from ``TRADESTACK_API_KEY`` / ``TRADESTACK_API_SECRET``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from tradestack.core.ids import InstrumentId
from tradestack.core.orders import OrderSide, OrderType
from tradestack.execution.oms import OrderManager, RetryPolicy
from tradestack.execution.oms.ccxt_gateway import binance_gateway
from tradestack.execution.oms.crash import ENV
from tradestack.execution.oms.reconcile import ReconciliationError, check_fills, reconcile
from tradestack.storage import StateStore, open_database

BTC = InstrumentId("BTC/USDT", "binance")


@dataclass(frozen=True)
class Step:
    """One planned order: market, or a limit ``offset`` (quote units) inside the touch."""

    side: OrderSide
    qty: Decimal
    kind: OrderType
    offset: Decimal = Decimal(0)


def plan(steps: int, seed: int) -> list[Step]:
    """The seeded plan: mostly market orders of 0.001-0.02 BTC, buys and sells alternating
    in runs, and every fifth a marketable limit order."""
    rng = random.Random(seed)
    out = []
    side = OrderSide.BUY
    for i in range(steps):
        if rng.random() < 0.3:
            side = OrderSide.SELL if side is OrderSide.BUY else OrderSide.BUY
        qty = Decimal(rng.randint(1, 20)) / 1000
        if i % 5 == 4:
            out.append(Step(side, qty, OrderType.LIMIT, Decimal(rng.randint(5, 50))))
        else:
            out.append(Step(side, qty, OrderType.MARKET))
    return out


async def run(args: argparse.Namespace) -> int:
    store = StateStore(open_database(args.db, "test"))
    gateway = binance_gateway(
        args.base_url,
        api_key=os.environ.get("TRADESTACK_API_KEY", ""),
        secret=os.environ.get("TRADESTACK_API_SECRET", ""),
        timeout_s=args.timeout_s,
    )
    gateway.reserve = {"BTC": Decimal(args.reserve_btc)}
    oms = OrderManager(
        store, gateway, strategy="driver", policy=RetryPolicy(backoff_s=0.01, max_backoff_s=0.1)
    )
    try:
        try:
            await reconcile(oms, gateway, [BTC])
        except ReconciliationError as exc:
            print(exc, file=sys.stderr)
            return 3
        done = {row.intent for row in store.orders()}
        for i, step in enumerate(plan(args.steps, args.seed)):
            intent = f"step{i}"
            if intent in done:
                continue
            price = None
            if step.kind is OrderType.LIMIT:
                book = await gateway.exchange.fetch_order_book("BTC/USDT", 5)
                touch = Decimal(str(book["asks" if step.side is OrderSide.BUY else "bids"][0][0]))
                price = touch + step.offset * step.side.sign
            await oms.submit(
                BTC, step.side, step.qty, order_type=step.kind, price=price, intent=intent
            )
        final = await check_fills(oms, gateway, [BTC])
        position = store.positions().get(BTC)
        print(
            json.dumps(
                {
                    "orders": len(store.orders()),
                    "fills": len(store.fills()),
                    "open": len(final.open_orders),
                    "position": str(position.qty if position else 0),
                    "positions_agree": final.ok,
                    "stats": dict(oms.stats),
                }
            )
        )
        return 0
    finally:
        await gateway.close()


async def run_driver(
    base_url: str,
    db: Path,
    *,
    steps: int,
    api_key: str,
    secret: str,
    seed: int = 5,
    crash_at: str | None = None,
) -> tuple[int, str, str]:
    """Run this driver as a child process (``crash_at``: ``<window>:<n>``, see
    ``execution.oms.crash``); returns its exit code (-9 when it killed itself), stdout and
    stderr."""
    env = {**os.environ, "TRADESTACK_API_KEY": api_key, "TRADESTACK_API_SECRET": secret}
    env.pop(ENV, None)
    if crash_at:
        env[ENV] = crash_at
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tradestack.testing.oms_driver", "--base-url", base_url,
        "--db", str(db), "--steps", str(steps), "--seed", str(seed),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 300)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reserve-btc", default="10", help="BTC the account held before")
    parser.add_argument("--timeout-s", type=float, default=2.0)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
