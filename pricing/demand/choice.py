"""Choice model: a multinomial logit with an outside option for a category of substitutes.

For category ``c``, day ``t`` and SKU ``j`` available that day (a sales row exists for it that
day; rows are one per listed SKU-day, zero-unit days included)::

    units_jt ~ Poisson(mu_jt)
    mu_jt    = M_c * exp(calendar_c(t)) * s_jt
    s_jt     = exp(v_jt) / (1 + sum_{k available at t} exp(v_kt))
    v_jt     = delta_j - alpha_c * p_jt / pbar_c + beta_c * promo_jt

- ``alpha_c = exp(a_c) > 0``: own demand strictly decreases in own price. ``a_c`` is kept within
  ``[log 0.01, log 50]``; a bound that is reached is reported in ``bounds_binding_``.
- ``pbar_c`` is a fixed price scale: the median of the category's prices in the training data.
- ``calendar_c(t)`` = weekday effects (7, summing to zero on the log scale; reported as factors
  with mean 1) and, when the category's data span at least 60 days, a linear trend
  ``trend_c * (t - last training day) / 365.25``. Without a date column there is no calendar.
- Own and cross elasticities come from one set of parameters and are consistent with each other:
  ``e_jj = -alpha p_j/pbar (1 - s_j)`` and ``e_jk = alpha p_k/pbar s_k`` (``k != j``).

Shoppers differ in price sensitivity (``random_sensitivity``, on by default): after the plain
logit above is fitted, each category is refitted as a mixed logit in which ``alpha`` is
log-normal across shoppers with log-sd ``sigma_`` (pricing.demand.mixed_logit: the shares are
the mix of 7 segments' logit shares; the elasticities, their standard errors and every
prediction below use the mix). The plain logit's form ties a SKU's elasticity to its price;
on the simulator's choice market that alone left an own-elasticity error of 0.18 even on
noise-free sales, and the mixed logit brought the error on sampled sales from 0.20 to 0.13.

Fitting: penalised Poisson maximum likelihood per category (categories are independent), by
Newton's method on the analytic gradient and the analytic observed information (falling back
to a Levenberg-damped step where that is not positive definite), with a backtracking line
search. The data are laid out as a dense (markets x SKUs) panel per category, so every sum is a
numpy reduction (float64). Penalties (log-posterior terms):

- the log-odds of the outside option at reference prices, ``logit(s0) = -log sum_k exp(v_k)``,
  has a normal prior with mean 0 (outside share 1/2) and sd ``outside_prior_sd``: the market
  size ``M_c`` and the outside share are only weakly identified when prices rarely move (they
  rest on how much of an own-price change goes to substitutes vs. to the outside option);
- a ridge ``ridge/2 * (sum delta_j^2 + beta^2)``: a SKU without any sale would have
  ``delta -> -inf``; the ridge keeps it finite (such SKUs are flagged ``uncertain_``);
- a tiny fixed ridge on the weekday and trend effects (numerical identification only).

A penalty "binds" when it supplies more than half of the posterior information about what it
acts on (measured by how much the posterior variance shrinks when the penalty is doubled);
those, bounds reached, and non-convergence are listed in ``bounds_binding_`` - nothing is
clipped silently.

Standard errors of the plain logit (``random_sensitivity=False``; the mixed logit's are a
per-market sandwich, see pricing.demand.mixed_logit): delta method on the inverse of the
penalised observed information, where the
data's information is divided by the category's dispersion ``dispersion_`` (the prior's is not),
so over-dispersed sales widen the intervals. The dispersion is the larger of the Pearson
``chi2 / dof`` and its mu-weighted form ``sum (y - mu)^2 / sum mu * n / dof``, and at least 1:
the information is weighted by mu, and when the variance grows faster than the mean (negative
binomial) the plain Pearson ratio, dominated by the many small cells, understates it (90%
intervals then covered ~84% instead of ~91% in simulations). ``uncertain_`` marks SKUs whose
own-elasticity se exceeds ``max_elasticity_se``, SKUs without any sale, and SKUs of a category
without any sale (that category is not fitted: NaN alpha and elasticities, level and predictions
0, noted in ``bounds_binding_``).

Choice sets at prediction (``predict``): with a ``date`` column, the rows of X of one category
and date are that day's choice set (each row at its own price and promo); without one, each row
is its own choice set in which every other SKU of its category is listed at its reference price
(no promo) - the same rule the fit uses when the training data have no dates (each row is then
a market of its own). Without dates the substitutes' actual prices are unknown, so their moves
act as serially correlated noise: the fit is rougher and its standard errors are optimistic
(90% intervals covered ~57% in simulations where they cover ~90% with dates).
``ref_price_cents_`` is each SKU's last regular (non-promo) price in the training data (else its
last price): "today's price". A SKU listed twice on one date is an error (in fit and predict).

Caveats: the logit's independence of irrelevant alternatives (substitution proportional to
share within the category) and one price sensitivity per category are assumptions of the form;
the outside share and with it the level of the cross elasticities lean on the prior when prices
rarely move.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import gammaln, xlogy
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from pricing.demand import mixed_logit

FIT_COLUMNS = ("sku", "category", "price_cents")
PREDICT_COLUMNS = ("sku", "price_cents")
OPTIONAL_COLUMNS = ("promo", "date")

ALPHA_BOUNDS = (0.01, 50.0)  # price sensitivity per unit of p / pbar
_LOG_ALPHA_BOUNDS = (float(np.log(ALPHA_BOUNDS[0])), float(np.log(ALPHA_BOUNDS[1])))
_ALPHA_START = 2.0
_OUTSIDE_PRIOR_MEAN = 0.0  # logit of the outside share at reference prices
_CALENDAR_RIDGE = 1e-4  # weekday contrasts and trend: numerical identification only
_MIN_TREND_DAYS = 60
_MIN_SEASON_DAYS = 300  # a yearly season needs most of a year of data (as the log-log model)
_YEAR = 365.25
_TOL = 1e-9  # Newton decrement (log-likelihood units)
_STEP_TOL = 1e-7
_ARMIJO = 1e-4
_MAX_HALVINGS = 40
_BINDS = 0.5  # a penalty binds when it gives more than half the posterior information
_EXAMPLES = 3


# ------------------------------------------------------------------ per-category panel


@dataclass
class _Panel:
    """One category as a dense (markets x SKUs) panel; cells without a row are unavailable."""

    x: np.ndarray  # (T, J) price / price scale
    promo: np.ndarray  # (T, J) 0/1
    avail: np.ndarray  # (T, J) bool: in the choice set
    obs: np.ndarray  # (T, J) 0/1: a sales row (a likelihood term)
    y: np.ndarray  # (T, J) units, 0 where not observed
    z: np.ndarray  # (T, r) design of the log market size: weekday contrasts, trend, constant
    x_ref: np.ndarray  # (J,) reference price / price scale
    has_promo: bool
    weekday: bool
    trend: bool
    season: bool = False

    @property
    def n_skus(self) -> int:
        return self.x.shape[1]


@dataclass(frozen=True)
class _Layout:
    """Positions in the parameter vector [delta (J), a, beta?, gamma (r)]."""

    n_skus: int
    has_promo: bool
    n_market: int
    weekday: bool
    trend: bool
    season: bool = False

    @property
    def a(self) -> int:
        return self.n_skus

    @property
    def beta(self) -> int | None:
        return self.n_skus + 1 if self.has_promo else None

    @property
    def q(self) -> int:
        """Number of choice (utility) parameters."""
        return self.n_skus + 1 + int(self.has_promo)

    @property
    def size(self) -> int:
        return self.q + self.n_market

    @property
    def log_m(self) -> int:
        return self.size - 1

    def ridge_diag(self, ridge: float) -> np.ndarray:
        d = np.zeros(self.size)
        d[: self.n_skus] = ridge
        if self.beta is not None:
            d[self.beta] = ridge
        d[self.q : self.log_m] = _CALENDAR_RIDGE
        return d


@dataclass
class _Eval:
    f: float  # penalised negative log-likelihood (without the lgamma term)
    grad: np.ndarray | None = None
    info: np.ndarray | None = None  # observed information of the data (-d2 loglik)
    pen_hess: np.ndarray | None = None  # full Hessian of the penalties
    pen_gn: np.ndarray | None = None  # Gauss-Newton (PSD) Hessian of the penalties
    ridge_hess: np.ndarray | None = None  # its ridge part (diagonal)
    outside_hess: np.ndarray | None = None  # its outside-prior part (rank one)
    mu: np.ndarray | None = None


@dataclass
class _CategoryFit:
    theta: np.ndarray
    layout: _Layout
    cov: np.ndarray
    dispersion: float
    converged: bool
    n_iter: int
    notes: list[str] = field(default_factory=list)
    prior_share_outside: float = np.nan
    prior_share_delta: np.ndarray | None = None
    prior_share_alpha: float = np.nan
    prior_share_beta: float = np.nan
    alpha_bound: str | None = None


def _utilities(theta: np.ndarray, lay: _Layout, panel: _Panel) -> tuple[np.ndarray, float]:
    alpha = float(np.exp(theta[lay.a]))
    v = theta[None, : lay.n_skus] - alpha * panel.x
    if lay.beta is not None:
        v = v + theta[lay.beta] * panel.promo
    return v, alpha


def _evaluate(theta: np.ndarray, lay: _Layout, panel: _Panel, prior_sd: float, ridge: float, derivatives: bool) -> _Eval:
    """Penalised objective; with ``derivatives`` also its gradient and the information parts."""
    v, alpha = _utilities(theta, lay, panel)
    v = np.where(panel.avail, v, -np.inf)
    shift = np.maximum(v.max(axis=1), 0.0)
    e = np.exp(v - shift[:, None])
    denom = np.exp(-shift) + e.sum(axis=1)
    s = e / denom[:, None]
    log_mu_t = panel.z @ theta[lay.q :]
    with np.errstate(invalid="ignore"):
        log_mu = log_mu_t[:, None] + v - (shift + np.log(denom))[:, None]
    mu = np.exp(log_mu_t)[:, None] * s * panel.obs
    pos = panel.y > 0  # observed, available cells only: log_mu is finite there
    loglik = float((panel.y[pos] * log_mu[pos]).sum() - mu.sum())

    # penalties
    dlt = theta[: lay.n_skus]
    rd = lay.ridge_diag(ridge)
    pen = 0.5 * float((rd * theta**2).sum())
    v_ref = dlt - alpha * panel.x_ref
    top = float(v_ref.max())
    w_in = np.exp(v_ref - top)
    log_s_in = top + np.log(w_in.sum())
    w_in = w_in / w_in.sum()
    l0 = -log_s_in  # logit of the outside share at reference prices
    dev = l0 - _OUTSIDE_PRIOR_MEAN
    pen += 0.5 * dev**2 / prior_sd**2
    out = _Eval(f=-loglik + pen, mu=mu)
    if not derivatives:
        return out

    xi = -alpha * panel.x  # dv/da
    r = panel.obs * (panel.y - mu)
    r_t = r.sum(axis=1)
    gv = r - r_t[:, None] * s
    p = lay.size
    grad_ll = np.zeros(p)
    grad_ll[: lay.n_skus] = gv.sum(axis=0)
    grad_ll[lay.a] = float((gv * xi).sum())
    if lay.beta is not None:
        grad_ll[lay.beta] = float((gv * panel.promo).sum())
    grad_ll[lay.q :] = panel.z.T @ r_t

    # observed information of the log-likelihood (see module notes: per-cell weights c g g',
    # market means of g, and the second derivative of v in a)
    w = mu  # observed cells only (mu is 0 elsewhere)
    w_t = w.sum(axis=1)
    c = w + r_t[:, None] * s
    q = lay.q
    info = np.zeros((p, p))
    n = lay.n_skus
    cols = [xi] + ([panel.promo] if lay.beta is not None else [])
    info[np.arange(n), np.arange(n)] = c.sum(axis=0)
    for i, gi in enumerate(cols):
        info[:n, n + i] = info[n + i, :n] = (c * gi).sum(axis=0)
        for k, gk in enumerate(cols):
            info[n + i, n + k] = float((c * gi * gk).sum())
    info[lay.a, lay.a] += float(((r_t[:, None] * s - r) * xi).sum())
    a_t = np.concatenate([w] + [(w * g).sum(axis=1, keepdims=True) for g in cols], axis=1)
    g_bar = np.concatenate([s] + [(s * g).sum(axis=1, keepdims=True) for g in cols], axis=1)
    cross = a_t.T @ g_bar
    info[:q, :q] -= cross + cross.T
    info[:q, :q] += g_bar.T @ ((w_t - r_t)[:, None] * g_bar)
    info[:q, q:] = (a_t - w_t[:, None] * g_bar).T @ panel.z
    info[q:, :q] = info[:q, q:].T
    info[q:, q:] = panel.z.T @ (w_t[:, None] * panel.z)

    # penalty derivatives
    xi_ref = -alpha * panel.x_ref
    d_l0 = np.zeros(p)
    d_l0[:n] = -w_in
    m_xi = float((w_in * xi_ref).sum())
    d_l0[lay.a] = -m_xi
    d2_l0 = np.zeros((p, p))
    d2_l0[:n, :n] = -(np.diag(w_in) - np.outer(w_in, w_in))
    d2_l0[:n, lay.a] = d2_l0[lay.a, :n] = -(w_in * xi_ref - w_in * m_xi)
    d2_l0[lay.a, lay.a] = -(float((w_in * xi_ref**2).sum()) + m_xi - m_xi**2)
    var0 = prior_sd**2
    pen_grad = rd * theta + dev / var0 * d_l0
    ridge_hess = np.diag(rd)
    outside_hess = np.outer(d_l0, d_l0) / var0
    pen_gn = ridge_hess + outside_hess
    pen_hess = pen_gn + dev / var0 * d2_l0
    out.grad = -grad_ll + pen_grad
    out.info = info
    out.pen_hess = pen_hess
    out.pen_gn = pen_gn
    out.ridge_hess = ridge_hess
    out.outside_hess = outside_hess
    return out


def _cholesky_solve(h: np.ndarray, g: np.ndarray) -> np.ndarray | None:
    try:
        chol = np.linalg.cholesky(h)
    except np.linalg.LinAlgError:
        return None
    return np.linalg.solve(chol.T, np.linalg.solve(chol, g))


def _newton_direction(h: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Newton direction -h^{-1} g; Levenberg-damped until h is positive definite."""
    step = _cholesky_solve(h, g)
    scale = np.maximum(np.abs(np.diag(h)), 1e-8)
    lam = 1e-6
    while step is None:
        step = _cholesky_solve(h + lam * np.diag(scale), g)
        lam *= 10.0
        if lam > 1e12:
            return -g / scale
    return -step


