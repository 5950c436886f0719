"""Settings of the L2 simulated venue: queue model, latencies, costs, impact, reporting."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

import msgspec
import numpy as np


class LatencyModel(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One latency leg (order entry, or response back to us), in nanoseconds.

    ``constant``: always ``ns``. ``lognormal``: median ``median_ns`` with log-space spread
    ``sigma``, drawn from the venue's seeded generator. ``table``: ``ns`` per venue name
    (``table[venue]``, falling back to ``ns``) — put your own measured numbers there.
    """

    kind: Literal["constant", "lognormal", "table"] = "constant"
    ns: int = 0
    median_ns: int = 0
    sigma: float = 0.5
    table: dict[str, int] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.ns < 0 or self.median_ns < 0 or any(v < 0 for v in self.table.values()):
            raise ValueError("latencies must be >= 0 ns")
        if self.kind == "lognormal" and (self.median_ns <= 0 or not self.sigma > 0):
            raise ValueError("a lognormal latency needs median_ns > 0 and sigma > 0")

    def sample(self, rng: np.random.Generator, venue: str, size: int) -> np.ndarray:
        """``size`` latencies (int64 ns)."""
        if self.kind == "lognormal":
            draws = rng.lognormal(np.log(self.median_ns), self.sigma, size)
            return np.round(draws).astype(np.int64)
        value = self.table.get(venue, self.ns) if self.kind == "table" else self.ns
        return np.full(size, value, dtype=np.int64)


class L2VenueConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How the L2 simulated venue matches, delays and charges (see ``docs/architecture.md``).

    ``queue_model``: how cancels at our price move our queue position — ``fifo`` (cancels come
    from behind us: the conservative FIFO-worst case), ``pro_rata`` (cancels spread evenly over
    the queue), ``power`` / ``log`` (the probabilistic models: a decrease is ahead of us with
    probability f(ahead)/(f(ahead)+f(behind)), f = x**queue_power or log(1+x)).
    ``consume_liquidity``: depth we take stays gone until the venue next reports that level.
    ``impact_coefficient`` > 0 fills what visible depth cannot at the square-root-law price
    Y·σ·sqrt(Q/V) past the last level (σ daily volatility, V daily volume); 0 = off.
    ``feed_latency_ns`` replaces the recorded receive times by exchange time + a constant.
    A fill is flagged toxic when the mid ``toxic_horizon_ns`` later moved against it by more
    than ``toxic_threshold_bps``.
    """

    queue_model: Literal["fifo", "pro_rata", "power", "log"] = "fifo"
    queue_power: float = 2.0
    entry_latency: LatencyModel = LatencyModel()
    response_latency: LatencyModel = LatencyModel()
    feed_latency_ns: int | None = None
    maker_fee_bps: Decimal | None = None
    taker_fee_bps: Decimal | None = None
    consume_liquidity: bool = True
    impact_coefficient: float = 0.0
    impact_daily_volatility: float = 0.0
    impact_daily_volume: float = 0.0
    max_walk_levels: int = 1000
    toxic_horizon_ns: int = 1_000_000_000
    toxic_threshold_bps: float = 1.0
    price_band: float = 0.2
    sample_interval_ns: int = 1_000_000_000
    leverage: Decimal = Decimal(1)
    allow_short: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.impact_coefficient < 0:
            raise ValueError("impact_coefficient must be >= 0")
        if self.impact_coefficient > 0 and not (
            self.impact_daily_volatility > 0 and self.impact_daily_volume > 0
        ):
            raise ValueError(
                "the square-root impact model needs impact_daily_volatility > 0 and "
                "impact_daily_volume > 0"
            )
        if self.queue_model == "power" and not self.queue_power > 0:
            raise ValueError("queue_power must be > 0")
        if self.feed_latency_ns is not None and self.feed_latency_ns < 0:
            raise ValueError("feed_latency_ns must be >= 0")
        if not 0 < self.price_band <= 10:
            raise ValueError("price_band must be in (0, 10]")
        if not 1 <= self.max_walk_levels <= 100_000:
            raise ValueError("max_walk_levels must be in [1, 100000]")
        if self.sample_interval_ns <= 0 or self.toxic_horizon_ns <= 0:
            raise ValueError("sample_interval_ns and toxic_horizon_ns must be > 0")
        if self.leverage <= 0:
            raise ValueError("leverage must be > 0")
