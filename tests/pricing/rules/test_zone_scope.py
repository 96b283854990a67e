"""pricing.rules.config, the ``zones:`` scope: default < zones[zone] < categories < brands < skus,
attribute by attribute; no zone = exactly as before; a zone the chain does not have is a FILE:LINE error."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricing.core.yaml_config import ConfigError
from pricing.rules.config import Enforcement, RulesConfig, load_rules

SCOPED = {
    "default": {"margin_floor_pct": 10, "max_change_pct": 10, "endings": [".99"]},
    "zones": {"north": {"margin_floor_pct": 15, "max_change_pct": 20, "endings": [".49"]}},
    "categories": {"dairy": {"margin_floor_pct": 20}},
    "brands": {"Acme": {"margin_floor_pct": 30, "endings": [".95"]}},
    "skus": {"0042": {"margin_floor_pct": 40}},
}


def config(data: dict[str, Any]) -> RulesConfig:
    return RulesConfig.model_validate(data)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("zone", "category", "brand", "sku", "floor", "change", "endings"),
    [
        (None, "bakery", None, None, 10, 10, (".99",)),  # no zone: the zones section is not there
        ("north", "bakery", None, None, 15, 20, (".49",)),  # zone over default
        ("south", "bakery", None, None, 10, 10, (".99",)),  # a zone without overrides: the defaults
        ("north", "dairy", None, None, 20, 20, (".49",)),  # category over zone; change still the zone's
        ("north", "dairy", "Acme", None, 30, 20, (".95",)),  # brand over category and zone
        ("north", "bakery", None, "0042", 40, 20, (".49",)),  # SKU over all
        (None, "dairy", "Acme", "0042", 40, 10, (".95",)),
    ],
)
def test_zone_sits_between_default_and_category(
    zone: str | None, category: str, brand: str | None, sku: str | None, floor: int, change: int, endings: tuple[str, ...]
) -> None:
    r = config(SCOPED).resolve(category, brand, sku, zone=zone)
    assert (r.margin_floor_pct, r.max_change_pct, r.endings) == (Decimal(floor), Decimal(change), endings)


def test_scopes_chain_puts_the_zone_after_the_defaults() -> None:
    c = config(SCOPED)
    assert c.scopes("dairy", "Acme", "0042", zone="north") == [
        c.default, c.zones["north"], c.categories["dairy"], c.brands["Acme"], c.skus["0042"]
    ]
    assert c.scopes("dairy", zone="south") == [c.default, c.categories["dairy"]]
    assert c.scopes("dairy") == [c.default, c.categories["dairy"]]


def test_a_zone_makes_a_rule_soft_and_a_category_keeps_that_with_its_own_value() -> None:
    c = config(
        {
            "default": {"margin_floor_pct": 10},
            "zones": {"city": {"margin_floor_pct": {"hard": False, "penalty": "0.25"}}},
            "categories": {"dairy": {"margin_floor_pct": 20}},
        }
    )
    soft = c.resolve("bakery", zone="city")
    assert soft.margin_floor_pct == Decimal(10)
    assert soft.enforcement["margin_floor_pct"] == Enforcement(hard=False, priority=100, penalty_cents=25)
    dairy = c.resolve("dairy", zone="city")
    assert dairy.margin_floor_pct == Decimal(20) and not dairy.hard("margin_floor_pct")
    assert c.resolve("dairy").hard("margin_floor_pct")  # no zone: hard as the default says


def test_objective_merges_field_by_field_through_the_zone() -> None:
    c = config(
        {
            "default": {"objective": {"maximize": "mix", "revenue_weight": "0.2"}},
            "zones": {"north": {"objective": {"revenue_weight": "0.6"}}},
            "categories": {"dairy": {"objective": {"drift_penalty_pct": 3}}},
        }
    )
    r = c.resolve("dairy", zone="north")
    assert (r.maximize, r.revenue_weight, r.drift_penalty_pct) == ("mix", Decimal("0.6"), Decimal(3))
    assert c.for_zone("north").resolve("dairy") == r
    assert c.resolve("dairy").revenue_weight == Decimal("0.2")


# -- properties: precedence, for_zone, and "no zone = today" ------------------------------------------

FLOOR = st.one_of(st.none(), st.integers(0, 60))
HARD = st.one_of(st.none(), st.booleans())


def _scope(floor: int | None, hard: bool | None, change: int | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if floor is not None or hard is not None:
        out["margin_floor_pct"] = {key: value for key, value in (("value", floor), ("hard", hard)) if value is not None}
    if change is not None:
        out["max_change_pct"] = change
    return out


@settings(max_examples=150, deadline=None)
@given(
    floors=st.tuples(FLOOR, FLOOR, FLOOR, FLOOR, FLOOR),
    hards=st.tuples(HARD, HARD, HARD, HARD, HARD),
    changes=st.tuples(*[st.one_of(st.none(), st.integers(1, 100))] * 5),
    zone=st.sampled_from([None, "z1", "z2"]),
    category=st.sampled_from(["c1", "c2"]),
    brand=st.sampled_from([None, "b1"]),
    sku=st.sampled_from([None, "s1"]),
)
def test_most_specific_scope_wins_attribute_by_attribute(
    floors: tuple[int | None, ...], hards: tuple[bool | None, ...], changes: tuple[int | None, ...],
    zone: str | None, category: str, brand: str | None, sku: str | None,
) -> None:
    default, z1, c1, b1, s1 = (_scope(f, h, c) for f, h, c in zip(floors, hards, changes, strict=True))
    rules = config({"default": default, "zones": {"z1": z1}, "categories": {"c1": c1}, "brands": {"b1": b1},
                    "skus": {"s1": s1}})
    # The scopes that apply, widest first, and the expected value: the last one that sets it.
    applies = [True, zone == "z1", category == "c1", brand == "b1", sku == "s1"]
    floor, hard, change = Decimal(5), True, Decimal(10)  # built-in defaults
    for on, f, h, c in zip(applies, floors, hards, changes, strict=True):
        if on:
            floor = Decimal(f) if f is not None else floor
            hard = h if h is not None else hard
            change = Decimal(c) if c is not None else change
    r = rules.resolve(category, brand, sku, zone=zone)
    assert (r.margin_floor_pct, r.hard("margin_floor_pct"), r.max_change_pct) == (floor, hard, change)
    # A zone's rules folded into the defaults resolve the same way (what the cycle resolves with).
    assert rules.for_zone(zone).resolve(category, brand, sku) == r
    # No zone: exactly the rules without a zones section.
    without = config({"default": default, "categories": {"c1": c1}, "brands": {"b1": b1}, "skus": {"s1": s1}})
    assert rules.resolve(category, brand, sku) == without.resolve(category, brand, sku)
    assert rules.for_zone(None).resolve(category, brand, sku) == without.resolve(category, brand, sku)


def test_for_zone_keeps_the_source_and_drops_the_zones(tmp_path: Path) -> None:
    path = write(tmp_path, 'zones:\n  north:\n    max_change_pct: 20\n')
    rules = load_rules(path)
    north = rules.for_zone("north")
    assert north.zones == {} and north.source == rules.source
    assert north.default.max_change_pct is not None and north.default.max_change_pct.value == Decimal(20)
    assert rules.for_zone("elsewhere").default == rules.default


# -- the file: FILE:LINE errors --------------------------------------------------------------------

PRODUCTS = pd.DataFrame({"sku": ["0001", "0002"], "category": ["dairy", "bakery"], "brand": ["Acme", "Acme"]})


def test_a_zone_the_chain_does_not_have_is_a_file_line_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default:
          max_change_pct: 10
        zones:
          north:
            max_change_pct: 20
          nrth:
            max_change_pct: 25
        categories:
          dairy:
            margin_floor_pct: 20
        """,
    )
    rules = load_rules(path)
    assert rules.unmatched_scopes(PRODUCTS, zones=["north", "south"]) == [
        f"{path}:6: zones.nrth: no store is in this zone (the chain's zones: north, south); did you mean 'north'?"
    ]
    with pytest.raises(ConfigError) as info:
        rules.check_scopes(PRODUCTS, zones={"north", "south"})
    assert info.value.problems == [
        f"{path}:6: zones.nrth: no store is in this zone (the chain's zones: north, south); did you mean 'north'?"
    ]
    # A store priced on its own (no chain zones given): zone scopes are not checked.
    assert rules.unmatched_scopes(PRODUCTS) == []
    rules.check_scopes(PRODUCTS)
    # Zones and other scopes are reported together, in file order of sections.
    assert rules.unmatched_scopes(PRODUCTS.assign(category="bakery"), zones=[]) == [
        f"{path}:4: zones.north: no store is in this zone (the chain has no zones)",
        f"{path}:6: zones.nrth: no store is in this zone (the chain has no zones)",
        f"{path}:9: categories.dairy: no product has this category (the products' categories: bakery)",
    ]


def test_an_unknown_zone_in_rules_built_in_code_names_no_file() -> None:
    rules = config({"zones": {"west": {"max_change_pct": 5}}})
    assert rules.unmatched_scopes(PRODUCTS, zones=["north"]) == [
        "rules: zones.west: no store is in this zone (the chain's zones: north)"
    ]
    many = [f"z{i:02d}" for i in range(20)]
    assert rules.unmatched_scopes(PRODUCTS, zones=many) == ["rules: zones.west: no store is in this zone (20 zones in the chain)"]


def test_a_typo_inside_a_zone_scope_is_reported_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        zones:
          north:
            max_change_pct: 20
            endngs: [".99"]
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"{path}:4: zones.north.endngs: unknown key; did you mean 'endings'?")


def test_min_above_max_once_merged_in_a_zone(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default:
          max_price: "10.00"
        zones:
          north:
            min_price: "20.00"
        """,
    )
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert info.value.problems == [
        f"{path}:3: zones: zone 'north': min_price 20.00 is greater than max_price 10.00 once merged with the defaults"
    ]


def test_a_bad_value_in_a_zone_scope_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "zones:\n  north:\n    max_change_pct: lots\n")
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"{path}:3: zones.north.max_change_pct")
