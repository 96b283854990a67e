"""Chain pooling of store elasticities: recovery of the spreads, shrinkage by data, real models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pricing.demand.chain_model import apply_pooling, pool_chain, pool_elasticities, store_estimates
from pricing.demand.model import DemandModel


def hierarchy(
    *, zones: int = 4, stores_per_zone: int = 5, skus: int = 300, tau_zone: float = 0.3, tau_store: float = 0.2,
    se: float | np.ndarray = 0.25, seed: int = 0,
) -> tuple[pd.DataFrame, pd.Series]:
    """Store estimates drawn from the hierarchy the module assumes; returns them and the truth."""
    rng = np.random.default_rng(seed)
    chain = rng.uniform(-3.0, -1.0, skus)
    rows, truth = [], []
    for z in range(zones):
        theta_z = chain + rng.normal(0, tau_zone, skus)
        for s in range(stores_per_zone):
            theta_s = theta_z + rng.normal(0, tau_store, skus)
            sd = np.broadcast_to(np.asarray(se, dtype=np.float64), (skus,))
            store = f"s{z}{s}"
            rows.append(pd.DataFrame({
                "store": store, "zone": f"z{z}", "sku": [f"{j:05d}" for j in range(skus)],
                "elasticity": theta_s + rng.normal(0, 1, skus) * sd, "se": sd,
            }))
            truth.append(pd.Series(theta_s, index=pd.MultiIndex.from_product([[store], rows[-1]["sku"]])))
    return pd.concat(rows, ignore_index=True), pd.concat(truth)


def mae(pooled: pd.DataFrame, truth: pd.Series, column: str) -> float:
    values = pooled.set_index(["store", "sku"])[column]
    return float(np.abs(values - truth.loc[values.index]).mean())


def test_the_spreads_are_recovered_and_pooling_beats_each_store_alone() -> None:
    estimates, truth = hierarchy(seed=1)
    pooled, summary = pool_elasticities(estimates)
    assert summary.tau_store == pytest.approx(0.2, abs=0.03)
    assert summary.tau_zone == pytest.approx(0.3, abs=0.08)
    assert mae(pooled, truth, "pooled") < 0.8 * mae(pooled, truth, "elasticity")
    assert (pooled["pooled_se"] < pooled["se"]).all()


def test_a_store_with_little_data_takes_its_zone_and_one_with_much_keeps_its_own() -> None:
    estimates, _ = hierarchy(seed=2, se=0.2)
    thin = estimates["store"] == "s00"
    rich = estimates["store"] == "s01"
    estimates.loc[thin, "se"] = 5.0
    estimates.loc[rich, "se"] = 0.01
    pooled, summary = pool_elasticities(estimates)
    by = pooled.set_index(["store", "sku"])
    zone_z0 = summary.zone.loc["z0"]
    thin_rows = by.loc["s00"]
    assert (thin_rows["own_weight"] < 0.01).all()
    assert np.abs(thin_rows["pooled"] - zone_z0.loc[thin_rows.index]).max() < 0.05
    rich_rows = by.loc["s01"]
    assert (rich_rows["own_weight"] > 0.99).all()
    assert np.abs(rich_rows["pooled"] - rich_rows["elasticity"]).max() < 0.01


def test_no_spread_between_stores_pools_everything() -> None:
    estimates, _ = hierarchy(seed=3, tau_store=0.0, tau_zone=0.0, stores_per_zone=4, zones=2)
    pooled, summary = pool_elasticities(estimates)
    assert summary.tau_store < 0.08 and summary.tau_zone < 0.08  # sd of the estimate of tau^2 here: ~0.002
    per_sku = pooled.groupby("sku")["pooled"]
    assert float((per_sku.max() - per_sku.min()).max()) < 0.05  # every store gets the chain value


def test_a_store_without_an_estimate_gets_the_zone_value() -> None:
    estimates, _ = hierarchy(seed=4, skus=50)
    estimates.loc[estimates["store"] == "s10", "se"] = np.inf
    pooled, summary = pool_elasticities(estimates)
    rows = pooled[pooled["store"] == "s10"].set_index("sku")
    assert (rows["own_weight"] == 0).all()
    np.testing.assert_allclose(rows["pooled"], summary.zone.loc["z1"].loc[rows.index], atol=1e-9)


def _store_model(seed: int, scale: float) -> DemandModel:
    rng = np.random.default_rng(seed)
    days = pd.date_range("2026-01-01", periods=120, freq="D")
    skus = [f"{j:04d}" for j in range(12)]
    true = np.linspace(-2.5, -1.2, len(skus))
    frames = []
    for j, sku in enumerate(skus):
        price = 200 * np.exp(rng.normal(0, 0.12, len(days)))
        mu = scale * 20 * (price / 200) ** true[j]
        frames.append(pd.DataFrame({
            "date": days, "sku": sku, "category": "snacks", "price_cents": price.round().astype(int),
            "promo": False, "units": rng.poisson(mu),
        }))
    data = pd.concat(frames, ignore_index=True)
    return DemandModel(choice_max_skus=0).fit(data.drop(columns="units"), data["units"].to_numpy())


def test_pooling_real_store_models_keeps_predictions_consistent() -> None:
    models = {"a": _store_model(1, 1.0), "b": _store_model(2, 0.2), "c": _store_model(3, 3.0)}
    zone_of = {"a": "z1", "b": "z1", "c": "z2"}
    pooled_models, rows, summary = pool_chain(models, zone_of)
    assert summary.stores == 3 and summary.zones == 2
    assert set(rows["store"]) == {"a", "b", "c"}
    small = pooled_models["b"]
    assert not np.allclose(small.elasticity_, models["b"].elasticity_)  # the small store moved
    assert (small.elasticity_se_ <= models["b"].elasticity_se_ + 1e-12).all()
    # the model predicts with the pooled elasticity: log-slope of predict_grid equals it
    prices = np.array([[180.0, 220.0]] * len(small.skus_))
    grid = small.predict_grid(list(small.skus_), prices)
    slope = np.log(grid[:, 1] / grid[:, 0]) / np.log(220.0 / 180.0)
    np.testing.assert_allclose(slope, small.elasticity_, atol=0.05)
    assert models["b"] is not small  # the input models are left alone
    again = apply_pooling(models["b"], rows[rows["store"] == "b"])
    np.testing.assert_allclose(again.elasticity_, small.elasticity_)
    assert len(store_estimates(models, zone_of)) == 36
