"""Data contracts: the one place that defines and validates products, sales, labels and competitors.

Each loader reads a CSV (or Parquet) file, checks every row, and returns the good rows as a
typed DataFrame together with the rejected ones (file, row number, reason). Rejected rows never
reach the demand model or the optimizer. Row numbers are the line numbers a person sees in the
file: the header is line 1, the first data row line 2. A row with several problems is rejected
once, with the first. Fields are stripped of surrounding whitespace before anything else.

SKUs are strings, always: "0123" stays "0123".

Ids that become MQTT topic levels (label_id, gateway and store, in labels and sales) must match
``ID_PATTERN``: 1 to 64 of ``A-Z a-z 0-9 . _ -`` (a ``#`` or ``+`` is a topic wildcard, a ``/``
a level separator, a NUL byte a protocol error that drops the connection). A SKU never becomes a
topic level, so it may hold any printable character ("AB/12+3" is a SKU), but at most
``SKU_MAX_LENGTH`` (64) characters (the engine database's columns) and no control characters
(a NUL byte cannot be stored in PostgreSQL, a line break splits a CSV or log line): see
``CONTROL_CHARACTERS``. Reasons: ``label_id has a character other than A-Z a-z 0-9 . _ - ...``,
``gateway is 65 characters long, at most 64 ...``, ``sku has a control character: 'A\\x00B'``
(a shown value has its control characters escaped and is cut at 80 characters).

The frames (index: ``row``, the file line number of each row, int64):

- products: sku, name, category, brand, unit (and family, ladder, tier when present) "string"
  (pandas StringDtype; empty optional fields are <NA>); size Float64; cost_cents Int64 (<NA>
  when empty); price_cents int64.
- sales: date datetime64[ns] (so a date outside 1677-09-22 .. 2262-04-11 is rejected); store
  and sku ``category``: pandas Categoricals whose categories are the (str) texts of the kept
  rows, each once (in no promised order), so ``isin``, ``cat.codes`` and ``groupby`` work
  on 50,000 SKUs, not 18 M strings; units int64; price_cents int64; promo bool; stock (only when
  the file has the column) Int64, <NA> when empty.
- labels: label_id, store, gateway, sku, tag_type "string".
- competitors (optional file): date datetime64[ns]; sku, competitor "string"; price_cents
  int64 (> 0): a competitor's shelf price for the SKU seen on that date.

The optional products columns link SKUs for the pricing rules (an empty field: no link):

- ``family``: a text id; every SKU with the same family shares one price (line pricing: the
  flavours of one product line).
- ``ladder``: a text id; the SKUs of one ladder are sizes of one product line, ordered by
  ``size``: a larger pack costs more in total and less per unit. A row with a ladder needs a
  size > 0 (else it is rejected). Sizes within a ladder that repeat or mix units are not row
  errors: the engine reports such a ladder.
- ``tier``: for a private-label product, the SKU of the national-brand product it is priced
  against (it sells at least the rules' tier gap below it). A row whose tier names its own SKU,
  or a SKU that is not a kept row of products.csv, is rejected (checked after every other
  check, and again until no tier points at a rejected row).

A CSV row with more fields than the header has columns (a trailing comma counts) is rejected with
``7 fields, the header has 6 columns``, before any other check: its fields are likely shifted. (A
row with fewer fields has the missing ones empty.)

Product reject reasons besides the common ones: ``size is empty (ladder 'L' needs a size > 0)``,
``size must be finite and > 0 for ladder 'L': 'S'``, ``tier 'T' is the product's own sku``,
``tier 'T' is not in products.csv``. Competitors: an empty sku or competitor, a bad date, a
price_cents that is not a whole number >= 1, the same (date, sku, competitor) again
(``duplicate observation ... (first occurrence kept)``), and, in ``load_store``, a sku that is
not in products.csv. Sales: a row whose every column equals an earlier kept row's is an exact
duplicate: dropped (the first kept) and listed in ``Loaded.duplicates`` / ``StoreData.duplicates``
with ``exact duplicate of line N``, not in the rejects (see docs/data.md). ``competitor_reference`` turns the observations into one reference price
per SKU (each competitor's latest price, then the lowest of those).

Two more files build on the reader and the _RowChecker here: receipts.csv, which a store gives
instead of sales.csv (transaction lines, checked like sales rows and netted into the same daily
sales frame: pricing/core/receipts.py; a directory with both is a ``DataError``), and the optional
assortment.csv (when each SKU is listed: pricing/core/listing.py, whose ``complete_days`` adds the
zero-sales days before training). ``load_store`` (pricing/core/store_data.py) reads them all; ``StoreData`` says which file the
sales came from (``sales_file``), what netting did (``receipt_counts``) and the listing.

How a file is read (this is what makes a 50,000-SKU year of sales, 18 M rows, load in seconds
and a few hundred MB): every column is read as a categorical, so each distinct text is stored
once and a row is an integer code per column. Whitespace stripping, parsing and checking then run
on the distinct values only, and the results reach the rows through the codes; Python objects
are built only for distinct values and for rejected rows.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pricing.core.ids import (  # noqa: F401  (re-exported: ids are part of the data contracts)
    CONTROL_CHARACTERS,
    ID_CHARACTERS,
    ID_MAX_LENGTH,
    ID_PATTERN,
    SKU_MAX_LENGTH,
    id_problem,
    shown,
    sku_problem,
)

PRODUCT_COLUMNS = ["sku", "name", "category", "brand", "size", "unit", "cost_cents", "price_cents"]
PRODUCT_OPTIONAL = ["family", "ladder", "tier"]
SALES_COLUMNS = ["date", "store", "sku", "units", "price_cents", "promo"]
SALES_OPTIONAL = ["stock"]
LABEL_COLUMNS = ["label_id", "store", "gateway", "sku", "tag_type"]
COMPETITOR_COLUMNS = ["date", "sku", "competitor", "price_cents"]
TAG_TYPES = ("1.54", "2.9", "4.2")
_MAX_WHOLE = 2**53  # largest magnitude a parsed number holds exactly

#: An id that becomes an MQTT topic level (label_id, gateway, store): match it with fullmatch.

# File names inside a store data directory.
PRODUCTS_FILE = "products.csv"
SALES_FILE = "sales.csv"
LABELS_FILE = "labels.csv"
COMPETITORS_FILE = "competitors.csv"  # optional
RECEIPTS_FILE = "receipts.csv"  # instead of sales.csv: transaction lines (pricing/core/receipts.py)
ASSORTMENT_FILE = "assortment.csv"  # optional: when each SKU is listed (pricing/core/listing.py)


class DataError(Exception):
    """A data file a user gave us cannot be used at all (missing, unreadable, missing columns)."""


@dataclass(frozen=True)
class Reject:
    file: str
    row: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.row}: {self.reason}"


@dataclass
class Loaded:
    """Good rows and the rejected ones, with reasons.

    ``rows``: the data rows read from the file (kept + rejected + duplicates). ``duplicates``: the
    exact duplicate rows dropped (sales only: every column equal, after stripping, to an earlier
    kept row; the first is kept), each with the reason ``exact duplicate of line N``. They are
    not in ``rejects``.
    """

    frame: pd.DataFrame
    rejects: list[Reject] = field(default_factory=list)
    rows: int = 0
    duplicates: list[Reject] = field(default_factory=list)


# ---- reading: every column as codes into its distinct (stripped) texts ----------------------

_CHUNK_ROWS = 1 << 21  # rows per read_csv chunk: bounds the parser's memory (~75 MB of sales text)
# pandas 3.1 infers numbers and booleans from the categories of dtype="category" (so "0123" would
# become 123) unless a thousands separator is set; read_csv parses no numbers here, so the
# separator is otherwise unused. A column whose categories still come back typed (booleans, or
# another pandas) is read again as plain text: exact, just slower (~10 s for an 18 M-row column),
# unless only its lower case matters (promo).
_CSV_OPTIONS = {"na_filter": False, "low_memory": False, "chunksize": _CHUNK_ROWS, "thousands": "\x1f"}
# What pandas raises for a file it cannot read or parse (ParserError, EmptyDataError and
# UnicodeDecodeError are ValueErrors; ImportError: no Parquet engine installed).
_UNREADABLE = (OSError, ValueError, ImportError)


@dataclass
class _Column:
    """One column of a file: per row, an index into the column's distinct texts."""

    codes: np.ndarray  # int16 or int32 per row; -1: the row had no such field
    text: pd.Series  # "string": the distinct stripped texts, then <NA> (what code -1 picks)


