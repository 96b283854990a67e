"""A second simulated market: shoppers choose among a category's substitutes by a mixed logit.

``simulator.market.Market`` draws demand in the log-log form the engine's demand model fits.
This market follows a different, standard structure, so that a model that does well here does
so on merit. It has the same interface as ``Market`` (``expected``, ``simulate``,
``own_price_units``, ``truth``, ``save``/``load``); ``kind = "choice"``.

Structure, per category c of substitutes (SKUs j of c) and day t:

- Shoppers considering the category arrive: expected traffic
  ``T_c * dow_c[weekday] * season_c(doy) * exp(trend_c * years_since_origin)`` (the calendar of
  ``Market``: ``dow`` averages 1 over the week, season = 1 + amplitude * cos(2 pi (doy - peak) /
  365.25); without dates, the "average day", the factor is 1).
- K shopper segments (a discretised standard normal z_k with weights w_k, Gauss-Hermite nodes,
  shared by all categories) differ in price sensitivity: ``alpha_ck = alpha_c * exp(sigma_c z_k)``.
- Segment k's utility of SKU j: ``u_jk = delta_j - alpha_ck * p_j / pbar_c + promo_c * promo_j``,
  the outside option (buy nothing in the category) 0; ``pbar_c`` is a fixed price scale of the
  category (the median reference price). Choice shares ``s_jk = exp(u_jk) / (1 + sum_i exp(u_ik))``
  over the category's SKUs i, with that day's prices of all of them.
- A purchase is 1 unit, or 2 units with probability ``q2_c`` (E[q] = 1 + q2_c). Expected units
  ``mu_jt = traffic_ct * E[q] * sum_k w_k s_jkt``.
- Noise: arrivals are Poisson with a category-day gamma factor G_ct ~ Gamma(kappa_c, 1/kappa_c)
  shared by the category's SKUs. By Poisson thinning, purchases of SKU j are independent given
  G: Poisson(traffic_ct * G_ct * s_jt) (s_jt = sum_k w_k s_jkt), and units = purchases +
  Binomial(purchases, q2_c) (mean mu_jt; for one SKU the purchases are negative binomial with
  shape kappa_c, and SKUs of a category move together on a busy day).

The truth (``truth``, a ``simulator.market.DemandTruth``) is at the reference prices (every SKU
of the category at its ref price, no promo): ``base_units`` = expected units on an average day,
``elasticity`` the exact own-price elasticity of the aggregate (segment-mixed) demand with the
other prices fixed::

    e_jj = -(p_j / pbar_c) * sum_k w_k alpha_ck s_jk (1 - s_jk) / sum_k w_k s_jk

It depends on all the category's prices (``elasticity_at``); ``cross_elasticities`` gives the
full SKU x SKU matrix of a category. ``draw`` keeps every truth elasticity in [-4.5, -1.1]
(MIN_ELASTICITY, MAX_ELASTICITY), the outside share at ref prices in OUTSIDE_SHARE_RANGE.

In: prices (cents) of every market SKU in truth order, (n_market,) or (n_market, days), dates
and promo flags broadcasting to them. Out: expected or drawn units of the same shape, own-price
demand curves (``own_price_units``), elasticities. Files: ``save`` writes truth.csv (the format
of ``Market.save``, so readers of truth.csv work) and truth_choice.json (every structural
parameter); ``load_market`` reads either market from a directory.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import brentq

from simulator.market import (
    CATEGORY_PROFILES,
    DEFAULT_PROFILE,
    DEFAULT_TREND_ORIGIN,
    DOW_SHAPE,
    MAX_ELASTICITY,
    MIN_ELASTICITY,
    TRUTH_FILE,
    WEEKDAYS,
    YEAR_DAYS,
    CategoryProfile,
    CategoryTruth,
    DemandTruth,
    Market,
    _as_days,
    _check_broadcast,
    _frozen,
    weekday_and_doy,
)

CHOICE_FILE = "truth_choice.json"
FORMAT_VERSION = 1
SEGMENTS = 5  # shopper segments (Gauss-Hermite nodes of the price-sensitivity distribution)
SIGMA_RANGE = (0.25, 0.6)  # log spread of price sensitivity between segments
OUTSIDE_SHARE_RANGE = (0.35, 0.75)  # share of the category's shoppers who buy nothing, at ref prices
QUALITY_PRICE_RANGE = (0.4, 0.8)  # share of a price premium the mean shopper's quality valuation makes up
QUALITY_NOISE = 0.35  # sd of the SKU-specific taste delta beyond the price-quality link
MEAN_ELASTICITY_RANGE = (-3.2, -1.7)  # a category's mean truth elasticity is drawn in here
PROMO_EFFECT_RANGE = (0.2, 0.5)  # utility of a promo beyond its price cut (display, feature)
TWO_UNIT_RANGE = (0.03, 0.12)  # probability a purchase is 2 units
GAMMA_SHAPE_RANGE = (10.0, 30.0)  # category-day traffic factor G ~ Gamma(k, 1/k)
TREND_RANGE = (-0.04, 0.06)  # log growth of traffic per year
ELASTICITY_MARGIN = (-4.4, -1.15)  # draw aims inside these, safely within the hard bounds
DRAW_ATTEMPTS = 60

# Categories of substitutes (simulator.choice_store sells these): elasticity centre, season
# amplitude, peak day of year, median units/day of a SKU at its reference price.
CHOICE_PROFILES: dict[str, CategoryProfile] = {
    "cereal": CategoryProfile(-2.4, 0.06, 20, 3.0),
    "coffee": CategoryProfile(-2.2, 0.10, 340, 3.5),
    "tea": CategoryProfile(-1.9, 0.18, 10, 2.5),
    "yogurt": CategoryProfile(-2.6, 0.05, 160, 4.5),
    "crackers": CategoryProfile(-2.3, 0.08, 350, 2.5),
    "cookies": CategoryProfile(-2.5, 0.12, 345, 3.0),
    "chips": CategoryProfile(-2.7, 0.15, 190, 4.0),
    "ketchup": CategoryProfile(-2.1, 0.15, 200, 2.0),
    "pasta_sauce": CategoryProfile(-2.5, 0.06, 30, 3.0),
    "pasta": CategoryProfile(-2.6, 0.04, 30, 4.0),
    "rice": CategoryProfile(-2.0, 0.03, 60, 2.5),
    "detergent": CategoryProfile(-2.8, 0.03, 90, 2.0),
    "dish_soap": CategoryProfile(-2.2, 0.03, 90, 2.0),
    "shampoo": CategoryProfile(-2.0, 0.05, 190, 2.0),
    "toothpaste": CategoryProfile(-2.1, 0.03, 100, 2.5),
    "shower_gel": CategoryProfile(-2.2, 0.08, 190, 2.5),
    "soft_drinks": CategoryProfile(-2.9, 0.25, 195, 5.0),
    "juice": CategoryProfile(-2.4, 0.10, 20, 3.5),
    "bottled_water": CategoryProfile(-2.6, 0.28, 200, 5.0),
    "ice_cream": CategoryProfile(-2.5, 0.35, 200, 3.0),
    "frozen_pizza": CategoryProfile(-2.7, 0.12, 20, 3.0),
    "toilet_paper": CategoryProfile(-2.3, 0.03, 80, 2.5),
    "paper_towels": CategoryProfile(-2.2, 0.03, 80, 2.0),
    "chocolate": CategoryProfile(-2.4, 0.20, 350, 3.5),
    "peanut_butter": CategoryProfile(-1.9, 0.05, 40, 1.5),
    "jam": CategoryProfile(-1.8, 0.05, 40, 1.5),
    "soup": CategoryProfile(-2.3, 0.25, 20, 2.5),
    "canned_tuna": CategoryProfile(-2.6, 0.05, 60, 2.5),
}


def _profile(name: str) -> CategoryProfile:
    return CHOICE_PROFILES.get(name, CATEGORY_PROFILES.get(name, DEFAULT_PROFILE))


@dataclass(frozen=True)
class Segments:
    """Shopper segments: standard-normal nodes z_k and weights w_k (positive, summing to 1)."""

    z: np.ndarray
    weight: np.ndarray

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _frozen(getattr(self, f.name), np.float64))
        if self.z.ndim != 1 or self.z.shape != self.weight.shape or len(self.z) == 0:
            raise ValueError("segments need one weight per node")
        if not (self.weight > 0).all() or abs(self.weight.sum() - 1.0) > 1e-9:
            raise ValueError("segment weights must be positive and sum to 1")

    @classmethod
    def gauss_hermite(cls, k: int = SEGMENTS) -> Segments:
        """K nodes and weights of a standard normal (exact for polynomials of degree < 2K)."""
        z, w = np.polynomial.hermite_e.hermegauss(k)
        return cls(z, w / w.sum())


@dataclass(frozen=True)
class ChoiceCategories:
    """Per-category structural parameters, one entry per category in every array."""

    category: np.ndarray  # str (object)
    traffic: np.ndarray  # T_c: shoppers considering the category on an average day
    price_scale_cents: np.ndarray  # pbar_c: prices enter utility as p / pbar_c
    alpha: np.ndarray  # alpha_c > 0: price sensitivity of the middle segment (z = 0)
    sigma: np.ndarray  # sigma_c >= 0: log spread of price sensitivity between segments
    promo_effect: np.ndarray  # utility of being on promo, beyond the lower price
    two_unit_share: np.ndarray  # probability a purchase is 2 units (else 1)
    gamma_shape: np.ndarray  # kappa_c: category-day traffic factor G ~ Gamma(kappa_c, 1/kappa_c)
    dow: np.ndarray  # (n_categories, 7), Monday first, each row averages 1
    season_amplitude: np.ndarray
    season_peak_doy: np.ndarray  # int64, 0 = 1 January
    trend_per_year: np.ndarray  # log growth of traffic per year since the market's trend origin

    def __post_init__(self) -> None:
        dtypes = {"category": object, "season_peak_doy": np.int64}
        for f in fields(self):
            object.__setattr__(self, f.name, _frozen(getattr(self, f.name), dtypes.get(f.name, np.float64)))
        n = len(self.category)
        if self.dow.shape != (n, 7):
            raise ValueError("dow must have shape (n_categories, 7)")
        if any(getattr(self, f.name).shape != (n,) for f in fields(self) if f.name != "dow"):
            raise ValueError("ChoiceCategories arrays must have one entry per category")
        if len(set(self.category.tolist())) != n:
            raise ValueError("duplicate category in ChoiceCategories")
        positive = (self.traffic, self.price_scale_cents, self.alpha, self.gamma_shape)
        if not all((a > 0).all() for a in positive) or (self.sigma < 0).any():
            raise ValueError("traffic, price_scale_cents, alpha, gamma_shape must be > 0 and sigma >= 0")
        if not ((self.two_unit_share >= 0) & (self.two_unit_share <= 1)).all():
            raise ValueError("two_unit_share must be in [0, 1]")

    def to_dict(self) -> dict[str, list[Any]]:
        return {f.name: getattr(self, f.name).tolist() for f in fields(self)}

    @classmethod
    def from_dict(cls, values: dict[str, list[Any]]) -> ChoiceCategories:
        return cls(**{f.name: np.array(values[f.name], dtype=object if f.name == "category" else None) for f in fields(cls)})


def _market_shares(x: np.ndarray, delta: np.ndarray, alpha_k: np.ndarray) -> np.ndarray:
    """(m, K) segment shares of one category's m SKUs at relative prices x (no promo)."""
    attraction = np.exp(delta[:, None] - alpha_k[None, :] * x[:, None])
    return attraction / (1.0 + attraction.sum(axis=0))


