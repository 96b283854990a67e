"""pricing.rules.links.build_links: families, size ladders and brand tiers from the products frame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from pricing.rules.candidates import Candidates, generate_candidates
from pricing.rules.config import RulesConfig
from pricing.rules.links import SIZE_SCALE, Links, build_links

COLUMNS = ["sku", "category", "brand", "family", "ladder", "tier", "size", "unit", "cost_cents", "price_cents"]
LOOSE = RulesConfig.model_validate({"default": {"max_change_pct": 50, "margin_floor_pct": 0}})


def frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    """Rows of (sku, family, ladder, tier, size, unit, cost, price); category and brand fixed."""
    full = [(sku, "cat", "B", fam, lad, tier, size, unit, cost, price) for sku, fam, lad, tier, size, unit, cost, price in rows]
    df = pd.DataFrame(full, columns=COLUMNS)
    df["name"] = "item " + df["sku"]
    df["cost_cents"] = pd.array(df["cost_cents"].tolist(), dtype="Int64")
    df["price_cents"] = df["price_cents"].astype(np.int64)
    df["size"] = pd.array(df["size"].tolist(), dtype="Float64")
    for col in ("family", "ladder", "tier", "unit"):
        df[col] = df[col].astype("string")
    return df


def links_of(df: pd.DataFrame, rules: RulesConfig = LOOSE) -> tuple[Candidates, Links, np.ndarray, list[str]]:
    candidates = generate_candidates(df, rules)
    links, label, notes = build_links(df, candidates)
    return candidates, links, label, notes


def pairs(candidates: Candidates, links: Links, kind: str) -> list[tuple[str, str]]:
    mask = links.kind == kind
    return [(str(candidates.skus[a]), str(candidates.skus[b])) for a, b in zip(links.a[mask], links.b[mask])]


def labels(candidates: Candidates, label: np.ndarray) -> dict[str, str | None]:
    return {str(sku): lab for sku, lab in zip(candidates.skus, label)}


# -- families ---------------------------------------------------------------------------------


def test_family_is_a_chain_in_sku_order() -> None:
    df = frame(
        [
            ("f2", "F", None, None, None, "l", 100, 199),
            ("f0", "F", None, None, None, "l", 100, 199),
            ("g0", "G", None, None, None, "l", 100, 199),
            ("f1", "F", None, None, None, "l", 100, 249),
            ("x", None, None, None, None, "l", 100, 199),
        ]
    )
    candidates, links, label, notes = links_of(df)
    assert pairs(candidates, links, "family") == [("f0", "f1"), ("f1", "f2")]
    fam = links.kind == "family"
    assert links.hard[fam].all() and (links.priority[fam] == 45).all()
    assert labels(candidates, label) == {"f2": "family F", "f0": "family F", "g0": None, "f1": "family F", "x": None}
    assert notes == []


def test_family_link_enforcement_comes_from_the_first_member() -> None:
    df = frame(
        [
            ("a", "F", None, None, None, "l", 100, 199),
            ("b", "F", None, None, None, "l", 100, 199),
            ("c", "F", None, None, None, "l", 100, 199),
        ]
    )
    rules = RulesConfig.model_validate(
        {
            "default": {"max_change_pct": 50},
            "skus": {"a": {"family": {"hard": False, "penalty": "0.40", "priority": 7}}},
        }
    )
    candidates, links, _, _ = links_of(df, rules)
    assert pairs(candidates, links, "family") == [("a", "b"), ("b", "c")]
    assert links.hard.tolist() == [False, True]
    assert links.priority.tolist() == [7, 45]
    assert links.penalty.tolist() == [40.0, 100.0]


def test_family_switched_off_for_a_sku_leaves_it_out() -> None:
    df = frame(
        [
            ("a", "F", None, None, None, "l", 100, 199),
            ("b", "F", None, None, None, "l", 100, 199),
            ("c", "F", None, None, None, "l", 100, 199),
        ]
    )
    rules = RulesConfig.model_validate({"default": {"max_change_pct": 50}, "skus": {"b": {"family": False}}})
    candidates, links, label, _ = links_of(df, rules)
    assert pairs(candidates, links, "family") == [("a", "c")]
    assert labels(candidates, label)["b"] is None


def test_family_member_without_cost_is_dropped_from_the_chain() -> None:
    df = frame(
        [
            ("a", "F", None, None, None, "l", 100, 199),
            ("b", "F", None, None, None, "l", None, 199),  # held: never priced, never linked
            ("c", "F", None, None, None, "l", 100, 199),
            ("d", "G", None, None, None, "l", 100, 199),
            ("e", "G", None, None, None, "l", None, 199),
        ]
    )
    candidates, links, label, _ = links_of(df)
    assert "b" not in candidates.skus and "e" not in candidates.skus
    assert pairs(candidates, links, "family") == [("a", "c")]
    assert labels(candidates, label)["d"] is None  # alone in its family once e is held


# -- ladders ----------------------------------------------------------------------------------


def test_ladder_is_ordered_by_size_not_by_row_or_sku() -> None:
    df = frame(
        [
            ("s3", None, "L", None, 2.0, "l", 100, 399),
            ("s1", None, "L", None, 0.5, "l", 50, 149),
            ("s2", None, "L", None, 1.0, "l", 80, 249),
            ("s0", None, "L", None, 0.25, "l", 30, 99),
        ]
    )
    candidates, links, label, notes = links_of(df)
    assert pairs(candidates, links, "ladder") == [("s0", "s1"), ("s1", "s2"), ("s2", "s3")]
    lad = links.kind == "ladder"
    assert links.size_a[lad].tolist() == [250, 500, 1000]
    assert links.size_b[lad].tolist() == [500, 1000, 2000]
    assert SIZE_SCALE == 1000
    assert set(labels(candidates, label).values()) == {"ladder L"}
    assert notes == []


def test_ladder_link_takes_the_smaller_packs_rules() -> None:
    df = frame(
        [
            ("big", None, "L", None, 2.0, "l", 100, 399),
            ("small", None, "L", None, 1.0, "l", 100, 249),
        ]
    )
    rules = RulesConfig.model_validate(
        {"default": {"max_change_pct": 50}, "skus": {"small": {"ladder": {"hard": False, "penalty": "2.00"}}}}
    )
    candidates, links, _, _ = links_of(df, rules)
    assert pairs(candidates, links, "ladder") == [("small", "big")]
    assert links.hard.tolist() == [False] and links.penalty.tolist() == [200.0]


def test_ladder_with_mixed_units_is_reported_and_not_linked() -> None:
    df = frame(
        [
            ("a", None, "M", None, 1.0, "l", 100, 249),
            ("b", None, "M", None, 500, "g", 100, 299),
            ("c", None, "N", None, 1.0, "l", 100, 249),
            ("d", None, "N", None, 2.0, "l", 100, 399),
        ]
    )
    candidates, links, label, notes = links_of(df)
    assert pairs(candidates, links, "ladder") == [("c", "d")]
    assert notes == ["ladder M: sizes in different units (g, l): not enforced"]
    assert labels(candidates, label)["a"] is None and labels(candidates, label)["b"] is None


def test_duplicate_sizes_are_reported_unordered_but_ordered_against_the_other_sizes() -> None:
    df = frame(
        [
            ("s1", None, "L", None, 0.5, "l", 50, 149),
            ("s2", None, "L", None, 1.0, "l", 80, 249),
            ("s2b", None, "L", None, 1.0, "l", 80, 249),
            ("s3", None, "L", None, 2.0, "l", 100, 399),
        ]
    )
    candidates, links, label, notes = links_of(df)
    got = pairs(candidates, links, "ladder")
    assert ("s2", "s2b") not in got and ("s2b", "s2") not in got
    # each same-size SKU sits between the smaller and the larger pack
    assert sorted(got) == sorted([("s1", "s2"), ("s1", "s2b"), ("s2", "s3"), ("s2b", "s3")])
    assert notes == ["ladder L: two SKUs of the same size: those two are not ordered"]
    assert set(labels(candidates, label).values()) == {"ladder L"}


def test_ladder_member_not_priced_is_skipped() -> None:
    df = frame(
        [
            ("s1", None, "L", None, 0.5, "l", 50, 149),
            ("s2", None, "L", None, 1.0, "l", None, 249),
            ("s3", None, "L", None, 2.0, "l", 100, 399),
        ]
    )
    candidates, links, _, _ = links_of(df)
    assert pairs(candidates, links, "ladder") == [("s1", "s3")]
    assert links.size_a.tolist() == [500] and links.size_b.tolist() == [2000]


def test_ladder_switched_off_by_the_rules() -> None:
    df = frame(
        [
            ("s1", None, "L", None, 0.5, "l", 50, 149),
            ("s2", None, "L", None, 1.0, "l", 80, 249),
        ]
    )
    rules = RulesConfig.model_validate({"default": {"max_change_pct": 50, "ladder": False}})
    candidates, links, label, _ = links_of(df, rules)
    assert len(links) == 0
    assert labels(candidates, label) == {"s1": None, "s2": None}


# -- tiers ------------------------------------------------------------------------------------


def test_tier_links_the_private_label_to_its_reference() -> None:
    df = frame(
        [
            ("own", None, None, "nat", None, "l", 100, 149),
            ("nat", None, None, None, None, "l", 100, 199),
            ("own2", None, None, "nat", None, "l", 100, 149),
        ]
    )
    rules = RulesConfig.model_validate(
        {"default": {"max_change_pct": 50}, "skus": {"own2": {"tier": {"value": "12.5", "hard": False}}}}
    )
    candidates, links, label, notes = links_of(df, rules)
    assert pairs(candidates, links, "tier") == [("own", "nat"), ("own2", "nat")]
    assert links.gap_bp.tolist() == [1000, 1250]  # the private label's gap: default 10%, own2 12.5%
    assert links.hard.tolist() == [True, False]
    assert links.priority.tolist() == [30, 30]
    got = labels(candidates, label)
    assert got["own"] == "tier below nat" and got["own2"] == "tier below nat"
    assert got["nat"] == "tier above own, tier above own2"
    assert notes == []


def test_tier_to_an_unpriced_reference_is_dropped() -> None:
    df = frame(
        [
            ("own", None, None, "nat", None, "l", 100, 149),
            ("nat", None, None, None, None, "l", None, 199),  # no cost: held
        ]
    )
    candidates, links, label, _ = links_of(df)
    assert candidates.skus.tolist() == ["own"]
    assert len(links) == 0
    assert labels(candidates, label) == {"own": None}


def test_links_only_among_candidates_when_the_frame_is_a_subset() -> None:
    """candidates.row indexes the frame: the links name candidate rows, not frame rows."""
    df = frame(
        [
            ("z", None, None, None, None, "l", None, 199),
            ("a", "F", "L", None, 1.0, "l", 100, 199),
            ("b", "F", "L", None, 2.0, "l", 100, 349),
        ]
    )
    candidates, links, _, _ = links_of(df)
    assert candidates.skus.tolist() == ["a", "b"] and candidates.row.tolist() == [1, 2]
    assert pairs(candidates, links, "family") == [("a", "b")]
    assert pairs(candidates, links, "ladder") == [("a", "b")]
    assert links.a.max() < len(candidates.skus) and links.b.max() < len(candidates.skus)


def test_no_link_columns_no_links() -> None:
    df = frame([("a", None, None, None, None, "l", 100, 199)]).drop(columns=["family", "ladder", "tier", "size"])
    _, links, label, notes = links_of(df)
    assert len(links) == 0 and label.tolist() == [None] and notes == []
