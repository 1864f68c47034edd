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


def standardized_rows(transformed_rows: np.ndarray, *, in_place: bool = False) -> np.ndarray:
    """Return rows centred and scaled to unit norm (constant rows become NaN); ``in_place`` reuses theirs."""
    means = transformed_rows.mean(axis=1, keepdims=True)
    centered = np.subtract(transformed_rows, means, out=transformed_rows if in_place else None)
    norms = np.sqrt(np.einsum("ij,ij->i", centered, centered))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(centered, norms[:, None], out=centered)


def _rows_as(unit: np.ndarray, index: np.ndarray, dtype: type, block_size: int) -> np.ndarray:
    """Return ``unit[index]`` in ``dtype``, converted block by block (no full-size float64 copy)."""
    result = np.empty((index.shape[0], unit.shape[1]), dtype=dtype)
    for start in range(0, index.shape[0], block_size):
        result[start : start + block_size] = unit[index[start : start + block_size]]
    return result


SCREEN_DTYPE = np.float32
"""Precision of the Gram screen that finds each model's most correlated peers (refined in float64)."""
_SCREEN_EPSILON = float(np.finfo(SCREEN_DTYPE).eps)
_MAX_REFINED_PER_ROW = 64
"""Above this many candidate pairs per row on average, the maximum comes from an exact float64 Gram."""


SCREEN_CONFIDENCE = 10.0
"""λ of the probabilistic rounding-error bound: a product escapes it with probability < 2·e^(−λ²/2)."""


def screen_margin(n_ids: int) -> float:
    """Return a bound δ on the error of a float32 dot product of two unit vectors of ``n_ids`` values.

    Rounding the inputs errs by at most 2u·Σ|xᵢyᵢ| ≤ 2u (u = ε/2, Σ|xᵢyᵢ| ≤ 1 by Cauchy–Schwarz);
    accumulating ``n`` products by at most λ·√n·u·Σ|xᵢyᵢ| except with probability
    2·exp(−λ²/2) (Higham & Mary's probabilistic bound for rounding errors; the worst case n·u is
    a thousand times looser and would leave nothing to screen). The screen keeps every peer
    within 2δ of the row's best screened value — the true maximum is among them — and doubles it.
    """
    unit_roundoff = _SCREEN_EPSILON / 2
    return (SCREEN_CONFIDENCE * float(np.sqrt(n_ids)) + 2) * unit_roundoff


class _Screen:
    """The float32 Gram screen of every row against the peers, kept as the pairs it cannot rule out.

    For each row it tracks the best screened value so far and keeps every pair within the margin
    of it; the best only grows, so a pair dropped early is also below the final best − margin.
    """

    def __init__(self, n_models: int, n_ids: int, limit: int) -> None:
        self.best = np.full(n_models, -np.inf, dtype=SCREEN_DTYPE)
        self.margin = SCREEN_DTYPE(4 * screen_margin(n_ids))
        self.rows: list[np.ndarray] = []
        self.peers: list[np.ndarray] = []
        self.values: list[np.ndarray] = []
        self.kept = 0
        self.limit = limit

    def add(self, rows: np.ndarray, block: np.ndarray, first_peer: int) -> None:
        """Screen ``block`` (rows × peers ``first_peer …``) of screened dot products."""
        self.best[rows] = np.maximum(self.best[rows], block.max(axis=1, initial=-np.inf))
        if self.kept > self.limit:
            return  # too many near-ties: the exact Gram decides (see maxima)
        near = block >= (self.best[rows] - self.margin)[:, None]
        local, peer = np.nonzero(near & (block > -np.inf))  # never a model with itself
        self.rows.append(rows[local])
        self.peers.append(peer + first_peer)
        self.values.append(block[local, peer])
        self.kept += local.size

    def maxima(self, unit: np.ndarray, peer_index: np.ndarray, block_size: int) -> np.ndarray:
        """Return each row's exact largest dot product with another peer (``-inf`` with none)."""
        maxima = np.full(unit.shape[0], -np.inf)
        if self.kept > self.limit:  # a crowd of near copies: an exact float64 Gram, block by block
            everyone = peer_index.size == unit.shape[0]  # peer_index is then 0 … n-1: no copy needed
            peer_unit = unit if everyone else unit[peer_index]
            own = np.full(unit.shape[0], -1)
            own[peer_index] = np.arange(peer_index.size)
            for start in range(0, unit.shape[0], block_size):
                stop = min(start + block_size, unit.shape[0])
                exact = unit[start:stop] @ peer_unit.T
                mine = np.flatnonzero(own[start:stop] >= 0)
                exact[mine, own[start:stop][mine]] = -np.inf
                maxima[start:stop] = exact.max(axis=1, initial=-np.inf)
            return maxima
        if not self.rows:
            return maxima
        rows, peers, values = (np.concatenate(found) for found in (self.rows, self.peers, self.values))
        near = values >= self.best[rows] - self.margin  # against each row's final best
        rows, peers = rows[near], peer_index[peers[near]]
        exact = np.empty(rows.shape[0])
        for start in range(0, rows.shape[0], block_size):  # pairs in blocks: bounded gathers
            stop = start + block_size
            exact[start:stop] = np.einsum("ij,ij->i", unit[rows[start:stop]], unit[peers[start:stop]])
        np.maximum.at(maxima, rows, exact)
        return maxima


