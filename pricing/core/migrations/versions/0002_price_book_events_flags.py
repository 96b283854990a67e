"""The Omnibus reference price on labels, the price book, the append-only event log, engine flags.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-01

``events`` refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL) with a trigger: the log is
append-only in the database itself, not only by convention of the code that writes it.
``seq`` is BIGINT on PostgreSQL and INTEGER on SQLite, where only INTEGER PRIMARY KEY is an alias
of the rowid (so it is assigned on insert).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = "events are append-only"

SQLITE_TRIGGERS = (
    f"CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END;",
    f"CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END;",
)
SQLITE_DROP = ("DROP TRIGGER IF EXISTS events_no_delete", "DROP TRIGGER IF EXISTS events_no_update")

# Unqualified names: they land in the first schema of the connection's search_path, like the tables.
POSTGRESQL_TRIGGERS = (
    f"""CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{APPEND_ONLY}' USING ERRCODE = 'integrity_constraint_violation';
END;
$$""",
    (
        "CREATE TRIGGER events_no_update_delete BEFORE UPDATE OR DELETE ON events "
        "FOR EACH ROW EXECUTE FUNCTION events_append_only()"
    ),
    (
        "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events "
        "FOR EACH STATEMENT EXECUTE FUNCTION events_append_only()"
    ),
)
POSTGRESQL_DROP = (
    "DROP TRIGGER IF EXISTS events_no_truncate ON events",
    "DROP TRIGGER IF EXISTS events_no_update_delete ON events",
    "DROP FUNCTION IF EXISTS events_append_only()",
)


def _dialect() -> str:
    return op.get_context().dialect.name


def _label_state_has_reference() -> bool:
    """Development databases made by create_all after the column was added to the code already
    have it; the released schema (0001) does not."""
    if op.get_context().as_sql:
        return False
    columns = sa.inspect(op.get_bind()).get_columns("label_state")
    return any(column["name"] == "reference_cents" for column in columns)


def upgrade() -> None:
    if not _label_state_has_reference():
        op.add_column(
            "label_state",
            sa.Column(
                "reference_cents", sa.Integer(), nullable=True, comment="Omnibus reference price shown with a reduction"
            ),
        )
    op.create_table(
        "price_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("store", sa.String(64), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("price_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("effective_from_us", sa.BigInteger(), nullable=False),
        sa.Column("effective_to_us", sa.BigInteger(), nullable=True),
        sa.Column("correlation", sa.String(128), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
    )
    op.create_index("ix_price_history_store_sku_from", "price_history", ["store", "sku", "effective_from_us"])
    op.create_table(
        "events",
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("store", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("correlation", sa.String(128), nullable=True),
        sa.Column("label_id", sa.String(64), nullable=True),
        sa.Column("sku", sa.String(64), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
    )
    op.create_table(
        "engine_flags",
        sa.Column("store", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_us", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
    )
    for statement in _triggers():
        op.execute(statement)


def downgrade() -> None:
    for statement in _drop_triggers():
        op.execute(statement)
    op.drop_table("engine_flags")
    op.drop_table("events")
    op.drop_index("ix_price_history_store_sku_from", table_name="price_history")
    op.drop_table("price_history")
    with op.batch_alter_table("label_state") as batch:  # SQLite: copy the table without the column
        batch.drop_column("reference_cents")


def _triggers() -> tuple[str, ...]:
    dialect = _dialect()
    if dialect == "sqlite":
        return SQLITE_TRIGGERS
    if dialect == "postgresql":
        return POSTGRESQL_TRIGGERS
    # pricing.core.database.make_engine refuses other dialects before any migration runs.
    raise RuntimeError(f"the engine database supports SQLite and PostgreSQL, not {dialect}")


def _drop_triggers() -> tuple[str, ...]:
    return SQLITE_DROP if _dialect() == "sqlite" else POSTGRESQL_DROP
