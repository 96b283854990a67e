"""esl-pricing apply / outbox: push a plan to the labels through the durable outbox, see what is
still on its way, resume after a crash and reconcile labels with what they should show."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.markup import escape
from rich.table import Table

from label_gateway.broker import BrokerAddress
from label_gateway.delivery import (
    DeliveryReport,
    DeliverySettings,
    LabelDelivery,
)
from label_gateway.outbox import Outbox, open_engine, stores_in
from label_gateway.protocol import DEFAULT_PREFIX, Topics
from label_gateway.readback import ReadBack, clear_retained_topics, read_back
from label_gateway.signing import Signer
from label_gateway.writer_lock import DEFAULT_WAIT_S, OutboxLock
from pricing.cli.common import (
    DEFAULT_KEYS,
    DELIVERY_DEFAULTS,
    EXIT_FAILURE,
    AckTimeoutOption,
    AttemptsOption,
    BrokerOption,
    DbOption,
    DeadlineOption,
    JsonOption,
    KeysOption,
    PrefixOption,
    StoreOption,
    WindowOption,
    command_group,
    database_target,
    emit_json,
    err,
    fail,
    print_still_waiting,
    read_plan_or_fail,
    report_rejects,
    signer_or_fail,
    user_errors,
)
from pricing.cli.progress import show_progress
from pricing.store.event_log import EventLog
from pricing.store.last_gate import (
    HeldPrice,
    costs_with_plan,
    held_lines,
    product_costs,
)
from pricing.store.price_book import PriceBook
from pricing.store.price_push import deliver_logged, record_prices, sync_labels

outbox_app = command_group("The durable outbox of label updates: status, resume after a crash, reconcile.")

#: One push per store outbox at a time (label_gateway/writer_lock.py): a second one waits this long.
LockWaitOption = Annotated[
    float,
    typer.Option(
        "--lock-wait", min=0,
        help="Seconds to wait while another push holds the store's outbox (then exit 1 saying who holds it).",
    ),
]


def delivery_settings(ack_timeout: float, max_attempts: int, window: int) -> DeliverySettings:
    try:
        return DeliverySettings(
            ack_timeout_s=ack_timeout, max_attempts=max_attempts, window_per_gateway=window,
            max_in_flight=max(window, DELIVERY_DEFAULTS.max_in_flight),
            backoff_base_s=min(1.0, ack_timeout), backoff_max_s=max(1.0, min(60.0, ack_timeout * 4)),
        )
    except ValidationError as exc:
        fail(f"delivery settings: {exc.errors()[0]['msg']}")


def parse_instant(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--effective-at '{text}': not an ISO 8601 date and time (e.g. 2026-11-23T07:00:00+01:00)")
    if when.tzinfo is None:
        fail(f"--effective-at '{text}': give a time zone (e.g. +01:00 or Z), labels switch at one instant")
    return when


def register(app: typer.Typer) -> None:
    app.command()(apply)
    app.add_typer(outbox_app, name="outbox")


def deliver(
    outbox: Outbox,
    broker: str,
    prefix: str,
    settings: DeliverySettings,
    *,
    signer: Signer,
    deadline: float | None,
    progress: Callable[[int, int], None] | None,
    stop: Parking | None = None,
) -> DeliveryReport:
    address = BrokerAddress.parse(broker)
    return LabelDelivery(address, Topics(outbox.store, prefix=prefix), outbox, settings, signer=signer).run(
        deadline_s=deadline, progress=progress, stop=stop, notice=say,
    )


def say(line: str) -> None:
    """A push's one-line notice (e.g. no gateway online), on stderr as it happens."""
    err.print(line, highlight=False, markup=False, soft_wrap=True)


class Parking:
    """The stop signal of a command's push: set by SIGTERM or SIGINT (``signal`` names it). The
    push then stops publishing and what is not acknowledged stays in the outbox (parked)."""

    def __init__(self) -> None:
        self._set = threading.Event()
        self.signal: str | None = None

    def is_set(self) -> bool:
        return self._set.is_set()

    def park(self, signum: int, frame: object = None) -> None:
        self.signal = signal.Signals(signum).name
        self._set.set()


