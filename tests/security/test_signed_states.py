"""Attacks on the payload and on the engine's bookkeeping, on an OPEN broker (anyone may publish):
signed desired states hold even where the broker's ACLs do not (issue 16).

Each test is one attack an intruder on the store network tried: forge, re-sign, tamper, replay,
poison the version, speak for another gateway. Real Mosquitto, real simulated labels that hold the
engine's public key."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from label_gateway.broker import BrokerAddress, connect, disconnect, new_client
from label_gateway.delivery import (
    DeliveryReport,
    DeliverySettings,
    LabelDelivery,
    push_prices,
)
from label_gateway.outbox import Outbox
from label_gateway.protocol import (
    QOS,
    DesiredState,
    GatewayAcks,
    LabelAck,
    Topics,
    content_hash,
    utc_now,
)
from label_gateway.signing import KeyDirectory, Signer
from pricing.core.database import open_engine
from simulator.gateways import GatewayOptions, SimulatedGateways

pytestmark = [pytest.mark.security, pytest.mark.integration]

LABELS = [(f"L{i:03d}", f"gw-{i % 2 + 1:02d}", f"{i:06d}") for i in range(12)]
FAST = DeliverySettings(ack_timeout_s=2.0, backoff_base_s=0.1, backoff_max_s=0.5, max_attempts=2)


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> Signer:
    keys = KeyDirectory(tmp_path_factory.mktemp("keys"))
    keys.create()
    return keys.signer()


@pytest.fixture
def store_topics(topics: Topics) -> Topics:
    """A store of its own under the test's prefix (the PostgreSQL schema is shared by the session)."""
    return Topics(f"store-{uuid.uuid4().hex[:8]}", prefix=topics.prefix)


@pytest.fixture
def sim(mqtt_broker, store_topics: Topics, signer: Signer) -> Iterator[SimulatedGateways]:
    options = GatewayOptions(trusted_keys=signer.trusted())
    with SimulatedGateways(mqtt_broker.address, store_topics, LABELS, options=options) as gateways:
        yield gateways


def _outbox(target: str | Path, topics: Topics) -> Outbox:
    return Outbox(open_engine(str(target)), topics.store)


def _push(address: BrokerAddress, topics: Topics, outbox: Outbox, prices: dict[str, int], signer: Signer | None,
          labels=LABELS) -> DeliveryReport:
    return push_prices(prices, labels, address, topics, outbox, currency="EUR", correlation="plan-sec",
                       settings=FAST, signer=signer)


