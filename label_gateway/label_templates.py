"""Label templates per tag type, as data (label_gateway/label_templates.yaml).

A template says where each element of a shelf label goes on one tag type (1.54" 152x152,
2.9" 296x128, 4.2" 400x300; black/white/red e-paper): the product name, the price in large
digits, the unit price, the EU Omnibus reference price of an announced reduction, the promo
marker and the SKU's barcode, each in its own box, with its font, size range and colour. The
money format (currency symbols, decimal separator) and the wording of every line are data too,
so a store changes a label's look by editing YAML, not code. ``label_gateway.render`` draws them.

Read with ``load_label_templates(path)`` (None: the packaged default); problems are
``FILE:LINE: key.path: message`` lines (a ConfigError, as for the rules). This module does not
import Pillow: validating a templates file stays cheap.
"""

from __future__ import annotations

import functools
import string
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from pricing.core.yaml_config import load_yaml_model

__all__ = [
    "DEFAULT_TEMPLATES_FILE",
    "FONT_NAMES",
    "BarcodeElement",
    "BarcodeText",
    "Box",
    "CurrencyFormat",
    "LabelTemplates",
    "LineElement",
    "MoneyFormat",
    "NameElement",
    "Palette",
    "PriceElement",
    "PromoElement",
    "SizeRange",
    "TagTemplate",
    "UnitNames",
    "UnknownTagTypeError",
    "default_label_templates",
    "load_label_templates",
]

DEFAULT_TEMPLATES_FILE = Path(__file__).with_name("label_templates.yaml")

#: The bundled fonts (label_gateway/fonts/<name>.ttf): the same glyphs on every machine.
FONT_NAMES = ("DejaVuSans", "DejaVuSans-Bold", "DejaVuSansCondensed", "DejaVuSansCondensed-Bold")
FontName = Literal["DejaVuSans", "DejaVuSans-Bold", "DejaVuSansCondensed", "DejaVuSansCondensed-Bold"]
ColorName = Literal["white", "black", "red"]
Align = Literal["left", "center", "right"]
HexColor = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")]
CurrencyCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]

#: Placeholders each kind of line may use (``{price}`` is required in the money lines).
UNIT_PRICE_FIELDS = frozenset({"price", "per"})
REFERENCE_FIELDS = frozenset({"price"})
PROMO_FIELDS = frozenset({"pct"})


class UnknownTagTypeError(ValueError):
    """A label's tag type has no template. The message names it and the known tag types."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# ---- geometry --------------------------------------------------------------------------------


class Box(_Model):
    """A rectangle on the tag in pixels: (x, y) is its top-left corner; nothing of its element is
    drawn outside it."""

    x: int = Field(ge=0, le=4000, title="Left (px)", description="Distance from the tag's left edge in pixels.")
    y: int = Field(ge=0, le=4000, title="Top (px)", description="Distance from the tag's top edge in pixels.")
    w: int = Field(ge=1, le=4000, title="Width (px)", description="Width of the box in pixels.")
    h: int = Field(ge=1, le=4000, title="Height (px)", description="Height of the box in pixels.")

    @property
    def right(self) -> int:
        """The first column right of the box."""
        return self.x + self.w

    @property
    def bottom(self) -> int:
        """The first row below the box."""
        return self.y + self.h

    def overlaps(self, other: Box) -> bool:
        return self.x < other.right and other.x < self.right and self.y < other.bottom and other.y < self.bottom

    def __str__(self) -> str:
        return f"({self.x}, {self.y}, {self.w}x{self.h})"


class SizeRange(_Model):
    """Font sizes in pixels (the em size); text is drawn at the largest size that fits its box."""

    min: int = Field(ge=6, le=400, title="Smallest size (px)", description="Never drawn smaller than this.")
    max: int = Field(ge=6, le=400, title="Largest size (px)", description="Tried first.")

    @model_validator(mode="after")
    def _ordered(self) -> SizeRange:
        if self.min > self.max:
            raise ValueError(f"min {self.min} is larger than max {self.max}")
        return self

    def descending(self) -> range:
        """The sizes from largest to smallest."""
        return range(self.max, self.min - 1, -1)


class Palette(_Model):
    """The e-paper's colours: the PNG has exactly these three, and no greys."""

    white: HexColor = Field(default="#FFFFFF", title="White", description="The paper colour, as #RRGGBB.")
    black: HexColor = Field(default="#000000", title="Black", description="The ink colour, as #RRGGBB.")
    red: HexColor = Field(default="#FF0000", title="Red", description="The accent ink colour, as #RRGGBB.")

    @model_validator(mode="after")
    def _distinct(self) -> Palette:
        values = [self.white.upper(), self.black.upper(), self.red.upper()]
        if len(set(values)) != 3:
            raise ValueError("white, black and red must be three different colours")
        return self

    def rgb(self, name: ColorName) -> tuple[int, int, int]:
        value: str = getattr(self, name)
        return int(value[1:3], 16), int(value[3:5], 16), int(value[5:7], 16)