@contextmanager
def parking_on_signals() -> Iterator[Parking]:
    """SIGTERM and SIGINT park the push instead of killing the process (as the daemon does);
    the previous handlers come back afterwards. Outside the main thread nothing is installed."""
    parking = Parking()
    if threading.current_thread() is not threading.main_thread():
        yield parking
        return
    previous = {signum: signal.signal(signum, parking.park) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield parking
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


#: Exit code of a push parked by SIGTERM / SIGINT: a failure (labels not all confirmed), resumable.
EXIT_PARKED = EXIT_FAILURE


def print_parked(parking: Parking, report: DeliveryReport) -> None:
    """The one line of a parked push."""
    err.print(
        f"{parking.signal}: push parked after {len(report.confirmed)} confirmed; {len(report.waiting)} labels stay "
        "in the outbox (esl-pricing outbox resume finishes the push)",
        highlight=False, markup=False, soft_wrap=True,
    )


def result_of(report: DeliveryReport, parking: Parking | None = None, *, held: int = 0) -> str:
    """The JSON ``result`` of a push command: parked (stopped by a signal), failed (labels failed
    or still waiting, broker lost, prices held) or ok; the exit code follows it."""
    if parking is not None and parking.is_set() and report.waiting:
        return "parked"
    return "failed" if exit_code(report) or held else "ok"


def print_report(report: DeliveryReport, *, what: str) -> None:
    s = report.summary()
    already = f", {s['already_shown']} already shown" if s["already_shown"] else ""
    err.print(
        f"{what}: {s['confirmed']} confirmed, {s['scheduled']} scheduled, {s['failed']} failed, "
        f"{s['waiting']} still waiting{already} in {s['seconds']}s "
        f"({s['sent']} sent, {s['retries']} retries)",
        highlight=False,
    )
    for outcome in report.failed[:10]:
        err.print(f"  failed label {outcome.label_id} ({outcome.gateway}): {outcome.detail}", highlight=False,
                  markup=False)
    if report.broker_lost:
        err.print("[red]lost the MQTT broker;[/] what is left stays in the outbox: esl-pricing outbox resume")
    elif report.waiting:
        offline = ", ".join(report.gateways_offline) or "none"
        err.print(
            f"[yellow]{len(report.waiting)} labels still waiting[/] (gateways offline: {escape(offline)}); "
            "they stay in the outbox: esl-pricing outbox resume"
        )
    noise = s["malformed_acks"] or s["malformed_status"]
    if noise:
        err.print(f"ignored {s['malformed_acks']} malformed acks and {s['malformed_status']} malformed status messages")
    tampering = {k: s[k] for k in ("signature_rejections", "forged_versions", "foreign_acks") if s[k]}
    if tampering:
        found = ", ".join(f"{k.replace('_', ' ')} {n}" for k, n in tampering.items())
        err.print(f"[bold red]signs of tampering:[/] {found} (docs/security.md)", highlight=False)


def exit_code(report: DeliveryReport) -> int:
    return EXIT_FAILURE if report.failed or report.waiting or report.broker_lost else 0


def print_held(held: list[HeldPrice]) -> None:
    """The last gate's held prices, one line per SKU (pricing.store.last_gate); they make the
    command exit 1."""
    if not held:
        return
    err.print(f"[red]{len(held)} price(s) held by the last gate[/] (not recorded, not pushed):", highlight=False)
    for line in held_lines(held, limit=50):
        err.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)


def held_json(held: list[HeldPrice]) -> list[dict[str, str]]:
    return [{"sku": h.sku, "reason": h.reason} for h in held]


def _open_outbox(db: str | None, store: str | None) -> Outbox:
    target = database_target(db)
    engine = open_engine(target)
    if store is None:
        stores = stores_in(engine)
        if len(stores) != 1:
            found = ", ".join(stores) or "none"
            fail(f"database '{target}' holds labels of stores: {found}; say which with --store")
        store = stores[0]
    return Outbox(engine, store)


