"""Write simulator/samples/sample-events.jsonl: two days of a small store's event log.

    python -m simulator.samples.make_sample_events [OUT]

Deterministic (no clock, no randomness): running it again gives the same file byte for byte.
Store S001 in Berlin, 2 gateways, 12 labels (one per SKU), prices in EUR. The daemon starts on
Sunday evening with a calendar that freezes prices while the store is open (Mon-Sat 08:00-20:00)
and on 2026-12-24; a nightly cycle runs at 05:30 local time on Monday and Tuesday, the midday
cycles are skipped because the store is open. Monday night one label (L000108) does not answer,
fails, and is acked after the 06:00 reconcile re-sends the same version; a change held for
approval on Monday is approved that afternoon and pushed on Tuesday night. Tuesday's promotion
for L000106 is pushed with effective_at 07:00, acked ``scheduled`` and then ``displayed`` at
07:00. Reductions carry the EU Omnibus reference price (the lowest price of the 30 days before).
Replaying this log (esl-pricing replay) reports no divergence.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from label_gateway.protocol import content_hash
from pricing.core.events import Event, write_jsonl
from pricing.core.store_calendar import FreezeConfig, Hours, StoreCalendar

OUT = Path(__file__).with_name("sample-events.jsonl")
STORE = "S001"
CURRENCY = "EUR"

# label -> (gateway, sku, shelf price before the log starts, lowest price of the last 30 days)
LABELS: dict[str, tuple[str, str, int, int]] = {
    "L000101": ("gw-01", "000101", 249, 239),
    "L000102": ("gw-01", "000102", 199, 199),
    "L000103": ("gw-01", "000103", 349, 329),
    "L000104": ("gw-01", "000104", 129, 125),
    "L000105": ("gw-01", "000105", 459, 459),
    "L000106": ("gw-01", "000106", 89, 85),
    "L000107": ("gw-02", "000107", 299, 299),
    "L000108": ("gw-02", "000108", 179, 169),
    "L000109": ("gw-02", "000109", 399, 389),
    "L000110": ("gw-02", "000110", 219, 219),
    "L000111": ("gw-02", "000111", 649, 649),
    "L000112": ("gw-02", "000112", 159, 155),
}

CALENDAR = StoreCalendar(
    timezone="Europe/Berlin",
    freeze=FreezeConfig(
        while_open=True,
        opening_hours={day: Hours(start="08:00", end="20:00") for day in ("mon", "tue", "wed", "thu", "fri", "sat")},
        dates=["2026-12-24"],
    ),
)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


class _Log:
    """Collects events with their times; seq follows time (ties keep the order of recording)."""

    def __init__(self) -> None:
        self.items: list[tuple[datetime, int, dict[str, Any]]] = []
        self.shelf = {label: price for label, (_, _, price, _) in LABELS.items()}
        self.lowest = {label: low for label, (_, _, _, low) in LABELS.items()}

    def add(self, kind: str, at: datetime, **fields: Any) -> None:
        self.items.append((at, len(self.items), {"kind": kind, "at": at, **fields}))

    def events(self) -> list[Event]:
        ordered = sorted(self.items, key=lambda item: (item[0], item[1]))
        return [Event(seq=n, store=STORE, **fields) for n, (_, _, fields) in enumerate(ordered, start=1)]

    def change(self, at: datetime, correlation: str, label: str, cents: int, *, effective: datetime | None = None) -> dict[str, Any]:
        """price_changed for the label's SKU and the pushed record; returns the push data."""
        gateway, sku, _, _ = LABELS[label]
        before = self.shelf[label]
        reference = min(self.lowest[label], before) if cents < before else None
        self.add(
            "price_changed", at, correlation=correlation, sku=sku,
            data={"price_cents": cents, "previous_cents": before, "reference_cents": reference,
                  "effective_from": (effective or at).isoformat()},
        )
        pushed_at = at + timedelta(milliseconds=240)
        data: dict[str, Any] = {
            "gateway": gateway,
            "version": _micros(pushed_at),
            "price_cents": cents,
            "currency": CURRENCY,
            "content_hash": content_hash(label, sku, cents, CURRENCY, reference),
        }
        if reference is not None:
            data["reference_cents"] = reference
        if effective is not None:
            data["effective_at"] = effective.isoformat()
        self.add("pushed", pushed_at, correlation=correlation, label=label, sku=sku, data=data)
        self.shelf[label] = cents
        self.lowest[label] = min(self.lowest[label], cents)
        return data

    def ack(self, at: datetime, correlation: str, label: str, push: dict[str, Any], status: str = "displayed") -> None:
        self.add(
            "acked", at, correlation=correlation, label=label, sku=LABELS[label][1],
            data={"gateway": push["gateway"], "version": push["version"], "status": status,
                  "price_cents": push["price_cents"]},
        )


