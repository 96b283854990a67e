"""DemandModel: sklearn contract, elasticity recovery, monotonicity, pooling, error paths."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import joblib
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_do_not_raise_errors_in_init_or_set_params,
    check_estimator_cloneable,
    check_estimator_repr,
    check_estimators_unfitted,
    check_get_params_invariance,
    check_mixin_order,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)
from sklearn.utils.validation import check_is_fitted

from pricing.demand.model import DemandModel

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


# ------------------------------------------------------------ a panel with every effect

YEAR = 365.25
PANEL_UPLIFT = 1.3


@dataclass(frozen=True)
class Panel:
    """Synthetic sales drawn exactly from the model's own form, and the truth behind them."""

    X: pd.DataFrame
    y: np.ndarray
    sku: np.ndarray  # (n_skus,)
    category: np.ndarray  # (n_skus,) category names
    brand: np.ndarray | None  # (n_skus,) brand names
    elasticity: np.ndarray  # true b_i
    base: np.ndarray  # true units per day at the reference price (mean weekday, no season, trend at the end)
    ref_log_price: np.ndarray  # the model's reference: mean log price over regular days
    demand: np.ndarray  # (n_skus, n_days) uncensored demand
    stock: np.ndarray | None  # (n_skus, n_days)


def make_panel(
    *,
    n_cats: int = 2,
    skus_per_cat: int = 30,
    n_days: int = 200,
    seed: int = 0,
    start: str = "2023-01-02",
    elasticity: tuple[float, ...] = (-1.5, -2.5),
    brands: tuple[float, ...] | None = None,
    sku_sd: float = 0.2,
    volume: tuple[float, float] | np.ndarray = (5.0, 20.0),
    gamma: float = 0.0,
    promo_weeks: float = 0.25,
    trend: float = 0.0,
    season: tuple[float, float] = (0.0, 0.0),
    stockouts: float = 0.0,
    fixed: tuple[int, ...] = (),
) -> Panel:
    """Daily rows for ``n_cats`` categories; prices move weekly per SKU by +-15%.

    In ``promo_weeks`` of the weeks of a category about half its SKUs are cut 25% and flagged promo
    (uplift ``PANEL_UPLIFT``), so the leave-one-out category index I moves for everybody.
    ``log rate = log base + b (log p - ref) + gamma I + weekday + season + trend (t - last) + promo``.
    ``brands`` gives the mean elasticity per brand (SKUs alternate brands) instead of per category.
    ``stockouts``: share of rows whose stock is 40% of the expected demand (others ample);
    ``fixed``: SKU positions whose price never moves (and never on promo).
    """
    rng = np.random.default_rng(seed)
    n = n_cats * skus_per_cat
    cat = np.repeat(np.arange(n_cats), skus_per_cat)
    brand = np.tile(np.arange(skus_per_cat) % len(brands), n_cats) if brands is not None else None
    mean_b = np.asarray(brands)[brand] if brand is not None else np.asarray(elasticity)[cat]
    true_b = mean_b + rng.normal(0, sku_sd, n)
    base_price = rng.integers(199, 1999, n)
    base = rng.uniform(*volume, n) if len(volume) == 2 else np.asarray(volume, dtype=np.float64)
    n_weeks = -(-n_days // 7)
    regimes = rng.choice([0.85, 0.92, 1.0, 1.08, 1.15], size=(n, n_weeks))
    cut = (rng.random((n_cats, n_weeks)) < promo_weeks)[cat] & (rng.random((n, n_weeks)) < 0.5)
    cut[list(fixed)] = False
    factor = np.where(cut, 0.75, regimes)
    factor[list(fixed)] = 1.0
    price = np.round(base_price[:, None] * np.repeat(factor, 7, axis=1)[:, :n_days]).astype(np.int64)
    promo = np.repeat(cut, 7, axis=1)[:, :n_days]
    log_price = np.log(price)
    ref = (log_price * ~promo).sum(axis=1) / (~promo).sum(axis=1)
    xc = log_price - ref[:, None]
    cat_sum = np.zeros((n_cats, n_days))
    np.add.at(cat_sum, cat, xc)
    index = (cat_sum[cat] - xc) / (skus_per_cat - 1)
    dates = pd.date_range(start, periods=n_days, freq="D")
    angle = 2 * np.pi * (dates.day_of_year.to_numpy() - 1) / YEAR
    years_to_end = (dates - dates[-1]).days.to_numpy() / YEAR
    calendar = (
        np.log(WEEKDAY[dates.day_of_week.to_numpy()])
        + season[0] * np.sin(angle)
        + season[1] * np.cos(angle)
        + trend * years_to_end
    )
    rate = np.exp(
        np.log(base)[:, None] + true_b[:, None] * xc + gamma * index + calendar[None, :] + np.log(PANEL_UPLIFT) * promo
    )
    demand = rng.poisson(rate)
    sku = np.array([f"p{i:04d}" for i in range(n)])
    category = np.array([f"cat{c}" for c in cat])
    X = pd.DataFrame(
        {
            "sku": np.repeat(sku, n_days),
            "category": np.repeat(category, n_days),
            "price_cents": price.ravel(),
            "promo": promo.ravel(),
            "date": np.tile(dates, n),
        }
    )
    brand_names = np.array([f"brand{b}" for b in brand]) if brand is not None else None
    if brand_names is not None:
        X["brand"] = np.repeat(brand_names, n_days)
    stock = None
    sold = demand
    if stockouts > 0:
        short = rng.random(rate.shape) < stockouts
        stock = np.where(short, np.floor(0.4 * rate), np.ceil(3 * rate + 10))
        sold = np.minimum(demand, stock).astype(np.int64)
        X["stock"] = stock.ravel()
    return Panel(X, sold.ravel(), sku, category, brand_names, true_b, base, ref, demand, stock)


@lru_cache(maxsize=2)
def cross_fitted(gamma: float) -> tuple[DemandModel, Panel]:
    panel = make_panel(gamma=gamma)
    return DemandModel().fit(panel.X, panel.y), panel


# ------------------------------------------------------------ sklearn contract


def test_sklearn_estimator_checks_that_apply() -> None:
    check_no_attributes_set_in_init("DemandModel", DemandModel())
    check_parameters_default_constructible("DemandModel", DemandModel())
    # These only construct, clone, repr, get/set params, read tags, or predict before fit.
    for check in (
        check_get_params_invariance,
        check_set_params,
        check_estimator_cloneable,
        check_estimator_repr,
        check_mixin_order,
        check_do_not_raise_errors_in_init_or_set_params,
        check_estimators_unfitted,
    ):
        check("DemandModel", DemandModel(pooling_strength=3.0, rounds=2))
    # Not run: check_estimators_overwrite_params, check_dont_overwrite_parameters,
    # check_fit_check_is_fitted, check_estimators_fit_returns_self, check_n_features_in, ... all
    # fit on make_blobs-style numeric arrays, and DemandModel needs a DataFrame with sku, category
    # and price_cents columns (it raises TypeError on an ndarray by design). The DataFrame
    # equivalents of the first two are in test_fit_neither_changes_params_nor_adds_public_attributes.
    # check_param_validation needs _parameter_constraints, which DemandModel does not declare (it
    # validates in fit instead: test_invalid_params_rejected_at_fit).


def test_fit_neither_changes_params_nor_adds_public_attributes() -> None:
    X, y, _ = make_sales(n_skus=6, n_days=30)
    model = DemandModel(pooling_strength=2.5, min_elasticity=-5.0, rounds=3)
    params = joblib.hash(model.get_params())
    before = set(vars(model))
    model.fit(X, y)
    assert joblib.hash(model.get_params()) == params
    added = set(vars(model)) - before
    assert added and all(a.endswith("_") or a.startswith("_") for a in added), sorted(added)


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
        "choice_max_skus": 60,
        "selection_days": 28,
    }
    assert model.set_params(max_elasticity=-0.5) is model
    assert model.max_elasticity == -0.5
    copy = clone(fitted()[0])
    assert copy.get_params() == DemandModel().get_params()
    with pytest.raises(NotFittedError):
        check_is_fitted(copy)
    X, y, _ = make_sales(n_skus=6, n_days=30)
    custom = DemandModel(pooling_strength=4.0, max_elasticity_se=0.5, cross_price=False).fit(X, y)
    unfitted = clone(custom)
    assert unfitted.get_params() == custom.get_params()
    assert not [a for a in vars(unfitted) if a.endswith("_")]
    with pytest.raises(NotFittedError):
        unfitted.predict_grid(["00001"], np.array([100]))


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
    for bad in (0.0, -0.1, float("nan")):
        with pytest.raises(ValueError, match="max_elasticity_se must be > 0"):
            DemandModel(max_elasticity_se=bad).fit(X, y)
    for bad in (0, -2):
        with pytest.raises(ValueError, match="rounds must be >= 1"):
            DemandModel(rounds=bad).fit(X, y)
    with pytest.raises(ValueError, match="pooling_strength must be >= 0"):
        DemandModel(pooling_strength=-1.0).fit(X, y)
    with pytest.raises(ValueError, match="default_elasticity must be finite"):
        DemandModel(default_elasticity=float("inf")).fit(X, y)
    DemandModel(max_elasticity_se=1e-9, rounds=1).fit(X, y)  # the smallest valid values are fine


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


