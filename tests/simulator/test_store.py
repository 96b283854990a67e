"""The sample store generator: determinism, data contracts, price history, labels, truth."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest

from pricing.core.data import (
    COMPETITOR_COLUMNS,
    LABEL_COLUMNS,
    PRODUCT_COLUMNS,
    PRODUCT_OPTIONAL,
    SALES_COLUMNS,
    TAG_TYPES,
    competitor_reference,
    load_sales,
)
from pricing.core.store_data import load_store
from simulator.market import Market
from simulator.store import (
    COMPETITOR_DAYS,
    COMPETITORS,
    PRIVATE_LABEL,
    StoreSummary,
    ceil_to_ending,
    floor_to_nine,
    generate_store,
    round_to_ending,
)

SKUS, DAYS, SEED, GATEWAYS = 200, 120, 11, 3
END = date(2026, 11, 1)
FILES = (
    "products.csv", "sales.csv", "labels.csv", "truth.csv", "truth_categories.csv", "store.json", "competitors.csv"
)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, StoreSummary]:
    out = tmp_path_factory.mktemp("store")
    return out, generate_store(out, skus=SKUS, days=DAYS, seed=SEED, gateways=GATEWAYS, end_date=END)


@pytest.fixture(scope="module")
def raw(store: tuple[Path, StoreSummary]) -> dict[str, pd.DataFrame]:
    out, _ = store
    read = {name: pd.read_csv(out / name, dtype=str, keep_default_na=False) for name in FILES[:3]}
    sales = read["sales.csv"]
    read["sales"] = sales.assign(
        units=sales["units"].astype(int),
        price_cents=sales["price_cents"].astype(int),
        promo=sales["promo"] == "1",
        stock=sales["stock"].astype(int),
    )
    return read


@pytest.fixture(scope="module")
def market(store: tuple[Path, StoreSummary]) -> Market:
    return Market.load(store[0])


class Panel(NamedTuple):
    """sales.csv as (n_skus, days) matrices, SKUs in the truth's order."""

    dates: np.ndarray
    price: np.ndarray
    promo: np.ndarray
    units: np.ndarray
    stock: np.ndarray
    expected: np.ndarray  # the market's expected units, substitutes' prices included
    index: np.ndarray  # the category index of each SKU-day


def panel_of(sales: pd.DataFrame, market: Market) -> Panel:
    def wide(column: str) -> np.ndarray:
        return sales.pivot(index="sku", columns="date", values=column).loc[market.truth.sku].to_numpy()

    dates = np.array(sorted(sales["date"].unique()), dtype="datetime64[D]")
    price, promo = wide("price_cents"), wide("promo").astype(bool)
    expected = market.expected(price, dates, promo)
    return Panel(dates, price, promo, wide("units"), wide("stock"), expected, market.category_index(price))


@pytest.fixture(scope="module")
def panel(raw: dict[str, pd.DataFrame], market: Market) -> Panel:
    return panel_of(raw["sales"], market)


def test_same_seed_same_bytes_other_seed_other_data(store: tuple[Path, StoreSummary], tmp_path: Path) -> None:
    out, _ = store
    generate_store(tmp_path / "again", skus=SKUS, days=DAYS, seed=SEED, gateways=GATEWAYS, end_date=END)
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name
    generate_store(tmp_path / "other", skus=SKUS, days=DAYS, seed=SEED + 1, gateways=GATEWAYS, end_date=END)
    for name in ("products.csv", "sales.csv", "truth.csv", "competitors.csv"):
        assert (tmp_path / "other" / name).read_bytes() != (out / name).read_bytes(), name


def test_summary_and_store_json(store: tuple[Path, StoreSummary]) -> None:
    out, summary = store
    assert (summary.skus, summary.days, summary.sales_rows, summary.labels) == (SKUS, DAYS, SKUS * DAYS, SKUS)
    assert summary.end_date == END and (summary.end_date - summary.start_date).days == DAYS - 1
    assert set(FILES) <= set(summary.paths) and all(p.exists() for p in summary.paths.values())
    meta = json.loads((out / "store.json").read_text())
    assert meta == {
        "store": "store-001",
        "currency": "EUR",
        "seed": SEED,
        "skus": SKUS,
        "days": DAYS,
        "start_date": summary.start_date.isoformat(),
        "end_date": "2026-11-01",
        "trend_origin": summary.start_date.isoformat(),
        "gateways": ["gw-01", "gw-02", "gw-03"],
    }
    assert 0 < summary.censored_rows < summary.short_days < 0.05 * SKUS * DAYS
    products = pd.read_csv(out / "products.csv", dtype=str, keep_default_na=False)
    for col, count in (("family", summary.family_skus), ("ladder", summary.ladder_skus), ("tier", summary.tier_skus)):
        assert count == (products[col] != "").sum() > 0, col
    competitors = pd.read_csv(out / "competitors.csv", dtype=str)
    assert (summary.competitor_skus, summary.competitor_rows) == (competitors["sku"].nunique(), len(competitors))


