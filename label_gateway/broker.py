"""Where the MQTT broker is and how to connect to it (paho-mqtt 2.x, MQTT 3.1.1 on the wire)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

DEFAULT_PORT = 1883
USERNAME_ENV = "ESL_MQTT_USERNAME"
PASSWORD_ENV = "ESL_MQTT_PASSWORD"
RECONNECT_FIRST_S = 1.0  # paho's loop_start() waits this long before reconnecting ...
RECONNECT_MAX_S = 2.0  # ... and doubles the wait up to this (its reconnect_delay_set defaults)


class BrokerError(Exception):
    """The broker cannot be used: unreachable, or it refused us. Message is one line."""


class BrokerUrlError(BrokerError):
    """The broker URL itself is wrong (a user error, unlike an unreachable broker)."""


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int = DEFAULT_PORT

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """``mqtt://HOST[:PORT]`` (or ``HOST[:PORT]``). Credentials come from the environment, never the URL."""
        text = url.strip()
        if "://" not in text:
            text = "mqtt://" + text
        parts = urlsplit(text)
        if parts.scheme != "mqtt":
            raise BrokerUrlError(f"broker URL '{url}': scheme must be mqtt:// (got {parts.scheme}://)")
        if parts.username or parts.password:
            raise BrokerUrlError(
                f"broker URL '{url}': put credentials in {USERNAME_ENV}/{PASSWORD_ENV}, not in the URL"
            )
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise BrokerUrlError(f"broker URL '{url}': port is not a number from 1 to 65535") from None
        if not parts.hostname:
            raise BrokerUrlError(f"broker URL '{url}': no host")
        return cls(parts.hostname, port)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


@dataclass
class ReconnectBackoff:
    """The waits between attempts to reconnect a lost connection: ``first_s``, then each wait
    ``factor`` times the one before, at most ``max_s``; ``reset()`` after a success starts over.

    The defaults are paho's own (loop_start() waits 1 s, then 2 s, 2 s, ...). The owner decides
    whether the first attempt comes at once or after the first wait::

        backoff = ReconnectBackoff()
        backoff.next_delay()  # 1.0
        backoff.next_delay()  # 2.0
        backoff.next_delay()  # 2.0
        backoff.reset()
        backoff.next_delay()  # 1.0
    """

    first_s: float = RECONNECT_FIRST_S
    max_s: float = RECONNECT_MAX_S
    factor: float = 2.0
    _next_s: float | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.first_s < 0:
            raise ValueError(f"first_s must be >= 0 (got {self.first_s})")
        if self.max_s < self.first_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= first_s ({self.first_s})")
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1 (got {self.factor})")

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; each call is one more attempt."""
        delay = self.first_s if self._next_s is None else self._next_s
        self._next_s = min(delay * self.factor, self.max_s)
        return delay

    def reset(self) -> None:
        """The connection is back: the next loss starts again at ``first_s``."""
        self._next_s = None


def new_client(role: str) -> mqtt.Client:
    """A paho client speaking MQTT 3.1.1 with the VERSION2 callback API and a unique client id."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"esl-{role}-{uuid.uuid4().hex[:10]}",
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    user = os.environ.get(USERNAME_ENV)
    if user:
        client.username_pw_set(user, os.environ.get(PASSWORD_ENV))
    # Our own flow control bounds what is in flight (label_gateway/delivery.py), so paho gets no
    # window of its own: with one, paho rescans every queued message on each PUBACK
    # (Client._update_inflight), which cost the engine half its throughput at 800 in flight.
    # Callers that publish without such a bound must set one (Mosquitto drops QoS 1 messages
    # queued for a subscriber past max_queued_messages).
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    return client


def batch_writes(client: mqtt.Client) -> None:
    """Make ``client`` queue what it sends until ``flush_writes``, for callers that drive the
    network themselves (loop_read/loop_write). Without an external-loop hook, paho writes each
    packet the moment it is queued (a publish, or the PUBACK for each message read): one TCP
    segment per message, and on loopback the broker pays a wake-up and a read for each."""
    client.on_socket_register_write = _wait_for_flush


def _wait_for_flush(client: mqtt.Client, userdata: object, sock: object) -> None:
    """paho's register-write hook: nothing to do, the owner's loop calls flush_writes."""


