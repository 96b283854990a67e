"""Label gateways and their labels, emulated as real MQTT clients (a stand-in for real ESL gateways).

Each gateway is its own paho client (MQTT 3.1.1) and talks to the engine only through the wire
protocol in ``label_gateway.protocol``:

- it subscribes to the retained desired-state topics of its labels and, on every (re)connect,
  publishes a retained ``online`` status with label counts (and again every ``status_interval_s``);
  its last will is a retained ``offline`` status, so an abrupt drop is visible to the engine;
- a label takes a desired state only when its version is newer than what it shows (QoS 1 may
  deliver late or twice), holds a future ``effective_at`` as pending and switches at that instant,
  skips the refresh when the content is unchanged, and drains its battery with every refresh;
- outcomes go back in batches (``GatewayAcks``), flushed every ``ack_flush_s`` or when
  ``MAX_ACKS_PER_MESSAGE`` have gathered.

Timing follows OpenEPaperLink figures (see docs): a label picks up an update at its next check-in
(about every 40 s) and then occupies the gateway's single radio for about 2 s. With both set to 0
(fast mode, the default of ``GatewayOptions``) updates are applied inline in the MQTT callback,
for tests and benchmarks. Radio loss, lost acks, dead labels and gateway outages are seeded.

All gateways of a store share one network thread (``NetworkLoop``, paho's external-loop API)
that also runs their timers; one paho thread per gateway spends most of its time fighting over
the GIL. Fast mode handles ~19k updates/s for 20 gateways x 1000 labels against Mosquitto.

An optional state file keeps what every label shows across simulator restarts (e-paper keeps its
image without power); ``pricing.cli.simulate status`` reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import itertools
import json
import logging
import random
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple, Protocol, Self

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from label_gateway.broker import (
    BrokerAddress,
    BrokerError,
    ReconnectBackoff,
    flush_writes,
    gateway_credentials,
    new_client,
    open_socket,
    tls_pending,
)
from label_gateway.protocol import (
    COMPACT_JSON,
    MAX_ACKS_PER_MESSAGE,
    PROTOCOL_VERSION,
    QOS,
    DesiredState,
    GatewayStatus,
    LabelAck,
    ProtocolError,
    Topics,
    parse,
    utc_now,
)
from label_gateway.signing import TrustedKeys
from pricing.core.errors import first_error
from pricing.core.files import atomic_write_text

Clock = Callable[[], datetime]
AckDict = dict[str, Any]
log = logging.getLogger(__name__)

STATE_FORMAT = "esl-simulator-state"
STATE_WRITE_INTERVAL_S = 1.0  # look this often for changes to write
STATE_QUIET_S = 0.5  # ... and write once labels have been quiet this long
STATE_MAX_AGE_S = 10.0  # ... or when the file is this old even under load
_MAX_WAIT_S = 0.25  # the network thread looks at scheduled prices at least this often
# paho's loop_read() takes one packet per call; reading up to this many per wake-up saves poll
# rounds under load (measured: ~16.5k -> ~19.5k updates/s for 20 gateways x 1000 labels).
_READS_PER_WAKE = 16


class SimulatorError(Exception):
    """A simulator setup a user can fix (unknown outage gateway, unreadable state file). One line."""


# ------------------------------------------------------------------------------------------------
# Options and plain data
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GatewayOptions:
    """How gateways and labels behave. The defaults are fast mode: no check-in wait, no radio time,
    no loss; what tests, the demo and benchmarks use."""

    checkin_interval_s: float = 0.0
    radio_seconds_per_update: float = 0.0
    ack_flush_s: float = 0.02
    status_interval_s: float = 30.0
    loss_rate: float = 0.0
    ack_loss_rate: float = 0.0
    attempts: int = 15
    battery_start_mv: int = 3000
    battery_per_refresh_mv: int = 1
    battery_low_mv: int = 2450
    battery_empty_mv: int = 2200
    dead_rate: float = 0.0
    dead_labels: frozenset[str] = frozenset()
    seed: int = 0
    #: The engine's public keys. With them, a label takes only states the engine signed and rejects
    #: the rest (``rejected``, reason ``signature: ...``); None: labels take unsigned states, as
    #: hardware without a key would (say so wherever that is chosen).
    trusted_keys: TrustedKeys | None = field(default=None, compare=False)

    @property
    def fast(self) -> bool:
        """Updates are applied as they arrive (no check-in wait, no radio time)."""
        return self.checkin_interval_s <= 0 and self.radio_seconds_per_update <= 0


@dataclass(frozen=True)
class Displayed:
    """What one label shows."""

    sku: str
    price_cents: int
    version: int
    content_hash: str
    applied_at: datetime | None = None
    reference_cents: int | None = None  # EU Omnibus: shown struck through next to a reduced price


class HistoryEntry(NamedTuple):
    """One change of the version a label shows (a refresh, or a new version of the same content)."""

    version: int
    price_cents: int
    applied_at: datetime


def count_regressions(history: Sequence[HistoryEntry]) -> int:
    """Changes to a version lower than one shown before. Always 0 unless the apply guard is broken."""
    top = 0
    regressions = 0
    for entry in history:
        if entry.version < top:
            regressions += 1
        top = max(top, entry.version)
    return regressions


@dataclass
class GatewayCounters:
    """What one gateway saw and did. ``applied`` counts refreshes."""

    received: int = 0
    applied: int = 0
    unchanged: int = 0
    scheduled: int = 0
    duplicates: int = 0
    stale: int = 0
    rejected: int = 0
    unreachable: int = 0
    dropped: int = 0  # desired states the radio lost (no ack)
    acks_lost: int = 0  # acks lost on the way back (label applied it)
    malformed: int = 0
    forged: int = 0  # states refused for their signature (missing, unknown key, invalid)
    acks_sent: int = 0
    batches_sent: int = 0

    def add(self, other: GatewayCounters) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))


@dataclass(slots=True)
class LabelState:
    """One label as the gateway knows it."""

    label_id: str
    sku: str
    battery_mv: int
    dead: bool = False
    displayed: Displayed | None = None
    pending: DesiredState | None = None
    refreshes: int = 0
    history: list[HistoryEntry] = field(default_factory=list)
    restored_regressions: int = 0

    @property
    def regressions(self) -> int:
        return self.restored_regressions + count_regressions(self.history)


class OutageSpec(Protocol):
    """A gateway dropping off at ``at_s`` seconds after start for ``for_s`` seconds."""

    @property
    def gateway(self) -> str: ...

    @property
    def at_s(self) -> float: ...

    @property
    def for_s(self) -> float: ...


def _unit(*parts: object) -> float:
    """A deterministic number in [0, 1) from the parts (seeded choices that do not depend on order)."""
    digest = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _iso(moment: datetime) -> str:
    return moment.isoformat()


# ------------------------------------------------------------------------------------------------
# One network thread for many gateways
# ------------------------------------------------------------------------------------------------

Service = Callable[[float], float]  # called with time.monotonic(); returns when it wants to run next


@dataclass(eq=False)
class _Connection:
    client: mqtt.Client
    wanted: bool = True  # reconnect when the connection is lost
    reconnect_at: float | None = None
    backoff: ReconnectBackoff = field(default_factory=ReconnectBackoff)


class NetworkLoop:
    """One thread that drives the network of many paho clients through paho's external-loop API
    (``socket()``, ``loop_read()``, ``loop_write()``, ``loop_misc()``) and runs the gateways'
    periodic work (ack flushes, scheduled prices, radio, heartbeats).

    Why not ``loop_start()`` per client: 20 paho threads spend more than half their CPU handing
    the GIL around (measured here: 87 us per received message with 20 threads, 38 us with one).
    Like paho's own loop it reconnects a client whose connection was lost (after 1 s, then every
    2 s: ``ReconnectBackoff``).
    """

    def __init__(self, name: str = "simulator-network") -> None:
        self.name = name
        self._lock = threading.Lock()
        self._connections: dict[mqtt.Client, _Connection] = {}
        self._services: dict[Service, float] = {}
        self._calls: deque[tuple[Callable[[], Any], threading.Event, list[Any]]] = deque()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._thread: threading.Thread | None = None
        self._ident: int | None = None
        self._stopping = threading.Event()

    # -- control (any thread) ------------------------------------------------------------------
    def start(self) -> NetworkLoop:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        self.wake()
        thread.join(10)
        self._thread = None

    def close(self) -> None:
        self.stop()
        for sock in (self._wake_r, self._wake_w):
            sock.close()

    def wake(self) -> None:
        if threading.get_ident() == self._ident:
            return  # the loop looks at every client before it waits again
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def prepare(self, client: mqtt.Client) -> None:
        """Before ``client.connect()``: paho then asks us (not its own thread) to write."""
        client.on_socket_register_write = lambda c, userdata, sock: self.wake()

    def add(self, client: mqtt.Client) -> None:
        """Drive ``client`` (after ``client.connect()`` returned)."""
        with self._lock:
            self._connections[client] = _Connection(client)
        self.wake()

    def forget(self, client: mqtt.Client) -> None:
        """Stop reconnecting ``client`` when its connection ends (a clean disconnect follows)."""
        with self._lock:
            connection = self._connections.get(client)
            if connection is not None:
                connection.wanted = False

    def remove(self, client: mqtt.Client) -> None:
        with self._lock:
            self._connections.pop(client, None)

    def add_service(self, service: Service) -> None:
        with self._lock:
            self._services[service] = 0.0
        self.wake()

    def remove_service(self, service: Service) -> None:
        with self._lock:
            self._services.pop(service, None)

    def call(self, fn: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Run ``fn`` on the loop thread (between two rounds) and return its result."""
        if self._thread is None or threading.get_ident() == self._ident:
            return fn()
        done = threading.Event()
        result: list[Any] = []
        self._calls.append((fn, done, result))
        self.wake()
        if not done.wait(timeout):
            raise TimeoutError(f"{self.name}: no answer within {timeout:g}s")
        if result and isinstance(result[0], BaseException):
            raise result[0]
        return result[0] if result else None

    def drop(self, client: mqtt.Client) -> None:
        """On the loop thread: cut ``client``'s TCP connection without an MQTT DISCONNECT (the
        broker then publishes its last will) and forget it."""
        self.remove(client)
        sock = client.socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    # -- the loop --------------------------------------------------------------------------------
    def _run(self) -> None:
        self._ident = threading.get_ident()
        next_misc = 0.0
        while not self._stopping.is_set():
            try:
                next_misc = self._round(next_misc)
            except Exception:  # a bug in one gateway must not silence all of them
                log.exception("%s: error in the network loop; going on", self.name)
                time.sleep(0.05)

    def _round(self, next_misc: float) -> float:
        self._run_calls()
        now = time.monotonic()
        wait = self._run_services(now)
        with self._lock:
            connections = list(self._connections.values())
        self._reconnect(connections, now)
        if now >= next_misc:
            for connection in connections:
                connection.client.loop_misc()  # keepalive pings, dead-broker detection
            next_misc = now + 1.0
        self._poll(connections, max(0.0, min(wait, next_misc - now)))
        return next_misc

    def _run_calls(self) -> None:
        while self._calls:
            fn, done, result = self._calls.popleft()
            try:
                result.append(fn())
            except Exception as exc:  # noqa: BLE001 (handed to the caller, who raises it)
                result.append(exc)
            done.set()

    def _run_services(self, now: float) -> float:
        with self._lock:
            services = list(self._services.items())
        wait = _MAX_WAIT_S
        for service, due in services:
            if due <= now:
                due = service(now)
                with self._lock:
                    if service in self._services:
                        self._services[service] = due
            wait = min(wait, due - now)
        return wait

    def _reconnect(self, connections: list[_Connection], now: float) -> None:
        for connection in connections:
            client = connection.client
            if client.socket() is not None or not connection.wanted:
                continue
            if connection.reconnect_at is None:
                connection.reconnect_at = now + connection.backoff.next_delay()
            elif now >= connection.reconnect_at:
                try:
                    client.reconnect()
                    connection.backoff.reset()
                    connection.reconnect_at = None
                except (OSError, ValueError):
                    connection.reconnect_at = now + connection.backoff.next_delay()

    def _poll(self, connections: list[_Connection], timeout: float) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        by_fd: dict[int, mqtt.Client] = {}
        for connection in connections:
            sock = connection.client.socket()
            if sock is None:
                continue
            fd = sock.fileno()
            if fd < 0:
                continue
            by_fd[fd] = connection.client
            poller.register(fd, select.POLLIN | (select.POLLOUT if connection.client.want_write() else 0))
        pending = {fd for fd, client in by_fd.items() if tls_pending(client)}  # read already: poll would not wake
        ready = poller.poll(0 if pending else timeout * 1000)
        ready += [(fd, select.POLLIN) for fd in pending - {fd for fd, _ in ready}]
        for fd, events in ready:
            client = by_fd.get(fd)
            if client is None:
                with contextlib.suppress(OSError):
                    self._wake_r.recv(4096)
                continue
            if events & (select.POLLIN | select.POLLHUP | select.POLLERR):
                for _ in range(_READS_PER_WAKE):
                    if client.loop_read() != 0 or client.socket() is None:
                        break
            flush_writes(client)  # the PUBACKs for what was read, and acks queued meanwhile


