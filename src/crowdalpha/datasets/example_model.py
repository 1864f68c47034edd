"""The example model behind ``*_example_preds.parquet``: a ridge regression on the ``small`` feature set.

Deliberately simple and deterministic, so participants can reproduce it: features are the int8
bins centred at 2, the target is ``target`` centred at 0.5, the normal equations are accumulated
era by era over the train split (memory: one ``small × small`` matrix) and solved once with a
ridge penalty of ``RIDGE_PENALTY`` × the mean diagonal. Predictions are ranked within each era
(ties averaged) to ``(rank − 0.5) / n`` in (0, 1).
"""

from __future__ import annotations

import numpy as np

RIDGE_PENALTY = 0.01


def rank_within_era(scores: np.ndarray) -> np.ndarray:
    """Return ``(average rank − 0.5) / n`` of the scores: float64 in (0, 1), ties sharing a value."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return scores
    order = np.argsort(scores, kind="stable")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    stops = np.r_[starts[1:], scores.size]
    ranks = np.empty(scores.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + stops + 1) / 2.0, stops - starts)
    return (ranks - 0.5) / scores.size


class RidgeExampleModel:
    """Ridge regression of ``target`` on centred bins, fitted from eras streamed one at a time."""

    def __init__(self, n_features: int, *, penalty: float = RIDGE_PENALTY) -> None:
        self.penalty = penalty
        self._gram = np.zeros((n_features, n_features), dtype=np.float64)
        self._moment = np.zeros(n_features, dtype=np.float64)
        self.rows = 0
        self.coefficients: np.ndarray | None = None

    def add_era(self, features: np.ndarray, target: np.ndarray) -> None:
        """Accumulate one era: int8 bins ``(features, rows)`` and the main target (NaN rows skipped)."""
        target = np.asarray(target, dtype=np.float64)
        known = ~np.isnan(target)
        if not known.any():
            return
        centred = np.asarray(features, dtype=np.float64)[:, known] - 2.0
        self._gram += centred @ centred.T
        self._moment += centred @ (target[known] - 0.5)
        self.rows += int(known.sum())

    def fit(self) -> np.ndarray:
        """Return (and keep) the ridge coefficients; all zeros when no train row was seen."""
        if self.rows == 0:
            self.coefficients = np.zeros_like(self._moment)
            return self.coefficients
        scale = float(np.mean(np.diag(self._gram))) or 1.0
        gram = self._gram + self.penalty * scale * np.eye(len(self._gram))
        self.coefficients = np.linalg.solve(gram, self._moment)
        return self.coefficients

    def predict_era(self, features: np.ndarray) -> np.ndarray:
        """Return one era's predictions, ranked to (0, 1), from int8 bins ``(features, rows)``."""
        coefficients = self.coefficients if self.coefficients is not None else self.fit()
        scores = coefficients @ (np.asarray(features, dtype=np.float64) - 2.0)
        return rank_within_era(scores)
