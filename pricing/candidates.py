"""Candidate prices per SKU, from the pricing rules. Plain data in, plain data out.

For each SKU the rules give an allowed range [lo, hi] in integer cents:
lo = max(min_price, cost x (1 + margin floor), current x (1 - max change)),
hi = min(max_price, current x (1 + max change)),
and allowed endings. The allowed prices in the range are enumerated without listing every
cent (an ending set repeats every 100 cents), thinned evenly to ``max_candidates``, and the
current price is kept as a candidate whenever the rules allow it (so "no change" is always an
option when it is legal). A SKU with no cost, or whose rules leave no allowed price, is held at
its current price with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import pandas as pd

from pricing.rules import ResolvedRules, RulesConfig

NO_CANDIDATE = -1
LOWER_RULES = ("min_price", "margin_floor_pct", "max_change_pct")
UPPER_RULES = ("max_price", "max_change_pct")
UNCERTAIN_RULE = "uncertain_max_change_pct"  # max_change_pct, tightened for an uncertain demand estimate
_RULE_DTYPE = "<U32"


@dataclass(frozen=True)
class Held:
    sku: str
    reason: str


@dataclass
class Candidates:
    """Candidate prices for the SKUs that can be priced.

    ``prices`` is (n_skus, k) integer cents, padded with NO_CANDIDATE where ``valid`` is False;
    each row is sorted ascending over its valid entries. ``lo``/``hi`` are the bounds of the
    allowed range and ``lo_rule``/``hi_rule`` name the rule that set each. ``below``/``above``
    are the allowed prices just outside the range: what each bounding rule kept out.
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

    @property
    def current_index(self) -> np.ndarray:
        """Column of the current price in each row, or NO_CANDIDATE where it is not allowed."""
        hit = self.valid & (self.prices == self.current[:, None])
        return np.where(hit.any(axis=1), hit.argmax(axis=1), NO_CANDIDATE)


def ending_offsets(endings: tuple[str, ...]) -> np.ndarray:
    """The allowed values of (price in cents) mod 100, sorted: ('.99', '.x9') -> [9, 19, ..., 99]."""
    allowed = set()
    for ending in endings:
        tens, ones = ending[1], ending[2]
        for t in range(10) if tens == "x" else (int(tens),):
            for o in range(10) if ones == "x" else (int(ones),):
                allowed.add(10 * t + o)
    return np.array(sorted(allowed), dtype=np.int64)


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