@dataclass
class _Table:
    rows: int
    columns: dict[str, _Column]
    #: Rows (0-based) of a CSV with more fields than its header, and the reason for each: they hold
    #: no values (every column's code -1) and are rejected before any other check.
    long_rows: dict[int, str] = field(default_factory=dict)


class _Distinct:
    """Builds a _Column chunk by chunk: the same stripped text gets the same code in every chunk.

    ``caseless``: only the lower case of the text matters, so categories pandas typed as booleans
    (every text of the chunk a spelling of true or false) are as good as text.
    """

    def __init__(self, caseless: bool = False) -> None:
        self.caseless = caseless
        self.code: dict[str, int] = {}
        self.parts: list[np.ndarray] = []
        self.last: tuple[pd.Index, np.ndarray] | None = None  # the previous chunk's texts and codes

    def add(self, values: pd.Series) -> bool:
        """Add a chunk of the column; False if pandas typed its categories (the text is lost)."""
        if isinstance(values.dtype, pd.CategoricalDtype):
            distinct = values.cat.categories
            if self.caseless and pd.api.types.is_bool_dtype(distinct):
                distinct = pd.Index(np.where(distinct, "true", "false"))
            elif not pd.api.types.is_string_dtype(distinct):
                return False
            codes = values.cat.codes.to_numpy()
        else:
            codes, distinct = pd.factorize(values)
        if self.last is not None and self.last[0].equals(distinct):
            local = self.last[1]  # the usual case: the same SKUs, dates, prices as the chunk before
        else:
            code = self.code
            local = np.array([code.setdefault(str(text).strip(), len(code)) for text in distinct.tolist()] + [-1])
            # Index -1 (a missing field) picks the appended -1.
            local = local.astype(np.int16 if len(code) < 2**15 else np.int32)
            self.last = (distinct, local)
        self.parts.append(local[codes])
        return True

    def finish(self) -> _Column:
        codes = np.concatenate(self.parts) if self.parts else np.empty(0, dtype=np.int16)
        return _Column(codes, pd.Series([*self.code, None], dtype="string"))


