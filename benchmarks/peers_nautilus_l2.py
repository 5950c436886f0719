"""nautilus_trader replaying an L2 feed (order-book deltas + trades) in-process: a speed peer.

Measured: our ``L2_EVENT`` array is converted to nautilus ``OrderBookDelta``/``TradeTick``
objects (:func:`to_nautilus_data`, timed as ``convert_s``), loaded into a low-level
``BacktestEngine`` (venue ``BINANCE``, ``book_type=L2_MBP``, ``BTCUSDT-PERP.BINANCE`` tick 0.1 /
lot 0.001, logging bypassed; construction + ``add_data`` = ``setup_s``) and replayed; only
``engine.run()`` is timed (``run_s``).  ``events_per_s`` = our input events / ``run_s``.
Mode ``"none"``: no strategy -- each delta updates the venue's matching-engine book and passes the
data engine (published to no one).  ``"callback"``: a ``Strategy`` subscribes to book deltas
(managed L2 book in the cache) and trade ticks; trivial handlers count every delta batch and
every trade (``callbacks``, checked against the expected count).

Conversion: DEPTH/SNAPSHOT -> ADD (new level) / UPDATE (known level) / DELETE (qty 0); CLEAR of
both sides -> a ``BookAction.CLEAR`` delta, of one side -> DELETEs of its known levels; FUNDING
dropped.  ``F_LAST`` (exactly, nautilus tests ``flags == F_LAST``) marks the last delta of each
message (consecutive book events with equal exch_ts and local_ts); ``buffer_deltas=True`` makes
the data engine publish one ``OrderBookDeltas`` per message.  Trade id = array index.
``ts_event = exch_ts``; nautilus replays in ``ts_init`` order, so ``ts_init`` = running max of
``local_ts`` over the exch_ts-sorted array (= local_ts wherever that is already in order): our
array order is kept as is and ``add_data(sort=False)`` is safe.  After the run the venue book
(and the cache book) is compared level by level with a plain Python replay (``book_ok``).

Usage: ``python benchmarks/peers_nautilus_l2.py [--events 1000000] [--modes none,callback]``
"""

from __future__ import annotations

import gc
import gzip
import json
import math
import resource
import time
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

_FIELDS = "exch_ts:<i8 local_ts:<i8 kind:u1 side:i1 px:<f8 qty:<f8 ival:<i8"
L2_EVENT = np.dtype([tuple(f.split(":")) for f in _FIELDS.split()])
DEPTH, TRADE, CLEAR, SNAPSHOT, FUNDING = 1, 2, 3, 4, 5
RECORDING = Path("/work/shared/data/ws_messages/binance_usdm/hftbacktest_btcusdt_20240808.gz")
PX_PREC, QTY_PREC = 1, 3
MS = 1_000_000
Book = tuple[dict[float, float], dict[float, float]]
Events = NDArray[np.void]  # an L2_EVENT array


def load_recording(path: Path = RECORDING) -> Events:
    """One L2_EVENT copy of a Binance USD-M recording, starting with CLEAR + snapshot.

    Depth diffs with ``u < lastUpdateId`` and anything stamped before the snapshot are dropped;
    bookTicker frames are skipped.  Times: ``T`` (ms) -> exch_ts, the line's prefix -> local_ts.
    """
    rows: list[tuple[int, int, int, int, float, float, int]] = []
    pending: list[tuple[int, dict[str, Any]]] = []
    last_id = -1
    with gzip.open(path, "rt") as fh:
        for line in fh:
            ts_s, body = line.split(" ", 1)
            msg = json.loads(body)
            local = int(ts_s)
            if "lastUpdateId" in msg:
                last_id, exch = int(msg["lastUpdateId"]), int(msg["T"]) * MS
                rows.append((exch, local, CLEAR, 0, 0.0, 0.0, last_id))
                for side, key in ((1, "bids"), (-1, "asks")):
                    rows += [(exch, local, SNAPSHOT, side, float(p), float(q), last_id)
                             for p, q in msg[key]]  # fmt: skip
                continue
            data = msg.get("data", {})
            if data.get("e") in ("depthUpdate", "trade"):
                pending.append((local, data))
    snap_exch = rows[0][0]
    for local, d in pending:
        exch = int(d["T"]) * MS
        if exch < snap_exch:
            continue
        if d["e"] == "trade":
            side = -1 if d["m"] else 1
            rows.append((exch, local, TRADE, side, float(d["p"]), float(d["q"]), int(d["t"])))
        elif int(d["u"]) >= last_id:
            for side, key in ((1, "b"), (-1, "a")):
                rows += [(exch, local, DEPTH, side, float(p), float(q), int(d["u"]))
                         for p, q in d[key]]  # fmt: skip
    out = np.array(rows, dtype=L2_EVENT)
    return out[np.argsort(out["exch_ts"], kind="stable")]


