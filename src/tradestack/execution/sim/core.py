"""The compiled book and matching core of the L2 simulated venue (numba, cached).

Two books are kept on one price grid (tick index = round(price / tick) - base): the exchange's,
advanced by exchange timestamps, which our orders match against; and the strategy's view,
advanced by receive timestamps. :func:`advance` replays four time-ordered queues — local data,
order responses reaching the strategy, exchange data, order requests reaching the exchange —
and returns to Python only when the strategy has to be woken (a timer is due, one of its
order responses arrives, the top of book changes, a trade prints, or on every event). Ties
at one timestamp go local data, responses, exchange data, requests (as in hftbacktest).

Everything lives in plain arrays so the functions can be cached; their layouts are the ``S_*``,
``O_*``, ``R_*`` ... column constants below. Quantities of our own orders are whole lots
(int64); book quantities are the venue's floats.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

INT_MAX = np.iinfo(np.int64).max

# feed kinds (same values as feed.py)
K_DEPTH, K_TRADE, K_CLEAR, K_SNAPSHOT, K_FUNDING = 1, 2, 3, 4, 5

# wake reasons
W_END, W_UNTIL, W_RESPONSE, W_TOP, W_TRADE, W_EVENT, W_SPACE = 0, 1, 2, 3, 4, 5, 6
# wake mask bits
M_TOP, M_TRADE, M_EVENT = 1, 2, 4

# book rows
EXB, EXA, LOB, LOA = 0, 1, 2, 3

# int state
S_EX_CUR, S_LO_CUR, S_EX_BB, S_EX_BA, S_LO_BB, S_LO_BA = 0, 1, 2, 3, 4, 5
S_N_ORD, S_N_RESP, S_RESP_LOW, S_NEXT_RESP, S_N_REQ, S_REQ_LOW, S_NEXT_REQ = 6, 7, 8, 9, 10, 11, 12
S_POS, S_FUND_T, S_FUND_DONE, S_LAT_CUR, S_PROBE, S_WAKE_ROW = 13, 14, 15, 16, 17, 18
S_N_SAMPLE, S_NEXT_SAMPLE, S_N_ACTIVE, S_DROPPED, S_SEQ, S_NOW, S_WAKE_TOP = (
    19,
    20,
    21,
    22,
    23,
    24,
    25,
)
S_TOP_PENDING = 26
S_SIZE = 32
# float state
F_FUND_RATE, F_FUND_MARK = 0, 1
F_SIZE = 8

# int params
P_MASK, P_QUEUE, P_DEPLETE, P_SAMPLE_NS, P_PROBE_NS, P_MAX_WALK = 0, 1, 2, 3, 4, 5
P_SIZE = 8
# float params
PF_LOT, PF_TICK, PF_BASE, PF_IMPACT_Y, PF_SIGMA, PF_ADV, PF_QUEUE_N = 0, 1, 2, 3, 4, 5, 6
PF_SIZE = 8

# queue models
Q_FIFO, Q_PRO_RATA, Q_POWER, Q_LOG = 0, 1, 2, 3

# order columns (int)
O_SIDE, O_TICK, O_LOTS, O_LEAVES, O_STATUS, O_TYPE, O_TIF, O_CANCEL, O_SEQ, O_LAST_TS = range(10)
O_QUEUE_FILLED = 10  # lots filled from the queue (trades at our price), for the queue fill rule
O_COLS = 11
# order columns (float)
OF_AHEAD, OF_TRADED = 0, 1
OF_COLS = 2
# order status at the exchange
ST_IN_FLIGHT, ST_RESTING, ST_DONE = 0, 1, 2
# order types and time in force
T_MARKET, T_LIMIT = 0, 1
TIF_GTC, TIF_IOC, TIF_FOK, TIF_POST = 0, 1, 2, 3

# requests
Q_TS, Q_ORDER, Q_KIND, Q_DONE = 0, 1, 2, 3
Q_COLS = 4
REQ_NEW, REQ_CANCEL = 1, 2

# responses (int / float)
R_KIND, R_ORDER, R_EXCH_TS, R_LOCAL_TS, R_TICK, R_LOTS, R_MAKER, R_DELIVERED, R_REASON = range(9)
R_COLS = 9
RF_AHEAD, RF_MID, RF_MID_AFTER, RF_MARK, RF_RATE = range(5)
RF_COLS = 5
RESP_ACK, RESP_FILL, RESP_CANCELED, RESP_EXPIRED, RESP_CANCEL_REJECTED, RESP_FUNDING = range(1, 7)
# reasons for expired / rejected responses
WHY_NONE, WHY_NO_LIQUIDITY, WHY_IOC, WHY_FOK, WHY_POST_ONLY, WHY_WALK_LIMIT = 0, 1, 2, 3, 4, 5


@njit(cache=True)
def _best_bid_from(book: np.ndarray, row: int, start: int) -> int:
    t = start
    while t >= 0 and book[row, t] <= 0.0:
        t -= 1
    return t


@njit(cache=True)
def _best_ask_from(book: np.ndarray, row: int, start: int) -> int:
    n = book.shape[1]
    t = start
    while t < n and book[row, t] <= 0.0:
        t += 1
    return t


@njit(cache=True, inline="always")
def _set_level(book, row, tick, qty, bb, ba, is_bid):
    """Set one level; returns the new (best bid, best ask) of that side's row pair."""
    book[row, tick] = qty
    if is_bid:
        if qty > 0.0:
            if tick > bb:
                bb = tick
        elif tick == bb:
            bb = _best_bid_from(book, row, tick - 1)
    else:
        if qty > 0.0:
            if tick < ba:
                ba = tick
        elif tick == ba:
            ba = _best_ask_from(book, row, tick + 1)
    return bb, ba


