"""The engine database: a SQLAlchemy engine per target, its schema kept by Alembic migrations.

The engine database is a SQLite file by default or PostgreSQL by URL. Its schema is versioned by
the Alembic scripts in ``pricing/core/migrations`` (shipped inside the package; no alembic.ini is
needed): opening the database brings it to the newest revision, so a new esl-pricing can add a
column or a table without anyone running a command, and an existing esl-engine.db keeps its data.

A database created before migrations existed (``create_all`` of the outbox: ``label_state``
present, no ``alembic_version``) is stamped at the baseline revision 0001 and upgraded from there.

Two processes may open a new database at once: the upgrade runs under a lock (``BEGIN IMMEDIATE``
on SQLite, a transaction-scoped advisory lock on PostgreSQL), the second one waits, then finds the
schema current and changes nothing. The whole upgrade is one transaction on both databases, so a
failed migration leaves the schema as it was.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

MIGRATIONS = Path(__file__).parent / "migrations"
BASELINE_REVISION = "0001"
"""The schema issue 5 created with ``create_all``; a database without ``alembic_version`` but with
``label_state`` is at this revision."""
_PRE_ALEMBIC_TABLE = "label_state"
_PG_LOCK_KEY = 0x45534C_4D4947  # "ESL" "MIG": one advisory lock for schema upgrades per database

_migrated: set[str] = set()
_migrated_lock = threading.RLock()


class DatabaseError(Exception):
    """The engine database cannot be used (bad URL, unreachable, not writable, a failed migration).

    The message is one line: ``database 'URL-without-password': reason``."""


# -- engines ----------------------------------------------------------------------------------------


def database_url(target: str | Path) -> str:
    """A SQLAlchemy URL from ``target``: a URL is kept, anything else is a SQLite file path."""
    given = str(target)
    if "://" in given:
        return given
    return f"sqlite:///{Path(given).expanduser().resolve()}"


def _sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # busy_timeout first: switching a new file to WAL needs a lock another process may hold.
    cursor.execute("PRAGMA busy_timeout=10000")
    # WAL lets `outbox status` read while a push writes; FULL makes each commit survive power loss.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def url_without_password(url: str) -> str:
    """A URL without its password, for messages."""
    head, sep, tail = url.partition("@")
    if not sep or "://" not in head:
        return url
    scheme, _, creds = head.partition("://")
    return f"{scheme}://{creds.split(':')[0]}:***@{tail}"


def _reason(exc: BaseException) -> str:
    """The first line of what went wrong: the driver's own message when there is one."""
    source: BaseException = exc
    if isinstance(exc, DBAPIError) and exc.orig is not None:
        source = exc.orig
    lines = str(source).strip().splitlines()
    return lines[0] if lines else type(source).__name__


def _url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def sqlite_file(engine: Engine) -> Path | None:
    """The file of a SQLite engine (None for PostgreSQL and in-memory SQLite)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


#: The migrations (events' append-only triggers) and the outbox's driver-level writes know these.
SUPPORTED_DIALECTS = ("sqlite", "postgresql")


def make_engine(target: str | Path) -> Engine:
    """The engine for ``target`` with the SQLite pragmas; the schema is not touched (see
    ``open_engine``). A SQLite file's directory is created."""
    url = database_url(target)
    try:
        backend = make_url(url).get_backend_name()
    except (ArgumentError, ValueError) as exc:
        raise DatabaseError(f"database '{url_without_password(url)}': not a usable database URL: {_reason(exc)}") from None
    if backend not in SUPPORTED_DIALECTS:  # checked before create_engine imports a driver
        raise DatabaseError(f"database '{url_without_password(url)}': {backend} is not supported (use a SQLite file or a PostgreSQL URL)")
    try:
        engine = create_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
        raise DatabaseError(f"database '{url_without_password(url)}': not a usable database URL: {_reason(exc)}") from None
    if engine.dialect.name == "sqlite":
        path = sqlite_file(engine)
        if path is not None:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise DatabaseError(
                    f"database '{url_without_password(url)}': cannot create directory {path.parent}: {exc.strerror or exc}"
                ) from None
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def open_engine(target: str | Path) -> Engine:
    """Connect to the engine database and bring its schema to the newest revision.

    The schema is checked once per URL and process: tests and commands open the same database many
    times, and a database this process already upgraded needs no second look (a SQLite file that
    has disappeared since is upgraded again)."""
    engine = make_engine(target)
    key = _url_of(engine)
    path = sqlite_file(engine)
    with _migrated_lock:
        if path is not None and not path.exists():
            _migrated.discard(key)
        if key in _migrated:
            return engine
        try:
            upgrade(engine)
        except DatabaseError:
            engine.dispose()
            raise
        if path is not None or engine.dialect.name != "sqlite":  # in-memory: every engine is new
            _migrated.add(key)
    return engine


