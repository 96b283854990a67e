"""pricing.core.receipts: receipt lines are checked like sales rows, then netted into daily rows.

The kept lines of one (date, store, sku) become one daily row: the net units (never below 0) at
the price and promo of its sold lines with the most units (ties: the earliest). Voids (a negative
line on a receipt with a positive line of the same SKU) and refunds (other negative lines) are
counted; a day with only refunds has no row, and any day whose net is below 0 is counted; exact
duplicate lines are dropped once; load_store reads receipts.csv instead of sales.csv, never both."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pricing.core import data
from pricing.core.data import DataError, load_sales
from pricing.core.listing import complete_days
from pricing.core.receipts import ReceiptCounts, load_receipts
from pricing.core.store_data import load_store

HEADER = "timestamp,store,sku,quantity,unit_price_cents,promo,receipt,line"
PRODUCTS = "sku,name,category,brand,size,unit,cost_cents,price_cents\nA,Milk,dairy,F,1,l,50,99\nB,Tea,drinks,T,1,pc,50,199\n"


def write(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def daily(frame: pd.DataFrame) -> list[tuple]:
    """(line, date, store, sku, units, price, promo) per daily row, in the frame's order."""
    return [
        (int(row), str(d.date()), str(st), str(sk), int(u), int(p), bool(pr))
        for row, d, st, sk, u, p, pr in zip(
            frame.index, frame["date"], frame["store"], frame["sku"], frame["units"], frame["price_cents"],
            frame["promo"], strict=True,
        )
    ]


def test_lines_are_netted_into_one_row_per_day_store_and_sku(tmp_path: Path) -> None:
    path = write(
        tmp_path / "receipts.csv", HEADER,
        "2024-03-01T09:00:00,S1,A,2,99,0,r1,1",   # 2
        "2024-03-01T09:00:05,S1,A,-1,99,0,r1,2",  # 3 void: r1 has a positive line of A
        "2024-03-01T17:30:00,S1,A,3,99,0,r2,1",   # 4 same day and price
        "2024-03-01T18:00:00,S1,A,1,89,1,r3,1",   # 5 same day at a promo price: netted into the day
        "2024-03-01T18:00:00,S1,B,1,199,0,r3,2",  # 6
        "2024-03-02T10:00:00,S1,A,-1,99,0,r4,1",  # 7 refund on a later day, with a sale that day
        "2024-03-02T11:00:00,S1,A,2,99,0,r5,1",   # 8
        "2024-03-03T10:00:00,S1,B,-2,199,0,r6,1",  # 9 refund with no sale of B that day: no row
        "2024-03-03T12:00:00,S1,A,1,99,0,r7,1",   # 10
    )
    loaded = load_receipts(path)
    assert loaded.rejects == [] and loaded.duplicates == [] and loaded.rows == 9
    assert daily(loaded.frame) == [
        (2, "2024-03-01", "S1", "A", 5, 99, False),  # 2 - 1 + 3 + 1, at 99 (5 sold) not 89 (1 sold)
        (6, "2024-03-01", "S1", "B", 1, 199, False),
        (8, "2024-03-02", "S1", "A", 1, 99, False),  # -1 + 2; the row is the sale's line, not the refund's
        (10, "2024-03-03", "S1", "A", 1, 99, False),
    ]
    assert loaded.counts == ReceiptCounts(void_lines=1, refund_lines=2, netted_units=4, negative_days=1)
    assert loaded.counts.as_dict() == {"void_lines": 1, "refund_lines": 2, "netted_units": 4, "negative_days": 1}


def test_a_refund_at_an_old_price_nets_into_the_days_row_at_the_new_price(tmp_path: Path) -> None:
    path = write(
        tmp_path / "receipts.csv", HEADER,
        "2024-03-01T09:00:00,S1,A,2,99,0,r1,1",   # 2 sold at the old price
        "2024-03-02T08:00:00,S1,A,-1,99,0,r2,1",  # 3 refund of 03-01's sale, at the old price
        "2024-03-02T09:00:00,S1,A,3,89,0,r3,1",   # 4 sold at the new price
        "2024-03-02T10:00:00,S1,A,-1,99,0,,1",    # 5 another refund at the old price, no receipt id
    )
    loaded = load_receipts(path)
    # One row for 03-02, at 89 with 3 - 1 - 1 units: no 0-units observation at 99 on 03-02.
    assert daily(loaded.frame) == [
        (2, "2024-03-01", "S1", "A", 2, 99, False),
        (4, "2024-03-02", "S1", "A", 1, 89, False),
    ]
    assert loaded.counts == ReceiptCounts(void_lines=0, refund_lines=2, netted_units=2, negative_days=0)


