"""Execution: simulated venues and (later) live venues and the order manager."""

from tradestack.execution.bar_venue import BarVenueConfig, SimulatedBarVenue
from tradestack.execution.costs import FeeModel, SlippageModel

__all__ = ["BarVenueConfig", "FeeModel", "SimulatedBarVenue", "SlippageModel"]
