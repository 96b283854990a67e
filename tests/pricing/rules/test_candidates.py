"""pricing.rules.candidates: every candidate obeys the hard rules, checked against a brute-force
enumeration of all allowed prices for random costs, prices and rules; conflicting hard rules
are relaxed lowest priority first (or the SKU held); soft rules cost their penalty; a price is
never below cost; price families get one shared grid."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing.core.money import to_decimal
from pricing.rules.candidates import (
    LOWER_RULES,
    NO_CANDIDATE,
    UPPER_RULES,
    Candidates,
    ending_offsets,
    generate_candidates,
)
from pricing.rules.config import DefaultRules, RulesConfig, RuleValues

# -- ending_offsets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endings", "expected"),
    [
        ((".99",), [99]),
        ((".99", ".49"), [49, 99]),
        ((".00",), [0]),
        ((".x9",), [9, 19, 29, 39, 49, 59, 69, 79, 89, 99]),
        ((".99", ".x9"), [9, 19, 29, 39, 49, 59, 69, 79, 89, 99]),
        ((".9x",), list(range(90, 100))),
        ((".xx",), list(range(100))),
        ((".x5", ".x0"), sorted([10 * t + 5 for t in range(10)] + [10 * t for t in range(10)])),
    ],
)
def test_ending_offsets(endings: tuple[str, ...], expected: list[int]) -> None:
    offsets = ending_offsets(endings)
    assert offsets.dtype == np.int64
    assert offsets.tolist() == expected


def matches(cents: int, endings: tuple[str, ...]) -> bool:
    """Independent check: does the price's '.DD' text match one of the endings ('x' = any digit)?"""
    digits = f"{cents % 100:02d}"
    return any(all(e == "x" or e == d for e, d in zip(ending[1:], digits)) for ending in endings)


@given(st.lists(st.from_regex(r"\.[0-9x]{2}", fullmatch=True), min_size=1, max_size=4, unique=True))
def test_ending_offsets_agree_with_text_matching(endings: list[str]) -> None:
    offsets = ending_offsets(tuple(endings))
    assert offsets.tolist() == [o for o in range(100) if matches(o, tuple(endings))]


# -- brute force reference ------------------------------------------------------------------

RULES_CHECKED = ("min_price", "max_price", "margin_floor_pct", "max_change_pct", "endings")


def default_values(rules: RulesConfig) -> dict[str, Any]:
    """The rule values a test config sets in ``default`` (all of RULES_CHECKED)."""
    return {name: getattr(rules.default, name).value for name in RULES_CHECKED}


def obeys(p: np.ndarray, cost: int, current: int, values: dict[str, Any], skip: tuple[str, ...] = ()) -> np.ndarray:
    """Independent check of each rule not in ``skip``, in exact integer arithmetic; never below cost."""
    floor_bp = int(values["margin_floor_pct"] * 100)
    change_bp = int(values["max_change_pct"] * 100)
    checks = {
        "min_price": p >= int(values["min_price"] * 100),
        "max_price": p <= int(values["max_price"] * 100),
        "margin_floor_pct": p * 10_000 >= cost * (10_000 + floor_bp),
        "max_change_pct": (p * 10_000 >= current * (10_000 - change_bp)) & (p * 10_000 <= current * (10_000 + change_bp)),
        "endings": np.isin(p % 100, [o for o in range(100) if matches(o, tuple(values["endings"]))]),
    }
    ok = (p >= cost) & (p >= 1)
    for name, check in checks.items():
        if name not in skip:
            ok &= check
    return ok


def allowed_prices(cost: int, current: int, values: dict[str, Any]) -> np.ndarray:
    """Every price in cents the rules allow, by checking each cent up to the ceiling."""
    top = min(int(values["max_price"] * 100), current * 2 + 1)
    p = np.arange(1, top + 1, dtype=np.int64)
    return p[obeys(p, cost, current, values)]


