"""Tests for pricing/cli/demand.py: esl-pricing train and evaluate."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("wide_console")

Run = Callable[..., tuple[int, str, str]]

REPO = Path(__file__).resolve().parents[3]


def test_train_plan_json_contract(tmp_path: Path, run: Run) -> None:
    data, models = tmp_path / "data", tmp_path / "models"
    assert run("simulate", "generate", "--out", str(data), "--skus", "80", "--days", "120")[0] == 0
    code, out, err = run("train", "--data", str(data), "--out", str(models), "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["n_skus"] == 80
    code, out, err = run(
        "plan", "--data", str(data), "--model", str(models), "--out", str(tmp_path / "plans"), "--json",
        "--rules", str(REPO / "config" / "rules.yaml"),
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["skus"] == 80 and summary["solver_status"] == "OPTIMAL"
    assert Path(summary["plan"]).is_file()


def test_evaluate_json_contract(tmp_path: Path, run: Run) -> None:
    data = tmp_path / "data"
    assert run("simulate", "generate", "--out", str(data), "--skus", "150", "--days", "200")[0] == 0
    code, out, err = run("evaluate", "--data", str(data), "--weeks", "2", "--holdout-weeks", "2", "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    for key in ("wape", "wape_baseline", "elasticity_mae", "closed_loop_profit_vs_oracle", "elasticity_mae_by_category"):
        assert key in summary
    assert 0 < summary["wape"] < summary["wape_baseline"]
    assert 0 < summary["elasticity_mae"] < 1
    assert 0.8 < summary["closed_loop_profit_vs_oracle"] <= 1.05
    assert summary["closed_loop_weeks"] == 2 and len(summary["closed_loop_changes_per_week"]) == 2
    assert "Own-price elasticity" in err


def test_evaluate_needs_a_simulated_store(tmp_path: Path, run: Run) -> None:
    data = tmp_path / "data"
    assert run("simulate", "generate", "--out", str(data), "--skus", "30", "--days", "60")[0] == 0
    (data / "truth.csv").unlink()
    code, _, err = run("evaluate", "--data", str(data), "--weeks", "1")
    assert code == 2
    assert "no market truth" in err and "Traceback" not in err


def test_train_needs_no_labels_and_its_card_counts_the_data(tmp_path: Path, run: Run) -> None:
    data, models = tmp_path / "data", tmp_path / "models"
    assert run("simulate", "generate", "--out", str(data), "--skus", "40", "--days", "90")[0] == 0
    (data / "labels.csv").unlink()
    sales = data / "sales.csv"
    lines = sales.read_text().splitlines()
    sales.write_text("\n".join([*lines, *lines[1:6], "2026-13-01,store-001,x,1,1,0"]) + "\n")
    code, out, err = run("train", "--data", str(data), "--out", str(models), "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["n_rows"] == len(lines) - 1
    assert "5 exact duplicate sales.csv row(s) dropped" in err and "1 input row(s) rejected" in err
    card = json.loads((models / "demand_model.card.json").read_text())
    assert card["data_counts"]["sales.csv"] == {"rows_read": len(lines) + 5, "rejected": 1, "duplicates": 5}
    assert card["data_counts"]["products.csv"] == {"rows_read": 40, "rejected": 0, "duplicates": 0}
    assert card["dropped_rows"] == 6 and "labels.csv" not in card["data_counts"]
