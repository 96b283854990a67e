"""A deterministic sample store: products, a year of daily sales, labels and the demand truth.

``generate_store(out_dir, seed=7)`` writes products.csv, sales.csv, labels.csv, competitors.csv
(the public data contracts of pricing.core.data), truth.csv + truth_categories.csv (the market's
demand truth, which the engine must never read) and store.json. The same arguments give
byte-identical files.

Current prices sit at 15–75% over cost, while the true elasticity e puts the profit optimum at
cost * e / (e + 1): for most SKUs the optimum is above the current price, for some below.
Prices end in .99 or .49, except a few current prices set by hand (.79, .29, .95).

products.csv links SKUs for the pricing rules (one SKU per item, the lowest, joins a family or
ladder: a large store holds the same item under several SKUs):

- family: the variants (flavours) of one item of a brand, e.g. "Alpine Organic Butter 250 g"
  and "Alpine Butter 250 g", for FAMILY_GROUP_SHARE of the items that have 2+ variants (about
  9% of 2,000 SKUs); they share one current price (the highest of theirs).
- ladder: the sizes of one line (brand, variant, kind), about 19% of 2,000 SKUs; a larger size
  costs more in total and less per unit.
- tier: each category's PRIVATE_LABEL brand (its lowest price factor) is priced at least
  TIER_GAP below the cheapest national-brand item of the same kind and size (the same variant
  where there is one), which its tier names (about 19% of 2,000 SKUs).

Prices are moved only where a group needs it (about 10% of 2,000 SKUs), to .49/.99 prices at
least cost * MIN_MARKUP; a group that cannot hold that way is left out. The demand truth is
drawn as before (same draws) with the moved price as the SKU's reference price, and the price
history ends at it. competitors.csv: COMPETITOR_SHARE of SKUs have 1-4 prices (ending in 9,
around the current price) from one or both COMPETITORS in the last COMPETITOR_DAYS.

The price history has a few regular moves a year per SKU, the SKU's own promo weeks, and 3-5
category event weeks a year in which 30-50% of a category's SKUs are on promo together (so the
category price index of simulator.market really moves). Sales come from the market truth:
substitutes' prices, per-category trend (its origin is the first day of the history, also in
store.json) and negative binomial noise, censored by stock: sales.csv has a ``stock`` column
(units available that day, simulator.market.draw_stock: about 3% of SKU-days short, in runs of
1-4 days) and units = min(demand, stock).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from pricing.core.data import (
    COMPETITOR_COLUMNS,
    COMPETITORS_FILE,
    LABEL_COLUMNS,
    LABELS_FILE,
    PRODUCT_COLUMNS,
    PRODUCT_OPTIONAL,
    PRODUCTS_FILE,
    SALES_COLUMNS,
    SALES_FILE,
    TAG_TYPES,
)
from simulator.market import Market, days_between, draw_stock, weekday_and_doy

STORE_FILE = "store.json"
CURRENCY = "EUR"
MISSING_COST_SHARE = 0.005
OFF_ENDINGS = (79, 29, 95)  # hand-set current prices outside the default .99/.49 endings
OFF_ENDING_SHARE = 0.03
TAG_SHARES = (0.15, 0.70, 0.15)  # 1.54", 2.9", 4.2"
SKU_SPACE = 200_000  # SKU numbers are drawn from 1..SKU_SPACE-1, six digits, zero-padded
SKU_CHUNK = 4096  # SKUs per block when drawing sales (bounds memory)
REGULAR_MOVES_PER_YEAR = 6.0
SALES_WRITTEN = [*SALES_COLUMNS, "stock"]  # the columns of the sales.csv we write
EVENTS_PER_YEAR = (3.0, 5.0)  # category event weeks a year
EVENT_SHARE = (0.30, 0.50)  # share of the category's SKUs on promo in an event week
FAMILY_GROUP_SHARE = 0.3  # share of the possible families (2+ variants of one item) that are families
MIN_MARKUP = 1.08  # a price a group moves stays at least cost * MIN_MARKUP (108/100)
TIER_GAP = 0.10  # a private-label price is at least this far below its national reference
COMPETITORS = ("compA", "compB")
COMPETITOR_SHARE = 0.40  # share of SKUs with competitor prices
COMPETITOR_DAYS = 30  # observations fall in the last days of the history
COMPETITOR_OBSERVATIONS = 4  # at most, per SKU and competitor (at least 1)
COMPETITOR_SIGMA = (0.07, 0.04)  # log spread around the current price: per competitor, per observation
_NO_CAP = 10**9  # an upper price bound that binds nothing


class Kind(NamedTuple):
    name: str
    sizes: tuple[str, ...]  # size as written in products.csv, the first is the reference size
    unit: str
    cost_cents: int  # typical cost at the reference size


class Category(NamedTuple):
    share: float  # share of the assortment
    markup: tuple[float, float]  # range of current markups over cost
    brands: tuple[tuple[str, float], ...]  # name, price factor
    variants: tuple[tuple[str, float], ...]  # name prefix, cost factor
    kinds: tuple[Kind, ...]


_PLAIN = (("", 1.0),) * 3
CATALOGUE: dict[str, Category] = {
    "dairy": Category(0.13, (0.15, 0.45),
        (("Alpine", 1.15), ("Meadowfield", 1.0), ("Nordhof", 0.9), ("Vallee", 1.3)),
        _PLAIN + (("Organic ", 1.3), ("Lactose-Free ", 1.2)),
        (Kind("Whole Milk", ("1", "1.5"), "l", 85), Kind("Semi-Skimmed Milk", ("1", "0.5"), "l", 80),
         Kind("Greek Yogurt", ("500", "150"), "g", 120), Kind("Butter", ("250", "500"), "g", 180),
         Kind("Gouda Slices", ("150", "400"), "g", 140), Kind("Cream Cheese", ("200",), "g", 95),
         Kind("Eggs", ("10", "6"), "pcs", 210), Kind("Whipping Cream", ("200", "500"), "ml", 70))),
    "bakery": Category(0.08, (0.30, 0.65),
        (("Goldkorn", 1.0), ("Hearthstone", 1.2), ("Le Fournil", 1.35), ("Sunrise", 0.85)),
        _PLAIN + (("Wholegrain ", 1.1), ("Organic ", 1.3)),
        (Kind("Sourdough Bread", ("750", "500"), "g", 160), Kind("Toast Bread", ("500", "750"), "g", 90),
         Kind("Croissants", ("4", "6"), "pcs", 150), Kind("Rye Bread", ("500", "1000"), "g", 120),
         Kind("Bagels", ("4",), "pcs", 140), Kind("Muffins", ("4", "6"), "pcs", 170),
         Kind("Pretzel Rolls", ("6",), "pcs", 130))),
    "produce": Category(0.10, (0.35, 0.75),
        (("Green Valley", 1.0), ("Fresh Fields", 0.9), ("Orchard Lane", 1.15), ("Terra", 1.25)),
        _PLAIN + (("Organic ", 1.4),),
        (Kind("Bananas", ("1",), "kg", 110), Kind("Apples", ("1", "1.5"), "kg", 150),
         Kind("Tomatoes", ("500",), "g", 120), Kind("Carrots", ("1", "2"), "kg", 70),
         Kind("Avocados", ("2",), "pcs", 150), Kind("Salad Mix", ("200",), "g", 90),
         Kind("Strawberries", ("500", "250"), "g", 220), Kind("Potatoes", ("2.5", "1.5"), "kg", 170))),
    "beverages": Category(0.15, (0.20, 0.60),
        (("Blue Spring", 0.85), ("Citrus Bay", 1.0), ("Kaffee Haus", 1.3), ("Tea Garden", 1.1)),
        _PLAIN + (("Light ", 1.0), ("Organic ", 1.3)),
        (Kind("Sparkling Water", ("1.5", "0.75"), "l", 30), Kind("Orange Juice", ("1", "1.5"), "l", 120),
         Kind("Cola", ("1.5", "0.33"), "l", 90), Kind("Ground Coffee", ("500", "250"), "g", 420),
         Kind("Green Tea", ("20",), "pcs", 140), Kind("Apple Spritzer", ("1",), "l", 70),
         Kind("Iced Tea", ("500", "1500"), "ml", 60))),
    "snacks": Category(0.15, (0.25, 0.65),
        (("Crunchy", 1.0), ("Nutty Co", 1.15), ("Salto", 0.85), ("Choco Bella", 1.3)),
        _PLAIN + (("Sea Salt ", 1.05), ("Organic ", 1.3)),
        (Kind("Potato Chips", ("150", "200"), "g", 95), Kind("Salted Peanuts", ("200", "500"), "g", 110),
         Kind("Dark Chocolate", ("100", "200"), "g", 90), Kind("Pretzel Sticks", ("250",), "g", 70),
         Kind("Granola Bars", ("6",), "pcs", 160), Kind("Tortilla Chips", ("200",), "g", 100),
         Kind("Gummy Bears", ("200", "500"), "g", 75))),
    "frozen": Category(0.10, (0.20, 0.55),
        (("Polar", 1.0), ("Frostway", 0.85), ("Nonna's", 1.25), ("Iceland Bay", 1.1)),
        _PLAIN + (("Family Pack ", 1.6),),
        (Kind("Pizza Margherita", ("350",), "g", 150), Kind("Vanilla Ice Cream", ("900", "500"), "ml", 210),
         Kind("Garden Peas", ("750", "450"), "g", 120), Kind("Fish Fingers", ("450",), "g", 230),
         Kind("French Fries", ("1", "2.5"), "kg", 140), Kind("Leaf Spinach", ("450",), "g", 95))),
    "household": Category(0.14, (0.20, 0.55),
        (("Sparkle", 1.0), ("CleanCo", 0.85), ("EcoHome", 1.25), ("Brite", 1.1)),
        _PLAIN + (("Sensitive ", 1.1), ("Eco ", 1.25)),
        (Kind("Dish Soap", ("500", "1000"), "ml", 85), Kind("Laundry Detergent", ("1.5", "3"), "l", 420),
         Kind("Paper Towels", ("4", "8"), "pcs", 190), Kind("Toilet Paper", ("8", "16"), "pcs", 260),
         Kind("Trash Bags", ("20", "50"), "pcs", 140), Kind("Sponges", ("5", "10"), "pcs", 90),
         Kind("Glass Cleaner", ("750",), "ml", 130))),
    "personal_care": Category(0.15, (0.25, 0.65),
        (("Pure Skin", 1.2), ("Mint Fresh", 0.9), ("Silkhair", 1.1), ("Naturelle", 1.35)),
        _PLAIN + (("Sensitive ", 1.15), ("Men's ", 1.05)),
        (Kind("Shampoo", ("250", "400"), "ml", 150), Kind("Toothpaste", ("75", "125"), "ml", 80),
         Kind("Shower Gel", ("250", "500"), "ml", 95), Kind("Deodorant", ("150",), "ml", 130),
         Kind("Hand Soap", ("300", "500"), "ml", 85), Kind("Body Lotion", ("400",), "ml", 240),
         Kind("Toothbrushes", ("2", "4"), "pcs", 140))),
}
UNIT_LABEL = {"g": "g", "kg": "kg", "ml": "ml", "l": "L", "pcs": "pcs"}
# Per category, the store's own brand: the one with the lowest price factor.
PRIVATE_LABEL: dict[str, str] = {cat: min(spec.brands, key=lambda b: b[1])[0] for cat, spec in CATALOGUE.items()}


@dataclass(frozen=True)
class StoreSummary:
    """What generate_store wrote."""

    store: str
    skus: int
    days: int
    sales_rows: int
    labels: int
    missing_cost: int
    start_date: date
    end_date: date
    short_days: int = 0  # SKU-days with short stock
    censored_rows: int = 0  # SKU-days where demand exceeded stock (units = stock)
    family_skus: int = 0  # SKUs with a family
    ladder_skus: int = 0  # SKUs with a ladder
    tier_skus: int = 0  # private-label SKUs with a national reference (tier)
    competitor_skus: int = 0  # SKUs with competitor prices
    competitor_rows: int = 0  # rows of competitors.csv
    paths: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0


# ---- prices -------------------------------------------------------------------------------


def round_to_ending(cents: np.ndarray) -> np.ndarray:
    """Nearest price ending in .49 or .99 (at least 0.49)."""
    return np.maximum(np.rint((np.asarray(cents, dtype=np.float64) + 1) / 50) * 50 - 1, 49).astype(np.int64)


def ceil_to_ending(cents: np.ndarray) -> np.ndarray:
    """Smallest price ending in .49 or .99 that is >= cents."""
    return np.maximum(np.ceil((np.asarray(cents, dtype=np.float64) + 1) / 50) * 50 - 1, 49).astype(np.int64)


def floor_to_nine(cents: np.ndarray) -> np.ndarray:
    """Largest price ending in 9 (…9 cents) that is <= cents: how promo prices are set."""
    return np.maximum(np.floor((np.asarray(cents, dtype=np.float64) + 1) / 10) * 10 - 1, 9).astype(np.int64)


def _floor_to_ending(cents: np.ndarray) -> np.ndarray:
    """Largest price ending in .49 or .99 that is <= cents (below 0.49: -1, no such price)."""
    return (np.floor((np.asarray(cents, dtype=np.float64) + 1) / 50) * 50 - 1).astype(np.int64)


def _fit(price: np.ndarray, low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Prices moved into [low, high] (whole cents) as little as possible, and whether that worked.

    A price already inside stays (whatever its ending), else it moves to the nearest .49/.99
    price inside; where there is none, the price stays and ok is False.
    """
    price, low, high = (np.asarray(a, dtype=np.int64) for a in (price, low, high))
    inside = (price >= low) & (price <= high)
    candidate = np.where(price < low, ceil_to_ending(low), _floor_to_ending(high))
    ok = inside | ((candidate >= low) & (candidate <= high))
    return np.where(inside | ~ok, price, candidate), ok


