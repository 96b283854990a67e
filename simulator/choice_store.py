"""A sample store whose shoppers follow the mixed-logit ChoiceMarket, sold through dirty receipts.

``generate_choice_store(out_dir, skus=128, seed=7)`` writes, deterministically for a seed
(the same arguments give byte-identical files):

- products.csv (the data contract of pricing.core.data): sku ("C" + 6 digits), name, category
  (categories of substitutes: cereal, coffee, yogurt, ...; 6-20 SKUs each up to ~400 SKUs,
  more beyond), brand, size, unit, cost_cents (price * U(0.55, 0.75)), price_cents: the SKU's
  last regular (non-promo) price of the history, which is also the truth's ref_price_cents, so
  the truth elasticities are at today's shelf prices. Within a category a premium SKU costs up
  to about 2.5x a value SKU.
- receipts.csv: one line per purchase, columns RECEIPT_COLUMNS =
  ``timestamp,store,sku,quantity,unit_price_cents,promo,receipt,line``; timestamp
  ``YYYY-MM-DDTHH:MM:SS`` store-local within opening hours (08:00-21:00), promo 1/0, receipt an
  id ``RYYYYMMDD-NNNNN`` (numbered in time order within the day), line 1, 2, ... within it.
  Lines exist only for sales (no zero rows); quantity 1, sometimes 2. Baskets mix categories.
- labels.csv: one 2.9" label per SKU, gateways gw-1..gw-N in contiguous blocks.
- truth.csv + truth_choice.json (``ChoiceMarket.save``): the demand truth the engine never reads.

Prices change rarely: each SKU's regular price changes 1-4 times a year (pro rata for shorter
histories) by 5-15% up or down, on prices ending in 9, plus a few promo weeks a year (Monday to
Sunday, 10-30% off, promo=1; never the last week). Units come from ``ChoiceMarket.draw_purchases``
with that day's prices and promos of every SKU of the category.

Dirt (``dirt=True``), on top of the sales, so netting does not change what was sold:

- voids, ~VOID_SHARE of sale lines: right after the sale line, the same line scanned again and
  then voided (the same line with negative quantity, a few seconds later, the next line number).
- refunds, ~REFUND_SHARE of sale lines: returned goods, a negative-quantity line 1-10 days later
  on a receipt of its own, at the original unit price and promo flag (dropped past the history).
- duplicates, ~DUPLICATE_SHARE of all lines: exported twice (an exact duplicate row).

Units sold on a day (what the truth and an evaluation compare to) = the day's receipt lines net
of voids, duplicates removed, refunds not subtracted: ``ChoiceStoreSummary.sales`` holds them per
SKU-day (with prices, promo and the expected units). The store has no stock-outs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from pricing.core.data import LABEL_COLUMNS, LABELS_FILE, PRODUCT_COLUMNS, PRODUCTS_FILE
from simulator.choice_market import CHOICE_FILE, ChoiceMarket
from simulator.market import TRUTH_FILE, days_between, weekday_and_doy

RECEIPTS_FILE = "receipts.csv"
RECEIPT_COLUMNS = ["timestamp", "store", "sku", "quantity", "unit_price_cents", "promo", "receipt", "line"]
TAG_TYPE = "2.9"
SKU_SPACE = 1_000_000  # SKU numbers 1..999999, "C" + six digits
SKUS_PER_CATEGORY = 13  # the aim; categories hold 6-20 SKUs while the catalogue has enough of them
CATEGORY_SPREAD = (0.7, 1.3)  # relative sizes of the categories
PRICE_BAND = (0.62, 1.55)  # a SKU's price within this factor of its category's typical price
COST_SHARE = (0.55, 0.75)  # cost = price * U(...)
CHANGES_PER_YEAR = (1, 4)  # regular price changes of a SKU a year
CHANGE_SIZE = (0.05, 0.15)  # a regular change moves the price up or down by this share
PROMO_WEEKS_PER_YEAR = (1.0, 4.0)
PROMO_DISCOUNT = (0.10, 0.30)
OPEN_SECONDS, CLOSE_SECONDS = 8 * 3600, 21 * 3600
HOUR_WEIGHTS = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.8, 0.7, 0.8, 1.0, 1.3, 1.4, 1.1, 0.6])  # 08:00 .. 20:00
LAST_CHECKOUT = CLOSE_SECONDS - 600  # a basket starts at least 10 minutes before closing
LINES_PER_BASKET = 2.2  # mean receipt lines (of these categories) per shopper basket
SCAN_GAP = (2, 9)  # seconds between lines of a receipt: integers in [lo, hi)
VOID_SHARE = 0.01
REFUND_SHARE = 0.005
REFUND_DAYS = (1, 10)
DUPLICATE_SHARE = 0.003


class ShelfCategory(NamedTuple):
    """What a category's products look like on the shelf."""

    noun: str
    unit: str
    sizes: tuple[str, ...]  # the first is the reference size
    price_cents: int  # typical shelf price of a mid brand at the reference size
    brands: tuple[tuple[str, float], ...]  # name, price factor (value ~0.7 .. premium ~1.4)
    variants: tuple[str, ...]  # name prefixes ("" = plain)


