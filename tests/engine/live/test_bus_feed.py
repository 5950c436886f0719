"""Scale-out over Redis Streams, process by process: `tradestack record --publish` streams the
fake Binance venue's replayed session into a real redis-server on 127.0.0.1, and two
`tradestack paper` processes trade it from the stream, each in its own consumer group. The one
left alone places the backtest's orders; the other is killed with SIGKILL mid-stream and
restarted: its group resumes where it stopped, its book comes from the next keyframe, and by the
end its group has read and acknowledged every entry of the stream."""

from __future__ import annotations

import asyncio
import csv
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from tradestack.bus.market_data import market_stream
from tradestack.cli import main
from tradestack.testing.fake_venue import FakeVenueServer
from tradestack.testing.redis_server import RedisServer, find_redis_server
from tradestack.testing.venues.binance import BinanceFakeVenue, with_rest_snapshots
from tradestack.testing.venues.binance_trading import BinanceTradingDesk

pytestmark = pytest.mark.slow
SLICE = "data/recordings/binance-spot-btcusdt-2024-08-08.jsonl.gz"
STREAM = market_stream("binance", "BTC/USDT")


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    if find_redis_server() is None:
        pytest.skip("redis-server not found on PATH (install the Debian package redis-server)")
    with RedisServer() as server:
        yield server.url


def _config(examples_dir: Path, tmp_path: Path, name: str, url: str) -> Path:
    raw = yaml.safe_load((examples_dir / "paper_binance_spot.yaml").read_text(encoding="utf-8"))
    raw["book"]["recording"] = str(examples_dir / SLICE)
    raw["paper"] = {
        "symbol": "BTC/USDT",
        "bus": {"url": url, "group": name, "consumer": "1", "start": "earliest"},
        "state": str(tmp_path / f"{name}.db"),
        "hold_ms": 2000,
        "idle_stop_s": 2,
        "open_orders_at_stop": "keep",
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


async def _process(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tradestack.cli", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"},
    )  # fmt: skip


async def _finish(proc: asyncio.subprocess.Process) -> str:
    talk = asyncio.ensure_future(proc.communicate())
    done, _ = await asyncio.wait([talk], timeout=90)
    if not done:
        proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: the stacks go to stderr
        _, err = await talk
        raise AssertionError(f"still running after 90 s:\n{err.decode()[-5000:]}")
    out, err = talk.result()
    assert proc.returncode == 0, err.decode()[-3000:]
    return out.decode()


async def _scenario(examples_dir: Path, tmp_path: Path, url: str) -> dict[str, Any]:
    # the recording's receive times span 1.4 s (it was recorded from a fast replay): at 0.15x
    # its 21 s of exchange time go by in 9.5 s
    recording = with_rest_snapshots(examples_dir / SLICE, tmp_path / "replay.jsonl.gz")
    desk = BinanceTradingDesk(api_key="k", secret="s")
    venue = BinanceFakeVenue([recording], speed=0.15, desk=desk)
    calm, killed = (_config(examples_dir, tmp_path, n, url) for n in ("calm", "killed"))
    started: list[asyncio.subprocess.Process] = []
    async with FakeVenueServer(venue) as server:
        try:
            return await _run(server.base_url, url, calm, killed, tmp_path, started)
        finally:
            for proc in started:  # a failed run leaves no process behind
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()


async def _run(
    base_url: str,
    url: str,
    calm: Path,
    killed: Path,
    tmp_path: Path,
    started: list[asyncio.subprocess.Process],
) -> dict[str, str]:
    async def launch(*args: str) -> asyncio.subprocess.Process:
        started.append(await _process(*args))
        return started[-1]

    recorder = await launch(
        "record", "--venue", "binance", "--symbols", "BTC/USDT", "--base-url", base_url,
        "--out", str(tmp_path / "rec"), "--duration", "16", "--publish", url,
        "--keyframe-every", "1",
    )  # fmt: skip
    first = await launch("paper", str(calm), "--out", str(tmp_path / "calm"), "--no-report")
    victim = await launch("paper", str(killed), "--no-report")
    await asyncio.sleep(6)  # both are trading from the stream; the replay is mid-way
    if victim.returncode is not None:
        raise AssertionError(f"ended before the kill: {await _finish(victim)}")
    victim.send_signal(signal.SIGKILL)
    await victim.wait()
    again = await launch("paper", str(killed), "--no-report")
    return {
        "calm": await _finish(first),
        "again": await _finish(again),
        "recorder": await _finish(recorder),
    }


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_one_recorder_publishes_and_two_strategy_processes_consume(
    examples_dir: Path, tmp_path: Path, redis_url: str
) -> None:
    outputs = asyncio.run(_scenario(examples_dir, tmp_path, redis_url))
    client = redis.Redis.from_url(redis_url)
    length = client.xlen(STREAM)
    assert f"published {length:,} entries to {STREAM}" in outputs["recorder"]
    assert length > 500
    groups = {g["name"].decode(): g for g in client.xinfo_groups(STREAM)}
    for name in ("calm", "killed"):  # every entry read and acknowledged, once the group is done
        assert groups[name]["lag"] == 0 and groups[name]["pending"] == 0, groups[name]
        assert groups[name]["entries-read"] == length

    # the undisturbed consumer trades the stream as a backtest trades what the recorder wrote
    # (the same frames in the same arrival order: a spot REST snapshot carries no time, and its
    # stamp comes from the diffs that had arrived with it)
    (written,) = (tmp_path / "rec" / "raw").glob("*.jsonl.gz")
    raw = yaml.safe_load((tmp_path / "calm.yaml").read_text(encoding="utf-8"))
    raw["book"]["recording"] = str(written)
    config = tmp_path / "recorded.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    quiet = ["--quiet", "--no-report"]
    assert main(["backtest", str(config), "--out", str(tmp_path / "bt"), *quiet]) == 0

    def key(row: dict[str, str]) -> tuple[str, ...]:
        return tuple(v for k, v in row.items() if k != "client_order_id")

    backtest = _rows(tmp_path / "bt" / "orders.csv")
    assert len(backtest) > 20
    assert [key(r) for r in _rows(tmp_path / "calm" / "orders.csv")] == [key(r) for r in backtest]
    assert f"bus: {length:,} entries of {STREAM} in group 'calm'" in outputs["calm"]
    assert "book from the snapshot of" in outputs["calm"]

    # the restarted one resumed mid-stream: fewer entries, its book from a keyframe, trading on
    again = outputs["again"]
    assert "book from the keyframe of" in again, again
    handled = int(again.split("bus: ")[1].split(" entries")[0].replace(",", ""))
    assert 0 < handled < length
    assert "paper session ended (idle)" in again
    orders_line = again.split("paper session ended (idle): ")[1].splitlines()[0]
    assert int(orders_line.split(" orders")[0].split(", ")[-1]) > 0, orders_line
