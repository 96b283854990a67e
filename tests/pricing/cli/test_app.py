"""The command line: exit codes and one-line errors for mistakes a user can make."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pricing.cli import common
from pricing.cli.app import app
from pricing.plan.price_plan import PlanLine, PricePlan, SolverStats

REPO = Path(__file__).resolve().parents[3]
runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _wide_console(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Rich sizes tables to the terminal; a wide one keeps cells on one line for the asserts.
    Each test gets its own engine database (the default would be ./esl-engine.db)."""
    monkeypatch.setattr(common.err, "_width", 250)
    monkeypatch.setenv("ESL_DATABASE", str(tmp_path / "engine.db"))


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
    from datetime import UTC, datetime

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


def _one_line(err: str) -> bool:
    return len([line for line in err.splitlines() if line.strip()]) == 1 and "Traceback" not in err


def test_no_arguments_shows_help() -> None:
    code, out, err = _run()
    assert "demo" in out + err and code in (0, 2)


def test_config_validate_accepts_the_example() -> None:
    code, _, err = _run("config", "validate", str(REPO / "config" / "rules.yaml"))
    assert code == 0, err


def test_config_validate_reports_file_line_key(tmp_path: Path) -> None:
    bad = tmp_path / "rules.yaml"
    bad.write_text("default:\n  margn_floor_pct: 10\n  max_change_pct: lots\n  min_price: '5'\n  max_price: '1'\n")
    code, _, err = _run("config", "validate", str(bad))
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert any(line.startswith(f"{bad}:2: default.margn_floor_pct: unknown key") for line in lines), err
    assert any(line.startswith(f"{bad}:3: default.max_change_pct:") for line in lines), err
    assert "Traceback" not in err


def test_missing_data_directory_is_one_line_exit_2(tmp_path: Path) -> None:
    code, _, err = _run("plan", "--data", str(tmp_path / "nope"), "--model", str(tmp_path))
    assert code == 2
    assert "not a directory" in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1


def test_missing_model_is_one_line_exit_2(tmp_path: Path) -> None:
    data = tmp_path / "data"
    code, _, _ = _run("simulate", "generate", "--out", str(data), "--skus", "30", "--days", "30")
    assert code == 0
    code, _, err = _run("plan", "--data", str(data), "--model", str(tmp_path / "models"))
    assert code == 2 and "Traceback" not in err


