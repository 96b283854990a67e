"""Prometheus metrics of the store daemon (prometheus-client), served on /metrics.

Every metric is named ``esl_...`` and labelled only by bounded things: the job id and kind from
config/engine.yaml, a result or a solver status. Never by SKU, label or gateway: a store has
thousands of them, and a label per SKU would make every scrape as large as the store.

=============================================  ==========  =========================================
metric                                         type        labels
=============================================  ==========  =========================================
esl_cycle_seconds                              histogram   job, kind
esl_cycles_total                               counter     job, kind, result (ok failed frozen kill_switch missed parked)
esl_pushes_total                               counter     result (confirmed failed waiting scheduled already_shown)
esl_ack_latency_seconds                        histogram   (0.01 s ... 600 s)
esl_solver_runs_total                          counter     status
esl_solver_gap_pct                             gauge
esl_outbox_open, esl_labels_failed             gauge
esl_gateways_online                            gauge
esl_kill_switch, esl_broker_connected          gauge       (0 or 1)
esl_last_cycle_timestamp_seconds               gauge       job
=============================================  ==========  =========================================

``EngineMetrics()`` has a registry of its own, so tests (and several daemons in one process) do not
collide in prometheus-client's global registry.

The cycle metrics (``esl_cycles_total``, ``esl_cycle_seconds``, ``esl_last_cycle_timestamp_seconds``)
and the outbox and kill-switch gauges of a daemon come from the shared engine database, read at
scrape time (``follow``): a cycle run by ``esl-pricing daemon --run-job`` in another process, or a
kill switch thrown from the CLI, shows in the running daemon's /metrics at the next scrape.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, Protocol, Self, get_args

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

__all__ = [
    "ACK_LATENCY_BUCKETS",
    "CYCLE_RESULTS",
    "CYCLE_SECONDS_BUCKETS",
    "PUSH_RESULTS",
    "EngineMetrics",
    "MetricsServer",
    "MetricsServerError",
]

CycleResultName = Literal["ok", "failed", "frozen", "kill_switch", "missed", "parked"]
PushResultName = Literal["confirmed", "failed", "waiting", "scheduled", "already_shown"]
CYCLE_RESULTS: tuple[str, ...] = get_args(CycleResultName)
PUSH_RESULTS: tuple[str, ...] = get_args(PushResultName)
SECURITY_EVENTS: tuple[str, ...] = ("signature_rejections", "forged_versions", "foreign_acks")
CYCLE_EVENTS: tuple[str, ...] = ("cycle_finished", "cycle_skipped")

log = logging.getLogger("esl.metrics")


class CycleEvent(Protocol):
    """What ``follow`` reads of an event (pricing.core.events.Event)."""

    seq: int | None
    at: datetime
    data: dict[str, Any]


class CycleLog(Protocol):
    """The event log ``follow`` reads (pricing.store.event_log.EventLog)."""

    def read(self, *, after_seq: int = 0, kinds: Sequence[str] | None = None) -> Sequence[CycleEvent]: ...

    def last(self, kind: str) -> CycleEvent | None: ...


class _BeforeScrape:
    """A collector with no metrics of its own, registered first: it calls ``hook`` at the start of
    every collection, so what the hook updates is in the same scrape."""

    def __init__(self) -> None:
        self.hook: Callable[[], None] | None = None

    def collect(self) -> Iterable[Any]:
        if self.hook is not None:
            self.hook()
        return []

# A cycle: a frozen one takes milliseconds, a full reprice with a push minutes, a retrain longer.
CYCLE_SECONDS_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0)
# Label acks: milliseconds in the fast simulator, ~40 s check-ins on real labels, up to the deadline.
ACK_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 60.0, 120.0, 300.0, 600.0)


class MetricsServerError(OSError):
    """The metrics endpoint cannot listen (port taken, address not local, ...). Message is one line."""


class MetricsServer:
    """A running /metrics endpoint. Call it (or ``stop()``) to stop it; stopping twice is fine."""

    def __init__(self, host: str, port: int, server: object, thread: threading.Thread) -> None:
        self.host = host
        self.port = port
        self._server = server
        self._thread = thread
        self._lock = threading.Lock()
        self._stopped = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._server.shutdown()  # type: ignore[attr-defined]  # ends serve_forever
        self._server.server_close()  # type: ignore[attr-defined]  # frees the port
        self._thread.join(timeout)

    def __call__(self) -> None:
        self.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EngineMetrics:
    """The daemon's metrics, in ``registry`` (a new one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._before_scrape = _BeforeScrape()
        r.register(self._before_scrape)  # type: ignore[arg-type]  # first: refreshes before the rest is read
        self._follow_lock = threading.Lock()
        self._log: CycleLog | None = None
        self._cursor = 0
        self._gauges: Callable[[], None] | None = None
        self.cycle_seconds = Histogram(
            "esl_cycle_seconds", "Duration of one scheduled cycle.", ["job", "kind"],
            buckets=CYCLE_SECONDS_BUCKETS, registry=r,
        )
        self.cycles_total = Counter(
            "esl_cycles_total", "Scheduled cycles by outcome (ok, failed, frozen, kill_switch, missed, parked).",
            ["job", "kind", "result"], registry=r,
        )
        self.pushes_total = Counter(
            "esl_pushes_total",
            "Label updates by outcome (confirmed, failed, waiting, scheduled, already_shown).",
            ["result"], registry=r,
        )
        self.ack_latency_seconds = Histogram(
            "esl_ack_latency_seconds", "Time from sending a label update to the label's ack.",
            buckets=ACK_LATENCY_BUCKETS, registry=r,
        )
        self.solver_runs_total = Counter(
            "esl_solver_runs_total", "Optimizer runs by solver status.", ["status"], registry=r
        )
        self.solver_gap_pct = Gauge(
            "esl_solver_gap_pct", "Optimality gap of the last optimizer run, in percent.", registry=r
        )
        self.outbox_open = Gauge("esl_outbox_open", "Label updates not yet confirmed or failed.", registry=r)
        self.labels_failed = Gauge("esl_labels_failed", "Labels whose last update failed.", registry=r)
        self.gateways_online = Gauge("esl_gateways_online", "Gateways reporting online.", registry=r)
        self.kill_switch = Gauge("esl_kill_switch", "1 while the kill switch stops every push.", registry=r)
        self.broker_connected = Gauge(
            "esl_broker_connected", "1 when the last push reached the MQTT broker.", registry=r
        )
        self.last_cycle_timestamp_seconds = Gauge(
            "esl_last_cycle_timestamp_seconds", "When each job last finished a cycle (Unix time).", ["job"],
            registry=r,
        )
        self.security_events_total = Counter(
            "esl_security_events_total",
            "Signs of tampering seen while delivering: labels refusing a state for its signature "
            "(signature_rejections), labels claiming a version the engine never issued (forged_versions), "
            "acks on another gateway's topic (foreign_acks).",
            ["kind"], registry=r,
        )
        for result in PUSH_RESULTS:  # present (as 0) from the first scrape
            self.pushes_total.labels(result=result)
        for kind in SECURITY_EVENTS:
            self.security_events_total.labels(kind=kind)

    # -- recording ------------------------------------------------------------------------------
    def declare_jobs(self, jobs: Iterable[tuple[str, str]]) -> None:
        """Create every (job, kind) series at 0, so rates work from the first scrape."""
        for job, kind in jobs:
            self.cycle_seconds.labels(job=job, kind=kind)
            for result in CYCLE_RESULTS:
                self.cycles_total.labels(job=job, kind=kind, result=result)

    def cycle_finished(
        self, job: str, kind: str, result: str, seconds: float, at: datetime | None = None
    ) -> None:
        """One cycle of ``job`` ended with ``result`` after ``seconds``, at ``at`` (default: now)."""
        if result not in CYCLE_RESULTS:
            raise ValueError(f"cycle result '{result}' is not one of {', '.join(CYCLE_RESULTS)}")
        if result == "missed":
            self.cycle_missed(job, kind)
            return
        self.cycle_seconds.labels(job=job, kind=kind).observe(max(0.0, seconds))
        self.cycles_total.labels(job=job, kind=kind, result=result).inc()
        self.last_cycle_timestamp_seconds.labels(job=job).set(at.timestamp() if at is not None else time.time())

    def cycle_missed(self, job: str, kind: str) -> None:
        """A run of ``job`` did not start within its misfire grace time."""
        self.cycles_total.labels(job=job, kind=kind, result="missed").inc()

    def pushes(self, result: str, count: int = 1) -> None:
        """``count`` label updates ended as ``result``."""
        if result not in PUSH_RESULTS:
            raise ValueError(f"push result '{result}' is not one of {', '.join(PUSH_RESULTS)}")
        if count < 0:
            raise ValueError(f"push count must not be negative, got {count}")
        if count:
            self.pushes_total.labels(result=result).inc(count)

    def security_events(self, counts: Mapping[str, object]) -> None:
        """Add a push's tampering counters (the ``SECURITY_EVENTS`` keys of its report summary)."""
        for kind in SECURITY_EVENTS:
            count = counts.get(kind)
            if isinstance(count, int) and count > 0:
                self.security_events_total.labels(kind=kind).inc(count)

    def ack_latency(self, seconds: float) -> None:
        self.ack_latency_seconds.observe(max(0.0, seconds))

    def solver_finished(self, status: str, gap_pct: float | None = None) -> None:
        self.solver_runs_total.labels(status=str(status)).inc()
        if gap_pct is not None:
            self.solver_gap_pct.set(float(gap_pct))

    def outbox(self, open_updates: int, failed_labels: int) -> None:
        self.outbox_open.set(open_updates)
        self.labels_failed.set(failed_labels)

    def gateways(self, online: int) -> None:
        self.gateways_online.set(online)

    def set_kill_switch(self, on: bool) -> None:
        self.kill_switch.set(1 if on else 0)

    def broker(self, connected: bool) -> None:
        self.broker_connected.set(1 if connected else 0)

    # -- from the shared database ----------------------------------------------------------------
    def follow(self, events: CycleLog, *, gauges: Callable[[], None] | None = None) -> None:
        """From now on, count the cycles in ``events`` (``cycle_finished`` / ``cycle_skipped``
        recorded after this call, by any process on the database: the daemon's own and those of
        `esl-pricing daemon --run-job`), at every scrape and ``refresh()``. ``gauges`` is called
        then too, to set the gauges read from the database (outbox, kill switch). Whoever follows
        a log records cycles there only, not with ``cycle_finished`` (they would count twice)."""
        newest = [e.seq for e in (events.last(kind) for kind in CYCLE_EVENTS) if e is not None and e.seq]
        with self._follow_lock:
            self._log, self._cursor, self._gauges = events, max(newest, default=0), gauges
        self._before_scrape.hook = self._refresh_quietly

    def refresh(self) -> None:
        """Take in the cycle events recorded since the last refresh, and the database's gauges."""
        with self._follow_lock:
            if self._log is None:
                return
            for event in self._log.read(after_seq=self._cursor, kinds=CYCLE_EVENTS):
                self._cursor = max(self._cursor, event.seq or 0)
                self._count_cycle(event)
            if self._gauges is not None:
                self._gauges()

    def _refresh_quietly(self) -> None:
        """``refresh`` for a scrape: a database that cannot be read leaves the values as they were."""
        try:
            self.refresh()
        except Exception:  # a scrape must not fail because the database is away
            log.debug("metrics refresh from the database failed", exc_info=True)

    def _count_cycle(self, event: CycleEvent) -> None:
        data = event.data
        job, kind, result = str(data.get("job", "")), str(data.get("kind", "")), str(data.get("result", ""))
        if not job or result not in CYCLE_RESULTS:
            return
        if result == "missed":
            self.cycle_missed(job, kind)
            return
        seconds = data.get("seconds")
        self.cycle_finished(job, kind, result, float(seconds) if isinstance(seconds, int | float) else 0.0, event.at)

    # -- exposing -------------------------------------------------------------------------------
    def scrape(self) -> bytes:
        """What /metrics serves (Prometheus text format)."""
        return generate_latest(self.registry)

    def serve(self, host: str = "127.0.0.1", port: int = 9464) -> MetricsServer:
        """Serve /metrics on ``host:port`` in a daemon thread (port 0: any free port, see ``.port``).
        Returns the server; calling it stops it. MetricsServerError when it cannot listen."""
        try:
            started = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise MetricsServerError(f"cannot serve metrics on {host}:{port}: {reason}") from None
        if started is None:  # prometheus-client < 0.17 gives nothing to stop
            raise RuntimeError("prometheus-client >= 0.20 is needed to stop the metrics server")
        server, thread = started
        bound = int(server.server_address[1])
        return MetricsServer(host, bound, server, thread)
