"""Data contracts: the one place that defines and validates products, sales and labels.

Each loader reads a CSV (or Parquet) file, checks every row, and returns the good rows as a
typed DataFrame together with the rejected ones (file, row number, reason). Rejected rows never
reach the demand model or the optimizer. Row numbers are the line numbers a person sees in the
file: the header is line 1, the first data row line 2.

SKUs are strings, always: "0123" stays "0123".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

PRODUCT_COLUMNS = ["sku", "name", "category", "brand", "size", "unit", "cost_cents", "price_cents"]
PRODUCT_OPTIONAL = ["family", "ladder", "tier"]
SALES_COLUMNS = ["date", "store", "sku", "units", "price_cents", "promo"]
SALES_OPTIONAL = ["stock"]
LABEL_COLUMNS = ["label_id", "store", "gateway", "sku", "tag_type"]
TAG_TYPES = ("1.54", "2.9", "4.2")
_MAX_WHOLE = 2**53  # largest magnitude a parsed number holds exactly

# File names inside a store data directory.
PRODUCTS_FILE = "products.csv"
SALES_FILE = "sales.csv"
LABELS_FILE = "labels.csv"


class DataError(Exception):
    """A data file a user gave us cannot be used at all (missing, unreadable, missing columns)."""


@dataclass(frozen=True)
class Reject:
    file: str
    row: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.reason}"


@dataclass
class Loaded:
    """Good rows and the rejected ones, with reasons."""

    frame: pd.DataFrame
    rejects: list[Reject] = field(default_factory=list)


def _read_table(path: Path, required: list[str], optional: list[str]) -> pd.DataFrame:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        if path.suffix == ".parquet":
            raw = pd.read_parquet(path)
            raw = raw.astype({c: "string" for c in raw.columns})
        else:
            # Everything as text first: a sku "0123" must not become 123, and a bad number in
            # one row must be reported for that row, not fail the whole file.
            raw = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[])
    except Exception as exc:  # pandas raises many types for unreadable files
        raise DataError(f"{path}: cannot read: {exc}") from None
    missing = [c for c in required if c not in raw.columns]
    if missing:
        raise DataError(f"{path}: missing column(s): {', '.join(missing)}")
    keep = required + [c for c in optional if c in raw.columns]
    frame = raw[keep].copy()
    for col in keep:
        frame[col] = frame[col].astype("string").str.strip()
    frame.index = pd.RangeIndex(2, len(frame) + 2, name="row")
    return frame


class _RowChecker:
    """Collects per-row problems; a row with any problem is rejected with its first reason."""

    def __init__(self, frame: pd.DataFrame, file: str) -> None:
        self.frame = frame
        self.file = file
        self.reason = pd.Series(pd.NA, index=frame.index, dtype="string")

    def flag(self, mask: pd.Series | np.ndarray, reason: str | pd.Series) -> None:
        mask = pd.Series(np.asarray(mask, dtype=bool), index=self.frame.index)
        new = mask & self.reason.isna()
        if isinstance(reason, pd.Series):
            self.reason[new] = reason[new]
        else:
            self.reason[new] = reason

    def required_text(self, col: str) -> None:
        self.flag(self.frame[col].fillna("") == "", f"{col} is empty")

    def integer(self, col: str, *, minimum: int | None = None, optional: bool = False) -> pd.Series:
        text = self.frame[col].fillna("")
        empty = text == ""
        number = pd.to_numeric(text.where(~empty, None), errors="coerce")
        # Non-finite ("inf") or beyond exact float integers (2**53) would become garbage int64.
        huge = number.notna() & ~(number.abs() < _MAX_WHOLE).fillna(False)
        self.flag(huge, col + " is not a whole number in range: '" + text + "'")
        whole = number.notna() & ~huge & (number == np.floor(number.fillna(0)))
        bad = ~empty & ~whole
        self.flag(bad, col + " is not a whole number: '" + text + "'")
        if not optional:
            self.flag(empty, f"{col} is empty")
        if minimum is not None:
            self.flag(whole & (number < minimum), f"{col} must be >= {minimum}")
        return number.where(whole).astype("Int64")

    def rejects(self) -> list[Reject]:
        bad = self.reason.dropna()
        return [Reject(self.file, int(row), str(reason)) for row, reason in bad.items()]

    def good(self) -> pd.Series:
        return self.reason.isna()


def _finish(frame: pd.DataFrame, checker: _RowChecker) -> Loaded:
    # The index stays the file's line number, so later checks can still name the row.
    return Loaded(frame[checker.good()].copy(), checker.rejects())


def load_products(path: Path | str) -> Loaded:
    """Products: sku, name, category, brand, size, unit, cost_cents (may be empty), price_cents."""
    path = Path(path)
    frame = _read_table(path, PRODUCT_COLUMNS, PRODUCT_OPTIONAL)
    check = _RowChecker(frame, path.name)
    for col in ("sku", "name", "category"):
        check.required_text(col)
    price = check.integer("price_cents", minimum=1)
    cost = check.integer("cost_cents", minimum=0, optional=True)
    size_text = frame["size"].fillna("")
    size = pd.to_numeric(size_text.where(size_text != "", None), errors="coerce")
    check.flag((size_text != "") & size.isna(), "size is not a number: '" + size_text + "'")
    dup = frame["sku"].duplicated(keep="first") & (frame["sku"] != "")
    check.flag(dup, "duplicate sku '" + frame["sku"] + "' (first occurrence kept)")
    out = frame.copy()
    out["price_cents"] = price
    out["cost_cents"] = cost
    out["size"] = size.astype("Float64")
    for col in PRODUCT_OPTIONAL:
        if col in out.columns:
            out[col] = out[col].replace("", pd.NA)
    loaded = _finish(out, check)
    loaded.frame["price_cents"] = loaded.frame["price_cents"].astype("int64")
    return loaded


def load_sales(path: Path | str) -> Loaded:
    """Sales: date, store, sku, units, price_cents, promo; optional stock."""
    path = Path(path)
    frame = _read_table(path, SALES_COLUMNS, SALES_OPTIONAL)
    check = _RowChecker(frame, path.name)
    for col in ("store", "sku"):
        check.required_text(col)
    date = pd.to_datetime(frame["date"], format="%Y-%m-%d", errors="coerce")
    check.flag(date.isna(), "date is not YYYY-MM-DD: '" + frame["date"].fillna("") + "'")
    units = check.integer("units", minimum=0)
    price = check.integer("price_cents", minimum=1)
    promo_text = frame["promo"].fillna("").str.lower()
    truthy, falsy = {"1", "true", "yes"}, {"0", "false", "no", ""}
    check.flag(~promo_text.isin(truthy | falsy), "promo is not a boolean: '" + frame["promo"].fillna("") + "'")
    out = frame.copy()
    out["date"] = date
    out["units"] = units
    out["price_cents"] = price
    out["promo"] = promo_text.isin(truthy)
    if "stock" in frame.columns:
        out["stock"] = check.integer("stock", minimum=0, optional=True)
    loaded = _finish(out, check)
    loaded.frame["units"] = loaded.frame["units"].astype("int64")
    loaded.frame["price_cents"] = loaded.frame["price_cents"].astype("int64")
    loaded.frame["promo"] = loaded.frame["promo"].astype(bool)
    return loaded


def load_labels(path: Path | str) -> Loaded:
    """Labels: label_id, store, gateway, sku, tag_type (one of 1.54, 2.9, 4.2)."""
    path = Path(path)
    frame = _read_table(path, LABEL_COLUMNS, [])
    check = _RowChecker(frame, path.name)
    for col in LABEL_COLUMNS:
        check.required_text(col)
    check.flag(
        ~frame["tag_type"].isin(TAG_TYPES),
        "tag_type must be one of " + ", ".join(TAG_TYPES) + ": '" + frame["tag_type"].fillna("") + "'",
    )
    dup = frame["label_id"].duplicated(keep="first") & (frame["label_id"] != "")
    check.flag(dup, "duplicate label_id '" + frame["label_id"] + "' (first occurrence kept)")
    return _finish(frame, check)


@dataclass
class StoreData:
    """A store's validated inputs, plus everything that was rejected on the way in."""

    products: pd.DataFrame
    sales: pd.DataFrame
    labels: pd.DataFrame
    rejects: list[Reject]

    @property
    def store_id(self) -> str:
        """The store these files describe (the first store id in labels, else in sales)."""
        for frame in (self.labels, self.sales):
            if len(frame):
                return str(frame["store"].iloc[0])
        return "store-001"

    def label_rows(self) -> list[tuple[str, str, str]]:
        """(label_id, gateway, sku) for every label."""
        return label_rows(self.labels)


