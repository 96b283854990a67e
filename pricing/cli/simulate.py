"""`esl-pricing simulate ...`: the store simulator's commands (sample data, gateways and labels).

Rich output goes to stderr; ``--json`` prints one JSON object as the last line of stdout.
Exit codes: 0 ok, 1 failure (e.g. the broker cannot be reached), 2 user error (a missing file,
a scenario with problems, a bad option).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from label_gateway.broker import BrokerAddress
from label_gateway.protocol import DEFAULT_PREFIX, Topics
from label_gateway.signing import TRUST_ENV, TrustedKeys
from pricing.cli import common
from pricing.cli.common import (
    Market,
    command_group,
    emit_json,
    err,
    fail,
    stop_on_signals,
)
from simulator.gateways import (
    SimulatedGateways,
    SimulatorError,
    SimulatorState,
    load_state,
)
from simulator.scenario import (
    DEFAULT_STORE,
    LabelSource,
    Scenario,
    ScenarioLabels,
    labels_from_csv,
    load_scenario,
)

simulate_app = command_group("The store simulator: sample data, gateways and labels.")

DEFAULT_BROKER = "mqtt://127.0.0.1:1883"


def register(app: typer.Typer) -> None:
    app.add_typer(simulate_app, name="simulate")
    app.command("replay")(replay_command)


def user_errors() -> AbstractContextManager[None]:
    return common.user_errors(SimulatorError)


TrustOption = Annotated[
    Path | None,
    typer.Option(
        envvar=TRUST_ENV,
        help=f"The engine's public keys (a directory of *.pub files, or one file; default ${TRUST_ENV}): "
        "labels then take only states the engine signed. Without it they take unsigned states.",
    ),
]


def _print_trust(trusted: TrustedKeys | None) -> None:
    if trusted is None:
        err.print(
            "[yellow]warning:[/] no --trust keys: these labels take UNSIGNED desired states, so anyone who "
            "can publish to the broker can set a price",
            highlight=False, soft_wrap=True,
        )
    else:
        err.print(f"labels take only states signed by engine key(s) {', '.join(sorted(trusted.keys))}",
                  highlight=False, soft_wrap=True)


# -- generate -----------------------------------------------------------------------------------
@simulate_app.command("generate")
def simulate_generate(
    out: Annotated[Path, typer.Option(help="Directory for products.csv, sales.csv, labels.csv, truth.")],
    skus: Annotated[int, typer.Option(min=1, max=199_999, help="Number of SKUs.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 7,
    days: Annotated[int, typer.Option(min=7, max=3660, help="Days of sales history.")] = 365,
    gateways: Annotated[int, typer.Option(min=1, max=64, help="Label gateways.")] = 2,
    market: Annotated[
        Market,
        typer.Option(help="loglog: daily sales.csv of today's market; choice: receipts.csv of mixed-logit shoppers among substitutes."),
    ] = Market.loglog,
    store: Annotated[
        str,
        typer.Option(
            "--store", metavar="ID",
            help=f"Store id of the sales and labels (the MQTT topic level; config/engine.yaml's `store` must match). Default {DEFAULT_STORE}, as in the shipped configs.",
        ),
    ] = DEFAULT_STORE,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")] = False,
) -> None:
    """Generate a deterministic sample store with known demand (the truth is saved alongside)."""
    from pricing.core.ids import id_problem

    problem = id_problem(store, "--store")
    if problem is not None:
        fail(problem)
    if market is Market.choice:
        from simulator.choice_store import generate_choice_store

        choice = generate_choice_store(out, skus=skus, seed=seed, days=days, gateways=gateways, store=store)
        err.print(
            f"wrote {choice.skus} SKUs in {choice.categories} categories, {choice.lines} receipt lines "
            f"({choice.duplicates} duplicated, {choice.voids} voids, {choice.refunds} refunds) for store {store} "
            f"to {out} in {choice.seconds:.2f}s"
        )
        if as_json:
            emit_json({"market": "choice", "skus": choice.skus, "receipt_lines": choice.lines,
                       "seconds": round(choice.seconds, 3), "out": str(out), "store": store})
        return
    from simulator.store import generate_store

    summary = generate_store(out, skus=skus, seed=seed, days=days, gateways=gateways, store=store)
    err.print(
        f"wrote {summary.skus} SKUs, {summary.sales_rows} sales rows, {summary.labels} labels of store {store} "
        f"to {out} in {summary.seconds:.2f}s"
    )
    if as_json:
        emit_json({"skus": summary.skus, "sales_rows": summary.sales_rows, "labels": summary.labels,
                   "seconds": round(summary.seconds, 3), "out": str(out), "store": store})


# -- generate-chain -----------------------------------------------------------------------------
@simulate_app.command("generate-chain")
def simulate_generate_chain(
    out: Annotated[Path, typer.Option(help="Directory for stores.csv, products.csv, sales/ (Parquet by store), labels.csv, truth.")],
    stores: Annotated[int, typer.Option(min=1, max=99_999, help="Number of stores.")],
    skus: Annotated[int, typer.Option(min=1, max=199_999, help="Number of SKUs (one catalogue for the chain).")],
    zones: Annotated[int | None, typer.Option(min=1, help="Price zones (default: about the square root of --stores).")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Random seed; the same seed gives the same files.")] = 0,
    days: Annotated[int, typer.Option(min=7, max=3660, help="Days of sales history.")] = 365,
    gateways: Annotated[int, typer.Option(min=1, max=64, help="Label gateways per store.")] = 2,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")] = False,
) -> None:
    """Generate a deterministic sample chain: stores in price zones, each with its own demand
    around the chain's (the truth is saved alongside)."""
    from simulator.chain import generate_chain

    if zones is not None and zones > stores:
        fail(f"--zones {zones} is more than --stores {stores}: every zone needs a store")
    try:
        summary = generate_chain(out, stores=stores, skus=skus, zones=zones, seed=seed, days=days, gateways=gateways)
    except ValueError as exc:
        fail(str(exc))
    except OSError as exc:  # e.g. --out is a file, or not writable
        fail(f"{out}: cannot write: {exc.strerror or exc}")
    err.print(
        f"wrote a chain of {summary.stores} stores in {summary.zones} zones, {summary.skus} SKUs, "
        f"{summary.sales_rows:,} sales rows (Parquet by store), {summary.labels:,} labels to {escape(str(out))} "
        f"in {summary.seconds:.2f}s ({summary.bytes / 1e6:.1f} MB)",
        highlight=False, soft_wrap=True,
    )
    if as_json:
        emit_json(summary.as_json(out))


