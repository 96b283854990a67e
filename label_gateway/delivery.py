"""Deliver the outbox to the labels and know that it got there.

A change is done when the label says it is displayed (or, with ``effective_at``, that it holds
it), never at PUBACK. The loop below owns the in-memory working set of one push:

    pending ──(gateway online, window has room)──► sent ──ack displayed/unchanged──► confirmed
       ▲                                            │  ├──ack scheduled───────────────► scheduled ──ack displayed──► confirmed
       │                                            │  ├──ack rejected────────────────► failed (reason)
       └──── retry after backoff ◄── no ack in time / ack unreachable (attempts < max) ─┘
                                                    └── attempts exhausted ────────────► failed (reason)

- Flow control: at most ``window_per_gateway`` updates in flight per gateway and
  ``max_in_flight`` overall, so no broker queue for a gateway (or for the engine's acks) ever
  nears Mosquitto's ``max_queued_messages`` (1000 by default), past which it drops QoS 1 messages.
- Gateways are followed on their retained status topics (last will ``offline``): nothing is sent
  to an offline gateway, its updates in flight go back to the queue without costing an attempt, and
  when it is back everything it has not confirmed is sent again (reconciliation).
- A lost broker connection pauses the push (paho reconnects); what was in flight is sent again.
- State changes are written to the outbox in batches; see label_gateway/outbox.py for why a
  crash in between loses nothing.
- Malformed ack and status messages are counted and dropped. An ack counts only on its own
  gateway's topic and for that gateway's labels (``foreign_acks`` otherwise). A label claiming a
  version the engine never issued is a forged-state alarm (``forged_versions``): logged, the
  engine's own signed state is published again once, and the label fails if it still claims it.
- With a ``Signer``, every desired state carries the engine's Ed25519 signature
  (label_gateway/signing.py), made once per label and version; labels reject states without one.
"""

from __future__ import annotations

import heapq
import logging
import random
import selectors
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

import paho.mqtt.client as mqtt
from pydantic import BaseModel, ConfigDict, Field, model_validator

from label_gateway.broker import (
    BrokerAddress,
    BrokerError,
    ReconnectBackoff,
    batch_writes,
    flush_writes,
    new_client,
    open_socket,
    tls_pending,
)
from label_gateway.outbox import (
    EnqueueResult,
    LabelRow,
    LabelUpdate,
    Outbox,
)
from label_gateway.protocol import (
    COMPACT_JSON,
    MAX_VERSION,
    PROTOCOL_VERSION,
    QOS,
    GatewayStatus,
    LabelAck,
    ProtocolError,
    Topics,
    parse,
    parse_acks,
    utc_now,
)
from label_gateway.signing import Proof, Signer, signed_message
from pricing.core.money import to_decimal
from pricing.core.timestamps import from_us, now_us

log = logging.getLogger(__name__)

__all__ = [
    "DeliveryReport",
    "DeliverySettings",
    "LabelDelivery",
    "LabelUpdate",
    "Outcome",
    "push_prices",
    "updates_for_prices",
]


class StopSignal(Protocol):
    """What stops a push early: a threading.Event, or anything else that answers is_set()."""

    def is_set(self) -> bool: ...


