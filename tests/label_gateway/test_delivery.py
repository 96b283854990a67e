"""Delivery through a real broker, against the simulator's gateways: outbox -> MQTT -> labels -> acks."""

from __future__ import annotations

import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from label_gateway import broker, delivery
from label_gateway.broker import (
    BrokerAddress,
    BrokerError,
    connect,
    disconnect,
    new_client,
)
from label_gateway.delivery import DeliverySettings, LabelDelivery, push_prices
from label_gateway.outbox import LabelUpdate, Outbox
from label_gateway.protocol import QOS, Topics, utc_now
from pricing.core.timestamps import now_us
from simulator.gateways import SimulatedGateways

pytestmark = pytest.mark.integration

LABELS = [(f"L{i:04d}", f"gw-{i % 3 + 1:02d}", f"{i:06d}") for i in range(300)]
PRICES = {sku: 100 + i for i, (_, _, sku) in enumerate(LABELS)}
FAST = DeliverySettings(ack_timeout_s=2.0, backoff_base_s=0.1, backoff_max_s=0.5, max_attempts=3)


def _outbox(tmp_path: Path, name: str = "engine.db") -> Outbox:
    return Outbox.open(tmp_path / name, "store-test")


def _push(broker: BrokerAddress, topics: Topics, outbox: Outbox, prices: dict[str, int], labels=LABELS, **kw):
    return push_prices(prices, labels, broker, topics, outbox, currency="EUR", correlation="plan-test",
                       settings=kw.pop("settings", FAST), **kw)


