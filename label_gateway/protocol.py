"""The wire protocol between the engine and label gateways (see docs/protocol.md).

MQTT 3.1.1, so every broker and gateway works; what MQTT 5 properties would carry (label,
version, correlation) travels in the JSON payload. Topics, zigbee2mqtt style::

    {prefix}/{store}/gateway/{gateway}/label/{label}/desired   engine -> gateway  QoS 1, retained
    {prefix}/{store}/gateway/{gateway}/ack                     gateway -> engine  QoS 1 (batches of acks)
    {prefix}/{store}/gateway/{gateway}/status                  gateway, retained, last will "offline"

A desired state is versioned and content-hashed: a label ignores a version <= the one it shows.
A gateway reports label outcomes in batches (``GatewayAcks``): one message per flush carries up to
``MAX_ACKS_PER_MESSAGE`` acks, so acks cost the engine and the broker a fraction of the updates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from label_gateway.signing import Proof, signed_message
from pricing.core.errors import first_error
from pricing.core.ids import id_problem, shown
from pricing.core.money import to_cents, to_decimal
from pricing.core.timestamps import to_us

PROTOCOL_VERSION: Literal[1] = 1
QOS = 1
DEFAULT_PREFIX = "esl"
#: Versions are the engine's clock in microseconds (1.8e15 today), so they stay below 2**53 (exact
#: in every JSON reader) until the year 2255; anything above was not issued by the engine.
MAX_VERSION = 2**53 - 1
#: A 64-bit column holds any version a label may claim; larger numbers are not even stored.
MAX_CLAIMED_VERSION = 2**63 - 1


class ProtocolError(ValueError):
    """A payload that does not follow the protocol. The message says what is wrong."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


_json_string = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str
#: Compact JSON, made once: json.dumps() with separators builds a new encoder on every call.
COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


def content_hash(label: str, sku: str, price_cents: int, currency: str, reference_cents: int | None = None) -> str:
    """Hash of what the label displays; equal hashes mean an update would change nothing visible.

    The hashed text is the compact JSON array ``[label, sku, price_cents, currency]``, with the
    reference price appended when the label shows one, written string by string (every label
    checks this on every update; a whole-list encode was slower)."""
    reference = "" if reference_cents is None else f",{int(reference_cents)}"
    canonical = f"[{_json_string(label)},{_json_string(sku)},{int(price_cents)},{_json_string(currency)}{reference}]"
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class DesiredState(_Message):
    """What a label should display, from version ``version`` on."""

    v: Literal[1] = PROTOCOL_VERSION
    label: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    version: int = Field(
        ge=1, le=MAX_VERSION, description="Monotonic per label; a label ignores a version <= the one it shows."
    )
    price: str = Field(description="Price as decimal text, e.g. '2.99' (equal to price_cents).")
    price_cents: int = Field(ge=1)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    reference_price: str | None = Field(
        default=None,
        description="EU Omnibus: with a price reduction, the lowest price of the previous 30 days, as decimal text.",
    )
    reference_price_cents: int | None = Field(default=None, ge=1, description="reference_price in cents.")
    content_hash: str
    effective_at: datetime | None = None
    correlation: str = Field(description="The plan that decided this price.")
    issued_at: datetime
    key_id: str | None = Field(default=None, max_length=64, description="The engine key that signed this state.")
    signature: str | None = Field(
        default=None, max_length=128,
        description="Ed25519 signature (base64url) over the root of the batch this state was signed in; the "
        "leaf is store, label, sku, version, price, reference price, effective_at and currency "
        "(label_gateway/signing.py). Labels reject a state without a valid one.",
    )
    proof: str = Field(
        default="", max_length=1024, description="Sibling hashes from this state's leaf to the batch root (base64url)."
    )
    proof_index: int = Field(default=0, ge=0, description="This state's place in its batch.")
    proof_size: int = Field(default=1, ge=1, le=1_000_000, description="States in the batch.")

    @model_validator(mode="after")
    def _consistent(self) -> DesiredState:
        if to_cents(self.price) != self.price_cents:
            raise ValueError(f"price '{self.price}' does not equal price_cents {self.price_cents}")
        if (self.reference_price is None) != (self.reference_price_cents is None) or (
            self.reference_price is not None and to_cents(self.reference_price) != self.reference_price_cents
        ):
            raise ValueError("reference_price and reference_price_cents must both be given and equal")
        expected = content_hash(self.label, self.sku, self.price_cents, self.currency, self.reference_price_cents)
        if self.content_hash != expected:
            raise ValueError("content_hash does not match label, sku, price and currency")
        return self

    def signed_message(self, store: str) -> bytes:
        """What this state's proof must prove, for a label of ``store``."""
        return signed_message(
            store, self.label, self.sku, self.version, self.price_cents, self.currency,
            self.reference_price_cents, to_us(self.effective_at),
        )

    def signed_proof(self) -> Proof | None:
        if self.key_id is None or self.signature is None:
            return None
        return Proof(self.key_id, self.signature, self.proof_index, self.proof_size, self.proof)

    @classmethod
    def build(
        cls,
        *,
        label: str,
        sku: str,
        version: int,
        price_cents: int,
        currency: str,
        correlation: str,
        effective_at: datetime | None = None,
        reference_cents: int | None = None,
    ) -> DesiredState:
        return cls(
            label=label,
            sku=sku,
            version=version,
            price=str(to_decimal(price_cents)),
            price_cents=price_cents,
            currency=currency,
            reference_price=None if reference_cents is None else str(to_decimal(reference_cents)),
            reference_price_cents=reference_cents,
            content_hash=content_hash(label, sku, price_cents, currency, reference_cents),
            effective_at=effective_at,
            correlation=correlation,
            issued_at=utc_now(),
        )