def _index_at_or_above(price: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Global index of the first allowed price >= price (allowed prices numbered from 0 cents)."""
    block, rest = np.divmod(price, 100)
    pos = np.searchsorted(offsets, rest, side="left")
    return block * len(offsets) + pos


def _index_at_or_below(price: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    block, rest = np.divmod(price, 100)
    pos = np.searchsorted(offsets, rest, side="right") - 1
    return block * len(offsets) + pos


def _price_of_index(index: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    block, pos = np.divmod(index, len(offsets))
    return block * 100 + offsets[pos]


def _bounds(
    rules: ResolvedRules, cost: np.ndarray, current: np.ndarray, uncertain: np.ndarray
) -> tuple[np.ndarray, ...]:
    """Allowed range and the rule that sets each end; uncertain SKUs move at most the smaller change."""
    change_bp = np.full_like(current, _basis_points(rules.max_change_pct))
    tight = uncertain & (_basis_points(rules.uncertain_max_change_pct) < change_bp)
    change_bp[tight] = _basis_points(rules.uncertain_max_change_pct)
    lowers = np.stack(
        [
            np.full_like(current, rules.min_price_cents),
            _ceil_scale(cost, _basis_points(rules.margin_floor_pct)),
            _ceil_scale(current, -change_bp),
        ]
    )
    uppers = np.stack([np.full_like(current, rules.max_price_cents), _floor_scale(current, change_bp)])
    lo_arg, hi_arg = lowers.argmax(axis=0), uppers.argmin(axis=0)
    lo = np.take_along_axis(lowers, lo_arg[None], 0)[0]
    hi = np.take_along_axis(uppers, hi_arg[None], 0)[0]
    lo_rule, hi_rule = np.array(LOWER_RULES, dtype=_RULE_DTYPE)[lo_arg], np.array(UPPER_RULES, dtype=_RULE_DTYPE)[hi_arg]
    lo_rule[tight & (lo_rule == "max_change_pct")] = UNCERTAIN_RULE
    hi_rule[tight & (hi_rule == "max_change_pct")] = UNCERTAIN_RULE
    return lo, hi, lo_rule, hi_rule


def _grid(lo: np.ndarray, hi: np.ndarray, current: np.ndarray, offsets: np.ndarray, k: int) -> tuple[np.ndarray, ...]:
    """Up to k allowed prices spread over [lo, hi] plus the current price where allowed."""
    first, last = _index_at_or_above(lo, offsets), _index_at_or_below(hi, offsets)
    count = last - first + 1
    steps = np.linspace(0.0, 1.0, k)
    spread = first[:, None] + np.rint(steps[None, :] * np.maximum(count - 1, 0)[:, None]).astype(np.int64)
    prices = _price_of_index(spread, offsets)
    allowed_current = (
        np.isin(current % 100, offsets) & (current >= lo) & (current <= hi)
    )
    prices = np.concatenate([prices, np.where(allowed_current, current, prices[:, 0])[:, None]], axis=1)
    prices.sort(axis=1)
    valid = np.ones_like(prices, dtype=bool)
    valid[:, 1:] = prices[:, 1:] != prices[:, :-1]
    valid &= (count > 0)[:, None]
    return prices, valid, count


def generate_candidates(
    products: pd.DataFrame, rules: RulesConfig, *, uncertain: np.ndarray | None = None
) -> Candidates:
    """Candidate prices for every product, grouped by the rules in force for its category.

    ``uncertain`` (one flag per product row) marks SKUs whose demand estimate is too uncertain
    to move far: they move at most ``uncertain_max_change_pct``.
    """
    k = rules.max_candidates
    held: list[Held] = []
    flags = np.zeros(len(products), dtype=bool) if uncertain is None else np.asarray(uncertain, dtype=bool)
    if flags.shape != (len(products),):
        raise ValueError(f"uncertain must have one flag per product ({len(products)}), got shape {flags.shape}")
    products = products.assign(_uncertain=flags)
    no_cost = products["cost_cents"].isna()
    for sku in products.loc[no_cost, "sku"]:
        held.append(Held(str(sku), "no cost on record: held at current price"))
    priced = products.loc[~no_cost]
    parts: list[dict[str, np.ndarray]] = []
    for category, group in priced.groupby("category", sort=True):
        resolved = rules.resolve(str(category))
        cost = group["cost_cents"].to_numpy(dtype=np.int64)
        current = group["price_cents"].to_numpy(dtype=np.int64)
        lo, hi, lo_rule, hi_rule = _bounds(resolved, cost, current, group["_uncertain"].to_numpy(dtype=bool))
        offsets = ending_offsets(resolved.endings)
        prices, valid, count = _grid(lo, hi, current, offsets, k)
        below = np.maximum(_price_of_index(_index_at_or_below(lo - 1, offsets), offsets), 1)
        above = _price_of_index(_index_at_or_above(hi + 1, offsets), offsets)
        skus = group["sku"].to_numpy(dtype=object)
        for i in np.flatnonzero(count <= 0):
            held.append(
                Held(
                    str(skus[i]),
                    f"no allowed price: {lo_rule[i]} needs >= {lo[i] / 100:.2f} "
                    f"but {hi_rule[i]} allows <= {hi[i] / 100:.2f}: held at current price",
                )
            )
        ok = count > 0
        parts.append(
            dict(
                skus=skus[ok], prices=np.where(valid, prices, NO_CANDIDATE)[ok], valid=valid[ok],
                current=current[ok], cost=cost[ok], lo=lo[ok], hi=hi[ok], lo_rule=lo_rule[ok], hi_rule=hi_rule[ok],
                below=below[ok], above=above[ok],
            )
        )
    if not parts:
        empty_i = np.zeros(0, dtype=np.int64)
        return Candidates(
            np.zeros(0, dtype=object), np.zeros((0, k + 1), dtype=np.int64), np.zeros((0, k + 1), dtype=bool),
            empty_i, empty_i, empty_i, empty_i, np.zeros(0, dtype=_RULE_DTYPE), np.zeros(0, dtype=_RULE_DTYPE),
            empty_i, empty_i, held,
        )
    joined = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return Candidates(held=held, **joined)
