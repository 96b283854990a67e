"""Pick one candidate price per SKU with OR-Tools CP-SAT, maximising expected profit.

Style of the CP-SAT primer: an instance (plain arrays), a solver config, a solution with
objective, bound and status, and a model class with ``_build_model``, ``_add_constraints`` and
``_add_objective``. CP-SAT works in integers: the objective is expected profit in cents per
day, scaled by ``SCALE`` and rounded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from ortools.sat.python import cp_model

from pricing.rules import SolverConfig

SCALE = 1000  # objective units per cent of expected daily profit


@dataclass(frozen=True)
class OptimizerInstance:
    """n SKUs x k candidates. ``score`` is expected daily profit in cents; ``hint`` the current
    price's column per SKU or -1."""

    prices: np.ndarray
    valid: np.ndarray
    score: np.ndarray
    hint: np.ndarray

    def __post_init__(self) -> None:
        shape = self.prices.shape
        if self.valid.shape != shape or self.score.shape != shape or self.hint.shape != shape[:1]:
            raise ValueError("prices, valid, score and hint must agree in shape")
        if shape[0] and not self.valid.any(axis=1).all():
            raise ValueError("every SKU needs at least one valid candidate")


@dataclass(frozen=True)
class OptimizerSolution:
    choice: np.ndarray  # chosen column per SKU
    objective: float  # expected daily profit in cents
    bound: float
    status: str
    seconds: float

    @property
    def gap_pct(self) -> float:
        if self.objective == 0:
            return 0.0
        return abs(self.bound - self.objective) / abs(self.objective) * 100


class PriceOptimizer:
    """One Boolean per (SKU, candidate); exactly one per SKU; maximise scaled expected profit."""

    def __init__(self, instance: OptimizerInstance, config: SolverConfig) -> None:
        self.instance = instance
        self.config = config
        self.model = cp_model.CpModel()
        self._x: dict[tuple[int, int], cp_model.IntVar] = {}
        self._build_model()

    def _build_model(self) -> None:
        rows, cols = np.nonzero(self.instance.valid)
        for i, j in zip(rows.tolist(), cols.tolist()):
            self._x[i, j] = self.model.new_bool_var(f"x_{i}_{j}")
        self._add_constraints()
        self._add_objective()
        self._add_hints()

    def _add_constraints(self) -> None:
        by_row: dict[int, list[cp_model.IntVar]] = {}
        for (i, _), var in self._x.items():
            by_row.setdefault(i, []).append(var)
        for variables in by_row.values():
            self.model.add_exactly_one(variables)

    def _add_objective(self) -> None:
        scaled = np.rint(self.instance.score * SCALE).astype(np.int64)
        keys = list(self._x)
        coefficients = [int(scaled[i, j]) for i, j in keys]
        self.model.maximize(cp_model.LinearExpr.weighted_sum([self._x[key] for key in keys], coefficients))

    def _add_hints(self) -> None:
        for i, j in enumerate(self.instance.hint.tolist()):
            if j >= 0 and (i, j) in self._x:
                self.model.add_hint(self._x[i, j], True)

    def solve(self) -> OptimizerSolution:
        n = self.instance.prices.shape[0]
        started = time.monotonic()
        if n == 0:
            return OptimizerSolution(np.zeros(0, dtype=np.int64), 0.0, 0.0, "OPTIMAL", 0.0)
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = self.config.time_limit_s
        solver.parameters.relative_gap_limit = self.config.relative_gap
        solver.parameters.num_workers = self.config.workers
        solver.parameters.log_search_progress = self.config.log
        status = solver.solve(self.model)
        name = solver.status_name(status)
        if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            raise RuntimeError(f"CP-SAT found no price plan: {name}")
        choice = np.full(n, -1, dtype=np.int64)
        for (i, j), var in self._x.items():
            if solver.boolean_value(var):
                choice[i] = j
        return OptimizerSolution(
            choice=choice,
            objective=solver.objective_value / SCALE,
            bound=solver.best_objective_bound / SCALE,
            status=name,
            seconds=time.monotonic() - started,
        )
