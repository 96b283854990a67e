"""One writer per store outbox: a lock shared by every process that uses the engine database.

Two pushes on one outbox must never interleave: each loads the open rows, publishes them and writes
its bookkeeping back, so a push that started earlier would write its older desired state over the
newer one of a push that enqueued meanwhile (the labels then show the older price while the outbox
says the newer one is confirmed). Every path that enqueues and delivers holds this lock around
enqueue + deliver; a second push waits for it up to a bound, then gives up with one line.

The lock lives outside any transaction and is released by the operating system or the database
server when its holder dies, so a crash never leaves a store locked:

- **SQLite**: ``fcntl.flock`` on a lock file beside the database file,
  ``<db>.<store>.<purpose>.lock``; the holder writes its pid and start time into it, which a waiting
  process reads for its message. (An in-memory database is private to its process: the lock is then
  a process-wide one.)
- **PostgreSQL**: a session-level ``pg_try_advisory_lock`` on a connection of its own, taken out of
  the pool for the lock's lifetime and closed with it. The key is a stable hash of the schema, the
  store and the purpose; the holder's pid and start time travel in its ``application_name``.

``purpose`` separates locks of one store: ``outbox`` (a push) and ``daemon`` (held for a store
daemon's whole life, so a second daemon exits at start). Different purposes never block each other,
so a daemon's own pushes take the ``outbox`` lock while it holds ``daemon``.

Usage::

    with OutboxLock(engine, store, wait_s=60):
        outbox.enqueue(...)
        LabelDelivery(...).run()
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Engine, text

from pricing.core.database import DatabaseError, sqlite_file

try:  # POSIX; elsewhere the lock is process-wide only (see _ProcessLock)
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

OUTBOX = "outbox"
DAEMON = "daemon"
DEFAULT_WAIT_S = 60.0
"""How long a second push waits for the one holding the lock (``--lock-wait``)."""
POLL_S = 0.1
_PURPOSE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
_APP_NAME = re.compile(r"pid (\d+) since (\S+)")


class OutboxBusy(DatabaseError):
    """The lock is held by another push (or daemon). One line, e.g. ``outbox of store S is busy:
    another push holds its lock (pid P since T)``. A DatabaseError, so the commands print it and
    exit 1."""


def _now_text() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _safe_part(value: str) -> str:
    """``value`` usable inside a file name; a short hash keeps two different ids apart."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", value)
    if cleaned == value and not value.startswith("."):
        return value
    return f"{cleaned.lstrip('.')}-{hashlib.sha256(value.encode()).hexdigest()[:8]}"