def test_a_day_with_only_refunds_has_no_row_and_is_a_negative_day(tmp_path: Path) -> None:
    path = write(
        tmp_path / "receipts.csv", HEADER,
        "2024-03-01T09:00:00,S1,A,1,99,0,r1,1",   # 2
        "2024-03-02T09:00:00,S1,A,-2,99,0,r2,1",  # 3 refund only: no row
        "2024-03-02T09:30:00,S1,B,1,199,0,r3,1",  # 4 the other SKU sells that day
        "2024-03-03T09:00:00,S1,A,-1,89,1,r4,1",  # 5 refund only, at another price and promo: no row
        "2024-03-04T09:00:00,S1,A,1,99,0,r5,1",   # 6
        "2024-03-04T09:10:00,S1,A,-3,99,0,r6,1",  # 7 a sale and a larger refund: 0 units, counted
    )
    loaded = load_receipts(path)
    assert daily(loaded.frame) == [
        (2, "2024-03-01", "S1", "A", 1, 99, False),
        (4, "2024-03-02", "S1", "B", 1, 199, False),
        (6, "2024-03-04", "S1", "A", 0, 99, False),
    ]
    assert loaded.counts == ReceiptCounts(void_lines=0, refund_lines=3, netted_units=6, negative_days=3)
    # The listing decides: A is listed from its first to its last row, so 03-02 and 03-03 are
    # zero-sales days at the carried-forward price, not refund-day observations.
    filled, report = complete_days(loaded.frame)
    assert report.zero_days_filled == 2
    a = filled[filled["sku"] == "A"]
    assert [(str(d.date()), int(u), int(p), bool(pr)) for d, u, p, pr in zip(
        a["date"], a["units"], a["price_cents"], a["promo"], strict=True
    )] == [
        ("2024-03-01", 1, 99, False),
        ("2024-03-02", 0, 99, False),
        ("2024-03-03", 0, 99, False),
        ("2024-03-04", 0, 99, False),
    ]


def test_a_mid_day_price_change_takes_the_price_with_the_most_units(tmp_path: Path) -> None:
    path = write(
        tmp_path / "receipts.csv", HEADER,
        # 03-01: 1 at 99, then 2 + 1 at 89: 89 has the most units; the row is 89's first line.
        "2024-03-01T09:00:00,S1,A,1,99,0,r1,1",   # 2
        "2024-03-01T13:00:00,S1,A,2,89,0,r2,1",   # 3
        "2024-03-01T15:00:00,S1,A,1,89,0,r3,1",   # 4
        # 03-02: 2 at 89 and 2 at 99, a tie: the price of the earliest line in the file.
        "2024-03-02T13:00:00,S1,A,2,89,0,r4,1",   # 5
        "2024-03-02T09:00:00,S1,A,2,99,0,r5,1",   # 6 earlier in the day, but later in the file
        # 03-03: refunds do not count against a price: 3 sold at 99 beat 2 at 89.
        "2024-03-03T09:00:00,S1,A,3,99,0,r6,1",   # 7
        "2024-03-03T10:00:00,S1,A,2,89,0,r7,1",   # 8
        "2024-03-03T11:00:00,S1,A,-2,99,0,r8,1",  # 9 refund at 99
        # 03-04: one price, promo or not: 2 without promo beat 1 with it.
        "2024-03-04T09:00:00,S1,A,1,89,1,r9,1",   # 10
        "2024-03-04T10:00:00,S1,A,1,89,0,r10,1",  # 11
        "2024-03-04T11:00:00,S1,A,1,89,0,r11,1",  # 12
        # 03-05: nor does a void: 3 sold at 99 (2 of them voided) beat 2 at 89.
        "2024-03-05T09:00:00,S1,A,3,99,0,r12,1",  # 13
        "2024-03-05T09:00:00,S1,A,-2,99,0,r12,2",  # 14 void
        "2024-03-05T10:00:00,S1,A,2,89,0,r13,1",  # 15
    )
    loaded = load_receipts(path)
    assert loaded.rejects == []
    assert daily(loaded.frame) == [
        (3, "2024-03-01", "S1", "A", 4, 89, False),
        (5, "2024-03-02", "S1", "A", 4, 89, False),
        (7, "2024-03-03", "S1", "A", 3, 99, False),
        (11, "2024-03-04", "S1", "A", 3, 89, False),
        (13, "2024-03-05", "S1", "A", 3, 99, False),
    ]
    assert loaded.counts == ReceiptCounts(void_lines=1, refund_lines=1, netted_units=4, negative_days=0)


