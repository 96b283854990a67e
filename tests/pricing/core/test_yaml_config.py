"""Tests for pricing/core/yaml_config.py: YAML configs with FILE:LINE: key.path: message errors."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing.cli.config import validate_config_file
from pricing.core.yaml_config import ConfigError, load_yaml_model
from pricing.rules.config import RulesConfig, load_rules

REPO = Path(__file__).resolve().parents[3]
CONFIG_DIR = REPO / "config"
CATEGORIES = ["dairy", "bakery", "produce", "beverages", "snacks", "frozen", "household", "personal_care"]
TOP_LEVEL = (
    "currency, default, zones, categories, brands, skus, on_conflict, endings_force_change, change_budget, approval, max_candidates, solver"
)


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


def test_example_rules_yaml_validates() -> None:
    path = CONFIG_DIR / "rules.yaml"
    assert path.read_text(encoding="utf-8").splitlines()[0] == "# yaml-language-server: $schema=./rules.schema.json"
    config = load_rules(path)
    assert validate_config_file(path) == []
    assert config.default.margin_floor_pct is not None and config.default.margin_floor_pct.value == Decimal(10)
    assert config.default.min_price is not None and config.default.min_price.value == Decimal("0.19")
    assert config.default.max_price is not None and config.default.max_price.value == Decimal("999.99")
    assert config.default.max_change_pct is not None and config.default.max_change_pct.value == Decimal(10)
    assert config.default.endings is not None and config.default.endings.value == [".99", ".49"]
    assert set(config.categories) <= set(CATEGORIES)
    assert config.resolve("produce").endings == (".x9",)
    assert config.resolve("beverages").margin_floor_pct > config.default.margin_floor_pct.value
    for category in CATEGORIES:
        assert config.resolve(category).min_price_cents <= config.resolve(category).max_price_cents
    for table in (config.brands, config.skus):  # whatever scopes the example has, they resolve
        for key in table:
            config.resolve(None, key, key)


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
    d = config.default
    assert d.margin_floor_pct is not None and d.min_price is not None and d.max_change_pct is not None
    assert d.margin_floor_pct.value == Decimal("0.1")
    assert str(d.margin_floor_pct.value) == "0.1"
    assert d.min_price.value == Decimal("0.10")
    assert str(d.max_change_pct.value) == "12.35"
    assert config.solver.relative_gap == 0.01
    assert config.resolve("x").min_price_cents == 10


def test_yaml_floats_in_the_mapping_form_become_exact_decimals(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default:
          max_change_pct: {value: 12.35, hard: false, penalty: 0.10, priority: 7}
        """,
    )
    setting = load_rules(path).default.max_change_pct
    assert setting is not None
    assert str(setting.value) == "12.35" and setting.penalty == Decimal("0.10")
    assert setting.hard is False and setting.priority == 7


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
    assert (
        "allowed: margin_floor_pct, min_price, max_price, max_change_pct, max_change_abs, uncertain_max_change_pct, "
        "endings, price_points, family, ladder, tier, competitor_index, objective)" in problems[0]
    )


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
    assert problems_of(path) == [f"{path}:2: broker_password: unknown key (allowed: {TOP_LEVEL})"]


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


# ---------------------------------------------------------------------------------------------
# Scopes (brands, SKUs), rules written as mappings, budget, band: broken files
# ---------------------------------------------------------------------------------------------


def test_typo_key_in_brand_scope(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        brands:
          Acme:
            min_price: "1.49"
            margn_floor_pct: 10
        """,
    )
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:4: brands.Acme.margn_floor_pct: unknown key; did you mean 'margin_floor_pct'?")


def test_typo_key_in_sku_scope(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        skus:
          "000123":
            margin_floor_pct: 2
            max_chnge_pct: 5
        """,
    )
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:4: skus.000123.max_chnge_pct: unknown key; did you mean 'max_change_pct'?")


