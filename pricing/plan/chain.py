"""A chain's nightly work: train every store, pool store -> zone -> chain, plan every zone.

In: a chain directory (pricing.core.chain_data's contract), the rules, and where to run: one
process (``client=None``) or a Dask distributed client (a ``LocalCluster`` on this machine, or an
existing cluster's scheduler). Out: ``ChainRun``: the pooled per-store models, the pooling
summary, one plan per zone (every store of a zone shares its prices) and what each task cost.

What moves where: each training task reads only its own store's sales partition (never the
chain's history in one process) and returns the fitted model, a few hundred kB; pooling needs
only the models' elasticities; each planning task gets its zone's store models. The results do
not depend on how many workers run them: every task is a pure function of its inputs, and the
order of stores and zones is sorted, not the order tasks finish in.
"""

from __future__ import annotations

import json
import resource
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from pricing.core.chain_data import ChainData, read_store_sales
from pricing.core.data import DataError
from pricing.demand.chain_model import ChainPooling, pool_chain
from pricing.demand.model import DemandModel
from pricing.demand.training import train_demand_model
from pricing.plan.price_plan import PricePlan
from pricing.plan.zone_cycle import run_zone_cycle
from pricing.rules.config import RulesConfig

Progress = Callable[[str], None]


@dataclass
class TaskCost:
    """One task: what it did, how long it took, the peak RSS of the process that ran it."""

    key: str
    seconds: float
    peak_rss_mb: float
    rows: int = 0


@dataclass
class ChainRun:
    models: dict[str, DemandModel]  # store -> pooled model
    pooling: ChainPooling
    plans: dict[str, PricePlan] = field(default_factory=dict)  # zone -> plan
    train_costs: list[TaskCost] = field(default_factory=list)
    plan_costs: list[TaskCost] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def peak_worker_rss_mb(self) -> float:
        return max((c.peak_rss_mb for c in [*self.train_costs, *self.plan_costs]), default=0.0)

    def zone_prices(self) -> dict[str, dict[str, int]]:
        """zone -> sku -> the price the plan puts on the shelf (proposed or kept)."""
        return {zone: {line.sku: line.new_cents for line in plan.lines} for zone, plan in sorted(self.plans.items())}


def store_plans(run: ChainRun, zones: Mapping[str, list[str]]) -> dict[str, PricePlan]:
    """Each store's plan: its zone's plan under the store's id (and a plan id of its own, the
    zone plan's with the store appended, so the store's files and acks name it)."""
    out: dict[str, PricePlan] = {}
    for zone, plan in sorted(run.plans.items()):
        for store in sorted(zones[zone]):
            out[store] = plan.model_copy(update={"store": store, "plan_id": f"{plan.plan_id}-{store}"})
    return out


def train_store(data_dir: str, store: str, products: pd.DataFrame) -> tuple[str, DemandModel, TaskCost]:
    """Fit one store's model on its own sales partition (a Dask task: plain data in and out)."""
    started = time.perf_counter()
    sales = read_store_sales(Path(data_dir), [store], known=set(products["sku"].astype(str)))
    result = train_demand_model(sales, products, holdout_days=0)
    cost = TaskCost(f"train-{store}", time.perf_counter() - started, _peak_rss_mb(), rows=result.n_rows)
    return store, result.model, cost


def plan_zone(
    zone: str,
    models: Mapping[str, DemandModel],
    products: pd.DataFrame,
    rules: RulesConfig,
    zone_prices: pd.DataFrame,
    now: datetime,
    zones: list[str],
) -> tuple[str, PricePlan, TaskCost]:
    """Plan one zone from its stores' pooled models (a Dask task)."""
    started = time.perf_counter()
    plan = run_zone_cycle(zone, dict(models), products, rules, zone_prices, now=now, zones=zones, check_scopes=False)
    return zone, plan, TaskCost(f"plan-{zone}", time.perf_counter() - started, _peak_rss_mb())


def run_chain(
    data_dir: Path,
    rules: RulesConfig,
    *,
    now: datetime,
    client: Any | None = None,
    progress: Progress | None = None,
    trained: ChainRun | None = None,
) -> ChainRun:
    """Train, pool and plan a chain; on ``client`` (dask.distributed.Client) or in this process.
    With ``trained`` (a ``train_chain`` result, e.g. ``load_chain_models``) only plan."""
    started = time.perf_counter()
    chain = ChainData.load(data_dir, require_labels=False)
    rules.check_scopes(chain.products, zones=list(chain.zones))  # FILE:LINE for a name that matches nothing
    run = trained if trained is not None else train_chain(data_dir, client=client, progress=progress, chain=chain)
    missing = sorted({s for stores in chain.zones.values() for s in stores} - set(run.models))
    if missing:
        raise DataError(f"no trained model for store(s) {', '.join(missing)}: run esl-pricing chain train again")
    say = progress or (lambda _m: None)
    zones = sorted(chain.zones)
    args = [
        (zone, {s: run.models[s] for s in chain.zones[zone]}, chain.products, rules, chain.zone_prices, now, zones)
        for zone in zones
    ]
    plans: dict[str, PricePlan] = {}
    plan_costs: list[TaskCost] = []
    for zone, plan, cost in _map(client, plan_zone, args, keys=[f"plan-{z}" for z in zones], broadcast=(2, 3, 4, 6)):
        plans[zone] = plan
        plan_costs.append(cost)
        say(f"zones planned: {len(plans)}/{len(zones)}")
    return ChainRun(
        models=run.models, pooling=run.pooling, plans=plans, train_costs=run.train_costs,
        plan_costs=sorted(plan_costs, key=lambda c: c.key), seconds=time.perf_counter() - started,
    )


