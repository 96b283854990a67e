"""The command line: exit codes and one-line errors for mistakes a user can make."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from pricing.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


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


def test_apply_with_unreachable_broker_is_one_line_exit_1(tmp_path: Path) -> None:
    from label_gateway.embedded_broker import free_port

    data = tmp_path / "data"
    _run("simulate", "generate", "--out", str(data), "--skus", "20", "--days", "30")
    plan = tmp_path / "plan.json"
    plan.write_text(
        json.dumps(
            {
                "plan_id": "p", "created_at": "2026-11-01T00:00:00Z", "store": "store-001", "currency": "EUR",
                "model": "m", "lines": [],
                "solver": {"status": "OPTIMAL", "objective_cents": 0, "bound_cents": 0, "seconds": 0},
            }
        )
    )
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
    from pricing.data import load_store
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
        from pricing.plan import PricePlan

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