class Intruder:
    """An anonymous client on the open broker: reads retained states, publishes what it likes."""

    def __init__(self, address: BrokerAddress) -> None:
        self.client = new_client("intruder")
        self.retained: dict[str, bytes] = {}
        self._lock = threading.Lock()
        self.client.on_message = self._on_message
        connect(self.client, address)

    def _on_message(self, client: object, userdata: object, message) -> None:
        with self._lock:
            self.retained[message.topic] = bytes(message.payload)

    def read(self, topic: str, seconds: float = 3.0) -> bytes:
        self.client.subscribe(topic, qos=QOS)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if topic in self.retained:
                    return self.retained[topic]
            time.sleep(0.02)
        raise AssertionError(f"nothing retained on {topic}")

    def publish(self, topic: str, payload: bytes, *, retain: bool = True) -> None:
        self.client.publish(topic, payload, qos=QOS, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        disconnect(self.client)


@pytest.fixture
def intruder(mqtt_broker) -> Iterator[Intruder]:
    client = Intruder(mqtt_broker.address)
    yield client
    client.close()


def _wait(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def _forge(state: DesiredState, **changes: object) -> bytes:
    """``state`` with ``changes``, its content hash recomputed, as an intruder would publish it."""
    fields = state.model_dump(mode="json", exclude_none=True) | changes
    fields["content_hash"] = content_hash(
        str(fields["label"]), str(fields["sku"]), int(fields["price_cents"]), str(fields["currency"]),
        fields.get("reference_price_cents"),  # type: ignore[arg-type]
    )
    return DesiredState.model_validate(fields).to_json()


def _first(topics: Topics) -> tuple[str, str, str, str]:
    label, gateway, sku = LABELS[0]
    return label, gateway, sku, topics.desired(gateway, label)


def _shelf_at_413(address: BrokerAddress, topics: Topics, signer: Signer, intruder: Intruder,
                  tmp_path: Path) -> tuple[str, str, str, DesiredState]:
    """Every label pushed to 4.13 (signed); the first label's id, gateway, topic and the genuine
    state the intruder reads off its retained topic."""
    _push(address, topics, _outbox(tmp_path / "e.db", topics), {sku: 413 for _, _, sku in LABELS}, signer)
    label, gateway, _, topic = _first(topics)
    return label, gateway, topic, DesiredState.model_validate_json(intruder.read(topic))


def test_an_unsigned_forged_state_is_rejected_and_stays_rejected_after_a_gateway_restart(
    mqtt_broker, store_topics: Topics, sim: SimulatedGateways, intruder: Intruder, signer: Signer, tmp_path: Path
) -> None:
    label, gateway, topic, genuine = _shelf_at_413(mqtt_broker.address, store_topics, signer, intruder, tmp_path)
    unsigned = _forge(genuine, version=genuine.version + 1, price="0.01", price_cents=1, key_id=None,
                      signature=None, proof="", proof_index=0, proof_size=1)
    intruder.publish(topic, unsigned)  # retained over the engine's state
    assert _wait(lambda: sim.counters.forged >= 1)
    assert sim.displayed()[label].price_cents == 413
    emulator = sim.gateway(gateway)
    emulator.go_offline()
    emulator.come_online()  # the forged retained state arrives again ...
    assert _wait(lambda: sim.counters.forged >= 2)
    assert sim.displayed()[label].price_cents == 413  # ... and is refused again


def test_a_state_signed_with_the_intruders_own_key_is_rejected(
    mqtt_broker, store_topics: Topics, sim: SimulatedGateways, intruder: Intruder, signer: Signer, tmp_path: Path
) -> None:
    label, _, topic, genuine = _shelf_at_413(mqtt_broker.address, store_topics, signer, intruder, tmp_path)
    mine = Signer.generate()
    forged = DesiredState.model_validate_json(_forge(genuine, version=genuine.version + 1, price="0.01", price_cents=1))
    (proof,) = mine.sign_batch([forged.signed_message(store_topics.store)])
    intruder.publish(topic, _forge(forged, key_id=proof.key_id, signature=proof.signature, proof="", proof_index=0,
                                   proof_size=1))
    # ... and the engine's key id on the intruder's signature
    intruder.publish(topic, _forge(forged, key_id=signer.key_id, signature=proof.signature, proof="",
                                   proof_index=0, proof_size=1))
    assert _wait(lambda: sim.counters.forged >= 2)
    assert sim.displayed()[label].price_cents == 413


def test_a_tampered_genuine_state_is_rejected(
    mqtt_broker, store_topics: Topics, sim: SimulatedGateways, intruder: Intruder, signer: Signer, tmp_path: Path
) -> None:
    label, _, topic, genuine = _shelf_at_413(mqtt_broker.address, store_topics, signer, intruder, tmp_path)
    assert genuine.signature and genuine.proof_size > 1  # what was sent together shares one signature
    for tampered in (
        _forge(genuine, version=genuine.version + 1),  # a new version to get past the label's check
        _forge(genuine, version=genuine.version + 1, price="0.01", price_cents=1),
        _forge(genuine, version=genuine.version + 1, proof_index=(genuine.proof_index + 1) % genuine.proof_size),
    ):
        intruder.publish(topic, tampered)
    assert _wait(lambda: sim.counters.forged >= 3)
    shown = sim.displayed()[label]
    assert (shown.price_cents, shown.version) == (413, genuine.version)


def test_a_replayed_older_genuine_state_changes_nothing(
    mqtt_broker, store_topics: Topics, sim: SimulatedGateways, intruder: Intruder, signer: Signer, tmp_path: Path
) -> None:
    outbox = _outbox(tmp_path / "e.db", store_topics)
    _push(mqtt_broker.address, store_topics, outbox, {sku: 299 for _, _, sku in LABELS}, signer)
    label, _, _, topic = _first(store_topics)
    old = intruder.read(topic)  # recorded by the intruder: a genuine, signed state at 2.99
    report = _push(mqtt_broker.address, store_topics, outbox, {sku: 349 for _, _, sku in LABELS}, signer)
    assert len(report.confirmed) == len(LABELS)
    stale_before = sim.counters.stale
    intruder.publish(topic, old)
    assert _wait(lambda: sim.counters.stale > stale_before)
    assert sim.displayed()[label].price_cents == 349


def test_a_genuine_state_of_another_store_is_rejected(
    mqtt_broker, store_topics: Topics, sim: SimulatedGateways, intruder: Intruder, signer: Signer, tmp_path: Path
) -> None:
    other = Topics(f"{store_topics.store}-b", prefix=store_topics.prefix)
    with SimulatedGateways(mqtt_broker.address, other, LABELS, options=GatewayOptions(trusted_keys=signer.trusted())):
        _push(mqtt_broker.address, other, _outbox(tmp_path / "b.db", other), {sku: 1 for _, _, sku in LABELS}, signer)
    label, gateway, _, topic = _first(store_topics)
    from_other_store = intruder.read(other.desired(gateway, label))  # signed by the engine, for store b
    intruder.publish(topic, from_other_store)
    assert _wait(lambda: sim.counters.forged >= 1)
    assert label not in sim.displayed()


def test_labels_refuse_states_signed_by_a_key_they_do_not_trust_and_the_engine_counts_it(
    mqtt_broker, store_topics: Topics, sim: SimulatedGateways, tmp_path: Path
) -> None:
    outbox = _outbox(tmp_path / "e.db", store_topics)
    report = _push(mqtt_broker.address, store_topics, outbox, {sku: 500 for _, _, sku in LABELS}, Signer.generate())
    assert report.signature_rejections == len(LABELS) and len(report.failed) == len(LABELS)
    assert all("signature: unknown key" in o.detail for o in report.failed)
    unsigned = _push(mqtt_broker.address, store_topics, outbox, {sku: 501 for _, _, sku in LABELS}, None)
    assert all("signature: missing" in o.detail for o in unsigned.failed) and len(unsigned.failed) == len(LABELS)
    assert sim.displayed() == {}


def test_a_poisoned_version_is_refused_and_the_next_push_still_works(
    mqtt_broker, store_topics: Topics, sim: SimulatedGateways, intruder: Intruder, signer: Signer,
    database_url: str,
) -> None:
    outbox = _outbox(database_url, store_topics)
    _push(mqtt_broker.address, store_topics, outbox, {sku: 413 for _, _, sku in LABELS}, signer)
    label, _, _, topic = _first(store_topics)
    genuine = intruder.read(topic)
    poisoned = genuine.decode().replace(
        f'"version":{DesiredState.model_validate_json(genuine).version}', '"version":9223372036854775807'
    ).encode()
    malformed_before = sim.counters.malformed
    intruder.publish(topic, poisoned)
    assert _wait(lambda: sim.counters.malformed > malformed_before)  # not even a desired state
    report = _push(mqtt_broker.address, store_topics, outbox, {sku: 414 for _, _, sku in LABELS}, signer)
    assert len(report.confirmed) == len(LABELS)
    assert {v.price_cents for v in sim.displayed().values()} == {414}


def test_a_label_that_took_a_forged_version_is_an_alarm_not_an_overflow(
    mqtt_broker, store_topics: Topics, intruder: Intruder, signer: Signer, database_url: str
) -> None:
    """Hardware that does not verify signatures (no key given) takes the forged state; the engine
    then never does arithmetic on the label's claim: no OverflowError, no 'bigint out of range'."""
    outbox = _outbox(database_url, store_topics)
    with SimulatedGateways(mqtt_broker.address, store_topics, LABELS) as open_labels:
        _push(mqtt_broker.address, store_topics, outbox, {sku: 413 for _, _, sku in LABELS}, signer)
        label, _, _, topic = _first(store_topics)
        genuine = DesiredState.model_validate_json(intruder.read(topic))
        intruder.publish(topic, _forge(genuine, version=2**53 - 1, price="0.01", price_cents=1))
        assert _wait(lambda: open_labels.displayed()[label].price_cents == 1)
        report = _push(mqtt_broker.address, store_topics, outbox, {sku: 414 for _, _, sku in LABELS}, signer)
        resumed = LabelDelivery(mqtt_broker.address, store_topics, outbox, FAST, signer=signer).run()
    assert report.forged_versions == 2 and len(report.confirmed) == len(LABELS) - 1
    (failed,) = report.failed
    assert failed.label_id == label and "never issued" in failed.detail
    assert resumed.sent == 0  # failed stays failed until an operator resets the label and reconciles
    assert max(row.version for row in outbox.rows()) < 2**53 - 1


def test_acks_from_another_gateways_topic_confirm_and_fail_nothing(
    mqtt_broker, store_topics: Topics, sim: SimulatedGateways, intruder: Intruder, signer: Signer, tmp_path: Path
) -> None:
    label, gateway, sku, _ = _first(store_topics)
    sim.gateway(gateway).go_offline()  # the label cannot get its price: only a forged ack could confirm it
    outbox = _outbox(tmp_path / "e.db", store_topics)
    holder: dict[str, DeliveryReport] = {}
    settings = FAST.model_copy(update={"offline_grace_s": 3.0})
    delivery = LabelDelivery(mqtt_broker.address, store_topics, outbox, settings, signer=signer)
    outbox.enqueue([_update(label, gateway, sku)])
    worker = threading.Thread(target=lambda: holder.update(report=delivery.run(deadline_s=6)))
    worker.start()
    time.sleep(0.5)
    (row,) = outbox.rows()
    now = utc_now()
    displayed = LabelAck(label=label, version=row.version, status="displayed", shown_version=row.version,
                         content_hash=row.content_hash, at=now)
    rejected = LabelAck(label=label, version=row.version, status="rejected", shown_version=0, reason="x", at=now)
    intruder.publish(store_topics.ack("evil"), GatewayAcks.of("evil", [displayed]).to_json(), retain=False)
    intruder.publish(store_topics.ack("gw-02"), GatewayAcks.of("gw-02", [displayed, rejected]).to_json(), retain=False)
    intruder.publish(store_topics.ack("gw-02"), GatewayAcks.of(gateway, [rejected]).to_json(), retain=False)
    worker.join(15)
    report = holder["report"]
    assert report.foreign_acks == 4 and not report.confirmed and not report.failed
    assert outbox.rows()[0].state == "pending"


def _update(label: str, gateway: str, sku: str):
    from label_gateway.outbox import LabelUpdate

    return LabelUpdate(label, gateway, sku, 777, "EUR", "plan-sec")


def test_a_key_rotation_re_signs_every_retained_state_and_the_old_key_can_go(
    mqtt_broker, store_topics: Topics, tmp_path: Path
) -> None:
    import dataclasses

    from label_gateway.readback import read_back

    keys = KeyDirectory(tmp_path / "keys")
    old = keys.create()[0]
    outbox = _outbox(tmp_path / "e.db", store_topics)
    with SimulatedGateways(mqtt_broker.address, store_topics, LABELS,
                           options=GatewayOptions(trusted_keys=keys.trusted())) as sim:
        _push(mqtt_broker.address, store_topics, outbox, {sku: 413 for _, _, sku in LABELS}, keys.signer())
        new = keys.rotate()

        def trust(trusted) -> None:  # what an operator does to the gateways' trust stores
            for gateway in sim.gateways:
                gateway.options = dataclasses.replace(gateway.options, trusted_keys=trusted)

        trust(keys.trusted())  # 1. the new public key goes to the gateways (both are trusted meanwhile)
        found = read_back(mqtt_broker.address, store_topics, outbox, signer=keys.signer())  # 2. reconcile
        assert found.by_reason() == {"key": len(LABELS)}
        outbox.reopen_labels(found.labels)
        again = LabelDelivery(mqtt_broker.address, store_topics, outbox, FAST, signer=keys.signer()).run()
        assert len(again.confirmed) == len(LABELS)
        refreshes = sum(g.counters.applied for g in sim.gateways)
        keys.retire(old)  # 3. the old key goes, from the engine and from the gateways
        trust(keys.trusted())
        received = sim.counters.received
        for gateway in sim.gateways:  # gateways restart and take every retained state again
            gateway.go_offline()
            gateway.come_online()
        assert _wait(lambda: sim.counters.received >= received + len(LABELS))
        assert sim.counters.forged == 0 and sum(g.counters.applied for g in sim.gateways) == refreshes
        assert {v.price_cents for v in sim.displayed().values()} == {413}
    assert read_back(mqtt_broker.address, store_topics, outbox, signer=keys.signer()).differing == []
    assert keys.current_id() == new
