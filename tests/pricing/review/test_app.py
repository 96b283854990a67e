"""The review app through its HTTP interface (FastAPI's TestClient): pages, the JSON API, who may
change what, and the push of approved prices to the simulated labels over the real broker."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from label_gateway.outbox import LabelUpdate, Outbox
from label_gateway.protocol import Topics
from pricing.core.data import DataError, label_rows, load_labels
from pricing.core.database import DatabaseError, open_engine
from pricing.core.store_calendar import StoreCalendar
from pricing.plan.plan_files import NotAwaitingApproval, PlanFileError
from pricing.plan.price_plan import PlanLine, PricePlan
from pricing.review.app import create_app
from pricing.review.auth import COOKIE_NAME
from pricing.review.plans import PlanNotFound
from pricing.review.settings import ReviewSettings
from pricing.review.views import FilterError
from pricing.store.engine_state import KILL_SWITCH, EngineFlags
from pricing.store.event_log import EventLog
from pricing.store.price_book import PriceBook
from simulator.gateways import SimulatedGateways

ORIGIN = "http://testserver"
PUSH_TIMEOUT_S = 30.0


@pytest.fixture
def plan(review_dirs: Any) -> PricePlan:
    return review_dirs.plan


def _client(settings: ReviewSettings, **kwargs: Any) -> TestClient:
    return TestClient(create_app(settings, **kwargs), base_url=ORIGIN)


@pytest.fixture
def client(make_settings: Callable[..., ReviewSettings]) -> Iterator[TestClient]:
    with _client(make_settings()) as c:
        yield c


def _bearer(settings: ReviewSettings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.secret}"}


def _waiting(plan: PricePlan) -> PlanLine:
    return plan.awaiting_approval[0]


def _keep(plan: PricePlan) -> PlanLine:
    return next(line for line in plan.lines if line.status == "keep")


def _plan_file(settings: ReviewSettings, plan: PricePlan) -> PricePlan:
    return PricePlan.read(settings.plans_dir / f"{plan.plan_id}.json")


def _one_line_error(response: Any) -> str:
    body = response.json()
    assert set(body) == {"error"}, body
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    return str(body["error"])


def _wait_push(c: TestClient, push_id: str, timeout: float = PUSH_TIMEOUT_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = c.get(f"/api/pushes/{push_id}").json()
        if status["final"]:
            return status
        time.sleep(0.1)
    raise AssertionError(f"push {push_id} did not finish in {timeout}s: {status}")


# -- pages ---------------------------------------------------------------------------------------


def test_every_page_answers_with_what_it_is_for(client: TestClient, plan: PricePlan) -> None:
    waiting = _waiting(plan)
    page = client.get("/")
    assert page.status_code == 200
    html = page.text
    assert plan.plan_id in html and waiting.sku in html and waiting.name in html
    assert "needs approval" in html and 'id="approve-btn" disabled' in html and "Log in to approve" in html
    assert "Read-only" in html  # nobody logged in
    assert _keep(plan).sku not in html  # the default view shows changes only
    everything = client.get("/", params={"status": "all"}).text
    assert _keep(plan).sku in everything
    sku = client.get(f"/sku/{waiting.sku}")
    assert sku.status_code == 200
    assert "Price history" in sku.text and "<svg" in sku.text and "label.png" in sku.text and "Label sync" in sku.text
    gateways = client.get("/gateways")
    assert gateways.status_code == 200 and "gw-01" in gateways.text and "unreachable" in gateways.text
    login = client.get("/login")
    assert login.status_code == 200 and 'name="token"' in login.text


def test_security_headers_and_no_caching_of_the_api(client: TestClient) -> None:
    for url in ("/", "/api/plans"):
        response = client.get(url)
        assert response.headers["content-security-policy"].startswith("default-src 'self'")
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["cache-control"] == "no-store"
    html = client.get("/").text
    assert "<script>" not in html and "onclick" not in html and "style=" not in html  # no inline script or style
    assert client.get("/static/app.js").status_code == 200


def test_no_plans_yet_says_so(make_settings: Callable[..., ReviewSettings], tmp_path: Path) -> None:
    with _client(make_settings(plans_dir=tmp_path / "none")) as c:
        page = c.get("/")
        assert page.status_code == 200 and "does not exist" in page.text
        assert c.get("/api/plans").json()["plans"] == []
    (tmp_path / "empty").mkdir()
    with _client(make_settings(plans_dir=tmp_path / "empty")) as c:
        assert "No price plan yet" in c.get("/").text
        assert c.get("/api/plans/latest").status_code == 404


def test_plan_api_filters_sorts_and_pages(client: TestClient, plan: PricePlan) -> None:
    listing = client.get("/api/plans").json()
    assert listing["plans"][0] == {"plan": plan.plan_id, "created_at": plan.created_at.isoformat(), "latest": True}
    body = client.get(f"/api/plans/{plan.plan_id}", params={"status": "approval", "sort": "change", "order": "desc"}).json()
    assert body["matching"] == len(plan.awaiting_approval)
    assert {line["status"] for line in body["lines"]} == {"approval"}
    pcts = [line["change_pct"] for line in body["lines"]]
    assert pcts == sorted(pcts, reverse=True)
    line = body["lines"][0]
    assert line["needs_approval"] and line["binding_rule"] and line["explanation"]
    assert "." in line["old_price"] and "." in line["new_price"]  # decimal text at the edge
    assert body["summary"]["awaiting_approval"] == len(plan.awaiting_approval)
    page = client.get("/api/plans/latest", params={"status": "all", "limit": 7, "offset": 7}).json()
    assert page["matching"] == len(plan.lines) and len(page["lines"]) == 7 and page["offset"] == 7
    assert client.get("/api/plans/latest", params={"status": "bogus"}).status_code == 400
    assert "unknown status filter" in _one_line_error(client.get("/api/plans/latest", params={"status": "bogus"}))
    assert client.get("/api/plans/latest", params={"sort": "bogus"}).status_code == 400


def test_a_plan_of_50000_lines_is_shown_500_rows_at_a_time(
    make_settings: Callable[..., ReviewSettings], plan: PricePlan, tmp_path: Path
) -> None:
    template = plan.lines
    lines = [
        template[i % len(template)].model_copy(update={"sku": f"B{i:06d}"}) for i in range(50_000)
    ]
    big = plan.model_copy(update={"plan_id": "plan-big", "created_at": plan.created_at + timedelta(hours=1),
                                  "lines": lines})
    big.write(tmp_path / "plans")
    with _client(make_settings()) as c:
        started = time.monotonic()
        page = c.get("/", params={"status": "all"})
        seconds = time.monotonic() - started
        assert page.status_code == 200
        assert "Showing 1–500 of 50000" in page.text and "Next 500" in page.text
        assert page.text.count('<tr data-sku="') == 500
        assert 'data-complete="false"' in page.text  # the browser leaves sorting to the server
        assert seconds < 15, seconds
        waiting = c.get("/api/plans/plan-big", params={"status": "approval", "limit": 50_000}).json()
        assert waiting["matching"] == sum(1 for line in lines if line.status == "approval")
        assert {line["status"] for line in waiting["lines"]} == {"approval"}


# -- who may change things ------------------------------------------------------------------------


def test_unauthenticated_and_wrong_token_posts_are_refused(client: TestClient, plan: PricePlan) -> None:
    body = {"skus": [_waiting(plan).sku], "approve": True}
    url = f"/api/plans/{plan.plan_id}/decide"
    nobody = client.post(url, json=body)
    assert nobody.status_code == 401 and "log in" in _one_line_error(nobody)
    assert nobody.headers["www-authenticate"] == "Bearer"
    wrong = client.post(url, json=body, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 401 and _one_line_error(wrong) == "wrong token"
    assert client.post(f"/api/plans/{plan.plan_id}/push").status_code == 401
    assert client.get("/api/plans/latest", params={"status": "approval"}).json()["matching"] == len(plan.awaiting_approval)


def test_without_a_secret_the_app_is_read_only(make_settings: Callable[..., ReviewSettings], plan: PricePlan) -> None:
    with _client(make_settings(secret=None)) as c:
        for headers in ({}, {"Authorization": "Bearer anything-at-all"}):
            refused = c.post(f"/api/plans/{plan.plan_id}/decide", json={"skus": [_waiting(plan).sku], "approve": True},
                             headers=headers)
            assert refused.status_code == 403
            assert _one_line_error(refused) == "read-only: set ESL_REVIEW_TOKEN to allow approvals"
        assert c.post("/login", data={"name": "alice", "token": "x"}).status_code == 403
        html = c.get("/").text
        assert "Read-only page" in html and "ESL_REVIEW_TOKEN" in html and 'id="approve-btn" disabled' in html


def test_bearer_reject_rewrites_the_plan_and_logs_it(
    client: TestClient, make_settings: Callable[..., ReviewSettings], plan: PricePlan
) -> None:
    settings = make_settings()
    sku = _waiting(plan).sku
    answer = client.post(f"/api/plans/{plan.plan_id}/decide", json={"skus": [sku], "approve": False, "by": "carol"},
                         headers=_bearer(settings))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["decided"] == [sku] and body["approved"] is False and body["by"] == "carol" and body["push"] is None
    assert body["lines"][0]["status"] == "rejected"
    saved = {line.sku: line for line in _plan_file(settings, plan).lines}
    assert saved[sku].status == "rejected" and saved[sku].decided_by == "carol"
    events = EventLog(open_engine(settings.database), settings.store).read(kinds=["plan_rejected"])
    assert [(e.sku, e.correlation, e.data["by"]) for e in events] == [(sku, plan.plan_id, "carol")]
    again = client.post(f"/api/plans/{plan.plan_id}/decide", json={"skus": [sku], "approve": True},
                        headers=_bearer(settings))
    assert again.status_code == 409 and "already rejected by carol" in _one_line_error(again)


def test_cookie_login_decides_as_the_name_and_refuses_cross_site_posts(
    client: TestClient, make_settings: Callable[..., ReviewSettings], plan: PricePlan
) -> None:
    settings = make_settings()
    wrong = client.post("/login", data={"name": "dana", "token": "wrong"}, headers={"Origin": ORIGIN},
                        follow_redirects=False)
    assert wrong.status_code == 401 and "Wrong token" in wrong.text and COOKIE_NAME not in wrong.cookies
    login = client.post("/login", data={"name": "dana", "token": settings.secret, "next": "/gateways"},
                        headers={"Origin": ORIGIN}, follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"] == "/gateways"
    set_cookie = login.headers["set-cookie"]
    assert "HttpOnly" in set_cookie and "SameSite=strict" in set_cookie.replace("Strict", "strict")
    assert settings.secret not in set_cookie  # an HMAC, never the secret
    assert "Logged in as <strong id=\"user-name\">dana</strong>" in client.get("/").text
    sku = _waiting(plan).sku
    url = f"/api/plans/{plan.plan_id}/decide"
    body = {"skus": [sku], "approve": False, "by": "mallory"}
    cross = client.post(url, json=body, headers={"Origin": "http://evil.example"})
    assert cross.status_code == 403 and "cross-site" in _one_line_error(cross)
    bare = client.post(url, json=body)  # neither Origin nor Referer
    assert bare.status_code == 403
    assert _plan_file(settings, plan).awaiting_approval[0].sku == sku  # nothing decided yet
    same = client.post(url, json=body, headers={"Origin": ORIGIN})
    assert same.status_code == 200, same.text
    assert same.json()["by"] == "dana"  # a login decides as its own name, whatever the body says
    assert client.post("/logout", headers={"Origin": ORIGIN}, follow_redirects=False).status_code == 303
    client.cookies.clear()
    assert "Read-only" in client.get("/").text


def test_wrong_bearer_tokens_and_logins_share_one_throttle(
    make_settings: Callable[..., ReviewSettings], plan: PricePlan
) -> None:
    settings = make_settings(auth_max_failures=3, auth_lockout_s=120)
    url = f"/api/plans/{plan.plan_id}/push"
    with _client(settings) as c:
        assert c.post(url, headers={"Authorization": "Bearer wrong-1"}).status_code == 401
        assert c.get("/api/session", headers={"Authorization": "Bearer wrong-2"}).json()["user"] is None  # counts too
        wrong = c.post("/login", data={"name": "dana", "token": "wrong-3"}, headers={"Origin": ORIGIN})
        assert wrong.status_code == 401
        locked = c.post(url, headers=_bearer(settings))  # the right token, from a locked-out client
        assert locked.status_code == 429 and locked.headers["retry-after"] == "120"
        assert _one_line_error(locked) == "too many wrong tokens from your address: try again in 120 s"
        assert c.get("/api/session", headers=_bearer(settings)).status_code == 429
        form = c.post("/login", data={"name": "dana", "token": settings.secret}, headers={"Origin": ORIGIN},
                      follow_redirects=False)
        assert form.status_code == 429 and form.headers["retry-after"] == "120"
        assert "too many wrong tokens" in form.text and 'id="login-form"' in form.text and "Traceback" not in form.text
        assert COOKIE_NAME not in form.cookies
        page = c.get("/", headers=_bearer(settings))  # reading stays open, as nobody
        assert page.status_code == 200 and "Read-only" in page.text
        c.app.state.review.auth.throttle.clock = lambda: time.monotonic() + 121  # type: ignore[attr-defined]
        after = c.post(url, headers=_bearer(settings))  # the lockout is over: the right token works again
        assert after.status_code == 200 and "nothing to push" in after.json()["message"]


def test_logout_needs_the_origin_and_revokes_the_session(
    client: TestClient, make_settings: Callable[..., ReviewSettings], plan: PricePlan
) -> None:
    login = client.post("/login", data={"name": "dana", "token": make_settings().secret}, headers={"Origin": ORIGIN},
                        follow_redirects=False)
    cookie = login.cookies[COOKIE_NAME]
    refused = client.post("/logout", follow_redirects=False)
    assert refused.status_code == 403 and "cross-site request refused" in refused.text
    assert client.get("/api/session").json()["user"] == "dana"  # still logged in
    out = client.post("/logout", headers={"Referer": ORIGIN + "/"}, follow_redirects=False)
    assert out.status_code == 303 and f'{COOKIE_NAME}=""' in out.headers["set-cookie"]
    client.cookies.set(COOKIE_NAME, cookie)  # the old cookie, kept
    assert client.get("/api/session").json()["user"] is None
    assert client.post(f"/api/plans/{plan.plan_id}/push", headers={"Origin": ORIGIN}).status_code == 401


def test_a_forged_cookie_is_nobody(client: TestClient, plan: PricePlan) -> None:
    client.cookies.set(COOKIE_NAME, "YWxpY2U.9999999999.0000")
    answer = client.post(f"/api/plans/{plan.plan_id}/decide", json={"skus": [_waiting(plan).sku], "approve": True},
                         headers={"Origin": ORIGIN})
    assert answer.status_code == 401


# -- user errors ------------------------------------------------------------------------------------


def test_user_errors_are_one_line_with_their_status(
    client: TestClient, make_settings: Callable[..., ReviewSettings], plan: PricePlan
) -> None:
    settings = make_settings()
    assert client.get("/api/sku/NO-SUCH-SKU").status_code == 404
    assert "unknown SKU" in _one_line_error(client.get("/api/sku/NO-SUCH-SKU"))
    page = client.get("/sku/NO-SUCH-SKU")
    assert page.status_code == 404 and "unknown SKU" in page.text and "Traceback" not in page.text
    assert client.get("/api/plans/plan-nope").status_code == 404
    assert client.get("/?plan=plan-nope").status_code == 404
    assert client.get("/api/plans/..%2F..%2Fetc%2Fpasswd").status_code == 404
    keep = _keep(plan).sku
    not_waiting = client.post(f"/api/plans/{plan.plan_id}/decide", json={"skus": [keep], "approve": True},
                              headers=_bearer(settings))
    assert not_waiting.status_code == 409 and f"{keep} (status keep)" in _one_line_error(not_waiting)
    bad_body = client.post(f"/api/plans/{plan.plan_id}/decide", json={"skus": [], "approve": True},
                           headers=_bearer(settings))
    assert bad_body.status_code == 422 and _one_line_error(bad_body).startswith("body.skus")
    unknown_plan = client.post("/api/plans/plan-nope/decide", json={"skus": [keep], "approve": True},
                               headers=_bearer(settings))
    assert unknown_plan.status_code == 404
    assert client.get("/api/pushes/nope").status_code == 404
    assert client.get("/no/such/page").status_code == 404


# -- SKU detail, labels, chart ----------------------------------------------------------------------


def test_label_png_before_and_after(client: TestClient, plan: PricePlan, review_dirs: Any) -> None:
    waiting = _waiting(plan)
    labels = load_labels(review_dirs.data_dir / "labels.csv").frame
    tag_type = str(labels.loc[labels["sku"] == waiting.sku, "tag_type"].iloc[0])
    for which in ("before", "after"):
        png = client.get(f"/api/sku/{waiting.sku}/label.png", params={"tag_type": tag_type, "which": which})
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    before = client.get(f"/api/sku/{waiting.sku}/label.png", params={"tag_type": tag_type, "which": "before"}).content
    after = client.get(f"/api/sku/{waiting.sku}/label.png", params={"tag_type": tag_type, "which": "after"}).content
    assert before != after
    unknown = client.get(f"/api/sku/{waiting.sku}/label.png", params={"tag_type": "9.9"})
    assert unknown.status_code == 409 and "no label template for tag type '9.9'" in _one_line_error(unknown)


def test_a_planned_reduction_shows_its_30_day_reference_and_the_chart_draws_it(
    client: TestClient, make_settings: Callable[..., ReviewSettings], plan: PricePlan
) -> None:
    settings = make_settings()
    line = next((x for x in plan.lines if x.status in ("change", "approval") and x.new_cents < x.old_cents), None)
    if line is None:
        pytest.skip("the generated plan has no reduction")
    book = PriceBook(open_engine(settings.database), settings.store)
    now = datetime.now(UTC)
    low = line.new_cents + 10  # the lowest price of the last 30 days, above the planned price
    book.record({line.sku: line.old_cents + 40}, at=now - timedelta(days=60), currency="EUR", correlation="t1")
    book.record({line.sku: low}, at=now - timedelta(days=20), currency="EUR", correlation="t2")
    book.record({line.sku: line.old_cents}, at=now - timedelta(days=10), currency="EUR", correlation="t3")
    detail = client.get(f"/api/sku/{line.sku}").json()
    assert detail["current_price_source"] == "price book"
    assert detail["lowest_30_days"] == f"{low / 100:.2f}"
    assert detail["label_after"] == {"price": f"{line.new_cents / 100:.2f}", "reference": f"{low / 100:.2f}",
                                     "promo": True}
    assert len(detail["history"]) == 3
    svg = client.get(f"/api/sku/{line.sku}/history.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert 'class="reference-line"' in svg.text and 'stroke-dasharray="6 4"' in svg.text
    assert 'class="price-line"' in svg.text and 'class="planned-line"' in svg.text
    assert "Omnibus reference" in svg.text


# -- gateways -----------------------------------------------------------------------------------------


def test_gateways_json_counts_labels_per_state_and_gateway(
    client: TestClient, make_settings: Callable[..., ReviewSettings], review_dirs: Any
) -> None:
    settings = make_settings()
    rows = label_rows(load_labels(review_dirs.data_dir / "labels.csv").frame)
    outbox = Outbox(open_engine(settings.database), settings.store)
    outbox.enqueue([LabelUpdate(label, gateway, sku, 199, "EUR", "test") for label, gateway, sku in rows[:6]])
    stored = outbox.rows()
    stored[0].state, stored[0].confirmed_version = "confirmed", stored[0].version
    stored[1].state, stored[1].last_error = "failed", "no ack after 5 attempts"
    stored[2].battery_mv = 2400
    outbox.save(stored[:3])
    body = client.get("/api/gateways").json()
    assert body["totals"]["confirmed"] == 1 and body["totals"]["failed"] == 1 and body["totals"]["pending"] == 4
    assert body["low_battery"] == 1 and body["failed_count"] == 1
    assert body["failed"][0]["label"] == stored[1].label_id and body["failed"][0]["reason"] == "no ack after 5 attempts"
    per = {g["gateway"]: g for g in body["gateways"]}
    assert set(per) == {gateway for _, gateway, _ in rows}
    assert sum(g["by_state"]["pending"] for g in per.values()) == 4
    assert sum(g["labels"] for g in per.values()) == len(rows)
    assert body["broker"]["reachable"] is False and all(g["status"] == "broker unreachable" for g in per.values())
    html = client.get("/gateways").text
    assert "no ack after 5 attempts" in html and stored[1].label_id in html


# -- pushes over the real broker to the simulated labels ----------------------------------------------


def _simulated(mqtt_broker: Any, settings: ReviewSettings, review_dirs: Any) -> SimulatedGateways:
    rows = label_rows(load_labels(review_dirs.data_dir / "labels.csv").frame)
    return SimulatedGateways(mqtt_broker.address, Topics(settings.store, prefix=settings.prefix), rows)


def _labels_of(review_dirs: Any, sku: str) -> list[str]:
    frame = load_labels(review_dirs.data_dir / "labels.csv").frame
    return [str(x) for x in frame.loc[frame["sku"] == sku, "label_id"]]


@pytest.mark.integration
def test_an_approval_is_pushed_and_confirmed_by_the_labels(
    mqtt_broker: Any, topics: Topics, make_settings: Callable[..., ReviewSettings], plan: PricePlan, review_dirs: Any,
    database_url: str,
) -> None:
    settings = make_settings(broker=mqtt_broker.address, prefix=topics.prefix, database=database_url)
    waiting = plan.awaiting_approval[:2]
    skus = [line.sku for line in waiting]
    with _simulated(mqtt_broker, settings, review_dirs) as gateways, _client(settings) as c:
        answer = c.post(f"/api/plans/{plan.plan_id}/decide", json={"skus": skus, "approve": True, "by": "erin"},
                        headers=_bearer(settings))
        assert answer.status_code == 200, answer.text
        push = answer.json()["push"]
        assert push["state"] in ("queued", "running")
        done = _wait_push(c, push["id"])
        assert done["state"] == "done", done
        assert all(done["skus"][sku]["state"] == "confirmed" for sku in skus), done["skus"]
        assert sorted(done["recorded"]) == sorted(skus)
        shown = gateways.displayed()
        for line in waiting:
            for label in _labels_of(review_dirs, line.sku):
                assert shown[label].price_cents == line.new_cents, label
        page = c.get("/", params={"status": "approved"}).text
        assert "confirmed" in page and "erin" in page
        assert c.get(f"/api/sku/{skus[0]}").json()["sync"]["state"] == "confirmed"
    engine = open_engine(settings.database)
    assert {sku: PriceBook(engine, settings.store).current()[sku] for sku in skus} == {
        line.sku: line.new_cents for line in waiting
    }
    kinds = [e.kind for e in EventLog(engine, settings.store).read(correlation=plan.plan_id)]
    assert kinds.count("plan_approved") == 2 and "price_changed" in kinds and "pushed" in kinds and "acked" in kinds
    saved = {line.sku: line for line in _plan_file(settings, plan).lines}
    assert all(saved[sku].status == "change" and saved[sku].decided_by == "erin" for sku in skus)


@pytest.mark.integration
def test_the_kill_switch_blocks_the_push_but_keeps_the_decision_then_push_sends_it(
    mqtt_broker: Any, topics: Topics, make_settings: Callable[..., ReviewSettings], plan: PricePlan, review_dirs: Any,
    database_url: str,
) -> None:
    settings = make_settings(broker=mqtt_broker.address, prefix=topics.prefix, database=database_url)
    engine = open_engine(settings.database)
    flags = EngineFlags(engine, settings.store)
    flags.set(KILL_SWITCH, True, by="test")
    line = _waiting(plan)
    with _simulated(mqtt_broker, settings, review_dirs) as gateways, _client(settings) as c:
        assert "Pushes are blocked" in c.get("/").text
        answer = c.post(f"/api/plans/{plan.plan_id}/decide", json={"skus": [line.sku], "approve": True},
                        headers=_bearer(settings))
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["pushes_blocked"] == "kill switch" and body["push"]["state"] == "blocked"
        assert "not pushed: kill switch" in body["push"]["message"]
        time.sleep(1.0)
        assert gateways.displayed() == {}  # nothing reached a label
        assert Outbox(engine, settings.store).rows() == [] and line.sku not in PriceBook(engine, settings.store).current()
        assert _plan_file(settings, plan).lines[plan.lines.index(line)].status == "change"  # the approval is saved
        refused = c.post(f"/api/plans/{plan.plan_id}/push", headers=_bearer(settings))
        assert refused.status_code == 409 and "pushes are blocked: kill switch" in _one_line_error(refused)
        flags.set(KILL_SWITCH, False, by="test")
        pushed = c.post(f"/api/plans/{plan.plan_id}/push", headers=_bearer(settings))
        assert pushed.status_code == 202, pushed.text
        done = _wait_push(c, pushed.json()["push"]["id"])
        assert done["state"] == "done" and done["skus"][line.sku]["state"] == "confirmed", done
        for label in _labels_of(review_dirs, line.sku):
            assert gateways.displayed()[label].price_cents == line.new_cents
        again = c.post(f"/api/plans/{plan.plan_id}/push", headers=_bearer(settings))
        assert again.status_code == 200 and again.json()["push"] is None and "nothing to push" in again.json()["message"]


@pytest.mark.integration
def test_a_freeze_window_blocks_the_push(
    mqtt_broker: Any, topics: Topics, make_settings: Callable[..., ReviewSettings], plan: PricePlan
) -> None:
    calendar = StoreCalendar.model_validate({"timezone": "UTC", "freeze": {"dates": ["2026-12-24"]}})
    settings = make_settings(broker=mqtt_broker.address, prefix=topics.prefix, calendar=calendar)
    christmas_eve = datetime(2026, 12, 24, 10, tzinfo=UTC)
    with _client(settings, clock=lambda: christmas_eve) as c:
        body = c.post(f"/api/plans/{plan.plan_id}/decide", json={"skus": [_waiting(plan).sku], "approve": True},
                      headers=_bearer(settings)).json()
        assert body["pushes_blocked"] == "frozen: frozen date 2026-12-24" and body["push"]["state"] == "blocked"
        assert "frozen date 2026-12-24" in c.get("/").text
    assert Outbox(open_engine(settings.database), settings.store).rows() == []


def test_session_endpoint(client: TestClient, make_settings: Callable[..., ReviewSettings]) -> None:
    settings = make_settings()
    assert client.get("/api/session").json() == {"user": None, "via": None, "read_only": False, "store": settings.store}
    assert client.get("/api/session", headers=_bearer(settings)).json()["via"] == "bearer"
    assert json.loads(client.get("/api/pushes").text)["active"] is None


def test_a_plan_of_another_store_cannot_be_decided_here(
    make_settings: Callable[..., ReviewSettings], plan: PricePlan
) -> None:
    settings = make_settings(store="another-store")
    with _client(settings) as c:
        assert "This plan is for store" in c.get("/").text
        answer = c.post(f"/api/plans/{plan.plan_id}/decide", json={"skus": [_waiting(plan).sku], "approve": True},
                        headers=_bearer(settings))
        assert answer.status_code == 409 and "this review page serves store another-store" in _one_line_error(answer)
        assert c.post(f"/api/plans/{plan.plan_id}/push", headers=_bearer(settings)).status_code == 409
    assert _plan_file(settings, plan).awaiting_approval == plan.awaiting_approval


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "\\\\evil", "javascript:alert(1)"])
def test_login_never_redirects_off_the_site(
    client: TestClient, make_settings: Callable[..., ReviewSettings], target: str
) -> None:
    login = client.post("/login", data={"name": "dana", "token": make_settings().secret, "next": target},
                        headers={"Origin": ORIGIN}, follow_redirects=False)
    assert login.status_code == 303 and login.headers["location"] == "/"


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (PlanNotFound("no plan x"), 404, "no plan x"),
        (NotAwaitingApproval("SKU-1 does not await approval"), 409, "SKU-1 does not await approval"),
        (PlanFileError("x.json: plan file not found"), 409, "x.json: plan file not found"),
        (FilterError("unknown status filter x"), 400, "unknown status filter x"),
        (DataError("products.csv: missing"), 409, "store data: products.csv: missing"),
        (DatabaseError("database x: unreachable"), 503, "database x: unreachable"),
    ],
)
def test_user_errors_answer_their_status_and_one_line(
    make_settings: Callable[..., ReviewSettings], error: Exception, status: int, message: str
) -> None:
    app = create_app(make_settings())

    @app.get("/api/raise")
    @app.get("/raise")
    def raising() -> None:
        raise error

    with TestClient(app, base_url=ORIGIN) as c:
        api = c.get("/api/raise")
        assert api.status_code == status and _one_line_error(api) == message
        assert api.headers["Cache-Control"] == "no-store" and "WWW-Authenticate" not in api.headers
        page = c.get("/raise")
        assert page.status_code == status and message in page.text and "Traceback" not in page.text
