"""pricing.plan.zone_cycle: one shelf price per SKU for a zone's stores, from the summed demand.

The zone's optimum is checked against real DemandModels fitted per store (simulator.market sales);
links and budgets with the constant-elasticity fake of test_cycle (units = level x (p/100)^-e),
whose optima are known.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pricing.core.yaml_config import ConfigError
from pricing.demand.model import DemandModel
from pricing.plan.cycle import run_pricing_cycle
from pricing.plan.zone_cycle import (
    changes_per_store,
    check_max_changes_per_store,
    run_zone_cycle,
    store_skus,
    zone_change_limit,
    zone_products,
)
from pricing.rules.config import ChangeBudget, RulesConfig, load_rules
from tests.pricing.demand.test_zone_demand import fit_store
from tests.pricing.plan.test_cycle import NOW, FakeDemand, linked, products

LOOSE = RulesConfig.model_validate(
    {"default": {"margin_floor_pct": 0, "max_change_pct": 100, "endings": [".x9"]}, "max_candidates": 80}
)
SKUS = ("0001", "0002", "0003")


@lru_cache(maxsize=1)
def sensitive_and_calm() -> tuple[DemandModel, DemandModel]:
    """Store s1: few shoppers, very price-sensitive (e about -4); s2: three times the traffic, calm (e about -1.5)."""
    ref = dict.fromkeys(SKUS, 2000)
    sensitive = fit_store({"0001": -4.0, "0002": -3.8, "0003": -4.2}, dict.fromkeys(SKUS, 10.0), ref, seed=3)
    calm = fit_store({"0001": -1.5, "0002": -1.4, "0003": -1.6}, dict.fromkeys(SKUS, 30.0), ref, seed=4)
    return sensitive, calm


def snacks() -> pd.DataFrame:
    return products([(sku, "snacks", 1000, 2000) for sku in SKUS])


def profit(models: list[DemandModel], sku: str, price: int, current: np.ndarray) -> float:
    """The zone's expected profit per day of one SKU at one price (cost 10.00), others at today's."""
    skus = np.array(SKUS, dtype=object)
    prices = current.astype(np.float64)[:, None].copy()
    prices[SKUS.index(sku), 0] = price
    units = sum(m.predict_grid(skus, prices, current_prices_cents=current)[SKUS.index(sku), 0] for m in models)
    return (price - 1000) * float(units)


def test_the_zone_price_lies_between_the_stores_own_optima() -> None:
    sensitive, calm = sensitive_and_calm()
    frame = snacks()
    own = {
        name: {line.sku: line.new_cents for line in run_pricing_cycle(
            frame, model, LOOSE, store=name, model_name="m", now=NOW).lines}
        for name, model in (("s1", sensitive), ("s2", calm))
    }
    plan = run_zone_cycle("north", {"s1": sensitive, "s2": calm}, frame, LOOSE, None, now=NOW)
    assert plan.store == "north" and len(plan.lines) == 3
    current = frame["price_cents"].to_numpy()
    for line in plan.lines:
        low, high = own["s1"][line.sku], own["s2"][line.sku]
        assert low < line.new_cents < high, (line.sku, low, line.new_cents, high)
        # ... and it is the better price for the zone as a whole than either store's own.
        zone_profit = profit([sensitive, calm], line.sku, line.new_cents, current)
        assert zone_profit > profit([sensitive, calm], line.sku, low, current)
        assert zone_profit > profit([sensitive, calm], line.sku, high, current)
        # The plan's expected units are the two stores' units at the zone price.
        assert line.units_new == pytest.approx(
            sum(m.predict_grid(np.array([line.sku], dtype=object), np.array([[line.new_cents]]),
                               current_prices_cents=current[:1])[0, 0] for m in (sensitive, calm)), rel=1e-6
        )


def test_a_weighted_store_pulls_the_zone_price_towards_its_own() -> None:
    sensitive, calm = sensitive_and_calm()
    frame = snacks()
    even = run_zone_cycle("north", {"s1": sensitive, "s2": calm}, frame, LOOSE, None, now=NOW).new_prices()
    calm_weighs_less = run_zone_cycle(
        "north", {"s1": sensitive, "s2": calm}, frame, LOOSE, None, now=NOW, weights={"s2": 0.2}
    ).new_prices()
    for sku in SKUS:
        assert calm_weighs_less[sku] < even[sku]


# -- rules, today's prices -------------------------------------------------------------------------


def test_the_zones_rules_apply_to_the_zone_and_categories_override_them() -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {"margin_floor_pct": 0, "max_change_pct": 50, "endings": [".x9"]},
            "zones": {"north": {"max_change_pct": 5}},
            "categories": {"dairy": {"max_change_pct": 30}},
            "max_candidates": 60,
        }
    )
    frame = products([("a", "snacks", 100, 249), ("b", "dairy", 100, 249)])
    stores = {"s1": FakeDemand({"a": 1.5, "b": 1.5}), "s2": FakeDemand({"a": 1.6, "b": 1.6})}  # optimum about 2.80+
    north = {line.sku: line for line in run_zone_cycle("north", stores, frame, rules, None, now=NOW).lines}
    south = {line.sku: line for line in run_zone_cycle("south", stores, frame, rules, None, now=NOW).lines}
    assert north["a"].new_cents <= 249 * 1.05 < south["a"].new_cents  # the zone's 5% for snacks
    assert north["b"].new_cents > 249 * 1.05 and north["b"].new_cents <= 249 * 1.30  # dairy's 30% over the zone's
    assert south["b"].new_cents <= 249 * 1.30


def test_the_zones_prices_are_todays_prices() -> None:
    frame = products([("a", "snacks", 100, 249), ("b", "snacks", 100, 249)])
    prices = pd.DataFrame({"zone": ["north", "south"], "sku": ["a", "a"], "price_cents": [229, 199]})
    stores = {"s1": FakeDemand({"a": 2.0, "b": 2.0})}
    lines = {line.sku: line for line in run_zone_cycle("north", stores, frame, LOOSE, prices, now=NOW).lines}
    assert lines["a"].old_cents == 229 and lines["b"].old_cents == 249
    assert zone_products(frame, "south", prices)["price_cents"].tolist() == [199, 249]
    assert frame["price_cents"].tolist() == [249, 249]  # the caller's frame is left alone


@pytest.mark.parametrize(
    ("prices", "message"),
    [
        (pd.DataFrame({"zone": ["n"], "sku": ["a"]}), "missing: price_cents"),
        (pd.DataFrame({"zone": ["n", "n"], "sku": ["a", "a"], "price_cents": [1, 2]}), "more than one price for SKUs a"),
        (pd.DataFrame({"zone": ["n"], "sku": ["a"], "price_cents": [2.5]}), "not whole positive cents for SKUs a"),
        (pd.DataFrame({"zone": ["n"], "sku": ["a"], "price_cents": [0]}), "not whole positive cents"),
    ],
)
def test_bad_zone_prices_are_refused(prices: pd.DataFrame, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        zone_products(products([("a", "snacks", 100, 249)]), "n", prices)


def test_products_must_list_each_sku_once() -> None:
    frame = products([("a", "snacks", 100, 249), ("a", "snacks", 100, 249)])
    with pytest.raises(ValueError, match="one row per SKU for a zone plan; repeated: a"):
        run_zone_cycle("n", {"s1": FakeDemand({"a": 2.0})}, frame, LOOSE, None, now=NOW)


def test_an_unknown_zone_in_the_rules_file_is_a_file_line_error(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("zones:\n  north:\n    max_change_pct: 5\n  sout:\n    max_change_pct: 8\n", encoding="utf-8")
    rules = load_rules(path)
    frame = products([("a", "snacks", 100, 249)])
    stores = {"s1": FakeDemand({"a": 2.0})}
    with pytest.raises(ConfigError) as info:
        run_zone_cycle("north", stores, frame, rules, None, now=NOW, zones=["north", "south"])
    assert info.value.problems == [
        f"{path}:4: zones.sout: no store is in this zone (the chain's zones: north, south); did you mean 'south'?"
    ]
    with pytest.raises(ValueError, match="zone east is not one of the chain's zones"):
        run_zone_cycle("east", stores, frame, rules, None, now=NOW, zones=["north", "east2"])
    # Without the chain's zones they are not checked; the plan records the rules file.
    plan = run_zone_cycle("north", stores, frame, rules, None, now=NOW)
    assert plan.inputs is not None and plan.inputs.rules is not None and plan.inputs.rules.path == str(path.resolve())


# -- families, ladders, budgets ------------------------------------------------------------------------


def test_families_and_ladders_hold_in_a_zone_plan() -> None:
    frame = linked(
        [("a", "dairy", 100, 249), ("b", "dairy", 100, 249), ("s", "dairy", 100, 249), ("l", "dairy", 100, 249)],
        family=["F", "F", None, None], ladder=[None, None, "L", "L"], size=[None, None, 1.0, 2.0],
        unit=[None, None, "l", "l"],
    )
    # Alone, a would rise and b fall; the large pack (e=4) would undercut the small one (e=1.5).
    stores = {
        "s1": FakeDemand({"a": 1.5, "b": 4.0, "s": 1.5, "l": 4.0}),
        "s2": FakeDemand({"a": 1.6, "b": 3.5, "s": 1.4}),  # s2 does not sell the large pack
    }
    plan = run_zone_cycle("north", stores, frame, LOOSE, None, now=NOW)
    lines = {line.sku: line for line in plan.lines}
    assert lines["a"].new_cents == lines["b"].new_cents and 129 < lines["a"].new_cents < 299
    assert lines["a"].group == lines["b"].group == "family F"
    assert lines["l"].new_cents > lines["s"].new_cents  # larger pack costs more in total
    assert lines["l"].new_cents * 1 < lines["s"].new_cents * 2  # ... and less per litre
    assert lines["s"].group == lines["l"].group == "ladder L"


def budget_case() -> tuple[pd.DataFrame, dict[str, FakeDemand]]:
    """Four SKUs that all want to move far (optimum 3.00 from 2.49); store s2 carries only two."""
    frame = products([(sku, "snacks", 100, 249) for sku in ("a", "b", "c", "d")])
    stores = {
        "s1": FakeDemand({"a": 1.5, "b": 1.5, "c": 1.5, "d": 1.5}),
        "s2": FakeDemand({"c": 1.5, "d": 1.5}),
    }
    return frame, stores


def with_budget(budget: dict[str, object]) -> RulesConfig:
    return LOOSE.model_copy(update={"change_budget": ChangeBudget.model_validate(budget)})


def test_without_a_budget_every_sku_moves() -> None:
    frame, stores = budget_case()
    plan = run_zone_cycle("north", stores, frame, LOOSE, None, now=NOW)
    assert plan.solver.changes == 4
    assert changes_per_store(plan, store_skus(stores, frame)) == {"s1": 4, "s2": 2}


def test_a_max_changes_budget_holds_for_the_zone_and_every_store() -> None:
    frame, stores = budget_case()
    rules = with_budget({"max_changes": 2})
    plan = run_zone_cycle("north", stores, frame, rules, None, now=NOW)
    carried = store_skus(stores, frame)
    assert plan.solver.changes == 2 and len(plan.proposed_prices()) == 2
    assert all(count <= 2 for count in changes_per_store(plan, carried).values())
    assert check_max_changes_per_store(plan, rules, carried) == []


def test_a_share_budget_is_each_stores_share_of_the_skus_it_carries() -> None:
    frame, stores = budget_case()
    rules = with_budget({"max_share_pct": 50})
    carried = store_skus(stores, frame)
    assert carried == {"s1": {"a", "b", "c", "d"}, "s2": {"c", "d"}}
    assert zone_change_limit(rules, carried) == 1  # s1: 50% of 4 = 2, s2: 50% of 2 = 1
    plan = run_zone_cycle("north", stores, frame, rules, None, now=NOW)
    counts = changes_per_store(plan, carried)
    assert plan.solver.changes == 1 and counts["s1"] == 1 and counts["s2"] <= 1
    assert check_max_changes_per_store(plan, rules, carried) == []
    assert not any("over its change budget" in note for note in plan.notes)


def test_a_soft_budget_broken_in_a_store_is_named_in_the_notes() -> None:
    frame, stores = budget_case()
    rules = with_budget({"max_share_pct": 50, "hard": False, "penalty": Decimal("0.01")})
    plan = run_zone_cycle("north", stores, frame, rules, None, now=NOW)
    carried = store_skus(stores, frame)
    assert plan.solver.changes == 4  # a cent a day per extra change is worth paying
    problems = check_max_changes_per_store(plan, rules, carried)
    assert problems == ["store s1: 4 changes, over its change budget of 2", "store s2: 2 changes, over its change budget of 1"]
    assert [note for note in plan.notes if "over its change budget" in note] == problems