def label_rows(labels: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(label_id, gateway, sku) for every row of a labels frame: what delivery and the simulator use."""
    return list(labels[["label_id", "gateway", "sku"]].itertuples(index=False, name=None))


def load_store(directory: Path | str) -> StoreData:
    """Load products.csv, sales.csv and labels.csv from a store data directory.

    Sales and labels for SKUs that are not (validly) in products are rejected too.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    products = load_products(directory / PRODUCTS_FILE)
    sales = load_sales(directory / SALES_FILE)
    labels = load_labels(directory / LABELS_FILE)
    known = set(products.frame["sku"])
    rejects = products.rejects + sales.rejects + labels.rejects
    sales_frame, more = _drop_unknown_skus(sales.frame, known, SALES_FILE)
    rejects += more
    labels_frame, more = _drop_unknown_skus(labels.frame, known, LABELS_FILE)
    rejects += more
    return StoreData(products.frame, sales_frame, labels_frame, rejects)


def _drop_unknown_skus(frame: pd.DataFrame, known: set[str], file: str) -> tuple[pd.DataFrame, list[Reject]]:
    unknown = ~frame["sku"].isin(known)
    rejects = [
        Reject(file, int(row), f"sku '{sku}' is not in {PRODUCTS_FILE}")
        for row, sku in frame.loc[unknown, "sku"].items()
    ]
    return frame[~unknown], rejects
