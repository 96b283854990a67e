"""pricing.core.store_calendar: freeze windows in the store's local wall-clock time (weekly windows,
whole dates, opening hours), across time zones and DST changes; bad configs rejected clearly."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pricing.core.errors import first_error
from pricing.core.store_calendar import (
    WEEKDAYS,
    FreezeWindow,
    Hours,
    StoreCalendar,
    zone,
)

BERLIN = "Europe/Berlin"
INSTANTS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC))


def calendar(timezone: str = "UTC", **freeze: Any) -> StoreCalendar:
    return StoreCalendar.model_validate({"timezone": timezone, "freeze": freeze})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def frozen_minutes(cal: StoreCalendar, start: datetime, end: datetime) -> int:
    """How many whole minutes from ``start`` to ``end`` (UTC) are frozen."""
    minutes = int((end - start) / timedelta(minutes=1))
    return sum(cal.frozen(start + timedelta(minutes=m)) is not None for m in range(minutes))


def error_line(data: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        StoreCalendar.model_validate(data)
    return first_error(caught.value, "calendar")


# -- defaults and basics --------------------------------------------------------------------------


@given(INSTANTS)
def test_default_calendar_never_freezes(at: datetime) -> None:
    cal = StoreCalendar()
    assert cal.timezone == "UTC"
    assert cal.frozen(at) is None


def test_naive_time_raises() -> None:
    cal = calendar(BERLIN, dates=["2026-12-24"])
    with pytest.raises(ValueError, match="aware datetime"):
        cal.frozen(datetime(2026, 12, 24, 12, 0))


def test_tz_and_zone() -> None:
    assert calendar(BERLIN).tz == ZoneInfo(BERLIN)
    assert zone("America/New_York") == ZoneInfo("America/New_York")
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        zone("Mars/Olympus")


def test_hours_start_inclusive_end_exclusive() -> None:
    hours = Hours(start=time(10), end=time(14))
    assert not hours.covers(time(9, 59, 59, 999999))
    assert hours.covers(time(10))
    assert hours.covers(time(13, 59, 59, 999999))
    assert not hours.covers(time(14))


def test_times_parse_from_config_text() -> None:
    window = FreezeWindow.model_validate({"days": ["sat"], "start": "10:00", "end": "14:30"})
    assert (window.start, window.end) == (time(10), time(14, 30))


def test_json_round_trip() -> None:
    cal = calendar(
        BERLIN,
        while_open=True,
        opening_hours={"mon": {"start": "08:00", "end": "20:00"}, "sat": {"start": "08:00", "end": "18:00"}},
        windows=[{"days": ["sat", "sun"], "start": "10:00", "end": "14:00"}],
        dates=["2026-12-24", "2026-12-31"],
    )
    assert StoreCalendar.model_validate_json(cal.model_dump_json()) == cal


def test_models_are_frozen() -> None:
    cal = calendar(BERLIN)
    with pytest.raises(ValidationError):
        cal.timezone = "UTC"  # type: ignore[misc]


# -- weekly windows -------------------------------------------------------------------------------


def test_weekly_window_in_local_time() -> None:
    # 2026-11-28 is a Saturday; Berlin is UTC+1 in winter.
    cal = calendar(BERLIN, windows=[{"days": ["sat"], "start": "10:00", "end": "14:00"}])
    assert cal.frozen(utc(2026, 11, 28, 8, 59, 59)) is None
    assert cal.frozen(utc(2026, 11, 28, 9, 0)) == "freeze window (sat 10:00-14:00)"
    assert cal.frozen(utc(2026, 11, 28, 12, 59, 59, 999999)) == "freeze window (sat 10:00-14:00)"
    assert cal.frozen(utc(2026, 11, 28, 13, 0)) is None
    assert cal.frozen(utc(2026, 11, 21, 9, 30)) is not None  # every Saturday
    assert cal.frozen(utc(2026, 11, 27, 9, 30)) is None  # Friday
    # In summer (UTC+2) the same local window is an hour earlier in UTC.
    assert cal.frozen(utc(2026, 7, 4, 8, 0)) is not None
    assert cal.frozen(utc(2026, 7, 4, 12, 0)) is None


def test_weekday_is_the_local_one() -> None:
    # Saturday 00:30 in Berlin is still Friday 23:30 in UTC; Friday 21:00 in New York is Saturday in UTC.
    berlin = calendar(BERLIN, windows=[{"days": ["sat"], "start": "00:00", "end": "01:00"}])
    assert berlin.frozen(utc(2026, 11, 27, 23, 30)) == "freeze window (sat 00:00-01:00)"
    assert berlin.frozen(utc(2026, 11, 28, 0, 30)) is None
    new_york = calendar("America/New_York", windows=[{"days": ["fri"], "start": "20:00", "end": "22:00"}])
    assert new_york.frozen(utc(2026, 11, 28, 2, 0)) == "freeze window (fri 20:00-22:00)"
    assert new_york.frozen(utc(2026, 11, 27, 2, 0)) is None  # Thursday evening locally


def test_several_windows_first_match_is_reported() -> None:
    cal = calendar(
        windows=[
            {"days": ["mon", "tue"], "start": "06:00", "end": "09:00"},
            {"days": ["mon"], "start": "08:00", "end": "12:00"},
        ]
    )
    assert cal.frozen(utc(2026, 11, 23, 8, 30)) == "freeze window (mon 06:00-09:00)"
    assert cal.frozen(utc(2026, 11, 23, 10, 0)) == "freeze window (mon 08:00-12:00)"
    assert cal.frozen(utc(2026, 11, 24, 8, 30)) == "freeze window (tue 06:00-09:00)"
    assert cal.frozen(utc(2026, 11, 24, 10, 0)) is None


@given(INSTANTS, st.sets(st.sampled_from(WEEKDAYS), min_size=1), st.integers(0, 22), st.integers(1, 23))
def test_window_matches_local_wall_clock(at: datetime, days: set[str], start_h: int, length_h: int) -> None:
    end_h = min(start_h + length_h, 23)
    if end_h <= start_h:
        return
    # Etc/GMT-2 is UTC+2 all year: local time is simply UTC + 2 hours.
    cal = calendar("Etc/GMT-2", windows=[{"days": sorted(days), "start": time(start_h), "end": time(end_h)}])
    local = (at + timedelta(hours=2)).replace(tzinfo=None)
    expected = WEEKDAYS[local.weekday()] in days and time(start_h) <= local.time() < time(end_h)
    assert (cal.frozen(at) is not None) == expected


@given(INSTANTS, st.sampled_from(["UTC", BERLIN, "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]))
def test_only_the_instant_matters_not_its_offset(at: datetime, shown_in: str) -> None:
    cal = calendar(
        BERLIN,
        while_open=True,
        opening_hours={"mon": {"start": "08:00", "end": "20:00"}},
        windows=[{"days": ["sat"], "start": "10:00", "end": "14:00"}],
        dates=["2026-12-24"],
    )
    assert cal.frozen(at.astimezone(ZoneInfo(shown_in))) == cal.frozen(at)


# -- whole dates ----------------------------------------------------------------------------------


def test_frozen_date_is_the_whole_local_day() -> None:
    cal = calendar(BERLIN, dates=["2026-12-24"])
    assert cal.frozen(utc(2026, 12, 23, 22, 59, 59)) is None
    assert cal.frozen(utc(2026, 12, 23, 23, 0)) == "frozen date 2026-12-24"  # 00:00 local
    assert cal.frozen(utc(2026, 12, 24, 22, 59, 59, 999999)) == "frozen date 2026-12-24"
    assert cal.frozen(utc(2026, 12, 24, 23, 0)) is None  # 00:00 on the 25th locally
    assert frozen_minutes(cal, utc(2026, 12, 23, 12), utc(2026, 12, 25, 12)) == 24 * 60


def test_frozen_date_on_a_dst_day_lasts_23_or_25_hours() -> None:
    spring = calendar(BERLIN, dates=["2026-03-29"])
    assert frozen_minutes(spring, utc(2026, 3, 28, 12), utc(2026, 3, 30, 12)) == 23 * 60
    autumn = calendar(BERLIN, dates=["2026-10-25"])
    assert frozen_minutes(autumn, utc(2026, 10, 24, 12), utc(2026, 10, 26, 12)) == 25 * 60


# -- opening hours --------------------------------------------------------------------------------


def test_frozen_while_open() -> None:
    cal = calendar(
        BERLIN,
        while_open=True,
        opening_hours={"mon": {"start": "08:00", "end": "20:00"}, "sat": {"start": "08:00", "end": "18:00"}},
    )
    assert cal.frozen(utc(2026, 11, 23, 6, 59)) is None
    assert cal.frozen(utc(2026, 11, 23, 7, 0)) == "store open (mon 08:00-20:00)"
    assert cal.frozen(utc(2026, 11, 23, 18, 59)) == "store open (mon 08:00-20:00)"
    assert cal.frozen(utc(2026, 11, 23, 19, 0)) is None
    assert cal.frozen(utc(2026, 11, 28, 16, 59)) == "store open (sat 08:00-18:00)"
    assert cal.frozen(utc(2026, 11, 24, 12, 0)) is None  # Tuesday is not listed: closed


def test_opening_hours_ignored_unless_while_open() -> None:
    cal = calendar(BERLIN, opening_hours={"mon": {"start": "08:00", "end": "20:00"}})
    assert cal.frozen(utc(2026, 11, 23, 12, 0)) is None


def test_date_beats_open_beats_window() -> None:
    cal = calendar(
        while_open=True,
        opening_hours={"mon": {"start": "08:00", "end": "20:00"}},
        windows=[{"days": ["mon"], "start": "06:00", "end": "10:00"}],
        dates=["2026-11-30"],
    )
    assert cal.frozen(utc(2026, 11, 23, 9, 0)) == "store open (mon 08:00-20:00)"
    assert cal.frozen(utc(2026, 11, 23, 7, 0)) == "freeze window (mon 06:00-10:00)"
    assert cal.frozen(utc(2026, 11, 30, 9, 0)) == "frozen date 2026-11-30"


# -- DST change days (local wall-clock time) -------------------------------------------------------


def test_window_in_the_skipped_spring_hour_never_freezes() -> None:
    # 2026-03-29 (Sunday), Berlin: 02:00 CET jumps to 03:00 CEST, so 02:00-03:00 does not exist.
    cal = calendar(BERLIN, windows=[{"days": ["sun"], "start": "02:00", "end": "03:00"}])
    assert frozen_minutes(cal, utc(2026, 3, 28, 22), utc(2026, 3, 29, 4)) == 0
    assert frozen_minutes(cal, utc(2026, 3, 22, 0), utc(2026, 3, 22, 3)) == 60  # a week earlier: one hour
    longer = calendar(BERLIN, windows=[{"days": ["sun"], "start": "01:00", "end": "04:00"}])
    assert frozen_minutes(longer, utc(2026, 3, 28, 22), utc(2026, 3, 29, 4)) == 2 * 60
    assert longer.frozen(utc(2026, 3, 29, 1, 59)) is not None  # 03:59 CEST
    assert longer.frozen(utc(2026, 3, 29, 2, 0)) is None  # 04:00 CEST


def test_window_in_the_repeated_autumn_hour_freezes_twice() -> None:
    # 2026-10-25 (Sunday), Berlin: 03:00 CEST falls back to 02:00 CET, so 02:00-03:00 happens twice.
    cal = calendar(BERLIN, windows=[{"days": ["sun"], "start": "02:00", "end": "03:00"}])
    assert cal.frozen(utc(2026, 10, 24, 23, 59)) is None  # 01:59 CEST
    assert cal.frozen(utc(2026, 10, 25, 0, 0)) is not None  # 02:00 CEST
    assert cal.frozen(utc(2026, 10, 25, 1, 30)) is not None  # 02:30 CET
    assert cal.frozen(utc(2026, 10, 25, 2, 0)) is None  # 03:00 CET
    assert frozen_minutes(cal, utc(2026, 10, 24, 22), utc(2026, 10, 25, 4)) == 2 * 60


# -- what cannot be expressed ----------------------------------------------------------------------


def test_windows_across_midnight_are_rejected() -> None:
    # Not supported: a span lies within one day, so 22:00-02:00 must be written as two windows.
    assert error_line({"freeze": {"windows": [{"days": ["fri"], "start": "22:00", "end": "02:00"}]}}) == (
        "freeze.windows.0: Value error, end 02:00 must be after start 22:00"
    )


def test_a_span_cannot_reach_midnight() -> None:
    # end is exclusive and "24:00" is not a time, so the closest is 23:59:59.999999; "23:59" leaves
    # the last minute of the day unfrozen (a limitation worth knowing for "until close of day").
    assert error_line({"freeze": {"windows": [{"days": ["fri"], "start": "22:00", "end": "24:00"}]}}).startswith(
        "freeze.windows.0.end: Input should be in a valid time format"
    )
    cal = calendar(windows=[{"days": ["fri"], "start": "22:00", "end": "23:59"}])
    assert cal.frozen(utc(2026, 11, 27, 23, 58, 59)) is not None
    assert cal.frozen(utc(2026, 11, 27, 23, 59, 30)) is None
    whole = calendar(windows=[{"days": list(WEEKDAYS), "start": "00:00", "end": "23:59:59.999999"}])
    assert whole.frozen(utc(2026, 11, 27, 23, 59, 59, 999998)) is not None
    assert whole.frozen(utc(2026, 11, 27, 23, 59, 59, 999999)) is None


# -- invalid configs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"timezone": "Mars/Olympus"},
         "timezone: Value error, unknown time zone 'Mars/Olympus' (use an IANA name such as Europe/Berlin)"),
        ({"timezone": ""}, "timezone: Value error, unknown time zone '' (use an IANA name such as Europe/Berlin)"),
        ({"timezone": "europe/berlin"},
         "timezone: Value error, unknown time zone 'europe/berlin' (use an IANA name such as Europe/Berlin)"),
        ({"timezone": "../etc/passwd"},
         "timezone: Value error, unknown time zone '../etc/passwd' (use an IANA name such as Europe/Berlin)"),
        ({"freeze": {"while_open": True}}, "freeze: Value error, while_open needs opening_hours"),
        ({"freeze": {"opening_hours": {"mon": {"start": "20:00", "end": "08:00"}}}},
         "freeze.opening_hours.mon: Value error, end 08:00 must be after start 20:00"),
        ({"freeze": {"windows": [{"days": ["sat"], "start": "10:00", "end": "10:00"}]}},
         "freeze.windows.0: Value error, end 10:00 must be after start 10:00"),
        ({"freeze": {"windows": [{"days": [], "start": "10:00", "end": "14:00"}]}},
         "freeze.windows.0.days: List should have at least 1 item after validation, not 0"),
        ({"freeze": {"windows": [{"start": "10:00", "end": "14:00"}]}}, "freeze.windows.0.days: Field required"),
        ({"timezone": "UTC", "zone": "UTC"}, "zone: Extra inputs are not permitted"),
        ({"freeze": {"holidays": []}}, "freeze.holidays: Extra inputs are not permitted"),
    ],
)
def test_invalid_configs_have_a_clear_message(data: dict[str, Any], message: str) -> None:
    assert error_line(data) == message


@pytest.mark.parametrize(
    ("data", "where", "starts"),
    [
        ({"freeze": {"windows": [{"days": ["saturday"], "start": "10:00", "end": "14:00"}]}},
         "freeze.windows.0.days.0", "Input should be 'mon', 'tue', 'wed', 'thu', 'fri', 'sat' or 'sun'"),
        ({"freeze": {"opening_hours": {"Mon": {"start": "08:00", "end": "20:00"}}}},
         "freeze.opening_hours.Mon.[key]", "Input should be 'mon'"),
        ({"freeze": {"windows": [{"days": ["sat"], "start": "25:00", "end": "26:00"}]}},
         "freeze.windows.0.start", "Input should be in a valid time format"),
        ({"freeze": {"dates": ["2026-02-30"]}}, "freeze.dates.0", "Input should be a valid date"),
    ],
)
def test_invalid_values_point_at_the_key(data: dict[str, Any], where: str, starts: str) -> None:
    assert error_line(data).startswith(f"{where}: {starts}")


# -- times are local clock text ----------------------------------------------------------------------


@pytest.mark.parametrize("start", [600, 6.5])
def test_numbers_as_times_are_refused(start: object) -> None:
    """pydantic would read a number as seconds since midnight in UTC (600: 00:10 UTC), which the
    freeze check could not compare with the local clock."""
    with pytest.raises(ValidationError, match="give the time as text HH:MM"):
        FreezeWindow.model_validate({"days": ["mon"], "start": start, "end": "12:00"})


def test_a_time_with_an_offset_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValidationError, match="without a UTC offset"):
        StoreCalendar.model_validate(
            {"freeze": {"opening_hours": {"mon": {"start": "08:00+02:00", "end": "20:00"}}}}
        )
