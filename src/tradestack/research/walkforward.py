"""Walk-forward optimisation: pick parameters on each training window, trade them out of sample.

The bars of a config are loaded once; every run works on time slices of them. For each fold of
:func:`tradestack.research.splits.walk_forward` (over the union of all instruments' bar
timestamps):

1. every grid variant runs on the training window's bars only; the best by ``sort`` (ties: the
   earlier variant in grid order) is the fold's choice;
2. the choice runs on the bars from ``test start - warm-up`` to the test end, where the warm-up
   is the training window's length (so indicators are warm when the test window opens); only
   the test window's part of its equity curve is kept, measured from the last bar before the
   test window (the base), so a position opened during the warm-up counts from that base on;
3. the kept parts, each rebased to 1.0 at its base, are chained into the stitched
   out-of-sample curve.

Before any of it, :func:`check_lookahead` makes sure the strategy's decisions never depend on
bars after them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from tradestack.analytics.metrics import PerformanceMetrics, compute_metrics
from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument
from tradestack.core.series import BarSeries, FloatArray, IntArray
from tradestack.engine.backtest import BacktestEngine, BacktestError, BacktestResult
from tradestack.engine.config import BacktestConfig, ConfigError
from tradestack.engine.loading import _bar_venue_config, _load_bars, import_strategy
from tradestack.engine.strategy import Strategy
from tradestack.engine.vectorized import NotVectorizable, VectorizedEngine
from tradestack.engine.weights import Weights, dense_weights
from tradestack.portfolio.trades import TradeRecord
from tradestack.research.splits import Fold, walk_forward
from tradestack.research.sweep import (
    LOWER_IS_BETTER,
    METRIC_COLUMNS,
    SweepError,
    apply_overrides,
    sort_rows,
)

#: the sweep's columns but the final equity and fees, which a test window's slice does not own
TEST_COLUMNS = METRIC_COLUMNS[: METRIC_COLUMNS.index("win_rate") + 1]


class WalkForwardError(ValueError):
    """A walk-forward that cannot run; the message says why."""


class LookAheadError(WalkForwardError):
    """A strategy whose decisions change when bars after them are removed."""

    def __init__(self, strategy: str, at_ns: int, instrument: InstrumentId, cut_ns: int) -> None:
        self.strategy = strategy
        self.at_ns = at_ns
        self.instrument = instrument
        self.cut_ns = cut_ns
        super().__init__(
            f"look-ahead: {strategy} decided differently at {iso(at_ns)} for {instrument} "
            f"when bars after {iso(cut_ns)} were removed — a feature reads data from the future"
        )


def iso(ts_ns: int) -> str:
    """UTC ISO-8601 time of a nanosecond timestamp (``2010-01-04T00:00:00Z``)."""
    seconds, nanos = divmod(int(ts_ns), 10**9)
    stamp = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos // 1000:06d}Z" if nanos else f"{stamp}Z"


# -- bars ---------------------------------------------------------------------------------------
def slice_bars(series: BarSeries, start_ns: int, end_ns: int) -> BarSeries:
    """A copy of the bars with ``start_ns <= ts <= end_ns``."""
    lo = int(np.searchsorted(series.ts_ns, start_ns, side="left"))
    hi = int(np.searchsorted(series.ts_ns, end_ns, side="right"))
    return BarSeries(
        series.instrument_id,
        np.array(series.ts_ns[lo:hi], dtype=np.int64),
        np.array(series.open[lo:hi], dtype=np.float64),
        np.array(series.high[lo:hi], dtype=np.float64),
        np.array(series.low[lo:hi], dtype=np.float64),
        np.array(series.close[lo:hi], dtype=np.float64),
        np.array(series.volume[lo:hi], dtype=np.float64),
    )


def timeline(feeds: Sequence[BarSeries]) -> IntArray:
    """The union of the feeds' bar timestamps, sorted."""
    if not feeds:
        raise WalkForwardError("no bar data")
    out: IntArray = np.unique(np.concatenate([np.asarray(f.ts_ns, dtype=np.int64) for f in feeds]))
    return out


