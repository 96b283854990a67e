"""Contact sheets: every simulated label of a gateway as shoppers see it, on one PNG.

What each label shows comes from the simulator's state file (its displayed sku, price and
reference price); the name, size and unit from the store's products.csv and the tag type from its
labels.csv; the drawing from ``label_gateway.render`` with the label templates, exactly as the
engine renders a label. A label that has shown nothing yet is a white tile marked "blank". Tiles
sit on a light grey background in a grid per gateway and tag type, each captioned with its label
id and SKU, so an engineer can look over a whole shelf at once.

The simulator reads only public formats here: the state file, products.csv and labels.csv (via the
pricing.core.data loaders) and the label templates.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from label_gateway.label_templates import LabelTemplates, UnknownTagTypeError
from label_gateway.render import (
    FONTS_DIR,
    LabelContent,
    LabelFitError,
    png_bytes,
    render_image,
)
from simulator.gateways import SimulatorState

__all__ = ["ContactSheet", "SheetImage", "Tile", "sheet_image", "tiles_from_state", "write_contact_sheets"]

BACKGROUND = (230, 230, 230)  # light grey: white labels stand out
FRAME = (150, 150, 150)
CAPTION = (30, 30, 30)
PROBLEM = (200, 0, 0)
MUTED = (120, 120, 120)
MARGIN = 16
GAP = 12
CAPTION_PX = 12
HEADING_PX = 20
TAG_ORDER = ("1.54", "2.9", "4.2")

#: Hears (labels drawn, labels to draw) after each label; rendering takes 2-3 ms a label.
DrawProgress = Callable[[int, int], None]


@dataclass(frozen=True)
class Tile:
    """One label on the sheet: its content (None: it shows nothing) and why it may not be drawn."""

    label_id: str
    gateway: str
    sku: str
    tag_type: str
    content: LabelContent | None
    status: str = ""  # "", "blank", "dead", or a problem ("sku not in products.csv", ...)


@dataclass
class SheetImage:
    """A drawn sheet: the image, where each label's tile is (its top-left pixel of the label,
    inside the frame), and counts of labels, blank tiles and tiles that could not be drawn."""

    image: Image.Image
    positions: dict[str, tuple[int, int]]
    labels: int = 0
    blank: int = 0
    problems: int = 0


@dataclass
class ContactSheet:
    """A written sheet: its file and what it holds."""

    path: Path
    gateways: list[str]
    labels: int
    blank: int
    problems: int
    tag_types: dict[str, int] = field(default_factory=dict)


@functools.lru_cache(maxsize=16)
def _ui_font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return ImageFont.truetype(str(FONTS_DIR / name), size, layout_engine=ImageFont.Layout.BASIC)


def tiles_from_state(
    state: SimulatorState, products: pd.DataFrame, labels: pd.DataFrame, *, currency: str
) -> dict[str, list[Tile]]:
    """gateway -> its labels' tiles (ordered by label id), for the labels of labels.csv (those of the
    state's store when labels.csv has several stores). ``products``/``labels``: the frames of
    pricing.core.data's loaders."""
    rows = labels
    if "store" in labels and (labels["store"] == state.store).any():
        rows = labels[labels["store"] == state.store]
    catalogue = {str(r.sku): r for r in products.itertuples(index=False)}
    tiles: dict[str, list[Tile]] = {}
    for label_id, gateway, sku, tag_type in rows[["label_id", "gateway", "sku", "tag_type"]].itertuples(
        index=False, name=None
    ):
        label_id, gateway, sku, tag_type = str(label_id), str(gateway), str(sku), str(tag_type)
        record = state.labels.get(label_id)
        status = ""
        content = None
        if record is None or record.price_cents is None or record.version == 0:
            status = "blank"
        else:
            sku = record.sku
            product = catalogue.get(sku)
            if product is None:
                status = "sku not in products.csv"
            else:
                content = LabelContent.build(
                    sku=sku,
                    name=str(product.name),
                    price_cents=int(record.price_cents),
                    currency=currency,
                    size=None if pd.isna(product.size) else float(product.size),
                    unit=None if pd.isna(product.unit) else str(product.unit),
                    reference_cents=record.reference_cents,
                )
            if record.dead:
                status = status or "dead"
        tiles.setdefault(gateway, []).append(Tile(label_id, gateway, sku, tag_type, content, status))
    return {gateway: sorted(found, key=lambda t: t.label_id) for gateway, found in sorted(tiles.items())}


def _tag_key(tag: str) -> tuple[int, str]:
    return (TAG_ORDER.index(tag) if tag in TAG_ORDER else len(TAG_ORDER), tag)


