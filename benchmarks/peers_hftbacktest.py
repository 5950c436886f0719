"""hftbacktest 2.4.x run on our L2 event array: the parity peer for the simulated L2 venue.

The runners convert our ``L2_EVENT`` rows with :func:`to_hftbacktest_events` and run
``HashMapMarketDepthBacktest`` with ``partial_fill_exchange``, ``risk_adverse_queue_model``,
``linear_asset(1)``. hftbacktest is imported lazily; results are plain Python values.

Conversion: DEPTH/SNAPSHOT -> depth events (side +1 BUY_EVENT, -1 SELL_EVENT), TRADE -> trade
with the aggressor flag, CLEAR side 0 -> clear both sides, side +-1 -> "clear from the best to
px" (NaN/0 px: whole side); FUNDING dropped. Timestamps are kept (our feed already removes the
clock skew like ``correct_local_timestamp``); ``correct_event_order`` makes EXCH rows run by
``exch_ts`` and LOCAL rows by ``local_ts`` (stable: ties keep our row order).

Lot units: hftbacktest gets quantities in whole lots (``lot_size=1``) so its arithmetic is
exact; results are converted back. Resting (MM) orders are sent as ``lots - 1e-6``: 2.4.4
removes an order filled through the queue only when the executable qty is *greater* than its
leaves; on equality it stays in the book as FILLED and the next trade/cross at its price
aborts the run (``InvalidOrderStatus``, code 14; it happens on the BTCUSDT file). With the
epsilon equality acts as ``>=``; all other comparisons are unchanged.

Fills. 2.4.4's local ``state_values`` only book a response whose status is FILLED, with that
response's ``exec_qty``/price: earlier partial fills, all but the last level of a taker walk
(intermediate levels send no response) and fills of orders that end EXPIRED/CANCELED are
missing there (reported as ``native``). So:

* ``run_market_orders``: a second backtest over the same rows with ``local_ts = exch_ts`` runs
  in lockstep; its local book is the exchange book at the send time and the walk is rebuilt
  from it (buy ticks ``[best_ask, best_ask + 100)``, sell ``[best_bid - 100, best_bid]``;
  ``min(level, leaves)`` per level; EXPIRED if lots remain). ``verified``: the rebuilt walk
  ends with the order's ``exec_price_tick``/``exec_qty`` and leaves/status, so every
  (price, qty) is exact.
* ``run_market_making``: an order's cumulative fill is ``qty - leaves_qty`` of its local copy,
  read after every ``wait_next_feed(include_order_resp=True)`` return (``track_fills``) or at
  wakeups only (same simulation either way). With ``track_fills`` a row is every fill of one
  order delivered at one local ns, i.e. one exch_ts (constant latency): compare with our
  fills summed per (order, exch_ts). ``merged`` rows hold more than the last response (>= 2
  fills). Maker rows are at the order price; a taker row has the last walked level's price.
  The strategy uses this tracked position (whole lots), not ``position()``.

Money: amount = price * qty; buy: balance -= amount; fee = amount * rate; equity = balance -
fee + position * mid (``LinearAsset.equity``), mid = final local (bid + ask) / 2. ``price`` =
``price_tick * tick_size`` rounded to the tick's decimals + 2; ``price_tick`` is exact.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from functools import cache
from typing import Any

import numpy as np

DEPTH, TRADE, CLEAR, SNAPSHOT, FUNDING = 1, 2, 3, 4, 5
GTC, LIMIT, MARKET = 0, 0, 1
FILLED, EXPIRED = 3, 2
EPS_LOTS = 1e-6
BOOK_KEYS = ("local_bid", "local_ask", "exch_bid", "exch_ask")
# order_qty, max_position, entry/response latency ns, maker/taker fee, wakeup interval ns
MM_BENCH = (0.01, 0.1, 5_000_000, 5_000_000, -0.00005, 0.0004, 100_000_000)
INVALID_MAX = int(np.iinfo(np.int64).max)
INVALID_MIN = int(np.iinfo(np.int64).min)


def _rround(x: float) -> float:
    """Rust ``f64::round`` (half away from zero)."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def _digits(step: float) -> int:
    return max(0, math.ceil(-math.log10(step))) + 2


