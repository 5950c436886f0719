"""The ``tradestack paper`` and ``tradestack live`` commands (the parser lives in ``cli``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tradestack.cli import EXIT_OK, _fail, _print_summary, _write_outputs


def cmd_paper(args: argparse.Namespace) -> int:
    """``tradestack paper CONFIG``: see :mod:`tradestack.engine.live.session`."""
    import asyncio
    import signal
    import tempfile

    from tradestack.data.errors import DataValidationError
    from tradestack.engine.config import ConfigError, load_config
    from tradestack.engine.live.session import PaperSessionError, paper_session
    from tradestack.engine.strategy import ParameterError

    try:
        config, base = load_config(args.config)
    except ConfigError as exc:
        return _fail(str(exc))
    if config.paper is None:
        return _fail(f"{args.config}: paper trading needs a paper section")
    paper = config.paper

    async def run(workdir: Path) -> tuple[object, object, object]:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        if paper.replay is None:
            return await paper_session(config, base, stop=stop)
        from tradestack.data.bars import resolve_data_path
        from tradestack.testing.fake_venue import FakeVenueServer
        from tradestack.testing.venues.binance import BinanceFakeVenue, with_rest_snapshots
        from tradestack.testing.venues.binance_trading import BinanceTradingDesk

        recording = resolve_data_path(paper.replay, base)
        if recording.name.endswith((".jsonl", ".jsonl.gz")):
            recording = with_rest_snapshots(recording, workdir / "replay.jsonl.gz")
        # the desk is the exchange's account side: idle here, it serves the market list
        desk = BinanceTradingDesk(api_key="replay", secret="replay")
        venue = BinanceFakeVenue(
            [recording], futures=paper.venue == "binanceusdm", speed=paper.speed, desk=desk
        )
        async with FakeVenueServer(venue) as server:
            if not args.quiet:
                print(f"replaying {paper.replay} on {server.base_url} at {paper.speed:g}x")
            return await paper_session(config, base, base_url=server.base_url, stop=stop)

    try:
        with tempfile.TemporaryDirectory() as tmp:
            result, stats, state = asyncio.run(run(Path(tmp)))
    except (ConfigError, DataValidationError, PaperSessionError, ValueError, OSError) as exc:
        notes = "".join("\n" + note for note in getattr(exc, "__notes__", ()))
        return _fail(f"{args.config}: {exc}{notes}")
    except ParameterError as exc:
        return _fail(f"{args.config}: params: {exc}")
    from tradestack.engine.l2 import L2BacktestResult
    from tradestack.engine.live.session import SessionStats

    assert isinstance(result, L2BacktestResult)
    assert isinstance(stats, SessionStats)
    title = config.title or f"{result.strategy.name} — paper {paper.symbol}"
    if not args.quiet:
        print(
            f"paper session ended ({stats.stopped_by}): {stats.events:,} feed events, "
            f"{len(result.orders)} orders, {len(result.fills)} fills; state: {state}"
        )
        if stats.source:
            print(stats.source)
        if stats.late_rows:
            print(
                f"{stats.late_rows:,} rows arrived after later-stamped rows had been replayed "
                "and were restamped; a larger paper.hold_ms waits for them"
            )
        _print_summary(result, title)
    _write_outputs(result, args, title)
    return EXIT_OK


def cmd_live(args: argparse.Namespace) -> int:
    """``tradestack live CONFIG``: see :mod:`tradestack.engine.live.live`."""
    import asyncio
    import signal

    from tradestack.data.errors import DataValidationError
    from tradestack.engine.config import ConfigError, load_config
    from tradestack.engine.live.live import LiveStartRefused, live_session
    from tradestack.execution.oms.reconcile import ReconciliationError

    try:
        config, base = load_config(args.config)
    except ConfigError as exc:
        return _fail(str(exc))

    async def run() -> object:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await live_session(config, base, stop=stop)

    try:
        summary = asyncio.run(run())
    except ReconciliationError as exc:
        return _fail(f"{args.config}: the venue and the state database disagree:\n{exc}")
    except (LiveStartRefused, ConfigError, DataValidationError, ValueError, OSError) as exc:
        return _fail(f"{args.config}: {exc}")
    from tradestack.engine.live.live import LiveSummary

    assert isinstance(summary, LiveSummary)
    for line in summary.dry_log:
        print(line)
    for report in (summary.start, summary.end):
        if report is not None:
            print(report.render())
    mode = "dry run" if summary.dry_run else "live"
    print(
        f"{mode} session ended ({summary.stopped_by}): {summary.events:,} feed events, "
        f"{summary.orders} orders, {summary.fills} fills"
    )
    return EXIT_OK
