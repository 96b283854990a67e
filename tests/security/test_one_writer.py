"""Attacks on the engine's one-writer rule and on the state the broker retains (issue 16, "trust").

- Two pushes on one store's outbox at once (two `esl-pricing apply` processes on one database):
  without a lock the older push wrote its price back over the newer one, so labels showed the
  older price while the outbox said the newer one was confirmed. Now the second push waits for
  the first, and every label ends at the newer price, as the outbox says.
- Two daemons on one database: the second exits at start with one line.
- The outbox itself: a push's write-behind never overwrites a newer desired state.
- A forged retained desired state (an anonymous publish over the engine's retained topic) is found
  by `outbox reconcile`'s read-back, and the engine's own state is published over it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from label_gateway.outbox import LabelUpdate, Outbox
from label_gateway.protocol import DesiredState, Topics, parse
from label_gateway.readback import read_back, read_retained
from pricing.cli.app import app
from pricing.core.database import open_engine
from pricing.plan.price_plan import PlanLine, PricePlan, SolverStats
from pricing.store.engine_state import EngineFlags
from pricing.store.event_log import EventLog
from pricing.store.scheduler import jobs_table
from simulator.gateways import GatewayOptions, SimulatedGateways

pytestmark = pytest.mark.security

LABELS = 200
OLD, PRICE_A, PRICE_B = 399, 413, 414


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ESL_DATABASE"}
    return env | {"PYTHONUNBUFFERED": "1"}


def _plan(directory: Path, store: str, plan_id: str, new_cents: int, skus: list[str]) -> Path:
    lines = [
        PlanLine(
            sku=sku, name=f"Product {sku}", category="snacks", status="change", old_cents=OLD, new_cents=new_cents,
            cost_cents=100, units_old=10.0, units_new=9.0, profit_old_cents=1000.0, profit_new_cents=1100.0,
            binding_rule="profit", explanation="best expected profit",
        )
        for sku in skus
    ]
    plan = PricePlan(
        plan_id=plan_id, created_at=datetime(2026, 11, 1, 6, tzinfo=UTC), store=store, currency="EUR", model="models",
        lines=lines, solver=SolverStats(status="OPTIMAL", objective_cents=0.0, bound_cents=0.0, seconds=0.01),
    )
    return plan.write(directory)[0]


def _labels_csv(directory: Path, store: str, n: int) -> list[tuple[str, str, str]]:
    directory.mkdir(parents=True, exist_ok=True)
    rows = [(f"L{i:04d}", f"gw-{i % 2}", f"{i:04d}") for i in range(n)]
    (directory / "labels.csv").write_text(
        "label_id,store,gateway,sku,tag_type\n" + "".join(f"{label},{store},{gw},{sku},2.9\n" for label, gw, sku in rows)
    )
    return rows


def _apply(plan: Path, data: Path, db: str, broker: str, prefix: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "pricing.cli", "apply", str(plan), "--data", str(data), "--db", db,
         "--broker", broker, "--prefix", prefix, "--json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(),
    )


def _wait_for(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def _one_line(stderr: str) -> bool:
    return len([line for line in stderr.splitlines() if line.strip()]) == 1 and "Traceback" not in stderr


# -- two pushes at once ------------------------------------------------------------------------------


def test_two_concurrent_pushes_leave_every_label_at_the_newer_price(
    database_url: str, mqtt_broker: Any, tmp_path: Path
) -> None:
    """Plan A (4.13) and plan B (4.14) pushed by two processes, B while A is on its way. A third
    push that will not wait is turned away with one line naming A's process."""
    store = f"sec-{uuid.uuid4().hex[:8]}"
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    labels = _labels_csv(tmp_path / "data", store, LABELS)
    skus = [sku for _, _, sku in labels]
    plan_a = _plan(tmp_path / "plans", store, "plan-20261101T060000Z-aaaaaa", PRICE_A, skus)
    plan_b = _plan(tmp_path / "plans", store, "plan-20261101T060001Z-bbbbbb", PRICE_B, skus)
    engine = open_engine(database_url)
    outbox = Outbox(engine, store)
    url = mqtt_broker.address.url
    # Each label's new image takes its gateway's radio 50 ms: one push lasts about 5 s (a command starts in ~2 s).
    options = GatewayOptions(radio_seconds_per_update=0.05)
    with SimulatedGateways(mqtt_broker.address, Topics(store, prefix=prefix), labels, options=options) as gateways:
        first = _apply(plan_a, tmp_path / "data", database_url, url, prefix)
        try:
            # A has enqueued (it holds the lock from before enqueue until its acks are in).
            assert _wait_for(lambda: any(r.correlation.endswith("aaaaaa") for r in outbox.rows()), 60), first.stderr
            second = _apply(plan_b, tmp_path / "data", database_url, url, prefix)
            impatient = _apply(plan_b, tmp_path / "data", database_url, url, prefix, "--lock-wait", "0")
            _, err_impatient = impatient.communicate(timeout=60)
            a_running_when_c_ended = first.poll() is None
            out_a, err_a = first.communicate(timeout=120)
            out_b, err_b = second.communicate(timeout=120)
        finally:
            for proc in (first, second, impatient):
                if proc.poll() is None:
                    proc.kill()
        shown = gateways.displayed()

    assert a_running_when_c_ended, "push A ended before the others asked for the lock: the pushes did not overlap"
    assert impatient.returncode == 1 and _one_line(err_impatient), err_impatient
    assert f"outbox of store {store} is busy: another push holds its lock (pid {first.pid} since" in err_impatient
    assert first.returncode == 0, err_a
    assert second.returncode == 0, err_b
    assert json.loads(out_a.strip().splitlines()[-1])["labels_confirmed"] == LABELS
    assert json.loads(out_b.strip().splitlines()[-1])["labels_confirmed"] == LABELS

    rows = outbox.rows()
    assert len(rows) == LABELS
    assert {(r.price_cents, r.state, r.confirmed_price_cents, r.confirmed_version == r.version) for r in rows} == {
        (PRICE_B, "confirmed", PRICE_B, True)
    }
    assert {label: s.price_cents for label, s in shown.items()} == {label: PRICE_B for label, _, _ in labels}
    # The pushes did not interleave: all of B's labels were queued after all of A's acks.
    events = EventLog(engine, store).read()
    last_a_ack = max(e.seq for e in events if e.kind == "acked" and e.correlation.endswith("aaaaaa"))
    first_b_push = min(e.seq for e in events if e.kind == "pushed" and e.correlation.endswith("bbbbbb"))
    assert last_a_ack < first_b_push