def test_the_frame_has_the_sales_loaders_columns_and_types(tmp_path: Path) -> None:
    receipts = load_receipts(write(tmp_path / "receipts.csv", HEADER, "2024-03-01T09:00:00,S1,0123,2,99,yes,r1,1"))
    sales = load_sales(write(tmp_path / "sales.csv", "date,store,sku,units,price_cents,promo", "2024-03-01,S1,0123,2,99,yes"))
    assert list(receipts.frame.columns) == list(sales.frame.columns)
    assert receipts.frame.dtypes.to_dict() == sales.frame.dtypes.to_dict()
    assert receipts.frame.index.name == "row" and receipts.frame.index.dtype == np.int64
    assert list(receipts.frame["sku"].cat.categories) == ["0123"]  # a SKU stays text
    pd.testing.assert_frame_equal(receipts.frame, sales.frame)


def test_a_void_needs_the_same_receipt_store_and_sku(tmp_path: Path) -> None:
    path = write(
        tmp_path / "receipts.csv", HEADER,
        "2024-03-01T09:00:00,S1,A,1,99,0,r1,1",
        "2024-03-01T09:00:00,S1,B,-1,199,0,r1,2",   # r1 has no positive B: a refund
        "2024-03-01T09:00:00,S2,A,-1,99,0,r1,1",    # r1 in another store: a refund
        "2024-03-01T09:00:00,S1,A,-1,99,0,,3",      # no receipt id: a refund
        "2024-03-01T09:00:00,S2,A,3,99,0,r2,1",
        "2024-03-01T09:00:00,S2,A,-2,99,0,r2,2",    # a void of 2 units
    )
    loaded = load_receipts(path)
    assert loaded.counts == ReceiptCounts(void_lines=1, refund_lines=3, netted_units=5, negative_days=1)
    assert daily(loaded.frame) == [
        (2, "2024-03-01", "S1", "A", 0, 99, False),  # 1 - 1
        (6, "2024-03-01", "S2", "A", 0, 99, False),  # -1 + 3 - 2, at its sold line
    ]  # S1 B: -1 and no sale, so no row (counted in negative_days)


def test_without_a_receipt_column_every_negative_line_is_a_refund(tmp_path: Path) -> None:
    path = write(
        tmp_path / "receipts.csv", "date,store,sku,quantity,unit_price_cents,promo",
        "2024-03-01,S1,A,2,99,0", "2024-03-01,S1,A,-1,99,0",
    )
    loaded = load_receipts(path)
    assert loaded.counts == ReceiptCounts(void_lines=0, refund_lines=1, netted_units=1, negative_days=0)
    assert daily(loaded.frame) == [(2, "2024-03-01", "S1", "A", 1, 99, False)]


def test_a_date_column_and_a_timestamp_column_give_the_same_days(tmp_path: Path) -> None:
    stamps = [
        "2024-03-01T23:59:59",
        "2024-03-01T23:30:00.250-05:00",  # the date as written counts, the offset is not applied
        "2024-03-02T00:00:00Z",
        "2024-03-02T08:15:00.5+0100",
    ]
    rows = [(s, f"S1,A,{i + 1},99,0,r{i},1") for i, s in enumerate(stamps)]
    by_time = load_receipts(write(tmp_path / "t.csv", HEADER, *[f"{s},{rest}" for s, rest in rows]))
    by_date = load_receipts(write(tmp_path / "d.csv", "date" + HEADER[9:], *[f"{s[:10]},{rest}" for s, rest in rows]))
    assert by_time.rejects == [] and by_date.rejects == []
    assert daily(by_time.frame) == daily(by_date.frame) == [
        (2, "2024-03-01", "S1", "A", 3, 99, False),
        (4, "2024-03-02", "S1", "A", 7, 99, False),
    ]


