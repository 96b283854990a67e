"""Own-price demand model: log-log, one elasticity per SKU, pooled within its category.

Expected units of SKU ``s`` (category ``c``) on one day::

    E[units] = level_s * (price / ref_price_s) ** b_s * weekday_c[day] * (promo_uplift_c if promo)

- ``b_s`` is the SKU's own-price elasticity. It is estimated per SKU by Poisson maximum likelihood
  on the SKU's regular (non-promo) days against centred log price, which handles zero-sale days
  and small counts without the downward bias of OLS on ``log(units + 0.5)``. Its standard error
  allows for over-dispersion (Pearson chi-square per category).
- Pooling: the category elasticity is the precision-weighted mean of its SKUs' estimates; each
  SKU estimate is shrunk toward it with weight ``precision / (precision + pooling_strength)``
  where ``precision = 1 / se**2`` grows with n * var(log price) * units (so sparse SKUs and SKUs
  whose price never moved borrow their category's elasticity). ``pooling_strength`` is the
  precision of the prior: 20 means SKUs of a category typically differ by about 1/sqrt(20) = 0.22.
- The result is clipped into ``[min_elasticity, max_elasticity]`` with ``max_elasticity <= 0``,
  so predicted demand never rises with the SKU's own price.
- ``level_s`` is calibrated so the mean prediction over the SKU's regular-day history equals its
  mean observed units (this is also the Poisson MLE of the intercept), so there is no
  log-retransformation bias. Weekday factors average 1 over the week, so ``level_s`` is the
  expected units on an average regular day at the reference price.

Everything is vectorised over rows with ``np.bincount`` (a groupby-sum on integer codes): no
Python loop per SKU. Row-level arrays are float32; per-SKU sums are float64.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted

FIT_COLUMNS = ("sku", "category", "price_cents")
PREDICT_COLUMNS = ("sku", "price_cents")
OPTIONAL_COLUMNS = ("promo", "date")

_ROW = np.float32  # row-level arrays: log prices are ~5-10, centred ones ~±1: float32 is plenty
_NEWTON_MAX_ITER = 50
_NEWTON_TOL = 1e-5  # elasticity units; statistical errors are ~100x larger
_NEWTON_MAX_STEP = 2.0
_RAW_BOUNDS = (-20.0, 10.0)  # finite even when the likelihood has no maximum (sold only at the lowest price)
_PRIOR_UNITS = 20.0  # pseudo-units that pull weekday and promo factors toward 1
_EXAMPLES = 3


@dataclass
class _Rows:
    """Row-level arrays for fitting, already validated."""

    sku: np.ndarray  # positions in skus_
    log_price: np.ndarray
    promo: np.ndarray  # bool
    weekday: np.ndarray | None  # 0 = Monday; None when there is no date column


class DemandModel(RegressorMixin, BaseEstimator):
    """Log-log own-price demand per SKU with category pooling (see module docstring).

    Parameters
    ----------
    pooling_strength : prior precision of SKU elasticities around their category's;
        larger pulls SKUs harder toward the category. 0 disables pooling.
    max_elasticity : least negative elasticity allowed (must be <= 0).
    min_elasticity : most negative elasticity allowed.
    default_elasticity : used only for a category when no SKU in the whole data set has an
        identifiable elasticity (no price ever varied).
    """

    def __init__(
        self,
        pooling_strength: float = 20.0,
        max_elasticity: float = -0.2,
        min_elasticity: float = -6.0,
        default_elasticity: float = -1.5,
    ) -> None:
        self.pooling_strength = pooling_strength
        self.max_elasticity = max_elasticity
        self.min_elasticity = min_elasticity
        self.default_elasticity = default_elasticity

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.target_tags.positive_only = True
        return tags

    # ------------------------------------------------------------------ fit

    def fit(self, X: pd.DataFrame, y: Sequence[float] | np.ndarray | pd.Series) -> DemandModel:
        """Learn elasticities, levels, weekday and promo factors from daily sales rows."""
        self._check_params()
        _require_columns(X, FIT_COLUMNS)
        units = _check_target(X, y)
        sku_codes, skus = _factorize_skus(X["sku"])
        cat_codes, categories = _sorted_codes(X["category"], "category")
        sku_cat = _category_per_sku(sku_codes, cat_codes, len(skus), X["sku"])
        rows = _Rows(sku_codes, _log_price(X["price_cents"]), _promo(X), _weekday(X))
        del cat_codes

        n_skus, n_cats = len(skus), len(categories)
        regular = ~rows.promo
        ref = _reference_log_price(rows, regular, n_skus)
        weekday_factor = _weekday_factors(rows, regular, units, sku_cat, n_cats)
        offset = _row_offset(rows, sku_cat, weekday_factor)  # log weekday factor per row

        reg = _RegularRows.build(rows, regular, units, ref, offset)
        raw, raw_se = reg.poisson_elasticity(sku_cat, n_skus, n_cats)
        pooled = _pool(raw, raw_se, sku_cat, n_cats, self._pooling())
        elasticity = np.clip(pooled.elasticity, self.min_elasticity, self.max_elasticity)
        level = reg.level(elasticity, n_skus)
        uplift = _promo_uplift(rows, units, sku_cat, n_cats, ref, elasticity, level, offset)
        _level_from_promo_days(level, rows, units, sku_cat, ref, elasticity, offset, uplift, reg.count)

        self.skus_ = skus
        self.categories_ = categories
        self.category_of_ = pd.Series(categories[sku_cat], index=skus, name="category")
        self.elasticity_ = elasticity
        self.elasticity_se_ = pooled.se
        self.raw_elasticity_ = np.where(np.isfinite(raw_se), raw, np.nan)  # NaN: not identified
        self.raw_elasticity_se_ = raw_se
        self.pooled_weight_ = pooled.weight
        self.category_elasticity_ = pd.Series(
            np.clip(pooled.category, self.min_elasticity, self.max_elasticity),
            index=self.categories_,
            name="elasticity",
        )
        self.level_ = level
        self.ref_log_price_ = ref
        self.weekday_factor_ = weekday_factor  # (n_categories, 7), Monday first, mean 1
        self.promo_uplift_ = uplift  # (n_categories,)
        self.sku_category_code_ = sku_cat  # position in categories_ per SKU
        used = [c for c in (*FIT_COLUMNS, *OPTIONAL_COLUMNS) if c in X.columns]
        self.feature_names_in_ = np.asarray(used, dtype=object)
        self.n_features_in_ = len(used)
        return self

    def _check_params(self) -> None:
        if not self.max_elasticity <= 0:
            raise ValueError(
                f"max_elasticity must be <= 0 (demand must not rise with price), got {self.max_elasticity}"
            )
        if not self.min_elasticity <= self.max_elasticity:
            raise ValueError(
                f"min_elasticity ({self.min_elasticity}) must be <= max_elasticity ({self.max_elasticity})"
            )
        if not self.pooling_strength >= 0:
            raise ValueError(f"pooling_strength must be >= 0, got {self.pooling_strength}")
        if not np.isfinite(self.default_elasticity):
            raise ValueError(f"default_elasticity must be finite, got {self.default_elasticity}")

    def _pooling(self) -> _Pooling:
        default = float(np.clip(self.default_elasticity, self.min_elasticity, self.max_elasticity))
        return _Pooling(float(self.pooling_strength), default, self.min_elasticity, self.max_elasticity)

    # -------------------------------------------------------------- predict

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected units per row; uses sku and price_cents, and promo and date when present."""
        check_is_fitted(self)
        _require_columns(X, PREDICT_COLUMNS)
        idx = self.sku_positions(X["sku"])
        log_price = _log_price(X["price_cents"])
        cat = self.sku_category_code_[idx]
        out = self.level_[idx] * np.exp(self.elasticity_[idx] * (log_price - self.ref_log_price_[idx]))
        promo = _promo(X)
        if promo.any():
            out *= np.where(promo, self.promo_uplift_[cat], 1.0)
        weekday = _weekday(X)
        if weekday is not None:
            out *= self.weekday_factor_[cat, weekday]
        return out

    def predict_grid(self, skus: Sequence[str], prices_cents: np.ndarray) -> np.ndarray:
        """Expected units on an average regular day for every SKU x candidate price.

        ``prices_cents`` has shape (len(skus), n_candidates) (or (n_candidates,) for the same
        candidates for every SKU); the result has the same shape as the broadcast grid.
        """
        check_is_fitted(self)
        idx = self.sku_positions(skus)
        prices = np.asarray(prices_cents, dtype=np.float64)
        if prices.ndim == 1:
            prices = np.broadcast_to(prices, (len(idx), prices.shape[0]))
        if prices.ndim != 2 or prices.shape[0] != len(idx):
            raise ValueError(
                f"prices_cents must have shape (n_skus={len(idx)}, n_candidates), got {np.shape(prices_cents)}"
            )
        if not (np.isfinite(prices).all() and (prices > 0).all()):
            raise ValueError("prices_cents must be positive and finite")
        b = self.elasticity_[idx, None]
        return self.level_[idx, None] * np.exp(b * (np.log(prices) - self.ref_log_price_[idx, None]))

    def sku_positions(self, skus: Sequence[str] | pd.Series | pd.Index) -> np.ndarray:
        """Positions of ``skus`` in ``skus_``; ValueError naming the unknown ones."""
        check_is_fitted(self)
        if isinstance(getattr(skus, "dtype", None), pd.CategoricalDtype):
            categorical = pd.Categorical(skus)  # look up each distinct SKU once, then by code
            idx = self.skus_.get_indexer(categorical.categories.astype(str))[categorical.codes]
            idx[categorical.codes < 0] = -1
        else:
            idx = self.skus_.get_indexer(pd.Index(skus))
        if (idx < 0).any():
            unknown = pd.unique(np.asarray(skus, dtype=object)[idx < 0])
            examples = ", ".join(repr(str(s)) for s in unknown[:_EXAMPLES])
            raise ValueError(f"model was trained on other SKUs: {len(unknown)} unknown, e.g. {examples}")
        return idx

    def unknown_skus(self, skus: Sequence[str] | pd.Series | pd.Index) -> list[str]:
        """The distinct SKUs in ``skus`` that the model has not seen, in first-seen order."""
        check_is_fitted(self)
        index = pd.Index(skus)
        return [str(s) for s in pd.unique(index[self.skus_.get_indexer(index) < 0])]

    def elasticities(self) -> pd.DataFrame:
        """One row per SKU: sku, category, elasticity, se, pooled_weight, raw_elasticity, raw_se.

        ``se`` is the standard error after pooling; ``pooled_weight`` the weight of the SKU's own
        estimate (0 = all category, 1 = all own data); ``raw_*`` the SKU-only Poisson estimate
        (NaN / inf when the SKU's own data cannot identify it: no sales or no price variation).
        """
        check_is_fitted(self)
        return pd.DataFrame(
            {
                "sku": self.skus_,
                "category": self.category_of_.to_numpy(),
                "elasticity": self.elasticity_,
                "se": self.elasticity_se_,
                "pooled_weight": self.pooled_weight_,
                "raw_elasticity": self.raw_elasticity_,
                "raw_se": self.raw_elasticity_se_,
            }
        )