def apply(
    plan_file: Annotated[Path, typer.Argument(help="A plan JSON written by esl-pricing plan.")],
    data: Annotated[Path, typer.Option(help="Store data directory (labels.csv maps SKUs to labels).")],
    db: DbOption = None,
    broker: BrokerOption = "mqtt://127.0.0.1:1883",
    prefix: PrefixOption = DEFAULT_PREFIX,
    ack_timeout: AckTimeoutOption = DELIVERY_DEFAULTS.ack_timeout_s,
    max_attempts: AttemptsOption = DELIVERY_DEFAULTS.max_attempts,
    window: WindowOption = DELIVERY_DEFAULTS.window_per_gateway,
    effective_at: Annotated[
        str | None,
        typer.Option(help="ISO 8601 instant with time zone at which the labels switch (push ahead; registers switch too)."),
    ] = None,
    deadline: DeadlineOption = None,
    lock_wait: LockWaitOption = DEFAULT_WAIT_S,
    keys: KeysOption = DEFAULT_KEYS,
    as_json: JsonOption = False,
) -> None:
    """Push a saved plan's changed prices (approved ones included) to the labels and wait for their acks.

    The new prices are first recorded in the engine database's outbox; a label's change is done
    when the label acknowledges it displays it. Changes still awaiting approval (esl-pricing
    approve) and rejected ones are not pushed. If the push is interrupted, `esl-pricing outbox
    resume` finishes it."""
    from pricing.core.data import PRODUCTS_FILE, label_rows, load_labels, load_products

    saved = read_plan_or_fail(plan_file)
    signer = signer_or_fail(keys)
    prices = saved.new_prices()
    waiting = len(saved.awaiting_approval)
    when = parse_instant(effective_at)
    settings = delivery_settings(ack_timeout, max_attempts, window)
    summary: dict[str, object] = {"plan": saved.plan_id, "prices": len(prices), "awaiting_approval": waiting}
    if not prices:
        err.print(f"nothing to push: plan {saved.plan_id} has no approved price changes", highlight=False, markup=False)
        print_still_waiting(plan_file, waiting)
        if as_json:
            emit_json(summary | {"labels_confirmed": 0, "labels_failed": 0, "seconds": 0.0})
        return
    with user_errors(), ExitStack() as locks, parking_on_signals() as parking:
        labels = load_labels(data / "labels.csv")
        report_rejects(labels.rejects)
        BrokerAddress.parse(broker)  # a bad URL is a user error before anything is recorded
        engine = open_engine(database_target(db))
        locks.enter_context(OutboxLock(engine, saved.store, wait_s=lock_wait))  # enqueue + deliver: one push at a time
        outbox = Outbox(engine, saved.store)
        log = EventLog(engine, saved.store)
        # The last gate checks each price against products.csv's cost (the plan's own cost only
        # raises it; without products.csv in --data, the plan's cost); the price book takes the
        # rest (reductions get their Omnibus reference), the outbox every label of a changed
        # SKU, the event log both; then the push.
        product_file = data / PRODUCTS_FILE
        file_costs = None
        if product_file.exists():
            products = load_products(product_file)
            report_rejects(products.rejects)
            file_costs = product_costs(products.frame)
        else:
            err.print(f"no {product_file}: prices are checked against the plan's costs", highlight=False,
                      markup=False)
        recorded = record_prices(
            PriceBook(engine, saved.store), outbox, log, prices, label_rows(labels.frame),
            currency=saved.currency, correlation=saved.plan_id, at=datetime.now(UTC), effective_at=when,
            costs=costs_with_plan(file_costs, saved.lines),
        )
        print_held(recorded.held)  # before the push: shown even when the broker is not there
        with show_progress(quiet=as_json) as progress:  # on stderr; none with --json
            delivered = deliver_logged(
                outbox, log, BrokerAddress.parse(broker), Topics(outbox.store, prefix=prefix), settings,
                signer=signer, now=lambda: datetime.now(UTC), deadline_s=deadline,
                progress=lambda done, total: progress("push + acks", done, total), stop=parking, notice=say,
            )
        report = delivered.report if delivered is not None else DeliveryReport()
        report.enqueued = recorded.enqueued
    result = result_of(report, parking, held=len(recorded.held))
    if result == "parked":
        print_parked(parking, report)
    else:
        print_report(report, what=f"{len(prices) - len(recorded.held)} prices on {len(recorded.updates)} labels")
        print_still_waiting(plan_file, waiting)
    if as_json:
        s = report.summary()
        emit_json(summary | s | {"labels_confirmed": s["confirmed"], "labels_failed": s["failed"],
                                 "held": held_json(recorded.held), "result": result})
    code = EXIT_PARKED if result == "parked" else (exit_code(report) or (EXIT_FAILURE if recorded.held else 0))
    if code:
        raise typer.Exit(code)


