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
4. after the last event of a timestamp the equity is recorded, summed in feed order as
   :func:`~tradestack.engine.equity.rebuild_equity` does (:func:`exposure` rebuilds the gross
   exposure the same way from the fills, when asked for).

One instrument takes its own loop, :func:`_simulate_one`: its state in scalars, and from one
decision to the next (a fill, then the bars that only move the mark, then the decision) instead
of event by event; both loops share the per-step arithmetic through inlined helpers.

Quantities are whole lots and prices whole ticks (int64). Where the ledger rounds a float through
its shortest ``repr`` as a Decimal (``round_qty``, ``round_price``), the kernel decides on which
side of a grid point the decimal lies by comparing the float with the correctly rounded grid point
``(k * num) / den``: the shortest repr and the float lie on the same side of any short decimal.
Cash and equity are floats (the ledger's cash is an exact Decimal; the two agree to ~1e-15).

The one-instrument loop indexes with unsigned integers: numba then leaves out the negative-index
wraparound, which costs a branch per access and made LLVM vectorize the equity loops into
scatter stores.
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


@njit(cache=True, inline="always")
def _grid(k: int, num: int, den: int) -> float:
    """The float nearest ``k * num / den`` (correctly rounded while the integers are exact)."""
    if den == 1:
        return float(k * num)
    return float(k * num) / float(den)


@njit(cache=True, inline="always")
def _units(x: float, num: int, den: int) -> float:
    """``x * den / num`` in floats (``x`` in grid units), without the exact division by one."""
    if num == 1:
        return x * den
    return x * den / num


# Below _SURE, ``x * den / num`` is within 2**-12 of the exact ratio of ``Decimal(repr(x))``
# (two roundings and the repr, each under 2**-52 relative); a fraction farther than _MARGIN from
# the decision point decides without the exact comparisons.
_SURE = 2.0**40
_MARGIN = 1.0 / 64.0


@njit(cache=True, inline="always")
def floor_units(x: float, num: int, den: int) -> int:
    """Largest ``k >= 0`` with ``k * num / den <= Decimal(repr(x))``, for ``x >= 0``."""
    guess = _units(x, num, den)
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


@njit(cache=True, inline="always")
def round_half_even_units(x: float, num: int, den: int) -> int:
    """``Decimal(repr(x)) / (num / den)`` rounded to an integer, half to even, for ``x >= 0``."""
    guess = _units(x, num, den)
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


@njit(cache=True, inline="always")
def _fill_ticks(x: float, num: int, den: int, buy: bool, slip_num: int, slip_scale: int) -> int:
    """Step 1's price in ticks: ``x`` rounded half-even to the tick, moved against the order by
    ``slip_num / slip_scale`` and rounded away from it (never a price improvement)."""
    ticks = round_half_even_units(x, num, den)
    if slip_num > 0:
        moved = ticks * (slip_scale + slip_num if buy else slip_scale - slip_num)
        ticks = -(-moved // slip_scale) if buy else moved // slip_scale
    return ticks


@njit(cache=True, inline="always")
def _over_leverage(
    lots: int,
    lot_num: int,
    lot_den: int,
    price: float,
    mult: float,
    others: float,
    equity: float,
    leverage: float,
) -> bool:
    """Whether ``lots`` (>= 0) at ``price``, plus the gross exposure of the other positions,
    needs more than equity times leverage (the venue's buying-power check)."""
    needed = _grid(lots, lot_num, lot_den) * price * mult + max(others, 0.0)
    return needed > equity * leverage


@njit(cache=True, inline="always")
def _booked(
    lots: int, lot_num: int, lot_den: int, price: float, mult: float, fee_bps: float
) -> tuple[float, float]:
    """A fill's change of cash and its taker fee."""
    notional = _grid(abs(lots), lot_num, lot_den) * price * mult
    fee = notional * fee_bps / 10_000.0
    return (-notional if lots > 0 else notional) - fee, fee


@njit(cache=True, inline="always")
def _target(
    weight: float, equity: float, close: float, mult: float, lot_num: int, lot_den: int
) -> tuple[int, bool]:
    """Step 3's target position in lots, and whether it is too many lots for exact rounding."""
    value = weight * equity
    lots_f = abs(value) / (close * mult)
    want = floor_units(lots_f, lot_num, lot_den)
    return (want if value >= 0 else -want), _units(lots_f, lot_num, lot_den) >= MAX_UNITS


@njit(cache=True, inline="always")
def _submit_status(
    delta: int,
    working: int,
    pos: int,
    close: float,
    min_lots: int,
    allow_short: bool,
    lot_num: int,
    lot_den: int,
    mult: float,
    min_notional: float,
) -> int:
    """Step 3's submit checks up to buying power: :data:`OPEN` or the rejection."""
    size = abs(delta)
    if size < min_lots:
        return REJECT_MIN_QTY
    if not allow_short and delta < 0 and size + max(-working, 0) > pos:
        return REJECT_SHORT
    if _grid(size, lot_num, lot_den) * close * mult < min_notional:
        return REJECT_MIN_NOTIONAL
    return OPEN


@njit(cache=True, inline="always")
def _new_order(
    orders_out: np.ndarray, o_fee: np.ndarray, o: int, j: int, k: int, lots: int, status: int
) -> None:
    """Order ``o``, sent at event ``j`` for ``lots`` of instrument ``k``."""
    at = np.uint64(o)
    orders_out[EVENT, at] = j
    orders_out[INSTRUMENT, at] = k
    orders_out[LOTS, at] = lots
    orders_out[STATUS, at] = status
    orders_out[END, at] = -1 if status == OPEN else j
    orders_out[TICKS, at] = 0
    o_fee[at] = 0.0


@njit(cache=True, inline="always")
def _end_order(orders_out: np.ndarray, o: int, j: int, ticks: int, status: int) -> None:
    """Order ``o`` filled or cancelled at event ``j``'s open of ``ticks``."""
    at = np.uint64(o)
    orders_out[END, at] = j
    orders_out[TICKS, at] = ticks
    orders_out[STATUS, at] = status


@njit(cache=True, inline="always")
def _marked(cash: float, pos: int, qty: float, mark: float, mult: float) -> tuple[float, float]:
    """One instrument's equity and, as :func:`_gross_without` sums it, the gross exposure of the
    other positions (none: zero, or NaN with the mark)."""
    if pos == 0:
        return cash, 0.0
    value = qty * mark * mult
    return cash + value, abs(value) - abs(value)


@njit(cache=True)
def _simulate_one(
    opens: np.ndarray,
    closes: np.ndarray,
    dec_event: np.ndarray,
    dec_weight: np.ndarray,
    inst: tuple[int, int, int, int, float, int, float, float],
    slip_num: int,
    slip_den: int,
    allow_short: bool,
    leverage: float,
    cash: float,
    equity_out: np.ndarray,
    orders_out: np.ndarray,
    o_fee: np.ndarray,
) -> tuple[int, int, int]:
    """:func:`simulate` for one instrument (``inst``: its tick, lot, multiplier, minimum lots,
    minimum notional and fee), by decision: the fill of the previous decision's order at the
    next bar's open, the equity of the bars up to the next decision, the decision. No order is
    working at a decision (the last one ended at the bar after it), and the mark is the bar's
    open at a fill, its close elsewhere."""
    tick_num, tick_den, lot_num, lot_den, mult, min_lots, min_notional, fee_bps = inst
    n = closes.shape[0]
    n_dec = dec_event.shape[0]
    slip_scale = 10_000 * slip_den
    pos = 0
    qty = 0.0
    order = -1  # the working order
    n_orders = 0
    price_beyond = lots_beyond = -1
    j = 0  # the bar after the last decision
    for d in range(n_dec + 1):
        if order >= 0 and j < n:
            x = opens[np.uint64(j)]
            if _units(x, tick_num, tick_den) >= MAX_UNITS and price_beyond < 0:
                price_beyond = j
            lots = orders_out[LOTS, np.uint64(order)]
            ticks = _fill_ticks(x, tick_num, tick_den, lots > 0, slip_num, slip_scale)
            status = CANCEL_PRICE
            if ticks > 0:
                price = _grid(ticks, tick_num, tick_den)
                after = pos + lots
                status = FILLED
                if abs(after) > abs(pos):
                    equity, others = _marked(cash, pos, qty, x, mult)
                    if _over_leverage(
                        abs(after), lot_num, lot_den, price, mult, others, equity, leverage
                    ):
                        status = CANCEL_CASH
                if status == FILLED:
                    change, fee = _booked(lots, lot_num, lot_den, price, mult, fee_bps)
                    o_fee[np.uint64(order)] = fee
                    cash += change
                    pos = after
                    qty = _grid(after, lot_num, lot_den)
            _end_order(orders_out, order, j, ticks, status)
            order = -1
        stop = dec_event[d] if d < n_dec else n
        if pos == 0:
            for t in range(j, stop):
                equity_out[np.uint64(t)] = cash
        else:
            for t in range(j, stop):
                at = np.uint64(t)
                equity_out[at] = cash + qty * closes[at] * mult
        if stop == n:
            break
        close = closes[np.uint64(stop)]
        equity, others = _marked(cash, pos, qty, close, mult)
        target, beyond = _target(dec_weight[d], equity, close, mult, lot_num, lot_den)
        if beyond and lots_beyond < 0:
            lots_beyond = stop
        delta = target - pos
        if delta != 0:
            status = _submit_status(
                delta, 0, pos, close, min_lots, allow_short, lot_num, lot_den, mult, min_notional
            )
            grows = abs(target) > abs(pos)
            if (
                status == OPEN
                and grows
                and _over_leverage(
                    abs(target), lot_num, lot_den, close, mult, others, equity, leverage
                )
            ):
                status = REJECT_CASH
            _new_order(orders_out, o_fee, n_orders, stop, 0, delta, status)
            if status == OPEN:
                order = n_orders
            n_orders += 1
        equity_out[np.uint64(stop)] = equity
        j = stop + 1
    return n_orders, price_beyond, lots_beyond


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
    orders_out: np.ndarray,
    o_fee: np.ndarray,
) -> tuple[int, int, int, int]:
    """Run the merged events; see the module docstring.

    Per event ``j``: ``fid[j]`` the instrument (an empty ``fid``: one instrument, index 0),
    ``ts[j]`` its time (a timestamp ends where the next event's differs; one instrument
    has strictly increasing times, so every event ends one), ``opens``/``closes``
    its bar. ``dec_event`` lists the events with a decision, strictly increasing, and
    ``dec_weight`` the target fraction of equity each decided at its close. Per
    instrument: tick and lot as exact fractions, multiplier, minimum quantity in lots, minimum
    notional, taker fee in bps. Slippage in bps is ``slip_num / slip_den``.

    Writes the equity per timestamp into ``equity_out`` (a row per event) and per order a
    column of ``orders_out`` (:data:`ORDER_COLUMNS` rows) and its fee into ``o_fee`` (a column
    and a value per decision: a decision sends at most one order). Returns (timestamps, orders,
    the first event whose fill price, and the first whose target position, is too many grid
    units for exact rounding, or -1).
    """
    if fid.shape[0] == 0:
        inst = (
            tick_num[0],
            tick_den[0],
            lot_num[0],
            lot_den[0],
            mult[0],
            min_lots[0],
            min_notional[0],
            fee_bps[0],
        )
        n_orders, price_beyond, lots_beyond = _simulate_one(
            opens,
            closes,
            dec_event,
            dec_weight,
            inst,
            slip_num,
            slip_den,
            allow_short,
            leverage,
            starting_cash,
            equity_out,
            orders_out,
            o_fee,
        )
        return ts.shape[0], n_orders, price_beyond, lots_beyond
    n = ts.shape[0]
    n_inst = tick_num.shape[0]
    pos = np.zeros(n_inst, dtype=np.int64)
    qty_f = np.zeros(n_inst)
    pending = np.full(n_inst, -1, dtype=np.int64)  # the instrument's working order, if any
    mark = np.full(n_inst, np.nan)
    open_list = np.empty(n_inst, dtype=np.int64)
    n_open = 0
    cash = starting_cash
    slip_scale = 10_000 * slip_den
    slot = 0
    n_orders = 0
    price_beyond = lots_beyond = -1
    n_dec = dec_event.shape[0]
    d = 0  # the next decision
    for j in range(n):
        k = fid[j]
        # 1. the working market order fills at this bar's open
        o = pending[k]
        if o >= 0:
            pending[k] = -1
            x = opens[j]
            mark[k] = x
            if _units(x, tick_num[k], tick_den[k]) >= MAX_UNITS and price_beyond < 0:
                price_beyond = j
            lots = orders_out[LOTS, o]
            ticks = _fill_ticks(x, tick_num[k], tick_den[k], lots > 0, slip_num, slip_scale)
            status = CANCEL_PRICE
            if ticks > 0:
                price = _grid(ticks, tick_num[k], tick_den[k])
                was = pos[k]
                after = was + lots
                status = FILLED
                if abs(after) > abs(was) and _over_leverage(
                    abs(after),
                    lot_num[k],
                    lot_den[k],
                    price,
                    mult[k],
                    _gross_without(open_list, n_open, qty_f, mark, mult, k),
                    _equity(cash, open_list, n_open, qty_f, mark, mult),
                    leverage,
                ):
                    status = CANCEL_CASH
                if status == FILLED:
                    change, fee = _booked(lots, lot_num[k], lot_den[k], price, mult[k], fee_bps[k])
                    o_fee[o] = fee
                    cash += change
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
            _end_order(orders_out, o, j, ticks, status)
        # 2. mark at the close
        close = closes[j]
        mark[k] = close
        # 3. the strategy's decision at the close
        if d < n_dec and dec_event[d] == j:
            equity = _equity(cash, open_list, n_open, qty_f, mark, mult)
            target, beyond = _target(dec_weight[d], equity, close, mult[k], lot_num[k], lot_den[k])
            d += 1
            if beyond and lots_beyond < 0:
                lots_beyond = j
            working = orders_out[LOTS, pending[k]] if pending[k] >= 0 else 0
            current = pos[k] + working
            delta = target - current
            if delta != 0:
                status = _submit_status(
                    delta,
                    working,
                    pos[k],
                    close,
                    min_lots[k],
                    allow_short,
                    lot_num[k],
                    lot_den[k],
                    mult[k],
                    min_notional[k],
                )
                if (
                    status == OPEN
                    and abs(target) > abs(current)
                    and _over_leverage(
                        abs(target),
                        lot_num[k],
                        lot_den[k],
                        close,
                        mult[k],
                        _gross_without(open_list, n_open, qty_f, mark, mult, k),
                        equity,
                        leverage,
                    )
                ):
                    status = REJECT_CASH
                _new_order(orders_out, o_fee, n_orders, j, k, delta, status)
                if status == OPEN:
                    pending[k] = n_orders
                n_orders += 1
        # 4. the equity curve at the end of each timestamp
        if j == n - 1 or ts[j + 1] != ts[j]:
            eq = cash
            for i in range(n_inst):
                if pos[i] != 0:
                    eq += qty_f[i] * mark[i] * mult[i]
            equity_out[slot] = eq
            slot += 1
    return slot, n_orders, price_beyond, lots_beyond


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
    """The gross exposure per timestamp (step 4: Σ|position value| at the marks), from the fills
    of :func:`simulate` (sorted by event; the fill at event ``fill_event[f]`` changes
    ``fill_inst[f]``'s position by ``fill_lots[f]``), as :func:`simulate` values the positions."""
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
