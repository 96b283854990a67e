"""A chain's train + plan on one process and on a 2-worker Dask LocalCluster, in one run.

    python benchmarks/chain_bench.py --stores 40 --skus 2000 --json

Generates a chain (esl-pricing simulate generate-chain) into a temporary directory, runs
pricing.plan.chain.run_chain twice (no client, its BLAS held to one thread, then a LocalCluster
of ``--workers`` one-thread processes, whose BLAS Dask holds to one thread too), and prints one JSON line: stores, skus, store_skus, single_seconds, dask_seconds,
speedup, plans_identical (every zone's shelf prices equal in both runs), store_skus_per_core_s
(store-SKUs trained and planned per second on one core, from the single-process run),
peak_worker_rss_mb (the largest peak RSS of a worker process over the Dask run's tasks),
generate_seconds. Issue 19's bars on the 2-core machine: plans_identical, speedup >= 1.6,
peak_worker_rss_mb <= 1500.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stores", type=int, default=40)
    parser.add_argument("--skus", type=int, default=2000)
    parser.add_argument("--zones", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON line last")
    args = parser.parse_args()

    from pricing.plan.chain import open_client, run_chain
    from pricing.rules.config import RulesConfig
    from simulator.chain import generate_chain

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    now = datetime(2026, 11, 17, 3, 0, tzinfo=UTC)
    rules = RulesConfig()
    with tempfile.TemporaryDirectory(prefix="esl-chain-bench-") as tmp:
        data = Path(tmp) / "chain"
        t = time.perf_counter()
        generate_chain(data, stores=args.stores, skus=args.skus, zones=args.zones, seed=args.seed)
        generate_seconds = time.perf_counter() - t
        say(f"generated {args.stores} stores x {args.skus} SKUs in {generate_seconds:.1f} s")

        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):  # one core, as each Dask worker (one thread, its BLAS too)
            single = run_chain(data, rules, now=now, progress=None)
        say(f"one process: {single.seconds:.1f} s")
        client, cluster = open_client(None, workers=args.workers, say=say)
        try:
            spread = run_chain(data, rules, now=now, client=client, progress=None)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
        say(f"{args.workers} workers: {spread.seconds:.1f} s")

    store_skus = args.stores * args.skus
    summary = {
        "stores": args.stores,
        "skus": args.skus,
        "zones": len(single.plans),
        "store_skus": store_skus,
        "workers": args.workers,
        "single_seconds": round(single.seconds, 2),
        "dask_seconds": round(spread.seconds, 2),
        "speedup": round(single.seconds / spread.seconds, 3),
        "plans_identical": single.zone_prices() == spread.zone_prices(),
        "store_skus_per_core_s": round(store_skus / single.seconds, 1),
        "peak_worker_rss_mb": round(spread.peak_worker_rss_mb, 1),
        "generate_seconds": round(generate_seconds, 2),
        "tau_store": round(single.pooling.tau_store, 4),
        "tau_zone": round(single.pooling.tau_zone, 4),
    }
    print(json.dumps(summary, sort_keys=True) if args.json else summary)


if __name__ == "__main__":
    main()
