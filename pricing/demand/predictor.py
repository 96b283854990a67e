"""What a demand model must offer the planning stages (pricing.plan): a Protocol, no code.

pricing.demand.model.DemandModel fits it, so does a zone's summed demand
(pricing.demand.zone_demand.ZoneDemand) and the simulator's truth in evaluation.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd


class DemandPredictor(Protocol):
    """What the pricing cycle needs from a demand model."""

    skus_: pd.Index

    def predict_grid(
        self,
        skus: np.ndarray,
        prices_cents: np.ndarray,
        *,
        current_prices_cents: np.ndarray | None = None,
        dates: Any = None,
    ) -> np.ndarray:
        """Expected units per day, SKUs x candidate prices, substitutes at the current prices."""
        ...

    def uncertain(self, skus: np.ndarray) -> np.ndarray:
        """True for SKUs whose demand estimate is too uncertain to move their price far."""
        ...
