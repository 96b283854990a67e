"""An OpenEPaperLink access point (AP), emulated on loopback from its public HTTP description.

Written from the interface as the AP's documentation and community SDKs describe it (no firmware
code: that is CC BY-NC-SA). What flows in: image uploads over HTTP (``POST /imgupload``,
``POST /jsonupload``); what flows out: tag records (``GET /get_db``) and WebSocket messages
(``/ws``). In between, simulated tags check in on a simulated clock and take what is queued for
them over one shared radio.

Behaviour (figures from the OpenEPaperLink docs; every one is a ``ApSettings`` field):

- The AP only queues content. A tag fetches it at its next check-in (every ``checkin_s`` = 40 s,
  each tag at its own phase), one queued message per check-in. At its check-in the tag joins the
  radio queue and the radio serves one transfer at a time: ``radio_overhead_s`` + the tag's
  display buffer (2 bits a pixel: black/white/red) at ``radio_bytes_per_s`` (2.9": 2 s + 9,472 B
  at 5 kB/s = 3.9 s). A real AP interleaves the block requests of tags that are awake; the air
  time per transfer is the same, so the total is too.
- Identical content (same MD5 as the tag shows, or as the last message queued for it) is skipped.
- A transfer can fail (``loss_rate``); an offline tag misses its check-ins. Each counts as an
  attempt; after ``attempts`` (20) the message is dropped with ``errMsg "<MAC> xfer timeout"``.
- ``409 "come back later"`` while the AP is still taking the previous upload (``upload_busy_s``)
  or during a storm (``storm()``, ``busy_rate``); ``400 "mac not found in tagDB"`` for a tag that
  never checked in.
- Every refresh costs battery (``drain_mv``); below ``battery_dead_mv`` a tag stops answering.
- ``reboot()`` forgets every queued message and any transfer on the air (tags keep what they
  show; the tag database survives, as it lives in flash). ``OeplServer.reboot`` also takes the
  HTTP server down for a while.

The emulator also keeps what each tag shows for checks: the MD5 of the uploaded file (the record's
``hash``) and the MD5 of the decoded pixels (``ShownContent.pixels_md5``), so a test compares the
tag's picture with a render of the expected price. Tag types (``hwType``, defined here):
0 = 1.54" 152x152, 1 = 2.9" 296x128, 2 = 4.2" 400x300.

Time: every timestamp is on an injectable ``SimClock`` (unix seconds). ``SimClock(speed=200)``
runs 200x faster than real time: a 40 s check-in takes 0.2 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import heapq
import io
import itertools
import json
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Self

__all__ = [
    "HW_TYPES",
    "AccessPoint",
    "ApSettings",
    "OeplServer",
    "ShownContent",
    "SimClock",
    "TagType",
    "UploadResult",
]

PAGE_SIZE = 11  # tags per /get_db page
BLANK_HASH = "0" * 32


@dataclass(frozen=True)
class TagType:
    """A tag's hardware type: its label tag_type (label_templates.yaml) and resolution."""

    hw_type: int
    tag_type: str
    width: int
    height: int

    @property
    def buffer_bytes(self) -> int:
        """Display buffer: 2 bits a pixel (a black plane and a red plane)."""
        return self.width * self.height * 2 // 8


#: hwType code -> tag type. Codes defined by this emulator (see docs/oepl.md for a real AP).
HW_TYPES: dict[int, TagType] = {
    0: TagType(0, "1.54", 152, 152),
    1: TagType(1, "2.9", 296, 128),
    2: TagType(2, "4.2", 400, 300),
}


