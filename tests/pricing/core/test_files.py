"""pricing.core.files: a file is either the old or the new version, never half written."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing.core.files import atomic_write, atomic_write_text


class Boom(Exception):
    pass


def test_writes_new_file_and_creates_parents(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "out.bin"
    atomic_write(path, lambda f: f.write(b"\x00\x01data"))
    assert path.read_bytes() == b"\x00\x01data"
    assert os.listdir(path.parent) == ["out.bin"]


def test_replaces_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old and longer than the new text\n")
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_text_is_utf8_and_not_newline_translated(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    atomic_write_text(path, "Käse 2,99 €\r\nnext\n")
    assert path.read_bytes() == "Käse 2,99 €\r\nnext\n".encode()


def test_writer_may_write_in_pieces(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"

    def write(f: BinaryIO) -> None:
        f.writelines(f"line {n}\n".encode() for n in range(3))

    atomic_write(path, write)
    assert path.read_text() == "line 0\nline 1\nline 2\n"


def test_writes_to_a_temporary_file_beside_the_target(tmp_path: Path) -> None:
    path = tmp_path / "prices.jsonl"
    path.write_text("old")
    seen: list[str] = []

    def write(f: BinaryIO) -> None:
        f.write(b"new")
        seen.extend(sorted(os.listdir(tmp_path)))
        assert path.read_text() == "old"  # the target is untouched until the rename

    atomic_write(path, write)
    assert len(seen) == 2
    tmp = next(name for name in seen if name != "prices.jsonl")
    assert tmp.startswith(".prices.jsonl.") and tmp.endswith(".tmp")
    assert os.listdir(tmp_path) == ["prices.jsonl"]
    assert path.read_text() == "new"


@given(old=st.binary(max_size=200), partial=st.binary(max_size=200))
def test_failing_writer_leaves_old_file_and_no_temp_file(old: bytes, partial: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.bin"
        path.write_bytes(old)

        def write(f: BinaryIO) -> None:
            f.write(partial)
            raise Boom("disk full")

        with pytest.raises(Boom, match="disk full"):
            atomic_write(path, write)
        assert path.read_bytes() == old
        assert os.listdir(tmp) == ["out.bin"]


@pytest.mark.parametrize("error", [Boom("x"), KeyboardInterrupt(), SystemExit(3)])
def test_any_base_exception_cleans_up(tmp_path: Path, error: BaseException) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")

    def write(f: BinaryIO) -> None:
        f.write(b"half")
        raise error

    with pytest.raises(type(error)):
        atomic_write(path, write)
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_failing_writer_creates_no_file(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "out.txt"

    def write(f: BinaryIO) -> None:
        raise Boom("no")

    with pytest.raises(Boom):
        atomic_write(path, write)
    assert not path.exists()
    assert os.listdir(path.parent) == []  # the parent was created, but nothing is left in it


@given(st.text(max_size=300))
def test_text_round_trip(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.txt"
        path.write_text("previous")
        atomic_write_text(path, text)
        assert path.read_bytes() == text.encode("utf-8")
        assert os.listdir(tmp) == ["out.txt"]


def test_unencodable_text_leaves_old_file(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(path, "lone surrogate \ud800")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_a_replaced_file_keeps_its_mode_and_a_new_one_gets_the_umasks(tmp_path: Path) -> None:
    path = tmp_path / "out.txt"
    path.write_text("old")
    path.chmod(0o640)
    atomic_write_text(path, "new")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    fresh = tmp_path / "fresh.txt"
    atomic_write_text(fresh, "new")
    reference = tmp_path / "reference.txt"
    reference.write_text("made by open()")
    assert stat.S_IMODE(fresh.stat().st_mode) == stat.S_IMODE(reference.stat().st_mode)
