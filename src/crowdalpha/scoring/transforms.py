"""Elementwise and linear transformations of prediction blocks: centre, scale, power, project.

Every function takes ``(ids,)`` or ``(ids, models)`` arrays and returns the same layout. The
``*_rows`` variants work on ``(models, ids)`` rows and are what the scores compose.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from crowdalpha.scoring._layout import as_rows, require_no_nan, same_shape_as
from crowdalpha.scoring.errors import ScoringError

NEUTRALIZE_RCOND = 1e-6
"""Relative singular-value cut-off of the neutraliser basis (numpy ``lstsq``'s ``rcond``)."""


def center(values: np.ndarray) -> np.ndarray:
    """Return each column minus its mean (NaN ignored in the mean)."""
    return values - np.nanmean(values, axis=0)


def variance_normalize(values: np.ndarray) -> np.ndarray:
    """Return each column divided by its population standard deviation (ddof 0)."""
    return values / np.std(values, axis=0)


def weight_normalize(values: np.ndarray) -> np.ndarray:
    """Return each column divided by the sum of its absolute values (so ``sum |w| == 1``)."""
    return values / np.nansum(np.abs(values), axis=0)


def power(values: np.ndarray, exponent: float) -> np.ndarray:
    """Return ``sign(x) * |x| ** exponent`` elementwise (sign-preserving power)."""
    values = np.asarray(values, dtype=np.float64)
    return np.sign(values) * np.abs(values) ** exponent


def gaussian(percentiles: np.ndarray) -> np.ndarray:
    """Return the standard normal quantile of values in (0, 1) (0 and 1 map to ∓inf)."""
    return ndtri(np.asarray(percentiles, dtype=np.float64))


def orthogonalize(values: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Return ``values`` (ids × models) minus their projection onto ``direction`` (ids,)."""
    values = np.asarray(values, dtype=np.float64)
    direction = np.asarray(direction, dtype=np.float64)
    return same_shape_as(orthogonalize_rows(as_rows(values), direction), values)


def orthogonalize_rows(rows: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Return each row minus its projection onto ``direction``."""
    coefficients = (rows @ direction) / (direction @ direction)
    return rows - np.outer(coefficients, direction)


def stake_weight(predictions: np.ndarray, stakes: np.ndarray) -> np.ndarray:
    """Return the stake-weighted average of the columns (NaN predictions count as 0)."""
    predictions = np.asarray(predictions, dtype=np.float64)
    stakes = np.asarray(stakes, dtype=np.float64)
    if predictions.ndim != 2 or predictions.shape[1] != stakes.shape[0]:
        raise ScoringError("stake_weight needs one stake per prediction column")
    total = stakes.sum()
    if total == 0:
        raise ScoringError("stake_weight needs a positive total stake (rule: sum of stakes > 0)")
    return np.nan_to_num(predictions, nan=0.0) @ stakes / total


class Neutralizer:
    """The column space of a neutraliser matrix plus a constant, ready to project out of many rows.

    Built once per era (one SVD of the ``ids × neutralisers`` block); every model is then neutralised
    by two matrix products. Directions with singular value below ``rcond * max`` are ignored, as
    ``numpy.linalg.lstsq(..., rcond)`` does, so rank-deficient neutralisers (one-hot groups plus the
    constant) are handled.
    """

    def __init__(
        self,
        neutralizers: np.ndarray,
        *,
        add_constant: bool = True,
        rcond: float = NEUTRALIZE_RCOND,
    ) -> None:
        matrix = np.asarray(neutralizers, dtype=np.float64)
        if matrix.ndim == 1:
            matrix = matrix.reshape(-1, 1)
        require_no_nan(matrix, name="neutralizers")
        if add_constant:
            matrix = np.hstack((matrix, np.ones((matrix.shape[0], 1))))
        basis, singular_values, _ = np.linalg.svd(matrix, full_matrices=False)
        keep = singular_values > rcond * (singular_values[0] if singular_values.size else 0.0)
        self.n_ids = matrix.shape[0]
        self.basis = np.ascontiguousarray(basis[:, keep])

    def residual_rows(self, rows: np.ndarray, proportion: float = 1.0) -> np.ndarray:
        """Return rows minus ``proportion`` × their projection; constant rows become NaN."""
        if rows.shape[1] != self.n_ids:
            raise ScoringError(
                f"neutralizers have {self.n_ids} ids but the data have {rows.shape[1]} "
                "(rule: indices must match)"
            )
        require_no_nan(rows, name="data")
        residual = (rows @ self.basis) @ self.basis.T
        if proportion != 1.0:
            residual *= proportion
        np.subtract(rows, residual, out=residual)
        constant = np.ptp(rows, axis=1) == 0
        if constant.any():
            residual[constant] = np.nan
        return residual


def neutralize(values: np.ndarray, neutralizers: np.ndarray, proportion: float = 1.0) -> np.ndarray:
    """Return ``values`` minus ``proportion`` × their least-squares fit on neutralisers + constant.

    Columns with zero variance come back as NaN (nothing to neutralise).
    """
    values = np.asarray(values, dtype=np.float64)
    residual = Neutralizer(neutralizers).residual_rows(as_rows(values), proportion)
    return same_shape_as(residual, values)
