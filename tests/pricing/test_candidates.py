"""pricing.candidates: every candidate obeys the hard rules, checked against a brute-force
enumeration of all allowed prices for random costs, prices and rules."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing.candidates import (
    LOWER_RULES,
    NO_CANDIDATE,
    UPPER_RULES,
    ending_offsets,
    generate_candidates,
)
from pricing.money import to_decimal
from pricing.rules import DefaultRules, RulesConfig, RuleValues

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


def allowed_prices(cost: int, current: int, rules: DefaultRules | RuleValues, endings: tuple[str, ...]) -> np.ndarray:
    """Every price in cents the rules allow, by checking each cent up to the ceiling."""
    floor_bp = int(rules.margin_floor_pct * 100)
    change_bp = int(rules.max_change_pct * 100)
    min_c, max_c = int(rules.min_price * 100), int(rules.max_price * 100)
    top = min(max_c, current * 2 + 1)
    p = np.arange(1, top + 1, dtype=np.int64)
    ok = (
        (p >= min_c)
        & (p <= max_c)
        & (p * 10_000 >= cost * (10_000 + floor_bp))
        & (p * 10_000 >= current * (10_000 - change_bp))
        & (p * 10_000 <= current * (10_000 + change_bp))
        & np.isin(p % 100, [o for o in range(100) if matches(o, endings)])
    )
    return p[ok]


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
    return RulesConfig(default=default, max_candidates=draw(st.integers(min_value=2, max_value=30)))


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
        digits = rules.default.endings[0][1:].replace("x", "9")
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


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rules_and_rows())
def test_candidates_obey_every_rule(case: tuple[RulesConfig, list[tuple[int, int]]]) -> None:
    rules, rows = case
    products = products_frame(rows)
    cands = generate_candidates(products, rules)
    r = rules.default
    endings = tuple(r.endings)
    k = rules.max_candidates
    held = {h.sku: h.reason for h in cands.held}
    assert cands.prices.shape[1] == k + 1
    assert set(cands.skus) | set(held) == set(products["sku"])
    assert not set(cands.skus) & set(held)
    position = {sku: i for i, sku in enumerate(cands.skus)}
    current_index = cands.current_index
    for sku, (cost, current) in zip(products["sku"], rows):
        allowed = allowed_prices(cost, current, r, endings)
        if sku in held:
            assert allowed.size == 0, f"{sku} held although {allowed[:5]} are allowed"
            reason = held[sku]
            assert reason.startswith("no allowed price")
            assert any(rule in reason for rule in LOWER_RULES)
            assert any(rule in reason for rule in UPPER_RULES)
            continue
        assert allowed.size > 0
        i = position[sku]
        valid = cands.valid[i]
        prices = cands.prices[i][valid]
        assert (cands.prices[i][~valid] == NO_CANDIDATE).all()
        assert 1 <= prices.size <= k + 1
        assert (np.diff(prices) > 0).all(), "sorted, no duplicates"
        assert np.isin(prices, allowed).all(), f"{prices} not all in the allowed set"
        # the spread reaches both ends of the allowed range
        assert prices[0] == allowed[0] and prices[-1] == allowed[-1]
        assert cands.lo[i] <= prices[0] and prices[-1] <= cands.hi[i]
        assert cands.lo_rule[i] in LOWER_RULES and cands.hi_rule[i] in UPPER_RULES
        assert cands.current[i] == current and cands.cost[i] == cost
        # every rule, spelt out
        for p in prices.tolist():
            assert matches(p, endings)
            assert p * 10_000 >= cost * (10_000 + int(r.margin_floor_pct * 100))
            assert Decimal(p) / 100 >= r.min_price and Decimal(p) / 100 <= r.max_price
            assert abs(Decimal(p - current)) <= Decimal(current) * r.max_change_pct / 100
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


def test_all_held_gives_empty_candidates() -> None:
    cands = generate_candidates(products_frame([(None, 199)]), RulesConfig(max_candidates=4))
    assert cands.skus.size == 0
    assert cands.prices.shape == (0, 5) and cands.valid.shape == (0, 5)
    assert cands.current_index.shape == (0,)


def test_no_allowed_price_is_held_with_the_rules_named() -> None:
    # cost 10.00 with a 5% floor needs >= 10.50, but a 10% max change from 9.99 allows <= 10.98;
    # with endings .99 only, there is no allowed price in [10.50, 10.98].
    rules = RulesConfig(default=DefaultRules(margin_floor_pct=Decimal(5), max_change_pct=Decimal(10), endings=[".99"]))
    cands = generate_candidates(products_frame([(1_000, 999)]), rules)
    assert cands.skus.size == 0
    (held,) = cands.held
    assert held.sku == "0000"
    assert "margin_floor_pct needs >= 10.50" in held.reason
    assert "max_change_pct allows <= 10.98" in held.reason
    assert held.reason.endswith("held at current price")


def test_max_price_below_floor_is_held_naming_max_price() -> None:
    rules = RulesConfig(default=DefaultRules(margin_floor_pct=Decimal(0), max_price=Decimal("5.00"), max_change_pct=Decimal(100)))
    cands = generate_candidates(products_frame([(600, 700)]), rules)
    (held,) = cands.held
    assert "margin_floor_pct needs >= 6.00" in held.reason
    assert "max_price allows <= 5.00" in held.reason


def test_category_overrides_apply() -> None:
    rules = RulesConfig(
        default=DefaultRules(margin_floor_pct=Decimal(5), max_change_pct=Decimal(30), endings=[".99"]),
        categories={
            "wine": RuleValues(margin_floor_pct=Decimal(40), endings=[".95"]),
            "snacks": RuleValues(max_price=Decimal("2.00"), endings=[".x9"]),
        },
        max_candidates=50,
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