_LONG_LINE = re.compile(r"line (\d+): expected (\d+) fields, saw (\d+)")


def _chunks(
    path: Path, names: list[str], dtype: object, parquet: pd.DataFrame | None, long_lines: dict[int, str]
) -> Iterator[pd.DataFrame]:
    """The file's columns ``names`` in chunks of rows, in file order. A CSV line with more fields
    than the header is not a row of the chunks: its file line number goes into ``long_lines``
    with the reason.

    read_csv checks the fields per line only when it reads every column (``usecols`` would cut
    such a line to fit, silently), so every column is read and ``names`` taken from the chunk;
    the C parser reports each long line in a ParserWarning (no Python per row)."""
    try:
        if parquet is not None:
            yield parquet[names].astype("string")
            return
        with pd.read_csv(path, dtype=dtype, on_bad_lines="warn", **_CSV_OPTIONS) as reader:
            while True:
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", pd.errors.ParserWarning)
                    chunk = next(reader, None)
                _note_long_lines(path, caught, long_lines)
                if chunk is None:
                    return
                yield chunk[names]
    except _UNREADABLE as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None


def _note_long_lines(path: Path, caught: list[warnings.WarningMessage], long_lines: dict[int, str]) -> None:
    """The parser's "Skipping line N: expected E fields, saw S" into ``long_lines``; any other
    warning is passed on."""
    for warning in caught:
        if not issubclass(warning.category, pd.errors.ParserWarning):
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
            continue
        found = _LONG_LINE.findall(str(warning.message))
        if not found:
            raise DataError(f"{path}: cannot read: {str(warning.message).strip()}")
        for line, expected, saw in found:
            long_lines[int(line)] = f"{saw} fields, the header has {expected} columns"


def _with_long_rows(columns: dict[str, _Column], rows: int, long_lines: dict[int, str]) -> tuple[int, dict[int, str]]:
    """Put the long lines back as rows without values (code -1), so that every row keeps its file
    line number (row + 2); the rows count and the long rows (0-based) with their reasons."""
    if not long_lines:
        return rows, {}
    lines = np.array(sorted(long_lines), dtype=np.int64)
    total = rows + len(lines)
    at = np.clip(lines - 2, 0, total - 1)  # 0-based row of each long line among all rows
    before = np.clip(at - np.arange(len(lines)), 0, rows)  # where it goes among the rows read
    for column in columns.values():
        column.codes = np.insert(column.codes, before, -1)
    placed = before + np.arange(len(lines))
    return total, {int(row): long_lines[int(line)] for row, line in zip(placed, lines, strict=True)}


def _header(path: Path) -> tuple[list[str], pd.DataFrame | None]:
    """The file's column names (and, for Parquet, the whole table: it is read at once)."""
    if not path.exists():
        raise DataError(f"{path}: file not found")
    try:
        if path.suffix == ".parquet":
            parquet = pd.read_parquet(path)
            return [str(c) for c in parquet.columns], parquet
        return list(pd.read_csv(path, nrows=0).columns), None
    except _UNREADABLE as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None


def _read_table(path: Path, required: list[str], optional: list[str], caseless: tuple[str, ...] = ()) -> _Table:
    header, parquet = _header(path)
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"{path}: missing column(s): {', '.join(missing)}")
    keep = required + [c for c in optional if c in header]
    builders: dict[str, _Distinct] = {}
    long_lines: dict[int, str] = {}
    todo = keep
    for dtype in ("category", object):  # object: plain text, for columns pandas typed
        for name in todo:
            builders[name] = _Distinct(caseless=name in caseless)
        typed: list[str] = []
        for chunk in _chunks(path, todo, dtype, parquet, long_lines):  # the same long lines each time
            typed += [name for name in todo if name not in typed and not builders[name].add(chunk[name])]
        todo = typed
        if not todo:
            break
    columns = {name: builders[name].finish() for name in keep}
    rows, long_rows = _with_long_rows(columns, len(columns[keep[0]].codes), long_lines)
    return _Table(rows, columns, long_rows)


