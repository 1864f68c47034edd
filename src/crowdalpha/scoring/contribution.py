"""Contribution scores: MMC / BMC (``correlation_contribution``) and ``neutral_contribution``.

A contribution is the covariance of the centred targets with the part of a model's Gaussianised
ranks that is orthogonal to a reference ensemble: the meta model for MMC, the benchmark meta model
for BMC. It is positive when adding a little of the model to the ensemble would raise the
ensemble's correlation with the target.
"""

from __future__ import annotations

import numpy as np

from crowdalpha.scoring._layout import as_rows, as_vector, per_model, require_no_nan
from crowdalpha.scoring.correlations import top_bottom_positions
from crowdalpha.scoring.ranking import transform_rows
from crowdalpha.scoring.transforms import Neutralizer, orthogonalize_rows


def contribution_targets(targets: np.ndarray) -> np.ndarray:
    """Return targets as centred buckets: 0–1 targets are scaled ×4 (to 0..4), then centred."""
    require_no_nan(targets, name="targets")
    if targets.min() >= 0 and targets.max() <= 1:
        targets = targets * 4
    return targets - targets.mean()


def contribution_scores_rows(
    neutral_rows: np.ndarray, targets: np.ndarray, *, top_bottom: int | None = None
) -> np.ndarray:
    """Return the covariance of each orthogonalised row with the bucketed, centred targets."""
    target = contribution_targets(targets)
    if top_bottom:
        positions = top_bottom_positions(neutral_rows, top_bottom)
        selected = np.take_along_axis(neutral_rows, positions, axis=1)
        return np.einsum("ij,ij->i", selected, target[positions]) / (2 * top_bottom)
    return (neutral_rows @ target) / target.shape[0]


def contribution_of_gaussianized(
    gaussianized_rows: np.ndarray,
    gaussianized_reference: np.ndarray,
    targets: np.ndarray,
    *,
    top_bottom: int | None = None,
) -> np.ndarray:
    """Return contributions of rows already ``gauss(rank(p))`` against a Gaussianised reference."""
    neutral = orthogonalize_rows(gaussianized_rows, gaussianized_reference)
    return contribution_scores_rows(neutral, targets, top_bottom=top_bottom)


def _contribution_inputs(
    predictions: np.ndarray, meta_model: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (prediction rows, meta model, targets) checked for shape and NaN."""
    rows = as_rows(predictions)
    n_ids = rows.shape[1]
    reference = as_vector(meta_model, n_ids, name="meta_model")
    target = as_vector(targets, n_ids, name="targets")
    require_no_nan(rows, name="predictions")
    require_no_nan(reference, name="meta_model")
    return rows, reference, target


def correlation_contribution(
    predictions: np.ndarray,
    meta_model: np.ndarray,
    targets: np.ndarray,
    *,
    top_bottom: int | None = None,
) -> np.ndarray | float:
    """Return MMC per model (BMC when ``meta_model`` is the benchmark meta model).

    Steps: tie-kept rank and Gaussianise predictions and meta model, orthogonalise each model to
    the meta model, covariance with the targets bucketed 0..4 and centred.
    """
    rows, reference, target = _contribution_inputs(predictions, meta_model, targets)
    gaussianized = transform_rows(rows, to="gaussian")
    gaussianized_reference = transform_rows(reference.reshape(1, -1), to="gaussian")[0]
    scores = contribution_of_gaussianized(gaussianized, gaussianized_reference, target, top_bottom=top_bottom)
    return per_model(scores, predictions)


def neutral_contribution(
    predictions: np.ndarray,
    meta_model: np.ndarray,
    neutralizers: np.ndarray,
    targets: np.ndarray,
    *,
    top_bottom: int | None = None,
) -> np.ndarray | float:
    """Return contribution per model after neutralising both models and meta model to neutralisers."""
    rows, reference, target = _contribution_inputs(predictions, meta_model, targets)
    neutralizer = Neutralizer(neutralizers)
    neutral = neutralizer.residual_rows(transform_rows(rows, to="gaussian"))
    neutral_reference = neutralizer.residual_rows(transform_rows(reference.reshape(1, -1), to="gaussian"))[0]
    scores = contribution_of_gaussianized(neutral, neutral_reference, target, top_bottom=top_bottom)
    return per_model(scores, predictions)