def test_train_plan_json_contract(tmp_path: Path) -> None:
    data, models = tmp_path / "data", tmp_path / "models"
    assert _run("simulate", "generate", "--out", str(data), "--skus", "80", "--days", "120")[0] == 0
    code, out, err = _run("train", "--data", str(data), "--out", str(models), "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["n_skus"] == 80
    code, out, err = _run(
        "plan", "--data", str(data), "--model", str(models), "--out", str(tmp_path / "plans"), "--json",
        "--rules", str(REPO / "config" / "rules.yaml"),
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["skus"] == 80 and summary["solver_status"] == "OPTIMAL"
    assert Path(summary["plan"]).is_file()


def _labels(directory: Path, skus: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    rows = [f"L{i:04d},store-001,gw-1,{sku},2.9" for i, sku in enumerate(skus)]
    (directory / "labels.csv").write_text("label_id,store,gateway,sku,tag_type\n" + "\n".join(rows) + "\n")
    return directory


def test_apply_with_unreachable_broker_is_one_line_exit_1(tmp_path: Path) -> None:
    from label_gateway.embedded_broker import free_port

    plan = _plan_file(tmp_path / "plans", [_line("0001", "change")])
    data = _labels(tmp_path / "data", ["0001"])
    code, _, err = _run("apply", str(plan), "--data", str(data), "--broker", f"mqtt://127.0.0.1:{free_port()}")
    assert code == 1
    assert "cannot reach MQTT broker" in err and "Traceback" not in err


def test_apply_rejects_a_file_that_is_not_a_plan(tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    code, _, err = _run("apply", str(junk), "--data", str(tmp_path))
    assert code == 2 and "not a price plan" in err


def test_bad_option_value_is_a_usage_error() -> None:
    code, _, _ = _run("demo", "--skus", "5")
    assert code == 2


def test_bad_broker_url_is_a_user_error(tmp_path: Path) -> None:
    code, _, err = _run("demo", "--broker", "http://nowhere", "--skus", "20", "--workdir", str(tmp_path))
    assert code == 2
    assert "scheme must be mqtt://" in err and "Traceback" not in err


def test_plan_then_apply_reaches_the_labels(mqtt_broker, topics, tmp_path: Path) -> None:
    """The manual flow: plan, then apply the saved plan to running gateways over the real broker."""
    from pricing.core.data import load_store
    from simulator.gateways import SimulatedGateways

    data, models, plans = tmp_path / "data", tmp_path / "models", tmp_path / "plans"
    assert _run("simulate", "generate", "--out", str(data), "--skus", "150", "--days", "120")[0] == 0
    assert _run("train", "--data", str(data), "--out", str(models))[0] == 0
    code, out, err = _run(
        "plan", "--data", str(data), "--model", str(models), "--out", str(plans), "--json",
        "--rules", str(REPO / "config" / "rules.yaml"),
    )
    assert code == 0, err
    plan_path = json.loads(out.strip().splitlines()[-1])["plan"]
    store = load_store(data)
    store_topics = type(topics)(store.store_id, prefix=topics.prefix)
    with SimulatedGateways(mqtt_broker.address, store_topics, store.label_rows()) as sim:
        code, out, err = _run(
            "apply", plan_path, "--data", str(data), "--broker", mqtt_broker.address.url,
            "--prefix", topics.prefix, "--json",
        )
        assert code == 0, err
        summary = json.loads(out.strip().splitlines()[-1])
        from pricing.plan.price_plan import PricePlan

        prices = PricePlan.read(Path(plan_path)).new_prices()
        assert summary["labels_confirmed"] == len(prices) > 0 and summary["labels_failed"] == 0
        shown = sim.displayed()
        assert {label: shown[label].price_cents for label, _, sku in store.label_rows() if sku in prices} == {
            label: prices[sku] for label, _, sku in store.label_rows() if sku in prices
        }


def test_plan_with_another_stores_model_is_one_line_exit_2(tmp_path: Path) -> None:
    ours, theirs, models = tmp_path / "ours", tmp_path / "theirs", tmp_path / "models"
    assert _run("simulate", "generate", "--out", str(ours), "--skus", "40", "--days", "60", "--seed", "1")[0] == 0
    assert _run("simulate", "generate", "--out", str(theirs), "--skus", "40", "--days", "60", "--seed", "2")[0] == 0
    assert _run("train", "--data", str(theirs), "--out", str(models))[0] == 0
    code, _, err = _run("plan", "--data", str(ours), "--model", str(models), "--out", str(tmp_path / "plans"))
    assert code == 2, err
    assert "model was trained on other SKUs" in err and "Traceback" not in err


def test_evaluate_json_contract(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _run("simulate", "generate", "--out", str(data), "--skus", "150", "--days", "200")[0] == 0
    code, out, err = _run("evaluate", "--data", str(data), "--weeks", "2", "--holdout-weeks", "2", "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    for key in ("wape", "wape_baseline", "elasticity_mae", "closed_loop_profit_vs_oracle", "elasticity_mae_by_category"):
        assert key in summary
    assert 0 < summary["wape"] < summary["wape_baseline"]
    assert 0 < summary["elasticity_mae"] < 1
    assert 0.8 < summary["closed_loop_profit_vs_oracle"] <= 1.05
    assert summary["closed_loop_weeks"] == 2 and len(summary["closed_loop_changes_per_week"]) == 2
    assert "Own-price elasticity" in err


def test_evaluate_needs_a_simulated_store(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert _run("simulate", "generate", "--out", str(data), "--skus", "30", "--days", "60")[0] == 0
    (data / "truth.csv").unlink()
    code, _, err = _run("evaluate", "--data", str(data), "--weeks", "1")
    assert code == 2
    assert "no market truth" in err and "Traceback" not in err


# -- approval -------------------------------------------------------------------------------------
def _statuses(plan: Path) -> dict[str, str]:
    return {line.sku: line.status for line in PricePlan.read(plan).lines}


def test_approve_one_sku_rewrites_json_and_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import csv
    from datetime import UTC, datetime, timedelta

    monkeypatch.setenv("USER", "carol")
    plan = _waiting_plan(tmp_path)
    code, out, err = _run("approve", str(plan), "--sku", "0003", "--json")
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


def test_approve_all_and_reject(tmp_path: Path) -> None:
    plan = _waiting_plan(tmp_path / "a")
    code, out, err = _run("approve", str(plan), "--all", "--by", "alice", "--json")
    assert code == 0, err
    assert sorted(json.loads(out.strip().splitlines()[-1])["decided"]) == ["0002", "0003"]
    assert _statuses(plan) == {"0001": "change", "0002": "change", "0003": "change", "0004": "keep"}

    plan = _waiting_plan(tmp_path / "b")
    code, out, err = _run("approve", str(plan), "--sku", "0002", "--sku", "0002", "--reject", "--by", "bob")
    assert code == 0, err
    assert _statuses(plan)["0002"] == "rejected" and _statuses(plan)["0003"] == "approval"
    assert next(line for line in PricePlan.read(plan).lines if line.sku == "0002").decided_by == "bob"
    code, out, err = _run("approve", str(plan), "--all", "--reject", "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["decided"] == ["0003"] and summary["decision"] == "rejected" and summary["awaiting_approval"] == 0
    assert PricePlan.read(plan).new_prices() == {"0001": 210}


def test_approve_all_with_nothing_waiting_is_ok(tmp_path: Path) -> None:
    plan = _plan_file(tmp_path, [_line("0001", "change")])
    before = plan.read_text()
    code, out, err = _run("approve", str(plan), "--all", "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["decided"] == []
    assert plan.read_text() == before


@pytest.mark.parametrize(
    ("skus", "named"),
    [(["9999"], "9999 (not in the plan)"), (["0002", "0001"], "0001 (status change)"), (["0004"], "0004"),
     (["[b]x"], "[b]x (not in the plan)")],
)
def test_approve_sku_not_awaiting_approval_is_one_line_exit_2(tmp_path: Path, skus: list[str], named: str) -> None:
    plan = _waiting_plan(tmp_path)
    before = plan.read_text()
    args = [arg for sku in skus for arg in ("--sku", sku)]
    code, _, err = _run("approve", str(plan), *args)
    assert code == 2 and _one_line(err), err
    assert "not awaiting approval" in err and named in err
    assert plan.read_text() == before  # nothing decided when one SKU is wrong


def test_approve_again_says_who_decided(tmp_path: Path) -> None:
    plan = _waiting_plan(tmp_path)
    assert _run("approve", str(plan), "--sku", "0002", "--by", "alice")[0] == 0
    code, _, err = _run("approve", str(plan), "--sku", "0002", "--reject")
    assert code == 2 and _one_line(err) and "already approved by alice" in err


def test_approve_without_sku_or_all_lists_the_waiting_and_exits_2(tmp_path: Path) -> None:
    plan = _waiting_plan(tmp_path)
    before = plan.read_text()
    code, out, err = _run("approve", str(plan))
    assert code == 2 and "Traceback" not in err
    assert "0002" in err and "0003" in err and "needs approval" in err and "0001" not in err
    assert "pass --sku SKU" in err and "--all" in err and out == ""
    assert plan.read_text() == before


def test_approve_bad_arguments_are_one_line_exit_2(tmp_path: Path) -> None:
    plan = _waiting_plan(tmp_path)
    code, _, err = _run("approve", str(plan), "--sku", "0002", "--all")
    assert code == 2 and _one_line(err) and "not both" in err
    code, _, err = _run("approve", str(tmp_path / "missing.json"), "--all")
    assert code == 2 and _one_line(err) and "plan file not found" in err
    junk = tmp_path / "junk.json"
    junk.write_text("not json")
    code, _, err = _run("approve", str(junk), "--all")
    assert code == 2 and _one_line(err) and "not a price plan" in err
    renamed = tmp_path / "mine.json"
    renamed.write_text(plan.read_text())
    code, _, err = _run("approve", str(renamed), "--all")
    assert code == 2 and _one_line(err) and "does not match its plan id" in err
    assert _statuses(renamed)["0002"] == "approval"
    code, _, err = _run("approve", str(plan), "--all", "--by", " ")
    assert code == 2 and _one_line(err)


def test_apply_with_nothing_approved_exits_0_without_a_broker(tmp_path: Path) -> None:
    from label_gateway.embedded_broker import free_port

    plan = _plan_file(tmp_path, [_line("0002", "approval"), _line("0003", "rejected"), _line("0004", "keep")])
    code, out, err = _run(
        "apply", str(plan), "--data", str(tmp_path / "no-data"), "--broker", f"mqtt://127.0.0.1:{free_port()}",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["prices"] == 0 and summary["awaiting_approval"] == 1 and summary["labels_confirmed"] == 0
    assert "nothing to push" in err and "1 changes await approval and were not pushed" in err


def test_apply_after_approval_has_prices_to_push(tmp_path: Path) -> None:
    """Once approved, the change is pushed: apply now needs the broker (unreachable here: exit 1)."""
    from label_gateway.embedded_broker import free_port

    plan = _plan_file(tmp_path / "plans", [_line("0002", "approval")])
    data = _labels(tmp_path / "data", ["0002"])
    broker = f"mqtt://127.0.0.1:{free_port()}"
    assert _run("apply", str(plan), "--data", str(data), "--broker", broker)[0] == 0
    assert _run("approve", str(plan), "--all", "--by", "alice")[0] == 0
    code, _, err = _run("apply", str(plan), "--data", str(data), "--broker", broker)
    assert code == 1 and "cannot reach MQTT broker" in err
    from pricing.core.database import open_engine
    from pricing.store.event_log import EventLog

    approved = EventLog(open_engine(tmp_path / "engine.db"), "store-001").read(kinds=["plan_approved"])
    assert [(e.sku, e.data["by"]) for e in approved] == [("0002", "alice")]


# -- plan output ----------------------------------------------------------------------------------
def test_plan_json_and_table_show_approvals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan command around a fixed plan (the cycle itself is tested in test_cycle.py)."""
    import sys
    import types

    import pandas as pd

    import pricing.core.data
    import pricing.demand.model_store

    result = _plan(
        [
            _line("0001", "change", 200, 210, profit_new_cents=1050.0),
            _line("0002", "approval", 200, 300, profit_new_cents=1500.0, relaxed_rules=["ladder", "ending"],
                  soft_rules_broken=["competitor_gap"], group="family:cola"),
            _line("0003", "change", 500, 450, profit_new_cents=1200.0, binding_rule="[max_change]"),
            _line("0004", "keep"),
            _line("0005", "held", cost_cents=None, binding_rule="no_cost", relaxed_rules=[]),
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
    monkeypatch.setattr(pricing.core.data, "load_store", lambda data: store)
    monkeypatch.setattr(pricing.demand.model_store, "load_model", lambda path: (object(), None))
    monkeypatch.setattr(pricing.demand.model_store, "require_model_covers", lambda *args, **kwargs: [])
    monkeypatch.chdir(tmp_path)  # no config/rules.yaml here: default rules

    code, out, err = _run("plan", "--data", str(tmp_path), "--out", str(tmp_path / "plans"), "--top", "2", "--json")
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


@pytest.mark.integration
def test_apply_records_the_price_book_the_omnibus_reference_and_the_log(tmp_path: Path, mqtt_broker: object) -> None:
    """A manager's apply takes the same path as the daemon: the price book gets the prices, a
    reduction carries the lowest price of the previous 30 days to the label, the log records it."""
    from datetime import UTC, datetime, timedelta

    from label_gateway.broker import clear_retained
    from label_gateway.protocol import Topics
    from pricing.core.database import open_engine
    from pricing.store.event_log import EventLog
    from pricing.store.price_book import PriceBook
    from simulator.gateways import SimulatedGateways

    engine = open_engine(tmp_path / "engine.db")
    book = PriceBook(engine, "store-001")
    book.seed({"0001": 180, "0003": 500}, at=datetime.now(UTC) - timedelta(days=40), currency="EUR", source="seed")
    book.record({"0001": 200}, at=datetime.now(UTC) - timedelta(days=10), currency="EUR", correlation="older")
    plan = _plan_file(tmp_path / "plans", [_line("0001", "change", 200, 190), _line("0003", "change", 500, 550)])
    data = _labels(tmp_path / "data", ["0001", "0003"])
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    labels = [("L0000", "gw-1", "0001"), ("L0001", "gw-1", "0003")]
    address = mqtt_broker.address  # type: ignore[attr-defined]
    with SimulatedGateways(address, Topics("store-001", prefix=prefix), labels) as gateways:
        code, _, err = _run("apply", str(plan), "--data", str(data), "--broker", address.url, "--prefix", prefix)
        assert code == 0, err
        shown = gateways.displayed()
    clear_retained(address, f"{prefix}/#", settle_s=0.3)
    assert book.current() == {"0001": 190, "0003": 550}
    assert (shown["L0000"].price_cents, shown["L0000"].reference_cents) == (190, 180)  # 180 until 10 days ago
    assert (shown["L0001"].price_cents, shown["L0001"].reference_cents) == (550, None)  # an increase
    kinds = [e.kind for e in EventLog(engine, "store-001").read(after_seq=0) if e.correlation == "plan-20261101T060000Z-c0ffee"]
    assert kinds.count("price_changed") == 2 and kinds.count("pushed") == 2 and kinds.count("acked") == 2
