"""Replay a recorded event log against the simulator and report where the replay diverges.

An engineer reproducing an incident exports the store's event log (``pricing.store.event_log``: one JSON
event per line) and runs ``esl-pricing replay EVENTS --speed N``. This module:

1. reads the log in ``seq`` order and checks what the log alone can tell (records that do not
   hold together, pushes inside a freeze window, acks that go back or come before their push);
2. starts simulated gateways (``simulator.gateways``) for the labels of the log's ``pushed``
   events, on a fresh topic prefix, with a clock that follows the log's time rather than the wall;
3. publishes every recorded desired state again, retained at QoS 1 as the engine did, paced by
   the gaps between the events' ``at`` divided by ``speed`` (or as fast as the window allows),
   where a gap longer than ``max_gap_s`` of log time (a night with nothing happening) counts as
   ``max_gap_s``: the simulator's clock still jumps the whole gap, only the wall waits less;
4. collects the simulator's acks and compares what the replayed labels show and acknowledged with
   what the log says the real labels showed and acknowledged.

Determinism: the simulator sees the log's clock (each event moves it to that event's ``at``), a
scheduled price switches when the clock passes its ``effective_at`` (synchronously, before the
next event), and the clock never passes an ``effective_at`` while the push carrying it is still
unanswered. So the same log and seed give the same acks and divergences at any speed and gap
cap; only ``seconds`` differs. See docs/replay.md.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from label_gateway.broker import (
    BrokerAddress,
    BrokerError,
    clear_retained,
    connect,
    disconnect,
    new_client,
)
from label_gateway.protocol import QOS, DesiredState, ProtocolError, Topics, parse_acks
from label_gateway.signing import Signer
from pricing.core.errors import first_error
from pricing.core.events import AckedData, Event, FailedData, PushedData
from pricing.core.money import to_decimal
from pricing.core.store_calendar import StoreCalendar
from simulator.gateways import (
    Displayed,
    GatewayOptions,
    HistoryEntry,
    SimulatedGateways,
    count_regressions,
)

DivergenceKind = Literal["bad_record", "frozen", "ack_order", "final_price", "missing_ack"]
DIVERGENCE_KINDS: tuple[DivergenceKind, ...] = ("bad_record", "frozen", "ack_order", "final_price", "missing_ack")

#: Desired states published and not yet answered, per gateway (Mosquitto drops QoS 1 messages
#: queued for a subscriber past max_queued_messages, 1000 by default).
WINDOW_PER_GATEWAY = 200
SHOWN: frozenset[str] = frozenset({"displayed", "unchanged"})
ACCEPTED: frozenset[str] = frozenset({"displayed", "unchanged", "scheduled"})
#: The sample log (simulator/samples/make_sample_events.py writes it); replaying it finds nothing.
SAMPLE_EVENTS = Path(__file__).parent / "samples" / "sample-events.jsonl"
#: Seconds of log time a quiet gap between two events is paced as at most (None: every gap in full).
DEFAULT_MAX_GAP_S = 60.0

#: Reports how far the replay is: (stage, done, total); total None when there is no count.
ReplayProgress = Callable[[str, int | None, int | None], None]


class ReplayError(ValueError):
    """A log or an argument the replay cannot work with (one line; a user error)."""


@dataclass(frozen=True)
class Divergence:
    """One place where the log or its replay does not hold together. ``seq``: the log event it is
    about (for a replay finding, the push of the version concerned)."""

    kind: DivergenceKind
    label: str | None
    seq: int
    detail: str

    @property
    def sort_key(self) -> tuple[int, str, str, str]:
        return (self.seq, self.kind, self.label or "", self.detail)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "label": self.label, "seq": self.seq, "detail": self.detail}


@dataclass
class ReplayReport:
    """What a replay did and found. ``summary()`` is the same for the same log and seed, apart
    from ``seconds``."""

    events: int
    store: str | None
    gateways: int
    labels: int
    pushes: int  # desired states published
    acks: int  # label acks received from the simulator
    divergences: list[Divergence]
    seed: int
    speed: float | None
    max_gap_s: float | None = DEFAULT_MAX_GAP_S
    seconds: float = 0.0
    topic_prefix: str = ""  # unique per run: not part of the summary
    unanswered: int = 0  # published desired states still unanswered at the end (timed out)

    @property
    def ok(self) -> bool:
        return not self.divergences

    def counts(self) -> dict[str, int]:
        counted = Counter(d.kind for d in self.divergences)
        return {kind: counted[kind] for kind in DIVERGENCE_KINDS}

    def summary(self) -> dict[str, Any]:
        """JSON-ready. Everything except ``seconds`` depends only on the log, the seed and the pacing
        options (``speed``, ``max_gap_s``), and the findings only on the log and the seed."""
        return {
            "ok": self.ok,
            "store": self.store,
            "events": self.events,
            "gateways": self.gateways,
            "labels": self.labels,
            "pushes": self.pushes,
            "acks": self.acks,
            "unanswered": self.unanswered,
            "seed": self.seed,
            "speed": "max" if self.speed is None else self.speed,
            "max_gap_s": self.max_gap_s,
            "divergence_counts": self.counts(),
            "divergences": [d.as_dict() for d in self.divergences],
            "seconds": round(self.seconds, 3),
        }


# ------------------------------------------------------------------------------------------------
# What the log says
# ------------------------------------------------------------------------------------------------


class _Push(NamedTuple):
    seq: int
    at: datetime
    label: str
    gateway: str
    data: PushedData
    state: DesiredState | None  # None: not publishable (see the bad_record divergence)


class _Ack(NamedTuple):
    seq: int
    label: str
    data: AckedData


@dataclass
class _Final:
    """What the log says a label showed at the end: its highest version acked as shown."""

    version: int
    price_cents: int
    seq: int
    status: str


@dataclass
class LogFacts:
    """The log read once: pushes to replay, acks to compare with, and the log-only divergences."""

    events: int
    store: str | None
    start: datetime | None  # the first event's time (in seq order)
    end: datetime | None  # the latest event time: "the log's end"
    timeline: list[tuple[int, datetime]]  # (seq, at) of every event, in seq order
    labels: dict[str, tuple[str, str]]  # label -> (gateway, sku)
    pushes: list[_Push]
    acks: list[_Ack]
    pushed: dict[tuple[str, int], _Push]  # (label, version) -> its last push record
    first_push_seq: dict[tuple[str, int], int]
    failed: set[tuple[str, int]]
    final: dict[str, _Final]
    divergences: list[Divergence]


def _money(cents: int | None, currency: str = "") -> str:
    if cents is None:
        return "none"
    text = str(to_decimal(cents))
    return f"{text} {currency}".strip()


def _aware(moment: datetime) -> bool:
    return moment.tzinfo is not None and moment.tzinfo.utcoffset(moment) is not None


def read_log(events: Sequence[Event]) -> LogFacts:
    """Walk the log in ``seq`` order: what to replay, and the divergences the log alone shows
    (``bad_record``, ``frozen``, and ``ack_order`` within the log). ReplayError for a log that
    cannot be replayed at all (several stores, a time without a zone)."""
    ordered = sorted(events, key=lambda e: e.seq)
    for event in ordered:
        if not _aware(event.at):
            raise ReplayError(f"event seq {event.seq} ({event.kind}): 'at' has no time zone")
    stores = sorted({e.store for e in ordered})
    if len(stores) > 1:
        raise ReplayError(
            f"the log holds events of {len(stores)} stores ({', '.join(stores)}); replay one store's log"
        )
    found: list[Divergence] = []
    labels: dict[str, tuple[str, str]] = {}
    bound_at: dict[str, int] = {}
    pushes: list[_Push] = []
    acks: list[_Ack] = []
    pushed: dict[tuple[str, int], _Push] = {}
    first_push_seq: dict[tuple[str, int], int] = {}
    failed: set[tuple[str, int]] = set()
    top_shown: dict[str, int] = {}
    calendar: StoreCalendar | None = None

    def bad(event: Event, detail: str) -> None:
        found.append(Divergence("bad_record", event.label, event.seq, f"{event.kind}: {detail}"))

    for event in ordered:
        if event.kind == "daemon_started":
            raw = event.data.get("calendar")
            calendar = None
            if raw is not None:
                try:
                    calendar = StoreCalendar.model_validate(raw)
                except ValidationError as exc:
                    bad(event, f"calendar: {first_error(exc)} (no freeze check until the next daemon_started)")
        elif event.kind == "pushed":
            push = _read_push(event, calendar, labels, bound_at, found, bad)
            if push is None:
                continue
            pushes.append(push)
            key = (push.label, push.data.version)
            pushed[key] = push
            first_push_seq.setdefault(key, push.seq)
        elif event.kind == "acked":
            if event.label is None:
                bad(event, "no label")
                continue
            try:
                data = AckedData.model_validate(event.data)
            except ValidationError as exc:
                bad(event, first_error(exc))
                continue
            _check_log_ack(event, event.label, data, top_shown, found)
            acks.append(_Ack(event.seq, event.label, data))
        elif event.kind == "failed":
            if event.label is None:
                bad(event, "no label")
                continue
            try:
                failure = FailedData.model_validate(event.data)
            except ValidationError as exc:
                bad(event, first_error(exc))
                continue
            failed.add((event.label, failure.version))

    # An ack for a version never pushed, or pushed only later in the log.
    for ack in acks:
        first = first_push_seq.get((ack.label, ack.data.version))
        if first is None:
            detail = f"log: v{ack.data.version} acked {ack.data.status} but never pushed"
        elif first > ack.seq:
            detail = f"log: v{ack.data.version} acked {ack.data.status} before its push (seq {first})"
        else:
            continue
        found.append(Divergence("ack_order", ack.label, ack.seq, detail))

    end = max((e.at for e in ordered), default=None)
    final = _log_final(acks, pushed, end)
    return LogFacts(
        events=len(ordered),
        store=stores[0] if stores else None,
        start=ordered[0].at if ordered else None,
        end=end,
        timeline=[(e.seq, e.at) for e in ordered],
        labels=labels,
        pushes=pushes,
        acks=acks,
        pushed=pushed,
        first_push_seq=first_push_seq,
        failed=failed,
        final=final,
        divergences=found,
    )


def _read_push(
    event: Event,
    calendar: StoreCalendar | None,
    labels: dict[str, tuple[str, str]],
    bound_at: dict[str, int],
    found: list[Divergence],
    bad: Callable[[Event, str], None],
) -> _Push | None:
    if event.label is None or event.sku is None:
        bad(event, "no label or sku")
        return None
    try:
        data = PushedData.model_validate(event.data)
    except ValidationError as exc:
        bad(event, first_error(exc))
        return None
    label = event.label
    if data.effective_at is not None and not _aware(data.effective_at):
        bad(event, f"v{data.version}: effective_at has no time zone")
        return None
    if calendar is not None:
        _check_freeze(calendar, event, label, data, found)
    binding = labels.setdefault(label, (data.gateway, event.sku))
    bound_at.setdefault(label, event.seq)
    if binding != (data.gateway, event.sku):
        bad(event, (
            f"v{data.version} for gateway {data.gateway} / sku {event.sku}, but the label was bound to "
            f"gateway {binding[0]} / sku {binding[1]} at seq {bound_at[label]} (not replayed)"
        ))
        return _Push(event.seq, event.at, label, data.gateway, data, None)
    state: DesiredState | None
    try:
        state = DesiredState.build(
            label=label,
            sku=event.sku,
            version=data.version,
            price_cents=data.price_cents,
            currency=data.currency,
            correlation=event.correlation or "",
            effective_at=data.effective_at,
            reference_cents=data.reference_cents,
        ).model_copy(update={"issued_at": event.at})
    except ValidationError as exc:
        bad(event, f"v{data.version}: not a valid desired state ({first_error(exc)}; not replayed)")
        return _Push(event.seq, event.at, label, data.gateway, data, None)
    if state.content_hash != data.content_hash:
        bad(event, (
            f"v{data.version}: content_hash {data.content_hash} does not match label, sku, price, currency "
            f"and reference ({state.content_hash})"
        ))
    return _Push(event.seq, event.at, label, data.gateway, data, state)


def _check_freeze(
    calendar: StoreCalendar, event: Event, label: str, data: PushedData, found: list[Divergence]
) -> None:
    """A push inside a freeze window; or a scheduled switch (effective_at after the push) inside one."""
    moments = [("pushed", event.at)]
    if data.effective_at is not None and data.effective_at > event.at:
        moments.append(("effective_at", data.effective_at))
    for what, moment in moments:
        reason = calendar.frozen(moment)
        if reason is not None:
            local = moment.astimezone(calendar.tz)
            found.append(Divergence(
                "frozen", label, event.seq,
                f"v{data.version} {what} {local:%Y-%m-%d %H:%M} {calendar.timezone}: {reason}",
            ))


def _check_log_ack(
    event: Event,
    label: str,
    data: AckedData,
    top_shown: dict[str, int],
    found: list[Divergence],
) -> None:
    version = data.version
    top = top_shown.get(label, 0)
    if version < top:
        found.append(Divergence(
            "ack_order", label, event.seq,
            f"log: v{version} acked {data.status} after v{top} was shown (the label went back)",
        ))
    if data.status in SHOWN:
        top_shown[label] = max(top, version)


def _log_final(acks: Iterable[_Ack], pushed: dict[tuple[str, int], _Push], end: datetime | None) -> dict[str, _Final]:
    final: dict[str, _Final] = {}
    for ack in acks:
        data = ack.data
        if data.status == "scheduled":
            push = pushed.get((ack.label, data.version))
            effective = push.data.effective_at if push is not None else None
            if effective is not None and (end is None or effective > end):
                continue  # still waiting on the label when the log ends
        current = final.get(ack.label)
        if current is None or data.version >= current.version:
            final[ack.label] = _Final(data.version, data.price_cents, ack.seq, data.status)
    return final


# ------------------------------------------------------------------------------------------------
# The replay
# ------------------------------------------------------------------------------------------------


class _LogClock:
    """The simulator's clock: the log's time, moved forward by the replay (never back)."""

    def __init__(self, start: datetime) -> None:
        self._now = start

    def __call__(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = max(self._now, moment)


@dataclass
class _Flight:
    gateway: str
    deadline: float  # monotonic: counted as lost after this
    effective_at: datetime | None
    count: int = 1



class _Acks:
    """The replay's MQTT client: publishes desired states, collects the simulator's acks and
    tracks what is in flight (published, not yet answered) per gateway."""

    def __init__(self, address: BrokerAddress, topics: Topics) -> None:
        self.address = address
        self.topics = topics
        self.cond = threading.Condition()
        self.received: list[tuple[str, str, int, str]] = []  # (gateway, label, version, status), in arrival order
        self.statuses: dict[tuple[str, int], set[str]] = defaultdict(set)
        self.malformed = 0
        self.flights: dict[tuple[str, int], _Flight] = {}
        self.lost = 0  # published, unanswered past the ack timeout
        self._subscribed = threading.Event()
        self._refused: str | None = None
        self.client = new_client("replay")
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def start(self, timeout: float = 10.0) -> None:
        connect(self.client, self.address, timeout=timeout)
        self.client.subscribe(self.topics.ack_filter, qos=QOS)
        if not self._subscribed.wait(timeout) or self._refused:
            disconnect(self.client)
            raise BrokerError(self._refused or f"MQTT broker at {self.address.url} did not confirm the ack subscription")

    def stop(self) -> None:
        disconnect(self.client)

    def _on_subscribe(self, client: mqtt.Client, userdata: object, mid: int, reasons: Any, props: object) -> None:
        failed = [r for r in reasons if r.is_failure]
        if failed:
            self._refused = f"MQTT broker at {self.address.url} refused the ack subscription: {failed[0]}"
        self._subscribed.set()

    def _on_message(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        try:
            batch = parse_acks(message.payload)
        except ProtocolError:
            with self.cond:
                self.malformed += 1
            return
        with self.cond:
            self.malformed += batch.malformed
            for ack in batch.acks:
                key = (ack.label, ack.version)
                self.received.append((batch.gateway, ack.label, ack.version, ack.status))
                self.statuses[key].add(ack.status)
                flight = self.flights.get(key)
                if flight is not None:
                    flight.count -= 1
                    if flight.count <= 0:
                        del self.flights[key]
            self.cond.notify_all()

    # -- in flight (call these with self.cond held) -------------------------------------------
    def _expire(self) -> None:
        now = time.monotonic()
        for key in [k for k, f in self.flights.items() if f.deadline <= now]:
            self.lost += self.flights.pop(key).count

    def in_flight(self, gateway: str) -> int:
        return sum(f.count for f in self.flights.values() if f.gateway == gateway)

    def add(self, key: tuple[str, int], gateway: str, deadline: float, effective_at: datetime | None) -> None:
        flight = self.flights.get(key)
        if flight is None:
            self.flights[key] = _Flight(gateway, deadline, effective_at)
        else:
            flight.count += 1
            flight.deadline = deadline

    def wait_for(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait until ``done()`` or ``timeout`` seconds; an entry in flight longer than the ack
        timeout counts as lost (it stops holding the window)."""
        deadline = time.monotonic() + timeout
        while True:
            self._expire()
            if done():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.cond.wait(min(remaining, 0.2))


