"""The market's demand truth: shapes, monotonicity, calendar effects, sampling, persistence."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.market import (
    AMPLE_EXTRA,
    AMPLE_FACTOR,
    BLOCK_SKUS,
    CATEGORIES_FILE,
    DISPERSION_K_RANGE,
    MAX_ELASTICITY,
    SHORT_RUN_MAX,
    TRUTH_FILE,
    YEAR_DAYS,
    CategoryTruth,
    DemandTruth,
    Market,
    days_between,
    draw_stock,
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


def category_rows(market: Market) -> np.ndarray:
    """Row of each SKU's category in the category truth."""
    return pd.Index(market.categories.category).get_indexer(market.truth.category)


def tiny_market(trend_origin: date = date(2026, 1, 1)) -> Market:
    """Three substitutes in category "a", one SKU alone in "b"; flat calendar."""
    truth = DemandTruth(
        sku=np.array(["a1", "a2", "a3", "b1"], dtype=object),
        category=np.array(["a", "a", "a", "b"], dtype=object),
        base_units=np.array([10.0, 20.0, 5.0, 8.0]),
        ref_price_cents=np.array([100, 200, 400, 50]),
        elasticity=np.array([-2.0, -1.5, -3.0, -2.5]),
    )
    cats = CategoryTruth(
        category=np.array(["a", "b"], dtype=object),
        dow=np.ones((2, 7)),
        season_amplitude=np.zeros(2),
        season_peak_doy=np.zeros(2, dtype=np.int64),
        promo_uplift=np.array([1.3, 1.2]),
        elasticity_mean=np.array([-2.0, -2.5]),
        cross_elasticity=np.array([0.5, 0.7]),
        trend_per_year=np.array([0.08, -0.05]),
        dispersion_k=np.array([5.0, 8.0]),
    )
    return Market(truth, cats, trend_origin)


TINY = tiny_market()


def test_drawn_truth_is_within_bounds() -> None:
    t = MARKET.truth
    assert (t.elasticity <= MAX_ELASTICITY).all()
    assert (t.elasticity >= -4.5).all()
    assert (t.base_units > 0).all()
    assert np.allclose(MARKET.categories.dow.mean(axis=1), 1.0, atol=1e-3)
    assert ((MARKET.categories.elasticity_mean <= -1.4) & (MARKET.categories.elasticity_mean >= -3.0)).all()
    c = MARKET.categories
    assert ((c.cross_elasticity >= 0.3) & (c.cross_elasticity <= 0.8)).all()
    assert ((c.trend_per_year >= -0.06) & (c.trend_per_year <= 0.10)).all()
    assert ((c.dispersion_k >= DISPERSION_K_RANGE[0]) & (c.dispersion_k <= DISPERSION_K_RANGE[1])).all()
    assert MARKET.trend_origin == date(2026, 1, 1)


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


def test_year_average_equals_average_day_once_the_trend_is_divided_out() -> None:
    ref = MARKET.truth.ref_price_cents
    days = days_between(date(2025, 1, 1), date(2028, 12, 30))  # whole weeks, ~4 years
    panel = MARKET.expected_units(SKUS, np.repeat(ref[:, None], len(days), axis=1), dates=days)
    years = (days - np.datetime64(MARKET.trend_origin)).astype(np.int64) / YEAR_DAYS
    trend = np.exp(MARKET.categories.trend_per_year[category_rows(MARKET)][:, None] * years[None, :])
    assert not np.allclose(panel.mean(axis=1), MARKET.expected_units(SKUS, ref), rtol=0.01)
    assert np.allclose((panel / trend).mean(axis=1), MARKET.expected_units(SKUS, ref), rtol=0.01)


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
    index=st.floats(-1.0, 1.0),
)
def test_demand_never_rises_with_price(
    i: int, low: int, extra: int, day: date, promo: bool, dated: bool, index: float
) -> None:
    sku = SKUS[i : i + 1]
    dates = day if dated else None
    cheap = MARKET.expected_units(sku, [low], dates=dates, promo=promo, category_index=index)
    dear = MARKET.expected_units(sku, [low + extra], dates=dates, promo=promo, category_index=index)
    assert dear[0] <= cheap[0]
    assert dear[0] >= 0


