"""Shelf labels drawn to PNG from a template (label_gateway/label_templates.yaml), byte for byte
the same for the same content.

What a label shows (``LabelContent``) is drawn into the boxes of its tag type's ``TagTemplate``:
the name word-wrapped and shortened with "…" to fit, the price at the largest size that fits,
the unit price, the EU Omnibus reference price of an announced reduction, a promo badge and the
SKU's Code 128 barcode. Nothing is drawn outside its box. A price (or unit or reference price)
that does not fit even at the smallest size raises ``LabelFitError``; ``check_fit`` finds the
same problem cheaply, without drawing, so a plan can reject the price before any label gets it.

Determinism (same content -> same bytes -> same hash, used for dedup): the image is a palette
PNG with exactly the template's three colours (e-paper has no greys, so text is drawn without
anti-aliasing), the fonts are bundled (label_gateway/fonts), text is laid out by FreeType's basic
layout (Raqm, when installed, would make bytes depend on the machine's HarfBuzz), and the PNG
carries no metadata or timestamps. The bytes depend only on the content, the template and the
Pillow version.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import Literal

import barcode
from barcode.errors import BarcodeError
from PIL import Image, ImageDraw, ImageFont

from label_gateway.label_templates import (
    Box,
    ColorName,
    LineElement,
    NameElement,
    PriceElement,
    PromoElement,
    TagTemplate,
)

__all__ = [
    "ELLIPSIS",
    "FONTS_DIR",
    "LabelContent",
    "LabelFitError",
    "UnitPrice",
    "check_fit",
    "code128_modules",
    "image_hash",
    "is_reduction",
    "name_lines",
    "png_bytes",
    "render_image",
    "render_label",
    "unit_price",
]

FONTS_DIR = Path(__file__).with_name("fonts")
ELLIPSIS = "…"
_COLORS: tuple[ColorName, ...] = ("white", "black", "red")  # palette index order in every PNG

Per = Literal["kg", "l", "pcs"]
#: products.csv unit -> (the unit of the unit price, how many of the product's unit make one).
_UNITS: dict[str, tuple[Per, int]] = {"g": ("kg", 1000), "kg": ("kg", 1), "ml": ("l", 1000), "l": ("l", 1),
                                      "pcs": ("pcs", 1)}


class LabelFitError(ValueError):
    """Something a label must show in full does not fit its box even at the smallest size."""


# ---- what a label shows ----------------------------------------------------------------------


def is_reduction(price_cents: int, reference_cents: int | None) -> bool:
    """An announced reduction: there is a reference price and the price is below it."""
    return reference_cents is not None and price_cents < reference_cents


@dataclass(frozen=True)
class LabelContent:
    """What one shelf label shows. Money in integer cents; ``size``/``unit`` as in products.csv
    (unit "g", "kg", "ml", "l" or "pcs") for the unit price. The reference line is drawn when
    ``reference_cents`` is set; the promo marker when ``promo`` is True. Callers set promo for an
    announced reduction (``is_reduction``; ``LabelContent.build`` does it)."""

    sku: str
    name: str
    price_cents: int
    currency: str
    size: Decimal | None = None
    unit: str | None = None
    reference_cents: int | None = None
    promo: bool = False

    def __post_init__(self) -> None:
        if not self.sku:
            raise ValueError("a label needs a sku")
        for what, cents in (("price_cents", self.price_cents), ("reference_cents", self.reference_cents)):
            if cents is None and what == "reference_cents":
                continue
            if isinstance(cents, bool) or not isinstance(cents, int) or cents < 1:
                raise ValueError(f"sku {self.sku}: {what} must be a whole number of cents >= 1, got {cents!r}")
        if len(self.currency) != 3 or not self.currency.isalpha() or not self.currency.isupper():
            raise ValueError(f"sku {self.sku}: currency must be a 3-letter code like EUR, got {self.currency!r}")

    @classmethod
    def build(
        cls,
        *,
        sku: str,
        name: str,
        price_cents: int,
        currency: str,
        size: Decimal | float | str | None = None,
        unit: str | None = None,
        reference_cents: int | None = None,
    ) -> LabelContent:
        """The content of a shelf label; an announced reduction (price below the reference) gets
        the promo marker. ``size`` may be a float from products.csv: it is taken as decimal text."""
        return cls(
            sku=sku,
            name=name,
            price_cents=price_cents,
            currency=currency,
            size=_decimal_size(size),
            unit=unit,
            reference_cents=reference_cents,
            promo=is_reduction(price_cents, reference_cents),
        )


def _decimal_size(size: Decimal | float | str | None) -> Decimal | None:
    if size is None or isinstance(size, Decimal):
        return size
    try:
        value = Decimal(str(size).strip())
    except ArithmeticError:
        return None
    return value if value.is_finite() else None


@dataclass(frozen=True)
class UnitPrice:
    """A price per kg, per litre or per piece, in whole cents."""

    cents: int
    per: Per


def unit_price(price_cents: int, size: Decimal | None, unit: str | None) -> UnitPrice | None:
    """The price per kg (unit g, kg), per litre (ml, l) or per piece (pcs), rounded half up to a
    whole cent with Decimal arithmetic. None when size or unit is missing, the unit is not one of
    those, or size is not > 0."""
    if size is None or unit is None or unit not in _UNITS:
        return None
    if not size.is_finite() or size <= 0:
        return None
    per, factor = _UNITS[unit]
    with localcontext() as ctx:
        ctx.prec = 60  # exact for any cents and size a products.csv holds
        cents = (Decimal(int(price_cents)) * factor / size).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return UnitPrice(int(cents), per)


# ---- fonts and measuring ---------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def _font(name: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(FONTS_DIR / f"{name}.ttf"), size, layout_engine=ImageFont.Layout.BASIC)


@functools.lru_cache(maxsize=512)
def _metrics(name: str, size: int) -> tuple[int, int]:
    """(ascent, descent) in pixels."""
    return _font(name, size).getmetrics()


Ink = tuple[int, int, int, int]  # left, top, right, bottom (exclusive) of the ink, from the baseline origin


@functools.lru_cache(maxsize=65536)
def _ink(name: str, size: int, text: str) -> Ink:
    """The bounding box of ``text``'s ink relative to its left end on the baseline."""
    if not text:
        return (0, 0, 0, 0)
    left, top, right, bottom = _font(name, size).getbbox(text, mode="1", anchor="ls")
    return int(left), int(top), int(right), int(bottom)


