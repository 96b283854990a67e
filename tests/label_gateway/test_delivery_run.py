"""The delivery state machine, turn by turn, without a broker: a fake client records what is
published and the test plays the gateways' acks and statuses into the inbox."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from label_gateway.broker import BrokerAddress
from label_gateway.delivery import DeliveryRun, DeliverySettings, LabelDelivery
from label_gateway.outbox import LabelUpdate, Outbox
from label_gateway.protocol import (
    DesiredState,
    GatewayAcks,
    GatewayStatus,
    LabelAck,
    Topics,
    utc_now,
)

TOPICS = Topics("store-1", prefix="t")


@dataclass
class Message:
    topic: str
    payload: bytes


class FakeClient:
    def __init__(self) -> None:
        self.published: list[tuple[str, DesiredState, bool]] = []

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        self.published.append((topic, DesiredState.model_validate_json(payload), retain))

    def take(self) -> list[DesiredState]:
        out = [state for _, state, _ in self.published]
        self.published.clear()
        return out


def _run(tmp_path, labels: int = 6, gateways: int = 2, **settings: object) -> tuple[DeliveryRun, FakeClient, Outbox]:
    outbox = Outbox.open(tmp_path / f"{uuid.uuid4().hex}.db", "store-1")
    outbox.enqueue([
        LabelUpdate(f"L{i}", f"gw-{i % gateways}", f"{i:04d}", 100 + i, "EUR", "plan-1") for i in range(labels)
    ])
    defaults = {"ack_timeout_s": 5.0, "backoff_base_s": 1.0, "backoff_max_s": 4.0, "flush_interval_s": 1000.0}
    owner = LabelDelivery(BrokerAddress("127.0.0.1"), TOPICS, outbox, DeliverySettings(**(defaults | settings)),
                          rng=random.Random(1))
    owner._subscribed.set()
    client = FakeClient()
    return DeliveryRun(owner, client, outbox.open_rows(), 0.0), client, outbox  # type: ignore[arg-type]


def _ack(state: DesiredState, status: str = "displayed", **extra: object) -> LabelAck:
    fields: dict[str, object] = {
        "label": state.label, "version": state.version, "status": status,
        "shown_version": state.version if status in ("displayed", "unchanged") else 0,
        "content_hash": state.content_hash if status in ("displayed", "unchanged") else None, "at": utc_now(),
    }
    return LabelAck.model_validate(fields | extra)


def _deliver(run: DeliveryRun, gateway: str, acks: list[LabelAck]) -> None:
    run.owner._inbox.append(Message(TOPICS.ack(gateway), GatewayAcks.of(gateway, acks).to_json()))


def _status(run: DeliveryRun, gateway: str, state: str) -> None:
    payload = GatewayStatus(gateway=gateway, state=state).to_json()  # type: ignore[arg-type]
    run.owner._inbox.append(Message(TOPICS.status(gateway), payload))


def _gw(state: DesiredState) -> str:
    return f"gw-{int(state.sku) % 2}"


def _ack_all(run: DeliveryRun, states: list[DesiredState], status: str = "displayed") -> None:
    for state in states:
        _deliver(run, _gw(state), [_ack(state, status)])


def test_windows_bound_what_is_in_flight_per_gateway_and_overall(tmp_path) -> None:
    run, client, _ = _run(tmp_path, labels=60, gateways=3, window_per_gateway=10, max_in_flight=25)
    run.tick(0.0)
    sent = client.take()
    per_gateway = {gw: sum(1 for s in sent if int(s.sku) % 3 == int(gw[-1])) for gw in ("gw-0", "gw-1", "gw-2")}
    assert len(sent) == 25 and max(per_gateway.values()) <= 10
    run.tick(0.1)
    assert client.take() == []  # nothing is acked: nothing more goes out
    for state in sent[:5]:
        _deliver(run, f"gw-{int(state.sku) % 3}", [_ack(state)])
    run.tick(0.2)
    assert len(client.take()) == 5


def test_displayed_ack_confirms_and_is_written_to_the_outbox(tmp_path) -> None:
    run, client, outbox = _run(tmp_path)
    run.tick(0.0)
    sent = client.take()
    _ack_all(run, sent)
    run.tick(0.1)
    assert run.done(0.1)
    report = run.finish()
    assert len(report.confirmed) == 6 and report.sent == 6 and report.retries == 0
    rows = outbox.rows()
    assert all(r.state == "confirmed" and r.confirmed_version == r.version for r in rows)
    assert {r.confirmed_price_cents for r in rows} == {100, 101, 102, 103, 104, 105}


def test_desired_states_are_retained_and_carry_the_row(tmp_path) -> None:
    run, client, outbox = _run(tmp_path, labels=1)
    run.tick(0.0)
    ((topic, state, retain),) = client.published
    row = outbox.rows()[0]
    assert topic == TOPICS.desired("gw-0", "L0") and retain
    assert (state.version, state.price, state.price_cents, state.content_hash) == (
        row.version, "1.00", 100, row.content_hash)


def test_no_ack_means_retry_with_backoff_then_failed(tmp_path) -> None:
    run, client, outbox = _run(tmp_path, labels=1, max_attempts=3, ack_timeout_s=5.0)
    run.tick(0.0)
    assert len(client.take()) == 1
    run.tick(5.1)  # timed out: waits 0.5..1 x 1 s before the second attempt
    assert client.take() == []
    run.tick(6.2)
    assert len(client.take()) == 1
    run.tick(11.3)  # second timeout: waits 0.5..1 x 2 s
    run.tick(13.4)
    assert len(client.take()) == 1
    run.tick(18.5)  # third timeout: attempts exhausted
    assert run.done(18.5)
    report = run.finish()
    (outcome,) = report.failed
    assert outcome.detail == "no ack within 5s (after 3 attempts)" and outcome.attempts == 3
    assert report.retries == 2
    assert outbox.rows()[0].state == "failed"


def test_rejected_fails_at_once_and_unreachable_is_retried(tmp_path) -> None:
    run, client, _ = _run(tmp_path, labels=2, max_attempts=2)
    run.tick(0.0)
    first, second = sorted(client.take(), key=lambda s: s.label)
    _deliver(run, "gw-0", [_ack(first, "rejected", reason="label L0 is bound to another sku")])
    _deliver(run, "gw-1", [_ack(second, "unreachable", reason="label did not answer after 15 attempts")])
    run.tick(0.1)
    run.tick(2.0)
    (again,) = client.take()
    assert again.label == "L1"
    _deliver(run, "gw-1", [_ack(again, "unreachable", reason="label did not answer after 15 attempts")])
    run.tick(2.1)
    report = run.finish()
    details = {o.label_id: o.detail for o in report.failed}
    assert details == {
        "L0": "rejected by the label: label L0 is bound to another sku",
        "L1": "label unreachable: label did not answer after 15 attempts (after 2 attempts)",
    }


def test_offline_gateway_gets_nothing_and_loses_no_attempt(tmp_path) -> None:
    run, client, _ = _run(tmp_path, labels=4, max_attempts=1)
    run.tick(0.0)
    sent = client.take()
    _status(run, "gw-1", "offline")
    _ack_all(run, [s for s in sent if _gw(s) == "gw-0"])
    run.tick(0.1)
    assert client.take() == []
    run.tick(60.0)  # far past the ack timeout: an offline gateway's labels do not time out
    run.tick(60.1)
    assert not run.done(60.1)
    _status(run, "gw-1", "online")
    run.tick(60.2)
    resent = client.take()
    assert sorted(s.label for s in resent) == ["L1", "L3"]
    _ack_all(run, resent)
    run.tick(60.3)
    report = run.finish()
    assert len(report.confirmed) == 4 and not report.failed


def test_a_push_ends_when_only_long_offline_gateways_hold_it_up(tmp_path) -> None:
    run, client, outbox = _run(tmp_path, labels=4, offline_grace_s=30.0)
    _status(run, "gw-1", "offline")
    run.tick(0.0)
    _ack_all(run, client.take())
    run.tick(0.1)
    assert not run.done(10.0)
    assert run.done(31.0)
    report = run.finish()
    assert len(report.confirmed) == 2
    assert [o.detail for o in report.waiting] == ["gateway gw-1 offline"] * 2
    assert report.gateways_offline == ["gw-1"]
    assert {r.label_id for r in outbox.open_rows()} == {"L1", "L3"}


def test_lost_broker_pauses_and_resends_what_was_in_flight(tmp_path) -> None:
    run, client, _ = _run(tmp_path, labels=2, max_attempts=1)
    run.tick(0.0)
    assert len(client.take()) == 2
    run.owner._subscribed.clear()
    run.tick(1.0)
    run.tick(30.0)  # no timeouts while disconnected
    assert client.take() == []
    run.owner._connects += 1
    run.owner._subscribed.set()
    run.tick(31.0)
    resent = client.take()
    assert len(resent) == 2
    _ack_all(run, resent)
    run.tick(31.1)
    report = run.finish()
    assert len(report.confirmed) == 2 and report.reconnects == 1


def test_broker_gone_too_long_ends_the_push_with_labels_waiting(tmp_path) -> None:
    run, _, _ = _run(tmp_path, labels=2, broker_grace_s=10.0)
    run.tick(0.0)
    run.owner._subscribed.clear()
    run.tick(1.0)
    assert not run.done(5.0)
    assert run.done(11.5)
    report = run.finish()
    assert report.broker_lost and [o.detail for o in report.waiting] == ["broker unreachable"] * 2


def test_a_label_claiming_a_version_never_issued_is_re_pushed_once_then_failed(tmp_path) -> None:
    run, client, outbox = _run(tmp_path, labels=1)
    run.tick(0.0)
    (state,) = client.take()
    forged = 2**63 - 1  # what a forged state poisoned the label with
    _deliver(run, "gw-0", [_ack(state, "stale", shown_version=forged)])
    run.tick(0.1)
    (again,) = client.take()
    assert again.version == state.version  # the engine's own version, never one above the claim
    _deliver(run, "gw-0", [_ack(again, "stale", shown_version=forged)])
    run.tick(0.2)
    assert client.take() == []
    report = run.finish()
    assert report.forged_versions == 2 and "never issued" in report.failed[0].detail
    (row,) = outbox.rows()
    assert (row.version, row.state) == (state.version, "failed")
    outbox.enqueue([LabelUpdate("L0", "gw-0", "0000", 101, "EUR", "plan-2")])  # the next plan still works
    assert outbox.rows()[0].version > state.version


def test_acks_count_only_from_the_labels_own_gateway(tmp_path) -> None:
    run, client, _ = _run(tmp_path, labels=2)
    run.tick(0.0)
    sent = {s.label: s for s in client.take()}
    label_of_gw0 = sent["L0"]
    _deliver(run, "gw-1", [_ack(label_of_gw0)])  # gw-1 speaks for gw-0's label
    _deliver(run, "evil", [_ack(label_of_gw0, "rejected", reason="x")])  # a gateway the store does not have
    forged_batch = GatewayAcks.of("gw-0", [_ack(label_of_gw0)]).to_json()
    run.owner._inbox.append(Message(TOPICS.ack("gw-1"), forged_batch))  # a batch naming another gateway
    run.tick(0.1)
    assert run.rows["L0"].state == "sent" and run.report.foreign_acks == 3
    _ack_all(run, list(sent.values()))
    run.tick(0.2)
    assert len(run.finish().confirmed) == 2


def test_signed_states_verify_and_a_batch_shares_one_signature(tmp_path) -> None:
    from label_gateway.signing import Signer

    signer = Signer.generate()
    run, client, _ = _run(tmp_path, labels=6)
    run.owner.signer = signer
    run.tick(0.0)
    states = client.take()
    trusted = signer.trusted()
    assert all(trusted.verify(s.signed_proof(), s.signed_message("store-1")) is None for s in states)
    assert len({s.signature for s in states}) == 1 and {s.proof_size for s in states} == {6}
    tampered = states[0].model_copy(update={"price_cents": 1, "price": "0.01"})
    assert trusted.verify(tampered.signed_proof(), tampered.signed_message("store-1")) == "signature: invalid"
    other_store = trusted.verify(states[0].signed_proof(), states[0].signed_message("store-2"))
    assert other_store == "signature: invalid"


def test_scheduled_counts_as_delivered_and_displayed_confirms_later(tmp_path) -> None:
    run, client, _ = _run(tmp_path, labels=1)
    run.tick(0.0)
    (state,) = client.take()
    _deliver(run, "gw-0", [_ack(state, "scheduled", shown_version=0)])
    run.tick(0.1)
    assert run.done(0.1)
    _deliver(run, "gw-0", [_ack(state)])
    run.tick(0.2)
    assert [o.state for o in run.finish().outcomes] == ["confirmed"]


def test_late_and_duplicate_acks_change_nothing(tmp_path) -> None:
    run, client, _ = _run(tmp_path, labels=1)
    run.tick(0.0)
    (state,) = client.take()
    old = state.model_copy(update={"version": state.version - 1})
    _deliver(run, "gw-0", [_ack(old)])
    run.tick(0.1)
    assert not run.done(0.1)
    _deliver(run, "gw-0", [_ack(state), _ack(state)])
    _deliver(run, "gw-0", [_ack(state.model_copy(update={"label": "L99"}))])
    run.tick(0.2)
    report = run.finish()
    assert (report.late_acks, report.unmatched_acks, len(report.confirmed)) == (1, 2, 1)


def test_an_ack_for_other_content_fails_the_label(tmp_path) -> None:
    run, client, _ = _run(tmp_path, labels=1)
    run.tick(0.0)
    (state,) = client.take()
    _deliver(run, "gw-0", [_ack(state, content_hash="0000000000000000")])
    run.tick(0.1)
    (outcome,) = run.finish().failed
    assert "reports content 0000000000000000" in outcome.detail


@pytest.mark.parametrize(
    ("topic_suffix", "payload", "counter"),
    [
        ("ack", b"{garbage", "malformed_acks"),
        ("ack", b"\xff\xfe\x00", "malformed_acks"),
        ("ack", b'{"v":1,"gateway":"gw-0","acks":"no"}', "malformed_acks"),
        ("ack", json.dumps({"gateway": "gw-0", "acks": [{"label": "L0"}, 7]}).encode(), "malformed_acks"),
        ("status", b"[1,2]", "malformed_status"),
        ("status", b'{"v":1,"gateway":"gw-9","state":"offline"}', "malformed_status"),
        ("status", b'{"v":1,"gateway":"gw-0","state":"sleepy"}', "malformed_status"),
    ],
)
def test_malformed_messages_are_counted_and_change_nothing(tmp_path, topic_suffix: str, payload: bytes,
                                                           counter: str) -> None:
    run, client, _ = _run(tmp_path, labels=2)
    run.tick(0.0)
    sent = client.take()
    topic = TOPICS.ack("gw-0") if topic_suffix == "ack" else TOPICS.status("gw-0")
    run.owner._inbox.append(Message(topic, payload))
    run.tick(0.1)
    assert getattr(run.report, counter) >= 1
    assert run.online.get("gw-0", True)
    _ack_all(run, sent)
    run.tick(0.2)
    assert len(run.finish().confirmed) == 2


def test_a_restart_sends_again_what_was_sent_but_not_acknowledged(tmp_path) -> None:
    run, client, outbox = _run(tmp_path, labels=3, flush_interval_s=0.01)
    run.tick(0.0)
    sent = client.take()
    _deliver(run, "gw-0", [_ack(sent[0])])
    run.tick(1.0)  # flushed: L0 confirmed; L1, L2 were sent, no ack yet
    # The engine dies here. A new run starts from the outbox.
    again = DeliveryRun(run.owner, client, outbox.open_rows(), 0.0)  # type: ignore[arg-type]
    again.tick(0.0)
    resent = client.take()
    assert sorted(s.label for s in resent) == ["L1", "L2"]
    assert {s.version for s in resent} == {s.version for s in sent[1:]}


def test_scheduled_row_past_its_instant_is_asked_again(tmp_path) -> None:
    outbox = Outbox.open(tmp_path / "e.db", "store-1")
    past = datetime(2020, 1, 1, tzinfo=UTC)
    future = datetime(2100, 1, 1, tzinfo=UTC)
    outbox.enqueue([LabelUpdate("L0", "gw-0", "0000", 100, "EUR", "p", past),
                    LabelUpdate("L1", "gw-0", "0001", 101, "EUR", "p", future)])
    rows = outbox.rows()
    for row in rows:
        row.state = "scheduled"
    outbox.save(rows)
    owner = LabelDelivery(BrokerAddress("127.0.0.1"), TOPICS, outbox)
    owner._subscribed.set()
    client = FakeClient()
    run = DeliveryRun(owner, client, outbox.open_rows(), 0.0)  # type: ignore[arg-type]
    run.tick(0.0)
    assert [s.label for s in client.take()] == ["L0"]


def test_the_desired_state_written_directly_is_what_the_protocol_model_accepts(tmp_path) -> None:
    from label_gateway.delivery import desired_state_json

    outbox = Outbox.open(tmp_path / "e.db", "store-1")
    when = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    outbox.enqueue([LabelUpdate("L0", "gw-0", "0007", 1999, "EUR", "plan-9"),
                    LabelUpdate("L1", "gw-0", "0008", 5, "EUR", "plan-9", when)])
    for row in outbox.rows():
        issued = utc_now()
        state = DesiredState.model_validate_json(desired_state_json(row, issued.isoformat()))
        expected = DesiredState.build(label=row.label_id, sku=row.sku, version=row.version,
                                      price_cents=row.price_cents, currency="EUR", correlation="plan-9",
                                      effective_at=None if row.label_id == "L0" else when)
        assert state == expected.model_copy(update={"issued_at": issued})


def test_a_lost_connection_is_retried_at_once_then_after_1_s_then_every_2_s(tmp_path, monkeypatch) -> None:
    from label_gateway import delivery

    run, _, _ = _run(tmp_path, labels=1)
    clock = [100.0]
    attempts: list[float] = []
    failures = [3]

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return clock[0]

        @staticmethod
        def sleep(seconds: float) -> None:
            clock[0] += seconds

    class LostClient:
        def reconnect(self) -> None:
            attempts.append(clock[0])
            if failures[0]:
                failures[0] -= 1
                raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(delivery, "time", Clock)
    client = LostClient()
    while len(attempts) < 4:
        run.owner._reconnect(client, 0.25)  # type: ignore[arg-type]
    assert attempts == [100.0, 101.0, 103.0, 105.0]
    failures[0] = 1  # lost again: at once, then 1 s again (the backoff started over)
    while len(attempts) < 6:
        run.owner._reconnect(client, 0.25)  # type: ignore[arg-type]
    assert attempts[4:] == [105.0, 106.0]


def test_a_row_poisoned_by_an_older_engine_is_failed_not_sent_and_the_next_plan_recovers(tmp_path) -> None:
    outbox = Outbox.open(tmp_path / "e.db", "store-1")
    outbox.enqueue([LabelUpdate("L0", "gw-0", "0000", 100, "EUR", "p", version=5)])
    (row,) = outbox.rows()
    row.version = 2**63 - 1  # what the old "shown_version + 1" arithmetic could write
    with outbox.engine.begin() as conn:
        outbox._write(conn, [row])
    owner = LabelDelivery(BrokerAddress("127.0.0.1"), TOPICS, outbox)
    owner._subscribed.set()
    client = FakeClient()
    run = DeliveryRun(owner, client, outbox.open_rows(), 0.0)  # type: ignore[arg-type]
    run.tick(0.0)
    assert client.take() == [] and "above the protocol" in run.finish().failed[0].detail
    outbox.enqueue([LabelUpdate("L0", "gw-0", "0000", 120, "EUR", "p2")])
    assert outbox.rows()[0].version <= 2**53 - 1
