"""The chain data contract (pricing.core.chain_data): stores.csv checked row by row, zones,
zone prices, and the sales of some stores read without touching the others' partitions."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pricing.core.chain_data import (
    CHAIN_FILES,
    STORE_COLUMNS,
    ZONE_PRICE_COLUMNS,
    ChainData,
    chain_zones,
    load_store_sales,
    load_stores,
    load_zone_prices,
    partition_dir,
    read_store_sales,
    zone_prices,
)
from pricing.core.data import DataError, load_sales

REPO = Path(__file__).resolve().parents[3]
STORES = "store,zone,timezone,currency,gateways\n"
PRODUCTS = (
    "sku,name,category,brand,size,unit,cost_cents,price_cents\n"
    "0123,Milk,dairy,A,1,l,80,129\n"
    "0456,Bread,bakery,B,500,g,90,199\n"
    "0789,Soap,household,C,250,ml,60,149\n"
)


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _sales(stores: list[str], days: int = 3) -> pd.DataFrame:
    """Daily sales of three SKUs in each store, store by store."""
    rows = []
    for k, store in enumerate(stores):
        for d in range(days):
            for j, sku in enumerate(("0123", "0456", "0789")):
                rows.append({"date": f"2026-01-{d + 1:02d}", "store": store, "sku": sku,
                             "units": (k + d + j) % 5, "price_cents": 100 + 10 * j + d, "promo": d == 1,
                             "stock": 20 + j})
    return pd.DataFrame(rows)


def _parquet(directory: Path, sales: pd.DataFrame, *, with_store: bool = True) -> None:
    """sales/store=<id>/part-0.parquet per store of ``sales``: date as date32, sku as text."""
    for store, rows in sales.groupby("store", sort=False):
        _parquet_part(directory, str(store), rows, with_store=with_store)


def _parquet_part(directory: Path, partition: str, rows: pd.DataFrame, *, with_store: bool = True) -> None:
    """One partition's file, its store column (if any) as ``rows`` has it."""
    table = pa.table({
        "date": pa.array(pd.to_datetime(rows["date"]).dt.date, pa.date32()),
        **({"store": pa.array(rows["store"], pa.string())} if with_store else {}),
        "sku": pa.array(rows["sku"], pa.string()),
        "units": pa.array(rows["units"], pa.int32()),
        "price_cents": pa.array(rows["price_cents"], pa.int32()),
        "promo": pa.array(rows["promo"], pa.bool_()),
        "stock": pa.array(rows["stock"], pa.int32()),
    })
    folder = partition_dir(directory, partition)
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "part-0.parquet")


def _chain(directory: Path, stores: str, sales: pd.DataFrame | None = None, csv: bool = False) -> Path:
    _write(directory / "stores.csv", STORES + stores)
    _write(directory / "products.csv", PRODUCTS)
    if sales is not None:
        if csv:
            sales.to_csv(directory / "sales.csv", index=False)
        else:
            _parquet(directory, sales)
    return directory


THREE = "s001,z01,Europe/Berlin,EUR,2\ns002,z01,Europe/Berlin,EUR,1\ns003,z02,Europe/Paris,EUR,3\n"


# ---- stores.csv ---------------------------------------------------------------------------------


def test_stores_frame_and_zones(tmp_path: Path) -> None:
    table = load_stores(_chain(tmp_path, THREE))
    assert table.rejects == [] and table.rows == 3
    assert list(table.frame.columns) == STORE_COLUMNS
    assert table.frame["gateways"].dtype == np.int64 and table.frame["store"].dtype == "string"
    assert table.frame.index.tolist() == [2, 3, 4]
    assert table.stores == ["s001", "s002", "s003"]
    assert chain_zones(table) == {"z01": ["s001", "s002"], "z02": ["s003"]}
    assert chain_zones(table.frame) == chain_zones(table)


