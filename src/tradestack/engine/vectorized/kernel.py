"""The compiled portfolio kernel: target weights in, the bar venue's market-order fills out.

One pass over the merged bar events does, per event, what :class:`~tradestack.engine.backtest.
BacktestEngine` with a :class:`~tradestack.execution.bar_venue.SimulatedBarVenue` does for a
strategy that only calls ``ctx.order_target_percent``:

1. the instrument's working market order fills at the bar's open (marked at the open): the open
   is rounded half-even to the tick, moved against the order by the slippage and rounded away
   from it on the tick grid; a non-positive price or a buying-power shortfall at that price
   cancels it; cash moves by the notional and the taker fee;
2. the instrument is marked at the close;
3. a decision (a bar with a target weight) becomes an order: equity (cash plus open positions
   at their marks, summed in the order the positions opened, as :meth:`Portfolio.equity`) times
   the weight,
   over close times multiplier, rounded toward zero to whole lots, minus the position and the
   open order; then the submit checks in the venue's order (minimum quantity, shorting, minimum
   notional, buying power after the order) accept or reject it;
4. after the last event of a timestamp the equity and gross exposure are recorded, summed in feed
   order as :func:`~tradestack.engine.equity.rebuild_equity` does.

Quantities are whole lots and prices whole ticks (int64). Where the ledger rounds a float through
its shortest ``repr`` as a Decimal (``round_qty``, ``round_price``), the kernel decides on which
side of a grid point the decimal lies by comparing the float with the correctly rounded grid point
``(k * num) / den``: the shortest repr and the float lie on the same side of any short decimal.
Cash and equity are floats (the ledger's cash is an exact Decimal; the two agree to ~1e-15).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# order outcomes
OPEN = 0
FILLED = 1
REJECT_MIN_QTY = 2
REJECT_SHORT = 3
REJECT_MIN_NOTIONAL = 4
REJECT_CASH = 5
CANCEL_PRICE = 6
CANCEL_CASH = 7

# rows of the order table
EVENT = 0
INSTRUMENT = 1
LOTS = 2
STATUS = 3
END = 4  # the event the order ended at (-1 while open)
TICKS = 5  # the fill price in ticks
ORDER_COLUMNS = 6

EXACT = 2.0**52
#: Prices and quantities up to this many grid units have grid points (and midpoints) of at most
#: 15 significant digits, where a float and its shortest repr lie on the same side of each.
MAX_UNITS = 1e14


@njit(cache=True)
def _grid(k: int, num: int, den: int) -> float:
    """The float nearest ``k * num / den`` (correctly rounded while the integers are exact)."""
    return float(k * num) / float(den)


# Below _SURE, ``x * den / num`` is within 2**-12 of the exact ratio of ``Decimal(repr(x))``
# (two roundings and the repr, each under 2**-52 relative); a fraction farther than _MARGIN from
# the decision point decides without the exact comparisons.
_SURE = 2.0**40
_MARGIN = 1.0 / 64.0


@njit(cache=True)
def floor_units(x: float, num: int, den: int) -> int:
    """Largest ``k >= 0`` with ``k * num / den <= Decimal(repr(x))``, for ``x >= 0``."""
    guess = x * den / num
    if not guess < EXACT:
        return math.floor(guess)
    k = math.floor(guess)
    if guess < _SURE and _MARGIN < guess - k < 1.0 - _MARGIN:
        return k
    while k > 0 and _grid(k, num, den) > x:
        k -= 1
    while _grid(k + 1, num, den) <= x:
        k += 1
    return k


@njit(cache=True)
def round_half_even_units(x: float, num: int, den: int) -> int:
    """``Decimal(repr(x)) / (num / den)`` rounded to an integer, half to even, for ``x >= 0``."""
    guess = x * den / num
    if guess < _SURE:
        k = math.floor(guess)
        frac = guess - k
        if frac <= 0.5 - _MARGIN:
            return k
        if frac >= 0.5 + _MARGIN:
            return k + 1
    k = floor_units(x, num, den)
    if not guess < EXACT:
        return k
    mid = float((2 * k + 1) * num) / float(2 * den)
    if x > mid:
        return k + 1
    if x < mid:
        return k
    return k if k % 2 == 0 else k + 1


@njit(cache=True, inline="always")
def _equity(
    cash: float,
    open_list: np.ndarray,
    n_open: int,
    qty_f: np.ndarray,
    mark: np.ndarray,
    mult: np.ndarray,
) -> float:
    total = cash
    for t in range(n_open):
        k = open_list[t]
        total += qty_f[k] * mark[k] * mult[k]
    return total


@njit(cache=True, inline="always")
def _gross_without(
    open_list: np.ndarray,
    n_open: int,
    qty_f: np.ndarray,
    mark: np.ndarray,
    mult: np.ndarray,
    inst: int,
) -> float:
    """``Portfolio.gross_exposure() - Portfolio.exposure(inst)``, as the venue computes it."""
    total = 0.0
    for t in range(n_open):
        k = open_list[t]
        total += abs(qty_f[k] * mark[k] * mult[k])
    own = 0.0
    if qty_f[inst] != 0.0:
        own = abs(qty_f[inst] * mark[inst] * mult[inst])
    return total - own


@njit(cache=True)
def simulate(
    fid: np.ndarray,
    ts: np.ndarray,
    opens: np.ndarray,
    closes: np.ndarray,
    dec_event: np.ndarray,
    dec_weight: np.ndarray,
    tick_num: np.ndarray,
    tick_den: np.ndarray,
    lot_num: np.ndarray,
    lot_den: np.ndarray,
    mult: np.ndarray,
    min_lots: np.ndarray,
    min_notional: np.ndarray,
    fee_bps: np.ndarray,
    slip_num: int,
    slip_den: int,
    allow_short: bool,
    leverage: float,
    starting_cash: float,
    equity_out: np.ndarray,
    gross_out: np.ndarray,
    orders_out: np.ndarray,
    o_fee: np.ndarray,
) -> tuple[int, int, int]:
    """Run the merged events; see the module docstring.

    Per event ``j``: ``fid[j]`` the instrument (an empty ``fid``: one instrument, index 0),
    ``ts[j]`` its time (a timestamp ends where the next event's differs; one instrument
    has strictly increasing times, so every event ends one), ``opens``/``closes``
    its bar. ``dec_event`` lists the events with a decision, strictly increasing, and
    ``dec_weight`` the target fraction of equity each decided at its close. Per
    instrument: tick and lot as exact fractions, multiplier, minimum quantity in lots, minimum
    notional, taker fee in bps. Slippage in bps is ``slip_num / slip_den``.

    Writes the equity per timestamp into ``equity_out`` (and the gross exposure into
    ``gross_out`` when it has a row per event; :func:`exposure` rebuilds it later), and per
    order a row of ``orders_out`` (:data:`ORDER_COLUMNS`) and its fee into ``o_fee``; all are
    allocated by the caller with a row per event. Returns (timestamps, orders, the first event
    whose price or quantity is too many grid units for exact rounding, or -1).
    """
    n = ts.shape[0]
    n_inst = tick_num.shape[0]
    single = fid.shape[0] == 0
    with_gross = gross_out.shape[0] == n
    o_ev = orders_out[EVENT]
    o_inst = orders_out[INSTRUMENT]
    o_lots = orders_out[LOTS]
    o_status = orders_out[STATUS]
    o_end = orders_out[END]
    o_ticks = orders_out[TICKS]
    n_orders = 0

    pos = np.zeros(n_inst, dtype=np.int64)
    qty_f = np.zeros(n_inst)
    pending = np.full(n_inst, -1, dtype=np.int64)  # the instrument's working order, if any
    mark = np.full(n_inst, np.nan)
    open_list = np.empty(n_inst, dtype=np.int64)
    n_open = 0
    cash = starting_cash
    slip_scale = 10_000 * slip_den
    slot = 0
    too_big = -1

    n_dec = dec_event.shape[0]
    d = 0  # the next decision
    j = 0
    while j < n:
        next_dec = dec_event[d] if d < n_dec else n
        if single and pending[0] < 0 and j < next_dec:
            # no fill and no decision before the next decision: only the mark moves (step 4)
            if pos[0] == 0:
                for t in range(j, next_dec):
                    equity_out[t] = cash
                if with_gross:
                    for t in range(j, next_dec):
                        gross_out[t] = 0.0
            else:
                q, m = qty_f[0], mult[0]
                for t in range(j, next_dec):
                    equity_out[t] = cash + q * closes[t] * m
                if with_gross:
                    for t in range(j, next_dec):
                        gross_out[t] = abs(q * closes[t] * m)
            mark[0] = closes[next_dec - 1]
            j = slot = next_dec
            continue
        k = 0 if single else fid[j]
        # 1. the working market order fills at this bar's open
        o = pending[k]
        if o >= 0:
            pending[k] = -1
            mark[k] = opens[j]
            lots = o_lots[o]
            buy = lots > 0
            if opens[j] * tick_den[k] / tick_num[k] >= MAX_UNITS and too_big < 0:
                too_big = j
            ticks = round_half_even_units(opens[j], tick_num[k], tick_den[k])
            if slip_num > 0:
                moved = ticks * (slip_scale + slip_num if buy else slip_scale - slip_num)
                # buys round up, sells down: slippage never becomes price improvement
                ticks = -(-moved // slip_scale) if buy else moved // slip_scale
            o_end[o] = j
            o_ticks[o] = ticks
            if ticks <= 0:
                o_status[o] = CANCEL_PRICE
            else:
                price = _grid(ticks, tick_num[k], tick_den[k])
                after = pos[k] + lots
                short_of_cash = False
                if abs(after) > abs(pos[k]):
                    equity = _equity(cash, open_list, n_open, qty_f, mark, mult)
                    gross = _gross_without(open_list, n_open, qty_f, mark, mult, k)
                    after_f = _grid(abs(after), lot_num[k], lot_den[k])
                    needed = after_f * price * mult[k] + max(gross, 0.0)
                    short_of_cash = needed > equity * leverage
                if short_of_cash:
                    o_status[o] = CANCEL_CASH
                else:
                    o_status[o] = FILLED
                    notional = _grid(abs(lots), lot_num[k], lot_den[k]) * price * mult[k]
                    fee = notional * fee_bps[k] / 10_000.0
                    o_fee[o] = fee
                    cash += (-notional if buy else notional) - fee
                    was = pos[k]
                    pos[k] = after
                    qty_f[k] = _grid(after, lot_num[k], lot_den[k])
                    if was == 0:
                        open_list[n_open] = k
                        n_open += 1
                    elif after == 0:
                        at = 0
                        while open_list[at] != k:
                            at += 1
                        for t in range(at, n_open - 1):
                            open_list[t] = open_list[t + 1]
                        n_open -= 1
        # 2. mark at the close
        close = closes[j]
        mark[k] = close
        # 3. the strategy's decision at the close
        if j == next_dec:
            w = dec_weight[d]
            d += 1
            equity = _equity(cash, open_list, n_open, qty_f, mark, mult)
            value = w * equity
            lots_f = abs(value) / (close * mult[k])
            if lots_f * lot_den[k] / lot_num[k] >= MAX_UNITS and too_big < 0:
                too_big = j
            want = floor_units(lots_f, lot_num[k], lot_den[k])
            target = want if value >= 0 else -want
            working = 0
            if pending[k] >= 0:
                working = o_lots[pending[k]]
            delta = target - pos[k] - working
            if delta != 0:
                o = n_orders
                n_orders += 1
                o_ev[o] = j
                o_ticks[o] = 0
                o_fee[o] = 0.0
                o_inst[o] = k
                o_lots[o] = delta
                o_end[o] = -1
                status = OPEN
                size = abs(delta)
                if size < min_lots[k]:
                    status = REJECT_MIN_QTY
                elif not allow_short and delta < 0 and size + max(-working, 0) > pos[k]:
                    status = REJECT_SHORT
                elif _grid(size, lot_num[k], lot_den[k]) * close * mult[k] < min_notional[k]:
                    status = REJECT_MIN_NOTIONAL
                else:
                    current = pos[k] + working
                    after = current + delta
                    if abs(after) > abs(current):
                        gross = _gross_without(open_list, n_open, qty_f, mark, mult, k)
                        after_f = _grid(abs(after), lot_num[k], lot_den[k])
                        needed = after_f * close * mult[k] + max(gross, 0.0)
                        if needed > equity * leverage:
                            status = REJECT_CASH
                o_status[o] = status
                if status == OPEN:
                    pending[k] = o
                else:
                    o_end[o] = j
        # 4. the equity curve at the end of each timestamp
        if single or j == n - 1 or ts[j + 1] != ts[j]:
            eq = cash
            gross_all = 0.0
            for i in range(n_inst):
                if pos[i] != 0:
                    value_i = qty_f[i] * mark[i] * mult[i]
                    eq += value_i
                    gross_all += abs(value_i)
            equity_out[slot] = eq
            if with_gross:
                gross_out[slot] = gross_all
            slot += 1
        j += 1
    return slot, n_orders, too_big


@njit(cache=True)
def exposure(
    fid: np.ndarray,
    ts: np.ndarray,
    closes: np.ndarray,
    fill_event: np.ndarray,
    fill_inst: np.ndarray,
    fill_lots: np.ndarray,
    lot_num: np.ndarray,
    lot_den: np.ndarray,
    mult: np.ndarray,
    gross_out: np.ndarray,
) -> None:
    """The gross exposure per timestamp that :func:`simulate` records, from its fills (sorted by
    event; the fill at event ``fill_event[f]`` changes ``fill_inst[f]``'s position by
    ``fill_lots[f]``), with the same arithmetic in the same order, so equal bit for bit."""
    n = ts.shape[0]
    n_inst = lot_num.shape[0]
    single = fid.shape[0] == 0
    pos = np.zeros(n_inst, dtype=np.int64)
    qty_f = np.zeros(n_inst)
    mark = np.full(n_inst, np.nan)
    f = 0
    n_fills = fill_event.shape[0]
    slot = 0
    for j in range(n):
        k = 0 if single else fid[j]
        while f < n_fills and fill_event[f] == j:
            i = fill_inst[f]
            pos[i] += fill_lots[f]
            qty_f[i] = _grid(pos[i], lot_num[i], lot_den[i])
            f += 1
        mark[k] = closes[j]
        if single or j == n - 1 or ts[j + 1] != ts[j]:
            gross_all = 0.0
            for i in range(n_inst):
                if pos[i] != 0:
                    gross_all += abs(qty_f[i] * mark[i] * mult[i])
            gross_out[slot] = gross_all
            slot += 1
