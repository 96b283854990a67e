"""The event log's public format: one event, and the JSONL files it is exported to and replayed from.

The engine's log (pricing.store.event_log) stores these in the ``events`` table; the replay
(simulator.replay) reads them from an exported file. One line per event::

    {"seq": 12, "at": "2026-11-23T05:30:00.120000Z", "store": "S001", "kind": "pushed",
     "correlation": "plan-20261123T053000Z-1a2b3c", "label": "L000012", "sku": "000123",
     "data": {"gateway": "gw-01", "version": 1795411800120000, "price_cents": 279, ...}}

Kinds and their ``data``:

- ``daemon_started``  ``{"calendar": StoreCalendar}``: the time zone and freeze windows in force.
- ``cycle_started`` / ``cycle_finished`` / ``cycle_skipped``  ``{"job": id, "kind": job kind, ...}``
- ``plan_created``  ``{"job", "changes", "awaiting_approval", "held", "solver_status", "gap_pct"}``
- ``plan_approved`` / ``plan_rejected`` (per SKU)  ``{"by": name}``
- ``price_changed`` (price book, per SKU)  ``{"price_cents", "previous_cents", "reference_cents", "effective_from"}``
- ``pushed`` (per label)  ``PushedData``: the desired state as recorded in the outbox
- ``acked`` (per label)  ``AckedData``: the label displays (or scheduled) that version
- ``failed`` (per label)  ``FailedData``
- ``held`` (per SKU)  ``{"price_cents", "cost_cents", "reason"}``: the last gate
  (pricing.store.last_gate) kept a price from the price book and the labels: not positive, no
  cost on record (a cost of 0 counts as missing), below cost or outside a hard price rule.
  ``price_cents`` is the price as given (a text when it was not whole cents). Replay ignores it.
- ``reverted`` (per SKU)  ``{"price_cents", "reverted_correlation"}``: an operator undid a plan
- ``kill_switch``  ``{"on": bool, "by": name}``
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pricing.core.errors import first_error
from pricing.core.files import atomic_write

EventKind = Literal[
    "daemon_started",
    "daemon_stopped",
    "cycle_started",
    "cycle_finished",
    "cycle_skipped",
    "plan_created",
    "plan_approved",
    "plan_rejected",
    "price_changed",
    "pushed",
    "acked",
    "failed",
    "held",
    "reverted",
    "kill_switch",
]


class EventLogError(ValueError):
    """An event file that cannot be read; the message is one ``FILE:LINE: what`` line."""


class Event(BaseModel):
    """One entry of the log. ``seq`` is given by the database (0 before it is appended)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(default=0, ge=0)
    at: datetime
    store: str = Field(min_length=1)
    kind: EventKind
    correlation: str | None = None
    label: str | None = None
    sku: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)


class PushedData(BaseModel):
    """``pushed``: a desired state was recorded for a label (published next)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: str
    version: int = Field(ge=1)
    price_cents: int = Field(ge=1)
    currency: str
    content_hash: str
    reference_cents: int | None = None
    effective_at: datetime | None = None


class AckedData(BaseModel):
    """``acked``: the label acknowledged ``version`` (displayed, unchanged or scheduled)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: str
    version: int = Field(ge=1)
    status: Literal["displayed", "unchanged", "scheduled"]
    price_cents: int = Field(ge=1)


class FailedData(BaseModel):
    """``failed``: the engine gave up on ``version`` for this label (``reason`` says why)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    gateway: str
    version: int = Field(ge=1)
    reason: str


# -- JSONL files ------------------------------------------------------------------------------


def event_line(event: Event) -> str:
    return event.model_dump_json(exclude_none=True)


def write_jsonl(items: Iterable[Event], path: Path) -> int:
    """Write events as JSONL (atomically); returns how many."""
    n = 0

    def write(out: Any) -> None:
        nonlocal n
        for event in items:
            out.write((event_line(event) + "\n").encode("utf-8"))
            n += 1

    atomic_write(path, write)
    return n


def read_jsonl(path: Path) -> list[Event]:
    """Read an exported log; a bad line is an EventLogError ``FILE:LINE: what``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EventLogError(f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    out: list[Event] = []
    # "\n" only: JSON leaves U+0085, U+2028 and U+2029 unescaped, and str.splitlines() breaks at them
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            out.append(Event.model_validate_json(line))
        except ValidationError as exc:
            raise EventLogError(f"{path}:{number}: {first_error(exc, 'event')}") from None
    return out