def test_bad_store_rows_are_rejected_with_line_and_reason(tmp_path: Path) -> None:
    rows = (
        "s001,z01,Europe/Berlin,EUR,2\n"  # 2 ok
        "s002,z01,Europe/Berln,EUR,2\n"  # 3
        "s003,z01,Europe/Berlin,eur,2\n"  # 4
        "s004,z01,Europe/Berlin,EUR,0\n"  # 5
        "s/5,z01,Europe/Berlin,EUR,1\n"  # 6
        "s001,z02,Europe/Berlin,EUR,1\n"  # 7
        "s007,,Europe/Berlin,EUR,1\n"  # 8
        "s008,z+1,Europe/Berlin,EUR,1\n"  # 9
        "s009,z01,../etc/passwd,EUR,1\n"  # 10
        "s010,z01,Europe/Berlin,EURO,1.5\n"  # 11: the currency first
        "s011,z01,Europe/Berlin,EUR,two\n"  # 12
        "s012,z01,Europe/Berlin,EUR,1,extra\n"  # 13
        " s013 ,z02, UTC ,USD,1\n"  # 14 ok (stripped)
    )
    table = load_stores(_chain(tmp_path, rows))
    assert [str(r) for r in table.rejects] == [
        "stores.csv:3: timezone is not an IANA time zone: 'Europe/Berln'",
        "stores.csv:4: currency is not an ISO 4217 code (three upper-case letters): 'eur'",
        "stores.csv:5: gateways must be >= 1",
        "stores.csv:6: store has a character other than A-Z a-z 0-9 . _ -: 's/5'",
        "stores.csv:7: duplicate store 's001' (first occurrence kept)",
        "stores.csv:8: zone is empty",
        "stores.csv:9: zone has a character other than A-Z a-z 0-9 . _ -: 'z+1'",
        "stores.csv:10: timezone is not an IANA time zone: '../etc/passwd'",
        "stores.csv:11: currency is not an ISO 4217 code (three upper-case letters): 'EURO'",
        "stores.csv:12: gateways is not a whole number: 'two'",
        "stores.csv:13: 6 fields, the header has 5 columns",
    ]
    assert table.stores == ["s001", "s013"]
    assert table.frame.loc[14].tolist() == ["s013", "z02", "UTC", "USD", 1]


def test_a_chain_without_a_valid_store_is_one_error(tmp_path: Path) -> None:
    _chain(tmp_path, "s001,z01,Mars/Olympus,EUR,1\n")
    with pytest.raises(DataError, match=r"stores\.csv: no valid store: stores\.csv:2: timezone"):
        ChainData.load(tmp_path, require_labels=False)
    (tmp_path / "stores.csv").write_text("store,zone,timezone\ns1,z1,UTC\n")
    with pytest.raises(DataError, match=r"missing column\(s\): currency, gateways"):
        load_stores(tmp_path)


# ---- zone prices and ChainData ------------------------------------------------------------------


def test_zone_prices_rejects_and_shelf_prices(tmp_path: Path) -> None:
    _chain(tmp_path, THREE)
    _write(tmp_path / "zone_prices.csv", "zone,sku,price_cents\n"
           "z01,0123,139\n"  # 2 ok
           "z09,0123,139\n"  # 3 no such zone
           "z02,9999,100\n"  # 4 no such sku
           "z01,0123,149\n"  # 5 repeated
           "z02,0456,0\n")  # 6 not >= 1
    assert list(zone_prices(tmp_path).columns) == ZONE_PRICE_COLUMNS
    assert [str(r) for r in load_zone_prices(tmp_path).rejects] == [
        "zone_prices.csv:5: duplicate zone price of sku '0123' in zone 'z01' (first occurrence kept)",
        "zone_prices.csv:6: price_cents must be >= 1",
    ]
    _write(tmp_path / "labels.csv", "label_id,store,gateway,sku,tag_type\n"
           "L1,s001,gw-01,0123,2.9\nL2,s003,gw-01,0456,2.9\nL3,s404,gw-01,0456,2.9\nL4,s001,gw-01,5555,2.9\n")
    chain = ChainData.load(tmp_path)
    assert [str(r) for r in chain.rejects] == [
        "zone_prices.csv:3: zone 'z09' is not in stores.csv",
        "zone_prices.csv:4: sku '9999' is not in products.csv",
        "zone_prices.csv:5: duplicate zone price of sku '0123' in zone 'z01' (first occurrence kept)",
        "zone_prices.csv:6: price_cents must be >= 1",
        "labels.csv:5: sku '5555' is not in products.csv",
        "labels.csv:4: store 's404' is not in stores.csv",
    ]
    assert chain.labels["label_id"].tolist() == ["L1", "L2"]
    assert chain.store_labels("s003")["label_id"].tolist() == ["L2"]
    assert chain.shelf_prices("z01").to_dict() == {"0123": 139, "0456": 199, "0789": 149}
    assert chain.shelf_prices("z02").to_dict() == {"0123": 129, "0456": 199, "0789": 149}
    assert chain.zone_of("s003") == "z02" and chain.zones == {"z01": ["s001", "s002"], "z02": ["s003"]}
    assert chain.rows_read == {"stores.csv": 3, "products.csv": 3, "zone_prices.csv": 5, "labels.csv": 4}


