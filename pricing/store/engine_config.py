"""The store daemon's config (config/engine.yaml), as pydantic models.

Read it with ``load_engine_config(path)``: problems come out as
``FILE:LINE: key.path: message`` lines (a ConfigError), like the rules and the scenario.

- Paths (``data_dir``, ``rules``, ``model_dir``, ``plans_dir`` and a ``database`` that is a file)
  are relative to the config file's folder: ``config.resolve("data_dir", config_dir)``.
- ``database`` is a SQLite file or a SQLAlchemy URL; ``ESL_DATABASE`` overrides it
  (``database_target(config, config_dir)``). Passwords never go in this file: the broker's come
  from ``ESL_MQTT_USERNAME`` / ``ESL_MQTT_PASSWORD``, the database's from ``ESL_DATABASE`` (or the
  driver's own variables such as ``PGPASSWORD``).
- ``jobs`` are APScheduler 3 jobs with explicit ids: a 5-field crontab in the store's time zone
  (``calendar.timezone``) or an interval (``every: 15m``). Day-of-week must be written as names
  (``mon-fri``, ``sun``): APScheduler 3 numbers the days from 0 = Monday, crontab from 0 = Sunday,
  so a number would silently mean another day. A crontab that restricts both the day of the month
  and the day of the week is refused too: crontab runs on either, APScheduler only on both.
"""

from __future__ import annotations

import contextvars
import os
import re
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, NamedTuple
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from label_gateway.delivery import DeliverySettings
from label_gateway.signing import KEYS_ENV
from pricing.core.store_calendar import StoreCalendar
from pricing.core.yaml_config import load_yaml_model

__all__ = [
    "DATABASE_ENV",
    "DEFAULT_DATABASE",
    "DeliveryConfig",
    "EngineConfig",
    "JobConfig",
    "JobKind",
    "JobSpec",
    "MetricsConfig",
    "SchedulerConfig",
    "database_target",
    "dst_hours",
    "parse_every",
]

DATABASE_ENV = "ESL_DATABASE"
SIGNING_KEYS_ENV = KEYS_ENV  # overrides signing_keys, as DATABASE_ENV overrides database
DEFAULT_DATABASE = "esl-engine.db"

JobKind = Literal["reprice", "markdown", "reconcile", "retrain"]
JOB_ID_PATTERN = re.compile(r"^[a-z0-9-]+$")
EVERY_PATTERN = re.compile(r"^\s*([0-9]+)\s*([smhd])\s*$")
_EVERY_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
PATH_FIELDS = ("data_dir", "rules", "model_dir", "plans_dir", "signing_keys", "head_office_keys")

TopicLevel = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^/+#\s]+$")]
TopicPrefix = Annotated[
    str, StringConstraints(min_length=1, max_length=200, pattern=r"^[^/+#\s]+(/[^/+#\s]+)*$")
]

# Job ids seen so far while one EngineConfig validates, so that a duplicate is reported on its
# own line (jobs.3.id) rather than on the `jobs:` key. Unset when a JobConfig validates alone.
_SEEN_JOB_IDS: contextvars.ContextVar[_SeenIds | None] = contextvars.ContextVar("_seen_job_ids", default=None)


class _SeenIds:
    """What one EngineConfig's validation has seen so far (fields validate in declaration order)."""

    def __init__(self) -> None:
        self.item = -1  # index of the jobs item being validated
        self.first: dict[str, int] = {}
        self.tz: ZoneInfo | None = None  # calendar.timezone, once validated


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_every(text: str) -> timedelta:
    """``15m`` -> 15 minutes (units s, m, h, d); ValueError with the accepted forms otherwise."""
    match = EVERY_PATTERN.match(text)
    if match is None:
        raise ValueError(f"'{text}' is not an interval; write a whole number and a unit: 90s, 15m, 2h, 1d")
    amount = int(match.group(1))
    if amount <= 0:
        raise ValueError(f"'{text}': the interval must be longer than 0")
    return timedelta(seconds=amount * _EVERY_UNITS[match.group(2)])


