"""Read back what the broker retains, and compare it with the outbox.

The outbox says what every label should show; the retained desired-state topic of each label is
what a gateway that (re)subscribes actually receives. The two can part: someone with publish
rights wrote over the engine's retained message (a forged state), a broker restarted without
persistence forgot it, or a publish never reached the broker. Comparing the outbox's desired and
confirmed columns cannot see any of that, so reconciliation reads the retained messages back:

- each label the outbox has sent is checked: its retained payload must be there (``missing``),
  parse as a ``DesiredState`` (``unparsable``), name the label of its topic (``label``) and carry
  the outbox's ``sku``, ``price_cents``, ``content_hash`` and ``version`` (the first that differs
  is the reason); given the engine's ``Signer``, it must also be signed with the engine's current
  key (``key``: an old key after a rotation, or another one's) and its proof must check
  (``signature``). ``issued_at`` is not compared;
- retained desired states under the store's topics for labels (or label-gateway pairs) the outbox
  does not know are reported as ``unknown``; ``clear_retained_topics`` deletes them.

Rows still ``pending`` and never attempted are skipped: nothing was published for them yet (or an
older version was), and the push that follows sends them anyway.

Collecting retained messages reliably: Mosquitto hands a new subscription its retained messages in
one burst and drops what does not fit the client's queue (``max_queued_messages``). So each known
gateway's filter is subscribed on its own (one gateway's labels per burst), then the store-wide
filter (for gateways the outbox does not know), and every expected topic not seen yet is asked for
again on its own, in batches of ``batch`` topics, until a round finds nothing new. What is still
not seen then is missing on the broker.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import paho.mqtt.client as mqtt

from label_gateway.broker import (
    BrokerAddress,
    BrokerError,
    connect,
    disconnect,
    new_client,
)
from label_gateway.outbox import LabelRow, Outbox
from label_gateway.protocol import DesiredState, ProtocolError, Topics, parse
from label_gateway.signing import Signer, TrustedKeys

Reason = Literal["missing", "unparsable", "label", "sku", "price", "content_hash", "version", "key", "signature"]
REASONS: tuple[Reason, ...] = (
    "missing", "unparsable", "label", "sku", "price", "content_hash", "version", "key", "signature",
)
DEFAULT_SETTLE_S = 0.3
DEFAULT_BATCH = 200  # exact topics per SUBSCRIBE: far below Mosquitto's default queue of 1000


@dataclass(frozen=True)
class Difference:
    """One label whose retained desired state is not the outbox's."""

    label_id: str
    gateway: str
    topic: str
    reason: Reason
    detail: str


@dataclass
class ReadBack:
    """What a read-back found."""

    checked: int = 0  # outbox rows compared with the broker
    skipped: int = 0  # rows pending and never attempted: nothing of theirs to compare yet
    retained: int = 0  # retained desired states found under the store's topics
    differing: list[Difference] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)  # topics with a retained state the outbox does not know

    def by_reason(self) -> dict[str, int]:
        counts = Counter(d.reason for d in self.differing)
        return {reason: counts[reason] for reason in REASONS if counts[reason]}

    @property
    def labels(self) -> list[str]:
        return [d.label_id for d in self.differing]

    def summary(self) -> dict[str, object]:
        return {
            "readback_checked": self.checked,
            "readback_skipped": self.skipped,
            "readback_retained": self.retained,
            "readback_differing": len(self.differing),
            "readback_reasons": self.by_reason(),
            "readback_unknown": len(self.unknown),
        }


def _sent(row: LabelRow) -> bool:
    """The row's desired state has been published at least once (so it should be retained)."""
    return row.state != "pending" or row.attempts > 0


def _compare_one(
    row: LabelRow, topic: str, payload: bytes | None, signer: Signer | None = None, trusted: TrustedKeys | None = None
) -> Difference | None:
    def differs(reason: Reason, detail: str) -> Difference:
        return Difference(row.label_id, row.gateway, topic, reason, detail)

    if payload is None:
        return differs("missing", "no retained desired state on the broker")
    try:
        state = parse(DesiredState, payload)
    except ProtocolError as exc:
        return differs("unparsable", str(exc))
    if state.label != row.label_id:
        return differs("label", f"retained state names label {state.label}")
    if state.sku != row.sku:
        return differs("sku", f"retained sku {state.sku}, outbox {row.sku}")
    if state.price_cents != row.price_cents:
        return differs("price", f"retained price {state.price}, outbox {row.price_cents / 100:.2f} "
                                f"(version {state.version} vs {row.version})")
    if state.content_hash != row.content_hash:
        return differs("content_hash", f"retained content {state.content_hash}, outbox {row.content_hash}")
    if state.version != row.version:
        return differs("version", f"retained version {state.version}, outbox {row.version}")
    if signer is not None:
        if state.key_id != signer.key_id:
            return differs("key", f"signed with key {state.key_id or 'none'}, the engine signs with {signer.key_id}")
        problem = (trusted or signer.trusted()).verify(state.signed_proof(), state.signed_message(row.store))
        if problem is not None:
            return differs("signature", problem)
    return None


def compare(rows: Iterable[LabelRow], retained: Mapping[str, bytes], topics: Topics,
            *, gateway: str | None = None, signer: Signer | None = None) -> ReadBack:
    """Compare outbox rows with retained payloads (topic -> payload; plain data, no broker).

    ``retained`` holds what was read under the store's desired topics (of ``gateway`` only, when
    given); topics in it that no row expects are reported as unknown."""
    result = ReadBack(retained=len(retained))
    trusted = signer.trusted() if signer is not None else None  # one key set: a batch's root is checked once
    expected: set[str] = set()
    for row in rows:
        if gateway is not None and row.gateway != gateway:
            continue
        topic = topics.desired(row.gateway, row.label_id)
        expected.add(topic)
        if not _sent(row):
            result.skipped += 1
            continue
        result.checked += 1
        difference = _compare_one(row, topic, retained.get(topic), signer, trusted)
        if difference is not None:
            result.differing.append(difference)
    result.unknown = sorted(topic for topic in retained if topic not in expected)
    return result


