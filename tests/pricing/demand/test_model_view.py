"""model_view: per-SKU and per-category figures of a fitted model, and the data each SKU rests on."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from pricing.demand.model import DemandModel
from pricing.demand.model_view import (
    LOGLOG,
    ModelViewError,
    category_summary,
    model_view,
)

HAND = "HAND-1"
HAND_PRICES = [100, 100, 120, 120, 100, 90, 90, 90, 120, 100]  # 3 distinct prices
HAND_DAYS = 10


def make_sales(n_skus: int = 24, n_days: int = 60, seed: int = 5) -> tuple[pd.DataFrame, np.ndarray]:
    """Two stores' daily rows (every SKU twice a day) with prices in 7-day regimes, plus a
    hand-made SKU sold in one store on 10 days at 3 prices."""
    rng = np.random.default_rng(seed)
    skus = np.array([f"{i:04d}" for i in range(n_skus)])
    cat = np.where(np.arange(n_skus) % 2 == 0, "tea", "coffee")
    base = rng.integers(100, 900, n_skus)
    regimes = rng.choice([0.8, 0.9, 1.0, 1.1], size=(n_skus, -(-n_days // 7)))
    price = np.round(base[:, None] * np.repeat(regimes, 7, axis=1)[:, :n_days]).astype(np.int64)
    rate = rng.uniform(3, 10, n_skus)[:, None] * (price / base[:, None]) ** -1.5
    dates = pd.date_range("2024-03-01", periods=n_days, freq="D")
    one_store = pd.DataFrame(
        {
            "sku": np.repeat(skus, n_days),
            "category": np.repeat(cat, n_days),
            "price_cents": price.ravel(),
            "promo": False,
            "date": np.tile(dates, n_skus),
        }
    )
    hand = pd.DataFrame(
        {"sku": HAND, "category": "tea", "price_cents": HAND_PRICES, "promo": False, "date": dates[:HAND_DAYS]}
    )
    X = pd.concat([one_store, one_store, hand], ignore_index=True).sort_values("date", kind="stable")
    y = np.concatenate([rng.poisson(rate).ravel(), rng.poisson(rate).ravel(), rng.poisson(5, HAND_DAYS)])
    y = y[X.index.to_numpy()]
    return X.reset_index(drop=True), y


@lru_cache(maxsize=1)
def fitted() -> tuple[DemandModel, pd.DataFrame]:
    X, y = make_sales()
    return DemandModel().fit(X, y), X


def expected_counts(X: pd.DataFrame) -> pd.DataFrame:
    return X.groupby("sku").agg(days=("date", "nunique"), prices=("price_cents", "nunique"))


def test_view_numbers_are_the_models() -> None:
    model, _ = fitted()
    view = model_view(model)
    assert [r.sku for r in view.skus] == list(model.skus_)
    assert [r.elasticity for r in view.skus] == list(model.elasticity_)
    assert [r.se for r in view.skus] == list(model.elasticity_se_)
    assert [r.uncertain for r in view.skus] == list(model.uncertain_)
    assert [r.category for r in view.skus] == list(model.category_of_)
    assert {r.model for r in view.skus} == {LOGLOG}


def test_days_and_distinct_prices_of_a_hand_made_sku() -> None:
    model, X = fitted()
    (hand,) = model_view(model, skus=[HAND]).skus
    assert (hand.days, hand.distinct_prices) == (HAND_DAYS, 3)
    (other,) = model_view(model, skus=["0003"]).skus
    assert other.days == 60  # two stores' rows on the same day count once
    counts = expected_counts(X)
    assert list(model.sku_days_) == list(counts.loc[model.skus_, "days"])
    assert list(model.sku_distinct_prices_) == list(counts.loc[model.skus_, "prices"])


def test_counts_do_not_depend_on_row_order() -> None:
    model, X = fitted()
    X, y = make_sales()
    shuffled = np.random.default_rng(1).permutation(len(X))
    again = DemandModel().fit(X.iloc[shuffled].reset_index(drop=True), y[shuffled])
    np.testing.assert_array_equal(again.sku_days_, model.sku_days_)
    np.testing.assert_array_equal(again.sku_distinct_prices_, model.sku_distinct_prices_)


def test_without_dates_days_are_rows() -> None:
    X = pd.DataFrame({"sku": ["a"] * 4 + ["b"] * 3, "category": "c", "price_cents": [100, 110, 100, 110, 200, 200, 200]})
    model = DemandModel().fit(X, [5, 4, 6, 3, 2, 2, 3])
    assert list(model.sku_days_) == [4, 3] and list(model.sku_distinct_prices_) == [2, 1]


def test_categories_summarise_all_their_skus() -> None:
    model, _ = fitted()
    summary = {c.category: c for c in category_summary(model)}
    table = model.elasticities()
    for cat, group in table.groupby("category"):
        row = summary[cat]
        assert row.n_skus == len(group) and row.n_uncertain == int(group["uncertain"].sum())
        assert row.mean_elasticity == pytest.approx(group["elasticity"].mean())
        assert row.elasticity_sd == pytest.approx(group["elasticity"].std(ddof=0))
    # a SKU filter shows its whole category; a category filter only that category's SKUs
    view = model_view(model, skus=["0003"])
    assert [c.category for c in view.categories] == ["coffee"] and view.categories[0] == summary["coffee"]
    tea = model_view(model, category="tea")
    assert {r.category for r in tea.skus} == {"tea"} and len(tea.skus) == summary["tea"].n_skus


def test_as_dict_is_json_shaped() -> None:
    model, _ = fitted()
    payload = model_view(model, skus=[HAND]).as_dict()
    assert set(payload) == {"skus", "categories"}
    assert set(payload["skus"][0]) == {"sku", "category", "elasticity", "se", "uncertain", "model", "days", "distinct_prices"}
    assert set(payload["categories"][0]) == {"category", "model", "n_skus", "mean_elasticity", "elasticity_sd", "n_uncertain"}


def test_unknown_filters_are_errors() -> None:
    model, _ = fitted()
    with pytest.raises(ModelViewError, match="SKU not in the model: 'nope'"):
        model_view(model, skus=["0001", "nope"])
    with pytest.raises(ModelViewError, match="category not in the model: 'wine'"):
        model_view(model, category="wine")


def test_a_model_saved_before_the_counts_shows_none() -> None:
    old = DemandModel().fit(*make_sales(n_skus=4, n_days=20))
    del old.sku_days_, old.sku_distinct_prices_
    row = model_view(old).skus[0]
    assert row.days is None and row.distinct_prices is None and row.elasticity == old.elasticity_[0]
