"""Live trading end to end against the fake Binance venue on 127.0.0.1: the real ccxt client
streams the replayed book and sends the strategy's orders to the venue's trading desk. The
start is refused without the confirmation or the credentials; a dry run logs the orders and
sends none; a live run leaves the venue and the state database in agreement."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tradestack.engine.config import LIVE_CONFIRMATION, BacktestConfig
from tradestack.engine.live.live import LiveStartRefused, LiveSummary, live_session
from tradestack.risk.kill_switch import KillSwitch, KillSwitchState
from tradestack.storage import StateStore, open_database
from tradestack.testing.fake_venue import FakeVenueServer
from tradestack.testing.venues.binance import BinanceFakeVenue, with_rest_snapshots
from tradestack.testing.venues.binance_trading import BinanceTradingDesk

KEY, SECRET = "live-key", "live-secret"
SLICE = "data/recordings/binance-spot-btcusdt-2024-08-08.jsonl.gz"


def _config(examples_dir: Path, tmp_path: Path, **live: Any) -> BacktestConfig:
    raw = yaml.safe_load((examples_dir / "paper_binance_spot.yaml").read_text(encoding="utf-8"))
    raw["book"]["recording"] = str(examples_dir / SLICE)
    del raw["paper"]
    raw["live"] = {
        "symbol": "BTC/USDT",
        "state": str(tmp_path / "live.db"),
        "reserve": {"BTC": 10},
        "idle_stop_s": 1.5,
        "check_every_s": 0.5,
        **live,
    }
    return BacktestConfig.model_validate(raw)


async def _session(
    examples_dir: Path, tmp_path: Path, **live: Any
) -> tuple[LiveSummary, BinanceTradingDesk]:
    recording = with_rest_snapshots(examples_dir / SLICE, tmp_path / "replay.jsonl.gz")
    desk = BinanceTradingDesk(api_key=KEY, secret=SECRET)
    venue = BinanceFakeVenue([recording], speed=4, desk=desk)
    async with FakeVenueServer(venue) as server:
        config = _config(examples_dir, tmp_path, base_url=server.base_url, **live)
        summary = await live_session(config, examples_dir)
    return summary, desk


def test_live_refuses_without_confirmation_or_credentials(
    examples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRADESTACK_API_KEY", raising=False)
    monkeypatch.delenv("TRADESTACK_API_SECRET", raising=False)
    with pytest.raises(LiveStartRefused, match=f'live.confirm: "{LIVE_CONFIRMATION}"'):
        asyncio.run(live_session(_config(examples_dir, tmp_path), examples_dir))
    confirmed = _config(examples_dir, tmp_path, confirm=LIVE_CONFIRMATION)
    with pytest.raises(LiveStartRefused, match="set TRADESTACK_API_KEY and TRADESTACK_API_SECRET"):
        asyncio.run(live_session(confirmed, examples_dir))
    assert not (tmp_path / "live.db").exists()  # refused before anything was opened


def test_a_dry_run_logs_the_orders_and_sends_none(examples_dir: Path, tmp_path: Path) -> None:
    summary, desk = asyncio.run(_session(examples_dir, tmp_path, dry_run=True))
    submits = [line for line in summary.dry_log if line.startswith("DRY RUN submit ")]
    assert len(submits) > 5 and summary.orders == len(submits)
    assert '"client_order_id": "ts-1-' in submits[0] and '"type": "limit"' in submits[0]
    assert any(line.startswith("DRY RUN cancel ") for line in summary.dry_log)
    assert desk.orders_created == 0 and not (tmp_path / "live.db").exists()


def test_live_orders_reach_the_venue_once_and_the_state_agrees(
    examples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADESTACK_API_KEY", KEY)
    monkeypatch.setenv("TRADESTACK_API_SECRET", SECRET)
    summary, desk = asyncio.run(_session(examples_dir, tmp_path, confirm=LIVE_CONFIRMATION))
    assert summary.start is not None and summary.start.ok and summary.start.mode == "cold"
    assert summary.end is not None and summary.end.ok, summary.end.render()
    store = StateStore(open_database(tmp_path / "live.db", "live"))
    venue_ids = [o.client_order_id for o in desk.engine.orders.values()]
    assert len(venue_ids) == len(set(venue_ids)) == summary.orders > 10
    assert desk.duplicate_orders == 0
    assert {r.client_order_id for r in store.orders()} == set(venue_ids)
    assert not store.orders(open_only=True)  # cancelled at stop
    assert {f.trade_id for f in store.fills()} == {str(t.trade_id) for t in desk.engine.trades}
    assert summary.fills == len(desk.engine.trades) > 0
    held = store.positions()
    total = sum((p.qty for p in held.values()), Decimal(0))
    assert summary.end.positions[0].venue == total


def test_a_halt_written_while_live_cancels_everything_and_denies_new_orders(
    examples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process writes halt into the kill switch's flag file mid-session: the open
    orders are cancelled, every order after it is denied (none reaches the venue), and a
    restarted switch is still HALTED."""
    monkeypatch.setenv("TRADESTACK_API_KEY", KEY)
    monkeypatch.setenv("TRADESTACK_API_SECRET", SECRET)
    state = tmp_path / "switch.json"

    async def run() -> tuple[LiveSummary, BinanceTradingDesk, int]:
        async def halt_later() -> int:
            await asyncio.sleep(1.2)
            (tmp_path / "switch.json.flag").write_text("halt\n")
            return len(desk.engine.orders)

        recording = with_rest_snapshots(examples_dir / SLICE, tmp_path / "replay.jsonl.gz")
        desk = BinanceTradingDesk(api_key=KEY, secret=SECRET)
        venue = BinanceFakeVenue([recording], speed=4, desk=desk)
        async with FakeVenueServer(venue) as server:
            config = _config(
                examples_dir, tmp_path, base_url=server.base_url, confirm=LIVE_CONFIRMATION,
                kill_switch=str(state),
            )  # fmt: skip
            halting = asyncio.ensure_future(halt_later())
            summary = await live_session(config, examples_dir)
            return summary, desk, await halting

    summary, desk, before_halt = asyncio.run(run())
    assert summary.end is not None and summary.end.ok, summary.end.render()
    assert before_halt > 0
    assert len(desk.engine.orders) <= before_halt + 2  # at most the requests already in flight
    assert all(o.status != "NEW" for o in desk.engine.orders.values())  # all cancelled or filled
    assert KillSwitch(state).state is KillSwitchState.HALTED
