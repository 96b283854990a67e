"""Push throughput against the broker's raw ceiling, in one run.

1. Ceiling: a bare paho QoS 1 publisher (this process) -> the broker -> a bare paho subscriber (a
   second process), N messages the size of a real desired state, timed from the first publish to
   the last message received. Measured before and after the engine; the higher one is used.
2. Engine: the simulator's gateways run in a second process (`esl-pricing simulate run`, fast
   mode); this process records N changed prices in a fresh outbox (SQLite) and delivers them until
   every label has acknowledged, timed from the enqueue to the last ack. Run twice per round, in
   alternating order: signed (the engine signs every desired state, the simulated labels hold the
   public key and verify each one: what ships) and unsigned (neither), so the cost of signing is
   a ratio measured in one run.
3. Lost: labels whose displayed price (the simulator's state file after it stops) is not the price
   the outbox holds, plus labels the engine did not confirm.

    python benchmarks/push_bench.py --labels 20000 --json [--rounds 3]

Last stdout line, JSON: labels, confirmed, lost, engine_per_s (signed), ceiling_per_s, ratio,
unsigned_per_s, signing_ratio (signed / unsigned; medians over the rounds) (+ details).
Bars against Mosquitto: lost == 0, ratio >= 0.6, signing_ratio >= 0.85.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt

from label_gateway.broker import (
    BrokerAddress,
    broker_version,
    clear_retained,
    connect,
    disconnect,
)
from label_gateway.delivery import DeliverySettings, LabelDelivery
from label_gateway.outbox import LabelUpdate, Outbox
from label_gateway.protocol import DesiredState, Topics
from label_gateway.signing import KeyDirectory, Signer
from simulator.scenario import load_scenario

STORE = "bench"


def sample_payload() -> bytes:
    return DesiredState.build(
        label="L000123", sku="000123", version=time.time_ns() // 1000, price_cents=299, currency="EUR",
        correlation="plan-20261122T140000Z-1a2b3c",
    ).to_json()


def bare_client() -> mqtt.Client:
    """paho as it comes (MQTT 3.1.1, its default window of 20 QoS 1 messages in flight). Measured
    here: 12.8k msg/s with the default window, 8.9k/s with 1000 (paho rescans its queue on every
    PUBACK), and an unbounded window loses messages (Mosquitto's max_queued_messages)."""
    return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"ceiling-{uuid.uuid4().hex[:8]}",
                       protocol=mqtt.MQTTv311)


def _ceiling_subscriber(address: BrokerAddress, topic: str, n: int, ready: mp.Event, out: mp.Queue) -> None:
    client = bare_client()
    received = 0
    last = 0.0
    done = threading.Event()

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        nonlocal received, last
        received += 1
        last = time.time()
        if received == n:
            done.set()

    client.on_message = on_message
    client.on_subscribe = lambda *args: ready.set()
    connect(client, address)
    client.subscribe(f"{topic}/#", qos=1)
    # Without flow control Mosquitto may drop messages for a subscriber that falls behind: stop
    # when all arrived or nothing has for 2 s, and report how many arrived.
    while not done.wait(0.5):
        if last and time.time() - last > 2.0:
            break
    out.put((received, last))
    disconnect(client)


def measure_ceiling(address: BrokerAddress, n: int) -> tuple[float, int]:
    """Messages per second through a bare publisher -> broker -> subscriber, and how many were lost."""
    topic = f"ceiling-{uuid.uuid4().hex[:8]}"
    payload = sample_payload()
    ready, out = mp.Event(), mp.Queue()
    sub = mp.Process(target=_ceiling_subscriber, args=(address, topic, n, ready, out), daemon=True)
    sub.start()
    if not ready.wait(15):
        raise SystemExit("ceiling subscriber did not subscribe")
    client = bare_client()
    connect(client, address)
    started = time.time()
    for i in range(n):
        client.publish(f"{topic}/gw/label/L{i}/desired", payload, qos=1)
    received, last = out.get(timeout=600)
    sub.join(10)
    disconnect(client)
    if not received:
        raise SystemExit("ceiling subscriber received nothing")
    return received / (last - started), n - received


