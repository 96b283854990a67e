"""Tests for pricing/store/engine_config.py: config/engine.yaml, its errors, paths and triggers."""

from __future__ import annotations

import json
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from pricing.cli.config import CONFIG_KINDS, validate_config_file
from pricing.core.yaml_config import ConfigError, schema_text
from pricing.store.engine_config import (
    DATABASE_ENV,
    EngineConfig,
    JobConfig,
    SchedulerConfig,
    database_target,
    dst_hours,
    load_engine_config,
    parse_every,
)

REPO = Path(__file__).resolve().parents[3]
CONFIG_DIR = REPO / "config"
BERLIN = ZoneInfo("Europe/Berlin")

MINIMAL = """
store: S001
jobs:
  - id: nightly-reprice
    kind: reprice
    cron: "30 5 * * *"
"""


def write(tmp_path: Path, text: str, name: str = "engine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_engine_config(path)
    assert validate_config_file(path) == info.value.problems  # recognised as an engine config
    return info.value.problems


# ---------------------------------------------------------------------------------------------
# The committed files
# ---------------------------------------------------------------------------------------------


def test_engine_kind_is_registered() -> None:
    kind = CONFIG_KINDS["engine"]
    assert kind.model is EngineConfig
    assert kind.title


def test_committed_schema_is_current() -> None:
    committed = (CONFIG_DIR / "engine.schema.json").read_text(encoding="utf-8")
    schema = json.loads(committed)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["additionalProperties"] is False
    expected = CONFIG_KINDS["engine"].model.model_json_schema()
    assert {k: v for k, v in schema.items() if k not in ("$schema", "title")} == {
        k: v for k, v in expected.items() if k != "title"
    }

    assert committed == schema_text(CONFIG_KINDS["engine"].json_schema()), (
        "config/engine.schema.json is out of date with pricing/store/engine_config.py; "
        "run `python -m pricing.cli.config --write-schema config/`"
    )


def _fields(model: type) -> list[tuple[str, object]]:
    out: list[tuple[str, object]] = []
    for name, field in model.model_fields.items():  # type: ignore[attr-defined]
        out.append((f"{model.__name__}.{name}", field))
    return out


def test_every_field_has_a_title_and_description() -> None:
    from pricing.store.engine_config import DeliveryConfig, MetricsConfig

    for model in (EngineConfig, JobConfig, SchedulerConfig, DeliveryConfig, MetricsConfig):
        for where, field in _fields(model):
            assert field.title, where  # type: ignore[attr-defined]
            assert field.description, where  # type: ignore[attr-defined]
        assert model.model_config.get("extra") == "forbid"


def test_example_engine_yaml_validates() -> None:
    path = CONFIG_DIR / "engine.yaml"
    assert path.read_text(encoding="utf-8").splitlines()[0] == "# yaml-language-server: $schema=./engine.schema.json"
    assert validate_config_file(path) == []
    config = load_engine_config(path)
    assert config.store == "store-001"  # what simulate generate and config/scenario.yaml use
    assert config.calendar.timezone == "Europe/Berlin"
    assert [job.id for job in config.jobs] == ["nightly-reprice", "markdown-perishables", "reconcile", "weekly-retrain"]
    markdown = config.job("markdown-perishables")
    assert markdown.categories == ["dairy", "bakery"] and markdown.max_reduction_pct == 30
    assert config.job("reconcile").interval == timedelta(minutes=15)
    assert config.job("weekly-retrain").executor == "training"
    assert config.job("weekly-retrain").misfire_grace(config.scheduler) == 3600
    assert config.job("nightly-reprice").misfire_grace(config.scheduler) == 900
    assert config.metrics.host == "127.0.0.1" and config.metrics.port == 9464
    assert config.delivery.deadline_s == 600
    assert config.config_dir == CONFIG_DIR


def test_defaults(tmp_path: Path) -> None:
    config = load_engine_config(write(tmp_path, "store: S9\n"))
    assert config.jobs == []
    assert config.metrics.enabled and config.metrics.host == "127.0.0.1"
    assert config.scheduler.misfire_grace_s == 900 and config.scheduler.coalesce
    assert config.kill_switch is False
    assert config.calendar.timezone == "UTC"


# ---------------------------------------------------------------------------------------------
# Broken files: FILE:LINE: key.path: message
# ---------------------------------------------------------------------------------------------


def test_typo_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        store: S001
        jobs:
          - id: nightly-reprice
            kind: reprice
            cronn: "30 5 * * *"
        """,
    )
    problems = problems_of(path)
    assert problems[0].startswith(f"{path}:5: jobs.0.cronn: unknown key; did you mean 'cron'?")


def test_typo_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, "store: S001\nkill_swich: true\n")
    allowed = (
        "store, database, data_dir, rules, model_dir, plans_dir, signing_keys, head_office_keys, broker, prefix, calendar, kill_switch, "
        "delivery, scheduler, jobs, metrics"
    )
    assert problems_of(path) == [f"{path}:2: kill_swich: unknown key; did you mean 'kill_switch'? (allowed: {allowed})"]


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("30 5 * *", "cron '30 5 * *' has 4 fields, expected 5"),
        ("61 5 * * *", "cron '61 5 * * *' is not valid"),
        ("30 5 * * funday", "cron '30 5 * * funday' is not valid"),
        ("0 3 * * 0", "write the day of the week as names"),
        ("0 3 1 * mon", "restrict either the day of the month or the day of the week, not both"),
    ],
)
def test_bad_cron(tmp_path: Path, cron: str, message: str) -> None:
    path = write(tmp_path, f'store: S001\njobs:\n  - id: a\n    kind: reprice\n    cron: "{cron}"\n')
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:5: jobs.0.cron: ")
    assert message in problems[0]


def test_duplicate_job_id_points_at_the_second(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        store: S001
        jobs:
          - id: nightly-reprice
            kind: reprice
            cron: "30 5 * * *"
          - id: reconcile
            kind: reconcile
            every: 15m
          - id: nightly-reprice
            kind: reprice
            cron: "30 6 * * *"
        """,
    )
    assert problems_of(path) == [f"{path}:9: jobs.2.id: job id 'nightly-reprice' is used twice (also by jobs.0)"]


