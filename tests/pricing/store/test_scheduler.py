"""Tests for pricing/store/scheduler.py: APScheduler 3 on an injected clock, a persistent job store,
misfires, max_instances, DST, and a simulated week in seconds."""

from __future__ import annotations

import logging
import re
import sys
import threading
import time
import types
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import apscheduler
import apscheduler.executors.base as ap_executors_base
import apscheduler.schedulers.base as ap_schedulers_base
import pytest
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from apscheduler.util import ref_to_obj
from sqlalchemy import Engine, create_engine, func, inspect, select, text
from sqlalchemy.pool import StaticPool

from label_gateway.outbox import database_url as to_url
from pricing.store import daemon as store_daemon
from pricing.store import scheduler as sched
from pricing.store.engine_config import JobConfig
from pricing.store.scheduler import (
    CLOCK_PATCHED_MODULES,
    MOVED_FUNC_REFS,
    ClockScheduler,
    InlineExecutor,
    ScheduledJob,
    SimulatedClock,
    SystemClock,
    active_clock,
    next_runs,
    schedule_jobs,
)

BERLIN = ZoneInfo("Europe/Berlin")
HERE = __name__

# -- job functions (referenced as "module:function" so the job store can pickle them) --------------
RUNS: list[tuple[str, datetime]] = []
RELEASE = threading.Event()
STARTED: list[str] = []


def record(job_id: str) -> None:
    RUNS.append((job_id, active_clock().now()))


def block(job_id: str) -> None:
    STARTED.append(job_id)
    RELEASE.wait(10)


def fail(job_id: str) -> None:
    RUNS.append((job_id, active_clock().now()))
    raise RuntimeError("boom")


def stop_loop(job_id: str) -> None:
    RUNS.append((job_id, active_clock().now()))
    STOP.set()


STOP = threading.Event()


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    RUNS.clear()
    STARTED.clear()
    RELEASE.clear()
    STOP.clear()
    yield
    RELEASE.set()
    for scheduler in list(sched._active_schedulers):  # a failed test must not leave its clock active
        scheduler.shutdown(wait=False)


def sqlite_engine(tmp_path: Path, name: str = "engine.db") -> Engine:
    return create_engine(f"sqlite:///{tmp_path / name}")


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """The job store's database: SQLite always, PostgreSQL when it answers."""
    eng = create_engine(to_url(database_url))
    yield eng
    with eng.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS apscheduler_jobs"))
    eng.dispose()


def jobs_for(configs: list[JobConfig], start: datetime, func: str = "record") -> list[ScheduledJob]:
    return [
        ScheduledJob(job.id, job.trigger(BERLIN, start), f"{HERE}:{func}", {"job_id": job.id}, job.executor, 900, True)
        for job in configs
    ]


WEEK_JOBS = [
    JobConfig(id="nightly-reprice", kind="reprice", cron="30 5 * * *"),
    JobConfig(id="markdown-perishables", kind="markdown", cron="0 13,17 * * mon-fri", categories=["dairy"]),
    JobConfig(id="reconcile", kind="reconcile", every="15m"),
    JobConfig(id="weekly-retrain", kind="retrain", cron="0 3 * * sun"),
]


def local(day: datetime, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=BERLIN)


def expected_week(start: datetime, end: datetime) -> dict[str, list[datetime]]:
    days = [start + timedelta(days=i) for i in range(7)]
    reconcile: list[datetime] = []
    t = start.astimezone(UTC)
    while t < end:
        reconcile.append(t)
        t += timedelta(minutes=15)
    return {
        "nightly-reprice": [local(d, 5, 30) for d in days],
        "markdown-perishables": [local(d, h, 0) for d in days if d.weekday() < 5 for h in (13, 17)],
        "reconcile": reconcile,
        "weekly-retrain": [local(d, 3, 0) for d in days if d.weekday() == 6],
    }


def collect(scheduler: ClockScheduler, mask: int) -> list[JobExecutionEvent | JobSubmissionEvent]:
    events: list[JobExecutionEvent | JobSubmissionEvent] = []
    scheduler.add_listener(events.append, mask)
    return events


def times_of(job_id: str) -> list[datetime]:
    return [at for job, at in RUNS if job == job_id]


