"""The label emulator: apply rules, scheduled prices, batteries and losses without a broker (plain
data in, acks out), then batched acks, outages and the state file against a real broker."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from label_gateway.broker import BrokerAddress, connect, disconnect, new_client
from label_gateway.protocol import (
    MAX_ACKS_PER_MESSAGE,
    QOS,
    DesiredState,
    GatewayAcks,
    GatewayStatus,
    LabelAck,
    Topics,
    parse,
    parse_acks,
)
from simulator.gateways import (
    GatewayEmulator,
    GatewayOptions,
    HistoryEntry,
    SimulatedGateways,
    SimulatorError,
    count_regressions,
    load_state,
)

T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def _gateway(options: GatewayOptions | None = None, clock: Callable[[], datetime] | None = None) -> GatewayEmulator:
    labels = {"L1": "0001", "L2": "0002"}
    if clock is None:
        return GatewayEmulator(BrokerAddress("127.0.0.1"), Topics("s"), "gw-01", labels, options=options)
    return GatewayEmulator(BrokerAddress("127.0.0.1"), Topics("s"), "gw-01", labels, options=options, clock=clock)


def _state(
    version: int, cents: int, label: str = "L1", sku: str = "0001", effective_at: datetime | None = None
) -> DesiredState:
    return DesiredState.build(
        label=label, sku=sku, version=version, price_cents=cents, currency="EUR", correlation="p",
        effective_at=effective_at,
    )


def _acks(gateway: GatewayEmulator) -> list[LabelAck]:
    return [LabelAck.model_validate(a) for a in gateway.take_acks()]


# ------------------------------------------------------------------------------------------------
# Apply rules
# ------------------------------------------------------------------------------------------------

updates = st.lists(st.tuples(st.integers(1, 20), st.integers(1, 5000)), min_size=1, max_size=40)


@given(updates)
def test_label_shows_the_highest_version_whatever_the_order(sequence: list[tuple[int, int]]) -> None:
    """QoS 1 may deliver late or twice: the label ends on the newest version, never an older one."""
    gateway = _gateway()
    shown_versions = []
    first_price_of: dict[int, int] = {}
    for version, cents in sequence:
        first_price_of.setdefault(version, cents)
        gateway.apply(_state(version, cents))
        shown_versions.append(gateway.displayed()["L1"].version)
    assert shown_versions == sorted(shown_versions)  # never goes back
    top = max(v for v, _ in sequence)
    final = gateway.displayed()["L1"]
    assert final.version == top and final.price_cents == first_price_of[top]
    assert gateway.regressions() == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 12), st.integers(1, 900), st.integers(-5, 5)), min_size=1, max_size=30))
def test_scheduled_prices_never_go_back_either(sequence: list[tuple[int, int, int]]) -> None:
    """Immediate and scheduled states in any order, with time passing: the shown version only grows."""
    clock = FakeClock()
    gateway = _gateway(clock=clock)
    shown = 0
    for version, cents, offset in sequence:
        effective = clock.now + timedelta(seconds=offset) if offset else None
        gateway.apply(_state(version, cents, effective_at=effective))
        clock.advance(1)
        gateway.tick()
        current = gateway.displayed().get("L1")
        now_shown = current.version if current else 0
        assert now_shown >= shown
        shown = now_shown
    assert gateway.regressions() == 0


def test_a_broken_guard_shows_up_as_regressions(monkeypatch: pytest.MonkeyPatch) -> None:
    """regressions() reads the display history, so it catches a guard that lets old versions through."""
    gateway = _gateway()
    original = GatewayEmulator._apply_locked

    def no_guard(self: GatewayEmulator, state: DesiredState, now: datetime) -> dict[str, object]:
        return self._show(self._states[state.label], state, now)

    gateway.apply(_state(5, 199))
    monkeypatch.setattr(GatewayEmulator, "_apply_locked", no_guard)
    gateway.apply(_state(3, 149))
    monkeypatch.setattr(GatewayEmulator, "_apply_locked", original)
    assert gateway.regressions() == 1
    assert count_regressions([HistoryEntry(5, 1, T0), HistoryEntry(3, 1, T0), HistoryEntry(4, 1, T0)]) == 2


def test_duplicate_is_acknowledged_again_without_refresh() -> None:
    gateway = _gateway()
    assert gateway.apply(_state(3, 199)).status == "displayed"
    again = gateway.apply(_state(3, 199))
    assert again.status == "displayed" and again.shown_version == 3
    assert gateway.counters.applied == 1 and gateway.counters.duplicates == 1


def test_same_content_new_version_costs_no_refresh() -> None:
    gateway = _gateway()
    gateway.apply(_state(3, 199))
    battery = gateway.label("L1").battery_mv
    ack = gateway.apply(_state(4, 199))
    assert ack.status == "unchanged" and gateway.counters.applied == 1
    assert gateway.displayed()["L1"].version == 4
    assert gateway.label("L1").battery_mv == battery and gateway.label("L1").refreshes == 1


def test_older_version_is_stale() -> None:
    gateway = _gateway()
    gateway.apply(_state(5, 199))
    ack = gateway.apply(_state(4, 149))
    assert ack.status == "stale" and ack.shown_version == 5
    assert gateway.displayed()["L1"].price_cents == 199


def test_unknown_label_or_wrong_sku_is_rejected_with_reason() -> None:
    gateway = _gateway()
    unknown = gateway.apply(_state(1, 199, label="L9"))
    assert unknown.status == "rejected" and "no label L9" in (unknown.reason or "")
    wrong = gateway.apply(_state(1, 199, label="L2", sku="0001"))
    assert wrong.status == "rejected" and "another sku" in (wrong.reason or "")
    assert gateway.displayed() == {}


def test_acks_carry_battery_and_content_hash() -> None:
    gateway = _gateway()
    state = _state(1, 250)
    ack = gateway.apply(state)
    assert ack.battery_mv == 2999 and ack.content_hash == state.content_hash and ack.correlation == "p"


# ------------------------------------------------------------------------------------------------
# Scheduled prices (effective_at), with an injected clock
# ------------------------------------------------------------------------------------------------


def test_future_price_is_held_then_shown_at_its_instant() -> None:
    clock = FakeClock()
    gateway = _gateway(clock=clock)
    gateway.apply(_state(1, 199))
    ack = gateway.apply(_state(2, 149, effective_at=T0 + timedelta(minutes=5)))
    assert ack.status == "scheduled" and ack.shown_version == 1
    assert gateway.displayed()["L1"].price_cents == 199
    clock.advance(299)
    assert gateway.tick() == 0 and gateway.take_acks() == []
    clock.advance(1)
    assert gateway.tick() == 1
    shown = gateway.displayed()["L1"]
    assert (shown.version, shown.price_cents, shown.applied_at) == (2, 149, T0 + timedelta(minutes=5))
    [later] = _acks(gateway)
    assert (later.status, later.version, later.shown_version) == ("displayed", 2, 2)


def test_newer_scheduled_price_replaces_the_pending_one() -> None:
    clock = FakeClock()
    gateway = _gateway(clock=clock)
    gateway.apply(_state(2, 149, effective_at=T0 + timedelta(seconds=10)))
    gateway.apply(_state(3, 139, effective_at=T0 + timedelta(seconds=20)))
    older = gateway.apply(_state(2, 149, effective_at=T0 + timedelta(seconds=10)))
    assert older.status == "stale" and "superseded by scheduled version 3" in (older.reason or "")
    clock.advance(15)
    assert gateway.tick() == 0 and "L1" not in gateway.displayed()
    clock.advance(10)
    assert gateway.tick() == 1 and gateway.displayed()["L1"].version == 3


def test_pending_price_older_than_what_is_shown_by_then_is_dropped() -> None:
    clock = FakeClock()
    gateway = _gateway(clock=clock)
    gateway.apply(_state(2, 149, effective_at=T0 + timedelta(seconds=10)))
    assert gateway.apply(_state(5, 129)).status == "displayed"
    clock.advance(30)
    assert gateway.tick() == 0
    assert gateway.displayed()["L1"].version == 5


def test_immediate_older_price_still_shows_until_the_scheduled_one() -> None:
    clock = FakeClock()
    gateway = _gateway(clock=clock)
    gateway.apply(_state(10, 99, effective_at=T0 + timedelta(seconds=60)))
    assert gateway.apply(_state(9, 109)).status == "displayed"
    clock.advance(60)
    assert gateway.tick() == 1 and gateway.displayed()["L1"].version == 10


# ------------------------------------------------------------------------------------------------
# Battery, dead labels, losses
# ------------------------------------------------------------------------------------------------


def test_refreshes_drain_the_battery_until_the_label_dies() -> None:
    options = GatewayOptions(battery_start_mv=2455, battery_per_refresh_mv=5, battery_low_mv=2450, battery_empty_mv=2440)
    gateway = _gateway(options)
    gateway.apply(_state(1, 100))
    assert gateway.battery_counts() == (1, 0)  # 2450 mV: low
    gateway.apply(_state(2, 101))
    assert gateway.battery_counts() == (1, 0)  # 2445 mV
    last = gateway.apply(_state(3, 102))
    assert last.status == "displayed" and last.battery_mv == 2440  # the last refresh it managed
    assert gateway.battery_counts() == (0, 1)
    gone = gateway.apply(_state(4, 103))
    assert gone.status == "unreachable" and "did not answer after 15 attempts" in (gone.reason or "")
    assert gateway.displayed()["L1"].version == 3


def test_dead_labels_by_id_and_by_seeded_rate() -> None:
    gateway = _gateway(GatewayOptions(dead_labels=frozenset({"L2"})))
    assert gateway.apply(_state(1, 100, label="L2", sku="0002")).status == "unreachable"
    assert gateway.counters.unreachable == 1
    labels = {f"L{i}": f"{i:04d}" for i in range(2000)}

    def dead(seed: int) -> set[str]:
        g = GatewayEmulator(BrokerAddress("h"), Topics("s"), "gw", labels, options=GatewayOptions(dead_rate=0.1, seed=seed))
        return {label for label in labels if g.label(label).dead}

    assert dead(1) == dead(1) != dead(2)
    assert 150 < len(dead(1)) < 250


def _payloads(count: int) -> list[bytes]:
    return [_state(v, 100 + v).to_json() for v in range(1, count + 1)]


def test_radio_loss_is_seeded_and_sends_no_ack() -> None:
    def run(seed: int) -> list[int]:
        gateway = _gateway(GatewayOptions(loss_rate=0.3, seed=seed))
        for payload in _payloads(500):
            gateway.receive(payload)
        acked = [a.version for a in _acks(gateway)]
        assert len(acked) + gateway.counters.dropped == 500
        return acked

    first = run(3)
    assert first == run(3) and first != run(4)
    assert 300 < len(first) < 400


def test_lost_acks_still_update_the_label() -> None:
    gateway = _gateway(GatewayOptions(ack_loss_rate=0.5, seed=1))
    for payload in _payloads(200):
        gateway.receive(payload)
    acks = gateway.take_acks()
    assert gateway.counters.applied == 200 and gateway.counters.acks_lost == 200 - len(acks)
    assert 60 < len(acks) < 140
    assert gateway.displayed()["L1"].version == 200


def test_malformed_and_empty_payloads_are_counted_never_fatal() -> None:
    gateway = _gateway()
    for junk in (b"{garbage", b'{"label":"L1","version":1}', _state(1, 100).to_json().replace(b'"2026', b'"x')):
        gateway.receive(junk)
    gateway.receive(b"")  # a cleared retained topic
    gateway.receive(_state(1, 100).to_json(), topic_label="L2")  # payload for another label's topic
    assert gateway.counters.malformed == 4 and gateway.take_acks() == []


def test_ack_buffer_is_one_valid_gateway_acks_batch() -> None:
    gateway = _gateway()
    for payload in _payloads(3):
        gateway.receive(payload)
    acks = gateway.take_acks()
    batch = GatewayAcks(gateway="gw-01", acks=acks).to_json()
    parsed = parse_acks(batch)
    assert parsed.malformed == 0 and [a.version for a in parsed.acks] == [1, 2, 3]


def test_timed_mode_waits_for_the_radio_one_update_at_a_time() -> None:
    gateway = _gateway(GatewayOptions(radio_seconds_per_update=0.5))
    before = time.monotonic()
    gateway.receive(_state(1, 100).to_json())
    gateway.receive(_state(1, 200, label="L2", sku="0002").to_json())
    gateway.receive(_state(9, 100, label="L9").to_json())  # not ours: refused at once, no radio
    after = time.monotonic()
    assert [a.status for a in _acks(gateway)] == ["rejected"]
    assert gateway.run_radio(before + 0.49) == 0 and gateway.displayed() == {}
    assert gateway.run_radio(after + 0.5) == 1
    assert gateway.run_radio(after + 1.0) == 1
    assert set(gateway.displayed()) == {"L1", "L2"}


def test_timed_mode_keeps_one_pending_image_per_label() -> None:
    """Retries wait in their slot, a newer version takes over the slot, known versions need no radio."""
    gateway = _gateway(GatewayOptions(radio_seconds_per_update=0.5))
    gateway.receive(_state(1, 100).to_json())
    gateway.receive(_state(1, 100).to_json())  # the engine retried
    gateway.receive(_state(2, 120).to_json())  # newer, before the radio got to it
    after = time.monotonic()
    assert gateway.run_radio(after + 0.5) == 1 and gateway.run_radio(after + 5) == 0
    assert gateway.displayed()["L1"].version == 2 and gateway.counters.duplicates == 1
    gateway.take_acks()
    gateway.receive(_state(2, 120).to_json())  # already shown: answered at once
    gateway.receive(_state(3, 120).to_json())  # same image: no transfer either
    assert [(a.version, a.status) for a in _acks(gateway)] == [(2, "displayed"), (3, "unchanged")]


def test_timed_mode_waits_for_the_label_check_in() -> None:
    gateway = _gateway(GatewayOptions(checkin_interval_s=40))
    gateway.receive(_state(1, 100).to_json())
    assert gateway.run_radio(time.monotonic()) in (0, 1)  # unless its check-in is right now
    assert gateway.run_radio(time.monotonic() + 40) <= 1
    assert gateway.displayed()["L1"].version == 1


# ------------------------------------------------------------------------------------------------
# Against a real broker
# ------------------------------------------------------------------------------------------------


class Engine:
    """A minimal engine side: publishes retained desired states, collects ack batches and statuses."""

    def __init__(self, address: BrokerAddress, topics: Topics) -> None:
        self.topics = topics
        self.acks: list[LabelAck] = []
        self.batches = 0
        self.status: dict[str, GatewayStatus] = {}
        self._lock = threading.Lock()
        self.client = new_client("test-engine")
        self.client.on_message = self._on_message
        connect(self.client, address)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.subscribe([(topics.ack_filter, QOS), (topics.status_filter, QOS)])
        assert subscribed.wait(5)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if not message.payload:
            return
        with self._lock:
            if message.topic.endswith("/ack"):
                self.acks.extend(parse_acks(message.payload).acks)
                self.batches += 1
            elif message.topic.endswith("/status"):  # amqtt 0.12 now and then sends topics not asked for
                status = parse(GatewayStatus, message.payload)
                self.status[status.gateway] = status

    def publish(self, gateway: str, state: DesiredState) -> None:
        self.client.publish(self.topics.desired(gateway, state.label), state.to_json(), qos=QOS, retain=True)

    def wait_for(self, condition: Callable[[], bool], seconds: float = 10.0) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if condition():
                    return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        disconnect(self.client)


@pytest.fixture
def engine(mqtt_broker, topics: Topics) -> Iterator[Engine]:
    e = Engine(mqtt_broker.address, topics)
    yield e
    e.close()


# 900: the topics fixture clears retained messages through one subscription, which Mosquitto caps
# at max_queued_messages (1000) for a QoS 1 subscriber.
LABELS = [(f"L{i:04d}", f"gw-{i % 2 + 1:02d}", f"{i:06d}") for i in range(900)]


@pytest.mark.integration
def test_acks_arrive_in_batches(mqtt_broker, topics: Topics, engine: Engine) -> None:
    with SimulatedGateways(mqtt_broker.address, topics, LABELS) as sim:
        for i, (label, gateway, sku) in enumerate(LABELS):
            engine.publish(gateway, DesiredState.build(
                label=label, sku=sku, version=7, price_cents=100 + i, currency="EUR", correlation="batch"
            ))
        assert engine.wait_for(lambda: len(engine.acks) >= len(LABELS))
        assert {a.status for a in engine.acks} == {"displayed"}
        assert engine.batches < len(LABELS) / 5  # batched, not one message per ack
        assert sim.displayed()["L0042"].price_cents == 142
        assert sim.counters.acks_sent == len(LABELS) and sim.counters.applied == len(LABELS)
        assert engine.wait_for(lambda: engine.status.get("gw-01") is not None and engine.status["gw-01"].state == "online")
        assert engine.status["gw-01"].labels == 450 and engine.status["gw-01"].failed_labels == 0
    assert MAX_ACKS_PER_MESSAGE >= 500
    assert engine.wait_for(lambda: engine.status["gw-01"].state == "offline")  # a clean stop says so too


@pytest.mark.integration
def test_outage_publishes_the_last_will_and_the_gateway_catches_up(
    mqtt_broker, topics: Topics, engine: Engine
) -> None:
    labels = LABELS[:20]
    with SimulatedGateways(mqtt_broker.address, topics, labels) as sim:
        gateway = sim.gateway("gw-02")
        assert engine.wait_for(lambda: engine.status.get("gw-02") is not None and engine.status["gw-02"].state == "online")
        gateway.go_offline()
        assert engine.wait_for(lambda: engine.status["gw-02"].state == "offline", 5)  # the broker's last will
        assert not gateway.online
        missed = [(label, gw, sku) for label, gw, sku in labels if gw == "gw-02"]
        for label, gw, sku in missed:
            engine.publish(gw, DesiredState.build(
                label=label, sku=sku, version=3, price_cents=333, currency="EUR", correlation="while-away"
            ))
        time.sleep(0.3)
        assert all(label not in sim.displayed() for label, _, _ in missed)  # offline: it heard nothing
        gateway.come_online()
        assert engine.wait_for(lambda: engine.status["gw-02"].state == "online")
        assert engine.wait_for(lambda: all(label in sim.displayed() for label, _, _ in missed), 5)
        assert {sim.displayed()[label].price_cents for label, _, _ in missed} == {333}


@pytest.mark.integration
def test_scenario_outage_runs_on_a_timer(mqtt_broker, topics: Topics, engine: Engine) -> None:
    from simulator.scenario import Outage

    events: list[str] = []
    outage = Outage(gateway="gw-01", at_s=0.1, for_s=0.5)
    with SimulatedGateways(mqtt_broker.address, topics, LABELS[:4], outages=[outage], on_event=events.append):
        assert engine.wait_for(lambda: engine.status.get("gw-01") is not None and engine.status["gw-01"].state == "offline")
        assert engine.wait_for(lambda: engine.status["gw-01"].state == "online")
        assert engine.wait_for(lambda: len(events) == 2)
    assert events == ["gw-01 dropped off (outage)", "gw-01 back online"]


def test_outage_of_an_unknown_gateway_is_one_clear_error() -> None:
    from simulator.scenario import Outage

    with pytest.raises(SimulatorError, match="outage for gateway gw-09: no such gateway in this store"):
        SimulatedGateways(BrokerAddress("h"), Topics("s"), LABELS[:4], outages=[Outage(gateway="gw-09", at_s=1, for_s=1)])


@pytest.mark.integration
def test_state_file_keeps_what_labels_show_across_a_restart(
    mqtt_broker, topics: Topics, engine: Engine, tmp_path: Path
) -> None:
    state_file = tmp_path / "sim-state.json"
    labels = LABELS[:10]
    with SimulatedGateways(mqtt_broker.address, topics, labels, state_file=state_file) as sim:
        for label, gateway, sku in labels:
            engine.publish(gateway, DesiredState.build(
                label=label, sku=sku, version=5, price_cents=555, currency="EUR", correlation="before"
            ))
        assert engine.wait_for(lambda: len(sim.displayed()) == 10)
        deadline = time.monotonic() + 3  # written at most once a second while running
        while time.monotonic() < deadline and not state_file.exists():
            time.sleep(0.05)
        assert state_file.exists()
    saved = load_state(state_file)
    assert saved.running is False and saved.store == topics.store
    assert saved.labels["L0003"].price_cents == 555 and saved.labels["L0003"].battery_mv == 2999
    assert json.loads(state_file.read_text())["labels"]["L0003"]["version"] == 5
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically: no leftovers

    # Clear the retained states: the restarted simulator must know the prices from its state file.
    for label, gateway, _ in labels:
        engine.client.publish(topics.desired(gateway, label), b"", qos=QOS, retain=True).wait_for_publish(5)
    with SimulatedGateways(mqtt_broker.address, topics, labels, state_file=state_file) as again:
        assert again.restored == 10
        assert again.displayed()["L0003"].price_cents == 555
        stale = again.gateway("gw-02").apply(DesiredState.build(
            label="L0003", sku="000003", version=4, price_cents=444, currency="EUR", correlation="late"
        ))
        assert stale.status == "stale" and stale.shown_version == 5


def test_unreachable_broker_leaves_no_state_file(tmp_path: Path) -> None:
    from label_gateway.broker import BrokerError
    from label_gateway.embedded_broker import free_port

    state_file = tmp_path / "state.json"
    sim = SimulatedGateways(BrokerAddress("127.0.0.1", free_port()), Topics("s"), LABELS[:4], state_file=state_file)
    with pytest.raises(BrokerError, match="cannot reach MQTT broker"):
        sim.start()
    assert not state_file.exists()


def test_corrupt_state_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "state.json"
    bad.write_text("{not json")
    with pytest.raises(SimulatorError, match="not a simulator state file"):
        load_state(bad)
    with pytest.raises(SimulatorError, match="no such state file"):
        load_state(tmp_path / "missing.json")


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs the mosquitto binary")
def test_gateways_survive_a_broker_restart(tmp_path: Path) -> None:
    """paho-style reconnect on the shared network thread: subscribe again, hear new states."""
    from label_gateway.embedded_broker import free_port

    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")

    def start_broker() -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                connect(probe := new_client("probe"), address, timeout=1)
                disconnect(probe)
                return proc
            except Exception:  # noqa: BLE001 (not up yet)
                time.sleep(0.05)
        proc.kill()
        raise AssertionError("mosquitto did not start")

    address = BrokerAddress("127.0.0.1", port)
    topics = Topics("store-restart", prefix="restart")
    broker = start_broker()
    try:
        with SimulatedGateways(address, topics, LABELS[:4]) as sim:
            gateway = sim.gateway("gw-01")
            broker.terminate()
            broker.wait(5)
            deadline = time.monotonic() + 5
            while gateway.online and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not gateway.online
            broker = start_broker()
            deadline = time.monotonic() + 10
            while not gateway.online and time.monotonic() < deadline:
                time.sleep(0.05)
            assert gateway.online
            engine = Engine(address, topics)
            try:
                engine.publish("gw-01", DesiredState.build(
                    label="L0000", sku="000000", version=2, price_cents=222, currency="EUR", correlation="after"
                ))
                assert engine.wait_for(lambda: any(a.label == "L0000" and a.status == "displayed" for a in engine.acks))
                assert engine.wait_for(lambda: engine.status.get("gw-01") is not None)
                assert engine.status["gw-01"].state == "online"
            finally:
                engine.close()
            assert sim.displayed()["L0000"].price_cents == 222
    finally:
        broker.terminate()
        broker.wait(5)


@pytest.mark.integration
def test_timed_mode_over_the_broker(mqtt_broker, topics: Topics, engine: Engine) -> None:
    """Check-in wait plus one radio per gateway: ten updates take at least ten radio slots."""
    options = GatewayOptions(checkin_interval_s=0.2, radio_seconds_per_update=0.05)
    labels = [(f"T{i}", "gw-01", f"{i:04d}") for i in range(10)]
    with SimulatedGateways(mqtt_broker.address, topics, labels, options=options) as sim:
        started = time.monotonic()
        for label, gateway, sku in labels:
            engine.publish(gateway, DesiredState.build(
                label=label, sku=sku, version=1, price_cents=100, currency="EUR", correlation="timed"
            ))
        assert engine.wait_for(lambda: len(engine.acks) == 10, 5)
        took = time.monotonic() - started
        assert 0.5 <= took < 3, took
        assert len(sim.displayed()) == 10