@functools.lru_cache(maxsize=65536)
def _advance(name: str, size: int, text: str) -> int:
    """How far the pen moves for ``text`` (whole pixels, rounded up)."""
    return -int(-_font(name, size).getlength(text, mode="1") // 1)


def _width(name: str, size: int, text: str) -> int:
    left, _, right, _ = _ink(name, size, text)
    return right - left


@dataclass(frozen=True)
class _Run:
    """One piece of text to draw: font, size, position of its baseline origin, colour."""

    font: str
    size: int
    text: str
    x: int
    y: int
    color: ColorName


def _place_line(font: str, size: int, text: str, box: Box, align: str) -> tuple[int, int] | None:
    """Where to put ``text`` (baseline origin) so its ink sits inside ``box``: aligned horizontally,
    centred vertically on the font's line; None when its ink is larger than the box."""
    left, top, right, bottom = _ink(font, size, text)
    if right - left > box.w or bottom - top > box.h:
        return None
    if align == "left":
        x = box.x - left
    elif align == "right":
        x = box.right - right
    else:
        x = box.x + (box.w - (right - left)) // 2 - left
    ascent, descent = _metrics(font, size)
    baseline = box.y + (box.h - (ascent + descent)) // 2 + ascent
    baseline = min(max(baseline, box.y - top), box.bottom - bottom)
    return x, baseline


# ---- the name --------------------------------------------------------------------------------


def _break_word(font: str, size: int, word: str, width: int) -> list[str]:
    """A word wider than the box, in pieces that fit (at least one character each)."""
    pieces: list[str] = []
    rest = word
    while rest:
        n = max(1, _longest_prefix(functools.partial(_prefix_fits, font, size, rest, width), len(rest)))
        pieces.append(rest[:n])
        rest = rest[n:]
    return pieces


def _prefix_fits(font: str, size: int, text: str, width: int, k: int) -> bool:
    return _width(font, size, text[:k]) <= width


def _longest_prefix(fits: Callable[[int], bool], n: int) -> int:
    """The largest k in 0..n with fits(k), assuming fits is monotone (true, then false)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


_QUANTITY = re.compile(r"[0-9]$")
_UNIT_WORD = re.compile(r"^[A-Za-zµ%]{1,4}\.?$")


def _words(text: str) -> list[str]:
    """The words of a name, a quantity kept with its unit ("2.5 kg", "6 pcs" never split)."""
    words: list[str] = []
    for word in text.split():
        if words and _QUANTITY.search(words[-1]) and _UNIT_WORD.match(word):
            words[-1] = f"{words[-1]} {word}"
        else:
            words.append(word)
    return words


def _wrap(font: str, size: int, text: str, width: int, limit: int) -> list[str]:
    """Greedy word wrap; stops after ``limit`` + 1 lines (enough to know it needs more)."""
    lines: list[str] = []
    line = ""
    for word in _words(text):
        candidate = f"{line} {word}" if line else word
        if _width(font, size, candidate) <= width:
            line = candidate
            continue
        if line:
            lines.append(line)
        if _width(font, size, word) <= width:
            line = word
        else:
            *whole, line = _break_word(font, size, word, width)
            lines.extend(whole)
        if len(lines) > limit:
            return lines
    if line:
        lines.append(line)
    return lines


def _block(font: str, size: int, lines: list[str], gap: int) -> tuple[int, int, int] | None:
    """(pitch, top, height) of lines stacked at ``pitch``: top is the first line's ink top
    relative to its baseline."""
    ascent, descent = _metrics(font, size)
    pitch = ascent + descent + gap
    tops = [i * pitch + _ink(font, size, line)[1] for i, line in enumerate(lines)]
    bottoms = [i * pitch + _ink(font, size, line)[3] for i, line in enumerate(lines)]
    top, bottom = min(tops), max(bottoms)
    return pitch, top, bottom - top


def _ellipsize(font: str, size: int, text: str, width: int) -> str:
    """The longest start of ``text`` that fits ``width`` with "…" after it."""
    if _width(font, size, text) <= width:
        return text
    n = _longest_prefix(lambda k: _width(font, size, text[:k].rstrip(" ,.;:-/") + ELLIPSIS) <= width, len(text))
    shortened = text[:n].rstrip(" ,.;:-/") + ELLIPSIS
    return shortened if _width(font, size, shortened) <= width else ""


def _name_runs(element: NameElement, text: str) -> list[_Run]:
    """The name at the largest size where it wraps into max_lines lines inside the box; else at the
    smallest size, cut after the last line that fits with an ellipsis."""
    box, font = element.box, element.font
    text = " ".join(text.split())
    chosen: tuple[int, list[str]] | None = None
    for size in element.size.descending():
        lines = _wrap(font, size, text, box.w, element.max_lines)
        if len(lines) <= element.max_lines:
            layout = _block(font, size, lines, element.line_gap)
            if layout is not None and layout[2] <= box.h:
                chosen = (size, lines)
                break
    if chosen is None:
        size = element.size.min
        lines = _wrap(font, size, text, box.w, len(text) + 1)
        keep = element.max_lines
        while keep > 1 and _block(font, size, lines[:keep], element.line_gap)[2] > box.h:  # type: ignore[index]
            keep -= 1
        start = 0  # where line keep-1 starts in the text (every line is a piece of it, in order)
        for line in lines[: keep - 1]:
            start = text.index(line, start) + len(line)
        rest = text[start:].lstrip()
        last = _ellipsize(font, size, rest, box.w)
        lines = [*lines[: keep - 1], last] if last else lines[: keep - 1]
        layout = _block(font, size, lines, element.line_gap) if lines else None
        if layout is None or layout[2] > box.h:
            return []
        chosen = (size, lines)
    size, lines = chosen
    pitch, top, _ = _block(font, size, lines, element.line_gap)  # type: ignore[misc]
    baseline = box.y - top
    runs = []
    for i, line in enumerate(lines):
        left, _, right, _ = _ink(font, size, line)
        if element.align == "left":
            x = box.x - left
        elif element.align == "right":
            x = box.right - right
        else:
            x = box.x + (box.w - (right - left)) // 2 - left
        runs.append(_Run(font, size, line, x, baseline + i * pitch, element.color))
    return runs


# ---- the price -------------------------------------------------------------------------------


def _price_pieces(element: PriceElement, template: TagTemplate, cents: int, currency: str, size: int
                  ) -> list[tuple[str, int, str, int, int]]:
    """(font, size, text, x, baseline) of each piece of the price at ``size``, relative to the
    units' baseline origin."""
    money = template.money
    font = element.font
    if element.cents == "inline":
        text = money.format(cents, currency) if element.show_symbol else money.amount(cents)
        return [(font, size, text, 0, 0)]
    units, fraction = money.amount_parts(cents)
    style = money.currency(currency)
    small = max(6, int(Decimal(size) * element.cents_scale))
    symbol_size = max(6, int(Decimal(size) * element.symbol_scale))
    gap = max(1, size // 20)
    pieces: list[tuple[str, int, str, int, int]] = []
    x = 0
    units_top = _ink(font, size, units)[1]
    if element.show_symbol and style.position == "before":
        symbol_top = _ink(font, symbol_size, style.symbol)[1]
        pieces.append((font, symbol_size, style.symbol, 0, units_top - symbol_top))
        x = _advance(font, symbol_size, style.symbol) + gap
    pieces.append((font, size, units, x, 0))
    x += _advance(font, size, units) + gap
    cents_top = _ink(font, small, fraction)[1]
    pieces.append((font, small, fraction, x, units_top - cents_top))
    if element.show_symbol and style.position == "after":
        pieces.append((font, symbol_size, style.symbol, x, 0))
    return pieces


def _union(pieces: list[tuple[str, int, str, int, int]]) -> Ink:
    boxes = []
    for font, size, text, x, y in pieces:
        left, top, right, bottom = _ink(font, size, text)
        if right > left:
            boxes.append((x + left, y + top, x + right, y + bottom))
    return min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)


def _price_fits(element: PriceElement, template: TagTemplate, cents: int, currency: str, size: int) -> bool:
    left, top, right, bottom = _union(_price_pieces(element, template, cents, currency, size))
    return right - left <= element.box.w and bottom - top <= element.box.h


def _price_runs(element: PriceElement, template: TagTemplate, content: LabelContent) -> list[_Run]:
    sizes = element.size
    fits = functools.partial(_price_fits, element, template, content.price_cents, content.currency)
    if not fits(sizes.min):
        raise LabelFitError(_price_problem(template, content))
    # Largest fitting size by bisection (width grows with the size).
    size = sizes.min + _longest_prefix(lambda k: fits(sizes.min + k), sizes.max - sizes.min)
    pieces = _price_pieces(element, template, content.price_cents, content.currency, size)
    left, top, right, bottom = _union(pieces)
    box = element.box
    if element.align == "left":
        dx = box.x - left
    elif element.align == "right":
        dx = box.right - right
    else:
        dx = box.x + (box.w - (right - left)) // 2 - left
    dy = box.y + (box.h - (bottom - top)) // 2 - top
    color = element.promo_color if content.promo else element.color
    return [_Run(font, s, text, x + dx, y + dy, color) for font, s, text, x, y in pieces]


def _price_problem(template: TagTemplate, content: LabelContent) -> str:
    price = template.money.format(content.price_cents, content.currency)
    return (f"price {price} does not fit the price box of the {template.display_name} label "
            f"at {template.price.size.min} px")


# ---- one-line texts: unit price, reference, promo -------------------------------------------


def _line_texts(element: LineElement, values: dict[str, str]) -> list[str]:
    return [fmt.format(**values) for fmt in element.formats]


def _line_run(element: LineElement | PromoElement, texts: list[str]) -> _Run | None:
    """The first text (in order) at the largest size where it fits, else None."""
    for text in texts:
        for size in element.size.descending():
            where = _place_line(element.font, size, text, element.box, element.align)
            if where is not None:
                return _Run(element.font, size, text, where[0], where[1], element.color)
    return None


def _fits_somehow(element: LineElement, texts: list[str]) -> bool:
    """Whether some text fits at the smallest size (then _line_run finds one)."""
    return any(_place_line(element.font, element.size.min, text, element.box, element.align) for text in texts)


def _unit_texts(template: TagTemplate, content: LabelContent) -> list[str] | None:
    per_unit = unit_price(content.price_cents, content.size, content.unit)
    if per_unit is None or template.unit_price is None:
        return None
    price = template.money.format(per_unit.cents, content.currency)
    return _line_texts(template.unit_price, {"price": price, "per": getattr(template.units, per_unit.per)})


def _reference_texts(template: TagTemplate, content: LabelContent) -> list[str] | None:
    if content.reference_cents is None or template.reference is None:
        return None
    price = template.money.format(content.reference_cents, content.currency)
    return _line_texts(template.reference, {"price": price})


def _promo_texts(element: PromoElement, content: LabelContent) -> list[str]:
    reference = content.reference_cents
    if reference is not None and reference > content.price_cents:
        pct = (reference - content.price_cents) * 100 // reference  # rounded down: never overstated
        if pct >= 1:
            return [fmt.format(pct=pct) for fmt in element.with_reference]
    return list(element.without_reference)


def _line_problem(what: str, box_name: str, amount: int, template: TagTemplate, content: LabelContent,
                  element: LineElement) -> str:
    price = template.money.format(amount, content.currency)
    return (f"{what} {price} does not fit the {box_name} box of the {template.display_name} label "
            f"at {element.size.min} px")


# ---- the barcode -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=8192)
def code128_modules(sku: str) -> str | None:
    """The Code 128 module pattern of ``sku`` ('1' bar, '0' space; start to stop, checksum
    included, no quiet zones) as python-barcode builds it; None if it cannot be encoded."""
    try:
        return barcode.get_barcode_class("code128")(sku).build()[0]
    except (BarcodeError, KeyError, ValueError, RuntimeError):
        return None


def _barcode_draw(draw: ImageDraw.ImageDraw, template: TagTemplate, sku: str, index: dict[ColorName, int]) -> None:
    element = template.barcode
    assert element is not None
    box = element.box
    ink = index[element.color]
    modules = code128_modules(sku)
    text_height = 0 if element.text is None else element.text.size + element.text.gap
    module = 0
    if modules is not None:
        total = len(modules) + 2 * element.quiet_zone
        module = next((m for m in range(element.module_width, 0, -1) if total * m <= box.w), 0)
    if module == 0:  # cannot be a barcode here: write the SKU instead (never a broken barcode)
        font = element.text.font if element.text is not None else "DejaVuSans"
        largest = max(6, min(box.h, element.text.size * 2 if element.text is not None else box.h))
        for size in range(largest, 5, -1):
            text = _ellipsize(font, size, sku, box.w)
            where = _place_line(font, size, text, box, "center") if text else None
            if where is not None:
                _draw_run(draw, _Run(font, size, text, where[0], where[1], element.color), index)
                return
        return
    bars = element.bar_height if element.bar_height is not None else box.h - text_height
    total_px = (len(modules) + 2 * element.quiet_zone) * module
    x0 = box.x + (box.w - total_px) // 2 + element.quiet_zone * module
    top = box.y
    i = 0
    while i < len(modules):
        if modules[i] == "1":
            j = i
            while j < len(modules) and modules[j] == "1":
                j += 1
            draw.rectangle((x0 + i * module, top, x0 + j * module - 1, top + bars - 1), fill=ink)
            i = j
        else:
            i += 1
    if element.text is not None:
        text_box = Box(x=box.x, y=top + bars + element.text.gap, w=box.w, h=box.bottom - (top + bars + element.text.gap))
        text = _ellipsize(element.text.font, element.text.size, sku, box.w)
        where = _place_line(element.text.font, element.text.size, text, text_box, "center") if text else None
        if where is not None:
            _draw_run(draw, _Run(element.text.font, element.text.size, text, where[0], where[1], element.color), index)


# ---- drawing ---------------------------------------------------------------------------------


def _draw_run(draw: ImageDraw.ImageDraw, run: _Run, index: dict[ColorName, int]) -> None:
    draw.text((run.x, run.y), run.text, font=_font(run.font, run.size), fill=index[run.color], anchor="ls")


def _problems(content: LabelContent, template: TagTemplate) -> str | None:
    """The first thing of ``content`` that cannot be shown in full on ``template``, else None."""
    if not _price_fits(template.price, template, content.price_cents, content.currency, template.price.size.min):
        return _price_problem(template, content)
    if content.reference_cents is not None:
        if template.reference is None:
            return (f"the {template.display_name} template has no reference box, but the label must show its "
                    f"reference price {template.money.format(content.reference_cents, content.currency)}")
        texts = _reference_texts(template, content)
        if texts is not None and not _fits_somehow(template.reference, texts):
            return _line_problem("reference price", "reference", content.reference_cents, template, content,
                                 template.reference)
    texts = _unit_texts(template, content)
    if texts is not None and template.unit_price is not None and not _fits_somehow(template.unit_price, texts):
        per_unit = unit_price(content.price_cents, content.size, content.unit)
        assert per_unit is not None
        return _line_problem("unit price", "unit price", per_unit.cents, template, content, template.unit_price)
    return None


def name_lines(content: LabelContent, template: TagTemplate) -> list[str]:
    """The product name as the label draws it: wrapped, and shortened with "…" when too long."""
    return [run.text for run in _name_runs(template.name, content.name)]


def check_fit(content: LabelContent, template: TagTemplate) -> str | None:
    """Why ``content`` cannot be drawn on ``template`` (one line), or None when it fits. Measures
    text without drawing: cheap enough to call for every changed price at plan time."""
    return _problems(content, template)


def render_image(content: LabelContent, template: TagTemplate) -> Image.Image:
    """The label as a palette image (mode "P", the template's three colours). Raises
    LabelFitError when a price, unit price or reference price does not fit its box."""
    problem = _problems(content, template)
    if problem is not None:
        raise LabelFitError(problem)
    palette = template.palette
    index: dict[ColorName, int] = {name: i for i, name in enumerate(_COLORS)}
    image = Image.new("P", (template.width, template.height), index[template.background])
    image.putpalette(b"".join(bytes(palette.rgb(name)) for name in _COLORS), "RGB")
    draw = ImageDraw.Draw(image)
    draw.fontmode = "1"  # no anti-aliasing: e-paper has no greys
    runs = _name_runs(template.name, content.name)
    runs += _price_runs(template.price, template, content)
    unit_texts = _unit_texts(template, content)
    if unit_texts is not None and template.unit_price is not None:
        runs.append(_required(_line_run(template.unit_price, unit_texts)))
    reference_texts = _reference_texts(template, content)
    if reference_texts is not None and template.reference is not None:
        runs.append(_required(_line_run(template.reference, reference_texts)))
    if content.promo and template.promo is not None:
        promo = template.promo
        box = promo.box
        draw.rounded_rectangle((box.x, box.y, box.right - 1, box.bottom - 1), radius=promo.radius,
                               fill=index[promo.fill])
        badge = _line_run(promo, _promo_texts(promo, content))
        if badge is not None:
            runs.append(badge)
    for run in runs:
        _draw_run(draw, run, index)
    if template.barcode is not None:
        _barcode_draw(draw, template, content.sku, index)
    return image


def _required(run: _Run | None) -> _Run:
    assert run is not None, "checked by _problems"
    return run


def png_bytes(image: Image.Image) -> bytes:
    """A PNG of ``image`` without metadata, compressed the same way every time. zlib level 6:
    level 9 makes files ~5% smaller and takes 7x as long (8 ms for a 4.2" label)."""
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()


def render_label(content: LabelContent, template: TagTemplate) -> bytes:
    """The label as PNG bytes: the same content and template give the same bytes. Raises
    LabelFitError when a price does not fit."""
    return png_bytes(render_image(content, template))


def image_hash(png: bytes) -> str:
    """The sha256 (hex) of a rendered label's bytes: equal hashes, equal images."""
    return hashlib.sha256(png).hexdigest()
