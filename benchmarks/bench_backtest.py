"""Throughput benchmark: tradestack's event-driven engine vs backtrader, backtesting.py, nautilus.

Workload (same in every engine, see ``peers.py``): SMA(10) / SMA(30) crossover on close, fixed
quantity 10, zero fees, 100,000 starting cash, over :func:`workload.make_minute_bars` (deterministic
one-minute bars with 8-decimal prices).  For every bar count in ``--sizes`` it runs

* ``tradestack`` -- our :class:`BacktestEngine` with :class:`SmaCross` (ordinary Python ``on_bar``)
  with ``fill_at="next_open"`` and again with ``fill_at="close"``;
* ``backtrader`` and ``backtesting.py`` -- fill at the next bar's open;
* ``nautilus_trader`` -- bar execution fills at the signal bar's close, so it is compared with our
  ``fill_at="close"`` run.

Every (engine, size, fill) runs in its own subprocess, so that

* **in-process bars/s** is bars / the backtest call alone (engine construction + run for ours,
  ``Backtest.run`` / ``cerebro.run`` / ``engine.run`` for the peers; no data generation);
* **whole-process wall** is honest: interpreter start + imports + data generation + run + result;
* **max RSS** is the subprocess's own peak resident set (``wait4`` rusage).

Then the whole-process command line: the largest workload is written once to a Parquet file plus a
YAML config and ``tradestack backtest cfg.yaml --quiet`` (and ``--quiet --out DIR``, which also
writes metrics/trades/equity/orders/report files) is timed as a subprocess, against a subprocess
that runs backtesting.py from reading the same Parquet file to its final stats.

Agreement: within each fill convention every engine must report the same closed-trade count and
final equity (relative 1e-9) as ours, and the same trade list (entry/exit time and price, size);
``--out``'s metrics.json must match too.  The exit status is 1 on any disagreement or failed run.
The issue's goals (>= 200k bars/s, >= 20x backtrader, >= 8x nautilus, ahead of backtesting.py,
whole-process CLI faster than backtesting.py) are printed as MET / MISSED; they do not change the
exit status.

Usage::

    .venv/bin/python benchmarks/bench_backtest.py [--sizes 100000,1000000]
        [--skip backtrader,nautilus,backtesting,cli] [--repeat N] [--profile]

``--repeat N`` runs each subprocess N times and keeps the best in-process time and best wall time
(max RSS: the largest seen).  ``--profile`` also runs ours (next_open) on the largest size under
cProfile and prints the top 15 functions by own time.  backtrader on 1M bars takes ~100 s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
FAST, SLOW, QTY, CASH = 10, 30, 10, 100_000
REL_TOL = 1e-9
RESULT_TAG = "BENCH_RESULT "
OURS = "tradestack"
PEERS = (
    "backtrader",
    "backtrader (PandasData)",
    "backtesting.py",
    "backtesting.py (idiomatic)",
    "nautilus_trader",
)
SKIP_ALIASES = {
    "backtrader": "backtrader",
    "bt": "backtrader",
    "backtesting": "backtesting.py",
    "backtesting.py": "backtesting.py",
    "nautilus": "nautilus_trader",
    "nautilus_trader": "nautilus_trader",
    "cli": "cli",
}
#: (engine, fill convention) in run order; ours first so the ratios have a reference.
MATRIX: tuple[tuple[str, str], ...] = (
    (OURS, "next_open"),
    (OURS, "close"),
    ("backtesting.py", "next_open"),
    ("backtesting.py (idiomatic)", "next_open"),
    ("backtrader", "next_open"),
    ("backtrader (PandasData)", "next_open"),
    ("nautilus_trader", "close"),
)
GOAL_BARS_PER_S = 200_000
GOAL_RATIO = {"backtrader": 20.0, "nautilus_trader": 8.0, "backtesting.py": 1.0}


def _family(engine: str) -> str:
    """``backtrader (PandasData)`` -> ``backtrader``: goals and --skip apply per library."""
    return engine.split(" (")[0]


# --------------------------------------------------------------------------- worker side
# Everything below runs inside the per-engine subprocess; imports are local so each worker pays
# only for the libraries its own engine needs.


def _workload() -> Any:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import workload

    return workload


def _peers() -> Any:
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    import peers

    return peers


def _digest(trades: Sequence[tuple[int, int, float, float, int]]) -> str:
    """Hash of the closed trades ``(entry_ns, exit_ns, entry_px, exit_px, signed_size)``."""
    text = "\n".join(f"{a},{b},{c!r},{d!r},{e}" for a, b, c, d, e in trades)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _ours_engine(bars: dict[str, Any], fill: str) -> Any:
    from decimal import Decimal

    from tradestack.core import BarSeries, Instrument, InstrumentId
    from tradestack.engine import BacktestEngine
    from tradestack.execution import BarVenueConfig
    from tradestack.strategies.sma_cross import SmaCross

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
    return BacktestEngine(
        SmaCross(fast=FAST, slow=SLOW, qty=float(QTY)),
        [series],
        instruments=[inst],
        starting_cash=CASH,
        venue=BarVenueConfig(fill_at=fill),  # type: ignore[arg-type]
    )


def _work_ours(n: int, fill: str) -> dict[str, Any]:
    workload = _workload()
    t0 = time.perf_counter()
    bars = workload.make_minute_bars(n)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = _ours_engine(bars, fill).run()
    run_s = time.perf_counter() - t0
    trades = [
        (
            t.entry_ts_ns,
            t.exit_ts_ns,
            float(t.entry_price),
            float(t.exit_price),
            int(t.qty) if t.side == "long" else -int(t.qty),
        )
        for t in result.trades
    ]
    return {
        "n_bars": n,
        "gen_s": gen_s,
        "run_s": run_s,
        "n_trades": len(trades),
        "final_equity": result.final_equity,
        "digest": _digest(trades),
    }


def _peer_payload(res: Any, gen_s: float) -> dict[str, Any]:
    return {
        "n_bars": res.n_bars,
        "gen_s": gen_s,
        "run_s": res.run_seconds,
        "n_trades": res.n_trades,
        "final_equity": res.final_equity,
        "digest": _digest(res.trades),
    }


def _work_peer(engine: str, n: int, fill: str) -> dict[str, Any]:
    workload, peers = _workload(), _peers()
    runner = {
        "backtrader": peers.run_backtrader,
        "backtesting.py": peers.run_backtesting_py,
        "nautilus_trader": peers.run_nautilus,
    }[_family(engine)]
    style = {"style": "idiomatic"} if engine != _family(engine) else {}
    t0 = time.perf_counter()
    frame = workload.to_pandas(workload.make_minute_bars(n))
    gen_s = time.perf_counter() - t0
    res = runner(frame, fast=FAST, slow=SLOW, qty=QTY, cash=CASH, fill=fill, **style)
    return _peer_payload(res, gen_s)


def _work_backtesting_file(path: str) -> dict[str, Any]:
    """backtesting.py from reading the Parquet file to its final stats."""
    import pandas as pd

    peers = _peers()
    t0 = time.perf_counter()
    raw = pd.read_parquet(path)
    index = pd.DatetimeIndex(raw["timestamp"]).tz_convert("UTC").tz_localize(None)
    frame = pd.DataFrame(
        {k.capitalize(): raw[k].to_numpy() for k in ("open", "high", "low", "close", "volume")},
        index=pd.DatetimeIndex(index, name="Date"),
    )
    gen_s = time.perf_counter() - t0
    res = peers.run_backtesting_py(frame, fast=FAST, slow=SLOW, qty=QTY, cash=CASH)
    return _peer_payload(res, gen_s)


def _work_profile(n: int, fill: str, top: int) -> dict[str, Any]:
    import cProfile
    import io
    import pstats

    bars = _workload().make_minute_bars(n)
    engine = _ours_engine(bars, fill)
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    engine.run()
    profiler.disable()
    run_s = time.perf_counter() - t0
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return {"n_bars": n, "run_s": run_s, "profile": out.getvalue()}


def worker_main(args: argparse.Namespace) -> int:
    """Run one backtest in this process and print its result as one tagged JSON line."""
    kind = args.worker
    if kind == OURS:
        payload = _work_ours(args.bars, args.fill)
    elif kind in PEERS:
        payload = _work_peer(kind, args.bars, args.fill)
    elif kind == "backtesting-file":
        payload = _work_backtesting_file(args.file)
    elif kind == "profile":
        payload = _work_profile(args.bars, args.fill, args.top)
    else:
        raise SystemExit(f"unknown worker {kind!r}")
    sys.stdout.write(RESULT_TAG + json.dumps(payload) + "\n")
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------- driver side


@dataclass
class Measured:
    """One engine/size/fill measurement (best of ``--repeat`` subprocesses)."""

    engine: str
    fill: str
    n_bars: int
    run_s: float = math.nan
    wall_s: float = math.nan
    max_rss_mib: float = math.nan
    n_trades: int | None = None
    final_equity: float = math.nan
    digest: str = ""
    gen_s: float = math.nan
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def bars_per_s(self) -> float:
        return self.n_bars / self.run_s if self.run_s > 0 else math.nan


def spawn(cmd: list[str]) -> tuple[str, str, int, float, float]:
    """Run ``cmd``; returns (stdout, stderr, exit code, wall seconds, max RSS MiB).

    Wall time spans process creation to reaping; max RSS is the child's own peak from ``wait4``
    (output goes to temporary files, so the child never blocks on a full pipe).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return out.read(), err.read(), proc.returncode, wall, usage.ru_maxrss / 1024.0


