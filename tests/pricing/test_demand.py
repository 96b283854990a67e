"""DemandModel: sklearn contract, elasticity recovery, monotonicity, pooling, error paths."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
)
from sklearn.utils.validation import check_is_fitted

from pricing.demand import DemandModel

CATEGORY_ELASTICITY = {"dairy": -1.0, "snacks": -2.0, "wine": -3.0}
WEEKDAY = np.array([0.9, 0.9, 0.95, 1.0, 1.1, 1.3, 0.85])  # mean 1
PROMO_UPLIFT = 1.6


def make_sales(
    n_skus: int = 60, n_days: int = 200, seed: int = 0, units: tuple[float, float] = (3.0, 20.0)
) -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """Daily rows with known elasticities: prices move in 14-day regimes, 5% promo days, Poisson units."""
    rng = np.random.default_rng(seed)
    cats = np.array(list(CATEGORY_ELASTICITY))
    cat = cats[np.arange(n_skus) % len(cats)]
    true_b = np.array([CATEGORY_ELASTICITY[c] for c in cat]) + rng.normal(0, 0.3, n_skus)
    base_price = rng.integers(99, 1999, n_skus)
    base_units = rng.uniform(*units, n_skus)
    regimes = rng.choice([0.8, 0.9, 1.0, 1.1, 1.2], size=(n_skus, -(-n_days // 14)))
    price = np.round(base_price[:, None] * np.repeat(regimes, 14, axis=1)[:, :n_days]).astype(np.int64)
    promo = rng.random((n_skus, n_days)) < 0.05
    price = np.where(promo, np.round(price * 0.8).astype(np.int64), price)
    dates = pd.date_range("2024-01-01", periods=n_days, freq="D")
    rate = (
        base_units[:, None]
        * (price / base_price[:, None]) ** true_b[:, None]
        * WEEKDAY[dates.day_of_week.to_numpy()][None, :]
        * np.where(promo, PROMO_UPLIFT, 1.0)
    )
    skus = np.array([f"{i:05d}" for i in range(n_skus)])
    X = pd.DataFrame(
        {
            "sku": np.repeat(skus, n_days),
            "category": np.repeat(cat, n_days),
            "price_cents": price.ravel(),
            "promo": promo.ravel(),
            "date": np.tile(dates, n_skus),
        }
    )
    truth = pd.DataFrame({"sku": skus, "category": cat, "true_elasticity": true_b, "base_price": base_price})
    return X, rng.poisson(rate).ravel(), truth


def with_rows(X: pd.DataFrame, y: np.ndarray, rows: pd.DataFrame, units: list[int]) -> tuple[pd.DataFrame, np.ndarray]:
    return pd.concat([X, rows], ignore_index=True), np.concatenate([y, units])


def extra_rows(sku: str, category: str, prices: list[int], promo: list[bool] | None = None) -> pd.DataFrame:
    n = len(prices)
    return pd.DataFrame(
        {
            "sku": [sku] * n,
            "category": [category] * n,
            "price_cents": np.asarray(prices, dtype=np.int64),
            "promo": promo if promo is not None else [False] * n,
            "date": pd.date_range("2024-03-04", periods=n, freq="D"),
        }
    )


@lru_cache(maxsize=1)
def fitted() -> tuple[DemandModel, pd.DataFrame, np.ndarray, pd.DataFrame]:
    """One model on the synthetic data plus awkward SKUs: sparse, rising with price, no sales, promo only."""
    X, y, truth = make_sales()
    X, y = with_rows(X, y, extra_rows("sparse", "snacks", [250, 250, 250]), [4, 9, 2])
    rising = extra_rows("rising", "dairy", [100, 150, 200] * 20)
    X, y = with_rows(X, y, rising, [2, 5, 9] * 20)
    X, y = with_rows(X, y, extra_rows("nosales", "wine", [900, 1000] * 10), [0] * 20)
    X, y = with_rows(X, y, extra_rows("promoonly", "wine", [800] * 5, [True] * 5), [3, 4, 2, 5, 3])
    return DemandModel().fit(X, y), X, y, truth


# ------------------------------------------------------------ sklearn contract


def test_sklearn_estimator_checks_that_apply() -> None:
    check_no_attributes_set_in_init("DemandModel", DemandModel())
    check_parameters_default_constructible("DemandModel", DemandModel())


def test_get_set_params_and_clone() -> None:
    model = DemandModel(pooling_strength=5.0, min_elasticity=-4.0)
    assert model.get_params() == {
        "pooling_strength": 5.0,
        "max_elasticity": -0.2,
        "min_elasticity": -4.0,
        "default_elasticity": -1.5,
        "max_elasticity_se": 0.2,
        "cross_price": True,
        "seasonality": True,
        "trend": True,
        "rounds": 4,
    }
    assert model.set_params(max_elasticity=-0.5) is model
    assert model.max_elasticity == -0.5
    copy = clone(fitted()[0])
    assert copy.get_params() == DemandModel().get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)


def test_not_fitted_raises() -> None:
    model = DemandModel()
    with pytest.raises(NotFittedError):
        check_is_fitted(model)
    with pytest.raises(NotFittedError):
        model.predict(pd.DataFrame({"sku": ["a"], "price_cents": [100]}))
    with pytest.raises(NotFittedError):
        model.predict_grid(["a"], np.array([[100]]))


def test_fit_returns_self_and_sets_learned_attributes() -> None:
    X, y, _ = make_sales(n_skus=9, n_days=60)
    model = DemandModel()
    assert model.fit(X, y) is model
    check_is_fitted(model)
    assert isinstance(model.skus_, pd.Index) and list(model.skus_) == sorted(X["sku"].unique())
    assert model.elasticity_.shape == model.level_.shape == model.ref_log_price_.shape == (9,)
    assert list(model.feature_names_in_) == ["sku", "category", "price_cents", "promo", "date"]
    assert model.n_features_in_ == 5
    assert model.category_of_["00001"] == X.loc[X["sku"] == "00001", "category"].iloc[0]
    assert 0 < model.score(X, y) <= 1


def test_invalid_params_rejected_at_fit() -> None:
    X, y, _ = make_sales(n_skus=3, n_days=20)
    with pytest.raises(ValueError, match="max_elasticity must be <= 0"):
        DemandModel(max_elasticity=0.5).fit(X, y)
    with pytest.raises(ValueError, match="min_elasticity"):
        DemandModel(min_elasticity=-0.1).fit(X, y)
    with pytest.raises(ValueError, match="y .units sold. must be finite and >= 0"):
        DemandModel().fit(X, -np.ones(len(X)))


# ------------------------------------------------------------ what it learns


def test_elasticity_recovery_on_well_varied_skus() -> None:
    model, _, _, truth = fitted()
    est = model.elasticities().merge(truth, on=["sku", "category"])
    err = est["elasticity"] - est["true_elasticity"]
    assert len(est) == 60
    assert err.abs().mean() < 0.2
    assert err.abs().max() < 0.6
    assert np.corrcoef(est["elasticity"], est["true_elasticity"])[0, 1] > 0.9
    for category, true in CATEGORY_ELASTICITY.items():
        assert model.category_elasticity_[category] == pytest.approx(true, abs=0.3)


def test_promo_uplift_and_weekday_factors_recovered() -> None:
    model = fitted()[0]
    assert model.promo_uplift_ == pytest.approx(np.full(3, PROMO_UPLIFT), abs=0.3)
    assert model.weekday_factor_ == pytest.approx(np.tile(WEEKDAY, (3, 1)), abs=0.06)
    assert model.weekday_factor_.mean(axis=1) == pytest.approx(np.ones(3))


def test_level_calibrated_to_mean_units() -> None:
    model, X, y, _ = fitted()
    frame = pd.DataFrame({"sku": X["sku"], "pred": model.predict(X), "y": y})
    means = frame.groupby("sku")[["pred", "y"]].mean()
    assert means["pred"].to_numpy() == pytest.approx(means["y"].to_numpy(), rel=1e-5, abs=1e-9)


def test_sparse_sku_borrows_its_category_elasticity() -> None:
    model = fitted()[0]
    table = model.elasticities().set_index("sku")
    sparse = table.loc["sparse"]
    assert sparse["pooled_weight"] == 0.0
    assert sparse["elasticity"] == pytest.approx(model.category_elasticity_["snacks"], abs=1e-9)
    assert sparse["se"] == pytest.approx(1 / np.sqrt(model.pooling_strength_["snacks"]))
    assert sparse["uncertain"] == (sparse["se"] > model.max_elasticity_se)
    assert np.isinf(sparse["raw_se"]) and np.isnan(sparse["raw_elasticity"])


def test_demand_rising_with_price_in_the_data_is_clipped() -> None:
    model = fitted()[0]
    table = model.elasticities().set_index("sku")
    assert table.loc["rising", "raw_elasticity"] > 0
    assert table.loc["rising", "elasticity"] <= -0.2


def test_sku_without_sales_or_regular_days_predicts_finite_units() -> None:
    model = fitted()[0]
    grid = model.predict_grid(["nosales", "promoonly"], np.array([[500, 900], [500, 900]]))
    assert np.isfinite(grid).all()
    assert (grid[0] == 0).all()
    assert (grid[1] > 0).all() and grid[1, 0] > grid[1, 1]


# ------------------------------------------------------------ monotone in own price

SKU_POSITIONS = st.integers(min_value=0, max_value=63)
PRICES = st.integers(min_value=1, max_value=10_000_000)


@settings(max_examples=300, deadline=None)
@given(i=SKU_POSITIONS, p1=PRICES, p2=PRICES, promo=st.booleans(), day=st.integers(0, 6))
def test_predicted_units_never_increase_with_price(i: int, p1: int, p2: int, promo: bool, day: int) -> None:
    model = fitted()[0]
    sku = model.skus_[i]
    low, high = sorted((p1, p2))
    date = pd.Timestamp("2024-06-03") + pd.Timedelta(days=day)
    X = pd.DataFrame({"sku": [sku, sku], "price_cents": [low, high], "promo": [promo] * 2, "date": [date] * 2})
    at_low, at_high = model.predict(X)
    assert at_low >= at_high >= 0


@settings(max_examples=50, deadline=None)
@given(prices=st.lists(st.integers(1, 1_000_000), min_size=2, max_size=12))
def test_grid_is_non_increasing_along_sorted_candidates(prices: list[int]) -> None:
    model = fitted()[0]
    candidates = np.sort(np.asarray(prices))
    grid = model.predict_grid(list(model.skus_), np.tile(candidates, (len(model.skus_), 1)))
    assert (np.diff(grid, axis=1) <= 0).all()


# ------------------------------------------------------------ predict_grid


def test_predict_grid_shape_and_equals_predict() -> None:
    model = fitted()[0]
    skus = ["00003", "sparse", "00042", "rising"]
    prices = np.array([[100, 150, 199, 250, 999]] * 4) + np.arange(4)[:, None]
    grid = model.predict_grid(skus, prices)
    assert grid.shape == (4, 5)
    rows = pd.DataFrame({"sku": np.repeat(skus, 5), "price_cents": prices.ravel(), "promo": False})
    assert model.predict(rows) == pytest.approx(grid.ravel(), rel=1e-12)
    assert model.predict_grid(skus, prices[0]) == pytest.approx(model.predict_grid(skus, np.tile(prices[0], (4, 1))))


def test_predict_grid_rejects_bad_shapes_and_prices() -> None:
    model = fitted()[0]
    with pytest.raises(ValueError, match="shape"):
        model.predict_grid(["00001", "00002"], np.ones((3, 4)) * 100)
    with pytest.raises(ValueError, match="positive"):
        model.predict_grid(["00001"], np.array([[100, 0]]))


# ------------------------------------------------------------ error paths


def test_unknown_skus_are_named() -> None:
    model = fitted()[0]
    X = pd.DataFrame({"sku": ["00001", "000123", "x9", "000123", "zz"], "price_cents": [100] * 5})
    with pytest.raises(ValueError, match=r"trained on other SKUs: 3 unknown, e\.g\. '000123', 'x9', 'zz'"):
        model.predict(X)
    with pytest.raises(ValueError, match="1 unknown, e.g. 'nope'"):
        model.predict_grid(["00001", "nope"], np.full((2, 2), 100))
    assert model.unknown_skus(["00001", "b", "a", "b"]) == ["b", "a"]


@pytest.mark.parametrize("column", ["sku", "price_cents"])
def test_predict_missing_column_named(column: str) -> None:
    model = fitted()[0]
    X = pd.DataFrame({"sku": ["00001"], "price_cents": [100]}).drop(columns=column)
    with pytest.raises(ValueError, match=f"missing column '{column}'"):
        model.predict(X)


@pytest.mark.parametrize("column", ["sku", "category", "price_cents"])
def test_fit_missing_column_named(column: str) -> None:
    X, y, _ = make_sales(n_skus=3, n_days=20)
    with pytest.raises(ValueError, match=f"missing column '{column}'"):
        DemandModel().fit(X.drop(columns=column), y)


def test_fit_rejects_numeric_skus_and_bad_prices() -> None:
    X, y, _ = make_sales(n_skus=3, n_days=20)
    with pytest.raises(ValueError, match="sku must hold strings"):
        DemandModel().fit(X.assign(sku=X["sku"].astype(int)), y)
    with pytest.raises(ValueError, match="price_cents must be positive"):
        DemandModel().fit(X.assign(price_cents=0), y)
    with pytest.raises(ValueError, match="one category"):
        DemandModel().fit(X.assign(category=np.arange(len(X)).astype(str)), y)


# ------------------------------------------------------------ inputs and parameters


def test_categorical_columns_give_the_same_model() -> None:
    X, y, _ = make_sales(n_skus=12, n_days=60)
    order = list(reversed(sorted(X["sku"].unique()))) + ["unused"]
    Xc = X.assign(sku=pd.Categorical(X["sku"], categories=order), category=X["category"].astype("category"))
    plain, categorical = DemandModel().fit(X, y), DemandModel().fit(Xc, y)
    assert list(categorical.skus_) == list(plain.skus_)  # sorted, unused categories dropped
    assert categorical.elasticity_ == pytest.approx(plain.elasticity_, rel=1e-12)
    assert categorical.predict(Xc) == pytest.approx(plain.predict(X), rel=1e-12)
    query = pd.DataFrame({"sku": pd.Categorical(["00001", "unused"], categories=order), "price_cents": [100, 100]})
    with pytest.raises(ValueError, match="1 unknown, e.g. 'unused'"):
        categorical.predict(query)


def test_fit_leaves_its_input_alone() -> None:
    X, y, _ = make_sales(n_skus=6, n_days=30)
    before, y_before = X.copy(), y.copy()
    DemandModel().fit(X, y)
    pd.testing.assert_frame_equal(X, before)
    assert (y == y_before).all()


def test_pooling_strength_extremes() -> None:
    X, y, _ = make_sales(n_skus=12, n_days=90)
    alone = DemandModel(pooling_strength=0.0).fit(X, y)
    assert alone.elasticity_ == pytest.approx(np.clip(alone.raw_elasticity_, -6.0, -0.2))
    assert np.isfinite(alone.raw_elasticity_).all()
    assert (alone.pooled_weight_ == 1.0).all()
    pooled = DemandModel(pooling_strength=1e12).fit(X, y)
    expected = pooled.category_elasticity_[pooled.category_of_].to_numpy()
    assert pooled.elasticity_ == pytest.approx(expected, abs=1e-6)


def test_works_without_promo_and_date_columns() -> None:
    X, y, _ = make_sales(n_skus=6, n_days=60)
    model = DemandModel().fit(X[["sku", "category", "price_cents"]], y)
    assert list(model.feature_names_in_) == ["sku", "category", "price_cents"]
    assert (model.weekday_factor_ == 1).all() and (model.promo_uplift_ == 1).all()
    assert model.predict(X) == pytest.approx(model.predict(X.drop(columns=["promo", "date"])))
