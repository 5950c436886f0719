"""What the portfolio rules ask the engine to do (flatten one position, flatten everything)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum

from tradestack.core.ids import InstrumentId
from tradestack.risk.denials import logger

__all__ = ["ActionLog", "RiskAction", "RiskActionKind"]


class RiskActionKind(StrEnum):
    """What to do: close one instrument's position, or close every position."""

    FLATTEN = "flatten"
    FLATTEN_ALL = "flatten_all"


@dataclass(frozen=True, slots=True)
class RiskAction:
    """An instruction from the portfolio rules to the engine.

    ``FLATTEN`` names ``instrument_id``; ``FLATTEN_ALL`` has none. ``halt`` is true when the rule
    also tripped the kill switch to HALTED (the circuit breaker). Submit the closing orders with
    ``flatten=True`` so the pre-trade checks let them through in every kill-switch state.
    """

    ts_ns: int
    kind: RiskActionKind
    rule: str
    instrument_id: InstrumentId | None
    detail: str
    halt: bool = False

    def __str__(self) -> str:
        target = f" {self.instrument_id}" if self.instrument_id is not None else ""
        halt = " + halt" if self.halt else ""
        return f"risk action {self.kind.value}{target}{halt} [{self.rule}]: {self.detail}"


class ActionLog:
    """Every action the portfolio rules fired, in order; counts them by rule (so a report can
    say how often the stop-loss fired) and logs each one once at WARNING."""

    def __init__(self) -> None:
        self._actions: list[RiskAction] = []
        self._counts: Counter[str] = Counter()

    def record(self, action: RiskAction) -> RiskAction:
        """Keep, count and log one action; returns it."""
        self._actions.append(action)
        self._counts[str(action.rule)] += 1
        logger.warning("%s", action)
        return action

    def counts(self) -> dict[str, int]:
        """Number of firings per rule name."""
        return dict(self._counts)

    @property
    def actions(self) -> tuple[RiskAction, ...]:
        return tuple(self._actions)

    def __len__(self) -> int:
        return len(self._actions)

    def __iter__(self) -> Iterator[RiskAction]:
        return iter(self._actions)
