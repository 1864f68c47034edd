"""Small fund problems shared by the fund tests: every kind of limit, and TC by central differences."""

from __future__ import annotations

import numpy as np

from crowdalpha.fund import ConstraintSet, PortfolioOptimizer

ALPHA_SCALE = 0.001
"""Gaussianised meta-model ranks × this = expected residual return per name (an IC of ~5 % at 2 % vol)."""

EVERY_LIMIT = ConstraintSet(
    dollar_neutral=True,
    beta_limit=0.01,
    sector_limit=0.05,
    country_limit=0.05,
    factor_limit=0.02,
    name_cap=0.02,
    gross_leverage=1.0,
)


def central_difference_tc(
    optimizer: PortfolioOptimizer,
    predictions: np.ndarray,
    stakes: np.ndarray,
    realised_returns: np.ndarray,
    *,
    previous_weights: np.ndarray | None = None,
    relative_step: float = 1e-4,
) -> np.ndarray:
    """Return ∂(rᵀw*)/∂s_j by central differences, two full re-solves per model."""
    step = relative_step * stakes.sum()
    derivatives = np.empty(stakes.size)
    for model in range(stakes.size):
        returns = []
        for sign in (1.0, -1.0):
            moved = stakes.astype(np.float64)
            moved[model] += sign * step
            alpha = predictions @ moved / moved.sum()
            returns.append(realised_returns @ optimizer.solve(alpha, previous_weights).weights)
        derivatives[model] = (returns[0] - returns[1]) / (2 * step)
    return derivatives
