"""Small named settings the daemon and the CLI share through the engine database: the kill
switch, the daemon's heartbeat and broker connection, the last cycle."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, MetaData, String, Table, Text

metadata = MetaData()

engine_flags = Table(
    "engine_flags",
    metadata,
    Column("store", String(64), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Column("updated_by", String(128), nullable=False),
)
