"""The assembled esl-pricing app (pricing/cli/app.py): help, and usage and user errors caught
before a command does any work. Each command module has its own test file (test_plan.py, ...)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("wide_console")

Run = Callable[..., tuple[int, str, str]]


def test_no_arguments_shows_help(run: Run) -> None:
    code, out, err = run()
    assert "demo" in out + err and code in (0, 2)


def test_bad_option_value_is_a_usage_error(run: Run) -> None:
    code, _, _ = run("demo", "--skus", "5")
    assert code == 2


def test_bad_broker_url_is_a_user_error(tmp_path: Path, run: Run) -> None:
    code, _, err = run("demo", "--broker", "http://nowhere", "--skus", "20", "--workdir", str(tmp_path))
    assert code == 2
    assert "scheme must be mqtt://" in err and "Traceback" not in err
