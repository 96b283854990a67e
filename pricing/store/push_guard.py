"""When nothing may be published: the kill switch and the store's freeze windows.

One rule for every path that pushes prices (the daemon's cycles, the review page's approvals),
checked before a push starts and, through ``PushStop``, once a second while it runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

from pricing.core.store_calendar import StoreCalendar
from pricing.store.engine_state import EngineFlags


def push_blocked(*, config_kill_switch: bool, flags: EngineFlags, calendar: StoreCalendar, at: datetime) -> str | None:
    """Why nothing may be published at ``at`` (kill switch in the config or thrown from the CLI,
    a freeze window), or None."""
    if config_kill_switch:
        return "kill switch (config)"
    if flags.kill_switch():
        return "kill switch"
    frozen = calendar.frozen(at)
    return f"frozen: {frozen}" if frozen else None


class PushStop:
    """A delivery's stop signal: ``stopping`` is set (the process is shutting down), or
    ``blocked()`` gives a reason (kill switch, freeze window); ``blocked`` is asked at most once
    a second, since it reads the database."""

    def __init__(self, stopping: threading.Event, blocked: Callable[[], str | None], *, stopping_reason: str) -> None:
        self.stopping = stopping
        self.blocked = blocked
        self.stopping_reason = stopping_reason
        self.reason: str | None = None
        self._checked = 0.0

    def is_set(self) -> bool:
        if self.reason is not None:
            return True
        if self.stopping.is_set():
            self.reason = self.stopping_reason
            return True
        now = time.monotonic()
        if now - self._checked >= 1.0:
            self._checked = now
            self.reason = self.blocked()
        return self.reason is not None
