"""See the model: per SKU and per category, what a fitted ``DemandModel`` learned and what it rests on.

Plain data in (a fitted model, optional filters), plain data out (rows, and JSON-ready dicts): the
command line (``esl-pricing model show``) only prints them.

Per SKU: the own-price elasticity, its standard error, the uncertain flag, the model family of
its category (``loglog``: log units linear in log price, pooled toward the category; ``choice``:
a multinomial logit among the category's substitutes and not buying, chosen where it predicted
the last weeks better), and the data it rests on: days of the SKU in the training data and its
distinct prices there. Models saved before the model kept those counts report them as None. Per
category (always over all of the category's SKUs, whatever the SKU filter): the model family,
SKUs, mean elasticity, its spread (standard deviation over the SKUs) and how many SKUs are
uncertain.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.utils.validation import check_is_fitted

from pricing.demand.model import DemandModel

#: Log units linear in log price (``log E[units] = a + b log p``): the family of every category of
#: a model saved before the choice family existed.
LOGLOG = "loglog"


class ModelViewError(ValueError):
    """A filter names what the model does not have (an unknown SKU or category)."""


@dataclass(frozen=True)
class SkuView:
    sku: str
    category: str
    elasticity: float
    se: float | None  # None when infinite (no pooling and no identifying data)
    uncertain: bool
    model: str
    days: int | None  # None: a model saved before days were kept
    distinct_prices: int | None


@dataclass(frozen=True)
class CategoryView:
    category: str
    model: str
    n_skus: int
    mean_elasticity: float
    elasticity_sd: float  # standard deviation of the SKU elasticities (0 for one SKU)
    n_uncertain: int


@dataclass(frozen=True)
class ModelView:
    skus: list[SkuView]
    categories: list[CategoryView]

    def as_dict(self) -> dict[str, list[dict[str, object]]]:
        return {"skus": [asdict(row) for row in self.skus], "categories": [asdict(row) for row in self.categories]}


def model_view(
    model: DemandModel, *, skus: Sequence[str] | None = None, category: str | None = None
) -> ModelView:
    """The SKUs of ``model`` (all, or those in ``skus`` and/or ``category``, in model order) and
    the categories they belong to. ModelViewError when a SKU or the category is unknown."""
    check_is_fitted(model)
    categories = model.category_of_.to_numpy().astype(str)
    selected = np.ones(len(model.skus_), dtype=bool)
    if skus is not None:
        wanted = list(dict.fromkeys(str(s) for s in skus))
        positions = model.skus_.get_indexer(pd.Index(wanted))
        unknown = [s for s, p in zip(wanted, positions, strict=True) if p < 0]
        if unknown:
            examples = ", ".join(repr(s) for s in unknown[:3])
            raise ModelViewError(f"SKU not in the model: {examples} (the model knows {len(model.skus_)} SKUs)")
        selected[:] = False
        selected[positions] = True
    if category is not None:
        if category not in set(model.categories_):
            known = ", ".join(str(c) for c in model.categories_[:10])
            raise ModelViewError(f"category not in the model: {category!r} (it has: {known})")
        selected &= categories == category
    picked = np.flatnonzero(selected)
    family = families(model)
    days = getattr(model, "sku_days_", None)
    prices = getattr(model, "sku_distinct_prices_", None)
    rows = [
        SkuView(
            sku=str(model.skus_[i]),
            category=str(categories[i]),
            elasticity=float(model.elasticity_[i]),
            se=_finite(model.elasticity_se_[i]),
            uncertain=bool(model.uncertain_[i]),
            model=family[str(categories[i])],
            days=None if days is None else int(days[i]),
            distinct_prices=None if prices is None else int(prices[i]),
        )
        for i in picked
    ]
    shown = sorted(set(categories[picked]))
    return ModelView(rows, category_summary(model, shown))


def category_summary(model: DemandModel, categories: Sequence[str] | None = None) -> list[CategoryView]:
    """Per category (all, or those named; sorted): SKUs, mean and spread of elasticity, uncertain SKUs."""
    check_is_fitted(model)
    table = pd.DataFrame(
        {
            "category": model.category_of_.to_numpy().astype(str),
            "elasticity": model.elasticity_,
            "uncertain": model.uncertain_.astype(np.int64),
        }
    )
    grouped = table.groupby("category", sort=True)
    summary = pd.DataFrame(
        {
            "n_skus": grouped.size(),
            "mean": grouped["elasticity"].mean(),
            "sd": grouped["elasticity"].std(ddof=0),
            "uncertain": grouped["uncertain"].sum(),
        }
    )
    if categories is not None:  # selected after the sums, so a filter never changes a figure
        summary = summary[summary.index.isin(list(categories))]
    family = families(model)
    return [
        CategoryView(
            str(cat), family[str(cat)], int(row["n_skus"]), float(row["mean"]), float(row["sd"]), int(row["uncertain"])
        )
        for cat, row in summary.iterrows()
    ]


def families(model: DemandModel) -> dict[str, str]:
    """The model family of each category (``loglog`` for a model saved before families existed)."""
    chosen = getattr(model, "model_family_", None)
    if chosen is None:
        return {str(cat): LOGLOG for cat in model.categories_}
    return {str(cat): str(value) for cat, value in chosen.items()}


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
