"""Walk-forward optimisation: folds, per-fold choice on the train window only, the stitched
out-of-sample curve, the look-ahead check and what the command writes."""

from __future__ import annotations

import csv
import math
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tradestack.cli import main
from tradestack.core.series import BarSeries
from tradestack.engine.config import load_config
from tradestack.engine.loading import import_strategy
from tradestack.research.splits import walk_forward
from tradestack.research.sweep import grid, parse_axis, run_sweep, sort_rows
from tradestack.research.walkforward import (
    LookAheadError,
    Market,
    WalkForwardError,
    WalkForwardResult,
    check_lookahead,
    iso,
    run_walk_forward,
    slice_bars,
    timeline,
)
from tradestack.strategies.sma_cross import SmaCross

GRID = ["fast=5,10,20", "slow=30,60"]
NS_PER_DAY = 86_400 * 10**9

LEAKY = '''
from __future__ import annotations

import math

import numpy as np

from tradestack.engine.vectorized.signals import sma_stream
from tradestack.strategies.sma_cross import SmaCross


class LeakySma(SmaCross):
    """SmaCross whose weights read the NEXT bar's close: a look-ahead bug."""

    def target_weights(self, bars):
        out = {}
        for inst, series in bars.items():
            close = np.roll(np.asarray(series.close, dtype=np.float64), -1)
            fast, slow = sma_stream(close, self.fast), sma_stream(close, self.slow)
            prev_fast = np.concatenate(([math.nan], fast[:-1]))
            prev_slow = np.concatenate(([math.nan], slow[:-1]))
            w = np.full(len(series), math.nan)
            w[(prev_fast > prev_slow) & (fast < slow)] = -self.fraction
            w[(prev_fast < prev_slow) & (fast > slow)] = self.fraction
            out[inst] = w
        return out
'''


def _config(
    data: Path, strategy: str = "tradestack.strategies.sma_cross:SmaCross"
) -> dict[str, Any]:
    return {
        "strategy": strategy,
        "params": {"fast": 10, "slow": 30, "fraction": 0.95},
        "data": [{"path": str(data), "instrument": "GOOG@nasdaq"}],
        "venue": {"fill_at": "next_open", "slippage_bps": 2, "taker_fee_bps": 1},
        "starting_cash": 100000,
        "periods_per_year": 252,
    }


@pytest.fixture(scope="module")
def goog_csv(shared_data: Path) -> Path:
    path = shared_data / "bars" / "equities" / "backtesting_GOOG.csv"
    if not path.is_file():
        pytest.skip(f"shared GOOG daily bars not found at {path}")
    return path


