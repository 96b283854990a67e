"""esl-pricing apply / outbox: push a plan to the labels through the durable outbox, see what is
still on its way, resume after a crash and reconcile labels with what they should show."""

from __future__ import annotations

from collections.abc import Callable
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
from pricing.cli.common import (
    DELIVERY_DEFAULTS,
    EXIT_FAILURE,
    AckTimeoutOption,
    AttemptsOption,
    BrokerOption,
    DbOption,
    DeadlineOption,
    JsonOption,
    PrefixOption,
    StoreOption,
    WindowOption,
    database_target,
    emit_json,
    err,
    fail,
    print_still_waiting,
    read_plan_or_fail,
    report_rejects,
    stage_progress,
    user_errors,
)
from pricing.store.event_log import EventLog
from pricing.store.price_book import PriceBook
from pricing.store.price_push import deliver_logged, record_prices, sync_labels

outbox_app = typer.Typer(
    help="The durable outbox of label updates: status, resume after a crash, reconcile.", no_args_is_help=True
)


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
    deadline: float | None,
    progress: Callable[[int, int], None] | None,
) -> DeliveryReport:
    address = BrokerAddress.parse(broker)
    return LabelDelivery(address, Topics(outbox.store, prefix=prefix), outbox, settings).run(
        deadline_s=deadline, progress=progress
    )


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


def exit_code(report: DeliveryReport) -> int:
    return EXIT_FAILURE if report.failed or report.waiting or report.broker_lost else 0


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
    as_json: JsonOption = False,
) -> None:
    """Push a saved plan's changed prices (approved ones included) to the labels and wait for their acks.

    The new prices are first recorded in the engine database's outbox; a label's change is done
    when the label acknowledges it displays it. Changes still awaiting approval (esl-pricing
    approve) and rejected ones are not pushed. If the push is interrupted, `esl-pricing outbox
    resume` finishes it."""
    from pricing.core.data import label_rows, load_labels

    saved = read_plan_or_fail(plan_file)
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
    with user_errors():
        labels = load_labels(data / "labels.csv")
        report_rejects(labels.rejects)
        BrokerAddress.parse(broker)  # a bad URL is a user error before anything is recorded
        engine = open_engine(database_target(db))
        outbox = Outbox(engine, saved.store)
        log = EventLog(engine, saved.store)
        # The price book takes the prices (reductions get their Omnibus reference), the outbox
        # every label of a changed SKU, the event log both; then the push.
        recorded = record_prices(
            PriceBook(engine, saved.store), outbox, log, prices, label_rows(labels.frame),
            currency=saved.currency, correlation=saved.plan_id, at=datetime.now(UTC), effective_at=when,
        )
        with stage_progress() as progress:
            delivered = deliver_logged(
                outbox, log, BrokerAddress.parse(broker), Topics(outbox.store, prefix=prefix), settings,
                now=lambda: datetime.now(UTC), deadline_s=deadline,
                progress=lambda done, total: progress("push + acks", done, total),
            )
        report = delivered.report if delivered is not None else DeliveryReport()
        report.enqueued = recorded.enqueued
    print_report(report, what=f"{len(prices)} prices on {len(recorded.updates)} labels")
    print_still_waiting(plan_file, waiting)
    if as_json:
        s = report.summary()
        emit_json(summary | s | {"labels_confirmed": s["confirmed"], "labels_failed": s["failed"]})
    code = exit_code(report)
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
) -> None:

    settings = delivery_settings(ack_timeout, max_attempts, window)
    with user_errors():
        BrokerAddress.parse(broker)
        outbox = _open_outbox(db, store)
        reopened = outbox.reopen(gateway=gateway) if reopen else 0
        with stage_progress() as progress:
            report = deliver(
                outbox, broker, prefix, settings, deadline=deadline,
                progress=lambda done, total: progress(what, done, total),
            )
    print_report(report, what=what + (f" ({reopened} labels differed from what they should show)" if reopen else ""))
    if as_json:
        emit_json({"store": outbox.store, "reopened": reopened} | report.summary())
    code = exit_code(report)
    if code:
        raise typer.Exit(code)


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
    as_json: JsonOption = False,
) -> None:
    """Deliver what the outbox still holds (after a crash or a lost broker): pending and unacknowledged updates."""
    _deliver_command("resume", db, store, broker, prefix, ack_timeout, max_attempts, window, deadline, as_json,
                     reopen=False, gateway=None)


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
    as_json: JsonOption = False,
) -> None:
    """Send again every label whose confirmed version differs from its desired one, failed ones included."""
    _deliver_command("reconcile", db, store, broker, prefix, ack_timeout, max_attempts, window, deadline, as_json,
                     reopen=True, gateway=gateway)


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
    as_json: JsonOption = False,
) -> None:
    """Give every label the price book's current price: new labels, and labels never given one.

    SKUs the price book has never seen take products.csv's price first. Labels the outbox knows
    to show their price already get nothing, so running it again sends nothing new."""
    from pricing.core.data import load_shelf, shelf_prices

    settings = delivery_settings(ack_timeout, max_attempts, window)
    now = datetime.now(UTC)
    with user_errors():
        BrokerAddress.parse(broker)
        store = load_shelf(data)
        report_rejects(store.rejects)
        engine = open_engine(database_target(db))
        outbox, log = Outbox(engine, store.store_id), EventLog(engine, store.store_id)
        synced = sync_labels(
            PriceBook(engine, store.store_id), outbox, log, store.label_rows(), file_prices=shelf_prices(store.products),
            currency=currency.upper(), at=now, correlation=f"sync-{now:%Y%m%dT%H%M%SZ}",
        )
        with stage_progress() as progress:
            delivered = deliver_logged(
                outbox, log, BrokerAddress.parse(broker), Topics(outbox.store, prefix=prefix), settings,
                now=lambda: datetime.now(UTC), deadline_s=deadline,
                progress=lambda done, total: progress("sync", done, total),
            )
    report = delivered.report if delivered is not None else DeliveryReport()
    report.enqueued = synced.enqueued
    print_report(report, what=f"sync of {len(synced.updates)} labels ({len(synced.pushed)} to send)")
    if as_json:
        emit_json({"store": outbox.store, "labels": len(synced.updates), "to_send": len(synced.pushed)}
                  | report.summary())
    code = exit_code(report)
    if code:
        raise typer.Exit(code)