def _model(which: str) -> DemandModel:
    return fitted()[0] if which == "sales" else cross_fitted(0.6)[0]


MODELS = st.sampled_from(["sales", "cross"])
MULTIPLIERS = st.floats(0.2, 5.0, allow_nan=False)
WINDOWS = st.tuples(st.integers(-500, 900), st.integers(1, 60))  # (first day - last training day, n days)


@settings(max_examples=60, deadline=None)
@given(
    which=MODELS,
    prices=st.lists(st.integers(1, 1_000_000), min_size=2, max_size=12),
    current=st.none() | st.lists(MULTIPLIERS, min_size=64, max_size=64),
    window=st.none() | WINDOWS,
)
def test_grid_is_non_increasing_along_sorted_candidates(
    which: str, prices: list[int], current: list[float] | None, window: tuple[int, int] | None
) -> None:
    model = _model(which)
    n = len(model.skus_)
    candidates = np.sort(np.asarray(prices))
    now = None if current is None else np.round(np.exp(model.ref_log_price_) * np.resize(current, n))
    dates = None
    if window is not None:
        dates = pd.date_range(pd.Timestamp(model.last_day_) + pd.Timedelta(days=window[0]), periods=window[1])
    grid = model.predict_grid(
        list(model.skus_), np.tile(candidates, (n, 1)), current_prices_cents=now, dates=dates
    )
    assert np.isfinite(grid).all() and (grid >= 0).all()
    assert (np.diff(grid, axis=1) <= 0).all()


