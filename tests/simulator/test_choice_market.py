"""The mixed-logit choice market: exact elasticities, substitution, sampling, persistence."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.choice_market import (
    CHOICE_FILE,
    OUTSIDE_SHARE_RANGE,
    ChoiceCategories,
    ChoiceMarket,
    Segments,
    load_market,
)
from simulator.market import (
    MAX_ELASTICITY,
    MIN_ELASTICITY,
    TRUTH_FILE,
    YEAR_DAYS,
    DemandTruth,
    Market,
    days_between,
    weekday_and_doy,
)

CATEGORIES = ["cereal", "coffee", "yogurt", "detergent", "toys"]  # "toys" has no profile


def make_market(n: int = 60, seed: int = 3) -> ChoiceMarket:
    """n SKUs over five categories, prices spread up to 2.3x within a category."""
    rng = np.random.default_rng(seed)
    skus = np.array([f"C{i:06d}" for i in range(n)], dtype=object)
    cats = np.array(CATEGORIES, dtype=object)[np.arange(n) % len(CATEGORIES)]
    level = {"cereal": 349, "coffee": 649, "yogurt": 179, "detergent": 699, "toys": 999}
    ref = np.rint([level[c] * rng.uniform(0.65, 1.5) for c in cats]).astype(np.int64)
    return ChoiceMarket.draw(skus, cats, ref, rng, trend_origin=date(2026, 1, 1))


MARKET = make_market()
N = len(MARKET)
REF = MARKET.truth.ref_price_cents.astype(np.float64)


def off_ref_prices(seed: int = 5) -> np.ndarray:
    """A full price vector 20% around the reference prices."""
    return REF * np.random.default_rng(seed).uniform(0.8, 1.2, N)


def same_category(market: ChoiceMarket, j: int) -> np.ndarray:
    return np.flatnonzero((market.truth.category == market.truth.category[j]) & (np.arange(len(market)) != j))


# ---- the truth ------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_every_truth_elasticity_is_within_bounds(seed: int) -> None:
    market = make_market(n=100, seed=seed)
    e = market.truth.elasticity
    assert (e >= MIN_ELASTICITY).all() and (e <= MAX_ELASTICITY).all()
    assert -3.5 < np.median(e) < -1.5
    assert (market.truth.base_units > 0).all()


def test_truth_is_the_exact_formula_at_ref_prices() -> None:
    t, s, w = MARKET.truth, MARKET.structure, MARKET.segments.weight
    np.testing.assert_allclose(t.elasticity, MARKET.elasticity_at(REF), rtol=1e-12)
    np.testing.assert_allclose(t.base_units, MARKET.expected(REF), rtol=1e-12)
    # By hand for one category: shares, then e_jj = -(p/pbar) sum w a s (1 - s) / sum w s.
    c = 0
    members = np.flatnonzero(t.category == s.category[c])
    x = REF[members] / s.price_scale_cents[c]
    alpha = s.alpha[c] * np.exp(s.sigma[c] * MARKET.segments.z)
    attraction = np.exp(MARKET.delta[members][:, None] - alpha[None, :] * x[:, None])
    share = attraction / (1 + attraction.sum(axis=0))
    e = -x * (w * alpha * share * (1 - share)).sum(axis=1) / (w * share).sum(axis=1)
    np.testing.assert_allclose(t.elasticity[members], e, rtol=1e-12)
    units = s.traffic[c] * (1 + s.two_unit_share[c]) * share @ w
    np.testing.assert_allclose(t.base_units[members], units, rtol=1e-12)


def test_outside_share_and_price_spread_make_elasticities_differ() -> None:
    t, s = MARKET.truth, MARKET.structure
    cat = pd.Index(s.category).get_indexer(t.category)
    inside = np.bincount(cat, weights=t.base_units) / (s.traffic * (1 + s.two_unit_share))
    lo, hi = OUTSIDE_SHARE_RANGE
    assert ((1 - inside) > lo - 0.02).all() and ((1 - inside) < hi + 0.02).all()
    for c in range(len(s.category)):
        members = cat == c
        ref = t.ref_price_cents[members]
        assert ref.max() / ref.min() > 1.5
        assert np.std(t.elasticity[members]) > 0.1


def test_segments_are_a_discretised_standard_normal() -> None:
    seg = Segments.gauss_hermite(5)
    assert seg.weight.sum() == pytest.approx(1.0)
    assert seg.weight @ seg.z == pytest.approx(0.0, abs=1e-12)
    assert seg.weight @ seg.z**2 == pytest.approx(1.0)
    assert seg.weight @ np.exp(0.5 * seg.z) == pytest.approx(np.exp(0.125), rel=1e-6)


def test_draw_rejects_a_price_spread_no_elasticity_band_holds() -> None:
    rng = np.random.default_rng(0)
    ref = np.array([50, 100, 200, 400, 800, 1600, 3200])
    with pytest.raises(ValueError, match="no draw keeps"):
        ChoiceMarket.draw([f"S{i}" for i in range(7)], ["jam"] * 7, ref, rng)


def test_positions_and_unknown_skus() -> None:
    assert MARKET.positions(MARKET.truth.sku[[3, 0]]).tolist() == [3, 0]
    with pytest.raises(KeyError, match="nope"):
        MARKET.positions(["nope"])
    assert len(MARKET) == N and MARKET.kind == "choice"


# ---- price response -------------------------------------------------------------------------


@pytest.mark.parametrize("prices", [REF, off_ref_prices()], ids=["ref", "off-ref"])
def test_elasticity_matches_a_numerical_derivative_of_expected(prices: np.ndarray) -> None:
    """d ln Q_j / d ln p_j with every other price fixed, by central differences of expected()."""
    h = 1e-5
    grid = np.repeat(prices[:, None], 2 * N, axis=1)  # column 2j: p_j up, 2j + 1: p_j down
    grid[np.arange(N), 2 * np.arange(N)] *= np.exp(h)
    grid[np.arange(N), 2 * np.arange(N) + 1] *= np.exp(-h)
    units = MARKET.expected(grid)
    numeric = (np.log(units[np.arange(N), 2 * np.arange(N)]) - np.log(units[np.arange(N), 2 * np.arange(N) + 1])) / (2 * h)
    np.testing.assert_allclose(MARKET.elasticity_at(prices), numeric, atol=1e-3)
    assert np.abs(MARKET.elasticity_at(prices) - numeric).max() < 1e-6


def test_elasticity_depends_on_the_price_vector() -> None:
    up = REF * 1.15
    e_up = MARKET.elasticity_at(up)
    assert (e_up < MARKET.truth.elasticity).all()  # dearer: more elastic (logit)
    both = MARKET.elasticity_at(np.stack([REF, up], axis=1))
    np.testing.assert_allclose(both, np.stack([MARKET.truth.elasticity, e_up], axis=1), rtol=1e-12)


def test_own_price_units_at_current_prices_equals_expected() -> None:
    current = off_ref_prices(seed=9)
    pos = np.array([5, 0, 17, 42, 5])
    skus = MARKET.truth.sku[pos]
    got = MARKET.own_price_units(skus, current[pos][:, None], current)
    assert got.shape == (len(pos), 1)
    np.testing.assert_allclose(got[:, 0], MARKET.expected(current)[pos], rtol=1e-11)
    dates = days_between(date(2026, 7, 1), date(2026, 7, 14))
    grid = np.repeat(current[:, None], len(dates), axis=1)
    with_dates = MARKET.own_price_units(skus, current[pos][:, None], current, dates)
    np.testing.assert_allclose(with_dates[:, 0], MARKET.expected(grid, dates)[pos].mean(axis=1), rtol=1e-11)


def test_own_price_units_moves_only_the_own_price() -> None:
    """Each candidate equals expected() of a full vector with just that SKU's price changed."""
    current = off_ref_prices(seed=2)
    pos = np.arange(0, N, 7)
    candidates = current[pos][:, None] * np.array([0.8, 0.95, 1.1, 1.3])[None, :]
    got = MARKET.own_price_units(MARKET.truth.sku[pos], candidates, current)
    for row, j in enumerate(pos):
        grid = np.repeat(current[:, None], 4, axis=1)
        grid[j] = candidates[row]
        np.testing.assert_allclose(got[row], MARKET.expected(grid)[j], rtol=1e-11)


