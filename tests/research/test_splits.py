"""Walk-forward and purged k-fold: hand tables, real daily and intraday data, properties."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradestack.core.ids import InstrumentId
from tradestack.data import load_bars
from tradestack.research.splits import Fold, parse_duration, purged_kfold, walk_forward

DAY = 86_400 * 10**9
MINUTE = 60 * 10**9


def _table(folds: list[Fold]) -> list[tuple[int, int, int, int]]:
    """(first train row, last train row, first test row, last test row) per fold."""
    return [(int(f.train[0]), int(f.train[-1]), int(f.test[0]), int(f.test[-1])) for f in folds]


def _check_fold_basics(folds: list[Fold], ts: np.ndarray) -> None:
    for i, f in enumerate(folds):
        assert f.index == i
        assert f.train.dtype == np.int64 and f.test.dtype == np.int64
        assert np.all(np.diff(f.test) == 1)  # contiguous test window
        assert f.train_start_ns == ts[f.train[0]] and f.train_end_ns == ts[f.train[-1]]
        assert f.test_start_ns == ts[f.test[0]] and f.test_end_ns == ts[f.test[-1]]
        assert not np.intersect1d(f.train, f.test).size
    for a, b in pairwise(folds):
        assert a.test[-1] < b.test[0]  # disjoint and ordered


@pytest.fixture(scope="module")
def aapl_ts(examples_dir: Path) -> np.ndarray:
    bars = load_bars(
        examples_dir / "data" / "AAPL_2012-2014_daily.csv",
        InstrumentId("AAPL"),
        timezone="America/New_York",
    )
    return np.asarray(bars.ts_ns, dtype=np.int64)


def _session_minutes(n_days: int) -> np.ndarray:
    """1-minute bar times 14:30-20:59 UTC on weekdays from 2021-01-04 (a Monday)."""
    start = pd.Timestamp("2021-01-04 14:30", tz="UTC").value
    days = np.arange(n_days)
    days = days[(days % 7) < 5]
    return (start + days[:, None] * DAY + np.arange(390)[None, :] * MINUTE).ravel()


# --- parse_duration ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["365D", "90D", "30d", "12h", "30min", "1D12h", "1D 6h", "1.5h", "15s", "2 days", "1W",
     "500ms", "250us", "7ns", "0D", "1m"],
)  # fmt: skip
def test_parse_duration_agrees_with_pandas(text: str) -> None:
    # pandas deprecates the lower-case day unit; ours accepts both
    assert parse_duration(text) == pd.Timedelta(text.replace("30d", "30D")).value


def test_parse_duration_case_and_aliases() -> None:
    assert parse_duration("12H") == parse_duration("12h") == 12 * 3_600 * 10**9
    assert parse_duration("30T") == parse_duration("30 minutes") == 30 * MINUTE


@pytest.mark.parametrize("text", ["", "  ", "abc", "1M", "2Y", "-5D", "5", "5D x", "5x", "D"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|months|unit"):
        parse_duration(text)


# --- walk_forward: hand tables -------------------------------------------------------------------


def test_walk_forward_rows_rolling() -> None:
    ts = np.arange(20, dtype=np.int64) * DAY
    folds = walk_forward(ts, train=5, test=3, embargo=2)
    # rows 5,6 embargoed; test windows tile from row 7; row 19 alone is not a full window
    assert _table(folds) == [(0, 4, 7, 9), (3, 7, 10, 12), (6, 10, 13, 15), (9, 13, 16, 18)]
    _check_fold_basics(folds, ts)
    assert all(len(f.train) == 5 and len(f.test) == 3 for f in folds)


def test_walk_forward_rows_anchored() -> None:
    ts = np.arange(20, dtype=np.int64) * DAY
    folds = walk_forward(ts, train=5, test=3, embargo=2, anchored=True)
    assert _table(folds) == [(0, 4, 7, 9), (0, 7, 10, 12), (0, 10, 13, 15), (0, 13, 16, 18)]


def test_walk_forward_rows_step_and_partial() -> None:
    ts = np.arange(20, dtype=np.int64) * DAY
    folds = walk_forward(ts, train=4, test=2, embargo=0, step=5)
    assert _table(folds) == [(0, 3, 4, 5), (5, 8, 9, 10), (10, 13, 14, 15)]
    partial = walk_forward(ts, train=4, test=3, embargo=1, allow_partial=True)
    assert _table(partial) == [(0, 3, 5, 7), (3, 6, 8, 10), (6, 9, 11, 13), (9, 12, 14, 16),
                               (12, 15, 17, 19)]  # fmt: skip
    assert _table(walk_forward(ts, train=4, test=3, embargo=1)) == _table(partial)
    last = walk_forward(ts, train=4, test=4, embargo=1, allow_partial=True)[-1]
    assert last.test.tolist() == [17, 18, 19]


def test_walk_forward_durations_rolling_and_anchored() -> None:
    ts = np.arange(20, dtype=np.int64) * DAY
    folds = walk_forward(ts, train="5D", test="3D", embargo="2D")
    # train = days [0, 5); the test grid starts 2 days after the last train day (day 6);
    # the window of days 18-20 is dropped because the data ends on day 19
    assert _table(folds) == [(0, 4, 6, 8), (3, 7, 9, 11), (6, 10, 12, 14), (9, 13, 15, 17)]
    _check_fold_basics(folds, ts)
    anchored = walk_forward(ts, train="5D", test="3D", embargo="2D", anchored=True)
    assert _table(anchored) == [(0, 4, 6, 8), (0, 7, 9, 11), (0, 10, 12, 14), (0, 13, 15, 17)]
    partial = walk_forward(ts, train="5D", test="3D", embargo="2D", allow_partial=True)
    assert _table(partial)[-1] == (12, 16, 18, 19)


def test_walk_forward_hourly_durations_and_step() -> None:
    hour = DAY // 24
    ts = np.arange(48, dtype=np.int64) * hour
    folds = walk_forward(ts, train="12h", test="6h", embargo="2h", step="9h")
    # test windows start at hours 13, 22, 31, 40 (every 9 h), last one [40, 46)
    assert _table(folds) == [(0, 11, 13, 18), (9, 20, 22, 27), (18, 29, 31, 36), (27, 38, 40, 45)]


def test_walk_forward_mixed_units() -> None:
    ts = np.arange(30, dtype=np.int64) * DAY
    folds = walk_forward(ts, train=10, test="5D", embargo="3D")
    assert _table(folds) == [(0, 9, 12, 16), (5, 14, 17, 21), (10, 19, 22, 26)]


def test_walk_forward_skips_windows_inside_a_data_gap() -> None:
    days = np.r_[np.arange(10), np.arange(20, 30)]
    ts = days.astype(np.int64) * DAY
    folds = walk_forward(ts, train="5D", test="3D", embargo="1D")
    starts = [int(ts[f.test[0]] // DAY) for f in folds]
    # train days 0-4; grid 5, 8, 11, 14, 17, 20, 23, 26: 11-17 have no rows, 8 is cut by the gap
    assert starts == [5, 8, 20, 23, 26]
    assert [len(f.test) for f in folds] == [3, 2, 3, 3, 3]
    assert [f.index for f in folds] == [0, 1, 2, 3, 4]
    _check_fold_basics(folds, ts)


def test_walk_forward_default_embargo_is_30_days() -> None:
    ts = np.arange(200, dtype=np.int64) * DAY
    folds = walk_forward(ts, train="60D", test="20D")
    assert folds[0].test_start_ns - folds[0].train_end_ns == 30 * DAY
    assert all(f.test_start_ns - f.train_end_ns >= 30 * DAY for f in folds)


# --- walk_forward: real daily data and intraday data ---------------------------------------------


def test_walk_forward_real_daily_aapl(aapl_ts: np.ndarray) -> None:
    ts = aapl_ts
    folds = walk_forward(ts, train="365D", test="90D")  # embargo defaults to 30 days
    _check_fold_basics(folds, ts)
    day = lambda ns: str(pd.Timestamp(ns, tz="UTC").tz_convert("America/New_York").date())  # noqa: E731
    assert day(folds[0].train_start_ns) == "2012-01-03"
    assert day(folds[0].train_end_ns) == "2012-12-31"
    # first trading day at least 30 days after 2012-12-31, then a grid of 90 x 24 h; bars are
    # stamped at New York midnight, so in summer (EDT) they sit one hour before the grid line and
    # the 2013-04-30 bar closes the first window instead of opening the second
    assert [day(f.test_start_ns) for f in folds] == [
        "2013-01-30", "2013-05-01", "2013-07-30", "2013-10-28", "2014-01-27", "2014-04-28",
        "2014-07-25",
    ]  # fmt: skip
    assert day(folds[0].test_end_ns) == "2013-04-30"
    assert all(b.test[0] == a.test[-1] + 1 for a, b in pairwise(folds))  # step = test: tiled
    for f in folds:
        assert f.test_start_ns - f.train_end_ns >= 30 * DAY
        assert f.test_end_ns - f.test_start_ns < 90 * DAY
        assert f.train_end_ns - f.train_start_ns < 365 * DAY
        assert len(f.train) > 240  # about a year of trading days
    anchored = walk_forward(ts, train="365D", test="90D", anchored=True)
    assert all(f.train[0] == 0 for f in anchored)
    assert [f.test.tolist() for f in anchored] == [f.test.tolist() for f in folds]
    rows = walk_forward(ts, train=252, test=63, embargo=21)
    assert _table(rows)[0] == (0, 251, 273, 335)
    assert all(f.test[0] - f.train[-1] - 1 == 21 for f in rows)


def test_walk_forward_intraday_minutes_same_config() -> None:
    ts = _session_minutes(200)
    folds = walk_forward(ts, train="60D", test="20D")
    _check_fold_basics(folds, ts)
    assert len(folds) >= 4
    for f in folds:
        assert f.test_start_ns - f.train_end_ns >= 30 * DAY
        assert f.test_end_ns - f.test_start_ns < 20 * DAY
        assert f.train_end_ns - f.train_start_ns < 60 * DAY
    # test windows open on a 20-day grid from the first one, or at the next session after it
    for k, f in enumerate(folds):
        offset = f.test_start_ns - folds[0].test_start_ns - k * 20 * DAY
        assert 0 <= offset < 3 * DAY
    # a row-based embargo counts bars, not days
    by_rows = walk_forward(ts, train="5D", test="1D", embargo=30)
    assert all(f.test[0] - f.train[-1] - 1 == 30 for f in by_rows)


# --- walk_forward: errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"train": 0, "test": 3}, "train"),
        ({"train": -1, "test": 3}, "train"),
        ({"train": 5.0, "test": 3}, "train"),
        ({"train": True, "test": 3}, "train"),
        ({"train": 5, "test": "0D"}, "test"),
        ({"train": 5, "test": "3 fortnights"}, "unit"),
        ({"train": 5, "test": 3, "embargo": -1}, "embargo"),
        ({"train": 5, "test": 3, "step": 2}, "step"),
        ({"train": "5D", "test": "3D", "step": "2D"}, "step"),
        ({"train": 5, "test": "3D", "step": 1, "embargo": 0}, "overlap"),
        ({"train": 20, "test": 3, "embargo": 0}, "no rows for a test window"),
        ({"train": 19, "test": 3, "embargo": 0}, "no complete test window"),
        ({"train": "30D", "test": 3}, "no rows for a test window"),
        ({"train": 5, "test": 30, "embargo": 0}, "no complete test window"),
        ({"train": "5D", "test": "90D", "embargo": 0}, "allow_partial"),
    ],
)
def test_walk_forward_invalid(kwargs: dict[str, object], match: str) -> None:
    ts = np.arange(20, dtype=np.int64) * DAY
    kwargs.setdefault("embargo", 0)
    with pytest.raises(ValueError, match=match):
        walk_forward(ts, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("ts", "match"),
    [
        (np.array([0, 2, 1, 3]) * DAY, "strictly increasing"),
        (np.array([0, 1, 1, 3]) * DAY, "strictly increasing"),
        (np.zeros((2, 2), dtype=np.int64), "one-dimensional"),
        (np.array([], dtype=np.int64), "empty"),
        (np.arange(4.0), "integer"),
    ],
)
def test_timestamps_validated(ts: np.ndarray, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        walk_forward(ts, train=1, test=1, embargo=0)
    with pytest.raises(ValueError, match=match):
        purged_kfold(ts, n_splits=2)


def test_datetime64_timestamps_accepted() -> None:
    ts = np.arange(20, dtype=np.int64) * DAY
    dt = ts.astype("datetime64[ns]")
    assert _table(walk_forward(dt, train=5, test=3, embargo="2D")) == _table(
        walk_forward(ts, train=5, test=3, embargo="2D")
    )


# --- purged_kfold --------------------------------------------------------------------------------


def test_purged_kfold_without_labels_is_plain_kfold() -> None:
    ts = np.arange(10, dtype=np.int64) * DAY
    folds = purged_kfold(ts, n_splits=3)
    assert [f.test.tolist() for f in folds] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    for f in folds:
        assert sorted(f.train.tolist() + f.test.tolist()) == list(range(10))
    assert (folds[1].train_start_ns, folds[1].train_end_ns) == (0, 9 * DAY)


def test_purged_kfold_hand_table_duration_embargo() -> None:
    ts = np.arange(20, dtype=np.int64) * DAY
    folds = purged_kfold(ts, ts + 2 * DAY, n_splits=4, embargo="1D")
    # fold 1: test days 5-9, labels to day 11 -> purge 3,4 (labels reach day 5) and 10,11;
    # embargo day 12
    assert [f.train.tolist() for f in folds] == [
        list(range(8, 20)),
        [0, 1, 2, *range(13, 20)],
        [*range(8), 18, 19],
        list(range(13)),
    ]
    assert [f.test.tolist() for f in folds] == [list(range(i, i + 5)) for i in (0, 5, 10, 15)]


def test_purged_kfold_row_embargo() -> None:
    ts = np.arange(20, dtype=np.int64) * DAY
    folds = purged_kfold(ts, ts + DAY, n_splits=4, embargo=2)
    # fold 1: test rows 5-9, labels to day 10 -> purge 4 and 10; embargo rows 11, 12
    assert folds[1].train.tolist() == [0, 1, 2, 3, *range(13, 20)]
    assert folds[3].train.tolist() == list(range(14))  # nothing after the last fold


def test_purged_kfold_variable_label_lengths() -> None:
    ts = np.arange(12, dtype=np.int64) * DAY
    ends = ts.copy()
    ends[1] = 6 * DAY  # row 1's label reaches into fold 1 (rows 4-7)
    ends[6] = 11 * DAY  # fold 1's test labels then reach day 11: rows 8-11 are purged
    folds = purged_kfold(ts, ends, n_splits=3)
    assert folds[1].train.tolist() == [0, 2, 3]
    assert folds[0].train.tolist() == [7, 8, 9, 10, 11]  # fold 0's labels reach day 6
    assert folds[2].train.tolist() == [0, 1, 2, 3, 4, 5, 7]  # row 6's label reaches day 11


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_splits": 1}, "n_splits"),
        ({"n_splits": 11}, "n_splits"),
        ({"n_splits": 2.0}, "n_splits"),
        ({"n_splits": 2, "embargo": -1}, "embargo"),
        ({"n_splits": 2, "embargo": "soon"}, "duration"),
        ({"n_splits": 2, "label_end_ns": np.arange(9)}, "shape"),
        ({"n_splits": 2, "label_end_ns": np.arange(10) * DAY - 1}, r"label_end_ns\[0\]"),
        ({"n_splits": 2, "label_end_ns": np.arange(10.0) * DAY}, "integer"),
        ({"n_splits": 2, "label_end_ns": np.full(10, 20 * DAY)}, "no training rows"),
    ],
)
def test_purged_kfold_invalid(kwargs: dict[str, object], match: str) -> None:
    ts = np.arange(10, dtype=np.int64) * DAY
    with pytest.raises(ValueError, match=match):
        purged_kfold(ts, **kwargs)  # type: ignore[arg-type]


def test_purged_kfold_real_daily_aapl(aapl_ts: np.ndarray) -> None:
    ts = aapl_ts
    horizon = 10 * DAY  # e.g. a 10-calendar-day forward-return label
    folds = purged_kfold(ts, ts + horizon, n_splits=6, embargo="5D")
    _check_fold_basics(folds, ts)
    assert sum(len(f.test) for f in folds) == len(ts)
    for f in folds:
        t = ts[f.train]
        assert not np.any(
            (t >= f.test_start_ns - horizon) & (t <= f.test_end_ns + horizon + 5 * DAY)
        )
        assert len(f.train) > len(ts) * 0.7


def test_purged_kfold_intraday_minutes() -> None:
    ts = _session_minutes(30)
    folds = purged_kfold(ts, ts + 60 * MINUTE, n_splits=5, embargo="1D")
    _check_fold_basics(folds, ts)
    for f in folds:
        t = ts[f.train]
        assert not np.any((t >= f.test_start_ns - 60 * MINUTE) & (t <= f.test_end_ns + DAY))


# --- properties ----------------------------------------------------------------------------------

_timestamps = st.lists(st.integers(1, 5 * DAY), min_size=2, max_size=300).map(
    lambda gaps: np.cumsum(np.asarray(gaps, dtype=np.int64))
)
_rows_or_days = st.one_of(st.integers(1, 40), st.integers(1, 60).map(lambda d: f"{d}D"))
_embargo = st.one_of(st.integers(0, 10), st.integers(0, 20).map(lambda d: f"{d}D"))


def _ns(spec: int | str) -> int:
    assert isinstance(spec, str)
    return parse_duration(spec)


@settings(max_examples=150, deadline=None)
@given(
    ts=_timestamps,
    train=_rows_or_days,
    test=_rows_or_days,
    embargo=_embargo,
    anchored=st.booleans(),
    extra_step=st.one_of(st.none(), st.integers(0, 5)),
    partial=st.booleans(),
)
def test_walk_forward_never_leaks(
    ts: np.ndarray,
    train: int | str,
    test: int | str,
    embargo: int | str,
    anchored: bool,
    extra_step: int | None,
    partial: bool,
) -> None:
    step: int | str | None = None
    if extra_step is not None:
        step = test + extra_step if isinstance(test, int) else f"{_ns(test) // DAY + extra_step}D"
    try:
        folds = walk_forward(
            ts, train=train, test=test, embargo=embargo, anchored=anchored, step=step,
            allow_partial=partial,
        )  # fmt: skip
    except ValueError as exc:
        error: str | None = str(exc)
    else:
        error = None
    if error is not None:  # only "does not fit" is an acceptable failure
        assert "test window" in error
        return
    assert folds
    _check_fold_basics(folds, ts)
    for f in folds:
        assert np.all(np.diff(f.train) == 1)  # contiguous train window
        if isinstance(embargo, int):
            assert f.test[0] - f.train[-1] - 1 == embargo
        else:
            assert f.train_end_ns <= f.test_start_ns - _ns(embargo)
        assert f.train_end_ns < f.test_start_ns
        if anchored:
            assert f.train[0] == 0
        elif isinstance(train, int):
            assert len(f.train) == train
        else:
            assert f.train_end_ns - f.train_start_ns < _ns(train)
        if isinstance(test, int):
            assert len(f.test) == test or (partial and f is folds[-1])
        else:
            assert f.test_end_ns - f.test_start_ns < _ns(test)


@settings(max_examples=150, deadline=None)
@given(
    ts=_timestamps,
    n_splits=st.integers(2, 8),
    horizon=st.integers(0, 10 * DAY),
    fixed=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    embargo=_embargo,
)
def test_purged_kfold_never_leaks(
    ts: np.ndarray, n_splits: int, horizon: int, fixed: bool, seed: int, embargo: int | str
) -> None:
    if n_splits > len(ts):
        n_splits = len(ts)
    lengths = (
        np.full(len(ts), horizon)
        if fixed
        else np.random.default_rng(seed).integers(0, horizon + 1, len(ts))
    )
    ends = ts + lengths
    try:
        folds = purged_kfold(ts, ends, n_splits=n_splits, embargo=embargo)
    except ValueError as exc:
        error: str | None = str(exc)
    else:
        error = None
    if error is not None:  # only "does not fit" is an acceptable failure
        assert "no training rows" in error
        return
    assert len(folds) == n_splits
    _check_fold_basics(folds, ts)
    assert np.array_equal(np.concatenate([f.test for f in folds]), np.arange(len(ts)))
    for f in folds:
        t, e = ts[f.train], ends[f.train]
        test_label_end = int(ends[f.test].max())
        # purging: no training label interval overlaps the test span [test_start, test labels end]
        assert not np.any((t <= test_label_end) & (e >= f.test_start_ns))
        if isinstance(embargo, str):
            zone_end = test_label_end + _ns(embargo)
            assert not np.any((t > test_label_end) & (t <= zone_end))
            if fixed:  # the brief's form: nothing in [test_start - H, test_end + embargo]
                assert not np.any(
                    (t >= f.test_start_ns - horizon) & (t <= f.test_end_ns + _ns(embargo))
                )
        else:
            after = np.flatnonzero(ts > test_label_end)[:embargo]
            assert not np.intersect1d(after, f.train).size