class DeliverySettings(BaseModel):
    """How a push paces itself and when it gives up on a label."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window_per_gateway: int = Field(200, ge=1, le=900, description="Updates in flight per gateway at most.")
    max_in_flight: int = Field(
        800, ge=1, le=900,
        description="Updates in flight over all gateways; keeps the engine's ack queue below the broker's limit.",
    )
    ack_timeout_s: float = Field(30.0, gt=0, description="Seconds a label has to acknowledge an update.")
    max_attempts: int = Field(5, ge=1, description="Sends of one update before it is failed.")
    backoff_base_s: float = Field(1.0, ge=0, description="First retry waits this long; each next one twice as long.")
    backoff_max_s: float = Field(60.0, ge=0, description="Longest wait between retries.")
    offline_grace_s: float = Field(
        300.0, ge=0,
        description="How long a push waits for an offline gateway before leaving its labels pending.",
    )
    broker_grace_s: float = Field(60.0, ge=0, description="How long a push waits for a lost broker to come back.")
    flush_interval_s: float = Field(0.2, gt=0, description="How often state changes are written to the outbox.")
    connect_timeout_s: float = Field(10.0, gt=0, description="Seconds to wait for the broker's CONNACK/SUBACK.")
    low_battery_mv: int = Field(2450, ge=0, description="Labels at or below this battery level are reported.")

    @model_validator(mode="after")
    def _backoff(self) -> DeliverySettings:
        if self.backoff_max_s < self.backoff_base_s:
            raise ValueError("backoff_max_s must be >= backoff_base_s")
        return self


OutcomeState = Literal["confirmed", "scheduled", "failed", "waiting"]


@dataclass(frozen=True)
class Outcome:
    label_id: str
    gateway: str
    price_cents: int
    state: OutcomeState
    detail: str
    attempts: int


@dataclass
class DeliveryReport:
    outcomes: list[Outcome] = field(default_factory=list)
    enqueued: EnqueueResult | None = None
    seconds: float = 0.0
    sent: int = 0
    retries: int = 0
    malformed_acks: int = 0
    malformed_status: int = 0
    unmatched_acks: int = 0
    late_acks: int = 0
    foreign_acks: int = 0  # acks on another gateway's topic than the label's: dropped
    forged_versions: int = 0  # labels claiming a version the engine never issued
    signature_rejections: int = 0  # labels that refused a state for its signature
    reconnects: int = 0
    broker_lost: bool = False
    no_gateway_online: bool = False  # no gateway of the open labels reported online (said at the start)
    gateways_offline: list[str] = field(default_factory=list)
    low_battery: int = 0

    def _in(self, state: OutcomeState) -> list[Outcome]:
        return [o for o in self.outcomes if o.state == state]

    @property
    def confirmed(self) -> list[Outcome]:
        return self._in("confirmed")

    @property
    def scheduled(self) -> list[Outcome]:
        return self._in("scheduled")

    @property
    def failed(self) -> list[Outcome]:
        return self._in("failed")

    @property
    def waiting(self) -> list[Outcome]:
        return self._in("waiting")

    def summary(self) -> dict[str, object]:
        return {
            "labels": len(self.outcomes),
            "confirmed": len(self.confirmed),
            "scheduled": len(self.scheduled),
            "failed": len(self.failed),
            "waiting": len(self.waiting),
            "already_shown": self.enqueued.already_shown if self.enqueued else 0,
            "sent": self.sent,
            "retries": self.retries,
            "malformed_acks": self.malformed_acks,
            "malformed_status": self.malformed_status,
            "unmatched_acks": self.unmatched_acks,
            "foreign_acks": self.foreign_acks,
            "forged_versions": self.forged_versions,
            "signature_rejections": self.signature_rejections,
            "reconnects": self.reconnects,
            "gateways_offline": self.gateways_offline,
            "no_gateway_online": self.no_gateway_online,
            "low_battery": self.low_battery,
            "seconds": round(self.seconds, 3),
        }


class LabelDelivery:
    """Pushes a store's outbox over MQTT until every open label is confirmed, scheduled or failed."""

    def __init__(
        self,
        address: BrokerAddress,
        topics: Topics,
        outbox: Outbox,
        settings: DeliverySettings | None = None,
        *,
        signer: Signer | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.address = address
        self.topics = topics
        self.outbox = outbox
        self.settings = settings or DeliverySettings()
        self.signer = signer  # None: unsigned states, which labels that hold a public key reject
        self._rng = rng or random.Random()
        self._inbox: deque[mqtt.MQTTMessage] = deque()
        self._subscribed = threading.Event()
        self._connects = 0
        self._refused: str | None = None
        self._reconnect_at = 0.0  # 0.0: the last attempt (if any) succeeded; try again at once
        self._backoff = ReconnectBackoff()
        self._selector: selectors.BaseSelector | None = None
        self._next_misc = 0.0

    # -- MQTT callbacks (run inside client.loop(), on the delivery thread) -------------------
    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: mqtt.ReasonCode,
                    props: object) -> None:
        if reason.is_failure:
            self._refused = str(reason)
            return
        self._connects += 1
        client.subscribe([(self.topics.ack_filter, QOS), (self.topics.status_filter, QOS)])

    def _on_subscribe(self, *args: object) -> None:
        self._subscribed.set()

    def _on_disconnect(self, *args: object) -> None:
        self._subscribed.clear()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        self._inbox.append(message)

    # -- the network, driven from the delivery loop's own thread ------------------------------
    def _connect(self, client: mqtt.Client) -> None:
        """Connect and subscribe; one BrokerError line when the broker cannot be used."""
        url = self.address.url
        open_socket(client, self.address)
        deadline = time.monotonic() + self.settings.connect_timeout_s
        while not self._subscribed.is_set():
            if self._refused is not None:
                raise BrokerError(f"MQTT broker at {url} refused the connection: {self._refused}")
            if time.monotonic() > deadline:
                raise BrokerError(
                    f"MQTT broker at {url} did not accept the connection and subscription within "
                    f"{self.settings.connect_timeout_s:g}s"
                )
            self._pump(client, 0.05)

    def _pump(self, client: mqtt.Client, timeout: float) -> None:
        """Wait up to ``timeout`` for the network and handle what came (callbacks run here).

        One thread does the network and the bookkeeping, through paho's external-loop calls:
        with paho's own thread the two spent much of their time handing the GIL to each other,
        and ``client.loop()`` adds a wake-up socket write to every publish. A lost connection is
        retried at once, then after 1 s, then every 2 s (ReconnectBackoff), as paho's loop_start()
        would. The wait uses ``selectors`` (epoll on Linux): ``select.select()`` refuses a socket
        numbered 1024 or more, which a process with many files open gets."""
        flush_writes(client)  # what the last turn published, as few TCP segments
        sock = client.socket()
        if sock is None:
            self._reconnect(client, timeout)
            return
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.want_write() else 0)
        try:
            ready = tls_pending(client) or bool(self._watch(sock, events).select(timeout))
        except (OSError, ValueError):  # the socket closed under us: let loop_read() notice
            ready = True
        if ready:
            client.loop_read()
        flush_writes(client)  # PUBACKs for what was read, and what the socket had no room for
        now = time.monotonic()
        if now >= self._next_misc:
            client.loop_misc()  # keepalive pings; notices a dead connection
            self._next_misc = now + 1.0

    def _watch(self, sock: mqtt.SocketLike, events: int) -> selectors.BaseSelector:
        """The run's selector, watching ``sock`` (the client's current socket) for ``events``.

        One selector lives for the whole run (an epoll set costs a file and three system calls to
        make); a reconnect brings a new socket, which replaces the old one in it."""
        selector = self._selector
        if selector is None:
            selector = self._selector = selectors.DefaultSelector()
        key = next(iter(selector.get_map().values()), None)
        if key is None:
            selector.register(sock, events)
        elif key.fileobj is not sock:
            selector.unregister(key.fileobj)  # closed by now: the selector finds it by identity
            selector.register(sock, events)
        elif key.events != events:
            selector.modify(sock, events)
        return selector

    def _reconnect(self, client: mqtt.Client, timeout: float) -> None:
        now = time.monotonic()
        if now < self._reconnect_at:
            time.sleep(min(timeout, self._reconnect_at - now))
            return
        try:
            client.reconnect()
        except (OSError, ValueError):
            self._reconnect_at = now + self._backoff.next_delay()
            return
        self._reconnect_at = 0.0
        self._backoff.reset()

    # -- the push ------------------------------------------------------------------------------
    def run(
        self,
        *,
        deadline_s: float | None = None,
        stop: StopSignal | None = None,
        progress: Callable[[int, int], None] | None = None,
        notice: Callable[[str], None] | None = None,
    ) -> DeliveryReport:
        """Deliver every open row of the outbox; return when each is confirmed, scheduled or
        failed, or when only offline gateways (past ``offline_grace_s``), a lost broker (past
        ``broker_grace_s``), ``deadline_s`` or ``stop`` hold up the rest (those stay pending).
        ``notice`` gets one line early in the push when no gateway of its labels is online
        (logged as a warning without it); the push goes on, in case one comes."""
        started = time.monotonic()
        client = new_client("engine")
        batch_writes(client)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._refused = None
        self._reconnect_at = 0.0
        self._backoff.reset()
        try:
            self._connect(client)
            push = DeliveryRun(self, client, self.outbox.open_rows(), started)
            report = push.loop(
                deadline_s=deadline_s, stop=stop, progress=progress, pump=lambda t: self._pump(client, t),
                notice=notice,
            )
        finally:
            if client.socket() is not None:
                client.disconnect()
                flush_writes(client)
            if self._selector is not None:
                self._selector.close()
                self._selector = None
        report.seconds = time.monotonic() - started
        return report


