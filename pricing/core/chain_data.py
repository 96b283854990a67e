"""A chain's data directory: stores grouped into price zones, one catalogue, zone prices, every
store's labels, and sales partitioned by store, read a few stores at a time.

In: a chain directory (names in ``CHAIN_FILES``):

- ``stores.csv``: store (an id that becomes an MQTT topic level, ``ID_PATTERN``), zone (an id,
  same characters), timezone (an IANA name ``zoneinfo`` knows, e.g. ``Europe/Berlin``), currency
  (ISO 4217: three upper-case letters), gateways (whole number >= 1: the store's label
  gateways). Store ids are unique. Reasons: ``timezone is not an IANA time zone: 'Europe/Berln'``,
  ``currency is not an ISO 4217 code (three upper-case letters): 'eur'``, ``gateways must be >= 1``,
  ``duplicate store 's001' (first occurrence kept)``, ...
- ``products.csv``: the products contract of pricing/core/data.py, chain-wide; price_cents is
  today's chain list price.
- ``zone_prices.csv`` (optional): zone, sku, price_cents: today's shelf price of the SKU in the
  zone; a (zone, sku) not listed sells at products.price_cents. A row is rejected for a zone not
  in stores.csv, a sku not in products.csv, or a repeated (zone, sku).
- the sales: ``sales.csv`` (the sales contract; its store column says whose row it is) **or**
  ``sales/store=<id>/*.parquet`` (Hive-style partitions, one directory per store; columns date
  (date32 or YYYY-MM-DD text), sku (text), units, price_cents, promo, optional stock, and store,
  which the directory gives when the file lacks it). Both at once is an error.
- ``labels.csv``: the labels contract, every store's labels in one file; a row whose store is not
  in stores.csv, or whose sku is not in products.csv, is rejected.

Out: ``load_stores`` (a ``StoresTable``: the frame and the rejects), ``chain_zones`` (zone ->
its stores), ``zone_prices`` (the frame), ``load_store_sales`` / ``read_store_sales`` (the sales of
the given stores only, checked like pricing.core.data's sales reader: the same columns, dtypes and
reasons), and ``ChainData.load``: everything small (stores, products, zone prices, labels), never
the sales.

Reading only some stores: with Parquet, only the directories ``sales/store=<id>`` of the stores
asked for are listed and opened (another store's files are never touched, not even for a schema);
with sales.csv, the file is read in chunks and only the rows of those stores are kept (the others
are dropped chunk by chunk, never checked). A store with no partition directory, or no rows,
has no sales (not an error: a new store borrows from its zone).

Row numbers in the sales rejects: a sales.csv row's file line (header line 1); a Parquet row's
position in its file + 2 (as pricing.core.data numbers a Parquet file's rows), with the file
named relative to the chain directory: ``sales/store=s001/part-0.parquet:7: units must be >= 0``.
The sales frame's index ``row`` is that number, so it repeats across files (not unique in a
frame of several stores). A sales.csv line with more fields than the header has no store to
tell whose it is: it is reported with every read of sales.csv.
"""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pricing.core.data import (
    LABELS_FILE,
    PRODUCTS_FILE,
    SALES_COLUMNS,
    SALES_FILE,
    SALES_OPTIONAL,
    DataError,
    Loaded,
    Reject,
    _chunks,
    _dates,
    _Distinct,
    _load_labels,
    _promo,
    _read_table,
    _RowChecker,
    _Table,
    _whole,
    empty_labels,
    load_products,
)
from pricing.core.ids import id_problem

STORES_FILE = "stores.csv"
ZONE_PRICES_FILE = "zone_prices.csv"  # optional
SALES_DIR = "sales"  # Parquet partitions: sales/store=<id>/*.parquet
PARTITION_KEY = "store"
PART_FILE = "part-0.parquet"  # the file name the generator writes in each partition
STORE_COLUMNS = ["store", "zone", "timezone", "currency", "gateways"]
ZONE_PRICE_COLUMNS = ["zone", "sku", "price_cents"]
CHAIN_FILES = (STORES_FILE, PRODUCTS_FILE, ZONE_PRICES_FILE, SALES_FILE, SALES_DIR, LABELS_FILE)
CURRENCY_PATTERN = re.compile(r"[A-Z]{3}")