def replay(
    events: Sequence[Event],
    address: BrokerAddress,
    *,
    prefix: str,
    speed: float | None,
    seed: int = 0,
    ack_timeout_s: float = 10.0,
    options: GatewayOptions | None = None,
    max_gap_s: float | None = DEFAULT_MAX_GAP_S,
    progress: ReplayProgress | None = None,
) -> ReplayReport:
    """Replay ``events`` against simulated gateways on the broker at ``address`` (see the module doc).

    ``prefix``: the run's topics go under ``{prefix}/{unique id}/`` and are cleared at the end.
    ``speed``: the gaps between events' ``at`` are slept divided by it; None replays as fast as
    the window allows. ``max_gap_s``: a gap longer than this many seconds of log time is slept
    as if it were this long (None: every gap in full); the simulator's clock jumps it whole.
    ``seed`` replaces ``options.seed`` (the simulator's losses, dead labels and check-in phases).
    ``progress`` hears ("replaying events", done, total) after each event, then ("waiting for
    acks", answered, published). ReplayError for a bad argument or a log that cannot be replayed
    at all; BrokerError when the broker cannot be used."""
    if speed is not None and not (math.isfinite(speed) and speed > 0):
        raise ReplayError(f"speed must be a positive number or max, not {speed:g}")
    if max_gap_s is not None and not (math.isfinite(max_gap_s) and max_gap_s >= 0):
        raise ReplayError(f"the longest gap must be a number of seconds >= 0 or none, not {max_gap_s:g}")
    if not (math.isfinite(ack_timeout_s) and ack_timeout_s > 0):
        raise ReplayError("the ack timeout must be a positive number of seconds")
    started = time.monotonic()
    facts = read_log(events)
    run_prefix = f"{prefix}/{uuid.uuid4().hex[:12]}"
    try:
        topics = Topics(facts.store or "store", prefix=run_prefix)
    except ValueError as exc:
        raise ReplayError(str(exc)) from None
    # The replay signs as the engine did, with a key of its own that its labels trust: a replay
    # exercises the labels' signature checks too, and nothing recorded needs the store's key.
    signer = Signer.generate()
    gateway_options = dataclasses.replace(options or GatewayOptions(), seed=seed, trusted_keys=signer.trusted())
    report = ReplayReport(
        events=facts.events,
        store=facts.store,
        gateways=len({gateway for gateway, _ in facts.labels.values()}),
        labels=len(facts.labels),
        pushes=0,
        acks=0,
        divergences=[],
        seed=seed,
        speed=speed,
        max_gap_s=max_gap_s,
        topic_prefix=run_prefix,
    )
    found = list(facts.divergences)
    if facts.labels:
        run = _Run(facts, address, topics, gateway_options, _Pacing(speed, max_gap_s), ack_timeout_s, signer,
                   progress or (lambda _stage, _done, _total: None))
        run.execute()
        report.pushes = run.published
        report.acks = len(run.acks.received)
        report.unanswered = run.unanswered
        found.extend(compare(facts, run.acks.received, run.displayed, run.history, run.published_keys))
    report.divergences = sorted(set(found), key=lambda d: d.sort_key)
    report.seconds = time.monotonic() - started
    return report


