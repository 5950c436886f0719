"""How our orders meet the exchange book inside the compiled core: depth walks, queue
positions and queue models, fills, cancels, funding, and the response log they write."""

from __future__ import annotations

import math

from numba import njit

from tradestack.execution.sim.layout import (
    EXA,
    EXB,
    F_FUND_MARK,
    F_FUND_RATE,
    INT_MAX,
    O_CANCEL,
    O_LAST_TS,
    O_LEAVES,
    O_QUEUE_FILLED,
    O_SEQ,
    O_SIDE,
    O_STATUS,
    O_TICK,
    O_TIF,
    O_TYPE,
    OF_AHEAD,
    OF_TRADED,
    P_DEPLETE,
    P_MAX_WALK,
    P_PROBE_NS,
    P_QUEUE,
    PF_ADV,
    PF_BASE,
    PF_IMPACT_Y,
    PF_LOT,
    PF_QUEUE_N,
    PF_SIGMA,
    PF_TICK,
    Q_DONE,
    Q_FIFO,
    Q_POWER,
    Q_PRO_RATA,
    Q_TS,
    R_DELIVERED,
    R_EXCH_TS,
    R_KIND,
    R_LOCAL_TS,
    R_LOTS,
    R_MAKER,
    R_ORDER,
    R_REASON,
    R_TICK,
    RESP_ACK,
    RESP_CANCEL_REJECTED,
    RESP_CANCELED,
    RESP_EXPIRED,
    RESP_FILL,
    RESP_FUNDING,
    RF_AHEAD,
    RF_COLS,
    RF_MARK,
    RF_MID,
    RF_MID_AFTER,
    RF_RATE,
    S_EX_BA,
    S_EX_BB,
    S_FUND_DONE,
    S_FUND_T,
    S_LAT_CUR,
    S_N_ACTIVE,
    S_N_REQ,
    S_N_RESP,
    S_NEXT_REQ,
    S_NEXT_RESP,
    S_POS,
    S_PROBE,
    S_REQ_LOW,
    S_SEQ,
    ST_DONE,
    ST_IN_FLIGHT,
    ST_RESTING,
    T_MARKET,
    TIF_FOK,
    TIF_IOC,
    TIF_POST,
    WHY_FOK,
    WHY_IOC,
    WHY_NO_LIQUIDITY,
    WHY_NONE,
    WHY_POST_ONLY,
    WHY_WALK_LIMIT,
)
from tradestack.execution.sim.levels import _best_ask_from, _best_bid_from, _mid


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
def _fill_rest(s, book, oi, of, ri, rf, lat, pf, active, o, ts):
    """Fill all that is left of resting order ``o`` at its own price, as maker (the market
    traded through it)."""
    _fill(s, book, oi, of, ri, rf, lat, pf, active, o, ts, oi[o, O_TICK], oi[o, O_LEAVES], 1,
          of[o, OF_AHEAD])  # fmt: skip


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
                _fill_rest(s, book, oi, of, ri, rf, lat, pf, active, o, ts)
            else:
                j += 1
    elif not is_bid and ba < old_ba:
        j = 0
        while j < s[S_N_ACTIVE]:
            o = active[j]
            if oi[o, O_SIDE] > 0 and oi[o, O_TICK] >= ba:
                _fill_rest(s, book, oi, of, ri, rf, lat, pf, active, o, ts)
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
            _fill_rest(s, book, oi, of, ri, rf, lat, pf, active, o, ts)
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
