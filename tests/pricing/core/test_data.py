"""pricing.core.data: the data contracts. Good rows load typed; each bad row is rejected with its file
line number (header = line 1) and a readable reason, and never hides the good rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pricing.core import data
from pricing.core.data import (
    COMPETITOR_COLUMNS,
    COMPETITORS_FILE,
    DataError,
    Reject,
    competitor_reference,
    empty_competitors,
    load_competitors,
    load_labels,
    load_products,
    load_sales,
)
from pricing.core.store_data import load_store

PRODUCTS_HEADER = "sku,name,category,brand,size,unit,cost_cents,price_cents"
SALES_HEADER = "date,store,sku,units,price_cents,promo"
LABELS_HEADER = "label_id,store,gateway,sku,tag_type"
COMPETITORS_HEADER = "date,sku,competitor,price_cents"
GROUPS_HEADER = PRODUCTS_HEADER + ",family,ladder,tier"


def write(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def by_row(rejects: list[Reject]) -> dict[int, str]:
    rows = [r.row for r in rejects]
    assert len(rows) == len(set(rows)), "one reject per bad row"
    return {r.row: r.reason for r in rejects}


# -- products -------------------------------------------------------------------------------


def test_products_good_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "products.csv", PRODUCTS_HEADER + ",family",
        "0123,Milk 1l,dairy,Farm,1,l,55,99,",
        "00042,Butter,dairy,Farm,0.25,kg,120,249,spreads",
        "7,Crisps,snacks,Crunch,150,g,80,149,",
    )
    loaded = load_products(path)
    assert loaded.rejects == []
    frame = loaded.frame
    assert list(frame["sku"]) == ["0123", "00042", "7"]
    assert all(isinstance(s, str) for s in frame["sku"])
    assert list(frame.index) == [2, 3, 4]  # the file's line numbers
    assert frame["price_cents"].dtype == "int64"
    assert list(frame["price_cents"]) == [99, 249, 149]
    assert list(frame["cost_cents"]) == [55, 120, 80]
    assert list(frame["size"]) == [1.0, 0.25, 150.0]
    assert frame["family"].isna().tolist() == [True, False, True]


def test_products_empty_cost_is_na_not_rejected(tmp_path: Path) -> None:
    path = write(tmp_path / "products.csv", PRODUCTS_HEADER, "0001,Bread,bakery,B,1,pc,,199")
    loaded = load_products(path)
    assert loaded.rejects == []
    assert loaded.frame["sku"].tolist() == ["0001"]
    assert loaded.frame["cost_cents"].isna().all()
    assert loaded.frame["price_cents"].tolist() == [199]


def test_products_bad_rows_rejected_with_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path / "products.csv", PRODUCTS_HEADER,
        "0123,Milk,dairy,Farm,1,l,55,99",        # 2 good
        ",No sku,dairy,Farm,1,l,55,99",          # 3 empty sku
        "A3,Decimal price,dairy,Farm,1,l,55,2.99",  # 4 price is not cents
        "A4,Text price,dairy,Farm,1,l,55,abc",   # 5
        "A5,Zero price,dairy,Farm,1,l,55,0",     # 6 price must be >= 1
        "A6,Negative cost,dairy,Farm,1,l,-5,99",  # 7
        "0123,Duplicate,dairy,Farm,1,l,55,99",   # 8 duplicate of line 2
        "A8,Bad size,dairy,Farm,big,l,55,99",    # 9
        "A9,Infinite price,dairy,Farm,1,l,55,inf",  # 10
        "A10,Huge price,dairy,Farm,1,l,55,1e30",  # 11
        "A11,No name,,Farm,1,l,55,99",           # 12 empty category
        "B1,Good too,snacks,Crunch,150,g,,149",  # 13 good, no cost
    )
    loaded = load_products(path)
    reasons = by_row(loaded.rejects)
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert reasons[3] == "sku is empty"
    assert reasons[4] == "price_cents is not a whole number: '2.99'"
    assert reasons[5] == "price_cents is not a whole number: 'abc'"
    assert reasons[6] == "price_cents must be >= 1"
    assert reasons[7] == "cost_cents must be >= 0"
    assert reasons[8] == "duplicate sku '0123' (first occurrence kept)"
    assert reasons[9] == "size is not a number: 'big'"
    assert "price_cents" in reasons[10] and "'inf'" in reasons[10]
    assert "price_cents" in reasons[11] and "'1e30'" in reasons[11]
    assert reasons[12] == "category is empty"
    assert all(r.file == "products.csv" for r in loaded.rejects)
    assert str(loaded.rejects[0]) == "products.csv:3: sku is empty"
    frame = loaded.frame
    assert frame["sku"].tolist() == ["0123", "B1"]
    assert frame.loc[2, "name"] == "Milk"  # the first occurrence is kept
    assert list(frame.index) == [2, 13]
    assert frame["price_cents"].tolist() == [99, 149]
    assert (frame["price_cents"] > 0).all()


def test_row_with_several_problems_reported_once_with_the_first(tmp_path: Path) -> None:
    path = write(tmp_path / "products.csv", PRODUCTS_HEADER, ",Bad,dairy,Farm,1,l,x,y")
    loaded = load_products(path)
    assert [(r.row, r.reason) for r in loaded.rejects] == [(2, "sku is empty")]
    assert loaded.frame.empty


def test_quoted_fields_and_whitespace(tmp_path: Path) -> None:
    path = write(tmp_path / "products.csv", PRODUCTS_HEADER, '" 0123 ","Milk, whole",dairy,Farm,1,l, 55 , 99 ')
    loaded = load_products(path)
    assert loaded.rejects == []
    assert loaded.frame["sku"].tolist() == ["0123"]
    assert loaded.frame["name"].tolist() == ["Milk, whole"]
    assert loaded.frame["price_cents"].tolist() == [99]


# -- sales ----------------------------------------------------------------------------------


def test_sales_good_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "sales.csv", SALES_HEADER + ",stock",
        "2024-03-01,S1,0123,4,99,0,10",
        "2024-03-02,S1,0123,0,79,true,",
        "2024-03-03,S1,0123,2,99,Yes,3",
        "2024-03-04,S1,0123,1,99,,3",
    )
    loaded = load_sales(path)
    assert loaded.rejects == []
    frame = loaded.frame
    assert frame["sku"].tolist() == ["0123"] * 4
    assert frame["units"].dtype == "int64" and frame["units"].tolist() == [4, 0, 2, 1]
    assert frame["price_cents"].dtype == "int64"
    assert frame["promo"].dtype == bool and frame["promo"].tolist() == [False, True, True, False]
    assert frame["date"].tolist() == list(pd.to_datetime(["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04"]))
    assert frame["stock"].isna().tolist() == [False, True, False, False]


def test_sales_bad_rows_rejected_with_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path / "sales.csv", SALES_HEADER,
        "2024-03-01,S1,0123,4,99,0",     # 2 good
        "2024-03-01,S1,,4,99,0",         # 3 empty sku
        "2024-03-01,S1,0123,4,0.99,0",   # 4 non-integer price
        "2024-03-01,S1,0123,-1,99,0",    # 5 negative units
        "01/03/2024,S1,0123,4,99,0",     # 6 bad date format
        "2024-02-30,S1,0123,4,99,0",     # 7 no such day
        "2024-03-01,S1,0123,4,99,maybe",  # 8 bad promo
        "2024-03-01,S1,0123,2.5,99,0",   # 9 fractional units
        ",S1,0123,4,99,0",               # 10 empty date
        "2024-03-02,S1,0123,5,99,1",     # 11 good
    )
    loaded = load_sales(path)
    reasons = by_row(loaded.rejects)
    assert reasons == {
        3: "sku is empty",
        4: "price_cents is not a whole number: '0.99'",
        5: "units must be >= 0",
        6: "date is not YYYY-MM-DD: '01/03/2024'",
        7: "date is not YYYY-MM-DD: '2024-02-30'",
        8: "promo is not a boolean: 'maybe'",
        9: "units is not a whole number: '2.5'",
        10: "date is not YYYY-MM-DD: ''",
    }
    assert all(r.file == "sales.csv" for r in loaded.rejects)
    assert list(loaded.frame.index) == [2, 11]
    assert loaded.frame["units"].tolist() == [4, 5]
    assert loaded.frame["promo"].tolist() == [False, True]


# -- labels ---------------------------------------------------------------------------------


def test_labels_good_and_bad_rows(tmp_path: Path) -> None:
    path = write(
        tmp_path / "labels.csv", LABELS_HEADER,
        "L1,S1,G1,0123,2.9",   # 2 good
        "L2,S1,G1,0124,7.5",   # 3 unknown tag type
        "L1,S1,G2,0125,4.2",   # 4 duplicate label id
        "L3,S1,G1,,1.54",      # 5 empty sku
        "L4,S1,G1,0126,",      # 6 empty tag type
        "L5,S1,G2,0127,1.54",  # 7 good
    )
    loaded = load_labels(path)
    reasons = by_row(loaded.rejects)
    assert reasons == {
        3: "tag_type must be one of 1.54, 2.9, 4.2: '7.5'",
        4: "duplicate label_id 'L1' (first occurrence kept)",
        5: "sku is empty",
        6: "tag_type is empty",
    }
    assert loaded.frame["label_id"].tolist() == ["L1", "L5"]
    assert loaded.frame["sku"].tolist() == ["0123", "0127"]
    assert loaded.frame.loc[2, "gateway"] == "G1"


# -- whole-file errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("loader", "name", "header", "missing"),
    [
        (load_products, "products.csv", "sku,name,category,brand,size,unit,price_cents", "cost_cents"),
        (load_sales, "sales.csv", "date,store,units,price_cents", "sku, promo"),
        (load_labels, "labels.csv", "label_id,store,sku,tag_type", "gateway"),
        (load_competitors, "competitors.csv", "date,sku,price_cents", "competitor"),
    ],
)
def test_missing_column_is_a_data_error(tmp_path: Path, loader, name: str, header: str, missing: str) -> None:
    path = write(tmp_path / name, header)
    with pytest.raises(DataError) as err:
        loader(path)
    message = str(err.value)
    assert "\n" not in message
    assert message == f"{path}: missing column(s): {missing}"


@pytest.mark.parametrize("loader", [load_products, load_sales, load_labels, load_competitors])
def test_missing_file_is_a_data_error(tmp_path: Path, loader) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(DataError) as err:
        loader(path)
    assert str(err.value) == f"{path}: file not found"


def test_empty_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "products.csv"
    path.write_text("")
    with pytest.raises(DataError) as err:
        load_products(path)
    assert "\n" not in str(err.value)
    assert str(err.value).startswith(f"{path}: ")


def test_header_only_file_loads_empty(tmp_path: Path) -> None:
    loaded = load_products(write(tmp_path / "products.csv", PRODUCTS_HEADER))
    assert loaded.rejects == [] and loaded.frame.empty


def test_load_store_requires_a_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a directory"):
        load_store(tmp_path / "missing")


# -- a store directory ----------------------------------------------------------------------


def test_load_store_rejects_rows_for_unknown_skus(tmp_path: Path) -> None:
    write(
        tmp_path / "products.csv", PRODUCTS_HEADER,
        "0123,Milk,dairy,Farm,1,l,55,99",   # 2
        "0124,Bread,bakery,B,1,pc,,199",    # 3 no cost: still a known product
        "0125,Broken,bakery,B,1,pc,10,x",   # 4 rejected, so not known either
    )
    write(
        tmp_path / "sales.csv", SALES_HEADER,
        "2024-03-01,S1,0123,4,99,0",   # 2 good
        "2024-03-01,S1,123,4,99,0",    # 3 "123" is not "0123"
        "2024-03-01,S1,0124,1,199,0",  # 4 good
        "2024-03-01,S1,0125,1,199,0",  # 5 its product was rejected
        "2024-03-01,S1,0123,x,99,0",   # 6 bad units (reported once, as bad units)
    )
    write(
        tmp_path / "labels.csv", LABELS_HEADER,
        "L1,S1,G1,0123,2.9",   # 2 good
        "L2,S1,G1,9999,2.9",   # 3 unknown sku
        "L3,S1,G1,0124,1.54",  # 4 good
    )
    store = load_store(tmp_path)
    rejects = {(r.file, r.row): r.reason for r in store.rejects}
    assert rejects == {
        ("products.csv", 4): "price_cents is not a whole number: 'x'",
        ("sales.csv", 6): "units is not a whole number: 'x'",
        ("sales.csv", 3): "sku '123' is not in products.csv",
        ("sales.csv", 5): "sku '0125' is not in products.csv",
        ("labels.csv", 3): "sku '9999' is not in products.csv",
    }
    assert store.products["sku"].tolist() == ["0123", "0124"]
    assert store.products["cost_cents"].isna().tolist() == [False, True]
    assert list(store.sales.index) == [2, 4]
    assert store.sales["sku"].tolist() == ["0123", "0124"]
    assert store.labels["label_id"].tolist() == ["L1", "L3"]


# -- the frames' types, and text that looks like something else ------------------------------


def test_sales_store_and_sku_are_categoricals_of_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path / "sales.csv", SALES_HEADER,
        "2024-03-01,007,0123,4,99,0",   # 2
        "2024-03-01,007,123,1,99,0",    # 3 "123" is another sku than "0123"
        "2024-03-02,007,0042,x,99,0",   # 4 rejected: its sku is not a category of the frame
        "2024-03-02,007,0123,2,79,1",   # 5
    )
    loaded = load_sales(path)
    frame = loaded.frame
    assert [(r.row, r.reason) for r in loaded.rejects] == [(4, "units is not a whole number: 'x'")]
    for col in ("store", "sku"):
        assert isinstance(frame[col].dtype, pd.CategoricalDtype)
        assert all(isinstance(c, str) for c in frame[col].cat.categories)
    assert sorted(frame["sku"].cat.categories) == ["0123", "123"]
    assert list(frame["store"].cat.categories) == ["007"]
    assert frame["sku"].tolist() == ["0123", "123", "0123"]
    assert frame["sku"].isin({"0123"}).tolist() == [True, False, True]
    assert frame["date"].dtype == "datetime64[ns]"
    assert frame["units"].dtype == "int64" and frame["price_cents"].dtype == "int64"
    assert frame["promo"].dtype == bool
    assert list(frame.index) == [2, 3, 5] and frame.index.name == "row"


def test_sales_dates_outside_the_frames_datetime_range_are_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path / "sales.csv", SALES_HEADER,
        "1677-09-22,S1,0123,4,99,0",
        "2300-01-01,S1,0123,4,99,0",  # 3 a real date, but not a datetime64[ns]
        "0001-01-01,S1,0123,4,99,0",  # 4
        "2262-04-11,S1,0123,4,99,0",
    )
    loaded = load_sales(path)
    assert by_row(loaded.rejects) == {
        3: "date is out of range: '2300-01-01'",
        4: "date is out of range: '0001-01-01'",
    }
    assert loaded.frame["date"].dt.year.tolist() == [1677, 2262]


def test_header_only_sales_file_loads_empty_with_its_types(tmp_path: Path) -> None:
    frame = load_sales(write(tmp_path / "sales.csv", SALES_HEADER + ",stock")).frame
    assert frame.empty and list(frame.columns) == [*SALES_HEADER.split(","), "stock"]
    assert isinstance(frame["sku"].dtype, pd.CategoricalDtype)
    assert frame["date"].dtype == "datetime64[ns]" and frame["stock"].dtype == "Int64"


def test_sales_stock_empty_is_missing_and_bad_stock_is_rejected(tmp_path: Path) -> None:
    path = write(
        tmp_path / "sales.csv", SALES_HEADER + ",stock",
        "2024-03-01,S1,0123,4,99,0,10",   # 2
        "2024-03-02,S1,0123,4,99,0,",     # 3 empty: not known, still a good row
        "2024-03-03,S1,0123,4,99,0,-2",   # 4
        "2024-03-04,S1,0123,4,99,0,lots",  # 5
        "2024-03-05,S1,0123,4,99,0,2.5",  # 6
        "2024-03-06,S1,0123,4,99,0, 7 ",  # 7
        "2024-03-07,S1,0123,x,99,0,-2",   # 8 bad units comes first
    )
    loaded = load_sales(path)
    assert by_row(loaded.rejects) == {
        4: "stock must be >= 0",
        5: "stock is not a whole number: 'lots'",
        6: "stock is not a whole number: '2.5'",
        8: "units is not a whole number: 'x'",
    }
    frame = loaded.frame
    assert frame["stock"].dtype == "Int64"
    assert list(frame.index) == [2, 3, 7]
    assert frame["stock"].isna().tolist() == [False, True, False]
    assert frame["stock"].dropna().tolist() == [10, 7]


def test_a_value_with_and_without_spaces_is_one_value(tmp_path: Path) -> None:
    write(
        tmp_path / "products.csv", PRODUCTS_HEADER,
        "0123,Milk,dairy,Farm,1,l,55,99",      # 2
        " 0123 ,Milk again,dairy,Farm,1,l,55,99",  # 3 the same sku
        "0124 ,Bread,bakery,B,1,pc,,199",      # 4
    )
    write(
        tmp_path / "sales.csv", SALES_HEADER,
        "2024-03-01,S1,0123,4,99,0",
        "2024-03-01 , S1 , 0123 ,5,99,0",  # other units: an exact duplicate of line 2 would be dropped
        '2024-03-02,S1," 0124",1,199, 1 ',
        "2024-03-02,S1,\t0124\t,1,199,0",
    )
    write(tmp_path / "labels.csv", LABELS_HEADER, "L1,S1,G1, 0123,2.9", " L1 ,S1,G1,0124,2.9")
    store = load_store(tmp_path)
    assert {(r.file, r.row): r.reason for r in store.rejects} == {
        ("products.csv", 3): "duplicate sku '0123' (first occurrence kept)",
        ("labels.csv", 3): "duplicate label_id 'L1' (first occurrence kept)",
    }
    assert store.products["sku"].tolist() == ["0123", "0124"]
    sales = store.sales
    assert sorted(sales["sku"].cat.categories) == ["0123", "0124"]
    assert list(sales["store"].cat.categories) == ["S1"]
    assert sales["sku"].tolist() == ["0123", "0123", "0124", "0124"]
    assert sales["date"].nunique() == 2
    assert sales["promo"].tolist() == [False, False, True, False]
    assert store.labels["sku"].tolist() == ["0123"]


@pytest.mark.parametrize("thousands", ["\x1f", None], ids=["categories", "typed-categories-fallback"])
def test_text_that_looks_like_numbers_or_booleans_stays_text(tmp_path: Path, monkeypatch, thousands) -> None:
    # Without the thousands option pandas >= 3.1 types the categories of numbers and booleans;
    # the loader must then read those columns again as plain text, not lose "0123" or "TRUE".
    monkeypatch.setitem(data._CSV_OPTIONS, "thousands", thousands)
    write(
        tmp_path / "products.csv", PRODUCTS_HEADER,
        "0123,TRUE,1,true,1,l,55,99",
        "123,False,2,FALSE,1,l,55,99",
    )
    write(
        tmp_path / "sales.csv", SALES_HEADER,
        "2024-03-01,007,0123,4,99,TRUE",
        "2024-03-01,007,123,4,99,false",
        "2024-03-01,007,00123,4,99,True",  # 4 not a product
    )
    write(tmp_path / "labels.csv", LABELS_HEADER, "001,1,1,0123,2.9", "1,1,1,123,4.2")
    store = load_store(tmp_path)
    assert [(r.file, r.row, r.reason) for r in store.rejects] == [
        ("sales.csv", 4, "sku '00123' is not in products.csv")
    ]
    products = store.products
    assert products["sku"].tolist() == ["0123", "123"]
    assert products["name"].tolist() == ["TRUE", "False"]
    assert products["category"].tolist() == ["1", "2"]
    assert products["brand"].tolist() == ["true", "FALSE"]
    assert store.sales["sku"].tolist() == ["0123", "123"]
    assert store.sales["store"].tolist() == ["007", "007"]
    assert store.sales["promo"].tolist() == [True, False]
    assert store.labels["label_id"].tolist() == ["001", "1"]
    assert store.labels["tag_type"].tolist() == ["2.9", "4.2"]


def test_parquet_goes_through_the_same_checks(tmp_path: Path, monkeypatch) -> None:
    # No Parquet engine is needed: pandas' reader is replaced by the frame it would return.
    table = pd.DataFrame({
        "date": ["2024-03-01", "2024-03-02", "2024-03-03"],
        "store": ["S1", " S1", "S1"],
        "sku": ["0123", "0123 ", None],
        "units": [4, 5, 6],  # typed columns are read as their text
        "price_cents": [99.0, 2.5, 99.0],
        "promo": [False, True, False],
    })
    monkeypatch.setattr(pd, "read_parquet", lambda path, **_: table.copy())
    path = tmp_path / "sales.parquet"
    path.touch()
    loaded = load_sales(path)
    assert by_row(loaded.rejects) == {3: "price_cents is not a whole number: '2.5'", 4: "sku is empty"}
    frame = loaded.frame
    assert frame["sku"].tolist() == ["0123"] and list(frame.index) == [2]
    assert frame["units"].tolist() == [4] and frame["price_cents"].tolist() == [99]
    assert frame["promo"].tolist() == [False]


# -- a large file: bad rows found by their exact line ----------------------------------------


def test_large_file_reports_injected_bad_rows_at_their_lines(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(data._CSV_OPTIONS, "chunksize", 30_011)  # many chunks, new values in late ones
    n_skus, rows = 500, 210_000
    rng = np.random.default_rng(3)
    skus = np.array([f"{i:05d}" for i in range(n_skus)], dtype=object)
    write(
        tmp_path / "products.csv", PRODUCTS_HEADER,
        *[f"{sku},Item {sku},cat{i % 7},Brand,1,pcs,50,{100 + i}" for i, sku in enumerate(skus)],
    )
    write(tmp_path / "labels.csv", LABELS_HEADER, *[f"L{sku},S1,G1,{sku},2.9" for sku in skus])
    day = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.arange(rows) // n_skus, unit="D")
    dates = day.strftime("%Y-%m-%d").to_numpy(dtype=object)
    sku = skus[np.arange(rows) % n_skus]
    units = rng.integers(0, 40, rows)
    price = rng.integers(100, 900, rows)
    promo = rng.integers(0, 2, rows)
    stock = rng.integers(0, 99, rows)
    lines = [
        f"{d},S1,{s},{u},{p},{m},{k}" for d, s, u, p, m, k in zip(dates, sku, units, price, promo, stock, strict=True)
    ]
    bad = {  # line number -> (field index, text, reason)
        2: (3, "-1", "units must be >= 0"),
        7: (1, "", "store is empty"),
        30_012: (3, "x", "units is not a whole number: 'x'"),  # first row of the second chunk
        77_777: (4, "0", "price_cents must be >= 1"),
        123_457: (0, "2024-13-01", "date is not YYYY-MM-DD: '2024-13-01'"),
        150_001: (2, "99999", "sku '99999' is not in products.csv"),
        180_000: (6, "-3", "stock must be >= 0"),
        rows + 1: (5, "maybe", "promo is not a boolean: 'maybe'"),  # the last line
    }
    for line, (field, text, _) in bad.items():
        parts = lines[line - 2].split(",")
        parts[field] = text
        lines[line - 2] = ",".join(parts)
    # Two problems in one row: only the first (the date) is reported.
    lines[99_998] = "2024-99-99,S1,00001,x,0,maybe,1"
    bad[100_000] = (0, "", "date is not YYYY-MM-DD: '2024-99-99'")
    write(tmp_path / "sales.csv", SALES_HEADER + ",stock", *lines)

    store = load_store(tmp_path)
    assert sorted((r.row, r.reason) for r in store.rejects) == sorted((line, why) for line, (_, _, why) in bad.items())
    assert all(r.file == "sales.csv" for r in store.rejects)
    sales = store.sales
    good = np.setdiff1d(np.arange(rows), np.array(sorted(bad)) - 2)
    assert len(sales) == rows - len(bad)
    assert (sales.index.to_numpy() == good + 2).all()
    assert (sales["units"].to_numpy() == units[good]).all()
    assert (sales["price_cents"].to_numpy() == price[good]).all()
    assert (sales["promo"].to_numpy() == promo[good].astype(bool)).all()
    assert (sales["stock"].to_numpy(dtype=np.int64) == stock[good]).all()
    assert (sales["sku"].astype(str).to_numpy() == sku[good]).all()
    assert (sales["date"].to_numpy() == day.to_numpy()[good]).all()
    assert sorted(sales["sku"].cat.categories) == list(skus)  # "99999" was only in a rejected row
    assert list(sales["store"].cat.categories) == ["S1"]


# -- families, ladders, tiers ----------------------------------------------------------------


def test_family_ladder_and_tier_load_as_optional_text(tmp_path: Path) -> None:
    path = write(
        tmp_path / "products.csv", GROUPS_HEADER,
        "0001,Cola 0.33,beverages,Fizz,0.33,l,20,79,,cola,",
        "0002,Cola 1.5,beverages,Fizz,1.5,l,60,199, fizz-cola ,cola,",
        "0003,Cherry Cola 1.5,beverages,Fizz,1.5,l,60,199,fizz-cola,,",
        "0004,Store Cola 1.5,beverages,Own,1.5,l,40,149,,, 0002 ",  # tier text is stripped too
    )
    loaded = load_products(path)
    assert loaded.rejects == []
    frame = loaded.frame
    for col in ("family", "ladder", "tier"):
        assert frame[col].dtype == "string"
    assert frame["family"].tolist() == [pd.NA, "fizz-cola", "fizz-cola", pd.NA]
    assert frame["ladder"].tolist() == ["cola", "cola", pd.NA, pd.NA]
    assert frame["tier"].tolist() == [pd.NA, pd.NA, pd.NA, "0002"]


def test_ladder_needs_a_size_above_zero(tmp_path: Path) -> None:
    path = write(
        tmp_path / "products.csv", GROUPS_HEADER,
        "A1,Small,snacks,B,150,g,50,99,,chips,",    # 2 good
        "A2,No size,snacks,B,,g,50,99,,chips,",     # 3
        "A3,Zero,snacks,B,0,g,50,99,,chips,",       # 4
        "A4,Negative,snacks,B,-2,g,50,99,,chips,",  # 5
        "A5,Infinite,snacks,B,inf,g,50,99,,chips,",  # 6
        "A6,Text,snacks,B,big,g,50,99,,chips,",     # 7 not a number: that reason comes first
        "A7,No ladder,snacks,B,,g,50,99,,,",        # 8 good: no ladder, no size needed
        "A8,Bad price,snacks,B,,g,50,x,,chips,",    # 9 the price is the first problem
        "A9,Same size,snacks,B,150,g,50,99,,chips,",  # 10 good: repeated sizes are the engine's to report
        "B1,Other unit,snacks,B,0.2,kg,50,99,,chips,",  # 11 good: so are mixed units
    )
    loaded = load_products(path)
    assert by_row(loaded.rejects) == {
        3: "size is empty (ladder 'chips' needs a size > 0)",
        4: "size must be finite and > 0 for ladder 'chips': '0'",
        5: "size must be finite and > 0 for ladder 'chips': '-2'",
        6: "size must be finite and > 0 for ladder 'chips': 'inf'",
        7: "size is not a number: 'big'",
        9: "price_cents is not a whole number: 'x'",
    }
    assert loaded.frame["sku"].tolist() == ["A1", "A7", "A9", "B1"]


def test_tier_must_name_another_kept_product(tmp_path: Path) -> None:
    path = write(
        tmp_path / "products.csv", GROUPS_HEADER,
        "N1,National,dairy,Big,1,l,80,149,,,",     # 2 good
        "P1,Own,dairy,Own,1,l,60,119,,,N1",        # 3 good
        "P2,Self,dairy,Own,1,l,60,119,,,P2",       # 4 names itself
        "P3,Unknown,dairy,Own,1,l,60,119,,,9999",  # 5 no such sku
        "N2,Broken,dairy,Big,1,l,80,x,,,",         # 6 rejected: bad price
        "P4,Broken ref,dairy,Own,1,l,60,119,,,N2",  # 7 its reference was rejected
        "P5,Chain,dairy,Own,1,l,60,119,,,P4",      # 8 ... and so, in turn, was this one's
        "P6,Case,dairy,Own,1,l,60,119,,,n1",       # 9 SKUs are case-sensitive text
        "N1,Duplicate,dairy,Big,1,l,80,149,,,",    # 10 duplicate: N1 (line 2) is still kept
        "P7,Dup ref,dairy,Own,1,l,60,119,,,N1",    # 11 good: names the kept N1
        "P8,Later,dairy,Own,1,l,60,119,,,N3",      # 12 good: the reference may come later
        "N3,National 2,dairy,Big,1,l,80,149,,,",   # 13 good
    )
    loaded = load_products(path)
    assert by_row(loaded.rejects) == {
        4: "tier 'P2' is the product's own sku",
        5: "tier '9999' is not in products.csv",
        6: "price_cents is not a whole number: 'x'",
        7: "tier 'N2' is not in products.csv",
        8: "tier 'P4' is not in products.csv",
        9: "tier 'n1' is not in products.csv",
        10: "duplicate sku 'N1' (first occurrence kept)",
    }
    frame = loaded.frame
    assert frame["sku"].tolist() == ["N1", "P1", "P7", "P8", "N3"]
    assert set(frame["tier"].dropna()) <= set(frame["sku"])


def test_products_without_the_optional_columns_have_none(tmp_path: Path) -> None:
    frame = load_products(write(tmp_path / "products.csv", PRODUCTS_HEADER, "0001,Milk,dairy,B,1,l,50,99")).frame
    assert not {"family", "ladder", "tier"} & set(frame.columns)


# -- competitors ----------------------------------------------------------------------------


def test_competitors_good_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "competitors.csv", COMPETITORS_HEADER,
        "2026-10-01,0123,compA,95",
        "2026-10-02, 0123 ,compB, 99 ",
        "2026-10-02,0123,compA,109",
    )
    loaded = load_competitors(path)
    assert loaded.rejects == []
    frame = loaded.frame
    assert list(frame.columns) == COMPETITOR_COLUMNS
    assert frame["date"].dtype == "datetime64[ns]"
    assert frame["sku"].dtype == "string" and frame["competitor"].dtype == "string"
    assert frame["price_cents"].dtype == "int64"
    assert frame["sku"].tolist() == ["0123"] * 3
    assert frame["price_cents"].tolist() == [95, 99, 109]
    assert list(frame.index) == [2, 3, 4] and frame.index.name == "row"


def test_competitors_bad_rows_rejected_with_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path / "competitors.csv", COMPETITORS_HEADER,
        "2026-10-01,0123,compA,95",     # 2 good
        "2026-10-01,,compA,95",         # 3 empty sku
        "2026-10-01,0123,,95",          # 4 empty competitor
        "10/01/2026,0123,compB,95",     # 5 bad date
        "2026-10-02,0123,compA,0",      # 6 price must be >= 1
        "2026-10-02,0123,compA,0.95",   # 7 not cents
        "2026-10-02,0123,compA,",       # 8 empty price
        "2026-10-01,0123,compA,99",     # 9 the same observation again
        "2026-10-01,0124,compA,99",     # 10 good: another sku
        "2026-10-03,0123,compA,x",      # 11 bad price ...
        "2026-10-03,0123,compA,97",     # 12 ... so this is the first good one of that day: kept
        "2300-01-01,0123,compA,97",     # 13 outside the frame's dates
    )
    loaded = load_competitors(path)
    assert by_row(loaded.rejects) == {
        3: "sku is empty",
        4: "competitor is empty",
        5: "date is not YYYY-MM-DD: '10/01/2026'",
        6: "price_cents must be >= 1",
        7: "price_cents is not a whole number: '0.95'",
        8: "price_cents is empty",
        9: "duplicate observation of sku '0123' by competitor 'compA' on 2026-10-01 (first occurrence kept)",
        11: "price_cents is not a whole number: 'x'",
        13: "date is out of range: '2300-01-01'",
    }
    assert all(r.file == "competitors.csv" for r in loaded.rejects)
    assert list(loaded.frame.index) == [2, 10, 12]
    assert loaded.frame["price_cents"].tolist() == [95, 99, 97]


def test_competitors_parquet_goes_through_the_same_checks(tmp_path: Path, monkeypatch) -> None:
    table = pd.DataFrame({
        "date": ["2026-10-01", "2026-10-02"],
        "sku": ["0123", "0123"],
        "competitor": ["compA", "compA"],
        "price_cents": [95, -1],
    })
    monkeypatch.setattr(pd, "read_parquet", lambda path, **_: table.copy())
    path = tmp_path / "competitors.parquet"
    path.touch()
    loaded = load_competitors(path)
    assert by_row(loaded.rejects) == {3: "price_cents must be >= 1"}
    assert loaded.frame["price_cents"].tolist() == [95]


def store_files(directory: Path) -> None:
    write(directory / "products.csv", PRODUCTS_HEADER, "0123,Milk,dairy,Farm,1,l,55,99", "0124,Bread,bakery,B,1,pc,,199")
    write(directory / "sales.csv", SALES_HEADER, "2024-03-01,S1,0123,4,99,0")
    write(directory / "labels.csv", LABELS_HEADER, "L1,S1,G1,0123,2.9")


def test_load_store_without_competitors_has_an_empty_frame(tmp_path: Path) -> None:
    store_files(tmp_path)
    store = load_store(tmp_path)
    assert store.rejects == []
    frame = store.competitors
    assert frame.empty and list(frame.columns) == COMPETITOR_COLUMNS
    assert frame.dtypes.equals(empty_competitors().dtypes)
    assert frame["date"].dtype == "datetime64[ns]" and frame["price_cents"].dtype == "int64"
    assert competitor_reference(frame).empty


def test_load_store_loads_competitors_and_rejects_unknown_skus(tmp_path: Path) -> None:
    store_files(tmp_path)
    write(
        tmp_path / COMPETITORS_FILE, COMPETITORS_HEADER,
        "2024-03-01,0123,compA,95",   # 2 good
        "2024-03-01,123,compA,95",    # 3 "123" is not "0123"
        "2024-03-01,0124,compB,0",    # 4 bad price (reported once, as bad price)
        "2024-03-02,0124,compB,189",  # 5 good: a product without a cost is still a product
    )
    store = load_store(tmp_path)
    assert {(r.file, r.row): r.reason for r in store.rejects} == {
        ("competitors.csv", 3): "sku '123' is not in products.csv",
        ("competitors.csv", 4): "price_cents must be >= 1",
    }
    assert store.competitors["sku"].tolist() == ["0123", "0124"]
    assert list(store.competitors.index) == [2, 5]
    # A header-only file loads like no file.
    write(tmp_path / COMPETITORS_FILE, COMPETITORS_HEADER)
    assert load_store(tmp_path).competitors.dtypes.equals(empty_competitors().dtypes)


def test_competitor_reference_is_the_lowest_latest_price() -> None:
    frame = pd.DataFrame(
        [
            ("2026-10-01", "0123", "compA", 90),   # older: replaced by compA's 10-05 price
            ("2026-10-05", "0123", "compA", 120),
            ("2026-10-03", "0123", "compB", 110),  # compB's latest: the lowest latest
            ("2026-09-01", "0123", "compB", 80),
            ("2026-10-02", "0042", "compA", 250),
            ("2026-10-02", "0042", "compA", 240),  # the same date twice: the lower counts
            ("2026-10-04", "7", "compB", 55),
        ],
        columns=COMPETITOR_COLUMNS,
    ).assign(date=lambda f: pd.to_datetime(f["date"]))
    reference = competitor_reference(frame.sample(frac=1, random_state=3))  # order does not matter
    assert reference.dtype == "int64" and reference.index.name == "sku"
    assert all(isinstance(sku, str) for sku in reference.index)
    assert reference.to_dict() == {"0042": 240, "0123": 110, "7": 55}
    assert list(reference.index) == sorted(reference.index)


def test_competitor_reference_of_a_loaded_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "competitors.csv", COMPETITORS_HEADER,
        "2026-10-05,0123,compA,129",
        "2026-10-01,0123,compA,99",
        "2026-10-02,0123,compB,119",
    )
    assert competitor_reference(load_competitors(path).frame).to_dict() == {"0123": 119}


# -- ids: what becomes an MQTT topic level, and SKUs ------------------------------------------------

ID_RULE = "has a character other than A-Z a-z 0-9 . _ -"


def test_id_pattern_is_one_exported_constant() -> None:
    assert data.ID_PATTERN.fullmatch("L-0001_a.B")
    assert data.ID_PATTERN.fullmatch("x" * 64) and not data.ID_PATTERN.fullmatch("x" * 65)
    for bad in ("", "L#1", "L+1", "gw/1", "L\x001", "L 1", "Lé", "L\n1"):
        assert not data.ID_PATTERN.fullmatch(bad), bad


def test_label_ids_gateways_and_stores_must_be_topic_levels(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(
        "\n".join([
            LABELS_HEADER,
            "L1,store-001,gw-1,0001,2.9",
            "L#1,store-001,gw-1,0002,2.9",
            "L+1,store-001,gw-1,0003,2.9",
            "L\x001,store-001,gw-1,0004,2.9",
            "L" + "x" * 64 + ",store-001,gw-1,0005,2.9",
            "L6,store-001,gw/1,0006,2.9",
            "L7,store#1,gw-1,0007,2.9",
            "L8.a_b-C,store-001,gw.2_b-C,0008,1.54",
        ]).encode() + b"\n"
    )
    loaded = load_labels(path)
    assert by_row(loaded.rejects) == {
        3: f"label_id {ID_RULE}: 'L#1'",
        4: f"label_id {ID_RULE}: 'L+1'",
        5: f"label_id {ID_RULE}: 'L\\x001'",
        6: "label_id is 65 characters long, at most 64 allowed: 'L" + "x" * 64 + "'",
        7: f"gateway {ID_RULE}: 'gw/1'",
        8: f"store {ID_RULE}: 'store#1'",
    }
    assert str(loaded.rejects[0]) == f"labels.csv:3: label_id {ID_RULE}: 'L#1'"
    assert list(loaded.frame["label_id"]) == ["L1", "L8.a_b-C"]
    assert all("\x00" not in str(r) and "\n" not in str(r) for r in loaded.rejects)


def test_an_empty_id_keeps_its_empty_reason(tmp_path: Path) -> None:
    path = write(tmp_path / "labels.csv", LABELS_HEADER, ",store-001,gw-1,0001,2.9")
    assert by_row(load_labels(path).rejects) == {2: "label_id is empty"}


def test_sales_store_must_be_a_topic_level(tmp_path: Path) -> None:
    path = write(tmp_path / "sales.csv", SALES_HEADER, "2026-10-01,S/1,0123,2,99,0", "2026-10-01,S1,0123,2,99,0")
    assert by_row(load_sales(path).rejects) == {2: f"store {ID_RULE}: 'S/1'"}


def test_skus_may_hold_any_printable_text_but_no_control_character_nor_more_than_64(tmp_path: Path) -> None:
    """A SKU never becomes a topic level ('/', '+', '#' are fine), but it is stored in 64-character
    database columns and a NUL byte cannot be stored in PostgreSQL at all."""
    path = tmp_path / "products.csv"
    long = "9" * 65
    path.write_bytes(
        "\n".join([
            PRODUCTS_HEADER,
            "AB/12+3#4,Tea,drinks,Leaf,1,pc,50,99",
            "A\x00B,Tea,drinks,Leaf,1,pc,50,99",
            "A\x1bC,Tea,drinks,Leaf,1,pc,50,99",
            f"{long},Tea,drinks,Leaf,1,pc,50,99",
            f"{long[:64]},Tea,drinks,Leaf,1,pc,50,99",
        ]).encode() + b"\n"
    )
    loaded = load_products(path)
    assert by_row(loaded.rejects) == {
        3: "sku has a control character: 'A\\x00B'",
        4: "sku has a control character: 'A\\x1bC'",
        5: f"sku is 65 characters long, at most 64 allowed: '{long}'",
    }
    assert list(loaded.frame["sku"]) == ["AB/12+3#4", long[:64]]


def test_the_sku_rule_holds_in_every_file(tmp_path: Path) -> None:
    write(tmp_path / "products.csv", PRODUCTS_HEADER, "0123,Milk,dairy,Farm,1,l,55,99")
    (tmp_path / "sales.csv").write_bytes(f"{SALES_HEADER}\n2026-10-01,S1,01\x0023,2,99,0\n".encode())
    (tmp_path / "labels.csv").write_bytes(f"{LABELS_HEADER}\nL1,S1,gw-1,01\x0023,2.9\n".encode())
    (tmp_path / "competitors.csv").write_bytes(f"{COMPETITORS_HEADER}\n2026-10-01,01\x0023,compA,99\n".encode())
    store = load_store(tmp_path)
    assert {(r.file, r.row): r.reason for r in store.rejects} == {
        (name, 2): "sku has a control character: '01\\x0023'"
        for name in ("sales.csv", "labels.csv", "competitors.csv")
    }


def test_shown_values_are_one_line_and_cut() -> None:
    assert data.shown("a\nb\x00") == "a\\x0ab\\x00"
    assert len(data.shown("x" * 500)) == 80


# -- exact duplicate sales rows, and a store without labels ---------------------------------


def test_exact_duplicate_sales_rows_are_dropped_and_reported_with_their_lines(tmp_path: Path) -> None:
    path = write(
        tmp_path / "sales.csv", SALES_HEADER,
        "2024-03-01,S1,0123,4,99,0",    # 2 kept
        "2024-03-01,S1,0123,4,99,0",    # 3 duplicate of 2
        "2024-03-01,S1,0123,5,99,0",    # 4 same sku/day, other units: not an exact duplicate, kept
        "2024-03-02,S1,0123,x,99,0",    # 5 rejected
        "2024-03-02,S1,0123,x,99,0",    # 6 rejected too (a rejected row is not a duplicate's original)
        " 2024-03-01 ,S1, 0123,4,99,0",  # 7 duplicate of 2 after stripping
        "2024-03-01,S1,0123,5,99,0",    # 8 duplicate of 4
    )
    loaded = load_sales(path)
    assert loaded.rows == 7
    assert by_row(loaded.rejects) == {5: "units is not a whole number: 'x'", 6: "units is not a whole number: 'x'"}
    assert [(d.file, d.row, d.reason) for d in loaded.duplicates] == [
        ("sales.csv", 3, "exact duplicate of line 2"),
        ("sales.csv", 7, "exact duplicate of line 2"),
        ("sales.csv", 8, "exact duplicate of line 4"),
    ]
    assert list(loaded.frame.index) == [2, 4]
    assert loaded.frame["units"].tolist() == [4, 5]


def test_sales_without_duplicates_report_none(tmp_path: Path) -> None:
    path = write(tmp_path / "sales.csv", SALES_HEADER, "2024-03-01,S1,0123,4,99,0", "2024-03-02,S1,0123,4,99,0")
    loaded = load_sales(path)
    assert loaded.duplicates == [] and loaded.rows == 2 and len(loaded.frame) == 2


def test_load_store_counts_rows_rejects_and_duplicates_per_file(tmp_path: Path) -> None:
    write(tmp_path / "products.csv", PRODUCTS_HEADER, "0123,Milk,dairy,Farm,1,l,55,99")
    write(
        tmp_path / "sales.csv", SALES_HEADER,
        "2024-03-01,S1,0123,4,99,0", "2024-03-01,S1,0123,4,99,0", "2024-03-01,S1,9999,4,99,0",
    )
    write(tmp_path / "labels.csv", LABELS_HEADER, "L1,S1,G1,0123,2.9")
    store = load_store(tmp_path)
    assert [str(d) for d in store.duplicates] == ["sales.csv:3: exact duplicate of line 2"]
    assert store.counts("sales.csv") == {"rows_read": 3, "rejected": 1, "duplicates": 1}
    assert store.counts("labels.csv") == {"rows_read": 1, "rejected": 0, "duplicates": 0}
    assert list(store.sales.index) == [2]


def test_labels_are_optional_only_when_asked(tmp_path: Path) -> None:
    write(tmp_path / "products.csv", PRODUCTS_HEADER, "0123,Milk,dairy,Farm,1,l,55,99")
    write(tmp_path / "sales.csv", SALES_HEADER, "2024-03-01,S1,0123,4,99,0")
    with pytest.raises(DataError, match="labels.csv: file not found"):
        load_store(tmp_path)
    store = load_store(tmp_path, require_labels=False)
    assert len(store.labels) == 0 and list(store.labels.columns) == data.LABEL_COLUMNS
    assert "labels.csv" not in store.rows_read and store.store_id == "S1"


def test_a_sales_store_says_where_its_sales_came_from(tmp_path: Path) -> None:
    write(tmp_path / "products.csv", PRODUCTS_HEADER, "0123,Milk,dairy,Farm,1,l,55,99")
    write(tmp_path / "sales.csv", SALES_HEADER, "2024-03-01,S1,0123,4,99,0")
    store = load_store(tmp_path, require_labels=False)
    assert store.sales_file == "sales.csv" and store.receipt_counts is None and store.listing is None
    assert store.counts("sales.csv") == {"rows_read": 1, "rejected": 0, "duplicates": 0}  # no netting keys
    assert store.counts("receipts.csv") == {"rows_read": 0, "rejected": 0, "duplicates": 0}


def test_sales_and_receipts_together_are_refused_before_anything_is_read(tmp_path: Path) -> None:
    write(tmp_path / "products.csv", PRODUCTS_HEADER, "0123,Milk,dairy,Farm,1,l,55,99")
    write(tmp_path / "sales.csv", SALES_HEADER, "2024-03-01,S1,0123,4,99,0")
    write(tmp_path / "receipts.csv", "date,store,sku,quantity,unit_price_cents,promo", "2024-03-01,S1,0123,4,99,0")
    with pytest.raises(DataError, match=r"has both sales\.csv and receipts\.csv; keep one"):
        load_store(tmp_path, require_labels=False)
    (tmp_path / "sales.csv").unlink()
    store = load_store(tmp_path, require_labels=False)
    assert store.sales_file == "receipts.csv" and store.sales["units"].tolist() == [4]


def test_a_present_assortment_missing_a_column_is_a_data_error(tmp_path: Path) -> None:
    write(tmp_path / "products.csv", PRODUCTS_HEADER, "0123,Milk,dairy,Farm,1,l,55,99")
    write(tmp_path / "sales.csv", SALES_HEADER, "2024-03-01,S1,0123,4,99,0")
    write(tmp_path / "assortment.csv", "sku,listed_from", "0123,2024-03-01")
    with pytest.raises(DataError, match="assortment.csv: missing column"):
        load_store(tmp_path, require_labels=False)