@njit(cache=True)
def _mid(s: np.ndarray, book: np.ndarray, pf: np.ndarray, bb_i: int, ba_i: int) -> float:
    bb, ba = s[bb_i], s[ba_i]
    if bb < 0 or ba >= book.shape[1]:
        return math.nan
    return (pf[PF_BASE] + 0.5 * (bb + ba)) * pf[PF_TICK]


@njit(cache=True)
def _respond(s, ri, rf, lat, order, kind, exch_ts, tick, lots, maker, reason, oi):
    """Append a response; it reaches the strategy after the next sampled response latency."""
    k = s[S_N_RESP]
    local = exch_ts + lat[s[S_LAT_CUR] % lat.shape[0]]
    s[S_LAT_CUR] += 1
    if order >= 0:  # one order's responses never overtake each other
        if local < oi[order, O_LAST_TS]:
            local = oi[order, O_LAST_TS]
        oi[order, O_LAST_TS] = local
    ri[k, R_KIND] = kind
    ri[k, R_ORDER] = order
    ri[k, R_EXCH_TS] = exch_ts
    ri[k, R_LOCAL_TS] = local
    ri[k, R_TICK] = tick
    ri[k, R_LOTS] = lots
    ri[k, R_MAKER] = maker
    ri[k, R_DELIVERED] = 0
    ri[k, R_REASON] = reason
    for c in range(RF_COLS):
        rf[k, c] = math.nan
    s[S_N_RESP] = k + 1
    if local < s[S_NEXT_RESP]:
        s[S_NEXT_RESP] = local
    return k


@njit(cache=True)
def _remove_active(s, active, order):
    n = s[S_N_ACTIVE]
    for j in range(n):
        if active[j] == order:
            for m in range(j, n - 1):
                active[m] = active[m + 1]
            s[S_N_ACTIVE] = n - 1
            return


@njit(cache=True)
def _fill(s, book, oi, of, ri, rf, lat, pf, active, order, ts, tick, lots, maker, ahead):
    k = _respond(s, ri, rf, lat, order, RESP_FILL, ts, tick, lots, maker, WHY_NONE, oi)
    rf[k, RF_AHEAD] = ahead
    rf[k, RF_MID] = _mid(s, book, pf, S_EX_BB, S_EX_BA)
    oi[order, O_LEAVES] -= lots
    s[S_POS] += oi[order, O_SIDE] * lots
    if oi[order, O_LEAVES] <= 0 and oi[order, O_STATUS] != ST_DONE:
        if oi[order, O_STATUS] == ST_RESTING:
            _remove_active(s, active, order)
        oi[order, O_STATUS] = ST_DONE


@njit(cache=True)
def _own_before(s, oi, active, order):
    """Lots of our own resting orders queued ahead of ``order`` at its price."""
    total = 0
    for j in range(s[S_N_ACTIVE]):
        o = active[j]
        if (
            o != order
            and oi[o, O_SIDE] == oi[order, O_SIDE]
            and oi[o, O_TICK] == oi[order, O_TICK]
            and oi[o, O_SEQ] < oi[order, O_SEQ]
        ):
            total += oi[o, O_LEAVES]
    return total


