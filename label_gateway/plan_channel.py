"""Head office -> store: the signed, retained plan of one store, and the store's answer.

Topics (docs/chain-bridge.md), under the same ``{prefix}`` as the store's label topics::

    {prefix}/chain/{store}/plan          head office -> store   QoS 1, retained   StorePlanEnvelope
    {prefix}/chain/{store}/plan/result   store -> head office   QoS 1, retained   PlanResult

Head office publishes on its own broker; the store's Mosquitto bridges the store's two topics
(``in`` for the plan, ``out`` for the result), so a store sees only its own plan and a store that
was offline gets the latest one (retained) when its bridge reconnects.

What flows in and out: ``seal_plan(plan_json, store, plan_id, signer)`` turns the exact bytes of a
plan file (pricing.plan's JSON; this package does not read plans) into an envelope;
``open_plan(payload, trusted, store)`` checks it and gives back those bytes, or raises
``PlanRefused`` with a one-line reason. The plan travels zlib-compressed (a plan's JSON shrinks
about ten times: 2,000 SKUs are ~1.1 MB of JSON, ~126 kB compressed) as base64 text.

The signature is the engine's Ed25519 key, the same key directory and ``Signer`` as desired
states (label_gateway/signing.py), as a batch of one: it covers the compact JSON array::

    esl/store-plan/v1 NUL [store, plan_id, issued_at_us, plan_bytes, plan_sha256]

(``plan_sha256``: hex SHA-256 of the uncompressed plan JSON). The domain bytes differ from a
desired state's (``esl/desired/v1``), so no signature made for one is good for the other. The
signature is checked before anything is decompressed or parsed; a plan whose bytes do not hash to
the signed digest, or that decompress to more than ``MAX_PLAN_BYTES``, is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from label_gateway.signing import Proof, Signer, TrustedKeys
from pricing.core.errors import first_error
from pricing.core.ids import id_problem, shown
from pricing.core.timestamps import epoch_us

PLAN_DOMAIN = b"esl/store-plan/v1\x00"
CHANNEL_VERSION: Literal[1] = 1
QOS = 1
#: A store plan's JSON may not decompress to more than this (30,000 SKUs are ~20 MB).
MAX_PLAN_BYTES = 256 * 1024 * 1024
ENCODING = "zlib+base64"
PlanOutcome = Literal["ok", "failed", "parked", "refused"]
_json_string = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str


class PlanRefused(Exception):
    """A plan message the store must not apply; the message is the one-line reason
    (``signature: ...``, ``store: ...``, ``malformed: ...``, ``replay: ...``)."""

    def __init__(self, reason: str, *, plan_id: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.plan_id = plan_id


class ChainTopics:
    """The head office <-> store topics under one prefix."""

    def __init__(self, prefix: str) -> None:
        if not prefix or any(ch in prefix for ch in "+#\x00") or prefix.startswith("/") or prefix.endswith("/"):
            raise ValueError(f"prefix '{shown(prefix)}' is not a usable topic prefix")
        self.prefix = prefix
        self.base = f"{prefix}/chain"

    def _store(self, store: str) -> str:
        problem = id_problem(store, "store id")
        if problem:
            raise ValueError(problem)
        return f"{self.base}/{store}"

    def plan(self, store: str) -> str:
        return f"{self._store(store)}/plan"

    def result(self, store: str) -> str:
        return f"{self._store(store)}/plan/result"

    @property
    def plan_filter(self) -> str:
        return f"{self.base}/+/plan"

    @property
    def result_filter(self) -> str:
        return f"{self.base}/+/plan/result"

    def store_of(self, topic: str) -> str | None:
        """The store a plan or result topic names, or None for another topic."""
        parts = topic.split("/")
        base = self.base.split("/")
        if parts[: len(base)] != base or len(parts) not in (len(base) + 2, len(base) + 3):
            return None
        rest = parts[len(base) :]
        if rest[1] != "plan" or (len(rest) == 3 and rest[2] != "result"):
            return None
        return rest[0]


class StorePlanEnvelope(BaseModel):
    """One store's plan, signed by head office's engine key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = CHANNEL_VERSION
    store: str = Field(min_length=1, max_length=64)
    plan_id: str = Field(min_length=1, max_length=64)
    issued_at: AwareDatetime = Field(description="When head office issued it; a store takes only newer ones.")
    plan_bytes: int = Field(ge=1, le=MAX_PLAN_BYTES, description="Length of the uncompressed plan JSON.")
    plan_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the uncompressed plan JSON.")
    encoding: Literal["zlib+base64"] = ENCODING
    plan: str = Field(description="The plan JSON, zlib-compressed, base64 (standard alphabet).")
    key_id: str | None = Field(default=None, max_length=64)
    signature: str | None = Field(default=None, max_length=128)

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    def signed_message(self) -> bytes:
        return signed_plan_message(self.store, self.plan_id, epoch_us(self.issued_at), self.plan_bytes, self.plan_sha256)


