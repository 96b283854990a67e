"""A deterministic sample chain: stores in price zones, one catalogue, a year of each store's daily
sales from its own demand truth, every store's labels, and the truth alongside.

``generate_chain(out, stores=40, skus=2000)`` writes into ``out`` the chain data contract of
pricing/core/chain_data.py: stores.csv, products.csv, zone_prices.csv, sales/store=<id>/
part-0.parquet (one Hive-style partition per store, written one store at a time), labels.csv;
and the truth the engine must never read: truth.csv (store, zone, sku, elasticity, and the
store's base_units, zone_elasticity, chain_elasticity), truth_chain.csv +
truth_chain_categories.csv (the chain-level market, ``simulator.market.Market.load`` reads it)
and truth_chain.json (the chain's parameters: spreads, zones, store traffic and levels, dates).
The same arguments give the same files.

How the chain is built, reusing the single store's generator (simulator/store.py) and market
(simulator/market.py):

- One catalogue, cost and list price (products.csv), with its families, ladders and tiers, as
  ``generate_store`` draws them; one chain-level market truth (``Market.draw``): each SKU's
  elasticity e_i, base volume and the category calendar, cross-price effect, trend and noise.
- Zones (default round(sqrt(stores))), ``z01``..; stores ``s001``.. in contiguous blocks per
  zone. Each store's own-price elasticity of SKU i is
  e_i + zone_level_z + zone_sku_zi + store_level_s + store_sku_si (normal offsets with the
  ``*_SPREAD`` standard deviations), reflected at MAX_ELASTICITY and clipped at MIN_ELASTICITY as
  ``Market.draw`` does: stores of a zone share the zone's part, so pooling store -> zone -> chain
  has something to find. Each store's traffic is a lognormal scale (TRAFFIC_SIGMA) on every
  SKU's base volume. A store's demand is a loglog ``Market`` with those elasticities and
  volumes and the chain's categories.
- A zone shares its shelf prices: one price path and promo calendar per zone
  (``_regular_prices`` and ``_promotions`` of simulator/store.py, category event weeks
  included), which every store of the zone sells at on every day. Today's zone price is the
  list price except for ZONE_PRICE_SHARE of the SKUs outside families, ladders and tiers, whose
  zone price is ZONE_PRICE_STEP above or below it (zone_prices.csv lists only those rows).
- Sales: units = min(demand, stock) from the store's market (``_draw_sales``: negative binomial
  demand, stock-outs), Parquet columns date (date32), store, sku (text), units, price_cents,
  promo, stock (int32 numbers, zstd).
- Labels: one per SKU and store, ``<store>-L<sku>``, on the store's gateways gw-01...
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from pricing.core.chain_data import (
    PART_FILE,
    PARTITION_KEY,
    SALES_DIR,
    STORE_COLUMNS,
    STORES_FILE,
    ZONE_PRICE_COLUMNS,
    ZONE_PRICES_FILE,
    partition_dir,
)
from pricing.core.data import LABELS_FILE, PRODUCTS_FILE, SALES_COLUMNS, SALES_FILE
from simulator.market import (
    MAX_ELASTICITY,
    MIN_ELASTICITY,
    DemandTruth,
    Market,
    days_between,
)
from simulator.store import (
    MIN_MARKUP,
    SKU_SPACE,
    _current_prices,
    _draw_catalogue,
    _draw_sales,
    _labels,
    _price_groups,
    _products,
    _promotions,
    _regular_prices,
    ceil_to_ending,
    round_to_ending,
)

TRUTH_FILE = "truth.csv"  # per store and SKU
TRUTH_CHAIN_FILE = "truth_chain.csv"  # the chain-level market (and truth_chain_categories.csv)
TRUTH_CHAIN_JSON = "truth_chain.json"
TIMEZONE = "Europe/Berlin"
CURRENCY = "EUR"
END_DATE = date(2026, 11, 1)
TRAFFIC_SIGMA = 0.35  # lognormal sd of a store's traffic (scales every SKU's volume)
ZONE_LEVEL_SPREAD = 0.10  # sd of a zone's shift of every SKU's elasticity
ZONE_SKU_SPREAD = 0.10  # sd of a zone's own shift of each SKU's elasticity
STORE_LEVEL_SPREAD = 0.06  # sd of a store's shift of every SKU's elasticity
STORE_SKU_SPREAD = 0.08  # sd of a store's own shift of each SKU's elasticity
ZONE_PRICE_SHARE = 0.15  # of the ungrouped SKUs, the share whose zone price differs from the list price
ZONE_PRICE_STEP = (0.05, 0.15)  # a zone price is this much above or below the list price (then on .49/.99 endings, >= cost * MIN_MARKUP)
SALES_WRITTEN = [*SALES_COLUMNS, "stock"]  # the Parquet columns, in this order
TRUTH_COLUMNS = ["store", "zone", "sku", "elasticity", "base_units", "zone_elasticity", "chain_elasticity"]


@dataclass(frozen=True)
class ChainSummary:
    """What generate_chain wrote."""

    stores: int
    zones: int
    skus: int
    days: int
    sales_rows: int
    labels: int
    zone_price_rows: int
    start_date: date
    end_date: date
    bytes: int  # every file written, on disk
    paths: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    def as_json(self, out: Path | str) -> dict[str, object]:
        """The CLI's JSON line."""
        return {
            "stores": self.stores, "zones": self.zones, "skus": self.skus, "days": self.days,
            "sales_rows": self.sales_rows, "labels": self.labels, "zone_price_rows": self.zone_price_rows,
            "bytes": self.bytes, "seconds": round(self.seconds, 3), "out": str(out),
        }


