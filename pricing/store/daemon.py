"""The store daemon: scheduled pricing cycles, pushes through the outbox, and the record of it all.

One ``StoreDaemon`` per store process. APScheduler 3 (pricing.store.scheduler.ClockScheduler) fires the
jobs of config/engine.yaml; each job runs one cycle here:

- ``reprice``: the whole store -> plan (written to plans_dir) -> the plan's changes go into the
  price book (with the Omnibus reference for reductions) and the outbox -> labels -> acks.
- ``markdown``: the same for the listed categories, keeping only reductions.
- ``reconcile``: labels whose confirmed version differs from the desired one are sent again.
- ``retrain``: a new demand model from the sales history.

Every cycle checks the freeze windows and the kill switch (config flag, or `esl-pricing
kill-switch on` through the database) before it publishes anything, and a push in flight stops
as soon as the kill switch is set, a freeze window begins or the daemon is asked to stop: what
is left stays pending in the outbox (parked) and the next run resumes it. Everything that changes
a price or a label goes to the event log. Time comes from the injected clock, so tests run a week.

One daemon per store and database: ``claim()`` (called by ``start()``) takes the store's ``daemon``
lock for the daemon's life, and a second daemon fails there with one line. Every cycle that
enqueues and delivers holds the store's ``outbox`` lock (label_gateway/writer_lock.py), so a push
of `esl-pricing apply` or the review page waits for it, and it for them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from apscheduler.events import EVENT_JOB_MISSED, JobExecutionEvent
from sqlalchemy import Engine

from label_gateway.broker import BrokerAddress, BrokerError
from label_gateway.delivery import (
    DeliveryReport,
)
from label_gateway.outbox import LabelRow, Outbox
from label_gateway.protocol import Topics
from label_gateway.readback import read_back
from label_gateway.signing import KeyDirectory, Signer, SigningError, TrustedKeys
from label_gateway.writer_lock import DAEMON, DEFAULT_WAIT_S, OutboxLock
from pricing.core.data import (
    DataError,
    competitor_reference,
    label_rows,
    shelf_prices,
)
from pricing.core.database import DatabaseError, open_engine
from pricing.core.events import Event
from pricing.core.store_data import StoreData, load_shelf, load_store
from pricing.core.timestamps import epoch_us
from pricing.core.yaml_config import ConfigError
from pricing.demand.model_store import ModelLoadError, load_model, save_model
from pricing.demand.training import train_demand_model
from pricing.plan.cycle import run_pricing_cycle
from pricing.plan.price_plan import PlanLine, PricePlan
from pricing.rules.config import load_rules
from pricing.store.engine_config import EngineConfig, JobConfig
from pricing.store.engine_state import HEARTBEAT, EngineFlags
from pricing.store.event_log import EventLog
from pricing.store.last_gate import (
    hard_limits,
    held_lines,
    product_costs,
    relaxed_rules,
)
from pricing.store.metrics import SECURITY_EVENTS, EngineMetrics
from pricing.store.plan_inbox import PlanInbox
from pricing.store.price_book import PriceBook
from pricing.store.price_push import (
    ack_latencies,
    deliver_logged,
    price_change_events,
    record_prices,
    sync_labels,
)
from pricing.store.push_guard import PushStop, push_blocked
from pricing.store.scheduler import (
    JOBS_TABLE,
    Clock,
    ClockScheduler,
    SystemClock,
    jobs_table,
    schedule_jobs,
)

log = logging.getLogger("esl.daemon")

JOB_FUNCTION = "pricing.store.daemon:run_scheduled_job"
#: What a cycle can fail on without a bug: the broker (down, refusing), the database (busy outbox
#: lock, unreachable), the data, the config, the model, the signing key. One line each, no traceback.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    BrokerError, DatabaseError, DataError, ConfigError, ModelLoadError, SigningError,
)
_INBOX_SETTLE_S = 2.0  # how long a fresh plan inbox waits for the retained plan before a cycle goes on
_ACTIVE: StoreDaemon | None = None  # the job store pickles a reference to run_scheduled_job


def run_scheduled_job(job_id: str) -> None:
    """What the persistent job store calls: run ``job_id`` on this process's daemon."""
    if _ACTIVE is None:
        raise RuntimeError(f"job {job_id} fired with no daemon running in this process")
    _ACTIVE.run_job(job_id)


