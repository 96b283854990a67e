"""Login cookies, bearer tokens and the same-origin check, without a server."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from pricing.review.auth import (
    COOKIE_NAME,
    Auth,
    AuthError,
    check_same_origin,
    clean_name,
)

SECRET = "correct horse battery"


def _request(headers: dict[str, str]) -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in ({"host": "review.local:8080"} | headers).items()]
    return Request({"type": "http", "method": "POST", "path": "/api/x", "headers": raw, "query_string": b""})


def test_a_cookie_names_its_user_until_it_expires_and_cannot_be_forged() -> None:
    auth = Auth(SECRET, max_age_s=3600)
    value = auth.cookie_value("Alice Smith", now=1_000_000)
    assert SECRET not in value
    assert auth.cookie_user(value, now=1_000_100) == "Alice Smith"
    assert auth.cookie_user(value, now=1_000_000 + 3601) is None  # expired
    name, issued, mac = value.split(".")
    assert auth.cookie_user(f"{name}.{int(issued) + 10}.{mac}", now=1_000_100) is None  # issued time changed
    other = Auth("another secret").cookie_value("Alice Smith", now=1_000_000)
    assert auth.cookie_user(other, now=1_000_100) is None  # made with another secret
    assert auth.cookie_user("garbage", now=1_000_100) is None
    assert Auth(None).cookie_user(value, now=1_000_100) is None


def test_bearer_and_cookie_users() -> None:
    auth = Auth(SECRET)
    assert auth.user(_request({"authorization": f"Bearer {SECRET}"})).via == "bearer"  # type: ignore[union-attr]
    assert auth.user(_request({"authorization": "Bearer nope"})) is None
    cookie = auth.cookie_value("bo")
    user = auth.user(_request({"cookie": f"{COOKIE_NAME}={cookie}"}))
    assert user is not None and user.name == "bo" and user.via == "cookie"


def test_writer_checks() -> None:
    with pytest.raises(AuthError) as read_only:
        Auth(None).writer(_request({"authorization": "Bearer x"}))
    assert read_only.value.status == 403
    with pytest.raises(AuthError) as wrong:
        Auth(SECRET).writer(_request({"authorization": "Bearer x"}))
    assert wrong.value.status == 401
    cookie = f"{COOKIE_NAME}={Auth(SECRET).cookie_value('bo')}"
    with pytest.raises(AuthError) as cross:
        Auth(SECRET).writer(_request({"cookie": cookie, "origin": "http://evil.example"}))
    assert cross.value.status == 403
    same = Auth(SECRET).writer(_request({"cookie": cookie, "referer": "http://review.local:8080/sku/1"}))
    assert same.name == "bo"


def test_same_origin_needs_a_matching_origin_or_referer() -> None:
    check_same_origin(_request({"origin": "http://review.local:8080"}))
    for headers in ({}, {"origin": "null"}, {"origin": "http://review.local:9999"}, {"referer": "https://x.y/"}):
        with pytest.raises(AuthError):
            check_same_origin(_request(headers))


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "<script>", "a\x00b", 'quote"d'])
def test_unusable_names(name: str) -> None:
    assert clean_name(name) is None


def test_names_are_trimmed() -> None:
    assert clean_name("  Dana   Lee ") == "Dana Lee"
    assert clean_name("a\nb") == "a b"
