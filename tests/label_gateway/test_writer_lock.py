"""One writer per store outbox: the cross-process lock on SQLite (flock) and PostgreSQL (advisory)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from label_gateway.writer_lock import (
    DAEMON,
    OutboxBusy,
    OutboxLock,
    lock_file,
    lock_key,
)
from pricing.core.database import DatabaseError, open_engine


def _store() -> str:
    return f"store-{uuid.uuid4().hex[:8]}"


def test_a_second_push_is_refused_with_one_line_naming_the_holder(database_url: str) -> None:
    engine = open_engine(database_url)
    store = _store()
    with OutboxLock(engine, store, wait_s=0):
        started = time.monotonic()
        with pytest.raises(OutboxBusy) as busy:
            OutboxLock(engine, store).acquire(0.3)
        assert time.monotonic() - started >= 0.3
    message = str(busy.value)
    assert "\n" not in message
    assert message.startswith(f"outbox of store {store} is busy: another push holds its lock (pid {os.getpid()} since ")
    assert re.search(r"; gave up after \d+\.\ds$", message)
    assert isinstance(busy.value, DatabaseError)  # the commands print it as one line and exit 1


def test_released_lock_is_free_again_and_purposes_and_stores_are_separate(database_url: str) -> None:
    engine = open_engine(database_url)
    store = _store()
    first = OutboxLock(engine, store).acquire(0)
    assert first.held
    with OutboxLock(engine, store, DAEMON, wait_s=0), OutboxLock(engine, _store(), wait_s=0):
        pass  # another purpose, another store: no wait
    first.release()
    first.release()  # twice is harmless
    assert not first.held
    with OutboxLock(engine, store, wait_s=0) as again:
        assert again.held
        with pytest.raises(RuntimeError, match="already held"):
            again.acquire(0)


def test_a_waiting_push_gets_the_lock_when_the_holder_is_done(database_url: str) -> None:
    engine = open_engine(database_url)
    store = _store()
    holder = OutboxLock(engine, store).acquire(0)
    threading.Timer(0.4, holder.release).start()
    started = time.monotonic()
    with OutboxLock(engine, store, wait_s=10):
        assert 0.3 <= time.monotonic() - started < 5


def test_a_stop_ends_the_wait(tmp_path: Path) -> None:
    engine = open_engine(tmp_path / "engine.db")
    stop = threading.Event()
    with OutboxLock(engine, "S1", wait_s=0):
        threading.Timer(0.2, stop.set).start()
        started = time.monotonic()
        with pytest.raises(OutboxBusy):
            OutboxLock(engine, "S1", stop=stop.is_set).acquire(30)
        assert time.monotonic() - started < 5


def test_a_second_daemon_is_told_to_stop_the_first(database_url: str) -> None:
    engine = open_engine(database_url)
    store = _store()
    with OutboxLock(engine, store, DAEMON, wait_s=0):
        with pytest.raises(OutboxBusy) as busy:
            OutboxLock(engine, store, DAEMON).acquire(0)
    assert str(busy.value).startswith(f"store {store} already has a daemon on this database (pid {os.getpid()} since ")
    assert str(busy.value).endswith("stop it first")


def test_sqlite_lock_file_sits_beside_the_database_and_records_the_holder(tmp_path: Path) -> None:
    engine = open_engine(tmp_path / "engine.db")
    lock = OutboxLock(engine, "store/1 x")
    assert lock.path == lock_file(tmp_path / "engine.db", "store/1 x")
    assert lock.path is not None and lock.path.parent == tmp_path and lock.path.name.startswith("engine.db.store_1_x-")
    assert OutboxLock(engine, "S1").path == tmp_path / "engine.db.S1.outbox.lock"
    with lock:
        holder = lock.holder()
        assert holder is not None and holder["pid"] == os.getpid() and holder["purpose"] == "outbox"
    assert lock.holder() is None  # emptied on release


def test_in_memory_sqlite_locks_within_the_process() -> None:
    engine = open_engine("sqlite://")
    with OutboxLock(engine, "S1", wait_s=0):
        with pytest.raises(OutboxBusy, match="outbox of store S1 is busy"):
            OutboxLock(engine, "S1").acquire(0)


def test_bad_purposes_are_refused(tmp_path: Path) -> None:
    engine = open_engine(tmp_path / "engine.db")
    with pytest.raises(ValueError, match="purpose"):
        OutboxLock(engine, "S1", "../x")


def test_lock_keys_are_stable_and_distinct() -> None:
    assert lock_key("S1", "outbox") == lock_key("S1", "outbox")
    keys = {lock_key("S1", "outbox"), lock_key("S1", "daemon"), lock_key("S2", "outbox"), lock_key("S1", "outbox", "s")}
    assert len(keys) == 4 and all(-(2**63) <= k < 2**63 for k in keys)


HOLDER = textwrap.dedent(
    """
    import sys, time
    from label_gateway.writer_lock import OutboxLock
    from pricing.core.database import open_engine
    lock = OutboxLock(open_engine(sys.argv[1]), sys.argv[2]).acquire(0)
    print("held", flush=True)
    time.sleep(120)
    """
)


def test_a_killed_holder_releases_the_lock(database_url: str) -> None:
    """The OS (flock) or the server (the session ends) releases the lock of a process that dies."""
    engine = open_engine(database_url)
    store = _store()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, database_url, store], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(OutboxBusy) as busy:
            OutboxLock(engine, store).acquire(0.2)
        assert f"(pid {proc.pid} since " in str(busy.value)  # the other process, by its pid
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        with OutboxLock(engine, store, wait_s=10) as lock:
            assert lock.held
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