def _parse_result(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_TAG):
            parsed: dict[str, Any] = json.loads(line[len(RESULT_TAG) :])
            return parsed
    return None


def _worker_cmd(*args: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--worker", *args]


def measure(engine: str, fill: str, n: int, repeat: int, cmd: list[str]) -> Measured:
    """Run ``cmd`` ``repeat`` times; keep the best run/wall time and the largest RSS."""
    m = Measured(engine, fill, n)
    for _ in range(repeat):
        stdout, stderr, rc, wall, rss = spawn(cmd)
        payload = _parse_result(stdout)
        if rc != 0 or payload is None:
            tail = (stderr.strip() or stdout.strip()).splitlines()[-5:]
            m.error = f"exit {rc}: " + " | ".join(tail)
            return m
        m.wall_s = min(m.wall_s, wall) if not math.isnan(m.wall_s) else wall
        m.max_rss_mib = max(m.max_rss_mib, rss) if not math.isnan(m.max_rss_mib) else rss
        run_s = float(payload["run_s"])
        m.run_s = min(m.run_s, run_s) if not math.isnan(m.run_s) else run_s
        m.gen_s = float(payload.get("gen_s", math.nan))
        m.n_trades = int(payload["n_trades"])
        m.final_equity = float(payload["final_equity"])
        m.digest = str(payload["digest"])
    return m


def agreement(ref: Measured, other: Measured) -> str:
    """``"ok"`` when ``other`` matches ``ref`` (count, equity to 1e-9 rel, trade list)."""
    if other.error or ref.error:
        return "no result"
    problems = []
    if other.n_trades != ref.n_trades:
        problems.append(f"trades {other.n_trades} vs {ref.n_trades}")
    if not math.isclose(other.final_equity, ref.final_equity, rel_tol=REL_TOL, abs_tol=0.0):
        problems.append(f"equity {other.final_equity!r} vs {ref.final_equity!r}")
    if other.digest != ref.digest:
        problems.append("trade list differs")
    return "; ".join(problems) or "ok"


def _fmt(value: float, spec: str) -> str:
    return (
        "-"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:{spec}}"
    )


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Plain-text table: first column left-aligned, the rest right-aligned."""
    widths = [max(len(str(r[k])) for r in [header, *rows]) for k in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            str(c).ljust(w) if k == 0 or k == len(cells) - 1 else str(c).rjust(w)
            for k, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    print(f"\n{title}")
    print(line(header))
    print("-" * len(line(header)))
    for row in rows:
        print(line(row))


def run_engines(sizes: list[int], skip: set[str], repeat: int) -> tuple[list[Measured], bool]:
    """The in-process table: every engine and size in its own subprocess."""
    results: list[Measured] = []
    ok = True
    for n in sizes:
        for engine, fill in MATRIX:
            if _family(engine) in skip:
                continue
            label = f"{engine} fill={fill} n={n:,}"
            print(f"  running {label} ...", file=sys.stderr, flush=True)
            m = measure(
                engine, fill, n, repeat, _worker_cmd(engine, "--bars", str(n), "--fill", fill)
            )
            if m.error:
                print(f"  {label} FAILED: {m.error}", file=sys.stderr, flush=True)
                ok = False
            results.append(m)

    rows = []
    for m in results:
        ref = next(
            (r for r in results if r.engine == OURS and r.fill == m.fill and r.n_bars == m.n_bars),
            None,
        )
        if m.engine == OURS:
            ratio, verdict = "-", "(reference)"
        else:
            ratio = _fmt(ref.bars_per_s / m.bars_per_s, ".1f") + "x" if ref else "-"
            verdict = agreement(ref, m) if ref else "no reference"
            ok &= verdict == "ok"
        rows.append(
            [
                m.engine,
                m.fill,
                f"{m.n_bars:,}",
                _fmt(m.run_s, ".3f"),
                _fmt(m.bars_per_s, ",.0f"),
                _fmt(m.wall_s, ".2f"),
                _fmt(m.max_rss_mib, ",.0f"),
                "-" if m.n_trades is None else str(m.n_trades),
                _fmt(m.final_equity, ".8f"),
                ratio,
                "FAILED" if m.error else verdict,
            ]
        )
    print_table(
        f"In-process throughput: SMA({FAST}/{SLOW}) cross, qty {QTY}, zero fees, "
        f"one subprocess per row, best of {repeat}",
        [
            "engine",
            "fill",
            "bars",
            "run s",
            "bars/s",
            "wall s",
            "max RSS MiB",
            "trades",
            "final equity",
            "ours/peer",
            "agrees with ours (same fill)",
        ],
        rows,
    )
    return results, ok


def write_cli_workload(folder: Path, n: int) -> tuple[Path, Path]:
    """The ``n``-bar workload as ``bars.parquet`` plus ``cfg.yaml`` for ``tradestack backtest``."""
    import polars as pl

    bars = _workload().make_minute_bars(n)
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
        f"params: {{fast: {FAST}, slow: {SLOW}, qty: {QTY}}}\n"
        "data:\n"
        f"  - path: {data.name}\n"
        "    instrument: SYN\n"
        "    timezone: UTC\n"
        '    tick_size: "0.00000001"\n'
        "    lot_size: 1\n"
        "venue: {fill_at: next_open}\n"
        f"starting_cash: {CASH}\n",
        encoding="utf-8",
    )
    return data, cfg


def _tradestack_exe() -> list[str]:
    exe = Path(sys.executable).with_name("tradestack")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tradestack.cli"]


def run_cli(n: int, repeat: int, inproc: list[Measured]) -> tuple[list[Measured], bool]:
    """Whole-process ``tradestack backtest`` vs backtesting.py, both from one Parquet file."""
    ok = True
    with tempfile.TemporaryDirectory(prefix="tradestack-bench-") as tmp:
        folder = Path(tmp)
        data, cfg = write_cli_workload(folder, n)
        runs: list[Measured] = []
        for label, args in (
            ("tradestack backtest --quiet", ["--quiet"]),
            ("tradestack backtest --quiet --out DIR", ["--quiet", "--out"]),
        ):
            print(f"  running {label} n={n:,} ...", file=sys.stderr, flush=True)
            m = Measured(label, "next_open", n)
            for k in range(repeat):
                cmd = [*_tradestack_exe(), "backtest", str(cfg), *args]
                if args[-1] == "--out":
                    cmd.append(str(folder / f"out{k}"))
                _, stderr, rc, wall, rss = spawn(cmd)
                if rc != 0:
                    m.error = f"exit {rc}: {stderr.strip().splitlines()[-1:]}"
                    break
                m.wall_s = wall if math.isnan(m.wall_s) else min(m.wall_s, wall)
                m.max_rss_mib = rss if math.isnan(m.max_rss_mib) else max(m.max_rss_mib, rss)
                if args[-1] == "--out":
                    metrics = json.loads((folder / f"out{k}" / "metrics.json").read_text())
                    m.n_trades = int(metrics["n_trades"])
                    m.final_equity = float(metrics["final_equity"])
            runs.append(m)
        print(f"  running backtesting.py from Parquet n={n:,} ...", file=sys.stderr, flush=True)
        runs.append(
            measure(
                "backtesting.py (read Parquet -> stats)",
                "next_open",
                n,
                repeat,
                _worker_cmd("backtesting-file", "--file", str(data)),
            )
        )

    ref = next(
        (r for r in inproc if r.engine == OURS and r.fill == "next_open" and r.n_bars == n), None
    )
    rows = []
    for m in runs:
        checks = []
        if m.error:
            checks.append("FAILED")
        elif m.n_trades is not None and ref is not None:
            if m.n_trades != ref.n_trades or not math.isclose(
                m.final_equity, ref.final_equity, rel_tol=REL_TOL, abs_tol=0.0
            ):
                checks.append(f"differs: {m.n_trades} trades, equity {m.final_equity!r}")
            else:
                checks.append("ok")
        ok &= not checks or checks == ["ok"]
        rows.append(
            [
                m.engine,
                f"{m.n_bars:,}",
                _fmt(m.wall_s, ".2f"),
                _fmt(m.max_rss_mib, ",.0f"),
                "-" if m.n_trades is None else str(m.n_trades),
                _fmt(m.final_equity, ".8f"),
                checks[0] if checks else "(no result file)",
            ]
        )
    print_table(
        f"Whole process from a Parquet file ({n:,} bars, fill next_open), best of {repeat}",
        ["command", "bars", "wall s", "max RSS MiB", "trades", "final equity", "agrees with ours"],
        rows,
    )
    return runs, ok


def print_goals(results: list[Measured], cli: list[Measured]) -> None:
    """The issue's performance goals, MET / MISSED (informational)."""
    print("\nGoals (informational; the exit status reflects agreement only)")
    for m in results:
        if m.engine == OURS and not m.error:
            met = m.bars_per_s >= GOAL_BARS_PER_S
            print(
                f"  {'MET   ' if met else 'MISSED'} ours fill={m.fill} n={m.n_bars:,}: "
                f"{m.bars_per_s:,.0f} bars/s (goal >= {GOAL_BARS_PER_S:,})"
            )
    for m in results:
        if m.engine == OURS or m.error:
            continue
        ref = next(
            (r for r in results if r.engine == OURS and r.fill == m.fill and r.n_bars == m.n_bars),
            None,
        )
        if ref is None or ref.error:
            continue
        ratio, goal = ref.bars_per_s / m.bars_per_s, GOAL_RATIO[_family(m.engine)]
        met = ratio >= goal if goal > 1 else ratio > goal
        print(
            f"  {'MET   ' if met else 'MISSED'} ours vs {m.engine} n={m.n_bars:,}: "
            f"{ratio:.1f}x (goal {'>=' if goal > 1 else '>'} {goal:g}x)"
        )
    quiet = next((m for m in cli if m.engine == "tradestack backtest --quiet"), None)
    peer = next((m for m in cli if m.engine.startswith("backtesting.py")), None)
    if quiet and peer and not (quiet.error or peer.error):
        met = quiet.wall_s < peer.wall_s
        print(
            f"  {'MET   ' if met else 'MISSED'} whole-process tradestack backtest "
            f"n={quiet.n_bars:,}: {quiet.wall_s:.2f} s vs backtesting.py {peer.wall_s:.2f} s "
            f"({peer.wall_s / quiet.wall_s:.2f}x)"
        )


