"""esl-pricing render: draw what a shelf label shows (or would show) as a PNG.

``--sku SKU`` draws the SKU on every tag type its labels use (else the 2.9" tag), ``--label ID``
draws that label. The name, size and unit come from the store's products.csv; the price from the
engine's price book with ``--db`` (with the EU Omnibus reference price of a reduction), else
from products.csv; ``--price`` / ``--reference`` preview another price. A price that does not
fit its box is a user error (exit 2), as it would be at plan time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from label_gateway.label_templates import (
    LabelTemplates,
    TagTemplate,
    UnknownTagTypeError,
    load_label_templates,
)
from label_gateway.render import (
    LabelContent,
    LabelFitError,
    check_fit,
    image_hash,
    render_label,
)
from pricing.cli.common import emit_json, err, fail, user_errors
from pricing.core.money import to_cents, to_decimal
from pricing.store import omnibus

DEFAULT_TAG_TYPE = "2.9"
DEFAULT_CURRENCY = "EUR"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def register(app: typer.Typer) -> None:
    """Add `esl-pricing render` to ``app``."""
    app.command("render")(render)


@dataclass(frozen=True)
class _Product:
    sku: str
    name: str
    size: float | None
    unit: str | None
    price_cents: int


@dataclass(frozen=True)
class _Price:
    cents: int
    currency: str
    reference_cents: int | None


def render(
    sku: Annotated[str | None, typer.Option("--sku", help="Draw this SKU (on every tag type its labels use).")] = None,
    label: Annotated[str | None, typer.Option("--label", help="Draw this label (its SKU on its tag type).")] = None,
    data: Annotated[Path, typer.Option(help="Store data directory (products.csv, labels.csv).")] = Path("data"),
    db: Annotated[
        str | None,
        typer.Option("--db", help="Engine database (SQLite file or URL): the price and Omnibus reference from its "
                     "price book."),
    ] = None,
    price: Annotated[str | None, typer.Option(help="Preview this price instead, e.g. 1.99.")] = None,
    reference: Annotated[
        str | None, typer.Option(help="Preview a reduction from this reference price (lowest of 30 days), e.g. 2.49.")
    ] = None,
    tag_type: Annotated[
        str | None, typer.Option("--tag-type", help='Tag type (1.54, 2.9, 4.2); default: the label\'s, or the SKU\'s '
                                 f'labels\', else {DEFAULT_TAG_TYPE}.')
    ] = None,
    currency: Annotated[
        str, typer.Option(help="Currency code without --db (with --db: the price book's).")
    ] = DEFAULT_CURRENCY,
    templates: Annotated[
        Path | None, typer.Option(help="Label templates YAML (default: the packaged label_templates.yaml).")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="PNG file, or a directory for label-<sku>-<tag>.png (default: the current directory)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last stdout line.")] = False,
) -> None:
    """Draw a shelf label as a PNG: what it shows now, or a preview of another price."""
    if (sku is None) == (label is None):
        fail("give exactly one of --sku SKU or --label ID")
    with user_errors():
        layouts = load_label_templates(templates)
    product, tag_types = _lookup(data, sku, label, tag_type)
    shown = _price(product, db, data, price, reference, currency)
    files: list[dict[str, Any]] = []
    targets = _targets(out, product.sku, tag_types)
    content = LabelContent.build(
        sku=product.sku, name=product.name, price_cents=shown.cents, currency=shown.currency,
        size=product.size, unit=product.unit, reference_cents=shown.reference_cents,
    )
    pngs = []
    for tag in tag_types:
        template = _template(layouts, tag)
        problem = check_fit(content, template)
        if problem is not None:
            fail(f"sku {product.sku}: {problem}")
        try:
            pngs.append(render_label(content, template))
        except LabelFitError as exc:  # pragma: no cover - check_fit finds the same problem
            fail(f"sku {product.sku}: {exc}")
    for tag, target, png in zip(tag_types, targets, pngs, strict=True):
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(png)
        except OSError as exc:
            fail(f"{target}: cannot write: {exc.strerror or exc}")
        digest = image_hash(png)
        money = layouts.tag(tag).money
        what = money.format(shown.cents, shown.currency)
        if shown.reference_cents is not None:
            what += f", reference {money.format(shown.reference_cents, shown.currency)}"
        err.print(f"wrote {target} ({tag}\" label, sku {product.sku}, {what})", highlight=False, markup=False,
                  soft_wrap=True)
        files.append({
            "path": str(target), "sha256": digest, "tag_type": tag, "sku": product.sku,
            "price_cents": shown.cents, "currency": shown.currency, "reference_cents": shown.reference_cents,
        })
    if as_json:
        emit_json({"files": files})


def _template(layouts: LabelTemplates, tag: str) -> TagTemplate:
    try:
        return layouts.tag(tag)
    except UnknownTagTypeError as exc:
        fail(str(exc))


def _lookup(data: Path, sku: str | None, label: str | None, tag_type: str | None) -> tuple[_Product, list[str]]:
    """The product and the tag types to draw. Reads products.csv and labels.csv only (never the
    sales history)."""
    import pandas as pd

    from pricing.core.data import (
        LABELS_FILE,
        PRODUCTS_FILE,
        TAG_TYPES,
        load_labels,
        load_products,
    )

    if not data.is_dir():
        fail(f"{data}: not a directory (expected a store directory with {PRODUCTS_FILE})")
    labels_path = data / LABELS_FILE
    with user_errors():
        products = load_products(data / PRODUCTS_FILE).frame
        labels = load_labels(labels_path).frame if labels_path.exists() or label is not None else None
    if label is not None:
        assert labels is not None
        row = labels[labels["label_id"] == label]
        if row.empty:
            fail(f"label '{label}' is not in {labels_path}")
        sku = str(row["sku"].iloc[0])
        used = [str(row["tag_type"].iloc[0])]
    else:
        assert sku is not None
        used = []
        if labels is not None:
            found = set(labels.loc[labels["sku"] == sku, "tag_type"].astype(str))
            used = [t for t in TAG_TYPES if t in found] + sorted(found - set(TAG_TYPES))
    match = products[products["sku"] == sku]
    if match.empty:
        fail(f"sku '{sku}' is not in {data / PRODUCTS_FILE}")
    first = match.iloc[0]
    size, unit = first["size"], first["unit"]
    product = _Product(
        sku=sku,
        name=str(first["name"]),
        size=None if pd.isna(size) else float(size),
        unit=None if pd.isna(unit) or not str(unit) else str(unit),
        price_cents=int(first["price_cents"]),
    )
    tags = [tag_type] if tag_type is not None else (used or [DEFAULT_TAG_TYPE])
    return product, tags


def _money_option(option: str, text: str | None) -> int | None:
    if text is None:
        return None
    try:
        cents = to_cents(text)
    except ValueError as exc:
        fail(f"{option}: {exc}")
    if cents < 1:
        fail(f"{option}: {text} is not a price (it must be at least 0.01)")
    return cents


def _price(product: _Product, db: str | None, data: Path, price: str | None, reference: str | None,
           currency: str) -> _Price:
    """The price to draw and its reference: the preview options, else the price book, else products.csv."""
    preview = _money_option("--price", price)
    reference_cents = _money_option("--reference", reference)
    if not re.fullmatch(r"[A-Z]{3}", currency):
        fail(f"--currency must be a 3-letter code like EUR, not '{currency}'")
    cents, book_reference = product.price_cents, None
    if db is not None:
        cents, currency, book_reference = _from_book(db, data, product.sku, cents, currency, preview)
    shown = preview if preview is not None else cents
    if reference_cents is None:
        reference_cents = book_reference
    elif reference_cents <= shown:
        fail(f"--reference {reference} is not above the price {to_decimal(shown)}: a reference price belongs to "
             "a reduction")
    return _Price(shown, currency, reference_cents)


def _from_book(db: str, data: Path, sku: str, cents: int, currency: str, preview: int | None
               ) -> tuple[int, str, int | None]:
    """(price, currency, Omnibus reference) from the engine's price book; products.csv's price
    when the book does not know the SKU. With a preview price below the current one, the
    reference is what the book would give that reduction now."""
    from pricing.core.database import open_engine
    from pricing.store.price_book import PriceBook

    if "://" not in db and not Path(db).expanduser().exists():
        fail(f"database '{db}': no such file")
    store = _store_of(data)
    with user_errors():
        book = PriceBook(open_engine(db), store)
        periods = book.history(sku)
        now = datetime.now(UTC)
        lowest = book.lowest_prices([sku], now) if preview is not None else {}
        references = book.current_references([sku])
    current = next((p for p in reversed(periods) if p.effective_to is None), None)
    if current is None:
        err.print(f"sku {sku} has no price in the price book of {store}: using products.csv", highlight=False,
                  markup=False)
        return cents, currency, None
    if preview is not None:
        if preview < current.price_cents:
            return current.price_cents, current.currency, omnibus.reference(preview, current.price_cents, lowest.get(sku))
        return current.price_cents, current.currency, None
    return current.price_cents, current.currency, references.get(sku)


def _store_of(data: Path) -> str:
    """The store of the data directory's labels.csv (its first row), else store-001."""
    from pricing.core.data import LABELS_FILE, load_labels

    path = data / LABELS_FILE
    if path.exists():
        with user_errors():
            frame = load_labels(path).frame
        if len(frame):
            return str(frame["store"].iloc[0])
    return "store-001"


def _targets(out: Path | None, sku: str, tag_types: list[str]) -> list[Path]:
    """Where each tag type's PNG goes."""
    names = [f"label-{_UNSAFE.sub('_', sku)}-{tag}.png" for tag in tag_types]
    if out is None:
        return [Path(name) for name in names]
    if out.is_dir() or out.suffix.lower() != ".png":
        return [out / name for name in names]
    if len(tag_types) > 1:
        fail(f"--out {out} names one file, but sku {sku} has labels of {len(tag_types)} tag types "
             f"({', '.join(tag_types)}): give a directory or --tag-type")
    return [out]
