"""Ids that become MQTT topic levels, file names and broker user names (store, gateway, label),
and SKUs: what they may hold, and one-line reasons when they do not.

``ID_PATTERN``: 1 to 64 of ``A-Z a-z 0-9 . _ -`` (a ``#`` or ``+`` is a topic wildcard, a ``/``
a level separator, a NUL byte a protocol error that drops the connection). A SKU never becomes a
topic level, so it may hold any printable character, but at most ``SKU_MAX_LENGTH`` characters
and no control characters (``CONTROL_CHARACTERS``).
"""

from __future__ import annotations

import re

ID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
ID_MAX_LENGTH = 64
ID_CHARACTERS = "A-Z a-z 0-9 . _ -"
#: A SKU's longest spelling (the engine database's sku columns hold 64 characters).
SKU_MAX_LENGTH = 64
#: Control characters (C0, DEL, C1): never part of an id or a SKU.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SHOWN_MAX = 80  # a rejected value is shown cut to this many characters


def shown(value: str) -> str:
    """A value as a one-line message shows it: control characters escaped (``\\x00``), cut at
    80 characters."""
    text = CONTROL_CHARACTERS.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    return text if len(text) <= _SHOWN_MAX else text[: _SHOWN_MAX - 1] + "…"


def id_problem(value: str, what: str = "id") -> str | None:
    """Why ``value`` cannot be an id that becomes an MQTT topic level (ID_PATTERN), or None."""
    if ID_PATTERN.fullmatch(value):
        return None
    if not value:
        return f"{what} is empty"
    if len(value) > ID_MAX_LENGTH:
        return f"{what} is {len(value)} characters long, at most {ID_MAX_LENGTH} allowed: '{shown(value)}'"
    return f"{what} has a character other than {ID_CHARACTERS}: '{shown(value)}'"


def sku_problem(value: str) -> str | None:
    """Why ``value`` cannot be a SKU (too long, a control character, empty), or None."""
    if not value:
        return "sku is empty"
    if len(value) > SKU_MAX_LENGTH:
        return f"sku is {len(value)} characters long, at most {SKU_MAX_LENGTH} allowed: '{shown(value)}'"
    if CONTROL_CHARACTERS.search(value):
        return f"sku has a control character: '{shown(value)}'"
    return None


def is_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None