def _inverse(h: np.ndarray) -> np.ndarray | None:
    try:
        chol = np.linalg.cholesky(h)
    except np.linalg.LinAlgError:
        return None
    inv_l = np.linalg.solve(chol, np.eye(len(h)))
    return inv_l.T @ inv_l


def _start(panel: _Panel, lay: _Layout) -> np.ndarray:
    """Start at an outside share of 1/2, shares proportional to mean units, alpha 2."""
    n_obs = panel.obs.sum(axis=0)
    total = panel.y.sum(axis=0)
    ybar = np.where(total > 0, total / np.maximum(n_obs, 1.0), 0.5 / np.maximum(n_obs, 1.0))
    market = 2.0 * ybar.sum()
    x_mean = np.where(n_obs > 0, (panel.x * panel.obs).sum(axis=0) / np.maximum(n_obs, 1.0), panel.x_ref)
    theta = np.zeros(lay.size)
    theta[: lay.n_skus] = np.log(2.0 * ybar / market) + _ALPHA_START * x_mean
    theta[lay.a] = np.log(_ALPHA_START)
    theta[lay.log_m] = np.log(market)
    return theta


def _fit_category(panel: _Panel, prior_sd: float, ridge: float, max_iter: int) -> _CategoryFit:
    lay = _Layout(panel.n_skus, panel.has_promo, panel.z.shape[1], panel.weekday, panel.trend, panel.season)
    theta = _start(panel, lay)
    lo, hi = _LOG_ALPHA_BOUNDS
    converged = False
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        ev = _evaluate(theta, lay, panel, prior_sd, ridge, True)
        g = ev.grad
        h = ev.info + ev.pen_hess
        free = np.ones(lay.size, dtype=bool)
        at_low = theta[lay.a] <= lo and g[lay.a] > 0
        at_high = theta[lay.a] >= hi and g[lay.a] < 0
        if at_low or at_high:
            free[lay.a] = False
        step = np.zeros(lay.size)
        step[free] = _newton_direction(h[np.ix_(free, free)], g[free])
        decrement = -float(g @ step)
        if decrement < _TOL or np.abs(step).max() < _STEP_TOL:
            converged = True
            break
        t = 1.0
        for _ in range(_MAX_HALVINGS):
            new = theta + t * step
            new[lay.a] = np.clip(new[lay.a], lo, hi)
            f_new = _evaluate(new, lay, panel, prior_sd, ridge, False).f
            if np.isfinite(f_new) and f_new <= ev.f + _ARMIJO * float(g @ (new - theta)):
                break
            t *= 0.5
        else:
            break  # no progress possible along the Newton direction: at the optimum to rounding
        if np.abs(new - theta).max() < _STEP_TOL:
            theta = new
            converged = True
            break
        theta = new
    ev = _evaluate(theta, lay, panel, prior_sd, ridge, True)
    if not converged:
        g = ev.grad.copy()
        if (theta[lay.a] <= lo and g[lay.a] > 0) or (theta[lay.a] >= hi and g[lay.a] < 0):
            g[lay.a] = 0.0
        step = _newton_direction(ev.info + ev.pen_hess, g)
        converged = -float(g @ step) < 1e-6

    mu = ev.mu
    obs = panel.obs > 0
    live = obs & (mu > 0)
    sq = ((panel.y - mu) ** 2)[live]
    dof = int(obs.sum()) - lay.size
    pearson = float((sq / mu[live]).sum()) / dof if dof > 0 else 1.0
    # The same ratio weighted by mu (sum (y-mu)^2 / sum mu): the information is weighted by mu,
    # so when the variance grows faster than the mean (negative binomial) this is the relevant one.
    weighted = float(sq.sum() / mu[live].sum()) * obs.sum() / dof if dof > 0 else 1.0
    dispersion = max(pearson, weighted, 1.0)
    posterior = ev.info / dispersion + ev.pen_hess
    cov = _inverse(posterior)
    if cov is None:  # not positive definite (far from the optimum): the Gauss-Newton form
        fisher = _fisher(theta, lay, panel)
        cov = _inverse(fisher / dispersion + ev.pen_gn + 1e-10 * np.eye(lay.size))
        if cov is None:
            cov = np.linalg.pinv(fisher / dispersion + ev.pen_gn)
    fit = _CategoryFit(theta, lay, cov, dispersion, converged, n_iter)
    fit.alpha_bound = "lower" if theta[lay.a] <= lo + 1e-9 else "upper" if theta[lay.a] >= hi - 1e-9 else None
    # Each penalty's share of the information about what it acts on: double that penalty alone.
    both = _doubled(posterior, ev.pen_gn)
    ridge = _doubled(posterior, ev.ridge_hess)
    outside = _doubled(posterior, ev.outside_hess)
    fit.prior_share_outside = _prior_share(_outside_gradient(theta, lay, panel), cov, outside)
    n = lay.n_skus
    with np.errstate(invalid="ignore", divide="ignore"):
        fit.prior_share_delta = np.clip(np.diag(cov)[:n] / np.diag(ridge)[:n] - 1.0, 0.0, 1.0)
        fit.prior_share_alpha = float(np.clip(cov[lay.a, lay.a] / both[lay.a, lay.a] - 1.0, 0.0, 1.0))
        if lay.beta is not None:
            fit.prior_share_beta = float(np.clip(cov[lay.beta, lay.beta] / ridge[lay.beta, lay.beta] - 1.0, 0.0, 1.0))
    return fit


