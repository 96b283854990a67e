"""pricing.core.listing: assortment.csv, and the zero-sales days of listed SKUs.

complete_days adds a 0-units row for every listed (store, sku, day) without one, at the higher
price of the rows around the gap (the only one at either end); listed = assortment.csv's periods, else first to last sale. With nothing to
fill it returns its input frame itself."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pricing.core import listing as listing_module
from pricing.core.data import load_sales
from pricing.core.listing import (
    ListingReport,
    complete_days,
    listing_report,
    load_assortment,
)
from pricing.core.store_data import load_store

SALES_HEADER = "date,store,sku,units,price_cents,promo"
PRODUCTS = "sku,name,category,brand,size,unit,cost_cents,price_cents\n" + "".join(
    f"{s},P{s},c,b,1,pc,50,99\n" for s in ("A", "B", "C", "0123")
)


def write(path: Path, header: str, *rows: str) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def sales_of(tmp_path: Path, *rows: str, header: str = SALES_HEADER) -> pd.DataFrame:
    loaded = load_sales(write(tmp_path / "sales.csv", header, *rows))
    assert loaded.rejects == []
    return loaded.frame


def listing_of(*rows: tuple[str, str | None, str, str | None]) -> pd.DataFrame:
    """(sku, store or None, listed_from, listed_to or None), as load_assortment returns them."""
    return pd.DataFrame(
        {
            "sku": pd.Series([r[0] for r in rows], dtype="string"),
            "store": pd.Series([r[1] for r in rows], dtype="string"),
            "listed_from": pd.to_datetime([r[2] for r in rows]).astype("datetime64[ns]"),
            "listed_to": pd.to_datetime([r[3] for r in rows]).astype("datetime64[ns]"),
        }
    )


def filled_rows(frame: pd.DataFrame) -> list[tuple[str, str, str, int, int]]:
    """(date, store, sku, units, price) of the added rows (index < 0)."""
    added = frame[frame.index < 0]
    return sorted(
        (str(d.date()), str(st), str(sk), int(u), int(p))
        for d, st, sk, u, p in zip(added["date"], added["store"], added["sku"], added["units"], added["price_cents"],
                                   strict=True)
    )


# -- the rule: listed from first to last sale ---------------------------------------------------


def test_missing_days_take_the_higher_price_of_the_rows_around_them(tmp_path: Path) -> None:
    sales = sales_of(
        tmp_path,
        "2024-03-01,S1,A,1,99,0",
        "2024-03-03,S1,A,0,89,1",   # an explicit zero day: kept, not filled
        "2024-03-06,S1,A,2,79,0",   # 03-02 at 99 (above 89), 03-04 and 03-05 at 89 on promo (above 79)
        "2024-03-02,S1,B,1,199,0",
        "2024-03-04,S1,B,1,189,0",
        "2024-03-04,S1,B,3,179,0",  # two rows on 03-04: the first (189) faces 03-03, the last (179) 03-05
        "2024-03-06,S1,B,1,199,0",  # 03-05: 199 (above 179); 03-03: 199 (above 189)
        header=SALES_HEADER,
    )
    out, report = complete_days(sales)
    assert report == ListingReport(zero_days_filled=5, skus_listed_by_rule=2)
    assert filled_rows(out) == [
        ("2024-03-02", "S1", "A", 0, 99),
        ("2024-03-03", "S1", "B", 0, 199),
        ("2024-03-04", "S1", "A", 0, 89),
        ("2024-03-05", "S1", "A", 0, 89),
        ("2024-03-05", "S1", "B", 0, 199),
    ]
    added = out[out.index < 0]
    promo = dict(zip(added["date"].astype(str) + added["sku"].astype(str), added["promo"], strict=True))
    assert promo == {"2024-03-02A": False, "2024-03-03B": False, "2024-03-04A": True, "2024-03-05A": True,
                     "2024-03-05B": False}  # the promo flag comes with the price
    assert len(out) == len(sales) + 5
    assert out["date"].is_monotonic_increasing
    assert sorted(out.index[out.index > 0]) == sorted(sales.index)  # every input row kept
    assert sorted(out.index[out.index < 0]) == [-5, -4, -3, -2, -1]


def test_a_price_rise_in_a_gap_does_not_put_its_zero_days_at_the_old_price(tmp_path: Path) -> None:
    """Sales stop when the price goes up: the silent days belong to the new price, not the old."""
    sales = sales_of(tmp_path, "2024-03-01,S1,A,3,100,0", "2024-03-05,S1,A,1,150,0", "2024-03-06,S1,A,1,150,0",
                     "2024-03-09,S1,A,4,100,0")
    out, _ = complete_days(sales)
    assert [row[4] for row in filled_rows(out)] == [150] * 5  # 03-02..03-04 after the rise, 03-07..03-08 before the cut


def test_types_and_categories_are_the_inputs(tmp_path: Path) -> None:
    sales = sales_of(
        tmp_path, "2024-03-01,S1,0123,1,99,0,4", "2024-03-03,S1,0123,2,99,1,", header=SALES_HEADER + ",stock"
    )
    sales["sku"] = sales["sku"].cat.add_categories(["unused"])  # categories are kept, codes stay valid
    out, report = complete_days(sales)
    assert report.zero_days_filled == 1
    assert out.dtypes.to_dict() == sales.dtypes.to_dict()
    assert out["sku"].dtype == sales["sku"].dtype and out["store"].dtype == sales["store"].dtype
    assert out.index.name == "row" and out.index.dtype == np.int64
    added = out.loc[-1]
    assert (str(added["date"].date()), added["sku"], added["units"], added["price_cents"]) == ("2024-03-02", "0123", 0, 99)
    assert added["stock"] is pd.NA and not added["promo"]


def test_several_stores_are_completed_separately(tmp_path: Path) -> None:
    sales = sales_of(
        tmp_path,
        "2024-03-01,S1,A,1,99,0",
        "2024-03-04,S1,A,1,109,0",
        "2024-03-02,S2,A,1,95,0",   # S2 sells A only on 03-02 and 03-03: nothing missing there
        "2024-03-03,S2,A,1,95,0",
        "2024-03-01,S2,B,1,50,0",
        "2024-03-03,S2,B,1,55,0",
    )
    out, report = complete_days(sales)
    assert report == ListingReport(zero_days_filled=3, skus_listed_by_rule=3)
    assert filled_rows(out) == [
        ("2024-03-02", "S1", "A", 0, 109),
        ("2024-03-02", "S2", "B", 0, 55),
        ("2024-03-03", "S1", "A", 0, 109),
    ]


def test_plain_text_columns_and_no_store_column_work_too() -> None:
    sales = pd.DataFrame(
        {
            "date": pd.to_datetime(["2024-03-01", "2024-03-03", "2024-03-01", "2024-03-02"]),
            "sku": ["A", "A", "B", "B"],
            "units": [1, 2, 3, 4],
            "price_cents": [10, 20, 30, 40],
            "promo": [False, True, False, False],
        }
    )
    out, report = complete_days(sales)
    assert report.zero_days_filled == 1
    assert out["sku"].tolist() == ["A", "B", "B", "A", "A"] and out["date"].dtype == sales["date"].dtype
    assert out.loc[-1, "price_cents"] == 20 and out.loc[-1, "promo"] and out["units"].dtype == np.int64


# -- nothing missing: the input itself ------------------------------------------------------------


def test_a_dense_frame_is_returned_itself_not_a_copy(tmp_path: Path) -> None:
    sales = sales_of(tmp_path, "2024-03-01,S1,A,1,99,0", "2024-03-02,S1,A,0,99,0", "2024-03-01,S2,A,1,99,0")
    out, report = complete_days(sales)
    assert out is sales and report == ListingReport(skus_listed_by_rule=2)
    exactly = listing_of(("A", "S1", "2024-03-01", "2024-03-02"), ("A", "S2", "2024-03-01", "2024-03-01"))
    out, report = complete_days(sales, exactly)
    assert out is sales and report == ListingReport(skus_listed_by_file=2)
    assert listing_report(sales) == ListingReport(skus_listed_by_rule=2)


def test_the_fast_path_on_a_large_dense_frame() -> None:
    """4,000 SKUs x 2 stores x 365 days = 2.9 M rows: nothing is missing, the input comes back
    untouched in well under a few seconds (the full 18 M-row year takes ~0.5 s)."""
    n_sku, n_days, stores = 4_000, 365, 2
    n = n_sku * n_days * stores
    skus = pd.Index([f"{i:05d}" for i in range(n_sku)], dtype=str)
    sales = pd.DataFrame(
        {
            "date": (np.datetime64("2025-01-01", "D") + np.repeat(np.arange(n_days), n_sku * stores)).astype(
                "datetime64[ns]"
            ),
            "store": pd.Categorical.from_codes(np.tile(np.repeat(np.arange(stores, dtype=np.int8), n_sku), n_days),
                                               categories=pd.Index(["S1", "S2"], dtype=str)),
            "sku": pd.Categorical.from_codes(np.tile(np.arange(n_sku, dtype=np.int16), n_days * stores), categories=skus),
            "units": np.ones(n, np.int64),
            "price_cents": np.full(n, 100, np.int64),
            "promo": np.zeros(n, bool),
        }
    )
    started = time.perf_counter()
    out, report = complete_days(sales)
    assert time.perf_counter() - started < 5
    assert out is sales and report == ListingReport(skus_listed_by_rule=n_sku * stores)
    # One row less in the middle of one SKU's history: exactly that day comes back, at its price.
    gap = sales.drop(index=n // 2)
    out, report = complete_days(gap)
    assert report.zero_days_filled == 1 and len(out) == n
    assert out.loc[-1, ["store", "sku"]].tolist() == sales.loc[n // 2, ["store", "sku"]].tolist()
    assert out.loc[-1, "date"] == sales.loc[n // 2, "date"] and out.loc[-1, "units"] == 0


# -- assortment.csv ---------------------------------------------------------------------------------


def test_assortment_periods_replace_the_rule(tmp_path: Path) -> None:
    sales = sales_of(
        tmp_path,
        "2024-03-01,S1,B,1,50,0",   # B: rule, 03-01 .. 03-06 (sets the overall range)
        "2024-03-06,S1,B,1,50,0",
        "2024-03-03,S1,A,1,99,0",   # A listed from 02-20 (clipped to 03-01): 03-01, 03-02 at the NEXT price
        "2024-03-04,S1,A,1,89,0",
        "2024-03-06,S1,A,1,79,0",   # A listed to 03-05 only: this row is outside (kept, counted)
    )
    listing = listing_of(("A", None, "2024-02-20", "2024-03-05"))
    out, report = complete_days(sales, listing)
    assert report == ListingReport(
        zero_days_filled=7, skus_listed_by_file=1, skus_listed_by_rule=1, rows_outside_listing=1
    )
    assert filled_rows(out) == [
        ("2024-03-01", "S1", "A", 0, 99),
        ("2024-03-02", "S1", "A", 0, 99),
        ("2024-03-02", "S1", "B", 0, 50),
        ("2024-03-03", "S1", "B", 0, 50),
        ("2024-03-04", "S1", "B", 0, 50),
        ("2024-03-05", "S1", "A", 0, 89),
        ("2024-03-05", "S1", "B", 0, 50),
    ]
    assert 6 in out.index  # the row outside the listing is kept
    assert listing_report(sales, listing) == report


def test_periods_add_up_per_store_and_for_every_store(tmp_path: Path) -> None:
    sales = sales_of(
        tmp_path,
        "2024-03-01,S1,A,1,99,0",
        "2024-03-10,S1,A,1,99,0",
        "2024-03-01,S2,A,1,98,0",
        "2024-03-10,S2,B,1,50,0",
    )
    listing = listing_of(
        ("A", "S1", "2024-03-01", "2024-03-02"),   # delisted 03-03 .. 03-07 in S1
        ("A", "S1", "2024-03-08", None),           # listed again, still listed
        ("A", "S1", "2024-03-09", "2024-03-09"),   # overlaps: the union counts once
        ("A", None, "2024-03-02", "2024-03-03"),   # every store: S1 (already listed) and S2
        ("C", None, "2024-03-01", None),           # never sold in either store: not filled
        ("B", "S3", "2024-03-01", None),           # a store without sales: ignored
        ("A", "S2", "2023-01-01", "2023-12-31"),   # before the sales: clipped away
    )
    out, report = complete_days(sales, listing)
    # S1/A: 03-01..03-03 and 03-08..03-10 listed; 03-02, 03-03, 03-08, 03-09 missing.
    # S2/A: 03-02..03-03 listed (the 2023 period is clipped away); 03-01 is outside.
    # S2/B: no row applies (S3 only): the rule, first to last sale: nothing missing.
    assert report == ListingReport(
        zero_days_filled=6, skus_listed_by_file=2, skus_listed_by_rule=1, rows_outside_listing=1,
        listed_without_sales=2,  # C in S1 and in S2
    )
    assert filled_rows(out) == [
        ("2024-03-02", "S1", "A", 0, 99),
        ("2024-03-02", "S2", "A", 0, 98),
        ("2024-03-03", "S1", "A", 0, 99),
        ("2024-03-03", "S2", "A", 0, 98),
        ("2024-03-08", "S1", "A", 0, 99),
        ("2024-03-09", "S1", "A", 0, 99),
    ]


def test_a_pair_whose_periods_are_all_outside_the_sales_has_every_row_outside(tmp_path: Path) -> None:
    sales = sales_of(tmp_path, "2024-03-01,S1,A,1,99,0", "2024-03-03,S1,A,1,99,0")
    out, report = complete_days(sales, listing_of(("A", None, "2025-01-01", None)))
    assert out is sales
    assert report == ListingReport(skus_listed_by_file=1, rows_outside_listing=2)


def reference(sales: pd.DataFrame, listing: pd.DataFrame | None) -> tuple[set, ListingReport]:
    """complete_days written the slow, obvious way: a loop over pairs and days."""
    day = sales["date"].dt.normalize()
    first, last = day.min(), day.max()
    stores = sorted(set(sales["store"].astype(str)))
    filled, outside, by_file, by_rule = set(), 0, 0, 0
    present = set()
    frame = pd.DataFrame({"day": day, "store": sales["store"].astype(str), "sku": sales["sku"].astype(str),
                          "price": sales["price_cents"], "pos": np.arange(len(sales))})
    for (store, sku), rows in frame.groupby(["store", "sku"]):
        present.add((store, sku))
        rows = rows.sort_values(["day", "pos"])
        applies = pd.DataFrame() if listing is None else listing[
            (listing["sku"] == sku) & (listing["store"].isna() | (listing["store"] == store))
        ]
        if len(applies):
            by_file += 1
            listed = set()
            for start, end in zip(applies["listed_from"], applies["listed_to"], strict=True):
                end = last if pd.isna(end) else end
                listed |= set(pd.date_range(max(start, first), min(end, last)))
            outside += int((~rows["day"].isin(listed)).sum())
        else:
            by_rule += 1
            listed = set(pd.date_range(rows["day"].min(), rows["day"].max()))
        for d in sorted(listed - set(rows["day"])):
            earlier, later = rows[rows["day"] < d]["price"], rows[rows["day"] > d]["price"]
            if len(earlier) and len(later):
                price = max(earlier.iloc[-1], later.iloc[0])
            else:
                price = earlier.iloc[-1] if len(earlier) else later.iloc[0]
            filled.add((str(d.date()), store, sku, 0, int(price)))
    never = set()
    if listing is not None:
        for sku, store in zip(listing["sku"], listing["store"], strict=True):
            for s in stores if pd.isna(store) else [store]:
                if s in stores and (s, sku) not in present:
                    never.add((s, sku))
    return filled, ListingReport(len(filled), by_file, by_rule, outside, len(never))


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("with_listing", [False, True])
def test_random_sparse_sales_match_the_obvious_implementation(seed: int, with_listing: bool) -> None:
    check_against_reference(seed, with_listing)


def test_many_stores_times_skus_number_the_pairs_that_occur(monkeypatch) -> None:
    """Beyond _DENSE_PAIRS store x sku combinations, pair ids are numbered from the rows: same result."""
    monkeypatch.setattr(listing_module, "_DENSE_PAIRS", 4)
    check_against_reference(4, True)
    check_against_reference(5, False)


def check_against_reference(seed: int, with_listing: bool) -> None:
    rng = np.random.default_rng(seed)
    n = 1_500
    skus = [f"{i:03d}" for i in range(25)]
    sales = pd.DataFrame(
        {
            "date": (pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 60, n), unit="D")).astype(
                "datetime64[ns]"
            ),
            "store": pd.Categorical(rng.choice(["S1", "S2", "S3"], n)),
            "sku": pd.Categorical(rng.choice(skus[:20], n), categories=skus),  # 5 SKUs never sold
            "units": rng.integers(0, 5, n),
            "price_cents": rng.integers(90, 110, n),
            "promo": rng.random(n) < 0.1,
        },
        index=pd.Index(np.arange(2, n + 2), name="row"),
    )
    sales = sales[rng.random(n) < 0.5]  # sparse: many missing days
    listing = None
    if with_listing:
        rows = []
        for sku in rng.choice(skus, 20):
            start = pd.Timestamp("2023-12-01") + pd.Timedelta(days=int(rng.integers(0, 60)))
            end = None if rng.random() < 0.3 else start + pd.Timedelta(days=int(rng.integers(0, 60)))
            store = None if rng.random() < 0.5 else str(rng.choice(["S1", "S2", "S3", "S9"]))
            rows.append((str(sku), store, str(start.date()), None if end is None else str(end.date())))
        listing = listing_of(*rows)
    out, report = complete_days(sales, listing)
    expected, expected_report = reference(sales, listing)
    assert report == expected_report
    assert set(filled_rows(out)) == expected and len(filled_rows(out)) == len(expected)
    assert out["date"].is_monotonic_increasing and len(out) == len(sales) + len(expected)
    pd.testing.assert_frame_equal(out[out.index > 0].sort_index(), sales.sort_index())


# -- assortment.csv: the file ---------------------------------------------------------------------


def test_assortment_rows_are_checked_with_line_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path / "assortment.csv", "sku,listed_from,listed_to,store",
        "A,2024-03-01,,",                  # 2 good: every store, still listed
        "0123,2024-03-01,2024-03-31,S1",   # 3 good
        ",2024-03-01,,",                   # 4
        "A,2024-3-1x,,",                   # 5
        "A,2024-03-01,2024-02-29,",        # 6
        "A,2024-03-01,31/03/2024,",        # 7
        "A,2024-03-01,,S/1",               # 8
        "A,,,",                            # 9
    )
    loaded = load_assortment(path)
    reasons = {r.row: r.reason for r in loaded.rejects}
    assert reasons == {
        4: "sku is empty",
        5: "listed_from is not YYYY-MM-DD: '2024-3-1x'",
        6: "listed_to 2024-02-29 is before listed_from 2024-03-01",
        7: "listed_to is not YYYY-MM-DD: '31/03/2024'",
        8: reasons[8],
        9: "listed_from is not YYYY-MM-DD: ''",
    }
    assert reasons[8].startswith("store has a character other than")
    frame = loaded.frame
    assert list(frame.columns) == ["sku", "store", "listed_from", "listed_to"] and list(frame.index) == [2, 3]
    assert frame["sku"].tolist() == ["A", "0123"]
    assert frame["store"].isna().tolist() == [True, False] and frame["store"].iloc[1] == "S1"
    assert pd.isna(frame["listed_to"].iloc[0]) and frame["listed_to"].iloc[1] == pd.Timestamp("2024-03-31")


def test_assortment_without_a_store_column_applies_to_every_store(tmp_path: Path) -> None:
    loaded = load_assortment(write(tmp_path / "assortment.csv", "sku,listed_from,listed_to", "A,2024-03-01,"))
    assert loaded.rejects == [] and loaded.frame["store"].isna().all()


def test_load_store_reads_the_assortment_and_rejects_unknown_skus(tmp_path: Path) -> None:
    (tmp_path / "products.csv").write_text(PRODUCTS)
    write(tmp_path / "sales.csv", SALES_HEADER, "2024-03-01,S1,A,1,99,0", "2024-03-04,S1,A,1,99,0")
    write(tmp_path / "assortment.csv", "sku,listed_from,listed_to", "A,2024-03-01,2024-03-02", "Z,2024-03-01,")
    store = load_store(tmp_path, require_labels=False)
    assert [str(r) for r in store.rejects] == ["assortment.csv:3: sku 'Z' is not in products.csv"]
    assert store.counts("assortment.csv") == {"rows_read": 2, "rejected": 1, "duplicates": 0}
    assert store.listing is not None and store.listing["sku"].tolist() == ["A"]
    out, report = complete_days(store.sales, store.listing)
    assert report == ListingReport(zero_days_filled=1, skus_listed_by_file=1, rows_outside_listing=1)
    assert filled_rows(out) == [("2024-03-02", "S1", "A", 0, 99)]