def _fit_text(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def _label_image(tile: Tile, templates: LabelTemplates) -> tuple[Image.Image | None, str]:
    """The label as shoppers see it (RGB), or None with the reason when it cannot be drawn."""
    try:
        template = templates.tag(tile.tag_type)
    except UnknownTagTypeError as exc:
        return None, str(exc)
    if tile.content is None:
        return None, tile.status
    try:
        return render_image(tile.content, template).convert("RGB"), tile.status
    except LabelFitError as exc:
        return None, f"does not fit: {exc}"


def sheet_image(gateway_tiles: Mapping[str, Sequence[Tile]], templates: LabelTemplates, *, width: int = 1600,
                progress: DrawProgress | None = None) -> SheetImage:
    """One sheet (RGB) with a heading per gateway and a grid per tag type; ``progress`` hears
    (drawn, of) after each label."""
    heading = _ui_font(HEADING_PX, bold=True)
    caption = _ui_font(CAPTION_PX)
    # First pass: where everything goes.
    plan: list[tuple[str, object, int, int]] = []  # (kind, payload, x, y)
    y = MARGIN
    sheet_width = width
    for gateway, tiles in gateway_tiles.items():
        blank = sum(t.content is None and t.status == "blank" for t in tiles)
        plan.append(("heading", f"{gateway}: {len(tiles)} labels, {blank} blank", MARGIN, y))
        y += HEADING_PX + 10
        by_tag: dict[str, list[Tile]] = {}
        for tile in tiles:
            by_tag.setdefault(tile.tag_type, []).append(tile)
        for tag in sorted(by_tag, key=_tag_key):
            try:
                template = templates.tag(tag)
                tag_w, tag_h = template.width, template.height
            except UnknownTagTypeError:
                tag_w, tag_h = 296, 128
            plan.append(("subheading", f'{tag}" tags: {len(by_tag[tag])}', MARGIN, y))
            y += CAPTION_PX + 6
            cell_w, cell_h = tag_w + 2, tag_h + 2 + CAPTION_PX + 6
            columns = max(1, (width - 2 * MARGIN + GAP) // (cell_w + GAP))
            sheet_width = max(sheet_width, 2 * MARGIN + cell_w)
            for i, tile in enumerate(by_tag[tag]):
                column, row = i % columns, i // columns
                plan.append(("tile", (tile, tag_w, tag_h), MARGIN + column * (cell_w + GAP), y + row * (cell_h + GAP)))
            rows = (len(by_tag[tag]) + columns - 1) // columns
            y += rows * (cell_h + GAP) + 4
        y += 12
    sheet = Image.new("RGB", (sheet_width, y + MARGIN - 12), BACKGROUND)
    result = SheetImage(sheet, {})
    draw = ImageDraw.Draw(sheet)
    total = sum(1 for kind, *_ in plan if kind == "tile")
    for kind, payload, x, top in plan:
        if kind in ("heading", "subheading"):
            draw.text((x, top), str(payload), font=heading if kind == "heading" else caption, fill=CAPTION)
            continue
        tile, tag_w, tag_h = payload  # type: ignore[misc]
        result.labels += 1
        result.positions[tile.label_id] = (x + 1, top + 1)
        image, status = _label_image(tile, templates)
        draw.rectangle((x, top, x + tag_w + 1, top + tag_h + 1), outline=FRAME, fill=(255, 255, 255))
        if image is not None:
            sheet.paste(image, (x + 1, top + 1))
        else:
            if status == "blank":
                result.blank += 1
            else:
                result.problems += 1
            mark = "blank" if status == "blank" else "cannot draw"
            colour = MUTED if status == "blank" else PROBLEM
            length = draw.textlength(mark, font=caption)
            draw.text((x + 1 + (tag_w - length) / 2, top + tag_h / 2 - CAPTION_PX / 2), mark, font=caption,
                      fill=colour)
        text = f"{tile.label_id}  {tile.sku}" + (f"  {status}" if status else "")
        text = _fit_text(draw, text, caption, tag_w + 2)
        draw.text((x, top + tag_h + 4), text, font=caption, fill=PROBLEM if status not in ("", "blank") else CAPTION)
        if progress is not None:
            progress(result.labels, total)
    return result


def _file_part(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in text)


def write_contact_sheets(
    out: Path,
    gateway_tiles: Mapping[str, Sequence[Tile]],
    templates: LabelTemplates,
    *,
    width: int = 1600,
    progress: DrawProgress | None = None,
) -> list[ContactSheet]:
    """Write the sheets: ``out`` ending in .png is one file with every gateway, else a directory
    with contact-sheet-<gateway>.png per gateway. ``progress`` hears (labels drawn, labels of
    every sheet) after each label."""
    groups: list[tuple[Path, dict[str, Sequence[Tile]]]]
    if out.suffix.lower() == ".png":
        groups = [(out, dict(gateway_tiles))]
    else:
        groups = [(out / f"contact-sheet-{_file_part(g)}.png", {g: tiles}) for g, tiles in gateway_tiles.items()]
    written: list[ContactSheet] = []
    total = sum(len(t) for t in gateway_tiles.values())
    done = 0
    for path, tiles in groups:
        before = done

        def drawn_so_far(drawn: int, _of: int, before: int = before) -> None:
            if progress is not None:
                progress(before + drawn, total)

        drawn = sheet_image(tiles, templates, width=width, progress=drawn_so_far)
        done = before + drawn.labels
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png_bytes(drawn.image))
        per_tag: dict[str, int] = {}
        for gateway_tiles_list in tiles.values():
            for tile in gateway_tiles_list:
                per_tag[tile.tag_type] = per_tag.get(tile.tag_type, 0) + 1
        written.append(ContactSheet(path, list(tiles), drawn.labels, drawn.blank, drawn.problems,
                                    dict(sorted(per_tag.items(), key=lambda kv: _tag_key(kv[0])))))
    return written
