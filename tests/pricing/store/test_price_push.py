"""sync_labels: every label gets the price book's price, once, with its Omnibus reference."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

from label_gateway.outbox import Outbox
from pricing.core.database import open_engine
from pricing.store.event_log import EventLog
from pricing.store.price_book import PriceBook
from pricing.store.price_push import sync_labels

T0 = datetime(2026, 10, 1, 6, tzinfo=UTC)
STORE = "store-001"
COSTS = {"A": 100, "B": 100, "C": 60}


def test_sync_fills_every_label_once_and_carries_the_reference(tmp_path: Path) -> None:
    engine = open_engine(tmp_path / "engine.db")
    book, outbox, log = PriceBook(engine, STORE), Outbox(engine, STORE), EventLog(engine, STORE)
    book.record({"A": 299, "B": 199}, at=T0, currency="EUR", correlation="p1")
    book.record({"A": 249}, at=T0 + timedelta(days=10), currency="EUR", correlation="p2")  # a reduction
    labels = [("LA", "gw-01", "A"), ("LA2", "gw-02", "A"), ("LB", "gw-01", "B"), ("LC", "gw-01", "C")]
    now = T0 + timedelta(days=12)

    first = sync_labels(book, outbox, log, labels, file_prices={"A": 999, "C": 129}, costs=COSTS, currency="EUR",
                        at=now, correlation="sync-1")
    assert [c.sku for c in first.changes] == ["C"]  # only the SKU the book never saw is seeded
    assert {(r.label_id, r.price_cents, r.reference_cents) for r in first.pushed} == {
        ("LA", 249, 299), ("LA2", 249, 299), ("LB", 199, None), ("LC", 129, None),
    }
    assert first.enqueued.queued == 4
    pushed = [e for e in log.read() if e.kind == "pushed"]
    assert sorted(e.label for e in pushed) == ["LA", "LA2", "LB", "LC"]

    # The labels confirm what they were sent; a second sync then has nothing to send.
    outbox.save([
        dataclasses.replace(r, state="confirmed", confirmed_version=r.version, confirmed_price_cents=r.price_cents,
                            confirmed_hash=r.content_hash)
        for r in outbox.rows()
    ])
    again = sync_labels(book, outbox, log, [*labels, ("LNEW", "gw-02", "B")], file_prices={}, costs=COSTS,
                        currency="EUR", at=now + timedelta(hours=1), correlation="sync-2")
    assert again.enqueued.already_shown == 4
    assert [(r.label_id, r.price_cents) for r in again.pushed] == [("LNEW", 199)]