# -- run ----------------------------------------------------------------------------------------
def _setup(scenario_file: Path | None, data: Path | None, fast: bool) -> tuple[Scenario, ScenarioLabels]:
    """The scenario (or defaults) and its labels; --data overrides the scenario's labels."""
    if scenario_file is None and data is None:
        fail("nothing to simulate: give --scenario FILE (e.g. config/scenario.yaml) or --data DIR (labels.csv)")
    if scenario_file is not None and not scenario_file.is_file():
        fail(f"{scenario_file}: scenario file not found")
    if data is not None and not data.is_dir():
        fail(f"{data}: not a directory (expected a store directory with labels.csv)")
    if scenario_file is not None:
        scenario = load_scenario(scenario_file)
    else:
        assert data is not None
        scenario = Scenario(labels=LabelSource(from_csv=data / "labels.csv"))
    if fast:
        scenario = scenario.model_copy(update={"fast": True})
    labels = labels_from_csv(data / "labels.csv", scenario.store) if data is not None else scenario.load_labels()
    if not labels.rows:
        fail("no labels to simulate")
    return scenario, labels


def _report_rejects(rejects: tuple[str, ...]) -> None:
    if not rejects:
        return
    err.print(f"[yellow]{len(rejects)} label row(s) rejected[/]; first:", highlight=False)
    for reject in rejects[:5]:
        err.print(f"  {reject}", highlight=False, markup=False)


def _wait(stop: threading.Event, duration: float | None) -> None:
    deadline = None if duration is None else time.monotonic() + duration
    while not stop.is_set():
        remaining = 0.5 if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            return
        stop.wait(min(remaining, 0.5))


def _print_ready(gateways: int, labels: int) -> None:
    sys.stdout.write(json.dumps({"ready": True, "gateways": gateways, "labels": labels}) + "\n")
    sys.stdout.flush()


def _print_summary(summary: dict[str, int], seconds: float) -> None:
    table = Table(title=f"simulator ran {seconds:.1f}s", show_header=False, title_justify="left")
    for key, value in summary.items():
        table.add_row(key.replace("_", " "), str(value))
    err.print(table)


