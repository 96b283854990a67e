"""The price book: every price a SKU had in a store, from when to when, and the Omnibus reference.

One row per (store, SKU, period): ``effective_from_us`` inclusive, ``effective_to_us`` exclusive
(NULL while the price is current). The register and the labels follow the price book: a plan's
change is recorded here when it is applied (from its ``effective_at``), and the outbox then brings
every label to it.

EU Omnibus rule (Directive 98/6/EC art. 6a): an announced price reduction must show the lowest
price applied during the 30 days before the reduction. ``reference_prices`` computes it per SKU.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table

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