def test_job_id_form(tmp_path: Path) -> None:
    path = write(tmp_path, "store: S001\njobs:\n  - {id: Nightly_Reprice, kind: reprice, cron: '30 5 * * *'}\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:3: jobs.0.id: job id 'Nightly_Reprice' may only have lower-case letters")


def test_cron_and_every_both(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        store: S001
        jobs:
          - id: reconcile
            kind: reconcile
            cron: "*/15 * * * *"
            every: 15m
        """,
    )
    assert problems_of(path) == [f"{path}:3: jobs.0: give exactly one of cron or every (this job has both)"]


def test_cron_and_every_neither(tmp_path: Path) -> None:
    path = write(tmp_path, "store: S001\njobs:\n  - id: reconcile\n    kind: reconcile\n")
    assert problems_of(path) == [f"{path}:3: jobs.0: give exactly one of cron or every (this job has neither)"]


@pytest.mark.parametrize("every", ["15", "15 minutes", "1.5h", "0m", "-5m"])
def test_bad_every(tmp_path: Path, every: str) -> None:
    path = write(tmp_path, f"store: S001\njobs:\n  - id: r\n    kind: reconcile\n    every: '{every}'\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:5: jobs.0.every: '{every}'")


def test_markdown_without_categories(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        store: S001
        jobs:
          - id: markdown-perishables
            kind: markdown
            cron: "0 13,17 * * mon-fri"
        """,
    )
    assert problems_of(path) == [
        f"{path}:3: jobs.0: a markdown job needs categories: the product categories it marks down"
    ]