@simulate_app.command("run")
def simulate_run(
    scenario: Annotated[Path | None, typer.Option(help="Scenario YAML (labels, timing, losses, outages).")] = None,
    data: Annotated[
        Path | None, typer.Option(help="Store data directory; its labels.csv overrides the scenario's labels.")
    ] = None,
    broker: Annotated[str, typer.Option(help="MQTT broker, mqtt://HOST:PORT or mqtts://HOST:PORT (TLS).")] = DEFAULT_BROKER,
    prefix: Annotated[str, typer.Option(help="Topic prefix.")] = DEFAULT_PREFIX,
    state: Annotated[
        Path | None, typer.Option(help="State file: what the labels show is kept here across restarts.")
    ] = None,
    duration: Annotated[
        float | None, typer.Option(min=0, help="Stop after this many seconds (default: until SIGTERM/Ctrl-C).")
    ] = None,
    fast: Annotated[bool, typer.Option("--fast", help="No check-in wait and no radio time (milliseconds).")] = False,
    trust: TrustOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary as the last stdout line.")] = False,
) -> None:
    """Run a store's gateways and labels as MQTT clients until SIGTERM, Ctrl-C or --duration.

    Prints {"ready": true, "gateways": N, "labels": M} on stdout once every gateway is connected
    and subscribed; on stopping, writes the state file and prints a summary.
    """
    stop = threading.Event()
    with user_errors(), stop_on_signals(stop):
        setup, labels = _setup(scenario, data, fast)
        _report_rejects(labels.rejects)
        address = BrokerAddress.parse(broker)
        try:
            topics = Topics(labels.store, prefix=prefix)
        except ValueError as exc:
            fail(str(exc))
        trusted = TrustedKeys.load(trust) if trust is not None else None
        sim = SimulatedGateways(
            address,
            topics,
            labels.rows,
            options=dataclasses.replace(setup.gateway_options(), trusted_keys=trusted),
            state_file=state,
            outages=setup.outages,
            on_event=lambda message: err.print(f"  {message}", highlight=False, markup=False),
        )
        started = time.monotonic()
        sim.start()
        try:
            _print_ready(len(sim.gateways), sim.label_count)
            mode = "fast" if sim.options.fast else "timed"
            restored = f", {sim.restored} labels restored from {state}" if sim.restored else ""
            err.print(
                f"{len(sim.gateways)} gateways, {sim.label_count} labels ({mode}) of {topics.store} on "
                f"{address.url} under {prefix}/{restored}; Ctrl-C stops",
                highlight=False,
            )
            _print_trust(trusted)
            _wait(stop, duration)
        finally:
            sim.stop()
    summary = sim.summary()
    _print_summary(summary, time.monotonic() - started)
    if as_json:
        emit_json(dict(summary))


# -- status -------------------------------------------------------------------------------------
def _gateway_rows(state: SimulatorState) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {
        gateway: {"state": record.state, "labels": 0, "showing": 0, "low_battery": 0, "dead": 0, "refreshes": 0}
        for gateway, record in state.gateways.items()
    }
    for label in state.labels.values():
        row = rows.setdefault(
            label.gateway,
            {"state": "offline", "labels": 0, "showing": 0, "low_battery": 0, "dead": 0, "refreshes": 0},
        )
        row["labels"] += 1
        row["showing"] += label.version > 0
        row["dead"] += label.dead
        row["low_battery"] += (not label.dead) and label.battery_mv <= state.battery_low_mv
        row["refreshes"] += label.refreshes
    return dict(sorted(rows.items()))


def _show_gateways(state: SimulatorState, rows: dict[str, dict[str, Any]]) -> None:
    when = "running" if state.running else "stopped"
    table = Table(title=f"{state.store}: simulator {when}, written {state.written_at:%Y-%m-%d %H:%M:%S}")
    for column in ("gateway", "state", "labels", "showing a price", "low battery", "failed/dead", "refreshes"):
        table.add_column(column, justify="left" if column in ("gateway", "state") else "right")
    for gateway, row in rows.items():
        colour = "green" if row["state"] == "online" else "red"
        table.add_row(
            gateway, f"[{colour}]{row['state']}[/]", str(row["labels"]), str(row["showing"]),
            str(row["low_battery"]), str(row["dead"]), str(row["refreshes"]),
        )
    err.print(table)


def _show_label(label_id: str, detail: dict[str, Any]) -> None:
    table = Table(title=f"label {label_id}", show_header=False, title_justify="left")
    for key, value in detail.items():
        table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    err.print(table)


