"""Attacks on the last gate before the labels (issue 16): a price below cost, a cost of 0, a plan
price of 0 and label ids that are not MQTT topic levels, each through the real command line
(``esl-pricing apply`` / ``outbox sync``) against the real broker and simulated labels.

What must hold: a held price never reaches the price book nor the outbox table (and so never a
label), it is one clear ``held SKU: reason`` line and exit 1, while the rest of the plan goes
ahead; a bad plan price is one line and exit 2; a bad label row is one ``labels.csv:LINE:`` line
and the other labels still get their price."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from label_gateway.outbox import LabelRow, Outbox
from label_gateway.protocol import Topics
from pricing.cli import common
from pricing.cli.app import app
from pricing.core.database import open_engine
from pricing.plan.price_plan import PlanLine, PricePlan, SolverStats
from pricing.store.event_log import EventLog
from pricing.store.price_book import PriceBook
from simulator.gateways import SimulatedGateways

pytestmark = [pytest.mark.security, pytest.mark.integration]

STORE = "store-001"
PRODUCTS = "sku,name,category,brand,size,unit,cost_cents,price_cents"
LABELS = "label_id,store,gateway,sku,tag_type"


@pytest.fixture(autouse=True)
def wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rich wraps at the terminal width; a wide one keeps each message on one line."""
    monkeypatch.setattr(common.err, "_width", 250)


def run(*args: str) -> tuple[int, str, str]:
    """The assembled esl-pricing app, as tests/pricing/cli/conftest.py's ``run`` fixture runs it."""
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def _data(directory: Path, products: list[str], labels: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "products.csv").write_bytes(("\n".join([PRODUCTS, *products]) + "\n").encode())
    (directory / "labels.csv").write_bytes(("\n".join([LABELS, *labels]) + "\n").encode())
    return directory


def _line(sku: str, old: int, new: int, cost: int | None) -> PlanLine:
    return PlanLine(
        sku=sku, name=f"Product {sku}", category="snacks", status="change", old_cents=old, new_cents=new,
        cost_cents=cost, units_old=10.0, units_new=9.0, profit_old_cents=1000.0, profit_new_cents=1100.0,
        binding_rule="profit", explanation="best expected profit",
    )


