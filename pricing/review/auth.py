"""Who may change things on the review page: a configured secret, shown as a bearer token or
turned into a login cookie.

- ``Authorization: Bearer <secret>`` (scripts, the API).
- The login form takes a name and the secret and sets a cookie whose value is the name, the
  time it was issued and an HMAC-SHA256 of both keyed with the secret: the secret itself never
  travels back to the browser, a forged or expired cookie fails the check, and changing the
  secret logs everyone out. The cookie is HttpOnly and SameSite=Strict.
- A state-changing request that relies on the cookie must also come from the page itself: its
  Origin (or Referer) must name this server's host (a cross-site form cannot forge that).

Secrets and MACs are compared in constant time. Without a secret nobody is authenticated and the
app is read-only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from starlette.requests import Request

COOKIE_NAME = "esl_review"
_NAME = re.compile(r"^[^\x00-\x1f\x7f<>\"'`]{1,64}$")


class AuthError(Exception):
    """A request that may not change anything; ``status`` is 401, or 403 for the read-only app
    and a cross-site request. The message is one line."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


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


class Auth:
    """The checks, for one secret (None: nobody is ever authenticated)."""

    def __init__(self, secret: str | None, *, max_age_s: int = 12 * 3600) -> None:
        self._secret = None if secret is None else secret.encode("utf-8")
        self.max_age_s = max_age_s

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

    def _mac(self, name: str, issued: int) -> str:
        assert self._secret is not None
        message = f"esl-review-login\n{name}\n{issued}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def cookie_value(self, name: str, *, now: float | None = None) -> str:
        issued = int(time.time() if now is None else now)
        return f"{_b64(name.encode('utf-8'))}.{issued}.{self._mac(name, issued)}"

    def cookie_user(self, value: str, *, now: float | None = None) -> str | None:
        """The name a login cookie vouches for, or None (forged, expired, no secret)."""
        if self._secret is None or value.count(".") != 2:
            return None
        encoded, issued_text, mac = value.split(".")
        try:
            name = _unb64(encoded).decode("utf-8")
            issued = int(issued_text)
        except (ValueError, UnicodeDecodeError):
            return None
        if not hmac.compare_digest(self._mac(name, issued), mac):
            return None
        age = (time.time() if now is None else now) - issued
        if age < -60 or age > self.max_age_s:
            return None
        return name if clean_name(name) == name else None

    def user(self, request: Request) -> User | None:
        """Who sent ``request`` (bearer token first, then the cookie), or None."""
        if self._secret is None:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            return User("api", "bearer") if self.secret_matches(token.strip()) else None
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
        header = request.headers.get("authorization", "")
        if header and header.partition(" ")[0].lower() == "bearer":
            user = self.user(request)
            if user is None:
                raise AuthError(401, "wrong token")
            return user
        user = self.user(request)
        if user is None:
            raise AuthError(401, "log in (or send Authorization: Bearer <token>) to change anything")
        check_same_origin(request)
        return user


def check_same_origin(request: Request) -> None:
    """Refuse (403) a request whose Origin, or else Referer, does not name this server, and one
    with neither: what a cookie allows must come from the page itself (CSRF)."""
    source = request.headers.get("origin") or request.headers.get("referer")
    host = request.headers.get("host", "")
    if not source or source == "null":
        raise AuthError(403, "cross-site request refused: no Origin or Referer header")
    if urlsplit(source).netloc.lower() != host.lower():
        raise AuthError(403, f"cross-site request refused: origin {urlsplit(source).netloc or source} is not {host}")
