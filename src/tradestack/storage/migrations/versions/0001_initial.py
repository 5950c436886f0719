"""The initial state schema: orders, order events, fills, positions, balances, equity.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from tradestack.storage.schema import DecimalText

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_meta"),
    )
    op.create_table(
        "sequences",
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("last", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("strategy", name="pk_sequences"),
    )
    op.create_table(
        "orders",
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("strategy", sa.String(128), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("intent", sa.String(128), nullable=False),
        sa.Column("instrument", sa.String(128), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("order_type", sa.String(16), nullable=False),
        sa.Column("qty", DecimalText(), nullable=False),
        sa.Column("price", DecimalText(), nullable=True),
        sa.Column("trigger_price", DecimalText(), nullable=True),
        sa.Column("time_in_force", sa.String(8), nullable=False),
        sa.Column("reduce_only", sa.Boolean(), nullable=False),
        sa.Column("post_only", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("submit_state", sa.String(16), nullable=False),
        sa.Column("venue_order_id", sa.String(128), nullable=False),
        sa.Column("filled_qty", DecimalText(), nullable=False),
        sa.Column("avg_fill_price", DecimalText(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("ts_init_ns", sa.BigInteger(), nullable=False),
        sa.Column("ts_updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("client_order_id", name="pk_orders"),
        sa.UniqueConstraint("strategy", "sequence", name="uq_orders_strategy"),
    )
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("ts_event_ns", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_order_id"],
            ["orders.client_order_id"],
            name="fk_order_events_client_order_id",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_order_events"),
    )
    op.create_index(
        "ix_order_events_client_order_id", "order_events", ["client_order_id"], unique=False
    )
    op.create_table(
        "fills",
        sa.Column("venue", sa.String(64), nullable=False),
        sa.Column("trade_id", sa.String(128), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("instrument", sa.String(128), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("qty", DecimalText(), nullable=False),
        sa.Column("price", DecimalText(), nullable=False),
        sa.Column("fee", DecimalText(), nullable=False),
        sa.Column("fee_currency", sa.String(16), nullable=False),
        sa.Column("liquidity", sa.String(8), nullable=False),
        sa.Column("ts_event_ns", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_order_id"], ["orders.client_order_id"], name="fk_fills_client_order_id"
        ),
        sa.PrimaryKeyConstraint("venue", "trade_id", name="pk_fills"),
    )
    op.create_index("ix_fills_client_order_id", "fills", ["client_order_id"], unique=False)
    op.create_table(
        "positions",
        sa.Column("instrument", sa.String(128), nullable=False),
        sa.Column("qty", DecimalText(), nullable=False),
        sa.Column("cost_basis", DecimalText(), nullable=False),
        sa.Column("realized_pnl", DecimalText(), nullable=False),
        sa.Column("fees", DecimalText(), nullable=False),
        sa.Column("ts_updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("instrument", name="pk_positions"),
    )
    op.create_table(
        "balances",
        sa.Column("asset", sa.String(32), nullable=False),
        sa.Column("total", DecimalText(), nullable=False),
        sa.Column("free", DecimalText(), nullable=False),
        sa.Column("ts_updated_ns", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("asset", name="pk_balances"),
    )
    op.create_table(
        "equity",
        sa.Column("ts_ns", sa.BigInteger(), nullable=False),
        sa.Column("equity", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("ts_ns", name="pk_equity"),
    )


def downgrade() -> None:
    for table in ("equity", "balances", "positions", "fills", "order_events", "orders"):
        op.drop_table(table)
    op.drop_table("sequences")
    op.drop_table("meta")