pct = st.one_of(
    st.integers(min_value=0, max_value=6_000), st.integers(min_value=0, max_value=20_000)
).map(lambda bp: Decimal(bp) / 100)  # mostly 0.00 .. 60.00, up to 200.00
change = st.one_of(
    st.integers(min_value=1, max_value=10_000), st.integers(min_value=1_000, max_value=6_000)
).map(lambda bp: Decimal(bp) / 100)  # 0.01 .. 100.00, often 10 .. 60
endings_st = st.lists(st.from_regex(r"\.[0-9x]{2}", fullmatch=True), min_size=1, max_size=3, unique=True)


@st.composite
def rules_st(draw: st.DrawFn) -> RulesConfig:
    low = draw(st.one_of(st.just(1), st.integers(min_value=1, max_value=3_000)))
    high = draw(st.one_of(st.just(12_000), st.integers(min_value=low, max_value=12_000)))
    default = DefaultRules(
        margin_floor_pct=draw(pct),
        min_price=to_decimal(low),
        max_price=to_decimal(high),
        max_change_pct=draw(change),
        endings=draw(endings_st),
    )
    return RulesConfig(
        default=default,
        max_candidates=draw(st.integers(min_value=2, max_value=30)),
        on_conflict=draw(st.sampled_from(["relax", "hold"])),
        endings_force_change=True,  # every price obeys the endings; the default is in test_endings_new_prices.py
    )


@st.composite
def row_st(draw: st.DrawFn) -> tuple[int, int]:
    """(cost, current): the current price often ends in an allowed-looking digit pair, cost often below it."""
    current = draw(st.integers(min_value=1, max_value=8_000))
    if draw(st.booleans()):
        current = current - current % 10 + draw(st.sampled_from([0, 5, 9]))
        current = max(current, 1)
    cost = draw(st.one_of(st.integers(min_value=0, max_value=6_000), st.integers(min_value=0, max_value=current)))
    return cost, current


rows_st = st.lists(row_st(), min_size=1, max_size=8)


@st.composite
def rules_and_rows(draw: st.DrawFn) -> tuple[RulesConfig, list[tuple[int, int]]]:
    rules = draw(rules_st())
    rows = draw(rows_st)
    if draw(st.booleans()):  # make some current prices end in the first allowed ending
        digits = default_values(rules)["endings"][0][1:].replace("x", "9")
        rows = [(c, max(p - p % 100 + int(digits), 1)) for c, p in rows]
    return rules, rows


def products_frame(rows: list[tuple[int | None, int]], category: str | list[str] = "dairy") -> pd.DataFrame:
    n = len(rows)
    return pd.DataFrame(
        {
            "sku": [f"{i:04d}" for i in range(n)],
            "name": [f"item {i}" for i in range(n)],
            "category": [category] * n if isinstance(category, str) else category,
            "cost_cents": pd.array([c for c, _ in rows], dtype="Int64"),
            "price_cents": np.array([p for _, p in rows], dtype=np.int64),
        }
    )


def prices_of(cands: Candidates, sku: str) -> list[int]:
    i = list(cands.skus).index(sku)
    return cands.prices[i][cands.valid[i]].tolist()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules_and_rows())
