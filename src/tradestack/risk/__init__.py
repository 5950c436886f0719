"""Risk: pre-trade checks, limits, drawdown breaker, kill switch (issue: multi-layer pipeline).

:class:`RiskManager` is the facade an engine uses; :class:`RiskConfig` holds every limit;
:class:`PreTradeRisk` gates each order, :class:`PortfolioRisk` watches the book and sizes targets,
:class:`KillSwitch` stops trading (persisted, settable by a file or ``tradestack kill-switch``).
Denials and actions carry a stable rule name from :class:`RiskRule`.
"""

from tradestack.risk.actions import ActionLog, RiskAction, RiskActionKind
from tradestack.risk.config import RiskConfig
from tradestack.risk.denials import Denial, DenialLog
from tradestack.risk.kill_switch import (
    KillSwitch,
    KillSwitchState,
    KillSwitchStateError,
    parse_flag,
)
from tradestack.risk.manager import RiskManager
from tradestack.risk.portfolio_rules import PortfolioRisk, Regime
from tradestack.risk.pretrade import OrderExposure, PreTradeRisk
from tradestack.risk.rule_names import RiskRule

__all__ = [
    "ActionLog",
    "Denial",
    "DenialLog",
    "KillSwitch",
    "KillSwitchState",
    "KillSwitchStateError",
    "OrderExposure",
    "PortfolioRisk",
    "PreTradeRisk",
    "Regime",
    "RiskAction",
    "RiskActionKind",
    "RiskConfig",
    "RiskManager",
    "RiskRule",
    "parse_flag",
]
