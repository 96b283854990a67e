"""The append-only event log: everything that changes a price or a label, with what replay needs.

Each event (pricing.core.events: the public format, with the kinds and their data) is one row of
the ``events`` table (rows are never updated or deleted: the database refuses it, see
pricing/core/migrations) and one line of an exported JSONL file.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
)

from pricing.core.database import insert_rows
from pricing.core.events import Event, EventKind, write_jsonl
from pricing.core.timestamps import epoch_us, from_epoch_us

# -- the table ------------------------------------------------------------------------------

metadata = MetaData()

events = Table(
    "events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at_us", BigInteger, nullable=False),
    Column("store", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("correlation", String(128), nullable=True),
    Column("label_id", String(64), nullable=True),
    Column("sku", String(64), nullable=True),
    Column("data", Text, nullable=False),
)

_COLUMNS = ("at_us", "store", "kind", "correlation", "label_id", "sku", "data")


class EventLog:
    """Append and read one store's events (or every store's, with ``store=None`` for reading)."""

    def __init__(self, engine: Engine, store: str | None) -> None:
        self.engine = engine
        self.store = store

    def append(self, items: Iterable[Event]) -> int:
        """Append events in one transaction (in the order given); returns how many."""
        rows = [
            (
                epoch_us(e.at), e.store, e.kind, e.correlation, e.label, e.sku,
                json.dumps(e.data, separators=(",", ":"), sort_keys=True, default=str),
            )
            for e in items
        ]
        if not rows:
            return 0
        with self.engine.begin() as conn:
            insert_rows(conn, events.name, _COLUMNS, rows)
        return len(rows)

    def record(self, kind: EventKind, at: datetime, **fields: Any) -> None:
        """Append one event of this log's store."""
        if self.store is None:
            raise ValueError("an event log opened for all stores cannot record")
        self.append([Event(at=at, store=self.store, kind=kind, **fields)])

    def read(
        self,
        *,
        after_seq: int = 0,
        kinds: Sequence[str] | None = None,
        correlation: str | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        return list(self.iter(after_seq=after_seq, kinds=kinds, correlation=correlation, limit=limit))

    def iter(
        self,
        *,
        after_seq: int = 0,
        kinds: Sequence[str] | None = None,
        correlation: str | None = None,
        limit: int | None = None,
    ) -> Iterator[Event]:
        c = events.c
        query = select(events).where(c.seq > after_seq).order_by(c.seq)
        if self.store is not None:
            query = query.where(c.store == self.store)
        if kinds is not None:
            query = query.where(c.kind.in_(list(kinds)))
        if correlation is not None:
            query = query.where(c.correlation == correlation)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.connect() as conn:
            for seq, at_us, store, kind, corr, label, sku, data in conn.execute(query):
                yield Event(
                    seq=seq, at=from_epoch_us(at_us), store=store, kind=kind, correlation=corr,
                    label=label, sku=sku, data=json.loads(data),
                )

    def last(self, kind: str) -> Event | None:
        c = events.c
        query = select(events.c.seq).where(c.kind == kind).order_by(c.seq.desc()).limit(1)
        if self.store is not None:
            query = query.where(c.store == self.store)
        with self.engine.connect() as conn:
            seq = conn.execute(query).scalar()
        if seq is None:
            return None
        found = self.read(after_seq=seq - 1, limit=1)
        return found[0] if found else None

    def export(self, path: Path, **filters: Any) -> int:
        """Write the log as JSONL (one event per line, in order); returns how many events."""
        return write_jsonl(self.iter(**filters), path)
