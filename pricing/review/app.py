"""The review page as a FastAPI app: server-rendered pages for pricing managers and a JSON API
for the same things.

Pages: ``/`` (a plan: summary and sortable, filterable table; approve / reject), ``/sku/{sku}``
(plan line, price history with the 30-day reference, labels before and after, label sync),
``/gateways`` (label sync per gateway, broker and gateway status, failures), ``/login``. The JSON
API under ``/api`` serves all of it and takes the decisions and pushes.

Reading is open (the server binds to 127.0.0.1 by default); changing anything needs the
configured secret (pricing.review.auth), and without one the app is read-only; wrong secrets are
throttled per client (429 at once, no sleeping), logging out revokes the session, and behind the
configured trusted proxies the forwarded client address and scheme are believed. User errors
answer with a status and one line (``{"error": "..."}`` under /api), never a traceback.
Every response carries a strict Content-Security-Policy (no inline script, nothing from another
origin) and API answers are never cached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, func, select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from label_gateway.outbox import LabelRow, Outbox
from label_gateway.outbox import label_state as label_table
from label_gateway.probe import BrokerProbe, probe_gateways
from label_gateway.protocol import Topics
from pricing.core.data import DataError
from pricing.core.database import DatabaseError, open_engine
from pricing.core.errors import first_error
from pricing.core.money import format_money, to_decimal
from pricing.core.timestamps import from_us
from pricing.plan.plan_files import NotAwaitingApproval, PlanFileError, decide
from pricing.plan.price_plan import PlanLine, PricePlan
from pricing.review import labels as label_images
from pricing.review.auth import (
    COOKIE_NAME,
    READ_ONLY_MESSAGE,
    Auth,
    AuthError,
    Throttle,
    User,
    check_same_origin,
    clean_name,
    client_of,
)
from pricing.review.charts import price_history_svg
from pricing.review.plans import PlanCatalog, PlanNotFound
from pricing.review.pushes import PushWorker
from pricing.review.settings import ReviewSettings
from pricing.review.store_files import Product, StoreFiles
from pricing.review.sync import label_state as sync_state
from pricing.review.sync import rows_by_label, sku_sync
from pricing.review.views import (
    FILTER_TEXT,
    PUSHED,
    SORT_KEYS,
    STATUS_RANK,
    STATUS_TEXT,
    FilterError,
    Row,
    Selection,
    decided_together,
    lines_for,
    plan_header,
    select_rows,
    signed_display,
    summarize,
    view_status,
)
from pricing.store.event_log import EventLog
from pricing.store.price_book import PriceBook

log = logging.getLogger("esl.review")

HERE = Path(__file__).parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
MAX_API_ROWS = 50_000
FAILED_SHOWN = 200


class ReviewError(Exception):
    """A request the app cannot serve, with its HTTP status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


# The user errors whose answer is a fixed status: exception class -> (HTTP status, text before the
# exception's message). An exception answers with the entry of its nearest class (PlanNotFound,
# a PlanFileError, with 404).
USER_ERRORS: dict[type[Exception], tuple[int, str]] = {
    PlanNotFound: (404, ""),
    NotAwaitingApproval: (409, ""),
    PlanFileError: (409, ""),
    FilterError: (400, ""),
    DataError: (409, "store data: "),
    DatabaseError: (503, ""),
}


class DecideRequest(BaseModel):
    """POST /api/plans/{plan}/decide."""

    model_config = ConfigDict(extra="forbid")

    skus: list[str] = Field(min_length=1, max_length=MAX_API_ROWS, description="SKUs whose held changes to decide")
    approve: bool = Field(description="true: approve (and push); false: reject")
    by: str | None = Field(default=None, description="Who decides (bearer token only; a login decides as its name)")


# -- the app's state -------------------------------------------------------------------------------


