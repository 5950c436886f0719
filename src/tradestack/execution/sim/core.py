"""The compiled book and matching core of the L2 simulated venue (numba, cached).

Two books are kept on one price grid (tick index = round(price / tick) - base): the exchange's,
advanced by exchange timestamps, which our orders match against; and the strategy's view,
advanced by receive timestamps. :func:`advance` replays four time-ordered queues — local data,
order responses reaching the strategy, exchange data, order requests reaching the exchange —
and returns to Python only when the strategy has to be woken (a timer is due, one of its
order responses arrives, the top of book changes, a trade prints, or on every event). Ties
at one timestamp go local data, responses, exchange data, requests (as in hftbacktest).

Everything lives in plain arrays so the functions can be cached (layouts in :mod:`.layout`);
order matching is in :mod:`.matching`, level arrays in :mod:`.levels`. Quantities of our own
orders are whole lots (int64); book quantities are the venue's floats.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tradestack.execution.sim.layout import (
    EXA,
    EXB,
    F_FUND_MARK,
    F_FUND_RATE,
    INT_MAX,
    K_CLEAR,
    K_DEPTH,
    K_FUNDING,
    K_SNAPSHOT,
    K_TRADE,
    LOA,
    LOB,
    M_EVENT,
    M_TOP,
    M_TRADE,
    P_MASK,
    P_MAX_WALK,
    P_SAMPLE_NS,
    Q_DONE,
    Q_KIND,
    Q_ORDER,
    R_DELIVERED,
    R_LOCAL_TS,
    REQ_NEW,
    S_DROPPED,
    S_EX_BA,
    S_EX_BB,
    S_EX_CUR,
    S_FUND_DONE,
    S_FUND_T,
    S_LO_BA,
    S_LO_BB,
    S_LO_CUR,
    S_N_ACTIVE,
    S_N_RESP,
    S_N_SAMPLE,
    S_NEXT_REQ,
    S_NEXT_RESP,
    S_NEXT_SAMPLE,
    S_NOW,
    S_PROBE,
    S_RESP_LOW,
    S_TOP_PENDING,
    S_WAKE_ROW,
    S_WAKE_TOP,
    W_END,
    W_EVENT,
    W_RESPONSE,
    W_SPACE,
    W_TOP,
    W_TRADE,
    W_UNTIL,
)
from tradestack.execution.sim.levels import _mid, _set_level
from tradestack.execution.sim.matching import (
    _cancel,
    _exch_level,
    _exch_trade,
    _new_order,
    _next_request,
    _resolve_probes,
    _settle_funding,
    _touches,
    _trade_touches,
)


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