def _screened_maxima(
    unit: np.ndarray, peer_index: np.ndarray, scored: np.ndarray, block_size: int
) -> np.ndarray:
    """Return the largest exact dot product of each row with another peer row (``-inf`` with none).

    A float32 Gram of the peers with themselves is computed once per pair of blocks (it is
    symmetric: each product serves both rows), then non-peer rows in ``scored`` against the
    peers; only the pairs within the screen's error bound of a row's best are recomputed in
    float64, so the result equals a float64 Gram's maximum at a fraction of its cost.
    """
    n_models, n_ids = unit.shape
    screen = _Screen(n_models, n_ids, limit=_MAX_REFINED_PER_ROW * max(1, n_models))
    peers = _rows_as(unit, peer_index, SCREEN_DTYPE, block_size)
    for start in range(0, peer_index.size, block_size):
        stop = min(start + block_size, peer_index.size)
        for other in range(start, peer_index.size, block_size):
            other_stop = min(other + block_size, peer_index.size)
            block = peers[start:stop] @ peers[other:other_stop].T
            if other == start:
                np.fill_diagonal(block, -np.inf)  # a model is not its own peer
            screen.add(peer_index[start:stop], block, other)
            if other != start:
                screen.add(peer_index[other:other_stop], block.T, start)
    outsiders = np.setdiff1d(scored, peer_index)
    for start in range(0, outsiders.size, block_size):
        rows = outsiders[start : start + block_size]
        screen.add(rows, unit[rows].astype(SCREEN_DTYPE) @ peers.T, 0)
    return screen.maxima(unit, peer_index, block_size)


def pairwise_crowd_correlations(
    transformed_rows: np.ndarray,
    *,
    peers: np.ndarray | None = None,
    block_size: int = 1024,
    in_place: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Return (max, mean) Pearson of each row with every *other* peer row; NaN with no other peer.

    ``peers`` (a boolean mask over rows; default: every row) names the models a row is compared
    with — e.g. the on-time submissions of a round, so late ones are measured against the crowd
    without joining it. The mean is exact from one sum of the peers' standardised rows (no Gram
    matrix); the maximum comes from a float32 Gram screen refined in float64
    (:func:`_block_maxima`), in blocks of ``block_size`` rows so memory stays bounded;
    ``in_place`` standardises ``transformed_rows`` in their own memory (the caller's are then lost).
    """
    unit = standardized_rows(transformed_rows, in_place=in_place)
    usable = ~np.isnan(unit).any(axis=1)
    unit[~usable] = 0.0
    n_models = unit.shape[0]
    peer = usable.copy()
    if peers is not None:
        mask = np.asarray(peers, dtype=bool).reshape(-1)
        if mask.shape[0] != n_models:
            raise ScoringError(f"peers has {mask.shape[0]} entries but there are {n_models} models")
        peer &= mask
    peer_index = np.flatnonzero(peer)
    n_others = peer_index.size - peer.astype(np.int64)
    self_products = np.where(peer, np.einsum("ij,ij->i", unit, unit), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = (unit @ (peer.astype(np.float64) @ unit) - self_products) / n_others
    maxima = np.full(n_models, np.nan)
    if peer_index.size:
        maxima = _screened_maxima(unit, peer_index, np.flatnonzero(usable), block_size)
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
