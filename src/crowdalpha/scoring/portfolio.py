"""Signals portfolio scores: neutralised weights, Alpha and Meta Portfolio Contribution (MPC).

A signal becomes portfolio weights: ``s' = gauss(rank(s)) ** 1.5``, neutralised against the
neutraliser matrix ``N`` under sample weights ``v`` (``s' - N (Nᵀ (v s'))``), then multiplied by
``v``. Alpha is the mean of weights × centred target; MPC is the gradient of the stake-weighted
portfolio's alpha with respect to each model's stake.
"""

from __future__ import annotations

import numpy as np

from crowdalpha.scoring._layout import as_rows, as_vector, require_no_nan, same_shape_as
from crowdalpha.scoring.errors import ScoringError
from crowdalpha.scoring.ranking import transform_rows
from crowdalpha.scoring.transforms import orthogonalize_rows

MPC_SCALE = 50.0
"""MPC is divided by this constant (Numerai's published scaling)."""


def neutralized_weight_rows(
    transformed_rows: np.ndarray, neutralizers: np.ndarray, sample_weights: np.ndarray
) -> np.ndarray:
    """Return ``(s' - N (Nᵀ (v s'))) * v`` for rows ``s'`` already ``gauss(rank) ** 1.5``."""
    exposures = (transformed_rows * sample_weights) @ neutralizers
    return (transformed_rows - exposures @ neutralizers.T) * sample_weights


def _portfolio_inputs(
    predictions: np.ndarray, neutralizers: np.ndarray, sample_weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = as_rows(predictions)
    n_ids = rows.shape[1]
    matrix = np.asarray(neutralizers, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix.reshape(-1, 1)
    if matrix.shape[0] != n_ids:
        raise ScoringError(f"neutralizers have {matrix.shape[0]} ids but predictions have {n_ids}")
    weights = as_vector(sample_weights, n_ids, name="sample_weights")
    require_no_nan(rows, name="predictions")
    require_no_nan(matrix, name="neutralizers")
    require_no_nan(weights, name="sample_weights")
    return rows, matrix, weights


def generate_neutralized_weights(
    predictions: np.ndarray,
    neutralizers: np.ndarray,
    sample_weights: np.ndarray,
    *,
    center_and_normalize: bool = False,
) -> np.ndarray:
    """Return each signal's neutralised portfolio weights (ids × models).

    With ``center_and_normalize`` the weights are centred and scaled to ``sum |w| == 1`` (as used
    for turnover).
    """
    rows, matrix, weights = _portfolio_inputs(predictions, neutralizers, sample_weights)
    neutral = neutralized_weight_rows(transform_rows(rows, to="gaussian_pow15"), matrix, weights)
    if center_and_normalize:
        neutral = neutral - neutral.mean(axis=1, keepdims=True)
        neutral = neutral / np.abs(neutral).sum(axis=1, keepdims=True)
    return same_shape_as(neutral, predictions)


def alpha(
    predictions: np.ndarray,
    neutralizers: np.ndarray,
    sample_weights: np.ndarray,
    targets: np.ndarray,
    *,
    target_mean: float | None = None,
) -> np.ndarray | float:
    """Return Alpha per model: mean over ids of neutralised weights × centred target."""
    rows, matrix, weights = _portfolio_inputs(predictions, neutralizers, sample_weights)
    target = as_vector(targets, rows.shape[1], name="targets")
    require_no_nan(target, name="targets")
    target = target - (target.mean() if target_mean is None else target_mean)
    neutral = neutralized_weight_rows(transform_rows(rows, to="gaussian_pow15"), matrix, weights)
    scores = neutral @ target / target.shape[0]
    return float(scores[0]) if np.ndim(predictions) == 1 else scores


def meta_portfolio_contribution(
    predictions: np.ndarray,
    stakes: np.ndarray,
    neutralizers: np.ndarray,
    sample_weights: np.ndarray,
    targets: np.ndarray,
) -> np.ndarray:
    """Return MPC per model: ∂(alpha of the stake-weighted portfolio)/∂stake, divided by 50.

    Columns of ``predictions`` correspond to ``stakes``; NaN stakes count as 0.
    """
    rows, matrix, weights = _portfolio_inputs(predictions, neutralizers, sample_weights)
    stake = np.nan_to_num(np.asarray(stakes, dtype=np.float64).reshape(-1), nan=0.0)
    if stake.shape[0] != rows.shape[0]:
        raise ScoringError(f"{stake.shape[0]} stakes for {rows.shape[0]} prediction columns")
    total = np.abs(stake).sum()
    if total == 0:
        raise ScoringError("stakes must not all be zero (rule: stakes are normalised to sum to 1)")
    target = as_vector(targets, rows.shape[1], name="targets")
    require_no_nan(target, name="targets")
    neutral = neutralized_weight_rows(transform_rows(rows, to="gaussian_pow15"), matrix, weights)
    return mpc_of_weight_rows(neutral, stake / total, target)


def mpc_of_weight_rows(weight_rows: np.ndarray, stake_shares: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Return MPC of neutralised weight rows given stake shares summing to 1 and raw targets.

    The stake-weighted portfolio ``v = sᵀ W_c`` (weights centred across ids); MPC is
    ``(R_v W_c)ᵀ t_c / |v| / 50`` with ``R_v`` removing the component along ``v``.
    """
    target = targets - targets.mean()
    centered = weight_rows - weight_rows.mean(axis=1, keepdims=True)
    portfolio = stake_shares @ centered
    portfolio = portfolio - portfolio.mean()
    residual = orthogonalize_rows(centered, portfolio)
    return (residual @ target) / np.sqrt(portfolio @ portfolio) / MPC_SCALE
