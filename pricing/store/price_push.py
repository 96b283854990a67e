"""Taking a plan's prices: price book (with the Omnibus reference) -> outbox -> event log.

The one path every push of new prices goes through, whether the daemon's cycle or a pricing
manager's `esl-pricing apply`: the register (price book), the labels (outbox) and the record
(event log) never disagree about what was decided, and a reduction always carries its reference.

Before anything is recorded or queued, every price passes the last gate (pricing.store.last_gate):
positive, a known cost (0 counts as missing) and not below it, within the hard price rules when
the caller gives them. A held price reaches neither the price book nor the outbox; it is logged
as a ``held`` event and returned in ``RecordedPush.held`` for the caller to show, one line each.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from label_gateway.broker import BrokerAddress
from label_gateway.delivery import (
    DeliveryReport,
    DeliverySettings,
    LabelDelivery,
    StopSignal,
    updates_for_prices,
)
from label_gateway.outbox import EnqueueResult, LabelRow, LabelUpdate, Outbox
from label_gateway.protocol import Topics
from label_gateway.signing import Signer
from pricing.core.events import Event
from pricing.core.timestamps import epoch_us
from pricing.store.event_log import EventLog
from pricing.store.last_gate import HardLimits, HeldPrice, check_prices, held_events
from pricing.store.price_book import PriceBook, PriceChange


@dataclass(frozen=True)
class RecordedPush:
    changes: list[PriceChange]  # prices the book took (unchanged prices are not here)
    updates: list[LabelUpdate]  # one per label of a changed SKU
    enqueued: EnqueueResult
    pushed: list[LabelRow]  # outbox rows now waiting to be sent for this plan
    held: list[HeldPrice] = field(default_factory=list)  # prices the last gate kept out (logged as held)


def price_change_events(changes: Sequence[PriceChange], *, store: str, correlation: str, at: datetime) -> list[Event]:
    return [
        Event(
            at=at, store=store, kind="price_changed", correlation=correlation, sku=c.sku,
            data={
                "price_cents": c.price_cents, "previous_cents": c.previous_cents,
                "reference_cents": c.reference_cents, "effective_from": c.effective_from.isoformat(),
            },
        )
        for c in changes
    ]


def record_prices(
    book: PriceBook,
    outbox: Outbox,
    log: EventLog,
    prices: Mapping[str, int],
    labels: Iterable[tuple[str, str, str]],
    *,
    currency: str,
    correlation: str,
    at: datetime,
    costs: Mapping[str, object],
    limits: Mapping[str, HardLimits] | None = None,
    relaxed: Mapping[str, Collection[str]] | None = None,
    effective_at: datetime | None = None,
) -> RecordedPush:
    """Record ``prices`` (sku -> cents) in the price book from ``effective_at`` (else ``at``),
    queue every label of the SKUs whose price changed (reductions with their Omnibus reference)
    and log ``price_changed`` and ``pushed``. Nothing is published here.

    First the last gate (``costs``: sku -> cost cents, from products.csv; ``limits``: the hard
    price rules, ``relaxed``: the rules the plan relaxed per SKU, see pricing.store.last_gate):
    held prices are logged as ``held`` and returned in ``held``; the rest go ahead."""
    gate = check_prices(prices, costs, limits, relaxed)
    log.append(held_events(gate.held, store=outbox.store, correlation=correlation, at=at))
    changes = book.record(gate.allowed, at=effective_at or at, currency=currency, correlation=correlation)
    changed = {c.sku: c.price_cents for c in changes}
    references = {c.sku: c.reference_cents for c in changes if c.reference_cents is not None}
    updates = updates_for_prices(
        changed, labels, currency=currency, correlation=correlation, effective_at=effective_at, references=references
    )
    log.append(price_change_events(changes, store=outbox.store, correlation=correlation, at=at))
    enqueued, rows = _enqueue_logged(outbox, log, updates, correlation=correlation, at=at, effective_at=effective_at)
    return RecordedPush(changes, updates, enqueued, rows, gate.held)


def _enqueue_logged(
    outbox: Outbox, log: EventLog, updates: list[LabelUpdate], *, correlation: str, at: datetime,
    effective_at: datetime | None,
) -> tuple[EnqueueResult, list[LabelRow]]:
    """Queue ``updates`` and log ``pushed`` for each row now waiting to be sent."""
    enqueued = outbox.enqueue(updates, at_us=epoch_us(at))
    rows = [r for r in outbox.rows(labels=[u.label_id for u in updates]) if r.correlation == correlation and r.state == "pending"]
    log.append(
        Event(
            at=at, store=outbox.store, kind="pushed", correlation=correlation, label=r.label_id, sku=r.sku,
            data={
                "gateway": r.gateway, "version": r.version, "price_cents": r.price_cents, "currency": r.currency,
                "content_hash": r.content_hash, "reference_cents": r.reference_cents,
                "effective_at": None if effective_at is None else effective_at.isoformat(),
            },
        )
        for r in rows
    )
    return enqueued, rows


def sync_labels(
    book: PriceBook,
    outbox: Outbox,
    log: EventLog,
    labels: Iterable[tuple[str, str, str]],
    *,
    file_prices: Mapping[str, int],
    costs: Mapping[str, object],
    currency: str,
    at: datetime,
    correlation: str = "sync",
) -> RecordedPush:
    """Bring every label to the price book's current price (with its Omnibus reference when it is
    a reduction): labels installed since, or never given a price, get one; labels the outbox
    knows to show it get nothing (content-hash dedup). SKUs the book has never seen are seeded
    from ``file_prices`` (products.csv) first. Nothing is published here.

    The last gate checks both the prices seeded from the file and the book's prices the labels
    are given against ``costs`` (positive, a known cost, not below it): held ones are neither
    seeded nor queued, logged as ``held`` and returned in ``held``. The rules' price bounds are
    not applied here: a sync shows the price the register already charges (the shelf must equal
    the register); the rules bound new prices (``record_prices``)."""
    current = book.current()
    fresh = {sku: cents for sku, cents in file_prices.items() if sku not in current}
    seed_gate = check_prices(fresh, costs)
    seeded = book.seed(seed_gate.allowed, at=at, currency=currency, source="products.csv")
    log.append(price_change_events(seeded, store=outbox.store, correlation="products.csv", at=at))
    current = book.current()
    rows = list(labels)
    held_skus = {h.sku for h in seed_gate.held}
    label_gate = check_prices({sku: current[sku] for _, _, sku in rows if sku in current}, costs)
    held = seed_gate.held + [h for h in label_gate.held if h.sku not in held_skus]
    log.append(held_events(held, store=outbox.store, correlation=correlation, at=at))
    prices = label_gate.allowed
    kept = [row for row in rows if row[2] in prices]
    updates = updates_for_prices(
        prices, kept, currency=currency, correlation=correlation, references=book.current_references(prices)
    )
    enqueued, pushed = _enqueue_logged(outbox, log, updates, correlation=correlation, at=at, effective_at=None)
    return RecordedPush(seeded, updates, enqueued, pushed, held)


def outcome_events(before: Mapping[str, LabelRow], after: Mapping[str, LabelRow], *, at: datetime) -> list[Event]:
    """``acked`` / ``failed`` events for the rows a delivery run moved (``before``: the open rows
    it started with; ``after``: the same rows when it ended)."""
    events: list[Event] = []
    for label, row in after.items():
        old = before[label]
        base = {"at": at, "store": row.store, "correlation": row.correlation, "label": label, "sku": row.sku}
        if row.state == "failed":
            reason = row.last_error or "failed"
            events.append(Event(kind="failed", data={"gateway": row.gateway, "version": row.version, "reason": reason}, **base))
            continue
        if row.state == "confirmed" and row.confirmed_version == row.version:
            status = "displayed"
        elif row.state == "scheduled" and old.state != "scheduled":
            status = "scheduled"
        else:
            continue
        events.append(Event(
            kind="acked",
            data={"gateway": row.gateway, "version": row.version, "status": status, "price_cents": row.price_cents},
            **base,
        ))
    return events


def ack_latencies(rows: Iterable[LabelRow]) -> list[float]:
    """Seconds from send to confirmation of each confirmed row (wall clock)."""
    return [
        max(0.0, (row.confirmed_us - row.sent_us) / 1e6)
        for row in rows
        if row.state == "confirmed" and row.confirmed_us and row.sent_us
    ]


@dataclass(frozen=True)
class LoggedDelivery:
    report: DeliveryReport
    after: dict[str, LabelRow]  # the rows the run started with, as they ended


def deliver_logged(
    outbox: Outbox,
    log: EventLog,
    address: BrokerAddress,
    topics: Topics,
    settings: DeliverySettings,
    *,
    signer: Signer,
    now: Callable[[], datetime],
    deadline_s: float | None = None,
    stop: StopSignal | None = None,
    progress: Callable[[int, int], None] | None = None,
    notice: Callable[[str], None] | None = None,
) -> LoggedDelivery | None:
    """Deliver everything open in the outbox and log ``acked`` / ``failed`` for the labels that
    moved. None when nothing was open (no connection is made then). Every desired state is signed
    by ``signer`` (the labels take nothing else). ``notice`` gets the push's one-line warnings
    (no gateway online) as they happen."""
    before = {r.label_id: r for r in outbox.open_rows()}
    if not before:
        return None
    report = LabelDelivery(address, topics, outbox, settings, signer=signer).run(
        deadline_s=deadline_s, stop=stop, progress=progress, notice=notice
    )
    after = {r.label_id: r for r in outbox.rows(labels=list(before))}
    log.append(outcome_events(before, after, at=now()))
    return LoggedDelivery(report, after)