class Review:
    """Everything the routes share: settings, plans, store files, database, pushes, auth."""

    def __init__(self, settings: ReviewSettings, clock: Callable[[], datetime]) -> None:
        self.settings = settings
        self.clock = clock
        self.catalog = PlanCatalog(settings.plans_dir)
        self.files = StoreFiles(settings.data_dir)
        self.auth = Auth(settings.secret, max_age_s=settings.login_max_age_s, throttle=Throttle(
            settings.auth_max_failures, settings.auth_window_s, settings.auth_lockout_s, settings.auth_max_clients,
        ))
        self.topics = Topics(settings.store, prefix=settings.prefix)
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self._probe: tuple[float, datetime, BrokerProbe] | None = None
        self._probe_lock = threading.Lock()
        self.worker = PushWorker(settings, self.engine, self.files, clock=clock)

    def engine(self) -> Engine:
        with self._engine_lock:
            if self._engine is None:
                self._engine = open_engine(self.settings.database)
            return self._engine

    def close(self) -> None:
        self.worker.stop()
        with self._engine_lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None

    def outbox(self) -> Outbox:
        return Outbox(self.engine(), self.settings.store)

    def book(self) -> PriceBook:
        return PriceBook(self.engine(), self.settings.store)

    def probe(self) -> tuple[BrokerProbe, datetime]:
        """The broker's gateway statuses and when they were read: looked at most once per
        ``probe_ttl_s`` (a look takes about a second)."""
        with self._probe_lock:
            if self._probe is None or time.monotonic() - self._probe[0] > self.settings.probe_ttl_s:
                found = probe_gateways(self.settings.broker, self.topics, wait_s=0.5, timeout=2.0)
                self._probe = (time.monotonic(), self.clock(), found)
            return self._probe[2], self._probe[1]

    def blocked(self) -> str | None:
        return self.worker.blocked()

    def rows_of(self, label_ids: list[str]) -> dict[str, LabelRow]:
        return rows_by_label(self.outbox().rows(labels=label_ids)) if label_ids else {}

    def add_sync(self, rows: list[Row]) -> None:
        """Each pushed row's label sync state against its new price."""
        by_sku = self.files.labels_by_sku()
        wanted = [r for r in rows if r.status in PUSHED]
        ids = [label.label_id for r in wanted for label in by_sku.get(r.line.sku, [])]
        outbox_rows = self.rows_of(ids)
        for r in wanted:
            labels = [label.label_id for label in by_sku.get(r.line.sku, [])]
            r.sync = sku_sync(labels, outbox_rows, r.line.new_cents)

    def load_plan(self, plan_id: str | None) -> tuple[PricePlan, Path]:
        return self.catalog.load(plan_id)

    def own_plan(self, plan_id: str) -> tuple[PricePlan, Path]:
        """A plan this page may decide on and push: one of its own store (a plan of another store
        would put that store's prices on this store's labels)."""
        plan, path = self.load_plan(plan_id)
        if plan.store != self.settings.store:
            raise ReviewError(
                409, f"plan {plan.plan_id} is for store {plan.store}; this review page serves store {self.settings.store}"
            )
        return plan, path


# -- views shared by pages and API ------------------------------------------------------------------


def _money(cents: float | None, currency: str = "") -> str:
    return "" if cents is None else format_money(round(cents), currency)


def _line_of(plan: PricePlan | None, sku: str) -> PlanLine | None:
    if plan is None:
        return None
    return next((line for line in plan.lines if line.sku == sku), None)


def _product(review: Review, sku: str, line: PlanLine | None) -> Product:
    product = review.files.products().get(sku)
    if product is not None:
        return product
    if line is None:
        raise ReviewError(404, f"unknown SKU '{sku}': not in products.csv nor in the plan")
    return Product(sku, line.name, line.category, "", None, None, line.old_cents, line.cost_cents)