def test_exact_duplicate_lines_are_dropped_once_each(tmp_path: Path) -> None:
    path = write(
        tmp_path / "receipts.csv", HEADER,
        "2024-03-01T09:00:00,S1,A,1,99,0,r1,1",    # 2 kept
        "2024-03-01T09:00:00,S1,A,1,99,0,r1,2",    # 3 another line of the receipt: kept
        "2024-03-01T09:00:00,S1,A,1,99,0,r1,1",    # 4 duplicate of 2
        " 2024-03-01T09:00:00 ,S1,A,1,99,0,r1,1",  # 5 duplicate of 2 after stripping
        "2024-03-01T09:00:00,S1,A,x,99,0,r1,1",    # 6 rejected
        "2024-03-01T09:00:00,S1,A,x,99,0,r1,1",    # 7 rejected too, not a duplicate
    )
    loaded = load_receipts(path)
    assert [(d.file, d.row, d.reason) for d in loaded.duplicates] == [
        ("receipts.csv", 4, "exact duplicate of line 2"),
        ("receipts.csv", 5, "exact duplicate of line 2"),
    ]
    assert [r.row for r in loaded.rejects] == [6, 7]
    assert daily(loaded.frame) == [(2, "2024-03-01", "S1", "A", 2, 99, False)]


def test_bad_lines_are_rejected_with_their_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path / "receipts.csv", HEADER,
        "2024-03-01T09:00:00,S1,A,1,99,0,r1,1",   # 2 good
        "2024-03-01T09:00:00,S1,A,0,99,0,r1,2",   # 3
        "2024-03-01T09:00:00,S1,A,1.5,99,0,r1,3",  # 4
        "2024-03-01T09:00:00,S1,A,1,0,0,r1,4",    # 5
        "2024-03-01T25:00:00,S1,A,1,99,0,r1,5",   # 6 no such hour
        "2024-03-01 09:00:00,S1,A,1,99,0,r1,6",   # 7 a space, not T
        "2024-02-30T09:00:00,S1,A,1,99,0,r1,7",   # 8 no such day
        "2024-03-01,S1,A,1,99,0,r1,8",            # 9 a date where a timestamp belongs
        "2024-03-01T09:00:00,S1,A,1,99,maybe,r1,9",  # 10
        "2024-03-01T09:00:00,,A,1,99,0,r1,10",    # 11
        "2024-03-01T09:00:00,S/1,A,1,99,0,r1,11",  # 12 a store becomes a topic level
        "2024-03-01T09:00:00,S1,A,1,99,0,r1,x",   # 13
        "2024-03-01T09:00:00,S1,,1,99,0,r1,12",   # 14
        "2024-03-01T09:00:00,S1,A,-2,99,0,r1,13",  # 15 good: a void of 2 (net 1 - 2 < 0)
    )
    loaded = load_receipts(path)
    reasons = {r.row: r.reason for r in loaded.rejects}
    assert reasons == {
        3: "quantity is 0 (a line sells or returns units)",
        4: "quantity is not a whole number: '1.5'",
        5: "unit_price_cents must be >= 1",
        6: "timestamp is not YYYY-MM-DDTHH:MM:SS: '2024-03-01T25:00:00'",
        7: "timestamp is not YYYY-MM-DDTHH:MM:SS: '2024-03-01 09:00:00'",
        8: "timestamp is not YYYY-MM-DDTHH:MM:SS: '2024-02-30T09:00:00'",
        9: "timestamp is not YYYY-MM-DDTHH:MM:SS: '2024-03-01'",
        10: "promo is not a boolean: 'maybe'",
        11: "store is empty",
        12: reasons[12],
        13: "line is not a whole number: 'x'",
        14: "sku is empty",
    }
    assert reasons[12].startswith("store has a character other than")
    assert all(r.file == "receipts.csv" for r in loaded.rejects)
    assert daily(loaded.frame) == [(2, "2024-03-01", "S1", "A", 0, 99, False)]
    assert loaded.counts == ReceiptCounts(void_lines=1, refund_lines=0, netted_units=2, negative_days=1)


