"""Engine -> Mosquitto -> OEPL gateway -> AP emulator -> tags check in -> acks, on a simulated
clock 200x faster than real time, with signed desired states. Faults: an offline tag, 409
storms, an AP reboot mid-push, duplicate pushes."""

from __future__ import annotations

import hashlib
import io
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from PIL import Image

from label_gateway.broker import BrokerAddress, connect, disconnect, new_client
from label_gateway.delivery import (
    DeliveryReport,
    DeliverySettings,
    LabelDelivery,
    push_prices,
)
from label_gateway.label_templates import default_label_templates
from label_gateway.oepl import (
    HW_TAG_TYPES,
    OeplGateway,
    OeplSettings,
    TagBinding,
    label_jpeg,
)
from label_gateway.outbox import Outbox
from label_gateway.protocol import DesiredState, Topics
from label_gateway.render import LabelContent
from label_gateway.signing import Signer
from simulator.oepl_ap import AccessPoint, ApSettings, OeplServer, SimClock

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

GW = "gw-oepl"
SPEED = 200.0
SETTINGS = DeliverySettings(ack_timeout_s=20, max_attempts=1, flush_interval_s=0.05)


@dataclass
class Store:
    ap: AccessPoint
    server: OeplServer
    gateway: OeplGateway
    topics: Topics
    address: BrokerAddress
    outbox: Outbox
    signer: Signer
    labels: list[tuple[str, str, str]]
    macs: dict[str, str]  # label -> mac

    def push(self, prices: dict[str, int]) -> DeliveryReport:
        return push_prices(prices, self.labels, self.address, self.topics, self.outbox, currency="EUR",
                           correlation=f"plan-{uuid.uuid4().hex[:6]}", signer=self.signer, settings=SETTINGS)

    def expected_pixels(self, label: str, sku: str, cents: int) -> str:
        """MD5 of the pixels of our own render of ``sku`` at ``cents`` on this label's tag."""
        hw = self.ap.record(self.macs[label])["hwType"]  # type: ignore[index]
        content = LabelContent.build(sku=sku, name=sku, price_cents=cents, currency="EUR")
        jpeg = label_jpeg(content, default_label_templates().tag(HW_TAG_TYPES[hw]))
        with Image.open(io.BytesIO(jpeg)) as image:
            return hashlib.md5(image.convert("RGB").tobytes()).hexdigest()


def _store(mqtt_broker, topics: Topics, tmp_path, n: int = 6, ap_settings: ApSettings | None = None,
           online: tuple[bool, ...] = ()) -> Store:
    clock = SimClock(speed=SPEED)
    ap = AccessPoint(ap_settings or ApSettings(attempts=5), clock)
    labels, bindings, macs = [], {}, {}
    for i in range(n):
        mac = f"0000021EC9{i:06X}"
        ap.add_tag(mac, i % 3)
        label = f"L{i:03d}"
        labels.append((label, GW, f"{i:04d}"))
        bindings[label] = TagBinding(label, mac)
        macs[label] = mac
    server = OeplServer(ap).start()
    signer = Signer.generate()
    gateway = OeplGateway(
        mqtt_broker.address, topics, GW, server.url, bindings, trusted=signer.trusted(),
        settings=OeplSettings(poll_interval_s=2.0), clock=clock,
    ).start()
    outbox = Outbox.open(tmp_path / "engine.db", topics.store)
    return Store(ap, server, gateway, topics, mqtt_broker.address, outbox, signer, labels, macs)


@pytest.fixture
def store(mqtt_broker, topics, tmp_path) -> Iterator[Store]:
    s = _store(mqtt_broker, topics, tmp_path)
    yield s
    s.gateway.stop()
    s.server.stop()


def _prices(s: Store, base: int) -> dict[str, int]:
    return {sku: base + i for i, (_, _, sku) in enumerate(s.labels)}


def _assert_shows(s: Store, prices: dict[str, int], labels: list[str] | None = None) -> None:
    for label, _, sku in s.labels:
        if labels is not None and label not in labels:
            continue
        shown = s.ap.shown(s.macs[label])
        assert shown is not None, f"{label} shows nothing"
        assert shown.pixels_md5 == s.expected_pixels(label, sku, prices[sku]), f"{label} shows another image"


def test_every_label_is_confirmed_with_the_right_image(store: Store) -> None:
    prices = _prices(store, 199)
    report = store.push(prices)
    assert len(report.confirmed) == len(store.labels) and not report.failed
    _assert_shows(store, prices)
    assert store.gateway.counters.uploads == len(store.labels)
    for mac in store.macs.values():
        shown = store.ap.shown(mac)
        assert shown is not None and shown.refreshes == 1
        assert store.ap.record(mac)["batteryMv"] < 3000  # type: ignore[index]  (a refresh costs battery)
    health = store.gateway.health()
    assert all(h.seen and h.rssi is not None and h.rssi < 0 for h in health.values())


def test_an_offline_tag_fails_with_a_reason_and_is_confirmed_when_it_returns(store: Store) -> None:
    offline = store.labels[2][0]
    store.ap.set_online(store.macs[offline], False)
    prices = _prices(store, 250)
    report = store.push(prices)
    failed = {o.label_id: o.detail for o in report.failed}
    assert set(failed) == {offline}
    assert "xfer timeout" in failed[offline] and "offline" in failed[offline]
    assert len(report.confirmed) == len(store.labels) - 1
    assert store.ap.shown(store.macs[offline]) is None  # nothing confirmed that is not shown
    store.ap.set_online(store.macs[offline], True)
    assert store.outbox.reopen() == 1
    again = LabelDelivery(store.address, store.topics, store.outbox, SETTINGS, signer=store.signer).run()
    assert [o.label_id for o in again.confirmed] == [offline]
    _assert_shows(store, prices)


