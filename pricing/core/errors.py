"""A pydantic ValidationError as the one line a user reads: where the first problem is and what."""

from __future__ import annotations

from pydantic import ValidationError


def first_error(exc: ValidationError, whole: str = "data") -> str:
    """``loc.path: message`` of the first error (``whole`` names the top when it has no path)."""
    errors = exc.errors()
    if not errors:
        return f"{whole}: invalid"
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or whole
    return f"{where}: {first['msg']}"