# ---- elements --------------------------------------------------------------------------------


def _field_names(fmt: str) -> set[str]:
    """The placeholders of a format string; ValueError for bad braces or positional fields."""
    names: set[str] = set()
    for _, name, spec, conversion in string.Formatter().parse(fmt):
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise ValueError(f"'{fmt}': use named placeholders like {{price}}, not {{}}")
        if spec or conversion:
            raise ValueError(f"'{fmt}': placeholders take no format spec or conversion")
        names.add(name)
    return names


def _check_formats(formats: list[str], allowed: frozenset[str], required: frozenset[str], what: str) -> None:
    for fmt in formats:
        try:
            names = _field_names(fmt)
        except ValueError as exc:
            raise ValueError(f"{what}: {exc}") from None
        unknown = names - allowed
        if unknown:
            known = ", ".join("{" + name + "}" for name in sorted(allowed))
            raise ValueError(f"{what}: '{fmt}' uses {{{min(unknown)}}} (allowed: {known})")
        missing = required - names
        if missing:
            raise ValueError(f"{what}: '{fmt}' must contain {{{min(missing)}}}")


class _TextElement(_Model):
    box: Box = Field(title="Box", description="Where the element is drawn; nothing of it leaves this box.")
    font: FontName = Field(title="Font", description="One of the bundled DejaVu fonts.")
    size: SizeRange = Field(title="Font size (px)", description="The largest size that fits is used.")
    color: ColorName = Field(default="black", title="Colour", description="Ink colour of the text.")
    align: Align = Field(default="left", title="Alignment", description="Horizontal alignment in the box.")


class NameElement(_TextElement):
    """The product name: word-wrapped to at most ``max_lines`` lines at the largest size that fits,
    else shortened with an ellipsis at the smallest size. Top-aligned in its box."""

    max_lines: int = Field(default=2, ge=1, le=6, title="Lines", description="At most this many lines.")
    line_gap: int = Field(
        default=0,
        ge=-20,
        le=40,
        title="Extra line spacing (px)",
        description="Added to the font's line height (ascent + descent) between lines; may be negative.",
    )


class PriceElement(_TextElement):
    """The selling price in large digits, at the largest size in its range that fits. A price that
    does not fit at the smallest size is an error (found at plan time), never a cut-off label."""

    promo_color: ColorName = Field(
        default="red", title="Promo colour", description="Ink colour of the price when the label shows a promotion."
    )
    cents: Literal["superscript", "inline"] = Field(
        default="superscript",
        title="Cents style",
        description="superscript: the cents small and raised after the units (2⁴⁹), the symbol under them; "
        "inline: the whole amount as text (2.49 €).",
    )
    cents_scale: Decimal = Field(
        default=Decimal("0.5"), ge=Decimal("0.25"), le=1, title="Cents size", description="Cents size / price size."
    )
    symbol_scale: Decimal = Field(
        default=Decimal("0.4"),
        ge=Decimal("0.2"),
        le=1,
        title="Symbol size",
        description="Currency symbol size / price size (superscript style).",
    )
    show_symbol: bool = Field(default=True, title="Show symbol", description="Draw the currency symbol.")