@dataclass(frozen=True)
class _Pacing:
    """How the wall follows the log: gaps divided by ``speed`` (None: no sleeping), each gap
    first cut to ``max_gap_s`` seconds of log time (None: not cut)."""

    speed: float | None
    max_gap_s: float | None

    def wall_seconds(self, gap_s: float) -> float:
        """Wall seconds to wait for a gap of ``gap_s`` seconds of log time."""
        if self.speed is None:
            return 0.0
        if self.max_gap_s is not None:
            gap_s = min(gap_s, self.max_gap_s)
        return gap_s / self.speed


class _Run:
    """One replay against the broker: the simulator, the replay's client, the walk."""

    def __init__(
        self,
        facts: LogFacts,
        address: BrokerAddress,
        topics: Topics,
        options: GatewayOptions,
        pacing: _Pacing,
        ack_timeout_s: float,
        signer: Signer,
        progress: ReplayProgress,
    ) -> None:
        assert facts.start is not None
        self.facts = facts
        self.signer = signer
        self.address = address
        self.topics = topics
        self.pacing = pacing
        self.progress = progress
        self.ack_timeout_s = ack_timeout_s
        self.clock = _LogClock(facts.start)
        rows = sorted((label, gateway, sku) for label, (gateway, sku) in facts.labels.items())
        self.sim = SimulatedGateways(address, topics, rows, options=options, clock=self.clock)
        self.acks = _Acks(address, topics)
        self.published = 0
        self.published_keys: set[tuple[str, int]] = set()
        self.unanswered = 0
        self.displayed: dict[str, Displayed] = {}
        self.history: dict[str, list[HistoryEntry]] = {}
        self._effective: list[datetime] = []  # heap: effective_at instants still ahead of the clock

    def execute(self) -> None:
        self.acks.start()
        try:
            self.sim.start()
            try:
                self._walk()
                self._finish()
                self.displayed = self.sim.displayed()
                self.history = self.sim.history()
            finally:
                self.sim.stop()
        finally:
            self.acks.stop()
            clear_retained(self.address, f"{self.topics.prefix}/#", settle_s=0.3)

    def _walk(self) -> None:
        facts = self.facts
        assert facts.start is not None and facts.end is not None
        pushes = {p.seq: p for p in facts.pushes}
        due = time.monotonic()  # when the current event is due on the wall
        latest = facts.start
        total = len(facts.timeline)
        for done, (seq, at) in enumerate(facts.timeline, start=1):
            due += self.pacing.wall_seconds((max(latest, at) - latest).total_seconds())
            latest = max(latest, at)
            self._sleep_until(due)
            self._advance(latest)
            push = pushes.get(seq)
            if push is not None and push.state is not None:
                self._publish(push)
            self.progress("replaying events", done, total)
        self._advance(facts.end)

    @staticmethod
    def _sleep_until(due: float) -> None:
        """Sleep until the monotonic instant ``due`` (at once when it has passed: a slow broker
        round trip is caught up by the next gaps, never by running ahead of the log)."""
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)

    def _advance(self, moment: datetime) -> None:
        """Move the log clock to ``moment``, stopping at every effective_at instant on the way:
        once the pushes carrying it are answered (held as ``scheduled``), the labels due then
        switch before anything else is published."""
        while self._effective and self._effective[0] <= moment:
            instant = heapq.heappop(self._effective)
            if instant <= self.clock():
                continue
            with self.acks.cond:
                self.acks.wait_for(lambda at=instant: not self._unanswered_until(at), self.ack_timeout_s)
            self.clock.set(instant)
            for gateway in self.sim.gateways:
                gateway.tick(instant)
        self.clock.set(moment)

    def _unanswered_until(self, instant: datetime) -> bool:
        return any(f.effective_at is not None and f.effective_at <= instant for f in self.acks.flights.values())

    def _publish(self, push: _Push) -> None:
        state = push.state
        assert state is not None
        gateway = push.gateway
        acks = self.acks
        with acks.cond:
            acks.wait_for(lambda: acks.in_flight(gateway) < WINDOW_PER_GATEWAY, self.ack_timeout_s)
            acks.add((push.label, state.version), gateway, time.monotonic() + self.ack_timeout_s, state.effective_at)
        (proof,) = self.signer.sign_batch([state.signed_message(self.topics.store)])
        signed = state.model_copy(update={"key_id": proof.key_id, "signature": proof.signature})
        acks.client.publish(self.topics.desired(gateway, push.label), signed.to_json(), qos=QOS, retain=True)
        self.published += 1
        self.published_keys.add((push.label, state.version))
        if state.effective_at is not None and state.effective_at > self.clock():
            heapq.heappush(self._effective, state.effective_at)

    def _finish(self) -> None:
        """Wait until every published version is answered and every label's shown version was
        acked as shown, or ``ack_timeout_s`` passes."""

        def settled() -> bool:
            self.progress("waiting for acks", self.published - sum(f.count for f in self.acks.flights.values()),
                          self.published)
            if self.acks.flights:
                return False
            shown = self.sim.displayed()
            return all(SHOWN & self.acks.statuses.get((label, d.version), set()) for label, d in shown.items())

        with self.acks.cond:
            self.acks.wait_for(settled, self.ack_timeout_s)
            self.unanswered = self.acks.lost + sum(f.count for f in self.acks.flights.values())


