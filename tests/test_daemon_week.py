"""The store daemon over a simulated week, against the real Mosquitto and the gateway simulator.

The daemon's clock is a SimulatedClock (the simulator's labels use it too), so a week of
schedule runs in seconds while every push and ack goes over MQTT for real. Checked afterwards:
every scheduled cycle ran exactly once at its time; nothing reached a label inside a freeze
window or while the kill switch was on; every reduction carried the right Omnibus reference
(computed here from the price history the log records); every label shows the price book's
price; and replaying the week's exported event log reports no divergence.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from typer.testing import CliRunner

from label_gateway.broker import clear_retained
from label_gateway.protocol import Topics
from label_gateway.signing import KeyDirectory
from pricing.cli.app import app
from pricing.core.events import Event, read_jsonl
from pricing.store.daemon import StoreDaemon
from pricing.store.engine_config import load_engine_config
from pricing.store.event_log import EventLog
from pricing.store.price_book import PriceBook
from pricing.store.scheduler import SimulatedClock
from simulator.gateways import GatewayOptions, SimulatedGateways
from simulator.replay import replay
from simulator.store import generate_store

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

BERLIN = ZoneInfo("Europe/Berlin")
MONDAY = datetime(2026, 11, 16, tzinfo=BERLIN)  # a week without a DST change
KILL_ON = datetime(2026, 11, 19, 12, 0, tzinfo=BERLIN)  # Thursday noon ...
KILL_OFF = datetime(2026, 11, 20, 18, 0, tzinfo=BERLIN)  # ... to Friday 18:00
RULES = Path(__file__).resolve().parents[1] / "config" / "rules.yaml"


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return (MONDAY + timedelta(days=day)).replace(hour=hour, minute=minute)


def engine_yaml(store: str, database: str, broker: str, prefix: str) -> dict[str, Any]:
    return {
        "store": store,
        "database": database,
        "data_dir": "data",
        "rules": "rules.yaml",
        "model_dir": "models",
        "plans_dir": "plans",
        "broker": broker,
        "prefix": prefix,
        "calendar": {
            "timezone": "Europe/Berlin",
            "freeze": {
                "while_open": False,
                "windows": [{"days": ["sat"], "start": "10:00", "end": "18:00"}],
                "dates": ["2026-11-18"],  # Wednesday: an audit day
            },
        },
        "delivery": {"ack_timeout_s": 5, "max_attempts": 3, "deadline_s": 60},
        "scheduler": {"misfire_grace_s": 900, "coalesce": True},
        "jobs": [
            {"id": "nightly-reprice", "kind": "reprice", "cron": "30 5 * * *"},
            {
                "id": "markdown-perishables", "kind": "markdown", "cron": "0 13,17 * * mon-sat",
                "categories": ["dairy", "bakery", "produce"], "max_reduction_pct": 30,
            },
            {"id": "reconcile", "kind": "reconcile", "every": "6h"},
            {"id": "weekly-retrain", "kind": "retrain", "cron": "0 3 * * sun"},
        ],
        "metrics": {"enabled": False},
    }


def expected_runs(start: datetime) -> dict[str, list[datetime]]:
    """The week's schedule, written out by hand from the config above."""
    return {
        "nightly-reprice": [local(d, 5, 30) for d in range(7)],
        "markdown-perishables": [local(d, h) for d in range(6) for h in (13, 17)],
        "reconcile": [start + timedelta(hours=6 * k) for k in range(28)],
        "weekly-retrain": [local(6, 3)],
    }


@pytest.fixture
def week_store(tmp_path: Path, database_url: str, mqtt_broker: Any) -> dict[str, Any]:
    store = f"wk-{uuid.uuid4().hex[:6]}"
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    generate_store(tmp_path / "data", skus=150, seed=3, gateways=2, store=store, end_date=MONDAY.date())
    _overprice_perishables(tmp_path / "data" / "products.csv")
    shutil.copy(RULES, tmp_path / "rules.yaml")
    config = tmp_path / "engine.yaml"
    config.write_text(json.dumps(engine_yaml(store, database_url, mqtt_broker.address.url, prefix)))
    yield {"store": store, "prefix": prefix, "config": config, "dir": tmp_path, "broker": mqtt_broker.address}
    clear_retained(mqtt_broker.address, f"{prefix}/#", settle_s=0.3)