# ---------------------------------------------------------------------------------------------
# A simulated week
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("monday", [datetime(2026, 6, 1, tzinfo=BERLIN)], ids=["june"])
def test_simulated_week_runs_each_job_at_its_times_once(engine: Engine, monday: datetime) -> None:
    clock = SimulatedClock(monday)
    scheduler = ClockScheduler(clock, engine=engine, timezone=BERLIN)
    executed = collect(scheduler, EVENT_JOB_EXECUTED)
    trouble = collect(scheduler, EVENT_JOB_MISSED | EVENT_JOB_ERROR | EVENT_JOB_MAX_INSTANCES)
    schedule_jobs(scheduler, jobs_for(WEEK_JOBS, monday))
    scheduler.start()
    until = monday + timedelta(days=7)
    began = time.monotonic()
    try:
        scheduler.run(threading.Event(), until=until)
    finally:
        scheduler.shutdown()
    took = time.monotonic() - began

    assert took < 10, f"a simulated week took {took:.1f} s"
    assert clock.now() == until
    expected = expected_week(monday, until)
    counts = Counter(job for job, _ in RUNS)
    assert counts == {job: len(times) for job, times in expected.items()}
    assert counts["reconcile"] == 7 * 96 and counts["nightly-reprice"] == 7
    assert counts["markdown-perishables"] == 10 and counts["weekly-retrain"] == 1
    for job, times in expected.items():
        assert times_of(job) == times, job
    assert len(executed) == len(RUNS)
    assert all(e.scheduled_run_time == at for e, (_, at) in zip(executed, RUNS, strict=True))
    assert trouble == []
    assert active_clock().__class__ is SystemClock  # restored
    assert [job for job, _ in next_runs(engine)] == ["reconcile", "nightly-reprice", "markdown-perishables",
                                                      "weekly-retrain"]


@pytest.mark.parametrize(
    "monday",
    [datetime(2026, 10, 19, tzinfo=BERLIN), datetime(2026, 3, 23, tzinfo=BERLIN)],
    ids=["october-back", "march-forward"],
)
def test_dst_week_runs_0530_local_once_a_day(tmp_path: Path, monday: datetime) -> None:
    clock = SimulatedClock(monday)
    scheduler = ClockScheduler(clock, engine=sqlite_engine(tmp_path), timezone=BERLIN)
    schedule_jobs(scheduler, jobs_for(WEEK_JOBS, monday))
    scheduler.start()
    until = monday + timedelta(days=7)
    try:
        scheduler.run(threading.Event(), until=until)
    finally:
        scheduler.shutdown()
    nightly = times_of("nightly-reprice")
    assert [t.astimezone(BERLIN).strftime("%a %H:%M") for t in nightly] == [
        f"{day} 05:30" for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
    ]
    offsets = {t.astimezone(BERLIN).utcoffset() for t in nightly}
    assert offsets == {timedelta(hours=1), timedelta(hours=2)}  # the week crosses the change
    assert [t.astimezone(BERLIN).strftime("%a %H:%M") for t in times_of("weekly-retrain")] == ["Sun 03:00"]
    # an interval is absolute time: the week has 169 (October) or 167 (March) hours
    hours = (until.astimezone(UTC) - monday.astimezone(UTC)).total_seconds() / 3600  # not wall-clock arithmetic
    assert hours in (167, 169)
    assert len(times_of("reconcile")) == hours * 4


# ---------------------------------------------------------------------------------------------
# The persistent job store
# ---------------------------------------------------------------------------------------------


def stored_ids(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(conn.execute(text("SELECT id FROM apscheduler_jobs")).scalars())


def test_restart_does_not_duplicate_jobs_and_drops_removed_ones(engine: Engine) -> None:
    monday = datetime(2026, 6, 1, tzinfo=BERLIN)
    clock = SimulatedClock(monday)
    first = ClockScheduler(clock, engine=engine, timezone=BERLIN)
    first.start()
    assert schedule_jobs(first, jobs_for(WEEK_JOBS, monday)) == []
    first.run(threading.Event(), until=monday + timedelta(days=1))
    first.shutdown()
    assert stored_ids(engine) == sorted(j.id for j in WEEK_JOBS)
    assert Counter(job for job, _ in RUNS)["nightly-reprice"] == 1

    # the same config again, twice (before start, as the daemon does, and after): still one row each
    for _ in range(2):
        again = ClockScheduler(clock, engine=engine, timezone=BERLIN)
        assert schedule_jobs(again, jobs_for(WEEK_JOBS, clock.now())) == []
        again.start()
        assert schedule_jobs(again, jobs_for(WEEK_JOBS, clock.now())) == []
        assert sorted(j.id for j in again.get_jobs()) == sorted(j.id for j in WEEK_JOBS)
        again.shutdown()
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(text("apscheduler_jobs"))).scalar() == 4

    # a config without the markdown and the retrain job: they disappear from the store
    kept = [WEEK_JOBS[0], WEEK_JOBS[2]]
    third = ClockScheduler(clock, engine=engine, timezone=BERLIN)
    removed = schedule_jobs(third, jobs_for(kept, clock.now()))
    assert removed == ["markdown-perishables", "weekly-retrain"]
    third.start()
    assert sorted(j.id for j in third.get_jobs()) == ["nightly-reprice", "reconcile"]
    RUNS.clear()
    third.run(threading.Event(), until=monday + timedelta(days=2))
    third.shutdown()
    assert stored_ids(engine) == ["nightly-reprice", "reconcile"]
    assert times_of("nightly-reprice") == [datetime(2026, 6, 2, 5, 30, tzinfo=BERLIN)]
    assert len(times_of("reconcile")) == 96  # no run twice, none lost across the restarts
    assert "markdown-perishables" not in {job for job, _ in RUNS}

    # removed while running, too
    fourth = ClockScheduler(clock, engine=engine, timezone=BERLIN)
    fourth.start()
    assert schedule_jobs(fourth, jobs_for(kept[:1], clock.now())) == ["reconcile"]
    fourth.shutdown()
    assert stored_ids(engine) == ["nightly-reprice"]


