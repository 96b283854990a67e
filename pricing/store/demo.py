"""The whole loop on one machine: sample store -> demand model -> plan -> MQTT -> labels -> acks.

With no broker given, an embedded MQTT broker (amqtt) runs in-process; the simulator's
gateways are separate MQTT clients that apply each price and acknowledge it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from label_gateway.broker import BrokerAddress
from label_gateway.delivery import DeliveryReport, DeliverySettings
from label_gateway.embedded_broker import EmbeddedBroker
from label_gateway.outbox import Outbox
from label_gateway.protocol import DEFAULT_PREFIX, Topics
from label_gateway.signing import KeyDirectory
from label_gateway.writer_lock import OutboxLock
from pricing.core.data import competitor_reference, shelf_prices
from pricing.core.database import open_engine
from pricing.core.store_data import StoreData, load_store
from pricing.core.timing import StageTimer
from pricing.demand.model_store import save_model
from pricing.demand.training import train_demand_model
from pricing.plan.cycle import plan_inputs, run_pricing_cycle
from pricing.plan.price_plan import PricePlan
from pricing.rules.config import example_rules_path, load_rules
from pricing.store.event_log import EventLog
from pricing.store.last_gate import HeldPrice, hard_limits, product_costs, relaxed_rules
from pricing.store.price_book import PriceBook
from pricing.store.price_push import (
    deliver_logged,
    price_change_events,
    record_prices,
    sync_labels,
)
from simulator.gateways import Displayed, GatewayOptions, SimulatedGateways
from simulator.store import generate_store


@dataclass(frozen=True)
class DemoOptions:
    workdir: Path
    skus: int = 2000
    seed: int = 7
    gateways: int = 2
    broker_url: str | None = None
    rules_path: Path | None = None  # None: the packaged example rules (pricing.rules.config.example_rules_path)
    prefix: str = DEFAULT_PREFIX
    ack_timeout_s: float = 30.0
    history_days: int = 60  # days of the sales history's shelf prices the price book starts with


@dataclass
class DemoResult:
    store: StoreData
    plan: PricePlan
    delivery: DeliveryReport
    displayed: dict[str, Displayed]
    mismatched_labels: list[str]
    broker: str
    timer: StageTimer
    plan_files: tuple[Path, Path]
    model_path: Path
    metrics: dict[str, float]
    synced: DeliveryReport  # the shelf sync before the plan: every label gets today's price
    address: BrokerAddress
    database: Path
    held: list[HeldPrice] = field(default_factory=list)  # the last gate's, at the shelf sync and the push

    def summary(self) -> dict[str, object]:
        return {
            "skus": len(self.plan.lines),
            "changed": len(self.plan.changes),
            "awaiting_approval": len(self.plan.awaiting_approval),
            "held": len(self.plan.held),
            "held_at_push": len(self.held),
            "rejected_rows": len(self.store.rejects),
            "labels_confirmed": len(self.delivery.confirmed),
            "labels_failed": len(self.delivery.failed),
            "labels_mismatched": len(self.mismatched_labels),
            "labels_synced": len(self.synced.confirmed),
            "expected_profit_delta_pct": round(self.plan.expected_profit_delta_pct(), 3),
            "model_holdout_wape": self.metrics.get("wape"),
            "solver_status": self.plan.solver.status,
            "broker": self.broker,
            "stage_seconds": {name: round(s, 3) for name, s in self.timer.seconds.items()},
            "seconds": round(self.timer.total, 3),
            "plan": str(self.plan_files[0]),
            "rules": None if self.plan.inputs is None or self.plan.inputs.rules is None else self.plan.inputs.rules.path,
            "inputs": None if self.plan.inputs is None else self.plan.inputs.model_dump(mode="json"),
        }


Progress = Callable[[str, int | None, int | None], None]


def _no_progress(stage: str, done: int | None, total: int | None) -> None:
    return None


def _fresh_database(path: Path) -> Path:
    """The demo's labels start blank each run (a new simulator), so its outbox starts empty too."""
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    return path


