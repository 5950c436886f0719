"""Feature sets from config: shared sub-computations run once, the batch and incremental forms
agree to 1e-9 for every feature kind, and no feature looks ahead."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tradestack.engine.pipeline.sampling import BookSteps
from tradestack.features.featureset import FeatureSet, FeatureSpecError
from tradestack.features.registry import BAR_COLUMNS, BOOK_COLUMNS, KINDS

# every registered kind, with parameters; technical kinds read the mid on book steps
BOOK_SET: dict[str, dict[str, Any]] = {
    "sma": {"kind": "sma", "input": "mid", "period": 5},
    "ema": {"kind": "ema", "input": "mid", "period": 5},
    "rsi": {"kind": "rsi", "input": "mid", "period": 14},
    "macd_line": {
        "kind": "macd",
        "input": "mid",
        "fast": 3,
        "slow": 8,
        "signal": 4,
        "output": "line",
    },
    "macd_hist": {
        "kind": "macd",
        "input": "mid",
        "fast": 3,
        "slow": 8,
        "signal": 4,
        "output": "histogram",
    },
    "bb_mid": {"kind": "bollinger", "input": "mid", "period": 10, "output": "middle"},
    "returns": {"kind": "returns", "input": "mid", "period": 10},
    "vol": {"kind": "rolling_volatility", "input": "mid", "period": 20},
    "mid_f": {"kind": "mid"},
    "spread": {"kind": "spread_bps"},
    "imb": {"kind": "book_imbalance", "levels": 5},
    "micro": {"kind": "microprice"},
    "micro_dev": {"kind": "microprice_dev_bps"},
    "vwap": {"kind": "vwap", "window": 20},
    "vwap_dev": {"kind": "vwap_deviation", "window": 20},
    "flow": {"kind": "trade_flow_imbalance", "window": 20},
    "rv": {"kind": "realized_volatility", "window": 20},
    "vpin": {"kind": "vpin", "bucket_volume": 2.0, "n_buckets": 10},
    "kyle": {"kind": "kyle_lambda", "window": 30},
    "xvenue": {"kind": "cross_venue_spread_bps"},
    "imb_z": {"kind": "zscore", "input": "imb", "period": 20},
}
BAR_SET: dict[str, dict[str, Any]] = {
    "sma": {"kind": "sma", "period": 10},
    "ema": {"kind": "ema", "period": 10},
    "rsi": {"kind": "rsi", "period": 14},
    "macd": {"kind": "macd", "output": "signal"},
    "bb_up": {"kind": "bollinger", "period": 20, "output": "upper"},
    "bb_lo": {"kind": "bollinger", "period": 20, "output": "lower"},
    "atr": {"kind": "atr", "period": 14},
    "returns": {"kind": "returns", "period": 5},
    "vol": {"kind": "rolling_volatility", "period": 20},
    "z": {"kind": "zscore", "period": 20},
}
# z-scores and bands are ill-conditioned where the window is nearly flat (see test_technical)
CONDITIONED = {"bb_up", "bb_lo", "z"}
BOOK_BASE = (*BOOK_COLUMNS, "ref_mid")


def _book_frame(steps: BookSteps) -> dict[str, np.ndarray]:
    frame = dict(steps.columns)
    rng = np.random.default_rng(3)
    # a second venue's mid: the same market a few ticks away
    frame["ref_mid"] = frame["mid"] + rng.integers(-5, 6, len(frame["mid"])) * 0.1
    return frame


def _rows(frame: dict[str, np.ndarray], base: tuple[str, ...]) -> list[list[Any]]:
    cols = [frame[c] for c in base]
    n = len(cols[0])
    return [[c[i].tolist() if c.ndim == 2 else float(c[i]) for c in cols] for i in range(n)]


def _check_parity(
    entries: dict[str, dict[str, Any]], frame: dict[str, np.ndarray], base: tuple[str, ...]
) -> None:
    fs = FeatureSet.from_config(entries, base)
    batch = fs.batch(frame)
    inc = fs.incremental()
    got = np.array([inc.update(row) for row in _rows(frame, base)])
    for j, name in enumerate(fs.names):
        b, g = batch[name], got[:, j]
        assert np.array_equal(np.isnan(b), np.isnan(g)), f"{name}: warm-up differs"
        ok = ~np.isnan(b)
        assert ok.sum() > len(b) // 2, f"{name}: mostly NaN"
        if name in CONDITIONED:
            close = frame["close"]
            ok &= np.abs(batch.get("bb_up", b) - batch.get("bb_lo", b)) > 4e-3 * close
        np.testing.assert_allclose(g[ok], b[ok], rtol=1e-9, atol=1e-9, err_msg=name)


def test_every_kind_is_covered() -> None:
    used = {e["kind"] for e in [*BOOK_SET.values(), *BAR_SET.values()]}
    assert used == set(KINDS)


def test_book_features_batch_equals_incremental(book_steps: BookSteps) -> None:
    _check_parity(BOOK_SET, _book_frame(book_steps), BOOK_BASE)


def test_bar_features_batch_equals_incremental(bar_columns: dict[str, np.ndarray]) -> None:
    _check_parity(BAR_SET, bar_columns, BAR_COLUMNS)


@pytest.mark.parametrize("name", sorted(BOOK_SET))
def test_no_book_feature_looks_ahead(book_steps: BookSteps, name: str) -> None:
    fs = FeatureSet.from_config({name: BOOK_SET[name]} | _deps(name), BOOK_BASE)
    frame = _book_frame(book_steps)
    full = fs.batch(frame)[name]
    for t in (40, 333, 1000, len(full) - 2):
        cut = fs.batch({k: v[: t + 1] for k, v in frame.items()})[name]
        np.testing.assert_allclose(cut[t], full[t], rtol=1e-12, atol=1e-12, err_msg=f"t={t}")


@pytest.mark.parametrize("name", sorted(BAR_SET))
def test_no_bar_feature_looks_ahead(bar_columns: dict[str, np.ndarray], name: str) -> None:
    fs = FeatureSet.from_config({name: BAR_SET[name]}, BAR_COLUMNS)
    full = fs.batch(bar_columns)[name]
    for t in (30, 200, 500, len(full) - 2):
        cut = fs.batch({k: v[: t + 1] for k, v in bar_columns.items()})[name]
        np.testing.assert_allclose(cut[t], full[t], rtol=1e-12, atol=1e-12, err_msg=f"t={t}")


def _deps(name: str) -> dict[str, dict[str, Any]]:
    source = BOOK_SET[name].get("input")
    return {source: BOOK_SET[source]} if source in BOOK_SET else {}


def test_identical_computations_run_once() -> None:
    fs = FeatureSet.from_config(
        {
            "upper": {"kind": "bollinger", "period": 20, "output": "upper"},
            "lower": {"kind": "bollinger", "period": 20, "output": "lower"},
            "sma_a": {"kind": "sma", "period": 3},
            "sma_b": {"kind": "sma", "period": 3},
            "sma_c": {"kind": "sma", "period": 4},
            "z": {"kind": "zscore", "input": "sma_a", "period": 5},
        },
        BAR_COLUMNS,
    )
    assert len(fs.names) == 6
    assert fs.n_computations == 4  # bollinger, sma(3), sma(4), zscore(sma(3))


def test_a_feature_may_read_a_feature_declared_after_it(
    bar_columns: dict[str, np.ndarray],
) -> None:
    fs = FeatureSet.from_config(
        {
            "z": {"kind": "zscore", "input": "fast", "period": 5},
            "fast": {"kind": "ema", "period": 3},
        },
        BAR_COLUMNS,
    )
    out = fs.batch(bar_columns)
    assert np.isfinite(out["z"][20:]).all()


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"a": {"kind": "smaa", "period": 3}}, "unknown kind 'smaa'; did you mean 'sma'"),
        ({"a": {"kind": "sma", "perid": 3}}, "unknown parameter 'perid'; did you mean 'period'"),
        ({"a": {"kind": "vwap"}}, "needs window"),
        ({"a": {"kind": "sma", "input": "clse", "period": 3}}, "did you mean 'close'"),
        ({"a": {"kind": "macd"}}, "output must be one of line, signal, histogram"),
        ({"a": {"kind": "sma", "period": 3, "output": "x"}}, "has one output"),
        (
            {
                "a": {"kind": "sma", "input": "b", "period": 3},
                "b": {"kind": "ema", "input": "a", "period": 3},
            },
            "cycle",
        ),
        ({"close": {"kind": "sma", "period": 3}}, "shadow base columns: close"),
        ({"a": {"kind": "sma", "inputs": {"y": "close"}, "period": 3}}, "no input 'y'"),
        ({"a": "sma"}, "expected a mapping"),
    ],
)
def test_bad_declarations_are_named(entries: dict[str, Any], message: str) -> None:
    with pytest.raises(FeatureSpecError, match=message.replace("(", r"\(")):
        FeatureSet.from_config(entries, BAR_COLUMNS)


def test_a_missing_base_column_is_named() -> None:
    fs = FeatureSet.from_config({"a": {"kind": "atr", "period": 3}}, BAR_COLUMNS)
    with pytest.raises(ValueError, match="frame lacks columns open, high"):
        fs.batch({"close": np.ones(5), "low": np.ones(5), "volume": np.ones(5)})


def test_leading_nans_are_skipped_as_talib_does(bar_columns: dict[str, np.ndarray]) -> None:
    """A series that starts with missing values (a book not yet two-sided, a late listing)."""
    frame = {k: np.concatenate([np.full(7, np.nan), v[:300]]) for k, v in bar_columns.items()}
    _check_parity(BAR_SET, frame, BAR_COLUMNS)
    fs = FeatureSet.from_config(BAR_SET, BAR_COLUMNS)
    shifted, plain = fs.batch(frame), fs.batch({k: v[:300] for k, v in bar_columns.items()})
    for name in fs.names:  # the same numbers, seven steps later
        np.testing.assert_allclose(shifted[name][7:], plain[name], rtol=1e-12, err_msg=name)


def test_a_gap_restarts_price_indicators_in_both_forms(
    bar_columns: dict[str, np.ndarray],
) -> None:
    """A missing value in the middle (a feature that is NaN for a while, a halted market): the
    indicator warms up again after it, instead of TA-Lib's NaN to the end of the series."""
    frame = {k: v[:400].copy() for k, v in bar_columns.items()}
    for k in frame:
        frame[k][[60, 61, 250]] = np.nan
    _check_parity(BAR_SET, frame, BAR_COLUMNS)
    out = FeatureSet.from_config(BAR_SET, BAR_COLUMNS).batch(frame)
    assert np.isfinite(out["sma"][300:]).all() and np.isfinite(out["macd"][350:]).all()
    fresh = FeatureSet.from_config(BAR_SET, BAR_COLUMNS).batch(
        {k: v[251:] for k, v in frame.items()}
    )
    for name in BAR_SET:  # after the last gap: exactly a fresh start
        np.testing.assert_array_equal(out[name][251:], fresh[name], err_msg=name)


def test_an_indicator_over_a_feature_with_gaps(book_steps: BookSteps) -> None:
    """The SMA of a VWAP deviation over 2 steps (NaN whenever no trade happened)."""
    entries = {
        "dev": {"kind": "vwap_deviation", "window": 2},
        "dev_sma": {"kind": "sma", "input": "dev", "period": 3},
        "dev_rsi": {"kind": "rsi", "input": "dev", "period": 5},
    }
    frame = _book_frame(book_steps)
    fs = FeatureSet.from_config(entries, BOOK_BASE)
    batch = fs.batch(frame)
    assert np.isnan(batch["dev"]).mean() > 0.1
    inc = fs.incremental()
    got = np.array([inc.update(row) for row in _rows(frame, BOOK_BASE)])
    for j, name in enumerate(fs.names):
        np.testing.assert_allclose(got[:, j], batch[name], rtol=1e-9, atol=1e-12, err_msg=name)
