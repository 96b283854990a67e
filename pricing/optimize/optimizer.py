"""Pick one candidate price per SKU: exact, decomposed, fast at store scale.

The problem: n SKUs x k candidate prices, a score per candidate (expected objective in cents per
day, soft-rule penalties already taken off), links between SKUs (price families share a price;
size ladders: the larger pack costs more in total and less per unit; brand tiers: a private
label at least a gap below its national reference), and optionally a store-wide change budget
(at most B prices change).

Decompose before solving (CP-SAT primer style: an instance, a solver config, a solution with
objective, bound and status):

1. The links split the SKUs into independent groups (connected components). A SKU linked to
   nothing is solved exactly without a solver: the argmax of its row, vectorised over all of them.
2. A group shaped as a tree (a ladder is a chain, a tier a pair, a family a chain of equalities)
   is solved exactly by dynamic programming over its candidates, vectorised over all tree groups
   (a small CP-SAT model per group costs about 3 ms, too much for thousands of groups).
   A group with a cycle gets its own small CP-SAT model (``group_solver: cpsat`` sends every
   group there). When a group's hard links conflict, the lowest-priority ones are relaxed and
   reported (or, with relax off, its SKUs are reported as infeasible).
3. The change budget couples everything. It is solved by Lagrangian relaxation: a price lam per
   change is subtracted from every changing candidate, every group is solved again (cheap), and
   lam is bisected until the plan fits the budget; the budget left over goes to the next-best
   single changes. L(lam) = max(score - lam x changes) + lam x B bounds the optimum from above,
   so every plan comes with a proven optimality gap (the change that is worth the most per
   label is taken first: that is what lam prices).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
from ortools.sat.python import cp_model
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from pricing.rules.config import SolverConfig
from pricing.rules.links import Links

SCALE = 1000  # CP-SAT objective units per cent
NEG = -1e15  # "impossible" score: finite, so sums stay comparable
_IMPOSSIBLE = NEG / 2
_BISECTIONS = 50


@dataclass(frozen=True)
class ChangeBudget:
    max_changes: int
    hard: bool = True
    penalty: float = 0.0  # cents per day per change over the budget, when soft


@dataclass(frozen=True)
class OptimizerInstance:
    """n SKUs x k candidates. ``score`` is the objective per candidate (cents per day);
    ``current`` today's price (a candidate equal to it is "no change"); ``hint`` the current
    price's column per SKU or -1."""

    prices: np.ndarray
    valid: np.ndarray
    score: np.ndarray
    hint: np.ndarray
    current: np.ndarray | None = None
    links: Links = field(default_factory=Links.empty)
    budget: ChangeBudget | None = None
    relax: bool = True

    def __post_init__(self) -> None:
        shape = self.prices.shape
        if self.valid.shape != shape or self.score.shape != shape or self.hint.shape != shape[:1]:
            raise ValueError("prices, valid, score and hint must agree in shape")
        if shape[0] and not self.valid.any(axis=1).all():
            raise ValueError("every SKU needs at least one valid candidate")
        if self.current is not None and self.current.shape != shape[:1]:
            raise ValueError("current must have one price per SKU")

    @property
    def changes(self) -> np.ndarray:
        """(n, k) 1 where the candidate differs from today's price."""
        if self.current is None:
            return np.zeros(self.prices.shape)
        return (self.prices != self.current[:, None]).astype(np.float64)


@dataclass(frozen=True)
class OptimizerSolution:
    choice: np.ndarray  # chosen column per SKU (-1: infeasible group, see ``infeasible``)
    objective: float  # cents per day
    bound: float  # proven upper bound on the objective
    status: str
    seconds: float
    relaxed_links: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    broken_links: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # soft links the plan breaks
    infeasible: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    changes: int = 0
    budget_price: float = 0.0  # lam: the expected gain a change had to beat (0: budget not binding)
    budget_relaxed: bool = False  # the rules force more changes than the budget allows
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def gap_pct(self) -> float:
        if self.objective == 0:
            return 0.0
        return abs(self.bound - self.objective) / abs(self.objective) * 100


