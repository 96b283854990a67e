"""Argument errors of any esl-pricing command are one line on stderr and exit 2 (pricing/cli/app.py),
not Click's usage text with a boxed error panel."""

from __future__ import annotations

from collections.abc import Callable

import pytest

Run = Callable[..., tuple[int, str, str]]


@pytest.mark.parametrize(
    ("args", "where", "what"),
    [
        (["outbox", "status", "--bogus"], "esl-pricing outbox status", "No such option: --bogus"),
        (["replay"], "esl-pricing replay", "Missing argument"),
        (["nosuch"], "esl-pricing", "No such command 'nosuch'"),
        (["simulate", "generate", "--out", "x", "--skus", "abc"], "esl-pricing simulate generate", "'--skus'"),
        (["simulate", "generate", "--out", "x", "--market", "foo"], "esl-pricing simulate generate", "'--market'"),
        (["train", "--data"], "esl-pricing", "Option '--data' requires an argument"),  # Click gives no sub-command here
    ],
)
def test_an_argument_error_is_one_line_and_exit_2(
    run: Run, one_line: Callable[[str], bool], args: list[str], where: str, what: str
) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert one_line(err), err
    line = err.strip()
    assert line.startswith(f"{where}: error: ")
    assert what in line
    assert line.endswith(f"(see {where} --help)")
    assert "╭" not in err and "Usage:" not in err and out == ""


def test_help_and_a_bare_group_still_show_the_help(run: Run) -> None:
    code, out, _ = run("outbox", "status", "--help")
    assert code == 0 and "Usage" in out
    code, out, _ = run("outbox")
    assert code == 2 and "status" in out  # no_args_is_help: the group's help, as before


def test_exit_codes_of_commands_pass_through(run: Run, tmp_path: object) -> None:
    """A command's own typer.Exit code (here: fail() -> 2) is the process's exit code."""
    code, _, err = run("simulate", "status", "--state", "/nonexistent/sim.json")
    assert code == 2 and "sim.json" in err
