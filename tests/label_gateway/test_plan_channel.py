"""The signed envelope of a store's plan and the chain topics: plain data, no broker."""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime

import pytest

from label_gateway.plan_channel import (
    MAX_PLAN_BYTES,
    ChainTopics,
    PlanRefused,
    PlanResult,
    StorePlanEnvelope,
    open_plan,
    read_result,
    seal_plan,
    signed_plan_message,
)
from label_gateway.signing import Signer, TrustedKeys, signed_message

AT = datetime(2026, 11, 2, 4, 0, 0, 123456, tzinfo=UTC)
PLAN = json.dumps({"plan_id": "p-1", "store": "store-a", "lines": [{"sku": "0001", "new_cents": 299}] * 50}).encode()


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate()


def _sealed(signer: Signer, **kw: object) -> StorePlanEnvelope:
    args: dict[str, object] = {"store": "store-a", "plan_id": "p-1", "signer": signer, "issued_at": AT} | kw
    return seal_plan(PLAN, **args)  # type: ignore[arg-type]


def _refused(payload: bytes, trusted: TrustedKeys, store: str = "store-a") -> str:
    with pytest.raises(PlanRefused) as info:
        open_plan(payload, trusted, store)
    return info.value.reason


def test_a_sealed_plan_opens_to_its_exact_bytes(signer: Signer) -> None:
    envelope = _sealed(signer)
    opened = open_plan(envelope.to_json(), signer.trusted(), "store-a")
    assert opened.plan_json == PLAN
    assert (opened.plan_id, opened.store, opened.issued_at, opened.key_id) == ("p-1", "store-a", AT, signer.key_id)
    assert opened.issued_at_us == int(AT.timestamp()) * 1_000_000 + 123456
    assert envelope.plan_bytes == len(PLAN) and len(envelope.plan) < len(PLAN)  # compressed


def test_signed_message_is_the_documented_array(signer: Signer) -> None:
    envelope = _sealed(signer)
    message = signed_plan_message("store-a", "p-1", 1793592000123456, len(PLAN), envelope.plan_sha256)
    assert message == (
        b"esl/store-plan/v1\x00" + f'["store-a","p-1",1793592000123456,{len(PLAN)},"{envelope.plan_sha256}"]'.encode()
    )
    assert envelope.signed_message() == message


def test_another_store_unsigned_and_unknown_keys_are_refused(signer: Signer) -> None:
    trusted = signer.trusted()
    assert _refused(_sealed(signer, store="store-b").to_json(), trusted).startswith("store: the plan is for store 'store-b'")
    unsigned = _sealed(signer).model_copy(update={"key_id": None, "signature": None})
    assert _refused(unsigned.to_json(), trusted) == "signature: missing (unsigned plan)"
    other = Signer.generate()
    assert _refused(_sealed(other).to_json(), trusted) == f"signature: unknown key {other.key_id}"


def test_any_change_to_what_was_signed_is_refused(signer: Signer) -> None:
    trusted = signer.trusted()
    genuine = _sealed(signer)
    for change in ({"plan_id": "p-2"}, {"issued_at": datetime(2027, 1, 1, tzinfo=UTC)}, {"plan_sha256": "0" * 64}):
        assert _refused(genuine.model_copy(update=change).to_json(), trusted) == "signature: invalid", change
    # Other plan bytes under the genuine signature: same length, other content.
    swapped = PLAN.replace(b"299", b"199")
    forged = genuine.model_copy(update={"plan": base64.b64encode(zlib.compress(swapped)).decode()})
    assert _refused(forged.to_json(), trusted) == "malformed: the plan does not match its signed SHA-256"


def test_a_plan_longer_than_signed_is_never_inflated_past_its_length(signer: Signer) -> None:
    """A zip bomb under a genuine signature of a short plan stops at the signed length + 1."""
    bomb = base64.b64encode(zlib.compress(b"{" * (MAX_PLAN_BYTES // 64))).decode()
    forged = _sealed(signer).model_copy(update={"plan": bomb})
    assert _refused(forged.to_json(), signer.trusted()).startswith(f"malformed: the plan is not {len(PLAN)} bytes")
    garbage = _sealed(signer).model_copy(update={"plan": "not base64!"})
    assert _refused(garbage.to_json(), signer.trusted()).startswith("malformed: the plan is not zlib+base64")


def test_not_an_envelope_is_malformed(signer: Signer) -> None:
    assert _refused(b"{", signer.trusted()).startswith("malformed:")
    assert _refused(b'{"v": 1, "store": "store-a"}', signer.trusted()).startswith("malformed:")
    extra = json.loads(_sealed(signer).to_json()) | {"price_cents": 1}
    assert _refused(json.dumps(extra).encode(), signer.trusted()).startswith("malformed:")


def test_a_plan_signature_is_no_use_for_a_desired_state(signer: Signer) -> None:
    """Both use the engine's key; the domain bytes keep the two kinds of signature apart."""
    envelope = _sealed(signer)
    proof = signer.sign_batch([envelope.signed_message()])[0]
    state = signed_message("store-a", "L1", "0001", 1, 299, "EUR", None, None)
    assert signer.trusted().verify(proof, envelope.signed_message()) is None
    assert signer.trusted().verify(proof, state) == "signature: invalid"


def test_seal_refuses_ids_that_cannot_be_topic_levels(signer: Signer) -> None:
    with pytest.raises(ValueError, match="store id"):
        seal_plan(PLAN, store="a/b", plan_id="p-1", signer=signer)
    with pytest.raises(ValueError, match="plan id"):
        seal_plan(PLAN, store="store-a", plan_id="../x", signer=signer)
    with pytest.raises(ValueError, match="bytes of JSON"):
        seal_plan(b"", store="store-a", plan_id="p-1", signer=signer)


def test_topics_and_the_store_they_name() -> None:
    topics = ChainTopics("esl")
    assert topics.plan("store-a") == "esl/chain/store-a/plan"
    assert topics.result("store-a") == "esl/chain/store-a/plan/result"
    assert (topics.plan_filter, topics.result_filter) == ("esl/chain/+/plan", "esl/chain/+/plan/result")
    assert topics.store_of("esl/chain/store-a/plan") == "store-a"
    assert topics.store_of("esl/chain/store-a/plan/result") == "store-a"
    for other in ("esl/chain/store-a", "esl/chain/store-a/other", "esl/store-a/gateway/g/ack", "x/chain/s/plan"):
        assert topics.store_of(other) is None, other
    with pytest.raises(ValueError):
        topics.plan("store/a")
    with pytest.raises(ValueError):
        ChainTopics("esl/#")


def test_results_round_trip_and_bad_ones_are_malformed() -> None:
    result = PlanResult(store="store-a", plan_id="p-1", result="ok", counts={"confirmed": 3}, at=AT)
    assert read_result(result.to_json()) == result
    with pytest.raises(PlanRefused, match="malformed"):
        read_result(b'{"v": 1, "store": "store-a", "result": "maybe", "at": "2026-11-02T04:00:00Z"}')
