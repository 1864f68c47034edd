"""Adjoint TC equals central finite differences of the realised return; it means what it says."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from fund_problems import ALPHA_SCALE, EVERY_LIMIT, central_difference_tc

from crowdalpha.fund import (
    TIGHT_SOLVER_SETTINGS,
    FundError,
    PortfolioOptimizer,
    return_gradient,
    stake_weighted_alpha,
    true_contribution,
)
from crowdalpha.fund.optimizer import membership_matrix
from crowdalpha.fund.synthetic import synthetic_round
from crowdalpha.fund.tc import solve_kkt


def _agreement(adjoint: np.ndarray, finite: np.ndarray) -> tuple[float, float]:
    correlation = float(np.corrcoef(adjoint, finite)[0, 1])
    return correlation, float(np.linalg.norm(adjoint - finite) / np.linalg.norm(finite))


def test_adjoint_tc_matches_central_differences_with_every_limit(small_round, tight_optimizer):
    predictions = ALPHA_SCALE * small_round.predictions
    adjoint = true_contribution(
        tight_optimizer, predictions, small_round.stakes, small_round.realised_returns
    )
    finite = central_difference_tc(
        tight_optimizer, predictions, small_round.stakes, small_round.realised_returns
    )
    solution = tight_optimizer.solve(stake_weighted_alpha(predictions, small_round.stakes))
    assert solution.active.fixed.size > 20 and solution.active.rows.shape[0] >= 2  # limits really bind
    correlation, relative_error = _agreement(adjoint, finite)
    assert correlation >= 0.99
    assert relative_error <= 0.02


def test_adjoint_tc_matches_central_differences_with_turnover_from_a_previous_portfolio(small_round):
    limits = dataclasses.replace(EVERY_LIMIT, beta_limit=0.0, turnover_limit=0.4, sector_limit=0.03)
    optimizer = PortfolioOptimizer(
        small_round.universe, limits, risk_aversion=60.0, solver_settings=TIGHT_SOLVER_SETTINGS
    )
    predictions = ALPHA_SCALE * small_round.predictions
    rng = np.random.default_rng(11)
    previous = optimizer.solve(ALPHA_SCALE * rng.normal(size=300)).weights
    returns = small_round.realised_returns
    adjoint = true_contribution(
        optimizer, predictions, small_round.stakes, returns, previous_weights=previous
    )
    finite = central_difference_tc(
        optimizer, predictions, small_round.stakes, returns, previous_weights=previous
    )
    moved = optimizer.solve(stake_weighted_alpha(predictions, small_round.stakes), previous).weights
    assert np.abs(moved - previous).sum() == pytest.approx(0.4, abs=1e-6)  # turnover binds
    correlation, relative_error = _agreement(adjoint, finite)
    assert correlation >= 0.99
    assert relative_error <= 0.02


def test_adjoint_return_gradient_matches_finite_differences_in_a_random_alpha_direction(
    small_round, tight_optimizer
):
    alpha = ALPHA_SCALE * stake_weighted_alpha(small_round.predictions, small_round.stakes)
    returns = small_round.realised_returns
    gradient = return_gradient(tight_optimizer, tight_optimizer.solve(alpha), returns)
    direction = ALPHA_SCALE * np.random.default_rng(8).normal(size=300)
    step = 1e-3
    up = returns @ tight_optimizer.solve(alpha + step * direction).weights
    down = returns @ tight_optimizer.solve(alpha - step * direction).weights
    assert gradient @ direction == pytest.approx((up - down) / (2 * step), rel=0.02)


def test_a_zero_stake_copy_of_the_meta_model_gets_zero_tc_because_the_portfolio_ignores_it(
    small_round, tight_optimizer
):
    predictions = ALPHA_SCALE * small_round.predictions
    meta = stake_weighted_alpha(predictions, small_round.stakes)
    other = ALPHA_SCALE * np.random.default_rng(2).normal(size=300)
    with_copies = np.column_stack([predictions, meta, other])
    stakes = np.concatenate([small_round.stakes, [0.0, 0.0]])
    returns = small_round.realised_returns
    tc = true_contribution(tight_optimizer, with_copies, stakes, returns)
    finite = central_difference_tc(tight_optimizer, with_copies, stakes, returns)
    typical = np.abs(tc[:-2]).mean()
    # Staking the copy leaves the meta model, hence the portfolio, unchanged: TC ≈ 0 either way …
    assert abs(tc[-2]) <= 1e-9 * typical
    assert abs(finite[-2]) <= 1e-3 * typical
    # … while a zero-stake model that differs from the meta model moves the portfolio and gets TC.
    assert abs(tc[-1]) >= 0.1 * typical
    assert tc[-1] == pytest.approx(finite[-1], rel=0.02)


def test_a_model_predicting_the_negated_realised_returns_gets_negative_tc(small_round, tight_optimizer):
    returns = small_round.realised_returns
    contrarian = -returns / returns.std()
    predictions = ALPHA_SCALE * np.column_stack([small_round.predictions, contrarian])
    stakes = np.concatenate([small_round.stakes, [5.0]])
    tc = true_contribution(tight_optimizer, predictions, stakes, returns)
    assert tc[-1] < 0
    assert tc[-1] < tc[:-1].min()
    bagged = true_contribution(tight_optimizer, predictions, stakes, returns, bags=4, seed=1)
    assert bagged[-1] < 0


def test_bagging_averages_tc_over_random_stake_subsets(small_round, tight_optimizer):
    predictions = ALPHA_SCALE * small_round.predictions
    stakes, returns = small_round.stakes, small_round.realised_returns
    whole = true_contribution(tight_optimizer, predictions, stakes, returns)
    full_bags = true_contribution(tight_optimizer, predictions, stakes, returns, bags=2, bag_fraction=1.0)
    np.testing.assert_allclose(full_bags, whole, rtol=1e-6, atol=1e-12 * np.abs(whole).max())
    bagged = true_contribution(
        tight_optimizer, predictions, stakes, returns, bags=3, bag_fraction=0.5, seed=7
    )
    assert not np.allclose(bagged, whole)
    rng = np.random.default_rng(7)
    staked = np.flatnonzero(stakes > 0)
    by_hand = []
    for _ in range(3):
        members = rng.choice(staked, size=round(0.5 * staked.size), replace=False)
        bag = np.zeros_like(stakes)
        bag[members] = stakes[members]
        by_hand.append(true_contribution(tight_optimizer, predictions, bag, returns))
    np.testing.assert_allclose(bagged, np.mean(by_hand, axis=0), rtol=1e-6, atol=1e-12)


def test_bad_tc_inputs_name_the_rule(small_round, tight_optimizer):
    predictions, stakes, returns = small_round.predictions, small_round.stakes, small_round.realised_returns
    with pytest.raises(FundError, match="stakes sum to zero"):
        true_contribution(tight_optimizer, predictions, np.zeros_like(stakes), returns)
    with pytest.raises(FundError, match=r"stakes must be ≥ 0; model columns \[3\]"):
        true_contribution(tight_optimizer, predictions, np.where(np.arange(25) == 3, -1.0, stakes), returns)
    with pytest.raises(FundError, match="predictions have 10 ids"):
        true_contribution(tight_optimizer, predictions[:10], stakes, returns)
    with pytest.raises(FundError, match=r"model columns \[2\] hold NaN"):
        bad = predictions.copy()
        bad[0, 2] = np.nan
        true_contribution(tight_optimizer, bad, stakes, returns)
    with pytest.raises(FundError, match=r"realised_returns has shape \(5,\)"):
        true_contribution(tight_optimizer, predictions, stakes, returns[:5])
    with pytest.raises(FundError, match="bag_fraction"):
        true_contribution(tight_optimizer, predictions, stakes, returns, bags=2, bag_fraction=0.0)


def test_duplicate_binding_limits_still_give_the_finite_difference_tc(small_round):
    # From a zero previous portfolio, turnover and gross leverage are the same binding limit.
    limits = dataclasses.replace(EVERY_LIMIT, turnover_limit=1.0)
    optimizer = PortfolioOptimizer(
        small_round.universe, limits, risk_aversion=30.0, solver_settings=TIGHT_SOLVER_SETTINGS
    )
    predictions = ALPHA_SCALE * small_round.predictions
    stakes, returns = small_round.stakes, small_round.realised_returns
    solution = optimizer.solve(stake_weighted_alpha(predictions, stakes))
    assert np.abs(solution.weights).sum() == pytest.approx(1.0, abs=1e-6)
    adjoint = true_contribution(optimizer, predictions, stakes, returns)
    correlation, relative_error = _agreement(
        adjoint, central_difference_tc(optimizer, predictions, stakes, returns)
    )
    assert correlation >= 0.99
    assert relative_error <= 0.02


def test_dependent_binding_limits_still_give_the_finite_difference_tc():
    # Two sectors under dollar neutrality: both sector limits bind and their rows sum to the dollar row.
    round_ = synthetic_round(300, 25, factors=5, sectors=2, seed=3)
    limits = dataclasses.replace(EVERY_LIMIT, sector_limit=0.01)
    optimizer = PortfolioOptimizer(
        round_.universe, limits, risk_aversion=30.0, solver_settings=TIGHT_SOLVER_SETTINGS
    )
    predictions = ALPHA_SCALE * round_.predictions
    stakes, returns = round_.stakes, round_.realised_returns
    weights = optimizer.solve(stake_weighted_alpha(predictions, stakes)).weights
    np.testing.assert_allclose(
        membership_matrix(round_.universe.sectors).T @ weights, [-0.01, 0.01], atol=1e-8
    )
    adjoint = true_contribution(optimizer, predictions, stakes, returns)
    correlation, relative_error = _agreement(
        adjoint, central_difference_tc(optimizer, predictions, stakes, returns)
    )
    assert correlation >= 0.99
    assert relative_error <= 0.02


def test_a_singular_factor_covariance_still_gives_the_finite_difference_tc(small_round):
    # Zero factor risk leaves a zero block on the KKT matrix's diagonal.
    universe = dataclasses.replace(small_round.universe, factor_covariance=np.zeros((5, 5)))
    optimizer = PortfolioOptimizer(universe, EVERY_LIMIT, risk_aversion=30.0)
    predictions = ALPHA_SCALE * small_round.predictions
    stakes, returns = small_round.stakes, small_round.realised_returns
    adjoint = true_contribution(optimizer, predictions, stakes, returns)
    correlation, relative_error = _agreement(
        adjoint, central_difference_tc(optimizer, predictions, stakes, returns)
    )
    assert correlation >= 0.99
    assert relative_error <= 0.02


def test_the_kkt_solve_falls_back_to_pivoting_when_diagonal_pivots_are_inaccurate():
    matrix = sp.csc_matrix(np.array([[1e-17, 1.0], [1.0, 1.0]]))
    right_hand = np.array([1.0, 3.0])
    no_pivoting = spla.splu(matrix, permc_spec="NATURAL", diag_pivot_thresh=0.0).solve(right_hand)
    assert np.linalg.norm(matrix @ no_pivoting - right_hand) > 1.0  # the fast path alone would be wrong
    np.testing.assert_allclose(solve_kkt(matrix, right_hand), [2.0, 1.0], rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("risk_aversion", [10.0, 100.0])
def test_adjoint_tc_matches_central_differences_across_rounds_and_risk_aversions(seed, risk_aversion):
    round_ = synthetic_round(250, 20, factors=5, seed=seed)
    optimizer = PortfolioOptimizer(round_.universe, EVERY_LIMIT, risk_aversion=risk_aversion)
    predictions = ALPHA_SCALE * round_.predictions
    stakes, returns = round_.stakes, round_.realised_returns
    adjoint = true_contribution(optimizer, predictions, stakes, returns)
    correlation, relative_error = _agreement(
        adjoint, central_difference_tc(optimizer, predictions, stakes, returns)
    )
    assert correlation >= 0.99
    assert relative_error <= 0.02
