"""The ``tradestack`` command.

Exit codes: 0 success; 1 unexpected internal error; 2 bad usage, config, data, strategy or
parameter (the message says which file, row and field); 3 the strategy raised during the run (the
message says when and on which bar, followed by the traceback); 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tradestack.data.sources.session import Progress
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
    backtest.add_argument(
        "--engine",
        choices=["event", "vectorized"],
        default="event",
        help="vectorized: the compiled runner for strategies with target weights (same trades)",
    )
    backtest.set_defaults(func=_cmd_backtest)

    record = sub.add_parser("record", help="record live market data: raw frames + catalog")
    record.add_argument("--venue", required=True, help="ccxt id: binance, binanceusdm, ...")
    record.add_argument("--symbols", required=True, help="comma-separated, e.g. BTC/USDT,ETH/USDT")
    record.add_argument("--kinds", default="book,trades", help="book,trades,quotes,funding")
    record.add_argument("--out", type=Path, default=Path("data"), help="raw/ and catalog/ go here")
    record.add_argument("--duration", type=float, help="seconds to record (default: until Ctrl-C)")
    record.add_argument("--base-url", help="connect here instead of the exchange (a fake venue)")
    record.add_argument(
        "--publish",
        nargs="?",
        const="",
        metavar="REDIS_URL",
        help="also publish every event to Redis Streams md:<venue>:<symbol> (default URL: "
        "$REDIS_URL, else redis://127.0.0.1:6379/0)",
    )
    record.add_argument(
        "--keyframe-every",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="with --publish: a keyframe of each book this often (late consumers start from it)",
    )
    record.set_defaults(func=_cmd_record)

    replay = sub.add_parser("replay", help="replay a raw recording through the live code path")
    replay.add_argument("recording", type=Path, help="a .jsonl.gz written by `tradestack record`")
    replay.add_argument("--catalog", type=Path, help="also write normalized rows here")
    replay.add_argument(
        "--require-clean",
        action="store_true",
        help="with --catalog: fail (exit 2) if the validation gates quarantine any row",
    )
    replay.set_defaults(func=_cmd_replay)

    fake = sub.add_parser("fake-venue", help="serve a recorded session on 127.0.0.1")
    fake.add_argument(
        "--venue", required=True, choices=["binance", "binanceusdm", "coinbase", "kraken", "kucoin"]
    )
    fake.add_argument("--recording", type=Path, action="append", required=True)
    fake.add_argument(
        "--metadata", type=Path, help="recorded market list (exchangeInfo, AssetPairs, symbols)"
    )
    fake.add_argument("--speed", type=float, help="x recorded pace (default: as fast as read)")
    fake.add_argument("--port", type=int, default=0)
    fake.set_defaults(func=_cmd_fake_venue)

    paper = sub.add_parser("paper", help="paper-trade a book config on the live (or replayed) feed")
    paper.add_argument("config", type=Path)
    paper.add_argument("--out", type=Path, help="folder for the report and tables")
    paper.add_argument("--no-report", action="store_true")
    paper.add_argument("--quiet", action="store_true")
    paper.set_defaults(func=_cmd_paper)

    live = sub.add_parser(
        "live", help="trade live (or dry): a book config on Binance, a bar config on Alpaca"
    )
    live.add_argument("config", type=Path)
    live.set_defaults(func=_cmd_live)

    kill = sub.add_parser("kill-switch", help="show or set the trading kill switch")
    kill.add_argument("action", choices=["status", "halt", "reduce", "resume"])
    kill.add_argument(
        "--state",
        type=Path,
        required=True,
        help="kill-switch state file (the risk config's kill_switch_state_path)",
    )
    kill.add_argument("--reason", help="why; recorded in the state file")
    kill.set_defaults(func=_cmd_kill_switch)

    sweep = sub.add_parser("sweep", help="run many variants of a backtest config")
    sweep.add_argument("config", type=Path, help="the backtest YAML the variants start from")
    sweep.add_argument(
        "--grid",
        nargs="+",
        required=True,
        metavar="KEY=SPEC",
        help="key=start:stop:step (stop included) or key=a,b,c; a bare key is a strategy "
        "parameter, a dotted key (pipeline.horizon) any config field",
    )
    sweep.add_argument(
        "--engine",
        choices=["event", "vectorized"],
        default="event",
        help="vectorized: the compiled runner (strategies with target weights; same trades)",
    )
    sweep.add_argument(
        "--search",
        choices=["grid", "random", "tpe"],
        default="grid",
        help="grid: every combination; random / tpe: --trials variants chosen by Optuna",
    )
    sweep.add_argument("--trials", type=int, help="variants to run with --search random/tpe")
    sweep.add_argument("--seed", type=int, help="seed of the random / tpe search")
    sweep.add_argument("--workers", type=int, help="local processes (default: one per core)")
    sweep.add_argument("--ray", metavar="ADDRESS", help="run on a Ray cluster: 'auto' or host:port")
    sweep.add_argument("--sort", default="sharpe", help="metric to rank by (default sharpe)")
    sweep.add_argument("--top", type=int, default=20, help="rows in the console table")
    sweep.add_argument("--out", type=Path, help="write sweep.parquet, sweep.csv, sweep.html here")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar and no table")
    sweep.set_defaults(func=_cmd_sweep)

    wf = sub.add_parser("walkforward", help="walk-forward optimisation over a parameter grid")
    wf.add_argument("config", type=Path, help="the backtest YAML (bar data and a strategy)")
    wf.add_argument(
        "--grid",
        nargs="+",
        required=True,
        metavar="KEY=SPEC",
        help="key=start:stop:step (stop included) or key=a,b,c; chosen on each train window",
    )
    wf.add_argument("--train", required=True, help="train window: a duration (365D) or rows")
    wf.add_argument("--test", required=True, help="test window: a duration (90D) or rows")
    wf.add_argument("--embargo", default="30D", help="gap between train and test (default 30D)")
    wf.add_argument(
        "--anchored", action="store_true", help="train windows all start at the first bar"
    )
    wf.add_argument("--sort", default="sharpe", help="train metric to choose by (default sharpe)")
    wf.add_argument("--engine", choices=["event", "vectorized"], default="event")
    wf.add_argument("--out", type=Path, help="write walkforward.csv, oos_equity.csv, .html here")
    wf.add_argument(
        "--no-lookahead-check",
        action="store_true",
        help="skip the check that decisions do not change when later bars are removed",
    )
    wf.add_argument("--quiet", action="store_true", help="no progress and no table")
    wf.set_defaults(func=_cmd_walkforward)
    return parser


def _cmd_sweep(args: argparse.Namespace) -> int:
    from tradestack.research.sweep_command import sweep_command

    return sweep_command(
        args.config,
        args.grid,
        out=args.out,
        workers=args.workers,
        ray=args.ray,
        sort=args.sort,
        top=args.top,
        quiet=args.quiet,
        vectorized=args.engine == "vectorized",
        method=args.search,
        trials=args.trials,
        seed=args.seed,
    )


def _cmd_walkforward(args: argparse.Namespace) -> int:
    from tradestack.research.walkforward_command import walkforward_command

    return walkforward_command(
        args.config,
        args.grid,
        train=_rows_or_duration(args.train),
        test=_rows_or_duration(args.test),
        embargo=_rows_or_duration(args.embargo),
        anchored=args.anchored,
        sort=args.sort,
        vectorized=args.engine == "vectorized",
        out=args.out,
        lookahead_check=not args.no_lookahead_check,
        quiet=args.quiet,
    )


def _rows_or_duration(text: str) -> int | str:
    return int(text) if text.strip().isdigit() else text


def _progress_printer() -> Callable[[Progress], None]:
    tty = sys.stderr.isatty()
    last = [0.0]

    def show(progress: Progress) -> None:
        now = time.monotonic()
        if now - last[0] < (0.25 if tty else 5.0):
            return
        last[0] = now
        print(("\r" if tty else "") + progress.line(), end="" if tty else "\n", file=sys.stderr)

    return show


def _cmd_record(args: argparse.Namespace) -> int:
    import asyncio
    from datetime import UTC, datetime

    from tradestack.data.sources.session import ADAPTERS, record

    if args.venue not in ADAPTERS:
        return _fail(f"unknown venue {args.venue!r}; supported: {', '.join(sorted(ADAPTERS))}")
    symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    raw = args.out / "raw" / f"{args.venue}-{stamp}.jsonl.gz"

    async def run() -> tuple[Any, dict[str, int]]:
        kwargs = {
            "raw_path": raw,
            "catalog_root": args.out / "catalog",
            "duration_s": args.duration,
            "base_url": args.base_url,
            "progress": _progress_printer(),
        }
        if args.publish is None:
            return await record(args.venue, symbols, kinds, **kwargs), {}
        from tradestack.bus import connect
        from tradestack.bus.market_data import MarketDataPublisher

        client = connect(args.publish or None)
        try:
            await client.ping()
            publisher = MarketDataPublisher(client, keyframe_every_s=args.keyframe_every)
            stop = asyncio.Event()
            flushing = asyncio.get_running_loop().create_task(publisher.run(stop))
            try:
                state = await record(args.venue, symbols, kinds, also=publisher, **kwargs)
            finally:
                stop.set()
                await flushing
            return state, publisher.published
        finally:
            await client.aclose()

    try:
        state, published = asyncio.run(run())
    except ValueError as exc:
        return _fail(str(exc))
    except (ConnectionError, OSError) as exc:
        return _fail(f"--publish: cannot reach Redis: {exc}")
    print(f"\nrecorded {state.line()}\nraw: {raw}\ncatalog: {args.out / 'catalog'}")
    for stream, count in published.items():
        print(f"published {count:,} entries to {stream}")
    return EXIT_OK


def _cmd_replay(args: argparse.Namespace) -> int:
    from tradestack.data.catalog import Catalog
    from tradestack.data.recorder import CatalogSink
    from tradestack.data.sources.session import replay
    from tradestack.data.validation import QuarantineError, ValidationConfig

    if not args.recording.is_file():
        return _fail(f"recording not found: {args.recording}")
    sink = None
    if args.catalog:
        sink = CatalogSink(
            Catalog(args.catalog), validate=ValidationConfig(), require_clean=args.require_clean
        )
    try:
        state, feed = replay(
            args.recording, sink=sink or (lambda event: None), progress=_progress_printer()
        )
        if sink is not None:
            sink.flush()
    except QuarantineError as exc:
        return _fail(f"{exc} (those rows were not written)")
    except ValueError as exc:
        return _fail(str(exc))
    print(f"\nreplayed {state.line()}")
    if sink is not None:
        bad = sink.quarantined()
        rows = sum(report.rows for report in sink.reports)
        detail = ", ".join(f"{n} {reason}" for reason, n in sorted(bad.items())) or "none"
        print(f"catalog {args.catalog}: {rows:,} rows validated, quarantined: {detail}")
    for symbol, book in feed.adapter.books.items():
        stats = book.stats
        print(
            f"{symbol}: {book.state}, {stats.applied:,} updates, {stats.gaps} gaps, "
            f"{stats.resyncs} resyncs, {stats.malformed} malformed, {stats.crossed} crossed"
        )
    return EXIT_OK


def _cmd_fake_venue(args: argparse.Namespace) -> int:
    import asyncio

    from tradestack.testing.fake_venue import FakeVenueServer
    from tradestack.testing.venues import make_fake_venue

    missing = [str(p) for p in [*args.recording, args.metadata] if p and not p.is_file()]
    if missing:
        return _fail(f"file not found: {', '.join(missing)}")

    async def serve() -> None:
        venue = make_fake_venue(
            args.venue, args.recording, metadata=args.metadata, speed=args.speed
        )
        async with FakeVenueServer(venue, port=args.port) as server:
            print(f"fake {args.venue} on {server.base_url} (Ctrl-C to stop)", flush=True)
            await asyncio.Event().wait()

    try:
        asyncio.run(serve())
    except ValueError as exc:
        return _fail(str(exc))
    return EXIT_OK


def _cmd_kill_switch(args: argparse.Namespace) -> int:
    import logging

    risk_log = logging.getLogger("tradestack.risk")
    quiet, risk_log.disabled = risk_log.disabled, True  # the command prints the change itself
    try:
        return _kill_switch(args)
    finally:
        risk_log.disabled = quiet


def _kill_switch(args: argparse.Namespace) -> int:
    from tradestack.risk import KillSwitch, KillSwitchStateError

    path: Path = args.state
    if path.is_dir():
        return _fail(f"--state {path}: is a folder, not a state file")
    try:
        switch = KillSwitch(path)
    except KillSwitchStateError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"--state {path}: {exc.strerror or exc}")
    if args.action == "status":
        if not path.exists():
            print(f"kill switch: active (no state file at {path})")
            return EXIT_OK
        record = switch.snapshot()
        since = f" since {record['ts']}" if record["ts"] else ""
        by = f" by {record['changed_by']}" if record["changed_by"] else ""
        print(f"kill switch: {switch.state.value}{since}{by}: {switch.reason or '-'}")
        return EXIT_OK
    before = switch.state
    reason = args.reason or f"{args.action} via tradestack kill-switch"
    change = {"halt": switch.halt, "reduce": switch.reduce, "resume": switch.resume}[args.action]
    try:
        changed = change(reason, changed_by="cli")
    except OSError as exc:
        return _fail(f"--state {path}: cannot write: {exc.strerror or exc}")
    if changed:
        print(f"kill switch: {before.value} -> {switch.state.value}: {reason} ({path})")
    else:
        print(f"kill switch: already {before.value} ({path}): {switch.reason or '-'}")
    return EXIT_OK


def _cmd_paper(args: argparse.Namespace) -> int:
    from tradestack.cli_trading import cmd_paper

    return cmd_paper(args)


def _cmd_live(args: argparse.Namespace) -> int:
    from tradestack.cli_trading import cmd_live

    return cmd_live(args)


def _cmd_backtest(args: argparse.Namespace) -> int:
    from tradestack.data.errors import DataValidationError
    from tradestack.engine.backtest import BacktestEngine, BacktestError
    from tradestack.engine.config import ConfigError, load_config
    from tradestack.engine.loading import build_engine
    from tradestack.engine.strategy import ParameterError
    from tradestack.engine.vectorized import NotVectorizable, VectorizedEngine

    try:
        config, base = load_config(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    try:
        engine = build_engine(config, base, vectorized=args.engine == "vectorized")
    except DataValidationError as exc:
        return _fail(str(exc))
    except ParameterError as exc:
        return _fail(f"{args.config}: params: {exc}")
    except (ConfigError, ValueError) as exc:
        return _fail(f"{args.config}: {exc}")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        return _fail(f"--out {args.out}: exists and is not a folder")
    if not isinstance(engine, BacktestEngine | VectorizedEngine):  # an order-book replay
        instruments = str(engine.instrument.id)
        n_bars = 0
    elif isinstance(engine, VectorizedEngine):
        instruments = ", ".join(str(f.instrument_id) for f in engine.feeds)
        n_bars = 0  # no progress bar: the compiled run is one call
    else:
        instruments = ", ".join(str(f.instrument_id) for f in engine.feeds)
        n_bars = sum(len(f) for f in engine.feeds)
    title = config.title or f"{engine.strategy.name} — {instruments}"
    try:
        if args.quiet or n_bars < _PROGRESS_MIN_BARS or not sys.stderr.isatty():
            result = engine.run()
        else:
            result = _run_with_progress(engine, n_bars)
    except NotVectorizable as exc:
        return _fail(f"{args.config}: vectorized runner: {exc}")
    except BacktestError as exc:
        import traceback

        cause = exc.__cause__ or exc
        traceback.print_exception(type(cause), cause, cause.__traceback__, file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_STRATEGY
    if not args.quiet:
        _print_summary(result, title)
    _write_outputs(result, args, title)
    return EXIT_OK


def _write_outputs(result: BacktestResult, args: argparse.Namespace, title: str) -> None:
    """The result's tables and report into ``--out`` (when given), each path printed."""
    if args.out is None:
        return
    from tradestack.engine.outputs import write_outputs

    written = write_outputs(result, args.out, title=title, report=not args.no_report)
    for name, path in written.items():
        print(f"wrote {path}" if name != "report.html" else f"report: {path.resolve()}")


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