def test_chain_data_never_reads_sales(tmp_path: Path) -> None:
    _chain(tmp_path, THREE, _sales(["s001"]))
    (partition_dir(tmp_path, "s001") / "part-0.parquet").write_bytes(b"not parquet")
    chain = ChainData.load(tmp_path, require_labels=False)
    assert chain.store_ids == ["s001", "s002", "s003"] and len(chain.zone_prices) == 0 and len(chain.labels) == 0
    with pytest.raises(DataError, match=r"store=s001/part-0\.parquet: cannot read"):
        chain.sales(["s001"])
    with pytest.raises(DataError, match=r"no store 's404'"):
        chain.sales(["s404"])


# ---- sales of some stores -----------------------------------------------------------------------


def test_a_partition_is_read_without_touching_the_others(tmp_path: Path) -> None:
    sales = _sales(["s001", "s002", "s003"])
    _chain(tmp_path, THREE, sales)
    whole = read_store_sales(tmp_path, ["s002"])
    # Another store's file is garbage, the first in the directory (a dataset over sales/ would
    # read its footer for the schema and fail): reading s002 and s003 still works.
    (partition_dir(tmp_path, "s001") / "part-0.parquet").write_bytes(b"garbage")
    alone = read_store_sales(tmp_path, ["s002"])
    pd.testing.assert_frame_equal(alone, whole)
    assert set(alone["store"].astype(str)) == {"s002"} and len(alone) == 9
    assert set(read_store_sales(tmp_path, ["s002", "s003"])["store"].astype(str)) == {"s002", "s003"}
    with pytest.raises(DataError, match="cannot read"):
        read_store_sales(tmp_path, ["s001"])
    assert len(read_store_sales(tmp_path, ["s404"])) == 0  # a store without sales: no rows


@pytest.mark.parametrize("with_store", [True, False])
def test_csv_and_parquet_give_the_same_frame(tmp_path: Path, with_store: bool) -> None:
    sales = _sales(["s001", "s002", "s003"])
    sales.loc[sales.index % 7 == 0, "stock"] = None  # empty stock fields
    _chain(tmp_path / "csv", THREE, sales, csv=True)
    _write(tmp_path / "pq" / "stores.csv", STORES + THREE)
    parquet_sales = sales.copy()
    parquet_sales["stock"] = parquet_sales["stock"].astype("Int64")
    _parquet_nullable(tmp_path / "pq", parquet_sales, with_store=with_store)
    for stores in (["s002"], ["s001", "s003"]):
        from_csv = read_store_sales(tmp_path / "csv", stores)
        from_parquet = read_store_sales(tmp_path / "pq", stores)
        assert list(from_csv.columns) == ["date", "store", "sku", "units", "price_cents", "promo", "stock"]
        assert from_csv.dtypes.to_dict() == from_parquet.dtypes.to_dict()
        pd.testing.assert_frame_equal(_plain(from_csv), _plain(from_parquet))
        # ... and the same as the single-store reader's rows of those stores
        whole = load_sales(tmp_path / "csv" / "sales.csv").frame
        pd.testing.assert_frame_equal(_plain(from_csv), _plain(whole[whole["store"].isin(stores)]))
        assert from_csv.index.tolist() == whole.index[whole["store"].isin(stores)].tolist()  # file lines


