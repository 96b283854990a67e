"""One CP-SAT model of the whole pricing problem: the reference the decomposed optimizer is checked
and benchmarked against.

The same problem as :class:`pricing.optimize.optimizer.PriceOptimizer` (same instance, same solution
type, same objective in cents per day), written the straightforward way in the CP-SAT primer
style: one Boolean per valid (SKU, candidate), exactly one per SKU, every link and the change
budget as constraints of a single model, no decomposition.

- hard link a-b: for every candidate i of a, ``x[a,i] => OR(x[b,j] for the j allowed with i)``
  (what the engine's per-group CP-SAT model does too);
- soft link: one Boolean ``broken`` per link, ``x[a,i] => OR(x[b,j] allowed with i, broken)``,
  costing the link's penalty;
- hard budget: ``sum(x[s,j] for candidates j != today's price) <= max_changes``; soft budget:
  an integer ``excess >= changes - max_changes``, ``excess >= 0``, costing the penalty per unit.

The objective is the score of the chosen candidates minus the soft-link and soft-budget
penalties, scaled by ``optimizer.SCALE`` to integers. ``OptimizerSolution.objective`` is that
value recomputed exactly (in floats) from the chosen candidates, on the same scale as
``PriceOptimizer``; ``bound`` is ``solver.best_objective_bound / SCALE`` (so it carries the
rounding of scores to 1/SCALE cent, like the engine's CP-SAT groups).

Unlike the engine, this model does NOT relax conflicting hard links (nor a hard budget the
links make impossible): such an instance comes back with status ``INFEASIBLE``, every choice
-1, and objective and bound ``-inf``. A time-out without any plan comes back ``UNKNOWN`` with
every choice -1, objective ``-inf`` and the solver's bound.
"""

from __future__ import annotations

import math
import time

import numpy as np
from ortools.sat.python import cp_model

from pricing.optimize.optimizer import SCALE, OptimizerInstance, OptimizerSolution
from pricing.rules.config import SolverConfig


class MonolithicOptimizer:
    """The whole instance as a single CP-SAT model; see the module docstring."""

    def __init__(self, instance: OptimizerInstance, config: SolverConfig) -> None:
        self.instance = instance
        self.config = config
        self.n, self.k = instance.prices.shape
        self.model = cp_model.CpModel()
        self.x: dict[tuple[int, int], cp_model.IntVar] = {}
        self.rows: list[list[int]] = []  # valid candidate columns per SKU
        self.broken: dict[int, cp_model.IntVar] = {}  # soft link -> "broken" Boolean
        self.excess: cp_model.IntVar | None = None
        self._build_model()

    # -- model -----------------------------------------------------------------------------------
    def _build_model(self) -> None:
        inst = self.instance
        for s in range(self.n):
            row = np.flatnonzero(inst.valid[s]).tolist()
            self.rows.append(row)
            for j in row:
                self.x[s, j] = self.model.new_bool_var(f"x_{s}_{j}")
            hint = int(inst.hint[s])
            if (s, hint) in self.x:
                self.model.add_hint(self.x[s, hint], True)
        self._add_constraints()
        self._add_objective()

    def _add_constraints(self) -> None:
        model, x = self.model, self.x
        for s, row in enumerate(self.rows):
            model.add_exactly_one([x[s, j] for j in row])
        links = self.instance.links
        if len(links):
            allowed = links.allowed(self.instance.prices)
            for link in range(len(links)):
                a, b = int(links.a[link]), int(links.b[link])
                broken = None
                if not links.hard[link]:
                    broken = self.broken[link] = model.new_bool_var(f"broken_{link}")
                for i in self.rows[a]:
                    ok = [x[b, j] for j in self.rows[b] if allowed[link, i, j]]
                    if len(ok) == len(self.rows[b]):
                        continue  # every candidate of b goes with i: nothing to say
                    if broken is not None:
                        ok.append(broken)
                    model.add_bool_or([x[a, i].Not(), *ok])
        budget = self.instance.budget
        if budget is not None:
            change = self.instance.changes
            changing = [x[s, j] for s, row in enumerate(self.rows) for j in row if change[s, j]]
            if budget.hard:
                model.add(cp_model.LinearExpr.sum(changing) <= budget.max_changes)
            else:
                self.excess = model.new_int_var(0, max(len(changing), 0), "excess")
                model.add(self.excess >= cp_model.LinearExpr.sum(changing) - budget.max_changes)

    def _add_objective(self) -> None:
        inst = self.instance
        terms: list[cp_model.IntVar] = []
        coefficients: list[int] = []
        for (s, j), var in self.x.items():
            terms.append(var)
            coefficients.append(round(float(inst.score[s, j]) * SCALE))
        for link, var in self.broken.items():
            terms.append(var)
            coefficients.append(-round(float(inst.links.penalty[link]) * SCALE))
        if self.excess is not None:
            terms.append(self.excess)
            coefficients.append(-round(float(inst.budget.penalty) * SCALE))
        self.model.maximize(cp_model.LinearExpr.weighted_sum(terms, coefficients))

    # -- solve -----------------------------------------------------------------------------------
    def solve(self) -> OptimizerSolution:
        started = time.perf_counter()
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = self.config.time_limit_s
        solver.parameters.relative_gap_limit = self.config.relative_gap
        solver.parameters.num_workers = self.config.workers
        solver.parameters.log_search_progress = self.config.log
        status = solver.solve(self.model)
        name = solver.status_name(status)
        n_links = len(self.instance.links)
        none = np.zeros(self.n, dtype=bool)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            bound = -math.inf if status == cp_model.INFEASIBLE else solver.best_objective_bound / SCALE
            return OptimizerSolution(
                choice=np.full(self.n, -1, dtype=np.int64), objective=-math.inf, bound=bound, status=name,
                seconds=time.perf_counter() - started, relaxed_links=np.zeros(n_links, dtype=bool),
                infeasible=~none if status == cp_model.INFEASIBLE else none,
                stats={"wall_seconds": solver.wall_time},
            )
        choice = np.full(self.n, -1, dtype=np.int64)
        for (s, j), var in self.x.items():
            if solver.boolean_value(var):
                choice[s] = j
        objective, changes = self.evaluate(choice)
        return OptimizerSolution(
            choice=choice, objective=objective, bound=solver.best_objective_bound / SCALE + 0.0, status=name,
            seconds=time.perf_counter() - started, relaxed_links=np.zeros(n_links, dtype=bool), infeasible=none,
            changes=changes, stats={"wall_seconds": solver.wall_time, "scaled_objective": solver.objective_value},
        )

    def evaluate(self, choice: np.ndarray) -> tuple[float, int]:
        """Objective (cents per day, exact) and number of changes of a full choice: the score of the
        chosen candidates minus the soft links it breaks and the soft budget's excess."""
        inst = self.instance
        rows = np.arange(self.n)
        total = float(inst.score[rows, choice].sum())
        links = inst.links
        if len(links):
            allowed = links.allowed(inst.prices)[np.arange(len(links)), choice[links.a], choice[links.b]]
            total -= float(links.penalty[~links.hard & ~allowed].sum())
        changes = int(inst.changes[rows, choice].sum())
        budget = inst.budget
        if budget is not None and not budget.hard and changes > budget.max_changes:
            total -= budget.penalty * (changes - budget.max_changes)
        return total, changes
