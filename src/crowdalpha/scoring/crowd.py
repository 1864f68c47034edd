"""How a model relates to the rest of the crowd: CWMM (correlation with the meta model), MCWNM and
APCWNM (maximum and average pairwise correlation with the other models of the round).

Every model is first transformed like CORR does (tie-kept rank → Gaussianise → ^1.5). Pairwise
figures come from blocks of one Gram matrix, never a Python loop over pairs, and memory stays
bounded by ``block_size × models``.
"""

from __future__ import annotations

import numpy as np

from crowdalpha.scoring._layout import as_rows, as_vector, per_model, require_no_nan
from crowdalpha.scoring.correlations import pearson_rows
from crowdalpha.scoring.ranking import transform_rows


def cwmm(predictions: np.ndarray, meta_model: np.ndarray) -> np.ndarray | float:
    """Return CWMM per model: Pearson of ``gauss(rank(p)) ** 1.5`` with the meta model."""
    rows = as_rows(predictions)
    reference = as_vector(meta_model, rows.shape[1], name="meta_model")
    require_no_nan(rows, name="predictions")
    require_no_nan(reference, name="meta_model")
    return per_model(pearson_rows(transform_rows(rows, to="gaussian_pow15"), reference), predictions)


def standardized_rows(transformed_rows: np.ndarray) -> np.ndarray:
    """Return rows centred and scaled to unit norm (constant rows become NaN)."""
    centered = transformed_rows - transformed_rows.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", centered, centered))
    with np.errstate(divide="ignore", invalid="ignore"):
        return centered / norms[:, None]


def pairwise_crowd_correlations(
    transformed_rows: np.ndarray, *, block_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Return (max, mean) Pearson of each row with every *other* row; NaN with no other model."""
    unit = standardized_rows(transformed_rows)
    usable = ~np.isnan(unit).any(axis=1)
    unit = np.where(usable[:, None], unit, 0.0)
    n_models = unit.shape[0]
    n_others = usable.sum() - usable
    maxima = np.full(n_models, np.nan)
    means = np.full(n_models, np.nan)
    for start in range(0, n_models, block_size):
        stop = min(start + block_size, n_models)
        gram = unit[start:stop] @ unit.T
        block = np.arange(start, stop)
        gram[block - start, block] = 0.0
        sums = gram.sum(axis=1)
        gram[:, ~usable] = -np.inf
        gram[block - start, block] = -np.inf
        maxima[start:stop] = gram.max(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            means[start:stop] = sums / n_others[start:stop]
    no_peer = (n_others == 0) | ~usable
    maxima[no_peer] = np.nan
    means[no_peer] = np.nan
    return np.clip(maxima, -1.0, 1.0), means


def mcwnm(predictions: np.ndarray) -> np.ndarray:
    """Return MCWNM per model: its largest correlation with any other model of the round."""
    rows = as_rows(predictions)
    require_no_nan(rows, name="predictions")
    return pairwise_crowd_correlations(transform_rows(rows, to="gaussian_pow15"))[0]


def apcwnm(predictions: np.ndarray) -> np.ndarray:
    """Return APCWNM per model: its average correlation with the other models of the round."""
    rows = as_rows(predictions)
    require_no_nan(rows, name="predictions")
    return pairwise_crowd_correlations(transform_rows(rows, to="gaussian_pow15"))[1]