@simulate_app.command("status")
def simulate_status(
    state: Annotated[Path, typer.Option(help="The simulator's state file (simulate run --state).")],
    gateway: Annotated[str | None, typer.Option(help="Only this gateway.")] = None,
    label: Annotated[str | None, typer.Option(help="One label's detail.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last stdout line.")] = False,
) -> None:
    """What the simulated labels show, per gateway or for one label, from a state file."""
    with user_errors():
        current = load_state(state)
    if label is not None:
        record = current.labels.get(label)
        if record is None:
            fail(f"{state}: no label {label}")
        detail = {"label": label, **record.model_dump(mode="json")}
        _show_label(label, detail)
        if as_json:
            emit_json(detail)
        return
    rows = _gateway_rows(current)
    if gateway is not None:
        if gateway not in rows:
            fail(f"{state}: no gateway {gateway} (gateways: {', '.join(rows) or 'none'})")
        rows = {gateway: rows[gateway]}
    _show_gateways(current, rows)
    if as_json:
        totals = {key: sum(row[key] for row in rows.values()) for key in ("labels", "showing", "low_battery", "dead")}
        emit_json({
            "store": current.store,
            "running": current.running,
            "written_at": current.written_at.isoformat(),
            "gateways": rows,
            "totals": {**totals, "refreshes": sum(row["refreshes"] for row in rows.values())},
        })


# -- contact sheet ------------------------------------------------------------------------------
@simulate_app.command("contact-sheet")
def simulate_contact_sheet(
    state: Annotated[Path, typer.Option(help="The simulator's state file (simulate run --state).")],
    data: Annotated[Path, typer.Option(help="Store data directory (products.csv, labels.csv).")] = Path("data"),
    gateway: Annotated[str | None, typer.Option(help="Only this gateway (default: all).")] = None,
    out: Annotated[
        Path,
        typer.Option(help="A .png file (every gateway on one sheet) or a directory (contact-sheet-<gateway>.png each)."),
    ] = Path("contact-sheets"),
    currency: Annotated[str, typer.Option(help="The store's currency code.")] = "EUR",
    templates: Annotated[
        Path | None, typer.Option(help="Label templates YAML (default: the packaged label_templates.yaml).")
    ] = None,
    width: Annotated[int, typer.Option(min=400, max=20_000, help="Sheet width in pixels.")] = 1600,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last stdout line.")] = False,
) -> None:
    """Draw what every label shows, one grid per gateway, to PNG (labels that show nothing: blank)."""
    import re

    from label_gateway.label_templates import load_label_templates
    from pricing.core.data import LABELS_FILE, PRODUCTS_FILE, load_labels, load_products
    from simulator.contact_sheet import tiles_from_state, write_contact_sheets

    if not re.fullmatch(r"[A-Z]{3}", currency):
        fail(f"--currency must be a 3-letter code like EUR, not '{currency}'")
    if not data.is_dir():
        fail(f"{data}: not a directory (expected a store directory with {PRODUCTS_FILE} and {LABELS_FILE})")
    with user_errors():
        current = load_state(state)
        layouts = load_label_templates(templates)
        products = load_products(data / PRODUCTS_FILE).frame
        labels = load_labels(data / LABELS_FILE).frame
    tiles = tiles_from_state(current, products, labels, currency=currency)
    if gateway is not None:
        if gateway not in tiles:
            fail(f"{data / LABELS_FILE}: no labels on gateway {gateway} (gateways: {', '.join(tiles) or 'none'})")
        tiles = {gateway: tiles[gateway]}
    if not tiles:
        fail(f"{data / LABELS_FILE}: no labels to draw")
    from pricing.cli.progress import show_progress

    try:
        with show_progress(quiet=as_json) as progress:  # 2-3 ms a label: 20,000 labels take a minute
            sheets = write_contact_sheets(out, tiles, layouts, width=width,
                                          progress=lambda done, total: progress("drawing labels", done, total))
    except OSError as exc:
        fail(f"{out}: cannot write: {exc.strerror or exc}")
    for sheet in sheets:
        err.print(
            f"wrote {sheet.path}: {sheet.labels} labels ({sheet.blank} blank, {sheet.problems} not drawable) "
            f"of {', '.join(sheet.gateways)}",
            highlight=False, markup=False, soft_wrap=True,
        )
    if as_json:
        emit_json({"files": [
            {"path": str(s.path), "gateways": s.gateways, "labels": s.labels, "blank": s.blank,
             "problems": s.problems, "tag_types": s.tag_types}
            for s in sheets
        ]})


