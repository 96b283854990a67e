"""The chain's nightly work: the same plans in one process and on 1 or 2 Dask workers, every
zone planned from its own stores, and `esl-pricing chain plan`."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from pricing.cli.app import app
from pricing.plan.chain import ChainRun, open_client, run_chain
from pricing.rules.config import RulesConfig
from simulator.chain import generate_chain

NOW = datetime(2026, 11, 17, 3, 0, tzinfo=UTC)


@lru_cache(maxsize=1)
def chain_dir() -> Path:
    import tempfile

    out = Path(tempfile.mkdtemp(prefix="esl-chain-test-")) / "chain"
    generate_chain(out, stores=4, skus=800, zones=2, seed=3, days=120)  # categories above 60 SKUs: log-log only, fast
    return out


@lru_cache(maxsize=1)
def single() -> ChainRun:
    return run_chain(chain_dir(), RulesConfig(), now=NOW)


def test_every_zone_is_planned_from_its_own_stores() -> None:
    run = single()
    stores = json.loads((chain_dir() / "truth_chain.json").read_text())  # the generator's truth
    assert set(run.plans) == {"z01", "z02"}
    assert len(run.models) == 4 and len(run.train_costs) == 4 and len(run.plan_costs) == 2
    for zone, plan in run.plans.items():
        assert plan.store == zone
        assert len(plan.lines) == 800
    assert run.pooling.stores == 4 and run.pooling.zones == 2
    assert stores  # the truth file is there (evaluations read it)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_plan_is_the_same_whatever_the_number_of_workers(workers: int) -> None:
    client, cluster = open_client(None, workers=workers)
    try:
        spread = run_chain(chain_dir(), RulesConfig(), now=NOW, client=client)
    finally:
        client.close()
        cluster.close()
    assert spread.zone_prices() == single().zone_prices()
    assert sorted(spread.models) == sorted(single().models)
    for store, model in spread.models.items():  # equal to rounding: BLAS sums in another order on a worker
        np.testing.assert_allclose(model.elasticity_, single().models[store].elasticity_, rtol=1e-9)


def test_chain_plan_command_writes_a_plan_per_zone_and_the_card(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["chain", "plan", "--data", str(chain_dir()), "--out", str(tmp_path), "--rules", "example",
              "--workers", "0", "--json"],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["stores"] == 4 and summary["zones"] == 2
    assert sorted(summary["plans"]) == ["z01", "z02"]
    assert all(Path(p).is_file() for p in summary["plans"].values())
    assert json.loads((tmp_path / "chain_card.json").read_text())["zones"] == 2


def test_a_missing_chain_directory_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["chain", "plan", "--data", str(tmp_path / "nope"), "--rules", "example"])
    assert result.exit_code == 2
    assert "no such chain directory" in result.output


def test_chain_plan_publishes_each_store_its_zones_plan(tmp_path: Path, mqtt_broker, topics) -> None:  # noqa: ANN001
    from label_gateway.broker import clear_retained
    from label_gateway.plan_channel import ChainTopics
    from label_gateway.signing import KeyDirectory

    keys = tmp_path / "keys"
    KeyDirectory(keys).create()
    result = CliRunner().invoke(
        app, ["chain", "plan", "--data", str(chain_dir()), "--out", str(tmp_path / "plans"), "--rules", "example",
              "--workers", "0", "--publish", mqtt_broker.address.url, "--prefix", topics.prefix, "--keys", str(keys),
              "--json"],
    )
    try:
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert sorted(summary["published"]) == ["s001", "s002", "s003", "s004"]
        zone_plan = {zone: Path(path).stem for zone, path in summary["plans"].items()}
        zone_of = {s: z for z, stores in single_zones().items() for s in stores}
        for store, plan_id in summary["published"].items():
            assert plan_id == f"{zone_plan[zone_of[store]]}-{store}"
        assert ChainTopics(topics.prefix).plan("s001").startswith(topics.prefix)
    finally:
        clear_retained(mqtt_broker.address, f"{topics.prefix}/#", settle_s=0.3)


def single_zones() -> dict[str, list[str]]:
    from pricing.core.chain_data import chain_zones, load_stores

    return chain_zones(load_stores(chain_dir()))


def test_chain_train_then_plan_with_the_saved_models(tmp_path: Path) -> None:
    runner = CliRunner()
    trained = runner.invoke(app, ["chain", "train", "--data", str(chain_dir()), "--out", str(tmp_path / "m"),
                                  "--workers", "0", "--json"])
    assert trained.exit_code == 0, trained.output
    card = json.loads(trained.stdout.strip().splitlines()[-1])
    assert card["store_models"] == ["s001", "s002", "s003", "s004"]
    assert (tmp_path / "m" / "s001.joblib").is_file()
    planned = runner.invoke(app, ["chain", "plan", "--data", str(chain_dir()), "--models", str(tmp_path / "m"),
                                  "--out", str(tmp_path / "p"), "--rules", "example", "--workers", "0", "--json"])
    assert planned.exit_code == 0, planned.output
    plans = json.loads(planned.stdout.strip().splitlines()[-1])["plans"]
    at_once = runner.invoke(app, ["chain", "plan", "--data", str(chain_dir()), "--out", str(tmp_path / "q"),
                                  "--rules", "example", "--workers", "0", "--json"])
    assert at_once.exit_code == 0, at_once.output
    fresh = json.loads(at_once.stdout.strip().splitlines()[-1])["plans"]
    from pricing.plan.plan_files import read_plan

    def prices(path: str) -> dict[str, int]:
        return {line.sku: line.new_cents for line in read_plan(Path(path)).lines}

    for zone, path in plans.items():  # the saved models plan as training and planning in one go
        assert prices(path) == prices(fresh[zone])
    missing = runner.invoke(app, ["chain", "plan", "--data", str(chain_dir()), "--models", str(tmp_path / "none"),
                                  "--rules", "example", "--workers", "0"])
    assert missing.exit_code == 2 and "no chain model" in missing.output