def _check_crontab(expr: str) -> str:
    """``expr`` when APScheduler parses it as a 5-field crontab with the meaning crontab gives it."""
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron '{expr}' has {len(fields)} fields, expected 5: minute hour day-of-month month day-of-week "
            "(e.g. \"30 5 * * *\")"
        )
    day_of_month, day_of_week = fields[2], fields[4]
    if re.search(r"[0-9]", day_of_week):
        raise ValueError(
            f"cron '{expr}': write the day of the week as names (mon-fri, sat,sun), not numbers: "
            "APScheduler counts 0 as Monday where crontab counts 0 as Sunday"
        )
    if day_of_month not in ("*", "?") and day_of_week not in ("*", "?"):
        raise ValueError(
            f"cron '{expr}': restrict either the day of the month or the day of the week, not both "
            "(crontab runs on either day, APScheduler only on days that match both)"
        )
    try:
        CronTrigger.from_crontab(expr, timezone="UTC")
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"cron '{expr}' is not valid: {exc}") from None
    return expr


@lru_cache(maxsize=64)
def dst_hours(tz: ZoneInfo) -> frozenset[int]:
    """The local hours in which ``tz``'s clocks change (skipped or repeated), 2024-2030: ``{2}`` for
    Europe/Berlin, ``{1, 2}`` for America/New_York, empty for UTC."""
    hours: set[int] = set()
    step = timedelta(minutes=15)
    day = datetime(2024, 1, 1, tzinfo=UTC)
    end = datetime(2031, 1, 1, tzinfo=UTC)
    offset = day.astimezone(tz).utcoffset()
    while day < end:
        following = day + timedelta(days=1)
        next_offset = following.astimezone(tz).utcoffset()
        if next_offset != offset:
            moment = day
            while moment < following:
                before = moment.astimezone(tz).utcoffset()
                after = (moment + step).astimezone(tz).utcoffset()
                if before != after and before is not None and after is not None:
                    change = moment + step  # the instant the offset changes
                    wall = change.replace(tzinfo=None)
                    first, last = wall + min(before, after), wall + max(before, after) - timedelta(microseconds=1)
                    hour = first.replace(minute=0, second=0, microsecond=0)
                    while hour <= last:
                        hours.add(hour.hour)
                        hour += timedelta(hours=1)
                moment += step
        offset = next_offset
        day = following
    return frozenset(hours)


def _explicit_hours(expr: str) -> set[int]:
    """The hours a crontab names one by one (``5``, ``1,13``); none for ``*``, steps or ranges."""
    hour_field = expr.split()[1]
    items = hour_field.split(",")
    return {int(item) for item in items} if all(item.isdigit() for item in items) else set()


class JobSpec(NamedTuple):
    """One job for ``pricing.store.scheduler.schedule_jobs`` (a plain tuple, in this order)."""

    job_id: str
    trigger: Any  # an apscheduler trigger
    func_ref: str  # "module:function", so the persistent job store can pickle the job
    kwargs: dict[str, Any]
    executor: str  # "default" (pricing jobs) or "training" (retrain)
    misfire_grace_s: int
    coalesce: bool


class DeliveryConfig(_Strict):
    """How a push paces itself and when it gives up on a label."""

    ack_timeout_s: float = Field(
        default=30.0, gt=0, le=3600, title="Ack timeout (s)", description="Seconds a label has to acknowledge an update."
    )
    max_attempts: int = Field(
        default=5, ge=1, le=100, title="Max attempts", description="Sends of one update before it is failed."
    )
    window_per_gateway: int = Field(
        default=200, ge=1, le=900, title="Window per gateway", description="Updates in flight per gateway at most."
    )
    deadline_s: float | None = Field(
        default=600.0,
        gt=0,
        title="Deadline (s)",
        description="A push stops waiting for acks after this many seconds; what is left stays in the outbox "
        "for the next cycle (null: wait until every label is confirmed or failed).",
    )

    #: Fields that are not DeliverySettings fields: the deadline is an argument of the push
    #: (LabelDelivery.run).
    NOT_DELIVERY_SETTINGS: ClassVar[frozenset[str]] = frozenset({"deadline_s"})

    def settings(self) -> DeliverySettings:
        """The label delivery settings of this ``delivery:`` section (the rest at their defaults).

        Every field goes over except NOT_DELIVERY_SETTINGS; DeliverySettings refuses unknown
        fields, so a new field here that it lacks fails loudly instead of being dropped."""
        return DeliverySettings(**self.model_dump(exclude=set(self.NOT_DELIVERY_SETTINGS)))


