"""Portfolio rules: drawdown circuit breaker, stop-loss / take-profit, and target sizing limits."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Literal

from tradestack.core.ids import InstrumentId
from tradestack.portfolio.account import Portfolio
from tradestack.risk.actions import ActionLog, RiskAction, RiskActionKind
from tradestack.risk.config import RiskConfig
from tradestack.risk.kill_switch import KillSwitch, KillSwitchState
from tradestack.risk.numeric import exceeds, fmt
from tradestack.risk.returns import PriceHistory, correlation, stdev
from tradestack.risk.rule_names import RiskRule

__all__ = ["PortfolioRisk", "Regime"]

Regime = Literal["normal", "high"]

_TOL = 1e-12


class PortfolioRisk:
    """Watches the whole book: equity against its peak, each position against its entry, and
    sizes targets within the exposure, correlation, concentration and volatility limits.

    Feed every price with :meth:`on_price` (one return per instrument and timestamp; correlations
    pair returns by timestamp, so feed instruments on a common clock such as bar closes) and call
    :meth:`evaluate` after the portfolio is marked. Actions are recorded in ``actions``.

    Circuit breaker: when equity falls ``max_drawdown_fraction`` or more below its peak, the kill
    switch is HALTED and one ``FLATTEN_ALL`` action fires. It fires once; it re-arms when the kill
    switch is resumed (or :meth:`rearm_breaker` is called), and the peak then restarts from the
    current equity, the new baseline the operator accepted.

    Stop-loss / take-profit: a position whose unrealized return against its average entry price
    (sign-adjusted for shorts) is ``<= -stop_loss_fraction`` or ``>= take_profit_fraction`` gets
    one ``FLATTEN`` action; it fires again only for a new entry (different side or average).
    """

    def __init__(
        self,
        config: RiskConfig,
        *,
        kill_switch: KillSwitch | None = None,
        actions: ActionLog | None = None,
    ) -> None:
        self.config = config
        self.kill_switch = kill_switch
        self.actions = actions if actions is not None else ActionLog()
        self.scalings: Counter[str] = Counter()
        self._history: dict[InstrumentId, PriceHistory] = {}
        self._peak = math.nan
        self._equity = math.nan
        self._tripped = False
        self._fired: dict[InstrumentId, tuple[int, float]] = {}

    # -- inputs -----------------------------------------------------------------------------
    def on_price(self, instrument_id: InstrumentId, ts_ns: int, price: float) -> None:
        """Add one price to the instrument's rolling returns."""
        history = self._history.get(instrument_id)
        if history is None:
            history = self._history[instrument_id] = PriceHistory(self.config.history_window)
        history.add(ts_ns, price)

    # -- drawdown ---------------------------------------------------------------------------
    @property
    def peak_equity(self) -> float:
        """Highest equity seen by :meth:`evaluate` (NaN before the first call)."""
        return self._peak

    @property
    def drawdown(self) -> float:
        """Fraction below the peak at the last :meth:`evaluate` (0 at the peak)."""
        if not (self._peak > 0.0 and math.isfinite(self._equity)):
            return 0.0
        return max(0.0, (self._peak - self._equity) / self._peak)

    @property
    def breaker_tripped(self) -> bool:
        return self._tripped

    def rearm_breaker(self) -> None:
        """Arm the circuit breaker again; the peak restarts from the last equity."""
        self._tripped = False
        self._peak = self._equity

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, now_ns: int, portfolio: Portfolio) -> list[RiskAction]:
        """Check the breaker and every position; returns the actions that fired now."""
        cfg = self.config
        equity = portfolio.equity()
        self._equity = equity
        if self.kill_switch is not None:
            self.kill_switch.refresh()
        if (
            self._tripped
            and self.kill_switch is not None
            and self.kill_switch.state is KillSwitchState.ACTIVE
        ):
            self.rearm_breaker()
        if math.isfinite(equity) and not equity <= self._peak:
            self._peak = equity
        if self._tripped:
            return []
        limit = cfg.max_drawdown_fraction
        drawdown = self.drawdown
        if limit is not None and drawdown >= limit - _TOL:
            self._tripped = True
            reason = f"circuit breaker: drawdown {drawdown * 100:.2f}% ≥ {limit * 100:g}%"
            if self.kill_switch is not None:
                self.kill_switch.halt(reason, changed_by="risk:drawdown_breaker", ts_ns=now_ns)
            detail = f"{reason} (equity {fmt(equity)}, peak {fmt(self._peak)})"
            action = RiskAction(
                now_ns,
                RiskActionKind.FLATTEN_ALL,
                str(RiskRule.DRAWDOWN_BREAKER),
                None,
                detail,
                halt=True,
            )
            return [self.actions.record(action)]
        return self._position_actions(now_ns, portfolio)

    def _position_actions(self, now_ns: int, portfolio: Portfolio) -> list[RiskAction]:
        cfg = self.config
        fired: list[RiskAction] = []
        for inst_id, position in portfolio.positions.items():
            if position.qty_f == 0.0 or position.avg_price_f <= 0.0:
                self._fired.pop(inst_id, None)
                continue
            if not portfolio.has_mark(inst_id):
                continue
            side = 1 if position.qty_f > 0 else -1
            entry = (side, position.avg_price_f)
            previous = self._fired.get(inst_id)
            if previous is not None:
                if previous[0] == side and math.isclose(previous[1], entry[1], rel_tol=1e-9):
                    continue
                del self._fired[inst_id]
            mark = portfolio.mark_price(inst_id)
            ret = side * (mark / position.avg_price_f - 1.0)
            rule: RiskRule | None = None
            if cfg.stop_loss_fraction is not None and ret <= -cfg.stop_loss_fraction + _TOL:
                rule, limit = RiskRule.STOP_LOSS, -cfg.stop_loss_fraction
            elif cfg.take_profit_fraction is not None and ret >= cfg.take_profit_fraction - _TOL:
                rule, limit = RiskRule.TAKE_PROFIT, cfg.take_profit_fraction
            if rule is None:
                continue
            self._fired[inst_id] = entry
            held = "long" if side > 0 else "short"
            detail = (
                f"{held} {position.qty} entry {fmt(position.avg_price_f)} mark {fmt(mark)}: "
                f"unrealized {ret * 100:+.2f}% "
                f"({'≤' if rule is RiskRule.STOP_LOSS else '≥'} {limit * 100:+g}%)"
            )
            action = RiskAction(now_ns, RiskActionKind.FLATTEN, str(rule), inst_id, detail)
            fired.append(self.actions.record(action))
        return fired

    # -- statistics -------------------------------------------------------------------------
    def correlation(self, a: InstrumentId, b: InstrumentId) -> float | None:
        """Correlation of the two instruments' log returns over the last ``correlation_window``
        returns of ``a`` paired with ``b``'s by timestamp; None with fewer than
        ``max(3, correlation_window // 2)`` pairs or a constant series."""
        if a == b:
            return 1.0
        ha, hb = self._history.get(a), self._history.get(b)
        if ha is None or hb is None:
            return None
        window = self.config.correlation_window
        ra = list(ha.returns_by_ts().items())[-window:]
        rb = hb.returns_by_ts()
        pairs = [(x, rb[ts]) for ts, x in ra if ts in rb]
        if len(pairs) < max(3, window // 2):
            return None
        rho = correlation([x for x, _ in pairs], [y for _, y in pairs])
        return None if math.isnan(rho) else rho

    def volatility_ratio(self, instrument_id: InstrumentId) -> float | None:
        """Short-window return std / long-window return std; None before ``long`` returns."""
        history = self._history.get(instrument_id)
        cfg = self.config
        if history is None:
            return None
        rets = history.returns()
        if len(rets) < cfg.vol_regime_long_window:
            return None
        long_std = stdev(rets[-cfg.vol_regime_long_window :])
        if not long_std > 0.0:
            return None
        return stdev(rets[-cfg.vol_regime_short_window :]) / long_std

    def regime(self, instrument_id: InstrumentId) -> Regime:
        """ "high" while the volatility ratio exceeds ``vol_regime_ratio``, else "normal"."""
        limit = self.config.vol_regime_ratio
        ratio = self.volatility_ratio(instrument_id)
        return "high" if limit is not None and ratio is not None and ratio > limit else "normal"

    # -- sizing -----------------------------------------------------------------------------
    def scale_target(
        self,
        instrument_id: InstrumentId,
        target_notional: float,
        *,
        portfolio: Portfolio,
        targets: Mapping[InstrumentId, float] | None = None,
    ) -> tuple[float, list[str]]:
        """The signed target notional after the sizing limits, and the rules that changed it.

        The other instruments' holdings are their entries in ``targets`` when given, else their
        current positions at the mark. In order:

        1. volatility regime: × ``vol_regime_scale`` while :meth:`regime` is "high";
        2. correlation (``correlation_aware``): with S = 1 + Σ ρ_ij over the other holdings j on
           the same side as the target whose correlation ρ_ij exceeds ``correlation_threshold``
           (ρ_ii = 1 is the 1), the target is divided by √S. n same-side instruments that move
           together (ρ ≈ 1) then each get 1/√n of their size, so the cluster adds √n, not n,
           single-position risks;
        3. gross exposure: |target| ≤ ``max_gross_exposure_fraction`` × equity − Σ_j |h_j|;
        4. concentration (two instruments or more): |target| / (|target| + Σ_j |h_j|) ≤
           ``max_concentration_fraction``.

        Limits only ever shrink a target toward 0; they never flip or grow it.
        """
        cfg = self.config
        target = target_notional
        rules: list[str] = []
        if target == 0.0 or not math.isfinite(target):
            return (0.0 if not math.isfinite(target) else target), rules
        sign = 1.0 if target > 0 else -1.0
        others = self._holdings(instrument_id, portfolio, targets)
        if cfg.vol_regime_ratio is not None and self.regime(instrument_id) == "high":
            target *= cfg.vol_regime_scale
            rules.append(str(RiskRule.VOL_REGIME))
        if cfg.correlation_aware:
            total = 1.0
            for other, held in others.items():
                if held * sign <= 0.0:
                    continue
                rho = self.correlation(instrument_id, other)
                if rho is not None and rho > cfg.correlation_threshold:
                    total += rho
            if total > 1.0:
                target /= math.sqrt(total)
                rules.append(str(RiskRule.CORRELATION))
        other_gross = math.fsum(abs(v) for v in others.values())
        if cfg.max_gross_exposure_fraction is not None:
            room = max(0.0, cfg.max_gross_exposure_fraction * portfolio.equity() - other_gross)
            if exceeds(abs(target), room):
                target = sign * room
                rules.append(str(RiskRule.GROSS_EXPOSURE))
        share = cfg.max_concentration_fraction
        if share is not None and share < 1.0 and other_gross > 0.0 and target != 0.0:
            most = share / (1.0 - share) * other_gross
            if exceeds(abs(target), most):
                target = sign * most
                rules.append(str(RiskRule.CONCENTRATION))
        self.scalings.update(rules)
        return target, rules

    def _holdings(
        self,
        instrument_id: InstrumentId,
        portfolio: Portfolio,
        targets: Mapping[InstrumentId, float] | None,
    ) -> dict[InstrumentId, float]:
        """Signed notional of every other instrument: its target if given, else its position."""
        held: dict[InstrumentId, float] = {}
        for inst_id, position in portfolio.positions.items():
            if inst_id == instrument_id or position.qty_f == 0.0:
                continue
            mark = portfolio.mark_price(inst_id)
            price = mark if math.isfinite(mark) else position.avg_price_f
            held[inst_id] = position.qty_f * price * position.multiplier_f
        for inst_id, value in (targets or {}).items():
            if inst_id != instrument_id:
                held[inst_id] = value
        return {k: v for k, v in held.items() if v != 0.0 and math.isfinite(v)}
