"""Label gateways and their labels, emulated as real MQTT clients.

Each gateway is its own paho client. It subscribes to the desired-state topics of its labels,
applies a state only when its version is newer than what the label shows, and acknowledges
every desired state it receives. Radio time per update can be set (0 = fast mode for tests).

Only the wire protocol (label_gateway.protocol) is shared with the engine.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from label_gateway.broker import BrokerAddress, connect, disconnect, new_client
from label_gateway.protocol import (
    QOS,
    DesiredState,
    GatewayStatus,
    LabelAck,
    ProtocolError,
    Topics,
    parse,
    utc_now,
)


@dataclass(frozen=True)
class Displayed:
    """What one label shows."""

    sku: str
    price_cents: int
    version: int
    content_hash: str


@dataclass
class GatewayCounters:
    received: int = 0
    applied: int = 0
    unchanged: int = 0
    stale: int = 0
    rejected: int = 0
    malformed: int = 0


class GatewayEmulator:
    """One gateway with its labels (label id -> sku)."""

    def __init__(
        self,
        address: BrokerAddress,
        topics: Topics,
        gateway_id: str,
        labels: Mapping[str, str],
        *,
        radio_seconds: float = 0.0,
    ) -> None:
        self.address = address
        self.topics = topics
        self.gateway_id = gateway_id
        self.labels = dict(labels)
        self.radio_seconds = radio_seconds
        self.counters = GatewayCounters()
        self._displayed: dict[str, Displayed] = {}
        self._lock = threading.Lock()
        self._work: queue.Queue[DesiredState | None] = queue.Queue()
        self._worker: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._subscribed = threading.Event()

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> GatewayEmulator:
        client = new_client(f"gateway-{self.gateway_id}")
        offline = GatewayStatus(gateway=self.gateway_id, state="offline").to_json()
        client.will_set(self.topics.status(self.gateway_id), offline, qos=QOS, retain=True)
        client.on_connect = self._on_connect
        client.on_subscribe = lambda *args: self._subscribed.set()
        client.on_message = self._on_message
        self._worker = threading.Thread(target=self._apply_loop, name=f"gw-{self.gateway_id}", daemon=True)
        self._worker.start()
        self._client = client
        connect(client, self.address, timeout=timeout)
        # on_connect subscribed; wait for SUBACK so nothing published after start() is missed.
        if not self._subscribed.wait(timeout):
            raise TimeoutError(f"gateway {self.gateway_id}: no SUBACK within {timeout}s")
        return self

    def stop(self) -> None:
        client = self._client
        if client is not None:
            status = GatewayStatus(gateway=self.gateway_id, state="offline", at=utc_now()).to_json()
            client.publish(self.topics.status(self.gateway_id), status, qos=QOS, retain=True).wait_for_publish(5)
            disconnect(client)
            self._client = None
        if self._worker is not None:
            self._work.put(None)
            self._worker.join(10)
            self._worker = None

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        client.subscribe(self.topics.desired_filter(self.gateway_id), qos=QOS)
        online = GatewayStatus(gateway=self.gateway_id, state="online", labels=len(self.labels), at=utc_now())
        client.publish(self.topics.status(self.gateway_id), online.to_json(), qos=QOS, retain=True)

    # -- messages ----------------------------------------------------------------------------
    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if not message.payload:  # an empty retained message clears a topic; nothing to show
            return
        try:
            state = parse(DesiredState, message.payload)
        except ProtocolError:
            with self._lock:
                self.counters.malformed += 1
            return
        self._work.put(state)

    def _apply_loop(self) -> None:
        while True:
            state = self._work.get()
            if state is None:
                return
            ack = self.apply(state)
            client = self._client
            if client is not None:
                client.publish(self.topics.ack(self.gateway_id), ack.to_json(), qos=QOS)

    def apply(self, state: DesiredState) -> LabelAck:
        """Apply one desired state to its label (idempotent) and return the ack to send."""
        with self._lock:
            self.counters.received += 1
            shown = self._displayed.get(state.label)
            shown_version = shown.version if shown else 0
            if state.label not in self.labels:
                self.counters.rejected += 1
                return self._ack(state, "rejected", shown_version, reason=f"no label {state.label} on this gateway")
            if self.labels[state.label] != state.sku:
                self.counters.rejected += 1
                return self._ack(state, "rejected", shown_version, reason=f"label {state.label} is bound to another sku")
            if shown is not None and state.version < shown.version:
                self.counters.stale += 1
                return self._ack(state, "stale", shown_version)
            if shown is not None and state.version == shown.version:
                # A duplicate (QoS 1 may deliver twice): already shown, say so again.
                return self._ack(state, "displayed", shown_version)
            if shown is not None and shown.content_hash == state.content_hash:
                self.counters.unchanged += 1
                self._displayed[state.label] = Displayed(state.sku, state.price_cents, state.version, state.content_hash)
                return self._ack(state, "unchanged", state.version)
        if self.radio_seconds > 0:
            time.sleep(self.radio_seconds)
        with self._lock:
            current = self._displayed.get(state.label)
            if current is not None and current.version >= state.version:  # overtaken while on air
                self.counters.stale += 1
                return self._ack(state, "stale", current.version)
            self._displayed[state.label] = Displayed(state.sku, state.price_cents, state.version, state.content_hash)
            self.counters.applied += 1
            return self._ack(state, "displayed", state.version)

    def _ack(self, state: DesiredState, status: str, shown_version: int, reason: str | None = None) -> LabelAck:
        return LabelAck.model_validate(
            {
                "label": state.label,
                "version": state.version,
                "status": status,
                "shown_version": shown_version,
                "content_hash": state.content_hash if status in ("displayed", "unchanged") else None,
                "reason": reason,
                "correlation": state.correlation,
                "at": utc_now(),
            }
        )

    def displayed(self) -> dict[str, Displayed]:
        with self._lock:
            return dict(self._displayed)


class SimulatedGateways:
    """All gateways of a store, from label rows (label_id, gateway, sku)."""

    def __init__(
        self,
        address: BrokerAddress,
        topics: Topics,
        labels: Iterable[tuple[str, str, str]],
        *,
        radio_seconds: float = 0.0,
    ) -> None:
        by_gateway: dict[str, dict[str, str]] = {}
        for label_id, gateway, sku in labels:
            by_gateway.setdefault(gateway, {})[label_id] = sku
        self.gateways = [
            GatewayEmulator(address, topics, gateway, members, radio_seconds=radio_seconds)
            for gateway, members in sorted(by_gateway.items())
        ]

    def start(self) -> SimulatedGateways:
        try:
            for gateway in self.gateways:
                gateway.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for gateway in self.gateways:
            gateway.stop()

    def displayed(self) -> dict[str, Displayed]:
        out: dict[str, Displayed] = {}
        for gateway in self.gateways:
            out.update(gateway.displayed())
        return out

    def __enter__(self) -> SimulatedGateways:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