def test_candidates_obey_every_rule(case: tuple[RulesConfig, list[tuple[int, int]]]) -> None:
    rules, rows = case
    products = products_frame(rows)
    cands = generate_candidates(products, rules)
    values = default_values(rules)
    endings = tuple(values["endings"])
    k = rules.max_candidates
    held = {h.sku: h.reason for h in cands.held}
    assert cands.prices.shape[1] == k + 3  # the spread, today's price, the two soft edges
    assert set(cands.skus) | set(held) == set(products["sku"])
    assert not set(cands.skus) & set(held)
    position = {sku: i for i, sku in enumerate(cands.skus)}
    current_index = cands.current_index
    for sku, (cost, current) in zip(products["sku"], rows):
        allowed = allowed_prices(cost, current, values)
        if allowed.size == 0 and rules.on_conflict == "hold":
            assert sku in held, f"{sku} priced although no price obeys every hard rule"
            reason = held[sku]
            assert reason.startswith("rules conflict: ")
            assert any(f"{rule} needs >=" in reason for rule in LOWER_RULES)
            assert any(f"{rule} allows <=" in reason for rule in UPPER_RULES)
            assert reason.endswith("held at current price (on_conflict: hold)")
            continue
        assert sku not in held, f"{sku} held: {held.get(sku)}"
        i = position[sku]
        valid = cands.valid[i]
        prices = cands.prices[i][valid]
        assert (cands.prices[i][~valid] == NO_CANDIDATE).all()
        assert 1 <= prices.size <= k + 1  # all rules hard: the soft edges add nothing
        assert (np.diff(prices) > 0).all(), "sorted, no duplicates"
        assert (cands.penalty[i] == 0).all() and (cands.violations[i] == 0).all()
        assert cands.current[i] == current and cands.cost[i] == cost
        assert (prices >= cost).all(), "never below cost"
        if allowed.size == 0:  # relaxed: lowest priority first, and reported
            relaxed = cands.relaxed[i]
            assert relaxed, f"{sku}: rules conflict but nothing reported relaxed"
            assert set(relaxed) <= set(RULES_CHECKED)
            assert obeys(prices, cost, current, values, skip=relaxed).all(), f"{prices} break an unrelaxed rule"
            continue
        assert cands.relaxed[i] == ()
        assert np.isin(prices, allowed).all(), f"{prices} not all in the allowed set"
        # the spread reaches both ends of the allowed range
        assert prices[0] == allowed[0] and prices[-1] == allowed[-1]
        assert cands.lo[i] <= prices[0] and prices[-1] <= cands.hi[i]
        assert cands.lo_rule[i] in LOWER_RULES and cands.hi_rule[i] in UPPER_RULES
        # every rule, spelt out
        for p in prices.tolist():
            assert matches(p, endings)
            assert p * 10_000 >= cost * (10_000 + int(values["margin_floor_pct"] * 100))
            assert Decimal(p) / 100 >= values["min_price"] and Decimal(p) / 100 <= values["max_price"]
            assert abs(Decimal(p - current)) <= Decimal(current) * values["max_change_pct"] / 100
        # "no change" is a candidate exactly when the rules allow it
        current_allowed = current in allowed
        assert (current in prices) == current_allowed
        if current_allowed:
            assert cands.prices[i, current_index[i]] == current
        else:
            assert current_index[i] == NO_CANDIDATE
        if allowed.size <= k:  # few enough to list them all
            assert prices.tolist() == allowed.tolist()


@settings(max_examples=60, deadline=None)
@given(rules=rules_st(), rows=rows_st)
def test_candidate_count_is_bounded_and_dense_when_few_prices_allowed(
    rules: RulesConfig, rows: list[tuple[int, int]]
) -> None:
    cands = generate_candidates(products_frame(rows), rules)
    counts = cands.valid.sum(axis=1)
    assert (counts <= rules.max_candidates + 1).all()
    assert (counts >= 1).all()


def test_all_allowed_prices_listed_when_they_fit() -> None:
    rules = RulesConfig(
        default=DefaultRules(margin_floor_pct=Decimal(0), max_change_pct=Decimal(20), endings=[".99"]),
        max_candidates=10,
        endings_force_change=True,
    )
    cands = generate_candidates(products_frame([(100, 1_000)]), rules)  # range 8.00 .. 12.00
    assert cands.prices[0][cands.valid[0]].tolist() == [899, 999, 1099, 1199]
    assert cands.current_index.tolist() == [NO_CANDIDATE]  # 10.00 does not end in .99


def test_thinned_to_max_candidates_plus_current() -> None:
    rules = RulesConfig(
        default=DefaultRules(margin_floor_pct=Decimal(0), max_change_pct=Decimal(50), endings=[".x9"]),
        max_candidates=5,
    )
    cands = generate_candidates(products_frame([(10, 1_019)]), rules)  # allowed: 5.19 .. 15.19
    prices = cands.prices[0][cands.valid[0]]
    assert prices.tolist() == [519, 769, 1_019, 1_269, 1_519]  # 5 spread evenly, current among them
    rules = RulesConfig(
        default=DefaultRules(
            margin_floor_pct=Decimal(0), min_price=Decimal("9.00"), max_change_pct=Decimal(50), endings=[".x9"]
        ),
        max_candidates=5,
    )
    cands = generate_candidates(products_frame([(10, 1_029)]), rules)  # allowed: 9.09 .. 15.39
    prices = cands.prices[0][cands.valid[0]]
    assert prices.tolist() == [909, 1_029, 1_069, 1_229, 1_379, 1_539]  # 5 spread evenly + the current price
    assert cands.lo_rule.tolist() == ["min_price"] and cands.hi_rule.tolist() == ["max_change_pct"]


