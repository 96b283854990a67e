"""Head office -> Mosquitto bridge -> store, on real brokers made from the shipped templates.

Two Mosquitto processes on free ports: head office (config/mosquitto/headoffice.conf) and a store
whose broker runs the bridge of config/mosquitto/store-bridge.conf; a second store's broker starts
only after its plans were published. The templates are filled in by string substitution; their
TLS and password blocks are left out (plain brokers on 127.0.0.1), everything else is as shipped.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from label_gateway.broker import BrokerAddress, connect, disconnect, new_client
from label_gateway.embedded_broker import free_port
from label_gateway.plan_channel import ChainTopics, seal_plan
from label_gateway.signing import KeyDirectory, Signer
from pricing.plan.plan_files import read_plan
from pricing.plan.price_plan import PlanLine, PricePlan, SolverStats
from pricing.store.plan_inbox import PlanInbox
from pricing.store.plan_publish import collect_results, plan_bytes, publish_store_plans

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = REPO / "config" / "mosquitto"
PREFIX = "esl"
AT = datetime(2026, 11, 2, 4, tzinfo=UTC)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")  # CI=true: no binary fails, not skips
pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None and not IN_CI, reason="needs the mosquitto binary")


def render(template: Path, values: dict[str, str], blocks: dict[str, str]) -> str:
    """The template with each ``# >>> NAME`` ... ``# <<< NAME`` block replaced by ``blocks[NAME]``
    and every ``@KEY@`` by ``values[KEY]``; fails on a placeholder left over."""
    text = template.read_text(encoding="utf-8")
    for name, replacement in blocks.items():
        text, n = re.subn(rf"# >>> {name}\n.*?# <<< {name}\n", lambda _m, r=replacement: r, text, flags=re.DOTALL)
        assert n >= 1, f"{template.name} has no '{name}' block"
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    assert not left, f"{template.name}: placeholders not filled: {left}"
    return text


@dataclass
class Mosquitto:
    name: str
    address: BrokerAddress
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def _start(name: str, conf: str, workdir: Path, port: int) -> Mosquitto:
    file = workdir / f"{name}.conf"
    file.write_text(conf, encoding="utf-8")
    log = workdir / f"{name}.log"
    process = subprocess.Popen(["mosquitto", "-c", str(file)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    address = BrokerAddress("127.0.0.1", port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"mosquitto {name} exited ({process.returncode}): {log.read_text() if log.exists() else ''}")
        try:
            with socket.create_connection((address.host, port), timeout=0.2):
                return Mosquitto(name, address, process, log)
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError(f"mosquitto {name} does not answer on port {port}")


def start_headoffice(workdir: Path) -> Mosquitto:
    port = free_port()
    (workdir / "ho-data").mkdir()
    conf = render(
        TEMPLATES / "headoffice.conf",
        {"PORT": str(port), "BIND_ADDRESS": "127.0.0.1", "PREFIX": PREFIX,
         "PERSISTENCE_DIR": f"{workdir / 'ho-data'}/", "LOG_DEST": f"file {workdir / 'headoffice.log'}"},
        {"tls": "", "auth": "allow_anonymous true\n"},
    )
    return _start("headoffice", conf, workdir, port)


def start_store(workdir: Path, store: str, headoffice: Mosquitto) -> Mosquitto:
    """A store broker (plain, anonymous, as a test runs it) with the shipped bridge appended."""
    port = free_port()
    base = f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nlog_dest file {workdir / store}.log\n"
    bridge = render(
        TEMPLATES / "store-bridge.conf",
        {"STORE": store, "HEADOFFICE_HOST": headoffice.address.host, "HEADOFFICE_PORT": str(headoffice.address.port),
         "PREFIX": PREFIX},
        {"tls": "", "auth": ""},
    )
    broker = _start(store, base + bridge, workdir, port)
    _wait_bridge_up(broker, store)
    return broker


def _retained(address: BrokerAddress, topic_filter: str, settle_s: float = 0.5) -> dict[str, bytes]:
    """Every retained message under ``topic_filter`` (waits until none has come for ``settle_s``)."""
    got: dict[str, bytes] = {}
    last = [time.monotonic()]

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.retain and message.payload:
            got[message.topic] = bytes(message.payload)
        last[0] = time.monotonic()

    client = new_client("probe")
    client.on_message = on_message
    connect(client, address)
    try:
        client.subscribe(topic_filter, qos=1)
        while time.monotonic() - last[0] < settle_s:
            time.sleep(0.05)
    finally:
        disconnect(client)
    return got


def _wait_bridge_up(broker: Mosquitto, store: str, timeout: float = 10.0) -> None:
    """The bridge's own notification (notifications true): '1' once it is connected to head office."""
    up = threading.Event()

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.payload == b"1":
            up.set()

    client = new_client("bridge-watch")
    client.on_message = on_message
    connect(client, broker.address)
    try:
        client.subscribe(f"$SYS/broker/connection/esl-bridge-{store}/state", qos=1)
        assert up.wait(timeout), f"the bridge of {store} did not connect to head office: {broker.log.read_text()}"
    finally:
        disconnect(client)