@njit(cache=True)
def _queue_depth(p, pf, of, order, prev, new, own):
    """A level we rest in changed from ``prev`` to ``new`` (visible sizes): move our queue
    position. ``own`` is the size of our own earlier orders queued ahead of this one; the
    models act on the visible queue ahead (``ahead - own``), our own orders stay ahead."""
    model = p[P_QUEUE]
    front = of[order, OF_AHEAD] - own
    traded = of[order, OF_TRADED]
    of[order, OF_TRADED] = 0.0
    chg = prev - new - traded  # trades at our price already moved us
    if model == Q_FIFO or chg <= 0.0:
        of[order, OF_AHEAD] = min(front, new) + own
        return
    back = max(prev - front, 0.0)
    front_pos = max(front, 0.0)
    if model == Q_PRO_RATA:
        fb, ff = back, front_pos
    elif model == Q_POWER:
        n = pf[PF_QUEUE_N]
        fb, ff = back**n, front_pos**n
    else:
        fb, ff = math.log1p(back), math.log1p(front_pos)
    prob = fb / (fb + ff) if fb + ff > 0.0 else 1.0
    est = front - (1.0 - prob) * chg + min(back - prob * chg, 0.0)
    # cancels never move us past the front: only trades fill us
    of[order, OF_AHEAD] = max(min(est, new), min(front, 0.0)) + own


@njit(cache=True, inline="always")
def _touches(s, oi, active, is_bid, tick, old_bb, old_ba, bb, ba):
    """Whether a level change at ``tick`` concerns one of our resting orders: it is our
    price level, or the opposite best moved onto or through our price."""
    for j in range(s[S_N_ACTIVE]):
        o = active[j]
        side = oi[o, O_SIDE]
        if oi[o, O_TICK] == tick and (side > 0) == is_bid:
            return True
        if is_bid and bb > old_bb and side < 0 and oi[o, O_TICK] <= bb:
            return True
        if not is_bid and ba < old_ba and side > 0 and oi[o, O_TICK] >= ba:
            return True
    return False


@njit(cache=True)
def _exch_level(
    s, book, oi, of, ri, rf, lat, p, pf, active, ts, is_bid, tick, prev, qty, old_bb, old_ba
):
    """After the level at ``tick`` changed from ``prev`` to ``qty``: move our queue positions
    there and fill our orders the opposite best moved through."""
    bb, ba = s[S_EX_BB], s[S_EX_BA]
    n = s[S_N_ACTIVE]
    lot = pf[PF_LOT]
    for j in range(n):
        o = active[j]
        if oi[o, O_TICK] == tick and (oi[o, O_SIDE] > 0) == is_bid:
            _queue_depth(p, pf, of, o, prev, qty, _own_before(s, oi, active, o) * lot)
    # a better opposite price than our resting order means we were traded through
    if is_bid and bb > old_bb:
        j = 0
        while j < s[S_N_ACTIVE]:
            o = active[j]
            if oi[o, O_SIDE] < 0 and oi[o, O_TICK] <= bb:
                _fill(
                    s,
                    book,
                    oi,
                    of,
                    ri,
                    rf,
                    lat,
                    pf,
                    active,
                    o,
                    ts,
                    oi[o, O_TICK],
                    oi[o, O_LEAVES],
                    1,
                    of[o, OF_AHEAD],
                )
            else:
                j += 1
    elif not is_bid and ba < old_ba:
        j = 0
        while j < s[S_N_ACTIVE]:
            o = active[j]
            if oi[o, O_SIDE] > 0 and oi[o, O_TICK] >= ba:
                _fill(
                    s,
                    book,
                    oi,
                    of,
                    ri,
                    rf,
                    lat,
                    pf,
                    active,
                    o,
                    ts,
                    oi[o, O_TICK],
                    oi[o, O_LEAVES],
                    1,
                    of[o, OF_AHEAD],
                )
            else:
                j += 1


@njit(cache=True, inline="always")
def _trade_touches(s, oi, active, aggressor, tick):
    """Whether a trade reaches one of our resting orders on its passive side."""
    for j in range(s[S_N_ACTIVE]):
        o = active[j]
        side = oi[o, O_SIDE]
        if side != aggressor and (oi[o, O_TICK] >= tick if side > 0 else oi[o, O_TICK] <= tick):
            return True
    return False