def _night(log: _Log, day: str, changes: list[tuple[str, int]], *, correlation: str, **plan: Any) -> dict[str, dict[str, Any]]:
    """A nightly cycle at 05:30 Berlin (04:30 UTC): plan, price changes, pushes; acks come back in
    radio order per gateway, about 2 s apart. Returns the push data per label."""
    start = _at(f"{day}T04:30:00")
    job = {"job": f"nightly-{day}", "kind": "reprice"}
    log.add("cycle_started", start, correlation=correlation, data=job)
    planned = start + timedelta(seconds=41, milliseconds=180)
    log.add("plan_created", planned, correlation=correlation,
            data={**job, "changes": len(changes), **plan, "solver_status": "OPTIMAL", "gap_pct": 0.0})
    pushes: dict[str, dict[str, Any]] = {}
    for n, (label, cents) in enumerate(changes):
        pushes[label] = log.change(planned + timedelta(milliseconds=20 + 3 * n), correlation, label, cents)
    return pushes


def build() -> list[Event]:
    log = _Log()
    log.add("daemon_started", _at("2026-11-15T21:00:00.512000"), data={"calendar": CALENDAR.model_dump(mode="json")})

    # -- Monday 2026-11-16 -------------------------------------------------------------------------
    plan1 = "plan-20261116T043000Z-4f1c9a"
    night1 = [("L000101", 229), ("L000102", 209), ("L000104", 119), ("L000105", 479),
              ("L000107", 289), ("L000108", 189), ("L000109", 379)]
    pushes = _night(log, "2026-11-16", night1, correlation=plan1, awaiting_approval=1, held=0)
    radio = {"gw-01": _at("2026-11-16T04:30:42.310"), "gw-02": _at("2026-11-16T04:30:42.350")}
    for label, push in pushes.items():
        if label == "L000108":
            continue  # does not answer the radio tonight
        log.ack(radio[push["gateway"]], plan1, label, push)
        radio[push["gateway"]] += timedelta(seconds=2, milliseconds=130)
    log.add("failed", _at("2026-11-16T04:35:41.500"), correlation=plan1, label="L000108", sku="000108",
            data={"gateway": "gw-02", "version": pushes["L000108"]["version"],
                  "reason": "no ack after 5 attempts in 300 s (label unreachable)"})
    log.add("cycle_finished", _at("2026-11-16T04:35:41.620"), correlation=plan1,
            data={"job": "nightly-2026-11-16", "kind": "reprice", "pushed": 7, "confirmed": 6, "failed": 1})
    # The 06:00 reconcile sends the failed label its desired state again (same version).
    reconcile = {"job": "reconcile-2026-11-16T05:00", "kind": "reconcile"}
    log.add("cycle_started", _at("2026-11-16T05:00:00.004"), data=reconcile)
    log.add("pushed", _at("2026-11-16T05:00:00.180"), correlation=plan1, label="L000108", sku="000108",
            data=pushes["L000108"])
    log.ack(_at("2026-11-16T05:00:02.440"), plan1, "L000108", pushes["L000108"])
    log.add("cycle_finished", _at("2026-11-16T05:00:02.600"),
            data={**reconcile, "pushed": 1, "confirmed": 1, "failed": 0})
    log.add("cycle_skipped", _at("2026-11-16T11:00:00.002"),
            data={"job": "midday-2026-11-16", "kind": "reprice", "reason": "store open (mon 08:00-20:00)"})
    log.add("plan_approved", _at("2026-11-16T14:12:31.877"), correlation=plan1, sku="000111", data={"by": "alice"})

    # -- Tuesday 2026-11-17 ------------------------------------------------------------------------
    plan2 = "plan-20261117T043000Z-9b27e0"
    night2 = [("L000101", 239), ("L000103", 359), ("L000110", 229), ("L000112", 149)]
    pushes = _night(log, "2026-11-17", night2, correlation=plan2, awaiting_approval=0, held=1)
    planned = _at("2026-11-17T04:30:41.180")
    # Monday's approved change, held until the store closed, goes out with tonight's pushes.
    pushes["L000111"] = log.change(planned + timedelta(milliseconds=40), plan1, "L000111", 749)
    # A promotion that starts at 07:00 Berlin: labels hold it and switch at that instant.
    effective = _at("2026-11-17T06:00:00")
    pushes["L000106"] = log.change(planned + timedelta(milliseconds=46), plan2, "L000106", 79, effective=effective)
    radio = {"gw-01": _at("2026-11-17T04:30:42.290"), "gw-02": _at("2026-11-17T04:30:42.330")}
    for label, push in pushes.items():
        status = "scheduled" if label == "L000106" else "displayed"
        log.ack(radio[push["gateway"]], plan1 if label == "L000111" else plan2, label, push, status)
        radio[push["gateway"]] += timedelta(seconds=2, milliseconds=110)
    log.add("cycle_finished", _at("2026-11-17T04:30:55.020"), correlation=plan2,
            data={"job": "nightly-2026-11-17", "kind": "reprice", "pushed": 6, "confirmed": 6, "failed": 0})
    log.ack(effective + timedelta(milliseconds=310), plan2, "L000106", pushes["L000106"])
    log.add("cycle_skipped", _at("2026-11-17T11:00:00.003"),
            data={"job": "midday-2026-11-17", "kind": "reprice", "reason": "store open (tue 08:00-20:00)"})
    log.add("daemon_stopped", _at("2026-11-17T21:00:00.250"), data={"reason": "maintenance"})
    return log.events()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out = Path(args[0]) if args else OUT
    count = write_jsonl(build(), out)
    print(f"wrote {count} events to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
