"""label_state: the durable outbox, as issue 5 created it with create_all.

Revision ID: 0001
Revises:
Create Date: 2026-05-01

A database made before migrations existed has exactly this table and no alembic_version; it is
stamped at this revision (pricing/core/database.py) and upgraded from here, keeping its rows.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "label_state",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("label_id", sa.String(64), primary_key=True),
        sa.Column("gateway", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False, comment="desired version; increases per label"),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("content_hash", sa.String(16), nullable=False),
        sa.Column("effective_at_us", sa.BigInteger(), nullable=True),
        sa.Column("correlation", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger(), nullable=False),
        sa.Column("sent_us", sa.BigInteger(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("confirmed_version", sa.BigInteger(), nullable=True),
        sa.Column("confirmed_price_cents", sa.Integer(), nullable=True),
        sa.Column("confirmed_hash", sa.String(16), nullable=True),
        sa.Column("confirmed_us", sa.BigInteger(), nullable=True),
        sa.Column("battery_mv", sa.Integer(), nullable=True),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("label_state")
