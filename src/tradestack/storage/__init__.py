"""Durable trading state: orders, order events, fills, positions, balances and equity.

One SQLAlchemy schema, migrated by Alembic, on SQLite (WAL, ``synchronous=FULL``; the embedded
default) or PostgreSQL (production). See :class:`~tradestack.storage.state.StateStore`.
"""

from tradestack.storage.database import DatabaseModeError, open_database
from tradestack.storage.state import FillRow, OrderRow, StateStore

__all__ = ["DatabaseModeError", "FillRow", "OrderRow", "StateStore", "open_database"]