def run_profile(n: int, fill: str, top: int) -> None:
    """cProfile our in-process run (in a subprocess) and print the top functions by own time."""
    print(f"  profiling ours fill={fill} n={n:,} ...", file=sys.stderr, flush=True)
    stdout, stderr, rc, _, _ = spawn(
        _worker_cmd("profile", "--bars", str(n), "--fill", fill, "--top", str(top))
    )
    payload = _parse_result(stdout)
    if rc != 0 or payload is None:
        print(f"\nprofile failed (exit {rc}): {stderr.strip()[-500:]}")
        return
    print(
        f"\ncProfile of ours, fill={fill}, {n:,} bars "
        f"(run under the profiler: {payload['run_s']:.2f} s), top {top} by tottime"
    )
    print(payload["profile"].rstrip())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="100000,1000000",
        help="comma-separated bar counts (default: %(default)s)",
    )
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated: backtrader, backtesting, nautilus, cli",
    )
    parser.add_argument("--repeat", type=int, default=1, help="subprocesses per row; best is kept")
    parser.add_argument(
        "--profile", action="store_true", help="also cProfile ours on the largest size"
    )
    parser.add_argument("--top", type=int, default=15, help="functions shown by --profile")
    # internal: run one engine in this process
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--bars", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--fill", default="next_open", help=argparse.SUPPRESS)
    parser.add_argument("--file", default="", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the exit status (1 when engines disagree or a run fails)."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args)
    try:
        sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    if not sizes or min(sizes) <= SLOW:
        parser.error(f"--sizes must be > {SLOW}")
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    skip = set()
    for name in filter(None, (s.strip().lower() for s in args.skip.split(","))):
        if name not in SKIP_ALIASES:
            parser.error(f"--skip: unknown engine {name!r}; use {', '.join(sorted(SKIP_ALIASES))}")
        skip.add(SKIP_ALIASES[name])

    t0 = time.perf_counter()
    results, ok = run_engines(sizes, skip, args.repeat)
    cli: list[Measured] = []
    if "cli" not in skip:
        cli, cli_ok = run_cli(max(sizes), args.repeat, results)
        ok &= cli_ok
    print_goals(results, cli)
    if args.profile:
        run_profile(max(sizes), "next_open", args.top)
    print(f"\nbenchmark wall time {time.perf_counter() - t0:.0f} s")
    print("ALL ENGINES AGREE" if ok else "ENGINES DISAGREE (or a run failed)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
