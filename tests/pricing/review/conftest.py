"""A small generated store with a plan that holds changes for approval, for the review app tests.

The store, its demand model and its plan are made once per session (a few seconds); each test
gets its own copy of the plans folder and its own engine database, so decisions never leak
between tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from label_gateway.broker import BrokerAddress
from pricing.core.store_data import load_store
from pricing.demand.training import train_demand_model
from pricing.plan.cycle import run_pricing_cycle
from pricing.plan.price_plan import PricePlan
from pricing.review.settings import ReviewSettings
from pricing.rules.config import load_rules
from simulator.store import generate_store

REPO = Path(__file__).resolve().parents[3]
STORE = "rv-store"
TOKEN = "s3cret-review-token"
#: Nothing listens here: tests that do not publish never reach a broker.
NO_BROKER = BrokerAddress("127.0.0.1", 9)


@dataclass(frozen=True)
class MadeStore:
    data_dir: Path
    plans_dir: Path
    plan: PricePlan


@pytest.fixture(scope="session")
def made_store(tmp_path_factory: pytest.TempPathFactory) -> MadeStore:
    root = tmp_path_factory.mktemp("review-store")
    generate_store(root / "data", skus=80, seed=5, gateways=2, store=STORE)
    store = load_store(root / "data")
    model = train_demand_model(store.sales, store.products).model
    plan = run_pricing_cycle(
        store.products, model, load_rules(REPO / "config" / "rules.yaml"), store=STORE, model_name="models",
        now=datetime.now(UTC) - timedelta(minutes=5),
    )
    assert plan.awaiting_approval, "the review tests need changes held for approval"
    plan.write(root / "plans")
    return MadeStore(root / "data", root / "plans", plan)


@pytest.fixture
def review_dirs(made_store: MadeStore, tmp_path: Path) -> MadeStore:
    """This test's own copy of the plan (decisions rewrite it), for a store id of its own (the
    PostgreSQL schema is shared by the session's tests; the store id keeps their rows apart)."""
    plan = made_store.plan.model_copy(update={"store": f"rv-{uuid.uuid4().hex[:8]}"}, deep=True)
    plan.write(tmp_path / "plans")
    return MadeStore(made_store.data_dir, tmp_path / "plans", plan)


@pytest.fixture
def make_settings(review_dirs: MadeStore, tmp_path: Path) -> Callable[..., ReviewSettings]:
    """Settings for this test's plans and database (secret TOKEN, no broker), with changes."""

    def make(**changes: object) -> ReviewSettings:
        values: dict[str, object] = {
            "store": review_dirs.plan.store, "plans_dir": review_dirs.plans_dir, "data_dir": review_dirs.data_dir,
            "database": str(tmp_path / "engine.db"), "broker": NO_BROKER, "prefix": "rv-unused", "secret": TOKEN,
            "probe_ttl_s": 0.0,
        }
        values.update(changes)
        return ReviewSettings(**values)  # type: ignore[arg-type]

    return make