@dataclass(frozen=True)
class Market:
    """The loaded bars and instruments of a config, and how to run a strategy over a slice."""

    config: BacktestConfig
    feeds: tuple[BarSeries, ...]
    instruments: tuple[Instrument, ...]
    vectorized: bool = False

    @classmethod
    def load(cls, config: BacktestConfig, base: Path, *, vectorized: bool = False) -> Market:
        """Load the config's bar files (once). Order-book and pipeline configs are refused."""
        if config.book is not None or config.pipeline is not None or config.strategy is None:
            raise WalkForwardError(
                "walk-forward runs bar configs with a strategy (data: + strategy:); "
                "order-book (book:) and pipeline (pipeline:) configs are not supported"
            )
        feeds, instruments = _load_bars(config, base)
        return cls(config, tuple(feeds), tuple(instruments), vectorized)

    def window(self, start_ns: int, end_ns: int) -> tuple[list[BarSeries], list[Instrument]]:
        """The bars with ``start_ns <= ts <= end_ns``; instruments without bars there dropped."""
        feeds, instruments = [], []
        for feed, inst in zip(self.feeds, self.instruments, strict=True):
            part = slice_bars(feed, start_ns, end_ns)
            if len(part):
                feeds.append(part)
                instruments.append(inst)
        return feeds, instruments

    def run(
        self,
        config: BacktestConfig,
        strategy: Strategy,
        feeds: Sequence[BarSeries],
        instruments: Sequence[Instrument],
        *,
        vectorized: bool | None = None,
    ) -> BacktestResult:
        """Run ``strategy`` over ``feeds`` with the venue, cash and currency of ``config``."""
        kwargs: dict[str, Any] = {
            "instruments": list(instruments),
            "starting_cash": config.starting_cash,
            "currency": config.currency,
            "venue": _bar_venue_config(config),
            "periods_per_year": config.periods_per_year,
        }
        if self.vectorized if vectorized is None else vectorized:
            try:
                return VectorizedEngine(strategy, list(feeds), **kwargs).run()
            except NotVectorizable as exc:
                raise WalkForwardError(f"vectorized runner: {exc}") from None
        return BacktestEngine(strategy, list(feeds), **kwargs).run()


# -- variants -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One grid point: its overrides, validated config and strategy class (or why it failed)."""

    params: dict[str, Any]
    config: BacktestConfig | None
    strategy_cls: type[Strategy] | None
    error: str = ""

    def strategy(self) -> Strategy:
        """A fresh strategy instance (raises ``ParameterError`` for invalid parameters)."""
        assert self.config is not None
        assert self.strategy_cls is not None
        return self.strategy_cls(**self.config.params)


def build_variants(
    raw: Mapping[str, Any], base: Path, grid_points: Sequence[Mapping[str, Any]]
) -> list[Variant]:
    """Validate every grid point once. Keys that would change the data are refused: the bars
    are loaded once for the whole walk-forward."""
    if not grid_points:
        raise WalkForwardError("the grid has no variants")
    classes: dict[str, type[Strategy]] = {}
    out: list[Variant] = []
    for point in grid_points:
        for key in point:
            if key.split(".")[0] in ("data", "book", "pipeline", "strategy"):
                raise WalkForwardError(
                    f"grid key {key!r}: walk-forward loads the data once and sweeps strategy "
                    "parameters and venue settings only"
                )
        try:
            config = BacktestConfig.model_validate(apply_overrides(raw, point))
        except SweepError:
            raise
        except ValueError as exc:  # pydantic ValidationError is a ValueError
            out.append(Variant(dict(point), None, None, f"{type(exc).__name__}: {exc}"))
            continue
        spec = config.strategy or ""
        if spec not in classes:
            classes[spec] = import_strategy(spec, base)
        variant = Variant(dict(point), config, classes[spec])
        try:
            variant.strategy()
        except ValueError as exc:  # ParameterError: fast >= slow and the like
            variant = Variant(dict(point), None, None, f"{type(exc).__name__}: {exc}")
        out.append(variant)
    if all(v.error for v in out):
        raise WalkForwardError(f"every grid variant is invalid; the first: {out[0].error}")
    return out


# -- look-ahead check ---------------------------------------------------------------------------
def _cut_times(ts: IntArray, n_cuts: int, decisions: IntArray, n_decision_cuts: int) -> list[int]:
    """``n_cuts`` evenly spaced times inside the timeline plus up to ``n_decision_cuts`` of the
    full run's decision times (evenly sampled): cutting right at a decision removes exactly the
    bars a leaking feature would need to make it."""
    n = len(ts)
    even = {int(ts[min(n - 1, max(0, round(n * k / (n_cuts + 1))))]) for k in range(1, n_cuts + 1)}
    picked: set[int] = set()
    if len(decisions) and n_decision_cuts > 0:
        idx = np.unique(np.linspace(0, len(decisions) - 1, n_decision_cuts).round().astype(int))
        picked = {int(decisions[i]) for i in idx}
    last = int(ts[-1])
    return sorted(t for t in even | picked if t < last)