def test_restart_keeps_the_interval_phase_and_a_changed_schedule_is_replaced(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path)
    start = datetime(2026, 6, 1, 0, 0, tzinfo=BERLIN)
    clock = SimulatedClock(start)
    first = ClockScheduler(clock, engine=engine, timezone=BERLIN)
    schedule_jobs(first, jobs_for(WEEK_JOBS, start))
    first.start()
    first.run(threading.Event(), until=start + timedelta(minutes=7))
    first.shutdown()
    # restart at 00:07 with start=00:07: the stored phase (00:00, 00:15, ...) is kept
    second = ClockScheduler(clock, engine=engine, timezone=BERLIN)
    schedule_jobs(second, jobs_for(WEEK_JOBS, clock.now()))
    second.start()
    job = second.get_job("reconcile")
    assert job is not None and job.next_run_time == start + timedelta(minutes=15)
    second.shutdown()
    # a new schedule replaces the stored one and its next run time
    changed = [JobConfig(id="reconcile", kind="reconcile", every="10m"),
               JobConfig(id="nightly-reprice", kind="reprice", cron="45 6 * * *")]
    third = ClockScheduler(clock, engine=engine, timezone=BERLIN)
    schedule_jobs(third, jobs_for(changed, clock.now()))
    third.start()
    reconcile, nightly = third.get_job("reconcile"), third.get_job("nightly-reprice")
    assert reconcile is not None and reconcile.next_run_time == start + timedelta(minutes=7)
    assert nightly is not None and nightly.next_run_time == datetime(2026, 6, 1, 6, 45, tzinfo=BERLIN)
    third.shutdown()


def test_jobs_are_stored_with_their_settings(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path)
    start = datetime(2026, 6, 1, tzinfo=BERLIN)
    scheduler = ClockScheduler(SimulatedClock(start), engine=engine, timezone=BERLIN)
    scheduler.start()
    schedule_jobs(scheduler, [
        ScheduledJob("weekly-retrain", CronTrigger.from_crontab("0 3 * * sun", timezone=BERLIN),
                     f"{HERE}:record", {"job_id": "weekly-retrain"}, "training", 3600, False),
    ])
    job = scheduler.get_job("weekly-retrain")
    assert job is not None
    assert (job.func_ref, job.executor, job.misfire_grace_time, job.coalesce, job.max_instances) == (
        f"{HERE}:record", "training", 3600, False, 1,
    )
    assert job.kwargs == {"job_id": "weekly-retrain"}
    with pytest.raises(ValueError, match="more than once"):
        schedule_jobs(scheduler, jobs_for([WEEK_JOBS[0], WEEK_JOBS[0]], start))
    scheduler.shutdown()


def test_shutdown_leaves_the_shared_engine_alone() -> None:
    # The stock SQLAlchemyJobStore disposes of its engine at shutdown; on a shared in-memory
    # database (StaticPool) that would drop every table the daemon has there.
    engine = create_engine("sqlite://", poolclass=StaticPool)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE label_state (x INTEGER)"))
    start = datetime(2026, 6, 1, tzinfo=BERLIN)
    scheduler = ClockScheduler(SimulatedClock(start), engine=engine, timezone=BERLIN)
    schedule_jobs(scheduler, jobs_for(WEEK_JOBS, start))
    scheduler.start()
    scheduler.shutdown()
    assert inspect(engine).has_table("label_state")
    assert len(next_runs(engine)) == 4


def test_next_runs_without_a_scheduler(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path)
    assert next_runs(engine) == []  # no table yet
    start = datetime(2026, 6, 1, tzinfo=BERLIN)
    scheduler = ClockScheduler(SimulatedClock(start), engine=engine, timezone=BERLIN)
    scheduler.start()
    schedule_jobs(scheduler, jobs_for(WEEK_JOBS, start + timedelta(minutes=5)))
    scheduler.pause_job("weekly-retrain")
    scheduler.shutdown()
    runs = next_runs(engine)
    assert runs == [
        ("reconcile", datetime(2026, 6, 1, 0, 5, tzinfo=BERLIN)),
        ("nightly-reprice", datetime(2026, 6, 1, 5, 30, tzinfo=BERLIN)),
        ("markdown-perishables", datetime(2026, 6, 1, 13, 0, tzinfo=BERLIN)),
        ("weekly-retrain", None),
    ]
    assert all(at is None or at.tzinfo is UTC for _, at in runs)


