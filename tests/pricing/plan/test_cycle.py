"""pricing.plan.cycle + pricing.plan.price_plan: one pricing cycle with a fake constant-elasticity demand model.

With units = a * p^-e (e > 1) and unit cost c, profit (p - c) * a * p^-e peaks at p* = c * e / (e - 1),
so each test knows where the true optimum lies and which rule must stop the price short of it.
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing.plan.cycle import run_pricing_cycle
from pricing.plan.price_plan import CSV_COLUMNS, PricePlan
from pricing.rules.candidates import ending_offsets
from pricing.rules.config import (
    ApprovalBand,
    ChangeBudget,
    DefaultRules,
    RulesConfig,
    RuleValues,
    SolverConfig,
)

NOW = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)


class FakeDemand:
    """units = level * (price / 100) ** -elasticity, per SKU; the cycle's DemandPredictor contract."""

    def __init__(self, elasticity: dict[str, float], level: float = 50.0, uncertain: set[str] | None = None) -> None:
        self.skus_ = pd.Index(list(elasticity), dtype=object)
        self._e = np.array(list(elasticity.values()), dtype=float)
        self._level = level
        self._uncertain = uncertain or set()
        self.calls: list[tuple[int, int]] = []
        self.current: list[np.ndarray] = []

    def predict_grid(
        self, skus: np.ndarray, prices_cents: np.ndarray, *, current_prices_cents: np.ndarray | None = None, dates: object = None
    ) -> np.ndarray:
        idx = self.skus_.get_indexer(pd.Index(skus, dtype=object))
        assert (idx >= 0).all(), "the cycle must only ask about SKUs the model knows"
        prices = np.asarray(prices_cents, dtype=float)
        assert prices.shape[0] == len(idx)
        assert (prices > 0).all(), "a real model refuses non-positive prices"
        assert current_prices_cents is not None and len(current_prices_cents) == len(idx)
        self.calls.append(prices.shape)
        self.current.append(np.asarray(current_prices_cents))
        return self._level * (prices / 100.0) ** -self._e[idx, None]

    def uncertain(self, skus: np.ndarray) -> np.ndarray:
        return np.array([str(s) in self._uncertain for s in skus], dtype=bool)


def optimum(cost: int, e: float) -> float:
    return cost * e / (e - 1)


