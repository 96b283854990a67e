"""The price book: every price a SKU had in a store, from when to when, and the Omnibus reference.

One row per (store, SKU, period): ``effective_from_us`` inclusive, ``effective_to_us`` exclusive
(NULL while the price is current). The register and the labels follow the price book: a plan's
change is recorded here when it is applied (from its ``effective_at``), and the outbox then brings
every label to it.

EU Omnibus rule (Directive 98/6/EC art. 6a): an announced price reduction must show the lowest
price applied during the 30 days before the reduction. The rule itself is ``pricing.store.omnibus``;
the book fetches the periods it needs and asks it (``lowest_prices``, ``current_references``, the
reference ``record`` gives a reduction).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    select,
    update,
)

from pricing.core.timestamps import epoch_us, from_epoch_us, from_us
from pricing.store import omnibus
from pricing.store.omnibus import OMNIBUS_DAYS

metadata = MetaData()

price_history = Table(
    "price_history",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("store", String(64), nullable=False),
    Column("sku", String(64), nullable=False),
    Column("price_cents", Integer, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("effective_from_us", BigInteger, nullable=False),
    Column("effective_to_us", BigInteger, nullable=True),
    Column("correlation", String(128), nullable=False),
    Column("reason", String(32), nullable=False),
    Index("ix_price_history_store_sku_from", "store", "sku", "effective_from_us"),
)


@dataclass(frozen=True)
class PricePeriod:
    """One price of one SKU, from ``effective_from`` (inclusive) to ``effective_to`` (exclusive;
    None while it is the current price)."""

    sku: str
    price_cents: int
    currency: str
    effective_from: datetime
    effective_to: datetime | None
    correlation: str
    reason: str


@dataclass(frozen=True)
class PriceChange:
    """A price the book took: ``reference_cents`` is set when it is a reduction (Omnibus)."""

    sku: str
    price_cents: int
    previous_cents: int | None
    reference_cents: int | None
    effective_from: datetime


class PriceBook:
    """One store's price history, in the engine database."""

    def __init__(self, engine: Engine, store: str) -> None:
        self.engine = engine
        self.store = store

    # -- reading ---------------------------------------------------------------------------
    def current(self) -> dict[str, int]:
        """sku -> the price in force now (the open period)."""
        c = price_history.c
        query = select(c.sku, c.price_cents).where(c.store == self.store, c.effective_to_us.is_(None))
        with self.engine.connect() as conn:
            return {sku: int(cents) for sku, cents in conn.execute(query)}

    def history(self, sku: str) -> list[PricePeriod]:
        c = price_history.c
        query = (
            select(c.sku, c.price_cents, c.currency, c.effective_from_us, c.effective_to_us, c.correlation, c.reason)
            .where(c.store == self.store, c.sku == sku)
            .order_by(c.effective_from_us, c.id)
        )
        with self.engine.connect() as conn:
            return [
                PricePeriod(s, p, cur, from_epoch_us(f), from_us(t), corr, reason)
                for s, p, cur, f, t, corr, reason in conn.execute(query)
            ]

    def price_at(self, sku: str, at: datetime) -> int | None:
        """The price in force at ``at`` (None before the SKU's first price)."""
        c = price_history.c
        moment = epoch_us(at)
        query = (
            select(c.price_cents)
            .where(
                c.store == self.store, c.sku == sku, c.effective_from_us <= moment,
                (c.effective_to_us.is_(None)) | (c.effective_to_us > moment),
            )
            .order_by(c.effective_from_us.desc(), c.id.desc())
            .limit(1)
        )
        with self.engine.connect() as conn:
            found = conn.execute(query).scalar()
        return None if found is None else int(found)

    def lowest_prices(self, skus: Iterable[str], at: datetime, *, days: int = OMNIBUS_DAYS) -> dict[str, int]:
        """sku -> the lowest price in force at any moment of the ``days`` days before ``at``
        (``omnibus.lowest_price``). SKUs without a price in that span are left out."""
        moment = epoch_us(at)
        start = omnibus.window_start(moment, days)
        c = price_history.c
        # Only the periods that can touch the window, a superset (inclusive bounds): the rule decides.
        query = select(c.sku, c.price_cents, c.effective_from_us, c.effective_to_us).where(
            c.store == self.store, c.effective_from_us <= moment,
            (c.effective_to_us.is_(None)) | (c.effective_to_us >= start),
        )
        periods = self._periods(query, skus)
        lowest = {sku: omnibus.lowest_price(spans, moment, days=days) for sku, spans in periods.items()}
        return {sku: low for sku, low in lowest.items() if low is not None}

    def current_references(self, skus: Iterable[str] | None = None) -> dict[str, int]:
        """sku -> the Omnibus reference of its current price, for SKUs whose current price is a
        reduction from the one before (``omnibus.current_reference``: the reference ``record``
        gave it). What a label showing today's price must also show."""
        c = price_history.c
        query = select(c.sku, c.price_cents, c.effective_from_us, c.effective_to_us).where(c.store == self.store)
        periods = self._periods(query.order_by(c.sku, c.effective_from_us, c.id), skus)
        references = {sku: omnibus.current_reference(spans) for sku, spans in periods.items()}
        return {sku: reference for sku, reference in references.items() if reference is not None}

    def _periods(self, query: Select[Any], skus: Iterable[str] | None) -> dict[str, list[omnibus.Period]]:
        """sku -> its (price_cents, from_us, to_us) rows of ``query`` (sku, price, from, to), in the
        query's order; only ``skus`` when given (filtered in the query for up to 500 of them)."""
        wanted = None if skus is None else set(skus)
        if wanted is not None and len(wanted) <= 500:
            query = query.where(price_history.c.sku.in_(sorted(wanted)))
        periods: dict[str, list[omnibus.Period]] = {}
        with self.engine.connect() as conn:
            for sku, cents, start, end in conn.execute(query):
                if wanted is None or sku in wanted:
                    periods.setdefault(sku, []).append((int(cents), int(start), None if end is None else int(end)))
        return periods

    # -- writing ---------------------------------------------------------------------------
    def record(
        self,
        prices: Mapping[str, int],
        *,
        at: datetime,
        currency: str,
        correlation: str,
        reason: str = "plan",
    ) -> list[PriceChange]:
        """Make ``prices`` (sku -> cents) current from ``at``: the open period of each SKU whose
        price differs is closed at ``at`` and a new one opens. A reduction carries the Omnibus
        reference (``omnibus.reference``: the lowest price of the 30 days before ``at``, never above
        the price before the reduction). Same price: nothing changes. One transaction."""
        for sku, cents in prices.items():
            if int(cents) < 1:
                raise ValueError(f"sku {sku}: price_cents {cents} is not a price")
        now = self.current()
        changed = {sku: int(cents) for sku, cents in prices.items() if now.get(sku) != int(cents)}
        if not changed:
            return []
        lowest = self.lowest_prices(changed, at)
        moment = epoch_us(at)
        changes: list[PriceChange] = []
        for sku, cents in sorted(changed.items()):
            before = now.get(sku)
            changes.append(PriceChange(sku, cents, before, omnibus.reference(cents, before, lowest.get(sku)), at))
        c = price_history.c
        with self.engine.begin() as conn:
            closing = [sku for sku in changed if sku in now]
            for start in range(0, len(closing), 500):
                conn.execute(
                    update(price_history)
                    .where(c.store == self.store, c.sku.in_(closing[start : start + 500]), c.effective_to_us.is_(None))
                    .values(effective_to_us=moment)
                )
            conn.execute(
                price_history.insert(),
                [
                    {
                        "store": self.store, "sku": change.sku, "price_cents": change.price_cents,
                        "currency": currency, "effective_from_us": moment, "effective_to_us": None,
                        "correlation": correlation, "reason": reason,
                    }
                    for change in changes
                ],
            )
        return changes

    def seed(self, prices: Mapping[str, int], *, at: datetime, currency: str, source: str) -> list[PriceChange]:
        """Take the shelf prices of SKUs the book has never seen (e.g. products.csv on the first
        run) as in force from ``at``; returns the new entries."""
        known = self._known_skus()
        fresh = {sku: int(cents) for sku, cents in prices.items() if sku not in known and int(cents) >= 1}
        if not fresh:
            return []
        return self.record(fresh, at=at, currency=currency, correlation=source, reason="initial")

    def _known_skus(self) -> set[str]:
        c = price_history.c
        with self.engine.connect() as conn:
            return set(conn.execute(select(c.sku).where(c.store == self.store).distinct()).scalars())

