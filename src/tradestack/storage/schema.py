"""The state schema as SQLAlchemy Core tables; Alembic's migrations create exactly these.

Exact quantities (quantities, prices, fees, cash) are stored as decimal text, so SQLite (whose
NUMERIC is a float) and PostgreSQL round-trip them to the last digit alike.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator


class DecimalText(TypeDecorator[Decimal]):
    """A :class:`~decimal.Decimal` stored as its text, exact on every backend."""

    impl = String(64)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"expected a Decimal, got {type(value).__name__} {value!r}")
        if not value.is_finite():
            raise ValueError(f"cannot store the non-finite decimal {value}")
        return str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        try:
            return Decimal(value)
        except InvalidOperation as exc:
            raise ValueError(f"stored decimal {value!r} is not a number") from exc


metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", String(256), nullable=False),
)

sequences = Table(
    "sequences",
    metadata,
    Column("strategy", String(128), primary_key=True),
    Column("last", BigInteger, nullable=False),
)

orders = Table(
    "orders",
    metadata,
    Column("client_order_id", String(64), primary_key=True),
    Column("strategy", String(128), nullable=False),
    Column("sequence", BigInteger, nullable=False),
    Column("intent", String(128), nullable=False),
    Column("instrument", String(128), nullable=False),
    Column("side", String(8), nullable=False),
    Column("order_type", String(16), nullable=False),
    Column("qty", DecimalText, nullable=False),
    Column("price", DecimalText),
    Column("trigger_price", DecimalText),
    Column("time_in_force", String(8), nullable=False),
    Column("reduce_only", Boolean, nullable=False),
    Column("post_only", Boolean, nullable=False),
    Column("status", String(24), nullable=False),
    Column("submit_state", String(16), nullable=False),
    Column("venue_order_id", String(128), nullable=False),
    Column("filled_qty", DecimalText, nullable=False),
    Column("avg_fill_price", DecimalText, nullable=False),
    Column("reason", Text, nullable=False),
    Column("ts_init_ns", BigInteger, nullable=False),
    Column("ts_updated_ns", BigInteger, nullable=False),
    UniqueConstraint("strategy", "sequence"),
)

order_events = Table(
    "order_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "client_order_id",
        String(64),
        ForeignKey("orders.client_order_id"),
        nullable=False,
        index=True,
    ),
    Column("kind", String(24), nullable=False),
    Column("ts_event_ns", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
)

fills = Table(
    "fills",
    metadata,
    Column("venue", String(64), primary_key=True),
    Column("trade_id", String(128), primary_key=True),
    Column(
        "client_order_id",
        String(64),
        ForeignKey("orders.client_order_id"),
        nullable=False,
        index=True,
    ),
    Column("instrument", String(128), nullable=False),
    Column("side", String(8), nullable=False),
    Column("qty", DecimalText, nullable=False),
    Column("price", DecimalText, nullable=False),
    Column("fee", DecimalText, nullable=False),
    Column("fee_currency", String(16), nullable=False),
    Column("liquidity", String(8), nullable=False),
    Column("ts_event_ns", BigInteger, nullable=False),
    # the part of the fee taken in the traded asset itself (spot buys on Binance): the position
    # moves by qty less it; ``fee`` still holds the whole fee valued in the quote currency
    Column("base_fee", DecimalText, nullable=False, server_default="0"),
)

positions = Table(
    "positions",
    metadata,
    Column("instrument", String(128), primary_key=True),
    Column("qty", DecimalText, nullable=False),
    Column("cost_basis", DecimalText, nullable=False),
    Column("realized_pnl", DecimalText, nullable=False),
    Column("fees", DecimalText, nullable=False),
    Column("ts_updated_ns", BigInteger, nullable=False),
)

balances = Table(
    "balances",
    metadata,
    Column("asset", String(32), primary_key=True),
    Column("total", DecimalText, nullable=False),
    Column("free", DecimalText, nullable=False),
    Column("ts_updated_ns", BigInteger, nullable=False),
)

equity = Table(
    "equity",
    metadata,
    Column("ts_ns", BigInteger, primary_key=True),
    Column("equity", Float, nullable=False),
)