def products(rows: list[tuple[str, str, int | None, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sku": [r[0] for r in rows],
            "name": [f"item {r[0]}" for r in rows],
            "category": [r[1] for r in rows],
            "cost_cents": pd.array([r[2] for r in rows], dtype="Int64"),
            "price_cents": np.array([r[3] for r in rows], dtype=np.int64),
        }
    )


RULES = RulesConfig(
    default=DefaultRules(margin_floor_pct=Decimal(5), max_change_pct=Decimal(20), endings=[".x9"]),
    categories={
        "wine": RuleValues(margin_floor_pct=Decimal(30), endings=[".95"], max_change_pct=Decimal(40)),
        "bakery": RuleValues(margin_floor_pct=Decimal(50)),
    },
    max_candidates=60,
    solver=SolverConfig(time_limit_s=10, workers=1),
)


def resolved_ok(line, rules: RulesConfig) -> None:
    """The new price obeys every rule in force for the line's category."""
    r = rules.resolve(line.category)
    new, old, cost = line.new_cents, line.old_cents, line.cost_cents
    assert new % 100 in ending_offsets(r.endings), f"{line.sku}: {new} has no allowed ending {r.endings}"
    assert r.min_price_cents <= new <= r.max_price_cents
    assert Decimal(new) >= Decimal(cost) * (1 + r.margin_floor_pct / 100), f"{line.sku}: {new} below the margin floor"
    assert abs(Decimal(new - old)) <= Decimal(old) * r.max_change_pct / 100, f"{line.sku}: {old} -> {new} too far"


@pytest.fixture(scope="module")
def plan() -> PricePlan:
    frame = products(
        [
            ("0001", "dairy", 100, 199),  # e=2: optimum 2.00, inside [1.60, 2.38]
            ("0002", "dairy", 300, 399),  # e=1.2: optimum 18.00, far above the 20% ceiling 4.78
            ("0003", "bakery", 200, 329),  # e=4: optimum 2.67, below the bakery floor 2.00 x 1.50
            ("0004", "dairy", None, 149),  # no cost
            ("0005", "dairy", 100, 199),  # unknown to the model
            ("0123", "wine", 500, 995),  # e=3: optimum 7.50; wine: >= 6.50, within 40% of 9.95
            ("0007", "dairy", 1000, 999),  # floor 10.50 vs ceiling 11.98 is fine; e=1.5 -> 30.00 above
        ]
    )
    model = FakeDemand({"0001": 2.0, "0002": 1.2, "0003": 4.0, "0004": 2.0, "0123": 3.0, "0007": 1.5})
    messages: list[str] = []
    result = run_pricing_cycle(
        frame, model, RULES, store="S1", model_name="fake-ce", now=NOW, rejected_rows=3, progress=messages.append
    )
    assert messages == ["candidates", "scoring", "optimizing"]
    return result


def line_of(plan: PricePlan, sku: str):
    (line,) = [line for line in plan.lines if line.sku == sku]
    return line


def test_plan_header(plan: PricePlan) -> None:
    assert plan.store == "S1" and plan.model == "fake-ce" and plan.currency == "EUR"
    assert plan.created_at == NOW
    assert plan.plan_id.startswith("plan-20240301T060000Z-")
    assert plan.rejected_rows == 3
    assert plan.solver.status == "OPTIMAL"
    assert [line.sku for line in plan.lines] == ["0001", "0002", "0003", "0004", "0005", "0123", "0007"]


def test_every_priced_line_obeys_its_rules(plan: PricePlan) -> None:
    for line in plan.lines:
        if line.status == "held":
            continue
        resolved_ok(line, RULES)
        assert line.units_new is not None and line.profit_new_cents is not None
        assert (line.status == "keep") == (line.new_cents == line.old_cents)


def test_no_cost_and_unknown_sku_are_held(plan: PricePlan) -> None:
    no_cost, unknown = line_of(plan, "0004"), line_of(plan, "0005")
    for line in (no_cost, unknown):
        assert line.status == "held"
        assert line.new_cents == line.old_cents
        assert line.binding_rule == "held"
        assert line.units_new is None and line.profit_new_cents is None
    assert "no cost" in no_cost.explanation
    assert no_cost.cost_cents is None
    assert "no demand model" in unknown.explanation
    assert {line.sku for line in plan.held} == {"0004", "0005"}
    assert "0004" not in plan.new_prices() and "0005" not in plan.new_prices()


def test_interior_optimum_is_the_profit_optimum(plan: PricePlan) -> None:
    line = line_of(plan, "0001")
    assert line.binding_rule == "profit_optimum"
    assert line.new_cents == 199  # the allowed price nearest the optimum 2.00, so keep
    assert line.status == "keep"
    assert line.explanation == "kept: current price is the best allowed price"
    wine = line_of(plan, "0123")
    assert wine.binding_rule == "profit_optimum"
    assert wine.new_cents == 795  # optimum 7.50; .95 prices around it: 6.95 and 7.95 (7.95 earns more)
    assert wine.status == "change"
    assert wine.new_cents % 100 == 95


def test_optimum_above_ceiling_is_capped_by_max_change(plan: PricePlan) -> None:
    line = line_of(plan, "0002")
    assert optimum(300, 1.2) > 399 * 1.2
    assert line.binding_rule == "max_change_pct"
    assert line.new_cents == 469  # the highest .x9 price within +20% of 3.99 (4.788)
    assert "capped at 4.69 by max_change_pct" in line.explanation
    assert line.status == "change"
    far = line_of(plan, "0007")
    assert far.binding_rule == "max_change_pct" and far.new_cents == 1_189


def test_uncertain_demand_keeps_the_price_near_the_current_one() -> None:
    frame = products([("0002", "dairy", 300, 399), ("0009", "dairy", 300, 399)])
    model = FakeDemand({"0002": 1.2, "0009": 1.2}, uncertain={"0009"})
    result = run_pricing_cycle(frame, model, RULES, store="S1", model_name="fake", now=NOW)
    sure, unsure = line_of(result, "0002"), line_of(result, "0009")
    assert sure.new_cents == 469  # +20% (max_change_pct)
    assert unsure.new_cents == 409  # the highest .x9 price within +3% of 3.99 (4.1097)
    assert unsure.binding_rule == "uncertain_max_change_pct"
    assert "capped at 4.09 by uncertain_max_change_pct" in unsure.explanation
    assert model.current[-1].tolist() == [399.0, 399.0]  # substitutes at their current prices


def test_optimum_below_the_margin_floor_is_held_up_by_it(plan: PricePlan) -> None:
    line = line_of(plan, "0003")
    assert 329 * 0.8 < optimum(200, 4.0) < 300  # the bakery floor (3.00) binds, not max change (2.64)
    assert line.binding_rule == "margin_floor_pct"
    assert line.new_cents == 309  # the lowest .x9 price >= 3.00
    assert "held up at 3.09 by margin_floor_pct" in line.explanation
    assert line.status == "change"


def test_expected_profit_never_worse(plan: PricePlan) -> None:
    for line in plan.lines:
        if line.status != "held":
            assert line.profit_new_cents >= line.profit_old_cents - 1e-3
            assert line.units_old > 0 and line.units_new > 0
    old, new = plan.expected_profit()
    assert new >= old > 0
    assert plan.expected_profit_delta_pct() >= 0
    assert plan.solver.objective_cents == pytest.approx(new, abs=1e-2)


def test_profit_figures_match_the_model(plan: PricePlan) -> None:
    line = line_of(plan, "0002")
    units = 50.0 * (line.new_cents / 100) ** -1.2
    assert line.units_new == pytest.approx(units)
    assert line.profit_new_cents == pytest.approx((line.new_cents - 300) * units)
    assert line.units_old == pytest.approx(50.0 * (399 / 100) ** -1.2)


def test_all_held_cycle() -> None:
    frame = products([("0001", "dairy", None, 199), ("0002", "dairy", 100, 199)])
    plan = run_pricing_cycle(frame, FakeDemand({"0001": 2.0}), RULES, store="S1", model_name="m", now=NOW)
    assert [line.status for line in plan.lines] == ["held", "held"]
    assert plan.solver.status == "OPTIMAL"
    assert plan.expected_profit() == (0.0, 0.0)
    assert plan.expected_profit_delta_pct() == 0.0


def test_conflicting_rules_are_held_with_the_reason_when_told_to_hold() -> None:
    # cost 10.00 + 5% = 10.50 at least, 9.99 + 10% = 10.98 at most: no price ends in .99 in between
    rules = RulesConfig(
        default=DefaultRules(margin_floor_pct=Decimal(5), max_change_pct=Decimal(10), endings=[".99"]),
        on_conflict="hold",
    )
    frame = products([("0001", "dairy", 1_000, 999)])
    plan = run_pricing_cycle(frame, FakeDemand({"0001": 2.0}), rules, store="S1", model_name="m", now=NOW)
    (line,) = plan.lines
    assert line.status == "held" and line.new_cents == 999
    assert "rules conflict" in line.explanation and "margin_floor_pct" in line.explanation


def test_conflicting_rules_relax_the_lowest_priority_one() -> None:
    rules = RulesConfig(default=DefaultRules(margin_floor_pct=Decimal(5), max_change_pct=Decimal(10), endings=[".99"]))
    assert rules.on_conflict == "relax"  # the default
    frame = products([("0001", "dairy", 1_000, 999)])
    plan = run_pricing_cycle(frame, FakeDemand({"0001": 2.0}), rules, store="S1", model_name="m", now=NOW)
    (line,) = plan.lines
    # endings (priority 50) go before max_change_pct (60) and the margin floor (100)
    assert line.status == "approval" and 1_050 <= line.new_cents <= 1_098  # off the endings: never pushed silently
    assert line.relaxed_rules == ["endings"]


def test_a_sku_without_cost_is_held_even_when_everything_is_relaxed() -> None:
    rules = RulesConfig.model_validate(
        {"default": {"margin_floor_pct": {"value": 0, "hard": False}, "min_price": {"value": "0.01", "priority": 0}}}
    )
    frame = products([("0001", "dairy", None, 199), ("0002", "dairy", 0, 199)])
    plan = run_pricing_cycle(frame, FakeDemand({"0001": 2.0, "0002": 1.1}), rules, store="S1", model_name="m", now=NOW)
    no_cost, free = plan.lines
    assert no_cost.status == "held" and no_cost.new_cents == 199 and "no cost" in no_cost.explanation
    assert free.status in ("change", "keep") and free.new_cents >= 1  # a cost of 0 is a cost: priced, never at 0


# -- links, budget, approval, objective: end to end ---------------------------------------------

LOOSE = RulesConfig.model_validate(
    {"default": {"margin_floor_pct": 0, "max_change_pct": 50, "endings": [".x9"]}, "max_candidates": 60}
)


def linked(rows: list[tuple[str, str, int | None, int]], **columns: list[object]) -> pd.DataFrame:
    frame = products(rows)
    for name, values in columns.items():
        frame[name] = pd.array(values, dtype="Float64" if name == "size" else "string")
    return frame


def cycle(frame: pd.DataFrame, elasticity: dict[str, float], rules: RulesConfig, **kwargs: object) -> PricePlan:
    return run_pricing_cycle(frame, FakeDemand(elasticity), rules, store="S1", model_name="m", now=NOW, **kwargs)


def test_a_family_shares_one_price() -> None:
    # alone: a -> 2.99 (optimum 3.00), b -> 1.29 (optimum 1.33); together one price between
    frame = linked([("a", "dairy", 100, 249), ("b", "dairy", 100, 249)], family=["F", "F"])
    plan = cycle(frame, {"a": 1.5, "b": 4.0}, LOOSE)
    a, b = plan.lines
    assert a.new_cents == b.new_cents and 129 < a.new_cents < 299
    assert a.group == b.group == "family F"
    assert a.binding_rule == "family" and "priced with its group (family F)" in a.explanation


def test_a_ladder_holds_total_and_unit_price() -> None:
    # alone the larger pack (e=4) would be cheaper than the smaller (e=1.5)
    frame = linked(
        [("s", "dairy", 100, 249), ("l", "dairy", 100, 249)], ladder=["L", "L"], size=[1.0, 2.0], unit=["l", "l"]
    )
    plan = cycle(frame, {"s": 1.5, "l": 4.0}, LOOSE)
    small, large = plan.lines
    assert large.new_cents > small.new_cents
    assert large.new_cents * 1 < small.new_cents * 2
    assert small.group == large.group == "ladder L"


def test_a_private_label_stays_the_tier_gap_below_its_reference() -> None:
    frame = linked([("own", "dairy", 100, 249), ("nat", "dairy", 100, 249)], tier=["nat", None])
    plan = cycle(frame, {"own": 1.5, "nat": 4.0}, LOOSE)
    own, nat = plan.lines
    assert own.new_cents * 100 <= nat.new_cents * 90  # the default gap: 10 %
    assert own.group == "tier below nat" and nat.group == "tier above own"


def test_conflicting_group_is_held_or_relaxed() -> None:
    # within 10 % of today, the larger pack (2.00) cannot cost more than the smaller (5.00)
    frame = linked(
        [("s", "dairy", 100, 499), ("l", "dairy", 100, 199)], ladder=["L", "L"], size=[1.0, 2.0], unit=["l", "l"]
    )
    base = {"default": {"margin_floor_pct": 0, "max_change_pct": 10, "endings": [".x9"]}}
    held = cycle(frame, {"s": 2.0, "l": 2.0}, RulesConfig.model_validate({**base, "on_conflict": "hold"}))
    for line in held.lines:
        assert line.status == "held" and line.new_cents == line.old_cents
        assert line.explanation == "ladder L: the group's hard rules conflict: held at current price (on_conflict: hold)"
    relaxed = cycle(frame, {"s": 2.0, "l": 2.0}, RulesConfig.model_validate(base))
    for line in relaxed.lines:
        assert line.status != "held" and line.relaxed_rules == ["ladder"]


def test_family_without_a_shared_price_is_held_when_told_to_hold() -> None:
    frame = linked([("a", "dairy", 10, 99), ("b", "dairy", 10, 499)], family=["F", "F"])
    rules = {"default": {"margin_floor_pct": 0, "max_change_pct": 10, "endings": [".x9"]}}
    held = cycle(frame, {"a": 2.0, "b": 2.0}, RulesConfig.model_validate({**rules, "on_conflict": "hold"}))
    assert [line.explanation for line in held.lines] == ["family F: the members' rules share no allowed price: held"] * 2
    relaxed = cycle(frame, {"a": 2.0, "b": 2.0}, RulesConfig.model_validate(rules))
    assert [line.relaxed_rules for line in relaxed.lines] == [["family"], ["family"]]


def test_change_budget_goes_to_the_biggest_gain() -> None:
    rules = LOOSE.model_copy(update={"change_budget": ChangeBudget(max_changes=1)})
    frame = products([("a", "dairy", 100, 249), ("b", "dairy", 100, 249), ("c", "dairy", 100, 249)])
    free = cycle(frame, {"a": 1.5, "b": 1.8, "c": 4.0}, LOOSE)
    assert [line.status for line in free.lines] == ["change", "change", "change"]
    gains = {line.sku: line.profit_new_cents - line.profit_old_cents for line in free.lines}
    plan = cycle(frame, {"a": 1.5, "b": 1.8, "c": 4.0}, rules)
    assert [line.sku for line in plan.lines if line.status == "change"] == [max(gains, key=gains.get)] == ["c"]
    assert plan.solver.changes == 1 and plan.solver.budget_price_cents > 0 and not plan.solver.budget_relaxed
    for line in plan.lines[:2]:
        assert line.status == "keep" and line.binding_rule == "change_budget"
        assert "change budget" in line.explanation


def test_change_budget_as_a_share() -> None:
    rules = LOOSE.model_copy(update={"change_budget": ChangeBudget(max_share_pct=Decimal(50))})
    frame = products([(s, "dairy", 100, 249) for s in ("a", "b", "c", "d")])
    plan = cycle(frame, {"a": 1.5, "b": 1.8, "c": 4.0, "d": 3.0}, rules)
    assert plan.solver.changes == 2  # 50 % of 4 priced SKUs


def test_hard_budget_is_relaxed_when_the_rules_force_more_changes() -> None:
    # today's prices end in .50, which the endings forbid (endings_force_change): every SKU must change
    rules = LOOSE.model_copy(update={"change_budget": ChangeBudget(max_changes=1), "endings_force_change": True})
    frame = products([(s, "dairy", 100, 250) for s in ("a", "b", "c")])
    plan = cycle(frame, {"a": 1.5, "b": 1.8, "c": 4.0}, rules)
    assert plan.solver.budget_relaxed and plan.solver.changes == 3
    assert "change budget relaxed: the rules force 3 changes, more than the 1 allowed" in plan.notes


def test_approval_band_holds_big_changes_for_approval() -> None:
    rules = LOOSE.model_copy(update={"approval": ApprovalBand(max_change_pct=Decimal(10))})
    frame = products([("small", "dairy", 100, 209), ("big", "dairy", 100, 249)])
    plan = cycle(frame, {"small": 2.0, "big": 4.0}, rules)
    small, big = plan.lines
    assert small.status == "change" and small.new_cents == 199  # optimum 2.00; -4.8 %
    assert big.status == "approval" and "needs approval" in big.explanation
    assert plan.proposed_prices()["big"] == big.new_cents and "big" not in plan.new_prices()


def test_objective_per_category() -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {"margin_floor_pct": 0, "max_change_pct": 50, "endings": [".x9"]},
            "categories": {
                "rev": {"objective": {"maximize": "revenue"}},
                "mix": {"objective": {"maximize": "mix", "revenue_weight": "0.5"}},
            },
            "max_candidates": 60,
        }
    )
    frame = products([("p", "dairy", 100, 249), ("r", "rev", 100, 249), ("m", "mix", 100, 249)])
    plan = cycle(frame, {"p": 1.5, "r": 1.5, "m": 1.5}, rules)
    profit, revenue, mix = plan.lines
    assert profit.new_cents == 299  # the profit optimum 3.00
    assert revenue.new_cents == 129  # revenue p^(1 - e) falls with the price: the lowest allowed (>= 1.245)
    assert revenue.new_cents < mix.new_cents < profit.new_cents


