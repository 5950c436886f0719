"""`tradestack live` on US stocks: alpaca-py's own clients against the local fakes of Alpaca's
market data (recorded real minute bars over the WebSocket) and trading API. The strategy hears
each bar with the bar engine's context, its orders reach the account once, the state database
agrees with the account, and a restart reconciles and carries the position on."""

from __future__ import annotations

import asyncio
import json
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

import pytest

from tradestack.core.events import Bar
from tradestack.engine.config import LIVE_CONFIRMATION, BacktestConfig, ConfigError
from tradestack.engine.context import StrategyContext
from tradestack.engine.live.live import LiveSummary, live_session
from tradestack.engine.strategy import Strategy
from tradestack.storage import StateStore, open_database
from tradestack.testing.alpaca_trading import FakeAlpacaTrading
from tradestack.testing.alpaca_venue import AlpacaRecording, FakeAlpacaServer

KEY, SECRET = "PKLIVEKEY", "live-secret"
SOURCE = "BTC/USD"  # the recorded symbol with the most minute bars, served as AAPL


class BuyThenTrim(Strategy):
    """Buys ``qty`` shares at market on the first bar; on the third, sells a third of them with
    a limit at the lowest close ``ctx.history`` holds (marketable, and it names the closes)."""

    qty: int = 9

    def on_bar(self, ctx: StrategyContext, bar: Bar) -> None:
        closes = ctx.history("AAPL", "close")
        if len(closes) == 1:
            ctx.buy("AAPL", Decimal(self.qty))
        elif len(closes) == 3:
            low = Decimal(repr(float(closes.min()))).quantize(Decimal("0.01"), ROUND_DOWN)
            ctx.sell("AAPL", Decimal(self.qty // 3), price=low)


@pytest.fixture(scope="module")
def recording(shared_data: Path) -> AlpacaRecording:
    return AlpacaRecording.from_ccxt_static(
        shared_data / "ws_messages/alpaca/ccxt_static_response_alpaca.json"
    )


def _config(examples_dir: Path, tmp_path: Path, **live: Any) -> BacktestConfig:
    return BacktestConfig.model_validate(
        {
            "strategy": f"{__file__}:BuyThenTrim",
            "data": [
                {"path": str(examples_dir / "data/AAPL_2012-2014_daily.csv"),
                 "instrument": "AAPL@alpaca", "timezone": "America/New_York"},
            ],
            "live": {
                "venue": "alpaca",
                "state": str(tmp_path / "live.db"),
                "confirm": LIVE_CONFIRMATION,
                "idle_stop_s": 2,
                "check_every_s": 0.5,
                **live,
            },
        }
    )  # fmt: skip


async def _session(
    market: FakeAlpacaServer, examples_dir: Path, tmp_path: Path, desk: FakeAlpacaTrading
) -> LiveSummary:
    config = _config(
        examples_dir, tmp_path, data_url=market.data_url, stream_url=market.stream_url,
        base_url=desk.base_url,
    )  # fmt: skip
    return await live_session(config, examples_dir)


def test_bars_in_orders_out_and_the_account_agrees(
    recording: AlpacaRecording, examples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADESTACK_API_KEY", KEY)
    monkeypatch.setenv("TRADESTACK_API_SECRET", SECRET)
    closes = [float(b["c"]) for b in recording.minute[SOURCE]]

    async def run() -> tuple[LiveSummary, LiveSummary, FakeAlpacaTrading]:
        # the recorded bars are BTC/USD's, served as AAPL: a share costs ~$69k here
        desk = FakeAlpacaTrading(key_id=KEY, secret_key=SECRET, cash=Decimal(10_000_000))
        desk.price_from_bars("AAPL", recording.minute[SOURCE])
        market = FakeAlpacaServer(
            recording, key_id=KEY, secret_key=SECRET, symbol_map={"AAPL": SOURCE}
        )
        async with desk, market:
            first = await _session(market, examples_dir, tmp_path, desk)
            again = await _session(market, examples_dir, tmp_path, desk)
        return first, again, desk

    first, again, desk = asyncio.run(run())
    assert first.stopped_by == "idle" and first.events == len(closes) == 3
    assert first.start is not None and first.start.mode == "cold" and first.start.ok
    assert first.end is not None and first.end.ok, first.end.render()
    assert desk.orders_created == 2 and desk.duplicate_attempts == 0
    assert desk.position("AAPL") == Decimal(6)
    store = StateStore(open_database(tmp_path / "live.db", "live"))
    assert [p.qty for p in store.positions().values()] == [Decimal(6)]
    assert sorted(f.trade_id for f in store.fills()) == sorted(f["id"] for f in desk.fills)
    # the restart: warm reconciliation, the position carried into the strategy; the stream
    # does not repeat delivered bars, so no new orders and the account is unchanged
    assert again.start is not None and again.start.mode == "warm" and again.start.ok
    assert again.events == 0 and again.orders == 2 and desk.orders_created == 2
    assert desk.position("AAPL") == Decimal(6)


def test_a_dry_run_logs_the_orders_the_bars_call_for(
    recording: AlpacaRecording, examples_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADESTACK_API_KEY", KEY)
    monkeypatch.setenv("TRADESTACK_API_SECRET", SECRET)

    async def run() -> LiveSummary:
        market = FakeAlpacaServer(
            recording, key_id=KEY, secret_key=SECRET, symbol_map={"AAPL": SOURCE}
        )
        async with market:
            config = _config(
                examples_dir, tmp_path, dry_run=True, confirm="",
                data_url=market.data_url, stream_url=market.stream_url,
            )  # fmt: skip
            return await live_session(config, examples_dir)

    summary = asyncio.run(run())
    closes = [Decimal(repr(float(b["c"]))) for b in recording.minute[SOURCE]]
    prefix = "DRY RUN submit "
    submits = [json.loads(line[len(prefix) :]) for line in summary.dry_log if prefix in line]
    assert summary.dry_log[-1].startswith("DRY RUN cancel")  # the limit still working at stop
    assert [(s["side"], s["type"], s["qty"]) for s in submits] == [
        ("buy", "market", "9"),
        ("sell", "limit", "3"),
    ]
    assert Decimal(submits[1]["price"]) == min(closes).quantize(Decimal("0.01"), ROUND_DOWN)
    assert submits[0]["instrument"] == "AAPL@alpaca"
    assert summary.start is None and not (tmp_path / "live.db").exists()  # no state kept


def test_a_book_config_or_a_crypto_symbol_is_refused_on_alpaca(
    examples_dir: Path, tmp_path: Path
) -> None:
    config = _config(examples_dir, tmp_path)
    raw = config.model_dump(mode="json", exclude_none=True)
    raw["data"][0]["instrument"] = "BTC/USDT@binance"
    with pytest.raises(
        ConfigError, match=r"data\[0\].instrument: BTC/USDT@binance is not an Alpaca"
    ):
        asyncio.run(live_session(BacktestConfig.model_validate(raw), examples_dir))
