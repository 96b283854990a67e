"""Tests for pricing/cli/common.py: one-line errors and exit codes, the JSON last line, plan and
rules files named on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from label_gateway.broker import BrokerError
from pricing.cli import common
from pricing.core.data import DataError
from pricing.core.yaml_config import ConfigError

pytestmark = pytest.mark.usefixtures("wide_console")


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError(["rules.yaml:3: default.margn_floor_pct: unknown key"]), common.EXIT_USER_ERROR),
        (DataError("data/: not a directory"), common.EXIT_USER_ERROR),
        (BrokerError("cannot reach MQTT broker at mqtt://127.0.0.1:1"), common.EXIT_FAILURE),
    ],
    ids=["config", "data", "broker"],
)
def test_user_errors_are_one_line_and_an_exit_code(
    capsys: pytest.CaptureFixture[str], error: Exception, code: int
) -> None:
    with pytest.raises(typer.Exit) as info, common.user_errors():
        raise error
    assert info.value.exit_code == code
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = _lines(captured.err)
    assert len(lines) == 1 and str(error) in lines[0], captured.err
    assert "Traceback" not in captured.err


def test_user_errors_print_every_config_problem_as_given(capsys: pytest.CaptureFixture[str]) -> None:
    problems = ["rules.yaml:2: currency: must be text", "rules.yaml:5: [skus].0123: unknown key"]
    with pytest.raises(typer.Exit) as info, common.user_errors():
        raise ConfigError(problems)
    assert info.value.exit_code == 2
    assert _lines(capsys.readouterr().err) == problems  # no "error:" prefix, markup left alone


def test_user_errors_also_and_other_exceptions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.Exit) as info, common.user_errors(LookupError):
        raise KeyError("0001")
    assert info.value.exit_code == 2
    assert len(_lines(capsys.readouterr().err)) == 1
    with pytest.raises(ZeroDivisionError), common.user_errors(LookupError):
        raise ZeroDivisionError  # not a user error: not turned into an exit code
    with common.user_errors():
        pass


def test_emit_json_prints_one_sorted_line(capsys: pytest.CaptureFixture[str]) -> None:
    common.emit_json({"zeta": 1, "alpha": Path("plans/p.json"), "mid": [1, 2]})
    out = capsys.readouterr().out
    assert out == '{"alpha": "plans/p.json", "mid": [1, 2], "zeta": 1}\n'
    assert json.loads(out) == {"alpha": "plans/p.json", "mid": [1, 2], "zeta": 1}


def test_read_plan_or_fail_on_a_missing_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "plan-nope.json"
    with pytest.raises(typer.Exit) as info:
        common.read_plan_or_fail(missing)
    assert info.value.exit_code == 2
    err = capsys.readouterr().err
    assert _lines(err) == [f"error: {missing}: plan file not found"]


def test_resolve_rules_on_a_missing_file_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "rules.yaml"
    with pytest.raises(typer.Exit) as info:
        common.resolve_rules(missing)
    assert info.value.exit_code == 2
    assert _lines(capsys.readouterr().err) == [f"error: {missing}: rules file not found"]


def test_resolve_rules_finds_config_rules_yaml_or_says_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No silent fallback: without --rules and without config/rules.yaml the command stops with
    one line naming the fix; the packaged example rules only with --rules example."""
    from pricing.rules.config import example_rules_path

    monkeypatch.chdir(tmp_path)
    with pytest.raises(typer.Exit) as info:
        common.resolve_rules(None)
    assert info.value.exit_code == 2
    [line] = _lines(capsys.readouterr().err)
    assert line.startswith("error: no rules file: config/rules.yaml is not in the working directory")
    assert "pass --rules FILE (or --rules example for the packaged example rules)" in line
    assert common.resolve_rules("example") == example_rules_path()
    given = tmp_path / "mine.yaml"
    given.write_text("currency: EUR\n")
    assert common.resolve_rules(str(given)) == given
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "rules.yaml").write_text("currency: EUR\n")
    assert common.resolve_rules(None) == Path("config/rules.yaml")


def test_load_rules_or_fail_says_which_file_it_uses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib

    monkeypatch.chdir(tmp_path)
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "rules.yaml").write_text("currency: USD\n")
    rules = common.load_rules_or_fail(None)
    assert rules.currency == "USD"
    digest = hashlib.sha256(b"currency: USD\n").hexdigest()
    assert rules.source is not None and rules.source.sha256 == digest
    assert capsys.readouterr().err == ""  # said by the command once all its inputs are good
    common.say_rules(rules)
    assert _lines(capsys.readouterr().err) == [f"rules: config/rules.yaml (sha256 {digest[:12]}...)"]


def test_packaged_example_rules_are_the_repository_rules() -> None:
    """--rules example gives exactly config/rules.yaml (the copy under pricing/rules/ cannot drift)."""
    from pricing.rules.config import example_rules_path

    repo_rules = Path(__file__).resolve().parents[3] / "config" / "rules.yaml"
    assert example_rules_path().read_bytes() == repo_rules.read_bytes(), (
        "pricing/rules/example_rules.yaml differs from config/rules.yaml: cp config/rules.yaml pricing/rules/example_rules.yaml"
    )


def test_database_target_prefers_the_option_then_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(common.DATABASE_ENV, "env.db")
    assert common.database_target("option.db") == "option.db"
    assert common.database_target(None) == "env.db"
    monkeypatch.delenv(common.DATABASE_ENV)
    assert common.database_target(None) == common.DEFAULT_DATABASE
