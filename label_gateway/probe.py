"""A quick look at the broker for `esl-pricing status`: is it reachable, and which gateways say
they are online (their retained status topics, set offline by the MQTT last will)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from label_gateway.broker import (
    BrokerAddress,
    BrokerError,
    connect,
    disconnect,
    new_client,
)
from label_gateway.protocol import QOS, GatewayStatus, ProtocolError, Topics, parse


@dataclass
class BrokerProbe:
    """What the broker said about a store's gateways."""

    reachable: bool
    error: str | None = None
    gateways: dict[str, GatewayStatus] = field(default_factory=dict)

    @property
    def online(self) -> list[str]:
        return sorted(g for g, s in self.gateways.items() if s.state == "online")

    @property
    def offline(self) -> list[str]:
        return sorted(g for g, s in self.gateways.items() if s.state != "online")


def probe_gateways(address: BrokerAddress, topics: Topics, *, wait_s: float = 1.0, timeout: float = 3.0) -> BrokerProbe:
    """Connect, read the retained gateway statuses for ``wait_s`` seconds, disconnect. An
    unreachable broker is reported in the result (not raised): status must always answer."""
    client = new_client("probe")
    client.max_inflight_messages_set(20)
    found: dict[str, GatewayStatus] = {}
    lock = threading.Lock()
    subscribed = threading.Event()

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            status = parse(GatewayStatus, message.payload)
        except ProtocolError:
            return
        if message.topic == topics.status(status.gateway):
            with lock:
                found[status.gateway] = status

    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    try:
        connect(client, address, timeout=timeout)
    except BrokerError as exc:
        return BrokerProbe(False, str(exc))
    try:
        client.subscribe(topics.status_filter, qos=QOS)
        subscribed.wait(timeout)
        time.sleep(wait_s)
    finally:
        disconnect(client)
    with lock:
        return BrokerProbe(True, None, dict(found))