class LineElement(_TextElement):
    """One line of text holding a money amount (unit price, reference price). Each format is tried
    in order at every size of the range (largest first); the first that fits is drawn. If none
    fits, the label cannot be drawn honestly and rendering reports it (an amount is never cut)."""

    formats: list[str] = Field(
        min_length=1,
        title="Wordings",
        description="Longest first. Placeholders: {price} (the amount with its currency symbol) and, for the "
        "unit price, {per} (the unit name from 'units').",
    )


class PromoElement(_TextElement):
    """The promo marker: a badge filling its box (rounded corners) with short text on it."""

    color: ColorName = Field(default="white", title="Text colour", description="Ink colour of the badge's text.")
    align: Align = Field(default="center", title="Alignment", description="Horizontal alignment of the text.")
    fill: ColorName = Field(default="red", title="Badge colour", description="Colour of the badge.")
    radius: int = Field(default=3, ge=0, le=100, title="Corner radius (px)", description="0: square corners.")
    with_reference: list[str] = Field(
        default_factory=lambda: ["-{pct}%"],
        min_length=1,
        title="Text with a reference",
        description="Tried in order when the reduction from the reference price is at least 1%; {pct} is the "
        "reduction in whole percent, rounded down (never overstated).",
    )
    without_reference: list[str] = Field(
        default_factory=lambda: ["SALE"],
        min_length=1,
        title="Text without a reference",
        description="Tried in order for a promotion without a known reference price.",
    )


class BarcodeText(_Model):
    """The human-readable SKU under the bars."""

    font: FontName = Field(default="DejaVuSans", title="Font", description="One of the bundled DejaVu fonts.")
    size: int = Field(default=10, ge=6, le=100, title="Size (px)", description="Font size of the digits.")
    gap: int = Field(default=1, ge=0, le=50, title="Gap (px)", description="Space between the bars and the text.")


class BarcodeElement(_Model):
    """Code 128 of the SKU, drawn as pixel-exact bars with an integer module width, centred in its box.
    A SKU whose code does not fit at 1 px per module (or cannot be encoded) is written as text."""

    box: Box = Field(title="Box", description="Where the barcode (with its quiet zones) is drawn.")
    module_width: int = Field(
        default=2,
        ge=1,
        le=10,
        title="Module width (px)",
        description="Width of the narrowest bar; narrower widths down to 1 px are used when it does not fit.",
    )
    quiet_zone: int = Field(
        default=10, ge=0, le=40, title="Quiet zone (modules)", description="Blank modules each side (Code 128: 10)."
    )
    bar_height: int | None = Field(
        default=None,
        ge=4,
        le=4000,
        title="Bar height (px)",
        description="Height of the bars; default: the box height less the text under them.",
    )
    text: BarcodeText | None = Field(
        default_factory=BarcodeText, title="Text", description="The SKU under the bars; null: bars only."
    )
    color: ColorName = Field(default="black", title="Colour", description="Ink colour of the bars and text.")

    @model_validator(mode="after")
    def _heights(self) -> BarcodeElement:
        text = 0 if self.text is None else self.text.size + self.text.gap
        bars = self.bar_height if self.bar_height is not None else self.box.h - text
        if bars < 4:
            raise ValueError(f"the box is {self.box.h} px high: no room for bars of at least 4 px above the text")
        if bars + text > self.box.h:
            raise ValueError(f"bar_height {bars} + text {text} px is more than the box height {self.box.h}")
        return self


# ---- money and units -------------------------------------------------------------------------


class CurrencyFormat(_Model):
    """How one currency is written on a label."""

    symbol: str = Field(min_length=1, max_length=5, title="Symbol", description="E.g. €, $, £.")
    position: Literal["before", "after"] = Field(
        title="Position", description="Symbol before the amount ($2.49) or after it (2.49 €)."
    )
    space: bool = Field(default=False, title="Space", description="A space between the amount and the symbol.")