# -- migrations -------------------------------------------------------------------------------------


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations, running on ``connection`` when given (env.py
    then uses it as is: its transaction, its search_path)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    """The newest revision this version of esl-pricing knows."""
    head = _scripts().get_current_head()
    if head is None:  # pragma: no cover - the package always ships its migrations
        raise DatabaseError(f"no migrations found in {MIGRATIONS}")
    return head


def _revision_of(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None: empty, or made before migrations existed)."""
    with _database_errors(engine), engine.connect() as conn:
        return _revision_of(conn)


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (default: the newest).

    A database already at head is only read, so opening it takes no write lock. Otherwise the
    upgrade runs in one locked transaction, where the revision is read again: a second process
    that waited for the first one finds nothing to do."""
    if revision != "head":
        _forget(engine)
    with _database_errors(engine):
        if revision == "head" and _known(engine, current_revision(engine)) == head_revision():
            return
    with _database_errors(engine, "schema upgrade failed: "), _migration_transaction(engine) as conn:
        current = _revision_of(conn)
        if current is None and inspect(conn).has_table(_PRE_ALEMBIC_TABLE):
            command.stamp(alembic_config(conn), BASELINE_REVISION)
        command.upgrade(alembic_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to ``revision`` ("base": nothing). Data in what is dropped is lost;
    meant for a rollback of esl-pricing, and for testing the migrations."""
    _forget(engine)
    with _database_errors(engine, "schema downgrade failed: "), _migration_transaction(engine) as conn:
        command.downgrade(alembic_config(conn), revision)


def _forget(engine: Engine) -> None:
    """The next ``open_engine`` of this database checks its schema again."""
    with _migrated_lock:
        _migrated.discard(_url_of(engine))


def _known(engine: Engine, revision: str | None) -> str | None:
    """``revision``, refused with a clear message when a newer esl-pricing wrote it."""
    if revision is not None and revision not in {script.revision for script in _scripts().walk_revisions()}:
        raise DatabaseError(
            f"database '{url_without_password(_url_of(engine))}': schema revision {revision} is newer than this esl-pricing "
            f"knows (newest: {head_revision()}); upgrade esl-pricing"
        )
    return revision


@contextmanager
def _migration_transaction(engine: Engine) -> Iterator[Connection]:
    """One connection in one transaction that holds the database's migration lock.

    SQLite: ``BEGIN IMMEDIATE`` takes the write lock at once (waiting up to busy_timeout), and
    since it is an explicit transaction Python's sqlite3 runs the DDL inside it instead of in
    autocommit, so a failed migration rolls back. PostgreSQL: DDL is transactional anyway; an
    advisory lock makes a second upgrader wait instead of failing on "already exists"."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        yield conn
        conn.commit()


@contextmanager
def _database_errors(engine: Engine, what: str = "") -> Iterator[None]:
    """Database and Alembic errors as one-line DatabaseErrors naming the database."""
    try:
        yield
    except DatabaseError:
        raise
    except (SQLAlchemyError, CommandError, OSError) as exc:
        raise DatabaseError(f"database '{url_without_password(_url_of(engine))}': {what}{_reason(exc)}") from exc


def insert_rows(conn: Connection, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """INSERT plain tuples through the driver's executemany. SQLAlchemy's per-row parameter
    handling cost a third of a push's time at 20,000 labels; the outbox and the event log write
    their bulk rows this way."""
    if not rows:
        return
    mark = driver_mark(conn.engine)
    conn.exec_driver_sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})", rows)


def driver_mark(engine: Engine) -> str:
    """The driver's positional parameter mark (sqlite3: ``?``, psycopg: ``%s``) for exec_driver_sql."""
    return "?" if engine.dialect.paramstyle == "qmark" else "%s"
