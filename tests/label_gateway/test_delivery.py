"""LabelPusher through a real broker, against emulated gateways."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest

from label_gateway.broker import (
    BrokerAddress,
    BrokerError,
    connect,
    disconnect,
    new_client,
)
from label_gateway.delivery import (
    LabelPusher,
    LabelUpdate,
    updates_for_prices,
    version_now,
)
from label_gateway.protocol import QOS, Topics
from simulator.gateways import SimulatedGateways

pytestmark = pytest.mark.integration

LABELS = [(f"L{i:04d}", f"gw-{i % 3 + 1:02d}", f"{i:06d}") for i in range(300)]


def _updates(version: int, prices: dict[str, int] | None = None) -> list[LabelUpdate]:
    prices = prices or {sku: 100 + i for i, (_, _, sku) in enumerate(LABELS)}
    return updates_for_prices(prices, LABELS, version=version, currency="EUR", correlation="plan-test")


def test_every_label_confirmed_and_displayed(mqtt_broker, topics: Topics) -> None:
    with SimulatedGateways(mqtt_broker.address, topics, LABELS) as sim:
        updates = _updates(version_now())
        report = LabelPusher(mqtt_broker.address, topics, window_per_gateway=16).push(updates)
        assert len(report.confirmed) == len(updates) and not report.failed
        shown = sim.displayed()
        assert {u.label_id: u.price_cents for u in updates} == {k: v.price_cents for k, v in shown.items()}


def test_repeat_push_is_idempotent_and_costs_no_refresh(mqtt_broker, topics: Topics) -> None:
    with SimulatedGateways(mqtt_broker.address, topics, LABELS[:30]) as sim:
        first = updates_for_prices({"000001": 555}, LABELS, version=version_now(), currency="EUR", correlation="a")
        LabelPusher(mqtt_broker.address, topics).push(first)
        again = updates_for_prices({"000001": 555}, LABELS, version=version_now(), currency="EUR", correlation="b")
        report = LabelPusher(mqtt_broker.address, topics).push(again)
        assert [o.detail for o in report.confirmed] == ["unchanged"]
        gateway = next(g for g in sim.gateways if "L0001" in g.labels)
        assert gateway.counters.applied == 1 and gateway.counters.unchanged == 1


def test_older_version_is_never_applied_and_is_reported(mqtt_broker, topics: Topics) -> None:
    with SimulatedGateways(mqtt_broker.address, topics, LABELS[:30]) as sim:
        newer = version_now()
        LabelPusher(mqtt_broker.address, topics).push(
            updates_for_prices({"000002": 700}, LABELS, version=newer, currency="EUR", correlation="new")
        )
        report = LabelPusher(mqtt_broker.address, topics).push(
            updates_for_prices({"000002": 600}, LABELS, version=newer - 10, currency="EUR", correlation="old")
        )
        assert report.failed and "superseded" in report.failed[0].detail
        assert sim.displayed()["L0002"].price_cents == 700


def test_no_gateway_means_timeout_failure(mqtt_broker, topics: Topics) -> None:
    updates = _updates(version_now())[:5]
    report = LabelPusher(mqtt_broker.address, topics, ack_timeout_s=0.5).push(updates)
    assert len(report.failed) == 5
    assert all("no ack within" in o.detail for o in report.failed)


def test_a_gateway_that_starts_late_gets_the_retained_state(mqtt_broker, topics: Topics) -> None:
    """Desired states are retained: a gateway that (re)connects receives what it missed."""
    updates = _updates(version_now())[:12]
    LabelPusher(mqtt_broker.address, topics, ack_timeout_s=0.3).push(updates)
    with SimulatedGateways(mqtt_broker.address, topics, LABELS[:12]) as sim:
        deadline = threading.Event()
        for _ in range(100):
            if len(sim.displayed()) == 12:
                break
            deadline.wait(0.05)
        assert {k: v.price_cents for k, v in sim.displayed().items()} == {u.label_id: u.price_cents for u in updates}


def test_malformed_acks_are_counted_not_fatal(mqtt_broker, topics: Topics) -> None:
    with SimulatedGateways(mqtt_broker.address, topics, LABELS[:30]):
        noise = new_client("noise")
        connect(noise, mqtt_broker.address)
        pusher = LabelPusher(mqtt_broker.address, topics)
        stop = threading.Event()

        def spam() -> None:
            while not stop.is_set():
                noise.publish(topics.ack("gw-01"), b"{garbage", qos=QOS)
                noise.publish(topics.ack("gw-02"), b'{"label":"L0001","version":1}', qos=QOS)
                stop.wait(0.01)

        spammer = threading.Thread(target=spam)
        spammer.start()
        try:
            report = pusher.push(_updates(version_now())[:30])
        finally:
            stop.set()
            spammer.join()
            disconnect(noise)
        assert len(report.confirmed) == 30
        assert report.malformed_acks > 0


def test_unreachable_broker_is_one_clear_error(topics: Topics) -> None:
    from label_gateway.embedded_broker import free_port

    address = BrokerAddress("127.0.0.1", free_port())
    with pytest.raises(BrokerError, match=f"cannot reach MQTT broker at mqtt://127.0.0.1:{address.port}"):
        LabelPusher(address, topics, connect_timeout_s=2).push(_updates(1)[:1])


def test_broker_url_parsing() -> None:
    assert BrokerAddress.parse("mqtt://h:1884") == BrokerAddress("h", 1884)
    assert BrokerAddress.parse("h") == BrokerAddress("h", 1883)
    for bad in ("http://h", "mqtt://user:pw@h", "mqtt://h:notaport", "mqtt://"):
        with pytest.raises(BrokerError):
            BrokerAddress.parse(bad)


def test_paho_client_speaks_mqtt_311() -> None:
    client = new_client("x")
    assert client.protocol == mqtt.MQTTv311
