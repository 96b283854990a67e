"""pricing.rules.config: how scopes resolve (default -> category -> brand -> SKU, attribute by attribute),
the defaults of priorities and penalties, price points, objectives, budgets and approval bands."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from pricing.rules.config import (
    BUILTIN_DEFAULTS,
    DEFAULT_PENALTY,
    DEFAULT_PRIORITY,
    RULE_NAMES,
    ChangeBudget,
    CompetitorBand,
    Enforcement,
    RulesConfig,
)


def config(data: dict[str, Any]) -> RulesConfig:
    return RulesConfig.model_validate(data)


# -- defaults ---------------------------------------------------------------------------------


def test_builtin_defaults_when_nothing_is_configured() -> None:
    r = RulesConfig().resolve("any")
    assert r.margin_floor_pct == Decimal(5)
    assert r.min_price_cents == 10 and r.max_price_cents == 999_999
    assert r.max_change_pct == Decimal(10) and r.max_change_abs_cents is None
    assert r.uncertain_max_change_pct == Decimal(3)
    assert r.endings == (".99", ".49") and r.price_points_cents is None
    assert r.family is True and r.ladder is True
    assert r.tier_gap_pct == Decimal(10)
    assert r.competitor_band is None
    assert (r.maximize, r.revenue_weight, r.drift_penalty_pct) == ("profit", Decimal("0.5"), Decimal(0))
    assert set(r.enforcement) == set(RULE_NAMES)
    for name in RULE_NAMES:
        assert r.enforcement[name] == Enforcement(hard=True, priority=DEFAULT_PRIORITY[name], penalty_cents=100)
        assert r.hard(name)
    assert DEFAULT_PENALTY == Decimal("1.00")


def test_default_priorities_relax_the_least_important_first() -> None:
    # The margin floor (the safety rule) is kept longest; the budget and competitor index go first.
    p = DEFAULT_PRIORITY
    assert p["margin_floor_pct"] > p["min_price"] == p["max_price"] > p["max_change_pct"] == p["max_change_abs"]
    assert p["max_change_abs"] > p["uncertain_max_change_pct"] > p["endings"] == p["price_points"]
    assert p["price_points"] > p["family"] > p["ladder"] > p["tier"] > p["competitor_index"] > p["change_budget"]
    assert set(p) == set(RULE_NAMES) | {"change_budget"}
    assert set(BUILTIN_DEFAULTS) == set(RULE_NAMES)


# -- scopes -----------------------------------------------------------------------------------


SCOPED = {
    "default": {"margin_floor_pct": 10, "max_change_pct": 10, "endings": [".99"]},
    "categories": {"dairy": {"margin_floor_pct": 20, "max_change_pct": 5}},
    "brands": {"Acme": {"margin_floor_pct": 30, "endings": [".49"]}},
    "skus": {"0042": {"margin_floor_pct": 40}},
}


@pytest.mark.parametrize(
    ("category", "brand", "sku", "floor", "change", "endings"),
    [
        ("bakery", None, None, 10, 10, (".99",)),  # default only
        ("dairy", None, None, 20, 5, (".99",)),  # category over default
        ("dairy", "Acme", None, 30, 5, (".49",)),  # brand over category; change still the category's
        ("bakery", "Acme", None, 30, 10, (".49",)),  # brand without a category override
        ("dairy", "Acme", "0042", 40, 5, (".49",)),  # SKU over all
        ("bakery", None, "0042", 40, 10, (".99",)),
        ("dairy", "Other", "0099", 20, 5, (".99",)),  # unknown brand and SKU: ignored
        (None, None, None, 10, 10, (".99",)),
    ],
)
def test_most_specific_scope_wins(
    category: str | None, brand: str | None, sku: str | None, floor: int, change: int, endings: tuple[str, ...]
) -> None:
    r = config(SCOPED).resolve(category, brand, sku)
    assert r.margin_floor_pct == Decimal(floor)
    assert r.max_change_pct == Decimal(change)
    assert r.endings == endings


def test_scopes_chain_widest_first() -> None:
    c = config(SCOPED)
    assert c.scopes("dairy", "Acme", "0042") == [c.default, c.categories["dairy"], c.brands["Acme"], c.skus["0042"]]
    assert c.scopes("bakery", "Nope", None) == [c.default]


def test_a_brand_making_the_floor_soft_keeps_the_categorys_value() -> None:
    c = config(
        {
            "default": {"margin_floor_pct": 10},
            "categories": {"dairy": {"margin_floor_pct": {"value": 20, "priority": 150}}},
            "brands": {"Acme": {"margin_floor_pct": {"hard": False, "penalty": "0.25"}}},
        }
    )
    r = c.resolve("dairy", "Acme")
    assert r.margin_floor_pct == Decimal(20)  # the category's value
    assert r.enforcement["margin_floor_pct"] == Enforcement(hard=False, priority=150, penalty_cents=25)
    assert not r.hard("margin_floor_pct")
    # other brands of the category keep the hard floor, other categories the default
    assert c.resolve("dairy", "Other").enforcement["margin_floor_pct"] == Enforcement(True, 150, 100)
    other = c.resolve("bakery", "Acme")
    assert other.margin_floor_pct == Decimal(10)
    assert other.enforcement["margin_floor_pct"] == Enforcement(False, DEFAULT_PRIORITY["margin_floor_pct"], 25)


def test_a_sku_can_make_a_soft_rule_hard_again() -> None:
    c = config(
        {
            "default": {"max_change_pct": {"value": 10, "hard": False, "penalty": "3.00"}},
            "skus": {"7": {"max_change_pct": {"hard": True}}},
        }
    )
    assert not c.resolve("x").hard("max_change_pct")
    r = c.resolve("x", None, "7")
    assert r.hard("max_change_pct") and r.max_change_pct == Decimal(10)
    assert r.enforcement["max_change_pct"].penalty_cents == 300  # kept, unused while hard


def test_bare_value_and_mapping_forms_are_the_same_rule() -> None:
    bare = config({"default": {"margin_floor_pct": 12, "endings": [".95"]}}).resolve("x")
    mapped = config(
        {"default": {"margin_floor_pct": {"value": 12}, "endings": {"value": [".95"], "hard": True}}}
    ).resolve("x")
    assert bare == mapped


def test_setting_attributes_not_given_come_from_wider_scopes() -> None:
    c = config(
        {
            "default": {"endings": {"value": [".99"], "priority": 5, "penalty": "0.10", "hard": False}},
            "categories": {"c": {"endings": [".49"]}},
        }
    )
    r = c.resolve("c")
    assert r.endings == (".49",)
    assert r.enforcement["endings"] == Enforcement(hard=False, priority=5, penalty_cents=10)


def test_priority_and_penalty_per_rule() -> None:
    c = config({"default": {"min_price": {"value": "0.50", "priority": 0, "penalty": "12.34"}}})
    e = c.resolve("x").enforcement["min_price"]
    assert e == Enforcement(hard=True, priority=0, penalty_cents=1234)
    assert c.resolve("x").min_price_cents == 50


def test_money_becomes_cents_exactly() -> None:
    r = config({"default": {"min_price": "0.19", "max_price": "999.99", "max_change_abs": "0.30"}}).resolve("x")
    assert (r.min_price_cents, r.max_price_cents, r.max_change_abs_cents) == (19, 99_999, 30)


# -- price points, switches, bands --------------------------------------------------------------


def test_price_points_sorted_unique_cents_and_inherited() -> None:
    c = config(
        {
            "default": {"endings": [".99"]},
            "categories": {"snacks": {"price_points": ["1.49", "0.99", "1.49", "2.00"]}},
        }
    )
    r = c.resolve("snacks")
    assert r.price_points_cents == (99, 149, 200)
    assert r.endings == (".99",)  # still resolved; the price points take precedence in the candidates
    assert c.resolve("dairy").price_points_cents is None
    assert c.resolve("snacks", "Any", "1").price_points_cents == (99, 149, 200)


def test_family_and_ladder_switches_and_tier_gap() -> None:
    c = config(
        {
            "default": {"family": False, "tier": "12.5"},
            "brands": {"Own": {"family": True, "ladder": {"value": False, "priority": 1}}},
        }
    )
    assert c.resolve("x").family is False and c.resolve("x").ladder is True
    own = c.resolve("x", "Own")
    assert own.family is True and own.ladder is False and own.enforcement["ladder"].priority == 1
    assert own.tier_gap_pct == Decimal("12.5")


def test_competitor_band_bare_and_mapping() -> None:
    bare = config({"default": {"competitor_index": {"min_pct": 95, "max_pct": 110}}}).resolve("x")
    assert bare.competitor_band == CompetitorBand(min_pct=Decimal(95), max_pct=Decimal(110))
    assert bare.hard("competitor_index")
    mapped = config(
        {"default": {"competitor_index": {"value": {"min_pct": 90, "max_pct": 105}, "hard": False}}}
    ).resolve("x")
    assert mapped.competitor_band == CompetitorBand(min_pct=Decimal(90), max_pct=Decimal(105))
    assert not mapped.hard("competitor_index")


def test_competitor_band_min_above_max_is_refused() -> None:
    with pytest.raises(ValidationError, match="min_pct 110 is greater than max_pct 95"):
        config({"default": {"competitor_index": {"min_pct": 110, "max_pct": 95}}})


def test_a_mistyped_setting_key_is_an_unknown_key_not_a_value() -> None:
    with pytest.raises(ValidationError) as info:
        config({"default": {"endings": {"value": [".99"], "hardd": False}}})
    (error,) = info.value.errors()
    assert error["type"] == "extra_forbidden" and error["loc"] == ("default", "endings", "hardd")
    with pytest.raises(ValidationError) as info:
        config({"default": {"margin_floor_pct": {"valu": 10}}})
    (error,) = info.value.errors()
    assert error["type"] == "extra_forbidden" and error["loc"] == ("default", "margin_floor_pct", "valu")


# -- objective ----------------------------------------------------------------------------------


def test_objective_merges_field_by_field() -> None:
    c = config(
        {
            "default": {"objective": {"maximize": "mix", "revenue_weight": "0.3"}},
            "categories": {"dairy": {"objective": {"drift_penalty_pct": 2}}},
            "brands": {"Acme": {"objective": {"maximize": "revenue"}}},
            "skus": {"1": {"objective": {"maximize": "profit", "drift_penalty_pct": "0.5"}}},
        }
    )
    r = c.resolve("bakery")
    assert (r.maximize, r.revenue_weight, r.drift_penalty_pct) == ("mix", Decimal("0.3"), Decimal(0))
    r = c.resolve("dairy")
    assert (r.maximize, r.revenue_weight, r.drift_penalty_pct) == ("mix", Decimal("0.3"), Decimal(2))
    r = c.resolve("dairy", "Acme")
    assert (r.maximize, r.revenue_weight, r.drift_penalty_pct) == ("revenue", Decimal("0.3"), Decimal(2))
    r = c.resolve("dairy", "Acme", "1")
    assert (r.maximize, r.revenue_weight, r.drift_penalty_pct) == ("profit", Decimal("0.3"), Decimal("0.5"))


def test_objective_values_are_checked() -> None:
    with pytest.raises(ValidationError):
        config({"default": {"objective": {"maximize": "margin"}}})
    with pytest.raises(ValidationError):
        config({"default": {"objective": {"revenue_weight": "1.5"}}})
    with pytest.raises(ValidationError):
        config({"default": {"objective": {"drift_penalty_pct": -1}}})


# -- validation of values -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rules",
    [
        {"min_price": "5.00", "max_price": "1.00"},
        {"min_price": {"value": "5.00", "hard": False}, "max_price": "1.00"},
        {"endings": [".99", ".99"]},
        {"endings": []},
        {"endings": [".9"]},
        {"price_points": []},
        {"price_points": ["0.001"]},
        {"max_change_pct": 0},
        {"tier": 100},
        {"margin_floor_pct": {"value": 10, "priority": 1001}},
        {"margin_floor_pct": {"value": 10, "penalty": "0"}},
        {"family": "sometimes"},
    ],
)
def test_invalid_rule_values_are_refused(rules: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        config({"default": rules})


@pytest.mark.parametrize("table", ["categories", "brands", "skus"])
def test_min_above_max_once_merged_is_refused_in_every_scope(table: str) -> None:
    with pytest.raises(ValidationError, match="min_price 20.00 is greater than max_price 10.00 once merged"):
        config({"default": {"max_price": "10.00"}, table: {"k": {"min_price": "20.00"}}})


# -- change budget and approval band ------------------------------------------------------------


def test_change_budget_limit() -> None:
    assert ChangeBudget(max_changes=7).limit(1000) == 7
    assert ChangeBudget(max_share_pct=Decimal(10)).limit(95) == 9  # rounded down
    assert ChangeBudget(max_share_pct=Decimal(100)).limit(3) == 3
    budget = ChangeBudget(max_changes=0)
    assert budget.hard and budget.priority == DEFAULT_PRIORITY["change_budget"] and budget.penalty is None


@pytest.mark.parametrize("data", [{}, {"max_changes": 1, "max_share_pct": 5}, {"max_changes": -1}, {"max_share_pct": 101}])
def test_change_budget_needs_exactly_one_valid_limit(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ChangeBudget.model_validate(data)


def test_approval_band_in_config() -> None:
    c = config({"approval": {"max_change_pct": 15, "max_change_abs": "2.00"}, "change_budget": {"max_changes": 3}})
    assert c.approval is not None and c.approval.max_change_pct == Decimal(15)
    assert c.approval.max_change_abs == Decimal("2.00")
    assert c.change_budget is not None and c.change_budget.limit(10) == 3


def test_on_conflict_defaults_to_relax() -> None:
    assert RulesConfig().on_conflict == "relax"
    assert config({"on_conflict": "hold"}).on_conflict == "hold"
    with pytest.raises(ValidationError):
        config({"on_conflict": "ignore"})
