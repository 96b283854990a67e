"""The store's plan inbox: what it accepts, refuses and hands to the daemon, and what it reports."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from label_gateway.broker import BrokerAddress, connect, disconnect, new_client
from label_gateway.plan_channel import ChainTopics, read_result, seal_plan
from label_gateway.protocol import Topics
from label_gateway.signing import Signer
from pricing.plan.plan_files import latest_plan, read_plan
from pricing.plan.price_plan import PlanLine, PricePlan, SolverStats
from pricing.rules.config import ApprovalBand
from pricing.store.plan_inbox import STATE_FILE, PlanInbox, apply_approval_band
from pricing.store.plan_publish import plan_bytes

AT = datetime(2026, 11, 2, 4, tzinfo=UTC)
SIGNER = Signer.generate()


def _line(sku: str, old: int, new: int, group: str | None = None) -> PlanLine:
    return PlanLine(
        sku=sku, name=f"Product {sku}", category="snacks", status="change" if new != old else "keep",
        old_cents=old, new_cents=new, cost_cents=100, units_old=10.0, units_new=9.0,
        profit_old_cents=1000.0, profit_new_cents=1100.0, binding_rule="profit", explanation="best expected profit",
        group=group,
    )


def _plan(plan_id: str, store: str = "store-a", lines: list[PlanLine] | None = None) -> PricePlan:
    return PricePlan(
        plan_id=plan_id, created_at=AT, store=store, currency="EUR", model="chain-model",
        lines=lines or [_line("0001", 250, 270)],
        solver=SolverStats(status="OPTIMAL", objective_cents=0.0, bound_cents=0.0, seconds=0.01),
    )


def _message(plan: PricePlan, at: datetime, *, store: str = "store-a", signer: Signer = SIGNER) -> bytes:
    return seal_plan(plan_bytes(plan), store=store, plan_id=plan.plan_id, signer=signer, issued_at=at).to_json()


def _inbox(plans_dir: Path, prefix: str = "esl", broker: Any = None) -> PlanInbox:
    address = broker.address if broker else BrokerAddress("127.0.0.1", 1)
    return PlanInbox(address, prefix, "store-a", SIGNER.trusted(), plans_dir, say=lambda _t: None)


def test_a_genuine_plan_is_saved_as_a_plan_file_and_taken_until_reported(tmp_path: Path) -> None:
    inbox = _inbox(tmp_path)
    assert inbox.take() is None
    plan = _plan("chain-1")
    assert inbox.receive(_message(plan, AT)).outcome == "accepted"
    assert latest_plan(tmp_path) == tmp_path / "chain-1.json" and (tmp_path / "chain-1.csv").exists()
    assert read_plan(tmp_path / "chain-1.json") == plan
    assert inbox.take() == plan
    assert inbox.take() == plan  # still pending: nothing reported yet
    # A new inbox (the daemon restarted) finds it pending too.
    assert _inbox(tmp_path).take() == plan


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: _message(_plan("x-1"), AT, signer=Signer.generate()), "signature: unknown key"),
        (lambda: _message(_plan("x-1", store="store-b"), AT, store="store-b"), "store: the plan is for store 'store-b'"),
        (lambda: _message(_plan("x-1", store="store-b"), AT), "store: the plan inside is for store 'store-b'"),
        (lambda: b'{"v": 1}', "malformed:"),
    ],
)
def test_forged_foreign_and_malformed_plans_are_refused_and_never_written(tmp_path: Path, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    inbox = _inbox(tmp_path)
    handled = inbox.receive(make())
    assert handled.outcome == "refused" and handled.reason.startswith(reason), handled
    assert list(tmp_path.iterdir()) == [] and inbox.take() is None


def test_replays_are_refused_and_duplicates_ignored_across_restarts(tmp_path: Path) -> None:
    first, second = _message(_plan("chain-1"), AT), _message(_plan("chain-2"), AT + timedelta(hours=1))
    inbox = _inbox(tmp_path)
    assert inbox.receive(first).outcome == "accepted"
    assert inbox.receive(first).outcome == "duplicate"  # QoS 1 again, or the retained copy
    assert inbox.receive(second).outcome == "accepted"
    restarted = _inbox(tmp_path)
    assert restarted.receive(second).outcome == "duplicate"
    replay = restarted.receive(first)
    assert replay.outcome == "refused" and replay.reason.startswith("replay: issued 2026-11-02T04:00:00+00:00")
    same_time = restarted.receive(_message(_plan("chain-3"), AT + timedelta(hours=1)))
    assert same_time.outcome == "refused" and same_time.reason.startswith("replay:")
    assert restarted.take() == _plan("chain-2")
    assert not (tmp_path / "chain-3.json").exists()


def test_a_damaged_state_refuses_rather_than_forgets(tmp_path: Path) -> None:
    inbox = _inbox(tmp_path)
    inbox.receive(_message(_plan("chain-1"), AT))
    (tmp_path / STATE_FILE).write_text("{not json")
    handled = inbox.receive(_message(_plan("chain-0"), AT - timedelta(days=1)))
    assert handled.outcome == "refused" and "cannot read" in handled.reason


def test_the_store_approval_band_holds_big_changes_and_their_group() -> None:
    plan = _plan("chain-1", lines=[
        _line("0001", 200, 210), _line("0002", 200, 300, group="fam"), _line("0003", 200, 205, group="fam"),
        _line("0004", 200, 300).model_copy(update={"decided_by": "head office pricing"}), _line("0005", 200, 200),
    ])
    held = apply_approval_band(plan, ApprovalBand(max_change_pct=Decimal(10)))
    assert [line.status for line in held.lines] == ["change", "approval", "approval", "change", "keep"]
    assert held.lines[1].explanation.endswith("beyond the store's approval band")
    assert held.lines[2].explanation.endswith("waits with its group fam")
    assert apply_approval_band(plan, None) is plan


def test_take_with_a_band_rewrites_the_plan_file(tmp_path: Path) -> None:
    inbox = _inbox(tmp_path)
    inbox.receive(_message(_plan("chain-1", lines=[_line("0001", 200, 300), _line("0002", 200, 210)]), AT))
    taken = inbox.take(ApprovalBand(max_change_pct=Decimal(10)))
    assert taken is not None and taken.new_prices() == {"0002": 210}
    assert read_plan(tmp_path / "chain-1.json").awaiting_approval[0].sku == "0001"


@dataclass
class _Cycle:  # what the daemon's CycleResult carries
    result: str
    detail: str = ""
    plan: str | None = None
    changes: int = 1
    pushed_labels: int = 2
    confirmed: int = 2
    failed: int = 0
    waiting: int = 0


def test_reports_reach_the_result_topic_and_close_the_plan(mqtt_broker: Any, topics: Topics, tmp_path: Path) -> None:
    results: list[bytes] = []
    got = threading.Condition()

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with got:
            results.append(bytes(message.payload))
            got.notify_all()

    watcher = new_client("watcher")
    watcher.on_message = on_message
    connect(watcher, mqtt_broker.address)
    watcher.subscribe(ChainTopics(topics.prefix).result("store-a"), qos=1)
    inbox = _inbox(tmp_path, topics.prefix, mqtt_broker)
    try:
        with inbox:
            # Through the broker: the retained plan arrives; a refused one is reported by itself.
            publisher = new_client("headoffice")
            connect(publisher, mqtt_broker.address)
            plan_topic = ChainTopics(topics.prefix).plan("store-a")
            publisher.publish(plan_topic, _message(_plan("chain-1"), AT), qos=1, retain=True).wait_for_publish(5)
            publisher.publish(plan_topic, _message(_plan("evil"), AT, signer=Signer.generate()), qos=1).wait_for_publish(5)
            disconnect(publisher)
            assert inbox.wait_for(lambda h: len(h) == 2, 10), inbox.handled
            assert inbox.report_cycle(_Cycle("ok", plan="its-own-plan")) is None  # not an inbox plan: no report
            assert inbox.report_cycle(_Cycle("kill_switch", "kill switch on", plan="chain-1")).result == "parked"  # type: ignore[union-attr]
            assert inbox.take() is not None  # parked: still pending
            assert inbox.report_cycle(_Cycle("ok", plan="chain-1")).result == "ok"  # type: ignore[union-attr]
            assert inbox.take() is None
            with got:
                assert got.wait_for(lambda: len(results) >= 3, 10), results
            answers = [read_result(r) for r in results]
            assert [(a.plan_id, a.result) for a in answers] == [("evil", "refused"), ("chain-1", "parked"), ("chain-1", "ok")]
            assert answers[0].reason.startswith("signature: unknown key")
            assert answers[2].counts == {"changes": 1, "pushed_labels": 2, "confirmed": 2, "failed": 0, "waiting": 0}
    finally:
        disconnect(watcher)
