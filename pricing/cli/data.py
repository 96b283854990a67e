"""esl-pricing data check: what a store data directory holds, what was rejected, and why.

For each file present (products.csv, sales.csv or receipts.csv, labels.csv, competitors.csv,
assortment.csv): rows read, rows rejected, exact duplicate rows dropped; for receipts.csv also
what netting the lines into daily rows did (void and refund lines, units netted, days below
zero); for the daily sales (from whichever file) the SKUs, stores, the date range, the implied
zero-sales days (listed days without a row: assortment.csv's periods, else first to last sale),
store-SKU-days with several rows and the SKUs with too few distinct prices to learn a price
response from. Every rejected or dropped row goes to a rejects CSV (file, line, reason). See
docs/data.md.

Exit codes: 0 the data is usable (rejects are reported, not fatal), 2 products.csv or the sales
(sales.csv or receipts.csv; both present is an error too), or a present optional file, is
missing or unreadable.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer
from rich.markup import escape
from rich.table import Table

from pricing.cli.common import (
    JsonOption,
    command_group,
    emit_json,
    err,
    fail,
    user_errors,
)
from pricing.core.data import (
    ASSORTMENT_FILE,
    COMPETITORS_FILE,
    LABELS_FILE,
    PRODUCTS_FILE,
    RECEIPTS_FILE,
    SALES_FILE,
    Reject,
)
from pricing.core.files import atomic_write_text
from pricing.core.listing import listing_report
from pricing.core.store_data import load_store

FILES = (PRODUCTS_FILE, SALES_FILE, RECEIPTS_FILE, LABELS_FILE, COMPETITORS_FILE, ASSORTMENT_FILE)
REJECTS_FILE = "rejects.csv"

data_app = command_group("Check a store's data files: rows, rejects, duplicates, zero-sales days.")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")


@data_app.command("check")
def data_check(
    directory: Annotated[Path, typer.Argument(help="Store data directory (products.csv, sales.csv, ...).")],
    rejects: Annotated[
        Path | None,
        typer.Option(help=f"CSV of every rejected or dropped row (file, line, reason); default DIR/{REJECTS_FILE} when there are any."),
    ] = None,
    min_prices: Annotated[int, typer.Option(min=1, help="Report SKUs with fewer distinct sales prices than this.")] = 3,
    as_json: JsonOption = False,
) -> None:
    """Check a store data directory: rows read, rejected and duplicate per file; sales coverage."""
    if not directory.is_dir():
        fail(f"{directory}: not a directory")
    with user_errors():
        store = load_store(directory, require_labels=False)
    files: dict[str, dict[str, Any]] = {name: store.counts(name) for name in FILES if name in store.rows_read}
    files[store.sales_file].update(sales_summary(store.sales, min_prices, store.listing))
    dropped = sorted(store.rejects + store.duplicates, key=lambda r: (FILES.index(r.file) if r.file in FILES else 9, r.row))
    target = rejects if rejects is not None else (directory / REJECTS_FILE if dropped else None)
    if target is not None:
        with user_errors(OSError):
            write_rejects(target, dropped)
    _print(directory, files, store.sales_file, dropped, target)
    if as_json:
        emit_json(
            {
                "directory": str(directory),
                "sales_file": store.sales_file,
                "files": files,
                "rejected": sum(f["rejected"] for f in files.values()),
                "duplicates": sum(f["duplicates"] for f in files.values()),
                "rejects_file": str(target) if target is not None else None,
            }
        )


def sales_summary(sales: pd.DataFrame, min_prices: int, listing: pd.DataFrame | None = None) -> dict[str, Any]:
    """SKUs, stores, date range, implied zero-sales days, several-rows days, SKUs with few prices.

    A SKU is listed in a store on its assortment.csv periods (``listing``), else from its first to
    its last daily row; a listed day with no row is a zero-sales day (``zero_days``: what training
    fills, see pricing/core/listing.py). ``several_rows_days``: (store, sku, date) with more than
    one row.
    """
    summary: dict[str, Any] = {
        "skus": 0, "stores": 0, "date_start": None, "date_end": None, "zero_days": 0,
        "several_rows_days": 0, "min_prices": min_prices, "skus_few_prices": 0, "skus_few_prices_examples": [],
        "listing": ASSORTMENT_FILE if listing is not None else "first to last sale",
        "skus_listed_by_file": 0, "skus_listed_by_rule": 0, "rows_outside_listing": 0, "listed_without_sales": 0,
    }
    if len(sales) == 0:
        return summary
    report = listing_report(sales, listing)
    store = np.asarray(sales["store"].cat.codes, dtype=np.int64)
    sku = np.asarray(sales["sku"].cat.codes, dtype=np.int64)
    day = (sales["date"].to_numpy(dtype="datetime64[D]")).astype(np.int64)
    keys = pd.DataFrame({"store": store, "sku": sku, "day": day}, copy=False)
    prices = pd.DataFrame({"sku": sku, "price": sales["price_cents"].to_numpy()}, copy=False)
    distinct = prices.drop_duplicates().groupby("sku", sort=False).size()
    few = distinct[distinct < min_prices]
    names = sales["sku"].cat.categories
    summary.update(
        skus=int(sales["sku"].nunique()),
        stores=int(sales["store"].nunique()),
        date_start=str(pd.Timestamp(sales["date"].min()).date()),
        date_end=str(pd.Timestamp(sales["date"].max()).date()),
        zero_days=report.zero_days_filled,
        skus_listed_by_file=report.skus_listed_by_file,
        skus_listed_by_rule=report.skus_listed_by_rule,
        rows_outside_listing=report.rows_outside_listing,
        listed_without_sales=report.listed_without_sales,
        several_rows_days=len(keys[keys.duplicated()].drop_duplicates()),
        skus_few_prices=len(few),
        skus_few_prices_examples=sorted(str(names[c]) for c in few.index)[:10],
    )
    return summary


def write_rejects(path: Path, rows: list[Reject]) -> None:
    """Every rejected or dropped row as CSV: file, line, reason."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["file", "line", "reason"])
    writer.writerows([r.file, r.row, r.reason] for r in rows)
    atomic_write_text(path, buffer.getvalue())