@njit(cache=True)
def _exch_trade(s, book, oi, of, ri, rf, lat, pf, active, ts, aggressor, tick, qty):
    lot = pf[PF_LOT]
    j = 0
    while j < s[S_N_ACTIVE]:
        o = active[j]
        side = oi[o, O_SIDE]
        if side == aggressor:
            j += 1
            continue
        through = oi[o, O_TICK] > tick if side > 0 else oi[o, O_TICK] < tick
        if through:
            _fill(
                s,
                book,
                oi,
                of,
                ri,
                rf,
                lat,
                pf,
                active,
                o,
                ts,
                oi[o, O_TICK],
                oi[o, O_LEAVES],
                1,
                of[o, OF_AHEAD],
            )
            continue
        if oi[o, O_TICK] == tick:
            before = of[o, OF_AHEAD]
            of[o, OF_AHEAD] = before - qty
            of[o, OF_TRADED] += qty
            ahead = of[o, OF_AHEAD]
            if round(ahead / lot) < 0:
                # prints that passed our place in the queue, less what they already filled
                can = int(math.floor(-ahead / lot + 1e-9)) - oi[o, O_QUEUE_FILLED]
                lots = min(can, oi[o, O_LEAVES])
                if lots > 0:
                    done = lots == oi[o, O_LEAVES]
                    oi[o, O_QUEUE_FILLED] += lots
                    _fill(s, book, oi, of, ri, rf, lat, pf, active, o, ts, tick, lots, 1, before)
                    if done:
                        continue
        j += 1


@njit(cache=True)
def _walk(s, book, oi, of, ri, rf, lat, p, pf, active, order, ts, limit_tick, dry):
    """Take liquidity level by level up to ``limit_tick`` (-1: no limit); ``dry`` only counts.

    Returns the lots filled (or fillable when ``dry``) and the last tick taken.
    """
    side = oi[order, O_SIDE]
    lot = pf[PF_LOT]
    n_ticks = book.shape[1]
    leaves = oi[order, O_LEAVES]
    row = EXA if side > 0 else EXB
    t = s[S_EX_BA] if side > 0 else s[S_EX_BB]
    taken = 0
    last = -1
    levels = 0
    while leaves - taken > 0 and 0 <= t < n_ticks and levels < p[P_MAX_WALK]:
        if limit_tick >= 0 and (t > limit_tick if side > 0 else t < limit_tick):
            break
        avail = int(math.floor(book[row, t] / lot + 1e-9))
        if avail > 0:
            lots = min(avail, leaves - taken)
            taken += lots
            last = t
            levels += 1
            if not dry:
                _fill(s, book, oi, of, ri, rf, lat, pf, active, order, ts, t, lots, 0, math.nan)
                if p[P_DEPLETE] == 1:
                    left = book[row, t] - lots * lot
                    book[row, t] = left if left > 0.5 * lot else 0.0
        t += 1 if side > 0 else -1
    if not dry and p[P_DEPLETE] == 1:
        if side > 0:
            s[S_EX_BA] = _best_ask_from(book, EXA, s[S_EX_BA])
        else:
            s[S_EX_BB] = _best_bid_from(book, EXB, s[S_EX_BB])
    return taken, last, levels


@njit(cache=True)
def _impact_fill(s, book, oi, of, ri, rf, lat, pf, active, order, ts, last_tick):
    """Square-root-law price for what visible depth could not fill: Y·σ·sqrt(Q/V) past it."""
    side = oi[order, O_SIDE]
    leaves = oi[order, O_LEAVES]
    qty = leaves * pf[PF_LOT]
    ref = (pf[PF_BASE] + last_tick) * pf[PF_TICK]
    move = pf[PF_IMPACT_Y] * pf[PF_SIGMA] * math.sqrt(qty / pf[PF_ADV])
    price = ref * (1.0 + side * move)
    raw = price / pf[PF_TICK] - pf[PF_BASE]
    tick = int(math.ceil(raw - 1e-9)) if side > 0 else int(math.floor(raw + 1e-9))
    _fill(s, book, oi, of, ri, rf, lat, pf, active, order, ts, tick, leaves, 0, math.nan)