class SchedulerConfig(_Strict):
    """Defaults for every job: how late a run may still start, and whether missed runs collapse."""

    misfire_grace_s: int = Field(
        default=900,
        ge=1,
        le=7 * 86400,
        title="Misfire grace (s)",
        description="A run that cannot start within this many seconds of its time (daemon down, previous "
        "run still busy) is skipped and reported as missed.",
    )
    coalesce: bool = Field(
        default=True,
        title="Coalesce",
        description="true: several missed runs of one job run once; false: each one is tried.",
    )


class JobConfig(_Strict):
    """One scheduled job: what it does and when."""

    id: str = Field(
        min_length=1,
        max_length=64,
        title="Job id",
        description="Unique id (lower-case letters, digits, '-'); the persistent job store keys on it.",
        json_schema_extra={"pattern": JOB_ID_PATTERN.pattern},
    )
    kind: JobKind = Field(
        title="Kind",
        description="reprice: the whole store; markdown: reductions in some categories; reconcile: send again "
        "what labels do not show; retrain: a new demand model.",
    )
    cron: str | None = Field(
        default=None,
        title="Cron",
        description="5-field crontab (minute hour day-of-month month day-of-week) in the store's time zone, "
        "day-of-week as names: \"30 5 * * *\", \"0 13,17 * * mon-fri\". Give cron or every, not both.",
        examples=["30 5 * * *", "0 13,17 * * mon-fri", "0 3 * * sun"],
    )
    every: str | None = Field(
        default=None,
        title="Every",
        description="Run at this interval instead of a cron: a whole number and s, m, h or d (15m, 2h).",
        json_schema_extra={"pattern": EVERY_PATTERN.pattern},
        examples=["15m", "1h"],
    )
    categories: list[Annotated[str, StringConstraints(min_length=1)]] | None = Field(
        default=None,
        min_length=1,
        title="Categories",
        description="markdown only (required there): the product categories to mark down.",
    )
    max_reduction_pct: float | None = Field(
        default=None,
        gt=0,
        le=100,
        title="Max reduction (%)",
        description="markdown only: no SKU is reduced by more than this percentage in one run.",
    )
    misfire_grace_s: int | None = Field(
        default=None,
        ge=1,
        le=7 * 86400,
        title="Misfire grace (s)",
        description="Overrides scheduler.misfire_grace_s for this job.",
    )
    coalesce: bool | None = Field(
        default=None, title="Coalesce", description="Overrides scheduler.coalesce for this job."
    )

    @model_validator(mode="before")
    @classmethod
    def _count_item(cls, data: Any) -> Any:
        seen = _SEEN_JOB_IDS.get()
        if seen is not None:
            seen.item += 1
        return data

    @field_validator("id")
    @classmethod
    def _id_form(cls, value: str) -> str:
        if not JOB_ID_PATTERN.match(value):
            raise ValueError(
                f"job id '{value}' may only have lower-case letters, digits and '-' (like nightly-reprice)"
            )
        seen = _SEEN_JOB_IDS.get()
        if seen is not None:
            if value in seen.first:
                raise ValueError(f"job id '{value}' is used twice (also by jobs.{seen.first[value]})")
            seen.first[value] = seen.item
        return value

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str | None) -> str | None:
        if value is None:
            return None
        expr = _check_crontab(value.strip())
        seen = _SEEN_JOB_IDS.get()
        tz = seen.tz if seen is not None else None
        if tz is not None:
            clash = sorted(_explicit_hours(expr) & dst_hours(tz))
            if clash:
                spans = ", ".join(f"{h:02d}:00-{h:02d}:59" for h in clash)
                raise ValueError(
                    f"cron '{expr}' runs in the hour the clocks change in {tz.key} ({spans}): it would run "
                    "twice the night they go back and an hour late the night they go forward; pick another hour"
                )
        return expr

    @field_validator("every")
    @classmethod
    def _every_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_every(value)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> JobConfig:
        if (self.cron is None) == (self.every is None):
            which = "both" if self.cron is not None else "neither"
            raise ValueError(f"give exactly one of cron or every (this job has {which})")
        if self.kind == "markdown" and not self.categories:
            raise ValueError("a markdown job needs categories: the product categories it marks down")
        if self.kind != "markdown" and self.categories is not None:
            raise ValueError(f"categories is only for markdown jobs, not {self.kind}")
        if self.kind != "markdown" and self.max_reduction_pct is not None:
            raise ValueError(f"max_reduction_pct is only for markdown jobs, not {self.kind}")
        return self

    # -- what the scheduler needs -----------------------------------------------------------------
    @property
    def interval(self) -> timedelta | None:
        """The interval of an ``every`` job, None for a cron job."""
        return None if self.every is None else parse_every(self.every)

    @property
    def executor(self) -> str:
        """The scheduler executor: ``training`` for retrain (long), ``default`` for the pricing jobs."""
        return "training" if self.kind == "retrain" else "default"

    def trigger(self, tz: tzinfo | str, start: datetime) -> Any:
        """The APScheduler trigger: a CronTrigger in ``tz``, or an IntervalTrigger whose first run is
        ``start`` (aware; given explicitly because APScheduler's default reads the wall clock)."""
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if self.cron is not None:
            return CronTrigger.from_crontab(self.cron, timezone=tz)
        if start.tzinfo is None:
            raise ValueError("an interval job needs an aware start time")
        interval = self.interval
        assert interval is not None
        return IntervalTrigger(seconds=interval.total_seconds(), start_date=start, timezone=tz)

    def misfire_grace(self, defaults: SchedulerConfig) -> int:
        return self.misfire_grace_s if self.misfire_grace_s is not None else defaults.misfire_grace_s

    def coalesce_runs(self, defaults: SchedulerConfig) -> bool:
        return self.coalesce if self.coalesce is not None else defaults.coalesce


