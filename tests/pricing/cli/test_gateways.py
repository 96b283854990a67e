"""esl-pricing gateways provision: a gateway's (or the engine's) MQTT password, the Mosquitto
password file and ACL; user errors are one line and exit 2, the password is printed only on request."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from label_gateway.broker import GATEWAY_SECRETS_ENV
from label_gateway.credentials import (
    acl_rules,
    missing_acl_rules,
    password_hash,
    verify_password,
)

pytestmark = pytest.mark.usefixtures("wide_console")

Run = Callable[..., tuple[int, str, str]]


def _options(tmp_path: Path) -> list[str]:
    return ["--passwd", str(tmp_path / "passwd"), "--acl", str(tmp_path / "acl"),
            "--secrets-dir", str(tmp_path / "secrets")]


def _secret(tmp_path: Path, user: str) -> str:
    return (tmp_path / "secrets" / f"{user}.secret").read_text().strip()


def test_provision_a_gateway(run: Run, tmp_path: Path) -> None:
    code, out, err = run("gateways", "provision", "gw-01", *_options(tmp_path))
    assert code == 0, err
    password = _secret(tmp_path, "gw-01")
    assert out == ""  # the password stays in its file
    assert password not in err
    assert verify_password(password, password_hash((tmp_path / "passwd").read_text(), "gw-01") or "")
    assert missing_acl_rules((tmp_path / "acl").read_text()) == []
    assert stat.S_IMODE((tmp_path / "secrets" / "gw-01.secret").stat().st_mode) == 0o600
    assert f"gateway gw-01: new MQTT password in {tmp_path / 'secrets' / 'gw-01.secret'} (mode 0600)" in err
    assert "user gw-01 added" in err and f"{len(acl_rules())} rule(s) added" in err
    assert "reload Mosquitto to apply: systemctl reload mosquitto (or kill -HUP <its pid>)" in err


def test_provisioning_again_replaces_the_password(run: Run, tmp_path: Path) -> None:
    run("gateways", "provision", "gw-01", *_options(tmp_path))
    first = _secret(tmp_path, "gw-01")
    code, _, err = run("gateways", "provision", "gw-01", *_options(tmp_path))
    assert code == 0 and "user gw-01 replaced" in err and "holds the rules already" in err
    second = _secret(tmp_path, "gw-01")
    encoded = password_hash((tmp_path / "passwd").read_text(), "gw-01") or ""
    assert second != first and verify_password(second, encoded) and not verify_password(first, encoded)


def test_show_password_prints_it_alone_on_stdout(run: Run, tmp_path: Path) -> None:
    code, out, _ = run("gateways", "provision", "gw-02", "--show-password", *_options(tmp_path))
    assert code == 0 and out == _secret(tmp_path, "gw-02") + "\n"


def test_json_summary_without_and_with_the_password(run: Run, tmp_path: Path) -> None:
    code, out, _ = run("gateways", "provision", "gw-01", "--json", *_options(tmp_path))
    summary = json.loads(out.splitlines()[-1])
    assert code == 0 and "password" not in summary and _secret(tmp_path, "gw-01") not in out
    assert summary | {"acl_added": len(summary["acl_added"])} == {
        "user": "gw-01", "role": "gateway", "secret_file": str(tmp_path / "secrets" / "gw-01.secret"),
        "passwd_file": str(tmp_path / "passwd"), "replaced": False, "acl_file": str(tmp_path / "acl"),
        "acl_added": len(acl_rules()), "warnings": [],
    }
    _, out, _ = run("gateways", "provision", "gw-01", "--json", "--show-password", *_options(tmp_path))
    assert json.loads(out.splitlines()[-1])["password"] == _secret(tmp_path, "gw-01")


def test_provision_the_engine(run: Run, tmp_path: Path) -> None:
    code, _, err = run("gateways", "provision", "--role", "engine", *_options(tmp_path))
    assert code == 0, err
    password = _secret(tmp_path, "engine")
    assert verify_password(password, password_hash((tmp_path / "passwd").read_text(), "engine") or "")
    assert f"ESL_MQTT_USERNAME=engine ESL_MQTT_PASSWORD_FILE={tmp_path / 'secrets' / 'engine.secret'}" in err


def test_the_secrets_directory_comes_from_the_environment(run: Run, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(GATEWAY_SECRETS_ENV, str(tmp_path / "from-env"))
    code, _, _ = run("gateways", "provision", "gw-01", "--passwd", str(tmp_path / "passwd"),
                     "--acl", str(tmp_path / "acl"))
    assert code == 0 and (tmp_path / "from-env" / "gw-01.secret").is_file()


def test_another_topic_prefix_gets_its_rules(run: Run, tmp_path: Path) -> None:
    code, _, _ = run("gateways", "provision", "gw-01", "--prefix", "acme", *_options(tmp_path))
    assert code == 0 and missing_acl_rules((tmp_path / "acl").read_text(), "acme") == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["gw 01"], "error: gateway id 'gw 01': use 1 to 64 of A-Z a-z 0-9 . _ -"),
        (["g" * 65], "use 1 to 64 of"),
        (["engine"], "error: gateway id 'engine' is reserved for the engine (--role engine)"),
        ([], "error: a gateway id is needed (or --role engine)"),
        (["gw-01", "--role", "engine"], "error: --role engine provisions the user 'engine' (got 'gw-01')"),
        (["gw-01", "--role", "admin"], "error: --role 'admin': must be gateway or engine"),
        (["gw-01", "--prefix", "esl/#"], "error: topic prefix 'esl/#'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(run: Run, one_line: Callable[[str], bool], tmp_path: Path,
                                               args: list[str], message: str) -> None:
    code, out, err = run("gateways", "provision", *args, *_options(tmp_path))
    assert code == 2 and one_line(err) and message in err and out == ""
    assert not (tmp_path / "passwd").exists() and not (tmp_path / "secrets").exists()


def test_an_unwritable_place_is_one_line_and_exit_2(run: Run, one_line: Callable[[str], bool], tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    code, _, err = run("gateways", "provision", "gw-01", *_options(tmp_path), "--acl", str(tmp_path / "file" / "acl"))
    assert code == 2 and one_line(err) and f"{tmp_path / 'file' / 'acl'}: Not a directory" in err
