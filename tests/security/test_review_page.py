"""Attacks on the review page, through its HTTP interface (FastAPI's TestClient, one client address
per TestClient): guessing the token by bearer or by the login form, reusing a cookie after
logout, forging X-Forwarded-* to get around the Secure flag or the throttle, and cross-site
logins. No broker, no plan: the attacks stop (or pass) at the door."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from label_gateway.broker import BrokerAddress
from pricing.review.app import create_app
from pricing.review.auth import COOKIE_NAME
from pricing.review.settings import ReviewSettings

TOKEN = "attack-me-if-you-can-0123456789"
ORIGIN = "http://testserver"
ATTACKER = ("203.0.113.66", 40000)
MANAGER = ("198.51.100.7", 40001)
PROXY = ("10.0.0.5", 40002)
MAX_FAILURES = 5
GUESSES = 40
PUSH = "/api/plans/latest/push"  # past the door, no plan: 404


def _settings(tmp_path: Path, **changes: Any) -> ReviewSettings:
    values: dict[str, Any] = {
        "store": "sec-store", "plans_dir": tmp_path / "plans", "data_dir": tmp_path / "data",
        "database": str(tmp_path / "engine.db"), "broker": BrokerAddress("127.0.0.1", 9), "prefix": "sec-unused",
        "secret": TOKEN, "probe_ttl_s": 0.0, "auth_max_failures": MAX_FAILURES,
    }
    return ReviewSettings(**(values | changes))


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every time.sleep call while the test runs (none may happen: a sleeping guess holds a worker)."""
    calls: list[float] = []
    monkeypatch.setattr(time, "sleep", lambda seconds: calls.append(seconds))
    return calls


