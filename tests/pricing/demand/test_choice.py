"""ChoiceModel: recovery of a true multinomial logit, honest standard errors, consistency of
own and cross elasticities, awkward data (one SKU, no sales, no promo/date), sklearn contract."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import (
    check_estimator_cloneable,
    check_estimators_unfitted,
    check_get_params_invariance,
    check_no_attributes_set_in_init,
    check_parameters_default_constructible,
    check_set_params,
)

from pricing.demand import choice as ch
from pricing.demand.choice import ChoiceModel, _season_columns

WEEKDAY = np.array([0.9, 0.9, 0.95, 1.0, 1.1, 1.3, 0.85])  # Monday first
Z90 = 1.6448536269514722


@dataclass(frozen=True)
class Truth:
    category: str
    skus: np.ndarray
    alpha: float
    delta: np.ndarray
    pbar: float
    market: float  # average-day market size
    beta: float


def make_mnl(
    *,
    n_cats: int = 3,
    skus_per_cat: int = 8,
    n_days: int = 365,
    seed: int = 0,
    outside: float = 0.5,
    market: tuple[float, float] = (200.0, 400.0),
    alpha: tuple[float, float] = (2.0, 4.0),
    promo_rate: float = 0.03,
    beta: float = 0.5,
    changes: tuple[int, int] = (3, 7),
    noise: float = 0.02,
    gamma_shape: float | None = None,
    start: str = "2024-01-01",
) -> tuple[pd.DataFrame, np.ndarray, list[Truth]]:
    """Daily rows drawn from a true logit with an outside option.

    Each SKU's regular price moves between levels (80..120% of its base) a few times a year with
    2% daily noise; ``promo_rate`` of days are promo (20% cut, utility + ``beta``). The deltas
    put the outside share near ``outside`` at base prices. ``gamma_shape`` mixes the Poisson
    rates with a mean-1 gamma (over-dispersion).
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range(start, periods=n_days, freq="D")
    calendar = WEEKDAY[dates.day_of_week.to_numpy()] / WEEKDAY.mean()
    frames, units, truths = [], [], []
    for c in range(n_cats):
        n = skus_per_cat
        a = rng.uniform(*alpha)
        base = rng.integers(99, 999, n).astype(np.float64)
        price = np.empty((n, n_days))
        for j in range(n):
            k = int(rng.integers(*changes)) if changes[1] > changes[0] else changes[0]
            cuts = np.sort(rng.choice(np.arange(1, n_days), k, replace=False))
            levels = base[j] * rng.choice([0.8, 0.9, 1.0, 1.1, 1.2], k + 1)
            price[j] = levels[np.searchsorted(cuts, np.arange(n_days), side="right")]
            price[j] *= np.exp(rng.normal(0, noise, n_days))
        promo = rng.random((n, n_days)) < promo_rate
        price = np.round(np.where(promo, 0.8 * price, price)).astype(np.int64)
        pbar = float(np.median(price))
        m = rng.uniform(*market)
        inside = (1 - outside) / outside * rng.dirichlet(np.full(n, 3.0))
        delta = np.log(inside) + a * base / pbar
        ev = np.exp(delta[:, None] - a * price / pbar + beta * promo)
        mu = m * calendar[None, :] * ev / (1 + ev.sum(axis=0))
        if gamma_shape is not None:
            mu = mu * rng.gamma(gamma_shape, 1 / gamma_shape, mu.shape)
        skus = np.array([f"{c}{j:03d}" for j in range(n)])  # leading zeros: must stay strings
        frames.append(
            pd.DataFrame(
                {
                    "sku": np.repeat(skus, n_days),
                    "category": f"cat{c}",
                    "price_cents": price.ravel(),
                    "promo": promo.ravel(),
                    "date": np.tile(dates, n),
                }
            )
        )
        units.append(rng.poisson(mu).ravel())
        truths.append(Truth(f"cat{c}", skus, a, delta, pbar, m, beta))
    return pd.concat(frames, ignore_index=True), np.concatenate(units), truths


def true_elasticities(model: ChoiceModel, truths: list[Truth]) -> np.ndarray:
    """True own elasticities at the model's reference prices, aligned with ``model.skus_``."""
    out = pd.Series(np.nan, index=model.skus_)
    for t in truths:
        x = model.ref_price_cents_[model.sku_positions(t.skus)] / t.pbar
        ev = np.exp(t.delta - t.alpha * x)
        out[t.skus] = -t.alpha * x * (1 - ev / (1 + ev.sum()))
    return out.to_numpy()


