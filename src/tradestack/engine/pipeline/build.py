"""Wiring a ``pipeline:`` config into an engine: the research step (sample the data, fit on the
training window) first, then the batch or replay strategy on the bar or L2 engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tradestack.core.ids import InstrumentId
from tradestack.engine.backtest import BacktestEngine, ProgressFn
from tradestack.engine.config import BacktestConfig, ConfigError
from tradestack.engine.l2 import L2BacktestEngine
from tradestack.engine.loading import (
    _bar_engine,
    _l2_engine,
    _l2_venue_config,
    _load_bars,
    _load_book,
)
from tradestack.engine.pipeline.config import PipelineConfig
from tradestack.engine.pipeline.plan import (
    PipelineError,
    PipelinePlan,
    Signals,
    Steps,
    build_plan,
)
from tradestack.engine.pipeline.sampling import ReferenceBook, sample_book
from tradestack.engine.pipeline.strategy import BatchPipeline, PipelineStrategy, ReplayPipeline
from tradestack.features.featureset import FeatureSpecError
from tradestack.features.registry import BAR_COLUMNS, BOOK_COLUMNS


def build_pipeline_engine(
    config: BacktestConfig,
    pipeline: PipelineConfig,
    base: Path,
    progress: ProgressFn | None,
    *,
    live: bool = False,
) -> BacktestEngine | L2BacktestEngine:
    """Research first (sample the data, fit on the training window), then the engine.

    ``live``: the template of a paper or live session. The models are fitted on the recording
    as for a backtest; the strategy computes its signal one event at a time (``mode`` is
    ignored: a batch signal needs the whole history) and trades for as long as data arrives.
    """
    strategy: PipelineStrategy
    if live and config.reference_book is not None:
        raise ConfigError(
            "reference_book: paper and live sessions stream one market; a pipeline with a "
            "reference book runs as a backtest only"
        )
    if config.book is not None:
        feed, instrument, seed = _load_book(config.book, base)
        venue = _l2_venue_config(config)
        assert pipeline.interval_ms is not None
        interval_ns = round(pipeline.interval_ms * 1_000_000)
        if interval_ns <= 0:
            raise ConfigError(f"pipeline.interval_ms: {pipeline.interval_ms} rounds to 0 ns")
        sampled = sample_book(feed, instrument, venue, interval_ns, pipeline.depth).two_sided()
        columns: tuple[str, ...] = BOOK_COLUMNS
        reference = None
        if config.reference_book is not None:
            ref_feed, ref_instrument, _ = _load_book(config.reference_book, base, "reference_book")
            sampled.columns["ref_mid"] = ReferenceBook(ref_feed, ref_instrument, venue).mids(
                sampled.ts_ns
            )
            reference = ReferenceBook(ref_feed, ref_instrument, venue)
            columns = (*BOOK_COLUMNS, "ref_mid")
        steps = {instrument.id: Steps(sampled.ts_ns, sampled.columns)}
        plan = _plan(pipeline, steps, columns, base)
        if live:
            strategy = ReplayPipeline(plan, interval_ns=interval_ns, depth=pipeline.depth)
        elif pipeline.mode == "batch":
            signals = {instrument.id: _signals(plan, steps[instrument.id])}
            strategy = BatchPipeline(
                plan, signals, interval_ns=interval_ns, data_end_ns=sampled.end_ns
            )
        else:
            strategy = ReplayPipeline(
                plan,
                interval_ns=interval_ns,
                data_end_ns=sampled.end_ns,
                depth=pipeline.depth,
                reference=reference,
            )
        return _l2_engine(config, strategy, feed, instrument, seed)
    feeds, instruments = _load_bars(config, base)
    steps = {
        f.instrument_id: Steps(f.ts_ns, {c: np.asarray(getattr(f, c)) for c in BAR_COLUMNS})
        for f in feeds
    }
    plan = _plan(pipeline, steps, BAR_COLUMNS, base)
    if pipeline.mode == "batch" and not live:
        strategy = BatchPipeline(plan, {i: _signals(plan, s) for i, s in steps.items()})
    else:
        strategy = ReplayPipeline(plan)
    return _bar_engine(config, strategy, feeds, instruments, progress)


def _plan(
    pipeline: PipelineConfig,
    steps: dict[InstrumentId, Steps],
    columns: tuple[str, ...],
    base: Path,
) -> PipelinePlan:
    try:
        return build_plan(pipeline, steps, columns, base)
    except PipelineError as exc:
        raise ConfigError(str(exc)) from None


def _signals(plan: PipelinePlan, steps: Steps) -> Signals:
    try:
        return plan.signals(steps)
    except FeatureSpecError as exc:
        raise ConfigError(f"pipeline.features: {exc}") from None
