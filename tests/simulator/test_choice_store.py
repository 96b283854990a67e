"""The choice-market sample store: determinism, data contracts, rare price changes, dirty receipts."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pricing.core.data import LABEL_COLUMNS, PRODUCT_COLUMNS, load_labels, load_products
from simulator.choice_market import ChoiceMarket, load_market
from simulator.choice_store import (
    DUPLICATE_SHARE,
    RECEIPT_COLUMNS,
    REFUND_SHARE,
    VOID_SHARE,
    ChoiceStoreSummary,
    generate_choice_store,
)
from simulator.market import MAX_ELASTICITY, MIN_ELASTICITY

SKUS, SEED, GATEWAYS = 128, 11, 3
END = date(2026, 11, 1)
FILES = ("products.csv", "receipts.csv", "labels.csv", "truth.csv", "truth_choice.json")


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ChoiceStoreSummary]:
    out = tmp_path_factory.mktemp("choice")
    return out, generate_choice_store(out, skus=SKUS, seed=SEED, gateways=GATEWAYS, end_date=END)


@pytest.fixture(scope="module")
def receipts(store: tuple[Path, ChoiceStoreSummary]) -> pd.DataFrame:
    out, _ = store
    return pd.read_csv(out / "receipts.csv", dtype={"sku": str, "receipt": str, "store": str, "timestamp": str})


@pytest.fixture(scope="module")
def products(store: tuple[Path, ChoiceStoreSummary]) -> pd.DataFrame:
    out, _ = store
    return pd.read_csv(out / "products.csv", dtype=str, keep_default_na=False)


def classify(receipts: pd.DataFrame) -> pd.DataFrame:
    """Receipt lines without exact duplicates, each a sale, void (+ its rescan) or refund."""
    lines = receipts.drop_duplicates().sort_values(["receipt", "line"]).reset_index(drop=True)
    negative = lines["quantity"] < 0
    previous = lines.shift(1)
    is_void = (
        negative
        & (previous["receipt"] == lines["receipt"])
        & (previous["line"] == lines["line"] - 1)
        & (previous["sku"] == lines["sku"])
        & (previous["quantity"] == -lines["quantity"])
        & (previous["unit_price_cents"] == lines["unit_price_cents"])
    )
    size = lines.groupby("receipt")["line"].transform("size")
    is_refund = negative & (size == 1)
    kind = np.select([is_void, is_refund, ~negative], ["void", "refund", "sale"], "unexplained")
    return lines.assign(kind=kind, date=lines["timestamp"].str[:10])


def test_files_and_summary(store: tuple[Path, ChoiceStoreSummary], receipts: pd.DataFrame) -> None:
    out, summary = store
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert summary.skus == SKUS and summary.days == 365 and summary.end_date == END
    assert summary.start_date == date(2025, 11, 2)
    assert summary.lines == len(receipts)
    assert summary.seconds < 10
    assert (out / "receipts.csv").stat().st_size < 20_000_000
    assert 100_000 < summary.sale_lines < 400_000


def test_same_seed_same_bytes(store: tuple[Path, ChoiceStoreSummary], tmp_path: Path) -> None:
    out, _ = store
    generate_choice_store(tmp_path / "again", skus=SKUS, seed=SEED, gateways=GATEWAYS, end_date=END)
    for name in FILES:
        assert (tmp_path / "again" / name).read_bytes() == (out / name).read_bytes(), name
    generate_choice_store(tmp_path / "other", skus=SKUS, seed=SEED + 1, gateways=GATEWAYS, end_date=END)
    assert (tmp_path / "other" / "receipts.csv").read_bytes() != (out / "receipts.csv").read_bytes()


def test_products_follow_the_contract_and_price_is_the_truth_reference(
    store: tuple[Path, ChoiceStoreSummary], products: pd.DataFrame
) -> None:
    out, _ = store
    assert list(products.columns) == PRODUCT_COLUMNS
    loaded = load_products(out / "products.csv")
    assert loaded.rejects == [] and len(loaded.frame) == SKUS
    assert products["sku"].str.fullmatch(r"C\d{6}").all() and products["sku"].is_unique
    market = load_market(out)
    assert isinstance(market, ChoiceMarket)
    truth = market.truth.frame().set_index("sku").loc[products["sku"]]
    price = products["price_cents"].astype(int).to_numpy()
    np.testing.assert_array_equal(price, truth["ref_price_cents"].to_numpy())
    assert (products["category"].to_numpy() == truth["category"].to_numpy()).all()
    cost = products["cost_cents"].astype(int).to_numpy()
    assert ((cost >= 0.55 * price - 1) & (cost <= 0.75 * price + 1)).all()
    e = market.truth.elasticity
    assert (e >= MIN_ELASTICITY).all() and (e <= MAX_ELASTICITY).all()
    sizes = products["category"].value_counts()
    assert sizes.min() >= 6 and sizes.max() <= 20 and len(sizes) >= 6


def test_labels(store: tuple[Path, ChoiceStoreSummary], products: pd.DataFrame) -> None:
    out, _ = store
    loaded = load_labels(out / "labels.csv")
    assert loaded.rejects == []
    labels = pd.read_csv(out / "labels.csv", dtype=str)
    assert list(labels.columns) == LABEL_COLUMNS
    assert sorted(labels["sku"]) == sorted(products["sku"])
    assert set(labels["gateway"]) == {f"gw-{g}" for g in range(1, GATEWAYS + 1)}
    assert (labels["tag_type"] == "2.9").all()


def test_receipt_format(receipts: pd.DataFrame, products: pd.DataFrame) -> None:
    assert list(receipts.columns) == RECEIPT_COLUMNS
    assert receipts["timestamp"].str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d").all()
    stamp = pd.to_datetime(receipts["timestamp"], format="%Y-%m-%dT%H:%M:%S")
    clock = stamp.dt.hour * 3600 + stamp.dt.minute * 60 + stamp.dt.second
    assert clock.min() >= 8 * 3600 and clock.max() <= 21 * 3600
    assert stamp.is_monotonic_increasing
    assert set(receipts["promo"].unique()) == {0, 1}
    assert (receipts["store"] == "store-001").all()
    assert receipts["sku"].isin(set(products["sku"])).all()
    assert (receipts["quantity"] != 0).all() and receipts["quantity"].abs().max() <= 2
    assert (receipts["unit_price_cents"] >= 1).all()
    assert receipts["receipt"].map(lambda r: bool(re.fullmatch(r"R\d{8}-\d{5}", r))).all()
    # Line numbers run 1..n within each receipt; a receipt's lines are in time order.
    lines = receipts.drop_duplicates().sort_values(["receipt", "line"])
    grouped = lines.groupby("receipt")
    np.testing.assert_array_equal(lines["line"].to_numpy(), grouped.cumcount().to_numpy() + 1)
    assert (grouped["timestamp"].agg(lambda t: t.is_monotonic_increasing)).all()
    assert grouped.size().mean() > 1.5  # baskets hold several lines


def test_only_sales_are_positive_and_every_negative_line_is_a_void_or_refund(receipts: pd.DataFrame) -> None:
    kinds = classify(receipts)
    assert (kinds["kind"] != "unexplained").all()
    voids = kinds[kinds["kind"] == "void"]
    rescans = kinds.loc[voids.index - 1]
    gap = pd.to_datetime(voids["timestamp"]).to_numpy() - pd.to_datetime(rescans["timestamp"]).to_numpy()
    assert (gap > np.timedelta64(0, "s")).all() and (gap <= np.timedelta64(30, "s")).all()


def test_dirt_counts(store: tuple[Path, ChoiceStoreSummary], receipts: pd.DataFrame) -> None:
    _, summary = store
    duplicates = int(receipts.duplicated().sum())
    kinds = classify(receipts)["kind"].value_counts()
    sales = summary.sale_lines
    assert duplicates == summary.duplicates
    assert kinds["void"] == summary.voids
    assert kinds["refund"] == summary.refunds
    assert kinds["sale"] == sales + summary.voids  # each void pair rescans a sale line
    assert summary.lines == sales + 2 * summary.voids + summary.refunds + duplicates
    assert 0.5 * DUPLICATE_SHARE < duplicates / summary.lines < 1.6 * DUPLICATE_SHARE
    assert 0.75 * VOID_SHARE < summary.voids / sales < 1.25 * VOID_SHARE
    assert 0.6 * REFUND_SHARE < summary.refunds / sales < 1.3 * REFUND_SHARE  # refunds past the end are dropped


def test_refunds_are_later_and_at_a_price_the_sku_sold_at(receipts: pd.DataFrame) -> None:
    kinds = classify(receipts)
    refunds = kinds[kinds["kind"] == "refund"]
    sales = kinds[kinds["kind"] == "sale"]
    sold = set(zip(sales["sku"], sales["unit_price_cents"], sales["promo"], strict=True))
    assert all(key in sold for key in zip(refunds["sku"], refunds["unit_price_cents"], refunds["promo"], strict=True))
    first_day = pd.Timestamp(sales["date"].min())
    assert (pd.to_datetime(refunds["date"]) > first_day).all()


def test_netting_receipts_gives_the_units_sold(store: tuple[Path, ChoiceStoreSummary], receipts: pd.DataFrame) -> None:
    _, summary = store
    kinds = classify(receipts)
    sold = kinds[kinds["kind"] != "refund"].groupby(["date", "sku"])["quantity"].sum()
    truth = summary.sales.assign(date=summary.sales["date"].dt.strftime("%Y-%m-%d"))
    truth = truth.set_index(["date", "sku"])["units"]
    assert int(truth.sum()) == summary.units == int(sold.sum())
    pd.testing.assert_series_equal(
        sold.reindex(truth.index, fill_value=0).astype(np.int64), truth.astype(np.int64), check_names=False
    )
    # Purchases are the sale lines; what shoppers bought is close to what the market expected.
    assert int(summary.sales["purchases"].sum()) == summary.sale_lines
    assert summary.units == pytest.approx(summary.sales["expected_units"].sum(), rel=0.03)


def test_receipt_prices_and_promo_flags_are_the_shelf_prices(
    store: tuple[Path, ChoiceStoreSummary], receipts: pd.DataFrame
) -> None:
    _, summary = store
    kinds = classify(receipts)
    sales = kinds[kinds["kind"] == "sale"].set_index(["date", "sku"])
    shelf = summary.sales.assign(date=summary.sales["date"].dt.strftime("%Y-%m-%d")).set_index(["date", "sku"])
    joined = sales.join(shelf[["price_cents", "promo"]].rename(columns={"promo": "shelf_promo"}), how="left")
    np.testing.assert_array_equal(joined["unit_price_cents"].to_numpy(), joined["price_cents"].to_numpy())
    np.testing.assert_array_equal(joined["promo"].to_numpy() == 1, joined["shelf_promo"].to_numpy())
    assert (kinds.loc[kinds["promo"] == 1, "sku"].nunique()) > SKUS // 2


def test_prices_change_rarely_and_end_at_todays_price(
    store: tuple[Path, ChoiceStoreSummary], products: pd.DataFrame, receipts: pd.DataFrame
) -> None:
    _, summary = store
    history = summary.sales.sort_values(["sku", "date"])
    distinct = history.groupby("sku")["regular_price_cents"].nunique()
    assert 2 <= distinct.median() <= 5 and distinct.min() >= 1 and distinct.max() <= 5
    changed = history.groupby("sku")["regular_price_cents"].diff().fillna(0) != 0
    assert summary.price_changes == int(changed.sum())
    assert 1 <= summary.price_changes / SKUS <= 4  # 1-4 changes a year
    before = history.groupby("sku")["regular_price_cents"].shift(1)[changed]
    after = history["regular_price_cents"][changed]
    step = (after / before - 1).abs()
    # 5-15% moves to prices ending in 9 (so a bit more or less); a cheap SKU moves at least 10 cents.
    assert ((after - before).abs() >= 10).all() and 0.07 < step.median() < 0.12
    assert ((step <= 0.17) | ((after - before).abs() == 10)).all()
    assert (step[before >= 300] >= 0.03).all()
    regular = history[~history["promo"]]
    np.testing.assert_array_equal(regular["price_cents"], regular["regular_price_cents"])
    last = regular.sort_values("date").groupby("sku")["price_cents"].last()
    today = products.set_index("sku")["price_cents"].astype(int)
    np.testing.assert_array_equal(last.loc[today.index].to_numpy(), today.to_numpy())
    # Seen in the receipts too: few distinct regular prices per SKU, mostly ending in 9.
    seen = receipts[receipts["promo"] == 0].groupby("sku")["unit_price_cents"].nunique()
    assert 2 <= seen.median() <= 5
    assert (receipts["unit_price_cents"] % 10 == 9).mean() > 0.95
    # Promo weeks: a few a year, 10-30% below the regular price (to the nearest price ending in 9).
    promo_days = summary.sales.groupby("sku")["promo"].sum()
    assert 7 <= promo_days.median() <= 35
    on = history[history["promo"]]
    discount = 1 - on["price_cents"] / on["regular_price_cents"]
    assert (discount >= 0.05).all() and (discount <= 0.30 + 5 / on["regular_price_cents"] + 1e-9).all()
    assert 0.15 < discount.median() < 0.25


def test_without_dirt_receipts_are_clean(tmp_path: Path) -> None:
    summary = generate_choice_store(tmp_path, skus=40, days=60, seed=3, dirt=False)
    receipts = pd.read_csv(tmp_path / "receipts.csv", dtype={"sku": str, "receipt": str})
    assert (receipts["quantity"] > 0).all()
    assert not receipts.duplicated().any()
    assert summary.voids == summary.refunds == summary.duplicates == 0
    assert summary.lines == summary.sale_lines == int(summary.sales["purchases"].sum())
    assert int(receipts["quantity"].sum()) == summary.units


def test_a_larger_store(tmp_path: Path) -> None:
    summary = generate_choice_store(tmp_path, skus=400, days=90, seed=5)
    products = pd.read_csv(tmp_path / "products.csv", dtype=str)
    sizes = products["category"].value_counts()
    assert len(products) == 400 and sizes.min() >= 6 and sizes.max() <= 20
    market = load_market(tmp_path)
    assert isinstance(market, ChoiceMarket) and len(market) == 400
    assert summary.price_changes > 0 and summary.seconds < 30


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        generate_choice_store("/nonexistent-never-written", skus=0)
