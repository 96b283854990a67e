"""pricing.store.price_book: full history per store and SKU, and the EU Omnibus reference price."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine

from pricing.core.database import open_engine
from pricing.store.price_book import PriceBook, price_history

T0 = datetime(2026, 11, 2, 5, 30, tzinfo=UTC)


def day(n: float) -> datetime:
    return T0 + timedelta(days=n)


@pytest.fixture
def book(database_url: str) -> PriceBook:
    return PriceBook(open_engine(database_url), f"S-{uuid.uuid4().hex[:8]}")


def test_record_keeps_full_history_with_effective_periods(book: PriceBook) -> None:
    book.seed({"A": 299, "B": 150}, at=day(0), currency="EUR", source="products.csv")
    book.record({"A": 279, "B": 150}, at=day(1), currency="EUR", correlation="plan-1")
    book.record({"A": 289}, at=day(3), currency="EUR", correlation="plan-2")
    assert book.current() == {"A": 289, "B": 150}
    history = book.history("A")
    assert [(p.price_cents, p.effective_from, p.effective_to, p.correlation) for p in history] == [
        (299, day(0), day(1), "products.csv"),
        (279, day(1), day(3), "plan-1"),
        (289, day(3), None, "plan-2"),
    ]
    assert book.price_at("A", day(0.5)) == 299
    assert book.price_at("A", day(1)) == 279  # from is inclusive
    assert book.price_at("A", day(2.99)) == 279
    assert book.price_at("A", day(10)) == 289
    assert book.price_at("A", day(-1)) is None
    assert len(book.history("B")) == 1  # same price: no new period


def test_a_reduction_carries_the_lowest_price_of_the_previous_30_days(book: PriceBook) -> None:
    book.seed({"A": 500}, at=day(0), currency="EUR", source="seed")
    book.record({"A": 400}, at=day(5), currency="EUR", correlation="p1")  # reduction: ref 500
    book.record({"A": 600}, at=day(10), currency="EUR", correlation="p2")  # increase: no ref
    [change] = book.record({"A": 550}, at=day(20), currency="EUR", correlation="p3")
    assert change.previous_cents == 600
    assert change.reference_cents == 400  # 400 was in force within the 30 days before day 20
    [later] = book.record({"A": 520}, at=day(50), currency="EUR", correlation="p4")
    # 30 days before day 50 = day 20: only 550 (day 20-50) was in force; 400 ended on day 10.
    assert later.reference_cents == 550


def test_increase_and_first_price_have_no_reference(book: PriceBook) -> None:
    [first] = book.record({"A": 300}, at=day(0), currency="EUR", correlation="p0")
    assert first.previous_cents is None and first.reference_cents is None
    [up] = book.record({"A": 350}, at=day(1), currency="EUR", correlation="p1")
    assert up.reference_cents is None


def test_reduction_after_long_stable_price_references_that_price(book: PriceBook) -> None:
    book.seed({"A": 500}, at=day(-400), currency="EUR", source="seed")
    [change] = book.record({"A": 450}, at=day(0), currency="EUR", correlation="p")
    assert change.reference_cents == 500


def test_seed_only_adds_skus_the_book_has_never_seen(book: PriceBook) -> None:
    assert len(book.seed({"A": 100}, at=day(0), currency="EUR", source="file")) == 1
    book.record({"A": 90}, at=day(1), currency="EUR", correlation="p")
    assert [c.sku for c in book.seed({"A": 100, "B": 200}, at=day(2), currency="EUR", source="file")] == ["B"]
    assert book.current() == {"A": 90, "B": 200}


def test_stores_do_not_see_each_other(database_url: str) -> None:
    engine = open_engine(database_url)
    one, two = PriceBook(engine, f"S-{uuid.uuid4().hex[:6]}"), PriceBook(engine, f"S-{uuid.uuid4().hex[:6]}")
    one.record({"A": 100}, at=day(0), currency="EUR", correlation="p")
    two.record({"A": 200}, at=day(0), currency="EUR", correlation="p")
    assert one.current() == {"A": 100} and two.current() == {"A": 200}


def test_bad_input_is_refused(book: PriceBook) -> None:
    with pytest.raises(ValueError, match="not a price"):
        book.record({"A": 0}, at=day(0), currency="EUR", correlation="p")
    with pytest.raises(ValueError, match="time zone"):
        book.record({"A": 100}, at=datetime(2026, 1, 1), currency="EUR", correlation="p")  # noqa: DTZ001


def _memory_book() -> tuple[Engine, PriceBook]:
    engine = create_engine("sqlite://")
    price_history.metadata.create_all(engine)
    return engine, PriceBook(engine, "S")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 20), st.integers(50, 120)), min_size=1, max_size=12))
def test_reference_is_the_minimum_over_the_window_by_brute_force(steps: list[tuple[int, int]]) -> None:
    """Against a day-by-day simulation of the shelf price: every reduction's reference is the
    lowest price shown at any moment of the 30 days before it."""
    _, book = _memory_book()
    book.seed({"A": 100}, at=day(0), currency="EUR", source="seed")
    timeline: list[tuple[datetime, int]] = [(day(0), 100)]  # (from, price)
    at = day(0)
    for gap_days, price in steps:
        at = at + timedelta(days=gap_days)
        previous = timeline[-1][1]
        changes = book.record({"A": price}, at=at, currency="EUR", correlation="p")
        if price == previous:
            assert changes == []
            continue
        [change] = changes
        # Prices change only at whole days from T0, so sampling each of the 30 days is exact.
        shown = [_shown(timeline, at - timedelta(days=back)) for back in range(1, 31)]
        expected = min(p for p in shown if p is not None) if price < previous else None
        assert change.reference_cents == expected
        timeline.append((at, price))
        # What a label showing today's price must show with it: the reference the reduction got.
        assert book.current_references().get("A") == expected
        assert book.current_references(["A", "B"]) == book.current_references()


def _shown(timeline: list[tuple[datetime, int]], moment: datetime) -> int | None:
    current = None
    for start, price in timeline:
        if start <= moment:
            current = price
    return current
