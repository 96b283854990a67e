"""Train the demand model on a generated store: seconds and peak memory, load included.

    python benchmarks/train_bench.py --skus 50000 --days 365 --json

The store is generated in a subprocess (its memory is not counted). This process then does what
``esl-pricing train`` does: load and validate products and sales, fit once on all but the last
28 days for the holdout metrics, and fit again on everything. Peak RSS is ``ru_maxrss`` of this
process (interpreter and libraries included). With ``--json`` the last stdout line is a JSON
object: skus, days, rows, seconds (load + training), load_seconds, train_seconds, peak_rss_mb,
wape, wape_baseline.
"""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))

from load_bench import store_arguments, store_directory


def measure(directory: Path) -> dict[str, float]:
    from pricing.core.store_data import load_store
    from pricing.demand.training import train_demand_model

    started = time.perf_counter()
    store = load_store(directory)
    loaded = time.perf_counter()
    print(f"loaded {len(store.sales):,} rows in {loaded - started:.1f}s", file=sys.stderr)
    result = train_demand_model(
        store.sales, store.products, progress=lambda msg: print(f"  {msg}", file=sys.stderr, flush=True)
    )
    done = time.perf_counter()
    return {
        "rows": len(store.sales),
        "seconds": round(done - started, 2),
        "load_seconds": round(loaded - started, 2),
        "train_seconds": round(done - loaded, 2),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "wape": round(result.metrics["wape"], 4),
        "wape_baseline": round(result.metrics["baseline_wape"], 4),
    }


def main(argv: list[str] | None = None) -> int:
    args = store_arguments(__doc__.splitlines()[0]).parse_args(argv)
    with store_directory(args, "train-bench-") as (directory, size):
        result = {**size, **measure(directory)}
    if args.json:
        print(json.dumps(result))
    else:
        print(
            f"train: {result['rows']:,} rows, {result['seconds']:.1f}s (load {result['load_seconds']:.1f}s), "
            f"peak RSS {result['peak_rss_mb']:.0f} MB, WAPE {result['wape']:.3f} vs {result['wape_baseline']:.3f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
