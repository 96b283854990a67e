"""MQTT users for a Mosquitto 2.0 broker: a random password per user, kept twice (in clear in a
secrets directory for the client, hashed in Mosquitto's password file for the broker), and the ACL
rules that confine each user to its own topics. The command is ``esl-pricing gateways provision``.

Users: the engine (``engine``) and one per gateway (user name = gateway id). The ACL
(config/mosquitto/acl) lets the engine alone write desired states, and each gateway read only its
own desired states and write only its own ack and status topics (``pattern ... %u``).

Files: every file this writes is replaced whole (pricing.core.files.atomic_write_text) and keeps
the owner and mode of the one it replaces, so a password file chowned to ``mosquitto`` stays
readable by the broker. New files are created 0600 (a secret file is always made 0600 before the
password goes in, and the secrets directory 0700); a password file readable by everyone loses
that (the hashes are cheap to attack: Mosquitto 2.0 uses 101 PBKDF2 rounds). The broker reads the
new password file and ACL on SIGHUP (``systemctl reload mosquitto``)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from label_gateway.broker import ENGINE_USER, USER_ID, secret_file, valid_user_id
from label_gateway.protocol import DEFAULT_PREFIX
from pricing.core.files import atomic_write_text

Role = Literal["gateway", "engine"]
ROLES: tuple[Role, ...] = ("gateway", "engine")

#: Mosquitto 2.0's password hash ($7$): PBKDF2-HMAC-SHA512, 101 iterations, a 12-byte salt,
#: salt and 64-byte hash in standard base64 — what mosquitto_passwd writes.
HASH_ID = "7"
HASH_ITERATIONS = 101
SALT_BYTES = 12
HASH_BYTES = 64
PASSWORD_BYTES = 32  # secrets.token_urlsafe(32): 43 characters, 256 bits

DEFAULT_PASSWD = Path("/etc/mosquitto/esl/passwd")
DEFAULT_ACL = Path("/etc/mosquitto/esl/acl")
DEFAULT_SECRETS_DIR = Path("/etc/esl/secrets")

_NEW_FILE_MODE = 0o600


class ProvisionError(Exception):
    """A user id, prefix or file the operator can fix. Message is one line."""


# -- users and passwords --------------------------------------------------------------------------
def check_user(user: str | None, role: Role) -> str:
    """The MQTT user name to provision: a gateway id (``[A-Za-z0-9._-]{1,64}``, not ``engine``),
    or ``engine`` for the engine role (which takes no other name)."""
    if role == "engine":
        if user not in (None, ENGINE_USER):
            raise ProvisionError(f"--role engine provisions the user '{ENGINE_USER}' (got '{user}')")
        return ENGINE_USER
    if role != "gateway":
        raise ProvisionError(f"role '{role}': must be one of {', '.join(ROLES)}")
    if user is None:
        raise ProvisionError("a gateway id is needed (or --role engine)")
    if not valid_user_id(user):
        raise ProvisionError(f"gateway id '{user}': use 1 to 64 of A-Z a-z 0-9 . _ - ({USER_ID.pattern})")
    if user == ENGINE_USER:
        raise ProvisionError(f"gateway id '{ENGINE_USER}' is reserved for the engine (--role engine)")
    return user


def check_prefix(prefix: str) -> str:
    """A topic prefix usable in ACL rules: topic levels without wildcards, spaces or '%'."""
    if (
        not prefix
        or prefix.startswith(("/", "$"))
        or prefix.endswith("/")
        or any(ch in prefix for ch in "+#%")
        or any(ch.isspace() for ch in prefix)
    ):
        raise ProvisionError(f"topic prefix '{prefix}': levels without + # % $ or spaces, e.g. esl")
    return prefix


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = HASH_ITERATIONS) -> str:
    """``$7$<iterations>$<salt>$<hash>`` as Mosquitto 2.0 and mosquitto_passwd write it."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations, HASH_BYTES)
    return f"${HASH_ID}${iterations}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a ``$7$`` hash (as Mosquitto checks a login)."""
    parts = encoded.split("$")
    if len(parts) != 5 or parts[0] or parts[1] != HASH_ID or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, int(parts[2]), len(expected))
    return hmac.compare_digest(digest, expected)