# ---- checking: on distinct values, broadcast to rows through the codes ----------------------


def _code_dtype(n: int) -> type[np.signedinteger]:
    """The codes dtype pandas uses for n categories."""
    return next(t for t in (np.int8, np.int16, np.int32, np.int64) if n < np.iinfo(t).max)


class _RowChecker:
    """Collects per-row problems; a row with any problem is rejected with its first reason.

    A check is a per-value mask (and reason) over a column's distinct texts: a row fails it when
    the value its code picks does.
    """

    def __init__(self, table: _Table, file: str) -> None:
        self.table = table
        self.file = file
        self.bad = np.zeros(table.rows, dtype=bool)
        self.checks: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # codes, mask, reasons
        if table.long_rows:  # first: a row with more fields than the header has no values
            reasons = list(dict.fromkeys(table.long_rows.values()))
            codes = np.zeros(table.rows, dtype=_code_dtype(len(reasons) + 1))
            rows = np.fromiter(table.long_rows, dtype=np.int64, count=len(table.long_rows))
            codes[rows] = [reasons.index(reason) + 1 for reason in table.long_rows.values()]
            self.flag(codes, np.array([False] + [True] * len(reasons)), pd.Series([None, *reasons], dtype=object))

    def text(self, col: str) -> pd.Series:
        """The column's distinct stripped texts (<NA> last: a missing field)."""
        return self.table.columns[col].text

    def flag(self, col: str | np.ndarray, mask: pd.Series | np.ndarray, reason: str | pd.Series) -> None:
        """Reject rows whose value of ``col`` (a column, or per-row codes into it) is in ``mask``."""
        codes = self.table.columns[col].codes if isinstance(col, str) else col
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return
        reasons = np.full(len(mask), None, dtype=object)
        reasons[mask] = reason if isinstance(reason, str) else np.asarray(reason, dtype=object)[mask]
        self.bad |= mask[codes]
        self.checks.append((codes, mask, reasons))

    def flag_rows(self, rows: np.ndarray, reason: str | np.ndarray) -> None:
        """Reject the rows where the per-row mask ``rows`` is set (checks across columns).

        ``reason``: one text, or one per row (only the flagged rows' are used). Builds arrays of
        one entry per row: meant for products and competitors, not for 18 M sales rows.
        """
        self.flag(np.arange(self.table.rows), rows, reason)

    def required_text(self, col: str) -> None:
        self.flag(col, self.text(col).fillna("") == "", f"{col} is empty")

    def _by_value(self, col: str, problem: object) -> None:
        """Reject rows whose (non-empty) value of ``col`` has a ``problem(text, ...)``."""
        text = self.text(col).fillna("")
        reasons = pd.Series([None if t == "" else problem(t) for t in text.tolist()], dtype=object)
        self.flag(col, reasons.notna().to_numpy(), reasons)

    def identifier(self, col: str) -> None:
        """An id that becomes an MQTT topic level (ID_PATTERN); empty values are left to required_text."""
        text = self.text(col).fillna("")
        bad = ~text.str.fullmatch(ID_PATTERN.pattern).fillna(False).astype(bool) & (text != "")
        if bool(bad.any()):  # reasons only for the distinct values that fail
            self._by_value(col, lambda t: id_problem(t, col))

    def sku(self, col: str = "sku") -> None:
        """A SKU: any printable text of up to SKU_MAX_LENGTH characters."""
        text = self.text(col).fillna("")
        long = (text.str.len() > SKU_MAX_LENGTH).fillna(False).astype(bool)
        control = text.str.contains(CONTROL_CHARACTERS.pattern, regex=True).fillna(False).astype(bool)
        if bool((long | control).any()):
            self._by_value(col, sku_problem)

    def integer(self, col: str, *, minimum: int | None = None, optional: bool = False) -> pd.Series:
        """Whole numbers (Int64 per distinct value, <NA> where empty or rejected)."""
        text = self.text(col).fillna("")
        empty = text == ""
        number = pd.to_numeric(text.where(~empty, None), errors="coerce")
        # Non-finite ("inf") or beyond exact float integers (2**53) would become garbage int64.
        huge = number.notna() & ~(number.abs() < _MAX_WHOLE).fillna(False)
        self.flag(col, huge, col + " is not a whole number in range: '" + text + "'")
        whole = number.notna() & ~huge & (number == np.floor(number.fillna(0)))
        bad = ~empty & ~whole
        self.flag(col, bad, col + " is not a whole number: '" + text + "'")
        if not optional:
            self.flag(col, empty, f"{col} is empty")
        if minimum is not None:
            self.flag(col, whole & (number < minimum), f"{col} must be >= {minimum}")
        return number.where(whole).astype("Int64")

    def unique(self, col: str) -> None:
        """Reject every row repeating an earlier row's (non-empty) value."""
        codes = self.table.columns[col].codes
        repeat = np.ones(len(codes), dtype=bool)
        repeat[np.unique(codes, return_index=True)[1]] = False
        text = self.text(col).fillna("")
        self.flag(np.where(repeat, codes, -1), text != "", f"duplicate {col} '" + text + "' (first occurrence kept)")

    def rejects(self) -> list[Reject]:
        rows = np.flatnonzero(self.bad)
        reasons = np.empty(len(rows), dtype=object)
        pending = np.arange(len(rows))
        for codes, mask, why in self.checks:  # in the order flagged: the first reason wins
            value = codes[rows[pending]]
            hit = mask[value]
            reasons[pending[hit]] = why[value[hit]]
            pending = pending[~hit]
        return [Reject(self.file, int(row) + 2, str(reason)) for row, reason in zip(rows, reasons)]

    def exact_duplicates(self) -> list[Reject]:
        """Drop the rows not rejected yet whose every column equals an earlier such row's.

        Call after ``rejects()``: the dropped rows are marked bad but get no reject reason; they
        are returned with ``exact duplicate of line N`` (N: the first such row, which is kept).
        Rows are compared by their codes (one per distinct stripped text), packed into one int64
        key when the columns' sizes allow it (a sort, ~2 s for 18 M rows), else by pandas.
        """
        good = np.flatnonzero(~self.bad)
        if len(good) < 2:
            return []
        codes = [column.codes[good] for column in self.table.columns.values()]
        sizes = [len(column.text) + 1 for column in self.table.columns.values()]  # codes -1 .. len-1
        if int(np.prod([float(n) for n in sizes])) < 2**62:
            key = np.zeros(len(good), dtype=np.int64)
            for code, n in zip(codes, sizes, strict=True):
                np.multiply(key, n, out=key)
                np.add(key, code, out=key)
                np.add(key, 1, out=key)
            ordered = np.sort(key)
            repeated = ordered[1:][ordered[1:] == ordered[:-1]]
            if len(repeated) == 0:
                return []
            involved = np.asarray(pd.Series(key).isin(np.unique(repeated)), dtype=bool)
        else:
            involved = pd.DataFrame(dict(enumerate(codes)), copy=False).duplicated(keep=False).to_numpy()
            if not involved.any():
                return []
        rows = good[involved]
        sub = pd.DataFrame({i: code[involved] for i, code in enumerate(codes)})
        group = sub.groupby(list(sub.columns), sort=False).ngroup().to_numpy()
        first = pd.Series(rows).groupby(group).transform("min").to_numpy()
        repeat = rows != first
        self.bad[rows[repeat]] = True
        return [
            Reject(self.file, int(row) + 2, f"exact duplicate of line {int(of) + 2}")
            for row, of in zip(rows[repeat], first[repeat], strict=True)
        ]

    def unknown_skus(self, known: set[str] | None) -> list[Reject]:
        """Reject the rows not rejected yet whose sku is not in ``known`` (None: no check)."""
        if known is None:
            return []
        text = self.text("sku")
        codes = self.table.columns["sku"].codes
        rows = np.flatnonzero(~np.asarray(text.isin(known), dtype=bool)[codes] & ~self.bad)
        self.bad[rows] = True
        return [Reject(self.file, int(row) + 2, f"sku '{text.iloc[codes[row]]}' is not in {PRODUCTS_FILE}") for row in rows]

    def frame(self, values: dict[str, pd.Series | np.ndarray], categorical: tuple[str, ...] = ()) -> pd.DataFrame:
        """The rows not rejected; each column's values per distinct text, taken by the row codes.

        ``categorical`` columns become pandas Categoricals of their texts instead. The last step:
        it frees the codes as it goes, so a large file is never held twice.
        """
        keep = np.flatnonzero(~self.bad) if self.bad.any() else None
        rows = len(self.bad) if keep is None else len(keep)
        index = pd.RangeIndex(2, rows + 2, name="row") if keep is None else pd.Index(keep + 2, name="row")
        self.checks.clear()
        data: dict[str, object] = {}
        for col, per_value in values.items():
            codes = self.table.columns.pop(col).codes
            codes = codes if keep is None else codes[keep]
            if col in categorical:
                data[col] = _categorical(codes, per_value)
            elif isinstance(per_value, pd.Series):
                data[col] = per_value.array.take(codes)
            else:
                data[col] = per_value[codes]
        return pd.DataFrame(data, index=index, copy=False)