def test_typo_in_a_rule_mapping_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default:
          endings:
            value: [".99"]
            hardd: false
        """,
    )
    assert problems_of(path) == [
        f"{path}:4: default.endings.hardd: unknown key; did you mean 'hard'? (allowed: value, hard, priority, penalty)"
    ]


def test_unknown_scope_table_is_a_typo(tmp_path: Path) -> None:
    path = write(tmp_path, "brand:\n  Acme:\n    min_price: '1.00'\n")
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:1: brand: unknown key; did you mean 'brands'?")


def test_unquoted_numeric_sku_key(tmp_path: Path) -> None:
    path = write(tmp_path, "skus:\n  000123:\n    margin_floor_pct: 2\n")
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:2: skus.123: invalid key: must be a valid string")


def test_wrong_type_inside_the_mapping_form(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default:
          margin_floor_pct: 10
          max_change_pct: {value: lots}
        """,
    )
    assert problems_of(path) == [f"{path}:3: default.max_change_pct.value: must be a valid decimal, got 'lots'"]


def test_wrong_type_inside_a_block_mapping_points_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        categories:
          dairy:
            max_change_pct:
              value: 5
              priority: high
        """,
    )
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:5: categories.dairy.max_change_pct.priority: must be a valid integer")
    assert problems[0].endswith("got 'high'")


def test_hard_maybe(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default:
          margin_floor_pct:
            value: 10
            hard: maybe
        """,
    )
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:4: default.margin_floor_pct.hard: must be a valid boolean")
    assert problems[0].endswith("got 'maybe'")


def test_penalty_is_money(tmp_path: Path) -> None:
    path = write(tmp_path, "default:\n  endings: {value: ['.99'], hard: false, penalty: 0.001}\n")
    assert problems_of(path) == [
        f"{path}:2: default.endings.penalty: must have no more than 2 decimal places, got the number 0.001"
    ]


@pytest.mark.parametrize(("table", "scope", "key"), [("brands", "brand", "Acme"), ("skus", "SKU", "0123")])
def test_min_price_above_max_price_in_a_narrow_scope_once_merged(tmp_path: Path, table: str, scope: str, key: str) -> None:
    path = write(
        tmp_path,
        f"""
        default:
          max_price: "10.00"
        {table}:
          "{key}":
            min_price: {{value: "20.00", priority: 5}}
        """,
    )
    problems = problems_of(path)
    assert len(problems) == 1
    assert problems[0] == (
        f"{path}:3: {table}: {scope} '{key}': min_price 20.00 is greater than max_price 10.00 once merged with the defaults"
    )


def test_min_price_above_max_price_within_a_sku_scope(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        skus:
          "0123":
            min_price: "5.00"
            max_price: {value: "1.00", hard: false}
        """,
    )
    assert problems_of(path) == [f"{path}:2: skus.0123: min_price 5.00 is greater than max_price 1.00"]


@pytest.mark.parametrize(
    "budget",
    ["  max_changes: 10\n  max_share_pct: 5\n", "  hard: false\n"],
    ids=["both", "neither"],
)
def test_change_budget_needs_exactly_one_limit(tmp_path: Path, budget: str) -> None:
    path = write(tmp_path, "currency: EUR\nchange_budget:\n" + budget)
    assert problems_of(path) == [f"{path}:2: change_budget: set exactly one of max_changes and max_share_pct"]


def test_change_budget_share_out_of_range(tmp_path: Path) -> None:
    path = write(tmp_path, "change_budget:\n  max_share_pct: 120\n")
    assert problems_of(path) == [
        f"{path}:2: change_budget.max_share_pct: must be less than or equal to 100, got the number 120"
    ]


def test_competitor_band_min_above_max(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        categories:
          dairy:
            competitor_index: {min_pct: 110, max_pct: 95}
        brands:
          Acme:
            competitor_index:
              value: {min_pct: 120, max_pct: 100}
              hard: false
        """,
    )
    assert problems_of(path) == [
        f"{path}:3: categories.dairy.competitor_index: min_pct 110 is greater than max_pct 95",
        f"{path}:7: brands.Acme.competitor_index.value: min_pct 120 is greater than max_pct 100",
    ]