@outbox_app.command("status")
def outbox_status(
    db: DbOption = None,
    store: StoreOption = None,
    failed: Annotated[int, typer.Option(min=0, help="List up to this many failed labels with their reason.")] = 10,
    as_json: JsonOption = False,
) -> None:
    """What the outbox holds: labels per state and gateway, failures and low batteries."""
    with user_errors():
        outbox = _open_outbox(db, store)
        counts = outbox.counts()
        failures = outbox.rows(["failed"])
    table = Table(title=f"outbox of store {escape(outbox.store)}", title_justify="left")
    states = ["pending", "sent", "scheduled", "confirmed", "failed"]
    table.add_column("gateway")
    for state in states:
        table.add_column(state, justify="right")
    for gateway, by_state in sorted(counts.by_gateway.items()):
        table.add_row(escape(gateway), *(str(by_state.get(s, 0)) for s in states))
    table.add_row("[bold]all[/]", *(f"[bold]{counts.by_state.get(s, 0)}[/]" for s in states))
    err.print(table)
    if counts.low_battery:
        err.print(f"{counts.low_battery} labels report a low battery")
    for row in failures[:failed]:
        err.print(f"  failed label {row.label_id} ({row.gateway}): {row.last_error}", highlight=False, markup=False)
    if as_json:
        emit_json({
            "store": outbox.store, "by_state": counts.by_state, "open": counts.open,
            "low_battery": counts.low_battery, "by_gateway": counts.by_gateway,
            "failed": [{"label": r.label_id, "gateway": r.gateway, "reason": r.last_error} for r in failures[:failed]],
        })


def _deliver_command(
    what: str, db: str | None, store: str | None, broker: str, prefix: str, ack_timeout: float,
    max_attempts: int, window: int, deadline: float | None, as_json: bool, *, reopen: bool, gateway: str | None,
    keys: Path, lock_wait: float = DEFAULT_WAIT_S, readback: bool = False, clear_unknown: bool = False,
) -> None:
    settings = delivery_settings(ack_timeout, max_attempts, window)
    signer = signer_or_fail(keys)
    found: ReadBack | None = None
    cleared = 0
    with user_errors(), ExitStack() as locks, parking_on_signals() as parking:
        address = BrokerAddress.parse(broker)
        outbox = _open_outbox(db, store)
        locks.enter_context(OutboxLock(outbox.engine, outbox.store, wait_s=lock_wait))  # no other push meanwhile
        if readback:  # what the broker retains, against the outbox: forged, lost or unknown states
            found = read_back(address, Topics(outbox.store, prefix=prefix), outbox, gateway=gateway, signer=signer)
            outbox.reopen_labels(found.labels)
            if clear_unknown:
                cleared = clear_retained_topics(address, found.unknown)
        reopened = outbox.reopen(gateway=gateway) if reopen else 0
        with show_progress(quiet=as_json) as progress:  # on stderr; none with --json
            report = deliver(
                outbox, broker, prefix, settings, signer=signer, deadline=deadline,
                progress=lambda done, total: progress(what, done, total), stop=parking,
            )
    result = result_of(report, parking)
    if found is not None:
        print_readback(found, cleared=cleared, cleared_asked=clear_unknown)
    if result == "parked":
        print_parked(parking, report)
    else:
        print_report(report, what=what + (f" ({reopened} labels differed from what they should show)" if reopen else ""))
    if as_json:
        extra = {} if found is None else found.summary() | {"readback_cleared": cleared}
        emit_json({"store": outbox.store, "reopened": reopened, "result": result} | extra | report.summary())
    code = EXIT_PARKED if result == "parked" else exit_code(report)
    if code:
        raise typer.Exit(code)


