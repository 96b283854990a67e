"""esl-pricing daemon / status tell the truth: exit codes and JSON of a job whose labels failed, one
line for a broker outage or a missing data_dir, status times in the store's time zone."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from label_gateway.broker import clear_retained
from label_gateway.embedded_broker import free_port
from pricing.cli.app import app
from tests.pricing.store.test_daemon_truth import make_store as store_with_config

runner = CliRunner()

RULES = """currency: EUR
default:
  margin_floor_pct: 10
  max_change_pct: 10
  endings: [".99", ".49"]
"""


def make_store(directory: Path, broker: str, **overrides: Any) -> Path:
    """A 30-SKU store whose labels.csv names ``store-001`` while engine.yaml names another store
    (the mismatch of issue 18): no gateway listens on the config's topics. Returns engine.yaml."""
    return store_with_config(directory, broker, labels_store="store-001", end_date=date(2026, 11, 16), **overrides)


def last_json(output: str) -> dict[str, Any]:
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture
def store(tmp_path: Path, mqtt_broker: Any) -> Any:
    config = make_store(tmp_path, mqtt_broker.address.url)
    yield config
    clear_retained(mqtt_broker.address, json.loads(config.read_text())["prefix"] + "/#", settle_s=0.3)


def underprice(products: Path) -> None:
    """Every shelf price at cost: the margin floor makes the reprice change them all."""
    lines = products.read_text().splitlines()
    header = lines[0].split(",")
    cost, price = header.index("cost_cents"), header.index("price_cents")
    rows = [line.split(",") for line in lines[1:]]
    for row in rows:
        row[price] = row[cost]
    products.write_text("\n".join([lines[0], *(",".join(row) for row in rows)]) + "\n")


def test_run_job_whose_labels_failed_exits_1_and_says_failed(store: Path) -> None:
    """The reprice pushes its changes to gateways nobody runs: every label fails, and the job is
    failed, in its exit code and its JSON (it printed `ok` and exited 0 before)."""
    underprice(store.parent / "data" / "products.csv")
    result = runner.invoke(app, ["daemon", "--config", str(store), "--run-job", "nightly-reprice", "--json"])
    summary = last_json(result.stdout)
    assert summary["changes"] > 10 and summary["failed"] == summary["pushed_labels"] > 10, summary
    assert summary["result"] == "failed", summary
    assert result.exit_code == 1, result.output
    assert {"job", "kind", "plan", "changes", "pushed_labels", "confirmed", "failed", "waiting", "seconds"} <= set(summary)
    assert "Traceback" not in result.output


def test_run_job_that_went_well_says_ok(store: Path) -> None:
    data = store.parent / "data"
    (data / "labels.csv").write_text((data / "labels.csv").read_text().splitlines()[0] + "\n")  # no labels
    result = runner.invoke(app, ["daemon", "--config", str(store), "--run-job", "reconcile", "--json"])
    assert result.exit_code == 0, result.output
    assert last_json(result.stdout)["result"] == "ok"


def test_run_job_with_the_broker_down_is_one_line_and_exit_1(tmp_path: Path) -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    config = make_store(tmp_path, url)
    result = runner.invoke(app, ["daemon", "--config", str(config), "--run-job", "reconcile"])
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    about_broker = [line for line in result.stderr.splitlines() if url in line]
    assert len(about_broker) == 1, result.stderr
    assert about_broker[0].startswith("reconcile: failed") and "next try at the next run" in about_broker[0]


@pytest.mark.parametrize("run_job", [True, False])
def test_a_missing_data_dir_is_one_line_and_exit_2(tmp_path: Path, run_job: bool) -> None:
    config = make_store(tmp_path, f"mqtt://127.0.0.1:{free_port()}", data_dir="no-such-data")
    args = ["daemon", "--config", str(config)] + (["--run-job", "reconcile"] if run_job else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    line_no = next(i for i, text in enumerate(config.read_text().splitlines(), start=1) if '"data_dir"' in text)
    assert lines == [f"{config}:{line_no}: data_dir: folder {tmp_path / 'no-such-data'} does not exist"], lines
    assert not (tmp_path / "engine.db").exists()  # nothing recorded


def test_status_shows_times_in_the_store_zone_to_the_second(store: Path) -> None:
    data = store.parent / "data"
    (data / "labels.csv").write_text((data / "labels.csv").read_text().splitlines()[0] + "\n")
    assert runner.invoke(app, ["daemon", "--config", str(store), "--run-job", "reconcile"]).exit_code == 0
    result = runner.invoke(app, ["status", "--config", str(store), "--json"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    summary = last_json(result.stdout)
    assert summary["last_cycle"]["at"].endswith("+00:00")  # the JSON keeps ISO UTC
    shown = result.stderr
    assert not re.search(r"\d\d:\d\d:\d\d\.\d", shown), shown  # no microseconds
    assert "+00:00" not in shown
    assert re.search(r"reconcile at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d (CET|CEST):", shown), shown
    assert summary["daemon"] == "never started"  # a --run-job is not a running daemon


def test_kill_switch_help_says_what_the_daemon_does() -> None:
    """The help, docs/daemon.md and config/engine.yaml: planning goes on, nothing is pushed
    (tests/pricing/store/test_daemon_truth.py pins the behaviour)."""
    help_text = " ".join(runner.invoke(app, ["kill-switch", "--help"], env={"COLUMNS": "200"}).output.split())
    assert "planning" in help_text and "no price" in help_text
    docs = (Path(__file__).resolve().parents[3] / "docs" / "daemon.md").read_text()
    assert "Planning still runs while the kill switch is on" in docs
