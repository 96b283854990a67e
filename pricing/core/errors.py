"""A validation error as the one line a user reads: where the first problem is and what."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol


class ValidationErrors(Protocol):
    """pydantic's ValidationError, or anything listing errors the same way (FastAPI's
    RequestValidationError)."""

    def errors(self) -> Sequence[Mapping[str, Any]]: ...


def first_error(exc: ValidationErrors, whole: str = "data") -> str:
    """``loc.path: message`` of the first error (``whole`` names the top when it has no path)."""
    errors = exc.errors()
    if not errors:
        return f"{whole}: invalid"
    first = errors[0]
    where = ".".join(str(part) for part in first["loc"]) or whole
    return f"{where}: {first['msg']}"