def loop_events(events: Events, n: int) -> Events:
    """Concatenate ``n`` copies of ``events``, each shifted past the previous copy's end."""
    span = int(max(np.ptp(events["exch_ts"]), np.ptp(events["local_ts"]))) + MS
    out = np.concatenate([events] * n)
    shift = np.repeat(np.arange(n, dtype=np.int64) * span, len(events))
    out["exch_ts"] += shift
    out["local_ts"] += shift
    return out


def make_instrument() -> Any:
    """``BTCUSDT-PERP.BINANCE`` (price precision 1, size precision 3) from nautilus's test kit."""
    from nautilus_trader.test_kit.providers import TestInstrumentProvider

    return TestInstrumentProvider.btcusdt_perp_binance()


def to_nautilus_data(events: Events, instrument: Any) -> list[Any]:
    """Our events -> nautilus ``OrderBookDelta``/``TradeTick`` list in array order (see module doc).

    Prices/sizes go through ``from_raw`` with fixed-point raws from the rounded tick/lot counts.
    """
    from nautilus_trader.model.data import OrderBookDelta, TradeTick
    from nautilus_trader.model.enums import AggressorSide, BookAction, OrderSide, RecordFlag
    from nautilus_trader.model.identifiers import TradeId
    from nautilus_trader.model.objects import FIXED_PRECISION

    iid = instrument.id
    px_scale, qty_scale = 10 ** (FIXED_PRECISION - PX_PREC), 10 ** (FIXED_PRECISION - QTY_PREC)
    kind, exch, init = events["kind"], events["exch_ts"], np.maximum.accumulate(events["local_ts"])
    is_book = np.isin(kind, (DEPTH, CLEAR, SNAPSHOT))
    boundary = np.ones(len(events), dtype=bool)
    boundary[:-1] = (exch[1:] != exch[:-1]) | (init[1:] != init[:-1]) | ~is_book[1:]
    last = (is_book & boundary).tolist()
    ticks = np.rint(events["px"] * 10**PX_PREC).astype(np.int64).tolist()
    lots = np.rint(events["qty"] * 10**QTY_PREC).astype(np.int64).tolist()
    kinds, sides = kind.tolist(), events["side"].tolist()
    exch_l, init_l = exch.tolist(), init.tolist()

    add, upd, dele, clear = BookAction.ADD, BookAction.UPDATE, BookAction.DELETE, BookAction.CLEAR
    buy, sell, no_side = OrderSide.BUY, OrderSide.SELL, OrderSide.NO_ORDER_SIDE
    buyer, seller = AggressorSide.BUYER, AggressorSide.SELLER
    f_last = int(RecordFlag.F_LAST)
    from_raw, trade_raw = OrderBookDelta.from_raw, TradeTick.from_raw
    levels: dict[int, set[int]] = {1: set(), -1: set()}
    out: list[Any] = []
    append = out.append
    for i in range(len(events)):
        k = kinds[i]
        if k in (DEPTH, SNAPSHOT):
            s, t, q, book = sides[i], ticks[i], lots[i], levels[sides[i]]
            if q == 0:
                act = dele
                book.discard(t)
            elif t in book:
                act = upd
            else:
                act = add
                book.add(t)
            append(from_raw(iid, act, buy if s == 1 else sell, t * px_scale, PX_PREC,
                            q * qty_scale, QTY_PREC, 0, f_last if last[i] else 0, i, exch_l[i],
                            init_l[i]))  # fmt: skip
        elif k == TRADE:
            agg = buyer if sides[i] == 1 else seller
            append(trade_raw(iid, ticks[i] * px_scale, PX_PREC, lots[i] * qty_scale, QTY_PREC,
                             agg, TradeId(str(i)), exch_l[i], init_l[i]))  # fmt: skip
        elif k == CLEAR:
            flags = f_last if last[i] else 0
            if sides[i] == 0:
                levels[1].clear()
                levels[-1].clear()
                append(from_raw(iid, clear, no_side, 0, 0, 0, 0, 0, flags, i, exch_l[i],
                                init_l[i]))  # fmt: skip
            else:  # one side: DELETE each known level (F_LAST, if due, on the last one)
                osd, gone = buy if sides[i] == 1 else sell, sorted(levels[sides[i]])
                levels[sides[i]].clear()
                for j, t in enumerate(gone, 1):
                    append(from_raw(iid, dele, osd, t * px_scale, PX_PREC, 0, QTY_PREC, 0,
                                    flags if j == len(gone) else 0, i, exch_l[i],
                                    init_l[i]))  # fmt: skip
    return out


