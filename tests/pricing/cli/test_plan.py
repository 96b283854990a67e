"""Tests for pricing/cli/plan.py: esl-pricing plan and approve."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pricing.plan.price_plan import PlanLine, PricePlan

pytestmark = pytest.mark.usefixtures("wide_console")

Run = Callable[..., tuple[int, str, str]]
MakeLine = Callable[..., PlanLine]
MakePlan = Callable[..., PricePlan]
PlanFile = Callable[[Path, list[PlanLine]], Path]
WaitingPlan = Callable[[Path], Path]
OneLine = Callable[[str], bool]
Statuses = Callable[[Path], dict[str, str]]


def test_missing_data_directory_is_one_line_exit_2(tmp_path: Path, run: Run) -> None:
    code, _, err = run("plan", "--data", str(tmp_path / "nope"), "--model", str(tmp_path))
    assert code == 2
    assert "not a directory" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1


def test_missing_model_is_one_line_exit_2(tmp_path: Path, run: Run) -> None:
    data = tmp_path / "data"
    code, _, _ = run("simulate", "generate", "--out", str(data), "--skus", "30", "--days", "30")
    assert code == 0
    code, _, err = run("plan", "--data", str(data), "--model", str(tmp_path / "models"))
    assert code == 2 and "Traceback" not in err


def test_plan_with_another_stores_model_is_one_line_exit_2(tmp_path: Path, run: Run) -> None:
    ours, theirs, models = tmp_path / "ours", tmp_path / "theirs", tmp_path / "models"
    assert run("simulate", "generate", "--out", str(ours), "--skus", "40", "--days", "60", "--seed", "1")[0] == 0
    assert run("simulate", "generate", "--out", str(theirs), "--skus", "40", "--days", "60", "--seed", "2")[0] == 0
    assert run("train", "--data", str(theirs), "--out", str(models))[0] == 0
    code, _, err = run("plan", "--data", str(ours), "--model", str(models), "--out", str(tmp_path / "plans"))
    assert code == 2, err
    assert "model was trained on other SKUs" in err and "Traceback" not in err


def test_plan_json_and_table_show_approvals(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run: Run,
    make_line: MakeLine,
    make_plan: MakePlan,
) -> None:
    """The plan command around a fixed plan (the cycle itself is tested in test_cycle.py)."""
    import sys
    import types

    import pandas as pd

    import pricing.core.data
    import pricing.core.store_data
    import pricing.demand.model_store

    result = make_plan(
        [
            make_line("0001", "change", 200, 210, profit_new_cents=1050.0),
            make_line("0002", "approval", 200, 300, profit_new_cents=1500.0, relaxed_rules=["ladder", "ending"],
                      soft_rules_broken=["competitor_gap"], group="family:cola"),
            make_line("0003", "change", 500, 450, profit_new_cents=1200.0, binding_rule="[max_change]"),
            make_line("0004", "keep"),
            make_line("0005", "held", cost_cents=None, binding_rule="no_cost", relaxed_rules=[]),
        ],
        gap_pct=1.25, changes=3, groups_dp=4, groups_cpsat=1,
    )
    store = types.SimpleNamespace(
        products=pd.DataFrame({"sku": ["0001", "0002", "0003", "0004", "0005"]}), rejects=[], store_id="store-001",
        competitors=pricing.core.data.empty_competitors(), labels=None,
    )
    cycle = types.ModuleType("pricing.plan.cycle")
    cycle.run_pricing_cycle = lambda *args, **kwargs: result  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pricing.plan.cycle", cycle)
    monkeypatch.setattr(pricing.core.store_data, "load_store", lambda data: store)
    monkeypatch.setattr(pricing.demand.model_store, "load_model", lambda path: (object(), None))
    monkeypatch.setattr(pricing.demand.model_store, "require_model_covers", lambda *args, **kwargs: [])
    monkeypatch.chdir(tmp_path)  # no config/rules.yaml here: default rules

    code, out, err = run("plan", "--data", str(tmp_path), "--out", str(tmp_path / "plans"), "--top", "2", "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["changes"] == 3 and summary["changed"] == 2 and summary["awaiting_approval"] == 1
    assert summary["relaxed"] == 1 and summary["gap_pct"] == 1.25 and summary["held"] == 1
    assert Path(summary["plan"]) == tmp_path / "plans" / f"{result.plan_id}.json"
    assert Path(summary["plan"]).with_suffix(".csv").is_file()
    assert PricePlan.read(Path(summary["plan"])) == result

    rows = [line for line in err.splitlines() if "000" in line and "->" in line]
    assert [row.split()[1] for row in rows] == ["0002", "0003"]  # by profit gain, top 2
    assert "needs approval" in rows[0] and "+50.0%" in rows[0] and "+5.00" in rows[0]
    assert "relaxed: ladder, ending" in rows[0] and "soft broken: competitor_gap" in rows[0]
    assert "group family:cola" in rows[0] and "[max_change]" in rows[1]
    assert "awaiting approval 1" in err and "relaxed rules on 1 SKUs" in err
    assert "gap 1.25%" in err and "4 by DP" in err and "1 by CP-SAT" in err


# -- approval -------------------------------------------------------------------------------------
def test_approve_one_sku_rewrites_json_and_csv(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    run: Run,
    waiting_plan: WaitingPlan,
) -> None:
    import csv
    from datetime import UTC, datetime, timedelta

    monkeypatch.setenv("USER", "carol")
    plan = waiting_plan(tmp_path)
    code, out, err = run("approve", str(plan), "--sku", "0003", "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["decided"] == ["0003"] and summary["decision"] == "approved"
    assert summary["awaiting_approval"] == 1 and summary["to_push"] == 2 and summary["by"] == "carol"
    saved = PricePlan.read(plan)
    line = next(line for line in saved.lines if line.sku == "0003")
    assert line.status == "change" and line.decided_by == "carol"
    assert line.decided_at is not None and abs(datetime.now(UTC) - line.decided_at) < timedelta(minutes=1)
    assert saved.new_prices() == {"0001": 210, "0003": 350}
    with plan.with_suffix(".csv").open(newline="") as handle:
        rows = {row["sku"]: row for row in csv.DictReader(handle)}
    assert rows["0003"]["status"] == "change" and rows["0003"]["decided_by"] == "carol"
    assert rows["0002"]["status"] == "approval"
    written = sorted(path.name for path in tmp_path.iterdir() if not path.name.startswith("engine.db"))
    assert written == sorted([plan.name, plan.with_suffix(".csv").name])  # (engine.db: the event log)
    assert "0003" in err and "1 still awaiting approval" in err


def test_approve_all_and_reject(tmp_path: Path, run: Run, waiting_plan: WaitingPlan, statuses: Statuses) -> None:
    plan = waiting_plan(tmp_path / "a")
    code, out, err = run("approve", str(plan), "--all", "--by", "alice", "--json")
    assert code == 0, err
    assert sorted(json.loads(out.strip().splitlines()[-1])["decided"]) == ["0002", "0003"]
    assert statuses(plan) == {"0001": "change", "0002": "change", "0003": "change", "0004": "keep"}

    plan = waiting_plan(tmp_path / "b")
    code, out, err = run("approve", str(plan), "--sku", "0002", "--sku", "0002", "--reject", "--by", "bob")
    assert code == 0, err
    assert statuses(plan)["0002"] == "rejected" and statuses(plan)["0003"] == "approval"
    assert next(line for line in PricePlan.read(plan).lines if line.sku == "0002").decided_by == "bob"
    code, out, err = run("approve", str(plan), "--all", "--reject", "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["decided"] == ["0003"] and summary["decision"] == "rejected" and summary["awaiting_approval"] == 0
    assert PricePlan.read(plan).new_prices() == {"0001": 210}


def test_approve_all_with_nothing_waiting_is_ok(
    tmp_path: Path,
    run: Run,
    make_line: MakeLine,
    plan_file: PlanFile,
) -> None:
    plan = plan_file(tmp_path, [make_line("0001", "change")])
    before = plan.read_text()
    code, out, err = run("approve", str(plan), "--all", "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["decided"] == []
    assert plan.read_text() == before


@pytest.mark.parametrize(
    ("skus", "named"),
    [(["9999"], "9999 (not in the plan)"), (["0002", "0001"], "0001 (status change)"), (["0004"], "0004"),
     (["[b]x"], "[b]x (not in the plan)")],
)
def test_approve_sku_not_awaiting_approval_is_one_line_exit_2(
    tmp_path: Path,
    skus: list[str],
    named: str,
    run: Run,
    waiting_plan: WaitingPlan,
    one_line: OneLine,
) -> None:
    plan = waiting_plan(tmp_path)
    before = plan.read_text()
    args = [arg for sku in skus for arg in ("--sku", sku)]
    code, _, err = run("approve", str(plan), *args)
    assert code == 2 and one_line(err), err
    assert "not awaiting approval" in err and named in err
    assert plan.read_text() == before  # nothing decided when one SKU is wrong


def test_approve_again_says_who_decided(tmp_path: Path, run: Run, waiting_plan: WaitingPlan, one_line: OneLine) -> None:
    plan = waiting_plan(tmp_path)
    assert run("approve", str(plan), "--sku", "0002", "--by", "alice")[0] == 0
    code, _, err = run("approve", str(plan), "--sku", "0002", "--reject")
    assert code == 2 and one_line(err) and "already approved by alice" in err


def test_approve_without_sku_or_all_lists_the_waiting_and_exits_2(
    tmp_path: Path,
    run: Run,
    waiting_plan: WaitingPlan,
) -> None:
    plan = waiting_plan(tmp_path)
    before = plan.read_text()
    code, out, err = run("approve", str(plan))
    assert code == 2 and "Traceback" not in err
    assert "0002" in err and "0003" in err and "needs approval" in err and "0001" not in err
    assert "pass --sku SKU" in err and "--all" in err and out == ""
    assert plan.read_text() == before


def test_approve_bad_arguments_are_one_line_exit_2(
    tmp_path: Path,
    run: Run,
    waiting_plan: WaitingPlan,
    one_line: OneLine,
    statuses: Statuses,
) -> None:
    plan = waiting_plan(tmp_path)
    code, _, err = run("approve", str(plan), "--sku", "0002", "--all")
    assert code == 2 and one_line(err) and "not both" in err
    code, _, err = run("approve", str(tmp_path / "missing.json"), "--all")
    assert code == 2 and one_line(err) and "plan file not found" in err
    junk = tmp_path / "junk.json"
    junk.write_text("not json")
    code, _, err = run("approve", str(junk), "--all")
    assert code == 2 and one_line(err) and "not a price plan" in err
    renamed = tmp_path / "mine.json"
    renamed.write_text(plan.read_text())
    code, _, err = run("approve", str(renamed), "--all")
    assert code == 2 and one_line(err) and "does not match its plan id" in err
    assert statuses(renamed)["0002"] == "approval"
    code, _, err = run("approve", str(plan), "--all", "--by", " ")
    assert code == 2 and one_line(err)