def _categorical(codes: np.ndarray, text: pd.Series) -> pd.Categorical:
    """Rows as a Categorical of the texts they use (codes -1: <NA>), without a string per row."""
    n = len(text) - 1  # the last text is the missing field's <NA>
    present = codes if len(codes) == 0 or codes.min() >= 0 else codes[codes >= 0]
    used = np.bincount(present, minlength=n)[:n] > 0
    remap = np.full(n + 1, -1, dtype=_code_dtype(int(used.sum())))
    remap[:n][used] = np.arange(used.sum())
    categories = pd.Index(text.iloc[:n][used].to_numpy(dtype=object), dtype=str)
    return pd.Categorical.from_codes(remap[codes], dtype=pd.CategoricalDtype(categories), validate=False)


def _whole(number: pd.Series) -> np.ndarray:
    """Int64 per value as int64; <NA> (empty or rejected) becomes 0, as it never reaches a kept row."""
    return number.fillna(0).to_numpy(dtype=np.int64)


# ---- the three files ------------------------------------------------------------------------


def load_products(path: Path | str) -> Loaded:
    """Products: sku, name, category, brand, size, unit, cost_cents (may be empty), price_cents."""
    path = Path(path)
    check = _RowChecker(_read_table(path, PRODUCT_COLUMNS, PRODUCT_OPTIONAL), path.name)
    for col in ("sku", "name", "category"):
        check.required_text(col)
    check.sku()
    price = check.integer("price_cents", minimum=1)
    cost = check.integer("cost_cents", minimum=0, optional=True)
    size_text = check.text("size").fillna("")
    size = pd.to_numeric(size_text.where(size_text != "", None), errors="coerce")
    check.flag("size", (size_text != "") & size.isna(), "size is not a number: '" + size_text + "'")
    check.unique("sku")
    if "ladder" in check.table.columns:
        _check_ladder_sizes(check, size_text, size)
    if "tier" in check.table.columns:
        _check_tiers(check)
    values = {col: check.text(col) for col in check.table.columns}
    values.update(price_cents=_whole(price), cost_cents=cost, size=size.astype("Float64"))
    for col in PRODUCT_OPTIONAL:
        if col in values:
            values[col] = values[col].replace("", pd.NA)
    rejects = check.rejects()
    return Loaded(check.frame(values), rejects, check.table.rows)


