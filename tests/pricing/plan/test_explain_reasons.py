"""pricing.plan.explain: each plan line names the rule that really decided its price.

Findings of issue 18 ("Say what is true"): the margin floor that forced a change, the family
member or ladder partner (by SKU) that held a price, endings that bound, the rule a relaxed rule
gave way to, a relaxed ending never pushed silently, and amounts shown precisely enough to be true.
End to end through ``run_pricing_cycle`` with the constant-elasticity fake demand of test_cycle.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pricing.optimize.optimizer import OptimizerSolution
from pricing.plan import explain
from pricing.plan.cycle import run_pricing_cycle
from pricing.plan.explain import Scored, plan_lines
from pricing.plan.price_plan import PricePlan
from pricing.rules.candidates import generate_candidates
from pricing.rules.config import RulesConfig
from pricing.rules.links import Links
from tests.pricing.plan.test_cycle import NOW, FakeDemand, linked, products


def cycle(frame: pd.DataFrame, elasticity: dict[str, float], rules: dict, uncertain: set[str] | None = None) -> PricePlan:
    model = FakeDemand(elasticity, uncertain=uncertain)
    return run_pricing_cycle(frame, model, RulesConfig.model_validate(rules), store="S1", model_name="m", now=NOW)


def line_of(plan: PricePlan, sku: str):
    (line,) = [line for line in plan.lines if line.sku == sku]
    return line


# -- 1. the margin floor, and what a relaxed rule gave way to -----------------------------------


def test_a_change_forced_by_the_margin_floor_names_it_and_what_max_change_gave_way_to() -> None:
    # cost 1.62 + 35% = 2.19 at least; today 1.99 + 10% = 2.18 at most: max change (60) gives way
    rules = {"default": {"margin_floor_pct": 35, "max_change_pct": 10, "endings": [".99", ".49"]}}
    line = line_of(cycle(products([("a", "dairy", 162, 199)]), {"a": 3.0}, rules), "a")
    assert line.new_cents == 249 and line.relaxed_rules == ["max_change_pct"]
    assert line.binding_rule == "margin_floor_pct"
    assert "raised to 2.49 by margin_floor_pct" in line.explanation
    assert "today's 1.99 is below its 2.19" in line.explanation
    assert "max_change_pct relaxed for margin_floor_pct" in line.explanation
    assert "max_change_pct allows <= 2.18" in line.explanation


def test_a_large_move_after_the_floor_relaxed_max_change_still_names_the_floor() -> None:
    # today 8.00 is below the floor 10.50; with max change relaxed the profit optimum (20.00) is allowed
    rules = {"default": {"margin_floor_pct": 5, "max_change_pct": 10, "endings": [".x9"]}, "max_candidates": 200}
    line = line_of(cycle(products([("a", "dairy", 1_000, 800)]), {"a": 2.0}, rules), "a")
    assert line.new_cents > 1_200 and line.relaxed_rules == ["max_change_pct"]
    assert line.binding_rule == "margin_floor_pct"  # was: profit_optimum
    assert "margin_floor_pct forced a change: today's 8.00 is below its 10.50" in line.explanation
    assert "max_change_pct relaxed for margin_floor_pct" in line.explanation


# -- 2. group partners by SKU ---------------------------------------------------------------------


def test_a_family_member_capped_by_its_sibling_names_the_sibling() -> None:
    # a alone may go to 3.79 (10 % above 3.49), b only to 3.49 (10 % above 3.19); both want more
    rules = {"default": {"margin_floor_pct": 0, "max_change_pct": 10, "endings": [".x9"]}}
    frame = linked([("a", "dairy", 100, 349), ("b", "dairy", 100, 319)], family=["F", "F"])
    plan = cycle(frame, {"a": 1.2, "b": 1.2}, rules)
    a, b = line_of(plan, "a"), line_of(plan, "b")
    assert a.new_cents == b.new_cents == 349
    assert a.binding_rule == "family" and "held at 3.49 by family with SKU b" in a.explanation
    assert "max_change_pct" not in a.explanation  # its own 10 % allows 3.79
    assert b.binding_rule == "max_change_pct" and "capped at 3.49 by max_change_pct" in b.explanation


def test_a_ladder_partner_is_named_by_sku() -> None:
    rules = {"default": {"margin_floor_pct": 0, "max_change_pct": 50, "endings": [".x9"]}, "max_candidates": 60}
    frame = linked(
        [("s", "dairy", 100, 249), ("l", "dairy", 100, 249)], ladder=["L", "L"], size=[1.0, 2.0], unit=["l", "l"]
    )
    plan = cycle(frame, {"s": 1.5, "l": 4.0}, rules)
    texts = {line.sku: line.explanation for line in plan.lines if line.binding_rule == "ladder"}
    assert texts, [line.explanation for line in plan.lines]
    for sku, text in texts.items():
        other = "l" if sku == "s" else "s"
        assert f"by ladder with SKU {other}" in text and "alone it would be" in text


# -- 3. endings apply to new prices ---------------------------------------------------------------

ENDINGS = {"default": {"margin_floor_pct": 0, "max_change_pct": 10, "uncertain_max_change_pct": 3,
                       "endings": [".99", ".49"]}}


def test_a_price_breaking_only_the_endings_stays_when_a_cut_would_lose_money() -> None:
    # today 8.05; within 3 % the only .99/.49 price is 7.99, and the optimum (8.20) is above today
    plan = cycle(products([("a", "dairy", 500, 805)]), {"a": 820 / 320}, ENDINGS, uncertain={"a"})
    line = line_of(plan, "a")
    assert line.status == "keep" and line.new_cents == 805
    assert "today's 8.05 breaks endings, which apply to new prices only (endings_force_change: false)" in line.explanation
    assert line.relaxed_rules == [] and line.soft_rules_broken == []


def test_endings_force_change_forces_the_change_and_says_endings() -> None:
    plan = cycle(products([("a", "dairy", 500, 805)]), {"a": 820 / 320}, {**ENDINGS, "endings_force_change": True},
                 uncertain={"a"})
    line = line_of(plan, "a")
    assert line.new_cents == 799
    assert "endings forced a change: today's 8.05 is not an allowed endings price" in line.explanation


def test_no_change_is_made_just_to_satisfy_an_ending() -> None:
    # every price ends in 5; each SKU's own profit never falls, whatever its elasticity
    rows = [(f"{i:02d}", "dairy", 300, 395 + 100 * (i % 7)) for i in range(14)]
    elasticity = {f"{i:02d}": 1.3 + 0.35 * i for i in range(14)}
    plan = cycle(products(rows), elasticity, ENDINGS, uncertain=set(elasticity))  # within 3 %: only x.99
    for line in plan.lines:
        assert line.profit_new_cents >= line.profit_old_cents - 1e-9, line
        if line.new_cents != line.old_cents:
            assert line.new_cents % 100 in (49, 99)  # endings still apply to the new prices


def test_a_family_sharing_an_off_ending_price_may_keep_it() -> None:
    frame = linked([("a", "dairy", 500, 805), ("b", "dairy", 500, 805)], family=["F", "F"])
    plan = cycle(frame, {"a": 820 / 320, "b": 820 / 320}, ENDINGS, uncertain={"a", "b"})
    assert [(line.status, line.new_cents) for line in plan.lines] == [("keep", 805), ("keep", 805)]
    assert all(line.relaxed_rules == [] for line in plan.lines)


# -- 4. a relaxed ending is said, and waits for approval -------------------------------------------


def test_a_relaxed_ending_is_explained_and_waits_for_approval() -> None:
    # floor 10.50, max change 10.98, endings .99 only: no allowed ending in between, endings (50) relax
    rules = {"default": {"margin_floor_pct": 5, "max_change_pct": 10, "endings": [".99"]}}
    plan = cycle(products([("a", "dairy", 1_000, 999)]), {"a": 2.0}, rules)
    line = line_of(plan, "a")
    assert line.relaxed_rules == ["endings"] and line.new_cents % 100 != 99
    assert line.status == "approval" and "a" not in plan.new_prices()
    assert "endings relaxed for margin_floor_pct and max_change_pct" in line.explanation
    assert "needs approval: " in line.explanation and "is not an allowed endings price" in line.explanation


# -- 5. amounts precise enough to be true -----------------------------------------------------------


def test_amounts_get_decimals_until_different_amounts_read_differently() -> None:
    assert explain._amounts(3.12, 3.49) == ["0.031", "0.035"]
    assert explain._amounts(312.0, 349.0) == ["3.12", "3.49"]
    assert explain._amounts(3.1201, 3.1202) == ["0.031201", "0.031202"]
    assert explain._amounts(5.0, 5.0) == ["0.05", "0.05"]


def test_the_change_budget_line_compares_amounts_that_read_differently() -> None:
    frame = products([("a", "dairy", 50, 99)])
    candidates = generate_candidates(frame, RulesConfig.model_validate(
        {"default": {"margin_floor_pct": 0, "max_change_pct": 50, "endings": [".x0", ".x9"]}, "max_candidates": 30}
    ))
    prices = candidates.prices[0]
    assert 80 in prices.tolist() and 99 in prices.tolist()
    k = prices.shape[0]
    objective = np.where(prices == 80, 103.12, 100.0)[None, :]
    scored = Scored(
        units=np.ones((1, k)), units_current=np.ones(1), profit=objective.copy(), profit_current=np.full(1, 100.0),
        objective=objective, objective_below=np.zeros(1), objective_above=np.zeros(1),
    )
    keep = int(np.flatnonzero(prices == 99)[0])
    solution = OptimizerSolution(
        choice=np.array([keep]), objective=100.0, bound=100.0, status="OPTIMAL", seconds=0.0,
        infeasible=np.zeros(1, dtype=bool), budget_price=3.49,
    )
    (line,) = plan_lines(frame, candidates, scored, solution, Links.empty(), np.array([None], dtype=object), None)
    assert line.binding_rule == "change_budget"
    assert "moving to 0.80 would add 0.031/day, less than the 0.035/day a change had to earn" in line.explanation
