"""The fund: portfolio optimizer over the meta model and True Contribution (pure: numpy, scipy, cvxpy)."""

from crowdalpha.fund.optimizer import (
    TIGHT_SOLVER_SETTINGS,
    ConstraintSet,
    DistanceLimit,
    FundError,
    LinearLimit,
    PortfolioOptimizer,
    PortfolioSolution,
    Universe,
)
from crowdalpha.fund.tc import (
    contributions_from_gradient,
    return_gradient,
    stake_weighted_alpha,
    true_contribution,
)

__all__ = [
    "TIGHT_SOLVER_SETTINGS",
    "ConstraintSet",
    "DistanceLimit",
    "FundError",
    "LinearLimit",
    "PortfolioOptimizer",
    "PortfolioSolution",
    "Universe",
    "contributions_from_gradient",
    "return_gradient",
    "stake_weighted_alpha",
    "true_contribution",
]
