"""The secure broker: a real Mosquitto running the SHIPPED config/mosquitto/ (TLS, a password per
user, the ACL), with only its listener port and file paths rewritten, and users made by our own
provisioning code (label_gateway.credentials).

``secure_broker`` (session): a test CA and a server certificate for 127.0.0.1/localhost, made
with ``cryptography``; users ``engine``, ``gw-01`` and ``gw-02``. Without a ``mosquitto`` binary the
tests are skipped, except with CI=true, where that stops the run.

``secure_env`` (per test): the environment of a client of that broker (its CA in
ESL_MQTT_CA_FILE, its secrets directory in ESL_GATEWAY_SECRETS_DIR) with no user set, so
``new_client(role)`` is anonymous unless given credentials; ``login_as(user)`` sets the user (and
its password file) for the rest of the test. ``esl_topics``: a store of its own under the shipped
ACL's prefix ``esl``, its retained messages cleared after the test. ``test_ca`` (session) issues
more server certificates (``test_ca.issue(stem, hosts)``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from label_gateway.broker import (
    CA_FILE_ENV,
    CERT_FILE_ENV,
    GATEWAY_SECRETS_ENV,
    KEY_FILE_ENV,
    PASSWORD_ENV,
    PASSWORD_FILE_ENV,
    USERNAME_ENV,
    BrokerAddress,
    Credentials,
    clear_retained,
    read_secret,
    secret_file,
)
from label_gateway.credentials import Provisioned, Role, provision
from label_gateway.embedded_broker import free_port
from label_gateway.protocol import DEFAULT_PREFIX, Topics

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "config" / "mosquitto"
USERS: dict[str, Role] = {"engine": "engine", "gw-01": "gateway", "gw-02": "gateway"}
CLIENT_ENV = (USERNAME_ENV, PASSWORD_ENV, PASSWORD_FILE_ENV, CA_FILE_ENV, CERT_FILE_ENV, KEY_FILE_ENV,
              GATEWAY_SECRETS_ENV)


# -- certificates ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class TestCa:
    """A CA of the test session; ``issue`` signs server certificates with it."""

    __test__ = False  # not a test class, whatever its name says

    directory: Path
    ca_file: Path
    key: ec.EllipticCurvePrivateKey = field(repr=False)
    certificate: x509.Certificate = field(repr=False)

    @classmethod
    def create(cls, directory: Path) -> TestCa:
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"esl test CA {uuid.uuid4().hex[:6]}")])
        usage = x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False, encipher_only=False,
            decipher_only=False,
        )
        certificate = (
            _builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage, critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        ca_file = directory / "ca.crt"
        ca_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        return cls(directory, ca_file, key, certificate)

    def issue(self, stem: str, hosts: list[str]) -> tuple[Path, Path]:
        """A server certificate for ``hosts`` (DNS names or IP addresses): (cert file, key file)."""
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        certificate = (
            _builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]), self.certificate.subject,
                     key.public_key())
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        cert_file, key_file = self.directory / f"{stem}.crt", self.directory / f"{stem}.key"
        cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
        )
        return cert_file, key_file


def _builder(subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )


# -- the broker -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SecureBroker:
    """The running secure Mosquitto. ``address``: mqtts://127.0.0.1:PORT."""

    address: BrokerAddress
    ca_file: Path
    secrets_dir: Path
    passwd_file: Path
    acl_file: Path
    config_file: Path
    log_file: Path
    ca: TestCa = field(repr=False)
    process: subprocess.Popen[bytes] = field(repr=False)

    def credentials(self, user: str) -> Credentials:
        """``user``'s user name and current password (from its secret file)."""
        return Credentials(user, read_secret(secret_file(self.secrets_dir, user), "test secrets"))

    def environment(self, user: str | None = None) -> dict[str, str]:
        """What a client process of this broker needs in its environment to log in as ``user``
        (None: anonymous): the CA, the gateways' secrets directory, the user and password file."""
        env = {CA_FILE_ENV: str(self.ca_file), GATEWAY_SECRETS_ENV: str(self.secrets_dir)}
        if user is not None:
            env[USERNAME_ENV] = user
            env[PASSWORD_FILE_ENV] = str(secret_file(self.secrets_dir, user))
        return env

    def provision(self, user: str, role: Role = "gateway") -> Provisioned:
        """A new password for ``user`` (as the operator's command would); ``reload()`` applies it."""
        done = provision(user, role=role, passwd_file=self.passwd_file, acl_file=self.acl_file,
                         secrets_dir=self.secrets_dir)
        assert not done.warnings, done.warnings
        return done

    def reload(self) -> None:
        """SIGHUP: Mosquitto reads the password file and the ACL again."""
        before = self.log_file.read_text(errors="replace").count("Reloading config")
        self.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while self.log_file.read_text(errors="replace").count("Reloading config") == before:
            assert time.monotonic() < deadline, "mosquitto did not log its reload"
            time.sleep(0.02)
        time.sleep(0.1)  # it logs before reading the files

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _rewrite(config: str, port: int, paths: dict[str, Path]) -> str:
    """The shipped config with its listener on ``port`` and every absolute path moved by ``paths``
    (a prefix of the shipped path -> where it goes now). A path no prefix covers fails the test:
    the broker of a test must not write to /var or read /etc."""
    out: list[str] = []
    listeners = 0
    for line in config.splitlines():
        tokens = line.split()
        if tokens[:1] == ["listener"]:
            tokens[1] = str(port)
            listeners += 1
            line = " ".join(tokens)
        elif len(tokens) >= 2 and not tokens[0].startswith("#") and tokens[-1].startswith("/"):
            value = tokens[-1]
            prefix = next((p for p in paths if value.startswith(p)), None)
            assert prefix is not None, f"config/mosquitto/mosquitto.conf: no test place for path {value}"
            moved = str(paths[prefix] / value[len(prefix):].lstrip("/"))
            tokens[-1] = moved + "/" if value.endswith("/") else moved  # persistence_location needs its /
            line = " ".join(tokens)
        out.append(line)
    assert listeners == 1, "config/mosquitto/mosquitto.conf: expected exactly one listener"
    return "\n".join(out) + "\n"


