"""A gateway for OpenEPaperLink (OEPL) tags: our MQTT protocol on one side, an OEPL access point's
HTTP interface on the other.

In: the retained desired states of this gateway's labels (``label_gateway.protocol``), the AP's
tag records (``GET /get_db``, polled: an open WebSocket keeps tags awake and costs battery).
Out: one JPEG per label at its tag's resolution (``POST /imgupload``, one at a time, about one a
second, backing off on ``409 come back later``), ``GatewayAcks`` and a retained ``GatewayStatus``
(last will ``offline``) on the broker.

A label maps to a tag by MAC (``load_tag_bindings``: a tags file, or a ``mac`` column in
labels.csv). For each desired state the gateway verifies the engine's signature (when it holds
the engine's public keys), draws the label with our templates (``label_gateway.render``), turns
it into a baseline JPEG and uploads it. It acknowledges ``displayed`` only when the tag's record
shows the image: ``pending == 0``, a higher ``updatecount`` than before the upload, ``updatelast``
at or after the upload and ``hash`` equal to the MD5 of the uploaded file. A message the AP drops
(a reboot forgets its queue) is uploaded again; a tag that did not fetch it before the AP gave up
(``xfer timeout``), or not within our own deadline, is acknowledged ``unreachable`` with the
reason, so the engine retries with backoff. A tag the AP has never seen is ``unreachable`` too
(a tag may join later); a label without a MAC, or whose price does not fit, is ``rejected``.

``effective_at``: an OEPL tag cannot hold an image for later, so the gateway acks ``scheduled``,
uploads at effective_at and acks ``displayed`` with the tag's real display time (``updatelast``):
the label switches within one check-in interval plus its wait for the radio after that instant.

Times run on an injectable clock (``Clock``: unix seconds), so tests run the gateway and the AP
emulator (simulator/oepl_ap.py) on one simulated clock, faster than real time.
"""

from __future__ import annotations

import csv
import hashlib
import http.client
import io
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, Self
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from label_gateway.broker import BrokerAddress, connect, gateway_credentials, new_client
from label_gateway.protocol import (
    COMPACT_JSON,
    MAX_ACKS_PER_MESSAGE,
    PROTOCOL_VERSION,
    QOS,
    DesiredState,
    GatewayStatus,
    ProtocolError,
    Topics,
    parse,
)
from label_gateway.signing import TrustedKeys

log = logging.getLogger(__name__)

#: hwType -> tag_type, as the AP emulator defines them (simulator/oepl_ap.py). A real AP's tag
#: types differ by hardware: give each tag's tag_type in the tags file to override.
HW_TAG_TYPES: dict[int, str] = {0: "1.54", 1: "2.9", 2: "4.2"}
MAC = re.compile(r"^(?:[0-9A-F]{12}|[0-9A-F]{16})$")
BLANK_HASH = "0" * 32


class OeplError(Exception):
    """A setup a user can fix (a bad tags file, a bad AP URL). The message is one line."""


class ApUnavailable(Exception):
    """The AP did not answer (down, rebooting, unreachable)."""


class Clock(Protocol):
    def now(self) -> float: ...  # unix seconds

    def real(self, seconds: float) -> float: ...  # real seconds that many clock seconds take


class WallClock:
    def now(self) -> float:
        return time.time()

    def real(self, seconds: float) -> float:
        return seconds