def test_schedule_jobs_before_start_opens_the_store_paused_and_start_resumes(tmp_path: Path) -> None:
    start = datetime(2026, 6, 1, tzinfo=BERLIN)
    clock = SimulatedClock(start)
    scheduler = ClockScheduler(clock, engine=sqlite_engine(tmp_path), timezone=BERLIN)
    assert schedule_jobs(scheduler, jobs_for([WEEK_JOBS[2]], start)) == []
    assert scheduler.state == STATE_PAUSED  # the store is open (get_jobs reads it), nothing runs
    assert [job.id for job in scheduler.get_jobs()] == ["reconcile"]
    scheduler.run(threading.Event(), until=start + timedelta(hours=1))
    assert RUNS == []
    scheduler.start()
    assert scheduler.state == STATE_RUNNING
    scheduler.run(threading.Event(), until=start + timedelta(hours=1, minutes=1))
    scheduler.shutdown()
    assert times_of("reconcile") == [start + timedelta(hours=1)]  # the runs due while paused, coalesced

    # the same by hand: start paused, reconcile, resume; a running scheduler stays running
    again = ClockScheduler(clock, engine=sqlite_engine(tmp_path), timezone=BERLIN)
    again.start(paused=True)
    assert schedule_jobs(again, jobs_for([WEEK_JOBS[2]], clock.now())) == []
    assert again.state == STATE_PAUSED
    again.resume()
    assert schedule_jobs(again, jobs_for([WEEK_JOBS[0]], clock.now())) == ["reconcile"]
    assert again.state == STATE_RUNNING
    again.shutdown()
    with pytest.raises(TypeError, match="paused=True"):
        schedule_jobs(BackgroundScheduler(), jobs_for([WEEK_JOBS[0]], start))


OLD_FUNCTION = "pricing.daemon:run_scheduled_job"  # before pricing/daemon.py moved to pricing/store/


class FakeDaemon:
    def run_job(self, job_id: str) -> None:
        record(job_id)


def old_job_store(engine: Engine, clock: SimulatedClock, func_ref: str, monkeypatch: pytest.MonkeyPatch,
                  until: datetime) -> None:
    """A job store written by the previous version: S001's jobs (one no longer configured) and one
    of another store, all calling ``func_ref``, a module that is importable only while it is written."""
    module, _, name = func_ref.partition(":")
    stand_in = types.ModuleType(module)
    setattr(stand_in, name, record)
    monkeypatch.setitem(sys.modules, module, stand_in)
    configs = [*WEEK_JOBS[:3], JobConfig(id="gone", kind="reconcile", every="1h")]
    first = ClockScheduler(clock, engine=engine, timezone=BERLIN)
    for prefix, jobs in (("S001/", configs), ("S002/", [JobConfig(id="late", kind="reprice", cron="0 23 * * *")])):
        schedule_jobs(first, [
            job._replace(job_id=prefix + job.job_id, func_ref=func_ref) for job in jobs_for(jobs, clock.now())
        ], prefix=prefix)
    first.start()
    first.run(threading.Event(), until=until)
    first.shutdown()
    monkeypatch.delitem(sys.modules, module)
    with pytest.raises(LookupError):
        ref_to_obj(func_ref)  # as after the move: APScheduler cannot restore these jobs
    assert stored_ids(engine) == ["S001/gone", "S001/markdown-perishables", "S001/nightly-reprice",
                                  "S001/reconcile", "S002/late"]
    RUNS.clear()


