"""Run the SMA-crossover workload in all peers and check that they agree exactly.

Cases:
  (a) the real daily GOOG file (fast=10, slow=30, qty=10, cash=100_000);
  (b) ``make_minute_bars(20_000)`` with the same parameters.

For each case: backtesting.py and backtrader with ``fill="next_open"``, and all three
peers (incl. nautilus_trader) with ``fill="close"``.  Within a fill convention every peer
is compared to the first one: trades (times, prices, sizes) must be identical and final
equity equal to 1e-9 relative.  Exit status 1 on any disagreement.

Usage::

    .venv/bin/python benchmarks/check_peers.py [--bars 20000] [--csv PATH]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

try:
    from benchmarks.peers import PeerResult, run_backtesting_py, run_backtrader, run_nautilus
    from benchmarks.workload import load_csv, make_minute_bars, to_pandas
except ImportError:  # script mode: benchmarks/ is sys.path[0]
    from peers import (  # type: ignore
        PeerResult,
        run_backtesting_py,
        run_backtrader,
        run_nautilus,
    )
    from workload import load_csv, make_minute_bars, to_pandas  # type: ignore

GOOG_CSV = Path("/work/shared/data/bars/equities/backtesting_GOOG.csv")
PARAMS: dict[str, int] = {"fast": 10, "slow": 30, "qty": 10, "cash": 100_000}
REL_TOL = 1e-9

Runner = Callable[..., PeerResult]
RUNS: list[tuple[str, Runner]] = [
    ("next_open", run_backtesting_py),
    ("next_open", run_backtrader),
    ("close", run_backtesting_py),
    ("close", run_backtrader),
    ("close", run_nautilus),
]


def compare(ref: PeerResult, other: PeerResult) -> str:
    """Return ``"ok"`` if ``other`` matches ``ref`` exactly, else a short reason."""
    if other.trades != ref.trades:
        n = min(len(ref.trades), len(other.trades))
        first = next((k for k in range(n) if ref.trades[k] != other.trades[k]), n)
        return f"trades differ at #{first} ({len(ref.trades)} vs {len(other.trades)})"
    if other.final_position != ref.final_position:
        return f"final position {ref.final_position} vs {other.final_position}"
    if not math.isclose(other.final_equity, ref.final_equity, rel_tol=REL_TOL, abs_tol=0.0):
        return f"equity {ref.final_equity!r} vs {other.final_equity!r}"
    return "ok"


def check_fill_prices(res: PeerResult, df: pd.DataFrame) -> str:
    """Check every trade price is the bar price its fill convention promises.

    ``close``: entry/exit price == Close of the entry/exit bar (the signal bar);
    ``next_open``: == Open of the entry/exit bar (the bar after the signal).
    """
    col = "Close" if res.fill == "close" else "Open"
    price_at = dict(zip(pd.DatetimeIndex(df.index).asi8.tolist(), df[col].tolist(), strict=True))
    for k, (t_in, t_out, p_in, p_out, _) in enumerate(res.trades):
        if price_at.get(t_in) != p_in or price_at.get(t_out) != p_out:
            return f"; trade #{k} not filled at bar {col}"
    return ""


def run_case(label: str, df: pd.DataFrame) -> bool:
    """Run every peer/fill combination on ``df``, print a table, return overall agreement."""
    print(f"\n== {label}: {len(df)} bars, {df.index[0]} .. {df.index[-1]}, {PARAMS}")
    header = (
        f"{'peer':<16} {'fill':<10} {'n_trades':>8} {'final_equity':>22} {'pos':>4} "
        f"{'run_s':>8} {'bars/s':>10}  agrees"
    )
    print(header)
    print("-" * len(header))
    refs: dict[str, PeerResult] = {}
    all_ok = True
    for fill, runner in RUNS:
        res = runner(df, fill=fill, **PARAMS)
        ref = refs.setdefault(fill, res)
        verdict = "(reference)" if res is ref else f"{compare(ref, res)} vs {ref.name}"
        all_ok &= res is ref or verdict.startswith("ok")
        bad_px = check_fill_prices(res, df)
        verdict += bad_px
        all_ok &= not bad_px
        if "equity_from_fills" in res.extra and not math.isclose(
            res.extra["equity_from_fills"], res.final_equity, rel_tol=REL_TOL
        ):
            verdict += (
                f"; own equity {res.final_equity!r} != fills {res.extra['equity_from_fills']!r}"
            )
            all_ok = False
        print(
            f"{res.name:<16} {fill:<10} {res.n_trades:>8} {res.final_equity:>22.10f} "
            f"{res.final_position:>4} {res.run_seconds:>8.3f} {res.bars_per_second:>10,.0f}  "
            f"{verdict}"
        )
    return all_ok


def main(argv: list[str] | None = None) -> int:
    """CLI entry point; returns the process exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=20_000, help="synthetic minute bars")
    parser.add_argument("--csv", type=Path, default=GOOG_CSV, help="daily OHLCV CSV")
    args = parser.parse_args(argv)

    ok = run_case(f"daily {args.csv.name}", load_csv(args.csv))
    ok &= run_case(f"make_minute_bars({args.bars})", to_pandas(make_minute_bars(args.bars)))
    print("\nALL PEERS AGREE" if ok else "\nPEERS DISAGREE")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