def _lots(qty: float, lot: float) -> int:
    n = _rround(qty / lot)
    if n <= 0 or abs(n * lot - qty) > lot * 1e-6:
        raise ValueError(f"quantity {qty} is not a positive multiple of the lot {lot}")
    return int(n)


def to_hftbacktest_events(
    events: np.ndarray, *, exchange_view: bool = False, lot_size: float | None = None
) -> np.ndarray:
    """Our rows -> hftbacktest ``event_dtype`` rows with EXCH/LOCAL flags, correctly ordered.

    ``exchange_view=True`` sets ``local_ts = exch_ts`` so a strategy's local book equals the
    exchange's book. With ``lot_size`` quantities become whole lots (``rint(qty / lot)``).
    """
    from hftbacktest import types as ht
    from hftbacktest.data import correct_event_order, validate_event_order

    ev = events[events["kind"] != FUNDING]
    kind, side = ev["kind"], ev["side"]
    if not np.isin(kind, (DEPTH, TRADE, CLEAR, SNAPSHOT)).all():
        raise ValueError(f"unknown event kinds in {sorted(set(kind.tolist()))}")
    codes = (0, ht.DEPTH_EVENT, ht.TRADE_EVENT, ht.DEPTH_CLEAR_EVENT, ht.DEPTH_SNAPSHOT_EVENT)
    flags = np.array(codes, np.uint64)[kind]
    flags[side > 0] |= np.uint64(ht.BUY_EVENT)
    flags[side < 0] |= np.uint64(ht.SELL_EVENT)
    px = ev["px"].astype(np.float64)
    whole = (kind == CLEAR) & ~(np.isfinite(px) & (px > 0))
    px[whole & (side > 0)] = 0.0  # every bid from the best down to 0
    asks = ev["px"][(kind != TRADE) & (kind != CLEAR) & (side < 0)]
    px[whole & (side < 0)] = float(asks.max()) if len(asks) else 0.0
    raw = np.zeros(len(ev), ht.event_dtype)
    qty = ev["qty"] if lot_size is None else np.rint(ev["qty"] / lot_size)
    raw["ev"], raw["exch_ts"], raw["px"], raw["qty"] = flags, ev["exch_ts"], px, qty
    raw["local_ts"] = ev["exch_ts"] if exchange_view else ev["local_ts"]
    raw["ival"] = ev["ival"]
    out = correct_event_order(
        raw,
        np.argsort(raw["exch_ts"], kind="stable"),
        np.argsort(raw["local_ts"], kind="stable"),
    )
    validate_event_order(out)
    return out


def _backtest(data: np.ndarray, tick: float, lat: Any = (0, 0), fees: Any = (0, 0)) -> Any:
    """A one-asset backtest in lot units (``data`` must stay alive while it runs)."""
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest

    a = BacktestAsset().data([data]).linear_asset(1.0).constant_order_latency(*lat)
    a = a.risk_adverse_queue_model().partial_fill_exchange().trading_value_fee_model(*fees)
    return HashMapMarketDepthBacktest([a.tick_size(tick).lot_size(1.0).last_trades_capacity(0)])


def _goto(hbt: Any, ts: int) -> int:
    return int(hbt.elapse(ts - hbt.current_timestamp)) if ts > hbt.current_timestamp else 0


