"""Links between SKUs from products.csv: price families, size ladders, brand tiers.

- ``family``: SKUs with the same family share one price; linked as a chain of equalities.
- ``ladder``: SKUs with the same ladder, ordered by ``size`` (one unit per ladder): each larger
  pack costs more in total and less per unit than the next smaller one (SKUs of the same size
  are not ordered among themselves, but each is against the next smaller and larger sizes).
- ``tier``: a private-label SKU names its national-brand reference; it costs at least the tier
  gap (rules ``tier``, %) less.

Each link takes its enforcement (on/off, hard, priority, penalty) from the rules of the SKU that
owns it: the first family member (by SKU), the smaller ladder size, the private label. Links
whose other end is not priced (held, unknown to the model) are left out. Plain data in and out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pricing.rules.candidates import Candidates

SIZE_SCALE = 1000  # sizes as integers (thousandths of a unit) for exact ladder arithmetic
LINK_KINDS = ("family", "ladder", "tier")


@dataclass(frozen=True)
class Links:
    """Pairwise rules between SKUs (row indices). ladder: a is the smaller pack, b the larger,
    sizes in a common unit; tier: a is the private label, b its national reference."""

    kind: np.ndarray
    a: np.ndarray
    b: np.ndarray
    hard: np.ndarray
    priority: np.ndarray
    penalty: np.ndarray  # cents per day, for a soft link
    size_a: np.ndarray
    size_b: np.ndarray
    gap_bp: np.ndarray

    @classmethod
    def empty(cls) -> Links:
        i = np.zeros(0, dtype=np.int64)
        return cls(np.zeros(0, dtype="<U8"), i, i, np.zeros(0, dtype=bool), i, np.zeros(0), i, i, i)

    def __len__(self) -> int:
        return len(self.a)

    def allowed(self, prices: np.ndarray) -> np.ndarray:
        """(links, k, k): may a take its candidate i while b takes its candidate j?"""
        pa = prices[self.a][:, :, None]
        pb = prices[self.b][:, None, :]
        out = np.zeros((len(self), prices.shape[1], prices.shape[1]), dtype=bool)
        family, ladder, tier = (self.kind == kind for kind in LINK_KINDS)
        out[family] = pa[family] == pb[family]
        out[ladder] = _ladder_ok(pa[ladder], pb[ladder], self.size_a[ladder][:, None, None],
                                 self.size_b[ladder][:, None, None])
        out[tier] = _tier_ok(pa[tier], pb[tier], self.gap_bp[tier][:, None, None])
        return out

    def pair_allowed(self, edge: int, price_a: int, price_b: int) -> bool:
        """May a take ``price_a`` while b takes ``price_b`` (cents) under link ``edge``?"""
        kind = str(self.kind[edge])
        if kind == "family":
            return price_a == price_b
        if kind == "ladder":
            return bool(_ladder_ok(price_a, price_b, int(self.size_a[edge]), int(self.size_b[edge])))
        return bool(_tier_ok(price_a, price_b, int(self.gap_bp[edge])))


def _ladder_ok(pa: Any, pb: Any, size_a: Any, size_b: Any) -> Any:
    """The larger pack (b) costs more in total and less per unit."""
    return (pb > pa) & (pb * size_a < pa * size_b)


def _tier_ok(pa: Any, pb: Any, gap_bp: Any) -> Any:
    """The private label (a) costs at least the gap less than its reference (b)."""
    return pa * 10_000 <= pb * (10_000 - gap_bp)


def _column(products: pd.DataFrame, name: str) -> np.ndarray:
    if name not in products.columns:
        return np.full(len(products), None, dtype=object)
    return products[name].astype("string").to_numpy(dtype=object, na_value=None)


def build_links(products: pd.DataFrame, candidates: Candidates) -> tuple[Links, np.ndarray, list[str]]:
    """Links between candidate rows, a group label per candidate row (or None) and notes about
    groups that could not be linked. ``candidates.row`` indexes ``products``."""
    n = len(candidates.skus)
    rows = candidates.row
    settings = candidates.settings
    family = _column(products, "family")[rows]
    ladder = _column(products, "ladder")[rows]
    tier = _column(products, "tier")[rows]
    size = products["size"].to_numpy(dtype=np.float64, na_value=np.nan)[rows] if "size" in products else np.full(n, np.nan)
    unit = _column(products, "unit")[rows]
    label = np.full(n, None, dtype=object)
    notes: list[str] = []
    parts: list[dict[str, np.ndarray]] = []

    def add(kind: str, a: np.ndarray, b: np.ndarray, owner: np.ndarray, **extra: np.ndarray) -> None:
        m = len(a)
        if not m:
            return
        parts.append(
            {
                "kind": np.full(m, kind, dtype="<U8"), "a": a, "b": b,
                "hard": settings[f"{kind}_hard"][owner].astype(bool),
                "priority": settings[f"{kind}_priority"][owner].astype(np.int64),
                "penalty": settings[f"{kind}_penalty"][owner].astype(np.float64),
                "size_a": extra.get("size_a", np.zeros(m, dtype=np.int64)),
                "size_b": extra.get("size_b", np.zeros(m, dtype=np.int64)),
                "gap_bp": extra.get("gap_bp", np.zeros(m, dtype=np.int64)),
            }
        )

    on = settings["family_on"].astype(bool)
    members = np.flatnonzero(on & pd.notna(family))
    if len(members):
        order = members[np.lexsort((candidates.skus[members].astype(str), family[members].astype(str)))]
        same = family[order[1:]] == family[order[:-1]]
        add("family", order[:-1][same], order[1:][same], order[:-1][same])
        grouped = pd.Series(order).groupby(family[order].astype(str)).transform("size").to_numpy()
        label[order[grouped > 1]] = ["family " + str(f) for f in family[order[grouped > 1]]]

    on = settings["ladder_on"].astype(bool)
    members = np.flatnonzero(on & pd.notna(ladder))
    if len(members):
        frame = pd.DataFrame({"row": members, "ladder": ladder[members].astype(str), "size": size[members],
                              "unit": unit[members].astype(str)})
        units = frame.groupby("ladder")["unit"].nunique()
        mixed = units.index[units > 1]
        for name in mixed:
            notes.append(f"ladder {name}: sizes in different units ({', '.join(sorted(set(frame.loc[frame.ladder == name, 'unit'])))}): not enforced")
        frame = frame[~frame["ladder"].isin(mixed) & (frame["size"] > 0)].sort_values(["ladder", "size", "row"])
        frame["size"] = np.rint(frame["size"].to_numpy() * SIZE_SCALE).astype(np.int64)
        repeated = frame.duplicated(["ladder", "size"])
        for name in sorted(set(frame.loc[repeated, "ladder"])):
            notes.append(f"ladder {name}: two SKUs of the same size: those two are not ordered")
        # Every SKU is linked to every SKU of the next larger size in its ladder: a chain when the
        # sizes differ; SKUs of one size are not ordered among themselves but are against the others.
        frame["step"] = frame.groupby("ladder")["size"].rank(method="dense").astype(np.int64)
        pairs = frame.merge(frame.assign(step=frame["step"] - 1), on=["ladder", "step"], suffixes=("_a", "_b"))
        pairs = pairs.sort_values(["ladder", "step", "row_a", "row_b"])
        first, second = pairs["row_a"].to_numpy(dtype=np.int64), pairs["row_b"].to_numpy(dtype=np.int64)
        add("ladder", first, second, first, size_a=pairs["size_a"].to_numpy(dtype=np.int64),
            size_b=pairs["size_b"].to_numpy(dtype=np.int64))
        linked = np.zeros(n, dtype=bool)
        linked[first] = linked[second] = True
        for i in np.flatnonzero(linked):
            label[i] = ("" if label[i] is None else label[i] + ", ") + f"ladder {ladder[i]}"

    private = np.flatnonzero(pd.notna(tier))
    if len(private):
        position = pd.Series(np.arange(n), index=pd.Index(candidates.skus.astype(str)))
        reference = position.reindex(tier[private].astype(str)).to_numpy()
        known = ~np.isnan(reference)
        a, b = private[known], reference[known].astype(np.int64)
        add("tier", a, b, a, gap_bp=settings["tier_gap_bp"][a].astype(np.int64))
        for i, j in zip(a.tolist(), b.tolist()):
            label[i] = ("" if label[i] is None else label[i] + ", ") + f"tier below {candidates.skus[j]}"
            label[j] = ("" if label[j] is None else label[j] + ", ") + f"tier above {candidates.skus[i]}"

    if not parts:
        return Links.empty(), label, notes
    joined = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    return Links(**joined), label, notes