@lru_cache(maxsize=1)
def fitted() -> tuple[ChoiceModel, pd.DataFrame, np.ndarray, list[Truth]]:
    X, y, truths = make_mnl(seed=0)
    return ChoiceModel().fit(X, y), X, y, truths


def coverage(seeds: range, **kwargs: object) -> tuple[float, float, list[float]]:
    """90% interval coverage of the true own elasticities, MAE, and alpha z-scores over seeds."""
    hits, errors, z = [], [], []
    for seed in seeds:
        X, y, truths = make_mnl(seed=seed, **kwargs)  # type: ignore[arg-type]
        model = ChoiceModel().fit(X, y)
        err = model.elasticity_ - true_elasticities(model, truths)
        hits.append(np.abs(err) <= Z90 * model.elasticity_se_)
        errors.append(np.abs(err))
        z += [(model.alpha_[t.category] - t.alpha) / model.alpha_se_[t.category] for t in truths]
    return float(np.mean(np.concatenate(hits))), float(np.mean(np.concatenate(errors))), z


# ------------------------------------------------------------------ recovery and honesty


def test_alpha_recovered_within_a_few_standard_errors() -> None:
    model, _, _, truths = fitted()
    for t in truths:
        est, se = model.alpha_[t.category], model.alpha_se_[t.category]
        assert 0 < se < 0.3
        assert abs(est - t.alpha) < 3.5 * se, (t.category, est, t.alpha, se)
    assert model.converged_.all()
    assert model.bounds_binding_ == []


def test_own_elasticities_close_to_truth() -> None:
    model, _, _, truths = fitted()
    truth = true_elasticities(model, truths)
    assert np.mean(np.abs(model.elasticity_ - truth)) < 0.15
    assert (model.elasticity_ < 0).all()
    assert not model.uncertain_.any()


def test_outside_share_market_size_weekdays_and_promo_recovered() -> None:
    model, _, _, truths = fitted()
    assert np.allclose(model.outside_share_, 0.5, atol=0.15)
    for t in truths:
        assert model.market_size_[t.category] == pytest.approx(t.market, rel=0.3)
    assert np.allclose(model.weekday_factor_.mean(axis=1), 1.0)
    assert np.allclose(model.weekday_factor_, WEEKDAY / WEEKDAY.mean(), atol=0.05)
    assert np.allclose(model.promo_effect_, 0.5, atol=0.2)
    assert (model.dispersion_ < 1.2).all()  # Poisson data


def test_intervals_cover_the_truth_about_90_percent() -> None:
    cover, mae, z = coverage(range(1, 7))
    assert 0.75 <= cover <= 1.0, cover
    assert mae < 0.15
    assert 0.5 < np.std(z) < 1.6  # alpha's z-scores look like standard normals


def test_intervals_stay_honest_with_over_dispersed_sales() -> None:
    """Gamma-mixed Poisson (variance mu + mu^2/3): the dispersion inflation widens the intervals."""
    X, y, _ = make_mnl(seed=11, gamma_shape=3.0)
    model = ChoiceModel().fit(X, y)
    assert (model.dispersion_ > 3).all()
    cover, _, _ = coverage(range(11, 17), gamma_shape=3.0)
    assert 0.75 <= cover <= 1.0, cover


# -------------------------------------------------------------- predictions and consistency


def test_predict_grid_at_current_prices_equals_predict_on_that_day() -> None:
    model, _, _, truths = fitted()
    rng = np.random.default_rng(5)
    last = pd.Timestamp(model.last_day_)
    for t in truths:
        current = np.round(model.ref_price_cents_[model.sku_positions(t.skus)] * rng.uniform(0.85, 1.15, len(t.skus)))
        day = pd.DataFrame({"sku": t.skus, "category": t.category, "price_cents": current, "promo": False, "date": last})
        on_day = model.predict(day)
        grid = model.predict_grid(t.skus, current[:, None], current_prices_cents=current, dates=[last])
        np.testing.assert_allclose(grid[:, 0], on_day, rtol=1e-10)
        # the average day differs only by that weekday's and day of year's factors (the trend is 0 on the last day)
        average = model.predict_grid(t.skus, current[:, None], current_prices_cents=current)
        c = model.categories_.get_loc(t.category)
        season = np.exp((model.season_[c] * _season_columns(np.array([model.last_day_.astype(np.int64)]))).sum())
        np.testing.assert_allclose(
            average[:, 0] * model.weekday_factor_[c, last.day_of_week] * season, on_day, rtol=1e-10
        )
    # at reference prices the average day is level_
    np.testing.assert_allclose(model.predict_grid(model.skus_, model.ref_price_cents_[:, None])[:, 0], model.level_)