def test_an_older_push_never_writes_over_a_newer_desired_state(database_url: str) -> None:
    """The outbox's own guard: a run that loaded version A saves its outcome after plan B was
    enqueued; B's desired state stays, only rows still at the loaded state are written."""
    outbox = Outbox.open(database_url, f"sec-{uuid.uuid4().hex[:8]}")
    outbox.enqueue([LabelUpdate(f"L{i}", "gw-0", f"{i:04d}", PRICE_A, "EUR", "plan-a") for i in range(3)], at_us=1_000)
    loaded = outbox.open_rows()  # what push A's delivery run holds in memory
    outbox.enqueue([LabelUpdate("L0", "gw-0", "0000", PRICE_B, "EUR", "plan-b")], at_us=2_000)  # push B, meanwhile
    outbox.save([
        replace(r, state="confirmed", attempts=1, confirmed_version=r.version, confirmed_price_cents=r.price_cents,
                confirmed_hash=r.content_hash)
        for r in loaded
    ])
    rows = {r.label_id: r for r in outbox.rows()}
    assert (rows["L0"].version, rows["L0"].price_cents, rows["L0"].correlation, rows["L0"].state) == (
        2_000, PRICE_B, "plan-b", "pending"
    )
    assert rows["L0"].confirmed_version is None
    assert all(rows[f"L{i}"].state == "confirmed" and rows[f"L{i}"].price_cents == PRICE_A for i in (1, 2))


# -- two daemons ---------------------------------------------------------------------------------------


def _daemon_config(directory: Path, database: str, broker: str) -> tuple[Path, str, str]:
    store, prefix = f"sec-{uuid.uuid4().hex[:6]}", f"test-{uuid.uuid4().hex[:10]}"
    config = {
        "store": store, "database": database, "data_dir": "data", "rules": "rules.yaml", "model_dir": "models",
        "plans_dir": "plans", "broker": broker, "prefix": prefix, "calendar": {"timezone": "Europe/Berlin"},
        "delivery": {"ack_timeout_s": 30, "max_attempts": 3, "deadline_s": 120},
        "jobs": [{"id": "reconcile", "kind": "reconcile", "every": "15m"}], "metrics": {"enabled": False},
    }
    path = directory / "engine.yaml"
    path.write_text(json.dumps(config))
    (directory / "data").mkdir(exist_ok=True)  # the daemon refuses a data_dir or rules file that is not there
    (directory / "rules.yaml").write_text("currency: EUR\n")
    return path, store, prefix