def _print(
    directory: Path, files: dict[str, dict[str, Any]], sales_file: str, dropped: list[Reject], target: Path | None
) -> None:
    table = Table("file", "rows read", "rejected", "exact duplicates dropped", title=f"data check {escape(str(directory))}")
    for name, counts in files.items():
        table.add_row(name, f"{counts['rows_read']:,}", f"{counts['rejected']:,}", f"{counts['duplicates']:,}")
    err.print(table)
    sales = files[sales_file]
    if sales_file == RECEIPTS_FILE:
        err.print(
            f"receipts: {sales['void_lines']:,} void lines, {sales['refund_lines']:,} refund lines, "
            f"{sales['netted_units']:,} units netted; {sales['negative_days']:,} store-SKU-days whose net was below zero (0 units, or no row when only refunds)",
            highlight=False,
        )
    if sales["date_start"] is not None:
        listed = (
            f"{sales['skus_listed_by_file']:,} store-SKUs listed by {ASSORTMENT_FILE}, "
            f"{sales['skus_listed_by_rule']:,} from first to last sale"
        )
        if sales["rows_outside_listing"]:
            listed += f", {sales['rows_outside_listing']:,} rows outside their listed period (kept)"
        if sales["listed_without_sales"]:
            listed += f", {sales['listed_without_sales']:,} listed store-SKUs without sales"
        err.print(
            f"sales: {sales['skus']:,} SKUs in {sales['stores']} store(s), {sales['date_start']} to {sales['date_end']}; "
            f"{sales['zero_days']:,} implied zero-sales days (a listed day with no row; {listed}); "
            f"{sales['several_rows_days']:,} store-SKU-days with several rows; "
            f"{sales['skus_few_prices']:,} SKUs with fewer than {sales['min_prices']} distinct prices",
            highlight=False,
        )
    else:
        err.print("sales: no rows", highlight=False)
    if target is not None:
        err.print(f"{len(dropped):,} rejected or dropped row(s) written to {escape(str(target))}", highlight=False)
    else:
        err.print("no rows rejected", highlight=False)
