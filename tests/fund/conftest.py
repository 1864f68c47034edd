"""Fixtures for the fund tests: a small synthetic round and its tightly solved optimizer."""

from __future__ import annotations

import pytest
from fund_problems import EVERY_LIMIT

from crowdalpha.fund import TIGHT_SOLVER_SETTINGS, PortfolioOptimizer
from crowdalpha.fund.synthetic import SyntheticRound, synthetic_round


@pytest.fixture(scope="module")
def small_round() -> SyntheticRound:
    """A 300-name, 5-factor round with 25 models."""
    return synthetic_round(300, 25, factors=5, seed=3)


@pytest.fixture(scope="module")
def tight_optimizer(small_round: SyntheticRound) -> PortfolioOptimizer:
    """Every limit, a risk aversion at which many (but not all) limits bind, tight solver tolerances."""
    return PortfolioOptimizer(
        small_round.universe, EVERY_LIMIT, risk_aversion=30.0, solver_settings=TIGHT_SOLVER_SETTINGS
    )
