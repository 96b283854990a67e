"""The engine database's schema migrations (pricing/core/database.py, pricing/core/migrations) on SQLite
and PostgreSQL: fresh databases, pre-Alembic databases, the append-only event log, downgrades,
concurrent openers, errors and the ``esl-pricing db`` commands."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import tomllib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import typer
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, create_engine, event, inspect, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from label_gateway.outbox import Outbox, label_state
from pricing.cli.db import db_app
from pricing.core.database import (
    BASELINE_REVISION,
    MIGRATIONS,
    DatabaseError,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    open_engine,
    upgrade,
)
from pricing.core.events import Event
from pricing.store.engine_state import engine_flags
from pricing.store.event_log import EventLog, events
from pricing.store.price_book import price_history

ROOT = Path(__file__).resolve().parents[3]
TABLES = ("label_state", "price_history", "events", "engine_flags")

# label_state as issue 5's create_all made it, before migrations existed (no reference_cents).
PRE_ALEMBIC_LABEL_STATE = """
CREATE TABLE label_state (
    store VARCHAR(64) NOT NULL, label_id VARCHAR(64) NOT NULL, gateway VARCHAR(64) NOT NULL,
    sku VARCHAR(64) NOT NULL, version BIGINT NOT NULL, price_cents INTEGER NOT NULL,
    currency VARCHAR(3) NOT NULL, content_hash VARCHAR(16) NOT NULL, effective_at_us BIGINT,
    correlation VARCHAR(128) NOT NULL, state VARCHAR(16) NOT NULL, attempts INTEGER NOT NULL,
    next_attempt_us BIGINT NOT NULL, sent_us BIGINT, last_error TEXT, confirmed_version BIGINT,
    confirmed_price_cents INTEGER, confirmed_hash VARCHAR(16), confirmed_us BIGINT, battery_mv INTEGER,
    updated_us BIGINT NOT NULL, PRIMARY KEY (store, label_id)
)"""
PRE_ALEMBIC_ROW = """
INSERT INTO label_state (store, label_id, gateway, sku, version, price_cents, currency, content_hash,
    correlation, state, attempts, next_attempt_us, updated_us)