@dataclass
class CycleResult:
    """What one cycle did (also the ``cycle_finished`` event's data)."""

    job: str
    kind: str
    result: str  # ok | failed | frozen | kill_switch | parked
    detail: str = ""
    plan: str | None = None
    changes: int = 0
    pushed_labels: int = 0
    confirmed: int = 0
    failed: int = 0
    waiting: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def data(self) -> dict[str, Any]:
        out = {
            "job": self.job, "kind": self.kind, "result": self.result, "detail": self.detail, "plan": self.plan,
            "changes": self.changes, "pushed_labels": self.pushed_labels, "confirmed": self.confirmed,
            "failed": self.failed, "waiting": self.waiting,
        }
        return out | self.extra


class StoreDaemon:
    """The engine of one store, driven by a scheduler (or by calling ``run_job`` directly)."""

    def __init__(
        self,
        config: EngineConfig,
        config_dir: Path,
        *,
        clock: Clock | None = None,
        metrics: EngineMetrics | None = None,
        engine: Engine | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.config_dir = config_dir
        self.clock = clock or SystemClock()
        self.metrics = metrics or EngineMetrics()
        self.engine = engine or open_engine(config.database_target(config_dir))
        self.store = config.store
        self.outbox = Outbox(self.engine, self.store)
        self.price_book = PriceBook(self.engine, self.store)
        self.events = EventLog(self.engine, self.store)
        self.flags = EngineFlags(self.engine, self.store)
        self.address = BrokerAddress.parse(config.broker)
        self.topics = Topics(self.store, prefix=config.prefix)
        self.stopping = threading.Event()
        self.scheduler: ClockScheduler | None = None
        self.say = say or (lambda text: log.info("%s", text))
        self._jobs = {job.id: job for job in config.jobs}
        self._push_lock = threading.Lock()
        self._daemon_lock: OutboxLock | None = None  # one daemon per store and database (claim())
        self._signer: Signer | None = None
        self._plan_inbox: PlanInbox | None = None  # a store of a chain: head office's plans (plan_inbox)
        # Cycle metrics come from the event log (this daemon's cycles and any --run-job's), the
        # outbox and kill-switch gauges from the database, at every scrape.
        self.metrics.follow(self.events, gauges=self._database_gauges)

    def _database_gauges(self) -> None:
        """Set the gauges the database knows: the open outbox, the failed labels, the kill switch."""
        counts = self.outbox.counts()
        self.metrics.outbox(counts.open, counts.by_state.get("failed", 0))
        self.metrics.set_kill_switch(bool(self.config.kill_switch or self.flags.kill_switch()))

    # -- paths --------------------------------------------------------------------------------
    @property
    def data_dir(self) -> Path:
        return self.config.resolve("data_dir", self.config_dir)

    @property
    def model_dir(self) -> Path:
        return self.config.resolve("model_dir", self.config_dir)

    @property
    def plans_dir(self) -> Path:
        return self.config.resolve("plans_dir", self.config_dir)

    @property
    def rules_path(self) -> Path:
        return self.config.resolve("rules", self.config_dir)

    @property
    def plan_inbox(self) -> PlanInbox | None:
        """Head office's plans for this store (``head_office_keys`` set), connected on first use
        and given a moment for the retained plan to arrive; None for a store that plans alone."""
        if self.config.head_office_keys is None:
            return None
        if self._plan_inbox is None:
            keys = TrustedKeys.load(self.config.resolve("head_office_keys", self.config_dir))
            inbox = PlanInbox(self.address, self.config.prefix, self.store, keys, self.plans_dir, say=self.say)
            inbox.start()
            inbox.wait_for(lambda handled: bool(handled), timeout=_INBOX_SETTLE_S)  # the retained plan, if any
            self._plan_inbox = inbox
        return self._plan_inbox

    @property
    def signer(self) -> Signer:
        """The engine's current signing key (``signing_keys``), read once; SigningError (one line)
        when there is none: the labels take signed desired states only."""
        if self._signer is None:
            self._signer = KeyDirectory(self.config.signing_keys_dir(self.config_dir)).signer()
        return self._signer

    @property
    def job_prefix(self) -> str:
        """Job ids in the shared job store are ``<store>/<job id>``: one database, many stores."""
        return f"{self.store}/"

    # -- the rules every push obeys -----------------------------------------------------------
    def push_blocked(self, at: datetime | None = None) -> str | None:
        """Why nothing may be published now (kill switch, freeze window), or None."""
        return push_blocked(config_kill_switch=self.config.kill_switch, flags=self.flags,
                            calendar=self.config.calendar, at=at or self.clock.now())

    def _event(self, kind: str, **fields: Any) -> Event:
        return Event(at=self.clock.now(), store=self.store, kind=kind, **fields)  # type: ignore[arg-type]

    def _record(self, kind: str, **fields: Any) -> None:
        self.events.append([self._event(kind, **fields)])

    def _heartbeat(self, state: str) -> None:
        self.flags.set(
            HEARTBEAT,
            {"state": state, "pid": os.getpid(), "at": self.clock.now().isoformat(), "broker": self.address.url},
            by=f"daemon pid {os.getpid()}",
        )

    def _outbox_lock(self) -> OutboxLock:
        """The store's outbox lock, around every enqueue + deliver: a push from `esl-pricing apply`, the
        review page or another process never interleaves with the daemon's (a stop ends the wait)."""
        return OutboxLock(self.engine, self.store, wait_s=DEFAULT_WAIT_S, stop=self.stopping.is_set)

    # -- running --------------------------------------------------------------------------------
    def claim(self) -> None:
        """Take the store's daemon lock for this daemon's life (released by ``shutdown()``, or by the
        OS / database server when the process dies). A second daemon for the same store on the same
        database gets OutboxBusy (one line) here, before it records or schedules anything."""
        if self._daemon_lock is None:
            self._daemon_lock = OutboxLock(self.engine, self.store, DAEMON).acquire(0)

    def start(self) -> None:
        """Record the start and schedule the jobs (``resume()`` then delivers what a previous run left)."""
        global _ACTIVE
        self.claim()
        _ACTIVE = self
        self._record("daemon_started", data={"calendar": self.config.calendar.model_dump(mode="json"), "pid": os.getpid()})
        self._heartbeat("running")
        self.scheduler = ClockScheduler(
            self.clock, engine=self.engine, timezone=self.config.calendar.tz, tablename=jobs_table(self.store),
            adopt=(JOBS_TABLE, self.job_prefix),
        )
        jobs = [
            spec._replace(job_id=self.job_prefix + spec.job_id)
            for spec in self.config.scheduled_jobs(JOB_FUNCTION, self.clock.now())
        ]
        schedule_jobs(self.scheduler, jobs, prefix=self.job_prefix)
        self.scheduler.add_listener(self._missed, EVENT_JOB_MISSED)
        self.scheduler.start()

    def _missed(self, event: JobExecutionEvent) -> None:
        """A run the scheduler could not start within its misfire grace (the daemon was down or
        busy): recorded, so `status` and the log show it."""
        job_id = event.job_id.removeprefix(self.job_prefix)
        job = self._jobs.get(job_id)
        kind = job.kind if job else "unknown"
        self._record(
            "cycle_skipped",
            data={"job": job_id, "kind": kind, "result": "missed",
                  "detail": f"missed its run at {event.scheduled_run_time.isoformat()}"},
        )
        self.metrics.refresh()  # counted from the event log, as every cycle

    def run(self, until: datetime | None = None) -> None:
        """Run scheduled jobs until ``stop()`` (or the clock passes ``until``)."""
        if self.scheduler is None:
            self.start()
        assert self.scheduler is not None
        self.scheduler.run(self.stopping, until=until)

    def stop(self) -> None:
        """Ask the daemon to stop: the cycle in flight finishes, a push in flight is parked."""
        self.stopping.set()
        if self.scheduler is not None:
            self.scheduler.wakeup()

    def shutdown(self) -> None:
        global _ACTIVE
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None
        if self._plan_inbox is not None:
            self._plan_inbox.stop()
            self._plan_inbox = None
        self._record("daemon_stopped", data={"pid": os.getpid()})
        self._heartbeat("stopped")
        if _ACTIVE is self:
            _ACTIVE = None
        if self._daemon_lock is not None:
            self._daemon_lock.release()
            self._daemon_lock = None

    def run_job(self, job_id: str) -> CycleResult:
        job = self._jobs.get(job_id)
        if job is None:
            raise KeyError(f"job {job_id} is not in the config")
        return self._cycle(job.id, job.kind, lambda: self._run(job))

    def _cycle(self, job_id: str, kind: str, body: Callable[[], CycleResult]) -> CycleResult:
        """Run one cycle with its events, metrics and heartbeat. A cycle that raises is recorded
        as failed (with the error) and the daemon goes on with the next one."""
        started = time.monotonic()
        self._record("cycle_started", data={"job": job_id, "kind": kind})
        try:
            result = body()
        except EXPECTED_ERRORS as exc:  # the broker, the data, the config: one line, no traceback
            log.debug("job %s failed", job_id, exc_info=True)
            retry = "; next try at the next run" if isinstance(exc, BrokerError) else ""
            result = CycleResult(job_id, kind, "failed", detail=one_line(exc) + retry)
        except Exception as exc:
            log.exception("job %s failed", job_id)
            result = CycleResult(job_id, kind, "failed", detail=f"{type(exc).__name__}: {exc}")
        result.seconds = time.monotonic() - started
        event = "cycle_skipped" if result.result in ("frozen", "kill_switch") else "cycle_finished"
        self._record(event, correlation=result.plan, data=result.data() | {"seconds": round(result.seconds, 3)})
        self.metrics.refresh()  # the cycle metrics count the event just recorded (and any other process's)
        if self.scheduler is not None:  # a --run-job is no running daemon: status must not say one runs
            self._heartbeat("running")
        self.say(f"{job_id}: {result.result}" + (f" ({result.detail})" if result.detail else ""))
        if self._plan_inbox is not None:  # head office hears what became of its plan
            try:
                self._plan_inbox.report_cycle(result)
            except BrokerError as exc:
                self.say(f"plan result not reported to head office: {one_line(exc)}")
        return result

    def _run(self, job: JobConfig) -> CycleResult:
        """One job's cycle. While the kill switch is on, reprice and markdown still plan (the plan
        is written for review) but record and push nothing; a freeze window skips them, and both
        skip reconcile (it only pushes)."""
        if job.kind == "retrain":
            return self.retrain(job)
        blocked = self.push_blocked()
        plans_anyway = blocked is not None and _skip_result(blocked) == "kill_switch" and job.kind != "reconcile"
        if blocked is not None and not plans_anyway:
            return CycleResult(job.id, job.kind, _skip_result(blocked), detail=blocked)
        if job.kind == "reconcile":
            return self.reconcile(job)
        return self.reprice(job)

    # -- the cycles -----------------------------------------------------------------------------
    def reprice(self, job: JobConfig) -> CycleResult:
        """A plan for the store (reprice) or for some categories (markdown), then its push."""
        inbox = self.plan_inbox if job.kind == "reprice" else None
        # A store of a chain neither reads its sales nor needs a model: head office planned.
        store = load_shelf(self.data_dir) if inbox is not None else load_store(self.data_dir)
        rules = load_rules(self.rules_path)
        now = self.clock.now()
        products = self._with_book_prices(store, now, rules.currency)
        rules.check_scopes(products)  # against the whole store: a markdown plans only some categories
        if inbox is not None:  # a store of a chain: head office's plan for its zone, or nothing
            from_head_office = inbox.take(rules.approval)
            if from_head_office is None:
                return CycleResult(job.id, job.kind, "ok", detail="no new plan from head office")
            plan = from_head_office  # already in plans_dir, with this store's approval band applied
        else:
            model, _card = self._model(store)
            if job.kind == "markdown":
                products = products[products["category"].astype(str).isin(job.categories or [])].reset_index(drop=True)
            plan = run_pricing_cycle(
                products, model, rules, store=self.store, model_name=str(self.model_dir), now=now,
                rejected_rows=len(store.rejects), competitor=competitor_reference(store.competitors),
                labels=store.labels, check_scopes=False,
            )
            if job.kind == "markdown":
                plan = markdown_only(plan, job.max_reduction_pct)
            plan.write(self.plans_dir)
        self.metrics.solver_finished(plan.solver.status, plan.solver.gap_pct)
        self._record(
            "plan_created", correlation=plan.plan_id,
            data={
                "job": job.id, "changes": len(plan.changes), "awaiting_approval": len(plan.awaiting_approval),
                "held": len(plan.held), "solver_status": plan.solver.status, "gap_pct": plan.solver.gap_pct,
            },
        )
        result = CycleResult(job.id, job.kind, "ok", plan=plan.plan_id, changes=len(plan.changes))
        blocked = self.push_blocked()
        if blocked is not None:  # kill switch (before or while the plan was made), or a freeze began
            result.result, result.detail = _skip_result(blocked), f"{blocked}: plan {plan.plan_id} written for review, nothing pushed"
            return result
        prices = plan.new_prices()
        gate = {  # the last gate: products.csv's costs, the rules' hard price bounds, what the plan relaxed
            "costs": product_costs(store.products), "limits": hard_limits(store.products, rules, prices),
            "relaxed": relaxed_rules(plan.changes),
        }
        self._push_prices(prices, store, plan.currency, plan.plan_id, result, gate)
        return result

    def reconcile(self, job: JobConfig) -> CycleResult:
        """Give labels that never had a price (new ones) the price book's price, send again what
        labels do not show (failed ones too), what the broker retains other than the outbox (read
        back: a forged, lost or old-key state) and whatever is still open."""
        now = self.clock.now()
        with self._outbox_lock():
            try:
                synced = len(self._sync(now))
                note = ""
            except (DataError, ConfigError) as exc:  # the labels still get what the outbox holds
                synced, note = 0, f"no sync of new labels: {str(exc).splitlines()[0]}"
            reopened = self.outbox.reopen(at_us=epoch_us(now))
            found = read_back(self.address, self.topics, self.outbox, signer=self.signer)
            self.outbox.reopen_labels(found.labels)
            if found.differing:
                self.say(f"read back: {len(found.differing)} retained desired states differ from the outbox "
                         f"({found.by_reason()}); sending the engine's again")
            extra = {"reopened": reopened, "synced": synced} | found.summary()
            result = CycleResult(job.id, job.kind, "ok", detail=note, extra=extra)
            self._deliver(result)  # returns at once when nothing is open
        return result

    def _sync(self, now: datetime) -> list[LabelRow]:
        """Queue the price book's price for labels that do not have it yet (sync_labels)."""
        shelf = load_shelf(self.data_dir)
        rules = load_rules(self.rules_path)
        synced = sync_labels(
            self.price_book, self.outbox, self.events, shelf.label_rows(), file_prices=shelf_prices(shelf.products),
            costs=product_costs(shelf.products), currency=rules.currency, at=now,
            correlation=f"sync-{now:%Y%m%dT%H%M%SZ}",
        )
        for line in held_lines(synced.held, limit=50):  # the last gate's (each also a held event)
            self.say(line)
        return synced.pushed

    def retrain(self, job: JobConfig) -> CycleResult:
        store = load_store(self.data_dir)
        training = train_demand_model(store.sales, store.products, listing=store.listing)
        path = save_model(training, self.model_dir)
        metrics = {k: round(float(v), 4) for k, v in training.metrics.items() if isinstance(v, int | float)}
        return CycleResult(job.id, job.kind, "ok", detail=f"model saved to {path}", extra={"metrics": metrics})

    def resume(self) -> CycleResult | None:
        """At start: deliver what a previous run left open (unless pushes are blocked, or a
        reconcile job is due now: it delivers what is open, so start-up reconciles once)."""
        if not self.outbox.counts().open or self.push_blocked() is not None:
            return None
        due = self._reconcile_due()
        if due is not None:
            self.say(f"resume: left to the {due} job, due now")
            return None

        def body() -> CycleResult:
            result = CycleResult("resume", "reconcile", "ok")
            with self._outbox_lock():
                self._deliver(result)
            return result

        return self._cycle("resume", "reconcile", body)

    def _reconcile_due(self) -> str | None:
        """The id of a reconcile job the scheduler will run as soon as it starts (its stored run
        time has come, within its misfire grace), or None."""
        if self.scheduler is None:
            return None
        now = self.clock.now()
        for job in self.scheduler.get_jobs():
            config = self._jobs.get(job.id.removeprefix(self.job_prefix))
            if config is None or config.kind != "reconcile" or job.next_run_time is None:
                continue
            late = (now - job.next_run_time).total_seconds()
            if 0 <= late <= config.misfire_grace(self.config.scheduler):
                return config.id
        return None

    # -- pieces ---------------------------------------------------------------------------------
    def _model(self, store: StoreData) -> tuple[Any, dict[str, Any]]:
        try:
            return load_model(self.model_dir)
        except ModelLoadError:
            self.say(f"no usable demand model in {self.model_dir}: training one first")
            training = train_demand_model(store.sales, store.products, listing=store.listing)
            save_model(training, self.model_dir)
            return load_model(self.model_dir)

    def _with_book_prices(self, store: StoreData, now: datetime, currency: str) -> pd.DataFrame:
        """products with today's prices from the price book (seeded from products.csv for SKUs
        the book has never seen): the book, not the file, says what the shelf shows."""
        products = store.products
        file_prices = shelf_prices(products)
        seeded = self.price_book.seed(file_prices, at=now, currency=currency, source="products.csv")
        self.events.append(price_change_events(seeded, store=self.store, correlation="products.csv", at=now))
        book = self.price_book.current()
        out = products.copy()
        out["price_cents"] = [book.get(sku, cents) for sku, cents in file_prices.items()]
        return out

    def _push_prices(
        self, prices: dict[str, int], store: StoreData, currency: str, correlation: str, result: CycleResult,
        gate: dict[str, Any] | None = None,
    ) -> None:
        with self._push_lock, self._outbox_lock():
            recorded = record_prices(
                self.price_book, self.outbox, self.events, prices, label_rows(store.labels),
                currency=currency, correlation=correlation, at=self.clock.now(),
                **(gate or {"costs": {}}),  # no costs given: the last gate holds every price
            )
            if recorded.held:  # the last gate kept these out (each a held event); the rest goes ahead
                result.extra["held"] = [{"sku": h.sku, "reason": h.reason} for h in recorded.held]
                for line in held_lines(recorded.held, limit=50):
                    self.say(line)
            result.pushed_labels = len(recorded.pushed)
            result.extra["already_shown"] = recorded.enqueued.already_shown
            self.metrics.pushes("already_shown", recorded.enqueued.already_shown)
            self._deliver(result)

    def _deliver(self, result: CycleResult) -> None:
        """Deliver everything open in the outbox; log acks and failures of the labels that moved."""
        settings = self.config.delivery.settings()
        stop = PushStop(self.stopping, self.push_blocked, stopping_reason="daemon stopping")
        try:
            delivered = deliver_logged(
                self.outbox, self.events, self.address, self.topics, settings,
                signer=self.signer, now=self.clock.now, deadline_s=self.config.delivery.deadline_s, stop=stop,
                notice=self.say,
            )
        except BrokerError as exc:  # an outage: one line; the labels stay in the outbox for the next run
            self.metrics.broker(False)
            result.result, result.detail = "failed", f"{one_line(exc)}; what is open stays in the outbox for the next run"
            return
        except Exception:
            self.metrics.broker(False)
            raise
        if delivered is None:
            return
        report = delivered.report
        self.metrics.broker(not report.broker_lost)
        for seconds in ack_latencies(delivered.after.values()):
            self.metrics.ack_latency(seconds)
        self._count(result, report)
        if stop.reason is not None and report.waiting:
            result.result, result.detail = "parked", f"push stopped: {stop.reason}"
        elif report.failed or report.waiting:
            result.result, result.detail = "failed", _labels_not_confirmed(report)
        counts = self.outbox.counts()
        self.metrics.outbox(counts.open, counts.by_state.get("failed", 0))

    def _count(self, result: CycleResult, report: DeliveryReport) -> None:
        s = report.summary()
        result.confirmed += int(s["confirmed"])  # type: ignore[call-overload]
        result.failed += int(s["failed"])  # type: ignore[call-overload]
        result.waiting += int(s["waiting"])  # type: ignore[call-overload]
        for state in ("confirmed", "failed", "waiting", "scheduled"):
            self.metrics.pushes(state, int(s[state]))  # type: ignore[call-overload]
        self.metrics.security_events(s)
        tampering = {kind: s[kind] for kind in SECURITY_EVENTS if s.get(kind)}
        if tampering:
            self.say(f"signs of tampering in this push: {tampering} (docs/security.md)")


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (ConfigError: its first problem)."""
    problems = getattr(exc, "problems", None)
    text = str(problems[0]) if problems else str(exc)
    return (text.splitlines() or [type(exc).__name__])[0]


def _labels_not_confirmed(report: DeliveryReport) -> str:
    """The detail of a cycle whose push left labels failed or waiting: how many, and the first reason."""
    parts = []
    if report.failed:
        parts.append(f"{len(report.failed)} labels failed (first: {report.failed[0].label_id}: {report.failed[0].detail})")
    if report.waiting:
        offline = f"; gateways offline: {', '.join(report.gateways_offline)}" if report.gateways_offline else ""
        parts.append(f"{len(report.waiting)} labels still waiting, left in the outbox{offline}")
    return "; ".join(parts)


def _skip_result(blocked: str) -> str:
    """The cycle result for a ``push_blocked`` reason."""
    return "kill_switch" if blocked.startswith("kill switch") else "frozen"


def markdown_only(plan: PricePlan, max_reduction_pct: float | None) -> PricePlan:
    """A markdown run only lowers prices: increases (and reductions deeper than the limit) are
    kept at today's price, with the reason on the line."""
    lines: list[PlanLine] = []
    for line in plan.lines:
        if line.status in ("change", "approval") and line.new_cents > line.old_cents:
            line = _keep(line, "markdown runs only lower prices")
        elif (
            line.status in ("change", "approval")
            and max_reduction_pct is not None
            and (line.old_cents - line.new_cents) / line.old_cents * 100 > max_reduction_pct
        ):
            line = _keep(line, f"markdown deeper than {max_reduction_pct:g}%")
        lines.append(line)
    return plan.model_copy(update={"lines": lines})


def _keep(line: PlanLine, why: str) -> PlanLine:
    return line.model_copy(
        update={
            "status": "keep", "new_cents": line.old_cents, "units_new": line.units_old,
            "profit_new_cents": line.profit_old_cents, "binding_rule": "markdown",
            "explanation": f"{why}; the optimizer proposed {line.new_cents / 100:.2f}",
        }
    )


__all__ = [
    "CycleResult",
    "StoreDaemon",
    "markdown_only",
    "run_scheduled_job",
]
