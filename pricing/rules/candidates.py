"""Candidate prices per SKU, from the pricing rules. Plain data in, plain data out.

Each SKU's rules (resolved default -> category -> brand -> SKU) give bounds in integer cents:

- lower: min_price, margin floor (cost x (1 + pct)), max change down (% and amount, and the
  tighter % for SKUs with an uncertain demand estimate), competitor band; never below cost;
- upper: max_price, max change up, competitor band;
- a set of allowed prices: the endings ('.99', '.x9'), or explicit price points.

Hard rules make the allowed range [lo, hi] on the allowed set. Endings apply to new prices: unless
``endings_force_change`` is set, today's price stays allowed when it breaks only the endings (so no
price changes just to end right). When the rules leave no allowed price they conflict: with
``on_conflict: relax`` the lowest-priority rule among the two binding bounds and the price set is
dropped, again until a price is possible, and each SKU carries the rules it relaxed and which
rules each gave way to; with ``hold`` the SKU is held at today's price with the reason. Soft rules do
not narrow the range: a candidate that breaks one pays its penalty (``penalty``, cents per day),
and the candidates include the edge of the soft range so obeying stays possible.

Candidates are up to ``max_candidates`` allowed prices spread evenly over the range (an ending
set repeats every 100 cents, so no price list is built), plus today's price when the hard rules
allow it (so "no change" is always an option when it is legal) and the soft edges. Members of a
price family get one shared grid (the prices every member allows), so the optimizer can give
them one price. A SKU with no cost is held, never priced.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from pricing.rules.config import ResolvedRules, RulesConfig

NO_CANDIDATE = -1
BIG = 10**12  # an upper bound that binds nothing
# Bound rules, in the order of the bound arrays; "cost" (never below cost) is not relaxable.
BOUND_RULES = (
    "min_price",
    "max_price",
    "margin_floor_pct",
    "max_change_pct",
    "uncertain_max_change_pct",
    "max_change_abs",
    "competitor_index",
    "cost",
)
SET_RULE = len(BOUND_RULES)  # bit of the price-set rule (endings or price_points) in violation masks
RULE_BITS = (*BOUND_RULES, "price_set")
LOWER_RULES = ("min_price", "margin_floor_pct", "max_change_pct", "uncertain_max_change_pct", "max_change_abs",
               "competitor_index", "cost")
UPPER_RULES = ("max_price", "max_change_pct", "uncertain_max_change_pct", "max_change_abs", "competitor_index")
_NEVER = 10**9  # priority of the cost guard
_RULE_DTYPE = "<U32"
_FAMILY_SCAN = 400  # shared-ending prices sampled across a family's range before thinning to k

# Per-SKU settings the optimizer needs, from the resolved rules.
SETTINGS = (
    "revenue_weight", "drift_pct", "family_on", "family_hard", "family_priority", "family_penalty",
    "ladder_on", "ladder_hard", "ladder_priority", "ladder_penalty",
    "tier_gap_bp", "tier_hard", "tier_priority", "tier_penalty",
)


@dataclass(frozen=True)
class Held:
    sku: str
    reason: str


@dataclass
class Candidates:
    """Candidate prices for the SKUs that can be priced.

    ``prices`` is (n_skus, k) integer cents, padded with NO_CANDIDATE where ``valid`` is False;
    each row is sorted ascending over its valid entries. ``lo``/``hi`` are the hard range and
    ``lo_rule``/``hi_rule`` name the rule that set each end; ``below``/``above`` are the allowed
    prices just outside it. ``penalty`` is what the soft rules a candidate breaks cost (cents
    per day) and ``violations`` their bits (names in RULE_BITS). ``relaxed`` lists the hard rules
    relaxed per SKU and ``relaxed_for`` a sentence per relaxed rule naming the rules it gave way
    to. ``row`` is each SKU's position in the products frame. ``set_rule`` names each SKU's
    price-set rule (endings or price_points); ``set_hard`` is True where it is still a hard rule
    (not soft, not relaxed); ``current_off_set`` marks today's prices outside the set and
    ``keeps_current`` the SKUs whose today's price may stay although it breaks the endings
    (``endings_force_change: false``). For a member of a price family priced on a shared grid,
    ``family_lo_sku``/``family_hi_sku`` name the member whose own range set the grid's lower or
    upper end when that is not the SKU itself (else None), and ``family_lo``/``family_hi`` give it.
    """

    skus: np.ndarray
    prices: np.ndarray
    valid: np.ndarray
    current: np.ndarray
    cost: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    lo_rule: np.ndarray
    hi_rule: np.ndarray
    below: np.ndarray
    above: np.ndarray
    held: list[Held]
    penalty: np.ndarray
    violations: np.ndarray
    relaxed: np.ndarray
    row: np.ndarray
    settings: dict[str, np.ndarray]
    set_rule: np.ndarray
    relaxed_for: np.ndarray | None = None
    set_hard: np.ndarray | None = None
    current_off_set: np.ndarray | None = None
    keeps_current: np.ndarray | None = None
    family_lo_sku: np.ndarray | None = None
    family_hi_sku: np.ndarray | None = None
    family_lo: np.ndarray | None = None
    family_hi: np.ndarray | None = None

    @property
    def current_index(self) -> np.ndarray:
        """Column of the current price in each row, or NO_CANDIDATE where it is not a candidate."""
        hit = self.valid & (self.prices == self.current[:, None])
        return np.where(hit.any(axis=1), hit.argmax(axis=1), NO_CANDIDATE)

    def broken_rules(self, i: int, j: int) -> list[str]:
        """The soft rules candidate j of SKU i breaks."""
        bits = int(self.violations[i, j])
        # the price-set bit by the rule's own name: endings or price_points
        return [str(self.set_rule[i]) if name == "price_set" else name
                for b, name in enumerate(RULE_BITS) if bits >> b & 1]


# -- allowed price sets ----------------------------------------------------------------------


def ending_offsets(endings: tuple[str, ...]) -> np.ndarray:
    """The allowed values of (price in cents) mod 100, sorted: ('.99', '.x9') -> [9, 19, ..., 99]."""
    allowed = set()
    for ending in endings:
        tens, ones = ending[1], ending[2]
        for t in range(10) if tens == "x" else (int(tens),):
            for o in range(10) if ones == "x" else (int(ones),):
                allowed.add(10 * t + o)
    return np.array(sorted(allowed), dtype=np.int64)


@dataclass(frozen=True)
class PriceSet:
    """Allowed prices, numbered from 0: a set of endings repeating every 100 cents, or explicit points."""

    offsets: np.ndarray | None = None
    points: np.ndarray | None = None

    @classmethod
    def of(cls, rules: ResolvedRules) -> PriceSet:
        if rules.price_points_cents is not None:
            return cls(points=np.array(rules.price_points_cents, dtype=np.int64))
        return cls(offsets=ending_offsets(rules.endings))

    @property
    def name(self) -> str:
        return "price_points" if self.points is not None else "endings"

    def at_or_above(self, price: np.ndarray) -> np.ndarray:
        """Index of the first allowed price >= price (past the end for points: len(points))."""
        if self.points is not None:
            return np.searchsorted(self.points, price, side="left")
        assert self.offsets is not None
        block, rest = np.divmod(price, 100)
        return block * len(self.offsets) + np.searchsorted(self.offsets, rest, side="left")

    def at_or_below(self, price: np.ndarray) -> np.ndarray:
        """Index of the last allowed price <= price (-1 if none)."""
        if self.points is not None:
            return np.searchsorted(self.points, price, side="right") - 1
        assert self.offsets is not None
        block, rest = np.divmod(price, 100)
        return block * len(self.offsets) + np.searchsorted(self.offsets, rest, side="right") - 1

    def price(self, index: np.ndarray) -> np.ndarray:
        if self.points is not None:
            return self.points[np.clip(index, 0, len(self.points) - 1)]
        assert self.offsets is not None
        block, pos = np.divmod(index, len(self.offsets))
        return block * 100 + self.offsets[pos]

    def contains(self, price: np.ndarray) -> np.ndarray:
        if self.points is not None:
            return np.isin(price, self.points)
        assert self.offsets is not None
        return np.isin(np.asarray(price) % 100, self.offsets)

    def key(self) -> tuple[str, tuple[int, ...]]:
        values = self.points if self.points is not None else self.offsets
        assert values is not None
        return self.name, tuple(values.tolist())


ANY_CENT = PriceSet(offsets=np.arange(100, dtype=np.int64))


# -- per-SKU rule arrays ---------------------------------------------------------------------


def _basis_points(pct: Decimal) -> int:
    bp = pct * 100
    if bp != bp.to_integral_value():
        raise ValueError(f"percentage {pct} has more than two decimals")
    return int(bp)


def _ceil_scale(cents: np.ndarray, bp: int | np.ndarray) -> np.ndarray:
    """ceil(cents x (10000 + bp) / 10000), exactly, in integers."""
    return -((-cents * (10_000 + bp)) // 10_000)


def _floor_scale(cents: np.ndarray, bp: int | np.ndarray) -> np.ndarray:
    return (cents * (10_000 + bp)) // 10_000


@dataclass
class _Rules:
    """Bounds and enforcement of every rule for a set of SKUs: (rules, n) arrays."""

    lower: np.ndarray
    upper: np.ndarray
    hard: np.ndarray
    priority: np.ndarray
    penalty: np.ndarray
    set_id: np.ndarray  # (n,) index into the price sets
    set_hard: np.ndarray
    set_priority: np.ndarray
    set_penalty: np.ndarray
    settings: dict[str, np.ndarray]


def _scope_rules(
    rules: ResolvedRules, cost: np.ndarray, current: np.ndarray, uncertain: np.ndarray, reference: np.ndarray
) -> tuple[list[np.ndarray], list[np.ndarray], list[bool], list[int], list[int]]:
    """Lower and upper bounds per bound rule (BOUND_RULES order) for SKUs sharing one rule set."""
    n = len(current)
    none_lo, none_hi = np.zeros(n, dtype=np.int64), np.full(n, BIG, dtype=np.int64)
    change = _basis_points(rules.max_change_pct)
    tight = _basis_points(rules.uncertain_max_change_pct)
    lower = [
        np.full(n, rules.min_price_cents, dtype=np.int64),
        none_lo,
        _ceil_scale(cost, _basis_points(rules.margin_floor_pct)),
        _ceil_scale(current, -change),
        np.where(uncertain, _ceil_scale(current, -tight), 0),
        none_lo if rules.max_change_abs_cents is None else current - rules.max_change_abs_cents,
        none_lo,
        np.maximum(cost, 1),  # never below cost, and never free (a cost of 0 must not price at 0)
    ]
    upper = [
        none_hi,
        np.full(n, rules.max_price_cents, dtype=np.int64),
        none_hi,
        _floor_scale(current, change),
        np.where(uncertain, _floor_scale(current, tight), BIG),
        none_hi if rules.max_change_abs_cents is None else current + rules.max_change_abs_cents,
        none_hi,
        none_hi,
    ]
    band = rules.competitor_band
    if band is not None:
        known = reference > 0
        lower[6] = np.where(known, _ceil_scale(reference, _basis_points(band.min_pct) - 10_000), 0)
        upper[6] = np.where(known, _floor_scale(reference, _basis_points(band.max_pct) - 10_000), BIG)
    enforcement = [rules.enforcement[name] for name in BOUND_RULES[:-1]]
    hard = [e.hard for e in enforcement] + [True]
    priority = [e.priority for e in enforcement] + [_NEVER]
    penalty = [e.penalty_cents for e in enforcement] + [0]
    return lower, upper, hard, priority, penalty


def _settings(rules: ResolvedRules, n: int) -> dict[str, np.ndarray]:
    weight = {"profit": 0.0, "revenue": 1.0, "mix": float(rules.revenue_weight)}[rules.maximize]
    values: dict[str, Any] = {
        "revenue_weight": weight,
        "drift_pct": float(rules.drift_penalty_pct),
        "tier_gap_bp": _basis_points(rules.tier_gap_pct),
    }
    for group in ("family", "ladder", "tier"):
        e = rules.enforcement[group]
        values[f"{group}_hard"], values[f"{group}_priority"], values[f"{group}_penalty"] = e.hard, e.priority, e.penalty_cents
    values["family_on"], values["ladder_on"] = rules.family, rules.ladder
    return {key: np.full(n, values[key]) for key in SETTINGS}


def _resolve_all(
    products: pd.DataFrame, rules: RulesConfig, uncertain: np.ndarray, reference: np.ndarray
) -> tuple[_Rules, list[PriceSet]]:
    """Every rule for every product row, resolving once per distinct scope chain."""
    n = len(products)
    cost = products["cost_cents"].to_numpy(dtype=np.int64)
    current = products["price_cents"].to_numpy(dtype=np.int64)
    r = len(BOUND_RULES)
    out = _Rules(
        lower=np.zeros((r, n), dtype=np.int64), upper=np.zeros((r, n), dtype=np.int64),
        hard=np.zeros((r, n), dtype=bool), priority=np.zeros((r, n), dtype=np.int64),
        penalty=np.zeros((r, n), dtype=np.int64), set_id=np.zeros(n, dtype=np.int64),
        set_hard=np.zeros(n, dtype=bool), set_priority=np.zeros(n, dtype=np.int64),
        set_penalty=np.zeros(n, dtype=np.int64), settings={},
    )
    settings = {key: np.zeros(n) for key in SETTINGS}
    sets: dict[tuple[str, tuple[int, ...]], int] = {}
    price_sets: list[PriceSet] = []
    brand = products["brand"].astype(str) if "brand" in products.columns else pd.Series("", index=products.index)
    sku = products["sku"].astype(str)
    scope = pd.DataFrame(
        {
            "category": products["category"].astype(str).to_numpy(),
            "brand": np.where(brand.isin(list(rules.brands)), brand, ""),
            "sku": np.where(sku.isin(list(rules.skus)), sku, ""),
        }
    )
    for (category, brand, sku), rows in scope.groupby(["category", "brand", "sku"], sort=True).indices.items():
        resolved = rules.resolve(category, brand or None, sku or None)
        lower, upper, hard, priority, penalty = _scope_rules(
            resolved, cost[rows], current[rows], uncertain[rows], reference[rows]
        )
        out.lower[:, rows], out.upper[:, rows] = np.stack(lower), np.stack(upper)
        out.hard[:, rows] = np.array(hard)[:, None]
        out.priority[:, rows] = np.array(priority)[:, None]
        out.penalty[:, rows] = np.array(penalty)[:, None]
        price_set = PriceSet.of(resolved)
        set_index = sets.setdefault(price_set.key(), len(price_sets))
        if set_index == len(price_sets):
            price_sets.append(price_set)
        out.set_id[rows] = set_index
        enforcement = resolved.enforcement[price_set.name]
        out.set_hard[rows], out.set_priority[rows], out.set_penalty[rows] = (
            enforcement.hard, enforcement.priority, enforcement.penalty_cents
        )
        for key, values in _settings(resolved, len(rows)).items():
            settings[key][rows] = values
    out.settings = settings
    return out, price_sets


# -- hard range and relaxation ---------------------------------------------------------------


@dataclass
class _Range:
    lo: np.ndarray
    hi: np.ndarray
    lo_arg: np.ndarray
    hi_arg: np.ndarray
    set_active: np.ndarray
    active: np.ndarray  # (rules, n) hard rules still in force


def _hard_range(r: _Rules, active: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    lowers = np.where(active, r.lower, 0)
    uppers = np.where(active, r.upper, BIG)
    lo_arg, hi_arg = lowers.argmax(axis=0), uppers.argmin(axis=0)
    cols = np.arange(lowers.shape[1])
    return lowers[lo_arg, cols], uppers[hi_arg, cols], lo_arg, hi_arg


def _count(lo: np.ndarray, hi: np.ndarray, set_id: np.ndarray, set_active: np.ndarray, sets: list[PriceSet]) -> np.ndarray:
    """Allowed prices in [lo, hi] per SKU, on its set (or any cent where the set is not a hard rule)."""
    count = np.zeros(len(lo), dtype=np.int64)
    for s, rows in _by_set(set_id, set_active, sets):
        count[rows] = s.at_or_below(hi[rows]) - s.at_or_above(lo[rows]) + 1
    return np.where(lo <= hi, np.maximum(count, 0), 0)


def _by_set(set_id: np.ndarray, set_active: np.ndarray, sets: list[PriceSet]) -> list[tuple[PriceSet, np.ndarray]]:
    groups = [(ANY_CENT, np.flatnonzero(~set_active))]
    for index, price_set in enumerate(sets):
        groups.append((price_set, np.flatnonzero(set_active & (set_id == index))))
    return [(s, rows) for s, rows in groups if len(rows)]


def _money(cents: int | np.integer) -> str:
    return f"{int(cents) / 100:.2f}"


def _gave_way(
    which: int, row: int, lo: np.ndarray, hi: np.ndarray, lo_arg: np.ndarray, hi_arg: np.ndarray,
    crossed: bool, set_name: str,
) -> str:
    """Why the rule relaxed at ``row`` (0: the lower bound's, 1: the upper bound's, 2: the price
    set) was relaxed: the rules it gave way to, with their numbers."""
    low, high = BOUND_RULES[lo_arg[row]], BOUND_RULES[hi_arg[row]]
    if which == 2:
        return (f"{set_name} relaxed for {low} and {high}: no {set_name} price between "
                f"{_money(lo[row])} and {_money(hi[row])}")
    relaxed, other = (low, high) if which == 0 else (high, low)
    limits = f"{low} needs >= {_money(lo[row])}, {high} allows <= {_money(hi[row])}"
    if crossed:
        return f"{relaxed} relaxed for {other} ({limits})"
    return f"{relaxed} relaxed for {other} and {set_name} ({limits}, no {set_name} price between)"


def _relax(
    r: _Rules, sets: list[PriceSet], *, relax: bool, current: np.ndarray, keep: np.ndarray, set_names: np.ndarray
) -> tuple[_Range, np.ndarray, np.ndarray, list[list[str]]]:
    """The hard range per SKU, relaxing conflicting hard rules lowest priority first.

    ``keep`` marks SKUs whose today's price stays allowed when it breaks only the price set (so
    they have a price whenever today's is in range). Returns the range, the relaxed rule bits per
    SKU, a mask of SKUs left without a price (with ``relax`` False: every SKU whose hard rules
    conflict) and per SKU a sentence for each rule it relaxed, naming the rules it gave way to.
    """
    active = r.hard.copy()
    set_active = r.set_hard.copy()
    n = active.shape[1]
    relaxed = np.zeros(n, dtype=np.int64)
    gave_way: list[list[str]] = [[] for _ in range(n)]

    def no_price(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        today_ok = keep & set_active & (current >= lo) & (current <= hi)
        return (_count(lo, hi, r.set_id, set_active, sets) <= 0) & ~today_ok

    for _ in range(len(BOUND_RULES) + 2):
        lo, hi, lo_arg, hi_arg = _hard_range(r, active)
        stuck = no_price(lo, hi)
        if not stuck.any() or not relax:
            break
        idx = np.flatnonzero(stuck)
        crossed = lo[idx] > hi[idx]  # then the price set is not what conflicts
        options = np.stack(
            [
                np.where(lo[idx] > 0, r.priority[lo_arg[idx], idx], _NEVER + 1),
                np.where(hi[idx] < BIG, r.priority[hi_arg[idx], idx], _NEVER + 1),
                np.where(set_active[idx] & ~crossed, r.set_priority[idx], _NEVER + 1),
            ]
        )
        pick = options.argmin(axis=0)
        for which, rule_of in ((0, lo_arg), (1, hi_arg)):
            rows = idx[pick == which]
            rules_here = rule_of[rows]
            unrelaxable = r.priority[rules_here, rows] >= _NEVER
            rows, rules_here = rows[~unrelaxable], rules_here[~unrelaxable]
            for row in rows.tolist():
                gave_way[row].append(
                    _gave_way(which, row, lo, hi, lo_arg, hi_arg, bool(lo[row] > hi[row]), str(set_names[row]))
                )
            active[rules_here, rows] = False
            relaxed[rows] |= 1 << rules_here
        rows = idx[pick == 2]
        for row in rows.tolist():
            gave_way[row].append(_gave_way(2, row, lo, hi, lo_arg, hi_arg, False, str(set_names[row])))
        set_active[rows] = False
        relaxed[rows] |= 1 << SET_RULE
    lo, hi, lo_arg, hi_arg = _hard_range(r, active)
    stuck = no_price(lo, hi)
    return _Range(lo, hi, lo_arg, hi_arg, set_active, active), relaxed, stuck, gave_way


# -- the grid --------------------------------------------------------------------------------


def _grid_rows(price_set: PriceSet, lo: np.ndarray, hi: np.ndarray, k: int, extra: np.ndarray) -> np.ndarray:
    """k allowed prices spread over [lo, hi] plus the ``extra`` columns (already allowed or dropped by the caller)."""
    first, last = price_set.at_or_above(lo), price_set.at_or_below(hi)
    count = np.maximum(last - first + 1, 1)
    steps = np.linspace(0.0, 1.0, k)
    spread = first[:, None] + np.rint(steps[None, :] * (count - 1)[:, None]).astype(np.int64)
    return np.concatenate([price_set.price(spread), extra], axis=1)


def _soft_edges(r: _Rules, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The soft range inside the hard one: where every soft bound rule is obeyed (if anywhere)."""
    soft = ~r.hard
    s_lo = np.maximum(np.where(soft, r.lower, 0).max(axis=0), lo)
    s_hi = np.minimum(np.where(soft, r.upper, BIG).min(axis=0), hi)
    return s_lo, s_hi