def _walk(depth: Any, side: int, lots: float) -> tuple[list[tuple[int, float]], float]:
    """hftbacktest's market-order loop over ``depth``: ([(price_tick, lots)], leaves)."""
    if side > 0:
        best, at = depth.best_ask_tick, depth.ask_qty_at_tick
        ticks = range(best, best + 100) if best != INVALID_MAX else range(0)
    else:
        best, at = depth.best_bid_tick, depth.bid_qty_at_tick
        ticks = range(best, best - 101, -1) if best != INVALID_MIN else range(0)
    fills, leaves = [], lots
    for t in ticks:
        q = at(t)
        if q > 0.0:
            x = min(q, leaves)
            leaves -= x
            fills.append((t, x))
            if _rround(leaves) <= 0:
                break
    return fills, leaves


def run_market_orders(
    events: np.ndarray,
    schedule: Sequence[tuple[int, int, float]],
    tick_size: float,
    lot_size: float,
) -> list[dict[str, Any]]:
    """Market orders at ``(send_local_ts_ns, side, qty)``, zero latency, no fees.

    Per order: ``send_ts`` (clock at submit: max(requested, current)), ``exch_ts`` (exchange
    timestamp = arrival), ``resp_ts``, ``status`` ("filled"/"expired"/"no_data"),
    ``filled_qty``, ``fills`` [{price_tick, price, qty}], ``vwap``, local and exchange best
    bid/ask at the send time, ``verified``, ``native`` (what hftbacktest's state booked).
    """
    lot, pd, qd = lot_size, _digits(tick_size), _digits(lot_size)
    data = to_hftbacktest_events(events, lot_size=lot_size)
    view_data = to_hftbacktest_events(events, exchange_view=True, lot_size=lot_size)
    main, view = _backtest(data, tick_size), _backtest(view_data, tick_size)
    main.elapse(0)
    view.elapse(0)
    out: list[dict[str, Any]] = []
    ended = False
    for oid, (ts, side, qty) in enumerate(schedule, start=1):
        lots = _lots(qty, lot_size)
        rec: dict[str, Any] = {"order_id": oid, "side": int(side), "qty": float(qty)}
        out.append(rec)
        ended = ended or _goto(main, int(ts)) == 1
        if ended:
            rec["status"] = "no_data"
            continue
        now = int(main.current_timestamp)
        _goto(view, now)
        loc, exd = main.depth(0), view.depth(0)
        books = (loc.best_bid, loc.best_ask, exd.best_bid, exd.best_ask)
        rec.update(zip(BOOK_KEYS, (round(x, pd) for x in books), strict=True), send_ts=now)
        walk, leaves = _walk(exd, side, float(lots))
        sv = main.state_values(0)
        before = (sv.num_trades, sv.trading_volume, sv.trading_value)
        px = rec["local_ask"] if side > 0 else rec["local_bid"]
        submit = main.submit_buy_order if side > 0 else main.submit_sell_order
        code = submit(0, oid, px if math.isfinite(px) else 0.0, float(lots), GTC, MARKET, True)
        if code not in (0, 1):
            raise RuntimeError(f"hftbacktest returned error code {code}")
        o = main.orders(0).get(oid)
        status = int(o.status)
        rec["status"] = {FILLED: "filled", EXPIRED: "expired"}.get(status, str(status))
        rec["exch_ts"], rec["resp_ts"] = int(o.exch_timestamp), int(main.current_timestamp)
        rec["filled_qty"] = round(_rround(lots - o.leaves_qty) * lot_size, qd)
        rec["fills"] = [
            {"price_tick": int(t), "price": round(t * tick_size, pd), "qty": round(q * lot, qd)}
            for t, q in walk
        ]
        value = sum(f["price_tick"] * tick_size * f["qty"] for f in rec["fills"])
        rec["vwap"] = value / rec["filled_qty"] if rec["filled_qty"] > 0 else math.nan
        last_ok = bool(walk) and walk[-1] == (o.exec_price_tick, o.exec_qty)
        want = FILLED if _rround(leaves) <= 0 else EXPIRED
        rec["verified"] = (last_ok or (not walk and o.exec_qty == 0.0)) and (
            leaves == o.leaves_qty and status == want
        )
        sv = main.state_values(0)
        rec["native"] = {"num_trades": int(sv.num_trades - before[0])}
        rec["native"]["qty"] = round((sv.trading_volume - before[1]) * lot, qd)
        rec["native"]["value"] = (sv.trading_value - before[2]) * lot
        main.clear_inactive_orders(0)
    main.close()
    view.close()
    return out