@pytest.fixture(scope="module")
def goog(goog_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("wf")
    path = folder / "goog.yaml"
    path.write_text(yaml.safe_dump(_config(goog_csv)))
    return path


@pytest.fixture(scope="module")
def result(goog: Path) -> WalkForwardResult:
    raw = yaml.safe_load(goog.read_text())
    return run_walk_forward(
        raw, goog.parent, grid([parse_axis(a) for a in GRID]), train="365D", test="180D"
    )


def test_folds_come_from_walk_forward_with_the_embargo(
    goog: Path, result: WalkForwardResult
) -> None:
    config, base = load_config(goog)
    ts = timeline(Market.load(config, base).feeds)
    expected = walk_forward(ts, train="365D", test="180D", embargo="30D")
    assert len(result.folds) == len(expected) >= 10
    for got, want in zip(result.folds, expected, strict=True):
        assert got.fold.index == want.index
        assert (got.fold.train_start_ns, got.fold.train_end_ns) == (
            want.train_start_ns,
            want.train_end_ns,
        )
        assert (got.fold.test_start_ns, got.fold.test_end_ns) == (
            want.test_start_ns,
            want.test_end_ns,
        )
        assert got.fold.test_start_ns - got.fold.train_end_ns >= 30 * NS_PER_DAY
        # the kept test curve: the base bar before the window, then exactly the test bars
        assert got.ts_ns[0] < got.fold.test_start_ns
        assert np.array_equal(got.ts_ns[1:], ts[want.test])
        assert got.growth[0] == 1.0


def test_chosen_parameters_equal_an_independent_sweep_of_the_train_window(
    goog_csv: Path, result: WalkForwardResult, tmp_path: Path
) -> None:
    fold = result.folds[3]
    first, last = iso(fold.fold.train_start_ns)[:10], iso(fold.fold.train_end_ns)[:10]
    lines = goog_csv.read_text().splitlines()
    kept = [ln for ln in lines[1:] if first <= ln.split(",")[0] <= last]
    assert len(kept) == len(fold.fold.train)
    train_csv = tmp_path / "train.csv"
    train_csv.write_text("\n".join([lines[0], *kept]) + "\n")
    rows = run_sweep(_config(train_csv), tmp_path, grid([parse_axis(a) for a in GRID]), workers=1)
    best = sort_rows(rows, "sharpe", descending=True)[0]
    assert fold.params == {"fast": best["fast"], "slow": best["slow"]}
    assert fold.train_metric == pytest.approx(best["sharpe"], rel=1e-12)


def test_bars_after_a_train_window_do_not_change_its_choice(
    goog: Path, result: WalkForwardResult
) -> None:
    config, base = load_config(goog)
    market = Market.load(config, base)
    cut = result.folds[4].fold.train_end_ns
    feed = market.feeds[0]
    after = feed.ts_ns > cut
    noise = np.where(after, np.random.default_rng(7).uniform(0.5, 1.5, len(feed)), 1.0)
    scrambled = BarSeries(
        feed.instrument_id,
        feed.ts_ns,
        feed.open * noise,
        feed.high * noise * 1.2,
        feed.low * noise * 0.8,
        feed.close * noise,
        feed.volume,
    )
    raw = yaml.safe_load(goog.read_text())
    again = run_walk_forward(
        raw,
        goog.parent,
        grid([parse_axis(a) for a in GRID]),
        train="365D",
        test="180D",
        market=replace(market, feeds=(scrambled,)),
        lookahead_check=False,
    )
    for old, new in zip(result.folds, again.folds, strict=True):
        if old.fold.train_end_ns <= cut:
            assert new.params == old.params
            assert new.train_metric == old.train_metric
    assert any(o.params != n.params for o, n in zip(result.folds, again.folds, strict=True))


def test_stitched_equity_is_the_product_of_the_window_returns(result: WalkForwardResult) -> None:
    returns = [f.test_return for f in result.folds]
    assert result.oos_growth[0] == 1.0
    assert result.oos_growth[-1] == pytest.approx(math.prod(1 + r for r in returns), rel=1e-12)
    for f in result.folds:
        assert f.test_return == pytest.approx(f.test_metrics.total_return, rel=1e-9, abs=1e-15)
    # each window's stretch of the stitched curve is its own curve scaled by the level before it
    level, pos = 1.0, 1
    for f in result.folds:
        n = len(f.ts_ns) - 1
        assert np.allclose(result.oos_growth[pos : pos + n], level * f.growth[1:], rtol=1e-12)
        assert np.array_equal(result.oos_ts_ns[pos : pos + n], f.ts_ns[1:])
        level *= float(f.growth[-1])
        pos += n
    assert pos == len(result.oos_growth)
    assert np.all(np.diff(result.oos_ts_ns) > 0)


def test_slices_are_inclusive_copies(goog: Path) -> None:
    config, base = load_config(goog)
    feed = Market.load(config, base).feeds[0]
    part = slice_bars(feed, int(feed.ts_ns[10]), int(feed.ts_ns[20]))
    assert np.array_equal(part.ts_ns, feed.ts_ns[10:21])
    assert np.array_equal(part.close, feed.close[10:21])
    assert not np.shares_memory(part.close, feed.close)


def test_leaking_strategy_is_caught(goog_csv: Path, tmp_path: Path) -> None:
    (tmp_path / "leaky.py").write_text(LEAKY)
    config_path = tmp_path / "leaky.yaml"
    config_path.write_text(yaml.safe_dump(_config(goog_csv, "leaky.py:LeakySma")))
    config, base = load_config(config_path)
    market = Market.load(config, base)
    cls = import_strategy("leaky.py:LeakySma", base)
    with pytest.raises(LookAheadError) as caught:
        check_lookahead(market, lambda: cls(fast=10, slow=30))
    assert caught.value.at_ns <= caught.value.cut_ns
    assert str(caught.value).startswith("look-ahead: LeakySma decided differently at ")


def test_cli_fails_a_leaking_strategy_and_passes_the_honest_one(
    goog_csv: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "leaky.py").write_text(LEAKY)
    leaky = tmp_path / "leaky.yaml"
    leaky.write_text(yaml.safe_dump(_config(goog_csv, "leaky.py:LeakySma")))
    args = ["--grid", *GRID, "--train", "365D", "--test", "180D", "--quiet"]
    assert main(["walkforward", str(leaky), *args, "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    pattern = (
        r"look-ahead: LeakySma decided differently at \d{4}-\d\d-\d\dT[\d:]+Z for GOOG@nasdaq "
        r"when bars after \d{4}-\d\d-\d\dT[\d:]+Z were removed — a feature reads data from the "
        r"future"
    )
    assert re.search(pattern, err), err
    assert not (tmp_path / "bad").exists()
    # the check can be skipped
    skip = ["walkforward", str(leaky), *args, "--no-lookahead-check"]
    assert main(skip) == 0

    honest = tmp_path / "honest.yaml"
    honest.write_text(yaml.safe_dump(_config(goog_csv)))
    out = tmp_path / "out"
    assert main(["walkforward", str(honest), *args, "--out", str(out)]) == 0
    assert "look-ahead" not in capsys.readouterr().err
    with (out / "walkforward.csv").open() as fh:
        folds = list(csv.DictReader(fh))
    assert len(folds) >= 10
    assert {
        "fold",
        "train_start",
        "test_end",
        "fast",
        "slow",
        "train_sharpe",
        "test_sharpe",
    } <= set(folds[0])
    with (out / "oos_equity.csv").open() as fh:
        curve = list(csv.DictReader(fh))
    assert float(curve[0]["growth"]) == 1.0
    assert float(curve[0]["equity"]) == 100000.0
    html = (out / "walkforward.html").read_text()
    assert 'id="walkforward-folds"' in html
    assert "Walk-forward folds" in html


def test_event_only_strategy_passes_the_order_check(goog: Path) -> None:
    config, base = load_config(goog)
    market = Market.load(config, base)
    assert check_lookahead(market, lambda: SmaCross(fast=10, slow=30, qty=10)) == "orders"
    assert check_lookahead(market, lambda: SmaCross(fast=10, slow=30)) == "weights"


def test_vectorized_engine_gives_the_same_walk_forward(
    goog: Path, result: WalkForwardResult
) -> None:
    raw = yaml.safe_load(goog.read_text())
    vec = run_walk_forward(
        raw,
        goog.parent,
        grid([parse_axis(a) for a in GRID]),
        train="365D",
        test="180D",
        vectorized=True,
        lookahead_check=False,
    )
    assert [f.params for f in vec.folds] == [f.params for f in result.folds]
    assert np.allclose(vec.oos_growth, result.oos_growth, rtol=1e-9)


def test_order_book_configs_are_refused(
    examples_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = examples_dir / "l2_market_making.yaml"
    code = main(
        ["walkforward", str(path), "--grid", "order_qty=0.01", "--train", "1h", "--test", "1h"]
    )
    assert code == 2
    assert "order-book (book:)" in capsys.readouterr().err


def test_bad_windows_are_an_error(goog: Path) -> None:
    raw = yaml.safe_load(goog.read_text())
    with pytest.raises(WalkForwardError, match="no rows"):
        run_walk_forward(raw, goog.parent, [{"fast": 5}], train="5000D", test="90D")
    with pytest.raises(WalkForwardError, match="loads the data once"):
        run_walk_forward(raw, goog.parent, [{"data.0.path": "x"}], train="365D", test="90D")
