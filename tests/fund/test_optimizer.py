"""The optimizer honours every declared limit, re-solves with new alpha, and rejects bad input clearly."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from fund_problems import ALPHA_SCALE, EVERY_LIMIT

from crowdalpha.fund import (
    TIGHT_SOLVER_SETTINGS,
    ConstraintSet,
    DistanceLimit,
    FundError,
    LinearLimit,
    PortfolioOptimizer,
    Universe,
    stake_weighted_alpha,
)
from crowdalpha.fund.optimizer import direct_solver_settings, membership_matrix

TOLERANCE = 1e-7


def _alpha(round_, seed: int = 0) -> np.ndarray:
    stakes = np.random.default_rng(seed).uniform(1, 10, round_.stakes.size)
    return ALPHA_SCALE * stake_weighted_alpha(round_.predictions, stakes)


def _assert_every_limit_holds(universe: Universe, limits: ConstraintSet, weights, previous) -> None:
    exposures = universe.factor_exposures.T @ weights
    if limits.dollar_neutral:
        assert abs(weights.sum()) <= TOLERANCE
    if limits.beta_limit is not None:
        assert abs(universe.betas @ weights) <= limits.beta_limit + TOLERANCE
    if limits.sector_limit is not None:
        sector = np.abs(membership_matrix(universe.sectors).T @ weights).max()
        assert sector <= limits.sector_limit + TOLERANCE
    if limits.country_limit is not None:
        country = np.abs(membership_matrix(universe.countries).T @ weights).max()
        assert country <= limits.country_limit + TOLERANCE
    if limits.factor_limit is not None:
        assert np.all(np.abs(exposures) <= np.asarray(limits.factor_limit) + TOLERANCE)
    if limits.name_cap is not None:
        assert np.abs(weights).max() <= limits.name_cap + TOLERANCE
    if limits.gross_leverage is not None:
        assert np.abs(weights).sum() <= limits.gross_leverage + TOLERANCE
    if limits.turnover_limit is not None:
        assert np.abs(weights - previous).sum() <= limits.turnover_limit + TOLERANCE


def test_every_limit_holds_at_the_solution_and_the_tight_ones_bind(small_round, tight_optimizer):
    solution = tight_optimizer.solve(_alpha(small_round))
    weights = solution.weights
    _assert_every_limit_holds(small_round.universe, EVERY_LIMIT, weights, np.zeros_like(weights))
    # The limits are tight enough to shape the portfolio: gross, beta and some name caps bind.
    assert np.abs(weights).sum() == pytest.approx(1.0, abs=1e-6)
    assert abs(small_round.universe.betas @ weights) == pytest.approx(0.01, abs=1e-6)
    assert np.sum(np.abs(np.abs(weights) - 0.02) < 1e-7) >= 5
    # The factor-exposure variable is the exposure of the weights.
    np.testing.assert_allclose(
        solution.factor_exposures, small_round.universe.factor_exposures.T @ weights, atol=1e-9
    )


def test_neutral_limits_are_equalities_and_turnover_is_measured_from_the_previous_portfolio(small_round):
    limits = dataclasses.replace(EVERY_LIMIT, beta_limit=0.0, factor_limit=0.0, turnover_limit=0.3)
    optimizer = PortfolioOptimizer(
        small_round.universe, limits, risk_aversion=30.0, solver_settings=TIGHT_SOLVER_SETTINGS
    )
    previous = optimizer.solve(_alpha(small_round, seed=1)).weights
    solution = optimizer.solve(_alpha(small_round, seed=2), previous)
    _assert_every_limit_holds(small_round.universe, limits, solution.weights, previous)
    assert abs(small_round.universe.betas @ solution.weights) <= TOLERANCE
    assert np.abs(small_round.universe.factor_exposures.T @ solution.weights).max() <= TOLERANCE
    assert np.abs(solution.weights - previous).sum() == pytest.approx(0.3, abs=1e-6)
    unconstrained = PortfolioOptimizer(
        small_round.universe, dataclasses.replace(limits, turnover_limit=None), risk_aversion=30.0
    ).solve(_alpha(small_round, seed=2))
    assert np.abs(unconstrained.weights - previous).sum() > 0.3 + 1e-3


def test_resolving_with_new_alpha_matches_a_freshly_built_problem(small_round, tight_optimizer):
    first = tight_optimizer.solve(_alpha(small_round, seed=4)).weights
    second = tight_optimizer.solve(_alpha(small_round, seed=5)).weights
    fresh = PortfolioOptimizer(
        small_round.universe, EVERY_LIMIT, risk_aversion=30.0, solver_settings=TIGHT_SOLVER_SETTINGS
    ).solve(_alpha(small_round, seed=5))
    # Both paths solve the same problem to the solver's tolerance; different alpha moves it much more.
    assert np.abs(first - second).max() > 1e-3
    np.testing.assert_allclose(second, fresh.weights, atol=1e-5)


def test_the_portfolio_and_its_binding_limits_do_not_depend_on_the_kkt_factorisation(
    small_round, tight_optimizer
):
    if not direct_solver_settings():
        pytest.skip("this Clarabel build has no faer backend; QDLDL is the only one used")
    assert tight_optimizer.solver_settings["direct_solve_method"] == "faer"
    alpha = _alpha(small_round, seed=6)
    default = tight_optimizer.solve(alpha)
    qdldl = PortfolioOptimizer(
        small_round.universe,
        EVERY_LIMIT,
        risk_aversion=30.0,
        solver_settings={**TIGHT_SOLVER_SETTINGS, "direct_solve_method": "qdldl"},
    ).solve(alpha)
    np.testing.assert_allclose(default.weights, qdldl.weights, atol=1e-9)
    np.testing.assert_array_equal(default.active.fixed, qdldl.active.fixed)
    assert default.active.fixed.size > 20
    assert (default.active.rows != qdldl.active.rows).nnz == 0


def test_without_binding_limits_the_portfolio_is_the_risk_adjusted_alpha(small_round):
    universe = small_round.universe
    limits = ConstraintSet(dollar_neutral=False, beta_limit=None, gross_leverage=None)
    alpha = _alpha(small_round)
    solution = PortfolioOptimizer(universe, limits, risk_aversion=50.0).solve(alpha)
    # Stationarity of the unconstrained problem: γ (X F Xᵀ + diag d) w = α.
    covariance = (
        universe.factor_exposures @ universe.factor_covariance @ universe.factor_exposures.T
        + np.diag(universe.specific_variance)
    )
    np.testing.assert_allclose(np.linalg.solve(50.0 * covariance, alpha), solution.weights, atol=1e-7)


def test_constraint_set_expands_to_general_limits(small_round):
    limits = EVERY_LIMIT.limits(small_round.universe)
    names = [limit.name for limit in limits]
    assert names == [
        "dollar_neutral",
        "beta",
        "sector",
        "country",
        "factor",
        "name_cap",
        "gross_leverage",
    ]
    by_name = dict(zip(names, limits, strict=True))
    assert isinstance(by_name["gross_leverage"], DistanceLimit)
    assert isinstance(by_name["sector"], LinearLimit)
    assert by_name["sector"].matrix.shape == (300, np.unique(small_round.universe.sectors).size)
    assert by_name["dollar_neutral"].is_equality and not by_name["beta"].is_equality


def test_an_impossible_constraint_set_is_reported_not_crashed(small_round):
    limits = ConstraintSet(name_cap=0.001, gross_leverage=None, turnover_limit=0.01)
    optimizer = PortfolioOptimizer(small_round.universe, limits, risk_aversion=30.0)
    previous = np.zeros(300)
    previous[:2] = [0.5, -0.5]  # far outside the name cap, and turnover allows only 0.01 of change
    with pytest.raises(FundError, match="infeasible"):
        optimizer.solve(_alpha(small_round), previous)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("specific_variance", "zero", "specific_variance must be > 0"),
        ("betas", "short", r"betas has shape \(299,\)"),
        ("factor_covariance", "asymmetric", "factor_covariance must be symmetric"),
        ("factor_exposures", "nan", "factor_exposures must be finite"),
    ],
)
def test_a_bad_universe_names_the_broken_rule(small_round, field, value, message):
    universe = small_round.universe
    values = {
        "zero": np.where(np.arange(300) == 7, 0.0, universe.specific_variance),
        "short": universe.betas[:-1],
        "asymmetric": universe.factor_covariance + np.triu(np.ones((5, 5)), 1) * 1e-3,
        "nan": np.where(np.arange(300)[:, None] == 3, np.nan, universe.factor_exposures),
    }
    with pytest.raises(FundError, match=message):
        dataclasses.replace(universe, **{field: values[value]})


def test_bad_alpha_and_limits_are_rejected_with_their_names(small_round, tight_optimizer):
    with pytest.raises(FundError, match=r"alpha has shape \(10,\)"):
        tight_optimizer.solve(np.zeros(10))
    with pytest.raises(FundError, match=r"alpha must be finite; names \[4\]"):
        tight_optimizer.solve(np.where(np.arange(300) == 4, np.inf, 0.0))
    with pytest.raises(FundError, match=r"ConstraintSet\.name_cap"):
        ConstraintSet(name_cap=-0.1)
    with pytest.raises(FundError, match=r"ConstraintSet\.gross_leverage"):
        ConstraintSet(gross_leverage=0.0)
    with pytest.raises(
        FundError, match=r"ConstraintSet\.factor_limit must be all zero \(neutral\) or all positive"
    ):
        ConstraintSet(factor_limit=np.array([0.0, 0.1]))
    with pytest.raises(FundError, match="limit 'industry' must be a finite number"):
        LinearLimit("industry", "weights", np.nan, np.ones((300, 1)))
    with pytest.raises(FundError, match="limit 'industry' targets 'names'"):
        LinearLimit("industry", "names", 0.1, np.ones((300, 1)))
    with pytest.raises(FundError, match="limit 'gross' must be positive"):
        DistanceLimit("gross", "zero", 0.0)
    with pytest.raises(FundError, match="risk_aversion"):
        PortfolioOptimizer(small_round.universe, EVERY_LIMIT, risk_aversion=0.0)


def test_an_extra_limit_is_data_and_holds_like_the_named_ones(small_round):
    style = np.random.default_rng(9).normal(size=(300, 1))
    size_limit = LinearLimit("size_style", "weights", 0.002, style)
    limits = dataclasses.replace(EVERY_LIMIT, extra_limits=(size_limit,))
    alpha = _alpha(small_round)
    free = PortfolioOptimizer(small_round.universe, EVERY_LIMIT, risk_aversion=30.0).solve(alpha).weights
    assert abs(style[:, 0] @ free) > 0.002 + 1e-4  # the extra limit matters for this alpha
    bounded = PortfolioOptimizer(small_round.universe, limits, risk_aversion=30.0).solve(alpha).weights
    assert abs(style[:, 0] @ bounded) == pytest.approx(0.002, abs=1e-7)
    _assert_every_limit_holds(small_round.universe, EVERY_LIMIT, bounded, np.zeros(300))
    wrong = LinearLimit("size_style", "weights", 0.002, style[:10])
    with pytest.raises(FundError, match="extra limit 'size_style' has a matrix with 10 rows"):
        dataclasses.replace(EVERY_LIMIT, extra_limits=(wrong,)).limits(small_round.universe)
