"""pricing.core.events: the event log's public format, and its JSONL files (write, read, FILE:LINE errors)."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pricing.core.events import (
    AckedData,
    Event,
    EventKind,
    EventLogError,
    FailedData,
    PushedData,
    event_line,
    read_jsonl,
    write_jsonl,
)
from pricing.core.store_calendar import FreezeConfig, FreezeWindow, Hours, StoreCalendar

AT = datetime(2026, 11, 23, 5, 30, 0, 120000, tzinfo=UTC)
# str.splitlines() would break lines at these, and JSON does not escape them (see the test below)
LINE_BREAKS_JSON_KEEPS = "\x85\u2028\u2029"
TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters=LINE_BREAKS_JSON_KEEPS), max_size=20)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
ZONES = st.just(UTC) | st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
EVENTS = st.builds(
    Event,
    seq=st.integers(min_value=0, max_value=2**62),
    at=st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=ZONES),
    store=TEXT.filter(bool),
    kind=st.sampled_from(get_args(EventKind)),
    correlation=st.none() | TEXT,
    label=st.none() | TEXT,
    sku=st.none() | TEXT,
    data=st.dictionaries(TEXT, JSON_VALUES, max_size=5),
)


def event(**changes: Any) -> Event:
    fields: dict[str, Any] = {"at": AT, "store": "S001", "kind": "pushed"}
    return Event(**(fields | changes))


def good_line(n: int = 1) -> str:
    return event_line(event(seq=n))


# -- the model ------------------------------------------------------------------------------------


def test_documented_example_line() -> None:
    line = event_line(
        event(
            seq=12,
            correlation="plan-20261123T053000Z-1a2b3c",
            label="L000012",
            sku="000123",
            data={"gateway": "gw-01", "version": 1795411800120000, "price_cents": 279},
        )
    )
    assert line == (
        '{"seq":12,"at":"2026-11-23T05:30:00.120000Z","store":"S001","kind":"pushed",'
        '"correlation":"plan-20261123T053000Z-1a2b3c","label":"L000012","sku":"000123",'
        '"data":{"gateway":"gw-01","version":1795411800120000,"price_cents":279}}'
    )


def test_none_fields_are_left_out_but_none_inside_data_is_kept() -> None:
    line = event_line(event(kind="price_changed", data={"price_cents": 99, "previous_cents": None}))
    parsed = json.loads(line)
    assert set(parsed) == {"seq", "at", "store", "kind", "data"}
    assert parsed["data"] == {"price_cents": 99, "previous_cents": None}
    assert "\n" not in line


def test_defaults() -> None:
    e = Event(at=AT, store="S", kind="kill_switch")
    assert (e.seq, e.correlation, e.label, e.sku, e.data) == (0, None, None, None, {})


@pytest.mark.parametrize(
    ("changes", "where"),
    [
        ({"seq": -1}, "seq"),
        ({"store": ""}, "store"),
        ({"kind": "exploded"}, "kind"),
        ({"at": "yesterday"}, "at"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_events_rejected(changes: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        event(**changes)
    assert caught.value.errors()[0]["loc"] == (where,)


def test_events_are_frozen() -> None:
    with pytest.raises(ValidationError):
        event().seq = 5  # type: ignore[misc]


def test_naive_time_is_accepted_and_written_without_offset() -> None:
    # Current behaviour, possibly unintended: ``at`` is a plain datetime, so a naive time is
    # accepted and exported without "Z"/offset, although every documented line carries one.
    e = event(at=datetime(2026, 11, 23, 5, 30))
    assert json.loads(event_line(e))["at"] == "2026-11-23T05:30:00"
    assert Event.model_validate_json(event_line(e)).at.tzinfo is None


def test_payloads() -> None:
    pushed = PushedData(gateway="gw-01", version=7, price_cents=279, currency="EUR", content_hash="ab12")
    assert pushed.reference_cents is None and pushed.effective_at is None
    acked = AckedData(gateway="gw-01", version=7, status="scheduled", price_cents=279)
    failed = FailedData(gateway="gw-01", version=7, reason="label offline")
    for model in (pushed, acked, failed):
        assert type(model).model_validate(model.model_dump(mode="json")) == model


@pytest.mark.parametrize(
    ("model", "data", "where"),
    [
        (PushedData, {"gateway": "g", "version": 0, "price_cents": 1, "currency": "EUR", "content_hash": "h"}, "version"),
        (PushedData, {"gateway": "g", "version": 1, "price_cents": 0, "currency": "EUR", "content_hash": "h"}, "price_cents"),
        (PushedData, {"gateway": "g", "version": 1, "price_cents": 1, "currency": "EUR"}, "content_hash"),
        (AckedData, {"gateway": "g", "version": 1, "status": "lost", "price_cents": 1}, "status"),
        (AckedData, {"gateway": "g", "version": 1, "status": "displayed", "price_cents": 1, "x": 1}, "x"),
        (FailedData, {"gateway": "g", "version": -3, "reason": "r"}, "version"),
        (FailedData, {"gateway": "g", "version": 1}, "reason"),
    ],
)
def test_invalid_payloads_rejected(model: type, data: dict[str, Any], where: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(data)
    assert caught.value.errors()[0]["loc"] == (where,)


# -- JSONL files ----------------------------------------------------------------------------------


@given(st.lists(EVENTS, max_size=6))
def test_write_read_round_trip(events: list[Event]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "events.jsonl"
        assert write_jsonl(events, path) == len(events)
        back = read_jsonl(path)
        assert back == events
        assert [e.at.utcoffset() for e in back] == [e.at.utcoffset() for e in events]
        assert len(path.read_text(encoding="utf-8").splitlines()) == len(events)


def test_payloads_round_trip_through_a_file(tmp_path: Path) -> None:
    pushed = PushedData(
        gateway="gw-01", version=1795411800120000, price_cents=279, currency="EUR", content_hash="ab12",
        reference_cents=299, effective_at=AT,
    )
    calendar = StoreCalendar(
        timezone="Europe/Berlin",
        freeze=FreezeConfig(
            while_open=True,
            opening_hours={"mon": Hours(start="08:00", end="20:00")},
            windows=[FreezeWindow(days=["sat"], start="10:00", end="14:00")],
            dates=["2026-12-24"],
        ),
    )
    events = [
        event(kind="daemon_started", data={"calendar": calendar.model_dump(mode="json")}),
        event(label="L1", data=pushed.model_dump(mode="json", exclude_none=True)),
    ]
    write_jsonl(events, tmp_path / "e.jsonl")
    started, pushed_back = read_jsonl(tmp_path / "e.jsonl")
    assert StoreCalendar.model_validate(started.data["calendar"]) == calendar
    assert PushedData.model_validate(pushed_back.data) == pushed


def test_write_accepts_a_generator_and_replaces_the_file(tmp_path: Path) -> None:
    path = tmp_path / "out" / "events.jsonl"
    assert write_jsonl((event(seq=n) for n in range(3)), path) == 3
    assert write_jsonl([event(seq=9)], path) == 1
    assert [e.seq for e in read_jsonl(path)] == [9]
    assert write_jsonl([], path) == 0
    assert path.read_bytes() == b""
    assert read_jsonl(path) == []


def test_write_failure_leaves_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    write_jsonl([event(seq=1)], path)
    before = path.read_bytes()

    def broken() -> Iterator[Event]:
        yield event(seq=2)
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError, match="database gone"):
        write_jsonl(broken(), path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["events.jsonl"]


def test_blank_lines_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(f"\n{good_line(1)}\r\n   \r\n{good_line(2)}".encode())
    assert [e.seq for e in read_jsonl(path)] == [1, 2]


@pytest.mark.parametrize(
    ("bad", "what"),
    [
        ("not json", "event: Invalid JSON"),
        ('{"seq": 1, "at": "2026-11-23T05:30:00Z", "store": "S001"', "event: Invalid JSON"),
        ("[1, 2]", "event: Input should be an object"),
        ('{"at": "2026-11-23T05:30:00Z", "store": "S001", "kind": "exploded"}', "kind: Input should be"),
        ('{"at": "2026-11-23T05:30:00Z", "kind": "pushed"}', "store: Field required"),
        ('{"at": "2026-11-23T05:30:00Z", "store": "S001", "kind": "pushed", "extra": 1}', "extra: Extra inputs"),
        ('{"at": "2026-11-23T05:30:00Z", "store": "S001", "kind": "pushed", "data": []}', "data: Input should be"),
    ],
)
def test_bad_line_is_file_line_what(tmp_path: Path, bad: str, what: str) -> None:
    path = tmp_path / "e.jsonl"
    path.write_text(f"{good_line(1)}\n\n{good_line(2)}\n{bad}\n{good_line(3)}\n", encoding="utf-8")
    with pytest.raises(EventLogError) as caught:
        read_jsonl(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:4: {what}")  # blank lines count: line numbers are the editor's
    assert "\n" not in message
    assert isinstance(caught.value, ValueError)


@given(n_good=st.integers(min_value=0, max_value=8), data=st.data())
def test_reports_the_first_bad_line(n_good: int, data: st.DataObject) -> None:
    bad_at = data.draw(st.integers(min_value=0, max_value=n_good), label="bad_at")
    lines = [good_line(n) for n in range(n_good)]
    lines.insert(bad_at, '{"store": "S001"}')
    lines.append("also bad")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "e.jsonl"
        path.write_text("\n".join(lines), encoding="utf-8")
        with pytest.raises(EventLogError, match=rf"^{re.escape(str(path))}:{bad_at + 1}: at: Field required$"):
            read_jsonl(path)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(EventLogError) as caught:
        read_jsonl(path)
    assert str(caught.value) == f"{path}: cannot read: No such file or directory"
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(EventLogError, match=rf"^{re.escape(str(tmp_path))}: cannot read: Is a directory$"):
        read_jsonl(tmp_path)
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"store": "K\xe4se"}\n')
    with pytest.raises(EventLogError) as caught:
        read_jsonl(path)
    assert str(caught.value).startswith(f"{path}: cannot read: 'utf-8' codec can't decode byte 0xe4")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("char", list(LINE_BREAKS_JSON_KEEPS))
def test_unicode_line_separators_in_text_round_trip(tmp_path: Path, char: str) -> None:
    """JSON leaves U+0085/U+2028/U+2029 unescaped; lines are split at "\n" only, so an event whose
    text holds one (e.g. a FailedData.reason copied from an error) reads back, on its own line number."""
    e = event(kind="failed", data={"reason": f"gateway said{char}no"})
    assert char in event_line(e)
    path = tmp_path / "e.jsonl"
    write_jsonl([e, e], path)
    assert read_jsonl(path) == [e, e]
    path.write_text(event_line(e) + "\n" + "not json\n", encoding="utf-8")
    with pytest.raises(EventLogError, match=rf"^{re.escape(str(path))}:2: "):
        read_jsonl(path)