def test_loads_through_the_data_contracts_without_rejects(store: tuple[Path, StoreSummary]) -> None:
    out, summary = store
    data = load_store(out)
    assert data.rejects == []
    assert len(data.products) == SKUS and len(data.sales) == SKUS * DAYS and len(data.labels) == SKUS
    assert len(data.competitors) == summary.competitor_rows > 0
    missing = data.products["cost_cents"].isna()
    assert 1 <= missing.sum() == summary.missing_cost <= max(1, round(SKUS * 0.01))


def test_columns_and_integer_cents(raw: dict[str, pd.DataFrame]) -> None:
    assert list(raw["products.csv"].columns) == PRODUCT_COLUMNS + PRODUCT_OPTIONAL
    assert list(raw["sales.csv"].columns) == [*SALES_COLUMNS, "stock"]
    assert raw["sales.csv"]["stock"].str.fullmatch(r"0|[1-9][0-9]*").all()
    assert list(raw["labels.csv"].columns) == LABEL_COLUMNS
    products = raw["products.csv"]
    assert products["price_cents"].str.fullmatch(r"[1-9][0-9]*").all()
    cost = products["cost_cents"]
    assert cost[cost != ""].str.fullmatch(r"[1-9][0-9]*").all()
    assert raw["sales.csv"]["price_cents"].str.fullmatch(r"[1-9][0-9]*").all()
    assert set(raw["sales.csv"]["promo"]) == {"0", "1"}
    assert products["unit"].isin(["g", "kg", "ml", "l", "pcs"]).all()
    assert products["category"].nunique() == 8


def test_skus_keep_leading_zeros(store: tuple[Path, StoreSummary], raw: dict[str, pd.DataFrame]) -> None:
    skus = raw["products.csv"]["sku"]
    assert skus.str.fullmatch(r"[0-9]{6}").all() and skus.is_unique
    assert skus.str.startswith("0").any()
    data = load_store(store[0])
    assert data.products["sku"].tolist() == skus.tolist()
    assert set(data.sales["sku"]) == set(skus)


def test_costs_and_current_prices(raw: dict[str, pd.DataFrame], market: Market) -> None:
    products = raw["products.csv"]
    price = products["price_cents"].astype(int)
    has_cost = products["cost_cents"] != ""
    cost = products.loc[has_cost, "cost_cents"].astype(int)
    markup = price[has_cost] / cost
    assert (markup > 1.05).all()
    assert 1.15 <= markup.median() <= 1.8
    assert price.mod(100).isin([49, 99]).mean() >= 0.9
    best = market.optimal_price_cents(products.loc[has_cost, "sku"], cost) / price[has_cost]
    assert (best > 1).mean() >= 0.6  # mostly priced below the true optimum
    assert (best < 1).mean() >= 0.01  # ... and some above it
    assert (market.truth.ref_price_cents == price.to_numpy()).all()


def test_one_row_per_sku_and_day(raw: dict[str, pd.DataFrame]) -> None:
    sales = raw["sales"]
    assert not sales.duplicated(["date", "sku"]).any()
    assert sales["date"].nunique() == DAYS and sales["date"].max() == "2026-11-01"
    assert sales["date"].is_monotonic_increasing
    assert (sales["store"] == "store-001").all()


def test_last_regular_price_is_the_current_price(raw: dict[str, pd.DataFrame]) -> None:
    sales = raw["sales"]
    current = raw["products.csv"].set_index("sku")["price_cents"].astype(int)
    last_regular = sales[~sales["promo"]].groupby("sku")["price_cents"].last()
    assert last_regular.reindex(current.index).equals(current)
    assert not sales.loc[sales["date"] == "2026-11-01", "promo"].any()


def test_prices_really_vary(raw: dict[str, pd.DataFrame]) -> None:
    sales = raw["sales"]
    regular = sales[~sales["promo"]]
    assert (sales.groupby("sku")["price_cents"].nunique() > 1).mean() >= 0.6
    assert (regular.groupby("sku")["price_cents"].nunique() > 1).mean() >= 0.3  # 120 days: ~1 move
    current = raw["products.csv"].set_index("sku")["price_cents"].astype(int)
    earlier = regular[regular["price_cents"].to_numpy() != current.reindex(regular["sku"]).to_numpy()]
    assert earlier["price_cents"].mod(100).isin([49, 99]).all()  # regular moves keep the endings
    assert 0.01 <= sales["promo"].mean() <= 0.15