def flush_writes(client: mqtt.Client) -> None:
    """Write what ``client`` queued, corked (Linux) so many small packets leave as few segments;
    what the socket cannot take now stays queued (``want_write()`` stays true)."""
    sock = client.socket()
    if sock is None or not client.want_write():
        return
    cork = getattr(socket, "TCP_CORK", None)
    if cork is None or not isinstance(sock, socket.socket):
        client.loop_write()
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
    try:
        client.loop_write()
    finally:
        with contextlib.suppress(OSError):
            if sock.fileno() >= 0:
                sock.setsockopt(socket.IPPROTO_TCP, cork, 0)


def open_socket(client: mqtt.Client, address: BrokerAddress, *, keepalive: int = 30) -> None:
    """Open the TCP connection and send CONNECT (no network loop started); one BrokerError line
    when the broker cannot be reached."""
    try:
        client.connect(address.host, address.port, keepalive=keepalive)
    except OSError as exc:
        raise BrokerError(f"cannot reach MQTT broker at {address.url}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise BrokerError(f"cannot connect to MQTT broker at {address.url}: {exc}") from None


def connect(client: mqtt.Client, address: BrokerAddress, *, timeout: float = 10.0, keepalive: int = 30) -> None:
    """Connect and start the network loop; return once the broker accepted us (CONNACK).

    Raises BrokerError with one line saying where and what when it cannot.
    """
    accepted = threading.Event()
    outcome: dict[str, object] = {}
    previous: Any = client.on_connect  # the caller's VERSION2 callback, if any

    def on_connect(c: mqtt.Client, userdata: object, flags: object, reason: mqtt.ReasonCode, props: object) -> None:
        outcome["reason"] = reason
        accepted.set()
        if previous is not None:
            previous(c, userdata, flags, reason, props)

    client.on_connect = on_connect
    open_socket(client, address, keepalive=keepalive)
    client.loop_start()
    if not accepted.wait(timeout):
        client.loop_stop()
        raise BrokerError(f"MQTT broker at {address.url} did not answer CONNECT within {timeout:.0f}s")
    client.on_connect = previous
    reason = outcome["reason"]
    assert isinstance(reason, mqtt.ReasonCode)
    if reason.is_failure:
        client.loop_stop()
        raise BrokerError(f"MQTT broker at {address.url} refused the connection: {reason}")


def disconnect(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def clear_retained(address: BrokerAddress, topic_filter: str, *, settle_s: float = 0.5, passes: int = 20) -> int:
    """Delete every retained message under ``topic_filter`` (e.g. a store being decommissioned,
    or a test's prefix). Returns how many topics were cleared.

    Mosquitto hands a new subscriber its retained messages in one burst and drops what does not
    fit its queue for that client (seen: thousands of 20,000), so this subscribes again after each
    round of deletions until a round finds nothing."""
    client = new_client("cleaner")
    found: set[str] = set()
    lock = threading.Lock()
    arrived = [0.0]

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.retain and message.payload:
            with lock:
                found.add(message.topic)
                arrived[0] = time.monotonic()

    client.on_message = on_message
    connect(client, address)
    cleared: set[str] = set()
    try:
        for _ in range(passes):
            with lock:
                found.clear()
            started = time.monotonic()
            client.subscribe(topic_filter, qos=0)
            while True:  # retained messages arrive right after SUBACK; wait until they stop
                time.sleep(min(settle_s, 0.2))
                with lock:
                    last = arrived[0]
                if time.monotonic() - max(last, started) >= settle_s:
                    break
            client.unsubscribe(topic_filter)
            with lock:
                topics = sorted(found - cleared)
            if not topics:
                break
            infos = [client.publish(topic, b"", qos=1, retain=True) for topic in topics]
            for info in infos:
                info.wait_for_publish(30)
            cleared.update(topics)
    finally:
        disconnect(client)
    return len(cleared)


def broker_version(address: BrokerAddress, *, timeout: float = 3.0) -> str | None:
    """The broker's ``$SYS/broker/version`` text (Mosquitto publishes it retained), or None."""
    client = new_client("probe")
    got = threading.Event()
    version: list[str] = []

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        version.append(message.payload.decode(errors="replace"))
        got.set()

    client.on_message = on_message
    connect(client, address, timeout=timeout)
    try:
        client.subscribe("$SYS/broker/version", qos=0)
        got.wait(timeout)
    finally:
        disconnect(client)
    return version[0] if version else None
