"""Plan lines: the decision per SKU with its reason, and the approval band. Plain data in and out.

Every line says what the SKU is expected to sell and earn at the old and the new price, which rule
decided the price (a bound of the allowed range, the rule that excludes today's price such as the
margin floor or, with ``endings_force_change``, the endings; the SKU's group partner by SKU, the
change budget, or plain profit), which hard rules had to be relaxed and which rule each gave way
to, and which soft rules the price breaks. Amounts per day are shown with enough decimals that
two different amounts never read the same. A change to a price off the endings (or price points)
because that rule was relaxed waits for approval like a change beyond the approval band.
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


def _money(cents: float | np.integer) -> str:
    """A price in cents as money text: prices are whole cents, so two decimals are exact."""
    return f"{int(cents) / 100:.2f}"


def _amounts(*cents: float) -> list[str]:
    """Amounts per day (cents, not whole) as money text with enough decimals that different
    amounts never read the same: two decimals, more while rounding would make two equal."""
    for places in range(2, 7):
        texts = [f"{c / 100:.{places}f}" for c in cents]
        if all(texts[a] != texts[b] for a in range(len(cents)) for b in range(a) if cents[a] != cents[b]):
            return texts
    return texts


def _forced(i: int, candidates: Candidates) -> tuple[str, str] | None:
    """The rule that excludes today's price, if one does: (rule, why)."""
    c = candidates
    today = int(c.current[i])
    if today < c.lo[i]:
        return str(c.lo_rule[i]), f"today's {_money(today)} is below its {_money(c.lo[i])}"
    if today > c.hi[i]:
        return str(c.hi_rule[i]), f"today's {_money(today)} is above its {_money(c.hi[i])}"
    off_set = c.current_off_set is not None and bool(c.current_off_set[i])
    set_hard = c.set_hard is not None and bool(c.set_hard[i])
    kept = c.keeps_current is not None and bool(c.keeps_current[i])
    if off_set and set_hard and not kept:
        rule = str(c.set_rule[i])
        why = f"today's {_money(today)} is not an allowed {rule} price"
        return rule, why + (" (endings_force_change: true)" if rule == "endings" else "")
    return None


def _set_gap(i: int, price: int, edge: int, candidates: Candidates, *, up: bool) -> str:
    """When the price set kept the price short of the bound: ' and endings (...)'."""
    c = candidates
    if c.set_hard is None or not c.set_hard[i] or price == edge:
        return ""
    beyond = c.above[i] if up else c.below[i]
    side = "above" if up else "below"
    return f" and {c.set_rule[i]} (the next allowed price {_money(beyond)} is {side} {_money(edge)})"


def _bound_reason(i: int, j: int, candidates: Candidates, scored: Scored) -> tuple[str, str] | None:
    """A bound of the allowed range that stopped the price short of a better one, if any: the
    SKU's own rule (with the price set when that kept it short of the bound) or the family
    member whose range set the end of the family's shared prices."""
    c = candidates
    valid = np.flatnonzero(c.valid[i])
    price = int(c.prices[i, j])
    if j == valid.max() and scored.objective_above[i] > scored.objective[i, j]:
        partner = None if c.family_hi_sku is None else c.family_hi_sku[i]
        if partner is not None and c.family_hi is not None:
            return "family", (f"held at {_money(price)} by family with SKU {partner} (at most "
                              f"{_money(c.family_hi[i])} for it); a higher price would earn more")
        rule = str(c.hi_rule[i])
        return rule, (f"capped at {_money(price)} by {rule}{_set_gap(i, price, int(c.hi[i]), c, up=True)}; "
                      "a higher price would earn more")
    if j == valid.min() and scored.objective_below[i] > scored.objective[i, j]:
        partner = None if c.family_lo_sku is None else c.family_lo_sku[i]
        if partner is not None and c.family_lo is not None:
            return "family", (f"held at {_money(price)} by family with SKU {partner} (at least "
                              f"{_money(c.family_lo[i])} for it); a lower price would earn more")
        rule = str(c.lo_rule[i])
        return rule, (f"held up at {_money(price)} by {rule}{_set_gap(i, price, int(c.lo[i]), c, up=False)}; "
                      "a lower price would earn more")
    return None


