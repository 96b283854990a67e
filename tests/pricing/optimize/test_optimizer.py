"""pricing.optimize.optimizer: with independent SKUs, CP-SAT must agree with the vectorised argmax."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricing.optimize.optimizer import SCALE, OptimizerInstance, PriceOptimizer
from pricing.rules.config import SolverConfig

CONFIG = SolverConfig(time_limit_s=10, workers=1)


@st.composite
def instances(draw: st.DrawFn) -> OptimizerInstance:
    n = draw(st.integers(min_value=1, max_value=6))
    k = draw(st.integers(min_value=1, max_value=6))
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = np.random.default_rng(seed)
    valid = rng.random((n, k)) < draw(st.sampled_from([0.3, 0.7, 1.0]))
    valid[np.arange(n), rng.integers(0, k, n)] = True  # at least one valid candidate per row
    if draw(st.booleans()):  # coarse scores: plenty of ties
        score = rng.integers(-5, 6, (n, k)).astype(float) * 100
    else:
        score = rng.normal(0, 5_000, (n, k))
    # invalid cells carry scores that would win if the solver looked at them
    score = np.where(valid, score, 1e6)
    prices = np.where(valid, np.cumsum(rng.integers(1, 50, (n, k)), axis=1) + 99, -1)
    hint = np.array([rng.choice(np.flatnonzero(row)) if rng.random() < 0.5 else -1 for row in valid])
    return OptimizerInstance(prices=prices, valid=valid, score=score, hint=hint)


@settings(max_examples=80, deadline=None)
@given(instances())
def test_cp_sat_matches_vectorised_argmax(instance: OptimizerInstance) -> None:
    solution = PriceOptimizer(instance, CONFIG).solve()
    n = instance.prices.shape[0]
    rows = np.arange(n)
    assert solution.status == "OPTIMAL"
    assert solution.choice.shape == (n,)
    assert instance.valid[rows, solution.choice].all(), "only valid candidates are chosen"
    masked = np.where(instance.valid, instance.score, -np.inf)
    best = masked.max(axis=1)
    chosen = instance.score[rows, solution.choice]
    # ties may pick another column: compare values, allowing the objective's rounding to 1/SCALE
    np.testing.assert_allclose(chosen, best, atol=1.0 / SCALE, rtol=0)
    assert solution.objective == pytest.approx(chosen.sum(), abs=n * 0.5 / SCALE + 1e-9)
    assert solution.objective == pytest.approx(best.sum(), abs=n * 1.0 / SCALE + 1e-9)
    assert solution.bound == pytest.approx(solution.objective, abs=1e-9)
    assert solution.gap_pct == pytest.approx(0.0, abs=1e-9)


def test_single_choice_and_exact_objective() -> None:
    instance = OptimizerInstance(
        prices=np.array([[199, 249, 299], [99, -1, 149]]),
        valid=np.array([[True, True, True], [True, False, True]]),
        score=np.array([[10.5, 30.25, 20.0], [5.0, 999.0, 7.125]]),
        hint=np.array([0, -1]),
    )
    solution = PriceOptimizer(instance, CONFIG).solve()
    assert solution.choice.tolist() == [1, 2]
    assert solution.objective == pytest.approx(30.25 + 7.125)
    assert solution.status == "OPTIMAL"
    assert solution.seconds >= 0


def test_negative_scores_still_pick_the_best() -> None:
    instance = OptimizerInstance(
        prices=np.array([[100, 200]]), valid=np.array([[True, True]]), score=np.array([[-50.0, -10.0]]), hint=np.array([0])
    )
    solution = PriceOptimizer(instance, CONFIG).solve()
    assert solution.choice.tolist() == [1]
    assert solution.objective == pytest.approx(-10.0)


def test_empty_instance() -> None:
    instance = OptimizerInstance(
        prices=np.zeros((0, 4), dtype=np.int64),
        valid=np.zeros((0, 4), dtype=bool),
        score=np.zeros((0, 4)),
        hint=np.zeros(0, dtype=np.int64),
    )
    solution = PriceOptimizer(instance, CONFIG).solve()
    assert solution.choice.shape == (0,)
    assert solution.status == "OPTIMAL"
    assert solution.objective == 0.0
    assert solution.gap_pct == 0.0


@pytest.mark.parametrize(
    ("valid", "score", "hint"),
    [
        (np.ones((2, 3), bool), np.zeros((2, 2)), np.zeros(2, int)),  # score shape
        (np.ones((3, 3), bool), np.zeros((2, 3)), np.zeros(2, int)),  # valid shape
        (np.ones((2, 3), bool), np.zeros((2, 3)), np.zeros(3, int)),  # hint length
        (np.ones((2, 3), bool), np.zeros((2, 3)), np.zeros((2, 1), int)),  # hint not 1-d
    ],
)
def test_shape_mismatch_raises(valid: np.ndarray, score: np.ndarray, hint: np.ndarray) -> None:
    with pytest.raises(ValueError, match="agree in shape"):
        OptimizerInstance(prices=np.ones((2, 3), dtype=np.int64), valid=valid, score=score, hint=hint)


def test_row_without_valid_candidate_raises() -> None:
    with pytest.raises(ValueError, match="at least one valid candidate"):
        OptimizerInstance(
            prices=np.ones((2, 2), dtype=np.int64),
            valid=np.array([[True, False], [False, False]]),
            score=np.zeros((2, 2)),
            hint=np.array([0, -1]),
        )