def _line(sku: str, old: int, new: int) -> PlanLine:
    return PlanLine(
        sku=sku, name=f"Product {sku}", category="snacks", status="change" if new != old else "keep",
        old_cents=old, new_cents=new, cost_cents=100, units_old=10.0, units_new=9.0,
        profit_old_cents=1000.0, profit_new_cents=1100.0, binding_rule="profit", explanation="best expected profit",
    )


def _plan(store: str, plan_id: str, created: datetime, new: int) -> PricePlan:
    return PricePlan(
        plan_id=plan_id, created_at=created, store=store, currency="EUR", model="chain-model",
        lines=[_line("0001", 250, new), _line("0002", 300, 300)],
        solver=SolverStats(status="OPTIMAL", objective_cents=0.0, bound_cents=0.0, seconds=0.01),
    )


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Mosquitto]]:
    workdir = tmp_path_factory.mktemp("chain-brokers")
    brokers: dict[str, Mosquitto] = {}
    try:
        brokers["headoffice"] = start_headoffice(workdir)
        brokers["store-a"] = start_store(workdir, "store-a", brokers["headoffice"])
        brokers["workdir"] = workdir  # type: ignore[assignment]
        yield brokers
    finally:
        for broker in brokers.values():
            if isinstance(broker, Mosquitto):
                broker.stop()


