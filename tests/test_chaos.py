"""Chaos: delivery through a real Mosquitto while things break on purpose.

10,000 labels on 10 gateways; the simulated radio drops 5% of updates and acks; malformed
messages are thrown at the ack and status topics; one gateway drops off and comes back; the
engine process (which signs every desired state; the labels verify each one) is killed with SIGKILL mid-push and restarted (with a newer plan recorded
meanwhile); the broker is killed and restarted mid-push. Afterwards every label shows the price
the outbox (the price book of label prices) holds, every label is confirmed, and no label ever
showed an older version after a newer one.

The broker here is a Mosquitto of the test's own (started from the installed binary on a free
port) because the test restarts it; with CI=true a missing binary fails the run.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Self

import pytest

from label_gateway.broker import BrokerAddress, connect, disconnect, new_client
from label_gateway.embedded_broker import free_port
from label_gateway.outbox import LabelUpdate, Outbox
from label_gateway.protocol import QOS, Topics
from label_gateway.signing import KeyDirectory
from simulator.gateways import GatewayOptions, SimulatedGateways

pytestmark = [pytest.mark.chaos, pytest.mark.integration]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
STORE = "store-chaos"


class PrivateMosquitto:
    """A Mosquitto process of our own that the test may kill and start again on the same port."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="chaos-mosquitto-"))
        self.conf = self.workdir / "mosquitto.conf"
        # No persistence: a restart also forgets every retained desired state, the harder case.
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> BrokerAddress:
        return BrokerAddress("127.0.0.1", self.port)

    def start(self) -> None:
        self.proc = subprocess.Popen([self.binary, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                client = new_client("probe")
                connect(client, self.address, timeout=1)
                disconnect(client)
                return
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.05)
        raise RuntimeError(f"mosquitto did not start on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.workdir, ignore_errors=True)


@pytest.fixture
def mosquitto() -> Iterator[PrivateMosquitto]:
    binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
    if binary is None:
        if IN_CI:
            pytest.fail("CI=true: the chaos tests need the mosquitto binary (apt-get install mosquitto)")
        pytest.skip("no mosquitto binary: the chaos tests restart their own broker")
    broker = PrivateMosquitto(binary)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


def _labels(n: int, gateways: int) -> list[tuple[str, str, str]]:
    return [(f"L{i:06d}", f"gw-{i % gateways + 1:02d}", f"{i:06d}") for i in range(n)]


def _plan(rows: list[tuple[str, str, str]], seed: int) -> dict[str, int]:
    rng = random.Random(seed)
    return {label: rng.randint(49, 9_999) for label, _, _ in rows}


def _enqueue(outbox: Outbox, rows: list[tuple[str, str, str]], prices: dict[str, int], correlation: str) -> None:
    outbox.enqueue([
        LabelUpdate(label, gateway, sku, prices[label], "EUR", correlation)
        for label, gateway, sku in rows if label in prices
    ])


def _engine(db: Path, broker: BrokerAddress, prefix: str) -> subprocess.Popen[str]:
    command = [
        sys.executable, "-m", "pricing.cli", "outbox", "resume", "--db", str(db), "--store", STORE,
        "--broker", broker.url, "--prefix", prefix, "--ack-timeout", "1.5", "--max-attempts", "50", "--json",
    ]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {seconds}s waiting for {what}")
        time.sleep(0.05)


class Noise:
    """Publishes malformed messages on the ack and status topics until stopped."""

    PAYLOADS = (b"{garbage", b"\xff\xfe", b"[]", b'{"v":1,"gateway":"gw-01","acks":[{"label":"L1"}]}',
                b'{"v":1,"gateway":"gw-99","state":"offline"}', b'{"v":1,"gateway":"gw-01","state":"maybe"}')

    def __init__(self, broker: PrivateMosquitto, topics: Topics) -> None:
        self.broker, self.topics = broker, topics
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.sent = 0

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                client = new_client("noise")
                connect(client, self.broker.address, timeout=2)
            except Exception:  # noqa: BLE001 - the broker is being restarted
                self.stop.wait(0.2)
                continue
            try:
                while not self.stop.is_set() and client.is_connected():
                    payload = self.PAYLOADS[self.sent % len(self.PAYLOADS)]
                    topic = self.topics.ack("gw-01") if self.sent % 2 == 0 else self.topics.status("gw-01")
                    client.publish(topic, payload, qos=QOS)
                    self.sent += 1
                    self.stop.wait(0.05)
            finally:
                disconnect(client)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def _finish(engine: subprocess.Popen[str], seconds: float) -> dict[str, object]:
    out, err = engine.communicate(timeout=seconds)
    assert engine.returncode == 0, f"engine exited {engine.returncode}: {err[-2000:]}"
    return json.loads(out.strip().splitlines()[-1])


def _assert_every_label_right(sim: SimulatedGateways, outbox: Outbox, expected: dict[str, int]) -> None:
    rows = {row.label_id: row for row in outbox.rows()}
    assert {label: row.price_cents for label, row in rows.items()} == expected, "the outbox lost a change"
    not_confirmed = [label for label, row in rows.items() if row.state != "confirmed"]
    assert not not_confirmed, f"{len(not_confirmed)} labels not confirmed, e.g. {not_confirmed[:5]}"
    shown = sim.displayed()
    wrong = [label for label, cents in expected.items() if label not in shown or shown[label].price_cents != cents]
    assert not wrong, f"{len(wrong)} labels show another price than the price book, e.g. {wrong[:5]}"
    assert all(shown[label].version == rows[label].version for label in expected)
    history = sim.history()
    went_back = [label for label, entries in history.items()
                 if any(b.version <= a.version for a, b in pairwise(entries))]
    assert not went_back, f"labels showed an older version after a newer one: {went_back[:5]}"
    assert sim.regressions() == 0


def test_ten_thousand_labels_survive_loss_outage_engine_kill_and_broker_restart(
    mosquitto: PrivateMosquitto, tmp_path: Path, engine_keys: KeyDirectory
) -> None:
    rows = _labels(10_000, 10)
    topics = Topics(STORE, prefix="chaos")
    db = tmp_path / "engine.db"
    outbox = Outbox.open(db, STORE)
    plan_a = _plan(rows, 1)
    _enqueue(outbox, rows, plan_a, "plan-a")
    options = GatewayOptions(loss_rate=0.025, ack_loss_rate=0.025, seed=3, trusted_keys=engine_keys.trusted())
    with SimulatedGateways(mosquitto.address, topics, rows, options=options) as sim, Noise(mosquitto, topics) as noise:
        def shown() -> int:
            return len(sim.displayed())

        engine = _engine(db, mosquitto.address, "chaos")
        _wait_for(lambda: shown() >= 1_500, 60, "the first labels")
        sim.gateway("gw-03").go_offline()
        _wait_for(lambda: shown() >= 4_000, 60, "more labels")
        engine.send_signal(signal.SIGKILL)
        engine.wait(10)
        # A newer plan for a third of the labels is recorded while the engine is down.
        plan_b = {label: cents + 1 for label, cents in _plan(rows[::3], 2).items()}
        _enqueue(outbox, rows, plan_b, "plan-b")
        engine = _engine(db, mosquitto.address, "chaos")
        _wait_for(lambda: shown() >= 6_500, 60, "labels after the engine restart")
        mosquitto.kill()
        time.sleep(1.0)
        mosquitto.start()
        time.sleep(2.0)
        sim.gateway("gw-03").come_online()
        summary = _finish(engine, 180)
        assert noise.sent > 0
    expected = plan_a | plan_b
    _assert_every_label_right(sim, outbox, expected)
    assert summary["confirmed"] + summary["scheduled"] >= 1, summary
    assert summary["failed"] == 0 and summary["waiting"] == 0, summary
    assert summary["retries"] > 0 and summary["reconnects"] >= 1, summary
    assert summary["malformed_acks"] > 0 and summary["malformed_status"] > 0, summary


def test_radio_loss_alone_is_retried_until_every_label_confirms(
    mosquitto: PrivateMosquitto, tmp_path: Path, engine_keys: KeyDirectory
) -> None:
    rows = _labels(2_000, 4)
    topics = Topics(STORE, prefix="loss")
    outbox = Outbox.open(tmp_path / "engine.db", STORE)
    prices = _plan(rows, 5)
    _enqueue(outbox, rows, prices, "plan")
    options = GatewayOptions(loss_rate=0.05, ack_loss_rate=0.05, seed=9, trusted_keys=engine_keys.trusted())
    with SimulatedGateways(mosquitto.address, topics, rows, options=options) as sim:
        summary = _finish(_engine(tmp_path / "engine.db", mosquitto.address, "loss"), 120)
    _assert_every_label_right(sim, outbox, prices)
    assert summary["retries"] >= 100, summary  # ~10% of 2,000 lost the first time


def test_gateway_offline_longer_than_the_push_is_caught_up_by_reconcile(
    mosquitto: PrivateMosquitto, tmp_path: Path, engine_keys: KeyDirectory
) -> None:
    rows = _labels(1_000, 2)
    topics = Topics(STORE, prefix="offline")
    db = tmp_path / "engine.db"
    outbox = Outbox.open(db, STORE)
    prices = _plan(rows, 6)
    _enqueue(outbox, rows, prices, "plan")
    with SimulatedGateways(mosquitto.address, topics, rows, options=GatewayOptions(trusted_keys=engine_keys.trusted())) as sim:
        sim.gateway("gw-02").go_offline()
        command = [sys.executable, "-m", "pricing.cli", "outbox", "resume", "--db", str(db), "--store", STORE,
                   "--broker", mosquitto.address.url, "--prefix", "offline", "--deadline", "3", "--json"]
        first = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert first.returncode == 1, first.stderr  # labels still waiting
        summary = json.loads(first.stdout.strip().splitlines()[-1])
        assert summary["waiting"] == 500 and summary["gateways_offline"] == ["gw-02"], summary
        assert "still waiting" in first.stderr
        sim.gateway("gw-02").come_online()
        reconcile = [c if c != "resume" else "reconcile" for c in command if c not in ("--deadline", "3")]
        second = subprocess.run(reconcile, capture_output=True, text=True, timeout=60, check=False)
        assert second.returncode == 0, second.stderr
    _assert_every_label_right(sim, outbox, prices)
