"""Tests for pricing/cli/outbox.py: esl-pricing apply."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from pricing.plan.price_plan import PlanLine

pytestmark = pytest.mark.usefixtures("wide_console")

Run = Callable[..., tuple[int, str, str]]
MakeLine = Callable[..., PlanLine]
PlanFile = Callable[[Path, list[PlanLine]], Path]
LabelsDir = Callable[[Path, list[str]], Path]

REPO = Path(__file__).resolve().parents[3]


def test_apply_with_unreachable_broker_is_one_line_exit_1(
    tmp_path: Path,
    run: Run,
    make_line: MakeLine,
    plan_file: PlanFile,
    labels_dir: LabelsDir,
) -> None:
    from label_gateway.embedded_broker import free_port

    plan = plan_file(tmp_path / "plans", [make_line("0001", "change")])
    data = labels_dir(tmp_path / "data", ["0001"])
    code, _, err = run("apply", str(plan), "--data", str(data), "--broker", f"mqtt://127.0.0.1:{free_port()}")
    assert code == 1
    assert "cannot reach MQTT broker" in err and "Traceback" not in err


def test_apply_rejects_a_file_that_is_not_a_plan(tmp_path: Path, run: Run) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("{}")
    code, _, err = run("apply", str(junk), "--data", str(tmp_path))
    assert code == 2 and "not a price plan" in err


def test_apply_with_nothing_approved_exits_0_without_a_broker(
    tmp_path: Path,
    run: Run,
    make_line: MakeLine,
    plan_file: PlanFile,
) -> None:
    from label_gateway.embedded_broker import free_port

    plan = plan_file(tmp_path, [make_line("0002", "approval"), make_line("0003", "rejected"), make_line("0004", "keep")])
    code, out, err = run(
        "apply", str(plan), "--data", str(tmp_path / "no-data"), "--broker", f"mqtt://127.0.0.1:{free_port()}",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["prices"] == 0 and summary["awaiting_approval"] == 1 and summary["labels_confirmed"] == 0
    assert "nothing to push" in err and "1 changes await approval and were not pushed" in err


def test_apply_after_approval_has_prices_to_push(
    tmp_path: Path,
    run: Run,
    make_line: MakeLine,
    plan_file: PlanFile,
    labels_dir: LabelsDir,
) -> None:
    """Once approved, the change is pushed: apply now needs the broker (unreachable here: exit 1)."""
    from label_gateway.embedded_broker import free_port

    plan = plan_file(tmp_path / "plans", [make_line("0002", "approval")])
    data = labels_dir(tmp_path / "data", ["0002"])
    broker = f"mqtt://127.0.0.1:{free_port()}"
    assert run("apply", str(plan), "--data", str(data), "--broker", broker)[0] == 0
    assert run("approve", str(plan), "--all", "--by", "alice")[0] == 0
    code, _, err = run("apply", str(plan), "--data", str(data), "--broker", broker)
    assert code == 1 and "cannot reach MQTT broker" in err
    from pricing.core.database import open_engine
    from pricing.store.event_log import EventLog

    approved = EventLog(open_engine(tmp_path / "engine.db"), "store-001").read(kinds=["plan_approved"])
    assert [(e.sku, e.data["by"]) for e in approved] == [("0002", "alice")]


def test_plan_then_apply_reaches_the_labels(mqtt_broker, topics, tmp_path: Path, run: Run) -> None:
    """The manual flow: plan, then apply the saved plan to running gateways over the real broker."""
    from pricing.core.store_data import load_store
    from simulator.gateways import SimulatedGateways

    data, models, plans = tmp_path / "data", tmp_path / "models", tmp_path / "plans"
    assert run("simulate", "generate", "--out", str(data), "--skus", "150", "--days", "120")[0] == 0
    assert run("train", "--data", str(data), "--out", str(models))[0] == 0
    code, out, err = run(
        "plan", "--data", str(data), "--model", str(models), "--out", str(plans), "--json",
        "--rules", str(REPO / "config" / "rules.yaml"),
    )
    assert code == 0, err
    plan_path = json.loads(out.strip().splitlines()[-1])["plan"]
    store = load_store(data)
    store_topics = type(topics)(store.store_id, prefix=topics.prefix)
    with SimulatedGateways(mqtt_broker.address, store_topics, store.label_rows()) as sim:
        code, out, err = run(
            "apply", plan_path, "--data", str(data), "--broker", mqtt_broker.address.url,
            "--prefix", topics.prefix, "--json",
        )
        assert code == 0, err
        summary = json.loads(out.strip().splitlines()[-1])
        from pricing.plan.price_plan import PricePlan

        prices = PricePlan.read(Path(plan_path)).new_prices()
        assert summary["labels_confirmed"] == len(prices) > 0 and summary["labels_failed"] == 0
        shown = sim.displayed()
        assert {label: shown[label].price_cents for label, _, sku in store.label_rows() if sku in prices} == {
            label: prices[sku] for label, _, sku in store.label_rows() if sku in prices
        }


@pytest.mark.integration
def test_apply_records_the_price_book_the_omnibus_reference_and_the_log(
    tmp_path: Path,
    mqtt_broker: object,
    run: Run,
    make_line: MakeLine,
    plan_file: PlanFile,
    labels_dir: LabelsDir,
) -> None:
    """A manager's apply takes the same path as the daemon: the price book gets the prices, a
    reduction carries the lowest price of the previous 30 days to the label, the log records it."""
    from datetime import UTC, datetime, timedelta

    from label_gateway.broker import clear_retained
    from label_gateway.protocol import Topics
    from pricing.core.database import open_engine
    from pricing.store.event_log import EventLog
    from pricing.store.price_book import PriceBook
    from simulator.gateways import SimulatedGateways

    engine = open_engine(tmp_path / "engine.db")
    book = PriceBook(engine, "store-001")
    book.seed({"0001": 180, "0003": 500}, at=datetime.now(UTC) - timedelta(days=40), currency="EUR", source="seed")
    book.record({"0001": 200}, at=datetime.now(UTC) - timedelta(days=10), currency="EUR", correlation="older")
    plan = plan_file(tmp_path / "plans", [make_line("0001", "change", 200, 190), make_line("0003", "change", 500, 550)])
    data = labels_dir(tmp_path / "data", ["0001", "0003"])
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    labels = [("L0000", "gw-1", "0001"), ("L0001", "gw-1", "0003")]
    address = mqtt_broker.address  # type: ignore[attr-defined]
    with SimulatedGateways(address, Topics("store-001", prefix=prefix), labels) as gateways:
        code, _, err = run("apply", str(plan), "--data", str(data), "--broker", address.url, "--prefix", prefix)
        assert code == 0, err
        shown = gateways.displayed()
    clear_retained(address, f"{prefix}/#", settle_s=0.3)
    assert book.current() == {"0001": 190, "0003": 550}
    assert (shown["L0000"].price_cents, shown["L0000"].reference_cents) == (190, 180)  # 180 until 10 days ago
    assert (shown["L0001"].price_cents, shown["L0001"].reference_cents) == (550, None)  # an increase
    kinds = [e.kind for e in EventLog(engine, "store-001").read(after_seq=0) if e.correlation == "plan-20261101T060000Z-c0ffee"]
    assert kinds.count("price_changed") == 2 and kinds.count("pushed") == 2 and kinds.count("acked") == 2