def test_sku_without_cost_is_held() -> None:
    products = products_frame([(None, 199), (50, 199)])
    cands = generate_candidates(products, RulesConfig())
    assert cands.skus.tolist() == ["0001"]
    assert [(h.sku, h.reason) for h in cands.held] == [("0000", "no cost on record: held at current price")]
    assert "no cost" in cands.held[0].reason


def test_sku_without_cost_is_held_whatever_the_rules() -> None:
    rules = RulesConfig.model_validate(
        {"default": {"margin_floor_pct": {"value": 0, "hard": False}, "min_price": {"value": "0.01", "hard": False}}}
    )
    cands = generate_candidates(products_frame([(None, 199)]), rules)
    assert cands.skus.size == 0 and [h.sku for h in cands.held] == ["0000"]


def test_all_held_gives_empty_candidates() -> None:
    cands = generate_candidates(products_frame([(None, 199)]), RulesConfig(max_candidates=4))
    assert cands.skus.size == 0
    assert cands.prices.shape == (0, 7) and cands.valid.shape == (0, 7)
    assert cands.current_index.shape == (0,)


# -- conflicting hard rules: hold, or relax lowest priority first ------------------------------

# cost 10.00 with a 5% floor needs >= 10.50, but a 10% max change from 9.99 allows <= 10.98;
# with endings .99 only, there is no allowed price in [10.50, 10.98].
GAP = DefaultRules(margin_floor_pct=Decimal(5), max_change_pct=Decimal(10), endings=[".99"])


def test_no_allowed_price_is_held_with_the_rules_named_when_told_to_hold() -> None:
    cands = generate_candidates(products_frame([(1_000, 999)]), RulesConfig(default=GAP, on_conflict="hold"))
    assert cands.skus.size == 0
    (held,) = cands.held
    assert held.sku == "0000"
    assert held.reason == (
        "rules conflict: margin_floor_pct needs >= 10.50 but max_change_pct allows <= 10.98 and no endings price "
        "lies between: held at current price (on_conflict: hold)"
    )


def test_no_allowed_price_relaxes_the_lowest_priority_rule() -> None:
    cands = generate_candidates(products_frame([(1_000, 999)]), RulesConfig(default=GAP, max_candidates=50))
    assert cands.held == []
    assert cands.relaxed.tolist() == [("endings",)]  # endings 50 < max change 60 < margin floor 100
    prices = prices_of(cands, "0000")
    assert prices[0] == 1_050 and prices[-1] == 1_098  # any cent between the two kept bounds
    assert (cands.lo_rule[0], cands.hi_rule[0]) == ("margin_floor_pct", "max_change_pct")


def test_crossed_bounds_relax_the_lower_priority_bound_not_the_endings() -> None:
    # floor 10.50 above the max change ceiling 9.00: no ending can help; max change (60) < floor (100)
    rules = RulesConfig(default=DefaultRules(margin_floor_pct=Decimal(5), max_change_pct=Decimal(10), endings=[".99"]))
    cands = generate_candidates(products_frame([(1_000, 818)]), rules)
    assert cands.relaxed.tolist() == [("max_change_pct",)]
    prices = prices_of(cands, "0000")
    assert prices[0] == 1_099 and all(p % 100 == 99 for p in prices)