def with_password(text: str, user: str, encoded: str) -> tuple[str, bool]:
    """The password file ``text`` with ``user``'s line set to ``encoded`` (the first line of that
    user replaced in place, any later ones dropped, else a line appended); and whether it replaced."""
    lines: list[str] = []
    replaced = False
    for line in text.splitlines():
        if not line.startswith("#") and line.split(":", 1)[0] == user:
            if not replaced:
                lines.append(f"{user}:{encoded}")
                replaced = True
            continue
        lines.append(line)
    if not replaced:
        lines.append(f"{user}:{encoded}")
    return "\n".join(lines) + "\n", replaced


def password_hash(text: str, user: str) -> str | None:
    """``user``'s hash in a password file's ``text``, or None."""
    for line in text.splitlines():
        name, _, encoded = line.partition(":")
        if not line.startswith("#") and name == user:
            return encoded
    return None


# -- the ACL --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AclRule:
    """One ACL line; ``user``: the ``user`` section a ``topic`` line belongs in (None for a
    ``pattern`` line, which holds for every user wherever it stands)."""

    user: str | None
    line: str


def acl_rules(prefix: str = DEFAULT_PREFIX) -> tuple[AclRule, ...]:
    """The rules of config/mosquitto/acl for topic prefix ``prefix``."""
    p = check_prefix(prefix)
    engine = (
        f"topic readwrite {p}/+/gateway/+/label/+/desired",
        f"topic read {p}/+/gateway/+/ack",
        f"topic read {p}/+/gateway/+/status",
        "topic read $SYS/broker/version",
    )
    gateways = (
        f"pattern read {p}/+/gateway/%u/label/+/desired",
        f"pattern write {p}/+/gateway/%u/ack",
        f"pattern write {p}/+/gateway/%u/status",
    )
    return tuple(AclRule(ENGINE_USER, line) for line in engine) + tuple(AclRule(None, line) for line in gateways)


_ACL_HEADER = """\
# The engine (user engine) alone writes desired states, and reads them back, the acks, the statuses
# and $SYS/broker/version; a gateway (user name = gateway id, %u) reads only its own desired states
# and writes only its own ack and status topics. Anything else is denied. See config/mosquitto/acl.
"""


def _normal(tokens: Sequence[str]) -> tuple[str, ...]:
    """``topic x`` means ``topic readwrite x``."""
    if len(tokens) == 2 and tokens[0] in ("topic", "pattern"):
        return (tokens[0], "readwrite", tokens[1])
    return tuple(tokens)


def _acl_holds(text: str) -> set[tuple[str | None, tuple[str, ...]]]:
    """The (user section, rule) pairs an ACL file's ``text`` grants; patterns under None."""
    held: set[tuple[str | None, tuple[str, ...]]] = set()
    user: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        tokens = line.split()
        if tokens[0] == "user":
            user = line[len("user"):].strip()
        elif tokens[0] == "pattern":
            held.add((None, _normal(tokens)))
        elif tokens[0] == "topic":
            held.add((user, _normal(tokens)))
    return held


def missing_acl_rules(text: str, prefix: str = DEFAULT_PREFIX) -> list[AclRule]:
    held = _acl_holds(text)
    return [rule for rule in acl_rules(prefix) if (rule.user, _normal(rule.line.split())) not in held]


def with_acl_rules(text: str, prefix: str = DEFAULT_PREFIX) -> tuple[str, list[AclRule]]:
    """The ACL ``text`` with every rule of ``acl_rules(prefix)`` it lacks appended (the engine's
    under a ``user engine`` line); and the rules it added (none: ``text`` unchanged)."""
    missing = missing_acl_rules(text, prefix)
    if not missing:
        return text, []
    if text.strip():
        out = (text if text.endswith("\n") else text + "\n") + "\n"
        out += f"# added by esl-pricing gateways provision (topic prefix {prefix})\n"
    else:
        out = f"# Mosquitto ACL written by esl-pricing gateways provision (topic prefix {prefix}).\n{_ACL_HEADER}"
    patterns = [rule.line for rule in missing if rule.user is None]
    engine = [rule.line for rule in missing if rule.user is not None]
    out += "".join(f"{line}\n" for line in patterns)
    if engine:
        out += f"user {ENGINE_USER}\n" + "".join(f"{line}\n" for line in engine)
    return out, missing