#: How long a push listens for the gateways' retained status messages before it says that no
#: gateway of its labels is online (they arrive right after the subscription).
STATUS_LISTEN_S = 1.0


class DeliveryRun:
    """The working set of one run: plain dictionaries and queues, used from one thread."""

    def __init__(self, owner: LabelDelivery, client: mqtt.Client, rows: Sequence[LabelRow], started: float) -> None:
        self.owner = owner
        self.settings = owner.settings
        self.topics = owner.topics
        self.client = client
        self.report = DeliveryReport()
        self.rows: dict[str, LabelRow] = {row.label_id: row for row in rows}
        self.due: dict[str, deque[str]] = {}
        self.retry: list[tuple[float, str, int]] = []
        self.inflight: dict[str, float] = {}
        self.inflight_by_gateway: dict[str, int] = {}
        self.online: dict[str, bool] = {}
        self.offline_since: dict[str, float] = {}
        self.dirty: dict[str, LabelRow] = {}
        self.proofs: dict[str, tuple[int, Proof]] = {}  # label -> (version, its proof): signed once
        self.alarmed: set[str] = set()  # labels already re-pushed once for a forged-version claim
        self.heard: dict[str, float] = {}  # gateway -> when its last ack batch came (monotonic)
        self._ack_topic = (self.topics.gateway(""), "/ack")  # {base}/gateway/ ... /ack
        self.last_flush = started
        self.disconnected_since: float | None = None
        self.connects_seen = owner._connects
        wall = now_us()
        for row in rows:
            self.inflight_by_gateway.setdefault(row.gateway, 0)
            self.due.setdefault(row.gateway, deque())
            if row.version > MAX_VERSION:  # written by an older engine that did arithmetic on a label's claim
                row.state, row.last_error = "failed", (
                    f"version {row.version} is above the protocol's {MAX_VERSION} (an older engine took it from a "
                    "label's claim); the next plan or `esl-pricing outbox sync` gives the label a new one"
                )
                self._touch(row)
                continue
            if row.state == "scheduled" and (row.effective_at_us or 0) > wall:
                continue  # the label holds it; it switches by itself
            if row.state == "scheduled":
                # Its instant has passed and no displayed ack was recorded: ask again (no refresh).
                row.state = "pending"
            if row.state == "pending" and row.next_attempt_us > wall:
                heapq.heappush(self.retry, (time.monotonic() + (row.next_attempt_us - wall) / 1e6, row.label_id, row.version))
                continue
            row.state = "pending"  # "sent" before a restart: its ack may be lost, send again
            self.due[row.gateway].append(row.label_id)
        self.open = sum(1 for row in rows if row.state in ("pending", "sent"))

    # -- main loop ---------------------------------------------------------------------------
    def loop(
        self,
        *,
        deadline_s: float | None,
        stop: StopSignal | None,
        progress: Callable[[int, int], None] | None,
        pump: Callable[[float], None],
        notice: Callable[[str], None] | None = None,
    ) -> DeliveryReport:
        """Turn until done; ``pump(timeout)`` waits for and handles network traffic; ``notice``
        gets the line of ``no_gateway_online()`` once, when the statuses have had time to come."""
        total = len(self.rows)
        started = time.monotonic()
        end = None if deadline_s is None else started + deadline_s
        checked = False
        while True:
            now = time.monotonic()
            self.tick(now)
            if progress is not None:
                progress(total - self.open, total)
            if not checked and (now - started >= STATUS_LISTEN_S or self._all_statuses_heard()):
                checked = True
                self._say_no_gateway(notice)
            if self.done(now):
                break
            if (end is not None and now >= end) or (stop is not None and stop.is_set()):
                break
            pump(0.02)
        return self.finish()

    def tick(self, now: float) -> None:
        """One turn: take in acks and statuses, expire and retry, send what the windows allow."""
        self._drain_inbox(now)
        self._follow_connection(now)
        if self.disconnected_since is None:
            self._expire(now)
            self._release_retries(now)
            self._send(now)
        if now - self.last_flush >= self.settings.flush_interval_s:
            self._flush(now)

    def done(self, now: float) -> bool:
        return self.open == 0 or self._only_blocked(now)

    def _open_gateways(self) -> list[str]:
        return sorted({row.gateway for row in self.rows.values() if row.state in ("pending", "sent")})

    def _all_statuses_heard(self) -> bool:
        return all(gateway in self.online for gateway in self._open_gateways())

    def no_gateway_online(self) -> str | None:
        """One line when no gateway of the open labels has reported online on its retained
        status topic (offline, or never heard: a wrong store id or prefix, gateways not running),
        else None."""
        gateways = self._open_gateways()
        if not gateways or any(self.online.get(gateway) for gateway in gateways):
            return None
        offline = [gw for gw in gateways if gw in self.online]
        silent = [gw for gw in gateways if gw not in self.online]

        def names(found: list[str]) -> str:
            return ", ".join(found[:5]) + (f" and {len(found) - 5} more" if len(found) > 5 else "")

        why = "; ".join(
            part for part in (
                f"offline: {names(offline)}" if offline else "",
                f"no status from {names(silent)}" if silent else "",
            ) if part
        )
        return (
            f"no gateway of store {self.topics.store} is online on {self.topics.status_filter} ({why}): "
            f"{self.open} labels wait for acks that need one; check the store id, the prefix and the gateways"
        )

    def _say_no_gateway(self, notice: Callable[[str], None] | None) -> None:
        line = self.no_gateway_online()
        if line is None:
            return
        self.report.no_gateway_online = True
        if notice is not None:
            notice(line)
        else:
            log.warning("%s", line)

    def finish(self) -> DeliveryReport:
        self._flush(time.monotonic())
        self._report_outcomes()
        return self.report

    def _only_blocked(self, now: float) -> bool:
        """Everything still open waits on something outside our control that has lasted too long."""
        if self.disconnected_since is not None:
            if now - self.disconnected_since >= self.settings.broker_grace_s:
                self.report.broker_lost = True
                return True
            return False
        grace = self.settings.offline_grace_s
        late = {gw for gw, since in self.offline_since.items() if now - since >= grace}
        if not late:
            return False
        return all(
            row.gateway in late for row in self.rows.values() if row.state in ("pending", "sent")
        )

    # -- inbound ------------------------------------------------------------------------------
    def _drain_inbox(self, now: float) -> None:
        inbox = self.owner._inbox
        while inbox:
            message = inbox.popleft()
            if message.topic.endswith("/ack"):
                self._on_acks(message.topic, message.payload, now)
            elif message.topic.endswith("/status"):
                self._on_status(message.topic, message.payload, now)

    def _on_acks(self, topic: str, payload: bytes, now: float) -> None:
        head, tail = self._ack_topic
        gateway = topic[len(head) : -len(tail)]
        try:
            batch = parse_acks(payload)
        except ProtocolError:
            self.report.malformed_acks += 1
            return
        self.report.malformed_acks += batch.malformed
        if batch.gateway != gateway:
            self.report.foreign_acks += len(batch.acks)  # a batch naming another gateway than its topic
            return
        self.heard[gateway] = now  # the gateway is working through its queue
        for ack in batch.acks:
            self._on_ack(ack, gateway, now)

    def _on_ack(self, ack: LabelAck, gateway: str, now: float) -> None:
        row = self.rows.get(ack.label)
        if row is None:
            self.report.unmatched_acks += 1
            return
        if row.gateway != gateway:
            self.report.foreign_acks += 1  # only a label's own gateway speaks for it
            return
        if ack.battery_mv is not None and ack.battery_mv != row.battery_mv:
            row.battery_mv = ack.battery_mv
            self.dirty[row.label_id] = row
        if ack.status == "stale" and ack.shown_version > row.version:
            self._forged_version(row, ack.shown_version)
            return
        if ack.version != row.version:
            if ack.version < row.version:
                self.report.late_acks += 1
            else:
                self.report.unmatched_acks += 1
            return
        if row.state in ("confirmed", "failed"):
            self.report.unmatched_acks += 1  # a duplicate, or a retained state applied again
            return
        if ack.status in ("displayed", "unchanged"):
            if ack.content_hash is not None and ack.content_hash != row.content_hash:
                self._settle(row)
                self._fail(row, f"label reports content {ack.content_hash} for version {row.version}")
                return
            self._settle(row)
            self._confirm(row)
        elif ack.status == "scheduled":
            if row.state != "scheduled":
                self._settle(row)
                row.state = "scheduled"
                self.open -= 1
                self._touch(row)
        elif ack.status == "rejected":
            if (ack.reason or "").startswith("signature:"):
                self.report.signature_rejections += 1
                log.warning("label %s refused version %s: %s", row.label_id, row.version, ack.reason)
            self._settle(row)
            self._fail(row, f"rejected by the label: {ack.reason or 'no reason given'}")
        elif ack.status == "unreachable":
            self._settle(row)
            self._attempt_failed(row, f"label unreachable: {ack.reason or 'no answer on the radio'}", now)

    def _forged_version(self, row: LabelRow, claimed: int) -> None:
        """The label says it shows ``claimed``, above the newest version the engine issued for it:
        a desired state the engine never signed reached it (or the database was restored from an
        older backup). Never arithmetic on the claim: publish the engine's own state once more
        (it also replaces a forged retained message), then fail the label for an operator."""
        self.report.forged_versions += 1
        log.warning(
            "label %s (gateway %s) claims version %s, which the engine never issued (newest: %s)",
            row.label_id, row.gateway, claimed, row.version,
        )
        self._settle(row)
        if row.label_id in self.alarmed:
            self._fail(
                row,
                f"label shows version {claimed}, which the engine never issued (a forged desired state, or a "
                f"database restored from an older backup); reset the label, then reconcile",
            )
            return
        self.alarmed.add(row.label_id)
        self._requeue(row, front=True)

    def _on_status(self, topic: str, payload: bytes, now: float) -> None:
        if not payload:
            return  # a cleared retained status
        try:
            status = parse(GatewayStatus, payload)
        except ProtocolError:
            self.report.malformed_status += 1
            return
        if topic != self.topics.status(status.gateway):
            self.report.malformed_status += 1  # a status naming another gateway than its topic
            return
        gateway = status.gateway
        was_online = self.online.get(gateway, True)
        self.online[gateway] = status.state == "online"
        if status.state == "offline" and was_online:
            self.offline_since[gateway] = now
            for label in [label for label in self.inflight if self.rows[label].gateway == gateway]:
                self._unsend(self.rows[label])
        elif status.state == "online":
            self.offline_since.pop(gateway, None)

    # -- connection ----------------------------------------------------------------------------
    def _follow_connection(self, now: float) -> None:
        owner = self.owner
        if not owner._subscribed.is_set():
            if self.disconnected_since is None:
                self.disconnected_since = now
                for label in list(self.inflight):
                    self._unsend(self.rows[label])
            return
        if self.disconnected_since is not None:
            self.disconnected_since = None
        if owner._connects != self.connects_seen:
            self.report.reconnects += owner._connects - self.connects_seen
            self.connects_seen = owner._connects

    # -- outbound -----------------------------------------------------------------------------
    def _send(self, now: float) -> None:
        window = self.settings.window_per_gateway
        room = self.settings.max_in_flight - len(self.inflight)
        if room <= 0:
            return
        batch: list[LabelRow] = []
        for gateway, queue in self.due.items():
            if not queue or not self.online.get(gateway, True):
                continue
            free = window - self.inflight_by_gateway[gateway]
            while queue and free > 0 and room > 0:
                row = self.rows[queue.popleft()]
                if row.state != "pending" or row.label_id in self.inflight:
                    continue  # confirmed meanwhile (e.g. from its retained state)
                batch.append(row)
                row.state = "sent"
                row.attempts += 1
                if row.attempts > 1:
                    self.report.retries += 1
                self.inflight[row.label_id] = now
                self.inflight_by_gateway[gateway] += 1
                free -= 1
                room -= 1
            if room <= 0:
                break
        if batch:
            self._publish(batch)

    def _publish(self, rows: list[LabelRow]) -> None:
        # The DesiredState JSON, written directly: the row was validated when it was enqueued, and
        # building a model per label cost more than the MQTT publish (a test checks both agree).
        issued_at = utc_now().isoformat()
        proofs = self._proofs(rows)
        for row in rows:
            payload = desired_state_json(row, issued_at, proofs.get(row.label_id))
            self.client.publish(self.topics.desired(row.gateway, row.label_id), payload, qos=QOS, retain=True)
        self.report.sent += len(rows)

    def _proofs(self, rows: list[LabelRow]) -> dict[str, Proof]:
        """The proof of each row's desired state: what is sent together is signed together, once
        per label and version (a re-send carries the proof it had)."""
        signer = self.owner.signer
        if signer is None:
            return {}
        cache = self.proofs
        unsigned = [row for row in rows if cache.get(row.label_id, (0, None))[0] != row.version]
        if unsigned:
            messages = [
                signed_message(row.store, row.label_id, row.sku, row.version, row.price_cents, row.currency,
                               row.reference_cents, row.effective_at_us)
                for row in unsigned
            ]
            for row, proof in zip(unsigned, signer.sign_batch(messages), strict=True):
                cache[row.label_id] = (row.version, proof)
        return {row.label_id: cache[row.label_id][1] for row in rows}

    def _expire(self, now: float) -> None:
        """Time out the updates in flight whose ack is overdue: sent more than ``ack_timeout_s``
        ago *and* their gateway has acknowledged nothing for ``ack_timeout_s``.

        The deadline adapts to the gateway's queue: a gateway's radio sends one image at a time
        (seconds each, after the label's check-in), so the 200th update of a window waits minutes
        behind the others. As long as acks keep coming from its gateway the queue is moving and the
        update is still in it; re-sending it would only put a duplicate in the queue. An update the
        radio lost times out once its gateway has gone quiet for ``ack_timeout_s``."""
        timeout = self.settings.ack_timeout_s
        late = []
        for label, sent in self.inflight.items():  # in the order they were sent
            if now - sent <= timeout:
                break
            late.append((label, sent))
        for label, sent in late:
            row = self.rows[label]
            if not self.online.get(row.gateway, True):
                continue
            if now - max(sent, self.heard.get(row.gateway, sent)) <= timeout:
                continue  # its gateway is still answering: the update waits in the radio queue
            self._settle(row)
            self._attempt_failed(row, f"no ack within {timeout:g}s", now)

    def _release_retries(self, now: float) -> None:
        while self.retry and self.retry[0][0] <= now:
            _, label, version = heapq.heappop(self.retry)
            row = self.rows[label]
            if row.state == "pending" and row.version == version:
                self.due[row.gateway].append(label)

    # -- transitions --------------------------------------------------------------------------
    def _settle(self, row: LabelRow) -> None:
        """Take the row out of flight (if it is)."""
        if self.inflight.pop(row.label_id, None) is not None:
            self.inflight_by_gateway[row.gateway] -= 1

    def _unsend(self, row: LabelRow) -> None:
        """A send that never had a chance (broker or gateway went away): queue it again, free."""
        self._settle(row)
        row.attempts = max(0, row.attempts - 1)
        row.state = "pending"
        self.due[row.gateway].appendleft(row.label_id)

    def _requeue(self, row: LabelRow, *, front: bool = False) -> None:
        if row.state not in ("pending", "sent"):
            self.open += 1
        row.state = "pending"
        row.next_attempt_us = 0
        (self.due[row.gateway].appendleft if front else self.due[row.gateway].append)(row.label_id)
        self._touch(row)

    def _attempt_failed(self, row: LabelRow, reason: str, now: float) -> None:
        row.last_error = reason
        if row.attempts >= self.settings.max_attempts:
            self._fail(row, f"{reason} (after {row.attempts} attempts)")
            return
        delay = min(self.settings.backoff_max_s, self.settings.backoff_base_s * 2 ** (row.attempts - 1))
        delay *= 0.5 + self._jitter()
        row.state = "pending"
        row.next_attempt_us = now_us() + int(delay * 1e6)
        heapq.heappush(self.retry, (now + delay, row.label_id, row.version))
        self._touch(row)

    def _jitter(self) -> float:
        return self.owner._rng.random() * 0.5

    def _confirm(self, row: LabelRow) -> None:
        if row.state in ("pending", "sent"):
            self.open -= 1
        row.state = "confirmed"
        row.confirmed_version = row.version
        row.confirmed_price_cents = row.price_cents
        row.confirmed_hash = row.content_hash
        row.confirmed_us = now_us()
        row.last_error = None
        self._touch(row)

    def _fail(self, row: LabelRow, reason: str) -> None:
        if row.state in ("pending", "sent"):
            self.open -= 1
        row.state = "failed"
        row.last_error = reason
        self._touch(row)

    def _touch(self, row: LabelRow) -> None:
        row.updated_us = now_us()
        self.dirty[row.label_id] = row

    def _flush(self, now: float) -> None:
        if self.dirty:
            self.owner.outbox.save(list(self.dirty.values()))
            self.dirty.clear()
        self.last_flush = now

    def _report_outcomes(self) -> None:
        report = self.report
        offline = sorted(gw for gw, up in self.online.items() if not up)
        report.gateways_offline = offline
        for row in self.rows.values():
            if row.state in ("pending", "sent"):
                if row.gateway in offline:
                    detail = f"gateway {row.gateway} offline"
                elif report.broker_lost:
                    detail = "broker unreachable"
                else:
                    detail = row.last_error or "not yet acknowledged"
                state: OutcomeState = "waiting"
            elif row.state == "scheduled":
                state, detail = "scheduled", f"switches at {from_us(row.effective_at_us)}"
            elif row.state == "confirmed":
                state, detail = "confirmed", "displayed"
            else:
                state, detail = "failed", row.last_error or "failed"
            report.outcomes.append(Outcome(row.label_id, row.gateway, row.price_cents, state, detail, row.attempts))
        report.low_battery = sum(
            1 for row in self.rows.values()
            if row.battery_mv is not None and row.battery_mv <= self.settings.low_battery_mv
        )


