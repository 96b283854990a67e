"""The ack deadline follows the gateway's radio queue, and a push says when no gateway is online.

Against the real broker and the simulator's timed gateways (one radio per gateway, one image at a
time): a queue far longer than the ack timeout must not make the engine send any label twice.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from label_gateway.broker import (
    BrokerAddress,
    BrokerError,
    connect,
    disconnect,
    new_client,
)
from label_gateway.delivery import DeliverySettings, LabelDelivery, updates_for_prices
from label_gateway.embedded_broker import free_port
from label_gateway.outbox import Outbox
from label_gateway.protocol import QOS, GatewayStatus, Topics
from simulator.gateways import GatewayOptions, SimulatedGateways

pytestmark = pytest.mark.integration

LABELS = [(f"L{i:04d}", "gw-slow", f"{i:06d}") for i in range(40)]
PRICES = {sku: 100 + i for i, (_, _, sku) in enumerate(LABELS)}


def _outbox(tmp_path: Path, labels: list[tuple[str, str, str]] = LABELS) -> Outbox:
    outbox = Outbox.open(tmp_path / "engine.db", "store-test")
    outbox.enqueue(updates_for_prices(PRICES, labels, currency="EUR", correlation="plan-test"))
    return outbox


def test_a_slow_radio_queue_longer_than_the_ack_timeout_sends_no_label_twice(
    mqtt_broker, topics: Topics, tmp_path: Path
) -> None:
    """40 images at 0.1 s of radio each: the last waits ~4 s, eight times the 0.5 s ack timeout.
    Acks keep coming from the gateway meanwhile, so nothing in its queue is overdue."""
    outbox = _outbox(tmp_path)
    settings = DeliverySettings(ack_timeout_s=0.5, max_attempts=5, backoff_base_s=0.1, backoff_max_s=0.2)
    slow = GatewayOptions(radio_seconds_per_update=0.1)
    with SimulatedGateways(mqtt_broker.address, topics, LABELS, options=slow) as sim:
        report = LabelDelivery(mqtt_broker.address, topics, outbox, settings).run(deadline_s=60)
        counters = sim.counters
    assert report.seconds > 3 * settings.ack_timeout_s  # the queue really was longer than the timeout
    assert len(report.confirmed) == len(LABELS), report.summary()
    assert report.sent == len(LABELS) and report.retries == 0, report.summary()
    assert counters.duplicates == 0


def test_a_label_the_radio_lost_still_times_out_once_its_gateway_goes_quiet(
    mqtt_broker, topics: Topics, tmp_path: Path
) -> None:
    """Adapting to the queue does not wait forever: a dead label is sent again after its gateway
    has answered nothing for the ack timeout, and fails after its attempts."""
    labels = LABELS[:5]
    outbox = _outbox(tmp_path, labels)
    settings = DeliverySettings(ack_timeout_s=0.5, max_attempts=2, backoff_base_s=0.1, backoff_max_s=0.2)
    options = GatewayOptions(radio_seconds_per_update=0.05, dead_labels=frozenset({"L0000"}), attempts=1,
                             checkin_interval_s=0.0)
    with SimulatedGateways(mqtt_broker.address, topics, labels, options=options):
        report = LabelDelivery(mqtt_broker.address, topics, outbox, settings).run(deadline_s=30)
    assert len(report.confirmed) == 4
    assert [o.label_id for o in report.failed] == ["L0000"], report.summary()


def test_a_push_with_no_gateway_online_says_so_at_once(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    """Nobody runs the store's gateways (a wrong store id, say): one line within about a second,
    long before the 30 s ack timeout, naming the status topic; the report flags it."""
    outbox = _outbox(tmp_path, LABELS[:3])
    lines: list[tuple[float, str]] = []
    started = time.monotonic()
    report = LabelDelivery(mqtt_broker.address, topics, outbox, DeliverySettings(ack_timeout_s=30)).run(
        deadline_s=2.0, notice=lambda line: lines.append((time.monotonic() - started, line))
    )
    assert len(lines) == 1, lines
    at, line = lines[0]
    assert at < 1.9 and "\n" not in line
    assert "no gateway of store store-test is online" in line and topics.status_filter in line
    assert "no status from gw-slow" in line
    assert report.no_gateway_online and report.summary()["no_gateway_online"] is True


def test_an_offline_gateway_is_named_and_an_online_one_says_nothing(
    mqtt_broker, topics: Topics, tmp_path: Path
) -> None:
    client = new_client("test-status")
    connect(client, mqtt_broker.address)
    try:
        info = client.publish(topics.status("gw-slow"), GatewayStatus(gateway="gw-slow", state="offline").to_json(),
                              qos=QOS, retain=True)
        info.wait_for_publish(5)
    finally:
        disconnect(client)
    lines: list[str] = []
    LabelDelivery(mqtt_broker.address, topics, _outbox(tmp_path, LABELS[:3]), DeliverySettings()).run(
        deadline_s=1.5, notice=lines.append
    )
    assert len(lines) == 1 and "offline: gw-slow" in lines[0]

    quiet: list[str] = []
    with SimulatedGateways(mqtt_broker.address, topics, LABELS[:3]):
        outbox = Outbox.open(tmp_path / "other.db", "store-test")
        outbox.enqueue(updates_for_prices({s: 999 for _, _, s in LABELS[:3]}, LABELS[:3], currency="EUR",
                                          correlation="plan-2"))
        report = LabelDelivery(mqtt_broker.address, topics, outbox, DeliverySettings()).run(
            deadline_s=10, notice=quiet.append
        )
    assert quiet == [] and len(report.confirmed) == 3 and not report.no_gateway_online


def test_an_unused_address_is_a_broker_error_not_a_hang(tmp_path: Path) -> None:
    address = BrokerAddress("127.0.0.1", free_port())
    with pytest.raises(BrokerError, match=f"127.0.0.1:{address.port}"):
        LabelDelivery(address, Topics("store-test"), _outbox(tmp_path, LABELS[:1]), DeliverySettings()).run()
