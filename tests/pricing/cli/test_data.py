"""Tests for pricing/cli/data.py: esl-pricing data check."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

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
