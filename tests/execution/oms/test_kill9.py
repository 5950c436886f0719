"""Kill -9 the trading process in each window of an order's life (intent→submit, submit→ack,
ack→fill persisted, fill→position) while it trades against the fake Binance desk over HTTP;
after a restart and reconciliation: no order twice at the venue, no fill lost, and the
position equals the venue's. The soak script (benchmarks/soak_kill9.py) runs hundreds."""

from __future__ import annotations

import asyncio
import json
import signal
from decimal import Decimal
from pathlib import Path

import pytest
from tests.execution.oms.test_ccxt_gateway import KEY, SECRET, venue_position

from tradestack.execution.oms.crash import WINDOWS
from tradestack.storage import StateStore, open_database
from tradestack.testing.fake_venue import FakeVenueServer
from tradestack.testing.oms_driver import BTC, run_driver
from tradestack.testing.venues.binance import BinanceFakeVenue
from tradestack.testing.venues.binance_trading import BinanceTradingDesk

STEPS = 12


async def _driver(base_url: str, db: Path, crash_at: str | None) -> tuple[int, str, str]:
    return await run_driver(
        base_url, db, steps=STEPS, api_key=KEY, secret=SECRET, crash_at=crash_at
    )


def _check(desk: BinanceTradingDesk, db: Path, summary: dict[str, object]) -> None:
    store = StateStore(open_database(db, "test"))
    assert desk.duplicate_orders == 0
    ids = [o.client_order_id for o in desk.engine.orders.values()]
    assert len(ids) == len(set(ids)) == STEPS
    assert {r.client_order_id for r in store.orders()} == set(ids)
    assert {f.trade_id for f in store.fills()} == {str(t.trade_id) for t in desk.engine.trades}
    assert store.positions()[BTC].qty == venue_position(desk) == Decimal(str(summary["position"]))
    assert summary["positions_agree"] is True and summary["open"] == 0


@pytest.mark.parametrize("window", WINDOWS)
def test_a_kill_in_each_window_loses_and_duplicates_nothing(
    recording: Path, tmp_path: Path, window: str
) -> None:
    async def run() -> None:
        desk = BinanceTradingDesk(api_key=KEY, secret=SECRET)
        venue = BinanceFakeVenue([recording], desk=desk)
        desk.advance(50)
        db = tmp_path / "state.db"
        async with FakeVenueServer(venue) as server:
            kills = 0
            for n in (2, 1, 3):  # three kills at different passes, then run to the end
                code, _, err = await _driver(server.base_url, db, f"{window}:{n}")
                assert code == -signal.SIGKILL, err
                kills += 1
            code, out, err = await _driver(server.base_url, db, None)
            assert code == 0, err
        _check(desk, db, json.loads(out))
        assert kills == 3

    asyncio.run(run())
