"""Plan lines: the decision per SKU with its reason, and the approval band. Plain data in and out.

Every line says what the SKU is expected to sell and earn at the old and the new price, which rule
decided the price (a bound of the allowed range, the SKU's group, the change budget, or plain
profit), which hard rules had to be relaxed and which soft rules the price breaks.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from pricing.optimize.optimizer import OptimizerSolution
from pricing.plan.price_plan import LineStatus, PlanLine
from pricing.rules.candidates import Candidates
from pricing.rules.config import ApprovalBand
from pricing.rules.links import Links


@dataclass(frozen=True)
class Scored:
    units: np.ndarray  # (n, k) expected units per day at the candidates
    units_current: np.ndarray  # (n,)
    profit: np.ndarray  # (n, k) expected profit per day, cents
    profit_current: np.ndarray
    objective: np.ndarray  # (n, k) what the optimizer maximises, penalties included
    objective_below: np.ndarray  # one allowed step below lo: would the lower rule bind?
    objective_above: np.ndarray  # one allowed step above hi


def needs_approval(old: int, new: int, band: ApprovalBand | None) -> bool:
    """Is the change from old to new (cents) beyond the approval band?"""
    if band is None or old == new:
        return False
    if band.max_change_abs is not None and abs(new - old) > band.max_change_abs * 100:
        return True
    return band.max_change_pct is not None and Decimal(abs(new - old) * 100) > band.max_change_pct * old


def _bound_reason(i: int, j: int, candidates: Candidates, scored: Scored) -> tuple[str, str]:
    """A bound of the allowed range, if it stopped the price short of a better one."""
    valid = np.flatnonzero(candidates.valid[i])
    price = candidates.prices[i, j]
    if j == valid.max() and scored.objective_above[i] > scored.objective[i, j]:
        rule = str(candidates.hi_rule[i])
        return rule, f"capped at {price / 100:.2f} by {rule}; a higher price would earn more"
    if j == valid.min() and scored.objective_below[i] > scored.objective[i, j]:
        rule = str(candidates.lo_rule[i])
        return rule, f"held up at {price / 100:.2f} by {rule}; a lower price would earn more"
    return "profit_optimum", "best expected profit among the allowed prices"


class _LinkIndex:
    """Per SKU: its links, which were relaxed and which soft ones the plan breaks."""

    def __init__(self, links: Links, solution: OptimizerSolution) -> None:
        self.by_sku: dict[int, list[int]] = {}
        for e, (a, b) in enumerate(zip(links.a.tolist(), links.b.tolist())):
            self.by_sku.setdefault(a, []).append(e)
            self.by_sku.setdefault(b, []).append(e)
        self.links = links
        self.relaxed = solution.relaxed_links
        self.broken = solution.broken_links

    def kinds(self, i: int, mask: np.ndarray) -> list[str]:
        return sorted({str(self.links.kind[e]) for e in self.by_sku.get(i, []) if mask[e]})


def plan_lines(
    products: pd.DataFrame,
    candidates: Candidates,
    scored: Scored,
    solution: OptimizerSolution,
    links: Links,
    groups: np.ndarray,
    band: ApprovalBand | None,
) -> list[PlanLine]:
    info = products.set_index("sku")
    position = {str(sku): i for i, sku in enumerate(candidates.skus)}
    held = {h.sku: h.reason for h in candidates.held}
    index = _LinkIndex(links, solution)
    lines: list[PlanLine] = []
    for sku, row in info.iterrows():
        sku = str(sku)
        old = int(row["price_cents"])
        cost = None if pd.isna(row["cost_cents"]) else int(row["cost_cents"])
        common: dict[str, Any] = {
            "sku": sku, "name": str(row["name"]), "category": str(row["category"]), "old_cents": old, "cost_cents": cost,
        }
        i = position.get(sku)
        infeasible = i is not None and bool(solution.infeasible[i])
        if i is None or infeasible:
            if i is None:
                reason = held.get(sku, "no demand model for this SKU: held at current price")
            else:
                reason = f"{groups[i]}: the group's hard rules conflict: held at current price (on_conflict: hold)"
            lines.append(
                PlanLine(
                    **common, status="held", new_cents=old, units_old=None, units_new=None,
                    profit_old_cents=None, profit_new_cents=None, binding_rule="held", explanation=reason,
                    group=None if i is None else groups[i],
                )
            )
            continue
        j = int(solution.choice[i])
        new = int(candidates.prices[i, j])
        rule, why = _reason(i, j, candidates, scored, solution, index, groups)
        relaxed = list(candidates.relaxed[i]) + index.kinds(i, index.relaxed)
        broken = candidates.broken_rules(i, j) + index.kinds(i, index.broken & ~links.hard)
        status: LineStatus = "change"
        if new == old:
            status = "keep"
            why = "kept: current price is the best allowed price" if rule == "profit_optimum" else f"kept: {why}"
        elif needs_approval(old, new, band):
            status = "approval"
            why = f"{why}; needs approval: beyond the approval band"
        lines.append(
            PlanLine(
                **common, status=status, new_cents=new,
                units_old=float(scored.units_current[i]), units_new=float(scored.units[i, j]),
                profit_old_cents=float(scored.profit_current[i]), profit_new_cents=float(scored.profit[i, j]),
                binding_rule=rule, explanation=why, relaxed_rules=relaxed, soft_rules_broken=broken, group=groups[i],
            )
        )
    return _groups_wait_together(lines)


def _groups_wait_together(lines: list[PlanLine]) -> list[PlanLine]:
    """A linked group (family, ladder, tier) moves as one: when one of its changes needs approval,
    its other changes wait with it, or the shelf would show half a group's new prices."""
    waiting = {line.group for line in lines if line.status == "approval" and line.group}
    if not waiting:
        return lines
    return [
        line.model_copy(update={
            "status": "approval",
            "explanation": f"{line.explanation}; needs approval: waits with its group {line.group}",
        })
        if line.status == "change" and line.group in waiting else line
        for line in lines
    ]


def _reason(
    i: int, j: int, candidates: Candidates, scored: Scored, solution: OptimizerSolution, index: _LinkIndex,
    groups: np.ndarray,
) -> tuple[str, str]:
    """Which rule decided the chosen price, and a sentence saying so."""
    row = np.where(candidates.valid[i], scored.objective[i], -np.inf)
    own = int(row.argmax())
    current = candidates.current[i]
    if row[own] > row[j] + 1e-9:
        kinds = index.kinds(i, ~index.relaxed)
        if kinds and groups[i] is not None:
            better = candidates.prices[i, own]
            return kinds[0], f"priced with its group ({groups[i]}); alone it would be {better / 100:.2f}"
        if solution.budget_price > 0 and candidates.prices[i, j] == current:
            gain = (row[own] - row[j]) / 100
            return "change_budget", (
                f"change budget: moving to {candidates.prices[i, own] / 100:.2f} would add {gain:.2f}/day, "
                f"less than the {solution.budget_price / 100:.2f}/day a change had to earn"
            )
    return _bound_reason(i, j, candidates, scored)
