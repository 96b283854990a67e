"""The store's side of the chain channel: take head office's plan, under the store's own guards.

In: the store broker's address (head office's plans arrive there over the Mosquitto bridge), the
topic prefix, the store id, the public keys of head office's engine (``TrustedKeys``, the
``engine-<id>.pub`` files of its key directory) and the daemon's ``plans_dir``.
Out: ``take()`` -> the newest accepted plan not yet applied (or None), for the daemon's reprice
cycle; the plan's files in ``plans_dir`` (``<plan_id>.json`` + ``.csv``, as the daemon writes its
own); ``report()`` / ``report_cycle()`` -> a retained ``PlanResult`` on
``{prefix}/chain/{store}/plan/result``, which the bridge carries back to head office.

A plan message is accepted only when its envelope is signed by a trusted key, names this store
(the envelope and the plan inside), and was issued after the last plan this store accepted
(``issued_at``, persisted in ``plans_dir/chain-inbox.state``): a forged, unsigned, foreign or
replayed plan is refused, reported (``refused`` with the reason) and never written or applied.
The same plan delivered again (QoS 1, or the retained copy after a reconnect) is a duplicate and
is ignored quietly.

The plan stays pending until a report says it was applied (``ok`` or ``failed``: what failed is in
the outbox, which retries it); a ``parked`` cycle (kill switch, freeze window, a stop) leaves it
pending, so the next cycle takes it again (the outbox's content-hash dedup makes that harmless).
The daemon's freeze windows, kill switch and last gate apply as to its own plans; ``take(band=...)``
also holds the changes beyond the store's own approval band (``apply_approval_band``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, Self

import paho.mqtt.client as mqtt
from pydantic import ValidationError

from label_gateway.broker import (
    BrokerAddress,
    BrokerError,
    connect,
    disconnect,
    new_client,
)
from label_gateway.plan_channel import (
    QOS,
    ChainTopics,
    OpenedPlan,
    PlanOutcome,
    PlanRefused,
    PlanResult,
    open_plan,
)
from label_gateway.signing import TrustedKeys
from pricing.core.errors import first_error
from pricing.core.files import atomic_write_text
from pricing.plan.explain import needs_approval
from pricing.plan.plan_files import PlanFileError, read_plan
from pricing.plan.price_plan import PlanLine, PricePlan
from pricing.rules.config import ApprovalBand

log = logging.getLogger("esl.plan_inbox")

STATE_FILE = "chain-inbox.state"  # not *.json: plan_files() lists only plans
#: CycleResult.result -> what head office is told (frozen / kill_switch: the plan waits, parked)
CYCLE_OUTCOME: dict[str, PlanOutcome] = {
    "ok": "ok", "failed": "failed", "parked": "parked", "frozen": "parked", "kill_switch": "parked",
}
COUNTS = ("changes", "pushed_labels", "confirmed", "failed", "waiting")


class CycleLike(Protocol):
    """What ``report_cycle`` reads of the daemon's CycleResult."""

    result: str
    detail: str
    plan: str | None
    changes: int
    pushed_labels: int
    confirmed: int
    failed: int
    waiting: int


@dataclass(frozen=True)
class Handled:
    """One plan message and what the inbox did with it: accepted, duplicate or refused."""

    plan_id: str | None
    outcome: str
    reason: str = ""


def apply_approval_band(plan: PricePlan, band: ApprovalBand | None) -> PricePlan:
    """The plan with its changes beyond the store's approval band held for approval (a linked
    group waits as a whole). Changes a person already decided (``decided_by``) stay as they are."""
    if band is None:
        return plan
    lines: list[PlanLine] = []
    for line in plan.lines:
        if line.status == "change" and not line.decided_by and needs_approval(line.old_cents, line.new_cents, band):
            line = line.model_copy(update={
                "status": "approval", "explanation": f"{line.explanation}; needs approval: beyond the store's approval band",
            })
        lines.append(line)
    waiting = {line.group for line in lines if line.status == "approval" and line.group}
    lines = [
        line.model_copy(update={
            "status": "approval", "explanation": f"{line.explanation}; needs approval: waits with its group {line.group}",
        })
        if line.status == "change" and not line.decided_by and line.group in waiting else line
        for line in lines
    ]
    return plan.model_copy(update={"lines": lines})