def test_drift_guard_keeps_prices_near_today() -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {
                "margin_floor_pct": 0, "max_change_pct": 50, "endings": [".x9"],
                "objective": {"drift_penalty_pct": 50},
            },
            "max_candidates": 60,
        }
    )
    frame = products([("a", "dairy", 100, 249)])
    assert cycle(frame, {"a": 1.5}, LOOSE).lines[0].new_cents == 299
    (line,) = cycle(frame, {"a": 1.5}, rules).lines
    assert line.status == "keep" and line.new_cents == 249


@pytest.mark.parametrize(("penalty", "beyond"), [("0.01", True), ("1000.00", False)])
def test_soft_rule_is_broken_only_when_it_pays(penalty: str, beyond: bool) -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {
                "margin_floor_pct": 0, "max_change_abs": "2.00", "endings": [".x9"],
                "max_change_pct": {"value": 5, "hard": False, "penalty": penalty},
            },
            "max_candidates": 60,
        }
    )
    frame = products([("a", "dairy", 300, 399)])  # optimum 18.00, far above
    (line,) = cycle(frame, {"a": 1.2}, rules).lines
    if beyond:
        assert line.new_cents == 599 and line.soft_rules_broken == ["max_change_pct"]
        assert line.binding_rule == "max_change_abs"
    else:
        assert line.new_cents == 409 and line.soft_rules_broken == []  # the highest .x9 within +5 %
    assert line.relaxed_rules == []