@cache
def _mm_kernel() -> Any:
    from numba import njit

    @njit
    def scan(hbt, seen, fills, st):
        now = hbt.current_timestamp
        vals = hbt.orders(0).values()
        while vals.has_next():
            o = vals.get()
            oid = o.order_id
            filled = np.int64(np.floor(o.qty - o.leaves_qty + 0.5))
            d = filled - seen[oid]
            if d > 0:
                n = st[0]
                if n < fills.shape[0]:
                    fills[n, 0], fills[n, 1], fills[n, 2] = now, o.exch_timestamp, o.side
                    fills[n, 3], fills[n, 4], fills[n, 5] = o.exec_price_tick, d, oid
                    fills[n, 6] = 1 if o.arr[0].maker else 0
                    fills[n, 7] = np.int64(np.floor(o.exec_qty + 0.5))
                st[0] = n + 1
                st[1] += d * o.side
                seen[oid] = filled

    @njit
    def run(hbt, interval, qty_lots, max_lots, tick, track, seen, fills, st):
        # st: 0 fill rows, 1 position lots, 2 submitted, 3 cancels, 4 wakeups, 5 requotes,
        # 6 error code
        if hbt.elapse(0) != 0:
            return
        t0 = hbt.current_timestamp
        qty = qty_lots - EPS_LOTS
        last_mid2 = np.int64(-1)
        next_id = 1
        cancel_ids = np.zeros(256, np.int64)
        k = 0
        while True:
            k += 1
            target = t0 + k * interval
            r = 0
            if track:
                while hbt.current_timestamp < target and r != 1 and r < 10:
                    r = hbt.wait_next_feed(True, target - hbt.current_timestamp)
                    scan(hbt, seen, fills, st)
            else:
                r = hbt.elapse(target - hbt.current_timestamp)
                scan(hbt, seen, fills, st)
            if r == 1 or r >= 10:  # end of data, or an hftbacktest error code
                st[6] = 0 if r == 1 else r
                return
            st[4] += 1
            hbt.clear_inactive_orders(0)
            depth = hbt.depth(0)
            bb, ba = depth.best_bid_tick, depth.best_ask_tick
            if np.isnan(depth.best_bid) or np.isnan(depth.best_ask):
                continue
            if last_mid2 != -1 and bb + ba == last_mid2:
                continue
            st[5] += 1
            nc = 0
            vals = hbt.orders(0).values()
            while vals.has_next():
                o = vals.get()
                if o.cancellable and nc < 256:
                    cancel_ids[nc] = o.order_id
                    nc += 1
            for i in range(nc):
                st[6] += hbt.cancel(0, cancel_ids[i], False)
                st[3] += 1
            if st[1] + qty_lots <= max_lots:
                st[6] += hbt.submit_buy_order(0, next_id, bb * tick, qty, GTC, LIMIT, False)
                next_id += 1
                st[2] += 1
            if st[1] - qty_lots >= -max_lots:
                st[6] += hbt.submit_sell_order(0, next_id, ba * tick, qty, GTC, LIMIT, False)
                next_id += 1
                st[2] += 1
            last_mid2 = bb + ba
            if st[6] != 0:
                return

    return run