def _grids(
    r: _Rules, rng: _Range, sets: list[PriceSet], current: np.ndarray, k: int, family_grid: dict[int, np.ndarray],
    keep: np.ndarray,
) -> np.ndarray:
    """(n, k + 3) candidate prices before de-duplication: the spread, today's price, the soft edges.

    Where ``keep`` is set, today's price is a candidate when it is in range even if it breaks the
    price set; a SKU whose range then holds no set price has today's price as its only candidate."""
    n = len(current)
    out = np.zeros((n, k + 3), dtype=np.int64)
    s_lo, s_hi = _soft_edges(r, rng.lo, rng.hi)
    in_range = (current >= rng.lo) & (current <= rng.hi)
    only_today = keep & rng.set_active & in_range & (_count(rng.lo, rng.hi, r.set_id, rng.set_active, sets) <= 0)
    for price_set, rows in _by_set(r.set_id, np.ones(n, dtype=bool), sets):
        # The SKU's price set shapes the grid wherever it has prices in range (a soft or relaxed
        # set too); otherwise any cent does.
        has = (price_set.at_or_below(rng.hi[rows]) >= price_set.at_or_above(rng.lo[rows])) & (rng.lo[rows] <= rng.hi[rows])
        for use, sub in ((price_set, rows[has]), (ANY_CENT, rows[~has])):
            if not len(sub):
                continue
            cur = current[sub]
            cur_ok = in_range[sub] & (~rng.set_active[sub] | use.contains(cur) | keep[sub])
            up = use.price(use.at_or_above(s_lo[sub]))
            down = use.price(use.at_or_below(s_hi[sub]))
            fill = use.price(use.at_or_above(rng.lo[sub]))
            extra = np.stack(
                [
                    np.where(cur_ok, cur, fill),
                    np.where((up >= rng.lo[sub]) & (up <= rng.hi[sub]), up, fill),
                    np.where((down >= rng.lo[sub]) & (down <= rng.hi[sub]), down, fill),
                ],
                axis=1,
            )
            out[sub] = _grid_rows(use, rng.lo[sub], rng.hi[sub], k, extra)
    out[only_today] = current[only_today][:, None]
    for i, grid in family_grid.items():
        out[i] = np.resize(grid, k + 3)
    return out


