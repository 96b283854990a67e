"""Tests for label_gateway/label_templates.py: the packaged templates, their schema, and config
errors as FILE:LINE: key.path: message."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

from label_gateway import label_templates as module
from label_gateway.label_templates import (
    DEFAULT_TEMPLATES_FILE,
    FONT_NAMES,
    LabelTemplates,
    MoneyFormat,
    UnknownTagTypeError,
    load_label_templates,
)
from pricing.cli.config import CONFIG_KINDS, validate_config_file, write_schemas
from pricing.core.data import TAG_TYPES
from pricing.core.yaml_config import ConfigError, schema_text

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "config"


def test_packaged_templates_cover_every_tag_type_at_its_real_size() -> None:
    templates = load_label_templates()
    assert load_label_templates(None) is templates  # read once per process
    assert set(TAG_TYPES) <= set(templates.tag_types)
    sizes = {tag: (templates.tag(tag).width, templates.tag(tag).height) for tag in TAG_TYPES}
    assert sizes == {"1.54": (152, 152), "2.9": (296, 128), "4.2": (400, 300)}
    for tag in TAG_TYPES:
        template = templates.tag(tag)
        assert template.tag_type == tag and template.display_name == f'{tag}"'
        assert template.money is templates.money and template.units is templates.units
        assert {"name", "price", "unit_price", "reference", "promo", "barcode"} == set(template.boxes())
        assert template.palette.rgb("red") == (255, 0, 0)


def test_packaged_file_points_at_its_schema_and_validates() -> None:
    first = DEFAULT_TEMPLATES_FILE.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../config/label_templates.schema.json"
    assert validate_config_file(DEFAULT_TEMPLATES_FILE) == []  # recognised as label templates by its keys
    assert validate_config_file(DEFAULT_TEMPLATES_FILE, "label_templates") == []
    assert CONFIG_KINDS["label_templates"].model is LabelTemplates


def test_committed_schema_is_current(tmp_path: Path) -> None:
    written = {path.name: path for path in write_schemas(tmp_path)}
    fresh = written["label_templates.schema.json"].read_text(encoding="utf-8")
    assert (CONFIG_DIR / "label_templates.schema.json").read_text(encoding="utf-8") == fresh, (
        "config/label_templates.schema.json is out of date with label_gateway/label_templates.py; "
        "run `python -m pricing.cli.config --write-schema config/`"
    )
    schema = json.loads(fresh)
    assert schema["additionalProperties"] is False and schema["title"].startswith("ESL shelf-label templates")
    assert fresh == schema_text(schema)


def _models() -> list[type[BaseModel]]:
    return [value for value in vars(module).values()
            if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__
            and not value.__name__.startswith("_")]


def test_every_field_has_a_title_and_description() -> None:
    models = _models()
    assert len(models) >= 12
    for model in models:
        for name, field in model.model_fields.items():
            assert field.title and field.description, f"{model.__name__}.{name}"


def test_unknown_tag_type_is_one_clear_line() -> None:
    with pytest.raises(UnknownTagTypeError) as info:
        load_label_templates().tag("7.5")
    assert str(info.value) == "no label template for tag type '7.5' (templates: 1.54, 2.9, 4.2)"


def test_money_format() -> None:
    money = load_label_templates().money
    assert money.format(249, "EUR") == "2.49 €"
    assert money.format(249, "USD") == "$2.49"
    assert money.format(123456, "GBP") == "£1234.56"
    assert money.format(5, "CHF") == "0.05 CHF"  # not listed: the code after the amount
    german = MoneyFormat(decimal_separator=",", thousands_separator=".")
    assert german.format(123456789, "EUR") == "1.234.567,89 EUR"
    assert german.amount_parts(100) == ("1", "00")
    with pytest.raises(ValueError):
        MoneyFormat(decimal_separator=",", thousands_separator=",")


# ---- config errors --------------------------------------------------------------------------------

GOOD_TAG = """\
    width: 296
    height: 128
    name:
      box: {x: 4, y: 2, w: 288, h: 32}
      font: DejaVuSansCondensed-Bold
      size: {min: 11, max: 14}
    price:
      box: {x: 128, y: 36, w: 164, h: 64}
      font: DejaVuSans-Bold
      size: {min: 28, max: 72}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "label_templates.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(tmp_path: Path, text: str) -> list[str]:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_label_templates(path)
    assert validate_config_file(path) == info.value.problems
    return [line.replace(str(path), "T") for line in info.value.problems]


