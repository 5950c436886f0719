"""Array layouts shared by the compiled L2 core and its Python wrapper.

The core keeps all state in plain numpy arrays so numba can cache it: an int64 state vector
(``S_*``), a float state vector (``F_*``), int and float parameters (``P_*``, ``PF_*``), order
rows (``O_*`` int columns, ``OF_*`` float columns), requests in flight to the exchange
(``Q_*``) and responses on their way back (``R_*`` int, ``RF_*`` float). The names below are
the column indices; the other constants are the codes stored in them.
"""

from __future__ import annotations

import numpy as np

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