def test_sample_units_are_centred_on_the_expectation() -> None:
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


def test_new_category_fields_and_trend_origin_round_trip(tmp_path) -> None:
    market = Market(MARKET.truth, MARKET.categories, trend_origin=date(2025, 11, 2))
    _, cat_path = market.save(tmp_path)
    header = cat_path.read_text().splitlines()[0].split(",")
    assert {"cross_elasticity", "trend_per_year", "dispersion_k", "trend_origin"} <= set(header)
    loaded = Market.load(tmp_path)
    assert loaded.trend_origin == date(2025, 11, 2)
    for name in ("cross_elasticity", "trend_per_year", "dispersion_k"):
        assert np.array_equal(getattr(loaded.categories, name), getattr(MARKET.categories, name)), name
    days = days_between(date(2027, 3, 1), date(2027, 3, 7))
    grid = np.repeat(MARKET.truth.ref_price_cents[:, None], len(days), axis=1) * 0.9
    assert np.array_equal(loaded.expected(grid, days), market.expected(grid, days))
    assert not np.array_equal(loaded.expected(grid, days), MARKET.expected(grid, days))  # origin matters


def test_category_file_without_new_columns_loads_neutral(tmp_path) -> None:
    MARKET.save(tmp_path)
    path = tmp_path / CATEGORIES_FILE
    old = pd.read_csv(path).drop(columns=["cross_elasticity", "trend_per_year", "dispersion_k", "trend_origin"])
    old.to_csv(path, index=False)
    loaded = Market.load(tmp_path)
    assert (loaded.categories.cross_elasticity == 0).all() and (loaded.categories.trend_per_year == 0).all()
    assert np.isinf(loaded.categories.dispersion_k).all()
    units = loaded.sample_units(SKUS, np.repeat(MARKET.truth.ref_price_cents[:, None], 4000, axis=1), rng=np.random.default_rng(2))
    busy = MARKET.truth.base_units > 5
    assert np.allclose(units[busy].var(axis=1) / units[busy].mean(axis=1), 1.0, atol=0.1)  # Poisson again


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
    cats = MARKET.categories.frame()
    with pytest.raises(ValueError):
        CategoryTruth.from_frame(cats.assign(cross_elasticity=-0.1))
    with pytest.raises(ValueError):
        CategoryTruth.from_frame(cats.assign(dispersion_k=0.0))


# ---- substitutes, trend, noise, stock -----------------------------------------------------


def test_category_index_is_the_leave_one_out_mean_on_a_tiny_market() -> None:
    prices = np.array([110, 180, 400, 60])
    a1, a2, a3 = np.log(1.1), np.log(0.9), 0.0
    expected = [(a2 + a3) / 2, (a1 + a3) / 2, (a1 + a2) / 2, 0.0]  # b1 is alone in "b"
    assert np.allclose(TINY.category_index(prices), expected, rtol=0, atol=1e-15)
    wide = np.column_stack([prices, TINY.truth.ref_price_cents, [50, 400, 200, 25]])
    index = TINY.category_index(wide)
    assert index.shape == (4, 3)
    assert np.allclose(index[:, 0], expected)
    assert np.allclose(index[:, 1], 0.0)
    assert np.allclose(index[:, 2], [0.0, np.log(0.5), 0.0, 0.0])  # log ratios -l, +l, -l: a2 sees two at half
    assert TINY.category_index(wide, dtype=np.float32).dtype == np.float32
    with pytest.raises(ValueError):
        TINY.category_index(prices[:3])  # one price per market SKU
    with pytest.raises(ValueError):
        TINY.category_index([110, 0, 400, 60])


