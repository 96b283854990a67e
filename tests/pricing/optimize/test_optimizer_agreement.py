"""The decomposed optimizer (pricing.optimize.optimizer) against one CP-SAT model of the same problem
(pricing.optimize.monolithic), and the monolithic model against brute force.

Random instances are feasible-ish by construction: a SKU linked to an earlier one gets a grid
that can satisfy the link in the same column (a family member shares the grid, a larger pack
gets a proportionally higher grid, a private label a grid 15% lower), plus a few extra links
that close cycles inside families and, sometimes, one random link that may conflict. Scores and
penalties are multiples of 0.1 cent, so CP-SAT's integer objective (SCALE units per cent) is
exact and the two optimizers solve precisely the same problem.

Known limit (see ``test_binding_budget_spends_leftover_on_groups_too``): when a hard change
budget binds, the engine's Lagrangian plan is not always optimal (it spends the budget left
over on unlinked SKUs only); it then says FEASIBLE and its bound must still cover the optimum.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing.optimize.monolithic import MonolithicOptimizer
from pricing.optimize.optimizer import (
    ChangeBudget,
    Links,
    OptimizerInstance,
    OptimizerSolution,
    PriceOptimizer,
)
from pricing.rules.config import SolverConfig

AUTO = SolverConfig(time_limit_s=10, workers=1)
CPSAT = SolverConfig(time_limit_s=10, workers=1, group_solver="cpsat")
SIZES = {"ladder": (500, 1000)}  # ladder links: a 500 g pack below a 1000 g one
TIER_GAP_BP = 1000


def _links(rows: list[tuple[str, int, int]], hard: np.ndarray, priority: np.ndarray, penalty: np.ndarray) -> Links:
    kind = np.array([r[0] for r in rows], dtype="<U8")
    size = np.array([SIZES.get(r[0], (0, 0)) for r in rows], dtype=np.int64).reshape(-1, 2)
    return Links(
        kind=kind,
        a=np.array([r[1] for r in rows], dtype=np.int64),
        b=np.array([r[2] for r in rows], dtype=np.int64),
        hard=hard,
        priority=priority.astype(np.int64),
        penalty=penalty.astype(float),
        size_a=size[:, 0],
        size_b=size[:, 1],
        gap_bp=np.where(kind == "tier", TIER_GAP_BP, 0).astype(np.int64),
    )


@st.composite
def instances(draw: st.DrawFn, max_n: int = 30, min_k: int = 2, max_k: int = 6) -> OptimizerInstance:
    n = draw(st.integers(min_value=1, max_value=max_n))
    k = draw(st.integers(min_value=min_k, max_value=max_k))
    link_share = draw(st.sampled_from([0.0, 0.4, 0.8]))
    soft_share = draw(st.sampled_from([0.0, 0.25, 0.6]))
    budget_kind = draw(st.sampled_from(["none", "hard", "soft"]))
    rng = np.random.default_rng(draw(st.integers(min_value=0, max_value=2**32 - 1)))

    base = np.cumsum(rng.integers(10, 60, k)) + 99
    prices = np.zeros((n, k), dtype=np.int64)
    current_col = rng.integers(0, k, n)
    family = np.arange(n)
    rows: list[tuple[str, int, int]] = []
    for s in range(n):
        if s == 0 or rng.random() >= link_share:
            prices[s] = np.round(base * rng.choice([0.8, 1.0, 1.3, 2.0])) + rng.integers(0, 5)
            continue
        t = int(rng.integers(0, s))
        kind = str(rng.choice(["family", "ladder", "tier"]))
        if kind == "family":  # shares the grid, usually today's price too
            prices[s], family[s] = prices[t], family[t]
            if rng.random() < 0.7:
                current_col[s] = current_col[t]
            rows.append(("family", t, s))
        elif kind == "ladder":  # twice the size, 1.6x the price: more in total, less per unit
            prices[s] = np.round(prices[t] * 1.6)
            rows.append(("ladder", t, s))
        else:  # s is the private label, 15% below its national reference t
            prices[s] = np.floor(prices[t] * 0.85)
            rows.append(("tier", s, t))
    for _ in range(int(rng.integers(0, 3))):  # cycles: one more link inside a family
        members = np.flatnonzero(family == family[rng.integers(0, n)])
        if len(members) >= 3:
            u, v = rng.choice(members, 2, replace=False)
            rows.append(("family", int(u), int(v)))
    if n >= 2 and rng.random() < 0.3:  # one random link: may conflict, then the engine relaxes
        u, v = rng.choice(n, 2, replace=False)
        rows.append((str(rng.choice(["family", "ladder", "tier"])), int(u), int(v)))
    m = len(rows)
    links = _links(rows, rng.random(m) >= soft_share, rng.integers(1, 50, m), rng.integers(0, 3000, m) / 10)

    valid = rng.random((n, k)) < rng.choice([0.8, 1.0])
    valid[np.arange(n), rng.integers(0, k, n)] = True
    if rng.random() < 0.5:  # coarse: plenty of ties
        score = rng.integers(-20, 60, (n, k)) * 100.0
    else:
        score = rng.integers(-50_000, 200_000, (n, k)) / 10
    current = prices[np.arange(n), current_col]
    off_grid = rng.random(n) < 0.1  # today's price is not a candidate
    current = np.where(off_grid, current + 1, current)
    hint = np.where(off_grid, -1, current_col)
    budget = None
    if budget_kind == "hard":
        budget = ChangeBudget(int(rng.integers(0, n + 1)), hard=True)
    elif budget_kind == "soft":
        budget = ChangeBudget(int(rng.integers(0, n + 1)), hard=False, penalty=float(rng.integers(0, 5000) / 10))
    return OptimizerInstance(
        prices=prices, valid=valid, score=score, hint=hint, current=current, links=links, budget=budget
    )


def _tol(value: float) -> float:
    return 1e-6 * max(1.0, abs(value))


def _check_plan(instance: OptimizerInstance, solution: OptimizerSolution) -> None:
    """Valid candidates, active hard links obeyed, changes counted right, a hard budget kept."""
    priced = ~solution.infeasible
    choice = solution.choice
    assert (choice[~priced] == -1).all()
    rows = np.flatnonzero(priced)
    assert instance.valid[rows, choice[rows]].all()
    links = instance.links
    if len(links):
        allowed = links.allowed(instance.prices)
        must = np.flatnonzero(links.hard & ~solution.relaxed_links & priced[links.a] & priced[links.b])
        assert allowed[must, choice[links.a[must]], choice[links.b[must]]].all(), "a hard link is broken"
    changes = int((instance.prices[rows, choice[rows]] != instance.current[rows]).sum())
    assert solution.changes == changes
    budget = instance.budget
    if budget is not None and budget.hard and not solution.budget_relaxed:
        assert changes <= budget.max_changes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(instances())
def test_engine_agrees_with_monolithic_model(instance: OptimizerInstance) -> None:
    engine = PriceOptimizer(instance, AUTO).solve()
    by_cpsat = PriceOptimizer(instance, CPSAT).solve()
    reference = MonolithicOptimizer(instance, AUTO).solve()
    _check_plan(instance, engine)
    _check_plan(instance, by_cpsat)
    assert by_cpsat.objective == pytest.approx(engine.objective, rel=1e-6, abs=1e-6), "cpsat groups != auto"
    assert engine.bound >= engine.objective - _tol(engine.objective)

    clean = not engine.relaxed_links.any() and not engine.infeasible.any()
    if clean and not engine.budget_relaxed:
        # the engine found a plan under every rule: the reference must find one too
        assert reference.status == "OPTIMAL"
    if engine.budget_relaxed and clean:
        assert reference.status == "INFEASIBLE", "the engine relaxed a budget that could be kept"
    if reference.status != "OPTIMAL" or not clean or engine.budget_relaxed:
        return
    optimum = reference.objective
    assert reference.objective == pytest.approx(MonolithicOptimizer(instance, AUTO).evaluate(reference.choice)[0])
    assert engine.bound >= optimum - _tol(optimum), "the engine's bound cuts off the optimum"
    assert engine.objective <= optimum + _tol(optimum), "the engine beats a proven optimum"
    binding = instance.budget is not None and engine.budget_price > 0
    if engine.status == "OPTIMAL" or not binding:
        assert engine.objective == pytest.approx(optimum, rel=1e-6, abs=1e-6)
        assert engine.status == "OPTIMAL" or engine.gap_pct < 1e-6


@st.composite
def tiny_instances(draw: st.DrawFn) -> OptimizerInstance:
    return draw(instances(max_n=5, min_k=2, max_k=3))


@settings(max_examples=40, deadline=None)
@given(tiny_instances())
def test_monolithic_model_matches_brute_force(instance: OptimizerInstance) -> None:
    """The reference itself, checked against every plan of a tiny instance."""
    optimizer = MonolithicOptimizer(instance, AUTO)
    solution = optimizer.solve()
    n, k = instance.prices.shape
    links = instance.links
    allowed = links.allowed(instance.prices)
    hard = np.flatnonzero(links.hard)
    best = -np.inf
    for plan in itertools.product(range(k), repeat=n):
        choice = np.array(plan)
        if not instance.valid[np.arange(n), choice].all():
            continue
        if not allowed[hard, choice[links.a[hard]], choice[links.b[hard]]].all():
            continue
        value, changes = optimizer.evaluate(choice)
        if instance.budget is not None and instance.budget.hard and changes > instance.budget.max_changes:
            continue
        best = max(best, value)
    if best == -np.inf:
        assert solution.status == "INFEASIBLE"
        assert (solution.choice == -1).all()
        return
    assert solution.status == "OPTIMAL"
    assert solution.objective == pytest.approx(best, rel=1e-9, abs=1e-6)
    assert solution.bound == pytest.approx(best, rel=1e-9, abs=1e-6)


# -- examples ----------------------------------------------------------------------------------

def _ladder(relax: bool) -> OptimizerInstance:
    """Three packs 0 < 1 < 2 on one grid: a larger pack must cost more, so 0-1-2 can hold, but the
    extra hard link 2 < 0 (priority 5, the lowest) closes an impossible cycle."""
    rows = [("ladder", 0, 1), ("ladder", 1, 2), ("ladder", 2, 0)]
    links = _links(rows, np.ones(3, dtype=bool), np.array([40, 30, 5]), np.zeros(3))
    prices = np.array([[100, 150, 190, 250]] * 3 + [[100, 120, 140, 160]])
    score = np.array([[9.0, 5.0, 2.0, 1.0], [8.0, 6.0, 3.0, 1.0], [7.0, 6.0, 5.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    return OptimizerInstance(
        prices=prices, valid=np.ones((4, 4), dtype=bool), score=score, hint=np.zeros(4, dtype=np.int64),
        current=prices[:, 0].copy(), links=links, relax=relax,
    )


def test_impossible_ladder_relaxes_its_lowest_priority_link() -> None:
    instance = _ladder(relax=True)
    assert MonolithicOptimizer(instance, AUTO).solve().status == "INFEASIBLE"  # the reference does not relax
    for config in (AUTO, CPSAT):
        solution = PriceOptimizer(instance, config).solve()
        assert solution.relaxed_links.tolist() == [False, False, True]
        assert not solution.infeasible.any()
        _check_plan(instance, solution)
        # what is left is a plain ladder 0 < 1 < 2: its best plan is 100 < 150 < 190, SKU 3 at 160
        assert solution.choice.tolist() == [0, 1, 2, 3]
        assert solution.objective == pytest.approx(9 + 6 + 5 + 4)
        assert solution.status == "OPTIMAL"


def test_impossible_ladder_without_relaxing_reports_its_skus() -> None:
    instance = _ladder(relax=False)
    for config in (AUTO, CPSAT):
        solution = PriceOptimizer(instance, config).solve()
        assert solution.infeasible.tolist() == [True, True, True, False]
        assert solution.choice.tolist() == [-1, -1, -1, 3]
        assert not solution.relaxed_links.any()
        assert solution.objective == pytest.approx(4.0)
        # the SKUs left unpriced are in neither the objective nor the bound
        assert solution.bound == pytest.approx(4.0)
        assert solution.status == "OPTIMAL"


def test_budget_is_kept_when_a_family_can_keep_it() -> None:
    """A family of three where two members already show 200 and one shows 100: moving all to 100
    scores more but changes two labels, moving all to 200 changes one. With a budget of one the
    budget can be kept and must not be reported as relaxed (the engine used to price a change at
    twice one SKU's score range, not enough to make a three-SKU group change as little as it can)."""
    links = _links([("family", 0, 1), ("family", 1, 2)], np.ones(2, dtype=bool), np.ones(2), np.zeros(2))
    instance = OptimizerInstance(
        prices=np.array([[100, 200]] * 3), valid=np.ones((3, 2), dtype=bool), score=np.array([[100.0, 0.0]] * 3),
        hint=np.array([0, 1, 1]), current=np.array([100, 200, 200]), links=links, budget=ChangeBudget(1),
    )
    reference = MonolithicOptimizer(instance, AUTO).solve()
    assert reference.choice.tolist() == [1, 1, 1]
    for config in (AUTO, CPSAT):
        solution = PriceOptimizer(instance, config).solve()
        assert not solution.budget_relaxed
        assert solution.changes == 1
        assert solution.choice.tolist() == [1, 1, 1]
        assert solution.objective == pytest.approx(reference.objective)


@pytest.mark.xfail(strict=True, reason="known limit: budget left over after the bisection goes to unlinked SKUs only")
def test_binding_budget_spends_leftover_on_groups_too() -> None:
    """Budget 2: a family of two gains 20 by changing both labels, a single SKU 15 by changing one.
    The optimum changes the family (20); the Lagrangian plan at the price that fits changes only
    the single SKU (15) and leaves one change unspent. The engine reports this honestly (FEASIBLE,
    bound 25), but the plan is not optimal."""
    links = _links([("family", 0, 1)], np.ones(1, dtype=bool), np.ones(1), np.zeros(1))
    instance = OptimizerInstance(
        prices=np.array([[100, 200]] * 3), valid=np.ones((3, 2), dtype=bool),
        score=np.array([[0.0, 10.0], [0.0, 10.0], [0.0, 15.0]]), hint=np.zeros(3, dtype=np.int64),
        current=np.full(3, 100), links=links, budget=ChangeBudget(2),
    )
    reference = MonolithicOptimizer(instance, AUTO).solve()
    assert reference.objective == pytest.approx(20.0)
    solution = PriceOptimizer(instance, AUTO).solve()
    assert solution.bound >= reference.objective
    assert solution.objective == pytest.approx(reference.objective)


def test_monolithic_reports_infeasible_without_a_plan() -> None:
    solution = MonolithicOptimizer(_ladder(relax=True), AUTO).solve()
    assert solution.status == "INFEASIBLE"
    assert solution.choice.tolist() == [-1] * 4
    assert solution.objective == -np.inf
