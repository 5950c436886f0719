"""Row gates: vectorized checks that return the rows of a frame that fail, with a reason.

Each gate takes a frame already in its kind's schema and returns the failing rows with two more
columns, ``row`` (the 0-based input index) and ``reason``; a row failing two ways in one gate
appears twice. Gates look at the given frame only, in its given row order.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from tradestack.data.catalog.schema import AGGRESSORS, BOOK_SIDES, base_kind
from tradestack.data.validation.config import ValidationConfig
from tradestack.data.validation.report import ROW_INDEX

PRICES = {
    "book": ("price",),
    "trades": ("price",),
    "quotes": ("bid_price", "ask_price"),
    "bars": ("open", "high", "low", "close"),
    "funding": ("mark_price",),
}
SIZES = {
    "book": ("size",),
    "trades": ("size",),
    "quotes": ("bid_size", "ask_size"),
    "bars": ("volume",),
    "funding": (),
}
# 1.4826 × MAD and 1.2533 × mean absolute deviation both estimate σ of normal data.
_MAD_SCALE = 1.4826
_MEAN_AD_SCALE = 1.2533

Gate = Callable[[pl.DataFrame, str, ValidationConfig], pl.DataFrame]


def _failing(frame: pl.DataFrame, checks: dict[str, pl.Expr]) -> pl.DataFrame:
    """Rows matching each check's mask, tagged with the check's name as ``reason``."""
    indexed = frame.with_row_index(ROW_INDEX).with_columns(pl.col(ROW_INDEX).cast(pl.Int64))
    parts = [
        indexed.filter(mask.fill_null(False)).with_columns(pl.lit(reason).alias("reason"))
        for reason, mask in checks.items()
    ]
    if not parts:
        return indexed.clear().with_columns(pl.lit("").alias("reason"))
    return pl.concat(parts)


def _any(columns: tuple[str, ...], test: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
    return pl.any_horizontal([test(pl.col(c)) for c in columns])


def check_values(frame: pl.DataFrame, kind: str, config: ValidationConfig) -> pl.DataFrame:
    """NaN/inf, zero or negative prices; NaN or negative sizes; unknown side or aggressor.

    A funding row's ``mark_price`` may be 0 (unknown) but not negative or NaN.
    """
    base = base_kind(kind)
    prices, sizes = PRICES[base], SIZES[base]
    checks = {"nan_price": _any(prices, lambda c: ~c.is_finite())}
    if base != "funding":
        checks["zero_price"] = _any(prices, lambda c: c == 0)
    checks["negative_price"] = _any(prices, lambda c: c < 0)
    if sizes:
        checks["nan_size"] = _any(sizes, lambda c: ~c.is_finite())
        checks["negative_size"] = _any(sizes, lambda c: c < 0)
    if base == "funding":
        checks["nan_rate"] = ~pl.col("rate").is_finite()
    if base == "book":
        checks["bad_side"] = ~pl.col("side").is_in(BOOK_SIDES)
    if base == "trades":
        checks["bad_aggressor"] = ~pl.col("aggressor").is_in(AGGRESSORS)
    return _failing(frame, checks)


def check_ohlc(frame: pl.DataFrame, kind: str, config: ValidationConfig) -> pl.DataFrame:
    """Bars whose high is below the low or whose high/low do not enclose open and close."""
    if base_kind(kind) != "bars":
        return _failing(frame, {})
    o, h, lo, c = (pl.col(n) for n in ("open", "high", "low", "close"))
    bad = (h < lo) | (h < pl.max_horizontal(o, c)) | (lo > pl.min_horizontal(o, c))
    return _failing(frame, {"inconsistent_ohlc": bad})


def check_order(frame: pl.DataFrame, kind: str, config: ValidationConfig) -> pl.DataFrame:
    """Rows whose ``ts_event_ns`` is earlier than some row before them."""
    ts = pl.col("ts_event_ns")
    return _failing(frame, {"out_of_order": ts < ts.cum_max().shift(1)})


def check_duplicates(frame: pl.DataFrame, kind: str, config: ValidationConfig) -> pl.DataFrame:
    """Repeats of an earlier row; the first occurrence stays clean.

    A repeat (``duplicate``) has the same ``ts_event_ns`` and values as an earlier row
    (``ts_recv_ns`` is not compared: a replayed message arrives later). Special cases:

    - trades with a ``trade_id``: an id seen before is ``duplicate_trade_id``;
    - book: a row is a repeat only when the previous update of the same level (side, price) at
      the same time and sequence set the same size, so ``0, 5, 0`` on one level stays intact;
    - bars and funding hold one value per timestamp: a later row with a seen timestamp but
      other values is ``duplicate_ts``.
    """
    base = base_kind(kind)
    if base == "book":
        level = ["ts_event_ns", "sequence", "is_snapshot", "side", "price"]
        same = pl.col("size") == pl.col("size").shift(1).over(level)
        return _failing(frame, {"duplicate": same})
    values = [c for c in frame.columns if c != "ts_recv_ns"]
    repeat = ~pl.struct(values).is_first_distinct()
    if base in ("bars", "funding"):
        seen_ts = ~pl.col("ts_event_ns").is_first_distinct()
        return _failing(frame, {"duplicate": repeat, "duplicate_ts": seen_ts & ~repeat})
    if base != "trades":
        return _failing(frame, {"duplicate": repeat})
    has_id = pl.col("trade_id") != ""
    seen_id = ~pl.col("trade_id").is_first_distinct()
    return _failing(frame, {"duplicate": ~has_id & repeat, "duplicate_trade_id": has_id & seen_id})


def message_ids(frame: pl.DataFrame) -> pl.Series:
    """Book message number of each row: a message ends at a ``batch_end`` row."""
    ends = frame.get_column("batch_end")
    return ends.shift(1, fill_value=False).cast(pl.Int64).cum_sum().alias("_message")


def check_crossed(frame: pl.DataFrame, kind: str, config: ValidationConfig) -> pl.DataFrame:
    """Quotes with bid above (``crossed``) or equal to (``locked``) the ask; book snapshots
    whose best bid (highest bid level with size > 0) is above or equal to their best ask
    (every row of such a snapshot message is flagged)."""
    base = base_kind(kind)
    if base == "quotes":
        bid, ask = pl.col("bid_price"), pl.col("ask_price")
        return _failing(frame, {"crossed": bid > ask, "locked": bid == ask})
    if base != "book":
        return _failing(frame, {})
    live = pl.col("is_snapshot") & (pl.col("size") > 0)
    best_bid = pl.col("price").filter(live & (pl.col("side") == "bid")).max().over("_message")
    best_ask = pl.col("price").filter(live & (pl.col("side") == "ask")).min().over("_message")
    snapshot = pl.col("is_snapshot").any().over("_message")
    marked = frame.with_columns(message_ids(frame)).with_columns(
        (snapshot & (best_bid > best_ask)).alias("_crossed"),
        (snapshot & (best_bid == best_ask)).alias("_locked"),
    )
    found = _failing(marked, {"crossed": pl.col("_crossed"), "locked": pl.col("_locked")})
    return found.drop("_message", "_crossed", "_locked")


def check_sequence(frame: pl.DataFrame, kind: str, config: ValidationConfig) -> pl.DataFrame:
    """Book rows whose non-zero ``sequence`` is below an earlier row's (the venue went back).

    A snapshot starts a new count: venues whose numbering restarts on reconnect (Coinbase's
    ``sequence_num``) send one before the new numbers, and must not be flagged for it.
    """
    if base_kind(kind) != "book" or config.book_sequence == "off":
        return _failing(frame, {})
    snapshot = pl.col("is_snapshot")
    epoch = (snapshot & ~snapshot.shift(1, fill_value=False)).cum_sum()
    seq = pl.when(pl.col("sequence") != 0).then(pl.col("sequence"))
    previous = seq.cum_max().shift(1).forward_fill().over(epoch)
    return _failing(frame, {"sequence_backwards": seq < previous})


OUTLIER_PRICE = {
    "trades": pl.col("price"),
    "quotes": (pl.col("bid_price") + pl.col("ask_price")) / 2,
    "bars": pl.col("close"),
    "funding": pl.col("mark_price"),
}


def check_outliers(frame: pl.DataFrame, kind: str, config: ValidationConfig) -> pl.DataFrame:
    """Isolated price spikes by a robust z-score of log returns.

    Over the rows with a finite positive price (trades: price, quotes: mid, bars: close,
    funding: mark price; book levels are not a price series), in row order, each row has an
    incoming and an outgoing log return, scored as ``(r - median) / (1.4826 × MAD)`` (when the
    MAD is 0, e.g. mostly unchanged prices, ``1.2533 × mean absolute deviation`` is the scale;
    when both are 0 nothing is flagged). A return is extreme when its score exceeds
    ``outlier_threshold`` and it moves more than ``outlier_min_return`` from the median (tick
    data has mostly zero or one-tick returns, so real sweeps score far above 10). A row is an
    ``outlier`` when both its returns are extreme with opposite signs (a spike that reverts);
    the first and last rows, which have one return, are judged on it alone. A jump that
    persists is a real move and is kept.
    """
    price = OUTLIER_PRICE.get(base_kind(kind))
    if price is None:
        return _failing(frame, {})
    indexed = frame.with_row_index(ROW_INDEX).with_columns(price.alias("_p"))
    valid = indexed.filter(pl.col("_p").is_finite() & (pl.col("_p") > 0))
    returns = valid.get_column("_p").log().diff()
    body = returns.drop_nulls()
    if body.len() < config.outlier_min_returns:
        return _failing(frame, {})
    values = body.to_numpy()
    median = float(np.median(values))
    deviation = np.abs(values - median)
    scale = _MAD_SCALE * float(np.median(deviation))
    if scale == 0:
        scale = _MEAN_AD_SCALE * float(deviation.mean())
    if scale == 0:
        return _failing(frame, {})
    # A return counts as extreme past threshold × scale, and never below the floor.
    limit = max(config.outlier_threshold, config.outlier_min_return / scale)
    z_in = (returns - median) / scale
    z_out = z_in.shift(-1)
    big_in, big_out = z_in.abs() > limit, z_out.abs() > limit
    spike = (big_in & big_out & (z_in.sign() != z_out.sign())).fill_null(False)
    spike = spike | (z_in.is_null() & big_out.fill_null(False))
    spike = spike | (z_out.is_null() & big_in.fill_null(False))
    mask = np.zeros(frame.height, dtype=bool)
    mask[valid.get_column(ROW_INDEX).filter(spike).to_numpy()] = True
    return _failing(frame, {"outlier": pl.lit(pl.Series(mask))})


ROW_GATES: dict[str, Gate] = {
    "values": check_values,
    "ohlc": check_ohlc,
    "order": check_order,
    "duplicates": check_duplicates,
    "crossed": check_crossed,
    "sequence": check_sequence,
    "outliers": check_outliers,
}
"""Gates that quarantine rows, by the name used in ``ValidationConfig.disabled``."""
