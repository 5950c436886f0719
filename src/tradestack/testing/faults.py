"""Deterministic fault injection for replayed streams.

Every decision is a pure function of ``(seed, stream position)``, so the same plan on the same
recording drops, duplicates and reorders exactly the same frames in every run, whatever the
timing of the sockets.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from enum import StrEnum


class Fault(StrEnum):
    """What happens to one frame of a fault-eligible stream (book diffs)."""

    NONE = "none"
    DROP = "drop"
    DUPLICATE = "duplicate"
    REORDER = "reorder"  # held back and sent after the next eligible frame
    MALFORMED = "malformed"


MALFORMED_FRAMES = (
    "",
    "{",
    "not json at all",
    "[1, 2",
    '{"stream": 42}',
    "null",
    '{"e": "depthUpdate", "b": "oops"}',
    "\x00\x01\x02",
)


@dataclass(frozen=True)
class FaultPlan:
    """Which faults to inject, as fractions of eligible frames, plus forced disconnects.

    ``disconnect_after`` lists counts of frames sent on one connection after which the server
    closes it abruptly; the n-th connection uses the n-th entry (later connections are spared).
    ``delay_s`` is added before every frame.
    """

    drop: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    malformed: float = 0.0
    disconnect_after: tuple[int, ...] = ()
    delay_s: float = 0.0
    seed: int = 0
    skip_first: int = 0
    log: list[tuple[int, Fault]] = field(default_factory=list, compare=False, repr=False)

    def __post_init__(self) -> None:
        total = self.drop + self.duplicate + self.reorder + self.malformed
        for name in ("drop", "duplicate", "reorder", "malformed", "delay_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"FaultPlan.{name} must be >= 0, got {getattr(self, name)}")
        if total > 1.0:
            raise ValueError(f"fault fractions add up to {total:.3f} > 1")

    @property
    def active(self) -> bool:
        return bool(
            self.drop or self.duplicate or self.reorder or self.malformed or self.disconnect_after
        )

    def decide(self, position: int) -> Fault:
        """The fault for the eligible frame at ``position`` (0-based), recorded in ``log``."""
        if position < self.skip_first:
            return Fault.NONE
        digest = hashlib.blake2b(struct.pack("<qq", self.seed, position), digest_size=8).digest()
        u = int.from_bytes(digest, "little") / 2**64
        fault = Fault.NONE
        for name, kind in (
            ("drop", Fault.DROP),
            ("duplicate", Fault.DUPLICATE),
            ("reorder", Fault.REORDER),
            ("malformed", Fault.MALFORMED),
        ):
            share = float(getattr(self, name))
            if u < share:
                fault = kind
                break
            u -= share
        if fault is not Fault.NONE:
            self.log.append((position, fault))
        return fault

    def malformed_frame(self, position: int) -> str:
        return MALFORMED_FRAMES[position % len(MALFORMED_FRAMES)]
