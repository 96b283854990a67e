"""esl-pricing daemon / status / kill-switch / events export, and a clean stop on SIGTERM."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from label_gateway.broker import clear_retained
from label_gateway.outbox import LabelUpdate, Outbox
from pricing.cli.app import app
from pricing.core.database import open_engine
from pricing.core.events import read_jsonl
from pricing.store.engine_state import EngineFlags
from pricing.store.event_log import EventLog

runner = CliRunner()
RULES = Path(__file__).resolve().parents[3] / "config" / "rules.yaml"


def write_config(directory: Path, *, broker: str, database: str, jobs: list[dict[str, Any]] | None = None) -> Path:
    store = f"cli-{uuid.uuid4().hex[:6]}"
    config = {
        "store": store,
        "database": database,
        "data_dir": "data",
        "rules": "rules.yaml",
        "model_dir": "models",
        "plans_dir": "plans",
        "broker": broker,
        "prefix": f"test-{uuid.uuid4().hex[:10]}",
        "calendar": {"timezone": "Europe/Berlin"},
        "delivery": {"ack_timeout_s": 30, "max_attempts": 3, "deadline_s": 120},
        "jobs": jobs or [{"id": "reconcile", "kind": "reconcile", "every": "15m"}],
        "metrics": {"enabled": False},
    }
    (directory / "data").mkdir(exist_ok=True)  # the daemon refuses to start without its inputs
    shutil.copy(RULES, directory / "rules.yaml")
    path = directory / "engine.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def last_json(output: str) -> dict[str, Any]:
    return json.loads(output.strip().splitlines()[-1])


@pytest.fixture
def config(tmp_path: Path, mqtt_broker: Any) -> Path:
    return write_config(tmp_path, broker=mqtt_broker.address.url, database=str(tmp_path / "engine.db"))


def test_status_of_a_store_whose_daemon_never_ran(config: Path) -> None:
    result = runner.invoke(app, ["status", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    s = last_json(result.stdout)
    assert s["daemon"] == "never started"
    assert s["broker"]["reachable"] is True
    assert s["last_cycle"] is None and s["outbox_open"] == 0 and s["kill_switch"] is False


def test_status_says_when_the_broker_is_unreachable(tmp_path: Path) -> None:
    config = write_config(tmp_path, broker="mqtt://127.0.0.1:9", database=str(tmp_path / "e.db"))
    result = runner.invoke(app, ["status", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    s = last_json(result.stdout)
    assert s["broker"]["reachable"] is False and "127.0.0.1:9" in s["broker"]["error"]


def test_kill_switch_is_recorded_in_the_database_and_the_log(config: Path) -> None:
    on = runner.invoke(app, ["kill-switch", "on", "--config", str(config), "--by", "alice", "--json"])
    assert on.exit_code == 0, on.output
    store = json.loads(config.read_text())["store"]
    engine = open_engine(config.parent / "engine.db")
    assert EngineFlags(engine, store).kill_switch() is True
    status = last_json(runner.invoke(app, ["status", "--config", str(config), "--json"]).stdout)
    assert status["kill_switch"] is True
    off = runner.invoke(app, ["kill-switch", "off", "--config", str(config), "--by", "bob"])
    assert off.exit_code == 0
    assert EngineFlags(engine, store).kill_switch() is False
    log = [(e.data["on"], e.data["by"]) for e in EventLog(engine, store).read(kinds=["kill_switch"])]
    assert log == [(True, "alice"), (False, "bob")]


def test_kill_switch_needs_on_or_off(config: Path) -> None:
    result = runner.invoke(app, ["kill-switch", "maybe", "--config", str(config)])
    assert result.exit_code == 2
    assert "on or off" in result.output and "Traceback" not in result.output


def test_a_config_mistake_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "engine.yaml"
    path.write_text("store: S1\ndatabse: x.db\njobs: []\n")
    result = runner.invoke(app, ["status", "--config", str(path)])
    assert result.exit_code == 2
    assert "engine.yaml:2" in result.output and "Traceback" not in result.output


def test_run_one_job_now_and_export_the_log(config: Path) -> None:
    result = runner.invoke(app, ["daemon", "--config", str(config), "--run-job", "reconcile", "--json"])
    assert result.exit_code == 0, result.output
    assert last_json(result.stdout)["result"] == "ok"
    unknown = runner.invoke(app, ["daemon", "--config", str(config), "--run-job", "nope"])
    assert unknown.exit_code == 2 and "no job 'nope'" in unknown.output
    out = config.parent / "events.jsonl"
    exported = runner.invoke(app, ["events", "export", str(out), "--config", str(config), "--json"])
    assert exported.exit_code == 0, exported.output
    kinds = [e.kind for e in read_jsonl(out)]
    assert kinds == ["cycle_started", "cycle_finished"]


def test_sigterm_parks_the_push_in_flight_and_stops_cleanly(tmp_path: Path, mqtt_broker: Any) -> None:
    """Labels of a gateway nobody runs never answer: the daemon's start-up resume is still
    pushing when SIGTERM comes. The push stops at once, its labels stay pending in the outbox
    (the next run resumes them), and the log says so."""
    config = write_config(tmp_path, broker=mqtt_broker.address.url, database=str(tmp_path / "engine.db"))
    store = json.loads(config.read_text())["store"]
    engine = open_engine(tmp_path / "engine.db")
    Outbox(engine, store).enqueue(
        [LabelUpdate(f"L{i}", "gw-nobody", f"{i:04d}", 199, "EUR", "plan-test") for i in range(20)]
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "pricing.cli", "daemon", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    log = EventLog(engine, store)
    deadline = time.monotonic() + 30
    while not log.read(kinds=["cycle_started"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # the push is under way, waiting for acks that never come
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr
    finished = log.read(kinds=["cycle_finished"])
    assert [(e.data["job"], e.data["result"]) for e in finished] == [("resume", "parked")]
    assert "daemon stopping" in finished[0].data["detail"]
    assert log.last("daemon_stopped") is not None
    assert Outbox(engine, store).counts().open == 20  # nothing lost: all still pending
    assert EngineFlags(engine, store).get("daemon")["state"] == "stopped"
    clear_retained(mqtt_broker.address, json.loads(config.read_text())["prefix"] + "/#", settle_s=0.3)
