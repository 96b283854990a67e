"""One pricing cycle for a chain's price zone: the zone's stores share one shelf price per SKU.

In: the zone id, each store's fitted demand model, the products (one row per SKU), the rules
(with an optional ``zones:`` scope), the zone prices (zone_prices.csv frame: zone, sku,
price_cents; a SKU without a row keeps products.price_cents). Out: one PricePlan for the whole
zone (``plan.store`` is the zone id), one price per SKU that every store of the zone shows.

How: the rules are resolved for the zone (``RulesConfig.for_zone``: default < zones[zone] <
categories < brands < skus), the stores' models are summed into one predictor
(pricing.demand.zone_demand.ZoneDemand: the zone's profit at a price is the sum of its stores'),
and the unchanged single-store cycle (pricing.plan.cycle.run_pricing_cycle) prices the zone with
the zone's prices as today's. Families, ladders, tiers, relaxation and the approval band work as
for a store.

The change budget is per store and per zone at once: every store of the zone shows the zone's
price, so a store changes exactly the zone's changes among the SKUs it carries, never more. The
zone is held to the smallest of its stores' limits (``zone_change_limit``): with ``max_changes``
that is the same number; with ``max_share_pct`` each store's share is of the SKUs it carries, so
a store carrying few SKUs tightens the zone. ``changes_per_store`` counts each store's changes in
a zone plan and ``check_max_changes_per_store`` names any store over its own limit (only possible
when the budget is soft or was relaxed; the plan's notes then say so).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from label_gateway.label_templates import LabelTemplates
from pricing.demand.predictor import DemandPredictor
from pricing.demand.zone_demand import ZoneDemand
from pricing.plan.cycle import run_pricing_cycle
from pricing.plan.price_plan import PlanInputs, PricePlan
from pricing.rules.config import ChangeBudget, RulesConfig

#: The columns of a zone prices frame (zone_prices.csv).
ZONE_PRICE_COLUMNS = ("zone", "sku", "price_cents")


def zone_products(products: pd.DataFrame, zone: str, zone_prices: pd.DataFrame | None) -> pd.DataFrame:
    """``products`` with ``price_cents`` replaced by the zone's price where ``zone_prices`` has one.

    ``products`` must have one row per SKU; ``zone_prices`` the columns zone, sku, price_cents
    (rows of other zones and of SKUs not in ``products`` are ignored), at most one row per SKU of
    the zone, prices whole positive cents. ValueError otherwise.
    """
    skus = products["sku"].astype(str)
    repeated = skus[skus.duplicated()]
    if len(repeated):
        raise ValueError(f"products must have one row per SKU for a zone plan; repeated: {', '.join(pd.unique(repeated)[:5])}")
    out = products.copy()
    out["sku"] = skus.to_numpy(dtype=object)
    if zone_prices is None or zone_prices.empty:
        return out
    missing = [c for c in ZONE_PRICE_COLUMNS if c not in zone_prices.columns]
    if missing:
        raise ValueError(f"zone prices need the columns {', '.join(ZONE_PRICE_COLUMNS)}; missing: {', '.join(missing)}")
    mine = zone_prices.loc[zone_prices["zone"].astype(str) == str(zone)]
    mine_skus = mine["sku"].astype(str)
    twice = mine_skus[mine_skus.duplicated()]
    if len(twice):
        raise ValueError(f"zone {zone}: more than one price for SKUs {', '.join(pd.unique(twice)[:5])}")
    prices = pd.to_numeric(mine["price_cents"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(prices) | (prices <= 0) | (prices != np.round(prices))
    if bad.any():
        raise ValueError(
            f"zone {zone}: a price is not whole positive cents for SKUs {', '.join(mine_skus[bad].head(5))}"
        )
    price = pd.Series(prices.astype(np.int64), index=mine_skus.to_numpy())
    today = skus.map(price)
    out["price_cents"] = np.where(today.notna(), today, out["price_cents"]).astype(np.int64)
    return out


def store_skus(store_models: Mapping[str, DemandPredictor], products: pd.DataFrame) -> dict[str, set[str]]:
    """Per store: the SKUs of ``products`` its model knows (those it carries and can be priced for)."""
    listed = set(products["sku"].astype(str))
    return {
        str(store): listed & set(pd.Index(model.skus_, dtype=object).astype(str)) for store, model in store_models.items()
    }


def store_change_limits(rules: RulesConfig, carried: Mapping[str, Collection[str]]) -> dict[str, int]:
    """Per store: its change budget's limit over the SKUs it carries ({} without a budget)."""
    if rules.change_budget is None:
        return {}
    return {store: rules.change_budget.limit(len(skus)) for store, skus in carried.items()}