def python_book(events: Events) -> Book:
    """Final (bids, asks) ``{price: qty}`` of a plain replay of the book events."""
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    cols = (events[f].tolist() for f in ("kind", "side", "px", "qty"))
    for k, s, p, q in zip(*cols, strict=True):
        if k == CLEAR:
            if s >= 0:
                bids.clear()
            if s <= 0:
                asks.clear()
        elif k in (DEPTH, SNAPSHOT):
            book = bids if s == 1 else asks
            if q == 0.0:
                book.pop(p, None)
            else:
                book[p] = q
    return bids, asks


def _book_diff(book: Any, ref: Book) -> str:
    """'' when a nautilus ``OrderBook`` holds exactly the reference levels, else a summary."""
    got = [
        {round(lv.price.as_double(), PX_PREC): lv.size() for lv in levels}
        for levels in (book.bids(), book.asks())
    ]
    want = [{round(p, PX_PREC): round(q, QTY_PREC) for p, q in side.items()} for side in ref]
    if got == want:
        return ""
    best = max(ref[0], default=None), min(ref[1], default=None)
    return (
        f"levels {len(got[0])}/{len(got[1])} vs {len(want[0])}/{len(want[1])}, best "
        f"{book.best_bid_price()}/{book.best_ask_price()} vs {best[0]}/{best[1]}"
    )


