"""Run the review app with uvicorn: in a background thread (tests, `esl-pricing demo --serve`)
or in the foreground (`esl-pricing serve`).

The listening socket is bound before uvicorn starts, so port 0 picks a free port and ``url`` is
known at once, and a port in use is a one-line error (ServerError) instead of a log line from
inside uvicorn's thread.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Self

import uvicorn

from pricing.review.app import create_app
from pricing.review.settings import ReviewSettings


class ServerError(Exception):
    """The server cannot listen or did not start (one line)."""


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.strip().lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ServerError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        why = "the port is in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise ServerError(f"cannot listen on {host}:{port}: {why}") from None
    sock.setblocking(False)
    return sock


class ReviewServer:
    """The review app on ``host``:``port`` (0: a free port). ``start()``/``stop()`` run it in a
    background thread; ``serve_forever()`` runs it here until Ctrl-C or SIGTERM."""

    def __init__(
        self,
        settings: ReviewSettings,
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        clock: Callable[[], datetime] | None = None,
        log_level: str = "warning",
    ) -> None:
        self.settings = settings
        self.host = host
        # Bound to this machine only: answer only to this machine's names (no DNS rebinding).
        allowed = sorted({"127.0.0.1", "localhost", "::1", host.strip("[]").lower()}) if is_loopback(host) else None
        self.app = create_app(settings, clock=clock, allowed_hosts=allowed)
        self._socket = _bind(host, port)
        self.port: int = self._socket.getsockname()[1]
        # proxy_headers=False: the app believes X-Forwarded-* itself, from settings.trusted_proxies only
        # (uvicorn's own default would trust 127.0.0.1 whatever the settings say).
        config = uvicorn.Config(
            self.app, log_level=log_level, access_log=False, lifespan="on", server_header=False,
            proxy_headers=False, timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self, timeout: float = 15.0) -> Self:
        if self._thread is not None:
            return self
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="esl-review-server", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive():
                raise ServerError(f"the review server on {self.url} stopped while starting")
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError(f"the review server on {self.url} did not start within {timeout:g}s")
            time.sleep(0.02)
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until Ctrl-C / SIGTERM (uvicorn handles the signals)."""
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self._close()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving; a push in flight parks (what is left stays in the outbox)."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._close()

    def _close(self) -> None:
        self.app.state.review.close()  # also when uvicorn never ran the lifespan's end
        try:
            self._socket.close()
        except OSError:
            pass

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()