# ---- catalogue ----------------------------------------------------------------------------


def _kinds_table() -> pd.DataFrame:
    """One row per (category, kind, size): the shelf items a SKU can be."""
    rows = []
    for cat, spec in CATALOGUE.items():
        for kind in spec.kinds:
            for size in kind.sizes:
                ratio = float(size) / float(kind.sizes[0])
                rows.append((cat, kind.name, size, kind.unit, kind.cost_cents * ratio**0.85, len(kind.sizes)))
    return pd.DataFrame(rows, columns=["category", "kind", "size", "unit", "cost", "n_sizes"])


def _draw_catalogue(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """sku, name, category, brand, size, unit, true cost (float cents), variant and kind for n products."""
    names = list(CATALOGUE)
    shares = np.array([CATALOGUE[c].share for c in names])
    category = np.array(names, dtype=object)[rng.choice(len(names), n, p=shares / shares.sum())]
    table = _kinds_table()
    # Pick a kind uniformly within the category, then one of its sizes.
    weight = 1.0 / table["n_sizes"].to_numpy()
    pick = np.empty(n, dtype=np.int64)
    for cat in names:
        rows = np.flatnonzero(table["category"].to_numpy() == cat)
        mine = np.flatnonzero(category == cat)
        w = weight[rows] / weight[rows].sum()
        pick[mine] = rows[rng.choice(len(rows), len(mine), p=w)]
    items = table.iloc[pick].reset_index(drop=True)
    brand = np.empty(n, dtype=object)
    variant = np.empty(n, dtype=object)
    factor = np.ones(n)
    for cat in names:
        mine = np.flatnonzero(category == cat)
        spec = CATALOGUE[cat]
        b = rng.integers(0, len(spec.brands), len(mine))
        v = rng.integers(0, len(spec.variants), len(mine))
        brand[mine] = np.array([x[0] for x in spec.brands], dtype=object)[b]
        variant[mine] = np.array([x[0] for x in spec.variants], dtype=object)[v]
        factor[mine] = np.array([x[1] for x in spec.brands])[b] * np.array([x[1] for x in spec.variants])[v]
    cost = np.maximum(items["cost"].to_numpy() * factor * rng.lognormal(0, 0.12, n), 15.0)
    sku_numbers = np.sort(rng.choice(np.arange(1, SKU_SPACE), n, replace=False))
    unit_label = items["unit"].map(UNIT_LABEL)
    name = brand + " " + variant + items["kind"].to_numpy(dtype=object) + " " + items["size"].to_numpy(dtype=object)
    return pd.DataFrame(
        {
            "sku": [f"{s:06d}" for s in sku_numbers],
            "name": name + " " + unit_label.to_numpy(dtype=object),
            "category": category,
            "brand": brand,
            "size": items["size"].to_numpy(dtype=object),
            "unit": items["unit"].to_numpy(dtype=object),
            "cost": cost,
            "variant": variant,
            "kind": items["kind"].to_numpy(dtype=object),
        }
    )


def _current_prices(catalogue: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Integer cost and current shelf price per product, at a category-typical markup."""
    n = len(catalogue)
    low = catalogue["category"].map(lambda c: CATALOGUE[c].markup[0]).to_numpy(dtype=np.float64)
    high = catalogue["category"].map(lambda c: CATALOGUE[c].markup[1]).to_numpy(dtype=np.float64)
    cost = np.rint(catalogue["cost"].to_numpy()).astype(np.int64)
    price = round_to_ending(cost * (1 + rng.uniform(low, high)))
    floor = cost * 1.08
    price = np.where(price < floor, ceil_to_ending(floor), price)
    # A few prices were set by hand with another ending.
    off = rng.random(n) < OFF_ENDING_SHARE
    ending = np.array(OFF_ENDINGS)[rng.integers(0, len(OFF_ENDINGS), n)]
    hand = (price // 100) * 100 + ending
    hand = np.where(hand < floor, hand + 100, hand)
    return cost, np.where(off, hand, price)


# ---- price groups: families, ladders, tiers -------------------------------------------------


class PriceGroups(NamedTuple):
    """Current prices that hold within the groups, and each SKU's family, ladder and tier ("": none)."""

    price: np.ndarray  # int64
    family: np.ndarray  # object (str)
    ladder: np.ndarray
    tier: np.ndarray


def _group_codes(frame: pd.DataFrame, keys: list[str], member: np.ndarray) -> np.ndarray:
    """Per row, the code of its group by ``keys`` among the ``member`` rows (-1: not a member)."""
    codes = np.full(len(frame), -1, dtype=np.int64)
    if member.any():
        codes[member] = frame.loc[member, keys].groupby(keys, sort=True).ngroup().to_numpy()
    return codes


def _at_least_two(codes: np.ndarray) -> np.ndarray:
    """Group codes with the groups of fewer than two rows left out (-1)."""
    count = np.bincount(codes[codes >= 0], minlength=int(codes.max(initial=0)) + 1)
    return np.where((codes >= 0) & (count[np.maximum(codes, 0)] >= 2), codes, -1)


def _per_group(codes: np.ndarray, values: dict[str, tuple[np.ndarray, str]]) -> pd.DataFrame:
    """Aggregates of per-row values by group code (rows with code -1 are left out)."""
    use = codes >= 0
    frame = pd.DataFrame({name: column[use] for name, (column, _) in values.items()})
    return frame.groupby(codes[use], sort=True).agg({name: how for name, (_, how) in values.items()})


def _settle(
    price: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    family: np.ndarray,
    ladder: np.ndarray,
    size: np.ndarray,
    rank: np.ndarray,
    subset: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Move the ``subset`` rows' prices (in place) so their families and ladders hold.

    Each price stays in [low, high]. A family takes its highest price (moved into every
    member's bounds); a family whose bounds do not meet is dissolved. Ladders are settled size
    by size (``rank``: the size's rank within its kind), smallest first: a SKU or family moves into
    what the ladders' previous sizes leave open (more in total, less per unit), as little as
    possible; a member that cannot leaves its ladder. Returns the family and ladder codes left.
    """
    family, ladder = family.copy(), ladder.copy()
    family[~subset], ladder[~subset] = -1, -1
    if (family >= 0).any():
        bounds = _per_group(family, {"price": (price, "max"), "low": (low, "max"), "high": (high, "min")})
        new, ok = _fit(bounds["price"].to_numpy(), bounds["low"].to_numpy(), bounds["high"].to_numpy())
        new_of, ok_of = np.zeros(bounds.index.max() + 1, dtype=np.int64), np.zeros(bounds.index.max() + 1, dtype=bool)
        new_of[bounds.index], ok_of[bounds.index] = new, ok
        member = family >= 0
        keep = member & ok_of[np.maximum(family, 0)]
        price[keep] = new_of[family[keep]]
        family[member & ~keep] = -1
    # A node is what has one price: a family, or a SKU outside families.
    node = np.where(family >= 0, family, family.max(initial=-1) + 1 + np.arange(len(price)))
    n_ladders = int(ladder.max(initial=-1)) + 1
    last_price, last_size = np.full(n_ladders, np.nan), np.full(n_ladders, np.nan)
    for r in range(int(rank.max(initial=-1)) + 1):
        rows = np.flatnonzero((ladder >= 0) & (rank == r))
        if not len(rows):
            continue
        prev_price, prev_size = last_price[ladder[rows]], last_size[ladder[rows]]
        first = np.isnan(prev_price)
        row_low = np.where(first, 0, np.nan_to_num(prev_price) + 1)
        per_unit = np.nan_to_num(prev_price * size[rows] / prev_size) * (1 - 1e-9)  # strictly less per unit
        row_high = np.where(first, _NO_CAP, np.ceil(per_unit) - 1)
        here = np.flatnonzero(subset & np.isin(node, node[rows]))  # every member of the nodes
        both = np.concatenate([node[rows], node[here]])
        bounds = pd.DataFrame(
            {"low": np.concatenate([row_low, low[here]]), "high": np.concatenate([row_high, high[here]])}
        ).groupby(both, sort=True).agg({"low": "max", "high": "min"})
        current = pd.Series(price[here]).groupby(node[here], sort=True).first()
        new, ok = _fit(current.to_numpy(), bounds["low"].to_numpy(), bounds["high"].to_numpy())
        at = bounds.index.get_indexer(node[here])
        price[here] = np.where(ok[at], new[at], price[here])
        moved = price[rows]
        holds = first | ((moved > prev_price) & (moved * prev_size < prev_price * size[rows]))
        ladder[rows[~holds]] = -1
        kept = rows[holds]
        last_price[ladder[kept]], last_size[ladder[kept]] = price[kept], size[kept]
    return family, _at_least_two(ladder)


def _tier_references(
    catalogue: pd.DataFrame, price: np.ndarray, private: np.ndarray, item: np.ndarray
) -> np.ndarray:
    """Per SKU, the position of its national-brand reference (-1: none).

    A private-label SKU is priced against the cheapest national-brand item of its category, kind
    and size, of the same variant where there is one (ties: the lowest SKU). ``item`` marks the
    one SKU per item that can be a reference (so a large store's many copies of an item do not
    make the reference the cheapest outlier).
    """
    items = catalogue[["category", "kind", "size", "variant"]].assign(price=price, pos=np.arange(len(price)))
    national = items[~private & item].sort_values(["price", "pos"], kind="stable")
    ref = np.full(len(price), -1, dtype=np.int64)
    if not len(national) or not private.any():
        return ref
    mine = items[private]
    for keys in (["category", "kind", "size"], ["category", "kind", "size", "variant"]):  # the latter wins
        best = national.drop_duplicates(keys)[[*keys, "pos"]].rename(columns={"pos": "ref"})
        found = mine[keys].merge(best, on=keys, how="left")["ref"].to_numpy()
        ref[mine["pos"].to_numpy()] = np.where(np.isnan(found), ref[mine["pos"].to_numpy()], np.nan_to_num(found))
    return ref


def _group_ids(prefix: str, codes: np.ndarray, skus: np.ndarray) -> np.ndarray:
    """Group codes as text ids: the prefix and the group's lowest SKU ("" outside groups)."""
    ids = np.full(len(codes), "", dtype=object)
    member = codes >= 0
    if member.any():
        lowest = pd.Series(skus[member]).groupby(codes[member]).transform("min").to_numpy(dtype=object)
        ids[member] = prefix + lowest
    return ids


def _price_groups(
    catalogue: pd.DataFrame, cost: np.ndarray, price: np.ndarray, rng: np.random.Generator
) -> PriceGroups:
    """Families, ladders and tiers, and current prices moved so that each of them holds.

    Only one SKU per item (category, brand, variant, kind, size; the lowest SKU) joins a family
    or ladder. A family: one item of a brand in 2+ variants (flavours), FAMILY_GROUP_SHARE of
    those possible; it takes its highest price. A ladder: one line (brand, variant, kind) in 2+
    sizes; the larger size moves until it costs more in total and less per unit. Per category the
    PRIVATE_LABEL brand's SKUs get a tier (see _tier_references) and a price at least TIER_GAP
    below it. Moved prices end in .49/.99 and stay >= cost * MIN_MARKUP; a group (or member)
    that cannot hold that way is left out. National brands are settled first, as the tiers follow them.
    """
    n = len(catalogue)
    skus = catalogue["sku"].to_numpy(dtype=object)
    size = catalogue["size"].astype(float).to_numpy()
    item = ~catalogue.duplicated(["category", "brand", "variant", "kind", "size"]).to_numpy()
    family = _at_least_two(_group_codes(catalogue, ["category", "brand", "kind", "size"], item))
    chosen = rng.random(int(family.max(initial=-1)) + 1) < FAMILY_GROUP_SHARE
    member = family >= 0
    family[member] = np.where(chosen[family[member]], family[member], -1)
    ladder = _at_least_two(_group_codes(catalogue, ["category", "brand", "variant", "kind"], item))
    rank = catalogue.assign(value=size).groupby(["category", "kind"])["value"].rank(method="dense")
    rank = rank.to_numpy(dtype=np.int64) - 1
    low = (cost.astype(np.int64) * round(MIN_MARKUP * 100) + 99) // 100
    high = np.full(n, _NO_CAP, dtype=np.int64)
    private = catalogue["brand"].to_numpy(dtype=object) == catalogue["category"].map(PRIVATE_LABEL).to_numpy(dtype=object)
    price = price.astype(np.int64)  # a copy
    fam_national, lad_national = _settle(price, low, high, family, ladder, size, rank, ~private)
    ref = _tier_references(catalogue, price, private, item)
    tiered = np.flatnonzero(ref >= 0)
    high[tiered] = price[ref[tiered]] * round((1 - TIER_GAP) * 100) // 100
    fitted, ok = _fit(price[tiered], low[tiered], high[tiered])
    price[tiered[ok]] = fitted[ok]
    high[tiered[~ok]] = _NO_CAP
    ref[tiered[~ok]] = -1
    fam_private, lad_private = _settle(price, low, high, family, ladder, size, rank, private)
    family = np.where(private, fam_private, fam_national)
    ladder = np.where(private, lad_private, lad_national)
    tier = np.where(ref >= 0, skus[np.maximum(ref, 0)], "").astype(object)
    return PriceGroups(price, _group_ids("F", family, skus), _group_ids("L", ladder, skus), tier)


# ---- competitors --------------------------------------------------------------------------


def _competitor_prices(
    skus: np.ndarray, current: np.ndarray, end_date: date, days: int, rng: np.random.Generator
) -> pd.DataFrame:
    """competitors.csv rows: COMPETITOR_SHARE of SKUs seen at one or both COMPETITORS.

    Each competitor sees a SKU 1..COMPETITOR_OBSERVATIONS times on distinct days of the last
    COMPETITOR_DAYS of the history, around its current price (a level per competitor, a little
    noise per observation), on prices ending in 9. Sorted by date, sku, competitor.
    """
    covered = np.flatnonzero(rng.random(len(skus)) < COMPETITOR_SHARE)
    both = rng.random(len(covered)) < 0.5
    alone = rng.integers(0, len(COMPETITORS), len(covered))  # who, when only one
    sku_of = np.concatenate([covered, covered[both]])
    competitor = np.concatenate([np.where(both, 0, alone), np.ones(int(both.sum()), dtype=np.int64)])
    pairs = len(sku_of)
    level = rng.normal(0, COMPETITOR_SIGMA[0], pairs)
    window = min(COMPETITOR_DAYS, days)
    most = min(COMPETITOR_OBSERVATIONS, window)
    count = np.minimum(rng.integers(1, COMPETITOR_OBSERVATIONS + 1, pairs), most)
    day_order = np.argsort(rng.random((pairs, window)), axis=1)[:, :most]  # distinct days
    pair, slot = np.nonzero(np.arange(most)[None, :] < count[:, None])
    noise = rng.normal(0, COMPETITOR_SIGMA[1], len(pair))
    seen = current[sku_of[pair]] * np.exp(level[pair] + noise)
    price = np.maximum(np.rint((seen + 1) / 10) * 10 - 1, 9).astype(np.int64)
    day = np.datetime64(end_date, "D") - day_order[pair, slot].astype("timedelta64[D]")
    frame = pd.DataFrame(
        {
            "date": np.datetime_as_string(day, unit="D").astype(object),
            "sku": skus[sku_of[pair]],
            "competitor": np.array(COMPETITORS, dtype=object)[competitor[pair]],
            "price_cents": price,
        },
        columns=COMPETITOR_COLUMNS,
    )
    return frame.sort_values(["date", "sku", "competitor"], kind="stable").reset_index(drop=True)


# ---- price history ------------------------------------------------------------------------


def _move(price: np.ndarray, log_step: np.ndarray) -> np.ndarray:
    """Price after a regular move of exp(log_step), on .49/.99 endings.

    Where rounding would undo the move, take one 50-cent step instead if that is at most 35%.
    """
    target = round_to_ending(price * np.exp(log_step))
    step = np.where(log_step > 0, 50, -50)
    alt = price + step
    use_step = (target == price) & (log_step != 0) & (alt >= 49) & (50 <= 0.35 * price)
    return np.where(use_step, alt, target)


def _regular_prices(current: np.ndarray, cost: np.ndarray, days: int, rng: np.random.Generator) -> np.ndarray:
    """(n, days) regular shelf prices: several ±5–25% moves a year, ending at the current price.

    A store on electronic labels reprices often: each SKU spends the year in a few price
    regimes (about REGULAR_MOVES_PER_YEAR moves), each regime 5–25% above or below today's
    price (not a random walk, so prices stay near today's), the last one today's price.
    """
    n = len(current)
    margin = min(14, days // 4)
    rate = rng.gamma(4.0, REGULAR_MOVES_PER_YEAR / 4.0, n) * days / 365.0
    count = rng.poisson(rate) if days - margin > margin else np.zeros(n, dtype=np.int64)
    slots = max(int(count.max(initial=0)), 1)
    valid = np.arange(slots)[None, :] < count[:, None]
    change_day = rng.integers(margin, max(days - margin, margin + 1), (n, slots))
    change_day = np.where(valid, change_day, days)  # unused slots never happen
    sign = np.where(rng.random((n, slots)) < 0.5, 1.0, -1.0)
    log_step = np.where(valid, np.log1p(sign * rng.uniform(0.05, 0.25, (n, slots))), 0.0)
    # Price of regime r (after r moves): around the current price; the last regime is it.
    regimes = np.repeat(current[:, None].astype(np.int64), slots + 1, axis=1)
    floor = ceil_to_ending(cost * 1.05)
    for r in range(slots):
        around = np.maximum(_move(current.astype(np.int64), log_step[:, r]), floor)
        regimes[:, r] = np.where(r < count, around, current)
    regime = np.zeros((n, days), dtype=np.int8)
    day = np.arange(days)
    for j in range(slots):
        regime += day[None, :] >= change_day[:, j : j + 1]
    regimes = regimes.astype(np.int32)
    out = np.empty((n, days), dtype=np.int32)
    for lo in range(0, n, SKU_CHUNK):  # in blocks: the intp index copy would be 8 bytes a cell
        out[lo : lo + SKU_CHUNK] = np.take_along_axis(regimes[lo : lo + SKU_CHUNK], regime[lo : lo + SKU_CHUNK], axis=1)
    return out


def _promotions(
    regular: np.ndarray,
    dates: np.ndarray,
    category: np.ndarray,
    rng: np.random.Generator,
    *,
    events: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Promo weeks (Monday–Sunday) at 10–30% off; never in the week that ends the history.

    Each SKU has its own promo weeks (none for about a third of SKUs); with ``events`` each
    category also has event weeks with many of its SKUs on promo together.
    """
    n = len(regular)
    weekday, _ = weekday_and_doy(dates)
    monday = dates.astype(np.int64) - weekday
    week = (monday - monday[0]) // 7
    weeks = int(week[-1]) + 1
    per_year = np.where(rng.random(n) < 0.35, 0.0, rng.uniform(2.0, 6.0, n))
    promo_week = rng.random((n, weeks)) < (per_year / 52.0)[:, None]
    if events:
        promo_week |= _category_events(category, weeks, rng)
    promo_week[:, -1] = False
    discount = rng.uniform(0.10, 0.30, (n, weeks))
    promo = promo_week[:, week]
    s, d = np.nonzero(promo)
    price = regular.copy()
    price[s, d] = floor_to_nine(regular[s, d] * (1.0 - discount[s, week[d]]))
    return price, promo


def _category_events(category: np.ndarray, weeks: int, rng: np.random.Generator) -> np.ndarray:
    """(n, weeks): SKUs on promo in their category's event weeks.

    Each category gets EVENTS_PER_YEAR event weeks a year (pro rata, never the last week), and
    in each of them an EVENT_SHARE of its SKUs join.
    """
    codes, category_code = np.unique(category, return_inverse=True)
    n_cat, eligible = len(codes), max(weeks - 1, 0)
    count = np.rint(rng.uniform(*EVENTS_PER_YEAR, n_cat) * eligible / 52.0)
    rank = np.argsort(np.argsort(rng.random((n_cat, eligible)), axis=1), axis=1)  # a random order of weeks
    event = np.zeros((n_cat, weeks), dtype=bool)
    event[:, :eligible] = rank < count[:, None]
    share = rng.uniform(*EVENT_SHARE, (n_cat, weeks))
    return event[category_code] & (rng.random((len(category), weeks)) < share[category_code])


class Sales(NamedTuple):
    """The sales history drawn from the market: (n, days) units sold and stock."""

    units: np.ndarray  # int32, min(demand, stock)
    stock: np.ndarray  # int32
    short_days: int
    censored: int


def _draw_sales(
    market: Market,
    skus: np.ndarray,
    price: np.ndarray,
    promo: np.ndarray,
    dates: np.ndarray,
    rng_sales: np.random.Generator,
    rng_stock: np.random.Generator,
) -> Sales:
    """Units sold and stock from the market truth, what Market.simulate does, block by block.

    The category index needs every SKU's prices, so it is computed once for the whole (n, days)
    matrix (float32); expected units, stock and demand are then drawn per block of SKUs.
    """
    index = market.category_index(price, dtype=np.float32)
    units = np.empty(price.shape, dtype=np.int32)
    stock = np.empty(price.shape, dtype=np.int32)
    short = censored = 0
    for lo in range(0, len(skus), SKU_CHUNK):
        hi = lo + SKU_CHUNK
        mu = market.expected_units(skus[lo:hi], price[lo:hi], dates, promo[lo:hi], category_index=index[lo:hi])
        here = draw_stock(mu, rng_stock)
        demand = market.sample_around(skus[lo:hi], mu, rng=rng_sales)
        units[lo:hi] = np.minimum(demand, here)
        stock[lo:hi] = here
        short += int(np.count_nonzero(here <= mu))  # short stock is at most mu, ample far above
        censored += int(np.count_nonzero(demand > here))
    return Sales(units, stock, short, censored)


# ---- files --------------------------------------------------------------------------------


def _write_sales(
    path: Path,
    store: str,
    skus: np.ndarray,
    dates: np.ndarray,
    sales: Sales,
    price: np.ndarray,
    promo: np.ndarray,
) -> int:
    """sales.csv, date by date (all SKUs of a day, then the next day); returns the row count.

    Written by hand rather than DataFrame.to_csv, which is about 20x slower here. A day's text
    is one join over five pieces per line, all taken from lookup tables without building new
    strings: date | ",store,sku," | units | ",price," | "promo,stock\n".
    """
    units, stock = sales.units, sales.stock
    n, days = units.shape
    date_text = np.datetime_as_string(dates, unit="D").tolist()
    unit_text = np.array([str(i) for i in range(int(units.max(initial=0)) + 1)], dtype=object)
    price_text = np.array([f",{i}," for i in range(int(price.max(initial=0)) + 1)], dtype=object)
    tail_text = np.array(  # indexed by 2 * stock + promo
        [f"{flag},{i}\n" for i in range(int(stock.max(initial=0)) + 1) for flag in (0, 1)], dtype=object
    )
    pieces = np.empty((n, 5), dtype=object)
    pieces[:, 1] = [f",{store},{sku}," for sku in skus]
    with path.open("w", newline="") as handle:
        handle.write(",".join(SALES_WRITTEN) + "\n")
        for d in range(n and days):
            pieces[:, 0] = date_text[d]
            pieces[:, 2] = unit_text[units[:, d]]
            pieces[:, 3] = price_text[price[:, d]]
            pieces[:, 4] = tail_text[2 * stock[:, d] + promo[:, d]]
            handle.write("".join(pieces.ravel().tolist()))
    return n * days


def _labels(skus: np.ndarray, store: str, gateways: int, rng: np.random.Generator) -> pd.DataFrame:
    """One label per SKU; gateways take contiguous, equally large blocks of the shelf."""
    n = len(skus)
    gateway = (np.arange(n) * gateways) // max(n, 1) + 1
    tag = np.array(TAG_TYPES, dtype=object)[rng.choice(len(TAG_TYPES), n, p=TAG_SHARES)]
    return pd.DataFrame(
        {
            "label_id": "L" + pd.Series(skus, dtype=object),
            "store": store,
            "gateway": [f"gw-{g:02d}" for g in gateway],
            "sku": skus,
            "tag_type": tag,
        },
        columns=LABEL_COLUMNS,
    )


def _products(
    catalogue: pd.DataFrame, cost: np.ndarray, groups: PriceGroups, rng: np.random.Generator
) -> pd.DataFrame:
    """products.csv rows; about 0.5% (at least one from 200 SKUs) have no cost on file."""
    n = len(catalogue)
    missing = max(round(n * MISSING_COST_SHARE), 1 if n >= 200 else 0)
    shown = pd.array(cost, dtype="Int64")
    shown[rng.choice(n, missing, replace=False)] = pd.NA
    out = catalogue[["sku", "name", "category", "brand", "size", "unit"]].copy()
    out["cost_cents"] = shown
    out["price_cents"] = groups.price
    out["family"], out["ladder"], out["tier"] = groups.family, groups.ladder, groups.tier
    return out[PRODUCT_COLUMNS + PRODUCT_OPTIONAL]


def generate_store(
    out_dir: Path | str,
    *,
    skus: int = 2000,
    seed: int = 7,
    days: int = 365,
    gateways: int = 2,
    store: str = "store-001",
    end_date: date = date(2026, 11, 1),
    category_events: bool = True,
) -> StoreSummary:
    """Write a deterministic sample store into out_dir (see the module docstring).

    ``category_events=False`` leaves out the coordinated category promotions (for comparisons).
    """
    if not 1 <= skus < SKU_SPACE or days < 1 or gateways < 1:
        raise ValueError(f"need 1 <= skus < {SKU_SPACE}, days >= 1, gateways >= 1")
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rngs = np.random.default_rng(seed).spawn(9)  # the first 7 as before the last two were added
    rng_catalogue, rng_truth, rng_prices, rng_promo, rng_sales, rng_labels, rng_stock = rngs[:7]
    rng_groups, rng_competitors = rngs[7:]
    catalogue = _draw_catalogue(skus, rng_catalogue)
    cost, drawn = _current_prices(catalogue, rng_catalogue)
    groups = _price_groups(catalogue, cost, drawn, rng_groups)
    current = groups.price
    sku = catalogue["sku"].to_numpy(dtype=object)
    category = catalogue["category"].to_numpy(dtype=object)
    start_date = end_date - timedelta(days=days - 1)
    market = Market.draw(
        sku, category, current, rng_truth, trend_origin=start_date, brands=catalogue["brand"].to_numpy(dtype=object)
    )
    dates = days_between(start_date, end_date)
    regular = _regular_prices(current, cost, days, rng_prices)
    price, promo = _promotions(regular, dates, category, rng_promo, events=category_events)
    del regular
    sales = _draw_sales(market, sku, price, promo, dates, rng_sales, rng_stock)
    products = _products(catalogue, cost, groups, rng_catalogue)
    labels = _labels(sku, store, gateways, rng_labels)
    competitors = _competitor_prices(sku, current, end_date, days, rng_competitors)

    names = (PRODUCTS_FILE, SALES_FILE, LABELS_FILE, COMPETITORS_FILE, STORE_FILE)
    paths = {name: out / name for name in names}
    products.to_csv(paths[PRODUCTS_FILE], index=False, lineterminator="\n")
    rows = _write_sales(paths[SALES_FILE], store, sku, dates, sales, price, promo)
    labels.to_csv(paths[LABELS_FILE], index=False, lineterminator="\n")
    competitors.to_csv(paths[COMPETITORS_FILE], index=False, lineterminator="\n")
    truth_path, cat_path = market.save(out)
    paths.update({truth_path.name: truth_path, cat_path.name: cat_path})
    gateway_ids = [f"gw-{g:02d}" for g in range(1, gateways + 1)]
    meta = {
        "store": store,
        "currency": CURRENCY,
        "seed": seed,
        "skus": skus,
        "days": days,
        "start_date": start_date.isoformat(),
        "end_date": end_date.isoformat(),
        "trend_origin": market.trend_origin.isoformat(),
        "gateways": gateway_ids,
    }
    paths[STORE_FILE].write_text(json.dumps(meta, indent=2) + "\n")
    return StoreSummary(
        store=store,
        skus=skus,
        days=days,
        sales_rows=rows,
        labels=len(labels),
        missing_cost=int(products["cost_cents"].isna().sum()),
        start_date=start_date,
        end_date=end_date,
        short_days=sales.short_days,
        censored_rows=sales.censored,
        family_skus=int((groups.family != "").sum()),
        ladder_skus=int((groups.ladder != "").sum()),
        tier_skus=int((groups.tier != "").sum()),
        competitor_skus=int(competitors["sku"].nunique()),
        competitor_rows=len(competitors),
        paths=paths,
        seconds=time.perf_counter() - started,
    )