def test_predict_without_date_is_each_row_against_reference_prices() -> None:
    model, _, _, _ = fitted()
    rows = pd.DataFrame({"sku": model.skus_, "price_cents": model.ref_price_cents_ * 1.1})
    grid = model.predict_grid(model.skus_, model.ref_price_cents_[:, None] * 1.1)
    np.testing.assert_allclose(model.predict(rows), grid[:, 0], rtol=1e-10)


def test_own_demand_strictly_decreases_in_price_and_substitutes_gain() -> None:
    model, _, _, truths = fitted()
    candidates = np.linspace(0.5, 2.0, 25)[None, :] * model.ref_price_cents_[:, None]
    grid = model.predict_grid(model.skus_, candidates)
    assert (np.diff(grid, axis=1) < 0).all()
    t = truths[0]
    current = model.ref_price_cents_[model.sku_positions(t.skus)].copy()
    base = model.predict_grid(t.skus, current[:, None], current_prices_cents=current)[:, 0]
    current[0] *= 1.2
    raised = model.predict_grid(t.skus, current[:, None], current_prices_cents=current)[:, 0]
    assert raised[0] < base[0]
    assert (raised[1:] > base[1:]).all()


def test_cross_elasticities_positive_and_consistent_with_own() -> None:
    model, _, _, truths = fitted()
    t = truths[1]
    matrix = model.cross_elasticities(t.category)
    assert list(matrix.index) == list(t.skus) and list(matrix.columns) == list(t.skus)
    m = matrix.to_numpy()
    off = ~np.eye(len(t.skus), dtype=bool)
    assert (m[off] > 0).all()
    pos = model.sku_positions(t.skus)
    np.testing.assert_allclose(np.diag(m), model.elasticity_[pos])
    alpha, pbar = model.alpha_[t.category], model.price_scale_cents_[t.category]
    column = alpha * model.ref_price_cents_[pos] / pbar * model.share_[pos]
    np.testing.assert_allclose(m[off], np.broadcast_to(column, m.shape)[off])
    # own elasticity = -alpha p/pbar (1 - s): own and cross come from the same shares
    np.testing.assert_allclose(np.diag(m), -alpha * model.ref_price_cents_[pos] / pbar * (1 - model.share_[pos]))
    # and they are the derivatives of predict_grid (log demand w.r.t. log price)
    ref = model.ref_price_cents_[pos]
    h = 1e-6
    for k in range(len(t.skus)):
        up = ref.copy()
        up[k] *= np.exp(h)
        lo = ref.copy()
        lo[k] *= np.exp(-h)
        d = np.log(model.predict_grid(t.skus, up[:, None], current_prices_cents=up)[:, 0])
        d -= np.log(model.predict_grid(t.skus, lo[:, None], current_prices_cents=lo)[:, 0])
        np.testing.assert_allclose(d / (2 * h), m[:, k], rtol=1e-5, atol=1e-8)


def test_elasticities_table() -> None:
    model, _, _, _ = fitted()
    table = model.elasticities()
    assert list(table.columns) == ["sku", "category", "elasticity", "se", "uncertain"]
    assert list(table["sku"]) == list(model.skus_)
    assert table["category"].tolist() == [f"cat{s[0]}" for s in model.skus_]
    np.testing.assert_array_equal(table["se"], model.elasticity_se_)


def test_loglik_by_category_is_the_poisson_loglik_of_predict() -> None:
    model, X, y, _ = fitted()
    part = X.iloc[::7]
    ll = model.loglik_by_category(part, y[::7])
    mu = model.predict(part)
    manual = pd.Series(y[::7] * np.log(mu) - mu - gammaln(y[::7] + 1.0)).groupby(part["category"].to_numpy()).sum()
    np.testing.assert_allclose(ll.to_numpy(), manual.reindex(ll.index).to_numpy())