def _wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_every_label_confirmed_displayed_and_recorded(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    outbox = _outbox(tmp_path)
    with SimulatedGateways(mqtt_broker.address, topics, LABELS) as sim:
        settings = FAST.model_copy(update={"window_per_gateway": 16})
        report = _push(mqtt_broker.address, topics, outbox, PRICES, settings=settings)
        shown = sim.displayed()
    assert len(report.confirmed) == 300 and not report.failed and not report.waiting
    assert {label: shown[label].price_cents for label, _, _ in LABELS} == {
        label: PRICES[sku] for label, _, sku in LABELS
    }
    rows = outbox.rows()
    assert all(r.state == "confirmed" and r.confirmed_price_cents == r.price_cents for r in rows)
    assert all(r.battery_mv is not None for r in rows)  # labels report their battery


def test_pushing_what_labels_show_sends_nothing(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    outbox = _outbox(tmp_path)
    with SimulatedGateways(mqtt_broker.address, topics, LABELS[:30]):
        _push(mqtt_broker.address, topics, outbox, PRICES, labels=LABELS[:30])
        again = _push(mqtt_broker.address, topics, outbox, PRICES, labels=LABELS[:30])
    assert again.enqueued is not None and again.enqueued.already_shown == 30
    assert again.sent == 0 and again.outcomes == []


def test_resending_shown_content_costs_the_label_no_refresh(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    """The engine lost its database: it sends everything again, and the labels answer unchanged."""
    with SimulatedGateways(mqtt_broker.address, topics, LABELS[:30]) as sim:
        _push(mqtt_broker.address, topics, _outbox(tmp_path, "a.db"), PRICES, labels=LABELS[:30])
        refreshes = sum(g.counters.applied for g in sim.gateways)
        report = _push(mqtt_broker.address, topics, _outbox(tmp_path, "b.db"), PRICES, labels=LABELS[:30])
        assert len(report.confirmed) == 30
        assert sum(g.counters.applied for g in sim.gateways) == refreshes
        assert sum(g.counters.unchanged for g in sim.gateways) == 30


def test_no_gateway_means_retries_then_failed_with_reason(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    settings = DeliverySettings(ack_timeout_s=0.3, backoff_base_s=0.05, backoff_max_s=0.1, max_attempts=2)
    report = _push(mqtt_broker.address, topics, _outbox(tmp_path), PRICES, labels=LABELS[:5], settings=settings)
    assert len(report.failed) == 5 and report.retries == 5
    assert {o.detail for o in report.failed} == {"no ack within 0.3s (after 2 attempts)"}


def test_a_gateway_that_starts_late_gets_the_retained_state(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    settings = DeliverySettings(ack_timeout_s=0.3, backoff_base_s=0.05, backoff_max_s=0.1, max_attempts=1)
    _push(mqtt_broker.address, topics, _outbox(tmp_path), PRICES, labels=LABELS[:12], settings=settings)
    with SimulatedGateways(mqtt_broker.address, topics, LABELS[:12]) as sim:
        assert _wait_for(lambda: len(sim.displayed()) == 12)
        assert {k: v.price_cents for k, v in sim.displayed().items()} == {
            label: PRICES[sku] for label, _, sku in LABELS[:12]
        }


def test_malformed_acks_and_statuses_are_counted_not_fatal(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    with SimulatedGateways(mqtt_broker.address, topics, LABELS[:30]):
        noise = new_client("noise")
        connect(noise, mqtt_broker.address)
        stop = threading.Event()

        def spam() -> None:
            while not stop.is_set():
                noise.publish(topics.ack("gw-01"), b"{garbage", qos=QOS)
                noise.publish(topics.ack("gw-02"), b'{"v":1,"gateway":"gw-02","acks":[{"label":"L0001"}]}', qos=QOS)
                noise.publish(topics.status("gw-03"), b'{"v":1,"gateway":"gw-01","state":"offline"}', qos=QOS)
                stop.wait(0.01)

        spammer = threading.Thread(target=spam)
        spammer.start()
        try:
            report = _push(mqtt_broker.address, topics, _outbox(tmp_path), PRICES, labels=LABELS[:30])
        finally:
            stop.set()
            spammer.join()
            disconnect(noise)
    assert len(report.confirmed) == 30
    assert report.malformed_acks > 0 and report.malformed_status > 0


def test_effective_at_switches_every_label_at_the_instant(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    outbox = _outbox(tmp_path)
    labels = LABELS[:60]
    with SimulatedGateways(mqtt_broker.address, topics, labels) as sim:
        _push(mqtt_broker.address, topics, outbox, PRICES, labels=labels)
        before = {k: v.price_cents for k, v in sim.displayed().items()}
        instant = utc_now() + timedelta(seconds=2)
        later = {sku: cents + 50 for sku, cents in PRICES.items()}
        report = _push(mqtt_broker.address, topics, outbox, later, labels=labels, effective_at=instant)
        assert len(report.scheduled) == 60 and not report.failed
        assert {k: v.price_cents for k, v in sim.displayed().items()} == before  # not yet
        assert _wait_for(lambda: all(v.price_cents == before[k] + 50 for k, v in sim.displayed().items()), 10)
        switched = [entry for entries in sim.history().values() for entry in entries[1:]]
        assert len(switched) == 60
        assert all(entry.applied_at >= instant for entry in switched)
        # The labels' displayed acks arrive while nobody listens; a reconcile run records them.
        resume = LabelDelivery(mqtt_broker.address, topics, outbox, FAST)
        assert outbox.reopen() == 60
        assert len(resume.run().confirmed) == 60
    assert all(r.state == "confirmed" and r.confirmed_price_cents == r.price_cents for r in outbox.rows())


def test_a_label_ahead_of_the_outbox_is_an_alarm_never_arithmetic(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    """A label claiming a version this outbox never issued (another engine, a forged state, a
    restored backup) is re-pushed once with the engine's own version, then failed with the reason;
    the engine never issues a version derived from the claim."""
    labels = LABELS[:3]
    with SimulatedGateways(mqtt_broker.address, topics, labels) as sim:
        newer = _outbox(tmp_path, "newer.db")
        ahead = now_us() + 10**12  # eleven days ahead of the clock
        newer.enqueue([LabelUpdate(lbl, gw, sku, 999, "EUR", "p", version=ahead) for lbl, gw, sku in labels])
        LabelDelivery(mqtt_broker.address, topics, newer, FAST).run()
        restored = _outbox(tmp_path, "restored.db")
        report = _push(mqtt_broker.address, topics, restored, {sku: 150 for _, _, sku in labels}, labels=labels)
        assert report.forged_versions == 6 and len(report.failed) == 3  # each re-pushed once, then failed
        assert all("never issued" in o.detail for o in report.failed)
        assert max(row.version for row in restored.rows()) < ahead  # no version taken from a claim
        assert {v.price_cents for v in sim.displayed().values()} == {999}


def test_unreachable_broker_is_one_clear_error(topics: Topics, tmp_path: Path) -> None:
    from label_gateway.embedded_broker import free_port

    address = BrokerAddress("127.0.0.1", free_port())
    outbox = _outbox(tmp_path)
    outbox.enqueue([LabelUpdate("L1", "gw-01", "000001", 100, "EUR", "p")])
    with pytest.raises(BrokerError, match=f"cannot reach MQTT broker at mqtt://127.0.0.1:{address.port}"):
        LabelDelivery(address, topics, outbox, DeliverySettings(connect_timeout_s=2)).run()
    assert [r.state for r in outbox.rows()] == ["pending"]  # nothing lost: it waits in the outbox


@pytest.fixture
def fds_above_1023() -> Iterator[Callable[[], None]]:
    """Takes every file descriptor below 1024 (by /dev/null), so the next socket is numbered 1024
    or more: past what select.select() accepts. Yields a function that takes the ones freed since
    (other threads and the garbage collector close files): call it just before opening the socket."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 4096
    if soft < wanted:
        if hard != resource.RLIM_INFINITY and hard < wanted:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is too low to open 1024 files")
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    dummies: list[int] = []

    def fill() -> None:
        while True:
            fd = os.open(os.devnull, os.O_RDONLY)
            if fd >= 1024:
                os.close(fd)
                return
            dummies.append(fd)

    try:
        fill()
        yield fill
    finally:
        for fd in dummies:
            os.close(fd)
        if soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_socket_numbered_1024_or_more_delivers_without_spinning(
    mqtt_broker, topics: Topics, tmp_path: Path, fds_above_1023: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    numbers: list[int] = []

    def open_socket(client, address, **kw) -> None:
        fds_above_1023()
        broker.open_socket(client, address, **kw)
        numbers.append(client.socket().fileno())

    monkeypatch.setattr(delivery, "open_socket", open_socket)
    turns = [0]

    def progress(done: int, total: int) -> None:
        turns[0] += 1

    outbox = _outbox(tmp_path)
    with SimulatedGateways(mqtt_broker.address, topics, LABELS[:30]):
        # Labels acknowledge within milliseconds; every ack arrives one ack_flush_s (0.02 s) later.
        started = time.monotonic()
        report = _push(mqtt_broker.address, topics, outbox, PRICES, labels=LABELS[:30], progress=progress)
        seconds = time.monotonic() - started
    assert numbers and numbers[0] >= 1024
    assert len(report.confirmed) == 30 and not report.failed and not report.waiting
    # The loop waits for the network (up to 20 ms a turn); a loop that cannot wait turns
    # hundreds of thousands of times a second.
    assert turns[0] <= 200 + seconds / 0.02 * 2, (turns[0], seconds)


def test_a_connection_cut_mid_push_is_reconnected_and_the_push_completes(
    mqtt_broker, topics: Topics, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clients: list = []

    def open_socket(client, address, **kw) -> None:
        broker.open_socket(client, address, **kw)
        clients.append(client)

    monkeypatch.setattr(delivery, "open_socket", open_socket)
    sockets: list = []

    def progress(done: int, total: int) -> None:
        sock = clients[0].socket()
        if sock is not None and sock not in sockets:
            sockets.append(sock)
            if len(sockets) == 1:
                sock.shutdown(socket.SHUT_RDWR)  # the broker sees the connection drop

    with SimulatedGateways(mqtt_broker.address, topics, LABELS[:30]):
        report = _push(mqtt_broker.address, topics, _outbox(tmp_path), PRICES, labels=LABELS[:30], progress=progress)
    assert report.reconnects == 1 and len(sockets) == 2
    assert len(report.confirmed) == 30 and not report.failed and not report.waiting
