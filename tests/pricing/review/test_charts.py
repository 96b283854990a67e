"""The price history chart: the step lines it draws and the 30-day lowest price it computes."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from pricing.review.charts import lowest_steps, price_history_svg, price_steps
from pricing.store.price_book import PricePeriod

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
