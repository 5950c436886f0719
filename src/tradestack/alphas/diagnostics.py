"""How good a score was: hit rate and information coefficient against forward returns."""

from __future__ import annotations

import numpy as np

from tradestack.core.series import FloatArray


def forward_returns(close: FloatArray, horizon: int) -> FloatArray:
    """``close[t + horizon] / close[t] - 1``; NaN for the last ``horizon`` rows."""
    x = np.asarray(close, dtype=np.float64)
    out = np.full(len(x), np.nan)
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 step, got {horizon}")
    if len(x) > horizon:
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:-horizon] = x[horizon:] / x[:-horizon] - 1.0
    return out


def score_quality(score: FloatArray, forward_return: FloatArray) -> dict[str, float | int]:
    """Hit rate (share of rows with a non-zero score and move where their signs agree) and IC
    (Spearman rank correlation of score and forward return) over rows where both are known."""
    s = np.asarray(score, dtype=np.float64)
    r = np.asarray(forward_return, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(r)
    directional = ok & (s != 0) & (r != 0)
    n_dir = int(directional.sum())
    hits = int((np.sign(s[directional]) == np.sign(r[directional])).sum())
    from scipy.stats import spearmanr

    ic = float("nan")
    if ok.sum() > 2 and np.ptp(s[ok]) > 0 and np.ptp(r[ok]) > 0:
        ic = float(spearmanr(s[ok], r[ok]).statistic)
    return {
        "n": int(ok.sum()),
        "n_directional": n_dir,
        "hit_rate": hits / n_dir if n_dir else float("nan"),
        "ic": ic,
    }
