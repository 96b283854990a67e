"""Tests for label_gateway/render.py: deterministic PNGs, text inside its boxes, fit errors,
Code 128 barcodes that decode back to the SKU, and unit prices."""

from __future__ import annotations

import dataclasses
import io
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from barcode.charsets import code128 as charset
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from label_gateway.label_templates import (
    Box,
    LabelTemplates,
    TagTemplate,
    load_label_templates,
)
from label_gateway.render import (
    ELLIPSIS,
    LabelContent,
    LabelFitError,
    UnitPrice,
    check_fit,
    code128_modules,
    image_hash,
    is_reduction,
    name_lines,
    render_image,
    render_label,
    unit_price,
)
from pricing.core.data import TAG_TYPES, load_products
from simulator.store import generate_store

REPO = Path(__file__).resolve().parents[2]
WHITE, BLACK, RED = 0, 1, 2  # palette indices


@pytest.fixture(scope="module")
def templates() -> LabelTemplates:
    return load_label_templates()


@pytest.fixture(scope="module")
def sample_products(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    store = tmp_path_factory.mktemp("store")
    generate_store(store, skus=300, seed=7, days=7, gateways=2)
    return load_products(store / "products.csv").frame


def butter(**changes: object) -> LabelContent:
    fields: dict[str, object] = {"sku": "001370", "name": "Meadowfield Butter 500 g", "price_cents": 449,
                                 "currency": "EUR", "size": Decimal(500), "unit": "g"}
    fields.update(changes)
    return LabelContent.build(**fields)  # type: ignore[arg-type]


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image)


def ink_in(image: Image.Image, box: Box) -> np.ndarray:
    return pixels(image)[box.y : box.bottom, box.x : box.right] != WHITE


# ---- determinism ---------------------------------------------------------------------------------


def test_same_content_gives_the_same_bytes(templates: LabelTemplates) -> None:
    for tag in TAG_TYPES:
        template = templates.tag(tag)
        first = render_label(butter(reference_cents=499), template)
        assert first == render_label(butter(reference_cents=499), template)
        assert image_hash(first) == image_hash(render_label(butter(reference_cents=499), template))
        assert first != render_label(butter(price_cents=399), template)
        assert len(image_hash(first)) == 64


