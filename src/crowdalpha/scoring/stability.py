"""How much a model's predictions change between submissions: churn, turnover, and the
positive-payout multiplier for neutral churn."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import expit

from crowdalpha.scoring._layout import as_rows, per_model, require_no_nan
from crowdalpha.scoring.correlations import paired_pearson_rows, top_bottom_positions
from crowdalpha.scoring.errors import ScoringError
from crowdalpha.scoring.ranking import transform_rows


def _paired_rows(previous: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    first, second = as_rows(previous, name="previous"), as_rows(current, name="current")
    if first.shape != second.shape:
        raise ScoringError(
            f"churn/turnover compare aligned predictions; shapes differ: {first.shape[::-1]} vs "
            f"{second.shape[::-1]}"
        )
    require_no_nan(first, name="previous predictions")
    require_no_nan(second, name="current predictions")
    return first, second


def churn(previous: np.ndarray, current: np.ndarray, *, top_bottom: int | None = None) -> np.ndarray | float:
    """Return ``1 - Spearman`` between two aligned submissions per column (0 same, 2 reversed).

    With ``top_bottom=n``: one minus the mean share of ids kept in the top n and in the bottom n.
    """
    first, second = _paired_rows(previous, current)
    if top_bottom:
        first_positions = top_bottom_positions(first, top_bottom)
        second_positions = top_bottom_positions(second, top_bottom)
        scores = np.empty(first.shape[0])
        for k in range(first.shape[0]):
            bottom = np.intersect1d(first_positions[k, :top_bottom], second_positions[k, :top_bottom])
            top = np.intersect1d(first_positions[k, top_bottom:], second_positions[k, top_bottom:])
            scores[k] = 1 - (top.size / top_bottom + bottom.size / top_bottom) / 2
        return per_model(scores, current)
    constant = (np.ptp(first, axis=1) == 0) | (np.ptp(second, axis=1) == 0)
    if constant.any():
        raise ScoringError("churn needs non-constant predictions (rule: non-zero standard deviation)")
    scores = 1 - paired_pearson_rows(transform_rows(first), transform_rows(second))
    return per_model(scores, current)


def turnover(previous: np.ndarray, current: np.ndarray) -> np.ndarray | float:
    """Return half the total absolute change in weights between two aligned portfolios, per column."""
    first, second = _paired_rows(previous, current)
    return per_model(np.abs(first - second).sum(axis=1) / 2, current)


def neutral_churn_penalty(
    neutral_churn: float, threshold: float = 0.1, scaling_factor: float = 10.0
) -> float:
    """Return the share of a positive payout kept: ``min(1, 2 / (1 + exp(k (churn - threshold))))``.

    Apply it to positive payouts only; burns are not penalised further.
    """
    for name, value, low, high in (
        ("neutral_churn", neutral_churn, 0.0, 2.0),
        ("threshold", threshold, 0.0, 2.0),
    ):
        if not (math.isfinite(value) and low <= value <= high):
            raise ScoringError(f"{name} must be finite and between {low:g} and {high:g}; got {value}")
    if not (math.isfinite(scaling_factor) and scaling_factor > 0):
        raise ScoringError(f"scaling_factor must be finite and positive; got {scaling_factor}")
    if neutral_churn <= threshold:
        return 1.0
    # 2 / (1 + e^x) == 2 * expit(-x); expit stays finite where e^x overflows (large scaling factors).
    return 2.0 * float(expit(-scaling_factor * (neutral_churn - threshold)))
