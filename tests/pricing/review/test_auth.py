"""Login cookies, bearer tokens and the same-origin check, without a server."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from pricing.review.auth import (
    COOKIE_NAME,
    Auth,
    AuthError,
    Sessions,
    Throttle,
    bearer_token,
    check_same_origin,
    clean_name,
    client_key,
)

SECRET = "correct horse battery"


def _request(headers: dict[str, str], client: str = "192.0.2.1") -> Request:
    raw = [(k.lower().encode(), v.encode()) for k, v in ({"host": "review.local:8080"} | headers).items()]
    return Request({"type": "http", "method": "POST", "path": "/api/x", "headers": raw, "query_string": b"",
                    "client": (client, 50000)})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_cookie_names_its_user_until_it_expires_and_cannot_be_forged() -> None:
    auth = Auth(SECRET, max_age_s=3600)
    value = auth.cookie_value("Alice Smith", now=1_000_000)
    assert SECRET not in value
    assert auth.cookie_user(value, now=1_000_100) == "Alice Smith"
    assert auth.cookie_user(value, now=1_000_000 + 3601) is None  # expired
    name, issued, sid, mac = value.split(".")
    assert auth.cookie_user(f"{name}.{int(issued) + 10}.{sid}.{mac}", now=1_000_100) is None  # issued time changed
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
    auth = Auth(SECRET)  # sessions live on the server that issued them
    cookie = f"{COOKIE_NAME}={auth.cookie_value('bo')}"
    with pytest.raises(AuthError) as cross:
        auth.writer(_request({"cookie": cookie, "origin": "http://evil.example"}))
    assert cross.value.status == 403
    same = auth.writer(_request({"cookie": cookie, "referer": "http://review.local:8080/sku/1"}))
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


# -- sessions -----------------------------------------------------------------------------------------


def test_logging_out_revokes_the_session_and_every_copy_of_its_cookie() -> None:
    auth = Auth(SECRET)
    value = auth.cookie_value("bo")
    request = _request({"cookie": f"{COOKIE_NAME}={value}"})
    assert auth.cookie_user(value) == "bo"
    assert auth.log_out(request) is True
    assert auth.cookie_user(value) is None  # the copy an attacker kept
    assert auth.user(_request({"cookie": f"{COOKIE_NAME}={value}"})) is None
    assert auth.log_out(request) is False  # already gone
    other = auth.cookie_value("bo")
    assert auth.cookie_user(other) == "bo"  # a new login is a new session


def test_a_cookie_from_another_server_or_a_restart_is_nobody() -> None:
    value = Auth(SECRET).cookie_value("bo")
    assert Auth(SECRET).cookie_user(value) is None  # same secret, but this server never issued it


def test_the_session_table_is_bounded_and_forgets_expired_sessions() -> None:
    sessions = Sessions(max_sessions=3)
    for i in range(5):
        sessions.add(f"sid-{i}", expires=100.0, now=10.0)
    assert len(sessions) == 3 and not sessions.active("sid-0", 10.0) and sessions.active("sid-4", 10.0)
    sessions.add("late", expires=500.0, now=200.0)  # the others expired at 100
    assert len(sessions) == 1 and sessions.active("late", 200.0) and not sessions.active("late", 500.0)


# -- throttling ---------------------------------------------------------------------------------------


def test_the_throttle_locks_a_client_out_after_max_failures_and_lets_it_back_after_the_lockout() -> None:
    clock = Clock()
    throttle = Throttle(max_failures=3, window_s=60, lockout_s=120, clock=clock)
    for _ in range(3):
        throttle.attempt("a")  # counted before the secret is checked
    with pytest.raises(AuthError) as locked:
        throttle.attempt("a")
    assert locked.value.status == 429 and locked.value.retry_after == 120
    assert locked.value.headers == {"Retry-After": "120"} and "\n" not in str(locked.value)
    throttle.attempt("b")  # another client is not affected
    clock.now += 100
    assert throttle.retry_after("a") == 20
    with pytest.raises(AuthError):
        throttle.check("a")
    clock.now += 21
    throttle.check("a")
    throttle.attempt("a")


def test_failures_outside_the_window_do_not_add_up() -> None:
    clock = Clock()
    throttle = Throttle(max_failures=3, window_s=60, lockout_s=60, clock=clock)
    for _ in range(10):
        throttle.attempt("a")
        throttle.attempt("a")
        clock.now += 61
    assert throttle.retry_after("a") is None


def test_a_right_secret_forgets_the_failures() -> None:
    clock = Clock()
    throttle = Throttle(max_failures=3, clock=clock)
    throttle.attempt("a")
    throttle.attempt("a")
    throttle.succeeded("a")
    throttle.attempt("a")
    throttle.attempt("a")
    assert throttle.retry_after("a") is None and len(throttle) == 1


def test_the_throttle_table_stays_bounded_under_a_flood_from_many_addresses() -> None:
    throttle = Throttle(max_failures=5, max_clients=100, clock=Clock())
    for i in range(20_000):
        throttle.attempt(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}")
    assert len(throttle) == 100


def test_a_locked_out_client_is_refused_without_checking_the_secret() -> None:
    auth = Auth(SECRET, throttle=Throttle(max_failures=2, clock=Clock()))
    request = _request({})
    assert auth.attempt(request, "guess-1") is False
    assert auth.attempt(request, "guess-2") is False
    with pytest.raises(AuthError) as locked:
        auth.attempt(request, SECRET)  # even the right secret: not looked at
    assert locked.value.status == 429
    assert auth.attempt(_request({}, client="192.0.2.2"), SECRET) is True  # someone else is not slowed


def test_a_wrong_bearer_token_counts_once_per_request() -> None:
    auth = Auth(SECRET, throttle=Throttle(max_failures=2, clock=Clock()))
    request = _request({"authorization": "Bearer nope"})
    for _ in range(3):  # the route, then the error page, ask who it is again
        assert auth.user(request) is None
    assert auth.throttle.retry_after("192.0.2.1") is None
    assert auth.user(_request({"authorization": "Bearer nope"})) is None  # a second request: locked now
    with pytest.raises(AuthError) as locked:
        auth.writer(_request({"authorization": f"Bearer {SECRET}"}))
    assert locked.value.status == 429
    assert auth.shown_user(_request({"authorization": f"Bearer {SECRET}"})) is None


@pytest.mark.parametrize(
    ("host", "key"),
    [("192.0.2.7", "192.0.2.7"), ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
     ("2001:db8:1:2:ffff::9", "2001:db8:1:2::/64"),
     ("::ffff:192.0.2.7", "192.0.2.7"), (None, "unknown"), ("testclient", "testclient")],
)
def test_client_keys(host: str | None, key: str) -> None:
    assert client_key(host) == key


def test_bearer_tokens() -> None:
    assert bearer_token(_request({"authorization": "Bearer abc "})) == "abc"
    assert bearer_token(_request({"authorization": "bearer"})) == ""
    assert bearer_token(_request({"authorization": "Basic abc"})) is None
    assert bearer_token(_request({})) is None