def _nan_equal_prefix(full: FloatArray, cut: FloatArray) -> int:
    """Index of the first difference between ``full[:len(cut)]`` and ``cut`` (-1 if none)."""
    head = np.asarray(full[: len(cut)], dtype=np.float64)
    other = np.asarray(cut, dtype=np.float64)
    if len(head) != len(other):
        return min(len(head), len(other))
    same = (head == other) | (np.isnan(head) & np.isnan(other))
    bad = np.flatnonzero(~same)
    return int(bad[0]) if bad.size else -1


def _check_weights(
    make: Callable[[], Strategy],
    full_weights: Mapping[InstrumentId, Weights],
    market: Market,
    cuts: Sequence[int],
) -> None:
    feeds = {f.instrument_id: f for f in market.feeds}
    first = int(timeline(market.feeds)[0])
    for cut in cuts:
        part, _ = market.window(first, cut)
        weights = make().target_weights({f.instrument_id: f for f in part}) or {}
        for feed in part:
            inst = feed.instrument_id
            nan = np.full(len(feed), np.nan)
            full = dense_weights(full_weights.get(inst, np.full(len(feeds[inst]), np.nan)))
            bad = _nan_equal_prefix(full, dense_weights(weights.get(inst, nan)))
            if bad >= 0:
                at = int(feed.ts_ns[min(bad, len(feed) - 1)])
                raise LookAheadError(make().name, at, inst, cut)


def _order_keys(result: BacktestResult, cut: int) -> list[tuple[int, InstrumentId, str, Any]]:
    return [
        (o.ts_init_ns, o.instrument_id, str(o.side), o.qty)
        for o in result.orders
        if o.ts_init_ns <= cut
    ]


def check_lookahead(
    market: Market,
    make_strategy: Callable[[], Strategy],
    *,
    config: BacktestConfig | None = None,
    n_cuts: int = 5,
    n_decision_cuts: int = 20,
) -> str:
    """Raise :class:`LookAheadError` when the strategy decides differently once the bars after
    some time ``t`` are removed.

    With ``target_weights``: the weights on the full data and on the data cut at ``t`` must be
    identical (NaN-equal) up to ``t``. Otherwise (event-only strategies): the event engine runs
    on both and the orders submitted up to ``t`` (time, instrument, side, qty) must agree. The
    cut times are ``n_cuts`` evenly spaced bar times plus up to ``n_decision_cuts`` of the full
    run's decision times (non-NaN weights, or order times). Returns which check ran:
    ``"weights"`` or ``"orders"``.
    """
    cfg = config or market.config
    ts = timeline(market.feeds)
    if len(ts) < 2:
        return "weights"
    full_feeds, full_insts = list(market.feeds), list(market.instruments)
    weights = make_strategy().target_weights({f.instrument_id: f for f in full_feeds})
    if weights is not None:
        decided = [
            np.asarray(f.ts_ns)[np.isfinite(dense_weights(weights[f.instrument_id]))]
            for f in full_feeds
            if f.instrument_id in weights
        ]
        decisions = np.unique(np.concatenate(decided)) if decided else np.empty(0, np.int64)
        _check_weights(
            make_strategy, weights, market, _cut_times(ts, n_cuts, decisions, n_decision_cuts)
        )
        return "weights"
    full = market.run(cfg, make_strategy(), full_feeds, full_insts, vectorized=False)
    order_times = np.unique(np.array([o.ts_init_ns for o in full.orders], dtype=np.int64))
    for cut in _cut_times(ts, n_cuts, order_times, n_decision_cuts):
        feeds, insts = market.window(int(ts[0]), cut)
        part = market.run(cfg, make_strategy(), feeds, insts, vectorized=False)
        a, b = _order_keys(full, cut), _order_keys(part, cut)
        for x, y in zip(a, b, strict=False):
            if x != y:
                first = x if x[0] <= y[0] else y
                raise LookAheadError(make_strategy().name, first[0], first[1], cut)
        if len(a) != len(b):
            extra = (a if len(a) > len(b) else b)[min(len(a), len(b))]
            raise LookAheadError(make_strategy().name, extra[0], extra[1], cut)
    return "orders"


