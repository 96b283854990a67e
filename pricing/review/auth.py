"""Who may change things on the review page: a configured secret, shown as a bearer token or
turned into a login cookie.

- ``Authorization: Bearer <secret>`` (scripts, the API).
- The login form takes a name and the secret and sets a cookie whose value is the name, the
  time it was issued, a random session id and an HMAC-SHA256 of the three keyed with the secret:
  the secret itself never travels back to the browser, a forged or expired cookie fails the check,
  and changing the secret logs everyone out. The cookie is HttpOnly, SameSite=Strict, and Secure
  when the request came over HTTPS (directly or through a trusted proxy).
- The server keeps the session ids it issued (``Sessions``, in memory, until they expire): logging
  out removes the id, so a copied cookie stops working at once; a restart logs everyone out.
- A state-changing request that relies on the cookie, and the login form itself, must also come
  from the page: its Origin (or Referer) must name this server's host (a cross-site form cannot
  forge that). Bearer requests carry no cookie and need no Origin.
- Wrong secrets are throttled per client address (``Throttle``): after ``max_failures`` wrong
  bearer tokens or logins within ``window_s``, the client's next attempts answer 429 with
  Retry-After at once for ``lockout_s``, without checking the secret. Nothing sleeps, so a flood
  of guesses holds no worker thread and a right secret is never slowed.

Secrets and MACs are compared in constant time. Without a secret nobody is authenticated and the
app is read-only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import math
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from starlette.requests import Request

COOKIE_NAME = "esl_review"
_NAME = re.compile(r"^[^\x00-\x1f\x7f<>\"'`]{1,64}$")
_SID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_USER_KEY = "esl_review_user"  # request.state: who the request is, worked out once per request
MAX_SESSIONS = 10_000


class AuthError(Exception):
    """A request that may not change anything; ``status`` is 401, 403 for the read-only app and a
    cross-site request, or 429 (with ``retry_after`` seconds) for a client locked out after too
    many wrong secrets. The message is one line."""

    def __init__(self, status: int, message: str, *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str] | None:
        if self.status == 401:
            return {"WWW-Authenticate": "Bearer"}
        if self.retry_after is not None:
            return {"Retry-After": str(self.retry_after)}
        return None


READ_ONLY_MESSAGE = "read-only: set ESL_REVIEW_TOKEN to allow approvals"


@dataclass(frozen=True)
class User:
    name: str
    via: Literal["bearer", "cookie"]


def clean_name(name: str) -> str | None:
    """A login name as shown on the page and written into plans, or None when it is not usable
    (empty, longer than 64 characters, control characters or markup)."""
    text = " ".join(name.split())
    return text if _NAME.match(text) else None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- who is asking ---------------------------------------------------------------------------------


def client_key(host: str | None) -> str:
    """The throttle's key for a client address: the address itself, an IPv6 address's /64 (one
    subscriber gets a whole /64, so its addresses are one client), "unknown" without one."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:64]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def client_of(request: Request) -> str:
    """The client the request came from: the peer, or behind a trusted proxy the address it
    forwarded (the ProxyHeadersMiddleware rewrote ``request.client`` already)."""
    return client_key(request.client.host if request.client else None)


# -- throttling wrong secrets ------------------------------------------------------------------------


@dataclass
class _Attempts:
    window_start: float
    failures: int = 0
    locked_until: float = 0.0


