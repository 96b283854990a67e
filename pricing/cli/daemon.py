"""esl-pricing daemon / status / kill-switch / events: run a store's schedule and look at it."""

from __future__ import annotations

import getpass
import signal
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.markup import escape
from rich.table import Table

from label_gateway.broker import BrokerAddress
from label_gateway.outbox import Outbox
from label_gateway.probe import probe_gateways
from label_gateway.protocol import Topics
from pricing.cli.common import command_group, emit_json, err, fail, user_errors
from pricing.core.database import open_engine
from pricing.core.events import Event
from pricing.core.yaml_config import ConfigError
from pricing.store.engine_config import EngineConfig, load_engine_config
from pricing.store.engine_state import HEARTBEAT, KILL_SWITCH, EngineFlags
from pricing.store.event_log import EventLog
from pricing.store.metrics import MetricsServerError

ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The engine config (config/engine.yaml).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")]

events_app = command_group("The append-only event log of price and label changes.")


def _load(config: Path) -> EngineConfig:
    with user_errors():
        return load_engine_config(config)


def _check_inputs(settings: EngineConfig, config: Path) -> None:
    """A missing data_dir or rules file: one ``FILE:LINE: key: ...`` line each and exit 2, before
    the daemon records or schedules anything."""
    with user_errors():
        problems = settings.input_problems(config)
        if problems:
            raise ConfigError(problems)


def register(app: typer.Typer) -> None:
    app.command("daemon")(daemon)
    app.command("status")(status)
    app.command("kill-switch")(kill_switch)
    app.add_typer(events_app, name="events")


