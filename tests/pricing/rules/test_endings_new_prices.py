"""pricing.rules.candidates: endings apply to new prices (``endings_force_change: false``, the
default), relaxed rules say what they gave way to, and family grids say which member set their ends.

The brute-force reference is test_candidates' ``allowed_prices`` (every cent checked against every
rule): with the default, the candidates are those prices plus today's price when today's breaks
only the endings.
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np
from hypothesis import HealthCheck, given, settings

from pricing.rules.candidates import generate_candidates
from pricing.rules.config import DefaultRules, RulesConfig
from tests.pricing.rules.test_candidates import (
    allowed_prices,
    default_values,
    family_frame,
    matches,
    obeys,
    prices_of,
    products_frame,
    rules_and_rows,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules_and_rows())
def test_today_breaking_only_the_endings_is_a_candidate(case: tuple[RulesConfig, list[tuple[int, int]]]) -> None:
    forced, rows = case
    rules = forced.model_copy(update={"endings_force_change": False})
    cands = generate_candidates(products_frame(rows), rules)
    values = default_values(rules)
    held = {h.sku for h in cands.held}
    position = {sku: i for i, sku in enumerate(cands.skus)}
    for n, (cost, current) in enumerate(rows):
        sku = f"{n:04d}"
        today = np.array([current])
        keepable = bool(obeys(today, cost, current, values, skip=("endings",))[0])
        allowed = allowed_prices(cost, current, values)
        if allowed.size == 0 and not keepable:
            continue  # a real conflict: test_candidates covers relax and hold
        assert sku not in held, sku
        i = position[sku]
        prices = cands.prices[i][cands.valid[i]]
        assert cands.relaxed[i] == (), f"{sku}: nothing conflicts, yet {cands.relaxed[i]} relaxed"
        assert (current in prices) == (keepable or current in allowed)
        others = prices[prices != current]
        assert np.isin(others, allowed).all(), f"{others} break a rule"  # new prices obey the endings
        assert bool(cands.current_off_set[i]) == (not matches(current, tuple(values["endings"])))
        assert (cands.penalty[i] == 0).all()


def test_endings_force_change_keeps_the_old_behaviour() -> None:
    rules = RulesConfig(default=DefaultRules(margin_floor_pct=Decimal(0), max_change_pct=Decimal(20), endings=[".99"]))
    frame = products_frame([(100, 1_000)])
    assert 1_000 in prices_of(generate_candidates(frame, rules), "0000")
    forced = generate_candidates(frame, rules.model_copy(update={"endings_force_change": True}))
    assert prices_of(forced, "0000") == [899, 999, 1_099, 1_199]


def test_today_breaking_soft_endings_pays_no_penalty() -> None:
    rules = RulesConfig.model_validate(
        {"default": {"margin_floor_pct": 0, "max_change_pct": 10, "endings": {"value": [".99"], "hard": False}}}
    )
    cands = generate_candidates(products_frame([(100, 1_000)]), rules)
    valid = np.flatnonzero(cands.valid[0])
    assert prices_of(cands, "0000") == [999, 1_000, 1_099]
    assert cands.penalty[0, valid].tolist() == [0.0, 0.0, 0.0]
    assert [cands.broken_rules(0, j) for j in valid] == [[], [], []]


def test_only_today_when_no_ending_lies_in_range() -> None:
    # within 3 % of 8.05 (uncertain demand) no price ends in .49 or .99 except 7.99; with .49 only, none
    rules = RulesConfig.model_validate(
        {"default": {"margin_floor_pct": 0, "max_change_pct": 10, "uncertain_max_change_pct": 3, "endings": [".49"]}}
    )
    cands = generate_candidates(products_frame([(500, 805)]), rules, uncertain=np.array([True]))
    assert prices_of(cands, "0000") == [805] and cands.relaxed.tolist() == [()]


def test_relaxed_rules_say_what_they_gave_way_to() -> None:
    gap = RulesConfig(default=DefaultRules(margin_floor_pct=Decimal(5), max_change_pct=Decimal(10), endings=[".99"]))
    cands = generate_candidates(products_frame([(1_000, 999)]), gap)
    assert cands.relaxed_for.tolist() == [
        ("endings relaxed for margin_floor_pct and max_change_pct: no endings price between 10.50 and 10.98",)
    ]
    crossed = generate_candidates(products_frame([(1_000, 818)]), gap)
    assert crossed.relaxed_for.tolist() == [
        ("max_change_pct relaxed for margin_floor_pct (margin_floor_pct needs >= 10.50, max_change_pct allows <= 8.99)",)
    ]


def test_a_family_grid_names_the_member_that_set_its_ends() -> None:
    rules = RulesConfig.model_validate({"default": {"margin_floor_pct": 0, "max_change_pct": 10, "endings": [".x9"]}})
    cands = generate_candidates(family_frame([(100, 349), (100, 319)], ["F", "F"], ["a", "a"]), rules)
    assert cands.family_hi_sku.tolist() == ["0001", None]  # 0001 allows at most 3.50, 0000 up to 3.83
    assert cands.family_hi.tolist() == [350, 350]
    assert cands.family_lo_sku.tolist() == [None, "0000"]  # 0000 needs at least 3.15, 0001 only 2.88
