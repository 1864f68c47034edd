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
    factor_returns, residuals = cross_sectional_fits(returns, design, k)
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


def cross_sectional_fits(
    returns: np.ndarray, design: np.ndarray, styles: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return each day's style factor returns (days × styles, NaN if unfitted) and residuals (days × names).

    Each day is the least-squares fit of its traded names' returns on the rows of ``design``
    ``[1, X, sector, country one-hots]`` (styles are its columns 1…``styles``); a day with at most
    ``styles + 1`` traded names is left unfitted. The one-hots and the constant are collinear, so the
    fit is the minimum-norm one; the style coefficients and the residuals are unique all the same
    (the styles are not in the span of the labels). The days share the design, so the fit goes
    through its Gram matrix: once for all names, less the rows of the names a day did not trade,
    one pseudo-inverse per distinct set of traded names (a handful per window) — the same
    coefficients as a least-squares solve per day, at a fraction of the cost.
    """
    traded = np.isfinite(returns)
    known = np.where(traded, returns, 0.0)
    moments = known @ design  # days × columns: Σ over traded names of design row × return
    gram = design.T @ design
    factor_returns = np.full((returns.shape[0], styles), np.nan)
    coefficients = np.zeros((returns.shape[0], design.shape[1]))
    fitted = np.zeros(returns.shape[0], dtype=bool)
    patterns: dict[bytes, list[int]] = {}
    for day, packed in enumerate(np.packbits(traded, axis=1)):
        patterns.setdefault(packed.tobytes(), []).append(day)
    for same in patterns.values():
        days = np.array(same)
        mask = traded[days[0]]
        if mask.sum() <= styles + 1:
            continue
        missing = design[~mask]
        inverse = _pseudo_inverse(gram - missing.T @ missing)
        coefficients[days] = moments[days] @ inverse
        factor_returns[days] = coefficients[days, 1 : styles + 1]
        fitted[days] = True
    residuals = np.where(traded & fitted[:, None], returns - coefficients @ design.T, np.nan)
    return factor_returns, residuals


def _pseudo_inverse(gram: np.ndarray) -> np.ndarray:
    """Return the pseudo-inverse of a positive semi-definite Gram matrix (its exact null space dropped)."""
    values, vectors = np.linalg.eigh(gram)
    # the constant/one-hot collinearity gives eigenvalues at rounding level (~1e-16 of the largest);
    # a genuine direction of a standardised design is many orders above this cut
    kept = values > 1e-10 * max(values.max(), np.finfo(float).tiny)
    return (vectors[:, kept] / values[kept]) @ vectors[:, kept].T


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
