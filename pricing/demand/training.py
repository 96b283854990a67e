"""Train the demand model on sales history, with holdout metrics against a seasonal-naive baseline.

The last ``holdout_days`` of history are held out: the model is fitted on the rest and predicts
the holdout from its actual prices, promotions and dates. The baseline is what a store would
guess without a model: for each store, SKU and weekday, the mean units of the last 4 same
weekdays before the holdout (falling back to the store-SKU mean of those 4 weeks, then 0). The
returned model is then refitted on all the data.

Rows are per store and day; the model pools stores, so it predicts units per store-day. Before
anything else the listed days without a row are filled with zero-sales rows
(``pricing.core.listing.complete_days``: assortment.csv's periods when given as ``listing``, else
each SKU from its first to its last sale in a store; at the higher price of the rows around the
gap), so the model
and the holdout see the days nothing sold, not only the days something did.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd
from sklearn.base import clone

from pricing.core.listing import ListingReport, complete_days
from pricing.demand.model import DemandModel

SALES_REQUIRED = ("date", "sku", "units", "price_cents", "promo")
PRODUCTS_REQUIRED = ("sku", "category")
BASELINE_WEEKS = 4

Progress = Callable[[str], None]


@dataclass
class TrainingResult:
    """A demand model fitted on all the data, with what it was trained on and how well it did."""

    model: DemandModel
    metrics: dict[str, float]
    data_start: date
    data_end: date
    n_rows: int
    n_skus: int
    features: list[str]
    seconds: float
    holdout_start: date | None = None
    dropped_rows: int = 0  # sales rows whose SKU is not in products
    notes: list[str] = field(default_factory=list)
    #: What the loader read, per file name: rows_read, rejected, duplicates (exact duplicate rows
    #: dropped). Set by the caller that loaded the files (esl-pricing train); empty otherwise.
    data_counts: dict[str, dict[str, int]] = field(default_factory=dict)
    #: Zero-sales rows added before training (listed days without a row); included in n_rows.
    zero_days_filled: int = 0
    #: complete_days' report: zero_days_filled, skus_listed_by_file, skus_listed_by_rule,
    #: rows_outside_listing, listed_without_sales (pairs are store-SKU pairs).
    listing: dict[str, int] = field(default_factory=dict)


def train_demand_model(
    sales: pd.DataFrame,
    products: pd.DataFrame,
    *,
    listing: pd.DataFrame | None = None,
    holdout_days: int = 28,
    progress: Progress | None = None,
    model: DemandModel | None = None,
) -> TrainingResult:
    """Fit ``model`` (default ``DemandModel()``) on ``sales`` with categories from ``products``.

    ``listing``: assortment.csv's frame (``StoreData.listing``), or None: each SKU is listed in a
    store from its first to its last sale. The listed days without a row are added as zero-sales
    rows first (``complete_days``). ``holdout_days=0`` skips the holdout evaluation (metrics are
    then empty).
    """
    started = time.perf_counter()
    say = progress or (lambda _message: None)
    template = model if model is not None else DemandModel()
    if holdout_days < 0:
        raise ValueError(f"holdout_days must be >= 0, got {holdout_days}")

    X, units, dropped, report = _training_frame(sales, products, listing)
    notes = [f"{dropped} sales rows dropped: SKU not in products"] if dropped else []
    notes.append(_filled_note(report, listing is not None))
    for note in notes:
        say(note)
    dates = X["date"]
    first, last = dates.min(), dates.max()

    metrics: dict[str, float] = {}
    holdout_start: date | None = None
    if holdout_days > 0:
        cutoff = last.normalize() - pd.Timedelta(days=holdout_days - 1)
        holdout_start = cutoff.date()
        metrics = _holdout_metrics(template, X, units, cutoff, holdout_days, say)

    say(f"fitting on all {len(X):,} rows ({first.date()} to {last.date()})")
    final = clone(template).fit(X, units)
    seconds = time.perf_counter() - started
    say(f"done in {seconds:.1f} s")
    return TrainingResult(
        model=final,
        metrics=metrics,
        data_start=first.date(),
        data_end=last.date(),
        n_rows=len(X),
        n_skus=len(final.skus_),
        features=[str(f) for f in final.feature_names_in_],
        seconds=seconds,
        holdout_start=holdout_start,
        dropped_rows=dropped,
        notes=notes,
        zero_days_filled=report.zero_days_filled,
        listing=report.as_dict(),
    )


def _filled_note(report: ListingReport, by_file: bool) -> str:
    rule = "assortment.csv, else first to last sale" if by_file else "each SKU from its first to its last sale"
    note = f"{report.zero_days_filled:,} zero-sales days filled (listed: {rule}; at the higher price of the sales around each gap)"
    if report.rows_outside_listing:
        note += f"; {report.rows_outside_listing:,} rows outside their assortment period (kept)"
    return note


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} is missing column(s): {', '.join(missing)}")


def _training_frame(
    sales: pd.DataFrame, products: pd.DataFrame, listing: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, np.ndarray, int, ListingReport]:
    """Model input (sku, category, price_cents, promo, date; store if any), units, rows dropped,
    and what completing the listed days did.

    Rows whose SKU is not in products are dropped first (and not completed), then the listed days
    without a row are filled (``complete_days``). sku, category and store become categoricals
    built from the products lookup, so the frame is compact (integer codes, not millions of
    strings) and cheap to split and refit.
    """
    _require(sales, SALES_REQUIRED, "sales")
    _require(products, PRODUCTS_REQUIRED, "products")
    if len(sales) == 0:
        raise ValueError("sales is empty: nothing to train on")
    catalog = pd.Index(products["sku"].astype(str))
    if catalog.has_duplicates:
        raise ValueError(f"products has duplicate sku '{catalog[catalog.duplicated()][0]}'")
    position = _positions(catalog, sales["sku"])
    known = position >= 0
    if not known.any():
        raise ValueError("no sales row has a SKU that is in products")
    if not known.all():
        sales = sales[known]
        position = position[known]
    completed, report = complete_days(sales, listing)
    if completed is not sales:  # zero-sales rows added: positions of the completed frame
        sales, position = completed, _positions(catalog, completed["sku"])
    cat_codes, cat_names = pd.factorize(products["category"])
    columns: dict[str, object] = {
        "sku": pd.Categorical.from_codes(position, categories=catalog),
        "category": pd.Categorical.from_codes(cat_codes[position], categories=cat_names),
        "price_cents": _compact_int(sales["price_cents"].to_numpy()),
        "promo": sales["promo"].to_numpy(),
        "date": pd.to_datetime(sales["date"]).to_numpy(),
    }
    if "brand" in products.columns:
        brand_codes, brand_names = pd.factorize(products["brand"])
        columns["brand"] = pd.Categorical.from_codes(brand_codes[position], categories=brand_names)
    if "stock" in sales.columns:
        columns["stock"] = sales["stock"].to_numpy(dtype=np.float32, na_value=np.nan)
    if "store" in sales.columns:
        columns["store"] = pd.Categorical(sales["store"].array)
    units = sales["units"].to_numpy(dtype=np.float64)
    return pd.DataFrame(columns, copy=False), units, int((~known).sum()), report


def _compact_int(values: np.ndarray) -> np.ndarray:
    """int32 when every value fits (prices in cents do), halving the frame's biggest column."""
    info = np.iinfo(np.int32)
    if len(values) and info.min <= values.min() and values.max() <= info.max:
        return values.astype(np.int32)
    return values