def _per_row(check: _RowChecker, col: str, per_value: pd.Series | np.ndarray, dtype: object = None) -> np.ndarray:
    """A per-distinct-value array of ``col`` (its texts' order, <NA> last) taken for every row."""
    values = per_value.to_numpy(dtype=dtype) if isinstance(per_value, pd.Series) else np.asarray(per_value, dtype)
    return values[check.table.columns[col].codes]


def _check_ladder_sizes(check: _RowChecker, size_text: pd.Series, size: pd.Series) -> None:
    """A row with a ladder needs a size > 0: the ladder orders its SKUs by size."""
    ladder = check.text("ladder").fillna("")
    in_ladder = _per_row(check, "ladder", ladder != "", bool)
    if not in_ladder.any():
        return
    number = size.to_numpy(dtype=np.float64, na_value=np.nan)
    empty = _per_row(check, "size", size_text == "", bool)
    positive = _per_row(check, "size", np.isfinite(number) & (np.nan_to_num(number) > 0))
    ladder_row = _per_row(check, "ladder", ladder, object)
    size_row = _per_row(check, "size", size_text, object)
    check.flag_rows(in_ladder & empty, "size is empty (ladder '" + ladder_row + "' needs a size > 0)")
    reason = "size must be finite and > 0 for ladder '" + ladder_row + "': '" + size_row + "'"
    check.flag_rows(in_ladder & ~empty & ~positive, reason)


def _check_tiers(check: _RowChecker) -> None:
    """A tier names another product that is kept: checked after every other products check.

    Rejecting a row can leave another row's tier pointing at it, so this repeats until stable.
    """
    tier = check.text("tier").fillna("")
    has_tier = _per_row(check, "tier", tier != "", bool)
    if not has_tier.any():
        return
    sku_text = check.text("sku")
    missing = len(sku_text)  # the code of "no such sku"
    # Codes into the sku texts: -1 (a missing field) picks the last text, <NA>.
    sku_codes = np.where(check.table.columns["sku"].codes < 0, len(sku_text) - 1, check.table.columns["sku"].codes)
    # Per distinct tier text, the code of the same sku text (the distinct texts are unique).
    target = pd.Index(sku_text.iloc[:-1].to_numpy(dtype=object)).get_indexer(tier.to_numpy(dtype=object))
    tier_target = _per_row(check, "tier", np.where(target < 0, missing, target))
    tier_row = _per_row(check, "tier", tier, object)
    check.flag_rows(has_tier & (tier_target == sku_codes), "tier '" + tier_row + "' is the product's own sku")
    while True:
        kept = np.zeros(missing + 1, dtype=bool)
        kept[sku_codes[~check.bad]] = True
        dangling = has_tier & ~check.bad & ~kept[tier_target]
        if not dangling.any():
            return
        check.flag_rows(dangling, "tier '" + tier_row + f"' is not in {PRODUCTS_FILE}")


