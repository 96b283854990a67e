"""A chain end to end: chain plan -> head office's broker -> Mosquitto bridges -> two store daemons
-> simulated labels confirmed -> the stores' answers back at head office.

A 5-store, 2-zone chain (``generate_chain``) is trained and planned in one process (``run_chain``,
no Dask: tests/pricing/plan/test_chain.py compares it with workers); every store's plan
(``store_plans``: its zone's plan under its id) is published, signed and retained, on a real
head-office Mosquitto (config/mosquitto/headoffice.conf). Two stores, one of each zone, have
their own Mosquitto bridged to head office (config/mosquitto/store-bridge.conf, started by
tests/test_chain_bridge.py's helpers); the other three stores' plans wait, retained, for brokers
that never come. Each of the two runs a StoreDaemon with ``head_office_keys`` on its own broker:
its nightly reprice takes head office's plan instead of planning, pushes it to the store's
simulated labels and reports the outcome, which head office reads with ``collect_results``.

Two key pairs, as a chain would have them: head office signs plans with its own key (the stores
hold only its public half, ``head_office_keys``); the stores sign desired states with the engine
key of the test session (``engine_keys``, in ESL_SIGNING_KEYS), the one their labels trust. A plan
never reaches a label as it is: the store re-signs each price it pushes.

Each store's data folder is cut from the chain folder as a store's engine reads it: products.csv
with its zone's shelf prices, its own labels.csv and its sales partition as sales.csv. The SKU
count keeps every category above 60 SKUs, so training stays on the fast log-log path (categories
of 2-60 SKUs also try the choice model, ~20x slower).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from label_gateway.protocol import Topics
from label_gateway.signing import KeyDirectory
from pricing.core.chain_data import ChainData, read_store_sales
from pricing.core.data import LABELS_FILE, PRODUCTS_FILE, SALES_COLUMNS, SALES_FILE
from pricing.core.store_data import load_store
from pricing.plan.chain import run_chain, store_plans
from pricing.plan.price_plan import PricePlan
from pricing.rules.config import load_rules
from pricing.store.daemon import CycleResult, StoreDaemon
from pricing.store.engine_config import load_engine_config
from pricing.store.plan_publish import collect_results, publish_store_plans
from simulator.chain import generate_chain
from simulator.gateways import Displayed, GatewayOptions, SimulatedGateways
from tests.test_chain_bridge import (
    PREFIX,
    Mosquitto,
    _retained,
    start_headoffice,
    start_store,
)

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")  # CI=true: no binary fails, not skips
pytestmark = [
    pytest.mark.integration,
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("mosquitto") is None and not IN_CI, reason="needs the mosquitto binary"),
]

NOW = datetime(2026, 11, 2, 4, tzinfo=UTC)  # the night after the chain's last sales day (2026-11-01)
RULES = """currency: EUR
default:
  margin_floor_pct: 10
  max_change_pct: 10
  endings: [".99", ".49"]
"""


def write_store_data(chain: ChainData, store: str, out: Path) -> Path:
    """One store's data folder from the chain's: the catalogue at its zone's shelf prices, its own
    labels, its own sales (its partition only)."""
    out.mkdir(parents=True)
    products = chain.products.copy()
    shelf = chain.shelf_prices(chain.zone_of(store))
    products["price_cents"] = products["sku"].astype(str).map(shelf).astype("int64")
    products.to_csv(out / PRODUCTS_FILE, index=False, lineterminator="\n")
    chain.store_labels(store).to_csv(out / LABELS_FILE, index=False, lineterminator="\n")
    sales = read_store_sales(chain.directory, [store], known=set(chain.products["sku"].astype(str)))
    sales = sales[SALES_COLUMNS].astype({"store": str, "sku": str})
    sales["date"] = sales["date"].dt.strftime("%Y-%m-%d")
    sales.to_csv(out / SALES_FILE, index=False, lineterminator="\n")
    return out


def write_store_config(directory: Path, store: str, broker: Mosquitto, head_office: KeyDirectory) -> Path:
    """engine.yaml of a chain store: its own broker, head office's public key only."""
    trusted = directory / "head-office-keys"
    trusted.mkdir()
    for public in sorted(head_office.path.glob("*.pub")):
        shutil.copy(public, trusted / public.name)
    assert not [p for p in trusted.iterdir() if p.suffix != ".pub"]  # a store never holds head office's secret
    (directory / "rules.yaml").write_text(RULES, encoding="utf-8")
    config = {
        "store": store, "database": "engine.db", "data_dir": "data", "rules": "rules.yaml",
        "model_dir": "models", "plans_dir": "plans", "broker": broker.address.url, "prefix": PREFIX,
        "head_office_keys": "head-office-keys",
        "calendar": {"timezone": "Europe/Berlin"},
        "delivery": {"ack_timeout_s": 5, "max_attempts": 3, "deadline_s": 60},
        "jobs": [{"id": "nightly-reprice", "kind": "reprice", "cron": "30 5 * * *"}],
        "metrics": {"enabled": False},
    }
    path = directory / "engine.yaml"
    path.write_text(json.dumps(config, indent=1), encoding="utf-8")
    return path


def run_store(
    config: Path, broker: Mosquitto, engine_keys: KeyDirectory
) -> tuple[CycleResult, dict[str, Displayed], list[str]]:
    """The store's labels on its broker, its daemon's nightly reprice; what the labels show after."""
    settings = load_engine_config(config)
    data = load_store(settings.resolve("data_dir", config.parent))
    said: list[str] = []
    options = GatewayOptions(trusted_keys=engine_keys.trusted())
    topics = Topics(settings.store, prefix=PREFIX)
    with SimulatedGateways(broker.address, topics, data.label_rows(), options=options) as gateways:
        daemon = StoreDaemon(settings, config.parent, say=said.append)
        try:
            result = daemon.run_job("nightly-reprice")
        finally:
            daemon.shutdown()
        return result, gateways.displayed(), said


