"""The durable outbox: what every label should show, and what it was last confirmed to show.

One row per (store, label). ``version``/``price_cents``/``content_hash`` are the desired state;
``confirmed_*`` is what the label last acknowledged displaying. A row is the outbox entry while
its state is ``pending``, ``sent`` or ``scheduled``; ``confirmed`` and ``failed`` are final until
the next plan or a reconciliation. The desired state is committed before anything is published,
so a price the engine decided survives any crash: after a restart every row that is not final is
simply sent again (a label ignores a version it already shows, so re-sending is harmless).

State changes during a push are written in batches (write-behind). Losing the last batch in a
crash loses no price: the affected labels are sent again and answer ``displayed`` without a
refresh. Times are integer microseconds since the epoch (UTC).

Works on SQLite (default: a file) and PostgreSQL (by URL) through SQLAlchemy 2 Core.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from operator import attrgetter
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    select,
    update,
)

from label_gateway.protocol import MAX_VERSION, content_hash
from pricing.core.database import DatabaseError as OutboxError  # noqa: F401  (re-exported: the CLI catches it)
from pricing.core.database import database_url, driver_mark, insert_rows, open_engine  # noqa: F401  (database_url re-exported)
from pricing.core.ids import id_problem
from pricing.core.timestamps import now_us, to_us

RowState = Literal["pending", "sent", "scheduled", "confirmed", "failed"]
OPEN_STATES: tuple[RowState, ...] = ("pending", "sent", "scheduled")


metadata = MetaData()

label_state = Table(
    "label_state",
    metadata,
    Column("store", String(64), primary_key=True),
    Column("label_id", String(64), primary_key=True),
    Column("gateway", String(64), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("version", BigInteger, nullable=False, comment="desired version; increases per label"),
    Column("price_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("content_hash", String(16), nullable=False),
    Column("effective_at_us", BigInteger, nullable=True),
    Column("correlation", String(128), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_us", BigInteger, nullable=False),
    Column("sent_us", BigInteger, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("confirmed_version", BigInteger, nullable=True),
    Column("confirmed_price_cents", Integer, nullable=True),
    Column("confirmed_hash", String(16), nullable=True),
    Column("confirmed_us", BigInteger, nullable=True),
    Column("battery_mv", Integer, nullable=True),
    Column("updated_us", BigInteger, nullable=False),
    Column("reference_cents", Integer, nullable=True, comment="Omnibus reference price shown with a reduction"),
)

_MUTABLE = (
    "version", "price_cents", "currency", "content_hash", "effective_at_us", "correlation", "sku", "gateway",
    "state", "attempts", "next_attempt_us", "sent_us", "last_error", "confirmed_version",
    "confirmed_price_cents", "confirmed_hash", "confirmed_us", "battery_mv", "updated_us", "reference_cents",
)


@dataclass(frozen=True)
class LabelUpdate:
    """One label's new desired state, as a plan decided it (``version`` 0: the outbox picks one)."""

    label_id: str
    gateway: str
    sku: str
    price_cents: int
    currency: str
    correlation: str
    effective_at: datetime | None = None
    version: int = 0
    reference_cents: int | None = None  # Omnibus: lowest price of the 30 days before a reduction


@dataclass
class LabelRow:
    """One label's row, as plain data."""

    store: str
    label_id: str
    gateway: str
    sku: str
    version: int
    price_cents: int
    currency: str
    content_hash: str
    effective_at_us: int | None
    correlation: str
    state: RowState
    attempts: int
    next_attempt_us: int
    sent_us: int | None = None
    last_error: str | None = None
    confirmed_version: int | None = None
    confirmed_price_cents: int | None = None
    confirmed_hash: str | None = None
    confirmed_us: int | None = None
    battery_mv: int | None = None
    updated_us: int = 0
    reference_cents: int | None = None

    @property
    def shows_desired(self) -> bool:
        return self.confirmed_version == self.version


@dataclass(frozen=True)
class EnqueueResult:
    queued: int  # rows that now wait to be sent
    already_shown: int  # the label already shows this content: nothing to send
    already_queued: int  # the same content was already waiting: kept its version


@dataclass
class OutboxCounts:
    by_state: dict[str, int] = field(default_factory=dict)
    by_gateway: dict[str, dict[str, int]] = field(default_factory=dict)
    low_battery: int = 0

    @property
    def open(self) -> int:
        return sum(self.by_state.get(s, 0) for s in OPEN_STATES)


