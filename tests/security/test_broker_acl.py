"""Attacks on the broker layer of trust (DESIGN.md "Trust"): the shipped Mosquitto config
(config/mosquitto/) on a real Mosquitto, users made by our provisioning code, clients made by
label_gateway.broker. One attack per test.

Mosquitto 2.0 grants every SUBSCRIBE (SUBACK "granted") and applies the ACL to each message it
would deliver, and it PUBACKs a publish the ACL refuses and drops it (MQTT 3.1.1 has no way to say
no). So "never arrives" is shown with a sentinel: a message the same publisher sends after the
forged one, on a topic it may write, reaching the same subscriber — Mosquitto keeps one
publisher's order to one subscriber, so the forged message would have come first."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from label_gateway.broker import (
    CA_FILE_ENV,
    BrokerAddress,
    BrokerError,
    Credentials,
    broker_version,
    connect,
    disconnect,
    new_client,
    open_socket,
)
from label_gateway.delivery import DeliverySettings, push_prices
from label_gateway.outbox import Outbox
from label_gateway.protocol import (
    COMPACT_JSON,
    MAX_ACKS_PER_MESSAGE,
    QOS,
    GatewayAcks,
    LabelAck,
    Topics,
)
from simulator.gateways import SimulatedGateways

pytestmark = pytest.mark.security

SETTLE_S = 0.5  # how long to wait for retained messages that should not come


# -- helpers ----------------------------------------------------------------------------------------
class Inbox:
    """What one subscriber received, in order."""

    def __init__(self) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self._changed = threading.Condition()

    def on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.messages.append(message)
            self._changed.notify_all()

    def topics(self) -> list[str]:
        with self._changed:
            return [m.topic for m in self.messages]

    def wait_for(self, predicate: Callable[[list[mqtt.MQTTMessage]], bool], timeout: float = 10.0) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.messages), timeout)

    def wait_for_topic(self, topic: str, timeout: float = 10.0) -> bool:
        return self.wait_for(lambda messages: any(m.topic == topic for m in messages), timeout)


class Clients:
    """Connected clients of one test, all disconnected after it."""

    def __init__(self, address: BrokerAddress) -> None:
        self.address = address
        self._open: list[mqtt.Client] = []

    def connect(self, credentials: Credentials | None, role: str = "test",
                will: tuple[str, bytes] | None = None) -> mqtt.Client:
        client = new_client(role, credentials=credentials)
        client.max_inflight_messages_set(20)  # these tests publish without a window of their own
        if will is not None:
            client.will_set(will[0], will[1], qos=QOS, retain=False)
        connect(client, self.address)
        self._open.append(client)
        return client

    def subscriber(self, credentials: Credentials, *filters: str) -> Inbox:
        """A client of ``credentials`` subscribed to ``filters`` (SUBACK received)."""
        client = self.connect(credentials, "subscriber")
        inbox = Inbox()
        client.on_message = inbox.on_message
        acked = threading.Event()
        client.on_subscribe = lambda *args: acked.set()
        client.subscribe([(topic_filter, QOS) for topic_filter in filters])
        assert acked.wait(10), f"no SUBACK for {filters}"
        return inbox

    def close(self) -> None:
        for client in self._open:
            with contextlib.suppress(Exception):
                disconnect(client)


@pytest.fixture
def clients(secure_env) -> Iterator[Clients]:
    opened = Clients(secure_env.address)
    yield opened
    opened.close()


def _publish(client: mqtt.Client, topic: str, payload: bytes, *, retain: bool = False) -> None:
    """Publish at QoS 1 and wait for the PUBACK (which Mosquitto sends for refused publishes too)."""
    info = client.publish(topic, payload, qos=QOS, retain=retain)
    info.wait_for_publish(10)
    assert info.is_published()


def _desired(label: str, price_cents: int) -> bytes:
    """A desired state as the protocol documents it (the broker never looks inside)."""
    return json.dumps({
        "v": 1, "label": label, "sku": "000123", "version": 1763820000123456, "price": f"{price_cents / 100:.2f}",
        "price_cents": price_cents, "currency": "EUR", "content_hash": "e92ca78ddaaf1700",
        "correlation": "plan-forged", "issued_at": "2026-11-22T14:00:00.123456Z",
    }).encode()


def _acks(gateway: str, count: int, *, label_width: int = 6) -> bytes:
    now = datetime.now(UTC)
    acks = [
        LabelAck(label=f"L{i:0{label_width}d}", version=1763820000123456, status="rejected",
                 shown_version=1763820000123456, content_hash="e92ca78ddaaf1700",
                 correlation="plan-20261122T140000Z-1a2b3c", battery_mv=2890, at=now,
                 reason="label is bound to another SKU (000123 != 000456)")
        for i in range(count)
    ]
    return COMPACT_JSON.encode(GatewayAcks.of(gateway, acks).model_dump(mode="json", exclude_none=True)).encode()


def _status(gateway: str, state: str) -> bytes:
    return json.dumps({"v": 1, "gateway": gateway, "state": state}).encode()


def _retained(clients: Clients, credentials: Credentials, topic_filter: str) -> list[str]:
    """The topics under ``topic_filter`` holding a retained message that ``credentials`` may read."""
    inbox = clients.subscriber(credentials, topic_filter)
    time.sleep(SETTLE_S)
    return [m.topic for m in inbox.messages if m.retain and m.payload]


def _refused(address: BrokerAddress, credentials: Credentials | None) -> str:
    client = new_client("attacker", credentials=credentials)
    with pytest.raises(BrokerError) as caught:
        connect(client, address, timeout=10)
    return str(caught.value)


def _one_line(message: str) -> bool:
    return "\n" not in message and "Traceback" not in message


# -- who may connect ----------------------------------------------------------------------------------
def test_an_anonymous_client_is_refused(secure_env) -> None:
    message = _refused(secure_env.address, None)
    assert message == f"MQTT broker at {secure_env.address.url} refused the connection: Not authorized"


@pytest.mark.parametrize("user", ["gw-01", "engine", "gw-99"])
def test_a_wrong_password_is_refused(secure_env, user: str) -> None:
    message = _refused(secure_env.address, Credentials(user, "not-the-password"))
    assert message == f"MQTT broker at {secure_env.address.url} refused the connection: Not authorized"


def test_a_plain_client_on_the_tls_port_fails_with_one_clear_line(secure_env) -> None:
    plain = BrokerAddress(secure_env.address.host, secure_env.address.port)
    started = time.monotonic()
    message = _refused(plain, secure_env.credentials("engine"))
    assert message == (
        f"MQTT broker at mqtt://127.0.0.1:{plain.port} closed the connection before answering CONNECT "
        "(a TLS listener? use mqtts://)"
    )
    assert time.monotonic() - started < 5  # noticed at once, not after the CONNACK timeout


def test_a_broker_certificate_from_an_unknown_ca_is_refused(secure_env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CA_FILE_ENV)  # the system's CAs, which never signed the test broker
    message = _refused(secure_env.address, secure_env.credentials("engine"))
    assert re.fullmatch(  # OpenSSL 3 says self-signed, 1.1 self signed
        re.escape(f"MQTT broker at {secure_env.address.url}: TLS certificate not accepted: ")
        + "self.signed certificate in certificate chain"
        + re.escape(f" (the system's CAs; set {CA_FILE_ENV})"),
        message,
    ), message


@pytest.fixture
def tls_server_for_another_host(secure_env, tmp_path: Path) -> Iterator[BrokerAddress]:
    """A TLS server on 127.0.0.1 whose certificate (from the test CA) names only another host."""
    cert_file, key_file = secure_env.ca.issue("elsewhere", ["elsewhere.example"])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                connection, _ = server.accept()
                connection.settimeout(5)
                with contextlib.suppress(OSError), context.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(1)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield BrokerAddress("127.0.0.1", server.getsockname()[1], tls=True)
    stop.set()
    server.close()
    thread.join(10)


def test_a_broker_certificate_for_another_host_is_refused(tls_server_for_another_host: BrokerAddress,
                                                          secure_env) -> None:
    message = _refused(tls_server_for_another_host, secure_env.credentials("engine"))
    assert message == (
        f"MQTT broker at {tls_server_for_another_host.url}: TLS certificate not accepted: "
        "IP address mismatch, certificate is not valid for '127.0.0.1'."
    )


def test_tls_to_a_plain_mqtt_listener_fails_with_one_clear_line(secure_env, mqtt_broker) -> None:
    address = BrokerAddress(mqtt_broker.address.host, mqtt_broker.address.port, tls=True)
    message = _refused(address, None)
    assert address.url in message and _one_line(message)
    if mqtt_broker.kind == "mosquitto":  # it hangs up on a ClientHello at once
        assert message == (
            f"TLS handshake with MQTT broker at {address.url} failed: the broker closed the connection "
            f"(Connection reset by peer); is port {address.port} a TLS listener?"
        )


# -- what each user may do ------------------------------------------------------------------------------
def test_the_engine_reaches_its_gateway_over_tls(secure_env, esl_topics: Topics, clients: Clients) -> None:
    gateway = clients.subscriber(secure_env.credentials("gw-01"), esl_topics.desired_filter("gw-01"))
    other = clients.subscriber(secure_env.credentials("gw-02"), esl_topics.desired_filter("gw-02"))
    engine = clients.connect(secure_env.credentials("engine"), "engine")
    assert isinstance(engine.socket(), ssl.SSLSocket)
    assert engine.socket().version() in ("TLSv1.2", "TLSv1.3")
    _publish(engine, esl_topics.desired("gw-01", "L000001"), _desired("L000001", 299), retain=True)
    _publish(engine, esl_topics.desired("gw-02", "L000002"), _desired("L000002", 199), retain=True)
    assert gateway.wait_for_topic(esl_topics.desired("gw-01", "L000001"))
    assert other.wait_for_topic(esl_topics.desired("gw-02", "L000002"))
    assert gateway.topics() == [esl_topics.desired("gw-01", "L000001")]


def test_a_push_over_tls_confirms_every_label(secure_env, esl_topics: Topics, login_as, tmp_path: Path) -> None:
    """The engine (delivery.py drives paho's loop_read/loop_write on the TLS socket) pushes to the
    simulated gateways, each logged in as itself (gateway_credentials), and every label confirms."""
    login_as("engine")
    labels = [(f"L{i:05d}", f"gw-0{i % 2 + 1}", f"{i:06d}") for i in range(600)]
    prices = {sku: 100 + i for i, (_, _, sku) in enumerate(labels)}
    outbox = Outbox.open(tmp_path / "engine.db", esl_topics.store)
    settings = DeliverySettings(ack_timeout_s=5.0, backoff_base_s=0.1, backoff_max_s=0.5, max_attempts=3)
    with SimulatedGateways(secure_env.address, esl_topics, labels) as sim:
        report = push_prices(prices, labels, secure_env.address, esl_topics, outbox, currency="EUR",
                             correlation="plan-tls", settings=settings)
        shown = sim.displayed()
    assert len(report.confirmed) == 600 and not report.failed and not report.waiting
    assert {label: shown[label].price_cents for label, _, _ in labels} == {
        label: prices[sku] for label, _, sku in labels
    }


def test_a_gateway_cannot_publish_a_desired_state(secure_env, esl_topics: Topics, clients: Clients) -> None:
    engine = secure_env.credentials("engine")
    watcher = clients.subscriber(engine, f"{esl_topics.base}/gateway/+/label/+/desired", esl_topics.status_filter)
    gateway = clients.connect(secure_env.credentials("gw-01"), "gw-01")
    forged = [esl_topics.desired("gw-01", "L000001"), esl_topics.desired("gw-02", "L000002")]
    for topic in forged:
        _publish(gateway, topic, _desired(topic.split("/")[-2], 1), retain=True)
    _publish(gateway, esl_topics.status("gw-01"), _status("gw-01", "online"))  # the sentinel
    assert watcher.wait_for_topic(esl_topics.status("gw-01"))
    assert watcher.topics() == [esl_topics.status("gw-01")]
    assert _retained(clients, engine, f"{esl_topics.base}/#") == []  # nothing kept for later either


def test_a_gateway_cannot_read_another_gateways_desired_states(secure_env, esl_topics: Topics,
                                                                clients: Clients) -> None:
    spy = clients.subscriber(
        secure_env.credentials("gw-01"), esl_topics.desired_filter("gw-02"), f"{esl_topics.base}/#", "#",
        esl_topics.desired_filter("gw-01"),
    )
    engine = clients.connect(secure_env.credentials("engine"), "engine")
    _publish(engine, esl_topics.desired("gw-02", "L000002"), _desired("L000002", 199), retain=True)
    _publish(engine, esl_topics.desired("gw-01", "L000001"), _desired("L000001", 299), retain=True)  # sentinel
    assert spy.wait_for_topic(esl_topics.desired("gw-01", "L000001"))
    assert esl_topics.desired("gw-02", "L000002") not in spy.topics()
    # ... nor when it subscribes after the fact and the broker hands out retained states
    assert _retained(clients, secure_env.credentials("gw-01"), "#") == [esl_topics.desired("gw-01", "L000001")]


def test_a_gateway_cannot_forge_another_gateways_ack_or_status(secure_env, esl_topics: Topics,
                                                               clients: Clients) -> None:
    engine = secure_env.credentials("engine")
    watcher = clients.subscriber(engine, esl_topics.ack_filter, esl_topics.status_filter)
    gateway = clients.connect(secure_env.credentials("gw-01"), "gw-01")
    _publish(gateway, esl_topics.ack("gw-02"), _acks("gw-02", 3))
    _publish(gateway, esl_topics.status("gw-02"), _status("gw-02", "offline"), retain=True)
    _publish(gateway, esl_topics.ack("gw-01"), _acks("gw-01", 1))  # the sentinel: its own ack topic
    assert watcher.wait_for_topic(esl_topics.ack("gw-01"))
    assert watcher.topics() == [esl_topics.ack("gw-01")]
    assert _retained(clients, engine, esl_topics.status_filter) == []


def test_an_anonymous_flood_on_an_ack_topic_is_refused_while_real_acks_arrive(
    secure_env, esl_topics: Topics, clients: Clients
) -> None:
    """An attacker without a password connects anyway and sends 5,000 junk acks right behind its
    CONNECT, without waiting for the CONNACK; meanwhile gw-01 sends its real acks."""
    watcher = clients.subscriber(secure_env.credentials("engine"), esl_topics.ack_filter)
    gateway = clients.connect(secure_env.credentials("gw-01"), "gw-01")
    attacker = new_client("flood")  # no credentials in the environment: anonymous
    closed = threading.Event()
    attacker.on_disconnect = lambda *args: closed.set()
    open_socket(attacker, secure_env.address)  # TLS up, CONNECT sent
    junk = 0
    for i in range(5000):
        if attacker.publish(esl_topics.ack("gw-01"), b'{"junk": %d}' % i, qos=0).rc == mqtt.MQTT_ERR_SUCCESS:
            junk += 1
    real = [_acks("gw-01", 5) for _ in range(50)]
    for payload in real:
        gateway.publish(esl_topics.ack("gw-01"), payload, qos=QOS)
    deadline = time.monotonic() + 10
    while not closed.is_set() and time.monotonic() < deadline:  # drive the attacker's socket until cut off
        attacker.loop(0.05)
    assert closed.is_set(), "the broker kept the anonymous connection open"
    assert junk > 0  # the junk did leave (paho wrote it straight behind the CONNECT)
    assert watcher.wait_for(lambda messages: len(messages) >= len(real))
    time.sleep(SETTLE_S)
    assert [m.payload for m in watcher.messages] == real


def test_a_message_over_max_packet_size_is_refused(secure_env, esl_topics: Topics, clients: Clients) -> None:
    """A full ack batch fits (config/mosquitto/mosquitto.conf's max_packet_size); a bigger message
    gets its sender disconnected and never reaches anyone."""
    limit = next(int(line.split()[1]) for line in secure_env.config_file.read_text().splitlines()
                 if line.startswith("max_packet_size "))
    watcher = clients.subscriber(secure_env.credentials("engine"), esl_topics.ack_filter, esl_topics.status_filter)
    will = (esl_topics.status("gw-01"), _status("gw-01", "offline"))
    gateway = clients.connect(secure_env.credentials("gw-01"), "gw-01", will=will)
    lost = threading.Event()
    gateway.on_disconnect = lambda *args: lost.set()
    full_batch = _acks("gw-01", MAX_ACKS_PER_MESSAGE, label_width=16)
    assert 100_000 < len(full_batch) < limit
    _publish(gateway, esl_topics.ack("gw-01"), full_batch)
    gateway.publish(esl_topics.ack("gw-01"), b"x" * (limit + 1), qos=QOS)
    assert lost.wait(10), "the broker took a packet over max_packet_size"
    assert watcher.wait_for_topic(esl_topics.status("gw-01"))  # its last will: the sentinel
    assert [len(m.payload) for m in watcher.messages] == [len(full_batch), len(will[1])]


def test_provisioning_again_replaces_the_password(secure_env, clients: Clients) -> None:
    first = secure_env.provision("gw-03")
    secure_env.reload()
    clients.connect(Credentials("gw-03", first.password), "gw-03")
    second = secure_env.provision("gw-03")
    assert second.replaced and second.password != first.password
    assert second.passwd_file.stat().st_uid == first.passwd_file.stat().st_uid  # Mosquitto can still read it
    secure_env.reload()
    message = _refused(secure_env.address, Credentials("gw-03", first.password))
    assert message.endswith("refused the connection: Not authorized")
    clients.connect(secure_env.credentials("gw-03"), "gw-03")


def test_only_the_engine_reads_the_broker_version(secure_env, login_as) -> None:
    login_as("engine")
    assert (broker_version(secure_env.address) or "").startswith("mosquitto version 2.")
    login_as("gw-01")
    assert broker_version(secure_env.address, timeout=1.0) is None
