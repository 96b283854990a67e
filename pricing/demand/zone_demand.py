"""A price zone's demand: its stores' demand models summed, as one DemandPredictor.

In: one fitted demand model per store of the zone (anything with the cycle's DemandPredictor
protocol, pricing.plan.cycle, repeated here: ``skus_``, ``predict_grid``, ``uncertain``; pricing.demand.model.DemandModel
fits it), optional per-store weights, and optionally the zone's shelf prices today.
Out: ``ZoneDemand``, the same protocol for the zone as a whole, so pricing.plan.cycle prices a zone
exactly as it prices a store.

Why a sum is enough: the stores of a zone share one shelf price p and cost is chain-wide, so the
zone's profit at p is sum_s (p - c) x units_s(p) = (p - c) x sum_s units_s(p); revenue likewise.
The optimizer above the scores is unchanged.

- ``predict_grid``: units per day summed over the stores, each store's units times its weight
  (default 1). A SKU a store does not carry contributes 0 there. Each store model is called once
  (with the SKUs it carries), never once per SKU. The substitutes' price index inside each store
  model is over the SKUs that store carries.
- ``elasticities``: per SKU the units-weighted mean of the stores' elasticities,
  sum_s u_s e_s / sum_s u_s. With constant-elasticity stores this is exactly the zone's own-price
  elasticity d ln(sum_s u_s) / d ln p at the price the units are measured at.
- ``uncertain``: a SKU is uncertain for the zone when the stores whose models flag it uncertain
  carry at least UNCERTAIN_SHARE (half) of its zone units: the zone's price response is then
  mostly unknown. Ties count as uncertain.

The units that weigh the stores (``uncertain``, ``elasticities``) are each store's expected units
at the zone's prices today (``prices_cents``), on an average day; without prices every store that
carries the SKU weighs the same (its weight), as no price is known to measure units at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from pricing.demand.predictor import DemandPredictor

#: A SKU is uncertain for the zone when stores carrying at least this share of its units say so.
UNCERTAIN_SHARE = 0.5


class ZoneDemand:
    """The summed demand of a zone's stores (see the module docstring).

    ``store_models``: store id -> that store's fitted demand model (summed in store id order, so
    the result does not depend on the mapping's order). ``weights``: store id -> a
    non-negative multiplier of that store's units (e.g. the share of the planned days it is
    open); stores left out weigh 1. ``prices_cents``: SKU -> the zone's shelf price today (cents),
    used to weigh the stores in ``uncertain`` and ``elasticities``.
    """

    def __init__(
        self,
        store_models: Mapping[str, DemandPredictor],
        weights: Mapping[str, float] | None = None,
        *,
        prices_cents: Mapping[str, int] | pd.Series | None = None,
    ) -> None:
        if not store_models:
            raise ValueError("a zone needs at least one store model")
        given = dict(weights or {})
        unknown = sorted(set(given) - set(store_models))
        if unknown:
            raise ValueError(f"weights for stores that have no model: {', '.join(map(str, unknown))}")
        order = sorted(store_models, key=str)  # a fixed order: the same sums whatever order the stores came in
        self.stores_: tuple[str, ...] = tuple(str(store) for store in order)
        self.models_: tuple[DemandPredictor, ...] = tuple(store_models[store] for store in order)
        self.weights_ = np.array([float(given.get(store, 1.0)) for store in order], dtype=np.float64)
        if not (np.isfinite(self.weights_).all() and (self.weights_ >= 0).all()):
            raise ValueError("store weights must be finite and >= 0")
        union = pd.Index([], dtype=object)
        for model in self.models_:
            union = union.append(pd.Index(model.skus_, dtype=object).astype(str))
        self.skus_: pd.Index = pd.Index(pd.unique(union.to_numpy()), dtype=object)
        self.prices_cents_: pd.Series | None = (
            None if prices_cents is None else pd.Series(prices_cents, dtype="float64").rename(index=str)
        )

    # ------------------------------------------------------------------ the cycle's protocol

    def predict_grid(
        self,
        skus: Sequence[str] | np.ndarray,
        prices_cents: np.ndarray,
        *,
        current_prices_cents: Sequence[int] | np.ndarray | None = None,
        dates: Any = None,
    ) -> np.ndarray:
        """Expected zone units per day, SKUs x candidate prices: the stores' weighted sum.

        ``prices_cents`` is (len(skus), k) or (k,) (the same candidates for every SKU);
        ``current_prices_cents`` (aligned with ``skus``) are the zone's prices for the substitutes.
        ValueError for a SKU no store carries.
        """
        names = self._known(skus)
        prices = np.asarray(prices_cents, dtype=np.float64)
        if prices.ndim == 1:
            prices = np.broadcast_to(prices, (len(names), prices.shape[0]))
        if prices.ndim != 2 or prices.shape[0] != len(names):
            raise ValueError(
                f"prices_cents must have shape (n_skus={len(names)}, n_candidates), got {np.shape(prices_cents)}"
            )
        current = None if current_prices_cents is None else np.asarray(current_prices_cents)
        if current is not None and current.shape != (len(names),):
            raise ValueError(f"current_prices_cents must have shape ({len(names)},), got {current.shape}")
        total = np.zeros(prices.shape, dtype=np.float64)
        for model, weight, rows in self._carried(names):
            if weight == 0:
                continue
            units = model.predict_grid(
                names[rows],
                prices[rows],
                current_prices_cents=None if current is None else current[rows],
                dates=dates,
            )
            total[rows] += weight * np.asarray(units, dtype=np.float64)
        return total

    def uncertain(self, skus: Sequence[str] | np.ndarray) -> np.ndarray:
        """True where stores that flag the SKU uncertain carry >= UNCERTAIN_SHARE of its zone units."""
        names = self._known(skus)
        units, flagged = self._store_units(names, with_uncertain=True)
        carried = units.sum(axis=0)
        unsure = (units * flagged).sum(axis=0)
        return unsure >= UNCERTAIN_SHARE * np.where(carried > 0, carried, np.inf)

    # ------------------------------------------------------------------ explanations

    def store_units(self, skus: Sequence[str] | np.ndarray) -> pd.DataFrame:
        """Per store (columns, in ``stores_`` order) and SKU (rows): the weighted units each store
        adds to the zone at today's zone prices (its weight where no prices were given); 0 where
        the store does not carry the SKU."""
        names = self._known(skus)
        units, _ = self._store_units(names, with_uncertain=False)
        return pd.DataFrame(units.T, index=pd.Index(names, name="sku"), columns=list(self.stores_))

    def elasticities(self) -> pd.DataFrame:
        """One row per SKU of the zone: sku, elasticity (the units-weighted mean of the stores'),
        uncertain (see ``uncertain``), units (zone units per day at today's zone prices, NaN
        without prices) and stores (how many stores carry it). Every store model must have
        ``elasticities()`` with ``sku`` and ``elasticity`` columns (as DemandModel does)."""
        names = self.skus_.to_numpy(dtype=object)
        units, flagged = self._store_units(names, with_uncertain=True)
        elasticity = np.zeros(units.shape)
        for s, model in enumerate(self.models_):
            table = getattr(model, "elasticities", None)
            if table is None:
                raise TypeError(f"the model of store {self.stores_[s]} has no elasticities()")
            own = table().assign(sku=lambda t: t["sku"].astype(str)).set_index("sku")["elasticity"]
            elasticity[s] = own.reindex(names).fillna(0.0).to_numpy(dtype=np.float64)
        carried = units.sum(axis=0)
        mean = np.divide((units * elasticity).sum(axis=0), carried, out=np.full(len(names), np.nan), where=carried > 0)
        unsure = (units * flagged).sum(axis=0) >= UNCERTAIN_SHARE * np.where(carried > 0, carried, np.inf)
        carries = np.stack([self._carries(model, names) for model in self.models_])
        return pd.DataFrame(
            {
                "sku": names,
                "elasticity": mean,
                "uncertain": unsure,
                "units": carried if self.prices_cents_ is not None else np.full(len(names), np.nan),
                "stores": carries.sum(axis=0),
            }
        )

    # ------------------------------------------------------------------ helpers

    def _known(self, skus: Sequence[str] | np.ndarray) -> np.ndarray:
        names = np.asarray(pd.Index(np.asarray(skus, dtype=object)).astype(str), dtype=object)
        missing = self.skus_.get_indexer(pd.Index(names, dtype=object)) < 0
        if missing.any():
            examples = ", ".join(repr(s) for s in pd.unique(names[missing])[:5])
            raise ValueError(f"no store of the zone has these SKUs: {int(missing.sum())}, e.g. {examples}")
        return names

    @staticmethod
    def _carries(model: DemandPredictor, names: np.ndarray) -> np.ndarray:
        return pd.Index(model.skus_, dtype=object).astype(str).get_indexer(pd.Index(names, dtype=object)) >= 0

    def _carried(self, names: np.ndarray) -> list[tuple[DemandPredictor, float, np.ndarray]]:
        """Per store: its model, weight and the rows of ``names`` it carries (stores carrying none left out)."""
        out = []
        for model, weight in zip(self.models_, self.weights_, strict=True):
            rows = np.flatnonzero(self._carries(model, names))
            if len(rows):
                out.append((model, float(weight), rows))
        return out

    def _store_units(self, names: np.ndarray, *, with_uncertain: bool) -> tuple[np.ndarray, np.ndarray]:
        """(stores, SKUs) weighted units at today's zone prices (the weight itself without prices),
        and where each store's model flags the SKU uncertain."""
        units = np.zeros((len(self.models_), len(names)))
        flagged = np.zeros(units.shape, dtype=bool)
        today = None
        if self.prices_cents_ is not None:
            today = self.prices_cents_.reindex(names).to_numpy(dtype=np.float64)
            if np.isnan(today).any() or (today <= 0).any():
                bad = names[np.isnan(today) | ~(today > 0)][:5].tolist()
                raise ValueError(f"no positive zone price today for SKUs {bad}")
        for s, model in enumerate(self.models_):
            rows = np.flatnonzero(self._carries(model, names))
            if not len(rows):
                continue
            weight = float(self.weights_[s])
            if today is None:
                units[s, rows] = weight
            else:
                at = today[rows]
                predicted = model.predict_grid(names[rows], at[:, None], current_prices_cents=at)
                units[s, rows] = weight * np.asarray(predicted, dtype=np.float64)[:, 0]
            if with_uncertain:
                flagged[s, rows] = np.asarray(model.uncertain(names[rows]), dtype=bool)
        return units, flagged
