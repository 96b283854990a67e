"""pricing.store.price_book: full history per store and SKU, and the EU Omnibus reference price."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_engine, func, select

from pricing.core.database import open_engine
from pricing.core.timestamps import epoch_us, from_epoch_us
from pricing.store import omnibus
from pricing.store.omnibus import DAY_US
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
        book.record({"A": 100}, at=datetime(2026, 1, 1), currency="EUR", correlation="p")


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


# -- one Omnibus rule (pricing.store.omnibus) behind every path of the book ---------------------

T0_US = epoch_us(T0)

# Gaps between recorded changes: whole days (windows end exactly on a change), a microsecond either
# side of a whole day, and 0 (two changes at the same instant: a period of no length).
_gaps = st.one_of(
    st.integers(0, 45).map(lambda days: days * DAY_US),
    st.tuples(st.integers(0, 45), st.sampled_from([-1, 1])).map(lambda d: max(0, d[0] * DAY_US + d[1])),
    st.just(0),
)
_histories = st.lists(st.tuples(_gaps, st.integers(1, 6)), min_size=1, max_size=10)


def _lowest_by_aggregate(engine: Engine, store: str, at_us: int) -> dict[str, int]:
    """``lowest_prices`` as it was, one SQL aggregate: the oracle for "behaviour unchanged"."""
    c = price_history.c
    query = (
        select(c.sku, func.min(c.price_cents))
        .where(
            c.store == store, c.effective_from_us < at_us,
            (c.effective_to_us.is_(None)) | (c.effective_to_us > at_us - 30 * DAY_US),
        )
        .group_by(c.sku)
    )
    with engine.connect() as conn:
        return {sku: int(low) for sku, low in conn.execute(query)}


def _spans(book: PriceBook, sku: str) -> list[omnibus.Period]:
    return [(p.price_cents, epoch_us(p.effective_from), None if p.effective_to is None else epoch_us(p.effective_to))
            for p in book.history(sku)]


def _probes(spans: list[omnibus.Period]) -> set[int]:
    """Every instant where the answer may change, a microsecond either side, and far before/after."""
    edges = omnibus.breakpoints(spans) | {T0_US - DAY_US, max(s[1] for s in spans) + 90 * DAY_US}
    return {t + d for t in edges for d in (-1, 0, 1)}


@settings(max_examples=80, deadline=None)
@given(_histories)
def test_every_path_of_the_book_follows_the_one_rule_on_random_histories(changes: list[tuple[int, int]]) -> None:
    """``record``'s reference, ``current_references`` and ``lowest_prices`` (rows fetched in SQL,
    the rule in omnibus) agree with each other, with omnibus, and with the former SQL aggregate."""
    engine, book = _memory_book()
    book.record({"B": 7}, at=T0, currency="EUR", correlation="other")  # another SKU, left out
    at_us = T0_US
    for gap, price in changes:
        at_us += gap
        before = book.current().get("A")
        lowest_then = _lowest_by_aggregate(engine, "S", at_us).get("A")
        assert book.lowest_prices(["A"], from_epoch_us(at_us)).get("A") == lowest_then
        recorded = book.record({"A": price}, at=from_epoch_us(at_us), currency="EUR", correlation="p")
        if price == before:
            assert recorded == []
            continue
        [change] = recorded
        expected = None if before is None or price >= before else min(lowest_then or before, before)
        assert change.reference_cents == expected == omnibus.reference(price, before, lowest_then)
        # the label of today's price shows what the reduction was given
        assert book.current_references().get("A") == expected
        assert book.current_references(["A"]).get("A") == expected
        assert omnibus.current_reference(_spans(book, "A")) == expected
    spans = _spans(book, "A")
    for probe in sorted(_probes(spans)):
        by_aggregate = _lowest_by_aggregate(engine, "S", probe)
        lowest = book.lowest_prices(["A", "B", "C"], from_epoch_us(probe))
        assert lowest == by_aggregate
        assert lowest.get("A") == omnibus.lowest_price(spans, probe)


def test_the_window_boundaries() -> None:
    """30 × 24 hours before ``at``, ``at`` itself excluded: a price that ended exactly when the
    window began does not count, one that ended a microsecond later does."""
    at = T0_US + 100 * DAY_US
    start = at - 30 * DAY_US
    assert omnibus.lowest_price([(100, T0_US, start)], at) is None
    assert omnibus.lowest_price([(100, T0_US, start + 1)], at) == 100
    assert omnibus.lowest_price([(100, at, None)], at) is None
    assert omnibus.lowest_price([(100, at, None)], at, including_at=True) == 100
    assert omnibus.lowest_price([(100, at - 1, None)], at) == 100
    assert omnibus.lowest_price([(100, T0_US, start + 1)], at, days=31) == 100
    assert omnibus.reference(90, 100, None) == 100  # nothing older: the price before
    assert omnibus.reference(90, 100, 95) == 95
    assert omnibus.reference(90, 100, 120) == 100  # never above the price before
    assert omnibus.reference(100, 100, 50) is None and omnibus.reference(90, None, 50) is None


def test_changes_at_one_instant_give_current_references_what_record_gave() -> None:
    """A price that lasted no time at the reduction's instant was never applied before it: the
    current reference is the one ``record`` gave (it used to count it)."""
    _, book = _memory_book()
    book.record({"A": 50}, at=T0, currency="EUR", correlation="p1")
    book.record({"A": 100}, at=T0, currency="EUR", correlation="p2")
    [change] = book.record({"A": 60}, at=T0, currency="EUR", correlation="p3")
    assert change.reference_cents == 100
    assert book.current_references() == {"A": 100}


def test_lowest_prices_of_many_skus_fetches_the_store() -> None:
    """More than 500 SKUs are filtered after one query of the store's rows, with the same answer."""
    _, book = _memory_book()
    skus = [f"{n:04d}" for n in range(620)]
    book.record({sku: 500 + n for n, sku in enumerate(skus)}, at=day(0), currency="EUR", correlation="p1")
    book.record({sku: 400 + n for n, sku in enumerate(skus) if n % 2 == 0}, at=day(10), currency="EUR",
                correlation="p2")
    many = book.lowest_prices(skus[:600], day(20))
    assert len(many) == 600 and "0600" not in many
    assert many == {sku: book.lowest_prices([sku], day(20))[sku] for sku in skus[:600]}
    assert many["0000"] == 400 and many["0001"] == 501
    assert book.lowest_prices(skus, day(41)) == {sku: 400 + n if n % 2 == 0 else 500 + n for n, sku in enumerate(skus)}