# ------------------------------------------------------------------------------------------------
# Log against replay
# ------------------------------------------------------------------------------------------------


def compare(
    facts: LogFacts,
    received: Sequence[tuple[str, str, int, str]],
    displayed: dict[str, Displayed],
    history: dict[str, list[HistoryEntry]],
    published: set[tuple[str, int]],
) -> list[Divergence]:
    """The divergences between the log and its replay: ``final_price``, ``missing_ack`` and the
    replay's ``ack_order``."""
    found: list[Divergence] = []
    found += _final_prices(facts, displayed)
    found += _missing_acks(facts, received, published)
    found += _replay_order(facts, received, history)
    return found


def _final_prices(facts: LogFacts, displayed: dict[str, Displayed]) -> list[Divergence]:
    found: list[Divergence] = []
    for label, final in sorted(facts.final.items()):
        push = facts.pushed.get((label, final.version))
        currency = push.data.currency if push is not None else ""
        logged = f"log: v{final.version} {_money(final.price_cents, currency)} (acked {final.status})"
        shown = displayed.get(label)
        if shown is None:
            found.append(Divergence("final_price", label, final.seq, f"{logged}; the replayed label shows nothing"))
            continue
        note = ""
        if shown.version != final.version and (label, shown.version) in facts.failed:
            note = ", a version the log says failed"
        if shown.price_cents != final.price_cents:
            found.append(Divergence(
                "final_price", label, final.seq,
                f"{logged}; replay: v{shown.version} {_money(shown.price_cents, currency)}{note}",
            ))
        reference = push.data.reference_cents if push is not None else None
        if reference is not None and shown.reference_cents != reference:
            found.append(Divergence(
                "final_price", label, final.seq,
                f"log: v{final.version} reference price {_money(reference, currency)}; "
                f"replay: v{shown.version} reference price {_money(shown.reference_cents, currency)}{note}",
            ))
    return found