def desired_state_json(row: LabelRow, issued_at: str, proof: Proof | None = None) -> bytes:
    """The DesiredState payload of a row, as label_gateway.protocol.DesiredState would write it."""
    if not 1 <= row.version <= MAX_VERSION:
        raise ValueError(f"label {row.label_id}: version {row.version} is outside 1..{MAX_VERSION}")
    fields: dict[str, object] = {
        "v": PROTOCOL_VERSION, "label": row.label_id, "sku": row.sku, "version": row.version,
        "price": str(to_decimal(row.price_cents)), "price_cents": row.price_cents, "currency": row.currency,
        "content_hash": row.content_hash, "correlation": row.correlation, "issued_at": issued_at,
    }
    if row.reference_cents is not None:
        fields["reference_price"] = str(to_decimal(row.reference_cents))
        fields["reference_price_cents"] = row.reference_cents
    if row.effective_at_us is not None:
        effective = from_us(row.effective_at_us)
        assert effective is not None
        fields["effective_at"] = effective.isoformat()
    if proof is not None:
        fields["key_id"], fields["signature"] = proof.key_id, proof.signature
        if proof.size > 1:
            fields["proof"], fields["proof_index"], fields["proof_size"] = proof.path, proof.index, proof.size
    return COMPACT_JSON.encode(fields).encode()


