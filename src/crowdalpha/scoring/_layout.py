"""Array layout shared by the numpy core.

The public numpy API takes predictions as ``(ids, models)`` arrays (one column per model, like a
DataFrame). Internally every transformation runs on *rows* — ``(models, ids)``, C-contiguous — so
each model's values are contiguous for sorting and the whole block is one operand for BLAS.
Converting a pandas frame's ``.to_numpy()`` (Fortran-ordered) to rows is free.
"""

from __future__ import annotations

import numpy as np

from crowdalpha.scoring.errors import ScoringError


def as_rows(values: np.ndarray, *, name: str = "predictions") -> np.ndarray:
    """Return ``(models, ids)`` C-contiguous float64 rows from an ``(ids,)`` or ``(ids, models)`` array."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 1:
        return array.reshape(1, -1)
    if array.ndim != 2:
        raise ScoringError(f"{name} must be 1-D (ids) or 2-D (ids × models); got {array.ndim}-D")
    return np.ascontiguousarray(array.T)


def as_vector(values: np.ndarray, n_ids: int, *, name: str) -> np.ndarray:
    """Return a float64 vector of length ``n_ids`` or raise a ScoringError naming the input."""
    vector = np.asarray(values, dtype=np.float64).reshape(-1)
    if vector.shape[0] != n_ids:
        raise ScoringError(f"{name} has {vector.shape[0]} ids but predictions have {n_ids}")
    return vector


def same_shape_as(rows: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Return rows back in the caller's layout: ``(ids,)`` for 1-D input, else ``(ids, models)``."""
    if np.ndim(original) == 1:
        return rows[0]
    return rows.T


def per_model(scores: np.ndarray, original: np.ndarray) -> np.ndarray | float:
    """Return a per-model score vector, or a float when the caller passed one 1-D prediction."""
    if np.ndim(original) == 1:
        return float(scores[0])
    return scores


def require_no_nan(array: np.ndarray, *, name: str) -> None:
    """Raise a ScoringError when ``array`` contains NaN (rule: no NaNs in ``name``)."""
    if np.isnan(array).any():
        raise ScoringError(f"{name} contain NaNs (rule: no NaNs allowed in {name})")
