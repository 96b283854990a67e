"""Engine -> real broker -> simulated gateways -> acks, the whole loop (the foundation's promise)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from label_gateway.protocol import Topics
from pricing.store.demo import DemoOptions, run_demo

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[1]


def test_every_changed_label_is_confirmed_and_shows_the_plan_price(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    options = DemoOptions(
        workdir=tmp_path, skus=400, seed=11, broker_url=mqtt_broker.address.url,
        rules_path=REPO / "config" / "rules.yaml", prefix=topics.prefix,
    )
    result = run_demo(options)
    changes = result.plan.new_prices()
    assert changes, "the sample store must give the optimizer something to change"
    labels_of_changed = [row for row in result.store.label_rows() if row[2] in changes]
    assert len(result.delivery.confirmed) == len(labels_of_changed)
    assert not result.delivery.failed
    for label_id, _gateway, sku in labels_of_changed:
        assert result.displayed[label_id].price_cents == changes[sku], label_id
    # Every label was first given today's price (the shelf sync), except those of SKUs with no cost on
    # record, which the last gate holds (their labels stay blank); labels of unchanged SKUs keep it.
    held = {h.sku for h in result.held}
    assert held and all("cost" in h.reason for h in result.held)
    synced = [row for row in result.store.label_rows() if row[2] not in held]
    assert len(result.synced.confirmed) == len(synced) and not result.synced.failed
    today = dict(zip(result.store.products["sku"].astype(str), result.store.products["price_cents"], strict=True))
    for label_id, _gateway, sku in synced:
        if sku not in changes:
            assert result.displayed[label_id].price_cents == today[sku], label_id
    assert not any(label_id in result.displayed for label_id, _, sku in result.store.label_rows() if sku in held)
    # Held SKUs kept their price and carry a reason.
    assert all(line.new_cents == line.old_cents and line.explanation for line in result.plan.held)


def test_demo_command_json_contract(mqtt_broker, topics: Topics, tmp_path: Path) -> None:
    """The README's demo, as a user runs it (console script, --json), against the test broker."""
    command = [
        sys.executable, "-m", "pricing.cli", "demo", "--json", "--skus", "300",
        "--broker", mqtt_broker.address.url, "--prefix", topics.prefix, "--workdir", str(tmp_path / "demo"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("skus", "changed", "labels_confirmed", "labels_failed", "expected_profit_delta_pct", "seconds"):
        assert key in summary
    assert summary["skus"] == 300
    assert summary["changed"] > 0
    assert summary["labels_confirmed"] == summary["changed"]
    assert summary["labels_failed"] == 0
    assert summary["expected_profit_delta_pct"] >= 0
