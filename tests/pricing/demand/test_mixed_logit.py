"""Mixed logit refit: its gradient, its optimiser, warm starts, and recovery of a known spread of
price sensitivity from plain (markets x SKUs) arrays."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy.optimize import approx_fprime, minimize

from pricing.demand import mixed_logit as ml


@dataclass
class Panel:
    x: np.ndarray
    promo: np.ndarray
    avail: np.ndarray
    obs: np.ndarray
    y: np.ndarray
    z: np.ndarray
    x_ref: np.ndarray
    has_promo: bool = True


def make_panel(
    *, sigma: float = 0.8, alpha: float = 3.0, n_skus: int = 5, n_markets: int = 400, market: float = 300.0, seed: int = 0
) -> tuple[Panel, ml.Terms, np.ndarray]:
    """Poisson sales of a true mixed logit: prices (relative to 1) that move often, some promo,
    a weekday-free calendar of one column (the log market size). Returns the panel, the terms
    and the true parameter vector (deltas, log alpha, beta, log market size, sigma)."""
    rng = np.random.default_rng(seed)
    x = rng.choice([0.8, 0.9, 1.0, 1.1, 1.2], size=(n_markets, n_skus)) * rng.uniform(0.7, 1.3, n_skus)
    promo = rng.random((n_markets, n_skus)) < 0.05
    avail = np.ones((n_markets, n_skus), dtype=bool)
    avail[rng.random((n_markets, n_skus)) < 0.03] = False
    z = np.ones((n_markets, 1))
    delta = rng.normal(1.0, 0.5, n_skus)
    truth = np.concatenate([delta, [np.log(alpha), 0.4, np.log(market), sigma]])
    t = terms(n_skus)
    panel = Panel(x, promo.astype(np.float64), avail, avail.astype(np.float64), np.zeros_like(x), z, x.mean(axis=0))
    shares, _, size = ml._mixture(truth, t, panel)
    mu = size[:, None] * (shares @ ml.weights()) * panel.obs
    panel.y = rng.poisson(mu).astype(np.float64)
    return panel, t, truth


def terms(n_skus: int) -> ml.Terms:
    return ml.Terms(
        n_skus=n_skus, a=n_skus, beta=n_skus + 1, q=n_skus + 2, ridge=1e-2, calendar_ridge=1e-4,
        prior_sd=1.5, prior_mean=0.0, log_alpha_bounds=(np.log(0.01), np.log(50.0)),
    )


def test_gradient_matches_finite_differences() -> None:
    panel, t, truth = make_panel(n_markets=60, seed=1)
    at = truth + np.random.default_rng(2).normal(0, 0.1, len(truth))
    _, grad = ml.objective(at, t, panel)
    numeric = approx_fprime(at, lambda th: ml.objective(th, t, panel)[0], 1e-6)
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-3)


def test_per_market_scores_add_up_to_the_likelihood_gradient() -> None:
    panel, t, truth = make_panel(n_markets=50, seed=3)
    _, grad = ml.objective(truth, t, panel)
    _, scores = ml.objective(truth, t, panel, scores=True)
    no_penalty = ml.Terms(**{**t.__dict__, "ridge": 0.0, "calendar_ridge": 0.0, "prior_sd": 1e9})
    _, grad_ll = ml.objective(truth, no_penalty, panel)
    np.testing.assert_allclose(-scores.sum(axis=0), grad_ll, rtol=1e-6, atol=1e-6)
    assert not np.allclose(grad, grad_ll)  # the penalties do act


def test_finds_the_optimum_a_generic_optimiser_finds() -> None:
    panel, t, truth = make_panel(seed=4)
    start = truth[:-1] + 0.3
    fit = ml.fit_mixed(panel, start, t, standard_errors=False)
    bounds = [(None, None)] * len(truth)
    bounds[t.a], bounds[-1] = t.log_alpha_bounds, ml.SIGMA_BOUNDS
    reference = minimize(
        ml.objective, np.append(start, 0.5), args=(t, panel), jac=True, method="L-BFGS-B", bounds=bounds,
        options={"maxiter": 5000, "ftol": 1e-14, "gtol": 1e-9},
    )
    assert fit.converged
    assert ml.objective(fit.theta, t, panel)[0] <= reference.fun + 1e-6


def test_recovers_the_spread_of_price_sensitivity_within_its_standard_error() -> None:
    panel, t, truth = make_panel(sigma=0.8, n_markets=800, market=600.0, seed=5)
    fit = ml.fit_mixed(panel, truth[:-1] * 0.0 + np.append(np.zeros(t.n_skus), [0.0, 0.0, np.log(600.0)]), t)
    se = np.sqrt(np.diag(fit.cov))
    assert abs(fit.sigma - 0.8) < 3 * se[-1]
    assert abs(fit.theta[t.a] - truth[t.a]) < 3 * se[t.a]
    e_fit = ml.own_elasticities(fit.theta, t, panel.x_ref)
    e_true = ml.own_elasticities(truth, t, panel.x_ref)
    assert np.abs(e_fit - e_true).max() < 0.15


def test_no_spread_in_the_data_gives_sigma_near_zero() -> None:
    panel, t, truth = make_panel(sigma=0.0, n_markets=600, seed=6)
    fit = ml.fit_mixed(panel, truth[:-1], t)
    assert fit.sigma < 0.3


def test_a_warm_start_reaches_the_same_optimum_in_fewer_steps() -> None:
    panel, t, truth = make_panel(seed=7)
    cold = ml.fit_mixed(panel, truth[:-1], t, standard_errors=False)
    less = Panel(**{**panel.__dict__, "obs": panel.obs.copy(), "y": panel.y.copy()})
    less.obs[-40:], less.y[-40:] = 0.0, 0.0  # a held-out block, as model selection's folds
    refit_cold = ml.fit_mixed(less, truth[:-1], t, standard_errors=False)
    refit_warm = ml.fit_mixed(less, truth[:-1], t, standard_errors=False, start=cold.theta)
    np.testing.assert_allclose(refit_warm.theta, refit_cold.theta, atol=1e-3)
    assert refit_warm.n_iter < refit_cold.n_iter


@pytest.mark.parametrize("bad", [np.array([1.0, 2.0]), np.full(9, np.nan)])
def test_a_start_of_another_layout_is_ignored(bad: np.ndarray) -> None:
    panel, t, truth = make_panel(n_markets=100, seed=8)
    fit = ml.fit_mixed(panel, truth[:-1], t, standard_errors=False, start=bad)
    assert fit.converged and np.all(np.isfinite(fit.theta))
