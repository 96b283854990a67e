"""pricing.core.timestamps: exact microseconds since the epoch <-> aware datetimes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing.core.timestamps import epoch_us, from_epoch_us, from_us, now_us, to_us

SANE_FROM = datetime(1900, 1, 1)
SANE_TO = datetime(2200, 12, 31)
AWARE = st.datetimes(min_value=SANE_FROM, max_value=SANE_TO, timezones=st.timezones())
NAIVE = st.datetimes(min_value=SANE_FROM, max_value=SANE_TO)
MICROS = st.integers(min_value=epoch_us(SANE_FROM.replace(tzinfo=UTC)), max_value=epoch_us(SANE_TO.replace(tzinfo=UTC)))


@given(AWARE)
def test_aware_datetime_round_trip(at: datetime) -> None:
    micros = epoch_us(at)
    assert isinstance(micros, int)
    back = from_epoch_us(micros)
    assert back.tzinfo is UTC
    # compared in UTC: an inter-zone == is always False for times in a DST overlap (PEP 495)
    assert back == at.astimezone(UTC)
    assert epoch_us(back) == micros


@given(MICROS)
def test_micros_round_trip(micros: int) -> None:
    assert epoch_us(from_epoch_us(micros)) == micros


@given(AWARE, AWARE)
def test_order_is_kept(a: datetime, b: datetime) -> None:
    ua, ub = a.astimezone(UTC), b.astimezone(UTC)
    assert (epoch_us(a) < epoch_us(b)) == (ua < ub)
    assert (epoch_us(a) == epoch_us(b)) == (ua == ub)
    assert epoch_us(b) - epoch_us(a) == (ub - ua) // timedelta(microseconds=1)


@given(NAIVE)
def test_naive_datetimes_raise(at: datetime) -> None:
    with pytest.raises(ValueError, match="time zone"):
        epoch_us(at)
    with pytest.raises(ValueError, match="time zone"):
        to_us(at)


@pytest.mark.parametrize(
    ("at", "micros"),
    [
        (datetime(1970, 1, 1, tzinfo=UTC), 0),
        (datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC), 1),
        (datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), -1),
        (datetime(2026, 11, 23, 5, 30, 0, 120000, tzinfo=UTC), 1_795_411_800_120_000),
        (datetime(2026, 11, 23, 6, 30, 0, 120000, tzinfo=ZoneInfo("Europe/Berlin")), 1_795_411_800_120_000),
        (datetime(2026, 11, 23, 0, 30, 0, 120000, tzinfo=timezone(timedelta(hours=-5))), 1_795_411_800_120_000),
    ],
)
def test_examples(at: datetime, micros: int) -> None:
    assert epoch_us(at) == micros
    assert from_epoch_us(micros) == at


def test_exact_where_a_float_timestamp_is_off_by_one() -> None:
    at = datetime(2005, 4, 17, 8, 29, 2, 646319, tzinfo=UTC)
    assert int(at.timestamp() * 1_000_000) == 1_113_726_542_646_318  # the float way loses a microsecond
    assert epoch_us(at) == 1_113_726_542_646_319


def test_none_passes_through() -> None:
    assert to_us(None) is None
    assert from_us(None) is None
    assert to_us(datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)) == 1_000_000
    assert from_us(1_000_000) == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert from_us(0) == datetime(1970, 1, 1, tzinfo=UTC)  # 0 is a time, not "no time"


def test_now_us_is_the_wall_clock_in_microseconds() -> None:
    before = time.time_ns() // 1000
    now = now_us()
    after = time.time_ns() // 1000
    assert isinstance(now, int)
    assert before <= now <= after
