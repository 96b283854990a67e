"""The price plan: approval decisions, what apply pushes, and the JSON/CSV files."""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pricing.plan.price_plan import CSV_COLUMNS, PlanLine, PricePlan, SolverStats

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def line(sku: str, status: str, old: int = 200, new: int = 220, **extra: object) -> PlanLine:
    fields: dict[str, object] = {
        "sku": sku, "name": f"Product {sku}", "category": "snacks", "status": status,
        "old_cents": old, "new_cents": new if status in ("change", "approval", "rejected") else old,
        "cost_cents": 100, "units_old": 10.0, "units_new": 9.0,
        "profit_old_cents": 1000.0, "profit_new_cents": 1080.0,
        "binding_rule": "max_change_pct", "explanation": "why",
    }
    fields.update(extra)
    return PlanLine.model_validate(fields)


def make_plan() -> PricePlan:
    return PricePlan(
        plan_id="plan-20261101T000000Z-abc123",
        created_at=datetime(2026, 11, 1, tzinfo=UTC),
        store="store-001",
        currency="EUR",
        model="models/demand.joblib",
        lines=[
            line("0001", "change", 200, 210),
            line("0002", "approval", 200, 300, relaxed_rules=["ladder"], group="family:cola"),
            line("0003", "approval", 500, 350, soft_rules_broken=["ending_99"]),
            line("0004", "keep", 150, 150),
            line("0005", "held", 150, 150, cost_cents=None, binding_rule="no_cost"),
        ],
        solver=SolverStats(status="OPTIMAL", objective_cents=1.0, bound_cents=1.0, seconds=0.1, changes=3),
    )


def test_new_prices_push_only_changes_proposed_prices_include_waiting() -> None:
    plan = make_plan()
    assert plan.new_prices() == {"0001": 210}
    assert plan.proposed_prices() == {"0001": 210, "0002": 300, "0003": 350}
    assert [line.sku for line in plan.awaiting_approval] == ["0002", "0003"]


def test_approve_listed_sku_makes_it_a_change_with_who_and_when() -> None:
    plan = make_plan()
    assert plan.decide(["0003"], approve=True, by="alice", at=NOW) == ["0003"]
    decided = next(line for line in plan.lines if line.sku == "0003")
    assert (decided.status, decided.decided_by, decided.decided_at) == ("change", "alice", NOW)
    assert plan.new_prices() == {"0001": 210, "0003": 350}
    assert [line.sku for line in plan.awaiting_approval] == ["0002"]
    untouched = next(line for line in plan.lines if line.sku == "0002")
    assert untouched.decided_by is None and untouched.status == "approval"


def test_reject_is_never_pushed_nor_proposed() -> None:
    plan = make_plan()
    plan.decide(["0002"], approve=False, by="bob", at=NOW)
    rejected = next(line for line in plan.lines if line.sku == "0002")
    assert rejected.status == "rejected" and rejected.decided_by == "bob"
    assert "0002" not in plan.new_prices() and "0002" not in plan.proposed_prices()


def test_decide_all() -> None:
    plan = make_plan()
    assert sorted(plan.decide(None, approve=True, by="alice", at=NOW)) == ["0002", "0003"]
    assert plan.awaiting_approval == []
    assert plan.new_prices() == plan.proposed_prices() == {"0001": 210, "0002": 300, "0003": 350}
    assert plan.decide(None, approve=True, by="alice", at=NOW) == []


@pytest.mark.parametrize("skus", [["0001"], ["0004"], ["9999"], ["0002", "9999"]])
def test_decide_unknown_or_not_waiting_raises_and_changes_nothing(skus: list[str]) -> None:
    plan = make_plan()
    before = plan.model_dump()
    with pytest.raises(KeyError) as raised:
        plan.decide(skus, approve=True, by="alice", at=NOW)
    assert next(sku for sku in skus if sku != "0002") in str(raised.value)
    assert plan.model_dump() == before


def test_a_decided_sku_cannot_be_decided_again() -> None:
    plan = make_plan()
    plan.decide(["0002"], approve=False, by="bob", at=NOW)
    with pytest.raises(KeyError):
        plan.decide(["0002"], approve=True, by="alice", at=NOW)


def test_expected_profit_counts_waiting_as_approved_but_not_rejected() -> None:
    plan = make_plan()
    old, new = plan.expected_profit()
    assert (old, new) == (4000.0, 4320.0)  # change, 2 approvals, keep; held excluded
    plan.decide(["0002"], approve=False, by="bob", at=NOW)
    assert plan.expected_profit() == (3000.0, 3240.0)