VALUES ('S1', 'L1', 'gw-1', '0001', 7, 279, 'EUR', 'abcdef0123456789', 'plan-old', 'confirmed', 1, 0, 1)"""


@pytest.fixture
def fresh_url(database_url: str) -> Iterator[str]:
    """An empty database of its own: a new SQLite file, or a new PostgreSQL schema (the session's
    schema is shared with the other tests, which must not see downgrades)."""
    if "://" not in database_url:
        yield database_url
        return
    base = database_url.split("?", 1)[0]
    schema = f"esl_mig_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{base}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def code_metadata() -> MetaData:
    """Every table as the code defines it (what pricing/core/migrations/env.py compares against)."""
    metadata = MetaData()
    for table in (label_state, price_history, events, engine_flags):
        table.to_metadata(metadata)
    return metadata


def schema_differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        return list(compare_metadata(MigrationContext.configure(conn), code_metadata()))


def _event(kind: str = "kill_switch") -> Event:
    return Event(at=datetime(2026, 11, 23, 5, 30, tzinfo=UTC), store="S1", kind=kind, data={"on": True})  # type: ignore[arg-type]


def _execute(engine: Engine, sql: str) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql))


def _triggers(engine: Engine) -> set[str]:
    query = (
        "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        if engine.dialect.name == "sqlite"
        else "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass('events') AND NOT tgisinternal"
    )
    with engine.connect() as conn:
        return set(conn.execute(text(query)).scalars())


# -- fresh and current databases ----------------------------------------------------------------


def test_a_fresh_database_reaches_head_and_matches_the_code(fresh_url: str) -> None:
    engine = open_engine(fresh_url)
    assert current_revision(engine) == head_revision() == "0002"
    assert set(TABLES) <= set(inspect(engine).get_table_names())
    assert schema_differences(engine) == []


def test_a_second_upgrade_of_a_current_database_changes_nothing(fresh_url: str) -> None:
    open_engine(fresh_url)
    engine = make_engine(fresh_url)  # as another process would: not in this process's cache
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda conn, cur, sql, *rest: statements.append(sql))
    upgrade(engine)
    upgrade(engine)
    writes = [s for s in statements if s.split()[0].upper() in {"CREATE", "ALTER", "DROP", "INSERT", "UPDATE"}]
    assert writes == []
    assert not any("BEGIN IMMEDIATE" in s or "advisory" in s for s in statements)  # no write lock taken
    assert current_revision(engine) == head_revision()


def test_processes_opening_a_new_database_at_once_migrate_it_once(fresh_url: str) -> None:
    script = (
        "import sys, time; from pricing.core.database import open_engine; "
        "time.sleep(max(0.0, float(sys.argv[2]) - time.time())); open_engine(sys.argv[1])"
    )
    start = str(time.time() + 2.5)  # after every process has imported: they open at the same instant
    procs = [
        subprocess.Popen([sys.executable, "-c", script, fresh_url, start], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    errors = [proc.communicate(timeout=60)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], errors
    engine = make_engine(fresh_url)
    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []


def test_the_engine_is_cached_per_url_but_a_deleted_sqlite_file_is_migrated_again(tmp_path: Path) -> None:
    path = tmp_path / "engine.db"
    open_engine(path).dispose()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    engine = open_engine(path)
    assert current_revision(engine) == head_revision()


# -- databases made before migrations existed ---------------------------------------------------------


def test_a_pre_alembic_database_is_stamped_and_upgraded_keeping_its_rows(fresh_url: str) -> None:
    before = make_engine(fresh_url)
    _execute(before, PRE_ALEMBIC_LABEL_STATE)
    if before.dialect.name == "postgresql":  # create_all also wrote the column's comment
        _execute(before, "COMMENT ON COLUMN label_state.version IS 'desired version; increases per label'")
    _execute(before, PRE_ALEMBIC_ROW)
    engine = open_engine(fresh_url)
    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []
    [row] = Outbox(engine, "S1").rows()
    assert (row.label_id, row.version, row.price_cents, row.state) == ("L1", 7, 279, "confirmed")
    assert row.reference_cents is None


def test_a_database_made_by_create_all_of_todays_code_is_upgraded_too(fresh_url: str) -> None:
    """Development databases got reference_cents from create_all before the migrations existed."""
    label_state.metadata.create_all(make_engine(fresh_url))
    engine = open_engine(fresh_url)
    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []


# -- the append-only event log ---------------------------------------------------------------------------


def test_events_can_be_appended_but_never_updated_or_deleted(fresh_url: str) -> None:
    engine = open_engine(fresh_url)
    log = EventLog(engine, "S1")
    assert log.append([_event(), _event("daemon_started")]) == 2
    assert [e.seq for e in log.read()] == [1, 2]  # seq is assigned by the database
    for statement in ("UPDATE events SET kind = 'acked'", "DELETE FROM events", "DELETE FROM events WHERE seq = 1"):
        with pytest.raises(DBAPIError, match="events are append-only"):
            _execute(engine, statement)
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="events are append-only"):
            _execute(engine, "TRUNCATE events")
    assert [e.kind for e in log.read()] == ["kill_switch", "daemon_started"]


# -- downgrades and failed upgrades -----------------------------------------------------------------------


def test_downgrade_to_the_baseline_and_back_up(fresh_url: str) -> None:
    engine = open_engine(fresh_url)
    _execute(engine, PRE_ALEMBIC_ROW)
    EventLog(engine, "S1").append([_event()])

    downgrade(engine, BASELINE_REVISION)
    assert current_revision(engine) == BASELINE_REVISION
    assert set(inspect(engine).get_table_names()) - {"alembic_version"} == {"label_state"}
    assert "reference_cents" not in {c["name"] for c in inspect(engine).get_columns("label_state")}
    assert _triggers(engine) == set()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT price_cents FROM label_state")).scalars().all() == [279]

    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert schema_differences(engine) == []
    assert _triggers(engine)
    EventLog(engine, "S1").append([_event()])  # row triggers need a row to refuse
    with pytest.raises(DBAPIError, match="append-only"):
        _execute(engine, "DELETE FROM events")
    [row] = Outbox(engine, "S1").rows()
    assert row.reference_cents is None


def test_a_failed_upgrade_leaves_the_schema_as_it_was(fresh_url: str) -> None:
    engine = make_engine(fresh_url)
    upgrade(engine, BASELINE_REVISION)
    _execute(engine, "CREATE TABLE events (x INTEGER)")  # in the way of revision 0002
    with pytest.raises(DatabaseError) as caught:
        open_engine(fresh_url)
    message = str(caught.value)
    assert "\n" not in message and "schema upgrade failed" in message and "events" in message
    assert current_revision(engine) == BASELINE_REVISION
    assert "price_history" not in inspect(engine).get_table_names()  # DDL before the failure rolled back
    assert "reference_cents" not in {c["name"] for c in inspect(engine).get_columns("label_state")}


def test_a_database_from_a_newer_esl_pricing_is_refused_with_one_line(fresh_url: str) -> None:
    engine = open_engine(fresh_url)
    _execute(engine, "UPDATE alembic_version SET version_num = '9999'")
    downgrade_proof = make_engine(fresh_url)
    with pytest.raises(DatabaseError, match=r"revision 9999 is newer than this esl-pricing knows \(newest: 0002\)"):
        upgrade(downgrade_proof)


# -- user errors -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("nosuch://x", "database 'nosuch://x': "),
        ("mysql+pymysql://u@127.0.0.1/test", "database 'mysql+pymysql://u:***@127.0.0.1/test': mysql is not supported"),
        ("postgresql+psycopg://nobody:secret@127.0.0.1:1/none", "database 'postgresql+psycopg://nobody:***@127.0.0.1:1/none': "),
    ],
)
def test_bad_and_unreachable_databases_are_one_line_errors(target: str, expected: str) -> None:
    with pytest.raises(DatabaseError) as caught:
        open_engine(target)
    message = str(caught.value)
    assert message.startswith(expected) and "\n" not in message and "secret" not in message


def test_an_unwritable_sqlite_path_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    with pytest.raises(DatabaseError, match="cannot create directory") as caught:
        open_engine(tmp_path / "a-file" / "engine.db")
    assert "\n" not in str(caught.value)


# -- esl-pricing db ------------------------------------------------------------------------------------------


def _cli(*args: str) -> tuple[int, str, str]:
    app = typer.Typer()
    app.add_typer(db_app, name="db")
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_db_current_and_upgrade(fresh_url: str) -> None:
    if "://" in fresh_url:  # an empty PostgreSQL schema
        code, out, _ = _cli("db", "current", "--db", fresh_url, "--json")
        assert code == 0
        assert json.loads(out.splitlines()[-1]) == {"current": None, "head": "0002", "up_to_date": False}
    code, out, err = _cli("db", "upgrade", "--db", fresh_url, "--json")
    assert code == 0, err
    assert "upgraded from none to 0002" in err
    assert json.loads(out.splitlines()[-1])["current"] == "0002"
    code, out, _ = _cli("db", "upgrade", "--db", fresh_url)
    assert code == 0
    code, out, _ = _cli("db", "current", "--db", fresh_url, "--json")
    assert code == 0
    assert "current: 0002" in out
    assert json.loads(out.splitlines()[-1]) == {"current": "0002", "head": "0002", "up_to_date": True}


def test_db_commands_read_esl_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESL_DATABASE", str(tmp_path / "from-env.db"))
    assert _cli("db", "upgrade")[0] == 0
    assert (tmp_path / "from-env.db").exists()


def test_db_user_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    code, _, err = _cli("db", "current", "--db", str(tmp_path / "missing.db"))
    assert code == 2 and "no such file" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "missing.db").exists()
    code, _, err = _cli("db", "upgrade", "--db", "nosuch://x")
    assert code == 2 and "database 'nosuch://x'" in err and len(err.strip().splitlines()) == 1
    code, _, err = _cli("db", "upgrade", "--db", str(tmp_path / "x.db"), "--revision", "nope")
    assert code == 2 and "nope" in err and len(err.strip().splitlines()) == 1


# -- packaging ---------------------------------------------------------------------------------------------


def test_every_migration_file_is_package_data() -> None:
    """`pip install .` (not editable) must ship env.py, the template and every revision."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["package-data"]["pricing"]
    shipped = {path for pattern in patterns for path in (ROOT / "pricing").glob(pattern)}
    files = {path for path in MIGRATIONS.rglob("*") if path.suffix in {".py", ".mako"}}
    assert len(files) >= 4
    assert sorted(files - shipped) == []