def _missing_acks(
    facts: LogFacts, received: Sequence[tuple[str, str, int, str]], published: set[tuple[str, int]]
) -> list[Divergence]:
    got: dict[tuple[str, int], set[str]] = defaultdict(set)
    for _, label, version, status in received:
        got[(label, version)].add(status)
    first_ack: dict[tuple[str, int], _Ack] = {}
    first_shown: dict[tuple[str, int], _Ack] = {}
    for ack in facts.acks:
        key = (ack.label, ack.data.version)
        first_ack.setdefault(key, ack)
        if ack.data.status in SHOWN:
            first_shown.setdefault(key, ack)
    found: list[Divergence] = []
    for key, ack in first_ack.items():
        if key not in published:
            continue  # never pushed or not publishable: reported as ack_order / bad_record
        statuses = got.get(key, set())
        replayed = ", ".join(sorted(statuses)) or "no ack"
        if not statuses & ACCEPTED:
            found.append(Divergence(
                "missing_ack", key[0], ack.seq,
                f"log: v{key[1]} acked {ack.data.status}; replay: {replayed}",
            ))
        elif key in first_shown and not statuses & SHOWN:
            shown = first_shown[key]
            found.append(Divergence(
                "missing_ack", key[0], shown.seq,
                f"log: v{key[1]} acked {shown.data.status}; replay: {replayed}",
            ))
    return found


def _replay_order(
    facts: LogFacts, received: Sequence[tuple[str, str, int, str]], history: dict[str, list[HistoryEntry]]
) -> list[Divergence]:
    found: list[Divergence] = []
    top: dict[str, int] = {}
    for _, label, version, status in received:
        if status not in ACCEPTED:
            continue
        shown = top.get(label, 0)
        if version < shown:
            found.append(Divergence(
                "ack_order", label, facts.first_push_seq.get((label, version), 0),
                f"replay: v{version} acked {status} after v{shown} was shown",
            ))
        if status in SHOWN:
            top[label] = max(shown, version)
    for label, entries in sorted(history.items()):
        regressions = count_regressions(entries)
        if not regressions:
            continue
        highest = 0
        first_back = entries[0].version
        for entry in entries:
            if entry.version < highest:
                first_back = entry.version
                break
            highest = max(highest, entry.version)
        found.append(Divergence(
            "ack_order", label, facts.first_push_seq.get((label, first_back), 0),
            f"replay: the simulated label went back {regressions} time(s), first to v{first_back}",
        ))
    return found