def test_chain_plans_travel_over_the_bridge_and_results_come_back(
    chain: dict[str, Mosquitto], engine_keys: KeyDirectory, tmp_path: Path
) -> None:
    headoffice, store_a = chain["headoffice"], chain["store-a"]
    workdir: Path = chain["workdir"]  # type: ignore[assignment]
    trusted = engine_keys.trusted()

    # 1. Head office publishes plans for two stores; only store-a's broker is up.
    plans = {"store-a": _plan("store-a", "chain-a-1", AT, 270), "store-b": _plan("store-b", "chain-b-1", AT, 280)}
    published = publish_store_plans(headoffice.address, PREFIX, plans, engine_keys)
    assert {store: info["plan_id"] for store, info in published.items()} == {"store-a": "chain-a-1", "store-b": "chain-b-1"}
    assert published["store-a"]["topic"] == "esl/chain/store-a/plan"
    assert published["store-a"]["plan_bytes"] == len(plan_bytes(plans["store-a"]))
    # A newer plan for store-b, still before its broker exists: it must get this one, not the first.
    later = publish_store_plans(
        headoffice.address, PREFIX, {"store-b": _plan("store-b", "chain-b-2", AT + timedelta(hours=1), 290)},
        engine_keys,
    )
    assert later["store-b"]["plan_id"] == "chain-b-2"

    # 2. Store-a's daemon side, connected to its own broker only, takes its plan (retained there).
    plans_a = tmp_path / "plans-a"
    with PlanInbox(store_a.address, PREFIX, "store-a", trusted, plans_a) as inbox_a:
        assert inbox_a.wait_for(lambda h: any(x.outcome == "accepted" for x in h), 10), inbox_a.handled
        taken = inbox_a.take()
        assert taken is not None and taken.plan_id == "chain-a-1" and taken.new_prices() == {"0001": 270}
        assert read_plan(plans_a / "chain-a-1.json") == plans["store-a"]
        # The store's broker holds its own plan and no other store's.
        on_store = _retained(store_a.address, f"{PREFIX}/chain/#")
        assert list(on_store) == ["esl/chain/store-a/plan"]
        # 3. It reports the outcome; head office sees it.
        inbox_a.report("chain-a-1", "ok", counts={"changes": 1, "pushed_labels": 2, "confirmed": 2})
        results, malformed = collect_results(headoffice.address, PREFIX, expect={"store-a": "chain-a-1"}, timeout=10)
        assert malformed == 0
        assert results["store-a"].result == "ok" and results["store-a"].counts["confirmed"] == 2
        assert inbox_a.take() is None  # applied: nothing pending

        # 4. A forged plan published straight on the store's broker (bypassing head office) is
        # refused, reported, and never written; so is a genuine but older plan replayed there.
        forger = Signer.generate()
        forged_plan = _plan("store-a", "chain-a-evil", AT + timedelta(days=1), 101)
        forged = seal_plan(plan_bytes(forged_plan), store="store-a", plan_id="chain-a-evil", signer=forger)
        old = seal_plan(
            plan_bytes(_plan("store-a", "chain-a-0", AT - timedelta(days=1), 260)), store="store-a",
            plan_id="chain-a-0", signer=engine_keys.signer(), issued_at=AT - timedelta(days=1),
        )
        attacker = new_client("attacker")
        connect(attacker, store_a.address)
        try:
            attacker.publish(ChainTopics(PREFIX).plan("store-a"), forged.to_json(), qos=1).wait_for_publish(5)
            assert inbox_a.wait_for(lambda h: any(x.plan_id == "chain-a-evil" for x in h), 10)
            results, _ = collect_results(headoffice.address, PREFIX, expect={"store-a": "chain-a-evil"}, timeout=10)
            assert results["store-a"].result == "refused"
            assert results["store-a"].reason.startswith("signature: unknown key")
            attacker.publish(ChainTopics(PREFIX).plan("store-a"), old.to_json(), qos=1).wait_for_publish(5)
            assert inbox_a.wait_for(lambda h: any(x.plan_id == "chain-a-0" for x in h), 10)
        finally:
            disconnect(attacker)
        outcomes = {h.plan_id: (h.outcome, h.reason.split(":")[0]) for h in inbox_a.handled}
        assert outcomes["chain-a-evil"] == ("refused", "signature")
        assert outcomes["chain-a-0"] == ("refused", "replay")
        assert not (plans_a / "chain-a-evil.json").exists() and not (plans_a / "chain-a-0.json").exists()
        assert inbox_a.take() is None

    # 5. Store-b's broker starts only now: the bridge brings it the latest plan, retained.
    store_b = start_store(workdir, "store-b", headoffice)
    try:
        plans_b = tmp_path / "plans-b"
        with PlanInbox(store_b.address, PREFIX, "store-b", trusted, plans_b) as inbox_b:
            assert inbox_b.wait_for(lambda h: any(x.outcome == "accepted" for x in h), 10), inbox_b.handled
            taken_b = inbox_b.take()
            assert taken_b is not None and taken_b.plan_id == "chain-b-2" and taken_b.new_prices() == {"0001": 290}
            assert [h.plan_id for h in inbox_b.handled if h.outcome == "accepted"] == ["chain-b-2"]
            assert list(_retained(store_b.address, f"{PREFIX}/chain/#")) == ["esl/chain/store-b/plan"]
            inbox_b.report("chain-b-2", "parked", "kill switch on")
        results, _ = collect_results(headoffice.address, PREFIX, expect={"store-b": "chain-b-2"}, timeout=10)
        assert results["store-b"].result == "parked"
        assert results["store-a"].result == "refused"  # store-a's latest answer is still there (retained)
    finally:
        store_b.stop()