@pytest.mark.parametrize(("key", "value"), [("categories", "[dairy]"), ("max_reduction_pct", "20")])
def test_markdown_settings_refused_for_other_kinds(tmp_path: Path, key: str, value: str) -> None:
    path = write(tmp_path, f"store: S001\njobs:\n  - id: r\n    kind: reprice\n    cron: '30 5 * * *'\n    {key}: {value}\n")
    assert problems_of(path) == [f"{path}:3: jobs.0: {key} is only for markdown jobs, not reprice"]


def test_unknown_time_zone(tmp_path: Path) -> None:
    path = write(tmp_path, "store: S001\ncalendar:\n  timezone: Europe/Berlln\n")
    assert problems_of(path) == [
        f"{path}:3: calendar.timezone: unknown time zone 'Europe/Berlln' (use an IANA name such as Europe/Berlin)"
    ]


def test_while_open_without_opening_hours(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        store: S001
        calendar:
          timezone: Europe/Berlin
          freeze:
            while_open: true
        """,
    )
    assert problems_of(path) == [f"{path}:4: calendar.freeze: while_open needs opening_hours"]


def test_port_out_of_range(tmp_path: Path) -> None:
    path = write(tmp_path, "store: S001\nmetrics:\n  port: 70000\n")
    assert problems_of(path) == [f"{path}:3: metrics.port: must be less than or equal to 65535, got the number 70000"]


def test_port_zero(tmp_path: Path) -> None:
    path = write(tmp_path, "store: S001\nmetrics: {port: 0}\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:2: metrics.port: must be greater than or equal to 1")


def test_cron_in_the_dst_hour(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        store: S001
        calendar: {timezone: Europe/Berlin}
        jobs:
          - {id: night, kind: reprice, cron: "30 2 * * *"}
          - {id: hourly, kind: reconcile, cron: "30 * * * *"}
        """,
    )
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:4: jobs.0.cron: cron '30 2 * * *' runs in the hour the clocks change")
    # the same job is fine where the clocks do not change
    ok = write(tmp_path, "store: S001\njobs:\n  - {id: night, kind: reprice, cron: '30 2 * * *'}\n", "utc.yaml")
    assert validate_config_file(ok) == []


def test_dst_hours() -> None:
    assert dst_hours(BERLIN) == {2}
    assert dst_hours(ZoneInfo("America/New_York")) == {1, 2}
    assert dst_hours(ZoneInfo("UTC")) == set()


def test_credentials_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        store: S001
        broker: mqtt://esl:secret@broker.local:1883
        database: postgresql+psycopg://esl:secret@db/esl
        """,
    )
    problems = problems_of(path)
    assert problems[0].startswith(f"{path}:2: broker: broker URL")
    assert "ESL_MQTT_USERNAME" in problems[0]
    assert problems[1].startswith(f"{path}:3: database: the database URL holds a password")
    assert "secret" not in problems[1]


def test_several_problems_sorted_by_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        store: S001
        calendar:
          timezone: Mars/Olympus
        jobs:
          - {id: a, kind: reprice, cron: "30 5 * *"}
          - {id: b, kind: markdown, every: 1h}
        metrics: {port: 99999}
        """,
    )
    problems = problems_of(path)
    assert [p.split(":")[1] for p in problems] == ["3", "5", "6", "7"]


# ---------------------------------------------------------------------------------------------
# Paths, database, triggers
# ---------------------------------------------------------------------------------------------


def test_resolve_paths_relative_to_the_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    path = write(folder, "store: S001\ndata_dir: ../data\nrules: rules.yaml\nplans_dir: /srv/plans\n")
    config = load_engine_config(path)
    assert config.resolve("data_dir") == tmp_path / "data"
    assert config.resolve("rules") == folder / "rules.yaml"
    assert config.resolve("plans_dir") == Path("/srv/plans")
    assert config.resolve("model_dir", tmp_path / "other") == tmp_path / "models"
    with pytest.raises(ValueError, match="not a path setting"):
        config.resolve("store")


