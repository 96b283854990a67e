"""Head office's side of the chain channel: publish each store's signed plan, read the stores' answers.

In: the head-office broker's address, the topic prefix, one ``PricePlan`` per store and the
engine's signing keys (the ``KeyDirectory`` of ``esl-pricing keys create``, or a ``Signer``).
Out: each plan as a signed envelope (label_gateway/plan_channel.py), retained at QoS 1 on
``{prefix}/chain/{store}/plan`` of the head-office broker; a summary of what was published. The
stores' Mosquitto bridges carry it on; a store that is offline gets the latest plan when its
bridge is back (retained). ``collect_results`` reads what the stores answered
(``{prefix}/chain/{store}/plan/result``, retained too). See docs/chain-bridge.md.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from label_gateway.broker import (
    BrokerAddress,
    BrokerError,
    connect,
    disconnect,
    new_client,
)
from label_gateway.plan_channel import (
    QOS,
    ChainTopics,
    PlanRefused,
    PlanResult,
    read_result,
    seal_plan,
)
from label_gateway.signing import KeyDirectory, Signer
from pricing.plan.price_plan import PricePlan


def plan_bytes(plan: PricePlan) -> bytes:
    """A plan's JSON exactly as its plan file holds it (PricePlan.write)."""
    return (plan.model_dump_json(indent=2) + "\n").encode()


def publish_store_plans(
    address: BrokerAddress,
    prefix: str,
    plans: Mapping[str, PricePlan],
    keys: KeyDirectory | Signer,
    *,
    issued_at: datetime | None = None,
    timeout: float = 30.0,
) -> dict[str, dict[str, Any]]:
    """Publish each store's plan, signed and retained, and wait for every PUBACK.

    Returns, per store: ``plan_id``, ``topic``, ``issued_at``, ``plan_bytes`` (its JSON),
    ``wire_bytes`` (the envelope), ``sha256`` and ``changes``. A plan whose ``store`` is not the
    store it is given for is a ValueError (nothing is published then); BrokerError (one line) when
    the broker cannot be reached or does not acknowledge within ``timeout``; SigningError when the
    keys cannot sign."""
    wrong = [f"{store} (plan {plan.plan_id} is for {plan.store})" for store, plan in plans.items() if plan.store != store]
    if wrong:
        raise ValueError("plans given for another store: " + ", ".join(wrong))
    signer = keys.signer() if isinstance(keys, KeyDirectory) else keys
    topics = ChainTopics(prefix)
    at = issued_at or datetime.now(UTC)
    sealed = {}
    for store, plan in plans.items():
        body = plan_bytes(plan)
        envelope = seal_plan(body, store=store, plan_id=plan.plan_id, signer=signer, issued_at=at)
        sealed[store] = (topics.plan(store), envelope.to_json(), envelope, len(plan.changes))
    client = new_client("headoffice")
    connect(client, address)
    try:
        sent = [(store, client.publish(topic, payload, qos=QOS, retain=True)) for store, (topic, payload, _, _) in sealed.items()]
        deadline = time.monotonic() + timeout
        for store, info in sent:
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                raise BrokerError(f"MQTT broker at {address.url}: could not publish the plan of store {store} ({info.rc})")
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise BrokerError(
                    f"MQTT broker at {address.url} did not acknowledge the plan of store {store} within {timeout:.0f}s"
                )
    finally:
        disconnect(client)
    return {
        store: {
            "plan_id": envelope.plan_id, "topic": topic, "issued_at": envelope.issued_at.isoformat(),
            "plan_bytes": envelope.plan_bytes, "wire_bytes": len(payload), "sha256": envelope.plan_sha256,
            "changes": changes,
        }
        for store, (topic, payload, envelope, changes) in sealed.items()
    }


def collect_results(
    address: BrokerAddress,
    prefix: str,
    *,
    expect: Mapping[str, str] | None = None,
    timeout: float = 10.0,
    settle_s: float = 0.3,
) -> tuple[dict[str, PlanResult], int]:
    """The stores' latest answers, as head office's broker holds them (retained) or receives them.

    With ``expect`` (store -> plan id) it waits until every listed store has answered about that
    plan, or ``timeout``; without, until the retained answers stop arriving for ``settle_s``.
    Returns (store -> its latest PlanResult, malformed answers dropped); a result is believed only
    on its own store's topic."""
    topics = ChainTopics(prefix)
    results: dict[str, PlanResult] = {}
    malformed = [0]
    changed = threading.Condition()
    last = [time.monotonic()]

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        store = topics.store_of(message.topic)
        if store is None or not message.payload:
            return
        try:
            result = read_result(message.payload)
        except PlanRefused:
            result = None
        with changed:
            if result is None or result.store != store:
                malformed[0] += 1
            else:
                results[store] = result
            last[0] = time.monotonic()
            changed.notify_all()

    def done() -> bool:
        if expect is None:
            return time.monotonic() - last[0] >= settle_s
        return all(store in results and results[store].plan_id == plan for store, plan in expect.items())

    client = new_client("headoffice-results")
    client.on_message = on_message
    connect(client, address)
    try:
        client.subscribe(topics.result_filter, qos=QOS)
        deadline = time.monotonic() + timeout
        with changed:
            last[0] = time.monotonic()
            while not done():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                changed.wait(min(remaining, settle_s / 2 if expect is None else remaining))
            return dict(results), malformed[0]
    finally:
        disconnect(client)


__all__ = ["collect_results", "plan_bytes", "publish_store_plans"]
