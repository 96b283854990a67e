"""The durable outbox on SQLite and PostgreSQL: versions, content-hash dedup, reconciliation."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from label_gateway.outbox import (
    LabelUpdate,
    Outbox,
    OutboxError,
    database_url,
    open_engine,
    stores_in,
)
from pricing.core.timestamps import from_us, to_us


def _outbox(url: str) -> Outbox:
    return Outbox.open(url, f"store-{uuid.uuid4().hex[:8]}")


def _updates(prices: dict[str, int], correlation: str = "plan-1", **extra: object) -> list[LabelUpdate]:
    return [
        LabelUpdate(f"L{sku}", f"gw-{int(sku) % 2}", sku, cents, "EUR", correlation, **extra)  # type: ignore[arg-type]
        for sku, cents in prices.items()
    ]


def _confirm_all(outbox: Outbox) -> None:
    rows = outbox.rows()
    outbox.save([
        replace(r, state="confirmed", confirmed_version=r.version, confirmed_price_cents=r.price_cents,
                confirmed_hash=r.content_hash)
        for r in rows
    ])


def test_enqueue_records_desired_state_pending(database_url: str) -> None:
    outbox = _outbox(database_url)
    result = outbox.enqueue(_updates({"001": 199, "002": 250}), at_us=1_000)
    assert (result.queued, result.already_shown, result.already_queued) == (2, 0, 0)
    rows = {r.label_id: r for r in outbox.open_rows()}
    assert rows["L001"].price_cents == 199 and rows["L001"].state == "pending" and rows["L001"].version == 1_000
    assert rows["L002"].gateway == "gw-0" and rows["L002"].confirmed_version is None
    assert outbox.counts().by_state == {"pending": 2}


def test_a_later_plan_always_gets_a_higher_version(database_url: str) -> None:
    outbox = _outbox(database_url)
    outbox.enqueue(_updates({"001": 199}), at_us=5_000)
    outbox.enqueue(_updates({"001": 205}, "plan-2"), at_us=4_000)  # a clock that went backwards
    (row,) = outbox.rows()
    assert row.version == 5_001 and row.price_cents == 205 and row.correlation == "plan-2"


def test_content_the_label_already_shows_is_not_sent_again(database_url: str) -> None:
    outbox = _outbox(database_url)
    outbox.enqueue(_updates({"001": 199, "002": 300}), at_us=1_000)
    _confirm_all(outbox)
    result = outbox.enqueue(_updates({"001": 199, "002": 310}, "plan-2"), at_us=2_000)
    assert (result.queued, result.already_shown) == (1, 1)
    rows = {r.label_id: r for r in outbox.rows()}
    assert rows["L001"].state == "confirmed" and rows["L001"].version == 1_000
    assert rows["L002"].state == "pending" and rows["L002"].version == 2_000


def test_same_content_waiting_keeps_its_version(database_url: str) -> None:
    outbox = _outbox(database_url)
    outbox.enqueue(_updates({"001": 199}), at_us=1_000)
    result = outbox.enqueue(_updates({"001": 199}, "plan-again"), at_us=2_000)
    assert (result.queued, result.already_queued) == (0, 1)
    assert outbox.rows()[0].version == 1_000


def test_going_back_to_the_shown_price_after_another_was_sent_needs_a_new_version(database_url: str) -> None:
    """The other price may sit retained on the broker; only a newer version beats it."""
    outbox = _outbox(database_url)
    outbox.enqueue(_updates({"001": 199}), at_us=1_000)
    _confirm_all(outbox)
    outbox.enqueue(_updates({"001": 150}, "plan-2"), at_us=2_000)
    result = outbox.enqueue(_updates({"001": 199}, "plan-3"), at_us=3_000)
    assert result.queued == 1
    (row,) = outbox.rows()
    assert row.version == 3_000 and row.price_cents == 199 and row.state == "pending"


def test_reopen_sends_again_what_labels_do_not_confirm(database_url: str) -> None:
    outbox = _outbox(database_url)
    outbox.enqueue(_updates({"001": 199, "002": 300, "003": 400}), at_us=1_000)
    rows = {r.label_id: r for r in outbox.rows()}
    outbox.save([
        replace(rows["L001"], state="confirmed", confirmed_version=1_000, confirmed_price_cents=199,
                confirmed_hash=rows["L001"].content_hash),
        replace(rows["L002"], state="failed", attempts=5, last_error="no ack"),
        replace(rows["L003"], state="sent", attempts=1),
    ])
    assert outbox.reopen(gateway="gw-0") == 1  # L002 only
    assert {r.label_id for r in outbox.rows(["pending"])} == {"L002"}
    assert outbox.reopen() == 2  # L002 (already pending) and L003 (sent); L001 is confirmed
    states = {r.label_id: (r.state, r.attempts, r.last_error) for r in outbox.rows()}
    assert states == {"L001": ("confirmed", 0, None), "L002": ("pending", 0, None), "L003": ("pending", 0, None)}


def test_effective_at_round_trips_in_microseconds(database_url: str) -> None:
    outbox = _outbox(database_url)
    when = datetime(2026, 11, 23, 6, 0, 0, 123456, tzinfo=UTC)
    outbox.enqueue(_updates({"001": 199}, effective_at=when))
    assert from_us(outbox.rows()[0].effective_at_us) == when
    with pytest.raises(ValueError, match="time zone"):
        to_us(datetime(2026, 11, 23, 6, 0))


def test_bad_updates_are_refused_before_anything_is_written(database_url: str) -> None:
    outbox = _outbox(database_url)
    with pytest.raises(ValueError, match="at most one update per label"):
        outbox.enqueue(_updates({"001": 199}) * 2)
    with pytest.raises(ValueError, match="not a price"):
        outbox.enqueue(_updates({"001": 199, "002": 0}))
    assert outbox.rows() == []


def test_counts_and_stores(database_url: str) -> None:
    outbox = _outbox(database_url)
    outbox.enqueue(_updates({"001": 199, "002": 300}))
    rows = outbox.rows()
    outbox.save([replace(rows[0], battery_mv=2400)])
    counts = outbox.counts()
    assert counts.open == 2 and counts.low_battery == 1
    assert counts.by_gateway == {"gw-0": {"pending": 1}, "gw-1": {"pending": 1}}
    assert outbox.store in stores_in(outbox.engine)


def test_a_large_plan_is_written_in_chunks(database_url: str) -> None:
    outbox = _outbox(database_url)
    prices = {f"{i:05d}": 100 + i for i in range(1, 2_501)}
    assert outbox.enqueue(_updates(prices)).queued == 2_500
    assert len(outbox.open_rows()) == 2_500


def test_database_targets(tmp_path) -> None:
    assert database_url(tmp_path / "x.db") == f"sqlite:///{tmp_path / 'x.db'}"
    assert database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(OutboxError, match="database 'nosuch://x'"):
        open_engine("nosuch://x")
    with pytest.raises(OutboxError, match="127.0.0.1:1"):
        open_engine("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")


@pytest.mark.parametrize(("label", "gateway"), [("L#1", "gw-1"), ("L+1", "gw-1"), ("L\x001", "gw-1"), ("L1", "gw/1"),
                                               ("L" * 65, "gw-1")])
def test_an_id_that_cannot_be_a_topic_level_never_enters_the_outbox(tmp_path, label: str, gateway: str) -> None:
    outbox = Outbox.open(tmp_path / "e.db", "store-1")
    with pytest.raises(ValueError, match="id"):
        outbox.enqueue([LabelUpdate(label, gateway, "0001", 100, "EUR", "p")])
    assert outbox.rows() == []