def lock_key(store: str, purpose: str, namespace: str = "") -> int:
    """The PostgreSQL advisory lock key: a signed 64-bit stable hash of (namespace, store, purpose)."""
    digest = hashlib.sha256(f"esl-pricing\0{namespace}\0{store}\0{purpose}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_file(database: Path, store: str, purpose: str = OUTBOX) -> Path:
    """The SQLite lock file of a store's ``purpose``: ``<db>.<store>.<purpose>.lock`` beside the database."""
    return database.with_name(f"{database.name}.{_safe_part(store)}.{purpose}.lock")


class OutboxLock:
    """A cross-process lock on one store's outbox (or another ``purpose``) in one engine database.

    ``acquire(wait_s)`` waits up to ``wait_s`` seconds (polling), then raises ``OutboxBusy``;
    ``release()`` gives it back (a no-op when not held). As a context manager it acquires with the
    ``wait_s`` given here. ``stop``: a callable checked while waiting; when it returns true the wait
    ends at once with ``OutboxBusy`` (a daemon asked to stop)."""

    def __init__(
        self,
        engine: Engine,
        store: str,
        purpose: str = OUTBOX,
        *,
        wait_s: float = DEFAULT_WAIT_S,
        stop: Callable[[], bool] | None = None,
        poll_s: float = POLL_S,
    ) -> None:
        if not _PURPOSE.match(purpose):
            raise ValueError(f"lock purpose '{purpose}': lower-case letters, digits and '-' only")
        if not store:
            raise ValueError("a store id is needed for its outbox lock")
        self.engine = engine
        self.store = store
        self.purpose = purpose
        self.wait_s = wait_s
        self.stop = stop
        self.poll_s = poll_s
        self._backend = self._make_backend()

    def _make_backend(self) -> _Backend:
        dialect = self.engine.dialect.name
        if dialect == "postgresql":
            return _AdvisoryLock(self.engine, self.store, self.purpose)
        path = sqlite_file(self.engine)
        if dialect == "sqlite" and path is not None and fcntl is not None:
            return _FileLock(lock_file(path, self.store, self.purpose), self.store, self.purpose)
        return _ProcessLock((self.engine.url.render_as_string(hide_password=True), self.store, self.purpose))

    @property
    def held(self) -> bool:
        return self._backend.held

    @property
    def path(self) -> Path | None:
        """The lock file (SQLite), else None."""
        return self._backend.path if isinstance(self._backend, _FileLock) else None

    def acquire(self, wait_s: float | None = None) -> OutboxLock:
        """Take the lock, waiting up to ``wait_s`` (default: the one given at construction)."""
        if self._backend.held:
            raise RuntimeError(f"the {self.purpose} lock of store {self.store} is already held by this object")
        wait = max(0.0, self.wait_s if wait_s is None else wait_s)
        started = time.monotonic()
        while True:
            if self._backend.try_acquire():
                return self
            remaining = started + wait - time.monotonic()
            if remaining <= 0 or (self.stop is not None and self.stop()):
                message = self._busy_message(time.monotonic() - started if wait else 0.0)
                self._backend.release()  # PostgreSQL: close the session it waited on
                raise OutboxBusy(message)
            time.sleep(min(self.poll_s, remaining))

    def release(self) -> None:
        self._backend.release()

    def holder(self) -> dict[str, Any] | None:
        """What the holder recorded about itself (pid, since, ...), when it can be read."""
        return self._backend.holder()

    def _busy_message(self, waited: float) -> str:
        info = self._backend.holder() or {}
        pid, since = info.get("pid"), info.get("since")
        if pid is not None and since:
            who = f"pid {pid} since {since}"
            host = info.get("host")
            if host and host != socket.gethostname():
                who = f"pid {pid} on {host} since {since}"
        else:
            who = self._backend.anonymous_holder
        after = f"; gave up after {waited:.1f}s" if waited > 0 else ""
        if self.purpose == DAEMON:
            return f"store {self.store} already has a daemon on this database ({who}); stop it first"
        if self.purpose == OUTBOX:
            return f"outbox of store {self.store} is busy: another push holds its lock ({who}){after}"
        return f"{self.purpose} lock of store {self.store} is busy ({who}){after}"

    def __enter__(self) -> OutboxLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __del__(self) -> None:  # a lock object dropped while held gives its lock back
        backend = getattr(self, "_backend", None)
        if backend is not None and backend.held:
            try:
                backend.release()
            except Exception:  # noqa: BLE001 - nothing to report from a finalizer
                pass


def _holder_record(store: str, purpose: str) -> dict[str, Any]:
    return {"pid": os.getpid(), "since": _now_text(), "host": socket.gethostname(), "store": store, "purpose": purpose}


class _Backend(ABC):
    """One way to hold the lock: a file lock, a PostgreSQL advisory lock, or a process-wide one."""

    held: bool = False
    path: Path | None = None
    anonymous_holder = "holder unknown"

    @abstractmethod
    def try_acquire(self) -> bool:
        """Take the lock if it is free; True when it is now held."""

    @abstractmethod
    def release(self) -> None:
        """Give the lock back (safe when it is not held)."""

    def holder(self) -> dict[str, Any] | None:
        return None


class _FileLock(_Backend):
    """``flock`` on a lock file; the holder's record is written into the file while it holds it."""

    anonymous_holder = "holder unknown"

    def __init__(self, path: Path, store: str, purpose: str) -> None:
        self.path = path
        self.store = store
        self.purpose = purpose
        self._fd: int | None = None
        self.held = False

    def try_acquire(self) -> bool:
        assert fcntl is not None
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise DatabaseError(f"cannot open the lock file {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError as exc:
            os.close(fd)
            raise DatabaseError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        self._fd = fd
        self.held = True
        try:
            record = json.dumps(_holder_record(self.store, self.purpose)).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, record + b"\n", 0)
        except OSError:  # the record only feeds messages; the lock itself is held
            pass
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        self.held = False
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # no stale holder in the file
        except OSError:
            pass
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def holder(self) -> dict[str, Any] | None:
        try:
            content = self.path.read_text(encoding="utf-8").strip() if self.path else ""
            info = json.loads(content) if content else None
        except (OSError, ValueError):
            return None
        return info if isinstance(info, dict) else None


class _AdvisoryLock(_Backend):
    """A session-level advisory lock on a connection of its own (out of the pool, closed with the lock)."""

    anonymous_holder = "held by another PostgreSQL session"

    def __init__(self, engine: Engine, store: str, purpose: str) -> None:
        self.engine = engine
        self.store = store
        self.purpose = purpose
        self._conn: Connection | None = None
        self._key: int | None = None
        self.held = False

    def _connection(self) -> Connection:
        if self._conn is None:
            try:
                conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")  # no open transaction
                conn.detach()  # a session of its own: closing it ends the session and any lock it holds
                schema = conn.execute(text("SELECT current_schema()")).scalar()
            except Exception as exc:
                raise DatabaseError(f"cannot take the {self.purpose} lock of store {self.store}: {_first_line(exc)}") from None
            self._conn = conn
            self._key = lock_key(self.store, self.purpose, str(schema or ""))
        return self._conn

    def try_acquire(self) -> bool:
        conn = self._connection()
        try:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": self._key}).scalar())
            if got:
                name = f"esl-pricing {self.purpose} pid {os.getpid()} since {_now_text()}"
                conn.execute(text("SELECT set_config('application_name', :name, false)"), {"name": name[:63]})
        except Exception as exc:
            self._close()
            raise DatabaseError(f"cannot take the {self.purpose} lock of store {self.store}: {_first_line(exc)}") from None
        self.held = got
        return got

    def release(self) -> None:
        if self._conn is None:
            self.held = False
            return
        try:
            if self.held:
                self._conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        except Exception:  # noqa: BLE001 - closing the session below releases it anyway
            pass
        finally:
            self.held = False
            self._close()

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass

    def holder(self) -> dict[str, Any] | None:
        if self._key is None:
            return None
        unsigned = self._key & 0xFFFF_FFFF_FFFF_FFFF
        query = text(
            "SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid::bigint = :hi AND l.objid::bigint = :lo"
        )
        try:
            conn = self._connection()
            row = conn.execute(query, {"hi": unsigned >> 32, "lo": unsigned & 0xFFFF_FFFF}).first()
        except Exception:  # noqa: BLE001 - only for the message
            return None
        finally:
            if not self.held:
                self._close()  # asked from outside a wait: no session left open
        if row is None:
            return None
        match = _APP_NAME.search(row.application_name or "")
        if match is None:
            return {"backend_pid": row.pid}
        return {"pid": int(match.group(1)), "since": match.group(2), "backend_pid": row.pid}


_process_locks: dict[tuple[str, str, str], threading.Lock] = {}
_process_locks_guard = threading.Lock()


class _ProcessLock(_Backend):
    """A database no other process can open (in-memory SQLite), or no flock: a lock per process."""

    anonymous_holder = "held elsewhere in this process"

    def __init__(self, key: tuple[str, str, str]) -> None:
        with _process_locks_guard:
            self._lock = _process_locks.setdefault(key, threading.Lock())
        self.held = False

    def try_acquire(self) -> bool:
        self.held = self._lock.acquire(blocking=False)
        return self.held

    def release(self) -> None:
        if self.held:
            self.held = False
            self._lock.release()



def _first_line(exc: BaseException) -> str:
    source = getattr(exc, "orig", None) or exc
    lines = str(source).strip().splitlines()
    return lines[0] if lines else type(source).__name__


__all__ = ["DAEMON", "DEFAULT_WAIT_S", "OUTBOX", "OutboxBusy", "OutboxLock", "lock_file", "lock_key"]