@njit(cache=True)
def _new_order(s, book, oi, of, ri, rf, lat, p, pf, active, order, ts):
    side = oi[order, O_SIDE]
    if oi[order, O_CANCEL] == 1:  # the cancel overtook the order
        oi[order, O_STATUS] = ST_DONE
        _respond(s, ri, rf, lat, order, RESP_CANCELED, ts, -1, 0, 0, WHY_NONE, oi)
        return
    _respond(s, ri, rf, lat, order, RESP_ACK, ts, -1, 0, 0, WHY_NONE, oi)
    oi[order, O_STATUS] = ST_RESTING
    tick = oi[order, O_TICK]
    tif = oi[order, O_TIF]
    if oi[order, O_TYPE] == T_MARKET:
        if tif == TIF_FOK:
            can, _, _ = _walk(s, book, oi, of, ri, rf, lat, p, pf, active, order, ts, -1, True)
            if can < oi[order, O_LEAVES]:
                oi[order, O_STATUS] = ST_DONE
                _respond(s, ri, rf, lat, order, RESP_EXPIRED, ts, -1, 0, 0, WHY_FOK, oi)
                return
        _, last, levels = _walk(s, book, oi, of, ri, rf, lat, p, pf, active, order, ts, -1, False)
        if oi[order, O_LEAVES] > 0:
            if pf[PF_IMPACT_Y] > 0.0 and last >= 0:
                _impact_fill(s, book, oi, of, ri, rf, lat, pf, active, order, ts, last)
            else:
                why = WHY_WALK_LIMIT if levels >= p[P_MAX_WALK] else WHY_NO_LIQUIDITY
                oi[order, O_STATUS] = ST_DONE
                _respond(s, ri, rf, lat, order, RESP_EXPIRED, ts, -1, 0, 0, why, oi)
        return
    if side > 0:
        marketable = s[S_EX_BA] < book.shape[1] and tick >= s[S_EX_BA]
    else:
        marketable = s[S_EX_BB] >= 0 and tick <= s[S_EX_BB]
    if marketable:
        if tif == TIF_POST:
            oi[order, O_STATUS] = ST_DONE
            _respond(s, ri, rf, lat, order, RESP_EXPIRED, ts, -1, 0, 0, WHY_POST_ONLY, oi)
            return
        if tif == TIF_FOK:
            can, _, _ = _walk(s, book, oi, of, ri, rf, lat, p, pf, active, order, ts, tick, True)
            if can < oi[order, O_LEAVES]:
                oi[order, O_STATUS] = ST_DONE
                _respond(s, ri, rf, lat, order, RESP_EXPIRED, ts, -1, 0, 0, WHY_FOK, oi)
                return
        _, _, levels = _walk(s, book, oi, of, ri, rf, lat, p, pf, active, order, ts, tick, False)
        if oi[order, O_LEAVES] <= 0:
            return
        if levels >= p[P_MAX_WALK]:  # stopped by the walk limit: never rest a crossed order
            oi[order, O_STATUS] = ST_DONE
            _respond(s, ri, rf, lat, order, RESP_EXPIRED, ts, -1, 0, 0, WHY_WALK_LIMIT, oi)
            return
        if tif == TIF_IOC or tif == TIF_FOK:
            oi[order, O_STATUS] = ST_DONE
            _respond(s, ri, rf, lat, order, RESP_EXPIRED, ts, -1, 0, 0, WHY_IOC, oi)
            return
    elif tif == TIF_IOC or tif == TIF_FOK:
        oi[order, O_STATUS] = ST_DONE
        why = WHY_IOC if tif == TIF_IOC else WHY_FOK
        _respond(s, ri, rf, lat, order, RESP_EXPIRED, ts, -1, 0, 0, why, oi)
        return
    # rest the (remaining) order at its price behind the visible size and our earlier orders
    s[S_SEQ] += 1
    oi[order, O_SEQ] = s[S_SEQ]
    row = EXB if side > 0 else EXA
    of[order, OF_AHEAD] = book[row, tick] + _own_before(s, oi, active, order) * pf[PF_LOT]
    of[order, OF_TRADED] = 0.0
    active[s[S_N_ACTIVE]] = order
    s[S_N_ACTIVE] += 1


