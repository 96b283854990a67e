"""Where the MQTT broker is and how to connect to it (paho-mqtt 2.x, MQTT 3.1.1 on the wire).

``mqtt://HOST[:PORT]`` is plain TCP (port 1883), ``mqtts://HOST[:PORT]`` is TLS (port 8883). Secrets
never come from a URL or the command line, only from the environment or files:

- ``ESL_MQTT_USERNAME``: the MQTT user; ``ESL_MQTT_PASSWORD_FILE`` (a file holding the password,
  one line) or ``ESL_MQTT_PASSWORD``. When both are set the file wins: it is how service managers
  and containers hand over secrets, and a password left in a shell's environment must not shadow it.
- ``ESL_MQTT_CA_FILE``: the CA bundle that signed the broker's certificate (default: the system's).
- ``ESL_MQTT_CERT_FILE`` + ``ESL_MQTT_KEY_FILE``: an optional client certificate and its key.
- ``ESL_GATEWAY_SECRETS_DIR``: for the simulator, one ``<gateway id>.secret`` per gateway
  (``gateway_credentials``; ``esl-pricing gateways provision`` writes them).

TLS is set up inside ``open_socket`` (so every ``new_client(...)`` + ``open_socket``/``connect``
pair speaks TLS to an mqtts:// address), reading the files when the client first connects.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import ssl
import threading
import time
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt

from pricing.core.ids import ID_PATTERN

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
USERNAME_ENV = "ESL_MQTT_USERNAME"
PASSWORD_ENV = "ESL_MQTT_PASSWORD"
PASSWORD_FILE_ENV = "ESL_MQTT_PASSWORD_FILE"
CA_FILE_ENV = "ESL_MQTT_CA_FILE"
CERT_FILE_ENV = "ESL_MQTT_CERT_FILE"
KEY_FILE_ENV = "ESL_MQTT_KEY_FILE"
GATEWAY_SECRETS_ENV = "ESL_GATEWAY_SECRETS_DIR"
SECRET_SUFFIX = ".secret"
ENGINE_USER = "engine"  # the engine's MQTT user name; the shipped Mosquitto ACL grants it the writes
USER_ID = ID_PATTERN  # MQTT user names we make: gateway ids and "engine"
RECONNECT_FIRST_S = 1.0  # paho's loop_start() waits this long before reconnecting ...
RECONNECT_MAX_S = 2.0  # ... and doubles the wait up to this (its reconnect_delay_set defaults)


class BrokerError(Exception):
    """The broker cannot be used: unreachable, or it refused us. Message is one line."""


class BrokerUrlError(BrokerError):
    """The broker URL itself is wrong (a user error, unlike an unreachable broker)."""


@dataclass(frozen=True)
class BrokerAddress:
    """Where the broker listens; ``tls``: speak TLS (mqtts://). Give the port with ``tls=True``:
    the default port is plain MQTT's 1883 (``parse("mqtts://HOST")`` picks 8883)."""

    host: str
    port: int = DEFAULT_PORT
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerAddress:
        """``mqtt://HOST[:PORT]`` (or ``HOST[:PORT]``; port 1883) or ``mqtts://HOST[:PORT]`` (TLS, port
        8883). Credentials come from the environment, never the URL."""
        text = url.strip()
        if "://" not in text:
            text = "mqtt://" + text
        parts = urlsplit(text)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise BrokerUrlError(
                f"broker URL '{url}': scheme must be mqtt:// or mqtts:// (TLS) (got {parts.scheme}://)"
            )
        if parts.username or parts.password:
            raise BrokerUrlError(
                f"broker URL '{url}': put credentials in {USERNAME_ENV} and {PASSWORD_FILE_ENV} "
                f"(or {PASSWORD_ENV}), not in the URL"
            )
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT)
        except ValueError:
            raise BrokerUrlError(f"broker URL '{url}': port is not a number from 1 to 65535") from None
        if not parts.hostname:
            raise BrokerUrlError(f"broker URL '{url}': no host")
        return cls(parts.hostname, port, tls)

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