def _shared_set(active: list[PriceSet]) -> PriceSet | None:
    """A price set to draw a family's shared prices from: the first explicit price points among
    the members' hard sets (filtered by the others afterwards), else the endings they all allow
    (None if they share none)."""
    for price_set in active:
        if price_set.points is not None:
            return price_set
    offsets = ANY_CENT.offsets
    assert offsets is not None
    for price_set in active:
        assert price_set.offsets is not None
        offsets = np.intersect1d(offsets, price_set.offsets)
    return PriceSet(offsets=offsets) if len(offsets) else None


@dataclass
class _FamilyGrids:
    """Shared grids (row -> prices), families whose members share no price (row -> name), and per
    row the member whose own range set the shared lower / upper end (row -> that member's row)."""

    grids: dict[int, np.ndarray]
    conflicts: dict[int, str]
    lo_by: dict[int, int]
    hi_by: dict[int, int]


def _family_grids(
    products: pd.DataFrame, r: _Rules, rng: _Range, sets: list[PriceSet], current: np.ndarray, k: int,
    held: np.ndarray, keep: np.ndarray,
) -> _FamilyGrids:
    """A shared grid per price family: prices every member allows (today's shared price too when
    every member may keep it, see ``keep``)."""
    out = _FamilyGrids({}, {}, {}, {})
    grids, conflicts = out.grids, out.conflicts
    if "family" not in products.columns:
        return out
    family = products["family"].astype("string").to_numpy(dtype=object, na_value=None)
    on = r.settings["family_on"].astype(bool) & ~held
    rows_with = np.flatnonzero(on & pd.notna(family))
    if not len(rows_with):
        return out
    for name, members in pd.Series(rows_with).groupby(family[rows_with], sort=True):
        rows = members.to_numpy()
        if len(rows) < 2:
            continue
        lo, hi = rng.lo[rows].max(), rng.hi[rows].min()
        lo_by, hi_by = int(rows[rng.lo[rows].argmax()]), int(rows[rng.hi[rows].argmin()])
        base = _shared_set([sets[r.set_id[row]] for row in rows if rng.set_active[row]])
        prices = np.zeros(0, dtype=np.int64)
        if base is not None and lo <= hi:
            start, stop = base.at_or_above(np.array([lo]))[0], base.at_or_below(np.array([hi]))[0]
            if stop >= start:
                if base.points is not None:  # every point in range: a sample could miss the shared ones
                    prices = base.points[start : stop + 1]
                else:  # endings every member allows: any sample of them is shared
                    scan = np.rint(np.linspace(start, stop, min(_FAMILY_SCAN, stop - start + 1))).astype(np.int64)
                    prices = base.price(np.unique(scan))
                for row in rows:
                    if rng.set_active[row]:
                        prices = prices[sets[r.set_id[row]].contains(prices)]
        shared_current = current[rows]
        today = int(shared_current[0])
        same_today = bool((shared_current == today).all()) and lo <= today <= hi
        keeps_today = same_today and all(
            not rng.set_active[row] or keep[row] or bool(sets[r.set_id[row]].contains(np.array([today]))[0])
            for row in rows
        )
        if not len(prices) and not keeps_today:
            for row in rows:
                conflicts[int(row)] = str(name)
            continue
        picked = prices[np.unique(np.rint(np.linspace(0, len(prices) - 1, min(k, len(prices)))).astype(np.int64))]
        if keeps_today:
            picked = np.union1d(picked, shared_current[:1])
        for row in rows:
            grids[int(row)] = picked
            if rng.lo[row] < lo:
                out.lo_by[int(row)] = lo_by
            if rng.hi[row] > hi:
                out.hi_by[int(row)] = hi_by
    return out