def test_own_demand_strictly_decreases_in_own_price() -> None:
    candidates = REF[:, None] * np.linspace(0.5, 2.0, 31)[None, :]
    units = MARKET.own_price_units(MARKET.truth.sku, candidates, REF)
    assert (np.diff(units, axis=1) < 0).all()
    assert (units > 0).all()


def test_cross_effects_are_positive_within_a_category_and_absent_across() -> None:
    j = 3
    up = REF.copy()
    up[j] *= 1.2
    before, after = MARKET.expected(REF), MARKET.expected(up)
    mates = same_category(MARKET, j)
    others = np.flatnonzero(MARKET.truth.category != MARKET.truth.category[j])
    assert after[j] < before[j]
    assert (after[mates] > before[mates]).all()
    np.testing.assert_array_equal(after[others], before[others])


def test_cross_elasticity_matrix() -> None:
    name = MARKET.structure.category[1]
    matrix = MARKET.cross_elasticities(name)
    members = np.flatnonzero(MARKET.truth.category == name)
    assert list(matrix.index) == list(matrix.columns) == MARKET.truth.sku[members].tolist()
    values = matrix.to_numpy()
    np.testing.assert_allclose(np.diag(values), MARKET.truth.elasticity[members], rtol=1e-12)
    assert (values[~np.eye(len(members), dtype=bool)] > 0).all()
    # Column l: d ln Q_j / d ln p_l, numerically.
    h, l = 1e-5, members[2]
    grid = np.repeat(REF[:, None], 2, axis=1)
    grid[l] *= np.exp([h, -h])
    units = MARKET.expected(grid)
    numeric = (np.log(units[members, 0]) - np.log(units[members, 1])) / (2 * h)
    np.testing.assert_allclose(values[:, 2], numeric, atol=1e-6)
    with pytest.raises(KeyError):
        MARKET.cross_elasticities("no-such-category")