# ------------------------------------------------------------- input checks


def _require_columns(X: pd.DataFrame, columns: Sequence[str]) -> None:
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"X must be a pandas DataFrame with columns {', '.join(columns)}; got {type(X).__name__}")
    for col in columns:
        if col not in X.columns:
            raise ValueError(f"X is missing column '{col}'")


def _check_target(X: pd.DataFrame, y: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    units = np.asarray(y, dtype=np.float64)
    if units.ndim != 1 or len(units) != len(X):
        raise ValueError(f"y must be 1-D with one value per row of X ({len(X)}), got shape {units.shape}")
    if len(units) == 0:
        raise ValueError("cannot fit a demand model on no rows")
    if not np.isfinite(units).all() or (units < 0).any():
        raise ValueError("y (units sold) must be finite and >= 0")
    return units


def _factorize_skus(sku: pd.Series) -> tuple[np.ndarray, pd.Index]:
    dtype = sku.dtype.categories.dtype if isinstance(sku.dtype, pd.CategoricalDtype) else sku.dtype
    if pd.api.types.is_numeric_dtype(dtype):
        raise ValueError(f"sku must hold strings, got {dtype}: '0123' must not become 123")
    return _sorted_codes(sku, "sku")


def _sorted_codes(values: pd.Series, name: str) -> tuple[np.ndarray, pd.Index]:
    """Integer codes into the sorted distinct values (as str). Categoricals use their codes."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = values.cat.codes.to_numpy()
        if (codes < 0).any():
            raise ValueError(f"{name} has missing values")
        names = np.asarray(values.cat.categories.astype(str), dtype=object)
        used = np.flatnonzero(np.bincount(codes, minlength=len(names)))
        order = np.argsort(names[used], kind="stable")
        remap = np.full(len(names), -1, dtype=np.intp)
        remap[used[order]] = np.arange(len(used))
        return remap[codes], pd.Index(names[used[order]].astype(str), name=name)
    codes, uniques = pd.factorize(values, sort=True)
    if (codes < 0).any():
        raise ValueError(f"{name} has missing values")
    return codes, pd.Index(np.asarray(uniques).astype(str), name=name)


def _category_per_sku(sku_codes: np.ndarray, cat_codes: np.ndarray, n_skus: int, sku: pd.Series) -> np.ndarray:
    if (cat_codes < 0).any():
        raise ValueError("category has missing values")
    per_sku = np.zeros(n_skus, dtype=np.intp)
    per_sku[sku_codes] = cat_codes
    clash = per_sku[sku_codes] != cat_codes
    if clash.any():
        example = sku.iloc[int(np.flatnonzero(clash)[0])]
        raise ValueError(f"a SKU must belong to one category; '{example}' has several")
    return per_sku


def _log_price(price: pd.Series) -> np.ndarray:
    try:
        values = np.asarray(price, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("price_cents must be numeric without missing values") from None
    if not (np.isfinite(values).all() and (values > 0).all()):
        raise ValueError("price_cents must be positive and not missing")
    return np.log(values)


def _promo(X: pd.DataFrame) -> np.ndarray:
    if "promo" not in X.columns:
        return np.zeros(len(X), dtype=bool)
    return X["promo"].fillna(False).to_numpy(dtype=bool)


def _weekday(X: pd.DataFrame) -> np.ndarray | None:
    if "date" not in X.columns:
        return None
    date = X["date"]
    if not pd.api.types.is_datetime64_any_dtype(date.dtype):
        try:
            date = pd.to_datetime(date)
        except (TypeError, ValueError):
            raise ValueError("date must be datetime64 (or parseable dates)") from None
    if date.isna().any():
        raise ValueError("date has missing values")
    return date.dt.day_of_week.to_numpy(dtype=np.int8)


# --------------------------------------------------------------- estimation


def _sum_by(codes: np.ndarray, weights: np.ndarray | None, n: int) -> np.ndarray:
    """Group sum on integer codes (float64), the vectorised groupby of this module."""
    return np.bincount(codes, weights=weights, minlength=n).astype(np.float64, copy=False)


def _reference_log_price(rows: _Rows, regular: np.ndarray, n_skus: int) -> np.ndarray:
    """Mean log price per SKU over regular days (over all days when it never had one)."""
    n_reg = _sum_by(rows.sku[regular], None, n_skus)
    s_reg = _sum_by(rows.sku[regular], rows.log_price[regular], n_skus)
    n_all = _sum_by(rows.sku, None, n_skus)
    s_all = _sum_by(rows.sku, rows.log_price, n_skus)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n_reg > 0, s_reg / n_reg, s_all / n_all)


def _weekday_factors(
    rows: _Rows, regular: np.ndarray, units: np.ndarray, sku_cat: np.ndarray, n_cats: int
) -> np.ndarray:
    """Per category and weekday: units relative to each SKU's regular-day mean, mean 1 per week."""
    factors = np.ones((n_cats, 7))
    if rows.weekday is None:
        return factors
    sku, y = rows.sku[regular], units[regular]
    n_skus = len(sku_cat)
    with np.errstate(invalid="ignore", divide="ignore"):
        sku_mean = np.nan_to_num(_sum_by(sku, y, n_skus) / _sum_by(sku, None, n_skus))
    key = sku_cat[sku] * 7 + rows.weekday[regular]
    observed = _sum_by(key, y, n_cats * 7).reshape(n_cats, 7)
    expected = _sum_by(key, sku_mean[sku], n_cats * 7).reshape(n_cats, 7)
    factors = (observed + _PRIOR_UNITS) / (expected + _PRIOR_UNITS)
    return factors / factors.mean(axis=1, keepdims=True)


def _row_offset(rows: _Rows, sku_cat: np.ndarray, weekday_factor: np.ndarray) -> np.ndarray:
    if rows.weekday is None:
        return np.zeros(len(rows.sku), dtype=_ROW)
    return np.log(weekday_factor.astype(_ROW))[sku_cat[rows.sku], rows.weekday]


@dataclass
class _RegularRows:
    """The regular (non-promo) rows with centred log price: what elasticities are fitted on."""

    sku: np.ndarray
    xc: np.ndarray  # centred log price, float32
    offset: np.ndarray  # log weekday factor, float32
    units: np.ndarray
    count: np.ndarray  # regular rows per SKU

    @classmethod
    def build(
        cls, rows: _Rows, regular: np.ndarray, units: np.ndarray, ref: np.ndarray, offset: np.ndarray
    ) -> _RegularRows:
        sku = rows.sku[regular]
        xc = (rows.log_price[regular] - ref[sku]).astype(_ROW)
        return cls(sku, xc, offset[regular], units[regular], _sum_by(sku, None, len(ref)))

    def _weights(self, b: np.ndarray) -> np.ndarray:
        return np.exp(b.astype(_ROW)[self.sku] * self.xc + self.offset)

    def poisson_elasticity(self, sku_cat: np.ndarray, n_skus: int, n_cats: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-SKU Poisson MLE of the elasticity (intercept profiled out) and its standard error.

        Newton on the profile log-likelihood, which is concave in b: score = Sxy - Sy*E_w[xc],
        information = Sy*Var_w[xc] with weights w = exp(b*xc + offset). All SKUs step together.
        """
        sy = _sum_by(self.sku, self.units, n_skus)
        sxy = _sum_by(self.sku, self.units * self.xc, n_skus)
        b = np.zeros(n_skus)
        info = np.zeros(n_skus)
        for _ in range(_NEWTON_MAX_ITER):
            mean, var = self._weighted_moments(b, n_skus)
            info = sy * var
            ok = info > 1e-9 * np.maximum(sy, 1.0)
            step = np.where(ok, (sxy - sy * mean) / np.where(ok, info, 1.0), 0.0)
            step = np.clip(step, -_NEWTON_MAX_STEP, _NEWTON_MAX_STEP)
            b = np.clip(b + step, *_RAW_BOUNDS)
            if np.abs(step).max(initial=0.0) < _NEWTON_TOL:
                break
        mean, var = self._weighted_moments(b, n_skus)
        info = sy * var
        dispersion = self._dispersion(b, sy, sku_cat, n_cats)
        with np.errstate(divide="ignore"):
            se = np.where(info > 1e-9 * np.maximum(sy, 1.0), np.sqrt(dispersion[sku_cat] / info), np.inf)
        return b, se

    def _weighted_moments(self, b: np.ndarray, n_skus: int) -> tuple[np.ndarray, np.ndarray]:
        w = self._weights(b)
        s0 = _sum_by(self.sku, w, n_skus)
        wx = w * self.xc
        s1 = _sum_by(self.sku, wx, n_skus)
        s2 = _sum_by(self.sku, wx * self.xc, n_skus)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(s0 > 0, s1 / s0, 0.0)
            var = np.where(s0 > 0, np.maximum(s2 / s0 - mean**2, 0.0), 0.0)
        return mean, var

    def _dispersion(self, b: np.ndarray, sy: np.ndarray, sku_cat: np.ndarray, n_cats: int) -> np.ndarray:
        """Pearson chi-square / dof per category, at least 1 (Poisson)."""
        w = self._weights(b)
        s0 = _sum_by(self.sku, w, len(b))
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(s0 > 0, sy / s0, 0.0)
        mu = scale[self.sku] * w
        live = mu > 0
        pearson = np.zeros_like(mu)
        pearson[live] = (self.units[live] - mu[live]) ** 2 / mu[live]
        cat = sku_cat[self.sku]
        chi2 = _sum_by(cat, pearson, n_cats)
        n_rows = _sum_by(cat[live], None, n_cats)
        fitted_skus = _sum_by(sku_cat, (sy > 0).astype(np.float64), n_cats)
        dof = n_rows - 2 * fitted_skus
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(dof > 0, np.maximum(chi2 / dof, 1.0), 1.0)

    def level(self, elasticity: np.ndarray, n_skus: int) -> np.ndarray:
        """Units on an average regular day at the reference price: mean prediction = mean units."""
        sy = _sum_by(self.sku, self.units, n_skus)
        s0 = _sum_by(self.sku, self._weights(elasticity), n_skus)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(s0 > 0, sy / s0, 0.0)


@dataclass
class _Pooling:
    strength: float
    default: float
    low: float
    high: float


@dataclass
class _Pooled:
    elasticity: np.ndarray
    se: np.ndarray
    weight: np.ndarray
    category: np.ndarray


def _pool(raw: np.ndarray, raw_se: np.ndarray, sku_cat: np.ndarray, n_cats: int, pooling: _Pooling) -> _Pooled:
    """Shrink SKU elasticities toward their category's precision-weighted mean.

    The SKU estimate is first clipped into the allowed range: with a concave likelihood that is
    the constrained maximum, and it keeps a SKU whose sales rose with price from dragging its
    category's mean.
    """
    raw = np.clip(raw, pooling.low, pooling.high)  # unidentified SKUs get weight 0 below
    with np.errstate(divide="ignore"):
        precision = np.where(np.isfinite(raw_se), 1.0 / raw_se**2, 0.0)
    strength = pooling.strength
    if strength > 0:
        # Random-effects weights 1/(se² + 1/strength): a few very precise SKUs cannot dominate.
        mean_weight = precision * strength / (precision + strength)
        weight = precision / (precision + strength)
        se = 1.0 / np.sqrt(precision + strength)
    else:
        mean_weight = precision
        weight = (precision > 0).astype(np.float64)
        with np.errstate(divide="ignore"):
            se = np.where(precision > 0, 1.0 / np.sqrt(precision), np.inf)
    total = _sum_by(sku_cat, mean_weight, n_cats)
    weighted = _sum_by(sku_cat, mean_weight * raw, n_cats)
    overall = weighted.sum() / total.sum() if total.sum() > 0 else pooling.default
    with np.errstate(invalid="ignore", divide="ignore"):
        category = np.where(total > 0, weighted / total, overall)
    elasticity = weight * raw + (1.0 - weight) * category[sku_cat]
    return _Pooled(elasticity, se, weight, category)


def _row_prediction(
    rows: _Rows, mask: np.ndarray, ref: np.ndarray, elasticity: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """exp(b*(log p - ref) + weekday offset) on the masked rows, without the level."""
    sku = rows.sku[mask]
    xc = (rows.log_price[mask] - ref[sku]).astype(_ROW)
    return np.exp(elasticity.astype(_ROW)[sku] * xc + offset[mask])


def _promo_uplift(
    rows: _Rows,
    units: np.ndarray,
    sku_cat: np.ndarray,
    n_cats: int,
    ref: np.ndarray,
    elasticity: np.ndarray,
    level: np.ndarray,
    offset: np.ndarray,
) -> np.ndarray:
    """Per category: promo-day units over what the promo price alone would predict."""
    has_level = level > 0
    mask = rows.promo & has_level[rows.sku]
    if not mask.any():
        return np.ones(n_cats)
    sku = rows.sku[mask]
    predicted = level[sku] * _row_prediction(rows, mask, ref, elasticity, offset)
    cat = sku_cat[sku]
    observed = _sum_by(cat, units[mask], n_cats)
    expected = _sum_by(cat, predicted, n_cats)
    return (observed + _PRIOR_UNITS) / (expected + _PRIOR_UNITS)


def _level_from_promo_days(
    level: np.ndarray,
    rows: _Rows,
    units: np.ndarray,
    sku_cat: np.ndarray,
    ref: np.ndarray,
    elasticity: np.ndarray,
    offset: np.ndarray,
    uplift: np.ndarray,
    regular_count: np.ndarray,
) -> None:
    """SKUs that were only ever sold on promotion: calibrate the level on those days (in place)."""
    only_promo = regular_count == 0
    mask = only_promo[rows.sku]
    if not mask.any():
        return
    sku = rows.sku[mask]
    shape = _row_prediction(rows, mask, ref, elasticity, offset) * uplift[sku_cat[sku]]
    n = len(level)
    sy = _sum_by(sku, units[mask], n)
    s0 = _sum_by(sku, shape, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        level[only_promo] = np.where(s0 > 0, sy / s0, 0.0)[only_promo]