def test_category_index_matches_a_groupby_on_a_market_larger_than_a_block() -> None:
    market = make_market(n=BLOCK_SKUS + 1500, seed=8)
    rng = np.random.default_rng(4)
    prices = np.round(market.truth.ref_price_cents[:, None] * rng.uniform(0.6, 1.3, (len(market), 3)))
    logr = pd.DataFrame(np.log(prices / market.truth.ref_price_cents[:, None]))
    groups = logr.groupby(market.truth.category)
    loo = (groups.transform("sum") - logr) / (groups.transform("count") - 1)
    assert np.allclose(market.category_index(prices), loo.to_numpy(), rtol=0, atol=1e-12)


def test_cheaper_substitutes_lower_sales_by_exp_cross_times_index_change() -> None:
    ref = TINY.truth.ref_price_cents.astype(float)
    before = TINY.expected(ref)
    cut = ref * np.array([1.0, 0.8, 0.8, 1.0])  # a2 and a3 on promo, a1 and b1 unchanged
    after = TINY.expected(cut)
    d_index = np.log(0.8)  # a1's substitutes are both 20% cheaper
    assert after[0] / before[0] == pytest.approx(np.exp(0.5 * d_index), rel=1e-12)
    assert after[0] < before[0]
    assert after[3] == pytest.approx(before[3], rel=1e-12)  # another category
    # A drawn market: every other SKU of SKU 0's category 15% cheaper on three dates.
    days = days_between(date(2026, 5, 4), date(2026, 5, 6))
    same = category_rows(MARKET) == category_rows(MARKET)[0]
    grid = np.repeat(MARKET.truth.ref_price_cents[:, None] * 1.05, len(days), axis=1)
    cheaper = grid.copy()
    cheaper[same & (np.arange(len(SKUS)) > 0)] *= 0.85
    x = MARKET.categories.cross_elasticity[category_rows(MARKET)[0]]
    ratio = MARKET.expected(cheaper, days)[0] / MARKET.expected(grid, days)[0]
    assert np.allclose(ratio, np.exp(x * np.log(0.85)), rtol=1e-12)
    index = MARKET.category_index(grid)
    assert np.allclose(
        MARKET.expected(grid, days), MARKET.expected_units(SKUS, grid, days, category_index=index), rtol=1e-12
    )


def test_own_elasticity_is_not_changed_by_the_index() -> None:
    ref = TINY.truth.ref_price_cents.astype(float)
    for others in (1.0, 0.7, 1.3):
        base = ref * np.array([1.0, others, others, 1.0])
        dear = base * np.array([1.1, 1.0, 1.0, 1.0])  # only a1's own price rises
        ratio = TINY.expected(dear)[0] / TINY.expected(base)[0]
        assert ratio == pytest.approx(1.1 ** TINY.truth.elasticity[0], rel=1e-12)
    index = np.linspace(-0.4, 0.4, len(SKUS))
    prices = MARKET.truth.ref_price_cents * 0.9
    ratio = MARKET.expected_units(SKUS, prices * 1.2, category_index=index) / MARKET.expected_units(
        SKUS, prices, category_index=index
    )
    assert np.allclose(ratio, 1.2**MARKET.truth.elasticity, rtol=1e-12)


def test_trend_grows_demand_from_the_trend_origin() -> None:
    ref = TINY.truth.ref_price_cents
    at_origin = TINY.expected_units(TINY.truth.sku, ref, dates=date(2026, 1, 1))
    assert np.allclose(at_origin, TINY.truth.base_units)  # flat calendar, zero years
    later = TINY.expected_units(TINY.truth.sku, ref, dates=date(2028, 1, 1))
    years = 730 / YEAR_DAYS
    assert np.allclose(later / at_origin, np.exp(np.array([0.08, 0.08, 0.08, -0.05]) * years), rtol=1e-12)
    shifted = tiny_market(trend_origin=date(2028, 1, 1))
    assert np.allclose(shifted.expected_units(shifted.truth.sku, ref, dates=date(2028, 1, 1)), TINY.truth.base_units)
    assert np.allclose(TINY.expected_units(TINY.truth.sku, ref), TINY.truth.base_units)  # no dates, no trend