def partition_dir(directory: Path | str, store: str) -> Path:
    """The Parquet partition directory of one store's sales: ``DIR/sales/store=<id>``."""
    return Path(directory) / SALES_DIR / f"{PARTITION_KEY}={store}"


# ---- stores.csv -------------------------------------------------------------------------------


@dataclass
class StoresTable(Loaded):
    """stores.csv's good rows and rejects. ``frame`` (index ``row``, the file line): store, zone,
    timezone, currency "string"; gateways int64."""

    @property
    def stores(self) -> list[str]:
        """The store ids, in file order."""
        return [str(s) for s in self.frame["store"]]


def _time_zone_problem(name: str) -> str | None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        return f"timezone is not an IANA time zone: '{name}'"
    return None


def load_stores(directory: Path | str) -> StoresTable:
    """stores.csv of a chain directory (or the file itself): store, zone, timezone, currency, gateways."""
    path = Path(directory)
    path = path / STORES_FILE if path.is_dir() else path
    check = _RowChecker(_read_table(path, STORE_COLUMNS, []), path.name)
    for col in ("store", "zone", "timezone", "currency"):
        check.required_text(col)
    check.identifier("store")
    check.identifier("zone")
    zone_text = check.text("timezone").fillna("")
    reasons = pd.Series([_time_zone_problem(t) if t else None for t in zone_text.tolist()], dtype=object)
    check.flag("timezone", reasons.notna().to_numpy(), reasons)
    currency = check.text("currency").fillna("")
    check.flag(
        "currency",
        (currency != "") & ~currency.str.fullmatch(CURRENCY_PATTERN.pattern).fillna(False).astype(bool),
        "currency is not an ISO 4217 code (three upper-case letters): '" + currency + "'",
    )
    gateways = check.integer("gateways", minimum=1)
    check.unique("store")
    values: dict[str, object] = {col: check.text(col) for col in ("store", "zone", "timezone", "currency")}
    values["gateways"] = _whole(gateways)
    rejects = check.rejects()
    return StoresTable(check.frame(values), rejects, check.table.rows)


def chain_zones(stores: StoresTable | pd.DataFrame) -> dict[str, list[str]]:
    """Zone -> its store ids: zones sorted by id, each zone's stores in file order."""
    frame = stores.frame if isinstance(stores, Loaded) else stores
    zones: dict[str, list[str]] = {}
    for store, zone in zip(frame["store"].astype(str), frame["zone"].astype(str), strict=True):
        zones.setdefault(zone, []).append(store)
    return {zone: zones[zone] for zone in sorted(zones)}


# ---- zone_prices.csv --------------------------------------------------------------------------


def empty_zone_prices() -> pd.DataFrame:
    """The zone prices frame of a chain without zone_prices.csv: no rows, the loader's types."""
    return pd.DataFrame(
        {"zone": pd.Series([], dtype="string"), "sku": pd.Series([], dtype="string"),
         "price_cents": pd.Series([], dtype=np.int64)},
        index=pd.RangeIndex(2, 2, name="row"),
    )


def _load_zone_prices(path: Path, zones: set[str] | None, known: set[str] | None) -> Loaded:
    """zone_prices.csv: rows checked, then (when given) zones not in ``zones`` and SKUs not in
    ``known`` rejected. Without the file: no rows."""
    if not path.exists():
        return Loaded(empty_zone_prices())
    check = _RowChecker(_read_table(path, ZONE_PRICE_COLUMNS, []), path.name)
    check.required_text("zone")
    check.required_text("sku")
    check.identifier("zone")
    check.sku()
    price = check.integer("price_cents", minimum=1)
    zone, sku = check.text("zone"), check.text("sku")
    if zones is not None:
        check.flag("zone", (zone.fillna("") != "") & ~zone.isin(zones), "zone '" + zone.fillna("") + f"' is not in {STORES_FILE}")
    if known is not None:
        check.flag("sku", (sku.fillna("") != "") & ~sku.isin(known), "sku '" + sku.fillna("") + f"' is not in {PRODUCTS_FILE}")
    # The same (zone, sku) again: ambiguous, the first is kept.
    pair = pd.DataFrame({"zone": check.table.columns["zone"].codes, "sku": check.table.columns["sku"].codes})
    good = ~check.bad
    repeat = np.zeros(check.table.rows, dtype=bool)
    repeat[good] = pair[good].duplicated().to_numpy()
    if repeat.any():
        rows = np.flatnonzero(repeat)
        reasons = np.full(check.table.rows, None, dtype=object)
        reasons[rows] = [
            f"duplicate zone price of sku '{sku.iloc[s]}' in zone '{zone.iloc[z]}' (first occurrence kept)"
            for z, s in zip(pair["zone"].to_numpy()[rows], pair["sku"].to_numpy()[rows], strict=True)
        ]
        check.flag_rows(repeat, reasons)
    rejects = check.rejects()
    values = {"zone": check.text("zone"), "sku": check.text("sku"), "price_cents": _whole(price)}
    return Loaded(check.frame(values), rejects, check.table.rows)