def test_configured_priorities_decide_what_is_relaxed() -> None:
    # floor 7.00 x 1.30 = 9.10 above the max change ceiling 8.99: with the floor at priority 10
    # (below max change, 60), the floor is relaxed instead of the max change
    rules = RulesConfig.model_validate(
        {"default": {"margin_floor_pct": {"value": 30, "priority": 10}, "max_change_pct": 10, "endings": [".99"]},
         "endings_force_change": True}
    )
    cands = generate_candidates(products_frame([(700, 818)]), rules)
    assert cands.relaxed.tolist() == [("margin_floor_pct",)]
    assert prices_of(cands, "0000") == [799, 899]  # within 10% of 8.18, and above cost
    same_but_default_priority = RulesConfig.model_validate(
        {"default": {"margin_floor_pct": 30, "max_change_pct": 10, "endings": [".99"]}}
    )
    default = generate_candidates(products_frame([(700, 818)]), same_but_default_priority)
    assert default.relaxed.tolist() == [("max_change_pct",)]
    assert prices_of(default, "0000")[0] == 999  # the floor 9.10 kept


def test_relaxing_the_margin_floor_never_goes_below_cost() -> None:
    # cost 10.00 > the max change ceiling 8.99: the floor goes first (priority 10), then, since
    # cost itself is never relaxed, the max change (60) too
    rules = RulesConfig.model_validate(
        {"default": {"margin_floor_pct": {"value": 5, "priority": 10}, "max_change_pct": 10, "endings": [".99"]}}
    )
    cands = generate_candidates(products_frame([(1_000, 818)]), rules)
    assert cands.relaxed.tolist() == [("margin_floor_pct", "max_change_pct")]
    prices = prices_of(cands, "0000")
    assert prices[0] == 1_099 and min(prices) >= 1_000
    assert cands.lo_rule.tolist() == ["cost"]


def test_max_price_below_floor_hold_names_max_price() -> None:
    rules = RulesConfig(
        default=DefaultRules(margin_floor_pct=Decimal(0), max_price=Decimal("5.00"), max_change_pct=Decimal(100)),
        on_conflict="hold",
    )
    cands = generate_candidates(products_frame([(600, 700)]), rules)
    (held,) = cands.held
    assert "margin_floor_pct needs >= 6.00" in held.reason
    assert "max_price allows <= 5.00" in held.reason


def test_max_price_below_floor_relaxes_max_price() -> None:
    rules = RulesConfig(
        default=DefaultRules(margin_floor_pct=Decimal(0), max_price=Decimal("5.00"), max_change_pct=Decimal(100))
    )
    cands = generate_candidates(products_frame([(600, 700)]), rules)
    assert cands.held == [] and cands.relaxed.tolist() == [("max_price",)]
    prices = prices_of(cands, "0000")
    assert prices[0] == 649 and prices[-1] == 1_399  # cost 6.00 .. +100% of 7.00, .99/.49
    assert cands.hi_rule.tolist() == ["max_change_pct"]


def test_only_conflicting_skus_are_relaxed() -> None:
    cands = generate_candidates(products_frame([(1_000, 999), (100, 199)]), RulesConfig(default=GAP))
    assert cands.relaxed.tolist() == [("endings",), ()]


# -- never below cost -------------------------------------------------------------------------


def test_soft_margin_floor_still_never_below_cost() -> None:
    rules = RulesConfig.model_validate(
        {"default": {"margin_floor_pct": {"value": 20, "hard": False}, "max_change_pct": 50, "endings": [".x9"]}}
    )
    cands = generate_candidates(products_frame([(500, 600)]), rules)  # max change allows 3.00 .. 9.00
    prices = prices_of(cands, "0000")
    assert min(prices) == 509 and cands.lo_rule.tolist() == ["cost"]
    i = 0
    for j in np.flatnonzero(cands.valid[i]):  # below the soft floor 6.00: pays the penalty
        price = cands.prices[i, j]
        assert (cands.penalty[i, j] > 0) == (price < 600)
        assert cands.broken_rules(i, j) == (["margin_floor_pct"] if price < 600 else [])


def test_zero_cost_never_gives_a_zero_price() -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {
                "min_price": {"value": "0.10", "hard": False},
                "max_change_pct": {"value": 50, "hard": False},
                "endings": [".xx"],
            }
        }
    )
    cands = generate_candidates(products_frame([(0, 5)]), rules)
    prices = prices_of(cands, "0000")
    assert min(prices) >= 1
    assert cands.below.min() >= 1