class PlanInbox:
    """Head office's plans for one store, as they arrive on the store's broker."""

    def __init__(
        self,
        address: BrokerAddress,
        prefix: str,
        store: str,
        keys: TrustedKeys,
        plans_dir: Path,
        *,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.address = address
        self.topics = ChainTopics(prefix)
        self.store = store
        self.plan_topic = self.topics.plan(store)
        self.result_topic = self.topics.result(store)
        self.keys = keys
        self.plans_dir = Path(plans_dir)
        self.say = say or (lambda text: log.info("%s", text))
        self.handled: list[Handled] = []
        self._changed = threading.Condition()
        self._client: mqtt.Client | None = None

    # -- connection -------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> Self:
        """Connect to the store's broker and subscribe to this store's plan topic (again after
        every reconnect); the retained plan, if any, arrives at once. BrokerError (one line)."""
        self.plans_dir.mkdir(parents=True, exist_ok=True)
        client = new_client("plan-inbox")
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        connect(client, self.address, timeout=timeout)
        self._client = client
        return self

    def stop(self) -> None:
        if self._client is not None:
            disconnect(self._client)
            self._client = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_connect(self, c: mqtt.Client, userdata: object, flags: object, reason: mqtt.ReasonCode, props: object) -> None:
        if not reason.is_failure:
            c.subscribe(self.plan_topic, qos=QOS)

    def _on_message(self, c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.topic != self.plan_topic or not message.payload:  # an empty retained message clears the topic
            return
        try:
            handled = self.receive(bytes(message.payload))
        except Exception:  # never let a bad message kill paho's network thread
            log.exception("plan message on %s", message.topic)
            return
        if handled.outcome == "refused":
            self._publish(self._result(handled.plan_id, "refused", handled.reason), wait=False)

    # -- what arrives -----------------------------------------------------------------------
    def receive(self, payload: bytes) -> Handled:
        """Check one plan message and accept it (plan files + state written) or refuse it. The
        refusal is returned, logged and (from the broker) reported; nothing refused is written."""
        try:
            opened = open_plan(payload, self.keys, self.store)
            plan = self._plan(opened)
            with self._changed:
                handled = self._accept(opened, plan)
        except PlanRefused as refused:
            handled = Handled(refused.plan_id, "refused", refused.reason)
            self.say(f"plan {refused.plan_id or '(unnamed)'} from head office refused: {refused.reason}")
        with self._changed:
            self.handled.append(handled)
            self._changed.notify_all()
        return handled

    def _plan(self, opened: OpenedPlan) -> PricePlan:
        try:
            plan = PricePlan.model_validate_json(opened.plan_json)
        except ValidationError as exc:
            raise PlanRefused(f"malformed: not a price plan: {first_error(exc, 'plan')}", plan_id=opened.plan_id) from None
        if plan.store != self.store:
            raise PlanRefused(f"store: the plan inside is for store '{plan.store}', not '{self.store}'", plan_id=opened.plan_id)
        if plan.plan_id != opened.plan_id:
            raise PlanRefused(
                f"malformed: the envelope names plan {opened.plan_id} but the plan is {plan.plan_id}", plan_id=opened.plan_id
            )
        return plan

    def _accept(self, opened: OpenedPlan, plan: PricePlan) -> Handled:
        state = self._state()
        last = state.get("accepted")
        if last is not None:
            if (last["plan_id"], last["issued_at_us"], last["sha256"]) == (opened.plan_id, opened.issued_at_us, opened.plan_sha256):
                return Handled(opened.plan_id, "duplicate")
            if opened.issued_at_us <= int(last["issued_at_us"]):
                raise PlanRefused(
                    f"replay: issued {opened.issued_at.isoformat()}, not after plan {last['plan_id']} "
                    f"(issued {last['issued_at']}) that this store already took",
                    plan_id=opened.plan_id,
                )
        try:
            plan.write(self.plans_dir)
        except OSError as exc:  # the retained plan comes again at the next reconnect
            raise PlanRefused(f"cannot save the plan in {self.plans_dir}: {exc.strerror or exc}", plan_id=plan.plan_id) from None
        self._save_state({
            "accepted": {
                "plan_id": opened.plan_id, "issued_at_us": opened.issued_at_us,
                "issued_at": opened.issued_at.isoformat(), "sha256": opened.plan_sha256, "key_id": opened.key_id,
            },
            "pending": True,
        })
        self.say(f"plan {plan.plan_id} from head office accepted ({len(plan.changes)} changes)")
        return Handled(opened.plan_id, "accepted")

    # -- the daemon's side --------------------------------------------------------------------
    def take(self, band: ApprovalBand | None = None) -> PricePlan | None:
        """The newest accepted plan that no report has closed yet, or None. With ``band`` (the
        store's rules' approval band) its changes beyond the band are held for approval and the
        plan file is rewritten so, so `esl-pricing approve` and the review page see them."""
        with self._changed:
            state = self._state()
            accepted = state.get("accepted")
            if accepted is None or not state.get("pending"):
                return None
            path = self.plans_dir / f"{accepted['plan_id']}.json"
            try:
                plan = read_plan(path)
            except PlanFileError as exc:
                state["pending"] = False
                self._save_state(state)
                problem = str(exc)
            else:
                if band is not None:
                    held = apply_approval_band(plan, band)
                    if held != plan:
                        held.write(self.plans_dir)
                    plan = held
                return plan
        self.say(f"plan {accepted['plan_id']} from head office cannot be applied: {problem}")
        self.report(accepted["plan_id"], "failed", problem)
        return None

    def report(
        self, plan_id: str | None, result: PlanOutcome, reason: str = "", counts: dict[str, int] | None = None,
        *, timeout: float = 10.0,
    ) -> PlanResult:
        """Tell head office what became of ``plan_id`` (retained on the result topic, QoS 1, the
        PUBACK awaited). ``ok`` and ``failed`` close the pending plan; ``parked`` leaves it pending."""
        if result in ("ok", "failed"):
            with self._changed:
                state = self._state()
                accepted = state.get("accepted")
                if accepted is not None and accepted["plan_id"] == plan_id and state.get("pending"):
                    state["pending"] = False
                    self._save_state(state)
        answer = self._result(plan_id, result, reason, counts)
        self._publish(answer, wait=True, timeout=timeout)
        return answer

    def report_cycle(self, cycle: CycleLike, *, timeout: float = 10.0) -> PlanResult | None:
        """Report a daemon cycle that applied an inbox plan (``cycle.plan``); None for a cycle that
        did not (its plan is the store's own)."""
        with self._changed:
            accepted = self._state().get("accepted")
        if cycle.plan is None or accepted is None or accepted["plan_id"] != cycle.plan:
            return None
        outcome = CYCLE_OUTCOME.get(cycle.result, "failed")
        counts = {name: int(getattr(cycle, name)) for name in COUNTS}
        return self.report(cycle.plan, outcome, cycle.detail, counts, timeout=timeout)

    def wait_for(self, predicate: Callable[[list[Handled]], bool], timeout: float) -> bool:
        """Wait until ``predicate(handled)`` holds (tests, a CLI that waits for a plan)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.handled):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    # -- pieces ---------------------------------------------------------------------------------
    def _result(self, plan_id: str | None, result: PlanOutcome, reason: str, counts: dict[str, int] | None = None) -> PlanResult:
        return PlanResult(store=self.store, plan_id=plan_id, result=result, reason=reason[:1000],
                          counts=counts or {}, at=datetime.now(UTC))

    def _publish(self, answer: PlanResult, *, wait: bool, timeout: float = 10.0) -> None:
        client = self._client
        if client is None:
            raise BrokerError(f"plan inbox of store {self.store} is not connected (start() first)")
        info = client.publish(self.result_topic, answer.to_json(), qos=QOS, retain=True)
        if not wait:  # paho's network thread: it sends it; waiting here would block that thread
            return
        info.wait_for_publish(timeout)
        if not info.is_published():
            raise BrokerError(f"MQTT broker at {self.address.url} did not acknowledge the plan result within {timeout:.0f}s")

    @property
    def _state_path(self) -> Path:
        return self.plans_dir / STATE_FILE

    def _state(self) -> dict[str, Any]:
        try:
            state = json.loads(self._state_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            # A damaged state must not open the door to replays: refuse until an operator looks.
            raise PlanRefused(f"replay: cannot read {self._state_path} ({exc}); fix or delete it") from None
        return state if isinstance(state, dict) else {}

    def _save_state(self, state: dict[str, Any]) -> None:
        atomic_write_text(self._state_path, json.dumps(state, indent=2, sort_keys=True) + "\n")


__all__ = ["CYCLE_OUTCOME", "Handled", "PlanInbox", "apply_approval_band"]