def load_zone_prices(directory: Path | str) -> Loaded:
    """zone_prices.csv of a chain directory, rows checked on their own (no stores or products
    needed); ``ChainData.load`` also rejects unknown zones and SKUs."""
    return _load_zone_prices(Path(directory) / ZONE_PRICES_FILE, None, None)


def zone_prices(directory: Path | str) -> pd.DataFrame:
    """Today's zone shelf prices (zone, sku "string"; price_cents int64): the good rows of
    zone_prices.csv (none without the file). The rejects: ``load_zone_prices`` or ``ChainData``."""
    return load_zone_prices(directory).frame


# ---- sales of some stores ---------------------------------------------------------------------


@dataclass
class _Source:
    """Where each row of a combined sales table came from."""

    files: list[str] = field(default_factory=list)  # file names shown in rejects
    file_of: list[np.ndarray] = field(default_factory=list)  # per part: index into files
    line_of: list[np.ndarray] = field(default_factory=list)  # per part: the row's line/number
    seen: set[str] = field(default_factory=set)  # the columns some file has

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        file_of = np.concatenate(self.file_of) if self.file_of else np.empty(0, dtype=np.int32)
        line_of = np.concatenate(self.line_of) if self.line_of else np.empty(0, dtype=np.int64)
        return file_of, line_of


def _arrow_text(column: object) -> pd.Series:
    """An Arrow column as a Categorical of its distinct values' texts (nulls: missing), without
    a Python string per row: dictionary-encoded in Arrow, only the dictionary is cast to text."""
    import pyarrow as pa
    import pyarrow.compute as pc

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    if pa.types.is_timestamp(array.type) or pa.types.is_date64(array.type):
        midnight = array.cast(pa.date32()).cast(array.type)
        if pc.all(pc.or_kleene(pc.equal(midnight, array), pc.is_null(array))).as_py() is not False:
            array = array.cast(pa.date32())  # a day as pandas writes it (datetime64 at midnight)
    encoded = pc.dictionary_encode(array)
    codes = encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int32)
    text = encoded.dictionary.cast(pa.string()).to_numpy(zero_copy_only=False)
    return pd.Series(pd.Categorical.from_codes(codes, pd.Index(text, dtype=object), validate=False))