class SkuView:
    """One SKU: its product, plan line, prices before and after, labels and their sync."""

    def __init__(self, review: Review, sku: str, plan_id: str | None) -> None:
        self.review = review
        self.sku = sku
        try:
            self.plan: PricePlan | None = review.load_plan(plan_id)[0]
        except PlanNotFound:
            if plan_id not in (None, "", "latest"):
                raise
            self.plan = None
        self.line = _line_of(self.plan, sku)
        self.product = _product(review, sku, self.line)
        self.now = review.clock()
        book = review.book()
        self.history = book.history(sku)
        open_periods = [p for p in self.history if p.effective_to is None]
        self.in_book = bool(open_periods)
        self.current_cents = open_periods[-1].price_cents if open_periods else self.product.price_cents
        self.currency = self.plan.currency if self.plan else (self.history[-1].currency if self.history else "EUR")
        self.labels = review.files.labels_by_sku().get(sku, [])
        self.rows = review.rows_of([label.label_id for label in self.labels])
        shelf = label_images.before_prices(self.current_cents, list(self.rows.values()))
        self.status = view_status(self.line) if self.line else None
        line = self.line
        changing = line is not None and line.status in ("change", "approval") and line.new_cents != line.old_cents
        # applied: the plan's change is the price now (the labels show it): before is the plan's old price
        self.applied = changing and line is not None and line.status == "change" and self.current_cents == line.new_cents
        self.before = label_images.LabelPrices(line.old_cents) if self.applied and line is not None else shelf
        self.after: label_images.LabelPrices | None = None
        if self.applied:
            self.after = shelf
        elif changing and line is not None and line.new_cents != self.current_cents:
            self.after = label_images.after_prices(book, sku, self.current_cents, line.new_cents, self.now)
        self.target = self.line.new_cents if self.line is not None and self.status in PUSHED else None
        self.lowest_30 = book.lowest_prices([sku], self.now).get(sku)

    @property
    def tag_types(self) -> list[str]:
        return sorted({label.tag_type for label in self.labels})

    def prices(self, which: str) -> label_images.LabelPrices:
        if which == "before":
            return self.before
        if which == "after":
            return self.after or self.before
        raise ReviewError(400, f"which must be before or after, not '{which}'")

    def label_rows(self) -> list[dict[str, Any]]:
        out = []
        for label in self.labels:
            row = self.rows.get(label.label_id)
            state = sync_state(row, self.target) if self.target is not None else (row.state if row else "not pushed")
            if row is not None and row.state == "confirmed" and not row.shows_desired:
                state = "pending"
            out.append({
                "label": label.label_id, "gateway": label.gateway, "tag_type": label.tag_type, "state": state,
                "shows": None if row is None or row.confirmed_price_cents is None else str(to_decimal(row.confirmed_price_cents)),
                "wants": None if row is None else str(to_decimal(row.price_cents)),
                "reference": None if row is None or row.reference_cents is None else str(to_decimal(row.reference_cents)),
                "battery_mv": None if row is None else row.battery_mv,
                "attempts": None if row is None else row.attempts,
                "last_error": None if row is None else row.last_error,
                "updated_at": None if row is None or not row.updated_us else from_us(row.updated_us).isoformat(),  # type: ignore[union-attr]
            })
        return out

    def sync(self) -> dict[str, object]:
        return sku_sync([label.label_id for label in self.labels], self.rows, self.target).as_dict()

    def chart(self) -> str:
        planned = self.after.price_cents if self.after is not None and not self.applied else None
        return price_history_svg(
            self.history, now=self.now, currency=self.currency, planned_cents=planned, shelf_cents=self.current_cents,
            tz=self.review.settings.calendar.tz, title=f"Price history of {self.sku}",
        )

    def as_dict(self) -> dict[str, Any]:
        row = Row(self.line, view_status(self.line)) if self.line else None
        p = self.product
        return {
            "sku": self.sku, "name": p.name, "category": p.category, "brand": p.brand,
            "size": p.size, "unit": p.unit, "currency": self.currency,
            "plan": self.plan.plan_id if self.plan else None,
            "line": row.as_dict() if row else None,
            "current_price": str(to_decimal(self.current_cents)),
            "current_price_source": "price book" if self.in_book else "products.csv",
            "lowest_30_days": None if self.lowest_30 is None else str(to_decimal(self.lowest_30)),
            "label_before": _prices_dict(self.before),
            "label_after": _prices_dict(self.after) if self.after else None,
            "plan_applied": self.applied,
            "history": [
                {"price": str(to_decimal(h.price_cents)), "currency": h.currency,
                 "from": h.effective_from.isoformat(), "to": h.effective_to.isoformat() if h.effective_to else None,
                 "correlation": h.correlation, "reason": h.reason}
                for h in self.history
            ],
            "labels": self.label_rows(), "sync": self.sync(), "tag_types": self.tag_types,
        }


def _prices_dict(prices: label_images.LabelPrices) -> dict[str, Any]:
    return {
        "price": str(to_decimal(prices.price_cents)),
        "reference": None if prices.reference_cents is None else str(to_decimal(prices.reference_cents)),
        "promo": prices.reference_cents is not None and prices.reference_cents > prices.price_cents,
    }


