"""`esl-pricing chain train|plan`: a chain's nightly work at head office (pricing/plan/chain.py).

`train` fits every store and saves the chain's model; `plan` (with --models, or training first)
trains every store on its own sales, pools the elasticities store -> zone -> chain, plans every
zone, writes one plan per zone and, with ``--publish``, sends each store its zone's plan over
MQTT (pricing/store/plan_publish.py; the bridge carries it to the store: docs/chain-bridge.md).
Without ``--scheduler`` the work runs on a LocalCluster of ``--workers`` processes on this
machine (``--workers 0``: in this process, no Dask); with ``--scheduler tcp://HOST:8786`` on an
existing Dask cluster. Progress and the dashboard's address go to stderr; ``--json`` prints one
JSON object as the last line of stdout.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from label_gateway.protocol import DEFAULT_PREFIX
from pricing.cli.common import (
    DEFAULT_KEYS,
    JsonOption,
    KeysOption,
    PrefixOption,
    RulesOption,
    command_group,
    emit_json,
    err,
    fail,
    load_rules_or_fail,
    signer_or_fail,
    user_errors,
)

chain_app = command_group("A chain of stores: train, pool and plan every zone at head office, on Dask.")


def register(app: typer.Typer) -> None:
    app.add_typer(chain_app, name="chain")


def _client_for(scheduler: str | None, workers: int) -> tuple[Any, Any]:
    from pricing.plan.chain import open_client

    if not (scheduler or workers > 0):
        return None, None
    try:
        return open_client(scheduler, workers=workers, say=lambda m: err.print(m, highlight=False))
    except OSError as exc:
        fail(f"Dask scheduler {scheduler}: {exc}", code=1)


def _close(client: Any, cluster: Any) -> None:
    if client is not None:
        client.close()
    if cluster is not None:
        cluster.close()


SchedulerOption = Annotated[
    str | None, typer.Option(help="An existing Dask cluster's scheduler, tcp://HOST:8786 (default: a LocalCluster here).")
]
WorkersOption = Annotated[int, typer.Option(min=0, max=256, help="LocalCluster worker processes (0: no Dask).")]


@chain_app.command("train")
def chain_train(
    data: Annotated[Path, typer.Option(help="The chain's data directory (stores.csv, products.csv, sales/ ...).")],
    out: Annotated[Path, typer.Option(help="Folder for the chain's model: <store>.joblib and chain_card.json.")] = Path(
        "chain-models"
    ),
    scheduler: SchedulerOption = None,
    workers: WorkersOption = 2,
    as_json: JsonOption = False,
) -> None:
    """Train every store on its own sales and pool the elasticities store -> zone -> chain."""
    from pricing.plan.chain import save_chain_models, train_chain

    if not data.is_dir():
        fail(f"{data}: no such chain directory", code=2)
    with user_errors():
        client, cluster = _client_for(scheduler, workers)
        try:
            run = train_chain(data, client=client, progress=lambda m: err.print(f"  {m}", highlight=False))
        finally:
            _close(client, cluster)
        card = save_chain_models(run, out)
    summary = json.loads(card.read_text(encoding="utf-8")) | {"seconds": round(run.seconds, 2), "card": str(card)}
    err.print(f"chain model {out}: {summary['stores']} stores, {summary['zones']} zones in {summary['seconds']} s")
    if as_json:
        emit_json(summary)


@chain_app.command("plan")
def chain_plan(
    data: Annotated[Path, typer.Option(help="The chain's data directory (stores.csv, products.csv, sales/ ...).")],
    out: Annotated[Path, typer.Option(help="Folder for the zone plans (one sub-folder per zone) and the chain card.")] = Path(
        "chain-plans"
    ),
    rules: RulesOption = None,
    models: Annotated[
        Path | None, typer.Option(help="A chain model from esl-pricing chain train (default: train first).")
    ] = None,
    scheduler: SchedulerOption = None,
    workers: WorkersOption = 2,
    publish: Annotated[
        str | None,
        typer.Option(help="Head office's broker, mqtt://HOST:PORT: publish each store its zone's plan, signed and "
                     "retained (the stores' bridges carry it on; docs/chain-bridge.md)."),
    ] = None,
    prefix: PrefixOption = DEFAULT_PREFIX,
    keys: KeysOption = DEFAULT_KEYS,
    as_json: JsonOption = False,
) -> None:
    """Train every store, pool store -> zone -> chain, and plan every zone of the chain."""
    from label_gateway.broker import BrokerAddress
    from pricing.plan.chain import load_chain_models, run_chain, store_plans
    from pricing.store.plan_publish import publish_store_plans

    config = load_rules_or_fail(rules)
    if not data.is_dir():
        fail(f"{data}: no such chain directory", code=2)
    address = None
    signer = None
    if publish is not None:
        with user_errors():
            address = BrokerAddress.parse(publish)
        signer = signer_or_fail(keys)
    with user_errors():
        trained = load_chain_models(models) if models is not None else None
        client, cluster = _client_for(scheduler, workers)
        try:
            run = run_chain(
                data, config, now=datetime.now(UTC), client=client, trained=trained,
                progress=lambda m: err.print(f"  {m}", highlight=False),
            )
        finally:
            _close(client, cluster)
    written = {}
    for zone, plan in sorted(run.plans.items()):
        json_path, _csv = plan.write(out / zone)
        written[zone] = str(json_path)
        err.print(f"zone {zone}: {len(plan.changes)} changes, {len(plan.awaiting_approval)} awaiting approval -> {json_path}")
    published: dict[str, str] = {}
    if address is not None and signer is not None:
        from pricing.core.chain_data import chain_zones, load_stores

        with user_errors():
            zones = chain_zones(load_stores(data))
            sent = publish_store_plans(address, prefix, store_plans(run, zones), signer)
        published = {store: str(info["plan_id"]) for store, info in sorted(sent.items())}
        err.print(f"published {len(published)} store plans on {address.url} ({prefix}/chain/<store>/plan, retained)")
    card = out / "chain_card.json"
    card.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        **run.pooling.card(),
        "seconds": round(run.seconds, 2),
        "train_seconds": round(sum(c.seconds for c in run.train_costs), 2),
        "plan_seconds": round(sum(c.seconds for c in run.plan_costs), 2),
        "peak_worker_rss_mb": round(run.peak_worker_rss_mb, 1),
        "plans": written,
        "published": published,
    }
    card.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    err.print(f"chain: {summary['stores']} stores, {summary['zones']} zones in {summary['seconds']} s; card {card}")
    if as_json:
        emit_json(summary)
