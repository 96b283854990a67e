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


# -- a plan file a person edited: one line naming the file, the line and its SKU -----------------------


def _edited(tmp_path: Path, **changes: object) -> Path:
    """A plan file of two lines whose second line (sku 0002) has ``changes``; top-level keys with
    a ``plan__`` prefix change the plan itself."""
    import json

    path = _plan("plan-a", AT, [_line("0001", "change"), _line("0002", "change")]).write(tmp_path)[0]
    raw = json.loads(path.read_text())
    for key, value in changes.items():
        if key.startswith("plan__"):
            raw[key.removeprefix("plan__")] = value
        else:
            raw["lines"][1][key] = value
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("new_cents", 0, "new_cents: must be more than 0 cents, got 0"),
        ("new_cents", -1, "new_cents: must be more than 0 cents, got -1"),
        ("new_cents", 2.5, "new_cents: must be whole cents (an integer), got 2.5"),
        ("new_cents", "260", "new_cents: must be whole cents (an integer), got '260'"),
        ("new_cents", True, "new_cents: must be whole cents (an integer), got True"),
        ("new_cents", None, "new_cents: must be whole cents (an integer), got None"),
        ("old_cents", 0, "old_cents: must be more than 0 cents, got 0"),  # change_pct divides by it
        ("cost_cents", -5, "cost_cents: must be 0 cents or more, got -5"),
        ("cost_cents", 9.5, "cost_cents: must be whole cents (an integer), got 9.5"),
        ("profit_new_cents", float("nan"), "profit_new_cents: Input should be a finite number"),
        ("units_old", float("inf"), "units_old: Input should be a finite number"),
    ],
)
def test_a_bad_price_in_a_plan_file_is_one_line_naming_file_line_and_sku(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    path = _edited(tmp_path, **{field: value})
    with pytest.raises(PlanFileError) as info:
        read_plan(path)
    text = str(info.value)
    assert text == f"{path}: not a price plan: lines[1] (sku '0002'): {message} (1 problem)"
    assert "\n" not in text


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sku": "0001"}, "lines[1]: sku '0001' is in the plan twice"),
        ({"sku": "A\x00B"}, "lines[1] (sku 'A\\x00B'): sku: sku has a control character: 'A\\x00B'"),
        ({"plan__store": "store/1"}, "store: id has a character other than"),
        ({"plan__plan_id": "../../etc/x"}, "plan_id: id has a character other than"),
        ({"plan__currency": "eur"}, "currency: must be an ISO 4217 code such as EUR, got 'eur'"),
        ({"plan__created_at": "2026-11-01T06:00:00"}, "created_at: Input should have timezone info"),
        ({"plan__lines": "x"}, "lines: Input should be a valid list"),
    ],
)
def test_other_plan_fields_that_would_crash_later_are_one_line_too(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(PlanFileError, match="not a price plan") as info:
        read_plan(_edited(tmp_path, **changes))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_plan_that_is_not_an_object_or_nested_too_deep_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(PlanFileError, match="not a price plan"):
        read_plan(path)
    path.write_text("[]")
    with pytest.raises(PlanFileError, match="not a price plan: plan: Input should be a valid dictionary"):
        read_plan(path)
