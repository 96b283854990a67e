"""The price book: every price a SKU had in a store, from when to when, and the Omnibus reference.

One row per (store, SKU, period): ``effective_from_us`` inclusive, ``effective_to_us`` exclusive
(NULL while the price is current). The register and the labels follow the price book: a plan's
change is recorded here when it is applied (from its ``effective_at``), and the outbox then brings
every label to it.

EU Omnibus rule (Directive 98/6/EC art. 6a): an announced price reduction must show the lowest
price applied during the 30 days before the reduction. ``reference_prices`` computes it per SKU.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    select,
    update,
)

from pricing.core.timestamps import epoch_us, from_epoch_us, from_us

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

OMNIBUS_DAYS = 30


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
        (periods that overlap [at - days, at)). SKUs without a price in that span are left out."""
        start, end = epoch_us(at - timedelta(days=days)), epoch_us(at)
        wanted = set(skus)
        c = price_history.c
        query = (
            select(c.sku, func.min(c.price_cents))
            .where(
                c.store == self.store, c.effective_from_us < end,
                (c.effective_to_us.is_(None)) | (c.effective_to_us > start),
            )
            .group_by(c.sku)
        )
        with self.engine.connect() as conn:
            return {sku: int(low) for sku, low in conn.execute(query) if sku in wanted}

    def current_references(self, skus: Iterable[str] | None = None) -> dict[str, int]:
        """sku -> the Omnibus reference of its current price, for SKUs whose current price is a
        reduction from the one before: the lowest price of the 30 days before the reduction (as
        ``record`` gave it). What a label showing today's price must also show."""
        c = price_history.c
        query = select(c.sku, c.price_cents, c.effective_from_us, c.effective_to_us).where(c.store == self.store)
        wanted = None if skus is None else set(skus)
        if wanted is not None and len(wanted) <= 500:
            query = query.where(c.sku.in_(sorted(wanted)))
        periods: dict[str, list[tuple[int, int, int | None]]] = {}
        with self.engine.connect() as conn:
            for sku, cents, start, end in conn.execute(query.order_by(c.sku, c.effective_from_us, c.id)):
                if wanted is None or sku in wanted:
                    periods.setdefault(sku, []).append((int(cents), int(start), end))
        references: dict[str, int] = {}
        for sku, spans in periods.items():
            if len(spans) < 2 or spans[-1][2] is not None:
                continue
            cents, start, _ = spans[-1]
            before = spans[-2][0]
            if cents >= before:
                continue
            window = start - OMNIBUS_DAYS * 86_400_000_000
            lowest = min(p for p, _, end in spans[:-1] if end is None or end > window)
            references[sku] = min(lowest, before)
        return references

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
        reference (the lowest price of the 30 days before ``at``; the price before the reduction
        when the book knows nothing older). Same price: nothing changes. One transaction."""
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
            reference = None
            if before is not None and cents < before:
                reference = min(lowest.get(sku, before), before)
            changes.append(PriceChange(sku, cents, before, reference, at))
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