# -- secrets --------------------------------------------------------------------------------------
def read_secret(path: Path, source: str) -> str:
    """The one-line secret in ``path`` (a trailing newline is dropped); ``source`` says in the error
    where the path came from. One BrokerError line when it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BrokerError(f"{source}: no such file: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise BrokerError(f"{source}: cannot read {path}: {reason}") from None
    secret = text.rstrip("\r\n")
    if not secret:
        raise BrokerError(f"{source}: {path} is empty")
    if "\n" in secret or "\r" in secret:
        raise BrokerError(f"{source}: {path} holds more than one line (the password alone, please)")
    return secret


@dataclass(frozen=True)
class Credentials:
    """An MQTT user name and password (the password never shows in ``repr``)."""

    username: str
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_environment(cls) -> Credentials | None:
        """From ESL_MQTT_USERNAME and ESL_MQTT_PASSWORD_FILE (which wins) or ESL_MQTT_PASSWORD;
        None when no user name is set. One BrokerError line for an unreadable password file or a
        password without a user name."""
        username = os.environ.get(USERNAME_ENV, "")
        password_file = os.environ.get(PASSWORD_FILE_ENV, "")
        password = os.environ.get(PASSWORD_ENV)
        if password_file:
            password = read_secret(Path(password_file), PASSWORD_FILE_ENV)
        if not username:
            if password:
                source = PASSWORD_FILE_ENV if password_file else PASSWORD_ENV
                raise BrokerError(f"{source} is set but {USERNAME_ENV} is not: MQTT needs a user name with a password")
            return None
        return cls(username, password)


def valid_user_id(name: str) -> bool:
    """Whether ``name`` can be an MQTT user of ours: ``[A-Za-z0-9._-]{1,64}`` (it also names a
    file and fills the ``%u`` of the broker's ACL patterns, so nothing else is allowed)."""
    return USER_ID.fullmatch(name) is not None


def secret_file(directory: Path, user: str) -> Path:
    """Where the password of MQTT user ``user`` lives in a secrets directory."""
    return directory / f"{user}{SECRET_SUFFIX}"


def gateway_credentials(gateway_id: str) -> Credentials | None:
    """The MQTT credentials of gateway ``gateway_id`` (user name = the gateway id, password in
    ``$ESL_GATEWAY_SECRETS_DIR/<gateway_id>.secret``); None when ESL_GATEWAY_SECRETS_DIR is unset."""
    directory = os.environ.get(GATEWAY_SECRETS_ENV, "")
    if not directory:
        return None
    if not valid_user_id(gateway_id):
        raise BrokerError(f"gateway id '{gateway_id}' cannot be an MQTT user name (allowed: {USER_ID.pattern})")
    if gateway_id == ENGINE_USER:
        raise BrokerError(f"gateway id '{ENGINE_USER}' is reserved for the engine's MQTT user")
    return Credentials(gateway_id, read_secret(secret_file(Path(directory), gateway_id), GATEWAY_SECRETS_ENV))


# -- TLS ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TlsFiles:
    """What a TLS client trusts and shows: ``ca_file`` (None: the system's CAs) and an optional
    client certificate (``cert_file``; ``key_file`` when the key is not in the same file)."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @classmethod
    def from_environment(cls) -> TlsFiles:
        """From ESL_MQTT_CA_FILE, ESL_MQTT_CERT_FILE and ESL_MQTT_KEY_FILE (unset or empty: none)."""

        def path(name: str) -> Path | None:
            value = os.environ.get(name, "")
            return Path(value) if value else None

        return cls(path(CA_FILE_ENV), path(CERT_FILE_ENV), path(KEY_FILE_ENV))

    def context(self) -> ssl.SSLContext:
        """A client context (TLS 1.2 or newer, the broker's certificate and host name checked);
        one BrokerError line for a file that is missing or not what it should be. Contexts are
        shared while the files stay the same (loading the system's CAs takes ~20 ms)."""
        stamps = tuple(_stamp(path, name) for path, name in self._named())
        return _cached_context(self, stamps)

    def _named(self) -> tuple[tuple[Path | None, str], ...]:
        return ((self.ca_file, CA_FILE_ENV), (self.cert_file, CERT_FILE_ENV), (self.key_file, KEY_FILE_ENV))

    def describe_ca(self) -> str:
        return f"CA file {self.ca_file}" if self.ca_file else f"the system's CAs; set {CA_FILE_ENV}"


def _stamp(path: Path | None, source: str) -> tuple[int, int] | None:
    if path is None:
        return None
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise BrokerError(f"{source}: no such file: {path}") from None
    except OSError as exc:
        raise BrokerError(f"{source}: cannot read {path}: {exc.strerror or exc}") from None
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=8)
def _cached_context(files: TlsFiles, stamps: tuple[tuple[int, int] | None, ...]) -> ssl.SSLContext:
    """``stamps`` (the files' mtimes and sizes) only keys the cache: a replaced file makes a new context."""
    if files.key_file is not None and files.cert_file is None:
        raise BrokerError(f"{KEY_FILE_ENV} is set but {CERT_FILE_ENV} is not: a key needs its certificate")
    try:
        context = ssl.create_default_context(cafile=str(files.ca_file) if files.ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise BrokerError(f"{CA_FILE_ENV} '{files.ca_file}': not a usable CA bundle: {_ssl_reason(exc)}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if files.cert_file is not None:
        try:
            context.load_cert_chain(str(files.cert_file), str(files.key_file) if files.key_file else None)
        except (OSError, ssl.SSLError) as exc:
            raise BrokerError(
                f"{CERT_FILE_ENV} '{files.cert_file}'"
                + (f" / {KEY_FILE_ENV} '{files.key_file}'" if files.key_file else "")
                + f": not a usable certificate and key: {_ssl_reason(exc)}"
            ) from None
    return context


def _ssl_reason(exc: BaseException) -> str:
    """The readable part of an ssl/OS error: OpenSSL's reason, without the '(_ssl.c:1006)' tail."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return str(exc.verify_message)
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, OSError) and exc.strerror:
        return str(exc.strerror)
    return str(exc)


_TLS_CLIENTS: weakref.WeakSet[mqtt.Client] = weakref.WeakSet()  # clients open_socket gave TLS
_TLS_LOCK = threading.Lock()


def _use_tls(client: mqtt.Client) -> None:
    """Give ``client`` TLS, once: paho keeps it for every reconnect. A client its owner already
    set up for TLS (``tls_set``) keeps that set-up."""
    with _TLS_LOCK:
        if client in _TLS_CLIENTS:
            return
        context = TlsFiles.from_environment().context()
        with contextlib.suppress(ValueError):  # paho: "SSL/TLS has already been configured"
            client.tls_set_context(context)
        _TLS_CLIENTS.add(client)


@dataclass
class ReconnectBackoff:
    """The waits between attempts to reconnect a lost connection: ``first_s``, then each wait
    ``factor`` times the one before, at most ``max_s``; ``reset()`` after a success starts over.

    The defaults are paho's own (loop_start() waits 1 s, then 2 s, 2 s, ...). The owner decides
    whether the first attempt comes at once or after the first wait::

        backoff = ReconnectBackoff()
        backoff.next_delay()  # 1.0
        backoff.next_delay()  # 2.0
        backoff.next_delay()  # 2.0
        backoff.reset()
        backoff.next_delay()  # 1.0
    """

    first_s: float = RECONNECT_FIRST_S
    max_s: float = RECONNECT_MAX_S
    factor: float = 2.0
    _next_s: float | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.first_s < 0:
            raise ValueError(f"first_s must be >= 0 (got {self.first_s})")
        if self.max_s < self.first_s:
            raise ValueError(f"max_s ({self.max_s}) must be >= first_s ({self.first_s})")
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1 (got {self.factor})")

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; each call is one more attempt."""
        delay = self.first_s if self._next_s is None else self._next_s
        self._next_s = min(delay * self.factor, self.max_s)
        return delay

    def reset(self) -> None:
        """The connection is back: the next loss starts again at ``first_s``."""
        self._next_s = None


def new_client(role: str, *, credentials: Credentials | None = None) -> mqtt.Client:
    """A paho client speaking MQTT 3.1.1 with the VERSION2 callback API and a unique client id.

    It logs in with ``credentials``, or when None with ``Credentials.from_environment()`` (no
    user name set: anonymous). TLS comes later, from ``open_socket``, when the address is mqtts://."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=f"esl-{role}-{uuid.uuid4().hex[:10]}",
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    login = credentials if credentials is not None else Credentials.from_environment()
    if login is not None:
        client.username_pw_set(login.username, login.password)
    # Our own flow control bounds what is in flight (label_gateway/delivery.py), so paho gets no
    # window of its own: with one, paho rescans every queued message on each PUBACK
    # (Client._update_inflight), which cost the engine half its throughput at 800 in flight.
    # Callers that publish without such a bound must set one (Mosquitto drops QoS 1 messages
    # queued for a subscriber past max_queued_messages).
    client.max_inflight_messages_set(0)
    client.max_queued_messages_set(0)
    return client


def batch_writes(client: mqtt.Client) -> None:
    """Make ``client`` queue what it sends until ``flush_writes``, for callers that drive the
    network themselves (loop_read/loop_write). Without an external-loop hook, paho writes each
    packet the moment it is queued (a publish, or the PUBACK for each message read): one TCP
    segment per message, and on loopback the broker pays a wake-up and a read for each."""
    client.on_socket_register_write = _wait_for_flush


def _wait_for_flush(client: mqtt.Client, userdata: object, sock: object) -> None:
    """paho's register-write hook: nothing to do, the owner's loop calls flush_writes."""


def tls_pending(client: mqtt.Client) -> bool:
    """Whether ``client``'s TLS layer holds bytes already read off the socket: a poll on the socket
    would not wake for them (paho's own loop checks the same), so the caller reads at once."""
    sock = client.socket()
    return isinstance(sock, ssl.SSLSocket) and sock.pending() > 0


def flush_writes(client: mqtt.Client) -> None:
    """Write what ``client`` queued, corked (Linux) so many small packets leave as few segments;
    what the socket cannot take now stays queued (``want_write()`` stays true)."""
    sock = client.socket()
    if sock is None or not client.want_write():
        return
    cork = getattr(socket, "TCP_CORK", None)
    if cork is None or not isinstance(sock, socket.socket):
        client.loop_write()
        return
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_TCP, cork, 1)
    try:
        client.loop_write()
    finally:
        with contextlib.suppress(OSError):
            if sock.fileno() >= 0:
                sock.setsockopt(socket.IPPROTO_TCP, cork, 0)


def open_socket(client: mqtt.Client, address: BrokerAddress, *, keepalive: int = 30) -> None:
    """Open the TCP connection (and the TLS session, for mqtts://) and send CONNECT (no network
    loop started); one BrokerError line when the broker cannot be reached or TLS fails."""
    if address.tls:
        _use_tls(client)
    try:
        client.connect(address.host, address.port, keepalive=keepalive)
    except ssl.SSLCertVerificationError as exc:  # before ValueError: it is one too
        hint = "" if exc.verify_code in _NAME_MISMATCH else f" ({TlsFiles.from_environment().describe_ca()})"
        raise BrokerError(
            f"MQTT broker at {address.url}: TLS certificate not accepted: {_ssl_reason(exc)}{hint}"
        ) from None
    except ssl.SSLError as exc:
        hint = f"; is port {address.port} a TLS listener?" if _not_tls(exc) else ""
        raise BrokerError(
            f"TLS handshake with MQTT broker at {address.url} failed: {_ssl_reason(exc)}{hint}"
        ) from None
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as exc:
        if not address.tls:
            raise BrokerError(f"cannot reach MQTT broker at {address.url}: {exc.strerror or exc}") from None
        raise BrokerError(
            f"TLS handshake with MQTT broker at {address.url} failed: the broker closed the connection "
            f"({exc.strerror or exc}); is port {address.port} a TLS listener?"
        ) from None
    except OSError as exc:
        raise BrokerError(f"cannot reach MQTT broker at {address.url}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise BrokerError(f"cannot connect to MQTT broker at {address.url}: {exc}") from None


_NAME_MISMATCH = (62, 64)  # OpenSSL's X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_PLAIN_PEER = {"WRONG_VERSION_NUMBER", "UNEXPECTED_EOF_WHILE_READING", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE"}


def _not_tls(exc: ssl.SSLError) -> bool:
    """Whether a failed handshake looks like a peer that does not speak TLS at all."""
    return isinstance(exc, (ssl.SSLEOFError, ssl.SSLZeroReturnError)) or exc.reason in _PLAIN_PEER


def connect(client: mqtt.Client, address: BrokerAddress, *, timeout: float = 10.0, keepalive: int = 30) -> None:
    """Connect and start the network loop; return once the broker accepted us (CONNACK).

    Raises BrokerError with one line saying where and what when it cannot: unreachable, TLS
    failed, login refused, or the connection closed before CONNACK (a plain client on a TLS port).
    Until the CONNACK this thread drives the network itself; paho's loop thread starts only on
    success (stopping one that lost its connection waits out its 1 s reconnect delay).
    """
    answered = threading.Event()
    outcome: dict[str, object] = {}
    previous: Any = client.on_connect  # the caller's VERSION2 callbacks, if any
    previous_disconnect: Any = client.on_disconnect

    def on_connect(c: mqtt.Client, userdata: object, flags: object, reason: mqtt.ReasonCode, props: object) -> None:
        outcome["reason"] = reason
        answered.set()
        if previous is not None:
            previous(c, userdata, flags, reason, props)

    def on_disconnect(c: mqtt.Client, userdata: object, flags: object, reason: object, props: object) -> None:
        answered.set()
        if previous_disconnect is not None:
            previous_disconnect(c, userdata, flags, reason, props)

    client.on_connect = on_connect
    client.on_disconnect = on_disconnect
    try:
        open_socket(client, address, keepalive=keepalive)
        deadline = time.monotonic() + timeout
        while not answered.is_set() and client.socket() is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                _close(client)
                raise BrokerError(f"MQTT broker at {address.url} did not answer CONNECT within {timeout:.0f}s")
            client.loop(min(remaining, 0.25))
    finally:
        client.on_connect = previous
        client.on_disconnect = previous_disconnect
    reason = outcome.get("reason")
    if reason is None:
        hint = "" if address.tls else " (a TLS listener? use mqtts://)"
        raise BrokerError(f"MQTT broker at {address.url} closed the connection before answering CONNECT{hint}")
    assert isinstance(reason, mqtt.ReasonCode)
    if reason.is_failure:
        _close(client)
        raise BrokerError(f"MQTT broker at {address.url} refused the connection: {reason}")
    client.loop_start()


def _close(client: mqtt.Client) -> None:
    """Close a connection that never got going (no DISCONNECT: there is no session to end)."""
    sock = client.socket()
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.close()


def disconnect(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()


def clear_retained(address: BrokerAddress, topic_filter: str, *, settle_s: float = 0.5, passes: int = 20) -> int:
    """Delete every retained message under ``topic_filter`` (e.g. a store being decommissioned,
    or a test's prefix). Returns how many topics were cleared.

    Mosquitto hands a new subscriber its retained messages in one burst and drops what does not
    fit its queue for that client (seen: thousands of 20,000), so this subscribes again after each
    round of deletions until a round finds nothing."""
    client = new_client("cleaner")
    found: set[str] = set()
    lock = threading.Lock()
    arrived = [0.0]

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        if message.retain and message.payload:
            with lock:
                found.add(message.topic)
                arrived[0] = time.monotonic()

    client.on_message = on_message
    connect(client, address)
    cleared: set[str] = set()
    try:
        for _ in range(passes):
            with lock:
                found.clear()
            started = time.monotonic()
            client.subscribe(topic_filter, qos=0)
            while True:  # retained messages arrive right after SUBACK; wait until they stop
                time.sleep(min(settle_s, 0.2))
                with lock:
                    last = arrived[0]
                if time.monotonic() - max(last, started) >= settle_s:
                    break
            client.unsubscribe(topic_filter)
            with lock:
                topics = sorted(found - cleared)
            if not topics:
                break
            infos = [client.publish(topic, b"", qos=1, retain=True) for topic in topics]
            for info in infos:
                info.wait_for_publish(30)
            cleared.update(topics)
    finally:
        disconnect(client)
    return len(cleared)


def broker_version(address: BrokerAddress, *, timeout: float = 3.0) -> str | None:
    """The broker's ``$SYS/broker/version`` text (Mosquitto publishes it retained), or None."""
    client = new_client("probe")
    got = threading.Event()
    version: list[str] = []

    def on_message(c: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        version.append(message.payload.decode(errors="replace"))
        got.set()

    client.on_message = on_message
    connect(client, address, timeout=timeout)
    try:
        client.subscribe("$SYS/broker/version", qos=0)
        got.wait(timeout)
    finally:
        disconnect(client)
    return version[0] if version else None
