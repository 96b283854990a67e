"""Push label updates over MQTT and track each one until its label acknowledges it.

A change is done when the label says it is displayed, not at PUBACK. Each gateway has a bounded
window of updates in flight, so a slow gateway is never flooded and the broker never has to
queue more than the window for it (Mosquitto drops QoS 1 messages past max_queued_messages).
An update with no ack within ``ack_timeout_s`` is failed with that reason.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import paho.mqtt.client as mqtt

from label_gateway.broker import (
    BrokerAddress,
    BrokerError,
    connect,
    disconnect,
    new_client,
)
from label_gateway.protocol import (
    QOS,
    DesiredState,
    LabelAck,
    ProtocolError,
    Topics,
    parse,
)


@dataclass(frozen=True)
class LabelUpdate:
    """One label's new desired state, as the plan decided it."""

    label_id: str
    gateway: str
    sku: str
    price_cents: int
    version: int
    currency: str
    correlation: str
    effective_at: datetime | None = None

    def desired_state(self) -> DesiredState:
        return DesiredState.build(
            label=self.label_id,
            sku=self.sku,
            version=self.version,
            price_cents=self.price_cents,
            currency=self.currency,
            correlation=self.correlation,
            effective_at=self.effective_at,
        )


def updates_for_prices(
    prices: Mapping[str, int],
    labels: Iterable[tuple[str, str, str]],
    *,
    version: int,
    currency: str,
    correlation: str,
    effective_at: datetime | None = None,
) -> list[LabelUpdate]:
    """One update per label whose SKU has a new price. ``labels`` are (label_id, gateway, sku);
    a SKU may sit on several labels (shelf and end cap)."""
    return [
        LabelUpdate(label_id, gateway, sku, prices[sku], version, currency, correlation, effective_at)
        for label_id, gateway, sku in labels
        if sku in prices
    ]


def version_now() -> int:
    """A label version from the wall clock in microseconds: later plans get higher versions
    without any shared counter."""
    return time.time_ns() // 1000


@dataclass(frozen=True)
class Outcome:
    update: LabelUpdate
    state: Literal["confirmed", "failed"]
    detail: str
    seconds: float


@dataclass
class DeliveryReport:
    outcomes: list[Outcome] = field(default_factory=list)
    seconds: float = 0.0
    malformed_acks: int = 0
    unmatched_acks: int = 0

    @property
    def confirmed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == "confirmed"]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == "failed"]


@dataclass
class _InFlight:
    update: LabelUpdate
    sent_at: float


