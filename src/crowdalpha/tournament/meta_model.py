"""Meta models at round close (reference §3.5, §3.8, §3.9, §6), driven by a :class:`MetaModelRule`.

Every meta model is a weighted mean of the *cleaned* selected on-time submissions::

    cleaned_m = gaussian(tie_kept_rank(fill_nan(tie_kept_rank(predictions_m), 0.5)))
    meta_model = Σ_m weight_m · cleaned_m

* Cleaning is Numerai's ``clean_submission(rank_and_fill=True)`` followed by rank → gaussianise
  (reference §3.8): ids a model did not predict get the middle rank. For a complete submission
  (Classic covers every live id) the second rank equals the first, so the Classic SWMM is exactly
  ``stake_weight(gaussian(tie_kept_rank(predictions)), stakes)`` of §6.
* Weights (:func:`meta_model_weights`): only models that submitted and stake at least the rule's
  ``min_stake`` count; ``"stake"`` weighting gives each its share of their total stake (SWMM),
  ``"equal"`` gives each the same share (Signals SNWMMmin10, Crypto CNWMMmin1).
* No final normalisation: the result is a mean of Gaussianised ranks (mean ≈ 0), which is what the
  contribution scores rank again. :func:`meta_model_percentiles` maps it into (0, 1) for
  publishing in ``meta_model.parquet`` beside submissions in the same range; scores are unchanged
  by that monotone map.

Inputs are numpy: predictions ``(ids, models)`` float with NaN for ids a model did not predict,
stakes ``(models,)`` integer nano-tokens at round close.
"""

from __future__ import annotations

import numpy as np

from crowdalpha.scoring._layout import as_rows
from crowdalpha.scoring.ranking import transform_rows
from crowdalpha.scoring.transforms import gaussian
from crowdalpha.tournament.config import MetaModelRule
from crowdalpha.tournament.payouts import tokens_to_nano

FILL_PERCENTILE = 0.5
"""Percentile given to ids a submission did not predict (numerai-tools ``rank_and_fill``)."""

BENCHMARK_META_MODEL = "benchmark_meta_model"


class MetaModelError(ValueError):
    """The inputs of a meta model broke a rule; the message names the rule and the offending input."""


def _checked_inputs(predictions: np.ndarray, stakes_nano: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    predictions = np.asarray(predictions, dtype=np.float64)
    stakes = np.asarray(stakes_nano)
    if predictions.ndim != 2:
        raise MetaModelError(f"predictions must be 2-D (ids × models); got {predictions.ndim}-D")
    if predictions.shape[0] == 0:
        raise MetaModelError("predictions have no ids (rule: a meta model needs at least one id)")
    if stakes.ndim != 1 or stakes.shape[0] != predictions.shape[1]:
        raise MetaModelError(
            f"stakes_nano has shape {stakes.shape} but predictions have {predictions.shape[1]} models"
            " (rule: one stake per model column)"
        )
    if not np.issubdtype(stakes.dtype, np.integer):
        raise MetaModelError(f"stakes_nano must be integer nano-tokens; got dtype {stakes.dtype}")
    negative = np.flatnonzero(stakes < 0)
    if negative.size:
        raise MetaModelError(f"stakes_nano must be ≥ 0; model columns {negative[:5].tolist()} are negative")
    infinite = np.flatnonzero(np.isinf(predictions).any(axis=0))
    if infinite.size:
        raise MetaModelError(
            f"predictions must be finite or NaN (missing); model columns {infinite[:5].tolist()} hold ±inf"
        )
    return predictions, stakes.astype(np.int64)


def meta_model_weights(rule: MetaModelRule, predictions: np.ndarray, stakes_nano: np.ndarray) -> np.ndarray:
    """Return each model's weight in the meta model (``(models,)`` floats summing to 1, 0 if ineligible)."""
    predictions, stakes = _checked_inputs(predictions, stakes_nano)
    submitted = ~np.isnan(predictions).all(axis=0)
    eligible = submitted & (stakes >= tokens_to_nano(rule.min_stake))
    if not eligible.any():
        raise MetaModelError(
            f"{rule.name}: no model submitted predictions with a stake of at least {rule.min_stake} tokens"
            " (rule: a meta model needs an eligible model)"
        )
    if rule.weighting == "equal":
        weights = eligible.astype(np.float64)
    else:
        weights = np.where(eligible, stakes, 0).astype(np.float64)
        if weights.sum() == 0:
            raise MetaModelError(
                f"{rule.name}: every eligible model stakes 0 (rule: a stake-weighted meta model needs"
                " a positive total stake)"
            )
    return weights / weights.sum()


def cleaned_gaussian_ranks(predictions: np.ndarray) -> np.ndarray:
    """Return ``gaussian(tie_kept_rank(fill_nan(tie_kept_rank(p), 0.5)))`` per model column (ids × models)."""
    percentiles = transform_rows(as_rows(predictions))
    gaps = np.isnan(percentiles)
    incomplete = gaps.any(axis=1)
    if incomplete.any():  # ranking complete tie-kept ranks again changes nothing, so only these rows
        percentiles[gaps] = FILL_PERCENTILE
        percentiles[incomplete] = transform_rows(percentiles[incomplete])
    return gaussian(percentiles).T


def meta_model(rule: MetaModelRule, predictions: np.ndarray, stakes_nano: np.ndarray) -> np.ndarray:
    """Return the meta model of ``rule`` (``(ids,)`` float64, a weighted mean of Gaussianised ranks)."""
    weights = meta_model_weights(rule, predictions, stakes_nano)
    used = weights > 0
    return cleaned_gaussian_ranks(np.asarray(predictions, dtype=np.float64)[:, used]) @ weights[used]


def benchmark_meta_model(predictions: np.ndarray, stakes_nano: np.ndarray | None = None) -> np.ndarray:
    """Return the benchmark meta model (``(ids,)``): stake-weighted, or equal-weight when no stakes."""
    if stakes_nano is None:
        rule = MetaModelRule(BENCHMARK_META_MODEL, "equal")
        n_models = np.shape(predictions)[1] if np.ndim(predictions) == 2 else 0
        stakes_nano = np.zeros(n_models, dtype=np.int64)
    else:
        rule = MetaModelRule(BENCHMARK_META_MODEL, "stake")
    return meta_model(rule, predictions, stakes_nano)


def meta_model_percentiles(values: np.ndarray) -> np.ndarray:
    """Return a meta model as tie-kept percentile ranks in (0, 1): the published ``numerai_meta_model``."""
    return transform_rows(as_rows(values, name="meta model"))[0]
