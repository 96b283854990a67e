"""Files that are either the old or the new version, never half written."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _umask()  # read once, at import: os.umask can only be read by setting it


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through ``write`` into a temporary file beside ``path``, flush it to disk, then
    rename it over ``path``; on any failure the temporary file is removed and ``path`` is as it was.
    The file keeps the mode of the one it replaces (a new one gets the umask's, as open() would)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """``atomic_write`` of UTF-8 text."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