# -- walk-forward -------------------------------------------------------------------------------
@dataclass(frozen=True)
class FoldResult:
    """One fold: its windows, the chosen parameters and how they did out of sample.

    ``ts_ns``/``growth`` are the test window's equity curve, starting at the base (the last bar
    before the test window) with 1.0.
    """

    fold: Fold
    params: dict[str, Any]
    train_metric: float | None
    train_rows: list[dict[str, Any]]
    test_metrics: PerformanceMetrics
    ts_ns: IntArray
    growth: FloatArray
    trades: list[TradeRecord] = field(default_factory=list)

    @property
    def test_return(self) -> float:
        return float(self.growth[-1] / self.growth[0] - 1.0)


@dataclass(frozen=True)
class WalkForwardResult:
    """Every fold and the stitched out-of-sample curve (growth of 1.0 from the first base)."""

    folds: list[FoldResult]
    sort: str
    param_keys: list[str]
    oos_ts_ns: IntArray
    oos_growth: FloatArray
    starting_cash: float
    periods_per_year: float | None

    @property
    def oos_equity(self) -> FloatArray:
        """The stitched curve in account currency (growth × starting cash)."""
        out: FloatArray = self.oos_growth * self.starting_cash
        return out

    def table(self) -> list[dict[str, Any]]:
        """One row per fold: dates, chosen parameters, the train metric and test metrics."""
        rows = []
        for f in self.folds:
            row: dict[str, Any] = {
                "fold": f.fold.index,
                "train_start": iso(f.fold.train_start_ns),
                "train_end": iso(f.fold.train_end_ns),
                "test_start": iso(f.fold.test_start_ns),
                "test_end": iso(f.fold.test_end_ns),
            }
            row.update({k: f.params.get(k) for k in self.param_keys})
            row[f"train_{self.sort}"] = f.train_metric
            metrics = f.test_metrics.to_dict()
            row.update({f"test_{k}": metrics.get(k) for k in TEST_COLUMNS})
            rows.append(row)
        return rows

    def metrics(self) -> PerformanceMetrics:
        """Metrics of the stitched out-of-sample curve and the test windows' trades."""
        return compute_metrics(
            self.oos_ts_ns,
            self.oos_equity,
            [t for f in self.folds for t in f.trades],
            periods_per_year=self.periods_per_year,
        )


ProgressFn = Callable[[int, int], None]