# -- files ----------------------------------------------------------------------------------------
def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except (OSError, UnicodeDecodeError) as exc:
        raise ProvisionError(f"cannot read {path}: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)


def _write(path: Path, text: str, *, keep: int) -> str | None:
    """Replace ``path`` with ``text`` atomically. A new file is made 0600 before anything goes
    in; an existing one keeps its owner and its mode bits within ``keep`` (0o700: owner only).
    Returns a warning when the owner could not be kept."""
    try:
        try:
            before: os.stat_result | None = path.stat()
        except FileNotFoundError:
            before = None
        if before is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _NEW_FILE_MODE))
        elif before.st_mode & 0o777 & ~keep:
            os.chmod(path, before.st_mode & 0o7777 & keep)
        atomic_write_text(path, text)
    except OSError as exc:
        raise ProvisionError(f"cannot write {path}: {_reason(exc)}") from None
    if before is None:
        return None
    after = path.stat()
    if (after.st_uid, after.st_gid) == (before.st_uid, before.st_gid):
        return None
    try:
        os.chown(path, before.st_uid, before.st_gid)
    except OSError:
        return (f"{path} now belongs to uid {after.st_uid} (was {before.st_uid}): "
                "chown it back so Mosquitto can read it")
    return None


def _make_secrets_dir(directory: Path) -> None:
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise ProvisionError(f"cannot make the secrets directory {directory}: {_reason(exc)}") from None


@dataclass(frozen=True)
class Provisioned:
    """What ``provision`` did. ``replaced``: the user had a password (now replaced);
    ``acl_added``: the ACL lines it added (none: the ACL held them already)."""

    user: str
    role: Role
    secret_file: Path
    passwd_file: Path
    replaced: bool
    acl_file: Path
    acl_added: tuple[str, ...]
    warnings: tuple[str, ...] = ()
    password: str = field(default="", repr=False)


def provision(
    user: str | None,
    *,
    role: Role = "gateway",
    passwd_file: Path = DEFAULT_PASSWD,
    acl_file: Path = DEFAULT_ACL,
    secrets_dir: Path = DEFAULT_SECRETS_DIR,
    prefix: str = DEFAULT_PREFIX,
) -> Provisioned:
    """Give ``user`` (a gateway id; ``engine`` with ``role="engine"``) a new random password:
    written to ``<secrets_dir>/<user>.secret`` (0600) for the client, and hashed into Mosquitto's
    ``passwd_file`` (the user's line added or replaced); and make sure ``acl_file`` holds the rules
    for ``prefix`` (idempotent). The secret is written first: if the password file cannot be
    written, running again puts both right. Mosquitto applies it on its next reload (SIGHUP)."""
    name = check_user(user, role)
    check_prefix(prefix)
    password = new_password()
    _make_secrets_dir(secrets_dir)
    secret = secret_file(secrets_dir, name)
    warnings = [_write(secret, password + "\n", keep=0o700)]
    text, replaced = with_password(_read(passwd_file), name, hash_password(password))
    warnings.append(_write(passwd_file, text, keep=0o770))
    acl_text, added = with_acl_rules(_read(acl_file), prefix)
    if added:
        warnings.append(_write(acl_file, acl_text, keep=0o777))
    return Provisioned(
        user=name,
        role=role,
        secret_file=secret,
        passwd_file=passwd_file,
        replaced=replaced,
        acl_file=acl_file,
        acl_added=tuple(rule.line for rule in added),
        warnings=tuple(w for w in warnings if w),
        password=password,
    )
