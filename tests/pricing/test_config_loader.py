"""Tests for pricing/config_loader.py: YAML configs with FILE:LINE: key.path: message errors."""

from __future__ import annotations

import json
import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing.config_loader import (
    ConfigError,
    load_rules,
    load_yaml_model,
    rules_json_schema,
    schema_text,
    validate_config_file,
    write_schemas,
)
from pricing.rules import RulesConfig

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "config"
CATEGORIES = ["dairy", "bakery", "produce", "beverages", "snacks", "frozen", "household", "personal_care"]


def write(tmp_path: Path, text: str, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    assert validate_config_file(path) == info.value.problems
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


# ---------------------------------------------------------------------------------------------
# The committed files
# ---------------------------------------------------------------------------------------------


def test_committed_schema_is_current() -> None:
    committed = (CONFIG_DIR / "rules.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(rules_json_schema()), (
        "config/rules.schema.json is out of date with pricing/rules.py; "
        "run `python -m pricing.config_loader --write-schema config/` and commit the result"
    )


def test_schema_has_dialect_and_title() -> None:
    schema = rules_json_schema()
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert schema["title"]
    assert schema["additionalProperties"] is False


def test_write_schemas(tmp_path: Path) -> None:
    written = write_schemas(tmp_path)
    assert written == [tmp_path / "rules.schema.json"]
    text = written[0].read_text(encoding="utf-8")
    assert text.endswith("}\n")
    assert json.loads(text) == rules_json_schema()
    assert text == json.dumps(rules_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_example_rules_yaml_validates() -> None:
    path = CONFIG_DIR / "rules.yaml"
    assert path.read_text(encoding="utf-8").splitlines()[0] == "# yaml-language-server: $schema=./rules.schema.json"
    config = load_rules(path)
    assert validate_config_file(path) == []
    assert config.default.margin_floor_pct == Decimal(10)
    assert config.default.min_price == Decimal("0.19")
    assert config.default.max_price == Decimal("999.99")
    assert config.default.max_change_pct == Decimal(10)
    assert config.default.endings == [".99", ".49"]
    assert set(config.categories) <= set(CATEGORIES)
    assert config.resolve("produce").endings == (".x9",)
    assert config.resolve("beverages").margin_floor_pct > config.default.margin_floor_pct
    for category in CATEGORIES:
        config.resolve(category)


def test_generic_loader_returns_the_model(tmp_path: Path) -> None:
    path = write(tmp_path, "currency: USD\n")
    config = load_yaml_model(path, RulesConfig)
    assert isinstance(config, RulesConfig)
    assert config.currency == "USD"


def test_yaml_floats_become_exact_decimals(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default:
          margin_floor_pct: 0.1
          min_price: 0.10
          max_change_pct: 12.35
        solver:
          relative_gap: 0.01
        """,
    )
    config = load_rules(path)
    assert config.default.margin_floor_pct == Decimal("0.1")
    assert str(config.default.margin_floor_pct) == "0.1"
    assert config.default.min_price == Decimal("0.10")
    assert str(config.default.max_change_pct) == "12.35"
    assert config.solver.relative_gap == 0.01


# ---------------------------------------------------------------------------------------------
# Broken files
# ---------------------------------------------------------------------------------------------


def test_typo_key_gives_one_problem_with_line_and_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        # rules
        currency: EUR
        default:
          margn_floor_pct: 10
          min_price: "0.19"
        """,
    )
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:4: default.margn_floor_pct: unknown key")
    assert "did you mean 'margin_floor_pct'?" in problems[0]
    assert "allowed: margin_floor_pct, min_price, max_price, max_change_pct, uncertain_max_change_pct, endings" in problems[0]


def test_typo_key_in_category(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        categories:
          dairy:
            max_change_pct: 5
            endngs: [".99"]
        """,
    )
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:4: categories.dairy.endngs: unknown key; did you mean 'endings'?")


def test_unknown_top_level_key_lists_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "currency: EUR\nbroker_password: hunter2\n")
    assert problems_of(path) == [
        f"{path}:2: broker_password: unknown key (allowed: currency, default, categories, max_candidates, solver)"
    ]


def test_wrong_type_gives_line_and_value(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default:
          margin_floor_pct: 10
          max_change_pct: "lots"
        """,
    )
    assert problems_of(path) == [f"{path}:3: default.max_change_pct: must be a valid decimal, got 'lots'"]


def test_wrong_type_in_nested_model(tmp_path: Path) -> None:
    path = write(tmp_path, "solver:\n  time_limit_s: 5\n  workers: 2.5\n")
    assert problems_of(path) == [f"{path}:3: solver.workers: must be a whole number, got the number 2.5"]


def test_min_price_above_max_price(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        currency: EUR
        categories:
          frozen:
            min_price: "5.00"
            max_price: "1.00"
        """,
    )
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:3: categories.frozen: min_price 5.00 is greater than max_price 1.00")


def test_min_price_above_max_price_in_default(tmp_path: Path) -> None:
    path = write(tmp_path, 'currency: EUR\ndefault:\n  min_price: "5.00"\n  max_price: "1.00"\n')
    assert problems_of(path) == [f"{path}:2: default: min_price 5.00 is greater than max_price 1.00"]


def test_merged_min_max_error_points_at_categories(tmp_path: Path) -> None:
    # The category alone is fine; only merged with the defaults is min > max.
    path = write(
        tmp_path,
        """
        # top comment

        default:
          max_price: "10.00"
        categories:
          dairy:
            min_price: "20.00"
        """,
    )
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:5: categories: category 'dairy': min_price 20.00 is greater")


def test_duplicate_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default:
          min_price: "0.19"
          max_price: "99.99"
          min_price: "0.29"
        """,
    )
    assert problems_of(path) == [f"{path}:4: default.min_price: duplicate key (first on line 2)"]


def test_all_duplicate_keys_are_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        categories:
          dairy: {max_change_pct: 5}
          dairy: {max_change_pct: 6}
        currency: EUR
        currency: USD
        """,
    )
    assert problems_of(path) == [
        f"{path}:3: categories.dairy: duplicate key (first on line 2)",
        f"{path}:5: currency: duplicate key (first on line 4)",
    ]


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = write(tmp_path, 'default:\n  min_price: "0.19"\n   max_price: "9.99"\n')
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:3: ")
    assert "indentation" in problems[0]


def test_unclosed_flow_sequence(tmp_path: Path) -> None:
    path = write(tmp_path, 'default:\n  endings: [".99", ".49"\ncurrency: EUR\n')
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:3: ")


@pytest.mark.parametrize("text", ["", "\n\n", "# only comments\n# here\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:1: the file is empty")


def test_top_level_list(tmp_path: Path) -> None:
    path = write(tmp_path, "# rules\n- default\n- categories\n")
    assert problems_of(path) == [
        f"{path}:2: the top level must be a mapping of keys (like 'default: ...'), found a list"
    ]


def test_top_level_scalar(tmp_path: Path) -> None:
    path = write(tmp_path, "just some text\n")
    problems = problems_of(path)
    assert problems == [f"{path}:1: the top level must be a mapping of keys (like 'default: ...'), found 'just some text'"]


def test_bad_ending(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default:
          endings:
            - ".99"
            - ".9"
        """,
    )
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:4: default.endings.1: ending '.9' is not of the form '.DD'")


def test_unquoted_ending_is_a_number(tmp_path: Path) -> None:
    # YAML reads .99 as the number 0.99: say so, and show how to write it.
    path = write(
        tmp_path,
        """
        categories:
          produce:
            endings: [".x9", .99]
        """,
    )
    assert problems_of(path) == [
        f'{path}:3: categories.produce.endings.1: must be text, got the number .99; put it in quotes: ".99"'
    ]


def test_list_items_get_their_own_line(tmp_path: Path) -> None:
    path = write(tmp_path, "categories:\n  dairy:\n    endings:\n      - '.99'\n      - 49\n")
    assert problems_of(path) == [
        f'{path}:5: categories.dairy.endings.1: must be text, got the number 49; put it in quotes: "49"'
    ]


def test_money_with_too_many_decimals(tmp_path: Path) -> None:
    path = write(tmp_path, "default:\n  min_price: 0.001\n")
    assert problems_of(path) == [
        f"{path}:2: default.min_price: must have no more than 2 decimal places, got the number 0.001"
    ]


def test_empty_mapping_value(tmp_path: Path) -> None:
    path = write(tmp_path, "currency: EUR\ncategories:\n  dairy:\n")
    assert problems_of(path) == [
        f"{path}:3: categories.dairy: must be a mapping of keys (key: value lines), got nothing (null)"
    ]


def test_several_problems_sorted_by_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        currency: eur
        default:
          max_change_pct: 0
        solver:
          log: maybe
        """,
    )
    problems = problems_of(path)
    assert [p.split(": ", 2)[:2] for p in problems] == [
        [f"{path}:1", "currency"],
        [f"{path}:3", "default.max_change_pct"],
        [f"{path}:5", "solver.log"],
    ]


def test_merge_keys_are_followed(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default: &base
          min_price: "1.00"
        categories:
          dairy:
            <<: *base
            max_price: "0.50"
        """,
    )
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:4: categories.dairy: min_price 1.00 is greater than max_price 0.50")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    problems = problems_of(path)
    assert problems == [f"{path}: cannot read: No such file or directory"]