def test_competitor_band_on_known_prices() -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {
                "margin_floor_pct": 0, "max_change_pct": 50, "endings": [".x9"],
                "competitor_index": {"min_pct": 90, "max_pct": 105},
            },
            "max_candidates": 60,
        }
    )
    frame = products([("a", "dairy", 100, 249), ("b", "dairy", 100, 249)])
    plan = cycle(frame, {"a": 1.5, "b": 1.5}, rules, competitor=pd.Series({"a": 250}))
    a, b = plan.lines
    assert a.new_cents == 259 and a.binding_rule == "competitor_index"  # <= 105 % of 2.50
    assert b.new_cents == 299  # no competitor price known: the profit optimum


def test_cycle_on_a_loaded_products_file(tmp_path: Path) -> None:
    """The loader's frame (string dtypes, Int64 cost, index = file line numbers) prices the same."""
    from pricing.core.data import load_products

    path = tmp_path / "products.csv"
    path.write_text(
        "sku,name,category,brand,size,unit,cost_cents,price_cents\n"
        "0123,Milk,dairy,B,1,l,100,199\n"
        "0002,Bread,bakery,B,1,pc,,299\n"
        "x,Broken,dairy,B,1,l,1,abc\n"
        "0003,Wine,wine,B,1,l,500,995\n"
    )
    loaded = load_products(path)
    assert list(loaded.frame.index) == [2, 3, 5]
    plan = run_pricing_cycle(
        loaded.frame, FakeDemand({"0123": 2.0, "0002": 2.0, "0003": 3.0}), RULES, store="S1", model_name="m", now=NOW
    )
    assert [(line.sku, line.status, line.new_cents) for line in plan.lines] == [
        ("0123", "keep", 199), ("0002", "held", 299), ("0003", "change", 795),
    ]