def test_log_log_summary_of_the_categories() -> None:
    summary = MARKET.categories
    assert summary.category.tolist() == MARKET.structure.category.tolist()
    assert (summary.cross_elasticity > 0).all()
    assert (summary.promo_uplift > 1).all()
    assert (summary.elasticity_mean <= MAX_ELASTICITY).all()


def test_promo_raises_own_units_and_takes_from_substitutes() -> None:
    j = 8
    promo = np.zeros(N, dtype=bool)
    promo[j] = True
    before, after = MARKET.expected(REF), MARKET.expected(REF, promo=promo)
    mates = same_category(MARKET, j)
    assert after[j] > before[j]
    assert (after[mates] < before[mates]).all()


def test_calendar_scales_traffic_like_the_loglog_market() -> None:
    s = MARKET.structure
    day = np.datetime64("2026-07-04")  # a Saturday, half a year after the trend origin
    weekday, doy = weekday_and_doy(day)
    cat = pd.Index(s.category).get_indexer(MARKET.truth.category)
    years = (day - np.datetime64("2026-01-01")).astype(np.int64) / YEAR_DAYS
    factor = (
        s.dow[cat, weekday]
        * (1 + s.season_amplitude[cat] * np.cos(2 * np.pi * (doy - s.season_peak_doy[cat]) / YEAR_DAYS))
        * np.exp(s.trend_per_year[cat] * years)
    )
    np.testing.assert_allclose(MARKET.expected(REF, day), MARKET.expected(REF) * factor, rtol=1e-12)
    np.testing.assert_allclose(s.dow.mean(axis=1), 1.0, atol=1e-3)


def test_bad_prices_are_rejected() -> None:
    with pytest.raises(ValueError, match="one price per market SKU"):
        MARKET.expected(REF[:-1])
    with pytest.raises(ValueError, match="positive"):
        MARKET.expected(np.where(np.arange(N) == 0, 0.0, REF))
    with pytest.raises(ValueError, match="shape"):
        MARKET.own_price_units(MARKET.truth.sku[:2], REF[:3, None], REF)


# ---- sampling -------------------------------------------------------------------------------


def test_simulate_mean_and_variance_match_the_model() -> None:
    draws = 4000
    prices = off_ref_prices(seed=1)
    day = np.datetime64("2026-03-11")
    grid = np.repeat(prices[:, None], draws, axis=1)
    mu = MARKET.expected(prices, day)
    units = MARKET.simulate(grid, day, rng=np.random.default_rng(42))
    assert units.dtype == np.int64 and units.shape == grid.shape and (units >= 0).all()
    s = MARKET.structure
    cat = pd.Index(s.category).get_indexer(MARKET.truth.category)
    q2, k = s.two_unit_share[cat], s.gamma_shape[cat]
    # Compound Poisson given G (E[q^2] = 1 + 3 q2), plus the gamma factor's variance.
    variance = mu / (1 + q2) * (1 + 3 * q2) + mu**2 / k
    se = np.sqrt(variance / draws)
    assert (np.abs(units.mean(axis=1) - mu) < 4.5 * se).all()
    ratio = units.var(axis=1) / variance
    assert 0.85 < np.median(ratio) < 1.15
    # The category-day factor makes a category's SKUs move together.
    a, b = np.flatnonzero(cat == 0)[:2]
    assert np.corrcoef(units[a], units[b])[0, 1] > 0.02
    c = np.flatnonzero(cat == 1)[0]
    assert abs(np.corrcoef(units[a], units[c])[0, 1]) < 0.06


def test_draw_purchases_counts_lines_and_two_unit_purchases() -> None:
    grid = np.repeat(REF[:, None], 500, axis=1)
    purchases, units = MARKET.draw_purchases(grid, np.datetime64("2026-05-01"), rng=np.random.default_rng(3))
    assert (units >= purchases).all() and (units <= 2 * purchases).all()
    cat = pd.Index(MARKET.structure.category).get_indexer(MARKET.truth.category)
    twos = np.bincount(cat, weights=(units - purchases).sum(axis=1)) / np.bincount(cat, weights=purchases.sum(axis=1))
    np.testing.assert_allclose(twos, MARKET.structure.two_unit_share, atol=0.02)