def test_directory_is_not_a_file(tmp_path: Path) -> None:
    problems = problems_of(tmp_path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path}: cannot read: ")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_bytes(b"currency: \xff\xfe\n")
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}: cannot read: not UTF-8")


def test_file_name_is_reported_as_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("r.yaml").write_text("currency: 12\n", encoding="utf-8")
    assert validate_config_file("r.yaml") == ["r.yaml:1: currency: must be text, got the number 12; put it in quotes: \"12\""]


def test_validate_config_file_unrecognised_content_defaults_to_rules(tmp_path: Path) -> None:
    path = write(tmp_path, "foo: 1\n")
    problems = validate_config_file(path)
    assert problems == [f"{path}:1: foo: unknown key (allowed: currency, default, categories, max_candidates, solver)"]


# ---------------------------------------------------------------------------------------------
# Property: any valid rules, written as YAML, load back to the same values
# ---------------------------------------------------------------------------------------------

_percent = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100), places=2)
_money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100000), places=2)
_ending = st.builds(lambda a, b: f".{a}{b}", st.sampled_from("0123456789x"), st.sampled_from("0123456789x"))


@st.composite
def rule_values(draw: st.DrawFn, *, full: bool) -> dict[str, object]:
    values: dict[str, object] = {}
    fields = ["margin_floor_pct", "min_price", "max_price", "max_change_pct", "uncertain_max_change_pct", "endings"]
    chosen = fields if full else draw(st.lists(st.sampled_from(fields), unique=True))
    if "margin_floor_pct" in chosen:
        values["margin_floor_pct"] = draw(st.decimals(min_value=0, max_value=1000, places=2))
    low, high = sorted([draw(_money), draw(_money)])
    if "min_price" in chosen:
        values["min_price"] = low
    if "max_price" in chosen:
        values["max_price"] = high
    for key in ("max_change_pct", "uncertain_max_change_pct"):
        if key in chosen:
            values[key] = draw(_percent)
    if "endings" in chosen:
        values["endings"] = draw(st.lists(_ending, min_size=1, max_size=4, unique=True))
    return values


