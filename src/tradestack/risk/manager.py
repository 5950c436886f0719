"""The risk layer's one entry point for an engine: pre-trade, portfolio rules, kill switch."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from tradestack.core.ids import InstrumentId
from tradestack.core.instruments import Instrument
from tradestack.core.orders import Order
from tradestack.portfolio.account import Portfolio
from tradestack.risk.actions import ActionLog, RiskAction
from tradestack.risk.config import RiskConfig
from tradestack.risk.denials import Denial, DenialLog
from tradestack.risk.kill_switch import KillSwitch
from tradestack.risk.portfolio_rules import PortfolioRisk, Regime
from tradestack.risk.pretrade import PreTradeRisk

__all__ = ["RiskManager"]


class RiskManager:
    """Bundles :class:`PreTradeRisk`, :class:`PortfolioRisk` and one :class:`KillSwitch` (built
    from the config's paths when not given) around one :class:`DenialLog` and one
    :class:`ActionLog`.

    Engine loop: :meth:`on_price` for each price, :meth:`check_order` before each order is sent,
    :meth:`evaluate` after each mark-to-market (submit the closing orders of the actions with
    ``flatten=True``), :meth:`scale_target` when a strategy sizes a target.
    """

    def __init__(self, config: RiskConfig, *, kill_switch: KillSwitch | None = None) -> None:
        if kill_switch is None:
            kill_switch = KillSwitch(
                _path(config.kill_switch_state_path), _path(config.kill_switch_flag_path)
            )
        self.config = config
        self.kill_switch = kill_switch
        self.denials = DenialLog()
        self.actions = ActionLog()
        self.pretrade = PreTradeRisk(config, kill_switch, denials=self.denials)
        self.portfolio_risk = PortfolioRisk(config, kill_switch=kill_switch, actions=self.actions)

    def check_order(
        self,
        order: Order,
        *,
        now_ns: int,
        instrument: Instrument,
        portfolio: Portfolio,
        mid: float,
        open_orders: Sequence[Order],
        flatten: bool = False,
    ) -> Denial | None:
        """None when the order may be sent, else the recorded denial (see :class:`PreTradeRisk`)."""
        return self.pretrade.check(
            order,
            now_ns=now_ns,
            instrument=instrument,
            portfolio=portfolio,
            mid=mid,
            open_orders=open_orders,
            flatten=flatten,
        )

    def on_price(self, instrument_id: InstrumentId, ts_ns: int, price: float) -> None:
        """Feed one price to the rolling returns (correlation, volatility regime)."""
        self.portfolio_risk.on_price(instrument_id, ts_ns, price)

    def evaluate(self, now_ns: int, portfolio: Portfolio) -> list[RiskAction]:
        """Circuit breaker, stop-loss and take-profit; the actions that fired now."""
        return self.portfolio_risk.evaluate(now_ns, portfolio)

    def scale_target(
        self,
        instrument_id: InstrumentId,
        target_notional: float,
        *,
        portfolio: Portfolio,
        targets: Mapping[InstrumentId, float] | None = None,
    ) -> tuple[float, list[str]]:
        """The target notional within the sizing limits, and the rules that changed it."""
        return self.portfolio_risk.scale_target(
            instrument_id, target_notional, portfolio=portfolio, targets=targets
        )

    def regime(self, instrument_id: InstrumentId) -> Regime:
        """ "normal" or "high" volatility regime of one instrument."""
        return self.portfolio_risk.regime(instrument_id)

    def summary(self) -> dict[str, object]:
        """What the risk layer did: denial and action counts by rule, target scalings by rule,
        the kill switch's state and reason, the current drawdown and the peak equity."""
        peak = self.portfolio_risk.peak_equity
        return {
            "denials": self.denials.counts(),
            "actions": self.actions.counts(),
            "scalings": dict(self.portfolio_risk.scalings),
            "kill_switch": self.kill_switch.state.value,
            "kill_switch_reason": self.kill_switch.reason,
            "drawdown": self.portfolio_risk.drawdown,
            "peak_equity": None if peak != peak else peak,
        }


def _path(text: str | None) -> Path | None:
    return Path(text).expanduser() if text is not None else None
