"""Correlation scores: Pearson and Spearman per model, CORR (``numerai_corr``), neutral and
feature-neutral CORR, and the largest feature exposure.

All functions take targets as an ``(ids,)`` vector and predictions as ``(ids,)`` or
``(ids, models)`` already aligned on the same ids; they return one score per model.
"""

from __future__ import annotations

import numpy as np

from crowdalpha.scoring._layout import (
    as_rows,
    as_vector,
    per_model,
    require_no_nan,
)
from crowdalpha.scoring.errors import ScoringError
from crowdalpha.scoring.ranking import transform_rows
from crowdalpha.scoring.transforms import Neutralizer, power


def _correlation(covariance: np.ndarray, scale: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        r = covariance / scale
    r[scale == 0] = np.nan
    return np.clip(r, -1.0, 1.0)


def pearson_rows(rows: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Return Pearson's r of every row with ``target``; NaN where either side is constant."""
    centered_target = target - target.mean()
    centered_rows = rows - rows.mean(axis=1, keepdims=True)
    sum_squares = np.einsum("ij,ij->i", centered_rows, centered_rows)
    scale = np.sqrt(sum_squares * (centered_target @ centered_target))
    return _correlation(centered_rows @ centered_target, scale)


def pearson_of_moments(
    products: np.ndarray, row_sums: np.ndarray, row_squares: np.ndarray, target: np.ndarray
) -> np.ndarray:
    """Return Pearson's r of rows with ``target`` from ``rows @ target`` and each row's sum and sum of
    squares, without the rows themselves; NaN where either side is constant.

    The rows' covariance with the target is ``Σxt − x̄·Σt`` and their spread ``Σx² − (Σx)²/n``: exact
    up to rounding for rows whose mean is small beside their spread (Gaussianised ranks).
    """
    n = target.shape[0]
    target_mean = target.mean()
    centered = target - target_mean
    covariance = products - row_sums * target_mean
    spread = np.maximum(row_squares - row_sums * row_sums / n, 0.0)
    return _correlation(covariance, np.sqrt(spread * (centered @ centered)))


def paired_pearson_rows(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Return Pearson's r of row k of ``first`` with row k of ``second``, for every k."""
    a = first - first.mean(axis=1, keepdims=True)
    b = second - second.mean(axis=1, keepdims=True)
    scale = np.sqrt(np.einsum("ij,ij->i", a, a) * np.einsum("ij,ij->i", b, b))
    return _correlation(np.einsum("ij,ij->i", a, b), scale)


def top_bottom_positions(rows: np.ndarray, top_bottom: int) -> np.ndarray:
    """Return, per row, the positions of its ``top_bottom`` lowest then highest values (stable)."""
    n_ids = rows.shape[1]
    if not 0 < 2 * top_bottom <= n_ids:
        raise ScoringError(f"top_bottom={top_bottom} must be positive and at most half of the {n_ids} ids")
    order = np.argsort(rows, axis=1, kind="stable")
    return np.concatenate((order[:, :top_bottom], order[:, n_ids - top_bottom :]), axis=1)


def pearson_top_bottom_rows(rows: np.ndarray, target: np.ndarray, top_bottom: int) -> np.ndarray:
    """Return Pearson's r of each row with ``target`` over that row's top and bottom ids only."""
    positions = top_bottom_positions(rows, top_bottom)
    selected = np.take_along_axis(rows, positions, axis=1)
    scores = np.empty(rows.shape[0])
    for k in range(rows.shape[0]):
        scores[k] = pearson_rows(selected[k : k + 1], target[positions[k]])[0]
    return scores


def _pearson(rows: np.ndarray, target: np.ndarray, top_bottom: int | None) -> np.ndarray:
    if top_bottom:
        return pearson_top_bottom_rows(rows, target, top_bottom)
    return pearson_rows(rows, target)


def centered_target(targets: np.ndarray, target_mean: float | None) -> np.ndarray:
    """Return targets minus ``target_mean`` (their own mean when None), after a NaN check."""
    require_no_nan(targets, name="targets")
    return targets - (targets.mean() if target_mean is None else target_mean)


def pearson_correlation(
    targets: np.ndarray, predictions: np.ndarray, *, top_bottom: int | None = None
) -> np.ndarray | float:
    """Return Pearson's r of each prediction column with the targets (optionally top/bottom only)."""
    rows = as_rows(predictions)
    target = as_vector(targets, rows.shape[1], name="targets")
    require_no_nan(rows, name="predictions")
    require_no_nan(target, name="targets")
    return per_model(_pearson(rows, target, top_bottom), predictions)


def spearman_correlation(targets: np.ndarray, predictions: np.ndarray) -> np.ndarray | float:
    """Return Spearman's rank correlation (ties averaged) of each column with the targets."""
    rows = as_rows(predictions)
    target = as_vector(targets, rows.shape[1], name="targets")
    require_no_nan(rows, name="predictions")
    require_no_nan(target, name="targets")
    ranked_target = transform_rows(target.reshape(1, -1))[0]
    return per_model(pearson_rows(transform_rows(rows), ranked_target), predictions)


def corr_of_transformed(
    transformed_rows: np.ndarray,
    targets: np.ndarray,
    *,
    target_mean: float | None = None,
    target_pow15: bool = True,
    top_bottom: int | None = None,
) -> np.ndarray:
    """Return CORR of rows that are already ``rank → gaussianise → ^1.5``-transformed."""
    target = centered_target(targets, target_mean)
    if target_pow15:
        target = power(target, 1.5)
    return _pearson(transformed_rows, target, top_bottom)


def numerai_corr(
    predictions: np.ndarray,
    targets: np.ndarray,
    *,
    target_mean: float | None = None,
    target_pow15: bool = True,
    top_bottom: int | None = None,
) -> np.ndarray | float:
    """Return Numerai's CORR per model: Pearson of ``gauss(rank(p)) ** 1.5`` with centred ``t ** 1.5``.

    Steps: centre the targets (on ``target_mean`` when the caller centred them over a wider
    universe), tie-kept rank → Gaussianise → signed power 1.5 the predictions, signed power 1.5 the
    targets (skip with ``target_pow15=False`` for raw returns), Pearson correlation.
    """
    rows = as_rows(predictions)
    target = as_vector(targets, rows.shape[1], name="targets")
    require_no_nan(rows, name="predictions")
    transformed = transform_rows(rows, to="gaussian_pow15")
    scores = corr_of_transformed(
        transformed, target, target_mean=target_mean, target_pow15=target_pow15, top_bottom=top_bottom
    )
    return per_model(scores, predictions)


def neutral_correlation(
    predictions: np.ndarray,
    neutralizers: np.ndarray,
    targets: np.ndarray,
    *,
    target_mean: float | None = None,
    top_bottom: int | None = None,
) -> np.ndarray | float:
    """Return Pearson of neutralised ``gauss(rank(p))`` with centred targets (no 1.5 powers)."""
    rows = as_rows(predictions)
    target = as_vector(targets, rows.shape[1], name="targets")
    require_no_nan(rows, name="predictions")
    gaussianized = transform_rows(rows, to="gaussian")
    neutral = Neutralizer(neutralizers).residual_rows(gaussianized)
    return per_model(_pearson(neutral, centered_target(target, target_mean), top_bottom), predictions)


def feature_neutral_corr(
    predictions: np.ndarray,
    features: np.ndarray,
    targets: np.ndarray,
    *,
    target_mean: float | None = None,
    top_bottom: int | None = None,
) -> np.ndarray | float:
    """Return FNC per model: CORR of the predictions after neutralising ``gauss(rank(p))`` to features.

    Models whose neutralised predictions are constant score NaN.
    """
    rows = as_rows(predictions)
    target = as_vector(targets, rows.shape[1], name="targets")
    require_no_nan(rows, name="predictions")
    gaussianized = transform_rows(rows, to="gaussian")
    scores = fnc_of_gaussianized(
        gaussianized, Neutralizer(features), target, target_mean=target_mean, top_bottom=top_bottom
    )
    return per_model(scores, predictions)


def fnc_of_gaussianized(
    gaussianized_rows: np.ndarray,
    features: Neutralizer,
    targets: np.ndarray,
    *,
    target_mean: float | None = None,
    top_bottom: int | None = None,
) -> np.ndarray:
    """Return FNC of rows that are already ``gauss(rank(p))``; re-ranks after neutralising."""
    neutral = features.residual_rows(gaussianized_rows)
    return corr_of_neutralized(neutral, targets, target_mean=target_mean, top_bottom=top_bottom)


def corr_of_neutralized(
    neutral_rows: np.ndarray,
    targets: np.ndarray,
    *,
    target_mean: float | None = None,
    top_bottom: int | None = None,
) -> np.ndarray:
    """Return CORR of already neutralised rows (re-ranked); NaN for rows that came out constant (NaN)."""
    scores = np.full(neutral_rows.shape[0], np.nan)
    scorable = ~np.isnan(neutral_rows).any(axis=1)
    if scorable.any():
        transformed = transform_rows(np.ascontiguousarray(neutral_rows[scorable]), to="gaussian_pow15")
        scores[scorable] = corr_of_transformed(
            transformed, targets, target_mean=target_mean, top_bottom=top_bottom
        )
    return scores


def feature_correlations(
    predictions: np.ndarray, features: np.ndarray, *, top_bottom: int | None = None
) -> np.ndarray:
    """Return the (features × models) Pearson correlations of every feature with every model."""
    rows = as_rows(predictions)
    feature_rows = as_rows(features, name="features")
    if feature_rows.shape[1] != rows.shape[1]:
        raise ScoringError(f"features have {feature_rows.shape[1]} ids but predictions have {rows.shape[1]}")
    require_no_nan(rows, name="predictions")
    require_no_nan(feature_rows, name="features")
    if top_bottom:
        positions = top_bottom_positions(rows, top_bottom)
        return np.stack(
            [
                pearson_rows(feature_rows[:, positions[k]], rows[k, positions[k]])
                for k in range(rows.shape[0])
            ],
            axis=1,
        )
    centered_features = feature_rows - feature_rows.mean(axis=1, keepdims=True)
    centered = rows - rows.mean(axis=1, keepdims=True)
    covariance = centered_features @ centered.T
    scale = np.outer(
        np.sqrt(np.einsum("ij,ij->i", centered_features, centered_features)),
        np.sqrt(np.einsum("ij,ij->i", centered, centered)),
    )
    return _correlation(covariance, scale)


def max_feature_correlation(
    predictions: np.ndarray, features: np.ndarray, *, top_bottom: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return, per model, (index of the most correlated feature, its absolute correlation)."""
    exposure = np.abs(feature_correlations(predictions, features, top_bottom=top_bottom))
    filled = np.where(np.isnan(exposure), -np.inf, exposure)
    best = np.argmax(filled, axis=0)
    return best, exposure[best, np.arange(exposure.shape[1])]
