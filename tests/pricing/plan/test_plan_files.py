"""Plan files: finding the latest, and decisions that never lose each other."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pricing.core.database import open_engine
from pricing.plan.plan_files import (
    NotAwaitingApproval,
    PlanFileError,
    decide,
    latest_plan,
    plan_files,
    read_plan,
)
from pricing.plan.price_plan import PlanLine, PricePlan, SolverStats
from pricing.store.event_log import EventLog

AT = datetime(2026, 11, 2, 9, tzinfo=UTC)


def _line(sku: str, status: str, old: int = 200, new: int = 260) -> PlanLine:
    return PlanLine(
        sku=sku, name=f"Product {sku}", category="snacks", status=status,  # type: ignore[arg-type]
        old_cents=old, new_cents=old if status in ("keep", "held") else new, cost_cents=100,
        units_old=10.0, units_new=9.0, profit_old_cents=1000.0, profit_new_cents=1100.0,
        binding_rule="profit", explanation="best expected profit",
    )


def _plan(plan_id: str, created: datetime, lines: list[PlanLine]) -> PricePlan:
    return PricePlan(
        plan_id=plan_id, created_at=created, store="store-001", currency="EUR", model="models", lines=lines,
        solver=SolverStats(status="OPTIMAL", objective_cents=0.0, bound_cents=0.0, seconds=0.01),
    )


def _waiting(directory: Path, n: int = 40) -> Path:
    lines = [_line(f"{i:04d}", "approval") for i in range(n)]
    return _plan("plan-a", AT, lines).write(directory)[0]


def test_latest_plan_is_the_newest_created_and_skips_other_json(tmp_path: Path) -> None:
    _plan("plan-old", AT, [_line("0001", "keep")]).write(tmp_path)
    newest = _plan("plan-new", AT + timedelta(hours=1), [_line("0001", "keep")]).write(tmp_path)[0]
    (tmp_path / "notes.json").write_text('{"not": "a plan"}')
    (tmp_path / "broken.json").write_text("{")
    assert latest_plan(tmp_path) == newest
    assert [p.name for p in plan_files(tmp_path)] == ["plan-new.json", "plan-old.json"]
    assert latest_plan(tmp_path / "missing") is None


def test_read_plan_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="plan file not found"):
        read_plan(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"plan_id": 3}')
    with pytest.raises(PlanFileError, match="not a price plan"):
        read_plan(bad)


def test_decide_logs_events_and_refuses_what_does_not_wait(tmp_path: Path) -> None:
    plan_file = _plan("plan-a", AT, [_line("0001", "approval"), _line("0002", "keep")]).write(tmp_path)[0]
    engine = open_engine(tmp_path / "engine.db")
    with pytest.raises(NotAwaitingApproval, match=r"0002 \(status keep\), 0009 \(not in the plan\)"):
        decide(plan_file, ["0001", "0002", "0009"], approve=True, by="ann", at=AT)
    assert read_plan(plan_file).awaiting_approval  # nothing decided
    decision = decide(plan_file, ["0001"], approve=True, by="ann", at=AT)
    assert decision.decided == ["0001"] and decision.prices == {"0001": 260}
    EventLog(engine, decision.plan.store).append(decision.events())
    events = EventLog(engine, "store-001").read()
    assert [(e.kind, e.sku, e.data["by"]) for e in events] == [("plan_approved", "0001", "ann")]
    with pytest.raises(NotAwaitingApproval, match="already approved by ann"):
        decide(plan_file, ["0001"], approve=False, by="bob", at=AT)


def _decide_one(args: tuple[str, str, bool]) -> list[str]:
    plan_file, sku, approve = args
    return decide(Path(plan_file), [sku], approve=approve, by=f"user-{sku}", at=AT).decided


def test_concurrent_decisions_from_several_processes_are_all_kept(tmp_path: Path) -> None:
    """The command line and the review page may decide on one plan at the same moment: the lock
    makes each read-modify-write whole, so no decision overwrites another."""
    plan_file = _waiting(tmp_path)
    jobs = [(str(plan_file), f"{i:04d}", i % 2 == 0) for i in range(40)]
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.map(_decide_one, jobs)
    assert all(len(r) == 1 for r in results)
    saved = read_plan(plan_file)
    assert not saved.awaiting_approval
    for line in saved.lines:
        i = int(line.sku)
        assert line.status == ("change" if i % 2 == 0 else "rejected") and line.decided_by == f"user-{line.sku}"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plan-a.csv", "plan-a.json"]