def test_a_simulated_week(week_store: dict[str, Any], engine_keys: KeyDirectory) -> None:
    config = load_engine_config(week_store["config"])
    start = MONDAY.astimezone(ZoneInfo("UTC"))
    clock = SimulatedClock(start)
    topics = Topics(week_store["store"], prefix=week_store["prefix"])
    labels = [tuple(row) for row in _labels(week_store["dir"] / "data" / "labels.csv")]
    runner = CliRunner()
    options = GatewayOptions(trusted_keys=engine_keys.trusted())  # the labels take signed states only
    with SimulatedGateways(week_store["broker"], topics, labels, options=options, clock=clock.now) as gateways:
        daemon = StoreDaemon(config, week_store["config"].parent, clock=clock)
        daemon.start()
        daemon.run(until=KILL_ON)
        shown_at_kill = {k: v.version for k, v in gateways.displayed().items()}
        killed = runner.invoke(app, ["kill-switch", "on", "--config", str(week_store["config"]), "--by", "test"])
        assert killed.exit_code == 0, killed.output
        daemon.run(until=KILL_OFF)
        assert {k: v.version for k, v in gateways.displayed().items()} == shown_at_kill, "a push got through the kill switch"
        allowed = runner.invoke(app, ["kill-switch", "off", "--config", str(week_store["config"]), "--by", "test"])
        assert allowed.exit_code == 0, allowed.output
        daemon.run(until=start + timedelta(days=7))
        daemon.shutdown()
        shown = gateways.displayed()
        history = gateways.history()
        regressions = gateways.regressions()

    log = EventLog(daemon.engine, week_store["store"])
    events = log.read()

    # 1. Every scheduled cycle ran exactly once, at its time.
    ran: dict[str, list[datetime]] = defaultdict(list)
    for e in events:
        if e.kind == "cycle_started":
            ran[e.data["job"]].append(e.at)
    for job, times in expected_runs(start).items():
        assert sorted(ran[job]) == sorted(times), job
    results = {(e.data["job"], e.at): e.data["result"] for e in events if e.kind in ("cycle_finished", "cycle_skipped")}
    assert not [k for k, r in results.items() if r in ("failed", "missed")], results
    reprices = [r for (job, _), r in results.items() if job == "nightly-reprice"]
    assert reprices.count("ok") >= 5

    # 2. Nothing was pushed, and no label changed, inside a freeze window.
    calendar = config.calendar
    frozen_cycles = [(job, at) for (job, at), r in results.items() if r == "frozen"]
    assert {job for job, _ in frozen_cycles} >= {"markdown-perishables", "nightly-reprice"}  # Wed + Sat
    for e in events:
        if e.kind == "pushed":
            assert calendar.frozen(e.at) is None, f"pushed inside a freeze: {e}"
    for label, entries in history.items():
        for entry in entries:
            assert calendar.frozen(entry.applied_at) is None, f"{label} changed at {entry.applied_at}"

    # 3. The kill switch held: cycles ran in that span, none pushed, no label changed.
    killed_cycles = [(job, at) for (job, at), r in results.items() if KILL_ON <= at < KILL_OFF]
    assert killed_cycles and all(results[k] == "kill_switch" for k in killed_cycles)
    assert not [e for e in events if e.kind == "pushed" and KILL_ON <= e.at < KILL_OFF]
    assert not [
        (label, x.applied_at) for label, entries in history.items() for x in entries if KILL_ON <= x.applied_at < KILL_OFF
    ]

    # 4. Omnibus: each reduction's reference is the lowest price of the 30 days before it,
    #    recomputed here from the price_changed events; labels show it with the reduced price.
    changes = [e for e in events if e.kind == "price_changed"]
    reductions = _check_omnibus(changes)
    assert reductions, "the week had no reduction to check"
    book = PriceBook(daemon.engine, week_store["store"])
    current = book.current()
    references = _current_references(changes)
    sku_of = {label: sku for label, _, sku in labels}
    for label, display in shown.items():
        assert display.price_cents == current[sku_of[label]], label
        assert display.reference_cents == references.get(sku_of[label]), label

    # 5. Every label confirmed; no label ever went back to an older version.
    assert all(e.data["status"] in ("displayed", "scheduled") for e in events if e.kind == "acked")
    assert regressions == 0

    # 6. The week's log replays with zero divergences.
    exported = week_store["dir"] / "week.jsonl"
    result = runner.invoke(app, ["events", "export", str(exported), "--config", str(week_store["config"])])
    assert result.exit_code == 0, result.output
    report = replay(read_jsonl(exported), week_store["broker"], prefix=week_store["prefix"] + "-replay", speed=None)
    assert report.divergences == [], report.summary()


def _overprice_perishables(products: Path) -> None:
    """Put a third of the perishables 40% above their price, so the week has reductions (and
    Omnibus references) to check: the optimizer brings them down over several cycles."""
    import pandas as pd

    frame = pd.read_csv(products, dtype={"sku": str})
    perishable = frame.index[frame["category"].isin(["dairy", "bakery", "produce"])][::3]
    frame.loc[perishable, "price_cents"] = (frame.loc[perishable, "price_cents"] * 1.4).round().astype(int)
    frame.to_csv(products, index=False)


def _labels(path: Path) -> list[list[str]]:
    import csv

    with path.open() as handle:
        return [[row["label_id"], row["gateway"], row["sku"]] for row in csv.DictReader(handle)]


def _check_omnibus(changes: list[Event]) -> int:
    """Replays the price history per SKU and checks every reduction's reference; returns how many."""
    timeline: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    checked = 0
    for e in changes:
        sku, price = e.sku, e.data["price_cents"]
        assert sku is not None
        at = datetime.fromisoformat(e.data["effective_from"])
        before = timeline[sku]
        if before and price < before[-1][1]:
            window = [p for i, (t, p) in enumerate(before) if i + 1 == len(before) or before[i + 1][0] > at - timedelta(days=30)]
            assert e.data["reference_cents"] == min(window), (sku, e.data, before)
            checked += 1
        else:
            assert e.data["reference_cents"] is None, (sku, e.data)
        before.append((at, price))
    return checked


def _current_references(changes: list[Event]) -> dict[str, int]:
    last: dict[str, Event] = {}
    for e in changes:
        assert e.sku is not None
        last[e.sku] = e
    return {sku: e.data["reference_cents"] for sku, e in last.items() if e.data["reference_cents"] is not None}
