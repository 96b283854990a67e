"""How good is the demand model, measured against the simulator's known truth?

Three measurements on a simulated store (``esl-pricing evaluate``), on either market of the
simulator: ``loglog`` (simulator.market: every SKU's demand log-linear in its own price, the form
the engine's log-log model fits) or ``choice`` (simulator.choice_market: shoppers of a mixed
logit choosing among a category's substitutes or nothing, prices that change rarely, dirty
receipts; a form the engine does not assume):

1. Forecast: train on all but the last ``holdout_weeks`` of history, predict those weeks from
   their actual prices, promotions and dates; WAPE of the model and of a seasonal-naive baseline
   (pricing.demand.training).
2. Price response: each SKU's own-price elasticity, learned from the whole history, against the
   market's true elasticity: mean absolute error overall and per category, against three
   baselines (the model's own category means, the true category means, -1.0 for every SKU),
   and the coverage of the model's 90% intervals (elasticity ± 1.645 standard errors).
3. Closed loop: starting from the store's current prices, the engine prices the store for
   ``loop_weeks`` simulated weeks, retraining each week on everything it has observed (its own
   sales included). An oracle prices the same store with the *true* demand under the same rules
   and optimizer, and a third arm keeps today's prices. All arms face the same shoppers: the
   same random draws each week (common random numbers), stock-outs included. Realised profit
   is (price - cost) x units sold over the SKUs with a known cost.

The engine never sees the truth: only the evaluation and the oracle read it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from pricing.core.data import DataError, competitor_reference
from pricing.core.store_data import StoreData, load_store
from pricing.demand.model import DemandModel
from pricing.demand.predictor import DemandPredictor
from pricing.demand.training import train_demand_model
from pricing.plan.cycle import run_pricing_cycle
from pricing.rules.config import RulesConfig
from simulator.choice_market import load_market
from simulator.choice_store import generate_choice_store
from simulator.market import DemandTruth, days_between, draw_stock
from simulator.store import generate_store

Progress = Callable[[str], None]
ARMS = ("engine", "oracle", "hold")
MARKETS = ("loglog", "choice")  # today's log-log shoppers; substitutes chosen by a mixed logit
DEFAULT_SKUS = {"loglog": 2000, "choice": 128}
INTERVAL = 0.90  # the elasticity intervals whose coverage evaluate reports
_Z90 = 1.6448536269514722  # standard normal quantile of 0.95
CONSTANT_ELASTICITY = -1.0  # the naive baseline: every SKU at -1.0


class TrueMarket(Protocol):
    """What the evaluation needs of a simulated market (simulator.market.Market, ChoiceMarket)."""

    kind: str
    truth: DemandTruth

    def __len__(self) -> int: ...

    def positions(self, skus: Any) -> np.ndarray: ...

    def expected(self, prices_cents: Any, dates: Any = None, promo: Any = None) -> np.ndarray: ...

    def simulate(
        self, prices_cents: Any, dates: Any, promo: Any = None, *, rng: np.random.Generator, stock: Any = None
    ) -> np.ndarray: ...

    def own_price_units(
        self, skus: Any, prices_cents: Any, current_prices_cents: Any, dates: Any = None
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class EvaluationOptions:
    """What to evaluate: a store directory with truth files, or a generated sample store."""

    store_dir: Path | None = None
    skus: int | None = None  # of a generated store; None: DEFAULT_SKUS of the market
    seed: int = 7
    holdout_weeks: int = 4
    loop_weeks: int = 8
    rules: RulesConfig = field(default_factory=RulesConfig)
    market: str = "loglog"  # the kind of store to generate when store_dir is None (MARKETS)


@dataclass
class ClosedLoop:
    """Realised and expected profit (cents) per arm and week, and how often the engine moved prices."""

    weeks: int
    realised: dict[str, list[float]]
    expected: dict[str, list[float]]
    changes_per_week: list[int]
    retrain_seconds: float

    def total(self, arm: str, kind: str = "realised") -> float:
        return float(sum(getattr(self, kind)[arm]))

    def ratio(self, arm: str, kind: str = "realised") -> float:
        oracle = self.total("oracle", kind)
        return self.total(arm, kind) / oracle if oracle else float("nan")


@dataclass
class EvaluationReport:
    metrics: dict[str, float]
    categories: pd.DataFrame  # per category: skus, true and learned elasticity, MAE, uncertain share
    loop: ClosedLoop
    seconds: float
    store_dir: Path
    market: str = "loglog"

    def summary(self) -> dict[str, Any]:
        """The JSON line of ``esl-pricing evaluate --json``."""
        m = self.metrics
        out: dict[str, Any] = {
            "market": self.market,
            "wape": round(m["wape"], 4),
            "wape_baseline": round(m["baseline_wape"], 4),
            "wape_ratio": round(m["wape"] / m["baseline_wape"], 4),
            "elasticity_mae": round(m["elasticity_mae"], 4),
            "elasticity_mae_category_only": round(m["elasticity_mae_category_only"], 4),
            "elasticity_mae_category_mean": round(m["elasticity_mae_category_mean"], 4),
            "elasticity_mae_constant": round(m["elasticity_mae_constant"], 4),
            "interval_coverage": round(m["interval_coverage"], 4),
            "uncertain_share": round(m["uncertain_share"], 4),
            "closed_loop_weeks": self.loop.weeks,
            "closed_loop_profit_vs_oracle": round(self.loop.ratio("engine"), 4),
            "closed_loop_expected_profit_vs_oracle": round(self.loop.ratio("engine", "expected"), 4),
            "hold_profit_vs_oracle": round(self.loop.ratio("hold"), 4),
            "closed_loop_changes_per_week": self.loop.changes_per_week,
            "seconds": round(self.seconds, 2),
        }
        out["elasticity_mae_by_category"] = {
            str(cat): round(float(v), 4) for cat, v in self.categories["mae"].items()
        }
        out["model_by_category"] = {str(cat): str(v) for cat, v in self.categories["model"].items()}
        return out


def evaluate(options: EvaluationOptions, progress: Progress | None = None) -> EvaluationReport:
    """Run the three measurements (see the module docstring)."""
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    if options.market not in MARKETS:
        raise ValueError(f"market must be one of {', '.join(MARKETS)}, got {options.market!r}")
    with tempfile.TemporaryDirectory(prefix="esl-evaluate-") as tmp:
        store_dir = options.store_dir
        if store_dir is None:
            skus = options.skus or DEFAULT_SKUS[options.market]
            say(f"generating the sample {options.market} store ({skus} SKUs, seed {options.seed})")
            store_dir = Path(tmp) / "store"
            generate = generate_choice_store if options.market == "choice" else generate_store
            generate(store_dir, skus=skus, seed=options.seed)
        market = _load_market(store_dir)
        say(f"loading {store_dir} ({market.kind} market)")
        store = load_store(store_dir, require_labels=False)
        for unused in options.rules.unmatched_scopes(store.products):  # rules written for another store
            say(f"rules not used here: {unused}")
        say("training with a holdout")
        training = train_demand_model(
            store.sales, store.products, holdout_days=7 * options.holdout_weeks, progress=lambda m: say(f"  {m}"),
            listing=store.listing,
        )
        categories, price_metrics = elasticity_error(training.model, market)
        metrics = {**training.metrics, **price_metrics}
        say(
            f"elasticity MAE {price_metrics['elasticity_mae']:.3f}, {INTERVAL:.0%} intervals cover "
            f"{price_metrics['interval_coverage']:.0%}; closed loop of {options.loop_weeks} weeks"
        )
        loop = closed_loop(store, market, training.model, options.rules, weeks=options.loop_weeks, seed=options.seed, progress=say)
    return EvaluationReport(metrics, categories, loop, time.perf_counter() - started, store_dir, market.kind)


def _load_market(store_dir: Path) -> TrueMarket:
    try:
        return load_market(store_dir)
    except FileNotFoundError as exc:
        raise DataError(f"{store_dir}: no market truth ({Path(exc.filename or '').name}): evaluate needs a simulated store") from None


def elasticity_error(model: DemandModel, market: TrueMarket) -> tuple[pd.DataFrame, dict[str, float]]:
    """Learned against true own-price elasticity: per-category table and overall figures.

    Baselines: the model's own category means (``category_only``), the TRUE category means
    (``category_mean``: what knowing only each category's average would give) and -1.0 for
    every SKU (``constant``). ``interval_coverage``: the share of SKUs whose true elasticity lies
    in the model's 90% interval, elasticity ± 1.645 se (honest standard errors give ~0.90).
    """
    learned = model.elasticities().set_index("sku")
    truth = market.truth.frame().set_index("sku")
    both = learned.join(truth[["elasticity"]].rename(columns={"elasticity": "true"}), how="inner")
    both["error"] = (both["elasticity"] - both["true"]).abs()
    category_only = model.category_elasticity_.reindex(both["category"]).to_numpy()
    both["category_error"] = np.abs(category_only - both["true"].to_numpy())
    true_mean = both.groupby("category")["true"].transform("mean")
    both["category_mean_error"] = (true_mean - both["true"]).abs()
    both["constant_error"] = (both["true"] - CONSTANT_ELASTICITY).abs()
    both["covered"] = both["error"] <= _Z90 * both["se"]
    grouped = both.groupby("category", sort=True)
    families = getattr(model, "model_family_", None)
    cross_true = getattr(getattr(market, "categories", None), "cross_elasticity", None)
    table = pd.DataFrame(
        {
            "skus": grouped.size(),
            "model": families if families is not None else "loglog",
            "true_mean": grouped["true"].mean(),
            "learned_mean": grouped["elasticity"].mean(),
            "mae": grouped["error"].mean(),
            "mae_category_only": grouped["category_error"].mean(),
            "mae_category_mean": grouped["category_mean_error"].mean(),
            "coverage": grouped["covered"].mean(),
            "uncertain_share": grouped["uncertain"].mean(),
            "cross_learned": model.cross_elasticity_,
            "cross_true": (
                pd.Series(cross_true, index=market.categories.category) if cross_true is not None else np.nan  # type: ignore[attr-defined]
            ),
        }
    ).dropna(subset=["skus"])
    metrics = {
        "elasticity_mae": float(both["error"].mean()),
        "elasticity_mae_category_only": float(both["category_error"].mean()),
        "elasticity_mae_category_mean": float(both["category_mean_error"].mean()),
        "elasticity_mae_constant": float(both["constant_error"].mean()),
        "interval_coverage": float(both["covered"].mean()),
        "uncertain_share": float(both["uncertain"].mean()),
        "elasticity_skus": float(len(both)),
    }
    return table, metrics


class TruthDemand:
    """The market's true demand as a DemandPredictor: what the oracle prices with."""

    def __init__(self, market: TrueMarket) -> None:
        self.market = market
        self.skus_ = pd.Index(market.truth.sku)

    def predict_grid(
        self,
        skus: np.ndarray,
        prices_cents: np.ndarray,
        *,
        current_prices_cents: np.ndarray | None = None,
        dates: Any = None,
    ) -> np.ndarray:
        pos = self.market.positions(skus)
        everyone = self.market.truth.ref_price_cents.astype(np.float64)
        if current_prices_cents is not None:
            everyone[pos] = current_prices_cents
        prices = np.asarray(prices_cents, dtype=np.float64)
        if prices.ndim == 1:
            prices = np.broadcast_to(prices, (len(pos), prices.shape[0]))
        return self.market.own_price_units(skus, prices, everyone, dates)

    def uncertain(self, skus: np.ndarray) -> np.ndarray:
        return np.zeros(len(skus), dtype=bool)


def closed_loop(
    store: StoreData,
    market: TrueMarket,
    model: DemandModel,
    rules: RulesConfig,
    *,
    weeks: int = 8,
    seed: int = 7,
    progress: Progress | None = None,
) -> ClosedLoop:
    """Engine vs oracle vs hold over ``weeks`` simulated weeks (see the module docstring)."""
    say = progress or (lambda _msg: None)
    products = store.products.reset_index(drop=True)
    competitors = competitor_reference(store.competitors)
    pos = market.positions(products["sku"].to_numpy(dtype=object))
    n = len(market)
    cost = np.full(n, np.nan)
    cost[pos] = products["cost_cents"].to_numpy(dtype=np.float64, na_value=np.nan)
    counted = np.isfinite(cost)
    start_prices = market.truth.ref_price_cents.astype(np.int64).copy()
    start_prices[pos] = products["price_cents"].to_numpy(dtype=np.int64)
    prices = {arm: start_prices.copy() for arm in ARMS}
    predictors: dict[str, DemandPredictor] = {"engine": model, "oracle": TruthDemand(market)}
    history = [_sales_frame(store.sales)]
    last_day = pd.Timestamp(store.sales["date"].max()).date()
    realised: dict[str, list[float]] = {arm: [] for arm in ARMS}
    expected: dict[str, list[float]] = {arm: [] for arm in ARMS}
    changes: list[int] = []
    retrain_seconds = 0.0
    for week in range(weeks):
        dates = days_between(last_day + timedelta(days=7 * week + 1), last_day + timedelta(days=7 * week + 7))
        for arm, predictor in predictors.items():
            table = products.assign(price_cents=prices[arm][pos])
            plan = run_pricing_cycle(
                table, predictor, rules, store=store.store_id, model_name=arm,
                now=datetime.combine(dates[0].astype(date), datetime.min.time(), UTC), dates=dates,
                competitor=competitors, check_scopes=False,  # evaluate() reports the scopes that match nothing
            )
            new = plan.proposed_prices()  # a pricing manager approves what the band holds
            if arm == "engine":
                changes.append(len(new))
            if new:
                prices[arm][market.positions(list(new))] = list(new.values())
        observed = None
        for arm in ARMS:
            grid = np.repeat(prices[arm][:, None], len(dates), axis=1)
            mu = market.expected(grid, dates)
            stock = draw_stock(mu, np.random.default_rng([seed, week, 1]))
            units = market.simulate(grid, dates, rng=np.random.default_rng([seed, week, 2]), stock=stock)
            margin = (grid - cost[:, None])[counted]
            realised[arm].append(float((margin * units[counted]).sum()))
            expected[arm].append(float((margin * mu[counted]).sum()))
            if arm == "engine":
                observed = _week_rows(market, store.store_id, grid, units, stock, dates)
        say(
            f"week {week + 1}: engine changed {changes[-1]} prices; profit vs oracle "
            f"{realised['engine'][-1] / realised['oracle'][-1]:.3f} (hold {realised['hold'][-1] / realised['oracle'][-1]:.3f})"
        )
        if week + 1 < weeks and observed is not None:
            history.append(observed)
            t = time.perf_counter()
            sales = pd.concat(history, ignore_index=True)
            predictors["engine"] = train_demand_model(sales, store.products, holdout_days=0, listing=store.listing).model
            retrain_seconds += time.perf_counter() - t
    return ClosedLoop(weeks, realised, expected, changes, retrain_seconds)


def _sales_frame(sales: pd.DataFrame) -> pd.DataFrame:
    """The columns training needs, with plain string SKUs so weeks concatenate cleanly."""
    out = pd.DataFrame(
        {
            "date": sales["date"].to_numpy(),
            "store": sales["store"].astype(str).to_numpy(dtype=object),
            "sku": sales["sku"].astype(str).to_numpy(dtype=object),
            "units": sales["units"].to_numpy(dtype=np.int64),
            "price_cents": sales["price_cents"].to_numpy(dtype=np.int64),
            "promo": sales["promo"].to_numpy(dtype=bool),
        }
    )
    if "stock" in sales.columns:
        out["stock"] = sales["stock"].to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _week_rows(
    market: TrueMarket, store: str, prices: np.ndarray, units: np.ndarray, stock: np.ndarray, dates: np.ndarray
) -> pd.DataFrame:
    """One observed week as sales rows (every market SKU, every day)."""
    n, days = prices.shape
    return pd.DataFrame(
        {
            "date": np.tile(dates.astype("datetime64[ns]"), n),
            "store": store,
            "sku": np.repeat(market.truth.sku, days),
            "units": units.ravel(),
            "price_cents": prices.ravel(),
            "promo": False,
            "stock": stock.ravel().astype(np.float64),
        }
    )
