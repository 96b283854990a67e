"""A store's data directory loaded whole: products, daily sales (from sales.csv or receipts.csv),
labels, competitor prices and the assortment, with every reject. Builds on pricing/core/data.py
(the readers and checks of each file), pricing/core/receipts.py and pricing/core/listing.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pricing.core.data import (
    ASSORTMENT_FILE,
    COMPETITORS_FILE,
    LABELS_FILE,
    PRODUCTS_FILE,
    RECEIPTS_FILE,
    SALES_COLUMNS,
    SALES_FILE,
    DataError,
    Reject,
    _load_competitors,
    _load_labels,
    _load_sales,
    empty_competitors,
    empty_labels,
    label_rows,
    load_products,
)
from pricing.core.listing import _load_assortment
from pricing.core.receipts import ReceiptCounts, _load_receipts


@dataclass
class StoreData:
    """A store's validated inputs, plus everything that was rejected on the way in."""

    products: pd.DataFrame
    sales: pd.DataFrame
    labels: pd.DataFrame
    rejects: list[Reject]
    competitors: pd.DataFrame = field(default_factory=empty_competitors)  # no rows without the file
    #: Exact duplicate sales rows dropped (not in ``rejects``): ``exact duplicate of line N``.
    duplicates: list[Reject] = field(default_factory=list)
    #: Data rows read per file name (products.csv, sales.csv or receipts.csv, ...; only the files read).
    rows_read: dict[str, int] = field(default_factory=dict)
    #: The file ``sales`` came from: sales.csv (daily rows) or receipts.csv (lines netted per day).
    sales_file: str = SALES_FILE
    #: What netting receipts.csv did (void_lines, refund_lines, netted_units, negative_days);
    #: None when the sales came from sales.csv.
    receipt_counts: ReceiptCounts | None = None
    #: assortment.csv's rows (sku, store <NA> = every store, listed_from, listed_to NaT = still
    #: listed): when each SKU is on the shelf. None without the file (listing.complete_days then
    #: lists each SKU from its first to its last sale).
    listing: pd.DataFrame | None = None

    def counts(self, file: str) -> dict[str, int]:
        """Rows read, rejected and exact duplicates dropped of one file (by name, e.g. sales.csv);
        for receipts.csv also its netting counts (void_lines, refund_lines, netted_units, negative_days)."""
        counts = {
            "rows_read": self.rows_read.get(file, 0),
            "rejected": sum(1 for r in self.rejects if r.file == file),
            "duplicates": sum(1 for r in self.duplicates if r.file == file),
        }
        if file == RECEIPTS_FILE and file == self.sales_file and self.receipt_counts is not None:
            counts.update(self.receipt_counts.as_dict())
        return counts

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


def load_shelf(directory: Path | str) -> StoreData:
    """Only what labels need: products.csv and labels.csv (labels of SKUs not in products are
    rejected). ``sales`` is empty: a year of sales is not read to put prices on labels."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    products = load_products(directory / PRODUCTS_FILE)
    labels, labels_unknown = _load_labels(directory / LABELS_FILE, set(products.frame["sku"]))
    rejects = products.rejects + labels.rejects + labels_unknown
    return StoreData(products.frame, pd.DataFrame(columns=SALES_COLUMNS), labels.frame, rejects)


def load_store(directory: Path | str, *, require_labels: bool = True) -> StoreData:
    """Load products.csv, sales.csv or receipts.csv, labels.csv and (if present) competitors.csv
    and assortment.csv from a directory.

    The daily sales come from sales.csv or, instead, from receipts.csv (transaction lines, netted
    into the same daily frame: pricing/core/receipts.py); a directory with both is an error, one
    with neither misses sales.csv. Sales (or receipt lines), labels, competitor prices and
    assortment rows for SKUs that are not (validly) in products are rejected too. Without
    competitors.csv, ``competitors`` is an empty frame with the loader's columns; without
    assortment.csv, ``listing`` is None. ``require_labels=False`` (training needs only products
    and sales): without labels.csv, ``labels`` is an empty frame with the loader's columns.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    has_sales, has_receipts = (directory / SALES_FILE).exists(), (directory / RECEIPTS_FILE).exists()
    if has_sales and has_receipts:
        raise DataError(
            f"{directory}: has both {SALES_FILE} and {RECEIPTS_FILE}; keep one (daily sales or receipt lines, not both)"
        )
    products = load_products(directory / PRODUCTS_FILE)
    known = set(products.frame["sku"])
    receipt_counts = None
    if has_receipts:
        receipts, sales_unknown = _load_receipts(directory / RECEIPTS_FILE, known)
        sales, sales_file, receipt_counts = receipts, RECEIPTS_FILE, receipts.counts
    else:
        if not has_sales:
            raise DataError(f"{directory / SALES_FILE}: file not found (nor {RECEIPTS_FILE}: a store needs one)")
        sales, sales_unknown = _load_sales(directory / SALES_FILE, known)
        sales_file = SALES_FILE
    rows_read = {PRODUCTS_FILE: products.rows, sales_file: sales.rows}
    rejects = products.rejects + sales.rejects
    labels_frame = empty_labels()
    if require_labels or (directory / LABELS_FILE).exists():
        labels, labels_unknown = _load_labels(directory / LABELS_FILE, known)
        labels_frame, rows_read[LABELS_FILE] = labels.frame, labels.rows
        rejects += labels.rejects + sales_unknown + labels_unknown
    else:
        rejects += sales_unknown
    competitors = empty_competitors()
    if (directory / COMPETITORS_FILE).exists():
        loaded, competitors_unknown = _load_competitors(directory / COMPETITORS_FILE, known)
        competitors, rows_read[COMPETITORS_FILE] = loaded.frame, loaded.rows
        rejects += loaded.rejects + competitors_unknown
    listing = None
    if (directory / ASSORTMENT_FILE).exists():
        assortment, assortment_unknown = _load_assortment(directory / ASSORTMENT_FILE, known)
        listing, rows_read[ASSORTMENT_FILE] = assortment.frame, assortment.rows
        rejects += assortment.rejects + assortment_unknown
    return StoreData(
        products.frame, sales.frame, labels_frame, rejects, competitors, duplicates=sales.duplicates,
        rows_read=rows_read, sales_file=sales_file, receipt_counts=receipt_counts, listing=listing,
    )
