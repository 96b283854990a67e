"""The market's ground truth: how many units shoppers buy at a price, on a day.

The engine never sees this; it learns demand from sales. The simulator (and benchmarks) use it
to generate sales and to measure how close the engine's prices come to the true optimum.

Expected units of SKU i (category c) on day t::

    mu_it = base_i * (p_it / ref_i) ** e_i          own price, e_i <= MAX_ELASTICITY
            * exp(x_c * I_it)                       substitutes' prices (cross-price effect)
            * dow_c[weekday] * season_c(doy)        calendar
            * exp(trend_c * years_since_origin)     per-category growth or decline
            * (uplift_c if promo else 1)

- ``I_it`` is the category price index of i's substitutes: the leave-one-out mean, over the
  other SKUs j != i of category c, of log(p_jt / ref_j) (0 when i is alone in its category).
  ``x_c >= 0`` is the category's cross-price elasticity, so when substitutes get cheaper (a
  promo, a price cut) SKU i sells less. Because i's own price is left out, e_i is exactly SKU
  i's own-price elasticity with the other prices fixed, and the profit optimum with the others
  fixed is price* = cost * e / (e + 1) (``optimal_price_cents``).
- ``dow`` (Monday first, averaging 1), ``season`` (1 + amplitude * cos(2 pi (doy - peak) /
  365.25), averaging 1 over a year) and the promo ``uplift`` are per category.
- ``trend_c`` is log growth per year; ``years_since_origin = (date - trend_origin) / 365.25``,
  where ``trend_origin`` is one date stored with the market (the first day of a generated
  store's history). Without dates (the "average day") there is no calendar and no trend effect.

Units sold are negative binomial around mu (a gamma-Poisson mixture, shape k_c per category):
Var = mu + mu**2 / k_c, over-dispersed compared to Poisson. Stock censors sales: units sold =
min(demand draw, stock); ``draw_stock`` is the stock process of the sample store (mostly ample
stock, a few percent of SKU-days short, in runs of 1-4 days as when a delivery is missed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

TRUTH_FILE = "truth.csv"
CATEGORIES_FILE = "truth_categories.csv"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MAX_ELASTICITY = -1.1  # the least elastic a SKU may be (a profit optimum must exist)
MIN_ELASTICITY = -4.5
SKU_ELASTICITY_SPREAD = 0.3
BRAND_ELASTICITY_SPREAD = 0.2  # of the SKU spread, the part shared by a brand within a category
YEAR_DAYS = 365.25
DEFAULT_TREND_ORIGIN = date(2026, 1, 1)
CROSS_ELASTICITY_RANGE = (0.3, 0.8)
TREND_RANGE = (-0.06, 0.10)  # log growth per year
DISPERSION_K_RANGE = (8.0, 25.0)  # negative binomial shape: Var = mu + mu^2 / k
BLOCK_SKUS = 4096  # SKUs per block in full-market computations (bounds temporary memory)
# Stock process (draw_stock): a short run starts on a SKU-day with this probability and lasts
# 1..SHORT_RUN_MAX days, about 3% of SKU-days short; on a short day stock = floor(mu * U(0, 1)).
SHORT_RUN_START = 0.012
SHORT_RUN_MAX = 4
# Otherwise stock = ceil(AMPLE_FACTOR * mu) + AMPLE_EXTRA: not binding in practice.
AMPLE_FACTOR = 5.0
AMPLE_EXTRA = 10


class CategoryProfile(NamedTuple):
    """Typical demand of a category, the centre the truth is drawn around."""

    elasticity: float  # centre of the category mean elasticity
    season_amplitude: float
    season_peak_doy: int  # day of year (0 = 1 January) with the most demand
    base_units: float  # median units/day of a SKU at its reference price


CATEGORY_PROFILES: dict[str, CategoryProfile] = {
    "dairy": CategoryProfile(-2.0, 0.05, 350, 5.0),
    "bakery": CategoryProfile(-1.9, 0.08, 350, 4.0),
    "produce": CategoryProfile(-2.6, 0.12, 190, 6.0),
    "beverages": CategoryProfile(-2.3, 0.25, 195, 4.0),
    "snacks": CategoryProfile(-2.2, 0.12, 355, 3.0),
    "frozen": CategoryProfile(-2.0, 0.28, 200, 2.0),
    "household": CategoryProfile(-1.8, 0.04, 80, 1.2),
    "personal_care": CategoryProfile(-1.7, 0.06, 190, 1.0),
}
DEFAULT_PROFILE = CategoryProfile(-2.0, 0.1, 180, 2.0)
# Shoppers shop more late in the week; Sunday is quiet but open.
DOW_SHAPE = np.array([0.88, 0.85, 0.92, 0.98, 1.15, 1.32, 0.90])


def _frozen(values: Any, dtype: Any) -> np.ndarray:
    array = np.array(values, dtype=dtype)
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class DemandTruth:
    """Per-SKU truth, one entry per SKU in the same order in every array."""

    sku: np.ndarray  # str (object)
    category: np.ndarray  # str (object)
    base_units: np.ndarray  # expected units/day at ref price on an average day
    ref_price_cents: np.ndarray  # int64
    elasticity: np.ndarray  # own-price, <= MAX_ELASTICITY

    def __post_init__(self) -> None:
        dtypes = {"sku": object, "category": object, "ref_price_cents": np.int64}
        for f in fields(self):
            object.__setattr__(self, f.name, _frozen(getattr(self, f.name), dtypes.get(f.name, np.float64)))
        n = len(self.sku)
        if any(len(getattr(self, f.name)) != n for f in fields(self)):
            raise ValueError("all DemandTruth arrays must have one entry per SKU")
        if len(set(self.sku.tolist())) != n:
            raise ValueError("duplicate sku in DemandTruth")
        if n and (self.elasticity.max() > MAX_ELASTICITY or self.ref_price_cents.min() < 1):
            raise ValueError(f"elasticity must be <= {MAX_ELASTICITY} and ref_price_cents >= 1")

    def __len__(self) -> int:
        return len(self.sku)

    def frame(self) -> pd.DataFrame:
        """As a DataFrame with columns sku, category, base_units, ref_price_cents, elasticity."""
        return pd.DataFrame({f.name: getattr(self, f.name) for f in fields(self)})

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> DemandTruth:
        return cls(**{f.name: frame[f.name].to_numpy() for f in fields(cls)})


# Category columns added after the first release, with the neutral value a file without them
# gets: no cross-price effect, no trend, Poisson noise (k = inf).
_NEUTRAL = {"cross_elasticity": 0.0, "trend_per_year": 0.0, "dispersion_k": np.inf}


@dataclass(frozen=True)
class CategoryTruth:
    """Per-category calendar, promo uplift, cross-price effect, trend and noise shape."""

    category: np.ndarray  # str (object)
    dow: np.ndarray  # (n_categories, 7), Monday first, each row averages 1
    season_amplitude: np.ndarray
    season_peak_doy: np.ndarray  # int64, 0 = 1 January
    promo_uplift: np.ndarray
    elasticity_mean: np.ndarray  # the centre SKU elasticities were drawn around (information)
    cross_elasticity: np.ndarray  # x_c >= 0: units scale by exp(x_c * substitutes' log price index)
    trend_per_year: np.ndarray  # log growth of demand per year since the market's trend origin
    dispersion_k: np.ndarray  # negative binomial shape k > 0 (inf = Poisson): Var = mu + mu^2/k

    def __post_init__(self) -> None:
        dtypes = {"category": object, "season_peak_doy": np.int64}
        for f in fields(self):
            object.__setattr__(self, f.name, _frozen(getattr(self, f.name), dtypes.get(f.name, np.float64)))
        n = len(self.category)
        if self.dow.shape != (n, 7):
            raise ValueError("dow must have shape (n_categories, 7)")
        if any(getattr(self, f.name).shape != (n,) for f in fields(self) if f.name != "dow"):
            raise ValueError("CategoryTruth arrays must have one entry per category")
        if (self.cross_elasticity < 0).any() or not (self.dispersion_k > 0).all():
            raise ValueError("cross_elasticity must be >= 0 and dispersion_k > 0")

    def frame(self) -> pd.DataFrame:
        out = pd.DataFrame({"category": self.category})
        for i, day in enumerate(WEEKDAYS):
            out[f"dow_{day}"] = self.dow[:, i]
        for f in fields(self):
            if f.name not in ("category", "dow"):
                out[f.name] = getattr(self, f.name)
        return out

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> CategoryTruth:
        """Inverse of ``frame``; the newer columns are optional (neutral values when missing)."""
        n = len(frame)
        values: dict[str, Any] = {
            "category": frame["category"].to_numpy(),
            "dow": frame[[f"dow_{day}" for day in WEEKDAYS]].to_numpy(dtype=np.float64),
        }
        for f in fields(cls):
            if f.name not in values:
                column = frame.get(f.name)
                values[f.name] = np.full(n, _NEUTRAL[f.name]) if column is None else column.to_numpy()
        return cls(**values)

    @classmethod
    def draw(cls, names: Sequence[str], rng: np.random.Generator) -> CategoryTruth:
        """Draw category truths around CATEGORY_PROFILES (a generic profile for unknown names)."""
        profiles = [CATEGORY_PROFILES.get(name, DEFAULT_PROFILE) for name in names]
        n = len(profiles)
        centre = np.array([p.elasticity for p in profiles])
        elasticity = np.clip(centre + rng.normal(0, 0.15, n), -3.0, -1.4)
        dow = DOW_SHAPE[None, :] * rng.lognormal(0, 0.05, (n, 7))
        dow = np.round(dow / dow.mean(axis=1, keepdims=True), 4)
        amplitude = np.array([p.season_amplitude for p in profiles]) * rng.uniform(0.8, 1.2, n)
        peak = np.array([p.season_peak_doy for p in profiles]) + rng.integers(-10, 11, n)
        return cls(
            category=np.array(names, dtype=object),
            dow=dow,
            season_amplitude=np.round(amplitude, 4),
            season_peak_doy=peak % 365,
            promo_uplift=np.round(rng.uniform(1.2, 1.45, n), 3),
            elasticity_mean=np.round(elasticity, 4),
            cross_elasticity=np.round(rng.uniform(*CROSS_ELASTICITY_RANGE, n), 4),
            trend_per_year=np.round(rng.uniform(*TREND_RANGE, n), 4),
            dispersion_k=np.round(rng.uniform(*DISPERSION_K_RANGE, n), 3),
        )


def _as_days(dates: Any) -> np.ndarray:
    """Dates (date, str, datetime64, Timestamp, or arrays of them) as datetime64[D]."""
    if isinstance(dates, (pd.Series, pd.Index, pd.DatetimeIndex)):
        dates = dates.to_numpy()
    if isinstance(dates, pd.Timestamp):
        dates = dates.to_datetime64()
    return np.asarray(dates).astype("datetime64[D]")


def weekday_and_doy(dates: Any) -> tuple[np.ndarray, np.ndarray]:
    """Weekday (0 = Monday) and day of year (0 = 1 January) of each date."""
    days = _as_days(dates)
    number = days.astype(np.int64)
    weekday = (number + 3) % 7  # 1970-01-01 was a Thursday
    doy = (days - days.astype("datetime64[Y]").astype("datetime64[D]")).astype(np.int64)
    return weekday, doy


def _check_broadcast(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    if np.broadcast_shapes(array.shape, shape) != shape:
        raise ValueError(f"{name} of shape {array.shape} does not broadcast to prices {shape}")


def draw_stock(expected_units: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Units in stock per SKU-day (int64, same shape), the sample store's stock process.

    ``expected_units`` is (n_skus, days) (or (days,) for one SKU); runs go along the last axis.
    A short run starts on a SKU-day with probability SHORT_RUN_START and lasts 1 to
    SHORT_RUN_MAX days (runs are cut at the end of the array), so about 3% of SKU-days are
    short; there stock = floor(mu * U(0, 1)), often below demand and sometimes 0. Every other
    day stock = ceil(AMPLE_FACTOR * mu) + AMPLE_EXTRA, which demand practically never reaches.
    """
    mu = np.asarray(expected_units, dtype=np.float64)
    if mu.ndim == 0:
        raise ValueError("expected_units must have a days axis")
    if not np.all(mu >= 0):
        raise ValueError("expected_units must be >= 0")
    short = _short_days(mu.shape, rng)
    stock = np.ceil(AMPLE_FACTOR * mu).astype(np.int64) + AMPLE_EXTRA
    where = np.nonzero(short)
    stock[where] = np.floor(mu[where] * rng.random(len(where[0])))
    return stock