class MetricsConfig(_Strict):
    """The Prometheus endpoint (/metrics)."""

    enabled: bool = Field(default=True, title="Enabled", description="Serve Prometheus metrics over HTTP.")
    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        title="Host",
        description="Address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface).",
    )
    port: int = Field(default=9464, ge=1, le=65535, title="Port", description="TCP port to listen on (1-65535).")


class EngineConfig(_Strict):
    """config/engine.yaml: one store's daemon (schedule, paths, broker, delivery, metrics)."""

    store: TopicLevel = Field(title="Store", description="Store id, as in labels.csv and the MQTT topics.")
    database: str = Field(
        default=DEFAULT_DATABASE,
        min_length=1,
        title="Database",
        description=f"Engine database: a SQLite file (relative to this file's folder) or a SQLAlchemy URL "
        f"without a password; the environment variable {DATABASE_ENV} overrides it.",
    )
    data_dir: Path = Field(
        default=Path("../data"),
        title="Data folder",
        description="products.csv, sales.csv, labels.csv, competitors.csv (relative to this file's folder).",
    )
    rules: Path = Field(
        default=Path("rules.yaml"), title="Rules", description="Pricing rules file (relative to this file's folder)."
    )
    model_dir: Path = Field(
        default=Path("../models"),
        title="Model folder",
        description="Where trained demand models are saved and loaded (relative to this file's folder).",
    )
    plans_dir: Path = Field(
        default=Path("../plans"),
        title="Plans folder",
        description="Where price plans are written (relative to this file's folder).",
    )
    signing_keys: Path = Field(
        default=Path("keys"),
        title="Signing keys",
        description="The engine's signing-key directory (esl-pricing keys create; relative to this file's folder): "
        "every desired state is signed with its current key, and labels take nothing else.",
    )
    head_office_keys: Path | None = Field(
        default=None,
        title="Head office's public keys",
        description="A store of a chain (docs/chain-bridge.md): head office's public signing key(s), a *.pub file "
        "or a folder of them (relative to this file's folder). When set, reprice jobs apply the plan head office "
        "published for this store (verified with these keys) instead of planning the store alone, and report "
        "the outcome back; unset: the store plans itself.",
    )
    broker: str = Field(
        default="mqtt://127.0.0.1:1883",
        title="Broker",
        description="MQTT broker, mqtt://HOST:PORT or mqtts://HOST:PORT (TLS); credentials and certificates come "
        "from ESL_MQTT_USERNAME / ESL_MQTT_PASSWORD(_FILE) / ESL_MQTT_CA_FILE ..., never from this file.",
    )
    prefix: TopicPrefix = Field(default="esl", title="Topic prefix", description="MQTT topic prefix.")
    calendar: StoreCalendar = Field(
        default_factory=StoreCalendar,
        title="Calendar",
        description="The store's time zone (jobs run in it) and the freeze windows in which no price changes.",
    )
    kill_switch: bool = Field(
        default=False,
        title="Kill switch",
        description="true: nothing is pushed to the labels at all; planning and the rest keep running.",
    )
    delivery: DeliveryConfig = Field(
        default_factory=DeliveryConfig, title="Delivery", description="Push pacing, retries and deadline."
    )
    scheduler: SchedulerConfig = Field(
        default_factory=SchedulerConfig, title="Scheduler", description="Misfire grace and coalescing for all jobs."
    )
    jobs: list[JobConfig] = Field(
        default_factory=list, title="Jobs", description="The scheduled jobs, each with a unique id."
    )
    metrics: MetricsConfig = Field(
        default_factory=MetricsConfig, title="Metrics", description="Prometheus metrics endpoint."
    )

    _config_dir: Path | None = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _unique_job_ids(cls, data: Any, handler: Any) -> EngineConfig:
        token = _SEEN_JOB_IDS.set(_SeenIds())
        try:
            return handler(data)
        finally:
            _SEEN_JOB_IDS.reset(token)

    @field_validator("calendar")
    @classmethod
    def _note_zone(cls, value: StoreCalendar) -> StoreCalendar:
        seen = _SEEN_JOB_IDS.get()
        if seen is not None:
            seen.tz = value.tz
        return value

    @field_validator("broker")
    @classmethod
    def _broker_url(cls, value: str) -> str:
        from label_gateway.broker import BrokerAddress, BrokerUrlError

        try:
            BrokerAddress.parse(value)
        except BrokerUrlError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("database")
    @classmethod
    def _no_password(cls, value: str) -> str:
        if "://" in value:
            try:
                password = urlsplit(value).password
            except ValueError:
                password = None
            if password:
                raise ValueError(
                    f"the database URL holds a password; put the whole URL in {DATABASE_ENV} "
                    "(or the password in the driver's variable, e.g. PGPASSWORD) instead"
                )
        return value

    # -- paths --------------------------------------------------------------------------------------
    @property
    def config_dir(self) -> Path | None:
        """The folder of the file this config was loaded from (None when not loaded from a file)."""
        return self._config_dir

    def with_config_dir(self, config_dir: Path | str) -> EngineConfig:
        """This config, remembering ``config_dir`` for ``resolve`` and ``database_target``."""
        self._config_dir = Path(config_dir)
        return self

    def _folder(self, config_dir: Path | str | None) -> Path:
        if config_dir is not None:
            return Path(config_dir)
        if self._config_dir is None:
            raise ValueError("this config was not loaded from a file: say which folder relative paths start from")
        return self._config_dir

    def resolve(self, path_field: str, config_dir: Path | str | None = None) -> Path:
        """``data_dir``, ``rules``, ``model_dir`` or ``plans_dir`` as an absolute path: a relative one
        is taken from ``config_dir`` (by default the folder of the file the config came from)."""
        if path_field not in PATH_FIELDS:
            raise ValueError(f"'{path_field}' is not a path setting ({', '.join(PATH_FIELDS)})")
        value = getattr(self, path_field)
        if value is None:
            raise ValueError(f"'{path_field}' is not set")
        path = Path(value).expanduser()
        if not path.is_absolute():
            path = self._folder(config_dir) / path
        return Path(os.path.normpath(path.absolute()))

    def input_problems(self, config_file: Path | str) -> list[str]:
        """One ``FILE:LINE: key: message`` line per input the daemon reads that is not there: the
        ``data_dir`` folder and the ``rules`` file (relative paths start at ``config_file``'s
        folder). [] when both exist."""
        wanted = {"data_dir": ("folder", Path.is_dir), "rules": ("file", Path.is_file)}
        problems = []
        for key, (what, exists) in wanted.items():
            path = self.resolve(key, Path(config_file).parent)
            if not exists(path):
                found = "is not a " + what if path.exists() else "does not exist"
                problems.append(f"{_key_place(config_file, key)}: {key}: {what} {path} {found}")
        return problems

    def signing_keys_dir(self, config_dir: Path | str | None = None) -> Path:
        """The engine's signing-key directory: ``ESL_SIGNING_KEYS`` when set (as given), else
        ``signing_keys`` relative to the config's folder."""
        override = os.environ.get(SIGNING_KEYS_ENV)
        return Path(override) if override else self.resolve("signing_keys", config_dir)

    def database_target(self, config_dir: Path | str | None = None) -> str:
        """See ``database_target``."""
        return database_target(self, config_dir)

    # -- jobs -----------------------------------------------------------------------------------------
    def job(self, job_id: str) -> JobConfig:
        for job in self.jobs:
            if job.id == job_id:
                return job
        raise KeyError(f"no job '{job_id}' (jobs: {', '.join(j.id for j in self.jobs)})")

    def scheduled_jobs(
        self, func_ref: str, start: datetime, kwargs: dict[str, Any] | None = None
    ) -> list[JobSpec]:
        """Every job as a ``JobSpec`` for ``pricing.store.scheduler.schedule_jobs``: its trigger in the
        store's time zone (interval jobs first run at ``start``), ``func_ref`` called with
        ``job_id=<id>`` plus ``kwargs``, its executor and its misfire grace and coalescing."""
        tz = self.calendar.tz
        return [
            JobSpec(
                job_id=job.id,
                trigger=job.trigger(tz, start),
                func_ref=func_ref,
                kwargs={"job_id": job.id, **(kwargs or {})},
                executor=job.executor,
                misfire_grace_s=job.misfire_grace(self.scheduler),
                coalesce=job.coalesce_runs(self.scheduler),
            )
            for job in self.jobs
        ]