def test_a_chain_plan_reaches_two_stores_labels_over_the_bridge_and_both_report_ok(
    tmp_path: Path, engine_keys: KeyDirectory
) -> None:
    # 1. Head office: the chain's data, trained and planned per zone; one plan per store.
    generate_chain(tmp_path / "chain", stores=5, skus=800, zones=2, seed=11, days=120)
    chain = ChainData.load(tmp_path / "chain")
    (tmp_path / "rules.yaml").write_text(RULES, encoding="utf-8")
    run = run_chain(tmp_path / "chain", load_rules(tmp_path / "rules.yaml"), now=NOW)
    plans = store_plans(run, chain.zones)
    assert sorted(plans) == chain.store_ids and len(plans) == 5
    assert sorted(chain.zones) == ["z01", "z02"]
    store_a, store_b = chain.zones["z01"][0], chain.zones["z02"][0]  # one store of each zone
    zone_prices = {store_a: run.plans["z01"].new_prices(), store_b: run.plans["z02"].new_prices()}
    for store in (store_a, store_b):
        assert zone_prices[store], f"the zone of {store} must have changes to push"
        assert plans[store].new_prices() == zone_prices[store]
    both = set(zone_prices[store_a]) & set(zone_prices[store_b])
    differ = {sku for sku in both if zone_prices[store_a][sku] != zone_prices[store_b][sku]}
    assert differ, "the two zones' plans must change some SKU to different prices"

    head_office_keys = KeyDirectory(tmp_path / "head-office-keys")
    head_office_keys.create()
    assert set(head_office_keys.trusted().keys).isdisjoint(engine_keys.trusted().keys)

    workdir = tmp_path / "brokers"
    workdir.mkdir()
    brokers: list[Mosquitto] = []
    try:
        head_office = start_headoffice(workdir)
        brokers.append(head_office)
        store_brokers = {store: start_store(workdir, store, head_office) for store in (store_a, store_b)}
        brokers += store_brokers.values()

        # 2. Every store's plan, signed with head office's key and retained on its broker.
        published = publish_store_plans(head_office.address, PREFIX, plans, head_office_keys)
        assert {store: info["plan_id"] for store, info in published.items()} == {s: p.plan_id for s, p in plans.items()}
        retained = _retained(head_office.address, f"{PREFIX}/chain/+/plan")
        assert sorted(retained) == [f"{PREFIX}/chain/{store}/plan" for store in chain.store_ids]

        # 3. The two bridged stores: their daemons take the plan, push it, their labels confirm.
        outcomes: dict[str, tuple[CycleResult, dict[str, Displayed], list[str]]] = {}
        for store in (store_a, store_b):
            home = tmp_path / store
            write_store_data(chain, store, home / "data")
            config = write_store_config(home, store, store_brokers[store], head_office_keys)
            outcomes[store] = run_store(config, store_brokers[store], engine_keys)
            # The store's broker holds its own plan, no other store's.
            on_store = _retained(store_brokers[store].address, f"{PREFIX}/chain/+/plan")
            assert list(on_store) == [f"{PREFIX}/chain/{store}/plan"]

        for store in (store_a, store_b):
            result, displayed, said = outcomes[store]
            assert result.result == "ok", (result.data(), said)
            assert result.plan == plans[store].plan_id  # head office's plan, not one of its own
            assert any(f"plan {plans[store].plan_id} from head office accepted" in line for line in said), said
            taken = PricePlan.read(tmp_path / store / "plans" / f"{result.plan}.json")
            assert taken == plans[store]  # as head office planned it (no approval band at the store)
            labels = chain.store_labels(store)
            changed = {str(label): str(sku) for label, sku in zip(labels["label_id"], labels["sku"], strict=True)
                       if str(sku) in zone_prices[store]}
            assert result.changes == len(zone_prices[store])
            assert result.pushed_labels == len(changed) > 0
            assert result.confirmed == result.pushed_labels and result.failed == 0 and result.waiting == 0, result.data()
            for label, sku in changed.items():
                assert label in displayed, f"{store}: label {label} shows nothing"
                assert displayed[label].price_cents == zone_prices[store][sku], (store, label)

        # Same SKU, two zones, two shelf prices.
        shows = {
            store: {d.sku: d.price_cents for d in outcomes[store][1].values()} for store in (store_a, store_b)
        }
        for sku in differ:
            assert shows[store_a][sku] == zone_prices[store_a][sku] != shows[store_b][sku] == zone_prices[store_b][sku]

        # 4. Head office hears both stores: ok, with their plan ids and counts; the other three are silent.
        expect = {store: plans[store].plan_id for store in (store_a, store_b)}
        results, malformed = collect_results(head_office.address, PREFIX, expect=expect, timeout=15)
        assert malformed == 0
        assert sorted(results) == sorted(expect)
        for store, plan_id in expect.items():
            answer = results[store]
            assert (answer.result, answer.plan_id) == ("ok", plan_id), answer
            result = outcomes[store][0]
            assert answer.counts["confirmed"] == result.confirmed == answer.counts["pushed_labels"]
            assert answer.counts["changes"] == len(zone_prices[store])
    finally:
        for broker in reversed(brokers):
            broker.stop()