def test_loglik_prefers_the_true_form_over_a_fit_on_shuffled_prices() -> None:
    X, y, _ = make_mnl(seed=3, n_days=365 + 28)
    test = (X["date"] > X["date"].max() - pd.Timedelta(days=28)).to_numpy()
    good = ChoiceModel().fit(X[~test], y[~test])
    shuffled = X[~test].copy()
    rng = np.random.default_rng(0)
    shuffled["price_cents"] = shuffled.groupby("sku")["price_cents"].transform(lambda s: rng.permutation(s.to_numpy()))
    bad = ChoiceModel().fit(shuffled, y[~test])
    ll_good = good.loglik_by_category(X[test], y[test])
    ll_bad = bad.loglik_by_category(X[test], y[test])
    assert list(ll_good.index) == ["cat0", "cat1", "cat2"]
    assert (ll_good > ll_bad + 50).all(), (ll_good, ll_bad)


# ------------------------------------------------------------------------ awkward data


def test_one_sku_category_is_a_logit_against_the_outside_option() -> None:
    X, y, truths = make_mnl(n_cats=1, skus_per_cat=1, seed=6)
    model = ChoiceModel().fit(X, y)
    assert len(model.skus_) == 1 and model.converged_.all()
    assert model.elasticity_[0] == pytest.approx(true_elasticities(model, truths)[0], abs=4 * model.elasticity_se_[0] + 0.05)
    assert model.cross_elasticities("cat0").shape == (1, 1)
    grid = model.predict_grid(model.skus_, np.array([100, 200, 400]))
    assert (np.diff(grid, axis=1) < 0).all()


def test_sku_without_sales_is_capped_by_the_ridge_and_uncertain() -> None:
    X, y, _ = make_mnl(n_cats=2, skus_per_cat=5, seed=2)
    dead = X[X["sku"] == "0000"].assign(sku="0999")
    model = ChoiceModel().fit(pd.concat([X, dead], ignore_index=True), np.concatenate([y, np.zeros(len(dead))]))
    i = model.sku_positions(["0999"])[0]
    assert model.no_sales_[i] and model.uncertain_[i]
    assert np.isfinite(model.delta_[i]) and model.delta_[i] < -5
    assert model.level_[i] < 1e-3
    assert np.isfinite(model.elasticity_).all()
    assert "category cat0: delta of SKU '0999' held by the ridge (no sales)" in model.bounds_binding_
    assert model.uncertain_.sum() == 1
    assert model.converged_.all()


def test_category_without_any_sale_predicts_zero_and_says_so() -> None:
    X, y, _ = make_mnl(n_cats=1, skus_per_cat=3, seed=4, n_days=90)
    dead = X[X["sku"] == "0000"].assign(sku="dead", category="quiet")
    model = ChoiceModel().fit(pd.concat([X, dead], ignore_index=True), np.concatenate([y, np.zeros(len(dead))]))
    i = model.sku_positions(["dead"])[0]
    assert model.uncertain_[i] and model.level_[i] == 0
    assert np.isnan(model.alpha_["quiet"])
    assert any("quiet: no sales" in note for note in model.bounds_binding_)
    assert (model.predict(dead.head(3)) == 0).all()
    assert (model.predict_grid(["dead"], [100, 200]) == 0).all()


def test_works_without_promo_and_date_columns() -> None:
    X, y, truths = make_mnl(n_cats=2, skus_per_cat=6, seed=7, promo_rate=0.0)
    model = ChoiceModel().fit(X.drop(columns=["promo", "date"]), y)
    assert model.converged_.all()
    assert model.last_day_ is None and (model.weekday_factor_ == 1).all()
    assert (model.promo_effect_ == 0).all()
    assert np.isfinite(model.elasticity_).all() and (model.elasticity_ < 0).all()
    # each row is its own choice set against reference prices: substitutes' moves become noise,
    # so the fit is rougher than with dates, but still in the right region
    assert np.mean(np.abs(model.elasticity_ - true_elasticities(model, truths))) < 0.4
    out = model.predict(X.drop(columns=["date"]).head(10))
    assert out.shape == (10,) and (out > 0).all()
    # a model fitted without dates has no calendar, but rows given with a date form that day's
    # choice set: every SKU at its reference price on one day sells level_
    day = pd.DataFrame({"sku": model.skus_, "price_cents": model.ref_price_cents_, "date": X["date"].iloc[0]})
    np.testing.assert_allclose(model.predict(day), model.level_, rtol=1e-10)