def print_readback(found: ReadBack, *, cleared: int, cleared_asked: bool) -> None:
    """What the read-back of the retained desired states found, on stderr."""
    reasons = ", ".join(f"{reason} {n}" for reason, n in found.by_reason().items())
    differing = f"{len(found.differing)} differed from the outbox ({reasons}), sent again" if found.differing else "all as the outbox says"
    err.print(f"read back {found.checked} labels' retained desired states: {differing}", highlight=False, markup=False)
    for difference in found.differing[:10]:
        err.print(f"  label {difference.label_id} ({difference.gateway}): {difference.reason}: {difference.detail}",
                  highlight=False, markup=False)
    if found.unknown:
        what = f"cleared {cleared}" if cleared_asked else "left alone (--clear-unknown deletes them)"
        err.print(f"{len(found.unknown)} retained desired states for labels the outbox does not know: {what}",
                  highlight=False, markup=False)
        for topic in found.unknown[:10]:
            err.print(f"  {topic}", highlight=False, markup=False)


@outbox_app.command("resume")
def outbox_resume(
    db: DbOption = None,
    store: StoreOption = None,
    broker: BrokerOption = "mqtt://127.0.0.1:1883",
    prefix: PrefixOption = DEFAULT_PREFIX,
    ack_timeout: AckTimeoutOption = DELIVERY_DEFAULTS.ack_timeout_s,
    max_attempts: AttemptsOption = DELIVERY_DEFAULTS.max_attempts,
    window: WindowOption = DELIVERY_DEFAULTS.window_per_gateway,
    deadline: DeadlineOption = None,
    lock_wait: LockWaitOption = DEFAULT_WAIT_S,
    keys: KeysOption = DEFAULT_KEYS,
    as_json: JsonOption = False,
) -> None:
    """Deliver what the outbox still holds (after a crash or a lost broker): pending and unacknowledged updates."""
    _deliver_command("resume", db, store, broker, prefix, ack_timeout, max_attempts, window, deadline, as_json,
                     reopen=False, gateway=None, keys=keys, lock_wait=lock_wait)


@outbox_app.command("reconcile")
def outbox_reconcile(
    db: DbOption = None,
    store: StoreOption = None,
    gateway: Annotated[str | None, typer.Option(help="Only this gateway's labels.")] = None,
    broker: BrokerOption = "mqtt://127.0.0.1:1883",
    prefix: PrefixOption = DEFAULT_PREFIX,
    ack_timeout: AckTimeoutOption = DELIVERY_DEFAULTS.ack_timeout_s,
    max_attempts: AttemptsOption = DELIVERY_DEFAULTS.max_attempts,
    window: WindowOption = DELIVERY_DEFAULTS.window_per_gateway,
    deadline: DeadlineOption = None,
    readback: Annotated[
        bool,
        typer.Option(
            "--readback/--no-readback",
            help="Also read back every label's retained desired state from the broker and send again those that "
            "differ from the outbox (missing, unparsable, another price or version: e.g. forged).",
        ),
    ] = True,
    clear_unknown: Annotated[
        bool,
        typer.Option(
            "--clear-unknown",
            help="Delete retained desired states under the store's topics for labels the outbox does not know.",
        ),
    ] = False,
    lock_wait: LockWaitOption = DEFAULT_WAIT_S,
    keys: KeysOption = DEFAULT_KEYS,
    as_json: JsonOption = False,
) -> None:
    """Send again every label whose confirmed version differs from its desired one, failed ones included, and
    every label whose desired state retained on the broker is not the outbox's (read back: forged, lost, or
    signed with a key other than the current one, as after `esl-pricing keys rotate`)."""
    _deliver_command("reconcile", db, store, broker, prefix, ack_timeout, max_attempts, window, deadline, as_json,
                     reopen=True, gateway=gateway, keys=keys, lock_wait=lock_wait, readback=readback,
                     clear_unknown=clear_unknown)


