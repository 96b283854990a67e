"""The last gate: every price is checked once more right before the price book takes it and the
outbox queues it for the labels. Plain data in, plain data out.

The optimizer already keeps its prices above cost, but a price reaches the labels by other roads
too: a plan file a person edited, products.csv's price (``outbox sync``), the review page. So the
one place every push goes through (pricing.store.price_push: ``record_prices`` and
``sync_labels``) asks this gate first, whatever the path. A price passes when it is

- whole cents and positive;
- not below the SKU's cost, and the cost is known: no cost, or a cost of 0 (a free good is a data
  error, not a reason to sell for a cent), holds the SKU: the repricer incidents that sold goods
  for a penny came from a missing floor;
- within the SKU's hard per-price rules when the caller gives them (``hard_limits`` from the
  rules config: ``min_price``, ``max_price`` and ``margin_floor_pct``, each only where it is
  hard). A rule the optimizer relaxed for that SKU (``on_conflict: relax``, listed on the plan
  line) is not enforced again; the cost never relaxes. Rules that bound a change (max change,
  approval band) or the shape of a price (endings) are the plan's business, not this gate's.

Every other price goes ahead. A held price is never recorded in the price book nor queued; the
caller logs a ``held`` event for it (``held_events``) and shows ``HeldPrice.line()`` to people:
``held 000123: price 0.01 is below cost 0.95``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_CEILING, Decimal

import pandas as pd

from pricing.core.events import Event
from pricing.core.ids import shown
from pricing.plan.price_plan import PlanLine
from pricing.rules.config import RulesConfig

#: The rules config's hard per-price rules this gate enforces.
GATE_RULES = ("min_price", "max_price", "margin_floor_pct")


@dataclass(frozen=True)
class HardLimits:
    """The hard per-price rules of one SKU (None: the rule is soft here, or there is none)."""

    min_cents: int | None = None
    max_cents: int | None = None
    margin_floor_pct: Decimal | None = None


@dataclass(frozen=True)
class HeldPrice:
    """A price the gate kept from the price book and the labels."""

    sku: str
    price_cents: object  # as given (not necessarily whole cents)
    reason: str
    cost_cents: int | None = None

    def line(self) -> str:
        """The one line people read: ``held 000123: price 0.01 is below cost 0.95``."""
        return f"held {shown(self.sku)}: {self.reason}"


@dataclass(frozen=True)
class GateResult:
    allowed: dict[str, int]  # sku -> cents, in the order given
    held: list[HeldPrice]

    @property
    def reasons(self) -> list[tuple[str, str]]:
        """(sku, reason) per held price."""
        return [(h.sku, h.reason) for h in self.held]


def known_cost(value: object) -> int | None:
    """A cost in whole cents > 0, else None (missing, <NA>, 0, negative, not whole: no cost)."""
    if value is None or value is pd.NA or isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):
        cents = int(value)
    elif isinstance(value, float):
        if not math.isfinite(value) or not value.is_integer():
            return None
        cents = int(value)
    elif isinstance(value, Decimal):
        if not value.is_finite() or value.adjusted() > 30 or value != value.to_integral_value():
            return None
        cents = int(value)
    else:
        return None
    return cents if cents > 0 else None


def _money(cents: int) -> str:
    """Cents as decimal text, exactly, for any size (pricing.core.money.to_decimal stops at 28
    digits, and the gate must never raise on what it is given)."""
    sign = "-" if cents < 0 else ""
    whole, rest = divmod(abs(cents), 100)
    return f"{sign}{whole}.{rest:02d}"


def _cents(value: object) -> int | None:
    """A price as whole cents, or None when it is not a whole number (never a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        return None
    return int(value)


def _margin_floor(cost: int, pct: Decimal) -> int:
    """ceil(cost x (1 + pct / 100)) in integers, as the candidates compute it."""
    bp = int((pct * 100).to_integral_value(rounding=ROUND_CEILING))
    return -((-cost * (10_000 + bp)) // 10_000)


def _problem(price: int, cost: int, limits: HardLimits | None, relaxed: Collection[str]) -> str | None:
    money = _money(price)
    if limits is None:
        return None
    if limits.min_cents is not None and "min_price" not in relaxed and price < limits.min_cents:
        return f"price {money} is below min_price {_money(limits.min_cents)} (a hard rule)"
    if limits.margin_floor_pct is not None and "margin_floor_pct" not in relaxed:
        floor = _margin_floor(cost, limits.margin_floor_pct)
        if price < floor:
            return (f"price {money} is below the margin floor {_money(floor)} "
                    f"(cost {_money(cost)} + {limits.margin_floor_pct}%, a hard rule)")
    if limits.max_cents is not None and "max_price" not in relaxed and price > limits.max_cents:
        return f"price {money} is above max_price {_money(limits.max_cents)} (a hard rule)"
    return None


def check_prices(
    prices: Mapping[str, object],
    costs: Mapping[str, object],
    limits: Mapping[str, HardLimits] | None = None,
    relaxed: Mapping[str, Collection[str]] | None = None,
) -> GateResult:
    """Split ``prices`` (sku -> cents) into the allowed ones and the held ones.

    ``costs``: sku -> cost in cents (None, <NA>, 0 or a SKU not in it: no cost, held).
    ``limits``: sku -> its hard per-price rules (``hard_limits``); None or a SKU not in it: only
    positive and not below cost are checked. ``relaxed``: sku -> rule names the plan relaxed for
    it (not enforced again here)."""
    allowed: dict[str, int] = {}
    held: list[HeldPrice] = []
    for sku, value in prices.items():
        price = _cents(value)
        cost = known_cost(costs.get(sku))
        if price is None:
            reason = f"price {shown(repr(value))} is not whole cents"
        elif price <= 0:
            reason = f"price {_money(price)} is not positive"
        elif cost is None:
            reason = f"no cost on record for price {_money(price)} (a cost of 0 or none counts as missing)"
        elif price < cost:
            reason = f"price {_money(price)} is below cost {_money(cost)}"
        else:
            found = _problem(price, cost, None if limits is None else limits.get(sku),
                             () if relaxed is None else relaxed.get(sku, ()))
            if found is None:
                allowed[sku] = price
                continue
            reason = found
        held.append(HeldPrice(sku, value if price is None else price, reason, cost))
    return GateResult(allowed, held)


# -- what the callers have at hand, as the gate's plain data ----------------------------------------


def product_costs(products: pd.DataFrame) -> dict[str, int | None]:
    """sku -> cost in cents of a products frame (pricing.core.data), None where it has none."""
    return {
        str(sku): known_cost(cost)
        for sku, cost in zip(products["sku"].astype(str), products["cost_cents"].astype(object), strict=True)
    }


def hard_limits(products: pd.DataFrame, rules: RulesConfig, skus: Iterable[str] | None = None) -> dict[str, HardLimits]:
    """sku -> the hard per-price rules of each product (of ``skus`` only, when given), resolved
    default -> category -> brand -> SKU as the candidates resolve them."""
    wanted = None if skus is None else set(skus)
    out: dict[str, HardLimits] = {}
    cache: dict[tuple[str, str, str], HardLimits] = {}
    brands = products["brand"].astype(str) if "brand" in products.columns else pd.Series("", index=products.index)
    for sku, category, brand in zip(products["sku"].astype(str), products["category"].astype(str), brands, strict=True):
        if wanted is not None and sku not in wanted:
            continue
        key = (category, brand if brand in rules.brands else "", sku if sku in rules.skus else "")
        if key not in cache:
            resolved = rules.resolve(key[0], key[1] or None, key[2] or None)
            hard = {name: resolved.hard(name) for name in GATE_RULES}
            cache[key] = HardLimits(
                min_cents=resolved.min_price_cents if hard["min_price"] else None,
                max_cents=resolved.max_price_cents if hard["max_price"] else None,
                margin_floor_pct=resolved.margin_floor_pct if hard["margin_floor_pct"] else None,
            )
        out[sku] = cache[key]
    return out


def relaxed_rules(lines: Iterable[PlanLine]) -> dict[str, tuple[str, ...]]:
    """sku -> the hard rules a plan relaxed for it (only SKUs with any)."""
    return {line.sku: tuple(line.relaxed_rules) for line in lines if line.relaxed_rules}


def costs_with_plan(products: Mapping[str, object] | None, lines: Iterable[PlanLine]) -> dict[str, int | None]:
    """Costs for a plan file's prices: products.csv's when there is one (the plan's cost can only
    raise it: a plan edited to a lower cost does not lower the floor; a SKU products.csv has no
    cost for is held whatever the plan says), else the plan's own ``cost_cents``."""
    planned = {line.sku: known_cost(line.cost_cents) for line in lines}
    if products is None:
        return planned
    out: dict[str, int | None] = {}
    for sku, value in products.items():
        cost = known_cost(value)
        extra = planned.get(sku)
        out[sku] = None if cost is None else max(cost, extra or 0)
    return out


def held_events(held: Iterable[HeldPrice], *, store: str, correlation: str | None, at: datetime) -> list[Event]:
    """One ``held`` event per held price, for the store's event log."""
    return [
        Event(
            at=at, store=store, kind="held", correlation=correlation, sku=h.sku,
            data={
                "price_cents": h.price_cents if isinstance(h.price_cents, int) else shown(repr(h.price_cents)),
                "cost_cents": h.cost_cents, "reason": h.reason,
            },
        )
        for h in held
    ]


def held_lines(held: Iterable[HeldPrice], limit: int | None = None) -> list[str]:
    """``held SKU: reason`` per held price; past ``limit`` lines, one ``... and N more held`` line."""
    lines = [h.line() for h in held]
    if limit is not None and len(lines) > limit:
        return [*lines[:limit], f"... and {len(lines) - limit} more held (see the event log: kind held)"]
    return lines