def updates_for_prices(
    prices: Mapping[str, int],
    labels: Iterable[tuple[str, str, str]],
    *,
    currency: str,
    correlation: str,
    effective_at: datetime | None = None,
    references: Mapping[str, int] | None = None,
) -> list[LabelUpdate]:
    """One update per label whose SKU has a new price. ``labels`` are (label_id, gateway, sku);
    a SKU may sit on several labels (shelf and end cap). ``references`` (sku -> cents) are the
    Omnibus reference prices of the SKUs whose price is reduced."""
    references = references or {}
    return [
        LabelUpdate(
            label_id, gateway, sku, prices[sku], currency, correlation, effective_at,
            reference_cents=references.get(sku),
        )
        for label_id, gateway, sku in labels
        if sku in prices
    ]


def push_prices(
    prices: Mapping[str, int],
    labels: Iterable[tuple[str, str, str]],
    address: BrokerAddress,
    topics: Topics,
    outbox: Outbox,
    *,
    currency: str,
    correlation: str,
    effective_at: datetime | None = None,
    settings: DeliverySettings | None = None,
    signer: Signer | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> DeliveryReport:
    """Record new prices (sku -> cents) for every label showing those SKUs in the outbox, then
    deliver everything the outbox holds open (this plan and anything left from before)."""
    updates = updates_for_prices(prices, labels, currency=currency, correlation=correlation, effective_at=effective_at)
    enqueued = outbox.enqueue(updates)
    report = LabelDelivery(address, topics, outbox, settings, signer=signer).run(progress=progress)
    report.enqueued = enqueued
    return report