# -- random catalogues ---------------------------------------------------------------------


@st.composite
def catalogues(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[str, float]]:
    n = draw(st.integers(min_value=1, max_value=6))
    rows, elasticity = [], {}
    for i in range(n):
        sku = f"{i:04d}"
        category = draw(st.sampled_from(["dairy", "wine"]))
        current = draw(st.integers(min_value=1, max_value=40)) * 100 + (95 if category == "wine" else 9)
        cost = draw(st.one_of(st.none(), st.integers(min_value=1, max_value=int(current / 1.4))))
        rows.append((sku, category, cost, current))
        if draw(st.integers(min_value=0, max_value=5)) > 0:  # some SKUs unknown to the model
            elasticity[sku] = draw(st.floats(min_value=1.05, max_value=6.0))
    return products(rows), elasticity


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalogues())
def test_random_cycles_obey_rules_and_never_lose_profit(case: tuple[pd.DataFrame, dict[str, float]]) -> None:
    frame, elasticity = case
    plan = run_pricing_cycle(frame, FakeDemand(elasticity), RULES, store="S1", model_name="m", now=NOW)
    assert [line.sku for line in plan.lines] == frame["sku"].tolist()
    for line, cost in zip(plan.lines, frame["cost_cents"]):
        if pd.isna(cost) or line.sku not in elasticity:
            assert line.status == "held" and line.new_cents == line.old_cents
            continue
        # every current price ends in an allowed ending and sits above the floor: nothing conflicts
        assert line.status != "held", line.explanation
        assert line.relaxed_rules == [] and line.soft_rules_broken == []
        resolved_ok(line, RULES)
        # the current price ends in an allowed ending and is above the floor, so it was a candidate
        assert line.profit_new_cents >= line.profit_old_cents - 1e-3
        e = elasticity[line.sku]
        if line.binding_rule == "profit_optimum":
            continue
        # a binding rule points the way the true (unimodal) optimum lies
        if "capped at" in line.explanation:
            assert line.binding_rule in ("max_price", "max_change_pct")
            assert optimum(int(cost), e) > line.new_cents
        else:
            assert "held up at" in line.explanation
            assert line.binding_rule in ("min_price", "margin_floor_pct", "max_change_pct")
            assert optimum(int(cost), e) < line.new_cents
    old, new = plan.expected_profit()
    assert new >= old - 1e-2