def _parquet_nullable(directory: Path, sales: pd.DataFrame, *, with_store: bool) -> None:
    for store, rows in sales.groupby("store", sort=False):
        frame = rows.assign(date=pd.to_datetime(rows["date"]))  # as pandas writes a day: a timestamp
        if not with_store:
            frame = frame.drop(columns="store")
        folder = partition_dir(directory, str(store))
        folder.mkdir(parents=True)
        frame.to_parquet(folder / "part-0.parquet", index=False)


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Values only: categories as text (their order is not promised), a fresh index."""
    out = frame.reset_index(drop=True)
    for col in ("store", "sku"):
        out[col] = out[col].astype(str)
    return out


def test_sales_rows_rejected_with_file_and_row(tmp_path: Path) -> None:
    sales = _sales(["s001", "s002"], days=2)
    sales.loc[1, "units"] = -1  # s001, row 3 of its file
    _chain(tmp_path / "pq", THREE)
    _parquet_part(tmp_path / "pq", "s001", sales[sales["store"] == "s001"])
    other = sales[sales["store"] == "s002"].copy()
    other.loc[7, "store"] = "s001"  # row 3 of s002's file says s001: not its partition's store
    _parquet_part(tmp_path / "pq", "s002", other)
    loaded = load_store_sales(tmp_path / "pq", ["s001", "s002"], known={"0123", "0456"})
    assert [str(r) for r in loaded.rejects] == [
        "sales/store=s001/part-0.parquet:3: units must be >= 0",
        "sales/store=s002/part-0.parquet:3: store 's001' is not the store of its partition 'store=s002'",
        "sales/store=s001/part-0.parquet:4: sku '0789' is not in products.csv",
        "sales/store=s001/part-0.parquet:7: sku '0789' is not in products.csv",
        "sales/store=s002/part-0.parquet:4: sku '0789' is not in products.csv",
        "sales/store=s002/part-0.parquet:7: sku '0789' is not in products.csv",
    ]
    assert loaded.rows == 12 and len(loaded.frame) == 6
    # CSV: file lines; other stores' bad rows are not read; a long line is reported (whose it
    # is cannot be told) and the lines after it keep their numbers.
    lines = ("date,store,sku,units,price_cents,promo\n"
             "2026-01-01,s001,0123,1,100,0\n"  # 2
             "2026-01-01,s002,0123,-5,100,0\n"  # 3: s002, not read
             "2026-01-01,s001,0123,1,100,0,9\n"  # 4: long
             "2026-01-02,s001,0123,x,100,0\n"  # 5
             "2026-01-02,s001,0123,2,100,0\n"  # 6
             "2026-01-02,s001,0123,2,100,0\n")  # 7: duplicate of 6
    _chain(tmp_path / "csv", THREE)
    _write(tmp_path / "csv" / "sales.csv", lines)
    loaded = load_store_sales(tmp_path / "csv", ["s001"])
    assert [str(r) for r in loaded.rejects] == [
        "sales.csv:4: 7 fields, the header has 6 columns",
        "sales.csv:5: units is not a whole number: 'x'",
    ]
    assert [str(r) for r in loaded.duplicates] == ["sales.csv:7: exact duplicate of line 6"]
    assert loaded.frame.index.tolist() == [2, 6] and "stock" not in loaded.frame.columns


def test_exact_duplicates_across_part_files(tmp_path: Path) -> None:
    sales = _sales(["s001"], days=1)
    _chain(tmp_path, THREE, sales)
    folder = partition_dir(tmp_path, "s001")
    pq.write_table(pq.read_table(folder / "part-0.parquet").slice(1, 1), folder / "part-1.parquet")
    loaded = load_store_sales(tmp_path, ["s001"])
    assert [str(r) for r in loaded.duplicates] == [
        "sales/store=s001/part-1.parquet:2: exact duplicate of line 3 of sales/store=s001/part-0.parquet"
    ]
    assert len(loaded.frame) == 3 and loaded.rows == 4


def test_sales_sources_and_store_ids(tmp_path: Path) -> None:
    _chain(tmp_path, THREE, _sales(["s001"]))
    _write(tmp_path / "sales.csv", "date,store,sku,units,price_cents,promo\n")
    with pytest.raises(DataError, match=r"has both sales\.csv and sales/"):
        read_store_sales(tmp_path, ["s001"])
    (tmp_path / "sales.csv").unlink()
    with pytest.raises(DataError, match=r"store has a character other than .*'\.\./s001'"):
        read_store_sales(tmp_path, ["../s001"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"sales\.csv: file not found"):
        read_store_sales(empty, ["s001"])


def test_docs_describe_the_chain_contract() -> None:
    text = (REPO / "docs" / "data.md").read_text(encoding="utf-8")
    match = re.search(r"^## Chains\n(.*?)(?=^## |\Z)", text, flags=re.MULTILINE | re.DOTALL)
    assert match, "docs/data.md has no '## Chains' section"
    section = match.group(1)
    for name in [*CHAIN_FILES, *STORE_COLUMNS, *ZONE_PRICE_COLUMNS, "sales/store=", "truth_chain.json",
                 "generate-chain", "read_store_sales", "ChainData"]:
        assert name in section, name