def _plain(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def train_rows(
    market: Market, variants: Sequence[Variant], start_ns: int, end_ns: int
) -> list[dict[str, Any]]:
    """Every variant run on the bars of ``[start_ns, end_ns]`` only: parameters, metrics, error."""
    feeds, instruments = market.window(start_ns, end_ns)
    rows = []
    for v in variants:
        row: dict[str, Any] = dict(v.params)
        if v.error:
            row.update(dict.fromkeys(METRIC_COLUMNS))
            row["error"] = v.error
        else:
            assert v.config is not None
            try:
                metrics = market.run(v.config, v.strategy(), feeds, instruments).metrics()
                values = metrics.to_dict()
                row.update({k: _plain(values.get(k)) for k in METRIC_COLUMNS})
                row["error"] = ""
            except (BacktestError, ConfigError, ValueError) as exc:
                row.update(dict.fromkeys(METRIC_COLUMNS))
                row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    return rows


def choose(rows: Sequence[dict[str, Any]], sort: str) -> int:
    """Index of the best row by ``sort`` (higher is better unless it is a cost or risk); ties
    go to the earlier row. -1 when no row has a value."""
    indexed = [dict(r, _i=i) for i, r in enumerate(rows)]
    ranked = sort_rows(indexed, sort, descending=sort not in LOWER_IS_BETTER)
    best = ranked[0] if ranked else None
    return int(best["_i"]) if best is not None and best.get(sort) is not None else -1


def _test_window(
    market: Market, variant: Variant, fold: Fold, ts: IntArray
) -> tuple[PerformanceMetrics, IntArray, FloatArray, list[TradeRecord]]:
    assert variant.config is not None
    warmup = fold.train_end_ns - fold.train_start_ns
    feeds, instruments = market.window(fold.test_start_ns - warmup, fold.test_end_ns)
    result = market.run(variant.config, variant.strategy(), feeds, instruments)
    rts, req = np.asarray(result.ts_ns, dtype=np.int64), np.asarray(result.equity, np.float64)
    k = int(np.searchsorted(rts, fold.test_start_ns, side="left"))
    if k > 0:
        base_ts, base_eq = int(rts[k - 1]), float(req[k - 1])
    else:  # no bar before the test window in the run: the account's starting cash is the base
        base_ts, base_eq = int(ts[fold.test[0] - 1]), float(result.starting_equity)
    keep = slice(k, len(rts))
    win_ts = np.concatenate(([base_ts], rts[keep])).astype(np.int64)
    win_eq = np.concatenate(([base_eq], req[keep]))
    trades = [t for t in result.trades if fold.test_start_ns <= t.exit_ts_ns <= fold.test_end_ns]
    fees = sum(
        (float(f.fee) for f in result.fills if f.ts_event_ns >= fold.test_start_ns), start=0.0
    )
    gross = np.concatenate(([0.0], np.asarray(result.gross_exposure, np.float64)[keep]))
    metrics = compute_metrics(
        win_ts,
        win_eq,
        trades,
        periods_per_year=variant.config.periods_per_year,
        gross_exposure=gross,
        total_fees=fees,
    )
    growth: FloatArray = win_eq / base_eq
    return metrics, win_ts, growth, trades


def run_walk_forward(
    raw: Mapping[str, Any],
    base: Path,
    grid_points: Sequence[Mapping[str, Any]],
    *,
    train: int | str,
    test: int | str,
    embargo: int | str = "30D",
    anchored: bool = False,
    sort: str = "sharpe",
    vectorized: bool = False,
    lookahead_check: bool = True,
    market: Market | None = None,
    progress: ProgressFn | None = None,
) -> WalkForwardResult:
    """Walk-forward over the config ``raw`` (paths relative to ``base``) and the grid points.

    Raises :class:`WalkForwardError` (bad input, no fold fits, every variant fails in a train
    window) or :class:`LookAheadError` (``lookahead_check``: the strategy reads the future).
    """
    if sort not in METRIC_COLUMNS:
        raise WalkForwardError(f"sort must be one of {', '.join(METRIC_COLUMNS)}, got {sort!r}")
    try:
        base_config = BacktestConfig.model_validate(dict(raw))
    except ValueError as exc:
        raise WalkForwardError(f"invalid config: {exc}") from None
    if market is None:
        market = Market.load(base_config, base, vectorized=vectorized)
    variants = build_variants(raw, base, grid_points)
    ts = timeline(market.feeds)
    try:
        folds = walk_forward(ts, train=train, test=test, embargo=embargo, anchored=anchored)
    except ValueError as exc:
        raise WalkForwardError(str(exc)) from None

    if lookahead_check:
        _check_variants(market, variants)

    results: list[FoldResult] = []
    for done, fold in enumerate(folds, start=1):
        rows = train_rows(market, variants, fold.train_start_ns, fold.train_end_ns)
        best = choose(rows, sort)
        if best < 0:
            raise WalkForwardError(
                f"fold {fold.index}: no variant has a {sort} on the train window "
                f"{iso(fold.train_start_ns)} → {iso(fold.train_end_ns)}; the first error: "
                f"{next((r['error'] for r in rows if r['error']), 'none')}"
            )
        metrics, win_ts, growth, trades = _test_window(market, variants[best], fold, ts)
        results.append(
            FoldResult(
                fold=fold,
                params=dict(variants[best].params),
                train_metric=rows[best][sort],
                train_rows=rows,
                test_metrics=metrics,
                ts_ns=win_ts,
                growth=growth,
                trades=trades,
            )
        )
        if progress is not None:
            progress(done, len(folds))

    oos_ts, oos_growth = stitch(results)
    keys = list(dict.fromkeys(k for p in grid_points for k in p))
    return WalkForwardResult(
        folds=results,
        sort=sort,
        param_keys=keys,
        oos_ts_ns=oos_ts,
        oos_growth=oos_growth,
        starting_cash=float(base_config.starting_cash),
        periods_per_year=base_config.periods_per_year,
    )


def _check_variants(market: Market, variants: Sequence[Variant]) -> None:
    """The look-ahead check for every valid variant when the strategy states target weights
    (cheap), else for the first valid variant on the event engine."""
    for v in variants:
        if v.error:
            continue
        if check_lookahead(market, v.strategy, config=v.config) == "orders":
            return


def stitch(folds: Sequence[FoldResult]) -> tuple[IntArray, FloatArray]:
    """Chain the test windows' rebased curves: the first base, then every test bar."""
    if not folds:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    ts_parts: list[IntArray] = [folds[0].ts_ns[:1]]
    eq_parts: list[FloatArray] = [np.ones(1)]
    level = 1.0
    for f in folds:
        ts_parts.append(f.ts_ns[1:])
        eq_parts.append(level * f.growth[1:])
        level *= float(f.growth[-1])
    return np.concatenate(ts_parts).astype(np.int64), np.concatenate(eq_parts)
