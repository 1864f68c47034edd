"""The dual solver finds the interior point's portfolio, under every kind of limit, or steps aside."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from fund_problems import ALPHA_SCALE, EVERY_LIMIT

from crowdalpha.fund import (
    TIGHT_SOLVER_SETTINGS,
    ConstraintSet,
    LinearLimit,
    PortfolioOptimizer,
    Universe,
    stake_weighted_alpha,
)
from crowdalpha.fund.dual import dual_solver
from crowdalpha.fund.optimizer import membership_matrix
from crowdalpha.fund.synthetic import SyntheticRound

RISK_AVERSION = 30.0


def _alphas(round_: SyntheticRound, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    return [
        ALPHA_SCALE * stake_weighted_alpha(round_.predictions, rng.uniform(1, 10, round_.stakes.size))
        for _ in range(count)
    ]


def _objective(universe: Universe, alpha: np.ndarray, weights: np.ndarray) -> float:
    factors = universe.factor_exposures.T @ weights
    risk = factors @ universe.factor_covariance @ factors + universe.specific_variance @ weights**2
    return float(-alpha @ weights + 0.5 * RISK_AVERSION * risk)


def _violation(universe: Universe, limits: ConstraintSet, weights: np.ndarray) -> float:
    """Return how far the weights break the set's limits (0 when every one holds)."""
    excess = [abs(weights.sum()) if limits.dollar_neutral else 0.0]
    checks = [
        (limits.beta_limit, universe.betas @ weights),
        (limits.sector_limit, membership_matrix(universe.sectors).T @ weights),
        (limits.country_limit, membership_matrix(universe.countries).T @ weights),
        (limits.factor_limit, universe.factor_exposures.T @ weights),
        (limits.name_cap, weights),
        (limits.gross_leverage, np.abs(weights).sum()),
    ]
    for extra in limits.extra_limits:
        values = weights if extra.target == "weights" else universe.factor_exposures.T @ weights
        checks.append((extra.limit, values if extra.matrix is None else extra.matrix.T @ values))
    excess += [float(np.max(np.abs(value) - limit)) for limit, value in checks if limit is not None]
    return max(0.0, *excess)


LIMIT_SETS = {
    "every limit": EVERY_LIMIT,
    "neutral factors": dataclasses.replace(EVERY_LIMIT, beta_limit=0.0, factor_limit=0.0),
    "per-factor and per-name arrays": dataclasses.replace(
        EVERY_LIMIT,
        factor_limit=np.array([0.02, 0.001, 0.01, 0.03, 0.005]),
        name_cap=None,
        extra_limits=(LinearLimit("caps", "weights", np.linspace(0.005, 0.03, 300)),),
    ),
    "an extra style limit and a factor-combination limit": dataclasses.replace(
        EVERY_LIMIT,
        extra_limits=(
            LinearLimit("style", "weights", 0.002, np.random.default_rng(9).normal(size=(300, 1))),
            LinearLimit("spread", "factors", 0.001, np.array([[1.0], [-1.0], [0.0], [0.5], [0.0]])),
        ),
    ),
    "no gross leverage, not dollar neutral": ConstraintSet(
        dollar_neutral=False, beta_limit=None, sector_limit=0.01, name_cap=0.01, gross_leverage=None
    ),
    "tight gross leverage, loose caps": dataclasses.replace(EVERY_LIMIT, gross_leverage=0.2, name_cap=0.5),
    # nearly every name at its cap: limits without curvature, where Newton's step needs damping
    "caps that hold most names": ConstraintSet(
        beta_limit=0.05, country_limit=0.005, factor_limit=0.001, name_cap=0.001, gross_leverage=2.0
    ),
}


@pytest.mark.parametrize("label", list(LIMIT_SETS))
def test_the_dual_finds_the_interior_points_portfolio(small_round: SyntheticRound, label: str) -> None:
    limits = LIMIT_SETS[label]
    optimizer = PortfolioOptimizer(
        small_round.universe, limits, risk_aversion=RISK_AVERSION, solver_settings=TIGHT_SOLVER_SETTINGS
    )
    solver = dual_solver(small_round.universe, optimizer.limits, RISK_AVERSION)
    assert solver is not None
    for alpha in _alphas(small_round, 4):
        weights = solver.solve(alpha)
        assert weights is not None, label
        interior = optimizer.solve(alpha).weights
        np.testing.assert_allclose(weights, interior, atol=1e-7, err_msg=label)
        assert _violation(small_round.universe, limits, weights) <= 1e-10, label
        # as optimal as the interior point, to its 1e-14 gap
        assert _objective(small_round.universe, alpha, weights) <= (
            _objective(small_round.universe, alpha, interior) + 1e-14
        )


def test_the_limits_shape_the_dual_portfolio(small_round: SyntheticRound) -> None:
    """Not a vacuous match: gross, beta, caps and the extra style limit bind at these solutions."""
    limits = LIMIT_SETS["an extra style limit and a factor-combination limit"]
    optimizer = PortfolioOptimizer(small_round.universe, limits, risk_aversion=RISK_AVERSION)
    style = limits.extra_limits[0].matrix[:, 0]
    weights = optimizer.solve_weights(_alphas(small_round, 1)[0])
    assert np.abs(weights).sum() == pytest.approx(1.0, abs=1e-10)
    assert abs(small_round.universe.betas @ weights) == pytest.approx(0.01, abs=1e-10)
    assert np.sum(np.abs(np.abs(weights) - 0.02) < 1e-10) >= 5
    assert abs(style @ weights) == pytest.approx(0.002, abs=1e-10)


def test_equal_alphas_give_equal_portfolios_whatever_was_solved_before(small_round: SyntheticRound) -> None:
    first, second = _alphas(small_round, 2)
    one = PortfolioOptimizer(small_round.universe, EVERY_LIMIT, risk_aversion=RISK_AVERSION)
    other = PortfolioOptimizer(small_round.universe, EVERY_LIMIT, risk_aversion=RISK_AVERSION)
    opening = one.solve_weights(first)
    np.testing.assert_array_equal(one.solve_weights(second), one.solve_weights(second))
    other.solve_weights(first)
    np.testing.assert_array_equal(other.solve_weights(second), one.solve_weights(second))
    np.testing.assert_array_equal(one.solve_weights(first), opening)


def test_problems_outside_the_dual_form_go_through_the_interior_point(small_round: SyntheticRound) -> None:
    turnover = dataclasses.replace(EVERY_LIMIT, turnover_limit=0.3)
    optimizer = PortfolioOptimizer(small_round.universe, turnover, risk_aversion=RISK_AVERSION)
    assert dual_solver(small_round.universe, optimizer.limits, RISK_AVERSION) is None
    first, second = _alphas(small_round, 2)
    previous = optimizer.solve(first).weights
    np.testing.assert_array_equal(
        optimizer.solve_weights(second, previous), optimizer.solve(second, previous).weights
    )
    singular = dataclasses.replace(
        small_round.universe, factor_covariance=np.diag([1e-4, 1e-4, 1e-4, 1e-4, 0.0])
    )
    flat = PortfolioOptimizer(singular, EVERY_LIMIT, risk_aversion=RISK_AVERSION)
    assert dual_solver(singular, flat.limits, RISK_AVERSION) is None
    np.testing.assert_allclose(flat.solve_weights(second), flat.solve(second).weights, atol=1e-12)