class LabelPusher:
    """Publishes desired states and waits for acks, with a bounded window per gateway."""

    def __init__(
        self,
        address: BrokerAddress,
        topics: Topics,
        *,
        window_per_gateway: int = 200,
        ack_timeout_s: float = 15.0,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if window_per_gateway < 1:
            raise ValueError("window_per_gateway must be >= 1")
        self.address = address
        self.topics = topics
        self.window = window_per_gateway
        self.ack_timeout_s = ack_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._lock = threading.Condition()
        self._inflight: dict[tuple[str, int], _InFlight] = {}
        self._per_gateway: dict[str, int] = {}
        self._report = DeliveryReport()
        self._subscribed = threading.Event()

    def push(
        self,
        updates: Sequence[LabelUpdate],
        progress: Callable[[int, int], None] | None = None,
    ) -> DeliveryReport:
        """Deliver every update; return once each is confirmed or failed."""
        self._check_unique(updates)
        self._report = DeliveryReport()
        self._subscribed.clear()
        started = time.monotonic()
        client = new_client("engine")
        client.on_message = self._on_message
        client.on_subscribe = lambda *args: self._subscribed.set()
        connect(client, self.address, timeout=self.connect_timeout_s)
        try:
            client.subscribe(self.topics.ack_filter, qos=QOS)
            if not self._subscribed.wait(self.connect_timeout_s):
                raise BrokerError(f"MQTT broker at {self.address.url} did not confirm the ack subscription")
            self._run(client, updates, progress)
        finally:
            disconnect(client)
        self._report.seconds = time.monotonic() - started
        return self._report

    @staticmethod
    def _check_unique(updates: Sequence[LabelUpdate]) -> None:
        labels = [u.label_id for u in updates]
        if len(set(labels)) != len(labels):
            raise ValueError("a push holds at most one update per label")

    def _run(
        self,
        client: mqtt.Client,
        updates: Sequence[LabelUpdate],
        progress: Callable[[int, int], None] | None,
    ) -> None:
        queues: dict[str, deque[LabelUpdate]] = {}
        for update in updates:
            queues.setdefault(update.gateway, deque()).append(update)
        total = len(updates)
        with self._lock:
            self._per_gateway = {gateway: 0 for gateway in queues}
        while True:
            with self._lock:
                self._expire(time.monotonic())
                sendable = self._take_sendable(queues)
                done = len(self._report.outcomes)
            for update in sendable:
                payload = update.desired_state().to_json()
                client.publish(self.topics.desired(update.gateway, update.label_id), payload, qos=QOS, retain=True)
            if progress is not None:
                progress(done, total)
            if done == total:
                return
            with self._lock:
                if len(self._report.outcomes) == done:
                    self._lock.wait(0.05)

    def _take_sendable(self, queues: dict[str, deque[LabelUpdate]]) -> list[LabelUpdate]:
        """Move updates into flight up to each gateway's window. Caller holds the lock."""
        now = time.monotonic()
        out: list[LabelUpdate] = []
        for gateway, queue in queues.items():
            while queue and self._per_gateway[gateway] < self.window:
                update = queue.popleft()
                self._inflight[(update.label_id, update.version)] = _InFlight(update, now)
                self._per_gateway[gateway] += 1
                out.append(update)
        return out

    def _expire(self, now: float) -> None:
        """Fail what has waited longer than the ack timeout. Caller holds the lock."""
        late = [key for key, item in self._inflight.items() if now - item.sent_at > self.ack_timeout_s]
        for key in late:
            self._finish(key, "failed", f"no ack within {self.ack_timeout_s:g}s", now)

    def _finish(self, key: tuple[str, int], state: Literal["confirmed", "failed"], detail: str, now: float) -> None:
        item = self._inflight.pop(key)
        self._per_gateway[item.update.gateway] -= 1
        self._report.outcomes.append(Outcome(item.update, state, detail, now - item.sent_at))
        self._lock.notify_all()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            ack = parse(LabelAck, message.payload)
        except ProtocolError:
            with self._lock:
                self._report.malformed_acks += 1
            return
        now = time.monotonic()
        with self._lock:
            key = (ack.label, ack.version)
            item = self._inflight.get(key)
            if item is None:
                self._report.unmatched_acks += 1
                return
            if ack.status in ("displayed", "unchanged"):
                self._finish(key, "confirmed", ack.status, now)
            elif ack.status == "stale":
                # The label shows a newer version than this one: this update was superseded.
                self._finish(key, "failed", f"superseded: label shows version {ack.shown_version}", now)
            else:
                self._finish(key, "failed", f"rejected by label: {ack.reason or 'no reason given'}", now)


def push_prices(
    prices: Mapping[str, int],
    labels: Iterable[tuple[str, str, str]],
    address: BrokerAddress,
    topics: Topics,
    *,
    currency: str,
    correlation: str,
    ack_timeout_s: float = 30.0,
    progress: Callable[[int, int], None] | None = None,
) -> DeliveryReport:
    """Send new prices (sku -> cents) to every label showing those SKUs; wait for the acks."""
    updates = updates_for_prices(prices, labels, version=version_now(), currency=currency, correlation=correlation)
    return LabelPusher(address, topics, ack_timeout_s=ack_timeout_s).push(updates, progress=progress)