def gateways_view(review: Review) -> dict[str, Any]:
    """Label sync per gateway (outbox), online/offline (the broker's retained statuses), failures."""
    outbox = review.outbox()
    counts = outbox.counts(low_battery_mv=review.settings.delivery.low_battery_mv)
    c = label_table.c
    with review.engine().connect() as conn:
        low_by_gateway = dict(conn.execute(
            select(c.gateway, func.count())
            .where(c.store == review.settings.store, c.battery_mv <= review.settings.delivery.low_battery_mv)
            .group_by(c.gateway)
        ).all())
    probe, checked = review.probe()
    in_file: dict[str, int] = {}
    for label in review.files.labels():
        in_file[label.gateway] = in_file.get(label.gateway, 0) + 1
    known = set(in_file) | set(counts.by_gateway) | set(probe.gateways)
    states = ("confirmed", "pending", "sent", "scheduled", "failed")
    gateways = []
    for gateway in sorted(known):
        by_state = counts.by_gateway.get(gateway, {})
        status = probe.gateways.get(gateway)
        gateways.append({
            "gateway": gateway,
            "status": status.state if status else ("unknown" if probe.reachable else "broker unreachable"),
            "labels_reported": status.labels if status else None,
            "by_state": {s: by_state.get(s, 0) for s in states},
            "labels": in_file.get(gateway, 0),  # labels.csv
            "in_outbox": sum(by_state.values()),
            "low_battery": int(low_by_gateway.get(gateway, 0)),
        })
    failed = outbox.rows(["failed"])
    return {
        "store": review.settings.store,
        "broker": {"url": review.settings.broker.url, "reachable": probe.reachable, "error": probe.error,
                   "checked_at": checked.isoformat()},
        "labels": sum(in_file.values()),
        "pushes_blocked": review.blocked(),
        "gateways": gateways,
        "online": probe.online, "offline": probe.offline,
        "totals": {s: counts.by_state.get(s, 0) for s in states} | {"open": counts.open},
        "low_battery": counts.low_battery,
        "failed_count": len(failed),
        "failed": [
            {"label": r.label_id, "gateway": r.gateway, "sku": r.sku, "price": str(to_decimal(r.price_cents)),
             "version": r.version, "attempts": r.attempts, "reason": r.last_error or "failed",
             "updated_at": from_us(r.updated_us).isoformat() if r.updated_us else None}  # type: ignore[union-attr]
            for r in failed[:FAILED_SHOWN]
        ],
    }


def plan_json(review: Review, plan: PricePlan, selection: Selection) -> dict[str, Any]:
    review.add_sync(selection.rows)
    return plan_header(plan) | {
        "summary": summarize(plan).as_dict(),
        "filter": selection.filter, "statuses": list(selection.statuses), "query": selection.query,
        "sort": selection.sort, "order": "desc" if selection.descending else "asc",
        "matching": selection.matching, "offset": selection.offset, "limit": selection.limit,
        "lines": [row.as_dict() for row in selection.rows],
    }


