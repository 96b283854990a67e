"""What the tests of the esl-pricing commands share: running the assembled app, a wide console
with a database per test, and builders of price plans, plan files and label files.

Test files cannot import this module (--import-mode=importlib, no __init__.py), so every helper
is a fixture. None is autouse (test_daemon/test_render/test_simulate run here too): a test module
that wants the wide console says ``pytestmark = pytest.mark.usefixtures("wide_console")``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pricing.cli import common
from pricing.cli.app import app
from pricing.plan.price_plan import PlanLine, PricePlan, SolverStats

runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _line(sku: str, status: str, old: int = 200, new: int = 260, **extra: object) -> PlanLine:
    fields: dict[str, object] = {
        "sku": sku, "name": f"Product {sku}", "category": "snacks", "status": status, "old_cents": old,
        "new_cents": old if status in ("keep", "held") else new, "cost_cents": 100,
        "units_old": 10.0, "units_new": 9.0, "profit_old_cents": 1000.0, "profit_new_cents": 1100.0,
        "binding_rule": "profit", "explanation": "best expected profit",
    }
    fields.update(extra)
    return PlanLine.model_validate(fields)


def _plan(lines: list[PlanLine], **solver: object) -> PricePlan:
    stats = {"status": "OPTIMAL", "objective_cents": 0.0, "bound_cents": 0.0, "seconds": 0.01, **solver}
    return PricePlan(
        plan_id="plan-20261101T060000Z-c0ffee", created_at=datetime(2026, 11, 1, 6, tzinfo=UTC),
        store="store-001", currency="EUR", model="models", lines=lines, solver=SolverStats.model_validate(stats),
    )


def _plan_file(directory: Path, lines: list[PlanLine]) -> Path:
    return _plan(lines).write(directory)[0]


def _waiting_plan(directory: Path) -> Path:
    return _plan_file(
        directory,
        [
            _line("0001", "change", 200, 210),
            _line("0002", "approval", 200, 300),
            _line("0003", "approval", 500, 350),
            _line("0004", "keep"),
        ],
    )


def _labels(directory: Path, skus: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rows = [f"L{i:04d},store-001,gw-1,{sku},2.9" for i, sku in enumerate(skus)]
    (directory / "labels.csv").write_text("label_id,store,gateway,sku,tag_type\n" + "\n".join(rows) + "\n")
    return directory


def _one_line(err: str) -> bool:
    return len([line for line in err.splitlines() if line.strip()]) == 1 and "Traceback" not in err


def _statuses(plan: Path) -> dict[str, str]:
    return {line.sku: line.status for line in PricePlan.read(plan).lines}


@pytest.fixture
def wide_console(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Rich sizes tables to the terminal; a wide one keeps cells on one line for the asserts.
    Each test gets its own engine database (the default would be ./esl-engine.db)."""
    monkeypatch.setattr(common.err, "_width", 250)
    monkeypatch.setenv("ESL_DATABASE", str(tmp_path / "engine.db"))


@pytest.fixture
def run() -> Callable[..., tuple[int, str, str]]:
    """``run(*args)``: invoke the assembled app; (exit code, stdout, stderr)."""
    return _run


@pytest.fixture
def make_line() -> Callable[..., PlanLine]:
    """``make_line(sku, status, old=200, new=260, **fields)``: one plan line."""
    return _line


@pytest.fixture
def make_plan() -> Callable[..., PricePlan]:
    """``make_plan(lines, **solver_stats)``: a plan of store-001 with a fixed id."""
    return _plan


@pytest.fixture
def plan_file() -> Callable[[Path, list[PlanLine]], Path]:
    """``plan_file(directory, lines)``: the plan written to directory (JSON and CSV); the JSON path."""
    return _plan_file


@pytest.fixture
def waiting_plan() -> Callable[[Path], Path]:
    """``waiting_plan(directory)``: a plan file with 0001 change, 0002 and 0003 awaiting approval, 0004 keep."""
    return _waiting_plan


@pytest.fixture
def labels_dir() -> Callable[[Path, list[str]], Path]:
    """``labels_dir(directory, skus)``: a labels.csv with one label of store-001/gw-1 per SKU."""
    return _labels


@pytest.fixture
def one_line() -> Callable[[str], bool]:
    """``one_line(stderr)``: exactly one non-blank line and no traceback."""
    return _one_line


@pytest.fixture
def statuses() -> Callable[[Path], dict[str, str]]:
    """``statuses(plan_path)``: SKU -> line status of a saved plan."""
    return _statuses