AckStatus = Literal["displayed", "unchanged", "scheduled", "stale", "rejected", "unreachable"]
MAX_ACKS_PER_MESSAGE = 500


class LabelAck(_Message):
    """A gateway's answer for one desired state.

    displayed: the label now shows ``version``. unchanged: it already showed the same content, so
    it took the version without a refresh. scheduled: the label holds ``version`` and switches to
    it at its ``effective_at`` (a ``displayed`` ack follows then). stale: it shows
    ``shown_version`` >= ``version`` and ignored this one. rejected: it can never display it
    (``reason`` says why). unreachable: the label did not answer the radio this time (transient).
    """

    v: Literal[1] = PROTOCOL_VERSION
    label: str = Field(min_length=1)
    version: int = Field(ge=1, le=MAX_CLAIMED_VERSION)
    status: AckStatus
    shown_version: int = Field(ge=0, le=MAX_CLAIMED_VERSION)
    content_hash: str | None = None
    reason: str | None = None
    correlation: str | None = None
    battery_mv: int | None = Field(default=None, ge=0, le=10_000, description="Label battery after this update.")
    at: datetime


class GatewayAcks(_Message):
    """One batch of acks from one gateway. Entries are validated one by one (``parse_acks``), so a
    bad entry is counted and dropped without losing the good ones next to it."""

    v: Literal[1] = PROTOCOL_VERSION
    gateway: str = Field(min_length=1)
    acks: list[dict[str, Any]] = Field(max_length=MAX_ACKS_PER_MESSAGE)
    at: datetime | None = None

    @classmethod
    def of(cls, gateway: str, acks: Sequence[LabelAck]) -> GatewayAcks:
        return cls(gateway=gateway, acks=[a.model_dump(mode="json", exclude_none=True) for a in acks], at=utc_now())


@dataclass(frozen=True)
class ParsedAcks:
    gateway: str
    acks: list[LabelAck]
    malformed: int  # entries that did not validate


class _ValidAcks(_Message):
    """A batch whose entries are all valid: decoded in one pass (the common case)."""

    v: Literal[1] = PROTOCOL_VERSION
    gateway: str = Field(min_length=1)
    acks: list[LabelAck] = Field(max_length=MAX_ACKS_PER_MESSAGE)
    at: datetime | None = None


