"""label_gateway.credentials: Mosquitto's password hash, the password file, the ACL rules, and
provisioning a user into all three (no broker here: tests/security/ logs in with them)."""

from __future__ import annotations

import base64
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from label_gateway.broker import secret_file
from label_gateway.credentials import (
    AclRule,
    ProvisionError,
    acl_rules,
    check_prefix,
    check_user,
    hash_password,
    missing_acl_rules,
    password_hash,
    provision,
    verify_password,
    with_acl_rules,
    with_password,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED_ACL = REPO / "config" / "mosquitto" / "acl"

#: Written by mosquitto_passwd 2.0.11 (`mosquitto_passwd -b pw alice s4`).
MOSQUITTO_LINE = (
    "alice:$7$101$lCaT6jPuCYJZlhUe$kNo8qga+GOmKEwZGj+BUwo/7tAv2ENuKKnsOFRZ9N23RTCiV00oQlTnjvrOP1pFMukl7DJzL+U0jubz4vnWqMA=="
)
HASH_SHAPE = re.compile(r"\$7\$101\$[A-Za-z0-9+/]{16}\$[A-Za-z0-9+/]{86}==")


# -- the hash ---------------------------------------------------------------------------------------
def test_the_hash_is_mosquitto_2s_own() -> None:
    encoded = MOSQUITTO_LINE.split(":", 1)[1]
    salt = base64.b64decode(encoded.split("$")[3])
    assert hash_password("s4", salt=salt) == encoded
    assert verify_password("s4", encoded)
    assert not verify_password("s5", encoded)


def test_a_new_hash_has_mosquittos_shape_and_a_fresh_salt() -> None:
    first, second = hash_password("pw"), hash_password("pw")
    assert HASH_SHAPE.fullmatch(first) and HASH_SHAPE.fullmatch(second)
    assert first != second
    assert verify_password("pw", first) and verify_password("pw", second)


@pytest.mark.parametrize("encoded", ["", "plain", "$6$abc$def", "$7$x$AAAA$AAAA", "$7$101$!!$AAAA"])
def test_what_is_not_a_7_hash_never_verifies(encoded: str) -> None:
    assert not verify_password("pw", encoded)


def test_mosquitto_passwd_and_we_read_each_others_hashes(tmp_path: Path) -> None:
    binary = shutil.which("mosquitto_passwd")
    if binary is None:
        pytest.skip("mosquitto_passwd is not installed")
    path = tmp_path / "passwd"
    path.write_text(f"gw-01:{hash_password('ours')}\n")
    subprocess.run([binary, "-b", str(path), "gw-02", "theirs"], check=True, capture_output=True)
    text = path.read_text()
    assert verify_password("ours", password_hash(text, "gw-01") or "")
    theirs = password_hash(text, "gw-02") or ""
    assert HASH_SHAPE.fullmatch(theirs) and verify_password("theirs", theirs)


# -- the password file --------------------------------------------------------------------------------
def test_a_new_user_is_appended_and_the_others_kept() -> None:
    text, replaced = with_password(f"# users\n{MOSQUITTO_LINE}\n", "gw-01", "$7$new")
    assert text == f"# users\n{MOSQUITTO_LINE}\ngw-01:$7$new\n" and not replaced


def test_a_known_user_is_replaced_in_place_and_duplicates_dropped() -> None:
    text, replaced = with_password("gw-01:$7$old\nalice:$7$a\ngw-01:$7$older\n", "gw-01", "$7$new")
    assert text == "gw-01:$7$new\nalice:$7$a\n" and replaced


def test_a_user_whose_name_starts_another_ones_is_not_touched() -> None:
    text, replaced = with_password("gw-010:$7$x\n#gw-01:$7$comment\n", "gw-01", "$7$new")
    assert text == "gw-010:$7$x\n#gw-01:$7$comment\ngw-01:$7$new\n" and not replaced


# -- users and prefixes -----------------------------------------------------------------------------
@pytest.mark.parametrize("user", ["gw-01", "GW_02", "store.1-gw.3", "g" * 64])
def test_gateway_ids_that_make_good_user_names(user: str) -> None:
    assert check_user(user, "gateway") == user


@pytest.mark.parametrize(
    ("user", "role", "message"),
    [
        ("gw 01", "gateway", r"gateway id 'gw 01': use 1 to 64 of A-Z a-z 0-9 \. _ -"),
        ("g" * 65, "gateway", "use 1 to 64 of"),
        ("gw/+", "gateway", "use 1 to 64 of"),
        ("", "gateway", "use 1 to 64 of"),
        (None, "gateway", "a gateway id is needed"),
        ("engine", "gateway", "gateway id 'engine' is reserved for the engine"),
        ("gw-01", "engine", "--role engine provisions the user 'engine' \\(got 'gw-01'\\)"),
    ],
)
def test_user_names_that_cannot_be(user: str | None, role: str, message: str) -> None:
    with pytest.raises(ProvisionError, match=message):
        check_user(user, role)  # type: ignore[arg-type]


def test_the_engine_role_is_the_engine_user() -> None:
    assert check_user(None, "engine") == check_user("engine", "engine") == "engine"


@pytest.mark.parametrize("prefix", ["", "/esl", "esl/", "es+l", "esl/#", "e%u", "$SYS", "e sl"])
def test_prefixes_that_cannot_go_into_an_acl(prefix: str) -> None:
    with pytest.raises(ProvisionError, match="topic prefix"):
        check_prefix(prefix)


# -- the ACL ---------------------------------------------------------------------------------------
def test_the_shipped_acl_holds_every_rule() -> None:
    assert missing_acl_rules(SHIPPED_ACL.read_text()) == []


def test_the_rules_confine_each_gateway_to_its_own_topics() -> None:
    rules = acl_rules("esl")
    assert AclRule(None, "pattern read esl/+/gateway/%u/label/+/desired") in rules
    assert AclRule(None, "pattern write esl/+/gateway/%u/ack") in rules
    assert AclRule(None, "pattern write esl/+/gateway/%u/status") in rules
    assert AclRule("engine", "topic readwrite esl/+/gateway/+/label/+/desired") in rules
    writes_desired = [r for r in rules if "desired" in r.line and ("write" in r.line.split()[1])]
    assert [r.user for r in writes_desired] == ["engine"]


def test_adding_the_rules_twice_adds_nothing_the_second_time() -> None:
    text, added = with_acl_rules("")
    assert len(added) == len(acl_rules())
    assert with_acl_rules(text) == (text, [])


def test_rules_are_added_to_a_foreign_acl_under_the_right_user() -> None:
    foreign = "user sensor\ntopic write plant/#\npattern read esl/+/gateway/%u/label/+/desired\n"
    text, added = with_acl_rules(foreign)
    assert text.startswith(foreign)
    assert len(added) == len(acl_rules()) - 1  # the pattern it had
    tail = text[len(foreign):].splitlines()
    assert tail.index("user engine") < tail.index("topic read esl/+/gateway/+/ack")
    assert missing_acl_rules(text) == []


def test_an_engine_rule_under_another_user_does_not_count() -> None:
    text = "user gw-01\ntopic readwrite esl/+/gateway/+/label/+/desired\n"
    assert AclRule("engine", "topic readwrite esl/+/gateway/+/label/+/desired") in missing_acl_rules(text)


def test_a_bare_topic_line_means_readwrite() -> None:
    text = "user engine\ntopic esl/+/gateway/+/label/+/desired\n"
    assert AclRule("engine", "topic readwrite esl/+/gateway/+/label/+/desired") not in missing_acl_rules(text)


def test_another_prefix_gets_rules_of_its_own() -> None:
    text, _ = with_acl_rules(SHIPPED_ACL.read_text(), "acme/esl")
    assert "pattern write acme/esl/+/gateway/%u/ack" in text.splitlines()
    assert missing_acl_rules(text, "esl") == [] and missing_acl_rules(text, "acme/esl") == []


# -- provisioning ----------------------------------------------------------------------------------
def _files(tmp_path: Path) -> dict[str, Path]:
    return {"passwd_file": tmp_path / "mosquitto" / "passwd", "acl_file": tmp_path / "mosquitto" / "acl",
            "secrets_dir": tmp_path / "secrets"}


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_provisioning_writes_the_secret_the_hash_and_the_rules(tmp_path: Path) -> None:
    files = _files(tmp_path)
    done = provision("gw-01", **files)
    password = secret_file(files["secrets_dir"], "gw-01").read_text()
    assert password == done.password + "\n" and len(done.password) >= 40
    assert verify_password(done.password, password_hash(files["passwd_file"].read_text(), "gw-01") or "")
    assert not done.replaced and len(done.acl_added) == len(acl_rules()) and not done.warnings
    assert missing_acl_rules(files["acl_file"].read_text()) == []
    assert _mode(done.secret_file) == 0o600 and _mode(files["secrets_dir"]) == 0o700
    assert _mode(files["passwd_file"]) == 0o600 and _mode(files["acl_file"]) == 0o600
    assert done.password not in repr(done)


def test_provisioning_again_replaces_the_password_and_leaves_the_rest(tmp_path: Path) -> None:
    files = _files(tmp_path)
    engine = provision(None, role="engine", **files)
    first = provision("gw-01", **files)
    acl = files["acl_file"].read_text()
    second = provision("gw-01", **files)
    text = files["passwd_file"].read_text()
    assert second.replaced and second.acl_added == () and files["acl_file"].read_text() == acl
    assert [line.split(":")[0] for line in text.splitlines()] == ["engine", "gw-01"]
    assert verify_password(second.password, password_hash(text, "gw-01") or "")
    assert not verify_password(first.password, password_hash(text, "gw-01") or "")
    assert verify_password(engine.password, password_hash(text, "engine") or "")


def test_an_existing_password_file_keeps_its_mode_but_not_for_everyone(tmp_path: Path) -> None:
    files = _files(tmp_path)
    files["passwd_file"].parent.mkdir(parents=True)
    files["passwd_file"].write_text(MOSQUITTO_LINE + "\n")
    files["passwd_file"].chmod(0o644)
    secret = secret_file(files["secrets_dir"], "gw-01")
    files["secrets_dir"].mkdir()
    secret.write_text("old\n")
    secret.chmod(0o644)
    provision("gw-01", **files)
    assert _mode(files["passwd_file"]) == 0o640
    assert _mode(secret) == 0o600
    assert files["passwd_file"].read_text().startswith(MOSQUITTO_LINE + "\n")


def test_provisioning_into_a_place_it_cannot_write_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    files = _files(tmp_path) | {"passwd_file": blocker / "passwd"}
    with pytest.raises(ProvisionError) as caught:
        provision("gw-01", **files)
    assert str(caught.value) == f"cannot read {blocker / 'passwd'}: Not a directory"


def test_a_secrets_directory_it_cannot_make_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    files = _files(tmp_path) | {"secrets_dir": blocker / "secrets"}
    with pytest.raises(ProvisionError) as caught:
        provision("gw-01", **files)
    assert str(caught.value) == f"cannot make the secrets directory {blocker / 'secrets'}: Not a directory"
