"""A CSV row with more fields than its header is rejected with its line and the reason, in every
file the data readers load (pricing/core/data.py: _read_table / _RowChecker), instead of being
cut to fit."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from pricing.core.data import load_labels, load_products, load_sales
from pricing.core.listing import load_assortment
from pricing.core.receipts import load_receipts
from pricing.core.store_data import load_store

PRODUCTS = "sku,name,category,brand,size,unit,cost_cents,price_cents"


def write(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def rejects(loaded: object) -> list[tuple[int, str]]:
    return [(r.row, r.reason) for r in loaded.rejects]  # type: ignore[attr-defined]


def test_products_row_with_an_extra_field(tmp_path: Path) -> None:
    path = write(
        tmp_path / "products.csv", PRODUCTS,
        "A,Milk,dairy,F,1,l,50,99",          # 2
        "B,Tea,drinks,T,1,pc,50,199,oops",   # 3: one field too many
        "C,Jam,spreads,J,1,pc,50,299",       # 4
        "D,Oil,pantry,O,1,l,1,50,399",       # 5: a comma in the cost would shift every field
    )
    loaded = load_products(path)
    assert rejects(loaded) == [(3, "9 fields, the header has 8 columns"), (5, "9 fields, the header has 8 columns")]
    assert loaded.frame["sku"].tolist() == ["A", "C"]
    assert loaded.frame.index.tolist() == [2, 4]  # every row keeps its file line


def test_sales_rows_keep_their_line_numbers_around_long_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path / "sales.csv", "date,store,sku,units,price_cents,promo",
        "2024-03-01,S1,A,4,99,0",
        "2024-03-01,S1,A,4,99,0,1,2",   # 3: two too many
        "2024-03-02,S1,A,x,99,0",       # 4: its own problem
        "2024-03-03,S1,A,4,99,0,",      # 5: a trailing comma is a field too
        "2024-03-04,S1,A,5,99,0",       # 6
    )
    loaded = load_sales(path)
    assert rejects(loaded) == [
        (3, "8 fields, the header has 6 columns"),
        (4, "units is not a whole number: 'x'"),
        (5, "7 fields, the header has 6 columns"),
    ]
    assert loaded.frame.index.tolist() == [2, 6] and loaded.frame["units"].tolist() == [4, 5]
    assert loaded.rows == 5


def test_labels_extra_column_and_no_parser_warning_escapes(tmp_path: Path) -> None:
    path = write(tmp_path / "labels.csv", "label_id,store,gateway,sku,tag_type",
                 "L1,S1,G1,A,2.9", "L2,S1,G1,B,2.9,extra")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pandas' "Skipping line" warning is ours to report, not the user's
        loaded = load_labels(path)
    assert rejects(loaded) == [(3, "6 fields, the header has 5 columns")]


def test_receipts_and_assortment_too(tmp_path: Path) -> None:
    receipts = write(
        tmp_path / "receipts.csv", "timestamp,store,sku,quantity,unit_price_cents,promo,receipt,line",
        "2024-03-01T09:00:00,S1,A,2,99,0,r1,1",
        "2024-03-01T09:00:05,S1,A,1,99,0,r1,2,surplus",
    )
    assert rejects(load_receipts(receipts)) == [(3, "9 fields, the header has 8 columns")]
    assortment = write(tmp_path / "assortment.csv", "sku,listed_from,listed_to",
                       "A,2024-01-01,", "B,2024-01-01,2024-02-01,2024-03-01")
    loaded = load_assortment(assortment)
    assert rejects(loaded) == [(3, "4 fields, the header has 3 columns")]
    assert loaded.frame["sku"].tolist() == ["A"]


def test_load_store_reports_them(tmp_path: Path) -> None:
    write(tmp_path / "products.csv", PRODUCTS, "A,Milk,dairy,F,1,l,50,99", "B,Tea,drinks,T,1,pc,50,199")
    write(tmp_path / "receipts.csv", "date,store,sku,quantity,unit_price_cents,promo",
          "2024-03-01,S1,A,2,99,0", "2024-03-01,S1,B,2,199,0,,")
    write(tmp_path / "labels.csv", "label_id,store,gateway,sku,tag_type", "L1,S1,G1,A,2.9")
    store = load_store(tmp_path)
    assert [str(r) for r in store.rejects] == ["receipts.csv:3: 8 fields, the header has 6 columns"]


@pytest.mark.parametrize("thousands", ["\x1f", None], ids=["categories", "typed-categories-fallback"])
def test_the_plain_text_second_read_skips_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         thousands: str | None) -> None:
    from pricing.core import data

    monkeypatch.setitem(data._CSV_OPTIONS, "thousands", thousands)  # None: pandas types "0123" -> re-read
    path = write(tmp_path / "products.csv", PRODUCTS, "0123,TRUE,1,1,1,l,55,99", "0124,x,2,2,1,l,55,99,9",
                 "0125,y,3,3,1,l,55,99")
    loaded = load_products(path)
    assert rejects(loaded) == [(3, "9 fields, the header has 8 columns")]
    assert loaded.frame["sku"].tolist() == ["0123", "0125"] and loaded.frame.index.tolist() == [2, 4]
