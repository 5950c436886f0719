"""Parity with hftbacktest 2.4.4 on the real Binance USD-M BTCUSDT recording of 2024-08-08.

hftbacktest pins numpy < 2.3, so it runs in its own environment (``.venv-peers``, made by
``make``) through ``benchmarks/peers_hftbacktest.py``; both engines get the same feed rows.

Conventions bridged (see the peer module's docstring): hftbacktest gets quantities in whole
lots and its resting orders a 1e-6-lot epsilon (it crashes on an exact queue fill otherwise);
its own account misses partial and walk fills, so its fills are tracked per order response,
one row per (order, exchange time); our fills are summed the same way. Our venue runs with
``consume_liquidity=False`` (hftbacktest never removes depth it took).

Remaining difference, explained: for a taker order that walked two levels within one
response, the peer's tracking sees only the last level's price (the row's quantity is right),
so its PnL differs from ours by exactly those price gaps (checked below to the cent).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from benchmarks.bench_l2 import BTC, INSTRUMENT, LATENCY_NS

from tradestack.engine.l2 import L2BacktestEngine, L2BacktestResult
from tradestack.engine.strategy import Strategy
from tradestack.execution.sim.config import L2VenueConfig, LatencyModel
from tradestack.execution.sim.feed import L2Feed, binance_feed
from tradestack.strategies.quote_at_touch import QuoteAtTouch

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[3]
PEER = ROOT / "benchmarks" / "peers_hftbacktest.py"
PEER_PYTHON = Path(os.environ.get("TRADESTACK_PEERS_PYTHON", ROOT / ".venv-peers/bin/python"))


def _peer(job: str, feed: L2Feed, args: dict[str, Any], tmp: Path) -> Any:
    if not PEER_PYTHON.exists():
        pytest.skip(f"hftbacktest environment {PEER_PYTHON} is missing (run `make test`)")
    events, params, out = tmp / "events.npy", tmp / "args.json", tmp / "out.json"
    np.save(events, feed.events)
    params.write_text(json.dumps(args))
    subprocess.run(
        [str(PEER_PYTHON), str(PEER), job, str(events), str(out), str(params)],
        check=True,
        cwd=ROOT,
        timeout=600,
    )
    return json.loads(out.read_text())


@pytest.fixture(scope="module")
def feed(shared_data: Path) -> L2Feed:
    path = shared_data / "ws_messages/binance_usdm/hftbacktest_btcusdt_20240808.gz"
    return binance_feed(path, BTC, futures=True)


def _sequence(client_order_id: str) -> int:
    return int(client_order_id.split("-")[1])


class MarketOrderSchedule(Strategy):
    """Sends each scheduled market order at its time."""

    def __init__(self, schedule: list[tuple[int, int, float]]) -> None:
        super().__init__()
        self.schedule = schedule

    def on_start(self, ctx: Any) -> None:
        for i, (ts, _, _) in enumerate(self.schedule):
            ctx.set_timer(f"order-{i}", 10**18, ts)

    def on_timer(self, ctx: Any, name: str, ts_ns: int) -> None:
        _, side, qty = self.schedule[int(name.split("-")[1])]
        (ctx.buy if side > 0 else ctx.sell)(BTC, Decimal(str(qty)))


def test_market_order_schedule_fills_level_by_level_like_hftbacktest(
    feed: L2Feed, tmp_path: Path
) -> None:
    t0 = int(feed.events["local_ts"].min())
    schedule = [
        (
            t0 + 5_000_000_000 + i * 15_000_000_000,
            1 if i % 2 == 0 else -1,
            round(0.05 + i * 0.1026, 3),
        )
        for i in range(20)
    ]
    peer = _peer(
        "market", feed, {"schedule": schedule, "tick_size": 0.1, "lot_size": 0.001}, tmp_path
    )
    venue = L2VenueConfig(consume_liquidity=False, leverage=Decimal(100))
    result = L2BacktestEngine(
        MarketOrderSchedule(schedule),
        feed,
        instrument=INSTRUMENT,
        venue=venue,
        starting_cash=Decimal(10**6),
    ).run()
    ours: dict[int, list[tuple[Decimal, Decimal, int]]] = defaultdict(list)
    for fill in result.fills:
        ours[_sequence(fill.client_order_id)].append((fill.price, fill.qty, fill.ts_event_ns))
    assert len(peer) == len(schedule) == len(ours)
    levels = 0
    for n, theirs in enumerate(peer, start=1):
        assert theirs["verified"] and theirs["status"] == "filled"
        expected = [(Decimal(str(f["price"])), Decimal(str(f["qty"]))) for f in theirs["fills"]]
        assert [(p, q) for p, q, _ in ours[n]] == expected, f"order {n}"
        assert {ts for _, _, ts in ours[n]} == {theirs["exch_ts"]}
        levels += len(expected)
    assert levels > len(schedule)  # the larger orders walked several levels


def _our_market_making(feed: L2Feed) -> tuple[L2BacktestResult, QuoteAtTouch]:
    strategy = QuoteAtTouch(order_qty=Decimal("0.01"), max_position=Decimal("0.1"))
    venue = L2VenueConfig(
        queue_model="fifo",
        entry_latency=LatencyModel(ns=LATENCY_NS),
        response_latency=LatencyModel(ns=LATENCY_NS),
        consume_liquidity=False,
    )
    result = L2BacktestEngine(
        strategy, feed, instrument=INSTRUMENT, venue=venue, starting_cash=Decimal(100_000)
    ).run()
    return result, strategy


def test_market_maker_fills_like_hftbacktest(feed: L2Feed, tmp_path: Path) -> None:
    peer = _peer(
        "mm",
        feed,
        {
            "tick_size": 0.1,
            "lot_size": 0.001,
            "order_qty": 0.01,
            "max_position": 0.1,
            "entry_latency_ns": LATENCY_NS,
            "response_latency_ns": LATENCY_NS,
            "maker_fee": -0.00005,
            "taker_fee": 0.0004,
        },
        tmp_path,
    )
    result, strategy = _our_market_making(feed)
    rows: dict[tuple[int, int], list[Any]] = defaultdict(lambda: [Decimal(0), Decimal(0), set()])
    for f in result.fills:
        row = rows[(_sequence(f.client_order_id), f.ts_event_ns)]
        row[0] += f.qty
        row[1] += f.qty * f.price
        row[2].add(f.liquidity.value)
    theirs = {(f["order_id"], f["exch_ts"]): f for f in peer["fills"]}
    # the issue asks for fill counts within 5%; on this recording they are equal row for row
    assert abs(len(rows) - peer["n_fills"]) <= 0.05 * peer["n_fills"]
    assert set(rows) == set(theirs)
    assert len({k[0] for k in rows}) == peer["n_orders_filled"]
    assert len(result.orders) == peer["n_orders_submitted"]
    assert strategy.requotes == peer["n_requotes"]
    gap = Decimal(0)
    for key, (qty, value, liquidity) in rows.items():
        peer_row = theirs[key]
        assert qty == Decimal(str(peer_row["qty"])), key
        assert liquidity == {"maker" if peer_row["maker"] else "taker"}, key
        peer_value = qty * Decimal(str(peer_row["price"]))
        if peer_row["maker"] or not peer_row["merged"]:
            assert value == peer_value, key
        else:  # a two-level walk: the peer's tracking sees the last level's price only
            gap += -peer_row["side"] * (value - peer_value)
    assert result.portfolio.position(BTC).qty == Decimal(str(peer["position"]))
    ours_pnl = result.final_equity - float(result.portfolio.starting_cash)
    assert (ours_pnl > 0) == (peer["equity"] > 0)
    assert abs(ours_pnl - peer["equity"] - float(gap)) < 0.01
    assert abs(float(result.portfolio.total_fees) - peer["fee"]) < 0.01
