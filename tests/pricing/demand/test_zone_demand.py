"""pricing.demand.zone_demand: a zone's demand is its stores' demand summed.

Real DemandModels fitted on sales that simulator.market draws for two stores of different traffic
(and price sensitivity); small fakes only where a store's units and flags must be set exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pricing.demand.model import DemandModel
from pricing.demand.zone_demand import UNCERTAIN_SHARE, ZoneDemand
from simulator.market import CategoryTruth, DemandTruth, Market

CATEGORY = "snacks"


def quiet_market(elasticity: Mapping[str, float], base_units: Mapping[str, float], ref_cents: Mapping[str, int]) -> Market:
    """A market of one category with no calendar, promo, cross-price or trend effect and Poisson noise."""
    skus = list(elasticity)
    truth = DemandTruth(
        sku=np.array(skus, dtype=object),
        category=np.array([CATEGORY] * len(skus), dtype=object),
        base_units=np.array([base_units[s] for s in skus]),
        ref_price_cents=np.array([ref_cents[s] for s in skus], dtype=np.int64),
        elasticity=np.array([elasticity[s] for s in skus]),
    )
    categories = CategoryTruth(
        category=np.array([CATEGORY], dtype=object),
        dow=np.ones((1, 7)),
        season_amplitude=np.zeros(1),
        season_peak_doy=np.zeros(1, dtype=np.int64),
        promo_uplift=np.ones(1),
        elasticity_mean=np.array([float(np.mean(list(elasticity.values())))]),
        cross_elasticity=np.zeros(1),
        trend_per_year=np.zeros(1),
        dispersion_k=np.array([np.inf]),
    )
    return Market(truth, categories)


def store_sales(market: Market, *, days: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """Daily sales of every SKU of ``market``: prices in 10-day regimes of 75-130% of the reference."""
    rng = np.random.default_rng(seed)
    truth = market.truth
    n = len(truth)
    regimes = rng.choice([0.75, 0.85, 1.0, 1.15, 1.3], size=(n, -(-days // 10)))
    prices = np.round(truth.ref_price_cents[:, None] * np.repeat(regimes, 10, axis=1)[:, :days]).astype(np.int64)
    dates = pd.date_range("2025-01-01", periods=days, freq="D")
    units = market.simulate(prices, dates.to_numpy(), rng=rng)
    frame = pd.DataFrame(
        {
            "sku": np.repeat(truth.sku, days),
            "category": np.repeat(truth.category, days),
            "price_cents": prices.ravel(),
            "promo": np.zeros(n * days, dtype=bool),
            "date": np.tile(dates, n),
        }
    )
    return frame, units.ravel()


def fit_store(
    elasticity: Mapping[str, float], base_units: Mapping[str, float], ref_cents: Mapping[str, int], *, seed: int
) -> DemandModel:
    frame, units = store_sales(quiet_market(elasticity, base_units, ref_cents), seed=seed)
    model = DemandModel(cross_price=False, seasonality=False, trend=False, choice_max_skus=0)
    return model.fit(frame, units)


REF = {"0001": 1999, "0002": 999, "0003": 2499, "0004": 499}


@lru_cache(maxsize=1)
def two_stores() -> tuple[DemandModel, DemandModel]:
    """A busy store with all four SKUs and a quiet, less price-sensitive one without SKU 0004."""
    busy = fit_store(
        {"0001": -2.5, "0002": -2.0, "0003": -3.0, "0004": -2.2},
        {"0001": 30.0, "0002": 40.0, "0003": 20.0, "0004": 25.0},
        REF,
        seed=1,
    )
    quiet = fit_store(
        {"0001": -1.4, "0002": -1.3, "0003": -1.6},
        {"0001": 6.0, "0002": 8.0, "0003": 4.0},
        REF,
        seed=2,
    )
    return busy, quiet


SKUS = np.array(["0001", "0002", "0003", "0004"], dtype=object)
GRID = np.array([[1499, 1999, 2499], [799, 999, 1199], [1999, 2499, 2999], [399, 499, 599]], dtype=np.float64)
CURRENT = np.array([1999, 999, 2499, 499], dtype=np.int64)


def test_the_zone_predicts_the_sum_of_its_stores_predictions() -> None:
    busy, quiet = two_stores()
    zone = ZoneDemand({"s1": busy, "s2": quiet})
    got = zone.predict_grid(SKUS, GRID, current_prices_cents=CURRENT)
    both = busy.predict_grid(SKUS[:3], GRID[:3], current_prices_cents=CURRENT[:3]) + quiet.predict_grid(
        SKUS[:3], GRID[:3], current_prices_cents=CURRENT[:3]
    )
    np.testing.assert_allclose(got[:3], both, rtol=1e-12)
    # 0004 only in the busy store: the quiet one adds nothing.
    alone = busy.predict_grid(SKUS, GRID, current_prices_cents=CURRENT)[3]
    np.testing.assert_allclose(got[3], alone, rtol=1e-12)
    assert list(zone.skus_) == ["0001", "0002", "0003", "0004"]
    # Two stores of different traffic: the busy one sells far more of every shared SKU.
    assert (busy.predict_grid(SKUS[:3], GRID[:3]) > 2 * quiet.predict_grid(SKUS[:3], GRID[:3])).all()


def test_weights_scale_each_stores_units_and_one_row_of_prices_broadcasts() -> None:
    busy, quiet = two_stores()
    zone = ZoneDemand({"s1": busy, "s2": quiet}, weights={"s1": 2.0, "s2": 0.5})
    prices = np.array([899.0, 999.0, 1099.0])
    skus = SKUS[1:3]
    got = zone.predict_grid(skus, prices)
    want = 2.0 * busy.predict_grid(skus, prices) + 0.5 * quiet.predict_grid(skus, prices)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert got.shape == (2, 3)


def test_zone_elasticity_is_the_units_weighted_mean_and_the_zones_own_elasticity() -> None:
    busy, quiet = two_stores()
    today = pd.Series(CURRENT, index=SKUS)
    zone = ZoneDemand({"s1": busy, "s2": quiet}, prices_cents=today)
    table = zone.elasticities().set_index("sku")
    units = zone.store_units(SKUS)
    e_busy = busy.elasticities().set_index("sku")["elasticity"]
    e_quiet = quiet.elasticities().set_index("sku")["elasticity"].reindex(SKUS).fillna(0.0)
    want = (units["s1"] * e_busy.reindex(SKUS).to_numpy() + units["s2"] * e_quiet.to_numpy()) / units.sum(axis=1)
    np.testing.assert_allclose(table.loc[SKUS, "elasticity"].to_numpy(), want.to_numpy(), rtol=1e-12)
    assert table.loc["0004", "elasticity"] == pytest.approx(e_busy["0004"])
    assert list(table.loc[SKUS, "stores"]) == [2, 2, 2, 1]
    # The weighted mean is d ln(zone units) / d ln p at today's prices (constant-elasticity stores).
    step = 1e-4
    up = zone.predict_grid(SKUS, CURRENT[:, None] * np.exp(step), current_prices_cents=CURRENT)[:, 0]
    down = zone.predict_grid(SKUS, CURRENT[:, None] * np.exp(-step), current_prices_cents=CURRENT)[:, 0]
    np.testing.assert_allclose((np.log(up) - np.log(down)) / (2 * step), want.to_numpy(), rtol=1e-5)
    # Shared SKUs sit between the stores' own elasticities.
    for sku in SKUS[:3]:
        low, high = sorted([e_busy[sku], e_quiet[sku]])
        assert low < table.loc[sku, "elasticity"] < high


def test_store_units_are_the_stores_predictions_at_todays_zone_prices() -> None:
    busy, quiet = two_stores()
    zone = ZoneDemand({"s1": busy, "s2": quiet}, prices_cents=dict(zip(SKUS, CURRENT, strict=True)))
    units = zone.store_units(SKUS)
    at = busy.predict_grid(SKUS, CURRENT[:, None], current_prices_cents=CURRENT)[:, 0]
    np.testing.assert_allclose(units["s1"].to_numpy(), at, rtol=1e-12)
    assert units.loc["0004", "s2"] == 0.0


class Fixed:
    """A store model with constant units per SKU at every price and set uncertain flags; counts calls."""

    def __init__(self, units: Mapping[str, float], uncertain: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.skus_ = pd.Index(list(units), dtype=object)
        self._units = dict(units)
        self._uncertain = set(uncertain)
        self.calls: list[tuple[str, int]] = []

    def predict_grid(self, skus: np.ndarray, prices_cents: np.ndarray, *, current_prices_cents: Any = None, dates: Any = None) -> np.ndarray:
        self.calls.append(("predict_grid", len(skus)))
        assert all(str(s) in self._units for s in skus), "a store is only asked about SKUs it carries"
        prices = np.asarray(prices_cents, dtype=np.float64)
        return np.array([self._units[str(s)] for s in skus])[:, None] * np.ones_like(prices)

    def uncertain(self, skus: np.ndarray) -> np.ndarray:
        self.calls.append(("uncertain", len(skus)))
        return np.array([str(s) in self._uncertain for s in skus], dtype=bool)


def test_uncertain_when_the_unsure_stores_carry_at_least_half_the_units() -> None:
    a = Fixed({"x": 90.0, "y": 10.0, "z": 50.0, "w": 5.0}, uncertain={"x", "z"})
    b = Fixed({"x": 10.0, "y": 90.0, "z": 50.0}, uncertain={"y", "w"})
    today = {"x": 100, "y": 100, "z": 100, "w": 100}
    zone = ZoneDemand({"a": a, "b": b}, prices_cents=today)
    # x: 90% in a (unsure); y: 90% in b (unsure); z: a 50/50 tie counts as uncertain; w only in a (sure).
    assert zone.uncertain(np.array(["x", "y", "z", "w"], dtype=object)).tolist() == [True, True, True, False]
    flip = ZoneDemand({"a": Fixed({"x": 90.0}, uncertain=set()), "b": Fixed({"x": 10.0}, uncertain={"x"})}, prices_cents=today)
    assert flip.uncertain(np.array(["x"], dtype=object)).tolist() == [False]  # 10% of units unsure
    assert UNCERTAIN_SHARE == 0.5
    # Without prices the stores weigh by their weights: 1 + 1, a tie, counts as uncertain.
    assert ZoneDemand({"a": a, "b": b}).uncertain(np.array(["x"], dtype=object)).tolist() == [True]
    assert ZoneDemand({"a": a, "b": b}, {"a": 0.2}).uncertain(np.array(["x"], dtype=object)).tolist() == [False]


def test_one_call_per_store_model_whatever_the_number_of_skus() -> None:
    a = Fixed({f"{i:04d}": 1.0 for i in range(200)})
    b = Fixed({f"{i:04d}": 2.0 for i in range(100, 300)})
    c = Fixed({"elsewhere": 5.0})
    zone = ZoneDemand({"a": a, "b": b, "c": c})
    skus = np.array([f"{i:04d}" for i in range(300)], dtype=object)
    units = zone.predict_grid(skus, np.full((300, 4), 100.0), current_prices_cents=np.full(300, 100))
    assert a.calls == [("predict_grid", 200)] and b.calls == [("predict_grid", 200)]
    assert c.calls == []  # carries none of them: not asked
    assert units[:100, 0].tolist() == [1.0] * 100 and units[100:200, 0].tolist() == [3.0] * 100
    assert units[200:, 0].tolist() == [2.0] * 100


def test_refuses_what_it_cannot_price() -> None:
    a = Fixed({"x": 1.0})
    with pytest.raises(ValueError, match="at least one store"):
        ZoneDemand({})
    with pytest.raises(ValueError, match="stores that have no model: ghost"):
        ZoneDemand({"a": a}, {"ghost": 1.0})
    with pytest.raises(ValueError, match="finite and >= 0"):
        ZoneDemand({"a": a}, {"a": -1.0})
    zone = ZoneDemand({"a": a})
    with pytest.raises(ValueError, match="no store of the zone has these SKUs: 1, e.g. 'nope'"):
        zone.predict_grid(np.array(["x", "nope"], dtype=object), np.ones((2, 2)))
    with pytest.raises(ValueError, match="shape"):
        zone.predict_grid(np.array(["x"], dtype=object), np.ones((2, 2)))
    with pytest.raises(ValueError, match="no positive zone price today"):
        ZoneDemand({"a": a}, prices_cents={"y": 100}).uncertain(np.array(["x"], dtype=object))


def test_the_sum_does_not_depend_on_the_order_the_stores_come_in() -> None:
    busy, quiet = two_stores()
    weights = {"a": 1.0, "b": 0.3, "c": 0.7}
    forward = ZoneDemand({"a": busy, "b": quiet, "c": busy}, weights)
    backward = ZoneDemand({"c": busy, "b": quiet, "a": busy}, weights)
    grid = GRID * 1.0137  # prices that are not round numbers, so rounding differs with the order
    got = forward.predict_grid(SKUS, grid, current_prices_cents=CURRENT)
    assert np.array_equal(got, backward.predict_grid(SKUS, grid, current_prices_cents=CURRENT))
    assert forward.stores_ == backward.stores_ == ("a", "b", "c")
    assert list(forward.skus_) == list(backward.skus_)