def _hand_to_mosquitto_user(directory: Path) -> None:
    """Started as root, Mosquitto becomes user mosquitto before it reads the password file and
    the ACL: give it the files, as an operator would (chown mosquitto)."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam("mosquitto")
    except KeyError:
        return  # it falls back to "nobody"; the files are then world-unreadable: the start fails loudly
    for path in [directory, *directory.rglob("*")]:
        os.chown(path, user.pw_uid, user.pw_gid)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def test_ca() -> Iterator[TestCa]:
    directory = Path(tempfile.mkdtemp(prefix="esl-test-ca-"))
    try:
        yield TestCa.create(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def secure_broker(test_ca: TestCa) -> Iterator[SecureBroker]:
    binary = shutil.which("mosquitto")
    if binary is None:
        message = "the security tests need the mosquitto binary (apt-get install mosquitto)"
        if IN_CI:
            pytest.exit(f"CI=true: {message}", returncode=3)
        pytest.skip(message)
    work = Path(tempfile.mkdtemp(prefix="esl-secure-mosquitto-"))
    etc, data = work / "etc", work / "data"
    etc.mkdir()
    data.mkdir()
    cert_file, key_file = test_ca.issue("server", ["localhost", "127.0.0.1"])
    shutil.copy(test_ca.ca_file, etc / "ca.crt")
    shutil.copy(cert_file, etc / "server.crt")
    shutil.copy(key_file, etc / "server.key")
    shutil.copy(SHIPPED / "acl", etc / "acl")
    port = free_port()
    config_file = work / "mosquitto.conf"
    config_file.write_text(_rewrite(
        (SHIPPED / "mosquitto.conf").read_text(), port,
        {"/etc/mosquitto/esl/": etc, "/var/lib/mosquitto/": data, "/run/mosquitto/": work,
         "/var/log/mosquitto/": work},
    ))
    secrets_dir = work / "secrets"
    broker_files = dict(passwd_file=etc / "passwd", acl_file=etc / "acl", secrets_dir=secrets_dir)
    for user, role in USERS.items():
        provision(user, role=role, **broker_files)
    _hand_to_mosquitto_user(work)
    log_file = work / "mosquitto.log"
    process = subprocess.Popen([binary, "-c", str(config_file)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    broker = SecureBroker(
        address=BrokerAddress("127.0.0.1", port, tls=True), ca_file=test_ca.ca_file, config_file=config_file,
        log_file=log_file, ca=test_ca, process=process, **broker_files,
    )
    try:
        deadline = time.monotonic() + 10
        while not _answers(port):
            if process.poll() is not None or time.monotonic() > deadline:
                stderr = process.stderr.read().decode(errors="replace") if process.poll() is not None else ""
                pytest.fail(f"mosquitto -c {config_file} did not start on port {port}: {stderr}\n{broker.log_tail()}")
            time.sleep(0.05)
        yield broker
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def secure_env(secure_broker: SecureBroker, monkeypatch: pytest.MonkeyPatch) -> SecureBroker:
    """The secure broker, with this test's environment that of an anonymous client of it."""
    for name in CLIENT_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in secure_broker.environment().items():
        monkeypatch.setenv(name, value)
    return secure_broker


@pytest.fixture
def login_as(secure_env: SecureBroker, monkeypatch: pytest.MonkeyPatch) -> Callable[[str | None], None]:
    """``login_as(user)``: from now on in this test, clients log in as ``user`` from the
    environment (None: anonymous again)."""

    def use(user: str | None) -> None:
        for name in (USERNAME_ENV, PASSWORD_ENV, PASSWORD_FILE_ENV):
            monkeypatch.delenv(name, raising=False)
        for name, value in secure_env.environment(user).items():
            monkeypatch.setenv(name, value)

    return use


@pytest.fixture
def esl_topics(secure_env: SecureBroker, login_as: Callable[[str | None], None]) -> Iterator[Topics]:
    """A store of this test's own under the shipped ACL's prefix; its retained messages are
    cleared (by the engine) after the test."""
    topics = Topics(f"store-{uuid.uuid4().hex[:10]}", prefix=DEFAULT_PREFIX)
    yield topics
    login_as("engine")
    clear_retained(secure_env.address, topics.everything, settle_s=0.3)
