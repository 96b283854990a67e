"""--db naming something that cannot be the engine database is a user error (one line, exit 2);
a database server that cannot be reached stays a failure (exit 1). See common.database_target."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., tuple[int, str, str]]


def test_a_file_that_is_not_sqlite_is_a_user_error(run: Run, one_line: Callable[[str], bool], tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_text("hello, not a database\n")
    for args in (["outbox", "status"], ["db", "current"]):
        code, _, err = run(*args, "--db", str(garbage))
        assert code == 2, (args, err)
        assert one_line(err) and f"{garbage}: not a SQLite database" in err
    assert garbage.read_text() == "hello, not a database\n"  # untouched


def test_a_directory_is_a_user_error(run: Run, one_line: Callable[[str], bool], tmp_path: Path) -> None:
    code, _, err = run("outbox", "status", "--db", str(tmp_path))
    assert code == 2 and one_line(err) and "is a directory" in err


def test_a_url_of_another_database_is_a_user_error(run: Run, one_line: Callable[[str], bool]) -> None:
    code, _, err = run("outbox", "status", "--db", "mysql://user:secret@127.0.0.1/x")
    assert code == 2 and one_line(err) and "not a SQLite or PostgreSQL URL" in err
    assert "secret" not in err


def test_the_environment_variable_is_checked_too(
    run: Run, one_line: Callable[[str], bool], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    garbage = tmp_path / "engine.db"
    garbage.write_bytes(b"\x00\x01garbage")
    monkeypatch.setenv("ESL_DATABASE", str(garbage))
    code, _, err = run("outbox", "status")
    assert code == 2 and one_line(err) and "not a SQLite database" in err


def test_an_unreachable_server_is_a_failure(run: Run, one_line: Callable[[str], bool]) -> None:
    code, _, err = run("outbox", "status", "--db", "postgresql://user:secret@127.0.0.1:1/x")
    assert code == 1 and one_line(err) and "secret" not in err


def test_a_real_and_an_empty_database_still_open(run: Run, tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    code, _, err = run("db", "current", "--db", str(empty))
    assert code == 0, err
    code, _, err = run("db", "current", "--db", str(empty))  # now a real SQLite file
    assert code == 0, err
