"""A SKU's price history as a server-side SVG: the price as a step line over time, and the lowest
price of the previous 30 days (the EU Omnibus reference a reduction must show) as a dashed step
line, with the planned price after "now".

Plain SVG text made here, no chart library and no script: the page works offline and under a
strict Content-Security-Policy. Every text is escaped. Money stays integer cents until it is
printed.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from html import escape

from pricing.core.money import to_decimal
from pricing.core.timestamps import epoch_us, from_epoch_us, to_us
from pricing.store import omnibus
from pricing.store.omnibus import OMNIBUS_DAYS
from pricing.store.price_book import PricePeriod

WIDTH, HEIGHT = 1200, 330
LEFT, RIGHT, TOP, BOTTOM = 60, 110, 48, 34
PRICE_COLOUR = "#1d4ed8"
REFERENCE_COLOUR = "#c2410c"
PLANNED_COLOUR = "#15803d"
GRID_COLOUR = "#e5e7eb"
TEXT_COLOUR = "#4b5563"
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"


@dataclass(frozen=True)
class Step:
    """A constant value from ``start`` (inclusive) to ``end`` (exclusive)."""

    start: datetime
    end: datetime
    cents: int


def price_steps(periods: Sequence[PricePeriod], start: datetime, end: datetime) -> list[Step]:
    """The price in force over [start, end], one step per period (clipped)."""
    steps: list[Step] = []
    for p in periods:
        s = max(p.effective_from, start)
        e = min(p.effective_to or end, end)
        if e > s:
            steps.append(Step(s, e, p.price_cents))
    return steps


def lowest_steps(
    periods: Sequence[PricePeriod], start: datetime, end: datetime, *, days: int = OMNIBUS_DAYS
) -> list[Step]:
    """The lowest price in force at any moment of the ``days`` days before each instant of
    [start, end] (the price of the instant itself included: ``omnibus.lowest_price`` with
    ``including_at``), as steps. Before the first price there is no value and no step."""
    spans = [(p.price_cents, epoch_us(p.effective_from), to_us(p.effective_to)) for p in periods]
    first, last = epoch_us(start), epoch_us(end)
    edges = sorted(t for t in omnibus.breakpoints(spans, days=days) | {first, last} if first <= t <= last)
    moments = {t: from_epoch_us(t) for t in edges} | {first: start, last: end}
    steps: list[Step] = []
    for a, b in itertools.pairwise(edges):
        value = omnibus.lowest_price(spans, a, days=days, including_at=True)  # constant on [a, b)
        if value is None:
            continue
        if steps and steps[-1].cents == value and steps[-1].end == moments[a]:
            steps[-1] = Step(steps[-1].start, moments[b], value)
        else:
            steps.append(Step(moments[a], moments[b], value))
    return steps


def _nice_step(span: float, ticks: int = 4) -> int:
    raw = max(span / ticks, 1.0)
    magnitude = 10 ** (len(str(int(raw))) - 1)
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return int(factor * magnitude)
    return int(10 * magnitude)


class _Scale:
    def __init__(self, t0: datetime, t1: datetime, low: int, high: int) -> None:
        self.t0, self.t1 = t0, t1
        pad = max(1, round((high - low) * 0.15)) if high > low else max(5, round(high * 0.1))
        step = _nice_step(high - low + 2 * pad)
        self.low = max(0, (low - pad) // step * step)
        self.high = -(-(high + pad) // step) * step
        self.step = step
        self.width = WIDTH - LEFT - RIGHT
        self.height = HEIGHT - TOP - BOTTOM

    def x(self, t: datetime) -> float:
        span = (self.t1 - self.t0).total_seconds() or 1.0
        return LEFT + (t - self.t0).total_seconds() / span * self.width

    def y(self, cents: int) -> float:
        return TOP + (self.high - cents) / ((self.high - self.low) or 1) * self.height


def _path(steps: Sequence[Step], scale: _Scale) -> str:
    """One path through consecutive steps (a vertical jump where the value changes, a gap where
    the steps do not touch)."""
    parts: list[str] = []
    previous: Step | None = None
    for step in steps:
        x0, x1, y = scale.x(step.start), scale.x(step.end), scale.y(step.cents)
        if previous is not None and previous.end == step.start:
            parts.append(f"V{y:.1f}H{x1:.1f}")
        else:
            parts.append(f"M{x0:.1f},{y:.1f}H{x1:.1f}")
        previous = step
    return "".join(parts)


_TICK_STEPS = [timedelta(hours=h) for h in (1, 2, 3, 6, 12)] + [timedelta(days=d) for d in (1, 2, 7, 14, 28)]


def _time_ticks(t0: datetime, t1: datetime, tz: tzinfo, most: int = 8) -> list[tuple[datetime, str]]:
    """Ticks on whole local hours or midnights, at most ``most`` of them between t0 and t1."""
    span = t1 - t0
    step = next((s for s in _TICK_STEPS if span / s <= most), _TICK_STEPS[-1])
    local = t0.astimezone(tz)
    if step >= timedelta(days=1):
        first = local.replace(hour=0, minute=0, second=0, microsecond=0)
        fmt = "%d %b"
    else:
        first = local.replace(minute=0, second=0, microsecond=0)
        fmt = "%d %b %H:%M" if span > timedelta(hours=20) else "%H:%M"
    ticks: list[tuple[datetime, str]] = []
    moment = first
    while moment <= t1:
        if moment >= t0:
            ticks.append((moment, moment.strftime(fmt)))
        if step >= timedelta(days=1):
            moment = (moment + step + timedelta(hours=3)).replace(hour=0)  # midnight again across DST changes
        else:
            moment = moment + step
    return ticks


def _text(x: float, y: float, text: str, *, anchor: str = "start", colour: str = TEXT_COLOUR, size: int = 11,
          weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{colour}" font-size="{size}" '
            f'font-weight="{weight}">{escape(text)}</text>')


def price_history_svg(
    periods: Sequence[PricePeriod],
    *,
    now: datetime,
    currency: str,
    planned_cents: int | None = None,
    shelf_cents: int | None = None,
    tz: tzinfo | None = None,
    days: int = 120,
    title: str = "Price history",
) -> str:
    """The chart of ``periods`` (a SKU's price book history, oldest first) over the last ``days``
    days up to ``now`` (at least a week), with ``planned_cents`` drawn after now. ``shelf_cents``:
    the price the shelf shows now when the price book has no history yet (drawn as a point)."""
    zone = tz or now.tzinfo
    assert zone is not None, "now must carry a time zone"
    first = min((p.effective_from for p in periods), default=now)
    t0 = max(min(first, now - timedelta(days=7)), now - timedelta(days=days))
    future = (now - t0) * 0.12
    t1 = now + future
    prices = price_steps(periods, t0, now)
    lowest = lowest_steps(periods, t0, now)
    shelf = shelf_cents if not prices else None
    values = [s.cents for s in prices + lowest] + [c for c in (planned_cents, shelf) if c is not None]
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{escape(title)}" font-family="{escape(FONT)}">')
    out = [head, f"<title>{escape(title)}</title>"]
    if not values:
        out.append(_text(WIDTH / 2, HEIGHT / 2, "No price history in the price book yet", anchor="middle", size=13))
        out.append("</svg>")
        return "".join(out)
    scale = _Scale(t0, t1, min(values), max(values))
    # grid and axes
    cents = scale.low
    while cents <= scale.high:
        y = scale.y(cents)
        out.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="{GRID_COLOUR}"/>')
        out.append(_text(LEFT - 8, y + 4, str(to_decimal(cents)), anchor="end"))
        cents += scale.step
    for moment, label in _time_ticks(t0, now, zone):
        x = scale.x(moment)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{HEIGHT - BOTTOM}" stroke="{GRID_COLOUR}"/>')
        out.append(_text(x, HEIGHT - BOTTOM + 16, label, anchor="middle"))
    x_now = scale.x(now)
    out.append(f'<line x1="{x_now:.1f}" y1="{TOP - 4}" x2="{x_now:.1f}" y2="{HEIGHT - BOTTOM}" stroke="#9ca3af" '
               'stroke-width="1"/>')
    out.append(_text(x_now, TOP - 8, "now", anchor="middle"))
    # the lines
    if lowest:
        out.append(f'<path class="reference-line" d="{_path(lowest, scale)}" fill="none" stroke="{REFERENCE_COLOUR}" '
                   'stroke-width="2" stroke-dasharray="6 4"/>')
    if prices:
        out.append(f'<path class="price-line" d="{_path(prices, scale)}" fill="none" stroke="{PRICE_COLOUR}" '
                   'stroke-width="2.5"/>')
        for step in prices:
            x, y = scale.x(step.start), scale.y(step.cents)
            when = step.start.astimezone(zone).strftime("%Y-%m-%d %H:%M")
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{PRICE_COLOUR}"><title>'
                       f'{escape(when)}: {to_decimal(step.cents)} {escape(currency)}</title></circle>')
        current = prices[-1].cents
        out.append(_text(x_now + 6, scale.y(current) + 4, f"{to_decimal(current)}", colour=PRICE_COLOUR,
                         weight="600"))
    if shelf is not None:
        y = scale.y(shelf)
        out.append(f'<circle cx="{x_now:.1f}" cy="{y:.1f}" r="4" fill="{PRICE_COLOUR}"/>')
        out.append(_text(x_now - 8, y + 4, f"{to_decimal(shelf)} now (no price book history yet)", anchor="end",
                         colour=PRICE_COLOUR, weight="600"))
    if planned_cents is not None:
        y = scale.y(planned_cents)
        out.append(f'<path class="planned-line" d="M{x_now:.1f},{y:.1f}H{scale.x(t1):.1f}" fill="none" '
                   f'stroke="{PLANNED_COLOUR}" stroke-width="2.5" stroke-dasharray="2 3"/>')
        out.append(f'<circle cx="{x_now:.1f}" cy="{y:.1f}" r="4" fill="{PLANNED_COLOUR}"/>')
        out.append(_text(scale.x(t1) + 6, y + 4, f"{to_decimal(planned_cents)} planned", colour=PLANNED_COLOUR,
                         weight="600"))
    # legend
    legend = [
        (PRICE_COLOUR, "", f"Price ({currency})"),
        (REFERENCE_COLOUR, "6 4", f"Lowest price of the previous {OMNIBUS_DAYS} days (Omnibus reference)"),
    ]
    if planned_cents is not None:
        legend.append((PLANNED_COLOUR, "2 3", "Planned"))
    x = LEFT
    for colour, dash, label in legend:
        dashes = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{x}" y1="14" x2="{x + 22}" y2="14" stroke="{colour}" stroke-width="2.5"{dashes}/>')
        out.append(_text(x + 28, 18, label))
        x += 40 + int(len(label) * 6.2)
    out.append("</svg>")
    return "".join(out)