def run_demo(
    options: DemoOptions, progress: Progress = _no_progress, hold: Callable[[DemoResult], None] | None = None
) -> DemoResult:
    """The whole loop once. ``hold`` (e.g. serving the review page) is called with the result
    while the broker and the simulated labels still run; they stop when it returns."""
    timer = StageTimer()
    data_dir = options.workdir / "data"
    rules = load_rules(options.rules_path or example_rules_path())  # a bad rules file fails before any work
    with ExitStack() as stack:
        with timer.stage("broker"):
            progress("broker", None, None)
            if options.broker_url:
                address = BrokerAddress.parse(options.broker_url)
                broker_name = address.url
            else:
                embedded = stack.enter_context(EmbeddedBroker())
                address = BrokerAddress(embedded.host, embedded.port)
                broker_name = f"{address.url} (embedded amqtt)"
        with timer.stage("generate store"):
            progress("generate store", None, None)
            generate_store(data_dir, skus=options.skus, seed=options.seed, gateways=options.gateways)
        with timer.stage("load + validate"):
            progress("load + validate", None, None)
            store = load_store(data_dir)
            rules.check_scopes(store.products)  # before training: a misspelt category is one line now
        with timer.stage("train demand model"):
            progress("train demand model", None, None)
            training = train_demand_model(store.sales, store.products, listing=store.listing)
            model_path = save_model(training, options.workdir / "models")
        with timer.stage("plan (optimizer)"):
            progress("plan (optimizer)", None, None)
            plan = run_pricing_cycle(
                store.products,
                training.model,
                rules,
                store=store.store_id,
                model_name=str(model_path),
                rejected_rows=len(store.rejects),
                competitor=competitor_reference(store.competitors),
                labels=store.labels,
                inputs=plan_inputs(rules, model=model_path, data_dir=data_dir, data_files=store.rows_read),
            )
            plan_files = plan.write(options.workdir / "plans")
        topics = Topics(store.store_id, prefix=options.prefix)
        label_rows = store.label_rows()
        with timer.stage("start gateways"):
            progress("start gateways", None, None)
            # The engine signs every desired state; the simulated labels hold its public key and take
            # nothing else. The key pair is made on the first run and kept in the workdir.
            keys = KeyDirectory(options.workdir / "keys")
            keys.create()
            signer = keys.signer()
            gateway_options = GatewayOptions(trusted_keys=keys.trusted())
            simulator = stack.enter_context(SimulatedGateways(address, topics, label_rows, options=gateway_options))
        with timer.stage("price book"):
            progress("price book", None, None)
            engine = open_engine(_fresh_database(options.workdir / "engine.db"))
            book, log = PriceBook(engine, store.store_id), EventLog(engine, store.store_id)
            _seed_price_book(book, log, store, plan.currency, options.history_days)
        settings = DeliverySettings(ack_timeout_s=options.ack_timeout_s)
        outbox = Outbox(engine, store.store_id)
        # The sync and the push hold the store's outbox lock; released before `hold` (the review page pushes too).
        writer = stack.enter_context(OutboxLock(engine, store.store_id))
        with timer.stage("shelf sync"):
            # New labels start blank: each gets today's price before the plan's changes.
            # Every price passes the last gate first: a SKU with no cost on record keeps a blank label.
            costs = product_costs(store.products)
            shelf = sync_labels(book, outbox, log, label_rows, file_prices=shelf_prices(store.products), costs=costs,
                                currency=plan.currency, at=datetime.now(UTC), correlation="shelf-sync")
            synced = deliver_logged(
                outbox, log, address, topics, settings, signer=signer, now=lambda: datetime.now(UTC),
                progress=lambda done, total: progress("shelf sync", done, total),
            )
        with timer.stage("push + acks"):
            now = datetime.now(UTC)
            prices = plan.new_prices()
            recorded = record_prices(
                book, outbox, log, prices, label_rows, currency=plan.currency,
                correlation=plan.plan_id, at=now, costs=costs, limits=hard_limits(store.products, rules, prices),
                relaxed=relaxed_rules(plan.changes),
            )
            delivered = deliver_logged(
                outbox, log, address, topics, settings, signer=signer,
                now=lambda: datetime.now(UTC), progress=lambda done, total: progress("push + acks", done, total),
            )
            delivery = delivered.report if delivered is not None else DeliveryReport()
            delivery.enqueued = recorded.enqueued
        writer.release()
        shown = simulator.displayed()
        mismatched = [
            o.label_id
            for o in delivery.confirmed
            if shown.get(o.label_id) is None or shown[o.label_id].price_cents != o.price_cents
        ]
        result = DemoResult(
            store, plan, delivery, shown, mismatched, broker_name, timer, plan_files, model_path, training.metrics,
            synced.report if synced is not None else DeliveryReport(), address, options.workdir / "engine.db",
            shelf.held + recorded.held,
        )
        if hold is not None:
            hold(result)  # the broker and the simulated labels keep running until it returns
    return result


def _seed_price_book(book: PriceBook, log: EventLog, store: StoreData, currency: str, days: int) -> None:
    """Start the demo's price book with the shelf prices of the last ``days`` of the sales
    history (one entry per change, promotions included), then products.csv's current prices the
    day after: price history charts and EU Omnibus references then have a past to look at."""
    sales = store.sales
    if len(sales):
        last = sales["date"].max()
        recent = sales.loc[sales["date"] > last - pd.Timedelta(days=days), ["date", "sku", "price_cents"]]
        for day, rows in recent.groupby("date", sort=True, observed=True):
            prices = dict(zip(rows["sku"].astype(str), rows["price_cents"].astype(int), strict=True))
            at = pd.Timestamp(day).tz_localize(UTC).to_pydatetime()
            changes = book.record(prices, at=at, currency=currency, correlation="sales.csv", reason="history")
            log.append(price_change_events(changes, store=store.store_id, correlation="sales.csv", at=at))
        after = (last + pd.Timedelta(days=1)).tz_localize(UTC).to_pydatetime()
    else:
        after = datetime.now(UTC)
    changes = book.record(shelf_prices(store.products), at=min(after, datetime.now(UTC)), currency=currency,
                          correlation="products.csv", reason="initial")
    log.append(price_change_events(changes, store=store.store_id, correlation="products.csv", at=after))