def _when(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


# ------------------------------------------------------------------------------------------------
# Labels -> tags
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagBinding:
    """One label's tag: its MAC and, when known, its tag type (else taken from the AP's hwType)."""

    label_id: str
    mac: str
    tag_type: str | None = None
    sku: str | None = None


def load_tag_bindings(path: Path | str, *, store: str | None = None, gateway: str | None = None
                      ) -> dict[str, TagBinding]:
    """Label -> tag from a CSV: a gateway's tags file (``label_id, mac[, tag_type]``) or a
    labels.csv with a ``mac`` column (rows of other stores or gateways are left out). Every bad
    row is an ``OeplError`` line ``FILE:LINE: ...``; a MAC on two labels is one too."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise OeplError(f"{file}: cannot read: {exc.strerror or exc}") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = set(reader.fieldnames or [])
    missing = {"label_id", "mac"} - columns
    if missing:
        raise OeplError(f"{file}:1: missing column(s) {', '.join(sorted(missing))} (need label_id and mac)")
    bindings: dict[str, TagBinding] = {}
    by_mac: dict[str, tuple[str, int]] = {}
    for line, row in enumerate(reader, start=2):
        if store is not None and "store" in columns and (row.get("store") or "").strip() != store:
            continue
        if gateway is not None and "gateway" in columns and (row.get("gateway") or "").strip() != gateway:
            continue
        label = (row.get("label_id") or "").strip()
        mac = (row.get("mac") or "").strip().upper().replace(":", "")
        tag_type = (row.get("tag_type") or "").strip() or None
        if not label:
            raise OeplError(f"{file}:{line}: label_id is empty")
        if not MAC.match(mac):
            raise OeplError(f"{file}:{line}: mac '{row.get('mac') or ''}' is not 12 or 16 hex digits")
        if tag_type is not None and tag_type not in HW_TAG_TYPES.values():
            raise OeplError(f"{file}:{line}: tag_type must be one of {', '.join(HW_TAG_TYPES.values())}: '{tag_type}'")
        if label in bindings:
            raise OeplError(f"{file}:{line}: label {label} appears twice")
        if mac in by_mac:
            raise OeplError(f"{file}:{line}: mac {mac} is already label {by_mac[mac][0]}'s (line {by_mac[mac][1]})")
        by_mac[mac] = (label, line)
        bindings[label] = TagBinding(label, mac, tag_type, (row.get("sku") or "").strip() or None)
    return bindings


@dataclass(frozen=True)
class Product:
    name: str
    size: str | None = None
    unit: str | None = None


# ------------------------------------------------------------------------------------------------
# The AP's HTTP interface
# ------------------------------------------------------------------------------------------------


class ApClient:
    """The AP's HTTP interface over one keep-alive connection (standard library only)."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise OeplError(f"--ap '{url}': give the access point as http://HOST[:PORT]")
        self.url = f"http://{parts.hostname}{':' + str(parts.port) if parts.port else ''}"
        self._host, self._port = parts.hostname, parts.port or 80
        self._timeout = timeout

    def _request(self, method: str, path: str, body: bytes | None = None,
                 headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
        """One request on a connection of its own (``Connection: close``): measured against the
        emulator, a second request on a kept-alive connection waited ~40 ms for a delayed ACK,
        a fresh connection takes under 1 ms on loopback; small ESP32 servers prefer it too."""
        conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        try:
            conn.connect()
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body: two writes
            conn.request(method, path, body=body, headers={**(headers or {}), "Connection": "close"})
            response = conn.getresponse()
            return response.status, response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise ApUnavailable(f"access point {self.url} does not answer: {exc}") from None
        finally:
            conn.close()

    def close(self) -> None:
        """Nothing stays open between requests."""

    def _json(self, path: str) -> dict[str, Any]:
        status, body = self._request("GET", path)
        if status != 200:
            raise ApUnavailable(f"access point {self.url}{path}: HTTP {status}")
        try:
            data = json.loads(body)
        except ValueError:
            raise ApUnavailable(f"access point {self.url}{path}: not JSON") from None
        if not isinstance(data, dict):
            raise ApUnavailable(f"access point {self.url}{path}: not a JSON object")
        return data

    def records(self) -> dict[str, dict[str, Any]]:
        """Every tag record (``/get_db``, page by page), by MAC."""
        out: dict[str, dict[str, Any]] = {}
        pos: int | None = 0
        while pos is not None:
            page = self._json(f"/get_db?pos={pos}")
            for record in page.get("tags", []):
                out[str(record.get("mac", "")).upper()] = record
            nxt = page.get("continu")
            pos = int(nxt) if isinstance(nxt, int) and nxt > pos else None
        return out

    def record(self, mac: str) -> dict[str, Any] | None:
        tags = self._json(f"/get_db?mac={mac}").get("tags") or []
        return tags[0] if tags else None

    def upload_image(self, mac: str, jpeg: bytes) -> tuple[int, str]:
        """``POST /imgupload``; (HTTP status, the AP's text)."""
        boundary = uuid.uuid4().hex
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="mac"\r\n\r\n{mac}\r\n'.encode(),
            f'--{boundary}\r\nContent-Disposition: form-data; name="dither"\r\n\r\n0\r\n'.encode(),
            (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{mac}.jpg"\r\n'
             "Content-Type: image/jpeg\r\n\r\n").encode() + jpeg + b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        status, body = self._request("POST", "/imgupload", b"".join(parts),
                                     {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if status >= 500:
            raise ApUnavailable(f"access point {self.url}/imgupload: HTTP {status}")
        return status, body.decode("utf-8", "replace").strip()


# ------------------------------------------------------------------------------------------------
# The gateway
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OeplSettings:
    """Pacing and patience (seconds on the gateway's clock)."""

    upload_interval_s: float = 1.0  # one upload at a time, about one a second
    poll_interval_s: float = 5.0  # /get_db
    backoff_first_s: float = 1.0  # after a 409 or an AP that does not answer; doubles
    backoff_max_s: float = 30.0
    deadline_s: float = 3600.0  # not displayed this long after the first upload: unreachable
    missed_checkins: int = 2  # a message gone without a display, its tag this many check-ins late: the AP gave up
    max_reuploads: int = 3  # messages the AP lost (reboot) uploaded again
    skew_s: float = 2.0  # the AP's clock may differ this much (its times are whole seconds)
    status_interval_s: float = 30.0
    ack_flush_s: float = 0.02
    low_battery_mv: int = 2450
    offline_after_s: float = 900.0  # maxsleep (10 min) * 60 + 300: the AP's own rule
    jpeg_quality: int = 95


@dataclass(eq=False)
class _Job:
    state: DesiredState
    binding: TagBinding
    not_before: float
    md5: str = ""
    uploaded_at: float | None = None
    first_upload_at: float | None = None
    before_count: int = 0
    before_last: int = 0
    reuploads: int = 0


@dataclass
class OeplCounters:
    received: int = 0
    uploads: int = 0
    conflicts: int = 0  # 409 answers
    reuploads: int = 0  # messages the AP lost, uploaded again
    displayed: int = 0
    unchanged: int = 0
    unreachable: int = 0
    rejected: int = 0
    stale: int = 0
    duplicates: int = 0
    ap_errors: int = 0  # the AP did not answer
    polls: int = 0


@dataclass(frozen=True)
class TagHealth:
    mac: str
    battery_mv: int | None
    rssi: int | None
    lastseen: int | None
    seen: bool


class OeplGateway:
    """One gateway process: MQTT in, the AP's HTTP out. ``start()``, ``stop()``."""

    def __init__(
        self,
        address: BrokerAddress,
        topics: Topics,
        gateway_id: str,
        ap: ApClient | str,
        bindings: Mapping[str, TagBinding],
        *,
        products: Mapping[str, Product] | None = None,
        templates: Any = None,
        trusted: TrustedKeys | None = None,
        settings: OeplSettings | None = None,
        clock: Clock | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        self.address = address
        self.topics = topics
        self.gateway_id = gateway_id
        self.ap = ap if isinstance(ap, ApClient) else ApClient(ap)
        self.bindings = dict(bindings)
        self.products = dict(products or {})
        self.trusted = trusted
        self.settings = settings or OeplSettings()
        self.clock: Clock = clock or WallClock()
        self.counters = OeplCounters()
        self._templates = templates
        self._on_event = on_event or (lambda message: log.info("%s", message))
        self._inbox: deque[tuple[str, bytes]] = deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._client: mqtt.Client | None = None
        self._online = threading.Event()
        self._lock = threading.Lock()
        self._jobs: dict[str, _Job] = {}  # label -> the newest version to bring onto its tag
        self._queue: deque[str] = deque()  # labels waiting for an upload, in order
        self._shown: dict[str, tuple[int, str]] = {}  # label -> (version, content_hash) it shows
        self._records: dict[str, dict[str, Any]] = {}
        self._records_at = 0.0
        self._next_poll = 0.0
        self._next_upload = 0.0
        self._backoff = 0.0
        self._next_status = 0.0
        self._acks: list[dict[str, Any]] = []
        self._jpegs: dict[tuple[str, str, str], tuple[bytes, str]] = {}
        self._desired_prefix = topics.gateway(gateway_id) + "/label/"
        self.ap_reachable = True

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> Self:
        """Read the AP's tags, connect to the broker and start working."""
        self._poll()
        client = new_client(f"oepl-{self.gateway_id}", credentials=gateway_credentials(self.gateway_id))
        client.will_set(self.topics.status(self.gateway_id), self._status("offline", counts=False), qos=QOS, retain=True)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = lambda *a: self._online.clear()
        self._client = client
        connect(client, self.address, timeout=timeout)
        if not self._online.wait(timeout):
            raise OeplError(f"MQTT broker at {self.address.url} did not confirm the subscription")
        self._thread = threading.Thread(target=self._run, name=f"oepl-{self.gateway_id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        client, self._client = self._client, None
        if client is not None:
            self._flush_acks(client)
            info = client.publish(self.topics.status(self.gateway_id), self._status("offline"), qos=QOS, retain=True)
            info.wait_for_publish(2)
            client.disconnect()
            client.loop_stop()
        self.ap.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- MQTT -----------------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, userdata: object, flags: object, reason: Any, props: object) -> None:
        if reason.is_failure:
            return
        client.subscribe(self.topics.desired_filter(self.gateway_id), qos=QOS)
        client.publish(self.topics.status(self.gateway_id), self._status("online"), qos=QOS, retain=True)
        self._online.set()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.topic.startswith(self._desired_prefix) and message.payload:
            label = message.topic[len(self._desired_prefix):].partition("/")[0]
            self._inbox.append((label, bytes(message.payload)))
            self._wake.set()

    def _status(self, state: str, *, counts: bool = True) -> bytes:
        if not counts:
            return GatewayStatus(gateway=self.gateway_id, state=state, labels=len(self.bindings)).to_json()  # type: ignore[arg-type]
        low = failed = 0
        now = self.clock.now()
        for binding in self.bindings.values():
            record = self._records.get(binding.mac)
            if record is None or now - float(record.get("lastseen") or 0) > self.settings.offline_after_s:
                failed += 1
            elif int(record.get("batteryMv") or 0) <= self.settings.low_battery_mv:
                low += 1
        return GatewayStatus(gateway=self.gateway_id, state=state, labels=len(self.bindings),  # type: ignore[arg-type]
                             low_battery=low, failed_labels=failed, at=_when(now)).to_json()

    # -- what the tags say ----------------------------------------------------------------------
    def health(self) -> dict[str, TagHealth]:
        """Battery, RSSI and last check-in of every bound tag, as the AP last reported them."""
        out = {}
        for label, binding in self.bindings.items():
            record = self._records.get(binding.mac)
            out[label] = TagHealth(
                binding.mac,
                None if record is None else int(record.get("batteryMv") or 0),
                None if record is None else int(record.get("RSSI") or 0),
                None if record is None else int(record.get("lastseen") or 0),
                record is not None,
            )
        return out

    def busy(self) -> int:
        """Labels still being brought onto their tags."""
        with self._lock:
            return len(self._jobs)

    # -- the work loop --------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                wait = self._round()
            except Exception:  # a bug must not silence the gateway
                log.exception("oepl gateway %s: error; going on", self.gateway_id)
                wait = 1.0
            self._wake.wait(self.clock.real(wait))
            self._wake.clear()

    def _round(self) -> float:
        """One turn: take desired states, poll, settle uploads, upload the next, send acks;
        returns how long (clock seconds) to wait before the next turn."""
        while self._inbox:
            label, payload = self._inbox.popleft()
            self._receive(label, payload)
        now = self.clock.now()
        if now >= self._next_poll:
            if self._poll():
                self._settle()
            self._next_poll = self.clock.now() + self.settings.poll_interval_s
        now = self.clock.now()
        if now >= self._next_upload:
            self._upload_next()
        client = self._client
        if client is not None:
            self._flush_acks(client)
            if now >= self._next_status and self._online.is_set():
                client.publish(self.topics.status(self.gateway_id), self._status("online"), qos=QOS, retain=True)
                self._next_status = now + self.settings.status_interval_s
        now = self.clock.now()
        due = min(self._next_poll, self._next_status)
        if self._queue:
            due = min(due, max(self._next_upload, self._earliest_ready()))
        return max(0.0, min(due - now, self.settings.poll_interval_s))

    def _earliest_ready(self) -> float:
        return min((self._jobs[label].not_before for label in self._queue if label in self._jobs), default=0.0)

    def _poll(self) -> bool:
        started = self.clock.now()
        try:
            records = self.ap.records()
        except ApUnavailable as exc:
            self._ap_down(str(exc))
            return False
        self._ap_up()
        self.counters.polls += 1
        self._records, self._records_at = records, started
        return True

    def _ap_down(self, reason: str) -> None:
        self.counters.ap_errors += 1
        if self.ap_reachable:
            self._on_event(reason)
        self.ap_reachable = False

    def _ap_up(self) -> None:
        if not self.ap_reachable:
            self._on_event(f"access point {self.ap.url} answers again")
        self.ap_reachable = True

    # -- receiving ------------------------------------------------------------------------------
    def _receive(self, topic_label: str, payload: bytes) -> None:
        try:
            state = parse(DesiredState, payload)
        except ProtocolError as exc:
            log.warning("oepl gateway %s: dropped a malformed desired state: %s", self.gateway_id, exc)
            return
        if state.label != topic_label:
            return
        self.counters.received += 1
        if self.trusted is not None:
            problem = self.trusted.verify(state.signed_proof(), state.signed_message(self.topics.store))
            if problem is not None:
                self._reject(state, problem)
                return
        binding = self.bindings.get(state.label)
        if binding is None:
            self._reject(state, f"no tag MAC for label {state.label} on gateway {self.gateway_id} "
                                "(add it to the tags file or the mac column of labels.csv)")
            return
        if binding.sku is not None and binding.sku != state.sku:
            self._reject(state, f"label {state.label} is bound to another sku ({binding.sku}), not {state.sku}")
            return
        shown_version, shown_hash = self._shown.get(state.label, (0, ""))
        if state.version < shown_version:
            self.counters.stale += 1
            self._ack(state, "stale", shown_version)
            return
        if state.version == shown_version:
            self.counters.duplicates += 1
            self._ack(state, "displayed", shown_version, content_hash=shown_hash)
            return
        now = self.clock.now()
        with self._lock:
            job = self._jobs.get(state.label)
            if job is not None and job.state.version > state.version:
                self.counters.stale += 1
                self._ack(state, "stale", shown_version, reason=f"superseded by version {job.state.version}")
                return
            if job is not None and job.state.version == state.version:
                self.counters.duplicates += 1  # already on its way
                return
        effective = state.effective_at.timestamp() if state.effective_at is not None else 0.0
        if effective <= now and shown_hash == state.content_hash:
            self._shown[state.label] = (state.version, state.content_hash)
            self.counters.unchanged += 1
            self._ack(state, "unchanged", state.version, content_hash=state.content_hash)
            return
        if effective > now:
            self._ack(state, "scheduled", shown_version)
        with self._lock:
            self._jobs[state.label] = _Job(state, binding, effective)
            if state.label not in self._queue:
                self._queue.append(state.label)

    # -- uploading ------------------------------------------------------------------------------
    def _take_ready(self, now: float) -> _Job | None:
        with self._lock:
            for _ in range(len(self._queue)):
                label = self._queue.popleft()
                job = self._jobs.get(label)
                if job is None or job.uploaded_at is not None:
                    continue
                if job.not_before > now:
                    self._queue.append(label)
                    continue
                return job
        return None

    def _requeue_front(self, job: _Job) -> None:
        with self._lock:
            if self._jobs.get(job.state.label) is job:
                self._queue.appendleft(job.state.label)

    def _back_off(self, now: float) -> None:
        self._backoff = min(self.settings.backoff_max_s, max(self.settings.backoff_first_s, self._backoff * 2))
        self._next_upload = now + self._backoff

    def _upload_next(self) -> None:
        now = self.clock.now()
        job = self._take_ready(now)
        if job is None:
            return
        mac = job.binding.mac
        try:
            record = self.ap.record(mac)
        except ApUnavailable as exc:
            self._ap_down(str(exc))
            self._requeue_front(job)
            self._back_off(now)
            return
        if record is None:
            self._finish(job, "unreachable", reason=f"tag {mac} has never checked in with the access point "
                                                     "(mac not found in tagDB)")
            return
        image = self._image(job, record)
        if image is None:
            return
        jpeg, job.md5 = image
        if record.get("hash") == job.md5 and not record.get("pending"):
            self._finish(job, "unchanged", at=now)  # the tag shows this very image already: no refresh
            return
        try:
            status, text = self.ap.upload_image(mac, jpeg)
        except ApUnavailable as exc:
            self._ap_down(str(exc))
            self._requeue_front(job)
            self._back_off(now)
            return
        self._ap_up()
        now = self.clock.now()
        if status == 409:
            self.counters.conflicts += 1
            self._requeue_front(job)
            self._back_off(now)
            return
        if status != 200:
            self._finish(job, "unreachable", reason=f"access point refused the image: HTTP {status} {text}")
            self._next_upload = now + self.settings.upload_interval_s
            return
        self.counters.uploads += 1
        self._backoff = 0.0
        job.uploaded_at = now
        job.first_upload_at = job.first_upload_at or now
        job.before_count = int(record.get("updatecount") or 0)
        job.before_last = int(record.get("updatelast") or 0)
        self._next_upload = now + self.settings.upload_interval_s

    def _image(self, job: _Job, record: Mapping[str, Any]) -> tuple[bytes, str] | None:
        """The JPEG for ``job`` at its tag's resolution and its MD5; None when it cannot be drawn
        (the job is then rejected)."""
        from label_gateway.label_templates import (
            UnknownTagTypeError,
            default_label_templates,
        )
        from label_gateway.render import LabelContent, LabelFitError

        state = job.state
        tag_type = job.binding.tag_type or HW_TAG_TYPES.get(int(record.get("hwType", -1)))
        if tag_type is None:
            self._finish(job, "rejected", reason=f"tag {job.binding.mac} has hwType {record.get('hwType')}, "
                                                 "which has no tag_type: give it in the tags file")
            return None
        key = (state.content_hash, state.sku, tag_type)
        if key in self._jpegs:
            return self._jpegs[key]
        if self._templates is None:
            self._templates = default_label_templates()
        product = self.products.get(state.sku, Product(state.sku))
        try:
            content = LabelContent.build(
                sku=state.sku, name=product.name, price_cents=state.price_cents, currency=state.currency,
                size=product.size, unit=product.unit, reference_cents=state.reference_price_cents,
            )
            jpeg = label_jpeg(content, self._templates.tag(tag_type), quality=self.settings.jpeg_quality)
        except (LabelFitError, UnknownTagTypeError, ValueError) as exc:
            self._finish(job, "rejected", reason=str(exc))
            return None
        result = (jpeg, hashlib.md5(jpeg).hexdigest())
        if len(self._jpegs) > 4096:
            self._jpegs.clear()
        self._jpegs[key] = result
        return result

    # -- settling uploads against the AP's records -----------------------------------------------
    def _settle(self) -> None:
        now = self.clock.now()
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.uploaded_at is not None and j.uploaded_at < self._records_at]
        skew = self.settings.skew_s
        for job in jobs:
            record = self._records.get(job.binding.mac)
            if record is None:
                continue
            uploaded = job.uploaded_at
            assert uploaded is not None
            pending = int(record.get("pending") or 0)
            shown = record.get("hash")
            count = int(record.get("updatecount") or 0)
            last = int(record.get("updatelast") or 0)
            if pending == 0 and shown == job.md5:
                if count > job.before_count and last > job.before_last and last >= uploaded - skew:
                    self._finish(job, "displayed", at=float(last))
                else:  # the AP skipped it: the tag showed this very image already
                    self._finish(job, "unchanged", at=now)
            elif pending == 0:
                lastseen = float(record.get("lastseen") or 0)
                interval = max(1.0, float(record.get("nextcheckin") or 0) - lastseen)
                late = now - lastseen > self.settings.missed_checkins * interval + skew
                if lastseen < uploaded - skew and late:
                    self._finish(job, "unreachable", reason=(
                        f"xfer timeout: the access point gave up on tag {job.binding.mac}, last seen "
                        f"{_when(lastseen).isoformat(timespec='seconds')} (offline or out of range)"))
                elif job.reuploads < self.settings.max_reuploads:
                    job.reuploads += 1
                    self.counters.reuploads += 1
                    job.uploaded_at = None
                    self._requeue_front(job)
                else:
                    self._finish(job, "unreachable", reason=(
                        f"the access point dropped the image for tag {job.binding.mac} "
                        f"{job.reuploads + 1} times without showing it"))
            elif job.first_upload_at is not None and now - job.first_upload_at > self.settings.deadline_s:
                self._finish(job, "unreachable", reason=(
                    f"tag {job.binding.mac} did not show the image within {self.settings.deadline_s:g}s "
                    "of the upload (still pending at the access point)"))

    # -- acks -----------------------------------------------------------------------------------
    def _finish(self, job: _Job, status: str, *, reason: str | None = None, at: float | None = None) -> None:
        state = job.state
        with self._lock:
            if self._jobs.get(state.label) is job:
                del self._jobs[state.label]
        record = self._records.get(job.binding.mac)
        battery = int(record["batteryMv"]) if record and record.get("batteryMv") is not None else None
        shown_version = self._shown.get(state.label, (0, ""))[0]
        if status in ("displayed", "unchanged"):
            self._shown[state.label] = (state.version, state.content_hash)
            setattr(self.counters, status, getattr(self.counters, status) + 1)
            self._ack(state, status, state.version, content_hash=state.content_hash, battery_mv=battery, at=at)
        else:
            setattr(self.counters, status, getattr(self.counters, status) + 1)
            self._ack(state, status, shown_version, reason=reason, battery_mv=battery)
            self._on_event(f"label {state.label}: {status}: {reason}")

    def _reject(self, state: DesiredState, reason: str) -> None:
        self.counters.rejected += 1
        self._ack(state, "rejected", self._shown.get(state.label, (0, ""))[0], reason=reason)
        self._on_event(f"label {state.label}: rejected: {reason}")

    def _ack(self, state: DesiredState, status: str, shown_version: int, *, content_hash: str | None = None,
             reason: str | None = None, battery_mv: int | None = None, at: float | None = None) -> None:
        ack: dict[str, Any] = {
            "v": PROTOCOL_VERSION, "label": state.label, "version": state.version, "status": status,
            "shown_version": shown_version, "correlation": state.correlation,
            "at": _when(self.clock.now() if at is None else at).isoformat(),
        }
        if content_hash is not None:
            ack["content_hash"] = content_hash
        if reason is not None:
            ack["reason"] = reason[:500]
        if battery_mv is not None:
            ack["battery_mv"] = max(0, min(10_000, battery_mv))
        with self._lock:
            self._acks.append(ack)

    def _flush_acks(self, client: mqtt.Client) -> None:
        with self._lock:
            acks, self._acks = self._acks, []
        topic = self.topics.ack(self.gateway_id)
        for start in range(0, len(acks), MAX_ACKS_PER_MESSAGE):
            batch = {"v": PROTOCOL_VERSION, "gateway": self.gateway_id,
                     "acks": acks[start:start + MAX_ACKS_PER_MESSAGE], "at": _when(self.clock.now()).isoformat()}
            client.publish(topic, COMPACT_JSON.encode(batch).encode(), qos=QOS)


def label_jpeg(content: Any, template: Any, *, quality: int = 95) -> bytes:
    """A label drawn by ``label_gateway.render`` as the baseline JPEG an OEPL AP takes: the
    template's exact resolution, RGB, no chroma subsampling (thin red lines stay red), no
    metadata. The same content gives the same bytes (so the AP's MD5 skip works)."""
    from label_gateway.render import render_image

    image = render_image(content, template).convert("RGB")
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, subsampling=0, optimize=False, progressive=False)
    return out.getvalue()
