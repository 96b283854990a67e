"""Time the decomposed price optimizer against one CP-SAT model of the same synthetic store.

    python benchmarks/optimizer_bench.py --skus 20000 --json
    python benchmarks/optimizer_bench.py --skus 50000 --skip-monolithic --json

The store is built deterministically from ``--seed``: 20 candidate prices per SKU (ascending
cents on .x9 endings, steps of about 2.5% around today's price, which is a candidate for about
92% of SKUs), scores = expected profit per day from a log-log demand (elasticity -1.2..-3.5,
unit cost 60-85% of today's price), rounded to 1/SCALE cent so both optimizers see exactly the
same integer problem. Links (hard unless said): price families (10% of SKUs, 2-4 members
sharing one grid and today's price, linked as a chain), size ladders (about 10% of SKUs, chains
of 2-3 packs, each twice the previous size on a grid 1.7x as high, so the ladder can hold),
brand tiers (about 5% of SKUs: private label on its national reference's grid lowered by about
15% of today's national price, gap 10%), 10% of all links soft (penalty 0.20-2.00 per day). A hard change budget of
``--budget-share`` of the SKUs. ``--cyclic-families S`` closes a share S of the families of 3-4
into a ring (what linking every pair of a family would also do): those groups have a cycle and
go to CP-SAT instead of the tree DP.

In one run the instance is solved by ``PriceOptimizer`` (default ``SolverConfig``) and by
``MonolithicOptimizer`` (time limit ``--monolithic-limit``, 2 workers); each is timed with the
model build included (``time.perf_counter`` around construction + solve). Progress goes to
stderr. With ``--json`` the last stdout line is a JSON object: skus, engine_seconds,
monolithic_seconds, speedup, gap_pct, engine_objective, monolithic_objective, monolithic_bound,
monolithic_status, engine_status, engine_bound, changes, budget. ``gap_pct`` is
(best proven bound - engine objective) / |best proven bound| x 100, the best proven bound being
the lower of the engine's bound and the monolithic bound (the latter only when the monolithic
model found a plan). Objectives and bounds are in cents per day. Monolithic fields are null with
``--skip-monolithic``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pricing.optimize.monolithic import MonolithicOptimizer
from pricing.optimize.optimizer import (
    SCALE,
    ChangeBudget,
    Links,
    OptimizerInstance,
    PriceOptimizer,
)
from pricing.rules.config import SolverConfig

K = 20
PRIORITY = {"family": 45, "ladder": 40, "tier": 30}  # pricing.rules.config defaults


def _x9(cents: np.ndarray) -> np.ndarray:
    """Nearest price ending in 9 cents."""
    return (np.round((np.asarray(cents, dtype=float) + 1) / 10) * 10 - 1).astype(np.int64)


def _grid(current: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """K ascending .x9 prices per SKU around today's price; returns the grid and today's column."""
    step = np.maximum(10, np.round(current * 0.025 / 10) * 10).astype(np.int64)
    column = np.minimum(rng.integers(5, 14, len(current)), (current // 2) // step)
    return current[:, None] + step[:, None] * (np.arange(K)[None, :] - column[:, None]), column


def build_instance(n: int, seed: int, budget_share: float, cyclic_families: float = 0.0) -> OptimizerInstance:
    rng = np.random.default_rng(seed)
    current = _x9(np.clip(rng.lognormal(np.log(399), 0.7, n), 149, 4999))
    prices, column = _grid(current, rng)
    order = rng.permutation(n)
    used = 0
    leader = np.arange(n)  # a family's first member
    kind: list[str] = []
    a: list[int] = []
    b: list[int] = []
    size_a: list[int] = []
    size_b: list[int] = []

    def take(count: int) -> np.ndarray:
        nonlocal used
        rows = order[used : used + count]
        used += count
        return rows

    # families: 10% of SKUs in groups of 2-4 sharing one grid and today's price, linked as a chain
    target = n // 10
    while target >= 2 and used < n:
        members = take(min(int(rng.integers(2, 5)), target))
        if len(members) < 2:
            break
        target -= len(members)
        prices[members] = prices[members[0]]
        leader[members] = members[0]
        column[members] = column[members[0]]
        current[members] = current[members[0]]
        ring = cyclic_families > 0 and len(members) >= 3 and rng.random() < cyclic_families
        for u, v in [*itertools.pairwise(members), *([(members[-1], members[0])] if ring else [])]:
            kind.append("family"), a.append(int(u)), b.append(int(v)), size_a.append(0), size_b.append(0)
    # size ladders: about 10% of SKUs in chains of 2-3 packs, each twice the size at 1.7x the price
    target = n // 10
    while target >= 2 and used < n:
        chain = take(min(int(rng.integers(2, 4)), target))
        if len(chain) < 2:
            break
        target -= len(chain)
        size = 250
        for u, v in itertools.pairwise(chain):
            prices[v] = _x9(prices[u] * 1.7)
            column[v] = column[u]
            current[v] = prices[v, column[v]]
            kind.append("ladder"), a.append(int(u)), b.append(int(v)), size_a.append(size), size_b.append(2 * size)
            size *= 2
    # brand tiers: about 5% of SKUs, a private label on the national grid minus about 15% of today's
    # national price (a multiple of 10 cents, so the .x9 endings stay): the pair holds at today's
    # prices and in every column up to ~1.5x today's price, the gap needing 10%
    for _ in range(n // 40):
        pair = take(2)
        if len(pair) < 2:
            break
        private, national = pair
        prices[private] = prices[national] - round(current[national] * 0.15 / 10) * 10
        column[private] = column[national]
        current[private] = prices[private, column[private]]
        kind.append("tier"), a.append(int(private)), b.append(int(national)), size_a.append(0), size_b.append(0)

    # today's price is off the grid for about 8% of SKUs (families keep theirs shared)
    off = (rng.random(n) < 0.08)[leader]
    current = np.where(off, current + 5, current)
    hint = np.where(off, -1, column)

    # expected profit per day: log-log demand around today's price
    elasticity = rng.uniform(-3.5, -1.2, n)
    cost = rng.uniform(0.60, 0.85, n) * current
    units = rng.lognormal(np.log(4.0), 0.8, n)
    demand = units[:, None] * (prices / current[:, None]) ** elasticity[:, None]
    score = np.round(demand * (prices - cost[:, None]) * SCALE) / SCALE

    m = len(a)
    kinds = np.array(kind, dtype="<U8")
    hard = rng.random(m) >= 0.10
    links = Links(
        kind=kinds,
        a=np.array(a, dtype=np.int64),
        b=np.array(b, dtype=np.int64),
        hard=hard,
        priority=np.array([PRIORITY[k] for k in kind], dtype=np.int64),
        penalty=np.round(rng.uniform(20, 200, m), 3),
        size_a=np.array(size_a, dtype=np.int64),
        size_b=np.array(size_b, dtype=np.int64),
        gap_bp=np.where(kinds == "tier", 1000, 0).astype(np.int64),
    )
    return OptimizerInstance(
        prices=prices,
        valid=np.ones((n, K), dtype=bool),
        score=score,
        hint=hint,
        current=current,
        links=links,
        budget=ChangeBudget(max_changes=round(budget_share * n), hard=True),
    )


def _finite(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--budget-share", type=float, default=0.10, help="hard change budget, share of SKUs")
    parser.add_argument("--monolithic-limit", type=float, default=120.0, help="CP-SAT time limit (s)")
    parser.add_argument(
        "--cyclic-families", type=float, default=0.0,
        help="share of families of 3-4 linked as a ring (a cycle: solved by CP-SAT, not DP)",
    )
    parser.add_argument("--skip-monolithic", action="store_true", help="time the engine alone")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    args = parser.parse_args(argv)

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    started = time.perf_counter()
    instance = build_instance(args.skus, args.seed, args.budget_share, args.cyclic_families)
    links = instance.links
    say(
        f"instance: {args.skus:,} SKUs x {K} candidates, {len(links):,} links "
        f"({', '.join(f'{k} {int((links.kind == k).sum())}' for k in PRIORITY)}; {int((~links.hard).sum())} soft), "
        f"budget {instance.budget.max_changes:,} changes, built in {time.perf_counter() - started:.2f}s"
    )

    started = time.perf_counter()
    engine = PriceOptimizer(instance, SolverConfig()).solve()
    engine_seconds = time.perf_counter() - started
    stats = ", ".join(f"{key} {value:.3g}" for key, value in engine.stats.items())
    say(
        f"engine: {engine_seconds:.2f}s, {engine.status}, objective {engine.objective:,.1f}, bound "
        f"{engine.bound:,.1f}, {engine.changes:,} changes, lam {engine.budget_price:.3f}, relaxed links "
        f"{int(engine.relaxed_links.sum())}, budget relaxed {engine.budget_relaxed} ({stats})"
    )

    mono = None
    monolithic_seconds = None
    if not args.skip_monolithic:
        say(f"monolithic: building and solving (limit {args.monolithic_limit:g}s, 2 workers)...")
        config = SolverConfig(time_limit_s=args.monolithic_limit, workers=2)
        started = time.perf_counter()
        mono = MonolithicOptimizer(instance, config).solve()
        monolithic_seconds = time.perf_counter() - started
        say(
            f"monolithic: {monolithic_seconds:.2f}s (solve {mono.seconds:.2f}s), {mono.status}, objective "
            f"{mono.objective:,.1f}, bound {mono.bound:,.1f}, {mono.changes:,} changes"
        )

    best_bound = engine.bound
    if mono is not None and mono.status in ("OPTIMAL", "FEASIBLE"):
        best_bound = min(best_bound, mono.bound)
    gap_pct = (best_bound - engine.objective) / abs(best_bound) * 100 if best_bound else 0.0
    result = {
        "skus": args.skus,
        "engine_seconds": round(engine_seconds, 3),
        "monolithic_seconds": None if monolithic_seconds is None else round(monolithic_seconds, 3),
        "speedup": None if monolithic_seconds is None else round(monolithic_seconds / engine_seconds, 1),
        "gap_pct": round(gap_pct, 5),
        "engine_objective": round(engine.objective, 3),
        "monolithic_objective": None if mono is None else _finite(mono.objective),
        "monolithic_bound": None if mono is None else _finite(mono.bound),
        "monolithic_status": None if mono is None else mono.status,
        "engine_status": engine.status,
        "engine_bound": round(engine.bound, 3),
        "changes": engine.changes,
        "budget": instance.budget.max_changes,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
