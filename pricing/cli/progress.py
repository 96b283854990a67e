"""Progress of long work on stderr, so nothing that takes more than a few seconds runs in silence.

``show_progress(quiet=as_json)`` yields a ``Progress``: call it with ``(stage, done, total)`` as the
work goes on (``total`` None: no count, only the stage and the time), or ``say(message)`` for a
step worth its own line. On a terminal it is a rich progress bar (spinner, stage, bar, done/total,
elapsed) that disappears when the work ends; when stderr is not a terminal (a log file, a pipe,
CI) it prints plain lines instead: one when a stage starts, then at most one every ``interval_s``
seconds while counts move, and ``still working`` lines when a stage shows no count for that long.
``quiet`` (the commands' ``--json``) prints nothing at all. stdout is never touched.

Used by replay, train, push and resume (apply, outbox resume/reconcile/sync) and the contact sheet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress import Progress as RichProgress

from pricing.cli.common import err

#: Seconds between two plain progress lines (stderr not a terminal).
DEFAULT_INTERVAL_S = 10.0


class Progress:
    """Reports the progress of one command's work; see the module doc. Thread-safe: a callback
    from a worker thread may report while the heartbeat prints."""

    def __init__(
        self,
        console: Console,
        *,
        quiet: bool = False,
        interval_s: float = DEFAULT_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.console = console
        self.quiet = quiet
        self.interval_s = interval_s
        self.clock = clock
        self.started = clock()
        self.stage: str | None = None
        self.done: int | None = None
        self.total: int | None = None
        self._lock = threading.Lock()
        self._last_line = self.started  # when a plain line was last printed
        self._shown: tuple[str | None, int | None, int | None] = (None, None, None)  # what it said
        self._bar: RichProgress | None = None
        self._tasks: dict[str, TaskID] = {}
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None

    @property
    def live(self) -> bool:
        """True: a rich bar on a terminal; False: plain lines (or nothing, when quiet)."""
        return self._bar is not None

    # -- reporting ------------------------------------------------------------------------------
    def __call__(self, stage: str, done: int | None = None, total: int | None = None) -> None:
        """The work is at ``done`` of ``total`` in ``stage`` (a short text: "push + acks")."""
        if self.quiet:
            return
        with self._lock:
            new_stage = stage != self.stage
            if self._bar is None and new_stage:
                self._finish_stage()  # where the stage before ended (e.g. 55/55)
            self.stage, self.done, self.total = stage, done, total
            if self._bar is not None:
                self._update_bar(stage, done, total)
            elif new_stage or self.clock() - self._last_line >= self.interval_s:
                self._line(self._status())

    def say(self, message: str) -> None:
        """A step worth a line of its own ("fitting on 320,000 rows"); it becomes the stage."""
        if self.quiet:
            return
        with self._lock:
            self.stage, self.done, self.total = message.strip(), None, None
            if self._bar is not None:
                self._bar.console.print(f"  {message.strip()}", highlight=False, markup=False, soft_wrap=True)
                self._update_bar(self.stage, None, None)
            else:
                self._line(f"{message.strip()} ({self._elapsed()})")

    # -- plain lines ----------------------------------------------------------------------------
    def _elapsed(self) -> str:
        seconds = int(self.clock() - self.started)
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"

    def _status(self) -> str:
        count = ""
        if self.done is not None and self.total:
            count = f" {self.done:,}/{self.total:,} ({100 * self.done // self.total}%)"
        elif self.done is not None:
            count = f" {self.done:,}"
        return f"{self.stage}:{count} ({self._elapsed()})"

    def _line(self, text: str) -> None:
        self.console.print(f"  {text}", highlight=False, markup=False, soft_wrap=True)
        self._last_line = self.clock()
        self._shown = (self.stage, self.done, self.total)

    def _beat(self) -> None:
        """Plain mode: a line every ``interval_s`` while the work goes on (counts or still working)."""
        while not self._stop.wait(min(1.0, self.interval_s / 4)):
            with self._lock:
                if self.stage is None or self.clock() - self._last_line < self.interval_s:
                    continue
                moved = self._shown != (self.stage, self.done, self.total)
                self._line(self._status() if moved else f"{self.stage}: still working ({self._elapsed()})")

    def _finish_stage(self) -> None:
        """Plain mode, lock held: the current stage's last count, unless it was the last line."""
        if self.stage is not None and self._shown != (self.stage, self.done, self.total):
            self._line(self._status())

    # -- rich bar -------------------------------------------------------------------------------
    def _update_bar(self, stage: str, done: int | None, total: int | None) -> None:
        assert self._bar is not None
        if stage not in self._tasks:
            for task in self._tasks.values():
                self._bar.update(task, visible=False)
            self._tasks[stage] = self._bar.add_task(stage, total=total)
        self._bar.update(self._tasks[stage], completed=done or 0, total=total)

    # -- lifetime -------------------------------------------------------------------------------
    def start(self) -> None:
        if self.quiet:
            return
        if self.console.is_terminal:
            columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn())
            self._bar = RichProgress(*columns, console=self.console, transient=True)
            self._bar.start()
        else:
            self._heartbeat = threading.Thread(target=self._beat, name="progress", daemon=True)
            self._heartbeat.start()

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self._heartbeat is not None:
            self._stop.set()
            self._heartbeat.join()
            self._heartbeat = None
            with self._lock:
                self._finish_stage()  # the last count (e.g. 100%) is always shown


@contextmanager
def show_progress(
    quiet: bool = False, *, console: Console | None = None, interval_s: float = DEFAULT_INTERVAL_S
) -> Iterator[Progress]:
    """A ``Progress`` on ``console`` (default: the commands' stderr console) for the block's work."""
    progress = Progress(console if console is not None else err, quiet=quiet, interval_s=interval_s)
    progress.start()
    try:
        yield progress
    finally:
        progress.stop()