def test_a_minimal_file_with_unquoted_tag_keys_loads(tmp_path: Path) -> None:
    templates = load_label_templates(write(tmp_path, "tags:\n  2.9:\n" + GOOD_TAG))
    template = templates.tag("2.9")
    assert template.unit_price is None and template.barcode is None
    assert template.money.format(100, "EUR") == "1.00 EUR"  # the defaults know no symbols


def test_errors_name_file_line_and_key(tmp_path: Path) -> None:
    text = """\
    tags:
      "2.9":
        width: 296
        height: 128
        name:
          box: {x: 4, y: 2, w: 288, h: 32}
          font: Comic Sans
          size: {min: 16, max: 14}
          max_line: 2
        price:
          box: {x: 128, y: 36, w: 164, h: 64}
          font: DejaVuSans-Bold
          size: {min: 28, max: 72}
    """
    assert problems(tmp_path, text) == [
        ("T:7: tags.2.9.name.font: must be 'DejaVuSans', 'DejaVuSans-Bold', 'DejaVuSansCondensed' or "
         "'DejaVuSansCondensed-Bold', got 'Comic Sans'"),
        "T:8: tags.2.9.name.size: min 16 is larger than max 14",
        ("T:9: tags.2.9.name.max_line: unknown key; did you mean 'max_lines'? "
         "(allowed: box, font, size, color, align, max_lines, line_gap)"),
    ]


LINE = "      size: {min: 8, max: 12}\n      font: DejaVuSans\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("    barcode:\n      box: {x: 200, y: 100, w: 120, h: 28}\n",
         "T:2: tags.2.9: barcode: box (200, 100, 120x28) reaches outside the 296x128 tag"),
        ("    unit_price:\n      box: {x: 100, y: 40, w: 60, h: 13}\n" + LINE + "      formats: ['{price}/{per}']\n",
         "T:2: tags.2.9: unit_price: box (100, 40, 60x13) overlaps the price box (128, 36, 164x64)"),
        ("    reference:\n      box: {x: 4, y: 104, w: 100, h: 20}\n" + LINE + "      formats: ['Was {amount}']\n",
         "T:2: tags.2.9: reference: 'Was {amount}' uses {amount} (allowed: {price})"),
        ("    reference:\n      box: {x: 4, y: 104, w: 100, h: 20}\n" + LINE + "      formats: ['Lowest price']\n",
         "T:2: tags.2.9: reference: 'Lowest price' must contain {price}"),
        ("    promo:\n      box: {x: 4, y: 40, w: 60, h: 20}\n" + LINE + "      fill: white\n",
         "T:2: tags.2.9: promo: colour white is the background colour: it would be invisible"),
        ("    barcode:\n      box: {x: 4, y: 80, w: 120, h: 10}\n",
         "T:13: tags.2.9.barcode: the box is 10 px high: no room for bars of at least 4 px above the text"),
    ],
)
def test_layout_errors(tmp_path: Path, extra: str, message: str) -> None:
    text = 'tags:\n  "2.9":\n' + GOOD_TAG + extra
    found = problems(tmp_path, text)
    assert found == [message]


def test_duplicate_keys_and_bad_yaml_are_file_line_errors(tmp_path: Path) -> None:
    text = 'tags:\n  "2.9":\n' + GOOD_TAG + "    width: 300\n"
    assert problems(tmp_path, text) == ["T:13: tags.2.9.width: duplicate key (first on line 3)"]
    assert problems(tmp_path, "tags: [\n") [0].startswith("T:2: ")


def test_fonts_are_bundled_with_their_licence() -> None:
    fonts = DEFAULT_TEMPLATES_FILE.parent / "fonts"
    for name in FONT_NAMES:
        assert (fonts / f"{name}.ttf").stat().st_size > 100_000
    assert "Bitstream" in (fonts / "LICENSE").read_text(encoding="utf-8")