class PlanResult(BaseModel):
    """What a store did with a plan (or with a message it refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1] = CHANNEL_VERSION
    store: str = Field(min_length=1, max_length=64)
    plan_id: str | None = Field(default=None, max_length=64, description="None when the message named none")
    result: PlanOutcome
    reason: str = Field(default="", max_length=1000)
    counts: dict[str, int] = Field(
        default_factory=dict, description="changes, pushed_labels, confirmed, failed, waiting (when applied)"
    )
    at: AwareDatetime

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


def signed_plan_message(store: str, plan_id: str, issued_at_us: int, plan_bytes: int, plan_sha256: str) -> bytes:
    """The exact bytes a store plan's signature covers (see the module docstring)."""
    text = (
        f"[{_json_string(store)},{_json_string(plan_id)},{int(issued_at_us)},{int(plan_bytes)},"
        f"{_json_string(plan_sha256)}]"
    )
    return PLAN_DOMAIN + text.encode()


def seal_plan(
    plan_json: bytes, *, store: str, plan_id: str, signer: Signer, issued_at: datetime | None = None
) -> StorePlanEnvelope:
    """The signed envelope of ``plan_json`` (the plan file's bytes) for ``store``."""
    for value, what in ((store, "store id"), (plan_id, "plan id")):
        problem = id_problem(value, what)
        if problem:
            raise ValueError(problem)
    if not plan_json or len(plan_json) > MAX_PLAN_BYTES:
        raise ValueError(f"plan {plan_id}: {len(plan_json)} bytes of JSON (1 to {MAX_PLAN_BYTES} allowed)")
    at = issued_at or datetime.now(UTC)
    envelope = StorePlanEnvelope(
        store=store, plan_id=plan_id, issued_at=at, plan_bytes=len(plan_json),
        plan_sha256=hashlib.sha256(plan_json).hexdigest(),
        plan=base64.b64encode(zlib.compress(plan_json, 6)).decode(),
    )
    proof = signer.sign_batch([envelope.signed_message()])[0]
    return envelope.model_copy(update={"key_id": proof.key_id, "signature": proof.signature})


@dataclass(frozen=True)
class OpenedPlan:
    """A plan message that passed every check: for ``store``, signed by a trusted key."""

    store: str
    plan_id: str
    issued_at: datetime
    issued_at_us: int
    plan_sha256: str
    plan_json: bytes
    key_id: str


def read_envelope(payload: bytes | bytearray) -> StorePlanEnvelope:
    """The envelope in ``payload``; PlanRefused (``malformed: ...``) when it is not one."""
    try:
        return StorePlanEnvelope.model_validate_json(payload)
    except ValidationError as exc:
        raise PlanRefused(f"malformed: {first_error(exc, 'payload')} ({exc.error_count()} problem(s))") from None


def open_plan(payload: bytes | bytearray, trusted: TrustedKeys, store: str) -> OpenedPlan:
    """Check a plan message meant for ``store`` and return the plan's JSON bytes.

    Raises PlanRefused with a one-line reason: not an envelope (``malformed:``), for another store
    (``store:``), unsigned, signed by a key not in ``trusted`` or not matching (``signature:``),
    or whose plan does not match what was signed (``malformed:``)."""
    envelope = read_envelope(payload)
    plan_id = envelope.plan_id
    if envelope.store != store:
        raise PlanRefused(f"store: the plan is for store '{shown(envelope.store)}', not '{store}'", plan_id=plan_id)
    proof = None
    if envelope.key_id and envelope.signature:
        proof = Proof(envelope.key_id, envelope.signature)
    problem = trusted.verify(proof, envelope.signed_message())
    if problem is not None:
        raise PlanRefused(problem.replace("unsigned desired state", "unsigned plan"), plan_id=plan_id)
    plan_json = _inflate(envelope, plan_id)
    if hashlib.sha256(plan_json).hexdigest() != envelope.plan_sha256:
        raise PlanRefused("malformed: the plan does not match its signed SHA-256", plan_id=plan_id)
    assert envelope.key_id is not None
    return OpenedPlan(
        store=envelope.store, plan_id=plan_id, issued_at=envelope.issued_at,
        issued_at_us=epoch_us(envelope.issued_at), plan_sha256=envelope.plan_sha256, plan_json=plan_json,
        key_id=envelope.key_id,
    )


def _inflate(envelope: StorePlanEnvelope, plan_id: str) -> bytes:
    """The uncompressed plan, never more than the signed length (a zip bomb stops there)."""
    try:
        packed = base64.b64decode(envelope.plan, validate=True)
        inflater = zlib.decompressobj()
        data = inflater.decompress(packed, envelope.plan_bytes + 1)
    except (binascii.Error, ValueError, zlib.error) as exc:
        raise PlanRefused(f"malformed: the plan is not {ENCODING} ({exc})", plan_id=plan_id) from None
    if len(data) != envelope.plan_bytes or not inflater.eof:
        raise PlanRefused(f"malformed: the plan is not {envelope.plan_bytes} bytes as signed", plan_id=plan_id)
    return data


def read_result(payload: bytes | bytearray) -> PlanResult:
    """A store's PlanResult; PlanRefused (``malformed: ...``) when the payload is not one."""
    try:
        return PlanResult.model_validate_json(payload)
    except ValidationError as exc:
        raise PlanRefused(f"malformed: {first_error(exc, 'payload')} ({exc.error_count()} problem(s))") from None


__all__ = [
    "ChainTopics",
    "OpenedPlan",
    "PlanRefused",
    "PlanResult",
    "StorePlanEnvelope",
    "open_plan",
    "read_envelope",
    "read_result",
    "seal_plan",
    "signed_plan_message",
]