@njit(cache=True)
def _cancel(s, oi, of, ri, rf, lat, pf, active, order, ts):
    status = oi[order, O_STATUS]
    if status == ST_RESTING:
        # our later orders at this price were queued behind this one
        for j in range(s[S_N_ACTIVE]):
            o = active[j]
            if (
                oi[o, O_SIDE] == oi[order, O_SIDE]
                and oi[o, O_TICK] == oi[order, O_TICK]
                and oi[o, O_SEQ] > oi[order, O_SEQ]
            ):
                of[o, OF_AHEAD] -= oi[order, O_LEAVES] * pf[PF_LOT]
        _remove_active(s, active, order)
        oi[order, O_STATUS] = ST_DONE
        _respond(s, ri, rf, lat, order, RESP_CANCELED, ts, -1, 0, 0, WHY_NONE, oi)
    elif status == ST_IN_FLIGHT:
        oi[order, O_CANCEL] = 1
    else:
        _respond(s, ri, rf, lat, order, RESP_CANCEL_REJECTED, ts, -1, 0, 0, WHY_NONE, oi)


@njit(cache=True)
def _next_request(s, qi):
    best_ts = INT_MAX
    best = -1
    low = s[S_REQ_LOW]
    while low < s[S_N_REQ] and qi[low, Q_DONE] == 1:
        low += 1
    s[S_REQ_LOW] = low
    for k in range(low, s[S_N_REQ]):
        if qi[k, Q_DONE] == 0 and qi[k, Q_TS] < best_ts:
            best_ts = qi[k, Q_TS]
            best = k
    s[S_NEXT_REQ] = best_ts
    return best


@njit(cache=True)
def _settle_funding(s, sf, ri, rf, lat, oi, ts):
    """Funding falls due once the exchange clock reaches the announced funding time: settled
    at the first exchange event at or after it, with the last published rate and mark."""
    due = s[S_FUND_T]
    if due > 0 and due > s[S_FUND_DONE] and ts >= due:
        s[S_FUND_DONE] = due
        if s[S_POS] != 0:
            before = s[S_NEXT_RESP]
            k = _respond(s, ri, rf, lat, -1, RESP_FUNDING, due, -1, s[S_POS], 0, WHY_NONE, oi)
            # the account update leaves the venue now (``ts``), not back at ``due``
            ri[k, R_LOCAL_TS] = max(ri[k, R_LOCAL_TS], ts + lat[(s[S_LAT_CUR] - 1) % lat.shape[0]])
            s[S_NEXT_RESP] = min(before, ri[k, R_LOCAL_TS])
            rf[k, RF_MARK] = sf[F_FUND_MARK]
            rf[k, RF_RATE] = sf[F_FUND_RATE]


@njit(cache=True)
def _resolve_probes(s, book, ri, rf, pf, p, until):
    """Fill in the exchange mid ``P_PROBE_NS`` after each fill (for the toxic-fill flag);
    returns when the next pending probe falls due (``INT_MAX``: none pending)."""
    k = s[S_PROBE]
    horizon = p[P_PROBE_NS]
    mid = _mid(s, book, pf, S_EX_BB, S_EX_BA)
    due = INT_MAX
    while k < s[S_N_RESP]:
        if ri[k, R_KIND] != RESP_FILL:
            k += 1
            continue
        if ri[k, R_EXCH_TS] + horizon >= until:
            due = ri[k, R_EXCH_TS] + horizon
            break
        rf[k, RF_MID_AFTER] = mid
        k += 1
    s[S_PROBE] = k
    return due


