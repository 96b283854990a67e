import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from label_gateway.protocol import (
    DesiredState,
    GatewayStatus,
    LabelAck,
    ProtocolError,
    Topics,
    content_hash,
    parse,
)


def _state(**overrides: object) -> DesiredState:
    args = dict(label="L1", sku="0012", version=7, price_cents=299, currency="EUR", correlation="plan-1")
    args.update(overrides)
    return DesiredState.build(**args)  # type: ignore[arg-type]


def test_desired_state_round_trips_and_carries_decimal_text() -> None:
    state = _state()
    assert state.price == "2.99"
    assert parse(DesiredState, state.to_json()) == state


@given(st.integers(min_value=1, max_value=10**8))
def test_price_text_always_equals_cents(cents: int) -> None:
    state = _state(price_cents=cents)
    assert parse(DesiredState, state.to_json()).price_cents == cents


def test_price_and_cents_must_agree() -> None:
    payload = _state().to_json().replace(b'"2.99"', b'"2.98"')
    with pytest.raises(ProtocolError, match="does not equal price_cents"):
        parse(DesiredState, payload)


def test_content_hash_is_checked() -> None:
    payload = _state().to_json().replace(b'"sku":"0012"', b'"sku":"0013"')
    with pytest.raises(ProtocolError, match="content_hash"):
        parse(DesiredState, payload)


@given(st.text(), st.text(), st.integers(min_value=1, max_value=10**12), st.sampled_from(["EUR", "USD", "ÄÖÜ"]))
def test_content_hash_is_sha256_of_the_compact_json_array(label: str, sku: str, cents: int, currency: str) -> None:
    """The protocol's definition (docs/protocol.md); stored hashes depend on it staying so."""
    canonical = json.dumps([label, sku, cents, currency], separators=(",", ":"))
    assert content_hash(label, sku, cents, currency) == hashlib.sha256(canonical.encode()).hexdigest()[:16]


def test_content_hash_depends_on_displayed_content_only() -> None:
    assert content_hash("L1", "0012", 299, "EUR") == _state(version=1).content_hash == _state(version=9).content_hash
    assert content_hash("L1", "0012", 299, "EUR") != content_hash("L1", "0012", 298, "EUR")


@pytest.mark.parametrize(
    "payload",
    [b"", b"not json", b"[]", b'{"label": "L1"}', b'{"label":"L1","version":0,"status":"displayed","shown_version":0,"at":"2026-01-01T00:00:00Z"}'],
)
def test_malformed_acks_are_one_protocol_error(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse(LabelAck, payload)


def test_ack_and_status_round_trip() -> None:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    ack = LabelAck(label="L1", version=3, status="displayed", shown_version=3, at=at)
    assert parse(LabelAck, ack.to_json()) == ack
    status = GatewayStatus(gateway="gw-01", state="online", labels=10, at=at)
    assert parse(GatewayStatus, status.to_json()) == status


def test_topics() -> None:
    topics = Topics("store-1", prefix="esl")
    assert topics.desired("gw-01", "L7") == "esl/store-1/gateway/gw-01/label/L7/desired"
    assert topics.desired_filter("gw-01") == "esl/store-1/gateway/gw-01/label/+/desired"
    assert topics.ack("gw-01") == "esl/store-1/gateway/gw-01/ack"
    assert topics.ack_filter == "esl/store-1/gateway/+/ack"
    assert topics.status("gw-01") == "esl/store-1/gateway/gw-01/status"
    with pytest.raises(ValueError):
        Topics("store/+", prefix="esl")


def test_committed_payload_schemas_are_current() -> None:
    from label_gateway.protocol import json_schemas

    directory = Path(__file__).resolve().parents[2] / "docs" / "protocol"
    for name, schema in json_schemas().items():
        committed = (directory / f"{name}.schema.json").read_text(encoding="utf-8")
        assert committed == json.dumps(schema, indent=2, sort_keys=True) + "\n", (
            f"docs/protocol/{name}.schema.json is out of date; run `python -m label_gateway.protocol docs/protocol`"
        )


def test_ack_batch_keeps_good_entries_and_counts_bad_ones() -> None:
    from label_gateway.protocol import GatewayAcks, parse_acks, utc_now

    good = LabelAck(label="L1", version=3, status="displayed", shown_version=3, at=utc_now())
    batch = GatewayAcks.of("gw-01", [good]).model_dump(mode="json")
    batch["acks"].append({"label": "L2", "version": -1})
    parsed = parse_acks(json.dumps(batch).encode())
    assert parsed.gateway == "gw-01" and parsed.acks == [good] and parsed.malformed == 1
    for payload in (b"", b"{", b"[]", b'{"gateway":"g"}', b'{"gateway":"g","acks":[],"extra":1}'):
        with pytest.raises(ProtocolError):
            parse_acks(payload)