# -- plan files -----------------------------------------------------------------------------


def test_plan_write_read_round_trip(plan: PricePlan, tmp_path: Path) -> None:
    json_path, csv_path = plan.write(tmp_path / "plans")
    assert json_path.name == f"{plan.plan_id}.json" and csv_path.name == f"{plan.plan_id}.csv"
    assert PricePlan.read(json_path) == plan
    record = json.loads(json_path.read_text())
    assert record["lines"][5]["sku"] == "0123"

    with csv_path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == CSV_COLUMNS
    body = [dict(zip(CSV_COLUMNS, row)) for row in rows[1:]]
    assert [row["sku"] for row in body] == [line.sku for line in plan.lines]
    assert "0123" in csv_path.read_text()  # leading zeros as written, not 123
    by_sku = {row["sku"]: row for row in body}
    kept = by_sku["0001"]
    assert kept["old_price"] == "1.99" and kept["new_price"] == "1.99" and kept["cost"] == "1.00"
    assert kept["change_pct"] == "0.00"
    capped = by_sku["0002"]
    assert capped["old_price"] == "3.99" and capped["new_price"] == "4.69"
    assert capped["binding_rule"] == "max_change_pct"
    held = by_sku["0004"]
    assert held["cost"] == "" and held["units_new"] == "" and held["profit_new"] == ""
    for row in body:
        for col in ("old_price", "new_price", "cost", "profit_old", "profit_new"):
            if row[col]:
                assert Decimal(row[col]).as_tuple().exponent == -2, f"{col}={row[col]!r} is not decimal money text"
                assert "e" not in row[col].lower()
    line = line_of(plan, "0002")
    assert Decimal(capped["profit_new"]) == (Decimal(round(line.profit_new_cents)) / 100)


