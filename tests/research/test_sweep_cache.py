"""The sweep's per-process bar cache (a file is read once, a changed file is read again, a
freshly written one is never trusted) and vectorized sweeps through it and the ledger-free
metrics: the same rows as the ledger gives, on worker processes and in-process."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import tradestack.data
import tradestack.engine.loading
from tradestack.core import BarSeries, InstrumentId
from tradestack.engine.config import BacktestConfig
from tradestack.engine.loading import build_engine
from tradestack.research import sweep
from tradestack.research.sweep import (
    METRIC_COLUMNS,
    BarCache,
    apply_overrides,
    grid,
    parse_axis,
    run_sweep,
    run_variant,
)

INST = InstrumentId("X")


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The paths load_bars reads (through the cache or, without it, from build_engine)."""
    seen: list[Path] = []
    real = tradestack.data.load_bars

    def counting(path: Path, *args: Any, **kwargs: Any) -> BarSeries:
        seen.append(Path(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(tradestack.data, "load_bars", counting)
    monkeypatch.setattr(tradestack.engine.loading, "load_bars", counting)
    return seen


def _write(path: Path, close: float, rows: int = 3) -> None:
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [
        f"2024-01-0{d + 1},{close:.2f},{close:.2f},{close:.2f},{close:.2f},1" for d in range(rows)
    ]
    path.write_text("\n".join(lines) + "\n")


def _close(cache: BarCache, path: Path, timezone: str = "UTC") -> float:
    return float(cache(path, INST, timezone=timezone, time_column=None).close[-1])


def test_a_settled_file_is_read_once(tmp_path: Path, reads: list[Path]) -> None:
    path = tmp_path / "bars.csv"
    _write(path, 10.0)
    cache = BarCache(settle_s=0.0)
    first = cache(path, INST, timezone="UTC", time_column=None)
    assert cache(path, INST, timezone="UTC", time_column=None) is first
    assert cache(tmp_path / "." / "bars.csv", INST, timezone="UTC", time_column=None) is first
    assert len(reads) == 1
    _close(cache, path, timezone="America/New_York")  # other options: another entry
    assert len(reads) == 2 and cache.n_files == 2
    cache.clear()
    _close(cache, path)
    assert len(reads) == 3


def test_a_changed_file_is_read_again(tmp_path: Path, reads: list[Path]) -> None:
    """Rewritten in place with the same size and its old modification time put back, replaced
    by another file, or grown: each change is seen."""
    path = tmp_path / "bars.csv"
    _write(path, 10.0)
    cache = BarCache(settle_s=0.0)
    assert _close(cache, path) == 10.0
    time.sleep(0.05)  # past the filesystem clock's tick
    stat = path.stat()
    _write(path, 11.0)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size
    assert _close(cache, path) == 11.0
    time.sleep(0.05)
    other = tmp_path / "new.csv"
    _write(other, 12.0)
    os.replace(other, path)
    assert _close(cache, path) == 12.0
    time.sleep(0.05)
    _write(path, 13.0, rows=4)
    assert _close(cache, path) == 13.0
    assert _close(cache, path) == 13.0
    assert len(reads) == 4


def test_a_freshly_written_file_is_read_every_time(tmp_path: Path, reads: list[Path]) -> None:
    """Changed within the settle time, a file could change again within the same clock tick
    (same size and times): it is not kept, so the second rewrite is seen too."""
    path = tmp_path / "bars.csv"
    cache = BarCache()
    for close in (10.0, 11.0, 12.0):
        stat = path.stat() if path.exists() else None
        _write(path, close)
        if stat is not None:
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        assert _close(cache, path) == close
    assert cache.n_files == 0 and len(reads) == 3


def test_a_missing_file_fails_as_without_the_cache(examples_dir: Path, tmp_path: Path) -> None:
    raw = yaml.safe_load((examples_dir / "configs" / "sma_cross.yaml").read_text())
    raw["data"][0]["path"] = str(tmp_path / "missing.csv")
    config = BacktestConfig.model_validate(raw)
    failures = []
    for reader in (None, BarCache()):
        with pytest.raises(ValueError, match=r"missing\.csv") as caught:
            build_engine(config, tmp_path, vectorized=True, read_bars=reader)
        failures.append((type(caught.value), str(caught.value)))
    assert failures[0] == failures[1]


def test_vectorized_variants_read_each_file_once(
    examples_dir: Path, reads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sweep, "_BARS", BarCache(settle_s=0.0))
    path = examples_dir / "configs" / "momentum.yaml"
    raw, base = yaml.safe_load(path.read_text()), str(path.parent)
    for lookback in (5, 20, 60):
        assert run_variant(raw, base, {"lookback": lookback}, vectorized=True)["error"] == ""
    assert len(reads) == 2  # AAPL and MSFT
    assert run_variant(raw, base, {"lookback": 5})["error"] == ""  # the event engine: no cache
    assert len(reads) == 4


def _ledger_row(raw: dict[str, Any], base: Path, params: dict[str, Any]) -> dict[str, Any]:
    """A variant's row as the sweep gave it before the cache and the ledger-free metrics."""
    config = BacktestConfig.model_validate(apply_overrides(raw, params))
    metrics = build_engine(config, base, vectorized=True).run().metrics().to_dict()
    return {**params, **{k: metrics[k] for k in METRIC_COLUMNS}, "error": ""}


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "seconds" and not k.startswith("_")}


@pytest.mark.parametrize(
    ("config", "axes"),
    [
        ("sma_cross.yaml", ["fast=5,10,40", "slow=30,60", "allow_short=true,false"]),
        ("momentum.yaml", ["lookback=5:65:20", "venue.taker_fee_bps=0,3"]),
    ],
)
def test_a_vectorized_sweep_gives_the_ledger_rows(
    examples_dir: Path, config: str, axes: list[str]
) -> None:
    path = examples_dir / "configs" / config
    raw, base = yaml.safe_load(path.read_text()), path.parent
    variants = grid([parse_axis(a) for a in axes])
    rows = run_sweep(raw, base, variants, workers=2, vectorized=True)
    in_process = run_sweep(raw, base, variants, workers=1, vectorized=True)
    assert sweep._BARS.n_files == 0  # the in-process sweep lets its data go
    for params, row, again in zip(variants, rows, in_process, strict=True):
        assert _public(row) == _public(again)
        if row["error"]:
            assert "slow" in row["error"] and all(row[k] is None for k in METRIC_COLUMNS)
            continue
        assert np.array_equal(row["_returns"], again["_returns"], equal_nan=True)
        want = _ledger_row(raw, base, params)
        assert _public(row).keys() == want.keys()
        for key, value in want.items():
            if isinstance(value, float):
                assert row[key] == pytest.approx(value, rel=1e-9), key
            else:
                assert (type(row[key]), row[key]) == (type(value), value), key
        assert isinstance(row["n_trades"], int) and row["n_trades"] > 0
    assert sum(bool(r["error"]) for r in rows) == (2 if config == "sma_cross.yaml" else 0)
