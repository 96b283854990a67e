"""Model choice per category: the log-log model or a choice model, whichever predicts better.

In: the training rows (sku, category, price_cents, promo, date), units, and a way to fit the
log-log model on a subset. Out: the family of every category (``loglog`` or ``choice``), the
choice model fitted on all rows of the categories that took part, and the evidence.

A category can choose the choice model (pricing.demand.choice: a multinomial logit among its
SKUs and not buying) when it is a set of substitutes small enough for one (2 to ``max_skus``
SKUs) and the data span enough days to hold some out. Both families are fitted on all but a
block of ``holdout_days`` and score that block by their Poisson log-likelihood, summed over the
category's rows, for ``folds`` blocks: the last weeks, then the weeks before them; the family
with the higher total wins (a tie keeps ``loglog``). Few blocks were not enough: with prices
that change a few times a year, the two families' scores on one block of four weeks differed by
a few log-likelihood units either way, so the choice was a coin toss; with four blocks the choice
model (then with random price sensitivity) still lost 4 of 10 categories of the simulator's
choice market by 1-4 units, in each of which its elasticities were 2-10x closer to the truth.
Eight blocks (the last 32 weeks, each scored by a fit on the other days) see twice the price
changes: it won 9 and 10 of 10 on two seeds, by up to 64 units. The fold fits only predict, so
the choice model skips its standard errors there, and each starts from the fit on all days
(warm start), which is also the model the categories that choose it use.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import pandas as pd
from scipy.special import gammaln
from scipy.stats import poisson

from pricing.demand.choice import ChoiceModel

LOGLOG = "loglog"
CHOICE = "choice"
MIN_TRAIN_DAYS = 56  # history before the held-out days a category needs to take part


class Predictor(Protocol):
    def predict(self, X: pd.DataFrame) -> np.ndarray: ...


@dataclass
class Selection:
    """The outcome: family per category, the choice model (None when no category chose it)."""

    family: dict[str, str]
    #: Fitted on every category that took part; used for those whose family is ``choice``.
    choice: ChoiceModel | None = None
    #: Per category that took part: holdout rows, each family's log-likelihood, the winner.
    evidence: dict[str, dict[str, float | str]] = field(default_factory=dict)


def poisson_loglik(units: np.ndarray, expected: np.ndarray, stock: np.ndarray | None = None) -> np.ndarray:
    """Per row: log P(units | Poisson(expected)); expected 0 with units > 0 is -inf.

    A row whose units reached its ``stock`` (a stock-out: demand was at least that) scores
    log P(demand >= units) instead, so a family that predicts the demand the shelf could not
    serve is not penalised for it (the log-log model un-censors stock-outs; the choice model
    does not, and won on censored sales by predicting them low).
    """
    y = np.asarray(units, dtype=np.float64)
    mu = np.maximum(np.asarray(expected, dtype=np.float64), 1e-300)
    out = y * np.log(mu) - mu - gammaln(y + 1.0)
    if stock is not None:
        censored = (y > 0) & (y >= stock)  # NaN stock compares False
        out[censored] = poisson.logsf(y[censored] - 1.0, mu[censored])
    return out


def eligible_categories(category: pd.Series, sku: pd.Series, max_skus: int) -> list[str]:
    """Categories with 2 to ``max_skus`` distinct SKUs in the rows."""
    counts = pd.DataFrame({"category": _text(category), "sku": _text(sku)}).drop_duplicates().groupby("category").size()
    return sorted(str(c) for c, n in counts.items() if 2 <= n <= max_skus)


def select_families(
    X: pd.DataFrame,
    y: np.ndarray,
    fit_loglog: Callable[[pd.DataFrame, np.ndarray], Predictor],
    *,
    max_skus: int,
    holdout_days: int,
    choice: ChoiceModel,
    folds: int = 8,
) -> Selection:
    """Choose a family per category of ``X`` (see the module docstring).

    ``fit_loglog(X, y)`` fits the log-log model on the rows given (the caller's estimator with
    the choice disabled); ``choice`` is an unfitted ChoiceModel template (cloned here).
    """
    from sklearn.base import clone

    categories = sorted(str(c) for c in pd.unique(_text(X["category"])))
    family = dict.fromkeys(categories, LOGLOG)
    if "date" not in X.columns or holdout_days < 1:
        return Selection(family)
    candidates = eligible_categories(X["category"], X["sku"], max_skus)
    if not candidates:
        return Selection(family)
    day = pd.to_datetime(X["date"]).to_numpy().astype("datetime64[D]").astype(np.int64)
    in_set = _text(X["category"]).isin(candidates).to_numpy()
    rows, units, day = X[in_set], np.asarray(y, dtype=np.float64)[in_set], day[in_set]
    blocks = _blocks(day, holdout_days, folds)
    if not blocks:
        return Selection(family)
    # The fit on all days is the final model if a category chooses it, and the start of every
    # fold's fit (warm start: the folds differ from it by a few weeks of rows).
    full = clone(choice).fit(rows, units)
    parts = []
    for start, end in blocks:
        test = (day >= start) & (day <= end)
        train_X, train_y, test_X, test_y = rows[~test], units[~test], rows[test], units[test]
        # A SKU unknown to the fit (sold only in the held-out days) is left out of the score.
        known = _text(test_X["sku"]).isin(set(_text(train_X["sku"]))).to_numpy()
        test_X, test_y = test_X[known], test_y[known]
        loglog = fit_loglog(train_X, train_y)
        logit = copy.deepcopy(full).set_params(standard_errors=False, warm_start=True).fit(train_X, train_y)
        stock = _stock(test_X)
        parts.append(
            pd.DataFrame(
                {
                    "category": _text(test_X["category"]).to_numpy(),
                    LOGLOG: poisson_loglik(test_y, loglog.predict(test_X), stock),
                    CHOICE: poisson_loglik(test_y, logit.predict(test_X), stock),
                }
            )
        )
    scores = pd.concat(parts, ignore_index=True)
    summed = scores.groupby("category")[[LOGLOG, CHOICE]].sum()
    rows_per = scores.groupby("category").size()
    evidence: dict[str, dict[str, float | str]] = {}
    for name in candidates:
        if name not in summed.index:
            continue
        ll, lc = float(summed.at[name, LOGLOG]), float(summed.at[name, CHOICE])
        winner = CHOICE if np.isfinite(lc) and lc > ll else LOGLOG
        family[name] = winner
        evidence[name] = {
            "holdout_rows": float(rows_per[name]),
            "loglik_loglog": round(ll, 3),
            "loglik_choice": round(lc, 3),
            "chosen": winner,
        }
    if CHOICE not in family.values():
        return Selection(family, None, evidence)
    return Selection(family, full, evidence)


def _blocks(day: np.ndarray, holdout_days: int, folds: int) -> list[tuple[int, int]]:
    """(first, last) day of each held-out block: the last ``holdout_days``, then the blocks of as
    many days before it, ``folds`` in all, each leaving at least MIN_TRAIN_DAYS of other days."""
    first, last = int(day.min()), int(day.max())
    out = []
    for k in range(max(folds, 1)):
        end = last - k * holdout_days
        start = end - holdout_days + 1
        if start <= first or (last - first + 1) - holdout_days < MIN_TRAIN_DAYS:
            break
        out.append((start, end))
    return out


def _stock(X: pd.DataFrame) -> np.ndarray | None:
    """The stock column as float (NaN where unknown), or None without one."""
    if "stock" not in X.columns:
        return None
    return np.asarray(pd.to_numeric(X["stock"], errors="coerce"), dtype=np.float64)


def _text(values: pd.Series) -> pd.Series:
    """A column (str, object or categorical) as str, same index."""
    return values.astype(str)