def test_a_job_stored_with_the_old_daemon_function_is_restored_with_the_moved_one(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert ref_to_obj(MOVED_FUNC_REFS[OLD_FUNCTION]) is store_daemon.run_scheduled_job
    assert MOVED_FUNC_REFS[OLD_FUNCTION] == store_daemon.JOB_FUNCTION
    start = datetime(2026, 6, 1, 4, 0, tzinfo=BERLIN)
    clock = SimulatedClock(start)
    old_job_store(engine, clock, OLD_FUNCTION, monkeypatch, until=local(start, 5, 20))
    clock.advance_to(local(start, 5, 40))  # the upgrade took 20 minutes: the 05:30 reprice is 10 minutes late

    monkeypatch.setattr(store_daemon, "_ACTIVE", FakeDaemon())
    caplog.set_level(logging.WARNING)
    second = ClockScheduler(clock, engine=engine, timezone=BERLIN)
    executed = collect(second, EVENT_JOB_EXECUTED)
    trouble = collect(second, EVENT_JOB_MISSED | EVENT_JOB_ERROR)
    jobs = [job._replace(job_id="S001/" + job.job_id, func_ref=store_daemon.JOB_FUNCTION)
            for job in jobs_for(WEEK_JOBS[:3], clock.now())]
    assert schedule_jobs(second, jobs, prefix="S001/") == ["S001/gone"]
    stored = {job.id: job for job in second.get_jobs() if job.id.startswith("S001/")}
    assert {job.func_ref for job in stored.values()} == {store_daemon.JOB_FUNCTION}
    assert stored["S001/nightly-reprice"].next_run_time == local(start, 5, 30)  # kept: the missed run is caught
    assert stored["S001/reconcile"].next_run_time == local(start, 5, 30)  # kept, and the 15-minute phase
    second.start()
    second.run(threading.Event(), until=local(start, 6, 0))
    second.shutdown()

    assert times_of("nightly-reprice") == [local(start, 5, 40)]  # late within its grace, run once
    assert times_of("reconcile") == [local(start, 5, 40), local(start, 5, 45)]
    assert [e.scheduled_run_time for e in executed if e.job_id == "S001/nightly-reprice"] == [local(start, 5, 30)]
    assert trouble == []
    # no duplicates; the other store's job is left to its own daemon
    assert stored_ids(engine) == ["S001/markdown-perishables", "S001/nightly-reprice", "S001/reconcile", "S002/late"]
    moved = [r.getMessage() for r in caplog.records if "moved to" in r.getMessage()]
    assert any(m.startswith("job S001/nightly-reprice: its function pricing.daemon:run_scheduled_job moved to "
                            "pricing.store.daemon:run_scheduled_job") for m in moved)
    assert not [r for r in caplog.records if "Unable to restore" in r.getMessage()]


def test_a_job_whose_function_cannot_be_imported_is_dropped_and_added_afresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No known move: APScheduler drops the job (and says so); the configured one takes its id."""
    engine = sqlite_engine(tmp_path)
    start = datetime(2026, 6, 1, 4, 0, tzinfo=BERLIN)
    clock = SimulatedClock(start)
    old_job_store(engine, clock, "esl_removed_jobs:run", monkeypatch, until=local(start, 5, 0))
    clock.advance_to(local(start, 7, 0))

    caplog.set_level(logging.WARNING)
    second = ClockScheduler(clock, engine=engine, timezone=BERLIN, moved_func_refs={})
    jobs = [job._replace(job_id="S001/" + job.job_id, kwargs={"job_id": job.job_id})
            for job in jobs_for(WEEK_JOBS[:3], clock.now())]
    assert schedule_jobs(second, jobs, prefix="S001/") == []  # the dropped ones are gone already
    assert stored_ids(engine) == ["S001/markdown-perishables", "S001/nightly-reprice", "S001/reconcile"]
    assert {job.func_ref for job in second.get_jobs()} == {f"{HERE}:record"}
    assert all(job.next_run_time >= clock.now() for job in second.get_jobs())  # computed afresh
    second.shutdown()
    assert any(r.getMessage().startswith('Unable to restore job "S001/nightly-reprice"') for r in caplog.records)


# ---------------------------------------------------------------------------------------------
# Misfires and max_instances
# ---------------------------------------------------------------------------------------------


def test_misfire_after_two_hours_down(engine: Engine) -> None:
    start = datetime(2026, 6, 1, 4, 0, tzinfo=BERLIN)
    clock = SimulatedClock(start)
    configs = [
        JobConfig(id="nightly-reprice", kind="reprice", cron="30 5 * * *"),
        JobConfig(id="reconcile", kind="reconcile", every="15m"),
        JobConfig(id="reconcile-each", kind="reconcile", every="15m", coalesce=False),
    ]

    def jobs(at: datetime) -> list[ScheduledJob]:
        return [
            ScheduledJob(c.id, c.trigger(BERLIN, at), f"{HERE}:record", {"job_id": c.id}, c.executor, 900,
                         c.coalesce is not False)
            for c in configs
        ]

    first = ClockScheduler(clock, engine=engine, timezone=BERLIN)
    schedule_jobs(first, jobs(start))
    first.start()
    first.run(threading.Event(), until=local(start, 5, 0))
    first.shutdown()
    assert len(times_of("reconcile")) == 4  # 04:00 .. 04:45

    clock.advance_to(local(start, 7, 0))  # down 05:00 - 07:00
    RUNS.clear()
    second = ClockScheduler(clock, engine=engine, timezone=BERLIN)
    missed = collect(second, EVENT_JOB_MISSED)
    executed = collect(second, EVENT_JOB_EXECUTED)
    schedule_jobs(second, jobs(clock.now()))
    second.start()
    second.run(threading.Event(), until=local(start, 7, 1))
    second.shutdown()

    missed_by_job = Counter(e.job_id for e in missed)
    # the 05:30 reprice is more than 15 minutes late: reported missed, not run
    assert [e.scheduled_run_time for e in missed if e.job_id == "nightly-reprice"] == [local(start, 5, 30)]
    assert times_of("nightly-reprice") == []
    # coalesce: the 9 runs due (05:00 .. 07:00) collapse into one, at 07:00
    assert times_of("reconcile") == [local(start, 7, 0)]
    assert missed_by_job["reconcile"] == 0
    # without coalesce each is tried: 05:00 .. 06:30 missed, 06:45 (just within grace) and 07:00 run
    assert missed_by_job["reconcile-each"] == 7
    assert [e.scheduled_run_time for e in executed if e.job_id == "reconcile-each"] == [
        local(start, 6, 45), local(start, 7, 0)
    ]
    next_nightly = dict(next_runs(engine))["nightly-reprice"]
    assert next_nightly == local(start + timedelta(days=1), 5, 30)


def test_late_within_grace_runs_once(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path)
    start = datetime(2026, 6, 1, 5, 0, tzinfo=BERLIN)
    clock = SimulatedClock(start)
    job = [JobConfig(id="nightly-reprice", kind="reprice", cron="30 5 * * *")]
    first = ClockScheduler(clock, engine=engine, timezone=BERLIN)
    schedule_jobs(first, jobs_for(job, start))
    first.start()
    first.run(threading.Event(), until=local(start, 5, 20))
    first.shutdown()
    clock.advance_to(local(start, 5, 40))  # 10 minutes late, grace 15
    second = ClockScheduler(clock, engine=engine, timezone=BERLIN)
    executed = collect(second, EVENT_JOB_EXECUTED)
    schedule_jobs(second, jobs_for(job, clock.now()))
    second.start()
    second.run(threading.Event(), until=local(start, 6, 0))
    second.shutdown()
    assert times_of("nightly-reprice") == [local(start, 5, 40)]
    assert [e.scheduled_run_time for e in executed] == [local(start, 5, 30)]


def test_blocked_job_is_not_started_twice_real_clock(tmp_path: Path) -> None:
    scheduler = ClockScheduler(SystemClock(), engine=sqlite_engine(tmp_path), timezone="UTC", stop_poll_s=0.05)
    assert not scheduler.inline_jobs
    skipped = collect(scheduler, EVENT_JOB_MAX_INSTANCES)
    executed = collect(scheduler, EVENT_JOB_EXECUTED)
    now = datetime.now(UTC)
    scheduler.start()
    schedule_jobs(scheduler, [
        ScheduledJob("push", IntervalTrigger(seconds=0.2, start_date=now, timezone="UTC"), f"{HERE}:block",
                     {"job_id": "push"}, "default", 900, True),
    ])
    stop = threading.Event()
    threading.Timer(1.2, stop.set).start()
    began = time.monotonic()
    scheduler.run(stop)
    assert time.monotonic() - began < 2.5  # the loop saw stop within stop_poll_s
    assert STARTED == ["push"]  # the one run blocks; no second instance started
    assert len(skipped) >= 3
    assert all(e.job_id == "push" for e in skipped)
    RELEASE.set()
    scheduler.shutdown(wait=True)
    assert [e.job_id for e in executed] == ["push"]


def test_max_instances_with_the_simulated_clock_and_pools(tmp_path: Path) -> None:
    start = datetime(2026, 6, 1, tzinfo=BERLIN)
    scheduler = ClockScheduler(SimulatedClock(start), engine=sqlite_engine(tmp_path), timezone=BERLIN,
                               inline_jobs=False)
    skipped = collect(scheduler, EVENT_JOB_MAX_INSTANCES)
    scheduler.start()
    schedule_jobs(scheduler, jobs_for([WEEK_JOBS[2]], start, func="block"))  # every 15m, blocks
    scheduler.run(threading.Event(), until=start + timedelta(hours=1))
    assert [list(e.scheduled_run_times) for e in skipped] == [  # type: ignore[attr-defined]
        [start + timedelta(minutes=m)] for m in (15, 30, 45)
    ]
    RELEASE.set()
    scheduler.shutdown(wait=True)
    assert STARTED == ["reconcile"]


def test_inline_jobs_run_at_an_instant_that_does_not_move(tmp_path: Path) -> None:
    start = datetime(2026, 6, 1, tzinfo=BERLIN)
    clock = SimulatedClock(start)
    scheduler = ClockScheduler(clock, engine=sqlite_engine(tmp_path), timezone=BERLIN)
    assert scheduler.inline_jobs
    assert all(isinstance(scheduler._lookup_executor(a), InlineExecutor) for a in ("default", "training"))
    order: list[str] = []
    scheduler.add_listener(lambda e: order.append(f"submitted {e.job_id}"), 1 << 15)  # EVENT_JOB_SUBMITTED
    scheduler.add_listener(lambda e: order.append(f"executed {e.job_id}"), EVENT_JOB_EXECUTED)
    schedule_jobs(scheduler, jobs_for([WEEK_JOBS[2]], start))
    scheduler.start()
    scheduler.run(threading.Event(), until=start + timedelta(minutes=1))
    scheduler.shutdown()
    assert order == ["submitted reconcile", "executed reconcile"]
    assert times_of("reconcile") == [start]


def test_a_failing_job_reports_and_the_loop_goes_on(tmp_path: Path) -> None:
    start = datetime(2026, 6, 1, tzinfo=BERLIN)
    scheduler = ClockScheduler(SimulatedClock(start), engine=sqlite_engine(tmp_path), timezone=BERLIN)
    errors = collect(scheduler, EVENT_JOB_ERROR)
    schedule_jobs(scheduler, jobs_for([WEEK_JOBS[2]], start, func="fail"))
    scheduler.start()
    scheduler.run(threading.Event(), until=start + timedelta(hours=1))
    scheduler.shutdown()
    assert len(times_of("reconcile")) == 4
    assert len(errors) == 4 and isinstance(errors[0].exception, RuntimeError)  # type: ignore[attr-defined]


def test_stop_set_by_a_job_ends_run(tmp_path: Path) -> None:
    start = datetime(2026, 6, 1, tzinfo=BERLIN)
    clock = SimulatedClock(start)
    scheduler = ClockScheduler(clock, engine=sqlite_engine(tmp_path), timezone=BERLIN)
    schedule_jobs(scheduler, jobs_for([WEEK_JOBS[0]], start, func="stop_loop"))
    scheduler.start()
    scheduler.run(STOP, until=start + timedelta(days=7))
    assert clock.now() == local(start, 5, 30)
    assert times_of("nightly-reprice") == [local(start, 5, 30)]
    scheduler.shutdown()
    with pytest.raises(apscheduler.schedulers.SchedulerNotRunningError):
        scheduler.run(threading.Event())


# ---------------------------------------------------------------------------------------------
# The clock and its injection
# ---------------------------------------------------------------------------------------------


def test_simulated_clock() -> None:
    start = datetime(2026, 6, 1, 12, 0, tzinfo=BERLIN)
    clock = SimulatedClock(start)
    assert clock.now() == start and clock.now().tzinfo is UTC
    wake = threading.Event()
    clock.wait(90, wake)
    assert clock.now() == start + timedelta(seconds=90)
    wake.set()
    clock.wait(3600, wake)  # woken: no time passes
    assert clock.now() == start + timedelta(seconds=90)
    clock.advance(1e-9)  # a fraction of a microsecond still moves
    assert clock.now() == start + timedelta(seconds=90, microseconds=1)
    clock.advance_to(start + timedelta(days=1))
    assert clock.now() == start + timedelta(days=1)
    with pytest.raises(ValueError, match="back in time"):
        clock.advance_to(start)
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError, match="aware"):
        SimulatedClock(datetime(2026, 6, 1))


def test_simulated_clock_is_thread_safe() -> None:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    clock = SimulatedClock(start)
    threads = [threading.Thread(target=lambda: [clock.advance(1) for _ in range(1000)]) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert clock.now() == start + timedelta(seconds=4000)


def test_system_clock() -> None:
    clock = SystemClock()
    before = datetime.now(UTC)
    assert before <= clock.now() <= datetime.now(UTC)
    wake = threading.Event()
    wake.set()
    began = time.monotonic()
    clock.wait(5, wake)
    assert time.monotonic() - began < 1


def test_apscheduler_sees_the_active_clock_and_gets_the_real_one_back() -> None:
    start = datetime(2031, 1, 1, tzinfo=UTC)
    real = ap_schedulers_base.datetime
    clock = SimulatedClock(start)
    scheduler = ClockScheduler(clock, timezone=BERLIN)
    scheduler.start()
    try:
        for module in CLOCK_PATCHED_MODULES:
            assert module.datetime.now(UTC) == start
            assert isinstance(start, module.datetime)  # isinstance still works
            assert module.datetime(2030, 1, 1) == datetime(2030, 1, 1)
            assert module.datetime.fromtimestamp(0, UTC) == datetime(1970, 1, 1, tzinfo=UTC)
        assert ap_executors_base.datetime.now(BERLIN) == start.astimezone(BERLIN)
        assert active_clock() is clock
        other = ClockScheduler(SimulatedClock(start), timezone=BERLIN)
        with pytest.raises(RuntimeError, match="one active clock per process"):
            other.start()
        same = ClockScheduler(clock, timezone=BERLIN)  # a second scheduler on the same clock is fine
        same.start()
        same.shutdown()
        assert active_clock() is clock
    finally:
        scheduler.shutdown()
    assert ap_schedulers_base.datetime is real is datetime
    assert all(module.datetime is datetime for module in CLOCK_PATCHED_MODULES)
    assert isinstance(active_clock(), SystemClock)


def test_no_other_apscheduler_module_reads_the_wall_clock() -> None:
    """Guards an APScheduler upgrade: every module that reads the time is patched, or unused here."""
    root = Path(apscheduler.__file__).parent
    unused = {  # schedulers and triggers this project does not use
        "schedulers/asyncio.py", "schedulers/background.py", "schedulers/blocking.py", "schedulers/gevent.py",
        "schedulers/qt.py", "schedulers/tornado.py", "schedulers/twisted.py", "triggers/calendarinterval.py",
    }
    patched = {Path(m.__file__).relative_to(root).as_posix() for m in CLOCK_PATCHED_MODULES}  # type: ignore[arg-type]
    reads = re.compile(r"\bdatetime\.now\(|\butcnow\(|\btoday\(|\btime\.time\(|\bmonotonic\(|\bsleep\(|\.wait\(")
    readers = {
        path.relative_to(root).as_posix()
        for path in root.rglob("*.py")
        if any(reads.search(line) for line in path.read_text(encoding="utf-8").splitlines()
               if not line.lstrip().startswith(("#", ":", "Triggers on")))
    }
    assert readers - unused <= patched, readers - unused - patched


# -- several stores, one database ------------------------------------------------------------------


def test_each_store_has_its_own_job_table() -> None:
    names = {store: sched.jobs_table(store) for store in ("S001", "s001", "store-001", "store_001", "x" * 80)}
    assert names["store_001"] == "apscheduler_jobs_store_001"
    assert len(set(names.values())) == len(names)  # ids that sanitise alike stay apart
    assert all(re.fullmatch(r"[a-z0-9_]{1,63}", name) for name in names.values())


def _store_jobs(store: str, start: datetime) -> list[ScheduledJob]:
    return [
        ScheduledJob(f"{store}/reconcile", IntervalTrigger(minutes=15, start_date=start), f"{HERE}:record",
                     {"job_id": f"{store}/reconcile"}, "default", 900, True)
    ]


def test_two_stores_on_one_database_run_only_their_own_jobs(tmp_path: Path) -> None:
    # In one shared table each store's scheduler fired (and rescheduled) the other's jobs too.
    engine = sqlite_engine(tmp_path)
    start = datetime(2026, 6, 1, 4, 0, tzinfo=BERLIN)
    clock = SimulatedClock(start)
    first = ClockScheduler(clock, engine=engine, timezone=BERLIN, tablename=sched.jobs_table("S1"))
    schedule_jobs(first, _store_jobs("S1", start), prefix="S1/")
    first.shutdown()
    second = ClockScheduler(clock, engine=engine, timezone=BERLIN, tablename=sched.jobs_table("S2"))
    schedule_jobs(second, _store_jobs("S2", start), prefix="S2/")
    second.start()
    second.run(threading.Event(), until=local(start, 5, 1))
    second.shutdown()
    assert {job for job, _ in RUNS} == {"S2/reconcile"}
    assert len(times_of("S2/reconcile")) == 5  # 04:00 .. 05:00
    assert [job for job, _ in next_runs(engine, tablename=sched.jobs_table("S1"))] == ["S1/reconcile"]
    assert next_runs(engine, tablename=sched.jobs_table("S1"))[0][1] == local(start, 4, 0)  # untouched


def test_jobs_of_the_shared_table_move_to_the_stores_table_with_their_next_run(tmp_path: Path) -> None:
    engine = sqlite_engine(tmp_path)
    start = datetime(2026, 6, 1, 4, 0, tzinfo=BERLIN)
    clock = SimulatedClock(start)
    old = ClockScheduler(clock, engine=engine, timezone=BERLIN)  # an earlier version: one table for all
    schedule_jobs(old, _store_jobs("S1", start) + _store_jobs("S2", start))
    old.start()
    old.run(threading.Event(), until=local(start, 4, 20))  # both ran at 04:00 and 04:15
    old.shutdown()
    RUNS.clear()
    new = ClockScheduler(
        clock, engine=engine, timezone=BERLIN, tablename=sched.jobs_table("S1"), adopt=(sched.JOBS_TABLE, "S1/")
    )
    schedule_jobs(new, _store_jobs("S1", start), prefix="S1/")
    new.shutdown()
    moved = next_runs(engine, tablename=sched.jobs_table("S1"))
    assert moved == [("S1/reconcile", local(start, 4, 30))]  # its phase kept, not restarted from now
    assert [job for job, _ in next_runs(engine)] == ["S2/reconcile"]  # the other store's stays