def test_alpha_at_its_lower_bound_is_reported_not_hidden() -> None:
    """Sales that rise with price: alpha goes to its lower bound and bounds_binding_ says so."""
    X, _, _ = make_mnl(n_cats=1, skus_per_cat=3, seed=2, n_days=200)
    rel = X["price_cents"] / X.groupby("sku")["price_cents"].transform("median")
    y = np.random.default_rng(0).poisson(5 * rel.to_numpy() ** 3)
    model = ChoiceModel().fit(X, y)
    assert model.alpha_["cat0"] == pytest.approx(ch.ALPHA_BOUNDS[0])
    assert any("alpha at its lower bound" in note for note in model.bounds_binding_)
    assert (model.elasticity_ < 0).all()


def test_prices_that_never_move_leave_alpha_to_the_penalties() -> None:
    X, y, _ = make_mnl(n_cats=1, skus_per_cat=5, seed=1, n_days=200, changes=(0, 0), noise=0.0, promo_rate=0.0)
    assert (X.groupby("sku")["price_cents"].nunique() == 1).all()
    model = ChoiceModel().fit(X, y)
    assert model.converged_.all()
    assert model.uncertain_.all()
    notes = " ".join(model.bounds_binding_)
    assert "alpha set mainly by the penalties" in notes
    assert "outside share set mainly by its prior" in notes


def test_string_skus_stay_strings_and_categoricals_give_the_same_model() -> None:
    X, y, _ = make_mnl(n_cats=2, skus_per_cat=3, seed=8, n_days=120)
    model = ChoiceModel().fit(X, y)
    assert "0001" in model.skus_ and all(isinstance(s, str) for s in model.skus_)
    cat = X.assign(sku=X["sku"].astype("category"), category=X["category"].astype("category"))
    other = ChoiceModel().fit(cat, y)
    assert list(other.skus_) == list(model.skus_)
    np.testing.assert_allclose(other.elasticity_, model.elasticity_)
    np.testing.assert_allclose(other.predict(cat.head(20)), model.predict(X.head(20)))
    with pytest.raises(ValueError, match="strings"):
        ChoiceModel().fit(X.assign(sku=X["sku"].astype(int)), y)


def test_reference_price_is_the_last_regular_price() -> None:
    X = pd.DataFrame(
        {
            "sku": ["a"] * 4 + ["b"] * 2,
            "category": "c",
            "price_cents": [100, 110, 120, 90, 200, 150],
            "promo": [False, False, False, True, True, True],
            "date": pd.to_datetime(["2024-01-03", "2024-01-01", "2024-01-02", "2024-01-04", "2024-01-01", "2024-01-02"]),
        }
    )
    model = ChoiceModel().fit(X, [3, 4, 2, 6, 1, 2])
    np.testing.assert_array_equal(model.ref_price_cents_, [100, 150])
    assert model.price_scale_cents_["c"] == 115


# ------------------------------------------------------------------------ contract and speed


def test_sklearn_checks_that_apply() -> None:
    name = ChoiceModel.__name__
    check_parameters_default_constructible(name, ChoiceModel())
    check_no_attributes_set_in_init(name, ChoiceModel())
    check_get_params_invariance(name, ChoiceModel())
    check_set_params(name, ChoiceModel())
    check_estimator_cloneable(name, ChoiceModel())
    check_estimators_unfitted(name, ChoiceModel())


def test_clone_and_not_fitted() -> None:
    model = ChoiceModel(outside_prior_sd=0.7, ridge=0.1, max_elasticity_se=0.3, max_iter=50)
    copy = clone(model)
    assert copy.get_params() == model.get_params()
    with pytest.raises(NotFittedError):
        copy.predict(pd.DataFrame({"sku": ["a"], "price_cents": [100]}))
    with pytest.raises(NotFittedError):
        copy.predict_grid(["a"], [100])
    fitted_model, _, _, _ = fitted()
    assert clone(fitted_model).get_params() == fitted_model.get_params()
    assert not hasattr(clone(fitted_model), "skus_")


def test_bad_input_rejected() -> None:
    X, y, _ = make_mnl(n_cats=1, skus_per_cat=2, seed=9, n_days=30)
    for params in ({"outside_prior_sd": 0}, {"ridge": 0}, {"max_elasticity_se": 0}, {"max_iter": 0}):
        with pytest.raises(ValueError):
            ChoiceModel(**params).fit(X, y)
    with pytest.raises(ValueError, match="missing column 'category'"):
        ChoiceModel().fit(X.drop(columns=["category"]), y)
    model = ChoiceModel().fit(X, y)
    with pytest.raises(ValueError, match="unknown"):
        model.predict(X.head(2).assign(sku="nope"))
    with pytest.raises(ValueError, match="shape"):
        model.predict_grid(["0000", "0001"], np.ones((3, 2)))
    with pytest.raises(ValueError, match="two different current prices"):
        model.predict_grid(["0000", "0000"], [100], current_prices_cents=[100, 120])


