"""Paper parity: a recorded Binance session traded by the paper engine, fed message by
message as it would arrive, gives the backtest's orders, fills and equity; streams that arrive
interleaved out of exchange-time order are put back in order first."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument, InstrumentKind
from tradestack.engine.l2 import L2BacktestEngine, L2BacktestResult
from tradestack.engine.live import PaperEngine
from tradestack.execution.sim.config import L2VenueConfig
from tradestack.execution.sim.feed import CLEAR, TRADE, L2Feed, binance_feed
from tradestack.execution.sim.live import ReorderBuffer
from tradestack.strategies.quote_at_touch import QuoteAtTouch
from tradestack.testing.venues.binance import with_rest_snapshots

SPOT = "data/recordings/binance-spot-btcusdt-2024-08-08.jsonl.gz"
BTC = InstrumentId("BTCUSDT", "binance")
INSTRUMENT = Instrument(
    BTC, kind=InstrumentKind.SPOT, tick_size=Decimal("0.01"), lot_size=Decimal("0.00001")
)
CONFIG = L2VenueConfig(feed_latency_ns=4_000_000, consume_liquidity=True, seed=3)


@pytest.fixture(scope="module")
def feed(examples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> L2Feed:
    recording = tmp_path_factory.mktemp("paper") / "spot.jsonl.gz"
    return binance_feed(with_rest_snapshots(examples_dir / SPOT, recording), BTC, futures=False)


def _strategy() -> QuoteAtTouch:
    return QuoteAtTouch(order_qty=Decimal("0.002"), max_position=Decimal("0.01"), interval_ms=50)


def _messages(events: np.ndarray) -> list[np.ndarray]:
    """The rows split where a venue message ends (a new exchange or receive time)."""
    cut = np.flatnonzero((np.diff(events["exch_ts"]) != 0) | (np.diff(events["local_ts"]) != 0))
    cut += 1
    return np.split(events, cut)


def _paper(feed: L2Feed, arrivals: list[np.ndarray], hold_ns: int) -> L2BacktestResult:
    first_clear = int(np.flatnonzero(feed.events["kind"] == CLEAR)[0])
    taken = 0
    first: list[np.ndarray] = []
    while taken <= first_clear:  # the messages up to the snapshot, before trading starts
        first.append(arrivals.pop(0))
        taken += len(first[-1])
    engine = PaperEngine(
        _strategy(),
        L2Feed(BTC, np.concatenate(first), feed.stats),
        instrument=INSTRUMENT,
        venue=CONFIG,
        hold_ns=hold_ns,
    )
    engine.start()
    for rows in arrivals:
        engine.on_rows(rows)
    return engine.finish()


def _same(backtest: L2BacktestResult, paper: L2BacktestResult) -> None:
    def orders(r: L2BacktestResult) -> list[tuple[object, ...]]:
        return [(o.side, o.qty, o.price, o.status, o.ts_init_ns) for o in r.orders]

    def fills(r: L2BacktestResult) -> list[tuple[object, ...]]:
        return [(f.side, f.qty, f.price, f.liquidity, f.ts_event_ns) for f in r.fills]

    assert orders(paper) == orders(backtest)
    assert fills(paper) == fills(backtest)
    assert np.array_equal(paper.ts_ns, backtest.ts_ns)
    assert np.array_equal(paper.equity, backtest.equity)


def test_paper_fed_message_by_message_is_the_backtest(feed: L2Feed) -> None:
    backtest = L2BacktestEngine(_strategy(), feed, instrument=INSTRUMENT, venue=CONFIG).run()
    assert len(backtest.fills) > 10 and len(backtest.orders) > 20
    paper = _paper(feed, _messages(feed.events), hold_ns=0)
    _same(backtest, paper)
    assert paper.venue_stats["feed_rows"] == len(feed)


def test_interleaved_streams_are_put_back_in_order(feed: L2Feed) -> None:
    """Trades arrive up to 150 ms before the depth messages stamped earlier than them; with a
    hold of 200 ms the paper engine replays the same rows in the same order."""
    messages = _messages(feed.events)
    rng = np.random.default_rng(4)
    arrivals: list[np.ndarray] = []
    for rows in messages:
        if len(arrivals) > 5 and rows["kind"][0] == TRADE and rng.random() < 0.5:
            back = int(rng.integers(1, 4))
            arrivals.insert(len(arrivals) - back, rows)
        else:
            arrivals.append(rows)
    swapped = sum(
        int(a["exch_ts"][0] < b["exch_ts"][-1])
        for a, b in zip(arrivals[1:], arrivals, strict=False)
    )
    assert swapped > 10
    backtest = L2BacktestEngine(_strategy(), feed, instrument=INSTRUMENT, venue=CONFIG).run()
    _same(backtest, _paper(feed, arrivals, hold_ns=200_000_000))


def test_the_reorder_buffer_holds_and_stamps_late_rows() -> None:
    def rows(*ts: int) -> np.ndarray:
        return L2Feed.from_rows(BTC, [(t, t, TRADE, 1, 1.0, 1.0, 0) for t in ts]).events

    buffer = ReorderBuffer(hold_ns=10)
    assert len(buffer.push(rows(100, 105))) == 0
    out = buffer.push(rows(112, 103))
    assert out["exch_ts"].tolist() == [100]  # 112 - 10 = 102: only 100 is safe
    assert buffer.push(rows(130))["exch_ts"].tolist() == [103, 105, 112]
    late = buffer.push(rows(101, 140))
    assert late["exch_ts"].tolist() == [112, 130]  # 101 came after 112 left: stamped 112
    assert buffer.late == 1
    assert buffer.flush()["exch_ts"].tolist() == [140]
    with pytest.raises(ValueError, match="hold_ns"):
        ReorderBuffer(-1)