class SimClock:
    """Simulated unix time: ``speed`` simulated seconds per real second, from ``start``."""

    def __init__(self, speed: float = 1.0, start: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.speed = speed
        self._start = time.time() if start is None else start
        self._real0 = time.monotonic()

    def now(self) -> float:
        return self._start + (time.monotonic() - self._real0) * self.speed

    def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of simulated time."""
        if seconds > 0:
            time.sleep(seconds / self.speed)

    def real(self, seconds: float) -> float:
        """Real seconds that ``seconds`` of simulated time take."""
        return seconds / self.speed


@dataclass(frozen=True)
class ApSettings:
    """How the emulated AP and its tags behave (seconds are simulated seconds)."""

    checkin_s: float = 40.0
    attempts: int = 20
    radio_overhead_s: float = 2.0
    radio_bytes_per_s: float = 5000.0
    upload_busy_s: float = 0.5
    busy_rate: float = 0.0  # chance that an upload is answered 409 anyway
    loss_rate: float = 0.0  # chance that a transfer fails (an attempt)
    battery_start_mv: int = 3000
    drain_mv: int = 2
    battery_dead_mv: int = 2200
    maxsleep_min: float = 10.0
    page_size: int = PAGE_SIZE
    seed: int = 0

    def radio_s(self, tag_type: TagType) -> float:
        return self.radio_overhead_s + tag_type.buffer_bytes / self.radio_bytes_per_s


@dataclass(frozen=True)
class Content:
    md5: str  # of the uploaded file: the record's hash
    pixels_md5: str | None  # of the decoded image (None: a JSON template)
    queued_at: float


@dataclass(frozen=True)
class ShownContent:
    """What a tag shows: the uploaded file's MD5, the decoded pixels' MD5, when and how often."""

    md5: str
    pixels_md5: str | None
    updatecount: int
    updatelast: float
    refreshes: int


@dataclass(frozen=True)
class UploadResult:
    status: int
    text: str


@dataclass(eq=False)
class _Tag:
    mac: str
    kind: TagType
    phase: float
    battery_mv: int
    rssi: int
    online: bool
    online_since: float
    lastseen: float | None = None  # frozen while offline
    queue: deque[Content] = field(default_factory=deque)
    attempts: int = 0  # for the head of the queue
    waiting: bool = False  # in the radio queue (awake) or on the air
    token: int = 0  # invalidates heap entries
    shown: Content | None = None
    updatecount: int = 0
    updatelast: float = 0.0
    refreshes: int = 0


class AccessPoint:
    """The AP's state machine on a simulated clock; thread-safe. ``advance()`` runs it up to now
    (every request does); the HTTP layer is ``OeplServer``."""

    def __init__(self, settings: ApSettings | None = None, clock: SimClock | None = None) -> None:
        self.settings = settings or ApSettings()
        self.clock = clock or SimClock()
        self._lock = threading.RLock()
        self._tags: dict[str, _Tag] = {}
        self._order: list[str] = []  # tagDB order
        self._heap: list[tuple[float, int, str, int]] = []  # (check-in, seq, mac, token)
        self._seq = itertools.count()
        self._radio: deque[str] = deque()
        self._on_air: tuple[str, float] | None = None  # (mac, ends at)
        self._busy_until = 0.0
        self._storm_until = 0.0
        self._rng = random.Random(self.settings.seed)
        self._epoch = self.clock.now()
        self._events: deque[dict[str, Any]] = deque(maxlen=10_000)
        self.log: deque[str] = deque(maxlen=10_000)  # logMsg/errMsg texts, for checks
        self.uploads = 0
        self.conflicts = 0
        self.reboots = 0

    # -- tags -----------------------------------------------------------------------------------
    def add_tag(self, mac: str, hw_type: int = 1, *, online: bool = True, seen: bool = True,
                battery_mv: int | None = None, rssi: int | None = None) -> None:
        """A tag near the AP; ``seen``: it checked in just now (else it is in the tagDB only after
        its first check-in). Offline and not seen: the AP has never heard of it."""
        if hw_type not in HW_TYPES:
            raise ValueError(f"unknown hwType {hw_type} (known: {sorted(HW_TYPES)})")
        mac = mac.upper()
        with self._lock:
            if mac in self._tags:
                raise ValueError(f"tag {mac} already exists")
            digest = hashlib.sha256(f"{self.settings.seed}:{mac}".encode()).digest()
            phase = int.from_bytes(digest[:8], "big") / 2**64 * self.settings.checkin_s
            now = self.clock.now()
            self._tags[mac] = _Tag(
                mac, HW_TYPES[hw_type], phase,
                self.settings.battery_start_mv if battery_mv is None else battery_mv,
                -60 - digest[8] % 30 if rssi is None else rssi, online, now,
                lastseen=now if seen else None,
            )
            self._order.append(mac)

    def set_online(self, mac: str, online: bool) -> None:
        """Take a tag out of radio range (it misses its check-ins) or bring it back."""
        with self._lock:
            now = self.clock.now()
            self._advance(now)
            tag = self._tags[mac.upper()]
            if tag.online == online:
                return
            if not online:
                tag.lastseen = self._lastseen(tag, now)
            tag.online, tag.online_since = online, now

    def tag_macs(self) -> list[str]:
        with self._lock:
            return list(self._order)

    def shown(self, mac: str) -> ShownContent | None:
        with self._lock:
            self._advance(self.clock.now())
            tag = self._tags[mac.upper()]
            if tag.shown is None:
                return None
            return ShownContent(tag.shown.md5, tag.shown.pixels_md5, tag.updatecount, tag.updatelast, tag.refreshes)

    def pending(self, mac: str) -> int:
        with self._lock:
            self._advance(self.clock.now())
            return len(self._tags[mac.upper()].queue)

    # -- faults ---------------------------------------------------------------------------------
    def storm(self, seconds: float) -> None:
        """Answer every upload 409 for ``seconds`` of simulated time."""
        with self._lock:
            self._storm_until = self.clock.now() + seconds

    def reboot(self) -> int:
        """Forget every queued message and the transfer on the air; returns how many were lost."""
        with self._lock:
            self._advance(self.clock.now())
            lost = 0
            for tag in self._tags.values():
                lost += len(tag.queue)
                tag.queue.clear()
                tag.attempts = 0
                tag.waiting = False
                tag.token += 1
            self._heap.clear()
            self._radio.clear()
            self._on_air = None
            self._busy_until = 0.0
            self.reboots += 1
            self._note("logMsg", f"AP rebooted: {lost} queued message(s) forgotten")
            return lost

    # -- the HTTP interface's operations --------------------------------------------------------
    def upload(self, mac: str, data: bytes, *, kind: str = "image") -> UploadResult:
        """``/imgupload`` (kind "image": a baseline JPEG at the tag's resolution) or
        ``/jsonupload`` (kind "json")."""
        with self._lock:
            now = self.clock.now()
            self._advance(now)
            tag = self._tags.get(mac.upper())
            if tag is None or self._lastseen(tag, now) is None:
                return UploadResult(400, "mac not found in tagDB")
            if now < self._busy_until or now < self._storm_until or (
                self.settings.busy_rate > 0 and self._rng.random() < self.settings.busy_rate
            ):
                self.conflicts += 1
                return UploadResult(409, "come back later")
            if kind == "image":
                pixels, problem = _decode_jpeg(data, tag.kind)
                if problem is not None:
                    return UploadResult(400, problem)
            else:
                pixels = None
                try:
                    json.loads(data)
                except ValueError:
                    return UploadResult(400, "json is not valid")
            self._busy_until = now + self.settings.upload_busy_s
            self.uploads += 1
            md5 = hashlib.md5(data).hexdigest()
            last = tag.queue[-1].md5 if tag.queue else (tag.shown.md5 if tag.shown else None)
            if md5 != last:
                tag.queue.append(Content(md5, pixels, now))
                if len(tag.queue) == 1:
                    tag.attempts = 0
                    if not tag.waiting:
                        self._schedule(tag, now)
                self._changed(tag, now)
            return UploadResult(200, "Ok, saved")

    def records(self, pos: int = 0) -> dict[str, Any]:
        """One page of ``/get_db`` from position ``pos`` (tags that have checked in), with
        ``continu`` when there are more."""
        with self._lock:
            now = self.clock.now()
            self._advance(now)
            known = [t for t in (self._tags[m] for m in self._order) if self._lastseen(t, now) is not None]
            page = known[pos : pos + self.settings.page_size]
            out: dict[str, Any] = {"tags": [self._record(t, now) for t in page]}
            if pos + self.settings.page_size < len(known):
                out["continu"] = pos + self.settings.page_size
            return out

    def record(self, mac: str) -> dict[str, Any] | None:
        """``/get_db?mac=``: the tag's record, None when it never checked in."""
        with self._lock:
            now = self.clock.now()
            self._advance(now)
            tag = self._tags.get(mac.upper())
            if tag is None or self._lastseen(tag, now) is None:
                return None
            return self._record(tag, now)

    def take_events(self) -> list[dict[str, Any]]:
        """WebSocket messages since the last call."""
        with self._lock:
            self._advance(self.clock.now())
            events = list(self._events)
            self._events.clear()
            return events

    def advance(self) -> None:
        with self._lock:
            self._advance(self.clock.now())

    # -- internals ------------------------------------------------------------------------------
    def _record(self, tag: _Tag, now: float) -> dict[str, Any]:
        lastseen = self._lastseen(tag, now)
        next_checkin = self._next_checkin(tag, now) if tag.online else (lastseen or now) + self.settings.checkin_s
        return {
            "mac": tag.mac,
            "hash": tag.shown.md5 if tag.shown else BLANK_HASH,
            "pending": 1 if tag.queue else 0,
            "lastseen": int(lastseen or 0),
            "nextcheckin": int(next_checkin),
            "updatecount": tag.updatecount,
            "updatelast": int(tag.updatelast),
            "batteryMv": tag.battery_mv,
            "RSSI": tag.rssi,
            "hwType": tag.kind.hw_type,
            "alias": "",
        }

    def _grid(self, tag: _Tag, k: float) -> float:
        return self._epoch + tag.phase + k * self.settings.checkin_s

    def _next_checkin(self, tag: _Tag, after: float) -> float:
        """The first check-in time strictly after ``after``."""
        k = (after + 1e-3 - self._epoch - tag.phase) // self.settings.checkin_s + 1  # never ``after`` itself
        return self._grid(tag, max(k, 0))

    def _lastseen(self, tag: _Tag, now: float) -> float | None:
        if tag.online and tag.battery_mv > self.settings.battery_dead_mv:
            k = (now - self._epoch - tag.phase) // self.settings.checkin_s
            if k >= 0:
                last = self._grid(tag, k)
                if last >= tag.online_since:
                    return last
        return tag.lastseen

    def _alive(self, tag: _Tag) -> bool:
        return tag.online and tag.battery_mv > self.settings.battery_dead_mv

    def _schedule(self, tag: _Tag, now: float) -> None:
        tag.token += 1
        heapq.heappush(self._heap, (self._next_checkin(tag, now), next(self._seq), tag.mac, tag.token))

    def _advance(self, now: float) -> None:
        while True:
            checkin = self._heap[0][0] if self._heap else None
            air_end = self._on_air[1] if self._on_air else None
            if air_end is not None and air_end <= now and (checkin is None or air_end <= checkin):
                self._transfer_done(air_end)
            elif checkin is not None and checkin <= now:
                at, _, mac, token = heapq.heappop(self._heap)
                tag = self._tags[mac]
                if token == tag.token and tag.queue and not tag.waiting:
                    self._checkin(tag, at)
            else:
                return

    def _checkin(self, tag: _Tag, at: float) -> None:
        if not self._alive(tag):
            self._attempt_failed(tag, at)
            return
        tag.waiting = True
        self._radio.append(tag.mac)
        if self._on_air is None:
            self._next_transfer(at)

    def _next_transfer(self, at: float) -> None:
        while self._radio:
            tag = self._tags[self._radio.popleft()]
            if not tag.queue:
                tag.waiting = False
                continue
            if not self._alive(tag):
                tag.waiting = False
                self._attempt_failed(tag, at)
                continue
            self._on_air = (tag.mac, at + self.settings.radio_s(tag.kind))
            return
        self._on_air = None

    def _transfer_done(self, at: float) -> None:
        assert self._on_air is not None
        tag = self._tags[self._on_air[0]]
        self._on_air = None
        tag.waiting = False
        if not tag.queue:
            pass
        elif not self._alive(tag) or (self.settings.loss_rate > 0 and self._rng.random() < self.settings.loss_rate):
            self._attempt_failed(tag, at)
        else:
            content = tag.queue.popleft()
            tag.attempts = 0
            tag.shown = content
            tag.updatecount += 1
            tag.updatelast = at
            tag.refreshes += 1
            tag.battery_mv = max(0, tag.battery_mv - self.settings.drain_mv)
            self._note("logMsg", f"{tag.mac} reports xfer complete")
            self._changed(tag, at)
            if tag.queue:
                self._schedule(tag, at)
        self._next_transfer(at)

    def _attempt_failed(self, tag: _Tag, at: float) -> None:
        tag.attempts += 1
        if tag.attempts >= self.settings.attempts:
            tag.queue.popleft()
            tag.attempts = 0
            self._note("errMsg", f"{tag.mac} xfer timeout")
            self._changed(tag, at)
        if tag.queue:
            self._schedule(tag, at)

    def _note(self, kind: str, text: str) -> None:
        self.log.append(text)
        self._events.append({kind: text})

    def _changed(self, tag: _Tag, at: float) -> None:
        self._events.append({"tags": [self._record(tag, at)]})


def _decode_jpeg(data: bytes, kind: TagType) -> tuple[str | None, str | None]:
    """(MD5 of the decoded RGB pixels, None) or (None, what is wrong with the file)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                return None, f"not a JPEG ({image.format})"
            if image.info.get("progressive") or image.info.get("progression"):
                return None, "progressive JPEG: only baseline is supported"
            if image.size != (kind.width, kind.height):
                return None, (f"image is {image.size[0]}x{image.size[1]}, the {kind.tag_type}\" tag is "
                              f"{kind.width}x{kind.height}")
            pixels = image.convert("RGB").tobytes()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        return None, f"not a readable image ({exc})"
    return hashlib.md5(pixels).hexdigest(), None


# ------------------------------------------------------------------------------------------------
# The HTTP + WebSocket server
# ------------------------------------------------------------------------------------------------


def _app(ap: AccessPoint, clients: set[Any], tick_real_s: float) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route, WebSocketRoute
    from starlette.websockets import WebSocket, WebSocketDisconnect

    async def imgupload(request: Request) -> PlainTextResponse:
        form = await request.form()
        mac = str(form.get("mac") or "")
        upload = form.get("file") or form.get("image")
        if not mac or upload is None or isinstance(upload, str):
            return PlainTextResponse("need mac and file", status_code=400)
        result = ap.upload(mac, await upload.read(), kind="image")
        return PlainTextResponse(result.text, status_code=result.status)

    async def jsonupload(request: Request) -> PlainTextResponse:
        form = await request.form()
        mac, template = str(form.get("mac") or ""), form.get("json")
        if not mac or not isinstance(template, str):
            return PlainTextResponse("need mac and json", status_code=400)
        result = ap.upload(mac, template.encode(), kind="json")
        return PlainTextResponse(result.text, status_code=result.status)

    async def get_db(request: Request) -> JSONResponse:
        mac = request.query_params.get("mac")
        if mac:
            record = ap.record(mac)
            return JSONResponse({"tags": [] if record is None else [record]})
        try:
            pos = max(0, int(request.query_params.get("pos", "0")))
        except ValueError:
            return JSONResponse({"error": "pos is not a number"}, status_code=400)
        return JSONResponse(ap.records(pos))

    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        clients.add(websocket)
        try:
            while True:
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            clients.discard(websocket)

    async def ticker() -> None:
        while True:
            for event in ap.take_events():
                text = json.dumps(event)
                for client in list(clients):
                    try:
                        await client.send_text(text)
                    except Exception:  # noqa: BLE001 (a client that went away)
                        clients.discard(client)
            await asyncio.sleep(tick_real_s)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> Any:
        task = asyncio.create_task(ticker())
        try:
            yield
        finally:
            task.cancel()

    return Starlette(
        routes=[
            Route("/imgupload", imgupload, methods=["POST"]),
            Route("/jsonupload", jsonupload, methods=["POST"]),
            Route("/get_db", get_db, methods=["GET"]),
            WebSocketRoute("/ws", ws),
        ],
        lifespan=lifespan,
    )


class OeplServer:
    """The AP on http://127.0.0.1:PORT (uvicorn in a thread). ``reboot(down_s)`` takes it down:
    connections are refused for ``down_s`` real seconds and the AP forgets its queue."""

    def __init__(self, ap: AccessPoint, host: str = "127.0.0.1", port: int = 0, tick_real_s: float = 0.02) -> None:
        self.ap = ap
        self.host = host
        self._sock = self._bind(port)
        self.port = self._sock.getsockname()[1]
        self._tick = tick_real_s
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._clients: set[Any] = set()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, port))
        sock.listen(128)
        return sock

    def start(self) -> Self:
        import uvicorn

        if self._sock is None:
            self._sock = self._bind(self.port)
        config = uvicorn.Config(_app(self.ap, self._clients, self._tick), log_level="warning", lifespan="on",
                                ws="websockets-sansio", timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        sock = self._sock
        started = threading.Event()
        server = self._server

        def run() -> None:
            asyncio.run(server.serve(sockets=[sock]))

        self._thread = threading.Thread(target=run, name=f"oepl-ap-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline and self._thread.is_alive():
            started.wait(0.01)
        if not server.started:
            raise RuntimeError(f"the AP emulator did not start on {self.url}")
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._thread = None
        self._server = None
        if self._sock is not None:
            self._sock.close()
            self._sock = None  # type: ignore[assignment]

    def reboot(self, down_s: float = 0.2) -> int:
        """Stop serving, forget the queue, serve again after ``down_s`` real seconds; returns the
        messages lost."""
        self.stop()
        lost = self.ap.reboot()
        time.sleep(down_s)
        self.start()
        return lost

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def populate(ap: AccessPoint, macs: Iterable[tuple[str, int]]) -> None:
    """Add tags (mac, hwType) that are online and checked in."""
    for mac, hw_type in macs:
        ap.add_tag(mac, hw_type)
