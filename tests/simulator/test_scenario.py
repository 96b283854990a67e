"""Scenario files: validation errors with FILE:LINE, label rows, and the emulator options they give."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pricing.cli.config import CONFIG_KINDS, validate_config_file, write_schemas
from pricing.core.yaml_config import ConfigError
from simulator.gateways import GatewayOptions, SimulatorError
from simulator.scenario import (
    Scenario,
    generated_labels,
    labels_from_csv,
    load_scenario,
)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def _write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    return [problem.replace(str(path), "S") for problem in info.value.problems]


def test_example_scenario_validates_and_schema_is_current() -> None:
    path = CONFIG_DIR / "scenario.yaml"
    assert path.read_text(encoding="utf-8").splitlines()[0] == "# yaml-language-server: $schema=./scenario.schema.json"
    scenario = load_scenario(path)
    assert scenario.labels.gateways == 20 and scenario.outages[0].gateway == "gw-02"
    assert validate_config_file(path) == []
    assert CONFIG_KINDS["scenario"].model is Scenario


def test_committed_schema_is_current(tmp_path: Path) -> None:
    written = {path.name: path for path in write_schemas(tmp_path)}
    fresh = written["scenario.schema.json"].read_text(encoding="utf-8")
    assert (CONFIG_DIR / "scenario.schema.json").read_text(encoding="utf-8") == fresh, (
        "config/scenario.schema.json is out of date with simulator/scenario.py; "
        "run `python -m pricing.cli.config --write-schema config/`"
    )
    schema = json.loads(fresh)
    assert schema["additionalProperties"] is False and schema["title"].startswith("ESL store simulator scenario")


def test_problems_are_file_line_key_message(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        "labels:\n"
        "  gateways: 2\n"
        "  per_gateway: 10\n"
        "radio:\n"
        "  loss_rate: 1.5\n"
        "  atempts: 3\n"
        "battery:\n"
        "  low_mv: 2100\n",
    )
    assert problems == [
        "S:5: radio.loss_rate: must be less than or equal to 1, got the number 1.5",
        "S:6: radio.atempts: unknown key; did you mean 'attempts'? (allowed: loss_rate, ack_loss_rate, attempts)",
        "S:7: battery: low_mv 2100 must be above empty_mv 2200",
    ]


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("{from_csv: labels.csv, gateways: 2}", "give either from_csv or gateways/per_gateway, not both"),
        ("{}", "give from_csv (a labels.csv) or gateways and per_gateway"),
        ("{gateways: 2}", "generated labels need both gateways and per_gateway"),
        ("{gateways: 999, per_gateway: 100000}", "more than 1,000,000 labels"),
    ],
)
def test_exactly_one_label_source(tmp_path: Path, labels: str, message: str) -> None:
    [problem] = _problems(tmp_path, f"seed: 1\nlabels: {labels}\n")
    assert problem.startswith("S:2: labels: ") and message in problem


def test_outage_of_a_generated_gateway_that_does_not_exist(tmp_path: Path) -> None:
    problems = _problems(
        tmp_path,
        "labels: {gateways: 3, per_gateway: 5}\noutages:\n  - {gateway: gw-01, at_s: 1, for_s: 2}\n"
        "  - {gateway: gw-04, at_s: 1, for_s: 2}\n",
    )
    assert problems == ["S:2: outages: outage 2: no gateway gw-04; the generated gateways are gw-01..gw-03"]


def test_missing_labels_and_bad_outage_fields(tmp_path: Path) -> None:
    problems = _problems(tmp_path, "store: a/b\noutages:\n  - {gateway: gw-01, at_s: -1, for_s: 0}\n")
    assert problems[0].startswith("S:1: store: must match pattern")
    assert "S:1: labels: required key is missing" in problems
    assert any(p.startswith("S:3: outages.0.at_s: must be greater than or equal to 0") for p in problems)
    assert any(p.startswith("S:3: outages.0.for_s: must be greater than 0") for p in problems)


def test_generated_label_rows() -> None:
    scenario = Scenario.model_validate({"labels": {"gateways": 3, "per_gateway": 2}})
    assert scenario.label_rows() == [
        ("L000000", "gw-01", "000000"),
        ("L000001", "gw-01", "000001"),
        ("L000002", "gw-02", "000002"),
        ("L000003", "gw-02", "000003"),
        ("L000004", "gw-03", "000004"),
        ("L000005", "gw-03", "000005"),
    ]
    assert len(generated_labels(20, 1000)) == 20_000
    assert scenario.load_labels().store == "store-001"


LABELS_CSV = (
    "label_id,store,gateway,sku,tag_type\n"
    "E1,store-007,gw-a,0001,2.9\n"
    "E2,store-007,gw-b,0002,4.2\n"
    "E3,store-007,gw-b,0003,9.9\n"
)


def test_labels_from_csv_relative_to_the_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "labels.csv").write_text(LABELS_CSV)
    path = _write(tmp_path, "labels:\n  from_csv: data/labels.csv\noutages: [{gateway: gw-b, at_s: 1, for_s: 1}]\n")
    scenario = load_scenario(path)
    loaded = scenario.load_labels()
    assert loaded.rows == [("E1", "gw-a", "0001"), ("E2", "gw-b", "0002")]
    assert loaded.store == "store-007" and len(loaded.rejects) == 1  # the 9.9" tag type
    assert scenario.label_rows() == loaded.rows


def test_labels_of_another_store_are_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "labels.csv").write_text(LABELS_CSV)
    with pytest.raises(SimulatorError, match="no labels for store store-001"):
        labels_from_csv(tmp_path / "labels.csv", "store-001")


def test_gateway_options_follow_the_scenario() -> None:
    scenario = Scenario.model_validate(
        {
            "labels": {"gateways": 1, "per_gateway": 1},
            "seed": 9,
            "radio": {"loss_rate": 0.25, "attempts": 12},
            "timing": {"ack_flush_ms": 50},
            "dead_labels": {"rate": 0.1, "ids": ["L000000"]},
        }
    )
    options = scenario.gateway_options()
    assert options.checkin_interval_s == 40 and options.radio_seconds_per_update == 2 and not options.fast
    assert (options.loss_rate, options.attempts, options.ack_flush_s, options.seed) == (0.25, 12, 0.05, 9)
    assert options.dead_labels == frozenset({"L000000"}) and options.dead_rate == 0.1
    fast = scenario.model_copy(update={"fast": True}).gateway_options()
    assert fast.fast and fast.checkin_interval_s == 0 and fast.radio_seconds_per_update == 0
    assert GatewayOptions().fast  # the emulator's defaults are fast mode


def test_yaml_floats_become_floats(tmp_path: Path) -> None:
    path = _write(tmp_path, "labels: {gateways: 1, per_gateway: 1}\ntiming: {radio_seconds_per_update: 0.5}\n")
    options = load_scenario(path).gateway_options()
    assert options.radio_seconds_per_update == 0.5 and isinstance(options.radio_seconds_per_update, float)
