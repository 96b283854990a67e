"""pricing/cli/progress.py: long work reports on stderr (a bar on a terminal, plain lines
otherwise), nothing with --json; and the commands that use it: train, apply, outbox resume.
(replay: tests/simulator/test_replay.py; contact sheet: tests/simulator/test_contact_sheet.py.)"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from pricing.cli.progress import Progress, show_progress
from pricing.plan.price_plan import PlanLine

Run = Callable[..., tuple[int, str, str]]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def plain_console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=200), out


def lines(out: io.StringIO) -> list[str]:
    return [line.strip() for line in out.getvalue().splitlines() if line.strip()]


# -- the module ---------------------------------------------------------------------------------
def test_plain_lines_when_a_stage_starts_then_at_most_one_per_interval() -> None:
    console, out = plain_console()
    clock = Clock()
    progress = Progress(console, interval_s=10, clock=clock)
    progress("push + acks", 0, 200)
    for done in range(1, 50):
        clock.now += 0.1
        progress("push + acks", done, 200)
    assert lines(out) == ["push + acks: 0/200 (0%) (0s)"]
    clock.now += 10
    progress("push + acks", 120, 200)
    assert lines(out)[-1] == "push + acks: 120/200 (60%) (14s)"
    progress("push + acks", 200, 200)
    progress("waiting", None, None)  # a new stage: where the last one ended, then the new one
    assert lines(out)[-2:] == ["push + acks: 200/200 (100%) (14s)", "waiting: (14s)"]


def test_the_last_count_is_shown_when_the_work_ends() -> None:
    console, out = plain_console()
    with show_progress(console=console, interval_s=60) as progress:
        for done in range(1, 31):
            progress("drawing labels", done, 30)
    assert lines(out) == ["drawing labels: 1/30 (3%) (0s)", "drawing labels: 30/30 (100%) (0s)"]


def test_a_long_step_without_counts_says_it_is_still_working() -> None:
    console, out = plain_console()
    with show_progress(console=console, interval_s=0.2) as progress:
        progress.say("fitting on all 7,300,000 rows")
        time.sleep(0.7)
    said = lines(out)
    assert said[0] == "fitting on all 7,300,000 rows (0s)"
    assert len(said) >= 2 and all(line.startswith("fitting on all 7,300,000 rows: still working") for line in said[1:])


def test_quiet_prints_nothing() -> None:
    console, out = plain_console()
    with show_progress(quiet=True, console=console, interval_s=0.05) as progress:
        progress("push + acks", 1, 2)
        progress.say("fitting")
        time.sleep(0.2)
    assert out.getvalue() == ""


def test_on_a_terminal_a_bar_that_goes_away() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=120)
    with show_progress(console=console) as progress:
        assert progress.live
        progress("replaying events", 3, 55)
        time.sleep(0.3)  # let the bar refresh
        progress.say("a step of its own")
    text = out.getvalue()
    assert "replaying events" in text and "3/55" in text and "a step of its own" in text


# -- the commands -------------------------------------------------------------------------------
@pytest.mark.usefixtures("wide_console")
def test_train_reports_its_steps_and_is_quiet_with_json(tmp_path: Path, run: Run) -> None:
    data = tmp_path / "data"
    assert run("simulate", "generate", "--out", str(data), "--skus", "40", "--days", "90")[0] == 0
    code, out, err = run("train", "--data", str(data), "--out", str(tmp_path / "m1"))
    assert code == 0, err
    assert "fitting on all" in err and "for the holdout" in err and out == ""
    code, out, err = run("train", "--data", str(data), "--out", str(tmp_path / "m2"), "--json")
    assert code == 0, err
    assert "fitting on" not in err and "zero-sales days filled" in err  # what training did is still said
    assert json.loads(out.strip().splitlines()[-1])["n_skus"] == 40


@pytest.mark.integration
@pytest.mark.usefixtures("wide_console")
def test_apply_and_resume_report_the_push(
    tmp_path: Path,
    mqtt_broker: object,
    run: Run,
    make_line: Callable[..., PlanLine],
    plan_file: Callable[[Path, list[PlanLine]], Path],
    labels_dir: Callable[[Path, list[str]], Path],
) -> None:
    """apply with no gateway online stops at its deadline having reported the push; resume, with
    the gateway back, reports it to the end; with --json neither says anything of it."""
    from label_gateway.broker import clear_retained
    from label_gateway.protocol import Topics
    from simulator.gateways import SimulatedGateways

    plan = plan_file(tmp_path / "plans", [make_line("0001", "change", 200, 190), make_line("0003", "change", 500, 550)])
    data = labels_dir(tmp_path / "data", ["0001", "0003"])
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    address = mqtt_broker.address  # type: ignore[attr-defined]
    common = ("--broker", address.url, "--prefix", prefix)
    code, _, err = run("apply", str(plan), "--data", str(data), *common, "--deadline", "0.5")
    assert code == 1  # no gateway: the labels wait in the outbox
    assert "push + acks: 0/2 (0%)" in err
    labels = [("L0000", "gw-1", "0001"), ("L0001", "gw-1", "0003")]
    try:
        with SimulatedGateways(address, Topics("store-001", prefix=prefix), labels):
            code, _, err = run("outbox", "resume", *common)
            assert code == 0, err
            assert "resume: 2/2 (100%)" in err
            code, out, err = run("outbox", "reconcile", *common, "--json")
            assert code == 0, err
            assert "reconcile:" not in err and "(100%)" not in err  # no progress lines with --json
            assert json.loads(out.strip().splitlines()[-1])["store"] == "store-001"
    finally:
        clear_retained(address, f"{prefix}/#", settle_s=0.3)
