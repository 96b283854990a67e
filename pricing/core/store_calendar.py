"""Freeze windows: times when no price may change on the shelf.

A store freezes prices while it is open (optional), in listed weekly windows (e.g. Saturday
10:00-14:00) and on listed dates (e.g. 2026-12-24). Times are the store's local wall-clock time
in ``timezone``. The daemon pushes nothing inside a freeze; replay reports a change it finds
inside one. Part of config/engine.yaml and recorded in the event log, so both sides read it here.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ValueError with the name when it is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{name}' (use an IANA name such as Europe/Berlin)") from None


class Hours(BaseModel):
    """A span of local time on one day, ``start`` inclusive, ``end`` exclusive."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time = Field(title="Start", description="Local time the span starts (HH:MM).")
    end: time = Field(title="End", description="Local time the span ends (HH:MM); after start.")

    @field_validator("start", "end", mode="before")
    @classmethod
    def _clock_text(cls, value: object) -> object:
        if isinstance(value, int | float):  # pydantic would read seconds since midnight, in UTC
            raise ValueError(f"give the time as text HH:MM (e.g. '08:00'), not the number {value}")
        return value

    @field_validator("start", "end")
    @classmethod
    def _local(cls, value: time) -> time:
        if value.tzinfo is not None:
            raise ValueError(f"give the store's local time without a UTC offset (the calendar's timezone applies), "
                             f"not {value.isoformat()}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> Hours:
        if self.end <= self.start:
            raise ValueError(f"end {self.end:%H:%M} must be after start {self.start:%H:%M}")
        return self

    def covers(self, moment: time) -> bool:
        return self.start <= moment < self.end


class FreezeWindow(Hours):
    """A weekly freeze: these days, from start to end."""

    days: list[Weekday] = Field(
        min_length=1, title="Days", description="Weekdays the window applies to (mon ... sun)."
    )


class FreezeConfig(BaseModel):
    """When prices must not change on the shelf."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    while_open: bool = Field(
        default=False,
        title="Freeze while open",
        description="No price changes while the store is open (opening_hours).",
    )
    opening_hours: dict[Weekday, Hours] = Field(
        default_factory=dict,
        title="Opening hours",
        description="Local opening hours per weekday; a day not listed is closed.",
    )
    windows: list[FreezeWindow] = Field(
        default_factory=list, title="Weekly windows", description="Extra weekly freeze windows."
    )
    dates: list[date] = Field(
        default_factory=list, title="Dates", description="Whole local days with no price changes (holidays, audits)."
    )

    @model_validator(mode="after")
    def _hours_given(self) -> FreezeConfig:
        if self.while_open and not self.opening_hours:
            raise ValueError("while_open needs opening_hours")
        return self

    def reason(self, at: datetime, tz: ZoneInfo) -> str | None:
        """Why ``at`` (aware) is frozen, or None when prices may change then."""
        if at.tzinfo is None:
            raise ValueError("freeze check needs an aware datetime")
        local = at.astimezone(tz)
        day: Weekday = WEEKDAYS[local.weekday()]
        clock = local.time().replace(tzinfo=None)
        if local.date() in self.dates:
            return f"frozen date {local.date().isoformat()}"
        if self.while_open:
            hours = self.opening_hours.get(day)
            if hours is not None and hours.covers(clock):
                return f"store open ({day} {hours.start:%H:%M}-{hours.end:%H:%M})"
        for window in self.windows:
            if day in window.days and window.covers(clock):
                return f"freeze window ({day} {window.start:%H:%M}-{window.end:%H:%M})"
        return None


class StoreCalendar(BaseModel):
    """A store's time zone and freeze windows, as the event log records them for replay."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    timezone: str = Field(default="UTC", title="Time zone", description="IANA time zone of the store.")
    freeze: FreezeConfig = Field(default_factory=FreezeConfig, title="Freeze", description="Freeze windows.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        zone(value)
        return value

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    def frozen(self, at: datetime) -> str | None:
        return self.freeze.reason(at, self.tz)