def _dates(check: _RowChecker, col: str = "date", *, optional: bool = False) -> np.ndarray:
    """The ``col`` column's distinct texts as datetime64[ns] (NaT where rejected, or empty when
    ``optional``)."""
    date_text = check.text(col).fillna("")
    return _parse_dates(check, col, date_text, date_text, "YYYY-MM-DD", optional=optional)


def _parse_dates(
    check: _RowChecker, col: str, day_text: pd.Series, shown_text: pd.Series, form: str, *, optional: bool = False
) -> np.ndarray:
    """Per distinct value of ``col``: its day (``day_text``, YYYY-MM-DD) as datetime64[ns].

    A bad day is rejected with ``{col} is not {form}: '{shown_text}'``. ``day_text`` is parsed
    once per distinct day, so many distinct values of few days (timestamps) parse fast.
    """
    codes, days = pd.factorize(day_text.to_numpy(dtype=object))
    parsed = pd.to_datetime(pd.Series(days, dtype=object), format="%Y-%m-%d", errors="coerce")
    # The frame's datetime64[ns] spans 1677-09-21 .. 2262-04-11.
    in_range = parsed.between(pd.Timestamp.min.ceil("D"), pd.Timestamp.max.floor("D")).to_numpy(dtype=bool)
    unparsed = parsed.isna().to_numpy(dtype=bool)  # NaT: not a day at all
    day = parsed.where(in_range).to_numpy(dtype="datetime64[ns]")
    bad_form = unparsed[codes]
    if optional:
        bad_form &= (shown_text != "").to_numpy(dtype=bool)
    check.flag(col, bad_form, _reasons(bad_form, col + f" is not {form}: '", shown_text))
    outside = ~unparsed[codes] & ~in_range[codes]
    check.flag(col, outside, _reasons(outside, col + " is out of range: '", shown_text))
    return day[codes]


def _reasons(mask: np.ndarray, prefix: str, text: pd.Series) -> np.ndarray:
    """``prefix + text + "'"`` where ``mask`` is set (None elsewhere): built for the flagged values only."""
    reasons = np.full(len(mask), None, dtype=object)
    if mask.any():
        reasons[mask] = [f"{prefix}{t}'" for t in text.to_numpy(dtype=object)[mask]]
    return reasons


_TRUTHY, _FALSY = {"1", "true", "yes"}, {"0", "false", "no", ""}


def _promo(check: _RowChecker, col: str = "promo") -> np.ndarray:
    """Per distinct value of ``col``: True for 1/true/yes, False for 0/false/no/empty; else rejected."""
    promo_text = check.text(col).fillna("").str.lower()
    check.flag(col, ~promo_text.isin(_TRUTHY | _FALSY), f"{col} is not a boolean: '" + check.text(col).fillna("") + "'")
    return promo_text.isin(_TRUTHY).to_numpy(dtype=bool)


def _load_sales(path: Path, known: set[str] | None) -> tuple[Loaded, list[Reject]]:
    """load_sales, and the rows rejected after it for a sku not in ``known``."""
    check = _RowChecker(_read_table(path, SALES_COLUMNS, SALES_OPTIONAL, caseless=("promo",)), path.name)
    for col in ("store", "sku"):
        check.required_text(col)
    check.identifier("store")
    check.sku()
    date = _dates(check)
    units = check.integer("units", minimum=0)
    price = check.integer("price_cents", minimum=1)
    promo = _promo(check)
    values = {
        "date": date,
        "store": check.text("store"),
        "sku": check.text("sku"),
        "units": _whole(units),
        "price_cents": _whole(price),
        "promo": promo,
    }
    if "stock" in check.table.columns:
        values["stock"] = check.integer("stock", minimum=0, optional=True)
    rejects = check.rejects()
    duplicates = check.exact_duplicates()
    unknown = check.unknown_skus(known)
    frame = check.frame(values, categorical=("store", "sku"))
    return Loaded(frame, rejects, check.table.rows, duplicates), unknown


def load_sales(path: Path | str) -> Loaded:
    """Sales: date, store, sku, units, price_cents, promo; optional stock."""
    return _load_sales(Path(path), None)[0]


def _load_labels(path: Path, known: set[str] | None) -> tuple[Loaded, list[Reject]]:
    """load_labels, and the rows rejected after it for a sku not in ``known``."""
    check = _RowChecker(_read_table(path, LABEL_COLUMNS, []), path.name)
    for col in LABEL_COLUMNS:
        check.required_text(col)
    for col in ("label_id", "store", "gateway"):  # MQTT topic levels
        check.identifier(col)
    check.sku()
    tag_type = check.text("tag_type")
    check.flag(
        "tag_type",
        ~tag_type.isin(TAG_TYPES),
        "tag_type must be one of " + ", ".join(TAG_TYPES) + ": '" + tag_type.fillna("") + "'",
    )
    check.unique("label_id")
    rejects = check.rejects()
    unknown = check.unknown_skus(known)
    frame = check.frame({col: check.text(col) for col in LABEL_COLUMNS})
    return Loaded(frame, rejects, check.table.rows), unknown