def _positions(catalog: pd.Index, skus: pd.Series) -> np.ndarray:
    """Position of each sales row's SKU in the catalog (-1: unknown); categoricals by code."""
    if isinstance(skus.dtype, pd.CategoricalDtype):
        by_code = np.append(catalog.get_indexer(skus.cat.categories.astype(str)), -1).astype(np.int32)
        return by_code[skus.cat.codes.to_numpy()]  # code -1 (missing) picks the appended -1
    return catalog.get_indexer(skus.astype(str))


def _holdout_metrics(
    template: DemandModel,
    X: pd.DataFrame,
    units: np.ndarray,
    cutoff: pd.Timestamp,
    holdout_days: int,
    say: Progress,
) -> dict[str, float]:
    """Fit before ``cutoff``, score model and seasonal-naive baseline on the days from it."""
    in_holdout = (X["date"] >= cutoff).to_numpy()
    if in_holdout.all():
        raise ValueError(f"holdout_days={holdout_days} leaves no history to train on")
    if X["date"].is_monotonic_increasing:  # files written day by day: slices share memory, no copy
        split = int(np.argmax(in_holdout))
        train_X, train_y = X.iloc[:split], units[:split]
    else:
        train_X, train_y = X[~in_holdout], units[~in_holdout]
    say(f"fitting on {len(train_X):,} rows before {cutoff.date()} for the holdout")
    model = clone(template).fit(train_X, train_y)

    test_X, test_y = X[in_holdout], units[in_holdout]
    seen = test_X["sku"].isin(model.skus_).to_numpy()
    test_X, test_y = test_X[seen], test_y[seen]
    predicted = model.predict(test_X)
    baseline = _seasonal_naive(train_X, train_y, test_X, cutoff)
    metrics = {
        "holdout_days": float(holdout_days),
        "holdout_rows": float(len(test_X)),
        "holdout_unseen_sku_rows": float((~seen).sum()),
        "wape": _wape(test_y, predicted),
        "bias": _bias(test_y, predicted),
        "baseline_wape": _wape(test_y, baseline),
        "baseline_bias": _bias(test_y, baseline),
    }
    say(f"holdout WAPE {metrics['wape']:.3f} (baseline {metrics['baseline_wape']:.3f}), bias {metrics['bias']:+.3f}")
    return metrics


def _seasonal_naive(
    train_X: pd.DataFrame,
    train_y: np.ndarray,
    test_X: pd.DataFrame,
    cutoff: pd.Timestamp,
) -> np.ndarray:
    """Mean units of the last 4 same weekdays before the cutoff, per store, SKU and weekday."""
    recent = (train_X["date"] >= cutoff - pd.Timedelta(weeks=BASELINE_WEEKS)).to_numpy()
    keys = ["store", "sku"] if "store" in train_X.columns else ["sku"]

    def keyed(frame: pd.DataFrame) -> pd.DataFrame:
        out = {k: frame[k].to_numpy() for k in keys}
        return pd.DataFrame({**out, "weekday": frame["date"].dt.day_of_week.to_numpy()})

    history = keyed(train_X[recent]).assign(units=train_y[recent])
    by_day = history.groupby([*keys, "weekday"], sort=False)["units"].mean().rename("by_day")
    by_sku = history.groupby(keys, sort=False)["units"].mean().rename("by_sku")
    target = keyed(test_X)
    target = target.join(by_day, on=[*keys, "weekday"]).join(by_sku, on=keys)
    return target["by_day"].fillna(target["by_sku"]).fillna(0.0).to_numpy(dtype=np.float64)


def _wape(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Weighted absolute percentage error: sum |y - ŷ| / sum y (NaN when nothing sold)."""
    total = float(np.sum(actual))
    return float(np.sum(np.abs(actual - predicted)) / total) if total > 0 else float("nan")


def _bias(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Relative bias: (sum ŷ - sum y) / sum y; positive means over-forecasting."""
    total = float(np.sum(actual))
    return float((np.sum(predicted) - total) / total) if total > 0 else float("nan")