def test_a_second_daemon_on_the_same_database_exits_with_one_line(
    database_url: str, mqtt_broker: Any, tmp_path: Path
) -> None:
    config, store, _ = _daemon_config(tmp_path, database_url, mqtt_broker.address.url)
    engine = open_engine(database_url)
    log = EventLog(engine, store)
    daemon = [sys.executable, "-m", "pricing.cli", "daemon", "--config", str(config)]
    first = subprocess.Popen(daemon, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    try:
        assert _wait_for(lambda: log.read(kinds=["daemon_started"]), 60), "the first daemon did not start"
        second = subprocess.run(daemon, capture_output=True, text=True, env=_env(), timeout=60)
        assert second.returncode == 1, second.stderr
        assert _one_line(second.stderr), second.stderr
        assert f"store {store} already has a daemon on this database (pid {first.pid} since " in second.stderr
        assert first.poll() is None  # the first one runs on
        assert EngineFlags(engine, store).get("daemon")["pid"] == first.pid  # the second touched nothing
    finally:
        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=60)
    assert first.returncode == 0, stderr
    assert len(log.read(kinds=["daemon_started"])) == 1 and len(log.read(kinds=["daemon_stopped"])) == 1
    with engine.begin() as conn:  # one job table per store: leave none behind in the shared test database
        conn.execute(text(f"DROP TABLE IF EXISTS {jobs_table(store)}"))


# -- forged retained state -------------------------------------------------------------------------------


def _anonymous_publish(mqtt_broker: Any, messages: dict[str, bytes]) -> None:
    """Whoever can reach the broker: no credentials, a client id of its own choosing."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"intruder-{uuid.uuid4().hex[:6]}",
                         protocol=mqtt.MQTTv311)
    client.connect(mqtt_broker.address.host, mqtt_broker.address.port)
    client.loop_start()
    try:
        for info in [client.publish(topic, payload, qos=1, retain=True) for topic, payload in messages.items()]:
            info.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_forged_retained_state_is_found_by_reconcile_and_replaced(
    mqtt_broker: Any, topics: Topics, tmp_path: Path
) -> None:
    store, db = topics.store, str(tmp_path / "engine.db")
    labels = _labels_csv(tmp_path / "data", store, 30)
    plan = _plan(tmp_path / "plans", store, "plan-20261101T060000Z-aaaaaa", PRICE_A, [sku for _, _, sku in labels])
    runner = CliRunner()
    common = ["--db", db, "--broker", mqtt_broker.address.url, "--prefix", topics.prefix]
    with SimulatedGateways(mqtt_broker.address, topics, labels):
        applied = runner.invoke(app, ["apply", str(plan), "--data", str(tmp_path / "data"), *common])
        assert applied.exit_code == 0, applied.output
        outbox = Outbox(open_engine(db), store)
        rows = {r.label_id: r for r in outbox.rows()}
        forged, garbled, cleared = rows["L0003"], rows["L0004"], rows["L0005"]
        stray = topics.desired("gw-0", "L9999")
        _anonymous_publish(mqtt_broker, {
            topics.desired(forged.gateway, forged.label_id): DesiredState.build(
                label=forged.label_id, sku=forged.sku, version=forged.version + 1_000_000, price_cents=1,
                currency="EUR", correlation="intruder",
            ).to_json(),
            topics.desired(garbled.gateway, garbled.label_id): b'{"v": 1, "price": "0.01"}',
            topics.desired(cleared.gateway, cleared.label_id): b"",
            stray: b'{"v": 1, "label": "L9999"}',
        })
        time.sleep(0.3)
        # The outbox alone cannot see it: its desired and confirmed columns still agree.
        assert all(r.state == "confirmed" and r.confirmed_version == r.version for r in outbox.rows())
        reconciled = runner.invoke(
            app, ["outbox", "reconcile", *common, "--json", "--clear-unknown", "--ack-timeout", "2"]
        )
    # The label that took the forged state is the label's own business ("reset the label"); the
    # engine's part is to find the forgery and publish its own state over it.
    assert reconciled.exit_code in (0, 1), reconciled.output
    summary = json.loads(reconciled.stdout.strip().splitlines()[-1])
    assert summary["readback_differing"] == 3
    assert summary["readback_reasons"] == {"missing": 1, "unparsable": 1, "price": 1}
    assert (summary["readback_unknown"], summary["readback_cleared"]) == (1, 1)
    assert "3 differed from the outbox" in reconciled.stderr and "label L0003" in reconciled.stderr

    after = {r.label_id: r for r in outbox.rows()}
    assert {r.price_cents for r in after.values()} == {PRICE_A}
    assert after["L0004"].state == after["L0005"].state == "confirmed"
    wanted = [topics.desired(r.gateway, r.label_id) for r in (forged, garbled, cleared)]
    retained = read_retained(mqtt_broker.address, topics, gateways=[], expected=[*wanted, stray], whole_store=False)
    assert stray not in retained
    for topic, row in zip(wanted, (forged, garbled, cleared), strict=True):
        state = parse(DesiredState, retained[topic])
        now = after[row.label_id]
        assert (state.version, state.content_hash, state.price_cents, state.sku) == (
            now.version, now.content_hash, PRICE_A, now.sku
        )
    again = read_back(mqtt_broker.address, topics, outbox)
    assert (again.differing, again.unknown, again.checked) == ([], [], 30)