@outbox_app.command("sync")
def outbox_sync(
    data: Annotated[Path, typer.Option(help="Store data directory (labels.csv, products.csv).")],
    db: DbOption = None,
    currency: Annotated[str, typer.Option(help="The store's currency (as in the rules file).")] = "EUR",
    broker: BrokerOption = "mqtt://127.0.0.1:1883",
    prefix: PrefixOption = DEFAULT_PREFIX,
    ack_timeout: AckTimeoutOption = DELIVERY_DEFAULTS.ack_timeout_s,
    max_attempts: AttemptsOption = DELIVERY_DEFAULTS.max_attempts,
    window: WindowOption = DELIVERY_DEFAULTS.window_per_gateway,
    deadline: DeadlineOption = None,
    lock_wait: LockWaitOption = DEFAULT_WAIT_S,
    keys: KeysOption = DEFAULT_KEYS,
    as_json: JsonOption = False,
) -> None:
    """Give every label the price book's current price: new labels, and labels never given one.

    SKUs the price book has never seen take products.csv's price first. Labels the outbox knows
    to show their price already get nothing, so running it again sends nothing new."""
    from pricing.core.data import shelf_prices
    from pricing.core.store_data import load_shelf

    settings = delivery_settings(ack_timeout, max_attempts, window)
    signer = signer_or_fail(keys)
    now = datetime.now(UTC)
    with user_errors(), ExitStack() as locks, parking_on_signals() as parking:
        BrokerAddress.parse(broker)
        store = load_shelf(data)
        report_rejects(store.rejects)
        engine = open_engine(database_target(db))
        locks.enter_context(OutboxLock(engine, store.store_id, wait_s=lock_wait))  # enqueue + deliver: one push at a time
        outbox, log = Outbox(engine, store.store_id), EventLog(engine, store.store_id)
        synced = sync_labels(
            PriceBook(engine, store.store_id), outbox, log, store.label_rows(), file_prices=shelf_prices(store.products),
            costs=product_costs(store.products), currency=currency.upper(), at=now,
            correlation=f"sync-{now:%Y%m%dT%H%M%SZ}",
        )
        print_held(synced.held)  # before the push: shown even when the broker is not there
        with show_progress(quiet=as_json) as progress:  # on stderr; none with --json
            delivered = deliver_logged(
                outbox, log, BrokerAddress.parse(broker), Topics(outbox.store, prefix=prefix), settings,
                signer=signer, now=lambda: datetime.now(UTC), deadline_s=deadline,
                progress=lambda done, total: progress("sync", done, total), stop=parking, notice=say,
            )
    report = delivered.report if delivered is not None else DeliveryReport()
    report.enqueued = synced.enqueued
    result = result_of(report, parking, held=len(synced.held))
    if result == "parked":
        print_parked(parking, report)
    else:
        print_report(report, what=f"sync of {len(synced.updates)} labels ({len(synced.pushed)} to send)")
    if as_json:
        emit_json({"store": outbox.store, "labels": len(synced.updates), "to_send": len(synced.pushed),
                   "held": held_json(synced.held), "result": result} | report.summary())
    code = EXIT_PARKED if result == "parked" else (exit_code(report) or (EXIT_FAILURE if synced.held else 0))
    if code:
        raise typer.Exit(code)