def load_labels(path: Path | str) -> Loaded:
    """Labels: label_id, store, gateway, sku, tag_type (one of 1.54, 2.9, 4.2)."""
    return _load_labels(Path(path), None)[0]


def _load_competitors(path: Path, known: set[str] | None) -> tuple[Loaded, list[Reject]]:
    """load_competitors, and the rows rejected after it for a sku not in ``known``."""
    check = _RowChecker(_read_table(path, COMPETITOR_COLUMNS, []), path.name)
    for col in ("sku", "competitor"):
        check.required_text(col)
    check.sku()
    date = _dates(check)
    price = check.integer("price_cents", minimum=1)
    # The same competitor's price for a SKU on one date twice: ambiguous, keep the first.
    good = ~check.bad
    key = pd.DataFrame(
        {
            "date": _per_row(check, "date", date.view(np.int64)),
            "sku": check.table.columns["sku"].codes,
            "competitor": check.table.columns["competitor"].codes,
        }
    )
    repeat = np.zeros(check.table.rows, dtype=bool)
    repeat[good] = key[good].duplicated().to_numpy()
    if repeat.any():
        reasons = np.full(check.table.rows, None, dtype=object)
        rows = np.flatnonzero(repeat)
        sku, competitor = check.text("sku"), check.text("competitor")
        reasons[rows] = [
            f"duplicate observation of sku '{sku.iloc[s]}' by competitor '{competitor.iloc[c]}' on "
            f"{pd.Timestamp(d).date()} (first occurrence kept)"
            for s, c, d in zip(key["sku"].to_numpy()[rows], key["competitor"].to_numpy()[rows],
                               key["date"].to_numpy()[rows], strict=True)
        ]
        check.flag_rows(repeat, reasons)
    rejects = check.rejects()
    unknown = check.unknown_skus(known)
    values = {
        "date": date,
        "sku": check.text("sku"),
        "competitor": check.text("competitor"),
        "price_cents": _whole(price),
    }
    return Loaded(check.frame(values), rejects, check.table.rows), unknown


def load_competitors(path: Path | str) -> Loaded:
    """Competitor prices: date, sku, competitor, price_cents (whole cents >= 1)."""
    return _load_competitors(Path(path), None)[0]


def empty_competitors() -> pd.DataFrame:
    """The competitors frame of a store without a competitors file: no rows, the loader's types."""
    return pd.DataFrame(
        {
            "date": pd.Series([], dtype="datetime64[ns]"),
            "sku": pd.Series([], dtype="string"),
            "competitor": pd.Series([], dtype="string"),
            "price_cents": pd.Series([], dtype=np.int64),
        },
        index=pd.RangeIndex(2, 2, name="row"),
    )


def competitor_reference(competitors: pd.DataFrame) -> pd.Series:
    """The competitor price each SKU is compared with: int64 cents, indexed by sku (str).

    Per SKU and competitor the latest observation (by date; on a date seen twice, the lower
    price), then per SKU the lowest of those. SKUs without observations are not in the result.
    A pure function of a competitors frame (columns date, sku, competitor, price_cents).
    """
    frame = pd.DataFrame(
        {
            "sku": competitors["sku"].astype(str).to_numpy(dtype=object),
            "competitor": competitors["competitor"].astype(str).to_numpy(dtype=object),
            "date": pd.to_datetime(competitors["date"]).to_numpy(),
            "price_cents": competitors["price_cents"].to_numpy(dtype=np.int64),
        }
    )
    order = frame.sort_values(
        ["sku", "competitor", "date", "price_cents"], ascending=[True, True, True, False], kind="stable"
    )
    latest = order.drop_duplicates(["sku", "competitor"], keep="last")
    reference = latest.groupby("sku", sort=True)["price_cents"].min().astype(np.int64)
    reference.index = pd.Index(reference.index.to_numpy(dtype=object), dtype=object, name="sku")
    return reference.rename("competitor_price_cents")


def label_rows(labels: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(label_id, gateway, sku) for every row of a labels frame: what delivery and the simulator use."""
    return list(labels[["label_id", "gateway", "sku"]].itertuples(index=False, name=None))


def shelf_prices(products: pd.DataFrame) -> dict[str, int]:
    """sku -> price_cents of a products frame: today's shelf price as products.csv gives it."""
    return dict(zip(products["sku"].astype(str), products["price_cents"].astype(int), strict=True))


def empty_labels() -> pd.DataFrame:
    """The labels frame of a store without a labels file: no rows, the loader's columns."""
    columns = {col: pd.Series([], dtype="string") for col in LABEL_COLUMNS}
    return pd.DataFrame(columns, index=pd.RangeIndex(2, 2, name="row"))