def _cpu_seconds() -> float:
    usage = os.times()
    return usage.user + usage.system


def _process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of another process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_scenario(directory: Path, labels: int, gateways: int) -> Path:
    per_gateway = -(-labels // gateways)
    path = directory / "scenario.yaml"
    path.write_text(
        f"store: {STORE}\nlabels:\n  gateways: {gateways}\n  per_gateway: {per_gateway}\nseed: 1\nfast: true\n",
        encoding="utf-8",
    )
    return path


def start_simulator(scenario: Path, broker: str, prefix: str, state: Path, trust: Path | None) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "pricing.cli", "simulate", "run", "--scenario", str(scenario), "--broker",
               broker, "--prefix", prefix, "--state", str(state), "--json"]
    if trust is not None:
        command += ["--trust", str(trust)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line or not json.loads(line).get("ready"):
        proc.kill()
        raise SystemExit(f"simulator did not become ready: {line!r}")
    return proc


def stop_simulator(proc: subprocess.Popen[str]) -> dict[str, object]:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    lines = [line for line in out.splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else {}


@dataclass
class Push:
    signed: bool
    labels: int
    confirmed: int
    lost: int
    seconds: float
    enqueue_seconds: float
    engine_cpu_us: float
    simulator_cpu_us: float
    sent: int
    retries: int
    forged: int
    simulator: dict[str, object]

    @property
    def per_s(self) -> float:
        return self.labels / self.seconds


def push(
    address: BrokerAddress, broker: str, scenario: Path, work: Path, updates: list[LabelUpdate],
    settings: DeliverySettings, keys: Path | None,
) -> Push:
    """One push of ``updates`` into a fresh outbox, to a fresh simulator, under a fresh prefix."""
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    state_file = work / f"sim-state-{prefix}.json"
    signer: Signer | None = KeyDirectory(keys).signer() if keys is not None else None
    simulator = start_simulator(scenario, broker, prefix, state_file, keys)
    sim_cpu_at_start = _process_cpu_seconds(simulator.pid)
    try:
        outbox = Outbox.open(work / f"engine-{prefix}.db", STORE)
        cpu_before = _cpu_seconds()
        started = time.monotonic()
        outbox.enqueue(updates)
        enqueued = time.monotonic()
        report = LabelDelivery(address, Topics(STORE, prefix=prefix), outbox, settings, signer=signer).run(
            deadline_s=600
        )
        seconds = time.monotonic() - started
        engine_cpu = _cpu_seconds() - cpu_before
        sim_cpu_at_end = _process_cpu_seconds(simulator.pid)
    finally:
        sim_summary = stop_simulator(simulator)
    state = json.loads(state_file.read_text())
    shown = {label: record.get("price_cents") for label, record in state["labels"].items()}
    desired = {row.label_id: row.price_cents for row in outbox.rows()}
    wrong = sum(1 for label, cents in desired.items() if shown.get(label) != cents)
    confirmed = len(report.confirmed)
    clear_retained(address, f"{prefix}/#", settle_s=2.0)
    n = len(updates)
    return Push(
        signed=signer is not None, labels=n, confirmed=confirmed, lost=max(wrong, n - confirmed), seconds=seconds,
        enqueue_seconds=enqueued - started, engine_cpu_us=engine_cpu / n * 1e6,
        simulator_cpu_us=(sim_cpu_at_end - sim_cpu_at_start) / n * 1e6, sent=report.sent, retries=report.retries,
        forged=int(sim_summary.get("forged", 0) or 0),
        simulator={k: sim_summary.get(k) for k in ("applied", "regressions", "malformed", "forged")},
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=int, default=20_000)
    parser.add_argument("--gateways", type=int, default=20)
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883")
    parser.add_argument("--window", type=int, default=DeliverySettings().window_per_gateway)
    parser.add_argument("--max-in-flight", type=int, default=DeliverySettings().max_in_flight)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=1, help="signed and unsigned pushes, alternating; medians")
    parser.add_argument("--json", action="store_true", help="print the JSON result as the last stdout line")
    args = parser.parse_args()

    address = BrokerAddress.parse(args.broker)
    work = Path(tempfile.mkdtemp(prefix="push-bench-"))
    keys = work / "keys"
    KeyDirectory(keys).create()
    scenario_path = write_scenario(work, args.labels, args.gateways)
    rows = load_scenario(scenario_path).label_rows(work)[: args.labels]
    rng = random.Random(args.seed)
    updates = [LabelUpdate(label, gateway, sku, rng.randint(49, 9_999), "EUR", "plan-bench")
               for label, gateway, sku in rows]
    settings = DeliverySettings(window_per_gateway=args.window, max_in_flight=args.max_in_flight, ack_timeout_s=30)

    ceiling_before, lost_before = measure_ceiling(address, len(updates))
    signed: list[Push] = []
    unsigned: list[Push] = []
    for round_number in range(args.rounds):
        order = [keys, None] if round_number % 2 else [None, keys]
        for key_dir in order:
            result = push(address, args.broker, scenario_path, work, updates, settings, key_dir)
            (signed if key_dir is not None else unsigned).append(result)
    ceiling_after, lost_after = measure_ceiling(address, len(updates))

    ceiling = max(ceiling_before, ceiling_after)
    engine_per_s = statistics.median(p.per_s for p in signed)
    unsigned_per_s = statistics.median(p.per_s for p in unsigned)
    lost = max(p.lost for p in signed + unsigned)
    confirmed = min(p.confirmed for p in signed)
    last = signed[-1]
    result = {
        "labels": len(updates),
        "confirmed": confirmed,
        "lost": lost,
        "engine_per_s": round(engine_per_s, 1),
        "unsigned_per_s": round(unsigned_per_s, 1),
        "signing_ratio": round(engine_per_s / unsigned_per_s, 3),
        "signed_per_s_each": [round(p.per_s, 1) for p in signed],
        "unsigned_per_s_each": [round(p.per_s, 1) for p in unsigned],
        "ceiling_per_s": round(ceiling, 1),
        "ratio": round(engine_per_s / ceiling, 3),
        "ceiling_before_per_s": round(ceiling_before, 1),
        "ceiling_after_per_s": round(ceiling_after, 1),
        "ceiling_lost": [lost_before, lost_after],
        "engine_seconds": round(last.seconds, 3),
        "enqueue_seconds": round(last.enqueue_seconds, 3),
        "engine_cpu_us_per_label": round(last.engine_cpu_us, 1),
        "simulator_cpu_us_per_label": round(last.simulator_cpu_us, 1),
        "unsigned_engine_cpu_us_per_label": round(unsigned[-1].engine_cpu_us, 1),
        "unsigned_simulator_cpu_us_per_label": round(unsigned[-1].simulator_cpu_us, 1),
        "sent": last.sent,
        "retries": last.retries,
        "rounds": args.rounds,
        "gateways": args.gateways,
        "window_per_gateway": args.window,
        "max_in_flight": args.max_in_flight,
        "simulator": last.simulator,
        "broker": broker_version(address) or args.broker,
        "cpus": os.cpu_count(),
    }
    print(
        f"ceiling {ceiling:,.0f}/s, engine {engine_per_s:,.0f}/s signed (ratio {result['ratio']}), "
        f"{unsigned_per_s:,.0f}/s unsigned (signing ratio {result['signing_ratio']}), "
        f"{confirmed}/{len(updates)} confirmed, lost {lost}",
        file=sys.stderr,
    )
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0 if lost == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