def test_resolve_needs_a_folder_without_a_file() -> None:
    config = EngineConfig(store="S001")
    with pytest.raises(ValueError, match="not loaded from a file"):
        config.resolve("data_dir")
    assert config.resolve("rules", "/etc/esl") == Path("/etc/esl/rules.yaml")


def test_database_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATABASE_ENV, raising=False)
    path = write(tmp_path, "store: S001\ndatabase: db/engine.db\n")
    config = load_engine_config(path)
    assert database_target(config, tmp_path) == str(tmp_path / "db" / "engine.db")
    assert config.database_target() == str(tmp_path / "db" / "engine.db")
    url = EngineConfig(store="S001", database="postgresql+psycopg://esl@db:5432/esl")
    assert database_target(url, tmp_path) == "postgresql+psycopg://esl@db:5432/esl"
    monkeypatch.setenv(DATABASE_ENV, "postgresql+psycopg://esl:pw@db/esl")
    assert database_target(config, tmp_path) == "postgresql+psycopg://esl:pw@db/esl"
    monkeypatch.setenv(DATABASE_ENV, "")
    assert database_target(config, tmp_path) == str(tmp_path / "db" / "engine.db")


def test_cron_trigger_in_the_store_zone() -> None:
    job = JobConfig(id="n", kind="reprice", cron="30 5 * * *")
    trigger = job.trigger(BERLIN, datetime(2026, 6, 1, tzinfo=UTC))
    assert isinstance(trigger, CronTrigger)
    first = trigger.get_next_fire_time(None, datetime(2026, 6, 1, tzinfo=UTC))
    assert first == datetime(2026, 6, 1, 5, 30, tzinfo=BERLIN)


def test_interval_trigger_starts_at_the_given_time() -> None:
    job = JobConfig(id="r", kind="reconcile", every="15m")
    start = datetime(2030, 1, 7, 9, 0, tzinfo=UTC)  # not the wall clock
    trigger = job.trigger(BERLIN, start)
    assert isinstance(trigger, IntervalTrigger)
    assert trigger.interval == timedelta(minutes=15)
    assert trigger.start_date == start
    assert trigger.get_next_fire_time(None, start - timedelta(hours=1)) == start
    with pytest.raises(ValueError, match="aware"):
        job.trigger(BERLIN, datetime(2030, 1, 7))


def test_scheduled_jobs() -> None:
    config = load_engine_config(CONFIG_DIR / "engine.yaml")
    start = datetime(2026, 3, 23, tzinfo=BERLIN)
    specs = config.scheduled_jobs("pricing.store.daemon:run_scheduled_job", start, {"extra": 1})
    assert [s.job_id for s in specs] == [j.id for j in config.jobs]
    by_id = {s.job_id: s for s in specs}
    assert by_id["weekly-retrain"].executor == "training" and by_id["weekly-retrain"].misfire_grace_s == 3600
    assert by_id["reconcile"].kwargs == {"job_id": "reconcile", "extra": 1}
    assert by_id["nightly-reprice"].func_ref == "pricing.store.daemon:run_scheduled_job"
    assert all(s.coalesce for s in specs)
    assert by_id["reconcile"].trigger.start_date == start


def test_job_overrides() -> None:
    defaults = SchedulerConfig(misfire_grace_s=60, coalesce=True)
    job = JobConfig(id="x", kind="retrain", cron="0 3 * * sun", misfire_grace_s=3600, coalesce=False)
    assert job.misfire_grace(defaults) == 3600 and job.coalesce_runs(defaults) is False
    plain = JobConfig(id="y", kind="reprice", every="1h")
    assert plain.misfire_grace(defaults) == 60 and plain.coalesce_runs(defaults) is True


def test_parse_every() -> None:
    assert parse_every("90s") == timedelta(seconds=90)
    assert parse_every("15m") == timedelta(minutes=15)
    assert parse_every("2h") == timedelta(hours=2)
    assert parse_every("1d") == timedelta(days=1)
    with pytest.raises(ValueError):
        parse_every("1w")