def _rss_mb() -> float:
    """Current resident set size in MiB (Linux ``/proc``; NaN elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return math.nan
    return pages * resource.getpagesize() / 2**20


def nautilus_replay(events: Events, mode: str = "none", *, log: bool = False) -> dict[str, Any]:
    """Replay ``events`` in a nautilus ``BacktestEngine``; ``mode`` is ``"none"``/``"callback"``.

    Returns events, data (object count), run_s, convert_s, setup_s, events_per_s, callbacks
    (``None`` in "none" mode), expected_callbacks, book_ok/book_check and best bid/ask.
    ``log=True`` keeps nautilus logging at WARNING (to see its warnings) instead of bypassing it.
    """
    if mode not in ("none", "callback"):
        raise ValueError(f"unknown mode {mode!r}")
    from decimal import Decimal

    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import DataEngineConfig, LoggingConfig
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.enums import AccountType, BookType, OmsType, RecordFlag
    from nautilus_trader.model.identifiers import Venue
    from nautilus_trader.model.objects import Money
    from nautilus_trader.trading.strategy import Strategy

    class Counter(Strategy):  # type: ignore[misc]
        def __init__(self, instrument_id: Any) -> None:
            super().__init__()
            self.iid, self.batches, self.trades = instrument_id, 0, 0

        def on_start(self) -> None:
            self.subscribe_order_book_deltas(self.iid, book_type=BookType.L2_MBP)
            self.subscribe_trade_ticks(self.iid)

        def on_stop(self) -> None:
            pass

        def on_order_book_deltas(self, deltas: Any) -> None:
            self.batches += 1

        def on_trade_tick(self, tick: Any) -> None:
            self.trades += 1

    instrument = make_instrument()
    rss0 = _rss_mb()
    t0 = time.perf_counter()
    data = to_nautilus_data(events, instrument)
    t1 = time.perf_counter()
    data_mb = _rss_mb() - rss0
    logging = LoggingConfig(log_level="WARNING") if log else LoggingConfig(bypass_logging=True)
    data_engine = DataEngineConfig(buffer_deltas=True)  # one OrderBookDeltas per F_LAST
    config = BacktestEngineConfig(logging=logging, data_engine=data_engine, run_analysis=False)
    engine = BacktestEngine(config=config)
    try:
        engine.add_venue(
            venue=Venue("BINANCE"),
            oms_type=OmsType.NETTING,
            account_type=AccountType.MARGIN,
            base_currency=USDT,
            starting_balances=[Money(1_000_000, USDT)],
            default_leverage=Decimal(1),
            book_type=BookType.L2_MBP,
        )
        engine.add_instrument(instrument)
        engine.add_data(data, sort=False)  # first object is a delta -> venue has book data
        strategy = Counter(instrument.id) if mode == "callback" else None
        if strategy is not None:
            engine.add_strategy(strategy)
        t2 = time.perf_counter()
        engine.run()
        t3 = time.perf_counter()
        ref = python_book(events)
        exchange = next(  # BacktestEngine keeps its SimulatedExchange private
            o
            for o in gc.get_objects()
            if type(o).__name__ == "SimulatedExchange" and o.cache is engine.cache
        )
        venue_book = exchange.get_book(instrument.id)
        problems = [f"venue: {d}" for d in [_book_diff(venue_book, ref)] if d]
        callbacks = expected = None
        if strategy is not None:
            cache_book = engine.cache.order_book(instrument.id)
            problems += [f"cache: {d}" for d in [_book_diff(cache_book, ref)] if d]
            callbacks = strategy.batches + strategy.trades
            n_trades = int(np.count_nonzero(events["kind"] == TRADE))
            expected = n_trades + sum(getattr(d, "flags", 0) == RecordFlag.F_LAST for d in data)
            if callbacks != expected:
                problems.append(f"callbacks {callbacks} != expected {expected}")
        best = (venue_book.best_bid_price(), venue_book.best_ask_price())
    finally:
        engine.dispose()
    run_s = t3 - t2
    return {
        "mode": mode, "events": len(events), "data": len(data),
        "run_s": run_s, "convert_s": t1 - t0, "setup_s": t2 - t1,
        "events_per_s": len(events) / run_s if run_s > 0 else math.inf,
        "callbacks": callbacks, "expected_callbacks": expected, "book_ok": not problems,
        "book_check": "; ".join(problems) or "venue (+ cache) book == python replay",
        "best_bid_ask": [str(b) for b in best], "data_mb": data_mb,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Build a ~``--events`` looped feed from the recording and print one JSON line per mode."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--modes", default="none,callback")
    ap.add_argument("--log", action="store_true", help="nautilus logging at WARNING")
    args = ap.parse_args(argv)
    one = load_recording()
    events = loop_events(one, max(1, round(args.events / len(one))))
    print(json.dumps({"copy_events": len(one), "events": len(events)}))
    for mode in args.modes.split(","):
        print(json.dumps(nautilus_replay(events, mode, log=args.log)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
