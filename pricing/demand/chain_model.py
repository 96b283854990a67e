"""Chain demand: one DemandModel per store, its elasticities pooled store -> zone -> chain.

In: each store's fitted DemandModel and the store -> zone map. Out: the same models with every
log-log SKU's own-price elasticity moved toward its zone's and the chain's in proportion to how
little the store's own data say, and a ``ChainPooling`` summary for the chain's model card.

The hierarchy (normal, per SKU j; s a store of zone z)::

    e_sj ~ N(theta_sj, se_sj^2)          the store's own estimate and its standard error
    theta_sj ~ N(theta_zj, tau_store^2)  stores of a zone differ by tau_store
    theta_zj ~ N(theta_cj, tau_zone^2)   zones differ around the chain by tau_zone

``tau_store`` and ``tau_zone`` are estimated by moments, pooled over SKUs (the spread of the
estimates beyond what their standard errors explain, as DerSimonian-Laird does for one SKU).
Each zone mean is a precision-weighted mean of its stores, shrunk toward the chain mean; each
store's posterior combines its estimate with its zone's, so a store with little data (a wide
se) takes its zone's value and one with a lot keeps its own. The zone mean includes the store's
own estimate (no leave-one-out): with a handful of stores per zone this slightly over-trusts a
store's own value; the shrinkage is still toward the right place.

SKUs of a category the store model prices with the choice family (``model_family_``) keep the
choice model's values: their elasticities come from a different structure.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pricing.demand.model import DemandModel

_MIN_VAR = 1e-6  # a variance floor: tau estimated at 0 would make every weight infinite


@dataclass(frozen=True)
class ChainPooling:
    """What pooling found: the spreads, and the chain's and zones' elasticity per SKU."""

    tau_store: float
    tau_zone: float
    chain: pd.Series  # sku -> chain-level elasticity
    zone: pd.DataFrame  # zone x sku -> zone-level elasticity (after shrinking toward the chain)
    stores: int
    zones: int
    skus: int
    notes: list[str] = field(default_factory=list)

    def card(self) -> dict[str, object]:
        """The chain-level part of the model card (JSON-ready)."""
        return {
            "stores": self.stores,
            "zones": self.zones,
            "skus": self.skus,
            "tau_store": round(self.tau_store, 4),
            "tau_zone": round(self.tau_zone, 4),
            "chain_mean_elasticity": round(float(self.chain.mean()), 4) if len(self.chain) else None,
            "zone_mean_elasticity": (
                {str(z): round(float(v), 4) for z, v in self.zone.mean(axis=1).items()} if not self.zone.empty else {}
            ),
            "notes": list(self.notes),
        }


def store_estimates(models: Mapping[str, DemandModel], zone_of: Mapping[str, str]) -> pd.DataFrame:
    """One row per store and log-log SKU: store, zone, sku, elasticity, se."""
    frames = []
    for store in sorted(models):
        model = models[store]
        loglog = _loglog_mask(model)
        frames.append(
            pd.DataFrame(
                {
                    "store": store,
                    "zone": zone_of[store],
                    "sku": np.asarray(model.skus_)[loglog],
                    "elasticity": np.asarray(model.elasticity_, dtype=np.float64)[loglog],
                    "se": np.asarray(model.elasticity_se_, dtype=np.float64)[loglog],
                }
            )
        )
    if not frames:
        return pd.DataFrame(columns=["store", "zone", "sku", "elasticity", "se"])
    return pd.concat(frames, ignore_index=True)


def pool_elasticities(estimates: pd.DataFrame) -> tuple[pd.DataFrame, ChainPooling]:
    """Pool ``estimates`` (store, zone, sku, elasticity, se) store -> zone -> chain.

    Returns the rows with ``pooled`` (posterior mean), ``pooled_se`` and ``own_weight`` (the
    share of the posterior precision that the store's own data give), and the summary.
    """
    est = estimates.copy()
    var = np.square(est["se"].to_numpy(dtype=np.float64))
    usable = np.isfinite(var) & np.isfinite(est["elasticity"].to_numpy(dtype=np.float64))
    est["var"] = np.where(usable, np.maximum(var, _MIN_VAR), np.inf)
    est["prec"] = np.where(usable, 1.0 / est["var"], 0.0)
    notes: list[str] = []

    tau_store2 = _between_variance(est, ["zone", "sku"])
    # zone means of the stores' estimates (precision-weighted, each store's weight 1/(se^2 + tau^2))
    est["w"] = np.where(usable, 1.0 / (est["var"] + tau_store2), 0.0)
    est["we"] = est["w"] * np.where(usable, est["elasticity"], 0.0)
    zones = est.groupby(["zone", "sku"], sort=True)[["w", "we"]].sum()
    has = zones["w"] > 0
    zones["mean"] = np.where(has, zones["we"] / zones["w"].where(has, 1.0), np.nan)
    zones["var"] = np.where(has, 1.0 / zones["w"].where(has, 1.0), np.inf)

    zone_rows = zones.reset_index().rename(columns={"mean": "elasticity"})
    zone_rows["se"] = np.sqrt(zone_rows["var"])
    tau_zone2 = _between_variance(zone_rows.assign(zone="chain"), ["zone", "sku"])
    zones["u"] = np.where(has, 1.0 / (zones["var"] + tau_zone2), 0.0)
    zones["ue"] = zones["u"] * zones["mean"].fillna(0.0)
    chain_sums = zones.groupby(level="sku")[["u", "ue"]].sum()
    chain = (chain_sums["ue"] / chain_sums["u"].where(chain_sums["u"] > 0)).rename("chain")
    if chain.isna().any():
        notes.append(f"{int(chain.isna().sum())} SKUs have no usable estimate in any store")

    # each zone shrunk toward the chain; then each store toward its zone
    zones = zones.join(chain, on="sku")
    z_prec = np.where(has, 1.0 / zones["var"].where(has, 1.0), 0.0) + 1.0 / tau_zone2
    zones["post"] = (np.where(has, zones["mean"].fillna(0.0) / zones["var"].where(has, 1.0), 0.0)
                     + zones["chain"] / tau_zone2) / z_prec
    zones["post_var"] = 1.0 / z_prec
    est = est.join(zones[["post", "post_var"]], on=["zone", "sku"])
    prior_var = tau_store2 + est["post_var"]
    prec = est["prec"] + 1.0 / prior_var
    own = np.where(usable, est["elasticity"], 0.0) * est["prec"]
    est["pooled"] = (own + est["post"] / prior_var) / prec
    est["pooled_se"] = np.sqrt(1.0 / prec)
    est["own_weight"] = est["prec"] / prec

    summary = ChainPooling(
        tau_store=float(np.sqrt(tau_store2)),
        tau_zone=float(np.sqrt(tau_zone2)),
        chain=chain,
        zone=zones["post"].unstack("sku"),
        stores=int(est["store"].nunique()),
        zones=int(est["zone"].nunique()),
        skus=int(est["sku"].nunique()),
        notes=notes,
    )
    out = est[["store", "zone", "sku", "elasticity", "se", "pooled", "pooled_se", "own_weight"]]
    return out.reset_index(drop=True), summary


def apply_pooling(model: DemandModel, pooled: pd.DataFrame) -> DemandModel:
    """A copy of ``model`` whose log-log SKUs take ``pooled`` (this store's rows of
    pool_elasticities) as their elasticity and standard error (uncertain flags recomputed)."""
    out = copy.deepcopy(model)
    rows = pooled.set_index("sku")
    skus = pd.Index(np.asarray(out.skus_))
    pos = skus.get_indexer(rows.index)
    keep = (pos >= 0) & _loglog_mask(out)[np.maximum(pos, 0)]
    pos, rows = pos[keep], rows[keep]
    elasticity = np.asarray(out.elasticity_, dtype=np.float64).copy()
    se = np.asarray(out.elasticity_se_, dtype=np.float64).copy()
    value = np.clip(rows["pooled"].to_numpy(dtype=np.float64), out.min_elasticity, out.max_elasticity)
    elasticity[pos] = value
    se[pos] = rows["pooled_se"].to_numpy(dtype=np.float64)
    out.elasticity_ = elasticity
    out.elasticity_se_ = se
    uncertain = np.asarray(out.uncertain_, dtype=bool).copy()
    uncertain[pos] = ~(se[pos] <= out.max_elasticity_se)
    out.uncertain_ = uncertain
    return out


def pool_chain(
    models: Mapping[str, DemandModel], zone_of: Mapping[str, str]
) -> tuple[dict[str, DemandModel], pd.DataFrame, ChainPooling]:
    """Pool every store model of a chain: the pooled models, the per-row table and the summary."""
    pooled, summary = pool_elasticities(store_estimates(models, zone_of))
    by_store = {store: rows for store, rows in pooled.groupby("store", sort=True)}
    out = {
        store: apply_pooling(model, by_store[store]) if store in by_store else model
        for store, model in sorted(models.items())
    }
    return out, pooled, summary


def _between_variance(rows: pd.DataFrame, group: list[str]) -> float:
    """tau^2 by DerSimonian-Laird, pooled over groups: with w = 1/se^2 in each group,
    Q = sum w (e - e_w)^2 has expectation (k - 1) + tau^2 (sum w - sum w^2 / sum w), so
    tau^2 = (sum Q - sum (k - 1)) / sum (sum w - sum w^2 / sum w), floored at _MIN_VAR. A plain
    spread-minus-noise moment went negative whenever one store of a group had a very wide se."""
    e = rows["elasticity"].to_numpy(dtype=np.float64)
    var = np.square(rows["se"].to_numpy(dtype=np.float64))
    usable = np.isfinite(e) & np.isfinite(var)
    frame = rows.loc[usable, group].copy()
    frame["w"] = 1.0 / np.maximum(var[usable], _MIN_VAR)
    frame["we"] = frame["w"] * e[usable]
    frame["wee"] = frame["we"] * e[usable]
    frame["ww"] = frame["w"] ** 2
    g = frame.groupby(group, sort=False)[["w", "we", "wee", "ww"]].sum()
    k = frame.groupby(group, sort=False).size()
    g = g[k > 1]
    if g.empty:
        return _MIN_VAR
    q = g["wee"] - g["we"] ** 2 / g["w"]
    c = g["w"] - g["ww"] / g["w"]
    tau2 = (float(q.sum()) - float((k[k > 1] - 1).sum())) / float(c.sum())
    return float(max(tau2, _MIN_VAR))


def _loglog_mask(model: DemandModel) -> np.ndarray:
    """SKU positions whose category uses the log-log family."""
    n = len(model.skus_)
    family = getattr(model, "model_family_", None)
    if family is None:
        return np.ones(n, dtype=bool)
    return (family.to_numpy() == "loglog")[model.sku_category_code_]