def test_competitor_band_wrong_key_points_into_the_band(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        default:
          competitor_index:
            min_pct: 95
            max_pc: 110
        """,
    )
    assert problems_of(path) == [
        f"{path}:2: default.competitor_index.max_pct: required key is missing",
        f"{path}:4: default.competitor_index.max_pc: unknown key; did you mean 'max_pct'? (allowed: min_pct, max_pct)",
    ]


def test_unquoted_ending_in_the_mapping_form(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        categories:
          produce:
            endings:
              value: [".x9", .99]
              hard: false
        """,
    )
    assert problems_of(path) == [
        f'{path}:4: categories.produce.endings.value.1: must be text, got the number .99; put it in quotes: ".99"'
    ]


def test_bad_on_conflict_and_objective(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        on_conflict: ignore
        default:
          objective: {maximize: margin}
        """,
    )
    assert problems_of(path) == [
        f"{path}:1: on_conflict: must be 'relax' or 'hold', got 'ignore'",
        f"{path}:3: default.objective.maximize: must be 'profit', 'revenue' or 'mix', got 'margin'",
    ]


def test_valid_file_with_every_kind_of_rule(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        # yaml-language-server: $schema=./rules.schema.json
        currency: EUR
        default:
          margin_floor_pct: {value: 8, priority: 120}
          max_change_abs: "1.50"
          endings: [".99", ".x9"]
          family: true
          ladder: {value: true, hard: false, penalty: "0.30"}
          tier: 12.5
          competitor_index: {value: {min_pct: 95, max_pct: 110}, hard: false, penalty: "0.20"}
          objective: {maximize: mix, revenue_weight: 0.25, drift_penalty_pct: 0.5}
        categories:
          snacks:
            price_points: ["0.99", "1.49", "1.99"]
        brands:
          Own:
            tier: {value: 15, priority: 35}
        skus:
          "000123":
            margin_floor_pct: {hard: false}
        on_conflict: hold
        change_budget: {max_share_pct: 20, hard: false, penalty: "0.50"}
        approval: {max_change_pct: 8, max_change_abs: "1.50"}
        """,
    )
    config = load_rules(path)
    assert validate_config_file(path) == []
    assert config.on_conflict == "hold"
    assert config.change_budget is not None and config.change_budget.limit(50) == 10
    r = config.resolve("snacks", "Own", "000123")
    assert r.price_points_cents == (99, 149, 199)
    assert r.tier_gap_pct == Decimal(15) and r.enforcement["tier"].priority == 35
    assert r.margin_floor_pct == Decimal(8) and not r.hard("margin_floor_pct")
    assert r.enforcement["margin_floor_pct"].priority == 120
    assert r.competitor_band is not None and r.competitor_band.max_pct == Decimal(110)
    assert not r.hard("competitor_index") and r.enforcement["competitor_index"].penalty_cents == 20
    assert (r.maximize, r.revenue_weight, r.drift_penalty_pct) == ("mix", Decimal("0.25"), Decimal("0.5"))
    assert r.max_change_abs_cents == 150


# ---------------------------------------------------------------------------------------------
# Property: any valid rules, written as YAML (bare values or mappings), load back to the same values
# ---------------------------------------------------------------------------------------------

_percent = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100), places=2)
_money = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100000), places=2)
_ending = st.builds(lambda a, b: f".{a}{b}", st.sampled_from("0123456789x"), st.sampled_from("0123456789x"))
FIELDS = ["margin_floor_pct", "min_price", "max_price", "max_change_pct", "uncertain_max_change_pct", "endings"]


@st.composite
def rule_values(draw: st.DrawFn, *, full: bool) -> dict[str, object]:
    values: dict[str, object] = {}
    chosen = FIELDS if full else draw(st.lists(st.sampled_from(FIELDS), unique=True))
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