def test_promo_prices_are_discounts(raw: dict[str, pd.DataFrame]) -> None:
    sales = raw["sales"].sort_values(["sku", "date"])
    shelf = sales["price_cents"].where(~sales["promo"])
    before = shelf.groupby(sales["sku"]).ffill()
    after = shelf.groupby(sales["sku"]).bfill()
    regular = before.fillna(after)[sales["promo"]]  # the regular price next to each promo day
    ratio = sales.loc[sales["promo"], "price_cents"] / regular
    assert ratio.notna().all()
    assert ((ratio >= 0.55) & (ratio < 1)).mean() >= 0.95  # moves next to a promo week blur a few
    assert 0.7 <= ratio.median() <= 0.9


def test_labels_cover_every_sku_and_balance_gateways(raw: dict[str, pd.DataFrame]) -> None:
    labels = raw["labels.csv"]
    assert sorted(labels["sku"]) == sorted(raw["products.csv"]["sku"])
    assert labels["label_id"].is_unique
    counts = labels["gateway"].value_counts()
    assert sorted(counts.index) == ["gw-01", "gw-02", "gw-03"]
    assert counts.max() - counts.min() <= 1
    assert labels["tag_type"].isin(TAG_TYPES).all()
    assert labels["tag_type"].value_counts().idxmax() == "2.9"


def test_sales_follow_the_market_truth(panel: Panel, market: Market) -> None:
    """Where stock is ample, units average the market's expectation, substitutes' prices included."""
    ample = panel.stock > panel.expected  # short stock is at most floor(expected)
    assert panel.units[ample].sum() == pytest.approx(panel.expected[ample].sum(), rel=0.02)
    assert (panel.units[ample] < panel.stock[ample]).all()  # ample stock never binds
    # Leaving out the substitutes' prices describes the data measurably worse.
    skus = market.truth.sku
    own_only = market.expected_units(skus, panel.price, panel.dates, panel.promo)
    assert (panel.expected != own_only).mean() > 0.9
    assert np.allclose(panel.expected, market.expected_units(skus, panel.price, panel.dates, panel.promo, panel.index))


def test_trend_origin_is_the_first_day(store: tuple[Path, StoreSummary], market: Market) -> None:
    assert market.trend_origin == store[1].start_date
    assert (market.categories.trend_per_year != 0).all()


def test_stock_is_short_on_a_few_percent_of_days_and_censors_sales(panel: Panel) -> None:
    short = panel.stock <= panel.expected
    assert 0.02 <= short.mean() <= 0.04
    assert (panel.units <= panel.stock).all()
    assert (panel.stock[short] <= np.floor(panel.expected[short])).all()
    assert (panel.stock[short] == 0).any()
    at_stock = short & (panel.units == panel.stock) & (panel.stock > 0)
    assert at_stock.sum() >= 0.2 * short.sum()  # demand often met the short shelf
    padded = np.pad(short, ((0, 0), (1, 1)))
    assert (padded[:, :-2] | padded[:, 2:])[short].mean() >= 0.6  # missed deliveries last days
    # Censoring costs sales: short days sell less than expected, ample days do not.
    assert panel.units[short].sum() < 0.7 * panel.expected[short].sum()


def test_stock_column_loads_through_the_data_contract(store: tuple[Path, StoreSummary], panel: Panel) -> None:
    loaded = load_sales(store[0] / "sales.csv")
    assert loaded.rejects == []
    assert "stock" in loaded.frame.columns and loaded.frame["stock"].notna().all()
    assert int(loaded.frame["stock"].sum()) == int(panel.stock.sum())


def test_category_events_move_the_category_index(
    store: tuple[Path, StoreSummary], panel: Panel, market: Market, tmp_path: Path
) -> None:
    """Coordinated promotions: the per-category daily mean index varies much more than without."""
    generate_store(
        tmp_path, skus=SKUS, days=DAYS, seed=SEED, gateways=GATEWAYS, end_date=END, category_events=False
    )
    quiet = load_store(tmp_path).sales.assign(date=lambda f: f["date"].dt.strftime("%Y-%m-%d"))
    without = panel_of(quiet, market)
    category = market.truth.category

    def daily_std(index: np.ndarray) -> float:
        return float(pd.DataFrame(index).groupby(category).mean().std(axis=1).mean())

    assert daily_std(panel.index) > 1.4 * daily_std(without.index)
    busiest = pd.DataFrame(panel.promo).groupby(category).mean().max(axis=1)
    assert (busiest >= 0.25).all()  # every category has a day with many SKUs on promo together
    assert (pd.DataFrame(without.promo).groupby(category).mean().max(axis=1) < 0.25).all()


