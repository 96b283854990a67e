"""Model choice per category: the held-out score, its blocks, and stock-outs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import poisson

from pricing.demand.selection import _blocks, poisson_loglik


def test_the_score_is_the_poisson_log_likelihood() -> None:
    units, mu = np.array([0.0, 3.0, 7.0]), np.array([0.5, 2.0, 9.0])
    np.testing.assert_allclose(poisson_loglik(units, mu), poisson.logpmf(units, mu))


def test_a_stock_out_scores_the_chance_demand_reached_the_stock() -> None:
    units = np.array([5.0, 5.0, 2.0, 0.0])
    stock = np.array([5.0, np.nan, 9.0, 0.0])  # sold out / unknown / not out / empty shelf, no sale
    mu = np.array([8.0, 8.0, 3.0, 1.0])
    score = poisson_loglik(units, mu, stock)
    assert score[0] == pytest.approx(poisson.logsf(4, 8.0))  # P(demand >= 5)
    np.testing.assert_allclose(score[1:], poisson.logpmf(units[1:], mu[1:]))


def test_a_prediction_of_the_unserved_demand_is_not_penalised_at_a_stock_out() -> None:
    # demand 12 on average, 5 on the shelf: a model that predicts 12 scores better than one
    # that learned the censored sales (5) once the row is known to be a stock-out
    units, stock = np.array([5.0]), np.array([5.0])
    assert poisson_loglik(units, np.array([12.0]), stock)[0] > poisson_loglik(units, np.array([5.0]), stock)[0]
    assert poisson_loglik(units, np.array([12.0]))[0] < poisson_loglik(units, np.array([5.0]))[0]


def test_eight_blocks_of_four_weeks_from_the_end_each_leaving_enough_history() -> None:
    blocks = _blocks(np.arange(0, 365), 28, 8)
    assert len(blocks) == 8
    assert blocks[0] == (364 - 27, 364) and blocks[1] == (364 - 55, 364 - 28)
    assert all(end - start + 1 == 28 for start, end in blocks)
    assert _blocks(np.arange(0, 100), 28, 8) == [(72, 99), (44, 71), (16, 43)]  # one more would start on day 0
    assert _blocks(np.arange(0, 80), 28, 8) == []  # 52 days besides a block: fewer than MIN_TRAIN_DAYS