def database_target(config: EngineConfig, config_dir: Path | str | None = None) -> str:
    """The engine database for ``label_gateway.outbox.open_engine``: ``ESL_DATABASE`` when set
    (as given: a URL, or a file relative to the working directory), else ``config.database`` (a URL
    as is, a file relative to ``config_dir``, by default the folder of the config file)."""
    override = os.environ.get(DATABASE_ENV, "").strip()
    if override:
        return override
    if "://" in config.database:
        return config.database
    path = Path(config.database).expanduser()
    if not path.is_absolute():
        path = config._folder(config_dir) / path
    return str(Path(os.path.normpath(path.absolute())))


def _key_place(config_file: Path | str, key: str) -> str:
    """``FILE:LINE`` of the top-level ``key`` in ``config_file`` (``FILE`` when it is not written there)."""
    pattern = re.compile(rf"^\s*[\"']?{re.escape(key)}[\"']?\s*:")
    try:
        lines = Path(config_file).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    for number, line in enumerate(lines, start=1):
        if pattern.match(line):
            return f"{config_file}:{number}"
    return str(config_file)


def load_engine_config(path: str | Path) -> EngineConfig:
    """Read config/engine.yaml (or another engine config). Raises ConfigError.

    The config remembers the file's folder: relative paths in it start there."""
    return load_yaml_model(path, EngineConfig).with_config_dir(Path(path).parent)
