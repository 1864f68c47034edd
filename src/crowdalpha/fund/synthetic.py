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


def synthetic_universe(
    rng: np.random.Generator, names: int, *, factors: int = 20, sectors: int = 11, countries: int = 20
) -> Universe:
    """Return a random universe: betas around 1, random labels, a random factor model (daily units)."""
    loadings = rng.normal(0.0, 0.02, (factors, factors))
    return Universe(
        betas=rng.normal(1.0, 0.3, names),
        sectors=rng.integers(0, sectors, names),
        countries=rng.integers(0, countries, names),
        factor_exposures=rng.normal(size=(names, factors)),
        factor_covariance=loadings @ loadings.T + 1e-4 * np.eye(factors),
        specific_variance=rng.uniform(0.01, 0.04, names) ** 2,
    )


def skilled_predictions(
    rng: np.random.Generator, signal: np.ndarray, skill: np.ndarray, scale: float
) -> np.ndarray:
    """Return gaussianised predictions (ids × models): ``skill × signal / scale`` + unit noise per model."""
    raw = signal[:, None] / scale * skill + rng.normal(size=(signal.size, skill.size))
    return rank_gaussianize(raw)


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
    universe = synthetic_universe(rng, names, factors=factors, sectors=sectors, countries=countries)
    realised = rng.normal(0.0, 0.02, names)
    predictions = skilled_predictions(rng, realised, rng.uniform(0.0, 0.3, models), 0.02)
    return SyntheticRound(universe, realised, predictions, rng.uniform(1.0, 10.0, models))


@dataclass(frozen=True, eq=False)
class SyntheticSeason:
    """Daily rounds on one universe: realised returns and predictions per day, the models' stakes."""

    universe: Universe
    realised_returns: np.ndarray
    predictions: np.ndarray
    stakes: np.ndarray


def synthetic_season(
    days: int,
    names: int,
    models: int,
    *,
    factors: int = 5,
    sectors: int = 5,
    countries: int = 3,
    hidden_alpha: float = 0.005,
    skill: tuple[float, float] = (0.05, 0.3),
    seed: int = 0,
) -> SyntheticSeason:
    """Return a season of daily rounds whose returns hold a hidden alpha the models see with noise.

    Each day the names' residual return is ``alpha + noise`` (alpha with standard deviation
    ``hidden_alpha``, noise 2 % a day); each model predicts the alpha with its own skill (drawn
    from ``skill``) and its own noise. Arrays: returns days × names, predictions days × names × models.
    """
    rng = np.random.default_rng(seed)
    universe = synthetic_universe(rng, names, factors=factors, sectors=sectors, countries=countries)
    skills = rng.uniform(*skill, models)
    alpha = rng.normal(0.0, hidden_alpha, (days, names))
    realised = alpha + rng.normal(0.0, 0.02, (days, names))
    predictions = np.stack(
        [skilled_predictions(rng, alpha[day], skills, hidden_alpha) for day in range(days)]
    )
    return SyntheticSeason(universe, realised, predictions, rng.uniform(1.0, 10.0, models))
