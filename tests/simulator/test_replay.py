"""`esl-pricing replay` (simulator.replay): a recorded event log replayed against the simulator
through the real broker, with one crafted log per kind of divergence, and the CLI."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from label_gateway.embedded_broker import free_port
from label_gateway.protocol import Topics
from pricing.cli.simulate import replay_command
from pricing.core.events import Event, read_jsonl, write_jsonl
from simulator.gateways import GatewayOptions
from simulator.replay import SAMPLE_EVENTS, ReplayReport, read_log, replay
from simulator.samples.make_sample_events import build

pytestmark = pytest.mark.integration

runner = CliRunner()
SPAN_S = 48 * 3600  # the sample covers Sunday 21:00 UTC to Tuesday 21:00 UTC


@pytest.fixture(scope="module")
def sample() -> list[Event]:
    return read_jsonl(SAMPLE_EVENTS)


def _replay(mqtt_broker: Any, topics: Topics, events: list[Event], **kwargs: Any) -> ReplayReport:
    kwargs.setdefault("speed", None)
    return replay(events, mqtt_broker.address, prefix=topics.prefix, **kwargs)


def _edit(events: list[Event], match: Callable[[Event], bool], **update: Any) -> list[Event]:
    """A copy of the log with the one event that matches changed (``data`` keys merged)."""
    out: list[Event] = []
    hits = 0
    for event in events:
        if match(event):
            hits += 1
            data = {**event.data, **update.pop("data", {})}
            event = event.model_copy(update={**update, "data": data})
        out.append(event)
    assert hits == 1
    return out


def _last(events: list[Event], kind: str, label: str) -> Event:
    return [e for e in events if e.kind == kind and e.label == label][-1]


def _kinds(report: ReplayReport) -> list[tuple[str, str | None]]:
    return [(d.kind, d.label) for d in report.divergences]


# -- the sample ---------------------------------------------------------------------------------
def test_sample_is_what_the_generator_writes(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    write_jsonl(build(), out)
    assert out.read_text(encoding="utf-8") == SAMPLE_EVENTS.read_text(encoding="utf-8")


def test_sample_has_what_it_promises(sample: list[Event]) -> None:
    facts = read_log(sample)
    assert facts.divergences == []
    assert len(facts.labels) == 12 and len({g for g, _ in facts.labels.values()}) == 2
    assert facts.end is not None and facts.start is not None
    assert timedelta(days=1.5) <= facts.end - facts.start <= timedelta(days=2.5)
    kinds = {e.kind for e in sample}
    assert {"daemon_started", "cycle_started", "plan_created", "price_changed", "pushed", "acked", "failed"} <= kinds
    statuses = [(e.label, e.data["status"]) for e in sample if e.kind == "acked"]
    assert ("L000106", "scheduled") in statuses and statuses[-1] == ("L000106", "displayed")
    assert any(e.kind == "pushed" and "reference_cents" in e.data for e in sample)
    failed = next(e for e in sample if e.kind == "failed")
    assert _last(sample, "acked", failed.label or "").seq > failed.seq  # acked after the reconcile


def test_sample_replays_without_divergence_at_max_speed(mqtt_broker: Any, topics: Topics, sample: list[Event]) -> None:
    report = _replay(mqtt_broker, topics, sample)
    assert report.divergences == []
    summary = report.summary()
    assert summary["ok"] is True and summary["speed"] == "max"
    assert (report.labels, report.gateways, report.pushes, report.unanswered) == (12, 2, 14, 0)
    assert report.acks == 15  # 14 pushes, and the scheduled promotion's displayed ack at 07:00


def test_sample_replays_without_divergence_at_a_finite_speed(
    mqtt_broker: Any, topics: Topics, sample: list[Event]
) -> None:
    speed = SPAN_S / 1.2  # two days in 1.2 s of pacing
    report = _replay(mqtt_broker, topics, sample, speed=speed, max_gap_s=None)  # every gap in full
    assert report.divergences == []
    assert report.summary()["speed"] == speed and report.summary()["max_gap_s"] is None
    assert 1.1 <= report.seconds < 3.0 + 2.0  # paced, plus the broker round trips and clean-up


def test_quiet_gaps_are_cut_to_max_gap_and_the_findings_stay_the_same(
    mqtt_broker: Any, topics: Topics, sample: list[Event]
) -> None:
    """At --speed 100 the sample's two days took 29 minutes; with its nights cut to 60 s of log
    time they take seconds, and what the replay finds is what it finds at full pacing."""
    corrupt = _edit(sample, lambda e: e.kind == "pushed" and e.label == "L000105", data={"content_hash": "0" * 16})
    seen: list[tuple[str, int | None, int | None]] = []
    paced = _replay(mqtt_broker, topics, corrupt, speed=100.0, seed=5,
                    progress=lambda stage, done, total: seen.append((stage, done, total)))
    fastest = _replay(mqtt_broker, topics, corrupt, speed=None, seed=5)
    assert paced.max_gap_s == 60.0 and paced.seconds < 30  # 9 nights and pauses of 0.6 s, 1 s of bursts
    first, second = paced.summary(), fastest.summary()
    for summary in (first, second):
        summary.pop("seconds"), summary.pop("speed")
    assert first == second and first["divergence_counts"]["bad_record"] == 1
    # progress: every event counted, in order, then the acks awaited
    counted = [done for stage, done, _ in seen if stage == "replaying events"]
    assert counted == list(range(1, 56)) and ("replaying events", 55, 55) in seen
    assert seen[-1][0] == "waiting for acks" and seen[-1][1] == seen[-1][2] == 14


def test_same_log_and_seed_give_the_same_summary(mqtt_broker: Any, topics: Topics, sample: list[Event]) -> None:
    corrupt = _edit(sample, lambda e: e.kind == "pushed" and e.label == "L000105", data={"content_hash": "0" * 16})
    first = _replay(mqtt_broker, topics, corrupt, seed=11).summary()
    second = _replay(mqtt_broker, topics, corrupt, seed=11).summary()
    assert first.pop("seconds") >= 0 and second.pop("seconds") >= 0
    assert first == second
    assert first["seed"] == 11 and first["divergence_counts"]["bad_record"] == 1


# -- one crafted log per divergence --------------------------------------------------------------
def test_an_acked_price_unlike_the_pushed_one_is_a_final_price_divergence(
    mqtt_broker: Any, topics: Topics, sample: list[Event]
) -> None:
    final = _last(sample, "acked", "L000102")
    crafted = _edit(sample, lambda e: e.seq == final.seq, data={"price_cents": 219})
    report = _replay(mqtt_broker, topics, crafted)
    assert _kinds(report) == [("final_price", "L000102")]
    divergence = report.divergences[0]
    assert divergence.seq == final.seq
    assert "2.19 EUR" in divergence.detail and "2.09 EUR" in divergence.detail


def test_a_label_going_back_to_an_older_version_is_an_ack_order_divergence(
    mqtt_broker: Any, topics: Topics, sample: list[Event]
) -> None:
    acks = [e for e in sample if e.kind == "acked" and e.label == "L000101"]
    older, newer = acks[0], acks[-1]
    assert older.data["version"] < newer.data["version"]
    last = sample[-1]
    back = older.model_copy(update={"seq": last.seq + 1, "at": last.at + timedelta(minutes=5)})
    report = _replay(mqtt_broker, topics, [*sample, back])
    assert _kinds(report) == [("ack_order", "L000101")]
    assert report.divergences[0].seq == back.seq
    assert "went back" in report.divergences[0].detail


def test_a_push_inside_a_freeze_window_is_a_frozen_divergence(
    mqtt_broker: Any, topics: Topics, sample: list[Event]
) -> None:
    push = next(e for e in sample if e.kind == "pushed" and e.label == "L000104")
    opened = datetime(2026, 11, 16, 9, 15, tzinfo=UTC)  # Monday 10:15 in Berlin: the store is open
    crafted = _edit(sample, lambda e: e.seq == push.seq, at=opened)
    report = _replay(mqtt_broker, topics, crafted)
    assert _kinds(report) == [("frozen", "L000104")]
    assert report.divergences[0].seq == push.seq
    assert "2026-11-16 10:15 Europe/Berlin: store open (mon 08:00-20:00)" in report.divergences[0].detail


def test_a_corrupted_content_hash_is_a_bad_record(mqtt_broker: Any, topics: Topics, sample: list[Event]) -> None:
    push = next(e for e in sample if e.kind == "pushed" and e.label == "L000105")
    crafted = _edit(sample, lambda e: e.seq == push.seq, data={"content_hash": "deadbeefdeadbeef"})
    report = _replay(mqtt_broker, topics, crafted)
    assert _kinds(report) == [("bad_record", "L000105")]
    assert "deadbeefdeadbeef" in report.divergences[0].detail
    assert report.pushes == 14  # still replayed, with the content the record describes


def test_a_label_that_never_answers_in_the_replay_is_a_missing_ack(
    mqtt_broker: Any, topics: Topics, sample: list[Event]
) -> None:
    options = GatewayOptions(dead_labels=frozenset({"L000103"}))
    report = _replay(mqtt_broker, topics, sample, options=options, ack_timeout_s=3.0)
    assert _kinds(report) == [("final_price", "L000103"), ("missing_ack", "L000103")]  # same seq: by kind
    assert "shows nothing" in report.divergences[0].detail
    assert "replay: unreachable" in report.divergences[1].detail


def test_log_only_checks_need_no_broker(sample: list[Event]) -> None:
    push = next(e for e in sample if e.kind == "pushed" and e.label == "L000107")
    early_ack = _last(sample, "acked", "L000107").model_copy(update={"seq": push.seq - 1})
    ghost = early_ack.model_copy(update={"seq": sample[-1].seq + 1, "data": {**early_ack.data, "version": 10**17}})
    no_calendar = [e for e in sample if e.kind != "daemon_started" and e.seq != _last(sample, "acked", "L000107").seq]
    moved = [e.model_copy(update={"at": datetime(2026, 11, 16, 12, tzinfo=UTC)}) if e.seq == push.seq else e
             for e in no_calendar]
    facts = read_log([*moved, early_ack, ghost])
    details = sorted((d.kind, d.label, d.detail) for d in facts.divergences)
    assert [(k, label) for k, label, _ in details] == [("ack_order", "L000107"), ("ack_order", "L000107")]
    assert any("before its push" in d for _, _, d in details)
    assert any("never pushed" in d for _, _, d in details)  # and no freeze check without a calendar


# -- the CLI ------------------------------------------------------------------------------------
def _cli(*args: str) -> tuple[int, str, str]:
    app = typer.Typer()
    app.command()(replay_command)
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_json_for_the_sample(mqtt_broker: Any, topics: Topics) -> None:
    code, out, err = _cli(
        str(SAMPLE_EVENTS), "--broker", mqtt_broker.address.url, "--prefix", topics.prefix, "--seed", "3", "--json"
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["ok"] is True and summary["divergences"] == [] and summary["seed"] == 3
    assert (summary["events"], summary["labels"], summary["pushes"], summary["acks"]) == (55, 12, 14, 15)
    assert summary["store"] == "S001" and summary["speed"] == "max" and "seconds" in summary
    assert "no divergences" in err


def test_cli_reports_divergences_with_exit_1(
    mqtt_broker: Any, topics: Topics, sample: list[Event], tmp_path: Path
) -> None:
    push = next(e for e in sample if e.kind == "pushed" and e.label == "L000105")
    log = tmp_path / "events.jsonl"
    write_jsonl(_edit(sample, lambda e: e.seq == push.seq, data={"content_hash": "0" * 16}), log)
    code, out, err = _cli(str(log), "--broker", mqtt_broker.address.url, "--prefix", topics.prefix, "--json",
                          "--speed", str(SPAN_S / 0.5))
    assert code == 1
    summary = json.loads(out.strip().splitlines()[-1])
    assert [(d["kind"], d["label"], d["seq"]) for d in summary["divergences"]] == [("bad_record", "L000105", push.seq)]
    assert summary["divergence_counts"]["bad_record"] == 1 and summary["speed"] == SPAN_S / 0.5
    assert "1 divergence(s)" in err and "bad_record" in err


def test_cli_malformed_line_is_a_user_error(sample: list[Event], tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    write_jsonl(sample[:3], log)
    with log.open("a", encoding="utf-8") as out:
        out.write('{"seq": 4, "at": "2026-11-16T04:31:00Z", "store": "S001", "kind": "pushed",\n')
    code, out, err = _cli(str(log), "--broker", "mqtt://127.0.0.1:1")
    assert code == 2
    assert f"{log}:4:" in err.replace("\n", "")
    assert "Traceback" not in err + out and len(err.strip().splitlines()) <= 2


@pytest.mark.parametrize("speed", ["0", "-3", "fast", "inf", "nan"])
def test_cli_bad_speed_is_a_user_error(speed: str) -> None:
    code, _, err = _cli(str(SAMPLE_EVENTS), "--speed", speed, "--broker", "mqtt://127.0.0.1:1")
    assert code == 2
    assert "--speed" in err and "Traceback" not in err


def test_cli_unreachable_broker_is_one_line(sample: list[Event]) -> None:
    code, out, err = _cli(str(SAMPLE_EVENTS), "--broker", f"mqtt://127.0.0.1:{free_port()}")
    assert code == 1  # a failure, as the README and every other command say (a bad URL is 2)
    assert "cannot reach MQTT broker" in err and len(err.strip().splitlines()) == 1
    assert "Traceback" not in err + out


@pytest.mark.parametrize("gap", ["-1", "soon", "inf"])
def test_cli_bad_max_gap_is_a_user_error(gap: str) -> None:
    code, _, err = _cli(str(SAMPLE_EVENTS), "--speed", "100", "--max-gap", gap, "--broker", "mqtt://127.0.0.1:1")
    assert code == 2 and "--max-gap" in err and len(err.strip().splitlines()) == 1


def test_cli_progress_on_stderr_and_quiet_with_json(mqtt_broker: Any, topics: Topics) -> None:
    args = (str(SAMPLE_EVENTS), "--broker", mqtt_broker.address.url, "--prefix", topics.prefix)
    code, out, err = _cli(*args)
    assert code == 0, err
    assert "replaying events: 1/55" in err and "replaying events: 55/55 (100%)" in err
    assert "waiting for acks: 14/14" in err and out == ""
    code, out, err = _cli(*args, "--json")
    assert code == 0, err
    assert "replaying events" not in err and "waiting for acks" not in err
    assert json.loads(out.strip().splitlines()[-1])["ok"] is True


def test_readme_replay_example_finishes_in_under_a_minute(mqtt_broker: Any, topics: Topics) -> None:
    """The README's `esl-pricing replay ... --speed N` line, run as written (on the test broker)."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^esl-pricing (replay [^#\n]*?)\s+#", readme, flags=re.MULTILINE)
    assert found is not None, "the README has no replay example"
    args = shlex.split(found.group(1))
    assert "--speed" in args
    command = [sys.executable, "-m", "pricing.cli", *args, "--broker", mqtt_broker.address.url,
               "--prefix", topics.prefix]
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert "no divergences" in done.stderr
