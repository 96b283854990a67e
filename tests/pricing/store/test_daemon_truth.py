"""The daemon's cycles tell the truth: failed labels fail the cycle, a broker outage is one line per
job and the daemon goes on, start-up reconciles once, and the kill switch plans but pushes nothing.

Against the real Mosquitto; "broker down" is a port nothing listens on."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from label_gateway.broker import clear_retained
from label_gateway.embedded_broker import free_port
from pricing.store.daemon import StoreDaemon
from pricing.store.engine_config import load_engine_config
from pricing.store.scheduler import SimulatedClock
from simulator.store import generate_store

pytestmark = pytest.mark.integration

RULES = """currency: EUR
default:
  margin_floor_pct: 10
  max_change_pct: 10
  endings: [".99", ".49"]
"""
START = datetime(2026, 11, 17, 2, 0, tzinfo=UTC)  # a Tuesday night: no freeze


def make_store(
    directory: Path, broker: str, *, labels_store: str | None = None, end_date: date | None = None, **overrides: Any
) -> Path:
    """A 30-SKU store (2 gateways) with its engine.yaml; returns the config path. ``labels_store``:
    the store the generated data and labels name, when it should differ from the config's (no
    gateway then listens on the config's topics)."""
    store = f"tr-{uuid.uuid4().hex[:6]}"
    generate_store(
        directory / "data", skus=30, seed=5, days=60, gateways=2, store=labels_store or store,
        end_date=end_date or START.date(),
    )
    (directory / "rules.yaml").write_text(RULES)
    config = {
        "store": store, "database": "engine.db", "data_dir": "data", "rules": "rules.yaml",
        "model_dir": "models", "plans_dir": "plans", "broker": broker, "prefix": f"test-{uuid.uuid4().hex[:10]}",
        "calendar": {"timezone": "Europe/Berlin"},
        "delivery": {"ack_timeout_s": 0.3, "max_attempts": 1, "deadline_s": 10},
        "jobs": [
            {"id": "nightly-reprice", "kind": "reprice", "cron": "30 5 * * *"},
            {"id": "reconcile", "kind": "reconcile", "every": "15m"},
        ],
        "metrics": {"enabled": False},
    } | overrides
    path = directory / "engine.yaml"
    path.write_text(json.dumps(config, indent=1))
    return path


def daemon(config: Path, clock: SimulatedClock | None = None, said: list[str] | None = None) -> StoreDaemon:
    sink = said if said is not None else []
    return StoreDaemon(load_engine_config(config), config.parent, clock=clock, say=sink.append)


@pytest.fixture
def broker_store(tmp_path: Path, mqtt_broker: Any) -> Any:
    config = make_store(tmp_path, mqtt_broker.address.url)
    yield config
    clear_retained(mqtt_broker.address, json.loads(config.read_text())["prefix"] + "/#", settle_s=0.3)


def test_a_cycle_whose_labels_failed_is_failed(broker_store: Path) -> None:
    """No gateway answers (the store id matches none): every label fails, so the cycle does, and
    the push said at once (before the 2 s ack timeout) that no gateway was online."""
    config = json.loads(broker_store.read_text())
    broker_store.write_text(json.dumps(config | {"delivery": {"ack_timeout_s": 2, "max_attempts": 1}}))
    said: list[str] = []
    store = daemon(broker_store, said=said)
    result = store.run_job("reconcile")
    assert result.failed > 0
    assert result.result == "failed", result.data()
    assert f"{result.failed} labels failed" in result.detail
    assert any("no gateway of store" in line for line in said), said
    last = store.events.last("cycle_finished")
    assert last is not None and last.data["result"] == "failed"


def test_a_broker_outage_is_one_line_per_job_and_the_daemon_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Three reconcile runs in 31 simulated minutes with nothing on the broker's port: each fails
    with one line naming the broker, no traceback is logged, and the daemon runs on."""
    url = f"mqtt://127.0.0.1:{free_port()}"
    config = make_store(tmp_path, url)
    said: list[str] = []
    clock = SimulatedClock(START)
    store = daemon(config, clock, said)
    caplog.set_level(logging.DEBUG)
    store.start()
    try:
        store.run(until=START + timedelta(minutes=31))
    finally:
        store.shutdown()
    finished = [e for e in store.events.read(kinds=["cycle_finished"]) if e.data["job"] == "reconcile"]
    assert len(finished) == 3
    assert all(e.data["result"] == "failed" and url in e.data["detail"] for e in finished)
    lines = [line for line in said if line.startswith("reconcile:")]
    assert len(lines) == 3 and all(url in line and "\n" not in line for line in lines)
    assert "next try at the next run" in lines[0]
    noisy = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info and r.levelno > logging.DEBUG]
    assert noisy == [], [r.getMessage() for r in noisy]


def test_start_up_reconciles_once(tmp_path: Path) -> None:
    """A restart after the reconcile's run time: the start-up resume leaves the open labels to the
    reconcile job due now instead of delivering them itself first (two reconciles in one second)."""
    config = make_store(tmp_path, f"mqtt://127.0.0.1:{free_port()}")
    clock = SimulatedClock(START)
    first = daemon(config, clock)
    first.start()
    first.run(until=START + timedelta(seconds=1))  # the reconcile at START queues every label
    first.shutdown()
    assert first.outbox.counts().open > 0
    clock.advance(16 * 60)  # the next reconcile (START + 15 min) is due when the daemon is back
    said: list[str] = []
    second = daemon(config, clock, said)
    second.start()
    second.resume()
    second.run(until=clock.now() + timedelta(seconds=1))
    second.shutdown()
    events = second.events.read()
    restarted = max(e.seq for e in events if e.kind == "daemon_started")
    started = [e.data["job"] for e in events if e.kind == "cycle_started" and e.seq > restarted]
    assert started == ["reconcile"], started
    assert any("left to the reconcile job" in line for line in said)


def test_resume_still_delivers_when_no_reconcile_is_due(tmp_path: Path) -> None:
    config = make_store(tmp_path, f"mqtt://127.0.0.1:{free_port()}")
    clock = SimulatedClock(START)
    first = daemon(config, clock)
    first.start()
    first.run(until=START + timedelta(seconds=1))
    first.shutdown()
    clock.advance(60)  # the next reconcile is 14 minutes away
    second = daemon(config, clock)
    second.start()
    resumed = second.resume()
    second.shutdown()
    assert resumed is not None and resumed.job == "resume"


def test_the_kill_switch_plans_for_review_and_pushes_nothing(tmp_path: Path) -> None:
    """What docs/daemon.md, config/engine.yaml and `kill-switch --help` say: planning keeps running
    (the plan is written for review), but no price reaches the price book, the outbox or a label."""
    config = make_store(tmp_path, f"mqtt://127.0.0.1:{free_port()}", kill_switch=True)
    store = daemon(config)
    result = store.run_job("nightly-reprice")
    assert result.result == "kill_switch" and result.plan is not None
    assert "nothing pushed" in result.detail and result.pushed_labels == 0
    assert (tmp_path / "plans" / f"{result.plan}.json").exists()
    kinds = [e.kind for e in store.events.read()]
    assert "plan_created" in kinds and "pushed" not in kinds
    changed = [e for e in store.events.read(kinds=["price_changed"]) if e.correlation != "products.csv"]
    assert changed == []  # only the first-run seed from products.csv (the shelf as it is)
    assert store.outbox.counts().open == 0 and not store.outbox.rows()
    reconcile = store.run_job("reconcile")
    assert reconcile.result == "kill_switch" and store.outbox.counts().open == 0
