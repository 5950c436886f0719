"""The order manager: durable intents, deterministic client order ids, unknown outcomes resolved
by lookup, fills applied once per venue trade id, venue rate limits honoured."""

from tradestack.execution.oms.gateway import (
    OrderNotFound,
    RateLimited,
    UnknownOutcome,
    VenueAccount,
    VenueGateway,
    VenueOrder,
    VenueRejected,
    VenueTrade,
)
from tradestack.execution.oms.manager import OrderDenied, OrderManager, RetryPolicy

__all__ = [
    "OrderDenied",
    "OrderManager",
    "OrderNotFound",
    "RateLimited",
    "RetryPolicy",
    "UnknownOutcome",
    "VenueAccount",
    "VenueGateway",
    "VenueOrder",
    "VenueRejected",
    "VenueTrade",
]