def _own_elasticity(x: np.ndarray, shares: np.ndarray, alpha_k: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Exact own elasticity of segment-mixed demand; shares (..., K), alpha_k and weight broadcast."""
    num = (weight * alpha_k * shares * (1.0 - shares)).sum(axis=-1)
    return -x * num / (weight * shares).sum(axis=-1)


def _calibrate(
    x: np.ndarray,
    quality: np.ndarray,
    lam: float,
    segments: Segments,
    sigma: float,
    outside: float,
    target: float,
) -> tuple[float, np.ndarray, np.ndarray]:
    """alpha_c and deltas of one category: outside share ``outside`` and mean elasticity ``target``.

    delta_j = shift + lam * alpha_c * (x_j - 1) + quality_j, with the shift solved for the
    outside share; alpha_c by a multiplicative fixed point on the mean elasticity (elasticities
    are close to proportional to alpha_c). Returns alpha_c, deltas, elasticities at x.
    """
    spread = np.exp(sigma * segments.z)
    alpha = -target / float(np.mean(x))
    for _ in range(100):
        alpha_k = alpha * spread
        tilt = lam * alpha * (x - 1.0) + quality
        base = np.exp(tilt[:, None] - alpha_k[None, :] * x[:, None]).sum(axis=0)  # (K,)

        def gap(shift: float, base: np.ndarray = base) -> float:
            return float(segments.weight @ (1.0 / (1.0 + np.exp(shift) * base))) - outside

        shift = brentq(gap, -60.0, 60.0, xtol=1e-13)
        delta = shift + tilt
        elasticity = _own_elasticity(x, _market_shares(x, delta, alpha_k), alpha_k, segments.weight)
        ratio = target / float(elasticity.mean())
        alpha *= ratio
        if abs(ratio - 1.0) < 1e-10:
            break
    return alpha, delta, elasticity


class ChoiceMarket:
    """Mixed-logit shoppers choosing among each category's substitutes (see the module docstring)."""

    kind = "choice"

    def __init__(
        self,
        sku: Sequence[str] | np.ndarray,
        category: Sequence[str] | np.ndarray,
        ref_price_cents: Sequence[int] | np.ndarray,
        delta: Sequence[float] | np.ndarray,
        structure: ChoiceCategories,
        segments: Segments,
        trend_origin: date = DEFAULT_TREND_ORIGIN,
    ) -> None:
        """The truth (base units, elasticities at the ref prices) is computed from the parameters."""
        self.sku = _frozen(sku, object)
        self.category = _frozen(category, object)
        self.ref_price_cents = _frozen(ref_price_cents, np.int64)
        self.delta = _frozen(delta, np.float64)
        n = len(self.sku)
        if any(len(a) != n for a in (self.category, self.ref_price_cents, self.delta)):
            raise ValueError("sku, category, ref_price_cents and delta need one entry per SKU")
        self.structure = structure
        self.segments = segments
        self.trend_origin = trend_origin
        self._origin_day = int(np.datetime64(trend_origin, "D").astype(np.int64))
        self._sku_index = pd.Index(self.sku)
        cat = pd.Index(structure.category).get_indexer(self.category)
        if (cat < 0).any():
            missing = sorted(set(self.category[cat < 0].tolist()))
            raise ValueError(f"categories without a choice structure: {missing}")
        self._cat = cat
        n_cat = len(structure.category)
        self._members = sparse.csr_array((np.ones(n), (cat, np.arange(n))), shape=(n_cat, n))
        self._alpha = structure.alpha[:, None] * np.exp(structure.sigma[:, None] * segments.z[None, :])  # (n_cat, K)
        self._units_per_purchase = 1.0 + structure.two_unit_share
        ref = self.ref_price_cents.astype(np.float64)
        self.truth = DemandTruth(
            sku=self.sku,
            category=self.category,
            base_units=self.expected(ref),
            ref_price_cents=self.ref_price_cents,
            elasticity=self.elasticity_at(ref),
        )

    # ---- drawing -------------------------------------------------------------------------------

    @classmethod
    def draw(
        cls,
        skus: Sequence[str] | np.ndarray,
        categories: Sequence[str] | np.ndarray,
        ref_price_cents: Sequence[int] | np.ndarray,
        rng: np.random.Generator,
        trend_origin: date = DEFAULT_TREND_ORIGIN,
        segments: int = SEGMENTS,
    ) -> ChoiceMarket:
        """Draw the structural parameters around each category's profile (CHOICE_PROFILES).

        Per category: sigma, the outside share at ref prices, a target mean elasticity, the
        price-quality link and SKU tastes are drawn, then alpha_c and the deltas calibrated to
        them. A draw whose SKU elasticities leave ELASTICITY_MARGIN is rescaled (alpha) or,
        when the category's price spread makes that impossible, drawn again; ValueError after
        DRAW_ATTEMPTS (a price spread of much more than 3x within a category). Traffic puts the
        median SKU near the profile's base units.
        """
        cat_arr = np.asarray(categories, dtype=object)
        ref = np.asarray(ref_price_cents, dtype=np.int64)
        if len(cat_arr) != len(ref) or len(np.asarray(skus)) != len(ref):
            raise ValueError("skus, categories and ref_price_cents need one entry per SKU")
        if (ref < 1).any():
            raise ValueError("ref_price_cents must be >= 1")
        names = sorted(set(cat_arr.tolist()))
        segs = Segments.gauss_hermite(segments)
        n_cat = len(names)
        profiles = [_profile(name) for name in names]
        dow = DOW_SHAPE[None, :] * rng.lognormal(0, 0.05, (n_cat, 7))
        two_units = np.round(rng.uniform(*TWO_UNIT_RANGE, n_cat), 4)
        delta = np.zeros(len(ref))
        drawn = np.zeros((n_cat, 4))  # traffic, price scale, alpha, sigma
        for c, name in enumerate(names):
            members = np.flatnonzero(cat_arr == name)
            scale = float(np.median(ref[members]))
            alpha, delta[members], sigma, outside = _draw_category(ref[members] / scale, profiles[c], segs, rng, name)
            units = len(members) * profiles[c].base_units * rng.lognormal(0.0, 0.15)  # the category's, per day
            drawn[c] = (round(units / ((1.0 - outside) * (1.0 + two_units[c])), 3), scale, round(alpha, 6), sigma)
        structure = ChoiceCategories(
            category=np.array(names, dtype=object),
            traffic=drawn[:, 0],
            price_scale_cents=drawn[:, 1],
            alpha=drawn[:, 2],
            sigma=drawn[:, 3],
            promo_effect=np.round(rng.uniform(*PROMO_EFFECT_RANGE, n_cat), 4),
            two_unit_share=two_units,
            gamma_shape=np.round(rng.uniform(*GAMMA_SHAPE_RANGE, n_cat), 3),
            dow=np.round(dow / dow.mean(axis=1, keepdims=True), 4),
            season_amplitude=np.round(np.array([p.season_amplitude for p in profiles]) * rng.uniform(0.8, 1.2, n_cat), 4),
            season_peak_doy=(np.array([p.season_peak_doy for p in profiles]) + rng.integers(-10, 11, n_cat)) % 365,
            trend_per_year=np.round(rng.uniform(*TREND_RANGE, n_cat), 4),
        )
        return cls(np.asarray(skus, dtype=object), cat_arr, ref, delta, structure, segs, trend_origin)

    # ---- basics --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.sku)

    def positions(self, skus: Sequence[str] | np.ndarray) -> np.ndarray:
        """Row of each SKU in the truth; KeyError for SKUs the market does not know."""
        pos = self._sku_index.get_indexer(np.asarray(skus, dtype=object))
        if (pos < 0).any():
            unknown = np.asarray(skus, dtype=object)[pos < 0][:5].tolist()
            raise KeyError(f"unknown sku(s): {unknown}")
        return pos

    def _market_prices(self, prices_cents: Any) -> np.ndarray:
        prices = np.asarray(prices_cents, dtype=np.float64)
        if prices.ndim not in (1, 2) or prices.shape[0] != len(self):
            raise ValueError(f"need one price per market SKU, shape ({len(self)},) or ({len(self)}, days), got {prices.shape}")
        if not np.all(prices > 0):
            raise ValueError("prices_cents must be positive")
        return prices

    def _attraction(self, pos: np.ndarray, prices: np.ndarray, promo: np.ndarray | None = None) -> np.ndarray:
        """exp(u_jk) of SKUs ``pos`` at prices (m, cols) (promo: bool, same shape): (m, cols, K)."""
        cat = self._cat[pos]
        x = prices / self.structure.price_scale_cents[cat][:, None]
        u = self.delta[pos][:, None, None] - self._alpha[cat][:, None, :] * x[:, :, None]
        if promo is not None:
            u = u + (self.structure.promo_effect[cat][:, None] * promo)[:, :, None]
        return np.exp(u)

    def _shares(self, wide: np.ndarray, promo: np.ndarray | None = None) -> np.ndarray:
        """(n_market, cols, K) segment choice shares from every SKU's prices (n_market, cols)."""
        attraction = self._attraction(np.arange(len(self)), wide, promo)
        n, cols, k = attraction.shape
        totals = (self._members @ attraction.reshape(n, cols * k)).reshape(-1, cols, k)  # per category
        return attraction / (1.0 + totals[self._cat])

    def _calendar(self, cat: np.ndarray, dates: Any, shape: tuple[int, ...]) -> np.ndarray:
        """Weekday * season * trend factor of each category and date (as Market's)."""
        days = _as_days(dates)
        _check_broadcast("dates", days, shape)
        weekday, doy = weekday_and_doy(days)
        years = (days.astype(np.int64) - self._origin_day) / YEAR_DAYS
        s = self.structure
        season = 1.0 + s.season_amplitude[cat] * np.cos(2 * np.pi * (doy - s.season_peak_doy[cat]) / YEAR_DAYS)
        return s.dow[cat, weekday] * season * np.exp(s.trend_per_year[cat] * years)

    def _traffic_and_share(self, prices: np.ndarray, dates: Any, promo: Any) -> tuple[np.ndarray, np.ndarray]:
        """Category traffic (shoppers) and mixed choice share of every SKU, each of the prices' shape."""
        shape = prices.shape
        wide = prices.reshape(len(self), -1)
        flag = None
        if promo is not None:
            flag = np.asarray(promo, dtype=bool)
            _check_broadcast("promo", flag, shape)
            flag = np.broadcast_to(flag, shape).reshape(wide.shape)
        share = (self._shares(wide, flag) @ self.segments.weight).reshape(shape)
        col = (slice(None),) + (None,) * (len(shape) - 1)
        traffic = np.broadcast_to(self.structure.traffic[self._cat][col], shape)
        if dates is not None:
            traffic = traffic * self._calendar(self._cat[col], dates, shape)
        return traffic, share

    # ---- expected units and elasticities -------------------------------------------------------

    def expected(self, prices_cents: Any, dates: Any = None, promo: Any = None) -> np.ndarray:
        """Expected units of the whole market (no sampling), the shape of the prices.

        ``prices_cents`` is (n_market,) or (n_market, days) in truth order; each column is one
        day whose prices of a category's SKUs set its shares. ``dates`` (None: the average day,
        no calendar) and ``promo`` (bool) broadcast against the prices.
        """
        prices = self._market_prices(prices_cents)
        traffic, share = self._traffic_and_share(prices, dates, promo)
        col = (slice(None),) + (None,) * (prices.ndim - 1)
        return traffic * self._units_per_purchase[self._cat][col] * share

    def own_price_units(
        self,
        skus: Sequence[str] | np.ndarray,
        prices_cents: Any,
        current_prices_cents: Any,
        dates: Any = None,
    ) -> np.ndarray:
        """Expected units/day of each SKU at each of its candidate prices, every other SKU fixed.

        ``prices_cents`` is (n, k): k candidates per SKU of ``skus`` (or (n,), one each);
        ``current_prices_cents`` holds a price for every market SKU in truth order (n_market,).
        A SKU's own term replaces its current one in its category's denominators. With ``dates``
        the mean over those days of the calendar factor, else an average day. No promo.
        """
        pos = self.positions(skus)
        prices = np.asarray(prices_cents, dtype=np.float64)
        if prices.ndim not in (1, 2) or prices.shape[0] != len(pos):
            raise ValueError(f"prices_cents must have shape (n_skus, k) with n_skus={len(pos)}, got {prices.shape}")
        if not np.all(prices > 0):
            raise ValueError("prices_cents must be positive")
        current = self._market_prices(current_prices_cents)
        if current.ndim != 1:
            raise ValueError(f"current_prices_cents must have shape ({len(self)},)")
        now = self._attraction(np.arange(len(self)), current[:, None])[:, 0, :]  # (n_market, K)
        rest = 1.0 + (self._members @ now)[self._cat[pos]] - now[pos]  # (n, K): all but the SKU itself
        mine = self._attraction(pos, prices.reshape(len(pos), -1))  # (n, k, K)
        share = (mine / (rest[:, None, :] + mine)) @ self.segments.weight
        cat = self._cat[pos]
        factor = self.structure.traffic[cat] * self._units_per_purchase[cat]
        if dates is not None:
            days = _as_days(dates).reshape(-1)
            factor = factor * self._calendar(cat[:, None], days[None, :], (len(pos), len(days))).mean(axis=1)
        return (factor[:, None] * share).reshape(prices.shape)

    def elasticity_at(self, prices_cents: Any) -> np.ndarray:
        """Exact own-price elasticity of every market SKU at a full price vector (no promo).

        ``prices_cents`` is (n_market,) or (n_market, days); the result has its shape. The
        truth's elasticity is ``elasticity_at(ref_price_cents)``.
        """
        prices = self._market_prices(prices_cents)
        wide = prices.reshape(len(self), -1)
        x = wide / self.structure.price_scale_cents[self._cat][:, None]
        shares = self._shares(wide)
        return _own_elasticity(x, shares, self._alpha[self._cat][:, None, :], self.segments.weight).reshape(prices.shape)

    def cross_elasticities(self, category: str) -> pd.DataFrame:
        """SKU x SKU elasticities of a category at the ref prices: d ln Q_row / d ln p_column.

        Off the diagonal (p_col / pbar) * sum_k w_k alpha_k s_row,k s_col,k / sum_k w_k s_row,k
        (> 0: substitutes); the own elasticity (the truth's) on the diagonal. KeyError for an
        unknown category.
        """
        c = pd.Index(self.structure.category).get_loc(category)
        members = np.flatnonzero(self._cat == c)
        x = self.ref_price_cents[members] / self.structure.price_scale_cents[c]
        alpha_k, w = self._alpha[c], self.segments.weight
        s = _market_shares(x, self.delta[members], alpha_k)  # (m, K)
        matrix = ((s * w * alpha_k) @ s.T) * x[None, :] / (s @ w)[:, None]
        np.fill_diagonal(matrix, _own_elasticity(x, s, alpha_k, w))
        labels = pd.Index(self.sku[members], name="sku")
        return pd.DataFrame(matrix, index=labels, columns=labels)

    @cached_property
    def categories(self) -> CategoryTruth:
        """A log-log summary of each category, for information (``Market.categories``'s fields).

        Calendar and trend are exact; ``elasticity_mean`` is the mean truth elasticity;
        ``cross_elasticity`` the mean over SKUs of the sum of their cross elasticities (what
        raising every substitute's price by 1% does, in %); ``promo_uplift`` the mean ratio of a
        SKU's expected units on promo (alone) to off promo, at ref prices; ``dispersion_k`` the
        gamma shape (one SKU's purchases are negative binomial with it).
        """
        s = self.structure
        n_cat = len(s.category)
        cross = np.zeros(n_cat)
        for c, name in enumerate(s.category):
            matrix = self.cross_elasticities(name).to_numpy()
            if len(matrix) > 1:
                cross[c] = float((matrix.sum(axis=1) - np.diag(matrix)).mean())
        ref = self.ref_price_cents.astype(np.float64)[:, None]
        everyone = np.arange(len(self))
        now = self._attraction(everyone, ref)[:, 0, :]
        on = self._attraction(everyone, ref, np.ones_like(ref, dtype=bool))[:, 0, :]
        rest = 1.0 + (self._members @ now)[self._cat] - now
        uplift = ((on / (rest + on)) @ self.segments.weight) / ((now / (rest + now)) @ self.segments.weight)
        size = np.bincount(self._cat, minlength=n_cat)

        def mean(values: np.ndarray) -> np.ndarray:
            return np.bincount(self._cat, weights=values, minlength=n_cat) / np.maximum(size, 1)

        return CategoryTruth(
            category=s.category,
            dow=s.dow,
            season_amplitude=s.season_amplitude,
            season_peak_doy=s.season_peak_doy,
            promo_uplift=mean(uplift),
            elasticity_mean=mean(self.truth.elasticity),
            cross_elasticity=np.maximum(cross, 0.0),
            trend_per_year=s.trend_per_year,
            dispersion_k=s.gamma_shape,
        )

    # ---- sampling ------------------------------------------------------------------------------

    def draw_purchases(
        self, prices_cents: Any, dates: Any, promo: Any = None, *, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Purchases (receipt lines) and units of every market SKU, each int64 of the prices' shape.

        One gamma factor per category and column (day), then purchases Poisson(traffic * G *
        share) and units = purchases + Binomial(purchases, two_unit_share). Draws in that order.
        """
        prices = self._market_prices(prices_cents)
        traffic, share = self._traffic_and_share(prices, dates, promo)
        shape_k = self.structure.gamma_shape
        cols = prices.reshape(len(self), -1).shape[1]
        gamma = rng.standard_gamma(np.repeat(shape_k[:, None], cols, axis=1)) / shape_k[:, None]  # (n_cat, cols)
        mix = gamma[self._cat].reshape(prices.shape)
        purchases = rng.poisson(traffic * mix * share).astype(np.int64)
        col = (slice(None),) + (None,) * (prices.ndim - 1)
        two = np.broadcast_to(self.structure.two_unit_share[self._cat][col], prices.shape)
        return purchases, purchases + rng.binomial(purchases, two).astype(np.int64)

    def simulate(
        self,
        prices_cents: Any,
        dates: Any,
        promo: Any = None,
        *,
        rng: np.random.Generator,
        stock: Any = None,
    ) -> np.ndarray:
        """Units sold by the whole market (int64, the shape of the prices), as ``Market.simulate``.

        ``prices_cents`` holds every market SKU in truth order, (n_market, days) with ``dates``
        of shape (days,) (or (n_market,) with one date); ``promo`` has the prices' shape or is
        None. Units are drawn as in ``draw_purchases``; with ``stock`` (integer, the prices'
        shape) sales are min(demand, stock).
        """
        prices = self._market_prices(prices_cents)
        limit = None
        if stock is not None:
            limit = np.asarray(stock)
            if limit.shape != prices.shape or not np.issubdtype(limit.dtype, np.integer) or (limit < 0).any():
                raise ValueError(f"stock must be non-negative integers of shape {prices.shape}")
        _, units = self.draw_purchases(prices, dates, promo, rng=rng)
        return units if limit is None else np.minimum(units, limit)

    # ---- files ---------------------------------------------------------------------------------

    def save(self, directory: Path | str) -> tuple[Path, Path]:
        """Write truth.csv (``Market.save``'s format) and truth_choice.json into a directory."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        truth_path, choice_path = out / TRUTH_FILE, out / CHOICE_FILE
        self.truth.frame().to_csv(truth_path, index=False, lineterminator="\n")
        document = {
            "kind": self.kind,
            "format": FORMAT_VERSION,
            "model": "mixed multinomial logit with outside option; see simulator/choice_market.py",
            "trend_origin": self.trend_origin.isoformat(),
            "weekdays": list(WEEKDAYS),
            "segments": {"z": self.segments.z.tolist(), "weight": self.segments.weight.tolist()},
            "categories": self.structure.to_dict(),
            "skus": {
                "sku": self.sku.tolist(),
                "category": self.category.tolist(),
                "ref_price_cents": self.ref_price_cents.tolist(),
                "delta": self.delta.tolist(),
            },
        }
        choice_path.write_text(json.dumps(document, indent=1) + "\n")
        return truth_path, choice_path

    @classmethod
    def load(cls, directory: Path | str) -> ChoiceMarket:
        """Read what ``save`` wrote; ValueError when truth.csv disagrees with the parameters."""
        path = Path(directory)
        document = json.loads((path / CHOICE_FILE).read_text())
        if document.get("kind") != cls.kind or document.get("format") != FORMAT_VERSION:
            raise ValueError(f"{path / CHOICE_FILE}: not a choice market of format {FORMAT_VERSION}")
        skus = document["skus"]
        market = cls(
            np.array(skus["sku"], dtype=object),
            np.array(skus["category"], dtype=object),
            np.array(skus["ref_price_cents"], dtype=np.int64),
            np.array(skus["delta"], dtype=np.float64),
            ChoiceCategories.from_dict(document["categories"]),
            Segments(np.array(document["segments"]["z"]), np.array(document["segments"]["weight"])),
            date.fromisoformat(document["trend_origin"]),
        )
        truth = pd.read_csv(path / TRUTH_FILE, dtype={"sku": str, "category": str}, keep_default_na=False)
        mine = market.truth.frame()
        same = (
            len(truth) == len(mine)
            and (truth["sku"].to_numpy(dtype=object) == mine["sku"].to_numpy()).all()
            and (truth["ref_price_cents"].to_numpy() == mine["ref_price_cents"].to_numpy()).all()
            and np.allclose(truth[["base_units", "elasticity"]].to_numpy(), mine[["base_units", "elasticity"]].to_numpy(), rtol=1e-9)
        )
        if not same:
            raise ValueError(f"{path / TRUTH_FILE} does not match {CHOICE_FILE}")
        return market


def _draw_category(
    x: np.ndarray, profile: CategoryProfile, segments: Segments, rng: np.random.Generator, name: str
) -> tuple[float, np.ndarray, float, float]:
    """alpha_c, deltas, sigma_c and outside share of one category with relative ref prices x."""
    low, high = ELASTICITY_MARGIN
    for _ in range(DRAW_ATTEMPTS):
        sigma = round(float(rng.uniform(*SIGMA_RANGE)), 4)
        outside = float(rng.uniform(*OUTSIDE_SHARE_RANGE))
        lam = float(rng.uniform(*QUALITY_PRICE_RANGE))
        quality = rng.normal(0.0, QUALITY_NOISE, len(x))
        target = float(np.clip(profile.elasticity + rng.normal(0.0, 0.25), *MEAN_ELASTICITY_RANGE))
        for _ in range(6):  # rescale the target until the SKUs fit the margin (or cannot)
            alpha, delta, elasticity = _calibrate(x, quality, lam, segments, sigma, outside, target)
            least, most = -float(elasticity.max()), -float(elasticity.min())  # magnitudes
            if least >= -high and most <= -low:
                alpha, delta = round(alpha, 6), np.round(delta, 6)
                alpha_k = alpha * np.exp(sigma * segments.z)
                exact = _own_elasticity(x, _market_shares(x, delta, alpha_k), alpha_k, segments.weight)
                if exact.max() <= MAX_ELASTICITY and exact.min() >= MIN_ELASTICITY:
                    return alpha, delta, sigma, outside
            grow, shrink = -high / least, -low / most  # scale >= grow lifts the least elastic, <= shrink caps the most
            if grow > shrink:
                break  # the spread is too wide for these draws: draw again
            target *= float(np.clip(1.0, grow, shrink)) * (1.01 if least < -high else 0.99 if most > -low else 1.0)
    raise ValueError(f"category {name!r}: no draw keeps every elasticity in [{MIN_ELASTICITY}, {MAX_ELASTICITY}]")


def load_market(directory: Path | str) -> Market | ChoiceMarket:
    """The market of a store directory: ChoiceMarket when truth_choice.json exists, else Market."""
    path = Path(directory)
    if (path / CHOICE_FILE).exists():
        return ChoiceMarket.load(path)
    return Market.load(path)
