"""Tests for pricing/cli/demo.py's inputs: which rules the demo uses, and saying so (issue 18)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("wide_console")

Run = Callable[..., tuple[int, str, str]]
REPO = Path(__file__).resolve().parents[3]


def test_demo_outside_the_repository_needs_rules_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Run) -> None:
    """No silent built-in rules: one line naming the fix, exit 2, nothing generated."""
    monkeypatch.chdir(tmp_path)
    code, out, err = run("demo", "--skus", "20", "--workdir", str(tmp_path / "demo"))
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "config/rules.yaml is not in the working directory" in lines[0]
    assert "--rules example" in lines[0]
    assert not (tmp_path / "demo").exists()


def test_demo_with_a_misspelt_category_stops_before_training(tmp_path: Path, run: Run) -> None:
    rules = tmp_path / "rules.yaml"
    text = (REPO / "config" / "rules.yaml").read_text().replace("\n  snacks:\n", "\n  snakcs:\n")
    rules.write_text(text)
    line = text.splitlines().index("  snakcs:") + 1
    code, _, err = run("demo", "--skus", "100", "--workdir", str(tmp_path / "demo"), "--rules", str(rules))
    assert code == 2
    lines = [row for row in err.splitlines() if row.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"{rules}:{line}: categories.snakcs: no product has this category")
    assert not (tmp_path / "demo" / "models").exists()  # stopped before training