def _brands(*pairs: tuple[str, float]) -> tuple[tuple[str, float], ...]:
    return pairs


_HOUSE = ("Good Value", 0.68)  # the store's own brand, in every category
CATALOGUE: dict[str, ShelfCategory] = {
    "cereal": ShelfCategory("Cereal", "g", ("500", "750"), 349, _brands(_HOUSE, ("Kellan's", 1.15), ("Morning Farm", 1.0), ("Nature Crunch", 1.35)), ("", "Honey ", "Chocolate ", "Fruit ")),
    "coffee": ShelfCategory("Ground Coffee", "g", ("500", "250"), 649, _brands(_HOUSE, ("Kaffee Haus", 1.0), ("Lavazzo", 1.25), ("Roastery Gold", 1.45)), ("", "Espresso ", "Decaf ", "Crema ")),
    "tea": ShelfCategory("Tea", "pcs", ("20", "40"), 249, _brands(_HOUSE, ("Tea Garden", 1.0), ("Twinbury", 1.2), ("Leaf & Co", 1.4)), ("Black ", "Green ", "Peppermint ", "Chamomile ")),
    "yogurt": ShelfCategory("Yogurt", "g", ("500", "150"), 179, _brands(_HOUSE, ("Alpine", 1.0), ("Meadowfield", 1.1), ("Greek Isle", 1.4)), ("", "Strawberry ", "Vanilla ", "Greek ")),
    "crackers": ShelfCategory("Crackers", "g", ("200", "300"), 199, _brands(_HOUSE, ("Crispo", 1.0), ("Ritzel", 1.2), ("Oat Mill", 1.35)), ("", "Salted ", "Wholegrain ", "Cheese ")),
    "cookies": ShelfCategory("Cookies", "g", ("300", "200"), 229, _brands(_HOUSE, ("Choco Bella", 1.15), ("Grandma's", 1.0), ("Butter Lane", 1.4)), ("", "Chocolate Chip ", "Oat ", "Double Choc ")),
    "chips": ShelfCategory("Potato Chips", "g", ("175", "250"), 219, _brands(_HOUSE, ("Crunchy", 1.0), ("Salto", 0.9), ("Kettle Hill", 1.35)), ("Sea Salt ", "Paprika ", "Sour Cream ", "")),
    "ketchup": ShelfCategory("Ketchup", "ml", ("500", "750"), 229, _brands(_HOUSE, ("Hanz", 1.2), ("Tomato King", 1.0), ("Organic Farm", 1.4)), ("", "Hot ", "Low Sugar ")),
    "pasta_sauce": ShelfCategory("Pasta Sauce", "g", ("400", "690"), 249, _brands(_HOUSE, ("Nonna's", 1.15), ("Bertolo", 1.0), ("Tuscan Table", 1.45)), ("Basil ", "Arrabbiata ", "Bolognese ", "")),
    "pasta": ShelfCategory("Pasta", "g", ("500", "1000"), 149, _brands(_HOUSE, ("Barillo", 1.1), ("De Cecca", 1.35), ("Pasta Fresca", 1.0)), ("Spaghetti ", "Penne ", "Fusilli ", "Wholewheat ")),
    "rice": ShelfCategory("Rice", "g", ("1000", "500"), 249, _brands(_HOUSE, ("Golden Grain", 1.0), ("Basmati Royal", 1.35), ("Uncle Bo's", 1.2)), ("Basmati ", "Jasmine ", "Long Grain ", "Brown ")),
    "detergent": ShelfCategory("Laundry Detergent", "l", ("1.5", "3"), 699, _brands(_HOUSE, ("Sparkle", 1.0), ("Persilo", 1.3), ("EcoHome", 1.2)), ("", "Color ", "Sensitive ")),
    "dish_soap": ShelfCategory("Dish Soap", "ml", ("500", "750"), 179, _brands(_HOUSE, ("Fairy Glen", 1.25), ("CleanCo", 1.0), ("EcoHome", 1.3)), ("", "Lemon ", "Sensitive ")),
    "shampoo": ShelfCategory("Shampoo", "ml", ("250", "400"), 349, _brands(_HOUSE, ("Silkhair", 1.0), ("Pure Skin", 1.2), ("Salon Pro", 1.45)), ("", "Anti-Dandruff ", "Repair ", "Volume ")),
    "toothpaste": ShelfCategory("Toothpaste", "ml", ("75", "125"), 199, _brands(_HOUSE, ("Mint Fresh", 1.0), ("Colgan", 1.2), ("Sensodent", 1.45)), ("", "Whitening ", "Sensitive ", "Herbal ")),
    "shower_gel": ShelfCategory("Shower Gel", "ml", ("250", "500"), 229, _brands(_HOUSE, ("Naturelle", 1.15), ("Aqua Fresh", 1.0), ("Dovea", 1.3)), ("", "Men's ", "Citrus ", "Sensitive ")),
    "soft_drinks": ShelfCategory("Cola", "l", ("1.5", "1"), 179, _brands(_HOUSE, ("Koka", 1.3), ("Pepsa", 1.2), ("Citrus Bay", 1.0)), ("", "Zero ", "Cherry ")),
    "juice": ShelfCategory("Juice", "l", ("1", "1.5"), 229, _brands(_HOUSE, ("Sunny Grove", 1.0), ("Orchard Lane", 1.15), ("Pressed", 1.45)), ("Orange ", "Apple ", "Multifruit ", "Grapefruit ")),
    "bottled_water": ShelfCategory("Water", "l", ("1.5", "0.75"), 89, _brands(_HOUSE, ("Blue Spring", 1.0), ("Alpen Quelle", 1.25), ("Evian Peak", 1.45)), ("Still ", "Sparkling ", "Medium ")),
    "ice_cream": ShelfCategory("Ice Cream", "ml", ("900", "500"), 399, _brands(_HOUSE, ("Polar", 1.0), ("Gelato Mio", 1.3), ("Ben & Jo", 1.45)), ("Vanilla ", "Chocolate ", "Strawberry ", "Cookie ")),
    "frozen_pizza": ShelfCategory("Pizza", "g", ("350", "400"), 299, _brands(_HOUSE, ("Nonna's", 1.15), ("Polar", 1.0), ("Stone Oven", 1.4)), ("Margherita ", "Salami ", "Funghi ", "Four Cheese ")),
    "toilet_paper": ShelfCategory("Toilet Paper", "pcs", ("8", "16"), 399, _brands(_HOUSE, ("Softis", 1.0), ("Cloud Nine", 1.25), ("EcoHome", 1.15)), ("", "3-Ply ", "Recycled ")),
    "paper_towels": ShelfCategory("Paper Towels", "pcs", ("4", "8"), 299, _brands(_HOUSE, ("Softis", 1.0), ("Bounty Bay", 1.3), ("EcoHome", 1.15)), ("", "Extra Strong ")),
    "chocolate": ShelfCategory("Chocolate", "g", ("100", "200"), 149, _brands(_HOUSE, ("Choco Bella", 1.0), ("Milkana", 1.15), ("Lindor Swiss", 1.45)), ("Milk ", "Dark ", "Hazelnut ", "White ")),
    "peanut_butter": ShelfCategory("Peanut Butter", "g", ("350", "500"), 299, _brands(_HOUSE, ("Nutty Co", 1.0), ("Skippo", 1.15), ("Pure Nut", 1.4)), ("Smooth ", "Crunchy ", "Organic ")),
    "jam": ShelfCategory("Jam", "g", ("450", "340"), 249, _brands(_HOUSE, ("Bonne Mere", 1.3), ("Orchard Lane", 1.0), ("Zentis", 1.15)), ("Strawberry ", "Apricot ", "Raspberry ", "Cherry ")),
    "soup": ShelfCategory("Soup", "ml", ("400", "800"), 199, _brands(_HOUSE, ("Campbello", 1.1), ("Knorrig", 1.0), ("Fresh Kitchen", 1.4)), ("Tomato ", "Chicken ", "Lentil ", "Pea ")),
    "canned_tuna": ShelfCategory("Tuna", "g", ("160", "240"), 229, _brands(_HOUSE, ("Rio Mar", 1.1), ("Ocean Catch", 1.0), ("Pole & Line", 1.4)), ("In Oil ", "In Water ", "Chunks ")),
}


