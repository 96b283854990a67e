"""What the plan page shows: a plan's lines as rows to filter, sort and page through, and the
plan's summary. Plain data, shared by the HTML pages and the JSON API.

A row's status as a pricing manager reads it: ``change`` (within the approval band, pushed
without a decision), ``approved`` (a held change someone approved), ``approval`` (needs
approval), ``rejected``, ``keep`` (the best price is today's) and ``held`` (not priced). The
page shows the changes by default and at most ``limit`` rows at a time: a plan has up to
50,000 lines, most of them ``keep``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pricing.core.money import to_decimal
from pricing.plan.price_plan import PlanLine, PricePlan
from pricing.review.sync import SkuSync

VIEW_STATUSES = ("approval", "approved", "change", "rejected", "held", "keep")
STATUS_TEXT = {
    "approval": "needs approval", "approved": "approved", "change": "change", "rejected": "rejected",
    "held": "held", "keep": "keep",
}
FILTERS: dict[str, tuple[str, ...]] = {
    "changes": ("approval", "approved", "change", "rejected"),
    "approval": ("approval",),
    "approved": ("approved",),
    "change": ("change",),
    "rejected": ("rejected",),
    "held": ("held",),
    "keep": ("keep",),
    "all": VIEW_STATUSES,
}
FILTER_TEXT = {
    "changes": "Changes", "approval": "Needs approval", "approved": "Approved", "change": "Within band",
    "rejected": "Rejected", "held": "Held", "all": "All SKUs",
}
SORT_KEYS = ("sku", "name", "category", "old", "new", "change", "profit", "reason", "status", "decided", "labels")
PUSHED = ("change", "approved")  # rows whose labels should show the new price


class FilterError(ValueError):
    """A status filter or sort key the page does not know (one line)."""


def view_status(line: PlanLine) -> str:
    if line.status == "change" and line.decided_by:
        return "approved"
    return line.status


def change_pct(line: PlanLine) -> float | None:
    return None if line.old_cents <= 0 else (line.new_cents - line.old_cents) / line.old_cents * 100


def profit_delta(line: PlanLine) -> float | None:
    """Expected profit change per day, cents (None when the plan has no estimate)."""
    if line.profit_old_cents is None or line.profit_new_cents is None:
        return None
    return line.profit_new_cents - line.profit_old_cents


def signed_money(cents: float | None) -> str:
    """Signed decimal text for the JSON API: ``+1234.56``, ``-0.50``, ``0.00`` ("" for None)."""
    if cents is None:
        return ""
    value = to_decimal(round(cents))
    return f"+{value}" if value > 0 else str(value)


def signed_display(cents: float | None) -> str:
    """Signed amount as the page shows it, thousands grouped like every amount on the page (and
    like static/app.js's ``groupThousands`` after a live update): ``+1,234.56``."""
    if cents is None:
        return ""
    value = to_decimal(round(cents))
    return f"+{value:,}" if value > 0 else f"{value:,}"


#: Where a plan line's explanation says why it waits (pricing/plan/explain.py).
APPROVAL_CLAUSE = "needs approval"


def split_explanation(explanation: str) -> tuple[str, str]:
    """(the reason, the "needs approval: ..." clause or ""): the page shows the clause in full,
    whatever the length of the reason before it."""
    at = explanation.find(APPROVAL_CLAUSE)
    if at < 0:
        return explanation, ""
    return explanation[:at].rstrip(" ;,"), explanation[at:]


def decided_together(plan: PricePlan) -> dict[str, tuple[str, ...]]:
    """sku -> the other SKUs awaiting approval in its family, ladder or tier group: approving or
    rejecting one decides them all (PricePlan.decide), so the page names them before the click."""
    by_group: dict[str, list[str]] = {}
    for line in plan.lines:
        if line.status == "approval" and line.group:
            by_group.setdefault(line.group, []).append(line.sku)
    return {sku: tuple(s for s in skus if s != sku) for skus in by_group.values() if len(skus) > 1 for sku in skus}


def parse_filter(text: str | None) -> tuple[str, tuple[str, ...]]:
    """A filter name ("changes", "approval", ...) or a comma list of statuses -> (name, statuses)."""
    name = (text or "changes").strip().lower()
    if name in FILTERS:
        return name, FILTERS[name]
    wanted = tuple(part.strip() for part in name.split(",") if part.strip())
    unknown = [part for part in wanted if part not in VIEW_STATUSES]
    if not wanted or unknown:
        raise FilterError(
            f"unknown status filter '{text}' (use {', '.join(FILTERS)} or a comma list of {', '.join(VIEW_STATUSES)})"
        )
    return name, wanted


@dataclass
class Row:
    line: PlanLine
    status: str
    sync: SkuSync | None = None
    mates: tuple[str, ...] = ()  # decided with this SKU (decided_together)

    @property
    def explanation_parts(self) -> tuple[str, str]:
        return split_explanation(self.line.explanation)

    @property
    def change_pct(self) -> float | None:
        return change_pct(self.line)

    @property
    def profit_delta(self) -> float | None:
        return profit_delta(self.line)

    @property
    def needs_approval(self) -> bool:
        return self.status == "approval"

    @property
    def status_text(self) -> str:
        return STATUS_TEXT[self.status]

    @property
    def reason(self) -> str:
        return f"{self.line.binding_rule}: {self.line.explanation}" if self.line.explanation else self.line.binding_rule

    def as_dict(self) -> dict[str, Any]:
        line = self.line
        pct = self.change_pct
        return {
            "sku": line.sku, "name": line.name, "category": line.category,
            "status": self.status, "plan_status": line.status, "needs_approval": self.needs_approval,
            "old_price": str(to_decimal(line.old_cents)), "new_price": str(to_decimal(line.new_cents)),
            "change_pct": None if pct is None else round(pct, 2),
            "profit_per_day_old": None if line.profit_old_cents is None else str(to_decimal(round(line.profit_old_cents))),
            "profit_per_day_new": None if line.profit_new_cents is None else str(to_decimal(round(line.profit_new_cents))),
            "profit_per_day_change": signed_money(self.profit_delta) or None,
            "binding_rule": line.binding_rule, "explanation": line.explanation, "decided_with": list(self.mates),
            "relaxed_rules": line.relaxed_rules, "soft_rules_broken": line.soft_rules_broken, "group": line.group,
            "decided_by": line.decided_by,
            "decided_at": None if line.decided_at is None else line.decided_at.isoformat(),
            "labels": None if self.sync is None else self.sync.as_dict(),
        }


STATUS_RANK = {status: i for i, status in enumerate(VIEW_STATUSES)}


def _sort_key(key: str) -> Callable[[Row], Any]:
    keys: dict[str, Callable[[Row], Any]] = {
        "sku": lambda r: r.line.sku,
        "name": lambda r: r.line.name.casefold(),
        "category": lambda r: (r.line.category, r.line.name.casefold()),
        "old": lambda r: r.line.old_cents,
        "new": lambda r: r.line.new_cents,
        "change": lambda r: r.change_pct if r.change_pct is not None else 0.0,
        "profit": lambda r: r.profit_delta if r.profit_delta is not None else float("-inf"),
        "reason": lambda r: r.line.binding_rule,
        "status": lambda r: (STATUS_RANK[r.status], -abs(r.profit_delta or 0.0)),
        "decided": lambda r: (r.line.decided_by or "~", r.line.decided_at.isoformat() if r.line.decided_at else ""),
        "labels": lambda r: r.sync.state if r.sync else "~",
    }
    if key not in keys:
        raise FilterError(f"unknown sort key '{key}' (use {', '.join(SORT_KEYS)})")
    return keys[key]


@dataclass(frozen=True)
class Selection:
    rows: list[Row]  # the page's rows, sorted
    matching: int  # rows matching the filter (all pages)
    offset: int
    limit: int
    filter: str
    statuses: tuple[str, ...]
    sort: str
    descending: bool
    query: str

    @property
    def complete(self) -> bool:
        """Every matching row is on this page (the browser may sort them itself)."""
        return self.offset == 0 and len(self.rows) == self.matching


def select_rows(
    plan: PricePlan,
    *,
    status: str | None = None,
    query: str = "",
    sort: str = "status",
    descending: bool = False,
    offset: int = 0,
    limit: int = 500,
) -> Selection:
    name, statuses = parse_filter(status)
    key = _sort_key(sort)
    wanted = set(statuses)
    needle = query.strip().casefold()
    together = decided_together(plan)
    rows = [
        Row(line, view_status(line), mates=together.get(line.sku, ())) for line in plan.lines
        if view_status(line) in wanted
        and (not needle or needle in line.sku.casefold() or needle in line.name.casefold())
    ]
    rows.sort(key=key, reverse=descending)
    offset = max(0, offset)
    return Selection(rows[offset : offset + limit], len(rows), offset, limit, name, statuses, sort, descending,
                     query.strip())


@dataclass(frozen=True)
class PlanSummary:
    counts: dict[str, int]
    skus: int
    profit_old: float  # cents per day over the priced SKUs
    profit_decided: float  # with the changes decided so far (waiting ones at their old profit)
    profit_if_approved: float  # with every waiting change approved too

    @property
    def waiting(self) -> int:
        return self.counts.get("approval", 0)

    def pct(self, new: float) -> float:
        return (new - self.profit_old) / abs(self.profit_old) * 100 if self.profit_old else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "skus": self.skus, "counts": self.counts, "awaiting_approval": self.waiting,
            "expected_profit_per_day": {
                "old": str(to_decimal(round(self.profit_old))),
                "decided": str(to_decimal(round(self.profit_decided))),
                "decided_change": signed_money(self.profit_decided - self.profit_old),
                "decided_change_pct": round(self.pct(self.profit_decided), 3),
                "if_all_approved": str(to_decimal(round(self.profit_if_approved))),
                "if_all_approved_change": signed_money(self.profit_if_approved - self.profit_old),
                "if_all_approved_change_pct": round(self.pct(self.profit_if_approved), 3),
            },
        }


def summarize(plan: PricePlan) -> PlanSummary:
    counts = Counter(view_status(line) for line in plan.lines)
    old = decided = if_approved = 0.0
    for line in plan.lines:
        if line.status in ("held", "rejected"):
            continue
        before, after = line.profit_old_cents or 0.0, line.profit_new_cents or 0.0
        old += before
        if_approved += after
        decided += before if line.status == "approval" else after
    return PlanSummary({s: counts.get(s, 0) for s in VIEW_STATUSES}, len(plan.lines), old, decided, if_approved)


def plan_header(plan: PricePlan) -> dict[str, Any]:
    return {
        "plan": plan.plan_id, "created_at": plan.created_at.isoformat(), "store": plan.store,
        "currency": plan.currency, "model": plan.model, "solver": plan.solver.status,
        "gap_pct": plan.solver.gap_pct, "notes": plan.notes, "rejected_rows": plan.rejected_rows,
    }


def lines_for(plan: PricePlan, skus: Sequence[str]) -> list[Row]:
    chosen = set(skus)
    together = decided_together(plan)
    return [Row(line, view_status(line), mates=together.get(line.sku, ())) for line in plan.lines if line.sku in chosen]