def daemon(
    config: ConfigOption = Path("config/engine.yaml"),
    run_job: Annotated[
        str | None, typer.Option("--run-job", help="Run this job once now and exit (e.g. nightly-reprice).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Run the store's schedule: repricing, markdowns, reconciliation, retraining (until SIGTERM)."""
    from pricing.store.daemon import StoreDaemon

    settings = _load(config)
    _check_inputs(settings, config)
    with user_errors():
        store = StoreDaemon(
            settings, config.parent, say=lambda text: err.print(text, highlight=False, markup=False, soft_wrap=True)
        )
    if run_job is not None:
        if run_job not in {job.id for job in settings.jobs}:
            known = ", ".join(job.id for job in settings.jobs)
            fail(f"{config}: no job '{run_job}' (jobs: {known})")
        with user_errors():
            result = store.run_job(run_job)
        if as_json:
            emit_json(result.data() | {"seconds": round(result.seconds, 3)})
        if result.result == "failed":
            raise typer.Exit(1)
        return

    with user_errors():  # one daemon per store and database: a second one exits here, having changed nothing
        store.signer  # noqa: B018  (no signing key: one line now, not at the first push)
        store.claim()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        err.print(f"{signal.Signals(signum).name}: finishing the cycle in flight, then stopping")
        store.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stopper = None
    if settings.metrics.enabled:
        with user_errors(MetricsServerError):
            stopper = store.metrics.serve(settings.metrics.host, settings.metrics.port)
        err.print(f"metrics on http://{settings.metrics.host}:{settings.metrics.port}/metrics")
    try:
        with user_errors():
            store.start()
            err.print(f"daemon for store {settings.store}: {len(settings.jobs)} jobs scheduled", highlight=False)
            store.resume()
            store.run()
    finally:
        store.shutdown()
        if stopper is not None:
            stopper()
    err.print("stopped")


def status(config: ConfigOption = Path("config/engine.yaml"), as_json: JsonOption = False) -> None:
    """The last cycle, the next runs, the broker, the outbox, gateways online and failed labels."""
    from pricing.store.scheduler import jobs_table, next_runs

    settings = _load(config)
    with user_errors():
        engine = open_engine(settings.database_target(config.parent))
        flags = EngineFlags(engine, settings.store)
        log = EventLog(engine, settings.store)
        last = _last_cycle(log)
        prefix = f"{settings.store}/"
        upcoming = next_runs(engine, tablename=jobs_table(settings.store), prefix=prefix) or next_runs(
            engine, prefix=prefix  # a daemon of an earlier version: the shared table, until it restarts
        )
        counts = Outbox(engine, settings.store).counts()
        address = BrokerAddress.parse(settings.broker)
        probe = probe_gateways(address, Topics(settings.store, prefix=settings.prefix))
    heartbeat = flags.get(HEARTBEAT) or {}
    killed = bool(settings.kill_switch or flags.kill_switch())
    tz = settings.calendar.tz
    summary: dict[str, Any] = {
        "store": settings.store,
        "daemon": heartbeat.get("state", "never started"),
        "daemon_seen_at": heartbeat.get("at"),
        "kill_switch": killed,
        "last_cycle": None if last is None else {"at": last.at.isoformat(), **last.data},
        "next_runs": [{"job": job, "at": at.isoformat() if at else None} for job, at in upcoming],
        "broker": {"url": address.url, "reachable": probe.reachable, "error": probe.error},
        "gateways_online": probe.online,
        "gateways_offline": probe.offline,
        "outbox_open": counts.open,
        "labels_failed": counts.by_state.get("failed", 0),
        "labels_confirmed": counts.by_state.get("confirmed", 0),
        "low_battery": counts.low_battery,
    }
    _print_status(summary, tz)
    if as_json:
        emit_json(summary)


def _last_cycle(log: EventLog) -> Event | None:
    finished, skipped = log.last("cycle_finished"), log.last("cycle_skipped")
    candidates = [e for e in (finished, skipped) if e is not None]
    return max(candidates, key=lambda e: e.seq) if candidates else None


def local_time(at: datetime | str | None, tz: ZoneInfo) -> str:
    """An instant as people read it: the store's local time to the second, with the zone
    (``2026-12-05 20:11:30 CET``); ISO text is parsed first (naive counts as UTC)."""
    if at is None:
        return "never"
    when = datetime.fromisoformat(at) if isinstance(at, str) else at
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %Z")


def _print_status(s: dict[str, Any], tz: ZoneInfo) -> None:
    """The summary as a table on stderr, times in the store's zone (the JSON keeps ISO UTC)."""
    table = Table(title=f"store {escape(s['store'])}", title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("state")
    seen = f" (last seen {local_time(s['daemon_seen_at'], tz)})" if s["daemon_seen_at"] else ""
    table.add_row("daemon", escape(f"{s['daemon']}{seen}"))
    table.add_row("kill switch", "[red bold]ON: no pushes[/]" if s["kill_switch"] else "off")
    last = s["last_cycle"]
    table.add_row(
        "last cycle",
        "none yet" if last is None else escape(
            f"{last.get('job')} at {local_time(last['at'], tz)}: {last.get('result')}"
            + (f" ({last['detail']})" if last.get("detail") else "")
            + f", {last.get('changes', 0)} changes, {last.get('confirmed', 0)} labels confirmed"
        ),
    )
    for run in s["next_runs"]:
        when = local_time(run["at"], tz) if run["at"] else "paused"
        table.add_row("next run", escape(f"{run['job']} at {when}"))
    broker = s["broker"]
    table.add_row(
        "broker",
        escape(broker["url"]) + (" reachable" if broker["reachable"] else f" [red]unreachable[/]: {escape(broker['error'] or '')}"),
    )
    online, offline = s["gateways_online"], s["gateways_offline"]
    table.add_row("gateways", f"{len(online)} online" + (f", [yellow]offline: {escape(', '.join(offline))}[/]" if offline else ""))
    table.add_row("outbox", f"{s['outbox_open']} open, {s['labels_confirmed']} confirmed")
    failed = s["labels_failed"]
    table.add_row("labels failed", f"[red]{failed}[/]" if failed else "0")
    if s["low_battery"]:
        table.add_row("low battery", str(s["low_battery"]))
    err.print(table)


def kill_switch(
    state: Annotated[str, typer.Argument(help="on: stop all pushes within one cycle; off: allow them again.")],
    config: ConfigOption = Path("config/engine.yaml"),
    by: Annotated[str | None, typer.Option(help="Who throws the switch (default: the user name).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Stop (on) or allow (off) every push of the store's daemon: while it is on no price leaves the engine
    (nothing reaches the price book, the outbox or a label); planning keeps running, its plans are written
    for review."""
    if state not in ("on", "off"):
        fail(f"kill-switch: say on or off, not '{state}'")
    settings = _load(config)
    who = by or getpass.getuser()
    on = state == "on"
    with user_errors():
        engine = open_engine(settings.database_target(config.parent))
        EngineFlags(engine, settings.store).set(KILL_SWITCH, on, by=who)
        EventLog(engine, settings.store).record("kill_switch", datetime.now(UTC), data={"on": on, "by": who})
    note = " (config/engine.yaml also sets kill_switch: true)" if settings.kill_switch and not on else ""
    err.print(f"kill switch {state} for store {settings.store}{note}", highlight=False)
    if as_json:
        emit_json({"store": settings.store, "kill_switch": on or settings.kill_switch, "by": who})


@events_app.command("export")
def events_export(
    out: Annotated[Path, typer.Argument(help="JSONL file to write (one event per line).")],
    config: ConfigOption = Path("config/engine.yaml"),
    after_seq: Annotated[int, typer.Option(min=0, help="Only events after this sequence number.")] = 0,
    correlation: Annotated[str | None, typer.Option(help="Only events of this plan.")] = None,
    as_json: JsonOption = False,
) -> None:
    """Write the store's event log as JSONL, for `esl-pricing replay`."""
    settings = _load(config)
    with user_errors():
        engine = open_engine(settings.database_target(config.parent))
        n = EventLog(engine, settings.store).export(out, after_seq=after_seq, correlation=correlation)
    err.print(f"wrote {n} events to {out}", highlight=False)
    if as_json:
        emit_json({"events": n, "file": str(out)})
