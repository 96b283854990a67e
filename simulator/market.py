"""The market's ground truth: how many units shoppers buy at a price, on a day.

The engine never sees this; it learns demand from sales. The simulator (and benchmarks) use it
to generate sales and to measure how close the engine's prices come to the true optimum.

Expected units per SKU and day::

    base_units * (price / ref_price) ** elasticity * dow[weekday] * season(day of year) * uplift

``dow`` (Monday first, averaging 1), ``season`` (1 + amplitude * cos(...), averaging 1 over a
year) and the promo ``uplift`` are per category. Elasticities are always <= -1.1, so a profit
optimum exists: price* = cost * e / (e + 1).
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
YEAR_DAYS = 365.25


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


@dataclass(frozen=True)
class CategoryTruth:
    """Per-category day-of-week, seasonality and promo uplift."""

    category: np.ndarray  # str (object)
    dow: np.ndarray  # (n_categories, 7), Monday first, each row averages 1
    season_amplitude: np.ndarray
    season_peak_doy: np.ndarray  # int64, 0 = 1 January
    promo_uplift: np.ndarray
    elasticity_mean: np.ndarray  # the centre SKU elasticities were drawn around (information)

    def __post_init__(self) -> None:
        dtypes = {"category": object, "season_peak_doy": np.int64}
        for f in fields(self):
            object.__setattr__(self, f.name, _frozen(getattr(self, f.name), dtypes.get(f.name, np.float64)))
        if self.dow.shape != (len(self.category), 7):
            raise ValueError("dow must have shape (n_categories, 7)")

    def frame(self) -> pd.DataFrame:
        out = pd.DataFrame({"category": self.category})
        for i, day in enumerate(WEEKDAYS):
            out[f"dow_{day}"] = self.dow[:, i]
        for name in ("season_amplitude", "season_peak_doy", "promo_uplift", "elasticity_mean"):
            out[name] = getattr(self, name)
        return out

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> CategoryTruth:
        return cls(
            category=frame["category"].to_numpy(),
            dow=frame[[f"dow_{day}" for day in WEEKDAYS]].to_numpy(dtype=np.float64),
            season_amplitude=frame["season_amplitude"].to_numpy(),
            season_peak_doy=frame["season_peak_doy"].to_numpy(),
            promo_uplift=frame["promo_uplift"].to_numpy(),
            elasticity_mean=frame["elasticity_mean"].to_numpy(),
        )

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


class Market:
    """Shopper demand for a store's SKUs, known exactly (the simulator's ground truth)."""

    def __init__(self, truth: DemandTruth, categories: CategoryTruth) -> None:
        self.truth = truth
        self.categories = categories
        self._sku_index = pd.Index(truth.sku)
        cat_index = pd.Index(categories.category).get_indexer(truth.category)
        if (cat_index < 0).any():
            missing = sorted(set(truth.category[cat_index < 0].tolist()))
            raise ValueError(f"categories without a category truth: {missing}")
        self._cat = cat_index

    @classmethod
    def draw(
        cls,
        skus: Sequence[str] | np.ndarray,
        categories: Sequence[str] | np.ndarray,
        ref_price_cents: Sequence[int] | np.ndarray,
        rng: np.random.Generator,
    ) -> Market:
        """Draw a market truth: elasticities and base volumes around each category's profile."""
        cat_arr = np.asarray(categories, dtype=object)
        names = sorted(set(cat_arr.tolist()))
        cats = CategoryTruth.draw(names, rng)
        idx = pd.Index(cats.category).get_indexer(cat_arr)
        n = len(cat_arr)
        spread = rng.normal(0, SKU_ELASTICITY_SPREAD, n)
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
        return cls(truth, cats)

    def __len__(self) -> int:
        return len(self.truth)

    def positions(self, skus: Sequence[str] | np.ndarray) -> np.ndarray:
        """Row of each SKU in the truth; KeyError for SKUs the market does not know."""
        pos = self._sku_index.get_indexer(np.asarray(skus, dtype=object))
        if (pos < 0).any():
            unknown = np.asarray(skus, dtype=object)[pos < 0][:5].tolist()
            raise KeyError(f"unknown sku(s): {unknown}")
        return pos

    def expected_units(
        self,
        skus: Sequence[str] | np.ndarray,
        prices_cents: Any,
        dates: Any = None,
        promo: Any = None,
    ) -> np.ndarray:
        """Expected units per day; the result has the shape of ``prices_cents``.

        ``prices_cents`` is (n_skus,) or (n_skus, k): k candidate prices per SKU, or, with
        ``dates`` of shape (k,), one price per SKU and date. ``dates=None`` gives the average
        day (no weekday or season effect); otherwise ``dates`` broadcasts against the prices
        (a single date, one per SKU, or one per column). ``promo`` broadcasts likewise.
        """
        pos = self.positions(skus)
        prices = np.asarray(prices_cents, dtype=np.float64)
        if prices.ndim == 0 or prices.shape[0] != len(pos):
            raise ValueError(f"prices_cents must have shape (n_skus, ...) with n_skus={len(pos)}, got {prices.shape}")
        if not np.all(prices > 0):
            raise ValueError("prices_cents must be positive")
        col = (slice(None),) + (None,) * (prices.ndim - 1)
        t = self.truth
        units = t.base_units[pos][col] * (prices / t.ref_price_cents[pos][col]) ** t.elasticity[pos][col]
        cat = self._cat[pos][col]
        if dates is not None:
            weekday, doy = weekday_and_doy(dates)
            if np.broadcast_shapes(weekday.shape, prices.shape) != prices.shape:
                raise ValueError(f"dates of shape {weekday.shape} do not broadcast to prices {prices.shape}")
            c = self.categories
            season = 1.0 + c.season_amplitude[cat] * np.cos(2 * np.pi * (doy - c.season_peak_doy[cat]) / YEAR_DAYS)
            units = units * c.dow[cat, weekday] * season
        if promo is not None:
            flag = np.asarray(promo, dtype=bool)
            if np.broadcast_shapes(flag.shape, prices.shape) != prices.shape:
                raise ValueError(f"promo of shape {flag.shape} does not broadcast to prices {prices.shape}")
            units = units * np.where(flag, self.categories.promo_uplift[cat], 1.0)
        return units

    def sample_units(
        self,
        skus: Sequence[str] | np.ndarray,
        prices_cents: Any,
        dates: Any = None,
        promo: Any = None,
        *,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Units sold: Poisson draws around ``expected_units`` (int64, same shape)."""
        return rng.poisson(self.expected_units(skus, prices_cents, dates, promo))

    def optimal_price_cents(self, skus: Sequence[str] | np.ndarray, cost_cents: Any) -> np.ndarray:
        """The unconstrained profit-optimal price, cost * e / (e + 1), as float cents."""
        e = self.truth.elasticity[self.positions(skus)]
        return np.asarray(cost_cents, dtype=np.float64) * e / (e + 1.0)

    def save(self, path: Path | str) -> tuple[Path, Path]:
        """Write truth.csv and truth_categories.csv (into a directory, or next to a .csv path)."""
        truth_path, cat_path = _paths(Path(path))
        truth_path.parent.mkdir(parents=True, exist_ok=True)
        self.truth.frame().to_csv(truth_path, index=False, lineterminator="\n")
        self.categories.frame().to_csv(cat_path, index=False, lineterminator="\n")
        return truth_path, cat_path

    @classmethod
    def load(cls, path: Path | str) -> Market:
        """Read what ``save`` wrote; SKUs stay strings."""
        truth_path, cat_path = _paths(Path(path))
        text = {"sku": str, "category": str}
        truth = pd.read_csv(truth_path, dtype=text, keep_default_na=False)
        cats = pd.read_csv(cat_path, dtype={"category": str}, keep_default_na=False)
        return cls(DemandTruth.from_frame(truth), CategoryTruth.from_frame(cats))


def _paths(path: Path) -> tuple[Path, Path]:
    if path.suffix == ".csv":
        return path, path.with_name(path.stem + "_categories.csv")
    return path / TRUTH_FILE, path / CATEGORIES_FILE


def days_between(start: date, end: date) -> np.ndarray:
    """Every date from start to end inclusive, as datetime64[D]."""
    return np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