# -- soft rules -------------------------------------------------------------------------------


def test_soft_max_change_widens_the_grid_and_costs_its_penalty() -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {
                "margin_floor_pct": 0,
                "max_change_pct": {"value": 10, "hard": False, "penalty": "0.50"},
                "max_price": "20.00",
                "endings": [".99"],
            },
            "max_candidates": 5,
            "endings_force_change": True,
        }
    )
    cands = generate_candidates(products_frame([(100, 1_000)]), rules)
    prices = prices_of(cands, "0000")
    assert prices == [199, 599, 999, 1_099, 1_599, 1_999]  # spread over the hard range + the soft edges 9.99, 10.99
    valid = np.flatnonzero(cands.valid[0])
    assert cands.penalty[0, valid].tolist() == [50.0, 50.0, 0.0, 0.0, 50.0, 50.0]
    assert [cands.broken_rules(0, j) for j in valid] == [["max_change_pct"]] * 2 + [[], []] + [["max_change_pct"]] * 2
    assert cands.relaxed.tolist() == [()]


def test_soft_endings_are_named_when_broken() -> None:
    rules = RulesConfig.model_validate(
        {"default": {"margin_floor_pct": 0, "max_change_pct": 10, "endings": {"value": [".99"], "hard": False}},
         "endings_force_change": True}
    )
    cands = generate_candidates(products_frame([(100, 1_000)]), rules)
    assert prices_of(cands, "0000") == [999, 1_000, 1_099]  # today's price is a candidate, at a cost
    valid = np.flatnonzero(cands.valid[0])
    assert [cands.broken_rules(0, j) for j in valid] == [[], ["endings"], []]
    assert cands.penalty[0, valid].tolist() == [0.0, 100.0, 0.0]  # the default penalty, 1.00 a day


def test_soft_price_points_are_named_when_broken() -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {
                "margin_floor_pct": 0,
                "max_change_pct": 10,
                "price_points": {"value": ["9.49"], "hard": False, "penalty": "0.25"},
            }
        }
    )
    cands = generate_candidates(products_frame([(100, 1_000)]), rules)
    i = 0
    for j in np.flatnonzero(cands.valid[i]):
        broken = cands.prices[i, j] != 949
        assert cands.broken_rules(i, j) == (["price_points"] if broken else [])
        assert cands.penalty[i, j] == (25.0 if broken else 0.0)
    assert 949 in prices_of(cands, "0000") and 1_000 in prices_of(cands, "0000")


# -- price points, change limits, competitor band ------------------------------------------------


def test_price_points_replace_the_endings() -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {
                "margin_floor_pct": 0,
                "max_change_pct": 20,
                "endings": [".99"],
                "price_points": ["7.99", "9.49", "10.00", "11.99", "12.49"],
            },
        }
    )
    cands = generate_candidates(products_frame([(100, 1_000)]), rules)
    assert prices_of(cands, "0000") == [949, 1_000, 1_199]  # the points within 8.00 .. 12.00
    assert cands.prices[0, cands.current_index[0]] == 1_000


def test_price_points_outside_the_range_conflict() -> None:
    rules = RulesConfig.model_validate(
        {"default": {"margin_floor_pct": 0, "max_change_pct": 10, "price_points": ["1.99", "2.99"]}, "on_conflict": "hold"}
    )
    cands = generate_candidates(products_frame([(100, 1_000)]), rules)
    (held,) = cands.held
    assert "no price_points price lies between" in held.reason
    relaxed = generate_candidates(products_frame([(100, 1_000)]), rules.model_copy(update={"on_conflict": "relax"}))
    assert relaxed.relaxed.tolist() == [("price_points",)]