def _doubled(posterior: np.ndarray, penalty: np.ndarray) -> np.ndarray:
    """Posterior covariance with ``penalty`` counted twice."""
    out = _inverse(posterior + penalty)
    return np.linalg.pinv(posterior + penalty) if out is None else out


def _fisher(theta: np.ndarray, lay: _Layout, panel: _Panel) -> np.ndarray:
    """Expected information J' diag(mu) J (positive semi-definite)."""
    v, alpha = _utilities(theta, lay, panel)
    v = np.where(panel.avail, v, -np.inf)
    shift = np.maximum(v.max(axis=1), 0.0)
    e = np.exp(v - shift[:, None])
    s = e / (np.exp(-shift) + e.sum(axis=1))[:, None]
    mu = np.exp(panel.z @ theta[lay.q :])[:, None] * s * panel.obs
    t_idx, j_idx = np.nonzero(panel.obs)
    n = lay.n_skus
    cols = [-alpha * panel.x] + ([panel.promo] if lay.beta is not None else [])
    g_bar = np.concatenate([s] + [(s * g).sum(axis=1, keepdims=True) for g in cols], axis=1)
    jac = -g_bar[t_idx]
    jac[np.arange(len(t_idx)), j_idx] += 1.0
    for i, g in enumerate(cols):
        jac[:, n + i] += g[t_idx, j_idx]
    jac = np.concatenate([jac, panel.z[t_idx]], axis=1)
    return jac.T @ (mu[t_idx, j_idx][:, None] * jac)