def elasticity_errors(panel: Panel, market: Market, units: np.ndarray) -> np.ndarray:
    """Per SKU, slope of log(units / other effects) on log(price) minus the true elasticity.

    The other effects are the calendar, promo uplift, trend and the substitutes' price index
    (the truth's expected units at the reference price); short-stock days are left out (their
    sales are censored). Days are pooled per SKU and price, weighted by volume.
    """
    skus = market.truth.sku
    ref = np.broadcast_to(market.truth.ref_price_cents[:, None], panel.price.shape)
    other = market.expected_units(skus, ref, panel.dates, panel.promo, panel.index)
    rows, cols = np.nonzero(panel.stock > panel.expected)
    sales = pd.DataFrame(
        {"sku": skus[rows], "price": panel.price[rows, cols], "units": units[rows, cols], "other": other[rows, cols]}
    )
    groups = sales.groupby(["sku", "price"]).agg(units=("units", "sum"), other=("other", "sum"))
    groups = groups[groups["units"] > 0].reset_index()
    truth = market.truth.frame().set_index("sku")
    errors = []
    for sku, g in groups.groupby("sku"):
        x = np.log(g["price"].to_numpy())
        if len(g) < 2 or np.ptp(x) < 0.15 or truth.at[sku, "base_units"] < 2:
            continue  # too little variation or volume to say anything
        y = np.log(g["units"] / g["other"]).to_numpy()
        w = np.sqrt(g["units"].to_numpy())
        slope = np.linalg.lstsq(np.column_stack([np.ones_like(x), x]) * w[:, None], y * w, rcond=None)[0][1]
        errors.append(slope - truth.at[sku, "elasticity"])
    return np.array(errors)


def test_log_log_regression_recovers_elasticity(tmp_path: Path) -> None:
    """A year of sales carries each SKU's own-price elasticity once the other effects are divided out.

    A year, not the 120-day fixture: negative binomial noise does not average out with volume
    (the gamma mixing has a CV of 1/sqrt(k) per day), so a SKU needs many days per price.
    """
    generate_store(tmp_path, skus=300, days=365, seed=SEED, end_date=END)
    market = Market.load(tmp_path)
    panel = panel_of(load_store(tmp_path).sales.assign(date=lambda f: f["date"].dt.strftime("%Y-%m-%d")), market)
    exact = elasticity_errors(panel, market, panel.expected)
    assert len(exact) >= 100 and np.abs(exact).max() < 1e-9  # the controls are exactly the truth
    errors = elasticity_errors(panel, market, panel.units)
    assert len(errors) >= 100
    assert abs(errors.mean()) < 0.1
    assert np.median(np.abs(errors)) < 0.3


def test_price_rounding_helpers() -> None:
    assert round_to_ending(np.array([0, 60, 73, 76, 101, 123.5, 1020])).tolist() == [49, 49, 49, 99, 99, 99, 999]
    assert ceil_to_ending(np.array([10, 50, 99, 99.5, 150])).tolist() == [49, 99, 99, 149, 199]
    assert floor_to_nine(np.array([5, 9, 18.9, 19, 135])).tolist() == [9, 9, 9, 19, 129]


def test_tiny_and_invalid_sizes(tmp_path: Path) -> None:
    tiny = generate_store(tmp_path / "tiny", skus=5, days=3, gateways=2)
    assert tiny.sales_rows == 15 and tiny.missing_cost == 0
    assert generate_store(tmp_path / "one", skus=1, days=1).sales_rows == 1  # alone in its category
    assert load_store(tmp_path / "tiny").rejects == []
    with pytest.raises(ValueError):
        generate_store(tmp_path / "bad", skus=0)
    with pytest.raises(ValueError):
        generate_store(tmp_path / "bad", days=0)


# -- price groups and competitors -----------------------------------------------------------


@pytest.fixture(scope="module")
def products(store: tuple[Path, StoreSummary]) -> pd.DataFrame:
    return load_store(store[0]).products.set_index("sku")


