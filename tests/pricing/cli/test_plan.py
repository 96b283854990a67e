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
        competitors=pricing.core.data.empty_competitors(), labels=None, rows_read={},
    )
    from pricing.plan.cycle import plan_inputs

    cycle = types.ModuleType("pricing.plan.cycle")
    cycle.run_pricing_cycle = lambda *args, **kwargs: result  # type: ignore[attr-defined]
    cycle.plan_inputs = plan_inputs  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pricing.plan.cycle", cycle)
    monkeypatch.setattr(pricing.core.store_data, "load_store", lambda data: store)
    monkeypatch.setattr(pricing.demand.model_store, "load_model", lambda path: (object(), {"model_sha256": "ab" * 32}))
    monkeypatch.setattr(pricing.demand.model_store, "require_model_covers", lambda *args, **kwargs: [])
    monkeypatch.chdir(tmp_path)  # no config/rules.yaml here: the packaged example, asked for

    code, out, err = run(
        "plan", "--data", str(tmp_path), "--out", str(tmp_path / "plans"), "--top", "2", "--json", "--rules", "example"
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["changes"] == 3 and summary["changed"] == 2 and summary["awaiting_approval"] == 1
    assert summary["relaxed"] == 1 and summary["gap_pct"] == 1.25 and summary["held"] == 1
    assert Path(summary["plan"]) == tmp_path / "plans" / f"{result.plan_id}.json"
    assert Path(summary["plan"]).with_suffix(".csv").is_file()
    assert PricePlan.read(Path(summary["plan"])) == result
    assert summary["inputs"] is None  # the stubbed cycle's plan records none; test_plan_records_its_inputs does
    assert "rules: " in err and "example_rules.yaml" in err

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


# -- inputs and rule scopes (issue 18) -----------------------------------------------------------------
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def trained_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small generated store and a model trained on it: (data, models)."""
    from pricing.core.store_data import load_store
    from pricing.demand.model_store import save_model
    from pricing.demand.training import train_demand_model
    from simulator.store import generate_store

    root = tmp_path_factory.mktemp("plan-inputs")
    generate_store(root / "data", skus=80, seed=7, days=120)
    store = load_store(root / "data")
    save_model(train_demand_model(store.sales, store.products), root / "models")
    return root / "data", root / "models"


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_plan_records_its_inputs(tmp_path: Path, run: Run, trained_store: tuple[Path, Path]) -> None:
    """The plan names the rules, model and data files it was computed from, each with its SHA-256,
    in the plan JSON and in the --json summary."""
    data, models = trained_store
    rules = tmp_path / "my-rules.yaml"
    rules.write_bytes((REPO / "config" / "rules.yaml").read_bytes())
    code, out, err = run("plan", "--data", str(data), "--model", str(models), "--out", str(tmp_path / "plans"),
                         "--rules", str(rules), "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    inputs = summary["inputs"]
    assert inputs["rules"] == {"path": str(rules.resolve()), "sha256": _sha256(rules)}
    model_file = models / "demand_model.joblib"
    assert inputs["model"] == {"path": str(model_file.resolve()), "sha256": _sha256(model_file)}
    recorded = {Path(item["path"]).name: item["sha256"] for item in inputs["data"]}
    assert set(recorded) == {"products.csv", "sales.csv", "labels.csv", "competitors.csv"}
    for name, sha in recorded.items():
        assert sha == _sha256(data / name), name
    assert PricePlan.read(Path(summary["plan"])).inputs.model_dump(mode="json") == inputs  # type: ignore[union-attr]
    assert f"rules: {rules} (sha256 {_sha256(rules)[:12]}...)" in err


def test_plan_without_rules_file_says_how_to_fix_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, run: Run, trained_store: tuple[Path, Path]
) -> None:
    """Run outside the repository: no silent built-in rules, one line naming the fix, exit 2; the
    packaged example rules only when asked for (and the plan says so)."""
    data, models = trained_store
    monkeypatch.chdir(tmp_path)
    code, out, err = run("plan", "--data", str(data), "--model", str(models), "--out", str(tmp_path / "plans"))
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "config/rules.yaml is not in the working directory" in lines[0]
    assert "--rules FILE" in lines[0] and "--rules example" in lines[0]
    code, out, err = run("plan", "--data", str(data), "--model", str(models), "--out", str(tmp_path / "plans"),
                         "--rules", "example", "--json")
    assert code == 0, err
    recorded = json.loads(out.strip().splitlines()[-1])["inputs"]["rules"]
    assert Path(recorded["path"]).name == "example_rules.yaml"
    assert recorded["sha256"] == _sha256(REPO / "config" / "rules.yaml")
    assert len(json.loads(Path(json.loads(out.strip().splitlines()[-1])["plan"]).read_text())["lines"]) == 80


def test_a_misspelt_category_is_one_file_line_error(tmp_path: Path, run: Run, trained_store: tuple[Path, Path]) -> None:
    """`snakcs:` matches no product: plan and config validate --data say where, exit 2; without
    --data config validate cannot know and accepts the file."""
    data, models = trained_store
    text = (REPO / "config" / "rules.yaml").read_text().replace("\n  snacks:\n", "\n  snakcs:\n")
    rules = tmp_path / "rules.yaml"
    rules.write_text(text)
    line = text.splitlines().index("  snakcs:") + 1
    expected = f"{rules}:{line}: categories.snakcs: no product has this category"
    code, out, err = run("plan", "--data", str(data), "--model", str(models), "--out", str(tmp_path / "plans"),
                         "--rules", str(rules), "--json")
    assert code == 2 and out == ""
    lines = [row for row in err.splitlines() if row.strip()]
    assert len(lines) == 1 and lines[0].startswith(expected), err
    assert "did you mean 'snacks'?" in lines[0]
    assert not (tmp_path / "plans").exists()

    code, _, err = run("config", "validate", str(rules), "--data", str(data))
    assert code == 2
    assert [row for row in err.splitlines() if row.strip()] == lines
    assert run("config", "validate", str(rules))[0] == 0


def test_misspelt_brand_and_sku_scopes_are_errors_too(tmp_path: Path, run: Run, trained_store: tuple[Path, Path]) -> None:
    data, _ = trained_store
    rules = tmp_path / "rules.yaml"
    rules.write_text('brands:\n  Naturel:\n    min_price: "1.49"\nskus:\n  "999999":\n    margin_floor_pct: 2\n')
    code, _, err = run("config", "validate", str(rules), "--data", str(data))
    assert code == 2
    lines = [row for row in err.splitlines() if row.strip()]
    assert lines[0].startswith(f"{rules}:2: brands.Naturel: no product has this brand") and "'Naturelle'" in lines[0]
    assert lines[1].startswith(f"{rules}:5: skus.999999: no product has this SKU (80 SKUs in the products)")
    assert len(lines) == 2


def test_config_validate_data_must_be_a_store_directory(tmp_path: Path, run: Run) -> None:
    code, _, err = run("config", "validate", str(REPO / "config" / "rules.yaml"), "--data", str(tmp_path / "nope"))
    assert code == 2
    assert [row for row in err.splitlines() if row.strip()] == [f"error: {tmp_path / 'nope'}: not a directory"]


def test_the_shipped_rules_match_the_sample_store(tmp_path: Path, run: Run) -> None:
    """Out of the box, config/rules.yaml names only what `simulate generate` writes."""
    data = tmp_path / "data"
    assert run("simulate", "generate", "--out", str(data), "--days", "7")[0] == 0
    code, _, err = run("config", "validate", str(REPO / "config" / "rules.yaml"), "--data", str(data))
    assert code == 0, err
