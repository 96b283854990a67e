"""Signed desired states: Merkle batches, verification, and the engine's key directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from label_gateway.signing import (
    BATCH,
    KeyDirectory,
    Proof,
    Signer,
    SigningError,
    TrustedKeys,
    _leaf,
    merkle_proofs,
    merkle_root,
    signed_message,
)


def _message(i: int, store: str = "S1") -> bytes:
    return signed_message(store, f"L{i}", f"{i:06d}", 1_700_000_000_000_000 + i, 100 + i, "EUR", None, None)


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 8, 9, 31, 33, BATCH])
def test_every_leaf_of_a_tree_of_any_size_leads_to_its_root(size: int) -> None:
    leaves = [_leaf(_message(i)) for i in range(size)]
    root, paths = merkle_proofs(leaves)
    for index, (leaf, path) in enumerate(zip(leaves, paths, strict=True)):
        assert merkle_root(leaf, index, size, path) == root
        assert len(path) <= (size - 1).bit_length()
        if size > 1:  # another place or a path cut short proves nothing (the size is signed with the root)
            assert merkle_root(leaf, (index + 1) % size, size, path) != root
            assert merkle_root(leaf, index, size, path[:-1]) != root


@given(st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=BATCH * 2, unique=True))
def test_a_batch_proves_each_of_its_messages_and_nothing_else(messages: list[bytes]) -> None:
    signer = Signer.generate()
    trusted = signer.trusted()
    proofs = signer.sign_batch(messages)
    assert len(proofs) == len(messages)
    assert len({p.signature for p in proofs}) == -(-len(messages) // BATCH)  # one signature per batch
    for message, proof in zip(messages, proofs, strict=True):
        assert trusted.verify(proof, message) is None
        assert trusted.verify(proof, message + b"!") is not None


def test_what_a_label_refuses_and_why() -> None:
    signer = Signer.generate()
    (proof,) = signer.sign_batch([_message(1)])
    trusted = signer.trusted()
    assert trusted.verify(None, _message(1)) == "signature: missing (unsigned desired state)"
    assert trusted.verify(proof, _message(2)) == "signature: invalid"
    assert trusted.verify(proof, _message(1, store="S2")) == "signature: invalid"  # another store's label
    other = Signer.generate()
    assert Signer.generate().trusted().verify(proof, _message(1)).startswith("signature: unknown key")
    assert other.trusted().verify(Proof(other.key_id, proof.signature), _message(1)) == "signature: invalid"
    assert trusted.verify(Proof(proof.key_id, "!!!"), _message(1)) == "signature: not base64"
    assert trusted.verify(Proof(proof.key_id, "AAAA"), _message(1)) == "signature: wrong length"
    assert trusted.verify(Proof(proof.key_id, proof.signature, index=3, size=2), _message(1)).endswith("batch")
    pair = signer.sign_batch([_message(1), _message(2), _message(3)])
    claimed_bigger = Proof(pair[0].key_id, pair[0].signature, pair[0].index, 4, pair[0].path)  # same root, other size
    assert trusted.verify(claimed_bigger, _message(1)) == "signature: invalid"


def test_the_remembered_roots_are_bounded() -> None:
    from label_gateway import signing

    signer = Signer.generate()
    trusted = signer.trusted()
    for start in range(0, (signing._VERIFIED_ROOTS + 10) * 2, 2):
        messages = [_message(start), _message(start + 1)]
        for message, proof in zip(messages, signer.sign_batch(messages), strict=True):
            assert trusted.verify(proof, message) is None
    assert len(trusted._verified) == signing._VERIFIED_ROOTS


def test_a_signer_never_shows_its_secret() -> None:
    signer = Signer.generate()
    assert signer._secret.hex() not in repr(signer) and signer.key_id in repr(signer)


def test_the_key_directory_creates_once_rotates_and_retires(tmp_path: Path) -> None:
    keys = KeyDirectory(tmp_path / "keys")
    first, made = keys.create()
    assert made and keys.create() == (first, False)
    private = tmp_path / "keys" / f"engine-{first}.key"
    assert (os.stat(private).st_mode & 0o777) == 0o600
    assert keys.signer().key_id == first
    second = keys.rotate()
    assert keys.signer().key_id == second != first
    assert set(keys.trusted().keys) == {first, second}  # the old key stays trusted until retired
    assert [(k.key_id, k.current) for k in keys.keys()] == sorted([(first, False), (second, True)])
    with pytest.raises(SigningError, match="is the current signing key"):
        keys.retire(second)
    keys.retire(first)
    assert set(keys.trusted().keys) == {second}
    with pytest.raises(SigningError, match="no key"):
        keys.retire(first)


def test_unusable_keys_are_one_line(tmp_path: Path) -> None:
    empty = KeyDirectory(tmp_path / "none")
    with pytest.raises(SigningError, match="esl-pricing keys create"):
        empty.signer()
    keys = KeyDirectory(tmp_path / "keys")
    kid, _ = keys.create()
    (tmp_path / "keys" / f"engine-{kid}.key").write_text("not a key")
    with pytest.raises(SigningError, match="not a readable PEM private key") as caught:
        keys.signer()
    assert "\n" not in str(caught.value)
    (tmp_path / "keys" / f"engine-{kid}.key").unlink()
    with pytest.raises(SigningError, match="no private key file"):
        keys.signer()
    (tmp_path / "bad.pub").write_text("-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----\n")
    with pytest.raises(SigningError, match="not a readable PEM public key"):
        TrustedKeys.load(tmp_path / "bad.pub")
    with pytest.raises(SigningError, match="no public keys"):
        TrustedKeys.load(tmp_path / "none-such").keys if False else TrustedKeys.load(_empty_dir(tmp_path))


def _empty_dir(tmp_path: Path) -> Path:
    path = tmp_path / "empty"
    path.mkdir()
    return path