@st.composite
def enforcement(draw: st.DrawFn) -> dict[str, object]:
    """How a rule is enforced, when it is written as a mapping ({} for the bare value)."""
    if draw(st.booleans()):
        return {}
    out: dict[str, object] = {}
    if draw(st.booleans()):
        out["hard"] = draw(st.booleans())
    if draw(st.booleans()):
        out["priority"] = draw(st.integers(min_value=0, max_value=1000))
    if draw(st.booleans()):
        out["penalty"] = draw(_money)
    return out or {"hard": True}


def _yaml_scalar(value: object, quote: bool) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(f'"{item}"' for item in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if quote else str(value)


def _yaml_rule(value: object, how: dict[str, object], quote: bool) -> str:
    if not how:
        return _yaml_scalar(value, quote)
    items = {"value": value, **how}
    return "{" + ", ".join(f"{key}: {_yaml_scalar(item, quote)}" for key, item in items.items()) + "}"


def _to_yaml(config: dict[str, dict], how: dict[tuple[str, ...], dict[str, object]], quote: bool) -> str:
    lines = ["# generated", "default:"]
    lines += [
        f"  {key}: {_yaml_rule(value, how.get(('default', key), {}), quote)}" for key, value in config["default"].items()
    ]
    for table in ("categories", "brands", "skus"):
        lines.append(f"{table}: {{}}" if not config[table] else f"{table}:")
        for name, values in config[table].items():
            lines.append(f'  "{name}":' + (" {}" if not values else ""))
            lines += [
                f"    {key}: {_yaml_rule(value, how.get((table, name, key), {}), quote)}" for key, value in values.items()
            ]
    return "\n".join(lines) + "\n"


def _values(scope: object) -> dict[str, object]:
    """The rule values a scope sets (None: left to the wider scope)."""
    return {key: setting.value for key in FIELDS if (setting := getattr(scope, key)) is not None}


def _how(scope: object) -> dict[str, dict[str, object]]:
    out = {}
    for key in FIELDS:
        setting = getattr(scope, key)
        if setting is not None:
            out[key] = {k: v for k, v in (("hard", setting.hard), ("priority", setting.priority),
                                          ("penalty", setting.penalty)) if v is not None}
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    default=rule_values(full=True),
    categories=st.dictionaries(st.sampled_from(CATEGORIES), rule_values(full=False), max_size=4),
    brands=st.dictionaries(st.sampled_from(["Acme", "Own brand", "Zeta"]), rule_values(full=False), max_size=2),
    skus=st.dictionaries(st.sampled_from(["0001", "0123", "x9"]), rule_values(full=False), max_size=2),
    data=st.data(),
    quote=st.booleans(),
)
def test_valid_rules_round_trip_through_yaml(
    tmp_path: Path,
    default: dict[str, object],
    categories: dict[str, dict[str, object]],
    brands: dict[str, dict[str, object]],
    skus: dict[str, dict[str, object]],
    data: st.DataObject,
    quote: bool,
) -> None:
    tables = {"categories": categories, "brands": brands, "skus": skus}
    # Keep every scope's merged range valid: its own min/max within the defaults' min/max.
    for table in tables.values():
        for values in table.values():
            for key in ("min_price", "max_price"):
                if key in values:
                    values[key] = min(max(values[key], default["min_price"]), default["max_price"])  # type: ignore[type-var]
    how: dict[tuple[str, ...], dict[str, object]] = {("default", key): data.draw(enforcement()) for key in default}
    for table, scopes in tables.items():
        for name, values in scopes.items():
            for key in values:
                how[(table, name, key)] = data.draw(enforcement())
    path = tmp_path / "rules.yaml"
    path.write_text(_to_yaml({"default": default, **tables}, how, quote), encoding="utf-8")

    config = load_rules(path)

    assert _values(config.default) == default
    assert _how(config.default) == {key: how[("default", key)] for key in default}
    for table, scopes in tables.items():
        loaded = getattr(config, table)
        assert {name: _values(rules) for name, rules in loaded.items()} == scopes
        for name, rules in loaded.items():
            assert _how(rules) == {key: how[(table, name, key)] for key in scopes[name]}
    assert validate_config_file(path) == []
