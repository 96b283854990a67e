"""The store's products.csv and labels.csv as the review page needs them, validated by
pricing.core.data and read again only when a file changes.

Products give the "before" price of a SKU the price book has never seen and the name, size and
unit a label shows; labels give each SKU's labels (id, gateway, tag type) and the rows a push
sends to.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pandas as pd

from pricing.core.data import LABELS_FILE, PRODUCTS_FILE, load_labels, load_products

T = TypeVar("T")


@dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    brand: str
    size: float | None
    unit: str | None
    price_cents: int
    cost_cents: int | None


@dataclass(frozen=True)
class Label:
    label_id: str
    gateway: str
    sku: str
    tag_type: str


def _text(value: object) -> str | None:
    return None if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)) else str(value)


def _products(path: Path) -> dict[str, Product]:
    frame = load_products(path).frame
    out: dict[str, Product] = {}
    for row in frame.itertuples(index=False):
        size = None if pd.isna(row.size) else float(row.size)
        cost = None if pd.isna(row.cost_cents) else int(row.cost_cents)
        out[str(row.sku)] = Product(
            str(row.sku), str(row.name), str(row.category), _text(row.brand) or "", size, _text(row.unit),
            int(row.price_cents), cost,
        )
    return out


def _labels(path: Path) -> list[Label]:
    frame = load_labels(path).frame
    return [
        Label(str(label_id), str(gateway), str(sku), str(tag_type))
        for label_id, gateway, sku, tag_type in frame[["label_id", "gateway", "sku", "tag_type"]].itertuples(
            index=False, name=None
        )
    ]


class _Cached:
    """One file's parsed content, read again when its modification time or size changes."""

    def __init__(self, path: Path, parse: Callable[[Path], object]) -> None:
        self.path = path
        self.parse = parse
        self._stamp: tuple[int, int] | None = None
        self._value: object = None
        self._lock = threading.Lock()

    def get(self) -> object:
        info = self.path.stat()  # a missing file raises FileNotFoundError: the caller says so
        stamp = (info.st_mtime_ns, info.st_size)
        with self._lock:
            if stamp != self._stamp:
                self._value = self.parse(self.path)
                self._stamp = stamp
            return self._value


class StoreFiles:
    """products.csv and labels.csv of a store data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._products = _Cached(data_dir / PRODUCTS_FILE, _products)
        self._labels = _Cached(data_dir / LABELS_FILE, _labels)
        self._by_sku: tuple[list[Label], dict[str, list[Label]]] | None = None

    def products(self) -> dict[str, Product]:
        """sku -> product; empty when products.csv is missing."""
        try:
            return self._products.get()  # type: ignore[return-value]
        except FileNotFoundError:
            return {}

    def labels(self) -> list[Label]:
        """Every label of the store; empty when labels.csv is missing."""
        try:
            return self._labels.get()  # type: ignore[return-value]
        except FileNotFoundError:
            return []

    def labels_by_sku(self) -> dict[str, list[Label]]:
        labels = self.labels()
        cached = self._by_sku
        if cached is not None and cached[0] is labels:
            return cached[1]
        grouped: dict[str, list[Label]] = {}
        for label in labels:
            grouped.setdefault(label.sku, []).append(label)
        self._by_sku = (labels, grouped)
        return grouped

    def label_rows(self) -> list[tuple[str, str, str]]:
        """(label_id, gateway, sku) for every label: what a push sends to."""
        return [(label.label_id, label.gateway, label.sku) for label in self.labels()]
