"""pricing.store.last_gate: the check every price passes right before the price book and the outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from label_gateway.outbox import Outbox
from pricing.core.database import open_engine
from pricing.core.events import read_jsonl, write_jsonl
from pricing.plan.price_plan import PlanLine
from pricing.rules.config import RulesConfig
from pricing.store.event_log import EventLog
from pricing.store.last_gate import (
    HardLimits,
    HeldPrice,
    check_prices,
    costs_with_plan,
    hard_limits,
    held_events,
    held_lines,
    known_cost,
    product_costs,
    relaxed_rules,
)
from pricing.store.price_book import PriceBook
from pricing.store.price_push import record_prices, sync_labels
from simulator.replay import read_log

T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)
STORE = "store-001"


def _reasons(prices: dict[str, object], costs: dict[str, object], **kw: object) -> dict[str, str]:
    return dict(check_prices(prices, costs, **kw).reasons)  # type: ignore[arg-type]


# -- the checks -------------------------------------------------------------------------------------


def test_good_prices_pass_unchanged_in_order() -> None:
    result = check_prices({"B": 250, "A": 95}, {"A": 95, "B": 100})
    assert result.allowed == {"B": 250, "A": 95} and list(result.allowed) == ["B", "A"]  # equal to cost is fine
    assert result.held == []


def test_below_cost_is_held_with_one_clear_line() -> None:
    result = check_prices({"000123": 1, "000124": 300}, {"000123": 95, "000124": 100})
    assert result.allowed == {"000124": 300}
    assert result.held == [HeldPrice("000123", 1, "price 0.01 is below cost 0.95", 95)]
    assert result.held[0].line() == "held 000123: price 0.01 is below cost 0.95"


@pytest.mark.parametrize(
    ("price", "reason"),
    [
        (0, "price 0.00 is not positive"),
        (-5, "price -0.05 is not positive"),
        (2.5, "price 2.5 is not whole cents"),
        (True, "price True is not whole cents"),
        ("299", "price '299' is not whole cents"),
        (None, "price None is not whole cents"),
    ],
)
def test_a_price_that_is_not_positive_whole_cents_is_held(price: object, reason: str) -> None:
    assert _reasons({"A": price}, {"A": 10}) == {"A": reason}


@pytest.mark.parametrize("cost", [None, 0, -3, pd.NA, float("nan"), 1.5, "95", True])
def test_no_cost_or_cost_zero_is_held(cost: object) -> None:
    reasons = _reasons({"A": 299}, {"A": cost})
    assert reasons == {"A": "no cost on record for price 2.99 (a cost of 0 or none counts as missing)"}


def test_a_sku_missing_from_the_costs_is_held() -> None:
    assert "no cost on record" in _reasons({"X": 299}, {})["X"]


def test_known_cost_accepts_whole_numbers_only() -> None:
    assert [known_cost(v) for v in (95, 95.0, Decimal(95), 0, None, pd.NA, 1.5)] == [95, 95, 95, None, None, None, None]


def test_hard_limits_hold_prices_outside_them() -> None:
    limits = {sku: HardLimits(min_cents=19, max_cents=99_999, margin_floor_pct=Decimal(10)) for sku in "ABCD"}
    costs = {"A": 95, "B": 10, "C": 95, "D": 100}
    reasons = _reasons({"A": 104, "B": 15, "C": 100_000, "D": 110}, costs, limits=limits)
    assert reasons == {
        "A": "price 1.04 is below the margin floor 1.05 (cost 0.95 + 10%, a hard rule)",  # ceil(104.5)
        "B": "price 0.15 is below min_price 0.19 (a hard rule)",
        "C": "price 1000.00 is above max_price 999.99 (a hard rule)",
    }  # D: 110 == 100 x 1.10 exactly, allowed


def test_a_rule_the_plan_relaxed_is_not_enforced_again_but_cost_always_is() -> None:
    limits = {"A": HardLimits(max_cents=100), "B": HardLimits(margin_floor_pct=Decimal(20))}
    relaxed = {"A": ("max_price",), "B": ("margin_floor_pct",)}
    result = check_prices({"A": 120, "B": 101}, {"A": 100, "B": 100}, limits, relaxed)
    assert result.allowed == {"A": 120, "B": 101}
    assert "below cost" in _reasons({"B": 99}, {"B": 100}, limits=limits, relaxed=relaxed)["B"]


def test_held_lines_are_cut_with_a_count() -> None:
    held = [HeldPrice(str(i), 1, "price 0.01 is below cost 0.95") for i in range(4)]
    assert held_lines(held, limit=2) == [
        "held 0: price 0.01 is below cost 0.95", "held 1: price 0.01 is below cost 0.95",
        "... and 2 more held (see the event log: kind held)",
    ]
    assert held_lines([HeldPrice("A\x00B", 1, "x")]) == ["held A\\x00B: x"]


# -- the callers' data -----------------------------------------------------------------------------


def _products() -> pd.DataFrame:
    return pd.DataFrame({
        "sku": pd.array(["0001", "0002", "0003", "0004"], dtype="string"),
        "category": pd.array(["bakery", "bakery", "snacks", "snacks"], dtype="string"),
        "brand": pd.array(["Farm", "Naturelle", "", "Crunch"], dtype="string"),
        "cost_cents": pd.array([95, pd.NA, 0, 120], dtype="Int64"),
    })


def test_product_costs_treat_zero_and_empty_as_missing() -> None:
    assert product_costs(_products()) == {"0001": 95, "0002": None, "0003": None, "0004": 120}


def test_hard_limits_resolve_the_rules_scopes_and_leave_soft_rules_out() -> None:
    rules = RulesConfig.model_validate({
        "default": {"margin_floor_pct": 10, "min_price": "0.19", "max_price": {"value": "999.99", "hard": False}},
        "categories": {"bakery": {"margin_floor_pct": 15}},
        "brands": {"Naturelle": {"min_price": "1.49"}},
        "skus": {"0004": {"margin_floor_pct": {"value": 2, "hard": False}}},
    })
    limits = hard_limits(_products(), rules)
    assert limits["0001"] == HardLimits(min_cents=19, max_cents=None, margin_floor_pct=Decimal(15))
    assert limits["0002"] == HardLimits(min_cents=149, max_cents=None, margin_floor_pct=Decimal(15))
    assert limits["0003"] == HardLimits(min_cents=19, max_cents=None, margin_floor_pct=Decimal(10))
    assert limits["0004"] == HardLimits(min_cents=19, max_cents=None, margin_floor_pct=None)
    assert set(hard_limits(_products(), rules, ["0003"])) == {"0003"}


def _line(sku: str, cost: int | None, relaxed: list[str] | None = None) -> PlanLine:
    return PlanLine(
        sku=sku, name=sku, category="c", status="change", old_cents=200, new_cents=250, cost_cents=cost,
        units_old=1.0, units_new=1.0, profit_old_cents=1.0, profit_new_cents=1.0, binding_rule="x",
        explanation="y", relaxed_rules=relaxed or [],
    )


def test_costs_with_plan_products_csv_decides_and_the_plan_only_raises_it() -> None:
    lines = [_line("A", 95), _line("B", 20), _line("C", 95), _line("D", 95)]
    file_costs = {"A": 95, "B": 95, "C": None}  # D is not in products.csv
    assert costs_with_plan(file_costs, lines) == {"A": 95, "B": 95, "C": None}
    assert costs_with_plan({"A": 50}, [_line("A", 95)]) == {"A": 95}
    assert costs_with_plan(None, lines) == {"A": 95, "B": 20, "C": 95, "D": 95}


def test_relaxed_rules_of_plan_lines() -> None:
    assert relaxed_rules([_line("A", 1, ["max_price"]), _line("B", 1)]) == {"A": ("max_price",)}


def test_held_events_are_logged_exported_and_replay_ignores_them(tmp_path: Path) -> None:
    held = check_prices({"A": 1, "B": 2.5}, {"A": 95, "B": 95}).held
    events = held_events(held, store=STORE, correlation="plan-1", at=T0)
    assert [(e.kind, e.sku, e.data["price_cents"]) for e in events] == [("held", "A", 1), ("held", "B", "2.5")]
    assert events[0].data == {"price_cents": 1, "cost_cents": 95, "reason": "price 0.01 is below cost 0.95"}
    log = EventLog(open_engine(tmp_path / "engine.db"), STORE)
    log.append(events)
    write_jsonl(log.read(), tmp_path / "events.jsonl")
    back = read_jsonl(tmp_path / "events.jsonl")
    assert [e.kind for e in back] == ["held", "held"]
    assert read_log(back).divergences == []


# -- through record_prices and sync_labels (SQLite) --------------------------------------------------


def _open(tmp_path: Path) -> tuple[PriceBook, Outbox, EventLog]:
    engine = open_engine(tmp_path / "engine.db")
    return PriceBook(engine, STORE), Outbox(engine, STORE), EventLog(engine, STORE)


def test_record_prices_holds_before_the_book_and_the_outbox_and_the_rest_goes_ahead(tmp_path: Path) -> None:
    book, outbox, log = _open(tmp_path)
    labels = [("L1", "gw-1", "A"), ("L2", "gw-1", "B"), ("L3", "gw-1", "C")]
    pushed = record_prices(
        book, outbox, log, {"A": 1, "B": 299, "C": 250}, labels, currency="EUR", correlation="plan-1", at=T0,
        costs={"A": 95, "B": 100, "C": 0},
    )
    assert [h.line() for h in pushed.held] == [
        "held A: price 0.01 is below cost 0.95",
        "held C: no cost on record for price 2.50 (a cost of 0 or none counts as missing)",
    ]
    assert book.current() == {"B": 299}
    assert [(r.label_id, r.price_cents) for r in outbox.rows()] == [("L2", 299)]
    kinds = [(e.kind, e.sku) for e in log.read()]
    assert ("held", "A") in kinds and ("held", "C") in kinds and ("price_changed", "B") in kinds
    assert not any(e.kind in ("price_changed", "pushed") and e.sku in ("A", "C") for e in log.read())


def test_record_prices_enforces_the_hard_limits_it_is_given(tmp_path: Path) -> None:
    book, outbox, log = _open(tmp_path)
    pushed = record_prices(
        book, outbox, log, {"A": 100}, [("L1", "gw-1", "A")], currency="EUR", correlation="p", at=T0,
        costs={"A": 95}, limits={"A": HardLimits(margin_floor_pct=Decimal(10))},
    )
    assert [h.sku for h in pushed.held] == ["A"] and book.current() == {} and outbox.rows() == []


def test_sync_labels_neither_seeds_nor_sends_a_held_price(tmp_path: Path) -> None:
    book, outbox, log = _open(tmp_path)
    book.record({"OLD": 50}, at=T0, currency="EUR", correlation="older")  # in the book before its cost rose
    labels = [("L1", "gw-1", "A"), ("L2", "gw-1", "B"), ("L3", "gw-1", "C"), ("L4", "gw-1", "OLD")]
    synced = sync_labels(
        book, outbox, log, labels, file_prices={"A": 1, "B": 199, "C": 299}, costs={"A": 95, "B": 100, "OLD": 60},
        currency="EUR", at=T0,
    )
    assert [h.line() for h in synced.held] == [
        "held A: price 0.01 is below cost 0.95",
        "held C: no cost on record for price 2.99 (a cost of 0 or none counts as missing)",
        "held OLD: price 0.50 is below cost 0.60",
    ]
    assert book.current() == {"OLD": 50, "B": 199}
    assert [(r.label_id, r.price_cents) for r in outbox.rows()] == [("L2", 199)]
    assert sorted(e.sku for e in log.read(kinds=["held"])) == ["A", "C", "OLD"]


# -- the property -----------------------------------------------------------------------------------

SKUS = st.sampled_from([f"{i:04d}" for i in range(12)])
PRICE = st.one_of(st.integers(-1000, 100_000), st.integers(), st.floats(allow_nan=True), st.booleans(), st.none(),
                  st.text(max_size=3), st.decimals(allow_nan=True))
COST = st.one_of(st.none(), st.just(0), st.integers(-50, 100_000), st.integers(), st.just(pd.NA),
                 st.floats(allow_nan=True), st.decimals(allow_nan=True))
LIMITS = st.builds(
    HardLimits,
    min_cents=st.none() | st.integers(1, 5000),
    max_cents=st.none() | st.integers(1, 100_000),
    margin_floor_pct=st.none() | st.decimals(0, 1000, places=2),
)


@settings(max_examples=400, deadline=None)
@given(
    prices=st.dictionaries(SKUS, PRICE, max_size=12),
    costs=st.dictionaries(SKUS, COST, max_size=12),
    limits=st.none() | st.dictionaries(SKUS, LIMITS, max_size=12),
)
def test_nothing_leaves_the_gate_at_or_below_zero_or_below_a_known_cost(
    prices: dict[str, object], costs: dict[str, object], limits: dict[str, HardLimits] | None
) -> None:
    result = check_prices(prices, costs, limits)
    assert set(result.allowed) | {h.sku for h in result.held} == set(prices)
    assert not set(result.allowed) & {h.sku for h in result.held}
    for sku, cents in result.allowed.items():
        assert type(cents) is int and cents > 0
        cost = known_cost(costs.get(sku))
        assert cost is not None and cost > 0 and cents >= cost
        limit = (limits or {}).get(sku)
        if limit is not None:
            assert limit.min_cents is None or cents >= limit.min_cents
            assert limit.max_cents is None or cents <= limit.max_cents
            if limit.margin_floor_pct is not None:
                assert Decimal(cents) >= Decimal(cost) * (1 + limit.margin_floor_pct / 100)
    for sku in prices:
        cost = costs.get(sku)
        if cost is None or cost is pd.NA or (isinstance(cost, int) and cost <= 0):
            assert sku not in result.allowed  # cost 0 or missing: held
    for held in result.held:
        assert held.line().startswith(f"held {held.sku}: ") and "\n" not in held.line()