@settings(max_examples=60, deadline=None)
@given(
    i=st.integers(0, 29),
    multipliers=st.lists(MULTIPLIERS, min_size=30, max_size=30),
    raise_by=st.floats(1.0, 10.0),
    day=st.integers(-400, 800),
    promo=st.booleans(),
)
def test_raising_one_price_lowers_its_units_and_helps_its_substitutes(
    i: int, multipliers: list[float], raise_by: float, day: int, promo: bool
) -> None:
    """predict with a whole category on one date: the cross-price term never undoes monotonicity."""
    model, panel = cross_fitted(0.6)
    skus = panel.sku[:30]  # category cat0
    before = np.round(np.exp(panel.ref_log_price[:30]) * np.asarray(multipliers)).clip(1)
    after = before.copy()
    after[i] = np.ceil(before[i] * raise_by)
    date = pd.Timestamp(model.last_day_) + pd.Timedelta(days=day)
    X = pd.DataFrame({"sku": skus, "price_cents": before, "promo": promo, "date": date})
    units_before = model.predict(X)
    units_after = model.predict(X.assign(price_cents=after))
    assert units_after[i] <= units_before[i]
    others = np.arange(30) != i
    assert (units_after[others] >= units_before[others] * (1 - 1e-6)).all()


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    slope=st.floats(0.2, 3.0),
    n_skus=st.integers(2, 6),
    n_days=st.integers(14, 90),
    with_dates=st.booleans(),
)
def test_demand_rising_with_price_in_the_data_never_rises_in_predictions(
    seed: int, slope: float, n_skus: int, n_days: int, with_dates: bool
) -> None:
    """Data where units go *up* with price: every fitted elasticity is still <= max_elasticity."""
    rng = np.random.default_rng(seed)
    base_price = rng.integers(100, 2000, n_skus)
    multiplier = rng.choice([0.7, 0.85, 1.0, 1.15, 1.3], size=(n_skus, n_days))
    price = np.round(base_price[:, None] * multiplier).astype(np.int64)
    rate = rng.uniform(2, 30, n_skus)[:, None] * multiplier**slope
    X = pd.DataFrame(
        {
            "sku": np.repeat([f"r{k}" for k in range(n_skus)], n_days),
            "category": np.repeat(["a", "b"] * n_skus, n_days)[: n_skus * n_days],
            "price_cents": price.ravel(),
        }
    )
    if with_dates:
        X["date"] = np.tile(pd.date_range("2024-01-01", periods=n_days), n_skus)
    model = DemandModel().fit(X, rng.poisson(rate).ravel())
    assert (model.elasticity_ <= model.max_elasticity + 1e-12).all()
    grid = model.predict_grid(list(model.skus_), np.array([50, 100, 500, 1000, 5000, 10**6]))
    assert (np.diff(grid, axis=1) <= 0).all()
    units = model.predict(X)
    for sku in model.skus_:  # one SKU cheaper on every day: it sells more, its substitutes less
        own = (X["sku"] == sku).to_numpy()
        cheaper = model.predict(X.assign(price_cents=np.where(own, X["price_cents"] // 2 + 1, X["price_cents"])))
        assert (cheaper[own] >= units[own]).all()
        assert (cheaper[~own] <= units[~own] * (1 + 1e-6)).all()


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
    order = [*sorted(X["sku"].unique(), reverse=True), "unused"]
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
    assert model.weekday_factor_ == pytest.approx(np.ones((3, 7)), abs=1e-12)
    assert (model.promo_uplift_ == 1).all()
    assert model.predict(X) == pytest.approx(model.predict(X.drop(columns=["promo", "date"])))


# ------------------------------------------------------------ cross-price effect


def test_cross_elasticity_recovered() -> None:
    model = cross_fitted(0.6)[0]
    assert model.design_.cross
    assert list(model.cross_elasticity_.index) == ["cat0", "cat1"]
    assert model.cross_elasticity_.to_numpy() == pytest.approx([0.6, 0.6], abs=0.2)
    assert model.promo_uplift_ == pytest.approx([PANEL_UPLIFT] * 2, abs=0.1)


def test_cross_elasticity_near_zero_without_cross_effect() -> None:
    model, panel = cross_fitted(0.0)
    assert (model.cross_elasticity_ >= 0).all()
    assert (model.cross_elasticity_ < 0.15).all()
    assert np.abs(model.elasticity_ - panel.elasticity).mean() < 0.15


def test_cross_price_switched_off_or_without_dates() -> None:
    panel = make_panel(gamma=0.6, n_days=70, skus_per_cat=10)
    off = DemandModel(cross_price=False).fit(panel.X, panel.y)
    assert not off.design_.cross and (off.cross_elasticity_ == 0).all()
    undated = DemandModel().fit(panel.X.drop(columns="date"), panel.y)  # no day: no daily index
    assert not undated.design_.cross and (undated.cross_elasticity_ == 0).all()


def test_predict_grid_cheaper_substitutes_sell_fewer_units() -> None:
    model, panel = cross_fitted(0.6)
    gamma = model.cross_elasticity_["cat0"]
    skus = list(panel.sku[:30])  # cat0
    ref_price = np.exp(model.ref_log_price_[model.sku_positions(skus)])
    candidates = np.array([150, 400, 900, 1600])
    at_ref = model.predict_grid(skus, candidates)
    # Explicit reference prices are the default.
    assert model.predict_grid(skus, candidates, current_prices_cents=ref_price) == pytest.approx(at_ref, rel=1e-5)
    # Every substitute 20% cheaper: I = log 0.8 for everyone.
    ratio = model.predict_grid(skus, candidates, current_prices_cents=0.8 * ref_price) / at_ref
    assert ratio == pytest.approx(np.full((30, 4), np.exp(gamma * np.log(0.8))), rel=1e-5)
    assert ratio == pytest.approx(np.full((30, 4), 0.8**0.6), abs=0.05)  # the true effect
    # Only the first 10 cheaper: leave-one-out means over the 29 others.
    current = np.where(np.arange(30) < 10, 0.8, 1.0) * ref_price
    ratio = (model.predict_grid(skus, candidates, current_prices_cents=current) / at_ref)[:, 0]
    d_index = np.where(np.arange(30) < 10, 9, 10) / 29 * np.log(0.8)
    assert ratio == pytest.approx(np.exp(gamma * d_index), rel=1e-5)
    # Another category's prices do not matter.
    both = list(panel.sku)
    current = np.concatenate([ref_price, 0.5 * np.exp(model.ref_log_price_[model.sku_positions(both[30:])])])
    grid = model.predict_grid(both, candidates, current_prices_cents=current)
    assert grid[:30] == pytest.approx(at_ref, rel=1e-5)
    assert (grid[30:] < model.predict_grid(both[30:], candidates)).all()


def test_clipped_cross_elasticity_leaves_other_effects_as_without_cross_term() -> None:
    """Sales that rise when substitutes get cheaper (complements): gamma_ clips to 0.

    The constrained optimum with gamma at its bound 0 is the fit without the cross term. (A
    projected Newton step that clipped gamma but kept theta's step for the unclipped gamma fitted
    the promo uplift and, through it, every elasticity as if gamma were negative.)
    """
    panel = make_panel(gamma=-0.5)
    with_cross = DemandModel().fit(panel.X, panel.y)
    without = DemandModel(cross_price=False).fit(panel.X, panel.y)
    assert (with_cross.cross_elasticity_ == 0).all()
    assert with_cross.promo_uplift_ == pytest.approx(without.promo_uplift_, abs=0.02)
    assert with_cross.elasticity_ == pytest.approx(without.elasticity_, abs=0.02)


# ------------------------------------------------------------ stock-outs


@lru_cache(maxsize=1)
def stockout_panel() -> Panel:
    return make_panel(stockouts=0.1, seed=1)


def test_censored_rows_counted() -> None:
    panel = stockout_panel()
    model = DemandModel().fit(panel.X, panel.y)
    censored = int((panel.y >= panel.X["stock"].to_numpy()).sum())
    assert 0.08 * len(panel.y) < censored < 0.14 * len(panel.y)
    assert model.censored_rows_ == censored
    # Unknown stock (NaN / NA) never censors; neither does having no stock column.
    unknown = panel.X["stock"].astype("Int64").mask(np.arange(len(panel.y)) % 2 == 0)
    known = unknown.notna().to_numpy()
    expected = int((panel.y[known] >= panel.X["stock"].to_numpy()[known]).sum())
    assert DemandModel().fit(panel.X.assign(stock=unknown), panel.y).censored_rows_ == expected
    assert DemandModel().fit(panel.X.drop(columns="stock"), panel.y).censored_rows_ == 0


def test_stock_column_undoes_stockout_bias() -> None:
    panel = stockout_panel()
    # Sales are demand capped by stock: without EM the level is biased low by ~6%.
    assert panel.y.mean() < 0.96 * panel.demand.mean()
    true_level = panel.base.mean()
    with_stock = DemandModel().fit(panel.X, panel.y)
    naive = DemandModel().fit(panel.X.drop(columns="stock"), panel.y)
    level = with_stock.predict_grid(list(panel.sku), np.exp(with_stock.ref_log_price_)[:, None]).mean()
    naive_level = naive.predict_grid(list(panel.sku), np.exp(naive.ref_log_price_)[:, None]).mean()
    assert level == pytest.approx(true_level, rel=0.05)
    assert naive_level < 0.97 * true_level
    assert level > naive_level
    assert with_stock.level_.mean() == pytest.approx(level, rel=1e-6)
    assert np.abs(with_stock.elasticity_ - panel.elasticity).mean() < 0.15


def test_fit_rejects_non_numeric_stock() -> None:
    X, y, _ = make_sales(n_skus=3, n_days=20)
    with pytest.raises(ValueError, match="stock must be numeric"):
        DemandModel().fit(X.assign(stock="plenty"), y)
    with pytest.raises(ValueError, match="stock must be numeric"):
        DemandModel().fit(X.assign(stock=["12", "x"] * (len(X) // 2)), y)


# ------------------------------------------------------------ trend and season


@lru_cache(maxsize=1)
def seasonal_fitted() -> tuple[DemandModel, Panel]:
    panel = make_panel(
        n_cats=1, skus_per_cat=20, n_days=730, elasticity=(-2.0,), trend=0.1, season=(0.2, -0.1), seed=3
    )
    return DemandModel().fit(panel.X, panel.y), panel


def test_trend_and_season_recovered() -> None:
    model, _ = seasonal_fitted()
    assert model.design_.season and model.design_.trend
    effects = model.category_effects_.loc["cat0"]
    assert effects["trend"] == pytest.approx(0.1, abs=0.04)
    assert effects["season_sin"] == pytest.approx(0.2, abs=0.05)
    assert effects["season_cos"] == pytest.approx(-0.1, abs=0.05)
    assert model.weekday_factor_[0] == pytest.approx(WEEKDAY, abs=0.05)


def test_predict_grid_future_dates_follow_the_trend() -> None:
    model, panel = seasonal_fitted()
    skus = list(panel.sku)
    at_ref = np.exp(model.ref_log_price_)[:, None]
    last = pd.Timestamp(model.last_day_)
    assert last == panel.X["date"].max()
    default = model.predict_grid(skus, at_ref)
    # A year ahead, 52 whole weeks: weekdays average out, the season nearly; the trend does not.
    window = pd.date_range(last + pd.Timedelta(days=365), periods=364)
    ratio = model.predict_grid(skus, at_ref, dates=window) / default
    angle = 2 * np.pi * (window.day_of_year.to_numpy() - 1) / YEAR
    years = (window - last).days.to_numpy() / YEAR
    truth = np.mean(WEEKDAY[window.day_of_week.to_numpy()] * np.exp(0.2 * np.sin(angle) - 0.1 * np.cos(angle) + 0.1 * years))
    assert ratio == pytest.approx(np.full_like(ratio, truth), rel=0.04)
    assert ratio.min() > np.exp(0.1 * 1.0)  # at least a year of growth
    # The same weekdays 52 weeks apart: only the trend (and 1.25 days of season) differs.
    month = pd.date_range(last + pd.Timedelta(days=30), periods=28)
    shift = model.predict_grid(skus, at_ref, dates=month + pd.Timedelta(days=364)) / model.predict_grid(
        skus, at_ref, dates=month
    )
    assert shift == pytest.approx(np.full_like(shift, np.exp(0.1 * 364 / YEAR)), abs=0.03)
    assert np.ptp(shift) < 1e-9  # one category: one factor for every SKU and candidate


def test_short_histories_have_no_season_or_trend() -> None:
    for n_days, season, trend in ((299, False, True), (300, True, True), (59, False, False), (60, False, True)):
        panel = make_panel(n_cats=1, skus_per_cat=4, n_days=n_days, seed=n_days)
        model = DemandModel().fit(panel.X, panel.y)
        assert (model.design_.season, model.design_.trend) == (season, trend), n_days
        assert ("season_sin" in model.category_effects_.columns) == season
        assert ("trend" in model.category_effects_.columns) == trend
    panel = make_panel(n_cats=1, skus_per_cat=4, n_days=400, seed=4)
    model = DemandModel(seasonality=False, trend=False).fit(panel.X, panel.y)
    assert not model.design_.season and not model.design_.trend
    assert list(model.category_effects_.columns) == ["promo"]


# ------------------------------------------------------------ brand pooling


@lru_cache(maxsize=1)
def brand_panel() -> Panel:
    # SKUs alternate brand0 (-1.5) and brand1 (-3.0); p0000 (brand0) and p0001 (brand1) never move price.
    return make_panel(n_cats=1, skus_per_cat=30, n_days=120, brands=(-1.5, -3.0), sku_sd=0.15, fixed=(0, 1), seed=5)


def test_fixed_price_sku_takes_its_brands_elasticity() -> None:
    panel = brand_panel()
    model = DemandModel().fit(panel.X, panel.y)
    table = model.elasticities().set_index("sku")
    assert np.isinf(table.loc[["p0000", "p0001"], "raw_se"]).all()
    assert (table.loc[["p0000", "p0001"], "pooled_weight"] == 0).all()
    identified = np.isfinite(table["raw_se"]).to_numpy()
    for sku, brand in (("p0000", "brand0"), ("p0001", "brand1")):
        mates = identified & (panel.brand == brand)
        brand_mean = table.loc[mates, "elasticity"].mean()
        assert table.loc[sku, "elasticity"] == pytest.approx(brand_mean, abs=0.4)
        assert table.loc[sku, "elasticity"] == pytest.approx(panel.elasticity[panel.brand == brand].mean(), abs=0.4)
    category = model.category_elasticity_["cat0"]
    assert table.loc["p0000", "elasticity"] > category + 0.4
    assert table.loc["p0001", "elasticity"] < category - 0.4


def test_without_brand_column_fixed_price_skus_share_the_category_elasticity() -> None:
    panel = brand_panel()
    model = DemandModel().fit(panel.X.drop(columns="brand"), panel.y)
    table = model.elasticities().set_index("sku")
    a, b = table.loc["p0000", "elasticity"], table.loc["p0001", "elasticity"]
    assert a == pytest.approx(b, abs=1e-9)
    assert a == pytest.approx(model.category_elasticity_["cat0"], abs=1e-9)
    assert -3.0 + 0.4 < a < -1.5 - 0.4  # between the brands, near neither


def test_fixed_pooling_strength_ignores_brands() -> None:
    panel = brand_panel()
    kw = {"pooling_strength": 10.0}
    with_brand = DemandModel(**kw).fit(panel.X, panel.y)
    without = DemandModel(**kw).fit(panel.X.drop(columns="brand"), panel.y)
    assert with_brand.elasticity_ == pytest.approx(without.elasticity_, abs=1e-9)


# ------------------------------------------------------------ uncertainty flags


UNCERTAIN_VOLUME = np.tile(np.r_[[0.03] * 4, [60.0] * 16], 2)  # per category: 4 nearly dead SKUs, 16 busy


@lru_cache(maxsize=1)
def uncertain_fitted() -> tuple[DemandModel, Panel]:
    panel = make_panel(n_cats=2, skus_per_cat=20, n_days=120, sku_sd=0.4, volume=UNCERTAIN_VOLUME, seed=6)
    return DemandModel(choice_max_skus=0).fit(panel.X, panel.y), panel  # the log-log family's flags


def test_tiny_volume_skus_are_uncertain_busy_ones_are_not() -> None:
    model, panel = uncertain_fitted()
    tiny = UNCERTAIN_VOLUME < 1
    assert panel.y.reshape(40, -1)[tiny].sum(axis=1).max() < 20  # a handful of sales in 120 days
    assert model.uncertain_[tiny].all()
    assert not model.uncertain_[~tiny].any()
    assert (model.elasticity_se_[~tiny] < model.max_elasticity_se).all()
    assert (model.elasticity_se_[tiny] > model.max_elasticity_se).all()
    assert (model.uncertain_ == (model.elasticity_se_ > model.max_elasticity_se)).all()
    lenient = DemandModel(max_elasticity_se=10.0).fit(panel.X, panel.y)
    assert not lenient.uncertain_.any()


def test_uncertain_in_the_order_asked_and_in_elasticities_table() -> None:
    model, _ = uncertain_fitted()
    order = ["p0005", "p0000", "p0021", "p0024", "p0005"]
    expected = [bool(UNCERTAIN_VOLUME[int(s[1:])] < 1) for s in order]
    assert expected == [False, True, True, False, False]
    assert model.uncertain(order).tolist() == expected
    assert model.uncertain(np.array(order)).tolist() == expected
    table = model.elasticities()
    assert "uncertain" in table.columns and table["uncertain"].dtype == bool
    assert table["uncertain"].tolist() == model.uncertain_.tolist()
    with pytest.raises(ValueError, match="trained on other SKUs"):
        model.uncertain(["p0000", "nope"])


# ------------------------------------------------------------ more error paths


def test_predict_grid_rejects_current_prices_of_the_wrong_shape() -> None:
    model = fitted()[0]
    skus = ["00001", "00002", "00003"]
    for bad in ([100, 200], [[100, 200, 300]], np.full((3, 1), 100)):
        with pytest.raises(ValueError, match=r"current_prices_cents must have shape \(3,\)"):
            model.predict_grid(skus, np.array([100, 200]), current_prices_cents=bad)


def test_predict_unknown_skus_and_missing_columns() -> None:
    model = cross_fitted(0.6)[0]
    X = pd.DataFrame({"sku": ["p0001", "other"], "price_cents": [100, 100], "date": pd.Timestamp("2023-06-01")})
    with pytest.raises(ValueError, match="trained on other SKUs: 1 unknown, e.g. 'other'"):
        model.predict(X)
    with pytest.raises(ValueError, match="missing column 'price_cents'"):
        model.predict(X.drop(columns="price_cents"))
    with pytest.raises(TypeError, match="DataFrame"):
        model.predict(X.to_numpy())
