"""Walk-forward windows and purged k-fold cross-validation over a timestamp axis.

Both splitters work on a strictly increasing array of UTC nanosecond timestamps (``ts_ns``, as
in :class:`tradestack.core.series.BarSeries`) and return :class:`Fold` objects holding row
indices into it. Window lengths are either a number of rows (``int``) or a calendar duration
(``str`` such as ``"365D"``, ``"12h"``, ``"30min"``), so the same duration config means the
same span of time for daily and intraday data.

* :func:`walk_forward` -- rolling or anchored train windows, each followed (after an embargo
  gap) by a test window; test windows step forward and never overlap.
* :func:`purged_kfold` -- López de Prado's purged k-fold: contiguous test folds, training rows
  whose label interval overlaps the test fold removed ("purged"), plus an embargo after it.

Reference: M. López de Prado (2018), *Advances in Financial Machine Learning*, Wiley,
chapter 7 ("Cross-Validation in Finance"), sections 7.4.1-7.4.3; chapter 12 for walk-forward.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

_NS_PER_UNIT: dict[str, int] = {
    "w": 7 * 86_400 * 10**9,
    "d": 86_400 * 10**9,
    "h": 3_600 * 10**9,
    "min": 60 * 10**9,
    "m": 60 * 10**9,
    "t": 60 * 10**9,
    "s": 10**9,
    "ms": 10**6,
    "us": 10**3,
    "ns": 1,
}
_UNIT_ALIASES: dict[str, str] = {
    "week": "w",
    "weeks": "w",
    "day": "d",
    "days": "d",
    "hr": "h",
    "hour": "h",
    "hours": "h",
    "mins": "min",
    "minute": "min",
    "minutes": "min",
    "sec": "s",
    "second": "s",
    "seconds": "s",
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-z]+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True, eq=False)
class Fold:
    """One train/test split: row indices into ``ts_ns`` and the time span of each side.

    Attributes
    ----------
    index:
        Position of the fold in the returned list (0, 1, ...).
    train:
        Sorted int64 row indices of the training set. Contiguous for :func:`walk_forward`;
        for :func:`purged_kfold` it may lie on both sides of the test fold.
    test:
        Sorted, contiguous int64 row indices of the test set.
    train_start_ns, train_end_ns:
        Timestamps of the first and last training rows (inclusive).
    test_start_ns, test_end_ns:
        Timestamps of the first and last test rows (inclusive).
    """

    index: int
    train: IntArray
    test: IntArray
    train_start_ns: int
    train_end_ns: int
    test_start_ns: int
    test_end_ns: int


def parse_duration(value: str) -> int:
    """Parse a calendar duration such as ``"365D"``, ``"12h"``, ``"1D12h"`` into nanoseconds.

    Accepted units (case-insensitive): ``W`` weeks, ``D`` days, ``h`` hours, ``min``/``m``/``T``
    minutes, ``s`` seconds, ``ms``, ``us``, ``ns`` (and spelled-out forms like ``"2 days"``).
    Parts may be combined (``"1D 6h"``) and may be fractional (``"1.5h"``). Months and years
    (``M``, ``Y``) are rejected: they are not fixed durations. Agrees with
    ``pandas.Timedelta`` on these forms.

    Raises ``ValueError`` for an empty, unparseable or negative duration.
    """
    text = value.strip()
    if not text:
        raise ValueError("duration string is empty")
    pos = 0
    total = 0
    for match in _PART.finditer(text):
        if text[pos : match.start()].strip():
            break
        if match.group(2) in ("M", "Y", "y"):
            raise ValueError(f"months and years are not fixed durations: {value!r}; use days")
        unit = _UNIT_ALIASES.get(match.group(2).lower(), match.group(2).lower())
        if unit not in _NS_PER_UNIT:
            raise ValueError(
                f"unknown duration unit {match.group(2)!r} in {value!r}; "
                "use W, D, h, min, s, ms, us or ns"
            )
        total += round(float(match.group(1)) * _NS_PER_UNIT[unit])
        pos = match.end()
    if pos == 0 or text[pos:].strip():
        raise ValueError(
            f"cannot parse duration {value!r}; expected e.g. '365D', '90D', '12h', '30min'"
        )
    return total


@dataclass(frozen=True, slots=True)
class _Span:
    """A window length: ``rows`` rows or ``ns`` nanoseconds (exactly one is set)."""

    rows: int | None
    ns: int | None

    def describe(self) -> str:
        return f"{self.rows} rows" if self.rows is not None else _days(self.ns or 0)


def _days(ns: int) -> str:
    return f"{ns / _NS_PER_UNIT['d']:.6g} days"


def _span(name: str, value: int | str, *, allow_zero: bool) -> _Span:
    if isinstance(value, str):
        ns = parse_duration(value)
        if ns < 0 or (ns == 0 and not allow_zero):
            raise ValueError(
                f"{name} must be a {'non-negative' if allow_zero else 'positive'} "
                f"duration, got {value!r}"
            )
        return _Span(rows=None, ns=ns)
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(
            f"{name} must be a number of rows (int) or a duration string like '90D', got {value!r}"
        )
    rows = int(value)
    if rows < 0 or (rows == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'} rows, got {rows}")
    return _Span(rows=rows, ns=None)


def _timestamps(ts_ns: IntArray) -> IntArray:
    ts = np.asarray(ts_ns)
    if ts.ndim != 1:
        raise ValueError(f"ts_ns must be one-dimensional, got shape {ts.shape}")
    if ts.size == 0:
        raise ValueError("ts_ns is empty")
    if np.issubdtype(ts.dtype, np.datetime64):
        ts = ts.astype("datetime64[ns]").view(np.int64)
    if not np.issubdtype(ts.dtype, np.integer):
        raise ValueError(f"ts_ns must hold integer nanoseconds, got dtype {ts.dtype}")
    ts = ts.astype(np.int64, copy=False)
    if ts.size > 1 and not bool(np.all(np.diff(ts) > 0)):
        raise ValueError("ts_ns must be strictly increasing (one row per timestamp)")
    return ts


def _fold(index: int, ts: IntArray, train: IntArray, test: IntArray) -> Fold:
    return Fold(
        index=index,
        train=train,
        test=test,
        train_start_ns=int(ts[train[0]]),
        train_end_ns=int(ts[train[-1]]),
        test_start_ns=int(ts[test[0]]),
        test_end_ns=int(ts[test[-1]]),
    )


def walk_forward(
    ts_ns: IntArray,
    *,
    train: int | str,
    test: int | str,
    embargo: str | int = "30D",
    anchored: bool = False,
    step: int | str | None = None,
    allow_partial: bool = False,
) -> list[Fold]:
    """Walk-forward train/test windows over a strictly increasing timestamp array.

    ``train``, ``test``, ``embargo`` and ``step`` are each a number of rows (``int``) or a
    calendar duration (``str``: ``"365D"``, ``"90D"``, ``"12h"``, ``"30min"``, see
    :func:`parse_duration`); the units may be mixed. Durations are elapsed time on the UTC
    axis (a day is 24 h), so one config spans the same calendar period for daily and intraday
    (24/7 or session) data alike. Daily bars stamped at local midnight move by the DST hour on
    that axis, so a bar can fall on either side of a window edge that meets its date.

    Layout (all row ranges half-open ``[lo, hi)``):

    1. The first training window starts at row 0 and spans ``train`` (rows, or the rows with
       ``ts < ts[0] + train``). The first test window starts at the first row after the
       embargo: ``embargo`` rows later, or the first row with ``ts >= last_train_ts +
       embargo``.
    2. Test window k starts ``k * step`` after the first one (``step`` rows later, or at the
       first row with ``ts >= first_test_ts + k * step``) and spans ``test`` (rows, or the
       rows with ``ts < start + test``). ``step`` defaults to ``test``, so test windows tile
       the data. They never overlap: a ``step`` shorter than ``test`` raises.
    3. Each fold's training window ends at the last row that is at least ``embargo`` before its
       test window (``embargo`` rows before it, or ``ts <= first_test_ts - embargo``). Rolling
       (``anchored=False``): it spans ``train`` back from there (the last ``train`` rows, or
       the rows with ``ts > last_train_ts - train``). Anchored: it starts at row 0.

    Hence, for every fold, ``test_start_ns - train_end_ns >= embargo`` (duration embargo) or
    exactly ``embargo`` rows separate train and test (row embargo); training rows always
    precede the test rows (``"0D"`` or ``0``: no gap), and the default
    ``embargo="30D"`` keeps 30 calendar days between them for any bar frequency.

    A final test window that the data ends inside (fewer than ``test`` rows, or no row at or
    after its end time) is dropped unless ``allow_partial``; duration test windows that fall
    entirely in a data gap are skipped. Folds are numbered consecutively.

    Raises ``ValueError`` for invalid specs, unsorted timestamps, or when not a single fold
    fits (the message gives the data length and the window sizes).

    Reference: M. López de Prado (2018), *Advances in Financial Machine Learning*, ch. 12.1
    (walk-forward) and ch. 7.4.2 (embargo).
    """
    ts = _timestamps(ts_ns)
    n = int(ts.size)
    tr = _span("train", train, allow_zero=False)
    te = _span("test", test, allow_zero=False)
    em = _span("embargo", embargo, allow_zero=True)
    st = te if step is None else _span("step", step, allow_zero=False)
    if st.rows is not None and te.rows is not None and st.rows < te.rows:
        raise ValueError(
            f"step ({st.rows} rows) must be >= test ({te.rows} rows): test windows may not overlap"
        )
    if st.ns is not None and te.ns is not None and st.ns < te.ns:
        raise ValueError(
            f"step ({step!r}) must be >= test ({test!r}): test windows may not overlap"
        )

    # 1. first training window (forward from row 0) and the first test row after the embargo
    if tr.rows is not None:
        first_train_hi = tr.rows
    else:
        assert tr.ns is not None
        first_train_hi = int(np.searchsorted(ts, ts[0] + tr.ns, side="left"))
    if first_train_hi > n:
        first_train_hi = n + 1  # does not fit; reported below
    if em.rows is not None:
        first_test_lo = first_train_hi + em.rows
    elif first_train_hi <= n:
        assert em.ns is not None
        after = int(np.searchsorted(ts, ts[first_train_hi - 1] + em.ns, side="left"))
        first_test_lo = max(first_train_hi, after)
    else:
        first_test_lo = n
    if first_test_lo >= n:
        raise ValueError(
            f"walk_forward: train ({tr.describe()}) + embargo ({em.describe()}) leaves no rows "
            f"for a test window in {n} rows spanning {_days(int(ts[-1] - ts[0]))}"
        )

    # 2. test windows on the step grid: (lo, hi) row ranges, complete ones (or all if partial)
    windows: list[tuple[int, int]] = []
    k = 0
    while True:
        if st.rows is not None:
            test_lo = first_test_lo + k * st.rows
            if test_lo >= n:
                break
            nominal_start = int(ts[test_lo])
        else:
            assert st.ns is not None
            nominal_start = int(ts[first_test_lo]) + k * st.ns
            test_lo = int(np.searchsorted(ts, nominal_start, side="left"))
            if test_lo >= n:
                break
        k += 1
        if te.rows is not None:
            complete = test_lo + te.rows <= n
            test_hi = min(test_lo + te.rows, n)
        else:
            assert te.ns is not None
            test_hi = int(np.searchsorted(ts, nominal_start + te.ns, side="left"))
            complete = test_hi < n
        if not complete and not allow_partial:
            break
        if test_hi > test_lo:  # a duration window inside a data gap has no rows: skip it
            windows.append((test_lo, test_hi))
        if test_hi >= n:
            break
    for (_, hi), (lo, _) in itertools.pairwise(windows):
        if lo < hi:
            raise ValueError(
                f"step ({step!r}) is shorter than the test window ({test!r}): test windows "
                "may not overlap"
            )

    # 3. the training window of each fold, backward from its test start
    folds: list[Fold] = []
    for test_lo, test_hi in windows:
        if em.rows is not None:
            train_hi = test_lo - em.rows
        else:
            assert em.ns is not None
            before = int(np.searchsorted(ts, ts[test_lo] - em.ns, side="right"))
            train_hi = min(test_lo, before)
        if anchored:
            train_lo = 0
        elif tr.rows is not None:
            train_lo = train_hi - tr.rows
        else:
            assert tr.ns is not None
            train_lo = int(np.searchsorted(ts, ts[train_hi - 1] - tr.ns, side="right"))
        folds.append(
            _fold(
                len(folds),
                ts,
                np.arange(train_lo, train_hi, dtype=np.int64),
                np.arange(test_lo, test_hi, dtype=np.int64),
            )
        )

    if not folds:
        raise ValueError(
            f"walk_forward: no complete test window ({te.describe()}) fits after train "
            f"({tr.describe()}) + embargo ({em.describe()}) in {n} rows spanning "
            f"{_days(int(ts[-1] - ts[0]))}; shorten the windows or pass allow_partial=True"
        )
    return folds


def purged_kfold(
    ts_ns: IntArray,
    label_end_ns: IntArray | None = None,
    *,
    n_splits: int = 5,
    embargo: str | int = 0,
) -> list[Fold]:
    r"""Purged k-fold cross-validation with an embargo (López de Prado 2018, ch. 7).

    Row i carries a label observed over the closed interval :math:`[t_i, e_i]` with
    :math:`t_i` = ``ts_ns[i]`` and :math:`e_i` = ``label_end_ns[i]`` (default: :math:`e_i =
    t_i`, a label known at its own timestamp). The rows are cut into ``n_splits`` contiguous
    test folds of (nearly) equal size (``numpy.array_split``, no shuffling). For a test fold
    with rows :math:`j_0..j_1`, let :math:`T_0 = t_{j_0}` and :math:`T_1 = \max_{j_0 \le j \le
    j_1} e_j`, the span over which the test labels are observed. A row i outside the fold is
    kept for training unless

    * **purged**: its label interval overlaps the test span,
      :math:`t_i \le T_1 \text{ and } e_i \ge T_0` (section 7.4.1), or
    * **embargoed**: it follows the test span too closely (section 7.4.2): with a duration
      ``embargo`` :math:`h`, :math:`T_1 < t_i \le T_1 + h`; with an ``int`` embargo of h rows,
      it is one of the first h rows with :math:`t_i > T_1`.

    Consequently no training row time lies within :math:`[T_0 - H, T_1 + h]` when every label
    spans at most :math:`H`. The training set of a middle fold lies on both sides of it;
    ``Fold.train_start_ns``/``train_end_ns`` are its first and last row times.

    Raises ``ValueError`` for ``n_splits`` not in ``[2, len(ts_ns)]``, unsorted timestamps,
    ``label_end_ns`` of the wrong shape or ending before its row, a negative embargo, or a fold
    left with no training rows.

    Reference: M. López de Prado (2018), *Advances in Financial Machine Learning*, Wiley,
    ch. 7.4 (snippets 7.1-7.3, ``PurgedKFold``).
    """
    ts = _timestamps(ts_ns)
    n = int(ts.size)
    if isinstance(n_splits, bool) or not isinstance(n_splits, int | np.integer):
        raise ValueError(f"n_splits must be an int, got {n_splits!r}")
    if not 2 <= int(n_splits) <= n:
        raise ValueError(f"n_splits must be between 2 and the number of rows ({n}), got {n_splits}")
    if label_end_ns is None:
        ends = ts
    else:
        ends_raw = np.asarray(label_end_ns)
        if ends_raw.shape != ts.shape:
            raise ValueError(
                f"label_end_ns must have the shape of ts_ns {ts.shape}, got {ends_raw.shape}"
            )
        if np.issubdtype(ends_raw.dtype, np.datetime64):
            ends_raw = ends_raw.astype("datetime64[ns]").view(np.int64)
        if not np.issubdtype(ends_raw.dtype, np.integer):
            raise ValueError(
                f"label_end_ns must hold integer nanoseconds, got dtype {ends_raw.dtype}"
            )
        ends = ends_raw.astype(np.int64, copy=False)
        if bool(np.any(ends < ts)):
            first = int(np.flatnonzero(ends < ts)[0])
            raise ValueError(f"label_end_ns[{first}] is before ts_ns[{first}]")
    em = _span("embargo", embargo, allow_zero=True)

    rows = np.arange(n, dtype=np.int64)
    folds: list[Fold] = []
    for k, test in enumerate(np.array_split(rows, int(n_splits))):
        t0 = int(ts[test[0]])
        t1 = int(ends[test].max())
        keep = (ts > t1) | (ends < t0)  # purge: label interval overlaps [t0, t1]
        keep[test] = False
        if em.rows is not None:
            after = int(np.searchsorted(ts, t1, side="right"))
            keep[after : after + em.rows] = False
        else:
            assert em.ns is not None
            keep &= ~((ts > t1) & (ts <= t1 + em.ns))
        train = rows[keep]
        if train.size == 0:
            raise ValueError(
                f"purged_kfold: fold {k} has no training rows left after purging and embargo; "
                "use more splits, shorter labels or a shorter embargo"
            )
        folds.append(_fold(k, ts, train, test))
    return folds