class MoneyFormat(_Model):
    """Amounts as people read them: separators, and each currency's symbol (a currency not listed
    is written with its code after the amount: 2.49 CHF)."""

    decimal_separator: Literal[".", ","] = Field(
        default=".", title="Decimal separator", description="Between the units and the cents."
    )
    thousands_separator: Literal["", ",", ".", " ", "'"] = Field(
        default="", title="Thousands separator", description="Between groups of three digits; empty: none."
    )
    currencies: dict[CurrencyCode, CurrencyFormat] = Field(
        default_factory=dict, title="Currencies", description="Per ISO 4217 code (EUR, USD, GBP, ...)."
    )

    @model_validator(mode="after")
    def _separators(self) -> MoneyFormat:
        if self.decimal_separator == self.thousands_separator:
            raise ValueError("the decimal and thousands separators must differ")
        return self

    def currency(self, code: str) -> CurrencyFormat:
        """The format of ``code``; unknown codes are written as the code after the amount."""
        return self.currencies.get(code) or CurrencyFormat(symbol=code, position="after", space=True)

    def amount_parts(self, cents: int) -> tuple[str, str]:
        """(units, cents) as text: 123456 -> ("1,234", "56") with a "," thousands separator."""
        if cents < 0:
            raise ValueError(f"not an amount for a label: {cents} cents")
        units, rest = divmod(int(cents), 100)
        text = f"{units:,}".replace(",", self.thousands_separator)
        return text, f"{rest:02d}"

    def amount(self, cents: int) -> str:
        """The amount without a symbol: 249 -> "2.49"."""
        units, rest = self.amount_parts(cents)
        return f"{units}{self.decimal_separator}{rest}"

    def format(self, cents: int, currency: str) -> str:
        """The amount with its symbol: format(249, "EUR") -> "2.49 €" (as configured)."""
        style = self.currency(currency)
        space = " " if style.space else ""
        amount = self.amount(cents)
        return f"{style.symbol}{space}{amount}" if style.position == "before" else f"{amount}{space}{style.symbol}"


class UnitNames(_Model):
    """How the unit of a unit price is written ({per} in the unit price wording)."""

    kg: str = Field(default="kg", min_length=1, max_length=20, title="Per kilogram", description="For g and kg.")
    l: str = Field(default="l", min_length=1, max_length=20, title="Per litre", description="For ml and l.")
    pcs: str = Field(default="pc", min_length=1, max_length=20, title="Per piece", description="For pcs.")


# ---- a tag type and the whole file -----------------------------------------------------------

ELEMENTS = ("name", "price", "unit_price", "reference", "promo", "barcode")


class TagTemplate(_Model):
    """The layout of one tag type. Only ``name`` and ``price`` are required; an element left out is
    not drawn (a label that must show a reference price and has no reference box is an error)."""

    width: int = Field(ge=16, le=4000, title="Width (px)", description="The display's width in pixels.")
    height: int = Field(ge=16, le=4000, title="Height (px)", description="The display's height in pixels.")
    palette: Palette = Field(default_factory=Palette, title="Palette", description="The display's three colours.")
    background: ColorName = Field(default="white", title="Background", description="The paper colour of the label.")
    name: NameElement = Field(title="Product name", description="The product name, shortened to fit.")
    price: PriceElement = Field(title="Price", description="The selling price in large digits.")
    unit_price: LineElement | None = Field(
        default=None, title="Unit price", description="Price per kg / litre / piece, as many jurisdictions require."
    )
    reference: LineElement | None = Field(
        default=None,
        title="Reference price",
        description="EU Omnibus: with an announced reduction, the lowest price of the previous 30 days.",
    )
    promo: PromoElement | None = Field(default=None, title="Promo marker", description="Badge shown for a promotion.")
    barcode: BarcodeElement | None = Field(default=None, title="Barcode", description="Code 128 of the SKU.")

    _tag_type: str = PrivateAttr(default="?")
    _money: MoneyFormat = PrivateAttr(default_factory=MoneyFormat)
    _units: UnitNames = PrivateAttr(default_factory=UnitNames)

    @model_validator(mode="after")
    def _layout(self) -> TagTemplate:
        boxes: list[tuple[str, Box]] = []
        for element in ELEMENTS:
            part = getattr(self, element)
            if part is None:
                continue
            box: Box = part.box
            if box.right > self.width or box.bottom > self.height:
                raise ValueError(f"{element}: box {box} reaches outside the {self.width}x{self.height} tag")
            for other, other_box in boxes:
                if box.overlaps(other_box):
                    raise ValueError(f"{element}: box {box} overlaps the {other} box {other_box}")
            boxes.append((element, box))
            color = part.fill if isinstance(part, PromoElement) else part.color
            if color == self.background:
                raise ValueError(f"{element}: colour {color} is the background colour: it would be invisible")
            if isinstance(part, _TextElement) and part.size.min > box.h * 2:
                raise ValueError(f"{element}: size min {part.size.min} px cannot fit a box {box.h} px high")
        if self.promo is not None and self.promo.color == self.promo.fill:
            raise ValueError("promo: the text colour equals the badge colour")
        if self.price.promo_color == self.background:
            raise ValueError("price: promo_color is the background colour: it would be invisible")
        if self.unit_price is not None:
            _check_formats(self.unit_price.formats, UNIT_PRICE_FIELDS, frozenset({"price"}), "unit_price")
        if self.reference is not None:
            _check_formats(self.reference.formats, REFERENCE_FIELDS, frozenset({"price"}), "reference")
        if self.promo is not None:
            _check_formats(self.promo.with_reference, PROMO_FIELDS, frozenset(), "promo.with_reference")
            _check_formats(self.promo.without_reference, frozenset(), frozenset(), "promo.without_reference")
        return self

    @property
    def tag_type(self) -> str:
        """The tag type this template is for (its key in the templates file)."""
        return self._tag_type

    @property
    def display_name(self) -> str:
        """How people name the tag: 1.54" (its diagonal in inches)."""
        return f'{self._tag_type}"'

    @property
    def money(self) -> MoneyFormat:
        """The templates file's money format."""
        return self._money

    @property
    def units(self) -> UnitNames:
        """The templates file's unit names."""
        return self._units

    def boxes(self) -> dict[str, Box]:
        """Element name -> its box, for the elements this template draws."""
        return {element: getattr(self, element).box for element in ELEMENTS if getattr(self, element) is not None}