def test_max_change_abs_and_uncertain_demand() -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {
                "margin_floor_pct": 0,
                "max_change_pct": 50,
                "max_change_abs": "1.00",
                "uncertain_max_change_pct": 2,
                "endings": [".xx"],
            },
            "max_candidates": 3,
        }
    )
    cands = generate_candidates(products_frame([(100, 1_000), (100, 1_000)]), rules, uncertain=np.array([True, False]))
    assert prices_of(cands, "0000") == [980, 1_000, 1_020]
    assert cands.lo_rule[0] == "uncertain_max_change_pct"
    assert prices_of(cands, "0001") == [900, 1_000, 1_100]
    assert (cands.lo_rule[1], cands.hi_rule[1]) == ("max_change_abs", "max_change_abs")


def test_uncertain_flags_must_match_the_products() -> None:
    with pytest.raises(ValueError, match="one flag per product"):
        generate_candidates(products_frame([(100, 1_000)]), RulesConfig(), uncertain=np.array([True, False]))


def test_competitor_band_applies_only_where_a_price_is_known() -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {
                "margin_floor_pct": 0,
                "max_change_pct": 50,
                "competitor_index": {"min_pct": 95, "max_pct": 105},
                "endings": [".xx"],
            },
            "max_candidates": 3,
        }
    )
    cands = generate_candidates(
        products_frame([(100, 1_000), (100, 1_000)]), rules, competitor=pd.Series({"0000": 1_040, "9999": 1})
    )
    assert prices_of(cands, "0000") == [988, 1_000, 1_040, 1_092]  # 95% .. 105% of 10.40, + today's price
    assert (cands.lo_rule[0], cands.hi_rule[0]) == ("competitor_index", "competitor_index")
    assert prices_of(cands, "0001") == [500, 1_000, 1_500]


# -- scopes -----------------------------------------------------------------------------------


def test_category_overrides_apply() -> None:
    rules = RulesConfig(
        default=DefaultRules(margin_floor_pct=Decimal(5), max_change_pct=Decimal(30), endings=[".99"]),
        categories={
            "wine": RuleValues(margin_floor_pct=Decimal(40), endings=[".95"]),
            "snacks": RuleValues(max_price=Decimal("2.00"), endings=[".x9"]),
        },
        max_candidates=50,
        endings_force_change=True,
    )
    products = products_frame(
        [(700, 1_000), (500, 1_000), (100, 199)], category=["wine", "dairy", "snacks"]
    )
    cands = generate_candidates(products, rules)
    assert cands.held == []
    by_sku = {sku: cands.prices[i][cands.valid[i]] for i, sku in enumerate(cands.skus)}
    wine, dairy, snacks = by_sku["0000"], by_sku["0001"], by_sku["0002"]
    assert (wine % 100 == 95).all() and (wine >= 980).all() and (wine <= 1_300).all()
    assert wine[0] == 995  # cost 7.00 x 1.40 = 9.80 -> 9.95 (the default 5% floor would allow 7.95)
    assert (dairy % 100 == 99).all() and dairy[0] == 799  # max change 30% from 10.00: >= 7.00
    assert (snacks % 10 == 9).all() and snacks[-1] == 199  # category max price 2.00
    assert cands.hi_rule[list(cands.skus).index("0002")] == "max_price"
    assert cands.lo_rule[list(cands.skus).index("0000")] == "margin_floor_pct"
    assert cands.lo_rule[list(cands.skus).index("0001")] == "max_change_pct"


def test_brand_and_sku_scopes_apply() -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {"margin_floor_pct": 0, "max_change_pct": 50, "endings": [".99"]},
            "brands": {"Acme": {"endings": [".49"]}},
            "skus": {"0002": {"max_price": "9.00"}},
            "endings_force_change": True,
        }
    )
    products = products_frame([(100, 1_000)] * 3)
    products["brand"] = ["Other", "Acme", "Acme"]
    cands = generate_candidates(products, rules)
    assert all(p % 100 == 99 for p in prices_of(cands, "0000"))
    assert all(p % 100 == 49 for p in prices_of(cands, "0001"))
    assert prices_of(cands, "0002")[-1] == 849 and cands.hi_rule[2] == "max_price"


# -- price families ---------------------------------------------------------------------------


def family_frame(rows: list[tuple[int, int]], family: list[str | None], category: list[str]) -> pd.DataFrame:
    products = products_frame(rows, category=category)
    products["family"] = pd.array(family, dtype="string")
    return products


