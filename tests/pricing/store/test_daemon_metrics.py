"""A `daemon --run-job` in another process shows in the running daemon's /metrics: the cycle
metrics and the database's gauges are read from the shared engine database at scrape time."""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from label_gateway.broker import clear_retained
from pricing.cli.app import app
from pricing.store.daemon import StoreDaemon
from pricing.store.engine_config import load_engine_config
from pricing.store.metrics import EngineMetrics
from simulator.store import generate_store

pytestmark = pytest.mark.integration

runner = CliRunner()


@pytest.fixture
def config(tmp_path: Path, mqtt_broker: Any) -> Any:
    generate_store(tmp_path / "data", skus=10, seed=5, days=30, gateways=1, end_date=date(2026, 11, 16))
    data = tmp_path / "data"
    (data / "labels.csv").write_text((data / "labels.csv").read_text().splitlines()[0] + "\n")  # nothing to push
    (tmp_path / "rules.yaml").write_text("currency: EUR\ndefault:\n  max_change_pct: 10\n")
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    path = tmp_path / "engine.yaml"
    path.write_text(json.dumps({
        "store": f"m-{uuid.uuid4().hex[:6]}", "database": "engine.db", "data_dir": "data", "rules": "rules.yaml",
        "broker": mqtt_broker.address.url, "prefix": prefix, "calendar": {"timezone": "Europe/Berlin"},
        "jobs": [{"id": "reconcile", "kind": "reconcile", "every": "15m"}], "metrics": {"enabled": False},
    }))
    yield path
    clear_retained(mqtt_broker.address, f"{prefix}/#", settle_s=0.3)


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_run_job_in_another_process_reaches_the_running_daemons_metrics(config: Path) -> None:
    running = StoreDaemon(load_engine_config(config), config.parent, metrics=EngineMetrics(), say=lambda _: None)
    with running.metrics.serve("127.0.0.1", 0) as server:
        before = scrape(server.url)
        ok = ("esl_cycles_total", (("job", "reconcile"), ("kind", "reconcile"), ("result", "ok")))
        assert before.get(ok, 0.0) == 0.0
        result = runner.invoke(app, ["daemon", "--config", str(config), "--run-job", "reconcile"])
        assert result.exit_code == 0, result.output
        after = scrape(server.url)
        assert after[ok] == 1.0
        assert after[("esl_last_cycle_timestamp_seconds", (("job", "reconcile"),))] > 0
        assert after[("esl_cycle_seconds_count", (("job", "reconcile"), ("kind", "reconcile")))] == 1.0
        assert after[("esl_kill_switch", ())] == 0.0
        killed = runner.invoke(app, ["kill-switch", "on", "--config", str(config), "--by", "test"])
        assert killed.exit_code == 0, killed.output
        assert scrape(server.url)[("esl_kill_switch", ())] == 1.0
        again = scrape(server.url)
        assert again[ok] == 1.0  # each cycle is counted once, however often it is scraped
    running.run_job("reconcile")  # the daemon's own cycles count through the same log, once (skipped: switch on)
    counted = running.metrics.cycles_total.labels
    assert counted(job="reconcile", kind="reconcile", result="kill_switch")._value.get() == 1.0
    assert counted(job="reconcile", kind="reconcile", result="ok")._value.get() == 1.0