# -- the app ---------------------------------------------------------------------------------------


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _safe_next(target: str | None) -> str:
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def create_app(
    settings: ReviewSettings,
    *,
    clock: Callable[[], datetime] | None = None,
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """The review app for ``settings``; ``clock`` (aware datetimes) decides freeze windows and
    the time stamps of decisions and pushes (default: the wall clock). ``allowed_hosts``: the
    Host header names the app answers (others get 400), so that a web page whose name an attacker
    points at 127.0.0.1 (DNS rebinding) cannot read it; None answers any."""
    now = clock or (lambda: datetime.now(UTC))
    review = Review(settings, now)
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html"], default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["money"] = lambda cents, currency="": _money(cents, currency)
    env.filters["signed"] = signed_display  # grouped as "money" is, and as app.js does after an update
    env.filters["pct"] = lambda value: "" if value is None else f"{value:+.1f}%"
    env.filters["when"] = lambda moment: "" if moment is None else moment.astimezone(
        settings.calendar.tz).strftime("%Y-%m-%d %H:%M")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        review.close()

    app = FastAPI(title="esl-pricing review", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.review = review
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))
    if settings.trusted_proxies:
        # X-Forwarded-Proto / -For only from these: request.url.scheme and request.client follow them.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))

    # -- responses ------------------------------------------------------------------------------
    def page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        user = review.auth.shown_user(request)
        try:
            blocked = review.blocked()
        except DatabaseError as exc:
            blocked = f"database unavailable: {exc}"
        html = env.get_template(template).render(
            user=user, read_only=settings.read_only, store=settings.store, blocked=blocked,
            path=request.url.path, login_url="/login?" + urlencode({"next": str(request.url.path) + (
                "?" + request.url.query if request.url.query else "")}),
            read_only_message=READ_ONLY_MESSAGE, **context,
        )
        return HTMLResponse(html, status_code=status)

    def error_response(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        message = (message.strip().splitlines() or ["error"])[0]
        if _wants_json(request):
            return JSONResponse({"error": message}, status_code=status, headers=headers)
        return page(request, "error.html", status=status, status_code=status, message=message)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Callable[[Request], Any]) -> Response:
        response: Response = await call_next(request)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(ReviewError)
    async def _review_error(request: Request, exc: ReviewError) -> Response:
        return error_response(request, exc.status, str(exc))

    @app.exception_handler(AuthError)
    async def _auth_error(request: Request, exc: AuthError) -> Response:
        return error_response(request, exc.status, str(exc), exc.headers)

    def user_error(status: int, prefix: str) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(request: Request, exc: Exception) -> Response:
            return error_response(request, status, f"{prefix}{exc}")

        return handler

    for error, (status, prefix) in USER_ERRORS.items():
        app.add_exception_handler(error, user_error(status, prefix))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        message = "not found" if exc.status_code == 404 else str(exc.detail)
        return error_response(request, exc.status_code, message)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_response(request, 422, first_error(exc, "request"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("review: %s %s failed", request.method, request.url.path)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return error_response(request, 500, f"internal error: {type(exc).__name__}: {first}")

    def writer(request: Request) -> User:
        return review.auth.writer(request)

    # -- plan ---------------------------------------------------------------------------------------
    def selection(plan: PricePlan, status: str | None, q: str, sort: str, order: str, offset: int,
                  limit: int) -> Selection:
        if order not in ("asc", "desc"):
            raise FilterError(f"order must be asc or desc, not '{order}'")
        return select_rows(plan, status=status, query=q, sort=sort, descending=order == "desc", offset=offset,
                           limit=limit)

    @app.get("/", response_class=HTMLResponse)
    def plan_page(
        request: Request, plan: str | None = None, status: str | None = None, q: str = "", sort: str = "status",
        order: str = "asc", offset: int = Query(0, ge=0),
    ) -> Response:
        entries = review.catalog.entries()
        if not entries and plan in (None, "", "latest"):
            exists = settings.plans_dir.is_dir()
            return page(request, "plan.html", plan=None, entries=[], plans_dir=settings.plans_dir, exists=exists)
        loaded, _ = review.load_plan(plan)
        chosen = selection(loaded, status, q, sort, order, offset, settings.max_rows)
        review.add_sync(chosen.rows)
        active = review.worker.active()
        return page(
            request, "plan.html", plan=loaded, entries=entries, plans_dir=settings.plans_dir, exists=True,
            latest=entries[0].plan_id if entries else None, summary=summarize(loaded), sel=chosen,
            filters=FILTER_TEXT, status_text=STATUS_TEXT, sort_keys=SORT_KEYS, status_rank=STATUS_RANK,
            active_push=active.id if active else None,
            query_for=lambda **changes: _query(loaded.plan_id, chosen, **changes),
        )

    @app.get("/api/plans")
    def api_plans() -> dict[str, Any]:
        entries = review.catalog.entries()
        return {
            "plans_dir": str(settings.plans_dir),
            "plans": [{"plan": e.plan_id, "created_at": e.created_at.isoformat(), "latest": i == 0}
                      for i, e in enumerate(entries)],
        }

    @app.get("/api/plans/{plan_id}")
    def api_plan(
        plan_id: str, status: str | None = None, q: str = "", sort: str = "status", order: str = "asc",
        offset: int = Query(0, ge=0), limit: int = Query(500, ge=1, le=MAX_API_ROWS),
    ) -> dict[str, Any]:
        loaded, _ = review.load_plan(plan_id)
        return plan_json(review, loaded, selection(loaded, status, q, sort, order, offset, limit))

    @app.post("/api/plans/{plan_id}/decide")
    def api_decide(request: Request, plan_id: str, body: DecideRequest) -> dict[str, Any]:
        user = writer(request)
        by = user.name
        if user.via == "bearer" and body.by is not None:
            named = clean_name(body.by)
            if named is None:
                raise ReviewError(422, "by: name who decides (1-64 characters, no markup)")
            by = named
        _, path = review.own_plan(plan_id)
        decision = decide(path, body.skus, approve=body.approve, by=by, at=review.clock())
        engine = review.engine()
        if engine is not None:
            EventLog(engine, decision.plan.store).append(decision.events())
        review.catalog.forget(path)
        plan = decision.plan
        push: dict[str, Any] | None = None
        blocked = None
        if decision.approved and decision.decided:
            blocked = review.blocked()
            if blocked is not None:
                push = {"state": "blocked", "final": True,
                        "message": f"not pushed: {blocked}; the approval is saved, push it when pushes are allowed"}
            else:
                lines = {line.sku: line for line in plan.lines}
                job = review.worker.submit(
                    plan_id=plan.plan_id, currency=plan.currency, prices=decision.prices,
                    old_prices={sku: lines[sku].old_cents for sku in decision.prices}, by=by,
                )
                push = review.worker.status(job)
        rows = lines_for(plan, decision.decided)
        review.add_sync(rows)
        return {
            "plan": plan.plan_id, "decided": decision.decided, "approved": decision.approved, "by": by,
            "awaiting_approval": len(plan.awaiting_approval), "pushes_blocked": blocked, "push": push,
            "lines": [row.as_dict() for row in rows], "summary": summarize(plan).as_dict(),
        }

    @app.post("/api/plans/{plan_id}/push", status_code=202)
    def api_push(request: Request, plan_id: str) -> Response:
        user = writer(request)
        plan, _ = review.own_plan(plan_id)
        approved = [line for line in plan.changes if line.decided_by]
        current = review.book().current()
        prices = {line.sku: line.new_cents for line in approved if current.get(line.sku) != line.new_cents}
        open_labels = review.outbox().counts().open
        if not prices and not open_labels:
            return JSONResponse({
                "plan": plan.plan_id, "push": None, "approved": len(approved),
                "message": "nothing to push: every approved change of this plan is in the price book and no label waits",
            })
        blocked = review.blocked()
        if blocked is not None:
            raise ReviewError(409, f"pushes are blocked: {blocked}")
        job = review.worker.submit(
            plan_id=plan.plan_id, currency=plan.currency, prices=prices,
            old_prices={line.sku: line.old_cents for line in approved if line.sku in prices}, by=user.name,
        )
        return JSONResponse(
            {"plan": plan.plan_id, "approved": len(approved), "push": review.worker.status(job)}, status_code=202
        )

    # -- pushes ---------------------------------------------------------------------------------------
    @app.get("/api/pushes")
    def api_pushes() -> dict[str, Any]:
        active = review.worker.active()
        return {
            "pushes_blocked": review.blocked(),
            "active": review.worker.status(active) if active else None,
            "recent": [review.worker.status(job) for job in review.worker.jobs()[:10]],
        }

    @app.get("/api/pushes/{job_id}")
    def api_push_status(job_id: str) -> dict[str, Any]:
        job = review.worker.job(job_id)
        if job is None:
            raise ReviewError(404, f"no push '{job_id}' (pushes are kept while the server runs)")
        return review.worker.status(job)

    # -- SKU ------------------------------------------------------------------------------------------
    @app.get("/sku/{sku}", response_class=HTMLResponse)
    def sku_page(request: Request, sku: str, plan: str | None = None) -> Response:
        view = SkuView(review, sku, plan)
        templates = label_images.templates(settings.label_templates)
        images = []
        for tag_type in view.tag_types:
            entry: dict[str, Any] = {"tag_type": tag_type, "width": None, "sides": []}
            if tag_type in templates.tags:
                width = templates.tags[tag_type].width
                entry["width"] = width * 2 if width <= 300 else width  # whole pixels: e-paper has no greys
            sides = [("before", view.before)] + ([("after", view.after)] if view.after else [])
            for which, prices in sides:
                problem = label_images.fit_problem(view.product, prices, view.currency, tag_type,
                                                   settings.label_templates)
                entry["sides"].append({"which": which, "prices": prices, "problem": problem,
                                       "text": prices.describe(view.currency)})
            images.append(entry)
        active = review.worker.active()
        return page(
            request, "sku.html", view=view, line=view.line,
            row=Row(view.line, view_status(view.line),
                    mates=decided_together(view.plan).get(view.line.sku, ()) if view.plan else ()) if view.line else None,
            chart=view.chart(), images=images, label_rows=view.label_rows(), sync=view.sync(),
            plan_id=view.plan.plan_id if view.plan else None, status_text=STATUS_TEXT,
            active_push=active.id if active else None,
        )

    @app.get("/api/sku/{sku}")
    def api_sku(sku: str, plan: str | None = None) -> dict[str, Any]:
        return SkuView(review, sku, plan).as_dict()

    @app.get("/api/sku/{sku}/history.svg")
    def api_history(sku: str, plan: str | None = None) -> Response:
        return Response(SkuView(review, sku, plan).chart(), media_type="image/svg+xml")

    @app.get("/api/sku/{sku}/label.png")
    def api_label(sku: str, tag_type: str, which: str = "after", plan: str | None = None) -> Response:
        view = SkuView(review, sku, plan)
        try:
            png = label_images.render_png(view.product, view.prices(which), view.currency, tag_type,
                                          settings.label_templates)
        except ValueError as exc:  # an unknown tag type, a price that does not fit
            raise ReviewError(409, f"label of {sku} ({tag_type}): {exc}") from None
        return Response(png, media_type="image/png")

    # -- gateways -------------------------------------------------------------------------------------
    @app.get("/gateways", response_class=HTMLResponse)
    def gateways_page(request: Request) -> Response:
        view = gateways_view(review)
        return page(request, "gateways.html", g=view, checked=datetime.fromisoformat(view["broker"]["checked_at"]))

    @app.get("/api/gateways")
    def api_gateways() -> dict[str, Any]:
        return gateways_view(review)

    # -- session ---------------------------------------------------------------------------------------
    @app.get("/api/session")
    def api_session(request: Request) -> dict[str, Any]:
        user = review.auth.user(request)
        return {"user": user.name if user else None, "via": user.via if user else None,
                "read_only": settings.read_only, "store": settings.store}

    @app.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        return page(request, "login.html", next=_safe_next(next), error=None, name="")

    @app.post("/login")
    def login(request: Request, name: str = Form(""), token: str = Form(""), next: str = Form("/")) -> Response:
        target = _safe_next(next)
        if not review.auth.enabled:
            raise AuthError(403, READ_ONLY_MESSAGE)
        check_same_origin(request)
        try:
            review.auth.throttle.check(client_of(request))
            who = clean_name(name)
            if who is None:
                return page(request, "login.html", status=400, next=target, name=name,
                            error="Enter your name (1-64 characters) so decisions say who made them.")
            if not review.auth.attempt(request, token):
                return page(request, "login.html", status=401, next=target, name=who, error="Wrong token or password.")
        except AuthError as refused:  # locked out after too many wrong tokens: at once, no sleeping
            locked = page(request, "login.html", status=refused.status, next=target, name=name, error=f"{refused}.")
            locked.headers.update(refused.headers or {})
            return locked
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE_NAME, review.auth.cookie_value(who), max_age=settings.login_max_age_s, httponly=True,
            samesite="strict", secure=request.url.scheme == "https", path="/",
        )
        return response

    @app.post("/logout")
    def logout(request: Request) -> Response:
        check_same_origin(request)
        review.auth.log_out(request)  # a copy of the cookie stops working too
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict",
                               secure=request.url.scheme == "https")
        return response

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return RedirectResponse("/static/favicon.svg", status_code=308)

    return app


def _query(plan_id: str, sel: Selection, **changes: Any) -> str:
    """The plan page's query string with ``changes`` applied (for sort links, filters, pages)."""
    params: dict[str, Any] = {
        "plan": plan_id, "status": sel.filter, "q": sel.query, "sort": sel.sort,
        "order": "desc" if sel.descending else "asc", "offset": 0,
    }
    params.update(changes)
    return "?" + urlencode({k: v for k, v in params.items() if v not in ("", None) and not (k == "offset" and v == 0)})
