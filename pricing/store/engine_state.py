"""Small named settings the daemon and the CLI share through the engine database: the kill
switch, the daemon's heartbeat and broker connection, the last cycle."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    MetaData,
    String,
    Table,
    Text,
    select,
    update,
)

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

KILL_SWITCH = "kill_switch"
HEARTBEAT = "daemon"


def _now_us() -> int:
    return time.time_ns() // 1000


class EngineFlags:
    """Named values of one store (JSON text), read and written by the daemon and the CLI."""

    def __init__(self, engine: Engine, store: str) -> None:
        self.engine = engine
        self.store = store

    def get(self, name: str) -> Any:
        c = engine_flags.c
        with self.engine.connect() as conn:
            value = conn.execute(select(c.value).where(c.store == self.store, c.name == name)).scalar()
        return None if value is None else json.loads(value)

    def updated(self, name: str) -> tuple[Any, datetime, str] | None:
        """(value, when, by) of a flag, or None when it was never set."""
        c = engine_flags.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(c.value, c.updated_us, c.updated_by).where(c.store == self.store, c.name == name)
            ).first()
        if row is None:
            return None
        return json.loads(row[0]), datetime.fromtimestamp(row[1] / 1e6, UTC), row[2]

    def set(self, name: str, value: Any, *, by: str) -> None:
        c = engine_flags.c
        text = json.dumps(value, separators=(",", ":"), sort_keys=True, default=str)
        with self.engine.begin() as conn:
            changed = conn.execute(
                update(engine_flags)
                .where(c.store == self.store, c.name == name)
                .values(value=text, updated_us=_now_us(), updated_by=by)
            ).rowcount
            if not changed:
                conn.execute(
                    engine_flags.insert().values(
                        store=self.store, name=name, value=text, updated_us=_now_us(), updated_by=by
                    )
                )

    def kill_switch(self) -> bool:
        """True when pushes are stopped from the command line (`esl-pricing kill-switch on`)."""
        return bool(self.get(KILL_SWITCH))