def test_bad_dates_in_a_date_column_are_rejected_like_sales(tmp_path: Path) -> None:
    path = write(
        tmp_path / "receipts.csv", "date,store,sku,quantity,unit_price_cents,promo",
        "2024-03-01,S1,A,1,99,0", "01/03/2024,S1,A,1,99,0", "2024-03-01T10:00:00,S1,A,1,99,0",
    )
    reasons = {r.row: r.reason for r in load_receipts(path).rejects}
    assert reasons == {3: "date is not YYYY-MM-DD: '01/03/2024'", 4: "date is not YYYY-MM-DD: '2024-03-01T10:00:00'"}


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("timestamp,date,store,sku,quantity,unit_price_cents,promo", "has both a timestamp and a date column"),
        ("store,sku,quantity,unit_price_cents,promo", "missing column(s): timestamp (or date)"),
        ("timestamp,store,sku,unit_price_cents", "missing column(s): quantity, promo"),
        ("store,sku,units,price_cents,promo", "missing column(s): timestamp (or date), quantity, unit_price_cents"),
    ],
)
def test_the_time_column_must_be_one_of_timestamp_or_date(tmp_path: Path, header: str, message: str) -> None:
    path = write(tmp_path / "receipts.csv", header)
    with pytest.raises(DataError) as raised:
        load_receipts(path)
    assert str(raised.value).startswith(f"{path}: {message}") and "\n" not in str(raised.value)


def test_header_only_receipts_load_empty_with_the_sales_types(tmp_path: Path) -> None:
    loaded = load_receipts(write(tmp_path / "receipts.csv", HEADER))
    assert len(loaded.frame) == 0 and loaded.counts == ReceiptCounts()
    assert str(loaded.frame["date"].dtype) == "datetime64[ns]" and loaded.frame["units"].dtype == np.int64


# -- load_store -------------------------------------------------------------------------------


def test_load_store_reads_receipts_instead_of_sales(tmp_path: Path) -> None:
    (tmp_path / "products.csv").write_text(PRODUCTS)
    write(
        tmp_path / "receipts.csv", HEADER,
        "2024-03-01T09:00:00,S1,A,2,99,0,r1,1",
        "2024-03-01T09:00:00,S1,A,-1,99,0,r1,2",
        "2024-03-01T09:00:00,S1,Z,1,99,0,r1,3",  # not in products.csv
        "2024-03-01T09:00:00,S1,A,2,99,0,r1,1",  # exact duplicate of line 2
    )
    store = load_store(tmp_path, require_labels=False)
    assert store.sales_file == "receipts.csv" and "sales.csv" not in store.rows_read
    assert [str(r) for r in store.rejects] == ["receipts.csv:4: sku 'Z' is not in products.csv"]
    assert [str(d) for d in store.duplicates] == ["receipts.csv:5: exact duplicate of line 2"]
    assert store.counts("receipts.csv") == {
        "rows_read": 4, "rejected": 1, "duplicates": 1,
        "void_lines": 1, "refund_lines": 0, "netted_units": 1, "negative_days": 0,
    }
    assert store.counts("products.csv") == {"rows_read": 2, "rejected": 0, "duplicates": 0}
    assert daily(store.sales) == [(2, "2024-03-01", "S1", "A", 1, 99, False)]
    assert store.store_id == "S1" and store.listing is None


def test_a_store_with_both_sales_and_receipts_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "products.csv").write_text(PRODUCTS)
    write(tmp_path / "receipts.csv", HEADER)
    write(tmp_path / "sales.csv", "date,store,sku,units,price_cents,promo")
    with pytest.raises(DataError) as raised:
        load_store(tmp_path, require_labels=False)
    message = str(raised.value)
    assert "sales.csv" in message and "receipts.csv" in message and "\n" not in message


def test_a_store_with_neither_misses_sales_csv(tmp_path: Path) -> None:
    (tmp_path / "products.csv").write_text(PRODUCTS)
    with pytest.raises(DataError, match="sales.csv: file not found"):
        load_store(tmp_path, require_labels=False)


