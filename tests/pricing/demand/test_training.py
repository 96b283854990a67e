"""train_demand_model: joins, holdout metrics vs the seasonal-naive baseline, refit on all data."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest

from pricing.demand.model import DemandModel
from pricing.demand.training import (
    TrainingResult,
    _bias,
    _seasonal_naive,
    _training_frame,
    _wape,
    train_demand_model,
)

START = pd.Timestamp("2024-01-01")


def make_store_data(
    n_skus: int = 30, n_days: int = 140, stores: tuple[str, ...] = ("S1", "S2"), seed: int = 1
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sales in the data-contract shape (date, store, sku, units, price_cents, promo) and products.

    Prices change every 14 days by up to ±25%, elasticities -1 to -3, so a model that reads the
    price should beat a baseline that only repeats recent weekdays.
    """
    rng = np.random.default_rng(seed)
    skus = np.array([f"0{i:03d}" for i in range(n_skus)])  # leading zero: must stay a string
    category = np.array(["dairy", "snacks", "wine"])[np.arange(n_skus) % 3]
    elasticity = rng.uniform(-3.0, -1.0, n_skus)
    base_price = rng.integers(150, 1500, n_skus)
    base_units = rng.uniform(5, 25, n_skus)
    regimes = rng.choice([0.75, 0.9, 1.0, 1.1, 1.25], size=(n_skus, -(-n_days // 14)))
    price = np.round(base_price[:, None] * np.repeat(regimes, 14, axis=1)[:, :n_days]).astype(np.int64)
    promo = rng.random((n_skus, n_days)) < 0.04
    price = np.where(promo, np.round(price * 0.8).astype(np.int64), price)
    rate = base_units[:, None] * (price / base_price[:, None]) ** elasticity[:, None] * np.where(promo, 1.5, 1.0)
    dates = pd.date_range(START, periods=n_days, freq="D")
    frames = [
        pd.DataFrame(
            {
                "date": np.tile(dates, n_skus),
                "store": store,
                "sku": np.repeat(skus, n_days),
                "units": rng.poisson(rate).ravel(),
                "price_cents": price.ravel(),
                "promo": promo.ravel(),
            }
        )
        for store in stores
    ]
    products = pd.DataFrame(
        {"sku": skus, "name": [f"Product {s}" for s in skus], "category": category, "price_cents": base_price}
    )
    return pd.concat(frames, ignore_index=True), products


@lru_cache(maxsize=1)
def trained() -> tuple[TrainingResult, list[str], pd.DataFrame, pd.DataFrame]:
    sales, products = make_store_data()
    # A SKU launched inside the holdout window, and sales of a SKU missing from products.
    new = sales[sales["sku"] == "0001"].assign(sku="0999")
    new = new[new["date"] >= START + pd.Timedelta(days=130)]
    stray = sales.head(5).assign(sku="ghost")
    sales = pd.concat([sales, new, stray], ignore_index=True)
    products = pd.concat([products, pd.DataFrame({"sku": ["0999"], "name": ["New"], "category": ["dairy"]})])
    messages: list[str] = []
    return train_demand_model(sales, products, progress=messages.append), messages, sales, products


def test_result_describes_the_training_data() -> None:
    result, _, sales, _ = trained()
    assert isinstance(result.model, DemandModel)
    assert result.n_rows == len(sales) - 5
    assert result.dropped_rows == 5 and "5 sales rows dropped" in result.notes[0]
    assert result.n_skus == 31
    assert result.data_start == dt.date(2024, 1, 1)
    assert result.data_end == dt.date(2024, 1, 1) + dt.timedelta(days=139)
    assert result.holdout_start == result.data_end - dt.timedelta(days=27)
    assert result.features == ["sku", "category", "price_cents", "promo", "date"]
    assert result.seconds > 0


def test_model_is_refitted_on_all_data_with_product_categories() -> None:
    result, _, _, products = trained()
    model = result.model
    assert "0999" in model.skus_  # only sold inside the holdout
    assert "ghost" not in model.skus_
    expected = products.set_index("sku")["category"]
    assert (model.category_of_ == expected.reindex(model.skus_)).all()
    assert model.skus_[0] == "0000"  # strings kept, leading zeros too


def test_holdout_metrics_beat_the_seasonal_naive_baseline() -> None:
    metrics = trained()[0].metrics
    assert metrics["holdout_days"] == 28
    assert metrics["holdout_rows"] == 30 * 2 * 28
    assert metrics["holdout_unseen_sku_rows"] == 2 * 10
    assert 0 < metrics["wape"] < metrics["baseline_wape"]
    assert abs(metrics["bias"]) < 0.05
    assert np.isfinite(metrics["baseline_bias"])


def test_progress_is_reported() -> None:
    messages = trained()[1]
    assert any("for the holdout" in m for m in messages)
    assert any("holdout WAPE" in m for m in messages)
    assert any(m.startswith("fitting on all") for m in messages)


def test_no_holdout() -> None:
    sales, products = make_store_data(n_skus=6, n_days=30)
    result = train_demand_model(sales, products, holdout_days=0)
    assert result.metrics == {}
    assert result.holdout_start is None
    assert result.n_rows == len(sales)


def test_model_params_are_used() -> None:
    sales, products = make_store_data(n_skus=6, n_days=60)
    result = train_demand_model(sales, products, model=DemandModel(max_elasticity=-1.5))
    assert result.model.max_elasticity == -1.5
    assert (result.model.elasticity_ <= -1.5).all()


def test_errors() -> None:
    sales, products = make_store_data(n_skus=3, n_days=20)
    with pytest.raises(ValueError, match="sales is missing column.*units"):
        train_demand_model(sales.drop(columns="units"), products)
    with pytest.raises(ValueError, match="products is missing column.*category"):
        train_demand_model(sales, products.drop(columns="category"))
    with pytest.raises(ValueError, match="leaves no history"):
        train_demand_model(sales, products, holdout_days=20)
    with pytest.raises(ValueError, match="holdout_days must be >= 0"):
        train_demand_model(sales, products, holdout_days=-1)
    with pytest.raises(ValueError, match="duplicate sku '0001'"):
        train_demand_model(sales, pd.concat([products, products.iloc[[1]]]))
    with pytest.raises(ValueError, match="no sales row"):
        train_demand_model(sales.assign(sku="zz"), products)


def test_wape_and_bias() -> None:
    y = np.array([10.0, 0.0, 10.0])
    assert _wape(y, np.array([12.0, 1.0, 7.0])) == pytest.approx(6 / 20)
    assert _bias(y, np.array([12.0, 1.0, 7.0])) == pytest.approx(0.0)
    assert _bias(y, np.array([15.0, 0.0, 15.0])) == pytest.approx(0.5)
    assert np.isnan(_wape(np.zeros(2), np.ones(2)))


def test_seasonal_naive_uses_last_four_same_weekdays_before_cutoff() -> None:
    cutoff = pd.Timestamp("2024-03-04")  # a Monday
    history_dates = pd.date_range(cutoff - pd.Timedelta(days=35), cutoff - pd.Timedelta(days=1))
    train_X = pd.DataFrame({"store": "S1", "sku": "a", "date": history_dates})
    train_y = np.arange(len(history_dates), dtype=float)  # Mondays: 0, 7, 14, 21, 28
    test_X = pd.DataFrame(
        {"store": ["S1", "S1", "S2"], "sku": ["a", "a", "a"], "date": [cutoff, cutoff + pd.Timedelta(days=8), cutoff]}
    )
    baseline = _seasonal_naive(train_X, train_y, test_X, cutoff)
    mondays = [7, 14, 21, 28]  # the 5-weeks-ago Monday (0) is out of the window
    tuesdays = [8, 15, 22, 29]
    assert baseline == pytest.approx([np.mean(mondays), np.mean(tuesdays), 0.0])


# -- zero-sales days ------------------------------------------------------------------------------


def sparse_store(seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One store's dense history with a third of the rows left out, as exports leave out zero days."""
    sales, products = make_store_data(n_skus=12, n_days=70, stores=("S1",), seed=seed)
    rng = np.random.default_rng(seed)
    return sales[rng.random(len(sales)) < 0.67], products


def test_the_training_frame_gets_the_listed_days_without_a_row() -> None:
    sales, products = sparse_store()
    ghost = sales.iloc[[0, 5]].assign(sku="ghost", date=[START, START + pd.Timedelta(days=9)])  # a gap, unknown SKU
    X, units, dropped, report = _training_frame(pd.concat([sales, ghost], ignore_index=True), products)
    assert dropped == 2  # unknown SKUs are dropped before completing: their gap is not filled
    expected = sales.groupby("sku")["date"].agg(lambda d: (d.max() - d.min()).days + 1).sum()
    assert report.zero_days_filled == expected - len(sales) > 0
    assert len(X) == len(units) == expected and report.skus_listed_by_rule == 12
    assert X["date"].is_monotonic_increasing
    # Every (sku, day) once, and a filled day has 0 units at the higher price of the rows around it.
    key = X["sku"].astype(str) + X["date"].astype(str)
    assert not key.duplicated().any()
    known = set(zip(sales["sku"], sales["date"], strict=True))
    filled = np.array([(s, d) not in known for s, d in zip(X["sku"].astype(str), X["date"], strict=True)])
    assert filled.sum() == report.zero_days_filled and (units[filled] == 0).all()
    sku, day = str(X["sku"][filled].iloc[0]), X["date"][filled].iloc[0]
    before = sales[(sales["sku"] == sku) & (sales["date"] < day)].sort_values("date")
    after = sales[(sales["sku"] == sku) & (sales["date"] > day)].sort_values("date")
    higher = max(int(before["price_cents"].iloc[-1]), int(after["price_cents"].iloc[0]))
    assert int(X["price_cents"][filled].iloc[0]) == higher


def test_training_reports_and_records_the_filled_days() -> None:
    sales, products = sparse_store()
    messages: list[str] = []
    result = train_demand_model(sales, products, holdout_days=7, progress=messages.append)
    assert result.zero_days_filled > 0 and result.n_rows == len(sales) + result.zero_days_filled
    assert result.listing == {
        "zero_days_filled": result.zero_days_filled, "skus_listed_by_file": 0, "skus_listed_by_rule": 12,
        "rows_outside_listing": 0, "listed_without_sales": 0,
    }
    assert any(f"{result.zero_days_filled:,} zero-sales days filled" in m for m in messages)
    assert any("zero-sales days filled" in note for note in result.notes)


def test_an_assortment_listing_decides_which_days_are_filled() -> None:
    sales, products = sparse_store()
    first, last = sales["date"].min(), sales["date"].max()
    listing = pd.DataFrame(
        {
            "sku": pd.Series(products["sku"], dtype="string"),
            "store": pd.Series([pd.NA] * len(products), dtype="string"),
            "listed_from": first,
            "listed_to": last,
        }
    )
    _, _, _, report = _training_frame(sales, products, listing)
    days = (last - first).days + 1
    assert report.zero_days_filled == 12 * days - len(sales)  # every SKU listed on every day
    assert report.skus_listed_by_file == 12 and report.skus_listed_by_rule == 0


def test_a_dense_history_is_trained_on_as_it_is() -> None:
    sales, products = make_store_data(n_skus=6, n_days=30, stores=("S1",))
    X, _, _, report = _training_frame(sales, products)
    assert report.zero_days_filled == 0 and len(X) == len(sales)
    old = TrainingResult(None, {}, START.date(), START.date(), 0, 0, [], 0.0)  # old callers: new fields default
    assert old.zero_days_filled == 0 and old.listing == {}
