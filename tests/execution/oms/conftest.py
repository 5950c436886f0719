"""Shared fixtures of the order-manager tests: the recorded Binance session the fake venue
replays for the real ccxt client."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

SLICE = "data/recordings/binance-spot-btcusdt-2024-08-08.jsonl.gz"


@pytest.fixture(scope="session")
def recording(examples_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repo's recorded Binance spot slice, its REST depth snapshot (kept by our recorder as
    ccxt parsed it) written back as the Binance body the venue replays."""
    out = tmp_path_factory.mktemp("recording") / "binance-spot-btcusdt.jsonl.gz"
    with gzip.open(examples_dir / SLICE, "rt") as src, gzip.open(out, "wt") as dst:
        for line in src:
            record = json.loads(line)
            if record["t"] == "snapshot":
                book = record["data"]
                body = {
                    "lastUpdateId": book["nonce"],
                    "bids": [[repr(p), repr(s)] for p, s in book["bids"]],
                    "asks": [[repr(p), repr(s)] for p, s in book["asks"]],
                }
                record = {
                    "t": "http",
                    "ts_ns": record["ts_ns"],
                    "url": "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000",
                    "data": json.dumps(body),
                }
            dst.write(json.dumps(record) + "\n")
    return out
