"""Read-back reconciliation: the retained desired states on the broker against the outbox."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from label_gateway.broker import BrokerAddress, connect, disconnect, new_client
from label_gateway.delivery import desired_state_json
from label_gateway.outbox import LabelRow, LabelUpdate, Outbox
from label_gateway.protocol import DesiredState, Topics
from label_gateway.readback import (
    clear_retained_topics,
    compare,
    read_back,
    read_retained,
)

TOPICS = Topics("store-1", prefix="t")
ISSUED = "2026-11-22T14:00:00+00:00"


def _outbox(tmp_path: Path, labels: int = 4, gateways: int = 2, store: str = "store-1") -> Outbox:
    outbox = Outbox.open(tmp_path / f"{uuid.uuid4().hex}.db", store)
    outbox.enqueue([
        LabelUpdate(f"L{i}", f"gw-{i % gateways}", f"{i:04d}", 100 + i, "EUR", "plan-1") for i in range(labels)
    ])
    return outbox


def _confirm(outbox: Outbox) -> list[LabelRow]:
    outbox.save([
        replace(r, state="confirmed", attempts=1, confirmed_version=r.version, confirmed_price_cents=r.price_cents,
                confirmed_hash=r.content_hash)
        for r in outbox.rows()
    ])
    return outbox.rows()


def _retained(rows: list[LabelRow], topics: Topics = TOPICS) -> dict[str, bytes]:
    return {topics.desired(r.gateway, r.label_id): desired_state_json(r, ISSUED) for r in rows}


def _forged(row: LabelRow, **change: object) -> bytes:
    fields = {"label": row.label_id, "sku": row.sku, "version": row.version, "price_cents": row.price_cents,
              "currency": row.currency, "correlation": "evil", "reference_cents": row.reference_cents} | change
    return DesiredState.build(**fields).to_json()  # type: ignore[arg-type]


# -- compare: plain data ----------------------------------------------------------------------------


def test_a_retained_state_equal_to_the_outbox_is_no_difference(tmp_path: Path) -> None:
    rows = _confirm(_outbox(tmp_path))
    found = compare(rows, _retained(rows), TOPICS)
    assert (found.checked, found.differing, found.unknown, found.retained) == (4, [], [], 4)


def test_every_kind_of_difference_is_found_with_its_reason(tmp_path: Path) -> None:
    rows = _confirm(_outbox(tmp_path, labels=7))
    retained = _retained(rows)
    topic = {r.label_id: TOPICS.desired(r.gateway, r.label_id) for r in rows}
    del retained[topic["L0"]]
    retained[topic["L1"]] = b'{"v": 1, "label": "L1", "price": "0.01"'
    retained[topic["L2"]] = _forged(rows[3])  # another label's state on L2's topic
    retained[topic["L3"]] = _forged(rows[3], sku="9999")
    retained[topic["L4"]] = _forged(rows[4], version=rows[4].version + 1000, price_cents=1)
    retained[topic["L5"]] = _forged(rows[5], reference_cents=999)  # same price, other content
    retained[topic["L6"]] = _forged(rows[6], version=rows[6].version + 1)
    found = compare(rows, retained, TOPICS)
    reasons = {d.label_id: d.reason for d in found.differing}
    assert reasons == {"L0": "missing", "L1": "unparsable", "L2": "label", "L3": "sku", "L4": "price",
                       "L5": "content_hash", "L6": "version"}
    assert found.by_reason() == {r: 1 for r in ("missing", "unparsable", "label", "sku", "price", "content_hash", "version")}
    price = next(d for d in found.differing if d.reason == "price")
    assert "0.01" in price.detail and price.topic == topic["L4"] and price.gateway == "gw-0"
    assert sorted(found.labels) == [f"L{i}" for i in range(7)]


def test_a_signed_state_compares_on_its_content_only(tmp_path: Path) -> None:
    """Signatures are checked by the labels; the read-back compares version, content, price and SKU."""
    rows = _confirm(_outbox(tmp_path, labels=1))
    fields = json.loads(desired_state_json(rows[0], ISSUED)) | {"key_id": "0123456789abcdef", "signature": "A" * 86}
    signed = json.dumps(fields).encode()
    assert compare(rows, {TOPICS.desired("gw-0", "L0"): signed}, TOPICS).differing == []


def test_unknown_topics_are_reported_and_unsent_rows_skipped(tmp_path: Path) -> None:
    outbox = _outbox(tmp_path, labels=3)
    rows = outbox.rows()
    outbox.save([replace(rows[0], state="sent", attempts=1), replace(rows[1], state="pending", attempts=2)])
    rows = outbox.rows()  # L0 sent, L1 pending after an attempt, L2 never sent
    retained = _retained(rows[:2])
    stray = TOPICS.desired("gw-9", "L99")
    moved = TOPICS.desired("gw-1", "L0")  # a known label under another gateway than the outbox's
    retained[stray] = retained[moved] = _forged(rows[0])
    found = compare(rows, retained, TOPICS)
    assert (found.checked, found.skipped, found.differing) == (2, 1, [])
    assert found.unknown == sorted([stray, moved])
    only = compare(rows, {k: v for k, v in retained.items() if "/gw-0/" in k}, TOPICS, gateway="gw-0")
    assert (only.checked, only.skipped, only.unknown) == (1, 1, [])
    summary = found.summary()
    assert summary["readback_unknown"] == 2 and summary["readback_differing"] == 0 and summary["readback_reasons"] == {}


def test_reopen_labels_makes_confirmed_and_failed_rows_pending(tmp_path: Path) -> None:
    outbox = _outbox(tmp_path, labels=4)
    rows = _confirm(outbox)
    outbox.save([replace(rows[1], state="failed", attempts=5, last_error="no ack")])
    assert outbox.reopen_labels(["L0", "L1", "L0", "nope"]) == 2
    assert outbox.reopen_labels([]) == 0
    states = {r.label_id: (r.state, r.attempts, r.last_error, r.version) for r in outbox.rows()}
    assert states["L0"] == ("pending", 0, None, rows[0].version)
    assert states["L1"] == ("pending", 0, None, rows[1].version)
    assert states["L2"][0] == states["L3"][0] == "confirmed"
    other = Outbox(outbox.engine, "store-2")
    assert other.reopen_labels(["L2"]) == 0  # another store's labels are not touched


# -- against the broker --------------------------------------------------------------------------------


def _publish(address: BrokerAddress, messages: dict[str, bytes]) -> None:
    client = new_client("test-publisher")
    client.max_inflight_messages_set(100)
    connect(client, address)
    try:
        for info in [client.publish(topic, payload, qos=1, retain=True) for topic, payload in messages.items()]:
            info.wait_for_publish(10)
    finally:
        disconnect(client)


@pytest.mark.integration
def test_read_back_finds_forged_lost_and_unknown_retained_states(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    outbox = _outbox(tmp_path, labels=40, gateways=3, store=topics.store)
    rows = _confirm(outbox)
    by_label = {r.label_id: r for r in rows}
    retained = _retained(rows, topics)
    _publish(mqtt_broker.address, retained)
    assert read_back(mqtt_broker.address, topics, outbox).differing == []

    forged = by_label["L4"]
    stray = topics.desired("gw-7", "L400")
    _publish(mqtt_broker.address, {
        topics.desired(forged.gateway, "L4"): _forged(forged, version=forged.version + 10, price_cents=1),
        topics.desired(by_label["L5"].gateway, "L5"): b"not json",
        topics.desired(by_label["L6"].gateway, "L6"): b"",  # cleared
        stray: _forged(forged),
    })
    found = read_back(mqtt_broker.address, topics, outbox)
    assert {d.label_id: d.reason for d in found.differing} == {"L4": "price", "L5": "unparsable", "L6": "missing"}
    assert found.unknown == [stray] and found.checked == 40 and found.retained == 40
    one = read_back(mqtt_broker.address, topics, outbox, gateway=forged.gateway)
    assert [d.label_id for d in one.differing] == ["L4"] and one.unknown == []

    assert clear_retained_topics(mqtt_broker.address, found.unknown) == 1
    assert read_back(mqtt_broker.address, topics, outbox).unknown == []


@pytest.mark.integration
def test_exact_topics_are_asked_for_when_no_filter_brought_them(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    """The fallback for what a lossy burst dropped: expected topics asked for one by one, in batches."""
    rows = _confirm(_outbox(tmp_path, labels=30, gateways=2, store=topics.store))
    _publish(mqtt_broker.address, _retained(rows[:25], topics))
    expected = [topics.desired(r.gateway, r.label_id) for r in rows]
    got = read_retained(mqtt_broker.address, topics, gateways=[], expected=expected, whole_store=False, batch=7)
    assert set(got) == set(expected[:25])