def _mm_build(events: np.ndarray, tick: float, lot: float, mm: tuple[Any, ...]) -> tuple[Any, Any]:
    """Convert, build a backtest and the MM kernel's buffers (not yet run)."""
    qty, max_pos, entry, resp, maker, taker, interval = mm
    data = to_hftbacktest_events(events, lot_size=lot)
    hbt = _backtest(data, tick, (int(entry), int(resp)), (float(maker), float(taker)))
    ts = np.concatenate([data["exch_ts"], data["local_ts"]])
    seen = np.zeros(2 * (int(ts.max() - ts.min()) // interval + 3) + 2, np.int64)
    fills = np.zeros((len(seen) * 4 + 10_000, 8), np.int64)
    args = (int(interval), _lots(qty, lot), _lots(max_pos, lot), tick)
    return hbt, (data, args, seen, fills, np.zeros(7, np.int64))


def _mm_exec(hbt: Any, bufs: tuple[Any, ...], track: bool) -> tuple[np.ndarray, np.ndarray]:
    _data, args, seen, fills, st = bufs  # _data: keeps the rows alive while hbt runs
    _mm_kernel()(hbt, *args, track, seen, fills, st)
    if st[6]:
        raise RuntimeError(f"hftbacktest returned error code {st[6]}")
    if st[0] > len(fills):
        raise RuntimeError(f"{st[0]} fill rows overflowed the buffer of {len(fills)}")
    return fills[: st[0]], st


FILL_COLUMNS = ("local_ts", "exch_ts", "side", "price_tick", "lots", "order_id", "maker", "last")


def run_market_making(
    events: np.ndarray,
    *,
    tick_size: float,
    lot_size: float,
    order_qty: float,
    max_position: float,
    entry_latency_ns: int,
    response_latency_ns: int,
    maker_fee: float,
    taker_fee: float,
    interval_ns: int = 100_000_000,
    track_fills: bool = True,
) -> dict[str, Any]:
    """The quote-at-touch market maker (see the module docstring for what is exact).

    Clock t0 = hftbacktest's start (earliest of the first exch_ts / local_ts); wakeups at
    t0 + k * interval_ns, k >= 1, until the wakeup whose elapse reaches the end of the data
    (no action there). Each wakeup: read fills, ``clear_inactive_orders``; skip if either
    side of the local book is empty; if never quoted or (bid + ask) ticks changed: cancel
    every ``cancellable`` order (NEW/PARTIALLY_FILLED with no request in flight), then BUY
    GTC at the best bid if pos + qty <= max, SELL GTC at the best ask if pos - qty >= -max.

    Returns counts (``n_fills`` rows, ``n_orders_filled``, maker/taker rows, ``merged_rows``,
    ``n_orders_submitted``, ``n_cancels``, ``n_wakeups``, ``n_requotes``), the tracked
    ``position``/``balance``/``fee``/``equity`` at ``final_mid``, ``native`` (hftbacktest's
    own state_values, FILLED responses only) and ``fills`` (one dict per row).
    """
    mm = (order_qty, max_position, entry_latency_ns, response_latency_ns, maker_fee, taker_fee)
    hbt, bufs = _mm_build(events, tick_size, lot_size, (*mm, interval_ns))
    rows, st = _mm_exec(hbt, bufs, track_fills)
    depth, sv = hbt.depth(0), hbt.state_values(0)
    mid = (depth.best_bid + depth.best_ask) / 2.0
    keys = ("position", "balance", "fee", "trading_volume", "trading_value")
    native: dict[str, Any] = {k: getattr(sv, k) * lot_size for k in keys}
    native["num_trades"] = int(sv.num_trades)
    native["equity"] = native["balance"] - native["fee"] + native["position"] * mid
    hbt.close()
    pd, qd = _digits(tick_size), _digits(lot_size)
    fills, balance, fee = [], 0.0, 0.0
    for row in rows.tolist():
        f = dict(zip(FILL_COLUMNS, row, strict=True))
        f["qty"] = round(f["lots"] * lot_size, qd)
        f["price"] = round(f["price_tick"] * tick_size, pd)
        f["maker"], f["merged"] = bool(f["maker"]), f.pop("last") != f.pop("lots")
        amount = f["price_tick"] * tick_size * f["qty"]
        balance -= f["side"] * amount
        fee += amount * (maker_fee if f["maker"] else taker_fee)
        fills.append(f)
    position = round(int(st[1]) * lot_size, qd)
    out: dict[str, Any] = {"n_fills": len(fills)}
    out["n_orders_filled"] = len({f["order_id"] for f in fills})
    out["n_maker_fills"] = sum(f["maker"] for f in fills)
    out["n_taker_fills"] = len(fills) - out["n_maker_fills"]
    out["merged_rows"] = sum(f["merged"] for f in fills)
    names = ("n_orders_submitted", "n_cancels", "n_wakeups", "n_requotes")
    out.update({k: int(v) for k, v in zip(names, st[2:6], strict=True)})
    out.update(position=position, balance=balance, fee=fee, final_mid=mid, native=native)
    out.update(equity=balance - fee + position * mid, fills=fills)
    return out


def replay_speed(
    events: np.ndarray, mode: str, *, tick_size: float = 0.1, lot_size: float = 0.001
) -> dict[str, Any]:
    """Replay throughput. ``mode`` "none": ``goto_end`` with no strategy; "mm": the MM loop
    with ``MM_BENCH`` settings (100 ms ``elapse`` wakeups, fills read at wakeups).

    ``setup_s`` = JIT warm-up on the first 20k rows + conversion + building the asset;
    ``run_s`` is the replay alone; ``events_per_s`` counts our non-FUNDING rows.
    """
    if mode not in ("none", "mm"):
        raise ValueError(f"mode must be 'none' or 'mm', got {mode!r}")
    t0 = time.perf_counter()
    for part in (events[:20_000], events):  # warm-up (JIT), then the measured run
        if mode == "none":
            data = to_hftbacktest_events(part, lot_size=lot_size)
            hbt = _backtest(data, tick_size)
            setup = time.perf_counter() - t0
            t1 = time.perf_counter()
            hbt._goto_end()
        else:
            hbt, bufs = _mm_build(part, tick_size, lot_size, MM_BENCH)
            data = bufs[0]
            setup = time.perf_counter() - t0
            t1 = time.perf_counter()
            _mm_exec(hbt, bufs, False)
        run = time.perf_counter() - t1
        hbt.close()
    n = int((events["kind"] != FUNDING).sum())
    res = {"mode": mode, "setup_s": setup, "run_s": run, "n_events": n, "n_hbt_rows": len(data)}
    return {**res, "events_per_s": n / run if run > 0 else math.inf}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one job on an ``.npy`` of ``L2_EVENT`` rows and write its JSON result.

    hftbacktest 2.4 pins numpy < 2.3, so it lives in its own environment (``.venv-peers``,
    made by ``make``); tests and ``bench_l2.py`` call this entry point in a subprocess::

        .venv-peers/bin/python benchmarks/peers_hftbacktest.py JOB EVENTS.npy OUT.json [ARGS.json]

    JOB is ``market`` (ARGS: schedule, tick_size, lot_size), ``mm`` (ARGS: the keyword
    arguments of :func:`run_market_making`) or ``speed`` (ARGS: mode, repeat).
    """
    import argparse
    import json

    parser = argparse.ArgumentParser(description="hftbacktest peer runs")
    parser.add_argument("job", choices=("market", "mm", "speed"))
    parser.add_argument("events")
    parser.add_argument("out")
    parser.add_argument("args", nargs="?")
    ns = parser.parse_args(argv)
    events = np.load(ns.events)
    params: dict[str, Any] = {}
    if ns.args:
        with open(ns.args) as fh:
            params = json.load(fh)
    result: Any
    if ns.job == "market":
        schedule = [tuple(x) for x in params["schedule"]]
        result = run_market_orders(events, schedule, params["tick_size"], params["lot_size"])
    elif ns.job == "mm":
        result = run_market_making(events, **params)
    else:
        repeat = int(params.get("repeat", 1))
        result = [replay_speed(events, params["mode"]) for _ in range(repeat)]
    with open(ns.out, "w") as fh:
        json.dump(result, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
