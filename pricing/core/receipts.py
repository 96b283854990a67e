"""receipts.csv: transaction lines, checked like sales.csv and netted into the same daily frame.

A store directory holds either sales.csv (one row per SKU, store and day) or receipts.csv (one
row per receipt line). ``load_store`` reads whichever is there (both: a ``DataError``) and gives
the same ``sales`` frame either way (columns and types as in pricing/core/data.py: date, store and
sku categoricals, units, price_cents, promo; index ``row``).

Columns: ``timestamp`` (``YYYY-MM-DDTHH:MM:SS``, optionally with fractional seconds and a ``Z`` or
``+HH:MM`` offset) or ``date`` (``YYYY-MM-DD``), exactly one of the two; ``store``, ``sku``,
``quantity`` (a whole number, not 0: negative is a void or a refund), ``unit_price_cents`` (whole
>= 1), ``promo`` (as in sales); optional ``receipt`` (text, the receipt id) and ``line`` (whole).
A timestamp's DATE part, as written, is the day the line counts on: the store's local day (an
offset is not applied; exports write local time).

Every line is checked like a sales row (same reasons, row numbers = file lines, SKUs not in
products.csv rejected); a line whose every column equals an earlier kept line's is an exact
duplicate: dropped (the first kept) and reported, not rejected. Without ``receipt`` and ``line``
(or a timestamp), two customers buying the same SKU at the same price on a day write identical
lines, which are then read as one line exported twice: export the receipt id and line number.

Netting: the kept lines of one (date, store, sku) become one daily row: ``units`` = the net
quantity of all its lines, at the ``unit_price_cents`` and ``promo`` of its sold (positive) lines
with the most units (ties: the earliest), ``row`` = that group's first line. So a refund at an old
price is netted into the day it happened without inventing an observation at the old price, and
a mid-day price change counts at the price most units sold at. Negative lines are counted: a
``void_line`` is a negative line on a receipt (``receipt`` column, non-empty) that has a positive
line of the same SKU in the same store; every other negative line is a ``refund_line`` (see
docs/data.md for what netting refunds on their day biases). ``netted_units``: the units of all
negative lines. A day whose net is below 0 (refunds of earlier sales) is counted in
``negative_days``; it gets 0 units when it also sold, and no row when it only had refunds (the
listing then decides whether it was a zero-sales day). A daily row never has negative units.

Everything runs on the reader's integer codes (one per distinct text), so ~1 M lines load in a
few seconds; a timestamp is checked once per distinct value and its day parsed once per day.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pricing.core.data import (
    RECEIPTS_FILE,
    DataError,
    Loaded,
    Reject,
    _categorical,
    _dates,
    _header,
    _parse_dates,
    _promo,
    _read_table,
    _reasons,
    _RowChecker,
    _whole,
)

RECEIPT_COLUMNS = ["store", "sku", "quantity", "unit_price_cents", "promo"]
RECEIPT_TIME_COLUMNS = ("timestamp", "date")  # exactly one of them
RECEIPT_OPTIONAL = ["receipt", "line"]
#: A receipt line's time: the date part is the day it counts on; the time must be a valid time.
TIMESTAMP_PATTERN = re.compile(
    r"\d{4}-\d{2}-\d{2}T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?(?:Z|[+-](?:[01]\d|2[0-3]):?[0-5]\d)?"
)
TIMESTAMP_FORM = "YYYY-MM-DDTHH:MM:SS"

__all__ = [
    "RECEIPTS_FILE",
    "RECEIPT_COLUMNS",
    "RECEIPT_OPTIONAL",
    "RECEIPT_TIME_COLUMNS",
    "ReceiptCounts",
    "ReceiptsLoaded",
    "load_receipts",
]


@dataclass(frozen=True)
class ReceiptCounts:
    """What netting receipt lines into daily rows did (see the module docstring)."""

    void_lines: int = 0
    refund_lines: int = 0
    netted_units: int = 0
    negative_days: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: int(v) for k, v in asdict(self).items()}


@dataclass
class ReceiptsLoaded(Loaded):
    """``frame``: the daily sales netted from the kept lines; ``rows``: the lines read;
    ``duplicates``: the exact duplicate lines dropped; ``counts``: the netting counts."""

    counts: ReceiptCounts = field(default_factory=ReceiptCounts)


def load_receipts(path: Path | str) -> ReceiptsLoaded:
    """Receipt lines, checked, then netted into the daily sales frame (SKUs not checked against products)."""
    return _load_receipts(Path(path), None)[0]


def _load_receipts(path: Path, known: set[str] | None) -> tuple[ReceiptsLoaded, list[Reject]]:
    """load_receipts, and the lines rejected after it for a sku not in ``known``."""
    header, _ = _header(path)
    times = [c for c in RECEIPT_TIME_COLUMNS if c in header]
    if len(times) == 2:
        raise DataError(f"{path}: has both a timestamp and a date column; give one (the day is what counts)")
    missing = [c for c in RECEIPT_COLUMNS if c not in header]
    if not times:
        missing.insert(0, "timestamp (or date)")
    if missing:
        raise DataError(f"{path}: missing column(s): {', '.join(missing)}")
    time_col = times[0]
    check = _RowChecker(_read_table(path, [time_col, *RECEIPT_COLUMNS], RECEIPT_OPTIONAL, caseless=("promo",)), path.name)
    for col in ("store", "sku"):
        check.required_text(col)
    check.identifier("store")
    check.sku()
    day = _dates(check) if time_col == "date" else _timestamp_days(check)
    quantity = check.integer("quantity")
    check.flag("quantity", (quantity == 0).fillna(False).to_numpy(dtype=bool), "quantity is 0 (a line sells or returns units)")
    price = check.integer("unit_price_cents", minimum=1)
    promo = _promo(check)
    if "line" in check.table.columns:
        check.integer("line", optional=True)
    rejects = check.rejects()
    duplicates = check.exact_duplicates()
    unknown = check.unknown_skus(known)
    frame, counts = _net(check, time_col, day, _whole(quantity), _whole(price), promo)
    return ReceiptsLoaded(frame, rejects, check.table.rows, duplicates, counts), unknown


def _timestamp_days(check: _RowChecker) -> np.ndarray:
    """Per distinct timestamp: its date part as datetime64[ns] (NaT where rejected)."""
    text = check.text("timestamp").fillna("")
    form = text.str.fullmatch(TIMESTAMP_PATTERN.pattern).fillna(False).to_numpy(dtype=bool)
    bad = ~form
    check.flag("timestamp", bad, _reasons(bad, f"timestamp is not {TIMESTAMP_FORM}: '", text))
    # Only well-formed timestamps reach the day parser (a bad one is already rejected above).
    day_text = text.str.slice(0, 10).where(form, "")
    return _parse_dates(check, "timestamp", day_text, text.where(form, ""), TIMESTAMP_FORM, optional=True)


def _pack(arrays: list[np.ndarray], sizes: list[int]) -> np.ndarray:
    """One int64 key per row for several small-integer columns (each in 0..size-1), in their order:
    keys sort like the rows' tuples. Re-numbers the partial key when the next column would overflow."""
    key = arrays[0].astype(np.int64)
    span = max(sizes[0], 1)
    for values, size in zip(arrays[1:], sizes[1:], strict=True):
        size = max(size, 1)
        if span * size >= 2**62:
            uniques, key = np.unique(key, return_inverse=True)  # sorted: the order is kept
            span = max(len(uniques), 1)
        key = key * size + values
        span *= size
    return key


