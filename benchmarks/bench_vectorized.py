"""Vectorized-runner benchmark: SMA cross on one-minute bars, single run and a parameter sweep,
against vectorbt ``Portfolio.from_signals`` and a bare numba loop (the practical lower bound).

Workload: :func:`workload.make_minute_bars` (default 1,000,000 bars); long-only
SMA(fast)/SMA(slow) cross on close (``SmaCross(fast, slow, fraction=0.95, allow_short=False)``):
a strict cross up targets 95 % of equity, a strict cross down targets 0; decided at the close,
filled at the next open with 1 bp slippage and a 1 bp taker fee; 100,000 cash; tick 1e-8, lot 1.

Sections (one table each, goal lines after):

1. single run in-process, best of ``--repeat``: tradestack :class:`VectorizedEngine` (target
   weights + kernel; the lazy ledger rebuild is timed on its own row), vectorbt (in
   ``.venv-vbt``: vectorbt 1.2 needs pandas >= 3 and the project venv pins pandas 2.x; its
   process reports its own in-process time), the bare numba loop;
2. whole process (warm compile caches: one untimed run first): ``tradestack backtest CFG
   --engine vectorized --quiet`` on a Parquet file of the bars, the vectorbt script and the
   bare-numba script on the same file; goal: tradestack < 2.5 s;
3. sweep of ``--combos`` (fast, slow) pairs: (a) ``run_sweep(..., vectorized=True, workers=2)``
   (what ``tradestack sweep --vectorized`` runs) on all of them, or on the first
   ``--sweep-a-combos`` and scaled to all: per variant the config is validated again, the bars
   come from the worker's cache (the Parquet file is read once per process) and the metrics
   from the kernel's fills without the Decimal ledger; its final equities are checked against
   (b)'s; (b) the bars loaded once per process and a VectorizedEngine per pair (final equity
   and order count, no metrics), 2 spawned processes; vectorbt's broadcasting in chunks; the
   bare numba sweep (``prange`` over pairs, 2 threads); vectorbt runs the first
   ``--vbt-combos`` pairs (default 100; ~0.4 s per pair on 1M bars) and its time is scaled to
   all; goals: tradestack (a) and (b) < 60 s.

Usage::

    .venv/bin/python benchmarks/bench_vectorized.py [--bars N] [--combos N] [--quick]
        [--sweep-a-combos N] [--repeat 3] [--skip vbt,sweep,process]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from decimal import Decimal
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import vectorized_peers as peers  # noqa: E402
import workload  # noqa: E402

VBT_PYTHON = ROOT / ".venv-vbt" / "bin" / "python"
PEERS_SCRIPT = HERE / "vectorized_peers.py"
RESULT_TAG = peers.RESULT_TAG
GOAL_PROCESS_S = 2.5
GOAL_SWEEP_S = 60.0
#: tradestack vs the bare loop: same fill rule except tick rounding of the slipped price.
TOL_BARE = 1e-6
#: vectorbt sizes at the fill price (the open) instead of the signal close.
TOL_VBT = 1e-3

_BARS: dict[str, Any] = {}


# --------------------------------------------------------------------------- tradestack


def _series(bars: dict[str, np.ndarray]) -> Any:
    from tradestack.core import BarSeries, Instrument, InstrumentId

    inst = Instrument(InstrumentId("SYN"), tick_size=Decimal("0.00000001"), lot_size=Decimal("1"))
    series = BarSeries(
        inst.id,
        bars["ts_ns"],
        bars["open"],
        bars["high"],
        bars["low"],
        bars["close"],
        bars["volume"],
    )
    return inst, series


def _engine(inst: Any, series: Any, fast: int, slow: int) -> Any:
    from tradestack.engine.vectorized import VectorizedEngine
    from tradestack.execution import BarVenueConfig
    from tradestack.strategies.sma_cross import SmaCross

    return VectorizedEngine(
        SmaCross(fast=fast, slow=slow, fraction=peers.FRACTION, allow_short=False),
        [series],
        instruments=[inst],
        starting_cash=int(peers.CASH),
        venue=BarVenueConfig(
            slippage_bps=Decimal(str(peers.SLIP_BPS)), taker_fee_bps=Decimal(str(peers.FEE_BPS))
        ),
    )


def best_of(fn: Callable[[], Any], repeat: int) -> tuple[float, float, Any]:
    """(first seconds, best seconds, last value) of ``repeat`` calls."""
    times, value = [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return times[0], min(times), value


def tradestack_single(bars: dict[str, np.ndarray], repeat: int) -> dict[str, Any]:
    """Engine construction + run (weights + kernel), then the pieces on their own."""
    from tradestack.engine.vectorized.signals import sma_stream

    inst, series = _series(bars)
    first, best, result = best_of(
        lambda: _engine(inst, series, peers.FAST, peers.SLOW).run(), repeat
    )
    t0 = time.perf_counter()
    trades = result.trades
    ledger_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result.metrics()
    metrics_s = time.perf_counter() - t0
    strategy = _engine(inst, series, peers.FAST, peers.SLOW).strategy
    _, weights_s, _ = best_of(lambda: strategy.target_weights({inst.id: series}), repeat)
    _, sma_s, _ = best_of(lambda: sma_stream(series.close, peers.SLOW), repeat)
    return {
        "run_s": best,
        "first_s": first,
        "ledger_s": ledger_s,
        "metrics_s": metrics_s,
        "weights_s": weights_s,
        "sma_s": sma_s,
        "n_bars": len(series),
        "n_trades": len(trades),
        "n_fills": len(result.fills),
        "n_orders": result.n_orders,
        "final_equity": float(result.equity[-1]),
    }


def _init_worker(n_bars: int) -> None:
    _BARS["series"] = _series(workload.make_minute_bars(n_bars))


def _sweep_chunk(pairs: list[tuple[int, int]]) -> list[tuple[float, int, float]]:
    inst, series = _BARS["series"]
    out = []
    for fast, slow in pairs:
        t0 = time.perf_counter()
        result = _engine(inst, series, fast, slow).run()
        out.append((float(result.equity[-1]), result.n_orders, time.perf_counter() - t0))
    return out


def tradestack_sweep(n_bars: int, pairs: list[tuple[int, int]], workers: int) -> dict[str, Any]:
    """(b): bars loaded once per process, one VectorizedEngine per pair, ``workers`` spawned
    processes (pool start-up, imports and bar generation included in the wall time)."""
    n_chunks = max(1, min(len(pairs), workers * 8))
    chunks = [pairs[k::n_chunks] for k in range(n_chunks)]
    t0 = time.perf_counter()
    with ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(n_bars,)
    ) as pool:
        parts = list(pool.map(_sweep_chunk, chunks))
    wall = time.perf_counter() - t0
    by_pair: dict[tuple[int, int], tuple[float, int, float]] = {}
    for chunk, part in zip(chunks, parts, strict=True):
        by_pair.update(zip(chunk, part, strict=True))
    rows = [by_pair[p] for p in pairs]
    return {
        "run_s": wall,
        "per_combo_s": sum(r[2] for r in rows) / len(rows),
        "equity": [r[0] for r in rows],
        "orders": [r[1] for r in rows],
    }


def tradestack_run_sweep(cfg: Path, pairs: list[tuple[int, int]], workers: int) -> dict[str, Any]:
    """(a): ``run_sweep`` with its per-variant config validation, cached bars and metrics."""
    import yaml

    from tradestack.research.sweep import run_sweep

    raw = yaml.safe_load(cfg.read_text(encoding="utf-8"))
    variants = [{"fast": f, "slow": s} for f, s in pairs]
    t0 = time.perf_counter()
    rows = run_sweep(raw, cfg.parent, variants, workers=workers, vectorized=True)
    wall = time.perf_counter() - t0
    errors = [r["error"] for r in rows if r.get("error")]
    return {
        "run_s": wall,
        "per_combo_s": sum(r["seconds"] for r in rows) / len(rows),
        "equity": [r["final_equity"] for r in rows],
        "errors": errors,
    }


# --------------------------------------------------------------------------- processes


def spawn(cmd: Sequence[str]) -> tuple[str, str, int, float]:
    """Run ``cmd``; (stdout, stderr, exit code, wall seconds from start to reaping)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        code = proc.wait()
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        return out.read(), err.read(), code, wall