def test_families_share_one_current_price(products: pd.DataFrame, raw: dict[str, pd.DataFrame]) -> None:
    members = products.dropna(subset=["family"])
    assert len(members) > 0
    family = members.groupby("family")
    assert (family.size() >= 2).all()
    assert (family["price_cents"].nunique() == 1).all()
    # One item of one brand in several variants (flavours): same category, brand, size, unit.
    assert (family[["category", "brand", "size", "unit"]].nunique() == 1).all().all()
    assert (family["name"].nunique() == family.size()).all()
    # The history ends at the shared price.
    sales = raw["sales"]
    last = sales[sales["date"] == sales["date"].max()].set_index("sku")["price_cents"]
    assert (last.reindex(members.index) == members["price_cents"]).all()


def test_ladders_hold_on_current_prices(products: pd.DataFrame) -> None:
    members = products.dropna(subset=["ladder"]).sort_values(["ladder", "size"])
    assert len(members) > 0
    for _, ladder in members.groupby("ladder"):
        assert len(ladder) >= 2
        assert ladder[["category", "brand", "unit"]].nunique().eq(1).all()
        size = ladder["size"].to_numpy(dtype=float)
        price = ladder["price_cents"].to_numpy()
        assert (np.diff(size) > 0).all()  # distinct sizes
        assert (np.diff(price) > 0).all()  # a larger pack costs more ...
        assert (np.diff(price / size) < 0).all()  # ... and less per unit


def test_private_label_tiers_are_at_least_ten_percent_cheaper(products: pd.DataFrame) -> None:
    private = products["brand"] == products["category"].map(PRIVATE_LABEL)
    tiered = products.dropna(subset=["tier"])
    assert len(tiered) > 0
    assert private[tiered.index].all()
    reference = products.loc[tiered["tier"]]
    assert not private[reference.index].any()  # national brands
    for col in ("category", "size", "unit"):
        assert (reference[col].to_numpy() == tiered[col].to_numpy()).all(), col
    assert (tiered["price_cents"].to_numpy() * 10 <= reference["price_cents"].to_numpy() * 9).all()


def test_moved_prices_keep_margin_and_endings(products: pd.DataFrame, raw: dict[str, pd.DataFrame]) -> None:
    has_cost = products["cost_cents"].notna()
    price, cost = products.loc[has_cost, "price_cents"], products.loc[has_cost, "cost_cents"].astype(int)
    assert (price * 100 >= cost * 108).all()
    grouped = products[["family", "ladder", "tier"]].notna().any(axis=1)
    assert grouped.mean() >= 0.2
    assert products.loc[grouped, "price_cents"].mod(100).isin([49, 99, 79, 29, 95]).all()


def test_competitor_prices(store: tuple[Path, StoreSummary], products: pd.DataFrame) -> None:
    out, summary = store
    data = load_store(out)
    frame = data.competitors
    assert list(frame.columns) == COMPETITOR_COLUMNS
    assert set(frame["competitor"]) <= set(COMPETITORS)
    assert 0.25 <= frame["sku"].nunique() / SKUS <= 0.55
    per_sku = frame.groupby("sku")["competitor"].nunique()
    assert per_sku.between(1, 2).all() and (per_sku == 2).any() and (per_sku == 1).any()
    per_pair = frame.groupby(["sku", "competitor"]).size()
    assert per_pair.between(1, 4).all() and (per_pair == 4).any()
    assert not frame.duplicated(["date", "sku", "competitor"]).any()
    last = pd.Timestamp(summary.end_date)
    assert frame["date"].between(last - pd.Timedelta(days=COMPETITOR_DAYS - 1), last).all()
    assert (frame["price_cents"] % 10 == 9).all()
    ratio = frame["price_cents"].to_numpy() / products.loc[frame["sku"], "price_cents"].to_numpy()
    assert 0.95 <= np.median(ratio) <= 1.05 and 0.03 <= np.std(np.log(ratio)) <= 0.15
    reference = competitor_reference(frame)
    assert set(reference.index) == set(frame["sku"])


def test_demand_truth_draws_do_not_depend_on_the_groups(market: Market, raw: dict[str, pd.DataFrame]) -> None:
    """The groups move current (reference) prices only: elasticities and volumes are the same draws."""
    products = raw["products.csv"]
    rng_truth = np.random.default_rng(SEED).spawn(7)[1]
    again = Market.draw(
        products["sku"].to_numpy(dtype=object), products["category"].to_numpy(dtype=object),
        np.ones(len(products), dtype=np.int64), rng_truth, brands=products["brand"].to_numpy(dtype=object),
    )
    assert np.array_equal(again.truth.elasticity, market.truth.elasticity)
    assert np.array_equal(again.truth.base_units, market.truth.base_units)