def train_chain(
    data_dir: Path, *, client: Any | None = None, progress: Progress | None = None, chain: ChainData | None = None
) -> ChainRun:
    """Train every store on its own sales and pool store -> zone -> chain (no plans yet)."""
    say = progress or (lambda _m: None)
    started = time.perf_counter()
    chain = chain if chain is not None else ChainData.load(data_dir, require_labels=False)
    zone_of = {store: zone for zone, stores in chain.zones.items() for store in stores}
    stores = sorted(zone_of)
    say(f"training {len(stores)} stores in {len(chain.zones)} zones")
    trained: dict[str, DemandModel] = {}
    train_costs: list[TaskCost] = []
    for store, model, cost in _map(client, train_store, [(str(data_dir), s, chain.products) for s in stores],
                                    keys=[f"train-{s}" for s in stores], broadcast=(2,)):
        trained[store] = model
        train_costs.append(cost)
        say(f"stores trained: {len(trained)}/{len(stores)}")
    models, _, pooling = pool_chain(trained, zone_of)
    say(f"pooled: tau_store {pooling.tau_store:.3f}, tau_zone {pooling.tau_zone:.3f}")
    return ChainRun(
        models=models, pooling=pooling, train_costs=sorted(train_costs, key=lambda c: c.key),
        seconds=time.perf_counter() - started,
    )


def save_chain_models(run: ChainRun, directory: Path) -> Path:
    """The chain's model artifact: ``<store>.joblib`` per store and ``chain_card.json`` (the
    pooling summary, the stores and what training cost). Returns the card's path."""
    import joblib

    directory.mkdir(parents=True, exist_ok=True)
    for store, model in sorted(run.models.items()):
        joblib.dump(model, directory / f"{store}.joblib")
    card = {
        **run.pooling.card(),
        "store_models": sorted(run.models),
        "train_seconds": round(sum(c.seconds for c in run.train_costs), 2),
        "rows": sum(c.rows for c in run.train_costs),
    }
    path = directory / "chain_card.json"
    path.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def load_chain_models(directory: Path) -> ChainRun:
    """What save_chain_models wrote (plans empty): DataError (one line) when it is not there."""
    import joblib

    card_path = directory / "chain_card.json"
    if not card_path.is_file():
        raise DataError(f"{directory}: no chain model (chain_card.json); run esl-pricing chain train first")
    card = json.loads(card_path.read_text(encoding="utf-8"))
    models = {store: joblib.load(directory / f"{store}.joblib") for store in card["store_models"]}
    pooling = ChainPooling(
        tau_store=float(card["tau_store"]), tau_zone=float(card["tau_zone"]), chain=pd.Series(dtype=float),
        zone=pd.DataFrame(), stores=int(card["stores"]), zones=int(card["zones"]), skus=int(card["skus"]),
        notes=list(card.get("notes", [])),
    )
    return ChainRun(models=models, pooling=pooling)


def _map(
    client: Any | None, func: Callable[..., Any], args: list[tuple[Any, ...]], *, keys: list[str],
    broadcast: tuple[int, ...] = (),
) -> Any:
    """Yield ``func(*a)`` for each ``a``: in this process, or as Dask tasks as they finish.

    ``broadcast``: positions of arguments that are the same object in every call (products,
    rules): scattered once to every worker instead of once per task."""
    if client is None:
        for a in args:
            yield func(*a)
        return
    from distributed import as_completed

    shared: dict[int, Any] = {}
    for pos in broadcast:
        if args:
            shared[pos] = client.scatter(args[0][pos], broadcast=True, hash=False)
    futures = [
        client.submit(func, *[shared.get(i, value) for i, value in enumerate(a)], key=f"{key}-{time.time_ns()}", pure=False)
        for key, a in zip(keys, args, strict=True)
    ]
    for future in as_completed(futures):
        yield future.result()


def _peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


#: The environment of a LocalCluster's workers: one thread for BLAS and OpenMP (as Dask's default),
#: but not Dask's default MALLOC_TRIM_THRESHOLD_=65536: setting it turns off glibc's adaptive mmap
#: threshold, so every numpy array above 128 kB is an mmap/munmap and its pages fault in afresh;
#: a store's training then took 1.8-2.0 s on a worker against 1.0-1.2 s in a plain process, and
#: two workers were no faster than one process (measured: 43.7 s against 44.1 s for 40 stores).
#: A cluster started elsewhere (--scheduler) should set its workers' environment the same way.
WORKER_ENVIRON = {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1, "OPENBLAS_NUM_THREADS": 1}


def open_client(scheduler: str | None, *, workers: int = 2, say: Progress | None = None) -> tuple[Any, Any]:
    """A Dask client: on ``scheduler`` (``tcp://HOST:8786``, an existing cluster) or on a new
    LocalCluster of ``workers`` one-thread worker processes. Returns (client, cluster or None);
    close both when done. The dashboard's address is said."""
    import dask
    from distributed import Client, LocalCluster

    cluster = None
    if scheduler:
        client = Client(scheduler, timeout="10s")
    else:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": WORKER_ENVIRON}):
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = Client(cluster)
    client.run(_import_engine)  # each worker imports the engine once, before the first task
    if say is not None:
        say(f"Dask dashboard: {client.dashboard_link}")
    return client, cluster


def _import_engine() -> None:
    import pricing.plan.chain  # noqa: F401  (and with it the demand model, the rules, the optimizer)