@njit(cache=True)
def advance(
    exch_ts,
    local_ts,
    kind,
    side,
    tick,
    qty,
    ival,
    fpx,
    local_order,
    msg_end,
    book,
    s,
    sf,
    p,
    pf,
    oi,
    of,
    qi,
    ri,
    rf,
    lat,
    active,
    samples,
    until,
):
    """Replay until the strategy must be woken; returns the reason (``W_*``).

    Book wakes come only at the end of a venue message (``msg_end[row]``): a strategy never
    sees a half-applied diff. ``s[S_NOW]`` is left at the wake time, ``s[S_WAKE_ROW]`` at the
    feed row that woke the strategy and ``s[S_WAKE_TOP]`` at 1 when that message changed the
    top of book. ``samples`` gets the strategy-view mid at every ``P_SAMPLE_NS`` step of the
    receive clock.
    """
    n = exch_ts.shape[0]
    mask = p[P_MASK]
    n_ticks = book.shape[1]
    sample_ns = p[P_SAMPLE_NS]
    # the cursors and both books' best levels live in locals; ``s`` is synced around calls
    # into the order-matching helpers and on return
    lo = s[S_LO_CUR]
    ex = s[S_EX_CUR]
    lo_bb, lo_ba = s[S_LO_BB], s[S_LO_BA]
    ex_bb, ex_ba = s[S_EX_BB], s[S_EX_BA]
    t_ld = local_ts[local_order[lo]] if lo < n else INT_MAX
    t_ed = exch_ts[ex] if ex < n else INT_MAX
    next_sample = s[S_NEXT_SAMPLE] if sample_ns > 0 else INT_MAX
    top_seen = s[S_TOP_PENDING] == 1
    probe_due = INT_MAX
    reason = W_END
    while True:
        t_lr = s[S_NEXT_RESP]
        t_eo = s[S_NEXT_REQ]
        t = min(min(t_ld, t_lr), min(t_ed, t_eo))
        if t == INT_MAX:
            reason = W_END
            break
        if t > until:
            s[S_NOW] = until
            reason = W_UNTIL
            break
        s[S_NOW] = t
        if t_ld == t:
            row = local_order[lo]
            lo += 1
            t_ld = local_ts[local_order[lo]] if lo < n else INT_MAX
            if next_sample < t:
                s[S_LO_BB], s[S_LO_BA] = lo_bb, lo_ba
                while next_sample < t and s[S_N_SAMPLE] < samples.shape[0]:
                    samples[s[S_N_SAMPLE]] = _mid(s, book, pf, S_LO_BB, S_LO_BA)
                    s[S_N_SAMPLE] += 1
                    next_sample += sample_ns
            k = kind[row]
            if k == K_DEPTH or k == K_SNAPSHOT or k == K_CLEAR:
                if k == K_CLEAR:
                    if side[row] >= 0:
                        book[LOB, :] = 0.0
                        lo_bb = -1
                    if side[row] <= 0:
                        book[LOA, :] = 0.0
                        lo_ba = n_ticks
                    top_seen = True
                elif tick[row] >= 0:  # rows outside the price band change nothing we keep
                    tk = tick[row]
                    is_bid = side[row] > 0
                    if (tk >= lo_bb) if is_bid else (tk <= lo_ba):
                        top_seen = True
                    lo_bb, lo_ba = _set_level(
                        book, LOB if is_bid else LOA, tk, qty[row], lo_bb, lo_ba, is_bid
                    )
                if msg_end[row]:
                    top = top_seen
                    top_seen = False
                    if mask & M_EVENT or (top and mask & M_TOP):
                        s[S_WAKE_TOP] = 1 if top else 0
                        s[S_WAKE_ROW] = row
                        reason = W_EVENT if mask & M_EVENT else W_TOP
                        break
            elif k == K_TRADE and mask & M_TRADE and tick[row] >= 0:
                s[S_WAKE_ROW] = row
                reason = W_TRADE
                break
            continue
        if t_lr == t:
            reason = W_RESPONSE
            break
        if t_ed == t:
            # a data row can fill every resting order (and settle funding): keep room for it
            if ri.shape[0] - s[S_N_RESP] < s[S_N_ACTIVE] + 8:
                reason = W_SPACE
                break
            cur = ex
            ex += 1
            t_ed = exch_ts[ex] if ex < n else INT_MAX
            k = kind[cur]
            # probes fall due strictly after their time; new fills restart the search
            if t > probe_due or (probe_due == INT_MAX and s[S_PROBE] < s[S_N_RESP]):
                s[S_EX_BB], s[S_EX_BA] = ex_bb, ex_ba
                probe_due = _resolve_probes(s, book, ri, rf, pf, p, t)
            if s[S_FUND_T] > s[S_FUND_DONE] and t > s[S_FUND_T]:
                _settle_funding(s, sf, ri, rf, lat, oi, t)
            elif k == K_FUNDING and ival[cur] > s[S_FUND_T] > s[S_FUND_DONE] and t >= s[S_FUND_T]:
                # the next period is announced exactly at the funding time: settle this one first
                _settle_funding(s, sf, ri, rf, lat, oi, t)
            if k == K_DEPTH or k == K_SNAPSHOT:
                tk = tick[cur]
                if tk < 0:
                    s[S_DROPPED] += 1
                else:
                    is_bid = side[cur] > 0
                    row = EXB if is_bid else EXA
                    prev = book[row, tk]
                    old_bb, old_ba = ex_bb, ex_ba
                    ex_bb, ex_ba = _set_level(book, row, tk, qty[cur], ex_bb, ex_ba, is_bid)
                    if s[S_N_ACTIVE] > 0 and _touches(
                        s, oi, active, is_bid, tk, old_bb, old_ba, ex_bb, ex_ba
                    ):
                        s[S_EX_BB], s[S_EX_BA] = ex_bb, ex_ba
                        _exch_level(
                            s,
                            book,
                            oi,
                            of,
                            ri,
                            rf,
                            lat,
                            p,
                            pf,
                            active,
                            t,
                            is_bid,
                            tk,
                            prev,
                            qty[cur],
                            old_bb,
                            old_ba,
                        )
                        ex_bb, ex_ba = s[S_EX_BB], s[S_EX_BA]
            elif k == K_TRADE:
                if tick[cur] >= 0 and _trade_touches(s, oi, active, side[cur], tick[cur]):
                    s[S_EX_BB], s[S_EX_BA] = ex_bb, ex_ba
                    _exch_trade(
                        s, book, oi, of, ri, rf, lat, pf, active, t, side[cur], tick[cur], qty[cur]
                    )
            elif k == K_CLEAR:
                if side[cur] >= 0:
                    book[EXB, :] = 0.0
                    ex_bb = -1
                if side[cur] <= 0:
                    book[EXA, :] = 0.0
                    ex_ba = n_ticks
            elif k == K_FUNDING:
                sf[F_FUND_RATE] = qty[cur]
                sf[F_FUND_MARK] = fpx[cur]
                if ival[cur] > s[S_FUND_T]:
                    s[S_FUND_T] = ival[cur]
            continue
        # an order request reaches the exchange; make sure a worst-case step has log space
        if ri.shape[0] - s[S_N_RESP] < p[P_MAX_WALK] + s[S_N_ACTIVE] + 8:
            reason = W_SPACE
            break
        s[S_EX_BB], s[S_EX_BA] = ex_bb, ex_ba
        _settle_funding(s, sf, ri, rf, lat, oi, t)
        k = _next_request(s, qi)
        qi[k, Q_DONE] = 1
        order = qi[k, Q_ORDER]
        if qi[k, Q_KIND] == REQ_NEW:
            _new_order(s, book, oi, of, ri, rf, lat, p, pf, active, order, t)
        else:
            _cancel(s, oi, of, ri, rf, lat, pf, active, order, t)
        _next_request(s, qi)
        ex_bb, ex_ba = s[S_EX_BB], s[S_EX_BA]
    s[S_LO_CUR], s[S_EX_CUR] = lo, ex
    s[S_TOP_PENDING] = 1 if top_seen else 0
    s[S_LO_BB], s[S_LO_BA] = lo_bb, lo_ba
    s[S_EX_BB], s[S_EX_BA] = ex_bb, ex_ba
    if sample_ns > 0:
        s[S_NEXT_SAMPLE] = next_sample
    return reason


