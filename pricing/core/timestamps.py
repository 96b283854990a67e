"""Time in the engine database: exact microseconds since the epoch, and back to aware datetimes."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


def now_us() -> int:
    return time.time_ns() // 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def epoch_us(at: datetime) -> int:
    """Microseconds since the epoch, exactly (a float timestamp can be off by one), for the
    engine database's time columns."""
    if at.tzinfo is None:
        raise ValueError("times must carry a time zone")
    return (at - _EPOCH) // _MICROSECOND


def from_epoch_us(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def to_us(when: datetime | None) -> int | None:
    return None if when is None else epoch_us(when)


def from_us(micros: int | None) -> datetime | None:
    return None if micros is None else from_epoch_us(micros)
