"""Property tests of the pricing rules, end to end through ``run_pricing_cycle``.

Random small stores (costs, prices, missing costs, families, size ladders, brand tiers,
competitor prices, uncertain demand) meet random rule sets (scopes default -> categories ->
brands -> SKUs, hard and soft rules, priorities, endings or price points, change limits,
competitor bands, change budgets, on_conflict relax or hold). Whatever comes out, no emitted
price breaks a hard rule that its line does not report as relaxed, no price is below cost, the
linked groups hold, the budget holds, and nothing crashes. Endings apply to new prices: unless
``endings_force_change`` is drawn true, today's price that breaks only the endings may stay.

The checks resolve the rules themselves (from the raw rule dicts, most specific scope per
attribute) and test every price against them directly, cent by cent: they do not look at the
candidates or at ``RulesConfig.resolve``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing.plan.cycle import run_pricing_cycle
from pricing.plan.price_plan import PlanLine, PricePlan
from pricing.rules.config import BUILTIN_DEFAULTS, RulesConfig

NOW = datetime(2024, 3, 1, 6, 0, tzinfo=UTC)
PRICED = ("change", "keep", "approval")
SCAN = np.arange(1, 20_001, dtype=np.int64)  # every price a brute-force check looks at, in cents
SET_RULES = ("endings", "price_points")
BOUND_RULES = (
    "margin_floor_pct", "min_price", "max_price", "max_change_pct", "max_change_abs",
    "uncertain_max_change_pct", "competitor_index",
)
LINK_RULES = ("family", "ladder", "tier")
CATEGORIES = ("a", "b", "c")
BRANDS = ("X", "Y", "Z")


class FakeDemand:
    """units = level * (price / 100) ** -elasticity, per SKU; the cycle's DemandPredictor contract."""

    def __init__(self, elasticity: dict[str, float], level: float = 50.0, uncertain: set[str] | None = None) -> None:
        self.skus_ = pd.Index(list(elasticity), dtype=object)
        self._e = np.array(list(elasticity.values()), dtype=float)
        self._level = level
        self._uncertain = uncertain or set()

    def predict_grid(
        self, skus: np.ndarray, prices_cents: np.ndarray, *, current_prices_cents: np.ndarray | None = None,
        dates: object = None,
    ) -> np.ndarray:
        idx = self.skus_.get_indexer(pd.Index(skus, dtype=object))
        assert (idx >= 0).all(), "the cycle must only ask about SKUs the model knows"
        prices = np.asarray(prices_cents, dtype=float)
        assert prices.shape[0] == len(idx)
        assert (prices > 0).all(), "a real model refuses non-positive prices"
        assert current_prices_cents is not None and len(current_prices_cents) == len(idx)
        return self._level * (prices / 100.0) ** -self._e[idx, None]

    def uncertain(self, skus: np.ndarray) -> np.ndarray:
        return np.array([str(s) in self._uncertain for s in skus], dtype=bool)


# -- random stores ------------------------------------------------------------------------------


@dataclass
class Store:
    products: pd.DataFrame
    elasticity: dict[str, float]
    uncertain: set[str]
    competitor: pd.Series