def _short_days(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of short SKU-days: runs of 1..SHORT_RUN_MAX along the last axis."""
    days = shape[-1]
    starts = np.nonzero(rng.random(shape, dtype=np.float32) < SHORT_RUN_START)
    length = rng.integers(1, SHORT_RUN_MAX + 1, len(starts[0]))
    short = np.zeros(shape, dtype=bool)
    for lag in range(SHORT_RUN_MAX):  # a few lags, each vectorised over all runs
        keep = (length > lag) & (starts[-1] + lag < days)
        short[tuple(axis[keep] for axis in starts[:-1]) + (starts[-1][keep] + lag,)] = True
    return short


def _rows(array: Any, shape: tuple[int, ...], lo: int, hi: int) -> Any:
    """Rows lo:hi of an argument that broadcasts to ``shape``; one without the SKU axis as is."""
    if array is None:
        return None
    values = np.asarray(array)
    if values.ndim < len(shape):
        return array
    return np.broadcast_to(values, shape)[lo:hi]


class Market:
    """Shopper demand for a store's SKUs, known exactly (the simulator's ground truth)."""

    kind = "loglog"  # the form of its demand (simulator.choice_market.ChoiceMarket is "choice")

    def __init__(
        self, truth: DemandTruth, categories: CategoryTruth, trend_origin: date = DEFAULT_TREND_ORIGIN
    ) -> None:
        self.truth = truth
        self.categories = categories
        self.trend_origin = trend_origin
        self._origin_day = int(np.datetime64(trend_origin, "D").astype(np.int64))
        self._sku_index = pd.Index(truth.sku)
        cat_index = pd.Index(categories.category).get_indexer(truth.category)
        if (cat_index < 0).any():
            missing = sorted(set(truth.category[cat_index < 0].tolist()))
            raise ValueError(f"categories without a category truth: {missing}")
        self._cat = cat_index
        self._cat_size = np.bincount(cat_index, minlength=len(categories.category))

    @classmethod
    def draw(
        cls,
        skus: Sequence[str] | np.ndarray,
        categories: Sequence[str] | np.ndarray,
        ref_price_cents: Sequence[int] | np.ndarray,
        rng: np.random.Generator,
        trend_origin: date = DEFAULT_TREND_ORIGIN,
        brands: Sequence[str] | np.ndarray | None = None,
    ) -> Market:
        """Draw a market truth: elasticities and base volumes around each category's profile.

        With ``brands``, SKUs of one brand in one category share part of their deviation from
        the category (shoppers of a premium brand are less price-sensitive than those of a
        value brand): BRAND_ELASTICITY_SPREAD between brands, the rest SKU by SKU, so the
        total spread around the category is still SKU_ELASTICITY_SPREAD.
        """
        cat_arr = np.asarray(categories, dtype=object)
        names = sorted(set(cat_arr.tolist()))
        cats = CategoryTruth.draw(names, rng)
        idx = pd.Index(cats.category).get_indexer(cat_arr)
        n = len(cat_arr)
        if brands is None:
            spread = rng.normal(0, SKU_ELASTICITY_SPREAD, n)
        else:
            within = np.sqrt(SKU_ELASTICITY_SPREAD**2 - BRAND_ELASTICITY_SPREAD**2)
            group, _ = pd.factorize(pd.Series(cat_arr).astype(str) + "\x1f" + pd.Series(np.asarray(brands, dtype=object)).astype(str), sort=True)
            brand_effect = rng.normal(0, BRAND_ELASTICITY_SPREAD, int(group.max(initial=-1)) + 1)
            spread = brand_effect[group] + rng.normal(0, within, n)
        raw = cats.elasticity_mean[idx] + spread
        # Reflect at the bound rather than clip, so SKUs do not pile up at exactly -1.1.
        reflected = np.where(raw > MAX_ELASTICITY, 2 * MAX_ELASTICITY - raw, raw)
        elasticity = np.clip(reflected, MIN_ELASTICITY, MAX_ELASTICITY)
        median = np.array([CATEGORY_PROFILES.get(c, DEFAULT_PROFILE).base_units for c in names])[idx]
        base = np.clip(median * rng.lognormal(0, 0.9, n), 0.05, 250)
        truth = DemandTruth(
            sku=np.asarray(skus, dtype=object),
            category=cat_arr,
            base_units=np.round(base, 4),
            ref_price_cents=np.asarray(ref_price_cents, dtype=np.int64),
            elasticity=np.round(elasticity, 4),
        )
        return cls(truth, cats, trend_origin)

    def __len__(self) -> int:
        return len(self.truth)

    def positions(self, skus: Sequence[str] | np.ndarray) -> np.ndarray:
        """Row of each SKU in the truth; KeyError for SKUs the market does not know."""
        pos = self._sku_index.get_indexer(np.asarray(skus, dtype=object))
        if (pos < 0).any():
            unknown = np.asarray(skus, dtype=object)[pos < 0][:5].tolist()
            raise KeyError(f"unknown sku(s): {unknown}")
        return pos

    # ---- expected units --------------------------------------------------------------------

    def expected_units(
        self,
        skus: Sequence[str] | np.ndarray,
        prices_cents: Any,
        dates: Any = None,
        promo: Any = None,
        category_index: Any = None,
    ) -> np.ndarray:
        """Expected units per day; the result has the shape of ``prices_cents``.

        ``prices_cents`` is (n_skus,) or (n_skus, k): k candidate prices per SKU, or, with
        ``dates`` of shape (k,), one price per SKU and date. ``dates=None`` gives the average
        day (no weekday, season or trend effect); otherwise ``dates`` broadcasts against the
        prices (a single date, one per SKU, or one per column). ``promo`` broadcasts likewise.
        ``category_index`` (broadcasting likewise; None = 0, every substitute at its reference
        price) is the substitutes' log price index I of ``category_index()``: units scale by
        exp(cross_elasticity * I).
        """
        return self._expected(self.positions(skus), prices_cents, dates, promo, category_index)

    def _expected(self, pos: np.ndarray, prices_cents: Any, dates: Any, promo: Any, index: Any) -> np.ndarray:
        prices = np.asarray(prices_cents, dtype=np.float64)
        if prices.ndim == 0 or prices.shape[0] != len(pos):
            raise ValueError(f"prices_cents must have shape (n_skus, ...) with n_skus={len(pos)}, got {prices.shape}")
        if not np.all(prices > 0):
            raise ValueError("prices_cents must be positive")
        col = (slice(None),) + (None,) * (prices.ndim - 1)
        t, c = self.truth, self.categories
        units = t.base_units[pos][col] * (prices / t.ref_price_cents[pos][col]) ** t.elasticity[pos][col]
        cat = self._cat[pos][col]
        if index is not None:
            index = np.asarray(index)
            _check_broadcast("category_index", index, prices.shape)
            units *= np.exp(c.cross_elasticity[cat] * index)
        if dates is not None:
            units *= self._calendar(cat, dates, prices.shape)
        if promo is not None:
            flag = np.asarray(promo, dtype=bool)
            _check_broadcast("promo", flag, prices.shape)
            units *= np.where(flag, c.promo_uplift[cat], 1.0)
        return units

    def _calendar(self, cat: np.ndarray, dates: Any, shape: tuple[int, ...]) -> np.ndarray:
        """Weekday * season * trend factor of each category and date."""
        days = _as_days(dates)
        _check_broadcast("dates", days, shape)
        weekday, doy = weekday_and_doy(days)
        years = (days.astype(np.int64) - self._origin_day) / YEAR_DAYS
        c = self.categories
        season = 1.0 + c.season_amplitude[cat] * np.cos(2 * np.pi * (doy - c.season_peak_doy[cat]) / YEAR_DAYS)
        return c.dow[cat, weekday] * season * np.exp(c.trend_per_year[cat] * years)

    def category_index(self, prices_cents: Any, *, dtype: Any = np.float64) -> np.ndarray:
        """The substitutes' log price index I of every SKU (same shape as the prices).

        ``prices_cents`` holds a price for every market SKU in truth order, shape (n_market,)
        or (n_market, days). I of SKU i is the mean of log(p_j / ref_j) over the other SKUs j
        of i's category (0 when i is alone in it). Computed from per-category sums, in blocks
        of SKUs; ``dtype`` (e.g. float32) is that of the result.
        """
        prices = self._market_prices(prices_cents)
        n, n_cat = len(self), len(self.categories.category)
        wide = prices.reshape(n, -1)
        cols = wide.shape[1]
        sums = np.zeros(n_cat * cols)
        for lo in range(0, n, BLOCK_SKUS):
            hi = min(lo + BLOCK_SKUS, n)
            cell = (self._cat[lo:hi, None] * cols + np.arange(cols)[None, :]).ravel()
            sums += np.bincount(cell, weights=self._log_ratio(wide, lo, hi).ravel(), minlength=n_cat * cols)
        sums = sums.reshape(n_cat, cols)
        out = np.empty(wide.shape, dtype=dtype)
        for lo in range(0, n, BLOCK_SKUS):
            hi = min(lo + BLOCK_SKUS, n)
            cat = self._cat[lo:hi]
            others = (self._cat_size[cat] - 1)[:, None]
            loo = (sums[cat] - self._log_ratio(wide, lo, hi)) / np.maximum(others, 1)
            out[lo:hi] = np.where(others > 0, loo, 0.0)
        return out.reshape(prices.shape)

    def _log_ratio(self, wide: np.ndarray, lo: int, hi: int) -> np.ndarray:
        return np.log(wide[lo:hi] / self.truth.ref_price_cents[lo:hi, None])

    def _market_prices(self, prices_cents: Any) -> np.ndarray:
        prices = np.asarray(prices_cents)
        if prices.ndim not in (1, 2) or prices.shape[0] != len(self):
            raise ValueError(f"need one price per market SKU, shape ({len(self)},) or ({len(self)}, days), got {prices.shape}")
        if not np.all(prices > 0):
            raise ValueError("prices_cents must be positive")
        return prices

    def expected(self, prices_cents: Any, dates: Any = None, promo: Any = None) -> np.ndarray:
        """Expected units of the whole market, substitutes' prices included (no sampling).

        ``prices_cents`` is (n_market,) or (n_market, days) in truth order; ``dates`` and
        ``promo`` broadcast as in ``expected_units``. The category index comes from the prices.
        """
        prices = self._market_prices(prices_cents)
        index = self.category_index(prices)
        out = np.empty(prices.shape)
        for lo in range(0, len(self), BLOCK_SKUS):
            hi = min(lo + BLOCK_SKUS, len(self))
            out[lo:hi] = self._expected(
                np.arange(lo, hi),
                prices[lo:hi],
                _rows(dates, prices.shape, lo, hi),
                _rows(promo, prices.shape, lo, hi),
                index[lo:hi],
            )
        return out

    # ---- sampling ----------------------------------------------------------------------------

    def sample_units(
        self,
        skus: Sequence[str] | np.ndarray,
        prices_cents: Any,
        dates: Any = None,
        promo: Any = None,
        category_index: Any = None,
        *,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Units demanded: negative binomial draws around ``expected_units`` (int64, same shape)."""
        pos = self.positions(skus)
        return self._sample(pos, self._expected(pos, prices_cents, dates, promo, category_index), rng)

    def sample_around(
        self, skus: Sequence[str] | np.ndarray, expected_units: Any, *, rng: np.random.Generator
    ) -> np.ndarray:
        """Negative binomial draws (each SKU's category shape k) around given expected units."""
        mu = np.asarray(expected_units, dtype=np.float64)
        pos = self.positions(skus)
        if mu.ndim == 0 or mu.shape[0] != len(pos) or not np.all(mu >= 0):
            raise ValueError(f"expected_units must be >= 0 with shape (n_skus, ...), n_skus={len(pos)}")
        return self._sample(pos, mu, rng)

    def _sample(self, pos: np.ndarray, mu: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Gamma-Poisson mixture: Poisson(mu * G), G ~ Gamma(k, 1/k) (G = 1 where k = inf)."""
        col = (slice(None),) + (None,) * (mu.ndim - 1)
        k = np.broadcast_to(self.categories.dispersion_k[self._cat[pos]][col], mu.shape)
        finite = np.isfinite(k)
        if finite.all():
            mix = rng.standard_gamma(k) / k
        else:
            safe = np.where(finite, k, 1.0)
            mix = np.where(finite, rng.standard_gamma(safe) / safe, 1.0)
        return rng.poisson(mu * mix).astype(np.int64)

    def simulate(
        self,
        prices_cents: Any,
        dates: Any,
        promo: Any = None,
        *,
        rng: np.random.Generator,
        stock: Any = None,
    ) -> np.ndarray:
        """Units sold by the whole market (int64, the shape of the prices).

        ``prices_cents`` holds every market SKU in truth order, (n_market, days) with ``dates``
        of shape (days,) (or (n_market,) with one date); ``promo`` has the prices' shape or is
        None. The category index comes from the prices; demand is drawn negative binomial
        around ``expected``; with ``stock`` (integer, the prices' shape) sales are
        min(demand, stock).
        """
        prices = self._market_prices(prices_cents)
        limit = None
        if stock is not None:
            limit = np.asarray(stock)
            if limit.shape != prices.shape or not np.issubdtype(limit.dtype, np.integer) or (limit < 0).any():
                raise ValueError(f"stock must be non-negative integers of shape {prices.shape}")
        mu = self.expected(prices, dates, promo)
        units = np.empty(prices.shape, dtype=np.int64)
        for lo in range(0, len(self), BLOCK_SKUS):
            hi = min(lo + BLOCK_SKUS, len(self))
            units[lo:hi] = self._sample(np.arange(lo, hi), mu[lo:hi], rng)
        return units if limit is None else np.minimum(units, limit)

    def own_price_units(
        self,
        skus: Sequence[str] | np.ndarray,
        prices_cents: Any,
        current_prices_cents: Any,
        dates: Any = None,
    ) -> np.ndarray:
        """Expected units/day of each SKU at each of its candidate prices, every other SKU fixed.

        ``prices_cents`` is (n, k): k candidates per SKU of ``skus``; ``current_prices_cents``
        holds a price for every market SKU in truth order (n_market,): the substitutes' prices.
        With ``dates`` the mean over those days of the weekday, season and trend factor, else an
        average day. What an oracle prices with (the same question the engine's model answers).
        """
        pos = self.positions(skus)
        index = self.category_index(np.asarray(current_prices_cents, dtype=np.float64))[pos]
        prices = np.asarray(prices_cents, dtype=np.float64)
        units = self._expected(pos, prices, None, None, index[:, None])
        if dates is not None:  # weekday x season x trend averaged over the days: units at ref / base units
            days = _as_days(dates)
            ref = np.repeat(self.truth.ref_price_cents[pos, None], len(days), axis=1)
            calendar = self._expected(pos, ref, days, None, None).mean(axis=1) / self.truth.base_units[pos]
            units = units * calendar[:, None]
        return units

    def optimal_price_cents(self, skus: Sequence[str] | np.ndarray, cost_cents: Any) -> np.ndarray:
        """The unconstrained profit-optimal price with substitutes' prices fixed, cost * e / (e + 1)."""
        e = self.truth.elasticity[self.positions(skus)]
        return np.asarray(cost_cents, dtype=np.float64) * e / (e + 1.0)

    # ---- files -------------------------------------------------------------------------------

    def save(self, path: Path | str) -> tuple[Path, Path]:
        """Write truth.csv and truth_categories.csv (into a directory, or next to a .csv path).

        The market's trend origin is a column (one ISO date, the same on every row) of the
        categories file.
        """
        truth_path, cat_path = _paths(Path(path))
        truth_path.parent.mkdir(parents=True, exist_ok=True)
        self.truth.frame().to_csv(truth_path, index=False, lineterminator="\n")
        cats = self.categories.frame().assign(trend_origin=self.trend_origin.isoformat())
        cats.to_csv(cat_path, index=False, lineterminator="\n")
        return truth_path, cat_path

    @classmethod
    def load(cls, path: Path | str) -> Market:
        """Read what ``save`` wrote; SKUs stay strings."""
        truth_path, cat_path = _paths(Path(path))
        text = {"sku": str, "category": str}
        truth = pd.read_csv(truth_path, dtype=text, keep_default_na=False)
        cats = pd.read_csv(cat_path, dtype={"category": str, "trend_origin": str}, keep_default_na=False)
        origins = set(cats["trend_origin"]) if "trend_origin" in cats else {DEFAULT_TREND_ORIGIN.isoformat()}
        if len(origins) > 1:
            raise ValueError(f"{cat_path}: one trend_origin expected, got {sorted(origins)}")
        origin = date.fromisoformat(origins.pop()) if origins else DEFAULT_TREND_ORIGIN
        return cls(DemandTruth.from_frame(truth), CategoryTruth.from_frame(cats), origin)


def _paths(path: Path) -> tuple[Path, Path]:
    if path.suffix == ".csv":
        return path, path.with_name(path.stem + "_categories.csv")
    return path / TRUTH_FILE, path / CATEGORIES_FILE


def days_between(start: date, end: date) -> np.ndarray:
    """Every date from start to end inclusive, as datetime64[D]."""
    return np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