class RetainedReader:
    """Collects the retained messages of topic filters over one connection."""

    def __init__(self, address: BrokerAddress, *, settle_s: float = DEFAULT_SETTLE_S, timeout_s: float = 10.0) -> None:
        self.address = address
        self.settle_s = settle_s
        self.timeout_s = timeout_s
        self.found: dict[str, bytes] = {}
        self._cond = threading.Condition()
        self._last = 0.0
        self._acked: set[int] = set()
        self._client = new_client("readback")
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe

    def __enter__(self) -> RetainedReader:
        connect(self._client, self.address)
        return self

    def __exit__(self, *exc: object) -> None:
        disconnect(self._client)

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if not message.retain:
            return  # a live publish while we read, not what a subscriber is handed
        with self._cond:
            if message.payload:
                self.found[message.topic] = bytes(message.payload)
            else:
                self.found.pop(message.topic, None)
            self._last = time.monotonic()
            self._cond.notify_all()

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, *rest: object) -> None:
        with self._cond:
            self._acked.add(mid)
            self._cond.notify_all()

    def read(self, filters: Sequence[str], *, expect: set[str] | None = None) -> None:
        """Subscribe ``filters`` (one SUBSCRIBE), collect what they retain, unsubscribe. With
        ``expect`` (exact topics), stop waiting as soon as all of them have arrived."""
        if not filters:
            return
        result, mid = self._client.subscribe([(f, 0) for f in filters])
        if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
            raise BrokerError(f"MQTT broker at {self.address.url}: cannot subscribe ({mqtt.error_string(result)})")
        deadline = time.monotonic() + self.timeout_s
        with self._cond:
            while mid not in self._acked:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BrokerError(f"MQTT broker at {self.address.url} did not answer SUBSCRIBE within {self.timeout_s:g}s")
                self._cond.wait(left)
            self._acked.discard(mid)
            quiet_from = time.monotonic()
            while True:  # retained messages come right after SUBACK; wait until they stop
                if expect is not None and expect <= self.found.keys():
                    break
                since = time.monotonic() - max(self._last, quiet_from)
                if since >= self.settle_s:
                    break
                self._cond.wait(self.settle_s - since)
        self._client.unsubscribe(list(filters))


def read_retained(
    address: BrokerAddress,
    topics: Topics,
    *,
    gateways: Iterable[str],
    expected: Iterable[str] = (),
    whole_store: bool = True,
    settle_s: float = DEFAULT_SETTLE_S,
    batch: int = DEFAULT_BATCH,
    passes: int = 3,
) -> dict[str, bytes]:
    """Every retained desired state (topic -> payload) under the store's topics: each gateway's
    filter on its own, the store-wide filter (``whole_store``), then the ``expected`` topics not
    seen yet, asked for exactly, until a round finds nothing new (at most ``passes`` rounds)."""
    wanted = set(expected)
    store_filter = topics.desired_filter("+")
    with RetainedReader(address, settle_s=settle_s) as reader:
        for gateway in sorted(set(gateways)):
            reader.read([topics.desired_filter(gateway)])
        if whole_store:
            reader.read([store_filter])
        for _ in range(max(1, passes)):
            missing = sorted(wanted - reader.found.keys())
            if not missing:
                break
            before = len(reader.found)
            for start in range(0, len(missing), batch):
                chunk = missing[start : start + batch]
                reader.read(chunk, expect=set(chunk))
            if len(reader.found) == before:
                break  # stable: what is still missing is not on the broker
        return dict(reader.found)


def read_back(
    address: BrokerAddress,
    topics: Topics,
    outbox: Outbox,
    *,
    gateway: str | None = None,
    signer: Signer | None = None,
    settle_s: float = DEFAULT_SETTLE_S,
    batch: int = DEFAULT_BATCH,
) -> ReadBack:
    """Read the store's retained desired states (of ``gateway`` only, when given) and compare
    them with the outbox."""
    rows = [row for row in outbox.rows() if gateway is None or row.gateway == gateway]
    gateways = [gateway] if gateway is not None else sorted({row.gateway for row in rows})
    retained = read_retained(
        address, topics, gateways=gateways, expected=[topics.desired(r.gateway, r.label_id) for r in rows if _sent(r)],
        whole_store=gateway is None, settle_s=settle_s, batch=batch,
    )
    return compare(rows, retained, topics, gateway=gateway, signer=signer)


def clear_retained_topics(address: BrokerAddress, topic_names: Sequence[str], *, timeout_s: float = 30.0) -> int:
    """Delete the retained message of each topic (an empty retained payload); returns how many."""
    if not topic_names:
        return 0
    client = new_client("readback-clear")
    client.max_inflight_messages_set(100)  # bounded: Mosquitto drops what a client queues past its limit
    connect(client, address)
    try:
        infos = [client.publish(topic, b"", qos=1, retain=True) for topic in topic_names]
        for info in infos:
            info.wait_for_publish(timeout_s)
    finally:
        disconnect(client)
    return len(topic_names)


__all__ = [
    "REASONS",
    "Difference",
    "ReadBack",
    "RetainedReader",
    "clear_retained_topics",
    "compare",
    "read_back",
    "read_retained",
]