def _yaml_scalar(value: object, quote: bool) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(f'"{item}"' for item in value) + "]"
    return f'"{value}"' if quote else str(value)


def _to_yaml(config: dict[str, dict[str, object]], quote: bool) -> str:
    lines = ["# generated", "default:"]
    lines += [f"  {key}: {_yaml_scalar(value, quote)}" for key, value in config["default"].items()]
    lines.append("categories: {}" if not config["categories"] else "categories:")
    for name, values in config["categories"].items():
        lines.append(f"  {name}:" + (" {}" if not values else ""))
        lines += [f"    {key}: {_yaml_scalar(value, quote)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    default=rule_values(full=True),
    categories=st.dictionaries(st.sampled_from(CATEGORIES), rule_values(full=False), max_size=4),
    quote=st.booleans(),
)
def test_valid_rules_round_trip_through_yaml(
    tmp_path: Path, default: dict[str, object], categories: dict[str, dict[str, object]], quote: bool
) -> None:
    # Keep every category's merged range valid: its own min/max within the defaults' min/max.
    for values in categories.values():
        for key in ("min_price", "max_price"):
            if key in values:
                values[key] = min(max(values[key], default["min_price"]), default["max_price"])  # type: ignore[type-var]
    path = tmp_path / "rules.yaml"
    path.write_text(_to_yaml({"default": default, "categories": categories}, quote), encoding="utf-8")

    config = load_rules(path)

    assert config.default.model_dump() == default
    assert {name: rules.model_dump(exclude_none=True) for name, rules in config.categories.items()} == categories
    assert validate_config_file(path) == []
