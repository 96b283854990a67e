"""The price history chart: the step lines it draws and the 30-day lowest price it computes."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine

from pricing.core.timestamps import epoch_us, from_epoch_us
from pricing.review.charts import Step, lowest_steps, price_history_svg, price_steps
from pricing.store import omnibus
from pricing.store.omnibus import DAY_US
from pricing.store.price_book import PriceBook, PricePeriod, price_history

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)


def _period(price: int, start_days_ago: float, end_days_ago: float | None) -> PricePeriod:
    end = None if end_days_ago is None else NOW - timedelta(days=end_days_ago)
    return PricePeriod("0001", price, "EUR", NOW - timedelta(days=start_days_ago), end, "plan", "plan")


HISTORY = [_period(300, 90, 40), _period(250, 40, 25), _period(320, 25, 5), _period(280, 5, None)]


def test_price_steps_clip_to_the_window() -> None:
    steps = price_steps(HISTORY, NOW - timedelta(days=60), NOW)
    assert [s.cents for s in steps] == [300, 250, 320, 280]
    assert steps[0].start == NOW - timedelta(days=60) and steps[-1].end == NOW


def _at(steps: list, days_ago: float) -> int:
    moment = NOW - timedelta(days=days_ago)
    return next(s.cents for s in steps if s.start <= moment < s.end)


def test_lowest_steps_follow_the_30_day_window() -> None:
    steps = lowest_steps(HISTORY, NOW - timedelta(days=60), NOW)
    assert _at(steps, 50) == 300  # only 300 in the 30 days before
    assert _at(steps, 30) == 250  # the reduction to 250 is in the window
    assert _at(steps, 2) == 250  # 250 was in force until 25 days ago: still within the 30 days
    # a low price leaves the window 30 days after it ended
    history = [_period(200, 80, 50), _period(300, 50, None)]
    steps = lowest_steps(history, NOW - timedelta(days=70), NOW)
    assert _at(steps, 60) == 200 and _at(steps, 21) == 200 and _at(steps, 19) == 300
    change = next(s for s in steps if s.cents == 300)
    assert change.start == NOW - timedelta(days=20)
    # consecutive equal values are one step
    assert all(a.cents != b.cents for a, b in itertools.pairwise(steps) if a.end == b.start)


def test_the_svg_has_price_reference_and_planned_lines_and_escapes_text() -> None:
    svg = price_history_svg(HISTORY, now=NOW, currency="EUR", planned_cents=259, title="History of <b>&</b>")
    root = ET.fromstring(svg)  # well-formed XML
    classes = {el.get("class") for el in root.iter() if el.get("class")}
    assert {"price-line", "reference-line", "planned-line"} <= classes
    reference = next(el for el in root.iter() if el.get("class") == "reference-line")
    assert reference.get("stroke-dasharray") == "6 4"
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert "2.59 planned" in svg


def test_an_empty_history_says_so_and_shows_the_shelf_price() -> None:
    svg = price_history_svg([], now=NOW, currency="EUR", planned_cents=None)
    assert "No price history" in svg
    svg = price_history_svg([], now=NOW, currency="EUR", planned_cents=259, shelf_cents=279)
    ET.fromstring(svg)
    assert "2.79 now (no price book history yet)" in svg and "2.59 planned" in svg


# -- the reference line follows the one Omnibus rule (pricing.store.omnibus) -----------------------

NOW_US = epoch_us(NOW)


def _lowest_steps_as_it_was(
    periods: Sequence[PricePeriod], start: datetime, end: datetime, *, days: int = 30
) -> list[Step]:
    """``lowest_steps`` before it asked omnibus (its own copy of the rule): the oracle."""
    window = timedelta(days=days)
    edges = {start, end}
    for p in periods:
        for moment in (p.effective_from, p.effective_to):
            if moment is not None:
                edges.update((moment, moment + window))
    points = sorted(t for t in edges if start <= t <= end)
    steps: list[Step] = []
    for a, b in itertools.pairwise(points):
        mid = a + (b - a) / 2
        low = [
            p.price_cents for p in periods
            if p.effective_from <= mid and (p.effective_to is None or p.effective_to > mid - window)
        ]
        if not low:
            continue
        value = min(low)
        if steps and steps[-1].cents == value and steps[-1].end == a:
            steps[-1] = Step(steps[-1].start, b, value)
        else:
            steps.append(Step(a, b, value))
    return steps


# instants near NOW: whole days, or a microsecond or two off them (windows end exactly on a change)
_instants = st.tuples(st.integers(-100, 10), st.sampled_from([0, 0, 1, -1, 2])).map(
    lambda d: NOW_US + d[0] * DAY_US + d[1]
)
_periods = st.lists(
    st.tuples(st.integers(1, 6), _instants, st.one_of(st.none(), st.integers(0, 40 * DAY_US + 2))), max_size=8
).map(lambda spans: [
    PricePeriod("0001", cents, "EUR", from_epoch_us(begin), None if length is None else from_epoch_us(begin + length),
                "plan", "plan")
    for cents, begin, length in spans
])


@settings(max_examples=300, deadline=None)
@given(_periods, _instants, _instants, st.sampled_from([30, 30, 1, 7]))
def test_lowest_steps_are_what_they_were_on_random_histories(
    periods: list[PricePeriod], start: int, end: int, days: int
) -> None:
    """Any periods (gaps, overlaps, periods of no length) and any span: the same steps as the
    chart's former copy of the rule."""
    a, b = from_epoch_us(start), from_epoch_us(end)
    assert lowest_steps(periods, a, b, days=days) == _lowest_steps_as_it_was(periods, a, b, days=days)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([0, 1, DAY_US - 1, DAY_US, 10 * DAY_US, 30 * DAY_US, 30 * DAY_US + 1]),
                          st.integers(1, 6)), min_size=1, max_size=8))
def test_the_reference_line_is_the_price_books_lowest_price(changes: list[tuple[int, int]]) -> None:
    """At every instant the line shows the price book's lowest price of the 30 days before it
    (``PriceBook.lowest_prices``), or the price starting at that instant when it is lower."""
    engine = create_engine("sqlite://")
    price_history.metadata.create_all(engine)
    book = PriceBook(engine, "S")
    at = NOW_US - 80 * DAY_US
    for gap, price in changes:
        at += gap
        book.record({"0001": price}, at=from_epoch_us(at), currency="EUR", correlation="p")
    history = book.history("0001")
    start, end = history[0].effective_from - timedelta(days=1), from_epoch_us(at + 45 * DAY_US)
    steps = lowest_steps(history, start, end)
    spans = [(p.price_cents, epoch_us(p.effective_from), None if p.effective_to is None else epoch_us(p.effective_to))
             for p in history]
    for edge in omnibus.breakpoints(spans) | {epoch_us(start)}:
        for probe in (edge - 1, edge, edge + 1):
            moment = from_epoch_us(probe)
            if not start <= moment < end:
                continue
            shown = next((s.cents for s in steps if s.start <= moment < s.end), None)
            candidates = [p.price_cents for p in history if p.effective_from == moment]
            candidates += list(book.lowest_prices(["0001"], moment).values())
            assert shown == min(candidates, default=None)