def store_ids(stores: int) -> list[str]:
    """s001, s002, ... (wider for 1,000+ stores)."""
    width = max(3, len(str(stores)))
    return [f"s{k:0{width}d}" for k in range(1, stores + 1)]


def zone_ids(zones: int) -> list[str]:
    """z01, z02, ... (wider for 100+ zones)."""
    width = max(2, len(str(zones)))
    return [f"z{k:0{width}d}" for k in range(1, zones + 1)]


def default_zones(stores: int) -> int:
    """About sqrt(stores) zones, at least one."""
    return max(1, round(math.sqrt(stores)))


def _bounded(raw: np.ndarray) -> np.ndarray:
    """Elasticities kept in [MIN_ELASTICITY, MAX_ELASTICITY] as Market.draw keeps them: reflected
    at the upper bound (no pile at -1.1), clipped at the lower."""
    reflected = np.where(raw > MAX_ELASTICITY, 2 * MAX_ELASTICITY - raw, raw)
    return np.clip(reflected, MIN_ELASTICITY, MAX_ELASTICITY)


def _ungrouped(products: pd.DataFrame) -> np.ndarray:
    """SKUs in no family, ladder or tier (neither with a tier nor anyone's tier): a zone price
    of theirs cannot break a link the rules keep."""
    linked = np.zeros(len(products), dtype=bool)
    for col in ("family", "ladder", "tier"):
        linked |= products[col].fillna("").astype(str).to_numpy() != ""
    linked |= products["sku"].isin(set(products["tier"].dropna().astype(str))).to_numpy()
    return ~linked


def _zone_current(
    current: np.ndarray, cost: np.ndarray, eligible: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A zone's shelf price today: the list price, except for ZONE_PRICE_SHARE of the eligible
    SKUs; and the mask of the SKUs whose zone price differs."""
    n = len(current)
    pick = eligible & (rng.random(n) < ZONE_PRICE_SHARE)
    sign = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    moved = round_to_ending(current * (1.0 + sign * rng.uniform(*ZONE_PRICE_STEP, n)))
    moved = np.maximum(moved, ceil_to_ending(cost * MIN_MARKUP))
    differs = pick & (moved != current)
    return np.where(differs, moved, current).astype(np.int64), differs


def _sales_table(store: str, skus: np.ndarray, dates: np.ndarray, units: np.ndarray, stock: np.ndarray,
                 price: np.ndarray, promo: np.ndarray) -> object:
    """One store's sales as an Arrow table, day by day (all SKUs of a day, then the next day)."""
    import pyarrow as pa

    n, days = units.shape
    rows = n * days
    sku_dict = pa.DictionaryArray.from_arrays(pa.array(np.tile(np.arange(n, dtype=np.int32), days)), pa.array(skus, pa.string()))
    store_dict = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, dtype=np.int32)), pa.array([store], pa.string()))
    columns = {
        "date": pa.array(np.repeat(dates.astype("datetime64[D]"), n), pa.date32()),
        "store": store_dict.cast(pa.string()),
        "sku": sku_dict.cast(pa.string()),
        "units": pa.array(units.T.ravel()),
        "price_cents": pa.array(np.ascontiguousarray(price.T).ravel().astype(np.int32)),
        "promo": pa.array(promo.T.ravel()),
        "stock": pa.array(stock.T.ravel()),
    }
    return pa.table({name: columns[name] for name in SALES_WRITTEN})


