"""A new price too long for its label is held at plan time, with its group, and said so."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd

from label_gateway.label_templates import default_label_templates
from pricing.plan.label_fit import LABEL_FIT_RULE, check_label_fit, unfit_prices
from pricing.plan.price_plan import PlanLine, PricePlan, SolverStats


def _line(sku: str, status: str, old: int, new: int, group: str | None = None) -> PlanLine:
    return PlanLine(
        sku=sku, name=f"Product {sku}", category="snacks", status=status,  # type: ignore[arg-type]
        old_cents=old, new_cents=new, cost_cents=100, units_old=10.0, units_new=9.0,
        profit_old_cents=1000.0, profit_new_cents=1100.0, binding_rule="profit", explanation="best", group=group,
    )


def _plan(lines: list[PlanLine]) -> PricePlan:
    return PricePlan(
        plan_id="plan-x", created_at=datetime(2026, 11, 2, tzinfo=UTC), store="s", currency="EUR", model="m",
        lines=lines, solver=SolverStats(status="OPTIMAL", objective_cents=0, bound_cents=0, seconds=0),
    )


PRODUCTS = pd.DataFrame({
    "sku": ["0001", "0002", "0003", "0004", "0005"],
    "size": [500.0, 500.0, 1.0, 6.0, 1.0],
    "unit": ["g", "g", "l", "pcs", "kg"],
})
LABELS = pd.DataFrame({
    "label_id": ["L1", "L2", "L3", "L3b", "L4"],
    "sku": ["0001", "0002", "0003", "0003", "0004"],
    "tag_type": ["1.54", "4.2", "2.9", "1.54", "2.9"],
})


def test_a_price_too_long_for_a_small_label_holds_it_and_its_family() -> None:
    huge = 9_999_999_999  # 99,999,999.99: too long for a 1.54" price box, fits a 4.2"
    plan = _plan([
        _line("0001", "change", 299, huge, group="family:F"),
        _line("0002", "approval", 299, huge, group="family:F"),  # on a 4.2", but its family moves together
        _line("0003", "change", 199, 249),
        _line("0004", "keep", 349, 349),
        _line("0005", "change", 199, huge),  # no label: nothing to check
    ])
    problems = unfit_prices(plan, PRODUCTS, LABELS, default_label_templates())
    assert set(problems) == {"0001"}
    assert "1.54" in problems["0001"] and "does not fit" in problems["0001"]
    checked = check_label_fit(plan, PRODUCTS, LABELS, default_label_templates())
    by_sku = {line.sku: line for line in checked.lines}
    for sku in ("0001", "0002"):
        line = by_sku[sku]
        assert line.status == "held" and line.binding_rule == LABEL_FIT_RULE
        assert line.new_cents == line.old_cents and line.profit_new_cents == line.profit_old_cents
    assert "does not fit" in by_sku["0001"].explanation
    assert "group family:F moves with 0001" in by_sku["0002"].explanation
    assert by_sku["0003"].status == "change" and by_sku["0005"].status == "change"
    assert checked.notes[-1].startswith("1 new prices do not fit their labels; 2 SKUs held")
    assert checked.new_prices() == {"0003": 249, "0005": huge}


def test_ordinary_prices_fit_every_tag_type_and_leave_the_plan_alone() -> None:
    plan = _plan([_line("0001", "change", 299, 249), _line("0003", "change", 1999, 2499)])
    assert unfit_prices(plan, PRODUCTS, LABELS, default_label_templates()) == {}
    assert check_label_fit(plan, PRODUCTS, LABELS, default_label_templates()) is plan


def test_an_unknown_tag_type_is_a_reason_to_hold() -> None:
    labels = pd.DataFrame({"label_id": ["L9"], "sku": ["0003"], "tag_type": ["7.5"]})
    plan = _plan([_line("0003", "change", 199, 249)])
    problems = unfit_prices(plan, PRODUCTS, labels, default_label_templates())
    assert "no label template for tag type '7.5'" in problems["0003"]
