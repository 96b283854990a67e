"""APScheduler 3.x with an injected clock, a persistent job store and a main loop in the caller's thread.

The store daemon runs ``ClockScheduler.run(stop)`` in its main thread. The scheduler's every notion
of "now" comes from a ``Clock``: ``SystemClock`` in production, ``SimulatedClock`` in tests and
replays, where ``wait`` jumps to the next due job at once, so a simulated week runs in seconds.

How the clock is injected
-------------------------
APScheduler 3 reads the wall clock through the module-global name ``datetime`` in a few modules
(checked against 3.11: ``schedulers/base.py`` in add_job / resume_job / reschedule_job /
_process_jobs, ``executors/base.py`` in ``run_job``'s misfire check, and the default start of
``triggers/interval.py`` and ``triggers/date.py``). ``ClockScheduler.start()`` replaces that name
in those modules (``CLOCK_PATCHED_MODULES``) with a stand-in for the ``datetime`` class whose
``now(tz)`` is the *active clock*'s time in ``tz`` (everything else, ``isinstance`` included, is the
real class), and ``shutdown()`` puts the real class back. There is one active clock per process:
starting a second ClockScheduler with a different clock while one runs raises RuntimeError, and
any other APScheduler scheduler in the process sees the active clock too while it is set.
``active_clock()`` gives the clock to code that runs inside jobs (the daemon's cycles).

What the clock does not reach: APScheduler's log timestamps, ``CalendarIntervalTrigger``
(``date.today()``, not used here), the asyncio/gevent/Qt/Tornado/Twisted schedulers (their event
loops time themselves), and whatever a job itself reads (it should call ``active_clock().now()``).

Job store and reconcile
-----------------------
``schedule_jobs`` makes the job store hold exactly the configured jobs through APScheduler's public
API only: the scheduler is started paused (``start(paused=True)``; ``schedule_jobs`` does that for a
ClockScheduler not started yet, whose ``start()`` then just resumes it), the stored jobs are read
with ``get_jobs``, the configured ones added with ``add_job(..., id=..., replace_existing=True)``
(keeping the stored next run time where the schedule did not change), the others removed with
``remove_job``, and job processing resumes.

A stored job whose function cannot be imported any more (it moved in a restructuring) cannot be
restored: APScheduler's SQLAlchemyJobStore logs "Unable to restore job" and deletes the row, and
the reconcile adds the configured job afresh (a run missed meanwhile is lost). For the moves we
made, the job store restores the job with the new reference from ``MOVED_FUNC_REFS`` instead, so
its next run time, and the missed-run rule, survive the upgrade.

Executors: with a simulated clock jobs run inline, in the loop thread, after the due jobs of one
instant have been collected and their next run times stored, so simulated time stands still while
a cycle runs. With a real clock, pricing jobs (``executor="default"``) run in a 1-worker pool and
retraining (``"training"``) in another, so a long retrain never blocks a push.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import pickle
import re
import sys
import threading
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, NamedTuple, Protocol, runtime_checkable

import apscheduler.executors.base as _ap_executors_base
import apscheduler.schedulers.base as _ap_schedulers_base
import apscheduler.triggers.date as _ap_triggers_date
import apscheduler.triggers.interval as _ap_triggers_interval
from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.base import (
    STATE_PAUSED,
    STATE_RUNNING,
    STATE_STOPPED,
    BaseScheduler,
)
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import (
    Column,
    Engine,
    Float,
    LargeBinary,
    MetaData,
    Table,
    Unicode,
    inspect,
    select,
)

__all__ = [
    "CLOCK_PATCHED_MODULES",
    "JOBS_TABLE",
    "MAX_WAIT_S",
    "MOVED_FUNC_REFS",
    "Clock",
    "ClockScheduler",
    "InlineExecutor",
    "ScheduledJob",
    "SimulatedClock",
    "SystemClock",
    "active_clock",
    "jobs_table",
    "next_runs",
    "schedule_jobs",
]

log = logging.getLogger("esl.scheduler")

JOBS_TABLE = "apscheduler_jobs"
MAX_WAIT_S = 3600.0  # the loop looks at the job store at least this often (real or simulated seconds)
_REAL_DATETIME = datetime

# Job functions that moved: a job store written before the move holds the old reference, which
# can no longer be imported; such a job is restored with the new one.
MOVED_FUNC_REFS: Mapping[str, str] = {
    "pricing.daemon:run_scheduled_job": "pricing.store.daemon:run_scheduled_job",
}


# ------------------------------------------------------------------------------------------------
# Clocks
# ------------------------------------------------------------------------------------------------


@runtime_checkable
class Clock(Protocol):
    """Where the scheduler (and the jobs) get the time from."""

    def now(self) -> datetime:
        """The current time, aware, in UTC."""
        ...

    def wait(self, seconds: float, wake: threading.Event) -> None:
        """Return after ``seconds``, or as soon as ``wake`` is set."""
        ...


class SystemClock:
    """Real time."""

    simulated = False

    def now(self) -> datetime:
        return _REAL_DATETIME.now(UTC)

    def wait(self, seconds: float, wake: threading.Event) -> None:
        wake.wait(min(max(0.0, seconds), threading.TIMEOUT_MAX))

    def __repr__(self) -> str:
        return "SystemClock()"


class SimulatedClock:
    """A discrete-event clock: ``wait(seconds, wake)`` moves simulated time ``seconds`` ahead at once
    (not at all when ``wake`` is already set). Thread-safe; time never goes backwards."""

    simulated = True

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs an aware start time")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> datetime:
        """Move ``seconds`` (>= 0) ahead; the new time. Rounded to the microsecond, at least 1 us
        when ``seconds`` > 0 (so a loop waiting a fraction of a microsecond still gets there)."""
        if seconds < 0:
            raise ValueError(f"cannot go back in time ({seconds} s)")
        step = timedelta(seconds=seconds)
        if seconds > 0 and step == timedelta(0):
            step = timedelta(microseconds=1)
        with self._lock:
            self._now = self._now + step
            return self._now

    def advance_to(self, when: datetime) -> datetime:
        """Move to ``when`` (aware, not earlier than now); the new time."""
        if when.tzinfo is None:
            raise ValueError("advance_to needs an aware time")
        target = when.astimezone(UTC)
        with self._lock:
            if target < self._now:
                raise ValueError(f"cannot go back in time from {self._now.isoformat()} to {target.isoformat()}")
            self._now = target
            return self._now

    def wait(self, seconds: float, wake: threading.Event) -> None:
        if not wake.is_set():
            self.advance(max(0.0, min(seconds, threading.TIMEOUT_MAX)))

    def __repr__(self) -> str:
        return f"SimulatedClock({self.now().isoformat()})"


# ------------------------------------------------------------------------------------------------
# The active clock, and APScheduler's `datetime` pointed at it
# ------------------------------------------------------------------------------------------------

CLOCK_PATCHED_MODULES = (_ap_schedulers_base, _ap_executors_base, _ap_triggers_interval, _ap_triggers_date)

_state_lock = threading.RLock()
_active_clock: Clock | None = None
_active_schedulers: list[ClockScheduler] = []
_originals: dict[str, Any] = {}
_SYSTEM_CLOCK = SystemClock()


def active_clock() -> Clock:
    """The clock of the running ClockScheduler, else the system clock."""
    return _active_clock or _SYSTEM_CLOCK


class _ClockDatetime:
    """Stands in for the ``datetime`` class in APScheduler's modules: ``now(tz)`` is the active
    clock's time; every other attribute, construction and ``isinstance`` are the real class's."""

    def now(self, tz: tzinfo | None = None) -> datetime:
        clock = _active_clock
        if clock is None:
            return _REAL_DATETIME.now(tz)
        current = clock.now()
        if tz is None:  # naive local time, as datetime.now() gives
            return current.astimezone().replace(tzinfo=None)
        return current.astimezone(tz)

    def __getattr__(self, name: str) -> Any:
        return getattr(_REAL_DATETIME, name)

    def __call__(self, *args: Any, **kwargs: Any) -> datetime:
        return _REAL_DATETIME(*args, **kwargs)

    def __instancecheck__(self, instance: Any) -> bool:
        return isinstance(instance, _REAL_DATETIME)

    def __subclasscheck__(self, subclass: type) -> bool:
        return issubclass(subclass, _REAL_DATETIME)

    def __repr__(self) -> str:
        return f"<datetime of the active clock ({active_clock()!r})>"


_CLOCK_DATETIME = _ClockDatetime()


def _activate(scheduler: ClockScheduler) -> None:
    global _active_clock
    with _state_lock:
        running = [s for s in _active_schedulers if s is not scheduler]
        if running and _active_clock is not scheduler.clock:
            raise RuntimeError(
                f"another ClockScheduler runs with {_active_clock!r}; there is one active clock per process"
            )
        for module in CLOCK_PATCHED_MODULES:
            if module.datetime is not _CLOCK_DATETIME:
                _originals[module.__name__] = module.datetime
                module.datetime = _CLOCK_DATETIME
        _active_clock = scheduler.clock
        if scheduler not in _active_schedulers:
            _active_schedulers.append(scheduler)


def _deactivate(scheduler: ClockScheduler) -> None:
    global _active_clock
    with _state_lock:
        if scheduler in _active_schedulers:
            _active_schedulers.remove(scheduler)
        if _active_schedulers:
            return
        for module in CLOCK_PATCHED_MODULES:
            if module.datetime is _CLOCK_DATETIME:
                module.datetime = _originals.pop(module.__name__, _REAL_DATETIME)
        _active_clock = None


# ------------------------------------------------------------------------------------------------
# Executors and the scheduler
# ------------------------------------------------------------------------------------------------


class InlineExecutor(BaseExecutor):
    """Runs jobs synchronously in the scheduler's loop thread (as DebugExecutor does), but only once
    the scheduler has collected every due job of this instant and stored their next run times, and
    outside its locks: ``ClockScheduler.run`` calls ``run_pending()`` after each round."""

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[tuple[Any, list[datetime]]] = deque()

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        self._queue.append((job, run_times))

    def run_pending(self) -> int:
        """Run the submitted jobs now; how many were run."""
        count = 0
        while self._queue:
            job, run_times = self._queue.popleft()
            count += 1
            try:
                events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
            except BaseException:  # noqa: BLE001 (as DebugExecutor: the instance count must go down)
                self._run_job_error(job.id, *sys.exc_info()[1:])
            else:
                self._run_job_success(job.id, events)
        return count

    def shutdown(self, wait: bool = True) -> None:
        # Jobs submitted but not yet run when the scheduler stops are dropped (their next run times
        # are already stored); with ClockScheduler.run that only happens when a listener or another
        # thread shuts down between collecting due jobs and running them.
        self._queue.clear()


class _Stored(NamedTuple):
    trigger: Any
    next_run_time: datetime | None
    func_ref: str | None


class _EngineJobStore(SQLAlchemyJobStore):
    """SQLAlchemyJobStore on the caller's engine, which it leaves open at shutdown (the stock store
    disposes of the engine it was given, which the daemon still uses for the outbox).

    A job whose function reference cannot be imported is restored with ``moved_func_refs[old]``
    when there is one; otherwise it is dropped as APScheduler does (logged, row deleted)."""

    def __init__(
        self, *, engine: Engine, tablename: str, moved_func_refs: Mapping[str, str],
        adopt: tuple[str, str] | None = None,
    ) -> None:
        super().__init__(engine=engine, tablename=tablename)
        self.moved_func_refs = dict(moved_func_refs)
        self.adopt = adopt

    def start(self, scheduler: BaseScheduler, alias: str) -> None:
        super().start(scheduler, alias)  # creates the table
        if self.adopt is not None:
            _move_jobs(self.engine, *self.adopt, to=self.jobs_t)

    def _reconstitute_job(self, job_state: bytes) -> Job:
        try:
            return super()._reconstitute_job(job_state)
        except LookupError:  # Job.__setstate__ -> ref_to_obj: the function cannot be imported
            # Only here, for a row APScheduler itself failed to restore, is its state decoded again.
            state = pickle.loads(job_state)
            old = state.get("func")
            new = self.moved_func_refs.get(old)
            if new is None:
                raise
        log.warning("job %s: its function %s moved to %s; restored with the new reference", state["id"], old, new)
        return super()._reconstitute_job(pickle.dumps(state | {"func": new}, self.pickle_protocol))

    def shutdown(self) -> None:
        pass


def jobs_table(store: str) -> str:
    """The job store table of ``store``: one per store, so daemons of several stores can share one
    database (in one shared table each scheduler would fire, and reschedule, the others' jobs).
    Lower-case letters, digits and ``_``; a short hash keeps distinct ids apart after that."""
    name = re.sub(r"[^a-z0-9_]", "_", store.lower())
    if name != store or len(name) > 32:
        name = f"{name[:32]}_{hashlib.sha256(store.encode()).hexdigest()[:8]}"
    return f"{JOBS_TABLE}_{name}"


def _move_jobs(engine: Engine, legacy: str, prefix: str, *, to: Table) -> int:
    """Move the jobs whose id starts with ``prefix`` from the shared table ``legacy`` (where
    earlier versions kept every store's jobs) into ``to``, keeping their state and next run time.
    A job already in ``to`` wins. Returns how many moved."""
    if legacy == to.name or not inspect(engine).has_table(legacy):
        return 0
    old = Table(
        legacy, MetaData(), Column("id", Unicode(191), primary_key=True), Column("next_run_time", Float(25)),
        Column("job_state", LargeBinary),
    )
    mine = old.c.id.startswith(prefix, autoescape=True)
    with engine.begin() as conn:
        rows = conn.execute(select(old.c.id, old.c.next_run_time, old.c.job_state).where(mine)).all()
        have = {r[0] for r in conn.execute(select(to.c.id))}
        new = [{"id": i, "next_run_time": t, "job_state": js} for i, t, js in rows if i not in have]
        if new:
            conn.execute(to.insert(), new)
        conn.execute(old.delete().where(mine))
    if rows:
        log.info("moved %d job(s) of %s from %s to %s", len(new), prefix, legacy, to.name)
    return len(new)


class ClockScheduler(BaseScheduler):
    """An APScheduler 3 scheduler whose time comes from ``clock`` and whose loop runs in the
    caller's thread (``run``).

    - ``engine``: jobs persist in its ``apscheduler_jobs`` table (SQLAlchemyJobStore); without one,
      in memory.
    - ``timezone``: the scheduler's zone (the store's); triggers carry their own.
    - ``inline_jobs``: run jobs in the loop thread (default: when the clock is simulated) instead of
      the two 1-worker pools ``default`` and ``training``.
    - ``stop_poll_s``: with a real clock, the loop looks at ``stop`` at least this often (call
      ``wakeup()`` after setting it to stop at once).
    - Job defaults: max_instances=1, coalesce=True, misfire_grace_time=900 (``job_defaults`` overrides).
    - ``moved_func_refs``: old job function reference -> new one, for jobs stored before a function
      moved (default ``MOVED_FUNC_REFS``).
    - ``adopt``: ``(table, prefix)``: on start, move the jobs whose id starts with ``prefix`` from
      ``table`` into this store's table (``jobs_table``: the shared table of earlier versions).

    ``schedule_jobs`` on a scheduler not started yet starts it paused; ``start()`` then resumes it
    (or leaves it paused with ``paused=True``).
    """

    def __init__(
        self,
        clock: Clock | None = None,
        *,
        engine: Engine | None = None,
        timezone: tzinfo | str = "UTC",
        inline_jobs: bool | None = None,
        tablename: str = JOBS_TABLE,
        job_defaults: dict[str, Any] | None = None,
        stop_poll_s: float = 1.0,
        moved_func_refs: Mapping[str, str] | None = None,
        adopt: tuple[str, str] | None = None,
        **options: Any,
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self._wake = threading.Event()
        self._simulated = bool(getattr(self.clock, "simulated", False))
        self.inline_jobs = self._simulated if inline_jobs is None else inline_jobs
        self.stop_poll_s = stop_poll_s
        self._opened_paused = False  # started paused by schedule_jobs, before the caller's start()
        if self.inline_jobs:
            executors: dict[str, BaseExecutor] = {"default": InlineExecutor(), "training": InlineExecutor()}
        else:
            executors = {"default": ThreadPoolExecutor(1), "training": ThreadPoolExecutor(1)}
        moved = MOVED_FUNC_REFS if moved_func_refs is None else moved_func_refs
        store = (
            _EngineJobStore(engine=engine, tablename=tablename, moved_func_refs=moved, adopt=adopt)
            if engine is not None
            else MemoryJobStore()
        )
        defaults = {"max_instances": 1, "coalesce": True, "misfire_grace_time": 900} | (job_defaults or {})
        super().__init__(
            jobstores={"default": store}, executors=executors, job_defaults=defaults, timezone=timezone, **options
        )

    # -- BaseScheduler ------------------------------------------------------------------------------
    def start(self, paused: bool = False) -> None:
        """Make this scheduler's clock the active one, open the job store and add pending jobs.
        Returns at once: jobs run in ``run``. After ``schedule_jobs`` opened the scheduler paused,
        this only resumes it (unless ``paused``)."""
        if self._opened_paused and self.state != STATE_STOPPED:
            self._opened_paused = False
            if not paused:
                self.resume()
            return
        _activate(self)
        try:
            super().start(paused)
        except BaseException:
            _deactivate(self)
            raise

    def shutdown(self, wait: bool = True) -> None:
        """Stop: executors (``wait``: let running jobs finish), job store; restores the clock."""
        self._opened_paused = False
        try:
            super().shutdown(wait)
        finally:
            self._wake.set()
            _deactivate(self)

    def wakeup(self) -> None:
        self._wake.set()

    def _open_paused(self) -> None:
        """Start paused for ``schedule_jobs`` (the job store open, nothing processed); the caller's
        ``start()`` resumes."""
        self.start(paused=True)
        self._opened_paused = True

    # -- the loop -----------------------------------------------------------------------------------
    def run(self, stop: threading.Event, until: datetime | None = None) -> None:
        """Run due jobs until ``stop`` is set, the scheduler is shut down, or the clock reaches
        ``until`` (jobs due exactly at ``until`` are left for the next ``run``)."""
        if self.state == STATE_STOPPED:
            raise SchedulerNotRunningError
        if until is not None and until.tzinfo is None:
            raise ValueError("run(until=...) needs an aware time")
        while not stop.is_set() and self.state != STATE_STOPPED:
            if until is not None and self.clock.now() >= until:
                break
            self._wake.clear()
            wait = self._process_jobs()
            self._run_inline()
            if stop.is_set() or self.state == STATE_STOPPED:
                break
            seconds = MAX_WAIT_S if wait is None else min(wait, MAX_WAIT_S)
            if until is not None:
                seconds = min(seconds, (until - self.clock.now()).total_seconds())
            self._wait(max(0.0, seconds), stop)

    def _wait(self, seconds: float, stop: threading.Event) -> None:
        if self._simulated:
            self.clock.wait(seconds, self._wake)
            return
        # A real clock: wait in slices of stop_poll_s so that `stop` is seen without a wakeup(),
        # without asking the job store again after each slice.
        deadline = self.clock.now() + timedelta(seconds=seconds)
        while not stop.is_set() and not self._wake.is_set():
            remaining = (deadline - self.clock.now()).total_seconds()
            if remaining <= 0:
                return
            self.clock.wait(min(remaining, self.stop_poll_s), self._wake)

    def _run_inline(self) -> None:
        with self._executors_lock:
            inline = [e for e in self._executors.values() if isinstance(e, InlineExecutor)]
        for executor in inline:
            executor.run_pending()


# ------------------------------------------------------------------------------------------------
# The jobs of a config
# ------------------------------------------------------------------------------------------------


class ScheduledJob(NamedTuple):
    """One job for ``schedule_jobs`` (pricing.store.engine_config.JobSpec has the same fields)."""

    job_id: str
    trigger: Any
    func_ref: str
    kwargs: dict[str, Any]
    executor: str
    misfire_grace_s: int
    coalesce: bool


def _zone_name(tz: Any) -> str:
    return str(getattr(tz, "key", None) or tz)


def _same_schedule(old: Any, new: Any) -> bool:
    """Whether two triggers fire at the same times (an interval's start is not compared: a restart
    keeps the stored phase)."""
    if type(old) is not type(new):
        return False
    if isinstance(new, IntervalTrigger):
        return (old.interval, _zone_name(old.timezone), old.end_date, old.jitter) == (
            new.interval, _zone_name(new.timezone), new.end_date, new.jitter,
        )
    if isinstance(new, CronTrigger):
        return (str(old), _zone_name(old.timezone), old.start_date, old.end_date, old.jitter) == (
            str(new), _zone_name(new.timezone), new.start_date, new.end_date, new.jitter,
        )
    return repr(old) == repr(new)


def schedule_jobs(
    scheduler: BaseScheduler, jobs: Sequence[tuple[Any, ...]], *, jobstore: str = "default", prefix: str = ""
) -> list[str]:
    """Make the job store hold exactly ``jobs``; the ids of the jobs removed.

    Each job is ``(job_id, trigger, func_ref, kwargs, executor, misfire_grace_s, coalesce)``
    (``ScheduledJob`` / ``engine_config.JobSpec``), added under its explicit id with
    ``replace_existing=True`` and ``max_instances=1``; ``func_ref`` is ``"module:function"`` so the
    store can pickle it. Jobs in the store whose id is not in ``jobs`` are removed.

    A job whose schedule did not change keeps the next run time the store has (and an interval job
    its phase): APScheduler's ``replace_existing`` would compute it afresh from now, so a run missed
    while the daemon was down would vanish instead of being run late or reported missed.

    Only APScheduler's public API is used: the scheduler is paused while the store is read and
    changed (``get_jobs``, ``add_job``, ``remove_job``), then resumed. A ClockScheduler not started
    yet is started paused here (its ``start()`` then resumes it); another scheduler must be started
    (paused) first. With ``prefix`` (e.g. ``"S001/"``: several stores share one database) only
    stored jobs whose id starts with it are this caller's to keep or remove.
    """
    specs = [ScheduledJob(*job) for job in jobs]
    ids = [spec.job_id for spec in specs]
    strays = [i for i in ids if not i.startswith(prefix)]
    if strays:
        raise ValueError(f"job ids must start with '{prefix}': {', '.join(strays)}")
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"job ids used more than once: {', '.join(duplicates)}")
    opened = scheduler.state == STATE_STOPPED
    if opened:
        if not isinstance(scheduler, ClockScheduler):
            raise TypeError("start the scheduler (paused=True) before schedule_jobs")
        scheduler._open_paused()
    was_running = scheduler.state == STATE_RUNNING
    if was_running:
        scheduler.pause()
    try:
        return _reconcile(scheduler, specs, jobstore, prefix)
    except BaseException:
        if opened:
            scheduler.shutdown(wait=False)
        raise
    finally:
        if was_running and scheduler.state == STATE_PAUSED:
            scheduler.resume()


def _reconcile(scheduler: BaseScheduler, specs: list[ScheduledJob], jobstore: str, prefix: str) -> list[str]:
    stored = {
        job.id: _Stored(job.trigger, job.next_run_time, job.func_ref)
        for job in scheduler.get_jobs(jobstore=jobstore)  # drops the jobs it cannot restore
        if job.id.startswith(prefix)
    }
    ids = {spec.job_id for spec in specs}
    removed = sorted(set(stored) - ids)
    for job_id in removed:
        with contextlib.suppress(JobLookupError):  # gone already (another process)
            scheduler.remove_job(job_id, jobstore)
    for spec in specs:
        options: dict[str, Any] = {}
        trigger = spec.trigger
        old = stored.get(spec.job_id)
        if old is not None and old.next_run_time is not None and _same_schedule(old.trigger, spec.trigger):
            options["next_run_time"] = old.next_run_time
            if isinstance(spec.trigger, IntervalTrigger):
                trigger = old.trigger  # keep the phase the store has
        scheduler.add_job(
            spec.func_ref,
            trigger=trigger,
            kwargs=dict(spec.kwargs),
            id=spec.job_id,
            name=spec.job_id,
            executor=spec.executor,
            misfire_grace_time=spec.misfire_grace_s,
            coalesce=spec.coalesce,
            max_instances=1,
            replace_existing=True,
            jobstore=jobstore,
            **options,
        )
    return removed


def next_runs(
    engine: Engine, *, tablename: str = JOBS_TABLE, prefix: str = ""
) -> list[tuple[str, datetime | None]]:
    """Each stored job's id (``prefix`` removed; only ids with it) and next run time (aware UTC;
    None when paused), soonest first, read from the job store table without a scheduler (for
    ``esl-pricing status``). [] without a table."""
    if not inspect(engine).has_table(tablename):
        return []
    table = Table(tablename, MetaData(), Column("id", Unicode(191)), Column("next_run_time", Float(25)))
    with engine.connect() as conn:
        rows = conn.execute(select(table.c.id, table.c.next_run_time)).all()
    runs = [
        (str(job_id)[len(prefix):], None if ts is None else _REAL_DATETIME.fromtimestamp(float(ts), UTC))
        for job_id, ts in rows
        if str(job_id).startswith(prefix)
    ]
    return sorted(runs, key=lambda r: (r[1] is None, r[1] or _REAL_DATETIME.min.replace(tzinfo=UTC), r[0]))
