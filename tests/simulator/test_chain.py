"""The sample chain (simulator.chain): zones share prices day by day, stores' demand truths differ
around the chain's, the files follow the chain data contract, and the same seed gives the same chain."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pricing.cli.simulate import simulate_app
from pricing.core.chain_data import (
    ChainData,
    load_stores,
    partition_dir,
    read_store_sales,
)
from simulator.chain import (
    STORE_SKU_SPREAD,
    TRUTH_CHAIN_FILE,
    TRUTH_CHAIN_JSON,
    TRUTH_FILE,
    default_zones,
    generate_chain,
)
from simulator.market import MAX_ELASTICITY, Market

STORES, SKUS, ZONES, DAYS = 6, 80, 2, 35


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chain")
    summary = generate_chain(out, stores=STORES, skus=SKUS, zones=ZONES, seed=3, days=DAYS)
    assert summary.sales_rows == STORES * SKUS * DAYS and summary.labels == STORES * SKUS
    assert summary.zones == ZONES and summary.bytes > 0
    return out


def test_the_files_follow_the_chain_contract(chain: Path) -> None:
    data = ChainData.load(chain)
    assert data.rejects == []
    assert data.store_ids == [f"s00{k}" for k in range(1, STORES + 1)]
    assert data.zones == {"z01": ["s001", "s002", "s003"], "z02": ["s004", "s005", "s006"]}
    assert set(data.stores["timezone"]) == {"Europe/Berlin"} and set(data.stores["currency"]) == {"EUR"}
    assert len(data.labels) == STORES * SKUS and data.labels["label_id"].is_unique
    assert (data.labels.groupby("store")["sku"].nunique() == SKUS).all()
    sales = data.sales(data.store_ids)
    assert sales.rejects == [] and sales.duplicates == [] and len(sales.frame) == STORES * SKUS * DAYS
    assert list(sales.frame.columns) == ["date", "store", "sku", "units", "price_cents", "promo", "stock"]
    table = pq.read_table(partition_dir(chain, "s001") / "part-0.parquet")
    assert str(table.schema.field("sku").type) == "string" and str(table.schema.field("date").type) == "date32[day]"
    # The last day's shelf price of each zone is today's: zone_prices.csv where listed, else the list price.
    last = sales.frame[sales.frame["date"] == sales.frame["date"].max()]
    for zone, stores in data.zones.items():
        mine = last[last["store"].isin(stores) & ~last["promo"]]
        today = data.shelf_prices(zone)
        assert (mine["price_cents"].to_numpy() == today.loc[mine["sku"].astype(str)].to_numpy()).all()
    assert len(data.zone_prices) > 0


def test_zones_share_prices_day_by_day(chain: Path) -> None:
    data = ChainData.load(chain, require_labels=False)
    frame = read_store_sales(chain, data.store_ids)
    frame["zone"] = frame["store"].astype(str).map(dict(zip(data.store_ids, data.stores["zone"], strict=True)))
    per_day = frame.groupby(["zone", "date", "sku"], observed=True)
    assert (per_day["price_cents"].nunique() == 1).all() and (per_day["promo"].nunique() == 1).all()
    assert (per_day["store"].nunique() == 3).all()
    # ... and the zones' price paths are their own.
    prices = per_day["price_cents"].first().unstack("zone")
    assert (prices["z01"] != prices["z02"]).mean() > 0.05


def test_stores_truths_differ_around_the_chains(chain: Path) -> None:
    truth = pd.read_csv(chain / TRUTH_FILE, dtype={"sku": str})
    assert len(truth) == STORES * SKUS and (truth["elasticity"] <= MAX_ELASTICITY).all()
    meta = json.loads((chain / TRUTH_CHAIN_JSON).read_text())
    assert meta["stores"] == STORES and meta["zones"] == ZONES and set(meta["store_levels"]) == set(truth["store"])
    market = Market.load(chain / TRUTH_CHAIN_FILE)  # the chain-level truth
    chain_e = pd.Series(market.truth.elasticity, index=market.truth.sku)
    assert np.allclose(truth["chain_elasticity"], chain_e.loc[truth["sku"]].to_numpy())
    # Every store has its own elasticity for most SKUs, around the chain's ...
    differ = truth.groupby("sku")["elasticity"].nunique()
    assert (differ > 1).mean() > 0.9
    store_gap = truth["elasticity"] - truth["zone_elasticity"]
    zone_gap = truth["zone_elasticity"] - truth["chain_elasticity"]
    assert 0.5 * STORE_SKU_SPREAD < store_gap.std() < 3 * STORE_SKU_SPREAD
    assert abs((truth["elasticity"] - truth["chain_elasticity"]).mean()) < 0.3
    # ... the stores of a zone share the zone's part (so pooling store -> zone -> chain finds it).
    assert (truth.groupby(["zone", "sku"])["zone_elasticity"].nunique() == 1).all()
    assert zone_gap.std() > 0.05
    # Stores differ in traffic: their units at the same (zone) prices differ.
    units = read_store_sales(chain, ["s001", "s002", "s003"]).groupby("store", observed=True)["units"].sum()
    traffic = {s: v["traffic"] for s, v in meta["store_levels"].items()}
    assert units.idxmax() == max(["s001", "s002", "s003"], key=traffic.get)
    assert units.max() / units.min() > 1.1


def test_the_same_seed_gives_the_same_chain(chain: Path, tmp_path: Path) -> None:
    again = tmp_path / "again"
    generate_chain(again, stores=STORES, skus=SKUS, zones=ZONES, seed=3, days=DAYS)
    for name in ("stores.csv", "products.csv", "zone_prices.csv", "labels.csv", TRUTH_FILE, TRUTH_CHAIN_FILE, TRUTH_CHAIN_JSON):
        assert (again / name).read_bytes() == (chain / name).read_bytes(), name
    for store in ("s001", "s006"):
        part = "part-0.parquet"
        assert pq.read_table(partition_dir(again, store) / part).equals(pq.read_table(partition_dir(chain, store) / part))
    other = tmp_path / "other"
    generate_chain(other, stores=STORES, skus=SKUS, zones=ZONES, seed=4, days=DAYS)
    assert (other / TRUTH_FILE).read_bytes() != (chain / TRUTH_FILE).read_bytes()
    # Generating again into the same directory replaces the earlier chain's sales.
    generate_chain(other, stores=2, skus=SKUS, seed=4, days=DAYS)
    assert sorted(p.name for p in (other / "sales").iterdir()) == ["store=s001", "store=s002"]


def test_arguments_out_of_range(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="zones <= stores"):
        generate_chain(tmp_path, stores=2, skus=5, zones=3)
    with pytest.raises(ValueError, match="skus"):
        generate_chain(tmp_path, stores=2, skus=0)
    (tmp_path / "sales").mkdir()
    with pytest.raises(ValueError, match="not a generated chain"):
        generate_chain(tmp_path, stores=2, skus=5)
    assert default_zones(1) == 1 and default_zones(40) == 6 and default_zones(1000) == 32


def test_cli_generate_chain_json(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    result = runner.invoke(simulate_app, ["generate-chain", "--out", str(out), "--stores", "5", "--skus", "20",
                                          "--days", "14", "--seed", "2", "--json"])
    assert result.exit_code == 0, result.stderr
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    assert {k: payload[k] for k in ("stores", "zones", "skus", "sales_rows", "out")} == {
        "stores": 5, "zones": 2, "skus": 20, "sales_rows": 5 * 20 * 14, "out": str(out)}
    assert payload["seconds"] >= 0 and payload["bytes"] > 0
    assert "wrote a chain of 5 stores in 2 zones" in result.stderr
    assert load_stores(out).stores == ["s001", "s002", "s003", "s004", "s005"]
    result = runner.invoke(simulate_app, ["generate-chain", "--out", str(tmp_path / "x"), "--stores", "2",
                                          "--skus", "5", "--zones", "3"])
    assert result.exit_code == 2 and result.stdout == ""
    assert result.stderr.strip() == "error: --zones 3 is more than --stores 2: every zone needs a store"