def _net(
    check: _RowChecker, time_col: str, day: np.ndarray, quantity: np.ndarray, price: np.ndarray, promo: np.ndarray
) -> tuple[pd.DataFrame, ReceiptCounts]:
    """The kept lines netted into one row per (date, store, sku) (see the module docstring), and the netting counts.

    ``day``, ``quantity``, ``price``, ``promo``: per distinct text of their columns.
    """
    keep = np.flatnonzero(~check.bad)
    columns = check.table.columns
    store_text, sku_text = check.text("store"), check.text("sku")
    qty = quantity[columns["quantity"].codes[keep]]
    store = columns["store"].codes[keep].astype(np.int64)
    sku = columns["sku"].codes[keep].astype(np.int64)
    negative = qty < 0
    void = 0
    if "receipt" in columns and negative.any():
        receipt_text = check.text("receipt").fillna("")
        receipt = columns["receipt"].codes[keep].astype(np.int64)
        has_receipt = (receipt_text != "").to_numpy(dtype=bool)[receipt]  # code -1 picks <NA>: ""
        sizes = [len(store_text), len(receipt_text), len(sku_text)]
        key = _pack([store, receipt, sku], sizes)
        sold = key[(qty > 0) & has_receipt]
        void = int(pd.Series(key[negative & has_receipt]).isin(sold).sum())  # a hash: np.isin sorts
    counts_negative = int(negative.sum())
    netted = int(-qty[negative].sum())

    day_number = day.astype("datetime64[D]").view(np.int64)[columns[time_col].codes[keep]]
    price_id, price_values = pd.factorize(price)  # equal numbers written differently are one price
    row_price = price_id[columns["unit_price_cents"].codes[keep]]
    row_promo = promo[columns["promo"].codes[keep]]
    first_day = int(day_number.min()) if len(keep) else 0
    spans = [
        int(day_number.max()) - first_day + 1 if len(keep) else 1,
        len(store_text),
        len(sku_text),
        len(price_values),
        2,
    ]
    # One row per (date, store, sku): at the price and promo of its sold lines with the most units.
    day_key = _pack([day_number - first_day, store, sku], spans[:3])
    _, day_group = np.unique(day_key, return_inverse=True)
    n_days = int(day_group.max()) + 1 if len(day_group) else 0
    net = np.zeros(n_days, dtype=np.int64)
    np.add.at(net, day_group, qty)
    sold = np.flatnonzero(qty > 0)
    price_key = _pack([day_group[sold], row_price[sold], row_promo[sold].astype(np.int64)], [n_days, spans[3], 2])
    price_groups, price_group = np.unique(price_key, return_inverse=True)
    units_at = np.zeros(len(price_groups), dtype=np.int64)
    np.add.at(units_at, price_group, qty[sold])
    first_at = np.full(len(price_groups), len(keep), dtype=np.int64)
    np.minimum.at(first_at, price_group, sold)
    owner = day_group[first_at]  # the (date, store, sku) of each price group
    best = np.lexsort((first_at, -units_at, owner))  # per day: most units first, then the earliest
    lead = best[np.r_[True, owner[best][1:] != owner[best][:-1]]] if len(best) else best
    first = np.full(n_days, -1, dtype=np.int64)
    first[owner[lead]] = first_at[lead]  # the line that gives the day its price and promo
    negative_days = int((net < 0).sum())  # refunds of earlier sales beyond this day's
    with_sale = first >= 0  # a day with only refunds has no sale to record: no row
    first, net = first[with_sale], net[with_sale]
    order = np.lexsort((first, day_number[first]))  # by day, then by first line
    first, net = first[order], net[order]

    check.checks.clear()
    frame = pd.DataFrame(
        {
            "date": day_number[first].astype("datetime64[D]").astype("datetime64[ns]"),
            "store": _categorical(columns["store"].codes[keep[first]], store_text),
            "sku": _categorical(columns["sku"].codes[keep[first]], sku_text),
            "units": np.maximum(net, 0),
            "price_cents": np.asarray(price_values, dtype=np.int64)[row_price[first]],
            "promo": row_promo[first].astype(bool),
        },
        index=pd.Index(keep[first] + 2, name="row", dtype=np.int64),
        copy=False,
    )
    columns.clear()
    counts = ReceiptCounts(
        void_lines=void, refund_lines=counts_negative - void, netted_units=netted, negative_days=negative_days
    )
    return frame, counts