def _violations(
    r: _Rules, sets: list[PriceSet], prices: np.ndarray, current: np.ndarray, keep: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Penalty (cents per day) and broken-rule bits of every candidate, from the soft rules. Where
    ``keep`` is set, today's price does not break the (soft) endings: they apply to new prices."""
    n, width = prices.shape
    bits = np.zeros((n, width), dtype=np.int32)
    penalty = np.zeros((n, width))
    for b in range(len(BOUND_RULES)):
        soft = ~r.hard[b]
        if not soft.any():
            continue
        broken = soft[:, None] & ((prices < r.lower[b][:, None]) | (prices > r.upper[b][:, None]))
        bits |= broken.astype(np.int32) << b
        penalty += broken * r.penalty[b][:, None]
    soft_set = ~r.set_hard
    for s, rows in _by_set(r.set_id, soft_set, sets):
        if s is ANY_CENT:
            continue
        broken = ~s.contains(prices[rows]) & ~(keep[rows][:, None] & (prices[rows] == current[rows][:, None]))
        bits[rows] |= broken.astype(np.int32) << SET_RULE
        penalty[rows] += broken * r.set_penalty[rows][:, None]
    return penalty, bits


def _rule_name(bit: int, set_names: np.ndarray, i: int) -> str:
    return str(set_names[i]) if bit == SET_RULE else BOUND_RULES[bit]


def generate_candidates(
    products: pd.DataFrame,
    rules: RulesConfig,
    *,
    uncertain: np.ndarray | None = None,
    competitor: pd.Series | None = None,
) -> Candidates:
    """Candidate prices for every product row with a cost.

    ``uncertain`` (one flag per product row) marks SKUs whose demand estimate is too uncertain
    to move far; ``competitor`` maps SKU -> the reference competitor price in cents.
    """
    k = rules.max_candidates
    flags = np.zeros(len(products), dtype=bool) if uncertain is None else np.asarray(uncertain, dtype=bool)
    if flags.shape != (len(products),):
        raise ValueError(f"uncertain must have one flag per product ({len(products)}), got shape {flags.shape}")
    held: list[Held] = []
    no_cost = products["cost_cents"].isna().to_numpy()
    for sku in products.loc[no_cost, "sku"]:
        held.append(Held(str(sku), "no cost on record: held at current price"))
    priced_rows = np.flatnonzero(~no_cost)
    priced = products.iloc[priced_rows]
    n = len(priced)
    skus = priced["sku"].astype(str).to_numpy(dtype=object)
    current = priced["price_cents"].to_numpy(dtype=np.int64)
    cost = priced["cost_cents"].to_numpy(dtype=np.int64)
    reference = np.zeros(n, dtype=np.int64)
    if competitor is not None and len(competitor):
        reference = pd.Series(skus).map(competitor).fillna(0).to_numpy(dtype=np.int64)

    r, sets = _resolve_all(priced, rules, flags[priced_rows], reference)
    relax = rules.on_conflict == "relax"
    set_names = np.array([s.name for s in sets] or [""], dtype=_RULE_DTYPE)[r.set_id]
    # endings apply to new prices: today's price may stay when it breaks only the endings
    keep = np.full(n, not rules.endings_force_change) & (set_names == "endings")
    rng, relaxed, stuck, gave_way = _relax(r, sets, relax=relax, current=current, keep=keep, set_names=set_names)
    for i in np.flatnonzero(stuck):
        held.append(
            Held(
                str(skus[i]),
                f"rules conflict: {BOUND_RULES[rng.lo_arg[i]]} needs >= {rng.lo[i] / 100:.2f} but "
                f"{BOUND_RULES[rng.hi_arg[i]]} allows <= {rng.hi[i] / 100:.2f}"
                + ("" if rng.lo[i] > rng.hi[i] else f" and no {set_names[i]} price lies between")
                + ": held at current price (on_conflict: hold)",
            )
        )
    families = _family_grids(priced, r, rng, sets, current, k, stuck, keep)
    family_grid = families.grids
    family_relaxed = np.zeros(n, dtype=bool)
    for i, name in families.conflicts.items():
        if relax or not r.settings["family_hard"][i]:
            family_relaxed[i] = bool(r.settings["family_hard"][i])
            if family_relaxed[i]:
                gave_way[i].append(f"family relaxed for the members' own rules: family {name} shares no allowed price")
            r.settings["family_on"][i] = 0.0
        else:
            stuck[i] = True
            held.append(Held(str(skus[i]), f"family {name}: the members' rules share no allowed price: held"))
    raw = _grids(r, rng, sets, current, k, family_grid, keep)
    raw.sort(axis=1)
    valid = np.ones_like(raw, dtype=bool)
    valid[:, 1:] = raw[:, 1:] != raw[:, :-1]
    penalty, bits = _violations(r, sets, raw, current, keep)
    off_set = np.zeros(n, dtype=bool)
    for s, rows in _by_set(r.set_id, np.ones(n, dtype=bool), sets):
        off_set[rows] = ~s.contains(current[rows])

    below = np.ones(n, dtype=np.int64)
    above = np.zeros(n, dtype=np.int64)
    for s, rows in _by_set(r.set_id, rng.set_active, sets):
        below[rows] = np.maximum(s.price(s.at_or_below(rng.lo[rows] - 1)), 1)
        above[rows] = s.price(s.at_or_above(rng.hi[rows] + 1))
    names = np.array(BOUND_RULES, dtype=_RULE_DTYPE)
    relaxed_names = np.empty(n, dtype=object)
    relaxed_names[:] = [()] * n
    for i in np.flatnonzero((relaxed != 0) | family_relaxed):
        bits_i = int(relaxed[i])
        found = tuple(_rule_name(b, set_names, i) for b in range(len(RULE_BITS)) if bits_i >> b & 1)
        relaxed_names[i] = found + (("family",) if family_relaxed[i] else ())
    ok = ~stuck
    reasons = np.empty(n, dtype=object)
    reasons[:] = [tuple(notes) for notes in gave_way]
    partner_lo, partner_hi = np.full(n, None, dtype=object), np.full(n, None, dtype=object)
    bound_lo, bound_hi = rng.lo.copy(), rng.hi.copy()
    for by, partner, bound, edge in ((families.lo_by, partner_lo, bound_lo, rng.lo),
                                     (families.hi_by, partner_hi, bound_hi, rng.hi)):
        for row, other in by.items():
            partner[row], bound[row] = str(skus[other]), edge[other]
    return Candidates(
        skus=skus[ok], prices=np.where(valid, raw, NO_CANDIDATE)[ok], valid=valid[ok], current=current[ok],
        cost=cost[ok], lo=rng.lo[ok], hi=rng.hi[ok], lo_rule=names[rng.lo_arg][ok], hi_rule=names[rng.hi_arg][ok],
        below=below[ok], above=above[ok], held=held, penalty=penalty[ok], violations=bits[ok],
        relaxed=relaxed_names[ok], row=priced_rows[ok], settings={key: v[ok] for key, v in r.settings.items()},
        set_rule=set_names[ok], relaxed_for=reasons[ok], set_hard=rng.set_active[ok], current_off_set=off_set[ok],
        keeps_current=keep[ok], family_lo_sku=partner_lo[ok], family_hi_sku=partner_hi[ok], family_lo=bound_lo[ok],
        family_hi=bound_hi[ok],
    )
