"""Plan files on disk: read one, find the latest, and record a pricing manager's decisions.

A plan is written by ``esl-pricing plan`` (or the daemon) as ``<plan_id>.json`` + ``.csv``.
Approving or rejecting changes held for approval rewrites both files atomically, under an
exclusive lock, so the command line and the review page can decide on one plan at the same
time without losing either's decisions.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from pricing.core.errors import first_error
from pricing.core.events import Event
from pricing.core.ids import shown
from pricing.plan.price_plan import PlanLine, PricePlan


class PlanFileError(Exception):
    """A plan file a user pointed at cannot be used (missing, not a plan, misnamed). One line."""


class NotAwaitingApproval(PlanFileError):
    """A decision named a SKU whose change does not await approval."""


def _problem(exc: ValidationError, raw: object) -> str:
    """The first problem, naming the plan line and its SKU when it is in a line:
    ``lines[3] (sku '0001'): new_cents: must be more than 0 cents, got 0``."""
    errors = exc.errors()
    loc = tuple(errors[0]["loc"]) if errors else ()
    if len(loc) >= 2 and loc[0] == "lines" and isinstance(loc[1], int) and isinstance(raw, dict):
        lines = raw.get("lines")
        line = lines[loc[1]] if isinstance(lines, list) and loc[1] < len(lines) else None
        sku = line.get("sku") if isinstance(line, dict) else None
        where = f"lines[{loc[1]}]" + (f" (sku '{shown(sku)}')" if isinstance(sku, str) else "")
        field = ".".join(str(part) for part in loc[2:])
        return f"{where}: {field + ': ' if field else ''}{errors[0]['msg']}"
    return first_error(exc, "plan")


def read_plan(path: Path) -> PricePlan:
    """Read and check a plan file; any problem is a PlanFileError of one line naming the file
    (and, for a bad line, its index and SKU)."""
    if not path.is_file():
        raise PlanFileError(f"{path}: plan file not found")
    raw: object = None
    try:
        raw = json.loads(path.read_bytes())
        return PricePlan.model_validate(raw)
    except ValidationError as exc:
        n = exc.error_count()
        raise PlanFileError(
            f"{path}: not a price plan: {_problem(exc, raw)} ({n} problem{'' if n == 1 else 's'})"
        ) from None
    except RecursionError:  # JSON nested thousands deep
        raise PlanFileError(f"{path}: not a price plan: nested too deep") from None
    except ValueError as exc:  # not JSON, not UTF-8
        raise PlanFileError(f"{path}: not a price plan: {str(exc).splitlines()[0]}") from None
    except OSError as exc:
        raise PlanFileError(f"{path}: cannot read the plan: {exc.strerror or exc}") from None


def plan_files(directory: Path) -> list[Path]:
    """The plan JSON files in ``directory``, newest first (by the time the plan was created,
    then by name). Files that are not plans are skipped."""
    found: list[tuple[datetime, str, Path]] = []
    if not directory.is_dir():
        return []
    for path in directory.glob("*.json"):
        try:
            plan = read_plan(path)
        except PlanFileError:
            continue
        if path.name == f"{plan.plan_id}.json":
            found.append((plan.created_at, path.name, path))
    return [path for _, _, path in sorted(found, reverse=True)]


def latest_plan(directory: Path) -> Path | None:
    files = plan_files(directory)
    return files[0] if files else None


def why_not_waiting(line: PlanLine | None) -> str:
    if line is None:
        return "not in the plan"
    if line.status in ("change", "rejected") and line.decided_by:
        return f"already {'approved' if line.status == 'change' else 'rejected'} by {line.decided_by}"
    return f"status {line.status}"


@dataclass(frozen=True)
class Decision:
    plan: PricePlan  # the plan as rewritten
    decided: list[str]  # SKUs decided now
    approved: bool
    by: str
    at: datetime

    def events(self) -> list[Event]:
        """``plan_approved`` / ``plan_rejected`` per SKU decided now, for the store's event log."""
        kind = "plan_approved" if self.approved else "plan_rejected"
        return [
            Event(at=self.at, store=self.plan.store, kind=kind, correlation=self.plan.plan_id, sku=sku,
                  data={"by": self.by})
            for sku in self.decided
        ]

    @property
    def prices(self) -> dict[str, int]:
        """sku -> new price of the changes approved now (empty for a rejection)."""
        if not self.approved:
            return {}
        chosen = set(self.decided)
        return {line.sku: line.new_cents for line in self.plan.lines if line.sku in chosen}


@contextmanager
def _locked(plan_file: Path) -> Iterator[None]:
    """Hold an exclusive lock on the plan's folder (the files themselves are replaced, so a
    lock on them would not hold; the folder's lock leaves no file behind)."""
    try:
        fd = os.open(plan_file.parent, os.O_RDONLY)
    except OSError as exc:
        raise PlanFileError(f"{plan_file}: cannot lock the plan: {exc.strerror or exc}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def save_plan(plan: PricePlan, plan_file: Path) -> None:
    """Replace the plan's JSON and CSV; each file is either the old or the new one, never half written."""
    try:
        plan.write(plan_file.parent)
    except OSError as exc:
        raise PlanFileError(f"cannot rewrite {plan_file}: {exc.strerror or exc}") from None


def decide(
    plan_file: Path,
    skus: Sequence[str] | None,
    *,
    approve: bool,
    by: str,
    at: datetime,
) -> Decision:
    """Approve (or reject) the listed SKUs' changes awaiting approval in ``plan_file`` (all of
    them when ``skus`` is None) and rewrite the plan; ``Decision.events()`` are what the store's
    event log records. Raises NotAwaitingApproval naming each SKU that does not await approval
    (nothing is decided then)."""
    if not by.strip():
        raise PlanFileError("say who decides")
    with _locked(plan_file):
        plan = read_plan(plan_file)
        if plan_file.name != f"{plan.plan_id}.json":
            raise PlanFileError(
                f"{plan_file}: file name does not match its plan id (expected {plan.plan_id}.json); rename it back first"
            )
        chosen = None if skus is None else list(dict.fromkeys(skus))
        status = {line.sku: line for line in plan.lines}
        try:
            decided = plan.decide(chosen, approve=approve, by=by, at=at)
        except KeyError:
            problems = [f"{sku} ({why_not_waiting(status.get(sku))})" for sku in chosen or []
                        if status.get(sku) is None or status[sku].status != "approval"]
            raise NotAwaitingApproval("not awaiting approval: " + ", ".join(problems)) from None
        if decided:
            save_plan(plan, plan_file)
    return Decision(plan, decided, approve, by, at)