@pytest.fixture
def app_for(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    made: list[TestClient] = []

    def make(**changes: Any) -> Any:
        app = create_app(_settings(tmp_path, **changes))
        made.append(TestClient(app, base_url=ORIGIN).__enter__())  # runs the lifespan once
        return app

    yield make
    for client in made:
        client.__exit__(None, None, None)


def _from(app: Any, address: tuple[str, int], **kwargs: Any) -> TestClient:
    return TestClient(app, base_url=kwargs.pop("base_url", ORIGIN), client=address, **kwargs)


def _one_line(response: httpx.Response) -> str:
    is_json = response.headers["content-type"].startswith("application/json")
    text = response.json()["error"] if is_json else response.text
    assert "Traceback" not in text
    return str(text)


def _login(client: TestClient, token: str, **headers: str) -> httpx.Response:
    return client.post("/login", data={"name": "dana", "token": token}, headers={"Origin": ORIGIN} | headers,
                       follow_redirects=False)


def _flood(attempt: Callable[[int], httpx.Response], good: Callable[[], httpx.Response]) -> tuple[
        list[httpx.Response], list[httpx.Response]]:
    """GUESSES wrong attempts and, interleaved with them, ten right ones, on 16 threads."""
    with ThreadPoolExecutor(max_workers=16) as pool:
        guesses = [pool.submit(attempt, i) for i in range(GUESSES)]
        goods = [pool.submit(good) for _ in range(10)]
        return [f.result() for f in guesses], [f.result() for f in goods]


def _throttled(answers: list[httpx.Response], refused: int) -> None:
    """Exactly MAX_FAILURES guesses were checked (answered ``refused``); the rest got 429 at once."""
    statuses = [a.status_code for a in answers]
    assert statuses.count(refused) == MAX_FAILURES and statuses.count(429) == GUESSES - MAX_FAILURES, statuses
    for answer in answers:
        if answer.status_code == 429:
            assert 0 < int(answer.headers["retry-after"]) <= 300
            assert "too many wrong tokens from your address" in _one_line(answer)


@pytest.mark.security
def test_bearer_guessing_is_throttled_per_client_and_blocks_no_thread(
    app_for: Callable[..., Any], sleeps: list[float]
) -> None:
    app = app_for()
    attacker, manager = _from(app, ATTACKER), _from(app, MANAGER)
    guesses, goods = _flood(
        lambda i: attacker.post(PUSH, headers={"Authorization": f"Bearer guess-{i:04d}"}),
        lambda: manager.get("/api/session", headers={"Authorization": f"Bearer {TOKEN}"}),
    )
    _throttled(guesses, 401)
    assert all(g.status_code == 200 and g.json()["via"] == "bearer" for g in goods)  # never slowed
    assert sleeps == []  # nothing waited: no worker thread was held by a guess
    right = attacker.post(PUSH, headers={"Authorization": f"Bearer {TOKEN}"})
    assert right.status_code == 429  # once locked out, not even the right token is checked: no oracle
    assert attacker.get("/api/session", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 429
    assert manager.post(PUSH, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404  # past the door


@pytest.mark.security
def test_form_login_guessing_is_throttled_per_client_and_blocks_no_thread(
    app_for: Callable[..., Any], sleeps: list[float]
) -> None:
    app = app_for()
    attacker, manager = _from(app, ATTACKER), _from(app, MANAGER)
    guesses, goods = _flood(lambda i: _login(attacker, f"guess-{i:04d}"), lambda: _login(manager, TOKEN))
    _throttled(guesses, 401)
    assert all(g.status_code == 303 and COOKIE_NAME in g.cookies for g in goods)
    assert sleeps == []
    assert _login(attacker, TOKEN).status_code == 429 and COOKIE_NAME not in _login(attacker, TOKEN).cookies
    assert attacker.post(PUSH, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 429  # one count for both


@pytest.mark.security
def test_guessing_stays_bounded_over_time_and_the_table_stays_small(app_for: Callable[..., Any]) -> None:
    app = app_for(auth_max_clients=50)
    throttle = app.state.review.auth.throttle
    now = [1000.0]
    throttle.clock = lambda: now[0]
    attacker = _from(app, ATTACKER)
    checked = 0
    for _ in range(3):  # three lockout periods: MAX_FAILURES guesses each, no more
        answers = [attacker.post(PUSH, headers={"Authorization": f"Bearer g{i}"}).status_code for i in range(20)]
        checked += answers.count(401)
        now[0] += 301
    assert checked == 3 * MAX_FAILURES
    for i in range(300):  # a flood from many addresses
        _from(app, (f"198.18.{i // 256}.{i % 256}", 1)).post(PUSH, headers={"Authorization": "Bearer x"})
    assert len(throttle) == 50


@pytest.mark.security
def test_logout_revokes_the_session_so_a_stolen_cookie_stops_working(app_for: Callable[..., Any]) -> None:
    app = app_for()
    victim, thief = _from(app, MANAGER), _from(app, ATTACKER)
    assert _login(victim, TOKEN).status_code == 303
    stolen = victim.cookies[COOKIE_NAME]
    thief.cookies.set(COOKIE_NAME, stolen)
    assert thief.get("/api/session").json()["user"] == "dana"
    assert thief.post(PUSH, headers={"Origin": ORIGIN}).status_code == 404  # the copy works ... until
    assert victim.post("/logout", headers={"Origin": ORIGIN}, follow_redirects=False).status_code == 303
    assert thief.get("/api/session").json()["user"] is None
    reused = thief.post(PUSH, headers={"Origin": ORIGIN})
    assert reused.status_code == 401 and "log in" in _one_line(reused)
    assert "Read-only" in thief.get("/").text


@pytest.mark.security
def test_the_cookie_is_secure_behind_a_trusted_proxy_and_forwarded_headers_are_believed_only_from_it(
    app_for: Callable[..., Any]
) -> None:
    app = app_for(trusted_proxies=(PROXY[0],))
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.20", "Origin": "https://testserver"}
    via_proxy = _login(_from(app, PROXY), TOKEN, **forwarded)
    assert via_proxy.status_code == 303 and "secure" in via_proxy.headers["set-cookie"].lower()
    spoofed = _login(_from(app, ATTACKER), TOKEN, **forwarded)  # the same headers from a client
    assert spoofed.status_code == 303 and "secure" not in spoofed.headers["set-cookie"].lower()
    direct = _login(_from(app, MANAGER, base_url="https://testserver"), TOKEN, Origin="https://testserver")
    assert "secure" in direct.headers["set-cookie"].lower()
    plain = _login(_from(app, MANAGER), TOKEN)
    assert "secure" not in plain.headers["set-cookie"].lower()


@pytest.mark.security
def test_forged_forwarded_addresses_do_not_escape_the_throttle(app_for: Callable[..., Any]) -> None:
    app = app_for(trusted_proxies=(PROXY[0],))
    attacker = _from(app, ATTACKER)
    answers = [attacker.post(PUSH, headers={"Authorization": f"Bearer g{i}", "X-Forwarded-For": f"192.0.2.{i}"})
               for i in range(MAX_FAILURES + 3)]
    assert [a.status_code for a in answers].count(401) == MAX_FAILURES  # its own address counts, not the header
    proxy = _from(app, PROXY)
    for i in range(MAX_FAILURES):  # behind the proxy, the forwarded client is the one locked out
        proxy.post(PUSH, headers={"Authorization": f"Bearer g{i}", "X-Forwarded-For": "192.0.2.50"})
    assert proxy.post(PUSH, headers={"Authorization": f"Bearer {TOKEN}",
                                     "X-Forwarded-For": "192.0.2.50"}).status_code == 429
    assert proxy.post(PUSH, headers={"Authorization": f"Bearer {TOKEN}",
                                     "X-Forwarded-For": "192.0.2.51"}).status_code == 404  # others pass the proxy


@pytest.mark.security
def test_login_and_cookie_posts_need_the_pages_origin(app_for: Callable[..., Any]) -> None:
    app = app_for()
    browser = _from(app, MANAGER)
    for headers in ({}, {"Origin": "http://evil.example"}, {"Origin": "null"}, {"Referer": "http://evil.example/x"}):
        refused = browser.post("/login", data={"name": "dana", "token": TOKEN}, headers=headers, follow_redirects=False)
        assert refused.status_code == 403 and "cross-site request refused" in _one_line(refused), headers
        assert COOKIE_NAME not in refused.cookies
    assert _login(browser, TOKEN, Origin="http://evil.example").status_code == 403
    assert browser.post("/login", data={"name": "dana", "token": TOKEN}, headers={"Referer": ORIGIN + "/login"},
                        follow_redirects=False).status_code == 303  # Referer when the browser sends no Origin
    assert _login(browser, TOKEN).status_code == 303
    bare = browser.post(PUSH)  # with the cookie, without Origin
    assert bare.status_code == 403 and _one_line(bare) == "cross-site request refused: no Origin or Referer header"
    foreign = browser.post(PUSH, headers={"Origin": "http://evil.example"})
    assert foreign.status_code == 403 and "evil.example is not testserver" in _one_line(foreign)
    assert browser.post(PUSH, headers={"Origin": ORIGIN}).status_code == 404
    assert browser.post("/logout", follow_redirects=False).status_code == 403
    script = _from(app, ATTACKER)  # a bearer request carries no cookie and needs no Origin
    assert script.post(PUSH, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


@pytest.mark.security
def test_garbage_credentials_and_forwarded_headers_are_one_line_answers(app_for: Callable[..., Any]) -> None:
    app = app_for(trusted_proxies=(PROXY[0],))
    proxy = _from(app, PROXY)
    for headers in (
        {"Authorization": "Bearer " + "x" * 10_000}, {"Authorization": "Bearer"},
        {"Authorization": "Basic Zm9vOmJhcg=="},
        {"Cookie": f"{COOKIE_NAME}=a.b.c.d"}, {"Cookie": f"{COOKIE_NAME}=%%%.1.2.3"},
        {"X-Forwarded-For": "not-an-ip, [::1", "X-Forwarded-Proto": "gopher", "Authorization": "Bearer y"},
    ):
        answer = proxy.post(PUSH, headers=headers)
        assert answer.status_code in (401, 403, 429), (headers, answer.status_code)
        assert "\n" not in _one_line(answer)
