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
from crowdalpha.scoring.errors import ScoringError
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


SCREEN_DTYPE = np.float32
"""Precision of the Gram screen that finds each model's most correlated peers (refined in float64)."""
_SCREEN_EPSILON = float(np.finfo(SCREEN_DTYPE).eps)
_MAX_REFINED_PER_ROW = 64
"""Above this many candidates per row on average, a block falls back to an exact float64 Gram."""


def screen_margin(n_ids: int) -> float:
    """Return a bound δ on the error of a float32 dot product of two unit vectors of ``n_ids`` values.

    Rounding the inputs (≤ ε relative per product) and accumulating ``n_ids`` products in any
    order (≤ n·ε/2 relative to Σ|xᵢyᵢ| ≤ 1, by Cauchy–Schwarz) errs by at most ``(n + 2)·ε/2``.
    The screen keeps every peer within 2δ of the row's best screened value — the true maximum is
    always among them — and doubles that again for safety.
    """
    return (n_ids + 2) * _SCREEN_EPSILON / 2


def _block_maxima(
    unit_block: np.ndarray, peer_unit: np.ndarray, screen: np.ndarray, self_positions: np.ndarray
) -> np.ndarray:
    """Return each block row's largest exact dot product with a peer row (``-inf`` with none).

    ``self_positions[r]`` is the peer position of block row r itself (-1 if it is no peer), left
    out. A float32 Gram finds every peer within the screen's error bound of the row's maximum;
    only those are recomputed in float64, so the result equals a float64 Gram's maximum.
    """
    rows = np.arange(unit_block.shape[0])
    approx = unit_block.astype(SCREEN_DTYPE) @ screen.T
    is_self = self_positions >= 0
    approx[rows[is_self], self_positions[is_self]] = -np.inf
    best = approx.max(axis=1, initial=-np.inf)
    cut = best - SCREEN_DTYPE(4 * screen_margin(unit_block.shape[1]))
    candidate_rows, candidate_peers = np.nonzero(approx >= cut[:, None])
    maxima = np.full(unit_block.shape[0], -np.inf)
    if candidate_rows.size > _MAX_REFINED_PER_ROW * max(1, unit_block.shape[0]):
        exact = unit_block @ peer_unit.T  # near-duplicate crowds: refine everything at once
        exact[rows[is_self], self_positions[is_self]] = -np.inf
        return exact.max(axis=1, initial=-np.inf)
    if candidate_rows.size:
        exact = np.einsum("ij,ij->i", unit_block[candidate_rows], peer_unit[candidate_peers])
        np.maximum.at(maxima, candidate_rows, exact)
    return maxima


def pairwise_crowd_correlations(
    transformed_rows: np.ndarray, *, peers: np.ndarray | None = None, block_size: int = 1024
) -> tuple[np.ndarray, np.ndarray]:
    """Return (max, mean) Pearson of each row with every *other* peer row; NaN with no other peer.

    ``peers`` (a boolean mask over rows; default: every row) names the models a row is compared
    with — e.g. the on-time submissions of a round, so late ones are measured against the crowd
    without joining it. The mean is exact from one sum of the peers' standardised rows (no Gram
    matrix); the maximum comes from a float32 Gram screen refined in float64
    (:func:`_block_maxima`), in blocks of ``block_size`` rows so memory stays bounded.
    """
    unit = standardized_rows(transformed_rows)
    usable = ~np.isnan(unit).any(axis=1)
    unit = np.where(usable[:, None], unit, 0.0)
    n_models = unit.shape[0]
    peer = usable.copy()
    if peers is not None:
        mask = np.asarray(peers, dtype=bool).reshape(-1)
        if mask.shape[0] != n_models:
            raise ScoringError(f"peers has {mask.shape[0]} entries but there are {n_models} models")
        peer &= mask
    peer_index = np.flatnonzero(peer)
    peer_position = np.full(n_models, -1)
    peer_position[peer_index] = np.arange(peer_index.size)
    peer_unit = np.ascontiguousarray(unit[peer_index])
    n_others = peer_index.size - peer.astype(np.int64)
    self_products = np.where(peer, np.einsum("ij,ij->i", unit, unit), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = (unit @ peer_unit.sum(axis=0) - self_products) / n_others
    maxima = np.full(n_models, np.nan)
    if peer_index.size:
        screen = peer_unit.astype(SCREEN_DTYPE)
        for start in range(0, n_models, block_size):
            stop = min(start + block_size, n_models)
            maxima[start:stop] = _block_maxima(unit[start:stop], peer_unit, screen, peer_position[start:stop])
    no_peer = (n_others == 0) | ~usable
    maxima[no_peer] = np.nan
    means[no_peer] = np.nan
    return np.clip(maxima, -1.0, 1.0), np.clip(means, -1.0, 1.0)


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