def test_write_csv_columns_and_values(tmp_path: Path) -> None:
    plan = make_plan()
    plan.decide(["0003"], approve=True, by="alice", at=NOW)
    json_path, csv_path = plan.write(tmp_path)
    assert json_path == tmp_path / f"{plan.plan_id}.json" and csv_path == tmp_path / f"{plan.plan_id}.csv"
    with csv_path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == CSV_COLUMNS
    assert {"status", "relaxed_rules", "soft_rules_broken", "group", "decided_by", "decided_at"} <= set(rows[0])
    body = {row["sku"]: row for row in (dict(zip(CSV_COLUMNS, r, strict=True)) for r in rows[1:])}
    assert list(body) == ["0001", "0002", "0003", "0004", "0005"]  # SKUs stay strings: "0001"
    assert body["0002"]["status"] == "approval" and body["0002"]["new_price"] == "3.00"
    assert body["0002"]["relaxed_rules"] == "ladder" and body["0002"]["group"] == "family:cola"
    assert body["0003"]["status"] == "change" and body["0003"]["decided_by"] == "alice"
    assert datetime.fromisoformat(body["0003"]["decided_at"]) == NOW
    assert body["0003"]["soft_rules_broken"] == "ending_99" and body["0003"]["change_pct"] == "-30.00"
    assert body["0001"]["decided_by"] == body["0001"]["decided_at"] == ""
    assert body["0005"]["cost"] == ""


def test_json_round_trip_keeps_decisions(tmp_path: Path) -> None:
    plan = make_plan()
    plan.decide(["0002"], approve=True, by="alice", at=NOW)
    plan.decide(["0003"], approve=False, by="bob", at=NOW)
    json_path, _ = plan.write(tmp_path)
    again = PricePlan.read(json_path)
    assert again == plan
    by_sku = {line.sku: line for line in again.lines}
    assert (by_sku["0002"].status, by_sku["0002"].decided_by, by_sku["0002"].decided_at) == ("change", "alice", NOW)
    assert (by_sku["0003"].status, by_sku["0003"].decided_by) == ("rejected", "bob")
    assert again.new_prices() == {"0001": 210, "0002": 300}
    assert again.solver.changes == 3


def test_plan_from_before_approval_fields_still_reads() -> None:
    """Plans written before the approval fields existed load with their defaults."""
    plan = PricePlan.model_validate(
        {
            "plan_id": "p", "created_at": "2026-11-01T00:00:00Z", "store": "s", "currency": "EUR", "model": "m",
            "lines": [line("1", "change").model_dump(
                exclude={"relaxed_rules", "soft_rules_broken", "group", "decided_by", "decided_at"}
            )],
            "solver": {"status": "OPTIMAL", "objective_cents": 0, "bound_cents": 0, "seconds": 0},
        }
    )
    assert plan.lines[0].relaxed_rules == [] and plan.lines[0].decided_at is None
    assert plan.solver.gap_pct == 0.0 and plan.new_prices() == {"1": 220}


def test_deciding_one_member_of_a_group_decides_its_waiting_mates() -> None:
    """A family shares one price: approving one member alone would put two prices on one shelf."""
    plan = make_plan()
    plan.lines.append(line("0006", "approval", 200, 300, group="family:cola"))
    plan.lines.append(line("0007", "approval", 200, 300, group="family:other"))
    assert plan.decide(["0006"], approve=True, by="alice", at=NOW) == ["0006", "0002"]
    assert [line.sku for line in plan.awaiting_approval] == ["0003", "0007"]
    assert plan.decide(["0007", "0003"], approve=False, by="bob", at=NOW) == ["0007", "0003"]


def test_prices_are_whole_positive_cents_numpy_integers_included() -> None:
    import numpy as np
    from pydantic import ValidationError

    assert line("0001", "change", np.int64(200), np.int32(210)).new_cents == 210
    for bad in (0, -1, 2.5, 210.0, "210", True):
        with pytest.raises(ValidationError, match="new_cents"):
            line("0001", "change", 200, bad)  # type: ignore[arg-type]
    assert line("0001", "held", 200, cost_cents=0).cost_cents == 0  # a cost of 0 is read; the last gate holds it


def test_a_plan_names_each_sku_once() -> None:
    from pydantic import ValidationError

    plan = make_plan()
    with pytest.raises(ValidationError, match="sku '0001' is in the plan twice"):
        raw = plan.model_dump()
        PricePlan.model_validate(raw | {"lines": [*raw["lines"], plan.lines[0].model_dump()]})
