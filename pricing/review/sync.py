"""Whether a SKU's labels show a price: one state per label and one summary per SKU.

A label's outbox row says what it should show (``price_cents``, ``version``) and what it last
confirmed (``confirmed_version``). Against a price the page cares about (a plan's new price):

- ``not pushed``: no row, or the row wants another price (the change was not queued yet);
- ``pending`` / ``sent`` / ``scheduled``: on its way;
- ``confirmed``: the label acknowledged displaying this version;
- ``failed``: the engine gave up on it (``last_error`` says why).

A SKU's summary is its least advanced label's state (failed first), with the counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from label_gateway.outbox import LabelRow

ORDER = ("failed", "not pushed", "pending", "sent", "scheduled", "confirmed")


def label_state(row: LabelRow | None, target_cents: int | None = None) -> str:
    if row is None or (target_cents is not None and row.price_cents != target_cents):
        return "not pushed"
    if row.state == "confirmed":
        return "confirmed" if row.shows_desired else "pending"
    return row.state


@dataclass(frozen=True)
class SkuSync:
    state: str  # one of ORDER, or "no labels"
    counts: dict[str, int]
    labels: int

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "counts": self.counts, "labels": self.labels, "text": self.text}

    @property
    def text(self) -> str:
        if self.labels == 0:
            return "no labels"
        if self.state == "confirmed":
            return f"confirmed {self.labels}/{self.labels}" if self.labels > 1 else "confirmed"
        done = self.counts.get("confirmed", 0)
        return f"{self.state} ({done}/{self.labels} confirmed)" if self.labels > 1 else self.state


def sku_sync(label_ids: Sequence[str], rows: Mapping[str, LabelRow], target_cents: int | None) -> SkuSync:
    """The summary of one SKU's labels against ``target_cents``."""
    counts = Counter(label_state(rows.get(label), target_cents) for label in label_ids)
    if not label_ids:
        return SkuSync("no labels", {}, 0)
    state = next(s for s in ORDER if counts.get(s))
    return SkuSync(state, dict(counts), len(label_ids))


def rows_by_label(rows: Iterable[LabelRow]) -> dict[str, LabelRow]:
    return {row.label_id: row for row in rows}
