"""The EU Omnibus rule (Directive 98/6/EC art. 6a), defined once: an announced price reduction
shows the lowest price applied during the 30 days before the reduction.

Pure functions over one SKU's price history, given as ``(price_cents, effective_from_us,
effective_to_us)`` periods: microseconds since the epoch as the price book stores them, the start
inclusive, the end exclusive and None while the price is current. The price book (the reference a
recorded reduction carries, the one a label of today's price must show, the lowest price of the
last 30 days) and the review chart (its reference line) all ask here:

- the window: the ``days`` × 24 hours (exact microseconds, not calendar days) before ``at``:
  [at - days, at);
- which prices count: every period in force at some moment of the window, i.e. it started before
  ``at`` and had not ended when the window began (a price that ended exactly at the window's start
  does not count). ``including_at`` also counts a price starting at ``at`` itself (the chart's
  line at an instant includes the price of that instant);
- a reduction is a price strictly below the price before it; its reference is the lowest price of
  the window, never above the price before the reduction (which counts even when the book knows
  nothing older).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

OMNIBUS_DAYS = 30
DAY_US = 86_400_000_000

Period = tuple[int, int, int | None]
"""(price_cents, effective_from_us, effective_to_us)"""


def window_start(at_us: int, days: int = OMNIBUS_DAYS) -> int:
    """The first microsecond of the window before ``at_us``."""
    return at_us - days * DAY_US


def lowest_price(
    periods: Iterable[Period], at_us: int, *, days: int = OMNIBUS_DAYS, including_at: bool = False
) -> int | None:
    """The lowest price in force at any moment of the ``days`` days before ``at_us`` (None when no
    price was)."""
    start = window_start(at_us, days)
    if including_at:
        prices = [cents for cents, begin, end in periods if begin <= at_us and (end is None or end > start)]
    else:
        prices = [cents for cents, begin, end in periods if begin < at_us and (end is None or end > start)]
    return min(prices, default=None)


def reference(cents: int, before: int | None, lowest: int | None) -> int | None:
    """The reference a change to ``cents`` from ``before`` shows (None unless it is a reduction),
    ``lowest`` being ``lowest_price`` of the history at the change."""
    if before is None or cents >= before:
        return None
    return before if lowest is None else min(lowest, before)


def current_reference(periods: Sequence[Period], *, days: int = OMNIBUS_DAYS) -> int | None:
    """The reference of the current price, when it is a reduction from the price before it: what a
    label showing it must show. ``periods`` oldest first (by start, then as recorded); the last
    must be the open one."""
    if len(periods) < 2 or periods[-1][2] is not None:
        return None
    cents, start, _ = periods[-1]
    earlier = periods[:-1]
    return reference(cents, earlier[-1][0], lowest_price(earlier, start, days=days))


def breakpoints(periods: Iterable[Period], *, days: int = OMNIBUS_DAYS) -> set[int]:
    """The instants at which ``lowest_price(periods, t, including_at=True)`` may change as ``t``
    goes by: where a price starts, where one ends, and where an ended one leaves the window."""
    points: set[int] = set()
    for _, begin, end in periods:
        points.add(begin)
        if end is not None:
            points.update((end, end + days * DAY_US))
    return points
