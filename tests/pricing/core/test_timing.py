"""pricing.core.timing: StageTimer adds up the seconds spent in named stages."""

from __future__ import annotations

import pytest

from pricing.core import timing
from pricing.core.timing import StageTimer


class Clock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(timing.time, "monotonic", fake)
    return fake


def test_empty_timer() -> None:
    timer = StageTimer()
    assert timer.seconds == {}
    assert timer.notes == {}
    assert timer.total == 0.0


def test_stages_are_timed_and_summed(clock: Clock) -> None:
    timer = StageTimer()
    with timer.stage("load"):
        clock.now += 1.5
    clock.now += 100.0  # time outside any stage is not counted
    with timer.stage("solve"):
        clock.now += 2.25
    assert timer.seconds == {"load": 1.5, "solve": 2.25}
    assert timer.total == 3.75


def test_repeated_stage_accumulates(clock: Clock) -> None:
    timer = StageTimer()
    for step in (0.5, 0.25, 1.0):
        with timer.stage("push"):
            clock.now += step
    assert timer.seconds == {"push": 1.75}
    assert list(timer.seconds) == ["push"]


def test_nested_stages_are_both_counted(clock: Clock) -> None:
    timer = StageTimer()
    with timer.stage("cycle"):
        clock.now += 1.0
        with timer.stage("plan"):
            clock.now += 2.0
    assert timer.seconds == {"cycle": 3.0, "plan": 2.0}
    assert timer.total == 5.0  # nested time counts twice in the total


def test_a_failing_stage_is_still_timed_and_the_error_propagates(clock: Clock) -> None:
    timer = StageTimer()
    with pytest.raises(RuntimeError, match="boom"), timer.stage("load"):
        clock.now += 0.75
        raise RuntimeError("boom")
    assert timer.seconds == {"load": 0.75}


def test_notes_keep_the_last_text() -> None:
    timer = StageTimer()
    timer.note("solve", "optimal")
    timer.note("solve", "time limit")
    timer.note("load", "3 files")
    assert timer.notes == {"solve": "time limit", "load": "3 files"}
    assert timer.seconds == {}


def test_timers_do_not_share_state(clock: Clock) -> None:
    first, second = StageTimer(), StageTimer()
    with first.stage("a"):
        clock.now += 1.0
    first.note("a", "x")
    assert second.seconds == {} and second.notes == {}


def test_real_clock_is_non_negative() -> None:
    timer = StageTimer()
    with timer.stage("noop"):
        pass
    assert 0.0 <= timer.seconds["noop"] < 1.0
