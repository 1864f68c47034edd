"""Payout rules (reference §3.6, §3.8, §6): token units, gates, the payout factor and per-model payouts.

For one round, with the tournament's :class:`~crowdalpha.tournament.config.PayoutRule`::

    at_risk_m     = stake at close, set to 0 by any gate the model fails     (gated_at_risk)
    payout_factor = min(1, stake_threshold / Σ_m at_risk_m)                  (payout_factor)
    payout_score  = Σ_terms multiplier · score                               (payout_scores)
    payout_m      = at_risk_m · clip(payout_factor · payout_score_m, −clip, +clip)   (payouts)

A positive payout moves from the treasury into the stake; a negative one is burned
(:func:`treasury_and_burn`). Money is integer nano-tokens (1 token = 10⁹, DESIGN "ledger amounts");
the fraction of stake is computed in float64 and each payout is then **rounded toward zero** to a
whole nano-token, computed exactly (integer arithmetic on the float's exact binary value), so
``|payout_m| ≤ |at_risk_m × fraction_m|`` always holds: no model is paid or burned more than the
formula allows, and the treasury never pays out more than the sum of the exact payouts.

Gates (Signals): a model's stake counts only while each gated metric — the maximum over its most
recent ``lookback_rounds`` comparisons, as numerai-tools ``calculate_max_churn_and_turnover`` —
stays below the gate. Without any previous submission to compare with, the metric is 1.0, as in
numerai-tools, so a model that did not submit recently is gated (reference §3.8).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal

import numpy as np

from crowdalpha.ledger.amounts import NANO_PER_TOKEN
from crowdalpha.tournament.config import GateRule, PayoutRule

NO_COMPARISON_METRIC = 1.0
"""Churn / turnover of a submission with no previous submission to compare with (numerai-tools)."""


class PayoutError(ValueError):
    """Payout inputs broke a rule; the message names the rule and the offending input."""


def tokens_to_nano(amount: Decimal) -> int:
    """Return a token amount as an exact integer number of nano-tokens; raise PayoutError if inexact."""
    nano = Decimal(amount) * NANO_PER_TOKEN
    if not nano.is_finite() or nano != nano.to_integral_value():
        raise PayoutError(
            f"token amount {amount} is not a whole number of nano-tokens (rule: at most 9 decimal places)"
        )
    return int(nano)


def _first(positions: np.ndarray) -> list[int]:
    return np.flatnonzero(positions)[:5].tolist()


def checked_at_risk(at_risk_nano: np.ndarray) -> np.ndarray:
    """Return at-risk stakes as an int64 vector, or raise PayoutError naming the broken rule."""
    at_risk = np.asarray(at_risk_nano)
    if at_risk.ndim != 1:
        raise PayoutError(f"at_risk_nano must be 1-D (one stake per model); got {at_risk.ndim}-D")
    if at_risk.size and not np.issubdtype(at_risk.dtype, np.integer):
        raise PayoutError(f"at_risk_nano must be integer nano-tokens; got dtype {at_risk.dtype}")
    at_risk = at_risk.astype(np.int64)
    if (at_risk < 0).any():
        raise PayoutError(f"at_risk_nano must be ≥ 0; models {_first(at_risk < 0)} are negative")
    return at_risk


def payout_factor(total_at_risk_nano: int, threshold: Decimal) -> float:
    """Return ``min(1, threshold / total at risk)``, the share of the payout score paid."""
    total = int(total_at_risk_nano)
    if total < 0:
        raise PayoutError(f"total_at_risk_nano must be ≥ 0; got {total}")
    threshold_nano = tokens_to_nano(threshold)
    if threshold_nano <= 0:
        raise PayoutError(f"stake threshold must be > 0 tokens; got {threshold}")
    if total <= threshold_nano:
        return 1.0
    return threshold_nano / total  # Python's int / int is correctly rounded


def gate_metric(values: np.ndarray, gate: GateRule) -> np.ndarray:
    """Return each model's gated metric: max |value| over its ``lookback_rounds`` most recent comparisons.

    ``values`` is ``(models,)`` or ``(models, comparisons)`` with the most recent comparison first and
    NaN where there is no previous submission; a model with none gets :data:`NO_COMPARISON_METRIC`.
    """
    values = np.abs(np.asarray(values, dtype=np.float64))
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise PayoutError(f"{gate.metric} must be (models,) or (models, comparisons); got {values.ndim}-D")
    if np.isinf(values).any():
        models = _first(np.isinf(values).any(axis=1))
        raise PayoutError(f"{gate.metric} must be finite or NaN (no comparison); models {models} hold ±inf")
    if values.shape[1] == 0:
        return np.full(values.shape[0], NO_COMPARISON_METRIC)
    maximum = np.fmax.reduce(values[:, : gate.lookback_rounds], axis=1)  # NaN only if nothing compared
    return np.where(np.isnan(maximum), NO_COMPARISON_METRIC, maximum)


def gated_at_risk(
    gates: Sequence[GateRule], at_risk_nano: np.ndarray, metrics: Mapping[str, np.ndarray]
) -> np.ndarray:
    """Return at-risk stakes (int64 nano-tokens), 0 where a gated metric is not below its gate."""
    at_risk = checked_at_risk(at_risk_nano)
    passes = np.ones(at_risk.shape[0], dtype=bool)
    for gate in gates:
        if gate.metric not in metrics:
            raise PayoutError(f"gate {gate.metric} < {gate.below} needs the {gate.metric!r} of every model")
        values = gate_metric(metrics[gate.metric], gate)
        if values.shape[0] != at_risk.shape[0]:
            raise PayoutError(
                f"{gate.metric} has {values.shape[0]} models but at_risk_nano has {at_risk.shape[0]}"
            )
        passes &= values < gate.below
    return np.where(passes, at_risk, 0)


def payout_scores(rule: PayoutRule, scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """Return ``Σ multiplier · score`` per model (float64), over the rule's payout terms."""
    total: np.ndarray | None = None
    for term in rule.terms:
        if term.score not in scores:
            raise PayoutError(f"the payout needs the {term.score!r} score; got scores {sorted(scores)}")
        values = np.asarray(scores[term.score], dtype=np.float64)
        if values.ndim != 1 or (total is not None and values.shape != total.shape):
            raise PayoutError(f"score {term.score!r} must be one value per model; got shape {values.shape}")
        total = term.multiplier * values if total is None else total + term.multiplier * values
    assert total is not None  # a PayoutRule always has a term
    if np.isinf(total).any():
        raise PayoutError(f"payout scores must be finite; models {_first(np.isinf(total))} are ±inf")
    return total