def _prepare(out: Path) -> None:
    """An empty place for the sales: a sales/ directory of an earlier generated chain (it has
    truth_chain.json) is replaced; any other sales data there is an error, never deleted."""
    out.mkdir(parents=True, exist_ok=True)
    if (out / SALES_FILE).exists():
        raise ValueError(f"{out} holds {SALES_FILE}; a generated chain writes {SALES_DIR}/ (choose another --out)")
    if (out / SALES_DIR).exists():
        if not (out / TRUTH_CHAIN_JSON).exists():
            raise ValueError(f"{out / SALES_DIR} exists and is not a generated chain's; choose another --out")
        shutil.rmtree(out / SALES_DIR)


def _disk_bytes(paths: list[Path]) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def generate_chain(
    out: Path,
    *,
    stores: int,
    skus: int,
    zones: int | None = None,
    seed: int = 0,
    days: int = 365,
    gateways: int = 2,
    end_date: date = END_DATE,
) -> ChainSummary:
    """Write a deterministic sample chain into ``out`` (see the module docstring); ValueError for
    arguments out of range (or an ``out`` that holds other sales data)."""
    zones = default_zones(stores) if zones is None else zones
    if stores < 1 or not 1 <= zones <= stores:
        raise ValueError(f"need stores >= 1 and 1 <= zones <= stores (got stores={stores}, zones={zones})")
    if not 1 <= skus < SKU_SPACE or days < 1 or gateways < 1:
        raise ValueError(f"need 1 <= skus < {SKU_SPACE}, days >= 1, gateways >= 1")
    import pyarrow.parquet as pq

    started = time.perf_counter()
    out = Path(out)
    _prepare(out)
    root = np.random.SeedSequence(seed)
    seq_catalogue, seq_truth, seq_groups, seq_products, seq_chain, seq_zone_prices, seq_zones, seq_stores = root.spawn(8)
    rng_catalogue = np.random.default_rng(seq_catalogue)
    catalogue = _draw_catalogue(skus, rng_catalogue)
    cost, drawn = _current_prices(catalogue, rng_catalogue)
    groups = _price_groups(catalogue, cost, drawn, np.random.default_rng(seq_groups))
    current = groups.price.astype(np.int64)
    sku = catalogue["sku"].to_numpy(dtype=object)
    category = catalogue["category"].to_numpy(dtype=object)
    start_date = end_date - timedelta(days=days - 1)
    dates = days_between(start_date, end_date)
    chain = Market.draw(sku, category, current, np.random.default_rng(seq_truth), trend_origin=start_date,
                        brands=catalogue["brand"].to_numpy(dtype=object))
    products = _products(catalogue, cost, groups, np.random.default_rng(seq_products))

    # Zones and stores: ids, membership, the zone's and store's shifts, traffic.
    store_id, zone_id = store_ids(stores), zone_ids(zones)
    zone_of = (np.arange(stores) * zones) // stores  # contiguous blocks, none empty
    rng_chain = np.random.default_rng(seq_chain)
    zone_level = rng_chain.normal(0, ZONE_LEVEL_SPREAD, zones)
    store_level = rng_chain.normal(0, STORE_LEVEL_SPREAD, stores)
    traffic = rng_chain.lognormal(0, TRAFFIC_SIGMA, stores)
    eligible = _ungrouped(products)

    paths = {name: out / name for name in (STORES_FILE, PRODUCTS_FILE, ZONE_PRICES_FILE, LABELS_FILE, TRUTH_FILE)}
    stores_frame = pd.DataFrame(
        {"store": store_id, "zone": np.array(zone_id, dtype=object)[zone_of], "timezone": TIMEZONE,
         "currency": CURRENCY, "gateways": gateways},
        columns=STORE_COLUMNS,
    )
    stores_frame.to_csv(paths[STORES_FILE], index=False, lineterminator="\n")
    products.to_csv(paths[PRODUCTS_FILE], index=False, lineterminator="\n")

    rng_zone_prices = np.random.default_rng(seq_zone_prices)
    zone_seqs, store_seqs = seq_zones.spawn(zones), seq_stores.spawn(stores)
    chain_e = chain.truth.elasticity
    sales_rows = labels_rows = zone_price_rows = 0
    written: list[Path] = []
    with paths[ZONE_PRICES_FILE].open("w", newline="") as zone_file, paths[LABELS_FILE].open("w", newline="") as label_file, \
            paths[TRUTH_FILE].open("w", newline="") as truth_file:
        zone_file.write(",".join(ZONE_PRICE_COLUMNS) + "\n")
        truth_file.write(",".join(TRUTH_COLUMNS) + "\n")
        label_header = True
        for z in range(zones):
            # The zone's prices: today's, then a year of them (shared by its stores day by day).
            here, differs = _zone_current(current, cost, eligible, rng_zone_prices)
            pd.DataFrame({"zone": zone_id[z], "sku": sku[differs], "price_cents": here[differs]}).to_csv(
                zone_file, header=False, index=False, lineterminator="\n")
            zone_price_rows += int(differs.sum())
            rng_prices, rng_promo, rng_offsets = (np.random.default_rng(s) for s in zone_seqs[z].spawn(3))
            price, promo = _promotions(_regular_prices(here, cost, days, rng_prices), dates, category, rng_promo)
            zone_e = chain_e + zone_level[z] + rng_offsets.normal(0, ZONE_SKU_SPREAD, skus)
            for s in np.flatnonzero(zone_of == z):
                rng_offset, rng_sales, rng_stock, rng_labels = (np.random.default_rng(q) for q in store_seqs[s].spawn(4))
                elasticity = np.round(_bounded(zone_e + store_level[s] + rng_offset.normal(0, STORE_SKU_SPREAD, skus)), 4)
                base = np.round(chain.truth.base_units * traffic[s], 4)
                truth = DemandTruth(sku=sku, category=category, base_units=base,
                                    ref_price_cents=chain.truth.ref_price_cents, elasticity=elasticity)
                market = Market(truth, chain.categories, chain.trend_origin)  # this store's shoppers
                sales = _draw_sales(market, sku, price, promo, dates, rng_sales, rng_stock)
                folder = partition_dir(out, store_id[s])
                folder.mkdir(parents=True)
                path = folder / PART_FILE
                pq.write_table(_sales_table(store_id[s], sku, dates, sales.units, sales.stock, price, promo),
                               path, compression="zstd")
                written.append(path)
                sales_rows += sales.units.size
                labels = _labels(sku, store_id[s], gateways, rng_labels)
                labels["label_id"] = store_id[s] + "-" + labels["label_id"]
                labels.to_csv(label_file, header=label_header, index=False, lineterminator="\n")
                label_header = False
                labels_rows += len(labels)
                pd.DataFrame(
                    {"store": store_id[s], "zone": zone_id[z], "sku": sku, "elasticity": elasticity,
                     "base_units": base, "zone_elasticity": np.round(_bounded(zone_e), 4), "chain_elasticity": chain_e},
                    columns=TRUTH_COLUMNS,
                ).to_csv(truth_file, header=False, index=False, lineterminator="\n")
    chain_path, categories_path = chain.save(out / TRUTH_CHAIN_FILE)
    paths.update({chain_path.name: chain_path, categories_path.name: categories_path, SALES_DIR: out / SALES_DIR})
    meta = {
        "seed": seed, "stores": stores, "zones": zones, "skus": skus, "days": days,
        "start_date": start_date.isoformat(), "end_date": end_date.isoformat(),
        "trend_origin": chain.trend_origin.isoformat(), "currency": CURRENCY, "timezone": TIMEZONE,
        "gateways": gateways, "partition_key": PARTITION_KEY,
        "spreads": {"traffic_sigma": TRAFFIC_SIGMA, "zone_level": ZONE_LEVEL_SPREAD, "zone_sku": ZONE_SKU_SPREAD,
                    "store_level": STORE_LEVEL_SPREAD, "store_sku": STORE_SKU_SPREAD},
        "zone_prices": {"share": ZONE_PRICE_SHARE, "step": list(ZONE_PRICE_STEP)},
        "elasticity_bounds": [MIN_ELASTICITY, MAX_ELASTICITY],
        "chain_truth_files": [chain_path.name, categories_path.name],
        "zone_levels": {zone_id[z]: round(float(zone_level[z]), 6) for z in range(zones)},
        "store_levels": {
            store_id[s]: {"zone": zone_id[zone_of[s]], "traffic": round(float(traffic[s]), 6),
                          "elasticity_level": round(float(store_level[s]), 6)}
            for s in range(stores)
        },
    }
    paths[TRUTH_CHAIN_JSON] = out / TRUTH_CHAIN_JSON
    paths[TRUTH_CHAIN_JSON].write_text(json.dumps(meta, indent=2) + "\n")
    files = [p for name, p in paths.items() if name != SALES_DIR] + written
    return ChainSummary(
        stores=stores, zones=zones, skus=skus, days=days, sales_rows=sales_rows, labels=labels_rows,
        zone_price_rows=zone_price_rows, start_date=start_date, end_date=end_date, bytes=_disk_bytes(files),
        paths=paths, seconds=time.perf_counter() - started,
    )
