"""One pricing cycle: products + demand model + rules -> price plan. Plain data in and out.

candidates (pricing.rules.candidates: per-SKU rules, relaxation, soft penalties) -> scores (the demand
model's expected units at every candidate, turned into each category's objective) -> links
(pricing.rules.links: families, ladders, tiers from products.csv) -> optimizer (pricing.optimize.optimizer:
decomposed, with the change budget) -> plan lines, each with its reason (pricing.plan.explain), and
the approval band.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from label_gateway.label_templates import LabelTemplates, default_label_templates
from pricing.core.money import to_cents
from pricing.demand.model_store import MODEL_FILE
from pricing.demand.predictor import DemandPredictor
from pricing.optimize.optimizer import ChangeBudget, OptimizerInstance, PriceOptimizer
from pricing.plan.explain import Scored, plan_lines
from pricing.plan.label_fit import check_label_fit
from pricing.plan.price_plan import (
    InputFile,
    PlanInputs,
    PricePlan,
    SolverStats,
    input_file,
)
from pricing.rules.candidates import Candidates, generate_candidates
from pricing.rules.config import RulesConfig
from pricing.rules.links import build_links


def new_plan_id(now: datetime) -> str:
    return f"plan-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


def plan_inputs(
    rules: RulesConfig,
    *,
    model: Path | None = None,
    model_sha256: str | None = None,
    data_dir: Path | None = None,
    data_files: Iterable[str] = (),
) -> PlanInputs:
    """The record of a plan's inputs: the rules' file (if read from one), the model file (``model``:
    a directory from esl-pricing train or the file itself) and ``data_files`` (names, e.g.
    StoreData.rows_read) in ``data_dir``, each with its absolute path and SHA-256. ``model_sha256``:
    the hash the model card vouched for when the model was loaded (else the file is hashed now)."""
    source = rules.source  # the hash of the bytes the rules were read from, not of the file now
    rules_file = None if source is None else InputFile(path=str(source.path.resolve()), sha256=source.sha256)
    model_file = None
    if model is not None:
        path = model / MODEL_FILE if model.is_dir() else model
        model_file = (input_file(path) if model_sha256 is None
                      else InputFile(path=str(path.resolve()), sha256=model_sha256))
    data = [input_file(data_dir / name) for name in data_files] if data_dir is not None else []
    return PlanInputs(rules=rules_file, model=model_file, data=data)


def run_pricing_cycle(
    products: pd.DataFrame,
    model: DemandPredictor,
    rules: RulesConfig,
    *,
    store: str,
    model_name: str,
    now: datetime | None = None,
    rejected_rows: int = 0,
    progress: Callable[[str], None] | None = None,
    dates: Any = None,
    competitor: pd.Series | None = None,
    labels: pd.DataFrame | None = None,
    label_templates: LabelTemplates | None = None,
    inputs: PlanInputs | None = None,
    check_scopes: bool = True,
) -> PricePlan:
    """Price every product; SKUs without cost, model or allowed price are held with the reason.

    ``dates`` are the days the plan will be in force (expected units are their mean); by
    default an average day. ``competitor`` maps SKU -> reference competitor price (cents).
    With ``labels`` (labels.csv), a new price that does not fit one of the SKU's labels
    (``label_templates``, default the packaged ones) holds the SKU and its group at today's price.

    Rules read from a file (``rules.source``) must name only categories, brands and SKUs that are
    in ``products``: otherwise ConfigError, one ``FILE:LINE`` line per scope (``check_scopes=False``
    only where the products are a generated store the rules were not written for). The plan records
    ``inputs`` (see plan_inputs), by default just the rules file.
    """
    if check_scopes and rules.source is not None:
        rules.check_scopes(products)
    now = now or datetime.now(UTC)
    say = progress or (lambda _msg: None)
    known = products["sku"].isin(model.skus_)
    priced = products.loc[known].reset_index(drop=True)
    say("candidates")
    uncertain = model.uncertain(priced["sku"].to_numpy(dtype=object))
    candidates = generate_candidates(priced, rules, uncertain=uncertain, competitor=competitor)
    say("scoring")
    scored = score_candidates(candidates, model, dates)
    say("optimizing")
    links, groups, notes = build_links(priced, candidates)
    budget = None
    if rules.change_budget is not None:
        cb = rules.change_budget
        budget = ChangeBudget(
            max_changes=cb.limit(len(candidates.skus)), hard=cb.hard,
            penalty=0.0 if cb.penalty is None else float(to_cents(cb.penalty)),
        )
    instance = OptimizerInstance(
        prices=candidates.prices,
        valid=candidates.valid,
        score=np.where(candidates.valid, scored.objective, 0.0),
        hint=candidates.current_index,
        current=candidates.current,
        links=links,
        budget=budget,
        relax=rules.on_conflict == "relax",
    )
    solution = PriceOptimizer(instance, rules.solver).solve()
    if solution.budget_relaxed:
        notes.append(
            f"change budget relaxed: the rules force {solution.changes} changes, more than the "
            f"{budget.max_changes if budget else 0} allowed"
        )
    lines = plan_lines(products, candidates, scored, solution, links, groups, rules.approval)
    plan = PricePlan(
        plan_id=new_plan_id(now),
        created_at=now,
        store=store,
        currency=rules.currency,
        model=model_name,
        lines=lines,
        solver=SolverStats(
            status=solution.status,
            objective_cents=solution.objective,
            bound_cents=solution.bound,
            seconds=solution.seconds,
            gap_pct=solution.gap_pct,
            changes=solution.changes,
            budget_price_cents=solution.budget_price,
            budget_relaxed=solution.budget_relaxed,
            groups_dp=int(solution.stats.get("groups_dp", 0)),
            groups_cpsat=int(solution.stats.get("groups_cpsat", 0)),
        ),
        rejected_rows=rejected_rows,
        notes=notes,
        inputs=inputs if inputs is not None else plan_inputs(rules),
    )
    if labels is None:
        return plan
    return check_label_fit(plan, products, labels, label_templates or default_label_templates())


def score_candidates(candidates: Candidates, model: DemandPredictor, dates: Any) -> Scored:
    """Expected units, profit and the objective at every candidate, today's price and just
    outside the range. Substitutes stay at their current prices.

    The objective is (1 - w) x profit + w x revenue (w from the SKU's ``objective``), less the
    soft-rule penalties and the drift guard: each 1% away from today's price costs
    ``drift_penalty_pct`` % of the objective at today's price.
    """
    below, above = candidates.below, candidates.above
    current = candidates.current
    grid = np.where(candidates.valid, candidates.prices, current[:, None])
    full = np.concatenate([grid, current[:, None], below[:, None], above[:, None]], axis=1)
    units = model.predict_grid(candidates.skus, full, current_prices_cents=current, dates=dates)
    profit = (full - candidates.cost[:, None]) * units
    revenue = full * units
    weight = candidates.settings["revenue_weight"][:, None]
    value = (1 - weight) * profit + weight * revenue
    k = grid.shape[1]
    drift = candidates.settings["drift_pct"][:, None]
    moved_pct = np.abs(full / np.maximum(current[:, None], 1) - 1) * 100
    objective = value - drift / 100 * moved_pct * np.abs(value[:, k : k + 1])
    return Scored(
        units=units[:, :k],
        units_current=units[:, k],
        profit=profit[:, :k],
        profit_current=profit[:, k],
        objective=objective[:, :k] - candidates.penalty,
        objective_below=objective[:, k + 1],
        objective_above=objective[:, k + 2],
    )