def test_fit_leaves_its_input_alone_and_returns_self() -> None:
    X, y, _ = make_mnl(n_cats=1, skus_per_cat=3, seed=10, n_days=60)
    before = X.copy()
    model = ChoiceModel()
    assert model.fit(X, y) is model
    pd.testing.assert_frame_equal(X, before)


def test_analytic_gradient_and_information_match_finite_differences() -> None:
    X, y, _ = make_mnl(n_cats=1, skus_per_cat=4, seed=1, n_days=90)
    sku, skus = ch._factorize_skus(X["sku"])
    price, promo, days = ch._prices(X["price_cents"]), ch._promo(X), ch._days(X)
    ref = ch._reference_price(sku, price, promo, days, len(skus))
    pbar = float(np.median(price))
    for d in (days, None):
        panel = ch._build_panel(sku, np.arange(len(skus)), len(skus), price / pbar, promo, d, int(days.max()), y.astype(float), ref / pbar)
        lay = ch._Layout(panel.n_skus, panel.has_promo, panel.z.shape[1], panel.weekday, panel.trend)
        theta = ch._start(panel, lay) + np.random.default_rng(0).normal(0, 0.1, lay.size)
        ev = ch._evaluate(theta, lay, panel, 1.5, 0.01, True)
        eps = 1e-5
        steps = np.eye(lay.size) * eps

        def at(t: np.ndarray, lay: ch._Layout = lay, panel: ch._Panel = panel) -> ch._Eval:
            return ch._evaluate(t, lay, panel, 1.5, 0.01, True)

        grad = np.array([(at(theta + e).f - at(theta - e).f) / (2 * eps) for e in steps])
        hess = np.array([(at(theta + e).grad - at(theta - e).grad) / (2 * eps) for e in steps])
        np.testing.assert_allclose(ev.grad, grad, atol=1e-3 * np.abs(ev.grad).max())
        np.testing.assert_allclose(ev.info + ev.pen_hess, hess, atol=1e-6 * np.abs(hess).max())


def test_large_categories_converge() -> None:
    # Its speed is measured by benchmarks/train_bench.py and evaluate's `seconds`, not here: a timed
    # assertion fails on a busy machine (it did, in CI next to another run).
    X, y, _ = make_mnl(n_cats=1, skus_per_cat=20, n_days=730, seed=12)
    assert ChoiceModel().fit(X, y).converged_.all()
    X, y, _ = make_mnl(n_cats=10, skus_per_cat=13, n_days=365, seed=13)
    assert ChoiceModel().fit(X, y).converged_.all()


def test_several_rows_of_a_sku_in_one_market_are_merged() -> None:
    """A day's sales at two prices (a receipt export) merge into one observation: units add up."""
    X, y, _ = make_mnl(n_cats=1, skus_per_cat=3, seed=4, n_days=120)
    doubled = pd.concat([X, X.head(5)], ignore_index=True)
    units = np.concatenate([y, np.zeros(5)])  # the extra rows sold nothing: same data
    a = ChoiceModel().fit(X, y)
    b = ChoiceModel().fit(doubled, units)
    np.testing.assert_allclose(a.elasticity_, b.elasticity_, rtol=1e-6)
    # predict gives each row its own share; the duplicated rows get the same as their originals
    predicted = b.predict(doubled)
    np.testing.assert_allclose(predicted[-5:], predicted[:5])


def test_stores_are_separate_markets() -> None:
    """Two stores on the same dates are two choice sets, not one with each SKU twice."""
    X, y, _ = make_mnl(n_cats=1, skus_per_cat=3, seed=5, n_days=120)
    two = pd.concat([X.assign(store="s1"), X.assign(store="s2")], ignore_index=True)
    model = ChoiceModel().fit(two, np.concatenate([y, y]))
    single = ChoiceModel().fit(X, y)
    np.testing.assert_allclose(model.elasticity_, single.elasticity_, atol=0.01)  # the penalties weigh less
    np.testing.assert_allclose(model.predict(two)[: len(X)], single.predict(X), rtol=0.01)
