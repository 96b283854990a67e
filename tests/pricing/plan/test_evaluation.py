"""Evaluation against the simulator's truth: the oracle predictor, elasticity error, closed loop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pricing.core.store_data import load_store
from pricing.demand.model import DemandModel
from pricing.demand.training import train_demand_model
from pricing.plan.evaluation import (
    EvaluationOptions,
    TruthDemand,
    closed_loop,
    elasticity_error,
    evaluate,
)
from pricing.rules.config import RulesConfig
from simulator.market import Market
from simulator.store import generate_store


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("store")
    generate_store(out, skus=200, days=200, seed=3)
    return out


@pytest.fixture(scope="module")
def market(store_dir: Path) -> Market:
    return Market.load(store_dir)


@pytest.fixture(scope="module")
def model(store_dir: Path) -> DemandModel:
    store = load_store(store_dir)
    return train_demand_model(store.sales, store.products, holdout_days=0).model


def test_truth_demand_is_the_markets_expected_units(market: Market) -> None:
    oracle = TruthDemand(market)
    skus = market.truth.sku[:5]
    ref = market.truth.ref_price_cents[:5].astype(float)
    grid = np.stack([ref * 0.9, ref, ref * 1.1], axis=1)
    units = oracle.predict_grid(skus, grid, current_prices_cents=ref)
    assert np.allclose(units[:, 1], market.truth.base_units[:5])  # everyone at reference: no index effect
    assert (np.diff(units, axis=1) < 0).all()
    # Cheaper substitutes (everyone else at reference, these five cut 20%) lower the others' demand.
    cut = oracle.predict_grid(skus, grid, current_prices_cents=ref * 0.8)
    same_category = pd.Series(market.truth.category[:5]).duplicated(keep=False).to_numpy()
    assert (cut[same_category, 1] < units[same_category, 1]).all()
    assert not oracle.uncertain(skus).any()


def test_elasticity_error_table(model: DemandModel, market: Market) -> None:
    table, metrics = elasticity_error(model, market)
    assert int(table["skus"].sum()) == len(model.skus_) == metrics["elasticity_skus"]
    learned = model.elasticities().set_index("sku")["elasticity"]
    truth = market.truth.frame().set_index("sku")["elasticity"]
    assert metrics["elasticity_mae"] == pytest.approx(float((learned - truth.reindex(learned.index)).abs().mean()))
    assert metrics["elasticity_mae"] < metrics["elasticity_mae_category_only"]  # SKU estimates add information
    assert set(table.columns) >= {"true_mean", "learned_mean", "mae", "uncertain_share", "cross_learned", "cross_true"}


def test_closed_loop_arms(store_dir: Path, market: Market, model: DemandModel) -> None:
    store = load_store(store_dir)
    loop = closed_loop(store, market, model, RulesConfig(), weeks=2, seed=1)
    assert loop.weeks == 2 and all(len(v) == 2 for v in loop.realised.values())
    # The oracle maximises true expected profit under the same rules: nobody beats it on expectation
    # by more than the rounding of a greedy weekly plan, and it beats keeping today's prices.
    assert loop.total("oracle", "expected") >= loop.total("hold", "expected")
    assert loop.ratio("engine", "expected") <= 1.005
    assert 0.9 < loop.ratio("engine") < 1.05
    assert len(loop.changes_per_week) == 2 and loop.changes_per_week[0] > 0


def test_evaluate_report_summary(store_dir: Path) -> None:
    messages: list[str] = []
    report = evaluate(
        EvaluationOptions(store_dir=store_dir, holdout_weeks=2, loop_weeks=1), progress=messages.append
    )
    summary = report.summary()
    assert summary["wape"] < summary["wape_baseline"]
    assert summary["closed_loop_weeks"] == 1
    assert set(summary["elasticity_mae_by_category"]) == set(report.categories.index)
    assert any("week 1" in m for m in messages)