# -- replay -------------------------------------------------------------------------------------
# Registered as the top-level `esl-pricing replay` by register().
def _replay_speed(text: str) -> float | None:
    """--speed: a positive number (times real time) or "max"."""
    if text.strip().lower() == "max":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value > 0 and value != float("inf")):
        fail(f"--speed must be a positive number (times real time) or max, not '{text}'")
    return value


def _replay_max_gap(text: str) -> float | None:
    """--max-gap: seconds of log time (>= 0), or "none" (every gap in full)."""
    if text.strip().lower() == "none":
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not (value >= 0 and value != float("inf")):
        fail(f"--max-gap must be a number of seconds >= 0 or none, not '{text}'")
    return value


def _print_replay(report: Any, events: Path) -> None:
    speed = "max" if report.speed is None else f"{report.speed:g}x"
    if report.speed is not None:
        speed += ", gaps in full" if report.max_gap_s is None else f", gaps over {report.max_gap_s:g}s cut to it"
    err.print(
        f"replayed {report.events} events of {report.store or 'no store'} from {events} "
        f"({report.pushes} pushes to {report.labels} labels on {report.gateways} gateways, "
        f"{report.acks} acks) at speed {speed} in {report.seconds:.1f}s",
        highlight=False, markup=False, soft_wrap=True,
    )
    if not report.divergences:
        err.print("[green]no divergences[/]")
        return
    table = Table(title=f"{len(report.divergences)} divergence(s)", title_justify="left")
    for column in ("seq", "kind", "label", "detail"):
        table.add_column(column, justify="right" if column == "seq" else "left", overflow="fold")
    for d in report.divergences:
        table.add_row(str(d.seq), d.kind, d.label or "-", escape(d.detail))
    err.print(table)


def replay_command(
    events: Annotated[Path, typer.Argument(help="Event log to replay (JSONL, one event per line).")],
    speed: Annotated[
        str, typer.Option(help='Gaps between events are slept divided by this (e.g. 100), or "max" (no sleeping).')
    ] = "max",
    max_gap: Annotated[
        str,
        typer.Option(
            "--max-gap",
            help='With --speed: a quiet gap longer than this many seconds of log time is slept as if it were '
            'this long (the log\'s clock still jumps it whole); "none": every gap in full.',
        ),
    ] = "60",
    seed: Annotated[int, typer.Option(help="Seed of the simulator's random choices.")] = 0,
    broker: Annotated[
        str | None, typer.Option(help="MQTT broker, mqtt://HOST:PORT or mqtts:// (default: start an embedded one).")
    ] = None,
    prefix: Annotated[str, typer.Option(help="Topic prefix; the run's topics go under PREFIX/<unique id>/.")] = "replay",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last stdout line.")] = False,
    ack_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds to wait for the simulator's acks at the end.")
    ] = 10.0,
) -> None:
    """Replay a recorded event log against the simulator and report divergences.

    Exit 0: no divergence. 1: divergences (a table on stderr), or the broker cannot be reached.
    2: a bad log or bad arguments. See docs/replay.md.
    """
    from contextlib import ExitStack

    from label_gateway.embedded_broker import EmbeddedBroker
    from pricing.cli.progress import show_progress
    from pricing.core.events import EventLogError, read_jsonl
    from simulator.replay import ReplayError, replay

    pace = _replay_speed(speed)
    longest_gap = _replay_max_gap(max_gap)
    # A broker that cannot be reached is a failure (exit 1), as for every command (common.user_errors).
    with common.user_errors(SimulatorError, EventLogError, ReplayError), ExitStack() as stack:
        log = read_jsonl(events)
        if broker is not None:
            address = BrokerAddress.parse(broker)
        else:
            try:
                embedded = stack.enter_context(EmbeddedBroker())
            except RuntimeError as exc:
                fail(f"cannot start the embedded MQTT broker: {exc}", common.EXIT_FAILURE)
            address = BrokerAddress(embedded.host, embedded.port)
        with show_progress(quiet=json_out) as progress:
            report = replay(log, address, prefix=prefix, speed=pace, seed=seed, ack_timeout_s=ack_timeout,
                            max_gap_s=longest_gap, progress=progress)
    _print_replay(report, events)
    if json_out:
        emit_json(report.summary())
    if report.divergences:
        raise typer.Exit(common.EXIT_FAILURE)