class LabelTemplates(_Model):
    """label_gateway/label_templates.yaml: the money format, unit names and one template per tag type."""

    money: MoneyFormat = Field(default_factory=MoneyFormat, title="Money format", description="How amounts are written.")
    units: UnitNames = Field(default_factory=UnitNames, title="Unit names", description="Words for {per}.")
    tags: dict[str, TagTemplate] = Field(
        min_length=1,
        title="Tag types",
        description='One template per tag type, keyed by the tag_type of labels.csv ("1.54", "2.9", "4.2"; quote '
        "the keys).",
    )

    @field_validator("tags", mode="before")
    @classmethod
    def _tag_keys_as_text(cls, value: Any) -> Any:
        """An unquoted key like 2.9 is read as a number: take its text."""
        if isinstance(value, dict):
            return {(str(key) if isinstance(key, (int, Decimal)) and not isinstance(key, bool) else key): v
                    for key, v in value.items()}
        return value

    @model_validator(mode="after")
    def _bind(self) -> LabelTemplates:
        for tag_type, template in self.tags.items():
            if not tag_type.strip():
                raise ValueError("tags: a tag type must not be empty")
            template._tag_type = tag_type
            template._money = self.money
            template._units = self.units
        return self

    @property
    def tag_types(self) -> tuple[str, ...]:
        return tuple(self.tags)

    def tag(self, tag_type: str) -> TagTemplate:
        """The template of ``tag_type``; UnknownTagTypeError (one line) when there is none."""
        try:
            return self.tags[tag_type]
        except KeyError:
            known = ", ".join(self.tags)
            raise UnknownTagTypeError(f"no label template for tag type '{tag_type}' (templates: {known})") from None


def load_label_templates(path: Path | None = None) -> LabelTemplates:
    """Read a templates YAML file (None: the packaged default). Raises ConfigError
    (``FILE:LINE: key.path: message`` lines)."""
    if path is None:
        return default_label_templates()
    return load_yaml_model(path, LabelTemplates)


@functools.cache
def default_label_templates() -> LabelTemplates:
    """The packaged label_gateway/label_templates.yaml, read once per process (the models are frozen)."""
    return load_yaml_model(DEFAULT_TEMPLATES_FILE, LabelTemplates)