@dataclass(frozen=True)
class ChoiceStoreSummary:
    """What generate_choice_store wrote (counts of receipts.csv rows by kind)."""

    store: str
    skus: int
    categories: int
    days: int
    start_date: date
    end_date: date
    lines: int  # rows of receipts.csv
    sale_lines: int  # one per purchase
    duplicates: int  # rows exported twice (each counted once)
    voids: int  # void pairs (a rescan and its negative line)
    refunds: int  # refund lines
    price_changes: int  # regular price changes (SKU-days whose regular price differs from the day before)
    promo_sku_days: int
    units: int  # units sold (net of voids, before refunds)
    seconds: float = 0.0
    paths: dict[str, Path] = field(default_factory=dict)
    # Per SKU-day (all of them): date, sku, units (net of voids), purchases, price_cents (the
    # shelf price), regular_price_cents, promo, expected_units (the market's mean for that day's prices, promos and calendar).
    sales: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)


# ---- catalogue and prices -------------------------------------------------------------------


def round_to_nine(cents: np.ndarray) -> np.ndarray:
    """Nearest price ending in 9 cents (at least 0.19)."""
    return np.maximum(np.rint((np.asarray(cents, dtype=np.float64) + 1) / 10) * 10 - 1, 19).astype(np.int64)


def _category_sizes(skus: int, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """The categories (sorted names) and how many SKUs each holds."""
    n_cat = min(len(CATALOGUE), max(1, round(skus / SKUS_PER_CATEGORY)))
    names = sorted(np.array(list(CATALOGUE), dtype=object)[rng.choice(len(CATALOGUE), n_cat, replace=False)].tolist())
    weight = rng.uniform(*CATEGORY_SPREAD, n_cat)
    exact = skus * weight / weight.sum()
    size = np.floor(exact).astype(np.int64)
    size[np.argsort(size - exact, kind="stable")[: skus - int(size.sum())]] += 1  # largest remainders
    return names, size


def _catalogue(skus: int, rng: np.random.Generator) -> pd.DataFrame:
    """products.csv columns but cost: sku, name, category, brand, size, unit, price_cents (today's)."""
    names, size = _category_sizes(skus, rng)
    category = np.repeat(np.array(names, dtype=object), size)
    n = skus
    brand = np.empty(n, dtype=object)
    variant = np.empty(n, dtype=object)
    pack = np.empty(n, dtype=object)
    noun = np.empty(n, dtype=object)
    unit = np.empty(n, dtype=object)
    price = np.empty(n)
    for name in names:  # per category, vectorised over its SKUs
        mine = np.flatnonzero(category == name)
        spec = CATALOGUE[name]
        b = rng.integers(0, len(spec.brands), len(mine))
        s = rng.integers(0, len(spec.sizes), len(mine))
        brand[mine] = np.array([x[0] for x in spec.brands], dtype=object)[b]
        variant[mine] = np.array(spec.variants, dtype=object)[rng.integers(0, len(spec.variants), len(mine))]
        pack[mine] = np.array(spec.sizes, dtype=object)[s]
        noun[mine], unit[mine] = spec.noun, spec.unit
        ratio = np.array([float(x) / float(spec.sizes[0]) for x in spec.sizes])[s] ** 0.8
        factor = np.array([x[1] for x in spec.brands])[b] * ratio * rng.lognormal(0.0, 0.07, len(mine))
        price[mine] = spec.price_cents * np.clip(factor, *PRICE_BAND)
    numbers = np.sort(rng.choice(np.arange(1, SKU_SPACE), n, replace=False))
    order = rng.permutation(n)  # categories interleave in SKU order
    frame = pd.DataFrame(
        {
            "sku": np.array([f"C{x:06d}" for x in numbers], dtype=object),
            "name": (brand + " " + variant + noun + " " + pack + " " + unit)[order],
            "category": category[order],
            "brand": brand[order],
            "size": pack[order],
            "unit": unit[order],
            "price_cents": round_to_nine(price)[order],
        }
    )
    return frame


def _regular_prices(current: np.ndarray, cost: np.ndarray, days: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    """(n, days) regular prices ending at ``current``, and the number of days a price changed.

    Each SKU changes CHANGES_PER_YEAR times a year (pro rata), on distinct days away from the
    ends; going back from today, each earlier regime is 5-15% off the next (ending in 9, at least
    10 cents apart, not below cost * 1.05 where that still differs).
    """
    n = len(current)
    margin = min(14, days // 4)
    window = days - 2 * margin
    per_year = rng.integers(CHANGES_PER_YEAR[0], CHANGES_PER_YEAR[1] + 1, n)
    count = rng.binomial(per_year, min(days / 365.0, 1.0)) if window > 0 else np.zeros(n, dtype=np.int64)
    slots = max(int(count.max(initial=0)), 1)
    # Distinct change days: the first `count` of a random order of the window's days, sorted.
    pick = np.argsort(rng.random((n, max(window, slots))), axis=1)[:, :slots] + margin
    pick = np.sort(np.where(np.arange(slots)[None, :] < count[:, None], pick, days), axis=1)
    sign = np.where(rng.random((n, slots)) < 0.5, 1.0, -1.0)
    step = sign * rng.uniform(*CHANGE_SIZE, (n, slots))
    regimes = np.empty((n, slots + 1), dtype=np.int64)  # right-aligned: the last is today's price
    regimes[:, slots] = current
    floor = round_to_nine(cost * 1.05 + 5)
    for r in range(slots - 1, -1, -1):
        after = regimes[:, r + 1]
        before = round_to_nine(after / (1.0 + step[:, r]))
        before = np.where(before == after, after - np.where(step[:, r] > 0, 10, -10), before)
        regimes[:, r] = np.where((before < floor) & (after != floor), floor, np.maximum(before, 19))
    regime = slots - count[:, None] + (np.arange(days)[None, :, None] >= pick[:, None, :]).sum(axis=2)
    regular = np.take_along_axis(regimes, regime, axis=1)
    return regular, int(np.count_nonzero(np.diff(regular, axis=1)))


def _promotions(regular: np.ndarray, dates: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shelf prices and promo flags: a few promo weeks (Monday-Sunday) a year at 10-30% off."""
    n = len(regular)
    weekday, _ = weekday_and_doy(dates)
    monday = dates.astype(np.int64) - weekday
    week = (monday - monday[0]) // 7
    weeks = int(week[-1]) + 1
    rate = rng.uniform(*PROMO_WEEKS_PER_YEAR, n) / 52.0
    promo_week = rng.random((n, weeks)) < rate[:, None]
    promo_week[:, -1] = False
    discount = rng.uniform(*PROMO_DISCOUNT, (n, weeks))
    promo = promo_week[:, week]
    cut = round_to_nine(regular * (1.0 - discount[:, week]))  # nearest ...9: cheap SKUs stay near 10-30% off
    price = np.where(promo, np.minimum(cut, regular - 10), regular)
    return price, promo & (price < regular)


# ---- receipts -------------------------------------------------------------------------------


class Lines(NamedTuple):
    """Receipt lines before ids and text: one entry per row, in receipt order."""

    day: np.ndarray  # index into the dates
    second: np.ndarray  # seconds since midnight
    basket: np.ndarray  # receipt number (global, not yet the id)
    line: np.ndarray  # 1, 2, ... within the receipt
    sku: np.ndarray  # index into the SKUs
    quantity: np.ndarray
    price: np.ndarray
    promo: np.ndarray


def _checkout_seconds(count: int, rng: np.random.Generator) -> np.ndarray:
    """Times (seconds since midnight) of ``count`` checkouts over the opening hours' profile."""
    hour = rng.choice(len(HOUR_WEIGHTS), count, p=HOUR_WEIGHTS / HOUR_WEIGHTS.sum())
    return np.minimum(OPEN_SECONDS + hour * 3600 + rng.integers(0, 3600, count), LAST_CHECKOUT)


def _sale_lines(
    purchases: np.ndarray, units: np.ndarray, price: np.ndarray, promo: np.ndarray, rng: np.random.Generator
) -> Lines:
    """One line per purchase (quantity 2 for a purchase of two), shuffled into baskets within a day.

    Baskets: the day's lines in random order, a new basket starting at each line with
    probability 1 / LINES_PER_BASKET. Times and line numbers are set by ``_with_voids``.
    """
    n, days = purchases.shape
    per_cell = purchases.T.ravel()  # day-major
    cell = np.repeat(np.arange(n * days), per_cell)
    first = np.cumsum(per_cell) - per_cell
    rank = np.arange(len(cell)) - first[cell]
    twos = (units - purchases).T.ravel()
    quantity = 1 + (rank < twos[cell]).astype(np.int64)
    day, sku = cell // n, cell % n
    order = np.lexsort((rng.random(len(cell)), day))  # random order within each day
    day, sku, quantity = day[order], sku[order], quantity[order]
    start = rng.random(len(day)) < 1.0 / LINES_PER_BASKET
    start[np.r_[0, np.flatnonzero(np.diff(day)) + 1][: len(day)]] = True
    basket = np.cumsum(start) - 1
    zero = np.zeros(len(day), np.int64)
    return Lines(day, zero, basket, zero, sku, quantity, price[sku, day], promo[sku, day])


def _with_voids(lines: Lines, voided: np.ndarray, rng: np.random.Generator) -> Lines:
    """After each voided sale line, the same line again and its void (negative quantity)."""
    rows = np.repeat(np.arange(len(lines.day)), 1 + 2 * voided)
    kind = np.arange(len(rows)) - np.repeat(np.cumsum(1 + 2 * voided) - (1 + 2 * voided), 1 + 2 * voided)
    sign = np.where(kind == 2, -1, 1)
    basket = lines.basket[rows]
    first_of_basket = np.r_[True, basket[1:] != basket[:-1]] if len(basket) else np.zeros(0, bool)
    head = np.flatnonzero(first_of_basket)
    index_of = np.cumsum(first_of_basket) - 1
    line = np.arange(len(rows)) - head[index_of] + 1
    n_baskets = int(basket.max(initial=-1)) + 1
    begin = _checkout_seconds(n_baskets, rng)
    gap = np.where(first_of_basket, 0, rng.integers(*SCAN_GAP, len(rows)))
    elapsed = np.cumsum(gap)
    second = begin[basket] + elapsed - elapsed[head[index_of]]
    return Lines(lines.day[rows], second, basket, line, lines.sku[rows], lines.quantity[rows] * sign,
                 lines.price[rows], lines.promo[rows])


def _refunds(lines: Lines, refunded: np.ndarray, days: int, rng: np.random.Generator) -> Lines:
    """Returned goods: a negative line 1-10 days after the sale, on a receipt of its own."""
    later = lines.day[refunded] + rng.integers(REFUND_DAYS[0], REFUND_DAYS[1] + 1, int(refunded.sum()))
    keep = later < days
    count = int(keep.sum())
    first = int(lines.basket.max(initial=-1)) + 1
    return Lines(later[keep], _checkout_seconds(count, rng), first + np.arange(count), np.ones(count, np.int64),
                 lines.sku[refunded][keep], -lines.quantity[refunded][keep], lines.price[refunded][keep],
                 lines.promo[refunded][keep])


def _receipt_frame(lines: Lines, dates: np.ndarray, store: str, skus: np.ndarray, duplicated: np.ndarray) -> pd.DataFrame:
    """receipts.csv rows sorted by time; receipt ids numbered in time order within each day."""
    _, first = np.unique(lines.basket, return_index=True)  # baskets are 0..n-1, each with a line
    n_baskets = len(first)
    b_day, b_second = lines.day[first], lines.second[first]
    b_order = np.lexsort((np.arange(n_baskets), b_second, b_day))
    b_rank = np.empty(n_baskets, np.int64)
    b_rank[b_order] = np.arange(n_baskets)
    day_first = np.searchsorted(b_day[b_order], np.arange(len(dates)))
    number = b_rank - day_first[b_day] + 1
    day_text = pd.Series(np.datetime_as_string(dates, unit="D")).str.replace("-", "", regex=False).to_numpy(dtype=object)
    receipt_id = "R" + day_text[b_day] + "-" + pd.Series(number).astype(str).str.zfill(5).to_numpy(dtype=object)
    rows = np.repeat(np.arange(len(lines.day)), 1 + duplicated)
    order = np.lexsort((lines.line[rows], b_rank[lines.basket[rows]], lines.second[rows], lines.day[rows]))
    rows = rows[order]
    stamp = dates[lines.day[rows]].astype("datetime64[s]") + lines.second[rows].astype("timedelta64[s]")
    return pd.DataFrame(
        {
            "timestamp": np.datetime_as_string(stamp, unit="s"),
            "store": store,
            "sku": skus[lines.sku[rows]],
            "quantity": lines.quantity[rows],
            "unit_price_cents": lines.price[rows],
            "promo": lines.promo[rows].astype(np.int64),
            "receipt": receipt_id[lines.basket[rows]],
            "line": lines.line[rows],
        },
        columns=RECEIPT_COLUMNS,
    )


def _concat(*parts: Lines) -> Lines:
    return Lines(*(np.concatenate(column) for column in zip(*parts, strict=True)))


# ---- files ----------------------------------------------------------------------------------


def _labels(skus: np.ndarray, store: str, gateways: int) -> pd.DataFrame:
    """One 2.9" label per SKU; gateways gw-1..gw-N take contiguous, equally large blocks."""
    n = len(skus)
    gateway = (np.arange(n) * gateways) // max(n, 1) + 1
    return pd.DataFrame(
        {
            "label_id": "L" + pd.Series(skus, dtype=object),
            "store": store,
            "gateway": [f"gw-{g}" for g in gateway],
            "sku": skus,
            "tag_type": TAG_TYPE,
        },
        columns=LABEL_COLUMNS,
    )


def generate_choice_store(
    out_dir: Path | str,
    *,
    skus: int = 128,
    seed: int = 7,
    days: int = 365,
    store: str = "store-001",
    end_date: date = date(2026, 11, 1),
    gateways: int = 2,
    dirt: bool = True,
) -> ChoiceStoreSummary:
    """Write a deterministic choice-market store into out_dir (see the module docstring)."""
    if not 1 <= skus < SKU_SPACE or days < 1 or gateways < 1:
        raise ValueError(f"need 1 <= skus < {SKU_SPACE}, days >= 1, gateways >= 1")
    started = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng_catalogue, rng_truth, rng_prices, rng_promo, rng_sales, rng_receipts, rng_dirt = np.random.default_rng(seed).spawn(7)
    products = _catalogue(skus, rng_catalogue)
    current = products["price_cents"].to_numpy(dtype=np.int64)
    cost = np.rint(current * rng_catalogue.uniform(*COST_SHARE, skus)).astype(np.int64)
    products["cost_cents"] = cost
    sku = products["sku"].to_numpy(dtype=object)
    start_date = end_date - timedelta(days=days - 1)
    dates = days_between(start_date, end_date)
    market = ChoiceMarket.draw(sku, products["category"].to_numpy(dtype=object), current, rng_truth, trend_origin=start_date)
    regular, changes = _regular_prices(current, cost, days, rng_prices)
    price, promo = _promotions(regular, dates, rng_promo)
    purchases, units = market.draw_purchases(price, dates, promo, rng=rng_sales)

    lines = _sale_lines(purchases, units, price, promo, rng_receipts)
    sale_lines = len(lines.day)
    voided = rng_dirt.random(sale_lines) < VOID_SHARE if dirt else np.zeros(sale_lines, bool)
    refunded = rng_dirt.random(sale_lines) < REFUND_SHARE if dirt else np.zeros(sale_lines, bool)
    scanned = _with_voids(lines, voided, rng_receipts)
    refunds = _refunds(lines, refunded, days, rng_dirt)
    everything = _concat(scanned, refunds)
    duplicated = rng_dirt.random(len(everything.day)) < DUPLICATE_SHARE if dirt else np.zeros(len(everything.day), bool)
    receipts = _receipt_frame(everything, dates, store, sku, duplicated)

    paths = {name: out / name for name in (PRODUCTS_FILE, RECEIPTS_FILE, LABELS_FILE)}
    products[PRODUCT_COLUMNS].to_csv(paths[PRODUCTS_FILE], index=False, lineterminator="\n")
    receipts.to_csv(paths[RECEIPTS_FILE], index=False, lineterminator="\n")
    _labels(sku, store, gateways).to_csv(paths[LABELS_FILE], index=False, lineterminator="\n")
    truth_path, choice_path = market.save(out)
    paths.update({TRUTH_FILE: truth_path, CHOICE_FILE: choice_path})
    sales = pd.DataFrame(
        {
            "date": np.tile(dates, skus),
            "sku": np.repeat(sku, days),
            "units": units.ravel(),
            "purchases": purchases.ravel(),
            "price_cents": price.ravel(),
            "regular_price_cents": regular.ravel(),
            "promo": promo.ravel(),
            "expected_units": market.expected(price, dates, promo).ravel(),
        }
    )
    return ChoiceStoreSummary(
        store=store,
        skus=skus,
        categories=len(market.structure.category),
        days=days,
        start_date=start_date,
        end_date=end_date,
        lines=len(receipts),
        sale_lines=sale_lines,
        duplicates=int(duplicated.sum()),
        voids=int(voided.sum()),
        refunds=len(refunds.day),
        price_changes=changes,
        promo_sku_days=int(promo.sum()),
        units=int(units.sum()),
        seconds=time.perf_counter() - started,
        paths=paths,
        sales=sales,
    )
