"""One pricing cycle: products + demand model + rules -> price plan. Plain data in and out."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd

from pricing.candidates import Candidates, generate_candidates
from pricing.optimizer import OptimizerInstance, OptimizerSolution, PriceOptimizer
from pricing.plan import LineStatus, PlanLine, PricePlan, SolverStats
from pricing.rules import RulesConfig


class DemandPredictor(Protocol):
    """What the cycle needs from a demand model (pricing.demand.DemandModel fits this)."""

    skus_: pd.Index

    def predict_grid(
        self,
        skus: np.ndarray,
        prices_cents: np.ndarray,
        *,
        current_prices_cents: np.ndarray | None = None,
        dates: Any = None,
    ) -> np.ndarray:
        """Expected units per day, SKUs x candidate prices, substitutes at the current prices."""
        ...

    def uncertain(self, skus: np.ndarray) -> np.ndarray:
        """True for SKUs whose demand estimate is too uncertain to move their price far."""
        ...


@dataclass(frozen=True)
class _Scored:
    units: np.ndarray  # (n, k) at the candidates
    units_current: np.ndarray  # (n,)
    profit: np.ndarray  # (n, k)
    profit_current: np.ndarray
    profit_below: np.ndarray  # one allowed step below lo: would the lower rule bind?
    profit_above: np.ndarray  # one allowed step above hi


def new_plan_id(now: datetime) -> str:
    return f"plan-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"


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
) -> PricePlan:
    """Price every product; SKUs without cost, model or allowed price are held with the reason.

    ``dates`` are the days the plan will be in force (expected units are their mean); by
    default an average day.
    """
    now = now or datetime.now(UTC)
    say = progress or (lambda _msg: None)
    known = products["sku"].isin(model.skus_)
    priced = products.loc[known]
    say("candidates")
    uncertain = model.uncertain(priced["sku"].to_numpy(dtype=object))
    candidates = generate_candidates(priced, rules, uncertain=uncertain)
    say("scoring")
    scored = _score(candidates, model, dates)
    say("optimizing")
    instance = OptimizerInstance(
        prices=candidates.prices,
        valid=candidates.valid,
        score=np.where(candidates.valid, scored.profit, 0.0),
        hint=candidates.current_index,
    )
    solution = PriceOptimizer(instance, rules.solver).solve()
    lines = _lines(products, candidates, scored, solution)
    return PricePlan(
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
        ),
        rejected_rows=rejected_rows,
    )


def _score(candidates: Candidates, model: DemandPredictor, dates: Any) -> _Scored:
    """Expected units and profit at every candidate, the current price and just outside the range.

    Substitutes stay at their current prices.
    """
    below, above = candidates.below, candidates.above
    grid = np.where(candidates.valid, candidates.prices, candidates.current[:, None])
    full = np.concatenate([grid, candidates.current[:, None], below[:, None], above[:, None]], axis=1)
    units = model.predict_grid(candidates.skus, full, current_prices_cents=candidates.current, dates=dates)
    profit = (full - candidates.cost[:, None]) * units
    k = grid.shape[1]
    return _Scored(
        units=units[:, :k],
        units_current=units[:, k],
        profit=profit[:, :k],
        profit_current=profit[:, k],
        profit_below=profit[:, k + 1],
        profit_above=profit[:, k + 2],
    )


def _binding(i: int, j: int, candidates: Candidates, scored: _Scored) -> tuple[str, str]:
    """Which rule decided the chosen price, and a sentence saying so."""
    valid = np.flatnonzero(candidates.valid[i])
    top, bottom = valid.max(), valid.min()
    price = candidates.prices[i, j]
    if j == top and scored.profit_above[i] > scored.profit[i, j]:
        rule = str(candidates.hi_rule[i])
        return rule, f"capped at {price / 100:.2f} by {rule}; a higher price would earn more"
    if j == bottom and scored.profit_below[i] > scored.profit[i, j]:
        rule = str(candidates.lo_rule[i])
        return rule, f"held up at {price / 100:.2f} by {rule}; a lower price would earn more"
    return "profit_optimum", "best expected profit among the allowed prices"


def _lines(
    products: pd.DataFrame,
    candidates: Candidates,
    scored: _Scored,
    solution: OptimizerSolution,
) -> list[PlanLine]:
    info = products.set_index("sku")
    lines: list[PlanLine] = []
    position = {sku: i for i, sku in enumerate(candidates.skus)}
    held = {h.sku: h.reason for h in candidates.held}
    for sku, row in info.iterrows():
        sku = str(sku)
        old = int(row["price_cents"])
        cost = None if pd.isna(row["cost_cents"]) else int(row["cost_cents"])
        common: dict[str, Any] = dict(sku=sku, name=str(row["name"]), category=str(row["category"]), old_cents=old, cost_cents=cost)
        i = position.get(sku)
        if i is None:
            reason = held.get(sku, "no demand model for this SKU: held at current price")
            lines.append(
                PlanLine(
                    **common, status="held", new_cents=old, units_old=None, units_new=None,
                    profit_old_cents=None, profit_new_cents=None, binding_rule="held", explanation=reason,
                )
            )
            continue
        j = int(solution.choice[i])
        new = int(candidates.prices[i, j])
        rule, why = _binding(i, j, candidates, scored)
        units_new, profit_new = float(scored.units[i, j]), float(scored.profit[i, j])
        units_old, profit_old = float(scored.units_current[i]), float(scored.profit_current[i])
        status: LineStatus
        if new == old:
            status = "keep"
            why = "kept: current price is the best allowed price" if rule == "profit_optimum" else f"kept: {why}"
        else:
            status = "change"
        lines.append(
            PlanLine(
                **common, status=status, new_cents=new, units_old=units_old, units_new=units_new,
                profit_old_cents=profit_old, profit_new_cents=profit_new, binding_rule=rule, explanation=why,
            )
        )
    return lines