def stores_in(engine: Engine) -> list[str]:
    """The stores that have labels in this database."""
    with engine.connect() as conn:
        return sorted(conn.execute(select(label_state.c.store).distinct()).scalars())


def _chunks(items: Sequence[Any], size: int = 500) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class Outbox:
    """The label_state table of one store."""

    def __init__(self, engine: Engine, store: str) -> None:
        self.engine = engine
        self.store = store

    @classmethod
    def open(cls, target: str | Path, store: str) -> Outbox:
        return cls(open_engine(target), store)

    # -- reading ---------------------------------------------------------------------------
    def rows(self, states: Iterable[RowState] | None = None, labels: Iterable[str] | None = None) -> list[LabelRow]:
        query = select(label_state).where(label_state.c.store == self.store)
        if states is not None:
            query = query.where(label_state.c.state.in_(list(states)))
        with self.engine.connect() as conn:
            if labels is None:
                return [LabelRow(*row) for row in conn.execute(query.order_by(label_state.c.label_id))]
            out: list[LabelRow] = []
            for chunk in _chunks(list(labels)):
                out.extend(LabelRow(*row) for row in conn.execute(query.where(label_state.c.label_id.in_(chunk))))
            return out

    def open_rows(self) -> list[LabelRow]:
        """What still has to reach a label: pending, sent (no ack yet) and scheduled."""
        return self.rows(OPEN_STATES)

    def counts(self, *, low_battery_mv: int = 2450) -> OutboxCounts:
        c = label_state.c
        result = OutboxCounts()
        with self.engine.connect() as conn:
            query = (
                select(c.gateway, c.state, func.count())
                .where(c.store == self.store)
                .group_by(c.gateway, c.state)
            )
            for gateway, state, n in conn.execute(query):
                result.by_state[state] = result.by_state.get(state, 0) + n
                result.by_gateway.setdefault(gateway, {})[state] = n
            low = select(func.count()).where(c.store == self.store, c.battery_mv <= low_battery_mv)
            result.low_battery = int(conn.execute(low).scalar_one())
        return result

    # -- writing ---------------------------------------------------------------------------
    def enqueue(self, updates: Sequence[LabelUpdate], *, at_us: int | None = None) -> EnqueueResult:
        """Record new desired states in one transaction; nothing is published here.

        A label that already shows the same content gets no new version and nothing is sent
        (content-hash dedup); the same content already waiting keeps its version. Otherwise the
        version is the given one, or the clock in microseconds, and always above the label's
        previous version, so a later plan always wins on the label.
        """
        at = at_us if at_us is not None else now_us()
        labels = [u.label_id for u in updates]
        if len(set(labels)) != len(labels):
            raise ValueError("a plan holds at most one update per label")
        # A large plan touches most of the store: one scan beats many IN (...) lookups.
        lookup = self.rows() if len(labels) > 2_000 else self.rows(labels=labels)
        wanted = set(labels)
        existing = {row.label_id: row for row in lookup if row.label_id in wanted}
        inserts: list[LabelRow] = []
        changes: list[LabelRow] = []
        shown = waiting = 0
        for item in updates:
            if item.price_cents < 1:
                raise ValueError(f"label {item.label_id}: price_cents {item.price_cents} is not a price")
            problem = id_problem(item.label_id, "label id") or id_problem(item.gateway, "gateway id")
            if problem:  # an id becomes a topic level: labels.csv is checked on load, this is the last check
                raise ValueError(problem)
            digest = content_hash(item.label_id, item.sku, item.price_cents, item.currency, item.reference_cents)
            effective = to_us(item.effective_at)
            old = existing.get(item.label_id)
            if old is not None and old.content_hash == digest and old.effective_at_us == effective:
                if old.state == "confirmed":
                    shown += 1
                    continue
                if old.state in OPEN_STATES:
                    waiting += 1
                    continue
            # Even when the label shows this content, a newer version is needed if another one was
            # sent after it (it may sit retained on the broker); the label answers "unchanged".
            # Versions are the engine's own: the clock, above the label's previous desired version,
            # never derived from what a label claims. A previous version outside the range (written
            # by an older engine after a forged claim) is not continued.
            previous = old.version if old is not None and old.version < MAX_VERSION else 0
            version = max(item.version or at, previous + 1)
            if version > MAX_VERSION:
                raise ValueError(f"label {item.label_id}: version {version} is above {MAX_VERSION}")
            desired = {
                "gateway": item.gateway, "sku": item.sku, "version": version, "price_cents": item.price_cents,
                "currency": item.currency, "content_hash": digest, "effective_at_us": effective,
                "correlation": item.correlation, "state": "pending", "attempts": 0, "next_attempt_us": 0,
                "sent_us": None, "last_error": None, "updated_us": at, "reference_cents": item.reference_cents,
            }
            if old is None:
                inserts.append(LabelRow(store=self.store, label_id=item.label_id, **desired))
            else:
                changes.append(replace(old, **desired))
        with self.engine.begin() as conn:
            self._insert(conn, inserts)
            self._write(conn, changes)
        return EnqueueResult(len(inserts) + len(changes), shown, waiting)

    def save(self, rows: Sequence[LabelRow]) -> None:
        """Write changed rows (the delivery loop's batched state changes) in one transaction.

        A row is written only while the table still holds the desired state the run loaded: the
        same plan (correlation) and content at a version no newer than the row's (the row's own
        version may only have risen, above a label that showed a version we never issued). A row
        that another push has given a newer desired state meanwhile is left alone, so an older
        push can never write its price back over a newer one."""
        if rows:
            with self.engine.begin() as conn:
                self._write(conn, rows, only_loaded=True)

    # Writes go through the driver's executemany with plain tuples (insert_rows): a push writes
    # every label once or twice.
    def _insert(self, conn: Any, rows: Sequence[LabelRow]) -> None:
        names = [column.name for column in label_state.columns]
        values = attrgetter(*names)
        insert_rows(conn, label_state.name, names, [values(row) for row in rows])

    def _write(self, conn: Any, rows: Sequence[LabelRow], *, only_loaded: bool = False) -> None:
        if not rows:
            return
        mark = driver_mark(self.engine)
        sets = ", ".join(f"{name} = {mark}" for name in _MUTABLE)
        sql = f"UPDATE {label_state.name} SET {sets} WHERE store = {mark} AND label_id = {mark}"
        values = attrgetter(*_MUTABLE, "store", "label_id")
        if only_loaded:  # save(): never over a newer desired state (enqueue changes it on purpose)
            sql += f" AND version <= {mark} AND content_hash = {mark} AND correlation = {mark}"
            values = attrgetter(*_MUTABLE, "store", "label_id", "version", "content_hash", "correlation")
        params = [values(row) for row in rows]
        conn.exec_driver_sql(sql, params)

    def reopen(self, *, gateway: str | None = None, include_failed: bool = True, at_us: int | None = None) -> int:
        """Reconciliation: every label whose confirmed version differs from its desired version
        is made pending again (failed ones too, with their attempts reset). Returns how many."""
        c = label_state.c
        at = at_us if at_us is not None else now_us()
        states = [*OPEN_STATES, "failed"] if include_failed else list(OPEN_STATES)
        condition = and_(
            c.store == self.store,
            c.state.in_(states),
            (c.confirmed_version.is_(None)) | (c.confirmed_version != c.version),
        )
        if gateway is not None:
            condition = and_(condition, c.gateway == gateway)
        with self.engine.begin() as conn:
            result = conn.execute(
                update(label_state)
                .where(condition)
                .values(state="pending", attempts=0, next_attempt_us=0, last_error=None, updated_us=at)
            )
        return int(result.rowcount or 0)

    def reopen_labels(self, labels: Iterable[str], *, at_us: int | None = None) -> int:
        """Make these labels pending again with their desired state, whatever their state
        (confirmed ones too, attempts reset): read-back reconciliation found that what the broker
        retains for them is not what the outbox says, so their desired state is published again.
        Returns how many rows were reopened."""
        wanted = sorted(set(labels))
        if not wanted:
            return 0
        c = label_state.c
        at = at_us if at_us is not None else now_us()
        reopened = 0
        with self.engine.begin() as conn:
            for chunk in _chunks(wanted):
                result = conn.execute(
                    update(label_state)
                    .where(c.store == self.store, c.label_id.in_(list(chunk)))
                    .values(state="pending", attempts=0, next_attempt_us=0, last_error=None, updated_us=at)
                )
                reopened += int(result.rowcount or 0)
        return reopened
