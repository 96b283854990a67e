"""The sample store's price groups: families, ladders and tiers, and the prices that make them hold."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.store import (
    PRIVATE_LABEL,
    PriceGroups,
    _current_prices,
    _draw_catalogue,
    _fit,
    _price_groups,
    _settle,
)


def draw(skus: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, PriceGroups]:
    """What generate_store does up to the groups: catalogue, cost, drawn prices, groups."""
    rngs = np.random.default_rng(seed).spawn(9)
    catalogue = _draw_catalogue(skus, rngs[0])
    cost, drawn = _current_prices(catalogue, rngs[0])
    return catalogue, cost, drawn, _price_groups(catalogue, cost, drawn, rngs[7])


def check_groups(catalogue: pd.DataFrame, cost: np.ndarray, groups: PriceGroups) -> None:
    """Every family shares a price, every ladder holds, every tier keeps its gap, margins kept."""
    frame = catalogue.assign(
        price=groups.price, family=groups.family, ladder=groups.ladder, tier=groups.tier, cost=cost,
        size=catalogue["size"].astype(float),
    )
    assert (frame["price"] * 100 >= frame["cost"] * 108).all()
    family = frame[frame["family"] != ""].groupby("family")
    assert (family.size() >= 2).all()
    assert (family["price"].nunique() == 1).all()
    assert (family[["category", "brand", "kind", "size"]].nunique() == 1).all().all()
    assert (family["variant"].nunique() == family.size()).all()
    ladder = frame[frame["ladder"] != ""].sort_values(["ladder", "size"])
    for _, rows in ladder.groupby("ladder"):
        assert len(rows) >= 2 and rows[["category", "brand", "variant", "kind", "unit"]].nunique().eq(1).all()
        size, price = rows["size"].to_numpy(), rows["price"].to_numpy()
        assert (np.diff(size) > 0).all() and (np.diff(price) > 0).all() and (np.diff(price / size) < 0).all()
    tiered = frame[frame["tier"] != ""]
    reference = frame.set_index("sku").loc[tiered["tier"]]
    assert (tiered["brand"].to_numpy() == tiered["category"].map(PRIVATE_LABEL).to_numpy()).all()
    assert (reference["brand"].to_numpy() != reference["category"].map(PRIVATE_LABEL).to_numpy()).all()
    for col in ("category", "kind", "size"):
        assert (tiered[col].to_numpy() == reference[col].to_numpy()).all()
    assert (tiered["price"].to_numpy() * 10 <= reference["price"].to_numpy() * 9).all()


@pytest.mark.parametrize("seed", [7, 8, 21])
def test_groups_at_the_default_size(seed: int) -> None:
    catalogue, cost, drawn, groups = draw(2000, seed)
    check_groups(catalogue, cost, groups)
    share = {name: float(np.mean(getattr(groups, name) != "")) for name in ("family", "ladder", "tier")}
    assert 0.05 <= share["family"] <= 0.15
    assert 0.10 <= share["ladder"] <= 0.30
    assert 0.10 <= share["tier"] <= 0.30
    moved = groups.price != drawn
    grouped = (groups.family != "") | (groups.ladder != "") | (groups.tier != "")
    assert not (moved & ~grouped).any()  # only group members move
    assert 0.02 <= moved.mean() <= 0.2
    # Moved prices end in .49/.99, except where a family took a member's hand-set price.
    off = moved & ~np.isin(groups.price % 100, [49, 99])
    assert (groups.family[off] != "").all()
    assert np.isin(groups.price[off], drawn).all()
    # Only one SKU per item (brand, variant, kind, size) joins a family or ladder.
    linked = catalogue[(groups.family != "") | (groups.ladder != "")]
    assert not linked.duplicated(["category", "brand", "variant", "kind", "size"]).any()


@pytest.mark.parametrize("skus", [1, 7, 60, 400, 20_000])
def test_groups_hold_at_any_size(skus: int) -> None:
    catalogue, cost, _, groups = draw(skus, 3)
    check_groups(catalogue, cost, groups)


def test_groups_are_deterministic() -> None:
    _, _, _, first = draw(2000, 7)
    _, _, _, again = draw(2000, 7)
    _, _, _, other = draw(2000, 8)
    for name in PriceGroups._fields:
        assert np.array_equal(getattr(first, name), getattr(again, name)), name
    assert not np.array_equal(first.family, other.family)


def test_fit_moves_as_little_as_possible_onto_endings() -> None:
    price = np.array([150, 150, 150, 150, 129, 99])
    low = np.array([100, 160, 0, 140, 100, 100])
    high = np.array([200, 400, 120, 145, 200, 140])
    new, ok = _fit(price, low, high)
    assert new.tolist() == [150, 199, 99, 150, 129, 99]
    assert ok.tolist() == [True, True, True, False, True, False]


def test_settle_families_then_ladders_with_overlap() -> None:
    """A family of two variants at 1 l, each variant with a 2 l size; a ladder that cannot hold is left."""
    # rows: 0 A 1 l (family 0, ladder 0), 1 B 1 l (family 0, ladder 1), 2 A 2 l (ladder 0), 3 B 2 l (ladder 1),
    # 4 C 1 l (ladder 2), 5 C 1.1 l (ladder 2): no .49/.99 price between 99 and 108.9
    price = np.array([149, 199, 199, 449, 99, 99], dtype=np.int64)
    low = np.array([50, 50, 50, 50, 50, 50], dtype=np.int64)
    high = np.full(6, 10**9, dtype=np.int64)
    family = np.array([0, 0, -1, -1, -1, -1])
    ladder = np.array([0, 1, 0, 1, 2, 2])
    size = np.array([1.0, 1.0, 2.0, 2.0, 1.0, 1.1])
    rank = np.array([0, 0, 1, 1, 0, 1])
    subset = np.ones(6, dtype=bool)
    family_left, ladder_left = _settle(price, low, high, family, ladder, size, rank, subset)
    assert price[:2].tolist() == [199, 199]  # the family's highest price
    assert price[2] == 249  # had to cost more than the 1 l at 1.99
    assert price[3] == 349  # had to cost less per unit than 2 x 1.99 (3.99 would not)
    assert price[4:].tolist() == [99, 99]  # unchanged ...
    assert family_left.tolist() == family.tolist()
    assert ladder_left.tolist() == [0, 1, 0, 1, -1, -1]  # ... and out of its ladder


@pytest.mark.parametrize(
    ("low", "expected_price", "expected_family"),
    [
        ([200, 200, 100], [249, 249, 149], [0, 0, -1]),  # the highest price, capped by row 1's tier
        ([280, 200, 100], [299, 249, 149], [-1, -1, -1]),  # row 0's floor is above row 1's cap: no family
    ],
)
def test_settle_families_within_bounds(low: list[int], expected_price: list[int], expected_family: list[int]) -> None:
    price = np.array([299, 249, 149], dtype=np.int64)
    high = np.array([10**9, 270, 10**9], dtype=np.int64)  # a tier cap on row 1
    family = np.array([0, 0, 0])  # row 2 is outside the subset: untouched
    subset = np.array([True, True, False])
    none = np.full(3, -1)
    family_left, _ = _settle(price, np.array(low), high, family, none, np.ones(3), np.zeros(3, dtype=int), subset)
    assert price.tolist() == expected_price
    assert family_left.tolist() == expected_family