def test_family_members_share_one_grid_within_every_members_rules() -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {"margin_floor_pct": 0, "max_change_pct": 20, "endings": [".99", ".49"]},
            "categories": {"b": {"endings": [".99"], "max_price": "11.00"}},
        }
    )
    products = family_frame([(100, 1_000), (100, 1_049), (100, 500)], ["F", "F", None], ["a", "b", "a"])
    cands = generate_candidates(products, rules)
    first, second = prices_of(cands, "0000"), prices_of(cands, "0001")
    assert first == second == [899, 999, 1_099]  # .99 only (b), within 8.39 .. 11.00 (both ranges)
    assert cands.relaxed.tolist() == [(), (), ()]


def test_family_whose_members_share_no_price_is_relaxed_or_held() -> None:
    rules = {
        "default": {"margin_floor_pct": 0, "max_change_pct": 5, "endings": [".xx"]},
    }
    products = family_frame([(100, 1_000), (100, 2_000)], ["F", "F"], ["a", "a"])  # 9.50..10.50 vs 19.00..21.00
    cands = generate_candidates(products, RulesConfig.model_validate(rules))
    assert cands.relaxed.tolist() == [("family",), ("family",)]
    assert prices_of(cands, "0000") != prices_of(cands, "0001")
    held = generate_candidates(products, RulesConfig.model_validate({**rules, "on_conflict": "hold"}))
    assert held.skus.size == 0
    assert [h.reason for h in held.held] == ["family F: the members' rules share no allowed price: held"] * 2


def test_soft_family_without_a_shared_price_is_not_reported_relaxed() -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {"margin_floor_pct": 0, "max_change_pct": 5, "endings": [".xx"], "family": {"hard": False}},
            "on_conflict": "hold",
        }
    )
    products = family_frame([(100, 1_000), (100, 2_000)], ["F", "F"], ["a", "a"])
    cands = generate_candidates(products, rules)
    assert cands.held == [] and cands.relaxed.tolist() == [(), ()]


def test_family_shared_price_found_however_sparse() -> None:
    # One member allows 1,800 prices (.x9 and .x0 over 5.00 .. 95.00), the other one price point
    # (40.00): the shared grid must find it, not relax the family.
    rules = RulesConfig.model_validate(
        {
            "default": {"margin_floor_pct": 0, "max_change_pct": 90, "endings": [".x9", ".x0"]},
            "categories": {"b": {"price_points": ["40.00"]}},
        }
    )
    products = family_frame([(10, 5_000), (10, 5_000)], ["F", "F"], ["a", "b"])
    cands = generate_candidates(products, rules)
    assert cands.relaxed.tolist() == [(), ()]
    assert prices_of(cands, "0000") == prices_of(cands, "0001") == [4_000]


def test_family_shared_endings_are_the_intersection() -> None:
    rules = RulesConfig.model_validate(
        {
            "default": {"margin_floor_pct": 0, "max_change_pct": 90, "endings": [".x9"]},
            "categories": {"b": {"endings": [".99", ".95"]}},
            "endings_force_change": True,
        }
    )
    products = family_frame([(10, 5_000), (10, 5_000)], ["F", "F"], ["a", "b"])
    cands = generate_candidates(products, rules)
    shared = prices_of(cands, "0000")
    assert shared == prices_of(cands, "0001")
    assert all(p % 100 == 99 for p in shared) and len(shared) == rules.max_candidates
    assert shared[0] == 599 and shared[-1] == 9_499


def test_family_switched_off_gets_its_own_grid() -> None:
    rules = RulesConfig.model_validate(
        {"default": {"margin_floor_pct": 0, "max_change_pct": 5, "endings": [".xx"], "family": False}}
    )
    products = family_frame([(100, 1_000), (100, 2_000)], ["F", "F"], ["a", "a"])
    cands = generate_candidates(products, rules)
    assert cands.relaxed.tolist() == [(), ()]
    assert prices_of(cands, "0000")[0] == 950 and prices_of(cands, "0001")[0] == 1_900
