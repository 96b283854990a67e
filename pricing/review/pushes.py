"""The review page's pushes: approved prices to the labels, in the background, one at a time.

An approval on the page answers at once; the push (price book -> outbox -> event log, then MQTT
until the labels acknowledge) runs here on one worker thread, the way `esl-pricing apply` does
it (pricing.store.price_push). The page polls a push's status: its phase, and each SKU's labels
(pending -> sent -> confirmed) read live from the outbox.

The rules every push obeys, as in the daemon: nothing is published while the kill switch is on
(config/engine.yaml or `esl-pricing kill-switch on`) or inside a freeze window. A push asked for
then is not recorded at all (the approval stays in the plan; "Push approved" sends it later); a
push in flight when the switch is thrown or a window begins stops, and what is left stays pending
in the outbox for the daemon's reconciliation.

SKUs the price book has never seen are first seeded from products.csv (as the daemon does), so a
reduction always carries its Omnibus reference. A SKU whose price moved since the plan was made
(a newer plan changed it) is skipped, never pushed back to an older decision.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import Engine

from label_gateway.outbox import Outbox
from label_gateway.protocol import Topics
from label_gateway.signing import SigningError
from label_gateway.writer_lock import DEFAULT_WAIT_S, OutboxBusy, OutboxLock
from pricing.core.money import to_decimal
from pricing.review.settings import ReviewSettings
from pricing.review.store_files import StoreFiles
from pricing.review.sync import rows_by_label, sku_sync
from pricing.store.engine_state import EngineFlags
from pricing.store.event_log import EventLog
from pricing.store.price_book import PriceBook
from pricing.store.price_push import deliver_logged, price_change_events, record_prices
from pricing.store.push_guard import PushStop
from pricing.store.push_guard import push_blocked as guard_blocked

log = logging.getLogger("esl.review")

PushState = Literal["queued", "running", "done", "stopped", "blocked", "failed"]
FINAL: tuple[PushState, ...] = ("done", "stopped", "blocked", "failed")
KEEP_JOBS = 50
SKUS_SHOWN = 2000  # per-SKU label states in a push's status, at most


def push_blocked(settings: ReviewSettings, engine: Engine, at: datetime) -> str | None:
    """Why nothing may be published at ``at`` (kill switch, freeze window), or None: the
    daemon's rule (pricing.store.push_guard) for the review page's settings."""
    return guard_blocked(config_kill_switch=settings.kill_switch, flags=EngineFlags(engine, settings.store),
                         calendar=settings.calendar, at=at)


@dataclass
class PushJob:
    """One push the page asked for. Fields change on the worker thread; read them via
    ``PushWorker.status``."""

    id: str
    plan_id: str
    requested_by: str
    currency: str
    prices: dict[str, int]  # sku -> the plan's new price
    old_prices: dict[str, int]  # sku -> the plan's old price (a book price that is neither: moved since)
    created_at: datetime
    state: PushState = "queued"
    phase: str = "waiting for the previous push"
    message: str = ""
    started_at: datetime | None = None
    finished_at: datetime | None = None
    recorded: list[str] = field(default_factory=list)  # SKUs whose new price the book took now
    already: list[str] = field(default_factory=list)  # SKUs the book already had at this price
    skipped: dict[str, str] = field(default_factory=dict)  # sku -> why it was not pushed
    held: dict[str, str] = field(default_factory=dict)  # sku -> why the last gate held it (never pushed)
    labels: dict[str, list[str]] = field(default_factory=dict)  # sku -> its label ids
    progress: tuple[int, int] = (0, 0)
    report: dict[str, Any] = field(default_factory=dict)

    @property
    def final(self) -> bool:
        return self.state in FINAL


class PushWorker:
    """One background thread running pushes in the order they were asked for."""

    def __init__(
        self,
        settings: ReviewSettings,
        engine: Callable[[], Engine],
        files: StoreFiles,
        *,
        clock: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.files = files
        self.clock = clock
        self.topics = Topics(settings.store, prefix=settings.prefix)
        self.stopping = threading.Event()
        self._queue: queue.Queue[PushJob | None] = queue.Queue()
        self._jobs: OrderedDict[str, PushJob] = OrderedDict()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            self.stopping.clear()
            self._queue = queue.Queue()  # a stop() before left its end marker in the old one
            self._thread = threading.Thread(target=self._loop, name="esl-review-push", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the push in flight parks (what is left stays in the outbox)."""
        self.stopping.set()
        self._queue.put(None)
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        self._thread = None

    # -- asking -----------------------------------------------------------------------------------
    def blocked(self) -> str | None:
        return push_blocked(self.settings, self.engine(), self.clock())

    def submit(
        self, *, plan_id: str, currency: str, prices: Mapping[str, int], old_prices: Mapping[str, int], by: str
    ) -> PushJob:
        self.start()
        job = PushJob(
            id=uuid.uuid4().hex[:12], plan_id=plan_id, requested_by=by, currency=currency, prices=dict(prices),
            old_prices=dict(old_prices), created_at=self.clock(),
        )
        with self._lock:
            self._jobs[job.id] = job
            while len(self._jobs) > KEEP_JOBS:
                oldest = next(iter(self._jobs))
                if not self._jobs[oldest].final:
                    break
                self._jobs.popitem(last=False)
        self._queue.put(job)
        return job

    def job(self, job_id: str) -> PushJob | None:
        with self._lock:
            return self._jobs.get(job_id)

    def jobs(self) -> list[PushJob]:
        """Newest first."""
        with self._lock:
            return list(reversed(self._jobs.values()))

    def active(self) -> PushJob | None:
        """The push running or waiting, oldest first; None when idle."""
        with self._lock:
            return next((job for job in self._jobs.values() if not job.final), None)

    def status(self, job: PushJob) -> dict[str, Any]:
        """The job as JSON, with each SKU's labels read from the outbox now."""
        label_ids = [label for labels in job.labels.values() for label in labels]
        rows = rows_by_label(Outbox(self.engine(), self.settings.store).rows(labels=label_ids)) if label_ids else {}
        totals: dict[str, int] = {}
        skus: dict[str, dict[str, object]] = {}
        for sku, cents in job.prices.items():
            sync = sku_sync(job.labels.get(sku, []), rows, cents)
            if len(skus) < SKUS_SHOWN:  # a page shows at most a few hundred rows
                skus[sku] = sync.as_dict()
            if sku not in job.skipped and sku not in job.held:
                for state, n in sync.counts.items():
                    totals[state] = totals.get(state, 0) + n
        return {
            "id": job.id, "plan": job.plan_id, "by": job.requested_by, "state": job.state, "phase": job.phase,
            "message": job.message, "final": job.final,
            "created_at": job.created_at.isoformat(),
            "started_at": job.started_at.isoformat() if job.started_at else None,
            "finished_at": job.finished_at.isoformat() if job.finished_at else None,
            "prices": {sku: str(to_decimal(cents)) for sku, cents in job.prices.items()},
            "recorded": job.recorded, "already_in_price_book": job.already, "skipped": job.skipped,
            "held": job.held,
            "progress": {"done": job.progress[0], "total": job.progress[1]},
            "labels": totals, "skus": skus, "skus_truncated": len(skus) < len(job.prices), "report": job.report,
        }

    # -- the worker -------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self.stopping.is_set():
            job = self._queue.get()
            if job is None:
                break
            job.started_at = self.clock()
            job.state = "running"
            try:
                job.phase = "waiting for other pushes to this store's labels"
                # One push per store outbox, across processes (the daemon, esl-pricing apply): enqueue + deliver.
                with OutboxLock(self.engine(), self.settings.store, wait_s=DEFAULT_WAIT_S, stop=self.stopping.is_set):
                    self._run(job)
            except OutboxBusy as exc:  # nothing was recorded: the approval stays in the plan
                job.state, job.phase = "blocked", "not pushed"
                job.message = f"not pushed: {exc}; the approval is saved, push it again when that push is done"
            except Exception as exc:  # one line on the page, the traceback in the server log
                log.exception("push %s of plan %s failed", job.id, job.plan_id)
                job.state = "failed"
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                job.message = f"push failed: {first}; what was recorded stays in the outbox (Push approved retries)"
            finally:
                job.finished_at = self.clock()
        # jobs still queued when the server stops are not run
        while True:
            try:
                left = self._queue.get_nowait()
            except queue.Empty:
                break
            if left is not None:
                left.state, left.message = "stopped", "not pushed: the review server stopped"

    def _run(self, job: PushJob) -> None:
        blocked = self.blocked()
        if blocked is not None:
            job.state, job.phase = "blocked", "not pushed"
            job.message = f"not pushed: {blocked}; the approval is saved, push it when pushes are allowed again"
            return
        try:
            signer = self.settings.signer()  # before anything is recorded: labels take signed states only
        except SigningError as exc:
            job.state, job.phase = "blocked", "not pushed"
            job.message = f"not pushed: {exc}; the approval is saved"
            return
        engine = self.engine()
        store = self.settings.store
        book, outbox, events = PriceBook(engine, store), Outbox(engine, store), EventLog(engine, store)
        now = self.clock()
        job.phase = "recording prices"
        by_sku = self.files.labels_by_sku()
        job.labels = {sku: [label.label_id for label in by_sku.get(sku, [])] for sku in job.prices}
        # SKUs the book has never seen take their products.csv price first (so a reduction has a reference)
        current = book.current()
        products = self.files.products()
        fresh = {sku: products[sku].price_cents for sku in job.prices if sku not in current and sku in products}
        seeded = book.seed(fresh, at=now, currency=job.currency, source="products.csv")
        events.append(price_change_events(seeded, store=store, correlation="products.csv", at=now))
        current.update({change.sku: change.price_cents for change in seeded})
        prices: dict[str, int] = {}
        for sku, cents in job.prices.items():
            before = current.get(sku)
            old = job.old_prices.get(sku)
            if before == cents:
                job.already.append(sku)
            elif before is not None and before != old:
                job.skipped[sku] = (
                    f"the price is {to_decimal(before)} now, not the plan's old price {to_decimal(old or 0)}: "
                    "a newer change was made since this plan"
                )
            else:
                prices[sku] = cents
        if prices:
            # The last gate: each price against products.csv's cost (no cost, or 0: held)
            recorded = record_prices(
                book, outbox, events, prices, self.files.label_rows(),
                currency=job.currency, correlation=job.plan_id, at=now,
                costs={sku: product.cost_cents for sku, product in products.items()},
            )
            job.recorded = sorted(change.sku for change in recorded.changes)
            job.held = {h.sku: h.line() for h in recorded.held}
        job.phase = "sending to the labels"
        stop = PushStop(self.stopping, self.blocked, stopping_reason="the review server is stopping")

        def progress(done: int, total: int) -> None:
            job.progress = (done, total)

        delivered = deliver_logged(
            outbox, events, self.settings.broker, self.topics, self.settings.delivery,
            signer=signer, now=self.clock, deadline_s=self.settings.deadline_s, stop=stop, progress=progress,
        )
        if delivered is None:
            job.state, job.phase = "done", "done"
            job.message = _outcome({}, job) or "nothing to send: every label already shows its price"
            return
        summary = delivered.report.summary()
        job.report = summary
        if stop.reason is not None:
            job.state, job.phase = "stopped", "stopped"
            job.message = f"stopped: {stop.reason}; what is left stays in the outbox"
            return
        job.state, job.phase = "done", "done"
        job.message = _outcome(summary, job)


def _count(n: int, what: str) -> str:
    return f"{n} {what}" if n == 1 else f"{n} {what}s"


def _outcome(summary: Mapping[str, Any], job: PushJob) -> str:
    """What went wrong in a finished push, or "" when every label confirmed."""
    parts = []
    if summary.get("failed"):
        parts.append(f"{_count(int(summary['failed']), 'label')} failed (see Labels & gateways)")
    if summary.get("waiting"):
        parts.append(f"{_count(int(summary['waiting']), 'label')} still waiting (they stay in the outbox)")
    if job.skipped:
        parts.append(f"{_count(len(job.skipped), 'SKU')} skipped: price changed since the plan")
    if job.held:
        lines = list(job.held.values())
        shown = "; ".join(lines[:5]) + (f"; and {len(lines) - 5} more" if len(lines) > 5 else "")
        parts.append(f"{_count(len(job.held), 'price')} held by the last gate, not pushed: {shown}")
    return "; ".join(parts)
