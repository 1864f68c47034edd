"""The factor risk model of a date: it recovers a planted factor covariance and specific variances."""

from __future__ import annotations

import numpy as np
import pytest

from crowdalpha.fund import FundError
from crowdalpha.fund.risk_model import (
    VARIANCE_FLOOR,
    cross_sectional_fits,
    estimate_universe,
    specific_variance,
)


def _planted(days: int = 400, names: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    exposures = rng.normal(size=(names, 3))
    loadings = rng.normal(0, 0.01, (3, 3))
    covariance = loadings @ loadings.T + 1e-5 * np.eye(3)
    factor_returns = rng.multivariate_normal(np.zeros(3), covariance, days)
    sectors = rng.integers(0, 4, names)
    sector_returns = rng.normal(0, 0.01, (days, 4))
    specific = rng.uniform(0.01, 0.03, names) ** 2
    returns = (
        0.002 * rng.normal(size=(days, 1))
        + factor_returns @ exposures.T
        + sector_returns[:, sectors]
        + rng.normal(size=(days, names)) * np.sqrt(specific)
    )
    return returns, exposures, sectors, covariance, specific


def test_the_model_recovers_the_planted_factor_covariance_and_specific_variances() -> None:
    returns, exposures, sectors, covariance, specific = _planted()
    returns[:50, :10] = np.nan  # names that did not trade for a while still get a model
    universe = estimate_universe(returns, exposures, sectors, np.zeros(300), np.ones(300))
    np.testing.assert_allclose(universe.factor_covariance, covariance, atol=0.15 * np.abs(covariance).max())
    assert np.corrcoef(universe.specific_variance, specific)[0, 1] > 0.9
    assert np.all(universe.specific_variance > 0)


def test_unknown_betas_take_the_median_and_names_without_history_the_median_variance() -> None:
    returns, exposures, sectors, _, _ = _planted(days=60, names=50)
    returns[:, 0] = np.nan
    betas = np.linspace(0.5, 1.5, 50)
    betas[3] = np.nan
    universe = estimate_universe(returns, exposures, sectors, np.zeros(50), betas)
    assert universe.betas[3] == np.median(np.delete(betas, 3))
    # no history: the median, which the half-way shrinkage leaves the median of the others (49: odd)
    others = np.median(universe.specific_variance[1:])
    assert universe.specific_variance[0] == pytest.approx(others, rel=1e-12)
    assert specific_variance(np.full((5, 3), np.nan)).tolist() == [VARIANCE_FLOOR] * 3


def test_mismatched_inputs_name_the_rule() -> None:
    with pytest.raises(FundError, match="must be"):
        estimate_universe(np.zeros((10, 5)), np.zeros((4, 2)), np.zeros(4), np.zeros(4), np.ones(4))
    with pytest.raises(FundError, match="a factor covariance needs ≥ 2"):
        estimate_universe(np.zeros((1, 4)), np.zeros((4, 2)), np.zeros(4), np.zeros(4), np.ones(4))


def _per_day_least_squares(returns: np.ndarray, design: np.ndarray, styles: int):
    """The straightforward fit the risk model describes: one least-squares solve per day."""
    factor_returns = np.full((returns.shape[0], styles), np.nan)
    residuals = np.full_like(returns, np.nan)
    for day, day_returns in enumerate(returns):
        traded = np.isfinite(day_returns)
        if traded.sum() <= styles + 1:
            continue
        coefficients, *_ = np.linalg.lstsq(design[traded], day_returns[traded], rcond=None)
        factor_returns[day] = coefficients[1 : styles + 1]
        residuals[day, traded] = day_returns[traded] - design[traded] @ coefficients
    return factor_returns, residuals


def test_the_batched_daily_fits_equal_one_least_squares_solve_per_day() -> None:
    returns, exposures, sectors, _, _ = _planted(days=80, names=120, seed=4)
    rng = np.random.default_rng(4)
    returns[rng.random(returns.shape) < 0.05] = np.nan  # most days a pattern of their own
    returns[10:20, 7] = np.nan  # … and some days sharing one
    returns[30, sectors == 2] = np.nan  # a sector that did not trade at all that day
    returns[40, 3:] = np.nan  # too few names to fit: left out
    countries = rng.integers(0, 3, 120)
    design = np.hstack([np.ones((120, 1)), exposures, np.eye(4)[sectors], np.eye(3)[countries]])
    factor_returns, residuals = cross_sectional_fits(returns, design, 3)
    expected_factors, expected_residuals = _per_day_least_squares(returns, design, 3)
    assert np.isnan(factor_returns[40]).all() and np.isnan(residuals[40]).all()
    np.testing.assert_allclose(factor_returns, expected_factors, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(residuals, expected_residuals, rtol=1e-9, atol=1e-14)
    np.testing.assert_array_equal(np.isnan(residuals), np.isnan(expected_residuals))