def _plan_file(directory: Path, lines: list[PlanLine]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    plan = PricePlan(
        plan_id="plan-20261101T060000Z-c0ffee", created_at=datetime(2026, 11, 1, 6, tzinfo=UTC), store=STORE,
        currency="EUR", model="models", lines=lines,
        solver=SolverStats(status="OPTIMAL", objective_cents=0.0, bound_cents=0.0, seconds=0.01),
    )
    return plan.write(directory)[0]


def _hand_edit(path: Path, sku: str, **fields: object) -> None:
    """What an attacker with the plans folder does: change a line's fields in the JSON."""
    raw = json.loads(path.read_text())
    for line in raw["lines"]:
        if line["sku"] == sku:
            line.update(fields)
    path.write_text(json.dumps(raw, indent=2))


@contextmanager
def _labels(mqtt_broker: object, rows: list[tuple[str, str, str]]) -> Iterator[str]:
    """Simulated labels on the real broker under a fresh topic prefix; yields the prefix."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    address = mqtt_broker.address  # type: ignore[attr-defined]
    with SimulatedGateways(address, Topics(STORE, prefix=prefix), rows):
        yield prefix
    from label_gateway.broker import clear_retained

    clear_retained(address, f"{prefix}/#", settle_s=0.3)


def _outbox(db: Path) -> dict[str, LabelRow]:
    return {row.label_id: row for row in Outbox(open_engine(db), STORE).rows()}


def _held_lines(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines() if line.strip().startswith("held ")]


def _apply(plan: Path, data: Path, db: Path, broker: str, prefix: str) -> tuple[int, str, str]:
    return run("apply", str(plan), "--data", str(data), "--db", str(db), "--broker", broker, "--prefix", prefix,
               "--deadline", "20", "--json")


# -- prices ----------------------------------------------------------------------------------------


def test_hand_edited_plan_below_cost_is_held_and_never_reaches_the_outbox(tmp_path: Path, mqtt_broker) -> None:
    data = _data(tmp_path / "data", ["000123,Tea,snacks,Leaf,1,pc,95,199", "000124,Cake,snacks,Leaf,1,pc,100,199"],
                 ["L000123,store-001,gw-1,000123,2.9", "L000124,store-001,gw-1,000124,2.9"])
    plan = _plan_file(tmp_path / "plans", [_line("000123", 199, 189, 95), _line("000124", 199, 219, 100)])
    _hand_edit(plan, "000123", new_cents=1, cost_cents=0)  # a penny, and the plan's cost lowered to match
    db = tmp_path / "engine.db"
    with _labels(mqtt_broker, [("L000123", "gw-1", "000123"), ("L000124", "gw-1", "000124")]) as prefix:
        code, out, err = _apply(plan, data, db, mqtt_broker.address.url, prefix)
    assert code == 1, err  # a pricing manager must notice
    assert _held_lines(err) == ["held 000123: price 0.01 is below cost 0.95"]
    assert "Traceback" not in err
    rows = _outbox(db)
    assert "L000123" not in rows  # never enqueued
    assert rows["L000124"].price_cents == 219 and rows["L000124"].state == "confirmed"  # the rest went ahead
    engine = open_engine(db)
    assert PriceBook(engine, STORE).current() == {"000124": 219}
    held = EventLog(engine, STORE).read(kinds=["held"])
    assert [(e.sku, e.data["price_cents"], e.data["cost_cents"]) for e in held] == [("000123", 1, 95)]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["held"] == [{"sku": "000123", "reason": "price 0.01 is below cost 0.95"}]


def test_outbox_sync_from_a_products_price_below_cost_is_held(tmp_path: Path, mqtt_broker) -> None:
    data = _data(tmp_path / "data", ["000123,Tea,snacks,Leaf,1,pc,95,1", "000124,Cake,snacks,Leaf,1,pc,100,199"],
                 ["L000123,store-001,gw-1,000123,2.9", "L000124,store-001,gw-1,000124,2.9"])
    db = tmp_path / "engine.db"
    with _labels(mqtt_broker, [("L000123", "gw-1", "000123"), ("L000124", "gw-1", "000124")]) as prefix:
        code, _, err = run("outbox", "sync", "--data", str(data), "--db", str(db), "--broker",
                           mqtt_broker.address.url, "--prefix", prefix, "--deadline", "20")
    assert code == 1, err
    assert _held_lines(err) == ["held 000123: price 0.01 is below cost 0.95"]
    rows = _outbox(db)
    assert list(rows) == ["L000124"] and rows["L000124"].state == "confirmed"
    assert PriceBook(open_engine(db), STORE).current() == {"000124": 199}  # the penny was never seeded


def test_a_cost_of_zero_is_missing_and_the_price_is_held(tmp_path: Path, mqtt_broker) -> None:
    data = _data(tmp_path / "data", ["000123,Tea,snacks,Leaf,1,pc,0,199", "000124,Cake,snacks,Leaf,1,pc,100,199"],
                 ["L000123,store-001,gw-1,000123,2.9", "L000124,store-001,gw-1,000124,2.9"])
    plan = _plan_file(tmp_path / "plans", [_line("000123", 199, 1, 0), _line("000124", 199, 219, 100)])
    db = tmp_path / "engine.db"
    with _labels(mqtt_broker, [("L000123", "gw-1", "000123"), ("L000124", "gw-1", "000124")]) as prefix:
        code, _, err = _apply(plan, data, db, mqtt_broker.address.url, prefix)
    assert code == 1, err
    assert _held_lines(err) == [
        "held 000123: no cost on record for price 0.01 (a cost of 0 or none counts as missing)"
    ]
    assert list(_outbox(db)) == ["L000124"]


def test_a_plan_price_of_zero_is_one_clear_line_and_exit_2(tmp_path: Path) -> None:
    data = _data(tmp_path / "data", ["000123,Tea,snacks,Leaf,1,pc,95,199"], ["L000123,store-001,gw-1,000123,2.9"])
    plan = _plan_file(tmp_path / "plans", [_line("000123", 199, 189, 95)])
    _hand_edit(plan, "000123", new_cents=0)
    db = tmp_path / "engine.db"
    code, _, err = run("apply", str(plan), "--data", str(data), "--db", str(db), "--broker", "mqtt://127.0.0.1:1")
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err
    assert str(plan) in lines[0] and "sku '000123'" in lines[0] and "new_cents: must be more than 0 cents" in lines[0]
    assert not db.exists() or _outbox(db) == {}


# -- label ids -------------------------------------------------------------------------------------

RULE = "has a character other than A-Z a-z 0-9 . _ -"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        pytest.param("L#1,store-001,gw-1,000124,2.9", f"label_id {RULE}: 'L#1'", id="hash"),
        pytest.param("L+1,store-001,gw-1,000124,2.9", f"label_id {RULE}: 'L+1'", id="plus"),
        pytest.param("L\x001,store-001,gw-1,000124,2.9", f"label_id {RULE}: 'L\\x001'", id="nul"),
        pytest.param("L" + "1" * 64 + ",store-001,gw-1,000124,2.9",
                     "label_id is 65 characters long, at most 64 allowed: 'L" + "1" * 64 + "'", id="65-chars"),
        pytest.param("L2,store-001,gw/1,000124,2.9", f"gateway {RULE}: 'gw/1'", id="gateway-slash"),
    ],
)
def test_a_label_id_that_is_not_a_topic_level_is_one_file_line_and_the_push_goes_on(
    tmp_path: Path, mqtt_broker, row: str, reason: str
) -> None:
    data = _data(tmp_path / "data", ["000123,Tea,snacks,Leaf,1,pc,95,199", "000124,Cake,snacks,Leaf,1,pc,100,199"],
                 ["L000123,store-001,gw-1,000123,2.9", row])
    db = tmp_path / "engine.db"
    with _labels(mqtt_broker, [("L000123", "gw-1", "000123")]) as prefix:
        code, _, err = run("outbox", "sync", "--data", str(data), "--db", str(db), "--broker",
                           mqtt_broker.address.url, "--prefix", prefix, "--deadline", "20")
    assert code == 0, err  # no crash, no reconnect storm: the good label is confirmed
    assert "Traceback" not in err and "wildcard" not in err.lower()
    rejected = [line.strip() for line in err.splitlines() if line.strip().startswith("labels.csv:")]
    assert rejected == [f"labels.csv:3: {reason}"]
    assert "\x00" not in err
    rows = _outbox(db)
    assert list(rows) == ["L000123"] and rows["L000123"].state == "confirmed"
