"""The append-only event log: everything that changes a price or a label, with what replay needs.

Each event is one row of the ``events`` table (rows are never updated or deleted: the database
refuses it, see pricing/core/migrations) and one line of an exported JSONL file::

    {"seq": 12, "at": "2026-11-23T05:30:00.120000Z", "store": "S001", "kind": "pushed",
     "correlation": "plan-20261123T053000Z-1a2b3c", "label": "L000012", "sku": "000123",
     "data": {"gateway": "gw-01", "version": 1763875800120000, "price_cents": 279, ...}}

Kinds and their ``data`` (docs/events.md has the full list):

- ``daemon_started``  ``{"calendar": StoreCalendar}``: the time zone and freeze windows in force.
- ``cycle_started`` / ``cycle_finished`` / ``cycle_skipped``  ``{"job": id, "kind": job kind, ...}``
- ``plan_created``  ``{"job", "changes", "awaiting_approval", "held", "solver_status", "gap_pct"}``
- ``plan_approved`` / ``plan_rejected`` (per SKU)  ``{"by": name}``
- ``price_changed`` (price book, per SKU)  ``{"price_cents", "previous_cents", "reference_cents", "effective_from"}``
- ``pushed`` (per label)  ``PushedData``: the desired state as recorded in the outbox
- ``acked`` (per label)  ``AckedData``: the label displays (or scheduled) that version
- ``failed`` (per label)  ``FailedData``
- ``reverted`` (per SKU)  ``{"price_cents", "reverted_correlation"}``: an operator undid a plan
- ``kill_switch``  ``{"on": bool, "by": name}``
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
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

from label_gateway.outbox import epoch_us, from_epoch_us

EventKind = Literal[
    "daemon_started",
    "daemon_stopped",
    "cycle_started",
    "cycle_finished",
    "cycle_skipped",
    "plan_created",
    "plan_approved",
    "plan_rejected",
    "price_changed",
    "pushed",
    "acked",
    "failed",
    "reverted",
    "kill_switch",
]


class EventLogError(ValueError):
    """An event file that cannot be read; the message is one ``FILE:LINE: what`` line."""


class Event(BaseModel):
    """One entry of the log. ``seq`` is given by the database (0 before it is appended)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(default=0, ge=0)
    at: datetime
    store: str = Field(min_length=1)
    kind: EventKind
    correlation: str | None = None
    label: str | None = None
    sku: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class PushedData(BaseModel):
    """``pushed``: a desired state was recorded for a label (published next)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: str
    version: int = Field(ge=1)
    price_cents: int = Field(ge=1)
    currency: str
    content_hash: str
    reference_cents: int | None = None
    effective_at: datetime | None = None


class AckedData(BaseModel):
    """``acked``: the label acknowledged ``version`` (displayed, unchanged or scheduled)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: str
    version: int = Field(ge=1)
    status: Literal["displayed", "unchanged", "scheduled"]
    price_cents: int = Field(ge=1)


class FailedData(BaseModel):
    """``failed``: the engine gave up on ``version`` for this label (``reason`` says why)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: str
    version: int = Field(ge=1)
    reason: str


def utc(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("event times must carry a time zone")
    return at.astimezone(UTC)


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
        mark = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        sql = f"INSERT INTO events ({', '.join(_COLUMNS)}) VALUES ({', '.join([mark] * len(_COLUMNS))})"
        with self.engine.begin() as conn:
            conn.exec_driver_sql(sql, rows)
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


# -- JSONL files ------------------------------------------------------------------------------


def event_line(event: Event) -> str:
    return event.model_dump_json(exclude_none=True)


def write_jsonl(items: Iterable[Event], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as out:
        for event in items:
            out.write(event_line(event) + "\n")
            n += 1
    tmp.replace(path)
    return n


def read_jsonl(path: Path) -> list[Event]:
    """Read an exported log; a bad line is an EventLogError ``FILE:LINE: what``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EventLogError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    out: list[Event] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append(Event.model_validate_json(line))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "event"
            raise EventLogError(f"{path}:{number}: {where}: {first['msg']}") from None
    return out