def zone_change_limit(rules: RulesConfig, carried: Mapping[str, Collection[str]]) -> int | None:
    """The zone's change limit: the smallest of its stores' limits, over the stores that carry
    any of the SKUs (a store carrying none changes nothing); None without a budget or such a store."""
    limits = store_change_limits(rules, {store: skus for store, skus in carried.items() if len(skus)})
    return min(limits.values()) if limits else None


def changes_per_store(plan: PricePlan, carried: Mapping[str, Collection[str]]) -> dict[str, int]:
    """Per store: the prices a zone plan changes among the SKUs the store carries (changes
    awaiting approval included, as the change budget counts them)."""
    changed = set(plan.proposed_prices())
    return {store: len(changed & set(skus)) for store, skus in carried.items()}


def check_max_changes_per_store(plan: PricePlan, rules: RulesConfig, carried: Mapping[str, Collection[str]]) -> list[str]:
    """One line per store whose changes in ``plan`` exceed its own change budget ([] when every
    store is within it, or the rules have no budget)."""
    limits = store_change_limits(rules, carried)
    counts = changes_per_store(plan, carried)
    return [
        f"store {store}: {counts[store]} changes, over its change budget of {limit}"
        for store, limit in limits.items()
        if counts[store] > limit
    ]


def run_zone_cycle(
    zone: str,
    store_models: Mapping[str, DemandPredictor],
    products: pd.DataFrame,
    rules: RulesConfig,
    zone_prices: pd.DataFrame | None = None,
    *,
    now: datetime | None = None,
    model_name: str | None = None,
    weights: Mapping[str, float] | None = None,
    zones: Collection[str] | None = None,
    dates: Any = None,
    competitor: pd.Series | None = None,
    labels: pd.DataFrame | None = None,
    label_templates: LabelTemplates | None = None,
    inputs: PlanInputs | None = None,
    rejected_rows: int = 0,
    progress: Callable[[str], None] | None = None,
    check_scopes: bool = True,
) -> PricePlan:
    """Price ``zone`` as one: a plan with ``store == zone`` and one price per SKU for all its stores.

    ``store_models``: store id -> fitted demand model of each store of the zone; ``weights``:
    store id -> multiplier of its units (ZoneDemand). ``zones``: the chain's zones (stores.csv);
    with them a ``zones:`` scope naming no zone of the chain is a ConfigError with its FILE:LINE
    (as a category no product has), and ``zone`` itself must be one of them (ValueError). The
    other arguments are run_pricing_cycle's (``labels``: the zone's stores' labels).
    """
    if zones is not None and str(zone) not in {str(z) for z in zones}:
        raise ValueError(f"zone {zone} is not one of the chain's zones")
    if not store_models:
        raise ValueError(f"zone {zone} has no store models")
    if check_scopes and rules.source is not None:
        rules.check_scopes(products, zones=zones)
    priced = zone_products(products, zone, zone_prices)
    today = pd.Series(priced["price_cents"].to_numpy(dtype=np.int64), index=priced["sku"].to_numpy(dtype=object))
    demand = ZoneDemand(store_models, weights, prices_cents=today)
    carried = store_skus(store_models, priced)
    zone_rules = rules.for_zone(zone)
    if rules.change_budget is not None:
        cb = rules.change_budget
        limit = zone_change_limit(rules, carried)
        budget = ChangeBudget(max_changes=0 if limit is None else limit, hard=cb.hard, priority=cb.priority, penalty=cb.penalty)
        source = zone_rules.source
        zone_rules = zone_rules.model_copy(update={"change_budget": budget})
        zone_rules._source = source
    plan = run_pricing_cycle(
        priced,
        demand,
        zone_rules,
        store=str(zone),
        model_name=model_name or f"zone {zone}: {len(store_models)} store models summed",
        now=now,
        rejected_rows=rejected_rows,
        progress=progress,
        dates=dates,
        competitor=competitor,
        labels=labels,
        label_templates=label_templates,
        inputs=inputs,
        check_scopes=False,  # checked above, with the chain's zones
    )
    over = check_max_changes_per_store(plan, rules, carried)
    if over:
        plan.notes.extend(over)
    return plan