@dataclass
class _Groups:
    """The reduced problem: SKUs of a hard price family with one shared candidate grid are one
    node (their scores and change counts summed); nodes split into singles, tree groups (DP)
    and the rest (CP-SAT). Indices below are node indices."""

    label: np.ndarray  # node per SKU
    first: np.ndarray  # a SKU per node
    node_base: np.ndarray  # (m, k) summed scores, NEG where not a candidate
    node_change: np.ndarray  # (m, k) how many of the node's SKUs change price
    single: np.ndarray  # nodes linked to nothing
    component: np.ndarray  # component id per node
    # tree DP, edges in BFS order: parent, child, level, (E, k, k) pair score parent x child
    roots: np.ndarray
    parent: np.ndarray
    child: np.ndarray
    level: np.ndarray
    pair: np.ndarray
    # CP-SAT groups: (nodes, [(u, v, k x k pair score)])
    models: list[tuple[np.ndarray, list[tuple[int, int, np.ndarray]]]]


class PriceOptimizer:
    """Decomposed exact optimizer; see the module docstring."""

    def __init__(self, instance: OptimizerInstance, config: SolverConfig) -> None:
        self.instance = instance
        self.config = config
        n, k = instance.prices.shape
        self.n, self.k = n, k
        self.base = np.where(instance.valid, instance.score, NEG)
        self.change = instance.changes
        self.link_allowed = instance.links.allowed(instance.prices) if len(instance.links) else np.zeros((0, k, k), bool)
        self.active = np.ones(len(instance.links), dtype=bool)  # links not relaxed
        self.infeasible = np.zeros(n, dtype=bool)  # SKUs of groups left without a plan (relax off)
        self.stats: dict[str, float] = {}

    # -- building the groups ------------------------------------------------------------------
    def _pair_scores(self) -> np.ndarray:
        links = self.instance.links
        hard = np.where(links.hard, NEG, -links.penalty)
        return np.where(self.link_allowed, 0.0, hard[:, None, None]) * self.active[:, None, None]

    def _groups(self) -> _Groups:
        links = self.instance.links
        inst = self.instance
        use = self.active
        # Hard family links between SKUs with the same candidate row are exact equalities of
        # columns: fuse those SKUs into one node (a family crossed with a size ladder then stays
        # a tree instead of a cycle).
        same_row = (inst.prices[links.a] == inst.prices[links.b]).all(axis=1) & (
            inst.valid[links.a] == inst.valid[links.b]
        ).all(axis=1)
        # (only where a row's valid prices are distinct, so equal prices mean equal columns)
        marked = np.where(inst.valid, inst.prices, -1 - np.arange(self.k))
        distinct = (np.diff(np.sort(marked, axis=1), axis=1) != 0).all(axis=1)
        fuse = use & links.hard & (links.kind == "family") & same_row & distinct[links.a]
        fused = coo_matrix((np.ones(int(fuse.sum())), (links.a[fuse], links.b[fuse])), shape=(self.n, self.n))
        m, label = connected_components(fused, directed=False)
        node_base = np.zeros((m, self.k))
        np.add.at(node_base, label, self.base)
        node_change = np.zeros((m, self.k))
        np.add.at(node_change, label, self.change)
        first = np.zeros(m, dtype=np.int64)
        first[label[::-1]] = np.arange(self.n)[::-1]
        rest = use & ~fuse
        a, b = label[links.a[rest]], label[links.b[rest]]
        pair = self._pair_scores()[rest]
        loop = a == b  # another link inside a fused family: only its diagonal can happen
        for e in np.flatnonzero(loop):
            node_base[a[e]] += np.diagonal(pair[e])
        a, b, pair = a[~loop], b[~loop], pair[~loop]
        graph = coo_matrix((np.ones(len(a)), (a, b)), shape=(m, m))
        _, component = connected_components(graph, directed=False)
        sizes = np.bincount(component, minlength=component.max(initial=-1) + 1)
        single = np.flatnonzero(sizes[component] == 1)
        # merge parallel links: one k x k pair score per unordered pair, oriented low -> high
        lo, hi = np.minimum(a, b), np.maximum(a, b)
        oriented = np.where((a <= b)[:, None, None], pair, pair.transpose(0, 2, 1))
        merged: dict[tuple[int, int], np.ndarray] = {}
        for u, v, m in zip(lo.tolist(), hi.tolist(), oriented):
            merged[u, v] = merged[u, v] + m if (u, v) in merged else m.copy()
        by_component: dict[int, list[tuple[int, int, np.ndarray]]] = {}
        for (u, v), m in merged.items():
            by_component.setdefault(int(component[u]), []).append((u, v, m))
        roots, parent, child, level, pairs = [], [], [], [], []
        models: list[tuple[np.ndarray, list[tuple[int, int, np.ndarray]]]] = []
        use_dp = self.config.group_solver == "auto"
        for edges in by_component.values():
            nodes = np.unique([x for u, v, _ in edges for x in (u, v)])
            if not use_dp or len(edges) != len(nodes) - 1:
                models.append((nodes, edges))
                continue
            adjacency: dict[int, list[tuple[int, np.ndarray]]] = {}
            for u, v, m in edges:
                adjacency.setdefault(u, []).append((v, m))
                adjacency.setdefault(v, []).append((u, m.T))
            root = int(nodes[0])
            roots.append(root)
            seen, queue = {root}, deque([(root, 0)])
            while queue:
                node, depth = queue.popleft()
                for other, m in adjacency[node]:
                    if other not in seen:
                        seen.add(other)
                        parent.append(node)
                        child.append(other)
                        level.append(depth + 1)
                        pairs.append(m)
                        queue.append((other, depth + 1))
        k = self.k
        return _Groups(
            label=label, first=first, node_base=node_base, node_change=node_change,
            single=single, component=component, roots=np.array(roots, dtype=np.int64),
            parent=np.array(parent, dtype=np.int64), child=np.array(child, dtype=np.int64),
            level=np.array(level, dtype=np.int64),
            pair=np.array(pairs) if pairs else np.zeros((0, k, k)), models=models,
        )

    # -- solving every group at one price per change ---------------------------------------------
    def _solve_at(self, groups: _Groups, lam: float) -> tuple[np.ndarray, np.ndarray, float, bool]:
        """Best choice per SKU maximising score - lam x changes. Returns the choice, the value per
        component, the sum of CP-SAT bounds minus objectives (0 when all proved), and whether all
        CP-SAT groups were proved optimal."""
        node = groups.node_base - lam * groups.node_change
        choice = np.full(len(node), -1, dtype=np.int64)
        value = np.zeros(groups.component.max(initial=-1) + 1)
        s = groups.single
        choice[s] = node[s].argmax(axis=1)
        value[groups.component[s]] = node[s, choice[s]]
        self._tree_dp(groups, node, choice, value)
        slack, proved = 0.0, True
        started = time.perf_counter()
        for nodes, edges in groups.models:
            picked, objective, bound, optimal = self._cpsat_group(nodes, edges, node, self.instance.hint[groups.first])
            choice[nodes] = picked
            value[groups.component[nodes[0]]] = objective
            slack += bound - objective
            proved &= optimal
        self.stats["cpsat_seconds"] = self.stats.get("cpsat_seconds", 0.0) + time.perf_counter() - started
        value[groups.component[groups.label[self.infeasible]]] = 0.0  # not priced: not in objective or bound
        return choice[groups.label], value, slack, proved

    def _tree_dp(self, groups: _Groups, node: np.ndarray, choice: np.ndarray, value: np.ndarray) -> None:
        if not len(groups.roots):
            return
        incoming = np.zeros_like(node)
        best = np.zeros((len(groups.child), self.k), dtype=np.int64)
        top = int(groups.level.max(initial=0))
        for depth in range(top, 0, -1):
            edges = np.flatnonzero(groups.level == depth)
            kids = groups.child[edges]
            total = groups.pair[edges] + (node[kids] + incoming[kids])[:, None, :]
            best[edges] = total.argmax(axis=2)
            np.add.at(incoming, groups.parent[edges], np.take_along_axis(total, best[edges][:, :, None], 2)[:, :, 0])
        roots = groups.roots
        root_total = node[roots] + incoming[roots]
        choice[roots] = root_total.argmax(axis=1)
        value[groups.component[roots]] = root_total.max(axis=1)
        for depth in range(1, top + 1):
            edges = np.flatnonzero(groups.level == depth)
            choice[groups.child[edges]] = best[edges, choice[groups.parent[edges]]]

    def _cpsat_group(
        self, nodes: np.ndarray, edges: list[tuple[int, int, np.ndarray]], node_score: np.ndarray, hints: np.ndarray
    ) -> tuple[np.ndarray, float, float, bool]:
        """One group as a small CP-SAT model: one Boolean per (SKU, candidate), exactly one per
        SKU, hard pairs forbidden, soft pairs paying their penalty."""
        model = cp_model.CpModel()
        x: dict[tuple[int, int], cp_model.IntVar] = {}
        terms, coefficients = [], []
        for u in nodes.tolist():
            row = [j for j in range(self.k) if node_score[u, j] > _IMPOSSIBLE]
            for j in row:
                x[u, j] = model.new_bool_var(f"x_{u}_{j}")
                terms.append(x[u, j])
                coefficients.append(round(node_score[u, j] * SCALE))
            model.add_exactly_one([x[u, j] for j in row])
            hint = int(hints[u])
            if (u, hint) in x:
                model.add_hint(x[u, hint], True)
        for u, v, pair in edges:
            for i in range(self.k):
                if (u, i) not in x:
                    continue
                allowed = [x[v, j] for j in range(self.k) if (v, j) in x and pair[i, j] > _IMPOSSIBLE]
                model.add_bool_or([x[u, i].Not(), *allowed])
                for j in range(self.k):
                    if (v, j) in x and _IMPOSSIBLE < pair[i, j] < 0:
                        both = model.new_bool_var(f"y_{u}_{i}_{v}_{j}")
                        model.add_bool_or([x[u, i].Not(), x[v, j].Not(), both])
                        terms.append(both)
                        coefficients.append(round(pair[i, j] * SCALE))
        model.maximize(cp_model.LinearExpr.weighted_sum(terms, coefficients))
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = self.config.time_limit_s
        solver.parameters.relative_gap_limit = self.config.relative_gap
        solver.parameters.num_workers = self.config.workers
        solver.parameters.log_search_progress = self.config.log
        status = solver.solve(model)
        picked = np.full(len(nodes), -1, dtype=np.int64)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            return picked, NEG, NEG, status == cp_model.INFEASIBLE
        for (u, j), var in x.items():
            if solver.boolean_value(var):
                picked[np.searchsorted(nodes, u)] = j
        return (
            picked, solver.objective_value / SCALE, solver.best_objective_bound / SCALE, status == cp_model.OPTIMAL
        )

    # -- conflicts -------------------------------------------------------------------------------
    def _resolve_conflicts(self) -> tuple[_Groups, np.ndarray]:
        """Relax the lowest-priority hard links of groups with no feasible plan (or give up on
        them when relaxing is off). Returns the groups and the SKUs left infeasible."""
        links = self.instance.links
        infeasible = self.infeasible  # updated in place
        while True:
            groups = self._groups()
            _, value, _, _ = self._solve_at(groups, 0.0)
            bad = np.flatnonzero(value <= _IMPOSSIBLE)
            if not len(bad):
                return groups, infeasible
            in_bad = np.isin(groups.component[groups.label], bad)
            candidates = self.active & links.hard & in_bad[links.a]
            if not self.instance.relax or not candidates.any():
                infeasible |= in_bad
                # drop those SKUs' links so the rest can be solved; they are reported, not priced
                self.active &= ~in_bad[links.a]
                continue
            for comp in bad.tolist():
                mine = candidates & (groups.component[groups.label[links.a]] == comp)
                if mine.any():
                    lowest = links.priority[mine].min()
                    self.active[mine & (links.priority == lowest)] = False

    # -- the whole problem -----------------------------------------------------------------------
    def solve(self) -> OptimizerSolution:
        started = time.perf_counter()
        inst = self.instance
        if self.n == 0:
            return OptimizerSolution(np.zeros(0, dtype=np.int64), 0.0, 0.0, "OPTIMAL", 0.0)
        groups, infeasible = self._resolve_conflicts()
        self.stats["groups_dp"] = float(len(groups.roots))
        self.stats["groups_cpsat"] = float(len(groups.models))
        choice, value, slack, proved = self._solve_at(groups, 0.0)
        budget = inst.budget
        lam, relaxed_budget = 0.0, False
        changes = self._changes(choice, infeasible)
        bound = float(value.sum()) + slack
        if budget is not None and changes > budget.max_changes:
            choice, lam, bound, relaxed_budget, proved = self._spend_budget(groups, infeasible, budget, proved)
            changes = self._changes(choice, infeasible)
        objective = self._objective(choice, infeasible)
        if budget is not None and not budget.hard and changes > budget.max_changes:
            objective -= budget.penalty * (changes - budget.max_changes)
        bound = max(bound, objective)
        exact = proved and bound - objective <= 1e-9 * max(1.0, abs(objective))
        choice[infeasible] = -1
        self.stats["seconds"] = time.perf_counter() - started
        links = inst.links
        priced = ~infeasible[links.a] & ~infeasible[links.b]
        broken = np.zeros(len(links), dtype=bool)
        e = np.flatnonzero(priced)
        broken[e] = ~self.link_allowed[e, choice[links.a[e]], choice[links.b[e]]]
        return OptimizerSolution(
            choice=choice, objective=objective, bound=bound, status="OPTIMAL" if exact else "FEASIBLE",
            seconds=time.perf_counter() - started, relaxed_links=~self.active & ~infeasible[links.a],
            broken_links=broken & self.active, infeasible=infeasible, changes=changes, budget_price=lam,
            budget_relaxed=relaxed_budget, stats=dict(self.stats),
        )

    def _changes(self, choice: np.ndarray, infeasible: np.ndarray) -> int:
        rows = np.flatnonzero(~infeasible)
        return int(self.change[rows, choice[rows]].sum())

    def _objective(self, choice: np.ndarray, infeasible: np.ndarray) -> float:
        """Score of the chosen candidates plus the soft-link penalties they incur."""
        rows = np.flatnonzero(~infeasible)
        total = float(self.instance.score[rows, choice[rows]].sum())
        links = self.instance.links
        if len(links):
            pairs = self._pair_scores()
            use = self.active & ~infeasible[links.a] & ~infeasible[links.b]
            idx = np.flatnonzero(use)
            total += float(pairs[idx, choice[links.a[idx]], choice[links.b[idx]]].sum())
        return total

    def _spend_budget(
        self, groups: _Groups, infeasible: np.ndarray, budget: ChangeBudget, proved: bool
    ) -> tuple[np.ndarray, float, float, bool, bool]:
        """Lagrangian bisection on the price of a change; see the module docstring."""
        limit = budget.max_changes
        # At ``high`` a change must cost more than a group can gain by it (the score ranges of its
        # SKUs plus its soft-link penalties), so that the plan there makes the fewest changes the
        # rules allow. One SKU's range is not enough: in a family whose members have different
        # current prices, saving one change can cost every member its best score.
        span = np.where(self.instance.valid, self.instance.score, np.nan)
        spread = np.nanmax(span, axis=1) - np.nanmin(span, axis=1)
        n_components = groups.component.max(initial=-1) + 1
        of_sku = groups.component[groups.label]
        reach = np.bincount(of_sku, weights=spread, minlength=n_components)
        links = self.instance.links
        soft = self.active & ~links.hard
        reach += np.bincount(of_sku[links.a[soft]], weights=links.penalty[soft], minlength=n_components)
        high = float(reach.max(initial=0.0)) * 2 + 1.0
        if not budget.hard:
            high = min(high, budget.penalty)
        best_bound = np.inf
        choice_hi, value_hi, slack_hi, proved_hi = self._solve_at(groups, high)
        best_bound = min(best_bound, float(value_hi.sum()) + slack_hi + high * limit)
        forced = self._changes(choice_hi, infeasible)
        if forced > limit:
            # Even the highest price leaves too many changes: the rules force them (a hard budget is
            # relaxed to what they force) or a soft budget's penalty is worth paying.
            bound = float(value_hi.sum()) + slack_hi + high * (forced if budget.hard else limit)
            return choice_hi, high, bound, budget.hard, proved and proved_hi
        low, choice_lo = 0.0, None
        for _ in range(_BISECTIONS):
            mid = (low + high) / 2
            choice, value, slack, ok = self._solve_at(groups, mid)
            best_bound = min(best_bound, float(value.sum()) + slack + mid * limit)
            if self._changes(choice, infeasible) > limit:
                low, choice_lo = mid, choice
            else:
                high, choice_hi, proved_hi = mid, choice, ok
            if high - low <= 1e-6 * max(1.0, high):
                break
        if choice_lo is None:
            choice_lo, _, _, _ = self._solve_at(groups, low)
        choice = self._switch_groups(choice_hi, choice_lo, groups, infeasible, limit)
        choice = self._fill(choice, groups, infeasible, limit)
        return choice, high, best_bound, False, proved and proved_hi

    def _by_component(self, choice: np.ndarray, groups: _Groups, infeasible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Objective (soft links included) and price changes per component."""
        of_sku = groups.component[groups.label]
        count = groups.component.max(initial=-1) + 1
        rows = np.flatnonzero(~infeasible)
        value = np.bincount(of_sku[rows], weights=self.instance.score[rows, choice[rows]], minlength=count)
        changes = np.bincount(of_sku[rows], weights=self.change[rows, choice[rows]], minlength=count)
        links = self.instance.links
        idx = np.flatnonzero(self.active & ~infeasible[links.a] & ~infeasible[links.b])
        if len(idx):
            pairs = self._pair_scores()[idx, choice[links.a[idx]], choice[links.b[idx]]]
            value += np.bincount(of_sku[links.a[idx]], weights=pairs, minlength=count)
        return value, changes

    def _switch_groups(
        self, choice_hi: np.ndarray, choice_lo: np.ndarray, groups: _Groups, infeasible: np.ndarray, limit: int
    ) -> np.ndarray:
        """Between the plan that fits the budget (price ``high``) and the one just over it (``low``)
        the groups that differ are the ones at the margin: move the best of them, per change, to
        their ``low`` plan while the budget lasts."""
        room = limit - self._changes(choice_hi, infeasible)
        if room <= 0:
            return choice_hi
        value_hi, changes_hi = self._by_component(choice_hi, groups, infeasible)
        value_lo, changes_lo = self._by_component(choice_lo, groups, infeasible)
        gain, cost = value_lo - value_hi, changes_lo - changes_hi
        worth = np.flatnonzero((gain > 0) & (cost > 0))
        choice = choice_hi.copy()
        of_sku = groups.component[groups.label]
        switch = []
        for comp in worth[np.argsort(-gain[worth] / cost[worth], kind="stable")].tolist():
            if cost[comp] <= room:
                switch.append(comp)
                room -= int(cost[comp])
        moved = np.isin(of_sku, switch)
        choice[moved] = choice_lo[moved]
        return choice

    def _fill(self, choice: np.ndarray, groups: _Groups, infeasible: np.ndarray, limit: int) -> np.ndarray:
        """Spend what the budget has left on the unlinked SKUs (or fused families) that keep their
        price, best gain per change first."""
        room = limit - self._changes(choice, infeasible)
        s = groups.single[~infeasible[groups.first[groups.single]]]
        if room <= 0 or not len(s):
            return choice
        score, change = groups.node_base[s], groups.node_change[s]
        keep = np.where(change == 0, score, NEG).max(axis=1)
        move = np.where(change > 0, score, NEG)
        best = move.argmax(axis=1)
        gain = move.max(axis=1) - keep
        cost = change[np.arange(len(s)), best]
        unchanged = groups.node_change[s, choice[groups.first[s]]] == 0
        eligible = np.flatnonzero(unchanged & (keep > _IMPOSSIBLE) & (gain > 0))
        picked = []
        for e in eligible[np.argsort(-gain[eligible] / cost[eligible], kind="stable")].tolist():
            if cost[e] <= room:
                picked.append(e)
                room -= int(cost[e])
            if room <= 0:
                break
        node_choice = np.full(len(groups.node_base), -1, dtype=np.int64)
        node_choice[s[picked]] = best[picked]
        choice = choice.copy()
        moved = np.isin(groups.label, s[picked])
        choice[moved] = node_choice[groups.label[moved]]
        return choice
