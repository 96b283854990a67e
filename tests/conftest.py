"""Shared fixtures: a real MQTT broker and a unique topic prefix per test.

Broker choice: Mosquitto at 127.0.0.1:1883 when it answers; else `mosquitto` started on a free
port when the binary exists; else the embedded amqtt broker. With CI=true only a real Mosquitto
will do, and its absence fails the run loudly.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from label_gateway.broker import BrokerAddress, broker_version, clear_retained
from label_gateway.embedded_broker import EmbeddedBroker, free_port
from label_gateway.protocol import Topics
from label_gateway.signing import KEYS_ENV, KeyDirectory

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DEFAULT_MOSQUITTO = BrokerAddress("127.0.0.1", 1883)


@dataclass(frozen=True)
class Broker:
    address: BrokerAddress
    kind: str  # "mosquitto" or "amqtt"
    version: str


def _answers(address: BrokerAddress, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((address.host, address.port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait_until_answers(address: BrokerAddress, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if _answers(address, 0.2):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[Broker]:
    if os.environ.get("ESL_TEST_BROKER") == "embedded" and not IN_CI:
        # For developers: run the broker tests against the embedded amqtt broker on purpose.
        with EmbeddedBroker() as embedded:
            yield Broker(BrokerAddress(embedded.host, embedded.port), "amqtt", "amqtt (embedded)")
        return
    if _answers(DEFAULT_MOSQUITTO):
        version = broker_version(DEFAULT_MOSQUITTO) or "unknown"
        if IN_CI and "mosquitto" not in version.lower():
            pytest.exit(f"CI=true: the broker at {DEFAULT_MOSQUITTO.url} is not Mosquitto ({version})", returncode=3)
        yield Broker(DEFAULT_MOSQUITTO, "mosquitto", version)
        return
    binary = shutil.which("mosquitto")
    if binary:
        port = free_port()
        workdir = Path(tempfile.mkdtemp(prefix="mosquitto-"))
        conf = workdir / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        proc = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        address = BrokerAddress("127.0.0.1", port)
        try:
            if not _wait_until_answers(address, 10):
                pytest.exit(f"started {binary} on port {port} but it does not answer", returncode=3)
            yield Broker(address, "mosquitto", broker_version(address) or "mosquitto")
        finally:
            proc.terminate()
            proc.wait(10)
            shutil.rmtree(workdir, ignore_errors=True)
        return
    if IN_CI:
        pytest.exit(
            "CI=true needs the real Mosquitto: nothing answers on 127.0.0.1:1883 and no mosquitto binary "
            "is installed (apt-get install mosquitto)",
            returncode=3,
        )
    with EmbeddedBroker() as embedded:
        yield Broker(BrokerAddress(embedded.host, embedded.port), "amqtt", "amqtt (embedded)")


@pytest.fixture
def topics(mqtt_broker: Broker) -> Iterator[Topics]:
    """Topics under a prefix no other test uses; retained messages under it are cleared after."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    store = "store-test"
    yield Topics(store, prefix=prefix)
    clear_retained(mqtt_broker.address, f"{prefix}/#", settle_s=0.3)


@pytest.fixture(scope="session", autouse=True)
def engine_keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyDirectory]:
    """The engine's signing keys for the whole run, in ESL_SIGNING_KEYS: every command that pushes
    signs with them (and refuses to run without). Simulated labels that should verify are given
    ``engine_keys.trusted()``."""
    keys = KeyDirectory(tmp_path_factory.mktemp("engine-keys"))
    keys.create()
    previous = os.environ.get(KEYS_ENV)
    os.environ[KEYS_ENV] = str(keys.path)
    yield keys
    if previous is None:
        os.environ.pop(KEYS_ENV, None)
    else:
        os.environ[KEYS_ENV] = previous


def pytest_report_header(config: pytest.Config) -> str:
    wanted = "the real Mosquitto (required)" if IN_CI else "Mosquitto if found, else the embedded amqtt broker"
    return f"CI={'true' if IN_CI else 'false'}: broker tests use {wanted}"


# -- databases ------------------------------------------------------------------------------------
POSTGRES_URL = os.environ.get("ESL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a schema of its own, dropped after the session.

    Skipped when PostgreSQL does not answer, except with CI=true, where that fails the run."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    schema = f"esl_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL)
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except OperationalError as exc:
        admin.dispose()
        message = f"PostgreSQL at {POSTGRES_URL} does not answer: {str(exc.orig).strip().splitlines()[0]}"
        if IN_CI:
            pytest.exit(f"CI=true needs PostgreSQL: {message}", returncode=3)
        pytest.skip(message)
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The engine database, on SQLite always and on PostgreSQL when it answers."""
    if request.param == "sqlite":
        return str(tmp_path / "engine.db")
    return str(request.getfixturevalue("postgres_url"))
