"""pricing.data: the data contracts. Good rows load typed; each bad row is rejected with its file
line number (header = line 1) and a readable reason, and never hides the good rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pricing import data
from pricing.data import (
    DataError,
    Reject,
    load_labels,
    load_products,
    load_sales,
    load_store,
)

PRODUCTS_HEADER = "sku,name,category,brand,size,unit,cost_cents,price_cents"
SALES_HEADER = "date,store,sku,units,price_cents,promo"
LABELS_HEADER = "label_id,store,gateway,sku,tag_type"


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
    ],
)
def test_missing_column_is_a_data_error(tmp_path: Path, loader, name: str, header: str, missing: str) -> None:
    path = write(tmp_path / name, header)
    with pytest.raises(DataError) as err:
        loader(path)
    message = str(err.value)
    assert "\n" not in message
    assert message == f"{path}: missing column(s): {missing}"


@pytest.mark.parametrize("loader", [load_products, load_sales, load_labels])
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
        "2024-03-01 , S1 , 0123 ,4,99,0",
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
