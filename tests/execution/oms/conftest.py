"""Shared fixtures of the order-manager tests: the recorded Binance session the fake venue
replays for the real ccxt client."""

from __future__ import annotations

from pathlib import Path

import pytest

from tradestack.testing.venues.binance import with_rest_snapshots

SLICE = "data/recordings/binance-spot-btcusdt-2024-08-08.jsonl.gz"


@pytest.fixture(scope="session")
def recording(examples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repo's recorded Binance spot slice, its REST depth snapshot (kept by our recorder as
    ccxt parsed it) written back as the Binance body the venue replays."""
    out = tmp_path_factory.mktemp("recording") / "binance-spot-btcusdt.jsonl.gz"
    return with_rest_snapshots(examples_dir / SLICE, out)
