"""esl-pricing keys: the engine's Ed25519 signing keys (label_gateway/signing.py, docs/security.md).

Labels take a desired state only when it is signed by a key they trust. The engine signs with the
directory's current key; gateways get copies of the public keys (``*.pub``), never the private one.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from label_gateway.signing import KeyDirectory
from pricing.cli.common import (
    DEFAULT_KEYS,
    JsonOption,
    KeysOption,
    command_group,
    emit_json,
    err,
    user_errors,
)

keys_app = command_group("The engine's signing keys: create, rotate, list, retire.")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(keys: KeysOption = DEFAULT_KEYS, as_json: JsonOption = False) -> None:
    """Make the signing key pair if the directory has none (idempotent)."""
    with user_errors():
        directory = KeyDirectory(keys)
        kid, made = directory.create()
    if made:
        err.print(
            f"created signing key [bold]{kid}[/] in {escape(str(keys))}: copy "
            f"{escape(str(keys / f'engine-{kid}.pub'))} to every gateway (never the .key file)",
            highlight=False,
        )
    else:
        err.print(f"signing key {kid} already exists in {escape(str(keys))}", highlight=False)
    if as_json:
        emit_json({"key_id": kid, "created": made, "directory": str(keys)})


@keys_app.command("rotate")
def keys_rotate(keys: KeysOption = DEFAULT_KEYS, as_json: JsonOption = False) -> None:
    """Make a new key pair and sign with it from now on. Give the gateways the new public key
    first; the old one stays trusted until `keys retire`."""
    with user_errors():
        directory = KeyDirectory(keys)
        old = directory.current_id()
        kid = directory.rotate()
    err.print(
        f"signing with new key [bold]{kid}[/] (was {old or 'none'}). Next: distribute "
        f"{escape(str(keys / f'engine-{kid}.pub'))} to the gateways, run `esl-pricing outbox reconcile` "
        f"so every label holds a state signed with it, then `esl-pricing keys retire {old}`.",
        highlight=False,
    )
    if as_json:
        emit_json({"key_id": kid, "previous": old, "directory": str(keys)})


@keys_app.command("list")
def keys_list(keys: KeysOption = DEFAULT_KEYS, as_json: JsonOption = False) -> None:
    """The keys of the directory: which one signs, which have their private half here."""
    with user_errors():
        found = KeyDirectory(keys).keys()
    table = Table("key id", "current", "private key here", "public key file")
    for info in found:
        table.add_row(info.key_id, "yes" if info.current else "", "yes" if info.has_private else "no", str(info.public_file))
    err.print(table)
    if not found:
        err.print(f"no keys in {escape(str(keys))} (esl-pricing keys create --keys {escape(str(keys))})")
    if as_json:
        emit_json({"keys": [{"key_id": i.key_id, "current": i.current, "private": i.has_private} for i in found]})


@keys_app.command("retire")
def keys_retire(
    key_id: Annotated[str, typer.Argument(help="The old key to delete (not the current one).")],
    keys: KeysOption = DEFAULT_KEYS,
) -> None:
    """Delete an old key pair once no label needs it (after rotate and reconcile). Also remove its
    .pub file from the gateways' trust stores."""
    with user_errors():
        KeyDirectory(keys).retire(key_id)
    err.print(f"retired key {escape(key_id)}; remove engine-{escape(key_id)}.pub from every gateway too", highlight=False)