def test_simulate_is_deterministic_and_stock_caps_sales() -> None:
    dates = days_between(date(2026, 2, 1), date(2026, 2, 28))
    grid = np.repeat(REF[:, None], len(dates), axis=1)
    free = MARKET.simulate(grid, dates, rng=np.random.default_rng(7))
    again = MARKET.simulate(grid, dates, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(free, again)
    stock = np.random.default_rng(0).integers(0, 4, grid.shape)
    capped = MARKET.simulate(grid, dates, rng=np.random.default_rng(7), stock=stock)
    np.testing.assert_array_equal(capped, np.minimum(free, stock))
    assert (capped < free).any()
    zero = MARKET.simulate(grid, dates, rng=np.random.default_rng(7), stock=np.zeros(grid.shape, dtype=np.int64))
    assert not zero.any()
    for bad in (stock[:, :-1], stock - 1, stock.astype(float)):
        with pytest.raises(ValueError, match="stock"):
            MARKET.simulate(grid, dates, rng=np.random.default_rng(7), stock=bad)


def test_simulate_one_date_and_promo() -> None:
    promo = np.zeros(N, dtype=bool)
    promo[::4] = True
    units = MARKET.simulate(REF, np.datetime64("2026-06-01"), promo, rng=np.random.default_rng(1))
    assert units.shape == (N,)


# ---- files ----------------------------------------------------------------------------------


def test_save_load_round_trip_is_identical(tmp_path: Path) -> None:
    truth_path, choice_path = MARKET.save(tmp_path)
    assert truth_path.name == TRUTH_FILE and choice_path.name == CHOICE_FILE
    loaded = ChoiceMarket.load(tmp_path)
    for name in ("sku", "category", "base_units", "ref_price_cents", "elasticity"):
        np.testing.assert_array_equal(getattr(loaded.truth, name), getattr(MARKET.truth, name))
    np.testing.assert_array_equal(loaded.delta, MARKET.delta)
    np.testing.assert_array_equal(loaded.segments.z, MARKET.segments.z)
    for key, value in MARKET.structure.to_dict().items():
        assert loaded.structure.to_dict()[key] == value
    assert loaded.trend_origin == MARKET.trend_origin
    prices = off_ref_prices(seed=4)
    np.testing.assert_array_equal(loaded.expected(prices, np.datetime64("2026-09-09")),
                                  MARKET.expected(prices, np.datetime64("2026-09-09")))
    # truth.csv is the loglog market's format: its readers work.
    frame = pd.read_csv(truth_path, dtype={"sku": str, "category": str}, keep_default_na=False)
    assert list(frame.columns) == ["sku", "category", "base_units", "ref_price_cents", "elasticity"]
    np.testing.assert_array_equal(DemandTruth.from_frame(frame).elasticity, MARKET.truth.elasticity)
    document = json.loads(choice_path.read_text())
    assert document["kind"] == "choice"
    assert {"traffic", "alpha", "sigma", "promo_effect", "gamma_shape", "dow", "season_amplitude"} <= set(
        document["categories"]
    )


def test_load_rejects_a_truth_file_that_disagrees(tmp_path: Path) -> None:
    MARKET.save(tmp_path)
    frame = pd.read_csv(tmp_path / TRUTH_FILE, dtype={"sku": str, "category": str})
    frame.loc[0, "elasticity"] = -2.0 if frame.loc[0, "elasticity"] != -2.0 else -3.0
    frame.to_csv(tmp_path / TRUTH_FILE, index=False)
    with pytest.raises(ValueError, match="does not match"):
        ChoiceMarket.load(tmp_path)


def test_load_market_picks_the_right_class(tmp_path: Path) -> None:
    MARKET.save(tmp_path / "choice")
    rng = np.random.default_rng(1)
    loglog = Market.draw(["a", "b", "c"], ["dairy", "dairy", "snacks"], [100, 250, 199], rng)
    loglog.save(tmp_path / "loglog")
    choice = load_market(tmp_path / "choice")
    assert isinstance(choice, ChoiceMarket) and choice.kind == "choice"
    other = load_market(tmp_path / "loglog")
    assert isinstance(other, Market) and other.kind == "loglog"
    np.testing.assert_array_equal(other.truth.elasticity, loglog.truth.elasticity)
    with pytest.raises(FileNotFoundError):
        Market.load(tmp_path / "choice")  # no truth_categories.csv: a choice store is not read as loglog


def test_hand_made_structure_is_validated() -> None:
    values = MARKET.structure.to_dict()
    values["alpha"] = [-1.0] * len(values["alpha"])
    with pytest.raises(ValueError, match="must be > 0"):
        ChoiceCategories.from_dict(values)
    with pytest.raises(ValueError, match="weights"):
        Segments(np.array([0.0, 1.0]), np.array([0.5, 0.6]))