def payout_fractions(rule: PayoutRule, scores: Mapping[str, np.ndarray], factor: float) -> np.ndarray:
    """Return each model's payout as a fraction of its stake: ``clip(factor · payout_score, ±clip)``."""
    return np.clip(factor * payout_scores(rule, scores), -rule.clip, rule.clip)


def nano_toward_zero(at_risk_nano: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Return ``at_risk × fraction`` rounded toward zero to whole nano-tokens (int64), computed exactly."""
    mantissas, exponents = np.frexp(np.abs(fractions))
    # |fraction| = significand · 2^-shift with an integer significand below 2^53, so the product is
    # exact in Python integers (object arrays); the right shift then floors the magnitude.
    significands = (mantissas * 2.0**53).astype(np.int64).astype(object)
    shifts = (53 - exponents.astype(np.int64)).astype(object)
    magnitudes = (np.asarray(at_risk_nano, dtype=np.int64).astype(object) * significands) >> shifts
    return np.sign(fractions).astype(np.int64) * magnitudes.astype(np.int64)


def payouts(
    rule: PayoutRule,
    at_risk_nano: np.ndarray,
    scores: Mapping[str, np.ndarray],
    *,
    total_at_risk_nano: int | None = None,
) -> np.ndarray:
    """Return each model's payout in nano-tokens (int64; > 0 paid into the stake, < 0 burned).

    ``at_risk_nano`` are the gated at-risk stakes at round close; the payout factor uses their sum
    unless ``total_at_risk_nano`` (the round's whole total) is given.
    """
    at_risk = checked_at_risk(at_risk_nano)
    total = int(at_risk.sum(dtype=object)) if total_at_risk_nano is None else int(total_at_risk_nano)
    if total < int(at_risk.sum(dtype=object)):
        raise PayoutError(f"total_at_risk_nano {total} is below the sum of the models' at-risk stakes")
    fractions = payout_fractions(rule, scores, payout_factor(total, rule.stake_threshold))
    if fractions.shape != at_risk.shape:
        raise PayoutError(f"scores have {fractions.shape[0]} models but at_risk_nano has {at_risk.shape[0]}")
    unscored = (at_risk > 0) & np.isnan(fractions)
    if unscored.any():
        raise PayoutError(f"models {_first(unscored)} have a stake at risk but no payout score (NaN)")
    fractions = np.where(at_risk > 0, fractions, 0.0)
    return nano_toward_zero(at_risk, fractions)


def treasury_and_burn(payouts_nano: np.ndarray) -> tuple[int, int]:
    """Return ``(paid from the treasury, burned)`` in nano-tokens, both ≥ 0, for a round's payouts."""
    amounts = np.asarray(payouts_nano, dtype=np.int64)
    return int(amounts[amounts > 0].sum(dtype=object)), int(-amounts[amounts < 0].sum(dtype=object))
