"""Denied orders: what was denied, by which rule, with the numbers that decided it."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from tradestack.core.ids import InstrumentId

__all__ = ["Denial", "DenialLog", "logger"]

logger = logging.getLogger("tradestack.risk")


@dataclass(frozen=True, slots=True)
class Denial:
    """One order the risk layer refused: ``rule`` is a stable name (see :class:`RiskRule`),
    ``detail`` says why in words and numbers a person can act on."""

    ts_ns: int
    rule: str
    instrument_id: InstrumentId
    client_order_id: str | None
    detail: str

    def __str__(self) -> str:
        order = f" {self.client_order_id}" if self.client_order_id else ""
        return f"risk denied{order} {self.instrument_id} [{self.rule}]: {self.detail}"


class DenialLog:
    """Every denial of a run, in order; counts them by rule and logs each one once at WARNING
    on the ``tradestack.risk`` logger."""

    def __init__(self) -> None:
        self._denials: list[Denial] = []
        self._counts: Counter[str] = Counter()

    def record(self, denial: Denial) -> Denial:
        """Keep, count and log one denial; returns it."""
        self._denials.append(denial)
        self._counts[str(denial.rule)] += 1
        logger.warning("%s", denial)
        return denial

    def counts(self) -> dict[str, int]:
        """Number of denials per rule name."""
        return dict(self._counts)

    @property
    def denials(self) -> tuple[Denial, ...]:
        return tuple(self._denials)

    def __len__(self) -> int:
        return len(self._denials)

    def __iter__(self) -> Iterator[Denial]:
        return iter(self._denials)
