"""A synthetic fund round (universe, realised returns, crowd predictions, stakes) for demos and checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crowdalpha.fund.optimizer import Universe
from crowdalpha.scoring.ranking import rank_gaussianize


@dataclass(frozen=True, eq=False)
class SyntheticRound:
    """One round: the universe, realised residual returns, gaussianised predictions (ids × models), stakes."""

    universe: Universe
    realised_returns: np.ndarray
    predictions: np.ndarray
    stakes: np.ndarray


def synthetic_round(
    names: int,
    models: int,
    *,
    factors: int = 20,
    sectors: int = 11,
    countries: int = 20,
    seed: int = 0,
) -> SyntheticRound:
    """Return a random round whose models predict the realised residual returns with varying skill."""
    rng = np.random.default_rng(seed)
    loadings = rng.normal(0.0, 0.02, (factors, factors))
    universe = Universe(
        betas=rng.normal(1.0, 0.3, names),
        sectors=rng.integers(0, sectors, names),
        countries=rng.integers(0, countries, names),
        factor_exposures=rng.normal(size=(names, factors)),
        factor_covariance=loadings @ loadings.T + 1e-4 * np.eye(factors),
        specific_variance=rng.uniform(0.01, 0.04, names) ** 2,
    )
    realised = rng.normal(0.0, 0.02, names)
    skill = rng.uniform(0.0, 0.3, models)
    raw = realised[:, None] / 0.02 * skill + rng.normal(size=(names, models))
    return SyntheticRound(universe, realised, rank_gaussianize(raw), rng.uniform(1.0, 10.0, models))
