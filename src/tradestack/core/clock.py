"""Clocks: the only source of time for a strategy."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """Tells the current time in integer nanoseconds since the epoch, UTC."""

    def now_ns(self) -> int: ...


class SimulatedClock:
    """A clock the engine advances to each event's timestamp; it never goes backwards."""

    __slots__ = ("_now_ns",)

    def __init__(self, start_ns: int = 0) -> None:
        self._now_ns = start_ns

    def now_ns(self) -> int:
        return self._now_ns

    def advance_to(self, ts_ns: int) -> None:
        if ts_ns < self._now_ns:
            raise ValueError(f"simulated clock cannot go back from {self._now_ns} to {ts_ns}")
        self._now_ns = ts_ns


class LiveClock:
    """Wall-clock time."""

    def now_ns(self) -> int:
        return time.time_ns()
