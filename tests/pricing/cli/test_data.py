"""Tests for pricing/cli/data.py: esl-pricing data check."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from simulator.store import generate_store

pytestmark = pytest.mark.usefixtures("wide_console")

Run = Callable[..., tuple[int, str, str]]

PRODUCTS = "sku,name,category,brand,size,unit,cost_cents,price_cents\n"
SALES = "date,store,sku,units,price_cents,promo\n"


def _store(tmp_path: Path) -> Path:
    data = tmp_path / "store"
    generate_store(data, skus=30, days=40)
    return data


def _rows(path: Path) -> list[str]:
    return path.read_text().splitlines()


def test_json_contract_and_every_reject_in_the_csv(tmp_path: Path, run: Run) -> None:
    data = _store(tmp_path)
    sales = data / "sales.csv"
    lines = _rows(sales)
    n = len(lines) - 1  # data rows
    duplicates = lines[1:51]  # 50 exact duplicates of lines 2..51
    bad = [f"2026-13-0{i % 9 + 1},store-001,{lines[1].split(',')[2]},1,100,0" for i in range(15)]  # 15 > 10 shown
    sales.write_text("\n".join([*lines, *duplicates, *bad]) + "\n")
    code, out, err = run("data", "check", str(data), "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert set(summary["files"]) == {"products.csv", "sales.csv", "labels.csv", "competitors.csv"}
    s = summary["files"]["sales.csv"]
    assert (s["rows_read"], s["rejected"], s["duplicates"]) == (n + 65, 15, 50)
    assert s["skus"] == 30 and s["stores"] == 1 and s["zero_days"] == 0 and s["several_rows_days"] == 0
    assert s["date_start"] < s["date_end"] and s["min_prices"] == 3
    assert summary["files"]["products.csv"] == {"rows_read": 30, "rejected": 0, "duplicates": 0}
    assert summary["rejected"] == 15 and summary["duplicates"] == 50
    assert summary["rejects_file"] == str(data / "rejects.csv")
    with (data / "rejects.csv").open(newline="") as f:
        written = list(csv.DictReader(f))
    assert len(written) == 65 and {r["file"] for r in written} == {"sales.csv"}
    assert {int(r["line"]) for r in written if r["reason"].startswith("date is not")} == set(range(n + 52, n + 67))
    dups = {int(r["line"]): r["reason"] for r in written if r["reason"].startswith("exact duplicate")}
    assert dups == {n + 2 + i: f"exact duplicate of line {2 + i}" for i in range(50)}
    assert "rejects.csv" in err and "exact duplicates dropped" in err


def test_clean_store_writes_no_rejects_file_unless_asked(tmp_path: Path, run: Run) -> None:
    data = _store(tmp_path)
    code, out, err = run("data", "check", str(data), "--json")
    assert code == 0, err
    assert json.loads(out.strip().splitlines()[-1])["rejects_file"] is None
    assert not (data / "rejects.csv").exists() and "no rows rejected" in err
    target = tmp_path / "out" / "r.csv"
    code, out, _ = run("data", "check", str(data), "--rejects", str(target), "--json")
    assert code == 0 and _rows(target) == ["file,line,reason"]


def test_zero_days_and_few_prices_on_a_hand_made_store(tmp_path: Path, run: Run) -> None:
    data = tmp_path / "hand"
    data.mkdir()
    (data / "products.csv").write_text(PRODUCTS + "A,Milk,dairy,F,1,l,50,99\nB,Tea,drinks,T,1,pc,50,199\n")
    (data / "sales.csv").write_text(
        SALES
        + "2024-03-01,S1,A,1,99,0\n"  # A listed 03-01 .. 03-05: 03-02, 03-04 have no row -> 2 zero days
        + "2024-03-03,S1,A,0,89,0\n"  # a row with 0 units is a recorded day, not an implied one
        + "2024-03-05,S1,A,2,79,0\n"
        + "2024-03-02,S1,B,1,199,0\n"  # B listed 03-02 .. 03-06: 03-03, 03-04, 03-05 -> 3 zero days
        + "2024-03-06,S1,B,1,199,0\n"
        + "2024-03-06,S1,B,3,199,0\n"  # a second row for B on 03-06 (not an exact duplicate)
    )
    code, out, err = run("data", "check", str(data), "--json")
    assert code == 0, err
    sales = json.loads(out.strip().splitlines()[-1])["files"]["sales.csv"]
    assert sales["zero_days"] == 5 and sales["several_rows_days"] == 1
    assert (sales["skus"], sales["date_start"], sales["date_end"]) == (2, "2024-03-01", "2024-03-06")
    assert sales["skus_few_prices"] == 1 and sales["skus_few_prices_examples"] == ["B"]
    code, out, _ = run("data", "check", str(data), "--min-prices", "4", "--json")
    assert json.loads(out.strip().splitlines()[-1])["files"]["sales.csv"]["skus_few_prices"] == 2
    assert "labels.csv" not in json.loads(out.strip().splitlines()[-1])["files"]


@pytest.mark.parametrize("missing", ["sales.csv", "products.csv"])
def test_a_missing_required_file_is_one_line_and_exit_2(tmp_path: Path, run: Run, missing: str) -> None:
    data = _store(tmp_path)
    (data / missing).unlink()
    code, out, err = run("data", "check", str(data), "--json")
    assert code == 2 and out == ""
    assert len([line for line in err.splitlines() if line.strip()]) == 1 and "Traceback" not in err
    assert f"{missing}: file not found" in err


def test_not_a_directory_is_one_line_and_exit_2(tmp_path: Path, run: Run) -> None:
    code, _, err = run("data", "check", str(tmp_path / "nope"))
    assert code == 2 and "not a directory" in err and len(err.strip().splitlines()) == 1


RECEIPTS = "timestamp,store,sku,quantity,unit_price_cents,promo,receipt,line\n"


def _receipts_store(directory: Path) -> Path:
    directory.mkdir()
    (directory / "products.csv").write_text(PRODUCTS + "A,Milk,dairy,F,1,l,50,99\nB,Tea,drinks,T,1,pc,50,199\n")
    (directory / "receipts.csv").write_text(
        RECEIPTS
        + "2024-03-01T09:00:00,S1,A,2,99,0,r1,1\n"   # 2
        + "2024-03-01T09:00:00,S1,A,-1,99,0,r1,2\n"  # 3 void
        + "2024-03-01T10:00:00,S1,B,1,199,0,r2,1\n"  # 4
        + "2024-03-03T10:00:00,S1,A,-1,99,0,r3,1\n"  # 5 refund, nothing else of A that day: no row
        + "2024-03-04T10:00:00,S1,A,1,89,0,r4,1\n"   # 6
        + "2024-03-04T10:00:00,S1,A,1,89,0,r4,1\n"   # 7 exact duplicate of 6
        + "2024-03-04T10:00:00,S1,B,0,199,0,r4,2\n"  # 8 rejected: quantity 0
        + "2024-03-05T10:00:00,S1,B,1,199,0,r5,1\n"  # 9
    )
    return directory


def test_data_check_on_receipts_reports_netting_and_coverage(tmp_path: Path, run: Run) -> None:
    data = _receipts_store(tmp_path / "receipts")
    code, out, err = run("data", "check", str(data), "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["sales_file"] == "receipts.csv"
    assert set(summary["files"]) == {"products.csv", "receipts.csv"}
    r = summary["files"]["receipts.csv"]
    assert {k: r[k] for k in ("rows_read", "rejected", "duplicates")} == {"rows_read": 8, "rejected": 1, "duplicates": 1}
    assert {k: r[k] for k in ("void_lines", "refund_lines", "netted_units", "negative_days")} == {
        "void_lines": 1, "refund_lines": 1, "netted_units": 2, "negative_days": 1,
    }
    # Daily rows: A 03-01 (1), A 03-04 (1 at 89), B 03-01, B 03-05 (A's refund-only 03-03 has no
    # row). A misses 03-02 and 03-03 in 03-01..03-04; B misses 03-02, 03-03, 03-04.
    assert (r["skus"], r["stores"], r["date_start"], r["date_end"]) == (2, 1, "2024-03-01", "2024-03-05")
    assert r["zero_days"] == 5 and r["listing"] == "first to last sale"
    assert (r["skus_listed_by_file"], r["skus_listed_by_rule"], r["rows_outside_listing"]) == (0, 2, 0)
    assert r["several_rows_days"] == 0 and r["skus_few_prices"] == 2
    assert summary["rejected"] == 1 and summary["duplicates"] == 1
    with (data / "rejects.csv").open(newline="") as f:
        written = [(row["file"], row["line"], row["reason"]) for row in csv.DictReader(f)]
    assert written == [
        ("receipts.csv", "7", "exact duplicate of line 6"),
        ("receipts.csv", "8", "quantity is 0 (a line sells or returns units)"),
    ]
    assert "void lines" in err and "receipts.csv" in err


def test_data_check_counts_zero_days_with_the_assortment(tmp_path: Path, run: Run) -> None:
    data = _receipts_store(tmp_path / "receipts")
    (data / "assortment.csv").write_text(
        "sku,listed_from,listed_to,store\n"
        "A,2024-02-01,,\n"            # A listed all along: 03-02, 03-03 (refund only) and 03-05 missing
        "B,2024-03-01,2024-03-02,S1\n"  # B: 03-02 missing; its 03-05 row is outside
        "Z,2024-03-01,,\n"            # rejected: not in products.csv
    )
    code, out, err = run("data", "check", str(data), "--json")
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["files"]["assortment.csv"] == {"rows_read": 3, "rejected": 1, "duplicates": 0}
    r = summary["files"]["receipts.csv"]
    assert r["listing"] == "assortment.csv" and r["zero_days"] == 4
    assert (r["skus_listed_by_file"], r["skus_listed_by_rule"], r["rows_outside_listing"]) == (2, 0, 1)
    assert "sku 'Z' is not in products.csv" in (data / "rejects.csv").read_text()


def test_data_check_refuses_sales_and_receipts_together(tmp_path: Path, run: Run) -> None:
    data = _receipts_store(tmp_path / "both")
    (data / "sales.csv").write_text(SALES + "2024-03-01,S1,A,1,99,0\n")
    code, out, err = run("data", "check", str(data), "--json")
    assert code == 2 and out == "" and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1
    assert "sales.csv" in err and "receipts.csv" in err


def test_train_on_receipts_only_without_labels(tmp_path: Path, run: Run) -> None:
    """A generated store's daily sales given as receipt lines, with the zero-units days left out:
    training nets the lines, fills the days back, and the card records the receipts' counts."""
    data, models = tmp_path / "data", tmp_path / "models"
    generate_store(data, skus=30, days=70)
    sales = pd.read_csv(data / "sales.csv", dtype={"sku": str, "store": str, "date": str})
    (data / "sales.csv").unlink()
    (data / "labels.csv").unlink()
    sold = sales[sales["units"] > 0].reset_index(drop=True)
    lines = pd.DataFrame(
        {
            "timestamp": sold["date"] + "T12:00:00",
            "store": sold["store"],
            "sku": sold["sku"],
            "quantity": sold["units"],
            "unit_price_cents": sold["price_cents"],
            "promo": sold["promo"],
            "receipt": "R" + sold.index.astype(str),
            "line": 1,
        }
    )
    voided = lines.iloc[:5].assign(quantity=-1, line=2)  # 5 voids: their receipts sell 1 more
    lines.loc[:4, "quantity"] += 1
    refund = lines.iloc[[-1]].assign(quantity=-1, receipt="R-refund")  # nets the last day down by 1
    lines.loc[lines.index[-1], "quantity"] += 1
    stray = lines.iloc[[0]].assign(sku="not-a-product")
    lines = pd.concat([lines, voided, refund, stray, lines.iloc[[3]]], ignore_index=True)  # + 1 duplicate
    lines.to_csv(data / "receipts.csv", index=False)

    code, out, err = run("train", "--data", str(data), "--out", str(models), "--json")
    assert code == 0, err
    # Listed from first to last sale per SKU: the zero-units days inside come back as filled rows.
    days = pd.to_datetime(sold["date"]).groupby(sold["sku"]).agg(["min", "max"])
    listed = int(((days["max"] - days["min"]).dt.days + 1).sum())
    assert listed > len(sold) + 20  # the test means something: many zero days were left out
    assert json.loads(out.strip().splitlines()[-1])["n_rows"] == listed
    assert f"{listed - len(sold):,} zero-sales days filled" in err
    assert "1 exact duplicate receipts.csv row(s) dropped" in err and "void" in err
    card = json.loads((models / "demand_model.card.json").read_text())
    assert card["data_counts"]["receipts.csv"] == {
        "rows_read": len(lines), "rejected": 1, "duplicates": 1,
        "void_lines": 5, "refund_lines": 1, "netted_units": 6, "negative_days": 0,
    }
    assert card["n_rows"] == listed and "labels.csv" not in card["data_counts"]