def parse_acks(payload: bytes | bytearray) -> ParsedAcks:
    """Decode an ack batch. A payload that is not a batch at all raises ProtocolError; bad entries
    inside a good batch are counted in ``malformed``."""
    try:
        valid = _ValidAcks.model_validate_json(payload)
        return ParsedAcks(valid.gateway, valid.acks, 0)
    except ValidationError:
        pass
    batch = parse(GatewayAcks, payload)
    good: list[LabelAck] = []
    bad = 0
    for entry in batch.acks:
        try:
            good.append(LabelAck.model_validate(entry))
        except ValidationError:
            bad += 1
    return ParsedAcks(batch.gateway, good, bad)


GatewayState = Literal["online", "offline"]


class GatewayStatus(_Message):
    """Retained per gateway; the broker publishes ``offline`` as the gateway's last will. An online
    gateway republishes it now and then with fresh label counts (a heartbeat)."""

    v: Literal[1] = PROTOCOL_VERSION
    gateway: str = Field(min_length=1)
    state: GatewayState
    labels: int | None = Field(default=None, ge=0)
    low_battery: int | None = Field(default=None, ge=0, description="Labels reporting a low battery.")
    failed_labels: int | None = Field(default=None, ge=0, description="Labels that no longer answer the radio.")
    at: datetime | None = None


M = TypeVar("M", bound=_Message)


def parse(model: type[M], payload: bytes | bytearray) -> M:
    """Decode a payload; any problem becomes one ProtocolError line."""
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise ProtocolError(f"{model.__name__}: {first_error(exc, 'payload')} ({exc.error_count()} problem(s))") from None


class Topics:
    """Topic names for one store under one prefix."""

    def __init__(self, store: str, prefix: str = DEFAULT_PREFIX) -> None:
        if not prefix or any(ch in prefix for ch in "+#\x00") or prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"prefix '{shown(prefix)}' is not a usable topic prefix")
        problem = id_problem(store, "store id")
        if problem:
            raise ValueError(problem)
        self.prefix = prefix
        self.store = store
        self.base = f"{prefix}/{store}"

    def gateway(self, gateway: str) -> str:
        return f"{self.base}/gateway/{gateway}"

    def desired(self, gateway: str, label: str) -> str:
        return f"{self.gateway(gateway)}/label/{label}/desired"

    def desired_filter(self, gateway: str) -> str:
        return f"{self.gateway(gateway)}/label/+/desired"

    def ack(self, gateway: str) -> str:
        return f"{self.gateway(gateway)}/ack"

    @property
    def ack_filter(self) -> str:
        return f"{self.base}/gateway/+/ack"

    def status(self, gateway: str) -> str:
        return f"{self.gateway(gateway)}/status"

    @property
    def status_filter(self) -> str:
        return f"{self.base}/gateway/+/status"

    @property
    def everything(self) -> str:
        return f"{self.base}/#"


PAYLOADS: tuple[type[_Message], ...] = (DesiredState, GatewayAcks, LabelAck, GatewayStatus)


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every payload (committed under docs/protocol/; a test checks they are current).
    A batch's entries are described by the LabelAck schema, though they are validated one by one."""
    schemas: dict[str, dict[str, Any]] = {}
    for model in PAYLOADS:
        schema = model.model_json_schema()
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        if model is GatewayAcks:
            schema["properties"]["acks"]["items"] = {"$ref": "LabelAck.schema.json"}
        schemas[model.__name__] = schema
    return schemas


def write_schemas(directory: str) -> list[str]:
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in json_schemas().items():
        target = out / f"{name}.schema.json"
        target.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        written.append(str(target))
    return written


if __name__ == "__main__":
    import sys

    for path in write_schemas(sys.argv[1] if len(sys.argv) > 1 else "docs/protocol"):
        print(f"wrote {path}")