class Throttle:
    """Wrong secrets per client: ``max_failures`` within ``window_s`` lock the client out for
    ``lockout_s``. It never sleeps: a locked client is refused (429) at once.

    At most ``max_clients`` clients are remembered (a flood from many addresses costs that much
    memory, no more): past that, the client that failed longest ago is forgotten. ``clock`` is
    monotonic seconds."""

    def __init__(
        self,
        max_failures: int = 5,
        window_s: float = 300.0,
        lockout_s: float = 300.0,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_clients = max_clients
        self.clock = clock
        self._clients: OrderedDict[str, _Attempts] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._clients)

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until ``client`` may try again, or None when it may now."""
        with self._lock:
            entry = self._clients.get(client)
            wait = 0.0 if entry is None else entry.locked_until - self.clock()
        return math.ceil(wait) if wait > 0 else None

    def check(self, client: str) -> None:
        """AuthError 429 (with Retry-After) when ``client`` is locked out."""
        wait = self.retry_after(client)
        if wait is not None:
            raise _locked_out(wait)

    def attempt(self, client: str) -> None:
        """Count an attempt by ``client`` as failed before its secret is checked (so concurrent
        guesses cannot slip past the limit; ``succeeded`` takes it back): AuthError 429 when the
        client is locked out, and the ``max_failures``-th attempt within the window locks it out."""
        now = self.clock()
        with self._lock:
            entry = self._clients.pop(client, None)
            if entry is not None and entry.locked_until > now:
                self._clients[client] = entry
                raise _locked_out(math.ceil(entry.locked_until - now))
            if entry is None or now - entry.window_start > self.window_s:
                entry = _Attempts(now)
            entry.failures += 1
            if entry.failures >= self.max_failures:
                entry.locked_until = now + self.lockout_s
                entry.window_start, entry.failures = now, 0
            self._make_room(now)
            self._clients[client] = entry  # the latest at the end

    def succeeded(self, client: str) -> None:
        """A right secret from ``client``: its failures (and lockout) are forgotten."""
        with self._lock:
            self._clients.pop(client, None)

    def _stale(self, entry: _Attempts, now: float) -> bool:
        return entry.locked_until <= now and now - entry.window_start > self.window_s

    def _make_room(self, now: float) -> None:
        """Forget the clients whose window has passed from the front (the longest ago), then, while
        the table is still full, the client that failed longest ago."""
        while self._clients and self._stale(next(iter(self._clients.values())), now):
            self._clients.popitem(last=False)
        while len(self._clients) >= self.max_clients:
            self._clients.popitem(last=False)


def _locked_out(wait: int) -> AuthError:
    return AuthError(429, f"too many wrong tokens from your address: try again in {wait} s", retry_after=wait)


# -- sessions ---------------------------------------------------------------------------------------


class Sessions:
    """The login sessions this server issued and nobody logged out of: session id -> expiry (epoch
    seconds). At most ``max_sessions``; past that the oldest are dropped (logged out)."""

    def __init__(self, max_sessions: int = MAX_SESSIONS) -> None:
        self.max_sessions = max_sessions
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, sid: str, expires: float, now: float) -> None:
        with self._lock:
            for old in [key for key, until in self._expiry.items() if until <= now]:
                del self._expiry[old]
            while len(self._expiry) >= self.max_sessions:
                self._expiry.popitem(last=False)
            self._expiry[sid] = expires

    def active(self, sid: str, now: float) -> bool:
        with self._lock:
            until = self._expiry.get(sid)
            return until is not None and until > now

    def revoke(self, sid: str) -> bool:
        with self._lock:
            return self._expiry.pop(sid, None) is not None


@dataclass(frozen=True)
class Session:
    name: str
    sid: str


# -- the checks ---------------------------------------------------------------------------------------


class Auth:
    """The checks, for one secret (None: nobody is ever authenticated)."""

    def __init__(
        self, secret: str | None, *, max_age_s: int = 12 * 3600, throttle: Throttle | None = None,
        sessions: Sessions | None = None,
    ) -> None:
        self._secret = None if secret is None else secret.encode("utf-8")
        self.max_age_s = max_age_s
        self.throttle = Throttle() if throttle is None else throttle
        self.sessions = Sessions() if sessions is None else sessions

    @property
    def enabled(self) -> bool:
        return self._secret is not None

    def secret_matches(self, given: str) -> bool:
        """Constant time (both sides are hashed first, so not even the length leaks)."""
        if self._secret is None:
            return False
        want = hashlib.sha256(self._secret).digest()
        got = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
        return hmac.compare_digest(want, got)

    def attempt(self, request: Request, given: str) -> bool:
        """``given`` checked as the secret for ``request``'s client, throttled: AuthError 429 when
        the client is locked out (the secret is not even looked at), else whether it matches."""
        client = client_of(request)
        self.throttle.attempt(client)
        if self.secret_matches(given):
            self.throttle.succeeded(client)
            return True
        return False

    # -- login cookies --------------------------------------------------------------------------------
    def _mac(self, name: str, issued: int, sid: str) -> str:
        assert self._secret is not None
        message = f"esl-review-login\n{name}\n{issued}\n{sid}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def cookie_value(self, name: str, *, now: float | None = None) -> str:
        """A new session for ``name``: the cookie's value (the session is remembered until it expires)."""
        moment = time.time() if now is None else now
        issued, sid = int(moment), secrets.token_urlsafe(18)
        self.sessions.add(sid, issued + self.max_age_s, moment)
        return f"{_b64(name.encode('utf-8'))}.{issued}.{sid}.{self._mac(name, issued, sid)}"

    def session(self, value: str, *, now: float | None = None) -> Session | None:
        """The session a login cookie vouches for, or None (forged, expired, logged out, no secret)."""
        if self._secret is None or value.count(".") != 3:
            return None
        encoded, issued_text, sid, mac = value.split(".")
        try:
            name = _unb64(encoded).decode("utf-8")
            issued = int(issued_text)
        except (ValueError, UnicodeDecodeError):
            return None
        if not _SID.match(sid) or not hmac.compare_digest(self._mac(name, issued, sid), mac):
            return None
        moment = time.time() if now is None else now
        age = moment - issued
        if age < -60 or age > self.max_age_s or not self.sessions.active(sid, moment):
            return None
        return Session(name, sid) if clean_name(name) == name else None

    def cookie_user(self, value: str, *, now: float | None = None) -> str | None:
        """The name a login cookie vouches for, or None (forged, expired, logged out, no secret)."""
        found = self.session(value, now=now)
        return None if found is None else found.name

    def log_out(self, request: Request) -> bool:
        """Revoke the session of ``request``'s cookie (a copy of the cookie stops working too)."""
        found = self.session(request.cookies.get(COOKIE_NAME, ""))
        return found is not None and self.sessions.revoke(found.sid)

    # -- requests ---------------------------------------------------------------------------------------
    def user(self, request: Request) -> User | None:
        """Who sent ``request`` (bearer token first, then the cookie), or None. A bearer token is a
        throttled attempt: AuthError 429 while the client is locked out. Worked out once per
        request (an error page showing the user does not count a wrong token twice)."""
        state = request.state
        if not hasattr(state, _USER_KEY):
            try:
                setattr(state, _USER_KEY, self._user(request))
            except AuthError as exc:
                setattr(state, _USER_KEY, exc)
        found: User | AuthError | None = getattr(state, _USER_KEY)
        if isinstance(found, AuthError):
            raise found
        return found

    def shown_user(self, request: Request) -> User | None:
        """``user``, or None for a locked-out client (what a page shows as logged in)."""
        try:
            return self.user(request)
        except AuthError:
            return None

    def _user(self, request: Request) -> User | None:
        if self._secret is None:
            return None
        token = bearer_token(request)
        if token is not None:
            return User("api", "bearer") if self.attempt(request, token) else None
        cookie = request.cookies.get(COOKIE_NAME)
        if cookie:
            name = self.cookie_user(cookie)
            if name is not None:
                return User(name, "cookie")
        return None

    def writer(self, request: Request) -> User:
        """The user allowed to change things with ``request``; AuthError otherwise."""
        if self._secret is None:
            raise AuthError(403, READ_ONLY_MESSAGE)
        if bearer_token(request) is not None:
            user = self.user(request)
            if user is None:
                raise AuthError(401, "wrong token")
            return user
        user = self.user(request)
        if user is None:
            raise AuthError(401, "log in (or send Authorization: Bearer <token>) to change anything")
        check_same_origin(request)
        return user


def bearer_token(request: Request) -> str | None:
    """The token of ``Authorization: Bearer <token>`` (None without one, "" for an empty one)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


def check_same_origin(request: Request) -> None:
    """Refuse (403) a request whose Origin, or else Referer, does not name this server, and one
    with neither: what a cookie allows must come from the page itself (CSRF)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    host = request.headers.get("host", "")
    if not source or source == "null":
        raise AuthError(403, "cross-site request refused: no Origin or Referer header")
    netloc = urlsplit(source).netloc
    if not host or netloc.lower() != host.lower():
        raise AuthError(403, f"cross-site request refused: origin {netloc or source[:100]} is not {host}")