def _outside_gradient(theta: np.ndarray, lay: _Layout, panel: _Panel) -> np.ndarray:
    """Gradient of logit(s0) at reference prices."""
    alpha = float(np.exp(theta[lay.a]))
    v_ref = theta[: lay.n_skus] - alpha * panel.x_ref
    w = np.exp(v_ref - v_ref.max())
    w /= w.sum()
    grad = np.zeros(lay.size)
    grad[: lay.n_skus] = -w
    grad[lay.a] = float((w * alpha * panel.x_ref).sum())
    return grad


def _prior_share(c: np.ndarray, cov: np.ndarray, doubled: np.ndarray) -> float:
    """Share of the posterior information about c'theta that the penalties give.

    With information D from the data and P from the penalties (one dimension), doubling P
    turns the variance 1/(D+P) into 1/(D+2P): the ratio minus one is P/(D+P).
    """
    v1, v2 = float(c @ cov @ c), float(c @ doubled @ c)
    if not (v2 > 0 and np.isfinite(v1)):
        return np.nan
    return float(np.clip(v1 / v2 - 1.0, 0.0, 1.0))


# ---------------------------------------------------------------------- estimator


class ChoiceModel(BaseEstimator):
    """Multinomial logit with an outside option per category, fitted on aggregate daily sales.

    Parameters
    ----------
    outside_prior_sd : sd of the normal prior on the log-odds of the outside option at
        reference prices (mean 0: outside share 1/2).
    ridge : precision of the ridge on the SKU intercepts (deltas) and the promo effect.
    max_elasticity_se : SKUs whose own-elasticity standard error exceeds this are uncertain.
    max_iter : Newton iterations per category.
    random_sensitivity : refit each category as a mixed logit whose shoppers differ in price
        sensitivity (log-normal, sd ``sigma_`` per category; pricing.demand.mixed_logit). False:
        the plain logit (``sigma_`` 0).
    standard_errors : compute the sandwich covariance (the mixed logit's numeric Hessian).
        False for fits that only predict: elasticity standard errors are then NaN.
    warm_start : when fitted before, start each category's mixed logit refit from its previous
        solution (``theta_``) if the category has the same SKUs (scikit-learn's convention).
        Model selection refits on every held-out fold from the fit on all days: 5-16x fewer
        steps than a cold fit (measured on the choice market and a 300-SKU store).
    """

    def __init__(
        self,
        outside_prior_sd: float = 1.5,
        ridge: float = 1e-2,
        max_elasticity_se: float = 0.2,
        max_iter: int = 200,
        random_sensitivity: bool = True,
        standard_errors: bool = True,
        warm_start: bool = False,
    ) -> None:
        self.outside_prior_sd = outside_prior_sd
        self.ridge = ridge
        self.max_elasticity_se = max_elasticity_se
        self.max_iter = max_iter
        self.random_sensitivity = random_sensitivity
        self.standard_errors = standard_errors
        self.warm_start = warm_start

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.target_tags.positive_only = True
        return tags

    # ------------------------------------------------------------------ fit

    def fit(self, X: pd.DataFrame, y: Sequence[float] | np.ndarray | pd.Series) -> ChoiceModel:
        """Fit one logit per category by penalised Poisson maximum likelihood on daily rows."""
        self._check_params()
        _require_columns(X, FIT_COLUMNS)
        units = _check_target(X, y)
        sku, skus = _factorize_skus(X["sku"])
        cat_codes, categories = _sorted_codes(X["category"], "category")
        sku_cat = _category_per_sku(sku, cat_codes, len(skus), X["sku"])
        price = _prices(X["price_cents"])
        promo = _promo(X)
        days = _days(X)
        n_skus, n_cats = len(skus), len(categories)
        ref_price = _reference_price(sku, price, promo, days, n_skus)
        pbar = np.array([np.median(price[cat_codes == c]) for c in range(n_cats)])
        last_day = int(days.max()) if days is not None else None
        markets = None
        if days is not None:
            markets = _market_days(X, days)
            sku, cat_codes, price, promo, days, markets, units = _one_row_per_market(
                sku, cat_codes, price, promo, days, markets, units
            )

        delta = np.zeros(n_skus)
        level = np.zeros(n_skus)
        share = np.zeros(n_skus)
        elasticity = np.full(n_skus, np.nan)
        elasticity_se = np.full(n_skus, np.inf)
        no_sales = np.bincount(sku, weights=units, minlength=n_skus) <= 0
        alpha = np.full(n_cats, np.nan)
        alpha_se = np.full(n_cats, np.nan)
        beta = np.zeros(n_cats)
        market = np.zeros(n_cats)
        outside = np.full(n_cats, np.nan)
        trend = np.zeros(n_cats)
        weekday = np.ones((n_cats, 7))
        converged = np.zeros(n_cats, dtype=bool)
        n_iter = np.zeros(n_cats, dtype=np.int64)
        dispersion = np.ones(n_cats)
        prior_share = np.full(n_cats, np.nan)
        has_trend = np.zeros(n_cats, dtype=bool)
        season = np.zeros((n_cats, 2))
        sigma = np.zeros(n_cats)
        previous: dict[str, tuple[tuple[str, ...], np.ndarray]] = (
            getattr(self, "theta_", {}) if self.warm_start else {}
        )
        solutions: dict[str, tuple[tuple[str, ...], np.ndarray]] = {}
        cov: dict[str, np.ndarray] = {}
        binding: list[str] = []
        for c in range(n_cats):
            name = str(categories[c])
            members = np.flatnonzero(sku_cat == c)
            rows = np.flatnonzero(cat_codes == c)
            if units[rows].sum() <= 0:
                binding.append(f"category {name}: no sales at all; not fitted (predicts 0 units)")
                continue
            panel = _build_panel(
                sku[rows], members, n_skus, price[rows] / pbar[c], promo[rows],
                None if days is None else days[rows], last_day, units[rows], ref_price[members] / pbar[c],
                None if markets is None else markets[rows],
            )
            fit = _fit_category(panel, float(self.outside_prior_sd), float(self.ridge), int(self.max_iter))
            lay, theta = fit.layout, fit.theta
            mixed = None
            if self.random_sensitivity:
                names = tuple(str(k) for k in skus[members])
                before = previous.get(name)
                start = before[1] if before is not None and before[0] == names else None
                mixed = mixed_logit.fit_mixed(
                    panel, theta, self._terms(lay), standard_errors=bool(self.standard_errors), start=start
                )
                solutions[name] = (names, mixed.theta)
                theta = mixed.theta[:-1]
                sigma[c] = mixed.sigma
            a = float(np.exp(theta[lay.a]))
            d = theta[: lay.n_skus]
            alpha_g = mixed_logit.segment_alphas(a, sigma[c])
            s = mixed_logit.ref_segment_shares(d, alpha_g, panel.x_ref) @ mixed_logit.weights()
            z_cal = theta[lay.q : lay.log_m]
            w_log = np.zeros(7)
            if lay.weekday:
                w_log[:6] = z_cal[:6]
                w_log[6] = -z_cal[:6].sum()
                weekday[c] = np.exp(w_log) / np.exp(w_log).mean()
            if lay.season:
                at = 6 if lay.weekday else 0
                season[c] = z_cal[at : at + 2]
            if lay.trend:
                trend[c] = z_cal[-1]
                has_trend[c] = True
            m_avg = float(np.exp(theta[lay.log_m]) * np.exp(w_log).mean())
            if mixed is not None:
                full = np.append(theta, sigma[c])
                terms = self._terms(lay)
                e_own = mixed_logit.own_elasticities(full, terms, panel.x_ref)
                jac = (
                    mixed_logit.elasticity_jacobian(full, terms, panel.x_ref)
                    if self.standard_errors else np.zeros((lay.n_skus, len(full)))
                )
                fit.cov = mixed.cov
                lo, hi = _LOG_ALPHA_BOUNDS
                fit.alpha_bound = "lower" if theta[lay.a] <= lo + 1e-9 else "upper" if theta[lay.a] >= hi - 1e-9 else None
                if mixed.sigma_bound == "upper":
                    fit.notes.append(f"sigma (spread of price sensitivity) at its upper bound {mixed_logit.SIGMA_BOUNDS[1]:g}")
                if not mixed.converged:
                    fit.notes.append(f"the mixed logit refit stopped after {mixed.n_iter} iterations without converging")
            else:
                # own elasticity and its Jacobian in theta
                x_ref = panel.x_ref
                e_own = -a * x_ref * (1.0 - s)
                jac = np.zeros((lay.n_skus, lay.size))
                jac[:, : lay.n_skus] = (a * x_ref * s)[:, None] * (np.eye(lay.n_skus) - s[None, :])
                xi = -a * x_ref
                ds_da = s * (xi - float((s * xi).sum()))
                jac[:, lay.a] = e_own + a * x_ref * ds_da
            se = np.sqrt(np.maximum(np.einsum("ip,pq,iq->i", jac, fit.cov, jac), 0.0))
            if mixed is not None and not self.standard_errors:
                se = np.full(lay.n_skus, np.nan)

            delta[members] = d
            share[members] = s
            level[members] = m_avg * s
            elasticity[members] = e_own
            elasticity_se[members] = se
            alpha[c] = a
            alpha_se[c] = a * np.sqrt(max(fit.cov[lay.a, lay.a], 0.0))
            beta[c] = theta[lay.beta] if lay.beta is not None else 0.0
            market[c] = m_avg
            outside[c] = 1.0 - s.sum()
            converged[c] = fit.converged and (mixed is None or mixed.converged)
            n_iter[c] = fit.n_iter
            dispersion[c] = fit.dispersion
            prior_share[c] = fit.prior_share_outside
            cov[name] = fit.cov
            binding += _binding_notes(name, fit, skus[members], no_sales[members], self)

        self.skus_ = skus
        self.categories_ = categories
        self.sku_category_code_ = sku_cat
        self.category_of_ = pd.Series(np.asarray(categories)[sku_cat], index=skus, name="category")
        self.ref_price_cents_ = ref_price
        self.price_scale_cents_ = pd.Series(pbar, index=categories, name="price_scale_cents")
        self.delta_ = delta
        self.share_ = share
        self.level_ = level
        self.elasticity_ = elasticity
        self.elasticity_se_ = elasticity_se
        self.no_sales_ = no_sales
        fitted_cat = np.isfinite(alpha)
        self.uncertain_ = ~(elasticity_se <= self.max_elasticity_se) | no_sales | ~fitted_cat[sku_cat]
        self.alpha_ = pd.Series(alpha, index=categories, name="alpha")
        self.alpha_se_ = pd.Series(alpha_se, index=categories, name="alpha_se")
        self.sigma_ = pd.Series(sigma, index=categories, name="sigma")
        self.promo_effect_ = pd.Series(beta, index=categories, name="promo_effect")
        self.market_size_ = pd.Series(market, index=categories, name="market_size")
        self.outside_share_ = pd.Series(outside, index=categories, name="outside_share")
        self.outside_prior_share_ = pd.Series(prior_share, index=categories, name="outside_prior_share")
        self.trend_ = pd.Series(trend, index=categories, name="trend_per_year")
        self.has_trend_ = has_trend
        self.season_ = season  # (n_categories, 2): log market size = ... + sin, cos of the day of year
        self.weekday_factor_ = weekday
        self.has_weekday_ = days is not None
        self.dispersion_ = pd.Series(dispersion, index=categories, name="dispersion")
        self.converged_ = pd.Series(converged, index=categories, name="converged")
        self.n_iter_ = pd.Series(n_iter, index=categories, name="n_iter")
        self.covariance_ = cov
        self.theta_ = solutions  # per category: its SKUs and the mixed logit's parameters
        self.bounds_binding_ = binding
        self.last_day_ = np.datetime64(last_day, "D") if last_day is not None else None
        used = [col for col in (*FIT_COLUMNS, *OPTIONAL_COLUMNS) if col in X.columns]
        self.feature_names_in_ = np.asarray(used, dtype=object)
        self.n_features_in_ = len(used)
        return self

    def _check_params(self) -> None:
        if not (np.isfinite(self.outside_prior_sd) and self.outside_prior_sd > 0):
            raise ValueError(f"outside_prior_sd must be > 0, got {self.outside_prior_sd}")
        if not (np.isfinite(self.ridge) and self.ridge > 0):
            raise ValueError(f"ridge must be > 0 (it keeps SKUs without sales finite), got {self.ridge}")
        if not self.max_elasticity_se > 0:
            raise ValueError(f"max_elasticity_se must be > 0, got {self.max_elasticity_se}")
        if not int(self.max_iter) >= 1:
            raise ValueError(f"max_iter must be >= 1, got {self.max_iter}")

    def _terms(self, lay: _Layout) -> mixed_logit.Terms:
        """The penalties of the plain logit's objective, for the mixed logit refit."""
        return mixed_logit.Terms(
            n_skus=lay.n_skus, a=lay.a, beta=lay.beta, q=lay.q, ridge=float(self.ridge),
            calendar_ridge=_CALENDAR_RIDGE, prior_sd=float(self.outside_prior_sd),
            prior_mean=_OUTSIDE_PRIOR_MEAN, log_alpha_bounds=_LOG_ALPHA_BOUNDS,
        )

    # -------------------------------------------------------------- predict

    def _finite_params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """alpha, beta, price scale per category and delta per SKU, finite (unfitted: M = 0)."""
        alpha = np.nan_to_num(self.alpha_.to_numpy(), nan=1.0)
        return alpha, self.promo_effect_.to_numpy(), self.price_scale_cents_.to_numpy(), self.delta_

    def _segments(self) -> list[tuple[float, np.ndarray]]:
        """(weight, alpha per category) of each shopper segment; one segment for a plain logit."""
        alpha = self._finite_params()[0]
        sigma = getattr(self, "sigma_", None)
        if sigma is None or not sigma.to_numpy().any():
            return [(1.0, alpha)]
        alpha_g = mixed_logit.segment_alphas(alpha, sigma.to_numpy())
        return [(float(w), alpha_g[:, g]) for g, w in enumerate(mixed_logit.weights())]

    def _log_calendar(self, cat: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Log multiplier of the market size on those days relative to the average day."""
        out = np.zeros(len(cat))
        if self.has_weekday_:
            out += np.log(self.weekday_factor_)[cat, (days + 3) % 7]  # 1970-01-01 was a Thursday
            last = int(self.last_day_.astype(np.int64))
            out += self.trend_.to_numpy()[cat] * (days - last) / _YEAR
            season = getattr(self, "season_", None)
            if season is not None:
                out += (season[cat] * _season_columns(days)).sum(axis=1)
        return out

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected units per row of X (sku, price_cents; promo and date when present).

        With a date column the rows of one category and date form that day's choice set; without
        one each row is a choice set of its own with the category's other SKUs at their reference
        prices, on an average day (mean weekday, trend as of the last training day).
        """
        check_is_fitted(self)
        _require_columns(X, PREDICT_COLUMNS)
        idx = self.sku_positions(X["sku"])
        cat = self.sku_category_code_[idx]
        price = _prices(X["price_cents"])
        promo = _promo(X)
        _, beta, pbar, delta = self._finite_params()
        market = self.market_size_.to_numpy()[cat]
        days = _days(X)
        cat_of = self.sku_category_code_
        if days is None:
            share = np.zeros(len(idx))
            for weight, alpha in self._segments():
                v = delta[idx] - alpha[cat] * price / pbar[cat] + beta[cat] * promo
                e_ref = np.exp(delta - alpha[cat_of] * self.ref_price_cents_ / pbar[cat_of])
                total = np.bincount(cat_of, weights=e_ref, minlength=len(self.categories_))
                share += weight * _share_against(v, total[cat] - e_ref[idx])
            return market * share
        markets = _market_days(X, days)
        group, n_groups = _dense(cat.astype(np.int64) * (int(markets.max()) + 1) + markets)
        # A SKU with several rows in one market (several prices that day) enters the choice set
        # once, with its first row; each row's share is its own utility against the others.
        pair = group * len(self.skus_) + idx
        _, first = np.unique(pair, return_index=True)
        share = np.zeros(len(idx))
        for weight, alpha in self._segments():
            v = delta[idx] - alpha[cat] * price / pbar[cat] + beta[cat] * promo
            shift = np.zeros(n_groups)
            np.maximum.at(shift, group, v)
            e = np.exp(v - shift[group])
            inside = np.bincount(group[first], weights=e[first], minlength=n_groups)
            entered = pd.Series(e[first], index=pair[first]).reindex(pair).to_numpy()  # the SKU's entry in its set
            share += weight * e / (np.exp(-shift[group]) + inside[group] - entered + e)
        return market * share * np.exp(self._log_calendar(cat, days))

    def predict_grid(
        self,
        skus: Sequence[str] | np.ndarray,
        prices_cents: np.ndarray,
        *,
        current_prices_cents: Sequence[int] | np.ndarray | None = None,
        dates: Sequence[object] | np.ndarray | pd.DatetimeIndex | None = None,
    ) -> np.ndarray:
        """Expected units per day for every SKU x candidate price, in one vectorised call.

        ``prices_cents`` has shape (len(skus), k), or (k,) for the same candidates for all. Only
        the SKU's own price varies along a row; every other SKU of its category (all are listed)
        is at ``current_prices_cents`` (aligned with ``skus``) when it is in ``skus``, else at its
        reference price; no promo. ``dates``: the mean calendar factor over those days; by
        default an average day (mean weekday, trend as of the last training day).
        """
        check_is_fitted(self)
        idx = self.sku_positions(skus)
        prices = np.asarray(prices_cents, dtype=np.float64)
        if prices.ndim == 1:
            prices = np.broadcast_to(prices, (len(idx), prices.shape[0]))
        if prices.ndim != 2 or prices.shape[0] != len(idx):
            raise ValueError(
                f"prices_cents must have shape (n_skus={len(idx)}, n_candidates), got {np.shape(prices_cents)}"
            )
        if not (np.isfinite(prices).all() and (prices > 0).all()):
            raise ValueError("prices_cents must be positive and finite")
        _, _, pbar, delta = self._finite_params()
        cat_of = self.sku_category_code_
        config = self.ref_price_cents_.astype(np.float64).copy()
        if current_prices_cents is not None:
            current = np.asarray(current_prices_cents, dtype=np.float64)
            if current.shape != (len(idx),):
                raise ValueError(f"current_prices_cents must have shape ({len(idx)},), got {current.shape}")
            if not (np.isfinite(current).all() and (current > 0).all()):
                raise ValueError("current_prices_cents must be positive and finite")
            config[idx] = current
            if not np.array_equal(config[idx], current):
                raise ValueError("current_prices_cents gives one SKU two different current prices")
        cat = cat_of[idx]
        share = np.zeros(prices.shape)
        for weight, alpha in self._segments():
            e = np.exp(delta - alpha[cat_of] * config / pbar[cat_of])
            total = np.bincount(cat_of, weights=e, minlength=len(self.categories_))
            others = total[cat] - e[idx]
            v = delta[idx, None] - (alpha[cat] / pbar[cat])[:, None] * prices
            share += weight * _share_against(v, others[:, None])
        factor = self.market_size_.to_numpy()[cat]
        if dates is not None and self.has_weekday_:
            day = np.asarray(pd.to_datetime(np.asarray(dates)).to_numpy().astype("datetime64[D]").astype(np.int64))
            n_cat = len(self.categories_)
            per_day = np.exp(self._log_calendar(np.repeat(np.arange(n_cat), len(day)), np.tile(day, n_cat)))
            factor = factor * per_day.reshape(n_cat, len(day)).mean(axis=1)[cat]
        return factor[:, None] * share

    # ---------------------------------------------------------------- reports

    def cross_elasticities(self, category: str) -> pd.DataFrame:
        """Elasticity of row SKU j's demand w.r.t. column SKU k's price, at reference prices.

        Own elasticities on the diagonal; off it ``e_jk = (p_k / pbar) sum_g w_g alpha_g s_jg s_kg / s_j``
        over the shopper segments g (pricing.demand.mixed_logit); for a plain logit (one segment)
        that is ``alpha p_k / pbar s_k``, the same down each column (proportional substitution).
        """
        check_is_fitted(self)
        c = self.categories_.get_loc(str(category)) if str(category) in self.categories_ else -1
        if c < 0:
            raise ValueError(f"unknown category '{category}'")
        members = np.flatnonzero(self.sku_category_code_ == c)
        x = self.ref_price_cents_[members] / float(self.price_scale_cents_.iloc[c])
        sigma = getattr(self, "sigma_", None)
        spread = float(sigma.iloc[c]) if sigma is not None else 0.0
        alpha_g = mixed_logit.segment_alphas(float(self.alpha_.iloc[c]), spread)
        matrix = mixed_logit.cross_elasticities(self.delta_[members], alpha_g, x)
        np.fill_diagonal(matrix, self.elasticity_[members])
        names = self.skus_[members]
        return pd.DataFrame(matrix, index=pd.Index(names, name="sku"), columns=pd.Index(names, name="price_of"))

    def loglik_by_category(self, X: pd.DataFrame, y: Sequence[float] | np.ndarray | pd.Series) -> pd.Series:
        """Poisson log-likelihood of y under predict(X), summed per category (lgamma included)."""
        check_is_fitted(self)
        units = _check_target(X, y)
        mu = self.predict(X)
        cat = self.sku_category_code_[self.sku_positions(X["sku"])]
        return poisson_loglik_by_category(units, mu, cat, self.categories_)

    def elasticities(self) -> pd.DataFrame:
        """One row per SKU: sku, category, elasticity, se, uncertain."""
        check_is_fitted(self)
        return pd.DataFrame(
            {
                "sku": self.skus_,
                "category": self.category_of_.to_numpy(),
                "elasticity": self.elasticity_,
                "se": self.elasticity_se_,
                "uncertain": self.uncertain_,
            }
        )

    def sku_positions(self, skus: Sequence[str] | pd.Series | pd.Index) -> np.ndarray:
        """Positions of ``skus`` in ``skus_``; ValueError naming the unknown ones."""
        check_is_fitted(self)
        if isinstance(getattr(skus, "dtype", None), pd.CategoricalDtype):
            categorical = pd.Categorical(skus)
            idx = self.skus_.get_indexer(categorical.categories.astype(str))[categorical.codes]
            idx[categorical.codes < 0] = -1
        else:
            idx = self.skus_.get_indexer(pd.Index(skus))
        if (idx < 0).any():
            unknown = pd.unique(np.asarray(skus, dtype=object)[idx < 0])
            examples = ", ".join(repr(str(s)) for s in unknown[:_EXAMPLES])
            raise ValueError(f"model was trained on other SKUs: {len(unknown)} unknown, e.g. {examples}")
        return idx


def poisson_loglik_by_category(
    units: np.ndarray, mu: np.ndarray, category_code: np.ndarray, categories: pd.Index
) -> pd.Series:
    """Sum over rows of ``y log mu - mu - lgamma(y + 1)`` per category present (float64).

    ``mu = 0`` with ``y > 0`` gives ``-inf`` (the model ruled the sale out).
    """
    units = np.asarray(units, dtype=np.float64)
    mu = np.asarray(mu, dtype=np.float64)
    with np.errstate(divide="ignore"):
        terms = xlogy(units, mu) - mu - gammaln(units + 1.0)
    present = np.unique(category_code)
    sums = np.bincount(category_code, weights=terms, minlength=len(categories))
    return pd.Series(sums[present], index=categories[present], name="loglik")


def _share_against(v: np.ndarray, others: np.ndarray) -> np.ndarray:
    """exp(v) / (1 + others + exp(v)), stable for large |v|."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + (1.0 + others) * np.exp(-v))


def _binding_notes(name: str, fit: _CategoryFit, skus: pd.Index, no_sales: np.ndarray, model: ChoiceModel) -> list[str]:
    notes = []
    if fit.alpha_bound is not None:
        bound = ALPHA_BOUNDS[0] if fit.alpha_bound == "lower" else ALPHA_BOUNDS[1]
        why = "sales do not fall with price" if fit.alpha_bound == "lower" else "implausibly strong price response"
        notes.append(f"category {name}: alpha at its {fit.alpha_bound} bound ({bound:g}): {why}")
    elif fit.prior_share_alpha > _BINDS:
        notes.append(
            f"category {name}: alpha set mainly by the penalties (prices barely move; "
            f"penalties' share of its information {fit.prior_share_alpha:.2f})"
        )
    if fit.prior_share_outside > _BINDS:
        notes.append(
            f"category {name}: outside share set mainly by its prior (outside_prior_sd={model.outside_prior_sd:g}; "
            f"prior's share of the information {fit.prior_share_outside:.2f})"
        )
    for sku, share, none in zip(skus, fit.prior_share_delta, no_sales, strict=True):
        if none:
            notes.append(f"category {name}: delta of SKU '{sku}' held by the ridge (no sales)")
        elif share > _BINDS:
            notes.append(f"category {name}: delta of SKU '{sku}' held by the ridge (ridge's share {share:.2f})")
    if fit.prior_share_beta > _BINDS:
        notes.append(f"category {name}: promo effect held by the ridge (share {fit.prior_share_beta:.2f})")
    if not fit.converged:
        notes.append(f"category {name}: did not converge in {fit.n_iter} Newton iterations (max_iter={model.max_iter})")
    return notes + [f"category {name}: {note}" for note in fit.notes]


# ---------------------------------------------------------------- building the panel


def _build_panel(
    sku: np.ndarray,
    members: np.ndarray,
    n_skus: int,
    x: np.ndarray,
    promo: np.ndarray,
    days: np.ndarray | None,
    last_day: int | None,
    units: np.ndarray,
    x_ref: np.ndarray,
    markets: np.ndarray | None = None,
) -> _Panel:
    """Dense panel of one category's rows (global SKU codes ``sku``; ``members`` its SKUs).

    A market is one store's day (``markets``; by default the day): its rows form a choice set.
    """
    local = np.full(n_skus, -1, dtype=np.int64)
    local[members] = np.arange(len(members))
    j = local[sku]
    n_j = len(members)
    if days is not None:
        market, first = pd.factorize(days if markets is None else markets, sort=True)
        day_of = np.zeros(len(first), dtype=np.int64)
        day_of[market] = days
        uniq = day_of  # the day of each market (its weekday and trend)
        n_t = len(uniq)
        xs = np.zeros((n_t, n_j))
        avail = np.zeros((n_t, n_j), dtype=bool)
        avail[market, j] = True
        xs[market, j] = x
    else:
        n_t = len(sku)
        market = np.arange(n_t)
        xs = np.tile(x_ref, (n_t, 1))  # the other SKUs at their reference prices
        xs[market, j] = x
        avail = np.ones((n_t, n_j), dtype=bool)
    pr = np.zeros((n_t, n_j))
    pr[market, j] = promo
    obs = np.zeros((n_t, n_j))
    obs[market, j] = 1.0
    y = np.zeros((n_t, n_j))
    y[market, j] = units
    cols = []
    weekday = days is not None
    trend = days is not None and int(days.max()) - int(days.min()) + 1 >= _MIN_TREND_DAYS
    season = days is not None and int(days.max()) - int(days.min()) + 1 >= _MIN_SEASON_DAYS
    if weekday:
        wd = (uniq + 3) % 7
        onehot = np.eye(7)[wd]
        cols.append(onehot[:, :6] - onehot[:, 6:7])  # sum-to-zero contrasts, Monday first
    if season:
        cols.append(_season_columns(uniq))
    if trend:
        cols.append(((uniq - last_day) / _YEAR)[:, None])
    cols.append(np.ones((n_t, 1)))
    z = np.concatenate(cols, axis=1)
    return _Panel(xs, pr, avail, obs, y, z, x_ref, bool(promo.any()), weekday, trend, season)


# ------------------------------------------------------------- input checks


def _require_columns(X: pd.DataFrame, columns: Sequence[str]) -> None:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame with columns {', '.join(columns)}; got {type(X).__name__}")
    for col in columns:
        if col not in X.columns:
            raise ValueError(f"X is missing column '{col}'")


def _check_target(X: pd.DataFrame, y: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    units = np.asarray(y, dtype=np.float64)
    if units.ndim != 1 or len(units) != len(X):
        raise ValueError(f"y must be 1-D with one value per row of X ({len(X)}), got shape {units.shape}")
    if len(units) == 0:
        raise ValueError("cannot fit a choice model on no rows")
    if not np.isfinite(units).all() or (units < 0).any():
        raise ValueError("y (units sold) must be finite and >= 0")
    return units


def _factorize_skus(sku: pd.Series) -> tuple[np.ndarray, pd.Index]:
    dtype = sku.dtype.categories.dtype if isinstance(sku.dtype, pd.CategoricalDtype) else sku.dtype
    if pd.api.types.is_numeric_dtype(dtype):
        raise ValueError(f"sku must hold strings, got {dtype}: '0123' must not become 123")
    return _sorted_codes(sku, "sku")


def _sorted_codes(values: pd.Series, name: str) -> tuple[np.ndarray, pd.Index]:
    """Integer codes into the sorted distinct values (as str). Categoricals use their codes."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        if (codes < 0).any():
            raise ValueError(f"{name} has missing values")
        names = np.asarray(values.cat.categories.astype(str), dtype=object)
        used = np.flatnonzero(np.bincount(codes, minlength=len(names)))
        order = np.argsort(names[used], kind="stable")
        remap = np.full(len(names), -1, dtype=np.int64)
        remap[used[order]] = np.arange(len(used))
        return remap[codes], pd.Index(names[used[order]].astype(str), name=name)
    codes, uniques = pd.factorize(values, sort=True)
    if (codes < 0).any():
        raise ValueError(f"{name} has missing values")
    return codes.astype(np.int64), pd.Index(np.asarray(uniques).astype(str), name=name)


def _category_per_sku(sku_codes: np.ndarray, cat_codes: np.ndarray, n_skus: int, sku: pd.Series) -> np.ndarray:
    per_sku = np.zeros(n_skus, dtype=np.int64)
    per_sku[sku_codes] = cat_codes
    clash = per_sku[sku_codes] != cat_codes
    if clash.any():
        example = sku.iloc[int(np.flatnonzero(clash)[0])]
        raise ValueError(f"a SKU must belong to one category; '{example}' has several")
    return per_sku


def _prices(price: pd.Series) -> np.ndarray:
    try:
        values = np.asarray(price, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("price_cents must be numeric without missing values") from None
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ValueError("price_cents must be positive and not missing")
    return values


def _promo(X: pd.DataFrame) -> np.ndarray:
    if "promo" not in X.columns:
        return np.zeros(len(X), dtype=bool)
    return X["promo"].fillna(False).to_numpy(dtype=bool)


def _days(X: pd.DataFrame) -> np.ndarray | None:
    """Days since 1970-01-01 (int64) per row, or None without a date column."""
    if "date" not in X.columns:
        return None
    date = X["date"]
    if not pd.api.types.is_datetime64_any_dtype(date.dtype):
        try:
            date = pd.to_datetime(date)
        except (TypeError, ValueError):
            raise ValueError("date must be datetime64 (or parseable dates)") from None
    values = date.to_numpy()
    if pd.isna(values).any():
        raise ValueError("date has missing values")
    return values.astype("datetime64[D]").astype(np.int64, copy=False)


def _reference_price(
    sku: np.ndarray, price: np.ndarray, promo: np.ndarray, days: np.ndarray | None, n_skus: int
) -> np.ndarray:
    """Per SKU its last regular price (by date, else row order); its last price if never regular."""
    order = np.lexsort((days, sku)) if days is not None else np.argsort(sku, kind="stable")
    out = np.zeros(n_skus)
    out[sku[order]] = price[order]  # last write wins: the last row
    regular = order[~promo[order]]
    out[sku[regular]] = price[regular]
    return out


def _season_columns(days: np.ndarray) -> np.ndarray:
    """(n, 2): sin and cos of the day of the year (a yearly season of the market size)."""
    d = np.asarray(days, dtype=np.int64).astype("datetime64[D]")
    doy = (d - d.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.float64)
    angle = 2 * np.pi * doy / _YEAR
    return np.stack([np.sin(angle), np.cos(angle)], axis=1)


def _market_days(X: pd.DataFrame, days: np.ndarray) -> np.ndarray:
    """Per row the market it belongs to: (store, day) as one int64 (the day alone without a store)."""
    if "store" not in X.columns:
        return days.astype(np.int64)
    store, _ = pd.factorize(X["store"].astype(str).to_numpy(), sort=True)
    span = int(days.max()) - int(days.min()) + 1
    return store.astype(np.int64) * span + (days - days.min())


def _one_row_per_market(
    sku: np.ndarray,
    cat: np.ndarray,
    price: np.ndarray,
    promo: np.ndarray,
    days: np.ndarray,
    markets: np.ndarray,
    units: np.ndarray,
) -> tuple[np.ndarray, ...]:
    """Rows of one SKU in one market (a day's sales at several prices) merged into one.

    Units add up; the price is the units-weighted mean (the plain mean when nothing sold), the
    promo flag is set when any of the rows had it. Without such rows the arrays come back as is.
    """
    key = markets.astype(np.int64) * (int(sku.max(initial=0)) + 1) + sku
    group, first = np.unique(key, return_index=True)
    if len(group) == len(key):
        return sku, cat, price, promo, days, markets, units
    code = np.searchsorted(group, key)
    n = len(group)
    total = np.bincount(code, weights=units, minlength=n)
    weight = np.where(total[code] > 0, units, 1.0)
    mean_price = np.bincount(code, weights=weight * price, minlength=n) / np.bincount(code, weights=weight, minlength=n)
    any_promo = np.bincount(code, weights=promo.astype(np.float64), minlength=n) > 0
    return sku[first], cat[first], mean_price, any_promo, days[first], markets[first], total


def _dense(key: np.ndarray) -> tuple[np.ndarray, int]:
    codes, uniques = pd.factorize(key)
    return codes.astype(np.int64), len(uniques)
