"""esl-pricing keys: create, rotate, list, retire; and every command that pushes needs a key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from label_gateway.signing import KEYS_ENV, KeyDirectory

pytestmark = pytest.mark.usefixtures("wide_console")


def test_create_rotate_list_retire(run, tmp_path: Path) -> None:
    keys = str(tmp_path / "keys")
    code, out, _ = run("keys", "create", "--keys", keys, "--json")
    first = json.loads(out.splitlines()[-1])
    assert code == 0 and first["created"] is True
    code, out, err = run("keys", "create", "--keys", keys, "--json")
    assert code == 0 and json.loads(out.splitlines()[-1]) == first | {"created": False} and "already exists" in err
    code, out, err = run("keys", "rotate", "--keys", keys, "--json")
    rotated = json.loads(out.splitlines()[-1])
    assert code == 0 and rotated["previous"] == first["key_id"] and "keys retire" in err
    code, out, _ = run("keys", "list", "--keys", keys, "--json")
    listed = {k["key_id"]: k["current"] for k in json.loads(out.splitlines()[-1])["keys"]}
    assert listed == {first["key_id"]: False, rotated["key_id"]: True}
    assert run("keys", "retire", first["key_id"], "--keys", keys)[0] == 0
    assert [k.key_id for k in KeyDirectory(keys).keys()] == [rotated["key_id"]]


def test_key_mistakes_are_one_line_exit_2(run, one_line, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    KeyDirectory(keys).create()
    current = KeyDirectory(keys).current_id()
    code, _, err = run("keys", "retire", str(current), "--keys", str(keys))
    assert code == 2 and one_line(err) and "rotate first" in err
    code, _, err = run("keys", "retire", "nope", "--keys", str(keys))
    assert code == 2 and one_line(err) and "no key nope" in err


@pytest.mark.parametrize(
    "command",
    [
        ["apply", "PLAN", "--data", "DATA"],
        ["outbox", "resume", "--db", "DB"],
        ["outbox", "reconcile", "--db", "DB"],
        ["outbox", "sync", "--data", "DATA", "--db", "DB"],
    ],
)
def test_every_command_that_pushes_refuses_to_run_without_a_signing_key(
    run, one_line, waiting_plan, labels_dir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.delenv(KEYS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)  # no ./keys here
    swap = {"PLAN": str(waiting_plan(tmp_path / "plans")), "DATA": str(labels_dir(tmp_path / "data", ["0001"])),
            "DB": str(tmp_path / "engine.db")}
    code, _, err = run(*[swap.get(part, part) for part in command])
    assert code == 2 and one_line(err) and "no signing key" in err and "esl-pricing keys create" in err, err
    assert not (tmp_path / "engine.db").exists()  # refused before anything was recorded


def test_the_daemon_refuses_to_start_without_a_signing_key(
    run, one_line, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEYS_ENV, raising=False)
    config = tmp_path / "engine.yaml"
    config.write_text("store: S1\ndatabase: engine.db\ndata_dir: data\nrules: rules.yaml\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "rules.yaml").write_text("currency: EUR\n")
    code, _, err = run("daemon", "--config", str(config))
    assert code == 2 and one_line(err) and f"{tmp_path / 'keys'}: no signing key" in err, err
