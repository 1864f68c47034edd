"""A factor risk model for one date, estimated from the trailing window of daily returns (pure numpy).

For the names of the date, with style exposures ``X`` (n × k, known at the date), sector and
country labels, and the window's daily returns ``R`` (days × n, NaN where a name did not trade)::

    R[d] = 1·m[d] + X·f[d] + G·g[d] + e[d]       (one cross-sectional least squares per day)

``G`` holds the sector and country one-hots; ``f[d]`` are the style factor returns. The model is
``Σ = X F Xᵀ + diag(s)`` with ``F`` the sample covariance of the ``f[d]`` and ``s`` each name's
mean squared residual, shrunk half-way to the cross-sectional median (a name observed on fewer
than ``min_observations`` days gets the median). Sector and country risk is left to the
portfolio's sector and country limits rather than modelled.
"""

from __future__ import annotations

import numpy as np

from crowdalpha.fund.optimizer import FundError, Universe, membership_matrix

MIN_OBSERVATIONS = 20
"""Days a name must have traded in the window for its own specific variance to count."""
SPECIFIC_SHRINKAGE = 0.5
"""Weight of the cross-sectional median in each name's specific variance."""
VARIANCE_FLOOR = 1e-10
"""Smallest specific variance (daily, squared fraction): keeps the objective strictly convex."""


def estimate_universe(
    daily_returns: np.ndarray,
    style_exposures: np.ndarray,
    sectors: np.ndarray,
    countries: np.ndarray,
    betas: np.ndarray,
    *,
    min_observations: int = MIN_OBSERVATIONS,
) -> Universe:
    """Return the :class:`Universe` of one date: its names' betas, labels and factor model (daily units)."""
    returns = np.asarray(daily_returns, dtype=np.float64)
    exposures = np.nan_to_num(np.asarray(style_exposures, dtype=np.float64), nan=0.0)
    if returns.ndim != 2 or exposures.ndim != 2 or returns.shape[1] != exposures.shape[0]:
        raise FundError(
            f"daily_returns {returns.shape} and style_exposures {exposures.shape} must be (days × names)"
            " and (names × factors) for the same names"
        )
    n, k = exposures.shape
    if returns.shape[0] < 2:
        raise FundError(f"the risk window has {returns.shape[0]} days; a factor covariance needs ≥ 2")
    design = np.hstack(
        [
            np.ones((n, 1)),
            exposures,
            membership_matrix(sectors).toarray(),
            membership_matrix(countries).toarray(),
        ]
    )
    factor_returns = np.full((returns.shape[0], k), np.nan)
    residuals = np.full_like(returns, np.nan)
    for day, day_returns in enumerate(returns):
        traded = np.isfinite(day_returns)
        if traded.sum() <= k + 1:
            continue
        coefficients, *_ = np.linalg.lstsq(design[traded], day_returns[traded], rcond=None)
        factor_returns[day] = coefficients[1 : k + 1]
        residuals[day, traded] = day_returns[traded] - design[traded] @ coefficients
    estimated = np.isfinite(factor_returns).all(axis=1)
    if estimated.sum() < 2:
        raise FundError("fewer than 2 days of the risk window have enough traded names to fit the factors")
    covariance = np.atleast_2d(np.cov(factor_returns[estimated], rowvar=False)) if k else np.zeros((0, 0))
    return Universe(
        betas=_filled(np.asarray(betas, dtype=np.float64)),
        sectors=np.asarray(sectors),
        countries=np.asarray(countries),
        factor_exposures=exposures,
        factor_covariance=(covariance + covariance.T) / 2,
        specific_variance=specific_variance(residuals, min_observations),
    )


def specific_variance(residuals: np.ndarray, min_observations: int = MIN_OBSERVATIONS) -> np.ndarray:
    """Return each name's mean squared residual, shrunk toward the median (names × squared daily fraction)."""
    known = np.isfinite(residuals)
    observed = known.sum(axis=0)
    squares = np.where(known, residuals, 0.0) ** 2
    own = squares.sum(axis=0) / np.maximum(observed, 1)
    enough = observed >= min_observations
    median = float(np.median(own[enough])) if enough.any() else VARIANCE_FLOOR
    shrunk = np.where(enough, (1 - SPECIFIC_SHRINKAGE) * own + SPECIFIC_SHRINKAGE * median, median)
    return np.maximum(np.nan_to_num(shrunk, nan=median), VARIANCE_FLOOR)


def _filled(betas: np.ndarray) -> np.ndarray:
    """Return the betas with unknown ones (short history) set to the median known beta (1 if none)."""
    known = np.isfinite(betas)
    return np.where(known, betas, float(np.median(betas[known])) if known.any() else 1.0)
