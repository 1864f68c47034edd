"""The fund's residual alpha: neutral to the risk exposures, a projection, and no sector bets left to take."""

from __future__ import annotations

import numpy as np
import pytest
from fund_problems import ALPHA_SCALE

from crowdalpha.fund import ConstraintSet, FundError, PortfolioOptimizer
from crowdalpha.fund.alpha import residual_alpha
from crowdalpha.fund.optimizer import membership_matrix
from crowdalpha.fund.synthetic import synthetic_universe


def test_residual_alpha_is_neutral_to_every_exposure_and_a_projection() -> None:
    rng = np.random.default_rng(0)
    universe = synthetic_universe(rng, 200, factors=3, sectors=4, countries=3)
    signals = rng.normal(size=(200, 5))
    residual = residual_alpha(signals, universe)
    sectors = membership_matrix(universe.sectors).toarray()
    for exposure in (np.ones(200), universe.betas, *universe.factor_exposures.T, *sectors.T):
        np.testing.assert_allclose(exposure @ residual, 0.0, atol=1e-9)
    np.testing.assert_allclose(residual_alpha(residual, universe), residual, atol=1e-12)
    stakes = np.array([1.0, 2.0, 0.0, 3.0, 4.0])  # linear: the SWMM of residuals is the residual of the SWMM
    np.testing.assert_allclose(residual @ stakes, residual_alpha(signals @ stakes, universe), atol=1e-12)
    assert not np.allclose(residual, signals)


def test_a_pure_sector_bet_or_a_constant_holds_no_alpha() -> None:
    rng = np.random.default_rng(1)
    universe = synthetic_universe(rng, 80, factors=2, sectors=3, countries=2)
    bet = (np.asarray(universe.sectors) == 0).astype(float)
    np.testing.assert_allclose(residual_alpha(bet, universe), 0.0, atol=1e-12)
    np.testing.assert_array_equal(residual_alpha(np.full(80, 0.3), universe), 0.0)


def test_a_sector_tilt_in_the_signal_is_no_longer_traded_up_to_the_limit() -> None:
    rng = np.random.default_rng(2)
    universe = synthetic_universe(rng, 300, factors=3, sectors=5, countries=3)
    tilted = rng.normal(size=300) + 1.5 * (np.asarray(universe.sectors) == 0)
    limits = ConstraintSet(sector_limit=0.05, factor_limit=0.05, name_cap=0.05)
    optimizer = PortfolioOptimizer(universe, limits, risk_aversion=300.0)
    sector = membership_matrix(universe.sectors).toarray()[:, 0]
    raw = optimizer.solve(ALPHA_SCALE * tilted).weights
    residual = optimizer.solve(ALPHA_SCALE * residual_alpha(tilted, universe)).weights
    assert sector @ raw == pytest.approx(0.05, abs=1e-6)  # the tilt taken as a bet, to the limit
    assert abs(sector @ residual) < 0.04  # no longer a bet the limit has to stop


def test_bad_signals_name_the_rule() -> None:
    universe = synthetic_universe(np.random.default_rng(3), 10, factors=2, sectors=2, countries=2)
    with pytest.raises(FundError, match="one row per name"):
        residual_alpha(np.zeros(9), universe)
    values = np.zeros(10)
    values[2] = np.nan
    with pytest.raises(FundError, match="must be finite"):
        residual_alpha(values, universe)