def _parquet_parts(directory: Path, stores: Sequence[str], columns: list[str], source: _Source) -> Iterator[dict[str, pd.Series]]:
    """Per Parquet file of the stores' partitions: its columns as Categoricals of text."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    for store in stores:
        folder = partition_dir(directory, store)
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.parquet")):
            name = path.relative_to(directory).as_posix()
            try:
                table = ds.dataset(path, format="parquet").to_table()
            except (OSError, ValueError, pa.ArrowException) as exc:
                raise DataError(f"{path}: cannot read: {exc}") from None
            missing = [c for c in SALES_COLUMNS if c != PARTITION_KEY and c not in table.column_names]
            if missing:
                raise DataError(f"{path}: missing column(s): {', '.join(missing)}")
            part: dict[str, pd.Series] = {}
            source.seen.update(table.column_names)
            for col in columns:
                if col in table.column_names:
                    part[col] = _arrow_text(table[col])
                elif col == PARTITION_KEY:  # the directory says whose rows these are
                    part[col] = pd.Series(pd.Categorical.from_codes(np.zeros(table.num_rows, np.int8), [store]))
                else:  # an optional column this file lacks: every row missing
                    part[col] = pd.Series(pd.Categorical.from_codes(np.full(table.num_rows, -1, np.int8), pd.Index([], dtype=object)))
            source.files.append(name)
            source.file_of.append(np.full(table.num_rows, len(source.files) - 1, dtype=np.int32))
            source.line_of.append(np.arange(2, table.num_rows + 2, dtype=np.int64))
            part["_partition"] = pd.Series(pd.Categorical.from_codes(np.zeros(table.num_rows, np.int8), [store]))
            yield part


def _csv_parts(
    path: Path, wanted: set[str], columns: list[str], dtype: object, source: _Source, long_lines: dict[int, str]
) -> Iterator[dict[str, pd.Series]]:
    """sales.csv in chunks, only the rows of the ``wanted`` stores (their file lines noted)."""
    source.files = [path.name]
    parsed = 0  # data rows the parser returned so far (long lines are not among them)
    names = list(dict.fromkeys([PARTITION_KEY, *columns]))  # the store column decides which rows
    for chunk in _chunks(path, names, dtype, None, long_lines):
        store = chunk[PARTITION_KEY]
        if isinstance(store.dtype, pd.CategoricalDtype):
            mine = np.asarray(store.cat.categories.astype(str).str.strip().isin(wanted), dtype=bool)
            keep = np.append(mine, False)[store.cat.codes.to_numpy()]
        else:
            keep = store.astype(str).str.strip().isin(wanted).to_numpy(dtype=bool)
        rows = np.flatnonzero(keep)
        source.line_of.append(rows.astype(np.int64) + parsed)  # parsed row numbers; lines later
        source.file_of.append(np.zeros(len(rows), dtype=np.int32))
        parsed += len(chunk)
        yield {col: chunk[col].iloc[rows] for col in columns}


def _parsed_to_lines(parsed: np.ndarray, long_lines: dict[int, str]) -> np.ndarray:
    """File line of each parsed data row (0-based among the rows the parser returned): row + 2,
    plus the long lines (skipped by the parser) before it."""
    if not long_lines:
        return parsed + 2
    skipped = np.array(sorted(long_lines), dtype=np.int64)
    before = skipped - 2 - np.arange(len(skipped))  # parsed rows ahead of each skipped line
    return parsed + 2 + np.searchsorted(before, parsed, side="right")


def _build_table(parts: Iterable[dict[str, pd.Series]], columns: list[str], caseless: tuple[str, ...]) -> tuple[_Table, list[str]]:
    """One _Table of all parts (the same text gets the same code in every part); the columns
    pandas typed (their text lost: read again as plain text)."""
    builders = {col: _Distinct(caseless=col in caseless) for col in columns}
    typed: list[str] = []
    for part in parts:
        typed += [col for col in columns if col not in typed and not builders[col].add(part[col])]
    table_columns = {col: builders[col].finish() for col in columns}
    return _Table(len(table_columns[columns[0]].codes), table_columns), typed


def _check_sales(check: _RowChecker, known: set[str] | None) -> tuple[pd.DataFrame, list[Reject], list[Reject], list[Reject]]:
    """The checks of pricing.core.data's sales reader, in its order; (frame, rejects,
    duplicates, unknown-sku rejects) with rows numbered 0.. (remapped by the caller)."""
    for col in ("store", "sku"):
        check.required_text(col)
    check.identifier("store")
    check.sku()
    values: dict[str, object] = {
        "date": _dates(check),
        "store": check.text("store"),
        "sku": check.text("sku"),
        "units": _whole(check.integer("units", minimum=0)),
        "price_cents": _whole(check.integer("price_cents", minimum=1)),
        "promo": _promo(check),
    }
    if "stock" in check.table.columns:
        values["stock"] = check.integer("stock", minimum=0, optional=True)
    if "_partition" in check.table.columns:  # a Parquet file's store column must match its directory
        store = check.table.columns["store"].codes
        store_text = check.text("store").fillna("").to_numpy(dtype=object)
        partition_text = check.text("_partition").fillna("").to_numpy(dtype=object)
        partition = check.table.columns.pop("_partition").codes
        wrong = (store >= 0) & (store_text[store] != partition_text[partition])
        if wrong.any():
            reasons = np.full(check.table.rows, None, dtype=object)
            reasons[wrong] = [
                f"store '{s}' is not the store of its partition '{PARTITION_KEY}={p}'"
                for s, p in zip(store_text[store[wrong]], partition_text[partition[wrong]], strict=True)
            ]
            check.flag_rows(wrong, reasons)
    rejects = check.rejects()
    duplicates = check.exact_duplicates()
    unknown = check.unknown_skus(known)
    return check.frame(values, categorical=("store", "sku")), rejects, duplicates, unknown


_DUPLICATE_OF = re.compile(r"exact duplicate of line (\d+)")


def _placed(rejects: list[Reject], files: list[str], file_of: np.ndarray, line_of: np.ndarray) -> list[Reject]:
    """Rejects of a combined table (row numbers 2.. over all parts) as file:line of their source."""
    out = []
    for reject in rejects:
        at = reject.row - 2
        reason = reject.reason
        match = _DUPLICATE_OF.fullmatch(reason)
        if match:
            first = int(match.group(1)) - 2
            same_file = file_of[first] == file_of[at]
            reason = f"exact duplicate of line {line_of[first]}" + ("" if same_file else f" of {files[file_of[first]]}")
        out.append(Reject(files[file_of[at]], int(line_of[at]), reason))
    return out


def load_store_sales(directory: Path | str, stores: Sequence[str], *, known: set[str] | None = None) -> Loaded:
    """The sales of ``stores`` only, from sales/store=<id>/*.parquet or sales.csv (see the module
    docstring), checked like pricing.core.data's sales reader; with ``known`` (products' SKUs),
    rows of other SKUs are rejected too. ``rows``: the rows of those stores read."""
    directory = Path(directory)
    if not directory.is_dir():
        raise DataError(f"{directory}: not a directory")
    stores = list(dict.fromkeys(stores))  # each store once
    for store in stores:
        problem = id_problem(store, "store")
        if problem is not None:
            raise DataError(f"{problem} (asked for its sales)")
    has_csv, has_parquet = (directory / SALES_FILE).exists(), (directory / SALES_DIR).is_dir()
    if has_csv and has_parquet:
        raise DataError(f"{directory}: has both {SALES_FILE} and {SALES_DIR}/; keep one")
    if not has_csv and not has_parquet:
        raise DataError(f"{directory / SALES_FILE}: file not found (nor {SALES_DIR}/store=<id>/*.parquet: a chain needs one)")
    caseless = ("promo",)
    source = _Source()
    long_lines: dict[int, str] = {}
    if has_parquet:
        columns = SALES_COLUMNS + SALES_OPTIONAL
        table, _ = _build_table(_parquet_parts(directory, stores, columns, source), [*columns, "_partition"], caseless)
        for col in SALES_OPTIONAL:
            if col not in source.seen:  # no file has it: the frame has no such column either
                table.columns.pop(col)
        file_of, line_of = source.finish()
    else:
        path = directory / SALES_FILE
        header = list(pd.read_csv(path, nrows=0).columns) if path.exists() else []
        missing = [c for c in SALES_COLUMNS if c not in header]
        if missing:
            raise DataError(f"{path}: missing column(s): {', '.join(missing)}")
        columns = SALES_COLUMNS + [c for c in SALES_OPTIONAL if c in header]
        wanted = set(stores)
        table, typed = _build_table(_csv_parts(path, wanted, columns, "category", source, long_lines), columns, caseless)
        if typed:  # pandas typed some column's categories: read the file again, as plain text
            again, _ = _build_table(_csv_parts(path, wanted, typed, object, _Source(), {}), typed, caseless)
            for col in typed:
                table.columns[col] = again.columns[col]
        file_of, parsed = source.finish()
        line_of = _parsed_to_lines(parsed, long_lines)
    check = _RowChecker(table, "sales")
    frame, rejects, duplicates, unknown = _check_sales(check, known)
    files = source.files
    rejects = _placed(rejects, files, file_of, line_of)
    if long_lines:  # in line order among the others (sales.csv is the one file then)
        rejects = sorted(rejects + [Reject(SALES_FILE, line, why) for line, why in long_lines.items()], key=lambda r: r.row)
    rejects += _placed(unknown, files, file_of, line_of)
    duplicates = _placed(duplicates, files, file_of, line_of)
    frame.index = pd.Index(line_of[frame.index.to_numpy() - 2], name="row")
    return Loaded(frame, rejects, table.rows + len(long_lines), duplicates)


def read_store_sales(directory: Path | str, stores: Sequence[str], *, known: set[str] | None = None) -> pd.DataFrame:
    """The good sales rows of ``stores`` (the frame of ``load_store_sales``; the sales reader's
    columns and dtypes: date, store and sku Categoricals, units, price_cents, promo, stock when
    the files have it)."""
    return load_store_sales(directory, stores, known=known).frame


# ---- the small parts, together ----------------------------------------------------------------


@dataclass
class ChainData:
    """A chain's stores, products, zone prices and labels, validated; never its sales (read those
    per zone with ``sales``)."""

    directory: Path
    stores: pd.DataFrame
    products: pd.DataFrame
    zone_prices: pd.DataFrame
    labels: pd.DataFrame
    rejects: list[Reject]
    #: Data rows read per file name (stores.csv, products.csv, zone_prices.csv, labels.csv: those read).
    rows_read: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path | str, *, require_labels: bool = True) -> ChainData:
        """Load stores.csv, products.csv, zone_prices.csv (if present) and labels.csv (if
        ``require_labels`` or present). A chain without one valid store is a DataError."""
        directory = Path(directory)
        if not directory.is_dir():
            raise DataError(f"{directory}: not a directory")
        stores = load_stores(directory / STORES_FILE)
        if not len(stores.frame):
            first = f": {stores.rejects[0]}" if stores.rejects else ""
            raise DataError(f"{directory / STORES_FILE}: no valid store{first}")
        products = load_products(directory / PRODUCTS_FILE)
        known = set(products.frame["sku"].astype(str))
        zones = set(stores.frame["zone"].astype(str))
        prices = _load_zone_prices(directory / ZONE_PRICES_FILE, zones, known)
        rows_read = {STORES_FILE: stores.rows, PRODUCTS_FILE: products.rows}
        if (directory / ZONE_PRICES_FILE).exists():
            rows_read[ZONE_PRICES_FILE] = prices.rows
        rejects = stores.rejects + products.rejects + prices.rejects
        labels = empty_labels()
        if require_labels or (directory / LABELS_FILE).exists():
            loaded, unknown = _load_labels(directory / LABELS_FILE, known)
            labels, rows_read[LABELS_FILE] = loaded.frame, loaded.rows
            ids = set(stores.stores)
            foreign = ~labels["store"].isin(ids).to_numpy(dtype=bool)
            rejects += loaded.rejects + unknown
            rejects += [
                Reject(LABELS_FILE, int(row), f"store '{store}' is not in {STORES_FILE}")
                for row, store in zip(labels.index[foreign], labels["store"][foreign], strict=True)
            ]
            labels = labels[~foreign]
        return cls(directory, stores.frame, products.frame, prices.frame, labels, rejects, rows_read)

    @property
    def store_ids(self) -> list[str]:
        """Store ids in stores.csv order."""
        return [str(s) for s in self.stores["store"]]

    @property
    def zones(self) -> dict[str, list[str]]:
        """Zone -> its stores (``chain_zones``)."""
        return chain_zones(self.stores)

    def zone_of(self, store: str) -> str:
        """The zone of a store (KeyError for a store not in stores.csv)."""
        match = self.stores.loc[self.stores["store"] == store, "zone"]
        if not len(match):
            raise KeyError(store)
        return str(match.iloc[0])

    def shelf_prices(self, zone: str) -> pd.Series:
        """Today's shelf price of every product in a zone: int64 cents indexed by sku (str), the
        zone's price where zone_prices.csv gives one, else products.price_cents."""
        price = pd.Series(
            self.products["price_cents"].to_numpy(dtype=np.int64),
            index=pd.Index(self.products["sku"].astype(str).to_numpy(dtype=object), name="sku"),
            name="price_cents",
        )
        mine = self.zone_prices[self.zone_prices["zone"] == zone]
        if len(mine):
            price.loc[mine["sku"].astype(str).to_numpy(dtype=object)] = mine["price_cents"].to_numpy(dtype=np.int64)
        return price

    def store_labels(self, store: str) -> pd.DataFrame:
        """The labels of one store."""
        return self.labels[self.labels["store"] == store]

    def sales(self, stores: Sequence[str]) -> Loaded:
        """The sales of some stores of this chain (``load_store_sales``; SKUs not in products
        rejected). A store not in stores.csv is a DataError."""
        unknown = [s for s in stores if s not in set(self.store_ids)]
        if unknown:
            raise DataError(f"{self.directory / STORES_FILE}: no store {', '.join(repr(s) for s in unknown[:5])}")
        return load_store_sales(self.directory, stores, known=set(self.products["sku"].astype(str)))
