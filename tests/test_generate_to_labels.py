"""Out of the box, end to end: `esl-pricing simulate generate` -> the shipped config/engine.yaml and
config/rules.yaml, unedited -> simulated gateways and labels on the real broker -> `esl-pricing
daemon --run-job nightly-reprice` -> exit 0 and every label it pushed to confirmed, showing the plan.

The shipped configs' paths are relative to their folder, so copying config/engine.yaml and
config/rules.yaml into <tmp>/config/ points data_dir, model_dir, plans_dir, the database and the
signing keys into <tmp>. The only line that may differ is the broker's, when the test broker is not
the shipped 127.0.0.1:1883 (a Mosquitto started on a free port)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from label_gateway.broker import clear_retained
from label_gateway.outbox import Outbox
from label_gateway.protocol import Topics
from label_gateway.signing import KEYS_ENV, KeyDirectory
from pricing.core.database import open_engine
from pricing.core.store_data import load_store
from pricing.plan.price_plan import PricePlan
from pricing.store.engine_config import DATABASE_ENV, load_engine_config
from simulator.gateways import GatewayOptions, SimulatedGateways

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

REPO = Path(__file__).resolve().parents[1]
SHIPPED_BROKER = "mqtt://127.0.0.1:1883"


def _cli(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """esl-pricing as a user runs it, without the test session's key and database overrides."""
    env = {k: v for k, v in os.environ.items() if k not in (KEYS_ENV, DATABASE_ENV)}
    return subprocess.run(
        [sys.executable, "-m", "pricing.cli", *args], check=False, capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env
    )


def _copy_shipped_configs(config_dir: Path, broker_url: str) -> None:
    config_dir.mkdir()
    shutil.copy(REPO / "config" / "rules.yaml", config_dir / "rules.yaml")
    text = (REPO / "config" / "engine.yaml").read_text(encoding="utf-8")
    assert f"broker: {SHIPPED_BROKER} " in text
    if broker_url != SHIPPED_BROKER:
        text = text.replace(f"broker: {SHIPPED_BROKER} ", f"broker: {broker_url} ", 1)
    (config_dir / "engine.yaml").write_text(text, encoding="utf-8")


def test_generate_then_shipped_configs_then_nightly_reprice_confirms_every_label(mqtt_broker, tmp_path: Path) -> None:
    config_dir, data = tmp_path / "config", tmp_path / "data"
    _copy_shipped_configs(config_dir, mqtt_broker.address.url)
    settings = load_engine_config(config_dir / "engine.yaml")
    frozen = settings.calendar.frozen(datetime.now(UTC) + timedelta(minutes=10))  # now, or within the test's run
    if frozen or settings.calendar.frozen(datetime.now(UTC)):
        pytest.skip(f"the shipped calendar freezes prices now ({frozen}): the job would rightly push nothing")

    done = _cli("simulate", "generate", "--out", str(data), "--skus", "300", "--days", "180", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["store"] == settings.store  # one store id, out of the box
    assert settings.resolve("data_dir", config_dir) == data.resolve()  # the shipped ../data, from config/
    done = _cli("keys", "create", "--keys", str(config_dir / "keys"), cwd=tmp_path)  # as config/engine.yaml says
    assert done.returncode == 0, done.stderr

    store = load_store(data)
    assert store.store_id == settings.store
    topics = Topics(store.store_id, prefix=settings.prefix)  # what `simulate run --data data/` listens on
    clear_retained(mqtt_broker.address, f"{settings.prefix}/{store.store_id}/#", settle_s=0.3)
    options = GatewayOptions(trusted_keys=KeyDirectory(config_dir / "keys").trusted())
    try:
        with SimulatedGateways(mqtt_broker.address, topics, store.label_rows(), options=options) as gateways:
            done = _cli("daemon", "--config", str(config_dir / "engine.yaml"), "--run-job", "nightly-reprice", "--json",
                        cwd=tmp_path)
            displayed = gateways.displayed()
    finally:
        clear_retained(mqtt_broker.address, f"{settings.prefix}/{store.store_id}/#", settle_s=0.3)

    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["result"] == "ok", result
    assert result["pushed_labels"] > 0, "the sample store must give the optimizer something to change"
    assert result["failed"] == 0 and result["waiting"] == 0, result
    assert result["confirmed"] == result["pushed_labels"], result

    outbox = Outbox(open_engine(settings.database_target(config_dir)), settings.store)
    rows = outbox.rows()
    assert rows and {row.state for row in rows} == {"confirmed"}
    plan = PricePlan.read(settings.resolve("plans_dir", config_dir) / f"{result['plan']}.json")
    assert plan.inputs is not None and plan.inputs.rules is not None
    assert Path(plan.inputs.rules.path) == (config_dir / "rules.yaml").resolve()
    prices = plan.new_prices()
    pushed = [(label, sku) for label, _gateway, sku in store.label_rows() if sku in prices]
    assert len(pushed) == result["pushed_labels"]
    for label, sku in pushed:
        assert displayed[label].price_cents == prices[sku], label
