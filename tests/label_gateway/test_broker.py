"""label_gateway.broker without a broker: the reconnect backoff both network loops share, broker URLs,
credentials and TLS set-up (the attacks on a real TLS broker are in tests/security/)."""

from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path

import pytest

from label_gateway.broker import (
    CA_FILE_ENV,
    CERT_FILE_ENV,
    GATEWAY_SECRETS_ENV,
    KEY_FILE_ENV,
    PASSWORD_ENV,
    PASSWORD_FILE_ENV,
    RECONNECT_FIRST_S,
    RECONNECT_MAX_S,
    USERNAME_ENV,
    BrokerAddress,
    BrokerError,
    BrokerUrlError,
    Credentials,
    ReconnectBackoff,
    TlsFiles,
    gateway_credentials,
    new_client,
    open_socket,
)
from label_gateway.embedded_broker import free_port
from simulator.gateways import NetworkLoop, _Connection


def test_backoff_waits_one_second_then_two_as_paho_does() -> None:
    backoff = ReconnectBackoff()
    assert (RECONNECT_FIRST_S, RECONNECT_MAX_S) == (1.0, 2.0)
    assert [backoff.next_delay() for _ in range(5)] == [1.0, 2.0, 2.0, 2.0, 2.0]


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = ReconnectBackoff(first_s=0.5, max_s=5.0)
    assert [backoff.next_delay() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_starts_over_after_a_success() -> None:
    backoff = ReconnectBackoff()
    backoff.next_delay()
    backoff.next_delay()
    backoff.reset()
    assert backoff.next_delay() == 1.0


def test_each_backoff_keeps_its_own_count() -> None:
    a, b = ReconnectBackoff(), ReconnectBackoff()
    a.next_delay()
    assert (a.next_delay(), b.next_delay()) == (2.0, 1.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"first_s": -1.0}, "first_s must be >= 0"),
        ({"first_s": 3.0, "max_s": 2.0}, r"max_s \(2.0\) must be >= first_s \(3.0\)"),
        ({"factor": 0.5}, "factor must be >= 1"),
    ],
)
def test_backoff_refuses_settings_that_make_no_sense(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReconnectBackoff(**kwargs)


class _LostClient:
    """A paho client whose connection is gone; reconnect() fails ``failures`` times, then works."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: list[float] = []
        self.now = 0.0

    def socket(self) -> None:
        return None

    def reconnect(self) -> None:
        self.attempts.append(self.now)
        if len(self.attempts) <= self.failures:
            raise ConnectionRefusedError(111, "Connection refused")


def test_the_simulator_network_loop_reconnects_after_1_then_every_2_seconds() -> None:
    loop = NetworkLoop()
    try:
        client = _LostClient(failures=3)
        connection = _Connection(client)  # type: ignore[arg-type]
        for tick in range(120):
            client.now = tick / 10
            loop._reconnect([connection], client.now)
            if len(client.attempts) == 4:
                break
        assert client.attempts == [1.0, 3.0, 5.0, 7.0]  # the connection was found lost at 0.0
        assert connection.reconnect_at is None
        client.failures, client.attempts = 0, []
        for client.now in (20.0, 21.0):  # lost again later: 1 s again, not 2
            loop._reconnect([connection], client.now)
        assert client.attempts == [21.0]
    finally:
        loop.close()


# -- broker URLs ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker.local", BrokerAddress("broker.local", 1883, tls=False)),
        ("mqtt://10.0.0.5:1884", BrokerAddress("10.0.0.5", 1884, tls=False)),
        ("broker.local:1885", BrokerAddress("broker.local", 1885, tls=False)),
        ("mqtts://broker.local", BrokerAddress("broker.local", 8883, tls=True)),
        ("mqtts://127.0.0.1:18883", BrokerAddress("127.0.0.1", 18883, tls=True)),
        ("  mqtts://Broker.Local:8884  ", BrokerAddress("broker.local", 8884, tls=True)),
    ],
)
def test_broker_urls_say_where_and_whether_tls(url: str, expected: BrokerAddress) -> None:
    assert BrokerAddress.parse(url) == expected
    assert BrokerAddress.parse(expected.url) == expected


def test_the_url_of_an_address_names_its_scheme() -> None:
    assert BrokerAddress("h", 8883, tls=True).url == "mqtts://h:8883"
    assert BrokerAddress("h").url == "mqtt://h:1883"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://broker", r"scheme must be mqtt:// or mqtts:// \(TLS\) \(got http://\)"),
        ("ssl://broker:8883", r"scheme must be mqtt:// or mqtts://"),
        ("mqtts://engine:secret@broker", "put credentials in ESL_MQTT_USERNAME and ESL_MQTT_PASSWORD_FILE"),
        ("mqtts://broker:99999", "port is not a number from 1 to 65535"),
        ("mqtts://:8883", "no host"),
    ],
)
def test_a_bad_broker_url_is_one_clear_line(url: str, message: str) -> None:
    with pytest.raises(BrokerUrlError, match=message) as caught:
        BrokerAddress.parse(url)
    assert "\n" not in str(caught.value)


# -- credentials ------------------------------------------------------------------------------------
@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (USERNAME_ENV, PASSWORD_ENV, PASSWORD_FILE_ENV, CA_FILE_ENV, CERT_FILE_ENV, KEY_FILE_ENV,
                 GATEWAY_SECRETS_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_no_user_name_means_anonymous(clean_env: pytest.MonkeyPatch) -> None:
    assert Credentials.from_environment() is None
    client = new_client("t")
    assert client.username is None


def test_user_and_password_come_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv(USERNAME_ENV, "engine")
    clean_env.setenv(PASSWORD_ENV, "s3cret")
    assert Credentials.from_environment() == Credentials("engine", "s3cret")
    client = new_client("t")
    assert (client.username, client.password) == ("engine", "s3cret")


def test_the_password_file_wins_over_the_password_variable(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret = tmp_path / "engine.secret"
    secret.write_text("from-the-file\n")
    clean_env.setenv(USERNAME_ENV, "engine")
    clean_env.setenv(PASSWORD_ENV, "from-the-variable")
    clean_env.setenv(PASSWORD_FILE_ENV, str(secret))
    assert Credentials.from_environment() == Credentials("engine", "from-the-file")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "ESL_MQTT_PASSWORD_FILE: no such file: {path}"),
        ("\n", "ESL_MQTT_PASSWORD_FILE: {path} is empty"),
        ("one\ntwo\n", "ESL_MQTT_PASSWORD_FILE: {path} holds more than one line (the password alone, please)"),
    ],
)
def test_an_unusable_password_file_is_one_clear_line(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "engine.secret"
    if content is not None:
        path.write_text(content)
    clean_env.setenv(USERNAME_ENV, "engine")
    clean_env.setenv(PASSWORD_FILE_ENV, str(path))
    with pytest.raises(BrokerError) as caught:
        new_client("t")
    assert str(caught.value) == message.format(path=path)


def test_a_password_without_a_user_name_is_refused(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv(PASSWORD_ENV, "s3cret")
    with pytest.raises(BrokerError, match="ESL_MQTT_PASSWORD is set but ESL_MQTT_USERNAME is not"):
        Credentials.from_environment()


def test_explicit_credentials_win_over_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv(USERNAME_ENV, "engine")
    clean_env.setenv(PASSWORD_ENV, "engine-password")
    client = new_client("t", credentials=Credentials("gw-01", "gateway-password"))
    assert (client.username, client.password) == ("gw-01", "gateway-password")


def test_a_password_never_shows_in_a_repr() -> None:
    assert "hunter2" not in repr(Credentials("gw-01", "hunter2"))


def test_gateway_credentials_need_the_secrets_directory(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert gateway_credentials("gw-01") is None
    (tmp_path / "gw-01.secret").write_text("gw-01-password\n")
    clean_env.setenv(GATEWAY_SECRETS_ENV, str(tmp_path))
    assert gateway_credentials("gw-01") == Credentials("gw-01", "gw-01-password")


@pytest.mark.parametrize(
    ("gateway", "message"),
    [
        ("gw-02", "ESL_GATEWAY_SECRETS_DIR: no such file: {dir}/gw-02.secret"),
        ("engine", "gateway id 'engine' is reserved for the engine's MQTT user"),
        ("gw/../../etc", r"gateway id 'gw/../../etc' cannot be an MQTT user name (allowed: [A-Za-z0-9._-]{{1,64}})"),
    ],
)
def test_gateway_credentials_that_cannot_be_had_are_one_clear_line(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, gateway: str, message: str
) -> None:
    (tmp_path / "engine.secret").write_text("engine-password\n")
    clean_env.setenv(GATEWAY_SECRETS_ENV, str(tmp_path))
    with pytest.raises(BrokerError) as caught:
        gateway_credentials(gateway)
    assert str(caught.value) == message.format(dir=tmp_path)


# -- TLS --------------------------------------------------------------------------------------------
def test_tls_trusts_the_system_cas_unless_told_otherwise(clean_env: pytest.MonkeyPatch) -> None:
    files = TlsFiles.from_environment()
    assert files == TlsFiles()
    context = files.context()
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert files.context() is context  # loaded once while the files stay the same


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({CA_FILE_ENV: "missing.pem"}, "ESL_MQTT_CA_FILE: no such file: {dir}/missing.pem"),
        ({CA_FILE_ENV: "garbage.pem"}, "ESL_MQTT_CA_FILE '{dir}/garbage.pem': not a usable CA bundle: "),
        ({CERT_FILE_ENV: "garbage.pem"}, "ESL_MQTT_CERT_FILE '{dir}/garbage.pem': not a usable certificate and key: "),
        ({KEY_FILE_ENV: "garbage.pem"}, "ESL_MQTT_KEY_FILE is set but ESL_MQTT_CERT_FILE is not"),
    ],
)
def test_unusable_tls_files_are_one_clear_line(
    clean_env: pytest.MonkeyPatch, tmp_path: Path, env: dict[str, str], message: str
) -> None:
    (tmp_path / "garbage.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    for name, value in env.items():
        clean_env.setenv(name, str(tmp_path / value))
    with pytest.raises(BrokerError) as caught:
        TlsFiles.from_environment().context()
    assert str(caught.value).startswith(message.format(dir=tmp_path)) and "\n" not in str(caught.value)


def test_open_socket_gives_a_client_tls_once_for_all_its_attempts(clean_env: pytest.MonkeyPatch) -> None:
    address = BrokerAddress("127.0.0.1", free_port(), tls=True)
    client = new_client("t")
    for _ in range(2):  # paho refuses a second TLS set-up: the second attempt must not try one
        with pytest.raises(BrokerError) as caught:
            open_socket(client, address)
        assert str(caught.value) == f"cannot reach MQTT broker at mqtts://127.0.0.1:{address.port}: Connection refused"


def test_tls_to_a_listener_that_hangs_up_is_one_clear_line(clean_env: pytest.MonkeyPatch) -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        address = BrokerAddress("127.0.0.1", server.getsockname()[1], tls=True)

        def hang_up() -> None:
            connection, _ = server.accept()
            connection.recv(1024)  # the ClientHello
            connection.close()

        thread = threading.Thread(target=hang_up, daemon=True)
        thread.start()
        with pytest.raises(BrokerError) as caught:
            open_socket(new_client("t"), address)
        thread.join(5)
    message = str(caught.value)  # OpenSSL's words for the hang-up vary with its version
    assert message.startswith(f"TLS handshake with MQTT broker at {address.url} failed: ") and "\n" not in message
    assert message.endswith(f"; is port {address.port} a TLS listener?")


def test_flush_writes_corks_a_tls_socket_too() -> None:
    """delivery.py's flush_writes takes the TCP_CORK branch for any socket.socket: an
    ssl.SSLSocket is one, and setsockopt reaches the TCP socket under it."""
    assert issubclass(ssl.SSLSocket, socket.socket)
    with socket.create_server(("127.0.0.1", 0)) as server, socket.create_connection(server.getsockname()) as raw:
        context = ssl.create_default_context()
        tls = context.wrap_socket(raw, server_hostname="localhost", do_handshake_on_connect=False)
        tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 1)
        assert tls.getsockopt(socket.IPPROTO_TCP, socket.TCP_CORK) == 1
        tls.setsockopt(socket.IPPROTO_TCP, socket.TCP_CORK, 0)
