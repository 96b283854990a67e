"""The review page in a real headless Chromium, against the real broker and the simulated labels.

A generated store (80 SKUs) with a trained model and a plan that holds changes for approval; the
review server on a free port with a token; the gateway simulator on the broker. The browser opens
the page without logging in (approve controls disabled), logs in, checks that the whole table fits
a 1400 px window and that the reason of a held change says it needs approval, sorts the table, is
warned before deciding one member of a price group (which decides the group: declining decides
nothing, accepting rejects both), approves one held change, and waits until the page shows that
SKU's labels confirmed; then the simulator must display the new price on those labels, the plan
file must say who approved it, and the live-updated totals must read as the server renders them. Screenshots of
the plan, SKU and gateway pages go to the test's folder and to $ESL_TEST_ARTIFACTS when set.

Chromium is Debian's /usr/bin/chromium (never one a test tool downloads). Without it the test is
skipped, except with CI=true, where it fails.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from label_gateway.broker import clear_retained
from label_gateway.protocol import Topics
from pricing.core.data import label_rows
from pricing.core.database import open_engine
from pricing.core.store_data import load_store
from pricing.demand.training import train_demand_model
from pricing.plan.cycle import run_pricing_cycle
from pricing.plan.price_plan import PlanLine, PricePlan
from pricing.review.server import ReviewServer
from pricing.review.settings import ReviewSettings
from pricing.review.views import decided_together
from pricing.rules.config import load_rules
from pricing.store.price_book import PriceBook
from simulator.gateways import SimulatedGateways
from simulator.store import generate_store

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.integration]

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
REPO = Path(__file__).resolve().parents[1]
STORE = "browser-store"
TOKEN = "browser-test-token-7"
MANAGER = "Alice Manager"
CONFIRM_TIMEOUT_MS = 30_000


def _missing(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass(frozen=True)
class Shop:
    settings: ReviewSettings
    plan: PricePlan
    line: PlanLine  # the held change the browser approves
    labels: list[tuple[str, str, str]]
    group: tuple[str, str]  # two held changes of one price group (neither is ``line``)


@pytest.fixture
def shop(tmp_path: Path, mqtt_broker: Any) -> Iterator[Shop]:
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    generate_store(tmp_path / "data", skus=80, seed=5, gateways=2, store=STORE)
    store = load_store(tmp_path / "data")
    model = train_demand_model(store.sales, store.products).model
    now = datetime.now(UTC)
    plan = run_pricing_cycle(
        store.products, model, load_rules(REPO / "config" / "rules.yaml"), store=STORE, model_name="models",
        now=now - timedelta(minutes=2),
    )
    waiting = plan.awaiting_approval
    assert waiting, "the browser test needs a change held for approval"
    # a reduction shows the most on the page (the 30-day reference and the promo marker)
    line = next((x for x in waiting if x.new_cents < x.old_cents), waiting[0])
    plan, group = _with_group(plan, line)
    # Profits a hundred times larger: the totals run into thousands, so their grouping shows.
    plan.lines = [x.model_copy(update={
        "profit_old_cents": None if x.profit_old_cents is None else x.profit_old_cents * 100,
        "profit_new_cents": None if x.profit_new_cents is None else x.profit_new_cents * 100,
    }) for x in plan.lines]
    plan.write(tmp_path / "plans")
    database = str(tmp_path / "engine.db")
    _price_history(PriceBook(open_engine(database), STORE), store.products, line, now, plan.currency)
    settings = ReviewSettings(
        store=STORE, plans_dir=tmp_path / "plans", data_dir=tmp_path / "data", database=database,
        broker=mqtt_broker.address, prefix=prefix, secret=TOKEN, probe_ttl_s=1.0,
    )
    try:
        yield Shop(settings, plan, line, label_rows(store.labels), group)
    finally:
        clear_retained(mqtt_broker.address, f"{prefix}/#", settle_s=0.3)


def _with_group(plan: PricePlan, line: PlanLine) -> tuple[PricePlan, tuple[str, str]]:
    """Two held changes decided together (a price group's waiting members), neither of them nor a
    mate of ``line``: the plan's own when it has such a pair, else two of its held changes put in
    one family."""
    together = decided_together(plan)
    for sku, mates in together.items():
        if sku != line.sku and line.sku not in mates:
            return plan, (sku, mates[0])
    others = [x.sku for x in plan.awaiting_approval if x.sku != line.sku and x.sku not in together.get(line.sku, ())]
    assert len(others) >= 2, "the browser test needs two more held changes"
    pair = set(others[:2])
    plan.lines = [x.model_copy(update={"group": "family browser-test"}) if x.sku in pair else x for x in plan.lines]
    assert decided_together(plan)[others[0]] == (others[1],)
    return plan, (others[0], others[1])


def _price_history(book: PriceBook, products: Any, line: PlanLine, now: datetime, currency: str) -> None:
    """Three months of prices: every SKU at its products.csv price, and for the SKU to approve a
    higher price, then a lower one 22 days ago (the 30-day low), then today's."""
    prices = dict(zip(products["sku"].astype(str), products["price_cents"].astype(int), strict=True))
    book.seed(prices, at=now - timedelta(days=90), currency=currency, source="products.csv")
    old = line.old_cents
    low = min(old - 10, line.new_cents + 20) if line.new_cents < old else old - 20
    book.record({line.sku: old + 30}, at=now - timedelta(days=70), currency=currency, correlation="plan-history-1")
    book.record({line.sku: low}, at=now - timedelta(days=22), currency=currency, correlation="plan-history-2")
    book.record({line.sku: old}, at=now - timedelta(days=9), currency=currency, correlation="plan-history-3")


def _save(page: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    artifacts = os.environ.get("ESL_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / name)
    return path


def _column(page: Any, key: str) -> list[float]:
    return page.evaluate(
        """key => {
            const th = document.querySelector(`#plan-table th[data-key="${key}"]`);
            const index = Array.from(th.parentNode.children).indexOf(th);
            return Array.from(document.querySelectorAll('#plan-table tbody tr'))
                .map(row => parseFloat(row.cells[index].getAttribute('data-value')));
        }""",
        key,
    )


def test_a_pricing_manager_approves_a_held_change_and_sees_its_labels_confirmed(
    browser: Any, shop: Shop, mqtt_broker: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    settings, line = shop.settings, shop.line
    labels_of_sku = [label for label, _, sku in shop.labels if sku == line.sku]
    assert labels_of_sku
    topics = Topics(settings.store, prefix=settings.prefix)
    problems: list[str] = []
    with SimulatedGateways(mqtt_broker.address, topics, shop.labels) as gateways, \
            ReviewServer(settings, port=0) as server:
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        page = context.new_page()
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: problems.append(str(e)))

        # 1. Not logged in: the plan is readable, approving is not.
        page.goto(server.url)
        row = page.locator(f'#plan-table tr[data-sku="{line.sku}"]')
        expect(row.locator(".badge")).to_have_text("needs approval")
        expect(page.locator("#approve-btn")).to_be_disabled()
        expect(page.locator("#reject-btn")).to_be_disabled()
        expect(row.locator(".row-select")).to_be_disabled()
        expect(page.locator("#auth-hint")).to_contain_text("Log in to approve")
        expect(page.locator(".session")).to_contain_text("Read-only")

        # 2. Log in.
        page.locator("#auth-hint a").click()
        page.fill("#login-name", MANAGER)
        page.fill("#login-token", TOKEN)
        page.click("#login-submit")
        expect(page.locator("#user-name")).to_have_text(MANAGER)
        expect(page.locator("#plan-table")).to_be_visible()
        rows = page.locator("#plan-table tbody tr").count()
        assert rows == sum(1 for x in shop.plan.lines if x.status in ("change", "approval", "rejected"))

        # 3. At a 1400 px window every column fits, Labels last; a held change says why it waits.
        page.set_viewport_size({"width": 1400, "height": 900})
        fit = page.evaluate("""() => {
            const wrap = document.querySelector('.table-wrap');
            const labels = document.querySelector('#plan-table th[data-key="labels"]').getBoundingClientRect();
            return {overflow: wrap.scrollWidth - wrap.clientWidth,
                    beyond: labels.right - wrap.getBoundingClientRect().right};
        }""")
        assert fit["overflow"] <= 0 and fit["beyond"] <= 0.5, fit
        clause = row.locator(".col-reason .approval-clause")
        expect(clause).to_be_visible()
        expect(clause).to_contain_text("needs approval")
        page.set_viewport_size({"width": 1440, "height": 900})

        # 4. Sorting: click a header, the rows follow; click again, they reverse.
        page.click('#plan-table th[data-key="change"] a')
        expect(page.locator('#plan-table th[data-key="change"]')).to_have_attribute("aria-sort", "ascending")
        values = _column(page, "change")
        assert values == sorted(values) and len(values) == rows
        page.click('#plan-table th[data-key="change"] a')
        expect(page.locator('#plan-table th[data-key="change"]')).to_have_attribute("aria-sort", "descending")
        assert _column(page, "change") == sorted(values, reverse=True)
        page.click('#plan-table th[data-key="profit"] a')
        profits = _column(page, "profit")
        assert profits == sorted(profits)

        # 5. A member of a price group: the page names the SKUs decided with it before the click.
        first, mate = shop.group
        dialogs: list[str] = []
        answer = {"accept": False}

        def on_dialog(dialog: Any) -> None:
            dialogs.append(dialog.message)
            dialog.accept() if answer["accept"] else dialog.dismiss()

        page.on("dialog", on_dialog)
        member = page.locator(f'#plan-table tr[data-sku="{first}"]')
        expect(member.locator(".group-note")).to_contain_text(mate)
        member.locator(".row-select").check()
        page.click("#approve-btn")
        expect(page.locator("#action-message")).to_have_text("Nothing approved.")
        assert len(dialogs) == 1 and first in dialogs[0] and mate in dialogs[0] and "2 SKUs" in dialogs[0], dialogs
        expect(member.locator(".badge")).to_have_text("needs approval")
        expect(page.locator(f'#plan-table tr[data-sku="{mate}"] .badge')).to_have_text("needs approval")
        answer["accept"] = True  # now reject the group, knowing what goes with it
        page.click("#reject-btn")
        expect(member.locator(".badge")).to_have_text("rejected")
        expect(page.locator(f'#plan-table tr[data-sku="{mate}"] .badge')).to_have_text("rejected")
        assert len(dialogs) == 2 and mate in dialogs[1]

        # 6. Approve the held change through the page.
        expect(page.locator("#approve-btn")).to_be_disabled()
        row.locator(".row-select").check()
        expect(page.locator("#selected-count")).to_have_text("1 selected")
        expect(page.locator("#approve-btn")).to_be_enabled()
        page.click("#approve-btn")
        expect(row.locator(".badge")).to_have_text("approved")
        expect(row.locator(".col-decided")).to_contain_text(MANAGER)

        # 7. The push runs in the background; the page follows it until the labels confirm.
        expect(row.locator("[data-sync-sku]")).to_contain_text("confirmed", timeout=CONFIRM_TIMEOUT_MS)
        expect(page.locator("#push-panel")).to_be_visible()
        expect(page.locator("#push-state")).to_have_text("done", timeout=CONFIRM_TIMEOUT_MS)
        shown = gateways.displayed()
        for label in labels_of_sku:
            assert shown[label].price_cents == line.new_cents, label
            if line.new_cents < line.old_cents:
                assert shown[label].reference_cents is not None and shown[label].reference_cents > line.new_cents
        saved = {x.sku: x for x in PricePlan.read(settings.plans_dir / f"{shop.plan.plan_id}.json").lines}
        assert saved[line.sku].status == "change" and saved[line.sku].decided_by == MANAGER
        plan_shot = _save(page, tmp_path, "review-plan.png")
        assert len(dialogs) == 2, dialogs  # the change on its own: no question asked

        # 8. The totals updated live read exactly as the server renders them (thousands grouped).
        live = [page.locator(x).inner_text() for x in ("#stat-profit", "#stat-profit-note")]
        page.reload()
        assert [page.locator(x).inner_text() for x in ("#stat-profit", "#stat-profit-note")] == live
        assert re.search(r"\d,\d{3}\.\d{2} EUR today", live[1]), live

        # 9. The SKU page: history with the 30-day reference, labels before and after, sync.
        page.click(f'#plan-table tr[data-sku="{line.sku}"] td:nth-child(2) a')
        expect(page.locator("h1")).to_contain_text(line.sku)
        expect(page.locator("#sku-status")).to_have_text("approved")
        expect(page.locator("#history-chart .reference-line")).to_have_count(1)
        expect(page.locator("#history-chart .price-line")).to_have_count(1)
        images = page.locator("img.label-img")
        assert images.count() >= 2
        for i in range(images.count()):
            expect(images.nth(i)).to_have_js_property("complete", True)
            assert images.nth(i).evaluate("img => img.naturalWidth") > 0
        for label in labels_of_sku:
            expect(page.locator(f'[data-label-state="{label}"]')).to_have_text("confirmed")
        sku_shot = _save(page, tmp_path, "review-sku.png")

        page.goto(server.url + "gateways")
        expect(page.locator("#broker-state")).to_have_text("reachable")
        expect(page.locator("#total-confirmed")).to_have_text(re.compile(r"[1-9]"))
        _save(page, tmp_path, "review-gateways.png")
        context.close()
    assert plan_shot.stat().st_size > 10_000 and sku_shot.stat().st_size > 10_000
    assert not problems, problems  # no script error, no CSP violation
