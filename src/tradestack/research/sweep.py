"""Parameter sweeps: many variants of one backtest config, on local processes or a Ray cluster.

A variant is the config with some values replaced: a bare name (``fast``) is a strategy
parameter, a dotted path (``pipeline.horizon``, ``venue.slippage_bps``) any other field. Every
variant runs the same engine the ``backtest`` command runs; a variant whose parameters are
invalid (``fast >= slow``) is recorded with its error and the sweep goes on.

On the vectorized runner a process reads each bar file once (:class:`BarCache`) and the metrics
come from the kernel's fills without the Decimal ledger
(:func:`~tradestack.engine.vectorized.summary.sweep_metrics`), so a variant costs about what its
simulation does.
"""

from __future__ import annotations

import copy
import difflib
import itertools
import logging
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from tradestack.research.sweep_diagnostics import daily_returns

if TYPE_CHECKING:
    from tradestack.core.ids import InstrumentId
    from tradestack.core.series import BarSeries

METRIC_COLUMNS = (
    "sharpe",
    "total_return",
    "cagr",
    "max_drawdown",
    "volatility",
    "sortino",
    "n_trades",
    "win_rate",
    "final_equity",
    "total_fees",
)


LOWER_IS_BETTER = frozenset({"max_drawdown_duration_days", "volatility", "total_fees"})
"""Metrics where a smaller value ranks first; every other metric ranks largest first."""


class SweepError(ValueError):
    """A sweep that cannot run; the message names the axis, key or value."""


@dataclass(frozen=True)
class Axis:
    """One swept key and its values."""

    key: str
    values: tuple[Any, ...]


def parse_axis(text: str) -> Axis:
    """``key=start:stop:step`` (stop included), ``key=a,b,c`` or ``key=value``.

    Numbers stay ints when every bound is an int; decimal steps are exact (``0.1:0.5:0.1``
    gives five values, not four).
    """
    key, sep, spec = text.partition("=")
    key = key.strip()
    if not sep or not key or not spec.strip():
        raise SweepError(f"grid axis {text!r} must look like key=start:stop:step or key=a,b,c")
    if ":" in spec:
        parts = spec.split(":")
        if len(parts) != 3:
            raise SweepError(f"grid axis {text!r}: a range is start:stop:step")
        try:
            start, stop, step = (Decimal(p.strip()) for p in parts)
        except InvalidOperation:
            raise SweepError(f"grid axis {text!r}: range bounds must be numbers") from None
        if step <= 0 or stop < start:
            raise SweepError(f"grid axis {text!r}: needs step > 0 and stop >= start")
        count = int((stop - start) / step) + 1
        if count > 100_000:
            raise SweepError(f"grid axis {text!r} has {count:,} values; that is too many")
        as_int = all(
            d == d.to_integral_value() and "." not in p
            for d, p in zip((start, stop, step), parts, strict=True)
        )
        values = [start + k * step for k in range(count)]
        return Axis(key, tuple(int(v) if as_int else float(v) for v in values))
    return Axis(key, tuple(_scalar(v.strip()) for v in spec.split(",")))


def _scalar(text: str) -> Any:
    loaded = yaml.safe_load(text)
    return loaded if isinstance(loaded, int | float | bool | str) else text


