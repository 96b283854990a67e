"""esl-pricing db: see and bring up to date the schema of the engine database.

Opening the database from any other command upgrades it already; these commands are for an
operator who wants to upgrade before starting the daemon, or to check what a database holds."""

from __future__ import annotations

from typing import Annotated

import typer
from sqlalchemy import Engine

from pricing.cli.common import (
    DbOption,
    JsonOption,
    command_group,
    database_target,
    emit_json,
    err,
    fail,
    user_errors,
)
from pricing.core.database import (
    DatabaseError,
    current_revision,
    head_revision,
    make_engine,
    sqlite_file,
    upgrade,
)

db_app = command_group("The engine database: schema migrations.")



def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


RevisionOption = Annotated[str, typer.Option(help="Revision to upgrade to (default: the newest).")]


def _existing_engine(db: str | None) -> Engine:
    """The engine of a database that must exist already: looking at a schema creates no file."""
    target = database_target(db)
    engine = make_engine(target)
    path = sqlite_file(engine)
    if path is not None and not path.exists():
        engine.dispose()
        fail(f"database '{target}': no such file (esl-pricing db upgrade creates it)")
    return engine


def _shown(revision: str | None) -> str:
    return revision or "none"


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None, revision: RevisionOption = "head", as_json: JsonOption = False) -> None:
    """Bring the schema to the newest revision (or --revision); a current database is left as is."""
    with user_errors(DatabaseError):
        engine = make_engine(database_target(db))
        try:
            before = current_revision(engine)
            upgrade(engine, revision)
            after = current_revision(engine)
            head = head_revision()
        finally:
            engine.dispose()
    what = "already at" if before == after else f"upgraded from {_shown(before)} to"
    err.print(f"database {database_target(db)}: {what} {_shown(after)} (newest: {head})", highlight=False,
              markup=False)
    if as_json:
        emit_json({"before": before, "current": after, "head": head, "up_to_date": after == head})


@db_app.command("current")
def db_current(db: DbOption = None, as_json: JsonOption = False) -> None:
    """Print the database's schema revision and the newest one this esl-pricing knows."""
    with user_errors(DatabaseError):
        engine = _existing_engine(db)
        try:
            current = current_revision(engine)
            head = head_revision()
        finally:
            engine.dispose()
    status = "up to date" if current == head else "esl-pricing db upgrade brings it to head"
    typer.echo(f"current: {_shown(current)}")
    typer.echo(f"head:    {head} ({status})")
    if as_json:
        emit_json({"current": current, "head": head, "up_to_date": current == head})