# ------------------------------------------------------------------------------------------------
# One gateway
# ------------------------------------------------------------------------------------------------


class GatewayEmulator:
    """One gateway with its labels (label id -> sku)."""

    def __init__(
        self,
        address: BrokerAddress,
        topics: Topics,
        gateway_id: str,
        labels: Mapping[str, str],
        *,
        options: GatewayOptions | None = None,
        clock: Clock = utc_now,
        loop: NetworkLoop | None = None,
    ) -> None:
        self.address = address
        self.topics = topics
        self.gateway_id = gateway_id
        self.labels = dict(labels)
        self.options = options or GatewayOptions()
        self.counters = GatewayCounters()
        self.changes = 0  # bumped on every change of label state (the state file writer watches it)
        self._clock = clock
        opts = self.options
        self._states = {
            label: LabelState(label, sku, opts.battery_start_mv, dead=self._born_dead(label))
            for label, sku in self.labels.items()
        }
        self._lock = threading.Lock()  # label state, counters, scheduling heaps
        self._loss_rng = random.Random(f"{opts.seed}:{gateway_id}:loss")
        self._ack_rng = random.Random(f"{opts.seed}:{gateway_id}:ack-loss")
        self._seq = itertools.count()
        self._scheduled: list[tuple[datetime, int, str, int]] = []  # (effective_at, seq, label, version)
        self._radio: list[tuple[float, int, str]] = []  # timed mode: (transfer done, seq, label)
        self._queued: dict[str, DesiredState] = {}  # timed mode: the image waiting per label
        self._radio_free_at = 0.0
        self._epoch = time.monotonic()
        self._acks: list[AckDict] = []
        self._ack_lock = threading.Lock()
        self._client: mqtt.Client | None = None
        self._client_lock = threading.Lock()
        self._subscribed = threading.Event()
        self._subscribe_error: str | None = None
        self._connack = threading.Event()
        self._connack_reason: Any = None
        self._disconnected = threading.Event()
        self._loop = loop
        self._own_loop = False
        self._next_status = 0.0
        self._desired_prefix = self.topics.gateway(gateway_id) + "/label/"

    def _born_dead(self, label: str) -> bool:
        opts = self.options
        return label in opts.dead_labels or (opts.dead_rate > 0 and _unit(opts.seed, "dead", label) < opts.dead_rate)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> GatewayEmulator:
        """Connect and subscribe; returns once the broker confirmed the subscription. Without a
        shared NetworkLoop the gateway runs its own."""
        if self._loop is None:
            self._loop = NetworkLoop(f"gateway-{self.gateway_id}")
            self._own_loop = True
        self._loop.start()
        self._next_status = time.monotonic() + self.options.status_interval_s
        self._loop.add_service(self._service)
        try:
            self._connect(timeout)
        except BaseException:
            self._release_loop()
            raise
        return self

    def stop(self) -> None:
        """Send what is left, publish a retained ``offline`` status and disconnect cleanly."""
        loop = self._loop
        if loop is None:
            return
        loop.remove_service(self._service)
        self.flush()
        with self._client_lock:
            client, self._client = self._client, None
        if client is not None:
            loop.forget(client)
            if self._subscribed.is_set():
                client.publish(self._status_topic, self._status_payload("offline"), qos=QOS, retain=True)
            self._subscribed.clear()
            self._disconnected.clear()
            connected = client.is_connected()
            client.disconnect()  # written after the acks and the status, then the socket closes
            loop.wake()
            if connected:
                self._disconnected.wait(5)
            loop.remove(client)
        self._release_loop()

    def use_loop(self, loop: NetworkLoop) -> None:
        """Share ``loop`` (one network thread for all gateways of a store); before start()."""
        if self._loop is not None and self._loop is not loop:
            raise RuntimeError(f"gateway {self.gateway_id} already has a network loop")
        self._loop = loop

    def _release_loop(self) -> None:
        if self._loop is not None:
            self._loop.remove_service(self._service)
            if self._own_loop:
                self._loop.close()
        self._loop = None
        self._own_loop = False

    @property
    def online(self) -> bool:
        """Connected and subscribed."""
        return self._subscribed.is_set()

    def go_offline(self) -> None:
        """Drop off the broker abruptly (no DISCONNECT), so the broker publishes the last will.
        While offline the gateway receives nothing; its labels keep what they show and acks of
        updates still on the air wait for the connection to come back."""
        with self._client_lock:
            client, self._client = self._client, None
        if client is None or self._loop is None:
            return
        self._subscribed.clear()
        loop = self._loop
        loop.call(lambda: loop.drop(client))

    def come_online(self, timeout: float = 10.0) -> None:
        """Reconnect after ``go_offline`` (clean session: the retained desired states of its labels
        arrive again, so the gateway catches up)."""
        with self._client_lock:
            if self._client is not None:
                return
        if self._loop is None:
            raise RuntimeError(f"gateway {self.gateway_id} was never started")
        self._connect(timeout)

    def _connect(self, timeout: float) -> None:
        assert self._loop is not None
        # Each gateway logs in as itself when ESL_GATEWAY_SECRETS_DIR holds its secret (else the environment's user).
        client = new_client(f"gateway-{self.gateway_id}", credentials=gateway_credentials(self.gateway_id))
        client.will_set(self._status_topic, self._status_payload("offline", counts=False), qos=QOS, retain=True)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._loop.prepare(client)
        self._subscribed.clear()
        self._connack.clear()
        self._subscribe_error = None
        open_socket(client, self.address)
        with self._client_lock:
            self._client = client
        self._loop.add(client)
        try:
            self._await_subscription(timeout)
        except BaseException:
            with self._client_lock:
                if self._client is client:
                    self._client = None
            self._loop.forget(client)
            loop = self._loop
            loop.call(lambda: loop.drop(client))
            raise

    def _await_subscription(self, timeout: float) -> None:
        url = self.address.url
        if not self._connack.wait(timeout):
            raise BrokerError(f"MQTT broker at {url} did not answer CONNECT within {timeout:.0f}s")
        reason = self._connack_reason
        if reason is not None and reason.is_failure:
            raise BrokerError(f"MQTT broker at {url} refused the connection: {reason}")
        if not self._subscribed.wait(timeout):
            raise BrokerError(
                f"MQTT broker at {url} did not confirm gateway {self.gateway_id}'s subscription within {timeout:g}s"
            )
        if self._subscribe_error:
            raise BrokerError(self._subscribe_error)

    @property
    def _status_topic(self) -> str:
        return self.topics.status(self.gateway_id)

    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: Any, props: object) -> None:
        self._connack_reason = reason
        self._connack.set()
        if reason.is_failure:
            return
        # On every (re)connect: a clean session, so subscribe again; the retained desired states follow.
        client.subscribe(self.topics.desired_filter(self.gateway_id), qos=QOS)
        client.publish(self._status_topic, self._status_payload("online"), qos=QOS, retain=True)

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reasons: Any, props: object) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            self._subscribe_error = (
                f"MQTT broker at {self.address.url} refused gateway {self.gateway_id}'s subscription: {failed[0]}"
            )
        self._subscribed.set()

    def _on_disconnect(self, client: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        self._subscribed.clear()
        self._disconnected.set()

    def _status_payload(self, state: Literal["online", "offline"], *, counts: bool = True) -> bytes:
        if not counts:
            return GatewayStatus(gateway=self.gateway_id, state=state, labels=len(self.labels)).to_json()
        low, failed = self.battery_counts()
        return GatewayStatus(
            gateway=self.gateway_id,
            state=state,
            labels=len(self.labels),
            low_battery=low,
            failed_labels=failed,
            at=utc_now(),
        ).to_json()

    def publish_status(self) -> None:
        """The retained ``online`` heartbeat with fresh label counts."""
        with self._client_lock:
            client = self._client
        if client is not None and self._subscribed.is_set():
            client.publish(self._status_topic, self._status_payload("online"), qos=QOS, retain=True)

    # -- periodic work on the network thread: radio, scheduled prices, ack flushes, heartbeat ---
    def _service(self, now: float) -> float:
        """Called by the NetworkLoop; returns when it wants to run again (monotonic)."""
        opts = self.options
        self.run_radio(now)
        self.tick()
        self.flush()
        if now >= self._next_status:
            self.publish_status()
            self._next_status = now + opts.status_interval_s
        due = min(now + opts.ack_flush_s, now + _MAX_WAIT_S, self._next_status)
        with self._lock:
            if self._radio:
                due = min(due, self._radio[0][0])
        return due

    # -- receiving -----------------------------------------------------------------------------
    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        if not topic.startswith(self._desired_prefix):
            return
        self.receive(message.payload, topic_label=topic[len(self._desired_prefix) :].partition("/")[0])

    def receive(self, payload: bytes, *, topic_label: str | None = None) -> None:
        """One desired-state message as it comes off the air: parse, lose (radio), apply or queue, ack."""
        if not payload:  # an empty retained message clears a topic; nothing to show
            return
        try:
            state = parse(DesiredState, payload)
        except ProtocolError:
            state = None
        if state is None or (topic_label is not None and state.label != topic_label):
            with self._lock:
                self.counters.malformed += 1
            return
        refused = self._forged(state)
        if refused is not None:
            self._send(refused)
            return
        if self.options.loss_rate > 0 and self._loss_rng.random() < self.options.loss_rate:
            with self._lock:
                self.counters.received += 1
                self.counters.dropped += 1
            return
        if self.options.fast:
            self._send(self._apply(state))
        else:
            self._enqueue_radio(state)

    def _forged(self, state: DesiredState) -> AckDict | None:
        """The ``rejected`` ack for a state the engine did not sign (when the labels hold its keys):
        it never reaches the radio, so a forged state cannot even take a label's transfer slot."""
        trusted = self.options.trusted_keys
        if trusted is None:
            return None
        problem = trusted.verify(state.signed_proof(), state.signed_message(self.topics.store))
        if problem is None:
            return None
        with self._lock:
            self.counters.received += 1
            self.counters.forged += 1
            label = self._states.get(state.label)
            shown = label.displayed.version if label is not None and label.displayed is not None else 0
            return self._ack(state, "rejected", shown, self._clock(), reason=problem)

    def _enqueue_radio(self, state: DesiredState) -> None:
        """Timed mode: the update waits for the label's next check-in, then for the gateway's radio.

        Like a real access point, the gateway answers at once what needs no transfer (not its
        label, a version the label already has, the same image) and keeps one pending image per
        label: a retry waits in its slot, a newer version takes over the slot of an older one.
        """
        with self._lock:
            label = self._states.get(state.label)
            if label is None or not self._needs_radio(label, state):
                immediate = True
            else:
                immediate = False
                queued = self._queued.get(label.label_id)
                if queued is None:
                    heapq.heappush(self._radio, (self._radio_slot(label), next(self._seq), label.label_id))
                if queued is None or state.version > queued.version:
                    self._queued[label.label_id] = state
                else:
                    self.counters.received += 1
                    self.counters.duplicates += 1  # already waiting for the radio
        if immediate:
            self._send(self._apply(state))

    def _needs_radio(self, label: LabelState, state: DesiredState) -> bool:
        shown = label.displayed
        if label.sku != state.sku:
            return False  # refused at once
        if shown is None:
            return True
        already_has = state.version <= shown.version
        same_image = shown.content_hash == state.content_hash and state.effective_at is None
        return not (already_has or same_image)

    def _radio_slot(self, label: LabelState) -> float:
        """When the transfer to ``label`` will be done (monotonic); reserves the radio."""
        opts = self.options
        now = time.monotonic()
        if label.dead:  # it never checks in: the gateway gives up after its attempts
            return now + opts.checkin_interval_s + opts.attempts * opts.radio_seconds_per_update
        start = max(self._next_checkin(label.label_id, now), self._radio_free_at)
        self._radio_free_at = start + opts.radio_seconds_per_update
        return self._radio_free_at

    def _next_checkin(self, label: str, now: float) -> float:
        interval = self.options.checkin_interval_s
        if interval <= 0:
            return now
        phase = _unit(self.options.seed, "checkin", label) * interval
        first = self._epoch + phase
        if now <= first:
            return first
        return first + interval * -(-(now - first) // interval)

    def run_radio(self, now: float) -> int:
        """Timed mode: apply the updates whose radio transfer has finished by ``now`` (monotonic)."""
        due: list[DesiredState] = []
        with self._lock:
            while self._radio and self._radio[0][0] <= now:
                state = self._queued.pop(heapq.heappop(self._radio)[2], None)
                if state is not None:
                    due.append(state)
        for state in due:
            self._send(self._apply(state))
        return len(due)

    # -- the label rules -------------------------------------------------------------------------
    def apply(self, state: DesiredState) -> LabelAck:
        """Apply one desired state to its label (idempotent) and return the immediate ack.

        A state for later (``effective_at`` in the future) is held and acked ``scheduled``; the
        ``displayed`` ack follows from ``tick()`` at that instant, through the ack batches. A state
        without a trusted signature is rejected (when the labels hold the engine's keys).
        """
        return LabelAck.model_validate(self._forged(state) or self._apply(state))

    def _apply(self, state: DesiredState) -> AckDict:
        with self._lock:
            self.counters.received += 1
            return self._apply_locked(state, self._clock())

    def _apply_locked(self, state: DesiredState, now: datetime) -> AckDict:
        label = self._states.get(state.label)
        if label is None:
            self.counters.rejected += 1
            return self._ack(state, "rejected", 0, now, reason=f"no label {state.label} on this gateway")
        shown = label.displayed
        shown_version = shown.version if shown is not None else 0
        if label.sku != state.sku:
            self.counters.rejected += 1
            reason = f"label {state.label} is bound to another sku ({label.sku}), not {state.sku}"
            return self._ack(state, "rejected", shown_version, now, reason=reason)
        if label.dead:
            self.counters.unreachable += 1
            reason = f"label did not answer after {self.options.attempts} attempts"
            return self._ack(state, "unreachable", shown_version, now, reason=reason)
        if state.version < shown_version:
            self.counters.stale += 1
            return self._ack(state, "stale", shown_version, now)
        if state.version == shown_version:  # a duplicate (QoS 1 may deliver twice): say so again
            self.counters.duplicates += 1
            assert shown is not None
            return self._ack(state, "displayed", shown_version, now, content_hash=shown.content_hash, label=label)
        if state.effective_at is not None and state.effective_at > now:
            return self._schedule(label, state, shown_version, now)
        if label.pending is not None and label.pending.version <= state.version:
            label.pending = None  # older than what the label shows from now on
        return self._show(label, state, now)

    def _schedule(self, label: LabelState, state: DesiredState, shown_version: int, now: datetime) -> AckDict:
        pending = label.pending
        if pending is not None and pending.version > state.version:
            self.counters.stale += 1
            reason = f"superseded by scheduled version {pending.version}"
            return self._ack(state, "stale", shown_version, now, reason=reason)
        if pending is not None and pending.version == state.version:
            self.counters.duplicates += 1
        else:
            self.counters.scheduled += 1
            label.pending = state
            self.changes += 1
            assert state.effective_at is not None
            heapq.heappush(self._scheduled, (state.effective_at, next(self._seq), label.label_id, state.version))
        return self._ack(state, "scheduled", shown_version, now, label=label)

    def _show(self, label: LabelState, state: DesiredState, now: datetime, *, status: str | None = None) -> AckDict:
        """The label takes ``state``: a refresh, or only the version when the content is the same."""
        shown = label.displayed
        same = shown is not None and shown.content_hash == state.content_hash
        if not same:
            label.refreshes += 1
            label.battery_mv = max(0, label.battery_mv - self.options.battery_per_refresh_mv)
            if label.battery_mv <= self.options.battery_empty_mv:
                label.dead = True  # this refresh was its last
            self.counters.applied += 1
        else:
            self.counters.unchanged += 1
        applied_at = now if not same or shown is None else shown.applied_at
        label.displayed = Displayed(
            state.sku, state.price_cents, state.version, state.content_hash, applied_at, state.reference_price_cents
        )
        label.history.append(HistoryEntry(state.version, state.price_cents, now))
        self.changes += 1
        ack_status = status or ("unchanged" if same else "displayed")
        return self._ack(state, ack_status, state.version, now, content_hash=state.content_hash, label=label)

    def tick(self, now: datetime | None = None) -> int:
        """Switch the labels whose scheduled price is due (effective_at <= now); their ``displayed``
        acks go into the batch buffer. Returns how many labels switched."""
        switched = 0
        with self._lock:
            moment = now or self._clock()
            acks: list[AckDict] = []
            while self._scheduled and self._scheduled[0][0] <= moment:
                _, _, label_id, version = heapq.heappop(self._scheduled)
                label = self._states[label_id]
                pending = label.pending
                if pending is None or pending.version != version:
                    continue  # replaced by a newer one, or dropped
                label.pending = None
                shown_version = label.displayed.version if label.displayed is not None else 0
                if label.dead or pending.version <= shown_version:
                    continue  # overtaken by a newer immediate price meanwhile
                acks.append(self._show(label, pending, moment, status="displayed"))
                switched += 1
        for ack in acks:
            self._send(ack)
        return switched

    def _ack(
        self,
        state: DesiredState,
        status: str,
        shown_version: int,
        now: datetime,
        *,
        content_hash: str | None = None,
        reason: str | None = None,
        label: LabelState | None = None,
    ) -> AckDict:
        ack: AckDict = {
            "v": PROTOCOL_VERSION,
            "label": state.label,
            "version": state.version,
            "status": status,
            "shown_version": shown_version,
            "correlation": state.correlation,
            "at": _iso(now),
        }
        if content_hash is not None:
            ack["content_hash"] = content_hash
        if reason is not None:
            ack["reason"] = reason
        if label is not None:
            ack["battery_mv"] = label.battery_mv
        return ack

    # -- acks ----------------------------------------------------------------------------------
    def _send(self, ack: AckDict) -> None:
        """Queue an ack for the next batch (unless the radio loses it on the way back)."""
        if self.options.ack_loss_rate > 0 and self._ack_rng.random() < self.options.ack_loss_rate:
            with self._lock:
                self.counters.acks_lost += 1
            return
        with self._ack_lock:
            self._acks.append(ack)
            full = len(self._acks) >= MAX_ACKS_PER_MESSAGE
        if full:
            self.flush()

    def take_acks(self) -> list[AckDict]:
        """Remove and return the acks waiting for the next batch (plain JSON-ready dicts)."""
        with self._ack_lock:
            acks, self._acks = self._acks, []
        return acks

    def flush(self) -> int:
        """Publish the waiting acks as ``GatewayAcks`` batches (QoS 1). Kept while offline."""
        with self._client_lock:
            client = self._client
        if client is None or not self._subscribed.is_set():
            return 0
        acks = self.take_acks()
        if not acks:
            return 0
        topic = self.topics.ack(self.gateway_id)
        batches = 0
        for start in range(0, len(acks), MAX_ACKS_PER_MESSAGE):
            batch = {
                "v": PROTOCOL_VERSION,
                "gateway": self.gateway_id,
                "acks": acks[start : start + MAX_ACKS_PER_MESSAGE],
                "at": _iso(self._clock()),
            }
            client.publish(topic, COMPACT_JSON.encode(batch).encode(), qos=QOS)
            batches += 1
        if self._loop is not None:
            self._loop.wake()
        with self._lock:
            self.counters.acks_sent += len(acks)
            self.counters.batches_sent += batches
        return len(acks)

    # -- what the labels show ----------------------------------------------------------------
    def displayed(self) -> dict[str, Displayed]:
        with self._lock:
            return {label: s.displayed for label, s in self._states.items() if s.displayed is not None}

    def history(self) -> dict[str, list[HistoryEntry]]:
        with self._lock:
            return {label: list(s.history) for label, s in self._states.items() if s.history}

    def label(self, label_id: str) -> LabelState:
        """The live state of one label (read-only use)."""
        return self._states[label_id]

    def regressions(self) -> int:
        with self._lock:
            return sum(s.regressions for s in self._states.values())

    def battery_counts(self) -> tuple[int, int]:
        """(labels with a low battery that still answer, dead labels)."""
        low_mv = self.options.battery_low_mv
        with self._lock:
            low = sum(1 for s in self._states.values() if not s.dead and s.battery_mv <= low_mv)
            dead = sum(1 for s in self._states.values() if s.dead)
        return low, dead

    # -- state file ------------------------------------------------------------------------------
    def snapshot(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """(this gateway's record, its labels' records) for the state file."""
        with self._lock:
            labels = {label_id: _label_record(self.gateway_id, s) for label_id, s in self._states.items()}
            gateway = {
                "state": "online" if self.online else "offline",
                "labels": len(self._states),
                "counters": asdict(self.counters),
            }
        return gateway, labels

    def restore(self, records: Mapping[str, LabelRecord]) -> int:
        """Take what the labels showed from a state file; returns how many labels were restored."""
        restored = 0
        with self._lock:
            for label_id, record in records.items():
                label = self._states.get(label_id)
                if label is None or record.gateway != self.gateway_id:
                    continue
                label.battery_mv = record.battery_mv
                label.refreshes = record.refreshes
                label.dead = label.dead or record.dead
                label.restored_regressions = record.regressions
                if record.sku == label.sku and record.version > 0 and record.price_cents and record.content_hash:
                    applied_at = record.applied_at or self._clock()
                    label.displayed = Displayed(
                        record.sku, record.price_cents, record.version, record.content_hash, applied_at,
                        record.reference_cents,
                    )
                    label.history = [HistoryEntry(record.version, record.price_cents, applied_at)]
                restored += 1
        return restored


def _label_record(gateway: str, s: LabelState) -> dict[str, Any]:
    shown = s.displayed
    return {
        "gateway": gateway,
        "sku": s.sku,
        "price_cents": shown.price_cents if shown else None,
        "version": shown.version if shown else 0,
        "content_hash": shown.content_hash if shown else None,
        "reference_cents": shown.reference_cents if shown else None,
        "applied_at": _iso(shown.applied_at) if shown and shown.applied_at else None,
        "battery_mv": s.battery_mv,
        "refreshes": s.refreshes,
        "dead": s.dead,
        "regressions": s.regressions,
    }


# ------------------------------------------------------------------------------------------------
# The state file
# ------------------------------------------------------------------------------------------------


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class LabelRecord(_Record):
    """One label in the state file."""

    gateway: str
    sku: str
    price_cents: int | None = Field(default=None, ge=1)
    version: int = Field(ge=0, description="0: the label shows no price yet.")
    content_hash: str | None = None
    reference_cents: int | None = Field(default=None, ge=1)
    applied_at: datetime | None = None
    battery_mv: int = Field(ge=0)
    refreshes: int = Field(ge=0)
    dead: bool
    regressions: int = Field(ge=0)


class GatewayRecord(_Record):
    """One gateway in the state file, as last known."""

    state: Literal["online", "offline"]
    labels: int = Field(ge=0)
    counters: dict[str, int]


class SimulatorState(_Record):
    """The simulator's state file: what every label shows, kept across restarts."""

    format: Literal["esl-simulator-state"]
    version: Literal[1]
    store: str
    prefix: str
    written_at: datetime
    running: bool
    battery_low_mv: int
    gateways: dict[str, GatewayRecord]
    labels: dict[str, LabelRecord]


def load_state(path: Path | str) -> SimulatorState:
    """Read a state file; SimulatorError (one line) when it is missing or not a state file."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except FileNotFoundError:
        raise SimulatorError(f"{file}: no such state file") from None
    except OSError as exc:
        raise SimulatorError(f"{file}: cannot read: {exc.strerror or exc}") from None
    try:
        return SimulatorState.model_validate_json(raw)
    except ValidationError as exc:
        raise SimulatorError(f"{file}: not a simulator state file ({first_error(exc, 'file')})") from None


def write_state_file(path: Path, payload: Mapping[str, Any]) -> None:
    """Write JSON atomically (``atomic_write_text``: a temporary file next to it, then a rename)."""
    atomic_write_text(path, json.dumps(payload, separators=(",", ":")))


# ------------------------------------------------------------------------------------------------
# All gateways of a store
# ------------------------------------------------------------------------------------------------


class SimulatedGateways:
    """All gateways of a store, from label rows (label_id, gateway, sku)."""

    def __init__(
        self,
        address: BrokerAddress,
        topics: Topics,
        labels: Iterable[tuple[str, str, str]],
        *,
        options: GatewayOptions | None = None,
        state_file: Path | str | None = None,
        outages: Sequence[OutageSpec] = (),
        clock: Clock = utc_now,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.address = address
        self.topics = topics
        self.options = options or GatewayOptions()
        self.state_file = Path(state_file) if state_file is not None else None
        by_gateway: dict[str, dict[str, str]] = {}
        for label_id, gateway, sku in labels:
            by_gateway.setdefault(gateway, {})[label_id] = sku
        self.gateways = [
            GatewayEmulator(address, topics, gateway, members, options=self.options, clock=clock)
            for gateway, members in sorted(by_gateway.items())
        ]
        self._by_id = {g.gateway_id: g for g in self.gateways}
        self.outages = list(outages)
        self._check_outages()
        self._on_event = on_event or (lambda message: None)
        self._loop: NetworkLoop | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._written_changes = -1
        self._write_lock = threading.Lock()
        self._started = False
        self._ran = False
        self.restored = 0
        self.errors: list[str] = []

    def _check_outages(self) -> None:
        for outage in self.outages:
            if outage.gateway not in self._by_id:
                known = ", ".join(sorted(self._by_id)) or "none"
                raise SimulatorError(f"outage for gateway {outage.gateway}: no such gateway in this store ({known})")

    @property
    def label_count(self) -> int:
        return sum(len(g.labels) for g in self.gateways)

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> Self:
        if self.state_file is not None and self.state_file.exists():
            self._restore(load_state(self.state_file))
        self._stop.clear()
        self._started = True
        self._loop = NetworkLoop().start()
        try:
            for gateway in self.gateways:
                gateway.use_loop(self._loop)
                gateway.start()
        except BaseException:
            self._ran = False
            self.stop()
            raise
        self._ran = True
        if self.outages:
            self._spawn(self._run_outages, "simulator-outages")
        if self.state_file is not None:
            self._spawn(self._run_state_writer, "simulator-state")
        return self

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        self._stop.set()
        for thread in self._threads:
            thread.join(15)
        self._threads.clear()
        last_known = {g.gateway_id: g.online for g in self.gateways}
        for gateway in self.gateways:
            gateway.stop()
        if self._loop is not None:
            self._loop.close()
            self._loop = None
        if self._ran:  # a simulator that never got going leaves the state file as it was
            self.write_state(running=False, last_known=last_known)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- outages -------------------------------------------------------------------------------
    def _run_outages(self) -> None:
        started = time.monotonic()
        events = sorted(
            [(o.at_s + o.for_s, 0, o.gateway) for o in self.outages] + [(o.at_s, 1, o.gateway) for o in self.outages]
        )
        for at, kind, gateway_id in events:
            if self._stop.wait(max(0.0, started + at - time.monotonic())):
                return
            gateway = self._by_id[gateway_id]
            if kind == 1:
                gateway.go_offline()
                self._on_event(f"{gateway_id} dropped off (outage)")
            else:
                self._bring_back(gateway)

    def _bring_back(self, gateway: GatewayEmulator) -> None:
        while not self._stop.is_set():
            try:
                gateway.come_online()
            except BrokerError as exc:
                self.errors.append(str(exc))
                self._on_event(f"{gateway.gateway_id} cannot come back yet: {exc}")
                self._stop.wait(2.0)
                continue
            self._on_event(f"{gateway.gateway_id} back online")
            return

    # -- state file ----------------------------------------------------------------------------
    def _restore(self, state: SimulatorState) -> None:
        if state.store != self.topics.store:
            raise SimulatorError(
                f"{self.state_file}: state file is for store {state.store}, not {self.topics.store}"
            )
        self.restored = sum(g.restore(state.labels) for g in self.gateways)
        self._written_changes = sum(g.changes for g in self.gateways)

    def _run_state_writer(self) -> None:
        """Write the state file when labels went quiet, or every STATE_MAX_AGE_S under load:
        serialising 20,000 labels every second cost a fifth of the simulator's CPU during a push."""
        seen = sum(g.changes for g in self.gateways)
        changed_at = written_at = time.monotonic()
        while not self._stop.wait(STATE_WRITE_INTERVAL_S / 4):
            now = time.monotonic()
            changes = sum(g.changes for g in self.gateways)
            if changes != seen:
                seen, changed_at = changes, now
            due = now - changed_at >= STATE_QUIET_S or now - written_at >= STATE_MAX_AGE_S
            if due and self.write_state(running=True):
                written_at = now

    def write_state(self, *, running: bool, last_known: Mapping[str, bool] | None = None) -> bool:
        """Write the state file if something changed since the last write (always when stopping)."""
        if self.state_file is None:
            return False
        with self._write_lock:
            changes = sum(g.changes for g in self.gateways)
            if running and changes == self._written_changes:
                return False
            gateways: dict[str, Any] = {}
            labels: dict[str, Any] = {}
            for gateway in self.gateways:
                record, label_records = gateway.snapshot()
                if last_known is not None:
                    record["state"] = "online" if last_known.get(gateway.gateway_id) else "offline"
                gateways[gateway.gateway_id] = record
                labels.update(label_records)
            payload = {
                "format": STATE_FORMAT,
                "version": 1,
                "store": self.topics.store,
                "prefix": self.topics.prefix,
                "written_at": _iso(utc_now()),
                "running": running,
                "battery_low_mv": self.options.battery_low_mv,
                "gateways": gateways,
                "labels": labels,
            }
            write_state_file(self.state_file, payload)
            self._written_changes = changes
            return True

    # -- what the store shows --------------------------------------------------------------------
    def gateway(self, gateway_id: str) -> GatewayEmulator:
        try:
            return self._by_id[gateway_id]
        except KeyError:
            raise KeyError(f"no gateway {gateway_id}") from None

    def displayed(self) -> dict[str, Displayed]:
        out: dict[str, Displayed] = {}
        for gateway in self.gateways:
            out.update(gateway.displayed())
        return out

    def history(self) -> dict[str, list[HistoryEntry]]:
        out: dict[str, list[HistoryEntry]] = {}
        for gateway in self.gateways:
            out.update(gateway.history())
        return out

    @property
    def counters(self) -> GatewayCounters:
        """All gateways' counters added up."""
        total = GatewayCounters()
        for gateway in self.gateways:
            total.add(gateway.counters)
        return total

    def regressions(self) -> int:
        return sum(g.regressions() for g in self.gateways)

    def summary(self) -> dict[str, int]:
        """The figures `simulate run` reports."""
        counters = self.counters
        low = dead = 0
        for gateway in self.gateways:
            gateway_low, gateway_dead = gateway.battery_counts()
            low += gateway_low
            dead += gateway_dead
        return {
            "gateways": len(self.gateways),
            "labels": self.label_count,
            "displayed": len(self.displayed()),
            "received": counters.received,
            "applied": counters.applied,
            "unchanged": counters.unchanged,
            "scheduled": counters.scheduled,
            "stale": counters.stale,
            "rejected": counters.rejected,
            "unreachable": counters.unreachable,
            "dropped": counters.dropped,
            "acks_lost": counters.acks_lost,
            "malformed": counters.malformed,
            "forged": counters.forged,
            "regressions": self.regressions(),
            "low_battery": low,
            "dead": dead,
        }
