"""Plan-time check that every new price can be shown on the labels of its SKU.

A price too long for a label's price box is an error the pricing manager sees in the plan, not a
broken label on the shelf: the SKU is held at today's price (status ``held``, binding rule
``label_fit``, the reason in its explanation), together with every SKU of its family, ladder or
tier group, so the group's rules still hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import pandas as pd

from label_gateway.label_templates import LabelTemplates, UnknownTagTypeError
from label_gateway.render import LabelContent, check_fit
from pricing.plan.price_plan import PlanLine, PricePlan

LABEL_FIT_RULE = "label_fit"
_MOVING = ("change", "approval")


def _tag_types(labels: pd.DataFrame) -> dict[str, list[str]]:
    """sku -> the tag types of its labels, each once."""
    out: dict[str, list[str]] = {}
    for sku, tag in zip(labels["sku"].astype(str), labels["tag_type"].astype(str), strict=True):
        tags = out.setdefault(sku, [])
        if tag not in tags:
            tags.append(tag)
    return out


def _size(value: object) -> Decimal | None:
    if value is None or pd.isna(value):  # type: ignore[call-overload]
        return None
    return Decimal(str(value))


def unfit_prices(
    plan: PricePlan, products: pd.DataFrame, labels: pd.DataFrame, templates: LabelTemplates
) -> dict[str, str]:
    """sku -> why its new price cannot be drawn on one of its labels, for the plan's changes
    (those awaiting approval included). A reduction is checked with its reference line (the
    old price stands in for the 30-day low, which the price book knows only when it is applied)."""
    tags = _tag_types(labels)
    info = products.set_index(products["sku"].astype(str))
    problems: dict[str, str] = {}
    for line in plan.lines:
        if line.status not in _MOVING or line.sku not in tags:
            continue
        row = info.loc[line.sku] if line.sku in info.index else None
        content = LabelContent.build(
            sku=line.sku, name=line.name, price_cents=line.new_cents, currency=plan.currency,
            size=None if row is None else _size(row["size"]), unit=None if row is None else str(row["unit"]),
            reference_cents=line.old_cents if line.new_cents < line.old_cents else None,
        )
        for tag in tags[line.sku]:
            try:
                problem = check_fit(content, templates.tag(tag))
            except UnknownTagTypeError as exc:
                problem = str(exc)
            if problem is not None:
                problems[line.sku] = problem
                break
    return problems


def _held(line: PlanLine, why: str) -> PlanLine:
    return line.model_copy(update={
        "status": "held", "new_cents": line.old_cents, "units_new": line.units_old,
        "profit_new_cents": line.profit_old_cents, "binding_rule": LABEL_FIT_RULE,
        "explanation": f"{why}: held at current price",
    })


def hold_unfit(plan: PricePlan, problems: Mapping[str, str]) -> PricePlan:
    """The plan with each SKU of ``problems`` (and the rest of its linked group) held at today's price."""
    if not problems:
        return plan
    groups = {line.group: line.sku for line in plan.lines if line.sku in problems and line.group}
    lines: list[PlanLine] = []
    for line in plan.lines:
        if line.status in _MOVING and line.sku in problems:
            lines.append(_held(line, problems[line.sku]))
        elif line.status in _MOVING and line.group in groups:
            lines.append(_held(line, f"its group {line.group} moves with {groups[line.group]}, "
                                     f"whose new price does not fit its label"))
        else:
            lines.append(line)
    held = sum(1 for old, new in zip(plan.lines, lines, strict=True) if old is not new)
    note = (f"{len(problems)} new prices do not fit their labels; {held} SKUs held at their current price "
            f"(binding rule {LABEL_FIT_RULE})")
    return plan.model_copy(update={"lines": lines, "notes": [*plan.notes, note]})


def check_label_fit(
    plan: PricePlan, products: pd.DataFrame, labels: pd.DataFrame, templates: LabelTemplates
) -> PricePlan:
    return hold_unfit(plan, unfit_prices(plan, products, labels, templates))
