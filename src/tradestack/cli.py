"""The ``tradestack`` command.

Exit codes: 0 success; 1 unexpected internal error; 2 bad usage, config, data, strategy or
parameter (the message says which file, row and field); 3 the strategy raised during the run (the
message says when and on which bar, followed by the traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tradestack.engine.backtest import BacktestResult

EXIT_OK, EXIT_ERROR, EXIT_INPUT, EXIT_STRATEGY, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
_PROGRESS_MIN_BARS = 200_000


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_INPUT
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradestack",
        description="Algorithmic trading: backtest, research, paper and live trading.",
        epilog="Exit codes: 0 ok, 1 internal error, 2 bad input (config, data, strategy, "
        "parameter), 3 the strategy raised during the run, 130 interrupted.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    backtest = sub.add_parser("backtest", help="run a backtest from a YAML config")
    backtest.add_argument("config", type=Path, help="YAML file: strategy, params, data, venue")
    backtest.add_argument(
        "--out",
        type=Path,
        help="write metrics.json, trades.csv, equity.csv, orders.csv, report.html here",
    )
    backtest.add_argument("--no-report", action="store_true", help="with --out: skip report.html")
    backtest.add_argument(
        "--quiet", action="store_true", help="no progress bar and no metrics table"
    )
    backtest.set_defaults(func=_cmd_backtest)
    return parser


def _cmd_backtest(args: argparse.Namespace) -> int:
    from tradestack.data.errors import DataValidationError
    from tradestack.engine.backtest import BacktestError
    from tradestack.engine.config import ConfigError, load_config
    from tradestack.engine.loading import build_engine
    from tradestack.engine.strategy import ParameterError

    try:
        config, base = load_config(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        engine = build_engine(config, base)
    except DataValidationError as exc:
        return _fail(str(exc))
    except ParameterError as exc:
        return _fail(f"{args.config}: params: {exc}")
    except (ConfigError, ValueError) as exc:
        return _fail(f"{args.config}: {exc}")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        return _fail(f"--out {args.out}: exists and is not a folder")
    title = config.title or (
        f"{engine.strategy.name} — {', '.join(str(f.instrument_id) for f in engine.feeds)}"
    )
    n_bars = sum(len(f) for f in engine.feeds)
    try:
        if args.quiet or n_bars < _PROGRESS_MIN_BARS or not sys.stderr.isatty():
            result = engine.run()
        else:
            result = _run_with_progress(engine, n_bars)
    except BacktestError as exc:
        import traceback

        cause = exc.__cause__ or exc
        traceback.print_exception(type(cause), cause, cause.__traceback__, file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_STRATEGY
    if not args.quiet:
        _print_summary(result, title)
    if args.out is not None:
        from tradestack.engine.outputs import write_outputs

        written = write_outputs(result, args.out, title=title, report=not args.no_report)
        for name, path in written.items():
            print(f"wrote {path}" if name != "report.html" else f"report: {path.resolve()}")
    return EXIT_OK


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_INPUT


def _run_with_progress(engine: object, n_bars: int) -> BacktestResult:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from tradestack.engine.backtest import BacktestEngine

    assert isinstance(engine, BacktestEngine)
    columns = (TextColumn("backtest"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("bars", total=n_bars)
        engine.progress = lambda done, _total: progress.update(task, completed=done)
        return engine.run()


def _print_summary(result: BacktestResult, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    metrics = result.metrics().to_dict()
    table = Table(title=title, show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in (
        "final_equity",
        "total_return",
        "cagr",
        "volatility",
        "sharpe",
        "sortino",
        "calmar",
        "max_drawdown",
        "max_drawdown_duration_days",
        "n_trades",
        "win_rate",
        "profit_factor",
        "exposure_fraction",
        "turnover",
        "total_fees",
    ):
        value = metrics.get(key)
        table.add_row(
            key,
            "n/a" if value is None else f"{value:,.6g}" if isinstance(value, float) else str(value),
        )
    Console().print(table)


if __name__ == "__main__":
    sys.exit(main())
