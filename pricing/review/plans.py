"""The plans folder as the review page sees it: which plans there are (newest first) and each
plan's content, read once and reused until its file changes.

``pricing.plan.plan_files.plan_files`` parses every plan in full to sort them; a daemon writes a plan
per cycle (a thousand a year), and a 50,000-line plan takes a second and ~100 MB to parse, so a
page cannot do that per request. Here the list comes from each file's head (``plan_id`` and
``created_at`` open the JSON that ``PricePlan.write`` produces) cached by modification time and
size, and only the plans actually shown are parsed, the last few kept in memory. The order and
the rule that a file must be named ``<plan_id>.json`` are those of ``plan_files``.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pricing.plan.plan_files import PlanFileError, read_plan
from pricing.plan.price_plan import PricePlan

_HEAD_BYTES = 4096
_FIELD = {
    name: re.compile(rf'"{name}"\s*:\s*"([^"\\]{{1,200}})"')
    for name in ("plan_id", "created_at", "store")
}
PLAN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")


class PlanNotFound(PlanFileError):
    """No plan with that id in the plans folder (404)."""


@dataclass(frozen=True)
class PlanEntry:
    plan_id: str
    created_at: datetime
    path: Path


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def _head(path: Path) -> PlanEntry | None:
    """The plan id and creation time from the start of a plan file, or None when it does not look
    like a plan written by PricePlan.write (or is misnamed)."""
    try:
        with path.open("rb") as handle:
            text = handle.read(_HEAD_BYTES).decode("utf-8", "replace")
    except OSError:
        return None
    found = {name: pattern.search(text) for name, pattern in _FIELD.items()}
    plan_id, created = found["plan_id"], found["created_at"]
    if plan_id is None or created is None or path.name != f"{plan_id.group(1)}.json":
        return None
    try:
        when = datetime.fromisoformat(created.group(1))
    except ValueError:
        return None
    return PlanEntry(plan_id.group(1), when, path)


class PlanCatalog:
    """The plans of one folder; thread-safe."""

    def __init__(self, directory: Path, *, keep: int = 2) -> None:
        self.directory = directory
        self.keep = keep
        self._lock = threading.Lock()
        self._heads: dict[Path, tuple[tuple[int, int], PlanEntry | None]] = {}
        self._plans: OrderedDict[Path, tuple[tuple[int, int], PricePlan]] = OrderedDict()

    def entries(self) -> list[PlanEntry]:
        """The plans, newest first (by creation time, then file name)."""
        if not self.directory.is_dir():
            return []
        found: list[PlanEntry] = []
        with self._lock:
            seen: set[Path] = set()
            for path in self.directory.glob("*.json"):
                stamp = _stamp(path)
                if stamp is None:
                    continue
                seen.add(path)
                cached = self._heads.get(path)
                if cached is None or cached[0] != stamp:
                    cached = (stamp, _head(path))
                    self._heads[path] = cached
                if cached[1] is not None:
                    found.append(cached[1])
            for gone in set(self._heads) - seen:
                del self._heads[gone]
        return sorted(found, key=lambda e: (e.created_at, e.path.name), reverse=True)

    def path_of(self, plan_id: str | None) -> Path:
        """The file of ``plan_id`` (None or "latest": the newest plan); PlanNotFound otherwise."""
        if plan_id in (None, "", "latest"):
            entries = self.entries()
            if not entries:
                raise PlanNotFound(f"no plans yet in {self.directory}")
            return entries[0].path
        assert plan_id is not None
        path = self.directory / f"{plan_id}.json"
        if not PLAN_ID.match(plan_id) or not path.is_file() or _head(path) is None:
            raise PlanNotFound(f"no plan '{plan_id}' in {self.directory}")
        return path

    def load(self, plan_id: str | None) -> tuple[PricePlan, Path]:
        """The plan (parsed once per version of its file) and its path. Raises PlanNotFound or
        PlanFileError (one line)."""
        path = self.path_of(plan_id)
        stamp = _stamp(path)
        with self._lock:
            cached = self._plans.get(path)
            if cached is not None and cached[0] == stamp:
                self._plans.move_to_end(path)
                return cached[1], path
        plan = read_plan(path)
        if path.name != f"{plan.plan_id}.json":
            raise PlanFileError(f"{path}: file name does not match its plan id {plan.plan_id}")
        if stamp is not None:
            with self._lock:
                self._plans[path] = (stamp, plan)
                self._plans.move_to_end(path)
                while len(self._plans) > self.keep:
                    self._plans.popitem(last=False)
        return plan, path

    def forget(self, path: Path) -> None:
        """Drop a cached plan (after this process rewrote it: the next load reads the file)."""
        with self._lock:
            self._plans.pop(path, None)