def test_sampling_is_overdispersed_negative_binomial() -> None:
    rng = np.random.default_rng(0)
    busy = np.flatnonzero(MARKET.truth.base_units > 3)
    mu = MARKET.truth.base_units[busy]
    units = MARKET.sample_units(SKUS[busy], np.repeat(MARKET.truth.ref_price_cents[busy, None], 20_000, axis=1), rng=rng)
    k = MARKET.categories.dispersion_k[category_rows(MARKET)[busy]]
    var = units.var(axis=1)
    assert (var > (1 + 0.6 * mu / k) * mu).all()  # clearly more than Poisson's Var = mu
    assert np.allclose(var, mu + mu**2 / k, rtol=0.15)
    assert np.allclose(units.mean(axis=1), mu, rtol=0.05)


def test_simulate_draws_around_expected_and_respects_stock() -> None:
    days = days_between(date(2026, 6, 1), date(2026, 6, 28))
    rng = np.random.default_rng(6)
    prices = np.round(MARKET.truth.ref_price_cents[:, None] * rng.uniform(0.7, 1.2, (len(SKUS), len(days))))
    promo = rng.random(prices.shape) < 0.1
    mu = MARKET.expected(prices, days, promo)
    demand = np.stack([MARKET.simulate(prices, days, promo, rng=np.random.default_rng(s)) for s in range(200)])
    assert demand.dtype == np.int64 and demand.shape == (200, *prices.shape)
    assert demand.mean(axis=0).sum() == pytest.approx(mu.sum(), rel=0.01)
    stock = draw_stock(mu, np.random.default_rng(7))
    sold = MARKET.simulate(prices, days, promo, rng=np.random.default_rng(0), stock=stock)
    assert np.array_equal(sold, np.minimum(demand[0], stock))  # stock draws nothing from rng
    assert (sold <= stock).all()
    censored = (sold == stock) & (stock < demand[0])
    assert censored.any()
    with pytest.raises(ValueError):
        MARKET.simulate(prices, days, rng=rng, stock=stock[:, :3])
    with pytest.raises(ValueError):
        MARKET.simulate(prices, days, rng=rng, stock=stock * 1.0)


def test_draw_stock_is_short_on_a_few_percent_of_days_in_runs() -> None:
    mu = np.random.default_rng(1).lognormal(1.0, 1.0, (3000, 365))
    stock = draw_stock(mu, np.random.default_rng(2))
    assert stock.dtype == np.int64 and stock.shape == mu.shape
    ample = np.ceil(AMPLE_FACTOR * mu).astype(np.int64) + AMPLE_EXTRA
    short = stock != ample
    assert (stock[short] <= np.floor(mu[short])).all()  # floor(mu * U(0, 1))
    assert (stock[short] == 0).any()
    assert 0.02 <= short.mean() <= 0.04
    # Runs: most short days have a short neighbour, and no run is longer than SHORT_RUN_MAX
    # unless two runs happen to touch (rare).
    padded = np.pad(short, ((0, 0), (1, 1)))
    neighbour = padded[:, :-2] | padded[:, 2:]
    assert neighbour[short].mean() >= 0.7
    window = sum(short[:, lag : short.shape[1] - SHORT_RUN_MAX + lag] for lag in range(SHORT_RUN_MAX + 1))
    assert (window == SHORT_RUN_MAX + 1).mean() < 0.001
    assert np.array_equal(stock, draw_stock(mu, np.random.default_rng(2)))  # deterministic by seed
    assert draw_stock(mu[0], np.random.default_rng(2)).shape == (365,)