def grid(axes: Sequence[Axis]) -> list[dict[str, Any]]:
    """Every combination of the axes' values, in order (the last axis varies fastest)."""
    keys = [a.key for a in axes]
    if len(set(keys)) != len(keys):
        raise SweepError(f"an axis is given twice: {', '.join(keys)}")
    return [
        dict(zip(keys, combo, strict=True))
        for combo in itertools.product(*(a.values for a in axes))
    ]


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the raw config with the variant's values set; unknown keys are errors."""
    out = copy.deepcopy(dict(raw))
    for key, value in overrides.items():
        if "." not in key:
            if "strategy" not in out:
                raise SweepError(f"{key!r} is a strategy parameter but the config has no strategy")
            out.setdefault("params", {})[key] = value
            continue
        node: Any = out
        path = key.split(".")
        for depth, part in enumerate(path[:-1]):
            if not isinstance(node, dict) or part not in node:
                where = ".".join(path[: depth + 1])
                options = list(node) if isinstance(node, dict) else []
                close = difflib.get_close_matches(part, options, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise SweepError(f"sweep key {key!r}: the config has no {where!r}{hint}")
            node = node[part]
        if not isinstance(node, dict):
            raise SweepError(f"sweep key {key!r}: {'.'.join(path[:-1])!r} is not a section")
        node[path[-1]] = value
    return out


class BarCache:
    """Bar files read once per process: every variant of a sweep trades the same data, so a
    worker reads a file for its first variant and hands the same series to the later ones while
    the file is unchanged: same size, inode, modification and status-change times (a write, a
    replacement or a ``touch`` changes one of them, and the file is read again).

    File times tick as coarsely as the filesystem's clock (milliseconds to seconds): a file
    changed within the last ``settle_s`` seconds could change again without a new time, so it
    is read on every call until it has been quiet that long. Entries are keyed by the resolved
    path and the loading options; the series are shared, so nothing may write into their arrays
    (the engines only read them).
    """

    def __init__(self, settle_s: float = 2.0) -> None:
        self.settle_ns = int(settle_s * 1e9)
        self._entries: dict[
            tuple[str, InstrumentId, str, str | None], tuple[tuple[int, ...], BarSeries]
        ] = {}

    def __call__(
        self, path: Path, instrument_id: InstrumentId, *, timezone: str, time_column: str | None
    ) -> BarSeries:
        """The series :func:`tradestack.data.load_bars` reads from ``path`` now."""
        from tradestack.data import load_bars

        now = time.time_ns()
        try:
            stat = path.stat()  # before the read: a change during it shows at the next call
        except OSError:  # the loader says what is wrong with the path
            return load_bars(path, instrument_id, timezone=timezone, time_column=time_column)
        key = (str(path.resolve()), instrument_id, timezone, time_column)
        stamp = (stat.st_size, stat.st_ino, stat.st_dev, stat.st_mtime_ns, stat.st_ctime_ns)
        hit = self._entries.get(key)
        if hit is not None and hit[0] == stamp:
            return hit[1]
        series = load_bars(path, instrument_id, timezone=timezone, time_column=time_column)
        if now - max(stat.st_mtime_ns, stat.st_ctime_ns) > self.settle_ns:
            self._entries[key] = (stamp, series)
        else:
            self._entries.pop(key, None)
        return series

    @property
    def n_files(self) -> int:
        """How many files (with their loading options) are held."""
        return len(self._entries)

    def clear(self) -> None:
        """Forget every series read so far."""
        self._entries.clear()


_BARS = BarCache()
"""This process's bar files, for the vectorized variants it runs."""


def run_variant(
    raw: Mapping[str, Any], base: str, params: Mapping[str, Any], vectorized: bool = False
) -> dict[str, Any]:
    """Run one variant; returns its parameters, metrics, run time and error (if any), and its
    daily returns under the private keys ``_days`` / ``_returns`` (for the overfitting
    diagnostics; not written to the results table). Vectorized variants read their bar files
    through this process's :class:`BarCache` and take their metrics from
    :func:`~tradestack.engine.vectorized.summary.sweep_metrics`."""
    from tradestack.engine.backtest import BacktestError
    from tradestack.engine.config import BacktestConfig, ConfigError, format_validation_error
    from tradestack.engine.loading import build_engine
    from tradestack.engine.vectorized import VectorizedResult
    from tradestack.engine.vectorized.summary import sweep_metrics

    row: dict[str, Any] = dict(params)
    started = time.perf_counter()
    try:
        config = BacktestConfig.model_validate(apply_overrides(raw, params))
        if vectorized:
            engine = build_engine(config, Path(base), vectorized=True, read_bars=_BARS)
        else:
            engine = build_engine(config, Path(base))
        result = engine.run()
        if isinstance(result, VectorizedResult):
            metrics = sweep_metrics(result)
        else:
            metrics = result.metrics().to_dict()
        row.update({k: _plain(metrics.get(k)) for k in METRIC_COLUMNS})
        row["error"] = ""
        days, rets = daily_returns(result.ts_ns, result.equity)
        row["_days"], row["_returns"] = days, rets
    except (BacktestError, ConfigError, SweepError, ValueError) as exc:
        text = str(exc)
        if hasattr(exc, "errors") and callable(exc.errors):  # pydantic
            text = format_validation_error(Path("config"), exc)  # type: ignore[arg-type]
        row.update(dict.fromkeys(METRIC_COLUMNS))
        row["error"] = f"{type(exc).__name__}: {text}"
    row["seconds"] = time.perf_counter() - started
    return row


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


ProgressFn = Callable[[int, int], None]


def run_sweep(
    raw: Mapping[str, Any],
    base: Path,
    variants: Sequence[Mapping[str, Any]],
    *,
    workers: int | None = None,
    ray_address: str | None = None,
    vectorized: bool = False,
    progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """Run every variant (local processes, or Ray tasks with ``ray_address``; the event engine,
    or the vectorized runner); rows in the variants' order."""
    if not variants:
        raise SweepError("the sweep has no variants")
    runner = _ray_rows if ray_address is not None else _local_rows
    rows: list[dict[str, Any] | None] = [None] * len(variants)
    for done, (index, row) in enumerate(
        runner(raw, str(base), variants, workers, ray_address, vectorized), start=1
    ):
        rows[index] = row
        if progress is not None:
            progress(done, len(variants))
    return [r for r in rows if r is not None]


def _local_rows(
    raw: Mapping[str, Any],
    base: str,
    variants: Sequence[Mapping[str, Any]],
    workers: int | None,
    _address: str | None,
    vectorized: bool,
) -> Iterator[tuple[int, dict[str, Any]]]:
    n = max(1, min(workers or os.cpu_count() or 1, len(variants)))
    if n == 1:
        try:
            for i, params in enumerate(variants):
                yield i, run_variant(raw, base, params, vectorized)
        finally:  # this process goes on: do not keep the sweep's data alive
            _BARS.clear()
        return
    # spawn, not fork: a forked child can inherit a lock some library thread held (a deadlock)
    with ProcessPoolExecutor(
        max_workers=n, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        pending: dict[Future[dict[str, Any]], int] = {
            pool.submit(run_variant, raw, base, params, vectorized): i
            for i, params in enumerate(variants)
        }
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield pending.pop(future), future.result()


def _ray_rows(
    raw: Mapping[str, Any],
    base: str,
    variants: Sequence[Mapping[str, Any]],
    _workers: int | None,
    address: str | None,
    vectorized: bool,
) -> Iterator[tuple[int, dict[str, Any]]]:
    try:
        import ray
    except ImportError:
        raise SweepError("--ray needs ray: pip install -e '.[research]'") from None

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    try:
        task = ray.remote(run_variant)
        config_ref: Any = ray.put(dict(raw))
        pending = {
            task.remote(config_ref, base, dict(params), vectorized): i
            for i, params in enumerate(variants)
        }
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                yield pending.pop(ref), ray.get(ref)
    finally:
        if started_here:
            ray.shutdown()


def sort_rows(rows: Iterable[dict[str, Any]], by: str, descending: bool) -> list[dict[str, Any]]:
    """Rows with a value for ``by`` first, best first; failed variants last."""
    rows = list(rows)
    if rows and by not in rows[0]:
        raise SweepError(f"cannot sort by {by!r}; columns: {', '.join(rows[0])}")
    good = [r for r in rows if r.get(by) is not None]
    bad = [r for r in rows if r.get(by) is None]
    good.sort(key=lambda r: r[by], reverse=descending)
    return good + bad


def search(
    raw: Mapping[str, Any],
    base: Path,
    axes: Sequence[Axis],
    *,
    method: str,
    trials: int,
    metric: str,
    maximize: bool,
    seed: int | None = None,
    workers: int | None = None,
    ray_address: str | None = None,
    vectorized: bool = False,
    progress: ProgressFn | None = None,
) -> list[dict[str, Any]]:
    """``trials`` variants chosen by Optuna over the axes' values: ``random`` (uniform, seeded)
    or ``tpe`` (Bayesian: each batch is proposed from the results so far). Batches as large as
    the workers run in parallel. A failed variant is reported to Optuna as failed."""
    try:
        import optuna
        from optuna.trial import TrialState
    except ImportError:
        raise SweepError(
            "random and tpe search need optuna: pip install -e '.[research]'"
        ) from None

    if trials < 1:
        raise SweepError(f"--trials must be >= 1, got {trials}")
    samplers: dict[str, Callable[[], optuna.samplers.BaseSampler]] = {
        "random": lambda: optuna.samplers.RandomSampler(seed=seed),
        "tpe": lambda: optuna.samplers.TPESampler(seed=seed),
    }
    if method not in samplers:
        raise SweepError(f"search method must be one of grid, {', '.join(samplers)}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        direction="maximize" if maximize else "minimize", sampler=samplers[method]()
    )
    batch = max(1, workers or os.cpu_count() or 1)
    rows: list[dict[str, Any]] = []
    while len(rows) < trials:
        asked = [study.ask() for _ in range(min(batch, trials - len(rows)))]
        params = [
            {a.key: t.suggest_categorical(a.key, list(a.values)) for a in axes} for t in asked
        ]
        done = run_sweep(
            raw, base, params, workers=workers, ray_address=ray_address, vectorized=vectorized
        )
        for trial, row in zip(asked, done, strict=True):
            value = row.get(metric)
            if value is None:
                study.tell(trial, state=TrialState.FAIL)
            else:
                study.tell(trial, float(value))
        rows.extend(done)
        if progress is not None:
            progress(len(rows), trials)
    return rows