@njit(cache=True)
def take_due(s, ri, now):
    """Indices of undelivered responses due by ``now``, in arrival order; marks them delivered."""
    low = s[S_RESP_LOW]
    n = s[S_N_RESP]
    count = 0
    for k in range(low, n):
        if ri[k, R_DELIVERED] == 0 and ri[k, R_LOCAL_TS] <= now:
            count += 1
    out = np.empty(count, dtype=np.int64)
    keys = np.empty(count, dtype=np.int64)
    j = 0
    for k in range(low, n):
        if ri[k, R_DELIVERED] == 0 and ri[k, R_LOCAL_TS] <= now:
            out[j] = k
            keys[j] = ri[k, R_LOCAL_TS]
            ri[k, R_DELIVERED] = 1
            j += 1
    out = out[np.argsort(keys, kind="mergesort")]
    while low < n and ri[low, R_DELIVERED] == 1:
        low += 1
    s[S_RESP_LOW] = low
    nxt = INT_MAX
    for k in range(low, n):
        if ri[k, R_DELIVERED] == 0 and ri[k, R_LOCAL_TS] < nxt:
            nxt = ri[k, R_LOCAL_TS]
    s[S_NEXT_RESP] = nxt
    return out


@njit(cache=True)
def flush_samples(s, book, p, pf, samples, end):
    """Record the strategy-view mid on the sampling grid up to and including ``end``."""
    while p[P_SAMPLE_NS] > 0 and s[S_NEXT_SAMPLE] <= end and s[S_N_SAMPLE] < samples.shape[0]:
        samples[s[S_N_SAMPLE]] = _mid(s, book, pf, S_LO_BB, S_LO_BA)
        s[S_N_SAMPLE] += 1
        s[S_NEXT_SAMPLE] += p[P_SAMPLE_NS]
    return s[S_N_SAMPLE]