def test_a_large_file_nets_like_a_groupby_and_finds_its_bad_lines(tmp_path: Path, monkeypatch) -> None:
    """60,000 lines over many read chunks: the daily rows are what pandas' groupbys give: per
    (date, store, sku) the net quantity clipped at 0, at the price and promo with the most units
    sold (ties: the earliest line), on days with a sale."""
    monkeypatch.setitem(data._CSV_OPTIONS, "chunksize", 7_001)
    rng = np.random.default_rng(5)
    n = 60_000
    day = rng.integers(0, 40, n)
    frame = pd.DataFrame(
        {
            "timestamp": [f"2024-04-{1 + d // 30:02d}" for d in day],  # placeholder, replaced below
            "store": np.where(rng.random(n) < 0.5, "S1", "S2"),
            "sku": np.array([f"{i:04d}" for i in range(300)])[rng.integers(0, 300, n)],
            "quantity": np.where(rng.random(n) < 0.05, -1, rng.integers(1, 4, n)),
            "unit_price_cents": rng.choice([99, 129, 149], n),
            "promo": rng.random(n) < 0.1,
            "receipt": rng.integers(0, 15_000, n).astype(str),
            "line": np.arange(n) % 7 + 1,
        }
    )
    dates = pd.Timestamp("2024-03-01") + pd.to_timedelta(day, unit="D")
    frame["timestamp"] = dates.strftime("%Y-%m-%dT") + pd.Series(rng.integers(0, 86_400, n)).map(
        lambda s: f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
    ).to_numpy()
    frame["promo"] = frame["promo"].astype(int).astype(str)
    lines = frame.astype(str)
    lines.loc[12_345, "quantity"] = "0"
    lines.loc[50_000, "timestamp"] = "2024-13-01T00:00:00"
    lines.to_csv(tmp_path / "receipts.csv", index=False)
    loaded = load_receipts(tmp_path / "receipts.csv")
    assert {(r.row, r.reason.split(":")[0]) for r in loaded.rejects} == {
        (12_347, "quantity is 0 (a line sells or returns units)"),
        (50_002, "timestamp is not YYYY-MM-DDTHH"),
    }
    good = frame.drop(index=[12_345, 50_000])
    good = good[~good.astype(str).duplicated()]  # exact duplicate lines, if the draw made any
    assert len(loaded.duplicates) == n - 2 - len(good)

    good = good.assign(date=dates[good.index], line_no=good.index + 2, promo=good["promo"] == "1")
    keys = ["date", "store", "sku"]
    net = good.groupby(keys)["quantity"].sum().rename("net")
    at_price = (
        good[good["quantity"] > 0]
        .groupby([*keys, "unit_price_cents", "promo"])
        .agg(sold=("quantity", "sum"), row=("line_no", "min"))
        .reset_index()
        .sort_values([*keys, "sold", "row"], ascending=[True, True, True, False, True])
    )
    best = at_price.drop_duplicates(keys)  # per day: the most units sold, then the earliest line
    expect = (
        best.merge(net.reset_index(), on=keys, how="left")
        .assign(units=lambda f: f["net"].clip(lower=0))
        .sort_values(["date", "row"])
        .reset_index(drop=True)
    )
    got = loaded.frame.reset_index()
    got = pd.DataFrame(
        {
            "row": got["row"], "date": got["date"], "store": got["store"].astype(str),
            "sku": got["sku"].astype(str), "units": got["units"], "price_cents": got["price_cents"],
            "promo": got["promo"],
        }
    )
    want = expect.rename(columns={"unit_price_cents": "price_cents"})[list(got.columns)]
    pd.testing.assert_frame_equal(got, want, check_dtype=False)

    # The draw exercises every rule: refund-only days (no row), negative days with a sale (0 units),
    # days with several prices or promo states, and ties between them settled by the earliest line.
    sold_days = best.set_index(keys).index
    refund_only = ~net.index.isin(sold_days)
    assert refund_only.sum() > 0 and ((net < 0) & ~refund_only).sum() > 0
    several = at_price.groupby(keys)["sold"].agg(["size", lambda s: (s == s.iloc[0]).sum()])
    assert (several["size"] > 1).sum() > 1_000 and (several.iloc[:, 1] > 1).sum() > 100
    assert len(got) == len(net) - refund_only.sum()
    assert loaded.counts.negative_days == int((net < 0).sum())
    assert loaded.counts.netted_units == int(-good["quantity"][good["quantity"] < 0].sum())
    assert got["date"].is_monotonic_increasing
