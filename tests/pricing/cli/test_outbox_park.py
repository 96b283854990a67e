"""`esl-pricing apply` parks on SIGTERM like the daemon: what is not acknowledged stays in the
outbox, one line says so, the exit code is 1 (not 143), and `outbox resume` finishes the push.
The JSON of every push command says "result": ok | failed | parked."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from label_gateway.broker import clear_retained, connect, disconnect, new_client
from label_gateway.outbox import Outbox
from label_gateway.protocol import QOS, GatewayStatus, Topics
from label_gateway.signing import KeyDirectory
from pricing.core.database import open_engine
from pricing.plan.price_plan import PlanLine
from simulator.gateways import GatewayOptions, SimulatedGateways

pytestmark = pytest.mark.integration

SKUS = [f"{i:04d}" for i in range(1, 13)]


@pytest.fixture
def prefix(mqtt_broker: Any) -> Any:
    value = f"test-{uuid.uuid4().hex[:10]}"
    yield value
    clear_retained(mqtt_broker.address, f"{value}/#", settle_s=0.3)


def _plan(tmp_path: Path, plan_file: Callable[..., Path], make_line: Callable[..., PlanLine]) -> Path:
    return plan_file(tmp_path / "plans", [make_line(sku, "change", 200, 210 + i) for i, sku in enumerate(SKUS)])


def _online(address: Any, topics: Topics, gateway: str) -> None:
    """A retained `online` status for a gateway that will never answer (so no `no gateway` line)."""
    client = new_client("test-online")
    connect(client, address)
    try:
        client.publish(topics.status(gateway), GatewayStatus(gateway=gateway, state="online").to_json(),
                       qos=QOS, retain=True).wait_for_publish(5)
    finally:
        disconnect(client)


def test_apply_parks_on_sigterm_and_outbox_resume_finishes(
    tmp_path: Path, mqtt_broker: Any, prefix: str, engine_keys: KeyDirectory,
    plan_file: Callable[..., Path], make_line: Callable[..., PlanLine], labels_dir: Callable[..., Path],
) -> None:
    topics = Topics("store-001", prefix=prefix)
    _online(mqtt_broker.address, topics, "gw-1")
    plan = _plan(tmp_path, plan_file, make_line)
    data = labels_dir(tmp_path / "data", SKUS)
    db = tmp_path / "engine.db"
    broker = mqtt_broker.address.url
    proc = subprocess.Popen(
        [sys.executable, "-m", "pricing.cli", "apply", str(plan), "--data", str(data), "--db", str(db),
         "--broker", broker, "--prefix", prefix, "--ack-timeout", "60", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ | {"PYTHONUNBUFFERED": "1"},
    )
    deadline = time.monotonic() + 30
    queued = 0
    while time.monotonic() < deadline and queued < len(SKUS) and proc.poll() is None:
        time.sleep(0.1)
        if db.exists():
            try:
                queued = len(Outbox(open_engine(db), "store-001").rows())
            except Exception:  # noqa: BLE001 (the database is still being created)
                queued = 0
    assert queued == len(SKUS), proc.stderr.read() if proc.poll() is not None else "nothing queued"
    time.sleep(1.5)  # published by now, waiting for acks that never come
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    parked = [line for line in stderr.splitlines() if "parked" in line]
    expected = (
        f"SIGTERM: push parked after 0 confirmed; {len(SKUS)} labels stay in the outbox "
        "(esl-pricing outbox resume finishes the push)"
    )
    assert parked == [expected], stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["result"] == "parked" and summary["waiting"] == len(SKUS)
    assert Outbox(open_engine(db), "store-001").counts().open == len(SKUS)

    labels = [(f"L{i:04d}", "gw-1", sku) for i, sku in enumerate(SKUS)]
    options = GatewayOptions(trusted_keys=engine_keys.trusted())
    with SimulatedGateways(mqtt_broker.address, topics, labels, options=options):
        resumed = subprocess.run(
            [sys.executable, "-m", "pricing.cli", "outbox", "resume", "--db", str(db), "--broker", broker,
             "--prefix", prefix, "--json"],
            capture_output=True, text=True, timeout=60, check=False,
        )
    assert resumed.returncode == 0, resumed.stderr
    after = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert after["result"] == "ok" and after["confirmed"] == len(SKUS)


def test_apply_json_says_failed_when_labels_failed(
    tmp_path: Path, mqtt_broker: Any, prefix: str, run: Callable[..., tuple[int, str, str]],
    plan_file: Callable[..., Path], make_line: Callable[..., PlanLine], labels_dir: Callable[..., Path],
) -> None:
    plan = _plan(tmp_path, plan_file, make_line)
    data = labels_dir(tmp_path / "data", SKUS)
    code, stdout, stderr = run(
        "apply", str(plan), "--data", str(data), "--db", str(tmp_path / "engine.db"),
        "--broker", mqtt_broker.address.url, "--prefix", prefix, "--ack-timeout", "1.5", "--max-attempts", "1",
        "--json",
    )
    assert code == 1, stderr
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary["result"] == "failed" and summary["labels_failed"] == len(SKUS)
    assert "no gateway of store store-001 is online" in stderr  # said before the acks timed out