def parse_result(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            parsed: dict[str, Any] = json.loads(line[len(RESULT_TAG) :])
            return parsed
    return None


def peer_job(python: Path, *args: str) -> dict[str, Any]:
    """A peer mode in its own process; its JSON result plus the process wall time."""
    out, err, code, wall = spawn([str(python), str(PEERS_SCRIPT), *args])
    parsed = parse_result(out)
    if code != 0 or parsed is None:
        tail = (err or out).strip().splitlines()[-3:]
        return {"error": f"exit {code}: {' | '.join(tail)}", "wall_s": wall}
    parsed["wall_s"] = wall
    return parsed


def write_workload(folder: Path, n: int) -> tuple[Path, Path]:
    """The bars as ``bars.parquet`` plus ``cfg.yaml`` for ``tradestack backtest``."""
    import polars as pl

    bars = workload.make_minute_bars(n)
    frame = pl.DataFrame(
        {
            "timestamp": pl.Series(bars["ts_ns"]).cast(pl.Datetime("ns", "UTC")),
            **{k: bars[k] for k in ("open", "high", "low", "close", "volume")},
        }
    )
    data = folder / "bars.parquet"
    frame.write_parquet(data)
    cfg = folder / "cfg.yaml"
    cfg.write_text(
        "strategy: tradestack.strategies.sma_cross:SmaCross\n"
        f"params: {{fast: {peers.FAST}, slow: {peers.SLOW}, fraction: {peers.FRACTION}, "
        "allow_short: false}\n"
        "data:\n"
        f"  - path: {data.name}\n"
        "    instrument: SYN\n"
        "    timezone: UTC\n"
        '    tick_size: "0.00000001"\n'
        "    lot_size: 1\n"
        f'venue: {{fill_at: next_open, slippage_bps: "{peers.SLIP_BPS}", '
        f'taker_fee_bps: "{peers.FEE_BPS}"}}\n'
        f"starting_cash: {int(peers.CASH)}\n",
        encoding="utf-8",
    )
    return data, cfg


def _tradestack_exe() -> list[str]:
    exe = Path(sys.executable).with_name("tradestack")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tradestack.cli"]


def warm_wall(cmd: Sequence[str]) -> tuple[float, float, str]:
    """(first wall, timed wall after the warm run, error)."""
    _, err1, code1, first = spawn(cmd)
    _, err, code, wall = spawn(cmd)
    bad = code1 or code
    msg = "" if not bad else f"exit {bad}: {(err or err1).strip().splitlines()[-1:]}"
    return first, wall, msg


# --------------------------------------------------------------------------- printing


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Plain-text table: first and last columns left-aligned, the rest right-aligned."""
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if k in (0, len(cells) - 1) else str(c).rjust(w)
            for k, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(f"\n{title}")
    print(line(header))
    print("-" * len(line(header)))
    for row in rows:
        print(line(row))


def _f(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:{spec}}"


def _rel(a: float, b: float) -> float:
    """Equity difference over the starting cash (the strategy can lose most of its equity to
    fees, and a relative difference of a near-zero equity says little)."""
    return abs(a - b) / peers.CASH


def goal(label: str, value: float | None, limit: float) -> str:
    if value is None:
        return f"goal: {label} < {limit:g} s: NOT MEASURED"
    verdict = "MET" if value < limit else "NOT MET"
    return f"goal: {label} < {limit:g} s: {verdict} ({value:.2f} s)"


# --------------------------------------------------------------------------- sections


def section_single(bars: dict[str, np.ndarray], parquet: Path, repeat: int, vbt: bool) -> None:
    n = len(bars["close"])
    bare_first, bare_best, bare = best_of(lambda: peers.bare_single(bars), repeat)
    bare_eq, bare_trades, bare_fills = float(bare[0]), int(bare[1]), int(bare[2])
    ours = tradestack_single(bars, repeat)
    vb: dict[str, Any] = {"error": "skipped (--skip vbt)"}
    if vbt:
        vb = (
            peer_job(VBT_PYTHON, "vbt-single", str(parquet), "--repeat", str(repeat))
            if VBT_PYTHON.exists()
            else {"error": f"{VBT_PYTHON} missing"}
        )

    def agree(trades: int | None, equity: float | None, tol: float) -> str:
        if trades is None or equity is None:
            return "-"
        rel = _rel(equity, bare_eq)
        same = trades == bare_trades and rel <= tol
        verdict = "yes" if same else "NO"
        return f"{verdict} (trades {trades - bare_trades:+d}, equity diff/cash {rel:.1e})"

    rows = [
        [
            "bare numba loop (lower bound)",
            _f(bare_best, ".4f"),
            _f(bare_first, ".3f"),
            _f(n / bare_best, ",.0f"),
            "1.00x",
            str(bare_trades),
            str(bare_fills),
            _f(bare_eq, ",.2f"),
            "(reference)",
        ],
        [
            "tradestack VectorizedEngine (weights+kernel)",
            _f(ours["run_s"], ".4f"),
            _f(ours["first_s"], ".3f"),
            _f(n / ours["run_s"], ",.0f"),
            f"{ours['run_s'] / bare_best:.2f}x",
            str(ours["n_trades"]),
            str(ours["n_fills"]),
            _f(ours["final_equity"], ",.2f"),
            agree(ours["n_trades"], ours["final_equity"], TOL_BARE) + f" tol {TOL_BARE:g}",
        ],
        [
            "  + lazy ledger rebuild (result.trades)",
            _f(ours["ledger_s"], ".4f"),
            "-",
            "-",
            f"{(ours['run_s'] + ours['ledger_s']) / bare_best:.2f}x",
            "-",
            "-",
            "-",
            f"{ours['n_orders']} orders booked",
        ],
    ]
    if "error" in vb:
        rows.append(["vectorbt from_signals", "-", "-", "-", "-", "-", "-", "-", vb["error"]])
    else:
        rows.append(
            [
                f"vectorbt {vb['vectorbt']} MA.run + from_signals",
                _f(vb["run_s"], ".4f"),
                _f(vb["first_s"], ".3f"),
                _f(n / vb["run_s"], ",.0f"),
                f"{vb['run_s'] / bare_best:.2f}x",
                str(vb["n_trades"]),
                str(vb["n_fills"]),
                _f(vb["final_equity"], ",.2f"),
                agree(vb["n_trades"], vb["final_equity"], TOL_VBT) + f" tol {TOL_VBT:g}",
            ]
        )
    print_table(
        f"1. Single run in-process: SMA({peers.FAST}/{peers.SLOW}) long-only cross, "
        f"{n:,} one-minute bars, best of {repeat}",
        [
            "engine",
            "best s",
            "first s",
            "bars/s",
            "vs bare",
            "trades",
            "fills",
            "final equity",
            "agrees with bare loop",
        ],
        rows,
    )
    if "error" not in vb:
        print(
            f"tradestack vs vectorbt: {vb['run_s'] / ours['run_s']:.2f}x "
            "(vectorbt seconds / tradestack seconds)"
        )
    print(
        f"tradestack hot spots: target_weights {ours['weights_s']:.4f} s "
        f"(one sma_stream({peers.SLOW}) {ours['sma_s']:.4f} s), kernel + merge "
        f"{ours['run_s'] - ours['weights_s']:.4f} s; lazy ledger rebuild {ours['ledger_s']:.3f} s, "
        f"metrics() after it {ours['metrics_s']:.3f} s"
    )


def section_process(parquet: Path, cfg: Path, vbt: bool) -> None:
    cmds: list[tuple[str, list[str]]] = [
        (
            "tradestack backtest --engine vectorized --quiet",
            [*_tradestack_exe(), "backtest", str(cfg), "--engine", "vectorized", "--quiet"],
        ),
        (
            "bare numba script",
            [sys.executable, str(PEERS_SCRIPT), "bare-single", str(parquet), "--repeat", "1"],
        ),
    ]
    if vbt and VBT_PYTHON.exists():
        cmds.append(
            (
                "vectorbt script (.venv-vbt)",
                [str(VBT_PYTHON), str(PEERS_SCRIPT), "vbt-single", str(parquet), "--repeat", "1"],
            )
        )
    rows, ours = [], None
    results = [(label, *warm_wall(cmd)) for label, cmd in cmds]
    bare_wall = results[1][2]
    for label, first, wall, err in results:
        if label.startswith("tradestack") and not err:
            ours = wall
        rows.append(
            [label, _f(first, ".2f"), _f(wall, ".2f"), f"{wall / bare_wall:.2f}x", err or "ok"]
        )
    print_table(
        "2. Whole process (Parquet file -> result; compile caches warm: first run untimed)",
        ["command", "first wall s", "wall s", "vs bare", "status"],
        rows,
    )
    print(goal("tradestack whole-process", ours, GOAL_PROCESS_S))


def _sweep_row(
    label: str, ran: int, wall: float, per_combo: float, scale: tuple[int, int, float], note: str
) -> list[str]:
    """A row of table 3; ``wall`` is for all ``m`` pairs (scaled when ``ran`` < ``m``) and
    ``scale`` is (bars, m, the bare sweep's seconds)."""
    n, m, bare_s = scale
    scaled = "" if ran == m else f" (x{m / ran:g})"
    return [label, str(ran), _f(wall, ".2f") + scaled, _f(per_combo, ".4f"),
            _f(n * m / wall, ",.0f"), f"{wall / bare_s:.2f}x", note]  # fmt: skip


def section_sweep(
    bars: dict[str, np.ndarray],
    parquet: Path,
    cfg: Path,
    combos: int,
    vbt_combos: int,
    vbt: bool,
    a_combos: int | None = None,
) -> None:
    n = len(bars["close"])
    pairs = peers.combo_grid(combos)
    workers = 2
    print(f"\nrunning sweeps ({len(pairs)} combos on {n:,} bars) ...", file=sys.stderr, flush=True)
    a_pairs = pairs[:a_combos]
    sweep_a = tradestack_run_sweep(cfg, a_pairs, workers)
    ours = tradestack_sweep(n, pairs, workers)
    fasts = np.array([p[0] for p in pairs], dtype=np.int64)
    slows = np.array([p[1] for p in pairs], dtype=np.int64)
    args = (peers.FRACTION, peers.FEE_BPS / 1e4, peers.SLIP_BPS / 1e4, peers.CASH)
    peers.bare_sweep(bars["open"][:1000], bars["close"][:1000], fasts[:2], slows[:2], *args)
    t0 = time.perf_counter()
    b_eq, b_trades, b_fills = peers.bare_sweep(bars["open"], bars["close"], fasts, slows, *args)
    bare_s = time.perf_counter() - t0
    vb: dict[str, Any] = {"error": "skipped (--skip vbt)"}
    if vbt:
        vb = (
            peer_job(VBT_PYTHON, "vbt-sweep", str(parquet), "--combos", str(vbt_combos))
            if VBT_PYTHON.exists()
            else {"error": f"{VBT_PYTHON} missing"}
        )

    m, k = len(pairs), len(a_pairs)
    ours_ok = sum(
        _rel(e, float(be)) <= TOL_BARE and o == int(bf)
        for e, o, be, bf in zip(ours["equity"], ours["orders"], b_eq, b_fills, strict=True)
    )
    a_wall = sweep_a["run_s"] * m / k  # scaled to all pairs when run on the first k
    a_same = sum(a == b for a, b in zip(sweep_a["equity"], ours["equity"][:k], strict=True))
    a_note = f"{a_same}/{k} same final equity as (b)"
    if sweep_a["errors"]:
        a_note += f"; {len(sweep_a['errors'])} errors: {sweep_a['errors'][:1]}"
    rows = [
        _sweep_row(f"bare numba sweep (prange, {workers} threads)", m, bare_s, bare_s / m,
                   (n, m, bare_s), "(reference)"),
        _sweep_row(f"tradestack (b) engine per combo, {workers} spawned procs", m, ours["run_s"],
                   ours["per_combo_s"], (n, m, bare_s),
                   f"{ours_ok}/{m} same orders and equity (tol {TOL_BARE:g})"),
        _sweep_row(f"tradestack (a) run_sweep(vectorized, workers={workers})", k, a_wall,
                   sweep_a["per_combo_s"], (n, m, bare_s), a_note),
    ]  # fmt: skip
    if "error" in vb:
        rows.append(["vectorbt broadcasting", "-", "-", "-", "-", "-", vb["error"]])
    else:
        vk = vb["combos"]
        same_trades = sum(
            int(t) == int(bt) for t, bt in zip(vb["trades"], b_trades[:vk], strict=True)
        )
        worst = max(_rel(e, float(be)) for e, be in zip(vb["equity"], b_eq[:vk], strict=True))
        vb["run_s"] *= m / vk  # extrapolated to all pairs when measured on the first vk
        note = f"{same_trades}/{vk} same closed trades; worst equity diff/cash {worst:.1e}"
        label = f"vectorbt MA.run + from_signals, chunks of {vb['chunk']}"
        rows.append(_sweep_row(label, vk, vb["run_s"], vb["run_s"] / m, (n, m, bare_s), note))
    print_table(
        f"3. Sweep: {m} (fast, slow) pairs on {n:,} bars (fast 5.., slow {peers.SLOWS[0]}.."
        f"{peers.SLOWS[-1]} step 20); wall seconds",
        ["engine", "combos", "wall s", "s/combo", "bar-combos/s", "vs bare", "agreement"],
        rows,
    )
    if "error" not in vb:
        print(
            f"tradestack (b) vs vectorbt: {vb['run_s'] / ours['run_s']:.2f}x "
            "(vectorbt seconds / tradestack seconds)"
        )
    print(
        f"(a) per variant in its worker: config validation + cached bars + engine + metrics "
        f"without the ledger {sweep_a['per_combo_s']:.4f} s vs (b) {ours['per_combo_s']:.4f} s"
    )
    scaled = "" if k == m else f", scaled from {k}"
    print(goal(f"tradestack {m}-combo run_sweep (a){scaled}", a_wall, GOAL_SWEEP_S))
    print(goal(f"tradestack {m}-combo sweep (b)", ours["run_s"], GOAL_SWEEP_S))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--combos", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="100,000 bars and 100 combos")
    parser.add_argument(
        "--vbt-combos",
        type=int,
        default=100,
        help="pairs vectorbt's sweep runs (its wall time is scaled to --combos; default 100)",
    )
    parser.add_argument(
        "--sweep-a-combos",
        type=int,
        help="run_sweep (a) on the first N pairs only (time scaled to --combos; default all)",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip", default="", help="comma list: vbt,process,sweep")
    args = parser.parse_args(argv)
    if args.quick:
        args.bars, args.combos = 100_000, 100
    skip = set(filter(None, args.skip.split(",")))
    vbt = "vbt" not in skip
    if vbt and not VBT_PYTHON.exists():
        print(
            f"note: {VBT_PYTHON} not found; create it with `python3 -m venv .venv-vbt && "
            ".venv-vbt/bin/pip install vectorbt pyarrow` for the vectorbt rows",
            file=sys.stderr,
        )
    bars = workload.make_minute_bars(args.bars)
    print(
        f"workload: {args.bars:,} one-minute bars, SMA cross long-only, fraction {peers.FRACTION}, "
        f"fee {peers.FEE_BPS:g} bp, slippage {peers.SLIP_BPS:g} bp, fill at next open; "
        f"{os.cpu_count()} cores"
    )
    with tempfile.TemporaryDirectory(prefix="tradestack-bench-vec-") as tmp:
        parquet, cfg = write_workload(Path(tmp), args.bars)
        section_single(bars, parquet, args.repeat, vbt)
        if "process" not in skip:
            section_process(parquet, cfg, vbt)
        if "sweep" not in skip:
            vbt_combos = min(args.vbt_combos, args.combos)
            section_sweep(bars, parquet, cfg, args.combos, vbt_combos, vbt, args.sweep_a_combos)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