@st.composite
def stores(draw: st.DrawFn) -> Store:
    n = draw(st.integers(min_value=2, max_value=25))
    skus = [f"{i:03d}" for i in range(n)]
    rows: list[dict[str, Any]] = []
    for sku in skus:
        price = draw(st.one_of(st.integers(min_value=30, max_value=5_000), st.sampled_from([99, 149, 199, 249, 999])))
        cost: int | None = None
        if draw(st.integers(min_value=0, max_value=9)) > 0:  # one in ten has no cost
            share = draw(st.sampled_from([0, 20, 40, 55, 70, 80, 90, 100, 110, 130]))  # % of the price
            cost = price * share // 100
        rows.append(
            {
                "sku": sku, "name": f"item {sku}", "category": draw(st.sampled_from(CATEGORIES)),
                "brand": draw(st.sampled_from(BRANDS)), "size": np.nan, "unit": "l",
                "cost_cents": cost, "price_cents": price, "family": None, "ladder": None, "tier": None,
            }
        )
    coherent = draw(st.booleans())  # linked SKUs priced as if the links already held (fewer conflicts)
    base = {name: draw(st.integers(min_value=60, max_value=3_000)) for name in ("F0", "F1", "L0", "L1")}
    for row in rows:
        what = draw(st.sampled_from(["none", "none", "family", "ladder", "tier", "family+ladder"]))
        if "family" in what:
            row["family"] = draw(st.sampled_from(["F0", "F1"]))
            if coherent:
                row["price_cents"] = base[row["family"]]
        if "ladder" in what:
            row["ladder"] = draw(st.sampled_from(["L0", "L1"]))
            row["size"] = draw(st.sampled_from([0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]))
            if coherent and what == "ladder":
                row["price_cents"] = max(30, int(base[row["ladder"]] * row["size"] ** 0.8))
        if what == "tier":
            reference = draw(st.sampled_from(skus))
            if reference != row["sku"]:
                row["tier"] = reference
        if coherent and row["cost_cents"] is not None:
            row["cost_cents"] = min(row["cost_cents"], row["price_cents"] * 7 // 10)
    frame = pd.DataFrame(rows)
    frame["cost_cents"] = pd.array(frame["cost_cents"].tolist(), dtype="Int64")
    frame["price_cents"] = frame["price_cents"].astype(np.int64)
    frame["size"] = frame["size"].astype("Float64")
    for col in ("family", "ladder", "tier"):
        frame[col] = frame[col].astype("string")
    known = draw(st.lists(st.sampled_from(skus), unique=True, min_size=n - 2, max_size=n))
    elasticity = {sku: draw(st.floats(min_value=1.1, max_value=5.0)) for sku in skus if sku in known}
    uncertain = set(draw(st.lists(st.sampled_from(skus), unique=True, max_size=4)))
    competitor: dict[str, int] = {}
    for sku in draw(st.lists(st.sampled_from(skus), unique=True, max_size=6)):
        price = int(frame.loc[frame["sku"] == sku, "price_cents"].iloc[0])
        competitor[sku] = max(1, price * draw(st.integers(min_value=60, max_value=140)) // 100)
    return Store(frame, elasticity, uncertain, pd.Series(competitor, dtype=np.int64))


# -- random rule sets ---------------------------------------------------------------------------

ENDINGS = [".99", ".49", ".x9", ".95", ".x5", ".00", ".9x", ".29"]


def _money(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(min_value=low, max_value=high).map(lambda c: f"{c // 100}.{c % 100:02d}")


def _pct(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(min_value=low * 100, max_value=high * 100).map(lambda bp: str(Decimal(bp) / 100))


VALUES: dict[str, st.SearchStrategy[Any]] = {
    "margin_floor_pct": _pct(0, 50),
    "min_price": _money(1, 500),  # any min_price <= any max_price: every scope merges validly
    "max_price": _money(500, 10_000),
    "max_change_pct": _pct(1, 60),
    "max_change_abs": _money(5, 500),
    "uncertain_max_change_pct": _pct(1, 10),
    "endings": st.lists(st.sampled_from(ENDINGS), min_size=1, max_size=3, unique=True),
    "price_points": st.lists(_money(29, 6_000), min_size=1, max_size=6),
    "family": st.booleans(),
    "ladder": st.booleans(),
    "tier": _pct(0, 30),
    "competitor_index": st.tuples(st.integers(80, 100), st.integers(100, 130)).map(
        lambda t: {"min_pct": t[0], "max_pct": t[1]}
    ),
}


@st.composite
def setting(draw: st.DrawFn, name: str) -> tuple[Any, dict[str, Any]]:
    """A rule as written in the config (bare value or mapping) and as a canonical attribute dict."""
    value = draw(VALUES[name])
    if draw(st.booleans()):
        return value, {"value": value}
    canonical: dict[str, Any] = {}
    if draw(st.integers(0, 5)) > 0:
        canonical["value"] = value
    if draw(st.booleans()):
        canonical["hard"] = draw(st.booleans())
    if draw(st.booleans()):
        canonical["priority"] = draw(st.integers(0, 200))
    if draw(st.booleans()):
        canonical["penalty"] = draw(_money(1, 2_000))
    if not canonical:
        canonical["hard"] = False
    return dict(canonical), canonical


@st.composite
def scope(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    names = draw(st.lists(st.sampled_from(list(VALUES)), unique=True, max_size=5))
    written: dict[str, Any] = {}
    canonical: dict[str, dict[str, Any]] = {}
    for name in names:
        written[name], canonical[name] = draw(setting(name))
    if draw(st.integers(0, 4)) == 0:
        written["objective"] = {
            "maximize": draw(st.sampled_from(["profit", "revenue", "mix"])),
            "revenue_weight": draw(st.sampled_from(["0", "0.3", "1"])),
            "drift_penalty_pct": draw(st.sampled_from(["0", "1", "5"])),
        }
    return written, canonical


@dataclass
class Rules:
    config: RulesConfig
    scopes: dict[str, Any]  # canonical: default / categories / brands / skus -> rule -> attributes
    written: dict[str, Any] = field(default_factory=dict)

    def resolve(self, category: str, brand: str, sku: str) -> dict[str, dict[str, Any]]:
        """Per rule: value and hard, from the most specific scope that sets each attribute."""
        out = {name: {"value": BUILTIN_DEFAULTS[name], "hard": True} for name in VALUES}
        chain = [self.scopes["default"]]
        for table, key in (("categories", category), ("brands", brand), ("skus", sku)):
            if key in self.scopes[table]:
                chain.append(self.scopes[table][key])
        for rules in chain:
            for name, attrs in rules.items():
                out[name].update({k: v for k, v in attrs.items() if k in ("value", "hard")})
        return out


@st.composite
def rule_sets(draw: st.DrawFn, skus: list[str]) -> Rules:
    written: dict[str, Any] = {}
    canonical: dict[str, Any] = {}
    written["default"], canonical["default"] = draw(scope())
    for table, keys in (("categories", list(CATEGORIES)), ("brands", list(BRANDS)), ("skus", skus)):
        written[table], canonical[table] = {}, {}
        for key in draw(st.lists(st.sampled_from(keys), unique=True, max_size=3)):
            written[table][key], canonical[table][key] = draw(scope())
    written["on_conflict"] = draw(st.sampled_from(["relax", "hold"]))
    written["endings_force_change"] = draw(st.booleans())
    if draw(st.booleans()):
        budget: dict[str, Any] = {"hard": draw(st.booleans())}
        if draw(st.booleans()):
            budget["max_changes"] = draw(st.integers(0, len(skus)))
        else:
            budget["max_share_pct"] = draw(st.sampled_from(["0", "10", "25", "50", "100"]))
        if draw(st.booleans()):
            budget["penalty"] = draw(_money(1, 500))
        written["change_budget"] = budget
    if draw(st.booleans()):
        written["approval"] = {"max_change_pct": draw(st.sampled_from(["5", "15", "40"]))}
        if draw(st.booleans()):
            written["approval"]["max_change_abs"] = draw(_money(10, 300))
    written["max_candidates"] = draw(st.integers(2, 25))
    written["solver"] = {"time_limit_s": 10, "workers": 1, "group_solver": draw(st.sampled_from(["auto", "cpsat"]))}
    return Rules(RulesConfig.model_validate(written), canonical, written)


# -- independent checks -------------------------------------------------------------------------


def _dec(value: Any) -> Decimal:
    return Decimal(str(value))


def _cents(value: Any) -> int:
    cents = _dec(value) * 100
    assert cents == cents.to_integral_value()
    return int(cents)


def ending_ok(prices: np.ndarray, endings: list[str]) -> np.ndarray:
    """Does the '.DD' text of each price match one of the endings ('x': any digit)?"""
    tens, ones = (prices % 100) // 10, prices % 10
    ok = np.zeros(prices.shape, dtype=bool)
    for ending in endings:
        t, o = ending[1], ending[2]
        ok |= ((t == "x") | (tens == (0 if t == "x" else int(t)))) & ((o == "x") | (ones == (0 if o == "x" else int(o))))
    return ok


def _bp(value: Any) -> int:
    """A percentage as whole basis points (the configs allow two decimals)."""
    bp = _dec(value) * 100
    assert bp == bp.to_integral_value()
    return int(bp)


def rule_checks(
    prices: np.ndarray, rules: dict[str, dict[str, Any]], cost: int, old: int, uncertain: bool, reference: int | None,
    force_endings: bool = True,
) -> dict[str, np.ndarray]:
    """Per rule that applies: does each price obey it? Exact, in integers (cents x basis points).
    Without ``force_endings`` the endings apply to new prices only: today's price obeys them."""
    value = {name: r["value"] for name, r in rules.items()}
    out: dict[str, np.ndarray] = {}
    out["margin_floor_pct"] = prices * 10_000 >= cost * (10_000 + _bp(value["margin_floor_pct"]))
    out["min_price"] = prices >= _cents(value["min_price"])
    out["max_price"] = prices <= _cents(value["max_price"])
    out["max_change_pct"] = np.abs(prices - old) * 10_000 <= old * _bp(value["max_change_pct"])
    if value["max_change_abs"] is not None:
        out["max_change_abs"] = np.abs(prices - old) <= _cents(value["max_change_abs"])
    if uncertain:
        out["uncertain_max_change_pct"] = np.abs(prices - old) * 10_000 <= old * _bp(value["uncertain_max_change_pct"])
    band = value["competitor_index"]
    if band is not None and reference is not None:
        out["competitor_index"] = (reference * _bp(band["min_pct"]) <= prices * 10_000) & (
            prices * 10_000 <= reference * _bp(band["max_pct"])
        )
    if value["price_points"] is not None:
        out["price_points"] = np.isin(prices, [_cents(v) for v in value["price_points"]])
    else:
        out["endings"] = ending_ok(prices, value["endings"]) | (not force_endings and prices == old)
    return out


def hard_rules(rules: dict[str, dict[str, Any]], checks: dict[str, np.ndarray]) -> list[str]:
    return [name for name in checks if rules[name]["hard"]]


@dataclass
class Info:
    """What the test knows about one SKU, from the raw inputs."""

    sku: str
    category: str
    brand: str
    cost: int | None
    old: int
    known: bool
    uncertain: bool
    reference: int | None
    rules: dict[str, dict[str, Any]]
    family: str | None
    ladder: str | None
    size: float
    tier: str | None
    force_endings: bool = True

    def checks(self, prices: np.ndarray) -> dict[str, np.ndarray]:
        assert self.cost is not None
        return rule_checks(prices, self.rules, self.cost, self.old, self.uncertain, self.reference, self.force_endings)

    def feasible(self) -> bool:
        """Does some price obey every hard rule (and cost)?"""
        assert self.cost is not None
        checks = self.checks(SCAN)
        ok = SCAN >= self.cost
        for name in hard_rules(self.rules, checks):
            ok &= checks[name]
        return bool(ok.any())


def infos(store: Store, rules: Rules) -> dict[str, Info]:
    out: dict[str, Info] = {}
    for row in store.products.itertuples(index=False):
        sku = str(row.sku)
        out[sku] = Info(
            sku=sku, category=str(row.category), brand=str(row.brand),
            cost=None if pd.isna(row.cost_cents) else int(row.cost_cents), old=int(row.price_cents),
            known=sku in store.elasticity, uncertain=sku in store.uncertain,
            reference=int(store.competitor[sku]) if sku in store.competitor.index else None,
            rules=rules.resolve(str(row.category), str(row.brand), sku),
            family=None if pd.isna(row.family) else str(row.family),
            ladder=None if pd.isna(row.ladder) else str(row.ladder),
            size=float(row.size) if not pd.isna(row.size) else float("nan"),
            tier=None if pd.isna(row.tier) else str(row.tier),
            force_endings=rules.config.endings_force_change,
        )
    return out


def in_candidates(line: PlanLine) -> bool:
    """Did the SKU reach the optimizer (priced, or held only because its group conflicts)?"""
    return line.status in PRICED or "the group's hard rules conflict" in line.explanation


def check_line(line: PlanLine, info: Info, on_conflict: str) -> None:
    if not info.known:
        assert line.status == "held" and line.new_cents == line.old_cents
        assert "no demand model" in line.explanation
        return
    if info.cost is None:
        assert line.status == "held" and line.new_cents == line.old_cents, f"{line.sku}: no cost but {line.status}"
        assert "no cost" in line.explanation
        return
    feasible = info.feasible()
    if line.status == "held":
        assert line.new_cents == line.old_cents
        assert on_conflict == "hold", f"{line.sku} held with on_conflict relax: {line.explanation}"
        named = BOUND_RULES + SET_RULES + LINK_RULES
        assert any(name in line.explanation for name in named), line.explanation
        assert "held" in line.explanation
        if not feasible:
            assert "rules conflict" in line.explanation, line.explanation
        return
    assert line.status in PRICED
    assert feasible or on_conflict == "relax", f"{line.sku}: hard rules conflict but priced with on_conflict hold"
    new = line.new_cents
    assert new >= 1
    assert new >= info.cost, f"{line.sku}: {new} below cost {info.cost}"
    assert (line.status == "keep") == (new == line.old_cents)
    relaxed = set(line.relaxed_rules)
    if feasible:
        assert not relaxed - set(LINK_RULES), f"{line.sku}: relaxed {relaxed} although a price obeys every hard rule"
    else:
        assert relaxed - set(LINK_RULES), f"{line.sku}: hard rules conflict but nothing reported relaxed"
    checks = info.checks(np.array([new], dtype=np.int64))
    for name in hard_rules(info.rules, checks):
        if name not in relaxed:
            assert checks[name][0], f"{line.sku}: {new} (old {line.old_cents}, cost {info.cost}) breaks hard {name}"
    broken = [name for name, ok in checks.items() if not ok[0]]
    assert set(broken) <= relaxed | set(line.soft_rules_broken), (
        f"{line.sku}: {new} breaks {broken}, reported relaxed {relaxed}, soft broken {line.soft_rules_broken}"
    )
    # what a line reports are rules of the config, and true
    named = set(BOUND_RULES + SET_RULES + LINK_RULES)
    assert relaxed <= named and set(line.soft_rules_broken) <= named, (line.relaxed_rules, line.soft_rules_broken)
    for name in set(line.soft_rules_broken) - set(LINK_RULES):
        assert not info.rules[name]["hard"], f"{line.sku}: {name} reported as a broken soft rule but it is hard"
        assert name in broken, f"{line.sku}: {new} reported breaking {name}, which it obeys"


def check_families(lines: dict[str, PlanLine], info: dict[str, Info]) -> None:
    members: dict[str, list[str]] = {}
    for sku, i in sorted(info.items()):
        if i.family is not None and i.rules["family"]["value"] and in_candidates(lines[sku]):
            members.setdefault(i.family, []).append(sku)
    for skus in members.values():
        for a, b in pairwise(skus):  # a chain; each link enforced as the first member's rule says
            la, lb = lines[a], lines[b]
            if not info[a].rules["family"]["hard"] or la.status == "held" or lb.status == "held":
                continue
            if "family" in la.relaxed_rules or "family" in lb.relaxed_rules:
                continue
            assert la.new_cents == lb.new_cents, f"family {info[a].family}: {a} {la.new_cents} != {b} {lb.new_cents}"


def check_ladders(lines: dict[str, PlanLine], info: dict[str, Info]) -> None:
    by_ladder: dict[str, dict[float, list[str]]] = {}
    for sku, i in sorted(info.items()):
        if i.ladder is not None and i.rules["ladder"]["value"] and in_candidates(lines[sku]):
            by_ladder.setdefault(i.ladder, {}).setdefault(i.size, []).append(sku)
    for name, sizes in by_ladder.items():
        ordered = sorted(sizes)
        for small, large in pairwise(ordered):  # every SKU of one size against every SKU of the next
            for a in sizes[small]:
                for b in sizes[large]:
                    la, lb = lines[a], lines[b]
                    if not info[a].rules["ladder"]["hard"] or la.status == "held" or lb.status == "held":
                        continue
                    if "ladder" in la.relaxed_rules or "ladder" in lb.relaxed_rules:
                        continue
                    pa, pb = la.new_cents, lb.new_cents
                    assert pb > pa, f"ladder {name}: {b} (size {large}) {pb} <= {a} (size {small}) {pa}"
                    assert pb * small < pa * large, f"ladder {name}: {b} per unit not below {a}: {pb}/{large} vs {pa}/{small}"


def check_tiers(lines: dict[str, PlanLine], info: dict[str, Info]) -> None:
    for sku, i in info.items():
        if i.tier is None or not in_candidates(lines[sku]) or not in_candidates(lines[i.tier]):
            continue
        la, lb = lines[sku], lines[i.tier]
        if not i.rules["tier"]["hard"] or la.status == "held" or lb.status == "held":
            continue
        if "tier" in la.relaxed_rules or "tier" in lb.relaxed_rules:
            continue
        gap = _dec(i.rules["tier"]["value"])
        assert la.new_cents * 10_000 <= lb.new_cents * (10_000 - _bp(gap)), (
            f"tier: {sku} {la.new_cents} not {gap}% below {i.tier} {lb.new_cents}"
        )


def check_budget(plan: PricePlan, rules: Rules) -> None:
    budget = rules.config.change_budget
    changed = [line for line in plan.lines if line.status in ("change", "approval")]
    assert plan.solver.changes == len(changed)
    if budget is None or not budget.hard or plan.solver.budget_relaxed:
        return
    priced = sum(in_candidates(line) for line in plan.lines)
    if budget.max_changes is not None:
        limit = budget.max_changes
    else:
        limit = int(Decimal(str(budget.max_share_pct)) * priced / 100)
    assert len(changed) <= limit, f"{len(changed)} changes over the hard budget {limit}"


def check_approval(plan: PricePlan, rules: Rules) -> None:
    """A change waits for approval when it is beyond the band, when its price set (endings or
    price points) was relaxed, or when a change of its linked group waits (a group moves as one)."""
    band = rules.config.approval
    moving = [line for line in plan.lines if line.status in ("change", "approval")]

    def beyond(line: PlanLine) -> bool:
        delta = abs(line.new_cents - line.old_cents)
        return band is not None and (
            (band.max_change_abs is not None and delta > _cents(band.max_change_abs))
            or (band.max_change_pct is not None and Decimal(delta) * 100 > band.max_change_pct * line.old_cents)
        )

    def own(line: PlanLine) -> bool:
        return beyond(line) or bool(set(line.relaxed_rules) & set(SET_RULES))

    waiting_groups = {line.group for line in moving if line.group and own(line)}
    for line in moving:
        expected = own(line) or (line.group is not None and line.group in waiting_groups)
        assert (line.status == "approval") == expected, f"{line.sku}: {line.status} (group {line.group})"


@st.composite
def cases(draw: st.DrawFn) -> tuple[Store, Rules]:
    store = draw(stores())
    rules = draw(rule_sets(store.products["sku"].tolist()))
    return store, rules


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(cases())
def test_no_emitted_price_breaks_a_hard_rule(case: tuple[Store, Rules]) -> None:
    store, rules = case
    model = FakeDemand(store.elasticity, uncertain=store.uncertain)
    plan = run_pricing_cycle(
        store.products, model, rules.config, store="S1", model_name="fake", now=NOW, competitor=store.competitor
    )
    assert [line.sku for line in plan.lines] == store.products["sku"].tolist()
    lines = {line.sku: line for line in plan.lines}
    info = infos(store, rules)
    for line in plan.lines:
        check_line(line, info[line.sku], rules.config.on_conflict)
    check_families(lines, info)
    check_ladders(lines, info)
    check_tiers(lines, info)
    check_budget(plan, rules)
    check_approval(plan, rules)