def test_same_bytes_in_another_process(templates: LabelTemplates) -> None:
    script = (
        "from decimal import Decimal\n"
        "from label_gateway.label_templates import load_label_templates\n"
        "from label_gateway.render import LabelContent, image_hash, render_label\n"
        "t = load_label_templates()\n"
        "c = LabelContent.build(sku='001370', name='Meadowfield Butter 500 g', price_cents=449, currency='EUR',"
        " size=Decimal(500), unit='g', reference_cents=499)\n"
        "print(' '.join(image_hash(render_label(c, t.tag(tag))) for tag in ('1.54', '2.9', '4.2')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    here = [image_hash(render_label(butter(reference_cents=499), templates.tag(tag))) for tag in ("1.54", "2.9", "4.2")]
    assert done.stdout.split() == here


def png_chunks(png: bytes) -> list[bytes]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    chunks, at = [], 8
    while at < len(png):
        length = int.from_bytes(png[at : at + 4], "big")
        chunks.append(png[at + 4 : at + 8])
        at += 12 + length
    return chunks


def test_palette_png_with_exactly_the_template_colours_and_no_metadata(templates: LabelTemplates) -> None:
    for tag in TAG_TYPES:
        template = templates.tag(tag)
        png = render_label(butter(price_cents=399, reference_cents=449), template)
        assert set(png_chunks(png)) == {b"IHDR", b"PLTE", b"IDAT", b"IEND"}  # no tEXt, tIME, pHYs ...
        image = Image.open(io.BytesIO(png))
        assert image.mode == "P" and image.size == (template.width, template.height)
        palette = [tuple(image.getpalette()[i : i + 3]) for i in range(0, 9, 3)]  # type: ignore[index]
        assert palette == [template.palette.rgb("white"), template.palette.rgb("black"), template.palette.rgb("red")]
        colours = {colour for _, colour in image.convert("RGB").getcolors()}  # type: ignore[union-attr]
        assert colours == set(palette)  # a reduction: white paper, black and red ink, nothing else


# ---- every SKU of a sample store, inside its boxes ------------------------------------------------


def exploded(template: TagTemplate) -> TagTemplate:
    """The template with every element's box moved far from the others (same sizes): ink outside
    the boxes then shows which element overflowed."""
    updates: dict[str, object] = {}
    y = 40
    widest = 0
    for element, box in template.boxes().items():
        updates[element] = getattr(template, element).model_copy(update={"box": Box(x=40, y=y, w=box.w, h=box.h)})
        y += box.h + 80
        widest = max(widest, box.w)
    return template.model_copy(update={"width": widest + 80, "height": y, **updates})


def sample_contents(products: pd.DataFrame) -> list[LabelContent]:
    contents = []
    for i, row in enumerate(products.itertuples()):
        price = int(row.price_cents)
        reduced = i % 3 == 0
        contents.append(LabelContent.build(
            sku=row.sku, name=row.name, currency="EUR",
            price_cents=max(1, price * 4 // 5) if reduced else price,
            reference_cents=price if reduced else None,
            size=None if pd.isna(row.size) else row.size, unit=None if pd.isna(row.unit) else row.unit,
        ))
    return contents


@pytest.mark.parametrize("tag", TAG_TYPES)
def test_every_sample_sku_renders_inside_its_boxes_with_a_real_barcode(
    templates: LabelTemplates, sample_products: pd.DataFrame, tag: str
) -> None:
    """Every SKU of a generated store (a third of them reduced, with reference and badge) on the
    exploded template: any ink outside the boxes would be an element overflowing its own box."""
    template = templates.tag(tag)
    spread = exploded(template)
    inside = np.zeros((spread.height, spread.width), dtype=bool)
    for box in spread.boxes().values():
        inside[box.y : box.bottom, box.x : box.right] = True
    contents = sample_contents(sample_products)
    assert sum(c.promo for c in contents) == 100
    for content in contents:
        assert check_fit(content, template) is None
        drawn = render_image(content, spread)
        image = pixels(drawn)
        assert not (image[~inside] != WHITE).any(), f"{content.sku} draws outside its boxes on {tag}"
        assert ink_in(drawn, spread.name.box).any() and ink_in(drawn, spread.price.box).any()
        assert read_barcode(drawn, spread) == content.sku
    # And on the real layout, for a few: nothing outside the boxes either.
    outside = np.ones((template.height, template.width), dtype=bool)
    for box in template.boxes().values():
        outside[box.y : box.bottom, box.x : box.right] = False
    for content in contents[:20]:
        assert not (pixels(render_image(content, template))[outside] != WHITE).any()


# ---- the name, the price, the lines ---------------------------------------------------------------


def test_a_short_name_is_whole_and_a_long_name_is_ellipsized(templates: LabelTemplates) -> None:
    long_name = ("EcoHome Eco Sensitive Extra Concentrated Laundry Detergent Lavender & Mountain Spring "
                 "Family Pack With A Very Long Name 3 L")
    for tag in TAG_TYPES:
        template = templates.tag(tag)
        assert " ".join(name_lines(butter(), template)) == "Meadowfield Butter 500 g"
        lines = name_lines(butter(name=long_name), template)
        assert len(lines) == template.name.max_lines
        assert lines[-1].endswith(ELLIPSIS)
        assert long_name.startswith(" ".join(lines)[:-1].rstrip())
        image = render_image(butter(name=long_name), exploded(template))
        assert image.getbbox() is not None


def test_a_quantity_stays_with_its_unit(templates: LabelTemplates) -> None:
    for tag in TAG_TYPES:
        for name in ("Frostway French Fries 2.5 kg", "Tea Garden Apple Spritzer 1 L", "Goldkorn Croissants 6 pcs"):
            lines = name_lines(butter(name=name), templates.tag(tag))
            quantity = " ".join(name.split()[-2:])
            assert " ".join(lines) == name and any(line.endswith(quantity) for line in lines), (tag, lines)


def test_a_word_longer_than_the_box_is_broken_not_overflowing(templates: LabelTemplates) -> None:
    template = templates.tag("1.54")
    content = butter(name="Supercalifragilisticexpialidocious-Extra-Long-Productname-Without-Spaces " * 3)
    spread = exploded(template)
    image = pixels(render_image(content, spread))
    box = spread.name.box
    outside = np.ones(image.shape, dtype=bool)
    outside[box.y : box.bottom, box.x : box.right] = False
    outside[spread.price.box.y :, :] = False
    assert not (image[outside] != WHITE).any()
    assert name_lines(content, template)[-1].endswith(ELLIPSIS)


def test_a_huge_price_is_a_fit_error_and_check_fit_reports_it(templates: LabelTemplates) -> None:
    huge = butter(price_cents=99_999_999_999)
    for tag in TAG_TYPES:
        template = templates.tag(tag)
        message = check_fit(huge, template)
        assert message == (f'price 999999999.99 € does not fit the price box of the {tag}" label at '
                           f"{template.price.size.min} px")
        with pytest.raises(LabelFitError) as info:
            render_label(huge, template)
        assert str(info.value) == message
        assert isinstance(info.value, ValueError)


def test_the_price_is_as_large_as_fits(templates: LabelTemplates) -> None:
    template = templates.tag("2.9")
    short = ink_in(render_image(butter(price_cents=9), template), template.price.box)
    long = ink_in(render_image(butter(price_cents=99999), template), template.price.box)
    rows_short = np.flatnonzero(short.any(axis=1))
    rows_long = np.flatnonzero(long.any(axis=1))
    assert rows_short[-1] - rows_short[0] > rows_long[-1] - rows_long[0]


def test_the_price_is_red_for_a_promotion_and_black_otherwise(templates: LabelTemplates) -> None:
    template = templates.tag("2.9")
    box = template.price.box
    plain = pixels(render_image(butter(), template))[box.y : box.bottom, box.x : box.right]
    promo = pixels(render_image(butter(price_cents=399, reference_cents=449), template))[
        box.y : box.bottom, box.x : box.right]
    assert set(np.unique(plain)) == {WHITE, BLACK}
    assert set(np.unique(promo)) == {WHITE, RED}


def test_the_reference_line_and_badge_appear_only_with_a_reduction(templates: LabelTemplates) -> None:
    for tag in TAG_TYPES:
        template = templates.tag(tag)
        assert template.reference is not None and template.promo is not None
        plain = render_image(butter(), template)
        reduced = render_image(butter(price_cents=399, reference_cents=449), template)
        assert not ink_in(plain, template.reference.box).any()
        assert ink_in(reduced, template.reference.box).any()
        assert not ink_in(plain, template.promo.box).any()
        badge = pixels(reduced)[template.promo.box.y : template.promo.box.bottom,
                                template.promo.box.x : template.promo.box.right]
        assert (badge == RED).mean() > 0.5
        # Everything else is the same picture, apart from the price and unit price.
        same = pixels(plain) == pixels(reduced)
        for element in ("reference", "promo", "price", "unit_price"):
            box = template.boxes()[element]
            same[box.y : box.bottom, box.x : box.right] = True
        assert same.all()


def test_a_reference_without_a_reference_box_cannot_be_drawn(templates: LabelTemplates) -> None:
    template = templates.tag("2.9").model_copy(update={"reference": None})
    problem = check_fit(butter(price_cents=399, reference_cents=449), template)
    assert problem is not None and "no reference box" in problem and "4.49 €" in problem
    assert check_fit(butter(), template) is None


def test_a_reference_or_unit_price_that_cannot_fit_is_reported(templates: LabelTemplates) -> None:
    template = templates.tag("1.54")
    assert template.reference is not None and template.unit_price is not None
    narrow = Box(x=4, y=101, w=40, h=12)
    tight = template.model_copy(update={"reference": template.reference.model_copy(update={"box": narrow})})
    problem = check_fit(butter(price_cents=399, reference_cents=1_234_567), tight)
    assert problem == 'reference price 12345.67 € does not fit the reference box of the 1.54" label at 8 px'
    with pytest.raises(LabelFitError, match="reference price"):
        render_label(butter(price_cents=399, reference_cents=1_234_567), tight)
    narrow = Box(x=4, y=88, w=20, h=12)
    tight = template.model_copy(update={"unit_price": template.unit_price.model_copy(update={"box": narrow})})
    assert check_fit(butter(), tight) == 'unit price 8.98 € does not fit the unit price box of the 1.54" label at 8 px'


def test_promo_without_reference_says_sale(templates: LabelTemplates) -> None:
    template = templates.tag("4.2")
    assert template.promo is not None
    sale = render_image(dataclasses.replace(butter(), promo=True), template)
    box = template.promo.box
    region = pixels(sale)[box.y : box.bottom, box.x : box.right]
    assert (region == RED).any() and (region == WHITE).any()


def test_content_is_checked() -> None:
    with pytest.raises(ValueError, match="price_cents"):
        butter(price_cents=0)
    with pytest.raises(ValueError, match="price_cents"):
        butter(price_cents=2.5)
    with pytest.raises(ValueError, match="currency"):
        butter(currency="eur")
    with pytest.raises(ValueError, match="reference_cents"):
        butter(reference_cents=0)
    assert butter(price_cents=399, reference_cents=449).promo
    assert not butter(price_cents=449, reference_cents=449).promo
    assert butter(size=1.5).size == Decimal("1.5")
    assert is_reduction(1, 2) and not is_reduction(2, 2) and not is_reduction(1, None)


# ---- barcode -------------------------------------------------------------------------------------

_VALUES = {name: {value: char for char, value in table.items()} for name, table in
           (("A", charset.A), ("B", charset.B))}


def decode_modules(modules: str) -> str:
    """A tiny Code 128 decoder over python-barcode's own code table (and checksum)."""
    stop = charset.STOP + "11"
    assert modules.endswith(stop), "no stop pattern"
    body = modules[: -len(stop)]
    assert len(body) % 11 == 0
    values = [charset.CODES.index(body[i : i + 11]) for i in range(0, len(body), 11)]
    start, *data, check = values
    assert (start + sum(i * v for i, v in enumerate(data, 1))) % 103 == check, "bad checksum"
    current = {103: "A", 104: "B", 105: "C"}[start]
    text = ""
    for value in data:
        if current == "C" and value < 100:
            text += f"{value:02d}"
        elif value == 99:
            current = "C"
        elif value == 100 and current != "B":
            current = "B"
        elif value == 101 and current != "A":
            current = "A"
        else:
            text += _VALUES[current][value]
    return text


def read_barcode(image: Image.Image, template: TagTemplate) -> str:
    """Read the bars back from one pixel row: run lengths / the narrowest run = modules."""
    element = template.barcode
    assert element is not None
    box = element.box
    row = pixels(image)[box.y + 2, box.x : box.right] != WHITE
    ink = np.flatnonzero(row)
    assert len(ink), "no bars"
    first, last = ink[0], ink[-1] + 1
    runs, colours = [], []
    at = first
    while at < last:
        end = at
        while end < last and row[end] == row[at]:
            end += 1
        runs.append(end - at)
        colours.append("1" if row[at] else "0")
        at = end
    module = min(runs)
    assert all(run % module == 0 for run in runs)
    quiet = element.quiet_zone * module
    assert first >= quiet and len(row) - last >= quiet, "quiet zones missing"
    return decode_modules("".join(colour * (run // module) for colour, run in zip(colours, runs, strict=True)))


@pytest.mark.parametrize("sku", ["001370", "12345", "A-77", "sku-0042-X", "0"])
def test_barcode_decodes_back_to_the_sku(templates: LabelTemplates, sku: str) -> None:
    modules = code128_modules(sku)
    assert modules is not None and decode_modules(modules) == sku
    drawn = 0
    for tag in TAG_TYPES:
        template = templates.tag(tag)
        assert template.barcode is not None
        image = render_image(butter(sku=sku), template)
        if len(modules) + 2 * template.barcode.quiet_zone <= template.barcode.box.w:
            assert read_barcode(image, template) == sku
            drawn += 1
        else:  # too long for this tag at 1 px per module: the SKU as text, no bars
            assert ink_in(image, template.barcode.box).any()
            with pytest.raises(AssertionError):
                read_barcode(image, template)
    assert drawn >= 1


def test_a_sku_too_long_for_bars_is_written_as_text(templates: LabelTemplates) -> None:
    template = templates.tag("1.54")
    assert template.barcode is not None
    sku = "SKU-WITH-A-VERY-LONG-IDENTIFIER-1234567890"
    image = render_image(butter(sku=sku), template)
    box = template.barcode.box
    region = ink_in(image, box)
    assert region.any()
    column_has_ink = region.any(axis=0)
    assert region.sum() < 0.5 * region.shape[0] * column_has_ink.sum()  # text, not solid bars
    assert code128_modules("naïve€") is None  # not encodable: text too
    assert ink_in(render_image(butter(sku="naïve€"), template), box).any()


# ---- unit price ----------------------------------------------------------------------------------


def test_unit_price_examples() -> None:
    assert unit_price(449, Decimal(500), "g") == UnitPrice(898, "kg")
    assert unit_price(1299, Decimal(3), "l") == UnitPrice(433, "l")
    assert unit_price(149, Decimal("0.75"), "l") == UnitPrice(199, "l")
    assert unit_price(99, Decimal(330), "ml") == UnitPrice(300, "l")
    assert unit_price(349, Decimal(4), "pcs") == UnitPrice(87, "pcs")  # 87.25
    assert unit_price(350, Decimal(4), "pcs") == UnitPrice(88, "pcs")  # 87.5: half up
    assert unit_price(100, Decimal(2), "kg") == UnitPrice(50, "kg")
    for size, unit in ((None, "g"), (Decimal(1), None), (Decimal(0), "g"), (Decimal(-1), "kg"), (Decimal(5), "oz"),
                       (Decimal("NaN"), "g")):
        assert unit_price(100, size, unit) is None


FACTOR = {"g": (1000, "kg"), "kg": (1, "kg"), "ml": (1000, "l"), "l": (1, "l"), "pcs": (1, "pcs")}


@settings(max_examples=300, deadline=None)
@given(
    price=st.integers(min_value=1, max_value=10**12),
    size=st.decimals(min_value=Decimal("0.001"), max_value=Decimal(100_000), places=3),
    unit=st.sampled_from(sorted(FACTOR)),
)
def test_unit_price_is_exact_and_rounds_half_up(price: int, size: Decimal, unit: str) -> None:
    factor, per = FACTOR[unit]
    exact = Fraction(price * factor) / Fraction(size)
    expected = int(exact + Fraction(1, 2)) if exact >= 0 else None  # half up: floor(x + 1/2)
    assert unit_price(price, size, unit) == UnitPrice(expected, per)  # type: ignore[arg-type]


def test_rendering_is_fast(templates: LabelTemplates) -> None:
    import time

    template = templates.tag("2.9")
    started = time.perf_counter()
    for cents in range(100, 300):
        render_label(butter(price_cents=cents), template)
    assert time.perf_counter() - started < 5  # ~1-3 ms each: 2,000 labels take seconds