def _own_reason(i: int, j: int, candidates: Candidates, scored: Scored) -> tuple[str, str]:
    """The SKU's own rules: the rule that forced a change (today's price not allowed), the bound
    that stopped the price, or plain profit."""
    c = candidates
    price = int(c.prices[i, j])
    forced = _forced(i, c)
    bound = _bound_reason(i, j, c, scored)
    if forced is None:
        return bound or ("profit_optimum", "best expected profit among the allowed prices")
    rule, why = forced
    valid = np.flatnonzero(c.valid[i])
    today = int(c.current[i])
    first = "" if price in (c.lo[i], c.hi[i]) or c.set_hard is None or not c.set_hard[i] else (
        f" and {c.set_rule[i]} (the nearest allowed price)"
    )
    if today < c.lo[i] and j == valid.min():
        return rule, f"raised to {_money(price)} by {rule}{first}: {why}"
    if today > c.hi[i] and j == valid.max():
        return rule, f"lowered to {_money(price)} by {rule}{first}: {why}"
    if bound is not None:  # the bound decided the price; the forcing rule is still named
        return bound[0], f"{bound[1]}; {rule} forced a change: {why}"
    return rule, f"{rule} forced a change: {why}; best expected profit among the allowed prices"


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

    def binding(self, i: int, price: int, candidates: Candidates, choice: np.ndarray) -> list[tuple[str, str]]:
        """(kind, SKU) of the linked SKUs that keep SKU i from ``price``: the partners whose link
        (hard, not relaxed) forbids it at their chosen prices; every such partner when none does
        alone (the group's best is a compromise). Family first, then ladder, then tier."""
        links = self.links
        active = [e for e in self.by_sku.get(i, []) if not self.relaxed[e] and links.hard[e]]
        found: list[tuple[str, str]] = []
        for e in active:
            a, b = int(links.a[e]), int(links.b[e])
            other = b if a == i else a
            theirs = int(candidates.prices[other, choice[other]]) if choice[other] >= 0 else int(candidates.current[other])
            ok = links.pair_allowed(e, price, theirs) if a == i else links.pair_allowed(e, theirs, price)
            if not ok:
                found.append((str(links.kind[e]), str(candidates.skus[other])))
        if not found:
            found = [(str(links.kind[e]), str(candidates.skus[b if a == i else a]))
                     for e in active for a, b in [(int(links.a[e]), int(links.b[e]))]]
        order = {"family": 0, "ladder": 1, "tier": 2}
        return sorted(set(found), key=lambda pair: (order.get(pair[0], 3), pair[1]))

    def relaxed_notes(self, i: int) -> list[str]:
        """A sentence per link of SKU i that was relaxed: what it gave way to."""
        return [f"{kind} relaxed for the members' own rules: with them no joint price fits"
                for kind in self.kinds(i, self.relaxed)]


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
            if candidates.keeps_current is not None and candidates.current_off_set is not None and (
                candidates.keeps_current[i] and candidates.current_off_set[i]
            ):
                why += (f"; today's {_money(old)} breaks endings, which apply to new prices only "
                        "(endings_force_change: false)")
        notes = list(candidates.relaxed_for[i]) if candidates.relaxed_for is not None else []
        notes += index.relaxed_notes(i)
        if notes:
            why = f"{why}; " + "; ".join(notes)
        if status == "change":
            waits = _approval_reasons(old, new, band, str(candidates.set_rule[i]), relaxed)
            if waits:
                status = "approval"
                why = f"{why}; needs approval: " + "; ".join(waits)
        lines.append(
            PlanLine(
                **common, status=status, new_cents=new,
                units_old=float(scored.units_current[i]), units_new=float(scored.units[i, j]),
                profit_old_cents=float(scored.profit_current[i]), profit_new_cents=float(scored.profit[i, j]),
                binding_rule=rule, explanation=why, relaxed_rules=relaxed, soft_rules_broken=broken, group=groups[i],
            )
        )
    return _groups_wait_together(lines)


def _approval_reasons(old: int, new: int, band: ApprovalBand | None, set_rule: str, relaxed: list[str]) -> list[str]:
    """Why a change waits for a pricing manager: beyond the approval band, or a price off the
    store's endings (or price points) because that rule was relaxed: never pushed silently."""
    reasons = []
    if needs_approval(old, new, band):
        reasons.append("beyond the approval band")
    if set_rule in relaxed:
        reasons.append(f"{_money(new)} is not an allowed {set_rule} price ({set_rule} relaxed)")
    return reasons


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
    """Which rule decided the chosen price, and a sentence saying so (group partners by SKU)."""
    row = np.where(candidates.valid[i], scored.objective[i], -np.inf)
    own = int(row.argmax())
    current = candidates.current[i]
    if row[own] > row[j] + 1e-9:
        partners = index.binding(i, int(candidates.prices[i, own]), candidates, solution.choice)
        if partners and groups[i] is not None:
            kind = partners[0][0]
            skus = ", ".join(f"SKU {sku}" for k, sku in partners if k == kind)
            return kind, (
                f"priced with its group ({groups[i]}): held at {_money(candidates.prices[i, j])} by {kind} with "
                f"{skus}; alone it would be {_money(candidates.prices[i, own])}"
            )
        if solution.budget_price > 0 and candidates.prices[i, j] == current:
            gain, price = row[own] - row[j], solution.budget_price
            gain_text, price_text = _amounts(gain, price)
            move = f"change budget: moving to {_money(candidates.prices[i, own])} would add {gain_text}/day"
            if gain < price:
                return "change_budget", f"{move}, less than the {price_text}/day a change had to earn"
            return "change_budget", f"{move}, but the budget went to changes that earn more per label"
    return _own_reason(i, j, candidates, scored)