def test_a_group_with_one_change_needing_approval_waits_as_a_whole() -> None:
    from pricing.plan.explain import _groups_wait_together
    from pricing.plan.price_plan import PlanLine

    def line(sku: str, status: str, group: str | None) -> PlanLine:
        return PlanLine(
            sku=sku, name=sku, category="c", status=status, old_cents=100, new_cents=120,  # type: ignore[arg-type]
            cost_cents=50, units_old=1.0, units_new=1.0, profit_old_cents=1.0, profit_new_cents=2.0,
            binding_rule="r", explanation="why", group=group,
        )

    lines = [line("a", "change", "ladder:L"), line("b", "approval", "ladder:L"), line("c", "change", None),
             line("d", "change", "family:F")]
    out = _groups_wait_together(lines)
    assert [x.status for x in out] == ["approval", "approval", "change", "change"]
    assert out[0].explanation.endswith("waits with its group ladder:L")


# -- rules read from a file: recorded in the plan, their scopes checked (issue 18) ----------------------
def test_rules_from_a_file_are_recorded_and_their_scopes_checked(tmp_path: Path) -> None:
    import hashlib

    from pricing.core.yaml_config import ConfigError
    from pricing.rules.config import load_rules

    frame = products([("0001", "dairy", 100, 199), ("0002", "bakery", 100, 199)])
    model = FakeDemand({"0001": 2.0, "0002": 2.0})
    good = tmp_path / "rules.yaml"
    good.write_text("categories:\n  dairy:\n    max_change_pct: 5\nskus:\n  \"0002\":\n    margin_floor_pct: 2\n")
    plan = run_pricing_cycle(frame, model, load_rules(good), store="S1", model_name="m", now=NOW)
    assert plan.inputs is not None and plan.inputs.rules is not None  # the daemon's plans too: no argument needed
    assert plan.inputs.rules.path == str(good.resolve())
    assert plan.inputs.rules.sha256 == hashlib.sha256(good.read_bytes()).hexdigest()

    bad = tmp_path / "bad.yaml"
    bad.write_text("categories:\n  dairy:\n    max_change_pct: 5\n  snakcs:\n    margin_floor_pct: 18\n"
                   "brands:\n  Nobody:\n    min_price: \"1.49\"\n")
    with pytest.raises(ConfigError) as info:
        run_pricing_cycle(frame, model, load_rules(bad), store="S1", model_name="m", now=NOW)
    assert info.value.problems == [
        f"{bad}:4: categories.snakcs: no product has this category (the products' categories: bakery, dairy)",
        f"{bad}:7: brands.Nobody: no product has this brand (the products have no brand column or values)",
    ]
    # Only where the products are a generated store the rules were not written for (evaluate):
    assert run_pricing_cycle(frame, model, load_rules(bad), store="S1", model_name="m", now=NOW, check_scopes=False)


def test_rules_built_in_code_record_no_file() -> None:
    frame = products([("0001", "dairy", 100, 199)])
    plan = run_pricing_cycle(frame, FakeDemand({"0001": 2.0}), RULES, store="S1", model_name="m", now=NOW)
    assert plan.inputs is not None and plan.inputs.rules is None and plan.inputs.data == []
