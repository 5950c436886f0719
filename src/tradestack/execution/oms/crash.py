"""Named crash points, for the kill -9 tests of the order manager.

With ``TRADESTACK_CRASH_AT="<window>:<n>"`` in its environment, a process kills itself with
SIGKILL (no cleanup, no flush: a power cut as far as the state database can tell) the ``n``-th
time it passes the point named ``<window>``. The windows are the gaps of an order's life:

``intent``  the intent row is committed, the request has not left;
``sent``    the venue took the request, its answer is not stored;
``ack``     the answer is stored, the order's fills are not;
``fill``    a fill (and the position it moved, one transaction) is committed, nothing after it.

Without the variable (always, outside those tests) a point costs one truth test.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

WINDOWS = ("intent", "sent", "ack", "fill")
ENV = "TRADESTACK_CRASH_AT"


def _parse(spec: str) -> tuple[str, int] | None:
    if not spec:
        return None
    window, _, count = spec.partition(":")
    if window not in WINDOWS or not count.isdigit() or int(count) < 1:
        raise ValueError(
            f"{ENV}={spec!r}: expected '<window>:<n>' with window one of {', '.join(WINDOWS)} "
            "and n >= 1"
        )
    return window, int(count)


_TARGET = _parse(os.environ.get(ENV, ""))
_passed: Counter[str] = Counter()


def crash_point(window: str) -> None:
    """Die here (SIGKILL) if this is the armed window's n-th pass (see the module docstring)."""
    if _TARGET is None:
        return
    _passed[window] += 1
    if (window, _passed[window]) == _TARGET:
        os.kill(os.getpid(), signal.SIGKILL)