def test_a_409_storm_delays_but_loses_nothing(mqtt_broker, topics, tmp_path) -> None:
    s = _store(mqtt_broker, topics, tmp_path, ap_settings=ApSettings(attempts=5, busy_rate=0.6, seed=3))
    try:
        s.ap.storm(30.0)
        prices = _prices(s, 300)
        report = s.push(prices)
        assert len(report.confirmed) == len(s.labels) and not report.failed
        assert s.gateway.counters.conflicts >= 3 and s.ap.conflicts == s.gateway.counters.conflicts
        _assert_shows(s, prices)
        assert all(s.ap.shown(m).refreshes == 1 for m in s.macs.values())  # type: ignore[union-attr]
    finally:
        s.gateway.stop()
        s.server.stop()


def test_an_ap_reboot_mid_push_loses_nothing_and_confirms_only_what_is_shown(mqtt_broker, topics, tmp_path) -> None:
    # Slow check-ins (the AP holds the messages a while) so the reboot finds a queue to forget.
    s = _store(mqtt_broker, topics, tmp_path, n=9, ap_settings=ApSettings(attempts=5, checkin_s=300.0))
    try:
        prices = _prices(s, 400)
        result: list[DeliveryReport] = []
        pushing = threading.Thread(target=lambda: result.append(s.push(prices)))
        pushing.start()
        deadline = time.monotonic() + 20
        while s.ap.uploads < 4 and time.monotonic() < deadline:
            time.sleep(0.005)
        lost = s.server.reboot(down_s=0.3)
        pushing.join(60)
        assert lost >= 1  # messages the AP had queued and forgot
        (report,) = result
        assert len(report.confirmed) == len(s.labels) and not report.failed, (report.summary(), report.failed, s.gateway.counters)
        assert s.gateway.counters.reuploads >= 1 and s.gateway.counters.ap_errors >= 1
        _assert_shows(s, prices)
    finally:
        s.gateway.stop()
        s.server.stop()


def test_a_duplicate_push_does_not_refresh_twice(store: Store, mqtt_broker) -> None:
    prices = _prices(store, 500)
    assert len(store.push(prices).confirmed) == len(store.labels)
    # The same desired state again (QoS 1 may deliver twice; a retry re-sends it): no upload.
    label, _, sku = store.labels[0]
    row = next(r for r in store.outbox.rows() if r.label_id == label)
    state = DesiredState.build(label=label, sku=sku, version=row.version, price_cents=prices[sku], currency="EUR",
                               correlation="dup")
    (proof,) = store.signer.sign_batch([state.signed_message(store.topics.store)])
    state = state.model_copy(update={"key_id": proof.key_id, "signature": proof.signature})
    client = new_client("test-dup")
    connect(client, mqtt_broker.address)
    uploads = store.ap.uploads
    client.publish(store.topics.desired(GW, label), state.to_json(), qos=1).wait_for_publish(5)
    disconnect(client)
    deadline = time.monotonic() + 10
    while store.gateway.counters.duplicates < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.gateway.counters.duplicates == 1
    # A restarted gateway (it remembers nothing) gets the retained states: the AP shows them already.
    store.gateway.stop()
    clock = store.gateway.clock
    store.gateway = OeplGateway(
        mqtt_broker.address, store.topics, GW, store.server.url,
        {lbl: TagBinding(lbl, mac) for lbl, mac in store.macs.items()}, trusted=store.signer.trusted(),
        settings=OeplSettings(poll_interval_s=2.0), clock=clock,
    ).start()
    deadline = time.monotonic() + 10
    while store.gateway.counters.unchanged < len(store.labels) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.gateway.counters.unchanged == len(store.labels)
    assert store.ap.uploads == uploads
    assert all(store.ap.shown(m).refreshes == 1 for m in store.macs.values())  # type: ignore[union-attr]


def test_an_unsigned_state_is_rejected_and_never_uploaded(store: Store, mqtt_broker) -> None:
    label, _, sku = store.labels[0]
    forged = DesiredState.build(label=label, sku=sku, version=5, price_cents=1, currency="EUR", correlation="x")
    client = new_client("test-forge")
    connect(client, mqtt_broker.address)
    client.publish(store.topics.desired(GW, label), forged.to_json(), qos=1).wait_for_publish(5)
    disconnect(client)
    deadline = time.monotonic() + 10
    while store.gateway.counters.rejected < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert store.gateway.counters.rejected == 1 and store.ap.uploads == 0


def test_effective_at_uploads_at_the_instant_and_reports_the_real_display_time(store: Store) -> None:
    from datetime import UTC, datetime

    clock = store.gateway.clock
    switch = clock.now() + 400.0  # 2 s of real time ahead on the simulated clock
    prices = _prices(store, 600)
    updates = push_prices(prices, store.labels, store.address, store.topics, store.outbox, currency="EUR",
                          correlation="plan-eff", signer=store.signer, settings=SETTINGS,
                          effective_at=datetime.fromtimestamp(switch, UTC))
    assert len(updates.scheduled) == len(store.labels)
    assert store.ap.uploads == 0  # an OEPL tag cannot hold an image for later
    deadline = time.monotonic() + 30
    while store.gateway.counters.displayed < len(store.labels) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert store.gateway.counters.displayed == len(store.labels)
    for mac in store.macs.values():
        shown = store.ap.shown(mac)
        assert shown is not None and shown.updatelast >= switch
    _assert_shows(store, prices)
