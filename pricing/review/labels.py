"""The shelf label of a SKU before and after a plan, as label_gateway.render draws it.

Before: the price the shelf has now (the price book's, else products.csv's), with the reference
price the labels were sent with when that price was an announced reduction. After: the plan's
new price; a reduction carries its EU Omnibus reference, the lowest price of the 30 days before
it (computed as PriceBook.record will when the change is pushed), and so the promo marker.

``render_png`` is the one place that calls the renderer.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from label_gateway.label_templates import LabelTemplates, load_label_templates
from label_gateway.outbox import LabelRow
from label_gateway.render import LabelContent, check_fit, render_label
from pricing.core.money import format_money
from pricing.review.store_files import Product
from pricing.store import omnibus
from pricing.store.price_book import PriceBook


@dataclass(frozen=True)
class LabelPrices:
    """A label's money: the price and, for an announced reduction, the reference price."""

    price_cents: int
    reference_cents: int | None = None

    def describe(self, currency: str) -> str:
        text = format_money(self.price_cents, currency)
        if self.reference_cents is not None and self.reference_cents > self.price_cents:
            text += f" (30-day low {format_money(self.reference_cents, currency)})"
        return text


@functools.cache
def templates(path: Path | None) -> LabelTemplates:
    """The label templates (None: the packaged default), read once per path."""
    return load_label_templates(path)


def before_prices(current_cents: int, rows: list[LabelRow]) -> LabelPrices:
    """What the shelf shows now: the current price, with the reference its labels were sent
    with when it is a reduction."""
    reference = next(
        (r.reference_cents for r in rows if r.price_cents == current_cents and r.reference_cents is not None), None
    )
    return LabelPrices(current_cents, reference if reference is not None and reference > current_cents else None)


def after_prices(book: PriceBook, sku: str, current_cents: int, new_cents: int, at: datetime) -> LabelPrices:
    """What the shelf will show with the new price: a reduction with its Omnibus reference (the
    lowest price of the previous 30 days, never above the price before the reduction)."""
    if new_cents >= current_cents:
        return LabelPrices(new_cents)
    shown = omnibus.reference(new_cents, current_cents, book.lowest_prices([sku], at).get(sku))
    return LabelPrices(new_cents, shown if shown is not None and shown > new_cents else None)


def content(product: Product, prices: LabelPrices, currency: str) -> LabelContent:
    return LabelContent.build(
        sku=product.sku, name=product.name, price_cents=prices.price_cents, currency=currency,
        size=product.size, unit=product.unit, reference_cents=prices.reference_cents,
    )


def fit_problem(product: Product, prices: LabelPrices, currency: str, tag_type: str, path: Path | None) -> str | None:
    """Why this label cannot be drawn (one line), or None. Unknown tag types are a problem too."""
    try:
        template = templates(path).tag(tag_type)
    except ValueError as exc:  # UnknownTagTypeError
        return str(exc)
    return check_fit(content(product, prices, currency), template)


def render_png(product: Product, prices: LabelPrices, currency: str, tag_type: str, path: Path | None) -> bytes:
    """The label as PNG bytes; UnknownTagTypeError / LabelFitError (ValueErrors, one line) when it
    cannot be drawn."""
    return render_label(content(product, prices, currency), templates(path).tag(tag_type))
