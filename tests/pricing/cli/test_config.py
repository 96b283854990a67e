"""Tests for pricing/cli/config.py: esl-pricing config validate, the config kinds it recognises and
the committed JSON Schemas it writes. (The YAML loader itself: tests/pricing/core/test_yaml_config.py.)"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from pricing.cli.config import CONFIG_KINDS, validate_config_file, write_schemas
from pricing.core.yaml_config import schema_text

pytestmark = pytest.mark.usefixtures("wide_console")

Run = Callable[..., tuple[int, str, str]]

REPO = Path(__file__).resolve().parents[3]
CONFIG_DIR = REPO / "config"
TOP_LEVEL = (
    "currency, default, zones, categories, brands, skus, on_conflict, endings_force_change, change_budget, approval, max_candidates, solver"
)


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# The committed schemas
# ---------------------------------------------------------------------------------------------


def test_committed_schema_is_current() -> None:
    committed = (CONFIG_DIR / "rules.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(CONFIG_KINDS["rules"].json_schema()), (
        "config/rules.schema.json is out of date with pricing/rules/config.py; "
        "run `python -m pricing.cli.config --write-schema config/` and commit the result"
    )


def test_schema_has_dialect_and_title() -> None:
    schema = CONFIG_KINDS["rules"].json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"]
    assert schema["additionalProperties"] is False


def test_write_schemas(tmp_path: Path) -> None:
    written = write_schemas(tmp_path)
    assert written == [
        tmp_path / "rules.schema.json", tmp_path / "engine.schema.json", tmp_path / "scenario.schema.json",
        tmp_path / "label_templates.schema.json",
    ]
    text = written[0].read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert json.loads(text) == CONFIG_KINDS["rules"].json_schema()
    assert text == json.dumps(CONFIG_KINDS["rules"].json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# ---------------------------------------------------------------------------------------------
# validate_config_file
# ---------------------------------------------------------------------------------------------


def test_file_name_is_reported_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("r.yaml").write_text("currency: 12\n", encoding="utf-8")
    assert validate_config_file("r.yaml") == ["r.yaml:1: currency: must be text, got the number 12; put it in quotes: \"12\""]


def test_validate_config_file_unrecognised_content_defaults_to_rules(tmp_path: Path) -> None:
    path = write(tmp_path, "foo: 1\n")
    problems = validate_config_file(path)
    assert problems == [f"{path}:1: foo: unknown key (allowed: {TOP_LEVEL})"]


# ---------------------------------------------------------------------------------------------
# The command line: esl-pricing config validate
# ---------------------------------------------------------------------------------------------


def test_config_validate_accepts_the_example(run: Run) -> None:
    code, _, err = run("config", "validate", str(REPO / "config" / "rules.yaml"))
    assert code == 0, err


def test_config_validate_reports_file_line_key(tmp_path: Path, run: Run) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("default:\n  margn_floor_pct: 10\n  max_change_pct: lots\n  min_price: '5'\n  max_price: '1'\n")
    code, _, err = run("config", "validate", str(bad))
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert any(line.startswith(f"{bad}:2: default.margn_floor_pct: unknown key") for line in lines), err
    assert any(line.startswith(f"{bad}:3: default.max_change_pct:") for line in lines), err
    assert "Traceback" not in err


def test_cli_config_validate_accepts_the_repo_rules(run: Run) -> None:
    code, _, err = run("config", "validate", str(CONFIG_DIR / "rules.yaml"))
    assert code == 0, err


def test_cli_config_validate_exits_2_with_file_line_messages(tmp_path: Path, run: Run) -> None:
    path = write(
        tmp_path,
        """
        default:
          max_change_pct: {value: lots}
        brands:
          Acme:
            margn_floor_pct: 10
        skus:
          "0123":
            endings: {value: [".99", .49], hard: maybe}
        change_budget: {max_changes: 3, max_share_pct: 5}
        """,
    )
    code, _, err = run("config", "validate", str(path))
    assert code == 2
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    expected = [
        f"{path}:2: default.max_change_pct.value: must be a valid decimal",
        f"{path}:5: brands.Acme.margn_floor_pct: unknown key",
        f"{path}:8: skus.0123.endings.value.1: must be text",
        f"{path}:8: skus.0123.endings.hard: must be a valid boolean",
        f"{path}:9: change_budget: set exactly one of max_changes and max_share_pct",
    ]
    for start in expected:
        assert any(line.startswith(start) for line in lines), f"{start!r} not in\n{err}"
    assert all(line.startswith(f"{path}:") for line in lines), err
