"""The market's demand truth: shapes, monotonicity, calendar effects, sampling, persistence."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.market import (
    CATEGORIES_FILE,
    MAX_ELASTICITY,
    TRUTH_FILE,
    CategoryTruth,
    DemandTruth,
    Market,
    days_between,
    weekday_and_doy,
)

CATEGORIES = ["dairy", "produce", "beverages", "household", "toys"]  # "toys" has no profile


def make_market(n: int = 60, seed: int = 3) -> Market:
    rng = np.random.default_rng(seed)
    skus = np.array([f"{i:06d}" for i in range(n)], dtype=object)
    cats = np.array(CATEGORIES, dtype=object)[np.arange(n) % len(CATEGORIES)]
    ref = rng.integers(49, 2000, n)
    return Market.draw(skus, cats, ref, rng)


MARKET = make_market()
SKUS = MARKET.truth.sku


def test_drawn_truth_is_within_bounds() -> None:
    t = MARKET.truth
    assert (t.elasticity <= MAX_ELASTICITY).all()
    assert (t.elasticity >= -4.5).all()
    assert (t.base_units > 0).all()
    assert np.allclose(MARKET.categories.dow.mean(axis=1), 1.0, atol=1e-3)
    assert ((MARKET.categories.elasticity_mean <= -1.4) & (MARKET.categories.elasticity_mean >= -3.0)).all()


def test_truth_arrays_are_read_only() -> None:
    with pytest.raises(ValueError):
        MARKET.truth.elasticity[0] = -2.0


def test_expected_units_1d_shape_and_reference_point() -> None:
    ref = MARKET.truth.ref_price_cents
    units = MARKET.expected_units(SKUS, ref)
    assert units.shape == (len(SKUS),)
    assert np.allclose(units, MARKET.truth.base_units)


def test_expected_units_2d_grid_matches_columns() -> None:
    ref = MARKET.truth.ref_price_cents
    grid = np.round(ref[:, None] * np.linspace(0.7, 1.4, 9)[None, :]).astype(np.int64)
    units = MARKET.expected_units(SKUS, grid)
    assert units.shape == grid.shape
    for j in range(grid.shape[1]):
        assert np.allclose(units[:, j], MARKET.expected_units(SKUS, grid[:, j]))
    promo = MARKET.expected_units(SKUS, grid, promo=True)
    cat = pd.Index(MARKET.categories.category).get_indexer(MARKET.truth.category)
    uplift = MARKET.categories.promo_uplift[cat]
    assert np.allclose(promo, units * uplift[:, None])


def test_expected_units_with_dates_shapes() -> None:
    ref = MARKET.truth.ref_price_cents
    one_day = MARKET.expected_units(SKUS, ref, dates=date(2026, 7, 4))
    assert one_day.shape == (len(SKUS),)
    per_sku = MARKET.expected_units(SKUS, ref, dates=np.full(len(SKUS), np.datetime64("2026-07-04")))
    assert np.allclose(one_day, per_sku)
    days = days_between(date(2026, 1, 1), date(2026, 1, 31))
    panel = MARKET.expected_units(SKUS, np.repeat(ref[:, None], len(days), axis=1), dates=days)
    assert panel.shape == (len(SKUS), len(days))
    assert np.allclose(panel[:, 3], MARKET.expected_units(SKUS, ref, dates=days[3]))
    with pytest.raises(ValueError):
        MARKET.expected_units(SKUS, ref, dates=days)  # 31 dates do not fit 60 prices


def test_year_average_equals_average_day() -> None:
    ref = MARKET.truth.ref_price_cents
    days = days_between(date(2025, 1, 1), date(2028, 12, 30))  # whole weeks, ~4 years
    panel = MARKET.expected_units(SKUS, np.repeat(ref[:, None], len(days), axis=1), dates=days)
    assert np.allclose(panel.mean(axis=1), MARKET.expected_units(SKUS, ref), rtol=0.01)


def test_weekday_and_day_of_year() -> None:
    weekday, doy = weekday_and_doy(np.array(["2026-11-02", "2026-01-01", "2024-12-31"], dtype="datetime64[D]"))
    assert weekday.tolist() == [0, 3, 1]  # Monday, Thursday, Tuesday
    assert doy.tolist() == [305, 0, 365]


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(KeyError):
        MARKET.expected_units(["nope"], [100])
    with pytest.raises(ValueError):
        MARKET.expected_units(SKUS[:2], [100, 0])
    with pytest.raises(ValueError):
        MARKET.expected_units(SKUS[:2], [100, 200, 300])


@settings(max_examples=200, deadline=None)
@given(
    i=st.integers(0, len(SKUS) - 1),
    low=st.integers(1, 100_000),
    extra=st.integers(0, 100_000),
    day=st.dates(date(2000, 1, 1), date(2100, 12, 31)),
    promo=st.booleans(),
    dated=st.booleans(),
)
def test_demand_never_rises_with_price(i: int, low: int, extra: int, day: date, promo: bool, dated: bool) -> None:
    sku = SKUS[i : i + 1]
    dates = day if dated else None
    cheap = MARKET.expected_units(sku, [low], dates=dates, promo=promo)
    dear = MARKET.expected_units(sku, [low + extra], dates=dates, promo=promo)
    assert dear[0] <= cheap[0]
    assert dear[0] >= 0


def test_sample_units_are_poisson_around_expectation() -> None:
    rng = np.random.default_rng(0)
    ref = MARKET.truth.ref_price_cents
    grid = np.repeat(ref[:, None], 4000, axis=1)
    units = MARKET.sample_units(SKUS, grid, rng=rng)
    assert units.shape == grid.shape
    assert np.issubdtype(units.dtype, np.integer)
    assert np.allclose(units.mean(axis=1), MARKET.truth.base_units, rtol=0.1, atol=0.05)


def test_designed_price_experiment_recovers_elasticity() -> None:
    rng = np.random.default_rng(1)
    ref = MARKET.truth.ref_price_cents
    ratio = rng.uniform(0.7, 1.4, (len(SKUS), 400))
    prices = np.maximum(np.round(ref[:, None] * ratio), 1)
    units = MARKET.sample_units(SKUS, prices, rng=rng)
    busy = MARKET.truth.base_units > 2
    x = np.log(prices[busy] / ref[busy, None])
    y = np.log(units[busy] + 0.5)
    slope = ((x - x.mean(1, keepdims=True)) * (y - y.mean(1, keepdims=True))).sum(1) / (
        (x - x.mean(1, keepdims=True)) ** 2
    ).sum(1)
    assert np.abs(slope - MARKET.truth.elasticity[busy]).mean() < 0.3


def test_optimal_price_maximises_profit() -> None:
    cost = MARKET.truth.ref_price_cents * 0.7
    best = MARKET.optimal_price_cents(SKUS, cost)
    assert (best > cost).all()
    for factor in (0.9, 0.97, 1.03, 1.1):
        here = (best - cost) * MARKET.expected_units(SKUS, best)
        there = (best * factor - cost) * MARKET.expected_units(SKUS, best * factor)
        assert (here >= there - 1e-9).all()


def test_save_and_load_round_trip(tmp_path) -> None:
    truth_path, cat_path = MARKET.save(tmp_path)
    assert (truth_path.name, cat_path.name) == (TRUTH_FILE, CATEGORIES_FILE)
    assert truth_path.read_text().splitlines()[1].startswith("000000,")
    loaded = Market.load(tmp_path)
    pd_truth, pd_loaded = MARKET.truth.frame(), loaded.truth.frame()
    assert pd_loaded["sku"].tolist() == pd_truth["sku"].tolist()
    assert pd_loaded.equals(pd_truth)
    assert loaded.categories.frame().equals(MARKET.categories.frame())
    days = days_between(date(2026, 3, 1), date(2026, 3, 7))
    grid = np.repeat(MARKET.truth.ref_price_cents[:, None], len(days), axis=1)
    assert np.array_equal(loaded.expected_units(SKUS, grid, days), MARKET.expected_units(SKUS, grid, days))


def test_save_next_to_a_csv_path(tmp_path) -> None:
    truth_path, cat_path = MARKET.save(tmp_path / "other.csv")
    assert cat_path == tmp_path / "other_categories.csv"
    assert len(Market.load(truth_path)) == len(MARKET)


def test_truth_validation() -> None:
    frame = MARKET.truth.frame()
    with pytest.raises(ValueError):
        DemandTruth.from_frame(frame.assign(elasticity=-0.5))
    with pytest.raises(ValueError):
        DemandTruth.from_frame(frame.assign(sku="same"))
    with pytest.raises(ValueError):
        Market(MARKET.truth, CategoryTruth.from_frame(MARKET.categories.frame().iloc[:2]))
